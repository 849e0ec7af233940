//! Cloud notification: the ordered log of meeting events pushed to controllers. Each event has a
//! sequence number; a controller that reconnects says which it saw last and gets the rest. The log
//! keeps the newest `capacity` events, so memory is bounded; a controller further behind is told
//! how far back the log reaches.

use mc_wire::notify::MeetingEvent;
use std::collections::VecDeque;

#[derive(Debug)]
pub struct NotificationLog {
    capacity: usize,
    events: VecDeque<(u64, u64, MeetingEvent)>,
    next_seq: u64,
}

impl NotificationLog {
    pub fn new(capacity: usize) -> NotificationLog {
        assert!(capacity > 0);
        NotificationLog {
            capacity,
            events: VecDeque::new(),
            next_seq: 1,
        }
    }

    /// Appends an event; returns its sequence number.
    pub fn push(&mut self, now_ms: u64, event: MeetingEvent) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        if self.events.len() == self.capacity {
            self.events.pop_front();
        }
        self.events.push_back((seq, now_ms, event));
        seq
    }

    pub fn latest_seq(&self) -> u64 {
        self.next_seq - 1
    }

    /// The oldest sequence number still held (latest + 1 when empty).
    pub fn oldest_seq(&self) -> u64 {
        self.events.front().map_or(self.next_seq, |(s, _, _)| *s)
    }

    /// Events after `after_seq`, oldest first, as (seq, at_ms, event).
    pub fn since(&self, after_seq: u64) -> impl Iterator<Item = &(u64, u64, MeetingEvent)> {
        self.events.iter().filter(move |(s, _, _)| *s > after_seq)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mc_wire::MeetingId;

    #[test]
    fn replays_what_a_controller_missed_within_the_bound() {
        let mut log = NotificationLog::new(3);
        for i in 1..=5 {
            log.push(
                i * 10,
                MeetingEvent::Started {
                    meeting: MeetingId(i),
                },
            );
        }
        assert_eq!((log.oldest_seq(), log.latest_seq()), (3, 5));
        let seqs: Vec<u64> = log.since(3).map(|(s, _, _)| *s).collect();
        assert_eq!(seqs, vec![4, 5]);
        assert_eq!(log.since(0).count(), 3);
        assert_eq!(log.since(5).count(), 0);
    }
}
