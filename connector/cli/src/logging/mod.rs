//! The process's log on stderr: text for a person or one JSON object per line for a log shipper,
//! colour only on a terminal, participants' addresses hidden on request.
//!
//! Two conventions of the nodes' tracing lines meet here. A typed event's line carries a `summary`
//! field and its ids as fields (`event`, `meeting`, `participant`, `controller`, `to_controller`,
//! `mmr`, `conn`; see `mc_node::events`): JSON shows the summary as the message and the ids as
//! fields, text shows the event's usual line and leaves the ids out, since that line says them.
//! A participant's address, or an address that may be one, is always in a `client_addr` field,
//! which is what redaction replaces.

mod fields;
mod json;
mod redact;
mod text;

use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::Args;
use mc_node::config::LogFormat;
use std::ffi::OsString;
use std::io::IsTerminal;
use std::sync::OnceLock;
use tracing::Level;

pub(crate) use redact::Redactor;

/// The log options every command takes.
#[derive(Args, Debug, Clone, Copy, Default)]
pub struct LogArgs {
    /// How log lines are written to stderr: `text` for a person, `json` (one object per line)
    /// for a log shipper. Overrides `log_format` in the command's configuration file.
    #[arg(
        long,
        global = true,
        env = "MC_LOG_FORMAT",
        value_name = "FORMAT",
        value_parser = PossibleValuesParser::new(["text", "json"])
            .map(|s| s.parse::<LogFormat>().expect("a possible value parses"))
    )]
    log_format: Option<LogFormat>,
    /// Replace participants' IP addresses in the log by a token that stays the same for one
    /// address while the process runs (so its lines can still be followed); also
    /// `log_redact_addresses = true` in the configuration file.
    #[arg(long, global = true)]
    redact_addresses: bool,
}

/// The format the log started with. A process has one stderr and one tracing subscriber (itself
/// process-wide); the lines a command writes besides tracing's (`say`) follow the same format.
static STARTED: OnceLock<LogFormat> = OnceLock::new();

/// How one command logs: the flags, and how much it shows unless RUST_LOG says otherwise.
#[derive(Debug, Clone, Copy)]
pub struct Logging {
    args: LogArgs,
    default_level: &'static str,
}

impl Logging {
    pub fn new(args: LogArgs, default_level: &'static str) -> Logging {
        Logging {
            args,
            default_level,
        }
    }

    /// Starts the log for a command without a configuration file.
    pub fn start_default(self) {
        self.start(LogFormat::Text, false)
    }

    /// Starts the log with the command's configuration (`log_format`, `log_redact_addresses`);
    /// a flag given on the command line wins.
    pub fn start(self, format: LogFormat, redact: bool) {
        let format = self.args.log_format.unwrap_or(format);
        let _ = STARTED.set(format);
        let redactor = (redact || self.args.redact_addresses).then(Redactor::new);
        let filter = tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(self.default_level));
        let builder = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .with_target(false);
        // A second start (there is none in the CLI) keeps the first subscriber.
        let _ = match format {
            LogFormat::Text => builder
                .with_ansi(colour(
                    std::io::stderr().is_terminal(),
                    std::env::var_os("NO_COLOR"),
                ))
                .fmt_fields(text::TextFields::new(redactor))
                .try_init(),
            LogFormat::Json => builder
                .with_ansi(false)
                .event_format(json::JsonLines::new(redactor))
                .try_init(),
        };
    }
}

impl Logging {
    /// Whether stderr carries JSON lines (before the log starts: whether the flag asks for them).
    pub fn is_json(self) -> bool {
        STARTED.get().copied().or(self.args.log_format) == Some(LogFormat::Json)
    }

    /// A line the command shows whatever RUST_LOG says ("stopping"): as it is in text, as one
    /// JSON object at `level` in JSON, so that a log shipper can parse every line.
    pub fn say(self, level: Level, text: &str) {
        if self.is_json() {
            eprintln!("{}", json::line(level, text));
        } else {
            eprintln!("{text}");
        }
    }

    /// The error the command ends with, in the log's format.
    pub fn error(self, e: &anyhow::Error) {
        if self.is_json() {
            eprintln!("{}", json::line(Level::ERROR, &format!("{e:#}")));
        } else {
            eprintln!("error: {e:#}");
        }
    }
}

/// Colour codes only for a person at a terminal: in a file or a pipe they are noise, and
/// NO_COLOR (set and not empty, <https://no-color.org>) turns them off anywhere.
fn colour(terminal: bool, no_color: Option<OsString>) -> bool {
    terminal && no_color.is_none_or(|v| v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_only_on_a_terminal_and_never_under_no_color() {
        assert!(colour(true, None));
        assert!(
            !colour(false, None),
            "a file or a pipe gets no colour codes"
        );
        assert!(!colour(true, Some("1".into())));
        assert!(
            colour(true, Some("".into())),
            "an empty NO_COLOR does not count"
        );
    }
}
