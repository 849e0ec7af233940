//! Token buckets, one per caller (an API key or a source address at the cloud's management API; a
//! source address on an MMR's media port). Sans-IO: every call takes `now_ms`.
//!
//! A bucket holds up to `burst` requests and refills at `rate_per_s`; a request takes one. Memory
//! is bounded: at most `max_tracked` callers are remembered, and a new caller beyond that evicts
//! the one heard from longest ago. That one has refilled the most, so forgetting it (it would
//! start again with a full bucket) gives away the least.

use std::collections::{BTreeMap, BTreeSet};

/// How fast and how far a caller may go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Requests per second, sustained. At least 1.
    pub rate_per_s: u32,
    /// Requests at once, after a quiet spell. At least 1.
    pub burst: u32,
}

/// What a request is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    Admitted,
    /// Over the rate: the next request is admitted after this long.
    Limited {
        retry_after_ms: u64,
    },
}

/// Tokens are counted in thousandths, so refilling `rate_per_s` per second is an integer
/// `rate_per_s` per millisecond.
const MILLI: u64 = 1_000;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    milli_tokens: u64,
    last_ms: u64,
}

/// Buckets for callers of type `K`.
#[derive(Debug)]
pub struct RateLimiter<K: Ord + Clone> {
    rate: Rate,
    max_tracked: usize,
    buckets: BTreeMap<K, Bucket>,
    /// The same callers ordered by when each was last heard from, to evict the quietest.
    by_last: BTreeSet<(u64, K)>,
}

impl<K: Ord + Clone> RateLimiter<K> {
    /// `rate`'s fields and `max_tracked` are raised to at least 1.
    pub fn new(rate: Rate, max_tracked: usize) -> RateLimiter<K> {
        RateLimiter {
            rate: Rate {
                rate_per_s: rate.rate_per_s.max(1),
                burst: rate.burst.max(1),
            },
            max_tracked: max_tracked.max(1),
            buckets: BTreeMap::new(),
            by_last: BTreeSet::new(),
        }
    }

    /// Takes one request from `caller`'s bucket, if it holds one.
    pub fn admit(&mut self, caller: &K, now_ms: u64) -> Admission {
        let full = u64::from(self.rate.burst) * MILLI;
        let per_ms = u64::from(self.rate.rate_per_s);
        let mut bucket = match self.buckets.get(caller) {
            Some(b) => {
                self.by_last.remove(&(b.last_ms, caller.clone()));
                let refilled = now_ms.saturating_sub(b.last_ms).saturating_mul(per_ms);
                Bucket {
                    milli_tokens: b.milli_tokens.saturating_add(refilled).min(full),
                    // A clock that steps back does not refill, and is not taken as the new base.
                    last_ms: b.last_ms.max(now_ms),
                }
            }
            None => {
                if self.buckets.len() >= self.max_tracked {
                    self.evict_quietest();
                }
                Bucket {
                    milli_tokens: full,
                    last_ms: now_ms,
                }
            }
        };
        let admission = if bucket.milli_tokens >= MILLI {
            bucket.milli_tokens -= MILLI;
            Admission::Admitted
        } else {
            Admission::Limited {
                retry_after_ms: (MILLI - bucket.milli_tokens).div_ceil(per_ms),
            }
        };
        self.by_last.insert((bucket.last_ms, caller.clone()));
        self.buckets.insert(caller.clone(), bucket);
        admission
    }

    /// Callers remembered now.
    pub fn tracked(&self) -> usize {
        self.buckets.len()
    }

    fn evict_quietest(&mut self) {
        if let Some((_, k)) = self.by_last.pop_first() {
            self.buckets.remove(&k);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(rate_per_s: u32, burst: u32, max_tracked: usize) -> RateLimiter<&'static str> {
        RateLimiter::new(Rate { rate_per_s, burst }, max_tracked)
    }

    fn admitted(l: &mut RateLimiter<&'static str>, k: &'static str, n: u32, now_ms: u64) -> u32 {
        (0..n)
            .filter(|_| l.admit(&k, now_ms) == Admission::Admitted)
            .count() as u32
    }

    #[test]
    fn a_burst_passes_then_the_rate_holds_and_the_wait_is_told() {
        let mut l = limiter(10, 20, 100);
        assert_eq!(admitted(&mut l, "k", 1_000, 0), 20);
        assert_eq!(
            l.admit(&"k", 0),
            Admission::Limited {
                retry_after_ms: 100
            }
        );
        assert_eq!(l.admit(&"k", 40), Admission::Limited { retry_after_ms: 60 });
        assert_eq!(l.admit(&"k", 100), Admission::Admitted);
        // A second of 1,000 requests after that: the rate's ten get through, no more.
        let through: u32 = (1..=1_000).map(|i| admitted(&mut l, "k", 1, 100 + i)).sum();
        assert_eq!(through, 10);
    }

    #[test]
    fn callers_have_their_own_buckets_and_a_quiet_one_refills_to_the_burst_only() {
        let mut l = limiter(5, 3, 100);
        assert_eq!(admitted(&mut l, "a", 10, 0), 3);
        assert_eq!(admitted(&mut l, "b", 10, 0), 3);
        assert_eq!(admitted(&mut l, "a", 10, 3_600_000), 3);
    }

    #[test]
    fn memory_is_bounded_by_evicting_the_quietest_caller() {
        let mut l: RateLimiter<u32> = RateLimiter::new(
            Rate {
                rate_per_s: 1,
                burst: 1,
            },
            3,
        );
        for (k, at) in [(1, 0), (2, 10), (3, 20)] {
            assert_eq!(l.admit(&k, at), Admission::Admitted);
        }
        assert_eq!(
            l.admit(&1, 30),
            Admission::Limited {
                retry_after_ms: 970
            }
        );
        // 2 is now the quietest: a fourth caller evicts it, and 1 stays limited.
        assert_eq!(l.admit(&4, 40), Admission::Admitted);
        assert_eq!(l.tracked(), 3);
        assert!(matches!(l.admit(&1, 50), Admission::Limited { .. }));
        assert_eq!(l.admit(&2, 60), Admission::Admitted, "2 was forgotten");
        for k in 100..10_000 {
            l.admit(&k, 100);
        }
        assert_eq!(l.tracked(), 3);
    }

    #[test]
    fn a_clock_stepping_back_neither_refills_nor_panics() {
        let mut l = limiter(1, 1, 10);
        assert_eq!(l.admit(&"k", 5_000), Admission::Admitted);
        assert!(matches!(l.admit(&"k", 0), Admission::Limited { .. }));
        assert!(matches!(l.admit(&"k", 5_500), Admission::Limited { .. }));
        assert_eq!(l.admit(&"k", 6_000), Admission::Admitted);
    }
}
