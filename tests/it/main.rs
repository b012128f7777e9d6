//! The integration tests: one binary that drives the real `rbk` (and, where speed matters, the library).

mod bounds;
mod concurrent;
mod crash;
mod damage;
mod dedup;
mod examples;
mod failing;
mod faults;
mod fuzz_seeds;
mod help;
mod host;
mod json;
mod keys;
mod output;
mod passwords;
mod progress;
mod props;
mod prune;
mod roundtrip;
mod stack;
mod stats;
mod tamper;
mod usage;
mod util;
