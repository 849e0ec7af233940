//! One join attempt, start to finish: a ticket from the cloud, signalling to a ZC, admission (the
//! session core then has the media bound, path by path). A redirect to the other controller of a pair ends the attempt; the session
//! core decides whether to follow it ([`join_once`] again, `via` the named controller).

use super::cloud_api::{fetch_ticket, ControllerAddr};
use super::{media, ClientError};
use crate::config::ClientConfig;
use crate::dial::dial_tls;
use crate::events::ClientEvent;
use crate::framed::{write_frame, FrameReader, LinkError, Read};
use crate::EventLog;
use mc_rt::tls::{self, BoxStream};
use mc_wire::ports::alpn;
use mc_wire::signal::{ClientToZc, RejectReason, ZcToClient};
use mc_wire::srtp::MediaKey;
use mc_wire::{MediaToken, MeetingId, ParticipantId};
use rustls::pki_types::CertificateDer;
use std::time::Duration;

type Signalling = (
    FrameReader<mc_rt::ReadHalf<BoxStream>>,
    mc_rt::WriteHalf<BoxStream>,
);

/// Tries each controller in the cloud's order, each on its dedicated port and then its fallback.
async fn connect_signalling(
    config: &ClientConfig,
    ca: &CertificateDer<'static>,
    controllers: &[ControllerAddr],
) -> Result<(ControllerAddr, u16, Signalling), ClientError> {
    let tls_config = tls::client_config(ca, None, alpn::SIGNAL)
        .map_err(|e| ClientError::Signalling(e.to_string()))?;
    let mut failures = Vec::new();
    for c in controllers {
        for port in [c.port, c.fallback_port] {
            let attempt = dial_tls(&c.host, port, tls_config.clone(), config.connect_timeout_ms);
            match attempt.await {
                Ok(stream) => {
                    let (rd, wr) = mc_rt::split(Box::new(stream) as BoxStream);
                    return Ok((c.clone(), port, (FrameReader::new(rd), wr)));
                }
                Err(e) => failures.push(format!("{} port {port}: {e}", c.id)),
            }
        }
    }
    Err(ClientError::Signalling(if failures.is_empty() {
        "the cloud listed no live controller".into()
    } else {
        failures.join("; ")
    }))
}

pub(super) struct Session {
    pub(super) controller: ControllerAddr,
    pub(super) signalling_port: u16,
    pub(super) sig_rd: FrameReader<mc_rt::ReadHalf<BoxStream>>,
    pub(super) sig_wr: mc_rt::WriteHalf<BoxStream>,
    /// The controller closed the signalling connection (or it broke): nothing more to read.
    pub(super) sig_closed: bool,
    pub(super) meeting: MeetingId,
    pub(super) participant: ParticipantId,
    /// Bound after admission, on the path the session core chose.
    pub(super) conn: Option<media::MediaConn>,
    pub(super) endpoints: mc_wire::signal::MediaEndpoints,
    pub(super) token: MediaToken,
    /// The meeting's media key at admission (later ones come as `rekey`).
    pub(super) media_key: MediaKey,
    /// Numbers this session's binding requests, on every path (the MMR refuses a number twice).
    pub(super) counter: media::BindingCounter,
    /// Admits this participant again without the cloud (from `joined`; fresher ones come as
    /// `rejoin_pass`).
    pub(super) rejoin_pass: Option<String>,
    /// The controllers this join could have used, the one that admitted first: where a pass
    /// is presented if the cloud is unreachable at the next rejoin.
    pub(super) controllers: Vec<ControllerAddr>,
}

impl Session {
    pub(super) fn credential(&self) -> media::Credential {
        media::Credential {
            token: self.token.clone(),
            counter: self.counter.clone(),
        }
    }
}

/// How a join attempt ended short of admission.
pub(super) enum NotAdmitted {
    Failed(ClientError),
    /// The controller named another that hosts the meeting; the ticket was not used.
    Redirected(Via),
}

impl From<ClientError> for NotAdmitted {
    fn from(e: ClientError) -> NotAdmitted {
        NotAdmitted::Failed(e)
    }
}

/// Where a redirect points, with the ticket (or rejoin pass) to present there.
#[derive(Clone)]
pub(super) struct Via {
    pub(super) ticket: String,
    pub(super) pass: bool,
    pub(super) to: ControllerAddr,
}

/// A rejoin pass and the controllers to present it to, for when the cloud cannot be reached.
#[derive(Clone)]
pub(super) struct Fallback {
    pub(super) pass: String,
    pub(super) controllers: Vec<ControllerAddr>,
}

