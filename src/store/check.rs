//! `check`: prove the repository is whole, and with `read_data`, that every byte is intact.

use std::collections::{HashMap, HashSet};

use rayon::prelude::*;
use serde::Serialize;

use super::error::StoreError;
use super::format::FileKind;
use super::id::Id;
use super::index::{IndexBuilder, IndexFile};
use super::keys::KeyFile;
use super::lock::list_locks;
use super::manifest::decode_list;
use super::pack::{PackedBlob, header_of_bytes, read_header};
use super::prune::read_record;
use super::repo::Repository;
use crate::progress::Unit;

/// One finding, naming the file it is about.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Problem {
    pub file: String,
    pub detail: String,
}

#[derive(Debug, Default, Serialize)]
pub struct CheckReport {
    /// Damage: data that is wrong or missing.
    pub errors: Vec<Problem>,
    /// Not damage, but worth knowing (packs left by an interrupted snapshot).
    pub warnings: Vec<Problem>,
    pub snapshots: usize,
    pub packs: usize,
    /// Packs out of the index that prune deletes once no process needs them.
    pub pending_deletion: usize,
    pub blobs: usize,
    pub bytes_read: u64,
}

impl CheckReport {
    fn error(&mut self, file: impl Into<String>, detail: impl Into<String>) {
        self.errors.push(Problem {
            file: file.into(),
            detail: detail.into(),
        });
    }

    fn record(&mut self, e: StoreError) {
        match e {
            StoreError::Damaged { file, detail } => self.error(file, detail),
            StoreError::MissingBlob { blob, needed_by } => self.error(
                format!("blob {blob}"),
                format!("missing (needed by {needed_by})"),
            ),
            other => self.error("repository", other.to_string()),
        }
    }
}

