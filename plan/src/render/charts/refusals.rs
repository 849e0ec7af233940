//! `refusals.svg`: each simulated candidate's worst refusal rate, with its confidence interval,
//! against the MMRs in the deployment; Erlang B's curve, the rule of thumb and the target.

use super::*;
use crate::render::facts::{self, finite};
use crate::render::text;
use mc_core::plan::erlang;

pub(super) const FILE: &str = "refusals.svg";
const TITLE: &str = "Refusals at peak against deployment size";

pub(super) fn caption(r: &PlanReport) -> String {
    format!(
        "Each point is a simulated candidate's worst case (green: met every target; red: did not), with its 95 % confidence interval as a bar, and a point far above the scale is an arrow at the top with its value; the curve is Erlang B's optimistic bound for the same number of MMRs, the dotted vertical line is the rule of thumb, and points must sit under the dashed refusal target of {}.",
        text::pct(r.forecast.max_refusal_pct, 2)
    )
}

/// One candidate as drawn.
struct Point {
    mmrs: f64,
    pct: f64,
    ci: (f64, f64),
    passed: bool,
    recommended: bool,
}

pub(super) fn chart(r: &PlanReport) -> Option<Chart> {
    if r.candidates.is_empty() {
        return None;
    }
    let a = &r.analytic;
    let rule = f64::from(a.rule_of_thumb.mmrs());
    let target = finite(r.forecast.max_refusal_pct).max(0.0);
    let points: Vec<Point> = r
        .candidates
        .iter()
        .enumerate()
        .filter_map(|(i, c)| {
            let k = facts::worst_case(c)?;
            let (lo, hi) = k.refusal_ci95_pct;
            let (lo, hi) = (finite(lo).max(0.0), finite(hi).max(0.0));
            Some(Point {
                mmrs: f64::from(c.topology.mmrs()),
                pct: finite(k.refusal_pct).max(0.0),
                ci: (lo.min(hi), lo.max(hi)),
                passed: c.passed,
                recommended: r.recommended == Some(i),
            })
        })
        .collect();
    let xs = points
        .iter()
        .map(|p| p.mmrs)
        .chain([rule, f64::from(a.erlang_mmrs)]);
    let x_lo = (xs.clone().fold(f64::MAX, f64::min) - 1.0).max(0.0);
    let x_hi = xs.fold(0.0, f64::max) + 1.0;

    // Keep the region around the target readable: at least 0..1 %, and a point far above that
    // is drawn as an arrow at the top rather than squashing everything else flat.
    let base = (target * 3.0).max(1.0);
    let highest = points.iter().map(|p| p.pct.max(p.ci.1)).fold(0.0, f64::max);
    let top = if highest <= base * 3.0 {
        highest.max(base) * 1.15
    } else {
        base
    };
    let (y_max, y_ticks, decimals) = nice_axis(top, 6);
    let curve = erlang_curve(r, x_lo, x_hi, y_max);

    let svg = svg(|root| {
        let mut ch = ChartBuilder::on(root)
            .caption(TITLE, (FONT, CAPTION_SIZE))
            .margin(16)
            .x_label_area_size(48)
            .y_label_area_size(76)
            .build_cartesian_2d(
                Ticked::new(x_lo..x_hi, integer_ticks(x_lo, x_hi, 20)),
                Ticked::new(0.0..y_max, y_ticks),
            )?;
        let fmt_x = |v: &f64| text::fixed(*v, 0);
        let fmt_y = |v: &f64| format!("{} %", text::fixed(*v, decimals));
        ch.configure_mesh()
            .x_desc("MMRs in the deployment")
            .y_desc("joins refused, worst case")
            .label_style((FONT, LABEL_SIZE))
            .axis_desc_style((FONT, DESC_SIZE))
            .x_label_formatter(&fmt_x)
            .y_label_formatter(&fmt_y)
            .bold_line_style(BLACK.mix(0.12))
            .light_line_style(TRANSPARENT)
            .draw()?;

        // The target and the rule of thumb, behind everything else; labels offset in pixels.
        ch.draw_series(std::iter::once(DashedPathElement::new(
            vec![(x_lo, target.min(y_max)), (x_hi, target.min(y_max))],
            9,
            5,
            TARGET.stroke_width(2),
        )))?;
        let (px, py) = ch.backend_coord(&(x_hi, target.min(y_max)));
        root.draw(&Text::new(
            format!("target {}", text::pct(target, 2)),
            (px - 4, py - 4),
            text_style(14, &TARGET, HPos::Right, VPos::Bottom),
        ))?;
        ch.draw_series(std::iter::once(DashedPathElement::new(
            vec![(rule, 0.0), (rule, y_max)],
            3,
            4,
            GUIDE.stroke_width(2),
        )))?;
        // Left of its line: a candidate at the rule of thumb labels its own point on the right.
        let (px, py) = ch.backend_coord(&(rule, y_max));
        root.draw(&Text::new(
            "rule of thumb",
            (px - 6, py + 4),
            text_style(14, &GUIDE, HPos::Right, VPos::Top),
        ))?;

        if curve.len() > 1 {
            let col = PALETTE[0];
            ch.draw_series(LineSeries::new(curve.iter().copied(), col.stroke_width(2)))?
                .label("Erlang B (every seat pooled)")
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 24, y)], col.stroke_width(2))
                });
        }

        // Confidence intervals: clipped at the top of the scale, capped only where they end.
        let cap = 0.06 * (x_hi - x_lo) / 4.0;
        for p in points.iter().filter(|p| p.ci.0 <= y_max) {
            let col = if p.passed { PASS } else { FAIL };
            let (x, lo, hi) = (p.mmrs, p.ci.0, p.ci.1.min(y_max));
            let mut bar = vec![
                PathElement::new(vec![(x, lo), (x, hi)], col.stroke_width(2)),
                PathElement::new(vec![(x - cap, lo), (x + cap, lo)], col.stroke_width(2)),
            ];
            if p.ci.1 <= y_max {
                bar.push(PathElement::new(
                    vec![(x - cap, hi), (x + cap, hi)],
                    col.stroke_width(2),
                ));
            }
            ch.draw_series(bar)?;
        }
        for (passed, label, col) in [
            (true, "met every target", PASS),
            (false, "missed a target", FAIL),
        ] {
            let group: Vec<&Point> = points.iter().filter(|p| p.passed == passed).collect();
            if group.is_empty() {
                continue;
            }
            let inside = group.iter().filter(|p| p.pct <= y_max);
            ch.draw_series(inside.map(|p| Circle::new((p.mmrs, p.pct), 6, col.filled())))?
                .label(label)
                .legend(move |(x, y)| Circle::new((x + 12, y), 6, col.filled()));
            for p in group.iter().filter(|p| p.pct > y_max) {
                let (px, py) = ch.backend_coord(&(p.mmrs, y_max));
                root.draw(&TriangleMarker::new((px, py + 9), 8, col.filled()))?;
                root.draw(&Text::new(
                    text::pct(p.pct, 2),
                    (px + 12, py + 4),
                    text_style(
                        14,
                        if passed { &PASS } else { &FAIL },
                        HPos::Left,
                        VPos::Top,
                    ),
                ))?;
            }
        }
        for p in points.iter().filter(|p| p.recommended && p.pct <= y_max) {
            let (px, py) = ch.backend_coord(&(p.mmrs, p.pct));
            root.draw(&Text::new(
                "recommended",
                (px + 10, py - 8),
                text_style(14, &PASS, HPos::Left, VPos::Bottom),
            ))?;
        }
        legend(&mut ch, SeriesLabelPosition::UpperRight, LABEL_SIZE)?;
        Ok(())
    });
    finish(FILE, TITLE, svg)
}

