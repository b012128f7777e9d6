//! Retention for `rbk prune`: a policy (keep-last/hourly/daily/weekly/monthly/yearly, keep-within,
//! keep-tag) and a pure planner that decides, per group of snapshots, which to keep and why.
//!
//! The semantics are restic's `forget` policy (restic ≥ 0.16, including its
//! "oldest" rule), so users can carry their flags over. The planner reads no
//! clock and touches no repository: it turns a policy and a list of
//! candidates into a printable list of decisions (for `--dry-run` and golden
//! tests), and the caller acts on it.

mod plan;
mod policy;

pub use plan::{Candidate, Decision, plan};
pub use policy::{Count, ParseError, Policy, Within, parse_tag_set};

#[cfg(test)]
mod golden;
#[cfg(test)]
mod tests;
