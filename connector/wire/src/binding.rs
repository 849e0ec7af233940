//! The media binding: a STUN-style (RFC 8489 layout) exchange on the media port that proves the
//! client holds a media token from the ZC, without sending it, and tells the MMR where to send
//! the meeting's media.
//!
//! ```text
//! 0       2        4              8                    20
//! +-------+--------+--------------+--------------------+------------------+
//! | type  | length | magic cookie | transaction id     | attributes (TLV, |
//! | u16   | u16    | 0x2112A442   | 12 bytes           |  4-byte aligned) |
//! +-------+--------+--------------+--------------------+------------------+
//! ```
//!
//! Types: `0x0001` request, `0x0101` success, `0x0111` error. A request names its grant with
//! `USERNAME (0x0006)` (the token's [`BindingId`], not the token), carries a strictly increasing
//! `BINDING-COUNTER (0x4002)` and ends with `MESSAGE-INTEGRITY-SHA256 (0x001C)`: an HMAC-SHA256
//! keyed by the token, as STUN short-term credentials do. A success carries `XOR-MAPPED-ADDRESS
//! (0x0020)` and the same integrity, so a client knows the answer came from the MMR that holds
//! its grant; an error carries `ERROR-CODE (0x0009)` and integrity when the MMR knows the grant.
//! Unknown attributes are skipped; attributes after the integrity are ignored (RFC 8489 §14.6).
//! The first two bits are `00`, so binding messages and RTP (`10`) share the port.

use crate::{DecodeError, MediaToken};
use ring::hmac;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

pub const MAGIC_COOKIE: u32 = 0x2112_A442;
const HEADER_BYTES: usize = 20;
const TYPE_REQUEST: u16 = 0x0001;
const TYPE_SUCCESS: u16 = 0x0101;
const TYPE_ERROR: u16 = 0x0111;
const ATTR_USERNAME: u16 = 0x0006;
const ATTR_ERROR_CODE: u16 = 0x0009;
const ATTR_MESSAGE_INTEGRITY_SHA256: u16 = 0x001C;
const ATTR_XOR_MAPPED_ADDRESS: u16 = 0x0020;
const ATTR_BINDING_COUNTER: u16 = 0x4002;
/// The full HMAC-SHA256 (RFC 8489 allows truncation; we never truncate).
pub const INTEGRITY_BYTES: usize = 32;
const WHAT: &str = "binding message";

pub type TransactionId = [u8; 12];

/// What a request names its grant by: derived from the media token by a keyed hash, so it says
/// nothing about the token, and the MMR finds the key to check the request's integrity with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BindingId(pub [u8; 16]);

impl BindingId {
    pub const BYTES: usize = 16;

