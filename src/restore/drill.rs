//! `rbk verify --restore-test`: a snapshot restored into a throwaway copy of the stack, started, and checked (store consistency, counts against the manifest, RushDB's health), then torn down; the production stack is only looked at.
//!
//! The drill is a restore whose target is built for it: `world` creates containers from the
//! images the snapshot recorded, with the production services' settings (the encryption key
//! comes from the running rushdb's environment, never from the repository), fresh volumes
//! and a private network. Each check is reported passed, failed or skipped with figures; a
//! failed check means the backup would not give back what was taken (exit 3), while an
//! error (the engine failing, a signal) means the drill could not run (exit 1, 130).

mod world;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde::Serialize;

use super::feed::SnapshotFeed;
use super::stack::unclaimed;
use crate::cancel::{Cancel, is_cancelled};
use crate::source::docker::{ContainerInfo, Drill, Engine, is_engine_error};
use crate::source::kind::{PartFeed, Role, StoreKind};
use crate::source::neo4j::Database;
use crate::source::postgres::{PgTarget, parse_row_counts};
use crate::source::rushdb;
use crate::stack::counts::{graph_counts, row_differences, table_rows};
use crate::stack::discover::{
    GraphStore, KEY_VAR, SqlStore, Stack, StackConfig, StackVolume, discover,
};
use crate::stack::kinds::{self, Kinds};
use crate::stack::names::{
    KEY_FINGERPRINT_CONTEXT, PART_GRAPH, PART_GRAPH_VOLUME, PART_POSTGRES, PART_SQLITE, label,
};
use crate::stack::stale_drills::{drill_id, remove_stale_drills};
use crate::stack::wait::{self, Probe};
use crate::store::manifest::{Part, Snapshot};
use crate::store::verification::{Check, Verification};
use crate::store::{Id, Repository};
use crate::verify::record::KIND_RESTORE_TEST;
use world::{Copy, TeardownGuard, World};

#[derive(Debug, Clone)]
pub struct DrillOptions {
    pub stack: StackConfig,
    /// Set by the CLI's SIGINT/SIGTERM handler: the drill is torn down at once and the
    /// command fails with `Cancelled`.
    pub cancel: Cancel,
    /// How long each service may take to be ready.
    pub timeout: Duration,
}

/// How one check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckStatus {
    Passed,
    Failed,
    /// Not run: nothing to compare with, or a check before it failed.
    Skipped,
}