/// Checks structure always, and every pack's bytes when `read_data` is set.
/// Only an error that stops the check itself (the repository cannot be
/// listed) is returned as `Err`; damage goes into the report.
pub fn check(repo: &Repository, read_data: bool) -> Result<CheckReport, StoreError> {
    let mut report = CheckReport::default();
    let backend = repo.backend();

    for name in backend.list(FileKind::Key)? {
        match backend
            .read(FileKind::Key, &name)
            .and_then(|b| KeyFile::decode(&name, &b))
        {
            // Not damage: such a key opens this repository no worse than before (altered
            // metadata), or not at all (another master key's: an interrupted init, or planted).
            Ok(key) if repo.key_metadata_verified(&key) == Some(false) => report.warnings.push(Problem {
                file: FileKind::Key.path_of(&name),
                detail: "its host and creation time do not authenticate under this repository's master key: \
                         the file was altered, or it wraps another master key (left by an interrupted init, or planted) \
                         and opens nothing here; `rbk key remove` removes it".into(),
            }),
            Ok(_) => {}
            Err(e) => report.record(e),
        }
    }

    // Snapshots before the index: a snapshot's index file is durable before
    // its manifest, so a snapshot committed while this check runs is either
    // not seen at all or seen with its blobs indexed, never half.
    let snapshots = repo.snapshots()?;

    let mut index_files: Vec<IndexFile> = Vec::new();
    for (_, file) in repo.index_files()? {
        match file {
            Ok(f) => index_files.push(f),
            Err(e) => report.record(e),
        }
    }
    let mut indexed: HashMap<Id, Vec<PackedBlob>> = HashMap::new();
    for f in &index_files {
        for p in &f.packs {
            indexed
                .entry(p.id)
                .or_default()
                .extend(p.blobs.iter().copied());
        }
    }

    // Listed after the index was read: a pack a writer indexed is in it.
    // With their sizes, from the one listing: a request per pack would cost an object store.
    let on_disk: HashMap<String, u64> = backend.list_sized(FileKind::Pack)?.into_iter().collect();
    // The index as a restore sees it: only blobs in packs that exist.
    let index = {
        let mut builder = IndexBuilder::default();
        for f in &index_files {
            builder.add(f);
        }
        let present: HashSet<Id> = on_disk.keys().filter_map(|n| Id::from_hex(n)).collect();
        builder.finish_available(&present)
    };
    drop(index_files);
    report.packs = on_disk.len();
    report.blobs = index.len();
    // Known sizes, so that reading every pack can show an ETA.
    let mut pack_bytes = 0u64;
    for (pack, blobs) in &indexed {
        let name = pack.to_hex();
        let Some(&size) = on_disk.get(&name) else {
            report.error(
                FileKind::Pack.path_of(&name),
                "listed in the index but missing",
            );
            continue;
        };
        let end = blobs
            .iter()
            .map(|b| b.offset as u64 + b.length as u64)
            .max()
            .unwrap_or(0);
        if size < end {
            report.error(
                FileKind::Pack.path_of(&name),
                format!("{size} bytes, but the index places blobs up to byte {end} (truncated)"),
            );
        } else {
            pack_bytes += size;
        }
    }
    // Packs prune took out of the index and will delete once no process of
    // its time can need them: expected, not a finding.
    let mut pending: HashSet<Id> = HashSet::new();
    for name in backend.list(FileKind::Deletion)? {
        match read_record(repo, &name) {
            Ok(r) => pending.extend(r.packs),
            Err(e) if e.is_not_found() => {}
            Err(e) => report.warnings.push(Problem {
                file: FileKind::Deletion.path_of(&name),
                detail: format!("unreadable ({e}); the next prune deletes its packs again"),
            }),
        }
    }
    // Packs in no index: left by an interrupted snapshot, unless snapshots
    // need their blobs (an index file was lost), which is decided below.
    let mut orphans: Vec<String> = Vec::new();
    for name in on_disk.keys() {
        let id = Id::from_hex(name);
        if id.is_some_and(|id| pending.contains(&id) && !indexed.contains_key(&id)) {
            report.pending_deletion += 1;
            continue;
        }
        if !id.is_some_and(|id| indexed.contains_key(&id)) {
            orphans.push(name.clone());
        }
    }
    orphans.sort();

    // Blobs a snapshot needs that no pack on disk holds by the index
    // (snapshot, part, blob): confirmed by a second look before they are reported.
    let mut unindexed: Vec<(Id, String, Id)> = Vec::new();
    let task = repo
        .progress()
        .task("snapshots", Unit::Items, Some(snapshots.len() as u64));
    for (id, snapshot) in snapshots {
        task.advance(1);
        report.snapshots += 1;
        let snapshot = match snapshot {
            Ok(s) => s,
            Err(e) => {
                report.record(e);
                continue;
            }
        };
        for part in &snapshot.parts {
            let what = format!("snapshot {} part {}", id.short(), part.name);
            let mut chunks = 0u64;
            let mut size = 0u64;
            let mut complete = true;
            for list in &part.stored.lists {
                if !index.contains(list) {
                    unindexed.push((id, part.name.clone(), *list));
                    complete = false;
                    continue;
                }
                // List blobs are small; reading them proves every chunk a
                // snapshot needs is indexed without reading the chunks.
                match repo.read_blob(&index, list, &what) {
                    Ok(bytes) => match decode_list(&bytes) {
                        Ok(entries) => {
                            for (chunk, len) in entries {
                                chunks += 1;
                                size += len as u64;
                                if !index.contains(&chunk) {
                                    unindexed.push((id, part.name.clone(), chunk));
                                }
                            }
                        }
                        Err(d) => {
                            report.error(format!("list blob {list}"), d);
                            complete = false;
                        }
                    },
                    Err(e) => {
                        report.record(e);
                        complete = false;
                    }
                }
            }
            if complete && (chunks != part.stored.chunks || size != part.stored.size) {
                report.error(
                    FileKind::Snapshot.path_of(&id.to_hex()),
                    format!(
                        "part {} lists {chunks} chunks of {size} bytes, the manifest says {} of {}",
                        part.name, part.stored.chunks, part.stored.size
                    ),
                );
            }
        }
    }
    drop(task);

    for t in backend.temp_files()? {
        report.warnings.push(Problem {
            file: t.path,
            detail: format!("{}-byte temporary file: a write in progress, or left by an interrupted one (harmless; prune removes old ones)", t.size),
        });
    }

    for stray in backend.strays()? {
        report.warnings.push(Problem {
            file: stray,
            detail: "not a regular file (a link, a FIFO, a device or a folder), which rbk never writes here: ignored by every command; remove it".into(),
        });
    }

    // Evidence of past verifications, which no restore needs: one that cannot be read is
    // not damage to any backup, only a proof lost.
    for (id, record) in repo.verifications()? {
        let why = match record {
            Ok(_) => continue,
            Err(e @ StoreError::UnsupportedVersion { .. }) => format!("{e}; a newer rbk reads it"),
            Err(e) if e.is_damage() => format!(
                "unreadable ({e}); it only recorded a verification, which no backup needs: the next prune removes it"
            ),
            Err(e) => {
                format!("unreadable ({e}); it only recorded a verification, which no backup needs")
            }
        };
        report.warnings.push(Problem {
            file: FileKind::Verification.path_of(&id.to_hex()),
            detail: why,
        });
    }

    for (id, record) in repo.check_records()? {
        let why = match record {
            Ok(_) => continue,
            Err(e @ StoreError::UnsupportedVersion { .. }) => format!("{e}; a newer rbk reads it"),
            Err(e) if e.is_damage() => format!(
                "unreadable ({e}); it only recorded an earlier check, which no backup needs: the next prune removes it"
            ),
            Err(e) => format!("unreadable ({e}); it only recorded an earlier check"),
        };
        report.warnings.push(Problem {
            file: FileKind::CheckRecord.path_of(&id.to_hex()),
            detail: why,
        });
    }

    for (name, lock) in list_locks(backend.as_ref(), repo.crypto())? {
        if let Err(e) = lock {
            report.warnings.push(Problem {
                file: FileKind::Lock.path_of(&name),
                detail: format!("unreadable ({e}); `rbk unlock` removes it"),
            });
        }
    }

    let missing = confirm_missing(repo, unindexed)?;
    // Where the missing blobs are: a pack no index lists (its index file was
    // lost or replaced) is found by reading the headers of the packs in no
    // index, which reads no blob data.
    let needed: HashSet<Id> = missing.iter().map(|(_, _, b)| *b).collect();
    let mut found_in: HashMap<Id, String> = HashMap::new();
    for name in &orphans {
        let holds_needed = !needed.is_empty()
            && match read_header(backend.as_ref(), repo.crypto(), name) {
                Ok(blobs) => {
                    let mut any = false;
                    for b in blobs.iter().filter(|b| needed.contains(&b.id)) {
                        found_in.insert(b.id, FileKind::Pack.path_of(name));
                        any = true;
                    }
                    any
                }
                Err(e) if e.is_not_found() => continue, // deleted by a prune meanwhile
                Err(e) => {
                    report.record(e);
                    false
                }
            };
        if holds_needed {
            report.error(
                FileKind::Pack.path_of(name),
                "in no index, but snapshots need its blobs (an index file was lost or replaced): run `rbk repair index`",
            );
        } else {
            report.warnings.push(Problem {
                file: FileKind::Pack.path_of(name),
                detail: "in no index (left by an interrupted snapshot); not used by any snapshot"
                    .into(),
            });
        }
    }
    report_missing(&mut report, &index, &missing, &found_in);

    if read_data {
        let mut names: Vec<&String> = on_disk.keys().collect();
        names.sort();
        let task = repo
            .progress()
            .task("read packs", Unit::Bytes, Some(pack_bytes));
        let results: Vec<(u64, Vec<Problem>)> = names
            .par_iter()
            .map(|name| {
                let read = read_pack(
                    repo,
                    name,
                    Id::from_hex(name).and_then(|id| indexed.get(&id)),
                );
                task.advance(read.0);
                read
            })
            .collect();
        drop(task);
        for (bytes, problems) in results {
            report.bytes_read += bytes;
            report.errors.extend(problems);
        }
    }
    report.errors.sort_by(|a, b| a.file.cmp(&b.file));
    report.errors.dedup();
    Ok(report)
}

