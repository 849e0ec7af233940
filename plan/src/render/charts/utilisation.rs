//! `mmr-utilisation.svg`: each MMR's busiest moment as a share of its seats, a bar per MMR,
//! grouped by case, against the headroom target.

use super::*;
use crate::model::{Candidate, Case, Peak};
use crate::render::facts::{self, finite};
use crate::render::text;

pub(super) const FILE: &str = "mmr-utilisation.svg";
const TITLE: &str = "Busiest moment on each MMR";
/// More bars than this and only zone 1 is drawn (the tables list every zone).
const MAX_BARS: usize = 48;

/// The cases drawn, and whether they are every zone's.
fn cases(c: &Candidate) -> (Vec<&Case>, bool) {
    let all: Vec<&Case> = c.cases.iter().filter(|k| !k.mmr_peaks.is_empty()).collect();
    let bars: usize = all.iter().map(|k| k.mmr_peaks.len()).sum();
    if bars <= MAX_BARS || !facts::multi_zone(c) {
        (all, true)
    } else {
        (all.into_iter().filter(|k| k.zone == 1).collect(), false)
    }
}

pub(super) fn caption(r: &PlanReport) -> String {
    let Some(c) = facts::detail(r) else {
        return String::new();
    };
    let zones = if cases(c).1 {
        ""
    } else {
        ", zone 1 only (the tables above give every zone)"
    };
    format!(
        "For {}{zones}: each bar is one MMR's most participants at once (worst seed) as a share of its seats, grouped by case; a bar above the dashed line breaks the headroom target of {}.",
        c.topology.describe(),
        text::pct(r.forecast.max_utilisation_pct, 0)
    )
}

fn share(p: &Peak) -> f64 {
    if p.limit == 0 {
        0.0
    } else {
        f64::from(p.peak) / f64::from(p.limit) * 100.0
    }
}

pub(super) fn chart(r: &PlanReport) -> Option<Chart> {
    let c = facts::detail(r)?;
    let (groups, _) = cases(c);
    if groups.is_empty() {
        return None;
    }
    let multi = facts::multi_zone(c);
    let target = finite(r.forecast.max_utilisation_pct);
    let top = groups
        .iter()
        .flat_map(|k| k.mmr_peaks.iter().map(share))
        .fold(target, f64::max)
        .max(100.0);
    // Room above the tallest bar for the legend.
    let y_max = (top * 1.3 / 10.0).ceil() * 10.0;
    let n = groups.len() as f64;
    let longest = groups
        .iter()
        .flat_map(|k| k.mmr_peaks.iter().map(|p| p.name.chars().count()))
        .max()
        .unwrap_or(0)
        .min(24);
    let svg = svg(|root| {
        let names_px = (longest * 7) as u32 + 8;
        let mut ch = ChartBuilder::on(root)
            .caption(TITLE, (FONT, CAPTION_SIZE))
            .margin(16)
            .x_label_area_size(names_px + 30)
            .y_label_area_size(76)
            .build_cartesian_2d(
                Ticked::new(0.0..n, Vec::new()),
                // Ticks up to the tallest bar or 100 %, not into the legend's room above.
                Ticked::new(0.0..y_max, nice_ticks(0.0, top, 6).0),
            )?;
        let fmt_y = |v: &f64| format!("{} %", text::fixed(*v, 0));
        ch.configure_mesh()
            .y_desc("peak participants, % of the MMR's seats")
            .label_style((FONT, LABEL_SIZE))
            .axis_desc_style((FONT, DESC_SIZE))
            .y_label_formatter(&fmt_y)
            .bold_line_style(BLACK.mix(0.12))
            .light_line_style(TRANSPARENT)
            .draw()?;
        let mut bar_px = f64::MAX;
        for (g, k) in groups.iter().enumerate() {
            let col = colour(facts::colour_slot(r, k));
            let w = 0.8 / k.mmr_peaks.len() as f64;
            let bars = k.mmr_peaks.iter().enumerate().map(|(j, p)| {
                let x0 = g as f64 + 0.1 + j as f64 * w + 0.1 * w;
                Rectangle::new([(x0, 0.0), (x0 + 0.8 * w, share(p))], col.filled())
            });
            ch.draw_series(bars)?;
            let (a, _) = ch.backend_coord(&(0.0, 0.0));
            let (b, _) = ch.backend_coord(&(0.8 * w, 0.0));
            bar_px = bar_px.min(f64::from(b - a));
        }
        ch.draw_series(std::iter::once(DashedPathElement::new(
            vec![(0.0, target), (n, target)],
            9,
            5,
            TARGET.stroke_width(2),
        )))?
        .label(format!("headroom target ({})", text::pct(target, 0)))
        .legend(|(x, y)| {
            DashedPathElement::new(vec![(x, y), (x + 24, y)], 7, 4, TARGET.stroke_width(2))
        });
        legend(&mut ch, SeriesLabelPosition::UpperRight, LABEL_SIZE)?;
        // Under the axis: each MMR's name (when the bars are wide enough), then the case.
        let name_style =
            text_style(13, &GUIDE, HPos::Left, VPos::Center).transform(FontTransform::Rotate90);
        let group_style = text_style(LABEL_SIZE, &BLACK, HPos::Center, VPos::Top);
        for (g, k) in groups.iter().enumerate() {
            let w = 0.8 / k.mmr_peaks.len() as f64;
            if bar_px >= 11.0 {
                for (j, p) in k.mmr_peaks.iter().enumerate() {
                    let xc = g as f64 + 0.1 + (j as f64 + 0.5) * w;
                    let (px, py) = ch.backend_coord(&(xc, 0.0));
                    let name: String = p.name.chars().take(24).collect();
                    root.draw(&Text::new(name, (px, py + 5), name_style.clone()))?;
                }
            }
            let (px, py) = ch.backend_coord(&(g as f64 + 0.5, 0.0));
            let y = if bar_px >= 11.0 {
                py + names_px as i32 + 4
            } else {
                py + 8
            };
            root.draw(&Text::new(
                case_label(k, multi),
                (px, y),
                group_style.clone(),
            ))?;
        }
        Ok(())
    });
    finish(FILE, TITLE, svg)
}
