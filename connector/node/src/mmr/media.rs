//! Moving media packets: the UDP receive loop, and one task per stream connection (TCP 8801 or
//! TLS 443), each feeding the forwarding table and carrying out what it says.

use super::{Mmr, MmrState, STREAM_QUEUE_PACKETS, UDP_BATCH};
use crate::listen::{CloseReason, Gate};
use mc_core::client::MediaPath;
use mc_core::mmr::{Endpoint, Outcome};
use mc_rt::net::{Inbox, TcpListener};
use mc_rt::sync::mpsc;
use mc_rt::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use mc_wire::rfc4571::{self, Rfc4571Decoder};
use mc_wire::{classify_media, MediaKind, MeetingId};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// Decides what to do with one packet and queues it for stream destinations; returns the UDP
/// destinations (sent after the lock is released) and any reply for the sender. `source` is the
/// sender's address (a stream's peer), which the per-source rate limits count by.
fn route(
    mmr: &Mmr,
    from: Endpoint,
    source: IpAddr,
    packet: &[u8],
) -> (Vec<SocketAddr>, Option<Vec<u8>>) {
    let mut s = mmr.state.lock().unwrap();
    // A bound participant's media is what the port is for: only the rest is rate-limited (and
    // only the rest needs the clock).
    let bound_media = classify_media(packet) == MediaKind::Rtp && s.forwarding.is_bound(from);
    if !bound_media && !s.guard.admit(mc_rt::unix_now_ms(), source, false, packet) {
        return (Vec::new(), None);
    }
    match s.forwarding.handle_packet(from, packet) {
        Outcome::Forward(to) => {
            // A copy onto a link carries the sender's meeting: looked up once, and only when
            // the packet crosses a link at all.
            let crosses_link = to.iter().any(|e| matches!(e, Endpoint::Cascade(_)));
            let meeting = crosses_link
                .then(|| s.forwarding.participant_at(from).map(|(m, _)| m))
                .flatten();
            (dispatch(&mut s, to, packet, meeting), None)
        }
        Outcome::Reply(reply) => {
            // Only a successful binding is answered with a plain reply.
            let path = s.path_of(from);
            *s.bindings_by_path.entry(path).or_default() += 1;
            if let Some((old, new)) = s.forwarding.take_moved() {
                let (was, now) = (s.path_of(old), s.path_of(new));
                if was != now {
                    *s.path_changes.entry((was, now)).or_default() += 1;
                }
            }
            (Vec::new(), Some(reply))
        }
        Outcome::Refuse(reply, reason) => {
            let (client_addr, stream) = split(from);
            tracing::debug!(client_addr, stream, ?reason, "refused a media binding");
            (Vec::new(), Some(reply))
        }
        Outcome::Drop(reason) => {
            let (client_addr, stream) = split(from);
            tracing::trace!(client_addr, stream, ?reason, "dropped a media packet");
            (Vec::new(), None)
        }
    }
}

/// Carries out the table's `Forward` of `packet` to `to`: queues it for each stream (counting
/// what a full queue loses) and, as a packet of `meeting`, onto each cascade link (none without
/// a meeting); returns the UDP destinations, which the caller sends once the lock is released.
/// Both a participant's packets ([`route`]) and a linked MMR's (`cascade::deliver`) go through
/// here.
pub(super) fn dispatch(
    s: &mut MmrState,
    to: Vec<Endpoint>,
    packet: &[u8],
    meeting: Option<MeetingId>,
) -> Vec<SocketAddr> {
    let mut udp = Vec::new();
    for dest in to {
        match dest {
            Endpoint::Udp(addr) => udp.push(addr),
            Endpoint::Stream(id) => {
                let full = s
                    .streams
                    .get(&id)
                    .is_some_and(|tx| tx.try_send(packet.to_vec()).is_err());
                if full {
                    s.stream_queue_drops += 1;
                }
            }
            Endpoint::Cascade(link) => {
                if let Some(meeting) = meeting {
                    s.cascades.send(link, meeting, packet);
                }
            }
        }
    }
    udp
}

/// A sender as log fields: a participant's UDP address goes in `client_addr` (which a redacting
/// log hides), a stream connection by its number (its address is logged when it opens).
fn split(
    from: Endpoint,
) -> (
    Option<tracing::field::DisplayValue<SocketAddr>>,
    Option<u64>,
) {
    match from {
        Endpoint::Udp(addr) => (Some(tracing::field::display(addr)), None),
        Endpoint::Stream(id) | Endpoint::Cascade(id) => (None, Some(id)),
    }
}

/// Whether a stream connection has a participant bound to it (a binding succeeded on it).
fn is_bound(mmr: &Mmr, id: u64) -> bool {
    let s = mmr.state.lock().unwrap();
    s.forwarding.participant_at(Endpoint::Stream(id)).is_some()
}

pub(super) async fn udp_loop(mmr: Mmr) {
    let mut inbox = Inbox::new(UDP_BATCH);
    // (datagram of the batch, destination) of every copy to send.
    let mut copies: Vec<(usize, SocketAddr)> = Vec::new();
    let mut replies: Vec<(Vec<u8>, SocketAddr)> = Vec::new();
    loop {
        if let Err(e) = mmr.udp.recv_many(&mut inbox).await {
            // ICMP errors surface here on some platforms; they concern one peer, not us.
            tracing::debug!("UDP receive error: {e}");
            continue;
        }
        copies.clear();
        replies.clear();
        for (i, (packet, src)) in inbox.iter().enumerate() {
            let (udp, reply) = route(&mmr, Endpoint::Udp(src), src.ip(), packet);
            replies.extend(reply.map(|r| (r, src)));
            copies.extend(udp.into_iter().map(|dest| (i, dest)));
        }
        // Answers first, then the copies in arrival order: one sender's packets reach each
        // receiver in the order they came.
        let out: Vec<(&[u8], SocketAddr)> = replies
            .iter()
            .map(|(r, to)| (&r[..], *to))
            .chain(copies.iter().map(|&(i, to)| (inbox.get(i).0, to)))
            .collect();
        mmr.udp.send_many(&out).await;
    }
}

