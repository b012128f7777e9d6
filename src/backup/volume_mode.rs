//! Neo4j volume mode into the repository: the pre-copy stores the data volume's entries as pieces while the stack runs, and the paused pass makes the part from them, reading again only the entries that changed and storing those against their earlier pieces.

use std::collections::HashMap;
use std::time::Instant;

use anyhow::{Context, Result};

use crate::parts::CODEC_PIECES;
use crate::progress::Unit;
use crate::source::kind::graph_volume::{Neo4jVolume, PART};
use crate::source::scan::{Entry, EntryKey, ScanStats, VolumeScan};
use crate::stack::names::label;
use crate::store::manifest::Part;
use crate::store::pieces::Piece;
use crate::store::writer::SnapshotWriter;

/// What the pre-copy stored: each file's piece, by what identifies the file (used unread
/// if unchanged) and by path (what a changed file is stored against).
pub(crate) struct PreCopy {
    /// The scan it ran, which the paused pass runs again: the same route to the volume
    /// (this host or a one-off), found once.
    scanner: VolumeScan,
    pieces: Vec<Piece>,
    by_key: HashMap<EntryKey, usize>,
    by_path: HashMap<Vec<u8>, usize>,
    pub stats: ScanStats,
    pub ms: u64,
}

/// The pre-copy, stack running: every entry of the data volume stored as a piece. Nothing
/// of it is a part: its chunks are in this writer's packs (indexed with the snapshot, so
/// prune reclaims those no snapshot uses), for the paused pass to find.
pub(crate) fn pre_copy(
    rt: &tokio::runtime::Handle,
    volume: &Neo4jVolume,
    writer: &SnapshotWriter<'_>,
) -> Result<PreCopy> {
    let began = Instant::now();
    let listed_after = now_secs() - SETTLED_SECS;
    let task = writer
        .progress()
        .task("pre-copy neo4j volume", Unit::Bytes, None);
    let (mut pieces, mut by_key, mut by_path) = (Vec::new(), HashMap::new(), HashMap::new());
    let scanner = volume.scanner(rt);
    let stats = scanner
        .scan(rt, true, &|_| false, &mut |entry| {
            if let Entry::Read { key, bytes } = entry {
                let piece = writer.add_piece(bytes, task.as_ref())?;
                task.advance(piece.size);
                if let Some(key) = key {
                    // Whatever its times, its bytes are a fair guess at the file's next
                    // read: `add_piece_like` checks every block before using one.
                    by_path.insert(key.path.clone(), pieces.len());
                    if settled(key, listed_after) {
                        by_key.insert(key.clone(), pieces.len());
                    }
                    pieces.push(piece);
                }
            }
            Ok(())
        })
        .context("pre-copy of the Neo4j data volume (stack running)")?;
    Ok(PreCopy {
        scanner,
        pieces,
        by_key,
        by_path,
        stats,
        ms: began.elapsed().as_millis() as u64,
    })
}

/// How long before the pre-copy's listing a file must have last changed for the paused pass
/// to trust its times. File times come from a clock that ticks every few milliseconds, so a
/// file written again within the tick in which tar read it keeps the times the listing saw
/// while its bytes differ from the pre-copy's (git's "racy clean" entries). Such a file is read
/// again in the pause.
const SETTLED_SECS: f64 = 2.0;

fn now_secs() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Whether `key`'s file last changed (data or metadata) before `before` (Unix seconds): a
/// time that does not parse is never settled.
fn settled(key: &EntryKey, before: f64) -> bool {
    let secs = |t: &str| t.parse::<f64>().ok();
    matches!((secs(&key.mtime), secs(&key.ctime)), (Some(m), Some(c)) if m < before && c < before)
}

/// What the paused pass read: the scan's figures, and how many bytes of the files it read
/// again were their pre-copy chunks, used without being cut or sealed again.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct PausedStats {
    pub scan: ScanStats,
    pub reused: u64,
}

