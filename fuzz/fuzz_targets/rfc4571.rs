//! RFC 4571 framing as read from TCP 8801 and TLS 443 (`Rfc4571Decoder`), fed in arbitrary reads.
//!
//! The input's stream is sent `1 + selector % 32` times back to back, so a few kilobytes of input
//! make streams past the decoder's 64 KiB compaction threshold.
//!
//! Promises checked: whatever the split, the decoder yields exactly the packets a plain reading of
//! the framing gives (zero-length packets skipped), in order, and nothing more; re-encoding them
//! gives back the stream up to where the last whole packet ended (minus empty packets).
#![no_main]

use libfuzzer_sys::fuzz_target;
use mc_fuzz::{chunks, StreamInput};
use mc_wire::rfc4571::{self, Rfc4571Decoder};

/// The framing read the obvious way: (packets, bytes consumed).
fn reference(mut s: &[u8]) -> (Vec<&[u8]>, usize) {
    let (mut out, mut used) = (Vec::new(), 0);
    while s.len() >= 2 {
        let len = u16::from_be_bytes([s[0], s[1]]) as usize;
        if s.len() < 2 + len {
            break;
        }
        if len > 0 {
            out.push(&s[2..2 + len]);
        }
        s = &s[2 + len..];
        used += 2 + len;
    }
    (out, used)
}

fn decode(reads: &[&[u8]]) -> Vec<Vec<u8>> {
    let mut dec = Rfc4571Decoder::default();
    let mut out = Vec::new();
    for r in reads {
        dec.push(r);
        while let Some(p) = dec.next_packet() {
            assert!(!p.is_empty(), "zero-length packets are skipped");
            out.push(p.to_vec());
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let Some(input) = StreamInput::parse(data) else {
        return;
    };
    let stream = input.stream.repeat(1 + input.selector as usize % 32);
    let (expected, used) = reference(&stream);
    assert_eq!(decode(&[&stream]), expected, "read whole");
    assert_eq!(
        decode(&chunks(input.sizes, &stream)),
        expected,
        "read in pieces"
    );
    // What decode_all accepts is exactly the whole-packet prefix.
    let all = rfc4571::decode_all(&stream[..used]).expect("whole packets");
    let non_empty: Vec<&[u8]> = all.into_iter().filter(|p| !p.is_empty()).collect();
    assert_eq!(non_empty, expected);
    if used < stream.len() {
        assert!(rfc4571::decode_all(&stream).is_err(), "a partial packet");
    }
    let mut again = Vec::new();
    for p in &expected {
        rfc4571::encode_into(p, &mut again);
    }
    assert_eq!(reference(&again), (expected, again.len()));
});
