//! Streams stored in pieces: each piece chunked and hashed on its own, so that a piece stored before (a file of a volume read while the stack ran, unchanged since) joins a later stream by its chunk list, without its bytes being read again.
//!
//! A whole-stream BLAKE3 cannot be had without reading every byte, so a pieced stream is
//! verified piece by piece instead: its part's envelope is the table of piece sizes and
//! hashes, and `stored.hash` is the BLAKE3 of that envelope (docs/FORMAT.md, codec
//! `pieces`). Piece boundaries are chunk boundaries, so a piece's chunks are its bytes and
//! nothing else, wherever it lands in a stream.

use blake3::hazmat::ChainingValue;
use serde::{Deserialize, Serialize};

use super::id::Id;

/// The part codec of a pieced stream: restored byte for byte, verified piece by piece.
pub const CODEC_PIECES: &str = "pieces";

const TABLE_VERSION: u8 = 1;

/// Pieces one stream may have: the table lives in the snapshot file (at most 16 MiB), and
/// each entry takes up to 42 bytes.
pub const MAX_PIECES: usize = 250_000;

/// One piece as the writer stored it: its size, its plain BLAKE3, its chunks in order, and
/// the BLAKE3 values of its 64 KiB blocks (`treehash.rs`), by which a later read of the
/// same file finds what changed (`SnapshotWriter::add_piece_like`). Only size and hash
/// are recorded; the rest lives as long as the writer's caller keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Piece {
    pub size: u64,
    pub hash: [u8; 32],
    pub chunks: Vec<(Id, u32)>,
    pub blocks: Vec<ChainingValue>,
}

/// A piece as the manifest records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PieceRecord {
    pub size: u64,
    pub hash: [u8; 32],
}

/// The envelope of a pieced part: `u8 version (1) || postcard(Vec<PieceRecord>)`.
pub fn encode_table(pieces: &[PieceRecord]) -> Vec<u8> {
    let mut out = vec![TABLE_VERSION];
    // postcard cannot fail on a Vec of plain structs.
    out.extend(postcard::to_allocvec(pieces).unwrap_or_default());
    out
}

/// The piece table of a pieced part's envelope. The envelope is repository data: every
/// malformation is an error, never a panic.
pub fn decode_table(envelope: &[u8]) -> Result<Vec<PieceRecord>, String> {
    let Some((&version, body)) = envelope.split_first() else {
        return Err("the piece table is empty".into());
    };
    if version != TABLE_VERSION {
        return Err(format!("piece table version {version} is not supported"));
    }
    let (table, rest): (Vec<PieceRecord>, &[u8]) = postcard::take_from_bytes(body)
        .map_err(|e| format!("the piece table is malformed: {e}"))?;
    if !rest.is_empty() {
        return Err(format!(
            "the piece table has {} bytes after its end",
            rest.len()
        ));
    }
    if table.len() > MAX_PIECES {
        return Err(format!(
            "the piece table has {} pieces, more than {MAX_PIECES}",
            table.len()
        ));
    }
    Ok(table)
}

/// The stored hash of a pieced stream: the plain BLAKE3 of its envelope.
pub fn table_hash(envelope: &[u8]) -> [u8; 32] {
    *blake3::hash(envelope).as_bytes()
}

/// Verifies a pieced stream as it is written: each piece's bytes against its size and
/// hash, then that nothing follows the last.
pub(super) struct PieceCheck {
    table: Vec<PieceRecord>,
    /// The piece being read, and its bytes still to come.
    at: usize,
    left: u64,
    hasher: blake3::Hasher,
}

impl PieceCheck {
    pub(super) fn new(table: Vec<PieceRecord>) -> PieceCheck {
        let left = table.first().map_or(0, |p| p.size);
        let mut check = PieceCheck {
            table,
            at: 0,
            left,
            hasher: blake3::Hasher::new(),
        };
        check.skip_empty();
        check
    }

    /// Empty pieces have no bytes to wait for: checked as soon as they are reached.
    fn skip_empty(&mut self) {
        while self.at < self.table.len() && self.left == 0 {
            // An empty piece's hash is BLAKE3 of nothing; a table saying otherwise fails
            // in `close`, which compares whatever the hasher holds.
            if !self.close_piece() {
                return;
            }
        }
    }

