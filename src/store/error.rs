//! The store's typed errors: callers branch on damage versus I/O versus a wrong key.
//!
//! Messages include their cause's text (no `#[source]` chains), so a
//! report that prints one line per error still says everything.

use std::io;
use std::path::PathBuf;

/// Everything the store can fail with. `check` and the CLI tell these apart:
/// damage is not an I/O failure, and neither is a wrong password.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("wrong password: none of the {keys} key file(s) in the repository opens with it{}", untried_note(*untried))]
    WrongPassword {
        keys: usize,
        /// Key files not tried: beyond the key-derivation budget of one
        /// password (the costliest are tried last).
        untried: usize,
    },

    #[error("no rbk repository at {path} ({detail})")]
    NotARepository { path: PathBuf, detail: String },

    #[error("a repository already exists at {0}")]
    AlreadyExists(PathBuf),

    /// Bytes on disk failed a hash or an authentication tag, or do not parse.
    #[error("{file} is damaged: {detail}")]
    Damaged { file: String, detail: String },

    /// A blob that a snapshot or list needs is in no index file.
    #[error("blob {blob} is missing: it is in no index (needed by {needed_by})")]
    MissingBlob { blob: String, needed_by: String },

    #[error(
        "{file}: format version {found} is newer than this rbk understands (up to {supported})"
    )]
    UnsupportedVersion {
        file: String,
        found: u16,
        supported: u16,
    },

    #[error("the repository is locked: {holder}. If that process is gone, run `rbk unlock`")]
    Locked { holder: String },

    /// This process's lock stopped protecting it; nothing was committed.
    #[error("the repository lock was lost ({0}); nothing was committed, run the command again")]
    LockLost(String),

    #[error("no snapshot matches {0:?}")]
    NoSuchSnapshot(String),

    #[error("{prefix:?} matches {count} snapshots; give more characters of the id")]
    AmbiguousSnapshot { prefix: String, count: usize },

    #[error("no key matches {0:?}; `rbk key list` shows the ids")]
    NoSuchKey(String),

    #[error("{prefix:?} matches {count} keys; give more characters of the id")]
    AmbiguousKey { prefix: String, count: usize },

    /// Removing this key would leave no key file that could open the repository.
    #[error(
        "key {0} is the last readable key: without it nobody could open the repository; add another with `rbk key add` first"
    )]
    LastKey(String),

    /// The key the current password opened; removing it needs an explicit choice.
    #[error(
        "key {0} is the one the current password opened: pass --allow-current to remove it anyway (after checking another password works), or use `rbk key passwd` to replace it"
    )]
    KeyInUse(String),

    /// The stream being stored failed (a producer died, a file could not be read).
    #[error("reading the input failed: {0}")]
    Input(io::Error),

    /// Writing a restored stream to its destination failed.
    #[error("writing the output failed: {0}")]
    Output(io::Error),

    // Not named `source`: thiserror would treat it as the cause and
    // reports that print causes would say it twice.
    #[error("{op} {path}: {error}")]
    Io {
        op: &'static str,
        path: PathBuf,
        error: io::Error,
    },

    #[error("{0}")]
    Invalid(String),
}

fn untried_note(untried: usize) -> String {
    if untried == 0 {
        String::new()
    } else {
        format!(
            " ({untried} of them, the costliest to try, were not tried: more key derivation than one password may spend; a planted key file?)"
        )
    }
}

impl StoreError {
    /// The file (or directory entry) did not exist: removed between a listing and a read.
    pub fn is_not_found(&self) -> bool {
        matches!(self, StoreError::Io { error, .. } if error.kind() == io::ErrorKind::NotFound)
    }

    pub fn damaged(file: impl Into<String>, detail: impl Into<String>) -> Self {
        StoreError::Damaged {
            file: file.into(),
            detail: detail.into(),
        }
    }

    /// True when the error means bytes in the repository are wrong (exit code "damaged").
    pub fn is_damage(&self) -> bool {
        matches!(
            self,
            StoreError::Damaged { .. } | StoreError::MissingBlob { .. }
        )
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;
