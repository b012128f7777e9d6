//! The envelope of every structured repository file: a format version, then postcard, then sealing.
//!
//! Plaintext layout: `u16 LE version || postcard(value)`. Encrypted files are
//! `seal(aad = "rbk:" + kind, plaintext)`; the kind in the associated data
//! stops an index from being passed off as a snapshot, and so on.

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::crypto::Crypto;
use super::error::{Result, StoreError};

/// Which kind of file a sealed body belongs to; bound into the AEAD.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    Config,
    Key,
    Pack,
    Index,
    Snapshot,
    Lock,
    /// Packs prune has taken out of the index, waiting to be deleted.
    Deletion,
    /// The outcome of a verification of one snapshot (`verification.rs`).
    Verification,
    /// What one `rbk check` of the whole repository found (`check_record.rs`).
    CheckRecord,
}

impl FileKind {
    /// Every kind but the config, which is a single file: the kinds that live in a folder.
    pub const FOLDERS: [FileKind; 8] = [
        FileKind::Key,
        FileKind::Pack,
        FileKind::Index,
        FileKind::Snapshot,
        FileKind::Lock,
        FileKind::Deletion,
        FileKind::Verification,
        FileKind::CheckRecord,
    ];

    /// The directory that holds files of this kind (the config is a single file).
    pub fn dir(self) -> &'static str {
        match self {
            FileKind::Config => "",
            FileKind::Key => "keys",
            FileKind::Pack => "data",
            FileKind::Index => "index",
            FileKind::Snapshot => "snapshots",
            FileKind::Lock => "locks",
            FileKind::Deletion => "deletions",
            FileKind::Verification => "verifications",
            FileKind::CheckRecord => "checks",
        }
    }

    fn aad(self) -> &'static [u8] {
        match self {
            FileKind::Config => b"rbk:config",
            FileKind::Key => b"rbk:key",
            FileKind::Pack => b"rbk:pack-header",
            FileKind::Index => b"rbk:index",
            FileKind::Snapshot => b"rbk:snapshot",
            FileKind::Lock => b"rbk:lock",
            FileKind::Deletion => b"rbk:deletion",
            FileKind::Verification => b"rbk:verification",
            FileKind::CheckRecord => b"rbk:check",
        }
    }

    /// The largest file of this kind a reader accepts: more than rbk ever
    /// writes, so that a planted file (a huge sparse file, a link to
    /// `/dev/zero`) is refused before it is read into memory.
    pub fn max_len(self) -> u64 {
        const KIB: u64 = 1024;
        const MIB: u64 = 1024 * KIB;
        match self {
            // Small fixed structures.
            FileKind::Config | FileKind::Key | FileKind::Lock => 64 * KIB,
            // Names, tags, labels and 32 bytes per list blob (one per 8192 chunks).
            FileKind::Snapshot => 16 * MIB,
            // Writers close an index file at `index::BLOBS_PER_FILE` blobs, plus one pack's.
            FileKind::Index => 256 * MIB,
            // 32 bytes per pack.
            FileKind::Deletion => 64 * MIB,
            // A few names and one line per check: a few KiB. Writers refuse more, so a
            // record they wrote is never one readers refuse.
            FileKind::Verification => MIB,
            // Figures and at most `check_record::MAX_PROBLEMS` lines.
            FileKind::CheckRecord => MIB,
            // The largest pack target (512 MiB), one more blob, the header.
            FileKind::Pack => 1024 * MIB,
        }
    }

    /// How a file of this kind is named in messages: `index/3f9a...`.
    pub fn path_of(self, name: &str) -> String {
        match self {
            FileKind::Config => "config".to_string(),
            FileKind::Pack => format!("data/{}/{name}", name.get(..2).unwrap_or("00")),
            _ => format!("{}/{}", self.dir(), name),
        }
    }
}

/// `version || postcard(value)`.
pub fn encode_plain<T: Serialize>(version: u16, value: &T) -> Vec<u8> {
    let mut out = version.to_le_bytes().to_vec();
    // postcard cannot fail to serialise the plain structs rbk defines (no
    // maps with non-string keys, no unsized sequences), short of running
    // out of memory.
    let body = postcard::to_allocvec(value).expect("postcard serialises rbk's own types");
    out.extend_from_slice(&body);
    out
}

/// Parses `version || postcard(value)`, refusing versions newer than `supported`.
pub fn decode_plain<T: DeserializeOwned>(file: &str, supported: u16, bytes: &[u8]) -> Result<T> {
    if bytes.len() < 2 {
        return Err(StoreError::damaged(
            file,
            "too short to hold a format version",
        ));
    }
    let version = u16::from_le_bytes([bytes[0], bytes[1]]);
    if version == 0 {
        return Err(StoreError::damaged(file, "format version 0 is not valid"));
    }
    if version > supported {
        return Err(StoreError::UnsupportedVersion {
            file: file.to_string(),
            found: version,
            supported,
        });
    }
    let (value, rest) = postcard::take_from_bytes(&bytes[2..])
        .map_err(|e| StoreError::damaged(file, format!("does not parse: {e}")))?;
    if !rest.is_empty() {
        return Err(StoreError::damaged(
            file,
            format!("{} unexpected bytes after the content", rest.len()),
        ));
    }
    Ok(value)
}

pub fn seal_file<T: Serialize>(
    crypto: &Crypto,
    kind: FileKind,
    version: u16,
    value: &T,
) -> Vec<u8> {
    crypto.seal(kind.aad(), encode_plain(version, value))
}

pub fn open_file<T: DeserializeOwned>(
    crypto: &Crypto,
    kind: FileKind,
    name: &str,
    supported: u16,
    sealed: &[u8],
) -> Result<T> {
    let file = kind.path_of(name);
    let plain = crypto.open(kind.aad(), sealed).ok_or_else(|| {
        StoreError::damaged(&file, "authentication failed (modified or truncated)")
    })?;
    decode_plain(&file, supported, &plain)
}
