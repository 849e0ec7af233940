//! A controller VM: the zone controller (ZC) and one MMR in one process (DESIGN §2).
//!
//! Ports (DESIGN §3): signalling on `signal_port` (8802); media on UDP and TCP `media_*_port`
//! (8801); and `tls_port` (443), where one TLS listener serves signalling and media-over-TLS told
//! apart by ALPN. The controller registers with cloud status sync (8803, falling back to 443) and
//! heartbeats its load; until it has the cloud's ticket key it refuses joins as `not_ready`.

mod cloud_link;
mod drain;
mod mmr_link;
mod notify_link;
mod peer;
mod signalling;

use crate::config::ControllerConfig;
use crate::error::{bind_tcp, NodeError};
use crate::mmr::Mmr;
use crate::EventLog;
use mc_core::zc::ha::Ha;
use mc_core::zc::{SessionId, Zc, ZcLimits, ZcOutput};
use mc_core::Rng;
use mc_rt::net::TcpListener;
use mc_rt::sync::mpsc;
use mc_rt::tls::{self, Identity, Router};
use mc_wire::ports::alpn;
use mc_wire::signal::{MediaEndpoints, ZcToClient};
use mc_wire::status::ControllerToCloud;
use mc_wire::MmrId;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub(crate) enum SessionMsg {
    Send(ZcToClient),
    Close,
}

/// The ZC and the channels to its signalling sessions, behind one lock: every join and leave is
/// decided in turn, which is what makes admission exact.
pub(crate) struct ZcState {
    pub zc: Zc,
    pub sessions: BTreeMap<SessionId, mpsc::UnboundedSender<SessionMsg>>,
    pub next_session: SessionId,
    /// Linked MMR VMs: the link's number (a newer link replaces an older) and its command queue.
    pub mmr_links: BTreeMap<MmrId, (u64, mpsc::UnboundedSender<mc_wire::link::ControllerToMmr>)>,
    pub next_link: u64,
    /// Joins granted on an MMR VM, by hex token: the client hears `joined` only once the MMR has
    /// confirmed the grant, so its first binding never races the grant.
    pub held_joins: BTreeMap<String, Option<(SessionId, ZcToClient)>>,
    /// Set in an HA pair: the lease and what the peer last said.
    pub ha: Option<Ha>,
    /// The live cloud status link's queue, while there is one: claims and releases go there.
    pub cloud_tx: Option<mpsc::UnboundedSender<ControllerToCloud>>,
    pub next_claim: u64,
}

#[derive(Clone)]
pub(crate) struct Ctx {
    pub zc: Arc<Mutex<ZcState>>,
    pub mmr: Mmr,
    pub local_mmr: MmrId,
    pub config: Arc<ControllerConfig>,
    pub events: EventLog,
    pub links: crate::monitor::LinkTable,
}

impl Ctx {
    /// Carries out everything the ZC decided. Called with the ZC lock held; takes the MMR lock
    /// inside it (always in that order).
    pub fn drain(&self, state: &mut ZcState) {
        while let Some(out) = state.zc.poll_output() {
            match out {
                ZcOutput::Reply {
                    session,
                    msg:
                        ZcToClient::Joined {
                            meeting,
                            participant,
                            media,
                            media_token,
                        },
                } if state.held_joins.contains_key(&media_token) => {
                    let msg = ZcToClient::Joined {
                        meeting,
                        participant,
                        media,
                        media_token: media_token.clone(),
                    };
                    state.held_joins.insert(media_token, Some((session, msg)));
                }
                ZcOutput::Reply { session, msg } => {
                    match &msg {
                        ZcToClient::Rejected { reason, message } => self.events.record(
                            format_args!("rejected session {session}: {reason}: {message}"),
                        ),
                        ZcToClient::Ended { reason, .. } => self
                            .events
                            .record(format_args!("ended session {session}: {reason}")),
                        ZcToClient::Redirect { controller, .. } => self
                            .events
                            .record(format_args!("redirected session {session} to {controller}")),
                        ZcToClient::Joined { .. } | ZcToClient::Pong => {}
                    }
                    if let Some(tx) = state.sessions.get(&session) {
                        let _ = tx.send(SessionMsg::Send(msg));
                    }
                }
                ZcOutput::Close { session } => {
                    if let Some(tx) = state.sessions.get(&session) {
                        let _ = tx.send(SessionMsg::Close);
                    }
                }
                ZcOutput::Mmr { mmr, cmd } if mmr == self.local_mmr => {
                    log_grant(&self.events, &mmr, &cmd);
                    self.mmr.apply(cmd)
                }
                ZcOutput::Claim { meeting } => {
                    let now_ms = mc_rt::unix_now_ms();
                    let alive_peers = state
                        .ha
                        .as_ref()
                        .map(|ha| ha.alive_peers(now_ms))
                        .unwrap_or_default();
                    state.next_claim += 1;
                    let claim = ControllerToCloud::Claim {
                        request: state.next_claim,
                        meeting,
                        alive_peers,
                    };
                    let sent = state
                        .cloud_tx
                        .as_ref()
                        .is_some_and(|tx| tx.send(claim).is_ok());
                    if !sent {
                        state
                            .zc
                            .claim_failed(meeting, "the cloud status link is down");
                    }
                }
                ZcOutput::Release { meeting, epoch } => {
                    // Lost with the link, the release is made good at the next registration,
                    // which lists what this controller still owns.
                    if let Some(tx) = &state.cloud_tx {
                        let _ = tx.send(ControllerToCloud::Release { meeting, epoch });
                    }
                }
                ZcOutput::Mmr { mmr, cmd } => match state.mmr_links.get(&mmr) {
                    Some((_, tx)) => {
                        log_grant(&self.events, &mmr, &cmd);
                        if let mc_core::zc::MmrCommand::Admit { token, .. } = &cmd {
                            state.held_joins.insert(mc_wire::hex::encode(token), None);
                        }
                        let _ = tx.send(mmr_link::to_wire(cmd));
                    }
                    // The link just closed; the ZC hears of it next and ends those meetings.
                    None => tracing::warn!(%mmr, "a command for an MMR whose link is gone"),
                },
            }
        }
    }
}

