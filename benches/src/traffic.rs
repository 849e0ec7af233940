//! The load generator of the MMR benchmarks: participants with a UDP socket each, that bind to
//! an MMR as clients do and then send RTP as fast as a shared window of copies in flight
//! ([`Window`]) allows, counting what reaches them.

use mc_core::zc::MmrCommand;
use mc_node::mmr::UDP_BUFFER_BYTES;
use mc_rt::net::UdpSocket;
use mc_rt::sync::Notify;
use mc_wire::binding::Binding;
use mc_wire::rtp::RtpPacket;
use mc_wire::{MeetingId, ParticipantId};
use std::net::SocketAddr;
use std::sync::atomic::{
    AtomicBool, AtomicU64,
    Ordering::{Relaxed, SeqCst},
};
use std::sync::Arc;
use std::time::Duration;

/// RTP payload per packet: 20 ms of G.711 audio, a common real size.
pub const PAYLOAD_BYTES: usize = 160;
const BINDING_TIMEOUT_MS: u64 = 500;
const BINDING_ATTEMPTS: u32 = 5;
/// Copies of packets sent and not yet read by a receiver, across all senders, when every socket
/// of the run has the MMR's socket buffers ([`UDP_BUFFER_BYTES`], 4 MiB: about 3,000 small
/// datagrams). Every copy in flight holds buffer space (the forwarder's receive buffer, then its
/// send buffer until the receiver reads it); this stays well below what any one buffer holds
/// even when every sender overshoots by one batch (at fan-out 9 with ten senders, at most
/// 1,024 + 10 × 2 × 9 = 1,204 copies), so the kernel drops nothing and the senders spend no CPU
/// on packets that would be dropped — CPU the forwarder needs on a small machine. A forwarder
/// under load has such a queue: each receive finds many datagrams waiting, as it would at a
/// real MMR near its capacity. Being counted in copies, it allows fewer packets in flight the
/// larger the fan-out (about 114 at fan-out 9), so the larger the fan-out, the fewer datagrams a
/// batching forwarder finds per receive call (the "packets per receive call" row).
const WINDOW_COPIES: u64 = 1_024;
/// The window when the kernel capped the sockets' buffers below that (`net.core.rmem_max` and
/// `wmem_max`; Linux's default 208 KiB holds about 160 small datagrams): the same reasoning
/// with 96 copies. The forwarders then find shallower queues, and batching gains less.
const WINDOW_COPIES_CAPPED: u64 = 96;
/// A sender checks the window once per this many packets.
const SEND_BATCH_PACKETS: u64 = 2;
/// If nothing at all is delivered for this long, what is in flight was lost: write it off and go
/// on. Long enough that a descheduled load generator is not mistaken for loss.
const STALL_MS: u64 = 200;

/// Flow control shared by all senders and receivers of a case: a sender waits while `copies` or
/// more copies are sent and not yet read by a receiver.
pub(crate) struct Window {
    /// Packets the senders handed to their sockets.
    pub sent: AtomicU64,
    /// Datagrams read by receivers; each packet is delivered `fanout` times.
    pub delivered: AtomicU64,
    pub fanout: u64,
    /// Copies in flight at most (besides one batch per sender).
    pub copies: u64,
    /// Copies written off as lost after a stall.
    forgiven: AtomicU64,
    waiting: AtomicBool,
    room: Notify,
}

impl Window {
    pub fn new(fanout: u64, copies: u64) -> Window {
        Window {
            copies,
            sent: AtomicU64::new(0),
            delivered: AtomicU64::new(0),
            fanout,
            forgiven: AtomicU64::new(0),
            waiting: AtomicBool::new(false),
            room: Notify::new(),
        }
    }

    /// Copies sent and not yet read by a receiver.
    fn in_flight(&self) -> u64 {
        let done = self.delivered.load(SeqCst) + self.forgiven.load(SeqCst);
        (self.sent.load(SeqCst) * self.fanout).saturating_sub(done)
    }

    /// Resolves when there is room for another batch.
    async fn room(&self) {
        while self.in_flight() >= self.copies {
            let progress = self.delivered.load(SeqCst);
            let notified = self.room.notified();
            let mut notified = std::pin::pin!(notified);
            notified.as_mut().enable();
            self.waiting.store(true, SeqCst);
            if self.in_flight() < self.copies {
                return;
            }
            let woken = mc_rt::timeout(Duration::from_millis(STALL_MS), notified)
                .await
                .is_ok();
            if !woken && self.delivered.load(SeqCst) == progress {
                let stuck = self.in_flight();
                self.forgiven.fetch_add(stuck, SeqCst);
            }
        }
    }

