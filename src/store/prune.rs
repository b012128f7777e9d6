//! Prune: reclaim the space that no snapshot needs, while snapshots keep running.
//!
//! Prune holds a prune lock, which excludes other prunes but not snapshots,
//! restores or checks. It never deletes a pack that one of them might use:
//!
//! 1. It writes a new index without the packs it wants gone (copying the
//!    live blobs of mostly-garbage packs into new packs first), and only
//!    then removes the index files it replaced.
//! 2. It lists the locks held at that moment and writes a deletion record:
//!    these packs, waiting for those lock holders.
//! 3. It deletes the packs once every holder it waited for has released its
//!    lock (or the lock went stale): at once if there were none, otherwise
//!    at the start of a later prune. A holder that started after step 1 can
//!    only have loaded the new index, so it cannot use those packs.
//! 4. Before deleting, any pack that is indexed again is kept: a snapshot
//!    that deduplicated against the old index re-indexes what it used when
//!    it commits (`SnapshotWriter::reconcile`), and prune itself re-indexes
//!    what snapshots committed during its run refer to.
//!
//! docs/FORMAT.md ("Prune and concurrent writers") states the argument.

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::error::{Result, StoreError};
use super::format::{FileKind, open_file};
use super::id::Id;
use super::index::{INDEX_VERSION, Index, IndexBuilder, IndexFile, IndexedPack};
use super::lock::{LockGuard, LockHolder, list_locks, unreadable_may_be_held};
use super::manifest::Snapshot;
use super::pack::{PackBuilder, PackedBlob, read_header};
use super::repo::Repository;
use super::time::now_unix;
use crate::progress::Unit;

pub const DELETION_VERSION: u16 = 1;
/// Temporary files older than this are left by a crash, not a write in progress.
const TEMP_MAX_AGE_SECS: u64 = 24 * 60 * 60;

/// `deletions/<id>`: packs taken out of the index, and whom their deletion waits for.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct DeletionRecord {
    /// Unix seconds.
    pub created: i64,
    pub packs: Vec<Id>,
    /// Lock holders at the moment the new index became the only one.
    pub waiting_for: Vec<LockHolder>,
}

#[derive(Debug, Clone)]
pub struct PruneOptions {
    /// Unused bytes tolerated in packs after prune, as a share of the
    /// repository (0.0..=1.0; 1.0 means never repack). As restic's
    /// `--max-unused`: a whole-repository budget, not a per-pack threshold,
    /// so scattered garbage does not rewrite the whole repository each run.
    pub max_unused: f64,
    /// Plan only: read everything, write and delete nothing.
    pub dry_run: bool,
    /// Snapshots to count as already forgotten (a dry run of forget + prune).
    pub assume_forgotten: HashSet<Id>,
}

impl Default for PruneOptions {
    fn default() -> Self {
        PruneOptions {
            max_unused: 0.05,
            dry_run: false,
            assume_forgotten: HashSet::new(),
        }
    }
}

#[derive(Debug, Default, Clone, Serialize)]
pub struct PruneReport {
    pub dry_run: bool,
    pub snapshots: usize,
    pub packs_before: usize,
    pub bytes_before: u64,
    /// Blobs (chunks and lists) the remaining snapshots refer to.
    pub blobs_used: usize,
    /// Packs taken out of the index by this run (wholly unused, repacked, or in no index).
    pub packs_condemned: usize,
    pub packs_repacked: usize,
    /// Live bytes copied into new packs.
    pub bytes_repacked: u64,
    /// Size of the new packs (so `bytes_freed - bytes_written` is the net gain).
    pub bytes_written: u64,
    pub packs_written: usize,
    pub packs_deleted: usize,
    pub bytes_freed: u64,
    /// Condemned packs whose deletion waits for other processes' locks.
    pub packs_waiting: usize,
    pub waiting_for: Vec<String>,
    /// Packs put back into the index because a snapshot committed meanwhile uses them.
    pub packs_rescued: usize,
    /// Unused bytes left in packs below the repack threshold.
    pub unused_bytes_kept: u64,
    pub index_files_written: usize,
    pub index_files_removed: usize,
    pub temp_files_removed: usize,
    /// Verification records removed (or that would be): of snapshots that are gone, or damaged.
    pub verifications_removed: usize,
    /// Check records removed (or that would be): damaged, or older than the newest
    /// `check_record::KEPT_PER_SCOPE` of their scope.
    pub check_records_removed: usize,
    pub duration_ms: u64,
}

