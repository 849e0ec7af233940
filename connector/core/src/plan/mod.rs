//! Capacity planning's sizing maths (DESIGN §9): pure functions from a forecast's figures to
//! counts of MMRs, controllers and seats, before any simulation checks them.
//!
//! - [`packing`]: the product's division rule of thumb, and bin packing that respects meeting
//!   affinity (a meeting lives on one MMR) and the per-controller meeting limit;
//! - [`erlang`]: Erlang B, an optimistic bound on refusals for a given number of seats;
//! - [`forecast`]: a forecast in a planner's terms, validated field by field;
//! - [`zone`]: the fewest zones and MMR VMs that hold the peak with headroom and through every
//!   failure the forecast must survive.

pub mod erlang;
pub mod forecast;
pub mod packing;
pub mod zone;
