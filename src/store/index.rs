//! The index: which pack holds each blob, on disk as `index/*` files and in memory as one sorted table.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};

use super::id::Id;
use super::pack::PackedBlob;

pub const INDEX_VERSION: u16 = 1;
/// A writer closes an index file once it lists this many blobs (whole packs
/// only), so that every index file stays far below `FileKind::Index.max_len()`
/// however large a snapshot is (about 45 bytes per blob on disk).
pub const BLOBS_PER_FILE: usize = 256 * 1024;

/// One `index/<id>` file: the blobs of some packs.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct IndexFile {
    pub packs: Vec<IndexedPack>,
}

impl IndexFile {
    /// `packs` as index files of about `BLOBS_PER_FILE` blobs each (none if there are no packs).
    pub fn split(packs: Vec<IndexedPack>) -> Vec<IndexFile> {
        let mut files = Vec::new();
        let mut current = IndexFile::default();
        let mut blobs = 0;
        for pack in packs {
            blobs += pack.blobs.len();
            current.packs.push(pack);
            if blobs >= BLOBS_PER_FILE {
                files.push(std::mem::take(&mut current));
                blobs = 0;
            }
        }
        if !current.packs.is_empty() {
            files.push(current);
        }
        files
    }
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
    /// Blobs the index files place only in packs that are gone (deleted by
    /// hand, lost on the NAS), sorted by id. They cannot be read, so they are
    /// not in `entries`: a writer stores them again instead of referring to
    /// them, and errors can name the missing pack.
    lost: Vec<Entry>,
    /// Indexed packs that are not on disk, sorted.
    missing_packs: Vec<Id>,
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

    /// The missing pack an index file places `id` in, when no pack that
    /// exists holds it (only for an index built with `finish_available`).
    pub fn lost_pack_of(&self, id: &Id) -> Option<Id> {
        let i = self.lost.binary_search_by(|e| e.id.cmp(&id.0)).ok()?;
        Some(self.packs[self.lost[i].pack as usize])
    }

    /// Indexed packs that were not on disk when the index was built (only
    /// for an index built with `finish_available`).
    pub fn missing_packs(&self) -> &[Id] {
        &self.missing_packs
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

    /// The table of every indexed blob, trusting that every indexed pack exists.
    pub fn finish(self) -> Index {
        self.finish_with(|_| true)
    }

    /// The table of the blobs held by packs in `on_disk` (a listing taken
    /// after the index files were read, so a pack a writer indexed is in it).
    /// A blob listed only in missing packs is left out and remembered as
    /// lost: a snapshot must never refer to it again, and a restore must read
    /// a copy that exists when there is one.
    pub fn finish_available(self, on_disk: &HashSet<Id>) -> Index {
        self.finish_with(|p| on_disk.contains(p))
    }

    fn finish_with(self, present: impl Fn(&Id) -> bool) -> Index {
        let here: Vec<bool> = self.packs.iter().map(&present).collect();
        let (mut entries, mut lost): (Vec<Entry>, Vec<Entry>) = self
            .entries
            .into_iter()
            .partition(|e| here[e.pack as usize]);
        // Stable sort, then keep the first: a blob stored twice (two
        // concurrent snapshots) is read from whichever pack was listed first.
        entries.sort_by_key(|e| e.id);
        entries.dedup_by(|a, b| a.id == b.id);
        entries.shrink_to_fit();
        lost.sort_by_key(|e| e.id);
        lost.dedup_by(|a, b| a.id == b.id);
        lost.retain(|l| entries.binary_search_by(|e| e.id.cmp(&l.id)).is_err());
        lost.shrink_to_fit();
        let mut missing_packs: Vec<Id> = self
            .packs
            .iter()
            .zip(&here)
            .filter(|(_, here)| !**here)
            .map(|(p, _)| *p)
            .collect();
        missing_packs.sort();
        let mut packs = self.packs;
        packs.shrink_to_fit();
        Index {
            packs,
            entries,
            sources: Vec::new(),
            lost,
            missing_packs,
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

    fn pack(id: u8, blobs: &[u8]) -> IndexedPack {
        IndexedPack {
            id: Id([id; 32]),
            blobs: blobs
                .iter()
                .enumerate()
                .map(|(i, b)| PackedBlob {
                    kind: BlobKind::Data,
                    id: Id([*b; 32]),
                    offset: i as u32 * 10,
                    length: 10,
                })
                .collect(),
        }
    }

    /// A blob whose only pack is gone is not in the table (a writer stores it again), but
    /// the index names that pack; a blob with a copy in a pack that exists is read from there.
    #[test]
    fn blobs_in_missing_packs_are_lost_unless_another_copy_exists() {
        let files = [
            IndexFile {
                packs: vec![pack(1, &[10, 11])],
            },
            IndexFile {
                packs: vec![pack(2, &[11, 12])],
            },
        ];
        let mut builder = IndexBuilder::default();
        for f in &files {
            builder.add(f);
        }
        let on_disk: HashSet<Id> = [Id([2; 32])].into();
        let index = builder.finish_available(&on_disk);
        assert!(!index.contains(&Id([10; 32])));
        assert_eq!(index.lost_pack_of(&Id([10; 32])), Some(Id([1; 32])));
        assert_eq!(index.get(&Id([11; 32])).map(|l| l.pack), Some(Id([2; 32])));
        assert_eq!(index.lost_pack_of(&Id([11; 32])), None);
        assert!(index.contains(&Id([12; 32])));
        assert_eq!(index.missing_packs(), &[Id([1; 32])]);
    }

    #[test]
    fn split_closes_files_at_whole_packs() {
        let big = |id: u8| IndexedPack {
            id: Id([id; 32]),
            blobs: vec![
                PackedBlob {
                    kind: BlobKind::Data,
                    id: Id([id; 32]),
                    offset: 0,
                    length: 1,
                };
                BLOBS_PER_FILE / 2 + 1
            ],
        };
        let files = IndexFile::split(vec![big(1), big(2), big(3)]);
        assert_eq!(
            files.iter().map(|f| f.packs.len()).collect::<Vec<_>>(),
            vec![2, 1]
        );
        assert!(IndexFile::split(Vec::new()).is_empty());
    }
}
