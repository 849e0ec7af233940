//! What a capacity plan found, as data: the JSON report is this, serialised, and the Markdown and
//! HTML reports are rendered from it. Nothing here decides anything.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanReport {
    pub forecast: ForecastSummary,
    /// The analytic candidates, before any simulation.
    pub analytic: Analytic,
    /// Every topology simulated, smallest first (the rule of thumb first when it is smaller than
    /// the rest). Each says whether it met every target, and if not why.
    pub candidates: Vec<Candidate>,
    /// Index into `candidates` of the smallest topology that met every target, if any did.
    pub recommended: Option<usize>,
    /// With growth in the forecast: one row per quarter, sized analytically (bin packing,
    /// headroom and required failures, as for the peak), the current quarter first.
    pub growth: Vec<QuarterRow>,
    /// How the simulated cases were run, and how to run any one again.
    pub replay: Replay,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ForecastSummary {
    pub name: String,
    pub description: String,
    pub peak_participants: u32,
    /// Whole meetings at the peak, derived from the size distribution.
    pub meetings: u32,
    /// (size, share of meetings) bins, as in the forecast.
    pub meeting_sizes: Vec<(u32, f64)>,
    pub burst_joins_per_s: f64,
    pub burst_duration_s: f64,
    pub meeting_minutes: f64,
    /// "single" or "pair".
    pub controllers: String,
    /// The failures to survive at peak: "controller_vm", "mmr_vm", "controller_and_mmr_vm".
    pub survive: Vec<String>,
    pub max_refusal_pct: f64,
    pub max_utilisation_pct: f64,
    pub mmr_capacity: u32,
    pub max_meetings: u32,
    /// Cost per VM per month, when the forecast gives one.
    pub cost: Option<CostSummary>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CostSummary {
    pub controller_vm: f64,
    pub mmr_vm: f64,
    pub currency: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Analytic {
    /// The product's division rule: participants ÷ MMR capacity, meetings ÷ meeting limit.
    pub rule_of_thumb: Topology,
    /// Bin packing with meeting affinity, the meeting limit, headroom and every required failure.
    pub packed: Topology,
    /// Erlang B, optimistic: the seats (and MMRs) the refusal target needs were any participant
    /// able to sit on any MMR. `offered_erlangs` is the peak.
    pub erlang_offered: f64,
    pub erlang_seats: u32,
    pub erlang_mmrs: u32,
}

/// A deployment shape: `zones` zones, each with `controllers` controller VMs (1, or 2 for an HA
/// pair; each brings its own MMR) and `mmr_vms` MMR VMs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Topology {
    pub zones: u32,
    pub controllers: u32,
    pub mmr_vms: u32,
}

impl Topology {
    /// MMRs in the whole deployment (each controller VM's own plus the MMR VMs).
    pub fn mmrs(&self) -> u32 {
        self.zones * (self.controllers + self.mmr_vms)
    }
    pub fn controller_vms(&self) -> u32 {
        self.zones * self.controllers
    }
    pub fn mmr_vm_count(&self) -> u32 {
        self.zones * self.mmr_vms
    }
    /// "2 zones × (HA pair + 3 MMR VMs)".
    pub fn describe(&self) -> String {
        let ctl = if self.controllers == 2 {
            "HA pair"
        } else {
            "1 controller VM"
        };
        let vms = match self.mmr_vms {
            0 => String::new(),
            1 => " + 1 MMR VM".into(),
            n => format!(" + {n} MMR VMs"),
        };
        if self.zones == 1 {
            format!("{ctl}{vms}")
        } else {
            format!("{} zones × ({ctl}{vms})", self.zones)
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    pub topology: Topology,
    /// Which rules name this topology: "rule of thumb", "bin packing", "Erlang B".
    pub named_by: Vec<String>,
    /// Monthly cost of every VM, when the forecast gives costs.
    pub cost: Option<f64>,
    /// Seeds every case of this candidate ran (screening only, or screening and confirmation).
    pub seeds: Vec<u64>,
    /// One per zone and failure: the zone at peak with nothing failing, then under each failure.
    pub cases: Vec<Case>,
    /// Whether every case met every target.
    pub passed: bool,
    /// Why not, one line each: which target, by how much, under which failure, in which zone.
    pub misses: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Case {
    /// Zone number, from 1.
    pub zone: u32,
    /// `None`: the peak with nothing failing; else the failure, e.g. "controller_vm".
    pub failure: Option<String>,
    /// Hosts killed at the worst moment, and when (seconds into the run).
    pub killed: Vec<String>,
    pub kill_at_s: Option<f64>,
    /// The scenario file this case ran (relative to the report's directory).
    pub scenario_file: String,
    /// The command that re-runs this case on one seed (`{seed}` to be replaced).
    pub replay: String,
    pub participants: u32,
    pub meetings: u32,
    /// Seats in the zone with nothing failed, and after the failure.
    pub capacity: u32,
    pub capacity_after_failure: u32,
    pub runs: u32,
    /// Participants who tried to join, over all seeds.
    pub joins: u64,
    /// Participants refused (typed reason) or failed (no admission, no typed reason), over all
    /// seeds, by reason.
    pub refused: u64,
    pub refused_by_reason: BTreeMap<String, u64>,
    /// Refusals in percent of joins: the mean over seeds, and its 95 % confidence interval
    /// (Student's t over the per-seed rates).
    pub refusal_pct: f64,
    pub refusal_ci95_pct: (f64, f64),
    /// The most participants each MMR carried at once (worst seed), with its capacity.
    pub mmr_peaks: Vec<Peak>,
    /// The most meetings each controller hosted at once (worst seed), with its limit.
    pub controller_peaks: Vec<Peak>,
    /// Participants in meetings at once at the busiest moment, in percent of the zone's seats
    /// with nothing failed (worst seed).
    pub utilisation_pct: f64,
    /// Failover: from the failure until media flowed again, for the participants who had to
    /// rejoin (all seeds). Empty without a failure.
    pub recovery_ms: Percentiles,
    pub recovery_samples_ms: Vec<u64>,
    /// From starting to join until admitted, for every admitted participant (all seeds).
    pub join_ms: Percentiles,
    /// Participants in meetings and healthy seats, once a second, on the first seed.
    pub timeline: Vec<Sample>,
    /// Checker violations other than refusals (safety, liveness), first per kind, with seed.
    pub violations: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Peak {
    pub name: String,
    pub peak: u32,
    pub limit: u32,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Percentiles {
    pub n: u64,
    pub p50: u64,
    pub p99: u64,
    pub max: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    pub t_s: f64,
    pub participants: u32,
    pub capacity: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuarterRow {
    /// 0 is now (the forecast's peak), 1 the next quarter, ...
    pub quarter: u32,
    pub peak_participants: u32,
    pub meetings: u32,
    pub topology: Topology,
    pub cost: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Replay {
    /// The commit the planner was built from ("unknown" outside a git checkout).
    pub commit: String,
    /// SHA-256 of the forecast file's bytes, hex.
    pub forecast_sha256: String,
    pub forecast_file: String,
    /// Seeds every candidate ran first; the recommended one also ran `confirm_seeds`.
    pub screen_seeds: Vec<u64>,
    pub confirm_seeds: Vec<u64>,
    /// The command that made this report.
    pub command: String,
    /// RTP packets per second per simulated participant: low, as admission, placement and
    /// failover are what is checked, not media quality.
    pub media_pps: u32,
    /// Participants per meeting who send media; the others listen.
    pub speakers_per_meeting: u32,
    /// How participants arrived in the simulation, in words.
    pub arrivals: String,
    /// Simulated runs the judgement rests on. (How long they took is not in the report: it is a
    /// function of the forecast and the build alone, whatever machines ran it.)
    pub runs: u64,
}
