//! Retention and space reclaim: `rbk prune` and `rbk forget` keep what the policy says, free
//! what nothing needs, survive SIGKILL at every write and delete, and never take data from a
//! snapshot that runs at the same time.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;
use std::sync::Arc;

use rbk::store::Id;
use rbk::store::lock::LockKind;
use rbk::store::manifest::{Part, Snapshot};
use rbk::store::prune::{PruneOptions, forget, prune};
use rbk::store::writer::SnapshotWriter;
use serde_json::Value;

use crate::util::*;

const DAY_CHANGE: usize = 3 * MIB;
const BASE: usize = 24 * MIB;

/// A repository with one snapshot per night of a file that changes a little each day.
/// Returns every snapshot's id and the bytes it must restore to.
fn nightly(env: &Env, days: usize) -> Vec<(String, Vec<u8>)> {
    let mut data = random_bytes(BASE, 1);
    let mut out = Vec::new();
    for day in 0..days {
        // A different region each day, so each day's pack is partly superseded later.
        let at = (day * DAY_CHANGE * 2) % (BASE - DAY_CHANGE);
        data[at..at + DAY_CHANGE].copy_from_slice(&random_bytes(DAY_CHANGE, 100 + day as u64));
        let input = env.write("db.bin", &data);
        let time = format!("2026-03-{:02}T02:00:00+01:00", day + 1);
        let mut args = vec!["--path", input.to_str().unwrap(), "--time", &time];
        if day == 1 {
            args.extend(["--tag", "release"]);
        }
        let v = env.snapshot(&args);
        out.push((id_of(&v), data.clone()));
    }
    out
}

fn restore_bytes(env: &Env, id: &str) -> Vec<u8> {
    let dir = env.path(&format!("restore-{id}"));
    let _ = fs::remove_dir_all(&dir);
    env.ok(&["restore", id, "--to", dir.to_str().unwrap()]);
    let bytes = fs::read(dir.join("db.bin")).expect("restored file");
    fs::remove_dir_all(&dir).expect("clean restore dir");
    bytes
}

