//! `rbk verify`: is one snapshot whole, down to the shape of each store's file? Reads every byte; only its record is written.
//!
//! `check --read-data` proves every blob is intact; that says nothing of whether what was
//! stored was a good backup. Verify reads a snapshot's parts as a restore would (size and
//! hash against the manifest), and checks each one's shape on the way: a graph dump's tar
//! walks to its end and matches the counts its header records, a `pg_dump` ends with the
//! line pg_dump writes last, a SQLite file holds every page its header counts. A snapshot
//! of a dump cut short (a full disk under the producer, a truncated file) fails here, on a
//! schedule, instead of on the night it is restored. The verdict itself writes nothing; the
//! CLI leaves it in the repository as a verification record (`record.rs`).

pub mod record;

use std::io::{self, Write};
use std::thread::JoinHandle;

use anyhow::{Context, Result};

use crate::codec::neo4j_dump::Envelope;
use crate::codec::pgdump::{PgDumpCheck, looks_like_pg_dump};
use crate::codec::sqlite::{SqliteCheck, SqliteFile, looks_like_sqlite};
use crate::codec::tar::summarize;
use crate::parts::{CODEC_NEO4J_DUMP, decode_envelope};
use crate::progress::Unit;
use crate::stack::names::{
    PART_GRAPH_VOLUME, PART_POSTGRES, PART_SQLITE, PART_SQLITE_WAL, label, volume_of_part,
};
use crate::store::manifest::{Part, Snapshot};
use crate::store::{Id, Repository};

/// Bytes read before a part's shape is chosen by its content (a tar's magic is at 257).
const SNIFF_LEN: usize = 512;

/// What was found of one part.
#[derive(Debug, Clone)]
pub struct PartVerdict {
    pub name: String,
    pub codec: String,
    /// Bytes as restored (the source's size).
    pub size: u64,
    /// Which shape was checked: `neo4j-dump`, `tar`, `pg-dump`, `sqlite`, `sqlite-wal`, or
    /// `bytes` (size and hash only).
    pub check: &'static str,
    pub ok: bool,
    /// What was found: figures when it passed, what is wrong when not.
    pub detail: String,
}

/// A snapshot's verdict, part by part.
#[derive(Debug)]
pub struct Verdict {
    pub id: Id,
    pub snapshot: Snapshot,
    pub parts: Vec<PartVerdict>,
}

impl Verdict {
    pub fn ok(&self) -> bool {
        self.parts.iter().all(|p| p.ok)
    }
}

/// Verifies the snapshot `wanted` names (an id prefix or `latest`). Damage in the stored
/// bytes, or a part of the wrong shape, is a failed part in the verdict; an error is a
/// verification that could not run (the repository unreadable). The caller holds a read lock.
pub fn verify(repo: &Repository, wanted: &str) -> Result<Verdict> {
    let (id, snapshot) = repo.find_snapshot(wanted)?;
    let index = repo.load_index()?;
    let stack = matches!(
        snapshot
            .labels
            .iter()
            .find(|(k, _)| k == label::KIND)
            .map(|(_, v)| v.as_str()),
        Some("stack" | "host")
    );
    let mut parts = Vec::new();
    for p in &snapshot.parts {
        let expected = expected_shape(p, stack);
        let mut sink = ShapeSink::new(expected)
            .with_context(|| format!("verifying part {}: starting its checker", p.name))?;
        let task = repo.progress().task(
            &format!("verify {}", p.name),
            Unit::Bytes,
            Some(p.stored.size),
        );
        let read = repo.restore_part(&index, p, &mut sink, task.as_ref());
        let (check, shape) = sink.finish();
        let (ok, detail) = match read {
            Err(e) if e.is_damage() => (false, e.to_string()),
            Err(e) => {
                return Err(anyhow::Error::from(e))
                    .with_context(|| format!("verifying part {}", p.name));
            }
            Ok(()) => match shape {
                Ok(figures) => (true, figures),
                Err(why) => (false, why),
            },
        };
        parts.push(PartVerdict {
            name: p.name.clone(),
            codec: p.codec.clone(),
            size: p.source_size,
            check,
            ok,
            detail,
        });
    }
    Ok(Verdict {
        id,
        snapshot,
        parts,
    })
}

/// The shape a part must have.
#[derive(Debug, Clone)]
enum Shape {
    /// A Neo4j dump's inner tar, and the counts its envelope recorded (zstd formats).
    Dump(Option<Envelope>),
    Tar,
    PgDump,
    Sqlite(SqliteFile),
    /// Chosen from the first bytes: any of the others, or none.
    Sniff,
}

/// A stack or host snapshot's SQL parts are known by name, and must have their shape;
/// anything else is judged by its content.
fn expected_shape(p: &Part, stack: bool) -> Shape {
    if p.codec == CODEC_NEO4J_DUMP {
        return Shape::Dump(decode_envelope(&p.envelope));
    }
    if stack {
        match p.name.as_str() {
            PART_POSTGRES => return Shape::PgDump,
            PART_SQLITE => return Shape::Sqlite(SqliteFile::Database),
            PART_SQLITE_WAL => return Shape::Sqlite(SqliteFile::Wal),
            n if volume_of_part(n).is_some() || n == PART_GRAPH_VOLUME => return Shape::Tar,
            _ => {}
        }
    }
    Shape::Sniff
}

