//! Running one role alone: `connector cloud`, `controller`, `client`, `meeting`.

use crate::logging::Logging;
use crate::{default_state_dir, load_toml, UsageError};
use anyhow::Context;
use clap::{Args, Subcommand};
use mc_node::client::{self, ManagementApi};
use mc_node::config::{ClientConfig, CloudConfig, ControllerConfig};
use mc_node::EventLog;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct RoleArgs {
    /// TOML configuration file; every field has a default (see --print-config).
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// Directory holding ca.pem and this host's <name>.pem / <name>.key (from `connector certs init`).
    #[arg(long, default_value_os_t = default_state_dir().join("certs"))]
    certs: PathBuf,
    /// Print the effective configuration as TOML and exit.
    #[arg(long)]
    print_config: bool,
}

fn load<T: serde::de::DeserializeOwned + Default>(path: &Option<PathBuf>) -> anyhow::Result<T> {
    match path {
        Some(p) => load_toml(p),
        None => Ok(T::default()),
    }
}

fn print_config<T: serde::Serialize>(c: &T) -> anyhow::Result<()> {
    print!(
        "{}",
        toml::to_string(c).context("rendering the configuration")?
    );
    Ok(())
}

/// Raises the soft open-file limit to the hard one, and says so: every connection a server holds
/// is a file descriptor, and the common soft limit of 1,024 is below what its connection caps
/// allow.
pub(crate) fn raise_open_file_limit() {
    let show = |l: Option<u64>| l.map_or("unlimited".to_string(), |n| n.to_string());
    match mc_node::fd_limit::raise_to_hard() {
        Ok(l) if l.before != l.now => tracing::info!(
            "raised the open-file limit (RLIMIT_NOFILE) from {} to the hard limit {}",
            show(l.before),
            show(l.now)
        ),
        Ok(l) => tracing::info!(
            "open-file limit (RLIMIT_NOFILE) {} (hard limit {})",
            show(l.now),
            show(l.hard)
        ),
        Err(e) => tracing::warn!(
            "could not raise the open-file limit (RLIMIT_NOFILE): {e}; idle connections may exhaust it (see `ulimit -n`)"
        ),
    }
}

async fn until_ctrl_c(log: Logging) -> anyhow::Result<()> {
    mc_rt::ctrl_c().await.context("waiting for Ctrl-C")?;
    log.say(tracing::Level::INFO, "stopping");
    Ok(())
}

pub async fn cloud(args: RoleArgs, log: Logging) -> anyhow::Result<()> {
    let mut config: CloudConfig = load(&args.config)?;
    log.start(config.log_format, config.log_redact_addresses);
    if config.api_key.is_empty() {
        config.api_key = std::env::var("CONNECTOR_API_KEY").unwrap_or_default();
    }
    if args.print_config {
        return print_config(&config);
    }
    config.validate()?;
    let identity = mc_rt::certs::load_identity(&args.certs, &config.name)
        .context("loading the cloud's identity")?;
    raise_open_file_limit();
    let handle = mc_node::cloud::start(config, identity, EventLog::tracing_only("cloud")).await?;
    println!(
        "cloud management (HTTPS) on {}; status sync on {} (and on {} by ALPN)",
        handle.https_addr, handle.status_sync_addr, handle.https_addr
    );
    until_ctrl_c(log).await
}

pub async fn controller(args: RoleArgs, log: Logging) -> anyhow::Result<()> {
    let config: ControllerConfig = load(&args.config)?;
    log.start(config.log_format, config.log_redact_addresses);
    if args.print_config {
        return print_config(&config);
    }
    config.validate()?;
    let identity = mc_rt::certs::load_identity(&args.certs, &config.id)
        .context("loading the controller's identity")?;
    let id = config.id.clone();
    raise_open_file_limit();
    let h = mc_node::controller::start(config, identity, EventLog::tracing_only(&id)).await?;
    println!(
        "controller {id}: signalling {}; shared TLS {}; media UDP {} TCP {}",
        h.signal_addr, h.tls_addr, h.media_udp_addr, h.media_tcp_addr
    );
    until_ctrl_c(log).await
}

pub async fn mmr(args: RoleArgs, log: Logging) -> anyhow::Result<()> {
    let config: mc_node::config::MmrConfig = load(&args.config)?;
    log.start(config.log_format, config.log_redact_addresses);
    if args.print_config {
        return print_config(&config);
    }
    config.validate()?;
    let identity = mc_rt::certs::load_identity(&args.certs, &config.id)
        .context("loading the MMR's identity")?;
    let id = config.id.clone();
    raise_open_file_limit();
    let h = mc_node::mmr::vm::start(config, identity, EventLog::tracing_only(&id)).await?;
    println!(
        "MMR {id}: media UDP {} TCP {} TLS {}",
        h.media_udp_addr, h.media_tcp_addr, h.tls_addr
    );
    until_ctrl_c(log).await
}

