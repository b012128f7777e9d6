//! The index: which pack holds each blob, on disk as `index/*` files and in memory as one sorted table.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::id::Id;
use super::pack::PackedBlob;

pub const INDEX_VERSION: u16 = 1;

/// One `index/<id>` file: the blobs of some packs.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct IndexFile {
    pub packs: Vec<IndexedPack>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct IndexedPack {
    pub id: Id,
    pub blobs: Vec<PackedBlob>,
}

/// A blob's place: the pack's id and the byte range of the sealed blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlobLocation {
    pub pack: Id,
    pub offset: u32,
    pub length: u32,
}

/// 44 bytes per blob: the id, the pack's number and the blob's range. Pack
/// ids are stored once in `Index::packs`.
#[derive(Clone, Copy)]
#[repr(C)]
struct Entry {
    id: [u8; 32],
    pack: u32,
    offset: u32,
    length: u32,
}

/// Every blob the repository has, sorted by id for binary search. Memory is
/// `size_of::<Entry>()` (44 bytes) per blob plus 32 bytes per pack.
#[derive(Default)]
pub struct Index {
    packs: Vec<Id>,
    entries: Vec<Entry>,
    /// The index files this table was built from, sorted, so that a writer
    /// can tell at commit whether a prune replaced any of them meanwhile.
    sources: Vec<String>,
}

impl Index {
    pub const BYTES_PER_BLOB: usize = std::mem::size_of::<Entry>();

    pub fn from_files<'a>(files: impl IntoIterator<Item = &'a IndexFile>) -> Index {
        let mut builder = IndexBuilder::default();
        for file in files {
            builder.add(file);
        }
        builder.finish()
    }

    pub fn with_sources(mut self, mut names: Vec<String>) -> Index {
        names.sort();
        self.sources = names;
        self
    }

    pub fn sources(&self) -> &[String] {
        &self.sources
    }

    pub fn get(&self, id: &Id) -> Option<BlobLocation> {
        let i = self.entries.binary_search_by(|e| e.id.cmp(&id.0)).ok()?;
        let e = &self.entries[i];
        Some(BlobLocation {
            pack: self.packs[e.pack as usize],
            offset: e.offset,
            length: e.length,
        })
    }

    pub fn contains(&self, id: &Id) -> bool {
        self.entries.binary_search_by(|e| e.id.cmp(&id.0)).is_ok()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn packs(&self) -> &[Id] {
        &self.packs
    }

    /// Bytes the table occupies, for the figures in `docs/ARCHITECTURE.md`.
    pub fn memory_bytes(&self) -> usize {
        self.entries.capacity() * Self::BYTES_PER_BLOB + self.packs.capacity() * 32
    }
}

/// Builds an `Index` one index file at a time, so that a caller can drop
/// each file once added: memory is then the table, not the table plus
/// every decoded file.
#[derive(Default)]
pub struct IndexBuilder {
    pack_numbers: HashMap<Id, u32>,
    packs: Vec<Id>,
    entries: Vec<Entry>,
}

impl IndexBuilder {
    pub fn add(&mut self, file: &IndexFile) {
        for p in &file.packs {
            let packs = &mut self.packs;
            let n = *self.pack_numbers.entry(p.id).or_insert_with(|| {
                packs.push(p.id);
                (packs.len() - 1) as u32
            });
            self.entries.extend(p.blobs.iter().map(|b| Entry {
                id: b.id.0,
                pack: n,
                offset: b.offset,
                length: b.length,
            }));
        }
    }

    pub fn finish(self) -> Index {
        let mut entries = self.entries;
        // Stable sort, then keep the first: a blob stored twice (two
        // concurrent snapshots) is read from whichever pack was listed first.
        entries.sort_by_key(|e| e.id);
        entries.dedup_by(|a, b| a.id == b.id);
        entries.shrink_to_fit();
        let mut packs = self.packs;
        packs.shrink_to_fit();
        Index {
            packs,
            entries,
            sources: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::blob::BlobKind;

    #[test]
    fn finds_what_it_was_given() {
        let blobs: Vec<PackedBlob> = (0..1000u32)
            .map(|i| PackedBlob {
                kind: BlobKind::Data,
                id: Id(*blake3::hash(&i.to_le_bytes()).as_bytes()),
                offset: i * 10,
                length: 10,
            })
            .collect();
        let file = IndexFile {
            packs: vec![IndexedPack {
                id: Id([9; 32]),
                blobs: blobs.clone(),
            }],
        };
        let index = Index::from_files([&file]);
        assert_eq!(index.len(), 1000);
        assert_eq!(Index::BYTES_PER_BLOB, 44);
        for b in &blobs {
            let loc = index.get(&b.id).unwrap();
            assert_eq!(
                (loc.pack, loc.offset, loc.length),
                (Id([9; 32]), b.offset, 10)
            );
        }
        assert!(!index.contains(&Id([1; 32])));
    }
}
