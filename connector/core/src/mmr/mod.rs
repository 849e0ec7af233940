//! The multimedia router (MMR): who may send media into which meeting, and where each packet goes.

pub mod forwarding;
pub mod guard;
pub mod link;

pub use forwarding::{DropReason, Endpoint, Forwarding, MmrCounters, Outcome};
pub use guard::{GuardCounters, MediaGuard, MediaLimits};
