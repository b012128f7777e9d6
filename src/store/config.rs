//! The repository's `config`: format version, chunker and compression parameters.

use serde::{Deserialize, Serialize};

use super::id::Id;

pub const CONFIG_VERSION: u16 = 1;

/// Content-defined chunking parameters (FastCDC 2020, normalisation level 1).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct ChunkerParams {
    pub min_size: u32,
    pub avg_size: u32,
    pub max_size: u32,
}

impl Default for ChunkerParams {
    /// Chosen by measurement on page-structured database stores (see
    /// `docs/ARCHITECTURE.md`): small enough that a run of changed records
    /// dirties little beyond itself, large enough that the index stays small.
    fn default() -> Self {
        ChunkerParams {
            min_size: 16 * 1024,
            avg_size: 64 * 1024,
            max_size: 256 * 1024,
        }
    }
}

impl ChunkerParams {
    /// Bounds that keep memory and the cut loop sane; checked when a config is read.
    pub fn validate(&self) -> Result<(), String> {
        let ok = self.min_size >= 64
            && self.min_size.is_multiple_of(2)
            && self.avg_size.is_multiple_of(2)
            && self.max_size.is_multiple_of(2)
            && self.min_size < self.avg_size
            && self.avg_size < self.max_size
            && self.max_size <= 16 * 1024 * 1024;
        if ok {
            Ok(())
        } else {
            Err(format!("invalid chunker parameters {self:?}"))
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Config {
    /// Random, names the repository in locks and messages.
    pub repo_id: Id,
    pub chunker: ChunkerParams,
    /// zstd level for new blobs; blobs that do not shrink are stored raw.
    pub compression_level: i32,
    /// A pack is closed once it holds at least this many bytes.
    pub pack_target: u32,
    /// Sealed blob plaintext is padded to a multiple of this (see the threat model).
    pub pad_to: u32,
}

impl Config {
    pub fn new(repo_id: Id, compression_level: i32) -> Config {
        Config {
            repo_id,
            chunker: ChunkerParams::default(),
            compression_level,
            pack_target: 16 * 1024 * 1024,
            pad_to: 64,
        }
    }

    /// More than any pack of this repository can be: a writer closes a pack
    /// once it reaches `pack_target`, so a pack is that, one more blob (a chunk
    /// of at most `max_size`, or a list blob), and a header of under 40 bytes
    /// per blob of at least 104 bytes. Packs are read whole only up to this.
    pub fn max_pack_len(&self) -> u64 {
        2 * u64::from(self.pack_target) + 2 * u64::from(self.chunker.max_size) + (1 << 20)
    }

    pub fn validate(&self) -> Result<(), String> {
        self.chunker.validate()?;
        if !(1..=22).contains(&self.compression_level) {
            return Err(format!(
                "compression level {} is not 1..=22",
                self.compression_level
            ));
        }
        if !(1024..=512 * 1024 * 1024).contains(&self.pack_target) {
            return Err(format!("pack target {} is out of range", self.pack_target));
        }
        if !(1..=4096).contains(&self.pad_to) {
            return Err(format!("padding {} is out of range", self.pad_to));
        }
        Ok(())
    }
}
