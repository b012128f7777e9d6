//! A file read again, stored against the piece it was before (volume mode's paused pass): only the chunks over blocks that changed are cut, identified and sealed again, and the result is the piece a full read gives.
//!
//! Content-defined cuts depend only on the bytes from a chunk's start to its cut (FastCDC
//! starts its rolling hash afresh at every chunk). So a stream read again agrees with the
//! earlier one on every cut up to its first changed byte, and once a new cut falls where
//! the earlier piece had one, over bytes that did not change, on every cut after it until
//! the next change. The earlier piece's 64 KiB block hashes (`treehash.rs`) say which bytes
//! did not change; the new stream's are computed as it is read, and are also its hash. A
//! chunk of the earlier piece is used as it is where every block it overlaps agrees; a
//! chunk that reached the earlier piece's end is never used, as its cut was the end of
//! that stream rather than a decision of the chunker.

use std::io::{BufRead, Read};

use blake3::hazmat::ChainingValue;
use rayon::prelude::*;

use super::SnapshotWriter;
use crate::progress::Task;
use crate::store::blob::BlobKind;
use crate::store::error::{Result, StoreError};
use crate::store::id::Id;
use crate::store::pieces::Piece;
use crate::store::readahead;
use crate::store::treehash::{BLOCK, TreeHasher};

/// Bytes read from the stream at a time.
const WINDOW: usize = 8 << 20;
/// Bytes of new chunks sealed at once, in parallel.
const BATCH: usize = 8 << 20;

/// A chunk of the new piece, in order: one of the earlier piece's, or bytes to seal.
enum Pending {
    Reused(Id, u32),
    New(Vec<u8>),
}

/// A piece stored against an earlier one, and how many of its bytes were the earlier
/// piece's chunks, used without being cut, identified or sealed again.
pub struct PieceLike {
    pub piece: Piece,
    pub reused: u64,
}

impl SnapshotWriter<'_> {
    /// Stores `reader` as [`add_piece`](Self::add_piece) does, given `base`: a piece of an
    /// earlier read of the same bytes (the same file, before it changed) that this writer
    /// stored or found in the index. The chunk list, the hash and so the deduplication are
    /// those of `add_piece`; only the work differs. Every byte is read and hashed once.
    pub fn add_piece_like<R: Read + Send>(
        &self,
        reader: R,
        base: &Piece,
        task: &dyn Task,
    ) -> Result<PieceLike> {
        // Read on a thread of its own, as `add_piece` reads, so that the producer (tar,
        // through a pipe) is not held up while a window is hashed. (Measured by
        // benches/pause, the paused pass took 0.73-1.12 s per GB of changed file with or
        // without it: tar and the hashing share two cores.)
        let (buf_tx, recycle, ahead) = readahead::channel();
        std::thread::scope(|scope| {
            scope.spawn(move || readahead::pump(reader, buf_tx, recycle));
            self.store_like(ahead, base, task)
        })
    }

    fn store_like(
        &self,
        mut reader: impl BufRead,
        base: &Piece,
        task: &dyn Task,
    ) -> Result<PieceLike> {
        let max = self.chunker.max_size() as u64;
        // Enough bytes past a chunk's start to cut it, and to hash every block it overlaps.
        let lookahead = max + 2 * BLOCK as u64;
        let base_starts: Vec<u64> = base
            .chunks
            .iter()
            .scan(0u64, |at, &(_, len)| {
                let start = *at;
                *at += u64::from(len);
                Some(start)
            })
            .collect();
        let mut hasher = TreeHasher::new(true);
        // The stream's bytes from `data_off` to `read_to`; `start` is the next chunk's.
        let mut data: Vec<u8> = Vec::new();
        let (mut data_off, mut read_to, mut start) = (0u64, 0u64, 0u64);
        let mut eof = false;
        let mut cursor = 0usize;
        let mut pending: Vec<Pending> = Vec::new();
        let mut pending_bytes = 0usize;
        let mut chunks: Vec<(Id, u32)> = Vec::new();
        let mut reused = 0u64;
        loop {
            while !eof && read_to < start + lookahead {
                let old = data.len();
                eof = readahead::fill_to(&mut reader, &mut data, old + WINDOW)
                    .map_err(StoreError::Input)?;
                hasher.update_parallel(&data[old..]);
                read_to += (data.len() - old) as u64;
            }
            if start == read_to {
                break;
            }
            while base_starts.get(cursor).is_some_and(|&s| s < start) {
                cursor += 1;
            }
            let at = (start - data_off) as usize;
            let same = match base.chunks.get(cursor) {
                Some(&(id, len))
                    if base_starts[cursor] == start
                        && cursor + 1 < base.chunks.len()
                        && start + u64::from(len) <= read_to
                        && blocks_agree(
                            hasher.blocks(),
                            &base.blocks,
                            start,
                            start + u64::from(len),
                        ) =>
                {
                    Some((id, len))
                }
                _ => None,
            };
            if let Some((id, len)) = same {
                pending.push(Pending::Reused(id, len));
                start += u64::from(len);
                reused += u64::from(len);
            } else {
                let len = self.chunker.cut(&data[at..]);
                pending.push(Pending::New(data[at..at + len].to_vec()));
                pending_bytes += len;
                start += len as u64;
            }
            if pending_bytes >= BATCH {
                self.seal_pending(&mut pending, &mut chunks, task)?;
                pending_bytes = 0;
            }
            // Bytes before the next chunk are hashed and cut: let them go, a window at a time.
            if start - data_off >= 2 * WINDOW as u64 {
                data.drain(..(start - data_off) as usize);
                data_off = start;
            }
        }
        self.seal_pending(&mut pending, &mut chunks, task)?;
        let (hash, blocks) = hasher.finalize();
        Ok(PieceLike {
            piece: Piece {
                size: read_to,
                hash,
                chunks,
                blocks,
            },
            reused,
        })
    }

    /// Seals the new chunks of `pending` in parallel and appends all of it, in order, to
    /// `chunks`.
    fn seal_pending(
        &self,
        pending: &mut Vec<Pending>,
        chunks: &mut Vec<(Id, u32)>,
        task: &dyn Task,
    ) -> Result<()> {
        let new: Vec<&[u8]> = pending
            .iter()
            .filter_map(|p| match p {
                Pending::New(bytes) => Some(&bytes[..]),
                Pending::Reused(..) => None,
            })
            .collect();
        let sealed: Vec<_> = new.par_iter().map(|c| self.seal_if_new(c)).collect();
        let mut sealed = sealed.into_iter();
        for p in pending.drain(..) {
            match p {
                Pending::Reused(id, len) => chunks.push((id, len)),
                Pending::New(_) => {
                    let Some((id, len, blob)) = sealed.next() else {
                        return Err(StoreError::Invalid("a new chunk went unsealed".into()));
                    };
                    if let Some(blob) = blob {
                        task.added(blob.len() as u64);
                        self.push(BlobKind::Data, id, blob)?;
                    }
                    chunks.push((id, len));
                }
            }
        }
        Ok(())
    }
}

/// Whether the bytes `start..end` are the same in both streams: every 64 KiB block they
/// overlap has the same hash in each (a block not hashed yet, or absent from either, is
/// not the same).
fn blocks_agree(new: &[ChainingValue], old: &[ChainingValue], start: u64, end: u64) -> bool {
    let block = BLOCK as u64;
    (start / block..end.div_ceil(block)).all(|k| {
        let k = k as usize;
        matches!((new.get(k), old.get(k)), (Some(a), Some(b)) if a == b)
    })
}
