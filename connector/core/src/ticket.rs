//! Signing (cloud management) and verifying (ZC) join tickets, Ed25519 over the ticket's claim bytes.

use mc_wire::ticket::{Ticket, TicketClaims};
use ring::signature::{Ed25519KeyPair, KeyPair, UnparsedPublicKey, ED25519};
use std::collections::BTreeMap;
use thiserror::Error;

/// The cloud's signing key. Built from a 32-byte seed the caller supplies (and persists).
pub struct TicketSigner {
    key: Ed25519KeyPair,
}

impl TicketSigner {
    pub fn from_seed(seed: &[u8; 32]) -> TicketSigner {
        TicketSigner {
            key: Ed25519KeyPair::from_seed_unchecked(seed)
                .expect("any 32 bytes are an Ed25519 seed"),
        }
    }

    pub fn public_key(&self) -> Vec<u8> {
        self.key.public_key().as_ref().to_vec()
    }

    pub fn sign(&self, claims: TicketClaims) -> Ticket {
        let signed_bytes = claims.encode();
        let signature = self.key.sign(&signed_bytes).as_ref().to_vec();
        Ticket {
            claims,
            signed_bytes,
            signature,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TicketError {
    #[error("the join ticket is malformed: {0}")]
    Malformed(String),
    #[error(
        "the join ticket's signature does not verify: it was not issued by this deployment's cloud"
    )]
    BadSignature,
    #[error("the join ticket expired {ago_ms} ms ago; ask the cloud for a new one")]
    Expired { ago_ms: u64 },
    #[error("the join ticket was already used; ask the cloud for a new one")]
    Replayed,
}

/// Verifies tickets and remembers used nonces until their tickets expire, so each ticket admits
/// exactly once.
#[derive(Debug)]
pub struct TicketVerifier {
    public_key: Vec<u8>,
    /// nonce → expiry; pruned as tickets expire, so it is bounded by the issue rate × lifetime.
    used: BTreeMap<[u8; 16], u64>,
}

impl TicketVerifier {
    pub fn new(public_key: Vec<u8>) -> TicketVerifier {
        TicketVerifier {
            public_key,
            used: BTreeMap::new(),
        }
    }

    /// Checks shape, signature and expiry, then consumes the ticket's nonce.
    pub fn verify_and_consume(
        &mut self,
        now_ms: u64,
        text: &str,
    ) -> Result<TicketClaims, TicketError> {
        let claims = self.verify(now_ms, text)?;
        self.consume(now_ms, &claims)?;
        Ok(claims)
    }

    /// Consumes a ticket already verified with [`TicketVerifier::verify`]: its signature is not
    /// checked again, only its expiry and whether it was used.
    pub fn consume(&mut self, now_ms: u64, claims: &TicketClaims) -> Result<(), TicketError> {
        if now_ms > claims.expires_at_ms {
            return Err(TicketError::Expired {
                ago_ms: now_ms - claims.expires_at_ms,
            });
        }
        self.used.retain(|_, expires| *expires >= now_ms);
        if self
            .used
            .insert(claims.nonce, claims.expires_at_ms)
            .is_some()
        {
            return Err(TicketError::Replayed);
        }
        Ok(())
    }

    /// Checks shape, signature and expiry without consuming.
    pub fn verify(&self, now_ms: u64, text: &str) -> Result<TicketClaims, TicketError> {
        let ticket = Ticket::parse(text).map_err(|e| TicketError::Malformed(e.to_string()))?;
        UnparsedPublicKey::new(&ED25519, &self.public_key)
            .verify(&ticket.signed_bytes, &ticket.signature)
            .map_err(|_| TicketError::BadSignature)?;
        if now_ms > ticket.claims.expires_at_ms {
            return Err(TicketError::Expired {
                ago_ms: now_ms - ticket.claims.expires_at_ms,
            });
        }
        Ok(ticket.claims)
    }

    pub fn remembered_nonces(&self) -> usize {
        self.used.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mc_wire::{MeetingId, ParticipantId};

    fn claims(expires_at_ms: u64, nonce: u8) -> TicketClaims {
        TicketClaims {
            meeting: MeetingId(7),
            participant: ParticipantId(1),
            display_name: "Ada".into(),
            issued_at_ms: 1_000,
            expires_at_ms,
            nonce: [nonce; 16],
            expected_participants: None,
        }
    }

    #[test]
    fn a_ticket_admits_once_until_it_expires() {
        let signer = TicketSigner::from_seed(&[1; 32]);
        let mut v = TicketVerifier::new(signer.public_key());
        let t = signer.sign(claims(5_000, 1)).to_text();
        assert_eq!(
            v.verify_and_consume(2_000, &t).unwrap().meeting,
            MeetingId(7)
        );
        assert_eq!(v.verify_and_consume(2_001, &t), Err(TicketError::Replayed));
        assert_eq!(
            v.verify_and_consume(5_001, &t),
            Err(TicketError::Expired { ago_ms: 1 })
        );
    }

    #[test]
    fn another_clouds_ticket_is_refused() {
        let ours = TicketSigner::from_seed(&[1; 32]);
        let theirs = TicketSigner::from_seed(&[2; 32]);
        let mut v = TicketVerifier::new(ours.public_key());
        let t = theirs.sign(claims(5_000, 1)).to_text();
        assert_eq!(
            v.verify_and_consume(2_000, &t),
            Err(TicketError::BadSignature)
        );
    }

    #[test]
    fn a_tampered_ticket_is_refused() {
        let signer = TicketSigner::from_seed(&[1; 32]);
        let v = TicketVerifier::new(signer.public_key());
        let mut t = signer.sign(claims(5_000, 1));
        t.signed_bytes = claims(9_000_000, 1).encode();
        assert_eq!(
            v.verify(2_000, &t.to_text()),
            Err(TicketError::BadSignature)
        );
        assert!(matches!(
            v.verify(0, "zz.11"),
            Err(TicketError::Malformed(_))
        ));
    }

    #[test]
    fn used_nonces_are_forgotten_once_expired() {
        let signer = TicketSigner::from_seed(&[1; 32]);
        let mut v = TicketVerifier::new(signer.public_key());
        for n in 0..10 {
            v.verify_and_consume(1_000, &signer.sign(claims(2_000, n)).to_text())
                .unwrap();
        }
        assert_eq!(v.remembered_nonces(), 10);
        v.verify_and_consume(3_000, &signer.sign(claims(9_000, 99)).to_text())
            .unwrap();
        assert_eq!(v.remembered_nonces(), 1);
    }
}
