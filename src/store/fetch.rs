//! Fetching many blobs of a stream at once: ranged reads coalesced per pack, several in flight.
//!
//! A restore over a network pays a round trip per read, so one read per 64 KiB chunk
//! caps it at a few MB/s whatever the bandwidth. Blobs sit in their pack in id order,
//! not stream order (pack.rs: the order must not reveal the stream), so the chunks of a
//! stretch of stream are scattered over their pack. The caller asks for a window of
//! about a pack's worth of sealed bytes at once (a stretch of stream was packed
//! together, so such a window needs most of one or two packs): its blobs that share a
//! pack are read as few ranges (a gap of up to `MAX_GAP` is read rather than split into
//! two requests), and the ranges are read in parallel. The next window's reads start
//! while the current one's are still arriving, and a blob of the next window that lies
//! in a gap already read is taken from those bytes: a window rarely ends where a pack
//! does, and reading the pack's gaps twice cost a quarter to a half more bytes than the
//! snapshot stores.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use super::error::{Result, StoreError};
use super::format::FileKind;
use super::id::Id;
use super::index::BlobLocation;
use super::repo::Repository;

/// Bytes between two needed blobs of a pack that one read spans rather than making two.
const MAX_GAP: u64 = 256 * 1024;
/// The longest single read: a pack (about 16 MiB) needed whole is four reads, made at once.
const MAX_RANGE: u64 = 4 * 1024 * 1024;
/// Reads in flight at once: a network store answers each after a round trip, so several
/// are waiting at any time; a local disk does not mind. The windows read at once bound the
/// bytes in flight, so more readers cost threads, not memory. benches/s3 with 20 ms of RTT:
/// 8 readers restored at 33-37% of a local restore, 16 at 45-54%, 24 at 55%.
const READERS: usize = 16;
/// Windows being read at once: the next one's reads start while the last reads of the
/// one before are still arriving.
const AHEAD: usize = 3;
/// Buffers of finished reads kept for the next ones.
pub(super) const SPARE: usize = 4;

/// One read: a byte range of a pack.
struct Range {
    start: u64,
    bytes: Vec<u8>,
}

/// A blob's sealed bytes inside the range that was read for it (not copied out).
pub(super) struct Sealed {
    range: Arc<Range>,
    from: usize,
    len: usize,
}

impl Sealed {
    fn of(range: &Arc<Range>, loc: &BlobLocation) -> Sealed {
        Sealed {
            range: range.clone(),
            from: (u64::from(loc.offset) - range.start) as usize,
            len: loc.length as usize,
        }
    }
}

impl Sealed {
    /// The buffer of its read, once this was the last blob that used it.
    pub(super) fn reclaim(self) -> Option<Vec<u8>> {
        Arc::try_unwrap(self.range).ok().map(|r| r.bytes)
    }
}

impl std::ops::Deref for Sealed {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.range.bytes[self.from..self.from + self.len]
    }
}

/// A blob as fetched: its id, where it was, its sealed bytes.
pub(super) type Fetched = (Id, BlobLocation, Sealed);

/// Reads the sealed bytes of blobs for one reader of a stream (a restore, a copy).
pub(super) struct Fetcher<'r> {
    repo: &'r Repository,
    pool: rayon::ThreadPool,
}

/// A read of a range of a pack, made once on a reader thread and waited for by every
/// window with a blob in its range: a window that needs part of a pack reads across the
/// gaps between its blobs, and the blobs of the next window that lie in those gaps are
/// served from the same bytes instead of being read a second time.
struct Read {
    pack: Id,
    start: u64,
    end: u64,
    state: Mutex<ReadState>,
    ready: Condvar,
}

enum ReadState {
    Pending,
    Done(Arc<Range>),
    /// The error, until the first window waiting for the read takes it.
    Failed(Option<StoreError>),
}

impl Read {
    fn covers(&self, loc: &BlobLocation) -> bool {
        self.pack == loc.pack
            && self.start <= u64::from(loc.offset)
            && u64::from(loc.offset) + u64::from(loc.length) <= self.end
    }

