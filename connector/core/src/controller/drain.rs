//! Events from cloud notification, and the operator's drain: a drained controller or MMR takes no
//! new meetings, and its meetings move one at a time, spread over the deadline so their
//! participants do not all rejoin at once. (A meeting moves whole: all its participants are told
//! to rejoin, so it is never on two MMRs.) Undraining stops the moves and takes new meetings again.

use super::{Controller, DrainScope, Event};
use mc_wire::notify::{DrainTarget, MeetingEvent};
use mc_wire::{MeetingId, MmrId};
use std::collections::VecDeque;

#[derive(Debug)]
pub(super) struct Drain {
    scope: DrainScope,
    /// The meetings there when the drain began, to move in turn.
    queue: VecDeque<MeetingId>,
    spacing_ms: u64,
    pub(super) next_ms: u64,
}

impl Controller {
    pub(super) fn notification(&mut self, now_ms: u64, event: MeetingEvent) {
        match event {
            MeetingEvent::Ended { meeting, reason } => {
                let participants = self.zc.end_meeting(meeting, &reason);
                self.pump(now_ms);
                self.event(Event::MeetingEndedByCloud {
                    meeting,
                    reason,
                    participants,
                });
            }
            MeetingEvent::ParticipantRemoved {
                meeting,
                participant,
                reason,
            } => {
                if self.zc.remove_participant(participant, &reason) {
                    self.pump(now_ms);
                    self.event(Event::ParticipantRemovedByCloud {
                        participant,
                        meeting,
                    });
                }
            }
            MeetingEvent::Drain {
                target,
                on,
                deadline_ms,
            } => self.drain(now_ms, target, on, deadline_ms),
            MeetingEvent::Scheduled { .. } | MeetingEvent::Started { .. } => {}
        }
    }

    fn drain(&mut self, now_ms: u64, target: DrainTarget, on: bool, deadline_ms: u64) {
        let (mmr, scope) = match target {
            DrainTarget::Controller(id) if id == self.p.id => (None, DrainScope::Controller(id)),
            DrainTarget::Controller(_) => return,
            DrainTarget::Mmr(id) => (Some(id.clone()), DrainScope::Mmr(id)),
        };
        match &mmr {
            None => self.zc.set_draining(on),
            Some(id) => {
                if !self.zc.set_mmr_draining(id, on) {
                    return; // not one of ours
                }
            }
        }
        self.event(Event::Draining {
            scope: scope.clone(),
            on,
            deadline_ms,
        });
        if on {
            let queue: VecDeque<MeetingId> = self.zc.meetings_on(mmr.as_ref()).into();
            // Leave a tenth of the deadline for the last meeting's participants to land elsewhere.
            let spacing_ms = deadline_ms * 9 / 10 / queue.len().max(1) as u64;
            let drain = Drain {
                scope,
                queue,
                spacing_ms,
                next_ms: now_ms,
            };
            self.drains.insert(mmr, drain);
        }
    }

    /// Moves the next meeting of every drain that is due.
    pub(super) fn drains_due(&mut self, now_ms: u64) {
        let due: Vec<Option<MmrId>> = self
            .drains
            .iter()
            .filter(|(_, d)| d.next_ms <= now_ms)
            .map(|(m, _)| m.clone())
            .collect();
        for mmr in due {
            self.drain_step(now_ms, mmr);
        }
    }

    fn drain_step(&mut self, now_ms: u64, mmr: Option<MmrId>) {
        let draining = match &mmr {
            None => self.zc.is_draining(),
            Some(id) => self.zc.is_mmr_draining(id),
        };
        if !draining {
            self.drains.remove(&mmr); // undrained meanwhile
            return;
        }
        let on_target = self.zc.meetings_on(mmr.as_ref());
        let drain = self.drains.get_mut(&mmr).expect("due drains exist");
        // Meetings that ended or moved meanwhile are skipped.
        let next = std::iter::from_fn(|| drain.queue.pop_front()).find(|m| on_target.contains(m));
        let scope = drain.scope.clone();
        let Some(meeting) = next else {
            self.drains.remove(&mmr);
            self.event(Event::Drained { scope });
            return;
        };
        drain.next_ms = now_ms + drain.spacing_ms;
        let reason = format!("{scope} is being drained for maintenance; join again to continue");
        let participants = self.zc.move_meeting(meeting, &reason);
        self.pump(now_ms);
        self.event(Event::MovedMeeting {
            meeting,
            participants,
            scope,
        });
    }
}
