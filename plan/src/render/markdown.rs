//! A [`Block`] list as GitHub-flavoured Markdown. Charts are linked as `charts/<file>`.

use crate::render::doc::{Align, Block, Inline, Table};

pub(crate) fn render(doc: &[Block]) -> String {
    let mut out = String::new();
    for block in doc {
        if !out.is_empty() {
            out.push('\n');
        }
        match block {
            Block::Heading(level, text) => {
                out.push_str(&"#".repeat(usize::from((*level).clamp(1, 6))));
                out.push(' ');
                out.push_str(&escape(text));
                out.push('\n');
            }
            Block::Para(line) => {
                out.push_str(&inline(line));
                out.push('\n');
            }
            Block::List(items) => {
                for item in items {
                    out.push_str("- ");
                    out.push_str(&inline(item));
                    out.push('\n');
                }
            }
            Block::Table(table) => out.push_str(&render_table(table)),
            Block::Command(cmd) => {
                let fence = "`".repeat(longest_run(cmd, '`').max(2) + 1);
                out.push_str(&format!("{fence}sh\n{}\n{fence}\n", cmd.trim_end()));
            }
            Block::Figure {
                file,
                title,
                caption,
            } => {
                out.push_str(&format!(
                    "![{}](charts/{file})\n\n{}\n",
                    escape(title),
                    escape(caption)
                ));
            }
        }
    }
    out
}

fn render_table(table: &Table) -> String {
    let mut out = String::new();
    let heads: Vec<String> = table.head.iter().map(|(h, _)| escape(h)).collect();
    out.push_str(&format!("| {} |\n", heads.join(" | ")));
    let rule: Vec<&str> = table
        .head
        .iter()
        .map(|(_, a)| match a {
            Align::Left | Align::Wide => "---",
            Align::Right => "---:",
        })
        .collect();
    out.push_str(&format!("|{}|\n", rule.join("|")));
    for row in &table.rows {
        let cells: Vec<String> = (0..table.head.len())
            .map(|i| row.get(i).map_or(String::new(), |c| escape(&c.text)))
            .collect();
        out.push_str(&format!("| {} |\n", cells.join(" | ")));
    }
    out
}

fn inline(line: &[Inline]) -> String {
    line.iter()
        .map(|part| match part {
            Inline::Text(s) => escape(s),
            Inline::Strong(s) => format!("**{}**", escape(s)),
            Inline::Code(s) => code_span(s),
        })
        .collect()
}

/// A code span that holds any text: a fence longer than any run of backticks inside, and `|`
/// escaped (GitHub tables split on it even inside code).
fn code_span(s: &str) -> String {
    let s = one_line(s).replace('|', "\\|");
    let fence = "`".repeat(longest_run(&s, '`') + 1);
    let pad = if s.starts_with('`') || s.ends_with('`') {
        " "
    } else {
        ""
    };
    format!("{fence}{pad}{s}{pad}{fence}")
}

fn longest_run(s: &str, ch: char) -> usize {
    let (mut best, mut run) = (0, 0);
    for c in s.chars() {
        run = if c == ch { run + 1 } else { 0 };
        best = best.max(run);
    }
    best
}

/// Text as Markdown shows it literally: on one line, and with the characters that would start
/// emphasis, links, code, HTML or a table cell escaped.
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for (i, c) in one_line(s).chars().enumerate() {
        let special = matches!(c, '\\' | '`' | '*' | '[' | ']' | '<' | '|')
            || (i == 0 && matches!(c, '#' | '>' | '-' | '+'));
        if special {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn one_line(s: &str) -> String {
    s.split(['\n', '\r', '\t'])
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes() {
        assert_eq!(escape("a|b <c> *d*\ne"), "a\\|b \\<c> \\*d\\* e");
        assert_eq!(escape("# x > y"), "\\# x > y");
        assert_eq!(code_span("x|y"), "`x\\|y`");
        assert_eq!(code_span("a`b"), "``a`b``");
    }
}
