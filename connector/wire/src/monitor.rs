//! Monitoring reports: what every connector process (controller, MMR VM) POSTs to the cloud's
//! monitoring service (`POST /v1/monitoring/reports`, HTTPS with the process's deployment
//! certificate) every interval. The cloud serves the zone's status built from them.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Report {
    pub node: String,
    pub role: NodeRole,
    /// The process works (it answers and its loops run).
    pub live: bool,
    /// It can take new work (registered, linked, not draining). A cloud outage makes a controller
    /// not ready for *new* joins, never not live.
    pub ready: bool,
    /// Each outgoing link and the path it uses now.
    pub links: BTreeMap<String, LinkState>,
    pub participants: u32,
    pub meetings: u32,
    pub media: MediaCounters,
    /// What the node can take, when it knows (reports from older nodes lack it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity: Option<Capacity>,
    /// Drained by the operator: it takes no new meetings.
    #[serde(default)]
    pub draining: bool,
    /// A controller of an HA pair: its lease and what it owns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ha: Option<HaReport>,
    /// A controller: the meetings it hosts, where each lives and how big it is.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosted: Vec<HostedMeeting>,
    /// The last few things an operator would want to know about (fences, takeovers, drains,
    /// links changing path), oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recent: Vec<RecentEvent>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Capacity {
    pub participants: u32,
    /// Meetings it may host; `None` where there is no such limit (an MMR VM).
    #[serde(default)]
    pub meetings: Option<u32>,
}

/// The HA side of a controller's report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HaReport {
    /// How long its ownership lease still runs (0 once it has run out).
    pub lease_remaining_ms: u64,
    /// The lease ran out: it stopped hosting and admits nobody until it renews.
    pub fenced: bool,
    /// The meetings the ownership registry granted it, with their epochs.
    pub owned: Vec<crate::status::OwnedMeeting>,
    pub peer_up: bool,
    /// Meetings taken over from the peer so far.
    pub takeovers: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostedMeeting {
    pub meeting: crate::MeetingId,
    pub mmr: crate::MmrId,
    pub participants: u32,
}

/// One operator event, as a node saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecentEvent {
    /// Unix milliseconds.
    pub at_ms: u64,
    pub kind: RecentKind,
    /// The event log's line for it.
    pub text: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecentKind {
    Fence,
    Takeover,
    PeerDown,
    ControllerDown,
    Drain,
    MmrDown,
    /// A link came up, moved between its dedicated port and its fallback, or was lost.
    Link,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeRole {
    Controller,
    Mmr,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkState {
    pub path: LinkPath,
    /// The remote port in use (0 when down).
    pub port: u16,
}

/// What an outgoing link runs on (DESIGN §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkPath {
    /// Its own port (8802, 8803, 8804).
    Dedicated,
    /// 443, because the dedicated port did not answer.
    Fallback,
    Down,
}

impl std::fmt::Display for LinkPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            LinkPath::Dedicated => "dedicated",
            LinkPath::Fallback => "fallback",
            LinkPath::Down => "down",
        })
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MediaCounters {
    pub rtp_in: u64,
    pub rtp_out: u64,
    pub dropped: u64,
    /// Bound participants by transport: how clients reach this MMR.
    pub udp_endpoints: u32,
    pub tcp_endpoints: u32,
    pub tls_endpoints: u32,
}
