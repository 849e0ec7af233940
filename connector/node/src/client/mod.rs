//! A participant: asks cloud management for a join ticket, joins through a ZC (8802, falling back
//! to 443), binds to the meeting's MMR (UDP 8801, then TCP 8801, then TLS 443), then sends RTP at
//! a steady rate and counts what it receives from each other participant. The same code is the
//! load generator.
//!
//! What to do and when is decided by the session core ([`mc_core::client::Session`]); this is
//! its shell: one loop that carries out the core's outputs, waits for the next thing to happen
//! (a timer, a background join or media binding, a packet, a signalling message, the caller's
//! stop) and feeds it back.

mod cloud_api;
mod join;
mod media;

use crate::config::ClientConfig;
use crate::events::ClientEvent;
use crate::framed::{write_frame, LinkError};
use crate::EventLog;
use mc_core::client::session::{self, Finish, Input, JoinFailure, Output, Session, Timing};
pub use mc_core::client::MediaPath;
use mc_core::client::{MediaCrypto, MediaStats, OpenFailures, RtpSender};
use mc_core::Rng;
use mc_wire::signal::{ClientToZc, RejectReason, ZcToClient};
use mc_wire::{MeetingId, ParticipantId};
use rustls::pki_types::CertificateDer;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use thiserror::Error;

pub use cloud_api::{fetch_ticket, ControllerAddr, ManagementApi, TicketGrant};

