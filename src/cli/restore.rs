//! `rbk restore <id> --to DIR`: every part back as a file.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use super::global::GlobalArgs;
use super::output::{bytes, esc, esc_join, json};
use super::signals::{Second, cancel_on_signals, interrupted};
use crate::restore::host::{HostRestoreOutcome, restore_host};
use crate::restore::restore_to_dir;
use crate::restore::stack::{StackRestoreOptions, restore_stack};
use crate::stack::host::HostConfig;

/// Restore a snapshot (a unique id prefix, or `latest`): into the running
/// stack, or with --to as files.
///
/// Examples:
///   rbk restore 3f9a2c1e              # both stores back, the stack running again
///   rbk restore latest --to ./out     # neo4j.dump + metadata.sql (or rushdb.db) as files
///   rbk restore latest --to ./out --overwrite   # the same, replacing the files already there
#[derive(Args, Debug)]
// Verbatim: clap would otherwise join the example lines into one paragraph.
#[command(
    verbatim_doc_comment,
    about = "Restore a snapshot into the running stack, or with --to as files"
)]
pub struct RestoreArgs {
    /// Snapshot id (any unique prefix) or `latest`.
    pub snapshot: String,
    /// Write the parts as files into this directory (created if missing)
    /// instead of restoring the stack.
    #[arg(long)]
    pub to: Option<PathBuf>,
    /// Restore only this part (repeatable).
    #[arg(long = "part")]
    pub parts: Vec<String>,
    /// With --to: replace files of the parts' names already in the directory (without it,
    /// such files are refused and nothing is written).
    #[arg(long, requires = "to")]
    pub overwrite: bool,
    /// Stack mode: restore although the running RUSHDB_AES_256_ENCRYPTION_KEY
    /// differs from the snapshot's (restored tokens and secrets will not decrypt).
    #[arg(long)]
    pub force: bool,
    /// Stack mode: the Compose project (default: found by the `rushdb` service label).
    #[arg(long)]
    pub project: Option<String>,
    /// Host mode: print the plan (what is verified, stopped, loaded, started) and touch nothing.
    #[arg(long, conflicts_with = "to")]
    pub dry_run: bool,
}

pub fn run(global: &GlobalArgs, args: &RestoreArgs) -> Result<u8> {
    super::alloc::return_big_buffers();
    let Some(to) = &args.to else {
        return run_stack(global, args);
    };
    let repo = global.open()?;
    let started = std::time::Instant::now();
    let (id, _snap, restored) =
        restore_to_dir(&repo, &args.snapshot, to, &args.parts, args.overwrite)?;
    global.warn_if_read_unlocked(&repo);
    let ms = started.elapsed().as_millis() as u64;
    super::monitor::record(
        super::monitor::Figure::ReadBytes,
        restored.iter().map(|p| p.bytes).sum::<u64>() as f64,
    );
    if global.json {
        json(&serde_json::json!({
            "id": id.to_hex(),
            "duration_ms": ms,
            "parts": restored.iter().map(|p| serde_json::json!({
                "name": p.name, "path": p.path.display().to_string(), "bytes": p.bytes, "codec": p.codec,
            })).collect::<Vec<_>>(),
        }));
    } else if !global.quiet {
        for p in &restored {
            println!(
                "  {:<24} {:>10}  {}",
                esc(&p.name),
                bytes(p.bytes),
                esc(&p.path.display().to_string())
            );
        }
        println!(
            "restored snapshot {} ({} part(s), verified) in {:.1} s",
            id.short(),
            restored.len(),
            ms as f64 / 1000.0
        );
    }
    Ok(super::exit::OK)
}

fn run_stack(global: &GlobalArgs, args: &RestoreArgs) -> Result<u8> {
    if !args.parts.is_empty() {
        return Err(crate::usage!(
            "--part selects files to write; use it with --to DIR"
        ));
    }
    let settings = global.settings()?;
    if let Some(host) = &settings.host {
        return run_host(global, args, host);
    }
    if args.dry_run {
        return Err(crate::usage!(
            "--dry-run plans a host-mode restore ([host] in rbk.toml)"
        ));
    }
    let repo = global.open()?;
    let cancel = cancel_on_signals(Second::Waits)?;
    let options = StackRestoreOptions {
        stack: settings.stack_config(args.project.as_deref())?,
        force: args.force,
        cancel: cancel.clone(),
    };
    let report = match restore_stack(&repo, &args.snapshot, &options) {
        Ok(report) => report,
        Err(e) => return interrupted(e, &cancel, RESTORE_CUT_SHORT),
    };
    global.warn_if_read_unlocked(&repo);
    if global.json {
        json(&serde_json::to_value(&report)?);
    } else if !global.quiet {
        for w in &report.warnings {
            eprintln!("warning: {}", esc(w));
        }
        println!(
            "restored {} of snapshot {} into stack {}; RushDB was down for {:.1} s and is running again",
            esc_join(&report.restored, " + "),
            &report.snapshot[..8],
            esc(&report.project),
            report.downtime_ms as f64 / 1000.0
        );
    }
    // Restored, but e.g. forced past a different encryption key: done, with warnings.
    Ok(super::exit::done(report.warnings.len()))
}

fn run_host(global: &GlobalArgs, args: &RestoreArgs, host: &HostConfig) -> Result<u8> {
    if args.project.is_some() {
        return Err(crate::usage!(
            "--project names a Compose project; rbk.toml selects host mode"
        ));
    }
    let repo = global.open()?;
    let cancel = cancel_on_signals(Second::Waits)?;
    let outcome = match restore_host(&repo, &args.snapshot, host, args.dry_run, &cancel) {
        Ok(outcome) => outcome,
        Err(e) => return interrupted(e, &cancel, RESTORE_CUT_SHORT),
    };
    global.warn_if_read_unlocked(&repo);
    // A plan touched nothing, so it is not "done with warnings" (0, its warnings are in the
    // plan); a restore that is done but warned (no pause command, a part left as it is) is 6.
    let code = match &outcome {
        HostRestoreOutcome::Planned(_) => super::exit::OK,
        HostRestoreOutcome::Restored(report) => super::exit::done(report.warnings.len()),
    };
    match outcome {
        HostRestoreOutcome::Planned(plan) if global.json => json(&serde_json::to_value(&plan)?),
        HostRestoreOutcome::Planned(plan) => {
            println!(
                "would restore snapshot {} ({}) in host mode:",
                &plan.snapshot[..8],
                esc(&plan.time)
            );
            for (i, step) in plan.steps.iter().enumerate() {
                println!("  {}. {}", i + 1, esc(step));
            }
            for w in &plan.warnings {
                println!("warning: {}", esc(w));
            }
            println!("nothing was touched (--dry-run)");
        }
        HostRestoreOutcome::Restored(report) if global.json => {
            json(&serde_json::to_value(&report)?)
        }
        HostRestoreOutcome::Restored(report) => {
            if !global.quiet {
                for w in &report.warnings {
                    eprintln!("warning: {}", esc(w));
                }
                println!(
                    "restored {} of snapshot {}; the stack was paused for {:.1} s and is resumed",
                    esc_join(&report.restored, " + "),
                    &report.snapshot[..8],
                    report.downtime_ms as f64 / 1000.0
                );
            }
        }
    }
    Ok(code)
}

/// What an interrupted restore leaves: the stores as far as it got.
const RESTORE_CUT_SHORT: &str =
    "the restore did not finish, so a store may be partly restored: run the restore again";
