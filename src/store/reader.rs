//! Reading streams back: fetch and open blobs in parallel, write them in order, verify the whole.

use std::io::Write;
use std::sync::mpsc::sync_channel;

use rayon::prelude::*;

use super::error::{Result, StoreError};
use super::format::FileKind;
use super::id::Id;
use super::index::{BlobLocation, Index};
use super::manifest::{Snapshot, StoredStream, decode_list};
use super::repo::Repository;
use crate::progress::Task;

/// Larger than any sealed blob rbk writes (chunks are at most the config's
/// bounded maximum, 16 MiB, list blobs about 288 KiB).
const MAX_SEALED_BLOB: u32 = 80 * 1024 * 1024;

/// Chunks fetched per parallel batch (about 2 MiB at the default sizes).
const BATCH: usize = 32;

impl Repository {
    /// Reads, opens and verifies one blob (its content must hash to its id).
    pub fn read_blob(&self, index: &Index, id: &Id, needed_by: &str) -> Result<Vec<u8>> {
        self.fetch_blob(index, id, needed_by, true)
    }

    /// Reads, opens and verifies one blob at a known place.
    pub fn read_blob_at(&self, loc: BlobLocation, id: &Id, needed_by: &str) -> Result<Vec<u8>> {
        self.fetch_at(loc, id, needed_by, true)
    }

    fn fetch_blob(
        &self,
        index: &Index,
        id: &Id,
        needed_by: &str,
        verify_id: bool,
    ) -> Result<Vec<u8>> {
        let loc = self.locate(index, id, needed_by)?;
        self.fetch_at(loc, id, needed_by, verify_id)
    }

    /// A blob's sealed bytes as its pack holds them, and the pack's name.
    pub(super) fn sealed_blob(
        &self,
        index: &Index,
        id: &Id,
        needed_by: &str,
    ) -> Result<(Vec<u8>, String)> {
        let loc = self.locate(index, id, needed_by)?;
        let pack = loc.pack.to_hex();
        Ok((self.read_sealed(loc, id, needed_by)?, pack))
    }

    fn locate(&self, index: &Index, id: &Id, needed_by: &str) -> Result<BlobLocation> {
        index.get(id).ok_or_else(|| match index.lost_pack_of(id) {
            Some(pack) => StoreError::damaged(
                FileKind::Pack.path_of(&pack.to_hex()),
                format!("missing (needed for blob {id} of {needed_by})"),
            ),
            None => StoreError::MissingBlob {
                blob: id.to_hex(),
                needed_by: needed_by.to_string(),
            },
        })
    }

    fn fetch_at(
        &self,
        loc: BlobLocation,
        id: &Id,
        needed_by: &str,
        verify_id: bool,
    ) -> Result<Vec<u8>> {
        let buf = self.read_sealed(loc, id, needed_by)?;
        let codec = self.blob_codec();
        let opened = if verify_id {
            codec.open(id, &buf)
        } else {
            codec.open_authenticated(id, &buf)
        };
        opened.map_err(|detail| {
            StoreError::damaged(
                FileKind::Pack.path_of(&loc.pack.to_hex()),
                format!("blob {id}: {detail}"),
            )
        })
    }

    fn read_sealed(&self, loc: BlobLocation, id: &Id, needed_by: &str) -> Result<Vec<u8>> {
        let pack = loc.pack.to_hex();
        // The index is repository data: a length no writer produces is
        // damage, refused before it is allocated.
        if loc.length > MAX_SEALED_BLOB {
            return Err(StoreError::damaged(
                FileKind::Pack.path_of(&pack),
                format!(
                    "the index gives blob {id} {} bytes, more than any blob can have",
                    loc.length
                ),
            ));
        }
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
        let (tx, rx) = sync_channel::<Result<Vec<Vec<u8>>>>(3);
        std::thread::scope(|scope| {
            scope.spawn(move || {
                for list in &stream.lists {
                    let entries = match self.read_list(index, list, what) {
                        Ok(e) => e,
                        Err(e) => {
                            let _ = tx.send(Err(e));
                            return;
                        }
                    };
                    for batch in entries.chunks(BATCH) {
                        let chunks: Result<Vec<Vec<u8>>> = batch
                            .par_iter()
                            .map(|(id, len)| {
                                // The stream's hash is checked at the end, so
                                // each chunk needs only its AEAD check here.
                                let data = self.fetch_blob(index, id, what, false)?;
                                if data.len() != *len as usize {
                                    return Err(StoreError::damaged(
                                        format!("list blob {list}"),
                                        format!(
                                            "chunk {id} has {} bytes, the list says {len}",
                                            data.len()
                                        ),
                                    ));
                                }
                                Ok(data)
                            })
                            .collect();
                        let failed = chunks.is_err();
                        if tx.send(chunks).is_err() || failed {
                            return;
                        }
                    }
                }
            });
            let mut hasher = blake3::Hasher::new();
            let mut size = 0u64;
            for batch in rx {
                for chunk in batch? {
                    hasher.update(&chunk);
                    size += chunk.len() as u64;
                    out.write_all(&chunk).map_err(StoreError::Output)?;
                    task.advance(chunk.len() as u64);
                }
            }
            if size != stream.size || *hasher.finalize().as_bytes() != stream.hash {
                return Err(StoreError::damaged(
                    what.to_string(),
                    format!(
                        "the restored stream ({size} bytes) does not match the {} bytes and hash recorded at backup",
                        stream.size
                    ),
                ));
            }
            Ok(())
        })
    }
}
