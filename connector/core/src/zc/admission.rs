//! ZC admission: tickets, capacity limits, meeting affinity, and what each join or leave asks of
//! the MMRs.

use super::placement::{place_new_meeting, spread_for, MmrState};
use super::rejoin::{RejoinKeys, PASS_TTL_MS};
use crate::ticket::{TicketError, TicketVerifier};
use crate::Rng;
use mc_wire::link::CascadePeer;
use mc_wire::signal::{MediaEndpoints, RejectReason, ZcToClient};
use mc_wire::srtp::MediaKey;
use mc_wire::status::Load;
use mc_wire::ticket::TicketClaims;
use mc_wire::MediaToken;
use mc_wire::{MeetingId, MmrId, ParticipantId};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// A signalling connection, numbered by the shell.
pub type SessionId = u64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ZcLimits {
    /// Meetings this controller hosts at most (product default 100).
    pub max_meetings: u32,
}

impl Default for ZcLimits {
    fn default() -> Self {
        ZcLimits { max_meetings: 100 }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ZcOutput {
    /// Send this message on the signalling session.
    Reply {
        session: SessionId,
        msg: ZcToClient,
    },
    /// Close the signalling session after any reply queued before this.
    Close {
        session: SessionId,
    },
    Mmr {
        mmr: MmrId,
        cmd: MmrCommand,
    },
    /// Ask the cloud whether this controller may host the meeting; answer with
    /// [`Zc::claim_answered`] or [`Zc::claim_failed`].
    Claim {
        meeting: MeetingId,
    },
    /// Tell the cloud this controller no longer hosts the meeting.
    Release {
        meeting: MeetingId,
        epoch: u64,
    },
}

/// What the ZC tells an MMR.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MmrCommand {
    /// Accept a binding with this token for this participant of this meeting.
    Admit {
        token: MediaToken,
        meeting: MeetingId,
        participant: ParticipantId,
    },
    /// Forget the token and stop forwarding to and from its holder.
    Revoke { token: MediaToken },
    /// The meeting also runs on these other MMRs: forward to each once (empty: no longer).
    Cascade {
        meeting: MeetingId,
        peers: Vec<CascadePeer>,
    },
}

#[derive(Debug, Clone)]
struct Meeting {
    /// Where the meeting was placed first (or, once that MMR is gone, the next of `cascade`).
    mmr: MmrId,
    /// The other MMRs it extended onto when `mmr` had no room, or was spread over from the
    /// start for its size hint (they link to each other). Each holds some of its participants,
    /// except that MMRs of a spread meeting may hold none until its crowd arrives.
    cascade: BTreeSet<MmrId>,
    /// How many participants its creator expects (from its tickets): a hinted meeting seats
    /// each participant on its least filled MMR, so it grows evenly over them.
    expected_participants: Option<u32>,
    participants: BTreeSet<ParticipantId>,
    /// Every participant seals its media under this; it changes when anyone leaves, so what
    /// follows is closed to them.
    key: MediaKey,
    /// Everyone is being sent away at once: no re-key for each departure.
    ending: bool,
}

#[derive(Debug, Clone)]
struct Participant {
    meeting: MeetingId,
    /// Which of its meeting's MMRs carries this participant's media.
    mmr: MmrId,
    token: MediaToken,
    session: SessionId,
    display_name: String,
    /// When the rejoin pass it holds is half spent: the next ping gets a fresh one.
    pass_renew_ms: u64,
}

/// A serialisable view of the zone, for status and tests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ZoneSnapshot {
    /// Each meeting's first MMR and its participants (on all its MMRs).
    pub meetings: BTreeMap<MeetingId, (MmrId, usize)>,
    /// The other MMRs of each meeting cascaded across several.
    pub cascades: BTreeMap<MeetingId, BTreeSet<MmrId>>,
    /// participants, capacity, healthy
    pub mmrs: BTreeMap<MmrId, (u32, u32, bool)>,
}

pub struct Zc {
    limits: ZcLimits,
    /// Drained by an operator: no new meetings here.
    draining: bool,
    rng: Rng,
    verifier: Option<TicketVerifier>,
    mmrs: BTreeMap<MmrId, MmrState>,
    meetings: BTreeMap<MeetingId, Meeting>,
    participants: BTreeMap<ParticipantId, Participant>,
    sessions: BTreeMap<SessionId, ParticipantId>,
    outputs: VecDeque<ZcOutput>,
    /// Set for a controller of an HA pair.
    ownership: Option<ownership::Ownership>,
    /// The MMR each recently emptied meeting was on (the last [`EMPTIED_KEPT`], oldest first):
    /// reopened, it goes back there (see [`place_new_meeting`]).
    emptied: VecDeque<(MeetingId, MmrId)>,
    /// Issues and checks rejoin passes (this controller's and its peer's).
    passes: RejoinKeys,
}

