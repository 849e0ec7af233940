//! Cloud management: users, meetings, and the join tickets that let participants into meetings.
//!
//! Contract: the shell authenticates each request with [`Management::authenticate`], then calls
//! one operation with the caller and the current time. Every change is written to the injected
//! [`Store`] before it is applied in memory, so what a caller was told happened has been
//! persisted (the real cloud's store is SQLite; tests use [`MemoryStore`]).

use crate::digest::sha256_hex;
use crate::ticket::TicketSigner;
use crate::Rng;
use mc_wire::ticket::{TicketClaims, MAX_DISPLAY_NAME_BYTES};
use mc_wire::{hex, MeetingId, ParticipantId};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use thiserror::Error;

pub const MAX_TOPIC_BYTES: usize = 200;
pub const MAX_EMAIL_BYTES: usize = 254;
pub const MAX_REASON_BYTES: usize = 200;
/// The largest size hint a meeting may carry: far above any zone this connector is sized for
/// (200 participants an MMR), yet small enough that a typo is caught rather than believed.
pub const MAX_EXPECTED_PARTICIPANTS: u32 = 100_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UserId(pub u64);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Manages users and sees the whole zone.
    Admin,
    /// Hosts and joins meetings.
    Member,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: UserId,
    pub email: String,
    pub display_name: String,
    pub role: Role,
    /// SHA-256 of the user's API key, hex. The key itself is shown once, at creation.
    #[serde(skip_serializing)]
    pub key_sha256: String,
    pub created_at_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Meeting {
    pub id: MeetingId,
    pub topic: String,
    /// The user who created it; `None` when created with the operator's key.
    pub host: Option<UserId>,
    pub created_at_ms: u64,
    /// Set when the meeting ended, with why.
    pub ended: Option<String>,
    /// How many participants its creator expects, if they said: controllers spread a meeting
    /// expected to outgrow one MMR over several from its first join. (Absent from records made
    /// before the hint existed.)
    #[serde(default)]
    pub expected_participants: Option<u32>,
}

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// The cloud's configured operator key.
    Operator,
    User(User),
}

impl Caller {
    fn is_admin(&self) -> bool {
        matches!(self, Caller::Operator) || matches!(self, Caller::User(u) if u.role == Role::Admin)
    }

    fn user_id(&self) -> Option<UserId> {
        match self {
            Caller::Operator => None,
            Caller::User(u) => Some(u.id),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ManagementError {
    /// 401: no credentials, or credentials this cloud does not know.
    #[error("{0}")]
    Unauthenticated(String),
    /// 403: known caller, not allowed to do this.
    #[error("{0}")]
    Forbidden(String),
    #[error("meeting {0} does not exist")]
    NoSuchMeeting(MeetingId),
    #[error("user {0} does not exist")]
    NoSuchUser(u64),
    #[error("meeting {0} has ended")]
    MeetingEnded(MeetingId),
    #[error("a user with email {0} already exists")]
    Duplicate(String),
    #[error("invalid {field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    /// The store failed; nothing was changed.
    #[error(transparent)]
    Storage(#[from] StoreError),
}

/// The store failed at one step; `detail` is the backend's own account of it.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("storage failed {step}: {detail}")]
pub struct StoreError {
    pub step: StoreStep,
    pub detail: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreStep {
    Opening,
    SavingUser,
    SavingMeeting,
    Loading,
}

impl std::fmt::Display for StoreStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            StoreStep::Opening => "opening the database",
            StoreStep::SavingUser => "saving a user",
            StoreStep::SavingMeeting => "saving a meeting",
            StoreStep::Loading => "loading",
        })
    }
}

impl StoreStep {
    /// A backend error at this step.
    pub fn failed(self, detail: impl std::fmt::Display) -> StoreError {
        StoreError {
            step: self,
            detail: detail.to_string(),
        }
    }
}

/// Persistence for management. Implementations write through: a call returns once durable.
pub trait Store: Send {
    fn save_user(&mut self, user: &User) -> Result<(), StoreError>;
    fn save_meeting(&mut self, meeting: &Meeting) -> Result<(), StoreError>;
    /// Everything stored, to start from.
    fn load(&mut self) -> Result<(Vec<User>, Vec<Meeting>), StoreError>;
}

/// A store that keeps nothing beyond the process (tests; a cloud run without a data directory).
#[derive(Debug, Default)]
pub struct MemoryStore;

impl Store for MemoryStore {
    fn save_user(&mut self, _: &User) -> Result<(), StoreError> {
        Ok(())
    }
    fn save_meeting(&mut self, _: &Meeting) -> Result<(), StoreError> {
        Ok(())
    }
    fn load(&mut self) -> Result<(Vec<User>, Vec<Meeting>), StoreError> {
        Ok((Vec::new(), Vec::new()))
    }
}

pub struct Management {
    signer: TicketSigner,
    ticket_ttl_ms: u64,
    operator_key: String,
    rng: Rng,
    store: Box<dyn Store>,
    users: BTreeMap<UserId, User>,
    meetings: BTreeMap<MeetingId, Meeting>,
    /// Participant ids are never reused: a restarted cloud starts above every id it could have
    /// issued (the high half of the clock), so tickets stay unique across restarts.
    next_participant: u64,
    /// Meetings that have issued a ticket since this cloud started: the first ticket starts a
    /// meeting. (Kept here, not read back from the notification log, which evicts old events.)
    started: BTreeSet<MeetingId>,
}

/// A ticket issued to a new participant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedTicket {
    pub participant: ParticipantId,
    pub ticket: String,
    pub expires_at_ms: u64,
    /// The meeting's first ticket since this cloud started: the meeting starts now.
    pub starts_meeting: bool,
}

