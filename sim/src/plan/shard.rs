//! A capacity plan split across machines. A plan is adaptive on one machine (it stops at the
//! first topology that meets the targets, and stops confirming one that already missed), which
//! a split cannot be without shards waiting on each other. So each shard runs its share of
//! *every* case of every topology the plan may try, on every seed; the merge then makes the very
//! decisions one machine makes, in the same order, reading the results instead of running them,
//! and renders the same report. The price is the runs one machine would have skipped.

use super::{all_cases, cases, plan, write_cases, PlanError, Settings};
use crate::pool::{Progress, Task};
use crate::run::RunResult;
use crate::sweep::merge::{collect, copy_log, MergeError};
use crate::sweep::{Build, Header, ScenarioEntry, Shard, ShardWriter, FORMAT};
use mc_core::plan::forecast::Forecast;
use mc_plan::model::PlanReport;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// What a sharded plan is of, in every shard's header: the forecast itself (so the merge needs
/// nothing but the shards) and every option that changes the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanSweep {
    pub forecast_file: String,
    pub forecast_sha256: String,
    pub forecast_toml: String,
    pub screen_seeds: Vec<u64>,
    pub confirm_seeds: Vec<u64>,
    pub opening: cases::Opening,
    pub only: Option<(u32, Option<u32>)>,
}

/// The command a plan's report says made it: the options that shape the report, not the
/// machine's (`--jobs`), so one machine and any split of it print the same.
pub fn command(p: &PlanSweep, out: &Path) -> String {
    let seeds = p.screen_seeds.len() + p.confirm_seeds.len();
    let mut c = format!(
        "ci/plan {} --out {} --seeds {seeds} --screen-seeds {} --first-seed {}",
        p.forecast_file,
        out.display(),
        p.screen_seeds.len(),
        p.screen_seeds.first().copied().unwrap_or(1)
    );
    if p.opening != cases::Opening::Sequential {
        c += " --meetings-open together";
    }
    if let Some((vms, zones)) = p.only {
        c += &format!(" --mmr-vms {vms}");
        if let Some(z) = zones {
            c += &format!(" --zones {z}");
        }
    }
    c
}

/// Runs shard `shard` of the plan: its share of every case on every seed. Writes the case files,
/// `shard-K-of-N.jsonl` and the failing seeds' event logs (under `logs/`) to `s.out`. How many
/// runs it made and how many failed a check.
pub fn run_shard(
    forecast: &Forecast,
    sweep: PlanSweep,
    s: &Settings,
    shard: Shard,
) -> Result<(usize, usize, PathBuf), PlanError> {
    let specs = all_cases(forecast, s);
    let mut names = std::collections::BTreeSet::new();
    if let Some(twice) = specs.iter().find(|c| !names.insert(&c.scenario.name)) {
        // Results are kept by case name: a plan whose cases share one cannot be split.
        return Err(PlanError::Parse(
            PathBuf::from(&sweep.forecast_file),
            format!(
                "two cases of this plan are both named {}: it cannot be split into shards",
                twice.scenario.name
            ),
        ));
    }
    let cases_dir = s.out.join("cases");
    std::fs::create_dir_all(&cases_dir).map_err(|e| PlanError::Write(cases_dir.clone(), e))?;
    let files = write_cases(&cases_dir, &specs)?;
    let seeds: Vec<u64> = sweep
        .screen_seeds
        .iter()
        .chain(&sweep.confirm_seeds)
        .copied()
        .collect();
    let mut entries = Vec::new();
    for spec in &specs {
        // The case itself, not its file: the file's comment names this shard's --out.
        let text = toml::to_string(&spec.scenario).expect("a scenario serialises");
        let file = Path::new("cases").join(format!("{}.toml", spec.scenario.name));
        entries.push(ScenarioEntry::new(
            &spec.scenario.name,
            &file,
            text.as_bytes(),
            &seeds,
        ));
    }
    let path = s.out.join(shard.file_name());
    let build = Build::this().map_err(|e| PlanError::Write(path.clone(), e))?;
    let header = Header {
        format: FORMAT,
        shard,
        build,
        scenarios: entries,
        plan: Some(sweep),
    };
    let mut tasks = Vec::new();
    let mut pair = 0;
    for (spec, file) in specs.iter().zip(&files) {
        for &seed in &seeds {
            if shard.takes(pair) {
                tasks.push(Task {
                    file,
                    scenario: &spec.scenario,
                    seed,
                });
            }
            pair += 1;
        }
    }
    let mut writer =
        ShardWriter::create(&path, &header).map_err(|e| PlanError::Write(path.clone(), e))?;
    let bar = super::ProgressBar::new(
        &format!("shard {shard}: every candidate's cases"),
        tasks.len(),
    );
    let results = s.pool.run_tasks(&tasks, |p| {
        if let Progress::Finished { done, .. } = p {
            bar.show(done);
        }
    });
    bar.finish();
    super::keep_failing_logs(s, std::slice::from_ref(&results));
    writer
        .append(&results)
        .map_err(|e| PlanError::Write(path.clone(), e))?;
    let failed = results.iter().filter(|r| !r.passed()).count();
    Ok((results.len(), failed, path))
}