#[derive(Debug, Clone, Serialize)]
pub struct DrillCheck {
    pub name: String,
    pub status: CheckStatus,
    /// What was found, with figures.
    pub detail: String,
    pub ms: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct DrillReport {
    pub snapshot: String,
    pub snapshot_time: String,
    pub project: String,
    pub drill: String,
    pub passed: bool,
    pub checks: Vec<DrillCheck>,
    /// The image each throwaway container ran, by service.
    pub images: BTreeMap<String, String>,
    pub duration_ms: u64,
    /// What the teardown removed.
    pub removed: Removed,
    pub warnings: Vec<String>,
    /// The verification record written to the repository (`rbk snapshots` shows it).
    pub record: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Removed {
    pub containers: usize,
    pub volumes: usize,
    pub networks: usize,
}

/// The checks in the order they run; a drill that stops early marks the rest skipped.
const CHECKS: [&str; 9] = [
    "encryption key",
    "neo4j load",
    "neo4j consistency",
    "sql load",
    "volumes",
    "neo4j start",
    "graph counts",
    "sql rows",
    "rushdb health",
];

/// Restores snapshot `wanted` into a throwaway stack beside the production one and checks it.
pub fn restore_test(
    repo: &Repository,
    wanted: &str,
    options: &DrillOptions,
) -> Result<DrillReport> {
    let began = Instant::now();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let engine = rt.block_on(Engine::connect())?;
    let started_at = crate::store::time::now_rfc3339();
    let lock = repo.read_lock("verify --restore-test")?;
    let (id, snap) = repo.find_snapshot(wanted)?;
    let index = repo.load_index()?;
    let stack = rt.block_on(discover(&engine, &options.stack))?;
    preflight(
        &id,
        &snap,
        &stack,
        &kinds::of_stack(&engine, &stack, &options.stack, None),
    )?;
    let mut warnings = rt.block_on(remove_stale_drills(&engine, &stack.project))?;

    let drill = Drill::new(
        &drill_id(&id.to_hex()[..12], std::process::id()),
        &stack.project,
    )?;
    let mut guard = TeardownGuard::new(
        rt.handle().clone(),
        engine.clone(),
        drill.clone(),
        options.cancel.clone(),
    );
    let copies = copies(&stack, &snap);
    let world = rt.block_on(world::build(&engine, &drill, &copies));
    let mut checks = Vec::new();
    let ran = match &world {
        Ok(world) => {
            match drill_stack(&stack, world) {
                Ok(copy) => {
                    let drilled = Drilled {
                        rt: &rt,
                        engine: &engine,
                        repo,
                        feed: SnapshotFeed {
                            repo,
                            index: &index,
                            snap: &snap,
                        },
                        snap: &snap,
                        stack: &stack,
                        world,
                        // A restored SQLite file gets the owner and mode of the production
                        // one: the drill's fresh volume has no file to take them from.
                        kinds: kinds::of_stack(&engine, &copy, &options.stack, Some(&stack.rushdb)),
                        options,
                    };
                    drilled.run(&mut checks)
                }
                Err(e) => Err(e),
            }
        }
        Err(_) => Ok(()),
    };
    let removed = guard.finish();
    // A signal first: whatever failed after it is its doing.
    options.cancel.check()?;
    let world = world?;
    ran?;
    let removed = removed?;
    for name in CHECKS {
        if !checks.iter().any(|c: &DrillCheck| c.name == name) {
            checks.push(DrillCheck {
                name: name.into(),
                status: CheckStatus::Skipped,
                detail: "not run: an earlier check failed".into(),
                ms: 0,
            });
        }
    }
    checks.sort_by_key(|c| CHECKS.iter().position(|n| *n == c.name));
    warnings.extend(world.warnings);
    let passed = !checks.iter().any(|c| c.status == CheckStatus::Failed);
    // Ran to its end, passed or found the backup bad: that is what is recorded (a drill
    // that could not run returned above). A record that cannot be written is a warning.
    let record = Verification::new(
        id,
        KIND_RESTORE_TEST,
        started_at,
        began.elapsed(),
        checks
            .iter()
            .map(|c| Check {
                name: c.name.clone(),
                passed: c.status != CheckStatus::Failed,
                detail: match c.status {
                    CheckStatus::Skipped => format!("skipped: {}", c.detail),
                    _ => c.detail.clone(),
                },
            })
            .collect(),
    );
    let recorded = match lock {
        None => {
            warnings.push(
                "the drill was not recorded in the repository: it was read without a lock (--no-lock, or a read-only filesystem), and rbk writes nothing without one"
                    .into(),
            );
            None
        }
        Some(_) => match repo.save_verification(&record) {
            Ok(id) => Some(id.to_hex()),
            Err(e) => {
                warnings.push(format!(
                    "the drill was not recorded in the repository: {e:#}"
                ));
                None
            }
        },
    };
    Ok(DrillReport {
        record: recorded,
        snapshot: id.to_hex(),
        snapshot_time: snap.time.clone(),
        project: stack.project.clone(),
        drill: drill.id().to_string(),
        passed,
        checks,
        images: world.images.into_iter().collect(),
        duration_ms: millis(began.elapsed()),
        removed: Removed {
            containers: removed.containers,
            volumes: removed.volumes,
            networks: removed.networks,
        },
        warnings,
    })
}

/// What must hold before anything is created: the drill can load this snapshot into a copy
/// of this stack.
fn preflight(id: &Id, snap: &Snapshot, stack: &Stack, kinds: &Kinds) -> Result<()> {
    let has = |name: &str| snap.parts.iter().any(|p| p.name == name);
    if !has(PART_GRAPH) && !has(PART_GRAPH_VOLUME) && !has(PART_POSTGRES) && !has(PART_SQLITE) {
        bail!(
            "snapshot {} holds no stack parts ({PART_GRAPH}, {PART_GRAPH_VOLUME}, {PART_POSTGRES} or {PART_SQLITE}): there is nothing to restore-test",
            id.short()
        );
    }
    let names: Vec<String> = snap.parts.iter().map(|p| p.name.clone()).collect();
    unclaimed(&names, kinds, stack)
}

/// The drill's copy of the stack as a `Stack`: the same stores, in the drill's containers,
/// each volume at the place its service mounts it.
fn drill_stack(stack: &Stack, world: &World) -> Result<Stack> {
    let graph = match (&stack.graph, &world.neo4j) {
        (
            GraphStore::Bundled {
                edition, version, ..
            },
            Some(neo4j),
        ) => GraphStore::Bundled {
            container: Box::new(neo4j.clone()),
            edition: *edition,
            version: crate::source::neo4j::version_of(neo4j).or_else(|| version.clone()),
        },
        (graph, _) => graph.clone(),
    };
    let sql = match (&stack.sql, &world.postgres) {
        (SqlStore::Postgres { target, .. }, Some(pg)) => SqlStore::Postgres {
            container: Box::new(pg.clone()),
            target: target.clone(),
        },
        (sql, _) => sql.clone(),
    };
    let stack_neo4j = match &stack.graph {
        GraphStore::Bundled { container, .. } => Some(container.id.as_str()),
        GraphStore::External { .. } => None,
    };
    let mut volumes = Vec::new();
    for v in &stack.volumes {
        let owner = if Some(v.owner.id.as_str()) == stack_neo4j {
            world.neo4j.as_ref()
        } else {
            Some(&world.rushdb)
        };
        let Some((owner, mount)) = owner.and_then(|c| {
            let m = c.mounts.iter().find(|m| m.target == v.mount.target)?;
            Some((c, m))
        }) else {
            bail!(
                "the drill has no volume at {} for {}",
                v.mount.target,
                v.name
            );
        };
        volumes.push(StackVolume {
            name: v.name.clone(),
            owner: Box::new(owner.clone()),
            mount: mount.clone(),
        });
    }
    Ok(Stack {
        project: stack.project.clone(),
        rushdb: world.rushdb.clone(),
        graph,
        sql,
        volumes,
        volumes_left_out: Vec::new(),
    })
}

/// The production containers the drill copies, each with the image the snapshot recorded.
fn copies<'a>(stack: &'a Stack, snap: &'a Snapshot) -> Vec<Copy<'a>> {
    let recorded = |key: &str| {
        snap.labels
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    };
    let mut out = Vec::new();
    if let GraphStore::Bundled { container, .. } = &stack.graph {
        out.push(Copy {
            role: "neo4j",
            from: container,
            recorded_image: recorded(label::NEO4J_IMAGE),
        });
    }
    if let SqlStore::Postgres { container, .. } = &stack.sql {
        out.push(Copy {
            role: "postgres",
            from: container,
            recorded_image: recorded(label::SQL_IMAGE),
        });
    }
    out.push(Copy {
        role: "rushdb",
        from: &stack.rushdb,
        recorded_image: recorded(label::RUSHDB_IMAGE),
    });
    out
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// One drill's context, for its steps.
struct Drilled<'a> {
    rt: &'a tokio::runtime::Runtime,
    engine: &'a Engine,
    repo: &'a Repository,
    feed: SnapshotFeed<'a>,
    snap: &'a Snapshot,
    stack: &'a Stack,
    world: &'a World,
    /// The stores of the drill's copy of the stack: restore's kinds aimed at its containers.
    kinds: Kinds,
    options: &'a DrillOptions,
}

/// One step of the drill: its check, and whether the drill goes on.
type Step<'a> = fn(&Drilled<'a>) -> Result<(DrillCheck, Next)>;

/// Whether the drill goes on after a step.
enum Next {
    Continue,
    Stop,
}

impl Drilled<'_> {
    fn part(&self, name: &str) -> Option<&Part> {
        self.snap.parts.iter().find(|p| p.name == name)
    }

