//! `rbk snapshot`: store files, stdin or a producer's output as one snapshot.

use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::Args;

use super::global::GlobalArgs;
use super::output::{bytes, json, rate};
use crate::backup::{PartSpec, SnapshotOptions, snapshot};
use crate::parts::PartInput;

/// Take a snapshot: each --path, --stdin or --command is one part.
///
/// Examples:
///   rbk snapshot --path ./neo4j.dump --path ./metadata.sql
///   pg_dump rushdb | rbk snapshot --stdin metadata.sql
///   rbk snapshot --command metadata.sql -- pg_dump rushdb
#[derive(Args, Debug)]
pub struct SnapshotArgs {
    /// A file to store; the part is named after the file.
    #[arg(long = "path", value_name = "FILE")]
    pub paths: Vec<PathBuf>,
    /// Store standard input as the part NAME.
    #[arg(long, value_name = "NAME")]
    pub stdin: Option<String>,
    /// Run PROGRAM (after `--`) and store its stdout as the part NAME;
    /// nothing is committed if it exits non-zero.
    #[arg(long = "command", value_name = "NAME", requires = "program")]
    pub command_name: Option<String>,
    #[arg(last = true, value_name = "PROGRAM ARGS")]
    pub program: Vec<String>,
    /// Label the snapshot (repeatable).
    #[arg(long = "tag")]
    pub tags: Vec<String>,
    /// Record this host name instead of the machine's.
    #[arg(long)]
    pub host: Option<String>,
    /// Store every part byte for byte: no Neo4j dump detection.
    #[arg(long)]
    pub raw: bool,
}

pub fn run(global: &GlobalArgs, args: &SnapshotArgs) -> Result<u8> {
    let mut parts = Vec::new();
    for path in &args.paths {
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            bail!("{} has no file name to name its part", path.display());
        };
        parts.push(PartSpec {
            name: name.to_string(),
            input: PartInput::File(path.clone()),
        });
    }
    if let Some(name) = &args.stdin {
        parts.push(PartSpec {
            name: name.clone(),
            input: PartInput::Stdin,
        });
    }
    match (&args.command_name, args.program.split_first()) {
        (Some(name), Some((program, rest))) => parts.push(PartSpec {
            name: name.clone(),
            input: PartInput::Command {
                program: program.clone(),
                args: rest.to_vec(),
            },
        }),
        (None, Some(_)) => bail!("a program after `--` needs --command NAME"),
        (Some(_), None) => bail!("--command NAME needs a program after `--`"),
        (None, None) => {}
    }
    let repo = global.open()?;
    let options = SnapshotOptions {
        parts,
        tags: args.tags.clone(),
        host: args.host.clone(),
        raw: args.raw,
        ..SnapshotOptions::default()
    };
    let (id, snap) = snapshot(&repo, &options)?;
    let s = &snap.stats;
    if global.json {
        json(&serde_json::json!({
            "id": id.to_hex(),
            "short_id": id.short(),
            "time": snap.time,
            "bytes_read": s.bytes_read,
            "bytes_added": s.bytes_added,
            "chunks": s.chunks,
            "new_chunks": s.new_chunks,
            "duration_ms": s.duration_ms,
            "parts": snap.parts.iter().map(|p| serde_json::json!({
                "name": p.name,
                "codec": p.codec,
                "source_size": p.source_size,
                "stored_size": p.stored.size,
                "chunks": p.stored.chunks,
            })).collect::<Vec<_>>(),
        }));
    } else if !global.quiet {
        for p in &snap.parts {
            println!("  {:<24} {:>10}  {}", p.name, bytes(p.source_size), p.codec);
        }
        println!(
            "snapshot {} saved: read {}, added {} ({} of {} chunks new), {:.1} s, {}",
            id.short(),
            bytes(s.bytes_read),
            bytes(s.bytes_added),
            s.new_chunks,
            s.chunks,
            s.duration_ms as f64 / 1000.0,
            rate(s.bytes_read, s.duration_ms)
        );
    }
    Ok(super::exit::OK)
}
