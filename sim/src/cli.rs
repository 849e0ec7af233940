//! The scenario runner's command line (`ci/scenario`).

use crate::pool::{Pool, SeedFiles};
use crate::report::{markdown, summarize, ScenarioSummary};
use crate::run::run_seed;
use crate::scenario::Scenario;
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
            run(files, seeds, regressions, pool, out, json, keep_logs)
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

fn run(
    files: Vec<PathBuf>,
    seeds: Vec<u64>,
    regressions: bool,
    pool: Pool,
    out: PathBuf,
    json: bool,
    keep_logs: bool,
) -> Result<i32, crate::scenario::ScenarioError> {
    let scenarios: Vec<(PathBuf, Scenario)> = files
        .iter()
        .map(|f| Scenario::load(f).map(|s| (f.clone(), s)))
        .collect::<Result<_, _>>()?;
    let jobs = pool.jobs;
    std::fs::create_dir_all(&pool.work_dir)
        .map_err(|e| crate::scenario::ScenarioError(format!("{}: {e}", out.display())))?;
    let mut summaries: Vec<ScenarioSummary> = Vec::new();
    for (path, scenario) in &scenarios {
        let mut seeds = seeds.clone();
        if regressions {
            seeds.extend(&scenario.regression_seeds);
            seeds.sort_unstable();
            seeds.dedup();
        }
        eprintln!(
            "[{}] {} seed(s) on {jobs} job(s); {}",
            scenario.name,
            seeds.len(),
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
        let summary = summarize(
            &results,
            |seed| format!("ci/scenario run {} --seed {seed}", path.display()),
            |seed| {
                Some(
                    out.join(format!("{}-seed{seed}.log", scenario.name))
                        .display()
                        .to_string(),
                )
            },
        );
        summaries.push(summary);
    }
    let md = markdown(&summaries, true);
    let json_text = serde_json::to_string_pretty(&summaries).expect("summaries serialize");
    let _ = std::fs::write(out.join("report.md"), &md);
    let _ = std::fs::write(out.join("report.json"), &json_text);
    if json {
        println!("{json_text}");
    } else {
        println!("{md}");
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
    Ok(if failed == 0 { 0 } else { 1 })
}

fn determinism(files: Vec<PathBuf>, seed: u64) -> Result<i32, crate::scenario::ScenarioError> {
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
