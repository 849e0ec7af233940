//! A participant: asks cloud management for a join ticket, joins through a ZC (8802, falling back
//! to 443), binds to the meeting's MMR (UDP 8801, then TCP 8801, then TLS 443), then sends RTP at
//! a steady rate and counts what it receives from each other participant. The same code is the
//! load generator.

mod cloud_api;
mod join;
mod media;

use crate::config::ClientConfig;
use crate::framed::write_frame;
use crate::EventLog;
use mc_core::client::{MediaStats, RtpSender};
use mc_core::Rng;
use mc_wire::signal::{ClientToZc, RejectReason, ZcToClient};
use mc_wire::{MeetingId, ParticipantId};
use rustls::pki_types::CertificateDer;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use thiserror::Error;

pub use cloud_api::{fetch_ticket, ControllerAddr, ManagementApi, TicketGrant};
pub use media::MediaPath;

use join::join_once;

#[derive(Debug, Error)]
pub enum ClientError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The cloud could not be reached for a join ticket (it may be back shortly).
    #[error("asking the cloud for a join ticket: {0}")]
    Ticket(String),
    /// The cloud refused a join ticket (no such meeting, a bad key): for good.
    #[error("the cloud refused a join ticket: {0}")]
    TicketRefused(String),
    #[error("no controller accepted the signalling connection: {0}")]
    Signalling(String),
    #[error("the join was refused: {reason}: {message}")]
    Rejected {
        reason: RejectReason,
        message: String,
    },
    #[error("the MMR could not be reached on any media path: {0}")]
    Media(String),
}

impl ClientError {
    pub fn rejection(&self) -> Option<RejectReason> {
        match self {
            ClientError::Rejected { reason, .. } => Some(*reason),
            _ => None,
        }
    }

    /// Whether a join should try again: everything but an answer for good (a capacity
    /// rejection, a refused or invalid ticket). A controller that is not ready or draining, or an
    /// unreachable one, is a passing state during a failover or a drain; so is a cloud that
    /// cannot be reached for a while.
    pub fn passing(&self) -> bool {
        matches!(self, ClientError::Ticket(_)) || self.zone_in_flux()
    }

    /// Whether the zone is failing over or draining (a controller or MMR just died or is
    /// leaving), which settles within seconds.
    pub fn zone_in_flux(&self) -> bool {
        matches!(self, ClientError::Signalling(_) | ClientError::Media(_))
            || matches!(
                self.rejection(),
                Some(RejectReason::NotReady | RejectReason::ControllerDraining)
            )
    }
}

/// What a participant saw: where it connected and what media moved.
#[derive(Debug, Clone, Serialize)]
pub struct ClientReport {
    pub display_name: String,
    pub meeting: MeetingId,
    pub participant: ParticipantId,
    pub controller: String,
    pub signalling_port: u16,
    pub media_path: MediaPath,
    pub join_ms: u64,
    /// Automatic rejoins after the ZC moved the meeting (the report describes the last session).
    pub rejoins: u32,
    pub ssrc: u32,
    pub sent: u64,
    pub received: u64,
    pub by_source: BTreeMap<u32, mc_core::client::SourceStats>,
    pub malformed: u64,
    /// Why the session ended, if the ZC ended it.
    pub ended_by_zc: Option<String>,
    /// When a rejoin after a failure did not get back in: the rejection's reason code
    /// (`meeting_full`, ...), or `rejoin_failed` when it failed without one. The participant was
    /// admitted once but lost its seat in the failover.
    pub rejoin_refused: Option<String>,
}

/// Most automatic rejoins one run makes (after an MMR or controller failure).
pub const MAX_REJOINS: u32 = 20;
/// How long one rejoin keeps trying (the cloud may be briefly unreachable, too).
pub const REJOIN_DEADLINE_MS: u64 = 60_000;
/// How long a first join keeps trying through passing failures — the zone in flux (a failover,
/// a drain) or the cloud unreachable — before it fails: about as long as a person waits on
/// "connecting…" before giving up.
pub const JOIN_DEADLINE_MS: u64 = 120_000;

/// How one stretch of media ended.
enum Stop {
    /// The configured duration passed or the caller stopped us.
    Done,
    /// The ZC ended the session; `rejoin` says the meeting goes on elsewhere.
    Ended {
        reason: String,
        rejoin: bool,
    },
    Failed(String),
}

