//! RTP packets as the MMR parses them (`RtpHeader::parse`) and as clients decode them.
//!
//! Promises checked: the header's payload range lies inside the packet and header, payload and
//! padding add up to the packet; a parsed packet is classified as RTP on the media port; a packet
//! without padding or extension re-encodes to exactly its bytes; decoding is the inverse of
//! encoding on anything that decodes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mc_wire::rtp::{RtpHeader, RtpPacket};
use mc_wire::{classify_media, MediaKind};

fuzz_target!(|p: &[u8]| {
    let Ok(h) = RtpHeader::parse(p) else {
        assert!(RtpPacket::decode(p).is_err());
        return;
    };
    assert_eq!(classify_media(p), MediaKind::Rtp);
    assert_eq!(h.payload_offset + h.payload_len + h.padding_len, p.len());
    assert!(h.payload_offset >= 12 + 4 * h.csrc.len());
    assert_eq!(h.csrc.len(), (p[0] & 0x0f) as usize);
    let packet = RtpPacket::decode(p).expect("parse accepted it");
    assert_eq!(
        packet.payload,
        &p[h.payload_offset..h.payload_offset + h.payload_len]
    );
    let encoded = packet.encode();
    if h.padding_len == 0 && h.extension.is_none() {
        assert_eq!(encoded, p, "a plain packet re-encodes to its own bytes");
    }
    assert_eq!(RtpPacket::decode(&encoded), Ok(packet));
});
