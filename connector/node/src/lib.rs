//! The async shells of the meeting connector.
//!
//! Each role's `run` function is the one entry point both the CLI and the simulation call, so a
//! simulated deployment goes through the production start-up path. Shells own sockets and timers
//! and only shuttle bytes: every decision is made by a sans-IO machine from `mc-core`, fed the
//! current time from the seam.
#![forbid(unsafe_code)]

pub mod client;
pub mod cloud;
pub mod config;
pub mod controller;
mod dial;
pub mod error;
pub mod events;
#[cfg(not(madsim))]
pub mod fd_limit;
pub mod framed;
pub mod http;
pub mod identities;
mod identity_gate;
pub mod listen;
pub mod load;
pub mod metrics;
pub mod mmr;
pub mod monitor;
mod serve;

pub use error::NodeError;
pub use events::EventLog;

/// How long a connection attempt on one path may take before the next path is tried.
pub const DEFAULT_CONNECT_TIMEOUT_MS: u64 = 1_500;
