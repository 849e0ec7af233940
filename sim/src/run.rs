//! Running one scenario plan on one seed: the deployment, the workload, the faults, and the
//! checkers — safety throughout, liveness after the faults stop.

mod checks;
pub mod crash;
pub mod load;

use crate::scenario::{ArrivalOrder, FaultAction, Proto, Scenario};
use crate::{controller_ip, hash_lines, ip, mmr_vm_ip, SimDeployment, CLOUD_IP};
use mc_core::Rng;
use mc_node::client::{ClientError, ClientProbe, ClientReport};
use mc_node::events::HarnessEvent;
use mc_rt::fault::{self, Action};
use mc_rt::sim::runtime::Handle;
use mc_wire::MeetingId;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use checks::{check_links, check_outcomes, check_safety, probe_plaintext, Violations};

/// What one seed's run produced.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunResult {
    pub scenario: String,
    pub seed: u64,
    /// The derived plan, as printed with the seed.
    pub plan: String,
    pub violations: Vec<String>,
    pub stats: RunStats,
    pub event_log_hash: String,
    #[serde(skip)]
    pub events: Vec<String>,
    pub simulated_s: f64,
    pub wall_ms: u64,
}

impl RunResult {
    pub fn passed(&self) -> bool {
        self.violations.is_empty()
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RunStats {
    pub joins_attempted: u64,
    pub joins_admitted: u64,
    pub rejections: BTreeMap<String, u64>,
    /// Joins that ended without admission or a typed rejection, by kind.
    pub failures: BTreeMap<String, u64>,
    pub rejoins: u64,
    pub rtp_sent: u64,
    pub rtp_received: u64,
    pub rtp_lost: u64,
    /// For each participant present through the faults: ms from the last fault until it received
    /// media again.
    pub recovery_ms: Vec<u64>,
    /// The same, for the participants that had to rejoin (their controller or MMR failed, or
    /// their meeting moved): how long a failover took for those it affected.
    pub rejoin_recovery_ms: Vec<u64>,
    /// Joins that started while the faults were on (from the first fault until the recovery
    /// bound after the last): how many, how many got in, and how long each admitted one took.
    pub fault_joins_attempted: u64,
    pub fault_joins_admitted: u64,
    pub fault_join_ms: Vec<u64>,
    /// How long each admitted participant took to get in (its first join), in ms.
    #[serde(default)]
    pub join_ms: Vec<u64>,
    /// Participants admitted once who did not get back in after a failure, by reason
    /// (`rejoin_failed` when there was no typed rejection).
    #[serde(default)]
    pub rejoin_refused: BTreeMap<String, u64>,
    /// Load as sampled through the run (every 200 ms): each MMR's and each controller's
    /// busiest moment, and participants against healthy seats once a second.
    #[serde(default)]
    pub load: load::Load,
}

struct Participant {
    name: String,
    meeting: usize,
    wave: u32,
    seat: u32,
    stay_s: f64,
    arrival_s: f64,
    leave_s: f64,
    /// Sends no media (a listener).
    muted: bool,
    probe: Arc<ClientProbe>,
}

/// Runs `scenario` (its plan for `seed`) in a fresh simulation. Never panics: a panic inside the
/// simulation, or no result within `budget` of wall-clock time, is this seed's failure, with
/// the event log recorded up to then. (A hung simulation's thread is left behind: the scenario
/// runner runs each seed in a process of its own, which exits after reporting.)
pub fn run_seed(scenario: &Scenario, seed: u64, budget: Option<Duration>) -> RunResult {
    crash::install_hook();
    let plan = scenario.plan(seed);
    let wall = std::time::Instant::now();
    let events: Arc<Mutex<Vec<String>>> = Arc::default();
    let (run_plan, run_events) = (plan.clone(), events.clone());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name(format!("seed-{seed}"))
        .spawn(move || {
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                mc_rt::fault::simulate(seed, move || execute(run_plan, seed, run_events))
            }));
            let _ = tx.send(outcome);
        })
        .expect("a thread for the seed");
    let outcome = match budget {
        Some(b) => rx.recv_timeout(b).ok(),
        None => rx.recv().ok(),
    };
    let (violations, stats, simulated_s) = match outcome {
        Some(Ok(done)) => done,
        Some(Err(panic)) => (
            vec![format!(
                "crash: the simulation panicked: {}",
                crash::panic_text(seed, &*panic)
            )],
            RunStats::default(),
            0.0,
        ),
        None => (
            vec![format!(
                "hang: no result within the wall-clock budget of {:.0} s (a livelock, or a simulation that stopped advancing); its event log ends where it stopped",
                budget.unwrap_or_default().as_secs_f64()
            )],
            RunStats::default(),
            0.0,
        ),
    };
    // A panicking task may have poisoned the log's lock; what it holds is still whole lines.
    let events = events.lock().unwrap_or_else(|e| e.into_inner()).clone();
    RunResult {
        scenario: scenario.name.clone(),
        seed,
        plan: plan.describe(),
        violations,
        stats,
        event_log_hash: format!("{:016x}", hash_lines(&events)),
        events,
        simulated_s,
        wall_ms: wall.elapsed().as_millis() as u64,
    }
}