/// Removes snapshot files (the manifests only; `prune` reclaims their data), then the
/// verification records of snapshots that no longer exist; returns how many records went.
/// The caller holds a prune lock.
pub fn forget(repo: &Repository, ids: &[Id]) -> Result<usize> {
    for id in ids {
        repo.backend().remove(FileKind::Snapshot, &id.to_hex())?;
    }
    // After the snapshots: a record is never needed, and one left by a crash in between is
    // an orphan the next prune removes.
    repo.remove_orphaned_verifications()
}

/// Reclaims space. The caller holds `lock`, a prune lock.
pub fn prune(repo: &Repository, lock: &LockGuard, options: &PruneOptions) -> Result<PruneReport> {
    let started = Instant::now();
    let mut report = PruneReport {
        dry_run: options.dry_run,
        ..PruneReport::default()
    };
    let me = lock.held().holder().clone();
    let backend = repo.backend().as_ref();

    // Which earlier deletions no process of their time can still need.
    let holders = live_holders(repo, &me)?;
    let mut records = read_records(repo)?;
    let (ready, waiting): (Vec<_>, Vec<_>) = records
        .drain(..)
        .partition(|(_, r)| r.waiting_for.iter().all(|h| !holders.contains(h)));

    // Verification records, read before the snapshots are listed: a record is written
    // after its snapshot, so every record read here is about a snapshot listed next,
    // unless that snapshot was forgotten.
    let subjects = repo.verification_subjects()?;

    // What the snapshots need. A blob missing from the index may sit in a
    // pack an earlier prune condemned, if its snapshot committed during that
    // prune and re-indexing was cut short: put such packs back first.
    let mut state = State::load(repo, &options.assume_forgotten)?;
    report.snapshots = state.snapshots.len();
    if !state.missing.is_empty() {
        // Candidates: packs in records, and packs on disk in no index at all
        // (a prune killed after replacing index files but before its record,
        // or an index file lost or replaced by hand).
        let indexed: HashSet<Id> = state.index.packs().iter().copied().collect();
        let mut candidates: Vec<Id> = ready
            .iter()
            .chain(waiting.iter())
            .flat_map(|(_, r)| r.packs.iter().copied())
            .chain(state.present.iter().copied())
            .filter(|p| !indexed.contains(p) && state.present.contains(p))
            .collect();
        candidates.sort();
        candidates.dedup();
        let missing: HashSet<Id> = state.missing.keys().copied().collect();
        let file = rescue(repo, &missing, &candidates)?;
        if !file.packs.is_empty() {
            report.packs_rescued += file.packs.len();
            // A dry run plans with the file it would write, so that it
            // promises exactly what the real run does.
            let name = if options.dry_run {
                "(planned by --dry-run)".to_string()
            } else {
                repo.write_sealed(FileKind::Index, INDEX_VERSION, &file)?
                    .to_hex()
            };
            state.add_index_file(repo, name, file)?;
        }
        if let Some((blob, snapshot)) = state.missing.iter().min() {
            return Err(StoreError::MissingBlob {
                blob: blob.to_hex(),
                needed_by: format!(
                    "snapshot {} and maybe others, and no pack holds it; prune stops: run `rbk check`, then `rbk repair index` or `rbk repair snapshots`",
                    snapshot.short()
                ),
            });
        }
    }

    // Finish the deletions that are ready. Only while our own lock still
    // holds: a prune that slept past it may be working from a stale view.
    repo.verify_locks()?;
    let indexed_packs: HashSet<Id> = state.index.packs().iter().copied().collect();
    for (name, record) in &ready {
        for pack in &record.packs {
            if indexed_packs.contains(pack) {
                continue; // re-indexed: a snapshot uses it after all
            }
            delete_pack(repo, pack, options.dry_run, &mut report)?;
        }
        if !options.dry_run {
            backend.remove(FileKind::Deletion, name)?;
        }
    }
    // Records of snapshots that are gone (or, in a dry run, would be), and records that
    // cannot be read: no restore needs either.
    let stale = subjects.stale(|s| state.snapshots.contains(s));
    report.verifications_removed = stale.orphaned.len() + stale.damaged.len();
    if !options.dry_run {
        repo.remove_verifications(&stale.orphaned)?;
        repo.remove_verifications(&stale.damaged)?;
    }
    // Check records concern no snapshot: only their number is bounded.
    let surplus = repo.surplus_check_records()?;
    report.check_records_removed = surplus.len();
    if !options.dry_run {
        repo.remove_check_records(&surplus)?;
    }
    let mut pending: HashSet<Id> = waiting
        .iter()
        .flat_map(|(_, r)| r.packs.iter().copied())
        .collect();
    report.packs_waiting = pending.len();
    if options.dry_run {
        // Still on disk, since a dry run deletes nothing: not orphans.
        pending.extend(ready.iter().flat_map(|(_, r)| r.packs.iter().copied()));
    }

    // Listed before the locks are, so that any pack being written now
    // belongs to a writer whose lock the new record will wait for.
    let on_disk = repo.packs_on_disk()?;

    let plan = Plan::make(repo, &state, &on_disk, &pending, options.max_unused)?;
    report.packs_before = plan.sizes.len();
    report.bytes_before = plan.sizes.values().sum();
    report.blobs_used = state.used.len();
    report.unused_bytes_kept = plan.unused_kept;
    report.packs_condemned = plan.condemned.len() + plan.repack.len();
    report.packs_repacked = plan.repack.len();
    report.bytes_repacked = plan.repack.iter().map(|(_, live)| live_bytes(live)).sum();

    if options.dry_run {
        // What the run would write and delete, if no other process held a lock.
        report.bytes_written = report.bytes_repacked;
        for p in plan
            .condemned
            .iter()
            .chain(plan.repack.iter().map(|(p, _)| p))
            // A pack that is already gone is only taken out of the index.
            .filter(|p| on_disk.contains(p))
        {
            report.packs_deleted += 1;
            report.bytes_freed += plan.sizes.get(p).copied().unwrap_or(0);
        }
    }
    if options.dry_run || (plan.condemned.is_empty() && plan.repack.is_empty()) {
        if !options.dry_run {
            report.temp_files_removed = remove_old_temp_files(repo)?;
        }
        report.waiting_for = describe_waiting(repo, &waiting)?;
        report.duration_ms = started.elapsed().as_millis() as u64;
        return Ok(report);
    }

    // Copy the live blobs of the packs to repack into new packs.
    let to_read = plan
        .repack
        .iter()
        .map(|(p, _)| plan.sizes.get(p).copied().unwrap_or(0))
        .sum();
    let (new_packs, written) = repack(repo, &plan.repack, to_read)?;
    report.packs_written = new_packs.len();
    report.bytes_written = written;

    repo.verify_locks()?;
    // The new index: the untouched files stay; the files that list a
    // condemned or repacked pack are replaced by one set of new files.
    let mut gone: HashSet<Id> = plan.condemned.iter().copied().collect();
    gone.extend(plan.repack.iter().map(|(p, _)| *p));
    let mut replaced = Vec::new();
    let mut kept_packs: Vec<IndexedPack> = Vec::new();
    for (name, file) in &state.index_files {
        if !file.packs.iter().any(|p| gone.contains(&p.id)) {
            continue;
        }
        replaced.push(name.clone());
        kept_packs.extend(file.packs.iter().filter(|p| !gone.contains(&p.id)).cloned());
    }
    kept_packs.extend(new_packs);
    for file in IndexFile::split(kept_packs) {
        repo.write_sealed(FileKind::Index, INDEX_VERSION, &file)?;
        report.index_files_written += 1;
    }
    for name in &replaced {
        backend.remove(FileKind::Index, name)?;
        report.index_files_removed += 1;
    }

    // From here on no new reader can find the condemned packs. Whoever holds
    // a lock now may have found them before.
    let holders = live_holders(repo, &me)?;

    // Snapshots committed since `State::load` may use blobs of the condemned
    // packs that nobody else used: index those packs again.
    let mut condemned: Vec<Id> = gone.into_iter().collect();
    condemned.sort();
    let new_index = repo.load_index()?;
    let mut missing: HashSet<Id> = HashSet::new();
    for (id, snapshot) in repo.snapshots()? {
        if state.snapshots.contains(&id) {
            continue;
        }
        let Ok(snapshot) = snapshot else { continue };
        for blob in repo.referenced_blobs(&[&state.index, &new_index], &snapshot)? {
            if !new_index.contains(&blob) {
                missing.insert(blob);
            }
        }
    }
    if !missing.is_empty() {
        let file = rescue(repo, &missing, &condemned)?;
        if !file.packs.is_empty() {
            repo.write_sealed(FileKind::Index, INDEX_VERSION, &file)?;
        }
        report.packs_rescued += file.packs.len();
        condemned.retain(|p| !file.packs.iter().any(|r| r.id == *p));
    }

    let record = DeletionRecord {
        created: now_unix(),
        packs: condemned.clone(),
        waiting_for: holders.iter().cloned().collect(),
    };
    let record_id = repo.write_sealed(FileKind::Deletion, DELETION_VERSION, &record)?;
    if holders.is_empty() {
        repo.verify_locks()?;
        // A pack condemned as in no index may have been indexed since, by a
        // writer that finished before the holders were listed.
        let indexed: HashSet<Id> = new_index.packs().iter().copied().collect();
        let task = repo
            .progress()
            .task("delete packs", Unit::Items, Some(condemned.len() as u64));
        for pack in condemned.iter().filter(|p| !indexed.contains(p)) {
            delete_pack(repo, pack, false, &mut report)?;
            task.advance(1);
        }
        backend.remove(FileKind::Deletion, &record_id.to_hex())?;
    } else {
        report.packs_waiting += condemned.len();
    }
    report.temp_files_removed = remove_old_temp_files(repo)?;
    let mut all_waiting = waiting;
    if !holders.is_empty() {
        all_waiting.push((record_id.to_hex(), record));
    }
    report.waiting_for = describe_waiting(repo, &all_waiting)?;
    report.duration_ms = started.elapsed().as_millis() as u64;
    Ok(report)
}