    fn cancel(&self) -> &Cancel {
        &self.options.cancel
    }

    /// Runs the checks in order; `Err` only when the drill could not run (the engine, a
    /// signal), never for what a check found.
    fn run(&self, checks: &mut Vec<DrillCheck>) -> Result<()> {
        checks.push(self.key_check());
        let steps: [Step<'_>; 8] = [
            Self::load_graph,
            Self::check_graph,
            Self::load_sql,
            Self::load_volumes,
            Self::start_graph,
            Self::graph_counts,
            Self::sql_rows,
            Self::rushdb_health,
        ];
        for step in steps {
            self.cancel().check()?;
            let (check, next) = step(self)?;
            checks.push(check);
            if matches!(next, Next::Stop) {
                break;
            }
        }
        Ok(())
    }

    /// The production key against the one the snapshot was taken with: restored tokens and
    /// secrets are readable only with that one.
    fn key_check(&self) -> DrillCheck {
        let saved = self
            .snap
            .labels
            .iter()
            .find(|(k, _)| k == label::KEY_FINGERPRINT)
            .map(|(_, v)| v.as_str());
        let running = self.stack.rushdb.env_var(KEY_VAR);
        let (status, detail) = match (saved, running) {
            (Some(saved), Some(running))
                if self
                    .repo
                    .fingerprint(KEY_FINGERPRINT_CONTEXT, running.as_bytes())
                    == saved =>
            {
                (
                    CheckStatus::Passed,
                    format!(
                        "{KEY_VAR} of {} is the one the snapshot was taken with",
                        self.stack.rushdb.name
                    ),
                )
            }
            (Some(_), Some(_)) => (
                CheckStatus::Failed,
                format!(
                    "{KEY_VAR} of {} is not the one in use when the snapshot was taken: a restore would leave every API token and secret unreadable",
                    self.stack.rushdb.name
                ),
            ),
            (Some(_), None) => (
                CheckStatus::Skipped,
                format!("{KEY_VAR} is not set on {}", self.stack.rushdb.name),
            ),
            (None, _) => (
                CheckStatus::Skipped,
                "the snapshot recorded no key fingerprint".into(),
            ),
        };
        DrillCheck {
            name: "encryption key".into(),
            status,
            detail,
            ms: 0,
        }
    }

