//! A controller VM: the zone controller (ZC) and one MMR in one process (DESIGN §2).
//!
//! Ports (DESIGN §3): signalling on `signal_port` (8802); media on UDP and TCP `media_*_port`
//! (8801); and `tls_port` (443), where one TLS listener serves signalling and media-over-TLS told
//! apart by ALPN. The controller registers with cloud status sync (8803, falling back to 443) and
//! heartbeats its load; until it has the cloud's ticket key it refuses joins as `not_ready`.

mod cloud_link;
mod conn;
mod driver;
mod notify_link;
mod outbound;
mod peer;

use crate::config::ControllerConfig;
use crate::error::{bind_tcp, NodeError};
use crate::events::LinkEvent;
use crate::identity_gate::{link, IdentityGate};
use crate::listen::Gate;
use crate::metrics::Metrics;
use crate::mmr::Mmr;
use crate::EventLog;
use driver::CoreTx;
use mc_core::controller::{Controller, Input, Params, PeerParams, Status};
use mc_core::zc::ZcLimits;
use mc_core::Rng;
use mc_rt::identity::{CertRole, PeerIdentity};
use mc_rt::net::TcpListener;
use mc_rt::tls::{self, Identity, Router};
use mc_wire::link::MmrToController;
use mc_wire::peer::PeerMsg;
use mc_wire::ports::alpn;
use mc_wire::signal::{ClientToZc, MediaEndpoints};
use mc_wire::status::SignallingEndpoints;
use mc_wire::{ControllerId, MmrId};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What every task of a controller shares: the way into its core, and what the core publishes.
#[derive(Clone)]
pub(crate) struct Ctx {
    pub core: CoreTx,
    pub status: Arc<Mutex<Status>>,
    pub mmr: Mmr,
    pub config: Arc<ControllerConfig>,
    pub events: EventLog,
    pub links: crate::monitor::LinkTable,
    pub metrics: Metrics,
    /// Operator events for monitoring reports (the zone dashboard).
    pub recent: crate::monitor::RecentEvents,
    /// Checks that each mutual-TLS peer is who its link needs.
    pub identity: IdentityGate,
}

/// A running controller: where it listens, and its MMR (for counters).
#[derive(Clone)]
pub struct ControllerHandle {
    pub signal_addr: SocketAddr,
    pub tls_addr: SocketAddr,
    pub media_udp_addr: SocketAddr,
    pub media_tcp_addr: SocketAddr,
    pub mmr: Mmr,
    status: Arc<Mutex<Status>>,
    links: crate::monitor::LinkTable,
    /// This controller VM's registry (ZC, its MMR and its links), as `GET /metrics` serves it.
    pub metrics: Metrics,
}

impl ControllerHandle {
    /// The ZC's view of the zone: meetings and where they live, MMRs and their load.
    pub fn zone(&self) -> mc_core::zc::ZoneSnapshot {
        self.status.lock().unwrap().zone.clone()
    }

    /// The path each outgoing link uses now.
    pub fn links(&self) -> std::collections::BTreeMap<String, mc_wire::monitor::LinkState> {
        self.links.snapshot()
    }

    /// Whether what this controller hosts is backed by ownership at `now_ms`: always for a lone
    /// controller; in an HA pair, while its lease runs (once it has run out the controller fences
    /// and admits nobody, and the peer may take the meetings over).
    pub fn lease_valid_at(&self, now_ms: u64) -> bool {
        let lease_until_ms = self.status.lock().unwrap().lease_until_ms;
        lease_until_ms.is_none_or(|until_ms| now_ms < until_ms)
    }

    /// Meetings this controller may host.
    pub fn max_meetings(&self) -> u32 {
        self.status.lock().unwrap().capacity.meetings
    }
}