/// The repository as prune reads it at the start.
struct State {
    /// The snapshots that stay, read once: the rest of the state is derived
    /// from them, the index files and the packs on disk.
    manifests: Vec<(Id, Snapshot)>,
    index_files: Vec<(String, IndexFile)>,
    /// Packs on disk, listed after the index files were read.
    present: HashSet<Id>,
    /// The blobs of `index_files` that a pack in `present` holds.
    index: Index,
    snapshots: HashSet<Id>,
    /// Every blob a snapshot refers to that the index has.
    used: HashSet<Id>,
    /// Blobs a snapshot refers to that the index lacks (or places only in
    /// packs that are gone), with a snapshot that needs each.
    missing: HashMap<Id, Id>,
}

impl State {
    fn load(repo: &Repository, forgotten: &HashSet<Id>) -> Result<State> {
        // Snapshots before the index: a snapshot's index file is durable
        // before its manifest, so every manifest read here has its blobs in
        // the index read next, even if it was committed a moment ago.
        let mut manifests = Vec::new();
        for (id, snapshot) in repo.snapshots()? {
            if forgotten.contains(&id) {
                continue;
            }
            // Without it prune cannot know what that snapshot needs.
            let snapshot = snapshot.map_err(|e| match e {
                StoreError::Damaged { file, detail } => StoreError::damaged(
                    file,
                    format!("{detail}; prune cannot know what this snapshot needs, so it stops (`rbk forget` removes an unreadable snapshot)"),
                ),
                other => other,
            })?;
            manifests.push((id, snapshot));
        }
        let mut index_files = Vec::new();
        for (name, file) in repo.index_files()? {
            index_files.push((name, file?));
        }
        // Then the packs: a pack a writer indexed was durable before its index file.
        let present = repo.packs_on_disk()?;
        let mut state = State {
            manifests,
            index_files,
            present,
            index: Index::default(),
            snapshots: HashSet::new(),
            used: HashSet::new(),
            missing: HashMap::new(),
        };
        state.derive(repo)?;
        Ok(state)
    }

