//! Renderers of a [`PlanReport`]: Markdown for a repository or a ticket, one self-contained HTML
//! page for a manager, JSON for tools, and the SVG charts both documents show.
//!
//! Markdown and HTML are printed from the same document ([`report`] builds it), so they say the
//! same thing. Everything is a pure function of the report: no clock, no randomness, no hash
//! map iteration, fixed decimals; the same report renders to the same bytes.

mod charts;
mod detail;
mod doc;
mod facts;
mod html;
mod markdown;
mod report;
mod text;

#[cfg(test)]
mod tests;

use crate::model::PlanReport;

/// One chart of a report, as an SVG document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chart {
    /// Where the Markdown report expects it, under `charts/`: e.g. "refusals.svg".
    pub file_name: &'static str,
    pub title: String,
    pub svg: String,
}

/// Every chart that applies to this report: `concurrency.svg`, `mmr-utilisation.svg`,
/// `refusals.svg`, `recovery.svg` (with failures measured) and `growth.svg` (with growth rows),
/// each when it has something to show.
pub fn charts(r: &PlanReport) -> Vec<Chart> {
    charts::all(r)
}

/// The report as Markdown; charts are linked as `![title](charts/<file_name>)`.
pub fn markdown(r: &PlanReport) -> String {
    let charts = charts(r);
    markdown::render(&report::document(r, &charts))
}

/// The report as one self-contained HTML page: the same content as [`markdown`], every chart
/// inline as `<svg>`, inline CSS, no scripts and no external assets.
pub fn html(r: &PlanReport) -> String {
    let charts = charts(r);
    let doc = report::document(r, &charts);
    html::render(
        &format!("Capacity plan: {}", r.forecast.name),
        &doc,
        &charts,
    )
}

/// The report as pretty-printed JSON (the model, serialised).
pub fn json(r: &PlanReport) -> String {
    let mut out = serde_json::to_string_pretty(r).expect("a plan report always serialises");
    out.push('\n');
    out
}
