//! Join tickets: the text form a client sends in `join` (`Ticket::parse`) and the claim bytes
//! inside it (`TicketClaims::decode`).
//!
//! Promises checked: claim bytes that decode re-encode to exactly themselves (the signature covers
//! those bytes, so there must be one encoding); a parsed ticket's claims are its signed bytes, and
//! its text form is the input up to the case of the hex digits.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mc_wire::ticket::{Ticket, TicketClaims, MAX_TICKET_CHARS};

fuzz_target!(|data: &[u8]| {
    if let Ok(c) = TicketClaims::decode(data) {
        assert_eq!(c.encode(), data, "claims re-encode to their bytes");
    }
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(t) = Ticket::parse(text) else {
        return;
    };
    assert!(text.len() <= MAX_TICKET_CHARS);
    assert_eq!(t.claims.encode(), t.signed_bytes);
    assert_eq!(t.to_text(), text.to_ascii_lowercase());
    assert_eq!(Ticket::parse(&t.to_text()), Ok(t));
});
