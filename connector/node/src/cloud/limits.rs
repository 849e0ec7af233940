//! The management API's request limits: the size limits the connection is served with, and the
//! rate limits, one token bucket per API key (join tickets apart), and per source address for
//! requests whose key is missing or unknown. The buckets are [`mc_core`]'s; they live in the
//! cloud's state and are read with the cloud's clock, so they run in simulation too.

use crate::config::CloudConfig;
use mc_core::cloud::management::{Caller, Management, UserId};
use mc_core::rate_limit::{Admission, Rate, RateLimiter};
use std::net::IpAddr;

/// What a connection to the API is served with.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SizeLimits {
    pub max_body_bytes: usize,
    pub max_header_bytes: usize,
}

impl SizeLimits {
    pub fn of(config: &CloudConfig) -> SizeLimits {
        SizeLimits {
            max_body_bytes: config.api_max_body_bytes as usize,
            max_header_bytes: config.api_max_header_bytes as usize,
        }
    }
}

/// Which key's bucket a request is taken from.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Key {
    Operator,
    User(UserId),
}

/// Which bucket a request was refused by, for its message and its counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LimitedBy {
    Key,
    Tickets,
    Source,
}

impl LimitedBy {
    /// The `reason` label of `mc_cloud_api_refused_total`.
    pub fn reason(self) -> &'static str {
        match self {
            LimitedBy::Key | LimitedBy::Tickets => "rate_limited",
            LimitedBy::Source => "rate_limited_source",
        }
    }
}

/// A request over a rate limit: who is limited, at what rate, and when to try again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limited {
    pub by: LimitedBy,
    pub rate_per_s: u32,
    pub retry_after_ms: u64,
}

impl Limited {
    /// `Retry-After` is in whole seconds; rounded up, so a client that waits it is admitted.
    pub fn retry_after_s(&self) -> u64 {
        self.retry_after_ms.div_ceil(1000).max(1)
    }
}

pub(crate) struct RateLimits {
    keys: RateLimiter<Key>,
    tickets: RateLimiter<Key>,
    sources: RateLimiter<IpAddr>,
    rates: [u32; 3],
}

impl RateLimits {
    pub fn new(config: &CloudConfig) -> RateLimits {
        let max = config.api_rate_max_tracked as usize;
        let rate = |rate_per_s, burst| Rate { rate_per_s, burst };
        RateLimits {
            keys: RateLimiter::new(rate(config.api_rate_per_s, config.api_burst), max),
            tickets: RateLimiter::new(
                rate(config.api_ticket_rate_per_s, config.api_ticket_burst),
                max,
            ),
            sources: RateLimiter::new(
                rate(config.api_source_rate_per_s, config.api_source_burst),
                max,
            ),
            rates: [
                config.api_rate_per_s,
                config.api_ticket_rate_per_s,
                config.api_source_rate_per_s,
            ],
        }
    }

    /// Takes one request from the bucket it belongs to: its key's (tickets in a bucket of their
    /// own), or its source address's when the key is missing or unknown.
    pub fn admit(
        &mut self,
        management: &Management,
        bearer: Option<&str>,
        source: IpAddr,
        ticket: bool,
        now_ms: u64,
    ) -> Result<(), Limited> {
        let (admission, by, rate_per_s) = match management.authenticate(bearer) {
            Ok(caller) => {
                let key = match caller {
                    Caller::Operator => Key::Operator,
                    Caller::User(u) => Key::User(u.id),
                };
                if ticket {
                    let a = self.tickets.admit(&key, now_ms);
                    (a, LimitedBy::Tickets, self.rates[1])
                } else {
                    (self.keys.admit(&key, now_ms), LimitedBy::Key, self.rates[0])
                }
            }
            Err(_) => (
                self.sources.admit(&source, now_ms),
                LimitedBy::Source,
                self.rates[2],
            ),
        };
        match admission {
            Admission::Admitted => Ok(()),
            Admission::Limited { retry_after_ms } => Err(Limited {
                by,
                rate_per_s,
                retry_after_ms,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mc_core::cloud::management::MemoryStore;
    use mc_core::ticket::TicketSigner;
    use mc_core::Rng;

    const KEY: &str = "operator-key-0123456789";

    fn management() -> Management {
        let signer = TicketSigner::from_seed(&[7; 32]);
        let store = Box::new(MemoryStore);
        Management::new(signer, 1, KEY.into(), Rng::seed_from_u64(1), store, 0).unwrap()
    }

    /// Requests sent evenly over `span_ms`: how many were admitted.
    fn admitted(
        limits: &mut RateLimits,
        n: u64,
        span_ms: u64,
        key: impl Fn(u64) -> Option<String>,
        ticket: bool,
    ) -> u64 {
        let m = management();
        let source = IpAddr::from([192, 0, 2, 1]);
        (0..n)
            .filter(|i| {
                let at_ms = 1_000_000 + i * span_ms / n;
                limits
                    .admit(&m, key(*i).as_deref(), source, ticket, at_ms)
                    .is_ok()
            })
            .count() as u64
    }

    #[test]
    fn the_defaults_stop_a_thousand_gets_a_second_but_not_a_join_storm() {
        let config = CloudConfig::default();
        let operator = |_| Some(KEY.to_string());
        // 1,000 GETs in a second from one key: the burst (400) and what the
        // second refills (200, less the last millisecond), no more.
        let mut limits = RateLimits::new(&config);
        assert_eq!(admitted(&mut limits, 1_000, 1_000, operator, false), 599);
        // 2,000 participants of one key rejoining within a second, then `connector load`'s
        // fastest pace for ten seconds: every ticket issued.
        let mut limits = RateLimits::new(&config);
        assert_eq!(admitted(&mut limits, 2_000, 1_000, operator, true), 2_000);
        let mut limits = RateLimits::new(&config);
        assert_eq!(
            admitted(&mut limits, 10_000, 10_000, operator, true),
            10_000
        );
        // 500 wrong keys in a second from one address: the burst (100) and what a second refills (20).
        let mut limits = RateLimits::new(&config);
        let wrong = |i| Some(format!("wrong-{i}"));
        assert_eq!(admitted(&mut limits, 500, 1_000, wrong, false), 119);
        // And no key at all counts the same.
        let mut limits = RateLimits::new(&config);
        assert_eq!(admitted(&mut limits, 500, 1_000, |_| None, false), 119);
    }
}
