//! The scenario runner never loses a result: a seed that panics or hangs is that seed's failure —
//! with its reproduce command, its event log and its row in the report — and every other seed's
//! result is still reported. Runs the real `scenario` binary, as `ci/scenario` does. (The budget
//! is far above what a passing seed of this scenario takes, under 1 s even on a busy machine.)
#![cfg(madsim)]

use std::path::Path;
use std::process::Command;

/// A small meeting and two test-only faults: seed 2 panics at 3 s, seed 3 hangs at 3 s.
const SCENARIO: &str = r#"
name = "runner-self-test"
description = "one meeting; seed 2 panics and seed 3 hangs on purpose"
duration_s = 12

[workload]
meetings = 1
participants_min = 2
participants_max = 2
arrivals_per_s = 10
stay_s_min = 10
stay_s_max = 10
media_pps = 2

[[faults]]
at_s = 3
action = "test_panic"
seeds = [2]

[[faults]]
at_s = 3
action = "test_hang"
seeds = [3]

[expect]
links_on_dedicated_ports = false
"#;

#[test]
fn a_panicking_and_a_hanging_seed_are_reported_and_the_other_seeds_still_run() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("runner-self-test");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("runner-self-test.toml");
    std::fs::write(&file, SCENARIO).unwrap();
    let out = dir.join("out");
    let o = Command::new(env!("CARGO_BIN_EXE_scenario"))
        .arg("run")
        .arg(&file)
        .args(["--seeds", "1..=4", "--jobs", "2", "--seed-budget-s", "30"])
        .arg("--out")
        .arg(&out)
        .arg("--json")
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
    );
    assert_eq!(o.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(stdout.contains("2 passed, 2 failed"), "{stdout}");
    assert!(
        stdout.contains("failed seeds: 0 broke a check, 1 crashed, 1 hung"),
        "{stdout}"
    );

    let json_end = stdout.find("\nfailed seeds:").unwrap();
    let report: serde_json::Value = serde_json::from_str(&stdout[..json_end]).unwrap();
    let summary = &report["scenarios"][0];
    assert_eq!(summary["seeds"], 4);
    assert_eq!(summary["passed"], 2);
    // The seeds that passed still count: their joins and media are in the summary.
    assert_eq!(summary["joins_admitted"], 4, "{summary}");
    let failed = summary["failed"].as_array().unwrap();
    let seed = |n: u64| failed.iter().find(|f| f["seed"] == n).unwrap();

    let panicked = seed(2);
    let why = panicked["violations"][0].as_str().unwrap();
    assert!(
        why.starts_with("crash: the simulation panicked: test_panic: the harness panics on purpose on seed 2 (at sim/src/run.rs:"),
        "{why}"
    );
    assert_eq!(
        panicked["reproduce"],
        format!("ci/scenario run {} --seed 2", file.display())
    );
    let log = std::fs::read_to_string(out.join(panicked["event_log"].as_str().unwrap())).unwrap();
    assert!(
        log.contains("fault: {\"action\":\"test_panic\""),
        "the event log runs up to the panic:\n{log}"
    );
    assert!(stderr.contains(&format!(
        "reproduce: ci/scenario run {} --seed 2",
        file.display()
    )));

    let hung = seed(3);
    let why = hung["violations"][0].as_str().unwrap();
    assert!(
        why.starts_with("hang: no result within the wall-clock budget of 30 s"),
        "{why}"
    );
    let log = std::fs::read_to_string(out.join(hung["event_log"].as_str().unwrap())).unwrap();
    assert!(log.contains("fault: {\"action\":\"test_hang\""), "{log}");

    // Workers leave nothing behind but the failing seeds' logs and the reports.
    let leftovers: Vec<_> = std::fs::read_dir(out.join(".seeds"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    assert!(out.join("report.md").exists() && out.join("report.json").exists());
}
