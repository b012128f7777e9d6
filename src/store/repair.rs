//! `repair`: give a damaged repository back what can still be had: an index rebuilt from the packs, snapshots without the parts that are gone.
//!
//! Both repairs read no blob data: `index` reads each pack's header (its last
//! bytes), `snapshots` reads list blobs. Both plan first and change nothing
//! in a dry run, and both write what is new before removing what it replaces,
//! so an interruption leaves the repository no worse than before.

use std::collections::{HashMap, HashSet};

use rayon::prelude::*;
use serde::Serialize;

use super::check::Problem;
use super::error::Result;
use super::format::FileKind;
use super::id::Id;
use super::index::{INDEX_VERSION, Index, IndexFile, IndexedPack};
use super::manifest::{Part, Snapshot, decode_list};
use super::pack::read_header;
use super::repo::Repository;
use crate::progress::Unit;

/// Labels a rewritten snapshot carries, so that it tells what it was made from.
pub const LABEL_REPAIRED_FROM: &str = "rbk.repaired_from";
pub const LABEL_DROPPED_PARTS: &str = "rbk.dropped_parts";

#[derive(Debug, Default, Clone, Serialize)]
pub struct IndexRepair {
    pub dry_run: bool,
    /// Packs whose header was read and indexed.
    pub packs: usize,
    pub blobs: usize,
    /// Indexed now, in no index before (their index file was lost).
    pub packs_added: usize,
    /// In an index before, but not on disk: no longer listed.
    pub packs_dropped: usize,
    /// Packs whose header cannot be read: left in place, not indexed.
    pub unreadable: Vec<Problem>,
    pub index_files_written: usize,
    pub index_files_removed: usize,
}

/// Rebuilds the index from the headers of the packs on disk: every index
/// file is replaced. The caller holds the exclusive lock (nothing else may
/// write an index file meanwhile). Damaged index files are replaced too:
/// that is one reason to run it.
pub fn repair_index(repo: &Repository, dry_run: bool) -> Result<IndexRepair> {
    let backend = repo.backend();
    let old_files = backend.list(FileKind::Index)?;
    let mut before: HashSet<Id> = HashSet::new();
    let mut damaged_files = 0;
    for name in &old_files {
        match repo.read_index_file(name) {
            Ok(file) => before.extend(file.packs.iter().map(|p| p.id)),
            Err(_) => damaged_files += 1,
        }
    }
    let mut names = backend.list(FileKind::Pack)?;
    names.sort();
    let task = repo
        .progress()
        .task("read pack headers", Unit::Items, Some(names.len() as u64));
    // Headers are small reads; in parallel, a NAS's latency overlaps.
    let read: Vec<(String, Result<Vec<super::pack::PackedBlob>>)> = names
        .into_par_iter()
        .map(|name| {
            let header = read_header(backend.as_ref(), repo.crypto(), &name);
            task.advance(1);
            (name, header)
        })
        .collect();
    drop(task);
    let mut report = IndexRepair {
        dry_run,
        ..IndexRepair::default()
    };
    let mut packs = Vec::new();
    for (name, header) in read {
        let id = match Id::from_hex(&name) {
            Some(id) => id,
            None => continue,
        };
        match header {
            Ok(blobs) => {
                report.blobs += blobs.len();
                if !before.contains(&id) {
                    report.packs_added += 1;
                }
                packs.push(IndexedPack { id, blobs });
            }
            Err(e) => report.unreadable.push(Problem {
                file: FileKind::Pack.path_of(&name),
                detail: format!("{e}; its blobs cannot be indexed, it is left in place"),
            }),
        }
    }
    report.packs = packs.len();
    let found: HashSet<Id> = packs.iter().map(|p| p.id).collect();
    report.packs_dropped = before.difference(&found).count();
    if report.packs_added == 0 && report.packs_dropped == 0 && damaged_files == 0 {
        return Ok(report); // the index already lists exactly the packs there are
    }
    if dry_run {
        report.index_files_written = IndexFile::split(packs).len();
        report.index_files_removed = old_files.len();
        return Ok(report);
    }
    // New files first: until the old ones go, blobs are listed twice, which readers allow.
    let mut written = HashSet::new();
    for file in IndexFile::split(packs) {
        let id = repo.write_sealed(FileKind::Index, INDEX_VERSION, &file)?;
        written.insert(id.to_hex());
        report.index_files_written += 1;
    }
    repo.verify_locks()?;
    for name in old_files.iter().filter(|n| !written.contains(*n)) {
        backend.remove(FileKind::Index, name)?;
        report.index_files_removed += 1;
    }
    Ok(report)
}

