//! An event's tracing line. Its message is the event's display, the line a person reads; beside
//! it go the event's structured fields (see `fields`) and its `summary`. A `summary` field marks
//! a typed event: the CLI's JSON format then takes the summary as the message and the ids as
//! fields, and its text format leaves out the fields the display already says.

use super::Typed;

pub(super) fn emit(node: &str, event: &Typed) {
    // Fields cost a summary to render: only when the line is wanted (never in a simulation).
    if !tracing::enabled!(tracing::Level::INFO) {
        return;
    }
    let f = event.fields();
    tracing::info!(
        node = %node,
        event = f.kind,
        meeting = f.meeting.map(tracing::field::display),
        participant = f.participant.map(tracing::field::display),
        controller = f.controller,
        to_controller = f.to_controller,
        mmr = f.mmr,
        conn = f.conn,
        summary = %f.summary,
        "{event}"
    );
}
