//! `concurrency.svg`: participants in meetings against healthy seats, once a second, for each
//! case of zone 1 of the candidate shown in detail: one panel per case, on the same scales, so
//! cases that match until the failure do not hide each other.

use super::*;
use crate::model::Case;
use crate::render::facts::{self, finite};
use crate::render::text;

pub(super) const FILE: &str = "concurrency.svg";
const TITLE: &str = "Participants against seats over the peak";
const PANEL_HEIGHT: u32 = 300;

pub(super) fn caption(r: &PlanReport) -> String {
    let which = facts::detail(r).map_or(String::new(), |c| c.topology.describe());
    format!(
        "For {which}, zone 1, on the first seed, one panel per case: the solid line is the participants in meetings and the dashed line of the same colour the healthy seats; a thin vertical line marks when the failure was injected. Where the solid line reaches the dashed one, joins are refused."
    )
}

pub(super) fn chart(r: &PlanReport) -> Option<Chart> {
    let c = facts::detail(r)?;
    let cases: Vec<&Case> = c
        .cases
        .iter()
        .filter(|k| k.zone == 1 && !k.timeline.is_empty())
        .collect();
    if cases.is_empty() {
        return None;
    }
    let samples = || cases.iter().flat_map(|k| k.timeline.iter());
    let x_max = samples()
        .map(|s| finite(s.t_s))
        .fold(0.0, f64::max)
        .max(1.0);
    let y_top = samples()
        .map(|s| s.participants.max(s.capacity))
        .max()
        .unwrap_or(0);
    let (y_max, y_ticks, _) = nice_axis((f64::from(y_top) * 1.08).max(10.0), 6);
    let (x_ticks, x_decimals) = nice_ticks(0.0, x_max, 8);
    let cols = if cases.len() == 1 { 1 } else { 2 };
    let rows = cases.len().div_ceil(cols);
    let size = (WIDTH, 40 + PANEL_HEIGHT * rows as u32);
    let svg = svg_sized(size, |root| {
        let body = root.titled(TITLE, (FONT, CAPTION_SIZE))?;
        let panels = body.split_evenly((rows, cols));
        for (k, panel) in cases.iter().zip(panels.iter()) {
            let col = colour(facts::colour_slot(r, k));
            let mut ch = ChartBuilder::on(panel)
                .caption(case_label(k, false), (FONT, 17))
                .margin(10)
                .x_label_area_size(44)
                .y_label_area_size(64)
                .build_cartesian_2d(
                    Ticked::new(0.0..x_max, x_ticks.clone()),
                    Ticked::new(0.0..y_max, y_ticks.clone()),
                )?;
            let fmt_x = |v: &f64| text::fixed(*v, x_decimals);
            let fmt_y = |v: &f64| text::thousands(v.max(0.0).round() as u64);
            ch.configure_mesh()
                .x_desc("seconds into the run")
                .y_desc("participants")
                .label_style((FONT, 14))
                .axis_desc_style((FONT, 14))
                .x_label_formatter(&fmt_x)
                .y_label_formatter(&fmt_y)
                .bold_line_style(BLACK.mix(0.12))
                .light_line_style(TRANSPARENT)
                .draw()?;
            if let (Some(_), Some(at)) = (&k.failure, k.kill_at_s) {
                let at = finite(at);
                ch.draw_series(std::iter::once(PathElement::new(
                    vec![(at, 0.0), (at, y_max)],
                    GUIDE.mix(0.6).stroke_width(1),
                )))?;
            }
            ch.draw_series(DashedLineSeries::new(
                k.timeline
                    .iter()
                    .map(|s| (finite(s.t_s), f64::from(s.capacity))),
                8,
                5,
                col.stroke_width(2),
            ))?
            .label("healthy seats")
            .legend(move |(x, y)| {
                DashedPathElement::new(vec![(x, y), (x + 24, y)], 7, 4, col.stroke_width(2))
            });
            ch.draw_series(LineSeries::new(
                k.timeline
                    .iter()
                    .map(|s| (finite(s.t_s), f64::from(s.participants))),
                col.stroke_width(2),
            ))?
            .label("participants")
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], col.stroke_width(2)));
            legend(&mut ch, SeriesLabelPosition::LowerRight, 13)?;
        }
        Ok(())
    });
    finish(FILE, TITLE, svg)
}
