//! Results: one row per figure, printed as a table or as JSON. Every row carries the baseline
//! measured in the same run, because on a shared machine only the ratio means much.

use serde_json::{json, Value};

#[derive(Debug, Clone)]
pub struct Row {
    /// `mmr` or `join`.
    pub bench: &'static str,
    /// What was measured, e.g. "5 meetings of 2".
    pub case: String,
    pub figure: &'static str,
    pub unit: &'static str,
    pub measured: Option<f64>,
    pub baseline: Option<f64>,
    /// What the baseline is, e.g. "bare UDP forwarder".
    pub baseline_name: &'static str,
    /// A second baseline measured in the same run, where a benchmark has one (the MMR's: a bare
    /// forwarder that batches its system calls as the MMR does).
    pub second: Option<Baseline>,
}

#[derive(Debug, Clone)]
pub struct Baseline {
    pub name: &'static str,
    pub value: Option<f64>,
}

impl Row {
    /// `measured / baseline`: below 1 the system is slower (for rates) or faster (for
    /// latencies and costs) than its baseline.
    pub fn ratio(&self) -> Option<f64> {
        divide(self.measured, self.baseline)
    }

    /// `measured / second baseline`.
    pub fn ratio2(&self) -> Option<f64> {
        divide(self.measured, self.second.as_ref()?.value)
    }

    /// `second baseline / baseline`: what the second baseline changes over the first.
    pub fn second_over_first(&self) -> Option<f64> {
        divide(self.second.as_ref()?.value, self.baseline)
    }
}

fn divide(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b != 0.0 => Some(a / b),
        _ => None,
    }
}

/// Facts about the run that help judge the figures: the machine and how busy it was.
#[derive(Debug, Clone)]
pub struct RunInfo {
    pub cores: usize,
    pub load_before: Option<String>,
    pub load_after: Option<String>,
    pub settings: Value,
    pub notes: Vec<String>,
}

pub fn load_average() -> Option<String> {
    let s = std::fs::read_to_string("/proc/loadavg").ok()?;
    Some(s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
}

fn number(v: Option<f64>) -> String {
    let Some(v) = v else { return "n/a".into() };
    if v.abs() >= 1000.0 {
        // Thousands separators: rates run to the hundreds of thousands.
        let digits = format!("{:.0}", v.abs());
        let mut out = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 {
                out.push(',');
            }
            out.push(c);
        }
        if v < 0.0 {
            out.insert(0, '-');
        }
        out
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

pub fn table(info: &RunInfo, rows: &[Row]) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "machine: {} cores; load average before {} after {}\n",
        info.cores,
        info.load_before.as_deref().unwrap_or("n/a"),
        info.load_after.as_deref().unwrap_or("n/a")
    ));
    let figure_w = rows
        .iter()
        .map(|r| r.figure.len() + r.unit.len() + 3)
        .max()
        .unwrap_or(10)
        .max(10);
    let ratio = |x: Option<f64>| x.map(|x| format!("{x:.2}")).unwrap_or_else(|| "n/a".into());
    let mut last_case = None;
    for r in rows {
        if last_case != Some((&r.bench, &r.case)) {
            match &r.second {
                None => {
                    out.push_str(&format!(
                        "\n{} — {}  (baseline: {})\n",
                        r.bench, r.case, r.baseline_name
                    ));
                    out.push_str(&format!(
                        "  {:<figure_w$} {:>12} {:>12} {:>7}\n",
                        "figure", "measured", "baseline", "ratio"
                    ));
                }
                Some(second) => {
                    out.push_str(&format!(
                        "\n{} — {}\n  (baseline: {}; baseline 2: {})\n",
                        r.bench, r.case, r.baseline_name, second.name
                    ));
                    out.push_str(&format!(
                        "  {:<figure_w$} {:>12} {:>12} {:>12} {:>7} {:>7} {:>7}\n",
                        "figure", "measured", "baseline", "baseline 2", "ratio", "ratio 2", "2 / 1"
                    ));
                }
            }
            last_case = Some((&r.bench, &r.case));
        }
        let label = format!("{} ({})", r.figure, r.unit);
        match &r.second {
            None => out.push_str(&format!(
                "  {label:<figure_w$} {:>12} {:>12} {:>7}\n",
                number(r.measured),
                number(r.baseline),
                ratio(r.ratio())
            )),
            Some(second) => out.push_str(&format!(
                "  {label:<figure_w$} {:>12} {:>12} {:>12} {:>7} {:>7} {:>7}\n",
                number(r.measured),
                number(r.baseline),
                number(second.value),
                ratio(r.ratio()),
                ratio(r.ratio2()),
                ratio(r.second_over_first())
            )),
        }
    }
    for n in &info.notes {
        out.push_str(&format!("\nnote: {n}"));
    }
    if !info.notes.is_empty() {
        out.push('\n');
    }
    out
}

pub fn json(info: &RunInfo, rows: &[Row]) -> Value {
    json!({
        "machine": { "cores": info.cores, "load_average_before": info.load_before, "load_average_after": info.load_after },
        "settings": info.settings,
        "results": rows.iter().map(|r| {
            let mut row = json!({
                "bench": r.bench,
                "case": r.case,
                "figure": r.figure,
                "unit": r.unit,
                "measured": r.measured,
                "baseline": r.baseline,
                "baseline_name": r.baseline_name,
                "ratio": r.ratio(),
            });
            if let Some(second) = &r.second {
                row["baseline2"] = json!(second.value);
                row["baseline2_name"] = json!(second.name);
                row["ratio2"] = json!(r.ratio2());
                row["baseline2_over_baseline"] = json!(r.second_over_first());
            }
            row
        }).collect::<Vec<_>>(),
        "notes": info.notes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_readable() {
        assert_eq!(number(Some(1_234_567.4)), "1,234,567");
        assert_eq!(number(Some(123_456.0)), "123,456");
        assert_eq!(number(Some(42.26)), "42.3");
        assert_eq!(number(Some(0.123)), "0.12");
        assert_eq!(number(None), "n/a");
    }
}
