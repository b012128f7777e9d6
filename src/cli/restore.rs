//! `rbk restore <id> --to DIR`: every part back as a file.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use super::global::GlobalArgs;
use super::output::{bytes, json};
use crate::restore::restore_to_dir;

/// Restore a snapshot's parts as files (a unique id prefix, or `latest`).
///
/// Example: rbk restore 3f9a2c1e --to ./restored
#[derive(Args, Debug)]
pub struct RestoreArgs {
    /// Snapshot id (any unique prefix) or `latest`.
    pub snapshot: String,
    /// Directory to write the parts into (created if missing).
    #[arg(long)]
    pub to: PathBuf,
    /// Restore only this part (repeatable).
    #[arg(long = "part")]
    pub parts: Vec<String>,
}

pub fn run(global: &GlobalArgs, args: &RestoreArgs) -> Result<u8> {
    let repo = global.open()?;
    let started = std::time::Instant::now();
    let (id, _snap, restored) = restore_to_dir(&repo, &args.snapshot, &args.to, &args.parts)?;
    let ms = started.elapsed().as_millis() as u64;
    if global.json {
        json(&serde_json::json!({
            "id": id.to_hex(),
            "duration_ms": ms,
            "parts": restored.iter().map(|p| serde_json::json!({
                "name": p.name, "path": p.path.display().to_string(), "bytes": p.bytes, "codec": p.codec,
            })).collect::<Vec<_>>(),
        }));
    } else if !global.quiet {
        for p in &restored {
            println!(
                "  {:<24} {:>10}  {}",
                p.name,
                bytes(p.bytes),
                p.path.display()
            );
        }
        println!(
            "restored snapshot {} ({} part(s), verified) in {:.1} s",
            id.short(),
            restored.len(),
            ms as f64 / 1000.0
        );
    }
    Ok(super::exit::OK)
}