/// Emptied meetings whose MMR is remembered. Revocations take a link's round trip; a meeting
/// reopened after hundreds of others have emptied has long lost its grants.
const EMPTIED_KEPT: usize = 256;

impl Zc {
    pub fn new(limits: ZcLimits, mut rng: Rng) -> Zc {
        Zc {
            limits,
            draining: false,
            passes: RejoinKeys::new(rng.bytes::<32>()),
            rng,
            verifier: None,
            mmrs: BTreeMap::new(),
            meetings: BTreeMap::new(),
            participants: BTreeMap::new(),
            sessions: BTreeMap::new(),
            outputs: VecDeque::new(),
            ownership: None,
            emptied: VecDeque::new(),
        }
    }

    /// The cloud's ticket-verification key, learnt at registration. Until it is set every join is
    /// refused as `not_ready`.
    pub fn set_ticket_key(&mut self, public_key: Vec<u8>) {
        self.verifier = Some(TicketVerifier::new(public_key));
    }

    pub fn is_ready(&self) -> bool {
        self.verifier.is_some()
    }

    /// An MMR linked (or re-linked) with its participant capacity and media addresses.
    pub fn mmr_up(
        &mut self,
        id: MmrId,
        capacity: u32,
        media: MediaEndpoints,
        cascade_port: Option<u16>,
    ) {
        let (participants, draining) = self
            .mmrs
            .get(&id)
            .map_or((0, false), |m| (m.participants, m.draining));
        self.mmrs.insert(
            id,
            MmrState {
                capacity,
                participants,
                healthy: true,
                draining,
                media,
                cascade_port,
            },
        );
    }

    /// An MMR stopped reporting or its link closed. No meeting is placed on it any more; every
    /// participant it carried is told to rejoin (they are placed afresh on an MMR with room)
    /// and their sessions close, so its capacity leaves the zone's. A meeting cascaded across
    /// several MMRs loses only the participants of this one and goes on on the others.
    pub fn mmr_down(&mut self, now_ms: u64, id: &MmrId, reason: &str) {
        let Some(mmr) = self.mmrs.get_mut(id) else {
            return;
        };
        mmr.healthy = false;
        mmr.participants = 0;
        let touched: Vec<MeetingId> = self
            .meetings
            .iter()
            .filter(|(_, m)| &m.mmr == id || m.cascade.contains(id))
            .map(|(mid, _)| *mid)
            .collect();
        for mid in touched {
            let lost: Vec<ParticipantId> = self.meetings[&mid]
                .participants
                .iter()
                .filter(|pid| &self.participants[*pid].mmr == id)
                .copied()
                .collect();
            let m = self.meetings.get_mut(&mid).expect("listed above");
            for pid in &lost {
                m.participants.remove(pid);
            }
            if m.participants.is_empty() {
                self.meetings.remove(&mid);
                // Its participants come straight back (with a pass, should the cloud be away).
                self.hold_for_rejoin(now_ms, mid);
            } else {
                self.leave_mmr(mid, id);
            }
            for pid in lost {
                self.participants.remove(&pid);
                let session = self
                    .sessions
                    .iter()
                    .find(|(_, p)| **p == pid)
                    .map(|(s, _)| *s)
                    .expect("participants have sessions");
                self.sessions.remove(&session);
                let reason = format!("the MMR hosting meeting {mid} went down ({reason}); join again to be placed on another MMR");
                self.outputs.push_back(ZcOutput::Reply {
                    session,
                    msg: ZcToClient::Ended {
                        reason,
                        rejoin: true,
                    },
                });
                self.outputs.push_back(ZcOutput::Close { session });
            }
        }
    }

    /// The cloud ended a meeting: every participant is told why and disconnected, and the meeting
    /// releases its capacity. Returns how many participants were in it.
    pub fn end_meeting(&mut self, meeting: MeetingId, reason: &str) -> usize {
        let Some(m) = self.meetings.get_mut(&meeting) else {
            return 0;
        };
        m.ending = true;
        let pids: Vec<ParticipantId> = m.participants.iter().copied().collect();
        for pid in &pids {
            self.remove_participant(*pid, reason);
        }
        pids.len()
    }

