//! `snapshot`: turn parts (files, stdin, producer commands, a running stack) into one committed snapshot.
//!
//! This is where inputs meet the store. A snapshot is committed only when
//! every part was read to its end and every producer exited with status 0.

use std::fs::File;
use std::io::{self, Read};
use std::sync::Arc;

use anyhow::{Context, Result};

use crate::codec::neo4j_dump::{Sniffed, sniff};
use crate::parts::{
    CODEC_NEO4J_DUMP, CODEC_RAW, CommandReader, PartInput, Tap, encode_envelope,
    new_part_name_problem,
};
use crate::progress::{CountingReader, Unit};
use crate::store::manifest::{Part, Snapshot, SnapshotStats};
use crate::store::writer::SnapshotWriter;
use crate::store::{Id, Repository};

pub mod host;
pub mod stack;

#[derive(Debug, Clone)]
pub struct PartSpec {
    pub name: String,
    pub input: PartInput,
}

#[derive(Debug, Clone, Default)]
pub struct SnapshotOptions {
    pub parts: Vec<PartSpec>,
    pub tags: Vec<String>,
    pub host: Option<String>,
    /// Store every part as given: no dump detection.
    pub raw: bool,
    /// Recorded time (RFC 3339); now when absent.
    pub time: Option<String>,
    pub labels: Vec<(String, String)>,
}

/// The plan's own mistakes, found without opening anything: no part, a name that cannot be a
/// part name, two parts of one name, two parts from stdin. Each is a usage error (exit 2).
/// `snapshot` checks them first; the CLI calls this before it asks for the password.
pub fn check_plan(options: &SnapshotOptions) -> Result<()> {
    if options.parts.is_empty() {
        return Err(crate::usage!(
            "nothing to back up: give --path, --stdin or --command"
        ));
    }
    let mut seen = std::collections::HashSet::new();
    for p in &options.parts {
        if let Some(problem) = new_part_name_problem(&p.name) {
            return Err(crate::usage!(
                "{:?} cannot be a part name: {problem}",
                p.name
            ));
        }
        if !seen.insert(&p.name) {
            return Err(crate::usage!(
                "two parts are named {:?}; part names must be unique",
                p.name
            ));
        }
    }
    if options
        .parts
        .iter()
        .filter(|p| matches!(p.input, PartInput::Stdin))
        .count()
        > 1
    {
        return Err(crate::usage!("only one part can come from stdin"));
    }
    Ok(())
}

/// Validates the plan before anything is read or written: `check_plan`, then every file is
/// there (a missing file is not a usage error).
fn validate(options: &SnapshotOptions) -> Result<()> {
    check_plan(options)?;
    for p in &options.parts {
        // A missing file must fail here, not after every earlier part was read and packed.
        if let PartInput::File(path) = &p.input {
            File::open(path)
                .with_context(|| format!("part {:?}: cannot open {}", p.name, path.display()))?;
        }
    }
    Ok(())
}

pub fn snapshot(repo: &Repository, options: &SnapshotOptions) -> Result<(Id, Snapshot)> {
    validate(options)?;
    let _lock = repo.lock(false, "snapshot")?;
    let index = Arc::new(repo.load_index()?);
    let writer = SnapshotWriter::new(repo, index);
    let mut parts = Vec::new();
    for spec in &options.parts {
        let part = store_part(&writer, spec, options.raw)
            .with_context(|| format!("part {:?} ({})", spec.name, spec.input.origin()))?;
        parts.push(part);
    }
    let snapshot = new_snapshot(
        parts,
        &options.tags,
        options.host.clone(),
        options.time.clone(),
        options.labels.clone(),
    );
    Ok(writer.commit(snapshot)?)
}

/// A manifest for `parts`, taken now (or at `time`) on this host (or `host`).
pub(crate) fn new_snapshot(
    parts: Vec<Part>,
    tags: &[String],
    host: Option<String>,
    time: Option<String>,
    labels: Vec<(String, String)>,
) -> Snapshot {
    Snapshot {
        time: time.unwrap_or_else(crate::store::time::now_rfc3339),
        host: host.unwrap_or_else(crate::store::lock::hostname),
        tags: tags.to_vec(),
        stats: SnapshotStats {
            bytes_read: parts.iter().map(|p| p.source_size).sum(),
            ..SnapshotStats::default()
        },
        parts,
        labels,
    }
}