    /// Adds an index file (a rescue's, written or, in a dry run, only
    /// planned) and derives everything again, so that a dry run plans from
    /// exactly the state the real run would have.
    fn add_index_file(&mut self, repo: &Repository, name: String, file: IndexFile) -> Result<()> {
        self.index_files.push((name, file));
        self.derive(repo)
    }

    fn derive(&mut self, repo: &Repository) -> Result<()> {
        let mut builder = IndexBuilder::default();
        for (_, f) in &self.index_files {
            builder.add(f);
        }
        self.index = builder.finish_available(&self.present);
        self.snapshots.clear();
        self.used.clear();
        self.missing.clear();
        let task =
            repo.progress()
                .task("snapshots", Unit::Items, Some(self.manifests.len() as u64));
        for (id, snapshot) in &self.manifests {
            task.advance(1);
            self.snapshots.insert(*id);
            for blob in repo.referenced_blobs(&[&self.index], snapshot)? {
                if self.index.contains(&blob) {
                    self.used.insert(blob);
                } else {
                    self.missing.entry(blob).or_insert(*id);
                }
            }
        }
        Ok(())
    }
}

/// What to do with each pack.
struct Plan {
    /// Taken out of the index and deleted: nothing in them is used.
    condemned: Vec<Id>,
    /// Partly used, chosen to bring unused space within budget: copy the live blobs, then as condemned.
    repack: Vec<(Id, Vec<PackedBlob>)>,
    sizes: HashMap<Id, u64>,
    unused_kept: u64,
}

