//! The stack layer, shared by backup and restore: finding the stack, the write pause, part names and labels, host mode's configuration.
//!
//! Above `source/` (the stores and the Docker engine) and below `backup`/`restore`, which
//! never import each other: what both need about a stack lives here.

pub mod counts;
pub mod discover;
pub mod host;
pub mod kinds;
pub mod names;
pub mod pause;
pub mod phases;
mod restarted;
pub mod stale_drills;
pub mod wait;
