//! The capacity planner (`ci/plan`, DESIGN §9): a forecast in, a simulation-checked sizing
//! report out.
//!
//! 1. The analytic candidates (`mc_core::plan`): the product's rule of thumb, bin packing with
//!    meeting affinity, headroom and the required failures, and an Erlang-B bound.
//! 2. A ladder of topologies, smallest first, around the packed one (and the rule of thumb's):
//!    each is simulated — every zone at its peak, and under each failure the forecast must
//!    survive ([`cases`]) — on a few screening seeds; the first to meet every target is run on
//!    the rest of the seeds, and recommended if it still does.
//! 3. The report ([`mc_plan::render`]): Markdown, HTML with charts, JSON.

pub mod cases;
pub mod cli;
pub mod measure;
pub mod shard;

use crate::pool::{Pool, Progress, Task};
use crate::run::RunResult;
use cases::{CaseSpec, RECOVERY_S};
use mc_core::plan::forecast::{ControllerMode, Forecast, ForecastError};
use mc_core::plan::{erlang, packing, zone};
use mc_plan::model::{self, Analytic, Candidate, PlanReport, QuarterRow, Topology};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// MMR VMs a simulated zone can have (the simulator's address plan).
pub const MAX_MMR_VMS: u32 = 8;
/// Smaller rungs simulated below the packed candidate, to show what they lack.
const RUNGS_BELOW: u32 = 2;

/// How a plan runs.
pub struct Settings {
    /// Seeds every candidate runs.
    pub screen_seeds: Vec<u64>,
    /// Further seeds a candidate that passed screening runs before it is recommended.
    pub confirm_seeds: Vec<u64>,
    pub pool: Pool,
    /// Where the report, the case files and failing seeds' logs go.
    pub out: PathBuf,
    /// The command line, for the report's footer.
    pub command: String,
    /// The command that replays one case, before its file (`ci/scenario run`).
    pub replay_prefix: String,
    pub opening: cases::Opening,
    /// Check only this topology (MMR VMs per zone, and zones if given) instead of searching for
    /// the smallest: "what if we deploy this?".
    pub only: Option<(u32, Option<u32>)>,
}

/// A forecast file that cannot be planned for.
#[derive(Debug)]
pub enum PlanError {
    Read(PathBuf, std::io::Error),
    /// Not valid TOML, or a field missing, unknown or of the wrong type.
    Parse(PathBuf, String),
    Invalid(PathBuf, ForecastError),
    Write(PathBuf, std::io::Error),
}

impl std::fmt::Display for PlanError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PlanError::Read(p, e) => write!(f, "{}: cannot read the forecast: {e}", p.display()),
            PlanError::Parse(p, e) => write!(f, "{}: {e}", p.display()),
            PlanError::Invalid(p, e) => write!(f, "{}: {e}", p.display()),
            PlanError::Write(p, e) => write!(f, "{}: cannot write: {e}", p.display()),
        }
    }
}

/// Reads and checks a forecast; also returns the SHA-256 of its bytes (hex).
pub fn load_forecast(path: &Path) -> Result<(Forecast, String), PlanError> {
    let bytes = std::fs::read(path).map_err(|e| PlanError::Read(path.into(), e))?;
    let text = String::from_utf8_lossy(&bytes);
    let f: Forecast = toml::from_str(&text).map_err(|e| {
        PlanError::Parse(path.into(), e.to_string().trim_end().replace('\n', "\n  "))
    })?;
    f.validate()
        .map_err(|e| PlanError::Invalid(path.into(), e))?;
    Ok((f, mc_core::digest::sha256_hex(&bytes)))
}

fn mode_controllers(f: &Forecast) -> u32 {
    match f.availability.controllers {
        ControllerMode::Single => 1,
        ControllerMode::Pair => 2,
    }
}

fn topology(p: zone::ZonePlan) -> Topology {
    Topology {
        zones: p.zones,
        controllers: p.controllers,
        mmr_vms: p.mmr_vms,
    }
}

fn cost(f: &Forecast, t: Topology) -> Option<f64> {
    f.cost
        .as_ref()
        .map(|c| t.controller_vms() as f64 * c.controller_vm + t.mmr_vm_count() as f64 * c.mmr_vm)
}

