//! Sources: async code (tokio + bollard) that finds the stack and produces or consumes byte streams.
//!
//! Sources never use the store: they hand out `ByteStream`s (and accept
//! `ByteSink`s) that `backup` and `restore` connect to the repository.

pub mod docker;
pub mod kind;
pub mod neo4j;
pub mod postgres;
pub mod rushdb;
pub mod scan;
pub mod secret;
pub mod sqlite;
pub mod stream;
pub mod transport;