    fn state(&self) -> MutexGuard<'_, ReadState> {
        // A panic while the state was held leaves a whole state: still usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn finish(&self, read: Result<Range>) {
        *self.state() = match read {
            Ok(range) => ReadState::Done(Arc::new(range)),
            Err(e) => ReadState::Failed(Some(e)),
        };
        self.ready.notify_all();
    }

    fn wait(&self) -> Result<Arc<Range>> {
        let state = self
            .ready
            .wait_while(self.state(), |s| matches!(s, ReadState::Pending))
            .unwrap_or_else(|p| p.into_inner());
        let mut state = state;
        match &mut *state {
            ReadState::Done(range) => Ok(range.clone()),
            ReadState::Failed(e) => Err(e.take().unwrap_or_else(|| {
                StoreError::Invalid(format!(
                    "the read of pack {} failed (reported above)",
                    self.pack
                ))
            })),
            ReadState::Pending => Err(StoreError::Invalid("a read ended pending".into())),
        }
    }

    /// Its buffer, when nothing holds the read or its bytes any more.
    fn into_buffer(self: Arc<Read>) -> Option<Vec<u8>> {
        let read = Arc::try_unwrap(self).ok()?;
        match read.state.into_inner().unwrap_or_else(|p| p.into_inner()) {
            ReadState::Done(range) => Arc::try_unwrap(range).ok().map(|r| r.bytes),
            _ => None,
        }
    }
}

/// A window whose reads were started: what the caller tagged it with, its blobs, and the
/// read that holds each.
struct InFlight<T> {
    tag: T,
    blobs: Vec<(Id, BlobLocation)>,
    reads: Vec<Arc<Read>>,
}

impl<'r> Fetcher<'r> {
    pub(super) fn new(repo: &'r Repository) -> Result<Fetcher<'r>> {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(READERS)
            .thread_name(|i| format!("rbk-fetch-{i}"))
            .build()
            .map_err(|e| StoreError::Invalid(format!("cannot start the reader threads: {e}")))?;
        Ok(Fetcher { repo, pool })
    }

    /// Fetches `windows` in order and hands each to `deliver` with its tag and its blobs
    /// with their sealed bytes (in the window's order), until `deliver` returns false.
    ///
    /// The next window's reads start before the current one has arrived whole, so its
    /// last round trip overlaps the next window's first instead of stalling the stream
    /// once per window; at most `AHEAD` windows are being read at once, which bounds
    /// memory whatever the latency. A blob that a read of the window before already spans
    /// is taken from that read. `recycled` is polled for the buffers of reads the consumer
    /// has finished with (`Sealed::reclaim`): a fresh 4 MiB buffer costs a page fault per
    /// 4 KiB, more than the read into it. `needed_by` names the stream in errors.
    pub(super) fn fetch<T: Send>(
        &self,
        windows: impl Iterator<Item = Result<(T, Vec<(Id, BlobLocation)>)>>,
        needed_by: &str,
        mut recycled: impl FnMut() -> Option<Vec<u8>>,
        mut deliver: impl FnMut(T, Vec<Fetched>) -> Result<bool>,
    ) -> Result<()> {
        let mut spare = Vec::new();
        let mut windows = windows.fuse();
        // The reads the window started last uses, which the next window may share (and,
        // through it, those of the windows before that it still uses).
        let mut recent: Vec<Arc<Read>> = Vec::new();
        // Reads run on the pool; this thread plans, waits and delivers. Leaving the scope
        // (done, stopped or failed) waits for the reads already started: at most `AHEAD`
        // windows of them.
        self.pool.in_place_scope(|scope| {
            let mut in_flight: VecDeque<InFlight<T>> = VecDeque::new();
            loop {
                while in_flight.len() < AHEAD {
                    let Some(window) = windows.next() else { break };
                    let (tag, blobs) = window?;
                    spare.extend(std::iter::from_fn(&mut recycled));
                    let (window, used) =
                        self.start(scope, tag, blobs, needed_by, &recent, &mut spare);
                    in_flight.push_back(window);
                    let old = std::mem::replace(&mut recent, used);
                    spare.extend(old.into_iter().filter_map(Read::into_buffer));
                    spare.truncate(SPARE);
                }
                let Some(front) = in_flight.pop_front() else {
                    return Ok(());
                };
                let (tag, fetched) = front.arrive()?;
                if !deliver(tag, fetched)? {
                    return Ok(());
                }
            }
        })
    }

    /// Starts the reads of one window on the reader threads (those of its blobs that no
    /// read in `recent` spans); the window, and the reads it uses.
    fn start<'s, T>(
        &self,
        scope: &rayon::Scope<'s>,
        tag: T,
        blobs: Vec<(Id, BlobLocation)>,
        needed_by: &str,
        recent: &[Arc<Read>],
        spare: &mut Vec<Vec<u8>>,
    ) -> (InFlight<T>, Vec<Arc<Read>>)
    where
        'r: 's,
    {
        let mut reads: Vec<Option<Arc<Read>>> = blobs
            .iter()
            .map(|(_, loc)| recent.iter().find(|r| r.covers(loc)).cloned())
            .collect();
        let wanted: Vec<usize> = (0..blobs.len()).filter(|&i| reads[i].is_none()).collect();
        for p in plan(&blobs, &wanted) {
            let read = Arc::new(Read {
                pack: p.pack,
                start: p.start,
                end: p.end,
                state: Mutex::new(ReadState::Pending),
                ready: Condvar::new(),
            });
            // Taken here, on this thread, not by the reader threads: memory a thread
            // allocates stays in that thread's malloc arena, and eight arenas each
            // holding a pack would multiply what a restore keeps.
            let mut buffer = spare.pop().unwrap_or_default();
            buffer.resize((p.end - p.start) as usize, 0);
            let first = p.members.first().map(|&m| blobs[m].0).unwrap_or_default();
            for &m in &p.members {
                reads[m] = Some(read.clone());
            }
            let (repo, needed_by, shared) = (self.repo, needed_by.to_string(), read.clone());
            scope.spawn(move |_| {
                // A read that never finishes would leave its window waiting for ever: a
                // panic in it (none is expected) is a failed read.
                let read = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    read_range(repo, shared.pack, shared.start, buffer, first, &needed_by)
                }))
                .unwrap_or_else(|_| {
                    Err(StoreError::Invalid(format!(
                        "the read of pack {} panicked",
                        shared.pack
                    )))
                });
                shared.finish(read);
            });
        }
        let reads: Vec<Arc<Read>> = reads.into_iter().flatten().collect();
        // Every read this window uses, its own and those it shares: a pack that several
        // windows in a row need is read once, however many windows it spans.
        let mut used: Vec<Arc<Read>> = Vec::new();
        for r in &reads {
            if !used.iter().any(|u| Arc::ptr_eq(u, r)) {
                used.push(r.clone());
            }
        }
        (InFlight { tag, blobs, reads }, used)
    }
}

