//! The scenario runner's command line (`ci/scenario`).

use crate::pool::{Pool, SeedFiles};
use crate::report::{markdown, ScenarioSummary};
use crate::run::run_seed;
use crate::scenario::{Scenario, ScenarioError};
use crate::sweep::merge::{merge, shard_files, MergeError};
use crate::sweep::{Build, Header, ScenarioEntry, Shard, ShardWriter, FORMAT};
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "scenario",
    about = "Run meeting-connector scenarios in deterministic simulation, over many seeds"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run scenarios over seeds; print a summary; keep failing seeds' event logs.
    ///
    /// Writes to --out: every seed's result (shard-1-of-1.jsonl, or shard-K-of-N.jsonl with
    /// --shard), report.md and report.json (not for one shard of several: `merge` writes those),
    /// and the failing seeds' event logs.
    Run {
        /// Scenario files (TOML).
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Seeds as A..=B (inclusive), e.g. 1..=20.
        #[arg(long, default_value = "1..=5", conflicts_with = "seed")]
        seeds: String,
        /// One seed (to replay a failure).
        #[arg(long)]
        seed: Option<u64>,
        /// Seeds run at once (default: the machine's cores).
        #[arg(long)]
        jobs: Option<usize>,
        /// Where reports and failing seeds' event logs go.
        #[arg(long, default_value = "target/scenarios")]
        out: PathBuf,
        /// Print the JSON report on stdout instead of the Markdown table.
        #[arg(long)]
        json: bool,
        /// Keep every seed's event log in --out, not only failing seeds'.
        #[arg(long)]
        keep_logs: bool,
        /// Also run each scenario's regression seeds (`regression_seeds`: seeds that once
        /// failed).
        #[arg(long)]
        regressions: bool,
        /// Wall-clock seconds one seed may take; a seed still running then is reported as hung
        /// (a livelock or a stuck simulation), with its event log so far, and the run goes on.
        #[arg(long, default_value_t = 600)]
        seed_budget_s: u64,
        /// Run only shard K of N of the sweep (1 ≤ K ≤ N): (scenario, seed) pairs are dealt
        /// round-robin, so N shards on N machines share the work evenly. Each shard writes
        /// shard-K-of-N.jsonl to --out; `merge` puts the shards back together.
        #[arg(long, value_name = "K/N")]
        shard: Option<Shard>,
    },
    /// Merge the shards of a sweep into the report one run over all its seeds would write.
    ///
    /// Refuses (exit status 2) shards of different builds, scenarios or seeds, and names every
    /// missing or repeated shard and seed. Writes report.md and report.json to --out, with the
    /// failing seeds' event logs copied from beside their shard files. Exit status 1 when some
    /// seed failed.
    Merge {
        /// Shard files (shard-K-of-N.jsonl), or directories searched for them.
        #[arg(required = true)]
        inputs: Vec<PathBuf>,
        /// Where the report goes.
        #[arg(long, default_value = "target/scenarios-merged")]
        out: PathBuf,
        /// Print the JSON report on stdout instead of the Markdown table.
        #[arg(long)]
        json: bool,
    },
    /// Run one seed in this process and print its result as JSON (what `run` starts for each
    /// seed, so that a crash or hang in one seed costs no other seed its result).
    #[command(hide = true)]
    Worker(crate::pool::WorkerArgs),
    /// Run one seed twice and compare the hashes of the application event logs.
    Determinism {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Print the plan a seed derives (swarm scenarios vary by seed).
    Plan {
        file: PathBuf,
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
}

fn parse_seeds(s: &str) -> Result<Vec<u64>, String> {
    let (a, b) = s
        .split_once("..=")
        .ok_or_else(|| format!("--seeds {s:?}: expected A..=B"))?;
    let (a, b): (u64, u64) = (
        a.trim().parse().map_err(|e| format!("--seeds: {e}"))?,
        b.trim().parse().map_err(|e| format!("--seeds: {e}"))?,
    );
    if a > b || b - a > 100_000 {
        return Err(format!(
            "--seeds {s:?}: A must be ≤ B and the range at most 100000 seeds"
        ));
    }
    Ok((a..=b).collect())
}

pub fn main() -> i32 {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run {
            files,
            seeds,
            seed,
            jobs,
            out,
            json,
            keep_logs,
            regressions,
            seed_budget_s,
            shard,
        } => {
            let seeds = match seed
                .map(|s| Ok(vec![s]))
                .unwrap_or_else(|| parse_seeds(&seeds))
            {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("error: {e}");
                    return 2;
                }
            };
            let pool = Pool {
                jobs: jobs
                    .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
                    .max(1),
                budget: Duration::from_secs(seed_budget_s.max(1)),
                work_dir: out.join(".seeds"),
            };
            let sweep = Sweep {
                files,
                seeds,
                regressions,
                shard: shard.unwrap_or(Shard::WHOLE),
            };
            run(sweep, pool, out, json, keep_logs)
        }
        Command::Merge { inputs, out, json } => {
            return match shard_files(&inputs).and_then(|files| merge(&files, &out)) {
                Ok(report) => {
                    eprintln!("report: {}", out.join("report.md").display());
                    print_report(&report, json)
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    if matches!(e, MergeError::Write(..)) {
                        1
                    } else {
                        2
                    }
                }
            }
        }
        Command::Worker(w) => return w.run(),
        Command::Determinism { files, seed } => determinism(files, seed),
        Command::Plan { file, seed } => Scenario::load(&file).map(|s| {
            println!("seed {seed}: {}", s.plan(seed).describe());
            0
        }),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            2
        }
    }
}

