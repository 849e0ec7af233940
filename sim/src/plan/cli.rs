//! The capacity planner's command line (`ci/plan`).

use super::shard::{command, run_shard, PlanSweep};
use super::{load_forecast, local_runner, plan, PlanError, Settings};
use crate::pool::Pool;
use crate::sweep::merge::{shard_files, MergeError};
use crate::sweep::Shard;
use clap::{Parser, Subcommand};
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "plan",
    about = "Size a meeting-connector deployment for a forecast, and check the sizing by simulation",
    long_about = "Size a meeting-connector deployment for a forecast, and check the sizing by simulation.\n\n\
        Reads a forecast (peak participants, meeting sizes, the join burst, which failures the \
        deployment must survive, the targets), computes the product's rule of thumb, a bin-packing \
        sizing and an Erlang-B bound, then runs the real connector code in deterministic \
        simulation: each candidate topology, smallest first, at the forecast's peak and with each \
        required failure at the worst moment, over several seeds. The smallest topology that meets \
        every target is recommended; the report says why each smaller one was not enough.\n\n\
        Writes to --out: plan.md, plan.html (self-contained, with charts), plan.json, charts/*.svg, \
        and cases/*.toml — each simulated case as a scenario file, which `ci/scenario run FILE \
        --seed N` replays.\n\n\
        Through ci/plan, paths are relative to the repository's root.\n\n\
        Across machines: run `plan FORECAST --shard K/N --out DIR` on each of N machines (each \
        runs its share of every candidate's cases on every seed), then `plan merge DIR... --out \
        DIR`: the same report one machine writes.\n\n\
        Exit status: 0 with a recommendation, 1 when no candidate met the targets (the report says \
        which came closest), 2 when the forecast or the command line is wrong.",
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Hidden>,
    /// The forecast (TOML): see the forecasts shipped in fixtures/forecasts and their README.
    #[arg(required = true)]
    forecast: Option<PathBuf>,
    /// Where the report goes.
    #[arg(long, default_value = "plan-report")]
    out: PathBuf,
    /// Seeds the recommended topology is checked on (the first --screen-seeds of them are run
    /// by every candidate).
    #[arg(long, default_value_t = 20)]
    seeds: u64,
    /// Seeds every candidate runs before the more expensive confirmation.
    #[arg(long, default_value_t = 3)]
    screen_seeds: u64,
    /// The first seed (seeds are consecutive from it).
    #[arg(long, default_value_t = 1)]
    first_seed: u64,
    /// Simulations run at once (default: the machine's cores).
    #[arg(long)]
    jobs: Option<usize>,
    /// How the peak's meetings open: one after another (sequential), or all at once
    /// (together: every meeting is placed on an MMR before anyone knows how large it grows,
    /// the worst case).
    #[arg(long, value_enum, default_value = "sequential")]
    meetings_open: super::cases::Opening,
    /// Check only this many MMR VMs per zone instead of searching for the smallest topology
    /// ("what if we deploy this?"); the report judges it against every target all the same.
    #[arg(long)]
    mmr_vms: Option<u32>,
    /// With --mmr-vms: this many zones (default: as many as the meeting limit needs).
    #[arg(long, requires = "mmr_vms")]
    zones: Option<u32>,
    /// Wall-clock seconds one simulated run may take before it counts as hung.
    #[arg(long, default_value_t = 600)]
    seed_budget_s: u64,
    /// Run only shard K of N of the plan (1 ≤ K ≤ N) and write shard-K-of-N.jsonl to --out:
    /// every candidate's cases on every seed, dealt round-robin. `plan merge` makes the report.
    #[arg(long, value_name = "K/N")]
    shard: Option<Shard>,
}

#[derive(Subcommand)]
enum Hidden {
    /// One seed of one case in this process (what the planner starts for each run).
    #[command(hide = true)]
    Worker(crate::pool::WorkerArgs),
    /// Merge the shards of a plan (`--shard K/N`) into the report one machine would write.
    ///
    /// Refuses (exit status 2) shards of different builds, forecasts or options, and names
    /// every missing or repeated shard and run. Exit status as a plan's: 0 with a
    /// recommendation, 1 without.
    Merge {
        /// Shard files (shard-K-of-N.jsonl), or directories searched for them.
        #[arg(required = true)]
        inputs: Vec<PathBuf>,
        /// Where the report goes.
        #[arg(long, default_value = "plan-report")]
        out: PathBuf,
    },
}

pub fn main() -> i32 {
    let cli = Cli::parse();
    match &cli.command {
        Some(Hidden::Worker(w)) => return w.run(),
        Some(Hidden::Merge { inputs, out }) => return merge(inputs, out),
        None => {}
    }
    let file = cli.forecast.clone().expect("required by clap");
    match run(&cli, &file) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            if matches!(e, PlanError::Parse(..) | PlanError::Invalid(..)) {
                eprintln!("(every field is described in fixtures/forecasts/README.md)");
            }
            2
        }
    }
}

