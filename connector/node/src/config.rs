//! Configuration of each role: TOML files or CLI flags become these types, which are validated
//! before anything starts. Every limit is named with its unit; defaults are the product's.

use crate::listen::{self, ConnCaps, StreamDeadlines};
use mc_core::mmr::MediaLimits;
use mc_wire::ports;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;
use std::path::PathBuf;
use std::str::FromStr;
use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
#[error("invalid configuration: {field}: {reason}")]
pub struct ConfigError {
    pub field: &'static str,
    pub reason: String,
}

fn invalid(field: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        field,
        reason: reason.into(),
    }
}

fn check_name(field: &'static str, v: &str) -> Result<(), ConfigError> {
    if v.is_empty()
        || v.len() > 63
        || !v
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(invalid(
            field,
            format!("{v:?} must be 1 to 63 letters, digits, '-' or '_'"),
        ));
    }
    Ok(())
}

fn check_positive(field: &'static str, v: u64) -> Result<(), ConfigError> {
    if v == 0 {
        return Err(invalid(field, "must be greater than 0"));
    }
    Ok(())
}

/// The connection caps every role's listeners share.
fn check_caps(max_conns_per_listener: u32, max_conns_per_source: u32) -> Result<(), ConfigError> {
    check_positive("max_conns_per_listener", max_conns_per_listener as u64)?;
    check_positive("max_conns_per_source", max_conns_per_source as u64)?;
    if max_conns_per_source > max_conns_per_listener {
        return Err(invalid(
            "max_conns_per_source",
            format!("{max_conns_per_source} is more than max_conns_per_listener ({max_conns_per_listener}), so it would never apply"),
        ));
    }
    Ok(())
}

fn caps(max_conns_per_listener: u32, max_conns_per_source: u32) -> ConnCaps {
    ConnCaps {
        max_conns_per_listener,
        max_conns_per_source,
    }
}

/// The limits every node that serves media holds (the controller, for its own MMR, and an MMR
/// VM): its listeners' deadlines and caps and its media port's per-source rates. Each config
/// declares the fields itself (serde cannot refuse unknown keys through a flattened struct, and
/// a misspelt limit must be an error); they are checked and turned into what the listeners and
/// the MMR enforce here, once.
struct MediaNodeLimits {
    handshake_timeout_ms: u64,
    first_message_timeout_ms: u64,
    media_idle_timeout_ms: u64,
    media_unbound_packets_per_s: u32,
    media_bindings_per_s: u32,
    max_conns_per_listener: u32,
    max_conns_per_source: u32,
}

impl MediaNodeLimits {
    fn check(&self) -> Result<(), ConfigError> {
        check_positive("handshake_timeout_ms", self.handshake_timeout_ms)?;
        check_positive("first_message_timeout_ms", self.first_message_timeout_ms)?;
        check_positive("media_idle_timeout_ms", self.media_idle_timeout_ms)?;
        check_positive(
            "media_unbound_packets_per_s",
            self.media_unbound_packets_per_s.into(),
        )?;
        check_positive("media_bindings_per_s", self.media_bindings_per_s.into())?;
        check_caps(self.max_conns_per_listener, self.max_conns_per_source)
    }

    fn conn_caps(&self) -> ConnCaps {
        caps(self.max_conns_per_listener, self.max_conns_per_source)
    }

    fn stream_deadlines(&self) -> StreamDeadlines {
        StreamDeadlines::from_ms(self.first_message_timeout_ms, self.media_idle_timeout_ms)
    }

    fn media_limits(&self) -> MediaLimits {
        MediaLimits {
            unbound_packets_per_s: self.media_unbound_packets_per_s,
            bindings_per_s: self.media_bindings_per_s,
            ..MediaLimits::default()
        }
    }
}

/// The fields of [`MediaNodeLimits`] out of a config that declares them.
macro_rules! media_node_limits {
    ($c:expr) => {
        MediaNodeLimits {
            handshake_timeout_ms: $c.handshake_timeout_ms,
            first_message_timeout_ms: $c.first_message_timeout_ms,
            media_idle_timeout_ms: $c.media_idle_timeout_ms,
            media_unbound_packets_per_s: $c.media_unbound_packets_per_s,
            media_bindings_per_s: $c.media_bindings_per_s,
            max_conns_per_listener: $c.max_conns_per_listener,
            max_conns_per_source: $c.max_conns_per_source,
        }
    };
}

