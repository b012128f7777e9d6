//! Stream codecs that undo a producer's compression so the store can deduplicate what is inside.
//!
//! A compressed stream changes completely when one byte of its input changes, so chunk-level
//! deduplication finds nothing to share between two backups of the same slowly-changing data.
//! The codecs here recognise such streams, hand the chunker the decompressed inner stream, and
//! rebuild an equivalent outer stream on restore. `pgdump` and `sqlite` only read: they check
//! that a SQL store's file is whole (`rbk verify`).

pub mod neo4j_dump;
pub mod pgdump;
pub mod sqlite;
pub mod tar;