/// Erlang B's refusals in percent over `x_lo..=x_hi` MMRs, from where the curve drops under
/// `y_max` (it only falls as seats are added).
fn erlang_curve(r: &PlanReport, x_lo: f64, x_hi: f64, y_max: f64) -> Vec<(f64, f64)> {
    let offered = finite(r.analytic.erlang_offered);
    let capacity = f64::from(r.forecast.mmr_capacity);
    let steps = 200;
    let all: Vec<(f64, f64)> = (0..=steps)
        .map(|i| {
            let x = x_lo + (x_hi - x_lo) * f64::from(i) / f64::from(steps);
            let seats = (x * capacity).round().clamp(0.0, f64::from(u32::MAX)) as u32;
            (x, 100.0 * erlang::blocking(seats, offered))
        })
        .collect();
    let Some(first) = all.iter().position(|p| p.1 <= y_max) else {
        return Vec::new();
    };
    let mut out = Vec::with_capacity(all.len() - first + 1);
    if first > 0 {
        // Where the curve crosses the top of the chart.
        let (a, b) = (all[first - 1], all[first]);
        let t = if a.1 == b.1 {
            0.0
        } else {
            (a.1 - y_max) / (a.1 - b.1)
        };
        out.push((a.0 + (b.0 - a.0) * t, y_max));
    }
    out.extend_from_slice(&all[first..]);
    out
}
