//! The peer link of an HA pair (mutual TLS, ALPN `mc-peer/1`, on the peer's 8802 falling back to
//! 443), and the lease watch.
//!
//! Each controller dials the other and pings it every `peer_interval_ms` with what it hosts; the
//! other answers each ping with a pong. A pong renews the pinger's lease; a ping tells the
//! receiver its peer is alive and what it would take over (see `mc_core::zc::ha`). The lease
//! watch fences this controller the moment its lease runs out, and reports the peer down once.

use super::{Ctx, ZcState};
use crate::framed::{write_frame, FrameReader};
use mc_core::zc::ha::FENCE_CHECK_MS;
use mc_rt::tls::{self, Identity};
use mc_rt::{AsyncRead, AsyncWrite};
use mc_wire::peer::PeerMsg;
use mc_wire::ports::alpn;
use mc_wire::ControllerId;
use std::net::SocketAddr;
use std::time::Duration;

pub(super) const LINK: &str = "peer";

/// How often a peer link on the fallback port tries the dedicated port again.
const REPROBE_INTERVAL_MS: u64 = 30_000;

type Stream = tls::ClientTlsStream<mc_rt::net::TcpStream>;

/// How one peer link ended.
enum End {
    Lost(String),
    /// The dedicated port answered while the link ran on the fallback: move there.
    Better(Box<Stream>),
}

/// Dials the peer for as long as the controller runs: the dedicated port first, then the
/// fallback, re-probing the dedicated port while on the fallback.
pub(super) async fn run(ctx: Ctx, identity: Identity) {
    let Some(host) = ctx.config.peer_host.clone() else {
        return;
    };
    let tls_config = match tls::client_config(&identity.ca, Some(&identity), alpn::PEER) {
        Ok(c) => c,
        Err(e) => {
            ctx.events
                .record(format_args!("cannot link to the peer controller: {e}"));
            return;
        }
    };
    let dial = |port: u16| {
        let (host, config) = (host.clone(), tls_config.clone());
        let timeout = Duration::from_millis(ctx.config.connect_timeout_ms);
        async move {
            let addr = mc_rt::net::resolve(&host, port).await.ok()?;
            tls::connect(addr, &host, config, timeout).await.ok()
        }
    };
    let (dedicated, fallback) = (ctx.config.peer_port, ctx.config.peer_fallback_port);
    let mut failures_logged = false;
    let mut next: Option<(u16, Stream)> = None;
    loop {
        let linked = match next.take() {
            Some(n) => Some(n),
            None => match dial(dedicated).await {
                Some(s) => Some((dedicated, s)),
                None => dial(fallback).await.map(|s| (fallback, s)),
            },
        };
        match linked {
            Some((port, stream)) => {
                failures_logged = false;
                ctx.links.up(LINK, port == dedicated, port);
                ctx.events
                    .record(format_args!("peer link to {host} up on port {port}"));
                let reprobe = (port != dedicated).then_some(|| dial(dedicated));
                match ping_loop(&ctx, stream, reprobe).await {
                    End::Better(stream) => {
                        ctx.events.record(format_args!(
                            "peer link to {host} moving back to port {dedicated}"
                        ));
                        next = Some((dedicated, *stream));
                        continue;
                    }
                    End::Lost(reason) => {
                        ctx.links.down(LINK);
                        ctx.events
                            .record(format_args!("peer link to {host} lost: {reason}"));
                    }
                }
            }
            None if !failures_logged => {
                failures_logged = true;
                ctx.events.record(format_args!(
                    "peer {host} unreachable on ports {dedicated} and {fallback}; retrying"
                ));
            }
            None => {}
        }
        mc_rt::sleep(Duration::from_millis(ctx.config.peer_interval_ms)).await;
    }
}

