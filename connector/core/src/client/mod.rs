//! The client's media bookkeeping: what it sent and what it received from whom. The same code is
//! the load generator, so the numbers here are what load reports print.

pub mod media;

pub use media::{MediaStats, RtpSender, SourceStats};