    /// The cloud removed a participant: tell them why, disconnect them, revoke their media.
    /// Returns whether they were here.
    pub fn remove_participant(&mut self, participant: ParticipantId, reason: &str) -> bool {
        let Some(session) = self
            .sessions
            .iter()
            .find(|(_, p)| **p == participant)
            .map(|(s, _)| *s)
        else {
            return false;
        };
        self.outputs.push_back(ZcOutput::Reply {
            session,
            msg: ZcToClient::Ended {
                reason: reason.to_string(),
                rejoin: false,
            },
        });
        self.outputs.push_back(ZcOutput::Close { session });
        self.session_closed(session);
        true
    }

    /// Drains (or undrains) this controller: it takes no new meetings; the shell moves the ones
    /// it has with [`Zc::move_meeting`].
    pub fn set_draining(&mut self, on: bool) {
        self.draining = on;
    }

    pub fn is_draining(&self) -> bool {
        self.draining
    }

    /// Drains (or undrains) an MMR. Returns false for an MMR this ZC does not know.
    pub fn set_mmr_draining(&mut self, id: &MmrId, on: bool) -> bool {
        match self.mmrs.get_mut(id) {
            Some(m) => {
                m.draining = on;
                true
            }
            None => false,
        }
    }

    pub fn is_mmr_draining(&self, id: &MmrId) -> bool {
        self.mmrs.get(id).is_some_and(|m| m.draining)
    }

    /// The meetings on `mmr` (every meeting when `None`), to move one at a time.
    pub fn meetings_on(&self, mmr: Option<&MmrId>) -> Vec<MeetingId> {
        self.meetings
            .iter()
            .filter(|(_, m)| mmr.is_none_or(|id| &m.mmr == id || m.cascade.contains(id)))
            .map(|(id, _)| *id)
            .collect()
    }

    /// Moves a whole meeting at once (never part of it, so it is never on two MMRs): every
    /// participant is told why and to join again, which places the meeting afresh.
    pub fn move_meeting(&mut self, meeting: MeetingId, reason: &str) -> usize {
        let Some(m) = self.meetings.get_mut(&meeting) else {
            return 0;
        };
        m.ending = true;
        let pids: Vec<ParticipantId> = m.participants.iter().copied().collect();
        for pid in &pids {
            let Some(session) = self
                .sessions
                .iter()
                .find(|(_, p)| **p == *pid)
                .map(|(s, _)| *s)
            else {
                continue;
            };
            self.outputs.push_back(ZcOutput::Reply {
                session,
                msg: ZcToClient::Ended {
                    reason: reason.to_string(),
                    rejoin: true,
                },
            });
            self.outputs.push_back(ZcOutput::Close { session });
            self.session_closed(session);
        }
        pids.len()
    }

    /// The grants every participant on `id` holds, to repeat to an MMR that re-linked.
    pub fn grants_on(&self, id: &MmrId) -> Vec<MmrCommand> {
        self.participants
            .iter()
            .filter(|(_, p)| &p.mmr == id)
            .map(|(pid, p)| MmrCommand::Admit {
                token: p.token.clone(),
                meeting: p.meeting,
                participant: *pid,
            })
            .collect()
    }

    /// A signalling session asks to join with a ticket.
    pub fn join(&mut self, now_ms: u64, session: SessionId, ticket: &str) {
        if let Err((reason, message)) = self.admit(now_ms, session, ticket) {
            self.refuse(session, reason, message);
        }
    }

    fn refuse(&mut self, session: SessionId, reason: RejectReason, message: String) {
        self.outputs.push_back(ZcOutput::Reply {
            session,
            msg: ZcToClient::Rejected {
                reason,
                message,
                retry_after_ms: None,
            },
        });
        self.outputs.push_back(ZcOutput::Close { session });
    }

    fn admit(
        &mut self,
        now_ms: u64,
        session: SessionId,
        ticket: &str,
    ) -> Result<(), (RejectReason, String)> {
        if self.sessions.contains_key(&session) || self.is_parked(session) {
            return Err((
                RejectReason::ProtocolViolation,
                "this session already joined".into(),
            ));
        }
        let verifier = self.verifier.as_ref().ok_or((
            RejectReason::NotReady,
            "the controller has not registered with the cloud yet; retry shortly".to_string(),
        ))?;
        // The signature is checked here, once per join; the ticket is consumed only once the
        // participant is placed, so one refused for lack of room can retry the same ticket.
        let claims = verifier.verify(now_ms, ticket).map_err(ticket_rejection)?;
        self.admit_verified(now_ms, session, claims)
    }