/// Pings until the link fails; `reprobe`, when on the fallback, is tried every
/// [`REPROBE_INTERVAL_MS`] and ends the loop when the dedicated port answers.
async fn ping_loop<S, F>(ctx: &Ctx, stream: S, reprobe: Option<impl Fn() -> F>) -> End
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    F: std::future::Future<Output = Option<Stream>>,
{
    let (rd, mut wr) = mc_rt::split(stream);
    let mut rd = FrameReader::new(rd);
    let me = ControllerId(ctx.config.id.clone());
    let mut tick = mc_rt::interval(Duration::from_millis(ctx.config.peer_interval_ms));
    let mut reprobe_tick = mc_rt::interval(Duration::from_millis(REPROBE_INTERVAL_MS));
    reprobe_tick.tick().await;
    let silence = Duration::from_millis(ctx.config.peer_down_after_ms);
    let mut last_pong = mc_rt::Instant::now();
    loop {
        mc_rt::select! {
            // Branches are polled in order, never at random: one seed, one run.
            biased;
            _ = tick.tick() => {
                if last_pong.elapsed() > silence {
                    return End::Lost(format!("no pong for {} ms", silence.as_millis()));
                }
                let ping = {
                    let st = ctx.zc.lock().unwrap();
                    PeerMsg::Ping {
                        controller: me.clone(),
                        sent_ms: mc_rt::unix_now_ms(),
                        meetings: st.zc.hosted(),
                        load: st.zc.load(),
                        capacity: st.zc.capacity(),
                    }
                };
                if let Err(e) = write_frame(&mut wr, &ping).await {
                    return End::Lost(e.to_string());
                }
            }
            _ = reprobe_tick.tick(), if reprobe.is_some() => {
                if let Some(better) = (reprobe.as_ref().expect("guarded"))().await {
                    return End::Better(Box::new(better));
                }
            }
            msg = rd.next::<PeerMsg>() => match msg {
                Ok(Some(PeerMsg::Pong { controller, echo_ms })) => {
                    last_pong = mc_rt::Instant::now();
                    let mut st = ctx.zc.lock().unwrap();
                    if let Some(ha) = st.ha.as_mut() {
                        ha.renew(echo_ms);
                        ha.heard_peer(mc_rt::unix_now_ms(), controller);
                    }
                }
                Ok(Some(PeerMsg::Ping { .. })) => return End::Lost("the peer pinged on our own link".into()),
                Ok(None) => return End::Lost("the peer closed the link".into()),
                Err(e) => return End::Lost(e.to_string()),
            }
        }
    }
}

/// The peer's link to us: answer every ping with a pong, and remember what it hosts.
pub(super) async fn serve<S>(stream: S, remote: SocketAddr, ctx: Ctx)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (rd, mut wr) = mc_rt::split(stream);
    let mut rd = FrameReader::new(rd);
    let me = ControllerId(ctx.config.id.clone());
    let silence = Duration::from_millis(ctx.config.peer_down_after_ms);
    loop {
        let msg = match mc_rt::timeout(silence, rd.next::<PeerMsg>()).await {
            Ok(Ok(Some(msg))) => msg,
            Ok(Ok(None)) => return,
            Ok(Err(e)) => {
                tracing::info!(%remote, "closing a peer link: {e}");
                return;
            }
            Err(_) => {
                tracing::info!(%remote, "closing a silent peer link");
                return;
            }
        };
        let PeerMsg::Ping {
            controller,
            sent_ms,
            meetings,
            load,
            capacity,
        } = msg
        else {
            tracing::info!(%remote, "closing a peer link that sent a pong unasked");
            return;
        };
        {
            let mut st = ctx.zc.lock().unwrap();
            let Some(ha) = st.ha.as_mut() else {
                ctx.events.record(format_args!(
                    "refused a peer link from {controller}: this controller has no peer configured"
                ));
                return;
            };
            if controller == me {
                tracing::warn!(%remote, "refused a peer link from a controller with this one's id");
                return;
            }
            let view = ha.heard_peer(mc_rt::unix_now_ms(), controller);
            view.meetings = meetings;
            view.load = load;
            view.capacity = capacity;
        }
        let pong = PeerMsg::Pong {
            controller: me.clone(),
            echo_ms: sent_ms,
        };
        if write_frame(&mut wr, &pong).await.is_err() {
            return;
        }
    }
}

/// Fences this controller as soon as its lease runs out, and reports the peer down once per
/// outage, with what it hosted.
pub(super) async fn watch_lease(ctx: Ctx) {
    let mut tick = mc_rt::interval(Duration::from_millis(FENCE_CHECK_MS));
    loop {
        tick.tick().await;
        let now_ms = mc_rt::unix_now_ms();
        let mut st = ctx.zc.lock().unwrap();
        let st = &mut *st;
        let Some(ha) = st.ha.as_mut() else { return };
        if let Some(p) = ha.peer_newly_down(now_ms) {
            let participants: u32 = p.meetings.iter().map(|m| m.participants).sum();
            ctx.events.record(format_args!(
                "peer {} is down (silent {} ms): its {} meetings with {} participants move here once its lease has run out and the cloud agrees",
                p.id,
                now_ms - p.last_heard_ms,
                p.meetings.len(),
                participants
            ));
        }
        fence_if_expired(&ctx, st, now_ms);
    }
}

/// Fences when the lease has run out and anything is still hosted. Also called before every
/// join: a controller that was frozen (a paused VM) must not admit on a lease that ran out while
/// it slept, even before the watch's next tick.
pub(super) fn fence_if_expired(ctx: &Ctx, st: &mut ZcState, now_ms: u64) {
    let Some(ha) = st.ha.as_ref() else { return };
    let hosting = st.zc.load().meetings > 0 || st.zc.owns_any();
    if hosting && ha.lease_ms() > 0 && ha.lease_expired(now_ms) {
        let lease_ms = ha.lease_ms();
        let n = st.zc.fence(&format!(
            "neither the cloud nor the peer acknowledged it for {lease_ms} ms"
        ));
        ctx.events.record(format_args!(
            "fenced: lease of {lease_ms} ms ran out with neither the cloud nor the peer reachable; stopped hosting {n} meetings"
        ));
        ctx.drain(st);
    }
}