/// TCP 8801: plain RFC 4571 framing, admitted under the listener's caps.
pub(super) async fn tcp_accept_loop(listener: TcpListener, mmr: Mmr) {
    loop {
        match mc_rt::net::accept(&listener).await {
            Ok((tcp, peer)) => {
                let permit = match mmr.tcp_gate.admit(peer.ip()) {
                    Ok(permit) => permit,
                    Err(reason) => {
                        tracing::debug!(client_addr = %peer, %reason, "refused a media connection (TCP)");
                        continue;
                    }
                };
                let mmr = mmr.clone();
                mc_rt::spawn(async move {
                    let gate = permit.gate().clone();
                    serve_stream(tcp, peer, mmr, MediaPath::Tcp, gate).await;
                    drop(permit);
                });
            }
            Err(e) => {
                tracing::warn!("MMR TCP accept failed: {e}");
                mc_rt::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Serves RFC 4571-framed media on one stream connection until either side closes it, or it
/// misses one of the MMR's stream deadlines (counted on `gate`, its listener's): a connection
/// that has not bound within the first-message deadline is closed, and so is one with no
/// participant bound to it (never yet, or no longer) that carried no packet either way for the
/// idle timeout. A bound participant's stream is never idle-closed: clients send no keepalive
/// on streams, so a muted participant's is silent; it lives as long as the participant's grant,
/// which the ZC revokes (closing the stream) when the participant leaves or its signalling dies.
pub async fn serve_stream<S>(
    stream: S,
    peer: SocketAddr,
    mmr: Mmr,
    transport: MediaPath,
    gate: Gate,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(STREAM_QUEUE_PACKETS);
    let id = {
        let mut s = mmr.state.lock().unwrap();
        s.next_stream += 1;
        let id = s.next_stream;
        s.streams.insert(id, tx);
        s.stream_transport.insert(id, transport);
        id
    };
    tracing::debug!(client_addr = %peer, %transport, stream = id, "media stream opened");
    let (mut rd, mut wr) = mc_rt::split(stream);
    let mut dec = Rfc4571Decoder::default();
    let mut buf = vec![0u8; 16 * 1024];
    let mut out = Vec::new();
    let deadlines = mmr.deadlines;
    let bind_by = mc_rt::Instant::now() + deadlines.first_message;
    let mut last_packet = mc_rt::Instant::now();
    let mut ever_bound = false;
    'conn: loop {
        let due = if ever_bound {
            last_packet + deadlines.idle
        } else {
            bind_by.min(last_packet + deadlines.idle)
        };
        mc_rt::select! {
            // Branches are polled in order, never at random: one seed, one run.
            biased;
            n = rd.read(&mut buf) => {
                let n = match n { Ok(0) | Err(_) => break 'conn, Ok(n) => n };
                dec.push(&buf[..n]);
                out.clear();
                while let Some(packet) = dec.next_packet() {
                    last_packet = mc_rt::Instant::now();
                    let packet = packet.to_vec();
                    let (udp, reply) = route(&mmr, Endpoint::Stream(id), peer.ip(), &packet);
                    if let Some(reply) = reply {
                        rfc4571::encode_into(&reply, &mut out);
                    }
                    let copies: Vec<(&[u8], SocketAddr)> =
                        udp.into_iter().map(|to| (&packet[..], to)).collect();
                    mmr.udp.send_many(&copies).await;
                }
                if !out.is_empty() && (wr.write_all(&out).await.is_err() || wr.flush().await.is_err()) {
                    break 'conn;
                }
                ever_bound = ever_bound || is_bound(&mmr, id);
            }
            packet = rx.recv() => {
                let Some(packet) = packet else { break 'conn };
                last_packet = mc_rt::Instant::now();
                out.clear();
                rfc4571::encode_into(&packet, &mut out);
                // Drain whatever else is queued into the same write.
                while let Ok(more) = rx.try_recv() {
                    rfc4571::encode_into(&more, &mut out);
                }
                if wr.write_all(&out).await.is_err() || wr.flush().await.is_err() {
                    break 'conn;
                }
            }
            _ = mc_rt::sleep(due.saturating_duration_since(mc_rt::Instant::now())) => {
                let now = mc_rt::Instant::now();
                if is_bound(&mmr, id) {
                    ever_bound = true;
                    last_packet = now;
                    continue 'conn;
                }
                let reason = if !ever_bound && bind_by <= now {
                    CloseReason::FirstMessageTimeout
                } else {
                    CloseReason::IdleTimeout
                };
                gate.count(reason);
                tracing::debug!(client_addr = %peer, %transport, stream = id, %reason, "closed a media stream");
                break 'conn;
            }
        }
    }
    let mut s = mmr.state.lock().unwrap();
    s.streams.remove(&id);
    s.stream_transport.remove(&id);
    s.forwarding.disconnected(Endpoint::Stream(id));
    tracing::debug!(client_addr = %peer, %transport, stream = id, "media stream closed");
}
