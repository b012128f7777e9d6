//! `stats`: how much the repository holds, how well it deduplicates and compresses, and how
//! much each snapshot and each day added. Reads the index and every snapshot's list blobs
//! (never a chunk), as `check` does; computes, never prints.

use std::collections::{BTreeMap, HashSet};

use serde::Serialize;

use super::error::{Result, StoreError};
use super::format::FileKind;
use super::id::Id;
use super::repo::Repository;
use super::time::parse_rfc3339;

/// The repository's figures; `rbk stats --json` prints this object (README, "rbk stats").
#[derive(Debug, Default, Serialize)]
pub struct RepoStats {
    pub snapshots: usize,
    /// Pack files on disk (including any a prune has yet to delete).
    pub packs: usize,
    /// Blobs in the index: chunks and list blobs.
    pub blobs: usize,
    /// Sum of every part's stored stream size over every snapshot: what restoring
    /// every snapshot would produce (before a codec such as the Neo4j dump envelope).
    pub logical_bytes: u64,
    /// Sum of every part's size as its producer gave it, over every snapshot.
    pub source_bytes: u64,
    /// Sum of the pack files' sizes: what the repository occupies.
    pub stored_bytes: u64,
    /// Distinct chunks the snapshots use, and their plain bytes.
    pub unique_chunks: u64,
    pub unique_chunk_bytes: u64,
    /// Sealed (compressed, padded, encrypted) bytes of those chunks in the packs.
    pub chunk_blob_bytes: u64,
    /// `logical_bytes / unique_chunk_bytes`; null for an empty repository.
    pub dedup_ratio: Option<f64>,
    /// `unique_chunk_bytes / chunk_blob_bytes`; below 1 for incompressible data,
    /// since sealing adds a few bytes per chunk.
    pub compression_ratio: Option<f64>,
    /// Oldest first.
    pub per_snapshot: Vec<SnapshotFigures>,
    /// Bytes added per calendar day, in each snapshot's own UTC offset, oldest
    /// first; only days that have a snapshot.
    pub daily: Vec<DayGrowth>,
}

#[derive(Debug, Serialize)]
pub struct SnapshotFigures {
    pub id: String,
    pub short_id: String,
    pub time: String,
    pub host: String,
    pub bytes_read: u64,
    pub bytes_added: u64,
    pub chunks: u64,
    pub new_chunks: u64,
}

#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct DayGrowth {
    /// `YYYY-MM-DD`, or `unknown` for snapshots whose time does not parse.
    pub date: String,
    pub snapshots: usize,
    pub bytes_added: u64,
}

/// Computes the figures. A damaged snapshot, list blob or missing chunk is
/// an error (the figures would be wrong), named as damage.
pub fn stats(repo: &Repository) -> Result<RepoStats> {
    let mut out = RepoStats::default();
    // Snapshots before the index, as in `check`: a snapshot committed
    // meanwhile is then either unseen or seen with its blobs indexed.
    let snapshots = repo.snapshots()?;
    let index = repo.load_index()?;
    out.blobs = index.len();

    // Sizes from the listing itself: one request on an object store, not one per pack.
    for (_, size) in repo.backend().list_sized(FileKind::Pack)? {
        out.packs += 1;
        out.stored_bytes += size;
    }

    // List blobs are content-addressed, so an unchanged part of a later
    // snapshot has the same lists: each is read once.
    let mut lists_seen: HashSet<Id> = HashSet::new();
    let mut chunks_seen: HashSet<Id> = HashSet::new();
    let mut days: BTreeMap<String, DayGrowth> = BTreeMap::new();
    for (id, snapshot) in snapshots {
        let snapshot = snapshot?;
        out.snapshots += 1;
        for part in &snapshot.parts {
            out.logical_bytes += part.stored.size;
            out.source_bytes += part.source_size;
            let what = format!("snapshot {} part {}", id.short(), part.name);
            for list in &part.stored.lists {
                if !lists_seen.insert(*list) {
                    continue;
                }
                for (chunk, len) in repo.read_list(&index, list, &what)? {
                    if !chunks_seen.insert(chunk) {
                        continue;
                    }
                    let loc = index.get(&chunk).ok_or_else(|| StoreError::MissingBlob {
                        blob: chunk.to_hex(),
                        needed_by: what.clone(),
                    })?;
                    out.unique_chunks += 1;
                    out.unique_chunk_bytes += u64::from(len);
                    out.chunk_blob_bytes += u64::from(loc.length);
                }
            }
        }
        let date = parse_rfc3339(&snapshot.time)
            .map(|t| t.date().to_string())
            .unwrap_or_else(|| "unknown".into());
        let day = days.entry(date.clone()).or_insert(DayGrowth {
            date,
            snapshots: 0,
            bytes_added: 0,
        });
        day.snapshots += 1;
        day.bytes_added += snapshot.stats.bytes_added;
        out.per_snapshot.push(SnapshotFigures {
            id: id.to_hex(),
            short_id: id.short(),
            time: snapshot.time,
            host: snapshot.host,
            bytes_read: snapshot.stats.bytes_read,
            bytes_added: snapshot.stats.bytes_added,
            chunks: snapshot.stats.chunks,
            new_chunks: snapshot.stats.new_chunks,
        });
    }
    // `YYYY-MM-DD` sorts by date; `unknown` sorts after every digit.
    out.daily = days.into_values().collect();
    out.dedup_ratio = ratio(out.logical_bytes, out.unique_chunk_bytes);
    out.compression_ratio = ratio(out.unique_chunk_bytes, out.chunk_blob_bytes);
    Ok(out)
}

fn ratio(num: u64, den: u64) -> Option<f64> {
    (den > 0).then(|| num as f64 / den as f64)
}

#[cfg(test)]
mod tests {
    use super::ratio;

    #[test]
    fn ratios_of_nothing_are_none() {
        assert_eq!(ratio(0, 0), None);
        assert_eq!(ratio(10, 0), None);
        assert_eq!(ratio(6, 3), Some(2.0));
    }
}
