//! The capacity planner end to end (`ci/plan`): its built binary on shipped and test forecasts,
//! checked through the reports it writes.
#![cfg(madsim)]

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Runs the planner from the repository's root (as `ci/plan` does), with relative paths, so
/// the report's commands are the same on every machine.
fn plan(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_plan"))
        .args(args)
        .current_dir(root())
        .output()
        .expect("the planner runs")
}

fn report(out: &str) -> (Value, String, String) {
    let dir = root().join(out);
    let read =
        |f: &str| std::fs::read_to_string(dir.join(f)).unwrap_or_else(|e| panic!("{out}/{f}: {e}"));
    (
        serde_json::from_str(&read("plan.json")).expect("plan.json is JSON"),
        read("plan.md"),
        read("plan.html"),
    )
}

fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Worst refusal rate over a candidate's cases.
fn worst_refusal_pct(c: &Value) -> f64 {
    c["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["refusal_pct"].as_f64().unwrap())
        .fold(0.0, f64::max)
}

#[test]
fn a_small_forecast_gives_the_same_report_every_time() {
    let out = "target/plan-tests/golden";
    let o = plan(&[
        "sim/tests/forecasts/golden.toml",
        "--out",
        out,
        "--seeds",
        "3",
        "--screen-seeds",
        "2",
        "--jobs",
        "2",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let (json, md, html) = report(out);
    // Three zones: the survivor of a pair hosts at most 4 meetings, and there are 11.
    let rec = &json["candidates"][json["recommended"].as_u64().unwrap() as usize];
    assert_eq!(rec["topology"]["zones"], 3, "{}", text(&o));
    // The commit changes from commit to commit; nothing else may.
    let md: String = md
        .lines()
        .map(|l| {
            if l.contains("Commit") {
                "(commit)".to_string()
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    insta::assert_snapshot!("golden_plan_md", md);
    // The page stands alone, with every chart drawn inline.
    let charts = std::fs::read_dir(root().join(out).join("charts"))
        .unwrap()
        .count();
    assert!(charts >= 4, "{charts} charts");
    assert_eq!(html.matches("<svg").count(), charts, "every chart inline");
    assert!(!html.contains("src=\"http") && !html.contains("href=\"http"));
}

#[test]
fn the_rule_of_thumb_under_provisions_large_meetings_and_simulation_shows_it() {
    let out = "target/plan-tests/large-meetings";
    let o = plan(&[
        "fixtures/forecasts/large-meetings.toml",
        "--out",
        out,
        "--seeds",
        "2",
        "--screen-seeds",
        "1",
        "--jobs",
        "2",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let (json, md, _) = report(out);
    let candidates = json["candidates"].as_array().unwrap();
    let rule = candidates
        .iter()
        .find(|c| {
            c["named_by"]
                .as_array()
                .unwrap()
                .iter()
                .any(|n| n == "rule of thumb")
        })
        .expect("the rule of thumb's topology was simulated");
    let rec = &candidates[json["recommended"].as_u64().unwrap() as usize];
    assert_eq!(rule["passed"], false);
    assert!(
        worst_refusal_pct(rule) > 1.0,
        "the division rule's topology refuses joins at peak: {rule}"
    );
    assert_eq!(worst_refusal_pct(rec), 0.0, "{rec}");
    let mmrs = |c: &Value| {
        let t = &c["topology"];
        t["zones"].as_u64().unwrap()
            * (t["controllers"].as_u64().unwrap() + t["mmr_vms"].as_u64().unwrap())
    };
    assert!(mmrs(rec) > mmrs(rule));
    assert!(md.contains("meeting_full"), "the report names the refusals");
}

#[test]
fn bad_forecasts_are_refused_naming_the_field_and_the_fix() {
    let good = std::fs::read_to_string(root().join("sim/tests/forecasts/golden.toml")).unwrap();
    let dir = root().join("target/plan-tests/bad");
    std::fs::create_dir_all(&dir).unwrap();
    let cases: &[(&str, &str, &str, &str)] = &[
        (
            "missing field",
            "[burst]\njoins_per_s = 20\nduration_s = 5\n",
            "",
            "burst",
        ),
        (
            "negative rate",
            "joins_per_s = 20",
            "joins_per_s = -3",
            "burst.joins_per_s",
        ),
        (
            "shares that do not sum to 1",
            "{ size = 8, share = 0.5 }",
            "{ size = 8, share = 0.2 }",
            "shares sum to 0.700",
        ),
        (
            "a meeting larger than an MMR",
            "{ size = 8, share = 0.5 }",
            "{ size = 80, share = 0.5 }",
            "meeting_sizes[1].size",
        ),
        (
            "contradiction: a single controller that survives a controller",
            "controllers = \"pair\"",
            "controllers = \"single\"",
            "availability.survive",
        ),
        (
            "unknown field",
            "peak_participants = 60",
            "peak_participant = 60",
            "unknown field `peak_participant`",
        ),
        ("not TOML", "[limits]", "[limits", "TOML"),
    ];
    for (what, from, to, expect) in cases {
        assert!(
            good.contains(from),
            "{what}: the golden forecast has {from:?}"
        );
        let file = dir.join(format!("{}.toml", what.replace([' ', ':'], "-")));
        std::fs::write(&file, good.replacen(from, to, 1)).unwrap();
        let o = plan(&[file.to_str().unwrap(), "--out", "target/plan-tests/bad/out"]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{what}: {}", text(&o));
        assert!(
            err.contains(expect),
            "{what}: the error names {expect:?}: {err}"
        );
        assert!(!err.contains("panicked"), "{what}: {err}");
    }
}

/// The campus forecast (HA pair, survive a controller VM or an MMR VM at peak): the topology
/// `ci/plan fixtures/forecasts/campus.toml` recommends meets every target at the peak and under
/// each required failure, on 20 seeds. (The search for it, which also runs the smaller
/// candidates, is measured in the README.)
#[test]
fn the_campus_recommendation_survives_each_required_failure_on_20_seeds() {
    let out = "target/plan-tests/campus";
    let o = plan(&[
        "fixtures/forecasts/campus.toml",
        "--out",
        out,
        "--mmr-vms",
        "8",
        "--seeds",
        "20",
        "--screen-seeds",
        "20",
        "--jobs",
        "2",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let (json, _, _) = report(out);
    let c = &json["candidates"][0];
    let failures: Vec<&str> = c["cases"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|k| k["failure"].as_str())
        .collect();
    assert_eq!(failures, ["controller_vm", "mmr_vm"]);
    for k in c["cases"].as_array().unwrap() {
        assert_eq!(k["runs"], 20);
        assert!(k["refusal_pct"].as_f64().unwrap() <= 0.1, "{k}");
        assert_eq!(k["violations"].as_array().unwrap().len(), 0, "{k}");
        if k["failure"].is_string() {
            // Everyone who had to rejoin heard media again, within the bound.
            assert!(k["recovery_ms"]["n"].as_u64().unwrap() > 0, "{k}");
            assert!(k["recovery_ms"]["max"].as_u64().unwrap() <= 15_000, "{k}");
        } else {
            assert!(k["utilisation_pct"].as_f64().unwrap() <= 80.0, "{k}");
        }
    }
}

/// A plan split into shards (each a process of its own, with its own output directory) and
/// merged gives the report one machine writes, byte for byte: Markdown, JSON, HTML and every
/// chart. (Paths in a report are those of its --out, so the merge writes to the single run's
/// --out, after that run's report is moved aside.) A missing shard is refused by name.
#[test]
fn a_plan_split_into_shards_merges_to_the_report_of_one_machine() {
    let (out, aside, shards) = (
        "target/plan-tests/split",
        root().join("target/plan-tests/split-one-machine"),
        "target/plan-tests/split-shards",
    );
    for d in [out, shards] {
        let _ = std::fs::remove_dir_all(root().join(d));
    }
    let _ = std::fs::remove_dir_all(&aside);
    let args = |out: &str| -> Vec<String> {
        [
            "sim/tests/forecasts/golden.toml",
            "--out",
            out,
            "--seeds",
            "3",
            "--screen-seeds",
            "2",
        ]
        .map(String::from)
        .to_vec()
    };
    let one = plan(
        &args(out)
            .iter()
            .map(String::as_str)
            .chain(["--jobs", "2"])
            .collect::<Vec<_>>(),
    );
    assert_eq!(one.status.code(), Some(0), "{}", text(&one));
    std::fs::rename(root().join(out), &aside).unwrap();

    let children: Vec<_> = (1..=3)
        .map(|k| {
            Command::new(env!("CARGO_BIN_EXE_plan"))
                .args(args(&format!("{shards}/{k}")))
                .args(["--jobs", "1", "--shard", &format!("{k}/3")])
                .current_dir(root())
                .output()
        })
        .collect();
    for c in children {
        let o = c.unwrap();
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    }
    let merged = plan(&["merge", shards, "--out", out]);
    assert_eq!(merged.status.code(), Some(0), "{}", text(&merged));
    let mut files = vec![
        "plan.md".to_string(),
        "plan.json".into(),
        "plan.html".into(),
    ];
    for chart in std::fs::read_dir(aside.join("charts")).unwrap() {
        files.push(format!(
            "charts/{}",
            chart.unwrap().file_name().to_string_lossy()
        ));
    }
    for f in &files {
        let a = std::fs::read(aside.join(f)).unwrap();
        let b = std::fs::read(root().join(out).join(f)).unwrap_or_default();
        assert!(
            a == b,
            "{f} of the merged shards differs from one machine's"
        );
    }
    let json: Value =
        serde_json::from_str(&std::fs::read_to_string(aside.join("plan.json")).unwrap()).unwrap();
    assert!(json["replay"]["runs"].as_u64().unwrap() > 0);

    let missing = plan(&[
        "merge",
        &format!("{shards}/1"),
        &format!("{shards}/3"),
        "--out",
        "target/plan-tests/split-missing",
    ]);
    assert_eq!(missing.status.code(), Some(2), "{}", text(&missing));
    assert!(
        text(&missing).contains("shard 2/3 is missing"),
        "{}",
        text(&missing)
    );
}
