//! Sealed RTP as a participant receives it from the MMR, through `MediaCrypto::open` (the
//! client's real path: the clear header and trailer, the key ring, the tag, the replay window).
//!
//! Promises checked: opening never panics; what opens is a well-formed RTP packet with the SSRC
//! and sequence number of the header it came under; the same bytes never open twice (the replay
//! window); every refusal is counted exactly once.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mc_core::client::MediaCrypto;
use mc_fuzz::seeds::srtp_key;
use mc_wire::rtp::RtpHeader;

fuzz_target!(|p: &[u8]| {
    let mut c = MediaCrypto::new(srtp_key(1));
    let opened = c.open(p);
    let f = c.failures;
    let refusals = f.malformed + f.unknown_key + f.forged + f.replayed;
    match opened {
        Ok(plain) => {
            assert_eq!(refusals, 0);
            let (sealed, open) = (
                RtpHeader::parse(p).unwrap(),
                RtpHeader::parse(&plain).unwrap(),
            );
            assert_eq!((open.ssrc, open.sequence), (sealed.ssrc, sealed.sequence));
            assert!(c.open(p).is_err(), "opened twice");
            assert_eq!(c.failures.replayed, 1);
        }
        Err(_) => assert_eq!(refusals, 1),
    }
});
