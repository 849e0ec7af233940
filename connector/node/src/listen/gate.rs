//! One listener's admission: how many connections it holds, from whom, and why it closed the
//! ones it did not keep.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex};

/// Why a listener refused a connection or closed it before its peer did. A short fixed set: it is
/// a metric label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum CloseReason {
    /// The listener held `max_conns_per_listener` connections already.
    ListenerFull,
    /// The peer's source held `max_conns_per_source` connections already.
    SourceFull,
    /// The TLS handshake failed, or offered no protocol this port serves.
    HandshakeFailed,
    /// The TLS handshake was not completed within `handshake_timeout_ms`.
    HandshakeTimeout,
    /// No complete first message (a media stream's binding) within `first_message_timeout_ms`.
    FirstMessageTimeout,
    /// A media stream carried nothing either way for `media_idle_timeout_ms`.
    IdleTimeout,
}

impl CloseReason {
    pub const ALL: [CloseReason; 6] = [
        CloseReason::ListenerFull,
        CloseReason::SourceFull,
        CloseReason::HandshakeFailed,
        CloseReason::HandshakeTimeout,
        CloseReason::FirstMessageTimeout,
        CloseReason::IdleTimeout,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CloseReason::ListenerFull => "listener_full",
            CloseReason::SourceFull => "source_full",
            CloseReason::HandshakeFailed => "handshake_failed",
            CloseReason::HandshakeTimeout => "handshake_timeout",
            CloseReason::FirstMessageTimeout => "first_message_timeout",
            CloseReason::IdleTimeout => "idle_timeout",
        }
    }
}

impl std::fmt::Display for CloseReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Concurrent connections one listener accepts, in all and from one source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnCaps {
    pub max_conns_per_listener: u32,
    pub max_conns_per_source: u32,
}

/// One listener's gate. Cloning shares it.
#[derive(Clone, Debug)]
pub struct Gate {
    name: &'static str,
    caps: ConnCaps,
    state: Arc<Mutex<GateState>>,
}

#[derive(Debug, Default)]
struct GateState {
    open: u32,
    by_source: BTreeMap<IpAddr, u32>,
    closed: BTreeMap<CloseReason, u64>,
}

/// What a listener's gate shows at one instant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GateSnapshot {
    pub listener: &'static str,
    pub open: u32,
    /// Every reason, zero included, so each series exists from the start.
    pub closed: BTreeMap<CloseReason, u64>,
}

