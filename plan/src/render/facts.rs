//! Which candidate and which case each part of a report talks about. Every choice here breaks
//! ties by position, so the same report always picks the same things.

use crate::model::{Candidate, Case, PlanReport, Topology};
use crate::render::text;

/// The recommended candidate, when the report names a valid one.
pub(crate) fn recommended(r: &PlanReport) -> Option<&Candidate> {
    r.recommended.and_then(|i| r.candidates.get(i))
}

/// The candidate shown in detail and in the per-candidate charts: the recommended one, or
/// else the largest simulated (the last of the largest).
pub(crate) fn detail(r: &PlanReport) -> Option<&Candidate> {
    recommended(r).or_else(|| {
        r.candidates
            .iter()
            .enumerate()
            .max_by_key(|(i, c)| (c.topology.mmrs(), *i))
            .map(|(_, c)| c)
    })
}

/// With nothing recommended: the candidate that came closest (fewest misses, then the lowest
/// worst refusal rate, then the larger).
pub(crate) fn closest(r: &PlanReport) -> Option<&Candidate> {
    r.candidates
        .iter()
        .enumerate()
        .fold(None, |best: Option<(usize, &Candidate)>, (i, c)| {
            let better = match best {
                None => true,
                Some((_, b)) => {
                    let (rc, rb) = (worst_refusal(c), worst_refusal(b));
                    c.misses.len() < b.misses.len()
                        || (c.misses.len() == b.misses.len()
                            && (rc < rb || (rc == rb && c.topology.mmrs() >= b.topology.mmrs())))
                }
            };
            if better {
                Some((i, c))
            } else {
                best
            }
        })
        .map(|(_, c)| c)
}

fn worst_refusal(c: &Candidate) -> f64 {
    worst_case(c).map_or(0.0, |k| finite(k.refusal_pct))
}

/// The case with the highest refusal rate (the first of equals).
pub(crate) fn worst_case(c: &Candidate) -> Option<&Case> {
    c.cases
        .iter()
        .fold(None, |best: Option<&Case>, k| match best {
            Some(b) if finite(k.refusal_pct) <= finite(b.refusal_pct) => Some(b),
            _ => Some(k),
        })
}

/// The failure case with the slowest recovery (p99, then max; the first of equals).
pub(crate) fn worst_failure_case(c: &Candidate) -> Option<&Case> {
    c.cases
        .iter()
        .filter(|k| k.failure.is_some())
        .fold(None, |best: Option<&Case>, k| match best {
            Some(b)
                if (k.recovery_ms.p99, k.recovery_ms.max)
                    <= (b.recovery_ms.p99, b.recovery_ms.max) =>
            {
                Some(b)
            }
            _ => Some(k),
        })
}

/// Whether a candidate's cases span more than one zone (labels then name the zone).
pub(crate) fn multi_zone(c: &Candidate) -> bool {
    c.topology.zones > 1 || c.cases.iter().any(|k| k.zone != 1)
}

/// "no failure", "controller VM killed", or with several zones "zone 2, MMR VM killed".
pub(crate) fn case_label(k: &Case, multi_zone: bool) -> String {
    let f = text::failure(k.failure.as_deref());
    if multi_zone {
        format!("zone {}, {f}", k.zone)
    } else {
        f
    }
}

/// A stable colour slot for a case: 0 for no failure, then the forecast's failures in order,
/// shifted by zone.
pub(crate) fn colour_slot(r: &PlanReport, k: &Case) -> usize {
    let kinds = r.forecast.survive.len() + 2;
    let kind = match k.failure.as_deref() {
        None => 0,
        Some(f) => {
            1 + r
                .forecast
                .survive
                .iter()
                .position(|s| s == f)
                .unwrap_or(r.forecast.survive.len())
        }
    };
    kind + (k.zone.saturating_sub(1) as usize) * kinds
}

/// Seats in a topology: every MMR's capacity.
pub(crate) fn seats(r: &PlanReport, t: &Topology) -> u64 {
    u64::from(t.mmrs()) * u64::from(r.forecast.mmr_capacity)
}

/// The busiest moment across a candidate's cases, in percent of seats.
pub(crate) fn peak_utilisation(c: &Candidate) -> Option<f64> {
    c.cases
        .iter()
        .map(|k| finite(k.utilisation_pct))
        .reduce(f64::max)
}

/// A number, or 0 when it is not one (charts and comparisons need finite values).
pub(crate) fn finite(x: f64) -> f64 {
    if x.is_finite() {
        x
    } else {
        0.0
    }
}
