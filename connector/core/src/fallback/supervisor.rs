//! The supervisor of a link dialled for as long as the process runs: which target and path to
//! dial next, how long to back off when nothing answers, and when to re-probe the better path.
//!
//! Contract: while no link is up, the shell asks [`Supervisor::next_step`] and dials or sleeps as
//! told, reporting each dial with [`Supervisor::dial_failed`] / [`Supervisor::established`]. While
//! a link is up it sleeps until [`Supervisor::poll_timeout`], asks [`Supervisor::reprobe_due`]
//! and dials the path it names in the background; if that answers, it reports `established` on
//! it and moves the link over. When the link ends it reports [`Supervisor::lost`].

use super::{Backoff, Ladder, LadderState};

/// What the shell does next while no link is up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step<P> {
    /// Dial `path` of target `target` (an index into the targets the shell holds).
    Dial { target: usize, path: P },
    /// Nothing to dial before `until_ms`; ask again then.
    Wait { until_ms: u64 },
}

/// What a failed dial leads to, for the shell to log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DialFailed {
    /// The next path of the same target is tried.
    NextPath,
    /// Every path of target `failed` failed; target `next` is tried.
    NextTarget { failed: usize, next: usize },
    /// Every path of every target failed: nothing is dialled for `retry_in_ms`. `first` is true
    /// for the first such round since the link was last up.
    Unreachable { retry_in_ms: u64, first: bool },
}

#[derive(Debug, Clone)]
pub struct Supervisor<P> {
    targets: usize,
    /// The target being dialled or linked. A link stays with the target that answered until it
    /// is lost there on every path; only then does the next target get its turn.
    current: usize,
    /// The paths of the current target (every target has the same kinds of path).
    ladder: Ladder<P>,
    backoff: Backoff,
    /// Rounds in which every target failed since the link was last up: the backoff's round.
    round: u32,
    /// Targets that failed on every path in this round.
    failed_targets: usize,
    /// Set while backing off: nothing is dialled before it.
    wait_until_ms: Option<u64>,
}

impl<P: Clone + PartialEq> Supervisor<P> {
    /// `targets` targets (at least one), each dialled on `paths`, best first.
    pub fn new(
        targets: usize,
        paths: Vec<P>,
        backoff: Backoff,
        reprobe_interval_ms: u64,
    ) -> Supervisor<P> {
        assert!(targets > 0, "a link needs at least one target");
        Supervisor {
            targets,
            current: 0,
            ladder: Ladder::new(paths, reprobe_interval_ms),
            backoff,
            round: 0,
            failed_targets: 0,
            wait_until_ms: None,
        }
    }

    /// What to do next. Only while no link is up: a link that is up is reported [`Self::lost`]
    /// before anything is dialled again.
    pub fn next_step(&mut self, now_ms: u64) -> Step<P> {
        assert!(
            self.ladder.state() != LadderState::Established,
            "next_step while a link is up"
        );
        if let Some(until_ms) = self.wait_until_ms {
            if now_ms < until_ms {
                return Step::Wait { until_ms };
            }
            self.wait_until_ms = None;
        }
        let path = self
            .ladder
            .next_to_try()
            .expect("an exhausted ladder is reset when its last path fails")
            .clone();
        Step::Dial {
            target: self.current,
            path,
        }
    }

    /// The dial of `path` on the current target failed.
    pub fn dial_failed(&mut self, now_ms: u64, path: &P) -> DialFailed {
        self.ladder.attempt_failed(path);
        if self.ladder.state() != LadderState::Exhausted {
            return DialFailed::NextPath;
        }
        self.ladder.reset();
        let failed = self.current;
        self.current = (self.current + 1) % self.targets;
        self.failed_targets += 1;
        if self.failed_targets < self.targets {
            return DialFailed::NextTarget {
                failed,
                next: self.current,
            };
        }
        self.failed_targets = 0;
        let retry_in_ms = self.backoff.delay_ms(self.round);
        let first = self.round == 0;
        self.round = self.round.saturating_add(1);
        self.wait_until_ms = Some(now_ms.saturating_add(retry_in_ms));
        DialFailed::Unreachable { retry_in_ms, first }
    }