/// How a process writes its log (stderr): lines for a person, or one JSON object per line for a
/// log shipper. Every role's configuration has it as `log_format`; `--log-format` overrides it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

impl FromStr for LogFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<LogFormat, String> {
        match s {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            other => Err(format!(
                "log_format {other:?} is unknown: use \"text\" or \"json\""
            )),
        }
    }
}

// By hand rather than derived: serde's "unknown variant" would not name the field.
impl<'de> Deserialize<'de> for LogFormat {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<LogFormat, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// The cloud stand-in: management (HTTPS) and status sync (TLS).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CloudConfig {
    /// Certificate name (`<certs>/<name>.pem`) and node name in logs.
    pub name: String,
    /// The address every cloud service binds.
    pub listen: IpAddr,
    /// Management HTTPS, and the fallback for status sync (by ALPN).
    pub https_port: u16,
    pub status_sync_port: u16,
    pub notification_port: u16,
    /// Bearer key for the management API. Required; there is no default credential.
    pub api_key: String,
    pub ticket_ttl_s: u64,
    /// A controller whose last heartbeat is older than this is down and not offered to clients.
    pub controller_down_after_ms: u64,
    /// What controllers are told to use.
    pub heartbeat_interval_ms: u64,
    /// How long each acknowledged heartbeat (or peer pong) lets a controller of an HA pair go on
    /// hosting its meetings. A controller that hears from neither the cloud nor its peer for
    /// this long fences; its peer takes its meetings over 0.5 s after it ran out. Shorter moves
    /// meetings sooner after a controller dies, but fences a live one on shorter hiccups.
    pub controller_lease_ms: u64,
    /// How long a TLS handshake on an accepted connection may take.
    pub handshake_timeout_ms: u64,
    /// Concurrent connections each listener holds at most, in all and from one source address
    /// (an IPv6 /64 counts as one source); more are closed at once and counted.
    pub max_conns_per_listener: u32,
    pub max_conns_per_source: u32,
    /// Where the ticket-signing key is kept; without it the key lives in memory only.
    pub data_dir: Option<PathBuf>,
    /// Seeds the cloud's random choices (ticket nonces); from the OS when absent.
    pub seed: Option<u64>,
    /// How log lines are written: "text" or "json" (one object per line); `--log-format` overrides.
    pub log_format: LogFormat,
    /// Replace participants' IP addresses in the log by a token that is stable within one run
    /// (`--redact-addresses` turns it on too).
    pub log_redact_addresses: bool,
    /// Management API request bodies over this are refused with 413 (the largest legitimate one
    /// is a controller's monitoring report, a few KiB at its default 100 meetings).
    pub api_max_body_bytes: u64,
    /// Request line and headers over this are refused with 431.
    pub api_max_header_bytes: u64,
    /// Per API key, every request but join tickets: the sustained rate and the burst. Callers
    /// are operators (a CLI command is one request, a 100-meeting page each), the dashboard (one
    /// zone poll every 2 s) and `connector load` creating its meetings one after another on
    /// fresh TLS connections. 200/s with 400 at once serves all of that, while a key sending
    /// 1,000 GETs a second gets 429 for most of them after its first 400.
    pub api_rate_per_s: u32,
    pub api_burst: u32,
    /// Per API key, join tickets (`POST /v1/meetings/{id}/tickets`): every participant asks for
    /// one, on joining and on rejoining. `connector load` joins up to 1,000 participants a second
    /// with one key, and 2,000 participants whose MMR fails rejoin within a second or two, so the
    /// join path gets 1,000/s and 2,000 at once; beyond that a client waits the `Retry-After`.
    pub api_ticket_rate_per_s: u32,
    pub api_ticket_burst: u32,
    /// Per source address, requests with no key or a key this cloud does not know, so a caller
    /// trying many keys is limited too (500 wrong keys in a second: about 120 answered 401, the
    /// rest 429). A person retyping a key never comes near it.
    pub api_source_rate_per_s: u32,
    pub api_source_burst: u32,
    /// API keys (and, apart, source addresses) whose buckets are remembered; past that the one
    /// heard from longest ago is forgotten, so memory stays bounded under a flood of addresses.
    pub api_rate_max_tracked: u32,
}

