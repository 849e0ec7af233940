//! Cascade links between the MMRs of a meeting too large for one (DESIGN §5, PROTOCOL §14).
//!
//! The ZC tells each MMR of a cascaded meeting which other MMRs carry it. Two MMRs share one
//! link, whatever meetings it carries: the MMR with the smaller id dials (the cascade port, then
//! TLS 443 with ALPN `mc-cascade/1`), the other accepts; each says hello with its id, which must
//! be the one its certificate names. The forwarding table decides what crosses a link (a local
//! participant's packet, once per linked MMR of its meeting) and what a link's packets reach
//! (this MMR's own participants only); this shell moves the frames. A lost link is dialled
//! again while a meeting still wants it; meanwhile the meeting's participants on each side still
//! hear each other.

use super::{Mmr, STREAM_QUEUE_PACKETS};
use crate::dial::dial_tls;
use mc_core::mmr::Outcome;
use mc_rt::identity::{CertRole, PeerIdentity};
use mc_rt::sync::mpsc;
use mc_rt::tls::ClientConfig;
use mc_rt::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use mc_wire::cascade::{media_framed, CascadeFrame};
use mc_wire::link::CascadePeer;
use mc_wire::rfc4571::{self, Rfc4571Decoder};
use mc_wire::{MeetingId, MmrId};
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// Between attempts to dial a peer MMR that a meeting still wants.
const REDIAL_MS: u64 = 500;
/// How long the other MMR may take to say hello.
const HELLO_TIMEOUT_MS: u64 = 5_000;

/// What this MMR knows of its cascades (inside the MMR's state, under its lock).
#[derive(Default)]
pub(crate) struct Cascades {
    /// This MMR's id and how it dials others; `None` until cascading is enabled.
    me: Option<(MmrId, Arc<ClientConfig>, u64)>,
    /// For each cascaded meeting, the other MMRs the ZC says carry it.
    wanted: BTreeMap<MeetingId, BTreeMap<MmrId, CascadePeer>>,
    /// The number of the open link to each peer MMR.
    links: BTreeMap<MmrId, u64>,
    /// Each open link's writer queue, by the link's number: every packet onto a link looks it
    /// up.
    queues: BTreeMap<u64, mpsc::Sender<Vec<u8>>>,
    /// Peers being dialled now.
    dialling: BTreeSet<MmrId>,
    next_link: u64,
    /// Frames a full link queue lost.
    pub queue_drops: u64,
}

impl Cascades {
    /// Queues a local participant's packet of `meeting` on link `link`.
    pub(crate) fn send(&mut self, link: u64, meeting: MeetingId, packet: &[u8]) {
        let Some(tx) = self.queues.get(&link) else {
            return;
        };
        if tx.try_send(media_framed(meeting, packet)).is_err() {
            self.queue_drops += 1;
        }
    }

    /// Link `link` to `peer` is up, writing into `tx`; returns the link it replaces, if any.
    fn open(&mut self, peer: MmrId, link: u64, tx: mpsc::Sender<Vec<u8>>) -> Option<u64> {
        self.queues.insert(link, tx);
        let old = self.links.insert(peer, link)?;
        // Dropping the old link's queue ends its writer.
        self.queues.remove(&old);
        Some(old)
    }

    /// Link `link` to `peer` is down (it may have been replaced already).
    fn close(&mut self, peer: &MmrId, link: u64) {
        self.queues.remove(&link);
        if self.links.get(peer) == Some(&link) {
            self.links.remove(peer);
        }
    }

    fn peer_wanted(&self, peer: &MmrId) -> Option<CascadePeer> {
        self.wanted.values().find_map(|w| w.get(peer).cloned())
    }
}

/// Lets this MMR take part in cascades, as `id`, dialling with `tls` within `timeout_ms`.
pub(super) fn enable(mmr: &Mmr, id: MmrId, tls: Arc<ClientConfig>, timeout_ms: u64) {
    mmr.state.lock().unwrap().cascades.me = Some((id, tls, timeout_ms));
}

/// The ZC's word: `meeting` also runs on `peers` (none: no longer cascaded here).
pub(crate) fn apply(mmr: &Mmr, meeting: MeetingId, peers: Vec<CascadePeer>) {
    let mut s = mmr.state.lock().unwrap();
    let before = s.cascades.wanted.remove(&meeting).unwrap_or_default();
    let now: BTreeMap<MmrId, CascadePeer> = peers.into_iter().map(|p| (p.mmr.clone(), p)).collect();
    for gone in before.keys().filter(|p| !now.contains_key(*p)) {
        if let Some(link) = s.cascades.links.get(gone).copied() {
            s.forwarding.detach_cascade(meeting, link);
        }
    }
    let mut dial = Vec::new();
    for (peer, addr) in &now {
        match s.cascades.links.get(peer).copied() {
            Some(link) => s.forwarding.attach_cascade(meeting, link),
            None => {
                let me = s.cascades.me.as_ref().map(|(id, _, _)| id.clone());
                // The smaller id dials; the other waits to be dialled.
                if me.is_some_and(|me| me < *peer) && s.cascades.dialling.insert(peer.clone()) {
                    dial.push(addr.clone());
                }
            }
        }
    }
    if !now.is_empty() {
        s.cascades.wanted.insert(meeting, now);
    }
    let me = s.cascades.me.clone();
    drop(s);
    if let Some((me, tls, timeout_ms)) = me {
        for peer in dial {
            mc_rt::spawn(dial_loop(
                mmr.clone(),
                me.clone(),
                peer,
                tls.clone(),
                timeout_ms,
            ));
        }
    }
}