/// What a `run` covers: the scenario files, the seeds, and which shard of it this process runs.
struct Sweep {
    files: Vec<PathBuf>,
    seeds: Vec<u64>,
    regressions: bool,
    shard: Shard,
}

fn run(
    sweep: Sweep,
    pool: Pool,
    out: PathBuf,
    json: bool,
    keep_logs: bool,
) -> Result<i32, ScenarioError> {
    let fail = |what: &std::path::Path, e: std::io::Error| {
        ScenarioError(format!("{}: {e}", what.display()))
    };
    let mut scenarios: Vec<(PathBuf, Scenario, Vec<u64>)> = Vec::new();
    let mut entries = Vec::new();
    for f in &sweep.files {
        let scenario = Scenario::load(f)?;
        if let Some((other, ..)) = scenarios.iter().find(|(_, s, _)| s.name == scenario.name) {
            return Err(ScenarioError(format!(
                "{} and {} are both named {:?}: results and event logs are kept by name",
                other.display(),
                f.display(),
                scenario.name
            )));
        }
        let mut seeds = sweep.seeds.clone();
        if sweep.regressions {
            seeds.extend(&scenario.regression_seeds);
            seeds.sort_unstable();
            seeds.dedup();
        }
        let bytes = std::fs::read(f).map_err(|e| fail(f, e))?;
        entries.push(ScenarioEntry::new(&scenario.name, f, &bytes, &seeds));
        scenarios.push((f.clone(), scenario, seeds));
    }
    std::fs::create_dir_all(&pool.work_dir).map_err(|e| fail(&out, e))?;
    let header = Header {
        format: FORMAT,
        shard: sweep.shard,
        build: Build::this()
            .map_err(|e| ScenarioError(format!("reading this runner's own executable: {e}")))?,
        scenarios: entries,
        plan: None,
    };
    let shard_file = out.join(sweep.shard.file_name());
    let mut writer = ShardWriter::create(&shard_file, &header).map_err(|e| fail(&shard_file, e))?;
    let (mut pair, mut ran, mut failed) = (0usize, 0usize, 0usize);
    let started = std::time::Instant::now();
    for (path, scenario, all_seeds) in &scenarios {
        let seeds: Vec<u64> = all_seeds
            .iter()
            .copied()
            .filter(|_| {
                pair += 1;
                sweep.shard.takes(pair - 1)
            })
            .collect();
        if seeds.is_empty() {
            continue;
        }
        eprintln!(
            "[{}] {} seed(s) on {} job(s); {}",
            scenario.name,
            seeds.len(),
            pool.jobs,
            scenario.description.lines().next().unwrap_or("")
        );
        let results = pool.run(path, scenario, &seeds);
        for r in &results {
            let worker_log = SeedFiles::new(&pool.work_dir, &r.scenario, r.seed).events;
            let log = out.join(format!("{}-seed{}.log", r.scenario, r.seed));
            if !keep_logs && r.passed() {
                let _ = std::fs::remove_file(&worker_log);
                continue;
            }
            if std::fs::rename(&worker_log, &log).is_err() {
                // A worker that died gave no log; say so rather than keep a stale one.
                let _ = std::fs::write(
                    &log,
                    "(no event log: the seed's worker died before writing it)\n",
                );
            }
            if r.passed() {
                continue;
            }
            eprintln!("[{}] seed {} FAILED: {}\n  reproduce: ci/scenario run {} --seed {}\n  event log: {}", r.scenario, r.seed, r.violations.join("; "), path.display(), r.seed, log.display());
        }
        writer.append(&results).map_err(|e| fail(&shard_file, e))?;
        let simulated: f64 = results.iter().map(|r| r.simulated_s).sum();
        let wall_s: f64 = results.iter().map(|r| r.wall_ms as f64 / 1000.0).sum();
        eprintln!(
            "[{}] {} seed(s): {simulated:.0} simulated s in {wall_s:.1} s of workers' wall-clock time ({:.0}× real time)",
            scenario.name,
            results.len(),
            simulated / wall_s.max(0.001)
        );
        ran += results.len();
        failed += results.iter().filter(|r| !r.passed()).count();
    }
    drop(writer);
    eprintln!(
        "{ran} seed(s) in {:.1} s ({:.0} per minute)",
        started.elapsed().as_secs_f64(),
        ran as f64 * 60.0 / started.elapsed().as_secs_f64().max(0.001)
    );
    if sweep.shard != Shard::WHOLE {
        println!(
            "shard {}: {ran} seed(s), {} passed, {failed} failed; results in {}\nmerge every shard's file with: scenario merge SHARD-FILES-OR-DIRECTORIES --out DIR",
            sweep.shard,
            ran - failed,
            shard_file.display()
        );
        return Ok(if failed == 0 { 0 } else { 1 });
    }
    // One process ran the whole sweep: its report is the merge of its one shard, so it is the
    // same report N shards of it give.
    match merge(&[shard_file], &out) {
        Ok(report) => Ok(print_report(&report, json)),
        Err(e) => Err(ScenarioError(e.to_string())),
    }
}

