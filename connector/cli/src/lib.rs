//! The `connector` command line. Raw arguments become validated configuration before anything
//! runs; errors print once, with context, and map to exit codes (2: usage or configuration,
//! 1: anything that failed while running).
//!
//! The CLI runs real processes only; simulations start nodes through `mc-node` directly, so under
//! `--cfg madsim` this crate is empty.
#![cfg(not(madsim))]
#![forbid(unsafe_code)]

mod certs_cmd;
mod load;
mod logging;
mod roles;
mod up;

use anyhow::Context;
use clap::{Parser, Subcommand};
use std::ffi::OsString;
use std::path::{Path, PathBuf};

#[derive(Parser, Debug)]
#[command(
    name = "connector",
    version,
    about = "An on-premises meeting connector: controllers, MMRs, a client and a stand-in for the public cloud",
    long_about = "An on-premises meeting connector. Meeting metadata lives in a (stand-in) public cloud; \
signalling and all media stay on controller and MMR machines inside your network.\n\n\
Quick start: `connector up --demo` starts a complete local deployment on loopback and shows media flowing.",
    after_help = "Logs go to stderr; set RUST_LOG (e.g. RUST_LOG=debug) to change how much is shown, \
--log-format json for one JSON object per line."
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    log: logging::LogArgs,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Start a complete local deployment (cloud, a controller VM, MMR VMs) on loopback and run until Ctrl-C.
    Up(up::UpArgs),
    /// Manage deployment identities (CA and per-host certificates).
    Certs {
        #[command(subcommand)]
        command: certs_cmd::CertsCommand,
    },
    /// Run the cloud stand-in: management (HTTPS) and status sync (TLS).
    Cloud(roles::RoleArgs),
    /// Run a controller VM: the zone controller and its MMR.
    Controller(roles::RoleArgs),
    /// Run an MMR VM: one media router linked to a controller, adding its capacity to the zone.
    Mmr(roles::RoleArgs),
    /// Join a meeting as one participant, send and receive media, and print what moved.
    Client(roles::ClientArgs),
    /// Create meetings and look at the zone through the cloud's management API.
    Meeting(roles::MeetingArgs),
    /// Drain a controller or an MMR for maintenance (no new meetings; its meetings move within a
    /// deadline), or undrain it with --undo.
    Drain(roles::DrainArgs),
    /// Generate load: many participants join meetings at a paced rate and exchange media; prints a report.
    Load(load::LoadArgs),
}

/// Runs the CLI; returns the process exit code.
pub fn main(args: impl IntoIterator<Item = OsString>) -> i32 {
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 2 } else { 0 };
        }
    };
    // `up` and `load` print their own summaries; the per-event log is there with RUST_LOG=info.
    let log = logging::Logging::new(
        cli.log,
        if matches!(cli.command, Command::Up(_) | Command::Load(_)) {
            "warn"
        } else {
            "info"
        },
    );
    // Commands with a configuration file start the log once they have read it (its log
    // settings apply); an error before that is printed below all the same.
    let result = match cli.command {
        Command::Up(args) => {
            log.start_default();
            roles::raise_open_file_limit();
            mc_rt::block_on(up::run(args, log))
        }
        Command::Certs { command } => {
            log.start_default();
            certs_cmd::run(command)
        }
        Command::Cloud(args) => mc_rt::block_on(roles::cloud(args, log)),
        Command::Controller(args) => mc_rt::block_on(roles::controller(args, log)),
        Command::Mmr(args) => mc_rt::block_on(roles::mmr(args, log)),
        Command::Client(args) => mc_rt::block_on(roles::client(args, log)),
        Command::Meeting(args) => mc_rt::block_on(roles::meeting(args, log)),
        Command::Drain(args) => mc_rt::block_on(roles::drain(args, log)),
        Command::Load(args) => mc_rt::block_on(load::run(args, log)),
    };
    match result {
        Ok(()) => 0,
        Err(e) => {
            log.error(&e);
            if e.chain()
                .any(|c| c.is::<mc_node::config::ConfigError>() || c.is::<UsageError>())
            {
                2
            } else {
                1
            }
        }
    }
}

/// A mistake in how the command was invoked (exit code 2).
#[derive(Debug)]
pub(crate) struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// Reads a TOML config file into a role's configuration type.
pub(crate) fn load_toml<T: serde::de::DeserializeOwned>(path: &Path) -> anyhow::Result<T> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    toml::from_str(&text)
        .map_err(|e| anyhow::Error::new(UsageError(format!("{}: {e}", path.display()))))
}

pub(crate) fn default_state_dir() -> PathBuf {
    PathBuf::from("state")
}
