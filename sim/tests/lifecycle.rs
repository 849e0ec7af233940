//! The harness accepts every sequence of host lifecycle faults, and the deployment recovers from
//! it: a property over random sequences (kill, restart, pause, resume, clog, unclog on any
//! controller or MMR VM of an HA pair, in any order), each followed by the tail that brings every
//! host back. `MC_SIM_SEED=N ci/test-sim every_lifecycle` replays one sequence.
#![cfg(madsim)]

use mc_sim::lifecycle::random_sequence;
use mc_sim::run::run_seed;
use mc_sim::scenario::Scenario;
use mc_sim::seeds;
use std::time::Duration;

/// An HA pair with two MMR VMs and meetings that last the whole run; the faults come per seed.
const BASE: &str = r#"
name = "lifecycle"
description = "random host lifecycle faults, then every host restored"
duration_s = 110

[topology]
controllers = 2
mmr_vms = 2
mmr_capacity = 100
mmr_vm_capacity = 100

[workload]
meetings = 6
participants_min = 2
participants_max = 4
arrivals_per_s = 5
stay_s_min = 100
stay_s_max = 105
media_pps = 2
arrival_order = "interleaved"

[expect]
recovery_s = 30
allowed_rejections = ["meeting_full", "zone_full"]
min_admitted_pct = 100
"#;

#[test]
fn every_lifecycle_sequence_is_accepted_and_the_zone_recovers() {
    let hosts: Vec<String> = ["controller-1", "controller-2", "mmr-1", "mmr-2"]
        .map(String::from)
        .to_vec();
    let mut failed = Vec::new();
    for seed in seeds(&(1..=10).collect::<Vec<_>>()) {
        let mut scenario: Scenario = toml::from_str(BASE).unwrap();
        scenario.faults = random_sequence(seed, &hosts, 8, 10.0, 50.0);
        scenario.validate().unwrap();
        eprintln!("[lifecycle] seed {seed}: {}", scenario.describe());
        let r = run_seed(&scenario, seed, Some(Duration::from_secs(300)));
        if !r.passed() {
            eprintln!(
                "[lifecycle] seed {seed} FAILED: {}\n  reproduce: MC_SIM_SEED={seed} ci/test-sim every_lifecycle",
                r.violations.join("; ")
            );
            failed.push(seed);
        }
    }
    assert!(failed.is_empty(), "failing seeds: {failed:?}");
}