/// The missing blobs that are still missing at a second look: a prune
/// running meanwhile may have forgotten the snapshot, or replaced index
/// files that a snapshot committed meanwhile is being re-indexed into. A
/// damaged index file (already reported) leaves the first look standing.
fn confirm_missing(
    repo: &Repository,
    unindexed: Vec<(Id, String, Id)>,
) -> Result<Vec<(Id, String, Id)>, StoreError> {
    if unindexed.is_empty() {
        return Ok(unindexed);
    }
    let fresh = repo.load_index().ok();
    let listed: HashSet<String> = repo
        .backend()
        .list(FileKind::Snapshot)?
        .into_iter()
        .collect();
    Ok(unindexed
        .into_iter()
        .filter(|(snap, _, blob)| {
            listed.contains(&snap.to_hex()) && fresh.as_ref().is_none_or(|f| !f.contains(blob))
        })
        .collect())
}

/// Blob lines reported one by one; the rest are counted per snapshot part.
const BLOBS_LISTED: usize = 20;

/// One error per snapshot part that cannot be restored, saying where its
/// missing blobs went and what to run; and the first few blobs by id.
fn report_missing(
    report: &mut CheckReport,
    index: &super::index::Index,
    missing: &[(Id, String, Id)],
    found_in: &HashMap<Id, String>,
) {
    let mut parts: Vec<(&Id, &String)> = missing.iter().map(|(s, p, _)| (s, p)).collect();
    parts.sort();
    parts.dedup();
    for (snap, part) in parts {
        let blobs: HashSet<&Id> = missing
            .iter()
            .filter(|(s, p, _)| s == snap && p == part)
            .map(|(_, _, b)| b)
            .collect();
        let lost = blobs
            .iter()
            .filter(|b| index.lost_pack_of(b).is_some())
            .count();
        let unlisted = blobs.iter().filter(|b| found_in.contains_key(b)).count();
        let nowhere = blobs.len() - lost - unlisted;
        let mut whys = Vec::new();
        if lost > 0 {
            whys.push(format!("{lost} in packs that are gone"));
        }
        if unlisted > 0 {
            whys.push(format!("{unlisted} in packs no index lists"));
        }
        if nowhere > 0 {
            whys.push(format!("{nowhere} in no index and no pack"));
        }
        let hint = if unlisted > 0 {
            "run `rbk repair index`, then check again"
        } else {
            "`rbk repair snapshots` drops what cannot be restored; the next snapshot stores the data again"
        };
        report.error(
            FileKind::Snapshot.path_of(&snap.to_hex()),
            format!(
                "part {part} cannot be restored: {} blob(s) missing ({}); {hint}",
                blobs.len(),
                whys.join(", ")
            ),
        );
    }
    for (snap, part, blob) in missing.iter().take(BLOBS_LISTED) {
        let place = match (index.lost_pack_of(blob), found_in.get(blob)) {
            (Some(pack), _) => format!(
                "; its pack {} is gone",
                FileKind::Pack.path_of(&pack.to_hex())
            ),
            (None, Some(pack)) => format!("; it is in {pack}, which no index lists"),
            (None, None) => String::new(),
        };
        report.error(
            format!("blob {blob}"),
            format!(
                "missing (needed by snapshot {} part {part}){place}",
                snap.short()
            ),
        );
    }
}