    /// A link is up on `path` of the current target: a dial answered, or a re-probe did and the
    /// link moves there. The backoff starts over.
    pub fn established(&mut self, now_ms: u64, path: &P) {
        self.ladder.established(now_ms, path);
        self.round = 0;
        self.failed_targets = 0;
        self.wait_until_ms = None;
    }

    /// The link that was up ended. The same target's path that worked is dialled again first,
    /// after the current backoff: a peer that drops links as they come is not hammered.
    pub fn lost(&mut self, now_ms: u64) {
        self.ladder.lost();
        self.wait_until_ms = Some(now_ms.saturating_add(self.backoff.delay_ms(self.round)));
    }

    /// While the link is up on a worse path than the best and the re-probe interval has passed:
    /// the current target and its best path, to be dialled in the background.
    pub fn reprobe_due(&mut self, now_ms: u64) -> Option<(usize, P)> {
        self.ladder
            .reprobe_due(now_ms)
            .map(|path| (self.current, path))
    }

    /// When to call again: the end of a backoff, or while linked below the best path, the next
    /// re-probe. `None`: nothing falls due until the shell reports something.
    pub fn poll_timeout(&self) -> Option<u64> {
        self.wait_until_ms.or_else(|| self.ladder.reprobe_at_ms())
    }