/// The paused pass, server stopped: the data volume's part, from the pre-copy's pieces for
/// the files unchanged since and from the volume for the rest, each file read again stored
/// against its pre-copy piece, so that only its changed blocks cost more than a hash.
pub(crate) fn paused_pass(
    rt: &tokio::runtime::Handle,
    volume: &Neo4jVolume,
    writer: &SnapshotWriter<'_>,
    pre: &PreCopy,
) -> Result<(Part, PausedStats)> {
    let task = writer
        .progress()
        .task("archive neo4j volume", Unit::Bytes, None);
    let mut read: Vec<Piece> = Vec::new();
    let mut reused = 0u64;
    // In stream order: a pre-copy piece, or the index of one read now.
    let mut order: Vec<Result<usize, usize>> = Vec::new();
    let known = |k: &EntryKey| pre.by_key.contains_key(k);
    let stats = pre
        .scanner
        .scan(rt, false, &known, &mut |entry| {
            match entry {
                Entry::Unchanged(key) => {
                    // `known` said so.
                    if let Some(&i) = pre.by_key.get(key) {
                        task.advance(pre.pieces[i].size);
                        order.push(Ok(i));
                    }
                }
                Entry::Read { key, bytes } => {
                    let base = key
                        .and_then(|k| pre.by_path.get(&k.path))
                        .map(|&i| &pre.pieces[i]);
                    let piece = match base {
                        Some(base) => {
                            let like = writer.add_piece_like(bytes, base, task.as_ref())?;
                            reused += like.reused;
                            like.piece
                        }
                        None => writer.add_piece(bytes, task.as_ref())?,
                    };
                    task.advance(piece.size);
                    order.push(Err(read.len()));
                    read.push(piece);
                }
            }
            Ok(())
        })
        .context("archiving the Neo4j data volume (server stopped)")?;
    let pieces: Vec<&Piece> = order
        .iter()
        .filter_map(|at| match at {
            Ok(i) => pre.pieces.get(*i),
            Err(i) => read.get(*i),
        })
        .collect();
    let (stored, envelope) = writer.join_pieces(&pieces, task.as_ref())?;
    let part = Part {
        name: PART.into(),
        origin: format!("docker:volume {}", volume.mount.source),
        codec: CODEC_PIECES.into(),
        envelope,
        source_size: stored.size,
        source_hash: stored.hash,
        stored,
    };
    Ok((
        part,
        PausedStats {
            scan: stats,
            reused,
        },
    ))
}

/// The label `neo4j.volume_scan`: what the pre-copy read, and what the paused pass read
/// again, used unread, and used of the files it read again.
pub(crate) fn scan_label(pre: &PreCopy, paused: &PausedStats) -> (String, String) {
    let value = serde_json::json!({
        "precopy_bytes": pre.stats.bytes_read,
        "entries": paused.scan.entries,
        "unchanged": paused.scan.unchanged,
        "bytes_read": paused.scan.bytes_read,
        "bytes_unchanged": paused.scan.bytes_unchanged,
        "bytes_read_reused": paused.reused,
    });
    (label::VOLUME_SCAN.into(), value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(mtime: &str, ctime: &str) -> EntryKey {
        EntryKey {
            path: b"./databases/neo4j/neostore".to_vec(),
            inode: 12,
            size: 8192,
            mtime: mtime.into(),
            ctime: ctime.into(),
        }
    }

    /// A file changed within the settling time before the listing may change again
    /// unseen by its times: the paused pass reads it again.
    #[test]
    fn only_files_settled_before_the_listing_are_used_unread() {
        let listed_after = 1_765_000_000.5;
        assert!(settled(&key("1765000000.4", "1765000000.4"), listed_after));
        assert!(!settled(&key("1765000000.4", "1765000000.6"), listed_after));
        assert!(!settled(&key("1765000000.6", "1765000000.4"), listed_after));
        assert!(!settled(&key("1765000000.5", "1765000000.5"), listed_after));
        assert!(!settled(&key("", "1765000000.4"), listed_after));
        assert!(!settled(&key("1765000000.4", "soon"), listed_after));
    }
}
