//! `rbk restore <id>` into the running stack: preflight, stop, load the graph, restore SQL, start, report.

use anyhow::{Context, Result, anyhow, bail};
use serde::Serialize;

use super::{DUMP_LEVEL, verify_parts, write_part};
use crate::codec::neo4j_dump::DumpWriter;
use crate::codec::tar::{Owner, TarBuilder};
use crate::parts::{CODEC_NEO4J_DUMP, decode_envelope};
use crate::process::{ExitError, ExitStatusKind};
use crate::progress::Unit;
use crate::source::docker::{ContainerInfo, Engine};
use crate::source::neo4j::{self, Edition, compare_versions};
use crate::source::postgres::PgTarget;
use crate::source::stream::byte_sink;
use crate::stack::discover::{
    GraphStore, KEY_VAR, SqlStore, Stack, StackConfig, StackVolume, discover,
};
use crate::stack::names::{
    KEY_FINGERPRINT_CONTEXT, PART_GRAPH, PART_POSTGRES, PART_SQLITE, PART_SQLITE_WAL, label,
    volume_of_part,
};
use crate::stack::pause::Pause;
use crate::store::index::Index;
use crate::store::manifest::{Part, Snapshot};
use crate::store::{Id, Repository};

#[derive(Debug, Clone, Default)]
pub struct StackRestoreOptions {
    pub stack: StackConfig,
    /// Restore even though the running encryption key differs from the snapshot's.
    pub force: bool,
    /// Set by the CLI's SIGINT/SIGTERM handler: the pause starts the stack again and the
    /// restore fails with `Cancelled`.
    pub cancel: crate::cancel::Cancel,
}

#[derive(Debug, Clone, Serialize)]
pub struct StackRestoreReport {
    pub snapshot: String,
    pub project: String,
    pub restored: Vec<String>,
    pub downtime_ms: u64,
    pub warnings: Vec<String>,
}

fn label_of<'a>(s: &'a Snapshot, key: &str) -> Option<&'a str> {
    s.labels
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

fn part<'a>(s: &'a Snapshot, name: &str) -> Option<&'a Part> {
    s.parts.iter().find(|p| p.name == name)
}

/// The snapshot's volume parts, each with the stack volume it goes back into.
fn volume_parts<'a>(s: &'a Snapshot, stack: &'a Stack) -> Result<Vec<(&'a Part, &'a StackVolume)>> {
    let mut out = Vec::new();
    for p in &s.parts {
        let Some(name) = volume_of_part(&p.name) else {
            continue;
        };
        let Some(v) = stack.volumes.iter().find(|v| v.name == name) else {
            let have: Vec<&str> = stack.volumes.iter().map(|v| v.name.as_str()).collect();
            bail!(
                "the snapshot holds the volume {name}, but no such volume is mounted by {} or Neo4j in the stack (it has: {}); restore it with --to DIR",
                stack.rushdb.name,
                if have.is_empty() {
                    "none".to_string()
                } else {
                    have.join(", ")
                }
            );
        };
        out.push((p, v));
    }
    Ok(out)
}

