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