fn run(cli: &Cli, file: &Path) -> Result<i32, PlanError> {
    let (forecast, sha) = load_forecast(file)?;
    let forecast_toml =
        std::fs::read_to_string(file).map_err(|e| PlanError::Read(file.into(), e))?;
    if cli.seeds == 0 || cli.screen_seeds == 0 {
        return Err(PlanError::Parse(
            file.into(),
            "--seeds and --screen-seeds must be at least 1".into(),
        ));
    }
    if cli.mmr_vms.is_some_and(|v| v > super::MAX_MMR_VMS) || cli.zones == Some(0) {
        return Err(PlanError::Parse(
            file.into(),
            format!(
                "--mmr-vms: at most {} per zone (the simulator's limit); --zones: at least 1",
                super::MAX_MMR_VMS
            ),
        ));
    }
    let screen = cli.screen_seeds.min(cli.seeds);
    let seeds: Vec<u64> = (cli.first_seed..cli.first_seed + cli.seeds).collect();
    let logs = cli.out.join("logs");
    std::fs::create_dir_all(&logs).map_err(|e| PlanError::Write(logs.clone(), e))?;
    let sweep = PlanSweep {
        forecast_file: file.display().to_string(),
        forecast_sha256: sha.clone(),
        forecast_toml,
        screen_seeds: seeds[..screen as usize].to_vec(),
        confirm_seeds: seeds[screen as usize..].to_vec(),
        opening: cli.meetings_open,
        only: cli.mmr_vms.map(|v| (v, cli.zones)),
    };
    let settings = Settings {
        screen_seeds: sweep.screen_seeds.clone(),
        confirm_seeds: sweep.confirm_seeds.clone(),
        pool: Pool {
            jobs: cli
                .jobs
                .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
            budget: Duration::from_secs(cli.seed_budget_s),
            work_dir: logs,
        },
        out: cli.out.clone(),
        command: command(&sweep, &cli.out),
        replay_prefix: "ci/scenario run".into(),
        opening: sweep.opening,
        only: sweep.only,
    };
    eprintln!(
        "planning {:?} ({} participants at peak): seeds {}..={}, the first {screen} for every candidate; {} at once",
        forecast.name,
        forecast.peak_participants,
        seeds[0],
        seeds[seeds.len() - 1],
        settings.pool.jobs
    );
    let started = std::time::Instant::now();
    if let Some(shard) = cli.shard {
        let (runs, failed, path) = run_shard(&forecast, sweep, &settings, shard)?;
        println!(
            "shard {shard}: {runs} runs ({failed} broke a check) in {:.0} s; results in {}\nmerge every shard's file with: plan merge SHARD-FILES-OR-DIRECTORIES --out DIR",
            started.elapsed().as_secs_f64(),
            path.display()
        );
        return Ok(0);
    }
    let report = plan(
        &forecast,
        file,
        &sha,
        &settings,
        &mut local_runner(&settings),
    )?;
    write_report(&cli.out, &report)?;
    let md = cli.out.join("plan.md");
    let html = cli.out.join("plan.html");
    match report.recommended.map(|i| &report.candidates[i]) {
        Some(c) => {
            println!(
                "recommended: {} — {} controller VM(s) and {} MMR VM(s){}; met every target on {} seeds",
                c.topology.describe(),
                c.topology.controller_vms(),
                c.topology.mmr_vm_count(),
                c.cost
                    .zip(report.forecast.cost.as_ref())
                    .map(|(x, k)| format!(", {x:.0} {} per month", k.currency))
                    .unwrap_or_default(),
                c.seeds.len()
            );
        }
        None => println!("no candidate met every target; the report says which came closest"),
    }
    println!(
        "report: {} and {} ({} runs in {:.0} s)",
        md.display(),
        html.display(),
        report.replay.runs,
        started.elapsed().as_secs_f64()
    );
    Ok(if report.recommended.is_some() { 0 } else { 1 })
}

fn merge(inputs: &[PathBuf], out: &Path) -> i32 {
    let report = shard_files(inputs)
        .map_err(super::shard::PlanMergeError::Merge)
        .and_then(|files| super::shard::merge(&files, out));
    match report {
        Ok(report) => {
            println!(
                "report: {} and {} ({} runs)",
                out.join("plan.md").display(),
                out.join("plan.html").display(),
                report.replay.runs
            );
            if report.recommended.is_some() {
                0
            } else {
                1
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            match e {
                super::shard::PlanMergeError::Merge(MergeError::Write(..)) => 1,
                _ => 2,
            }
        }
    }
}

/// plan.md, plan.html, plan.json and charts/*.svg under `out`.
pub fn write_report(out: &Path, report: &mc_plan::model::PlanReport) -> Result<(), PlanError> {
    let write = |path: PathBuf, text: &str| {
        std::fs::write(&path, text).map_err(|e| PlanError::Write(path.clone(), e))
    };
    let charts = out.join("charts");
    std::fs::create_dir_all(&charts).map_err(|e| PlanError::Write(charts.clone(), e))?;
    for c in mc_plan::render::charts(report) {
        write(charts.join(c.file_name), &c.svg)?;
    }
    write(out.join("plan.md"), &mc_plan::render::markdown(report))?;
    write(out.join("plan.html"), &mc_plan::render::html(report))?;
    write(out.join("plan.json"), &mc_plan::render::json(report))?;
    Ok(())
}
