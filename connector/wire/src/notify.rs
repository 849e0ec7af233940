//! Cloud → controller notification messages (inside [`crate::frame`]s on mutual TLS 8804 or 443
//! `mc-notify/1`). The controller says hello with the last sequence number it has seen; the cloud
//! replays every later event it still holds, then pushes new ones as they happen. Controllers act
//! on them: an ended meeting's participants are disconnected with the reason, a removed
//! participant is disconnected.

use crate::{ControllerId, MeetingId, ParticipantId};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ControllerToNotify {
    /// `after_seq`: the last event this controller has handled (0 for none).
    Hello {
        controller: ControllerId,
        after_seq: u64,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum NotifyToController {
    /// Answers the hello. `oldest_seq` is the oldest event still held: if it is above the
    /// controller's `after_seq + 1`, events were missed and the controller should resynchronise.
    Welcome { oldest_seq: u64, latest_seq: u64 },
    Event {
        seq: u64,
        at_ms: u64,
        event: MeetingEvent,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum MeetingEvent {
    Scheduled {
        meeting: MeetingId,
        topic: String,
    },
    /// The first join ticket for the meeting was issued.
    Started {
        meeting: MeetingId,
    },
    Ended {
        meeting: MeetingId,
        reason: String,
    },
    ParticipantRemoved {
        meeting: MeetingId,
        participant: ParticipantId,
        reason: String,
    },
    /// An operator drains (`on`) or undrains a controller or an MMR: it takes no new meetings,
    /// and its meetings move (or end) within `deadline_ms`.
    Drain {
        target: DrainTarget,
        on: bool,
        deadline_ms: u64,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "kind",
    content = "id",
    rename_all = "snake_case",
    deny_unknown_fields
)]
pub enum DrainTarget {
    Controller(ControllerId),
    Mmr(crate::MmrId),
}
