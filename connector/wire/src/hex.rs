//! Lowercase hex, for tokens and tickets carried inside JSON.

use crate::DecodeError;

pub fn encode(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 0xf) as usize] as char);
    }
    s
}

pub fn decode(what: &'static str, s: &str) -> Result<Vec<u8>, DecodeError> {
    let s = s.as_bytes();
    if !s.len().is_multiple_of(2) {
        return Err(DecodeError::malformed(what, "odd number of hex digits"));
    }
    fn nibble(what: &'static str, c: u8) -> Result<u8, DecodeError> {
        match c {
            b'0'..=b'9' => Ok(c - b'0'),
            b'a'..=b'f' => Ok(c - b'a' + 10),
            b'A'..=b'F' => Ok(c - b'A' + 10),
            _ => Err(DecodeError::malformed(
                what,
                format!("invalid hex digit {:?}", c as char),
            )),
        }
    }
    s.chunks(2)
        .map(|p| Ok(nibble(what, p[0])? << 4 | nibble(what, p[1])?))
        .collect()
}
