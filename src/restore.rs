//! `restore`: parts back as files (`--to DIR`), or both stores back into the running stack (`stack`).

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::codec::neo4j_dump::{Compression, DumpWriter};
use crate::partial::Partial;
pub use crate::partial::RestoringInto;
use crate::parts::{CODEC_NEO4J_DUMP, CODEC_PIECES, CODEC_RAW, decode_envelope, safe_file_name};
use crate::progress::Unit;
use crate::store::index::Index;
use crate::store::manifest::{Part, Snapshot};
use crate::store::{Id, Repository};

pub mod drill;
mod feed;
pub mod host;
pub mod stack;

#[derive(Debug, Clone)]
pub struct RestoredPart {
    pub name: String,
    pub path: PathBuf,
    pub bytes: u64,
    pub codec: String,
}

/// Restores the named parts (all when `only` is empty) of a snapshot into `dir`. Files of
/// the parts' names already in `dir` are refused (a usage error, before anything is
/// written) unless `overwrite`.
pub fn restore_to_dir(
    repo: &Repository,
    wanted: &str,
    dir: &Path,
    only: &[String],
    overwrite: bool,
) -> Result<(Id, Snapshot, Vec<RestoredPart>)> {
    let _lock = repo.read_lock("restore")?;
    let (id, snapshot) = repo.find_snapshot(wanted)?;
    for name in only {
        if !snapshot.parts.iter().any(|p| &p.name == name) {
            bail!("snapshot {} has no part {name:?}", id.short());
        }
    }
    let parts: Vec<&Part> = snapshot
        .parts
        .iter()
        .filter(|p| only.is_empty() || only.contains(&p.name))
        .collect();
    for part in &parts {
        if !safe_file_name(&part.name) {
            bail!(
                "snapshot {} has a part named {:?}, which is not a safe file name",
                id.short(),
                part.name
            );
        }
    }
    if !overwrite {
        // Anything at the name counts, a symlink or a directory too: it is not rbk's to replace.
        let taken: Vec<String> = parts
            .iter()
            .filter(|p| fs::symlink_metadata(dir.join(&p.name)).is_ok())
            .map(|p| format!("{:?}", p.name))
            .collect();
        if !taken.is_empty() {
            return Err(crate::usage!(
                "{} already holds {}, which restoring snapshot {} would replace; nothing was written. \
                 Restore into a new or empty directory, or pass --overwrite to replace them",
                dir.display(),
                taken.join(", "),
                id.short()
            ));
        }
    }
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let index = repo.load_index()?;
    let mut restored = Vec::new();
    for part in parts {
        let path = dir.join(&part.name);
        let bytes = restore_part(repo, &index, part, dir, &path, overwrite).map_err(|e| {
            e.context(RestoringInto {
                what: format!("part {:?}", part.name),
                dir: dir.to_path_buf(),
            })
        })?;
        restored.push(RestoredPart {
            name: part.name.clone(),
            path,
            bytes,
            codec: part.codec.clone(),
        });
    }
    Ok((id, snapshot, restored))
}

/// Writes a part to a temporary file in `dir` and renames it to `path` only after the
/// stream verified: a damaged repository never leaves wrong bytes under the real name. The
/// file is 0600: a part records no mode to give it.
fn restore_part(
    repo: &Repository,
    index: &Index,
    part: &Part,
    dir: &Path,
    path: &Path,
    overwrite: bool,
) -> Result<u64> {
    let mut tmp = Partial::create(dir)?;
    // Unbuffered: chunks arrive in tens of KiB, and the dump encoder buffers itself.
    write_part(repo, index, part, tmp.file())?;
    // No fsync: a restore interrupted by a crash is simply run again, and
    // flushing a multi-GiB dump would double the time to get a stack back.
    let len = tmp.file().metadata()?.len();
    tmp.persist(path, overwrite)?;
    Ok(len)
}

/// Writes one part's bytes as the user gets them back: raw parts as
/// stored, dumps re-encoded around the stored inner stream. The stream is
/// verified against its recorded hash as it is written.
pub(crate) fn write_part(
    repo: &Repository,
    index: &Index,
    part: &Part,
    out: &mut dyn Write,
) -> Result<()> {
    // Counted as the stored stream: its size is known, a re-encoded dump's is not.
    let task = repo
        .progress()
        .task(&part.name, Unit::Bytes, Some(part.stored.size));
    let task = task.as_ref();
    match part.codec.as_str() {
        CODEC_RAW => repo.restore_stream(index, &part.stored, &part.name, out, task)?,
        CODEC_PIECES => repo.restore_part(index, part, out, task)?,
        CODEC_NEO4J_DUMP => {
            let envelope = decode_envelope(&part.envelope)
                .context("the dump envelope in the manifest is malformed")?;
            // Not compressed: `load` reads it once, often from a pipe while the stack is down,
            // so its writing speed is downtime and its size costs nothing (`stored.rs`).
            let mut dump = DumpWriter::new(out, &envelope, Compression::Stored)?;
            repo.restore_stream(index, &part.stored, &part.name, &mut dump, task)?;
            dump.finish()?;
        }
        other => bail!("unknown codec {other:?} (written by a newer rbk?)"),
    }
    Ok(())
}

/// Reads and verifies every byte of the parts, writing nothing: a damaged
/// snapshot must be found before a stack is stopped and its data replaced.
pub(crate) fn verify_parts(repo: &Repository, index: &Index, parts: &[Part]) -> Result<()> {
    for p in parts {
        let task = repo.progress().task(
            &format!("verify {}", p.name),
            Unit::Bytes,
            Some(p.stored.size),
        );
        repo.restore_part(index, p, &mut io::sink(), task.as_ref())
            .with_context(|| format!("verifying part {}", p.name))?;
    }
    Ok(())
}
