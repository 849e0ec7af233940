//! The controller's side of MMR VM links (mutual TLS, ALPN `mc-link/1`, on 8802 or 443): an MMR VM
//! says hello with its capacity and media addresses and joins the zone; grants flow to it; a link
//! that closes or goes three report intervals without a load report takes the MMR out of the zone.

use super::Ctx;
use crate::framed::{write_frame, FrameReader};
use mc_core::zc::MmrCommand;
use mc_rt::sync::mpsc;
use mc_rt::{AsyncRead, AsyncWrite};
use mc_wire::link::{ControllerToMmr, MmrToController};
use mc_wire::{hex, ControllerId};
use std::net::SocketAddr;
use std::time::Duration;

/// Load reports an MMR VM may miss before it is declared down.
const MISSED_REPORTS_DOWN: u64 = 3;

pub(crate) fn to_wire(cmd: MmrCommand) -> ControllerToMmr {
    match cmd {
        MmrCommand::Admit {
            token,
            meeting,
            participant,
        } => ControllerToMmr::Admit {
            token: hex::encode(&token),
            meeting,
            participant,
        },
        MmrCommand::Revoke { token } => ControllerToMmr::Revoke {
            token: hex::encode(&token),
        },
    }
}

pub(super) async fn serve<S>(stream: S, peer: SocketAddr, ctx: Ctx)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (rd, mut wr) = mc_rt::split(stream);
    let mut rd = FrameReader::new(rd);
    let hello = mc_rt::timeout(
        Duration::from_millis(ctx.config.handshake_timeout_ms),
        rd.next::<MmrToController>(),
    )
    .await;
    let Ok(Ok(Some(MmrToController::Hello {
        mmr,
        capacity,
        media,
    }))) = hello
    else {
        let message = "the first message on an MMR link must be a hello".to_string();
        let _ = write_frame(&mut wr, &ControllerToMmr::Refused { message }).await;
        tracing::info!(%peer, "closed an MMR link that did not say hello");
        return;
    };
    if mmr == ctx.local_mmr || capacity == 0 {
        let message = format!("MMR {mmr} with capacity {capacity} cannot join: the id is taken by this controller's own MMR or the capacity is 0");
        let _ = write_frame(&mut wr, &ControllerToMmr::Refused { message }).await;
        return;
    }
    let interval_ms = ctx.config.mmr_report_interval_ms;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let link = {
        let mut st = ctx.zc.lock().unwrap();
        st.next_link += 1;
        let link = st.next_link;
        st.mmr_links.insert(mmr.clone(), (link, tx.clone()));
        st.zc.mmr_up(mmr.clone(), capacity, media.clone());
        // A re-linking MMR gets every grant it should hold again.
        for cmd in st.zc.grants_on(&mmr) {
            let _ = tx.send(to_wire(cmd));
        }
        link
    };
    // Only the map holds the sender now, so replacing this link ends our `rx` loop.
    drop(tx);
    ctx.events.record(format_args!(
        "MMR {mmr} linked from {peer}: capacity {capacity}, media {}:{}",
        media.host, media.udp_port
    ));
    let welcome = ControllerToMmr::Welcome {
        controller: ControllerId(ctx.config.id.clone()),
        report_interval_ms: interval_ms,
    };
    let reason = if let Err(e) = write_frame(&mut wr, &welcome).await {
        e.to_string()
    } else {
        let silence = Duration::from_millis(interval_ms * MISSED_REPORTS_DOWN);
        let mut deadline = Box::pin(mc_rt::sleep(silence));
        let mut keepalive = mc_rt::interval(Duration::from_millis(interval_ms));
        loop {
            mc_rt::select! {
                // Branches are polled in order, never at random: one seed, one run.
                biased;
                _ = keepalive.tick() => if let Err(e) = write_frame(&mut wr, &ControllerToMmr::Keepalive).await { break e.to_string() },
                msg = rd.next::<MmrToController>() => match msg {
                    Ok(Some(MmrToController::Load { .. })) => deadline.as_mut().set(mc_rt::sleep(silence)),
                    Ok(Some(MmrToController::Admitted { token })) => ctx.zc.lock().unwrap().grant_confirmed(&token),
                    Ok(Some(MmrToController::Hello { .. })) => break "said hello twice".to_string(),
                    Ok(None) => break "closed the link".to_string(),
                    Err(e) => break e.to_string(),
                },
                cmd = rx.recv() => match cmd {
                    Some(cmd) => if let Err(e) = write_frame(&mut wr, &cmd).await { break e.to_string() },
                    None => break "replaced by a newer link".to_string(),
                },
                _ = &mut deadline => break format!("no load report for {} ms", silence.as_millis()),
            }
        }
    };
    {
        let mut st = ctx.zc.lock().unwrap();
        if st.mmr_links.get(&mmr).is_none_or(|(l, _)| *l != link) {
            return; // a newer link replaced this one
        }
        st.mmr_links.remove(&mmr);
    }
    // An MMR moving its link to a better port closes the old link just before the new one says
    // hello. Give it one report interval to come back before its meetings are moved; grants
    // made meanwhile are repeated to it on the new link.
    mc_rt::sleep(Duration::from_millis(interval_ms)).await;
    let mut st = ctx.zc.lock().unwrap();
    if !st.mmr_links.contains_key(&mmr) {
        st.zc.mmr_down(&mmr, &reason);
        ctx.drain(&mut st);
        ctx.events
            .record(format_args!("MMR {mmr} is down: {reason}"));
    }
}
