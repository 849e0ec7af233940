//! Rejoin passes (PROTOCOL §3.4): a controller's own short-lived credential for a participant it
//! admitted, so the participant can come back — to this controller or to its HA peer — without
//! a new ticket from the cloud, which may be unreachable just when an MMR or a controller fails.
//!
//! A pass has a join ticket's shape (the same claim bytes, `hex(claims) "." hex(tag)`), but its
//! tag is HMAC-SHA256 under the issuing controller's rejoin key instead of the cloud's Ed25519
//! signature. Each controller draws its key at start and hands it to its peer over the mutually
//! authenticated peer link, so either controller of a pair verifies the other's passes. A pass
//! admits again and again until it expires (a participant may need to come back more than
//! once); the controller gives a fresh one before the old one runs out.

use crate::ticket::TicketError;
use mc_wire::ticket::{Ticket, TicketClaims};
use mc_wire::ControllerId;
use ring::hmac;

/// How long a pass admits: long enough to outlast an outage's rejoins, short enough that a pass
/// read off a participant's machine is soon worthless.
pub const PASS_TTL_MS: u64 = 10 * 60_000;
/// Binds the tag to its purpose: no other HMAC in the system over the same bytes is a pass.
const CONTEXT: &[u8] = b"meeting-connector rejoin pass v1\0";

pub struct RejoinKeys {
    own: hmac::Key,
    own_secret: [u8; 32],
    /// The peer's key, learnt over the peer link, with whose it is.
    peer: Option<(ControllerId, [u8; 32], hmac::Key)>,
}

impl std::fmt::Debug for RejoinKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the keys themselves.
        f.debug_struct("RejoinKeys")
            .field("peer", &self.peer.as_ref().map(|(id, _, _)| id))
            .finish_non_exhaustive()
    }
}

impl RejoinKeys {
    /// `secret` comes from the controller's seeded random source.
    pub fn new(secret: [u8; 32]) -> RejoinKeys {
        RejoinKeys {
            own: hmac::Key::new(hmac::HMAC_SHA256, &secret),
            own_secret: secret,
            peer: None,
        }
    }

    /// This controller's key, for its peer only (the peer link is mutual TLS).
    pub fn own_secret(&self) -> [u8; 32] {
        self.own_secret
    }

    /// The peer's key, as its pings carry it.
    pub fn set_peer(&mut self, peer: ControllerId, secret: [u8; 32]) {
        if self
            .peer
            .as_ref()
            .is_some_and(|(id, s, _)| *id == peer && *s == secret)
        {
            return;
        }
        let key = hmac::Key::new(hmac::HMAC_SHA256, &secret);
        self.peer = Some((peer, secret, key));
    }

    /// A pass for `claims` (its expiry and nonce as given), in text form.
    pub fn issue(&self, claims: TicketClaims) -> String {
        let signed_bytes = claims.encode();
        let tag = hmac::sign(&self.own, &[CONTEXT, &signed_bytes].concat());
        Ticket {
            claims,
            signed_bytes,
            signature: tag.as_ref().to_vec(),
        }
        .to_text()
    }

    /// Checks a pass's shape, tag (this controller's key, then the peer's) and expiry.
    pub fn verify(&self, now_ms: u64, text: &str) -> Result<TicketClaims, TicketError> {
        let pass = Ticket::parse(text).map_err(|e| TicketError::Malformed(e.to_string()))?;
        let message = [CONTEXT, &pass.signed_bytes].concat();
        let keys = std::iter::once(&self.own).chain(self.peer.as_ref().map(|(_, _, k)| k));
        if !keys
            .into_iter()
            .any(|k| hmac::verify(k, &message, &pass.signature).is_ok())
        {
            return Err(TicketError::BadSignature);
        }
        if now_ms > pass.claims.expires_at_ms {
            return Err(TicketError::Expired {
                ago_ms: now_ms - pass.claims.expires_at_ms,
            });
        }
        Ok(pass.claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mc_wire::{MeetingId, ParticipantId};

    fn claims(expires_at_ms: u64) -> TicketClaims {
        TicketClaims {
            meeting: MeetingId(7),
            participant: ParticipantId(1),
            display_name: "Ada".into(),
            issued_at_ms: 1_000,
            expires_at_ms,
            nonce: [4; 16],
            expected_participants: None,
        }
    }

    #[test]
    fn a_pass_admits_at_its_issuer_and_its_peer_until_it_expires() {
        let a = RejoinKeys::new([1; 32]);
        let mut b = RejoinKeys::new([2; 32]);
        let pass = a.issue(claims(5_000));
        assert_eq!(a.verify(5_000, &pass), Ok(claims(5_000)));
        assert_eq!(
            b.verify(2_000, &pass),
            Err(TicketError::BadSignature),
            "not before b has a's key"
        );
        b.set_peer(ControllerId("a".into()), a.own_secret());
        assert_eq!(b.verify(2_000, &pass), Ok(claims(5_000)));
        assert_eq!(b.verify(2_000, &pass), Ok(claims(5_000)), "again and again");
        assert_eq!(
            b.verify(5_001, &pass),
            Err(TicketError::Expired { ago_ms: 1 })
        );
    }

    #[test]
    fn a_pass_with_one_byte_changed_or_a_cloud_ticket_is_refused() {
        let a = RejoinKeys::new([1; 32]);
        let pass = a.issue(claims(5_000));
        let (body, tag) = pass.split_once('.').unwrap();
        // The meeting id's last byte, in hex, changed: a pass for another meeting.
        let mut forged = body.to_string();
        let at = 2 * 8;
        let flipped = if &forged[at..at + 1] == "0" { "1" } else { "0" };
        forged.replace_range(at..at + 1, flipped);
        assert_eq!(
            a.verify(2_000, &format!("{forged}.{tag}")),
            Err(TicketError::BadSignature)
        );
        let cloud = crate::ticket::TicketSigner::from_seed(&[9; 32]);
        let ticket = cloud.sign(claims(5_000)).to_text();
        assert_eq!(a.verify(2_000, &ticket), Err(TicketError::BadSignature));
        assert!(matches!(
            a.verify(2_000, "not a pass"),
            Err(TicketError::Malformed(_))
        ));
    }
}
