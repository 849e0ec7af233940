//! The load generator's pacing as a sans-IO machine: participants start at a steady rate from
//! when arrivals begin, progress is reported on a fixed cadence from the start, and a stop ends
//! the arrivals. The shell feeds it the clock and starts whom it names.

/// What falls due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    /// Start participant `index` (0-based, in arrival order).
    Start(u64),
    /// Report progress, `elapsed_ms` after the start.
    Progress { elapsed_ms: u64 },
}

#[derive(Debug)]
pub struct Pacer {
    started_ms: u64,
    arrivals_from_ms: Option<u64>,
    arrivals_per_s: f64,
    planned: u64,
    started: u64,
    progress_every_ms: u64,
    next_progress_ms: u64,
    stopping: bool,
}

impl Pacer {
    /// A run that started at `now_ms`; arrivals wait for [`Pacer::begin_arrivals`].
    pub fn new(now_ms: u64, arrivals_per_s: f64, planned: u64, progress_every_ms: u64) -> Pacer {
        let progress_every_ms = progress_every_ms.max(1);
        Pacer {
            started_ms: now_ms,
            arrivals_from_ms: None,
            arrivals_per_s,
            planned,
            started: 0,
            progress_every_ms,
            next_progress_ms: now_ms + progress_every_ms,
            stopping: false,
        }
    }

    /// The meetings exist: participant `i` is due `i / arrivals_per_s` seconds from `now_ms`.
    pub fn begin_arrivals(&mut self, now_ms: u64) {
        self.arrivals_from_ms = Some(now_ms);
    }

    /// No one else starts.
    pub fn stop(&mut self) {
        self.stopping = true;
    }

    /// Participants started so far.
    pub fn started(&self) -> u64 {
        self.started
    }

    /// Whether every participant that will start has started.
    pub fn arrivals_done(&self) -> bool {
        self.stopping || self.started >= self.planned
    }

    pub fn elapsed_ms(&self, now_ms: u64) -> u64 {
        now_ms.saturating_sub(self.started_ms)
    }

    fn next_arrival_ms(&self) -> Option<u64> {
        let from_ms = self.arrivals_from_ms.filter(|_| !self.arrivals_done())?;
        let offset_ms = self.started as f64 * 1000.0 / self.arrivals_per_s;
        Some(from_ms + offset_ms as u64)
    }

    /// When something next falls due.
    pub fn poll_timeout(&self) -> u64 {
        self.next_arrival_ms()
            .map_or(self.next_progress_ms, |a| a.min(self.next_progress_ms))
    }

    /// What is due by `now_ms`, one at a time (arrivals first; a late progress report is made
    /// once, not once per missed interval).
    pub fn poll(&mut self, now_ms: u64) -> Option<Due> {
        if self.next_arrival_ms().is_some_and(|t| t <= now_ms) {
            self.started += 1;
            return Some(Due::Start(self.started - 1));
        }
        if self.next_progress_ms <= now_ms {
            let every = self.progress_every_ms;
            self.next_progress_ms += (now_ms - self.next_progress_ms) / every * every + every;
            return Some(Due::Progress {
                elapsed_ms: self.elapsed_ms(now_ms),
            });
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(p: &mut Pacer, now_ms: u64) -> Vec<Due> {
        std::iter::from_fn(|| p.poll(now_ms)).collect()
    }

    #[test]
    fn arrivals_keep_their_rate_from_when_they_begin_and_a_stop_ends_them() {
        let mut p = Pacer::new(0, 4.0, 3, 1_000);
        assert_eq!(
            p.poll_timeout(),
            1_000,
            "no arrivals before the meetings exist"
        );
        p.begin_arrivals(300);
        assert_eq!(drain(&mut p, 300), [Due::Start(0)]);
        assert_eq!(p.poll_timeout(), 550);
        assert_eq!(drain(&mut p, 560), [Due::Start(1)]);
        p.stop();
        assert!(p.arrivals_done());
        assert_eq!(drain(&mut p, 900), []);
        assert_eq!(p.started(), 2);
    }

    #[test]
    fn a_late_progress_report_is_made_once_and_keeps_the_cadence() {
        let mut p = Pacer::new(0, 1.0, 0, 1_000);
        assert_eq!(drain(&mut p, 3_500), [Due::Progress { elapsed_ms: 3_500 }]);
        assert_eq!(p.poll_timeout(), 4_000);
        assert!(p.arrivals_done(), "nothing planned");
    }
}
