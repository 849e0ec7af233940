//! The cloud stand-in's services, as state machines: management (meetings and join tickets) and
//! status sync (which controllers are live). Their shells serve them over HTTPS and TLS.

pub mod management;
pub mod notification;
pub mod requests;
pub mod status_sync;
