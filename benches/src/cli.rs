//! Arguments become validated settings, the chosen benchmarks run on one runtime, and the results
//! are printed once, as a table or as JSON. Progress goes to stderr so `--json` output stays clean.

use crate::report::{self, Row, RunInfo};
use crate::{cascade, crypto, join, memory, mmr};
use clap::{Parser, ValueEnum};
use serde_json::json;
use std::process::ExitCode;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Which {
    /// MMR forwarding throughput, beside a bare UDP forwarder and a batched one.
    Mmr,
    /// What cascading costs: one meeting of ten split five and five over two linked MMRs,
    /// beside the same meeting on one MMR.
    Cascade,
    /// MMR resident memory per 1,000 participants, beside the load generator's own sockets.
    Memory,
    /// Join throughput and latency, beside a bare TLS connect and round trip.
    Join,
    /// Per-packet cost of sealing and opening media and of signing and verifying a binding,
    /// beside `ring`'s raw AES-256-GCM and HMAC-SHA256.
    Crypto,
    /// All five (about 55 s with the defaults; memory first, while the process is fresh).
    All,
}

/// Benchmarks of the meeting connector over real loopback sockets; each figure is printed
/// beside a baseline measured in the same run.
#[derive(Debug, Parser)]
#[command(name = "bench")]
struct Args {
    #[arg(value_enum, default_value = "all")]
    which: Which,
    /// Measured wall time of each MMR case, for the MMR and for its baseline each (of the
    /// cascade benchmark, for each layout), split over
    /// the rounds (each round has 0.2 s of unmeasured warm-up besides); of each crypto case,
    /// for the system and its baseline together.
    #[arg(long, default_value_t = 3.0)]
    seconds: f64,
    /// Rounds per case; the system and its baseline alternate round by round, so a change in the
    /// machine's load falls on both alike.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Joins to measure, and TLS round trips for their baseline.
    #[arg(long, default_value_t = 1000)]
    joins: usize,
    /// Joins (and baseline round trips) in flight at once.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Participants the MMR admits and binds in the memory benchmark.
    #[arg(long, default_value_t = 2000)]
    participants: usize,
    /// Print the results as JSON instead of a table.
    #[arg(long)]
    json: bool,
}

fn validate(a: &Args) -> Result<(), String> {
    if !(a.seconds > 0.0 && a.seconds <= 600.0) {
        return Err(format!(
            "--seconds {} must be more than 0 and at most 600",
            a.seconds
        ));
    }
    if !(1..=20).contains(&a.rounds) {
        return Err(format!("--rounds {} must be 1 to 20", a.rounds));
    }
    if a.joins < a.rounds || a.joins > 1_000_000 {
        return Err(format!(
            "--joins {} must be at least --rounds ({}) and at most 1000000",
            a.joins, a.rounds
        ));
    }
    if !(1..=join::CONCURRENCY_MAX).contains(&a.concurrency) {
        return Err(format!(
            "--concurrency {} must be 1 to {}: each join in flight holds a participant place on the controller's MMR",
            a.concurrency,
            join::CONCURRENCY_MAX
        ));
    }
    if !(100..=100_000).contains(&a.participants) {
        return Err(format!(
            "--participants {} must be 100 to 100000",
            a.participants
        ));
    }
    Ok(())
}

