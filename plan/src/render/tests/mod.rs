mod sample;

use super::*;
use crate::model::PlanReport;
use sample::sample;

const ALL_CHARTS: [&str; 5] = [
    "concurrency.svg",
    "mmr-utilisation.svg",
    "refusals.svg",
    "recovery.svg",
    "growth.svg",
];

fn files(r: &PlanReport) -> Vec<&'static str> {
    charts(r).iter().map(|c| c.file_name).collect()
}

/// Every `http://` or `https://` in `s` that is not the SVG namespace.
fn external_urls(s: &str) -> Vec<String> {
    let allowed = "xmlns=\"http://www.w3.org/2000/svg\"";
    let stripped = s.replace(allowed, "");
    ["http://", "https://"]
        .iter()
        .flat_map(|scheme| {
            stripped
                .match_indices(scheme)
                .map(|(i, _)| stripped[i..].chars().take(60).collect())
        })
        .collect()
}

#[test]
fn every_chart_is_drawn_and_inlined() {
    let r = sample();
    assert_eq!(files(&r), ALL_CHARTS);
    let page = html(&r);
    assert_eq!(page.matches("<svg").count(), ALL_CHARTS.len());
    assert_eq!(page.matches("</svg>").count(), ALL_CHARTS.len());
    assert!(page.starts_with("<!doctype html>"));
    assert!(page.contains("<meta charset=\"utf-8\">"));
    assert!(page.contains("<style>"));
    assert!(!page.contains("<?xml"));
    for chart in charts(&r) {
        assert!(chart.svg.contains("<svg"), "{}", chart.file_name);
        assert!(page.contains(&format!(
            "id=\"chart-{}\"",
            chart.file_name.trim_end_matches(".svg")
        )));
    }
}

#[test]
fn no_external_references() {
    let r = sample();
    let page = html(&r);
    assert_eq!(external_urls(&page), Vec::<String>::new());
    for tag in ["<script", "<link", "<img", "<iframe", " src=", "url("] {
        assert!(!page.contains(tag), "{tag}");
    }
    for chart in charts(&r) {
        assert_eq!(
            external_urls(&chart.svg),
            Vec::<String>::new(),
            "{}",
            chart.file_name
        );
    }
}

#[test]
fn markdown_names_the_recommendation_and_every_miss() {
    let r = sample();
    let md = markdown(&r);
    assert!(md.starts_with("# Capacity plan: Campus, autumn term\n"));
    let first = md.lines().nth(2).unwrap_or_default();
    assert!(first.contains("**HA pair + 5 MMR VMs**"), "{first}");
    assert!(first.contains("2 controller VMs and 5 MMR VMs"), "{first}");
    assert!(first.contains("1,400 seats"), "{first}");
    assert!(first.contains("1,220 EUR a month"), "{first}");
    assert!(first.contains("across 40 seeds"), "{first}");
    assert!(md.contains("## Why smaller topologies were not enough"));
    for c in r.candidates.iter().filter(|c| !c.passed) {
        for miss in &c.misses {
            assert!(
                md.contains(&format!("- {}\n", markdown::escape(miss))),
                "{miss}"
            );
        }
    }
    for file in ALL_CHARTS {
        assert!(md.contains(&format!("](charts/{file})")), "{file}");
    }
    assert!(md.contains("1,000"));
    assert!(
        md.contains("--seed 1\n"),
        "the replay command on the first seed"
    );
    // The same content in HTML.
    let page = html(&r);
    assert!(page.contains("<strong>HA pair + 5 MMR VMs</strong>"));
    for miss in r.candidates.iter().flat_map(|c| c.misses.iter()) {
        assert!(page.contains(&html::escape(miss)), "{miss}");
    }
}

#[test]
fn rendering_is_deterministic() {
    let r = sample();
    assert_eq!(html(&r), html(&r.clone()));
    assert_eq!(markdown(&r), markdown(&r));
    assert_eq!(json(&r), json(&r));
    assert_eq!(charts(&r), charts(&sample()));
}

#[test]
fn json_is_the_model() {
    let r = sample();
    let back: PlanReport = serde_json::from_str(&json(&r)).expect("the JSON parses as a report");
    assert_eq!(back.forecast.name, r.forecast.name);
    assert_eq!(back.candidates.len(), r.candidates.len());
    assert_eq!(back.recommended, r.recommended);
}

