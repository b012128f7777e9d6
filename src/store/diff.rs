//! `diff`: what changed between two snapshots, part by part, in chunks and their bytes. Reads
//! the index and the parts' list blobs (never a chunk); computes, never prints.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use super::error::Result;
use super::id::Id;
use super::index::Index;
use super::manifest::{Part, Snapshot};
use super::repo::Repository;

/// A part present in both snapshots, only in the second, or only in the first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PartStatus {
    Unchanged,
    Changed,
    New,
    Removed,
}

/// One side of a part: its stored stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PartSide {
    /// Size of the stored stream (what restore produces before any codec).
    pub bytes: u64,
    pub chunks: u64,
}

/// One part by name. Chunks are counted once each, by id: a chunk the part
/// holds twice is one chunk (it is stored once).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PartDiff {
    pub name: String,
    pub status: PartStatus,
    pub a: Option<PartSide>,
    pub b: Option<PartSide>,
    /// Distinct chunks of the part in b that the part in a does not have, and their bytes.
    pub added_chunks: u64,
    pub added_bytes: u64,
    /// Distinct chunks of the part in a that the part in b no longer has, and their bytes.
    pub removed_chunks: u64,
    pub removed_bytes: u64,
}

/// Compares two snapshots' parts by name, sorted by name. A damaged list blob or a
/// missing one is an error (damage): a diff that skipped it would understate the change.
pub fn diff(
    repo: &Repository,
    (a_id, a): (&Id, &Snapshot),
    (b_id, b): (&Id, &Snapshot),
) -> Result<Vec<PartDiff>> {
    let index = repo.load_index()?;
    let mut names: BTreeMap<&str, (Option<&Part>, Option<&Part>)> = BTreeMap::new();
    for p in &a.parts {
        names.entry(&p.name).or_default().0 = Some(p);
    }
    for p in &b.parts {
        names.entry(&p.name).or_default().1 = Some(p);
    }
    let mut out = Vec::new();
    for (name, (pa, pb)) in names {
        let side = |p: &Part| PartSide {
            bytes: p.stored.size,
            chunks: p.stored.chunks,
        };
        let status = match (pa, pb) {
            // The same size and BLAKE3 of the stream: the same bytes, so the
            // same chunks, and no list need be read.
            (Some(x), Some(y))
                if x.stored.size == y.stored.size && x.stored.hash == y.stored.hash =>
            {
                PartStatus::Unchanged
            }
            (Some(_), Some(_)) => PartStatus::Changed,
            (None, _) => PartStatus::New,
            (_, None) => PartStatus::Removed,
        };
        let mut d = PartDiff {
            name: name.to_string(),
            status,
            a: pa.map(side),
            b: pb.map(side),
            added_chunks: 0,
            added_bytes: 0,
            removed_chunks: 0,
            removed_bytes: 0,
        };
        if status != PartStatus::Unchanged {
            let in_a = chunks_of(repo, &index, pa, a_id)?;
            let in_b = chunks_of(repo, &index, pb, b_id)?;
            (d.added_chunks, d.added_bytes) = only_in(&in_b, &in_a);
            (d.removed_chunks, d.removed_bytes) = only_in(&in_a, &in_b);
        }
        out.push(d);
    }
    Ok(out)
}

/// The distinct chunks of a part and their lengths (none for an absent part).
fn chunks_of(
    repo: &Repository,
    index: &Index,
    part: Option<&Part>,
    snapshot: &Id,
) -> Result<HashMap<Id, u32>> {
    let mut out = HashMap::new();
    let Some(part) = part else {
        return Ok(out);
    };
    let what = format!("snapshot {} part {}", snapshot.short(), part.name);
    for list in &part.stored.lists {
        out.extend(repo.read_list(index, list, &what)?);
    }
    Ok(out)
}

/// Count and bytes of the chunks of `x` that `y` lacks.
fn only_in(x: &HashMap<Id, u32>, y: &HashMap<Id, u32>) -> (u64, u64) {
    x.iter()
        .filter(|(id, _)| !y.contains_key(id))
        .fold((0, 0), |(n, b), (_, &len)| (n + 1, b + u64::from(len)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_in_counts_each_missing_chunk_once_with_its_length() {
        let id = |b: u8| Id([b; 32]);
        let x: HashMap<Id, u32> = [(id(1), 10), (id(2), 20), (id(3), 30)].into();
        let y: HashMap<Id, u32> = [(id(2), 20), (id(4), 40)].into();
        assert_eq!(only_in(&x, &y), (2, 40));
        assert_eq!(only_in(&y, &x), (1, 40));
        assert_eq!(only_in(&x, &x), (0, 0));
    }
}
