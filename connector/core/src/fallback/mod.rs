//! Port fallback (DESIGN §3): try the dedicated port with a short timeout, then the next path;
//! remember what worked; periodically re-probe the better paths.
//!
//! Contract: the shell asks [`Ladder::next_to_try`] which path to attempt, reports each attempt's
//! result with [`Ladder::attempt_failed`] / [`Ladder::established`], and while established asks
//! [`Ladder::reprobe_due`] whether to probe a better path in the background. A link that is
//! dialled for as long as the process runs is driven by a [`Supervisor`] instead, which adds the
//! targets, the retry backoff and the deadlines around a ladder.

use serde::Serialize;

mod supervisor;

pub use supervisor::{DialFailed, Step, Supervisor};

/// A retry policy: how long to wait before each retry round. Every link and the client's joins
/// retry by one of these, named where it is used, so "how hard do we press on a peer that is
/// down" has one answer per link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub first_ms: u64,
    pub max_ms: u64,
    pub growth: Growth,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Growth {
    /// `first`, 2×`first`, 3×`first`, …: steady pressure, for a service expected back within
    /// seconds (a zone failing over), where waiting long past its return costs the user.
    Linear,
    /// `first`, 2×`first`, 4×`first`, …: for a peer that may be gone for long.
    Doubling,
}

impl Backoff {
    pub const fn linear(first_ms: u64, max_ms: u64) -> Backoff {
        Backoff {
            first_ms,
            max_ms,
            growth: Growth::Linear,
        }
    }

    pub const fn doubling(first_ms: u64, max_ms: u64) -> Backoff {
        Backoff {
            first_ms,
            max_ms,
            growth: Growth::Doubling,
        }
    }

    /// The wait before retry round `round` (0: the first retry).
    pub fn delay_ms(&self, round: u32) -> u64 {
        let factor = match self.growth {
            Growth::Linear => round as u64 + 1,
            Growth::Doubling => 1u64.checked_shl(round.min(63)).unwrap_or(u64::MAX),
        };
        self.first_ms.saturating_mul(factor).min(self.max_ms)
    }
}

#[derive(Debug, Clone)]
pub struct Ladder<P> {
    /// Best first: the dedicated port, then each fallback.
    paths: Vec<P>,
    in_use: Option<usize>,
    /// The next path to attempt while not established.
    cursor: usize,
    reprobe_interval_ms: u64,
    next_reprobe_ms: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum LadderState {
    Trying,
    Established,
    Exhausted,
}

impl<P: Clone + PartialEq> Ladder<P> {
    pub fn new(paths: Vec<P>, reprobe_interval_ms: u64) -> Ladder<P> {
        assert!(!paths.is_empty(), "a link needs at least one path");
        Ladder {
            paths,
            in_use: None,
            cursor: 0,
            reprobe_interval_ms,
            next_reprobe_ms: 0,
        }
    }

    pub fn next_to_try(&self) -> Option<&P> {
        match self.in_use {
            Some(_) => None,
            None => self.paths.get(self.cursor),
        }
    }

    pub fn attempt_failed(&mut self, path: &P) {
        if self.in_use.is_none() && self.paths.get(self.cursor) == Some(path) {
            self.cursor += 1;
        }
    }

    pub fn established(&mut self, now_ms: u64, path: &P) {
        let idx = self
            .paths
            .iter()
            .position(|p| p == path)
            .expect("established on a path of the ladder");
        self.in_use = Some(idx);
        self.next_reprobe_ms = now_ms.saturating_add(self.reprobe_interval_ms);
    }

    /// The link in use broke: start again from the path that worked last time, then go down.
    pub fn lost(&mut self) {
        self.cursor = self.in_use.take().unwrap_or(0);
    }

    /// Start over from the best path (e.g. after every path failed, on the retry timer).
    pub fn reset(&mut self) {
        self.in_use = None;
        self.cursor = 0;
    }

    pub fn state(&self) -> LadderState {
        match (self.in_use, self.cursor < self.paths.len()) {
            (Some(_), _) => LadderState::Established,
            (None, true) => LadderState::Trying,
            (None, false) => LadderState::Exhausted,
        }
    }

    /// When established below the best path and the interval has passed: the best path, to be
    /// probed in the background. The shell moves over with [`Ladder::established`] if it works.
    pub fn reprobe_due(&mut self, now_ms: u64) -> Option<P> {
        let i = self.in_use?;
        if i == 0 || now_ms < self.next_reprobe_ms {
            return None;
        }
        self.next_reprobe_ms = now_ms.saturating_add(self.reprobe_interval_ms);
        Some(self.paths[0].clone())
    }

    /// When the next re-probe falls due: only while established below the best path.
    pub fn reprobe_at_ms(&self) -> Option<u64> {
        match self.in_use {
            Some(i) if i > 0 => Some(self.next_reprobe_ms),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn falls_down_the_ladder_and_climbs_back_when_the_better_path_returns() {
        let mut l = Ladder::new(vec!["udp", "tcp", "tls"], 30_000);
        assert_eq!(l.next_to_try(), Some(&"udp"));
        l.attempt_failed(&"udp");
        l.attempt_failed(&"tcp");
        assert_eq!(l.next_to_try(), Some(&"tls"));
        l.established(1_000, &"tls");
        assert_eq!(l.state(), LadderState::Established);
        assert_eq!(l.reprobe_due(20_000), None);
        assert_eq!(l.reprobe_due(31_000), Some("udp"));
        assert_eq!(
            l.reprobe_due(32_000),
            None,
            "probes are spaced by the interval"
        );
        l.established(40_000, &"udp");
        assert_eq!(
            l.reprobe_due(100_000),
            None,
            "nothing is better than the best path"
        );
    }

    #[test]
    fn backoff_grows_up_to_its_cap() {
        let b = Backoff::doubling(500, 4_000);
        let waits: Vec<u64> = (0..6).map(|r| b.delay_ms(r)).collect();
        assert_eq!(waits, [500, 1_000, 2_000, 4_000, 4_000, 4_000]);
        assert_eq!(b.delay_ms(200), 4_000, "no overflow on a long outage");
        let b = Backoff::linear(500, 1_800);
        let waits: Vec<u64> = (0..5).map(|r| b.delay_ms(r)).collect();
        assert_eq!(waits, [500, 1_000, 1_500, 1_800, 1_800]);
        assert_eq!(b.delay_ms(u32::MAX), 1_800);
    }

    #[test]
    fn a_lost_link_retries_what_worked_first() {
        let mut l = Ladder::new(vec![1, 2, 3], 1);
        l.attempt_failed(&1);
        l.established(0, &2);
        l.lost();
        assert_eq!(l.next_to_try(), Some(&2));
        l.attempt_failed(&2);
        l.attempt_failed(&3);
        assert_eq!(l.state(), LadderState::Exhausted);
        l.reset();
        assert_eq!(l.next_to_try(), Some(&1));
    }
}
