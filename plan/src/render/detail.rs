//! The report's closing sections: the recommended candidate case by case, growth, the charts,
//! notes, and how to replay it all.

use crate::model::{Case, PlanReport};
use crate::render::doc::{b, cell, code, para, t, Align, Block, Table};
use crate::render::report::cost;
use crate::render::text::{self, count, fixed, pct, secs, thousands};
use crate::render::{charts as chart_list, facts, Chart};

pub(crate) fn candidate(r: &PlanReport, doc: &mut Vec<Block>) {
    let Some(c) = facts::detail(r) else {
        return;
    };
    let recommended = facts::recommended(r).is_some();
    doc.push(Block::Heading(
        2,
        if recommended {
            format!(
                "The recommended topology in detail: {}",
                c.topology.describe()
            )
        } else {
            format!("The largest candidate in detail: {}", c.topology.describe())
        },
    ));
    doc.push(para(format!(
        "Every case ran on {} ({}). Counts are summed over seeds; peaks are the worst seed.",
        count(c.seeds.len() as u64, "seed", "seeds"),
        text::seeds(&c.seeds)
    )));
    let multi = facts::multi_zone(c);
    for k in &c.cases {
        case(k, multi, doc);
    }
}

fn case(k: &Case, multi: bool, doc: &mut Vec<Block>) {
    let what = match k.failure.as_deref() {
        None => "at the peak, nothing failing".to_string(),
        Some(f) => format!("at the peak, {}", text::failure(Some(f))),
    };
    doc.push(Block::Heading(
        3,
        if multi {
            format!("Zone {}, {what}", k.zone)
        } else {
            format!("A{}", &what[1..])
        },
    ));
    let mut facts_line = String::new();
    if k.failure.is_some() {
        let when = k
            .kill_at_s
            .map_or(String::new(), |s| format!(" at {} s", fixed(s, 1)));
        if k.killed.is_empty() {
            facts_line.push_str(&format!("Failure injected{when}. "));
        } else {
            facts_line.push_str(&format!("Killed {}{when}. ", k.killed.join(", ")));
        }
    }
    facts_line.push_str(&format!(
        "{} participants in {} meetings; {} seats with nothing failed",
        thousands(u64::from(k.participants)),
        thousands(u64::from(k.meetings)),
        thousands(u64::from(k.capacity)),
    ));
    if k.failure.is_some() {
        facts_line.push_str(&format!(
            ", {} after the failure",
            thousands(u64::from(k.capacity_after_failure))
        ));
    }
    facts_line.push_str(&format!(
        ". {}, {} joins, {} refused or failed ({}, 95 % CI {}–{} %). Busiest moment: {} of the zone's seats.",
        count(u64::from(k.runs), "run", "runs"),
        thousands(k.joins),
        thousands(k.refused),
        pct(k.refusal_pct, 2),
        fixed(k.refusal_ci95_pct.0, 2),
        fixed(k.refusal_ci95_pct.1, 2),
        pct(k.utilisation_pct, 1),
    ));
    doc.push(para(facts_line));
    if !k.refused_by_reason.is_empty() {
        let reasons: Vec<String> = k
            .refused_by_reason
            .iter()
            .map(|(reason, n)| format!("{reason}: {}", thousands(*n)))
            .collect();
        doc.push(para(format!("Refusals by reason: {}.", reasons.join("; "))));
    }
    if !k.mmr_peaks.is_empty() || !k.controller_peaks.is_empty() {
        let mut table = Table::new(&[
            ("Host", Align::Left),
            ("Carries", Align::Left),
            ("Peak", Align::Right),
            ("Limit", Align::Right),
            ("Share", Align::Right),
        ]);
        let peaks = k.mmr_peaks.iter().map(|p| (p, "participants (MMR)")).chain(
            k.controller_peaks
                .iter()
                .map(|p| (p, "meetings (controller)")),
        );
        for (p, what) in peaks {
            let share = if p.limit == 0 {
                "—".to_string()
            } else {
                pct(f64::from(p.peak) / f64::from(p.limit) * 100.0, 1)
            };
            table.row(vec![
                cell(p.name.clone()),
                cell(what),
                cell(thousands(u64::from(p.peak))),
                cell(thousands(u64::from(p.limit))),
                cell(share),
            ]);
        }
        doc.push(Block::Table(table));
    }
    let mut timing = String::new();
    if k.join_ms.n > 0 {
        timing.push_str(&format!(
            "Join latency p50 {} ms, p99 {} ms, max {} ms over {} joins.",
            thousands(k.join_ms.p50),
            thousands(k.join_ms.p99),
            thousands(k.join_ms.max),
            thousands(k.join_ms.n)
        ));
    }
    if k.recovery_ms.n > 0 {
        if !timing.is_empty() {
            timing.push(' ');
        }
        timing.push_str(&format!(
            "Failover recovery p50 {} s, p99 {} s, max {} s over {} participants who had to rejoin.",
            secs(k.recovery_ms.p50),
            secs(k.recovery_ms.p99),
            secs(k.recovery_ms.max),
            thousands(k.recovery_ms.n)
        ));
    } else if k.failure.is_some() {
        if !timing.is_empty() {
            timing.push(' ');
        }
        timing.push_str("No participant had to rejoin.");
    }
    if !timing.is_empty() {
        doc.push(para(timing));
    }
    if k.violations.is_empty() {
        doc.push(para("No checker violations."));
    } else {
        doc.push(para(
            "Checker violations (first of each kind, with its seed):",
        ));
        doc.push(Block::List(
            k.violations.iter().map(|v| vec![t(v.clone())]).collect(),
        ));
    }
}

