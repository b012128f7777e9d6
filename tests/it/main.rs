//! The integration tests: one binary that drives the real `rbk` (and, where speed matters, the library).

mod concurrent;
mod crash;
mod damage;
mod dedup;
mod failing;
mod props;
mod roundtrip;
mod stack;
mod util;