/// Why a participant could not join, by who is at fault ([`ClientError::blame`]): whether to
/// try again follows from that.
#[derive(Debug, Error)]
pub enum ClientError {
    /// Our configuration is invalid.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// Our machine: the local bridge port could not be bound.
    #[error("the RTP bridge port {addr}: {source}")]
    Bridge {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    /// The cloud could not be reached for a join ticket (it may be back shortly).
    #[error("asking the cloud for a join ticket: {0}")]
    Ticket(String),
    /// The cloud refused a join ticket (no such meeting, a bad key): for good.
    #[error("the cloud refused a join ticket: {0}")]
    TicketRefused(String),
    /// No controller could be reached, or one went away before it answered the join.
    #[error("no controller accepted the signalling connection: {0}")]
    Signalling(String),
    /// A controller answered with something the protocol does not allow.
    #[error("the controller broke the protocol: {0}")]
    ZcMisbehaved(String),
    #[error("the join was refused: {reason}: {message}")]
    Rejected {
        reason: RejectReason,
        message: String,
        /// The controller said when to try again.
        retry_after_ms: Option<u64>,
    },
    /// A controller did not take our rejoin pass: it does not know the key of the controller
    /// that issued it (that one restarted since, or the peer link that carries the keys is
    /// down). The zone is in flux; the next attempt asks the cloud for a ticket first.
    #[error("the controller did not take the rejoin pass: {reason}: {message}")]
    PassRefused {
        reason: RejectReason,
        message: String,
    },
    /// The MMR could not be reached on any media path.
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

    /// Who is at fault, as the session core sees it.
    pub fn blame(&self) -> JoinFailure {
        match self {
            ClientError::Config(_) | ClientError::Bridge { .. } => JoinFailure::Ours,
            ClientError::Ticket(_) => JoinFailure::CloudUnreachable,
            ClientError::TicketRefused(_) => JoinFailure::CloudRefused,
            ClientError::Signalling(_)
            | ClientError::Media(_)
            | ClientError::PassRefused { .. } => JoinFailure::ZoneInFlux,
            ClientError::ZcMisbehaved(_) => JoinFailure::ZcMisbehaved,
            ClientError::Rejected { reason, .. } => JoinFailure::rejected(*reason),
        }
    }

    /// Whether a join should try again: the cloud unreachable for a while, or the zone failing
    /// over or draining (a controller or MMR just died or is leaving), which settles in seconds.
    pub fn passing(&self) -> bool {
        self.blame().passing()
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
    /// Packets from the MMR that did not open (forged, replayed, under a key not held).
    pub unopened: OpenFailures,
    /// Why the session ended, if the ZC ended it.
    pub ended_by_zc: Option<String>,
    /// When a rejoin after a failure did not get back in: the rejection's reason code
    /// (`meeting_full`, ...), or `rejoin_failed` when it failed without one. The participant was
    /// admitted once but lost its seat in the failover.
    pub rejoin_refused: Option<String>,
}

pub use mc_core::client::session::{JOIN_DEADLINE_MS, MAX_REJOINS, REJOIN_DEADLINE_MS};

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
    probe: &ClientProbe,
) -> Result<ClientReport, ClientError> {
    config.validate()?;
    let bridge = match config.bridge_listen {
        Some(addr) => Some(
            media::Bridge::bind(addr, config.bridge_send)
                .await
                .map_err(|e| ClientError::Bridge { addr, source: e })?,
        ),
        None => None,
    };
    let generated = bridge.is_none() && !config.muted;
    let timing = Timing {
        packet_interval_ms: generated.then(|| (1000 / config.media_packets_per_s as u64).max(1)),
        duration_ms: config.duration_ms,
        media_keepalive_ms: config.media_keepalive_ms,
        media_keepalive_misses: config.media_keepalive_misses,
        media_reprobe_ms: config.media_reprobe_ms,
        signal_keepalive_ms: config.signal_keepalive_ms,
    };
    let mut rng = Rng::seed_from_u64(config.seed.unwrap_or_else(mc_rt::fresh_seed));
    let sender = RtpSender::new(
        rng.next_u64() as u32,
        rng.next_u64() as u16,
        rng.next_u64() as u32,
    );
    let mut shell = Shell {
        core: Session::new(mc_rt::unix_now_ms(), timing),
        payload: vec![0u8; config.payload_bytes],
        config,
        ca,
        events,
        probe,
        rng,
        bridge,
        live: None,
        last: None,
        joining: None,
        redirect: None,
        fallback: None,
        binding: None,
        binding_path: MediaPath::Udp,
        probing: None,
        last_error: None,
        sender,
        stats: MediaStats::default(),
        crypto: MediaCrypto::default(),
    };
    let mut stop = std::pin::pin!(stop);
    let mut stopped = false;
    let finish = loop {
        if let Some(finish) = shell.carry_out().await {
            break finish;
        }
        let happened = shell.next(&mut stop, stopped).await;
        stopped |= matches!(happened, Happened::Stop);
        shell.feed(happened).await;
    };
    shell.report(finish)
}

/// What the shell waits for; each is fed to the core as it happens.
enum Happened {
    Timeout,
    Joined(Result<Box<join::Session>, join::NotAdmitted>),
    Bound(MediaPath, Result<media::MediaConn, media::BindError>),
    Probed(Result<media::MediaConn, media::BindError>),
    FromTool(Vec<u8>),
    Media(std::io::Result<Vec<u8>>),
    Signal(Result<Option<ZcToClient>, LinkError>),
    /// A background task panicked (a bug): fed to the core as the failure of what it was doing.
    Panicked {
        task: &'static str,
        input: Input,
    },
    Stop,
}

/// The IO around one participant's [`Session`] core.
struct Shell<'p> {
    core: Session,
    config: ClientConfig,
    ca: CertificateDer<'static>,
    events: EventLog,
    probe: &'p ClientProbe,
    rng: Rng,
    bridge: Option<media::Bridge>,
    /// The current session's connections, while in one.
    live: Option<join::Session>,
    /// What the last admission was, for the report.
    last: Option<Admitted>,
    joining: Option<mc_rt::Task<Result<Box<join::Session>, join::NotAdmitted>>>,
    /// Where the last redirect pointed, for the core to follow or not.
    redirect: Option<join::Via>,
    /// The newest rejoin pass and where to present it, should the cloud be unreachable when
    /// this participant must join again.
    fallback: Option<join::Fallback>,
    /// Binding media on one path, as the core asked.
    binding: Option<mc_rt::Task<(MediaPath, Result<media::MediaConn, media::BindError>)>>,
    binding_path: MediaPath,
    probing: Option<mc_rt::Task<Result<media::MediaConn, media::BindError>>>,
    last_error: Option<ClientError>,
    sender: RtpSender,
    stats: MediaStats,
    /// Seals what this participant sends and opens what it receives, at its own edge.
    crypto: MediaCrypto,
    payload: Vec<u8>,
}

/// Where the last admission put the participant.
struct Admitted {
    meeting: MeetingId,
    participant: ParticipantId,
    controller: String,
    signalling_port: u16,
    media_path: MediaPath,
}

