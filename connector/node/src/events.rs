//! The application event log: what each node did that a test or an operator cares about (a
//! registration, an admission, a media path chosen), in order. Events always go to `tracing`; a
//! simulation also collects them, stamped with simulated time, to check and to hash — two runs of
//! one seed must produce the same log byte for byte.

use std::fmt;
use std::sync::{Arc, Mutex};

#[derive(Clone)]
pub struct EventLog {
    node: Arc<str>,
    sink: Option<Arc<Mutex<Vec<String>>>>,
}

impl EventLog {
    /// Events go to `tracing` only.
    pub fn tracing_only(node: &str) -> EventLog {
        EventLog {
            node: node.into(),
            sink: None,
        }
    }

    /// Events also go to `sink`, shared by every node of a simulation or test.
    pub fn collecting(node: &str, sink: Arc<Mutex<Vec<String>>>) -> EventLog {
        EventLog {
            node: node.into(),
            sink: Some(sink),
        }
    }

    /// The same sink under another node name.
    pub fn for_node(&self, node: &str) -> EventLog {
        EventLog {
            node: node.into(),
            sink: self.sink.clone(),
        }
    }

    pub fn node(&self) -> &str {
        &self.node
    }

    pub fn record(&self, what: fmt::Arguments<'_>) {
        tracing::info!(node = %self.node, "{what}");
        if let Some(sink) = &self.sink {
            let line = format!("{} {} {what}", mc_rt::unix_now_ms(), self.node);
            sink.lock().expect("event log lock").push(line);
        }
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
