//! Storing streams: chunk, hash, deduplicate, compress, seal, pack; then index and snapshot, in that order.
//!
//! Pipeline per stream: a read-ahead thread reads the input (and whatever
//! decoding it does); a chunking thread cuts segments of whole chunks; the
//! calling thread hashes each segment while rayon seals its new chunks in
//! parallel, three segments at once (no barrier at a segment's end); a packer thread collects sealed blobs into packs, which one writer
//! thread (more on an object store) writes. Every queue is bounded, so memory
//! does not grow with the stream.

use std::collections::{HashSet, VecDeque};
use std::io::Read;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

use blake3::hazmat::ChainingValue;
use rayon::prelude::*;

use super::backend::Backend;
use super::blob::{BlobCodec, BlobKind};
use super::chunker::{Chunker, Segmenter};
use super::crypto::Crypto;
use super::error::{Result, StoreError};
use super::format::FileKind;
use super::id::Id;
use super::index::{INDEX_VERSION, Index, IndexFile, IndexedPack};
use super::manifest::{LIST_ENTRIES, Snapshot, SnapshotStats, StoredStream, encode_list};
use super::pack::{PackBuilder, PackedBlob, read_header};
use super::pieces::{MAX_PIECES, Piece, PieceRecord, encode_table, table_hash};
use super::readahead;
use super::repo::Repository;
use super::treehash::TreeHasher;
use crate::progress::Task;

/// Bytes per segment handed from the reader thread to the sealers.
const SEGMENT_SIZE: usize = 2 * 1024 * 1024;
/// Segments being sealed at once, so no core waits at a segment's end for its slowest
/// chunk. Measured on the 1.6 GB bench store (2 cores): one 4 MiB segment at a time 3.92 s,
/// two 4 MiB 3.69 s but up to 127 MiB RSS, two 2 MiB 3.76 s, three 2 MiB 3.67 s at 93-116
/// MiB RSS (dumps included).
const SEALING: usize = 3;
/// Sealed blobs queued for the packer.
const PACKER_QUEUE: usize = 32;

type SealedBlob = (BlobKind, Id, Vec<u8>);
/// A chunk's id and length, and its sealed bytes when it is new.
type Sealed = (Id, u32, Option<Vec<u8>>);
/// A stream's size, hash, number of chunks, and its blocks' hashes if kept.
type Chunked = (u64, [u8; 32], u64, Vec<ChainingValue>);

/// Writes one snapshot. Dropping it without `commit` removes the packs it
/// wrote, so a failed snapshot leaves nothing behind.
pub struct SnapshotWriter<'r> {
    repo: &'r Repository,
    index: Arc<Index>,
    codec: BlobCodec,
    chunker: Chunker,
    claimed: Mutex<HashSet<Id>>,
    packer: Option<Packer>,
    written: Arc<Mutex<Vec<Id>>>,
    /// Packs written and not yet listed by an index file of this writer's.
    unindexed: Arc<Mutex<Vec<IndexedPack>>>,
    stats: Mutex<SnapshotStats>,
    started: Instant,
    /// Packs of this writer that a durable index file lists: they stay even
    /// if the snapshot fails.
    indexed: HashSet<Id>,
    /// The index files this writer wrote (at checkpoints and at commit), and their names.
    own: Vec<IndexFile>,
    own_names: Vec<String>,
}

