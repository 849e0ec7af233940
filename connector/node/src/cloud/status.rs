//! Status sync, server side: one connection per controller; registration, then heartbeats.

use super::Shared;
use crate::framed::{write_frame, FrameReader, LinkError, Read};
use crate::EventLog;
use mc_rt::net::TcpStream;
use mc_rt::tls::ServerTlsStream;
use mc_wire::hex;
use mc_wire::status::{CloudToController, ControllerToCloud};
use std::net::SocketAddr;
use std::time::Duration;

pub(super) async fn serve(
    stream: ServerTlsStream<TcpStream>,
    peer: SocketAddr,
    port: u16,
    shared: Shared,
    events: EventLog,
) {
    let (rd, mut wr) = mc_rt::split(stream);
    let mut rd = FrameReader::new(rd);
    let (down_after_ms, heartbeat_interval_ms) = {
        let s = shared.lock().unwrap();
        (
            s.config.controller_down_after_ms,
            s.config.heartbeat_interval_ms,
        )
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
    let (registration, ticket_key, lease_ms, revoked) = {
        let mut s = shared.lock().unwrap();
        let r = s.status.register(
            mc_rt::unix_now_ms(),
            controller.clone(),
            zone.clone(),
            signalling.clone(),
            capacity,
        );
        let revoked = s.status.adopt(&controller, &meetings);
        (
            r,
            hex::encode(&s.management.ticket_public_key()),
            s.status.lease_ms(),
            revoked,
        )
    };
    if !revoked.is_empty() {
        events.record(format_args!(
            "controller {controller} re-registered with {} meetings taken over meanwhile",
            revoked.len()
        ));
    }
    events.record(format_args!(
        "controller {controller} registered on port {port}: zone {zone}, signalling {}:{}/{}, capacity {} participants {} meetings",
        signalling.host, signalling.port, signalling.fallback_port, capacity.participants, capacity.meetings
    ));
    if write_frame(
        &mut wr,
        &CloudToController::Registered {
            ticket_key,
            heartbeat_interval_ms,
            lease_ms,
            revoked,
        },
    )
    .await
    .is_err()
    {
        shared
            .lock()
            .unwrap()
            .status
            .disconnected(&controller, registration);
        return;
    }
    let reason = loop {
        match rd.next_within::<ControllerToCloud>(silence).await {
            Read::Message(ControllerToCloud::Heartbeat {
                load,
                capacity,
                ready,
                sent_ms,
            }) => {
                shared.lock().unwrap().status.heartbeat(
                    mc_rt::unix_now_ms(),
                    &controller,
                    load,
                    capacity,
                    ready,
                );
                if sent_ms != 0 {
                    let ack = CloudToController::Ack { echo_ms: sent_ms };
                    if let Err(e) = write_frame(&mut wr, &ack).await {
                        break e.to_string();
                    }
                }
            }
            Read::Message(ControllerToCloud::Claim {
                request,
                meeting,
                alive_peers,
            }) => {
                let outcome = {
                    let mut s = shared.lock().unwrap();
                    let now_ms = mc_rt::unix_now_ms();
                    let outcome = s.status.claim(now_ms, &controller, meeting, &alive_peers);
                    while let Some(t) = s.status.poll_takeover() {
                        events.record(format_args!(
                            "meeting {} taken over by {} from {} (epoch {})",
                            t.meeting, t.to, t.from, t.epoch
                        ));
                    }
                    outcome
                };
                let answer = CloudToController::Claimed {
                    request,
                    meeting,
                    outcome,
                };
                if let Err(e) = write_frame(&mut wr, &answer).await {
                    break e.to_string();
                }
            }
            Read::Message(ControllerToCloud::Release { meeting, epoch }) => {
                shared
                    .lock()
                    .unwrap()
                    .status
                    .release(&controller, meeting, epoch);
            }
            Read::Message(ControllerToCloud::Register { .. }) => {
                break "registered twice on one connection".to_string()
            }
            Read::Closed => break "closed the connection".to_string(),
            Read::Malformed(e) => break LinkError::Malformed(e).to_string(),
            Read::Io(e) => break LinkError::Io(e).to_string(),
            Read::Timeout => break format!("sent no heartbeat for {down_after_ms} ms"),
        }
    };
    let mut s = shared.lock().unwrap();
    let current = s
        .status
        .all()
        .any(|c| c.id == controller && c.registration == registration);
    s.status.disconnected(&controller, registration);
    if current {
        events.record(format_args!("controller {controller} is down: {reason}"));
    } else {
        events.record(format_args!(
            "controller {controller}'s previous status connection closed: {reason}"
        ));
    }
}