fn dir_bytes(dir: &Path) -> u64 {
    walk(dir)
        .iter()
        .map(|p| fs::metadata(p).map_or(0, |m| m.len()))
        .sum()
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

fn tree(dir: &Path) -> BTreeSet<String> {
    walk(dir)
        .iter()
        .filter(|p| !p.starts_with(dir.join("locks")))
        .map(|p| p.strip_prefix(dir).unwrap().display().to_string())
        .collect()
}

fn reclaim(v: &Value) -> &Value {
    &v["reclaim"]
}

/// The dry run prints the plan a real run carries out and changes nothing; the real run
/// removes exactly the snapshots the plan removes, frees space, leaves a repository that
/// checks clean, and every kept snapshot restores byte for byte. A second run finds nothing
/// to do.
#[test]
fn prune_keeps_what_the_policy_says_and_frees_the_rest() {
    let env = Env::new();
    let snaps = nightly(&env, 8);
    let before_tree = tree(&env.repo);
    let before_bytes = dir_bytes(&env.repo.join("data"));

    let policy = ["--keep-daily", "3", "--keep-tag", "release"];
    let mut args = vec!["--json", "prune", "--dry-run"];
    args.extend(policy);
    let dry = env.ok(&args).json();
    assert_eq!(
        tree(&env.repo),
        before_tree,
        "a dry run changed the repository"
    );
    let plan = dry["plan"].as_array().expect("plan array");
    assert_eq!(plan.len(), 8, "{dry}");
    let kept: BTreeSet<String> = plan
        .iter()
        .filter(|d| d["keep"] == Value::Bool(true))
        .map(|d| d["id"].as_str().unwrap().to_string())
        .collect();
    let expected: BTreeSet<String> = [1, 5, 6, 7].iter().map(|&i| snaps[i].0.clone()).collect();
    assert_eq!(kept, expected, "newest 3 days and the tagged one:\n{dry}");
    for d in plan {
        let reasons = d["reasons"].as_array().unwrap();
        assert_eq!(d["keep"] == Value::Bool(true), !reasons.is_empty(), "{d}");
    }
    assert_eq!(dry["snapshots_removed"], 4);
    assert!(u64_of(reclaim(&dry), "bytes_freed") > 0, "{dry}");

    let mut args = vec!["--json", "prune"];
    args.extend(policy);
    let real = env.ok(&args).json();
    assert_eq!(
        real["plan"], dry["plan"],
        "the run differs from its dry run"
    );
    let left: BTreeSet<String> = env.snapshot_files().into_iter().collect();
    assert_eq!(left, expected);
    let r = reclaim(&real);
    assert!(
        u64_of(r, "packs_deleted") > 0 && u64_of(r, "bytes_freed") > 0,
        "{real}"
    );
    assert_eq!(u64_of(r, "packs_waiting"), 0, "{real}");
    let after_bytes = dir_bytes(&env.repo.join("data"));
    assert!(
        after_bytes < before_bytes,
        "data/ did not shrink: {before_bytes} -> {after_bytes}"
    );
    let (run, check) = env.check(true);
    assert_eq!(run.code, EXIT_OK, "{}", run.all());
    assert_eq!(
        check["warnings"].as_array().map(Vec::len),
        Some(0),
        "{check}"
    );
    for (id, data) in &snaps {
        if expected.contains(id) {
            assert!(
                restore_bytes(&env, id) == *data,
                "snapshot {id} restored wrong bytes"
            );
        }
    }

    let again = env.ok(&args).json();
    let r = reclaim(&again);
    assert_eq!(again["snapshots_removed"], 0, "{again}");
    assert_eq!(u64_of(r, "packs_condemned"), 0, "{again}");
    assert_eq!(u64_of(r, "packs_deleted"), 0, "{again}");
}

/// An empty policy would forget everything: refused, and nothing changes.
#[test]
fn an_empty_policy_is_refused() {
    let env = Env::new();
    nightly(&env, 2);
    let before = tree(&env.repo);
    let r = env.run(&["prune"]);
    assert_ne!(r.code, EXIT_OK);
    assert!(r.stderr.contains("--reclaim-only"), "{}", r.all());
    let r = env.run(&["prune", "--dry-run", "--group-by", "host"]);
    assert_ne!(r.code, EXIT_OK, "{}", r.all());
    assert_eq!(tree(&env.repo), before);
}

/// `forget` by prefix removes one snapshot; `prune --reclaim-only` frees what only it used.
#[test]
fn forget_then_reclaim_only() {
    let env = Env::new();
    let snaps = nightly(&env, 3);
    let first = &snaps[0].0;
    env.ok(&["forget", &first[..10]]);
    assert_eq!(env.snapshot_files().len(), 2);
    let v = env.ok(&["--json", "prune", "--reclaim-only"]).json();
    assert!(u64_of(reclaim(&v), "bytes_freed") > 0, "{v}");
    env.assert_check_ok("after forget + reclaim");
    for (id, data) in &snaps[1..] {
        assert!(restore_bytes(&env, id) == *data);
    }
    // A typo forgets nothing, not even the ids before it.
    let r = env.run(&["forget", &snaps[1].0, "ffffffff"]);
    assert_ne!(r.code, EXIT_OK);
    assert_eq!(env.snapshot_files().len(), 2);
}

/// A process that held a lock when prune took packs out of the index may still be reading
/// them: prune deletes them only once that lock is gone, and `check` counts them as pending,
/// not as damage or litter.
#[test]
fn deletion_waits_for_locks_of_its_time() {
    let env = Env::new();
    nightly(&env, 4);
    let repo = env.open();
    let held = repo.lock(false, "it: a long restore").expect("shared lock");
    let v = env.ok(&["--json", "prune", "--keep-last", "1"]).json();
    let r = reclaim(&v);
    assert_eq!(u64_of(r, "packs_deleted"), 0, "{v}");
    let waiting = u64_of(r, "packs_waiting");
    assert!(waiting > 0, "{v}");
    let (_, check) = env.check(true);
    assert_eq!(check["errors"].as_array().map(Vec::len), Some(0), "{check}");
    assert_eq!(
        check["warnings"].as_array().map(Vec::len),
        Some(0),
        "{check}"
    );
    assert_eq!(u64_of(&check, "pending_deletion"), waiting, "{check}");

    // Still held: a second prune still waits.
    let v = env.ok(&["--json", "prune", "--reclaim-only"]).json();
    assert_eq!(u64_of(reclaim(&v), "packs_deleted"), 0, "{v}");
    drop(held);
    let v = env.ok(&["--json", "prune", "--reclaim-only"]).json();
    assert_eq!(u64_of(reclaim(&v), "packs_deleted"), waiting, "{v}");
    let (_, check) = env.check(true);
    assert_eq!(u64_of(&check, "pending_deletion"), 0, "{check}");
    assert_eq!(check["errors"].as_array().map(Vec::len), Some(0), "{check}");
}

/// The race prune must survive: a snapshot deduplicates against blobs that only forgotten
/// snapshots use, and prune runs between its start and its commit. The commit re-indexes
/// what it used; prune keeps those packs and deletes only the rest.
#[test]
fn a_snapshot_running_during_prune_keeps_what_it_deduplicated_against() {
    let env = Env::new();
    let a = random_bytes(20 * MIB, 7);
    let b = random_bytes(20 * MIB, 8);
    let pa = env.write("a.bin", &a);
    let pb = env.write("b.bin", &b);
    let ja = id_of(&env.snapshot(&["--path", pa.to_str().unwrap()]));
    let jb = id_of(&env.snapshot(&["--path", pb.to_str().unwrap()]));
    let packs_of_b: BTreeSet<_> = env.packs().into_iter().collect();

    let repo = env.open();
    let lock = repo.lock(false, "it: snapshot").expect("shared lock");
    let writer = SnapshotWriter::new(&repo, Arc::new(repo.load_index().expect("index")));
    let stored = writer
        .add_stream(&a[..], &rbk::progress::Silent)
        .expect("store a again");
    assert_eq!(writer.stats().new_chunks, 0, "a must deduplicate fully");

    // Meanwhile: forget both earlier snapshots and prune, as another process would.
    {
        let pruner = env.open();
        let plock = pruner
            .lock_kind(LockKind::Prune, "it: prune")
            .expect("prune lock");
        forget(&pruner, &[id(&ja), id(&jb)]).expect("forget");
        let r = prune(&pruner, &plock, &PruneOptions::default()).expect("prune");
        assert_eq!(
            r.packs_deleted, 0,
            "deleted while a snapshot held its lock: {r:?}"
        );
        assert!(r.packs_waiting > 0, "{r:?}");
    }

    let snapshot = Snapshot {
        time: "2026-03-09T02:00:00+01:00".into(),
        host: "it".into(),
        tags: vec![],
        parts: vec![Part {
            name: "a.bin".into(),
            origin: "it".into(),
            codec: "raw".into(),
            envelope: vec![],
            source_size: a.len() as u64,
            source_hash: *blake3::hash(&a).as_bytes(),
            stored,
        }],
        labels: vec![],
        stats: Default::default(),
    };
    let (new_id, _) = writer.commit(snapshot).expect("commit after prune");
    drop(lock);

    // Right after the commit, before any later prune: whole and restorable.
    env.assert_check_ok("after the racing commit");
    assert!(restore_bytes_named(&env, &new_id.to_hex(), "a.bin") == a);

    let v = env.ok(&["--json", "prune", "--reclaim-only"]).json();
    assert!(
        u64_of(reclaim(&v), "packs_deleted") > 0,
        "b's packs go: {v}"
    );
    let (_, check) = env.check(true);
    assert_eq!(check["errors"].as_array().map(Vec::len), Some(0), "{check}");
    assert_eq!(
        check["warnings"].as_array().map(Vec::len),
        Some(0),
        "{check}"
    );
    assert!(restore_bytes_named(&env, &new_id.to_hex(), "a.bin") == a);
    let left: BTreeSet<_> = env.packs().into_iter().collect();
    assert!(
        left.len() < packs_of_b.len(),
        "only a's packs remain: {} of {}",
        left.len(),
        packs_of_b.len()
    );
}

fn id(hex: &str) -> Id {
    Id::from_hex(hex).expect("hex id")
}

fn restore_bytes_named(env: &Env, id: &str, part: &str) -> Vec<u8> {
    let dir = env.path(&format!("restore-{id}"));
    let _ = fs::remove_dir_all(&dir);
    env.ok(&["restore", id, "--to", dir.to_str().unwrap()]);
    let bytes = fs::read(dir.join(part)).expect("restored file");
    fs::remove_dir_all(&dir).expect("clean restore dir");
    bytes
}

/// Snapshots and prunes run concurrently, many times: every snapshot that reported success
/// and that the policy keeps restores afterwards, and the repository checks clean. Each
/// kept snapshot stores the same data as a junk snapshot just before it, so it deduplicates
/// against blobs that the concurrent prune is forgetting.
#[test]
fn snapshots_and_prunes_in_a_loop() {
    let env = Env::new();
    let rounds = 12;
    let mut saved: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let inputs: Vec<Vec<u8>> = (0..rounds)
        .map(|i| random_bytes(6 * MIB, 500 + i as u64))
        .collect();
    let repo_path = env.repo.clone();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let pruner = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut runs = 0;
            let mut overlapped = 0;
            let mut failures = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let r = run(cmd_for(
                    &repo_path,
                    PASSWORD,
                    &[
                        "--json",
                        "prune",
                        "--keep-tag",
                        "keep",
                        // Junk alone, at first: removing all of it is the point.
                        "--allow-remove-all",
                        "--max-unused",
                        "0%",
                    ],
                ));
                runs += 1;
                if r.code == EXIT_OK {
                    let v = r.json();
                    // Ran while a snapshot held its lock: the race under test happened.
                    if u64_of(reclaim(&v), "packs_waiting") > 0
                        || u64_of(reclaim(&v), "packs_rescued") > 0
                    {
                        overlapped += 1;
                    }
                } else if r.code != EXIT_LOCKED {
                    failures.push(r.all());
                }
            }
            (runs, overlapped, failures)
        })
    };
    for (i, data) in inputs.iter().enumerate() {
        let p = env.write(&format!("in-{i}.bin"), data);
        let path = p.to_str().unwrap();
        env.ok(&["snapshot", "--path", path, "--tag", "junk"]);
        // Slow enough (a producer that pauses) that a prune lands inside it.
        let script = format!("cat {path}; sleep 0.3");
        let r = env.run(&[
            "--json",
            "snapshot",
            "--tag",
            "keep",
            "--command",
            "db.bin",
            "--",
            "sh",
            "-c",
            &script,
        ]);
        if r.code == EXIT_OK {
            saved.insert(id_of(&r.json()), data.clone());
        } else {
            assert_eq!(r.code, EXIT_LOCKED, "snapshot failed:\n{}", r.all());
        }
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let (runs, overlapped, failures) = pruner.join().expect("pruner thread");
    assert!(
        failures.is_empty(),
        "prune failed:\n{}",
        failures.join("\n---\n")
    );
    assert!(runs >= 2, "prune ran only {runs} time(s)");
    assert!(
        overlapped >= 1,
        "no prune of {runs} overlapped a snapshot: the race was not exercised"
    );
    assert!(
        saved.len() >= rounds / 2,
        "too few snapshots succeeded: {}",
        saved.len()
    );
    println!(
        "{runs} prunes beside {} snapshots; {overlapped} overlapped one",
        saved.len()
    );

    env.ok(&["prune", "--keep-tag", "keep"]);
    env.assert_check_ok("after the loop");
    for (id, data) in &saved {
        assert!(
            restore_bytes(&env, id) == *data,
            "snapshot {id} (reported saved) restored wrong bytes"
        );
    }
}