    /// HMAC-SHA256(token, "mc binding id"), first 16 bytes.
    pub fn of(token: &MediaToken) -> BindingId {
        let key = hmac::Key::new(hmac::HMAC_SHA256, token.as_bytes());
        let tag = hmac::sign(&key, b"mc binding id");
        BindingId(tag.as_ref()[..Self::BYTES].try_into().expect("32-byte tag"))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Binding {
    Request {
        txn: TransactionId,
        username: BindingId,
        /// Strictly increasing per grant: the MMR refuses one it has seen or that is too old, so
        /// a captured request cannot be replayed.
        counter: u64,
    },
    Success {
        txn: TransactionId,
        mapped: SocketAddr,
    },
    Error {
        txn: TransactionId,
        code: u16,
        reason: String,
    },
}

/// Error codes in `Binding::Error`, STUN numbering.
pub mod code {
    pub const BAD_REQUEST: u16 = 400;
    pub const UNAUTHORIZED: u16 = 401;
    /// The counter was seen already or is too old: a replay, or a request that arrived late.
    pub const STALE: u16 = 438;
}

/// A decoded message and, if it carried one, where its integrity lies, to check with a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    pub msg: Binding,
    integrity: Option<Integrity>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Integrity {
    /// The message bytes the HMAC covers: everything before the integrity attribute, with the
    /// header's length field counting through the end of that attribute.
    covered: Vec<u8>,
    tag: [u8; INTEGRITY_BYTES],
}

impl Decoded {
    /// Whether the message carries integrity that checks with `token`.
    pub fn verify(&self, token: &MediaToken) -> bool {
        self.integrity
            .as_ref()
            .is_some_and(|i| hmac::verify(&integrity_key(token), &i.covered, &i.tag).is_ok())
    }

    pub fn has_integrity(&self) -> bool {
        self.integrity.is_some()
    }
}

fn integrity_key(token: &MediaToken) -> hmac::Key {
    hmac::Key::new(hmac::HMAC_SHA256, token.as_bytes())
}

impl Binding {
    pub fn txn(&self) -> &TransactionId {
        match self {
            Binding::Request { txn, .. }
            | Binding::Success { txn, .. }
            | Binding::Error { txn, .. } => txn,
        }
    }

    /// Encodes with MESSAGE-INTEGRITY-SHA256 keyed by `token`. Requests and successes are always
    /// signed; only an error about a grant the MMR does not know goes without.
    pub fn encode_signed(&self, token: &MediaToken) -> Vec<u8> {
        let mut out = self.encode_attrs();
        let len = out.len() - HEADER_BYTES + 4 + INTEGRITY_BYTES;
        out[2..4].copy_from_slice(&(len as u16).to_be_bytes());
        let tag = hmac::sign(&integrity_key(token), &out);
        out.extend_from_slice(&attr(ATTR_MESSAGE_INTEGRITY_SHA256, tag.as_ref()));
        out
    }

    /// Encodes without integrity: an error about a grant the MMR does not know (it has no key).
    pub fn encode_unsigned(&self) -> Vec<u8> {
        self.encode_attrs()
    }

    fn encode_attrs(&self) -> Vec<u8> {
        let attrs = match self {
            Binding::Request {
                username, counter, ..
            } => {
                let mut v = attr(ATTR_USERNAME, &username.0);
                v.extend_from_slice(&attr(ATTR_BINDING_COUNTER, &counter.to_be_bytes()));
                v
            }
            Binding::Success { mapped, txn } => {
                attr(ATTR_XOR_MAPPED_ADDRESS, &xor_address(mapped, txn))
            }
            Binding::Error { code, reason, .. } => {
                let mut v = vec![0, 0, (code / 100) as u8, (code % 100) as u8];
                v.extend_from_slice(reason.as_bytes());
                attr(ATTR_ERROR_CODE, &v)
            }
        };
        let ty = match self {
            Binding::Request { .. } => TYPE_REQUEST,
            Binding::Success { .. } => TYPE_SUCCESS,
            Binding::Error { .. } => TYPE_ERROR,
        };
        let mut out = Vec::with_capacity(HEADER_BYTES + attrs.len() + 4 + INTEGRITY_BYTES);
        out.extend_from_slice(&ty.to_be_bytes());
        out.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
        out.extend_from_slice(&MAGIC_COOKIE.to_be_bytes());
        out.extend_from_slice(self.txn());
        out.extend_from_slice(&attrs);
        out
    }

    /// Decodes a message. Whether its integrity checks is a separate question
    /// ([`Decoded::verify`]): only the holder of the token can answer it.
    pub fn decode(p: &[u8]) -> Result<Decoded, DecodeError> {
        DecodeError::need(WHAT, HEADER_BYTES, p.len())?;
        let ty = u16::from_be_bytes([p[0], p[1]]);
        let len = u16::from_be_bytes([p[2], p[3]]) as usize;
        if u32::from_be_bytes([p[4], p[5], p[6], p[7]]) != MAGIC_COOKIE {
            return Err(DecodeError::malformed(WHAT, "bad magic cookie"));
        }
        if !len.is_multiple_of(4) || HEADER_BYTES + len != p.len() {
            return Err(DecodeError::malformed(
                WHAT,
                format!(
                    "length field {len} does not match {} attribute bytes",
                    p.len() - HEADER_BYTES
                ),
            ));
        }
        let txn: TransactionId = p[8..20].try_into().expect("12 bytes");
        let (mut username, mut counter, mut mapped, mut error, mut integrity) =
            (None, None, None, None, None);
        let mut at_offset = HEADER_BYTES;
        while at_offset < p.len() {
            let rest = &p[at_offset..];
            DecodeError::need(WHAT, 4, rest.len())?;
            let at = u16::from_be_bytes([rest[0], rest[1]]);
            let alen = u16::from_be_bytes([rest[2], rest[3]]) as usize;
            let padded = 4 + alen.div_ceil(4) * 4;
            DecodeError::need(WHAT, padded, rest.len())?;
            let value = &rest[4..4 + alen];
            match at {
                ATTR_USERNAME => username = Some(value),
                ATTR_BINDING_COUNTER => counter = Some(value),
                ATTR_XOR_MAPPED_ADDRESS => mapped = Some(value),
                ATTR_ERROR_CODE => error = Some(value),
                ATTR_MESSAGE_INTEGRITY_SHA256 => {
                    let tag: [u8; INTEGRITY_BYTES] = value.try_into().map_err(|_| {
                        DecodeError::malformed(
                            WHAT,
                            format!("MESSAGE-INTEGRITY-SHA256 of {alen} bytes"),
                        )
                    })?;
                    let mut covered = p[..at_offset].to_vec();
                    let through = (at_offset + padded - HEADER_BYTES) as u16;
                    covered[2..4].copy_from_slice(&through.to_be_bytes());
                    integrity = Some(Integrity { covered, tag });
                    // RFC 8489 §14.6: what follows the integrity is not covered by it; ignore it.
                    break;
                }
                _ => {}
            }
            at_offset += padded;
        }
        let msg = match ty {
            TYPE_REQUEST => {
                let username = username
                    .ok_or_else(|| DecodeError::malformed(WHAT, "request without USERNAME"))?;
                let username = BindingId(username.try_into().map_err(|_| {
                    DecodeError::malformed(WHAT, format!("USERNAME of {} bytes", username.len()))
                })?);
                let counter = counter.ok_or_else(|| {
                    DecodeError::malformed(WHAT, "request without BINDING-COUNTER")
                })?;
                let counter = u64::from_be_bytes(counter.try_into().map_err(|_| {
                    DecodeError::malformed(
                        WHAT,
                        format!("BINDING-COUNTER of {} bytes", counter.len()),
                    )
                })?);
                if integrity.is_none() {
                    return Err(DecodeError::malformed(
                        WHAT,
                        "request without MESSAGE-INTEGRITY-SHA256",
                    ));
                }
                Binding::Request {
                    txn,
                    username,
                    counter,
                }
            }
            TYPE_SUCCESS => {
                let v = mapped.ok_or_else(|| {
                    DecodeError::malformed(WHAT, "success without XOR-MAPPED-ADDRESS")
                })?;
                Binding::Success {
                    mapped: unxor_address(v, &txn)?,
                    txn,
                }
            }
            TYPE_ERROR => {
                let v = error
                    .ok_or_else(|| DecodeError::malformed(WHAT, "error without ERROR-CODE"))?;
                DecodeError::need(WHAT, 4, v.len())?;
                // RFC 8489 §14.8: the class (hundreds digit) is 3..=6 and the number (code modulo
                // 100) is 0..=99. Anything else has no meaning and would not re-encode the same.
                let (class, number) = (v[2] & 0x7, v[3]);
                if !(3..=6).contains(&class) || number > 99 {
                    return Err(DecodeError::malformed(
                        WHAT,
                        format!("ERROR-CODE class {class} number {number}"),
                    ));
                }
                let code = class as u16 * 100 + number as u16;
                let reason = String::from_utf8(v[4..].to_vec())
                    .map_err(|_| DecodeError::malformed(WHAT, "ERROR-CODE reason is not UTF-8"))?;
                Binding::Error { txn, code, reason }
            }
            other => {
                return Err(DecodeError::malformed(
                    WHAT,
                    format!("unknown message type {other:#06x}"),
                ))
            }
        };
        Ok(Decoded { msg, integrity })
    }
}

fn attr(ty: u16, value: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(4 + value.len() + 3);
    v.extend_from_slice(&ty.to_be_bytes());
    v.extend_from_slice(&(value.len() as u16).to_be_bytes());
    v.extend_from_slice(value);
    v.resize(v.len().div_ceil(4) * 4, 0);
    v
}

fn xor_key(txn: &TransactionId) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..4].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
    k[4..].copy_from_slice(txn);
    k
}

