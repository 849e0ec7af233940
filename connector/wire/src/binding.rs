//! The media binding: a STUN-style (RFC 5389 layout) exchange on the media port that proves the
//! client holds a media token from the ZC and tells the MMR where to send the meeting's media.
//!
//! ```text
//! 0       2        4              8                    20
//! +-------+--------+--------------+--------------------+------------------+
//! | type  | length | magic cookie | transaction id     | attributes (TLV, |
//! | u16   | u16    | 0x2112A442   | 12 bytes           |  4-byte aligned) |
//! +-------+--------+--------------+--------------------+------------------+
//! ```
//!
//! Types: `0x0001` request, `0x0101` success, `0x0111` error. Attributes: `MEDIA-TOKEN (0x4001)`
//! in requests; `XOR-MAPPED-ADDRESS (0x0020)` in successes (the address the MMR saw: the reply
//! proves the path); `ERROR-CODE (0x0009)` in errors. Unknown attributes are skipped. The first two
//! bits are `00`, so binding messages and RTP (`10`) share the port.

use crate::DecodeError;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

pub const MAGIC_COOKIE: u32 = 0x2112_A442;
const HEADER_BYTES: usize = 20;
const TYPE_REQUEST: u16 = 0x0001;
const TYPE_SUCCESS: u16 = 0x0101;
const TYPE_ERROR: u16 = 0x0111;
const ATTR_XOR_MAPPED_ADDRESS: u16 = 0x0020;
const ATTR_ERROR_CODE: u16 = 0x0009;
const ATTR_MEDIA_TOKEN: u16 = 0x4001;
/// Media tokens are opaque to the client; the MMR bounds them.
pub const MAX_TOKEN_BYTES: usize = 64;
const WHAT: &str = "binding message";

pub type TransactionId = [u8; 12];

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Binding {
    Request {
        txn: TransactionId,
        token: Vec<u8>,
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
}

impl Binding {
    pub fn txn(&self) -> &TransactionId {
        match self {
            Binding::Request { txn, .. }
            | Binding::Success { txn, .. }
            | Binding::Error { txn, .. } => txn,
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let (ty, attrs) = match self {
            Binding::Request { token, .. } => (TYPE_REQUEST, attr(ATTR_MEDIA_TOKEN, token)),
            Binding::Success { mapped, txn } => (
                TYPE_SUCCESS,
                attr(ATTR_XOR_MAPPED_ADDRESS, &xor_address(mapped, txn)),
            ),
            Binding::Error { code, reason, .. } => {
                let mut v = vec![0, 0, (code / 100) as u8, (code % 100) as u8];
                v.extend_from_slice(reason.as_bytes());
                (TYPE_ERROR, attr(ATTR_ERROR_CODE, &v))
            }
        };
        let mut out = Vec::with_capacity(HEADER_BYTES + attrs.len());
        out.extend_from_slice(&ty.to_be_bytes());
        out.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
        out.extend_from_slice(&MAGIC_COOKIE.to_be_bytes());
        out.extend_from_slice(self.txn());
        out.extend_from_slice(&attrs);
        out
    }

    pub fn decode(p: &[u8]) -> Result<Binding, DecodeError> {
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
        let (mut token, mut mapped, mut error) = (None, None, None);
        let mut rest = &p[HEADER_BYTES..];
        while !rest.is_empty() {
            DecodeError::need(WHAT, 4, rest.len())?;
            let at = u16::from_be_bytes([rest[0], rest[1]]);
            let alen = u16::from_be_bytes([rest[2], rest[3]]) as usize;
            let padded = 4 + alen.div_ceil(4) * 4;
            DecodeError::need(WHAT, padded, rest.len())?;
            let value = &rest[4..4 + alen];
            match at {
                ATTR_MEDIA_TOKEN => token = Some(value),
                ATTR_XOR_MAPPED_ADDRESS => mapped = Some(value),
                ATTR_ERROR_CODE => error = Some(value),
                _ => {}
            }
            rest = &rest[padded..];
        }
        match ty {
            TYPE_REQUEST => {
                let token = token
                    .ok_or_else(|| DecodeError::malformed(WHAT, "request without MEDIA-TOKEN"))?;
                if token.is_empty() || token.len() > MAX_TOKEN_BYTES {
                    return Err(DecodeError::malformed(
                        WHAT,
                        format!("MEDIA-TOKEN of {} bytes", token.len()),
                    ));
                }
                Ok(Binding::Request {
                    txn,
                    token: token.to_vec(),
                })
            }
            TYPE_SUCCESS => {
                let v = mapped.ok_or_else(|| {
                    DecodeError::malformed(WHAT, "success without XOR-MAPPED-ADDRESS")
                })?;
                Ok(Binding::Success {
                    mapped: unxor_address(v, &txn)?,
                    txn,
                })
            }
            TYPE_ERROR => {
                let v = error
                    .ok_or_else(|| DecodeError::malformed(WHAT, "error without ERROR-CODE"))?;
                DecodeError::need(WHAT, 4, v.len())?;
                // RFC 5389 §15.6: the class (hundreds digit) is 3..=6 and the number (code modulo
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
                Ok(Binding::Error { txn, code, reason })
            }
            other => Err(DecodeError::malformed(
                WHAT,
                format!("unknown message type {other:#06x}"),
            )),
        }
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
