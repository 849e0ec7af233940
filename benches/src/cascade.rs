//! Cascade cost: one meeting of ten (fan-out 9) on one MMR, against the same meeting split five
//! and five over two MMRs joined by a real cascade link, in the same run, round by round.
//!
//! Both layouts run the production MMR (`mc_node::mmr::Mmr`) with cascades served
//! ([`Mmr::serve_cascades`]: its cascade port on loopback, mutual TLS with certificates from
//! `mc_node::identities::generate`), each MMR on a runtime of its own ([`Isolated`]), with the
//! same load generator as the `mmr` benchmark ([`crate::traffic`]). In the cascaded layout each
//! MMR is told, as a ZC would (`MmrCommand::Cascade`), that the other carries the meeting too;
//! they link (`mc-cascade/1` over TLS on TCP), and each participant's packet goes to the four
//! others on its MMR and once over the link, where the other MMR sends it to its five.
//!
//! "Packets in" are the packets the participants sent (each entered exactly one MMR from a
//! participant; the "lost" row shows that nothing was dropped), so both layouts count the same
//! thing; "per core" divides them by the CPU seconds of every MMR's threads together.

use crate::isolated::Isolated;
use crate::mmr::{scrape_metrics, Throughput};
use crate::report::Row;
use crate::traffic::{bind, loopback, run_traffic, Participant, Window, PAYLOAD_BYTES};
use mc_core::zc::MmrCommand;
use mc_node::mmr::Mmr;
use mc_rt::tls::Identity;
use mc_wire::link::CascadePeer;
use mc_wire::rtp::RtpPacket;
use mc_wire::{MeetingId, MmrId};
use std::sync::atomic::Ordering::SeqCst;
use std::time::Duration;

/// Participants of the one meeting: fan-out 9, the `mmr` benchmark's largest case.
const MEETING_SIZE: usize = 10;
/// Of them, on the first MMR when the meeting is cascaded; the rest are on the second.
const ON_FIRST_MMR: usize = 5;
/// The two MMRs, named as their certificates name them.
const MMR_IDS: [&str; 2] = ["mmr-1", "mmr-2"];
/// How long the link may take to carry a packet each way before the round gives up.
const LINK_UP_MS: u64 = 5_000;
/// One probe's wait for its copy on the other MMR, and the quiet that ends a socket's drain.
const PROBE_MS: u64 = 50;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    OneMmr,
    Cascaded,
}

impl Layout {
    /// Which MMR participant `n` is on.
    fn mmr_of(self, n: usize) -> usize {
        match self {
            Layout::OneMmr => 0,
            Layout::Cascaded => usize::from(n >= ON_FIRST_MMR),
        }
    }

    fn mmrs(self) -> usize {
        match self {
            Layout::OneMmr => 1,
            Layout::Cascaded => 2,
        }
    }
}

/// What the MMRs of one layout did during the measured window. In `t`, `packets_in` are the
/// participants' packets, `packets_out` every MMR's sends (to participants and onto the link)
/// and the CPU that of every MMR's threads.
#[derive(Debug, Clone, Copy)]
struct Measured {
    t: Throughput,
    /// Packets every MMR received, summed (`rtp_in`): from its participants and from the link.
    received: u64,
}