/// Prints a merged report (Markdown, or JSON with `json`) and its tally; the exit status.
fn print_report(report: &crate::sweep::merge::Report, json: bool) -> i32 {
    let summaries: &[ScenarioSummary] = &report.scenarios;
    if json {
        println!("{}", crate::sweep::merge::json(report));
    } else {
        println!("{}", markdown(Some(&report.build), summaries));
    }
    let failed: usize = summaries.iter().map(|s| s.failed.len()).sum();
    let total: usize = summaries.iter().map(|s| s.seeds).sum();
    if failed > 0 {
        let kind = |k: &str| {
            summaries
                .iter()
                .flat_map(|s| &s.failed)
                .filter(|f| f.violations.iter().any(|v| v.starts_with(k)))
                .count()
        };
        let (crashed, hung) = (kind("crash:"), kind("hang:"));
        println!(
            "failed seeds: {} broke a check, {crashed} crashed, {hung} hung",
            failed - crashed - hung
        );
    }
    println!("{} passed, {failed} failed", total - failed);
    if failed == 0 {
        0
    } else {
        1
    }
}

fn determinism(files: Vec<PathBuf>, seed: u64) -> Result<i32, ScenarioError> {
    let mut code = 0;
    for f in files {
        let s = Scenario::load(&f)?;
        let budget = Some(Duration::from_secs(600));
        let (a, b) = (run_seed(&s, seed, budget), run_seed(&s, seed, budget));
        let same = a.event_log_hash == b.event_log_hash;
        println!(
            "{}: seed {seed}: event log {} lines, hash {} then {} — {}",
            s.name,
            a.events.len(),
            a.event_log_hash,
            b.event_log_hash,
            if same {
                "deterministic"
            } else {
                "NOT deterministic"
            }
        );
        for broken in a.violations.iter().chain(&b.violations) {
            if broken.starts_with("crash:") || broken.starts_with("hang:") {
                println!("  the run did not finish: {broken}");
                code = 1;
            }
        }
        if !same {
            let line = a
                .events
                .iter()
                .zip(&b.events)
                .position(|(x, y)| x != y)
                .unwrap_or(a.events.len().min(b.events.len()));
            println!(
                "  first difference at line {line}:\n  {:?}\n  {:?}",
                a.events.get(line),
                b.events.get(line)
            );
            code = 1;
        }
    }
    Ok(code)
}
