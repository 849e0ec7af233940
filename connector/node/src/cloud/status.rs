//! Status sync, server side: one connection per controller; registration, then heartbeats. The
//! decisions (registration, liveness, ownership claims) are the status-sync core's, run by the
//! cloud's driver; this task reads frames, hands them over, and writes the answers.

use super::driver::CloudTx;
use crate::events::CloudEvent;
use crate::framed::{write_frame, FrameReader, LinkError, Read};
use crate::identity_gate::link;
use crate::metrics::CloudMetrics;
use crate::EventLog;
use mc_rt::identity::{CertRole, IdentityError, PeerIdentity};
use mc_rt::net::TcpStream;
use mc_rt::tls::ServerTlsStream;
use mc_wire::hex;
use mc_wire::monitor::RecentKind;
use mc_wire::status::{CloudToController, ControllerToCloud};
use std::net::SocketAddr;
use std::time::Duration;

pub(super) async fn serve(
    stream: ServerTlsStream<TcpStream>,
    peer: SocketAddr,
    identity: Result<PeerIdentity, IdentityError>,
    port: u16,
    cloud: CloudTx,
    events: EventLog,
    metrics: CloudMetrics,
) {
    let (rd, mut wr) = mc_rt::split(stream);
    let mut rd = FrameReader::new(rd);
    let refuse = |e: IdentityError| CloudToController::Rejected {
        message: format!("status sync refused this certificate: {e}"),
    };
    // Only a controller registers; checked before anything is read.
    let gate = &metrics.identity;
    let identity = identity.and_then(|id| id.expect_role(CertRole::Controller));
    let identity = match gate.check(link::STATUS_SYNC, peer, identity) {
        Ok(id) => id,
        Err(e) => {
            let _ = write_frame(&mut wr, &refuse(e)).await;
            return;
        }
    };
    let Ok((down_after_ms, heartbeat_interval_ms)) = cloud
        .call(|s, _| {
            (
                s.config.controller_down_after_ms,
                s.config.heartbeat_interval_ms,
            )
        })
        .await
    else {
        return;
    };
    let silence = Duration::from_millis(down_after_ms);
    let first = rd.next_within::<ControllerToCloud>(silence).await;
    let Read::Message(ControllerToCloud::Register {
        controller,
        zone,
        signalling,
        capacity,
        meetings,
    }) = first
    else {
        let _ = write_frame(
            &mut wr,
            &CloudToController::Rejected {
                message: "the first message must be a registration".into(),
            },
        )
        .await;
        tracing::info!(%peer, "status sync: closed a connection that did not register");
        return;
    };
    // ... as the controller its certificate names, or the cloud would list an impostor's address.
    let named = identity.expect(CertRole::Controller, &controller.0);
    if let Err(e) = gate.check(link::STATUS_SYNC, peer, named) {
        let _ = write_frame(&mut wr, &refuse(e)).await;
        return;
    }
    let registered = {
        let (controller, zone, signalling) = (controller.clone(), zone.clone(), signalling.clone());
        cloud
            .call(move |s, now_ms| {
                let r = s
                    .status
                    .register(now_ms, controller.clone(), zone, signalling, capacity);
                let revoked = s.status.adopt(&controller, &meetings);
                (
                    r,
                    hex::encode(&s.management.ticket_public_key()),
                    s.status.lease_ms(),
                    revoked,
                )
            })
            .await
    };
    let Ok((registration, ticket_key, lease_ms, revoked)) = registered else {
        return;
    };
    if !revoked.is_empty() {
        events.record(CloudEvent::ReRegistered {
            controller: controller.clone(),
            taken_over: revoked.len(),
        });
    }
    events.record(CloudEvent::Registered {
        controller: controller.clone(),
        port,
        zone,
        signalling,
        capacity,
    });
    let welcome = CloudToController::Registered {
        ticket_key,
        heartbeat_interval_ms,
        lease_ms,
        revoked,
    };
    let reason = match write_frame(&mut wr, &welcome).await {
        Err(e) => e.to_string(),
        Ok(()) => {
            session(
                &mut rd,
                &mut wr,
                &controller,
                &cloud,
                &events,
                down_after_ms,
            )
            .await
        }
    };
    let (id, why) = (controller.clone(), reason.clone());
    let current = cloud
        .call(move |s, _| {
            let current = s
                .status
                .all()
                .any(|c| c.id == id && c.registration == registration);
            s.status.disconnected(&id, registration);
            if current {
                let down = CloudEvent::ControllerDown {
                    controller: id,
                    reason: why,
                };
                s.recent.push(RecentKind::ControllerDown, down.to_string());
            }
            current
        })
        .await;
    match current {
        Ok(true) => events.record(CloudEvent::ControllerDown { controller, reason }),
        Ok(false) => events.record(CloudEvent::PreviousConnectionClosed { controller, reason }),
        Err(_) => {}
    }
}

