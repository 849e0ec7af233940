//! MMR forwarding throughput over real loopback UDP, beside two bare UDP forwarders.
//!
//! For each case (so many meetings of so many participants) every participant gets its own UDP
//! socket. The MMR (`mc_node::mmr::Mmr`, the production shell and forwarding table) is given one
//! `Admit` per participant, as a ZC would, and each participant binds with a `Binding::Request`
//! carrying its token. Then every participant blasts RTP (160-byte payload) at the forwarder as
//! fast as it can for a fixed wall time, and counts what reaches it. "As fast as it can" is
//! bounded by a window of copies in flight ([`Window`]): an open-loop blast on a two-core machine
//! spends most of the CPU on packets the forwarder's full socket then drops, and the figure would
//! measure the scheduler's share more than the forwarder.
//!
//! The baselines ([`crate::bare`]) are the least any UDP forwarder must do with the same traffic:
//! receive, look up the sender's fixed destinations, send to each — one datagram per system call
//! (the first baseline), or as many per call as the MMR takes (`recvmmsg`/`sendmmsg`, the second).
//! Same sockets, same senders, same receivers. The three alternate round by round. The MMR runs
//! with its metrics registry and is scraped every [`SCRAPE_MS`], so the ratios include what
//! metrics cost.
//!
//! Each forwarder runs on a runtime of its own ([`Isolated`]), so "per core" is packets in divided
//! by the CPU seconds of the forwarder's own threads, whatever the senders and receivers cost.

use crate::bare::{self, Bare, Batching, Routes};
use crate::isolated::Isolated;
use crate::report::{Baseline, Row};
use mc_core::zc::MmrCommand;
use mc_node::mmr::Mmr;
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
/// Senders run this long before the measured window opens, so queues and caches are warm.
const WARMUP_MS: u64 = 200;
const BINDING_TIMEOUT_MS: u64 = 500;
const BINDING_ATTEMPTS: u32 = 5;
/// Copies of packets sent and not yet read by a receiver, across all senders. Every copy in
/// flight holds socket buffer space (the forwarder's receive buffer, then its send buffer until
/// the receiver reads it), and Linux's default 208 KiB holds about 160 small datagrams; this
/// stays below that even when every sender overshoots by one batch, so the kernel drops nothing
/// and the senders spend no CPU on packets that would be dropped — CPU the forwarder needs on a
/// small machine. (At fan-out 9 with ten senders that is at most 96 + 10 × 2 × 9 = 276 copies:
/// about 31 packets in the forwarder's buffer, about 28 copies in each receiver's.) Being counted
/// in copies, it allows fewer packets in flight the larger the fan-out — 96 at fan-out 1, about
/// 11 at fan-out 9 — so the larger the fan-out, the fewer datagrams a batching forwarder can find
/// waiting per receive call (the "packets per receive call" row shows how many it found).
const WINDOW_COPIES: u64 = 96;
/// A sender checks the window once per this many packets.
const SEND_BATCH_PACKETS: u64 = 2;
/// If nothing at all is delivered for this long, what is in flight was lost: write it off and go
/// on. Long enough that a descheduled load generator is not mistaken for loss.
const STALL_MS: u64 = 200;
/// How often the MMR's metrics are rendered during a measurement (Prometheus scrapes every 15 s
/// by default; this is 150 times as often).
const SCRAPE_MS: u64 = 100;
/// After the senders stop, receivers get this long to read what is still in flight.
const DRAIN_MS: u64 = 100;

/// So many meetings of so many participants, all on one forwarder.
#[derive(Debug, Clone, Copy)]
pub struct Case {
    pub meeting_size: usize,
    pub meetings: usize,
}

impl Case {
    fn participants(&self) -> usize {
        self.meeting_size * self.meetings
    }

    pub fn label(&self) -> String {
        let meetings = match self.meetings {
            1 => "1 meeting".to_string(),
            n => format!("{n} meetings"),
        };
        format!(
            "{meetings} of {} over UDP, {PAYLOAD_BYTES}-byte payload",
            self.meeting_size
        )
    }
}

/// Ten participants per case, at fan-out 1, 4 and 9: enough sockets to look like a busy MMR, few
/// enough that the load generator fits beside the forwarder on a small machine.
pub const CASES: [Case; 3] = [
    Case {
        meeting_size: 2,
        meetings: 5,
    },
    Case {
        meeting_size: 5,
        meetings: 2,
    },
    Case {
        meeting_size: 10,
        meetings: 1,
    },
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Mmr,
    Bare(Batching),
}