/// Everything that must hold before the stack is touched. Returns warnings.
fn preflight(
    repo: &Repository,
    index: &Index,
    id: &Id,
    snap: &Snapshot,
    stack: &Stack,
    force: bool,
) -> Result<Vec<String>> {
    let mut warnings = stack.warnings();
    if part(snap, PART_GRAPH).is_none()
        && part(snap, PART_POSTGRES).is_none()
        && part(snap, PART_SQLITE).is_none()
    {
        bail!(
            "snapshot {} holds no stack parts ({PART_GRAPH}, {PART_POSTGRES} or {PART_SQLITE}); use --to DIR",
            id.short()
        );
    }
    volume_parts(snap, stack)?;
    // The key: restored tokens and secrets are only usable with the key that encrypted them.
    let saved_key = label_of(snap, label::KEY_FINGERPRINT);
    match (saved_key, stack.rushdb.env_var(KEY_VAR)) {
        (Some(saved), Some(running))
            if repo.fingerprint(KEY_FINGERPRINT_CONTEXT, running.as_bytes()) != saved =>
        {
            let msg = format!(
                "{KEY_VAR} of the running {} differs from the one in use when snapshot {} was taken: every restored API token and secret would be unreadable. Set the old key, or pass --force",
                stack.rushdb.name,
                id.short()
            );
            if !force {
                bail!(msg);
            }
            warnings.push(msg);
        }
        (Some(_), None) => warnings.push(format!(
            "{KEY_VAR} is not set on {}: it cannot be compared with the snapshot's",
            stack.rushdb.name
        )),
        _ => {}
    }
    if let Some(graph) = part(snap, PART_GRAPH) {
        let GraphStore::Bundled { version, .. } = &stack.graph else {
            bail!(
                "the snapshot has a Neo4j dump but the stack has no Neo4j container to load it into"
            );
        };
        if let (Some(dumped), Some(running)) = (label_of(snap, label::NEO4J_VERSION), version)
            && compare_versions(running, dumped).is_lt()
        {
            bail!(
                "the dump was made by Neo4j {dumped}; the stack runs the older {running}, which cannot load it"
            );
        }
        if graph.codec != CODEC_NEO4J_DUMP {
            bail!(
                "{PART_GRAPH} in snapshot {} is not stored as a Neo4j dump",
                id.short()
            );
        }
    }
    match (
        &stack.sql,
        part(snap, PART_POSTGRES),
        part(snap, PART_SQLITE),
    ) {
        (SqlStore::Postgres { .. }, None, Some(_)) => {
            bail!("the snapshot holds SQLite metadata but the stack uses Postgres")
        }
        (SqlStore::Sqlite { .. }, Some(_), None) => {
            bail!("the snapshot holds a Postgres dump but the stack uses SQLite")
        }
        _ => {}
    }
    verify_parts(repo, index, &snap.parts)?;
    Ok(warnings)
}

pub fn restore_stack(
    repo: &Repository,
    wanted: &str,
    options: &StackRestoreOptions,
) -> Result<StackRestoreReport> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let engine = rt.block_on(Engine::connect())?;
    let _lock = repo.read_lock("restore (stack)")?;
    let (id, snap) = repo.find_snapshot(wanted)?;
    let index = repo.load_index()?;
    let stack = rt.block_on(discover(&engine, &options.stack))?;
    let warnings = preflight(repo, &index, &id, &snap, &stack, options.force)?;
    rt.block_on(engine.remove_leftovers(&stack.project))?;

    let mut pause = Pause::new(
        rt.handle().clone(),
        engine.clone(),
        stack.project.clone(),
        options.cancel.clone(),
    );
    let stopping = repo.progress().task("stop rushdb", Unit::Items, None);
    pause
        .stop(&stack.rushdb, options.stack.stop_timeout)
        .context("stopping RushDB")?;
    drop(stopping);
    let mut restored = Vec::new();
    let volumes = volume_parts(&snap, &stack)?;
    let owned_by = |c: &ContainerInfo| -> Vec<(&Part, &StackVolume)> {
        volumes
            .iter()
            .filter(|(_, v)| v.owner.id == c.id)
            .copied()
            .collect()
    };
    if let GraphStore::Bundled {
        container, edition, ..
    } = &stack.graph
    {
        let graph = part(&snap, PART_GRAPH);
        let graph_volumes = owned_by(container);
        if graph.is_some() || !graph_volumes.is_empty() {
            // `load` needs the database stopped whatever the edition, and so does a volume.
            // Enterprise too stops the whole container here rather than `STOP DATABASE`: a
            // restore is downtime anyway, it needs no Neo4j credentials, and the one path
            // serves the volumes as well.
            let stopping = repo.progress().task("stop neo4j", Unit::Items, None);
            pause
                .stop(container, options.stack.stop_timeout)
                .context("stopping Neo4j")?;
            drop(stopping);
            if let Some(graph) = graph {
                load_graph(
                    &rt,
                    &engine,
                    repo,
                    &index,
                    graph,
                    container,
                    *edition,
                    &options.stack.neo4j_database,
                )
                .with_context(|| format!("loading {PART_GRAPH}"))?;
                restored.push(PART_GRAPH.to_string());
            }
            for (p, v) in graph_volumes {
                restore_volume(&rt, &engine, repo, &index, p, v)?;
                restored.push(p.name.clone());
            }
            pause.start(container).context("starting Neo4j")?;
        }
    }
    match &stack.sql {
        SqlStore::Postgres { container, target } => {
            if let Some(sql) = part(&snap, PART_POSTGRES) {
                load_postgres(&rt, &engine, repo, &index, sql, container, target)?;
                restored.push(PART_POSTGRES.to_string());
            }
        }
        SqlStore::Sqlite { path, .. } => {
            if let Some(db) = part(&snap, PART_SQLITE) {
                put_sqlite(
                    &rt,
                    &engine,
                    repo,
                    &index,
                    (&snap, db),
                    &stack.rushdb,
                    &stack.rushdb,
                    path,
                )?;
                restored.push(PART_SQLITE.to_string());
            }
        }
    }
    for (p, v) in owned_by(&stack.rushdb) {
        restore_volume(&rt, &engine, repo, &index, p, v)?;
        restored.push(p.name.clone());
    }
    let starting = repo.progress().task("start rushdb", Unit::Items, None);
    pause.start(&stack.rushdb).context("starting RushDB")?;
    drop(starting);
    let downtime_ms = pause.elapsed_ms();
    Ok(StackRestoreReport {
        snapshot: id.to_hex(),
        project: stack.project.clone(),
        restored,
        downtime_ms,
        warnings,
    })
}