fn sniffed(prefix: &[u8]) -> Option<Shape> {
    // A tar first: it may hold a dump, whose first lines are then inside it.
    if prefix.get(257..262) == Some(b"ustar") {
        Some(Shape::Tar)
    } else if looks_like_pg_dump(prefix) {
        Some(Shape::PgDump)
    } else if looks_like_sqlite(prefix) {
        Some(Shape::Sqlite(SqliteFile::Database))
    } else {
        None
    }
}

/// Where a part's bytes go: a checker of its shape.
enum Checker {
    /// Deciding: the first bytes, kept until there are enough to sniff.
    Sniffing(Vec<u8>),
    Bytes,
    /// The tar walker runs on its own thread, reading what this end writes.
    Tar {
        pipe: Option<io::PipeWriter>,
        walker: JoinHandle<Result<String, String>>,
        name: &'static str,
    },
    PgDump(PgDumpCheck),
    Sqlite(SqliteCheck, &'static str),
}

struct ShapeSink {
    checker: Checker,
}

impl ShapeSink {
    /// Fails only when the checker cannot be set up (no pipe or thread for the tar
    /// walker): a verification that could not run, not a bad backup.
    fn new(shape: Shape) -> io::Result<ShapeSink> {
        Ok(ShapeSink {
            checker: match shape {
                Shape::Sniff => Checker::Sniffing(Vec::with_capacity(SNIFF_LEN)),
                known => checker_for(Some(known))?,
            },
        })
    }

    /// The check made, and its outcome: figures, or what is wrong.
    fn finish(mut self) -> (&'static str, Result<String, String>) {
        if let Checker::Sniffing(prefix) = &mut self.checker {
            let prefix = std::mem::take(prefix);
            if let Err(e) = checker_for(sniffed(&prefix)).and_then(|c| {
                self.checker = c;
                self.forward(&prefix)
            }) {
                return ("bytes", Err(e.to_string()));
            }
        }
        match self.checker {
            Checker::Sniffing(_) | Checker::Bytes => ("bytes", Ok("size and hash match".into())),
            Checker::Tar { pipe, walker, name } => {
                // Closing the pipe is the end of the stream for the walker.
                drop(pipe);
                let outcome = walker
                    .join()
                    .unwrap_or_else(|_| Err("the tar walker panicked".into()));
                (name, outcome)
            }
            Checker::PgDump(c) => (
                "pg-dump",
                c.finish()
                    .map(|s| format!("{} table(s) with data, {} row(s)", s.tables, s.rows)),
            ),
            Checker::Sqlite(c, name) => (
                name,
                c.finish()
                    .map(|s| format!("{} page(s) of {} bytes", s.pages, s.page_size)),
            ),
        }
    }

    fn forward(&mut self, buf: &[u8]) -> io::Result<()> {
        match &mut self.checker {
            Checker::Sniffing(prefix) => {
                prefix.extend_from_slice(buf);
                if prefix.len() >= SNIFF_LEN {
                    let prefix = std::mem::take(prefix);
                    self.checker = checker_for(sniffed(&prefix))?;
                    self.forward(&prefix)?;
                }
                Ok(())
            }
            Checker::Bytes => Ok(()),
            // The walker drains the pipe to its end even after it found a fault, so a write
            // fails only if its thread is gone, and then `finish` reports why.
            Checker::Tar { pipe, .. } => match pipe {
                Some(p) => p.write_all(buf),
                None => Ok(()),
            },
            Checker::PgDump(c) => c.write_all(buf),
            Checker::Sqlite(c, _) => c.write_all(buf),
        }
    }
}

impl Write for ShapeSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.forward(buf)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn checker_for(shape: Option<Shape>) -> io::Result<Checker> {
    Ok(match shape {
        None | Some(Shape::Sniff) => Checker::Bytes,
        Some(Shape::PgDump) => Checker::PgDump(PgDumpCheck::new()),
        Some(Shape::Sqlite(file)) => Checker::Sqlite(
            SqliteCheck::new(file),
            match file {
                SqliteFile::Database => "sqlite",
                SqliteFile::Wal => "sqlite-wal",
            },
        ),
        Some(Shape::Tar) => tar_checker("tar", None)?,
        Some(Shape::Dump(envelope)) => tar_checker("neo4j-dump", envelope)?,
    })
}

fn tar_checker(name: &'static str, envelope: Option<Envelope>) -> io::Result<Checker> {
    let (mut reader, writer) = io::pipe()?;
    let walker = std::thread::Builder::new()
        .name("rbk-verify-tar".into())
        .spawn(move || {
            let summary = summarize(&mut reader);
            // Read to the end whatever the walker found, so the writer never sees a closed pipe.
            let _ = io::copy(&mut reader, &mut io::sink());
            let s = summary.map_err(|e| format!("its tar is damaged: {e}"))?;
            let env = envelope.as_ref();
            let recorded = (
                env.and_then(Envelope::file_count),
                env.and_then(Envelope::byte_count),
            );
            if let (Some(files), Some(bytes)) = recorded
                && (files != s.regular_files as i64 || bytes != s.regular_bytes as i64)
            {
                return Err(format!(
                    "its header records {files} file(s) of {bytes} bytes, but its tar holds {} of {} bytes: neo4j-admin would refuse to load it",
                    s.regular_files, s.regular_bytes
                ));
            }
            Ok(format!(
                "{} entries, {} file(s) of {} bytes{}",
                s.entries,
                s.regular_files,
                s.regular_bytes,
                if recorded.0.is_some() {
                    ", as its header records"
                } else {
                    ""
                }
            ))
        });
    Ok(Checker::Tar {
        pipe: Some(writer),
        walker: walker?,
        name,
    })
}
