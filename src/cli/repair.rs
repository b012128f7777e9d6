//! `rbk repair index|snapshots`: a way out after a lost pack, a lost index file or a damaged snapshot.

use anyhow::Result;
use clap::{Args, Subcommand};

use super::global::GlobalArgs;
use super::output::{esc, esc_join, json};
use crate::store::check::Problem;
use crate::store::lock::LockKind;
use crate::store::repair::{IndexRepair, SnapshotsRepair, repair_index, repair_snapshots};

/// Repair a damaged repository: rebuild the index from the packs, or drop
/// from snapshots the parts that can no longer be restored.
///
/// Examples:
///   rbk repair index                  # after index files were lost or damaged
///   rbk repair snapshots --dry-run    # which parts of which snapshots are gone
///   rbk repair snapshots              # rewrite them without those parts
#[derive(Args, Debug)]
// Verbatim: clap would otherwise join the example lines into one paragraph.
#[command(
    verbatim_doc_comment,
    about = "Repair a damaged repository: rebuild the index, or drop lost parts from snapshots"
)]
pub struct RepairArgs {
    #[command(subcommand)]
    pub what: RepairCommand,
}

#[derive(Subcommand, Debug)]
pub enum RepairCommand {
    Index(RepairIndexArgs),
    Snapshots(RepairSnapshotsArgs),
}

/// Rebuild the index from the packs' headers (reads no blob data). Takes the
/// exclusive lock: run it while no other rbk runs.
///
/// Example: rbk repair index --dry-run
#[derive(Args, Debug)]
pub struct RepairIndexArgs {
    /// Say what would be indexed; write and remove nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// Drop from each snapshot the parts whose data is gone, writing the snapshot
/// anew (a snapshot with no part left is removed).
///
/// Example: rbk repair snapshots --dry-run
#[derive(Args, Debug)]
pub struct RepairSnapshotsArgs {
    /// Say which parts of which snapshots would be dropped; change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

pub fn run(global: &GlobalArgs, args: &RepairArgs) -> Result<u8> {
    let repo = global.open()?;
    match &args.what {
        RepairCommand::Index(a) => {
            let _lock = repo.lock(true, "repair index")?;
            let report = repair_index(&repo, a.dry_run)?;
            print_index(global, &report);
            Ok(super::exit::done(report.unreadable.len()))
        }
        RepairCommand::Snapshots(a) => {
            // As forget: snapshots may run meanwhile, prunes may not.
            let _lock = repo.lock_kind(LockKind::Prune, "repair snapshots")?;
            let report = repair_snapshots(&repo, a.dry_run)?;
            print_snapshots(global, &report);
            Ok(super::exit::done(report.unreadable.len()))
        }
    }
}

fn print_index(global: &GlobalArgs, r: &IndexRepair) {
    if !begin(global, r, &r.unreadable) {
        return;
    }
    let would = if r.dry_run { "would be " } else { "" };
    println!(
        "{} pack(s) with {} blob(s) {would}indexed ({} in no index before); {} missing pack(s) {would}dropped from the index",
        r.packs, r.blobs, r.packs_added, r.packs_dropped
    );
    println!(
        "{} index file(s) {would}written, {} {would}replaced",
        r.index_files_written, r.index_files_removed
    );
}

fn print_snapshots(global: &GlobalArgs, r: &SnapshotsRepair) {
    if !begin(global, r, &r.unreadable) {
        return;
    }
    let would = if r.dry_run { "would be " } else { "" };
    for s in &r.repaired {
        let short = s.id.get(..8).unwrap_or(&s.id);
        for d in &s.dropped {
            println!(
                "snapshot {short} ({}): part {} {would}dropped ({} blob(s) missing)",
                esc(&s.time),
                esc(&d.name),
                d.missing_blobs
            );
        }
        match (&s.new_id, s.kept.is_empty()) {
            (_, true) => println!("snapshot {short}: no part left, {would}removed"),
            (Some(new), false) => println!(
                "snapshot {short}: rewritten as {} with {}",
                new.get(..8).unwrap_or(new),
                esc_join(&s.kept, ", ")
            ),
            (None, false) => println!("snapshot {short}: would keep {}", esc_join(&s.kept, ", ")),
        }
    }
    println!(
        "{} snapshot(s) checked, {} {would}repaired",
        r.snapshots_checked,
        r.repaired.len()
    );
}

/// The report as JSON, or its warnings on stderr; true when its human lines are to follow.
fn begin(global: &GlobalArgs, report: &impl serde::Serialize, warnings: &[Problem]) -> bool {
    if global.json {
        json(&serde_json::json!(report));
        return false;
    }
    for p in warnings {
        eprintln!("warning: {}: {}", esc(&p.file), esc(&p.detail));
    }
    !global.quiet
}