/// The most a request body may be configured to: the API's bodies are small JSON documents.
pub const MAX_API_BODY_BYTES: u64 = 16 * 1024 * 1024;

impl Default for CloudConfig {
    fn default() -> Self {
        CloudConfig {
            name: "cloud".into(),
            listen: IpAddr::from([127, 0, 0, 1]),
            https_port: ports::HTTPS,
            status_sync_port: ports::STATUS_SYNC,
            notification_port: ports::NOTIFICATION,
            api_key: String::new(),
            ticket_ttl_s: 300,
            controller_down_after_ms: 6_000,
            heartbeat_interval_ms: 500,
            controller_lease_ms: 1_500,
            handshake_timeout_ms: 10_000,
            max_conns_per_listener: listen::DEFAULT_MAX_CONNS_PER_LISTENER,
            max_conns_per_source: listen::DEFAULT_MAX_CONNS_PER_SOURCE,
            data_dir: None,
            seed: None,
            log_format: LogFormat::Text,
            log_redact_addresses: false,
            api_max_body_bytes: 64 * 1024,
            api_max_header_bytes: 16 * 1024,
            api_rate_per_s: 200,
            api_burst: 400,
            api_ticket_rate_per_s: 1_000,
            api_ticket_burst: 2_000,
            api_source_rate_per_s: 20,
            api_source_burst: 100,
            api_rate_max_tracked: 10_000,
        }
    }
}

impl CloudConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_name("name", &self.name)?;
        if self.api_key.len() < 16 {
            return Err(invalid(
                "api_key",
                "must be at least 16 characters (there is no default key)",
            ));
        }
        check_positive("ticket_ttl_s", self.ticket_ttl_s)?;
        check_positive("heartbeat_interval_ms", self.heartbeat_interval_ms)?;
        if self.controller_down_after_ms < 2 * self.heartbeat_interval_ms {
            return Err(invalid("controller_down_after_ms", "must be at least twice heartbeat_interval_ms, or one late heartbeat marks a controller down"));
        }
        if self.controller_lease_ms < 2 * self.heartbeat_interval_ms {
            return Err(invalid("controller_lease_ms", "must be at least twice heartbeat_interval_ms, or one late acknowledgement fences a controller"));
        }
        if !(1024..=MAX_API_BODY_BYTES).contains(&self.api_max_body_bytes) {
            return Err(invalid(
                "api_max_body_bytes",
                format!("must be 1024 to {MAX_API_BODY_BYTES}"),
            ));
        }
        if !(1024..=1024 * 1024).contains(&self.api_max_header_bytes) {
            return Err(invalid("api_max_header_bytes", "must be 1024 to 1048576"));
        }
        for (field, v) in [
            ("api_rate_per_s", self.api_rate_per_s),
            ("api_burst", self.api_burst),
            ("api_ticket_rate_per_s", self.api_ticket_rate_per_s),
            ("api_ticket_burst", self.api_ticket_burst),
            ("api_source_rate_per_s", self.api_source_rate_per_s),
            ("api_source_burst", self.api_source_burst),
            ("api_rate_max_tracked", self.api_rate_max_tracked),
        ] {
            check_positive(field, v.into())?;
        }
        check_positive("handshake_timeout_ms", self.handshake_timeout_ms)?;
        check_caps(self.max_conns_per_listener, self.max_conns_per_source)
    }

    pub fn conn_caps(&self) -> ConnCaps {
        caps(self.max_conns_per_listener, self.max_conns_per_source)
    }
}

