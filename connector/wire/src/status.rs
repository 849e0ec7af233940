//! Controller ↔ cloud status sync messages (inside [`crate::frame`]s on mutual TLS 8803 or 443
//! `mc-status/1`). The controller registers once per connection, then heartbeats; the cloud
//! answers the registration with the key that verifies join tickets, and each heartbeat with an
//! ack that renews the controller's lease.
//!
//! Status sync is also the zone's meeting-ownership registry (DESIGN §5): a controller of an HA
//! pair claims a meeting before hosting it and releases it when it empties; every grant carries a
//! new epoch, so ownership that was taken over can never be acted on again.

use crate::{ControllerId, MeetingId};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ControllerToCloud {
    Register {
        controller: ControllerId,
        zone: String,
        signalling: SignallingEndpoints,
        capacity: Load,
        /// The meetings it still owns (after a reconnect), with their epochs.
        #[serde(default)]
        meetings: Vec<OwnedMeeting>,
    },
    /// Current load, and current capacity (MMRs come and go).
    Heartbeat {
        load: Load,
        capacity: Load,
        /// Whether it takes new meetings (false while drained). Absent means true.
        #[serde(default = "yes")]
        ready: bool,
        /// The controller's clock when sent (Unix ms), echoed in the ack. Absent: no ack wanted.
        #[serde(default)]
        sent_ms: u64,
    },
    /// May this controller host `meeting`? Answered by `claimed` with the same `request`.
    Claim {
        request: u64,
        meeting: MeetingId,
        /// Peers this controller heard from within their lease: their meetings are theirs even
        /// if the cloud has lost them.
        #[serde(default)]
        alive_peers: Vec<ControllerId>,
    },
    /// The meeting emptied here; the ownership with this epoch is given up.
    Release { meeting: MeetingId, epoch: u64 },
}

/// A meeting and the epoch it was granted with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OwnedMeeting {
    pub meeting: MeetingId,
    pub epoch: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum CloudToController {
    Registered {
        /// Hex Ed25519 public key that verifies join tickets.
        ticket_key: String,
        heartbeat_interval_ms: u64,
        /// How long an ack keeps a controller's ownership valid, from its heartbeat's `sent_ms`.
        /// Shorter than the time after which the cloud hands a silent controller's meetings over.
        #[serde(default)]
        lease_ms: u64,
        /// Meetings the registration listed that now belong to another controller.
        #[serde(default)]
        revoked: Vec<MeetingId>,
    },
    Rejected {
        message: String,
    },
    /// A heartbeat arrived.
    Ack {
        echo_ms: u64,
    },
    Claimed {
        request: u64,
        meeting: MeetingId,
        outcome: ClaimOutcome,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClaimOutcome {
    /// Host it; the epoch is new unless the claimant already owned the meeting.
    Granted { epoch: u64 },
    /// Another controller owns it: send its participants there.
    HostedBy {
        controller: ControllerId,
        signalling: SignallingEndpoints,
    },
    /// Not decidable now (the cloud just restarted and is relearning ownership, or the owner's
    /// lease may still run); retry, after `retry_after_ms` when the cloud knows when.
    Retry {
        message: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_after_ms: Option<u64>,
    },
}

fn yes() -> bool {
    true
}

/// Where clients reach a ZC: the dedicated port first, then the fallback.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignallingEndpoints {
    pub host: String,
    pub port: u16,
    pub fallback_port: u16,
}

/// Participants and meetings: as a load, or as a capacity.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Load {
    pub participants: u32,
    pub meetings: u32,
}
