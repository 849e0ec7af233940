//! The zone controller (ZC): admits participants and places meetings on MMRs.
//!
//! Contract: the controller core ([`crate::controller`]) owns one [`Zc`] and feeds it every event
//! in order — a signalling session's join or leave, an MMR linking or going down, the cloud's
//! ticket key — each with the current time. After each call it drains [`Zc::poll_output`] and
//! carries the outputs out: replies go to the named signalling session, MMR commands to the named
//! MMR. Because all calls are serialised, admission is exact: a burst of simultaneous joins is
//! decided one at a time against the same counters, so no limit is ever exceeded.

pub mod admission;
pub mod ha;
pub mod placement;
pub mod rejoin;

pub use admission::{MmrCommand, SessionId, Zc, ZcLimits, ZcOutput, ZoneSnapshot};
