//! Scenario files: a deployment, a workload, faults over time and what must hold — as data.
//!
//! The format is TOML; `scenarios/README.md` documents every field. A scenario with a `[swarm]`
//! table is a family: each seed derives its own topology size, workload size and random faults
//! within the stated ranges ([`Scenario::plan`]), and the derived plan is printed with the seed so a
//! failure is understood before it is replayed.

use mc_core::Rng;
use serde::{Deserialize, Serialize};
use std::path::Path;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Simulated seconds the run lasts (participants still present then leave).
    pub duration_s: f64,
    #[serde(default)]
    pub topology: Topology,
    pub workload: Workload,
    #[serde(default)]
    pub faults: Vec<Fault>,
    #[serde(default)]
    pub expect: Expect,
    pub swarm: Option<Swarm>,
    /// Seeds that once failed, each kept after its bug was fixed: `ci/scenario run
    /// --regressions` runs them besides the seeds asked for.
    #[serde(default)]
    pub regression_seeds: Vec<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Topology {
    /// Controller VMs: 1, or 2 for an active-active HA pair (controller-1, controller-2).
    pub controllers: u32,
    /// MMR VMs linked to the controller, besides its own MMR (named mmr-1, mmr-2, ...). In a
    /// pair, odd ones link to controller-1 and even ones to controller-2.
    pub mmr_vms: u32,
    /// Participants the controller's own MMR carries.
    pub mmr_capacity: u32,
    /// Participants each MMR VM carries.
    pub mmr_vm_capacity: u32,
    /// Meetings the controller hosts at most.
    pub max_meetings: u32,
    /// Replaces the product's controller lease (1,500 ms), with heartbeats and peer pings at a
    /// third of it and peer detection at the lease plus its 500 ms margin, as the defaults are:
    /// for measuring how the lease trades recovery time against needless fencing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_ms: Option<u64>,
}