/// Dials `peer` until a link is up, or no meeting wants it any more.
async fn dial_loop(
    mmr: Mmr,
    me: MmrId,
    peer: CascadePeer,
    tls: Arc<ClientConfig>,
    timeout_ms: u64,
) {
    loop {
        for port in [peer.port, peer.fallback_port] {
            let Ok(stream) = dial_tls(&peer.host, port, tls.clone(), timeout_ms).await else {
                continue;
            };
            // The other MMR must be the one its certificate names.
            let certified = mc_rt::tls::server_identity(&stream);
            if !certified.is_ok_and(|c| names(&c, &peer.mmr)) {
                tracing::warn!(mmr = %peer.mmr, port, "the cascade peer's certificate does not name it; not linking");
                continue;
            }
            mmr.state
                .lock()
                .unwrap()
                .cascades
                .dialling
                .remove(&peer.mmr);
            serve_link(mmr.clone(), stream, Some((me.clone(), peer.mmr.clone()))).await;
            mmr.state
                .lock()
                .unwrap()
                .cascades
                .dialling
                .insert(peer.mmr.clone());
            break;
        }
        mc_rt::sleep(Duration::from_millis(REDIAL_MS)).await;
        let mut s = mmr.state.lock().unwrap();
        if s.cascades.peer_wanted(&peer.mmr).is_none() || s.cascades.links.contains_key(&peer.mmr) {
            s.cascades.dialling.remove(&peer.mmr);
            return;
        }
    }
}

/// Whether a certificate names MMR `id`: an MMR VM's own name, or the controller whose
/// in-process MMR it is (`<controller>-mmr`).
fn names(c: &PeerIdentity, id: &MmrId) -> bool {
    match c.role {
        CertRole::Mmr => c.node == id.0,
        CertRole::Controller => id.0 == format!("{}-mmr", c.node),
        _ => false,
    }
}

/// An accepted cascade connection: the dialler says hello first.
pub(crate) async fn accept<S>(mmr: Mmr, stream: S, certified: Option<PeerIdentity>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let Some(certified) = certified else {
        tracing::warn!("refused a cascade link without an MMR's or controller's certificate");
        return;
    };
    if mmr.state.lock().unwrap().cascades.me.is_none() {
        return;
    }
    serve_link_accepted(mmr, stream, certified).await;
}

async fn serve_link_accepted<S>(mmr: Mmr, stream: S, certified: PeerIdentity)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut rd, wr) = mc_rt::split(stream);
    let mut dec = Rfc4571Decoder::default();
    let hello = mc_rt::timeout(
        Duration::from_millis(HELLO_TIMEOUT_MS),
        read_hello(&mut rd, &mut dec),
    )
    .await;
    let Ok(Some(peer)) = hello else {
        tracing::debug!("a cascade link said no hello in time");
        return;
    };
    if !names(&certified, &peer) {
        tracing::warn!(mmr = %peer, "refused a cascade link: its certificate does not name it");
        return;
    }
    let me = mmr
        .state
        .lock()
        .unwrap()
        .cascades
        .me
        .as_ref()
        .map(|(id, _, _)| id.clone());
    let Some(me) = me else { return };
    run_link(mmr, rd, wr, dec, me, peer, true).await;
}

/// A dialled link: say hello, hear the other's, then carry frames.
async fn serve_link<S>(mmr: Mmr, stream: S, ids: Option<(MmrId, MmrId)>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let Some((me, peer)) = ids else { return };
    let (mut rd, mut wr) = mc_rt::split(stream);
    let hello = rfc4571::encode(&CascadeFrame::Hello { mmr: me.clone() }.encode());
    if wr.write_all(&hello).await.is_err() || wr.flush().await.is_err() {
        return;
    }
    let mut dec = Rfc4571Decoder::default();
    let answer = mc_rt::timeout(
        Duration::from_millis(HELLO_TIMEOUT_MS),
        read_hello(&mut rd, &mut dec),
    )
    .await;
    if !matches!(&answer, Ok(Some(id)) if *id == peer) {
        tracing::warn!(mmr = %peer, "the cascade peer did not answer with its hello");
        return;
    }
    run_link(mmr, rd, wr, dec, me, peer, false).await;
}