/// A controller VM: the ZC and its MMR in one process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ControllerConfig {
    /// Controller id, certificate name (`<certs>/<id>.pem`) and node name in logs.
    pub id: String,
    pub zone: String,
    /// The address every controller service binds.
    pub listen: IpAddr,
    /// The host name or address clients are told to use; defaults to `listen`.
    pub advertise_host: Option<String>,
    /// ZC signalling (and on-premises links).
    pub signal_port: u16,
    /// The shared fallback port: signalling, media over TLS, links (by ALPN).
    pub tls_port: u16,
    pub media_udp_port: u16,
    pub media_tcp_port: u16,
    /// Where other MMRs link to this controller's MMR to carry a meeting too large for one
    /// (mutual TLS; `tls_port` is its fallback).
    pub media_cascade_port: u16,
    /// Ports clients are told, where a NAT or port forward puts them elsewhere than the bound ones.
    pub advertise_signal_port: Option<u16>,
    pub advertise_media_udp_port: Option<u16>,
    pub advertise_media_tcp_port: Option<u16>,
    pub cloud_host: String,
    pub cloud_status_sync_port: u16,
    pub cloud_notification_port: u16,
    pub cloud_https_port: u16,
    /// How often this process reports to cloud monitoring.
    pub monitoring_interval_ms: u64,
    /// Meetings this controller hosts at most.
    pub max_meetings: u32,
    /// Participants the controller's own MMR carries at most.
    pub mmr_capacity: u32,
    /// How often linked MMR VMs report load, and this controller keeps their links alive; three
    /// missed reports take an MMR out of the zone, and an MMR VM that hears nothing for three
    /// intervals drops this controller's grants. In an HA pair three intervals must stay well
    /// inside the cloud's `controller_lease_ms` less a peer ping interval (the default 350 ms
    /// gives 1,050 ms against 1,500 - 500): a controller cut off from everything loses its
    /// meetings to the peer after its lease and a 500 ms margin, and by then its MMR VMs must
    /// have stopped forwarding for it.
    pub mmr_report_interval_ms: u64,
    pub connect_timeout_ms: u64,
    /// How long a TLS handshake on an accepted connection may take.
    pub handshake_timeout_ms: u64,
    /// After its TLS handshake, a signalling session must join, an MMR link say hello and a media
    /// stream bind within this time, or it is closed.
    pub first_message_timeout_ms: u64,
    /// A media stream connection (TCP or TLS) with no participant bound to it (never yet, or no
    /// longer) that carries no packet either way for this long is closed.
    pub media_idle_timeout_ms: u64,
    /// On the media port, per source address: packets a second that are not a bound
    /// participant's media (RTP not yet bound, garbage), and binding requests a second; a burst
    /// of twice each passes. Over them, packets are dropped unanswered and counted.
    pub media_unbound_packets_per_s: u32,
    pub media_bindings_per_s: u32,
    /// Concurrent connections each listener holds at most, in all and from one source address
    /// (an IPv6 /64 counts as one source); more are closed at once and counted.
    pub max_conns_per_listener: u32,
    pub max_conns_per_source: u32,
    /// The other controller of an HA pair (DESIGN §5). Set, this controller claims each meeting
    /// from the cloud before hosting it, links to the peer, and takes the peer's meetings over
    /// when the peer dies.
    pub peer_host: Option<String>,
    /// The peer's link port, then its fallback.
    pub peer_port: u16,
    pub peer_fallback_port: u16,
    /// How often this controller pings its peer.
    pub peer_interval_ms: u64,
    /// After this much silence the peer is reported down. Its meetings move once it has also
    /// been silent past its lease, and the cloud has lost it too.
    pub peer_down_after_ms: u64,
    pub seed: Option<u64>,
    /// How log lines are written: "text" or "json" (one object per line); `--log-format` overrides.
    pub log_format: LogFormat,
    /// Replace participants' IP addresses in the log by a token that is stable within one run
    /// (`--redact-addresses` turns it on too).
    pub log_redact_addresses: bool,
}

impl Default for ControllerConfig {
    fn default() -> Self {
        ControllerConfig {
            id: "controller-1".into(),
            zone: "default".into(),
            listen: IpAddr::from([127, 0, 0, 2]),
            advertise_host: None,
            signal_port: ports::ZC,
            tls_port: ports::HTTPS,
            media_cascade_port: ports::CASCADE,
            media_udp_port: ports::MEDIA,
            media_tcp_port: ports::MEDIA,
            advertise_signal_port: None,
            advertise_media_udp_port: None,
            advertise_media_tcp_port: None,
            cloud_host: "127.0.0.1".into(),
            cloud_status_sync_port: ports::STATUS_SYNC,
            cloud_notification_port: ports::NOTIFICATION,
            cloud_https_port: ports::HTTPS,
            monitoring_interval_ms: 5_000,
            max_meetings: 100,
            mmr_capacity: 200,
            mmr_report_interval_ms: 350,
            connect_timeout_ms: crate::DEFAULT_CONNECT_TIMEOUT_MS,
            handshake_timeout_ms: 5_000,
            first_message_timeout_ms: listen::DEFAULT_FIRST_MESSAGE_TIMEOUT_MS,
            media_idle_timeout_ms: listen::DEFAULT_MEDIA_IDLE_TIMEOUT_MS,
            media_unbound_packets_per_s: MediaLimits::default().unbound_packets_per_s,
            media_bindings_per_s: MediaLimits::default().bindings_per_s,
            max_conns_per_listener: listen::DEFAULT_MAX_CONNS_PER_LISTENER,
            max_conns_per_source: listen::DEFAULT_MAX_CONNS_PER_SOURCE,
            peer_host: None,
            peer_port: ports::ZC,
            peer_fallback_port: ports::HTTPS,
            peer_interval_ms: 500,
            peer_down_after_ms: 2_000,
            seed: None,
            log_format: LogFormat::Text,
            log_redact_addresses: false,
        }
    }
}

