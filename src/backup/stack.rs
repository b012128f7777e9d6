//! `rbk snapshot` of a running RushDB stack: pause writes, dump Neo4j and SQL in parallel into the repository, resume.

use std::sync::Arc;

use anyhow::{Context, Result, anyhow, bail};
use serde::Serialize;

use super::{INTERRUPTED_AFTER_PAUSE, INTERRUPTED_IN_PAUSE, new_snapshot, store_reader};
use crate::cancel::Cancel;
use crate::progress::Unit;
use crate::source::docker::Engine;
use crate::source::neo4j::{self, Database, Edition};
use crate::source::stream::{ByteSender, byte_stream};
use crate::stack::discover::{
    GraphStore, KEY_VAR, SqlStore, Stack, StackConfig, StackVolume, discover,
};
use crate::stack::names::{
    KEY_FINGERPRINT_CONTEXT, PART_GRAPH, PART_POSTGRES, PART_SQLITE, PART_SQLITE_WAL, label,
    pause_ms, volume_part,
};
use crate::stack::pause::Pause;
use crate::store::manifest::{Part, Snapshot};
use crate::store::writer::SnapshotWriter;
use crate::store::{Id, Repository};

/// Archives a volume's contents as a tar of `./` and everything under it (owners, modes,
/// empty directories), from inside a one-off container that mounts it read-only.
const VOLUME_TAR: &str = "cd \"$1\" && exec tar -cf - .";

#[derive(Debug, Clone, Default)]
pub struct StackSnapshotOptions {
    pub stack: StackConfig,
    pub tags: Vec<String>,
    pub host: Option<String>,
    pub dry_run: bool,
    /// Also archive the stack's other named volumes (`StackVolume`), one part each.
    pub volumes: bool,
    /// Set by the CLI's SIGINT/SIGTERM handler: the pause starts the stack again, and the
    /// snapshot fails with `Cancelled` and commits nothing.
    pub cancel: Cancel,
}

/// What a stack snapshot will do, printable before anything is touched.
#[derive(Debug, Clone, Serialize)]
pub struct StackPlan {
    pub project: String,
    pub rushdb: String,
    pub graph: String,
    pub sql: String,
    /// Containers stopped, in order.
    pub stops: Vec<String>,
    pub parts: Vec<String>,
    /// The previous stack snapshot's write pause, as an estimate.
    pub last_pause_ms: Option<u64>,
    pub warnings: Vec<String>,
}

pub enum StackOutcome {
    Planned(StackPlan),
    Saved {
        id: Id,
        snapshot: Snapshot,
        plan: StackPlan,
    },
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")
}

pub fn plan_of(stack: &Stack, last_pause_ms: Option<u64>, volumes: bool) -> StackPlan {
    let mut stops = vec![stack.rushdb.name.clone()];
    let mut parts = Vec::new();
    let graph = match &stack.graph {
        GraphStore::Bundled {
            container,
            edition,
            version,
        } => {
            if *edition == Edition::Community {
                stops.push(container.name.clone());
            }
            parts.push(PART_GRAPH.to_string());
            format!(
                "{} ({}, Neo4j {} {}; {})",
                container.name,
                container.image,
                version.as_deref().unwrap_or("?"),
                edition.name(),
                match edition {
                    Edition::Community => "stopped for an offline dump",
                    Edition::Enterprise if container.running =>
                        "the server keeps running; its database is stopped (STOP DATABASE) for the dump",
                    Edition::Enterprise => "not running: dumped as it is",
                }
            )
        }
        GraphStore::External { uri } => {
            format!("external Neo4j at {uri}: not dumped; pair with its own snapshot")
        }
    };
    let sql = match &stack.sql {
        SqlStore::Postgres { container, target } => {
            parts.push(PART_POSTGRES.to_string());
            format!(
                "{} ({}): pg_dump -U {} {}",
                container.name, container.image, target.user, target.database
            )
        }
        SqlStore::Sqlite { path, on_volume } => {
            parts.push(PART_SQLITE.to_string());
            format!(
                "SQLite {path} in {} ({})",
                stack.rushdb.name,
                if *on_volume {
                    "on a volume"
                } else {
                    "in the container layer"
                }
            )
        }
    };
    let mut warnings = stack.warnings();
    if volumes {
        parts.extend(stack.volumes.iter().map(|v| volume_part(&v.name)));
        warnings.extend(stack.volumes_left_out.iter().cloned());
    }
    StackPlan {
        project: stack.project.clone(),
        rushdb: format!("{} ({})", stack.rushdb.name, stack.rushdb.image),
        graph,
        sql,
        stops,
        parts,
        last_pause_ms,
        warnings,
    }
}

