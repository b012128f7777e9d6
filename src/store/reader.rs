//! Reading streams back: fetch and open blobs in parallel, write them in order, verify the whole.

use std::io::Write;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use rayon::prelude::*;

use super::error::{Result, StoreError};
use super::fetch::{Fetcher, SPARE, Sealed};
use super::format::FileKind;
use super::id::Id;
use super::index::{BlobLocation, Index};
use super::manifest::{Part, Snapshot, StoredStream, decode_list};
use super::pieces::{CODEC_PIECES, PieceCheck, decode_table, table_hash};
use super::repo::Repository;
use crate::progress::Task;

/// Larger than any sealed blob rbk writes (chunks are at most the config's
/// bounded maximum, 16 MiB, list blobs about 288 KiB).
const MAX_SEALED_BLOB: u32 = 80 * 1024 * 1024;

/// Sealed bytes fetched at a time: about a pack, so that the blobs of a stretch of stream,
/// scattered over the pack they were written to, come in a few reads (fetch.rs).
const WINDOW_BYTES: u64 = 8 * 1024 * 1024;

/// A chunk as fetched: its id, its length by its list, where it was, its sealed bytes.
type Chunk = (Id, u32, BlobLocation, Sealed);

/// Chunks opened in parallel and handed to the writer at a time.
const BATCH: usize = 32;

/// `blobs` cut into windows of about `WINDOW_BYTES` sealed (at least one blob each).
pub(super) fn windows<T>(
    blobs: &[(T, BlobLocation)],
) -> impl Iterator<Item = &[(T, BlobLocation)]> {
    let mut rest = blobs;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let mut bytes = 0u64;
        let n = rest
            .iter()
            .take_while(|(_, loc)| {
                let fits = bytes == 0 || bytes + u64::from(loc.length) <= WINDOW_BYTES;
                bytes += u64::from(loc.length);
                fits
            })
            .count()
            .max(1);
        let (window, after) = rest.split_at(n);
        rest = after;
        Some(window)
    })
}

/// The index is repository data: a length no writer produces is damage, refused before
/// it is allocated.
fn checked_length(loc: &BlobLocation, id: &Id) -> Result<()> {
    if loc.length > MAX_SEALED_BLOB {
        return Err(StoreError::damaged(
            FileKind::Pack.path_of(&loc.pack.to_hex()),
            format!(
                "the index gives blob {id} {} bytes, more than any blob can have",
                loc.length
            ),
        ));
    }
    Ok(())
}

impl Repository {
    /// Reads, opens and verifies one blob (its content must hash to its id).
    pub fn read_blob(&self, index: &Index, id: &Id, needed_by: &str) -> Result<Vec<u8>> {
        self.read_blob_at(self.locate(index, id, needed_by)?, id, needed_by)
    }

    /// Reads, opens and verifies one blob at a known place.
    pub fn read_blob_at(&self, loc: BlobLocation, id: &Id, needed_by: &str) -> Result<Vec<u8>> {
        checked_length(&loc, id)?;
        let buf = self.read_sealed(loc, id, needed_by)?;
        self.blob_codec().open(id, &buf).map_err(|detail| {
            StoreError::damaged(
                FileKind::Pack.path_of(&loc.pack.to_hex()),
                format!("blob {id}: {detail}"),
            )
        })
    }

    /// Where the index says blob `id` is, with a length a writer can have produced: every
    /// reader of blobs starts here (restore's and copy's fetcher as well).
    pub(super) fn locate(&self, index: &Index, id: &Id, needed_by: &str) -> Result<BlobLocation> {
        let loc = index.get(id).ok_or_else(|| match index.lost_pack_of(id) {
            Some(pack) => StoreError::damaged(
                FileKind::Pack.path_of(&pack.to_hex()),
                format!("missing (needed for blob {id} of {needed_by})"),
            ),
            None => StoreError::MissingBlob {
                blob: id.to_hex(),
                needed_by: needed_by.to_string(),
            },
        })?;
        checked_length(&loc, id)?;
        Ok(loc)
    }

    /// A blob's sealed bytes as its pack holds them (`loc` from `locate`).
    pub(super) fn read_sealed(
        &self,
        loc: BlobLocation,
        id: &Id,
        needed_by: &str,
    ) -> Result<Vec<u8>> {
        let pack = loc.pack.to_hex();
        let mut buf = vec![0u8; loc.length as usize];
        match self
            .backend()
            .read_at(FileKind::Pack, &pack, loc.offset as u64, &mut buf)
        {
            Ok(()) => {}
            // The index names it, so its absence is damage, not an I/O hiccup.
            Err(StoreError::Io { error, .. }) if error.kind() == std::io::ErrorKind::NotFound => {
                return Err(StoreError::damaged(
                    FileKind::Pack.path_of(&pack),
                    format!("missing (needed for blob {id} of {needed_by})"),
                ));
            }
            Err(e) => return Err(e),
        }
        Ok(buf)
    }

