//! `rbk status`: did last night work? The repository's evidence (snapshots, verification and check records, locks) judged against the ages a schedule promises.
//!
//! `gather` reads the evidence (no lock: it only reads, and a lock would make a monitoring
//! probe wait behind a long prune); `assess` is a pure function of it, the clock and the
//! limits, so every rule is tested without a repository. The CLI prints the result.

use std::collections::BTreeMap;

use anyhow::Result;
use serde::Serialize;

use crate::stack::names::{self, label};
use crate::store::check_record::{LatestChecks, RecordedCheck, Scope};
use crate::store::format::FileKind;
use crate::store::lock::{hostname, list_locks, unreadable_may_be_held};
use crate::store::manifest::Snapshot;
use crate::store::verification::Recorded;
use crate::store::{Id, Repository};
use crate::verify::record::KIND_RESTORE_TEST;

/// How old each piece of evidence may be, in seconds; `None` is not judged.
#[derive(Debug, Clone, Copy, Default)]
pub struct Limits {
    pub max_age: Option<i64>,
    pub max_drill_age: Option<i64>,
    pub max_check_age: Option<i64>,
}

/// What the repository holds, read once.
#[derive(Debug, Default)]
pub struct Evidence {
    pub snapshots: Vec<(Id, Result<Snapshot, String>)>,
    /// For each snapshot, the latest verification record of each kind.
    pub verifications: BTreeMap<Id, BTreeMap<String, Recorded>>,
    /// The latest check record of each scope.
    pub checks: LatestChecks,
    /// Every lock: its description, and whether it is stale.
    pub locks: Vec<(String, bool)>,
    /// Bytes of every file of the repository.
    pub size: u64,
}

/// Reads the evidence. A verification or check record that cannot be read is left out, as
/// listings leave it out (`check` reports it): it is evidence, never a backup.
pub fn gather(repo: &Repository) -> Result<Evidence> {
    let snapshots = repo
        .snapshots()?
        .into_iter()
        .map(|(id, s)| (id, s.map_err(|e| e.to_string())))
        .collect();
    let verifications = repo.latest_verifications()?;
    let checks = repo.latest_checks()?;
    let backend = repo.backend().as_ref();
    let now = crate::store::time::now_unix();
    let host = hostname();
    let locks = list_locks(backend, repo.crypto())?
        .into_iter()
        .map(|(name, info)| match info {
            Ok(i) => (i.describe(), i.is_stale(now, &host)),
            Err(e) => (
                format!("{} ({e})", FileKind::Lock.path_of(&name)),
                !unreadable_may_be_held(backend, &name, now),
            ),
        })
        .collect();
    let mut size = backend.size(FileKind::Config, "config").unwrap_or(0);
    for kind in FileKind::FOLDERS {
        size += backend
            .list_sized(kind)?
            .iter()
            .map(|(_, n)| n)
            .sum::<u64>();
    }
    Ok(Evidence {
        snapshots,
        verifications,
        checks,
        locks,
        size,
    })
}

/// The verdict: what each group and the repository look like, and the problems, one line each.
#[derive(Debug, Serialize)]
pub struct Status {
    pub groups: Vec<Group>,
    /// The latest `rbk check` of any scope, and the latest with `--read-data`.
    pub last_check: Option<CheckSeen>,
    pub last_read_data_check: Option<CheckSeen>,
    pub snapshots: usize,
    pub size_bytes: u64,
    pub locks: Vec<LockSeen>,
    pub problems: Vec<String>,
}

/// Snapshots of one host and Compose project (the groups `prune` keeps by default).
#[derive(Debug, Serialize)]
pub struct Group {
    pub host: String,
    /// The Compose project; `None` for snapshots of files and streams.
    pub project: Option<String>,
    pub snapshots: usize,
    pub last_snapshot: SnapshotSeen,
    /// The latest restore drill of any of the group's snapshots that passed.
    pub last_drill: Option<Seen>,
}

