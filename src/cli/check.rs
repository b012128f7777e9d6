//! `rbk check`: is everything there, and with `--read-data`, is every byte intact?

use anyhow::Result;
use clap::Args;

use super::global::GlobalArgs;
use super::output::{bytes, esc, json};
use crate::store::check::{CheckReport, check};
use crate::store::check_record::{CheckCounts, CheckRecord, Scope};
use crate::store::time::now_rfc3339;
use crate::store::{Id, Repository};

/// Verify the repository's structure; --read-data also reads and verifies every pack.
///
/// Example: rbk check --read-data
#[derive(Args, Debug)]
pub struct CheckArgs {
    /// Read every pack and verify every blob (reads the whole repository).
    #[arg(long)]
    pub read_data: bool,
}

pub fn run(global: &GlobalArgs, args: &CheckArgs) -> Result<u8> {
    let repo = global.open()?;
    let lock = repo.read_lock("check")?;
    global.warn_if_read_unlocked(&repo);
    let started = std::time::Instant::now();
    let started_at = now_rfc3339();
    let report = check(&repo, args.read_data)?;
    // What it found is recorded for `rbk status`, under the lock it read with. A record that
    // cannot be written is a warning; the exit code stays the check's.
    let recorded = if lock.is_none() {
        eprintln!(
            "warning: the check was not recorded in the repository: it was read without a lock (--no-lock, or a read-only filesystem), and rbk writes nothing without one"
        );
        None
    } else {
        save_record(
            &repo,
            &report,
            args.read_data,
            started_at,
            started.elapsed(),
        )
    };
    drop(lock);
    super::monitor::record(super::monitor::Figure::ReadBytes, report.bytes_read as f64);
    super::monitor::record(
        super::monitor::Figure::Warnings,
        report.warnings.len() as f64,
    );
    // Damage outranks warnings: a repository with both is damaged.
    let code = if report.errors.is_empty() {
        super::exit::done(report.warnings.len())
    } else {
        super::exit::DAMAGED
    };
    if global.json {
        let mut v = serde_json::to_value(&report)?;
        v["ok"] = serde_json::Value::Bool(report.errors.is_empty());
        v["duration_ms"] = serde_json::json!(started.elapsed().as_millis() as u64);
        v["record"] = serde_json::json!(recorded.map(|id| id.to_hex()));
        json(&v);
    } else {
        for w in &report.warnings {
            if !global.quiet {
                println!("warning: {}: {}", esc(&w.file), esc(&w.detail));
            }
        }
        for e in &report.errors {
            println!("error: {}: {}", esc(&e.file), esc(&e.detail));
        }
        if report.pending_deletion > 0 && !global.quiet {
            println!(
                "{} pack(s) are out of the index, waiting for processes that were running during a prune; the next prune deletes them",
                report.pending_deletion
            );
        }
        if !global.quiet || !report.errors.is_empty() {
            println!(
                "checked {} snapshot(s), {} pack(s), {} blob(s){}: {}",
                report.snapshots,
                report.packs,
                report.blobs,
                if args.read_data {
                    format!(", read {}", bytes(report.bytes_read))
                } else {
                    String::new()
                },
                if report.errors.is_empty() {
                    "no errors".to_string()
                } else {
                    format!("{} error(s)", report.errors.len())
                }
            );
        }
    }
    Ok(code)
}

/// Records the check's outcome (`checks/` in the repository), or warns that it could not.
fn save_record(
    repo: &Repository,
    report: &CheckReport,
    read_data: bool,
    started_at: String,
    took: std::time::Duration,
) -> Option<Id> {
    let errors: Vec<String> = report
        .errors
        .iter()
        .map(|e| format!("{}: {}", e.file, e.detail))
        .collect();
    let counts = CheckCounts {
        snapshots: report.snapshots as u64,
        packs: report.packs as u64,
        blobs: report.blobs as u64,
        bytes_read: report.bytes_read,
        warnings: report.warnings.len() as u64,
    };
    let scope = if read_data {
        Scope::ReadData
    } else {
        Scope::Structure
    };
    let record = CheckRecord::new(started_at, scope, took, counts, &errors);
    match repo.save_check_record(&record) {
        Ok(id) => Some(id),
        Err(e) => {
            eprintln!(
                "warning: the check was not recorded in the repository: {}",
                esc(&e.to_string())
            );
            None
        }
    }
}