    /// A receiver read a datagram; wakes waiting senders as soon as there is room.
    fn delivered(&self) {
        self.delivered.fetch_add(1, SeqCst);
        if self.waiting.load(SeqCst)
            && self.in_flight() < self.copies
            && self.waiting.swap(false, SeqCst)
        {
            self.room.notify_waiters();
        }
    }
}

pub(crate) struct Participant {
    pub sock: Arc<UdpSocket>,
    pub meeting: usize,
    pub token: Vec<u8>,
    /// Whether its socket got the MMR's buffers ([`UDP_BUFFER_BYTES`]) each way.
    pub full_buffers: bool,
}

impl Participant {
    /// A participant of meeting `meeting` with a socket of its own and a token unique to `n`.
    pub async fn new(n: usize, meeting: usize) -> Result<Participant, String> {
        let sock = UdpSocket::bind(loopback(0))
            .await
            .map_err(|e| format!("binding a participant's UDP socket: {e}"))?;
        let granted = sock.set_buffer_bytes(UDP_BUFFER_BYTES);
        let full_buffers =
            matches!(granted, Ok((r, s)) if r >= UDP_BUFFER_BYTES && s >= UDP_BUFFER_BYTES);
        Ok(Participant {
            sock: Arc::new(sock),
            meeting,
            token: format!("bench-token-{n:04}").into_bytes(),
            full_buffers,
        })
    }

    /// What the ZC would tell the MMR for this participant, numbered `n`.
    pub fn admit(&self, n: usize) -> MmrCommand {
        MmrCommand::Admit {
            token: mc_wire::MediaToken::from_bytes(self.token.clone()),
            meeting: MeetingId(self.meeting as u64 + 1),
            participant: ParticipantId(n as u64 + 1),
        }
    }
}

/// The window for a run of these participants: [`WINDOW_COPIES`] if every one's socket got the
/// MMR's buffers (the forwarders ask for the same on the same machine), else
/// [`WINDOW_COPIES_CAPPED`].
pub(crate) fn window_copies(participants: &[Participant]) -> u64 {
    if participants.iter().all(|p| p.full_buffers) {
        WINDOW_COPIES
    } else {
        WINDOW_COPIES_CAPPED
    }
}

/// What the load of this machine's runs will be, for the progress output: the window, and why.
pub(crate) async fn describe_window() -> Result<String, String> {
    let probe = Participant::new(0, 0).await?;
    let copies = window_copies(std::slice::from_ref(&probe));
    Ok(if probe.full_buffers {
        format!("load: at most {copies} copies in flight (every socket got {UDP_BUFFER_BYTES}-byte buffers)")
    } else {
        format!(
            "load: at most {copies} copies in flight: the kernel capped socket buffers below \
             {UDP_BUFFER_BYTES} bytes, so the forwarders find shallower queues than a real MMR's \
             (raise net.core.rmem_max and net.core.wmem_max to measure as benches/README.md does)"
        )
    })
}

pub(crate) fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// Proves `p`'s token to the MMR from `p`'s socket, as a client does before sending media.
pub(crate) async fn bind(p: &Participant, n: usize, mmr: SocketAddr) -> Result<(), String> {
    let mut txn = [0u8; 12];
    txn[4..].copy_from_slice(&(n as u64).to_be_bytes());
    let token = mc_wire::MediaToken::from_bytes(p.token.clone());
    // A retry repeats the same request: the MMR answers a repeat from the endpoint it bound.
    let request = Binding::Request {
        txn,
        username: mc_wire::binding::BindingId::of(&token),
        counter: 1,
    }
    .encode_signed(&token);
    let mut buf = vec![0u8; 2048];
    for _ in 0..BINDING_ATTEMPTS {
        p.sock
            .send_to(&request, mmr)
            .await
            .map_err(|e| format!("sending a binding request: {e}"))?;
        let answer = mc_rt::timeout(
            Duration::from_millis(BINDING_TIMEOUT_MS),
            p.sock.recv_from(&mut buf),
        )
        .await;
        if let Ok(Ok((len, from))) = answer {
            match Binding::decode(&buf[..len]).map(|d| d.msg) {
                Ok(Binding::Success { txn: t, .. }) if t == txn && from == mmr => return Ok(()),
                Ok(Binding::Error { code, reason, .. }) => {
                    return Err(format!("the MMR refused binding {n}: {code} {reason}"))
                }
                _ => {}
            }
        }
    }
    Err(format!("the MMR did not answer binding {n} in {BINDING_ATTEMPTS} attempts of {BINDING_TIMEOUT_MS} ms"))
}

