//! A typo in a retention rule must not delete every backup: a policy that would remove every
//! snapshot of a group is refused (exit 2, naming the group and the policy) unless
//! `--allow-remove-all`, in a dry run too; and tags split on commas the same way when a
//! snapshot is tagged and when prune keeps by tag.

use crate::util::*;

fn three_snapshots(env: &Env, host: &str, tag: Option<&str>) -> Vec<String> {
    let mut ids = Vec::new();
    for day in 1..=3u64 {
        let p = env.write(&format!("{host}.bin"), &random_bytes(64 * 1024, day));
        let time = format!("2026-03-0{day}T02:00:00+01:00");
        let mut args = vec![
            "--path",
            p.to_str().unwrap(),
            "--host",
            host,
            "--time",
            &time,
        ];
        if let Some(t) = tag {
            args.extend(["--tag", t]);
        }
        ids.push(id_of(&env.snapshot(&args)));
    }
    ids
}

#[test]
fn a_policy_that_removes_a_whole_group_is_refused_unless_allowed() {
    let env = Env::new();
    let ids = three_snapshots(&env, "nas", None);
    let before = env.snapshot_files();
    for dry in [true, false] {
        let mut args = vec!["prune", "--keep-tag", "t9"];
        if dry {
            args.push("--dry-run");
        }
        let r = env.run(&args);
        assert_eq!(r.code, EXIT_USAGE, "{args:?} must be refused:\n{}", r.all());
        for needle in ["host=nas", "tag t9", "--allow-remove-all"] {
            assert!(
                r.stderr.contains(needle),
                "{args:?}: the refusal names {needle:?}:\n{}",
                r.stderr
            );
        }
        assert_eq!(env.snapshot_files(), before, "{args:?} removed snapshots");
    }
    let r = env.run(&["prune", "--keep-tag", "t9", "--allow-remove-all"]);
    assert_eq!(r.code, EXIT_OK, "allowed:\n{}", r.all());
    assert!(env.snapshot_files().is_empty(), "{ids:?} should be gone");
}

/// Two groups: the rule keeps snapshots of one; the other would lose all of its own.
#[test]
fn the_refusal_names_the_group_that_would_be_emptied() {
    let env = Env::new();
    three_snapshots(&env, "alpha", Some("release"));
    three_snapshots(&env, "beta", None);
    let r = env.run(&["prune", "--keep-tag", "release"]);
    assert_eq!(r.code, EXIT_USAGE, "{}", r.all());
    assert!(r.stderr.contains("host=beta"), "{}", r.stderr);
    assert!(!r.stderr.contains("host=alpha"), "{}", r.stderr);
    assert_eq!(env.snapshot_files().len(), 6);
    // A rule that keeps something in every group goes ahead.
    env.ok(&["prune", "--keep-last", "1"]);
    assert_eq!(env.snapshot_files().len(), 2);
}

/// `--tag a,b` gives a snapshot the tags a and b (as restic does), which `--keep-tag a` keeps.
#[test]
fn tags_split_on_commas_when_tagging_and_when_keeping() {
    let env = Env::new();
    let p = env.write("x.bin", &random_bytes(10_000, 7));
    let p = p.to_str().unwrap();
    let tagged = id_of(&env.snapshot(&[
        "--path",
        p,
        "--tag",
        "a,b",
        "--time",
        "2026-03-01T02:00:00+01:00",
    ]));
    env.snapshot(&["--path", p, "--time", "2026-03-02T02:00:00+01:00"]);
    let listed = env.snapshots();
    let first = listed.iter().find(|s| s["id"] == tagged.as_str()).unwrap();
    assert_eq!(first["tags"], serde_json::json!(["a", "b"]), "{first}");
    env.ok(&["prune", "--keep-last", "1", "--keep-tag", "a"]);
    assert!(
        env.snapshot_files().contains(&tagged),
        "--keep-tag a must keep the snapshot tagged with --tag a,b"
    );
    let r = env.run(&["snapshot", "--path", p, "--tag", "a,,b"]);
    assert_eq!(r.code, EXIT_USAGE, "an empty tag:\n{}", r.all());
}
