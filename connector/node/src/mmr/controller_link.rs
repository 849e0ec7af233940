//! An MMR VM's link to a controller (mutual TLS, ALPN `mc-link/1`, 8802 falling back to 443):
//! which controller and port to dial is the core's [`Supervisor`], when to report load and when
//! silence ends the link is the core's [`LinkSession`]; this shell dials, reads and writes frames,
//! and carries the controller's grants out on the MMR's forwarding table.

use super::vm::MmrVmHandle;
use crate::config::MmrConfig;
use crate::dial::{dial_tls_as, sleep_until_ms, DialError, Expect};
use crate::events::MmrEvent;
use crate::framed::{write_frame, FrameReader, LinkError};
use crate::EventLog;
use mc_core::fallback::{Backoff, DialFailed, Step, Supervisor};
use mc_core::mmr::link::{LinkAction, LinkLost, LinkSession};
use mc_core::zc::MmrCommand;
use mc_rt::identity::{CertRole, PeerIdentity};
use mc_rt::tls::{self, ClientConfig, ClientTlsStream};
use mc_wire::link::{ControllerToMmr, MmrToController};
use mc_wire::monitor::LinkPath;
use mc_wire::signal::MediaEndpoints;
use mc_wire::MmrId;
use std::sync::Arc;
use thiserror::Error;

/// The link's name in the link table.
pub(super) const LINK: &str = "mmr_link";

/// How often a link on its fallback port tries the dedicated port again.
const REPROBE_INTERVAL_MS: u64 = 30_000;

/// The retry policy once every controller failed on every port.
const RETRY: Backoff = Backoff::doubling(500, 10_000);

type Stream = ClientTlsStream<mc_rt::net::TcpStream>;
type Writer = mc_rt::WriteHalf<Stream>;

/// A controller this MMR VM may link to: the configured one, or the other of an HA pair.
#[derive(Debug, Clone)]
struct Target {
    host: String,
    port: u16,
    fallback_port: u16,
}

impl Target {
    fn port_of(&self, path: LinkPath) -> u16 {
        match path {
            LinkPath::Dedicated => self.port,
            // `Down` is never dialled; it is only what the link table shows between dials.
            LinkPath::Fallback | LinkPath::Down => self.fallback_port,
        }
    }
}

fn targets(config: &MmrConfig) -> Vec<Target> {
    let mut t = vec![Target {
        host: config.controller_host.clone(),
        port: config.controller_port,
        fallback_port: config.controller_fallback_port,
    }];
    if let Some(host) = &config.peer_controller_host {
        t.push(Target {
            host: host.clone(),
            port: config.peer_controller_port,
            fallback_port: config.peer_controller_fallback_port,
        });
    }
    t
}

