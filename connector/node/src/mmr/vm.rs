//! An MMR VM: an MMR plus its link to a controller (mutual TLS, ALPN `mc-link/1`, 8802 falling
//! back to 443). It says hello with its capacity and media addresses, carries out the grants the
//! controller sends, and reports load every interval the controller names. A lost link is retried
//! with backoff; media already flowing keeps flowing meanwhile.

use super::controller_link::{ControllerLink, LINK};
use super::Mmr;
use crate::config::MmrConfig;
use crate::error::{bind_tcp, NodeError};
use crate::events::MmrEvent;
use crate::identity_gate::{link, IdentityGate};
use crate::listen::Gate;
use crate::metrics::Metrics;
use crate::EventLog;
use mc_rt::net::TcpListener;
use mc_rt::tls::{self, Identity, Router};
use mc_wire::ports::alpn;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// A running MMR VM: where it listens.
#[derive(Clone)]
pub struct MmrVmHandle {
    pub media_udp_addr: SocketAddr,
    pub media_tcp_addr: SocketAddr,
    pub tls_addr: SocketAddr,
    /// Where other MMRs link to this one for cascaded meetings.
    pub cascade_addr: SocketAddr,
    /// The controller this MMR VM is (or was last) linked to: whose grants it holds.
    pub controller: Arc<std::sync::Mutex<Option<mc_wire::ControllerId>>>,
    pub mmr: Mmr,
    pub links: crate::monitor::LinkTable,
    /// This MMR VM's registry, as `GET /metrics` serves it.
    pub metrics: Metrics,
}

