//! Control frames read from a stream (`FrameDecoder`), for each message type a link carries.
//!
//! Promises checked: however the stream is split into reads, the decoder yields the same messages
//! and the same error; a lone frame decodes with `frame::decode` as it does from the stream; every
//! message decoded re-encodes to a frame that decodes to the same message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mc_fuzz::{chunks, StreamInput};
use mc_wire::frame::{self, FrameDecoder};
use mc_wire::{link, notify, peer, signal, status, DecodeError};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fmt::Debug;

/// Everything the decoder yields from `reads` until it wants more bytes or fails (after an error
/// the stream is closed), and what it still buffers.
fn drain<T: DeserializeOwned>(reads: &[&[u8]]) -> (Vec<Result<T, DecodeError>>, usize) {
    let mut dec = FrameDecoder::default();
    let mut out = Vec::new();
    for r in reads {
        dec.push(r);
        loop {
            match dec.next_message::<T>() {
                Ok(Some(m)) => out.push(Ok(m)),
                Ok(None) => break,
                Err(e) => {
                    out.push(Err(e));
                    return (out, dec.buffered());
                }
            }
        }
    }
    (out, dec.buffered())
}

fn check<T>(input: StreamInput)
where
    T: Serialize + DeserializeOwned + PartialEq + Debug,
{
    let whole = drain::<T>(&[input.stream]);
    let split = drain::<T>(&chunks(input.sizes, input.stream));
    // After an error the rest of the stream is never read, so only what came before must agree.
    let failed = matches!(whole.0.last(), Some(Err(_)));
    assert_eq!(
        whole.0, split.0,
        "a different split gave different messages"
    );
    if !failed {
        assert_eq!(whole.1, split.1, "a different split left different bytes");
    }
    if let [Ok(m)] = &whole.0[..] {
        if whole.1 == 0 {
            assert_eq!(frame::decode::<T>(input.stream).as_ref(), Ok(m));
        }
    }
    for m in whole.0.iter().flatten() {
        let again = frame::encode(m);
        assert_eq!(frame::decode::<T>(&again).as_ref(), Ok(m), "re-encoded");
    }
}

fuzz_target!(|data: &[u8]| {
    let Some(input) = StreamInput::parse(data) else {
        return;
    };
    // The order of mc_fuzz::seeds::all()'s frame seeds.
    match input.selector % 9 {
        0 => check::<signal::ClientToZc>(input),
        1 => check::<signal::ZcToClient>(input),
        2 => check::<link::MmrToController>(input),
        3 => check::<link::ControllerToMmr>(input),
        4 => check::<peer::PeerMsg>(input),
        5 => check::<status::ControllerToCloud>(input),
        6 => check::<status::CloudToController>(input),
        7 => check::<notify::ControllerToNotify>(input),
        _ => check::<notify::NotifyToController>(input),
    }
});