    /// The target dialled or linked now.
    pub fn current_target(&self) -> usize {
        self.current
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BACKOFF: Backoff = Backoff::doubling(500, 2_000);

    fn dial<P: Clone + PartialEq + std::fmt::Debug>(
        s: &mut Supervisor<P>,
        now_ms: u64,
    ) -> (usize, P) {
        match s.next_step(now_ms) {
            Step::Dial { target, path } => (target, path),
            other => panic!("expected a dial, got {other:?}"),
        }
    }

    #[test]
    fn falls_down_the_ports_of_one_target_then_backs_off() {
        let mut s = Supervisor::new(1, vec![8803, 443], BACKOFF, 30_000);
        assert_eq!(dial(&mut s, 0), (0, 8803));
        assert_eq!(s.dial_failed(0, &8803), DialFailed::NextPath);
        assert_eq!(dial(&mut s, 0), (0, 443));
        assert_eq!(
            s.dial_failed(10, &443),
            DialFailed::Unreachable {
                retry_in_ms: 500,
                first: true
            }
        );
        assert_eq!(s.next_step(100), Step::Wait { until_ms: 510 });
        assert_eq!(s.poll_timeout(), Some(510));
        assert_eq!(
            dial(&mut s, 510),
            (0, 8803),
            "a new round starts at the best"
        );
    }

    #[test]
    fn switches_target_only_after_both_ports_fail() {
        let mut s = Supervisor::new(2, vec!["dedicated", "fallback"], BACKOFF, 30_000);
        assert_eq!(s.dial_failed(0, &"dedicated"), DialFailed::NextPath);
        assert_eq!(dial(&mut s, 0), (0, "fallback"));
        assert_eq!(
            s.dial_failed(0, &"fallback"),
            DialFailed::NextTarget { failed: 0, next: 1 }
        );
        assert_eq!(dial(&mut s, 0), (1, "dedicated"));
        s.dial_failed(0, &"dedicated");
        assert_eq!(
            s.dial_failed(0, &"fallback"),
            DialFailed::Unreachable {
                retry_in_ms: 500,
                first: true
            }
        );
        assert_eq!(
            dial(&mut s, 500),
            (0, "dedicated"),
            "after the backoff, the round starts over with the first target tried"
        );
    }

    #[test]
    fn stays_with_the_target_that_answered() {
        let mut s = Supervisor::new(2, vec!["dedicated", "fallback"], BACKOFF, 30_000);
        s.dial_failed(0, &"dedicated");
        s.dial_failed(0, &"fallback");
        assert_eq!(dial(&mut s, 0), (1, "dedicated"));
        s.established(0, &"dedicated");
        s.lost(1_000);
        assert_eq!(s.next_step(1_000), Step::Wait { until_ms: 1_500 });
        assert_eq!(
            dial(&mut s, 1_500),
            (1, "dedicated"),
            "the same target again"
        );
        assert_eq!(s.dial_failed(1_500, &"dedicated"), DialFailed::NextPath);
        assert_eq!(dial(&mut s, 1_500), (1, "fallback"));
        assert_eq!(
            s.dial_failed(1_500, &"fallback"),
            DialFailed::NextTarget { failed: 1, next: 0 }
        );
        assert_eq!(s.current_target(), 0);
    }

    #[test]
    fn backoff_doubles_per_failed_round_and_starts_over_once_established() {
        let mut s = Supervisor::new(1, vec![1, 2], BACKOFF, 30_000);
        let mut now_ms = 0;
        let mut waits = Vec::new();
        for _ in 0..4 {
            s.dial_failed(now_ms, &1);
            match s.dial_failed(now_ms, &2) {
                DialFailed::Unreachable { retry_in_ms, first } => {
                    waits.push((retry_in_ms, first));
                    now_ms += retry_in_ms;
                }
                other => panic!("expected unreachable, got {other:?}"),
            }
            assert!(matches!(s.next_step(now_ms), Step::Dial { .. }));
        }
        assert_eq!(
            waits,
            [(500, true), (1_000, false), (2_000, false), (2_000, false)]
        );
        s.established(now_ms, &1);
        s.lost(now_ms);
        assert_eq!(
            s.poll_timeout(),
            Some(now_ms + 500),
            "lost waits the first backoff"
        );
        now_ms += 500;
        s.dial_failed(now_ms, &1);
        assert_eq!(
            s.dial_failed(now_ms, &2),
            DialFailed::Unreachable {
                retry_in_ms: 500,
                first: true
            }
        );
    }

    #[test]
    fn a_lost_link_waits_then_redials_the_path_that_worked() {
        let mut s = Supervisor::new(1, vec![1, 2], BACKOFF, 30_000);
        s.dial_failed(0, &1);
        s.established(0, &2);
        s.lost(5_000);
        assert_eq!(s.next_step(5_499), Step::Wait { until_ms: 5_500 });
        assert_eq!(dial(&mut s, 5_500), (0, 2));
        assert_eq!(
            s.dial_failed(5_500, &2),
            DialFailed::Unreachable {
                retry_in_ms: 500,
                first: true
            }
        );
    }

    #[test]
    fn reprobes_the_best_path_of_the_current_target_only_while_on_a_worse_one() {
        let mut s = Supervisor::new(2, vec!["dedicated", "fallback"], BACKOFF, 30_000);
        s.established(0, &"dedicated");
        assert_eq!(s.poll_timeout(), None, "nothing is better than the best");
        assert_eq!(s.reprobe_due(60_000), None);
        s.lost(60_000);
        s.next_step(60_500);
        s.dial_failed(60_500, &"dedicated");
        s.dial_failed(60_500, &"fallback");
        s.dial_failed(60_500, &"dedicated");
        assert_eq!(dial(&mut s, 60_500), (1, "fallback"));
        s.established(61_000, &"fallback");
        assert_eq!(s.poll_timeout(), Some(91_000));
        assert_eq!(s.reprobe_due(90_999), None);
        assert_eq!(s.reprobe_due(91_000), Some((1, "dedicated")));
        assert_eq!(
            s.poll_timeout(),
            Some(121_000),
            "a failed probe waits another interval"
        );
        s.established(95_000, &"dedicated");
        assert_eq!(s.poll_timeout(), None, "moved back: nothing to re-probe");
    }

    #[test]
    fn poll_timeout_is_the_backoff_while_down_and_none_while_dialling() {
        let mut s = Supervisor::new(1, vec![1, 2], BACKOFF, 30_000);
        assert_eq!(s.poll_timeout(), None);
        s.dial_failed(0, &1);
        assert_eq!(s.poll_timeout(), None);
        s.dial_failed(7, &2);
        assert_eq!(s.poll_timeout(), Some(507));
        s.next_step(507);
        assert_eq!(
            s.poll_timeout(),
            None,
            "the wait is over once dialling resumes"
        );
    }
}
