//! Wire formats of the meeting connector.
//!
//! Everything that crosses a socket is defined here, as plain encode/decode functions with typed
//! errors and no I/O. Decoders take arbitrary bytes from a peer and return a value or a
//! [`DecodeError`]; they never panic (property-tested in `tests/`).
//!
//! | module | carries | on |
//! |---|---|---|
//! | [`frame`] | length-prefixed, versioned JSON control messages | every TLS control link |
//! | [`signal`], [`status`], [`link`], [`peer`] | the messages of the client↔ZC, controller↔cloud, MMR VM↔controller and controller↔controller links | inside frames |
//! | [`rtp`] | RTP (RFC 3550) media packets | UDP 8801, and streams via [`rfc4571`] |
//! | [`binding`] | STUN-style binding that proves the media token (HMAC) without sending it | the media port |
//! | [`srtp`] | RTP sealed with AES-256-GCM per sender (RFC 7714 layout), the replay window | the media port |
//! | [`rfc4571`] | RTP/binding framing on stream transports | TCP 8801, TLS 443 |
//! | [`ticket`] | signed, expiring join tickets | client → ZC |
//!
//! The protocol is documented in `connector/wire/PROTOCOL.md`.
#![forbid(unsafe_code)]

pub mod binding;
pub mod cascade;
pub mod error;
pub mod frame;
pub mod hex;
pub mod ids;
pub mod link;
pub mod media_token;
pub mod monitor;
pub mod notify;
pub mod peer;
pub mod ports;
pub mod rfc4571;
pub mod rtp;
pub mod signal;
pub mod srtp;
pub mod status;
pub mod ticket;

pub use error::DecodeError;
pub use ids::{ControllerId, MeetingId, MmrId, ParticipantId};
pub use media_token::MediaToken;

/// What the first byte of a datagram on the media port says it is (RFC 7983 style demultiplexing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaKind {
    /// First two bits `00`: a STUN-style binding message.
    Binding,
    /// First two bits `10`: RTP version 2.
    Rtp,
    /// Anything else, or empty: dropped and counted by the receiver.
    Unknown,
}

/// Classifies a media-port packet by its first byte.
pub fn classify_media(packet: &[u8]) -> MediaKind {
    match packet.first() {
        Some(b) if b >> 6 == 0 => MediaKind::Binding,
        Some(b) if b >> 6 == 2 => MediaKind::Rtp,
        _ => MediaKind::Unknown,
    }
}
