//! The repository engine: synchronous, and ignorant of Docker, databases and the CLI.
//!
//! Dependencies point down: `repo` uses everything below it; nothing here
//! uses `crate::source`, `crate::cli`, tokio or bollard (a tidy test checks).

pub mod backend;
pub mod blob;
pub mod check;
pub mod check_record;
pub mod chunker;
pub mod config;
pub mod conformance;
pub mod copy;
pub mod crypto;
pub mod diff;
pub mod error;
pub mod fault;
pub(crate) mod fetch;
pub mod format;
pub mod id;
pub mod index;
pub mod keys;
pub mod lock;
pub mod manifest;
pub mod memory;
pub mod pack;
pub mod pieces;
pub mod prune;
pub mod readahead;
pub mod reader;
pub mod repair;
pub mod repo;
pub mod stats;
pub mod time;
pub mod treehash;
pub mod verification;
pub mod writer;

pub use error::{Result, StoreError};
pub use id::Id;
pub use repo::{InitOptions, Repository};