impl ControllerConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_name("id", &self.id)?;
        check_name("zone", &self.zone)?;
        if self.advertise_host.is_none() && self.listen.is_unspecified() {
            return Err(invalid(
                "advertise_host",
                "required when listen is a wildcard address: clients must be told where to connect",
            ));
        }
        if self.cloud_host.is_empty() {
            return Err(invalid("cloud_host", "must name the cloud's host"));
        }
        check_positive("max_meetings", self.max_meetings as u64)?;
        check_positive("mmr_capacity", self.mmr_capacity as u64)?;
        check_positive("mmr_report_interval_ms", self.mmr_report_interval_ms)?;
        check_positive("monitoring_interval_ms", self.monitoring_interval_ms)?;
        check_positive("connect_timeout_ms", self.connect_timeout_ms)?;
        media_node_limits!(self).check()?;
        if self.peer_host.as_deref() == Some("") {
            return Err(invalid(
                "peer_host",
                "must name the other controller, or be left out",
            ));
        }
        check_positive("peer_interval_ms", self.peer_interval_ms)?;
        if self.peer_down_after_ms < 2 * self.peer_interval_ms {
            return Err(invalid(
                "peer_down_after_ms",
                "must be at least twice peer_interval_ms, or one late ping reports the peer down",
            ));
        }
        let fixed: Vec<(&str, u16)> = [
            ("signal_port", self.signal_port),
            ("tls_port", self.tls_port),
            ("media_tcp_port", self.media_tcp_port),
            ("media_cascade_port", self.media_cascade_port),
        ]
        .into_iter()
        .filter(|(_, p)| *p != 0)
        .collect();
        for (i, (a, pa)) in fixed.iter().enumerate() {
            if let Some((b, _)) = fixed[i + 1..].iter().find(|(_, pb)| pb == pa) {
                return Err(invalid(
                    "ports",
                    format!("{a} and {b} are both TCP port {pa}"),
                ));
            }
        }
        Ok(())
    }

    pub fn advertised_host(&self) -> String {
        self.advertise_host
            .clone()
            .unwrap_or_else(|| self.listen.to_string())
    }

    pub fn conn_caps(&self) -> ConnCaps {
        media_node_limits!(self).conn_caps()
    }

    pub fn stream_deadlines(&self) -> StreamDeadlines {
        media_node_limits!(self).stream_deadlines()
    }

    pub fn media_limits(&self) -> MediaLimits {
        media_node_limits!(self).media_limits()
    }
}

