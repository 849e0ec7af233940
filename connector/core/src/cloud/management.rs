//! Cloud management: meetings and the join tickets that let participants into them.

use crate::ticket::TicketSigner;
use crate::Rng;
use mc_wire::ticket::{TicketClaims, MAX_DISPLAY_NAME_BYTES};
use mc_wire::{MeetingId, ParticipantId};
use serde::Serialize;
use std::collections::BTreeMap;
use thiserror::Error;

pub const MAX_TOPIC_BYTES: usize = 200;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Meeting {
    pub id: MeetingId,
    pub topic: String,
    pub created_at_ms: u64,
    pub ended: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ManagementError {
    #[error("meeting {0} does not exist")]
    NoSuchMeeting(MeetingId),
    #[error("meeting {0} has ended")]
    MeetingEnded(MeetingId),
    #[error("invalid {field}: {reason}")]
    Invalid { field: &'static str, reason: String },
}

pub struct Management {
    signer: TicketSigner,
    ticket_ttl_ms: u64,
    rng: Rng,
    meetings: BTreeMap<MeetingId, Meeting>,
    next_meeting: u64,
    next_participant: u64,
}

impl Management {
    pub fn new(signer: TicketSigner, ticket_ttl_ms: u64, rng: Rng) -> Management {
        Management { signer, ticket_ttl_ms, rng, meetings: BTreeMap::new(), next_meeting: 1, next_participant: 1 }
    }

    pub fn ticket_public_key(&self) -> Vec<u8> {
        self.signer.public_key()
    }

    pub fn create_meeting(&mut self, now_ms: u64, topic: &str) -> Result<Meeting, ManagementError> {
        let topic = topic.trim();
        if topic.is_empty() || topic.len() > MAX_TOPIC_BYTES {
            return Err(ManagementError::Invalid { field: "topic", reason: format!("must be 1 to {MAX_TOPIC_BYTES} bytes") });
        }
        let id = MeetingId(self.next_meeting);
        self.next_meeting += 1;
        let meeting = Meeting { id, topic: topic.to_string(), created_at_ms: now_ms, ended: false };
        self.meetings.insert(id, meeting.clone());
        Ok(meeting)
    }

    pub fn meeting(&self, id: MeetingId) -> Option<&Meeting> {
        self.meetings.get(&id)
    }

    pub fn meetings(&self) -> impl Iterator<Item = &Meeting> {
        self.meetings.values()
    }

    /// Issues a ticket for a new participant of a live meeting.
    pub fn issue_ticket(&mut self, now_ms: u64, meeting: MeetingId, display_name: &str) -> Result<(ParticipantId, String, u64), ManagementError> {
        let m = self.meetings.get(&meeting).ok_or(ManagementError::NoSuchMeeting(meeting))?;
        if m.ended {
            return Err(ManagementError::MeetingEnded(meeting));
        }
        let name = display_name.trim();
        if name.is_empty() || name.len() > MAX_DISPLAY_NAME_BYTES || name.chars().any(char::is_control) {
            return Err(ManagementError::Invalid {
                field: "display_name",
                reason: format!("must be 1 to {MAX_DISPLAY_NAME_BYTES} bytes of printable text"),
            });
        }
        let participant = ParticipantId(self.next_participant);
        self.next_participant += 1;
        let expires_at_ms = now_ms + self.ticket_ttl_ms;
        let claims = TicketClaims {
            meeting,
            participant,
            display_name: name.to_string(),
            issued_at_ms: now_ms,
            expires_at_ms,
            nonce: self.rng.bytes(),
        };
        Ok((participant, self.signer.sign(claims).to_text(), expires_at_ms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ticket::TicketVerifier;

    #[test]
    fn tickets_name_the_meeting_and_verify_with_the_published_key() {
        let mut m = Management::new(TicketSigner::from_seed(&[3; 32]), 60_000, Rng::seed_from_u64(5));
        let meeting = m.create_meeting(1_000, " Standup ").unwrap();
        assert_eq!(meeting.topic, "Standup");
        let (pid, ticket, expires) = m.issue_ticket(2_000, meeting.id, "Grace").unwrap();
        assert_eq!(expires, 62_000);
        let claims = TicketVerifier::new(m.ticket_public_key()).verify(3_000, &ticket).unwrap();
        assert_eq!((claims.meeting, claims.participant), (meeting.id, pid));
    }

    #[test]
    fn bad_requests_say_what_is_wrong() {
        let mut m = Management::new(TicketSigner::from_seed(&[3; 32]), 60_000, Rng::seed_from_u64(5));
        assert!(matches!(m.create_meeting(0, "  "), Err(ManagementError::Invalid { field: "topic", .. })));
        assert_eq!(m.issue_ticket(0, MeetingId(42), "x").unwrap_err(), ManagementError::NoSuchMeeting(MeetingId(42)));
        let id = m.create_meeting(0, "t").unwrap().id;
        assert!(matches!(m.issue_ticket(0, id, "a\u{7}b"), Err(ManagementError::Invalid { field: "display_name", .. })));
    }
}
