//! Rejoin passes at the ZC (PROTOCOL §3.4): each admitted participant gets one in `joined` and a
//! fresh one on a ping once it is half spent; a join with a pass is admitted as one with a
//! ticket, except that the cloud is not needed. A participant still here on another connection
//! (the old one not yet noticed as gone) moves to the new one, keeping its seat and media token.

use super::{ticket_rejection, SessionId, Zc, ZcOutput};
use crate::ticket::TicketError;
use crate::zc::rejoin::PASS_TTL_MS;
use mc_wire::signal::{RejectReason, ZcToClient};
use mc_wire::ticket::TicketClaims;
use mc_wire::{ControllerId, MeetingId, ParticipantId};

impl Zc {
    /// A fresh pass for a participant admitted now. It carries the meeting's size hint, so a
    /// meeting placed afresh from passes (its MMR died, or its controller did) is spread again.
    pub(super) fn issue_pass(
        &mut self,
        now_ms: u64,
        meeting: MeetingId,
        participant: ParticipantId,
        display_name: &str,
    ) -> String {
        self.passes.issue(TicketClaims {
            meeting,
            participant,
            display_name: display_name.to_string(),
            issued_at_ms: now_ms,
            expires_at_ms: now_ms + PASS_TTL_MS,
            nonce: self.rng.bytes::<16>(),
            expected_participants: self
                .meetings
                .get(&meeting)
                .and_then(|m| m.expected_participants),
        })
    }

    /// This controller's rejoin key, for its HA peer (over the peer link only).
    pub fn rejoin_secret(&self) -> [u8; 32] {
        self.passes.own_secret()
    }

    /// The HA peer's rejoin key, from its ping: its passes are honoured here too.
    pub fn set_peer_rejoin_secret(&mut self, peer: ControllerId, secret: [u8; 32]) {
        self.passes.set_peer(peer, secret);
    }

    /// A signalling session asks to join with a rejoin pass.
    pub fn rejoin(&mut self, now_ms: u64, session: SessionId, pass: &str) {
        if let Err((reason, message)) = self.admit_pass(now_ms, session, pass) {
            self.refuse(session, reason, message);
        }
    }

    fn admit_pass(
        &mut self,
        now_ms: u64,
        session: SessionId,
        pass: &str,
    ) -> Result<(), (RejectReason, String)> {
        if self.sessions.contains_key(&session) || self.is_parked(session) {
            return Err((
                RejectReason::ProtocolViolation,
                "this session already joined".into(),
            ));
        }
        let mut claims = self.passes.verify(now_ms, pass).map_err(|e| match e {
            // Not the cloud's words: a pass is a controller's, and an honest one fails here when
            // its issuer restarted (its key went with it) or never reached this controller.
            TicketError::BadSignature => (
                RejectReason::TicketInvalid,
                "the rejoin pass was issued neither by this controller nor by a peer whose key it \
                 holds (a restarted controller's passes lapse): join with a ticket from the cloud"
                    .to_string(),
            ),
            e => {
                let (reason, message) = ticket_rejection(e);
                (reason, message.replace("join ticket", "rejoin pass"))
            }
        })?;
        if self.participants.contains_key(&claims.participant) {
            return self.resume(now_ms, session, claims.participant, claims.meeting);
        }
        // A pass admits many times; each use is one admission of its own.
        claims.nonce = self.rng.bytes::<16>();
        self.admit_verified(now_ms, session, claims)
    }

    /// The participant is still here on an older connection: the new one takes its place.
    fn resume(
        &mut self,
        now_ms: u64,
        session: SessionId,
        participant: ParticipantId,
        meeting: MeetingId,
    ) -> Result<(), (RejectReason, String)> {
        let p = &self.participants[&participant];
        if p.meeting != meeting {
            return Err((
                RejectReason::TicketReplayed,
                format!(
                    "participant {participant} is already in meeting {}",
                    p.meeting
                ),
            ));
        }
        let (old, name, token) = (p.session, p.display_name.clone(), p.token.clone());
        let m = &self.meetings[&meeting];
        let (media, media_key) = (self.mmrs[&p.mmr].media.clone(), m.key.clone());
        let rejoin_pass = self.issue_pass(now_ms, meeting, participant, &name);
        let p = self.participants.get_mut(&participant).expect("present");
        p.session = session;
        p.pass_renew_ms = now_ms + PASS_TTL_MS / 2;
        self.sessions.remove(&old);
        self.sessions.insert(session, participant);
        self.outputs.push_back(ZcOutput::Reply {
            session: old,
            msg: ZcToClient::Ended {
                reason: "this participant joined again on another connection".into(),
                rejoin: false,
            },
        });
        self.outputs.push_back(ZcOutput::Close { session: old });
        self.outputs.push_back(ZcOutput::Reply {
            session,
            msg: ZcToClient::Joined {
                meeting,
                participant,
                media,
                media_token: token,
                media_key,
                rejoin_pass: Some(rejoin_pass),
            },
        });
        Ok(())
    }

    /// The session pinged: a fresh pass if the one it holds is half spent.
    pub fn pinged(&mut self, now_ms: u64, session: SessionId) {
        let Some(pid) = self.sessions.get(&session).copied() else {
            return;
        };
        let p = &self.participants[&pid];
        if now_ms < p.pass_renew_ms {
            return;
        }
        let (meeting, name) = (p.meeting, p.display_name.clone());
        let pass = self.issue_pass(now_ms, meeting, pid, &name);
        self.participants
            .get_mut(&pid)
            .expect("present")
            .pass_renew_ms = now_ms + PASS_TTL_MS / 2;
        self.outputs.push_back(ZcOutput::Reply {
            session,
            msg: ZcToClient::RejoinPass { pass },
        });
    }
}
