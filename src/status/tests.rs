//! Each rule of `assess`, on evidence built by hand.

use std::time::Duration;

use super::*;
use crate::store::check_record::{CheckCounts, CheckRecord};
use crate::store::manifest::SnapshotStats;
use crate::store::verification::{Check, Verification};

const NOW: i64 = 1_796_000_000; // 2026-11-30T...Z
const H: i64 = 3600;

fn at(secs_ago: i64) -> String {
    crate::store::time::format_unix(NOW - secs_ago)
}

fn snapshot(host: &str, project: Option<&str>, secs_ago: i64) -> Snapshot {
    let mut labels = Vec::new();
    if let Some(p) = project {
        labels.push((label::PROJECT.to_string(), p.to_string()));
        labels.push((label::KIND.to_string(), "stack".to_string()));
        labels.push((label::PAUSE_MS.to_string(), "4100".to_string()));
    }
    Snapshot {
        time: at(secs_ago),
        host: host.into(),
        tags: Vec::new(),
        parts: Vec::new(),
        labels,
        stats: SnapshotStats {
            bytes_read: 1000,
            bytes_added: 10,
            ..SnapshotStats::default()
        },
    }
}

fn evidence(snapshots: Vec<Snapshot>) -> Evidence {
    Evidence {
        snapshots: snapshots
            .into_iter()
            .enumerate()
            .map(|(i, s)| (Id([i as u8 + 1; 32]), Ok(s)))
            .collect(),
        ..Evidence::default()
    }
}

fn verified(e: &mut Evidence, snapshot: u8, kind: &str, secs_ago: i64, passed: bool) {
    let record = Verification::new(
        Id([snapshot; 32]),
        kind,
        at(secs_ago),
        Duration::ZERO,
        vec![Check {
            name: "neo4j.dump".into(),
            passed,
            detail: if passed {
                "ok".into()
            } else {
                "counts differ".into()
            },
        }],
    );
    e.verifications
        .entry(Id([snapshot; 32]))
        .or_default()
        .insert(
            kind.to_string(),
            Recorded {
                id: Id([secs_ago as u8; 32]),
                record,
            },
        );
}

fn checked(e: &mut Evidence, scope: Scope, secs_ago: i64, errors: &[&str]) {
    let errors: Vec<String> = errors.iter().map(|s| s.to_string()).collect();
    let record = CheckRecord::new(
        at(secs_ago),
        scope,
        Duration::ZERO,
        CheckCounts::default(),
        &errors,
    );
    e.checks.by_scope.insert(
        scope,
        RecordedCheck {
            id: Id([9; 32]),
            record,
        },
    );
}

fn limits(max_age: i64) -> Limits {
    Limits {
        max_age: Some(max_age),
        ..Limits::default()
    }
}

#[test]
fn fresh_groups_are_no_problem_and_an_old_one_is_named() {
    let e = evidence(vec![
        snapshot("vm", Some("rushdb"), 50 * H),
        snapshot("vm", Some("rushdb"), 2 * H),
        snapshot("nas", None, 30 * H),
    ]);
    let s = assess(&e, NOW, limits(26 * H));
    assert_eq!(s.groups.len(), 2);
    let vm = s.groups.iter().find(|g| g.host == "vm").unwrap();
    assert_eq!(vm.name(), "vm/rushdb");
    assert_eq!(vm.snapshots, 2);
    assert_eq!(vm.last_snapshot.age_s, 2 * H, "the newest of the group");
    assert_eq!(vm.last_snapshot.pause_ms, Some(4100));
    assert_eq!(s.problems.len(), 1, "{:?}", s.problems);
    assert!(
        s.problems[0].starts_with("nas: the last snapshot") && s.problems[0].contains("30h old"),
        "{:?}",
        s.problems
    );
    assert!(assess(&e, NOW, limits(31 * H)).problems.is_empty());
    assert!(assess(&e, NOW, Limits::default()).problems.is_empty());
}

#[test]
fn an_empty_repository_and_an_unreadable_snapshot_are_problems() {
    let s = assess(&Evidence::default(), NOW, limits(H));
    assert_eq!(s.problems, vec!["the repository holds no snapshot"]);
    let mut e = evidence(vec![snapshot("vm", None, 0)]);
    e.snapshots
        .push((Id([7; 32]), Err("authentication failed".into())));
    let s = assess(&e, NOW, limits(H));
    assert_eq!(s.problems.len(), 1);
    assert!(s.problems[0].contains("cannot be read (authentication failed)"));
}