impl<T> InFlight<T> {
    /// Waits for every read of the window: its blobs with their sealed bytes, in order.
    fn arrive(self) -> Result<(T, Vec<Fetched>)> {
        if self.reads.len() != self.blobs.len() {
            return Err(StoreError::Invalid(
                "a blob was planned but not read".into(),
            ));
        }
        let fetched = self
            .blobs
            .into_iter()
            .zip(&self.reads)
            .map(|((id, loc), read)| Ok((id, loc, Sealed::of(&read.wait()?, &loc))))
            .collect::<Result<Vec<_>>>()?;
        Ok((self.tag, fetched))
    }
}

/// One read to make, and which of the wanted blobs it serves.
struct Plan {
    pack: Id,
    start: u64,
    end: u64,
    members: Vec<usize>,
}

/// The reads that fetch the `wanted` blobs: per pack, blobs in offset order, joined into
/// one read while the gap is small and the read not too long. A blob asked for twice is
/// read once.
fn plan(blobs: &[(Id, BlobLocation)], wanted: &[usize]) -> Vec<Plan> {
    let mut wanted = wanted.to_vec();
    wanted.sort_by_key(|&i| (blobs[i].1.pack, blobs[i].1.offset));
    let mut plans: Vec<Plan> = Vec::new();
    for i in wanted {
        let loc = blobs[i].1;
        let (start, end) = (
            u64::from(loc.offset),
            u64::from(loc.offset) + u64::from(loc.length),
        );
        match plans.last_mut() {
            Some(p)
                if p.pack == loc.pack
                    && start <= p.end + MAX_GAP
                    && end.max(p.end) - p.start <= MAX_RANGE =>
            {
                p.end = p.end.max(end);
                p.members.push(i);
            }
            _ => plans.push(Plan {
                pack: loc.pack,
                start,
                end,
                members: vec![i],
            }),
        }
    }
    plans
}

