//! `rbk restore <id>` in host mode: verify every byte, run the stop commands, load the graph with `neo4j-admin`, restore SQL with `psql` or put the SQLite file back, run the start commands.
//!
//! The plan (which part goes where, by which command) is decided from the
//! snapshot and `[host]` alone, before anything runs; `--dry-run` prints it.
//! `HostPause` (in `backup/host.rs`) owns the start commands, so they run
//! whatever happens once a stop command has run.

use anyhow::{Result, bail};
use serde::Serialize;

use super::feed::SnapshotFeed;
use super::verify_parts;
use crate::source::kind::{PartFeed, Role, StoreKind};
use crate::stack::host::{HostConfig, HostPause, Service};
use crate::stack::kinds::{self, Kinds};
use crate::stack::names::{PART_GRAPH, PART_POSTGRES, PART_SQLITE};
use crate::store::manifest::Snapshot;
use crate::store::{Id, Repository};

/// What a host-mode restore would do, in order; `--dry-run` prints it.
#[derive(Debug, Clone, Serialize)]
pub struct HostRestorePlan {
    pub snapshot: String,
    pub time: String,
    pub parts: Vec<String>,
    pub steps: Vec<String>,
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct HostRestoreReport {
    pub snapshot: String,
    pub restored: Vec<String>,
    /// From the first stop command to the end of the last start command.
    pub downtime_ms: u64,
    pub warnings: Vec<String>,
}

pub enum HostRestoreOutcome {
    Planned(HostRestorePlan),
    Restored(HostRestoreReport),
}

/// The `[host]` setting that names where each stack part goes.
const SETTINGS: [(&str, &str, &str); 3] = [
    (PART_GRAPH, "neo4j_admin", "the graph"),
    (PART_POSTGRES, "postgres_url", "the Postgres database"),
    (PART_SQLITE, "sqlite_path", "the SQLite file"),
];

/// Which of `[host]`'s stores the snapshot restores; refuses a part that has no place to go.
/// Decided from the snapshot and `[host]` alone (and the SQLite path's directory), so that
/// `--dry-run` needs no server. Returns the stores to restore and warnings.
fn resolve<'k>(
    id: &Id,
    feed: &SnapshotFeed<'_>,
    host: &HostConfig,
    kinds: &'k Kinds,
) -> Result<(Vec<&'k dyn StoreKind>, Vec<String>)> {
    let short = id.short();
    if !SETTINGS.iter().any(|(part, ..)| feed.has(part)) {
        bail!(
            "snapshot {short} holds no stack parts ({PART_GRAPH}, {PART_POSTGRES} or {PART_SQLITE}); use --to DIR"
        );
    }
    let mut warnings = Vec::new();
    if host.pause_command.is_none() {
        warnings.push(
            "[host] has no pause_command: RushDB keeps running while its stores are replaced"
                .into(),
        );
    }
    let claimed: Vec<String> = kinds.iter().flat_map(|k| k.parts()).collect();
    for (part, setting, _) in SETTINGS {
        if feed.has(part) && !claimed.iter().any(|c| c == part) {
            let other = match part {
                PART_POSTGRES if host.sqlite_path.is_some() => " (it uses SQLite)",
                PART_SQLITE if host.postgres_url.is_some() => " (it uses Postgres)",
                _ => "",
            };
            let what = match part {
                PART_GRAPH => PART_GRAPH.to_string(),
                PART_POSTGRES => format!("a Postgres dump ({PART_POSTGRES})"),
                _ => format!("SQLite metadata ({PART_SQLITE})"),
            };
            let to = if part == PART_GRAPH {
                " to load it with"
            } else {
                ""
            };
            bail!("snapshot {short} holds {what} but [host] sets no {setting}{to}{other}");
        }
    }
    let mut todo = Vec::new();
    for kind in kinds {
        let kind = kind.as_ref();
        if !kind.restores_from(feed) {
            if let Some(main) = kind.parts().first()
                && let Some((_, _, what)) = SETTINGS.iter().find(|(p, ..)| p == main)
            {
                warnings.push(format!(
                    "snapshot {short} has no {main}: {what} is left as it is"
                ));
            }
            continue;
        }
        kind.check(feed)?;
        if kind.role() == Role::Graph && host.neo4j_stop_command.is_none() {
            warnings.push("[host] has no neo4j_stop_command: neo4j-admin cannot load into a running Community server".into());
        }
        todo.push(kind);
    }
    Ok((todo, warnings))
}

