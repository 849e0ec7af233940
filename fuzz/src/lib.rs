//! What the fuzz targets share: how a fuzz input is cut into a stream and the pieces it is read
//! in, the round-trip checks, and the seed messages `examples/seed_corpus.rs` writes.
#![forbid(unsafe_code)]

pub mod seeds;

use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fmt::Debug;

/// A stream input: `selector u8 | n u8 | n chunk sizes (u8 each) | stream`.
///
/// The selector picks what the stream carries (a message type, a repeat count); the chunk sizes
/// are the sizes of the reads a socket would hand the decoder, cycled until the stream is used up
/// (a size of 0 reads 1 byte). With no sizes, the stream arrives in one read.
#[derive(Debug, Clone, Copy)]
pub struct StreamInput<'a> {
    pub selector: u8,
    pub sizes: &'a [u8],
    pub stream: &'a [u8],
}

/// At most this many chunk sizes: enough to vary the split without eating the stream's bytes.
pub const MAX_CHUNK_SIZES: usize = 16;

impl<'a> StreamInput<'a> {
    pub fn parse(data: &'a [u8]) -> Option<StreamInput<'a>> {
        let (&selector, rest) = data.split_first()?;
        let (&n, rest) = rest.split_first()?;
        let n = (n as usize % (MAX_CHUNK_SIZES + 1)).min(rest.len());
        let (sizes, stream) = rest.split_at(n);
        Some(StreamInput {
            selector,
            sizes,
            stream,
        })
    }

    /// The inverse of [`StreamInput::parse`], for seeds.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = vec![self.selector, self.sizes.len() as u8];
        v.extend_from_slice(self.sizes);
        v.extend_from_slice(self.stream);
        v
    }
}

/// Cuts `stream` into reads of the given sizes, cycled; one read if `sizes` is empty.
pub fn chunks<'s>(sizes: &[u8], stream: &'s [u8]) -> Vec<&'s [u8]> {
    if sizes.is_empty() {
        return vec![stream];
    }
    let mut out = Vec::new();
    let mut rest = stream;
    for &size in sizes.iter().cycle() {
        if rest.is_empty() {
            break;
        }
        let (head, tail) = rest.split_at((size as usize).max(1).min(rest.len()));
        out.push(head);
        rest = tail;
    }
    out
}

/// What the code promises of every JSON message it decodes: encoding it again gives JSON that
/// decodes to the same value, and that encoding is stable (encoding the re-decoded value gives
/// the same bytes). Returns whether `body` decoded as `T`.
pub fn json_roundtrip<T>(body: &[u8]) -> bool
where
    T: Serialize + DeserializeOwned + PartialEq + Debug,
{
    let Ok(msg) = serde_json::from_slice::<T>(body) else {
        return false;
    };
    let encoded = serde_json::to_vec(&msg).expect("a decoded message encodes");
    let again: T = serde_json::from_slice(&encoded).unwrap_or_else(|e| {
        panic!(
            "{msg:?} decoded, but its encoding {:?} does not: {e}",
            String::from_utf8_lossy(&encoded)
        )
    });
    assert_eq!(again, msg, "decode(encode(m)) != m");
    assert_eq!(
        serde_json::to_vec(&again).unwrap(),
        encoded,
        "encoding is not stable"
    );
    // The same message in a control frame: what a peer relaying it would send.
    if encoded.len() < mc_wire::frame::MAX_FRAME_BYTES {
        let framed = mc_wire::frame::encode(&msg);
        assert_eq!(mc_wire::frame::decode::<T>(&framed).as_ref(), Ok(&msg));
    }
    true
}