/// The analytic sizing of `peak` participants: rule of thumb, bin packing, Erlang B.
pub fn analytic(f: &Forecast, peak: u32) -> (Vec<u32>, Analytic) {
    let limits = f.limits();
    let meetings = packing::meetings_at_peak(peak, &f.bins());
    let ctl = mode_controllers(f);
    let rule = packing::rule_of_thumb(peak, meetings.len() as u32, limits);
    let zones = rule.controllers.div_ceil(ctl).max(1);
    let rule_of_thumb = Topology {
        zones,
        controllers: ctl,
        mmr_vms: rule.mmrs.saturating_sub(zones * ctl).div_ceil(zones),
    };
    let packed = zone::size(
        &meetings,
        limits,
        f.availability.controllers,
        &f.availability.survive,
        f.targets.max_utilisation_pct / 100.0,
    )
    .expect("a validated forecast's meetings each fit an MMR");
    let seats = erlang::seats_for(peak as f64, f.targets.max_refusal_pct / 100.0);
    let a = Analytic {
        rule_of_thumb,
        packed: topology(packed),
        erlang_offered: peak as f64,
        erlang_seats: seats,
        erlang_mmrs: seats.div_ceil(limits.mmr_capacity),
    };
    (meetings, a)
}

/// The topologies to simulate, smallest first: a few rungs below the packed candidate (none
/// below what holds the peak without headroom), the packed one and up to the simulator's
/// limit, and the rule of thumb's wherever it falls.
fn ladder(f: &Forecast, meetings: &[u32], a: &Analytic) -> Vec<(Topology, Vec<String>)> {
    let cap = f.limits().mmr_capacity;
    let p = a.packed;
    let bare_minimum = zone::split(meetings, p.zones)
        .iter()
        .map(|z| {
            z.iter()
                .sum::<u32>()
                .div_ceil(cap)
                .saturating_sub(p.controllers)
        })
        .max()
        .unwrap_or(0);
    let from = p.mmr_vms.saturating_sub(RUNGS_BELOW).max(bare_minimum);
    let mut out: Vec<(Topology, Vec<String>)> = (from..=MAX_MMR_VMS.max(p.mmr_vms))
        .map(|v| {
            let t = Topology { mmr_vms: v, ..p };
            let mut by = Vec::new();
            if t == p {
                by.push("bin packing".to_string());
            }
            (t, by)
        })
        .collect();
    match out.iter_mut().find(|(t, _)| *t == a.rule_of_thumb) {
        Some((_, by)) => by.insert(0, "rule of thumb".into()),
        None => out.push((a.rule_of_thumb, vec!["rule of thumb".into()])),
    }
    for (t, by) in &mut out {
        if t.mmrs() == a.erlang_mmrs.max(t.zones * t.controllers) && t.zones == p.zones {
            by.push("Erlang B".into());
        }
    }
    out.sort_by_key(|(t, _)| (t.mmrs(), t.controller_vms(), t.zones));
    out
}

/// Runs every case of `specs` (each written to the file beside it) on `seeds`; results per
/// case, in seed order. `label` says what the runs are for, for a progress line.
pub type Runner<'a> = dyn FnMut(&str, &[CaseSpec], &[PathBuf], &[u64]) -> Vec<Vec<RunResult>> + 'a;

/// Seeds a passing candidate confirms at a time, over all its cases, before checking whether it
/// already missed a target. Fixed (not the machine's cores), so the report does not depend on
/// where it was computed.
const CONFIRM_CHUNK_RUNS: usize = 8;

/// The topologies a plan may simulate, in the order it tries them: the ladder, or only the one
/// `--mmr-vms` names.
fn rungs(
    f: &Forecast,
    meetings: &[u32],
    analytic: &Analytic,
    s: &Settings,
) -> Vec<(Topology, Vec<String>)> {
    let ladder = ladder(f, meetings, analytic);
    let Some((mmr_vms, zones)) = s.only else {
        return ladder;
    };
    let t = Topology {
        mmr_vms,
        zones: zones.unwrap_or(analytic.packed.zones),
        ..analytic.packed
    };
    let named_by = ladder
        .iter()
        .find(|(l, _)| *l == t)
        .map(|(_, by)| by.clone())
        .unwrap_or_default();
    vec![(t, named_by)]
}

/// Every case of every topology the plan may simulate (those within the simulator's limits), in
/// the order it would try them: what a sharded plan runs in full.
pub fn all_cases(f: &Forecast, s: &Settings) -> Vec<CaseSpec> {
    let (meetings, analytic) = analytic(f, f.peak_participants);
    rungs(f, &meetings, &analytic, s)
        .into_iter()
        .filter(|(t, _)| t.mmr_vms <= MAX_MMR_VMS)
        .flat_map(|(t, _)| cases::cases(f, t, &zone::split(&meetings, t.zones), s.opening))
        .collect()
}