/// Ticket, signalling and admission: one join attempt, start to finish. `via` a
/// redirect, the ticket is the one already issued and only the named controller is tried. With
/// a `fallback` and the cloud unreachable, the rejoin pass is presented instead of a ticket.
pub(super) async fn join_once(
    config: &ClientConfig,
    ca: &CertificateDer<'static>,
    events: &EventLog,
    via: Option<Via>,
    fallback: Option<Fallback>,
) -> Result<Session, NotAdmitted> {
    let (ticket, pass, candidates) = match via {
        Some(Via { ticket, pass, to }) => (ticket, pass, vec![to]),
        None => match (fetch_ticket(config, ca).await, fallback) {
            (Ok(grant), _) => (grant.ticket, false, grant.controllers),
            (Err(ClientError::Ticket(e)), Some(f)) => {
                tracing::info!(node = %config.display_name, "the cloud is unreachable ({e}); rejoining with the rejoin pass");
                (f.pass, true, f.controllers)
            }
            (Err(e), _) => return Err(e.into()),
        },
    };
    let (controller, signalling_port, (sig_rd, sig_wr), admission) =
        signal_join(config, ca, &ticket, pass, candidates.clone(), events).await?;
    let Admission {
        meeting,
        participant,
        endpoints,
        token,
        media_key,
        ..
    } = admission;
    let (controller_addr, controller_id) = (controller.clone(), controller.id.clone());
    Ok(Session {
        controller,
        signalling_port,
        sig_rd,
        sig_wr,
        sig_closed: false,
        meeting,
        participant,
        conn: None,
        endpoints,
        token,
        media_key,
        counter: media::BindingCounter::default(),
        rejoin_pass: admission.rejoin_pass,
        controllers: std::iter::once(controller_addr)
            .chain(candidates.into_iter().filter(|c| c.id != controller_id))
            .collect(),
    })
}

/// What a ZC's `joined` said.
struct Admission {
    meeting: MeetingId,
    participant: ParticipantId,
    endpoints: mc_wire::signal::MediaEndpoints,
    token: MediaToken,
    media_key: MediaKey,
    rejoin_pass: Option<String>,
}

/// Presents the ticket to the first controller in `candidates` that answers, until it admits,
/// refuses or redirects.
async fn signal_join(
    config: &ClientConfig,
    ca: &CertificateDer<'static>,
    ticket: &str,
    pass: bool,
    candidates: Vec<ControllerAddr>,
    events: &EventLog,
) -> Result<(ControllerAddr, u16, Signalling, Admission), NotAdmitted> {
    let (controller, signalling_port, (mut sig_rd, mut sig_wr)) =
        connect_signalling(config, ca, &candidates).await?;
    let join = if pass {
        ClientToZc::Rejoin {
            pass: ticket.to_string(),
        }
    } else {
        ClientToZc::Join {
            ticket: ticket.to_string(),
        }
    };
    write_frame(&mut sig_wr, &join)
        .await
        .map_err(|e| ClientError::Signalling(e.to_string()))?;
    let answer = sig_rd
        .next_within::<ZcToClient>(Duration::from_millis(config.connect_timeout_ms * 4))
        .await;
    let failed = match answer {
        Read::Message(ZcToClient::Joined {
            meeting,
            participant,
            media,
            media_token,
            media_key,
            rejoin_pass,
        }) => {
            let admission = Admission {
                meeting,
                participant,
                endpoints: media,
                token: media_token,
                media_key,
                rejoin_pass,
            };
            return Ok((controller, signalling_port, (sig_rd, sig_wr), admission));
        }
        // The other controller of the pair hosts the meeting: the same ticket works there.
        Read::Message(ZcToClient::Redirect {
            controller: to,
            host,
            port,
            fallback_port,
            message,
        }) => {
            events.record(ClientEvent::Redirected {
                name: config.display_name.clone(),
                by: controller.id.clone(),
                to: to.clone(),
                message,
            });
            let to = ControllerAddr {
                id: to.0,
                host,
                port,
                fallback_port,
            };
            return Err(NotAdmitted::Redirected(Via {
                ticket: ticket.to_string(),
                pass,
                to,
            }));
        }
        Read::Message(ZcToClient::Rejected {
            reason,
            message,
            retry_after_ms,
        }) => {
            events.record(ClientEvent::Refused {
                name: config.display_name.clone(),
                by: controller.id.clone(),
                reason,
                message: message.clone(),
            });
            if pass
                && matches!(
                    reason,
                    RejectReason::TicketInvalid | RejectReason::TicketExpired
                )
            {
                ClientError::PassRefused { reason, message }
            } else {
                ClientError::Rejected {
                    reason,
                    message,
                    retry_after_ms,
                }
            }
        }
        Read::Message(ZcToClient::Ended { reason, .. }) => {
            ClientError::Signalling(format!("the ZC ended the session: {reason}"))
        }
        Read::Message(ZcToClient::Pong) => {
            ClientError::ZcMisbehaved("it answered the join with a pong".into())
        }
        Read::Message(ZcToClient::RejoinPass { .. }) => {
            ClientError::ZcMisbehaved("it sent a rejoin pass before admitting the join".into())
        }
        Read::Message(ZcToClient::Rekey { .. }) => {
            ClientError::ZcMisbehaved("it sent a media key before admitting the join".into())
        }
        Read::Closed => {
            ClientError::Signalling("the ZC closed the connection without answering".into())
        }
        Read::Malformed(e) => ClientError::ZcMisbehaved(LinkError::Malformed(e).to_string()),
        Read::Io(e) => ClientError::Signalling(LinkError::Io(e).to_string()),
        Read::Timeout => ClientError::Signalling("the ZC did not answer the join".into()),
    };
    Err(failed.into())
}
