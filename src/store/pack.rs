//! Pack files: many sealed blobs in one file, then a sealed header that lists them.
//!
//! Layout: `blob_0 || ... || blob_n-1 || seal(aad "rbk:pack-header", header) || u32 LE sealed header length`.
//! Header plaintext: `u16 LE version || postcard(Vec<PackEntry>)`, entries in
//! file order; each blob's offset is the sum of the lengths before it.

use serde::{Deserialize, Serialize};

use super::backend::Backend;
use super::blob::BlobKind;
use super::crypto::Crypto;
use super::error::{Result, StoreError};
use super::format::{FileKind, open_file, seal_file};
use super::id::Id;

pub const PACK_HEADER_VERSION: u16 = 1;
/// Bound on a header's claimed length, checked before it is read.
const MAX_HEADER_LEN: u64 = 64 * 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackEntry {
    pub kind: BlobKind,
    pub id: Id,
    pub length: u32,
}

/// A blob's place in a pack, as the header and the index describe it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PackedBlob {
    pub kind: BlobKind,
    pub id: Id,
    pub offset: u32,
    pub length: u32,
}

/// Collects sealed blobs until the pack is big enough to write.
#[derive(Default)]
pub struct PackBuilder {
    blobs: Vec<(BlobKind, Id, Vec<u8>)>,
    size: usize,
}

impl PackBuilder {
    pub fn add(&mut self, kind: BlobKind, id: Id, sealed: Vec<u8>) {
        self.size += sealed.len();
        self.blobs.push((kind, id, sealed));
    }

    pub fn size(&self) -> usize {
        self.size
    }

    pub fn is_empty(&self) -> bool {
        self.blobs.is_empty()
    }

    /// The finished pack's bytes, its id and its blobs' places.
    ///
    /// Blobs are laid out in id order, not stream order: ids are keyed
    /// hashes, so the order reveals nothing about where a chunk sat in its
    /// stream to someone who can read the NAS.
    pub fn finish(mut self, crypto: &Crypto) -> (Id, Vec<u8>, Vec<PackedBlob>) {
        self.blobs.sort_unstable_by_key(|b| b.1);
        let mut bytes = Vec::with_capacity(self.size + 64 + self.blobs.len() * 40);
        let mut entries = Vec::with_capacity(self.blobs.len());
        let mut placed = Vec::with_capacity(self.blobs.len());
        for (kind, id, sealed) in self.blobs {
            placed.push(PackedBlob {
                kind,
                id,
                offset: bytes.len() as u32,
                length: sealed.len() as u32,
            });
            entries.push(PackEntry {
                kind,
                id,
                length: sealed.len() as u32,
            });
            bytes.extend_from_slice(&sealed);
        }
        let header = seal_file(crypto, FileKind::Pack, PACK_HEADER_VERSION, &entries);
        bytes.extend_from_slice(&header);
        bytes.extend_from_slice(&(header.len() as u32).to_le_bytes());
        (Id::of_file(&bytes), bytes, placed)
    }
}

/// Where the sealed header sits, given the pack's size and its last four bytes.
pub fn header_span(name: &str, file_size: u64, trailer: [u8; 4]) -> Result<(u64, u64)> {
    let len = u32::from_le_bytes(trailer) as u64;
    if len > MAX_HEADER_LEN || len + 4 > file_size {
        return Err(StoreError::damaged(
            FileKind::Pack.path_of(name),
            format!("header length {len} does not fit in a {file_size}-byte pack"),
        ));
    }
    Ok((file_size - 4 - len, len))
}

/// Decodes a sealed header and checks that its blobs tile the pack exactly.
pub fn parse_header(
    crypto: &Crypto,
    name: &str,
    header_offset: u64,
    sealed: &[u8],
) -> Result<Vec<PackedBlob>> {
    let entries: Vec<PackEntry> =
        open_file(crypto, FileKind::Pack, name, PACK_HEADER_VERSION, sealed)?;
    let mut offset = 0u64;
    let mut out = Vec::with_capacity(entries.len());
    for e in entries {
        out.push(PackedBlob {
            kind: e.kind,
            id: e.id,
            offset: offset as u32,
            length: e.length,
        });
        offset += e.length as u64;
    }
    if offset != header_offset {
        return Err(StoreError::damaged(
            FileKind::Pack.path_of(name),
            format!("header lists {offset} bytes of blobs but they occupy {header_offset}"),
        ));
    }
    Ok(out)
}

/// Reads and decodes a pack's header from the backend, without reading its blobs.
pub fn read_header(backend: &dyn Backend, crypto: &Crypto, name: &str) -> Result<Vec<PackedBlob>> {
    let size = backend.size(FileKind::Pack, name)?;
    if size < 4 {
        return Err(StoreError::damaged(
            FileKind::Pack.path_of(name),
            "shorter than a pack trailer",
        ));
    }
    let mut trailer = [0u8; 4];
    backend.read_at(FileKind::Pack, name, size - 4, &mut trailer)?;
    let (off, len) = header_span(name, size, trailer)?;
    let mut sealed = vec![0u8; len as usize];
    backend.read_at(FileKind::Pack, name, off, &mut sealed)?;
    parse_header(crypto, name, off, &sealed)
}

/// Reads and decodes the whole header of a pack held in memory.
pub fn header_of_bytes(crypto: &Crypto, name: &str, bytes: &[u8]) -> Result<Vec<PackedBlob>> {
    if bytes.len() < 4 {
        return Err(StoreError::damaged(
            FileKind::Pack.path_of(name),
            "shorter than a pack trailer",
        ));
    }
    let n = bytes.len();
    let trailer = [bytes[n - 4], bytes[n - 3], bytes[n - 2], bytes[n - 1]];
    let (off, len) = header_span(name, n as u64, trailer)?;
    parse_header(
        crypto,
        name,
        off,
        &bytes[off as usize..(off + len) as usize],
    )
}