/// SIGKILL at every write and delete prune makes, in turn (through the `RBK_FAULT` test
/// hook, which kills the process just before the Nth one). After each crash the repository
/// checks clean, every snapshot still listed restores, and a second prune finishes the job
/// to the same end state as an uninterrupted run.
#[test]
#[cfg_attr(
    debug_assertions,
    ignore = "SIGKILLs prune at every write; run in release (`cargo test --release`)"
)]
fn prune_survives_sigkill_at_every_write_and_delete() {
    let template = Env::new();
    let snaps = nightly(&template, 6);
    let policy = [
        "prune",
        "--keep-daily",
        "2",
        "--keep-tag",
        "release",
        "--max-unused",
        "0%",
    ];
    let kept: BTreeSet<String> = [1usize, 4, 5].iter().map(|&i| snaps[i].0.clone()).collect();

    let reference = copy_env(&template, "reference");
    reference.ok(&policy);
    assert_eq!(
        reference
            .snapshot_files()
            .into_iter()
            .collect::<BTreeSet<_>>(),
        kept
    );

    let mut crashed = 0;
    for n in 1.. {
        assert!(n < 500, "prune never finished");
        let env = copy_env(&template, &format!("crash-{n}"));
        let r = run({
            let mut c = env.cmd(&policy);
            c.env("RBK_FAULT", format!("kill@mutation:{n}"));
            c
        });
        if r.code == EXIT_OK {
            break; // prune made fewer than n changes: every point was covered
        }
        assert_eq!(r.code, -1, "not killed at mutation {n}:\n{}", r.all());
        crashed += 1;
        let context = format!("after SIGKILL at mutation {n}");
        // A pack the killed repack wrote before its index, or a temporary file: warnings.
        env.assert_check_ok_but_litter(&context);
        let listed: BTreeSet<String> = env.snapshot_files().into_iter().collect();
        assert!(
            kept.is_subset(&listed),
            "{context}: a kept snapshot is gone"
        );
        for (id, data) in &snaps {
            if listed.contains(id) {
                assert!(
                    restore_bytes(&env, id) == *data,
                    "{context}: {id} restored wrong bytes"
                );
            }
        }
        env.ok(&policy);
        let (_, check) = env.check(true);
        assert_eq!(
            check["errors"].as_array().map(Vec::len),
            Some(0),
            "{context}: {check}"
        );
        assert_eq!(u64_of(&check, "pending_deletion"), 0, "{context}: {check}");
        let listed: BTreeSet<String> = env.snapshot_files().into_iter().collect();
        assert_eq!(
            listed, kept,
            "{context}: the second prune did not finish the job"
        );
        // Nothing is left to reclaim: the same policy, planned again, condemns and repacks
        // nothing. (Not "as many packs as the reference": when the kill lands after a
        // repack pack was indexed, that pack is fully used and kept, and the second prune
        // packs the rest on its own, so the blobs may sit in one pack more. Which write is
        // the Nth varies under load, the pack writer being a thread of its own.)
        let mut again = vec!["--json"];
        again.extend_from_slice(&policy);
        again.push("--dry-run");
        let planned = env.ok(&again).json();
        for field in ["packs_condemned", "packs_repacked", "unused_bytes_kept"] {
            assert_eq!(
                u64_of(reclaim(&planned), field),
                0,
                "{context}: the second prune left work: {planned}"
            );
        }
        let dry = env
            .ok(&["--json", "prune", "--reclaim-only", "--dry-run"])
            .json();
        assert_eq!(
            u64_of(reclaim(&dry), "packs_deleted"),
            0,
            "{context}: {dry}"
        );
        drop(env);
    }
    println!("prune killed at {crashed} points; every one recovered");
    assert!(
        crashed >= 10,
        "only {crashed} kill points: prune did less than expected"
    );
}