/// Where the cloud is and how to authenticate to it.
#[derive(Args, Debug)]
pub struct CloudAccess {
    /// TOML client configuration (`connector up` writes one to state/client.toml).
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// The deployment CA certificate that signs the cloud's and controllers' certificates.
    #[arg(long, default_value_os_t = default_state_dir().join("certs").join("ca.pem"))]
    ca: PathBuf,
    /// Cloud host (overrides the configuration).
    #[arg(long)]
    cloud: Option<String>,
    /// Cloud HTTPS port (overrides the configuration).
    #[arg(long)]
    cloud_port: Option<u16>,
    /// Management API key (or set CONNECTOR_API_KEY).
    #[arg(long, env = "CONNECTOR_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
}

impl CloudAccess {
    /// The client configuration with these flags applied, once the log has started with its
    /// settings.
    pub(crate) fn client_config(&self, log: Logging) -> anyhow::Result<ClientConfig> {
        let mut c: ClientConfig = load(&self.config)?;
        log.start(c.log_format, c.log_redact_addresses);
        if let Some(h) = &self.cloud {
            c.cloud_host = h.clone();
        }
        if let Some(p) = self.cloud_port {
            c.cloud_https_port = p;
        }
        if let Some(k) = &self.api_key {
            c.api_key = k.clone();
        }
        if c.api_key.is_empty() {
            return Err(UsageError("no API key: pass --api-key, set CONNECTOR_API_KEY, or use --config state/client.toml".into()).into());
        }
        Ok(c)
    }

    pub(crate) fn ca(&self) -> anyhow::Result<rustls::pki_types::CertificateDer<'static>> {
        mc_rt::certs::load_ca(&self.ca).context("loading the deployment CA (--ca)")
    }
}

#[derive(Args, Debug)]
pub struct ClientArgs {
    #[command(flatten)]
    access: CloudAccess,
    /// The meeting to join.
    #[arg(long)]
    meeting: Option<u64>,
    /// Display name.
    #[arg(long)]
    name: Option<String>,
    /// How long to stay, in milliseconds; 0 stays until Ctrl-C.
    #[arg(long)]
    duration_ms: Option<u64>,
    /// Print the final report as JSON.
    #[arg(long)]
    json: bool,
    /// Bridge a local UDP port instead of sending test media: RTP sent to this address goes into
    /// the meeting (e.g. from `ffmpeg ... -f rtp rtp://127.0.0.1:5004`).
    #[arg(long, value_name = "ADDR")]
    bridge_listen: Option<std::net::SocketAddr>,
    /// Where the bridge sends the meeting's RTP (default: back to whoever sends to --bridge-listen).
    #[arg(long, value_name = "ADDR", requires = "bridge_listen")]
    bridge_send: Option<std::net::SocketAddr>,
}

pub async fn client(args: ClientArgs, log: Logging) -> anyhow::Result<()> {
    let mut config = args.access.client_config(log)?;
    if let Some(m) = args.meeting {
        config.meeting = m;
    }
    if let Some(n) = args.name {
        config.display_name = n;
    }
    if let Some(d) = args.duration_ms {
        config.duration_ms = d;
    }
    if args.bridge_listen.is_some() {
        config.bridge_listen = args.bridge_listen;
        config.bridge_send = args.bridge_send;
    }
    config.validate()?;
    let ca = args.access.ca()?;
    let name = config.display_name.clone();
    let stop = async {
        let _ = mc_rt::ctrl_c().await;
    };
    let report = client::run(config, ca, EventLog::tracing_only(&name), stop).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "{} was {} in meeting {} via {} (signalling port {}, media over {}, joined in {} ms)",
            report.display_name,
            report.participant,
            report.meeting,
            report.controller,
            report.signalling_port,
            report.media_path,
            report.join_ms
        );
        println!(
            "sent {} RTP packets; received {} from {} other participants",
            report.sent,
            report.received,
            report.by_source.len()
        );
        for (ssrc, s) in &report.by_source {
            println!(
                "  from ssrc {ssrc:#010x}: {} received, {} lost",
                s.received, s.lost
            );
        }
        if let Some(r) = &report.ended_by_zc {
            println!("the session ended early: {r}");
        }
    }
    Ok(())
}

#[derive(Args, Debug)]
pub struct MeetingArgs {
    #[command(subcommand)]
    command: MeetingCommand,
}

