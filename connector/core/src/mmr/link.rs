//! The timers of an MMR VM's link session to its controller: the hello must be answered in time,
//! load is reported every interval the controller names, and a controller that goes silent for
//! three intervals has lost the link.
//!
//! Contract: the shell creates a [`LinkSession`] when it has sent its hello, reports the welcome
//! with [`LinkSession::on_welcome`] and every later message with [`LinkSession::on_heard`], and
//! sleeps until [`LinkSession::poll_timeout`], then carries out [`LinkSession::handle_timeout`].
//! The load figures are the MMR's live counters, which the shell reads when told to send.

use thiserror::Error;

/// The shortest report interval this MMR accepts, whatever the controller asks for.
pub const MIN_REPORT_INTERVAL_MS: u64 = 50;
/// Silence for this many report intervals ends the link.
const SILENT_INTERVALS: u64 = 3;

/// Why the session's timers ended the link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum LinkLost {
    #[error("the controller did not answer the hello")]
    HelloUnanswered,
    /// The controller keeps the link alive every interval; silence for three means it is frozen
    /// or cut off, and its grants must not outlive it (its peer may be taking the meetings over).
    #[error("the controller sent nothing for {silence_ms} ms")]
    Silent { silence_ms: u64 },
}

/// What a timeout asks of the shell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkAction {
    /// Send `MmrToController::Load` with the MMR's current figures.
    SendLoad,
    /// The link is lost: end it.
    Lost(LinkLost),
}

#[derive(Debug, Clone)]
enum Phase {
    Hello {
        deadline_ms: u64,
    },
    Linked {
        interval_ms: u64,
        next_report_ms: u64,
        heard_ms: u64,
    },
}

#[derive(Debug, Clone)]
pub struct LinkSession {
    phase: Phase,
}

impl LinkSession {
    /// The hello was sent at `now_ms`; the welcome is due within `handshake_timeout_ms`.
    pub fn new(now_ms: u64, handshake_timeout_ms: u64) -> LinkSession {
        LinkSession {
            phase: Phase::Hello {
                deadline_ms: now_ms.saturating_add(handshake_timeout_ms),
            },
        }
    }

    /// Whether the controller has welcomed this MMR yet.
    pub fn welcomed(&self) -> bool {
        matches!(self.phase, Phase::Linked { .. })
    }

    /// The controller welcomed this MMR and asked for load every `report_interval_ms`. The first
    /// report falls due at once. Returns the interval in force.
    pub fn on_welcome(&mut self, now_ms: u64, report_interval_ms: u64) -> u64 {
        let interval_ms = report_interval_ms.max(MIN_REPORT_INTERVAL_MS);
        self.phase = Phase::Linked {
            interval_ms,
            next_report_ms: now_ms,
            heard_ms: now_ms,
        };
        interval_ms
    }

    /// The controller sent something (any message, keepalives included).
    pub fn on_heard(&mut self, now_ms: u64) {
        if let Phase::Linked { heard_ms, .. } = &mut self.phase {
            *heard_ms = now_ms;
        }
    }

    /// When [`Self::handle_timeout`] is next due: the hello deadline, then each report tick.
    /// Silence is judged on the report ticks, so it needs no deadline of its own.
    pub fn poll_timeout(&self) -> Option<u64> {
        Some(match self.phase {
            Phase::Hello { deadline_ms } => deadline_ms,
            Phase::Linked { next_report_ms, .. } => next_report_ms,
        })
    }

    /// What is due at `now_ms`, if anything.
    pub fn handle_timeout(&mut self, now_ms: u64) -> Option<LinkAction> {
        match &mut self.phase {
            Phase::Hello { deadline_ms } => {
                (now_ms >= *deadline_ms).then_some(LinkAction::Lost(LinkLost::HelloUnanswered))
            }
            Phase::Linked {
                interval_ms,
                next_report_ms,
                heard_ms,
            } => {
                if now_ms < *next_report_ms {
                    return None;
                }
                let silence_ms = SILENT_INTERVALS * *interval_ms;
                if now_ms.saturating_sub(*heard_ms) > silence_ms {
                    return Some(LinkAction::Lost(LinkLost::Silent { silence_ms }));
                }
                // Ticks missed while the shell was busy are not made up in a burst.
                let due_ms = *next_report_ms + *interval_ms;
                *next_report_ms = if due_ms > now_ms {
                    due_ms
                } else {
                    now_ms + *interval_ms
                };
                Some(LinkAction::SendLoad)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn welcomed(now_ms: u64, interval_ms: u64) -> LinkSession {
        let mut s = LinkSession::new(0, 5_000);
        s.on_welcome(now_ms, interval_ms);
        s
    }

    #[test]
    fn the_hello_must_be_answered_in_time() {
        let mut s = LinkSession::new(1_000, 5_000);
        assert!(!s.welcomed());
        assert_eq!(s.poll_timeout(), Some(6_000));
        assert_eq!(s.handle_timeout(5_999), None);
        assert_eq!(
            s.handle_timeout(6_000),
            Some(LinkAction::Lost(LinkLost::HelloUnanswered))
        );
        assert_eq!(s.on_welcome(5_000, 10), MIN_REPORT_INTERVAL_MS);
        assert!(s.welcomed());
        assert_eq!(
            s.poll_timeout(),
            Some(5_000),
            "the first report is due at once"
        );
    }

    #[test]
    fn load_reports_fall_due_every_interval() {
        let mut s = welcomed(1_000, 200);
        let mut sent = Vec::new();
        for now_ms in (1_000..=1_600).step_by(100) {
            s.on_heard(now_ms);
            if s.handle_timeout(now_ms) == Some(LinkAction::SendLoad) {
                sent.push(now_ms);
            }
        }
        assert_eq!(sent, [1_000, 1_200, 1_400, 1_600]);
        assert_eq!(s.poll_timeout(), Some(1_800));
    }

    #[test]
    fn missed_ticks_are_not_sent_in_a_burst() {
        let mut s = welcomed(0, 100);
        assert_eq!(s.handle_timeout(0), Some(LinkAction::SendLoad));
        s.on_heard(250);
        assert_eq!(s.handle_timeout(250), Some(LinkAction::SendLoad));
        assert_eq!(s.handle_timeout(250), None);
        assert_eq!(s.poll_timeout(), Some(350));
    }

    #[test]
    fn silence_for_three_intervals_loses_the_link() {
        let mut s = welcomed(0, 100);
        for now_ms in [0, 100, 200, 300] {
            assert_eq!(s.handle_timeout(now_ms), Some(LinkAction::SendLoad));
        }
        assert_eq!(
            s.handle_timeout(400),
            Some(LinkAction::Lost(LinkLost::Silent { silence_ms: 300 }))
        );
        assert_eq!(
            LinkLost::Silent { silence_ms: 300 }.to_string(),
            "the controller sent nothing for 300 ms"
        );
    }

    #[test]
    fn hearing_anything_resets_the_silence() {
        let mut s = welcomed(0, 100);
        for now_ms in (0..=1_000).step_by(100) {
            if now_ms % 300 == 0 {
                s.on_heard(now_ms);
            }
            assert_eq!(
                s.handle_timeout(now_ms),
                Some(LinkAction::SendLoad),
                "{now_ms}"
            );
        }
    }
}