impl ZcState {
    /// An MMR VM confirmed a grant: release the held `joined`.
    pub fn grant_confirmed(&mut self, token: &str) {
        if let Some(Some((session, msg))) = self.held_joins.remove(token) {
            if let Some(tx) = self.sessions.get(&session) {
                let _ = tx.send(SessionMsg::Send(msg));
            }
        }
    }
}

fn log_grant(events: &EventLog, mmr: &MmrId, cmd: &mc_core::zc::MmrCommand) {
    if let mc_core::zc::MmrCommand::Admit {
        meeting,
        participant,
        ..
    } = cmd
    {
        events.record(format_args!("admitted {participant} to {meeting} on {mmr}"));
    }
}

/// A running controller: where it listens, and its MMR (for counters).
#[derive(Clone)]
pub struct ControllerHandle {
    pub signal_addr: SocketAddr,
    pub tls_addr: SocketAddr,
    pub media_udp_addr: SocketAddr,
    pub media_tcp_addr: SocketAddr,
    pub mmr: Mmr,
    zc: Option<Arc<Mutex<ZcState>>>,
    links: crate::monitor::LinkTable,
}

impl ControllerHandle {
    /// The ZC's view of the zone: meetings and where they live, MMRs and their load.
    pub fn zone(&self) -> mc_core::zc::ZoneSnapshot {
        self.zc
            .as_ref()
            .expect("set at start")
            .lock()
            .unwrap()
            .zc
            .snapshot()
    }

    /// The path each outgoing link uses now.
    pub fn links(&self) -> std::collections::BTreeMap<String, mc_wire::monitor::LinkState> {
        self.links.snapshot()
    }

    /// Whether what this controller hosts is backed by ownership: always for a lone controller;
    /// in an HA pair, while its lease runs (once it has run out the controller fences and admits
    /// nobody, and the peer may take the meetings over).
    pub fn lease_valid(&self) -> bool {
        let st = self.zc.as_ref().expect("set at start").lock().unwrap();
        st.ha
            .as_ref()
            .is_none_or(|ha| !ha.lease_expired(mc_rt::unix_now_ms()))
    }