/// Reads one pack whole: its hash, its header, every blob, and agreement with the index.
fn read_pack(
    repo: &Repository,
    name: &str,
    indexed: Option<&Vec<PackedBlob>>,
) -> (u64, Vec<Problem>) {
    let file = FileKind::Pack.path_of(name);
    let mut problems = Vec::new();
    let mut problem = |detail: String| {
        problems.push(Problem {
            file: file.clone(),
            detail,
        })
    };
    let bytes = match repo
        .check_pack_len(name)
        .and_then(|()| repo.backend().read(FileKind::Pack, name))
    {
        Ok(b) => b,
        // Listed, then deleted by a prune before this read: it was in no
        // index (or check would be holding a lock prune waits for).
        Err(e) if e.is_not_found() && indexed.is_none() => return (0, problems),
        Err(e) => {
            problem(e.to_string());
            return (0, problems);
        }
    };
    let len = bytes.len() as u64;
    if Id::of_file(&bytes).to_hex() != name {
        problem("content does not match its name (modified, truncated or replaced)".into());
    }
    let codec = repo.blob_codec();
    let header = header_of_bytes(repo.crypto(), name, &bytes);
    // The index is what restore uses, so verify the blobs where the index
    // says they are; fall back to the header for packs no index lists.
    let blobs: Vec<PackedBlob> = match (indexed, &header) {
        (Some(listed), _) => listed.clone(),
        (None, Ok(h)) => h.clone(),
        (None, Err(_)) => Vec::new(),
    };
    match &header {
        Ok(h) => {
            if let Some(listed) = indexed {
                let h: HashSet<&PackedBlob> = h.iter().collect();
                if listed.iter().any(|b| !h.contains(b)) {
                    problem("its header disagrees with the index".into());
                }
            }
        }
        Err(e) => problem(format!("header: {e}")),
    }
    for b in blobs {
        let end = b.offset as usize + b.length as usize;
        match bytes.get(b.offset as usize..end) {
            Some(sealed) => {
                if let Err(d) = codec.open(&b.id, sealed) {
                    problem(format!("blob {}: {d}", b.id));
                }
            }
            None => problem(format!("blob {} lies beyond the end of the file", b.id)),
        }
    }
    (len, problems)
}