impl Gate {
    /// `name` is the listener's label in metrics: a fixed word such as `signalling`.
    pub fn new(name: &'static str, caps: ConnCaps) -> Gate {
        Gate {
            name,
            caps,
            state: Arc::default(),
        }
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Admits a connection from `peer`, or says which cap refused it (and counts it). The
    /// connection counts against both caps until its permit is dropped.
    pub fn admit(&self, peer: IpAddr) -> Result<Permit, CloseReason> {
        let source = source_of(peer);
        let mut s = self.state.lock().unwrap();
        let from_source = s.by_source.get(&source).copied().unwrap_or(0);
        let refused = if s.open >= self.caps.max_conns_per_listener {
            Some(CloseReason::ListenerFull)
        } else if from_source >= self.caps.max_conns_per_source {
            Some(CloseReason::SourceFull)
        } else {
            None
        };
        if let Some(reason) = refused {
            *s.closed.entry(reason).or_default() += 1;
            return Err(reason);
        }
        s.open += 1;
        s.by_source.insert(source, from_source + 1);
        Ok(Permit {
            gate: self.clone(),
            source,
        })
    }

    /// Counts a connection this listener closed for `reason`.
    pub fn count(&self, reason: CloseReason) {
        *self.state.lock().unwrap().closed.entry(reason).or_default() += 1;
    }

    pub fn snapshot(&self) -> GateSnapshot {
        let s = self.state.lock().unwrap();
        GateSnapshot {
            listener: self.name,
            open: s.open,
            closed: CloseReason::ALL
                .iter()
                .map(|r| (*r, s.closed.get(r).copied().unwrap_or(0)))
                .collect(),
        }
    }
}

/// One admitted connection's place under its listener's caps, given back when dropped (however
/// the connection's task ends).
#[derive(Debug)]
pub struct Permit {
    gate: Gate,
    source: IpAddr,
}

impl Permit {
    /// The gate to count this connection's closing on.
    pub fn gate(&self) -> &Gate {
        &self.gate
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut s = self.gate.state.lock().unwrap();
        s.open -= 1;
        if let Some(n) = s.by_source.get_mut(&self.source) {
            *n -= 1;
            if *n == 0 {
                s.by_source.remove(&self.source);
            }
        }
    }
}

/// The source a connection is counted against: its IPv4 address, or its IPv6 /64 (one host
/// commonly holds a whole /64, so per-address counting would not bind it).
fn source_of(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let [a, b, c, d, ..] = v6.segments();
                IpAddr::V6(Ipv6Addr::new(a, b, c, d, 0, 0, 0, 0))
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate(per_listener: u32, per_source: u32) -> Gate {
        Gate::new(
            "test",
            ConnCaps {
                max_conns_per_listener: per_listener,
                max_conns_per_source: per_source,
            },
        )
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn the_source_cap_refuses_the_next_connection_from_that_source_only() {
        let g = gate(10, 2);
        let held = [
            g.admit(ip("10.0.0.1")).unwrap(),
            g.admit(ip("10.0.0.1")).unwrap(),
        ];
        assert_eq!(
            g.admit(ip("10.0.0.1")).unwrap_err(),
            CloseReason::SourceFull
        );
        let other = g.admit(ip("10.0.0.2")).unwrap();
        drop(held);
        // The permits went back: that source may connect again.
        let again = g.admit(ip("10.0.0.1")).unwrap();
        let snap = g.snapshot();
        assert_eq!(snap.open, 2);
        assert_eq!(snap.closed[&CloseReason::SourceFull], 1);
        assert_eq!(snap.closed[&CloseReason::ListenerFull], 0);
        drop((other, again));
        assert_eq!(g.snapshot().open, 0);
        assert!(g.state.lock().unwrap().by_source.is_empty());
    }

    #[test]
    fn the_listener_cap_refuses_everyone_once_reached() {
        let g = gate(3, 3);
        let _held: Vec<_> = ["10.0.0.1", "10.0.0.2", "10.0.0.3"]
            .iter()
            .map(|a| g.admit(ip(a)).unwrap())
            .collect();
        assert_eq!(
            g.admit(ip("10.0.0.4")).unwrap_err(),
            CloseReason::ListenerFull
        );
        assert_eq!(g.snapshot().closed[&CloseReason::ListenerFull], 1);
    }

    #[test]
    fn an_ipv6_slash_64_is_one_source_and_a_mapped_ipv4_is_its_ipv4() {
        let g = gate(10, 1);
        let _a = g.admit(ip("2001:db8:1:2::1")).unwrap();
        assert_eq!(
            g.admit(ip("2001:db8:1:2:ffff::9")).unwrap_err(),
            CloseReason::SourceFull
        );
        let _b = g.admit(ip("2001:db8:1:3::1")).unwrap();
        let _c = g.admit(ip("192.0.2.7")).unwrap();
        assert_eq!(
            g.admit(ip("::ffff:192.0.2.7")).unwrap_err(),
            CloseReason::SourceFull
        );
    }

    #[test]
    fn every_reason_is_reported_from_the_start() {
        let g = gate(1, 1);
        g.count(CloseReason::IdleTimeout);
        let snap = g.snapshot();
        assert_eq!(snap.closed.len(), CloseReason::ALL.len());
        assert_eq!(snap.closed[&CloseReason::IdleTimeout], 1);
    }
}
