//! A case's runs, over seeds, measured: refusals with a confidence interval, the busiest
//! moment of every MMR and controller, failover recovery and join latency.

use super::cases::{failure_name, CaseSpec};
use crate::run::RunResult;
use mc_plan::model::{Case, Peak, Percentiles, Sample};
use std::collections::BTreeMap;

/// Participants refused in one run: typed rejections, joins that failed without one, and
/// participants who lost their seat on rejoining after the failure.
pub fn refused(r: &RunResult) -> BTreeMap<String, u64> {
    let s = &r.stats;
    let mut by = s.rejections.clone();
    for (kind, n) in &s.failures {
        *by.entry(format!("failed_{kind}")).or_default() += n;
    }
    for (reason, n) in &s.rejoin_refused {
        *by.entry(format!("{reason} (on rejoin)")).or_default() += n;
    }
    by
}

/// Student's t at 97.5 % for `df` degrees of freedom (two-sided 95 %).
fn t975(df: usize) -> f64 {
    const T: [f64; 30] = [
        12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
        2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
        2.052, 2.048, 2.045, 2.042,
    ];
    match df {
        0 => f64::INFINITY,
        d if d <= 30 => T[d - 1],
        _ => 1.96,
    }
}

/// The mean of per-seed rates and its 95 % confidence interval, clamped to 0..=100.
pub fn mean_ci(rates: &[f64]) -> (f64, (f64, f64)) {
    let n = rates.len();
    if n == 0 {
        return (0.0, (0.0, 0.0));
    }
    let mean = rates.iter().sum::<f64>() / n as f64;
    if n == 1 {
        return (mean, (mean, mean));
    }
    let var = rates.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    let half = t975(n - 1) * (var / n as f64).sqrt();
    (mean, ((mean - half).max(0.0), (mean + half).min(100.0)))
}

pub fn percentiles(samples: &[u64]) -> Percentiles {
    if samples.is_empty() {
        return Percentiles::default();
    }
    let mut s = samples.to_vec();
    s.sort_unstable();
    let at = |q: f64| s[((q * s.len() as f64).ceil() as usize).clamp(1, s.len()) - 1];
    Percentiles {
        n: s.len() as u64,
        p50: at(0.5),
        p99: at(0.99),
        max: *s.last().expect("non-empty"),
    }
}

/// `runs` (one per seed, in seed order) of `spec`, measured.
pub fn measure(spec: &CaseSpec, file: &str, replay: String, runs: &[RunResult]) -> Case {
    let mut refused_by_reason: BTreeMap<String, u64> = BTreeMap::new();
    let mut rates = Vec::new();
    let (mut joins, mut refused_total) = (0, 0);
    let mut mmr: BTreeMap<String, (u32, u32)> = BTreeMap::new();
    let mut ctl: BTreeMap<String, (u32, u32)> = BTreeMap::new();
    let mut peak_participants = 0;
    let (mut recovery, mut join_ms) = (Vec::new(), Vec::new());
    let mut violations: Vec<String> = Vec::new();
    let mut kinds = std::collections::BTreeSet::new();
    for r in runs {
        let by = refused(r);
        let n: u64 = by.values().sum();
        for (k, v) in by {
            *refused_by_reason.entry(k).or_default() += v;
        }
        let attempted = r.stats.joins_attempted;
        joins += attempted;
        refused_total += n;
        rates.push(100.0 * n as f64 / attempted.max(1) as f64);
        for (name, &(peak, limit)) in &r.stats.load.mmr_peaks {
            let e = mmr.entry(name.clone()).or_insert((0, limit));
            e.0 = e.0.max(peak);
        }
        for (name, &(peak, limit)) in &r.stats.load.controller_peaks {
            let e = ctl.entry(name.clone()).or_insert((0, limit));
            e.0 = e.0.max(peak);
        }
        peak_participants = peak_participants.max(r.stats.load.peak_participants);
        recovery.extend(&r.stats.rejoin_recovery_ms);
        join_ms.extend(&r.stats.join_ms);
        for v in &r.violations {
            // The first of each kind ("liveness", "crash", "safety at 3.0 s", ...) says enough.
            let kind: String = v.split(':').next().unwrap_or_default().into();
            let kind = kind.split(" at ").next().unwrap_or_default().to_string();
            if kinds.insert(kind) {
                violations.push(format!("seed {}: {v}", r.seed));
            }
        }
    }
    let (refusal_pct, ci) = mean_ci(&rates);
    let peaks = |m: BTreeMap<String, (u32, u32)>| {
        m.into_iter()
            .map(|(name, (peak, limit))| Peak { name, peak, limit })
            .collect()
    };
    recovery.sort_unstable();
    Case {
        zone: spec.zone,
        failure: spec.failure.map(|f| failure_name(f).to_string()),
        killed: spec.killed.clone(),
        kill_at_s: spec.kill_at_s,
        scenario_file: file.to_string(),
        replay,
        participants: spec.participants,
        meetings: spec.meetings,
        capacity: spec.capacity,
        capacity_after_failure: spec.capacity_after,
        runs: runs.len() as u32,
        joins,
        refused: refused_total,
        refused_by_reason,
        refusal_pct,
        refusal_ci95_pct: ci,
        mmr_peaks: peaks(mmr),
        controller_peaks: peaks(ctl),
        utilisation_pct: 100.0 * peak_participants as f64 / spec.capacity.max(1) as f64,
        recovery_ms: percentiles(&recovery),
        recovery_samples_ms: recovery,
        join_ms: percentiles(&join_ms),
        timeline: runs
            .first()
            .map(|r| {
                r.stats
                    .load
                    .timeline
                    .iter()
                    .map(|&(t_s, participants, capacity)| Sample {
                        t_s,
                        participants,
                        capacity,
                    })
                    .collect()
            })
            .unwrap_or_default(),
        violations,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confidence_interval_of_known_rates() {
        // Rates 1, 2, 3: mean 2, s = 1, t(2) = 4.303 → 2 ± 2.484, clamped at 0.
        let (m, (lo, hi)) = mean_ci(&[1.0, 2.0, 3.0]);
        assert_eq!(m, 2.0);
        assert_eq!(lo, 0.0);
        assert!((hi - 4.484).abs() < 1e-3, "{hi}");
        assert_eq!(mean_ci(&[0.0; 20]), (0.0, (0.0, 0.0)));
    }

    #[test]
    fn percentiles_by_nearest_rank() {
        let s: Vec<u64> = (1..=100).collect();
        let p = percentiles(&s);
        assert_eq!((p.n, p.p50, p.p99, p.max), (100, 50, 99, 100));
        assert_eq!(percentiles(&[]), Percentiles::default());
    }
}
