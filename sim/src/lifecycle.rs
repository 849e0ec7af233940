//! Random sequences of host lifecycle faults — kill, restart, pause, resume, clog, unclog, in any
//! order and on any host, as a swarm can draw them — followed by the tail that brings every host
//! back. The property test `every_lifecycle_sequence_is_accepted_and_the_zone_recovers` runs them:
//! whatever a scenario does to its hosts, the harness accepts it and the deployment recovers.
//!
//! What each step means, whatever state the host is in, is documented in `scenarios/README.md`
//! ("Host lifecycle"); the model here follows it to compute the restoring tail.

use crate::scenario::{Fault, FaultAction};
use mc_core::Rng;
use std::collections::BTreeMap;

/// What the harness has done to a host, as far as the restoring tail cares.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct HostModel {
    down: bool,
    paused: bool,
    clogged: bool,
}

impl HostModel {
    /// The host after `action` (one of the six lifecycle faults on it).
    fn apply(&mut self, action: &FaultAction) {
        match action {
            FaultAction::Kill { .. } => self.down = true,
            // A kill and a fresh start: up, running, still clogged if it was.
            FaultAction::Restart { .. } => (self.down, self.paused) = (false, false),
            FaultAction::Pause { .. } => self.paused = !self.down,
            FaultAction::Resume { .. } => self.paused = false,
            FaultAction::Clog { .. } => self.clogged = true,
            FaultAction::Unclog { .. } => self.clogged = false,
            other => unreachable!("not a lifecycle fault: {other:?}"),
        }
    }
}

/// `steps` random lifecycle faults on `hosts` between `from_s` and `to_s`, then, one second after
/// the last, the faults that bring every host back: a restart for each host that is down, a
/// resume for each paused one, an unclog for each clogged one.
pub fn random_sequence(
    seed: u64,
    hosts: &[String],
    steps: usize,
    from_s: f64,
    to_s: f64,
) -> Vec<Fault> {
    let mut rng = Rng::seed_from_u64(seed ^ 0x11fe_c7c1e);
    let mut model: BTreeMap<&str, HostModel> = hosts
        .iter()
        .map(|h| (h.as_str(), HostModel::default()))
        .collect();
    let mut faults = Vec::new();
    let mut at_s = from_s;
    let gap_s = (to_s - from_s) / steps.max(1) as f64;
    for _ in 0..steps {
        at_s += gap_s * (0.2 + rng.below(800) as f64 / 1000.0);
        let name = hosts[rng.below(hosts.len() as u64) as usize].as_str();
        let host = name.to_string();
        let action = match rng.below(6) {
            0 => FaultAction::Kill { host },
            1 => FaultAction::Restart { host },
            2 => FaultAction::Pause { host },
            3 => FaultAction::Resume { host },
            4 => FaultAction::Clog { host },
            _ => FaultAction::Unclog { host },
        };
        model.get_mut(name).expect("a listed host").apply(&action);
        faults.push(Fault {
            at_s: round(at_s),
            action,
        });
    }
    let tail_s = round(at_s + 1.0);
    for (host, m) in model {
        let host = host.to_string();
        let mut restore = Vec::new();
        if m.down {
            restore.push(FaultAction::Restart { host: host.clone() });
        }
        if m.paused {
            restore.push(FaultAction::Resume { host: host.clone() });
        }
        if m.clogged {
            restore.push(FaultAction::Unclog { host });
        }
        faults.extend(restore.into_iter().map(|action| Fault {
            at_s: tail_s,
            action,
        }));
    }
    faults
}

fn round(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts() -> Vec<String> {
        ["controller-1", "mmr-1"].map(String::from).to_vec()
    }

    #[test]
    fn the_tail_restores_every_host_the_sequence_left_down_paused_or_clogged() {
        for seed in 1..=200 {
            let faults = random_sequence(seed, &hosts(), 8, 5.0, 45.0);
            assert!(faults.windows(2).all(|w| w[0].at_s <= w[1].at_s));
            let mut state: BTreeMap<String, HostModel> = BTreeMap::new();
            for f in &faults {
                let host = f.action.hosts()[0].clone();
                state.entry(host).or_default().apply(&f.action);
            }
            assert!(
                state.values().all(|m| *m == HostModel::default()),
                "seed {seed}: {state:?} after {faults:?}"
            );
        }
    }
}
