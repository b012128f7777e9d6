//! Copying snapshots between repositories (`rbk copy`): blob by blob where the two share their chunking, re-chunked where they do not.
//!
//! Each repository keeps its own data key, so every blob is opened with the source's key
//! and sealed again with the destination's. Chunk ids are keyed (`crypto.rs`), so a blob
//! keeps its id only in a destination made with the source's chunking secrets (`rbk init
//! --copy-chunker-params-from`): then a copy moves the blobs the destination lacks, as
//! they are (the compressed payload is not compressed again), and deduplicates with
//! snapshots taken into the destination directly. Otherwise each part is restored from the
//! source and stored into the destination like any stream, which costs chunking and
//! compression but still sends only what the destination lacks.
//!
//! A copy is resumable: the destination writer checkpoints its index after each list blob
//! (every 8192 chunks) and each part, so a copy killed midway finds what it already sent
//! indexed on the next run and sends only the rest.

use std::io::Read;
use std::sync::Arc;

use rayon::prelude::*;
use zeroize::{Zeroize, ZeroizeOnDrop};

use super::blob::BlobKind;
use super::config::ChunkerParams;
use super::error::{Result, StoreError};
use super::fetch::{Fetcher, SPARE};
use super::format::FileKind;
use super::id::Id;
use super::index::{BlobLocation, Index};
use super::manifest::{Part, Snapshot, StoredStream};
use super::pieces::{CODEC_PIECES, Piece, decode_table};
use super::reader::windows;
use super::repo::Repository;
use super::writer::SnapshotWriter;
use crate::progress::{Task, Unit};

/// What decides a repository's cut points and chunk ids: its chunker parameters and two of
/// its three keys (not the data key). Secret: whoever holds it can tell which content a
/// repository holds by its ids.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct Chunking {
    #[zeroize(skip)]
    pub params: ChunkerParams,
    pub id_key: [u8; 32],
    pub chunker_key: [u8; 32],
}

impl std::fmt::Debug for Chunking {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chunking")
            .field("params", &self.params)
            .finish_non_exhaustive()
    }
}

/// How a snapshot was copied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CopyMode {
    /// Blob by blob, the two repositories sharing their chunking.
    Blobs,
    /// Each part restored and stored again.
    Rechunked,
}

/// Whether `a` and `b` are one snapshot, as one repository and a copy of it hold it: the
/// same time, host, tags and parts (by their bytes). Labels are not compared: a copy may
/// carry one that says where it came from.
pub fn same_snapshot(a: &Snapshot, b: &Snapshot) -> bool {
    a.time == b.time
        && a.host == b.host
        && a.tags == b.tags
        && a.parts.len() == b.parts.len()
        && a.parts.iter().zip(&b.parts).all(|(x, y)| {
            x.name == y.name
                && x.codec == y.codec
                && x.envelope == y.envelope
                && x.source_size == y.source_size
                && x.source_hash == y.source_hash
                && x.stored.size == y.stored.size
                && x.stored.hash == y.stored.hash
        })
}

/// Copies `snapshot` of `from` (its blobs found through `from_index`) into `to`, and
/// commits it there with `labels` in place of its own. Nothing of it is a snapshot of
/// `to` until the commit; what was sent before a failure stays indexed for the next try.
pub fn copy_snapshot(
    from: &Repository,
    from_index: &Index,
    to: &Repository,
    to_index: Arc<Index>,
    snapshot: &Snapshot,
    labels: Vec<(String, String)>,
) -> Result<(Id, Snapshot, CopyMode)> {
    let mode = if from.chunking() == to.chunking() {
        CopyMode::Blobs
    } else {
        CopyMode::Rechunked
    };
    let mut writer = SnapshotWriter::new(to, to_index);
    let mut parts = Vec::with_capacity(snapshot.parts.len());
    for part in &snapshot.parts {
        let task = to.progress().task(
            &format!("copy {}", part.name),
            Unit::Bytes,
            Some(part.stored.size),
        );
        let stored = match mode {
            CopyMode::Blobs => {
                copy_blobs(
                    from,
                    from_index,
                    &mut writer,
                    &part.stored,
                    &part.name,
                    &*task,
                )?;
                part.stored.clone()
            }
            CopyMode::Rechunked => rechunk(from, from_index, &writer, part, &*task)?,
        };
        writer.checkpoint()?;
        parts.push(Part {
            stored,
            ..part.clone()
        });
    }
    let copy = Snapshot {
        parts,
        labels,
        ..snapshot.clone()
    };
    let (id, saved) = writer.commit(copy)?;
    Ok((id, saved, mode))
}