pub fn main() -> ExitCode {
    let args = Args::parse();
    if let Err(e) = validate(&args) {
        eprintln!("bench: {e}");
        return ExitCode::from(2);
    }
    let load_before = report::load_average();
    let result: Result<Vec<Row>, String> = mc_rt::block_on(async {
        let mut rows = Vec::new();
        // First: resident memory says most in a process that has not yet freed anything.
        if matches!(args.which, Which::Memory | Which::All) {
            rows.extend(memory::run(args.participants).await?);
        }
        if matches!(args.which, Which::Mmr | Which::All) {
            rows.extend(mmr::run(args.seconds, args.rounds).await?);
        }
        if matches!(args.which, Which::Cascade | Which::All) {
            rows.extend(cascade::run(args.seconds, args.rounds).await?);
        }
        if matches!(args.which, Which::Crypto | Which::All) {
            rows.extend(crypto::run(args.seconds, args.rounds));
        }
        if matches!(args.which, Which::Join | Which::All) {
            rows.extend(
                join::run(&join::Settings {
                    joins: args.joins,
                    concurrency: args.concurrency,
                    rounds: args.rounds,
                })
                .await?,
            );
        }
        Ok(rows)
    });
    let rows = match result {
        Ok(rows) => rows,
        Err(e) => {
            eprintln!("bench: {e}");
            return ExitCode::FAILURE;
        }
    };
    let info = RunInfo {
        cores: std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        load_before,
        load_after: report::load_average(),
        settings: json!({
            "which": format!("{:?}", args.which).to_lowercase(),
            "seconds": args.seconds,
            "joins": args.joins,
            "concurrency": args.concurrency,
            "rounds": args.rounds,
            "participants": args.participants,
            "payload_bytes": crate::traffic::PAYLOAD_BYTES,
        }),
        notes: notes(args.which),
    };
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report::json(&info, &rows))
                .expect("JSON values serialize")
        );
    } else {
        print!("{}", report::table(&info, &rows));
    }
    ExitCode::SUCCESS
}

fn notes(which: Which) -> Vec<String> {
    let mut notes = vec![
        "ratio = measured / baseline; a figure on its own says little on a shared machine."
            .to_string(),
    ];
    if matches!(which, Which::Mmr | Which::All) {
        notes.push(
            "mmr: each forwarder runs on its own runtime; per core = packets in / CPU seconds of that runtime's threads \
             (/proc/self/task/*/schedstat); senders and receivers run on another runtime in this process and are not counted. \
             ratio = MMR / bare, ratio 2 = MMR / batched bare, 2 / 1 = batched bare / bare. \
             mmr and cascade: the senders keep at most 1,024 copies in flight when every socket gets the MMR's 4 MiB \
             buffers, 96 when the kernel caps them (net.core.rmem_max, wmem_max); the first line of progress says which."
                .into(),
        );
    }
    if matches!(which, Which::Cascade | Which::All) {
        notes.push(
            "cascade: measured = the meeting split over two MMRs linked by a cascade link (mutual TLS on loopback), \
             baseline = the same meeting on one MMR; both MMRs serve cascades, each on its own runtime. packets in = \
             packets the participants sent (each enters one MMR); per core = packets in / CPU seconds of every MMR's \
             threads together. A cascaded packet is received twice (its MMR, then the other from the link) and sent \
             once more (onto the link)."
                .into(),
        );
    }
    if matches!(which, Which::Memory | Which::All) {
        notes.push(
            "memory: growth of this process's resident anonymous memory (RssAnon) while the MMR admits, then binds and \
             forwards for, the participants, after a warm-up; the baseline is the growth while the load generator opened \
             their sockets, before the MMR knew of them. Measured once, not in rounds: freed memory stays resident."
                .into(),
        );
    }
    if matches!(which, Which::Join | Which::All) {
        notes.push(
            "join: a join makes two full TLS 1.3 handshakes (cloud HTTPS, then ZC signalling), so TLS alone caps joins/s \
             near half the baseline's rate; CPU per op is the whole process (client, cloud and controller all run here)."
                .into(),
        );
    }
    if matches!(which, Which::Crypto | Which::All) {
        notes.push(
            "crypto: costs are CPU time of the measuring thread, median over the rounds; per core = 1 CPU-s / cost. \
             MediaCrypto is the client's whole path (header parse, rollover counter, replay window, a new packet each way); \
             the baseline is ring's AES-256-GCM in place with no associated data and no allocation."
                .into(),
        );
    }
    notes
}
