//! Control frames: how every control message travels on a stream.
//!
//! ```text
//! 0       4         5
//! +-------+---------+----------------------------+
//! | len   | version | body: one JSON message     |
//! | u32be | u8 = 1  | (len - 1 bytes, UTF-8)     |
//! +-------+---------+----------------------------+
//! ```
//!
//! `len` counts the version byte and the body. A frame longer than [`MAX_FRAME_BYTES`] is refused
//! before it is buffered, so a peer cannot make us allocate without bound. JSON keeps messages
//! self-describing and easy to capture; the frame keeps them versioned and bounded.

use crate::DecodeError;
use serde::{de::DeserializeOwned, Serialize};

pub const VERSION: u8 = 1;
/// The largest frame (version byte + body) either side accepts.
pub const MAX_FRAME_BYTES: usize = 64 * 1024;
const HEADER_BYTES: usize = 4;

/// Encodes one message as a frame.
///
/// # Panics
/// If the message encodes to more than [`MAX_FRAME_BYTES`]; our own messages are far smaller, so
/// this is a bug on the sending side, never the peer's doing.
pub fn encode<T: Serialize>(msg: &T) -> Vec<u8> {
    let body = serde_json::to_vec(msg).expect("control messages always serialize");
    let len = body.len() + 1;
    assert!(
        len <= MAX_FRAME_BYTES,
        "control frame of {len} bytes exceeds the maximum"
    );
    let mut out = Vec::with_capacity(HEADER_BYTES + len);
    out.extend_from_slice(&(len as u32).to_be_bytes());
    out.push(VERSION);
    out.extend_from_slice(&body);
    out
}

/// Decodes exactly one complete frame (header included).
pub fn decode<T: DeserializeOwned>(frame: &[u8]) -> Result<T, DecodeError> {
    let mut dec = FrameDecoder::default();
    dec.push(frame);
    match dec.next_message::<T>()? {
        Some(msg) if dec.buffered() == 0 => Ok(msg),
        Some(_) => Err(DecodeError::malformed(
            "control frame",
            "trailing bytes after frame",
        )),
        None => Err(DecodeError::Truncated {
            what: "control frame",
            needed: dec.needed(),
            have: frame.len(),
        }),
    }
}

/// Reassembles frames from a byte stream. Feed it whatever the socket read; take messages out
/// until it returns `Ok(None)`. After an error the stream is out of sync and must be closed.
#[derive(Debug, Default)]
pub struct FrameDecoder {
    buf: Vec<u8>,
}

impl FrameDecoder {
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Bytes needed for the next frame to be complete (header included).
    fn needed(&self) -> usize {
        match self.buf.get(..HEADER_BYTES) {
            Some(h) => HEADER_BYTES + u32::from_be_bytes([h[0], h[1], h[2], h[3]]) as usize,
            None => HEADER_BYTES,
        }
    }

    pub fn next_message<T: DeserializeOwned>(&mut self) -> Result<Option<T>, DecodeError> {
        let Some(h) = self.buf.get(..HEADER_BYTES) else {
            return Ok(None);
        };
        let len = u32::from_be_bytes([h[0], h[1], h[2], h[3]]) as usize;
        if len > MAX_FRAME_BYTES {
            return Err(DecodeError::TooLarge {
                what: "control frame",
                len,
                max: MAX_FRAME_BYTES,
            });
        }
        if len == 0 {
            return Err(DecodeError::malformed(
                "control frame",
                "empty frame has no version byte",
            ));
        }
        if self.buf.len() < HEADER_BYTES + len {
            return Ok(None);
        }
        let frame: Vec<u8> = self.buf.drain(..HEADER_BYTES + len).collect();
        let version = frame[HEADER_BYTES];
        if version != VERSION {
            return Err(DecodeError::UnsupportedVersion {
                what: "control frame",
                version,
            });
        }
        serde_json::from_slice(&frame[HEADER_BYTES + 1..])
            .map(Some)
            .map_err(|e| DecodeError::malformed("control message", e.to_string()))
    }
}