/// Heartbeats, claims and releases until the connection ends; returns why it ended.
async fn session(
    rd: &mut FrameReader<mc_rt::ReadHalf<ServerTlsStream<TcpStream>>>,
    wr: &mut mc_rt::WriteHalf<ServerTlsStream<TcpStream>>,
    controller: &mc_wire::ControllerId,
    cloud: &CloudTx,
    events: &EventLog,
    down_after_ms: u64,
) -> String {
    let silence = Duration::from_millis(down_after_ms);
    loop {
        let answer = match rd.next_within::<ControllerToCloud>(silence).await {
            Read::Message(ControllerToCloud::Heartbeat {
                load,
                capacity,
                ready,
                sent_ms,
            }) => {
                let id = controller.clone();
                let heard = cloud
                    .call(move |s, now_ms| s.status.heartbeat(now_ms, &id, load, capacity, ready))
                    .await;
                if let Err(stopped) = heard {
                    return stopped.to_string();
                }
                (sent_ms != 0).then_some(CloudToController::Ack { echo_ms: sent_ms })
            }
            Read::Message(ControllerToCloud::Claim {
                request,
                meeting,
                alive_peers,
            }) => {
                let id = controller.clone();
                let judged = cloud
                    .call(move |s, now_ms| {
                        let outcome = s.status.claim(now_ms, &id, meeting, &alive_peers);
                        let takeovers: Vec<_> =
                            std::iter::from_fn(|| s.status.poll_takeover()).collect();
                        s.metrics.takeovers.inc_by(takeovers.len() as u64);
                        for t in &takeovers {
                            let text = CloudEvent::TakenOver(t.clone()).to_string();
                            s.recent.push(RecentKind::Takeover, text);
                        }
                        (outcome, takeovers)
                    })
                    .await;
                let (outcome, takeovers) = match judged {
                    Ok(j) => j,
                    Err(stopped) => return stopped.to_string(),
                };
                for t in takeovers {
                    events.record(CloudEvent::TakenOver(t));
                }
                Some(CloudToController::Claimed {
                    request,
                    meeting,
                    outcome,
                })
            }
            Read::Message(ControllerToCloud::Release { meeting, epoch }) => {
                let id = controller.clone();
                let released = cloud
                    .call(move |s, _| s.status.release(&id, meeting, epoch))
                    .await;
                if let Err(stopped) = released {
                    return stopped.to_string();
                }
                None
            }
            Read::Message(ControllerToCloud::Register { .. }) => {
                return "registered twice on one connection".to_string()
            }
            Read::Closed => return "closed the connection".to_string(),
            Read::Malformed(e) => return LinkError::Malformed(e).to_string(),
            Read::Io(e) => return LinkError::Io(e).to_string(),
            Read::Timeout => return format!("sent no heartbeat for {down_after_ms} ms"),
        };
        if let Some(answer) = answer {
            if let Err(e) = write_frame(wr, &answer).await {
                return e.to_string();
            }
        }
    }
}