impl Group {
    /// How the group is named in lines for people: `host/project`, or the host alone.
    pub fn name(&self) -> String {
        match &self.project {
            Some(p) => format!("{}/{p}", self.host),
            None => self.host.clone(),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct SnapshotSeen {
    pub id: String,
    pub short_id: String,
    pub time: String,
    pub age_s: i64,
    pub bytes_read: u64,
    pub bytes_added: u64,
    pub pause_ms: Option<u64>,
    pub warnings: Vec<String>,
}

/// A verification record: when, and of which snapshot.
#[derive(Debug, Serialize)]
pub struct Seen {
    pub time: String,
    pub age_s: i64,
    pub snapshot: String,
}

#[derive(Debug, Serialize)]
pub struct CheckSeen {
    pub time: String,
    pub age_s: i64,
    pub scope: &'static str,
    pub passed: bool,
    pub errors: u64,
    pub bytes_read: u64,
    pub host: String,
    /// The first errors it found, as `check` printed them.
    pub problems: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct LockSeen {
    pub description: String,
    pub stale: bool,
}

/// Seconds from `time` (RFC 3339) to `now`; `None` when the time does not parse.
fn age(time: &str, now: i64) -> Option<i64> {
    crate::store::time::parse_rfc3339(time).map(|t| now - t.unix_timestamp())
}

/// A duration in words for problem lines: `45m`, `30h` (hours up to two days, as schedules
/// are written), `3d 2h`.
pub fn words(secs: i64) -> String {
    let s = secs.max(0);
    let (d, h, m) = (s / 86_400, s % 86_400 / 3600, s % 3600 / 60);
    if s < 3600 {
        format!("{m}m")
    } else if s < 2 * 86_400 {
        format!("{}h", s / 3600)
    } else if h == 0 {
        format!("{d}d")
    } else {
        format!("{d}d {h}h")
    }
}

/// A snapshot of a group: its id, manifest and time (Unix seconds).
type Member<'a> = (&'a Id, &'a Snapshot, i64);

/// Judges the evidence at `now` (Unix seconds) against `limits`.
pub fn assess(evidence: &Evidence, now: i64, limits: Limits) -> Status {
    let mut problems = Vec::new();
    let mut groups: BTreeMap<(String, Option<String>), Vec<Member>> = BTreeMap::new();
    for (id, s) in &evidence.snapshots {
        let s = match s {
            Ok(s) => s,
            Err(e) => {
                problems.push(format!(
                    "snapshot {} cannot be read ({e}): run `rbk check`",
                    id.short()
                ));
                continue;
            }
        };
        let Some(t) = crate::store::time::parse_rfc3339(&s.time) else {
            problems.push(format!(
                "snapshot {} has an unreadable time {:?}",
                id.short(),
                s.time
            ));
            continue;
        };
        let project = names::label_value(s, label::PROJECT).map(str::to_string);
        groups
            .entry((s.host.clone(), project))
            .or_default()
            .push((id, s, t.unix_timestamp()));
    }
    if evidence.snapshots.is_empty() {
        problems.push("the repository holds no snapshot".to_string());
    }

    let mut out = Vec::new();
    for ((host, project), mut members) in groups {
        // Newest last; ties by id, as listings order them.
        members.sort_by_key(|(id, _, t)| (*t, **id));
        let Some(&(id, newest, t)) = members.last() else {
            continue;
        };
        let group_age = now - t;
        let mut group = Group {
            host,
            project,
            snapshots: members.len(),
            last_snapshot: SnapshotSeen {
                id: id.to_hex(),
                short_id: id.short(),
                time: newest.time.clone(),
                age_s: group_age,
                bytes_read: newest.stats.bytes_read,
                bytes_added: newest.stats.bytes_added,
                pause_ms: names::pause_ms(newest),
                warnings: names::warnings(newest),
            },
            last_drill: None,
        };
        let name = group.name();
        if let Some(max) = limits.max_age
            && group_age > max
        {
            problems.push(format!(
                "{name}: the last snapshot ({}) is {} old, more than --max-age {}",
                newest.time,
                words(group_age),
                words(max)
            ));
        }

        // The latest record of each kind across the group: a failure is reported until a
        // newer record of that kind passes.
        let mut latest: BTreeMap<&str, &Recorded> = BTreeMap::new();
        let mut drill: Option<&Recorded> = None;
        for (id, _, _) in &members {
            for (kind, r) in evidence.verifications.get(*id).into_iter().flatten() {
                let newer = |have: &Recorded| {
                    age(&r.record.time, now).unwrap_or(i64::MAX)
                        < age(&have.record.time, now).unwrap_or(i64::MAX)
                };
                if latest.get(kind.as_str()).is_none_or(|h| newer(h)) {
                    latest.insert(kind, r);
                }
                if kind == KIND_RESTORE_TEST && r.record.passed() && drill.is_none_or(newer) {
                    drill = Some(r);
                }
            }
        }
        for (kind, r) in &latest {
            if !r.record.passed() {
                let what = r
                    .record
                    .checks
                    .iter()
                    .find(|c| !c.passed)
                    .map(|c| format!(": {}: {}", c.name, c.detail))
                    .unwrap_or_default();
                problems.push(format!(
                    "{name}: the last {kind} verification ({}, of snapshot {}) failed{what}",
                    r.record.time,
                    r.record.snapshot.short()
                ));
            }
        }
        group.last_drill = drill.map(|r| Seen {
            time: r.record.time.clone(),
            age_s: age(&r.record.time, now).unwrap_or(i64::MAX),
            snapshot: r.record.snapshot.to_hex(),
        });
        // Only a stack can be drilled: snapshots of files and of [host] stacks are not held
        // to a drill age they cannot meet.
        let drillable = names::label_value(newest, label::KIND) == Some("stack");
        if let Some(max) = limits.max_drill_age
            && drillable
        {
            match &group.last_drill {
                None => problems.push(format!(
                    "{name}: no restore drill has passed (`rbk verify --restore-test`), and --max-drill-age is {}",
                    words(max)
                )),
                Some(d) if d.age_s > max => problems.push(format!(
                    "{name}: the last restore drill that passed ({}) is {} old, more than --max-drill-age {}",
                    d.time,
                    words(d.age_s),
                    words(max)
                )),
                Some(_) => {}
            }
        }
        out.push(group);
    }

    let seen = |r: &RecordedCheck| CheckSeen {
        time: r.record.time.clone(),
        age_s: age(&r.record.time, now).unwrap_or(i64::MAX),
        scope: r.record.scope.name(),
        passed: r.record.passed(),
        errors: r.record.errors,
        bytes_read: r.record.bytes_read,
        host: r.record.host.clone(),
        problems: r.record.problems.clone(),
    };
    let read_data = evidence.checks.by_scope.get(&Scope::ReadData).map(seen);
    let structure = evidence.checks.by_scope.get(&Scope::Structure).map(seen);
    let check_failed = |c: &CheckSeen| {
        format!(
            "the last check{} ({}) found {} error(s){}; `rbk check` names them, and `rbk repair` mends what can be mended",
            if c.scope == Scope::ReadData.name() {
                " --read-data"
            } else {
                ""
            },
            c.time,
            c.errors,
            c.problems
                .first()
                .map(|p| format!(" (the first: {p})"))
                .unwrap_or_default()
        )
    };
    // A structure check newer than the last read of the data re-proves the structure only:
    // a failed read of the data stands until a newer one passes.
    if let Some(c) = &read_data
        && !c.passed
    {
        problems.push(check_failed(c));
    }
    if let Some(c) = &structure
        && !c.passed
        && read_data.as_ref().is_none_or(|r| r.age_s > c.age_s)
    {
        problems.push(check_failed(c));
    }
    if let Some(max) = limits.max_check_age {
        match &read_data {
            None => problems.push(format!(
                "no `rbk check --read-data` is recorded, and --max-check-age is {}",
                words(max)
            )),
            Some(c) if c.age_s > max => problems.push(format!(
                "the last `rbk check --read-data` ({}) is {} old, more than --max-check-age {}",
                c.time,
                words(c.age_s),
                words(max)
            )),
            Some(_) => {}
        }
    }
    let last_check = evidence.checks.newest().map(seen);

    let locks: Vec<LockSeen> = evidence
        .locks
        .iter()
        .map(|(description, stale)| LockSeen {
            description: description.clone(),
            stale: *stale,
        })
        .collect();
    for l in locks.iter().filter(|l| l.stale) {
        problems.push(format!(
            "stale lock: {} (its process is gone): `rbk unlock` removes it",
            l.description
        ));
    }

    Status {
        groups: out,
        last_check,
        last_read_data_check: read_data,
        snapshots: evidence.snapshots.len(),
        size_bytes: evidence.size,
        locks,
        problems,
    }
}

#[cfg(test)]
mod tests;
