//! Host mode: a stack that does not run in Compose. Commands stand in for the Docker engine.
//!
//! The graph comes from `neo4j-admin` on PATH, the SQL from `pg_dump`
//! against a URL, or the SQLite file at a path, inside the write pause of
//! `stack/host.rs`.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result, anyhow, bail};

use super::{INTERRUPTED_AFTER_PAUSE, Saved, new_snapshot, store_reader};
use crate::cancel::Cancel;
use crate::parts::{CODEC_NEO4J_DUMP, CommandReader, PartInput, open_regular_nofollow};
use crate::source::postgres::{DUMP_FORMAT, PgConnection};
use crate::stack::host::{HostConfig, HostPause, Service};
use crate::stack::names::{PART_GRAPH, PART_POSTGRES, PART_SQLITE, PART_SQLITE_WAL, label};
use crate::store::Repository;
use crate::store::writer::SnapshotWriter;

pub fn snapshot_host(
    repo: &Repository,
    host: &HostConfig,
    tags: &[String],
    hostname: Option<String>,
    cancel: &Cancel,
) -> Result<Saved> {
    if host.is_empty() {
        bail!("[host] in rbk.toml names no store: set neo4j_admin, postgres_url or sqlite_path");
    }
    if let Some(path) = &host.sqlite_path {
        // Before anything stops: restore refuses such a path too (it would replace the link).
        if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
            bail!(
                "sqlite_path {} is a symbolic link, which rbk does not follow: set it to the file itself",
                path.display()
            );
        }
    }
    let _lock = repo.lock(false, "snapshot (host)")?;
    let writer = SnapshotWriter::new(repo, Arc::new(repo.load_index()?));
    let mut warnings = Vec::new();
    let pause_start = crate::store::time::now_rfc3339();
    let mut pause = HostPause::new(host, cancel.clone())?;
    pause.stop(Service::Writes)?;
    let mut parts = Vec::new();
    if let Some(admin) = &host.neo4j_admin {
        pause.stop(Service::Neo4j)?;
        let args: Vec<String> = crate::source::neo4j::dump_command(host.database())
            .into_iter()
            .skip(1)
            .collect();
        let input = PartInput::Command {
            program: admin.clone(),
            args: args.clone(),
        };
        let reader = CommandReader::spawn(admin, &args, None)?;
        parts.push(
            store_reader(&writer, PART_GRAPH, input.origin(), reader, None, false)
                .with_context(|| format!("part {PART_GRAPH}"))?,
        );
        pause.start(Service::Neo4j)?;
    }
    if let Some(url) = &host.postgres_url {
        // The password to pg_dump's environment: on its command line `ps` would show it.
        let conn = PgConnection::parse(url).map_err(|e| anyhow!(e))?;
        let mut command = crate::process::command("pg_dump");
        command
            .arg(DUMP_FORMAT)
            .arg(format!("--dbname={}", conn.url));
        if let Some((var, password)) = conn.env() {
            command.env(var, password);
        }
        let reader = CommandReader::start(command, None)?;
        parts.push(
            store_reader(
                &writer,
                PART_POSTGRES,
                "command:pg_dump".into(),
                reader,
                None,
                true,
            )
            .with_context(|| format!("part {PART_POSTGRES}"))?,
        );
    }
    if let Some(path) = &host.sqlite_path {
        // The directory is the service user's: whatever is at these names may be planted.
        let file = open_regular_nofollow(path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        let size = file.metadata().ok().map(|m| m.len());
        parts.push(
            store_reader(
                &writer,
                PART_SQLITE,
                format!("file:{}", path.display()),
                file,
                size,
                true,
            )
            .with_context(|| format!("part {PART_SQLITE}"))?,
        );
        // Committed transactions a killed writer left only in the WAL belong to the copy.
        let mut wal = path.as_os_str().to_owned();
        wal.push("-wal");
        let wal = PathBuf::from(wal);
        let file = match open_regular_nofollow(&wal) {
            Ok(file) => Some(file),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            // A link or a FIFO at the log's name is not RushDB's log: not followed, not
            // stored, and said, since a real log could hold committed transactions.
            Err(e) => {
                warnings.push(format!("{PART_SQLITE_WAL}: {e}; not stored"));
                None
            }
        };
        if let Some(file) = file.filter(|f| f.metadata().is_ok_and(|m| m.len() > 0)) {
            let size = file.metadata().ok().map(|m| m.len());
            parts.push(
                store_reader(
                    &writer,
                    PART_SQLITE_WAL,
                    format!("file:{}", wal.display()),
                    file,
                    size,
                    true,
                )
                .with_context(|| format!("part {PART_SQLITE_WAL}"))?,
            );
        }
    }
    pause.finish()?;
    let pause_ms = pause.elapsed_ms();
    drop(pause);
    let labels = vec![
        (label::KIND.into(), "host".into()),
        (label::PAUSE_START.into(), pause_start),
        (label::PAUSE_MS.into(), pause_ms.to_string()),
    ];
    let snapshot = new_snapshot(parts, tags, hostname, None, labels);
    // The last chance to stop: once the commit starts it completes.
    cancel
        .check()
        .map_err(|c| anyhow::Error::from(c).context(INTERRUPTED_AFTER_PAUSE))?;
    let (id, snapshot) = writer.commit(snapshot)?;
    // As in the stack snapshot: saved, but a graph that is not stored as a dump needs a person.
    warnings.extend(
        snapshot
            .parts
            .iter()
            .filter(|p| p.name == PART_GRAPH && p.codec != CODEC_NEO4J_DUMP)
            .map(|_| {
                format!(
                    "{PART_GRAPH}: the output of neo4j-admin was not recognised as a dump; stored as it is"
                )
            }),
    );
    Ok(Saved {
        id,
        snapshot,
        warnings,
    })
}