/// Compares without an early exit, so timing does not reveal how much of a key matched.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn check_text(field: &'static str, v: &str, max: usize) -> Result<String, ManagementError> {
    let v = v.trim();
    if v.is_empty() || v.len() > max || v.chars().any(char::is_control) {
        return Err(ManagementError::Invalid {
            field,
            reason: format!("must be 1 to {max} bytes of printable text"),
        });
    }
    Ok(v.to_string())
}

impl Management {
    pub fn new(
        signer: TicketSigner,
        ticket_ttl_ms: u64,
        operator_key: String,
        rng: Rng,
        mut store: Box<dyn Store>,
        now_ms: u64,
    ) -> Result<Management, ManagementError> {
        let (users, meetings) = store.load()?;
        Ok(Management {
            signer,
            ticket_ttl_ms,
            operator_key,
            rng,
            store,
            users: users.into_iter().map(|u| (u.id, u)).collect(),
            meetings: meetings.into_iter().map(|m| (m.id, m)).collect(),
            next_participant: now_ms << 8,
            started: BTreeSet::new(),
        })
    }

    pub fn ticket_public_key(&self) -> Vec<u8> {
        self.signer.public_key()
    }

    /// Resolves a bearer key to a caller.
    pub fn authenticate(&self, bearer: Option<&str>) -> Result<Caller, ManagementError> {
        let key = bearer.ok_or_else(|| {
            ManagementError::Unauthenticated(
                "send an API key as `Authorization: Bearer <key>`".into(),
            )
        })?;
        if same(key.as_bytes(), self.operator_key.as_bytes()) {
            return Ok(Caller::Operator);
        }
        let hash = sha256_hex(key.as_bytes());
        self.users
            .values()
            .find(|u| same(u.key_sha256.as_bytes(), hash.as_bytes()))
            .map(|u| Caller::User(u.clone()))
            .ok_or_else(|| {
                ManagementError::Unauthenticated("the API key is not valid for this cloud".into())
            })
    }

    fn require_admin(caller: &Caller, what: &str) -> Result<(), ManagementError> {
        if caller.is_admin() {
            Ok(())
        } else {
            Err(ManagementError::Forbidden(format!(
                "{what} needs an admin key"
            )))
        }
    }

    /// Creates a user; returns it with its API key (shown only now).
    pub fn create_user(
        &mut self,
        now_ms: u64,
        caller: &Caller,
        email: &str,
        display_name: &str,
        role: Role,
    ) -> Result<(User, String), ManagementError> {
        Self::require_admin(caller, "creating users")?;
        let email = check_text("email", email, MAX_EMAIL_BYTES)?;
        if !email.contains('@') || email.contains(' ') {
            return Err(ManagementError::Invalid {
                field: "email",
                reason: format!("{email:?} is not an email address"),
            });
        }
        let display_name = check_text("display_name", display_name, MAX_DISPLAY_NAME_BYTES)?;
        if self
            .users
            .values()
            .any(|u| u.email.eq_ignore_ascii_case(&email))
        {
            return Err(ManagementError::Duplicate(email));
        }
        let key = format!("mck_{}", hex::encode(&self.rng.bytes::<24>()));
        let id = UserId(self.users.keys().next_back().map_or(1, |u| u.0 + 1));
        let user = User {
            id,
            email,
            display_name,
            role,
            key_sha256: sha256_hex(key.as_bytes()),
            created_at_ms: now_ms,
        };
        self.store.save_user(&user)?;
        self.users.insert(id, user.clone());
        Ok((user, key))
    }

    pub fn users(&self, caller: &Caller) -> Result<Vec<&User>, ManagementError> {
        Self::require_admin(caller, "listing users")?;
        Ok(self.users.values().collect())
    }