/// An MMR VM: one MMR linked to a controller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MmrConfig {
    /// MMR id, certificate name (`<certs>/<id>.pem`) and node name in logs.
    pub id: String,
    /// The address every MMR service binds.
    pub listen: IpAddr,
    /// The host name or address clients are told to send media to; defaults to `listen`.
    pub advertise_host: Option<String>,
    pub media_udp_port: u16,
    pub media_tcp_port: u16,
    /// Media over TLS (ALPN `mc-media/1`), the last fallback.
    pub tls_port: u16,
    /// Where other MMRs link to this one to carry a meeting too large for one (mutual TLS;
    /// `tls_port` is its fallback).
    pub cascade_port: u16,
    pub controller_host: String,
    pub controller_port: u16,
    pub controller_fallback_port: u16,
    /// The other controller of an HA pair: the MMR VM links there when the first controller is
    /// unreachable on both its ports (and stays until that link is lost).
    pub peer_controller_host: Option<String>,
    pub peer_controller_port: u16,
    pub peer_controller_fallback_port: u16,
    /// Where this MMR reports to cloud monitoring (HTTPS).
    pub cloud_host: String,
    pub cloud_https_port: u16,
    pub monitoring_interval_ms: u64,
    /// Participants this MMR carries at most.
    pub capacity: u32,
    pub connect_timeout_ms: u64,
    /// How long a TLS handshake takes at most: on an accepted connection, and the controller's
    /// welcome on the MMR link.
    pub handshake_timeout_ms: u64,
    /// A media stream must bind within this time of its TLS handshake (or of opening, on TCP).
    pub first_message_timeout_ms: u64,
    /// A media stream connection (TCP or TLS) with no participant bound to it (never yet, or no
    /// longer) that carries no packet either way for this long is closed.
    pub media_idle_timeout_ms: u64,
    /// On the media port, per source address: packets a second that are not a bound
    /// participant's media (RTP not yet bound, garbage), and binding requests a second; a burst
    /// of twice each passes. Over them, packets are dropped unanswered and counted.
    pub media_unbound_packets_per_s: u32,
    pub media_bindings_per_s: u32,
    /// Concurrent connections each listener holds at most, in all and from one source address
    /// (an IPv6 /64 counts as one source); more are closed at once and counted.
    pub max_conns_per_listener: u32,
    pub max_conns_per_source: u32,
    /// How log lines are written: "text" or "json" (one object per line); `--log-format` overrides.
    pub log_format: LogFormat,
    /// Replace participants' IP addresses in the log by a token that is stable within one run
    /// (`--redact-addresses` turns it on too).
    pub log_redact_addresses: bool,
}

impl Default for MmrConfig {
    fn default() -> Self {
        MmrConfig {
            id: "mmr-1".into(),
            listen: IpAddr::from([127, 0, 0, 11]),
            advertise_host: None,
            media_udp_port: ports::MEDIA,
            media_tcp_port: ports::MEDIA,
            tls_port: ports::HTTPS,
            cascade_port: ports::CASCADE,
            controller_host: "127.0.0.2".into(),
            controller_port: ports::ZC,
            controller_fallback_port: ports::HTTPS,
            peer_controller_host: None,
            peer_controller_port: ports::ZC,
            peer_controller_fallback_port: ports::HTTPS,
            cloud_host: "127.0.0.1".into(),
            cloud_https_port: ports::HTTPS,
            monitoring_interval_ms: 5_000,
            capacity: 200,
            connect_timeout_ms: crate::DEFAULT_CONNECT_TIMEOUT_MS,
            handshake_timeout_ms: 5_000,
            first_message_timeout_ms: listen::DEFAULT_FIRST_MESSAGE_TIMEOUT_MS,
            media_idle_timeout_ms: listen::DEFAULT_MEDIA_IDLE_TIMEOUT_MS,
            media_unbound_packets_per_s: MediaLimits::default().unbound_packets_per_s,
            media_bindings_per_s: MediaLimits::default().bindings_per_s,
            max_conns_per_listener: listen::DEFAULT_MAX_CONNS_PER_LISTENER,
            max_conns_per_source: listen::DEFAULT_MAX_CONNS_PER_SOURCE,
            log_format: LogFormat::Text,
            log_redact_addresses: false,
        }
    }
}

impl MmrConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_name("id", &self.id)?;
        if self.advertise_host.is_none() && self.listen.is_unspecified() {
            return Err(invalid("advertise_host", "required when listen is a wildcard address: clients must be told where to send media"));
        }
        if self.controller_host.is_empty() {
            return Err(invalid(
                "controller_host",
                "must name the controller this MMR links to",
            ));
        }
        check_positive("capacity", self.capacity as u64)?;
        check_positive("monitoring_interval_ms", self.monitoring_interval_ms)?;
        check_positive("connect_timeout_ms", self.connect_timeout_ms)?;
        media_node_limits!(self).check()?;
        if self.tls_port != 0 && self.tls_port == self.media_tcp_port {
            return Err(invalid(
                "ports",
                format!(
                    "tls_port and media_tcp_port are both TCP port {}",
                    self.tls_port
                ),
            ));
        }
        for (name, port) in [
            ("tls_port", self.tls_port),
            ("media_tcp_port", self.media_tcp_port),
        ] {
            if self.cascade_port != 0 && self.cascade_port == port {
                return Err(invalid(
                    "ports",
                    format!("cascade_port and {name} are both TCP port {port}"),
                ));
            }
        }
        Ok(())
    }

    pub fn advertised_host(&self) -> String {
        self.advertise_host
            .clone()
            .unwrap_or_else(|| self.listen.to_string())
    }

    pub fn conn_caps(&self) -> ConnCaps {
        media_node_limits!(self).conn_caps()
    }

    pub fn stream_deadlines(&self) -> StreamDeadlines {
        media_node_limits!(self).stream_deadlines()
    }

    pub fn media_limits(&self) -> MediaLimits {
        media_node_limits!(self).media_limits()
    }
}

