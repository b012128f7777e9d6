//! Host mode: a stack that does not run in Compose. Commands stand in for the Docker engine.
//!
//! The graph comes from `neo4j-admin` on PATH, the SQL from `pg_dump`
//! against a URL, or the SQLite file at a path, inside the write pause of
//! `stack/host.rs`.

use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, bail};

use super::stream::{store_stream, unrecognised_dump};
use super::{INTERRUPTED_AFTER_PAUSE, Saved, new_snapshot};
use crate::cancel::Cancel;
use crate::source::kind::Role;
use crate::stack::host::{HostConfig, HostPause, Service};
use crate::stack::kinds;
use crate::stack::names::{self, label};
use crate::stack::phases::{Phases, dump_phase, phase};
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
    let kinds = kinds::of_host(host)?;
    let _lock = repo.lock(false, "snapshot (host)")?;
    let writer = SnapshotWriter::new(repo, Arc::new(repo.load_index()?));
    // The kinds on this host read files and processes, not the engine: a runtime only
    // because streams are handed out on one.
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .context("starting the async runtime")?;
    let mut warnings = Vec::new();
    let pause_start = crate::store::time::now_rfc3339();
    let mut pause = HostPause::new(host, cancel.clone())?;
    let phases = Phases::begin();
    phases.time(phase::PAUSE_WRITES, || pause.stop(Service::Writes))?;
    let mut parts = Vec::new();
    for kind in &kinds {
        // Neo4j Community must be stopped for a dump: the commands around it say how.
        let graph = kind.role() == Role::Graph;
        if graph {
            phases.time(phase::STOP_NEO4J, || pause.stop(Service::Neo4j))?;
        }
        let began = Instant::now();
        let (streams, mut w) = kind.streams(rt.handle())?;
        warnings.append(&mut w);
        for stream in streams {
            parts.push(store_stream(rt.handle(), &writer, stream)?);
        }
        phases.record(dump_phase(kind.role()), began);
        if graph {
            phases.time(phase::START_NEO4J, || pause.start(Service::Neo4j))?;
        }
    }
    phases.time(phase::RESUME_WRITES, || pause.finish())?;
    let pause_ms = pause.elapsed_ms();
    drop(pause);
    let labels = vec![
        (label::KIND.into(), "host".into()),
        (label::PAUSE_START.into(), pause_start),
        (label::PAUSE_MS.into(), pause_ms.to_string()),
        phases.label(),
    ];
    let mut snapshot = new_snapshot(parts, tags, hostname, None, labels);
    warnings.extend(unrecognised_dump(&snapshot));
    names::set_warnings(&mut snapshot, &warnings);
    // The last chance to stop: once the commit starts it completes.
    cancel
        .check()
        .map_err(|c| anyhow::Error::from(c).context(INTERRUPTED_AFTER_PAUSE))?;
    let (id, snapshot) = writer.commit(snapshot)?;
    Ok(Saved {
        id,
        snapshot,
        warnings,
    })
}