fn read_range(
    repo: &Repository,
    pack: Id,
    start: u64,
    mut bytes: Vec<u8>,
    first: Id,
    needed_by: &str,
) -> Result<Range> {
    let pack = pack.to_hex();
    match repo
        .backend()
        .read_at(FileKind::Pack, &pack, start, &mut bytes)
    {
        Ok(()) => Ok(Range { start, bytes }),
        // The index names it, so its absence is damage, not an I/O hiccup.
        Err(StoreError::Io { error, .. }) if error.kind() == std::io::ErrorKind::NotFound => {
            Err(StoreError::damaged(
                FileKind::Pack.path_of(&pack),
                format!("missing (needed for blob {first} of {needed_by})"),
            ))
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;
    use std::time::Duration;

    use super::*;
    use crate::store::backend::{Backend, TempFile};
    use crate::store::memory::MemoryBackend;

    fn loc(pack: u8, offset: u32, length: u32) -> (Id, BlobLocation) {
        (
            Id([offset as u8; 32]),
            BlobLocation {
                pack: Id([pack; 32]),
                offset,
                length,
            },
        )
    }

    #[test]
    fn blobs_of_a_pack_are_joined_across_small_gaps_only() {
        let gap = MAX_GAP as u32;
        let blobs = [
            loc(1, 2001 + 2 * gap, 1000),
            loc(1, 0, 1000),
            loc(2, 0, 1000),
            loc(1, 1000 + gap, 1000),
        ];
        let plans = plan(&blobs, &[0, 1, 2, 3]);
        let shape: Vec<(u8, u64, u64, Vec<usize>)> = plans
            .iter()
            .map(|p| (p.pack.0[0], p.start, p.end, p.members.clone()))
            .collect();
        let gap = MAX_GAP;
        assert_eq!(
            shape,
            vec![
                (1, 0, 2000 + gap, vec![1, 3]),
                (1, 2001 + 2 * gap, 3001 + 2 * gap, vec![0]),
                (2, 0, 1000, vec![2]),
            ]
        );
    }

    #[test]
    fn a_read_never_grows_beyond_its_bound() {
        let step = 1024 * 1024;
        let blobs: Vec<(Id, BlobLocation)> = (0..40).map(|i| loc(1, i * step, step)).collect();
        let all: Vec<usize> = (0..blobs.len()).collect();
        let plans = plan(&blobs, &all);
        assert!(plans.iter().all(|p| p.end - p.start <= MAX_RANGE));
        assert_eq!(
            plans.len() as u64,
            (40 * u64::from(step)).div_ceil(MAX_RANGE)
        );
        let served: usize = plans.iter().map(|p| p.members.len()).sum();
        assert_eq!(served, 40);
    }

    /// A backend that counts the reads of packs, and whose reads of pack `aa…` wait (up
    /// to a bound) for a read of pack `bb…` to begin, recording whether one did: with a
    /// barrier between windows it never can.
    #[derive(Default)]
    struct Gate {
        inner: MemoryBackend,
        b_started: std::sync::Mutex<bool>,
        changed: std::sync::Condvar,
        overlapped: std::sync::atomic::AtomicBool,
        pack_reads: std::sync::atomic::AtomicUsize,
    }

    fn repo_on(backend: Arc<dyn Backend>) -> Repository {
        Repository::init_for_tests(backend)
    }

    impl Backend for Gate {
        fn location(&self) -> String {
            self.inner.location()
        }
        fn exists(&self, kind: FileKind, name: &str) -> Result<bool> {
            self.inner.exists(kind, name)
        }
        fn read(&self, kind: FileKind, name: &str) -> Result<Vec<u8>> {
            self.inner.read(kind, name)
        }
        fn read_at(&self, kind: FileKind, name: &str, offset: u64, buf: &mut [u8]) -> Result<()> {
            if kind == FileKind::Pack {
                self.pack_reads.fetch_add(1, Ordering::SeqCst);
            }
            if kind == FileKind::Pack && (name.starts_with("aa") || name.starts_with("bb")) {
                let mut started = self.b_started.lock().unwrap_or_else(|p| p.into_inner());
                if name.starts_with("bb") {
                    *started = true;
                    self.changed.notify_all();
                } else {
                    let (started, _) = self
                        .changed
                        .wait_timeout_while(started, Duration::from_secs(5), |s| !*s)
                        .unwrap_or_else(|p| p.into_inner());
                    self.overlapped.store(*started, Ordering::SeqCst);
                }
            }
            self.inner.read_at(kind, name, offset, buf)
        }
        fn size(&self, kind: FileKind, name: &str) -> Result<u64> {
            self.inner.size(kind, name)
        }
        fn modified(&self, kind: FileKind, name: &str) -> Result<i64> {
            self.inner.modified(kind, name)
        }
        fn write_new(&self, kind: FileKind, name: &str, data: &[u8]) -> Result<()> {
            self.inner.write_new(kind, name, data)
        }
        fn list_sized(&self, kind: FileKind) -> Result<Vec<(String, u64)>> {
            self.inner.list_sized(kind)
        }
        fn remove(&self, kind: FileKind, name: &str) -> Result<()> {
            self.inner.remove(kind, name)
        }
        fn temp_files(&self) -> Result<Vec<TempFile>> {
            self.inner.temp_files()
        }
        fn strays(&self) -> Result<Vec<String>> {
            self.inner.strays()
        }
        fn remove_temp(&self, path: &str) -> Result<()> {
            self.inner.remove_temp(path)
        }
        fn create_layout(&self) -> Result<()> {
            self.inner.create_layout()
        }
    }

    /// Fetches `windows` whole: each blob as (its window's tag, its first byte, its length).
    fn fetch_all<const N: usize>(
        repo: &Repository,
        windows: [(u8, Vec<(Id, BlobLocation)>); N],
    ) -> Vec<(u8, u8, usize)> {
        let mut delivered = Vec::new();
        Fetcher::new(repo)
            .expect("fetcher")
            .fetch(
                windows.into_iter().map(Ok),
                "the test stream",
                || None,
                |tag, blobs| {
                    for (_, _, sealed) in blobs {
                        delivered.push((tag, sealed[0], sealed.len()));
                    }
                    Ok(true)
                },
            )
            .expect("fetch");
        delivered
    }

    #[test]
    fn the_next_window_is_read_while_the_one_before_is_still_arriving() {
        let gate = Arc::new(Gate::default());
        let repo = repo_on(gate.clone());
        for byte in [0xaa, 0xbb] {
            let name = Id([byte; 32]).to_hex();
            gate.write_new(FileKind::Pack, &name, &[byte; 100])
                .expect("pack");
        }
        let windows = [0xaa, 0xbb].map(|byte| (byte, vec![loc(byte, 0, 100)]));
        let delivered = fetch_all(&repo, windows);
        assert!(
            gate.overlapped.load(Ordering::SeqCst),
            "the second window's read did not begin while the first's was in flight"
        );
        assert_eq!(
            delivered,
            vec![(0xaa, 0xaa, 100), (0xbb, 0xbb, 100)],
            "windows are delivered in order, each with its own bytes"
        );
    }

    #[test]
    fn a_missing_pack_is_damage_that_names_it_and_the_stream() {
        let repo = repo_on(Arc::new(MemoryBackend::new()));
        let windows = [Ok(((), vec![loc(0xcc, 0, 100)]))];
        let err = Fetcher::new(&repo)
            .expect("fetcher")
            .fetch(windows.into_iter(), "graph.dump", || None, |_, _| Ok(true))
            .expect_err("a missing pack");
        let text = err.to_string();
        assert!(text.contains(&Id([0xcc; 32]).to_hex()), "{text}");
        assert!(text.contains("graph.dump"), "{text}");
    }

    #[test]
    fn a_blob_that_a_read_of_the_window_before_spans_is_not_read_again() {
        let gate = Arc::new(Gate::default());
        let repo = repo_on(gate.clone());
        let pack: Vec<u8> = (0..3000u32).map(|i| (i / 1000) as u8).collect();
        gate.write_new(FileKind::Pack, &Id([0xcc; 32]).to_hex(), &pack)
            .expect("pack");
        // The first window's two blobs are read as one range, across the second's blob.
        let windows = [
            (1, vec![loc(0xcc, 0, 1000), loc(0xcc, 2000, 1000)]),
            (2, vec![loc(0xcc, 1000, 1000)]),
        ];
        let delivered = fetch_all(&repo, windows);
        assert_eq!(
            delivered,
            vec![(1, 0, 1000), (1, 2, 1000), (2, 1, 1000)],
            "each blob its own bytes, in order"
        );
        assert_eq!(gate.pack_reads.load(Ordering::SeqCst), 1, "pack reads");
    }
}
