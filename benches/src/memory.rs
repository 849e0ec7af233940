//! MMR memory per participant: how much the process's resident memory grows as an MMR admits and
//! binds participants, beside what the load generator's own sockets for them cost.
//!
//! One MMR (`mc_node::mmr::Mmr::start`, on a runtime of its own as in the `mmr` benchmark, no
//! metrics registry) in this process. First it is warmed: one meeting of [`MEETING_SIZE`] is
//! admitted and bound and sends bursts until resident memory stops growing, so the receive loops'
//! batch buffers, the runtimes' and the allocator's first pages and the code's first use are paid
//! before anything is counted. Then, reading resident memory between steps:
//!
//! 1. the load generator opens one UDP socket per participant (the baseline: what the same number
//!    of bare sockets costs this process, with no MMR work at all);
//! 2. for each half of the participants in turn: the MMR is given one `Admit` each (as a ZC
//!    would), then each binds with a `Binding::Request` from its socket (the same exchange as in
//!    the `mmr` benchmark) and sends [`PACKETS_EACH`] RTP packets, which the MMR forwards to the
//!    others of its meeting.
//!
//! The MMR's figure is the growth over step 2 only, so the generator's sockets, opened before it,
//! are not charged to the MMR; what the generator does in step 2 (a request and a 2 KiB buffer per
//! binding, freed at once) reuses the same few allocations. Resident memory is `RssAnon` from
//! `/proc/self/status` (anonymous pages: the heap and stacks, not the binary's code as it pages
//! in). Socket buffers are kernel memory and appear in neither figure. Freed memory stays resident
//! for reuse, so this is measured once per process, before any other benchmark runs.

use crate::isolated::Isolated;
use crate::report::Row;
use crate::traffic::{bind, loopback, Participant, PAYLOAD_BYTES};
use mc_node::mmr::Mmr;
use mc_wire::rtp::RtpPacket;
use std::net::SocketAddr;
use std::time::Duration;

/// Participants per meeting.
pub const MEETING_SIZE: usize = 10;
/// RTP packets each participant sends once bound.
const PACKETS_EACH: u16 = 2;
/// Warm-up: bursts of this many packets per warm-up participant, sent back to back so that the
/// MMR's receive loops find full batches waiting …
const WARMUP_BURST: u16 = 64;
/// … repeated until a burst grows resident memory by less than this (or [`WARMUP_BURSTS_MAX`]).
const WARMUP_STEADY_KIB: u64 = 8;
const WARMUP_BURSTS_MAX: usize = 40;
/// Time for the MMR to finish with what was sent before memory is read.
const SETTLE_MS: u64 = 100;

/// Resident anonymous memory of this process, in KiB (`VmRSS` where `RssAnon` is not reported).
fn resident_kib() -> Result<u64, String> {
    let status = std::fs::read_to_string("/proc/self/status")
        .map_err(|e| format!("reading /proc/self/status: {e}"))?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    };
    field("RssAnon:")
        .or_else(|| field("VmRSS:"))
        .ok_or_else(|| "no RssAnon or VmRSS in /proc/self/status".into())
}

async fn settled_kib() -> Result<u64, String> {
    mc_rt::sleep(Duration::from_millis(SETTLE_MS)).await;
    resident_kib()
}

/// Sends `count` RTP packets from `p` to `to`, back to back.
async fn send_rtp(p: &Participant, to: SocketAddr, ssrc: u32, count: u16) {
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
    for seq in 0..count {
        packet[2..4].copy_from_slice(&seq.to_be_bytes());
        let _ = p.sock.send_to(&packet, to).await;
    }
}