/// Why a link session ended, for the event log.
#[derive(Debug, Error)]
enum Lost {
    #[error(transparent)]
    Timer(#[from] LinkLost),
    #[error("the controller refused the link: {0}")]
    Refused(String),
    #[error("refused the controller: {0}")]
    NotTheController(mc_rt::identity::IdentityError),
    #[error("expected a welcome, got {0:?}")]
    NotWelcome(Box<ControllerToMmr>),
    #[error("the controller welcomed twice")]
    WelcomedTwice,
    #[error("the controller ended the link: {0}")]
    Ended(String),
    #[error("the controller closed the link")]
    Closed,
    #[error(transparent)]
    Read(#[from] LinkError),
    #[error(transparent)]
    Write(#[from] std::io::Error),
}

/// The dedicated port answered a re-probe: the link moves there.
struct Moving(LinkPath, Box<Stream>);

pub(super) struct ControllerLink {
    pub config: MmrConfig,
    pub handle: MmrVmHandle,
    pub tls: Arc<ClientConfig>,
    /// The controller's certificate is checked: its role on dialling, its name on the welcome.
    pub identity: crate::identity_gate::IdentityGate,
    pub events: EventLog,
    pub links: crate::monitor::LinkTable,
}

impl ControllerLink {
    /// Links for as long as the MMR VM runs. The link stays with the controller that answered
    /// until that link is lost, and moves to the other of a pair when this one is unreachable on
    /// both its ports.
    pub async fn run(self) {
        let targets = targets(&self.config);
        let paths = vec![LinkPath::Dedicated, LinkPath::Fallback];
        let mut sup = Supervisor::new(targets.len(), paths, RETRY, REPROBE_INTERVAL_MS);
        let mut moving: Option<(LinkPath, Stream)> = None;
        loop {
            let (path, stream) = match moving.take() {
                Some(m) => m,
                None => match sup.next_step(mc_rt::unix_now_ms()) {
                    Step::Wait { until_ms } => {
                        sleep_until_ms(Some(until_ms)).await;
                        continue;
                    }
                    Step::Dial { target, path } => match self.dial(&targets[target], path).await {
                        Ok(s) => {
                            sup.established(mc_rt::unix_now_ms(), &path);
                            (path, s)
                        }
                        Err(e) => {
                            tracing::warn!(?path, "MMR link: {e}");
                            let failed = sup.dial_failed(mc_rt::unix_now_ms(), &path);
                            self.log_failed(&targets, failed);
                            continue;
                        }
                    },
                },
            };
            let target = &targets[sup.current_target()];
            let port = target.port_of(path);
            self.links.up(LINK, path, port);
            match self.session(target, &mut sup, stream, port).await {
                Ok(Moving(path, stream)) => {
                    self.events.record(MmrEvent::MovingBack {
                        port: target.port_of(path),
                    });
                    moving = Some((path, *stream));
                }
                Err(lost) => {
                    self.links.down(LINK);
                    // Grants live only as long as a link: the controller re-sends those that
                    // stand when this MMR links again, and otherwise moves its meetings elsewhere.
                    self.handle.mmr.clear();
                    self.events.record(MmrEvent::LinkLost {
                        reason: lost.to_string(),
                    });
                    sup.lost(mc_rt::unix_now_ms());
                }
            }
        }
    }

    fn log_failed(&self, targets: &[Target], failed: DialFailed) {
        match failed {
            DialFailed::NextPath => {}
            DialFailed::NextTarget { failed, next } => {
                self.events.record(MmrEvent::TargetUnreachable {
                    failed: targets[failed].host.clone(),
                    next: targets[next].host.clone(),
                })
            }
            DialFailed::Unreachable { retry_in_ms, .. } => {
                self.events.record(MmrEvent::NoneReachable { retry_in_ms })
            }
        }
    }

    async fn dial(&self, target: &Target, path: LinkPath) -> Result<Stream, DialError> {
        let port = target.port_of(path);
        let timeout_ms = self.config.connect_timeout_ms;
        let controller = Expect {
            role: CertRole::Controller,
            link: crate::identity_gate::link::MMR_LINK,
            gate: self.identity.clone(),
        };
        dial_tls_as(
            &target.host,
            port,
            self.tls.clone(),
            timeout_ms,
            &controller,
        )
        .await
    }

    /// One link session, from the hello until it is lost or moves to a better port.
    async fn session(
        &self,
        target: &Target,
        sup: &mut Supervisor<LinkPath>,
        stream: Stream,
        port: u16,
    ) -> Result<Moving, Lost> {
        let (config, handle) = (&self.config, &self.handle);
        let addr = stream.get_ref().0.peer_addr();
        let addr = addr.unwrap_or_else(|_| ([0, 0, 0, 0], port).into());
        // The dial checked the role; the welcome must name the controller certified.
        let certified = tls::server_identity(&stream);
        let certified = self
            .identity
            .check(crate::identity_gate::link::MMR_LINK, addr, certified)
            .map_err(Lost::NotTheController)?;
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
            cascade_port: Some(handle.cascade_addr.port()),
        };
        write_frame(&mut wr, &hello).await?;
        let mut session = LinkSession::new(mc_rt::unix_now_ms(), config.handshake_timeout_ms);
        loop {
            mc_rt::select! {
                // Branches are polled in order, never at random: one seed, one run.
                biased;
                () = sleep_until_ms(sup.poll_timeout()) => {
                    if let Some((_, better)) = sup.reprobe_due(mc_rt::unix_now_ms()) {
                        if let Ok(stream) = self.dial(target, better).await {
                            sup.established(mc_rt::unix_now_ms(), &better);
                            return Ok(Moving(better, Box::new(stream)));
                        }
                    }
                }
                () = sleep_until_ms(session.poll_timeout()) => {
                    match session.handle_timeout(mc_rt::unix_now_ms()) {
                        Some(LinkAction::SendLoad) => {
                            let m = handle.mmr.media_counters();
                            let load = MmrToController::Load {
                                participants: handle.mmr.participants() as u32,
                                rtp_in: m.rtp_in,
                                rtp_out: m.rtp_out,
                                dropped: m.dropped,
                            };
                            write_frame(&mut wr, &load).await?;
                        }
                        Some(LinkAction::Lost(why)) => return Err(why.into()),
                        None => {}
                    }
                }
                msg = rd.next::<ControllerToMmr>() => {
                    let msg = msg?.ok_or(Lost::Closed)?;
                    self.on_message(&mut session, &mut wr, msg, port, (&certified, addr)).await?;
                }
            }
        }
    }

    /// A message from the controller: the welcome first, then grants, revocations, keepalives.
    async fn on_message(
        &self,
        session: &mut LinkSession,
        wr: &mut Writer,
        msg: ControllerToMmr,
        port: u16,
        (certified, addr): (&PeerIdentity, std::net::SocketAddr),
    ) -> Result<(), Lost> {
        let mmr = &self.handle.mmr;
        session.on_heard(mc_rt::unix_now_ms());
        if !session.welcomed() {
            return match msg {
                ControllerToMmr::Welcome {
                    controller,
                    report_interval_ms,
                } => {
                    let named = certified.expect(CertRole::Controller, &controller.0);
                    let link = crate::identity_gate::link::MMR_LINK;
                    if let Err(e) = self.identity.check(link, addr, named) {
                        return Err(Lost::NotTheController(e));
                    }
                    // A new link is a new epoch: whatever this MMR held before, the controller
                    // may have moved elsewhere while the link was down. It re-sends the grants
                    // that stand.
                    mmr.clear();
                    *self.handle.controller.lock().unwrap() = Some(controller.clone());
                    self.events.record(MmrEvent::Linked { controller, port });
                    session.on_welcome(mc_rt::unix_now_ms(), report_interval_ms);
                    Ok(())
                }
                ControllerToMmr::Refused { message } => Err(Lost::Refused(message)),
                other => Err(Lost::NotWelcome(Box::new(other))),
            };
        }
        match msg {
            ControllerToMmr::Admit {
                token,
                meeting,
                participant,
            } => {
                mmr.apply(MmrCommand::Admit {
                    token: token.clone(),
                    meeting,
                    participant,
                });
                write_frame(wr, &MmrToController::Admitted { token }).await?;
            }
            ControllerToMmr::Revoke { token } => mmr.apply(MmrCommand::Revoke { token }),
            ControllerToMmr::Cascade { meeting, peers } => {
                mmr.apply(MmrCommand::Cascade { meeting, peers })
            }
            ControllerToMmr::Refused { message } => return Err(Lost::Ended(message)),
            ControllerToMmr::Welcome { .. } => return Err(Lost::WelcomedTwice),
            ControllerToMmr::Keepalive => {}
        }
        Ok(())
    }
}