    fn neo4j(&self) -> Option<&ContainerInfo> {
        self.world.neo4j.as_ref()
    }

    /// The drill's store of a role that has something to restore from the snapshot.
    fn kind(&self, role: Role) -> Option<&dyn StoreKind> {
        self.kinds
            .iter()
            .map(|k| k.as_ref())
            .find(|k| k.role() == role && k.restores_from(&self.feed))
    }

    /// Checks what a restore checks before it loads, then loads, as a restore would.
    fn restore(&self, kind: &dyn StoreKind) -> Result<Vec<String>> {
        kind.check(&self.feed)?;
        kind.preflight(self.rt.handle(), &self.feed)?;
        kind.consume(self.rt.handle(), &self.feed)
    }

    fn load_graph(&self) -> Result<(DrillCheck, Next)> {
        let Some(graph) = self.kind(Role::Graph) else {
            return Ok(skipped("neo4j load", "the snapshot holds no Neo4j dump"));
        };
        timed("neo4j load", || {
            self.restore(graph)?;
            Ok(match self.feed.size(PART_GRAPH_VOLUME) {
                // Volume mode: the store files themselves.
                Some(bytes) => {
                    format!("{bytes} bytes of store files unpacked into the data volume")
                }
                None => format!(
                    "{} bytes of store files loaded by neo4j-admin database load",
                    self.feed.size(PART_GRAPH).unwrap_or(0)
                ),
            })
        })
    }

    fn check_graph(&self) -> Result<(DrillCheck, Next)> {
        let graph = self
            .part(PART_GRAPH)
            .or_else(|| self.part(PART_GRAPH_VOLUME));
        let (Some(_), Some(neo4j)) = (graph, self.neo4j()) else {
            return Ok(skipped(
                "neo4j consistency",
                "the snapshot holds no Neo4j dump",
            ));
        };
        let cmd: Vec<String> = [
            "neo4j-admin",
            "database",
            "check",
            &self.options.stack.neo4j_database,
        ]
        .map(str::to_string)
        .to_vec();
        timed("neo4j consistency", || {
            // Exit 1 with the inconsistencies on stderr is an `ExitError`, which fails the
            // check with them.
            let finished =
                self.rt.block_on(
                    self.engine
                        .run_oneoff(neo4j, cmd.clone(), vec![], None, None),
                )?;
            Ok(finished
                .stderr
                .trim()
                .lines()
                .last()
                .unwrap_or("neo4j-admin database check found no inconsistency")
                .to_string())
        })
    }

