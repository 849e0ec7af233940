//! The controller's link to cloud status sync: mutual TLS on the dedicated port (8803), falling
//! back to 443; registration, then a heartbeat of load and capacity every interval the cloud
//! names. While on the fallback it re-probes the dedicated port and moves back when it answers.

use super::{ControllerHandle, Ctx};
use crate::framed::{write_frame, FrameReader};
use mc_core::fallback::Ladder;
use mc_rt::net::TcpStream;
use mc_rt::sync::mpsc;
use mc_rt::tls::{self, ClientConfig, ClientTlsStream, Identity};
use mc_wire::ports::alpn;
use mc_wire::status::{CloudToController, ControllerToCloud, SignallingEndpoints};
use mc_wire::{hex, ControllerId};
use std::sync::Arc;
use std::time::Duration;

pub(super) const LINK: &str = "status_sync";

/// How often a controller on the fallback path tries the dedicated port again.
const REPROBE_INTERVAL_MS: u64 = 30_000;
const RETRY_BACKOFF_MS_MAX: u64 = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CloudPath {
    Dedicated,
    Https,
}

impl CloudPath {
    fn port(self, ctx: &Ctx) -> u16 {
        match self {
            CloudPath::Dedicated => ctx.config.cloud_status_sync_port,
            CloudPath::Https => ctx.config.cloud_https_port,
        }
    }
}

enum End {
    Lost(String),
    Better(CloudPath, Box<ClientTlsStream<TcpStream>>),
}

pub(super) async fn run(ctx: Ctx, identity: Identity, handle: ControllerHandle) {
    let tls_config = match tls::client_config(&identity.ca, Some(&identity), alpn::STATUS_SYNC) {
        Ok(c) => c,
        Err(e) => {
            ctx.events
                .record(format_args!("cannot link to the cloud: {e}"));
            return;
        }
    };
    let mut ladder = Ladder::new(
        vec![CloudPath::Dedicated, CloudPath::Https],
        REPROBE_INTERVAL_MS,
    );
    let mut backoff_ms = 500;
    let mut next: Option<(CloudPath, ClientTlsStream<TcpStream>)> = None;
    loop {
        let (path, stream) = match next.take() {
            Some(p) => p,
            None => {
                let Some(path) = ladder.next_to_try().copied() else {
                    ctx.events.record(format_args!(
                        "cloud status sync unreachable on every port; retrying in {backoff_ms} ms"
                    ));
                    mc_rt::sleep(Duration::from_millis(backoff_ms)).await;
                    backoff_ms = (backoff_ms * 2).min(RETRY_BACKOFF_MS_MAX);
                    ladder.reset();
                    continue;
                };
                match connect(&ctx, path, &tls_config).await {
                    Ok(s) => (path, s),
                    Err(e) => {
                        tracing::warn!(?path, "cloud status sync: {e}");
                        ladder.attempt_failed(&path);
                        continue;
                    }
                }
            }
        };
        ladder.established(mc_rt::unix_now_ms(), &path);
        backoff_ms = 500;
        let end = session(&ctx, &handle, path, stream, &mut ladder, &tls_config).await;
        {
            // Claims can be neither asked nor answered without the link.
            let mut st = ctx.zc.lock().unwrap();
            st.cloud_tx = None;
            st.zc.claims_failed("the cloud status link was lost");
            ctx.drain(&mut st);
        }
        match end {
            End::Lost(reason) => {
                ctx.links.down(LINK);
                ctx.events.record(format_args!("cloud link lost: {reason}"));
                ladder.lost();
                mc_rt::sleep(Duration::from_millis(backoff_ms)).await;
            }
            End::Better(path, stream) => {
                ctx.events.record(format_args!(
                    "cloud link moving back to port {}",
                    path.port(&ctx)
                ));
                next = Some((path, *stream));
            }
        }
    }
}

async fn connect(
    ctx: &Ctx,
    path: CloudPath,
    config: &Arc<ClientConfig>,
) -> Result<ClientTlsStream<TcpStream>, String> {
    let port = path.port(ctx);
    let addr = mc_rt::net::resolve(&ctx.config.cloud_host, port)
        .await
        .map_err(|e| format!("resolving {}: {e}", ctx.config.cloud_host))?;
    tls::connect(
        addr,
        &ctx.config.cloud_host,
        config.clone(),
        Duration::from_millis(ctx.config.connect_timeout_ms),
    )
    .await
    .map_err(|e| e.to_string())
}

