//! `rbk snapshot` of a running RushDB stack: pause writes, dump Neo4j and SQL in parallel into the repository, resume.

use std::sync::Arc;

use anyhow::{Context, Result, anyhow, bail};
use serde::Serialize;

use super::{new_snapshot, store_reader};
use crate::pause::Pause;
use crate::source::docker::{ContainerInfo, Engine};
use crate::source::neo4j::{self, Edition};
use crate::source::stack::{GraphStore, KEY_VAR, SqlStore, Stack, StackConfig, discover};
use crate::source::stream::byte_stream;
use crate::store::manifest::{Part, Snapshot};
use crate::store::writer::SnapshotWriter;
use crate::store::{Id, Repository};

/// Part names, as `restore --to DIR` writes them.
pub const PART_GRAPH: &str = "neo4j.dump";
pub const PART_POSTGRES: &str = "metadata.sql";
pub const PART_SQLITE: &str = "rushdb.db";

/// Manifest labels the stack layer writes (and `restore` reads).
pub mod label {
    pub const KIND: &str = "rbk.kind";
    pub const PROJECT: &str = "compose.project";
    pub const PAUSE_MS: &str = "pause.ms";
    pub const PAUSE_START: &str = "pause.start";
    pub const RUSHDB_IMAGE: &str = "rushdb.image";
    pub const KEY_FINGERPRINT: &str = "rushdb.key_fingerprint";
    pub const NEO4J_IMAGE: &str = "neo4j.image";
    pub const NEO4J_VERSION: &str = "neo4j.version";
    pub const NEO4J_EDITION: &str = "neo4j.edition";
    pub const NEO4J_EXTERNAL: &str = "neo4j.external_uri";
    pub const SQL_KIND: &str = "sql.kind";
    pub const SQL_IMAGE: &str = "sql.image";
    pub const SQLITE_PATH: &str = "sqlite.path";
}

/// The context under which the key's fingerprint is computed.
pub const KEY_FINGERPRINT_CONTEXT: &str = "rushdb-aes-256-encryption-key";