    fn pg(&self) -> Option<(&ContainerInfo, &PgTarget)> {
        match (&self.stack.sql, &self.world.postgres) {
            (SqlStore::Postgres { target, .. }, Some(pg)) => Some((pg, target)),
            _ => None,
        }
    }

    fn load_sql(&self) -> Result<(DrillCheck, Next)> {
        let Some(sql) = self.kind(Role::Sql) else {
            return Ok(skipped("sql load", "the snapshot holds no SQL metadata"));
        };
        if let Some((pg, target)) = self.pg() {
            // A fresh Postgres initialises its volume first: that is the engine's and the
            // image's doing, not the backup's, so a failure here means the drill could
            // not run.
            self.rt.block_on(self.engine.start(pg))?;
            wait::until_ready(
                self.rt,
                self.engine,
                pg,
                self.cancel(),
                self.options.timeout,
                || {
                    let ready = self.engine.exec_output(
                        pg,
                        ["pg_isready", "-h", "127.0.0.1", "-U", &target.user]
                            .map(str::to_string)
                            .to_vec(),
                        vec![],
                        None,
                        Duration::from_secs(10),
                    );
                    wait::probe(self.rt.block_on(ready).map(|_| true))
                },
            )
            .context("starting the drill's Postgres")?;
        }
        timed("sql load", || {
            let restored = self.restore(sql)?;
            let bytes: u64 = restored.iter().filter_map(|p| self.feed.size(p)).sum();
            Ok(match self.pg() {
                Some(_) => format!("{bytes} bytes of pg_dump loaded by psql into a fresh database"),
                None => format!("{bytes} bytes of SQLite file put back: {}", sql.plan()),
            })
        })
    }

    /// The snapshot's volume parts (`--volumes`), each unpacked into the drill's volume that
    /// its service mounts at the same place.
    fn load_volumes(&self) -> Result<(DrillCheck, Next)> {
        let volumes: Vec<&dyn StoreKind> = self
            .kinds
            .iter()
            .map(|k| k.as_ref())
            .filter(|k| k.role() == Role::Volume && k.restores_from(&self.feed))
            .collect();
        if volumes.is_empty() {
            return Ok(skipped("volumes", "the snapshot holds no volume parts"));
        }
        timed("volumes", || {
            let mut restored = Vec::new();
            for volume in volumes {
                for part in self.restore(volume)? {
                    restored.push(format!(
                        "{part} ({} bytes)",
                        self.feed.size(&part).unwrap_or(0)
                    ));
                }
            }
            Ok(format!(
                "unpacked into fresh volumes: {}",
                restored.join(", ")
            ))
        })
    }

    fn database(&self, neo4j: &ContainerInfo) -> Database {
        Database::new(
            neo4j,
            &self.options.stack.neo4j_database,
            self.options.stack.neo4j_auth.clone(),
        )
    }

    fn start_graph(&self) -> Result<(DrillCheck, Next)> {
        let Some(neo4j) = self.neo4j() else {
            return Ok(skipped("neo4j start", "the stack has no Neo4j container"));
        };
        let db = self.database(neo4j);
        timed("neo4j start", || {
            self.rt.block_on(self.engine.start(neo4j))?;
            wait::until_ready(
                self.rt,
                self.engine,
                neo4j,
                self.cancel(),
                self.options.timeout,
                || wait::probe(self.rt.block_on(db.counts(self.engine)).map(|_| true)),
            )?;
            Ok(format!("{} answered with the restored store", neo4j.name))
        })
    }

    fn graph_counts(&self) -> Result<(DrillCheck, Next)> {
        let Some(neo4j) = self.neo4j() else {
            return Ok(skipped("graph counts", "the stack has no Neo4j container"));
        };
        let Some(expected) = graph_counts(self.snap) else {
            return Ok(skipped(
                "graph counts",
                "the snapshot recorded no counts (taken by an older rbk, or with Neo4j not running)",
            ));
        };
        let db = self.database(neo4j);
        let (check, _) = timed("graph counts", || {
            let found = self.rt.block_on(db.counts(self.engine))?;
            if found != expected {
                bail!(
                    "found {} nodes and {} relationships; the snapshot recorded {} and {}",
                    found.nodes,
                    found.relationships,
                    expected.nodes,
                    expected.relationships
                );
            }
            Ok(format!(
                "{} nodes and {} relationships, as recorded",
                found.nodes, found.relationships
            ))
        })?;
        // A count that differs says something is missing; the health check still tells
        // whether RushDB runs on what is there.
        Ok((check, Next::Continue))
    }

