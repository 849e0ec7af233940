//! A participant: its session machine (joining, keeping media and signalling alive, falling
//! back and rejoining) and its media bookkeeping. The same code is the load generator, so the
//! numbers here are what load reports print.

pub mod crypto;
pub mod media;
pub mod session;

pub use crypto::{MediaCrypto, OpenFailures};
pub use media::{MediaPath, MediaStats, RtpSender, SourceStats};
pub use session::{EndReason, Finish, Input, JoinFailure, Output, Session, Timing};