/// Sends the chunks and list blobs of `stream` that the destination lacks, sealed again
/// with its key; the stream keeps its list ids, since the ids are the same in both.
fn copy_blobs(
    from: &Repository,
    from_index: &Index,
    writer: &mut SnapshotWriter<'_>,
    stream: &StoredStream,
    what: &str,
    task: &dyn Task,
) -> Result<()> {
    let from_codec = from.blob_codec();
    let reseal = |writer: &SnapshotWriter<'_>, id: &Id, loc: &BlobLocation, sealed: &[u8]| {
        writer
            .codec()
            .reseal_from(&from_codec, id, sealed)
            .map_err(|detail| {
                StoreError::damaged(
                    FileKind::Pack.path_of(&loc.pack.to_hex()),
                    format!("blob {id}: {detail}"),
                )
            })
    };
    let fetcher = Fetcher::new(from)?;
    // Buffers of resealed windows, back to the fetcher for its next reads.
    let (recycle, recycled) = std::sync::mpsc::sync_channel(SPARE);
    for list in &stream.lists {
        let entries = from.read_list(from_index, list, what)?;
        // Claimed now, in stream order: each blob the destination lacks is sent once,
        // whichever stream of the snapshot needs it first.
        let mut wanted = Vec::new();
        for (id, len) in &entries {
            if writer.claim(id) {
                wanted.push(((*id, *len), from.locate(from_index, id, what)?));
            } else {
                task.advance(u64::from(*len));
            }
        }
        let windows = windows(&wanted).map(|w| {
            let lens: Vec<u32> = w.iter().map(|((_, len), _)| *len).collect();
            Ok((lens, w.iter().map(|((id, _), loc)| (*id, *loc)).collect()))
        });
        fetcher.fetch(
            windows,
            what,
            || recycled.try_recv().ok(),
            |lens: Vec<u32>, fetched| {
                let shared: &SnapshotWriter<'_> = writer;
                let moved = fetched
                    .par_iter()
                    .map(|(id, loc, sealed)| reseal(shared, id, loc, sealed))
                    .collect::<Result<Vec<_>>>()?;
                for ((len, (id, _, _)), blob) in lens.iter().zip(&fetched).zip(moved) {
                    task.advance(u64::from(*len));
                    task.added(blob.len() as u64);
                    writer.push(BlobKind::Data, *id, blob)?;
                }
                for (_, _, sealed) in fetched {
                    if let Some(buffer) = sealed.reclaim() {
                        let _ = recycle.try_send(buffer);
                    }
                }
                Ok(true)
            },
        )?;
        writer.count_chunks(entries.len() as u64);
        if writer.claim(list) {
            let loc = from.locate(from_index, list, what)?;
            let blob = reseal(writer, list, &loc, &from.read_sealed(loc, list, what)?)?;
            task.added(blob.len() as u64);
            writer.push(BlobKind::List, *list, blob)?;
        }
        writer.checkpoint()?;
    }
    Ok(())
}

/// Restores `part` from the source into the destination's chunker through a pipe, and
/// checks that the destination stored the same bytes.
fn rechunk(
    from: &Repository,
    from_index: &Index,
    writer: &SnapshotWriter<'_>,
    part: &Part,
    task: &dyn Task,
) -> Result<StoredStream> {
    let (reader, mut pipe) = std::io::pipe().map_err(StoreError::Output)?;
    let (restored, stored) = std::thread::scope(|scope| {
        let restoring = scope.spawn(move || {
            // The pipe's write end is dropped when this returns, which ends the stream the
            // writer reads, early if the restore failed.
            from.restore_part(from_index, part, &mut pipe, task)
        });
        let stored = if part.codec == CODEC_PIECES {
            restore_pieces(writer, part, reader)
        } else {
            writer.add_stream(reader, &crate::progress::Silent)
        };
        let restored = restoring.join().unwrap_or_else(|_| {
            Err(StoreError::Invalid(format!(
                "restoring part {} for the copy panicked",
                part.name
            )))
        });
        (restored, stored)
    });
    let stored = match (restored, stored) {
        // The destination failed and closed the pipe: its error is the cause, the broken
        // pipe only the restore noticing.
        (Err(StoreError::Output(_)), Err(e)) => return Err(e),
        // The source's damage explains a short stream.
        (Err(e), _) => return Err(e),
        (Ok(()), stored) => stored?,
    };
    if stored.size != part.stored.size || stored.hash != part.stored.hash {
        return Err(StoreError::Invalid(format!(
            "part {} was stored in the destination as {} bytes that differ from the {} bytes restored",
            part.name, stored.size, part.stored.size
        )));
    }
    Ok(stored)
}

/// Stores a pieced part anew from its restored bytes, piece by piece, so that the copy
/// keeps its piece table (and so its stored hash) whatever the chunking.
fn restore_pieces(
    writer: &SnapshotWriter<'_>,
    part: &Part,
    mut reader: impl Read + Send,
) -> Result<StoredStream> {
    let table = decode_table(&part.envelope)
        .map_err(|detail| StoreError::damaged(part.name.clone(), detail))?;
    let mut pieces = Vec::with_capacity(table.len());
    for record in &table {
        pieces.push(writer.add_piece((&mut reader).take(record.size), &crate::progress::Silent)?);
    }
    let refs: Vec<&Piece> = pieces.iter().collect();
    let (stored, envelope) = writer.join_pieces(&refs, &crate::progress::Silent)?;
    if envelope != part.envelope {
        return Err(StoreError::Invalid(format!(
            "part {}'s pieces were stored in the destination other than they were restored",
            part.name
        )));
    }
    Ok(stored)
}