/// The forwarders of each case, in the order of the first round; each later round starts one
/// further along, so each takes every place in the order as often as the rounds allow.
const KINDS: [Kind; 3] = [
    Kind::Bare(Batching::PerPacket),
    Kind::Bare(Batching::Batched),
    Kind::Mmr,
];

/// What one forwarder did during the measured window.
#[derive(Debug, Clone, Copy)]
struct Throughput {
    wall_s: f64,
    packets_in: u64,
    packets_out: u64,
    /// Datagrams the participants' receive tasks read.
    delivered: u64,
    /// Copies that should have reached a receiver during the whole round (warm-up and drain
    /// included), and how many did not.
    copies_expected: u64,
    copies_lost: u64,
    /// Of the forwarder's threads.
    cpu_ns: Option<u64>,
    context_switches: Option<u64>,
    /// Receive calls that brought datagrams (the bare forwarders count them; the MMR does not).
    receives: Option<u64>,
}

impl Throughput {
    /// Several rounds as one: counts, wall time and CPU time add up.
    fn total(rounds: &[Throughput]) -> Throughput {
        let sum = |f: fn(&Throughput) -> u64| rounds.iter().map(f).sum();
        Throughput {
            wall_s: rounds.iter().map(|t| t.wall_s).sum(),
            packets_in: sum(|t| t.packets_in),
            packets_out: sum(|t| t.packets_out),
            delivered: sum(|t| t.delivered),
            copies_expected: sum(|t| t.copies_expected),
            copies_lost: sum(|t| t.copies_lost),
            cpu_ns: rounds.iter().map(|t| t.cpu_ns).sum(),
            context_switches: rounds.iter().map(|t| t.context_switches).sum(),
            receives: rounds.iter().map(|t| t.receives).sum(),
        }
    }

    fn per_s(&self, n: u64) -> Option<f64> {
        Some(n as f64 / self.wall_s)
    }

    fn in_per_core_s(&self) -> Option<f64> {
        let cpu_s = self.cpu_ns? as f64 / 1e9;
        (cpu_s > 0.0).then(|| self.packets_in as f64 / cpu_s)
    }

    fn switches_per_packet(&self) -> Option<f64> {
        let n = self.context_switches? as f64;
        (self.packets_in > 0).then(|| n / self.packets_in as f64)
    }

    fn packets_per_receive(&self) -> Option<f64> {
        let n = self.receives? as f64;
        (n > 0.0).then(|| self.packets_in as f64 / n)
    }

    fn cores_busy(&self) -> Option<f64> {
        Some(self.cpu_ns? as f64 / 1e9 / self.wall_s)
    }
}

pub async fn run(seconds: f64, rounds: usize) -> Result<Vec<Row>, String> {
    let mut rows = Vec::new();
    let round_s = seconds / rounds as f64;
    for case in CASES {
        eprintln!(
            "mmr: {}: {rounds} rounds of {round_s:.2} s each, bare, batched bare and MMR in turn",
            case.label()
        );
        let mut results: [Vec<Throughput>; 3] = Default::default();
        for round in 0..rounds {
            // Rotate the order, so a change in the machine's load falls on all three alike.
            for k in 0..KINDS.len() {
                let i = (round + k) % KINDS.len();
                results[i].push(measure(case, KINDS[i], round_s).await?);
            }
        }
        let [bare, batched, mmr] = results.map(|r| Throughput::total(&r));
        let row = |figure, unit, f: &dyn Fn(&Throughput) -> Option<f64>| Row {
            bench: "mmr",
            case: case.label(),
            figure,
            unit,
            measured: f(&mmr),
            baseline: f(&bare),
            baseline_name: "bare UDP forwarder, one datagram per system call",
            second: Some(Baseline {
                name: "batched bare forwarder, recv_many/send_many as the MMR",
                value: f(&batched),
            }),
        };
        rows.push(row("packets in", "packets/s", &|t| t.per_s(t.packets_in)));
        rows.push(row("packets out", "packets/s", &|t| t.per_s(t.packets_out)));
        rows.push(row("packets in per core", "packets/CPU-s", &|t| {
            t.in_per_core_s()
        }));
        rows.push(row("forwarder CPU", "cores busy", &|t| t.cores_busy()));
        rows.push(row("forwarder context switches", "per packet in", &|t| {
            t.switches_per_packet()
        }));
        rows.push(row("packets per receive call", "packets", &|t| {
            t.packets_per_receive()
        }));
        rows.push(row("delivered to receivers", "packets/s", &|t| {
            t.per_s(t.delivered)
        }));
        rows.push(row("lost on the way", "%", &|t| {
            (t.copies_expected > 0).then(|| 100.0 * t.copies_lost as f64 / t.copies_expected as f64)
        }));
    }
    Ok(rows)
}

