//! Host mode: a stack that does not run in Compose. Commands stand in for the Docker engine.
//!
//! Writes are paused with `pause_command` (e.g. `systemctl stop rushdb`)
//! and resumed with `resume_command`, always, whatever happens in between.
//! The graph comes from `neo4j-admin` on PATH, the SQL from `pg_dump`
//! against a URL, or the SQLite file at a path.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use serde::Deserialize;

use super::stack::{PART_GRAPH, PART_POSTGRES, PART_SQLITE, label};
use super::{new_snapshot, store_reader};
use crate::parts::{CommandReader, PartInput};
use crate::store::manifest::Snapshot;
use crate::store::writer::SnapshotWriter;
use crate::store::{Id, Repository};

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostConfig {
    /// Run before the dumps to stop writes (`systemctl stop rushdb`).
    pub pause_command: Option<String>,
    /// Run after, whatever happened (`systemctl start rushdb`).
    pub resume_command: Option<String>,
    /// Neo4j Community must be stopped for a dump: these run around it.
    pub neo4j_stop_command: Option<String>,
    pub neo4j_start_command: Option<String>,
    /// `neo4j-admin` to run (default: none, no graph part).
    pub neo4j_admin: Option<String>,
    pub neo4j_database: Option<String>,
    /// `postgres://user@host/db`; the password from PGPASSWORD or ~/.pgpass.
    pub postgres_url: Option<String>,
    /// The SQLite metadata file (SQL_DB_PATH).
    pub sqlite_path: Option<PathBuf>,
}

impl HostConfig {
    pub fn is_empty(&self) -> bool {
        self.neo4j_admin.is_none() && self.postgres_url.is_none() && self.sqlite_path.is_none()
    }
}

fn sh(what: &str, cmd: &str) -> Result<()> {
    let status = Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .status()
        .with_context(|| format!("running the {what} {cmd:?}"))?;
    if !status.success() {
        bail!("the {what} {cmd:?} failed ({status})");
    }
    Ok(())
}

/// Runs `command` when dropped, so the stack is resumed on every path out.
struct Resume<'a> {
    what: &'static str,
    command: Option<&'a str>,
}

impl Resume<'_> {
    fn now(&mut self) -> Result<()> {
        match self.command.take() {
            Some(c) => sh(self.what, c),
            None => Ok(()),
        }
    }
}

impl Drop for Resume<'_> {
    fn drop(&mut self) {
        if let Err(e) = self.now() {
            tracing::error!("{e:#}");
        }
    }
}

pub fn snapshot_host(
    repo: &Repository,
    host: &HostConfig,
    tags: &[String],
    hostname: Option<String>,
) -> Result<(Id, Snapshot)> {
    if host.is_empty() {
        bail!("[host] in rbk.toml names no store: set neo4j_admin, postgres_url or sqlite_path");
    }
    let _lock = repo.lock(false, "snapshot (host)")?;
    let writer = SnapshotWriter::new(repo, Arc::new(repo.load_index()?));
    let pause_start = crate::store::time::now_rfc3339();
    let began = Instant::now();
    let mut resume = Resume {
        what: "resume command",
        command: host.resume_command.as_deref(),
    };
    if let Some(c) = &host.pause_command {
        sh("pause command", c)?;
    }
    let mut parts = Vec::new();
    if let Some(admin) = &host.neo4j_admin {
        let mut neo4j_up = Resume {
            what: "Neo4j start command",
            command: host.neo4j_start_command.as_deref(),
        };
        if let Some(c) = &host.neo4j_stop_command {
            sh("Neo4j stop command", c)?;
        }
        let database = host.neo4j_database.as_deref().unwrap_or("neo4j");
        let args: Vec<String> = crate::source::neo4j::dump_command(database)
            .into_iter()
            .skip(1)
            .collect();
        let input = PartInput::Command {
            program: admin.clone(),
            args: args.clone(),
        };
        let reader = CommandReader::spawn(admin, &args)?;
        parts.push(
            store_reader(&writer, PART_GRAPH, input.origin(), reader, false)
                .with_context(|| format!("part {PART_GRAPH}"))?,
        );
        neo4j_up.now()?;
    }
    if let Some(url) = &host.postgres_url {
        let args = vec!["--format=plain".to_string(), format!("--dbname={url}")];
        let reader = CommandReader::spawn("pg_dump", &args)?;
        parts.push(
            store_reader(
                &writer,
                PART_POSTGRES,
                "command:pg_dump".into(),
                reader,
                true,
            )
            .with_context(|| format!("part {PART_POSTGRES}"))?,
        );
    }
    if let Some(path) = &host.sqlite_path {
        let file =
            std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        parts.push(
            store_reader(
                &writer,
                PART_SQLITE,
                format!("file:{}", path.display()),
                file,
                true,
            )
            .with_context(|| format!("part {PART_SQLITE}"))?,
        );
    }
    resume.now()?;
    let pause_ms = began.elapsed().as_millis() as u64;
    let labels = vec![
        (label::KIND.into(), "host".into()),
        (label::PAUSE_START.into(), pause_start),
        (label::PAUSE_MS.into(), pause_ms.to_string()),
    ];
    let snapshot = new_snapshot(parts, tags, hostname, None, labels);
    Ok(writer.commit(snapshot)?)
}