impl Plan {
    fn make(
        repo: &Repository,
        state: &State,
        on_disk: &HashSet<Id>,
        pending: &HashSet<Id>,
        max_unused: f64,
    ) -> Result<Plan> {
        let mut plan = Plan {
            condemned: Vec::new(),
            repack: Vec::new(),
            sizes: HashMap::new(),
            unused_kept: 0,
        };
        // A blob stored twice (two concurrent snapshots) is used in the
        // first pack that has it; its other copies are unused.
        let mut claimed: HashSet<Id> = HashSet::new();
        let mut indexed: HashSet<Id> = HashSet::new();
        // (unused share, pack, live blobs, unused bytes) of packs partly used.
        let mut partly: Vec<(f64, Id, Vec<PackedBlob>, u64)> = Vec::new();
        let mut used_total = 0u64;
        for (_, file) in &state.index_files {
            for pack in &file.packs {
                if !indexed.insert(pack.id) {
                    continue; // listed by two index files (a re-index): count it once
                }
                if !state.present.contains(&pack.id) {
                    // Gone (deleted by hand, lost on the NAS): its blobs were not
                    // counted as available, and every used one has a copy in a pack
                    // that exists (prune stops otherwise). Out of the index with it.
                    plan.sizes.insert(pack.id, 0);
                    plan.condemned.push(pack.id);
                    continue;
                }
                let mut live = Vec::new();
                let (mut used_bytes, mut total) = (0u64, 0u64);
                for b in &pack.blobs {
                    total += b.length as u64;
                    if state.used.contains(&b.id) && claimed.insert(b.id) {
                        used_bytes += b.length as u64;
                        live.push(*b);
                    }
                }
                let size = match repo.backend().size(FileKind::Pack, &pack.id.to_hex()) {
                    Ok(s) => s,
                    Err(e) if e.is_not_found() && live.is_empty() => 0,
                    Err(e) if e.is_not_found() => {
                        return Err(StoreError::damaged(
                            FileKind::Pack.path_of(&pack.id.to_hex()),
                            "missing, and snapshots need it; run `rbk check` before pruning",
                        ));
                    }
                    Err(e) => return Err(e),
                };
                plan.sizes.insert(pack.id, size);
                let unused = total - used_bytes;
                used_total += used_bytes;
                if live.is_empty() {
                    plan.condemned.push(pack.id);
                } else if unused > 0 {
                    partly.push((unused as f64 / total as f64, pack.id, live, unused));
                }
            }
        }
        // Keep unused <= share of (used + unused): repack the emptiest packs
        // first, since they free the most for the bytes copied.
        let budget = if max_unused >= 1.0 {
            u64::MAX
        } else {
            (max_unused / (1.0 - max_unused) * used_total as f64) as u64
        };
        partly.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        let mut unused_left: u64 = partly.iter().map(|p| p.3).sum();
        for (_, id, live, unused) in partly {
            if unused_left > budget {
                plan.repack.push((id, live));
                unused_left -= unused;
            } else {
                plan.unused_kept += unused;
            }
        }
        // Packs in no index and no deletion record: left by a snapshot that
        // was killed, or being written right now (then its writer's lock
        // protects it until it commits and indexes it).
        let mut orphans: Vec<Id> = on_disk
            .iter()
            .filter(|p| !indexed.contains(p) && !pending.contains(p))
            .copied()
            .collect();
        orphans.sort();
        for p in orphans {
            let size = repo
                .backend()
                .size(FileKind::Pack, &p.to_hex())
                .unwrap_or(0);
            plan.sizes.insert(p, size);
            plan.condemned.push(p);
        }
        Ok(plan)
    }
}

