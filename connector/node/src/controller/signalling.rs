//! One client's signalling session: `Join` with a ticket, answers from the ZC, `Leave` or close.

use super::{Ctx, SessionMsg};
use crate::framed::{write_frame, FrameReader};
use mc_rt::sync::mpsc;
use mc_rt::{AsyncRead, AsyncWrite};
use mc_wire::signal::{ClientToZc, ZcToClient};
use std::net::SocketAddr;
use std::time::Duration;

pub(super) async fn serve<S>(stream: S, peer: SocketAddr, port: u16, ctx: Ctx)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (tx, mut rx) = mpsc::unbounded_channel();
    let session = {
        let mut st = ctx.zc.lock().unwrap();
        st.next_session += 1;
        let id = st.next_session;
        st.sessions.insert(id, tx);
        id
    };
    tracing::debug!(%peer, port, session, "signalling session opened");
    let (rd, mut wr) = mc_rt::split(stream);
    let mut rd = FrameReader::new(rd);
    // A client that connects and never joins would hold a session forever.
    let mut join_deadline = Box::pin(mc_rt::sleep(Duration::from_millis(
        ctx.config.handshake_timeout_ms,
    )));
    let mut joined = false;
    loop {
        mc_rt::select! {
            // Branches are polled in order, never at random: one seed, one run.
            biased;
            msg = rd.next::<ClientToZc>() => match msg {
                Ok(Some(ClientToZc::Join { ticket })) => {
                    joined = true;
                    let mut st = ctx.zc.lock().unwrap();
                    let now_ms = mc_rt::unix_now_ms();
                    super::peer::fence_if_expired(&ctx, &mut st, now_ms);
                    st.zc.join(now_ms, session, &ticket);
                    ctx.drain(&mut st);
                }
                Ok(Some(ClientToZc::Ping)) => {
                    if write_frame(&mut wr, &ZcToClient::Pong).await.is_err() { break }
                }
                Ok(Some(ClientToZc::Leave)) | Ok(None) => break,
                Err(e) => {
                    tracing::info!(%peer, session, "closing a signalling session: {e}");
                    let _ = write_frame(&mut wr, &ZcToClient::Ended { reason: e.to_string(), rejoin: false }).await;
                    break;
                }
            },
            out = rx.recv() => match out {
                Some(SessionMsg::Send(msg)) => {
                    if write_frame(&mut wr, &msg).await.is_err() { break }
                }
                Some(SessionMsg::Close) | None => break,
            },
            _ = &mut join_deadline, if !joined => {
                tracing::info!(%peer, session, "closing a signalling session that sent no join");
                break;
            }
        }
    }
    let mut st = ctx.zc.lock().unwrap();
    st.sessions.remove(&session);
    st.zc.session_closed(session);
    ctx.drain(&mut st);
}