/// Binds every controller port, starts serving, and starts the cloud link; returns once bound.
pub async fn start(
    config: ControllerConfig,
    identity: Identity,
    events: EventLog,
) -> Result<ControllerHandle, NodeError> {
    config.validate()?;
    let rng = Rng::seed_from_u64(config.seed.unwrap_or_else(mc_rt::fresh_seed));
    let signal = bind_tcp("ZC signalling", (config.listen, config.signal_port).into()).await?;
    let shared_tls = bind_tcp(
        "the shared TLS port",
        (config.listen, config.tls_port).into(),
    )
    .await?;
    let mmr = Mmr::start_with(
        (config.listen, config.media_udp_port).into(),
        (config.listen, config.media_tcp_port).into(),
        config.conn_caps(),
        config.stream_deadlines(),
        config.media_limits(),
    )
    .await?;
    let cascade = bind_tcp(
        "the MMR's cascade port",
        (config.listen, config.media_cascade_port).into(),
    )
    .await?;
    let signal_addr = signal.local_addr().expect("bound");
    let tls_addr = shared_tls.local_addr().expect("bound");
    let cascade_addr = cascade.local_addr().expect("bound");
    let params = Params {
        id: ControllerId(config.id.clone()),
        zone: config.zone.clone(),
        signalling: SignallingEndpoints {
            host: config.advertised_host(),
            port: config.advertise_signal_port.unwrap_or(signal_addr.port()),
            fallback_port: tls_addr.port(),
        },
        limits: ZcLimits {
            max_meetings: config.max_meetings,
        },
        local_mmr: (
            local_mmr_id(&config.id),
            config.mmr_capacity,
            MediaEndpoints {
                host: config.advertised_host(),
                udp_port: config
                    .advertise_media_udp_port
                    .unwrap_or(mmr.udp_addr.port()),
                tcp_port: config
                    .advertise_media_tcp_port
                    .unwrap_or(mmr.tcp_addr.port()),
                tls_port: tls_addr.port(),
            },
        ),
        local_mmr_cascade_port: Some(cascade_addr.port()),
        mmr_report_interval_ms: config.mmr_report_interval_ms,
        // The core's deadline for a peer's first message: a session's join, a link's hello.
        handshake_timeout_ms: config.first_message_timeout_ms,
        peer: config.peer_host.as_ref().map(|_| PeerParams {
            interval_ms: config.peer_interval_ms,
            down_after_ms: config.peer_down_after_ms,
        }),
    };
    let recent = crate::monitor::RecentEvents::default();
    let links = crate::monitor::LinkTable::new(recent.clone());
    let metrics = Metrics::new("controller");
    let (core, status) = driver::start(
        Controller::new(params, rng),
        mmr.clone(),
        driver::Sinks {
            events: events.clone(),
            links: links.clone(),
            recent: recent.clone(),
        },
        cloud_link::LINK,
        &metrics,
    );
    crate::metrics::register_mmr(&metrics, mmr.clone(), config.mmr_capacity);
    crate::metrics::register_links(&metrics, links.clone());
    let signal_gate = Gate::new("signalling", config.conn_caps());
    let tls_gate = Gate::new("tls", config.conn_caps());
    crate::metrics::register_listeners(
        &metrics,
        vec![signal_gate.clone(), tls_gate.clone(), mmr.tcp_gate.clone()],
    );
    let handle = ControllerHandle {
        signal_addr,
        tls_addr,
        media_udp_addr: mmr.udp_addr,
        media_tcp_addr: mmr.tcp_addr,
        mmr: mmr.clone(),
        status: status.clone(),
        links: links.clone(),
        metrics: metrics.clone(),
    };
    mmr.serve_cascades(
        local_mmr_id(&config.id),
        &identity,
        cascade,
        config.conn_caps(),
        config.connect_timeout_ms,
        config.handshake_timeout_ms,
    )?;
    let identity_gate = IdentityGate::register(
        &metrics,
        &[
            link::STATUS_SYNC,
            link::NOTIFICATION,
            link::MONITORING,
            link::MMR_LINK,
            link::PEER,
            link::METRICS,
        ],
    );
    let ctx = Ctx {
        identity: identity_gate,
        recent,
        metrics,
        core,
        status,
        mmr,
        config: Arc::new(config),
        events,
        links,
    };
    let signal_route = tls::server_config(&identity, alpn::SIGNAL, tls::ClientAuth::None)?;
    // On-premises links are mutual TLS: only hosts with a certificate from the deployment CA.
    let link_route = tls::server_config(&identity, alpn::LINK, tls::ClientAuth::Required)?;
    let peer_route = tls::server_config(&identity, alpn::PEER, tls::ClientAuth::Required)?;
    // Local health probes; the full report needs a deployment certificate.
    let health_route = tls::server_config(&identity, alpn::HTTP1, tls::ClientAuth::Optional)?;
    let signal_router = Router::new()
        .route(alpn::SIGNAL, signal_route.clone())
        .route(alpn::LINK, link_route.clone())
        .route(alpn::PEER, peer_route.clone())
        .route(alpn::HTTP1, health_route.clone())
        .default_route(alpn::SIGNAL);
    let shared_router = Router::new()
        .route(alpn::SIGNAL, signal_route)
        .route(
            alpn::MEDIA,
            tls::server_config(&identity, alpn::MEDIA, tls::ClientAuth::None)?,
        )
        .route(alpn::LINK, link_route)
        .route(alpn::PEER, peer_route)
        .route(
            alpn::CASCADE,
            tls::server_config(&identity, alpn::CASCADE, tls::ClientAuth::Required)?,
        )
        .route(alpn::HTTP1, health_route)
        .default_route(alpn::SIGNAL);
    ctx.events.record(LinkEvent::Listening {
        id: ctx.config.id.clone(),
        signalling: handle.signal_addr,
        tls: handle.tls_addr,
        udp: handle.media_udp_addr,
        tcp: handle.media_tcp_addr,
    });
    mc_rt::spawn(accept_loop(signal, signal_router, signal_gate, ctx.clone()));
    mc_rt::spawn(accept_loop(
        shared_tls,
        shared_router,
        tls_gate,
        ctx.clone(),
    ));
    mc_rt::spawn(notify_link::run(ctx.clone(), identity.clone()));
    if ctx.config.peer_host.is_some() {
        mc_rt::spawn(peer::run(ctx.clone(), identity.clone()));
    }
    let reporter = crate::monitor::Reporter {
        cloud_host: ctx.config.cloud_host.clone(),
        cloud_https_port: ctx.config.cloud_https_port,
        interval_ms: ctx.config.monitoring_interval_ms,
        timeout_ms: ctx.config.connect_timeout_ms,
        identity: ctx.identity.clone(),
    };
    let report_ctx = ctx.clone();
    reporter.spawn(&identity, move || report(&report_ctx));
    mc_rt::spawn(cloud_link::run(ctx, identity));
    Ok(handle)
}

