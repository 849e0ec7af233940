//! Participants' addresses, hidden: `redacted-<8 hex digits>`, a keyed hash of the IP address,
//! with the port kept (`redacted-5f0c1e2a:40312`).
//!
//! Keyed, with a key drawn when the process starts and never written anywhere: an unkeyed hash of
//! an IPv4 address is undone by hashing all 2³² of them, and a fixed key would let logs of
//! different processes or runs be joined on a person's address. Within one run the same address
//! always gives the same token, so an operator can still follow one participant's connections
//! across lines (and tell two participants apart); the port helps tell connections apart and says
//! nothing about who the participant is. Two processes (a controller and an MMR VM) give one
//! address different tokens.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hash};
use std::net::{IpAddr, SocketAddr};

pub(crate) struct Redactor {
    /// SipHash keyed from the OS's randomness, once per process.
    key: RandomState,
}

impl Redactor {
    pub fn new() -> Redactor {
        Redactor {
            key: RandomState::new(),
        }
    }

    /// `value` as logged in a `client_addr` field: an address with a port, an address, or
    /// anything else (hidden whole).
    pub fn redact(&self, value: &str) -> String {
        if let Ok(addr) = value.parse::<SocketAddr>() {
            format!("redacted-{}:{}", self.token(addr.ip()), addr.port())
        } else if let Ok(ip) = value.parse::<IpAddr>() {
            format!("redacted-{}", self.token(ip))
        } else {
            format!("redacted-{}", self.token(value))
        }
    }

    fn token(&self, v: impl Hash) -> String {
        // 32 bits: enough to tell a meeting's participants apart, too few to look up anything.
        format!("{:08x}", self.key.hash_one(v) as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_becomes_a_token_stable_within_the_run_and_the_port_stays() {
        let r = Redactor::new();
        let a = r.redact("127.0.0.7:40312");
        assert!(a.starts_with("redacted-") && a.ends_with(":40312"), "{a}");
        assert!(!a.contains("127.0.0.7"), "{a}");
        assert_eq!(
            r.redact("127.0.0.7:51000").split(':').next(),
            a.split(':').next(),
            "one address, one token"
        );
        assert_ne!(
            r.redact("127.0.0.8:40312"),
            a,
            "two participants stay apart"
        );
        let v6 = r.redact("[2001:db8::1]:443");
        assert!(!v6.contains("2001") && v6.ends_with(":443"), "{v6}");
        assert!(!r.redact("10.1.2.3").contains("10.1.2.3"));
        assert!(!r.redact("not an address").contains("address"));
    }

    #[test]
    fn another_process_gives_the_same_address_another_token() {
        // Two redactors stand for two runs: their keys differ, so their tokens do.
        let (a, b) = (Redactor::new(), Redactor::new());
        assert_ne!(a.redact("192.0.2.1:1"), b.redact("192.0.2.1:1"));
    }
}