/// Drops and recreates the database, then feeds the dump to `psql` in `container`.
pub(super) fn load_postgres(
    rt: &tokio::runtime::Runtime,
    engine: &Engine,
    repo: &Repository,
    index: &Index,
    sql: &Part,
    container: &ContainerInfo,
    target: &PgTarget,
) -> Result<()> {
    let (sink, rx) = byte_sink();
    let drop_create = rt.block_on(engine.exec_from_stream(
        container,
        target.recreate_command(),
        target.env(),
        None,
    ));
    drop_create.map_err(|e| match ExitError::find(&e) {
        Some(failed) => anyhow!("recreating the database failed: {}", failed.tail),
        None => e.context("recreating the database"),
    })?;
    let task = {
        let (engine, c, cmd, env) = (
            engine.clone(),
            container.clone(),
            target.restore_command(),
            target.env(),
        );
        rt.spawn(async move { engine.exec_from_stream(&c, cmd, env, Some(rx)).await })
    };
    let fed = feed_part(repo, index, sql, sink);
    let loaded = rt.block_on(task).map_err(|e| anyhow!("{e}"))?;
    // psql's exit is reported after a failure to feed it, as it always was.
    let loaded = match loaded {
        Err(e) if ExitError::find(&e).is_none() => return Err(e),
        loaded => loaded,
    };
    fed.with_context(|| format!("restoring {PART_POSTGRES}"))?;
    loaded.map_err(|e| match ExitError::find(&e) {
        Some(failed) => anyhow!(
            "psql failed restoring {PART_POSTGRES} (status {}): {}",
            match failed.status {
                ExitStatusKind::Code(code) => code.to_string(),
                other => other.to_string(),
            },
            failed.tail
        ),
        None => e,
    })?;
    Ok(())
}

/// Puts the SQLite file (and its WAL, and an empty `-shm`) at `path` in `rushdb`, owned as
/// the file at `path` in `owner_of` is (the same container, or for a drill the stack's).
#[allow(clippy::too_many_arguments)]
pub(super) fn put_sqlite(
    rt: &tokio::runtime::Runtime,
    engine: &Engine,
    repo: &Repository,
    index: &Index,
    (snap, db): (&Snapshot, &Part),
    rushdb: &ContainerInfo,
    owner_of: &ContainerInfo,
    path: &str,
) -> Result<()> {
    let (dir, name) = path
        .rsplit_once('/')
        .ok_or_else(|| anyhow!("SQL_DB_PATH {path} is not absolute"))?;
    let tar = sqlite_tar(repo, index, snap, db, name, {
        // The file keeps the owner and mode it has now (RushDB may run as a
        // user that must be able to write it), without set-id bits; with no
        // regular file there, root's and private.
        rt.block_on(engine.file_owner(owner_of, path))?
            .map(|o| Owner {
                mode: o.mode & 0o777,
                ..o
            })
            .unwrap_or(Owner {
                mode: 0o600,
                ..Owner::ROOT_FILE
            })
    })?;
    rt.block_on(engine.upload_tar(rushdb, if dir.is_empty() { "/" } else { dir }, tar))?;
    Ok(())
}