fn copy_env(from: &Env, name: &str) -> Env {
    let env = Env::empty();
    let status = std::process::Command::new("cp")
        .args([
            "-a",
            from.repo.to_str().unwrap(),
            env.repo.to_str().unwrap(),
        ])
        .status()
        .expect("cp");
    assert!(status.success(), "cp -a for {name}");
    env
}

/// Regression (found in review): a prune killed after it replaced the index but before it
/// wrote its deletion record leaves a pack in no index and no record; a snapshot committed
/// during that prune may need it. The next prune puts it back instead of refusing to run.
#[test]
fn a_pack_orphaned_by_a_killed_prune_is_rescued_for_a_snapshot_that_needs_it() {
    let env = Env::new();
    let a = random_bytes(4 * MIB, 31);
    let pa = env.write("a.bin", &a);
    let j = id_of(&env.snapshot(&["--path", pa.to_str().unwrap()]));
    let manifest = env.open().read_snapshot(&j).expect("read J");
    env.ok(&["forget", &j]);
    let packs = env.packs();

    // Killed at its second write: the first is its lock, the second its deletion record.
    let mut c = env.cmd(&["prune", "--reclaim-only"]);
    c.env("RBK_FAULT", "kill@write:2");
    let r = run(c);
    assert_eq!(r.code, -1, "not killed:\n{}", r.all());
    assert_eq!(
        env.packs(),
        packs,
        "nothing may be deleted before the record exists"
    );
    assert!(
        fs::read_dir(env.repo.join("deletions")).map_or(true, |d| d.count() == 0),
        "the record was written"
    );

    // The snapshot that committed during that prune, using J's blobs.
    let mut s = manifest.clone();
    s.time = "2026-04-01T02:00:00+02:00".into();
    let sid = env.open().save_snapshot(&s).expect("save S").to_hex();
    let (r, _) = env.check(false);
    assert_eq!(
        r.code,
        EXIT_DAMAGED,
        "the state this test sets up:\n{}",
        r.all()
    );

    let v = env.ok(&["--json", "prune", "--reclaim-only"]).json();
    assert!(u64_of(reclaim(&v), "packs_rescued") > 0, "{v}");
    env.assert_check_ok("after the rescue");
    assert!(restore_bytes_named(&env, &sid, "a.bin") == a);
}