    fn sql_rows(&self) -> Result<(DrillCheck, Next)> {
        let Some((pg, target)) = self.pg() else {
            return Ok(skipped(
                "sql rows",
                "rbk counts Postgres tables only (the RushDB image has no sqlite3 to count with)",
            ));
        };
        let Some(expected) = table_rows(self.snap) else {
            return Ok(skipped(
                "sql rows",
                "the snapshot recorded no row counts (taken by an older rbk)",
            ));
        };
        let (check, _) = timed("sql rows", || {
            let out = self.rt.block_on(self.engine.exec_output(
                pg,
                target.count_rows_command(),
                target.env(),
                None,
                Duration::from_secs(60),
            ))?;
            let found = parse_row_counts(&out).map_err(anyhow::Error::msg)?;
            let differences = row_differences(&expected, &found);
            if !differences.is_empty() {
                bail!("{}", differences.join("; "));
            }
            Ok(format!(
                "{} tables, {} rows, as recorded",
                found.len(),
                found.values().sum::<u64>()
            ))
        })?;
        Ok((check, Next::Continue))
    }

    fn rushdb_health(&self) -> Result<(DrillCheck, Next)> {
        let rushdb = &self.world.rushdb;
        timed("rushdb health", || {
            self.rt.block_on(self.engine.start(rushdb))?;
            let port = rushdb::port_of(rushdb);
            let answered = wait::until(
                self.cancel(),
                self.options.timeout,
                "RushDB did not answer GET /health with 200",
                || {
                    let health = self.rt.block_on(self.engine.health(rushdb))?;
                    if let (false, Some(code)) = (health.running, health.exit_code) {
                        bail!("{} exited with status {code}", rushdb.name);
                    }
                    let address = self
                        .rt
                        .block_on(self.engine.address_on(rushdb, &self.world.network))?;
                    let Some(ip) = address else {
                        return Ok(Probe::NotYet("no address on the drill network yet".into()));
                    };
                    Ok(
                        match rushdb::health(SocketAddr::new(ip, port), Duration::from_secs(2)) {
                            Ok(200) => Probe::Ready,
                            Ok(status) => Probe::NotYet(format!("last status {status}")),
                            Err(e) => Probe::NotYet(format!("{e:#}")),
                        },
                    )
                },
            );
            if let Err(e) = answered {
                let logs = self.rt.block_on(self.engine.log_tail(rushdb, 20));
                return Err(e.context(format!("the last lines of {}:\n{logs}", rushdb.name)));
            }
            Ok(format!("GET /health answered 200 on port {port}"))
        })
    }
}

/// Runs a check: `Ok(detail)` passed; an error is the check failing (the drill stops),
/// unless it is the engine's or a signal's, which means the drill could not run.
fn timed(name: &str, f: impl FnOnce() -> Result<String>) -> Result<(DrillCheck, Next)> {
    let began = Instant::now();
    let result = f();
    let ms = millis(began.elapsed());
    match result {
        Ok(detail) => Ok((
            DrillCheck {
                name: name.into(),
                status: CheckStatus::Passed,
                detail,
                ms,
            },
            Next::Continue,
        )),
        Err(e) if is_cancelled(&e) || is_engine_error(&e) => Err(e),
        Err(e) => Ok((
            DrillCheck {
                name: name.into(),
                status: CheckStatus::Failed,
                detail: format!("{e:#}"),
                ms,
            },
            Next::Stop,
        )),
    }
}

fn skipped(name: &str, why: &str) -> (DrillCheck, Next) {
    (
        DrillCheck {
            name: name.into(),
            status: CheckStatus::Skipped,
            detail: why.into(),
            ms: 0,
        },
        Next::Continue,
    )
}
