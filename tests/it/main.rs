//! The integration tests: one binary that drives the real `rbk` (and, where speed matters, the library).

mod bounds;
mod concurrent;
mod crash;
mod damage;
mod dedup;
mod dumps;
mod examples;
mod failing;
mod faults;
mod fifo;
mod fuzz_seeds;
mod help;
mod host;
mod interrupt;
mod json;
mod keys;
mod progress;
mod props;
mod prune;
mod roundtrip;
mod secrets;
mod stack;
mod stats;
mod tamper;
mod util;