impl<'r> SnapshotWriter<'r> {
    pub fn new(repo: &'r Repository, index: Arc<Index>) -> SnapshotWriter<'r> {
        let written = Arc::new(Mutex::new(Vec::new()));
        let unindexed = Arc::new(Mutex::new(Vec::new()));
        let packer = Packer::start(
            repo.backend().clone(),
            repo.crypto().clone(),
            repo.config().pack_target as usize,
            written.clone(),
            unindexed.clone(),
        );
        SnapshotWriter {
            repo,
            index,
            codec: repo.blob_codec(),
            chunker: repo.chunker(),
            claimed: Mutex::new(HashSet::new()),
            packer: Some(packer),
            written,
            unindexed,
            stats: Mutex::new(SnapshotStats::default()),
            started: Instant::now(),
            indexed: HashSet::new(),
            own: Vec::new(),
            own_names: Vec::new(),
        }
    }

    /// Where the parts being stored report their progress.
    pub fn progress(&self) -> &dyn crate::progress::Progress {
        self.repo.progress()
    }

    pub fn stats(&self) -> SnapshotStats {
        lock(&self.stats).clone()
    }

    /// Stores a whole stream. A read error fails the stream (the snapshot must
    /// then be dropped, not committed); it is never treated as its end.
    /// Several streams may be added at once from different threads (two
    /// dumps running in parallel); they share the packer and deduplicate
    /// against each other. `task` learns the bytes each new blob adds.
    pub fn add_stream<R: Read + Send>(&self, reader: R, task: &dyn Task) -> Result<StoredStream> {
        let mut list: Vec<(Id, u32)> = Vec::with_capacity(LIST_ENTRIES);
        let mut lists = Vec::new();
        let (size, hash, chunks, _) = self.chunk_stream(reader, false, task, &mut |entry| {
            list.push(entry);
            if list.len() == LIST_ENTRIES {
                lists.push(self.store_list(&list, task)?);
                list.clear();
            }
            Ok(())
        })?;
        if !list.is_empty() {
            lists.push(self.store_list(&list, task)?);
        }
        lock(&self.stats).chunks += chunks;
        Ok(StoredStream {
            size,
            hash,
            chunks,
            lists,
        })
    }

    /// Stores one piece of a pieced stream (`pieces.rs`): chunked on its own, so that its
    /// first chunk starts where it starts and its last ends where it ends. Its chunk list
    /// is kept in memory (36 bytes a chunk) for [`join_pieces`](Self::join_pieces), which
    /// may use it again in a later stream of this writer.
    pub fn add_piece<R: Read + Send>(&self, reader: R, task: &dyn Task) -> Result<Piece> {
        let mut chunks = Vec::new();
        let (size, hash, _, blocks) = self.chunk_stream(reader, true, task, &mut |entry| {
            chunks.push(entry);
            Ok(())
        })?;
        Ok(Piece {
            size,
            hash,
            chunks,
            blocks,
        })
    }

    /// The stored stream made of `pieces` in order, and its part's envelope (the piece
    /// table): its list blobs are written, no chunk is read. Every chunk must be stored,
    /// by this writer or in the index it loaded.
    pub fn join_pieces(
        &self,
        pieces: &[&Piece],
        task: &dyn Task,
    ) -> Result<(StoredStream, Vec<u8>)> {
        if pieces.len() > MAX_PIECES {
            return Err(StoreError::Invalid(format!(
                "a stream of {} pieces is more than the {MAX_PIECES} a snapshot can record",
                pieces.len()
            )));
        }
        let mut stream = StoredStream::default();
        let mut list: Vec<(Id, u32)> = Vec::with_capacity(LIST_ENTRIES);
        for piece in pieces {
            for &(id, len) in &piece.chunks {
                if !self.index.contains(&id) && !lock(&self.claimed).contains(&id) {
                    return Err(StoreError::Invalid(format!(
                        "a piece refers to chunk {id}, which this writer has not stored"
                    )));
                }
                list.push((id, len));
                if list.len() == LIST_ENTRIES {
                    stream.lists.push(self.store_list(&list, task)?);
                    list.clear();
                }
            }
            stream.size += piece.size;
            stream.chunks += piece.chunks.len() as u64;
        }
        if !list.is_empty() {
            stream.lists.push(self.store_list(&list, task)?);
        }
        lock(&self.stats).chunks += stream.chunks;
        let table: Vec<PieceRecord> = pieces
            .iter()
            .map(|p| PieceRecord {
                size: p.size,
                hash: p.hash,
            })
            .collect();
        let envelope = encode_table(&table);
        stream.hash = table_hash(&envelope);
        Ok((stream, envelope))
    }

    /// Chunks, hashes, seals and packs a stream, handing each chunk's id and length to
    /// `entry` in stream order. Returns its size, hash, number of chunks and, if
    /// `keep_blocks`, its blocks' hashes (`treehash.rs`).
    fn chunk_stream<R: Read + Send>(
        &self,
        reader: R,
        keep_blocks: bool,
        task: &dyn Task,
        entry: &mut dyn FnMut((Id, u32)) -> Result<()>,
    ) -> Result<Chunked> {
        let (seg_tx, seg_rx) = sync_channel(2);
        let chunker = self.chunker.clone();
        let (buf_tx, recycle, ahead) = readahead::channel();
        std::thread::scope(|scope| {
            scope.spawn(move || readahead::pump(reader, buf_tx, recycle));
            scope.spawn(move || {
                let mut segmenter = Segmenter::new(ahead, chunker, SEGMENT_SIZE);
                loop {
                    let next = segmenter.next_segment();
                    let stop = !matches!(next, Ok(Some(_)));
                    let msg = match next {
                        Ok(Some(seg)) => Ok(seg),
                        Ok(None) => return,
                        Err(e) => Err(e),
                    };
                    if seg_tx.send(msg).is_err() || stop {
                        return;
                    }
                }
            });
            self.consume(seg_rx, keep_blocks, task, entry)
        })
    }

    /// Seals segments as they come, up to `SEALING` of them at once, and takes their
    /// results in stream order. One segment at a time left a core idle at every segment's
    /// end while the slowest of its chunks was still being compressed (the profile showed
    /// the two cores 1.71-1.76 busy).
    fn consume(
        &self,
        segments: Receiver<std::io::Result<super::chunker::Segment>>,
        keep_blocks: bool,
        task: &dyn Task,
        entry: &mut dyn FnMut((Id, u32)) -> Result<()>,
    ) -> Result<Chunked> {
        let mut hasher = TreeHasher::new(keep_blocks);
        let mut chunks = 0u64;
        let mut take = |sealed: Vec<Sealed>| -> Result<()> {
            for (id, len, blob) in sealed {
                chunks += 1;
                if let Some(blob) = blob {
                    task.added(blob.len() as u64);
                    self.push(BlobKind::Data, id, blob)?;
                }
                entry((id, len))?;
            }
            Ok(())
        };
        // Within the scope the sealing tasks may borrow `self`; an error leaves it only once
        // the tasks already started have ended.
        let mut size = 0u64;
        rayon::in_place_scope(|scope| -> Result<()> {
            let mut sealing: VecDeque<Receiver<Vec<Sealed>>> = VecDeque::with_capacity(SEALING);
            for segment in segments {
                let segment = Arc::new(segment.map_err(StoreError::Input)?);
                if sealing.len() == SEALING {
                    take(received(sealing.pop_front())?)?;
                }
                let (tx, rx) = sync_channel(1);
                let shared = segment.clone();
                scope.spawn(move |_| {
                    let chunks: Vec<&[u8]> = shared.chunks().collect();
                    let sealed = chunks.par_iter().map(|c| self.seal_if_new(c)).collect();
                    let _ = tx.send(sealed);
                });
                sealing.push_back(rx);
                // In stream order, on this thread, while the pool seals.
                hasher.update(&segment.data);
                size += segment.data.len() as u64;
            }
            while !sealing.is_empty() {
                take(received(sealing.pop_front())?)?;
            }
            Ok(())
        })?;
        let (hash, blocks) = hasher.finalize();
        Ok((size, hash, chunks, blocks))
    }

    /// The chunk's id, length, and its sealed bytes if no one has stored it yet.
    fn seal_if_new(&self, chunk: &[u8]) -> Sealed {
        let id = self.codec.id_of(chunk);
        (
            id,
            chunk.len() as u32,
            self.claim(&id).then(|| self.codec.seal(&id, chunk)),
        )
    }

    /// Whether the blob `id` is new to the repository and this writer: true once, for
    /// the caller that must then `push` it.
    pub(super) fn claim(&self, id: &Id) -> bool {
        !self.index.contains(id) && lock(&self.claimed).insert(*id)
    }

    /// Counts chunks a stream refers to that were stored without `add_stream` (a copy).
    pub(super) fn count_chunks(&self, n: u64) {
        lock(&self.stats).chunks += n;
    }

    pub(super) fn codec(&self) -> &BlobCodec {
        &self.codec
    }

    fn store_list(&self, entries: &[(Id, u32)], task: &dyn Task) -> Result<Id> {
        let bytes = encode_list(entries);
        let (id, _, blob) = self.seal_if_new(&bytes);
        if let Some(blob) = blob {
            task.added(blob.len() as u64);
            self.push(BlobKind::List, id, blob)?;
        }
        Ok(id)
    }

    pub(super) fn push(&self, kind: BlobKind, id: Id, sealed: Vec<u8>) -> Result<()> {
        {
            let mut stats = lock(&self.stats);
            stats.bytes_added += sealed.len() as u64;
            if kind == BlobKind::Data {
                stats.new_chunks += 1;
            }
        }
        let packer = self
            .packer
            .as_ref()
            .ok_or_else(|| StoreError::Invalid("writer already closed".into()))?;
        if packer
            .tx
            .as_ref()
            .is_some_and(|tx| tx.send((kind, id, sealed)).is_ok())
        {
            return Ok(());
        }
        // The packer stopped: the first caller to notice gets its error.
        Err(lock(&packer.failure).take().unwrap_or_else(|| {
            StoreError::Invalid("the pack writer stopped after an error".into())
        }))
    }

    fn close_packer(&mut self) -> Result<()> {
        let Some(mut packer) = self.packer.take() else {
            return Ok(());
        };
        drop(packer.tx.take());
        match packer.handle.take().map(|h| h.join()) {
            Some(Ok(true)) | None => Ok(()),
            _ => Err(lock(&packer.failure).take().unwrap_or_else(|| {
                StoreError::Invalid("the pack writer stopped after an error".into())
            })),
        }
    }

    /// Writes an index file for the packs written so far, so that they survive this
    /// writer being killed or failing: a later run finds their blobs indexed and does not
    /// store them again (how `rbk copy` resumes). Until a snapshot uses them they are
    /// unused to prune, which reclaims them if none ever does.
    pub fn checkpoint(&mut self) -> Result<()> {
        let packs = std::mem::take(&mut *lock(&self.unindexed));
        self.write_index(packs)
    }

    fn write_index(&mut self, packs: Vec<IndexedPack>) -> Result<()> {
        for file in IndexFile::split(packs) {
            let (id, bytes) = self.repo.seal(FileKind::Index, INDEX_VERSION, &file);
            let name = id.to_hex();
            let written = self
                .repo
                .backend()
                .write_new(FileKind::Index, &name, &bytes);
            // A write can fail after its rename (the directory's fsync): if
            // the index file exists, its packs must stay, or it would list missing packs.
            if written.is_ok()
                || self
                    .repo
                    .backend()
                    .exists(FileKind::Index, &name)
                    .unwrap_or(true)
            {
                self.indexed.extend(file.packs.iter().map(|p| p.id));
            }
            written?;
            self.own.push(file);
            self.own_names.push(name);
        }
        Ok(())
    }

    /// Makes the snapshot durable: remaining packs, then the index files that
    /// list them, then the manifest. Until the manifest exists, no snapshot does.
    pub fn commit(mut self, mut snapshot: Snapshot) -> Result<(Id, Snapshot)> {
        self.close_packer()?;
        self.checkpoint()?;
        let stats = SnapshotStats {
            duration_ms: self.started.elapsed().as_millis() as u64,
            ..self.stats()
        };
        snapshot.stats = SnapshotStats {
            bytes_read: snapshot.stats.bytes_read,
            ..stats
        };
        // A process that slept past its lock's staleness may have missed a
        // prune that deleted what it deduplicated against: refuse to commit.
        self.repo.verify_locks()?;
        let id = self.repo.save_snapshot(&snapshot)?;
        // Checked again after re-indexing: a lock lost meanwhile means a
        // prune may have deleted a pack between our look and our index.
        let reconciled = self
            .reconcile(&self.own, &self.own_names, &snapshot)
            .and_then(|()| self.repo.verify_locks());
        if let Err(e) = reconciled {
            // Not reported saved, so not left behind half-indexed.
            let _ = self.repo.backend().remove(FileKind::Snapshot, &id.to_hex());
            return Err(e);
        }
        Ok((id, snapshot))
    }

    /// After the manifest exists: if a prune replaced index files since this
    /// writer loaded the index (or the ones it just wrote), make sure every blob the snapshot refers to
    /// is still indexed. Prune drops from the index blobs no snapshot of its
    /// time referred to, and this snapshot did not exist then; the packs
    /// holding them still exist, because prune deletes nothing while a lock
    /// of its time (this writer's) is held. So re-index them from those
    /// packs' headers, and prune will keep the packs. See docs/FORMAT.md,
    /// "Prune and concurrent writers".
    fn reconcile(
        &self,
        own: &[IndexFile],
        own_names: &[String],
        snapshot: &Snapshot,
    ) -> Result<()> {
        let now = self.repo.backend().list(FileKind::Index)?;
        // Our own index files count too: a prune that read them before our
        // manifest existed found our new packs unused and replaced them.
        let replaced = self
            .index
            .sources()
            .iter()
            .chain(own_names)
            .any(|f| now.binary_search(f).is_err());
        if !replaced {
            return Ok(());
        }
        let current = self.repo.load_index()?;
        let mine = Index::from_files(own);
        let find = |id: &Id| {
            current
                .get(id)
                .or_else(|| mine.get(id))
                .or_else(|| self.index.get(id))
        };
        let missing: HashSet<Id> = self
            .repo
            .referenced_blobs(&[&current, &mine, &self.index], snapshot)?
            .into_iter()
            .filter(|id| !current.contains(id))
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        let mut packs: Vec<Id> = Vec::new();
        for id in &missing {
            match find(id) {
                Some(loc) => packs.push(loc.pack),
                None => {
                    return Err(StoreError::MissingBlob {
                        blob: id.to_hex(),
                        needed_by: "the snapshot being committed".into(),
                    });
                }
            }
        }
        packs.sort();
        packs.dedup();
        let mut rescued = IndexFile::default();
        for pack in packs {
            let blobs = read_header(
                self.repo.backend().as_ref(),
                self.repo.crypto(),
                &pack.to_hex(),
            )?;
            rescued.packs.push(IndexedPack { id: pack, blobs });
        }
        self.repo
            .write_sealed(FileKind::Index, INDEX_VERSION, &rescued)?;
        Ok(())
    }
}

impl Drop for SnapshotWriter<'_> {
    fn drop(&mut self) {
        if let Some(packer) = &self.packer {
            // Dropped before `commit` took the packer: abandoned (a failed part, an
            // interrupt). Packs not yet written would only be deleted again, so the packer
            // writes no more of them.
            packer.abandoned.store(true, Ordering::SeqCst);
        }
        let _ = self.close_packer();
        // No index lists the others and no other writer can use their blobs
        // (others deduplicate only against indexed blobs), so they are
        // garbage: remove them now rather than leave them for prune.
        // A removal that fails says the repository is unreachable (a NAS gone, a bucket's
        // servers down): the rest would each fail the same way, after the backend's own
        // retries, so they are left to prune (which removes packs in no index).
        let written = std::mem::take(&mut *lock(&self.written));
        for pack in written.iter().filter(|p| !self.indexed.contains(p)) {
            if self
                .repo
                .backend()
                .remove(FileKind::Pack, &pack.to_hex())
                .is_err()
            {
                break;
            }
        }
    }
}

