//! Binding messages on the media port, through `Binding::decode`, the one entry point.
//!
//! Promises checked: a decoded message is a whole number of 4-byte words, its transaction id is
//! the bytes at 8..20, and it is classified as a binding on the media port. Whatever decodes
//! re-encodes (signed with any token) to bytes that decode to the same message and verify with
//! that token; a message verifies with the seed token only if it carries integrity.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mc_fuzz::seeds::binding_token;
use mc_wire::binding::Binding;
use mc_wire::{classify_media, MediaKind};

fuzz_target!(|p: &[u8]| {
    let Ok(d) = Binding::decode(p) else {
        return;
    };
    assert_eq!(classify_media(p), MediaKind::Binding);
    assert_eq!(p.len() % 4, 0);
    assert_eq!(&d.msg.txn()[..], &p[8..20]);
    assert!(d.has_integrity() || !d.verify(&binding_token()));
    let again = d.msg.encode_signed(&binding_token());
    let back = Binding::decode(&again).expect("re-encoded binding decodes");
    assert_eq!(back.msg, d.msg, "re-encoded");
    assert!(back.verify(&binding_token()));
    assert_eq!(again.len() % 4, 0);
});
