//! Snapshot manifests: what one `rbk snapshot` stored, part by part.

use serde::{Deserialize, Serialize};

use super::id::Id;

pub const SNAPSHOT_VERSION: u16 = 1;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Snapshot {
    /// RFC 3339 with the local UTC offset at the time, so retention can use
    /// the time zone the snapshot was taken in.
    pub time: String,
    pub host: String,
    pub tags: Vec<String>,
    pub parts: Vec<Part>,
    /// Free-form facts set by the caller (the stack layer records images,
    /// versions and the write-pause window here); the store does not read them.
    pub labels: Vec<(String, String)>,
    pub stats: SnapshotStats,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct SnapshotStats {
    /// Bytes read from the producers (before any codec).
    pub bytes_read: u64,
    /// Bytes of new sealed blobs this snapshot wrote to packs.
    pub bytes_added: u64,
    pub chunks: u64,
    pub new_chunks: u64,
    pub duration_ms: u64,
}

/// One stream of a snapshot, e.g. `neo4j.dump` or `metadata.sql`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Part {
    pub name: String,
    /// Where it came from, for people: `file:/srv/x.dump`, `stdin`, `command:pg_dump rushdb`.
    pub origin: String,
    /// Which codec turned the producer's bytes into the stored stream: `raw`
    /// or a codec the caller knows (`neo4j-dump`), with its envelope bytes.
    pub codec: String,
    pub envelope: Vec<u8>,
    pub stored: StoredStream,
    /// Size and BLAKE3 of the bytes the producer gave, before any codec.
    pub source_size: u64,
    pub source_hash: [u8; 32],
}

/// A stream as the store holds it: verified on restore by size and hash.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct StoredStream {
    pub size: u64,
    /// Plain BLAKE3 of the stream.
    pub hash: [u8; 32],
    pub chunks: u64,
    /// List blobs, in order; each holds up to `LIST_ENTRIES` chunk ids.
    pub lists: Vec<Id>,
}

/// Chunk ids per list blob (36 bytes each: id and length): about 288 KiB.
pub const LIST_ENTRIES: usize = 8192;
pub const LIST_VERSION: u8 = 1;

/// Encodes a list blob: `u8 version || (32-byte id || u32 LE length)*`.
pub fn encode_list(entries: &[(Id, u32)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + entries.len() * 36);
    out.push(LIST_VERSION);
    for (id, len) in entries {
        out.extend_from_slice(&id.0);
        out.extend_from_slice(&len.to_le_bytes());
    }
    out
}

pub fn decode_list(bytes: &[u8]) -> Result<Vec<(Id, u32)>, String> {
    let Some((&version, body)) = bytes.split_first() else {
        return Err("empty list blob".into());
    };
    if version != LIST_VERSION {
        return Err(format!("list blob version {version} is not supported"));
    }
    if body.len() % 36 != 0 || body.len() / 36 > LIST_ENTRIES {
        return Err(format!("list blob of {} bytes is malformed", bytes.len()));
    }
    Ok(body
        .chunks_exact(36)
        .map(|e| {
            let mut id = [0u8; 32];
            id.copy_from_slice(&e[..32]);
            (Id(id), u32::from_le_bytes([e[32], e[33], e[34], e[35]]))
        })
        .collect())
}