fn live_bytes(live: &[PackedBlob]) -> u64 {
    live.iter().map(|b| b.length as u64).sum()
}

/// Copies live blobs into new packs, verifying each (a damaged blob stops
/// prune before anything is deleted). Returns the new packs, written and fsynced.
/// `to_read` is the packs' total size, for progress.
fn repack(
    repo: &Repository,
    packs: &[(Id, Vec<PackedBlob>)],
    to_read: u64,
) -> Result<(Vec<IndexedPack>, u64)> {
    if packs.is_empty() {
        return Ok((Vec::new(), 0));
    }
    let task = repo.progress().task("repack", Unit::Bytes, Some(to_read));
    let target = repo.config().pack_target as usize;
    let codec = repo.blob_codec();
    let mut builder = PackBuilder::default();
    let mut written = Vec::new();
    let mut bytes_written = 0u64;
    let mut flush = |builder: PackBuilder, written: &mut Vec<IndexedPack>| -> Result<()> {
        let (id, bytes, blobs) = builder.finish(repo.crypto());
        repo.backend()
            .write_new(FileKind::Pack, &id.to_hex(), &bytes)?;
        bytes_written += bytes.len() as u64;
        task.added(bytes.len() as u64);
        written.push(IndexedPack { id, blobs });
        Ok(())
    };
    for (pack, live) in packs {
        let name = pack.to_hex();
        repo.check_pack_len(&name)?;
        let bytes = repo.read_verified(FileKind::Pack, &name)?;
        task.advance(bytes.len() as u64);
        let copies: Vec<Result<(PackedBlob, Vec<u8>)>> = live
            .par_iter()
            .map(|b| {
                let start = b.offset as usize;
                let sealed = bytes.get(start..start + b.length as usize).ok_or_else(|| {
                    StoreError::damaged(
                        FileKind::Pack.path_of(&name),
                        format!("blob {} lies beyond the end of the pack", b.id),
                    )
                })?;
                // The AEAD binds the id: this proves the bytes are that blob.
                codec.verify_sealed(&b.id, sealed).map_err(|d| {
                    StoreError::damaged(
                        FileKind::Pack.path_of(&name),
                        format!("blob {}: {d}", b.id),
                    )
                })?;
                Ok((*b, sealed.to_vec()))
            })
            .collect();
        for copy in copies {
            let (b, sealed) = copy?;
            builder.add(b.kind, b.id, sealed);
            if builder.size() >= target {
                flush(std::mem::take(&mut builder), &mut written)?;
            }
        }
    }
    if !builder.is_empty() {
        flush(builder, &mut written)?;
    }
    Ok((written, bytes_written))
}