/// One participant: joins a meeting, sends media at a steady rate, counts what it receives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClientConfig {
    pub display_name: String,
    pub cloud_host: String,
    pub cloud_https_port: u16,
    /// Management API key (the stand-in cloud authenticates API callers, not end users).
    pub api_key: String,
    pub meeting: u64,
    /// RTP packets sent per second (real audio is 50).
    pub media_packets_per_s: u32,
    pub payload_bytes: usize,
    /// How long to stay in the meeting; 0 stays until stopped.
    pub duration_ms: u64,
    pub connect_timeout_ms: u64,
    /// One binding attempt on UDP waits this long for the MMR's answer.
    pub binding_timeout_ms: u64,
    pub binding_attempts: u32,
    /// While media uses TCP or TLS, how often to try UDP again (and move back when it answers).
    pub media_reprobe_ms: u64,
    /// On UDP, how often to check the MMR still answers; after `media_keepalive_misses`
    /// unanswered checks the path counts as lost and media moves to TCP or TLS.
    pub media_keepalive_ms: u64,
    pub media_keepalive_misses: u32,
    /// How often a joined client pings its controller; three unanswered pings and the controller
    /// counts as gone, and the client joins again (through the other controller of a pair).
    pub signal_keepalive_ms: u64,
    /// Bridge a local UDP port instead of generating media: RTP sent to `bridge_listen` goes into
    /// the meeting, and the meeting's media goes to `bridge_send` — so standard RTP tools can
    /// take part.
    pub bridge_listen: Option<std::net::SocketAddr>,
    pub bridge_send: Option<std::net::SocketAddr>,
    pub seed: Option<u64>,
    /// Send no media (a muted microphone): the participant still receives the meeting and keeps
    /// its media path alive. Most of a large meeting listens.
    pub muted: bool,
    /// How log lines are written: "text" or "json" (one object per line); `--log-format` overrides.
    pub log_format: LogFormat,
    /// Replace participants' IP addresses in the log by a token that is stable within one run
    /// (`--redact-addresses` turns it on too).
    pub log_redact_addresses: bool,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            display_name: "participant".into(),
            cloud_host: "127.0.0.1".into(),
            cloud_https_port: ports::HTTPS,
            api_key: String::new(),
            meeting: 0,
            media_packets_per_s: 50,
            payload_bytes: 160,
            duration_ms: 5_000,
            connect_timeout_ms: crate::DEFAULT_CONNECT_TIMEOUT_MS,
            binding_timeout_ms: 400,
            binding_attempts: 3,
            media_reprobe_ms: 30_000,
            media_keepalive_ms: 1_000,
            media_keepalive_misses: 3,
            signal_keepalive_ms: 1_000,
            bridge_listen: None,
            bridge_send: None,
            seed: None,
            muted: false,
            log_format: LogFormat::Text,
            log_redact_addresses: false,
        }
    }
}

