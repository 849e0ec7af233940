//! Join tickets: what the cloud's management service hands a participant so a ZC will admit them.
//!
//! A ticket is `hex(claims) "." hex(signature)`, where `claims` is the fixed binary encoding below
//! and `signature` is Ed25519 by the cloud over exactly those bytes. Signing the bytes (not a
//! re-serialisation) means there is no canonical-form ambiguity. ZCs learn the cloud's public key
//! when they register with status sync; signing and verifying live in `mc-core`.
//!
//! ```text
//! version u8 = 1 | meeting u64 | participant u64 | issued_at_ms u64 | expires_at_ms u64
//! | nonce [16] | name_len u16 | display name (UTF-8, at most 64 bytes)
//! ```
//!
//! Version 2 is version 1 followed by `expected_participants u32` (at least 1): the meeting's
//! size hint, which the ZC uses to spread a large meeting over several MMRs from its first
//! join. Claims without a hint are still encoded as version 1, byte for byte, so a ZC that
//! predates the hint admits every meeting that has none.

use crate::{hex, DecodeError, MeetingId, ParticipantId};

pub const VERSION: u8 = 1;
/// The version of claims that carry a size hint.
pub const VERSION_HINTED: u8 = 2;
pub const MAX_DISPLAY_NAME_BYTES: usize = 64;
/// Bounds the text form so a peer cannot hand us a megabyte "ticket".
pub const MAX_TICKET_CHARS: usize = 1024;
const WHAT: &str = "join ticket";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketClaims {
    pub meeting: MeetingId,
    pub participant: ParticipantId,
    pub display_name: String,
    pub issued_at_ms: u64,
    pub expires_at_ms: u64,
    /// Makes every ticket unique, so a ZC can refuse a replayed one.
    pub nonce: [u8; 16],
    /// How many participants the meeting's creator expects (at least 1), if they said.
    pub expected_participants: Option<u32>,
}

impl TicketClaims {
    pub fn encode(&self) -> Vec<u8> {
        assert!(
            self.display_name.len() <= MAX_DISPLAY_NAME_BYTES,
            "display name too long"
        );
        let mut v = Vec::with_capacity(55 + self.display_name.len());
        v.push(match self.expected_participants {
            Some(_) => VERSION_HINTED,
            None => VERSION,
        });
        v.extend_from_slice(&self.meeting.0.to_be_bytes());
        v.extend_from_slice(&self.participant.0.to_be_bytes());
        v.extend_from_slice(&self.issued_at_ms.to_be_bytes());
        v.extend_from_slice(&self.expires_at_ms.to_be_bytes());
        v.extend_from_slice(&self.nonce);
        v.extend_from_slice(&(self.display_name.len() as u16).to_be_bytes());
        v.extend_from_slice(self.display_name.as_bytes());
        if let Some(n) = self.expected_participants {
            assert!(n >= 1, "a size hint is at least 1");
            v.extend_from_slice(&n.to_be_bytes());
        }
        v
    }

    pub fn decode(b: &[u8]) -> Result<TicketClaims, DecodeError> {
        DecodeError::need(WHAT, 51, b.len())?;
        let hint_len = match b[0] {
            VERSION => 0,
            VERSION_HINTED => 4,
            version => {
                return Err(DecodeError::UnsupportedVersion {
                    what: WHAT,
                    version,
                })
            }
        };
        let u64_at = |i: usize| u64::from_be_bytes(b[i..i + 8].try_into().expect("8 bytes"));
        let name_len = u16::from_be_bytes([b[49], b[50]]) as usize;
        if name_len > MAX_DISPLAY_NAME_BYTES {
            return Err(DecodeError::TooLarge {
                what: "ticket display name",
                len: name_len,
                max: MAX_DISPLAY_NAME_BYTES,
            });
        }
        let name_end = 51 + name_len;
        if b.len() != name_end + hint_len {
            return Err(DecodeError::malformed(
                WHAT,
                format!("{} bytes, expected {}", b.len(), name_end + hint_len),
            ));
        }
        let display_name = String::from_utf8(b[51..name_end].to_vec())
            .map_err(|_| DecodeError::malformed(WHAT, "display name is not UTF-8"))?;
        let expected_participants = match hint_len {
            0 => None,
            _ => match u32::from_be_bytes(b[name_end..].try_into().expect("4 bytes")) {
                0 => return Err(DecodeError::malformed(WHAT, "expected participants is 0")),
                n => Some(n),
            },
        };
        Ok(TicketClaims {
            meeting: MeetingId(u64_at(1)),
            participant: ParticipantId(u64_at(9)),
            issued_at_ms: u64_at(17),
            expires_at_ms: u64_at(25),
            nonce: b[33..49].try_into().expect("16 bytes"),
            display_name,
            expected_participants,
        })
    }
}

/// A ticket as carried: the signed bytes, their decoding, and the signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ticket {
    pub claims: TicketClaims,
    pub signed_bytes: Vec<u8>,
    pub signature: Vec<u8>,
}

impl Ticket {
    pub fn to_text(&self) -> String {
        format!(
            "{}.{}",
            hex::encode(&self.signed_bytes),
            hex::encode(&self.signature)
        )
    }

    /// Parses the text form. This checks shape only; the signature is checked by the ZC.
    pub fn parse(text: &str) -> Result<Ticket, DecodeError> {
        if text.len() > MAX_TICKET_CHARS {
            return Err(DecodeError::TooLarge {
                what: WHAT,
                len: text.len(),
                max: MAX_TICKET_CHARS,
            });
        }
        let (claims, sig) = text.split_once('.').ok_or_else(|| {
            DecodeError::malformed(WHAT, "missing '.' between claims and signature")
        })?;
        let signed_bytes = hex::decode(WHAT, claims)?;
        let signature = hex::decode(WHAT, sig)?;
        Ok(Ticket {
            claims: TicketClaims::decode(&signed_bytes)?,
            signed_bytes,
            signature,
        })
    }
}