    /// Admits a join whose ticket was verified (now, or before it waited for a claim).
    fn admit_verified(
        &mut self,
        now_ms: u64,
        session: SessionId,
        claims: TicketClaims,
    ) -> Result<(), (RejectReason, String)> {
        let meeting_id = claims.meeting;
        let mut extends = false;
        let mut spread = Vec::new();
        let mmr_id = match self.meetings.get(&meeting_id) {
            Some(m) => {
                let (seat, new) = self.seat_for(meeting_id, m)?;
                extends = new;
                seat
            }
            None => {
                if self.draining {
                    return Err((RejectReason::ControllerDraining, "this controller is being drained for maintenance and takes no new meetings".to_string()));
                }
                if self.meetings.len() as u32 >= self.limits.max_meetings {
                    return Err((
                        RejectReason::ControllerMeetingLimit,
                        format!(
                            "this controller already hosts its limit of {} meetings",
                            self.limits.max_meetings
                        ),
                    ));
                }
                let previous = self.emptied.iter().find(|(m, _)| *m == meeting_id);
                let mmr = place_new_meeting(&self.mmrs, previous.map(|(_, mmr)| mmr)).map_err(
                    |reason| {
                        let message = match reason {
                            RejectReason::NoMmrAvailable => {
                                "no healthy MMR is linked to this controller".to_string()
                            }
                            _ => format!(
                            "every MMR in the zone is at its participant limit ({} participants)",
                            self.load().participants
                        ),
                        };
                        (reason, message)
                    },
                )?;
                // In an HA pair the meeting must be this controller's before it is placed.
                match self.gate(session, &claims) {
                    ownership::Gate::Owned => {
                        if let Some(expected) = claims.expected_participants {
                            spread = spread_for(&self.mmrs, &mmr, expected);
                        }
                        mmr
                    }
                    ownership::Gate::Parked => return Ok(()),
                }
            }
        };
        // A pass (checked by its tag) arrives with a fresh nonce; without a verifier (a
        // controller that restarted while the cloud is away) only passes are admitted.
        if let Some(verifier) = self.verifier.as_mut() {
            verifier
                .consume(now_ms, &claims)
                .map_err(ticket_rejection)?;
        }
        if self.participants.contains_key(&claims.participant) {
            return Err((
                RejectReason::TicketReplayed,
                format!("participant {} is already in a meeting", claims.participant),
            ));
        }

        let token = MediaToken::from_bytes(self.rng.bytes::<16>().to_vec());
        let new_key = (!self.meetings.contains_key(&meeting_id))
            .then(|| MediaKey::new(1, self.rng.bytes::<32>()));
        let mmr = self
            .mmrs
            .get_mut(&mmr_id)
            .expect("placement chose a known MMR");
        mmr.participants += 1;
        let media = mmr.media.clone();
        let linked = extends || !spread.is_empty();
        let meeting = self.meetings.entry(meeting_id).or_insert_with(|| Meeting {
            mmr: mmr_id.clone(),
            cascade: spread.into_iter().collect(),
            participants: BTreeSet::new(),
            key: new_key.expect("drawn for a new meeting"),
            ending: false,
            expected_participants: claims.expected_participants,
        });
        meeting.participants.insert(claims.participant);
        if extends {
            meeting.cascade.insert(mmr_id.clone());
        }
        let media_key = meeting.key.clone();
        let rejoin_pass =
            self.issue_pass(now_ms, meeting_id, claims.participant, &claims.display_name);
        self.participants.insert(
            claims.participant,
            Participant {
                meeting: meeting_id,
                mmr: mmr_id.clone(),
                token: token.clone(),
                session,
                display_name: claims.display_name.clone(),
                pass_renew_ms: now_ms + PASS_TTL_MS / 2,
            },
        );
        self.sessions.insert(session, claims.participant);
        if linked {
            self.cascade_changed(meeting_id, &[]);
        }
        self.outputs.push_back(ZcOutput::Mmr {
            mmr: mmr_id,
            cmd: MmrCommand::Admit {
                token: token.clone(),
                meeting: meeting_id,
                participant: claims.participant,
            },
        });
        self.outputs.push_back(ZcOutput::Reply {
            session,
            msg: ZcToClient::Joined {
                meeting: meeting_id,
                participant: claims.participant,
                media,
                media_token: token,
                media_key,
                rejoin_pass: Some(rejoin_pass),
            },
        });
        Ok(())
    }