fn host_ip(host: &str) -> IpAddr {
    match host {
        "cloud" => ip(CLOUD_IP),
        c if c.starts_with("controller-") => controller_ip(
            c.trim_start_matches("controller-")
                .parse()
                .expect("validated host name"),
        ),
        vm => mmr_vm_ip(
            vm.trim_start_matches("mmr-")
                .parse()
                .expect("validated host name"),
        ),
    }
}

async fn execute(
    plan: Scenario,
    seed: u64,
    events: Arc<Mutex<Vec<String>>>,
) -> (Vec<String>, RunStats, f64) {
    let sim_start = mc_rt::Instant::now();
    let t = plan.topology.clone();
    let d = Arc::new(
        SimDeployment::start_recording(seed, t.controllers, events, t.lease_ms, |c| {
            c.mmr_capacity = t.mmr_capacity;
            c.max_meetings = t.max_meetings;
        })
        .await,
    );
    for n in 1..=t.mmr_vms {
        d.start_mmr_vm_n(n, t.mmr_vm_capacity).await;
    }
    let harness = d.log("harness");
    harness.record(HarnessEvent::Plan {
        description: plan.describe().replace('\n', ";"),
    });
    let violations = Violations::default();

    // Meetings, then the schedule of participants: who joins which meeting when, for how long.
    let api = d.api();
    let (count, hint) = (plan.workload.meetings, plan.workload.expected_participants);
    let meetings: Vec<MeetingId> = d
        .on_new_host("operator", move || async move {
            let mut ids = Vec::new();
            for i in 0..count {
                ids.push(
                    api.create_meeting_expecting(&format!("meeting {i}"), hint)
                        .await
                        .expect("meeting created"),
                );
            }
            ids
        })
        .await;
    let start = mc_rt::Instant::now();
    let w = plan.workload.clone();
    let mut rng = Rng::seed_from_u64(seed ^ 0x0a11_0ad5);
    let mut participants = Vec::new();
    // Given sizes start in an order drawn from the seed: which meeting opens first (and so
    // where it is placed) is chance, and seeds explore it.
    let mut sizes = w.meeting_sizes.clone();
    let mut order_rng = Rng::seed_from_u64(seed ^ 0x512e_0bde);
    for i in (1..sizes.len()).rev() {
        sizes.swap(i, order_rng.below(i as u64 + 1) as usize);
    }
    for wave in 0..w.waves {
        for (mi, _) in meetings.iter().enumerate() {
            let size = match sizes.get(mi) {
                Some(&size) => size,
                None => {
                    w.participants_min
                        + rng.below((w.participants_max - w.participants_min + 1) as u64) as u32
                }
            };
            for p in 0..size {
                let k = participants.len() as f64;
                let arrival_s = k / w.arrivals_per_s;
                let stay_s = w.stay_s_min
                    + (w.stay_s_max - w.stay_s_min) * (rng.below(1001) as f64 / 1000.0);
                let leave_s = (arrival_s + stay_s).min(plan.duration_s);
                if arrival_s >= plan.duration_s {
                    break;
                }
                participants.push(Participant {
                    name: format!("w{wave}-m{mi}-p{p}"),
                    meeting: mi,
                    wave,
                    seat: p,
                    stay_s,
                    arrival_s,
                    leave_s,
                    muted: w.speakers_per_meeting.is_some_and(|n| p >= n),
                    probe: Arc::default(),
                });
            }
        }
    }
    if w.arrival_order == ArrivalOrder::Interleaved {
        // The same people with the same stays, arriving round-robin over the meetings.
        participants.sort_by_key(|p| (p.wave, p.seat));
        for (k, p) in participants.iter_mut().enumerate() {
            p.arrival_s = k as f64 / w.arrivals_per_s;
            p.leave_s = (p.arrival_s + p.stay_s).min(plan.duration_s);
        }
        participants.retain(|p| p.arrival_s < plan.duration_s);
    }
    let participants = Arc::new(participants);

    // Arrivals.
    type ClientTask = mc_rt::sim::task::JoinHandle<Result<ClientReport, ClientError>>;
    let handles: Arc<Mutex<Vec<Option<ClientTask>>>> = Arc::default();
    let arrivals = {
        let (d, participants, handles, meetings) = (
            d.clone(),
            participants.clone(),
            handles.clone(),
            meetings.clone(),
        );
        mc_rt::spawn(async move {
            for p in participants.iter() {
                mc_rt::sleep(
                    (start + Duration::from_secs_f64(p.arrival_s))
                        .saturating_duration_since(mc_rt::Instant::now()),
                )
                .await;
                let mut c = d.client(
                    &p.name,
                    meetings[p.meeting],
                    w.media_pps,
                    ((p.leave_s - p.arrival_s) * 1000.0) as u64,
                );
                c.media_reprobe_ms = 10_000;
                c.muted = p.muted;
                let h = d.spawn_client_observed(c, p.probe.clone());
                handles.lock().unwrap().push(Some(h));
            }
        })
    };

    // Faults.
    let faults_end_s = plan.faults_end_s();
    let blocks_left = Arc::new(Mutex::new(BTreeSet::<(String, Proto, Option<u16>)>::new()));
    let fault_driver = {
        let (d, faults, harness, blocks_left) = (
            d.clone(),
            plan.faults.clone(),
            harness.clone(),
            blocks_left.clone(),
        );
        mc_rt::spawn(async move {
            for f in faults {
                mc_rt::sleep(
                    (start + Duration::from_secs_f64(f.at_s))
                        .saturating_duration_since(mc_rt::Instant::now()),
                )
                .await;
                harness.record(HarnessEvent::Fault {
                    action: f.action.describe(),
                });
                apply_fault(&d, &f.action, &blocks_left);
            }
        })
    };

    // Safety, continuously; and the load, for measurements.
    let load = Arc::new(Mutex::new(load::Load::default()));
    let checker = {
        let (d, v, load) = (d.clone(), violations.clone(), load.clone());
        let (ctl_capacity, vm_capacity) = (t.mmr_capacity, t.mmr_vm_capacity);
        mc_rt::spawn(async move {
            let checks = d.checks.clone();
            let mut next_sample = mc_rt::Instant::now();
            let mut samples = 0u64;
            loop {
                let at_s = start.elapsed().as_secs_f64();
                check_safety(&d, &v, at_s);
                if mc_rt::Instant::now() >= next_sample {
                    load.lock().unwrap().sample(
                        &d,
                        ctl_capacity,
                        vm_capacity,
                        samples.is_multiple_of(5).then_some(at_s),
                    );
                    samples += 1;
                    next_sample += Duration::from_millis(200);
                }
                // Again at every change of a controller's state, and at the next sample.
                mc_rt::select! {
                    biased;
                    _ = checks.changed() => {}
                    _ = mc_rt::sleep(next_sample.saturating_duration_since(mc_rt::Instant::now())) => {}
                }
            }
        })
    };

    // Nothing answers in plaintext on a TLS port: once early, and once after the faults (below).
    let probe_plaintext_at = |at_s: f64| {
        let (d, violations, topology) = (&d, &violations, &plan.topology);
        async move {
            mc_rt::sleep(
                (start + Duration::from_secs_f64(at_s))
                    .saturating_duration_since(mc_rt::Instant::now()),
            )
            .await;
            probe_plaintext(d, violations, topology.controllers, topology.mmr_vms).await;
        }
    };
    if 1.0 < plan.duration_s {
        probe_plaintext_at(1.0).await;
    }

    // Liveness: from the last fault, everyone present with someone to hear gets media again.
    let mut recovery_ms = Vec::new();
    let mut rejoin_recovery_ms = Vec::new();
    if !plan.faults.is_empty() {
        let bound_s = plan.expect.recovery_s;
        let from = start + Duration::from_secs_f64(faults_end_s);
        mc_rt::sleep(from.saturating_duration_since(mc_rt::Instant::now())).await;
        // In a meeting now (admitted, not gone) and staying past the bound.
        let present = |p: &Participant| {
            p.probe.joined.load(Relaxed)
                && p.arrival_s + 5.0 <= faults_end_s
                && p.leave_s >= faults_end_s + bound_s + 1.0
        };
        let eligible: Vec<usize> = (0..participants.len())
            .filter(|&i| {
                let p = &participants[i];
                present(p)
                    && participants.iter().any(|o| {
                        o.meeting == p.meeting && o.name != p.name && !o.muted && present(o)
                    })
            })
            .collect();
        // Media counts as back once it arrives after the participant's last rejoin (packets in
        // flight from before a failure do not count), or, for one that never had to rejoin, once
        // anything arrives.
        let probe = |i: usize| &participants[i].probe;
        let mut base: Vec<(u64, u64)> = eligible
            .iter()
            .map(|&i| {
                (
                    probe(i).rejoins.load(Relaxed),
                    probe(i).received.load(Relaxed),
                )
            })
            .collect();
        let rejoins_before: Vec<u64> = base.iter().map(|b| b.0).collect();
        let mut recovered: Vec<Option<u64>> = vec![None; eligible.len()];
        let mut gone = vec![false; eligible.len()];
        while from.elapsed().as_secs_f64() <= bound_s
            && (0..eligible.len()).any(|k| recovered[k].is_none() && !gone[k])
        {
            for (k, &i) in eligible.iter().enumerate() {
                let (rejoins, received) = (
                    probe(i).rejoins.load(Relaxed),
                    probe(i).received.load(Relaxed),
                );
                if gone[k] || !probe(i).joined.load(Relaxed) {
                    // Its client ended: it lost its seat on rejoining, which the outcomes
                    // count (and judge) as a refusal, not as silence.
                    gone[k] = true;
                } else if rejoins > base[k].0 {
                    base[k] = (rejoins, received);
                    recovered[k] = None;
                } else if recovered[k].is_none() && received > base[k].1 {
                    recovered[k] = Some(from.elapsed().as_millis() as u64);
                }
            }
            mc_rt::sleep(Duration::from_millis(100)).await;
        }
        for (k, &i) in eligible.iter().enumerate() {
            if gone[k] {
                continue;
            }
            if base[k].0 > rejoins_before[k] {
                if let Some(ms) = recovered[k] {
                    rejoin_recovery_ms.push(ms);
                }
            }
            match recovered[k] {
                Some(ms) => recovery_ms.push(ms),
                None => violations.add(
                    format!("liveness:{}", participants[i].name),
                    format!(
                        "liveness: {} received no media within {bound_s} s after the last fault",
                        participants[i].name
                    ),
                ),
            }
        }
    }
    // After the faults (and after liveness began at the last one: a rejoin that completes within
    // a second of a fault must be seen as one).
    let after_s = faults_end_s + 1.0;
    if !plan.faults.is_empty() && after_s < plan.duration_s {
        probe_plaintext_at(after_s).await;
    }

    // The end: everyone leaves; then the end-of-run checks.
    let _ = arrivals.await;
    let _ = fault_driver.await;
    let taken: Vec<_> = handles
        .lock()
        .unwrap()
        .iter_mut()
        .map(|h| h.take().expect("each handle once"))
        .collect();
    let mut outcomes = Vec::new();
    for h in taken {
        outcomes.push(h.await.expect("client task completes"));
    }
    checker.abort();
    check_safety(&d, &violations, start.elapsed().as_secs_f64());
    let mut stats = check_outcomes(
        &plan,
        &participants,
        &outcomes,
        &d,
        &violations,
        recovery_ms,
        rejoin_recovery_ms,
    );
    stats.load = std::mem::take(&mut *load.lock().unwrap());
    let tail_s = plan.duration_s - faults_end_s;
    if plan.expect.links_on_dedicated_ports
        && blocks_left.lock().unwrap().is_empty()
        && tail_s >= 40.0
    {
        check_links(&d, &violations);
    }
    let simulated_s = sim_start.elapsed().as_secs_f64();
    (violations.list(), stats, simulated_s)
}

