//! A forecast's simulated cases: for one zone of a candidate topology, the peak with nothing
//! failing, and the same peak with each failure the forecast must survive, the nodes killed at
//! the worst moment (everyone in, just after the last join). Each case is an ordinary scenario
//! file, so any one of them re-runs with `ci/scenario`.

use crate::scenario::{ArrivalOrder, Expect, Fault, FaultAction, Scenario, Topology, Workload};
use mc_core::plan::forecast::{ControllerMode, Failure, Forecast};
use mc_plan::model;

/// RTP packets per second per simulated participant: capacity plans check admission, placement
/// and failover, not media quality, and a low rate keeps a 1,000-participant zone quick.
pub const MEDIA_PPS: u32 = 2;
/// Participants per meeting who send media; the rest listen (as most of a large meeting does,
/// and as an MMR forwarding the active speakers carries). Fan-out, not seats, is what costs a
/// simulation time, and seats are what a plan is about.
pub const SPEAKERS: u32 = 3;
/// Seconds between the last join and the failure: the peak settles (every participant's media
/// flowing) before the worst moment.
const SETTLE_S: f64 = 5.0;
/// Seconds after a failure within which every participant still seated must hear media again.
pub const RECOVERY_S: f64 = 15.0;
/// Seconds the peak holds without a failure (so utilisation is read at rest).
const HOLD_S: f64 = 10.0;

/// Rejections a capacity case counts rather than forbids: what an undersized zone answers.
const CAPACITY_REJECTIONS: &[&str] = &[
    "meeting_full",
    "zone_full",
    "controller_meeting_limit",
    "no_mmr_available",
    "not_ready",
    "controller_draining",
    "rejoin_failed",
];

/// One case, ready to write and run.
pub struct CaseSpec {
    pub zone: u32,
    pub failure: Option<Failure>,
    pub killed: Vec<String>,
    pub kill_at_s: Option<f64>,
    pub scenario: Scenario,
    pub participants: u32,
    pub meetings: u32,
    /// Seats with nothing failed, and after the failure.
    pub capacity: u32,
    pub capacity_after: u32,
}

pub fn failure_name(f: Failure) -> &'static str {
    match f {
        Failure::ControllerVm => "controller_vm",
        Failure::MmrVm => "mmr_vm",
        Failure::ControllerAndMmrVm => "controller_and_mmr_vm",
    }
}

/// How the meetings of the peak open.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Opening {
    /// One after another, in an order drawn from the seed, each meeting's participants arriving
    /// (at the burst rate) before the next opens: the controller places each new meeting
    /// knowing how full every MMR already is.
    Sequential,
    /// All at once: the first participant of every meeting, then the second of every meeting,
    /// ... Every meeting is placed while the MMRs are nearly empty, not knowing how large it
    /// will grow: the worst case for size-blind placement.
    Together,
}

impl Opening {
    pub fn describe(self) -> &'static str {
        match self {
            Opening::Sequential => "meetings open one after another (in an order drawn from each seed), each meeting's participants arriving at the burst rate before the next opens",
            Opening::Together => "every meeting opens at once and participants trickle into all of them at the burst rate (the worst case for placement, which does not know how large a new meeting will grow)",
        }
    }
}

