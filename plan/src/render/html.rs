//! A [`Block`] list as one self-contained HTML page: inline CSS, every chart inline as SVG, no
//! scripts and no external assets.

use crate::render::doc::{Align, Block, Inline, Table, Tone};
use crate::render::Chart;

const STYLE: &str = "\
body{font-family:system-ui,-apple-system,\"Segoe UI\",Roboto,Helvetica,Arial,sans-serif;\
max-width:76rem;margin:2rem auto;padding:0 1rem;line-height:1.5;color:#1d1d1d;background:#fff}
h1{font-size:1.7rem;margin-bottom:.5rem}
h2{font-size:1.3rem;margin-top:2.2rem;border-bottom:1px solid #ddd;padding-bottom:.2rem}
h3{font-size:1.05rem;margin-top:1.6rem}
.scroll{overflow-x:auto}
table{border-collapse:collapse;margin:.8rem 0;font-size:.9rem}
th,td{border:1px solid #d0d0d0;padding:.3rem .6rem;text-align:left;vertical-align:top}
th{background:#f2f2f2}
th.num,td.num{text-align:right;font-variant-numeric:tabular-nums}
th.wide,td.wide{min-width:16rem}
td.pass{color:#14602a;background:#e8f5eb;min-width:12rem}
td.fail{color:#9b1418;background:#fbe9e9;min-width:16rem}
code{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.88em;background:#f4f4f4;padding:0 .2em}
pre{background:#f4f4f4;padding:.6rem .8rem;overflow-x:auto}
pre code{background:none;padding:0}
figure{margin:1.5rem 0}
figure svg{display:block;max-width:100%;height:auto;border:1px solid #e4e4e4}
figcaption{font-size:.9rem;color:#444;margin-top:.3rem}
";

pub(crate) fn render(title: &str, doc: &[Block], charts: &[Chart]) -> String {
    let mut out = String::new();
    out.push_str("<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    out.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    out.push_str(&format!("<title>{}</title>\n", escape(title)));
    out.push_str(&format!("<style>\n{STYLE}</style>\n</head>\n<body>\n"));
    for block in doc {
        match block {
            Block::Heading(level, text) => {
                let level = (*level).clamp(1, 6);
                out.push_str(&format!("<h{level}>{}</h{level}>\n", escape(text)));
            }
            Block::Para(line) => out.push_str(&format!("<p>{}</p>\n", inline(line))),
            Block::List(items) => {
                out.push_str("<ul>\n");
                for item in items {
                    out.push_str(&format!("<li>{}</li>\n", inline(item)));
                }
                out.push_str("</ul>\n");
            }
            Block::Table(table) => out.push_str(&render_table(table)),
            Block::Command(cmd) => {
                out.push_str(&format!(
                    "<pre><code>{}</code></pre>\n",
                    escape(cmd.trim_end())
                ));
            }
            Block::Figure {
                file,
                title,
                caption,
            } => {
                let Some(chart) = charts.iter().find(|c| c.file_name == *file) else {
                    continue;
                };
                let id = file.trim_end_matches(".svg");
                out.push_str(&format!(
                    "<figure id=\"chart-{}\">\n{}\n<figcaption><strong>{}.</strong> {}</figcaption>\n</figure>\n",
                    escape(id),
                    inline_svg(&chart.svg),
                    escape(title),
                    escape(caption)
                ));
            }
        }
    }
    out.push_str("</body>\n</html>\n");
    out
}

fn render_table(table: &Table) -> String {
    let class = |a: Align| match a {
        Align::Left => "",
        Align::Right => " class=\"num\"",
        Align::Wide => " class=\"wide\"",
    };
    let mut out = String::from("<div class=\"scroll\"><table>\n<thead><tr>");
    for (h, a) in &table.head {
        out.push_str(&format!("<th{}>{}</th>", class(*a), escape(h)));
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    for row in &table.rows {
        out.push_str("<tr>");
        for (i, (_, a)) in table.head.iter().enumerate() {
            let (text, tone) = row
                .get(i)
                .map_or(("", Tone::Plain), |c| (c.text.as_str(), c.tone));
            let attr = match (tone, a) {
                (Tone::Pass, _) => " class=\"pass\"",
                (Tone::Fail, _) => " class=\"fail\"",
                (Tone::Plain, a) => class(*a),
            };
            out.push_str(&format!("<td{attr}>{}</td>", escape(text)));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody>\n</table></div>\n");
    out
}

fn inline(line: &[Inline]) -> String {
    line.iter()
        .map(|part| match part {
            Inline::Text(s) => escape(s),
            Inline::Strong(s) => format!("<strong>{}</strong>", escape(s)),
            Inline::Code(s) => format!("<code>{}</code>", escape(s)),
        })
        .collect()
}

/// An SVG document as an element to inline: without any XML declaration or doctype.
fn inline_svg(svg: &str) -> String {
    let mut s = svg.trim();
    loop {
        if let Some(rest) = s.strip_prefix("<?") {
            s = rest
                .split_once("?>")
                .map_or("", |(_, after)| after)
                .trim_start();
        } else if s.starts_with("<!DOCTYPE") || s.starts_with("<!doctype") {
            s = s
                .split_once('>')
                .map_or("", |(_, after)| after)
                .trim_start();
        } else {
            break;
        }
    }
    s.trim_end().to_string()
}

/// Text as HTML shows it literally.
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_declarations() {
        let svg = "<?xml version=\"1.0\"?>\n<svg xmlns=\"x\"></svg>\n";
        assert_eq!(inline_svg(svg), "<svg xmlns=\"x\"></svg>");
        assert_eq!(escape("a<b & \"c\">"), "a&lt;b &amp; &quot;c&quot;&gt;");
    }
}