/// What this controller reports to monitoring and to local health probes. Ready: registered,
/// not drained, and linked to the cloud.
fn report(ctx: &Ctx) -> mc_wire::monitor::Report {
    use mc_wire::monitor::{Capacity, HaReport, HostedMeeting};
    let status = ctx.status.lock().unwrap().clone();
    let now_ms = mc_rt::unix_now_ms();
    let ha = status.ha.map(|ha| {
        let lease_until_ms = status.lease_until_ms.unwrap_or(0);
        HaReport {
            lease_remaining_ms: lease_until_ms.saturating_sub(now_ms),
            fenced: now_ms >= lease_until_ms,
            owned: ha.owned,
            peer_up: ha.peer_up,
            takeovers: ha.takeovers,
        }
    });
    let hosted = status
        .zone
        .meetings
        .iter()
        .map(|(meeting, (mmr, size))| HostedMeeting {
            meeting: *meeting,
            mmr: mmr.clone(),
            participants: *size as u32,
        })
        .collect();
    mc_wire::monitor::Report {
        node: ctx.config.id.clone(),
        role: mc_wire::monitor::NodeRole::Controller,
        live: true,
        ready: status.ready && ctx.links.is_up(cloud_link::LINK),
        links: ctx.links.snapshot(),
        participants: status.load.participants,
        meetings: status.load.meetings,
        media: ctx.mmr.media_counters(),
        capacity: Some(Capacity {
            participants: status.capacity.participants,
            meetings: Some(status.capacity.meetings),
        }),
        draining: status.draining,
        ha,
        hosted,
        recent: ctx.recent.snapshot(),
    }
}

/// The id of the MMR inside controller `controller`'s process (the cloud knows it by this too).
pub fn local_mmr_id(controller: &str) -> MmrId {
    MmrId(format!("{controller}-mmr"))
}

