//! `snapshot`: turn parts (files, stdin, producer commands, a running stack) into one committed snapshot.
//!
//! This is where inputs meet the store. A snapshot is committed only when
//! every part was read to its end and every producer exited with status 0.

use std::fs::File;
use std::io::{self, Read};
use std::sync::Arc;

use anyhow::{Context, Result};

use crate::cancel::{Cancel, Cancelled, Interruptible, cancelled_by};
use crate::codec::neo4j_dump::{DamagedDump, Sniffed, sniff};
use crate::parts::{
    CODEC_NEO4J_DUMP, CODEC_RAW, CommandReader, PartInput, Tap, encode_envelope,
    new_part_name_problem, open_file, open_stdin,
};
use crate::progress::{CountingReader, Unit};
use crate::store::StoreError;
use crate::store::manifest::{Part, Snapshot, SnapshotStats};
use crate::store::writer::SnapshotWriter;
use crate::store::{Id, Repository};

mod counts;
pub mod host;
pub mod stack;
mod stream;
mod volume_mode;

/// What a signal during a stack's pause, and one after it, cost: said with the `Cancelled`
/// they wrap, which the CLI turns into exit 130.
pub(crate) const INTERRUPTED_IN_PAUSE: &str =
    "interrupted: the stack was started again; no snapshot is saved";
pub(crate) const INTERRUPTED_AFTER_PAUSE: &str =
    "interrupted after the stack was started again: no snapshot is saved";

#[derive(Debug, Clone)]
pub struct PartSpec {
    pub name: String,
    pub input: PartInput,
}

/// Which parts are stored byte for byte, with no Neo4j dump detection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Raw {
    /// Dumps are recognised and stored by their inner stream (no `--raw`).
    #[default]
    Detect,
    /// Every part as it is (`--raw`).
    All,
    /// These parts as they are, the others sniffed (`--raw NAME`, repeatable).
    Parts(Vec<String>),
}

