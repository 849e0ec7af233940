//! Text lines: tracing's usual format (time, level, message, `name=value` fields), with
//! participants' addresses redacted on request and a typed event's ids left to its message.

use super::fields::Line;
use super::Redactor;
use serde_json::Value;
use std::fmt::Write;
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::FormatFields;

pub(super) struct TextFields {
    redactor: Option<Redactor>,
}

impl TextFields {
    pub fn new(redactor: Option<Redactor>) -> TextFields {
        TextFields { redactor }
    }
}

impl<'w> FormatFields<'w> for TextFields {
    fn format_fields<R: RecordFields>(&self, mut w: Writer<'w>, fields: R) -> std::fmt::Result {
        let line = Line::read(|v| fields.record(v), self.redactor.as_ref());
        write_line(&mut w, &line)
    }
}

fn write_line(w: &mut impl Write, line: &Line) -> std::fmt::Result {
    let mut first = true;
    if let Some(m) = &line.message {
        w.write_str(m)?;
        first = false;
    }
    let typed = line.is_typed_event();
    for (name, v) in &line.fields {
        if typed && Line::is_event_id(name) {
            continue;
        }
        if !first {
            w.write_char(' ')?;
        }
        first = false;
        match &v.value {
            Value::String(s) if v.quoted => write!(w, "{name}={s:?}")?,
            Value::String(s) => write!(w, "{name}={s}")?,
            other => write!(w, "{name}={other}")?,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logging::fields::FieldValue;

    fn field(name: &'static str, s: &str, quoted: bool) -> (&'static str, FieldValue) {
        (
            name,
            FieldValue {
                value: Value::String(s.into()),
                quoted,
            },
        )
    }

    #[test]
    fn a_typed_event_reads_as_its_usual_line_and_other_lines_keep_every_field() {
        let event = Line {
            message: Some("admitted p3 to m1 on mmr-1".into()),
            summary: Some("admitted a participant to a meeting on an MMR".into()),
            fields: vec![
                field("node", "controller-1", false),
                field("event", "admitted", true),
                field("meeting", "m1", false),
                field("participant", "p3", false),
                field("mmr", "mmr-1", true),
            ],
        };
        let mut out = String::new();
        write_line(&mut out, &event).unwrap();
        assert_eq!(out, "admitted p3 to m1 on mmr-1 node=controller-1");

        let plain = Line {
            message: Some("signalling session opened".into()),
            summary: None,
            fields: vec![
                field("client_addr", "127.0.0.1:40000", false),
                field("event", "not a typed event's", true),
            ],
        };
        let mut out = String::new();
        write_line(&mut out, &plain).unwrap();
        assert_eq!(
            out,
            r#"signalling session opened client_addr=127.0.0.1:40000 event="not a typed event's""#
        );
    }
}