async fn session(
    ctx: &Ctx,
    handle: &ControllerHandle,
    path: CloudPath,
    stream: ClientTlsStream<TcpStream>,
    ladder: &mut Ladder<CloudPath>,
    tls_config: &Arc<ClientConfig>,
) -> End {
    let (rd, mut wr) = mc_rt::split(stream);
    let mut rd = FrameReader::new(rd);
    let (capacity, meetings) = {
        let st = ctx.zc.lock().unwrap();
        (st.zc.capacity(), st.zc.owned())
    };
    let register = ControllerToCloud::Register {
        controller: ControllerId(ctx.config.id.clone()),
        zone: ctx.config.zone.clone(),
        signalling: SignallingEndpoints {
            host: ctx.config.advertised_host(),
            port: ctx
                .config
                .advertise_signal_port
                .unwrap_or(handle.signal_addr.port()),
            fallback_port: handle.tls_addr.port(),
        },
        capacity,
        meetings,
    };
    if let Err(e) = write_frame(&mut wr, &register).await {
        return End::Lost(e.to_string());
    }
    let answer = mc_rt::timeout(
        Duration::from_millis(ctx.config.handshake_timeout_ms),
        rd.next::<CloudToController>(),
    )
    .await;
    let (cloud_tx, mut cloud_rx) = mpsc::unbounded_channel();
    let heartbeat_interval_ms = match answer {
        Ok(Ok(Some(CloudToController::Registered {
            ticket_key,
            heartbeat_interval_ms,
            lease_ms,
            revoked,
        }))) => match hex::decode("ticket key", &ticket_key) {
            Ok(key) => {
                let mut st = ctx.zc.lock().unwrap();
                st.zc.set_ticket_key(key);
                if let Some(ha) = st.ha.as_mut() {
                    ha.set_lease_ms(lease_ms);
                }
                if !revoked.is_empty() {
                    ctx.events.record(format_args!(
                        "the cloud says {} of this controller's meetings were taken over meanwhile",
                        revoked.len()
                    ));
                    st.zc.revoked(&revoked);
                }
                st.cloud_tx = Some(cloud_tx);
                ctx.drain(&mut st);
                heartbeat_interval_ms.max(100)
            }
            Err(e) => return End::Lost(format!("the cloud sent an unusable ticket key: {e}")),
        },
        Ok(Ok(Some(CloudToController::Rejected { message }))) => {
            return End::Lost(format!("the cloud refused the registration: {message}"))
        }
        Ok(Ok(Some(other))) => {
            return End::Lost(format!(
                "the cloud answered the registration with {other:?}"
            ))
        }
        Ok(Ok(None)) => {
            return End::Lost("the cloud closed the connection during registration".into())
        }
        Ok(Err(e)) => return End::Lost(e.to_string()),
        Err(_) => return End::Lost("the cloud did not answer the registration".into()),
    };
    ctx.links
        .up(LINK, path == CloudPath::Dedicated, path.port(ctx));
    ctx.events.record(format_args!(
        "registered with the cloud on port {} ({:?})",
        path.port(ctx),
        path
    ));
    let mut tick = mc_rt::interval(Duration::from_millis(heartbeat_interval_ms));
    // The cloud acks every heartbeat: this long without a word and the link is dead.
    let silence_limit_ms = 4 * heartbeat_interval_ms;
    let mut heard_ms = mc_rt::unix_now_ms();
    loop {
        mc_rt::select! {
            // Branches are polled in order, never at random: one seed, one run.
            biased;
            _ = tick.tick() => {
                let now_ms = mc_rt::unix_now_ms();
                if now_ms.saturating_sub(heard_ms) > silence_limit_ms {
                    return End::Lost(format!("the cloud acknowledged nothing for {} ms", now_ms - heard_ms));
                }
                let (load, capacity, ready) = {
                    let st = ctx.zc.lock().unwrap();
                    (st.zc.load(), st.zc.capacity(), !st.zc.is_draining())
                };
                let beat = ControllerToCloud::Heartbeat { load, capacity, ready, sent_ms: now_ms };
                if let Err(e) = write_frame(&mut wr, &beat).await {
                    return End::Lost(e.to_string());
                }
                if let Some(better) = ladder.reprobe_due(mc_rt::unix_now_ms()) {
                    if let Ok(stream) = connect(ctx, better, tls_config).await {
                        return End::Better(better, Box::new(stream));
                    }
                }
            }
            req = cloud_rx.recv() => {
                let Some(req) = req else { return End::Lost("the claim queue closed".into()) };
                if let Err(e) = write_frame(&mut wr, &req).await {
                    return End::Lost(e.to_string());
                }
            }
            msg = rd.next::<CloudToController>() => match msg {
                Ok(Some(msg)) => {
                    heard_ms = mc_rt::unix_now_ms();
                    match msg {
                        CloudToController::Rejected { message } => return End::Lost(format!("the cloud ended the link: {message}")),
                        CloudToController::Registered { .. } => {}
                        CloudToController::Ack { echo_ms } => {
                            if let Some(ha) = ctx.zc.lock().unwrap().ha.as_mut() {
                                ha.renew(echo_ms);
                            }
                        }
                        CloudToController::Claimed { meeting, outcome, .. } => {
                            let mut st = ctx.zc.lock().unwrap();
                            let now_ms = mc_rt::unix_now_ms();
                            let outcome = match st.ha.as_ref() {
                                Some(ha) => ha.judge_claim(now_ms, meeting, outcome),
                                None => outcome,
                            };
                            st.zc.claim_answered(now_ms, meeting, outcome);
                            ctx.drain(&mut st);
                        }
                    }
                }
                Ok(None) => return End::Lost("the cloud closed the connection".into()),
                Err(e) => return End::Lost(e.to_string()),
            }
        }
    }
}