impl Raw {
    pub fn applies_to(&self, part: &str) -> bool {
        match self {
            Raw::Detect => false,
            Raw::All => true,
            Raw::Parts(names) => names.iter().any(|n| n == part),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct SnapshotOptions {
    pub parts: Vec<PartSpec>,
    pub tags: Vec<String>,
    pub host: Option<String>,
    /// Parts stored as given: no dump detection.
    pub raw: Raw,
    /// Recorded time (RFC 3339); now when absent.
    pub time: Option<String>,
    pub labels: Vec<(String, String)>,
    /// Set (by the CLI's signal handler) to stop reading: the snapshot then fails with
    /// [`Interrupted`] and commits nothing. The default is never set.
    pub cancel: Cancel,
}

/// A committed snapshot, and what it stored in a way the user should know about (a file
/// that starts like a Neo4j dump but was stored as it is).
#[derive(Debug)]
pub struct Saved {
    pub id: Id,
    pub snapshot: Snapshot,
    pub warnings: Vec<String>,
}

/// A snapshot stopped by a signal before it was committed: nothing was saved. Says how far
/// it got, for the message.
#[derive(Debug, thiserror::Error)]
#[error("{cancelled}: snapshot not saved; nothing was committed")]
pub struct Interrupted {
    pub cancelled: Cancelled,
    /// The part being read when the signal came, its origin and the bytes read of it;
    /// `None` when no part was being read (before the first, or before the commit).
    pub reading: Option<(String, String, u64)>,
    /// Parts read in full before that, with their sizes.
    pub done: Vec<(String, u64)>,
    /// Parts not started.
    pub not_started: Vec<String>,
}

/// The plan's own mistakes, found without opening anything: no part, a name that cannot be a
/// part name, two parts of one name, two parts from stdin, `--raw NAME` naming no part. Each
/// is a usage error (exit 2). `snapshot` checks them first; the CLI calls this before it asks
/// for the password.
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
    // `--raw NAME` must name a part: a typo would otherwise store a dump decoded that the
    // user meant to keep as it is, with no word said.
    if let Raw::Parts(names) = &options.raw {
        for n in names {
            if !options.parts.iter().any(|p| &p.name == n) {
                let parts: Vec<&str> = options.parts.iter().map(|p| p.name.as_str()).collect();
                return Err(crate::usage!(
                    "--raw {n:?} names no part of this snapshot (its parts: {})",
                    parts.join(", ")
                ));
            }
        }
    }
    Ok(())
}

/// Opens every file part, once, before anything is stored: a missing file fails here, not
/// after every earlier part was read and packed, and the handle opened here is the one read
/// (a FIFO or a device cannot be opened twice for the same bytes).
fn open_files(options: &SnapshotOptions) -> Result<Vec<Option<File>>> {
    options
        .parts
        .iter()
        .map(|p| match &p.input {
            PartInput::File(path) => open_file(path)
                .map(Some)
                .with_context(|| format!("part {:?}: cannot open {}", p.name, path.display())),
            _ => Ok(None),
        })
        .collect()
}

pub fn snapshot(repo: &Repository, options: &SnapshotOptions) -> Result<Saved> {
    check_plan(options)?;
    let mut files = open_files(options)?;
    let _lock = repo.lock(false, "snapshot")?;
    let index = Arc::new(repo.load_index()?);
    let writer = SnapshotWriter::new(repo, index);
    let mut parts = Vec::new();
    let mut warnings = Vec::new();
    let interrupted = |parts: &[Part], reading, cancelled, at: usize| Interrupted {
        cancelled,
        reading,
        done: parts
            .iter()
            .map(|p| (p.name.clone(), p.source_size))
            .collect(),
        not_started: options.parts[at..].iter().map(|p| p.name.clone()).collect(),
    };
    for (i, spec) in options.parts.iter().enumerate() {
        if let Err(c) = options.cancel.check() {
            return Err(interrupted(&parts, None, c, i).into());
        }
        let raw = options.raw.applies_to(&spec.name);
        match store_part(&writer, spec, files[i].take(), raw, &options.cancel) {
            Ok(stored) => {
                warnings.extend(stored.warning);
                parts.push(stored.part);
            }
            Err(PartError::Cancelled(c, read)) => {
                let reading = Some((spec.name.clone(), spec.input.origin(), read));
                return Err(interrupted(&parts, reading, c, i + 1).into());
            }
            Err(PartError::Failed(e, read)) => {
                let (name, origin) = (&spec.name, spec.input.origin());
                // A failure after a signal is the signal's doing (Ctrl-C reaches the writer
                // of `pg_dump | rbk snapshot --stdin` too): report the interruption.
                if let Err(c) = options.cancel.check() {
                    let reading = Some((name.clone(), origin, read));
                    return Err(interrupted(&parts, reading, c, i + 1).into());
                }
                return Err(if damaged_dump(&e) {
                    // Refused rather than stored as it is: a damaged dump would pass for a good
                    // backup until the night it is loaded.
                    e.context(format!(
                        "part {name:?} ({origin}) starts as a Neo4j dump but is damaged further \
                         on, so nothing was stored (to keep the file byte for byte anyway, run \
                         again with --raw {name:?})"
                    ))
                } else {
                    e.context(format!("part {name:?} ({origin})"))
                });
            }
        }
    }
    // The last chance to stop: once the commit starts it completes, and the snapshot is saved.
    if let Err(c) = options.cancel.check() {
        return Err(interrupted(&parts, None, c, options.parts.len()).into());
    }
    let mut snapshot = new_snapshot(
        parts,
        &options.tags,
        options.host.clone(),
        options.time.clone(),
        options.labels.clone(),
    );
    crate::stack::names::set_warnings(&mut snapshot, &warnings);
    let (id, snapshot) = writer.commit(snapshot)?;
    Ok(Saved {
        id,
        snapshot,
        warnings,
    })
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

/// Why a part was not stored (a signal, or anything else), and the bytes read until then.
enum PartError {
    Cancelled(Cancelled, u64),
    Failed(anyhow::Error, u64),
}

/// A part as stored, and the warning it earned, if any.
pub(crate) struct StoredPart {
    pub part: Part,
    pub warning: Option<String>,
}

/// Reads one part from its input: the file opened by [`open_files`], standard input, or
/// the producer, each read through [`Interruptible`] so that `cancel` stops it.
fn store_part(
    writer: &SnapshotWriter<'_>,
    spec: &PartSpec,
    file: Option<File>,
    raw: bool,
    cancel: &Cancel,
) -> std::result::Result<StoredPart, PartError> {
    let opened: Result<(Box<dyn Read + Send>, Option<u64>)> = match (&spec.input, file) {
        (PartInput::File(_), Some(file)) => {
            // Only for progress: a size that changes while read is still read to the end.
            let size = file
                .metadata()
                .ok()
                .filter(|m| m.is_file())
                .map(|m| m.len());
            Ok((Box::new(Interruptible::new(file, cancel.clone())), size))
        }
        (PartInput::File(path), None) => Err(anyhow::anyhow!(
            "{} was not opened before the snapshot started",
            path.display()
        )),
        (PartInput::Stdin, _) => open_stdin().context("cannot read standard input").map(
            |f| -> (Box<dyn Read + Send>, _) {
                (Box::new(Interruptible::new(f, cancel.clone())), None)
            },
        ),
        (PartInput::Command { program, args }, _) => {
            CommandReader::spawn(program, args, Some(cancel))
                .map(|r| -> (Box<dyn Read + Send>, _) { (Box::new(r), None) })
                .map_err(anyhow::Error::from)
        }
    };
    let (input, size) = opened.map_err(|e| PartError::Failed(e, 0))?;
    store_input(writer, &spec.name, spec.input.origin(), input, size, raw)
}

/// Stores one part from any reader: Neo4j dumps by their inner stream
/// (unless `raw`), everything else as it is. `size`, when known, lets the
/// progress report show an ETA. The stack snapshot calls this; it makes its
/// own warning of a graph dump stored as it is.
pub(crate) fn store_reader(
    writer: &SnapshotWriter<'_>,
    name: &str,
    origin: String,
    input: impl Read + Send,
    size: Option<u64>,
    raw: bool,
) -> Result<Part> {
    match store_input(writer, name, origin, input, size, raw) {
        Ok(stored) => Ok(stored.part),
        Err(PartError::Failed(e, _)) => Err(e),
        Err(PartError::Cancelled(c, _)) => Err(io::Error::from(c).into()),
    }
}

/// [`store_reader`], with the warning of a stream that starts like a dump but was not
/// recognised as one, and a cancellation told apart with the bytes read until then.
fn store_input(
    writer: &SnapshotWriter<'_>,
    name: &str,
    origin: String,
    input: impl Read + Send,
    size: Option<u64>,
    raw: bool,
) -> std::result::Result<StoredPart, PartError> {
    let task = writer.progress().task(name, Unit::Bytes, size);
    let task = task.as_ref();
    let mut tap = Tap::new(CountingReader::new(input, task));
    // Stored as it came, the stream's own hash is the source hash.
    let as_is = tap.switch();
    let mut warning = None;
    let stored = (|| -> Result<_> {
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
                Sniffed::Plain {
                    mut replay,
                    unrecognised,
                } => {
                    as_is.off();
                    warning = unrecognised
                        .map(|why| format!("{name}: {why}; stored as it is, byte for byte"));
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
        Ok((codec, envelope, stored))
    })();
    let (codec, envelope, stored) = match stored {
        Ok(s) => s,
        Err(e) => {
            return Err(match input_error(&e).and_then(cancelled_by) {
                Some(c) => PartError::Cancelled(c, tap.bytes),
                None => PartError::Failed(e, tap.bytes),
            });
        }
    };
    Ok(StoredPart {
        part: Part {
            name: name.to_string(),
            origin,
            codec: codec.into(),
            envelope,
            source_size: tap.bytes,
            source_hash: tap.hash().unwrap_or(stored.hash),
            stored,
        },
        warning,
    })
}

/// The read error under `e`: an `io::Error` in its chain, or the one a failed stream
/// carries inside the store's error (which does not expose it as a cause).
fn input_error(e: &anyhow::Error) -> Option<&io::Error> {
    e.chain()
        .find_map(|c| match c.downcast_ref::<StoreError>() {
            Some(StoreError::Input(io)) => Some(io),
            _ => c.downcast_ref::<io::Error>(),
        })
}

/// Whether `e` is a recognised dump found damaged while it was decoded.
fn damaged_dump(e: &anyhow::Error) -> bool {
    input_error(e)
        .and_then(|io| io.get_ref())
        .is_some_and(|inner| inner.is::<DamagedDump>())
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

    /// The codec volume mode writes is the one the store verifies piece by piece.
    #[test]
    fn the_pieced_codec_has_one_name() {
        assert_eq!(
            crate::parts::CODEC_PIECES,
            crate::store::pieces::CODEC_PIECES
        );
    }

    #[test]
    fn plans_that_cannot_be_done_are_usage_errors_and_a_missing_file_is_not() {
        let plan = |parts: Vec<PartSpec>| SnapshotOptions {
            parts,
            ..SnapshotOptions::default()
        };
        assert!(is_usage(check_plan(&plan(vec![]))));
        for bad in ["", ".", "..", "a/b", ".rbk-x", "a\nb", "a\x1bb", "a\u{9b}b"] {
            assert!(
                is_usage(check_plan(&plan(vec![part(bad, PartInput::Stdin)]))),
                "{bad:?}"
            );
        }
        let long = "x".repeat(256);
        assert!(is_usage(check_plan(&plan(vec![part(
            &long,
            PartInput::Stdin
        )]))));
        assert!(is_usage(check_plan(&plan(vec![
            part("a", PartInput::Stdin),
            part("a", PartInput::Stdin),
        ]))));
        assert!(is_usage(check_plan(&plan(vec![
            part("a", PartInput::Stdin),
            part("b", PartInput::Stdin),
        ]))));
        let missing = open_files(&plan(vec![part(
            "a",
            PartInput::File("/nonexistent/rbk/a".into()),
        )]))
        .map(|_| ());
        assert!(missing.is_err() && !is_usage(missing));
        assert!(check_plan(&plan(vec![part("ünï café.dump", PartInput::Stdin)])).is_ok());
    }
}
