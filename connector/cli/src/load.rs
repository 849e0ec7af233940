//! `connector load`: drives many real participants against a deployment — meetings ×
//! participants, a paced arrival rate, a stay duration and a media packet rate — shows a live
//! progress line on stderr and prints a report: join latency percentiles, rejections by reason,
//! paths in use and media per stream (`--json` for machines). Rejections are data, not errors: the
//! command succeeds whenever the load ran.

use anyhow::Context;
use clap::Args;
use mc_node::load::{self, LoadError, LoadProgress, LoadReport, LoadSpec};
use mc_node::EventLog;
use std::io::{IsTerminal, Write};

/// Streams listed one by one in the table; beyond this the worst are shown and `--json` has all.
const MAX_STREAM_ROWS: usize = 40;
const WORST_STREAM_ROWS: usize = 20;

#[derive(Args, Debug)]
pub struct LoadArgs {
    #[command(flatten)]
    access: crate::roles::CloudAccess,
    /// Meetings to create and fill.
    #[arg(long, default_value_t = LoadSpec::default().meetings)]
    meetings: u32,
    /// Participants that join each meeting.
    #[arg(long, visible_alias = "participants", default_value_t = LoadSpec::default().participants_per_meeting)]
    participants_per_meeting: u32,
    /// Participants of each meeting that send media, spread evenly over its arrival order (the
    /// first to arrive speaks); the others listen with their microphone muted. Default: everyone.
    #[arg(long)]
    speakers: Option<u32>,
    /// Joins started per second, paced evenly (participants arrive round-robin over the meetings).
    #[arg(long, default_value_t = LoadSpec::default().arrivals_per_s)]
    arrivals_per_s: f64,
    /// How long each participant stays in its meeting, in milliseconds.
    #[arg(long, default_value_t = LoadSpec::default().duration_ms)]
    duration_ms: u64,
    /// RTP packets each participant sends per second (real audio is 50).
    #[arg(long, visible_alias = "pps", default_value_t = LoadSpec::default().media_packets_per_s)]
    media_packets_per_s: u32,
    /// RTP payload size in bytes.
    #[arg(long, default_value_t = LoadSpec::default().payload_bytes)]
    payload_bytes: usize,
    /// Seed for every participant's random choices; a fresh one when absent (the report prints it).
    #[arg(long)]
    seed: Option<u64>,
    /// Meeting topics and display names start with this.
    #[arg(long, default_value_t = LoadSpec::default().name_prefix)]
    name_prefix: String,
    /// Print the final report as JSON on stdout, and no progress line.
    #[arg(long)]
    json: bool,
}

pub async fn run(args: LoadArgs, log: crate::logging::Logging) -> anyhow::Result<()> {
    let spec = LoadSpec {
        meetings: args.meetings,
        participants_per_meeting: args.participants_per_meeting,
        speakers_per_meeting: args.speakers,
        arrivals_per_s: args.arrivals_per_s,
        duration_ms: args.duration_ms,
        media_packets_per_s: args.media_packets_per_s,
        payload_bytes: args.payload_bytes,
        seed: args.seed.unwrap_or_else(mc_rt::fresh_seed),
        name_prefix: args.name_prefix,
    };
    spec.validate()?;
    let base = args.access.client_config(log)?;
    let ca = args.access.ca()?;
    // Each participant holds several sockets.
    crate::roles::raise_open_file_limit();

    // A progress line a second is for a person: not in a JSON log (the report has it all).
    let show_progress = !args.json && !log.is_json();
    let on_terminal = std::io::stderr().is_terminal();
    if !args.json {
        log.say(tracing::Level::INFO, &describe(&spec));
    }
    let stop = async {
        match mc_rt::ctrl_c().await {
            Ok(()) => log.say(
                tracing::Level::INFO,
                if on_terminal && show_progress {
                    "\nstopping: participants are leaving; the report follows"
                } else {
                    "stopping: participants are leaving; the report follows"
                },
            ),
            // Without a signal handler there is no Ctrl-C to wait for; the load runs its course.
            Err(_) => std::future::pending().await,
        }
    };
    let progress = |p: &LoadProgress| {
        if !show_progress {
            return;
        }
        let mut err = std::io::stderr().lock();
        // On a terminal the line overwrites itself; in a log each second gets its own line.
        let _ = if on_terminal {
            write!(err, "\r{}\x1b[K", progress_line(p))
        } else {
            writeln!(err, "{}", progress_line(p))
        };
        let _ = err.flush();
    };
    let result = load::run(
        spec,
        base,
        ca,
        EventLog::tracing_only("load"),
        stop,
        progress,
    )
    .await;
    if show_progress && on_terminal {
        eprintln!();
    }
    let report = match result {
        Ok(r) => r,
        // A bad participant configuration is the operator's to fix (exit code 2).
        Err(LoadError::Config(e)) => return Err(e).context("the client configuration (--config)"),
        Err(e) => return Err(e).context("the load did not run"),
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", render(&report));
    }
    Ok(())
}

fn describe(spec: &LoadSpec) -> String {
    let speakers = match spec.speakers_per_meeting {
        Some(n) => format!(" ({n} speaking)"),
        None => String::new(),
    };
    format!(
        "load: {} meetings × {} participants{speakers}, {} joins/s, {} ms each, {} RTP packets/s of {} bytes, seed {}",
        spec.meetings, spec.participants_per_meeting, spec.arrivals_per_s, spec.duration_ms, spec.media_packets_per_s, spec.payload_bytes, spec.seed
    )
}

