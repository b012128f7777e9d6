//! `rbk status` on real repositories: exit 0 when every group is fresh, exit 7 with one line
//! per problem (a group too old, a read of the data overdue or that found damage, a stale
//! lock), the evidence `check` leaves for it, and the warnings a snapshot records.

use rbk::store::lock::hostname;
use rbk::store::time::{format_unix, now_unix};
use serde_json::Value;

use crate::concurrent::{lock_info, plant_lock};
use crate::util::*;

fn status(env: &Env, args: &[&str]) -> (Run, Value) {
    let mut all = vec!["--json", "status"];
    all.extend_from_slice(args);
    let r = env.run(&all);
    let v = r.json();
    crate::json::assert_shape(&v, "status", STATUS_RULES);
    (r, v)
}

pub const STATUS_RULES: crate::json::Rules = crate::json::Rules {
    nullable: &[
        "free_bytes",
        "max_drill_age_s",
        "max_check_age_s",
        "last_check",
        "last_read_data_check",
        "groups[].project",
        "groups[].last_drill",
        "groups[].last_snapshot.pause_ms",
    ],
    maps: &[],
    keyed: &[],
};

/// A byte of `pack` inside a chunk, not a chunk list: damage only a read of the data finds
/// (a structure check reads the lists).
fn chunk_byte(env: &Env, pack: &std::path::Path) -> u64 {
    let repo = env.open();
    let index = repo.load_index().expect("index");
    let lists: Vec<(u64, u64)> = repo
        .snapshots()
        .expect("snapshots")
        .into_iter()
        .flat_map(|(_, s)| s.expect("snapshot").parts)
        .flat_map(|p| p.stored.lists)
        .filter_map(|id| index.get(&id))
        .map(|l| {
            (
                u64::from(l.offset),
                u64::from(l.offset) + u64::from(l.length),
            )
        })
        .collect();
    let (header, _) = pack_header_span(pack);
    (0..header)
        .step_by(1000)
        .find(|o| lists.iter().all(|(a, b)| o < a || o >= b))
        .expect("a byte outside the lists")
}

fn problems(v: &Value) -> Vec<String> {
    v["problems"]
        .as_array()
        .expect("problems")
        .iter()
        .map(|p| p.as_str().expect("a line").to_string())
        .collect()
}

#[test]
fn fresh_is_0_and_each_problem_is_a_line_and_exit_7() {
    let env = Env::new();
    let (r, v) = status(&env, &[]);
    assert_eq!(r.code, EXIT_NEEDS_ATTENTION, "{}", r.all());
    assert_eq!(problems(&v), vec!["the repository holds no snapshot"]);

    let input = env.write("in.bin", &random_bytes(300_000, 1));
    let path = input.to_str().unwrap();
    env.snapshot(&["--path", path]);
    let (r, v) = status(&env, &[]);
    assert_eq!(r.code, EXIT_OK, "{}", r.all());
    assert_eq!(v["ok"], true);
    assert_eq!(v["groups"][0]["host"], hostname().as_str());
    assert_eq!(v["groups"][0]["last_snapshot"]["bytes_read"], 300_000);
    assert!(
        v["free_bytes"]
            .as_u64()
            .expect("a local repository has free space")
            > 0
    );
    assert!(u64_of(&v, "size_bytes") > 300_000, "{v}");
    let text = env.ok(&["status"]);
    assert!(text.stdout.trim_end().ends_with("ok"), "{}", text.stdout);

    // Another host's group, last backed up three days ago.
    let old = format_unix(now_unix() - 3 * 86_400);
    env.snapshot(&["--path", path, "--host", "old-host", "--time", &old]);
    let (r, v) = status(&env, &["--max-age", "26h"]);
    assert_eq!(r.code, EXIT_NEEDS_ATTENTION, "{}", r.all());
    let p = problems(&v);
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(
        p[0].starts_with("old-host: the last snapshot") && p[0].contains("3d old"),
        "{p:?}"
    );
    let text = env.run(&["status"]);
    assert_eq!(text.code, EXIT_NEEDS_ATTENTION);
    assert!(
        text.stdout
            .contains("1 problem(s):\n  old-host: the last snapshot"),
        "{}",
        text.stdout
    );
    assert_eq!(status(&env, &["--max-age", "4d"]).0.code, EXIT_OK);

    // A read of every byte is due weekly; none has run yet.
    let due = ["--max-age", "4d", "--max-check-age", "8d"];
    let (r, v) = status(&env, &due);
    assert_eq!(r.code, EXIT_NEEDS_ATTENTION, "{}", r.all());
    assert!(problems(&v)[0].contains("no `rbk check --read-data` is recorded"));
    env.ok(&["check"]);
    assert_eq!(
        status(&env, &due).0.code,
        EXIT_NEEDS_ATTENTION,
        "a structure check reads no data"
    );
    let (r, c) = env.check(true);
    assert_eq!(r.code, EXIT_OK, "{}", r.all());
    assert_eq!(c["record"].as_str().map(str::len), Some(64), "{c}");
    let (r, v) = status(&env, &due);
    assert_eq!(r.code, EXIT_OK, "{}", r.all());
    assert_eq!(v["last_read_data_check"]["passed"], true);
    assert_eq!(v["last_check"]["scope"], "read-data");

    // Damage found by the next read of the data stands until a read passes again.
    let pack = env.packs().into_iter().next().expect("a pack");
    let spot = chunk_byte(&env, &pack);
    flip_byte(&pack, spot);
    assert_eq!(env.check(true).0.code, EXIT_DAMAGED);
    env.ok(&["check"]);
    let (r, v) = status(&env, &due);
    assert_eq!(r.code, EXIT_NEEDS_ATTENTION, "{}", r.all());
    let p = problems(&v);
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(
        p[0].starts_with("the last check --read-data")
            && p[0].contains(&rel_name(&env.repo, &pack)),
        "{p:?}"
    );
    assert_eq!(v["last_read_data_check"]["passed"], false);
    flip_byte(&pack, spot);
    assert_eq!(env.check(true).0.code, EXIT_OK);
    assert_eq!(status(&env, &due).0.code, EXIT_OK);

    // A lock whose process is gone.
    let mut gone = std::process::Command::new("true").spawn().unwrap();
    let dead = gone.id();
    gone.wait().unwrap();
    plant_lock(&env, "dead", &lock_info(&hostname(), dead, 0));
    let (r, v) = status(&env, &due);
    assert_eq!(r.code, EXIT_NEEDS_ATTENTION, "{}", r.all());
    let p = problems(&v);
    assert!(
        p.len() == 1 && p[0].starts_with("stale lock:") && p[0].contains(&format!("pid {dead}")),
        "{p:?}"
    );
    env.ok(&["unlock"]);
    assert_eq!(status(&env, &due).0.code, EXIT_OK);
}