/// What `repair snapshots` does to one snapshot.
#[derive(Debug, Clone, Serialize)]
pub struct SnapshotRepair {
    pub id: String,
    pub time: String,
    /// Parts that cannot be restored, with why.
    pub dropped: Vec<DroppedPart>,
    pub kept: Vec<String>,
    /// The snapshot written in its place; `None` when no part is left (it is
    /// only removed), and in a dry run.
    pub new_id: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DroppedPart {
    pub name: String,
    /// Chunks and list blobs that no pack on disk holds.
    pub missing_blobs: u64,
}

#[derive(Debug, Default, Clone, Serialize)]
pub struct SnapshotsRepair {
    pub dry_run: bool,
    pub snapshots_checked: usize,
    /// Snapshots that lose parts (rewritten) or every part (removed).
    pub repaired: Vec<SnapshotRepair>,
    /// Snapshot files that cannot be read: `rbk forget ID` removes them.
    pub unreadable: Vec<Problem>,
}

/// Drops from every snapshot the parts whose blobs no pack on disk holds
/// (by the index; run `repair_index` first if an index file was lost),
/// writing each changed snapshot anew and then removing the old one; a
/// snapshot left with no part is removed. The caller holds a prune lock
/// (no prune may drop blobs meanwhile; snapshots may run).
pub fn repair_snapshots(repo: &Repository, dry_run: bool) -> Result<SnapshotsRepair> {
    let snapshots = repo.snapshots()?;
    let index = repo.load_index()?;
    let mut report = SnapshotsRepair {
        dry_run,
        ..SnapshotsRepair::default()
    };
    let task = repo
        .progress()
        .task("snapshots", Unit::Items, Some(snapshots.len() as u64));
    let mut lists_seen: HashMap<Id, u64> = HashMap::new();
    for (id, snapshot) in snapshots {
        task.advance(1);
        report.snapshots_checked += 1;
        let snapshot = match snapshot {
            Ok(s) => s,
            Err(e) => {
                report.unreadable.push(Problem {
                    file: FileKind::Snapshot.path_of(&id.to_hex()),
                    detail: format!("{e}; `rbk forget {}` removes it", id.short()),
                });
                continue;
            }
        };
        let mut dropped = Vec::new();
        let mut kept = Vec::new();
        for part in &snapshot.parts {
            match missing_blobs(repo, &index, part, &mut lists_seen)? {
                0 => kept.push(part.clone()),
                n => dropped.push(DroppedPart {
                    name: part.name.clone(),
                    missing_blobs: n,
                }),
            }
        }
        if dropped.is_empty() {
            continue;
        }
        let mut repair = SnapshotRepair {
            id: id.to_hex(),
            time: snapshot.time.clone(),
            kept: kept.iter().map(|p| p.name.clone()).collect(),
            dropped,
            new_id: None,
        };
        if !dry_run {
            if !kept.is_empty() {
                let new = repaired(&snapshot, &id, kept, &repair.dropped);
                repo.verify_locks()?;
                repair.new_id = Some(repo.save_snapshot(&new)?.to_hex());
            }
            repo.verify_locks()?;
            repo.backend().remove(FileKind::Snapshot, &id.to_hex())?;
        }
        report.repaired.push(repair);
    }
    Ok(report)
}

/// Blobs of `part` (its list blobs, and the chunks of the lists that can be
/// read) that no pack on disk holds. A list blob that cannot be read counts
/// as one missing blob: its chunks are unknown. `lists_seen` remembers the
/// answer per list blob, since unchanged parts of many snapshots share them.
fn missing_blobs(
    repo: &Repository,
    index: &Index,
    part: &Part,
    lists_seen: &mut HashMap<Id, u64>,
) -> Result<u64> {
    let mut missing = 0;
    for list in &part.stored.lists {
        if let Some(n) = lists_seen.get(list) {
            missing += n;
            continue;
        }
        let n = if !index.contains(list) {
            1
        } else {
            match repo.read_blob(index, list, &part.name) {
                Ok(bytes) => match decode_list(&bytes) {
                    Ok(entries) => entries
                        .iter()
                        .filter(|(chunk, _)| !index.contains(chunk))
                        .count() as u64,
                    Err(_) => 1,
                },
                // A damaged list blob: the part cannot be restored either.
                Err(e) if e.is_damage() => 1,
                Err(e) => return Err(e),
            }
        };
        lists_seen.insert(*list, n);
        missing += n;
    }
    Ok(missing)
}

/// `snapshot` with only the `kept` parts, saying what it was made from.
fn repaired(snapshot: &Snapshot, id: &Id, kept: Vec<Part>, dropped: &[DroppedPart]) -> Snapshot {
    let mut new = snapshot.clone();
    new.stats.bytes_read = kept.iter().map(|p| p.source_size).sum();
    new.parts = kept;
    new.labels
        .retain(|(k, _)| k != LABEL_REPAIRED_FROM && k != LABEL_DROPPED_PARTS);
    new.labels
        .push((LABEL_REPAIRED_FROM.to_string(), id.to_hex()));
    new.labels.push((
        LABEL_DROPPED_PARTS.to_string(),
        dropped
            .iter()
            .map(|d| d.name.as_str())
            .collect::<Vec<_>>()
            .join(","),
    ));
    new
}