/// A certified link's peer: each message that names its sender must name the node its
/// certificate does, or the link is closed, refused, before the core sees the message.
#[derive(Clone)]
pub(crate) struct Vouch {
    pub gate: IdentityGate,
    pub link: &'static str,
    pub peer: SocketAddr,
    pub certified: PeerIdentity,
}

impl Vouch {
    pub fn claims(&self, claimed: Option<&str>) -> Result<(), mc_core::controller::Closed> {
        let Some(claimed) = claimed else {
            return Ok(());
        };
        let named = self.certified.expect(self.certified.role, claimed);
        self.gate
            .check(self.link, self.peer, named)
            .map_err(|e| mc_core::controller::Closed::Refused(e.to_string()))
    }
}

async fn accept_loop(listener: TcpListener, router: Router, gate: Gate, ctx: Ctx) {
    let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
    let deadline = Duration::from_millis(ctx.config.handshake_timeout_ms);
    crate::serve::serve_tls(listener, router, gate, deadline, move |alpn_id, stream, peer, gate| {
        let ctx = ctx.clone();
        async move {
            let core = &ctx.core;
            let conn = core.conn_id();
            match alpn_id.as_slice() {
                a if a == alpn::SIGNAL => {
                    tracing::debug!(client_addr = %peer, port, conn, "signalling session opened");
                    let open = Input::SessionOpened { conn };
                    let input = move |msg: ClientToZc| Input::Session { conn, msg };
                    conn::run(stream, core, conn, open, input, None).await
                }
                a if a == alpn::MEDIA => crate::mmr::serve_stream(stream, peer, ctx.mmr.clone(), mc_core::client::MediaPath::Tls, gate).await,
                a if a == alpn::CASCADE => {
                    let certified = tls::client_identity(&stream).ok();
                    crate::mmr::cascade::accept(ctx.mmr.clone(), stream, certified).await
                }
                a if a == alpn::LINK => {
                    // Only an MMR links, and only as the MMR its certificate names.
                    let mmr = tls::client_identity(&stream).and_then(|id| id.expect_role(CertRole::Mmr));
                    let Ok(mmr) = ctx.identity.check(link::MMR_LINK, peer, mmr) else { return };
                    let open = Input::MmrLinkOpened { conn, from: peer.to_string() };
                    let vouch = Vouch { gate: ctx.identity.clone(), link: link::MMR_LINK, peer, certified: mmr };
                    let input = move |msg: MmrToController| {
                        let claimed = match &msg {
                            MmrToController::Hello { mmr, .. } => Some(mmr.0.as_str()),
                            _ => None,
                        };
                        match vouch.claims(claimed) {
                            Ok(()) => Input::Mmr { conn, msg },
                            Err(why) => Input::Closed { conn, why },
                        }
                    };
                    conn::run(stream, core, conn, open, input, None).await
                }
                a if a == alpn::PEER => {
                    let peer_ctl = tls::client_identity(&stream).and_then(|id| id.expect_role(CertRole::Controller));
                    let Ok(peer_ctl) = ctx.identity.check(link::PEER, peer, peer_ctl) else { return };
                    let open = Input::PeerLinkOpened { conn, dialled: None };
                    let vouch = Vouch { gate: ctx.identity.clone(), link: link::PEER, peer, certified: peer_ctl };
                    let input = move |msg: PeerMsg| match vouch.claims(Some(peer::sender(&msg))) {
                        Ok(()) => Input::Peer { conn, msg },
                        Err(why) => Input::Closed { conn, why },
                    };
                    conn::run(stream, core, conn, open, input, None).await
                }
                a if a == alpn::HTTP1 => {
                    let caller = crate::monitor::HealthCaller {
                        addr: peer,
                        identity: tls::client_identity(&stream),
                        gate: ctx.identity.clone(),
                    };
                    let metrics = ctx.metrics.clone();
                    crate::monitor::serve_health(stream, caller, metrics, move || report(&ctx)).await
                }
                a => tracing::error!(alpn = %String::from_utf8_lossy(a), "routed to an ALPN with no handler"),
            }
        }
    })
    .await
}
