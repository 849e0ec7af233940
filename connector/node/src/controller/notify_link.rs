//! The controller's notification link: mutual TLS to the cloud's notification service (8804,
//! falling back to 443). It resumes after the last event it handled, and carries each event out:
//! an ended meeting's participants are disconnected with the reason; a removed participant is
//! disconnected.

use super::Ctx;
use crate::framed::{write_frame, FrameReader};
use mc_core::fallback::Ladder;
use mc_rt::tls::{self, Identity};
use mc_wire::notify::{ControllerToNotify, MeetingEvent, NotifyToController};
use mc_wire::ports::alpn;
use mc_wire::ControllerId;
use std::time::Duration;

const LINK: &str = "notification";
const RETRY_BACKOFF_MS_MAX: u64 = 10_000;

/// How often a link on its fallback port tries the dedicated port again.
const REPROBE_INTERVAL_MS: u64 = 30_000;

type Stream = tls::ClientTlsStream<mc_rt::net::TcpStream>;

pub(super) async fn run(ctx: Ctx, identity: Identity) {
    let tls_config = match tls::client_config(&identity.ca, Some(&identity), alpn::NOTIFICATION) {
        Ok(c) => c,
        Err(e) => {
            ctx.events
                .record(format_args!("cannot link to cloud notification: {e}"));
            return;
        }
    };
    let ports = [
        ctx.config.cloud_notification_port,
        ctx.config.cloud_https_port,
    ];
    let connect = |which: usize| {
        let (ctx, tls_config) = (ctx.clone(), tls_config.clone());
        async move {
            let addr = mc_rt::net::resolve(&ctx.config.cloud_host, ports[which])
                .await
                .map_err(|e| e.to_string())?;
            tls::connect(
                addr,
                &ctx.config.cloud_host,
                tls_config,
                Duration::from_millis(ctx.config.connect_timeout_ms),
            )
            .await
            .map_err(|e| e.to_string())
        }
    };
    let mut ladder = Ladder::new(vec![0usize, 1], REPROBE_INTERVAL_MS);
    let mut backoff_ms = 500;
    let mut last_seq = 0;
    let mut next: Option<(usize, Stream)> = None;
    loop {
        let (which, stream) = match next.take() {
            Some(n) => n,
            None => {
                let Some(&which) = ladder.next_to_try() else {
                    ctx.links.down(LINK);
                    mc_rt::sleep(Duration::from_millis(backoff_ms)).await;
                    backoff_ms = (backoff_ms * 2).min(RETRY_BACKOFF_MS_MAX);
                    ladder.reset();
                    continue;
                };
                match connect(which).await {
                    Ok(s) => (which, s),
                    Err(e) => {
                        tracing::warn!(port = ports[which], "cloud notification: {e}");
                        ladder.attempt_failed(&which);
                        continue;
                    }
                }
            }
        };
        ladder.established(mc_rt::unix_now_ms(), &which);
        backoff_ms = 500;
        let port = ports[which];
        let (rd, mut wr) = mc_rt::split(stream);
        let mut rd = FrameReader::new(rd);
        let hello = ControllerToNotify::Hello {
            controller: ControllerId(ctx.config.id.clone()),
            after_seq: last_seq,
        };
        let mut reprobe = mc_rt::interval(Duration::from_millis(REPROBE_INTERVAL_MS));
        reprobe.tick().await;
        let reason = match write_frame(&mut wr, &hello).await {
            Err(e) => e.to_string(),
            Ok(()) => loop {
                mc_rt::select! {
                    // Branches are polled in order, never at random: one seed, one run.
                    biased;
                    msg = rd.next::<NotifyToController>() => match msg {
                        Ok(Some(NotifyToController::Welcome { latest_seq, .. })) if latest_seq < last_seq => {
                            // The cloud's log is younger than what we have seen: it restarted and
                            // numbers from 1 again. Start over from its beginning (events are
                            // idempotent to apply twice).
                            last_seq = 0;
                            break "the cloud's event log restarted; subscribing again from its start".to_string();
                        }
                        Ok(Some(NotifyToController::Welcome { oldest_seq, latest_seq })) => {
                            ctx.links.up(LINK, which == 0, port);
                            ctx.events.record(format_args!("subscribed to cloud notifications on port {port} (events {oldest_seq}..={latest_seq})"));
                            if last_seq > 0 && last_seq + 1 < oldest_seq {
                                tracing::warn!(last_seq, oldest_seq, "notification events were missed while disconnected");
                            }
                        }
                        Ok(Some(NotifyToController::Event { seq, event, .. })) => {
                            if seq > last_seq {
                                last_seq = seq;
                                apply(&ctx, event);
                            }
                        }
                        Ok(None) => break "the cloud closed the connection".to_string(),
                        Err(e) => break e.to_string(),
                    },
                    _ = reprobe.tick() => {
                        if let Some(better) = ladder.reprobe_due(mc_rt::unix_now_ms()) {
                            if let Ok(s) = connect(better).await {
                                next = Some((better, s));
                                break format!("moving back to port {}", ports[better]);
                            }
                        }
                    }
                }
            },
        };
        if next.is_none() {
            ctx.links.down(LINK);
            ladder.lost();
        }
        ctx.events.record(format_args!(
            "cloud notification link on port {port} closed: {reason}"
        ));
        if next.is_none() {
            mc_rt::sleep(Duration::from_millis(backoff_ms)).await;
        }
    }
}

fn apply(ctx: &Ctx, event: MeetingEvent) {
    let mut st = ctx.zc.lock().unwrap();
    match event {
        MeetingEvent::Ended { meeting, reason } => {
            let n = st.zc.end_meeting(meeting, &reason);
            ctx.drain(&mut st);
            ctx.events.record(format_args!(
                "meeting {meeting} ended by the cloud ({reason}): {n} participants disconnected"
            ));
        }
        MeetingEvent::ParticipantRemoved {
            meeting,
            participant,
            reason,
        } => {
            if st.zc.remove_participant(participant, &reason) {
                ctx.drain(&mut st);
                ctx.events.record(format_args!(
                    "{participant} removed from {meeting} by the cloud"
                ));
            }
        }
        MeetingEvent::Drain {
            target,
            on,
            deadline_ms,
        } => {
            drop(st);
            super::drain::apply(ctx, target, on, deadline_ms);
        }
        MeetingEvent::Scheduled { .. } | MeetingEvent::Started { .. } => {}
    }
}
