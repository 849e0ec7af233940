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
//! (the first baseline), or as many per call as the MMR takes (`recvmmsg`, then `sendmmsg` with
//! each receiver's copies in one UDP GSO train: the seam's `send_many`, the second).
//! Same sockets, same senders, same receivers. The three alternate round by round. The MMR runs
//! with its metrics registry and is scraped every [`SCRAPE_MS`], so the ratios include what
//! metrics cost.
//!
//! Each forwarder runs on a runtime of its own ([`Isolated`]), so "per core" is packets in divided
//! by the CPU seconds of the forwarder's own threads, whatever the senders and receivers cost.

use crate::bare::{self, Bare, Batching, Routes};
use crate::isolated::Isolated;
use crate::report::{Baseline, Row};
use crate::traffic::{bind, loopback, run_traffic, Participant, Window, PAYLOAD_BYTES};
use mc_node::mmr::Mmr;
use std::net::SocketAddr;
use std::sync::atomic::Ordering::{Relaxed, SeqCst};
use std::sync::Arc;
use std::time::Duration;

/// How often the MMR's metrics are rendered during a measurement (Prometheus scrapes every 15 s
/// by default; this is 150 times as often).
const SCRAPE_MS: u64 = 100;

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
pub(crate) struct Throughput {
    pub wall_s: f64,
    pub packets_in: u64,
    pub packets_out: u64,
    /// Datagrams the participants' receive tasks read.
    pub delivered: u64,
    /// Copies that should have reached a receiver during the whole round (warm-up and drain
    /// included), and how many did not.
    pub copies_expected: u64,
    pub copies_lost: u64,
    /// Of the forwarder's threads.
    pub cpu_ns: Option<u64>,
    pub context_switches: Option<u64>,
    /// Receive calls that brought datagrams (the bare forwarders count them; the MMR does not).
    pub receives: Option<u64>,
}

impl Throughput {
    /// Several rounds as one: counts, wall time and CPU time add up.
    pub fn total(rounds: &[Throughput]) -> Throughput {
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

    pub fn per_s(&self, n: u64) -> Option<f64> {
        Some(n as f64 / self.wall_s)
    }

    pub fn in_per_core_s(&self) -> Option<f64> {
        let cpu_s = self.cpu_ns? as f64 / 1e9;
        (cpu_s > 0.0).then(|| self.packets_in as f64 / cpu_s)
    }

    pub fn switches_per_packet(&self) -> Option<f64> {
        let n = self.context_switches? as f64;
        (self.packets_in > 0).then(|| n / self.packets_in as f64)
    }

    fn packets_per_receive(&self) -> Option<f64> {
        let n = self.receives? as f64;
        (n > 0.0).then(|| self.packets_in as f64 / n)
    }

    pub fn cores_busy(&self) -> Option<f64> {
        Some(self.cpu_ns? as f64 / 1e9 / self.wall_s)
    }
}

pub async fn run(seconds: f64, rounds: usize) -> Result<Vec<Row>, String> {
    eprintln!("mmr: {}", crate::traffic::describe_window().await?);
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

enum Forwarder {
    Mmr(Isolated<Mmr>),
    Bare(Bare),
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

/// Turns `mmr`'s metrics on, as in production, and renders them far more often than Prometheus
/// would scrape them (every [`SCRAPE_MS`]). Call it on the forwarder's own runtime, so their cost
/// lands in its CPU seconds.
pub(crate) fn scrape_metrics(mmr: &Mmr) {
    let metrics = mc_node::metrics::Metrics::new("mmr");
    mc_node::metrics::register_mmr(&metrics, mmr.clone(), 200);
    mc_rt::spawn(async move {
        loop {
            mc_rt::sleep(Duration::from_millis(SCRAPE_MS)).await;
            std::hint::black_box(metrics.render());
        }
    });
}

impl Forwarder {
    async fn start(kind: Kind, participants: &[Participant]) -> Result<Forwarder, String> {
        match kind {
            Kind::Mmr => {
                let mmr = Isolated::start("bench-mmr", || async {
                    let mmr = Mmr::start(loopback(0), loopback(0))
                        .await
                        .expect("the MMR binds loopback ports");
                    scrape_metrics(&mmr);
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
    let t = run_traffic(
        &participants,
        |_| to,
        case.meeting_size as u64 - 1,
        seconds,
        |window| Snapshot::take(&fwd, window),
    )
    .await;
    fwd.stop().await;
    Ok(Throughput {
        copies_expected: t.copies_expected,
        copies_lost: t.copies_lost,
        ..t.end.since(&t.start)
    })
}
