//! Fetching many blobs of a stream at once: ranged reads coalesced per pack, several in flight.
//!
//! A restore over a network pays a round trip per read, so one read per 64 KiB chunk
//! caps it at a few MB/s whatever the bandwidth. Blobs sit in their pack in id order,
//! not stream order (pack.rs: the order must not reveal the stream), so the chunks of a
//! stretch of stream are scattered over their pack. The caller asks for a window of
//! about a pack's worth of sealed bytes at once (a stretch of stream was packed
//! together, so such a window needs most of one or two packs): its blobs that share a
//! pack are read as few ranges (a gap of up to `MAX_GAP` is read and dropped rather than
//! split into two requests), and the ranges are read in parallel.

use std::sync::Arc;

use rayon::prelude::*;

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
/// are waiting at any time; a local disk does not mind.
const READERS: usize = 8;

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

/// Reads the sealed bytes of blobs for one reader of a stream (a restore, a copy).
pub(super) struct Fetcher<'r> {
    repo: &'r Repository,
    pool: rayon::ThreadPool,
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

    /// The sealed bytes of each blob, in the order given. `needed_by` names the stream in
    /// errors. `spare` holds buffers of earlier reads to read into: a fresh buffer of
    /// 16 MiB costs a page fault per 4 KiB, more than the read into it.
    pub(super) fn sealed(
        &self,
        blobs: &[(Id, BlobLocation)],
        needed_by: &str,
        spare: &mut Vec<Vec<u8>>,
    ) -> Result<Vec<Sealed>> {
        let plans = plan(blobs);
        // Taken here, on this thread, not by the reader threads: memory a thread
        // allocates stays in that thread's malloc arena, and eight arenas each holding a
        // pack would multiply what a restore keeps.
        let buffers: Vec<Vec<u8>> = plans
            .iter()
            .map(|p| {
                let mut buffer = spare.pop().unwrap_or_default();
                buffer.resize((p.end - p.start) as usize, 0);
                buffer
            })
            .collect();
        let repo = self.repo;
        let read: Vec<Result<Range>> = self.pool.install(|| {
            plans
                .par_iter()
                .zip(buffers)
                .map(|(p, buffer)| read_range(repo, p, buffer, blobs, needed_by))
                .collect()
        });
        let mut out: Vec<Option<Sealed>> = (0..blobs.len()).map(|_| None).collect();
        for (plan, range) in plans.iter().zip(read) {
            let range = Arc::new(range?);
            for &i in &plan.members {
                out[i] = Some(Sealed::of(&range, &blobs[i].1));
            }
        }
        out.into_iter()
            .map(|s| s.ok_or_else(|| StoreError::Invalid("a blob was planned but not read".into())))
            .collect()
    }
}

/// One read to make, and which of the wanted blobs it serves.
struct Plan {
    pack: Id,
    start: u64,
    end: u64,
    members: Vec<usize>,
}

/// The reads that fetch every blob: per pack, blobs in offset order, joined into one read
/// while the gap is small and the read not too long. A blob asked for twice is read once.
fn plan(blobs: &[(Id, BlobLocation)]) -> Vec<Plan> {
    let mut wanted: Vec<usize> = (0..blobs.len()).collect();
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
    plan: &Plan,
    mut bytes: Vec<u8>,
    blobs: &[(Id, BlobLocation)],
    needed_by: &str,
) -> Result<Range> {
    let pack = plan.pack.to_hex();
    match repo
        .backend()
        .read_at(FileKind::Pack, &pack, plan.start, &mut bytes)
    {
        Ok(()) => Ok(Range {
            start: plan.start,
            bytes,
        }),
        // The index names it, so its absence is damage, not an I/O hiccup.
        Err(StoreError::Io { error, .. }) if error.kind() == std::io::ErrorKind::NotFound => {
            let first = plan
                .members
                .first()
                .map(|&i| blobs[i].0)
                .unwrap_or_default();
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
    use super::*;

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
        let plans = plan(&blobs);
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
        let plans = plan(&blobs);
        assert!(plans.iter().all(|p| p.end - p.start <= MAX_RANGE));
        assert_eq!(
            plans.len() as u64,
            (40 * u64::from(step)).div_ceil(MAX_RANGE)
        );
        let served: usize = plans.iter().map(|p| p.members.len()).sum();
        assert_eq!(served, 40);
    }
}