fn xor_address(addr: &SocketAddr, txn: &TransactionId) -> Vec<u8> {
    let key = xor_key(txn);
    let port = addr.port() ^ (MAGIC_COOKIE >> 16) as u16;
    let (family, ip): (u8, Vec<u8>) = match addr.ip() {
        IpAddr::V4(ip) => (
            1,
            ip.octets().iter().zip(&key).map(|(a, k)| a ^ k).collect(),
        ),
        IpAddr::V6(ip) => (
            2,
            ip.octets().iter().zip(&key).map(|(a, k)| a ^ k).collect(),
        ),
    };
    let mut v = vec![0, family];
    v.extend_from_slice(&port.to_be_bytes());
    v.extend_from_slice(&ip);
    v
}

fn unxor_address(v: &[u8], txn: &TransactionId) -> Result<SocketAddr, DecodeError> {
    DecodeError::need(WHAT, 4, v.len())?;
    let key = xor_key(txn);
    let port = u16::from_be_bytes([v[2], v[3]]) ^ (MAGIC_COOKIE >> 16) as u16;
    let ip = match (v[1], v.len()) {
        (1, 8) => {
            let o: [u8; 4] = std::array::from_fn(|i| v[4 + i] ^ key[i]);
            IpAddr::V4(Ipv4Addr::from(o))
        }
        (2, 20) => {
            let o: [u8; 16] = std::array::from_fn(|i| v[4 + i] ^ key[i]);
            IpAddr::V6(Ipv6Addr::from(o))
        }
        (f, n) => {
            return Err(DecodeError::malformed(
                WHAT,
                format!("XOR-MAPPED-ADDRESS family {f} with {n} bytes"),
            ))
        }
    };
    Ok(SocketAddr::new(ip, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(b: u8) -> MediaToken {
        MediaToken::from_bytes(vec![b; 16])
    }

    #[test]
    fn integrity_checks_with_the_token_and_nothing_else() {
        let req = Binding::Request {
            txn: [7; 12],
            username: BindingId::of(&token(1)),
            counter: 42,
        };
        let bytes = req.encode_signed(&token(1));
        let d = Binding::decode(&bytes).unwrap();
        assert_eq!(d.msg, req);
        assert!(d.verify(&token(1)));
        assert!(!d.verify(&token(2)));
        // Any flipped bit breaks it: in the txn, the username, the counter, the tag itself.
        for i in 0..bytes.len() {
            let mut forged = bytes.clone();
            forged[i] ^= 1;
            assert!(
                Binding::decode(&forged).map_or(true, |d| !d.verify(&token(1))),
                "byte {i}"
            );
        }
        // The token itself never appears in the request.
        assert!(!bytes.windows(16).any(|w| w == token(1).as_bytes()));
    }

    #[test]
    fn a_request_without_integrity_is_malformed_and_an_unsigned_error_verifies_nothing() {
        let req = Binding::Request {
            txn: [7; 12],
            username: BindingId::of(&token(1)),
            counter: 1,
        };
        assert!(Binding::decode(&req.encode_unsigned()).is_err());
        let err = Binding::Error {
            txn: [7; 12],
            code: code::UNAUTHORIZED,
            reason: "no".into(),
        };
        let d = Binding::decode(&err.encode_unsigned()).unwrap();
        assert!(!d.has_integrity() && !d.verify(&token(1)));
    }

    #[test]
    fn attributes_after_the_integrity_are_ignored() {
        let ok = Binding::Success {
            txn: [3; 12],
            mapped: "192.0.2.1:4000".parse().unwrap(),
        };
        let mut bytes = ok.encode_signed(&token(9));
        bytes.extend_from_slice(&attr(0x8028, &[1, 2, 3, 4]));
        let len = (bytes.len() - HEADER_BYTES) as u16;
        bytes[2..4].copy_from_slice(&len.to_be_bytes());
        let d = Binding::decode(&bytes).unwrap();
        assert_eq!(d.msg, ok);
        assert!(d.verify(&token(9)));
    }
}
