//! `rbk restore <id>` into the running stack: preflight, stop, load the graph, restore SQL, start, report.

use anyhow::{Context, Result, bail};
use serde::Serialize;

use super::feed::SnapshotFeed;
use super::verify_parts;
use crate::progress::Unit;
use crate::source::docker::{ContainerInfo, Engine};
use crate::source::kind::{PartFeed, Role, StoreKind};
use crate::stack::discover::{KEY_VAR, Stack, StackConfig, discover};
use crate::stack::kinds::{self, Kinds};
use crate::stack::names::{
    KEY_FINGERPRINT_CONTEXT, PART_GRAPH, PART_POSTGRES, PART_SQLITE, label, volume_of_part,
};
use crate::stack::pause::Pause;
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

/// A part of the snapshot that none of the stack's stores takes, in words. A restore (and a
/// drill) refuses it: it would be left out without a word.
pub(crate) fn unclaimed(snap_parts: &[String], kinds: &Kinds, stack: &Stack) -> Result<()> {
    let claimed: Vec<String> = kinds.iter().flat_map(|k| k.parts()).collect();
    for name in snap_parts.iter().filter(|n| !claimed.contains(n)) {
        let sql = kinds
            .iter()
            .find(|k| k.role() == Role::Sql)
            .map(|k| k.parts().remove(0));
        if let Some(volume) = volume_of_part(name) {
            let have: Vec<&str> = stack.volumes.iter().map(|v| v.name.as_str()).collect();
            bail!(
                "the snapshot holds the volume {volume}, but no such volume is mounted by {} or Neo4j in the stack (it has: {}); restore it with --to DIR",
                stack.rushdb.name,
                if have.is_empty() {
                    "none".to_string()
                } else {
                    have.join(", ")
                }
            );
        }
        match (name.as_str(), sql.as_deref()) {
            (PART_GRAPH, _) => bail!(
                "the snapshot has a Neo4j dump but the stack has no Neo4j container to load it into"
            ),
            (PART_SQLITE, Some(PART_POSTGRES)) => {
                bail!("the snapshot holds SQLite metadata but the stack uses Postgres")
            }
            (PART_POSTGRES, Some(PART_SQLITE)) => {
                bail!("the snapshot holds a Postgres dump but the stack uses SQLite")
            }
            // Parts of another origin (`--file`, `--command`) beside the stack's: not the
            // stack's to restore, as before.
            _ => {}
        }
    }
    Ok(())
}

/// Everything that must hold before the stack is touched. Returns warnings.
#[allow(clippy::too_many_arguments)]
fn preflight(
    rt: &tokio::runtime::Handle,
    repo: &Repository,
    id: &Id,
    feed: &SnapshotFeed<'_>,
    stack: &Stack,
    kinds: &Kinds,
    force: bool,
) -> Result<Vec<String>> {
    let snap = feed.snap;
    let mut warnings = stack.warnings();
    if ![PART_GRAPH, PART_POSTGRES, PART_SQLITE]
        .iter()
        .any(|p| feed.has(p))
    {
        bail!(
            "snapshot {} holds no stack parts ({PART_GRAPH}, {PART_POSTGRES} or {PART_SQLITE}); use --to DIR",
            id.short()
        );
    }
    let names: Vec<String> = snap.parts.iter().map(|p| p.name.clone()).collect();
    unclaimed(&names, kinds, stack)?;
    // The key: restored tokens and secrets are only usable with the key that encrypted them.
    match (
        feed.label(label::KEY_FINGERPRINT),
        stack.rushdb.env_var(KEY_VAR),
    ) {
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
    for kind in kinds {
        kind.check(feed)?;
        kind.preflight(rt, feed)?;
    }
    verify_parts(repo, feed.index, &snap.parts)?;
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
    let kinds = kinds::of_stack(&engine, &stack, &options.stack, None);
    let feed = SnapshotFeed {
        repo,
        index: &index,
        snap: &snap,
    };
    let warnings = preflight(rt.handle(), repo, &id, &feed, &stack, &kinds, options.force)?;
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
    let todo: Vec<&dyn StoreKind> = kinds
        .iter()
        .map(|k| k.as_ref())
        .filter(|k| k.restores_from(&feed))
        .collect();
    let mut restored = Vec::new();
    // The stores another container holds (Neo4j's: the dump and its volumes) first, each
    // group with its holder stopped: `load` needs the database stopped whatever the
    // edition, and so does a volume. Enterprise too stops the whole container here rather
    // than `STOP DATABASE`: a restore is downtime anyway, it needs no Neo4j credentials, and
    // the one path serves the volumes as well. Started again before RushDB, which connects
    // to it on start.
    let is_rushdb = |c: Option<&ContainerInfo>| c.is_none_or(|c| c.id == stack.rushdb.id);
    let mut holders: Vec<&ContainerInfo> = Vec::new();
    for h in todo.iter().filter_map(|k| k.holder()) {
        if !is_rushdb(Some(h)) && !holders.iter().any(|x| x.id == h.id) {
            holders.push(h);
        }
    }
    for holder in holders {
        let stopping = repo.progress().task(
            &format!("stop {}", holder.service.as_deref().unwrap_or("neo4j")),
            Unit::Items,
            None,
        );
        pause
            .stop(holder, options.stack.stop_timeout)
            .with_context(|| format!("stopping {}", holder.name))?;
        drop(stopping);
        for kind in todo
            .iter()
            .filter(|k| k.holder().is_some_and(|h| h.id == holder.id))
        {
            restored.extend(kind.consume(rt.handle(), &feed)?);
        }
        pause
            .start(holder)
            .with_context(|| format!("starting {}", holder.name))?;
    }
    // Then the SQL (Postgres runs on; the SQLite file is RushDB's) and RushDB's volumes.
    for kind in todo.iter().filter(|k| is_rushdb(k.holder())) {
        restored.extend(kind.consume(rt.handle(), &feed)?);
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