/// Empties the volume, then unpacks the part's tar into it, in a one-off container that
/// mounts only that volume (its owner is stopped). As root, GNU and BusyBox tar both restore
/// the recorded owners and modes.
const VOLUME_UNTAR: &str = "find \"$1\" -mindepth 1 -delete && exec tar -xf - -C \"$1\"";

pub(super) fn restore_volume(
    rt: &tokio::runtime::Runtime,
    engine: &Engine,
    repo: &Repository,
    index: &Index,
    part: &Part,
    v: &StackVolume,
) -> Result<()> {
    let (sink, rx) = byte_sink();
    let task = {
        let (engine, v) = (engine.clone(), v.clone());
        rt.spawn(async move {
            engine
                .run_on_volume(&v.owner, &v.mount, false, VOLUME_UNTAR, None, Some(rx))
                .await
        })
    };
    let fed = feed_part(repo, index, part, sink);
    rt.block_on(task)
        .map_err(|e| anyhow!("{e}"))?
        .with_context(|| format!("restoring {} into volume {}", part.name, v.mount.source))?;
    fed.with_context(|| format!("restoring {}", part.name))
}

/// Writes a part into a sink, then closes it so the consumer sees the end.
fn feed_part(
    repo: &Repository,
    index: &Index,
    part: &Part,
    mut sink: crate::source::stream::ByteSink,
) -> Result<()> {
    write_part(repo, index, part, &mut sink)?;
    sink.close()?;
    Ok(())
}

#[allow(clippy::too_many_arguments)]
pub(super) fn load_graph(
    rt: &tokio::runtime::Runtime,
    engine: &Engine,
    repo: &Repository,
    index: &Index,
    graph: &Part,
    container: &ContainerInfo,
    edition: Edition,
    database: &str,
) -> Result<()> {
    let envelope = decode_envelope(&graph.envelope)
        .context("the dump envelope in the manifest is malformed")?;
    let (sink, rx) = byte_sink();
    let cmd = neo4j::load_command(database);
    let task = {
        let (engine, c, cmd) = (engine.clone(), container.clone(), cmd.clone());
        rt.spawn(async move {
            match edition {
                // Both load from a one-off container: the server is stopped (see above).
                Edition::Community | Edition::Enterprise => {
                    engine.run_oneoff(&c, cmd, vec![], None, Some(rx)).await
                }
            }
        })
    };
    let fed = (|| -> Result<()> {
        let mut dump = DumpWriter::new(sink, &envelope, DUMP_LEVEL)?;
        let task = repo
            .progress()
            .task(&graph.name, Unit::Bytes, Some(graph.stored.size));
        repo.restore_stream(index, &graph.stored, &graph.name, &mut dump, task.as_ref())?;
        dump.finish()?.close()?;
        Ok(())
    })();
    // A load that failed says why first; a feed cut short by it says less.
    rt.block_on(task).map_err(|e| anyhow!("{e}"))??;
    fed
}

/// The SQLite file, its WAL when the snapshot has one, and an empty `-shm`,
/// in one tar: a stale WAL or shared-memory file left beside the old file
/// would otherwise be replayed into the restored one. An empty WAL is a
/// valid "no WAL" to SQLite.
fn sqlite_tar(
    repo: &Repository,
    index: &Index,
    snap: &Snapshot,
    db: &Part,
    name: &str,
    owner: Owner,
) -> Result<bytes::Bytes> {
    let mut builder = TarBuilder::new(Vec::new());
    let mut add = |file: &str, part: Option<&Part>| -> Result<()> {
        let mut bytes = Vec::new();
        if let Some(p) = part {
            write_part(repo, index, p, &mut bytes)?;
        }
        builder.append_owned(file, bytes.len() as u64, &bytes[..], owner)?;
        Ok(())
    };
    add(name, Some(db))?;
    add(&format!("{name}-wal"), part(snap, PART_SQLITE_WAL))?;
    add(&format!("{name}-shm"), None)?;
    Ok(bytes::Bytes::from(builder.finish()?))
}
