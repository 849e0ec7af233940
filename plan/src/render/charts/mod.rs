//! The report's charts, drawn with plotters' SVG backend. No font files are read (plotters
//! estimates text size itself), nothing iterates a hash map and numbers print with fixed
//! decimals, so the same report always draws the same bytes.

mod concurrency;
mod growth;
mod recovery;
mod refusals;
mod utilisation;

use crate::model::PlanReport;
use crate::render::Chart;
use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint};
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// Every chart that applies to the report, in the order the report shows them.
pub(crate) fn all(r: &PlanReport) -> Vec<Chart> {
    [
        concurrency::chart(r),
        utilisation::chart(r),
        refusals::chart(r),
        recovery::chart(r),
        growth::chart(r),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// One sentence on how to read a chart.
pub(crate) fn caption(r: &PlanReport, file: &str) -> String {
    match file {
        concurrency::FILE => concurrency::caption(r),
        utilisation::FILE => utilisation::caption(r),
        refusals::FILE => refusals::caption(r),
        recovery::FILE => recovery::caption(r),
        growth::FILE => growth::caption(r),
        _ => String::new(),
    }
}

type DrawResult = Result<(), DrawingAreaErrorKind<std::io::Error>>;
type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;

const WIDTH: u32 = 900;
const HEIGHT: u32 = 460;
const FONT: &str = "sans-serif";
const CAPTION_SIZE: u32 = 22;
const LABEL_SIZE: u32 = 15;
const DESC_SIZE: u32 = 16;

/// Colours that stay apart for colour-blind readers (Okabe–Ito, then greys).
const PALETTE: [RGBColor; 7] = [
    RGBColor(0, 114, 178),
    RGBColor(213, 94, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(86, 180, 233),
    RGBColor(230, 159, 0),
    RGBColor(120, 120, 120),
];
const PASS: RGBColor = RGBColor(0, 140, 70);
const FAIL: RGBColor = RGBColor(200, 30, 30);
const TARGET: RGBColor = RGBColor(170, 20, 20);
const GUIDE: RGBColor = RGBColor(90, 90, 90);

/// A case as a chart labels it: short, so labels side by side do not collide.
fn case_label(k: &crate::model::Case, multi_zone: bool) -> String {
    let what = match k.failure.as_deref() {
        Some("controller_and_mmr_vm") => "controller + MMR VM killed".to_string(),
        other => crate::render::text::failure(other),
    };
    if multi_zone {
        format!("zone {}: {what}", k.zone)
    } else {
        what
    }
}

fn colour(slot: usize) -> RGBColor {
    PALETTE[slot % PALETTE.len()]
}

/// Draws a chart of the usual size into an SVG string; `None` if plotters reports an error.
fn svg(draw: impl FnOnce(&Area) -> DrawResult) -> Option<String> {
    svg_sized((WIDTH, HEIGHT), draw)
}

fn svg_sized(size: (u32, u32), draw: impl FnOnce(&Area) -> DrawResult) -> Option<String> {
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, size).into_drawing_area();
        root.fill(&WHITE).ok()?;
        draw(&root).ok()?;
        root.present().ok()?;
    }
    Some(out)
}

/// The legend every chart draws: at `at`, its labels at `size` points, on a light box.
fn legend<'a, CT: CoordTranslate>(
    ch: &mut ChartContext<'a, SVGBackend<'a>, CT>,
    at: SeriesLabelPosition,
    size: u32,
) -> DrawResult {
    ch.configure_series_labels()
        .position(at)
        .label_font((FONT, size))
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK.mix(0.3))
        .draw()
}

fn finish(file_name: &'static str, title: &str, svg: Option<String>) -> Option<Chart> {
    svg.map(|svg| Chart {
        file_name,
        title: title.to_string(),
        svg,
    })
}

fn text_style(size: u32, colour: &'static RGBColor, h: HPos, v: VPos) -> TextStyle<'static> {
    TextStyle::from((FONT, size).into_font())
        .color(colour)
        .pos(Pos::new(h, v))
}

/// Tick positions at whole numbers from `lo` to `hi`, at most about `max` of them.
fn integer_ticks(lo: f64, hi: f64, max: usize) -> Vec<f64> {
    let (lo, hi) = (lo.ceil() as i64, hi.floor() as i64);
    if hi < lo {
        return Vec::new();
    }
    let n = (hi - lo + 1) as usize;
    let step = n.div_ceil(max.max(1)).max(1);
    (lo..=hi).step_by(step).map(|v| v as f64).collect()
}

/// Round tick positions (steps of 1, 2 or 5 times a power of ten) from `lo` to `hi`, at most
/// `max` of them, and the decimals that print them.
fn nice_ticks(lo: f64, hi: f64, max: usize) -> (Vec<f64>, usize) {
    let span = (hi - lo).max(1e-9);
    let max = max.max(2) as f64;
    let (mut magnitude, mut decimals) = (0.001, 3usize);
    let step = loop {
        if let Some(m) = [1.0, 2.0, 5.0]
            .into_iter()
            .find(|m| span / (m * magnitude) <= max)
        {
            break m * magnitude;
        }
        magnitude *= 10.0;
        decimals = decimals.saturating_sub(1);
    };
    let first = (lo / step - 1e-9).ceil() as i64;
    let last = (hi / step + 1e-9).floor() as i64;
    ((first..=last).map(|i| i as f64 * step).collect(), decimals)
}

/// An axis from 0 that ends on a round tick at or above `top`: its end, ticks and decimals.
fn nice_axis(top: f64, max: usize) -> (f64, Vec<f64>, usize) {
    let (ticks, decimals) = nice_ticks(0.0, top, max);
    let step = match ticks.as_slice() {
        [a, b, ..] => b - a,
        _ => top.max(1e-9),
    };
    let end = (top / step - 1e-9).ceil().max(1.0) * step;
    let (ticks, _) = nice_ticks(0.0, end, max + 1);
    (end, ticks, decimals)
}

/// A linear f64 axis with ticks exactly where given (plotters' own `with_key_points` on f64
/// cannot take a label formatter).
struct Ticked {
    inner: RangedCoordf64,
    ticks: Vec<f64>,
}

impl Ticked {
    fn new(range: std::ops::Range<f64>, ticks: Vec<f64>) -> Self {
        Ticked {
            inner: range.into(),
            ticks,
        }
    }
}

impl Ranged for Ticked {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        self.inner.map(value, limit)
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        if hint.weight().allow_light_points() {
            Vec::new()
        } else {
            self.ticks.clone()
        }
    }

    fn range(&self) -> std::ops::Range<f64> {
        self.inner.range()
    }
}