fn store_part(writer: &SnapshotWriter<'_>, spec: &PartSpec, raw: bool) -> Result<Part> {
    let (input, size): (Box<dyn Read + Send>, _) = match &spec.input {
        PartInput::File(path) => {
            let file =
                File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
            // Only for progress: a size that changes while read is still read to the end.
            let size = file
                .metadata()
                .ok()
                .filter(|m| m.is_file())
                .map(|m| m.len());
            (Box::new(file), size)
        }
        PartInput::Stdin => (Box::new(io::stdin()), None),
        PartInput::Command { program, args } => {
            (Box::new(CommandReader::spawn(program, args)?), None)
        }
    };
    store_reader(writer, &spec.name, spec.input.origin(), input, size, raw)
}

/// Stores one part from any reader: Neo4j dumps by their inner stream
/// (unless `raw`), everything else as it is. `size`, when known, lets the
/// progress report show an ETA.
pub(crate) fn store_reader(
    writer: &SnapshotWriter<'_>,
    name: &str,
    origin: String,
    input: impl Read + Send,
    size: Option<u64>,
    raw: bool,
) -> Result<Part> {
    let task = writer.progress().task(name, Unit::Bytes, size);
    let task = task.as_ref();
    let mut tap = Tap::new(CountingReader::new(input, task));
    // Stored as it came, the stream's own hash is the source hash.
    let as_is = tap.switch();
    let (codec, envelope, stored) = if raw {
        as_is.off();
        (CODEC_RAW, Vec::new(), writer.add_stream(&mut tap, task)?)
    } else {
        match sniff(&mut tap)? {
            Sniffed::Dump {
                envelope,
                mut inner,
            } => {
                let stored = writer.add_stream(&mut inner, task)?;
                drop(inner);
                (CODEC_NEO4J_DUMP, encode_envelope(&envelope), stored)
            }
            Sniffed::Plain(mut replay) => {
                as_is.off();
                let stored = writer.add_stream(&mut replay, task)?;
                drop(replay);
                (CODEC_RAW, Vec::new(), stored)
            }
        }
    };
    // A dump decoder stops at the end of its compressed stream; whatever the
    // producer still has must be read so its exit status is known and its
    // bytes are counted (the decoder rejects trailing data already).
    io::copy(&mut tap, &mut io::sink()).context("reading the end of the input")?;
    Ok(Part {
        name: name.to_string(),
        origin,
        codec: codec.into(),
        envelope,
        source_size: tap.bytes,
        source_hash: tap.hash().unwrap_or(stored.hash),
        stored,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(name: &str, input: PartInput) -> PartSpec {
        PartSpec {
            name: name.into(),
            input,
        }
    }

    fn is_usage(r: Result<()>) -> bool {
        r.is_err_and(|e| e.is::<crate::usage::UsageError>())
    }

    #[test]
    fn plans_that_cannot_be_done_are_usage_errors_and_a_missing_file_is_not() {
        let plan = |parts: Vec<PartSpec>| SnapshotOptions {
            parts,
            ..SnapshotOptions::default()
        };
        assert!(is_usage(validate(&plan(vec![]))));
        for bad in ["", ".", "..", "a/b", ".rbk-x", "a\nb", "a\x1bb", "a\u{9b}b"] {
            assert!(
                is_usage(validate(&plan(vec![part(bad, PartInput::Stdin)]))),
                "{bad:?}"
            );
        }
        let long = "x".repeat(256);
        assert!(is_usage(validate(&plan(vec![part(
            &long,
            PartInput::Stdin
        )]))));
        assert!(is_usage(validate(&plan(vec![
            part("a", PartInput::Stdin),
            part("a", PartInput::Stdin),
        ]))));
        assert!(is_usage(validate(&plan(vec![
            part("a", PartInput::Stdin),
            part("b", PartInput::Stdin),
        ]))));
        let missing = validate(&plan(vec![part(
            "a",
            PartInput::File("/nonexistent/rbk/a".into()),
        )]));
        assert!(missing.is_err() && !is_usage(missing));
        assert!(validate(&plan(vec![part("ünï café.dump", PartInput::Stdin)])).is_ok());
    }
}