/// Flow control shared by all senders and receivers of a case: a sender waits while
/// `WINDOW_COPIES` or more copies are sent and not yet read by a receiver.
struct Window {
    sent: AtomicU64,
    /// Datagrams read by receivers; each packet is delivered `fanout` times.
    delivered: AtomicU64,
    fanout: u64,
    /// Copies written off as lost after a stall.
    forgiven: AtomicU64,
    waiting: AtomicBool,
    room: Notify,
}

impl Window {
    fn new(fanout: u64) -> Window {
        Window {
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
        while self.in_flight() >= WINDOW_COPIES {
            let progress = self.delivered.load(SeqCst);
            let notified = self.room.notified();
            let mut notified = std::pin::pin!(notified);
            notified.as_mut().enable();
            self.waiting.store(true, SeqCst);
            if self.in_flight() < WINDOW_COPIES {
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
            && self.in_flight() < WINDOW_COPIES
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
}

impl Participant {
    /// A participant of meeting `meeting` with a socket of its own and a token unique to `n`.
    pub async fn new(n: usize, meeting: usize) -> Result<Participant, String> {
        let sock = UdpSocket::bind(loopback(0))
            .await
            .map_err(|e| format!("binding a participant's UDP socket: {e}"))?;
        Ok(Participant {
            sock: Arc::new(sock),
            meeting,
            token: format!("bench-token-{n:04}").into_bytes(),
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

enum Forwarder {
    Mmr(Isolated<Mmr>),
    Bare(Bare),
}

pub(crate) fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// Each participant's address, and those of the others of its meeting.
fn routes(participants: &[Participant]) -> Routes {
    participants
        .iter()
        .map(|p| {
            let others = participants
                .iter()
                .filter(|o| o.meeting == p.meeting && !Arc::ptr_eq(&o.sock, &p.sock));
            (
                p.sock.local_addr(),
                others.map(|o| o.sock.local_addr()).collect(),
            )
        })
        .collect()
}

impl Forwarder {
    async fn start(kind: Kind, participants: &[Participant]) -> Result<Forwarder, String> {
        match kind {
            Kind::Mmr => {
                let mmr = Isolated::start("bench-mmr", || async {
                    let mmr = Mmr::start(loopback(0), loopback(0))
                        .await
                        .expect("the MMR binds loopback ports");
                    // Metrics on, as in production, and scraped far more often than Prometheus
                    // would (every SCRAPE_MS), on the forwarder's own threads, so their cost
                    // lands in its CPU seconds.
                    let metrics = mc_node::metrics::Metrics::new("mmr");
                    mc_node::metrics::register_mmr(&metrics, mmr.clone(), 200);
                    mc_rt::spawn(async move {
                        loop {
                            mc_rt::sleep(Duration::from_millis(SCRAPE_MS)).await;
                            std::hint::black_box(metrics.render());
                        }
                    });
                    mmr
                })
                .await;
                for (i, p) in participants.iter().enumerate() {
                    mmr.value.apply(p.admit(i));
                }
                for (i, p) in participants.iter().enumerate() {
                    bind(p, i, mmr.value.udp_addr).await?;
                }
                Ok(Forwarder::Mmr(mmr))
            }
            Kind::Bare(batching) => Ok(Forwarder::Bare(
                bare::start(batching, routes(participants)).await,
            )),
        }
    }

    fn addr(&self) -> SocketAddr {
        match self {
            Forwarder::Mmr(m) => m.value.udp_addr,
            Forwarder::Bare(b) => b.value.0,
        }
    }

    /// Packets in, packets out and (for the bare forwarders) receive calls so far.
    fn counts(&self) -> (u64, u64, Option<u64>) {
        match self {
            Forwarder::Mmr(m) => {
                let c = m.value.counters();
                (c.rtp_in, c.rtp_out, None)
            }
            Forwarder::Bare(b) => (
                b.value.1.packets_in.load(Relaxed),
                b.value.1.packets_out.load(Relaxed),
                Some(b.value.1.receives.load(Relaxed)),
            ),
        }
    }

    fn cpu_ns(&self) -> Option<u64> {
        match self {
            Forwarder::Mmr(m) => m.cpu_ns(),
            Forwarder::Bare(b) => b.cpu_ns(),
        }
    }

    fn context_switches(&self) -> Option<u64> {
        match self {
            Forwarder::Mmr(m) => m.context_switches(),
            Forwarder::Bare(b) => b.context_switches(),
        }
    }

    async fn stop(self) {
        match self {
            Forwarder::Mmr(m) => drop(m.stop().await),
            Forwarder::Bare(b) => drop(b.stop().await),
        }
    }
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
async fn blast(
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

async fn receive(sock: Arc<UdpSocket>, window: Arc<Window>) {
    let mut buf = vec![0u8; 2048];
    loop {
        if sock.recv_from(&mut buf).await.is_ok() {
            window.delivered();
        }
    }
}

struct Snapshot {
    at: mc_rt::Instant,
    packets_in: u64,
    packets_out: u64,
    delivered: u64,
    cpu_ns: Option<u64>,
    context_switches: Option<u64>,
    receives: Option<u64>,
}

impl Snapshot {
    fn take(fwd: &Forwarder, window: &Window) -> Snapshot {
        let (packets_in, packets_out, receives) = fwd.counts();
        Snapshot {
            at: mc_rt::Instant::now(),
            packets_in,
            packets_out,
            receives,
            delivered: window.delivered.load(SeqCst),
            cpu_ns: fwd.cpu_ns(),
            context_switches: fwd.context_switches(),
        }
    }

    fn since(&self, earlier: &Snapshot) -> Throughput {
        Throughput {
            wall_s: (self.at - earlier.at).as_secs_f64(),
            packets_in: self.packets_in - earlier.packets_in,
            packets_out: self.packets_out - earlier.packets_out,
            delivered: self.delivered - earlier.delivered,
            copies_expected: 0,
            copies_lost: 0,
            cpu_ns: self
                .cpu_ns
                .zip(earlier.cpu_ns)
                .map(|(end, start)| end.saturating_sub(start)),
            context_switches: self
                .context_switches
                .zip(earlier.context_switches)
                .map(|(end, start)| end.saturating_sub(start)),
            receives: self
                .receives
                .zip(earlier.receives)
                .map(|(end, start)| end.saturating_sub(start)),
        }
    }
}

async fn measure(case: Case, kind: Kind, seconds: f64) -> Result<Throughput, String> {
    let mut participants = Vec::new();
    for i in 0..case.participants() {
        participants.push(Participant::new(i, i / case.meeting_size).await?);
    }
    let fwd = Forwarder::start(kind, &participants).await?;
    let to = fwd.addr();
    let stop = Arc::new(AtomicBool::new(false));
    let window = Arc::new(Window::new(case.meeting_size as u64 - 1));
    let receivers: Vec<_> = participants
        .iter()
        .map(|p| mc_rt::spawn(receive(p.sock.clone(), window.clone())))
        .collect();
    let senders: Vec<_> = participants
        .iter()
        .enumerate()
        .map(|(i, p)| {
            mc_rt::spawn(blast(
                p.sock.clone(),
                to,
                0x1000 + i as u32,
                window.clone(),
                stop.clone(),
            ))
        })
        .collect();

    mc_rt::sleep(Duration::from_millis(WARMUP_MS)).await;
    let start = Snapshot::take(&fwd, &window);
    mc_rt::sleep(Duration::from_secs_f64(seconds)).await;
    let end = Snapshot::take(&fwd, &window);

    stop.store(true, Relaxed);
    for s in senders {
        let _ = s.await;
    }
    mc_rt::sleep(Duration::from_millis(DRAIN_MS)).await;
    for r in receivers {
        r.abort();
    }
    fwd.stop().await;
    let copies_expected = window.sent.load(SeqCst) * window.fanout;
    let copies_lost = copies_expected.saturating_sub(window.delivered.load(SeqCst));
    Ok(Throughput {
        copies_expected,
        copies_lost,
        ..end.since(&start)
    })
}