/// Runs cases on this machine, in the pool, with a progress bar; keeps the failing seeds' logs.
pub fn local_runner(
    s: &Settings,
) -> impl FnMut(&str, &[CaseSpec], &[PathBuf], &[u64]) -> Vec<Vec<RunResult>> + '_ {
    move |label, specs, files, seeds| {
        let results = run_cases(s, specs, files, seeds, label);
        keep_failing_logs(s, &results);
        results
    }
}

/// Plans for `forecast` (read from `file`, whose bytes hash to `sha`), running each candidate's
/// cases through `runs`.
pub fn plan(
    forecast: &Forecast,
    file: &Path,
    sha: &str,
    s: &Settings,
    runs_of: &mut Runner,
) -> Result<PlanReport, PlanError> {
    let f = forecast;
    let (meetings, analytic) = analytic(f, f.peak_participants);
    let cases_dir = s.out.join("cases");
    std::fs::create_dir_all(&cases_dir).map_err(|e| PlanError::Write(cases_dir.clone(), e))?;
    let ladder = rungs(f, &meetings, &analytic, s);
    let mut candidates: Vec<Candidate> = Vec::new();
    let mut recommended = None;
    let mut runs = 0u64;
    let rungs = ladder.len();
    for (k, (t, named_by)) in ladder.into_iter().enumerate() {
        let label = format!("candidate {}/{rungs}: {}", k + 1, t.describe());
        if t.mmr_vms > MAX_MMR_VMS {
            candidates.push(Candidate {
                topology: t,
                named_by,
                cost: cost(f, t),
                seeds: vec![],
                cases: vec![],
                passed: false,
                misses: vec![format!(
                    "not simulated: {} MMR VMs per zone is beyond the simulator's {MAX_MMR_VMS}",
                    t.mmr_vms
                )],
            });
            continue;
        }
        let zones = zone::split(&meetings, t.zones);
        let specs = cases::cases(f, t, &zones, s.opening);
        let files = write_cases(&cases_dir, &specs)?;
        let mut results = runs_of(
            &format!("{label}, screening"),
            &specs,
            &files,
            &s.screen_seeds,
        );
        runs += results.iter().map(Vec::len).sum::<usize>() as u64;
        let mut seeds = s.screen_seeds.clone();
        let mut c = judge(f, t, named_by.clone(), &specs, &files, &results, &seeds, s);
        if c.passed && !s.confirm_seeds.is_empty() {
            // In chunks, so that a candidate that already cannot meet the targets over all the
            // seeds stops early (most of a plan's time goes to confirming).
            let total = (s.screen_seeds.len() + s.confirm_seeds.len()) as f64;
            let chunk = CONFIRM_CHUNK_RUNS.div_ceil(specs.len().max(1)).max(1);
            for seeds_now in s.confirm_seeds.chunks(chunk) {
                let more = runs_of(&format!("{label}, confirming"), &specs, &files, seeds_now);
                runs += more.iter().map(Vec::len).sum::<usize>() as u64;
                for (r, m) in results.iter_mut().zip(more) {
                    r.extend(m);
                }
                seeds.extend(seeds_now);
                if already_missed(f, &results, total) {
                    break;
                }
            }
            c = judge(f, t, named_by, &specs, &files, &results, &seeds, s);
        }
        let passed = c.passed;
        candidates.push(c);
        if passed {
            recommended = Some(candidates.len() - 1);
            break;
        }
    }
    let growth = growth(f);
    Ok(PlanReport {
        forecast: summary(f, meetings.len() as u32),
        analytic,
        candidates,
        recommended,
        growth,
        replay: model::Replay {
            commit: env!("MC_BUILD_COMMIT").to_string(),
            forecast_sha256: sha.to_string(),
            forecast_file: file.display().to_string(),
            screen_seeds: s.screen_seeds.clone(),
            confirm_seeds: s.confirm_seeds.clone(),
            command: s.command.clone(),
            media_pps: cases::MEDIA_PPS,
            arrivals: s.opening.describe().into(),
            speakers_per_meeting: cases::SPEAKERS,
            runs,
        },
    })
}