/// The case for zone `zone` (from 1) of `topology`, holding `meetings` (sizes), under `failure`.
pub fn case(
    forecast: &Forecast,
    topology: model::Topology,
    zone: u32,
    meetings: &[u32],
    failure: Option<Failure>,
    opening: Opening,
) -> CaseSpec {
    let limits = forecast.limits();
    let participants: u32 = meetings.iter().sum();
    let ramp_s = (participants as f64 / forecast.burst.joins_per_s).ceil();
    let kill_at_s = ramp_s + SETTLE_S;
    // Which hosts a failure takes: controller-1 (with its own MMR); mmr-2, linked to the
    // surviving controller-2 when there is one (so the survivor loses seats too), else mmr-1.
    let vms = topology.mmr_vms;
    let killed: Vec<String> = match failure {
        None => vec![],
        Some(Failure::ControllerVm) => vec!["controller-1".into()],
        Some(Failure::MmrVm) => (vms > 0).then(|| "mmr-1".to_string()).into_iter().collect(),
        Some(Failure::ControllerAndMmrVm) => {
            let mut k = vec!["controller-1".to_string()];
            match vms {
                0 => {}
                1 => k.push("mmr-1".into()),
                _ => k.push("mmr-2".into()),
            }
            k
        }
    };
    let duration_s = if failure.is_some() {
        kill_at_s + RECOVERY_S + 2.0
    } else {
        ramp_s + SETTLE_S + HOLD_S
    };
    let capacity = (topology.controllers + vms) * limits.mmr_capacity;
    let capacity_after = capacity - killed.len() as u32 * limits.mmr_capacity;
    let what = failure.map_or("peak", failure_name);
    // Every topology's cases have names of their own (two candidates may differ only in their
    // zone count), so a plan's case files and a sharded plan's results never mix them up.
    let name = format!(
        "{}-{}z{}c{}v-z{zone}-{}",
        slug(&forecast.name),
        topology.zones,
        topology.controllers,
        vms,
        what.replace('_', "-")
    );
    let scenario = Scenario {
        name,
        description: format!(
            "capacity plan of {:?}: zone {zone} of {} at its peak ({participants} participants in {} meetings){}",
            forecast.name,
            topology.describe(),
            meetings.len(),
            if killed.is_empty() {
                String::new()
            } else {
                format!(", {} killed at {kill_at_s} s", killed.join(" and "))
            }
        ),
        duration_s,
        topology: Topology {
            controllers: topology.controllers,
            mmr_vms: vms,
            mmr_capacity: limits.mmr_capacity,
            mmr_vm_capacity: limits.mmr_capacity,
            max_meetings: limits.max_meetings,
            lease_ms: None,
        },
        workload: Workload {
            meetings: meetings.len() as u32,
            participants_min: meetings.iter().copied().min().unwrap_or(1),
            participants_max: meetings.iter().copied().max().unwrap_or(1),
            arrivals_per_s: forecast.burst.joins_per_s,
            // Everyone stays to the end: the peak holds through the failure.
            stay_s_min: duration_s,
            stay_s_max: duration_s,
            media_pps: MEDIA_PPS,
            waves: 1,
            arrival_order: match opening {
                Opening::Sequential => ArrivalOrder::ByMeeting,
                Opening::Together => ArrivalOrder::Interleaved,
            },
            meeting_sizes: meetings.to_vec(),
            speakers_per_meeting: Some(SPEAKERS),
            expected_participants: None,
        },
        faults: killed
            .iter()
            .map(|h| Fault {
                at_s: kill_at_s,
                action: FaultAction::Kill { host: h.clone() },
            })
            .collect(),
        expect: Expect {
            recovery_s: RECOVERY_S,
            allowed_rejections: CAPACITY_REJECTIONS
                .iter()
                .map(|s| s.to_string())
                .collect(),
            // Measured, not required: the planner judges refusals against the forecast.
            min_admitted_pct: 0.0,
            max_loss_pct: 100.0,
            links_on_dedicated_ports: false,
        },
        swarm: None,
        regression_seeds: vec![],
    };
    CaseSpec {
        zone,
        failure,
        kill_at_s: failure.map(|_| kill_at_s),
        killed,
        scenario,
        participants,
        meetings: meetings.len() as u32,
        capacity,
        capacity_after,
    }
}

/// Every case of a candidate: per distinct zone (zones with the same meetings are checked once),
/// the peak and then each required failure that applies.
pub fn cases(
    forecast: &Forecast,
    topology: model::Topology,
    zones: &[Vec<u32>],
    opening: Opening,
) -> Vec<CaseSpec> {
    let mut out = Vec::new();
    let mut seen: Vec<Vec<u32>> = Vec::new();
    let mut survive = forecast.availability.survive.clone();
    survive.sort();
    survive.dedup();
    for (z, meetings) in zones.iter().enumerate() {
        let mut key = meetings.clone();
        key.sort_unstable();
        if seen.contains(&key) {
            continue;
        }
        seen.push(key);
        let zone = z as u32 + 1;
        out.push(case(forecast, topology, zone, meetings, None, opening));
        for &f in &survive {
            let applies = match f {
                Failure::ControllerVm | Failure::ControllerAndMmrVm => {
                    forecast.availability.controllers == ControllerMode::Pair
                }
                Failure::MmrVm => topology.mmr_vms > 0,
            };
            if applies {
                out.push(case(forecast, topology, zone, meetings, Some(f), opening));
            }
        }
    }
    out
}

/// A name fit for a scenario and a file: lower-case letters, digits and '-'.
pub fn slug(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_matches('-').to_string()
}