    /// Meetings this controller may host.
    pub fn max_meetings(&self) -> u32 {
        self.zc
            .as_ref()
            .expect("set at start")
            .lock()
            .unwrap()
            .zc
            .capacity()
            .meetings
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
    let mmr = Mmr::start(
        (config.listen, config.media_udp_port).into(),
        (config.listen, config.media_tcp_port).into(),
    )
    .await?;
    let handle = ControllerHandle {
        signal_addr: signal.local_addr().expect("bound"),
        tls_addr: shared_tls.local_addr().expect("bound"),
        media_udp_addr: mmr.udp_addr,
        media_tcp_addr: mmr.tcp_addr,
        mmr: mmr.clone(),
        zc: None,
        links: crate::monitor::LinkTable::default(),
    };

    let mut zc = Zc::new(
        ZcLimits {
            max_meetings: config.max_meetings,
        },
        rng,
    );
    let local_mmr = MmrId(format!("{}-mmr", config.id));
    zc.mmr_up(
        local_mmr.clone(),
        config.mmr_capacity,
        MediaEndpoints {
            host: config.advertised_host(),
            udp_port: config
                .advertise_media_udp_port
                .unwrap_or(handle.media_udp_addr.port()),
            tcp_port: config
                .advertise_media_tcp_port
                .unwrap_or(handle.media_tcp_addr.port()),
            tls_port: handle.tls_addr.port(),
        },
    );
    let ha = ctx_ha(&config, &mut zc);
    let mut handle = handle;
    let ctx = Ctx {
        zc: Arc::new(Mutex::new(ZcState {
            zc,
            sessions: BTreeMap::new(),
            next_session: 0,
            mmr_links: BTreeMap::new(),
            next_link: 0,
            held_joins: BTreeMap::new(),
            ha,
            cloud_tx: None,
            next_claim: 0,
        })),
        mmr,
        local_mmr,
        config: Arc::new(config),
        events,
        links: crate::monitor::LinkTable::default(),
    };

    handle.zc = Some(ctx.zc.clone());
    handle.links = ctx.links.clone();
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
        .route(alpn::HTTP1, health_route)
        .default_route(alpn::SIGNAL);
    ctx.events.record(format_args!(
        "controller {} listening: signalling {} tls {} media udp {} tcp {}",
        ctx.config.id,
        handle.signal_addr,
        handle.tls_addr,
        handle.media_udp_addr,
        handle.media_tcp_addr
    ));
    mc_rt::spawn(accept_loop(signal, signal_router, ctx.clone()));
    mc_rt::spawn(accept_loop(shared_tls, shared_router, ctx.clone()));
    mc_rt::spawn(notify_link::run(ctx.clone(), identity.clone()));
    if ctx.config.peer_host.is_some() {
        mc_rt::spawn(peer::run(ctx.clone(), identity.clone()));
        mc_rt::spawn(peer::watch_lease(ctx.clone()));
    }
    let reporter = crate::monitor::Reporter {
        cloud_host: ctx.config.cloud_host.clone(),
        cloud_https_port: ctx.config.cloud_https_port,
        interval_ms: ctx.config.monitoring_interval_ms,
        timeout_ms: ctx.config.connect_timeout_ms,
    };
    let report_ctx = ctx.clone();
    reporter.spawn(&identity, move || report(&report_ctx));
    mc_rt::spawn(cloud_link::run(ctx, identity, handle.clone()));
    Ok(handle)
}

/// What this controller reports to monitoring and to local health probes. Ready: registered,
/// not drained, and linked to the cloud.
fn report(ctx: &Ctx) -> mc_wire::monitor::Report {
    let (load, ready) = {
        let st = ctx.zc.lock().unwrap();
        (st.zc.load(), st.zc.is_ready() && !st.zc.is_draining())
    };
    mc_wire::monitor::Report {
        node: ctx.config.id.clone(),
        role: mc_wire::monitor::NodeRole::Controller,
        live: true,
        ready: ready && ctx.links.is_up(cloud_link::LINK),
        links: ctx.links.snapshot(),
        participants: load.participants,
        meetings: load.meetings,
        media: ctx.mmr.media_counters(),
    }
}

/// A controller with a peer is one of an HA pair: it claims meetings and keeps a lease.
fn ctx_ha(config: &ControllerConfig, zc: &mut Zc) -> Option<Ha> {
    config.peer_host.as_ref()?;
    zc.enable_ownership();
    Some(Ha::new(config.peer_down_after_ms))
}

async fn accept_loop(listener: TcpListener, router: Router, ctx: Ctx) {
    let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
    let deadline = Duration::from_millis(ctx.config.handshake_timeout_ms);
    crate::serve::serve_tls(listener, router, deadline, move |alpn_id, stream, peer| {
        let ctx = ctx.clone();
        async move {
            match alpn_id.as_slice() {
                a if a == alpn::SIGNAL => signalling::serve(stream, peer, port, ctx).await,
                a if a == alpn::MEDIA => crate::mmr::serve_stream(stream, peer, ctx.mmr.clone(), "tls").await,
                a if a == alpn::LINK => mmr_link::serve(stream, peer, ctx).await,
                a if a == alpn::PEER => peer::serve(stream, peer, ctx).await,
                a if a == alpn::HTTP1 => {
                    let certified = tls::peer_has_certificate(&stream);
                    crate::monitor::serve_health(stream, certified, move || report(&ctx)).await
                }
                a => tracing::error!(alpn = %String::from_utf8_lossy(a), "routed to an ALPN with no handler"),
            }
        }
    })
    .await
}