    /// The list blobs and chunks a snapshot refers to, looking each list up in
    /// `indexes` in turn. A list blob found in none is returned without its
    /// chunks (it is itself missing; the caller decides what that means).
    pub fn referenced_blobs(&self, indexes: &[&Index], snapshot: &Snapshot) -> Result<Vec<Id>> {
        let mut out = Vec::new();
        for part in &snapshot.parts {
            for list in &part.stored.lists {
                out.push(*list);
                let Some(loc) = indexes.iter().find_map(|i| i.get(list)) else {
                    continue;
                };
                let bytes = self.read_blob_at(loc, list, &part.name)?;
                let entries = decode_list(&bytes)
                    .map_err(|d| StoreError::damaged(format!("list blob {list}"), d))?;
                out.extend(entries.into_iter().map(|(id, _)| id));
            }
        }
        Ok(out)
    }

    /// The chunk ids and lengths of a stored stream, in order.
    pub fn read_list(&self, index: &Index, list: &Id, needed_by: &str) -> Result<Vec<(Id, u32)>> {
        let bytes = self.read_blob(index, list, needed_by)?;
        decode_list(&bytes).map_err(|d| StoreError::damaged(format!("list blob {list}"), d))
    }

    /// Fetches the chunks of `stream` a window at a time, in order, handing each window's
    /// sealed bytes to `deliver` until it returns false.
    fn fetch_stream(
        &self,
        index: &Index,
        stream: &StoredStream,
        what: &str,
        recycled: Receiver<Vec<u8>>,
        mut deliver: impl FnMut(Vec<Chunk>) -> bool,
    ) -> Result<()> {
        let fetcher = Fetcher::new(self)?;
        // Each list blob's chunks, located and cut into windows when the fetch reaches it.
        let mut lists = stream.lists.iter();
        let mut pending = Vec::new().into_iter();
        let windows = std::iter::from_fn(|| {
            loop {
                if let Some(window) = pending.next() {
                    return Some(Ok(window));
                }
                let list = lists.next()?;
                let located = match self.located_list(index, list, what) {
                    Ok(located) => located,
                    Err(e) => return Some(Err(e)),
                };
                pending = windows(&located)
                    .map(|w| {
                        let lens: Vec<u32> = w.iter().map(|((_, len), _)| *len).collect();
                        let blobs = w.iter().map(|((id, _), loc)| (*id, *loc)).collect();
                        (lens, blobs)
                    })
                    .collect::<Vec<_>>()
                    .into_iter();
            }
        });
        fetcher.fetch(
            windows,
            what,
            || recycled.try_recv().ok(),
            |lens: Vec<u32>, sealed| {
                Ok(deliver(
                    lens.into_iter()
                        .zip(sealed)
                        .map(|(len, (id, loc, sealed))| (id, len, loc, sealed))
                        .collect(),
                ))
            },
        )
    }

    /// The chunks of one list blob with their lengths and places.
    fn located_list(
        &self,
        index: &Index,
        list: &Id,
        what: &str,
    ) -> Result<Vec<((Id, u32), BlobLocation)>> {
        self.read_list(index, list, what)?
            .into_iter()
            .map(|(id, len)| Ok(((id, len), self.locate(index, &id, what)?)))
            .collect()
    }

    /// Opens fetched chunks in batches, in parallel, checking each against the length its
    /// list gives, and hands each batch to `deliver` until it returns false.
    fn open_fetched(
        &self,
        windows: Receiver<Result<Vec<Chunk>>>,
        recycle: SyncSender<Vec<u8>>,
        mut deliver: impl FnMut(Vec<Vec<u8>>) -> bool,
    ) -> Result<()> {
        let codec = self.blob_codec();
        for window in windows {
            let window = window?;
            for batch in window.chunks(BATCH) {
                let chunks = batch
                    .par_iter()
                    .map(|(id, len, loc, sealed)| {
                        // The stream's hash is checked at the end, so each chunk needs
                        // only its AEAD check here.
                        let data = codec.open_authenticated(id, sealed).map_err(|detail| {
                            StoreError::damaged(
                                FileKind::Pack.path_of(&loc.pack.to_hex()),
                                format!("blob {id}: {detail}"),
                            )
                        })?;
                        if data.len() != *len as usize {
                            return Err(StoreError::damaged(
                                FileKind::Pack.path_of(&loc.pack.to_hex()),
                                format!("chunk {id} has {} bytes, its list says {len}", data.len()),
                            ));
                        }
                        Ok(data)
                    })
                    .collect::<Result<Vec<_>>>()?;
                if !deliver(chunks) {
                    return Ok(());
                }
            }
            // The window's reads, back to the fetcher for the next ones (a full queue
            // means it has enough: the buffer is freed).
            for (_, _, _, sealed) in window {
                if let Some(buffer) = sealed.reclaim() {
                    let _ = recycle.try_send(buffer);
                }
            }
        }
        Ok(())
    }

