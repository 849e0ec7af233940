//! JSON lines: one object per line, `timestamp`, `level` and `message` first, then every field
//! at the top level. A typed event's message is its summary, so its ids are in fields only.
//!
//! Written here rather than with tracing-subscriber's own JSON format, which can neither replace
//! a field's value (redaction) nor take the message from a field, and nests fields one level down.

use super::fields::Line;
use super::Redactor;
use serde_json::Value;
use std::fmt::{self, Write};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

pub(super) struct JsonLines {
    redactor: Option<Redactor>,
}

impl JsonLines {
    pub fn new(redactor: Option<Redactor>) -> JsonLines {
        JsonLines { redactor }
    }
}

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut w: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut timestamp = String::new();
        SystemTime.format_time(&mut Writer::new(&mut timestamp))?;
        let line = Line::read(|v| event.record(v), self.redactor.as_ref());
        write_object(&mut w, &timestamp, event.metadata().level().as_str(), line)?;
        writeln!(w)
    }
}

/// A line of the command's own, not from tracing: just a message.
pub(super) fn line(level: tracing::Level, message: &str) -> String {
    let mut timestamp = String::new();
    let _ = SystemTime.format_time(&mut Writer::new(&mut timestamp));
    let mut out = String::new();
    let line = Line {
        message: Some(message.to_string()),
        ..Line::default()
    };
    let _ = write_object(&mut out, &timestamp, level.as_str(), line);
    out
}

fn write_object(w: &mut impl Write, timestamp: &str, level: &str, line: Line) -> fmt::Result {
    let message = line.summary.or(line.message).unwrap_or_default();
    write!(
        w,
        "{{\"timestamp\":{},\"level\":{},\"message\":{}",
        Value::from(timestamp),
        Value::from(level),
        Value::from(message)
    )?;
    for (name, v) in line.fields {
        // Keys are unique: a field named like one of the three above is not repeated.
        if matches!(name, "timestamp" | "level" | "message") {
            continue;
        }
        write!(w, ",{}:{}", Value::from(name), v.value)?;
    }
    w.write_char('}')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logging::fields::FieldValue;

    #[test]
    fn a_typed_event_is_one_object_with_its_ids_as_fields_and_its_summary_as_message() {
        let line = Line {
            message: Some("admitted p3 to m1 on mmr-1".into()),
            summary: Some("admitted a participant to a meeting on an MMR".into()),
            fields: [
                ("node", Value::from("controller-1")),
                ("event", Value::from("admitted")),
                ("meeting", Value::from("m1")),
                ("conn", Value::from(7u64)),
            ]
            .into_iter()
            .map(|(n, value)| {
                (
                    n,
                    FieldValue {
                        value,
                        quoted: false,
                    },
                )
            })
            .collect(),
        };
        let mut out = String::new();
        write_object(&mut out, "2025-01-02T03:04:05.000006Z", "INFO", line).unwrap();
        assert!(!out.contains('\n'), "{out}");
        let v: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "timestamp": "2025-01-02T03:04:05.000006Z",
                "level": "INFO",
                "message": "admitted a participant to a meeting on an MMR",
                "node": "controller-1",
                "event": "admitted",
                "meeting": "m1",
                "conn": 7,
            })
        );
        assert!(out.starts_with(r#"{"timestamp":"#), "{out}");
    }

    #[test]
    fn a_message_with_quotes_and_newlines_stays_one_json_line() {
        let line = Line {
            message: Some("error: \"x\"\nsecond line".into()),
            ..Line::default()
        };
        let mut out = String::new();
        write_object(&mut out, "t", "WARN", line).unwrap();
        assert!(!out.contains('\n'), "{out}");
        let v: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["message"], "error: \"x\"\nsecond line");
    }
}