pub async fn run(seconds: f64, rounds: usize) -> Result<Vec<Row>, String> {
    eprintln!("cascade: {}", crate::traffic::describe_window().await?);
    let round_s = seconds / rounds as f64;
    let label = format!(
        "1 meeting of {MEETING_SIZE} over UDP, {PAYLOAD_BYTES}-byte payload: {ON_FIRST_MMR} + {} on two cascaded MMRs against all on one",
        MEETING_SIZE - ON_FIRST_MMR
    );
    eprintln!("cascade: {label}: {rounds} rounds of {round_s:.2} s each, one MMR and two in turn");
    let identities = identities()?;
    let (mut one, mut two) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        // Alternate which goes first, so a change in the machine's load falls on both alike.
        let order = if round % 2 == 0 {
            [Layout::OneMmr, Layout::Cascaded]
        } else {
            [Layout::Cascaded, Layout::OneMmr]
        };
        for layout in order {
            let m = measure(layout, &identities, round_s).await?;
            match layout {
                Layout::OneMmr => one.push(m),
                Layout::Cascaded => two.push(m),
            }
        }
    }
    let total = |ms: &[Measured]| Measured {
        t: Throughput::total(&ms.iter().map(|m| m.t).collect::<Vec<_>>()),
        received: ms.iter().map(|m| m.received).sum(),
    };
    let (one, two) = (total(&one), total(&two));
    let row = |figure, unit, f: &dyn Fn(&Measured) -> Option<f64>| Row {
        bench: "cascade",
        case: label.clone(),
        figure,
        unit,
        measured: f(&two),
        baseline: f(&one),
        baseline_name: "the same meeting, all on one MMR",
        second: None,
    };
    let per_packet_in =
        |n: u64, t: &Throughput| (t.packets_in > 0).then(|| n as f64 / t.packets_in as f64);
    Ok(vec![
        row("packets in", "packets/s", &|m| m.t.per_s(m.t.packets_in)),
        row("packets in per core", "packets/CPU-s", &|m| {
            m.t.in_per_core_s()
        }),
        row("CPU per packet in", "µs", &|m| {
            m.t.in_per_core_s().map(|r| 1e6 / r)
        }),
        row("MMR CPU, all MMRs", "cores busy", &|m| m.t.cores_busy()),
        row("MMR context switches", "per packet in", &|m| {
            m.t.switches_per_packet()
        }),
        row("copies delivered", "per packet in", &|m| {
            per_packet_in(m.t.delivered, &m.t)
        }),
        row("MMR receptions (rtp_in)", "per packet in", &|m| {
            per_packet_in(m.received, &m.t)
        }),
        row("MMR sends (rtp_out)", "per packet in", &|m| {
            per_packet_in(m.t.packets_out, &m.t)
        }),
        row("lost on the way", "%", &|m| {
            (m.t.copies_expected > 0)
                .then(|| 100.0 * m.t.copies_lost as f64 / m.t.copies_expected as f64)
        }),
    ])
}

/// Certificates for the two MMRs (an MMR's names its id, which the other checks).
fn identities() -> Result<[Identity; 2], String> {
    let hosts = MMR_IDS.map(|id| (id, vec!["127.0.0.1".to_string()]));
    let ids =
        mc_node::identities::generate("bench", &hosts, 7, mc_rt::unix_now_ms() as i64 / 1000, 1)
            .map_err(|e| format!("generating certificates: {e}"))?;
    let identity = |name| {
        ids.identity(name)
            .map_err(|e| format!("certificate of {name}: {e}"))
    };
    Ok([identity(MMR_IDS[0])?, identity(MMR_IDS[1])?])
}

/// An MMR on a runtime of its own, serving its cascade port: the MMR and that port.
async fn start_mmr(id: &str, identity: &Identity) -> Isolated<(Mmr, u16)> {
    let (id, identity) = (MmrId(id.to_string()), identity.clone());
    Isolated::start("bench-cascade-mmr", move || async move {
        let mmr = Mmr::start(loopback(0), loopback(0))
            .await
            .expect("the MMR binds loopback ports");
        scrape_metrics(&mmr);
        let listener = mc_rt::net::TcpListener::bind(loopback(0))
            .await
            .expect("the MMR binds a loopback cascade port");
        let port = listener.local_addr().expect("bound").port();
        let c = mc_node::config::MmrConfig::default();
        mmr.serve_cascades(
            id,
            &identity,
            listener,
            c.conn_caps(),
            c.connect_timeout_ms,
            c.handshake_timeout_ms,
        )
        .expect("the generated certificates make TLS configurations");
        (mmr, port)
    })
    .await
}

async fn measure(
    layout: Layout,
    identities: &[Identity; 2],
    seconds: f64,
) -> Result<Measured, String> {
    let mut participants = Vec::new();
    for n in 0..MEETING_SIZE {
        participants.push(Participant::new(n, 0).await?);
    }
    // One after the other: each runtime's threads are told apart by when they appeared.
    let mut mmrs = Vec::new();
    for i in 0..layout.mmrs() {
        mmrs.push(start_mmr(MMR_IDS[i], &identities[i]).await);
    }
    let addr_of = |n: usize| mmrs[layout.mmr_of(n)].value.0.udp_addr;
    for (n, p) in participants.iter().enumerate() {
        mmrs[layout.mmr_of(n)].value.0.apply(p.admit(n));
        bind(p, n, addr_of(n)).await?;
    }
    if layout == Layout::Cascaded {
        link(&mmrs, &participants).await?;
    }

    let t = run_traffic(
        &participants,
        addr_of,
        MEETING_SIZE as u64 - 1,
        seconds,
        |window| Snapshot::take(&mmrs, window),
    )
    .await;
    for m in mmrs {
        drop(m.stop().await);
    }
    let mut m = t.end.since(&t.start);
    m.t.copies_expected = t.copies_expected;
    m.t.copies_lost = t.copies_lost;
    Ok(m)
}

