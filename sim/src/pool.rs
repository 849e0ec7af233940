//! Seeds run in worker processes, `jobs` at a time, so that nothing one seed does can cost the
//! others their results: a panic or a hang inside a seed is reported by its worker as that
//! seed's failure (with the event log so far), and a worker that dies or wedges outright is
//! killed and reported the same way. Each worker is this same executable (`scenario worker`),
//! which also gives every simulation a fresh process, as madsim's seeding of std's hash keys
//! wants.

use crate::run::{RunResult, RunStats};
use crate::scenario::Scenario;
use std::collections::VecDeque;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A worker past its budget gets this long to report its own hang before it is killed.
const GRACE: Duration = Duration::from_secs(30);

/// Where a seed's worker leaves its result, event log and stderr.
pub struct SeedFiles {
    pub result: PathBuf,
    pub events: PathBuf,
    pub stderr: PathBuf,
}

impl SeedFiles {
    /// Removes the result and stderr files (the event log is the caller's to keep or remove).
    fn remove_scratch(&self) {
        let _ = std::fs::remove_file(&self.result);
        let _ = std::fs::remove_file(&self.stderr);
    }

    pub fn new(dir: &Path, scenario: &str, seed: u64) -> SeedFiles {
        let base = |ext: &str| dir.join(format!("{scenario}-seed{seed}.{ext}"));
        SeedFiles {
            result: base("json"),
            events: base("log"),
            stderr: base("stderr"),
        }
    }
}

/// How the seeds run.
pub struct Pool {
    pub jobs: usize,
    /// Wall-clock time a seed may take before it counts as hung.
    pub budget: Duration,
    /// Scratch space for the workers' files.
    pub work_dir: PathBuf,
}

/// One seed of one scenario, for [`Pool::run_tasks`].
pub struct Task<'a> {
    pub file: &'a Path,
    pub scenario: &'a Scenario,
    pub seed: u64,
}

/// What [`Pool::run_tasks`] tells its caller as tasks start and finish.
pub enum Progress<'a> {
    Started {
        task: &'a Task<'a>,
    },
    Finished {
        result: &'a RunResult,
        done: &'a [&'a RunResult],
        total: usize,
    },
}

impl Pool {
    /// Runs `seeds` of `scenario` (loaded from `file`); results come back in seed order, one
    /// for every seed whatever happened to it. A live progress line goes to stderr.
    pub fn run(&self, file: &Path, scenario: &Scenario, seeds: &[u64]) -> Vec<RunResult> {
        let tasks: Vec<Task> = seeds
            .iter()
            .map(|&seed| Task {
                file,
                scenario,
                seed,
            })
            .collect();
        let started = Instant::now();
        self.run_tasks(&tasks, |p| match p {
            Progress::Started { task } => eprintln!(
                "[{}] seed {}: {}",
                scenario.name,
                task.seed,
                scenario.plan(task.seed).describe().replace('\n', "\n    ")
            ),
            Progress::Finished { done, total, .. } => {
                let failed = done.iter().filter(|r| !r.passed()).count();
                let sim: f64 = done.iter().map(|r| r.simulated_s).sum();
                eprintln!(
                    "[{}] {}/{total} seeds done, {failed} failed, {sim:.0} simulated s in {:.1} s",
                    scenario.name,
                    done.len(),
                    started.elapsed().as_secs_f64()
                );
                let _ = std::io::stderr().flush();
            }
        })
    }

    /// Runs every task, `jobs` at a time, each in its own worker process; results come back in
    /// task order, one for every task whatever happened to it. `progress` hears of each start
    /// and finish (from the pool's threads, one at a time).
    pub fn run_tasks(&self, tasks: &[Task], progress: impl Fn(Progress) + Sync) -> Vec<RunResult> {
        let queue = Mutex::new((0..tasks.len()).collect::<VecDeque<_>>());
        let results: Mutex<Vec<Option<RunResult>>> = Mutex::new(vec![None; tasks.len()]);
        std::thread::scope(|scope| {
            for _ in 0..self.jobs.max(1).min(tasks.len()) {
                let (queue, results, progress) = (&queue, &results, &progress);
                scope.spawn(move || loop {
                    let Some(i) = queue.lock().unwrap().pop_front() else {
                        return;
                    };
                    let task = &tasks[i];
                    progress(Progress::Started { task });
                    let r = self.run_one(task.file, task.scenario, task.seed);
                    let mut all = results.lock().unwrap();
                    all[i] = Some(r);
                    let done: Vec<&RunResult> = all.iter().flatten().collect();
                    progress(Progress::Finished {
                        result: all[i].as_ref().expect("just stored"),
                        done: &done,
                        total: tasks.len(),
                    });
                });
            }
        });
        let all = results.into_inner().unwrap();
        all.into_iter()
            .zip(tasks)
            .map(|(r, t)| r.unwrap_or_else(|| lost(t.scenario, t.seed, "its job never ran")))
            .collect()
    }

