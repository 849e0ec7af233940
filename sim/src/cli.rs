//! The scenario runner's command line (`ci/scenario`).

use crate::report::{markdown, summarize, ScenarioSummary};
use crate::run::{run_seed, RunResult};
use crate::scenario::Scenario;
use clap::{Parser, Subcommand};
use std::collections::VecDeque;
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

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
    },
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
            run(files, seeds, jobs, out, json, keep_logs)
        }
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
    jobs: Option<usize>,
    out: PathBuf,
    json: bool,
    keep_logs: bool,
) -> Result<i32, crate::scenario::ScenarioError> {
    let scenarios: Vec<(PathBuf, Scenario)> = files
        .iter()
        .map(|f| Scenario::load(f).map(|s| (f.clone(), s)))
        .collect::<Result<_, _>>()?;
    let jobs = jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    std::fs::create_dir_all(&out)
        .map_err(|e| crate::scenario::ScenarioError(format!("{}: {e}", out.display())))?;
    let mut summaries: Vec<ScenarioSummary> = Vec::new();
    for (path, scenario) in &scenarios {
        eprintln!(
            "[{}] {} seed(s) on {jobs} job(s); {}",
            scenario.name,
            seeds.len(),
            scenario.description.lines().next().unwrap_or("")
        );
        let results = run_parallel(scenario, &seeds, jobs);
        for r in results.iter().filter(|r| keep_logs || !r.passed()) {
            let log = out.join(format!("{}-seed{}.log", r.scenario, r.seed));
            let _ = std::fs::write(&log, r.events.join("\n") + "\n");
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
    println!("{} passed, {failed} failed", total - failed);
    Ok(if failed == 0 { 0 } else { 1 })
}

/// Seeds run on `jobs` threads, each with its own simulation runtime; results come back in seed
/// order. A live progress line goes to stderr.
fn run_parallel(scenario: &Scenario, seeds: &[u64], jobs: usize) -> Vec<RunResult> {
    let queue = Arc::new(Mutex::new(
        seeds.iter().copied().enumerate().collect::<VecDeque<_>>(),
    ));
    let results: Arc<Mutex<Vec<Option<RunResult>>>> = Arc::new(Mutex::new(vec![None; seeds.len()]));
    let started = std::time::Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..jobs.min(seeds.len()) {
            let (queue, results) = (queue.clone(), results.clone());
            scope.spawn(move || loop {
                let Some((i, seed)) = queue.lock().unwrap().pop_front() else {
                    return;
                };
                eprintln!(
                    "[{}] seed {seed}: {}",
                    scenario.name,
                    scenario.plan(seed).describe().replace('\n', "\n    ")
                );
                let r = run_seed(scenario, seed);
                let mut all = results.lock().unwrap();
                all[i] = Some(r);
                let done: Vec<&RunResult> = all.iter().flatten().collect();
                let failed = done.iter().filter(|r| !r.passed()).count();
                let sim: f64 = done.iter().map(|r| r.simulated_s).sum();
                eprintln!(
                    "[{}] {}/{} seeds done, {failed} failed, {sim:.0} simulated s in {:.1} s",
                    scenario.name,
                    done.len(),
                    seeds.len(),
                    started.elapsed().as_secs_f64()
                );
                let _ = std::io::stderr().flush();
            });
        }
    });
    Arc::try_unwrap(results)
        .unwrap_or_else(|_| panic!("every worker thread has finished"))
        .into_inner()
        .unwrap()
        .into_iter()
        .map(|r| r.expect("every seed ran"))
        .collect()
}

fn determinism(files: Vec<PathBuf>, seed: u64) -> Result<i32, crate::scenario::ScenarioError> {
    let mut code = 0;
    for f in files {
        let s = Scenario::load(&f)?;
        let (a, b) = (run_seed(&s, seed), run_seed(&s, seed));
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
