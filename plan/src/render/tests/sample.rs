//! A realistic report, built by hand: a campus forecast, one zone with an HA pair, three
//! candidates (3, 4 and 5 MMR VMs; the first two miss), four quarters of growth.

use crate::model::*;
use std::collections::BTreeMap;

const CAPACITY: u32 = 200;
const PEAK: u32 = 1000;
const KILL_AT: f64 = 120.0;

/// A small deterministic generator, so the sample is the same every time.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn topology(mmr_vms: u32) -> Topology {
    Topology {
        zones: 1,
        controllers: 2,
        mmr_vms,
    }
}

fn cost(t: Topology) -> f64 {
    f64::from(t.controller_vms()) * 210.0 + f64::from(t.mmr_vm_count()) * 160.0
}

fn percentiles(sorted: &[u64]) -> Percentiles {
    if sorted.is_empty() {
        return Percentiles::default();
    }
    let at = |q: f64| sorted[((sorted.len() as f64 - 1.0) * q).round() as usize];
    Percentiles {
        n: sorted.len() as u64,
        p50: at(0.5),
        p99: at(0.99),
        max: *sorted.last().unwrap_or(&0),
    }
}

/// One case: `failure` at `KILL_AT`, and the refusal rate the simulation found.
fn case(t: Topology, failure: Option<&str>, refusal_pct: f64, seeds: usize) -> Case {
    let mmrs = t.mmrs();
    let capacity = mmrs * CAPACITY;
    let (killed, lost): (Vec<String>, u32) = match failure {
        None => (vec![], 0),
        Some("controller_vm") => (vec!["zc-1".into()], 1),
        Some("mmr_vm") => (vec!["mmr-1".into()], 1),
        _ => (vec!["zc-1".into(), "mmr-1".into()], 2),
    };
    let after = capacity - lost * CAPACITY;
    let tag = failure.unwrap_or("peak");
    let mut rng = Lcg(u64::from(mmrs) * 1000 + tag.len() as u64);

    // Once a second: a 25 joins/s burst to the peak, the failure, the rejoin.
    let on_killed = PEAK * lost / mmrs;
    let timeline: Vec<Sample> = (0..=240)
        .map(|s| {
            let t_s = f64::from(s);
            let mut participants = (s * 25).min(PEAK);
            let mut healthy = capacity;
            if failure.is_some() && t_s >= KILL_AT {
                healthy = after;
                let back = ((t_s - KILL_AT) / 6.0).min(1.0);
                let missing = f64::from(on_killed) * (1.0 - back);
                participants = (f64::from(participants) - missing).round() as u32;
                participants = participants.min(healthy);
            }
            Sample {
                t_s,
                participants,
                capacity: healthy,
            }
        })
        .collect();

    // Peaks: survivors carry the killed MMRs' share.
    let carried = PEAK.min(if failure.is_some() { after } else { capacity });
    let survivors = mmrs - lost;
    let names: Vec<String> = ["mmr-zc1".to_string(), "mmr-zc2".to_string()]
        .into_iter()
        .chain((1..=t.mmr_vms).map(|i| format!("mmr-{i}")))
        .collect();
    let mmr_peaks = names
        .iter()
        .map(|name| {
            let dead = killed
                .iter()
                .any(|k| (k == "zc-1" && name == "mmr-zc1") || (k == "mmr-1" && name == "mmr-1"));
            let share = if dead {
                PEAK / mmrs
            } else {
                carried / survivors.max(1)
            };
            let jitter = (rng.next() * 24.0) as u32;
            Peak {
                name: name.clone(),
                peak: (share + jitter).min(CAPACITY),
                limit: CAPACITY,
            }
        })
        .collect();
    let controller_peaks = vec![
        Peak {
            name: "zc-1".into(),
            peak: if failure.is_some() { 61 } else { 56 },
            limit: 150,
        },
        Peak {
            name: "zc-2".into(),
            peak: if failure.is_some() { 109 } else { 54 },
            limit: 150,
        },
    ];

    let runs = seeds as u32;
    let joins = u64::from(PEAK) * seeds as u64
        + if failure.is_some() {
            u64::from(on_killed) * seeds as u64
        } else {
            0
        };
    let refused = (joins as f64 * refusal_pct / 100.0).round() as u64;
    let mut refused_by_reason = BTreeMap::new();
    if refused > 0 {
        refused_by_reason.insert("capacity".to_string(), refused - refused / 5);
        refused_by_reason.insert("join timeout".to_string(), refused / 5);
    }
    let half = (refusal_pct * 0.15).max(if refusal_pct > 0.0 { 0.02 } else { 0.0 });

    let mut recovery_samples_ms: Vec<u64> = if failure.is_some() {
        (0..(on_killed as usize * seeds).min(600))
            .map(|_| {
                let u = rng.next();
                (900.0 + 1400.0 * u * u + 2600.0 * u.powi(12)) as u64
            })
            .collect()
    } else {
        Vec::new()
    };
    let mut sorted = recovery_samples_ms.clone();
    sorted.sort_unstable();
    recovery_samples_ms.truncate(600);

    Case {
        zone: 1,
        failure: failure.map(str::to_string),
        killed,
        kill_at_s: failure.map(|_| KILL_AT),
        scenario_file: format!("scenarios/ha-{}/zone1-{tag}.toml", t.mmr_vms),
        replay: format!(
            "cargo run --release -p mc-sim -- run reports/campus/scenarios/ha-{}/zone1-{tag}.toml --seed {{seed}}",
            t.mmr_vms
        ),
        participants: PEAK,
        meetings: 109,
        capacity,
        capacity_after_failure: if failure.is_some() { after } else { capacity },
        runs,
        joins,
        refused,
        refused_by_reason,
        refusal_pct,
        refusal_ci95_pct: ((refusal_pct - half).max(0.0), refusal_pct + half),
        mmr_peaks,
        controller_peaks,
        utilisation_pct: f64::from(PEAK.min(carried)) / f64::from(capacity) * 100.0,
        recovery_ms: percentiles(&sorted),
        recovery_samples_ms,
        join_ms: Percentiles {
            n: joins - refused,
            p50: 118 + u64::from(lost) * 9,
            p99: 460 + u64::from(lost) * 140,
            max: 1900 + u64::from(lost) * 700,
        },
        timeline,
        violations: Vec::new(),
    }
}