/// Tells each MMR that the other carries the meeting too, as a ZC would, and waits until a
/// packet crosses the link each way; then empties the participants' sockets of the probes'
/// copies, so the measurement counts only its own.
async fn link(mmrs: &[Isolated<(Mmr, u16)>], participants: &[Participant]) -> Result<(), String> {
    for (i, m) in mmrs.iter().enumerate() {
        let other = 1 - i;
        m.value.0.apply(MmrCommand::Cascade {
            meeting: MeetingId(1),
            peers: vec![CascadePeer {
                mmr: MmrId(MMR_IDS[other].to_string()),
                host: "127.0.0.1".into(),
                port: mmrs[other].value.1,
                fallback_port: mmrs[other].value.1,
            }],
        });
    }
    let (first, second) = (&participants[0], &participants[ON_FIRST_MMR]);
    probe(first, mmrs[0].value.0.udp_addr, second).await?;
    probe(second, mmrs[1].value.0.udp_addr, first).await?;
    for p in participants {
        drain(p).await;
    }
    Ok(())
}

/// Sends RTP from `from` through its MMR at `mmr` until a copy reaches `to`, on the other MMR.
async fn probe(
    from: &Participant,
    mmr: std::net::SocketAddr,
    to: &Participant,
) -> Result<(), String> {
    let packet = RtpPacket {
        marker: false,
        payload_type: 111,
        sequence: 0,
        timestamp: 0,
        ssrc: 0xcafe,
        csrc: Vec::new(),
        payload: vec![0; PAYLOAD_BYTES],
    }
    .encode();
    let mut buf = vec![0u8; 2048];
    let deadline = mc_rt::Instant::now() + Duration::from_millis(LINK_UP_MS);
    while mc_rt::Instant::now() < deadline {
        from.sock
            .send_to(&packet, mmr)
            .await
            .map_err(|e| format!("sending a probe: {e}"))?;
        let heard = mc_rt::timeout(Duration::from_millis(PROBE_MS), to.sock.recv_from(&mut buf));
        if matches!(heard.await, Ok(Ok(_))) {
            return Ok(());
        }
    }
    Err(format!(
        "the cascade link carried no packet within {LINK_UP_MS} ms"
    ))
}

/// Reads whatever `p`'s socket holds until it has been quiet for [`PROBE_MS`].
async fn drain(p: &Participant) {
    let mut buf = vec![0u8; 2048];
    let quiet = Duration::from_millis(PROBE_MS);
    while let Ok(Ok(_)) = mc_rt::timeout(quiet, p.sock.recv_from(&mut buf)).await {}
}

struct Snapshot {
    at: mc_rt::Instant,
    sent: u64,
    delivered: u64,
    received: u64,
    forwarded: u64,
    cpu_ns: Option<u64>,
    context_switches: Option<u64>,
}

impl Snapshot {
    fn take(mmrs: &[Isolated<(Mmr, u16)>], window: &Window) -> Snapshot {
        let counters: Vec<_> = mmrs.iter().map(|m| m.value.0.counters()).collect();
        Snapshot {
            at: mc_rt::Instant::now(),
            sent: window.sent.load(SeqCst),
            delivered: window.delivered.load(SeqCst),
            received: counters.iter().map(|c| c.rtp_in).sum(),
            forwarded: counters.iter().map(|c| c.rtp_out).sum(),
            cpu_ns: mmrs.iter().map(|m| m.cpu_ns()).sum(),
            context_switches: mmrs.iter().map(|m| m.context_switches()).sum(),
        }
    }

    fn since(&self, earlier: &Snapshot) -> Measured {
        let diff = |end: Option<u64>, start: Option<u64>| {
            end.zip(start).map(|(end, start)| end.saturating_sub(start))
        };
        Measured {
            t: Throughput {
                wall_s: (self.at - earlier.at).as_secs_f64(),
                packets_in: self.sent - earlier.sent,
                packets_out: self.forwarded - earlier.forwarded,
                delivered: self.delivered - earlier.delivered,
                copies_expected: 0,
                copies_lost: 0,
                cpu_ns: diff(self.cpu_ns, earlier.cpu_ns),
                context_switches: diff(self.context_switches, earlier.context_switches),
                receives: None,
            },
            received: self.received - earlier.received,
        }
    }
}