/// The steps `restore_host` takes for these stores, in order, as the plan shows them.
fn steps(
    snap: &Snapshot,
    feed: &SnapshotFeed<'_>,
    todo: &[&dyn StoreKind],
    host: &HostConfig,
) -> Vec<String> {
    let run = |s: Service, stop: bool| {
        let (name, c) = if stop {
            (s.stop_name(), host.stop_command(s))
        } else {
            (s.start_name(), host.start_command(s))
        };
        c.map(|c| format!("run the {name}: {c}"))
    };
    let bytes: u64 = snap.parts.iter().map(|p| p.stored.size).sum();
    let names: Vec<&str> = snap.parts.iter().map(|p| p.name.as_str()).collect();
    let mut out = vec![format!(
        "verify every byte of {} ({bytes} bytes) against the hashes taken at backup",
        names.join(", ")
    )];
    for kind in todo {
        out.extend(kind.restore_steps(feed).before);
    }
    out.extend(run(Service::Writes, true));
    for kind in todo {
        let graph = kind.role() == Role::Graph;
        if graph {
            out.extend(run(Service::Neo4j, true));
        }
        out.extend(kind.restore_steps(feed).during);
        if graph {
            out.extend(run(Service::Neo4j, false));
        }
    }
    out.extend(run(Service::Writes, false));
    out
}

pub fn restore_host(
    repo: &Repository,
    wanted: &str,
    host: &HostConfig,
    dry_run: bool,
    cancel: &crate::cancel::Cancel,
) -> Result<HostRestoreOutcome> {
    let _lock = repo.read_lock("restore (host)")?;
    let (id, snap) = repo.find_snapshot(wanted)?;
    let kinds = kinds::of_host(host)?;
    // Loaded only to restore: a plan reads the manifest alone.
    let index = if dry_run {
        Default::default()
    } else {
        repo.load_index()?
    };
    let feed = SnapshotFeed {
        repo,
        index: &index,
        snap: &snap,
    };
    let (todo, warnings) = resolve(&id, &feed, host, &kinds)?;
    if dry_run {
        return Ok(HostRestoreOutcome::Planned(HostRestorePlan {
            snapshot: id.to_hex(),
            time: snap.time.clone(),
            parts: snap.parts.iter().map(|p| p.name.clone()).collect(),
            steps: steps(&snap, &feed, &todo, host),
            warnings,
        }));
    }
    verify_parts(repo, &index, &snap.parts)?;
    // Host processes and files: a runtime only because the kinds take one.
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .map_err(|e| anyhow::anyhow!("starting the async runtime: {e}"))?;
    for kind in &todo {
        kind.preflight(rt.handle(), &feed)?;
    }

    let mut pause = HostPause::new(host, cancel.clone())?;
    pause.stop(Service::Writes)?;
    let mut restored = Vec::new();
    for kind in &todo {
        // Neo4j Community must be stopped for a load: the commands around it say how.
        let graph = kind.role() == Role::Graph;
        if graph {
            pause.stop(Service::Neo4j)?;
        }
        restored.extend(kind.consume(rt.handle(), &feed)?);
        if graph {
            pause.start(Service::Neo4j)?;
        }
    }
    pause.finish()?;
    Ok(HostRestoreOutcome::Restored(HostRestoreReport {
        snapshot: id.to_hex(),
        restored,
        downtime_ms: pause.elapsed_ms(),
        warnings,
    }))
}
