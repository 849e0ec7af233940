//! The controller's notification link: mutual TLS to the cloud's notification service (8804,
//! falling back to 443). It resumes after the last event it handled and hands each event to the
//! core, which carries it out (an ended meeting, a removed participant, an operator's drain).

use super::driver::Cmd;
use super::outbound::{self, Dial, Linked};
use super::Ctx;
use crate::events::LinkEvent;
use crate::framed::{write_frame, FrameReader};
use mc_core::controller::{Closed, Input};
use mc_rt::tls::{self, Identity};
use mc_wire::notify::{ControllerToNotify, NotifyToController};
use mc_wire::ports::alpn;
use mc_wire::ControllerId;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

const LINK: &str = "notification";

pub(super) async fn run(ctx: Ctx, identity: Identity) {
    let tls = match tls::client_config(&identity.ca, Some(&identity), alpn::NOTIFICATION) {
        Ok(c) => c,
        Err(e) => {
            ctx.events.record(LinkEvent::CannotLink {
                to: "cloud notification",
                error: e.to_string(),
            });
            return;
        }
    };
    let dial = Dial {
        link: LINK,
        host: ctx.config.cloud_host.clone(),
        ports: [
            ctx.config.cloud_notification_port,
            ctx.config.cloud_https_port,
        ],
        tls,
        backoff: outbound::CLOUD_BACKOFF,
        expect: crate::dial::Expect {
            role: mc_rt::identity::CertRole::Cloud,
            link: crate::identity_gate::link::NOTIFICATION,
            gate: ctx.identity.clone(),
        },
    };
    // The last event handled, across reconnections.
    let last_seq = Arc::new(AtomicU64::new(0));
    let link_ctx = ctx.clone();
    let run_link = move |l: Linked| {
        let (ctx, last_seq) = (link_ctx.clone(), last_seq.clone());
        async move {
            let port = l.port;
            let reason = subscribe(&ctx, l, &last_seq).await;
            ctx.events
                .record(LinkEvent::NotificationsClosed { port, reason });
        }
    };
    outbound::supervise(ctx, dial, run_link, |_, backoff_ms, _| {
        tracing::warn!("cloud notification unreachable on every port; retrying in {backoff_ms} ms")
    })
    .await
}

/// Subscribes and hands events to the core until the link ends; returns why it ended.
async fn subscribe(ctx: &Ctx, l: Linked, last_seq: &AtomicU64) -> String {
    let (rd, mut wr) = mc_rt::split(l.stream);
    let mut rd = FrameReader::new(rd);
    let mut leave = l.leave;
    let hello = ControllerToNotify::Hello {
        controller: ControllerId(ctx.config.id.clone()),
        after_seq: last_seq.load(Ordering::Relaxed),
    };
    if let Err(e) = write_frame(&mut wr, &hello).await {
        return e.to_string();
    }
    loop {
        mc_rt::select! {
            // Branches are polled in order, never at random: one seed, one run.
            biased;
            msg = rd.next::<NotifyToController>() => match msg {
                Ok(Some(NotifyToController::Welcome { latest_seq, .. })) if latest_seq < last_seq.load(Ordering::Relaxed) => {
                    // The cloud's log is younger than what we have seen: it restarted and numbers
                    // from 1 again. Start over from its beginning (events are idempotent to apply
                    // twice).
                    last_seq.store(0, Ordering::Relaxed);
                    return "the cloud's event log restarted; subscribing again from its start".to_string();
                }
                Ok(Some(NotifyToController::Welcome { oldest_seq, latest_seq })) => {
                    ctx.links.up(LINK, l.path, l.port);
                    ctx.events.record(LinkEvent::NotificationsSubscribed {
                        port: l.port,
                        oldest: oldest_seq,
                        latest: latest_seq,
                    });
                    let seen = last_seq.load(Ordering::Relaxed);
                    if seen > 0 && seen + 1 < oldest_seq {
                        tracing::warn!(seen, oldest_seq, "notification events were missed while disconnected");
                    }
                }
                Ok(Some(NotifyToController::Event { seq, event, .. })) => {
                    if seq > last_seq.load(Ordering::Relaxed) {
                        last_seq.store(seq, Ordering::Relaxed);
                        if !ctx.core.send(Cmd::Input(Input::Notification(event))).await {
                            return "the controller stopped".to_string();
                        }
                    }
                }
                Ok(None) => return "the cloud closed the connection".to_string(),
                Err(e) => return e.to_string(),
            },
            why = &mut leave => match why {
                Ok(Closed::Moving { port }) => return format!("moving back to port {port}"),
                _ => return "the link was left".to_string(),
            },
        }
    }
}
