//! Controller ↔ controller peer link (inside [`crate::frame`]s on mutual TLS 8802 or 443
//! `mc-peer/1`). Each controller of a pair dials the other and pings it every interval with what
//! it hosts; the other answers each ping with a pong echoing the ping's send time.
//!
//! The pong is a promise: its sender will not take over the pinger's meetings until it has heard
//! nothing from the pinger for longer than the pinger's lease. So a pong renews the pinger's lease
//! from the moment the ping was sent (the pinger's own clock), and a controller that loses both
//! the cloud and its peer for a lease stops hosting before anyone may take its meetings over.

use crate::status::Load;
use crate::{ControllerId, MeetingId, MmrId};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum PeerMsg {
    Ping {
        controller: ControllerId,
        /// The pinger's clock (Unix ms) when it sent this; echoed in the pong.
        sent_ms: u64,
        /// What the peer needs to take over: every meeting hosted, its ownership epoch, where
        /// it is placed and how many participants it has.
        meetings: Vec<HostedMeeting>,
        load: Load,
        capacity: Load,
        /// The hex form of the pinger's 32-byte rejoin key, so this controller verifies the
        /// rejoin passes the pinger issued (PROTOCOL §3.4).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rejoin_key: Option<String>,
    },
    Pong {
        controller: ControllerId,
        echo_ms: u64,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostedMeeting {
    pub meeting: MeetingId,
    pub epoch: u64,
    pub mmr: MmrId,
    pub participants: u32,
}