/// The seals of the oldest segment in flight, once they are done.
fn received<T>(rx: Option<Receiver<T>>) -> Result<T> {
    rx.and_then(|rx| rx.recv().ok())
        .ok_or_else(|| StoreError::Invalid("a sealing task ended without its result".into()))
}

/// A poisoned lock only means another thread panicked mid-update of plain
/// counters or sets; the data is still usable.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

struct Packer {
    tx: Option<SyncSender<SealedBlob>>,
    /// Set when the writer is dropped without a commit: write no further pack.
    abandoned: Arc<AtomicBool>,
    /// The pack writer's error, for whichever stream notices first.
    failure: Arc<Mutex<Option<StoreError>>>,
    /// Whether every pack was written.
    handle: Option<JoinHandle<bool>>,
}

impl Packer {
    /// Two threads: one fills packs, the other writes and fsyncs finished
    /// ones, so sealing never waits for the disk (an fsync of a 16 MiB pack
    /// can take longer than filling the next one).
    fn start(
        backend: Arc<dyn Backend>,
        crypto: Crypto,
        target: usize,
        written: Arc<Mutex<Vec<Id>>>,
        done: Arc<Mutex<Vec<IndexedPack>>>,
    ) -> Packer {
        let (tx, rx) = sync_channel::<SealedBlob>(PACKER_QUEUE);
        let failure = Arc::new(Mutex::new(None));
        let disk_failure = failure.clone();
        let abandoned = Arc::new(AtomicBool::new(false));
        let (fill_abandoned, disk_abandoned) = (abandoned.clone(), abandoned.clone());
        let handle = std::thread::spawn(move || -> bool {
            // Several writers where the backend gains from them (an object store: each
            // upload waits on round trips), each holding one pack. One finished pack may
            // wait for a lone disk writer, so that filling goes on during its fsync; several
            // writers are queue enough, and each pack waiting is 16 MiB more memory.
            let writers = backend.parallel_writes().clamp(1, 4);
            let waiting = if writers == 1 { 1 } else { 0 };
            let (pack_tx, pack_rx) = sync_channel::<(Id, Vec<u8>, Vec<PackedBlob>)>(waiting);
            let pack_rx = Arc::new(Mutex::new(pack_rx));
            let disks: Vec<JoinHandle<bool>> = (0..writers)
                .map(|_| {
                    let (backend, pack_rx) = (backend.clone(), pack_rx.clone());
                    let (written, done) = (written.clone(), done.clone());
                    let (abandoned, failure) = (disk_abandoned.clone(), disk_failure.clone());
                    std::thread::spawn(move || -> bool {
                        loop {
                            let next = lock(&pack_rx).recv();
                            let Ok((id, bytes, blobs)) = next else {
                                return true;
                            };
                            if abandoned.load(Ordering::SeqCst) {
                                return false;
                            }
                            // Recorded before the write, so an abort also removes a
                            // pack whose write failed halfway (a no-op if it never appeared).
                            lock(&written).push(id);
                            if let Err(e) =
                                backend.write_new_owned(FileKind::Pack, &id.to_hex(), bytes)
                            {
                                // Stored before this thread ends, so that whoever sees the
                                // queue close finds the reason waiting; the first one wins.
                                lock(&failure).get_or_insert(e);
                                // The other writers stop too: the snapshot is lost.
                                abandoned.store(true, Ordering::SeqCst);
                                return false;
                            }
                            lock(&done).push(IndexedPack { id, blobs });
                        }
                    })
                })
                .collect();
            // Only the writers may hold the receiving end: once the last of them has ended
            // (its write failed, or it saw that another's did), a send must fail rather than
            // wait forever for a writer, and the snapshot fails instead of hanging.
            drop(pack_rx);
            let mut builder = PackBuilder::default();
            for (kind, id, sealed) in rx {
                builder.add(kind, id, sealed);
                if builder.size() >= target
                    && pack_tx
                        .send(std::mem::take(&mut builder).finish(&crypto))
                        .is_err()
                {
                    break; // the disk thread failed and recorded why
                }
            }
            if !builder.is_empty() && !fill_abandoned.load(Ordering::SeqCst) {
                let _ = pack_tx.send(builder.finish(&crypto));
            }
            drop(pack_tx);
            // Every writer joined before the answer: none may still be writing.
            let joined: Vec<bool> = disks
                .into_iter()
                .map(|d| d.join().unwrap_or(false))
                .collect();
            joined.into_iter().all(|ok| ok)
        });
        Packer {
            tx: Some(tx),
            abandoned,
            failure,
            handle: Some(handle),
        }
    }
}

mod like;
pub use like::PieceLike;

#[cfg(test)]
mod tests;
