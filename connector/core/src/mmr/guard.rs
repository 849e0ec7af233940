//! Per-source rate limits in front of the forwarding table, so the media port can be neither used
//! to reflect traffic at someone else (a binding answer goes to whatever address a request claims
//! to come from) nor kept busy with garbage. Participants already bound are never limited: their
//! media is what the port is for.

use super::forwarding::Endpoint;
use crate::rate_limit::{Admission, Rate, RateLimiter};
use mc_wire::{classify_media, MediaKind};
use serde::Serialize;
use std::net::IpAddr;

/// How much one source address may send that is not a bound participant's media. A burst of twice
/// the rate is allowed: a rejoin storm from an office behind one NAT arrives at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MediaLimits {
    /// Packets per second from one address that are not from a bound endpoint (RTP that has not
    /// bound yet, garbage).
    pub unbound_packets_per_s: u32,
    /// Binding requests per second from one address (first bindings and consent refreshes: one
    /// a second for each participant behind it).
    pub bindings_per_s: u32,
    /// Source addresses remembered at once; the quietest is forgotten first.
    pub max_tracked_sources: usize,
}

impl Default for MediaLimits {
    fn default() -> Self {
        MediaLimits {
            unbound_packets_per_s: 200,
            // An MMR's 200 participants behind one NAT refresh once a second each.
            bindings_per_s: 400,
            max_tracked_sources: 10_000,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct GuardCounters {
    /// Unbound packets dropped over their source's rate.
    pub rate_limited_unbound: u64,
    /// Binding requests dropped (unanswered) over their source's rate.
    pub rate_limited_bindings: u64,
}

#[derive(Debug)]
pub struct MediaGuard {
    unbound: RateLimiter<IpAddr>,
    bindings: RateLimiter<IpAddr>,
    counters: GuardCounters,
}

impl MediaGuard {
    pub fn new(limits: MediaLimits) -> MediaGuard {
        let rate = |per_s: u32| Rate {
            rate_per_s: per_s,
            burst: per_s.saturating_mul(2),
        };
        MediaGuard {
            unbound: RateLimiter::new(
                rate(limits.unbound_packets_per_s),
                limits.max_tracked_sources,
            ),
            bindings: RateLimiter::new(rate(limits.bindings_per_s), limits.max_tracked_sources),
            counters: GuardCounters::default(),
        }
    }

    /// Whether a packet from `source` (at endpoint `from`, bound or not) goes on to the
    /// forwarding table; a packet refused here is dropped unanswered and counted.
    pub fn admit(&mut self, now_ms: u64, source: IpAddr, from_bound: bool, packet: &[u8]) -> bool {
        let (limiter, counter) = match classify_media(packet) {
            MediaKind::Binding => (&mut self.bindings, &mut self.counters.rate_limited_bindings),
            _ if from_bound => return true,
            _ => (&mut self.unbound, &mut self.counters.rate_limited_unbound),
        };
        match limiter.admit(&source, now_ms) {
            Admission::Admitted => true,
            Admission::Limited { .. } => {
                *counter += 1;
                false
            }
        }
    }

    pub fn counters(&self) -> GuardCounters {
        self.counters
    }
}

/// The address a packet came from, for the guard: a UDP source, or a stream's peer.
pub fn source_of(from: Endpoint, stream_peer: Option<IpAddr>) -> Option<IpAddr> {
    match from {
        Endpoint::Udp(addr) => Some(addr.ip()),
        Endpoint::Stream(_) | Endpoint::Cascade(_) => stream_peer,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RTP: [u8; 12] = [0x80, 111, 0, 1, 0, 0, 0, 1, 0, 0, 0, 9];
    const BINDING: [u8; 20] = [0; 20];

    fn ip(n: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, n])
    }

    #[test]
    fn an_unbound_flood_is_held_to_its_rate_and_bound_media_never_is() {
        let mut g = MediaGuard::new(MediaLimits {
            unbound_packets_per_s: 100,
            bindings_per_s: 10,
            max_tracked_sources: 16,
        });
        // Four seconds of garbage at twice the rate, one packet every 5 ms.
        let passed = (0..800u64)
            .filter(|i| g.admit(i * 5, ip(1), false, &[0xff; 40]))
            .count();
        // The burst (200), then the rate (100 a second) for four seconds.
        assert!((590..=610).contains(&passed), "{passed}");
        assert_eq!(g.counters().rate_limited_unbound, 800 - passed as u64);
        // Meanwhile a bound participant at the same address is never held back.
        assert!((0..1_000).all(|i| g.admit(4_000 + i, ip(1), true, &RTP)));
        // Another address has its own budget.
        assert!(g.admit(4_000, ip(2), false, &RTP));
    }

    #[test]
    fn bindings_are_limited_per_source_even_when_bound() {
        let mut g = MediaGuard::new(MediaLimits {
            unbound_packets_per_s: 100,
            bindings_per_s: 10,
            max_tracked_sources: 16,
        });
        let passed = (0..100)
            .filter(|_| g.admit(0, ip(1), true, &BINDING))
            .count();
        assert_eq!(passed, 20, "the burst is twice the rate");
        assert_eq!(g.counters().rate_limited_bindings, 80);
        assert!(
            g.admit(1_000, ip(1), true, &BINDING),
            "refilled a second later"
        );
    }
}
