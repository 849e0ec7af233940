//! The report's opening sections: the recommendation, the forecast, the analytic sizing and
//! every candidate simulated, with why the smaller ones were not enough.

use crate::model::{Candidate, PlanReport};
use crate::render::doc::{b, cell, para, t, Align, Block, Cell, Table, Tone};
use crate::render::text::{self, count, fixed, money, pct, thousands};
use crate::render::{detail, facts, Chart};

/// The whole report, in order.
pub(crate) fn document(r: &PlanReport, charts: &[Chart]) -> Vec<Block> {
    let mut doc = vec![Block::Heading(
        1,
        format!("Capacity plan: {}", r.forecast.name),
    )];
    summary(r, &mut doc);
    forecast(r, &mut doc);
    rules(r, &mut doc);
    candidates(r, &mut doc);
    misses(r, &mut doc);
    detail::candidate(r, &mut doc);
    detail::growth(r, &mut doc);
    detail::charts(r, charts, &mut doc);
    detail::notes(r, &mut doc);
    detail::replay(r, &mut doc);
    doc
}

fn currency(r: &PlanReport) -> &str {
    r.forecast.cost.as_ref().map_or("", |c| c.currency.as_str())
}

/// A candidate's monthly cost, or "—".
pub(crate) fn cost(r: &PlanReport, c: Option<f64>) -> String {
    c.map_or("—".into(), |x| money(x, currency(r)))
}

/// The failures the forecast must survive, in words.
fn failures(r: &PlanReport) -> Vec<String> {
    r.forecast
        .survive
        .iter()
        .map(|f| text::failure(Some(f)))
        .collect()
}

fn summary(r: &PlanReport, doc: &mut Vec<Block>) {
    let peak = thousands(u64::from(r.forecast.peak_participants));
    if let Some(c) = facts::recommended(r) {
        let tp = &c.topology;
        let mut what = vec![
            format!(
                "{} and {}",
                count(
                    u64::from(tp.controller_vms()),
                    "controller VM",
                    "controller VMs"
                ),
                count(u64::from(tp.mmr_vm_count()), "MMR VM", "MMR VMs"),
            ),
            format!(
                "{} with {} seats",
                count(u64::from(tp.mmrs()), "MMR", "MMRs"),
                thousands(facts::seats(r, tp))
            ),
        ];
        if let Some(x) = c.cost {
            what.push(format!("{} a month", money(x, currency(r))));
        }
        let zone = if tp.zones == 1 { " in one zone" } else { "" };
        let seeds = count(c.seeds.len() as u64, "seed", "seeds");
        let fails = failures(r);
        let survived = if fails.is_empty() {
            String::new()
        } else {
            format!(
                " and under each failure the forecast must survive ({})",
                fails.join("; ")
            )
        };
        let line = vec![
            t("Recommendation: "),
            b(tp.describe()),
            t(format!(
                "{zone} ({}), which in simulation met every target at the peak of {peak} participants{survived}, across {seeds}.",
                what.join("; ")
            )),
        ];
        doc.push(Block::Para(line));
        let rule = r.analytic.rule_of_thumb;
        let diff = i64::from(tp.mmrs()) - i64::from(rule.mmrs());
        let versus = match diff {
            0 => "as many MMRs as".to_string(),
            d if d > 0 => format!("{} more than", count(d.unsigned_abs(), "MMR", "MMRs")),
            d => format!("{} fewer than", count(d.unsigned_abs(), "MMR", "MMRs")),
        };
        doc.push(para(format!(
            "That is {versus} the product's rule of thumb ({}, {}), which divides participants by MMR capacity and ignores meeting affinity, headroom and failures.",
            rule.describe(),
            count(u64::from(rule.mmrs()), "MMR", "MMRs"),
        )));
    } else if let Some(c) = facts::closest(r) {
        let mut line = vec![
            t("No candidate tried met every target. The closest was "),
            b(c.topology.describe()),
            t(format!(
                " ({}, {} seats)",
                count(u64::from(c.topology.mmrs()), "MMR", "MMRs"),
                thousands(facts::seats(r, &c.topology))
            )),
        ];
        match c.misses.first() {
            Some(first) => line.push(t(format!(
                ", which missed {}; the first: {first}.",
                count(c.misses.len() as u64, "target", "targets")
            ))),
            None => line.push(t(".")),
        }
        line.push(t(
            " A larger topology than any tried is needed; the sections below say where each fell short.",
        ));
        doc.push(Block::Para(line));
    } else {
        doc.push(para(
            "No candidate topology was simulated, so there is no recommendation.",
        ));
    }
}

