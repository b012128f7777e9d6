//! `rbk snapshot` of a running RushDB stack: pause writes, dump Neo4j and SQL in parallel into the repository, resume.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use serde::{Deserialize, Serialize};

use super::stream::{store_stream, unrecognised_dump};
use super::volume_mode;
use super::{INTERRUPTED_AFTER_PAUSE, INTERRUPTED_IN_PAUSE, new_snapshot};
use crate::cancel::{Cancel, is_cancelled};
use crate::progress::Unit;
use crate::source::docker::{ContainerInfo, Engine};
use crate::source::kind::graph::Server;
use crate::source::kind::graph_volume::{DATA_DIR, Neo4jVolume};
use crate::source::kind::{Role, StoreKind};
use crate::source::neo4j::{Database, Edition};
use crate::stack::discover::{GraphStore, KEY_VAR, Stack, StackConfig, discover};
use crate::stack::kinds::{self, Kinds, with_role};
use crate::stack::names::{
    KEY_FINGERPRINT_CONTEXT, PART_GRAPH, PART_GRAPH_VOLUME, label, pause_ms, set_warnings,
};
use crate::stack::pause::Pause;
use crate::stack::phases::{Phases, dump_phase, phase};
use crate::stack::wait::{self, Probe};
use crate::store::manifest::{Part, Snapshot};
use crate::store::writer::SnapshotWriter;
use crate::store::{Id, Repository};

#[derive(Debug, Clone, Default)]
pub struct StackSnapshotOptions {
    pub stack: StackConfig,
    pub tags: Vec<String>,
    pub host: Option<String>,
    pub dry_run: bool,
    /// Also archive the stack's other named volumes (`StackVolume`), one part each.
    pub volumes: bool,
    /// How the graph is stored.
    pub graph_mode: GraphMode,
    /// Set by the CLI's SIGINT/SIGTERM handler: the pause starts the stack again, and the
    /// snapshot fails with `Cancelled` and commits nothing.
    pub cancel: Cancel,
}

/// How a stack snapshot stores a bundled Neo4j.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GraphMode {
    /// `neo4j-admin database dump`: loads into any later version.
    #[default]
    Dump,
    /// The data volume's store files, pre-copied while the stack runs (`volume_mode.rs`).
    Volume,
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