#[test]
fn no_recommendation_no_growth_no_failures() {
    let mut r = sample();
    r.recommended = None;
    r.growth.clear();
    r.forecast.survive.clear();
    for c in &mut r.candidates {
        c.cases.retain(|k| k.failure.is_none());
        c.passed = false;
        if c.misses.is_empty() {
            c.misses
                .push("busiest MMR at 81.0 % of its seats > headroom target 80 %".into());
        }
    }
    assert_eq!(
        files(&r),
        ["concurrency.svg", "mmr-utilisation.svg", "refusals.svg"]
    );
    let md = markdown(&r);
    assert!(md.contains("No candidate tried met every target"), "{md}");
    assert!(md.contains("## Why no candidate was enough"));
    assert!(!md.contains("## Growth"));
    assert!(!md.contains("recovery.svg") && !md.contains("growth.svg"));
    let page = html(&r);
    assert_eq!(page.matches("<svg").count(), 3);
}

#[test]
fn degenerate_reports_render() {
    let mut r = sample();
    r.candidates.clear();
    r.recommended = None;
    r.growth.clear();
    assert_eq!(files(&r), Vec::<&str>::new());
    assert!(markdown(&r).contains("No candidate topology was simulated"));
    assert!(!html(&r).contains("<svg"));

    // Cases without timelines, peaks or samples, and numbers that are not numbers.
    let mut r = sample();
    r.recommended = Some(99);
    for c in &mut r.candidates {
        for k in &mut c.cases {
            k.timeline.clear();
            k.mmr_peaks.clear();
            k.recovery_samples_ms.clear();
            k.refusal_pct = f64::NAN;
            k.refusal_ci95_pct = (f64::NEG_INFINITY, f64::INFINITY);
        }
    }
    r.analytic.erlang_offered = f64::NAN;
    r.forecast.max_refusal_pct = f64::INFINITY;
    assert_eq!(files(&r), ["refusals.svg", "growth.svg"]);
    let _ = (markdown(&r), html(&r), json(&r));
}

#[test]
fn several_zones_are_named() {
    let mut r = sample();
    for c in &mut r.candidates {
        c.topology.zones = 2;
        let zone2: Vec<_> = c
            .cases
            .iter()
            .cloned()
            .map(|mut k| {
                k.zone = 2;
                k
            })
            .collect();
        c.cases.extend(zone2);
    }
    assert_eq!(files(&r), ALL_CHARTS);
    let md = markdown(&r);
    assert!(md.contains("**2 zones × (HA pair + 5 MMR VMs)** ("), "{md}");
    assert!(md.contains("### Zone 2, at the peak, controller VM killed"));
    // 8 cases × 7 MMRs is too many bars: zone 1 only, and the caption says so.
    assert!(md.contains("zone 1 only"));
}

#[test]
fn text_is_escaped() {
    let mut r = sample();
    r.forecast.name = "North <site> | A&B \"main\"".into();
    r.candidates[0].misses[0] = "refusals <b>2 %</b> | under `zc` *kill*".into();
    let md = markdown(&r);
    assert!(
        md.starts_with("# Capacity plan: North \\<site> \\| A&B \"main\"\n"),
        "{md}"
    );
    assert!(md.contains("- refusals \\<b>2 %\\</b> \\| under \\`zc\\` \\*kill\\*\n"));
    // In the candidates table the first miss is a cell: its `|` must not split the row.
    let row = md
        .lines()
        .find(|l| l.starts_with("| HA pair + 3 MMR VMs"))
        .unwrap_or_default();
    assert_eq!(row.matches(" | ").count(), 9, "{row}");
    let page = html(&r);
    assert!(page
        .contains("<title>Capacity plan: North &lt;site&gt; | A&amp;B &quot;main&quot;</title>"));
    assert!(page.contains("refusals &lt;b&gt;2 %&lt;/b&gt; | under `zc` *kill*"));
    assert!(!page.contains("<b>2 %</b>") && !page.contains("<site>"));
}

/// Writes the sample report where a human can look at it:
/// `PLAN_SAMPLE_DIR=/tmp/plan cargo test -p mc-plan write_sample -- --ignored`
/// (default: `target/plan-sample` in the workspace).
#[test]
#[ignore = "writes files; run by hand to look at the sample report"]
fn write_sample() {
    let dir = std::env::var_os("PLAN_SAMPLE_DIR").map_or_else(
        || std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/plan-sample"),
        std::path::PathBuf::from,
    );
    let r = sample();
    std::fs::create_dir_all(dir.join("charts")).expect("create the sample directory");
    std::fs::write(dir.join("report.html"), html(&r)).expect("write report.html");
    std::fs::write(dir.join("report.md"), markdown(&r)).expect("write report.md");
    std::fs::write(dir.join("report.json"), json(&r)).expect("write report.json");
    for chart in charts(&r) {
        std::fs::write(dir.join("charts").join(chart.file_name), &chart.svg)
            .expect("write a chart");
    }
    eprintln!("wrote {}", dir.display());
}