fn forecast(r: &PlanReport, doc: &mut Vec<Block>) {
    let f = &r.forecast;
    doc.push(Block::Heading(2, "The forecast".into()));
    if !f.description.trim().is_empty() {
        doc.push(para(f.description.trim()));
    }
    let mut table = Table::new(&[("What", Align::Left), ("Forecast", Align::Left)]);
    let total: f64 = f.meeting_sizes.iter().map(|(_, s)| facts::finite(*s)).sum();
    let sizes: Vec<String> = f
        .meeting_sizes
        .iter()
        .map(|(size, share)| {
            let share = if total > 0.0 {
                facts::finite(*share) / total * 100.0
            } else {
                0.0
            };
            format!("{} ({})", thousands(u64::from(*size)), pct(share, 0))
        })
        .collect();
    let controllers = if f.controllers == "pair" {
        "an HA pair of controller VMs in each zone".to_string()
    } else if f.controllers == "single" {
        "one controller VM in each zone".to_string()
    } else {
        f.controllers.clone()
    };
    let survive = if f.survive.is_empty() {
        "no failure required".to_string()
    } else {
        failures(r).join("; ")
    };
    let rows = [
        (
            "Peak participants",
            thousands(u64::from(f.peak_participants)),
        ),
        ("Meetings at the peak", thousands(u64::from(f.meetings))),
        (
            "Meeting sizes, people (share of meetings)",
            sizes.join(", "),
        ),
        (
            "Join burst",
            format!(
                "{} joins/s for {} s",
                fixed(f.burst_joins_per_s, 1),
                fixed(f.burst_duration_s, 0)
            ),
        ),
        (
            "Meeting length",
            format!("{} min", fixed(f.meeting_minutes, 0)),
        ),
        ("Controllers", controllers),
        ("Must survive at the peak", survive),
        (
            "Refusal target",
            format!("at most {} of joins refused", pct(f.max_refusal_pct, 2)),
        ),
        (
            "Headroom target",
            format!(
                "busiest moment at most {} of seats",
                pct(f.max_utilisation_pct, 0)
            ),
        ),
        (
            "MMR capacity",
            format!(
                "{} participants per MMR",
                thousands(u64::from(f.mmr_capacity))
            ),
        ),
        (
            "Meeting limit",
            format!(
                "{} meetings per controller",
                thousands(u64::from(f.max_meetings))
            ),
        ),
    ];
    for (what, value) in rows {
        table.row(vec![cell(what), cell(value)]);
    }
    if let Some(c) = &f.cost {
        table.row(vec![
            cell("VM cost per month"),
            cell(format!(
                "controller VM {}, MMR VM {}",
                money(c.controller_vm, &c.currency),
                money(c.mmr_vm, &c.currency)
            )),
        ]);
    }
    doc.push(Block::Table(table));
}

fn rules(r: &PlanReport, doc: &mut Vec<Block>) {
    let a = &r.analytic;
    doc.push(Block::Heading(2, "Sizing by rule".into()));
    doc.push(para(
        "Three rules size the deployment before any simulation. Each leaves something out, which is why the candidates were then simulated.",
    ));
    let mut table = Table::new(&[
        ("Rule", Align::Left),
        ("Topology", Align::Left),
        ("MMRs", Align::Right),
        ("Seats", Align::Right),
        ("What it leaves out", Align::Wide),
    ]);
    table.row(vec![
        cell("Rule of thumb"),
        cell(a.rule_of_thumb.describe()),
        cell(a.rule_of_thumb.mmrs().to_string()),
        cell(thousands(facts::seats(r, &a.rule_of_thumb))),
        cell("Divides participants by MMR capacity and meetings by the meeting limit; it ignores meeting affinity, headroom and failures."),
    ]);
    table.row(vec![
        cell("Bin packing"),
        cell(a.packed.describe()),
        cell(a.packed.mmrs().to_string()),
        cell(thousands(facts::seats(r, &a.packed))),
        cell("Packs whole meetings with headroom and through each required failure, but for a static peak: it ignores how joins arrive in a burst."),
    ]);
    table.row(vec![
        cell("Erlang B lower bound"),
        cell("—"),
        cell(a.erlang_mmrs.to_string()),
        cell(thousands(u64::from(a.erlang_seats))),
        cell("Pools every seat as if any participant could sit on any MMR, so it is optimistic: a meeting lives on one MMR."),
    ]);
    doc.push(Block::Table(table));
    doc.push(para(format!(
        "Erlang B takes the peak as {} erlangs of offered load and the refusal target ({}) as its blocking target.",
        text::fixed_thousands(a.erlang_offered, 1),
        pct(r.forecast.max_refusal_pct, 2)
    )));
}

