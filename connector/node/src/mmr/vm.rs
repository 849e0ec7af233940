//! An MMR VM: an MMR plus its link to a controller (mutual TLS, ALPN `mc-link/1`, 8802 falling
//! back to 443). It says hello with its capacity and media addresses, carries out the grants the
//! controller sends, and reports load every interval the controller names. A lost link is retried
//! with backoff; media already flowing keeps flowing meanwhile.

use super::Mmr;
use crate::config::MmrConfig;
use crate::error::{bind_tcp, NodeError};
use crate::framed::{write_frame, FrameReader, LinkError, Read};
use crate::EventLog;
use mc_core::fallback::Ladder;
use mc_core::zc::MmrCommand;
use mc_rt::net::TcpListener;
use mc_rt::tls::{self, ClientConfig, Identity, Router};
use mc_wire::link::{ControllerToMmr, MmrToController};
use mc_wire::ports::alpn;
use mc_wire::signal::MediaEndpoints;
use mc_wire::{hex, MmrId};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

const RETRY_BACKOFF_MS_MAX: u64 = 10_000;
const LINK: &str = "controller";

/// A running MMR VM: where it listens.
#[derive(Clone)]
pub struct MmrVmHandle {
    pub media_udp_addr: SocketAddr,
    pub media_tcp_addr: SocketAddr,
    pub tls_addr: SocketAddr,
    pub mmr: Mmr,
    pub links: crate::monitor::LinkTable,
}

pub async fn start(
    config: MmrConfig,
    identity: Identity,
    events: EventLog,
) -> Result<MmrVmHandle, NodeError> {
    config.validate()?;
    let mmr = Mmr::start(
        (config.listen, config.media_udp_port).into(),
        (config.listen, config.media_tcp_port).into(),
    )
    .await?;
    let tls_listener = bind_tcp("MMR media (TLS)", (config.listen, config.tls_port).into()).await?;
    let links = crate::monitor::LinkTable::default();
    let handle = MmrVmHandle {
        media_udp_addr: mmr.udp_addr,
        media_tcp_addr: mmr.tcp_addr,
        tls_addr: tls_listener.local_addr().expect("bound"),
        mmr: mmr.clone(),
        links: links.clone(),
    };
    let router = Router::new()
        .route(
            alpn::MEDIA,
            tls::server_config(&identity, alpn::MEDIA, tls::ClientAuth::None)?,
        )
        // Local health probes; the full report needs a deployment certificate.
        .route(
            alpn::HTTP1,
            tls::server_config(&identity, alpn::HTTP1, tls::ClientAuth::Optional)?,
        )
        .default_route(alpn::MEDIA);
    let link_tls = tls::client_config(&identity.ca, Some(&identity), alpn::LINK)?;
    events.record(format_args!(
        "MMR {} listening: media udp {} tcp {} tls {}",
        config.id, handle.media_udp_addr, handle.media_tcp_addr, handle.tls_addr
    ));
    let (report_links, report_mmr, node) = (links.clone(), mmr.clone(), config.id.clone());
    // Ready: linked to a controller, so it can be given participants.
    let report = Arc::new(move || mc_wire::monitor::Report {
        node: node.clone(),
        role: mc_wire::monitor::NodeRole::Mmr,
        live: true,
        ready: report_links.is_up(LINK),
        links: report_links.snapshot(),
        participants: report_mmr.participants() as u32,
        meetings: 0,
        media: report_mmr.media_counters(),
    });
    mc_rt::spawn(tls_loop(
        tls_listener,
        router,
        mmr.clone(),
        report.clone(),
        config.handshake_timeout_ms,
    ));
    let reporter = crate::monitor::Reporter {
        cloud_host: config.cloud_host.clone(),
        cloud_https_port: config.cloud_https_port,
        interval_ms: config.monitoring_interval_ms,
        timeout_ms: config.connect_timeout_ms,
    };
    reporter.spawn(&identity, move || report());
    mc_rt::spawn(link_loop(config, handle.clone(), link_tls, events, links));
    Ok(handle)
}