    pub fn user(&self, caller: &Caller, id: UserId) -> Result<&User, ManagementError> {
        if !caller.is_admin() && caller.user_id() != Some(id) {
            return Err(ManagementError::Forbidden(
                "members may only look at themselves".into(),
            ));
        }
        self.users.get(&id).ok_or(ManagementError::NoSuchUser(id.0))
    }

    /// Creates a meeting, with an optional size hint (1 to [`MAX_EXPECTED_PARTICIPANTS`]) that
    /// every ticket for it carries to the controllers.
    pub fn create_meeting(
        &mut self,
        now_ms: u64,
        caller: &Caller,
        topic: &str,
        expected_participants: Option<u64>,
    ) -> Result<Meeting, ManagementError> {
        let topic = check_text("topic", topic, MAX_TOPIC_BYTES)?;
        let expected_participants = expected_participants
            .map(|n| {
                u32::try_from(n)
                    .ok()
                    .filter(|n| (1..=MAX_EXPECTED_PARTICIPANTS).contains(n))
                    .ok_or_else(|| ManagementError::Invalid {
                        field: "expected_participants",
                        reason: format!(
                            "must be a whole number from 1 to {MAX_EXPECTED_PARTICIPANTS}, not {n}"
                        ),
                    })
            })
            .transpose()?;
        let id = MeetingId(self.meetings.keys().next_back().map_or(1, |m| m.0 + 1));
        let meeting = Meeting {
            id,
            topic,
            host: caller.user_id(),
            created_at_ms: now_ms,
            ended: None,
            expected_participants,
        };
        self.store.save_meeting(&meeting)?;
        self.meetings.insert(id, meeting.clone());
        Ok(meeting)
    }

    pub fn meeting(&self, id: MeetingId) -> Result<&Meeting, ManagementError> {
        self.meetings
            .get(&id)
            .ok_or(ManagementError::NoSuchMeeting(id))
    }

    pub fn meetings(&self) -> impl Iterator<Item = &Meeting> {
        self.meetings.values()
    }

    fn require_host(
        &self,
        caller: &Caller,
        id: MeetingId,
        what: &str,
    ) -> Result<&Meeting, ManagementError> {
        let m = self.meeting(id)?;
        if !caller.is_admin() && (m.host.is_none() || m.host != caller.user_id()) {
            return Err(ManagementError::Forbidden(format!(
                "only the meeting's host or an admin may {what}"
            )));
        }
        Ok(m)
    }

    /// Ends a meeting: no more tickets; the shell notifies the controllers.
    pub fn end_meeting(
        &mut self,
        caller: &Caller,
        id: MeetingId,
        reason: &str,
    ) -> Result<Meeting, ManagementError> {
        let reason = check_text("reason", reason, MAX_REASON_BYTES)?;
        let m = self.require_host(caller, id, "end it")?;
        if m.ended.is_some() {
            return Err(ManagementError::MeetingEnded(id));
        }
        let mut m = m.clone();
        m.ended = Some(reason);
        self.store.save_meeting(&m)?;
        self.meetings.insert(id, m.clone());
        Ok(m)
    }

    /// Checks that `caller` may remove a participant from `id` (the shell then notifies).
    pub fn authorize_removal(&self, caller: &Caller, id: MeetingId) -> Result<(), ManagementError> {
        self.require_host(caller, id, "remove participants")
            .map(|_| ())
    }

    /// Issues a ticket for a new participant of a live meeting. Members join under their own
    /// name; the operator names the participant.
    pub fn issue_ticket(
        &mut self,
        now_ms: u64,
        caller: &Caller,
        meeting: MeetingId,
        display_name: Option<&str>,
    ) -> Result<IssuedTicket, ManagementError> {
        let m = self.meeting(meeting)?;
        if m.ended.is_some() {
            return Err(ManagementError::MeetingEnded(meeting));
        }
        let expected_participants = m.expected_participants;
        let name = match (display_name, caller) {
            (Some(n), _) => check_text("display_name", n, MAX_DISPLAY_NAME_BYTES)?,
            (None, Caller::User(u)) => u.display_name.clone(),
            (None, Caller::Operator) => {
                return Err(ManagementError::Invalid {
                    field: "display_name",
                    reason: "required with the operator key".into(),
                })
            }
        };
        self.next_participant += 1;
        let participant = ParticipantId(self.next_participant);
        let expires_at_ms = now_ms + self.ticket_ttl_ms;
        let claims = TicketClaims {
            meeting,
            participant,
            display_name: name,
            issued_at_ms: now_ms,
            expires_at_ms,
            nonce: self.rng.bytes(),
            expected_participants,
        };
        Ok(IssuedTicket {
            participant,
            ticket: self.signer.sign(claims).to_text(),
            expires_at_ms,
            starts_meeting: self.started.insert(meeting),
        })
    }
}

#[cfg(test)]
mod tests;