fn apply_fault(
    d: &SimDeployment,
    action: &FaultAction,
    blocks_left: &Mutex<BTreeSet<(String, Proto, Option<u16>)>>,
) {
    let node = |h: &str| *d.nodes.lock().unwrap().get(h).expect("validated host");
    let handle = Handle::current();
    let proto = |p: Proto| match p {
        Proto::Udp => fault::Proto::Udp,
        Proto::Tcp => fault::Proto::Tcp,
    };
    match action {
        // A host's lifecycle (scenarios/README.md): kill leaves it down (again, if it was);
        // restart is a kill and a fresh start from its configuration, whatever it was doing
        // (running, paused or down). madsim's own restart keeps a running host's sockets bound,
        // so the kill comes first: it closes every socket of the host.
        FaultAction::Kill { host } => handle.kill(node(host)),
        FaultAction::Restart { host } => {
            handle.kill(node(host));
            handle.restart(node(host));
        }
        FaultAction::Pause { host } => handle.pause(node(host)),
        FaultAction::Resume { host } => handle.resume(node(host)),
        FaultAction::Partition { a, b, one_way } => {
            for x in a {
                for y in b {
                    fault::clog_link(node(x), node(y));
                    if !one_way {
                        fault::clog_link(node(y), node(x));
                    }
                }
            }
        }
        FaultAction::Clog { host } => fault::clog_node(node(host)),
        FaultAction::Unclog { host } => fault::unclog_node(node(host)),
        FaultAction::Heal => {
            let all: Vec<_> = d.nodes.lock().unwrap().values().copied().collect();
            for &x in &all {
                fault::unclog_node(x);
                for &y in &all {
                    fault::unclog_link(x, y);
                }
            }
        }
        FaultAction::Block {
            host,
            proto: p,
            port,
            reject,
        } => {
            let act = if *reject {
                Action::Reject
            } else {
                Action::Drop
            };
            match port {
                Some(port) => fault::block(host_ip(host), proto(*p), *port, act),
                None => fault::block_protocol(host_ip(host), proto(*p), act),
            }
            blocks_left
                .lock()
                .unwrap()
                .insert((host.clone(), *p, *port));
        }
        FaultAction::Unblock {
            host,
            proto: p,
            port,
        } => {
            match port {
                Some(port) => fault::unblock(host_ip(host), proto(*p), *port),
                None => fault::unblock_protocol(host_ip(host), proto(*p)),
            }
            blocks_left
                .lock()
                .unwrap()
                .remove(&(host.clone(), *p, *port));
        }
        FaultAction::UnblockAll => {
            fault::unblock_all();
            blocks_left.lock().unwrap().clear();
        }
        FaultAction::Loss { rate } => fault::set_udp_loss(*rate),
        FaultAction::Latency { min_ms, max_ms } => {
            let (lo, hi) = (
                Duration::from_millis(*min_ms),
                Duration::from_millis((*max_ms).max(*min_ms + 1)),
            );
            fault::set_latency(lo..hi);
        }
        FaultAction::CloudUnreachable => fault::clog_node(node("cloud")),
        FaultAction::CloudReachable => fault::unclog_node(node("cloud")),
        FaultAction::TestPanic { seeds } => {
            if seeds.contains(&d.seed) {
                panic!(
                    "test_panic: the harness panics on purpose on seed {}",
                    d.seed
                );
            }
        }
        FaultAction::TestHang { seeds } => {
            if seeds.contains(&d.seed) {
                // Blocks the simulation's only thread: simulated time stops, as in a livelock.
                loop {
                    std::thread::sleep(Duration::from_secs(1));
                }
            }
        }
        FaultAction::Drain { id } | FaultAction::Undrain { id } => {
            let kind = if id.starts_with("controller-") && !id.ends_with("-mmr") {
                "controllers"
            } else {
                "mmrs"
            };
            let method = if matches!(action, FaultAction::Drain { .. }) {
                "POST"
            } else {
                "DELETE"
            };
            let (api, path, log) = (d.api(), format!("/v1/{kind}/{id}/drain"), d.log("harness"));
            // The operator's call runs on its own host; the fault driver goes on meanwhile.
            let node_ip = d.next_ip();
            let node = handle.create_node().name("operator").ip(node_ip).build();
            fault::set_node_ip(node.id(), node_ip);
            node.spawn(async move {
                let body = serde_json::json!({ "deadline_s": 20 });
                if let Err(e) = api.call(method, &path, Some(body)).await {
                    log.record(HarnessEvent::CallFailed {
                        method: method.to_string(),
                        path,
                        error: e,
                    });
                }
            });
        }
    }
}