/// Sends RTP to `to` as fast as the window allows, until `stop`.
pub(crate) async fn blast(
    sock: Arc<UdpSocket>,
    to: SocketAddr,
    ssrc: u32,
    window: Arc<Window>,
    stop: Arc<AtomicBool>,
) {
    let mut packet = RtpPacket {
        marker: false,
        payload_type: 111,
        sequence: 0,
        timestamp: 0,
        ssrc,
        csrc: Vec::new(),
        payload: vec![0x5a; PAYLOAD_BYTES],
    }
    .encode();
    let mut seq: u16 = 0;
    while !stop.load(Relaxed) {
        window.room().await;
        let mut ok = 0;
        for _ in 0..SEND_BATCH_PACKETS {
            seq = seq.wrapping_add(1);
            packet[2..4].copy_from_slice(&seq.to_be_bytes());
            ok += sock.send_to(&packet, to).await.is_ok() as u64;
        }
        window.sent.fetch_add(ok, SeqCst);
    }
}

pub(crate) async fn receive(sock: Arc<UdpSocket>, window: Arc<Window>) {
    let mut buf = vec![0u8; 2048];
    loop {
        if sock.recv_from(&mut buf).await.is_ok() {
            window.delivered();
        }
    }
}

/// Senders run this long before the measured window opens, so queues and caches are warm.
pub(crate) const WARMUP_MS: u64 = 200;
/// After the senders stop, receivers get this long to read what is still in flight.
pub(crate) const DRAIN_MS: u64 = 100;

/// What one measured window saw: the forwarder(s) as it opened and as it closed, and the copies
/// the senders' packets should have made and how many of them no receiver read.
pub(crate) struct Traffic<S> {
    pub start: S,
    pub end: S,
    pub copies_expected: u64,
    pub copies_lost: u64,
}

/// Every participant reads what reaches it and blasts RTP at `dest(n)` (the address of its
/// forwarder) within one shared window of copies, each packet reaching `fanout` others; after
/// [`WARMUP_MS`], `take` snapshots the forwarder(s), again `seconds` later; then the senders
/// stop and the receivers get [`DRAIN_MS`] to read what is in flight.
pub(crate) async fn run_traffic<S>(
    participants: &[Participant],
    dest: impl Fn(usize) -> SocketAddr,
    fanout: u64,
    seconds: f64,
    take: impl Fn(&Window) -> S,
) -> Traffic<S> {
    let stop = Arc::new(AtomicBool::new(false));
    let window = Arc::new(Window::new(fanout, window_copies(participants)));
    let receivers: Vec<_> = participants
        .iter()
        .map(|p| mc_rt::spawn(receive(p.sock.clone(), window.clone())))
        .collect();
    let senders: Vec<_> = participants
        .iter()
        .enumerate()
        .map(|(n, p)| {
            let ssrc = 0x1000 + n as u32;
            mc_rt::spawn(blast(
                p.sock.clone(),
                dest(n),
                ssrc,
                window.clone(),
                stop.clone(),
            ))
        })
        .collect();

    mc_rt::sleep(Duration::from_millis(WARMUP_MS)).await;
    let start = take(&window);
    mc_rt::sleep(Duration::from_secs_f64(seconds)).await;
    let end = take(&window);

    stop.store(true, SeqCst);
    for s in senders {
        let _ = s.await;
    }
    mc_rt::sleep(Duration::from_millis(DRAIN_MS)).await;
    for r in receivers {
        r.abort();
    }
    let copies_expected = window.sent.load(SeqCst) * window.fanout;
    Traffic {
        start,
        end,
        copies_expected,
        copies_lost: copies_expected.saturating_sub(window.delivered.load(SeqCst)),
    }
}