pub async fn start(
    config: MmrConfig,
    identity: Identity,
    events: EventLog,
) -> Result<MmrVmHandle, NodeError> {
    config.validate()?;
    let mmr = Mmr::start_with(
        (config.listen, config.media_udp_port).into(),
        (config.listen, config.media_tcp_port).into(),
        config.conn_caps(),
        config.stream_deadlines(),
        config.media_limits(),
    )
    .await?;
    let tls_listener = bind_tcp("MMR media (TLS)", (config.listen, config.tls_port).into()).await?;
    let cascade_listener = bind_tcp(
        "MMR cascade (TLS)",
        (config.listen, config.cascade_port).into(),
    )
    .await?;
    let cascade_addr = cascade_listener.local_addr().expect("bound");
    // Its operator events are its link's: up on which path, moved back, lost.
    let recent = crate::monitor::RecentEvents::default();
    let links = crate::monitor::LinkTable::new(recent.clone());
    let metrics = Metrics::new("mmr");
    crate::metrics::register_mmr(&metrics, mmr.clone(), config.capacity);
    crate::metrics::register_links(&metrics, links.clone());
    let tls_gate = Gate::new("tls", config.conn_caps());
    crate::metrics::register_listeners(&metrics, vec![mmr.tcp_gate.clone(), tls_gate.clone()]);
    let ready_links = links.clone();
    metrics.collect(crate::metrics::Ready(Box::new(move || {
        ready_links.is_up(LINK)
    })));
    let handle = MmrVmHandle {
        metrics: metrics.clone(),
        media_udp_addr: mmr.udp_addr,
        media_tcp_addr: mmr.tcp_addr,
        tls_addr: tls_listener.local_addr().expect("bound"),
        cascade_addr,
        controller: Arc::default(),
        mmr: mmr.clone(),
        links: links.clone(),
    };
    let router = Router::new()
        .route(
            alpn::MEDIA,
            tls::server_config(&identity, alpn::MEDIA, tls::ClientAuth::None)?,
        )
        .route(
            alpn::CASCADE,
            tls::server_config(&identity, alpn::CASCADE, tls::ClientAuth::Required)?,
        )
        // Local health probes; the full report needs a deployment certificate.
        .route(
            alpn::HTTP1,
            tls::server_config(&identity, alpn::HTTP1, tls::ClientAuth::Optional)?,
        )
        .default_route(alpn::MEDIA);
    let link_tls = tls::client_config(&identity.ca, Some(&identity), alpn::LINK)?;
    mmr.serve_cascades(
        mc_wire::MmrId(config.id.clone()),
        &identity,
        cascade_listener,
        config.conn_caps(),
        config.connect_timeout_ms,
        config.handshake_timeout_ms,
    )?;
    let gate = IdentityGate::register(&metrics, &[link::MMR_LINK, link::MONITORING, link::METRICS]);
    events.record(MmrEvent::Listening {
        id: config.id.clone(),
        udp: handle.media_udp_addr,
        tcp: handle.media_tcp_addr,
        tls: handle.tls_addr,
    });
    let (report_links, report_mmr, node) = (links.clone(), mmr.clone(), config.id.clone());
    let capacity = config.capacity;
    // Ready: linked to a controller, so it can be given participants.
    let report = Arc::new(move || mc_wire::monitor::Report {
        node: node.clone(),
        role: mc_wire::monitor::NodeRole::Mmr,
        live: true,
        ready: report_links.is_up(LINK),
        links: report_links.snapshot(),
        participants: report_mmr.participants() as u32,
        meetings: report_mmr.meetings().len() as u32,
        media: report_mmr.media_counters(),
        capacity: Some(mc_wire::monitor::Capacity {
            participants: capacity,
            meetings: None,
        }),
        // An MMR's drain is carried out by its controller, which reports it.
        draining: false,
        ha: None,
        hosted: Vec::new(),
        recent: recent.snapshot(),
    });
    let health = Health {
        report: report.clone(),
        metrics,
        identity: gate.clone(),
    };
    mc_rt::spawn(tls_loop(
        tls_listener,
        router,
        tls_gate,
        mmr.clone(),
        health,
        config.handshake_timeout_ms,
    ));
    let reporter = crate::monitor::Reporter {
        cloud_host: config.cloud_host.clone(),
        cloud_https_port: config.cloud_https_port,
        interval_ms: config.monitoring_interval_ms,
        timeout_ms: config.connect_timeout_ms,
        identity: gate.clone(),
    };
    reporter.spawn(&identity, move || report());
    let link = ControllerLink {
        config,
        handle: handle.clone(),
        tls: link_tls,
        identity: gate,
        events,
        links,
    };
    mc_rt::spawn(link.run());
    Ok(handle)
}

/// What the TLS port's health probes answer with, and who may read the full answer.
struct Health {
    report: Arc<dyn Fn() -> mc_wire::monitor::Report + Send + Sync>,
    metrics: Metrics,
    identity: IdentityGate,
}

/// The TLS port: media over TLS, and local health probes (by ALPN).
async fn tls_loop(
    listener: TcpListener,
    router: Router,
    gate: Gate,
    mmr: Mmr,
    health: Health,
    handshake_timeout_ms: u64,
) {
    let Health {
        report,
        metrics,
        identity: identity_gate,
    } = health;
    crate::serve::serve_tls(
        listener,
        router,
        gate,
        Duration::from_millis(handshake_timeout_ms),
        move |alpn_id, stream, peer, gate| {
            let (mmr, report, metrics) = (mmr.clone(), report.clone(), metrics.clone());
            let identity_gate = identity_gate.clone();
            async move {
                if alpn_id == alpn::CASCADE {
                    let certified = tls::client_identity(&stream).ok();
                    super::cascade::accept(mmr, stream, certified).await
                } else if alpn_id == alpn::HTTP1 {
                    let caller = crate::monitor::HealthCaller {
                        addr: peer,
                        identity: tls::client_identity(&stream),
                        gate: identity_gate,
                    };
                    crate::monitor::serve_health(stream, caller, metrics, move || report()).await
                } else {
                    super::serve_stream(stream, peer, mmr, mc_core::client::MediaPath::Tls, gate)
                        .await
                }
            }
        },
    )
    .await
}