async fn read_hello<R: AsyncRead + Unpin>(rd: &mut R, dec: &mut Rfc4571Decoder) -> Option<MmrId> {
    let mut buf = vec![0u8; 1024];
    loop {
        if let Some(body) = dec.next_packet() {
            return match CascadeFrame::decode(body) {
                Ok(CascadeFrame::Hello { mmr }) => Some(mmr),
                _ => None,
            };
        }
        match rd.read(&mut buf).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => dec.push(&buf[..n]),
        }
    }
}

/// Carries frames on an established link until it breaks.
async fn run_link<R, W>(
    mmr: Mmr,
    mut rd: R,
    mut wr: W,
    mut dec: Rfc4571Decoder,
    me: MmrId,
    peer: MmrId,
    answer_hello: bool,
) where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(STREAM_QUEUE_PACKETS);
    if answer_hello {
        let hello = rfc4571::encode(&CascadeFrame::Hello { mmr: me }.encode());
        if wr.write_all(&hello).await.is_err() || wr.flush().await.is_err() {
            return;
        }
    }
    let link = {
        let mut s = mmr.state.lock().unwrap();
        s.cascades.next_link += 1;
        let link = s.cascades.next_link;
        if let Some(old) = s.cascades.open(peer.clone(), link, tx) {
            drop_link(&mut s.forwarding, old);
        }
        let meetings: Vec<MeetingId> = s
            .cascades
            .wanted
            .iter()
            .filter(|(_, peers)| peers.contains_key(&peer))
            .map(|(m, _)| *m)
            .collect();
        for m in meetings {
            s.forwarding.attach_cascade(m, link);
        }
        link
    };
    tracing::info!(mmr = %peer, link, "cascade link up");
    let writer = mc_rt::spawn(async move {
        let mut out = Vec::new();
        while let Some(frame) = rx.recv().await {
            out.clear();
            out.extend_from_slice(&frame);
            while let Ok(more) = rx.try_recv() {
                out.extend_from_slice(&more);
            }
            if wr.write_all(&out).await.is_err() || wr.flush().await.is_err() {
                break;
            }
        }
    });
    let mut buf = vec![0u8; 16 * 1024];
    'link: loop {
        while let Some(body) = dec.next_packet() {
            let Ok(CascadeFrame::Media { meeting, packet }) = CascadeFrame::decode(body) else {
                tracing::warn!(mmr = %peer, "a cascade link sent something other than media; closing it");
                break 'link;
            };
            let udp = deliver(&mmr, link, meeting, packet);
            let copies: Vec<(&[u8], SocketAddr)> = udp.iter().map(|to| (packet, *to)).collect();
            mmr.udp.send_many(&copies).await;
        }
        match rd.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => dec.push(&buf[..n]),
        }
    }
    writer.abort();
    let mut s = mmr.state.lock().unwrap();
    s.cascades.close(&peer, link);
    drop_link(&mut s.forwarding, link);
    tracing::info!(mmr = %peer, link, "cascade link down");
}

fn drop_link(f: &mut mc_core::mmr::Forwarding, link: u64) {
    for m in f.cascaded_on(link) {
        f.detach_cascade(m, link);
    }
}

/// A packet from a link: queued for this MMR's stream participants; the UDP ones returned.
fn deliver(mmr: &Mmr, link: u64, meeting: MeetingId, packet: &[u8]) -> Vec<SocketAddr> {
    let mut s = mmr.state.lock().unwrap();
    let Outcome::Forward(to) = s.forwarding.from_cascade(link, meeting, packet) else {
        return Vec::new();
    };
    // No meeting: a link's packet never goes out on a link (the table never says it should,
    // and this makes sure), so nothing can loop between MMRs.
    super::media::dispatch(&mut s, to, packet, None)
}

/// The cascade port: mutual TLS, ALPN `mc-cascade/1` only, under `gate`'s caps.
pub(super) fn serve_port(
    listener: mc_rt::net::TcpListener,
    identity: &mc_rt::tls::Identity,
    mmr: Mmr,
    gate: crate::listen::Gate,
    handshake_timeout_ms: u64,
) -> Result<(), mc_rt::tls::TlsError> {
    use mc_wire::ports::alpn;
    let router = mc_rt::tls::Router::new()
        .route(
            alpn::CASCADE,
            mc_rt::tls::server_config(identity, alpn::CASCADE, mc_rt::tls::ClientAuth::Required)?,
        )
        .default_route(alpn::CASCADE);
    mc_rt::spawn(crate::serve::serve_tls(
        listener,
        router,
        gate,
        Duration::from_millis(handshake_timeout_ms),
        move |_, stream, _, _| {
            let mmr = mmr.clone();
            async move {
                let certified = mc_rt::tls::client_identity(&stream).ok();
                accept(mmr, stream, certified).await
            }
        },
    ));
    Ok(())
}