/// The TLS port: media over TLS, and local health probes (by ALPN).
async fn tls_loop(
    listener: TcpListener,
    router: Router,
    mmr: Mmr,
    report: Arc<dyn Fn() -> mc_wire::monitor::Report + Send + Sync>,
    handshake_timeout_ms: u64,
) {
    crate::serve::serve_tls(
        listener,
        router,
        Duration::from_millis(handshake_timeout_ms),
        move |alpn_id, stream, peer| {
            let (mmr, report) = (mmr.clone(), report.clone());
            async move {
                if alpn_id == alpn::HTTP1 {
                    let certified = tls::peer_has_certificate(&stream);
                    crate::monitor::serve_health(stream, certified, move || report()).await
                } else {
                    super::serve_stream(stream, peer, mmr, "tls").await
                }
            }
        },
    )
    .await
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LinkPath {
    Dedicated,
    Fallback,
}

/// How often a link on its fallback port tries the dedicated port again.
const REPROBE_INTERVAL_MS: u64 = 30_000;

type Stream = tls::ClientTlsStream<mc_rt::net::TcpStream>;

enum End {
    Lost(String),
    Better(LinkPath, Box<Stream>),
}

/// A controller this MMR VM may link to: the configured one, or the other of an HA pair.
#[derive(Debug, Clone)]
struct Target {
    host: String,
    port: u16,
    fallback_port: u16,
    tls: Arc<ClientConfig>,
}

fn targets(config: &MmrConfig, tls: &Arc<ClientConfig>) -> Vec<Target> {
    let mut t = vec![Target {
        host: config.controller_host.clone(),
        port: config.controller_port,
        fallback_port: config.controller_fallback_port,
        tls: tls.clone(),
    }];
    if let Some(host) = &config.peer_controller_host {
        t.push(Target {
            host: host.clone(),
            port: config.peer_controller_port,
            fallback_port: config.peer_controller_fallback_port,
            tls: tls.clone(),
        });
    }
    t
}

async fn connect(config: &MmrConfig, target: &Target, path: LinkPath) -> Result<Stream, String> {
    let port = target.port_of(path);
    let addr = mc_rt::net::resolve(&target.host, port)
        .await
        .map_err(|e| e.to_string())?;
    tls::connect(
        addr,
        &target.host,
        target.tls.clone(),
        Duration::from_millis(config.connect_timeout_ms),
    )
    .await
    .map_err(|e| e.to_string())
}

impl Target {
    fn port_of(&self, path: LinkPath) -> u16 {
        match path {
            LinkPath::Dedicated => self.port,
            LinkPath::Fallback => self.fallback_port,
        }
    }
}

async fn link_loop(
    config: MmrConfig,
    handle: MmrVmHandle,
    tls_config: Arc<ClientConfig>,
    events: EventLog,
    links: crate::monitor::LinkTable,
) {
    let mut ladder = Ladder::new(
        vec![LinkPath::Dedicated, LinkPath::Fallback],
        REPROBE_INTERVAL_MS,
    );
    let mut backoff_ms = 500;
    let mut next: Option<(LinkPath, Stream)> = None;
    let targets = targets(&config, &tls_config);
    // Which controller: the link stays with the one that answered until that link is lost, and
    // moves to the other of a pair when this one is unreachable on both its ports.
    let mut current = 0;
    let mut tried_all = 0;
    loop {
        let target = &targets[current];
        let (path, stream) = match next.take() {
            Some(n) => n,
            None => {
                let Some(path) = ladder.next_to_try().copied() else {
                    ladder.reset();
                    current = (current + 1) % targets.len();
                    tried_all += 1;
                    if tried_all < targets.len() {
                        events.record(format_args!(
                            "controller {} unreachable on both ports; trying {}",
                            target.host, targets[current].host
                        ));
                        continue;
                    }
                    tried_all = 0;
                    events.record(format_args!(
                        "no controller reachable on any port; retrying in {backoff_ms} ms"
                    ));
                    mc_rt::sleep(Duration::from_millis(backoff_ms)).await;
                    backoff_ms = (backoff_ms * 2).min(RETRY_BACKOFF_MS_MAX);
                    continue;
                };
                match connect(&config, target, path).await {
                    Ok(s) => (path, s),
                    Err(e) => {
                        tracing::warn!(?path, "MMR link: {e}");
                        ladder.attempt_failed(&path);
                        continue;
                    }
                }
            }
        };
        ladder.established(mc_rt::unix_now_ms(), &path);
        backoff_ms = 500;
        tried_all = 0;
        let port = target.port_of(path);
        links.up(LINK, path == LinkPath::Dedicated, port);
        match session(&config, target, &handle, stream, port, &events, &mut ladder)
            .await
            .unwrap_or_else(End::Lost)
        {
            End::Lost(reason) => {
                links.down(LINK);
                // Grants live only as long as a link: the controller re-sends those that stand
                // when this MMR links again, and otherwise moves its meetings elsewhere.
                handle.mmr.clear();
                events.record(format_args!("link to controller lost: {reason}"));
                ladder.lost();
                mc_rt::sleep(Duration::from_millis(backoff_ms)).await;
            }
            End::Better(path, stream) => {
                events.record(format_args!(
                    "link to controller moving back to port {}",
                    target.port_of(path)
                ));
                next = Some((path, *stream));
            }
        }
    }
}

/// One link session: `Ok(End::Better)` when a better port answered, `Err(reason)` when lost.
async fn session(
    config: &MmrConfig,
    target: &Target,
    handle: &MmrVmHandle,
    stream: Stream,
    port: u16,
    events: &EventLog,
    ladder: &mut Ladder<LinkPath>,
) -> Result<End, String> {
    let (rd, mut wr) = mc_rt::split(stream);
    let mut rd = FrameReader::new(rd);
    let hello = MmrToController::Hello {
        mmr: MmrId(config.id.clone()),
        capacity: config.capacity,
        media: MediaEndpoints {
            host: config.advertised_host(),
            udp_port: handle.media_udp_addr.port(),
            tcp_port: handle.media_tcp_addr.port(),
            tls_port: handle.tls_addr.port(),
        },
    };
    if let Err(e) = write_frame(&mut wr, &hello).await {
        return Err(e.to_string());
    }
    let interval_ms = match rd
        .next_within::<ControllerToMmr>(Duration::from_millis(config.handshake_timeout_ms))
        .await
    {
        Read::Message(ControllerToMmr::Welcome {
            controller,
            report_interval_ms,
        }) => {
            // A new link is a new epoch: whatever this MMR held before, the controller may have
            // moved elsewhere while the link was down. It re-sends the grants that stand.
            handle.mmr.clear();
            events.record(format_args!(
                "linked to controller {controller} on port {port}"
            ));
            report_interval_ms.max(50)
        }
        Read::Message(ControllerToMmr::Refused { message }) => {
            return Err(format!("the controller refused the link: {message}"))
        }
        Read::Message(other) => return Err(format!("expected a welcome, got {other:?}")),
        Read::Closed => return Err("the controller closed the link".into()),
        Read::Malformed(e) => return Err(LinkError::Malformed(e).to_string()),
        Read::Io(e) => return Err(LinkError::Io(e).to_string()),
        Read::Timeout => return Err("the controller did not answer the hello".into()),
    };
    let mut tick = mc_rt::interval(Duration::from_millis(interval_ms));
    let mut reprobe = mc_rt::interval(Duration::from_millis(REPROBE_INTERVAL_MS));
    reprobe.tick().await;
    // The controller keeps the link alive every interval; silence for three means it is frozen
    // or cut off, and its grants must not outlive it (its peer may be taking the meetings over).
    let silence_ms = 3 * interval_ms;
    let mut heard = mc_rt::Instant::now();
    loop {
        mc_rt::select! {
            // Branches are polled in order, never at random: one seed, one run.
            biased;
            _ = reprobe.tick() => {
                if let Some(better) = ladder.reprobe_due(mc_rt::unix_now_ms()) {
                    if let Ok(stream) = connect(config, target, better).await {
                        return Ok(End::Better(better, Box::new(stream)));
                    }
                }
            }
            _ = tick.tick() => {
                if heard.elapsed() > Duration::from_millis(silence_ms) {
                    return Err(format!("the controller sent nothing for {silence_ms} ms"));
                }
                let m = handle.mmr.media_counters();
                let load = MmrToController::Load {
                    participants: handle.mmr.participants() as u32,
                    rtp_in: m.rtp_in,
                    rtp_out: m.rtp_out,
                    dropped: m.dropped,
                };
                if let Err(e) = write_frame(&mut wr, &load).await {
                    return Err(e.to_string());
                }
            }
            msg = rd.next::<ControllerToMmr>() => match msg.inspect(|_| heard = mc_rt::Instant::now()) {
                Ok(Some(ControllerToMmr::Admit { token: text, meeting, participant })) => match hex::decode("media token", &text) {
                    Ok(token) => {
                        handle.mmr.apply(MmrCommand::Admit { token, meeting, participant });
                        if let Err(e) = write_frame(&mut wr, &MmrToController::Admitted { token: text }).await {
                            return Err(e.to_string());
                        }
                    }
                    Err(e) => return Err(format!("the controller sent a bad grant: {e}")),
                },
                Ok(Some(ControllerToMmr::Revoke { token })) => match hex::decode("media token", &token) {
                    Ok(token) => handle.mmr.apply(MmrCommand::Revoke { token }),
                    Err(e) => return Err(format!("the controller sent a bad revocation: {e}")),
                },
                Ok(Some(ControllerToMmr::Refused { message })) => return Err(format!("the controller ended the link: {message}")),
                Ok(Some(ControllerToMmr::Welcome { .. })) => return Err("the controller welcomed twice".into()),
                Ok(Some(ControllerToMmr::Keepalive)) => {}
                Ok(None) => return Err("the controller closed the link".into()),
                Err(e) => return Err(e.to_string()),
            }
        }
    }
}
