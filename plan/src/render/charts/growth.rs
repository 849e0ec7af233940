//! `growth.svg`: controller VMs and MMR VMs per quarter as the peak grows, sized analytically.

use super::*;
use crate::render::text;

pub(super) const FILE: &str = "growth.svg";
const TITLE: &str = "Topology per quarter";

pub(super) fn caption(_: &PlanReport) -> String {
    "Controller VMs and MMR VMs in the whole deployment for each quarter's forecast peak (under each quarter, its peak participants); sized by the same rules as the current peak, not simulated.".into()
}

pub(super) fn chart(r: &PlanReport) -> Option<Chart> {
    if r.growth.is_empty() {
        return None;
    }
    let rows = &r.growth;
    let n = rows.len() as f64;
    let top = rows
        .iter()
        .map(|q| q.topology.controller_vms().max(q.topology.mmr_vm_count()))
        .max()
        .unwrap_or(0);
    let y_max = (f64::from(top) * 1.3).ceil().max(4.0);
    let labels: Vec<String> = rows
        .iter()
        .map(|q| {
            format!(
                "Q{}: {}",
                q.quarter,
                text::thousands(u64::from(q.peak_participants))
            )
        })
        .collect();
    let series = [
        ("controller VMs", PALETTE[3], 0.0),
        ("MMR VMs", PALETTE[0], 1.0),
    ];
    let svg =
        svg(|root| {
            let centres: Vec<f64> = (0..rows.len()).map(|i| i as f64 + 0.5).collect();
            let y_ticks = integer_ticks(0.0, y_max, 10);
            let mut ch = ChartBuilder::on(root)
                .caption(TITLE, (FONT, CAPTION_SIZE))
                .margin(16)
                .x_label_area_size(52)
                .y_label_area_size(64)
                .build_cartesian_2d(
                    Ticked::new(0.0..n, centres),
                    Ticked::new(0.0..y_max, y_ticks),
                )?;
            let fmt_x = |v: &f64| {
                labels
                    .get(v.floor().max(0.0) as usize)
                    .cloned()
                    .unwrap_or_default()
            };
            let fmt_y = |v: &f64| text::fixed(*v, 0);
            ch.configure_mesh()
                .x_desc("quarter: peak participants")
                .y_desc("VMs")
                .label_style((FONT, LABEL_SIZE))
                .axis_desc_style((FONT, DESC_SIZE))
                .x_label_formatter(&fmt_x)
                .y_label_formatter(&fmt_y)
                .disable_x_mesh()
                .bold_line_style(BLACK.mix(0.12))
                .light_line_style(TRANSPARENT)
                .draw()?;
            for (label, col, slot) in series {
                let value = |i: usize| {
                    let t = rows[i].topology;
                    f64::from(if slot == 0.0 {
                        t.controller_vms()
                    } else {
                        t.mmr_vm_count()
                    })
                };
                let x0 = |i: usize| i as f64 + 0.15 + slot * 0.35;
                ch.draw_series((0..rows.len()).map(|i| {
                    Rectangle::new([(x0(i), 0.0), (x0(i) + 0.33, value(i))], col.filled())
                }))?
                .label(label)
                .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 14, y + 6)], col.filled()));
                ch.draw_series((0..rows.len()).map(|i| {
                    Text::new(
                        text::fixed(value(i), 0),
                        (x0(i) + 0.165, value(i)),
                        text_style(14, &BLACK, HPos::Center, VPos::Bottom),
                    )
                }))?;
            }
            legend(&mut ch, SeriesLabelPosition::UpperLeft, LABEL_SIZE)?;
            Ok(())
        });
    finish(FILE, TITLE, svg)
}
