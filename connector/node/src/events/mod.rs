//! The application event log: what each node did that a test or an operator cares about (a
//! registration, an admission, a media path chosen), in order. Events always go to `tracing`; a
//! simulation also collects them, stamped with simulated time, to check and to hash — two runs of
//! one seed must produce the same log byte for byte.

mod controller_fields;
mod fields;
mod kinds;
mod trace;

pub use fields::Fields;
pub use kinds::{ClientEvent, CloudEvent, HarnessEvent, LinkEvent, LoadEvent, MmrEvent};

use mc_core::controller::Event;
use mc_rt::sync::Notify;
use std::fmt;
use std::sync::{Arc, Mutex};

#[derive(Clone)]
pub struct EventLog {
    node: Arc<str>,
    sink: Option<Arc<Mutex<Vec<String>>>>,
    checks: Option<Arc<Checks>>,
}

/// Everything a node records, as a value: checkers read it, so rewording a log line cannot
/// disable a check. Its display is its line in the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Typed {
    Controller(Event),
    Link(LinkEvent),
    Mmr(MmrEvent),
    Cloud(CloudEvent),
    Client(ClientEvent),
    Load(LoadEvent),
    Harness(HarnessEvent),
}

impl fmt::Display for Typed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Typed::Controller(e) => e.fmt(f),
            Typed::Link(e) => e.fmt(f),
            Typed::Mmr(e) => e.fmt(f),
            Typed::Cloud(e) => e.fmt(f),
            Typed::Client(e) => e.fmt(f),
            Typed::Load(e) => e.fmt(f),
            Typed::Harness(e) => e.fmt(f),
        }
    }
}

macro_rules! typed_from {
    ($($variant:ident($kind:ty)),*) => {$(
        impl From<$kind> for Typed {
            fn from(e: $kind) -> Typed {
                Typed::$variant(e)
            }
        }
    )*};
}
typed_from!(
    Controller(Event),
    Link(LinkEvent),
    Mmr(MmrEvent),
    Cloud(CloudEvent),
    Client(ClientEvent),
    Load(LoadEvent),
    Harness(HarnessEvent)
);

/// What a simulation's checkers read besides the log: the typed events of every node, and a
/// wake-up whenever a controller's state changed (so safety is checked at every change, not
/// only between samples).
#[derive(Default)]
pub struct Checks {
    typed: Mutex<Vec<(String, Typed)>>,
    changed: Notify,
}

impl Checks {
    /// Every typed event so far, with the node that recorded it.
    pub fn typed(&self) -> Vec<(String, Typed)> {
        self.typed.lock().expect("checks lock").clone()
    }

    /// Resolves at the next change of any controller's state.
    pub async fn changed(&self) {
        self.changed.notified().await
    }
}

impl EventLog {
    /// Events go to `tracing` only.
    pub fn tracing_only(node: &str) -> EventLog {
        EventLog {
            node: node.into(),
            sink: None,
            checks: None,
        }
    }

    /// Events also go to `sink`, shared by every node of a simulation or test.
    pub fn collecting(node: &str, sink: Arc<Mutex<Vec<String>>>) -> EventLog {
        EventLog {
            node: node.into(),
            sink: Some(sink),
            checks: None,
        }
    }

    /// The same sink under another node name.
    pub fn for_node(&self, node: &str) -> EventLog {
        EventLog {
            node: node.into(),
            sink: self.sink.clone(),
            checks: self.checks.clone(),
        }
    }

    /// The same log, also feeding `checks`.
    pub fn with_checks(mut self, checks: Arc<Checks>) -> EventLog {
        self.checks = Some(checks);
        self
    }

    /// Records an event: its line goes to `tracing` and the log, the value to the checkers.
    pub fn record(&self, event: impl Into<Typed>) {
        let event = event.into();
        trace::emit(&self.node, &event);
        if let Some(sink) = &self.sink {
            let line = format!("{} {} {event}", mc_rt::unix_now_ms(), self.node);
            sink.lock().expect("event log lock").push(line);
        }
        if let Some(checks) = &self.checks {
            let node = self.node.to_string();
            checks
                .typed
                .lock()
                .expect("checks lock")
                .push((node, event));
        }
    }

    /// Traces a diagnostic: like a recorded event in the process's log, but kept out of the
    /// event log and from the checkers.
    pub fn diagnostic(&self, event: impl Into<Typed>) {
        trace::emit(&self.node, &event.into());
    }

    /// A controller's state changed: wake the checkers.
    pub fn state_changed(&self) {
        if let Some(checks) = &self.checks {
            checks.changed.notify_waiters();
        }
    }

    pub fn node(&self) -> &str {
        &self.node
    }
}

/// FNV-1a over the lines: a stable fingerprint of an event log, for the determinism check.
pub fn hash_lines(lines: &[String]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for line in lines {
        for b in line.bytes().chain(std::iter::once(b'\n')) {
            h ^= b as u64;
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}
