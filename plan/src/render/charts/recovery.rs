//! `recovery.svg`: for each failure case of the candidate shown in detail, the cumulative
//! distribution of failover recovery times.

use super::*;
use crate::model::Case;
use crate::render::facts;
use crate::render::text;

pub(super) const FILE: &str = "recovery.svg";
const TITLE: &str = "Failover recovery";
/// Most points per curve: longer sample lists are drawn at evenly spaced quantiles.
const MAX_POINTS: usize = 400;

pub(super) fn caption(r: &PlanReport) -> String {
    let which = facts::detail(r).map_or(String::new(), |c| c.topology.describe());
    format!(
        "For {which}, each line is one failure: the share of the participants who had to rejoin (up) whose media flowed again within so many seconds of the failure (across). Further left and steeper is faster."
    )
}

fn cases(r: &PlanReport) -> Vec<&Case> {
    facts::detail(r).map_or(Vec::new(), |c| {
        c.cases
            .iter()
            .filter(|k| k.failure.is_some() && !k.recovery_samples_ms.is_empty())
            .collect()
    })
}

/// The empirical distribution as a step line, in seconds and fractions.
fn cdf(samples: &[u64]) -> Vec<(f64, f64)> {
    let mut sorted = samples.to_vec();
    sorted.sort_unstable();
    let n = sorted.len();
    let picks: Vec<usize> = if n <= MAX_POINTS {
        (0..n).collect()
    } else {
        (1..=MAX_POINTS)
            .map(|i| (i * n).div_ceil(MAX_POINTS) - 1)
            .collect()
    };
    let mut out = Vec::with_capacity(picks.len() * 2 + 1);
    let mut prev = 0.0;
    out.push((sorted[0] as f64 / 1000.0, 0.0));
    for i in picks {
        let x = sorted[i] as f64 / 1000.0;
        let y = (i + 1) as f64 / n as f64;
        out.push((x, prev));
        out.push((x, y));
        prev = y;
    }
    out
}

pub(super) fn chart(r: &PlanReport) -> Option<Chart> {
    let cases = cases(r);
    if cases.is_empty() {
        return None;
    }
    let multi = facts::detail(r).is_some_and(facts::multi_zone);
    let x_top = cases
        .iter()
        .flat_map(|k| k.recovery_samples_ms.iter())
        .max()
        .copied()
        .unwrap_or(0) as f64
        / 1000.0;
    let (x_max, x_ticks, decimals) = nice_axis((x_top * 1.03).max(1.0), 10);
    let svg = svg(|root| {
        let mut ch = ChartBuilder::on(root)
            .caption(TITLE, (FONT, CAPTION_SIZE))
            .margin(16)
            .x_label_area_size(48)
            .y_label_area_size(76)
            .build_cartesian_2d(
                Ticked::new(0.0..x_max, x_ticks),
                Ticked::new(0.0..1.0, (0..=10).map(|i| f64::from(i) / 10.0).collect()),
            )?;
        let fmt_x = |v: &f64| text::fixed(*v, decimals);
        let fmt_y = |v: &f64| format!("{} %", text::fixed(*v * 100.0, 0));
        ch.configure_mesh()
            .x_desc("seconds from the failure until media flowed again")
            .y_desc("participants who had to rejoin")
            .label_style((FONT, LABEL_SIZE))
            .axis_desc_style((FONT, DESC_SIZE))
            .x_label_formatter(&fmt_x)
            .y_label_formatter(&fmt_y)
            .bold_line_style(BLACK.mix(0.12))
            .light_line_style(TRANSPARENT)
            .draw()?;
        for k in &cases {
            let col = colour(facts::colour_slot(r, k));
            let n = k.recovery_ms.n.max(k.recovery_samples_ms.len() as u64);
            ch.draw_series(LineSeries::new(
                cdf(&k.recovery_samples_ms),
                col.stroke_width(2),
            ))?
            .label(format!(
                "{} ({} rejoins)",
                case_label(k, multi),
                text::thousands(n)
            ))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], col.stroke_width(2)));
        }
        legend(&mut ch, SeriesLabelPosition::LowerRight, LABEL_SIZE)?;
        Ok(())
    });
    finish(FILE, TITLE, svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cdf_steps_to_one() {
        let c = cdf(&[3000, 1000, 2000]);
        assert_eq!(c.first(), Some(&(1.0, 0.0)));
        assert_eq!(c.last(), Some(&(3.0, 1.0)));
        let many: Vec<u64> = (0..10_000).collect();
        let c = cdf(&many);
        assert!(c.len() <= 2 * MAX_POINTS + 1);
        assert_eq!(c.last().map(|p| p.1), Some(1.0));
    }
}
