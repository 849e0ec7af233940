//! The management API's request limits: the size limits the connection is served with, and the
//! rate limits, one token bucket per API key (join tickets apart), and per source address for
//! requests whose key is missing or unknown. The buckets are [`mc_core`]'s; they live in the
//! cloud's state and are read with the cloud's clock, so they run in simulation too.

use crate::config::CloudConfig;
use mc_core::cloud::management::{Caller, Management, UserId};
use mc_core::cloud::rate_limit::{Admission, Rate, RateLimiter};
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