#[test]
fn a_failed_verification_stands_until_a_newer_one_of_its_kind_passes() {
    let mut e = evidence(vec![
        snapshot("vm", Some("rushdb"), 50 * H),
        snapshot("vm", Some("rushdb"), 2 * H),
    ]);
    verified(&mut e, 1, "restore-test", 40 * H, false);
    let s = assess(&e, NOW, Limits::default());
    assert_eq!(s.problems.len(), 1);
    assert!(
        s.problems[0].contains("the last restore-test verification")
            && s.problems[0].contains("neo4j.dump: counts differ"),
        "{:?}",
        s.problems
    );
    // A `read` passing since does not clear a failed drill: another kind proves less.
    verified(&mut e, 2, "read", H, true);
    assert_eq!(assess(&e, NOW, Limits::default()).problems.len(), 1);
    // A drill of the newer snapshot that passed does.
    verified(&mut e, 2, "restore-test", H, true);
    let s = assess(&e, NOW, Limits::default());
    assert!(s.problems.is_empty(), "{:?}", s.problems);
    assert_eq!(s.groups[0].last_drill.as_ref().unwrap().age_s, H);
}

#[test]
fn the_drill_age_is_judged_for_stacks_only() {
    let mut e = evidence(vec![
        snapshot("vm", Some("rushdb"), H),
        snapshot("nas", None, H),
    ]);
    let l = Limits {
        max_drill_age: Some(8 * 24 * H),
        ..Limits::default()
    };
    let s = assess(&e, NOW, l);
    assert_eq!(s.problems.len(), 1, "{:?}", s.problems);
    assert!(s.problems[0].starts_with("vm/rushdb: no restore drill has passed"));
    verified(&mut e, 1, "restore-test", 9 * 24 * H, true);
    let s = assess(&e, NOW, l);
    assert!(s.problems[0].contains("is 9d old"), "{:?}", s.problems);
    verified(&mut e, 1, "restore-test", 24 * H, true);
    assert!(assess(&e, NOW, l).problems.is_empty());
}

#[test]
fn checks_overdue_and_damage_found() {
    let mut e = evidence(vec![snapshot("vm", None, H)]);
    let l = Limits {
        max_check_age: Some(8 * 24 * H),
        ..Limits::default()
    };
    let s = assess(&e, NOW, l);
    assert_eq!(
        s.problems,
        vec!["no `rbk check --read-data` is recorded, and --max-check-age is 8d"]
    );
    // A structure check does not read the data: it proves nothing of the bytes.
    checked(&mut e, Scope::Structure, H, &[]);
    assert_eq!(assess(&e, NOW, l).problems.len(), 1);
    checked(&mut e, Scope::ReadData, 10 * 24 * H, &[]);
    let s = assess(&e, NOW, l);
    assert!(s.problems[0].contains("is 10d old"), "{:?}", s.problems);
    assert_eq!(s.last_check.as_ref().unwrap().scope, "structure");

    checked(
        &mut e,
        Scope::ReadData,
        2 * H,
        &["data/ab/abcd: authentication failed"],
    );
    let s = assess(&e, NOW, l);
    assert_eq!(s.problems.len(), 1, "{:?}", s.problems);
    assert!(
        s.problems[0].contains("check --read-data")
            && s.problems[0].contains("1 error(s) (the first: data/ab/abcd"),
        "{:?}",
        s.problems
    );
    // A structure check since re-proves the structure, not the bytes.
    checked(&mut e, Scope::Structure, H, &[]);
    assert_eq!(assess(&e, NOW, l).problems.len(), 1);
    // A failed structure check older than a passing read of the data is superseded by it.
    checked(&mut e, Scope::ReadData, H / 2, &[]);
    checked(&mut e, Scope::Structure, H, &["index/x: missing"]);
    assert!(assess(&e, NOW, l).problems.is_empty());
    checked(&mut e, Scope::Structure, H / 4, &["index/x: missing"]);
    assert_eq!(assess(&e, NOW, l).problems.len(), 1);
}

#[test]
fn stale_locks_are_problems_and_live_ones_are_not() {
    let mut e = evidence(vec![snapshot("vm", None, H)]);
    e.locks = vec![
        ("a shared lock held by pid 1".into(), false),
        ("an exclusive lock held by pid 2".into(), true),
    ];
    let s = assess(&e, NOW, Limits::default());
    assert_eq!(s.locks.len(), 2);
    assert_eq!(
        s.problems,
        vec![
            "stale lock: an exclusive lock held by pid 2 (its process is gone): `rbk unlock` removes it"
        ]
    );
}

#[test]
fn recorded_warnings_are_shown_not_judged() {
    let mut s = snapshot("vm", Some("rushdb"), H);
    names::set_warnings(&mut s, &["volume x left out".to_string()]);
    let st = assess(&evidence(vec![s]), NOW, limits(26 * H));
    assert_eq!(
        st.groups[0].last_snapshot.warnings,
        vec!["volume x left out"]
    );
    assert!(st.problems.is_empty());
}

#[test]
fn durations_read_as_people_say_them() {
    assert_eq!(words(59), "0m");
    assert_eq!(words(45 * 60), "45m");
    assert_eq!(words(30 * H), "30h");
    assert_eq!(words(26 * H), "26h");
    assert_eq!(words(50 * H), "2d 2h");
    assert_eq!(words(48 * H), "2d");
    assert_eq!(words(5 * H + 59 * 60), "5h");
}
