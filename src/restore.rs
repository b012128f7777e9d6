//! `restore`: parts back as files (`--to DIR`), or both stores back into the running stack (`stack`).

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::codec::neo4j_dump::DumpWriter;
use crate::parts::{CODEC_NEO4J_DUMP, CODEC_RAW, decode_envelope, safe_file_name};
use crate::progress::Unit;
use crate::store::index::Index;
use crate::store::manifest::{Part, Snapshot};
use crate::store::{Id, Repository};

pub mod host;
pub mod stack;

/// zstd level for re-encoded dumps. A restored dump is read once by
/// `neo4j-admin database load` (or kept by hand); level 1 writes it about
/// 1.6 times faster than Neo4j's own 3, for a file about 6% larger.
pub(crate) const DUMP_LEVEL: i32 = 1;

#[derive(Debug, Clone)]
pub struct RestoredPart {
    pub name: String,
    pub path: PathBuf,
    pub bytes: u64,
    pub codec: String,
}

/// Restores the named parts (all when `only` is empty) of a snapshot into `dir`.
pub fn restore_to_dir(
    repo: &Repository,
    wanted: &str,
    dir: &Path,
    only: &[String],
) -> Result<(Id, Snapshot, Vec<RestoredPart>)> {
    let _lock = repo.lock(false, "restore")?;
    let (id, snapshot) = repo.find_snapshot(wanted)?;
    for name in only {
        if !snapshot.parts.iter().any(|p| &p.name == name) {
            bail!("snapshot {} has no part {name:?}", id.short());
        }
    }
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let index = repo.load_index()?;
    let mut restored = Vec::new();
    for part in snapshot
        .parts
        .iter()
        .filter(|p| only.is_empty() || only.contains(&p.name))
    {
        if !safe_file_name(&part.name) {
            bail!(
                "snapshot {} has a part named {:?}, which is not a safe file name",
                id.short(),
                part.name
            );
        }
        let path = dir.join(&part.name);
        let bytes = restore_part(repo, &index, part, &path)
            .with_context(|| format!("restoring part {:?}", part.name))?;
        restored.push(RestoredPart {
            name: part.name.clone(),
            path,
            bytes,
            codec: part.codec.clone(),
        });
    }
    Ok((id, snapshot, restored))
}

/// Writes a part to a temporary file beside `path` and renames it only after
/// the stream verified: a damaged repository never leaves wrong bytes under
/// the real name.
fn restore_part(repo: &Repository, index: &Index, part: &Part, path: &Path) -> Result<u64> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(".rbk-partial-{}", part.name));
    let result = (|| -> Result<u64> {
        // Unbuffered: chunks arrive in tens of KiB, and the dump encoder buffers itself.
        let mut file =
            File::create(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
        write_part(repo, index, part, &mut file)?;
        // No fsync: a restore interrupted by a crash is simply run again, and
        // flushing a multi-GiB dump would double the time to get a stack back.
        let len = file.metadata()?.len();
        fs::rename(&tmp, path).with_context(|| format!("cannot rename into {}", path.display()))?;
        Ok(len)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
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
        CODEC_NEO4J_DUMP => {
            let envelope = decode_envelope(&part.envelope)
                .context("the dump envelope in the manifest is malformed")?;
            let mut dump = DumpWriter::new(out, &envelope, DUMP_LEVEL)?;
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
        repo.restore_stream(index, &p.stored, &p.name, &mut io::sink(), task.as_ref())
            .with_context(|| format!("verifying part {}", p.name))?;
    }
    Ok(())
}