#[derive(Debug, Clone, Default)]
pub struct StackSnapshotOptions {
    pub stack: StackConfig,
    pub tags: Vec<String>,
    pub host: Option<String>,
    pub dry_run: bool,
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

pub fn plan_of(stack: &Stack, last_pause_ms: Option<u64>) -> StackPlan {
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
                if *edition == Edition::Community {
                    "stopped for an offline dump"
                } else {
                    "online dump"
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
    StackPlan {
        project: stack.project.clone(),
        rushdb: format!("{} ({})", stack.rushdb.name, stack.rushdb.image),
        graph,
        sql,
        stops,
        parts,
        last_pause_ms,
        warnings: stack.warnings(),
    }
}

/// The write-pause window a stack snapshot recorded.
pub fn pause_ms(s: &Snapshot) -> Option<u64> {
    s.labels
        .iter()
        .find(|(k, _)| k == label::PAUSE_MS)?
        .1
        .parse()
        .ok()
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
    let plan = plan_of(&stack, last_pause_ms(repo));
    if options.dry_run {
        return Ok(StackOutcome::Planned(plan));
    }
    // Everything that can fail without touching the stack fails here.
    let _lock = repo.lock(false, "snapshot (stack)")?;
    let index = Arc::new(repo.load_index()?);
    rt.block_on(engine.remove_leftovers())?;

    let mut labels = stack_labels(repo, &stack);
    let writer = SnapshotWriter::new(repo, index);
    let mut pause = Pause::new(rt.handle().clone(), engine.clone());
    let pause_start = crate::store::time::now_rfc3339();
    pause
        .stop(&stack.rushdb, options.stack.stop_timeout)
        .context("pausing writes")?;

    let mut graph_stop = None;
    if let GraphStore::Bundled {
        container,
        edition: Edition::Community,
        ..
    } = &stack.graph
    {
        pause
            .stop(container, options.stack.stop_timeout)
            .context("stopping Neo4j for the dump (Community edition cannot dump online)")?;
        graph_stop = Some(container.clone());
    }

    let database = options.stack.neo4j_database.clone();
    let (graph, sql) = std::thread::scope(|scope| {
        let graph = scope.spawn(|| dump_graph(&rt, &engine, &stack.graph, &database, &writer));
        let sql = scope.spawn(|| dump_sql(&rt, &engine, &stack, &writer));
        (join(graph), join(sql))
    });
    // Neo4j first, then RushDB, which connects to it on start.
    if let Some(c) = &graph_stop {
        pause.start(c).context("starting Neo4j again")?;
    }
    pause
        .start(&stack.rushdb)
        .context("starting RushDB again")?;
    let pause_ms = pause.elapsed_ms();
    drop(pause);

    let mut parts = Vec::new();
    let mut failures = Vec::new();
    for (name, result) in [("graph", graph), ("SQL", sql)] {
        match result {
            Ok(Some(p)) => parts.push(p),
            Ok(None) => {}
            Err(e) => failures.push(format!("{name} dump failed: {e:#}")),
        }
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
    let (id, snapshot) = writer.commit(snapshot)?;
    Ok(StackOutcome::Saved { id, snapshot, plan })
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
    let GraphStore::Bundled {
        container, edition, ..
    } = graph
    else {
        return Ok(None);
    };
    let (tx, stream) = byte_stream();
    let cmd = neo4j::dump_command(database);
    let origin = format!("docker:{} {}", container.name, cmd.join(" "));
    let producer = {
        let engine = engine.clone();
        let container: ContainerInfo = (**container).clone();
        let edition = *edition;
        rt.spawn(async move {
            match edition {
                Edition::Community => {
                    engine
                        .run_oneoff(&container, cmd, vec![], Some(tx), None)
                        .await
                }
                Edition::Enterprise => engine.exec_to_stream(&container, cmd, vec![], tx).await,
            }
        })
    };
    let stored = store_reader(writer, PART_GRAPH, origin, stream, false);
    let produced = rt
        .block_on(producer)
        .map_err(|e| anyhow!("the dump task failed: {e}"))?;
    let part = stored.with_context(|| format!("part {PART_GRAPH}"))?;
    produced.with_context(|| format!("part {PART_GRAPH}"))?;
    if part.codec != crate::parts::CODEC_NEO4J_DUMP {
        tracing::warn!(
            "{PART_GRAPH}: the output of neo4j-admin was not recognised as a dump; stored as it is"
        );
    }
    Ok(Some(part))
}

fn dump_sql(
    rt: &tokio::runtime::Runtime,
    engine: &Engine,
    stack: &Stack,
    writer: &SnapshotWriter<'_>,
) -> Result<Option<Part>> {
    let (tx, stream) = byte_stream();
    let engine = engine.clone();
    let (name, origin, producer) = match &stack.sql {
        SqlStore::Postgres { container, target } => {
            let cmd = target.dump_command();
            let origin = format!("docker:{} {}", container.name, cmd.join(" "));
            let (c, env) = (container.clone(), target.env());
            (
                PART_POSTGRES,
                origin,
                rt.spawn(async move { engine.exec_to_stream(&c, cmd, env, tx).await.map(|_| ()) }),
            )
        }
        SqlStore::Sqlite { path, .. } => {
            let origin = format!("docker:{}:{path}", stack.rushdb.name);
            let (c, p) = (stack.rushdb.clone(), path.clone());
            (
                PART_SQLITE,
                origin,
                rt.spawn(async move { engine.download_file(&c, &p, tx).await }),
            )
        }
    };
    // SQL is stored as it is: a plain dump deduplicates, and a SQLite file is not a Neo4j dump.
    let stored = store_reader(writer, name, origin, stream, true);
    let produced = rt
        .block_on(producer)
        .map_err(|e| anyhow!("the dump task failed: {e}"))?;
    let part = stored.with_context(|| format!("part {name}"))?;
    produced.with_context(|| format!("part {name}"))?;
    Ok(Some(part))
}
