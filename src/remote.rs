//! Repositories that live elsewhere than a local directory: S3-compatible object storage through OpenDAL, behind the store's `Backend` trait.
//!
//! The store stays synchronous and free of tokio (tidy test): an object-store backend owns
//! a small runtime of its own and waits on it, so the store sees the same blocking
//! `Backend` contract it sees for a directory. Only the CLI chooses a backend (`url.rs`).

pub mod s3;
pub mod url;