impl Default for Topology {
    fn default() -> Self {
        Topology {
            controllers: 1,
            mmr_vms: 0,
            mmr_capacity: 200,
            mmr_vm_capacity: 200,
            max_meetings: 100,
            lease_ms: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Workload {
    pub meetings: u32,
    pub participants_min: u32,
    pub participants_max: u32,
    /// Joins started per simulated second, across all meetings.
    pub arrivals_per_s: f64,
    /// Each participant stays a time drawn from this range (seconds).
    pub stay_s_min: f64,
    pub stay_s_max: f64,
    /// RTP packets per second per participant (real audio is 50; simulations use less).
    #[serde(default = "default_pps")]
    pub media_pps: u32,
    /// Churn: each meeting's seats are filled this many times over, by new participants.
    #[serde(default = "one")]
    pub waves: u32,
    /// `by_meeting` (default): a meeting's participants arrive one after another, then the next
    /// meeting's. `interleaved`: the first participant of every meeting, then the second of
    /// every meeting, ... — so every meeting gains participants throughout the arrivals.
    #[serde(default)]
    pub arrival_order: ArrivalOrder,
    /// Each meeting's size, when they are given one by one (the capacity planner's cases):
    /// `meetings` sizes, each within participants_min..=participants_max. Otherwise each
    /// meeting's size is drawn from that range.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub meeting_sizes: Vec<u32>,
    /// Participants per meeting who send media (the first seats); the others listen, muted, as
    /// most of a large meeting does. Absent: everyone sends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speakers_per_meeting: Option<u32>,
    /// The size hint every meeting is created with (`expected_participants` in the cloud's
    /// API): one expected to outgrow an MMR is spread over several from its first join.
    /// Absent: no hint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_participants: Option<u32>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ArrivalOrder {
    #[default]
    ByMeeting,
    Interleaved,
}

fn default_pps() -> u32 {
    5
}

fn one() -> u32 {
    1
}

/// One fault, at a simulated time. (serde cannot refuse unknown keys through a flattened enum, so
/// a misspelt optional key in a fault is ignored; required keys are still checked.)
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fault {
    pub at_s: f64,
    #[serde(flatten)]
    pub action: FaultAction,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum FaultAction {
    /// Kill a host's processes; `restart` starts them again (fresh state, same configuration).
    Kill {
        host: String,
    },
    Restart {
        host: String,
    },
    /// Freeze a host (its tasks stop running) and let it go on.
    Pause {
        host: String,
    },
    Resume {
        host: String,
    },
    /// Cut every link between two groups of hosts; `one_way` cuts only `a` → `b`.
    Partition {
        a: Vec<String>,
        b: Vec<String>,
        #[serde(default)]
        one_way: bool,
    },
    /// Clog one host entirely (nothing in or out), or unclog it.
    Clog {
        host: String,
    },
    Unclog {
        host: String,
    },
    /// Undo every partition and clog.
    Heal,
    /// Block a protocol on a host: one port, or all of them when `port` is absent. `reject`
    /// refuses TCP connections at once instead of letting them time out.
    Block {
        host: String,
        proto: Proto,
        port: Option<u16>,
        #[serde(default)]
        reject: bool,
    },
    Unblock {
        host: String,
        proto: Proto,
        port: Option<u16>,
    },
    UnblockAll,
    /// Lose this fraction of every UDP datagram (0 to 1).
    Loss {
        rate: f64,
    },
    /// Every message takes between these many milliseconds.
    Latency {
        min_ms: u64,
        max_ms: u64,
    },
    /// The public cloud is unreachable from everywhere, or back.
    CloudUnreachable,
    CloudReachable,
    /// An operator drains a controller or an MMR through the cloud's API (`id` is its name:
    /// controller-1, mmr-2, or controller-1-mmr for a controller's own MMR), or undrains it.
    Drain {
        id: String,
    },
    Undrain {
        id: String,
    },
    /// For testing the scenario runner itself, never in a library scenario: on the listed seeds
    /// the harness panics at this time (`test_panic`), or blocks its simulation thread for good
    /// (`test_hang`, a simulation that stops advancing).
    TestPanic {
        seeds: Vec<u64>,
    },
    TestHang {
        seeds: Vec<u64>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    Udp,
    Tcp,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Expect {
    /// After the last fault, every participant present (with someone to hear) receives media
    /// again within this many seconds.
    pub recovery_s: f64,
    /// Rejection reasons that are acceptable here (`meeting_full`, ...). Any other fails the run.
    pub allowed_rejections: Vec<String>,
    /// Joins that must succeed, as a percentage of those attempted.
    pub min_admitted_pct: f64,
    /// Largest acceptable RTP loss over the whole run, in percent.
    pub max_loss_pct: f64,
    /// At the end, every link uses its dedicated port (when nothing blocks it any more).
    pub links_on_dedicated_ports: bool,
}

impl Default for Expect {
    fn default() -> Self {
        Expect {
            recovery_s: 10.0,
            allowed_rejections: Vec::new(),
            min_admitted_pct: 100.0,
            max_loss_pct: 100.0,
            links_on_dedicated_ports: true,
        }
    }
}

/// Seed-derived variation (swarm testing): each present field overrides the plain value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Swarm {
    pub mmr_vms: Option<[u32; 2]>,
    pub meetings: Option<[u32; 2]>,
    pub arrivals_per_s: Option<[f64; 2]>,
    /// How many random faults to add, each with its healing counterpart later.
    #[serde(default)]
    pub faults: u32,
    /// Which kinds random faults are drawn from.
    #[serde(default)]
    pub fault_kinds: Vec<SwarmFault>,
    /// Random faults happen in this window (seconds); all are healed by its end.
    pub fault_window_s: Option<[f64; 2]>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SwarmFault {
    BlockUdp,
    BlockDedicatedPorts,
    KillMmrVm,
    PauseMmrVm,
    CloudUnreachable,
    Loss,
    Latency,
    /// Kill a controller (restarted later), pause one, or cut one off from everything (HA).
    KillController,
    PauseController,
    IsolateController,
    /// Partition the two controllers of a pair from each other (skipped with one controller).
    PartitionControllers,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScenarioError(pub String);

impl std::fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ScenarioError {}

impl Scenario {
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ScenarioError(format!("{}: {e}", path.display())))?;
        let s: Scenario =
            toml::from_str(&text).map_err(|e| ScenarioError(format!("{}: {e}", path.display())))?;
        s.validate()
            .map_err(|e| ScenarioError(format!("{}: {e}", path.display())))?;
        Ok(s)
    }

    pub fn hosts(&self, mmr_vms: u32) -> Vec<String> {
        let mut h = vec!["cloud".to_string()];
        h.extend((1..=self.topology.controllers).map(|i| format!("controller-{i}")));
        h.extend((1..=mmr_vms).map(|i| format!("mmr-{i}")));
        h
    }

    pub fn validate(&self) -> Result<(), ScenarioError> {
        let bad = |m: String| Err(ScenarioError(m));
        if self.name.is_empty()
            || !self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return bad(format!(
                "name {:?}: letters, digits, '-' and '_' only",
                self.name
            ));
        }
        if !(self.duration_s > 0.0 && self.duration_s <= 24.0 * 3600.0) {
            return bad("duration_s must be above 0 and at most a day".into());
        }
        let w = &self.workload;
        if w.meetings == 0 || w.participants_min == 0 || w.participants_min > w.participants_max {
            return bad("workload: meetings and participants_min must be at least 1, and participants_min ≤ participants_max".into());
        }
        if w.arrivals_per_s <= 0.0
            || w.stay_s_min <= 0.0
            || w.stay_s_min > w.stay_s_max
            || w.media_pps == 0
            || w.media_pps > 200
            || w.waves == 0
        {
            return bad("workload: arrivals_per_s > 0, 0 < stay_s_min ≤ stay_s_max, media_pps 1..=200 and waves ≥ 1".into());
        }
        if !w.meeting_sizes.is_empty()
            && (w.meeting_sizes.len() != w.meetings as usize
                || w.meeting_sizes
                    .iter()
                    .any(|s| !(w.participants_min..=w.participants_max).contains(s)))
        {
            return bad(format!("workload.meeting_sizes: {} sizes given for {} meetings; give one per meeting, each within participants_min..=participants_max", w.meeting_sizes.len(), w.meetings));
        }
        if w.expected_participants
            .is_some_and(|n| !(1..=100_000).contains(&n))
        {
            return bad(
                "workload.expected_participants: from 1 to 100000 (the cloud refuses others)"
                    .into(),
            );
        }
        let t = &self.topology;
        if t.mmr_vms > 8 || t.mmr_capacity == 0 || t.mmr_vm_capacity == 0 || t.max_meetings == 0 {
            return bad(
                "topology: at most 8 MMR VMs; capacities and max_meetings at least 1".into(),
            );
        }
        if t.lease_ms.is_some_and(|l| !(300..=60_000).contains(&l)) {
            return bad("topology.lease_ms: 300 to 60000 (a third of it is the heartbeat)".into());
        }
        if !(1..=2).contains(&t.controllers) {
            return bad("topology.controllers: 1, or 2 for an HA pair".into());
        }
        let max_vms = self
            .swarm
            .as_ref()
            .and_then(|s| s.mmr_vms)
            .map_or(t.mmr_vms, |r| r[1]);
        let hosts = self.hosts(max_vms);
        for f in &self.faults {
            if !(f.at_s >= 0.0 && f.at_s <= self.duration_s) {
                return bad(format!(
                    "fault at {} s is outside the run (0 to {} s)",
                    f.at_s, self.duration_s
                ));
            }
            for h in f.action.hosts() {
                if !hosts.contains(h) {
                    return bad(format!(
                        "fault at {} s names host {h:?}; hosts are {}",
                        f.at_s,
                        hosts.join(", ")
                    ));
                }
            }
            if let FaultAction::Drain { id } | FaultAction::Undrain { id } = &f.action {
                let own_mmr = id
                    .strip_suffix("-mmr")
                    .is_some_and(|c| c.starts_with("controller-") && hosts.iter().any(|h| h == c));
                if !own_mmr && (id == "cloud" || !hosts.contains(id)) {
                    return bad(format!(
                        "fault at {} s drains {id:?}, which is not a controller or MMR here",
                        f.at_s
                    ));
                }
            }
            if let FaultAction::TestPanic { seeds } | FaultAction::TestHang { seeds } = &f.action {
                if seeds.is_empty() {
                    return bad(format!(
                        "fault at {} s: seeds must list the seeds it fires on",
                        f.at_s
                    ));
                }
            }
            if let FaultAction::Loss { rate } = f.action {
                if !(0.0..=1.0).contains(&rate) {
                    return bad(format!("loss rate {rate} must be between 0 and 1"));
                }
            }
        }
        if let Some(s) = &self.swarm {
            if s.faults > 0 && s.fault_kinds.is_empty() {
                return bad("swarm: faults > 0 needs fault_kinds".into());
            }
            if let Some([a, b]) = s.mmr_vms {
                if a > b || b > 8 {
                    return bad("swarm.mmr_vms: [min, max] with max ≤ 8".into());
                }
            }
        }
        for r in &self.expect.allowed_rejections {
            const KNOWN: &[&str] = &[
                "ticket_invalid",
                "ticket_expired",
                "ticket_replayed",
                "meeting_full",
                "zone_full",
                "controller_meeting_limit",
                "no_mmr_available",
                "protocol_violation",
                "not_ready",
                "controller_draining",
                // A participant admitted once who could not rejoin after a failure, with no
                // typed rejection.
                "rejoin_failed",
            ];
            if !KNOWN.contains(&r.as_str()) {
                return bad(format!(
                    "expect.allowed_rejections: unknown reason {r:?}; known: {}",
                    KNOWN.join(", ")
                ));
            }
        }
        Ok(())
    }

    /// The concrete run for `seed`: swarm ranges resolved and random faults drawn.
    pub fn plan(&self, seed: u64) -> Scenario {
        let mut p = self.clone();
        let Some(s) = &self.swarm else { return p };
        let mut rng = Rng::seed_from_u64(seed ^ 0x5eed_5a4a);
        let pick_u = |rng: &mut Rng, [a, b]: [u32; 2]| a + rng.below((b - a + 1) as u64) as u32;
        if let Some(r) = s.mmr_vms {
            p.topology.mmr_vms = pick_u(&mut rng, r);
        }
        if let Some(r) = s.meetings {
            p.workload.meetings = pick_u(&mut rng, r);
        }
        if let Some([a, b]) = s.arrivals_per_s {
            p.workload.arrivals_per_s = a + (b - a) * (rng.below(1001) as f64 / 1000.0);
        }
        let [w0, w1] = s
            .fault_window_s
            .unwrap_or([p.duration_s * 0.2, p.duration_s * 0.6]);
        for _ in 0..s.faults {
            let kind = s.fault_kinds[rng.below(s.fault_kinds.len() as u64) as usize];
            let start = w0 + (w1 - w0) * (rng.below(1000) as f64 / 1000.0) * 0.7;
            let end = (start + (w1 - start) * (0.3 + rng.below(700) as f64 / 1000.0)).min(w1);
            let vm = if p.topology.mmr_vms > 0 {
                Some(format!("mmr-{}", 1 + rng.below(p.topology.mmr_vms as u64)))
            } else {
                None
            };
            let ctl = format!(
                "controller-{}",
                1 + rng.below(p.topology.controllers as u64)
            );
            let (on, off) = match (kind, vm) {
                (SwarmFault::BlockUdp, _) => (
                    FaultAction::Block {
                        host: "controller-1".into(),
                        proto: Proto::Udp,
                        port: None,
                        reject: false,
                    },
                    FaultAction::Unblock {
                        host: "controller-1".into(),
                        proto: Proto::Udp,
                        port: None,
                    },
                ),
                (SwarmFault::BlockDedicatedPorts, _) => (
                    FaultAction::Block {
                        host: "cloud".into(),
                        proto: Proto::Tcp,
                        port: Some(mc_wire::ports::STATUS_SYNC),
                        reject: rng.below(2) == 0,
                    },
                    FaultAction::UnblockAll,
                ),
                (SwarmFault::KillMmrVm, Some(vm)) => (
                    FaultAction::Kill { host: vm.clone() },
                    FaultAction::Restart { host: vm },
                ),
                (SwarmFault::PauseMmrVm, Some(vm)) => (
                    FaultAction::Pause { host: vm.clone() },
                    FaultAction::Resume { host: vm },
                ),
                (SwarmFault::KillMmrVm | SwarmFault::PauseMmrVm, None) => continue,
                (SwarmFault::KillController, _) => (
                    FaultAction::Kill { host: ctl.clone() },
                    FaultAction::Restart { host: ctl },
                ),
                (SwarmFault::PauseController, _) => (
                    FaultAction::Pause { host: ctl.clone() },
                    FaultAction::Resume { host: ctl },
                ),
                (SwarmFault::IsolateController, _) => (
                    FaultAction::Clog { host: ctl.clone() },
                    FaultAction::Unclog { host: ctl },
                ),
                (SwarmFault::PartitionControllers, _) if p.topology.controllers == 2 => (
                    FaultAction::Partition {
                        a: vec!["controller-1".into()],
                        b: vec!["controller-2".into()],
                        one_way: rng.below(2) == 0,
                    },
                    FaultAction::Heal,
                ),
                (SwarmFault::PartitionControllers, _) => continue,
                (SwarmFault::CloudUnreachable, _) => {
                    (FaultAction::CloudUnreachable, FaultAction::CloudReachable)
                }
                (SwarmFault::Loss, _) => (
                    FaultAction::Loss {
                        rate: 0.01 + rng.below(10) as f64 / 100.0,
                    },
                    FaultAction::Loss { rate: 0.0 },
                ),
                (SwarmFault::Latency, _) => (
                    FaultAction::Latency {
                        min_ms: 1,
                        max_ms: 20 + rng.below(200),
                    },
                    FaultAction::Latency {
                        min_ms: 1,
                        max_ms: 10,
                    },
                ),
            };
            p.faults.push(Fault {
                at_s: round(start),
                action: on,
            });
            p.faults.push(Fault {
                at_s: round(end),
                action: off,
            });
        }
        p.faults.sort_by(|a, b| a.at_s.total_cmp(&b.at_s));
        p.swarm = None;
        p
    }

    /// When the last fault happens (0 without faults): liveness is measured from then.
    pub fn faults_end_s(&self) -> f64 {
        self.faults.iter().map(|f| f.at_s).fold(0.0, f64::max)
    }

    /// A one-paragraph description of a plan, printed with its seed.
    pub fn describe(&self) -> String {
        let w = &self.workload;
        let mut s = format!(
            "{}: {} s; {} (MMR {} participants, {} meetings each) + {} MMR VM(s) of {}; {} meetings × {}..={} participants × {} wave(s), {:.1} joins/s, stays {}..{} s, {} pps",
            self.name,
            self.duration_s,
            if self.topology.controllers == 2 { "controller-1 + controller-2 (HA pair)" } else { "controller-1" },
            self.topology.mmr_capacity,
            self.topology.max_meetings,
            self.topology.mmr_vms,
            self.topology.mmr_vm_capacity,
            w.meetings,
            w.participants_min,
            w.participants_max,
            w.waves,
            w.arrivals_per_s,
            w.stay_s_min,
            w.stay_s_max,
            w.media_pps
        );
        for f in &self.faults {
            s += &format!("\n  at {:>6.1} s: {}", f.at_s, f.action.describe());
        }
        s
    }
}

fn round(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

impl FaultAction {
    pub fn hosts(&self) -> Vec<&String> {
        match self {
            FaultAction::Kill { host }
            | FaultAction::Restart { host }
            | FaultAction::Pause { host }
            | FaultAction::Resume { host }
            | FaultAction::Clog { host }
            | FaultAction::Unclog { host }
            | FaultAction::Block { host, .. }
            | FaultAction::Unblock { host, .. } => vec![host],
            FaultAction::Partition { a, b, .. } => a.iter().chain(b).collect(),
            _ => vec![],
        }
    }

    pub fn describe(&self) -> String {
        match self {
            FaultAction::Block {
                host,
                proto,
                port,
                reject,
            } => {
                format!(
                    "block {proto:?} {} on {host} ({})",
                    port.map_or("all ports".into(), |p| format!("port {p}")),
                    if *reject { "reject" } else { "drop" }
                )
            }
            FaultAction::Unblock { host, proto, port } => format!(
                "unblock {proto:?} {} on {host}",
                port.map_or("all ports".into(), |p| format!("port {p}"))
            ),
            other => serde_json::to_string(other).unwrap_or_default(),
        }
    }
}
