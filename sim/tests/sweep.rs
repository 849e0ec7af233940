//! A sweep split into shards, each run as a process of its own, merges into the very report one
//! process over the same seeds writes, byte for byte; a missing shard and a shard of another
//! build are refused, each by name. Runs the real `scenario` binary, as a cluster would.
#![cfg(madsim)]

use std::path::Path;
use std::process::{Command, Output};

/// Two small scenarios, one failing on purpose (seed 2 panics), so the report has a failing seed
/// with its reproduce command and event log to carry across the merge.
const SCENARIOS: [(&str, &str); 2] = [
    (
        "sweep-a",
        r#"
name = "sweep-a"
description = "one meeting of two; seed 2 panics on purpose"
duration_s = 8

[workload]
meetings = 1
participants_min = 2
participants_max = 3
arrivals_per_s = 10
stay_s_min = 6
stay_s_max = 6
media_pps = 2

[[faults]]
at_s = 3
action = "test_panic"
seeds = [2]

[expect]
links_on_dedicated_ports = false
"#,
    ),
    (
        "sweep-b",
        r#"
name = "sweep-b"
description = "two meetings, UDP blocked"
duration_s = 8

[workload]
meetings = 2
participants_min = 2
participants_max = 4
arrivals_per_s = 10
stay_s_min = 6
stay_s_max = 6
media_pps = 2

[[faults]]
at_s = 2
action = "block"
host = "controller-1"
proto = "udp"

[expect]
links_on_dedicated_ports = false
"#,
    ),
];

const SEEDS: &str = "1..=7";
const SHARDS: u32 = 3;

fn scenario(exe: &Path, dir: &Path, args: &[&str]) -> Output {
    // Relative, as a shard on another machine names them: the report's reproduce commands do.
    let files: Vec<String> = SCENARIOS
        .iter()
        .map(|(name, _)| format!("{name}.toml"))
        .collect();
    Command::new(exe)
        .current_dir(dir)
        .args(args)
        .args(if args[0] == "run" { files } else { vec![] })
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn shards_merged_give_the_report_of_one_process_and_incomplete_or_mixed_sets_are_refused() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("sweep");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for (name, text) in SCENARIOS {
        std::fs::write(dir.join(format!("{name}.toml")), text).unwrap();
    }
    let exe = Path::new(env!("CARGO_BIN_EXE_scenario"));

    // One process over every seed.
    let one = scenario(
        exe,
        &dir,
        &["run", "--seeds", SEEDS, "--jobs", "2", "--out", "one"],
    );
    assert_eq!(
        one.status.code(),
        Some(1),
        "seed 2 of sweep-a fails: {}",
        text(&one)
    );

    // The same seeds as SHARDS processes at once, each with its own output directory.
    let shards: Vec<_> = (1..=SHARDS)
        .map(|k| {
            let (shard, out) = (format!("{k}/{SHARDS}"), format!("shards/{k}"));
            Command::new(exe)
                .current_dir(&dir)
                .arg("run")
                .args(SCENARIOS.iter().map(|(n, _)| format!("{n}.toml")))
                .args([
                    "--seeds", SEEDS, "--jobs", "1", "--shard", &shard, "--out", &out,
                ])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in shards {
        let o = child.wait_with_output().unwrap();
        assert!(matches!(o.status.code(), Some(0 | 1)), "{}", text(&o));
    }
    let merged = scenario(exe, &dir, &["merge", "shards", "--out", "merged"]);
    assert_eq!(merged.status.code(), Some(1), "{}", text(&merged));
    for file in ["report.md", "report.json"] {
        let (a, b) = (
            std::fs::read_to_string(dir.join("one").join(file)).unwrap(),
            std::fs::read_to_string(dir.join("merged").join(file)).unwrap(),
        );
        assert_eq!(
            a, b,
            "{file} of {SHARDS} shards merged differs from one process's"
        );
    }
    let report = std::fs::read_to_string(dir.join("merged/report.md")).unwrap();
    assert!(report.contains("| sweep-a | 7 | 6 | 1 |"), "{report}");
    assert!(report.contains("| sweep-b | 7 | 7 | 0 |"), "{report}");
    assert!(
        report.contains("`ci/scenario run sweep-a.toml --seed 2`"),
        "{report}"
    );
    // The failing seed's event log came along from its shard's directory.
    let log = std::fs::read_to_string(dir.join("merged/sweep-a-seed2.log")).unwrap();
    assert!(log.contains("test_panic"), "{log}");
    // Every seed ran once: the shards' files hold 14 results between them, each shard a share.
    let lines: Vec<usize> = (1..=SHARDS)
        .map(|k| {
            let f = dir.join(format!("shards/{k}/shard-{k}-of-{SHARDS}.jsonl"));
            std::fs::read_to_string(f).unwrap().lines().count() - 1
        })
        .collect();
    assert_eq!(lines, vec![5, 5, 4]);

    // A missing shard is named.
    let missing = scenario(exe, &dir, &["merge", "shards/1", "shards/3", "--out", "m2"]);
    assert_eq!(missing.status.code(), Some(2), "{}", text(&missing));
    assert!(
        text(&missing).contains("shard 2/3 is missing (no shard-2-of-3.jsonl among the inputs)"),
        "{}",
        text(&missing)
    );
    assert!(!dir.join("m2/report.md").exists());

    // A shard of another build: the same runner with a byte appended is another executable (it
    // still runs: the loader ignores trailing bytes), so its shard names another SHA-256.
    let other = dir.join("scenario-other-build");
    let mut bytes = std::fs::read(exe).unwrap();
    bytes.push(0);
    std::fs::write(&other, bytes).unwrap();
    std::fs::set_permissions(&other, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let o = scenario(
        &other,
        &dir,
        &[
            "run", "--seeds", SEEDS, "--jobs", "1", "--shard", "2/3", "--out", "other/2",
        ],
    );
    assert!(matches!(o.status.code(), Some(0 | 1)), "{}", text(&o));
    let mixed = scenario(
        exe,
        &dir,
        &["merge", "shards/1", "other/2", "shards/3", "--out", "m3"],
    );
    assert_eq!(mixed.status.code(), Some(2), "{}", text(&mixed));
    assert!(
        text(&mixed).contains("comes from another build"),
        "{}",
        text(&mixed)
    );
    // And a shard run twice (two inputs for 1/3) is named too.
    let twice = scenario(
        exe,
        &dir,
        &[
            "merge",
            "shards",
            "shards/1/shard-1-of-3.jsonl",
            "--out",
            "m4",
        ],
    );
    assert_eq!(twice.status.code(), Some(2), "{}", text(&twice));
    assert!(
        text(&twice).contains("shard 1/3 is given 2 times"),
        "{}",
        text(&twice)
    );
}