    /// The session left or its connection closed. Unknown sessions are ignored (a refused join
    /// closes too).
    pub fn session_closed(&mut self, session: SessionId) {
        self.unpark(session);
        let Some(pid) = self.sessions.remove(&session) else {
            return;
        };
        let p = self
            .participants
            .remove(&pid)
            .expect("sessions and participants agree");
        let meeting = self
            .meetings
            .get_mut(&p.meeting)
            .expect("participant's meeting exists");
        meeting.participants.remove(&pid);
        let mmr_id = p.mmr.clone();
        if meeting.participants.is_empty() {
            let home = meeting.mmr.clone();
            self.meetings.remove(&p.meeting);
            self.meeting_removed(p.meeting);
            self.emptied.retain(|(m, _)| *m != p.meeting);
            if self.emptied.len() == EMPTIED_KEPT {
                self.emptied.pop_front();
            }
            self.emptied.push_back((p.meeting, home));
        } else {
            let ending = meeting.ending;
            self.leave_unused(p.meeting);
            if !ending {
                self.rekey(p.meeting);
            }
        }
        if let Some(mmr) = self.mmrs.get_mut(&mmr_id) {
            mmr.participants -= 1;
        }
        self.outputs.push_back(ZcOutput::Mmr {
            mmr: mmr_id,
            cmd: MmrCommand::Revoke { token: p.token },
        });
    }

    /// A participant left a meeting that goes on: a new key for everyone still in it, so the one
    /// who left (who may still see packets on the network) cannot open what follows.
    fn rekey(&mut self, meeting: MeetingId) {
        let secret = self.rng.bytes::<32>();
        let m = self
            .meetings
            .get_mut(&meeting)
            .expect("a meeting that goes on");
        m.key = MediaKey::new(m.key.id + 1, secret);
        for pid in &m.participants {
            self.outputs.push_back(ZcOutput::Reply {
                session: self.participants[pid].session,
                msg: ZcToClient::Rekey {
                    media_key: m.key.clone(),
                },
            });
        }
    }

    pub fn poll_output(&mut self) -> Option<ZcOutput> {
        self.outputs.pop_front()
    }

    pub fn load(&self) -> Load {
        Load {
            participants: self.participants.len() as u32,
            meetings: self.meetings.len() as u32,
        }
    }

    /// What this controller can hold: its meeting limit and its healthy MMRs' participant limits.
    pub fn capacity(&self) -> Load {
        Load {
            participants: self
                .mmrs
                .values()
                .filter(|m| m.healthy)
                .map(|m| m.capacity)
                .sum(),
            meetings: self.limits.max_meetings,
        }
    }

    /// Whether [`snapshot`](Self::snapshot) would give `s` now, found without building one: the
    /// controller asks after every batch of inputs, most of which (keepalives, reports) change
    /// nothing it shows, and a snapshot copies every meeting.
    pub fn snapshot_is(&self, s: &ZoneSnapshot) -> bool {
        let ZoneSnapshot {
            meetings,
            cascades,
            mmrs,
        } = s;
        let cascades_are = self
            .meetings
            .values()
            .filter(|m| !m.cascade.is_empty())
            .count()
            == cascades.len()
            && cascades
                .iter()
                .all(|(id, on)| self.meetings.get(id).is_some_and(|m| &m.cascade == on));
        let meetings_are = self.meetings.len() == meetings.len()
            && self
                .meetings
                .iter()
                .zip(meetings)
                .all(|((id, m), (sid, (mmr, n)))| {
                    id == sid && m.mmr == *mmr && m.participants.len() == *n
                });
        meetings_are
            && cascades_are
            && self.mmrs.len() == mmrs.len()
            && self.mmrs.iter().zip(mmrs).all(|((id, m), (sid, shown))| {
                id == sid && (m.participants, m.capacity, m.healthy) == *shown
            })
    }

    pub fn snapshot(&self) -> ZoneSnapshot {
        ZoneSnapshot {
            meetings: self
                .meetings
                .iter()
                .map(|(id, m)| (*id, (m.mmr.clone(), m.participants.len())))
                .collect(),
            cascades: self
                .meetings
                .iter()
                .filter(|(_, m)| !m.cascade.is_empty())
                .map(|(id, m)| (*id, m.cascade.clone()))
                .collect(),
            mmrs: self
                .mmrs
                .iter()
                .map(|(id, m)| (id.clone(), (m.participants, m.capacity, m.healthy)))
                .collect(),
        }
    }
}

fn ticket_rejection(e: TicketError) -> (RejectReason, String) {
    let reason = match e {
        TicketError::Expired { .. } => RejectReason::TicketExpired,
        TicketError::Replayed => RejectReason::TicketReplayed,
        TicketError::Malformed(_) | TicketError::BadSignature => RejectReason::TicketInvalid,
    };
    (reason, e.to_string())
}

mod cascade;
mod ownership;
mod passes;
pub use ownership::ADOPTION_HOLD_MS;
#[cfg(test)]
mod tests;
