//! `rbk diff A B`: per part, what the second snapshot has that the first has not, and the reverse.

use anyhow::Result;
use clap::Args;

use super::global::GlobalArgs;
use super::output::{bytes, esc, json};
use crate::store::diff::{PartDiff, PartSide, PartStatus, diff};

/// Compare two snapshots part by part: sizes, and chunks added and removed.
///
/// Example: rbk diff 3f9a2c1e latest
#[derive(Args, Debug)]
pub struct DiffArgs {
    /// The older snapshot (a unique id prefix, or `latest`).
    pub a: String,
    /// The newer snapshot (a unique id prefix, or `latest`).
    pub b: String,
}

pub fn run(global: &GlobalArgs, args: &DiffArgs) -> Result<u8> {
    let repo = global.open()?;
    // The shared lock, as check takes: a prune then cannot take away list
    // blobs of the snapshots being compared.
    let _lock = repo.read_lock("diff")?;
    global.warn_if_read_unlocked(&repo);
    let (a_id, a) = repo.find_snapshot(&args.a)?;
    let (b_id, b) = repo.find_snapshot(&args.b)?;
    let parts = diff(&repo, (&a_id, &a), (&b_id, &b))?;
    let sum = |f: fn(&PartDiff) -> u64| parts.iter().map(f).sum::<u64>();
    let (added_chunks, added_bytes) = (sum(|p| p.added_chunks), sum(|p| p.added_bytes));
    let (removed_chunks, removed_bytes) = (sum(|p| p.removed_chunks), sum(|p| p.removed_bytes));
    if global.json {
        json(&serde_json::json!({
            "a": {"id": a_id.to_hex(), "short_id": a_id.short(), "time": a.time},
            "b": {"id": b_id.to_hex(), "short_id": b_id.short(), "time": b.time},
            "parts": parts,
            "added_chunks": added_chunks,
            "added_bytes": added_bytes,
            "removed_chunks": removed_chunks,
            "removed_bytes": removed_bytes,
        }));
        return Ok(super::exit::OK);
    }
    println!(
        "{} ({}) -> {} ({})",
        a_id.short(),
        esc(&crate::store::time::display(&a.time)),
        b_id.short(),
        esc(&crate::store::time::display(&b.time))
    );
    println!(
        "{:<24} {:<9} {:>10} {:>10} {:>22} {:>22}",
        "part", "status", "size a", "size b", "added (chunks)", "removed (chunks)"
    );
    for p in &parts {
        println!(
            "{:<24} {:<9} {:>10} {:>10} {:>22} {:>22}",
            esc(&p.name),
            status(p.status),
            size(p.a),
            size(p.b),
            counted(p.added_bytes, p.added_chunks),
            counted(p.removed_bytes, p.removed_chunks)
        );
    }
    println!(
        "{:<24} {:<9} {:>10} {:>10} {:>22} {:>22}",
        "total",
        "",
        "",
        "",
        counted(added_bytes, added_chunks),
        counted(removed_bytes, removed_chunks)
    );
    Ok(super::exit::OK)
}

fn status(s: PartStatus) -> &'static str {
    match s {
        PartStatus::Unchanged => "unchanged",
        PartStatus::Changed => "changed",
        PartStatus::New => "new",
        PartStatus::Removed => "removed",
    }
}

fn size(side: Option<PartSide>) -> String {
    side.map_or_else(|| "-".into(), |s| bytes(s.bytes))
}

fn counted(b: u64, chunks: u64) -> String {
    format!("{} ({chunks})", bytes(b))
}