/// Live counters of a running client, for progress lines (the load generator reads them).
#[derive(Debug, Default)]
pub struct ClientProbe {
    pub joined: AtomicBool,
    /// Completed rejoins (after a controller or MMR failure, or a move).
    pub rejoins: AtomicU64,
    pub sent: AtomicU64,
    pub received: AtomicU64,
}

/// Joins, exchanges media for the configured duration (or until `stop` resolves), and leaves.
/// When the ZC ends the session with `rejoin` (its MMR died), joins again, up to [`MAX_REJOINS`].
pub async fn run(
    config: ClientConfig,
    ca: CertificateDer<'static>,
    events: EventLog,
    stop: impl std::future::Future<Output = ()>,
) -> Result<ClientReport, ClientError> {
    run_observed(config, ca, events, stop, &ClientProbe::default()).await
}

/// [`run`], updating `probe` as it goes.
pub async fn run_observed(
    config: ClientConfig,
    ca: CertificateDer<'static>,
    events: EventLog,
    stop: impl std::future::Future<Output = ()>,
    probe_counters: &ClientProbe,
) -> Result<ClientReport, ClientError> {
    config.validate()?;
    let mut bridge = match config.bridge_listen {
        Some(addr) => Some(
            media::Bridge::bind(addr, config.bridge_send)
                .await
                .map_err(|e| ClientError::Media(format!("bridge port {addr}: {e}")))?,
        ),
        None => None,
    };
    let mut rng = Rng::seed_from_u64(config.seed.unwrap_or_else(mc_rt::fresh_seed));
    let started = mc_rt::Instant::now();
    let mut stop = Box::pin(stop);
    let mut attempt: u64 = 0;
    let mut session = loop {
        attempt += 1;
        match join_once(&config, &ca, &mut rng, &events).await {
            Err(e)
                if e.passing() && started.elapsed() < Duration::from_millis(JOIN_DEADLINE_MS) =>
            {
                tracing::info!(participant = %config.display_name, "join attempt {attempt} failed, retrying: {e}");
                let pause = Duration::from_millis((500 * attempt).min(3_000));
                mc_rt::select! {
                    // Biased: no random draw, so a simulation's random stream is as without it.
                    biased;
                    _ = mc_rt::sleep(pause) => {}
                    // Stopped while waiting to try again: the last failure is the outcome.
                    _ = &mut stop => return Err(e),
                }
            }
            other => break other?,
        }
    };
    let join_ms = started.elapsed().as_millis() as u64;
    probe_counters.joined.store(true, Ordering::Relaxed);

    let mut sender = RtpSender::new(
        rng.next_u64() as u32,
        rng.next_u64() as u16,
        rng.next_u64() as u32,
    );
    let mut stats = MediaStats::default();
    let interval_ms = (1000 / config.media_packets_per_s as u64).max(1);
    let mut tick = mc_rt::interval(Duration::from_millis(interval_ms));
    // Media missed while rejoining is not sent late in a burst: it is gone, as in a real call.
    tick.set_missed_tick_behavior(mc_rt::MissedTickBehavior::Skip);
    let mut until = Box::pin(async {
        if config.duration_ms == 0 {
            std::future::pending::<()>().await
        } else {
            mc_rt::sleep(Duration::from_millis(config.duration_ms)).await
        }
    });
    let mut payload = vec![0u8; config.payload_bytes];
    let mut rejoins = 0;
    let mut reprobe = mc_rt::interval(Duration::from_millis(config.media_reprobe_ms));
    reprobe.tick().await;
    let mut probe: Option<mc_rt::JoinHandle<Result<media::MediaConn, media::BindError>>> = None;
    let mut keepalive = mc_rt::interval(Duration::from_millis(config.media_keepalive_ms));
    // When the MMR was last heard on the current path (any packet: media or keepalive answer).
    let mut heard = mc_rt::Instant::now();
    let silence_limit =
        Duration::from_millis(config.media_keepalive_ms * config.media_keepalive_misses as u64);
    let mut sig_ping = mc_rt::interval(Duration::from_millis(config.signal_keepalive_ms));
    let mut sig_heard = mc_rt::Instant::now();
    let sig_silence_limit = Duration::from_millis(config.signal_keepalive_ms * 3);
    let mut rejoin_refused = None;
    let ended_by_zc = loop {
        let outcome = loop {
            mc_rt::select! {
                // Branches are polled in order, never at random: one seed, one run.
                biased;
                _ = keepalive.tick(), if session.conn.path() == MediaPath::Udp => {
                    if heard.elapsed() > silence_limit {
                        // UDP stopped answering (a firewall change, a NAT timeout): move to a
                        // stream now; the re-probe brings media back to UDP when it works again.
                        events.record(format_args!("{} lost its UDP media path; falling back", config.display_name));
                        match media::connect_from(&config, &ca, &session.endpoints, &session.token, &mut rng, MediaPath::Tcp).await {
                            Ok(conn) => {
                                events.record(format_args!("{} moved media from udp to {}", config.display_name, conn.path()));
                                session.conn = conn;
                            }
                            // The MMR itself is unreachable: join again, and the ZC places the
                            // meeting on an MMR that works once it notices this one is gone.
                            Err(e) => break Stop::Ended { reason: format!("the MMR stopped answering: {e}"), rejoin: true },
                        }
                        heard = mc_rt::Instant::now();
                    } else {
                        if let Err(e) = session.conn.send_keepalive(&session.token, rng.bytes()).await {
                            break Stop::Failed(format!("media path failed: {e}"));
                        }
                    }
                }
                _ = reprobe.tick(), if session.conn.path() != MediaPath::Udp && probe.is_none() => {
                    // Probe in the background so media keeps flowing on the stream meanwhile.
                    let (c, ep, token, seed) = (config.clone(), session.endpoints.clone(), session.token.clone(), rng.next_u64());
                    probe = Some(mc_rt::spawn(async move { media::bind_udp(&c, &ep, &token, &mut Rng::seed_from_u64(seed)).await }));
                }
                probed = async { probe.as_mut().expect("guarded").await }, if probe.is_some() => {
                    probe = None;
                    // The MMR moves a participant to the newest endpoint it binds from, so a
                    // successful UDP binding takes the media off the stream at once.
                    if let Ok(Ok(udp)) = probed {
                        events.record(format_args!("{} moved media from {} back to udp", config.display_name, session.conn.path()));
                        session.conn = udp;
                        heard = mc_rt::Instant::now();
                    }
                }
                _ = tick.tick(), if bridge.is_none() && !config.muted => {
                    rng.fill(&mut payload);
                    if let Err(e) = session.conn.send(&sender.next_packet(payload.clone())).await {
                        break Stop::Failed(format!("media path failed: {e}"));
                    }
                    probe_counters.sent.fetch_add(1, Ordering::Relaxed);
                }
                from_tool = async { bridge.as_mut().expect("guarded").recv().await }, if bridge.is_some() => {
                    // RTP from the local tool goes into the meeting unchanged (it is checked, so
                    // a tool's garbage never reaches the MMR).
                    if mc_wire::rtp::RtpHeader::parse(&from_tool).is_ok() {
                        if let Err(e) = session.conn.send(&from_tool).await {
                            break Stop::Failed(format!("media path failed: {e}"));
                        }
                        sender.sent += 1;
                        probe_counters.sent.fetch_add(1, Ordering::Relaxed);
                    }
                }
                got = session.conn.recv() => match got {
                    Ok(packet) if mc_wire::classify_media(&packet) == mc_wire::MediaKind::Binding => {
                        // The MMR answered a keepalive: the path is alive.
                        heard = mc_rt::Instant::now();
                    }
                    Ok(packet) => {
                        heard = mc_rt::Instant::now();
                        stats.on_packet(&packet);
                        probe_counters.received.fetch_add(1, Ordering::Relaxed);
                        if let Some(b) = &bridge {
                            b.send(&packet).await;
                        }
                    }
                    Err(e) => break Stop::Failed(format!("media path failed: {e}")),
                },
                _ = sig_ping.tick() => {
                    if sig_heard.elapsed() > sig_silence_limit {
                        break Stop::Ended { reason: format!("controller {} stopped answering", session.controller.id), rejoin: true };
                    }
                    if let Err(e) = write_frame(&mut session.sig_wr, &ClientToZc::Ping).await {
                        break Stop::Ended { reason: format!("signalling to {} failed: {e}", session.controller.id), rejoin: true };
                    }
                }
                msg = session.sig_rd.next::<ZcToClient>() => {
                    sig_heard = mc_rt::Instant::now();
                    match msg {
                        Ok(Some(ZcToClient::Pong)) => {}
                        Ok(Some(ZcToClient::Ended { reason, rejoin })) => break Stop::Ended { reason, rejoin },
                        Ok(Some(other)) => break Stop::Failed(format!("unexpected message {other:?}")),
                        // The controller went away without a word (its process died): the meeting
                        // goes on at the other controller of the pair, or here once it is back.
                        Ok(None) => break Stop::Ended { reason: format!("controller {} closed the signalling connection", session.controller.id), rejoin: true },
                        Err(e) => break Stop::Ended { reason: format!("signalling to {} failed: {e}", session.controller.id), rejoin: true },
                    }
                }
                _ = &mut until => break Stop::Done,
                _ = &mut stop => break Stop::Done,
            }
        };
        match outcome {
            Stop::Done => {
                let _ = write_frame(&mut session.sig_wr, &ClientToZc::Leave).await;
                break None;
            }
            Stop::Ended {
                reason,
                rejoin: true,
            } if rejoins < MAX_REJOINS => {
                rejoins += 1;
                events.record(format_args!(
                    "{} rejoining {} (attempt {rejoins}): {reason}",
                    config.display_name, session.meeting
                ));
                // Leave the old session first, so its seat is free. Then keep trying — the cloud
                // may be unreachable for a while, or the ZC may not have noticed the dead MMR yet —
                // backing off, until a typed rejection, the rejoin deadline, or the end.
                let _ = write_frame(&mut session.sig_wr, &ClientToZc::Leave).await;
                let deadline = mc_rt::Instant::now() + Duration::from_millis(REJOIN_DEADLINE_MS);
                let mut attempt: u64 = 0;
                let again = loop {
                    attempt += 1;
                    let backoff = Duration::from_millis((500 * (attempt - 1)).min(5_000));
                    let r = mc_rt::select! {
                        // Branches are polled in order, never at random: one seed, one run.
                        biased;
                        _ = &mut until => None,
                        _ = &mut stop => None,
                        s = async { mc_rt::sleep(backoff).await; join_once(&config, &ca, &mut rng, &events).await } => Some(s),
                    };
                    match r {
                        Some(Err(e)) if e.passing() && mc_rt::Instant::now() < deadline => {
                            tracing::info!(participant = %config.display_name, "rejoin attempt {attempt} failed: {e}");
                        }
                        other => break other,
                    }
                };
                match again {
                    Some(Ok(s)) => {
                        session = s;
                        heard = mc_rt::Instant::now();
                        sig_heard = heard;
                        probe_counters.rejoins.fetch_add(1, Ordering::Relaxed);
                    }
                    Some(Err(e)) => {
                        rejoin_refused = Some(
                            e.rejection()
                                .map_or("rejoin_failed", |r| r.as_str())
                                .to_string(),
                        );
                        break Some(format!("{reason}; rejoining failed: {e}"));
                    }
                    None => break Some(reason),
                }
            }
            Stop::Ended { reason, .. } | Stop::Failed(reason) => break Some(reason),
        }
    };
    let report = ClientReport {
        display_name: config.display_name.clone(),
        meeting: session.meeting,
        participant: session.participant,
        controller: session.controller.id,
        signalling_port: session.signalling_port,
        media_path: session.conn.path(),
        join_ms,
        rejoins,
        ssrc: sender.ssrc,
        sent: sender.sent,
        received: stats.received_total(),
        by_source: stats.by_source.clone(),
        malformed: stats.malformed,
        ended_by_zc,
        rejoin_refused,
    };
    events.record(format_args!(
        "{} left {}: sent {} received {} from {} sources{}",
        report.display_name,
        report.meeting,
        report.sent,
        report.received,
        report.by_source.len(),
        report
            .ended_by_zc
            .as_deref()
            .map(|r| format!(" (ended: {r})"))
            .unwrap_or_default()
    ));
    Ok(report)
}