impl Shell<'_> {
    /// Carries out what the core asked for; `Some` once the run is over.
    async fn carry_out(&mut self) -> Option<Finish> {
        while let Some(out) = self.core.poll_output() {
            let failed = match out {
                Output::Join | Output::FollowRedirect => {
                    let via = match out {
                        Output::FollowRedirect => self.redirect.take(),
                        _ => None,
                    };
                    let (c, ca, ev) = (self.config.clone(), self.ca.clone(), self.events.clone());
                    let fallback = self.fallback.clone();
                    self.joining = Some(mc_rt::Task::spawn(async move {
                        join::join_once(&c, &ca, &ev, via, fallback)
                            .await
                            .map(Box::new)
                    }));
                    None
                }
                Output::SendMedia => {
                    let Some(conn) = self.live.as_mut().and_then(|l| l.conn.as_mut()) else {
                        continue;
                    };
                    self.rng.fill(&mut self.payload);
                    let packet = self.sender.next_packet(self.payload.clone());
                    let Some(Ok(sealed)) = self.crypto.seal(&packet) else {
                        unreachable!("a live session has a key, and our own packets parse")
                    };
                    let sent = conn.send(&sealed).await;
                    self.probe.sent.fetch_add(1, Ordering::Relaxed);
                    sent.err().map(|e| (Input::MediaBroken, e.to_string()))
                }
                Output::SendKeepalive => {
                    let Some(live) = &mut self.live else { continue };
                    let Some(conn) = live.conn.as_mut() else {
                        continue;
                    };
                    let sent = conn
                        .send_keepalive(&live.token, &live.counter, self.rng.bytes())
                        .await;
                    sent.err().map(|e| (Input::MediaBroken, e.to_string()))
                }
                Output::Ping => {
                    let Some(live) = &mut self.live else { continue };
                    let sent = write_frame(&mut live.sig_wr, &ClientToZc::Ping).await;
                    sent.err().map(|e| (Input::SignalLost, e.to_string()))
                }
                Output::Bind { path } => {
                    let Some(live) = &self.live else { continue };
                    let (c, ca) = (self.config.clone(), self.ca.clone());
                    let (ep, cred) = (live.endpoints.clone(), live.credential());
                    let mut rng = Rng::seed_from_u64(self.rng.next_u64());
                    self.binding_path = path;
                    self.binding = Some(mc_rt::Task::spawn(async move {
                        let bound = media::bind(&c, &ca, &ep, &cred, &mut rng, path).await;
                        (path, bound)
                    }));
                    None
                }
                Output::ProbeUdp => {
                    let Some(live) = &self.live else { continue };
                    // In the background, so media keeps flowing on the stream meanwhile.
                    let c = self.config.clone();
                    let (ep, cred) = (live.endpoints.clone(), live.credential());
                    let mut rng = Rng::seed_from_u64(self.rng.next_u64());
                    self.probing = Some(mc_rt::Task::spawn(async move {
                        media::bind_udp(&c, &ep, &cred, &mut rng).await
                    }));
                    None
                }
                Output::Leave => {
                    self.binding = None;
                    self.probing = None;
                    if let Some(mut live) = self.live.take() {
                        // Best effort: the seat is freed when the connection closes anyway.
                        let _ = write_frame(&mut live.sig_wr, &ClientToZc::Leave).await;
                    }
                    None
                }
                Output::Event(e) => {
                    self.on_event(e);
                    None
                }
                Output::Finished(finish) => return Some(finish),
            };
            if let Some((input, why)) = failed {
                tracing::info!(node = %self.config.display_name, "{why}");
                self.core.handle(mc_rt::unix_now_ms(), input);
            }
        }
        None
    }

    fn on_event(&mut self, e: session::Event) {
        let name = &self.config.display_name;
        match &e {
            session::Event::Joined { rejoin } => {
                if *rejoin {
                    self.probe.rejoins.fetch_add(1, Ordering::Relaxed);
                } else {
                    self.probe.joined.store(true, Ordering::Relaxed);
                }
                let Some(live) = &self.live else { return };
                let media_path = live.conn.as_ref().map_or(MediaPath::Udp, |c| c.path());
                let admitted = Admitted {
                    meeting: live.meeting,
                    participant: live.participant,
                    controller: live.controller.id.clone(),
                    signalling_port: live.signalling_port,
                    media_path,
                };
                self.events.record(ClientEvent::Joined {
                    name: name.clone(),
                    meeting: admitted.meeting,
                    participant: admitted.participant,
                    controller: admitted.controller.clone(),
                    port: admitted.signalling_port,
                    media: media_path,
                });
                self.last = Some(admitted);
                return;
            }
            session::Event::Retrying { .. } => {
                let why = self.last_error.as_ref().map(|e| e.to_string());
                tracing::info!(node = %name, "{e}: {}", why.unwrap_or_default());
                return;
            }
            session::Event::MediaMoved { to, .. } => {
                if let Some(last) = &mut self.last {
                    last.media_path = *to;
                }
            }
            session::Event::Rejoining { .. } | session::Event::UdpLost => {}
        }
        self.events.record(ClientEvent::Session {
            name: name.clone(),
            event: e,
        });
    }

    /// Waits for the next thing that happens.
    async fn next(
        &mut self,
        stop: &mut std::pin::Pin<&mut impl std::future::Future<Output = ()>>,
        stopped: bool,
    ) -> Happened {
        let due_ms = self.core.poll_timeout();
        let in_session = self.live.is_some();
        let (conn, sig) = match &mut self.live {
            // A closed or failed connection is read no more: it would answer at once, forever.
            Some(l) => (l.conn.as_mut(), (!l.sig_closed).then_some(&mut l.sig_rd)),
            None => (None, None),
        };
        mc_rt::select! {
            // Branches are polled in order, never at random: one seed, one run.
            biased;
            () = crate::dial::sleep_until_ms(due_ms), if due_ms.is_some() => Happened::Timeout,
            r = background(&mut self.joining) => r.map_or(panicked("join", Input::JoinFailed(JoinFailure::Ours)), Happened::Joined),
            r = background(&mut self.binding) => r.map_or(panicked("binding", Input::BindFailed { path: self.binding_path }), |(path, bound)| Happened::Bound(path, bound)),
            r = background(&mut self.probing) => r.map_or(panicked("UDP probe", Input::Reprobed { bound: false }), Happened::Probed),
            p = async { conn.expect("guarded").recv().await }, if conn.is_some() => Happened::Media(p),
            m = async { sig.expect("guarded").next::<ZcToClient>().await }, if sig.is_some() => Happened::Signal(m),
            p = async { self.bridge.as_mut().expect("guarded").recv().await }, if self.bridge.is_some() && in_session => Happened::FromTool(p),
            _ = stop.as_mut(), if !stopped => Happened::Stop,
        }
    }

    /// Feeds what happened to the core.
    async fn feed(&mut self, happened: Happened) {
        let now_ms = mc_rt::unix_now_ms();
        let input = match happened {
            Happened::Timeout => {
                self.core.handle_timeout(now_ms);
                return;
            }
            Happened::Joined(Ok(session)) => {
                self.crypto.start(session.media_key.clone());
                if let Some(pass) = &session.rejoin_pass {
                    self.fallback = Some(join::Fallback {
                        pass: pass.clone(),
                        controllers: session.controllers.clone(),
                    });
                }
                self.live = Some(*session);
                Input::Admitted
            }
            Happened::Joined(Err(join::NotAdmitted::Failed(e))) => {
                let blame = e.blame();
                let retry_after_ms = match &e {
                    ClientError::Rejected { retry_after_ms, .. } => *retry_after_ms,
                    _ => None,
                };
                self.last_error = Some(e);
                match retry_after_ms {
                    Some(retry_after_ms) => Input::JoinDeferred {
                        failure: blame,
                        retry_after_ms,
                    },
                    None => Input::JoinFailed(blame),
                }
            }
            Happened::Joined(Err(join::NotAdmitted::Redirected(via))) => {
                // What the run reports if the core stops following redirects here.
                let to = &via.to.id;
                self.last_error = Some(ClientError::Signalling(format!(
                    "redirected to {to} once more than a join follows"
                )));
                self.redirect = Some(via);
                Input::Redirected
            }
            Happened::Bound(path, Ok(conn)) => match &mut self.live {
                Some(live) => {
                    live.conn = Some(conn);
                    Input::Bound { path }
                }
                None => return,
            },
            Happened::Bound(path, Err(e)) => {
                tracing::info!(node = %self.config.display_name, %path, "media path unavailable: {e}");
                self.last_error = Some(ClientError::Media(format!("{path}: {e}")));
                Input::BindFailed { path }
            }
            Happened::Probed(result) => {
                // The MMR moves a participant to the newest endpoint it binds from, so a bound
                // probe takes the media off the stream at once.
                let bound = match (result, &mut self.live) {
                    (Ok(udp), Some(live)) => {
                        live.conn = Some(udp);
                        true
                    }
                    _ => false,
                };
                Input::Reprobed { bound }
            }
            Happened::FromTool(packet) => {
                // RTP from the local tool goes into the meeting unchanged (it is checked, so a
                // tool's garbage never reaches the MMR).
                let Some(conn) = self.live.as_mut().and_then(|l| l.conn.as_mut()) else {
                    return;
                };
                let Some(Ok(sealed)) = self.crypto.seal(&packet) else {
                    return;
                };
                if let Err(e) = conn.send(&sealed).await {
                    tracing::info!(node = %self.config.display_name, "media send: {e}");
                    Input::MediaBroken
                } else {
                    self.sender.sent += 1;
                    self.probe.sent.fetch_add(1, Ordering::Relaxed);
                    return;
                }
            }
            Happened::Media(Ok(packet)) => {
                // A binding answer is a keepalive's; media says the path is alive only if it
                // opens (anyone can send a datagram from the MMR's address).
                if mc_wire::classify_media(&packet) != mc_wire::MediaKind::Binding {
                    let Ok(plain) = self.crypto.open(&packet) else {
                        return;
                    };
                    self.stats.on_packet(mc_rt::unix_now_ms(), &plain);
                    self.probe.received.fetch_add(1, Ordering::Relaxed);
                    if let Some(b) = &self.bridge {
                        b.send(&plain).await;
                    }
                }
                Input::MediaHeard
            }
            Happened::Media(Err(e)) => {
                tracing::info!(node = %self.config.display_name, "media path failed: {e}");
                if let Some(live) = &mut self.live {
                    live.conn = None;
                }
                Input::MediaBroken
            }
            Happened::Signal(Ok(Some(msg))) => {
                match &msg {
                    ZcToClient::Rekey { media_key } => self.crypto.install(media_key.clone()),
                    ZcToClient::RejoinPass { pass } => {
                        if let Some(f) = &mut self.fallback {
                            f.pass = pass.clone();
                        }
                    }
                    _ => {}
                }
                Input::Signal(msg)
            }
            Happened::Signal(closed) => {
                if let Err(e) = closed {
                    tracing::info!(node = %self.config.display_name, "signalling: {e}");
                }
                if let Some(live) = &mut self.live {
                    live.sig_closed = true;
                }
                Input::SignalLost
            }
            Happened::Panicked { task, input } => {
                tracing::error!(node = %self.config.display_name, "the {task} task panicked");
                input
            }
            Happened::Stop => Input::Stop,
        };
        self.core.handle(now_ms, input);
    }

    fn report(self, finish: Finish) -> Result<ClientReport, ClientError> {
        let (ended, rejoin_failed) = match finish {
            Finish::JoinFailed(_) => {
                return Err(self
                    .last_error
                    .expect("a join failed, so its error is kept"))
            }
            Finish::Left {
                ended,
                rejoin_failed,
            } => (ended, rejoin_failed),
        };
        let last = self.last.expect("left, so admitted once");
        let ended_by_zc = ended.map(|why| match (&rejoin_failed, &self.last_error) {
            (Some(_), Some(e)) => format!("{why}; rejoining failed: {e}"),
            _ => why.to_string(),
        });
        let rejoin_refused = rejoin_failed.map(|f| match f {
            JoinFailure::Refused(r) => r.as_str().to_string(),
            _ => "rejoin_failed".to_string(),
        });
        let report = ClientReport {
            display_name: self.config.display_name.clone(),
            meeting: last.meeting,
            participant: last.participant,
            controller: last.controller,
            signalling_port: last.signalling_port,
            media_path: last.media_path,
            join_ms: self.core.joined_after_ms().unwrap_or_default(),
            rejoins: self.core.rejoins(),
            ssrc: self.sender.ssrc,
            sent: self.sender.sent,
            received: self.stats.received_total(),
            by_source: self.stats.by_source.clone(),
            malformed: self.stats.malformed,
            unopened: self.crypto.failures,
            ended_by_zc,
            rejoin_refused,
        };
        self.events.record(ClientEvent::Left {
            name: report.display_name.clone(),
            meeting: report.meeting,
            sent: report.sent,
            received: report.received,
            sources: report.by_source.len(),
            ended: report.ended_by_zc.clone(),
        });
        Ok(report)
    }
}

fn panicked(task: &'static str, input: Input) -> Happened {
    Happened::Panicked { task, input }
}

/// Waits for a background task, if one runs (and forever if not); clears it once done.
async fn background<T>(task: &mut Option<mc_rt::Task<T>>) -> Result<T, ()> {
    let Some(t) = task.as_mut() else {
        return std::future::pending().await;
    };
    let result = t.await.map_err(|_| ());
    *task = None;
    result
}