fn progress_line(p: &LoadProgress) -> String {
    let mut line = format!(
        "[{:>4}s] started {}/{}  in meetings {}  joining {}  rejected {}  failed {}  left {}",
        p.elapsed_ms / 1000,
        p.started,
        p.planned,
        p.joined,
        p.active.saturating_sub(p.joined),
        p.rejected,
        p.failed,
        p.left
    );
    if p.packets_sent > 0 || p.packets_received > 0 {
        line += &format!(
            "  RTP sent {} received {}",
            p.packets_sent, p.packets_received
        );
    }
    line
}

fn counts<K: std::fmt::Display>(m: &std::collections::BTreeMap<K, u64>) -> String {
    if m.is_empty() {
        return "none".into();
    }
    m.iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The human-readable report: a few summary lines, then per meeting, then per stream.
fn render(r: &LoadReport) -> String {
    use std::fmt::Write as _;
    let mut o = String::new();
    let j = &r.joins;
    let _ = writeln!(o, "\n{}", describe(&r.spec));
    let meetings = r
        .meetings
        .iter()
        .map(|m| m.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let _ = writeln!(
        o,
        "ran {:.2} s on meetings {meetings}{}",
        r.wall_ms as f64 / 1000.0,
        if r.stopped_early {
            " (stopped early)"
        } else {
            ""
        }
    );
    let _ = writeln!(o);
    let _ = writeln!(
        o,
        "joins          planned {}  attempted {}  admitted {}  rejected {}  failed {}",
        j.planned, j.attempted, j.admitted, j.rejected, j.failed
    );
    match &r.join_latency_ms {
        Some(l) => {
            let _ = writeln!(
                o,
                "join latency   p50 {} ms  p90 {} ms  p99 {} ms  max {} ms  (min {} ms, {} joins)",
                l.p50, l.p90, l.p99, l.max, l.min, l.count
            );
        }
        None => {
            let _ = writeln!(o, "join latency   no participant was admitted");
        }
    }
    let _ = writeln!(o, "rejections     {}", counts(&r.rejections));
    let _ = writeln!(o, "failures       {}", counts(&r.failures));
    for (what, example) in &r.examples {
        let _ = writeln!(o, "  {what}: {example}");
    }
    let _ = writeln!(o, "media paths    {}", counts(&r.media_paths));
    let _ = writeln!(
        o,
        "signalling     {}",
        if r.signalling_ports.is_empty() {
            "none".into()
        } else {
            r.signalling_ports
                .iter()
                .map(|(p, n)| format!("port {p}: {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        }
    );
    let _ = writeln!(o, "controllers    {}", counts(&r.controllers));
    if r.ended_early > 0 || r.rejoins > 0 {
        let _ = writeln!(
            o,
            "sessions       {} ended early, {} automatic rejoins",
            r.ended_early, r.rejoins
        );
    }
    let m = &r.media;
    let _ = writeln!(
        o,
        "media          RTP sent {}  received {}  lost {} ({:.2} %)  silent streams {}  foreign packets {}  malformed {}",
        m.sent, m.received, m.lost, m.loss_percent, m.silent_streams, m.foreign_packets, m.malformed
    );
    if let Some(g) = &m.longest_gap_ms {
        let _ = writeln!(
            o,
            "longest gaps   p50 {} ms  p90 {} ms  p99 {} ms  max {} ms  (each stream's longest silence, {} streams)",
            g.p50, g.p90, g.p99, g.max, g.count
        );
    }

    let _ = writeln!(
        o,
        "\n{:<10} {:>9} {:>9} {:>9} {:>7}",
        "meeting", "attempted", "admitted", "rejected", "failed"
    );
    for pm in &r.per_meeting {
        let _ = writeln!(
            o,
            "{:<10} {:>9} {:>9} {:>9} {:>7}",
            pm.meeting.to_string(),
            pm.attempted,
            pm.admitted,
            pm.rejected,
            pm.failed
        );
    }

    if !m.streams.is_empty() {
        let mut rows: Vec<_> = m.streams.iter().collect();
        let title = if rows.len() > MAX_STREAM_ROWS {
            // Worst first: most loss, then least received.
            rows.sort_by(|a, b| {
                b.loss_percent
                    .total_cmp(&a.loss_percent)
                    .then(a.received.cmp(&b.received))
            });
            rows.truncate(WORST_STREAM_ROWS);
            format!(
                "the {WORST_STREAM_ROWS} worst of {} streams (--json lists all)",
                m.streams.len()
            )
        } else {
            format!("{} streams", m.streams.len())
        };
        let width = rows
            .iter()
            .map(|s| s.receiver.len().max(s.source.len()))
            .max()
            .unwrap_or(0)
            .max(8);
        let _ = writeln!(o, "\n{title}");
        let _ = writeln!(
            o,
            "{:<width$}    {:<width$} {:>8} {:>9} {:>6} {:>7} {:>11}",
            "receiver", "source", "sent", "received", "lost", "loss %", "max gap ms"
        );
        for s in rows {
            let _ = writeln!(
                o,
                "{:<width$} <- {:<width$} {:>8} {:>9} {:>6} {:>7.2} {:>11}",
                s.receiver,
                s.source,
                s.source_sent,
                s.received,
                s.lost,
                s.loss_percent,
                s.longest_gap_ms
            );
        }
    }
    o
}