fn last_pause_ms(repo: &Repository) -> Option<u64> {
    let snapshots = repo.snapshots().ok()?;
    snapshots
        .iter()
        .rev()
        .find_map(|(_, s)| pause_ms(s.as_ref().ok()?))
}

pub fn snapshot_stack(repo: &Repository, options: &StackSnapshotOptions) -> Result<StackOutcome> {
    let rt = runtime()?;
    let engine = rt.block_on(Engine::connect())?;
    let stack = rt.block_on(discover(&engine, &options.stack))?;
    let plan = plan_of(&stack, last_pause_ms(repo), options.volumes);
    if options.dry_run {
        return Ok(StackOutcome::Planned(plan));
    }
    // Everything that can fail without touching the stack fails here.
    let _lock = repo.lock(false, "snapshot (stack)")?;
    let index = Arc::new(repo.load_index()?);
    rt.block_on(engine.remove_leftovers(&stack.project))?;

    let mut labels = stack_labels(repo, &stack);
    let writer = SnapshotWriter::new(repo, index);
    let mut pause = Pause::new(
        rt.handle().clone(),
        engine.clone(),
        stack.project.clone(),
        options.cancel.clone(),
    );
    let pause_start = crate::store::time::now_rfc3339();
    // Stopping can take up to the stop timeout per container: show it is moving.
    let stopping = repo.progress().task("stop stack", Unit::Items, None);
    pause
        .stop(&stack.rushdb, options.stack.stop_timeout)
        .context("pausing writes")?;
    // Nothing writes any more, and Neo4j still answers queries: what a drill compares with.
    let counted = super::counts::count_stores(&rt, &engine, &stack, &options.stack);
    labels.extend(counted.labels);
    labels.push((label::COUNTS_MS.into(), counted.ms.to_string()));

    let database = options.stack.neo4j_database.clone();
    // `neo4j-admin database dump` refuses a database in use, whatever the edition (Neo4j 5
    // operations manual, "Back up an offline database"). Community stops the whole server;
    // Enterprise keeps it running and stops only the database.
    let mut graph_stop = None;
    let mut database_stop = None;
    if let GraphStore::Bundled {
        container, edition, ..
    } = &stack.graph
    {
        match edition {
            Edition::Community => {
                pause.stop(container, options.stack.stop_timeout).context(
                    "stopping Neo4j for the dump (Community edition cannot dump online)",
                )?;
                // One the operator had stopped stays stopped (`Pause::stop` leaves it alone).
                graph_stop = container.running.then(|| container.clone());
            }
            // A server the operator stopped serves nothing: its database is dumped as it is.
            Edition::Enterprise if container.running => {
                let db = Database::new(container, &database, options.stack.neo4j_auth.clone());
                pause
                    .stop_database(&db)
                    .context("stopping the Neo4j database for the dump (STOP DATABASE)")?;
                database_stop = Some(db);
            }
            Edition::Enterprise => {}
        }
    }
    drop(stopping);

    let volumes: &[StackVolume] = if options.volumes { &stack.volumes } else { &[] };
    if options.volumes {
        let names: Vec<&str> = volumes.iter().map(|v| v.name.as_str()).collect();
        labels.push((label::VOLUMES.into(), names.join(",")));
    }
    let (graph, sql, archived) = std::thread::scope(|scope| {
        let graph = scope.spawn(|| dump_graph(&rt, &engine, &stack.graph, &database, &writer));
        let sql = scope.spawn(|| {
            let db = dump_sql(&rt, &engine, &stack, &writer)?;
            let wal = sqlite_wal(&rt, &engine, &stack, &writer)?;
            Ok::<_, anyhow::Error>((db, wal))
        });
        let archived = scope.spawn(|| archive_volumes(&rt, &engine, volumes, &writer));
        (join(graph), join(sql), join(archived))
    });
    // Neo4j first, then RushDB, which connects to it on start.
    let starting = repo.progress().task("start stack", Unit::Items, None);
    if let Some(c) = &graph_stop {
        pause.start(c).context("starting Neo4j again")?;
    }
    if let Some(db) = &database_stop {
        pause
            .start_database(db)
            .context("starting the Neo4j database again (START DATABASE)")?;
    }
    pause
        .start(&stack.rushdb)
        .context("starting RushDB again")?;
    let pause_ms = pause.elapsed_ms();
    // A signal during the pause: the stack runs again, and the dumps it cut short are its
    // doing, not failures to report.
    pause
        .check()
        .map_err(|c| anyhow::Error::from(c).context(INTERRUPTED_IN_PAUSE))?;
    drop(pause);
    drop(starting);

    let mut parts = Vec::new();
    let mut failures = Vec::new();
    match graph {
        Ok(p) => parts.extend(p),
        Err(e) => failures.push(format!("graph dump failed: {e:#}")),
    }
    match sql {
        Ok((db, wal)) => parts.extend(db.into_iter().chain(wal)),
        Err(e) => failures.push(format!("SQL dump failed: {e:#}")),
    }
    match archived {
        Ok(mut p) => parts.append(&mut p),
        Err(e) => failures.push(format!("volume archive failed: {e:#}")),
    }
    if !failures.is_empty() {
        bail!(
            "{} (nothing was saved; the stack is running again)",
            failures.join("\n")
        );
    }
    labels.push((label::PAUSE_START.into(), pause_start));
    labels.push((label::PAUSE_MS.into(), pause_ms.to_string()));
    let snapshot = new_snapshot(parts, &options.tags, options.host.clone(), None, labels);
    delay_commit_for_tests(&options.cancel);
    // The last chance to stop: once the commit starts it completes, and the snapshot is saved.
    options
        .cancel
        .check()
        .map_err(|c| anyhow::Error::from(c).context(INTERRUPTED_AFTER_PAUSE))?;
    let (id, snapshot) = writer.commit(snapshot)?;
    // Known only now, and in the plan's warnings rather than a log line, so that it reaches
    // `--json` and the exit code (done, with warnings).
    let mut plan = plan;
    plan.warnings.extend(counted.warnings);
    if snapshot
        .parts
        .iter()
        .any(|p| p.name == PART_GRAPH && p.codec != crate::parts::CODEC_NEO4J_DUMP)
    {
        plan.warnings.push(format!(
            "{PART_GRAPH}: the output of neo4j-admin was not recognised as a dump; stored as it is"
        ));
    }
    Ok(StackOutcome::Saved { id, snapshot, plan })
}