pub(crate) fn growth(r: &PlanReport, doc: &mut Vec<Block>) {
    if r.growth.is_empty() {
        return;
    }
    doc.push(Block::Heading(2, "Growth".into()));
    let mut table = Table::new(&[
        ("Quarter", Align::Left),
        ("Peak participants", Align::Right),
        ("Meetings", Align::Right),
        ("Topology", Align::Left),
        ("Controller VMs", Align::Right),
        ("MMR VMs", Align::Right),
        ("Cost / month", Align::Right),
    ]);
    for q in &r.growth {
        table.row(vec![
            cell(if q.quarter == 0 {
                "Q0 (now)".to_string()
            } else {
                format!("Q{}", q.quarter)
            }),
            cell(thousands(u64::from(q.peak_participants))),
            cell(thousands(u64::from(q.meetings))),
            cell(q.topology.describe()),
            cell(q.topology.controller_vms().to_string()),
            cell(q.topology.mmr_vm_count().to_string()),
            cell(cost(r, q.cost)),
        ]);
    }
    doc.push(Block::Table(table));
    doc.push(para(
        "These rows are sized analytically, by the same rules as the peak (bin packing with headroom and every required failure); only the current peak was checked in simulation, so re-run the plan before each step up.",
    ));
}

pub(crate) fn charts(r: &PlanReport, list: &[Chart], doc: &mut Vec<Block>) {
    if list.is_empty() {
        return;
    }
    doc.push(Block::Heading(2, "Charts".into()));
    for chart in list {
        doc.push(Block::Figure {
            file: chart.file_name,
            title: chart.title.clone(),
            caption: chart_list::caption(r, chart.file_name),
        });
    }
}

pub(crate) fn notes(r: &PlanReport, doc: &mut Vec<Block>) {
    doc.push(Block::Heading(2, "Notes".into()));
    doc.push(Block::List(vec![
        vec![t(format!(
            "Simulated participants send media at {} packets/s each: admission, placement and failover are what is checked, not media quality.",
            thousands(u64::from(r.replay.media_pps))
        ))],
        vec![t("Erlang B is optimistic: it pools every seat, but a meeting lives on one MMR, so a deployment can refuse joins while seats are free elsewhere.")],
        vec![t(format!(
            "Participants arrive at the forecast's burst rate ({} joins/s) until the peak is reached: {}. Only the speakers ({} per meeting) send media; the others listen. A failure is injected at the busiest moment, once everyone is in.",
            fixed(r.forecast.burst_joins_per_s, 1),
            r.replay.arrivals,
            r.replay.speakers_per_meeting
        ))],
        vec![t("A 95 % confidence interval comes from the spread of refusal rates between seeds; with refusals at zero on every seed it is zero wide.")],
    ]));
}

pub(crate) fn replay(r: &PlanReport, doc: &mut Vec<Block>) {
    let rp = &r.replay;
    doc.push(Block::Heading(2, "Replay".into()));
    let mut items = vec![
        vec![t("Commit: "), code(rp.commit.clone())],
        vec![
            t("Forecast: "),
            code(rp.forecast_file.clone()),
            t(", SHA-256 "),
            code(rp.forecast_sha256.clone()),
        ],
        vec![t(format!(
            "Screening seeds: {}",
            text::seeds(&rp.screen_seeds)
        ))],
    ];
    if !rp.confirm_seeds.is_empty() {
        items.push(vec![t(format!(
            "Confirmation seeds (recommended candidate only): {}",
            text::seeds(&rp.confirm_seeds)
        ))]);
    }
    items.push(vec![t(format!("{} simulated runs", thousands(rp.runs)))]);
    doc.push(Block::List(items));
    doc.push(para("The command that made this report:"));
    doc.push(Block::Command(rp.command.clone()));
    let Some(c) = facts::detail(r) else {
        return;
    };
    let Some(k) = facts::worst_failure_case(c).or_else(|| c.cases.first()) else {
        return;
    };
    let seed = c.seeds.first().or(rp.screen_seeds.first()).copied();
    let command = match seed {
        Some(s) => k.replay.replace("{seed}", &s.to_string()),
        None => k.replay.clone(),
    };
    let mut line = vec![
        t("To re-run one case on one seed ("),
        b(c.topology.describe()),
        t(format!(", {}", facts::case_label(k, facts::multi_zone(c)))),
    ];
    if let Some(s) = seed {
        line.push(t(format!(", seed {s}")));
    }
    line.push(t("; scenario "));
    line.push(code(k.scenario_file.clone()));
    line.push(t("):"));
    doc.push(Block::Para(line));
    doc.push(Block::Command(command));
}
