//! One tracing line's fields as values, read once and then written as text or JSON.

use super::Redactor;
use serde_json::Value;
use std::fmt;
use tracing::field::{Field, Visit};

/// Where a participant's address is logged (see the module above).
const CLIENT_ADDR: &str = "client_addr";
/// Present on a typed event's line only: the event's line without its ids.
const SUMMARY: &str = "summary";
/// The fields a typed event carries beside its summary, each also said by its usual line.
const EVENT_IDS: [&str; 7] = [
    "event",
    "meeting",
    "participant",
    "controller",
    "to_controller",
    "mmr",
    "conn",
];

/// One field's value, and whether it came as a string (text quotes those, as tracing's own
/// format does, and writes `%display` and `?debug` values bare).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct FieldValue {
    pub value: Value,
    pub quoted: bool,
}

#[derive(Debug, Default)]
pub(super) struct Line {
    /// The line's message (tracing's `message` field).
    pub message: Option<String>,
    pub summary: Option<String>,
    /// The other fields, in the order they were written.
    pub fields: Vec<(&'static str, FieldValue)>,
}

impl Line {
    /// Reads the fields of one event (or span), replacing `client_addr` when redacting.
    pub fn read(record: impl FnOnce(&mut dyn Visit), redactor: Option<&Redactor>) -> Line {
        let mut reader = Reader {
            line: Line::default(),
            redactor,
        };
        record(&mut reader);
        reader.line
    }

    /// A typed event's line: its ids are fields and its summary says the rest.
    pub fn is_typed_event(&self) -> bool {
        self.summary.is_some()
    }

    pub fn is_event_id(name: &str) -> bool {
        EVENT_IDS.contains(&name)
    }
}

struct Reader<'a> {
    line: Line,
    redactor: Option<&'a Redactor>,
}

impl Reader<'_> {
    fn push(&mut self, field: &Field, value: Value, quoted: bool) {
        let value = match (self.redactor, field.name(), value) {
            (Some(r), CLIENT_ADDR, Value::String(s)) => Value::String(r.redact(&s)),
            (_, _, v) => v,
        };
        self.line
            .fields
            .push((field.name(), FieldValue { value, quoted }));
    }

    fn text(&mut self, field: &Field, text: String, quoted: bool) {
        match field.name() {
            "message" => self.line.message = Some(text),
            SUMMARY => self.line.summary = Some(text),
            _ => self.push(field, Value::String(text), quoted),
        }
    }
}

impl Visit for Reader<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.text(field, value.to_string(), true)
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        // `%value` arrives here too, formatted as its Display.
        self.text(field, format!("{value:?}"), false)
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.push(field, value.into(), false)
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.push(field, value.into(), false)
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.push(field, value.into(), false)
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.push(field, value.into(), false)
    }
}