/// `RBK_TEST_DELAY_COMMIT_MS=N` waits N ms between the restart of the stack and the commit.
/// A test knob (documented in docs/ARCHITECTURE.md), so that the Docker tests can land a
/// signal in that window every time; unset, as in production, it costs one lookup.
/// A signal ends the wait, as it would end any real work there.
fn delay_commit_for_tests(cancel: &Cancel) {
    if let Some(ms) = std::env::var("RBK_TEST_DELAY_COMMIT_MS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    {
        tracing::debug!("RBK_TEST_DELAY_COMMIT_MS: waiting {ms} ms before the commit");
        let until = std::time::Instant::now() + std::time::Duration::from_millis(ms);
        while std::time::Instant::now() < until && cancel.check().is_ok() {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

fn join<T>(h: std::thread::ScopedJoinHandle<'_, Result<T>>) -> Result<T> {
    h.join().map_err(|_| anyhow!("a dump thread panicked"))?
}

fn stack_labels(repo: &Repository, stack: &Stack) -> Vec<(String, String)> {
    let mut l = vec![
        (label::KIND.into(), "stack".into()),
        (label::PROJECT.into(), stack.project.clone()),
        (label::RUSHDB_IMAGE.into(), stack.rushdb.image.clone()),
    ];
    if let Some(key) = stack.rushdb.env_var(KEY_VAR) {
        l.push((
            label::KEY_FINGERPRINT.into(),
            repo.fingerprint(KEY_FINGERPRINT_CONTEXT, key.as_bytes()),
        ));
    }
    match &stack.graph {
        GraphStore::Bundled {
            container,
            edition,
            version,
        } => {
            l.push((label::NEO4J_IMAGE.into(), container.image.clone()));
            l.push((label::NEO4J_EDITION.into(), edition.name().into()));
            if let Some(v) = version {
                l.push((label::NEO4J_VERSION.into(), v.clone()));
            }
        }
        GraphStore::External { uri } => l.push((label::NEO4J_EXTERNAL.into(), uri.clone())),
    }
    match &stack.sql {
        SqlStore::Postgres { container, .. } => {
            l.push((label::SQL_KIND.into(), "postgres".into()));
            l.push((label::SQL_IMAGE.into(), container.image.clone()));
        }
        SqlStore::Sqlite { path, .. } => {
            l.push((label::SQL_KIND.into(), "sqlite".into()));
            l.push((label::SQLITE_PATH.into(), path.clone()));
        }
    }
    l
}

/// Streams the graph dump into the writer. The producer runs on the
/// runtime; this thread consumes, so neither waits for a temporary file.
fn dump_graph(
    rt: &tokio::runtime::Runtime,
    engine: &Engine,
    graph: &GraphStore,
    database: &str,
    writer: &SnapshotWriter<'_>,
) -> Result<Option<Part>> {
    let GraphStore::Bundled { container, .. } = graph else {
        return Ok(None);
    };
    let cmd = neo4j::dump_command(database);
    let origin = format!("docker:{} {}", container.name, cmd.join(" "));
    // Both editions dump from a one-off container with Neo4j's volumes, as the database is
    // not in use either way. On Enterprise this rather than `exec` in the running server:
    // removing the one-off (on Ctrl-C or SIGTERM, see pause.rs) is what ends a dump that
    // still holds the database, and the engine has no call that kills an exec'd process.
    let (engine, container) = (engine.clone(), (**container).clone());
    let produce = |tx| async move {
        engine
            .run_oneoff(&container, cmd, vec![], Some(tx), None)
            .await
    };
    store_produced(rt, writer, (PART_GRAPH, origin, None, false), produce).map(Some)
}

/// Runs a producer on the runtime, which writes a part's stream into the sender it is given,
/// while this thread stores what it writes (neither waits for a temporary file). `part` is
/// the part's name, its origin, its size if known (for progress), and whether it is stored
/// as it is. The part is returned only when both the store and the producer succeeded.
fn store_produced<F, T>(
    rt: &tokio::runtime::Runtime,
    writer: &SnapshotWriter<'_>,
    (name, origin, size, raw): (&str, String, Option<u64>, bool),
    produce: impl FnOnce(ByteSender) -> F,
) -> Result<Part>
where
    F: Future<Output = Result<T>> + Send + 'static,
    T: Send + 'static,
{
    let (tx, stream) = byte_stream();
    let producer = rt.spawn(produce(tx));
    let stored = store_reader(writer, name, origin, stream, size, raw);
    let produced = rt
        .block_on(producer)
        .map_err(|e| anyhow!("the task producing {name} failed: {e}"))?;
    let part = stored.with_context(|| format!("part {name}"))?;
    produced.with_context(|| format!("part {name}"))?;
    Ok(part)
}

fn dump_sql(
    rt: &tokio::runtime::Runtime,
    engine: &Engine,
    stack: &Stack,
    writer: &SnapshotWriter<'_>,
) -> Result<Option<Part>> {
    let engine = engine.clone();
    // SQL is stored as it is: a plain dump deduplicates, and a SQLite file is not a Neo4j dump.
    match &stack.sql {
        SqlStore::Postgres { container, target } => {
            let cmd = target.dump_command();
            let origin = format!("docker:{} {}", container.name, cmd.join(" "));
            let (c, env) = (container.clone(), target.env());
            let produce =
                |tx| async move { engine.exec_to_stream(&c, cmd, env, tx).await.map(|_| ()) };
            store_produced(rt, writer, (PART_POSTGRES, origin, None, true), produce).map(Some)
        }
        SqlStore::Sqlite { path, .. } => {
            let origin = format!("docker:{}:{path}", stack.rushdb.name);
            // For progress only: the copy is read to its end whatever it says.
            let size = rt
                .block_on(engine.file_size(&stack.rushdb, path))
                .ok()
                .flatten();
            let (c, p) = (stack.rushdb.clone(), path.clone());
            let produce = |tx| async move { engine.download_file(&c, &p, tx).await };
            store_produced(rt, writer, (PART_SQLITE, origin, size, true), produce).map(Some)
        }
    }
}

/// The SQLite WAL, if RushDB left a non-empty one (it was killed, not
/// stopped): stored as its own part so that restore puts back the pair
/// SQLite recovers from. Read while RushDB is stopped, like the file.
fn sqlite_wal(
    rt: &tokio::runtime::Runtime,
    engine: &Engine,
    stack: &Stack,
    writer: &SnapshotWriter<'_>,
) -> Result<Option<Part>> {
    let SqlStore::Sqlite { path, .. } = &stack.sql else {
        return Ok(None);
    };
    let wal = format!("{path}-wal");
    let size = match rt.block_on(engine.file_size(&stack.rushdb, &wal))? {
        Some(size) if size > 0 => size,
        _ => return Ok(None),
    };
    let origin = format!("docker:{}:{wal}", stack.rushdb.name);
    let (engine, c) = (engine.clone(), stack.rushdb.clone());
    let produce = |tx| async move { engine.download_file(&c, &wal, tx).await };
    store_produced(
        rt,
        writer,
        (PART_SQLITE_WAL, origin, Some(size), true),
        produce,
    )
    .map(Some)
}

/// Archives each volume in turn (they are small beside the dumps, and each one-off container
/// costs a start), each as its own part, stored as it comes: a tar deduplicates.
fn archive_volumes(
    rt: &tokio::runtime::Runtime,
    engine: &Engine,
    volumes: &[StackVolume],
    writer: &SnapshotWriter<'_>,
) -> Result<Vec<Part>> {
    let mut parts = Vec::new();
    for v in volumes {
        let name = volume_part(&v.name);
        let origin = format!(
            "docker:volume {} ({}:{})",
            v.mount.source, v.owner.name, v.mount.target
        );
        let (engine, v) = (engine.clone(), v.clone());
        let produce = |tx| async move {
            engine
                .run_on_volume(&v.owner, &v.mount, true, VOLUME_TAR, Some(tx), None)
                .await
        };
        let part = store_produced(rt, writer, (&name, origin, None, true), produce)?;
        parts.push(part);
    }
    Ok(parts)
}