pub async fn run(participants: usize) -> Result<Vec<Row>, String> {
    eprintln!(
        "memory: an MMR admits and binds {participants} participants in meetings of {MEETING_SIZE}"
    );
    let mmr = Isolated::start("bench-mmr", || async {
        Mmr::start(loopback(0), loopback(0))
            .await
            .expect("the MMR binds loopback ports")
    })
    .await;
    let to = mmr.value.udp_addr;

    // Warm-up meeting: numbered after the measured participants, meeting 0 (theirs start at 1).
    let mut warm = Vec::new();
    for i in 0..MEETING_SIZE {
        let p = Participant::new(participants + i, 0).await?;
        mmr.value.apply(p.admit(participants + i));
        bind(&p, participants + i, to).await?;
        warm.push(p);
    }
    let mut before = settled_kib().await?;
    let mut bursts = 0;
    while bursts < WARMUP_BURSTS_MAX {
        bursts += 1;
        for (i, p) in warm.iter().enumerate() {
            send_rtp(p, to, 0x100 + i as u32, WARMUP_BURST).await;
        }
        // The warm-up participants never read: what the MMR forwards to them fills their socket
        // buffers (kernel memory) and is then dropped by the kernel.
        let now = settled_kib().await?;
        let grew = now.saturating_sub(before);
        before = now;
        if grew < WARMUP_STEADY_KIB {
            break;
        }
    }
    let start = before;
    let warm_counts = mmr.value.counters();

    // Step 1: the generator's own sockets.
    let mut people = Vec::with_capacity(participants);
    for i in 0..participants {
        people.push(Participant::new(i, 1 + i / MEETING_SIZE).await?);
    }
    let sockets = settled_kib().await?;

    // Step 2, in two halves.
    let half = participants / 2;
    let (mut admitting, mut binding, mut halves) = (0, 0, Vec::new());
    let mut last = sockets;
    for range in [0..half, half..participants] {
        let n = range.len();
        for i in range.clone() {
            mmr.value.apply(people[i].admit(i));
        }
        let admitted = settled_kib().await?;
        // Each binding's round trip paces the packets, so the MMR's socket never overflows.
        for i in range {
            bind(&people[i], i, to).await?;
            send_rtp(&people[i], to, 0x10_0000 + i as u32, PACKETS_EACH).await;
        }
        let bound = settled_kib().await?;
        admitting += admitted.saturating_sub(last);
        binding += bound.saturating_sub(admitted);
        halves.push((bound.saturating_sub(last), n));
        last = bound;
    }
    let end_counts = mmr.value.counters();
    mmr.stop().await;
    drop((people, warm));
    let (bindings, packets_in, packets_out) = (
        end_counts.bindings - warm_counts.bindings,
        end_counts.rtp_in - warm_counts.rtp_in,
        end_counts.rtp_out - warm_counts.rtp_out,
    );
    eprintln!(
        "memory: warm-up {bursts} bursts; then {bindings} bindings, {packets_in} packets in, {packets_out} out"
    );
    let sent = participants as u64 * PACKETS_EACH as u64;
    if bindings < participants as u64 || packets_in < sent {
        return Err(format!(
            "the MMR counted {bindings} bindings and {packets_in} packets in, expected {participants} and {sent}"
        ));
    }

    let per_1000 = |kib: u64, n: usize| Some(kib as f64 * 1000.0 / n as f64);
    let row = |figure, unit, measured, baseline| {
        Row {
        bench: "memory",
        case: format!(
            "{participants} participants in meetings of {MEETING_SIZE}, each bound over UDP, {PACKETS_EACH} packets each"
        ),
        figure,
        unit,
        measured,
        baseline,
        baseline_name: "the load generator's own UDP sockets for them, no MMR work",
        second: None,
    }
    };
    Ok(vec![
        row(
            "resident memory per 1,000 participants",
            "KiB",
            per_1000(last.saturating_sub(sockets), participants),
            per_1000(sockets.saturating_sub(start), participants),
        ),
        row(
            "of which admitting (grants)",
            "KiB per 1,000",
            per_1000(admitting, participants),
            None,
        ),
        row(
            "of which binding and forwarding",
            "KiB per 1,000",
            per_1000(binding, participants),
            None,
        ),
        row(
            "first half alone",
            "KiB per 1,000",
            per_1000(halves[0].0, halves[0].1),
            None,
        ),
        row(
            "second half alone",
            "KiB per 1,000",
            per_1000(halves[1].0, halves[1].1),
            None,
        ),
        row("process before (MMR warm)", "KiB", Some(start as f64), None),
    ])
}
