//! Binding messages on the media port, through `Binding::decode`, the one entry point.
//!
//! Promises checked: a decoded message is a whole number of 4-byte words, its transaction id is
//! the bytes at 8..20, and it is classified as a binding on the media port. MMR answers (success,
//! error) re-encode to bytes that decode to the same answer. Requests are not re-encoded here:
//! their fields are changing with binding integrity (issue 12, part 2).
#![no_main]

use libfuzzer_sys::fuzz_target;
use mc_wire::binding::Binding;
use mc_wire::{classify_media, MediaKind};

fuzz_target!(|p: &[u8]| {
    let Ok(b) = Binding::decode(p) else {
        return;
    };
    assert_eq!(classify_media(p), MediaKind::Binding);
    assert_eq!(p.len() % 4, 0);
    assert_eq!(&b.txn()[..], &p[8..20]);
    if matches!(b, Binding::Success { .. } | Binding::Error { .. }) {
        let again = b.encode();
        assert_eq!(Binding::decode(&again).as_ref(), Ok(&b), "re-encoded");
        assert_eq!(again.len() % 4, 0);
    }
});