/// Why a plan's shards cannot be merged.
#[derive(Debug)]
pub enum PlanMergeError {
    Merge(MergeError),
    Plan(PlanError),
}

impl std::fmt::Display for PlanMergeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PlanMergeError::Merge(e) => e.fmt(f),
            PlanMergeError::Plan(e) => e.fmt(f),
        }
    }
}

fn refused(why: String) -> PlanMergeError {
    PlanMergeError::Merge(MergeError::Refused(vec![why]))
}

/// Merges a plan's shard `files` into the report one machine would have written, under `out`
/// (with the case files and the failing seeds' logs the report names). `settings` gives the
/// pool's budget only; everything that shapes the report comes from the shards.
pub fn merge(files: &[PathBuf], out: &Path) -> Result<PlanReport, PlanMergeError> {
    let sweep = collect(files).map_err(PlanMergeError::Merge)?;
    let Some(p) = sweep.header.plan.clone() else {
        return Err(refused(
            "these are the scenario runner's shards: merge them with `scenario merge`".into(),
        ));
    };
    if mc_core::digest::sha256_hex(p.forecast_toml.as_bytes()) != p.forecast_sha256 {
        return Err(refused(format!(
            "the forecast carried in the shards does not hash to the {} they name",
            p.forecast_sha256
        )));
    }
    let forecast_file = PathBuf::from(&p.forecast_file);
    let forecast: Forecast = toml::from_str(&p.forecast_toml).map_err(|e| {
        PlanMergeError::Plan(PlanError::Parse(forecast_file.clone(), e.to_string()))
    })?;
    forecast
        .validate()
        .map_err(|e| PlanMergeError::Plan(PlanError::Invalid(forecast_file.clone(), e)))?;
    let settings = Settings {
        screen_seeds: p.screen_seeds.clone(),
        confirm_seeds: p.confirm_seeds.clone(),
        pool: crate::pool::Pool {
            jobs: 1,
            budget: std::time::Duration::from_secs(1),
            work_dir: out.join("logs"),
        },
        out: out.to_path_buf(),
        command: command(&p, out),
        replay_prefix: "ci/scenario run".into(),
        opening: p.opening,
        only: p.only,
    };
    // The shards must hold the cases this build derives from the forecast, or a lookup below
    // would come up empty.
    let expected: Vec<String> = all_cases(&forecast, &settings)
        .into_iter()
        .map(|c| c.scenario.name)
        .collect();
    let held: Vec<String> = sweep
        .header
        .scenarios
        .iter()
        .map(|e| e.name.clone())
        .collect();
    if expected != held {
        return Err(refused(format!(
            "the shards hold cases {held:?}, but this plan has {expected:?}"
        )));
    }
    let mut seeds: Vec<u64> = p
        .screen_seeds
        .iter()
        .chain(&p.confirm_seeds)
        .copied()
        .collect();
    seeds.sort_unstable();
    if let Some(e) = sweep
        .header
        .scenarios
        .iter()
        .find(|e| e.seeds().ne(seeds.iter().copied()))
    {
        return Err(refused(format!(
            "case {} is run on other seeds than the plan's screening and confirmation seeds",
            e.name
        )));
    }
    let logs = out.join("logs");
    std::fs::create_dir_all(&logs)
        .map_err(|e| PlanMergeError::Plan(PlanError::Write(logs.clone(), e)))?;
    let mut by_case: BTreeMap<(&str, u64), (&Path, &RunResult)> = BTreeMap::new();
    for (i, entry) in sweep.header.scenarios.iter().enumerate() {
        for (from, r) in sweep.of(i) {
            by_case.insert((entry.name.as_str(), r.seed), (from, r));
        }
    }
    let mut copy_failed: Option<MergeError> = None;
    let mut lookup = |_: &str, specs: &[cases::CaseSpec], _: &[PathBuf], seeds: &[u64]| {
        specs
            .iter()
            .map(|c| {
                seeds
                    .iter()
                    .map(|&seed| {
                        let (from, r) = by_case[&(c.scenario.name.as_str(), seed)];
                        if !r.passed() {
                            let name = format!("{}-seed{seed}.log", r.scenario);
                            let from_dir = from.parent().unwrap_or(Path::new(".")).join("logs");
                            if let Err(e) = copy_log(&from_dir, &name, &logs) {
                                copy_failed.get_or_insert(e);
                            }
                        }
                        r.clone()
                    })
                    .collect()
            })
            .collect()
    };
    let sha = p.forecast_sha256.clone();
    let report = plan(&forecast, &forecast_file, &sha, &settings, &mut lookup)
        .map_err(PlanMergeError::Plan)?;
    if let Some(e) = copy_failed {
        return Err(PlanMergeError::Merge(e));
    }
    super::cli::write_report(out, &report).map_err(PlanMergeError::Plan)?;
    Ok(report)
}