#[derive(Subcommand, Debug)]
enum MeetingCommand {
    /// Create a meeting and print its id.
    Create {
        #[command(flatten)]
        access: CloudAccess,
        #[arg(long, default_value = "meeting")]
        topic: String,
        /// How many participants are expected: a meeting expected to outgrow one MMR is
        /// spread over several from its first join.
        #[arg(long, value_name = "N")]
        expected_participants: Option<u32>,
    },
    /// List meetings, every page of them.
    List {
        #[command(flatten)]
        access: CloudAccess,
    },
    /// Show the controllers status sync knows, and whether each is live.
    Status {
        #[command(flatten)]
        access: CloudAccess,
    },
    /// Show the zone from monitoring: every controller and MMR, live/ready, each link's path, load.
    Zone {
        #[command(flatten)]
        access: CloudAccess,
    },
    /// End a meeting: its participants are disconnected with the reason.
    End {
        #[command(flatten)]
        access: CloudAccess,
        /// The meeting id.
        id: u64,
        #[arg(long, default_value = "the host ended the meeting")]
        reason: String,
    },
}

pub async fn meeting(args: MeetingArgs, log: Logging) -> anyhow::Result<()> {
    let (access, method, path, body) = match &args.command {
        MeetingCommand::Create {
            access,
            topic,
            expected_participants,
        } => {
            let mut body = serde_json::json!({ "topic": topic });
            if let Some(n) = expected_participants {
                body["expected_participants"] = (*n).into();
            }
            (access, "POST", "/v1/meetings".to_string(), Some(body))
        }
        MeetingCommand::List { access } => (access, "GET", "/v1/meetings".to_string(), None),
        MeetingCommand::Status { access } => (access, "GET", "/v1/status".to_string(), None),
        MeetingCommand::Zone { access } => (access, "GET", "/v1/zone".to_string(), None),
        MeetingCommand::End { access, id, reason } => (
            access,
            "POST",
            format!("/v1/meetings/{id}/end"),
            Some(serde_json::json!({ "reason": reason })),
        ),
    };
    let c = access.client_config(log)?;
    let api = ManagementApi {
        host: c.cloud_host.clone(),
        port: c.cloud_https_port,
        api_key: c.api_key.clone(),
        ca: access.ca()?,
        timeout_ms: c.connect_timeout_ms,
    };
    let path = path.as_str();
    let value = if let MeetingCommand::List { .. } = &args.command {
        // The API answers a page at a time; the list printed is all of them.
        let meetings = api
            .list_all(path, "meetings")
            .await
            .map_err(anyhow::Error::msg)
            .with_context(|| format!("{method} {path}"))?;
        serde_json::json!({ "meetings": meetings })
    } else {
        api.call(method, path, body)
            .await
            .map_err(anyhow::Error::msg)
            .with_context(|| format!("{method} {path}"))?
    };
    match &args.command {
        MeetingCommand::Create { .. } => println!("{}", value["id"]),
        _ => println!("{}", serde_json::to_string_pretty(&value)?),
    }
    Ok(())
}

#[derive(Args, Debug)]
pub struct DrainArgs {
    #[command(flatten)]
    access: CloudAccess,
    /// What to drain.
    #[arg(value_enum)]
    kind: DrainKind,
    /// Its id (e.g. controller-1, mmr-1).
    id: String,
    /// Seconds within which its meetings move.
    #[arg(long, default_value_t = 60)]
    deadline_s: u64,
    /// Undrain instead: take new meetings again.
    #[arg(long)]
    undo: bool,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum DrainKind {
    Controller,
    Mmr,
}

pub async fn drain(args: DrainArgs, log: Logging) -> anyhow::Result<()> {
    let c = args.access.client_config(log)?;
    let api = ManagementApi {
        host: c.cloud_host.clone(),
        port: c.cloud_https_port,
        api_key: c.api_key.clone(),
        ca: args.access.ca()?,
        timeout_ms: c.connect_timeout_ms,
    };
    let kind = match args.kind {
        DrainKind::Controller => "controllers",
        DrainKind::Mmr => "mmrs",
    };
    let path = format!("/v1/{kind}/{}/drain", args.id);
    let (method, body) = if args.undo {
        ("DELETE", None)
    } else {
        (
            "POST",
            Some(serde_json::json!({ "deadline_s": args.deadline_s })),
        )
    };
    api.call(method, &path, body)
        .await
        .map_err(anyhow::Error::msg)
        .with_context(|| format!("{method} {path}"))?;
    if args.undo {
        println!(
            "{} {} takes new meetings again",
            kind.trim_end_matches('s'),
            args.id
        );
    } else {
        println!(
            "{} {} is draining: no new meetings; its meetings move within {} s",
            kind.trim_end_matches('s'),
            args.id,
            args.deadline_s
        );
    }
    Ok(())
}
