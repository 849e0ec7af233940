//! What every TCP listener holds against idle and flooding peers: caps on concurrent connections
//! per listener and per source ([`Gate`]), and the deadlines a connection must meet (TLS
//! handshake, first message, idle), with every refusal and every deadline that fired counted by
//! listener and reason.
//!
//! The caps are checked at accept, before a handshake costs anything; a refused connection is
//! closed at once. The deadlines are enforced where the protocol is known: the TLS handshake by
//! [`crate::serve`], a media stream's binding and idleness by the MMR's stream task, signalling's
//! join and a link's hello by the controller core.

mod gate;

pub use gate::{CloseReason, ConnCaps, Gate, GateSnapshot, Permit};

use std::time::Duration;

/// What a media stream connection (TCP 8801, or TLS with ALPN `mc-media/1`) must do to stay open.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamDeadlines {
    /// A successful binding must arrive within this time of the connection opening.
    pub first_message: Duration,
    /// A connection with no participant bound to it (never yet, or no longer) and no packet in
    /// either direction for this long is closed.
    pub idle: Duration,
}

impl StreamDeadlines {
    pub fn from_ms(first_message_timeout_ms: u64, media_idle_timeout_ms: u64) -> StreamDeadlines {
        StreamDeadlines {
            first_message: Duration::from_millis(first_message_timeout_ms),
            idle: Duration::from_millis(media_idle_timeout_ms),
        }
    }
}

/// Default caps. Participants behind one NAT share an address, so the per-source cap is generous;
/// a load test from one host beyond it needs `max_conns_per_source` raised.
pub const DEFAULT_MAX_CONNS_PER_LISTENER: u32 = 16_384;
pub const DEFAULT_MAX_CONNS_PER_SOURCE: u32 = 1_024;
/// A media stream with no participant bound that carries no packet for this long is closed.
pub const DEFAULT_MEDIA_IDLE_TIMEOUT_MS: u64 = 30_000;
/// A signalling session must join, a link say hello, a media stream bind within this time.
pub const DEFAULT_FIRST_MESSAGE_TIMEOUT_MS: u64 = 5_000;
