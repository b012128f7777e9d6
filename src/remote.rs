//! What rbk reaches over a network: repositories on S3-compatible object storage through OpenDAL, behind the store's `Backend` trait, and dead-man pings to a monitoring service.
//!
//! The store stays synchronous and free of tokio (tidy test): an object-store backend owns
//! a small runtime of its own and waits on it, so the store sees the same blocking
//! `Backend` contract it sees for a directory. Only the CLI chooses a backend (`url.rs`).

pub mod ping;
pub mod s3;
pub mod url;
