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
use mc_wire::signal::{ClientToZc, ZcToClient};
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

/// Where a redirect points, with the ticket to present there.
#[derive(Clone)]
pub(super) struct Via {
    pub(super) ticket: String,
    pub(super) to: ControllerAddr,
}

/// Ticket, signalling and admission: one join attempt, start to finish. `via` a
/// redirect, the ticket is the one already issued and only the named controller is tried.
pub(super) async fn join_once(
    config: &ClientConfig,
    ca: &CertificateDer<'static>,
    events: &EventLog,
    via: Option<Via>,
) -> Result<Session, NotAdmitted> {
    let (ticket, candidates) = match via {
        Some(Via { ticket, to }) => (ticket, vec![to]),
        None => {
            let grant = fetch_ticket(config, ca).await?;
            (grant.ticket, grant.controllers)
        }
    };
    let (controller, signalling_port, (sig_rd, sig_wr), admission) =
        signal_join(config, ca, &ticket, candidates, events).await?;
    let Admission {
        meeting,
        participant,
        endpoints,
        token,
        media_key,
    } = admission;
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
    })
}

/// What a ZC's `joined` said.
struct Admission {
    meeting: MeetingId,
    participant: ParticipantId,
    endpoints: mc_wire::signal::MediaEndpoints,
    token: MediaToken,
    media_key: MediaKey,
}

/// Presents the ticket to the first controller in `candidates` that answers, until it admits,
/// refuses or redirects.
async fn signal_join(
    config: &ClientConfig,
    ca: &CertificateDer<'static>,
    ticket: &str,
    candidates: Vec<ControllerAddr>,
    events: &EventLog,
) -> Result<(ControllerAddr, u16, Signalling, Admission), NotAdmitted> {
    let (controller, signalling_port, (mut sig_rd, mut sig_wr)) =
        connect_signalling(config, ca, &candidates).await?;
    let join = ClientToZc::Join {
        ticket: ticket.to_string(),
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
        }) => {
            let admission = Admission {
                meeting,
                participant,
                endpoints: media,
                token: media_token,
                media_key,
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
            ClientError::Rejected {
                reason,
                message,
                retry_after_ms,
            }
        }
        Read::Message(ZcToClient::Ended { reason, .. }) => {
            ClientError::Signalling(format!("the ZC ended the session: {reason}"))
        }
        Read::Message(ZcToClient::Pong) => {
            ClientError::ZcMisbehaved("it answered the join with a pong".into())
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
