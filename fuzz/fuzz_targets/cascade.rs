//! The cascade link's frames between MMRs (`CascadeFrame::decode`), as read off a link.
//!
//! Promises checked: decoding never panics; whatever decodes re-encodes to exactly the bytes it
//! came from, and the media frame an MMR writes for a decoded media frame carries the same body.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mc_wire::cascade::{media_framed, CascadeFrame};

fuzz_target!(|data: &[u8]| {
    let Ok(frame) = CascadeFrame::decode(data) else {
        return;
    };
    assert_eq!(
        frame.encode(),
        data,
        "a decoded frame re-encodes to its bytes"
    );
    if let CascadeFrame::Media { meeting, packet } = frame {
        assert_eq!(&media_framed(meeting, packet)[2..], data);
    }
});