pub fn write_cases(dir: &Path, specs: &[CaseSpec]) -> Result<Vec<PathBuf>, PlanError> {
    specs
        .iter()
        .map(|c| {
            let path = dir.join(format!("{}.toml", c.scenario.name));
            let text = format!(
                "# {}\n# Written by the capacity planner; re-run with: ci/scenario run {} --seed N\n{}",
                c.scenario.description,
                path.display(),
                toml::to_string(&c.scenario).expect("a scenario serialises")
            );
            std::fs::write(&path, text).map_err(|e| PlanError::Write(path.clone(), e))?;
            Ok(path)
        })
        .collect()
}

/// Every case on every seed, in one pool; results per case, in seed order.
pub fn run_cases(
    s: &Settings,
    specs: &[CaseSpec],
    files: &[PathBuf],
    seeds: &[u64],
    label: &str,
) -> Vec<Vec<RunResult>> {
    let tasks: Vec<Task> = specs
        .iter()
        .zip(files)
        .flat_map(|(c, file)| {
            seeds.iter().map(move |&seed| Task {
                file,
                scenario: &c.scenario,
                seed,
            })
        })
        .collect();
    let bar = ProgressBar::new(label, tasks.len());
    let all = s.pool.run_tasks(&tasks, |p| {
        if let Progress::Finished { done, .. } = p {
            bar.show(done);
        }
    });
    bar.finish();
    all.chunks(seeds.len().max(1))
        .map(<[RunResult]>::to_vec)
        .collect()
}

/// Whether some case has already missed a target whatever the seeds still to run: a check
/// failed, or its refusals so far exceed the target averaged over all `total` seeds.
fn already_missed(f: &Forecast, results: &[Vec<RunResult>], total: f64) -> bool {
    results.iter().any(|runs| {
        let rates: f64 = runs
            .iter()
            .map(|r| {
                100.0 * measure::refused(r).values().sum::<u64>() as f64
                    / r.stats.joins_attempted.max(1) as f64
            })
            .sum();
        runs.iter().any(|r| !r.passed()) || rates / total > f.targets.max_refusal_pct
    })
}

/// Keeps the event logs of seeds that broke a check (beside the cases); drops the rest.
fn keep_failing_logs(s: &Settings, results: &[Vec<RunResult>]) {
    for r in results.iter().flatten() {
        let files = crate::pool::SeedFiles::new(&s.pool.work_dir, &r.scenario, r.seed);
        if r.passed() {
            let _ = std::fs::remove_file(&files.events);
        }
    }
}

/// A candidate's cases measured and judged against the forecast's targets.
// `specs`, `files` and `results` are parallel slices of one candidate's runs, borrowed from the
// two places `judge` is called; a struct bundling them would exist only to carry them here.
#[allow(clippy::too_many_arguments)]
fn judge(
    f: &Forecast,
    t: Topology,
    named_by: Vec<String>,
    specs: &[CaseSpec],
    files: &[PathBuf],
    results: &[Vec<RunResult>],
    seeds: &[u64],
    s: &Settings,
) -> Candidate {
    let first = seeds.first().copied().unwrap_or(1);
    let mut misses = Vec::new();
    let cases: Vec<model::Case> = specs
        .iter()
        .zip(files)
        .zip(results)
        .map(|((spec, file), runs)| {
            let replay = format!("{} {} --seed {{seed}}", s.replay_prefix, file.display());
            let c = measure::measure(spec, &file.display().to_string(), replay, runs);
            let at = match spec.failure {
                None => format!("zone {}, at peak with nothing failing", spec.zone),
                Some(_) => format!(
                    "zone {}, with {} killed at peak",
                    spec.zone,
                    spec.killed.join(" and ")
                ),
            };
            let target = f.targets.max_refusal_pct;
            if c.refusal_pct > target {
                let reasons: Vec<String> = c
                    .refused_by_reason
                    .iter()
                    .map(|(k, n)| format!("{k} {n}"))
                    .collect();
                misses.push(format!(
                    "{at}: {:.2} % of joins refused (95 % CI {:.2}–{:.2} %), {:.2} points above the {target} % target ({} over {} seeds)",
                    c.refusal_pct,
                    c.refusal_ci95_pct.0,
                    c.refusal_ci95_pct.1,
                    c.refusal_pct - target,
                    reasons.join(", "),
                    c.runs
                ));
            }
            let max_u = f.targets.max_utilisation_pct;
            if spec.failure.is_none() && c.utilisation_pct > max_u {
                misses.push(format!(
                    "{at}: {:.1} % of seats in use at the busiest moment, {:.1} points above the {max_u} % headroom target",
                    c.utilisation_pct,
                    c.utilisation_pct - max_u
                ));
            }
            for v in &c.violations {
                let what = if v.contains("liveness") {
                    format!("not everyone still seated heard media again within {RECOVERY_S} s of the failure")
                } else {
                    "a check failed".into()
                };
                // measure::measure writes "seed N: ..."; replay that seed.
                let seed = v
                    .strip_prefix("seed ")
                    .and_then(|r| r.split(':').next())
                    .and_then(|n| n.parse::<u64>().ok())
                    .unwrap_or(first);
                misses.push(format!(
                    "{at}: {what}: {v} (replay: {})",
                    c.replay.replace("{seed}", &seed.to_string())
                ));
            }
            c
        })
        .collect();
    Candidate {
        topology: t,
        named_by,
        cost: cost(f, t),
        seeds: seeds.to_vec(),
        passed: misses.is_empty(),
        misses,
        cases,
    }
}

