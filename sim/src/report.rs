//! Summaries of runs over many seeds, as Markdown for people and JSON for machines.

use crate::run::RunResult;
use crate::sweep::Build;
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Serialize)]
pub struct FailedSeed {
    pub seed: u64,
    pub violations: Vec<String>,
    /// The one command that replays this seed.
    pub reproduce: String,
    /// Its event log's file name, beside the report, if it was kept.
    pub event_log: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ScenarioSummary {
    pub scenario: String,
    pub seeds: usize,
    pub passed: usize,
    pub failed: Vec<FailedSeed>,
    pub simulated_s: f64,
    pub joins_attempted: u64,
    pub joins_admitted: u64,
    pub rejections: BTreeMap<String, u64>,
    pub failures: BTreeMap<String, u64>,
    pub rtp_sent: u64,
    pub rtp_received: u64,
    pub rtp_lost: u64,
    pub recovery_ms_p50: Option<u64>,
    pub recovery_ms_p99: Option<u64>,
    pub recovery_ms_max: Option<u64>,
    /// Participants that had to rejoin during the faults, and their recovery times.
    pub rejoined: usize,
    pub rejoin_recovery_ms_p50: Option<u64>,
    pub rejoin_recovery_ms_p99: Option<u64>,
    pub rejoin_recovery_ms_max: Option<u64>,
    /// Joins started while the faults were on, and their join times.
    pub fault_joins_attempted: u64,
    pub fault_joins_admitted: u64,
    pub fault_join_ms_p50: Option<u64>,
    pub fault_join_ms_p99: Option<u64>,
    pub fault_join_ms_max: Option<u64>,
}

fn percentile(sorted: &[u64], q: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let idx = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1;
    Some(sorted[idx])
}

/// Summarises one scenario's results; `reproduce(seed)` is the command that replays a seed.
pub fn summarize(
    results: &[&RunResult],
    reproduce: impl Fn(u64) -> String,
    log_path: impl Fn(u64) -> Option<String>,
) -> ScenarioSummary {
    let mut s = ScenarioSummary {
        scenario: results
            .first()
            .map(|r| r.scenario.clone())
            .unwrap_or_default(),
        seeds: results.len(),
        passed: results.iter().filter(|r| r.passed()).count(),
        failed: Vec::new(),
        simulated_s: 0.0,
        joins_attempted: 0,
        joins_admitted: 0,
        rejections: BTreeMap::new(),
        failures: BTreeMap::new(),
        rtp_sent: 0,
        rtp_received: 0,
        rtp_lost: 0,
        recovery_ms_p50: None,
        recovery_ms_p99: None,
        recovery_ms_max: None,
        rejoined: 0,
        rejoin_recovery_ms_p50: None,
        rejoin_recovery_ms_p99: None,
        rejoin_recovery_ms_max: None,
        fault_joins_attempted: 0,
        fault_joins_admitted: 0,
        fault_join_ms_p50: None,
        fault_join_ms_p99: None,
        fault_join_ms_max: None,
    };
    let mut fault_join_ms = Vec::new();
    let mut recovery = Vec::new();
    let mut rejoin_recovery = Vec::new();
    for r in results {
        s.simulated_s += r.simulated_s;
        s.joins_attempted += r.stats.joins_attempted;
        s.joins_admitted += r.stats.joins_admitted;
        for (k, n) in &r.stats.rejections {
            *s.rejections.entry(k.clone()).or_default() += n;
        }
        for (k, n) in &r.stats.failures {
            *s.failures.entry(k.clone()).or_default() += n;
        }
        s.rtp_sent += r.stats.rtp_sent;
        s.rtp_received += r.stats.rtp_received;
        s.rtp_lost += r.stats.rtp_lost;
        recovery.extend(&r.stats.recovery_ms);
        rejoin_recovery.extend(&r.stats.rejoin_recovery_ms);
        s.fault_joins_attempted += r.stats.fault_joins_attempted;
        s.fault_joins_admitted += r.stats.fault_joins_admitted;
        fault_join_ms.extend(&r.stats.fault_join_ms);
        if !r.passed() {
            s.failed.push(FailedSeed {
                seed: r.seed,
                violations: r.violations.clone(),
                reproduce: reproduce(r.seed),
                event_log: log_path(r.seed),
            });
        }
    }
    recovery.sort_unstable();
    s.recovery_ms_p50 = percentile(&recovery, 0.50);
    s.recovery_ms_p99 = percentile(&recovery, 0.99);
    s.recovery_ms_max = recovery.last().copied();
    rejoin_recovery.sort_unstable();
    s.rejoined = rejoin_recovery.len();
    s.rejoin_recovery_ms_p50 = percentile(&rejoin_recovery, 0.50);
    s.rejoin_recovery_ms_p99 = percentile(&rejoin_recovery, 0.99);
    s.rejoin_recovery_ms_max = rejoin_recovery.last().copied();
    fault_join_ms.sort_unstable();
    s.fault_join_ms_p50 = percentile(&fault_join_ms, 0.50);
    s.fault_join_ms_p99 = percentile(&fault_join_ms, 0.99);
    s.fault_join_ms_max = fault_join_ms.last().copied();
    s
}

fn counts(m: &BTreeMap<String, u64>) -> String {
    if m.is_empty() {
        return "none".into();
    }
    m.iter()
        .map(|(k, n)| format!("{k} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn ms(v: Option<u64>) -> String {
    v.map_or("–".into(), |v| format!("{v}"))
}

/// A Markdown report: a function of the build, the scenarios and the seeds alone (no wall-clock
/// figure), so that a sweep split across machines renders byte for byte what one process does.
pub fn markdown(build: Option<&Build>, summaries: &[ScenarioSummary]) -> String {
    let mut out = String::from("# Scenario report\n\n");
    if let Some(b) = build {
        out += &format!(
            "Runner built from commit `{}` (SHA-256 `{}`); replay a failing seed from a checkout of that commit.\n\n",
            b.commit, b.binary_sha256
        );
    }
    out += "| scenario | seeds | passed | failed | simulated s | joins admitted | rejections | RTP received | RTP lost | recovery ms p50 / p99 / max | rejoined: recovery ms p50 / p99 / max |\n|---|---|---|---|---|---|---|---|---|---|---|\n";
    for s in summaries {
        let common_head = format!(
            "| {} | {} | {} | {} | {:.1} ",
            s.scenario,
            s.seeds,
            s.passed,
            s.failed.len(),
            s.simulated_s
        );
        out += &format!(
            "{common_head}| {} / {} | {} | {} | {} | {} / {} / {} | {}: {} / {} / {} |\n",
            s.joins_admitted,
            s.joins_attempted,
            counts(&s.rejections),
            s.rtp_received,
            s.rtp_lost,
            ms(s.recovery_ms_p50),
            ms(s.recovery_ms_p99),
            ms(s.recovery_ms_max),
            s.rejoined,
            ms(s.rejoin_recovery_ms_p50),
            ms(s.rejoin_recovery_ms_p99),
            ms(s.rejoin_recovery_ms_max)
        );
    }
    let during: Vec<&ScenarioSummary> = summaries
        .iter()
        .filter(|s| s.fault_joins_attempted > 0)
        .collect();
    if !during.is_empty() {
        out += "\n## Joins while faults were on\n\nJoins that started between the first fault and the recovery bound after the last one.\n\n| scenario | admitted | join ms p50 / p99 / max |\n|---|---|---|\n";
        for s in during {
            out += &format!(
                "| {} | {} / {} | {} / {} / {} |\n",
                s.scenario,
                s.fault_joins_admitted,
                s.fault_joins_attempted,
                ms(s.fault_join_ms_p50),
                ms(s.fault_join_ms_p99),
                ms(s.fault_join_ms_max)
            );
        }
    }
    for s in summaries.iter().filter(|s| !s.failed.is_empty()) {
        out += &format!("\n## {}: failing seeds\n", s.scenario);
        for f in &s.failed {
            out += &format!("\n- seed {}: `{}`\n", f.seed, f.reproduce);
            for v in &f.violations {
                out += &format!("  - {v}\n");
            }
            if let Some(p) = &f.event_log {
                out += &format!("  - event log: {p}\n");
            }
        }
    }
    out
}