fn candidate(mmr_vms: u32, named_by: &[&str], refusals: [f64; 4], misses: &[&str]) -> Candidate {
    let t = topology(mmr_vms);
    let seeds: Vec<u64> = if misses.is_empty() {
        (1..=40).collect()
    } else {
        (1..=8).collect()
    };
    let failures = [
        None,
        Some("controller_vm"),
        Some("mmr_vm"),
        Some("controller_and_mmr_vm"),
    ];
    Candidate {
        topology: t,
        named_by: named_by.iter().map(|s| s.to_string()).collect(),
        cost: Some(cost(t)),
        cases: failures
            .iter()
            .zip(refusals)
            .map(|(f, pct)| case(t, *f, pct, seeds.len()))
            .collect(),
        seeds,
        passed: misses.is_empty(),
        misses: misses.iter().map(|s| s.to_string()).collect(),
    }
}

pub(crate) fn sample() -> PlanReport {
    let erlang_seats = mc_core::plan::erlang::seats_for(f64::from(PEAK), 0.005);
    let growth = [
        (0, 1000, 109, 5, 1),
        (1, 1250, 136, 6, 1),
        (2, 1500, 163, 8, 1),
        (3, 1800, 196, 5, 2),
    ]
    .into_iter()
    .map(|(quarter, peak, meetings, mmr_vms, zones)| {
        let topology = Topology {
            zones,
            controllers: 2,
            mmr_vms,
        };
        QuarterRow {
            quarter,
            peak_participants: peak,
            meetings,
            topology,
            cost: Some(cost(topology)),
        }
    })
    .collect();
    PlanReport {
        forecast: ForecastSummary {
            name: "Campus, autumn term".into(),
            description: "The main campus on a lecture day: seminars, tutorials and staff meetings, at the Tuesday 10:00 peak.".into(),
            peak_participants: PEAK,
            meetings: 109,
            meeting_sizes: vec![(2, 0.35), (5, 0.30), (12, 0.25), (40, 0.10)],
            burst_joins_per_s: 25.0,
            burst_duration_s: 40.0,
            meeting_minutes: 50.0,
            controllers: "pair".into(),
            survive: vec!["controller_vm".into(), "mmr_vm".into(), "controller_and_mmr_vm".into()],
            max_refusal_pct: 0.5,
            max_utilisation_pct: 80.0,
            mmr_capacity: CAPACITY,
            max_meetings: 150,
            cost: Some(CostSummary {
                controller_vm: 210.0,
                mmr_vm: 160.0,
                currency: "EUR".into(),
            }),
        },
        analytic: Analytic {
            rule_of_thumb: topology(3),
            packed: topology(5),
            erlang_offered: f64::from(PEAK),
            erlang_seats,
            erlang_mmrs: erlang_seats.div_ceil(CAPACITY),
        },
        candidates: vec![
            candidate(
                3,
                &["rule of thumb"],
                [0.0, 1.92, 2.05, 20.4],
                &[
                    "refusals 20.40 % (95 % CI 17.34–23.46) > target 0.50 % with a controller VM and an MMR VM killed, zone 1",
                    "refusals 2.05 % (95 % CI 1.74–2.36) > target 0.50 % with an MMR VM killed, zone 1",
                    "refusals 1.92 % (95 % CI 1.63–2.21) > target 0.50 % with a controller VM killed, zone 1",
                    "busiest MMR at 100.0 % of its seats > headroom target 80 % at the peak with nothing failing, zone 1",
                ],
            ),
            candidate(
                4,
                &["Erlang B"],
                [0.0, 0.0, 0.0, 0.81],
                &[
                    "refusals 0.81 % (95 % CI 0.69–0.93) > target 0.50 % with a controller VM and an MMR VM killed, zone 1",
                    "busiest MMR at 92.0 % of its seats > headroom target 80 % with a controller VM and an MMR VM killed, zone 1",
                ],
            ),
            candidate(5, &["bin packing"], [0.0, 0.0, 0.0, 0.02], &[]),
        ],
        recommended: Some(2),
        growth,
        replay: Replay {
            commit: "3f9c2a1e7b04d5c6a8e9f0b1c2d3e4f5a6b7c8d9".into(),
            forecast_sha256: "9b2f6c1d0e8a7f4b3c5d6e7f8a9b0c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b".into(),
            forecast_file: "forecasts/campus.toml".into(),
            screen_seeds: (1..=8).collect(),
            confirm_seeds: (9..=40).collect(),
            command: "ci/plan forecasts/campus.toml --out reports/campus".into(),
            media_pps: 5,
            speakers_per_meeting: 3,
            arrivals: "meetings open one after another".into(),
            runs: 224,
        },
    }
}
