//! Controller ↔ cloud status sync messages (inside [`crate::frame`]s on mutual TLS 8803 or 443
//! `mc-status/1`). The controller registers once per connection, then heartbeats; the cloud
//! answers the registration with the key that verifies join tickets.

use crate::ControllerId;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ControllerToCloud {
    Register {
        controller: ControllerId,
        zone: String,
        signalling: SignallingEndpoints,
        capacity: Load,
    },
    /// Current load, and current capacity (MMRs come and go).
    Heartbeat {
        load: Load,
        capacity: Load,
        /// Whether it takes new meetings (false while drained). Absent means true.
        #[serde(default = "yes")]
        ready: bool,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum CloudToController {
    Registered {
        /// Hex Ed25519 public key that verifies join tickets.
        ticket_key: String,
        heartbeat_interval_ms: u64,
    },
    Rejected {
        message: String,
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
