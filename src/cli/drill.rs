//! `rbk verify --restore-test`: runs the restore drill and prints its checks (the drill itself is `restore/drill.rs`).

use anyhow::Result;

use super::global::GlobalArgs;
use super::output::{esc, json};
use super::signals::{Second, cancel_on_signals};
use super::verify::VerifyArgs;
use crate::cancel::signal_name;
use crate::restore::drill::{CheckStatus, DrillOptions, restore_test};

pub fn run(global: &GlobalArgs, args: &VerifyArgs) -> Result<u8> {
    let settings = global.settings()?;
    if settings.host.is_some() {
        return Err(crate::usage!(
            "--restore-test builds a throwaway Docker stack; rbk.toml selects host mode, which has none"
        ));
    }
    let repo = global.open()?;
    // Once the drill exists, a signal tears it down before rbk exits (the drill holds the
    // flag); before that, it ends rbk at once.
    let cancel = cancel_on_signals(Second::Waits)?;
    let options = DrillOptions {
        stack: settings.stack_config(args.project.as_deref())?,
        cancel: cancel.clone(),
        timeout: args.timeout.into(),
    };
    let report = match restore_test(&repo, &args.snapshot, &options) {
        Ok(report) => report,
        Err(e) => {
            if let Some(signal) = cancel.signal() {
                tracing::debug!("after {}: {e:#}", signal_name(signal));
                eprintln!(
                    "rbk: interrupted by {}: the drill was torn down; the stack was not touched",
                    signal_name(signal)
                );
                return Ok(super::exit::INTERRUPTED);
            }
            return Err(e.context("the restore drill could not run"));
        }
    };
    global.warn_if_read_unlocked(&repo);
    if global.json {
        json(&serde_json::to_value(&report)?);
    } else {
        for w in &report.warnings {
            eprintln!("warning: {}", esc(w));
        }
        if !global.quiet {
            println!(
                "restore drill of snapshot {} ({}) in a throwaway copy of stack {}",
                &report.snapshot[..8],
                esc(&report.snapshot_time),
                esc(&report.project)
            );
        }
        let width = report
            .checks
            .iter()
            .map(|c| c.name.len())
            .max()
            .unwrap_or(0);
        for c in &report.checks {
            if global.quiet && c.status != CheckStatus::Failed {
                continue;
            }
            let mark = match c.status {
                CheckStatus::Passed => "ok  ",
                CheckStatus::Failed => "FAIL",
                CheckStatus::Skipped => "skip",
            };
            let took = if c.ms > 0 {
                format!(" ({:.1} s)", c.ms as f64 / 1000.0)
            } else {
                String::new()
            };
            println!(
                "  {mark}  {:<width$}  {}{took}",
                c.name,
                esc(&c.detail).replace('\n', "\n        ")
            );
        }
        let took = report.duration_ms as f64 / 1000.0;
        if let (Some(record), false) = (&report.record, global.quiet) {
            println!("recorded as verification {}", &record[..8]);
        }
        if report.passed {
            if !global.quiet {
                println!(
                    "passed in {took:.1} s: the snapshot restores and RushDB runs on it; the drill ({} containers, {} volumes) is removed",
                    report.removed.containers, report.removed.volumes
                );
            }
        } else {
            println!(
                "FAILED in {took:.1} s: this snapshot would not give back the stack as it was; the drill is removed"
            );
        }
    }
    Ok(if report.passed {
        super::exit::OK
    } else {
        super::exit::DAMAGED
    })
}