impl ClientConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.meeting == 0 {
            return Err(invalid(
                "meeting",
                "must name a meeting id (create one with `connector meeting create`)",
            ));
        }
        if !(1..=1000).contains(&self.media_packets_per_s) {
            return Err(invalid("media_packets_per_s", "must be 1 to 1000"));
        }
        if !(1..=1200).contains(&self.payload_bytes) {
            return Err(invalid(
                "payload_bytes",
                "must be 1 to 1200 (one MTU-sized RTP packet)",
            ));
        }
        check_positive("connect_timeout_ms", self.connect_timeout_ms)?;
        check_positive("binding_timeout_ms", self.binding_timeout_ms)?;
        check_positive("binding_attempts", self.binding_attempts as u64)?;
        check_positive("media_reprobe_ms", self.media_reprobe_ms)?;
        check_positive("media_keepalive_ms", self.media_keepalive_ms)?;
        check_positive("signal_keepalive_ms", self.signal_keepalive_ms)?;
        check_positive("media_keepalive_misses", self.media_keepalive_misses as u64)?;
        if self.bridge_send.is_some() && self.bridge_listen.is_none() {
            return Err(invalid(
                "bridge_send",
                "needs bridge_listen: the bridge sends the meeting's media out and takes RTP in",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_products_and_errors_name_the_field() {
        let c = ControllerConfig::default();
        assert_eq!(
            (c.max_meetings, c.mmr_capacity, c.signal_port, c.tls_port),
            (100, 200, 8802, 443)
        );
        assert!(c.validate().is_ok());
        let err = CloudConfig::default().validate().unwrap_err();
        assert_eq!(err.field, "api_key");
        let bad = ControllerConfig {
            tls_port: 8802,
            ..ControllerConfig::default()
        };
        assert_eq!(bad.validate().unwrap_err().field, "ports");
        let parsed: Result<ControllerConfig, _> = toml::from_str("max_meetingz = 3");
        assert!(parsed.unwrap_err().to_string().contains("unknown field"));
    }

    #[test]
    fn connection_caps_and_deadlines_are_validated_by_name() {
        let c = MmrConfig {
            max_conns_per_source: 10,
            max_conns_per_listener: 5,
            ..MmrConfig::default()
        };
        assert_eq!(c.validate().unwrap_err().field, "max_conns_per_source");
        let c = ControllerConfig {
            first_message_timeout_ms: 0,
            ..ControllerConfig::default()
        };
        assert_eq!(c.validate().unwrap_err().field, "first_message_timeout_ms");
        let c = CloudConfig {
            api_key: "0123456789abcdef".into(),
            max_conns_per_listener: 0,
            ..CloudConfig::default()
        };
        assert_eq!(c.validate().unwrap_err().field, "max_conns_per_listener");
        let c: ControllerConfig = toml::from_str("media_idle_timeout_ms = 1000").unwrap();
        assert_eq!(c.stream_deadlines().idle, std::time::Duration::from_secs(1));
    }

    #[test]
    fn the_clouds_api_limits_are_validated_by_name() {
        let ok = CloudConfig {
            api_key: "0123456789abcdef".into(),
            ..CloudConfig::default()
        };
        assert_eq!(ok.validate(), Ok(()));
        let field = |c: CloudConfig| c.validate().unwrap_err().field;
        assert_eq!(
            field(CloudConfig {
                api_max_body_bytes: 100 * 1024 * 1024,
                ..ok.clone()
            }),
            "api_max_body_bytes"
        );
        assert_eq!(
            field(CloudConfig {
                api_max_header_bytes: 10,
                ..ok.clone()
            }),
            "api_max_header_bytes"
        );
        assert_eq!(
            field(CloudConfig {
                api_burst: 0,
                ..ok.clone()
            }),
            "api_burst"
        );
        assert_eq!(
            field(CloudConfig {
                api_source_rate_per_s: 0,
                ..ok.clone()
            }),
            "api_source_rate_per_s"
        );
        let parsed: CloudConfig = toml::from_str("api_rate_per_s = 50\napi_burst = 80").unwrap();
        assert_eq!((parsed.api_rate_per_s, parsed.api_burst), (50, 80));
    }

    #[test]
    fn every_role_takes_a_log_format_and_an_unknown_one_is_refused_by_name() {
        let c: MmrConfig =
            toml::from_str("log_format = \"json\"\nlog_redact_addresses = true").unwrap();
        assert_eq!(
            (c.log_format, c.log_redact_addresses),
            (LogFormat::Json, true)
        );
        let c: ClientConfig = toml::from_str("").unwrap();
        assert_eq!(
            (c.log_format, c.log_redact_addresses),
            (LogFormat::Text, false)
        );
        let err = toml::from_str::<CloudConfig>("log_format = \"JSON\"").unwrap_err();
        assert!(
            err.to_string()
                .contains("log_format \"JSON\" is unknown: use \"text\" or \"json\""),
            "{err}"
        );
        let printed = toml::to_string(&ControllerConfig::default()).unwrap();
        assert!(printed.contains("log_format = \"text\""), "{printed}");
    }
}