    /// One seed in its own worker process. The worker's event log is left in the work dir
    /// (`SeedFiles::events`) for the caller to keep or delete.
    fn run_one(&self, file: &Path, scenario: &Scenario, seed: u64) -> RunResult {
        let files = SeedFiles::new(&self.work_dir, &scenario.name, seed);
        // A log left by an interrupted earlier run must not pass for this seed's.
        let _ = std::fs::remove_file(&files.events);
        let started = Instant::now();
        let spawned = (|| {
            Command::new(std::env::current_exe()?)
                .arg("worker")
                .arg(file)
                .args(["--seed", &seed.to_string()])
                .args(["--budget-s", &self.budget.as_secs().to_string()])
                .arg("--events")
                .arg(&files.events)
                .stdin(Stdio::null())
                .stdout(std::fs::File::create(&files.result)?)
                .stderr(std::fs::File::create(&files.stderr)?)
                .spawn()
        })();
        let mut child = match spawned {
            Ok(c) => c,
            Err(e) => {
                files.remove_scratch();
                return lost(scenario, seed, &format!("its worker could not start: {e}"));
            }
        };
        let deadline = started + self.budget + GRACE;
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break Ok(status),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                Ok(None) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    break Err(format!(
                        "its worker was killed after {:.0} s without reporting",
                        started.elapsed().as_secs_f64()
                    ));
                }
                Err(e) => break Err(format!("its worker could not be waited for: {e}")),
            }
        };
        let reported = std::fs::read_to_string(&files.result)
            .ok()
            .and_then(|text| serde_json::from_str::<RunResult>(&text).ok());
        match (reported, status) {
            (Some(r), _) => {
                files.remove_scratch();
                r
            }
            (None, status) => {
                let how = match status {
                    Ok(s) => format!("its worker ended ({s}) without a result"),
                    Err(e) => e,
                };
                let tail = std::fs::read_to_string(&files.stderr)
                    .map(|t| {
                        let lines: Vec<&str> = t.lines().collect();
                        lines[lines.len().saturating_sub(6)..].join(" | ")
                    })
                    .unwrap_or_default();
                files.remove_scratch();
                let mut r = lost(scenario, seed, &format!("{how}; its stderr ends: {tail}"));
                r.wall_ms = started.elapsed().as_millis() as u64;
                r
            }
        }
    }
}

/// The result of a seed whose worker gave none.
fn lost(scenario: &Scenario, seed: u64, why: &str) -> RunResult {
    RunResult {
        scenario: scenario.name.clone(),
        seed,
        plan: scenario.plan(seed).describe(),
        violations: vec![format!("crash: {why}")],
        stats: RunStats::default(),
        event_log_hash: String::new(),
        events: Vec::new(),
        simulated_s: 0.0,
        wall_ms: 0,
    }
}

/// The hidden `worker` subcommand of every binary that runs seeds in a [`Pool`] (the pool
/// starts its own executable with it).
#[derive(clap::Args)]
pub struct WorkerArgs {
    file: PathBuf,
    #[arg(long)]
    seed: u64,
    #[arg(long)]
    budget_s: u64,
    /// Where the seed's event log goes.
    #[arg(long)]
    events: PathBuf,
}

impl WorkerArgs {
    pub fn run(&self) -> i32 {
        worker(
            &self.file,
            self.seed,
            Duration::from_secs(self.budget_s),
            &self.events,
        )
    }
}

/// The worker's side (`scenario worker`): one seed, its event log to `events`, its result as
/// JSON on stdout; then the process ends, taking any hung simulation thread with it.
pub fn worker(file: &Path, seed: u64, budget: Duration, events: &Path) -> i32 {
    let scenario = match Scenario::load(file) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    let r = crate::run::run_seed(&scenario, seed, Some(budget));
    let _ = std::fs::write(events, r.events.join("\n") + "\n");
    let json = serde_json::to_string(&r).expect("a run result serializes");
    let mut out = std::io::stdout().lock();
    if writeln!(out, "{json}").and_then(|_| out.flush()).is_err() {
        return 2;
    }
    0
}