    /// Ends the current piece: false (and the piece left current) if its hash differs.
    fn close_piece(&mut self) -> bool {
        let hash = std::mem::replace(&mut self.hasher, blake3::Hasher::new()).finalize();
        if *hash.as_bytes() != self.table[self.at].hash {
            self.left = u64::MAX; // marks the failure for `finish`
            return false;
        }
        self.at += 1;
        self.left = self.table.get(self.at).map_or(0, |p| p.size);
        true
    }

    /// Takes the next bytes of the stream.
    pub(super) fn update(&mut self, mut data: &[u8]) -> Result<(), String> {
        while !data.is_empty() {
            if self.left == u64::MAX {
                return Err(self.failed());
            }
            if self.at == self.table.len() {
                return Err("the stream goes on after its last piece".into());
            }
            let n = (data.len() as u64).min(self.left) as usize;
            self.hasher.update(&data[..n]);
            self.left -= n as u64;
            data = &data[n..];
            if self.left == 0 && self.close_piece() {
                self.skip_empty();
            }
        }
        Ok(())
    }

    fn failed(&self) -> String {
        format!(
            "piece {} of {} does not match the hash recorded at backup",
            self.at + 1,
            self.table.len()
        )
    }

    /// After the last byte: every piece was read whole and matched.
    pub(super) fn finish(self) -> Result<(), String> {
        if self.left == u64::MAX {
            return Err(self.failed());
        }
        if self.at < self.table.len() {
            return Err(format!(
                "the stream ended in piece {} of {}",
                self.at + 1,
                self.table.len()
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(pieces: &[&[u8]]) -> Vec<PieceRecord> {
        pieces
            .iter()
            .map(|p| PieceRecord {
                size: p.len() as u64,
                hash: *blake3::hash(p).as_bytes(),
            })
            .collect()
    }

    fn check(pieces: &[&[u8]], stream: &[u8], step: usize) -> Result<(), String> {
        let mut c = PieceCheck::new(table(pieces));
        for part in stream.chunks(step.max(1)) {
            c.update(part)?;
        }
        c.finish()
    }

    #[test]
    fn a_stream_matches_its_pieces_however_it_is_cut() {
        let pieces: [&[u8]; 4] = [b"header", b"", b"the file's bytes", b"end"];
        let stream = pieces.concat();
        for step in [1, 2, 5, 7, 100] {
            assert_eq!(check(&pieces, &stream, step), Ok(()), "step {step}");
        }
        assert_eq!(check(&[], b"", 1), Ok(()));
        assert_eq!(check(&[b""], b"", 1), Ok(()));
    }

    #[test]
    fn a_changed_moved_short_or_long_stream_fails() {
        let pieces: [&[u8]; 3] = [b"abc", b"def", b"ghi"];
        // A byte changed in the second piece.
        let err = check(&pieces, b"abcdXfghi", 4).unwrap_err();
        assert!(err.contains("piece 2 of 3"), "{err}");
        // The same bytes with two pieces swapped.
        let err = check(&pieces, b"defabcghi", 9).unwrap_err();
        assert!(err.contains("piece 1 of 3"), "{err}");
        let err = check(&pieces, b"abcdef", 2).unwrap_err();
        assert!(err.contains("ended in piece 3"), "{err}");
        let err = check(&pieces, b"abcdefghij", 2).unwrap_err();
        assert!(err.contains("after its last piece"), "{err}");
        // An empty piece whose recorded hash is not that of nothing.
        let mut t = table(&[b"a", b""]);
        t[1].hash = [7; 32];
        let mut c = PieceCheck::new(t);
        c.update(b"a").unwrap_or_default();
        assert!(c.finish().is_err());
    }

    #[test]
    fn the_table_round_trips_and_refuses_malformed_envelopes() {
        let t = table(&[b"one", b"two"]);
        let env = encode_table(&t);
        assert_eq!(decode_table(&env), Ok(t));
        assert!(decode_table(&[]).is_err());
        assert!(decode_table(&[2]).is_err());
        let mut long = env.clone();
        long.push(0);
        assert!(decode_table(&long).unwrap_err().contains("after its end"));
        assert!(decode_table(&env[..env.len() - 1]).is_err());
        // A length claiming more pieces than there are bytes.
        assert!(decode_table(&[1, 0xff, 0xff, 0xff, 0x0f]).is_err());
    }
}