/// What a snapshot warned of is in its manifest, so `status` shows it the next morning;
/// it is shown, not judged (a volume left out every night is not a failed backup).
#[test]
fn a_snapshot_s_warnings_are_recorded_and_shown() {
    let env = Env::new();
    let odd = env.write("odd.dump", b"DZV1 then no zstd stream at all");
    let r = env.run(&["snapshot", "--path", odd.to_str().unwrap()]);
    assert_eq!(r.code, EXIT_WARNINGS, "{}", r.all());
    let listed = env.snapshots();
    let recorded: Vec<String> =
        serde_json::from_str(listed[0]["labels"]["rbk.warnings"].as_str().expect("label"))
            .expect("a JSON list");
    assert_eq!(recorded.len(), 1);
    assert!(recorded[0].starts_with("odd.dump: "), "{recorded:?}");
    let (r, v) = status(&env, &[]);
    assert_eq!(r.code, EXIT_OK, "{}", r.all());
    assert_eq!(
        v["groups"][0]["last_snapshot"]["warnings"][0],
        recorded[0].as_str()
    );
    let text = env.ok(&["status"]);
    assert!(
        text.stdout.contains("warned: odd.dump: "),
        "{}",
        text.stdout
    );
}

/// Every check leaves a record (not one read without a lock); prune keeps the newest ten of
/// each scope.
#[test]
fn checks_are_recorded_and_prune_keeps_the_newest_ten() {
    let env = Env::new();
    let input = env.write("in.bin", &random_bytes(10_000, 2));
    env.snapshot(&["--path", input.to_str().unwrap()]);
    let r = env.run(&["--no-lock", "check"]);
    assert_eq!(r.code, EXIT_OK, "{}", r.all());
    assert!(
        r.stderr.contains("the check was not recorded"),
        "{}",
        r.stderr
    );
    assert!(names_in(&env.repo.join("checks")).is_empty());
    for _ in 0..11 {
        env.ok(&["check"]);
    }
    env.ok(&["check", "--read-data"]);
    assert_eq!(names_in(&env.repo.join("checks")).len(), 12);
    let v = env.ok(&["--json", "prune", "--keep-last", "1"]).json();
    assert_eq!(v["reclaim"]["check_records_removed"], 1, "{v}");
    assert_eq!(names_in(&env.repo.join("checks")).len(), 11);
    let (_, s) = status(&env, &["--max-check-age", "1d"]);
    assert_eq!(s["ok"], true, "the read-data record is kept: {s}");
}
