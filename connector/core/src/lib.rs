//! The meeting connector's decision-makers, as sans-IO state machines.
//!
//! Every type here is fed inputs with the current time (`now_ms`, Unix milliseconds, supplied by
//! the caller) and answers with outputs to carry out: messages to send, commands for another
//! role. Nothing here reads a clock, draws from a global random source, spawns a task or touches a
//! socket; randomness comes in as an [`Rng`] seeded by the caller. That is what lets the same code
//! run for real and inside a deterministic simulation, and lets these machines be tested in
//! virtual time with no runtime at all.
//!
//! Maps whose order can reach an output are `BTreeMap`/`BTreeSet`, never hash maps.
#![forbid(unsafe_code)]

pub mod client;
pub mod cloud;
pub mod controller;
pub mod digest;
pub mod fallback;
pub mod load;
pub mod mmr;
pub mod plan;
pub mod rate_limit;
pub mod rng;
pub mod ticket;
pub mod zc;

pub use rng::Rng;