    /// Writes a stored stream to `out` and checks it against its recorded
    /// size and hash. On any error the bytes written so far must be
    /// discarded by the caller: they are not the stream. `task` advances by
    /// the stream's bytes as they are written.
    pub fn restore_stream(
        &self,
        index: &Index,
        stream: &StoredStream,
        what: &str,
        out: &mut dyn Write,
        task: &dyn Task,
    ) -> Result<()> {
        self.restore_checked(index, stream, what, Check::whole(), out, task)
    }

    /// Writes a part's stored stream to `out`, checked as its codec says: a pieced stream
    /// (`pieces.rs`) piece by piece against its envelope's table, any other against its
    /// recorded size and hash. The caller decodes what the codec encoded.
    pub fn restore_part(
        &self,
        index: &Index,
        part: &Part,
        out: &mut dyn Write,
        task: &dyn Task,
    ) -> Result<()> {
        let check = if part.codec == CODEC_PIECES {
            let damaged = |detail: String| StoreError::damaged(part.name.clone(), detail);
            if table_hash(&part.envelope) != part.stored.hash {
                return Err(damaged(
                    "its piece table does not match the hash recorded at backup".into(),
                ));
            }
            let table = decode_table(&part.envelope).map_err(damaged)?;
            let sum = table
                .iter()
                .try_fold(0u64, |sum, p| sum.checked_add(p.size));
            if sum != Some(part.stored.size) {
                return Err(damaged(format!(
                    "its pieces do not add up to the {} bytes recorded at backup",
                    part.stored.size
                )));
            }
            Check::Pieces(PieceCheck::new(table))
        } else {
            Check::whole()
        };
        self.restore_checked(index, &part.stored, &part.name, check, out, task)
    }

    fn restore_checked(
        &self,
        index: &Index,
        stream: &StoredStream,
        what: &str,
        mut check: Check,
        out: &mut dyn Write,
        task: &dyn Task,
    ) -> Result<()> {
        // Three threads: one fetches windows of sealed blobs while the next opens the one
        // before in batches and this one writes. A window is handed over only when the
        // opener is ready for it (the fetcher's reads in flight keep the network busy
        // meanwhile), so memory stays about four windows of sealed bytes (two being read,
        // the one they may share reads with, the one being opened) and a few batches,
        // whatever the stream's size.
        let (window_tx, window_rx) = sync_channel(0);
        let (recycle_tx, recycle_rx) = sync_channel(SPARE);
        let (tx, rx) = sync_channel::<Result<Vec<Vec<u8>>>>(2);
        std::thread::scope(|scope| {
            scope.spawn(move || {
                let fetched = self.fetch_stream(index, stream, what, recycle_rx, |window| {
                    window_tx.send(Ok(window)).is_ok()
                });
                if let Err(e) = fetched {
                    let _ = window_tx.send(Err(e));
                }
            });
            scope.spawn(move || {
                let opened =
                    self.open_fetched(window_rx, recycle_tx, |batch| tx.send(Ok(batch)).is_ok());
                if let Err(e) = opened {
                    let _ = tx.send(Err(e));
                }
            });
            let mut size = 0u64;
            for batch in rx {
                for chunk in batch? {
                    check
                        .update(&chunk)
                        .map_err(|detail| StoreError::damaged(what.to_string(), detail))?;
                    size += chunk.len() as u64;
                    out.write_all(&chunk).map_err(StoreError::Output)?;
                    task.advance(chunk.len() as u64);
                }
            }
            let mismatch = || {
                format!(
                    "the restored stream ({size} bytes) does not match the {} bytes and hash recorded at backup",
                    stream.size
                )
            };
            if size != stream.size {
                return Err(StoreError::damaged(what.to_string(), mismatch()));
            }
            match check {
                Check::Whole(hasher) if *hasher.finalize().as_bytes() != stream.hash => {
                    Err(StoreError::damaged(what.to_string(), mismatch()))
                }
                Check::Whole(_) => Ok(()),
                Check::Pieces(pieces) => pieces
                    .finish()
                    .map_err(|detail| StoreError::damaged(what.to_string(), detail)),
            }
        })
    }
}

/// How a stream being restored is verified.
enum Check {
    /// Its plain BLAKE3 against `stored.hash`.
    Whole(blake3::Hasher),
    /// Piece by piece against its piece table.
    Pieces(PieceCheck),
}

impl Check {
    fn whole() -> Check {
        Check::Whole(blake3::Hasher::new())
    }

    fn update(&mut self, data: &[u8]) -> std::result::Result<(), String> {
        match self {
            Check::Whole(hasher) => {
                hasher.update(data);
                Ok(())
            }
            Check::Pieces(pieces) => pieces.update(data),
        }
    }
}