/// The plan of a snapshot of `stack` whose stores are `kinds` (volumes among them only with
/// `--volumes`).
pub fn plan_of(stack: &Stack, kinds: &Kinds, last_pause_ms: Option<u64>) -> StackPlan {
    let mut stops = vec![stack.rushdb.name.clone()];
    if let GraphStore::Bundled {
        container,
        edition: Edition::Community,
        ..
    } = &stack.graph
    {
        stops.push(container.name.clone());
    }
    let line = |role| {
        with_role(kinds, role)
            .map(|k| k.plan())
            .collect::<Vec<_>>()
            .join("; ")
    };
    let mut warnings = stack.warnings();
    if with_role(kinds, Role::Volume).next().is_some() {
        warnings.extend(stack.volumes_left_out.iter().cloned());
    }
    StackPlan {
        project: stack.project.clone(),
        rushdb: format!("{} ({})", stack.rushdb.name, stack.rushdb.image),
        graph: line(Role::Graph),
        sql: line(Role::Sql),
        stops,
        // The parts each store may write, its main part first (a SQLite log only when there is one).
        parts: kinds
            .iter()
            .filter_map(|k| k.parts().into_iter().next())
            .collect(),
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
    let mut kinds = kinds::of_stack(&engine, &stack, &options.stack, None);
    if !options.volumes {
        kinds.retain(|k| k.role() != Role::Volume);
    }
    // The graph in the mode asked for: its kind stays in the list (labels, plan), and in
    // volume mode its scan is kept apart, as it is stored in pieces rather than a stream.
    let graph_volume = graph_volume(&engine, &stack, options.graph_mode)?;
    let dropped = match options.graph_mode {
        GraphMode::Dump => PART_GRAPH_VOLUME,
        GraphMode::Volume => PART_GRAPH,
    };
    kinds.retain(|k| k.parts().first().map(String::as_str) != Some(dropped));
    let mut plan = plan_of(&stack, &kinds, last_pause_ms(repo));
    if let Some(volume) = &graph_volume
        && !plan.stops.contains(&volume.server.container.name)
    {
        // Enterprise too: volume mode stops the server.
        plan.stops.push(volume.server.container.name.clone());
    }
    if options.dry_run {
        return Ok(StackOutcome::Planned(plan));
    }
    // Everything that can fail without touching the stack fails here.
    let _lock = repo.lock(false, "snapshot (stack)")?;
    let index = Arc::new(repo.load_index()?);
    rt.block_on(engine.remove_leftovers(&stack.project))?;

    let mut labels = stack_labels(repo, &stack, &kinds);
    let writer = SnapshotWriter::new(repo, index);
    // Volume mode: the data volume read while the stack runs, so that the pause reads
    // only what changed since.
    let pre_copy = match &graph_volume {
        Some(volume) => {
            let pre = volume_mode::pre_copy(rt.handle(), volume, &writer)?;
            labels.push((label::PRECOPY_MS.into(), pre.ms.to_string()));
            after_pre_copy_for_tests()?;
            Some(pre)
        }
        None => None,
    };
    let mut pause = Pause::new(
        rt.handle().clone(),
        engine.clone(),
        stack.project.clone(),
        options.cancel.clone(),
    );
    let pause_start = crate::store::time::now_rfc3339();
    let phases = Phases::begin();
    // Stopping can take up to the stop timeout per container: show it is moving.
    let stopping = repo.progress().task("stop stack", Unit::Items, None);
    phases
        .time(phase::STOP_RUSHDB, || {
            pause.stop(&stack.rushdb, options.stack.stop_timeout)
        })
        .context("pausing writes")?;
    // Nothing writes any more, and Neo4j still answers queries: what a drill compares with.
    let counted = phases.time(phase::COUNT, || {
        super::counts::count_stores(&rt, &engine, &stack, &options.stack)
    });
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
        // Volume mode archives the store files of a stopped server, whatever the edition:
        // STOP DATABASE would leave `system` and the transaction logs being written.
        let stop_server = *edition == Edition::Community || graph_volume.is_some();
        match edition {
            _ if stop_server => {
                phases
                    .time(phase::STOP_NEO4J, || {
                        pause.stop(container, options.stack.stop_timeout)
                    })
                    .context(if graph_volume.is_some() {
                        "stopping Neo4j (volume mode archives the store files of a stopped server)"
                    } else {
                        "stopping Neo4j for the dump (Community edition cannot dump online)"
                    })?;
                // One the operator had stopped stays stopped (`Pause::stop` leaves it alone).
                graph_stop = container.running.then(|| container.clone());
            }
            // A server the operator stopped serves nothing: its database is dumped as it is.
            Edition::Enterprise if container.running => {
                let db = Database::new(container, &database, options.stack.neo4j_auth.clone());
                phases
                    .time(phase::STOP_DATABASE, || pause.stop_database(&db))
                    .context("stopping the Neo4j database for the dump (STOP DATABASE)")?;
                database_stop = Some(db);
            }
            Edition::Community | Edition::Enterprise => {}
        }
    }
    drop(stopping);

    if options.volumes {
        let names: Vec<&str> = stack.volumes.iter().map(|v| v.name.as_str()).collect();
        labels.push((label::VOLUMES.into(), names.join(",")));
    }
    // Whether Neo4j can be asked if it is ready without a healthcheck: it answered the
    // counts a moment ago, so its credentials work.
    let graph_counted = labels.iter().any(|(k, _)| k == label::NEO4J_COUNTS);
    let mut pause_warnings = Vec::new();
    let mut graph_restarted = false;
    // Starts again the Neo4j server (Community) or database (Enterprise) the pause stopped.
    let mut restart_graph = || -> Result<()> {
        if let Some(c) = &graph_stop {
            phases
                .time(phase::START_NEO4J, || pause.start(c))
                .context("starting Neo4j again")?;
        }
        if let Some(db) = &database_stop {
            phases
                .time(phase::START_DATABASE, || pause.start_database(db))
                .context("starting the Neo4j database again (START DATABASE)")?;
        }
        Ok(())
    };
    // The graph and the SQL in parallel, the volumes one after another beside them (they
    // are small beside the dumps, and each one-off container costs a start).
    let handle = rt.handle();
    let scanned = std::sync::Mutex::new(None);
    let groups: Result<Vec<(Role, Result<Stored>)>> = std::thread::scope(|scope| {
        let volume_mode = graph_volume.as_ref().zip(pre_copy.as_ref());
        let scanned = &scanned;
        let spawn = |role: Role| {
            let (kinds, writer, phases) = (&kinds, &writer, phases.clone());
            let stored = scope.spawn(move || {
                let began = Instant::now();
                if let (Role::Graph, Some((volume, pre))) = (role, volume_mode) {
                    let stored = volume_mode::paused_pass(handle, volume, writer, pre).map(
                        |(part, stats)| {
                            *lock(scanned) = Some(volume_mode::scan_label(pre, &stats));
                            (vec![part], Vec::new())
                        },
                    );
                    phases.record(phase::ARCHIVE_GRAPH, began);
                    return Some(stored);
                }
                let mut group = with_role(kinds, role).peekable();
                group.peek()?;
                let stored = store_kinds(handle, group, writer);
                phases.record(dump_phase(role), began);
                Some(stored)
            });
            (role, stored)
        };
        let graph = spawn(Role::Graph);
        let others = [Role::Sql, Role::Volume].map(spawn);
        let graph = (graph.0, join(graph.1));
        // The dump is over, and it succeeded: its stream ended with the one-off's exit, so
        // nothing holds the store any more. Neo4j serves again while the SQL is still being
        // dumped; nothing writes to it before RushDB starts, after every dump. (A dump that
        // failed may have left its one-off being removed: Neo4j then starts after the rest.)
        if matches!(graph.1, None | Some(Ok(_))) {
            restart_graph()?;
            graph_restarted = true;
        }
        let mut groups = vec![graph];
        groups.extend(others.map(|(role, stored)| (role, join(stored))));
        Ok(groups
            .into_iter()
            .filter_map(|(role, stored)| Some((role, stored?)))
            .collect())
    });
    let groups = groups?;
    let starting = repo.progress().task("start stack", Unit::Items, None);
    if !graph_restarted {
        restart_graph()?;
    }
    // RushDB connects to Neo4j as it starts; Compose would wait for Neo4j's healthcheck
    // (`depends_on: condition: service_healthy`), and so does this.
    if let Some(c) = &graph_stop {
        let db =
            graph_counted.then(|| Database::new(c, &database, options.stack.neo4j_auth.clone()));
        let waited = phases.time(phase::WAIT_NEO4J, || {
            graph_ready(&rt, &engine, c, db.as_ref(), &options.cancel)
        });
        if let Err(e) = waited {
            // A signal: the watcher is starting everything, and the start below says so.
            if !is_cancelled(&e) {
                pause_warnings.push(format!(
                    "{}; RushDB was started all the same",
                    e.root_cause()
                ));
            }
        }
    }
    phases
        .time(phase::START_RUSHDB, || pause.start(&stack.rushdb))
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
    let mut stream_warnings = Vec::new();
    let mut failures = Vec::new();
    for (role, stored) in groups {
        match stored {
            Ok((mut p, mut w)) => {
                parts.append(&mut p);
                stream_warnings.append(&mut w);
            }
            Err(e) => failures.push(format!("{}: {e:#}", role.failure())),
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
    labels.push(phases.label());
    labels.extend(lock(&scanned).take());
    let mut snapshot = new_snapshot(parts, &options.tags, options.host.clone(), None, labels);
    // Known only now, and in the plan's warnings rather than a log line, so that it reaches
    // `--json` and the exit code (done, with warnings); and in the manifest, for `rbk status`.
    plan.warnings.extend(counted.warnings);
    plan.warnings.extend(pause_warnings);
    plan.warnings.extend(stream_warnings);
    plan.warnings.extend(unrecognised_dump(&snapshot));
    set_warnings(&mut snapshot, &plan.warnings);
    delay_commit_for_tests(&options.cancel);
    // The last chance to stop: once the commit starts it completes, and the snapshot is saved.
    options
        .cancel
        .check()
        .map_err(|c| anyhow::Error::from(c).context(INTERRUPTED_AFTER_PAUSE))?;
    let (id, snapshot) = writer.commit(snapshot)?;
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

/// A poisoned lock only means a dump thread panicked, which its join reports.
fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// `RBK_TEST_AFTER_PRECOPY=CMD` runs `sh -c CMD` between the pre-copy and the pause, and
/// fails the snapshot if it fails. A test knob (documented in docs/ARCHITECTURE.md), so that
/// the Docker tests can change the store exactly there; unset, as in production, it costs
/// one lookup.
fn after_pre_copy_for_tests() -> Result<()> {
    let Ok(cmd) = std::env::var("RBK_TEST_AFTER_PRECOPY") else {
        return Ok(());
    };
    let status = crate::process::command("sh")
        .arg("-c")
        .arg(&cmd)
        .status()
        .context("running RBK_TEST_AFTER_PRECOPY")?;
    if !status.success() {
        bail!("RBK_TEST_AFTER_PRECOPY failed: {status}");
    }
    Ok(())
}

fn join<T>(h: std::thread::ScopedJoinHandle<'_, Option<Result<T>>>) -> Option<Result<T>> {
    h.join()
        .unwrap_or_else(|_| Some(Err(anyhow!("a dump thread panicked"))))
}

/// The bundled Neo4j's data volume when the graph is to be stored in volume mode; an error
/// if this stack cannot be (no bundled Neo4j, no volume at `/data`).
fn graph_volume(engine: &Engine, stack: &Stack, mode: GraphMode) -> Result<Option<Neo4jVolume>> {
    if mode == GraphMode::Dump {
        return Ok(None);
    }
    let GraphStore::Bundled {
        container,
        edition,
        version,
    } = &stack.graph
    else {
        return Err(crate::usage!(
            "--neo4j-mode volume needs the stack's own Neo4j container; this stack's graph is external"
        ));
    };
    let server = Server {
        container: (**container).clone(),
        edition: *edition,
        version: version.clone(),
    };
    let Some(volume) = Neo4jVolume::of(engine, &server) else {
        return Err(crate::usage!(
            "--neo4j-mode volume needs a volume mounted at {DATA_DIR} in {}; it has none",
            container.name
        ));
    };
    Ok(Some(volume))
}

/// How long RushDB's start waits for Neo4j's; past it, RushDB starts anyway (a stack left
/// down is worse than a RushDB that retries its connection), with a warning.
const NEO4J_READY_LIMIT: Duration = Duration::from_secs(120);

/// Waits until Neo4j, started again, is ready: healthy by its healthcheck, or without one
/// answering a query when `db` (credentials that worked in this pause) is given, or else
/// merely running.
fn graph_ready(
    rt: &tokio::runtime::Runtime,
    engine: &Engine,
    c: &ContainerInfo,
    db: Option<&Database>,
    cancel: &Cancel,
) -> Result<()> {
    wait::until_ready(rt, engine, c, cancel, NEO4J_READY_LIMIT, || match db {
        Some(db) => wait::probe(rt.block_on(db.counts(engine)).map(|_| true)),
        None => Probe::Ready,
    })
}

fn stack_labels(repo: &Repository, stack: &Stack, kinds: &Kinds) -> Vec<(String, String)> {
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
    l.extend(kinds.iter().flat_map(|k| k.labels()));
    l
}

/// A store's parts and the warnings its streams gave.
type Stored = (Vec<Part>, Vec<String>);

/// Stores the streams of each kind in turn.
fn store_kinds<'k>(
    rt: &tokio::runtime::Handle,
    kinds: impl Iterator<Item = &'k dyn StoreKind>,
    writer: &SnapshotWriter<'_>,
) -> Result<Stored> {
    let mut parts = Vec::new();
    let mut warnings = Vec::new();
    for kind in kinds {
        let (streams, mut w) = kind.streams(rt)?;
        warnings.append(&mut w);
        for stream in streams {
            parts.push(store_stream(rt, writer, stream)?);
        }
    }
    Ok((parts, warnings))
}
