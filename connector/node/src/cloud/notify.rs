//! Notification, server side: one long-lived connection per controller. After the hello the cloud
//! replays the events the controller missed, then pushes each new one as it is logged.

use super::driver::CloudTx;
use crate::events::CloudEvent;
use crate::framed::{write_frame, FrameReader, Read};
use crate::identity_gate::link;
use crate::metrics::CloudMetrics;
use crate::EventLog;
use mc_rt::identity::{CertRole, IdentityError, PeerIdentity};
use mc_rt::net::TcpStream;
use mc_rt::sync::broadcast;
use mc_rt::tls::ServerTlsStream;
use mc_wire::notify::{ControllerToNotify, NotifyToController};
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
    // Meeting events are for controllers only (the protocol has no refusal message: the
    // connection is closed).
    let gate = &metrics.identity;
    let identity = identity.and_then(|id| id.expect_role(CertRole::Controller));
    let Ok(identity) = gate.check(link::NOTIFICATION, peer, identity) else {
        return;
    };
    let (rd, mut wr) = mc_rt::split(stream);
    let mut rd = FrameReader::new(rd);
    let hello = rd
        .next_within::<ControllerToNotify>(Duration::from_secs(10))
        .await;
    let Read::Message(ControllerToNotify::Hello {
        controller,
        after_seq,
    }) = hello
    else {
        tracing::info!(%peer, "notification: closed a connection that did not say hello");
        return;
    };
    let named = identity.expect(CertRole::Controller, &controller.0);
    if gate.check(link::NOTIFICATION, peer, named).is_err() {
        return;
    }
    let subscribed = cloud
        .call(|s, _| {
            (
                s.notify_tx.subscribe(),
                NotifyToController::Welcome {
                    oldest_seq: s.notifications.oldest_seq(),
                    latest_seq: s.notifications.latest_seq(),
                },
            )
        })
        .await;
    let Ok((mut changed, welcome)) = subscribed else {
        return;
    };
    events.record(CloudEvent::Subscribed {
        controller: controller.clone(),
        port,
        after_seq,
    });
    if write_frame(&mut wr, &welcome).await.is_err() {
        return;
    }
    let mut sent = after_seq;
    let progress = metrics.subscriber(sent);
    let reason = loop {
        let pending = cloud
            .call(move |s, _| {
                s.notifications
                    .since(sent)
                    .map(|(seq, at_ms, event)| NotifyToController::Event {
                        seq: *seq,
                        at_ms: *at_ms,
                        event: event.clone(),
                    })
                    .collect::<Vec<_>>()
            })
            .await;
        let pending = match pending {
            Ok(p) => p,
            Err(stopped) => break stopped.to_string(),
        };
        let mut failed = None;
        for msg in pending {
            if let NotifyToController::Event { seq, .. } = &msg {
                sent = *seq;
            }
            if let Err(e) = write_frame(&mut wr, &msg).await {
                failed = Some(e.to_string());
                break;
            }
            progress.sent(sent);
        }
        if let Some(e) = failed {
            break e;
        }
        mc_rt::select! {
            // Branches are polled in order, never at random: one seed, one run.
            biased;
            // A lagging receiver has missed only wake-ups: the events are read from the log.
            r = changed.recv() => if let Err(broadcast::error::RecvError::Closed) = r { break "the cloud is stopping".to_string() },
            // Controllers send nothing after the hello; reading tells us when they go away.
            msg = rd.next::<ControllerToNotify>() => break match msg {
                Ok(None) => "closed the connection".to_string(),
                Ok(Some(_)) => "sent a second hello".to_string(),
                Err(e) => e.to_string(),
            },
        }
    };
    events.record(CloudEvent::Unsubscribed { controller, reason });
}
