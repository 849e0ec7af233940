//! The ZC's ticket verifier (`mc_core::ticket::TicketVerifier`), trusting one fixed cloud key.
//!
//! Input: `mode u8 | ...`.
//! - mode even: the rest is the ticket text, verified at the seed tickets' issue time. Anything
//!   accepted must be a well-formed, unexpired ticket, and is then admitted exactly once.
//! - mode odd: `now_ms_offset u16 | claim bytes (51 + name) | edits`: the claims (if they decode)
//!   are signed with the trusted key, the text is edited (`pos u16, byte u8` each, ASCII), and the
//!   result verified. It must verify if and only if the edits changed nothing but the case of hex
//!   digits and the ticket has not expired; an expired one is refused as expired.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mc_core::ticket::{TicketError, TicketSigner, TicketVerifier};
use mc_fuzz::seeds::{ISSUED_AT_MS, TICKET_KEY_SEED};
use mc_wire::ticket::{Ticket, TicketClaims};

fn admits_once(v: &mut TicketVerifier, now_ms: u64, text: &str) {
    let claims = v.verify_and_consume(now_ms, text).expect("it verified");
    assert_eq!(
        v.verify_and_consume(now_ms, text),
        Err(TicketError::Replayed)
    );
    assert!(v.remembered_nonces() >= 1);
    let _ = claims;
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let signer = TicketSigner::from_seed(&TICKET_KEY_SEED);
    let mut v = TicketVerifier::new(signer.public_key());
    if mode % 2 == 0 {
        let text = String::from_utf8_lossy(rest);
        if let Ok(claims) = v.verify(ISSUED_AT_MS, &text) {
            let t = Ticket::parse(&text).expect("a verified ticket parses");
            assert_eq!(t.claims, claims);
            assert!(claims.expires_at_ms >= ISSUED_AT_MS);
            admits_once(&mut v, ISSUED_AT_MS, &text);
        }
        return;
    }
    if rest.len() < 2 + 51 {
        return;
    }
    let offset_ms = u16::from_be_bytes([rest[0], rest[1]]) as u64;
    let name_len = u16::from_be_bytes([rest[2 + 49], rest[2 + 50]]) as usize;
    let Some((claim_bytes, edits)) = rest[2..].split_at_checked(51 + name_len) else {
        return;
    };
    let Ok(claims) = TicketClaims::decode(claim_bytes) else {
        return;
    };
    let original = signer.sign(claims.clone()).to_text();
    let mut text = original.clone().into_bytes();
    for e in edits.chunks_exact(3) {
        let pos = u16::from_be_bytes([e[0], e[1]]) as usize;
        if let Some(b) = text.get_mut(pos % original.len()) {
            *b = e[2] & 0x7f; // stays ASCII, so the text stays a string
        }
    }
    let text = String::from_utf8(text).expect("ASCII");
    let now_ms = claims.issued_at_ms.saturating_add(offset_ms);
    let unchanged = text.to_ascii_lowercase() == original;
    match v.verify(now_ms, &text) {
        Ok(c) => {
            assert!(unchanged, "an edited ticket verified: {text}");
            assert_eq!(c, claims);
            admits_once(&mut v, now_ms, &text);
        }
        Err(TicketError::Expired { ago_ms }) => {
            assert!(
                unchanged,
                "an edited ticket got as far as its expiry: {text}"
            );
            assert_eq!(ago_ms, now_ms - claims.expires_at_ms);
        }
        Err(e) => assert!(!unchanged, "the signed ticket was refused: {e}"),
    }
});