/// With growth: the analytic sizing of each quarter's peak.
fn growth(f: &Forecast) -> Vec<QuarterRow> {
    let Some(g) = f.growth else { return vec![] };
    (0..=g.quarters)
        .map(|q| {
            let peak = (f.peak_participants as f64
                * (1.0 + g.per_quarter_pct / 100.0).powi(q as i32))
            .round()
            .max(1.0) as u32;
            let (meetings, a) = analytic(f, peak);
            QuarterRow {
                quarter: q,
                peak_participants: peak,
                meetings: meetings.len() as u32,
                topology: a.packed,
                cost: cost(f, a.packed),
            }
        })
        .collect()
}

fn summary(f: &Forecast, meetings: u32) -> model::ForecastSummary {
    let limits = f.limits();
    model::ForecastSummary {
        name: f.name.clone(),
        description: f.description.clone(),
        peak_participants: f.peak_participants,
        meetings,
        meeting_sizes: f.meeting_sizes.iter().map(|b| (b.size, b.share)).collect(),
        burst_joins_per_s: f.burst.joins_per_s,
        burst_duration_s: f.burst.duration_s,
        meeting_minutes: f.meeting_minutes,
        controllers: match f.availability.controllers {
            ControllerMode::Single => "single",
            ControllerMode::Pair => "pair",
        }
        .into(),
        survive: f
            .availability
            .survive
            .iter()
            .map(|&x| cases::failure_name(x).to_string())
            .collect(),
        max_refusal_pct: f.targets.max_refusal_pct,
        max_utilisation_pct: f.targets.max_utilisation_pct,
        mmr_capacity: limits.mmr_capacity,
        max_meetings: limits.max_meetings,
        cost: f.cost.as_ref().map(|c| model::CostSummary {
            controller_vm: c.controller_vm,
            mmr_vm: c.mmr_vm,
            currency: c.currency.clone(),
        }),
    }
}

struct ProgressBar {
    label: String,
    total: usize,
    started: Instant,
    tty: bool,
}

impl ProgressBar {
    fn new(label: &str, total: usize) -> ProgressBar {
        let bar = ProgressBar {
            label: label.into(),
            total,
            started: Instant::now(),
            tty: std::io::stderr().is_terminal(),
        };
        bar.draw(0, 0);
        bar
    }

    fn show(&self, done: &[&RunResult]) {
        let n = done.len();
        let refusing = done
            .iter()
            .filter(|r| measure::refused(r).values().sum::<u64>() > 0)
            .count();
        if self.tty || (n * 10 / self.total.max(1)) != ((n - 1) * 10 / self.total.max(1)) {
            self.draw(n, refusing);
        }
    }

    fn draw(&self, n: usize, refusing: usize) {
        const WIDTH: usize = 24;
        let filled = n * WIDTH / self.total.max(1);
        let secs = self.started.elapsed().as_secs();
        let eta = if n > 0 {
            let left = secs as f64 * (self.total - n) as f64 / n as f64;
            format!(", ~{} left", mmss(left as u64))
        } else {
            String::new()
        };
        let line = format!(
            "[{}{}] {n}/{} runs, {refusing} with refusals, {}{eta} · {}",
            "#".repeat(filled),
            "-".repeat(WIDTH - filled),
            self.total,
            mmss(secs),
            self.label
        );
        let mut err = std::io::stderr().lock();
        if self.tty {
            let _ = write!(err, "\r\x1b[2K{line}");
        } else {
            let _ = writeln!(err, "{line}");
        }
        let _ = err.flush();
    }

    fn finish(&self) {
        if self.tty {
            eprintln!();
        }
    }
}

fn mmss(s: u64) -> String {
    format!("{}:{:02}", s / 60, s % 60)
}