fn candidates(r: &PlanReport, doc: &mut Vec<Block>) {
    doc.push(Block::Heading(2, "Candidates simulated".into()));
    if r.candidates.is_empty() {
        doc.push(para("None."));
        return;
    }
    doc.push(para(format!(
        "Smallest first. Each ran at the peak and under each required failure, on every seed; refusals are the worst case's mean over seeds with its 95 % confidence interval, and the other figures are the worst across the candidate's cases (recovery: the failure case that recovered slowest). Seats are MMRs × {} participants.",
        thousands(u64::from(r.forecast.mmr_capacity))
    )));
    let mut table = Table::new(&[
        ("Topology", Align::Left),
        ("MMRs", Align::Right),
        ("Seats", Align::Right),
        ("Named by", Align::Left),
        ("Worst refusals (95 % CI)", Align::Right),
        ("Peak utilisation", Align::Right),
        ("Recovery p50 / p99 / max (s)", Align::Right),
        ("Join p50 / p99 (ms)", Align::Right),
        ("Cost / month", Align::Right),
        ("Verdict", Align::Wide),
    ]);
    for (i, c) in r.candidates.iter().enumerate() {
        let mut topology = c.topology.describe();
        if r.recommended == Some(i) {
            topology.push_str(" (recommended)");
        }
        table.row(vec![
            cell(topology),
            cell(c.topology.mmrs().to_string()),
            cell(thousands(facts::seats(r, &c.topology))),
            cell(if c.named_by.is_empty() {
                "—".into()
            } else {
                c.named_by.join(", ")
            }),
            cell(worst_refusals(c)),
            cell(facts::peak_utilisation(c).map_or("—".into(), |u| pct(u, 1))),
            cell(facts::worst_failure_case(c).map_or("—".into(), |k| {
                let p = k.recovery_ms;
                if p.n == 0 {
                    "—".into()
                } else {
                    format!(
                        "{} / {} / {}",
                        text::secs(p.p50),
                        text::secs(p.p99),
                        text::secs(p.max)
                    )
                }
            })),
            cell(join(c)),
            cell(cost(r, c.cost)),
            verdict(c),
        ]);
    }
    doc.push(Block::Table(table));
}

fn worst_refusals(c: &Candidate) -> String {
    facts::worst_case(c).map_or("—".into(), |k| {
        format!(
            "{} ({}–{})",
            pct(k.refusal_pct, 2),
            fixed(k.refusal_ci95_pct.0, 2),
            fixed(k.refusal_ci95_pct.1, 2)
        )
    })
}

fn join(c: &Candidate) -> String {
    let p50 = c
        .cases
        .iter()
        .filter(|k| k.join_ms.n > 0)
        .map(|k| k.join_ms.p50)
        .max();
    let p99 = c
        .cases
        .iter()
        .filter(|k| k.join_ms.n > 0)
        .map(|k| k.join_ms.p99)
        .max();
    match (p50, p99) {
        (Some(a), Some(b)) => format!("{} / {}", thousands(a), thousands(b)),
        _ => "—".into(),
    }
}

fn verdict(c: &Candidate) -> Cell {
    if c.passed {
        Cell {
            text: "✅ meets every target".into(),
            tone: Tone::Pass,
        }
    } else {
        Cell {
            text: format!(
                "❌ {}",
                c.misses.first().map_or("missed a target", String::as_str)
            ),
            tone: Tone::Fail,
        }
    }
}

fn misses(r: &PlanReport, doc: &mut Vec<Block>) {
    let failed: Vec<&Candidate> = r.candidates.iter().filter(|c| !c.passed).collect();
    if failed.is_empty() {
        return;
    }
    doc.push(Block::Heading(
        2,
        if facts::recommended(r).is_some() {
            "Why smaller topologies were not enough".into()
        } else {
            "Why no candidate was enough".into()
        },
    ));
    for c in failed {
        doc.push(Block::Para(vec![
            b(c.topology.describe()),
            t(format!(
                " ({}, {} seats) missed:",
                count(u64::from(c.topology.mmrs()), "MMR", "MMRs"),
                thousands(facts::seats(r, &c.topology))
            )),
        ]));
        let items = if c.misses.is_empty() {
            vec![vec![t("a target (the planner recorded no detail)")]]
        } else {
            c.misses.iter().map(|m| vec![t(m.clone())]).collect()
        };
        doc.push(Block::List(items));
    }
}