/// The index file that puts back the packs among `candidates` that hold a
/// `missing` blob (read from their headers); the caller writes it.
fn rescue(repo: &Repository, missing: &HashSet<Id>, candidates: &[Id]) -> Result<IndexFile> {
    let mut file = IndexFile::default();
    for pack in candidates {
        let blobs = match read_header(repo.backend().as_ref(), repo.crypto(), &pack.to_hex()) {
            Ok(b) => b,
            // Gone, or not a pack rbk wrote (damaged, planted): nothing to put back from it.
            Err(e) if e.is_not_found() || e.is_damage() => continue,
            Err(e) => return Err(e),
        };
        if blobs.iter().any(|b| missing.contains(&b.id)) {
            file.packs.push(IndexedPack { id: *pack, blobs });
        }
    }
    Ok(file)
}

fn delete_pack(
    repo: &Repository,
    pack: &Id,
    dry_run: bool,
    report: &mut PruneReport,
) -> Result<()> {
    let name = pack.to_hex();
    match repo.backend().size(FileKind::Pack, &name) {
        Ok(size) => {
            if !dry_run {
                repo.backend().remove(FileKind::Pack, &name)?;
            }
            report.packs_deleted += 1;
            report.bytes_freed += size;
            Ok(())
        }
        // Deleted by an earlier run that stopped before removing its record.
        Err(e) if e.is_not_found() => Ok(()),
        Err(e) => Err(e),
    }
}

/// Holders of live (not stale) locks other than `me`.
fn live_holders(repo: &Repository, me: &LockHolder) -> Result<HashSet<LockHolder>> {
    let now = now_unix();
    let host = super::lock::hostname();
    let mut out = HashSet::new();
    for (name, info) in list_locks(repo.backend().as_ref(), repo.crypto())? {
        match info {
            Ok(info) => {
                if !info.is_stale(now, &host) && info.holder() != *me {
                    out.insert(info.holder());
                }
            }
            // Whoever holds an unreadable lock may be alive while the file is
            // fresh: wait for it to go (`rbk unlock` removes it) or to age.
            Err(_) if unreadable_may_be_held(repo.backend().as_ref(), &name, now) => {
                out.insert(LockHolder {
                    host: format!("unreadable lock file {}", FileKind::Lock.path_of(&name)),
                    pid: 0,
                    created: 0,
                    nonce: 0,
                });
            }
            Err(_) => {}
        }
    }
    Ok(out)
}

/// Every deletion record. A damaged one is skipped: its packs are in no
/// index and no readable record, so this run condemns them again.
fn read_records(repo: &Repository) -> Result<Vec<(String, DeletionRecord)>> {
    let mut out = Vec::new();
    for name in repo.backend().list(FileKind::Deletion)? {
        if let Ok(r) = read_record(repo, &name) {
            out.push((name, r));
        }
    }
    Ok(out)
}

pub fn read_record(repo: &Repository, name: &str) -> Result<DeletionRecord> {
    let bytes = repo.read_verified(FileKind::Deletion, name)?;
    open_file(
        repo.crypto(),
        FileKind::Deletion,
        name,
        DELETION_VERSION,
        &bytes,
    )
}

fn describe_waiting(
    repo: &Repository,
    waiting: &[(String, DeletionRecord)],
) -> Result<Vec<String>> {
    let wanted: HashSet<&LockHolder> = waiting.iter().flat_map(|(_, r)| &r.waiting_for).collect();
    let mut out = Vec::new();
    for (_, info) in list_locks(repo.backend().as_ref(), repo.crypto())? {
        if let Ok(info) = info
            && wanted.contains(&info.holder())
        {
            out.push(info.describe());
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

fn remove_old_temp_files(repo: &Repository) -> Result<usize> {
    let mut n = 0;
    for t in repo.backend().temp_files()? {
        if t.age_secs > TEMP_MAX_AGE_SECS {
            repo.backend().remove_temp(&t.path)?;
            n += 1;
        }
    }
    Ok(n)
}
