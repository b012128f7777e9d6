//! Verification records: `rbk verify` leaves its verdict in the repository, `rbk snapshots` shows the latest, `check` reads them, `forget` and `prune` remove those of snapshots that are gone.

use std::fs;
use std::path::PathBuf;
use std::time::Duration;

use rbk::store::Id;
use rbk::store::verification::{Check, Verification};
use serde_json::Value;

use crate::util::*;

/// A repository with two snapshots of different data, oldest first.
fn two_snapshots() -> (Env, [String; 2]) {
    let env = Env::new();
    let a = env.write("a.bin", &random_bytes(200_000, 1));
    let first = id_of(&env.snapshot(&["--path", a.to_str().unwrap()]));
    let b = env.write("b.bin", &random_bytes(200_000, 2));
    let second = id_of(&env.snapshot(&["--path", b.to_str().unwrap()]));
    (env, [first, second])
}

fn verify(env: &Env, args: &[&str]) -> (Run, Value) {
    let mut all = vec!["--json", "verify"];
    all.extend_from_slice(args);
    let r = env.run(&all);
    let v = r.json();
    (r, v)
}

fn record_file(env: &Env, id: &str) -> PathBuf {
    env.repo.join("verifications").join(id)
}

fn records(env: &Env) -> Vec<String> {
    names_in(&env.repo.join("verifications"))
}

/// The listing's row of a snapshot, by its short id.
fn row(env: &Env, id: &str) -> String {
    let listed = env.ok(&["snapshots"]).stdout;
    listed
        .lines()
        .find(|l| l.starts_with(&id[..8]))
        .unwrap_or_else(|| panic!("no row for {id}:\n{listed}"))
        .to_string()
}

/// `rbk snapshots --json`'s entry for a snapshot, checked against docs/JSON.md's example.
fn listed(env: &Env, id: &str) -> Value {
    let all = env.ok(&["--json", "snapshots"]).json();
    crate::json::assert_shape(&all, "snapshots", crate::json::SNAPSHOTS);
    all.as_array()
        .and_then(|a| a.iter().find(|s| s["id"] == id))
        .cloned()
        .unwrap_or_else(|| panic!("{id} is not listed: {all}"))
}

/// The date of a record's time, in its own offset (the first 10 characters).
fn date_of(time: &Value) -> String {
    time.as_str().expect("a time")[..10].to_string()
}

#[test]
fn verify_records_a_pass_that_snapshots_shows() {
    let (env, [first, second]) = two_snapshots();
    let (r, v) = verify(&env, &[&first[..8]]);
    assert_eq!(r.code, EXIT_OK, "{}", r.all());
    let id = v["record"].as_str().expect("a record id").to_string();

    // A sealed file named by the BLAKE3 of its bytes, as snapshot files are.
    let bytes = fs::read(record_file(&env, &id)).expect("the record file");
    assert_eq!(blake3::hash(&bytes).to_hex().as_str(), id);
    let record = env.open().read_verification(&id).expect("the record opens");
    assert_eq!(record.snapshot.to_hex(), first);
    assert_eq!(record.kind, "read");
    assert!(record.passed());
    assert_eq!(record.rbk_version, env!("CARGO_PKG_VERSION"));
    assert_eq!(record.checks.len(), 1, "{record:?}");
    assert_eq!(record.checks[0].name, "a.bin");
    assert!(record.checks[0].passed);
    assert!(
        record.checks[0].detail.contains("size and hash match"),
        "{record:?}"
    );

    let entry = listed(&env, &first);
    assert_eq!(entry["verified"]["read"]["id"], id.as_str(), "{entry}");
    assert_eq!(entry["verified"]["read"]["passed"], true, "{entry}");
    let day = date_of(&entry["verified"]["read"]["time"]);
    assert_eq!(listed(&env, &second)["verified"], serde_json::json!({}));
    assert!(
        row(&env, &first).contains(&format!("verified {day}")),
        "{}",
        row(&env, &first)
    );
    let other = row(&env, &second);
    assert!(!other.contains("verified"), "{other}");

    // The human report says where its verdict went.
    let human = env.ok(&["verify", &second[..8]]);
    assert!(
        human.stdout.contains("recorded as verification"),
        "{}",
        human.stdout
    );
    assert!(row(&env, &second).contains(&format!("verified {day}")));
    assert_eq!(records(&env).len(), 2);
    env.assert_check_ok("verification records are not litter");
}

#[test]
fn a_corrupted_pack_makes_verify_exit_3_and_record_a_failure() {
    let env = Env::new();
    let a = env.write("a.bin", &random_bytes(200_000, 1));
    let id = id_of(&env.snapshot(&["--path", a.to_str().unwrap()]));
    let (r, v) = verify(&env, &[]);
    assert_eq!(r.code, EXIT_OK, "{}", r.all());
    let passed = v["record"].as_str().expect("record").to_string();

    let pack = env.packs().into_iter().next().expect("a pack");
    flip_byte(&pack, 100);
    let (r, v) = verify(&env, &[]);
    assert_eq!(r.code, EXIT_DAMAGED, "{}", r.all());
    let failed = v["record"]
        .as_str()
        .expect("a failure is recorded")
        .to_string();
    assert_ne!(failed, passed);
    let record = env.open().read_verification(&failed).expect("record");
    assert!(!record.passed());
    assert_eq!(record.kind, "read");
    assert!(!record.checks[0].passed, "{record:?}");
    assert!(record.checks[0].detail.contains("damaged"), "{record:?}");

    // The newer record wins: the listing says FAILED, and --json says which record.
    let entry = listed(&env, &id);
    assert_eq!(entry["verified"]["read"]["passed"], false, "{entry}");
    assert_eq!(entry["verified"]["read"]["id"], failed.as_str(), "{entry}");
    let day = date_of(&entry["verified"]["read"]["time"]);
    let line = row(&env, &id);
    assert!(line.contains(&format!("FAILED verify {day}")), "{line}");
}

/// A record of another kind (the restore drill's) beside `rbk verify`'s: `--json` shows the
/// latest of each; the column prefers the drill, unless a newer read failed.
#[test]
fn snapshots_shows_the_latest_record_of_each_kind() {
    let (env, [first, _]) = two_snapshots();
    let (_, v) = verify(&env, &[&first[..8]]);
    let read = v["record"].as_str().expect("record").to_string();
    let repo = env.open();
    let snapshot = Id::from_hex(&first).expect("id");
    let drill = |time: &str, passed: bool| {
        let check = Check {
            name: "neo4j".into(),
            passed,
            detail: "loaded, 120 nodes".into(),
        };
        let r = Verification::new(
            snapshot,
            "restore-test",
            time.into(),
            Duration::from_secs(95),
            vec![check],
        );
        repo.save_verification(&r).expect("save").to_hex()
    };
    // Older than the read: still the one shown, as it proves more.
    let old = drill("2020-01-02T03:04:05Z", true);
    let entry = listed(&env, &first);
    assert_eq!(entry["verified"]["read"]["id"], read.as_str(), "{entry}");
    assert_eq!(
        entry["verified"]["restore-test"]["id"],
        old.as_str(),
        "{entry}"
    );
    let line = row(&env, &first);
    assert!(line.contains("restore-tested 2020-01-02"), "{line}");

    // A newer drill that failed replaces it, in both.
    let new = drill("2099-01-02T03:04:05+02:00", false);
    let entry = listed(&env, &first);
    assert_eq!(
        entry["verified"]["restore-test"]["id"],
        new.as_str(),
        "{entry}"
    );
    assert_eq!(
        entry["verified"]["restore-test"]["passed"], false,
        "{entry}"
    );
    assert_eq!(entry["verified"]["read"]["passed"], true, "{entry}");
    let line = row(&env, &first);
    assert!(line.contains("FAILED restore-test 2099-01-02"), "{line}");
}

#[test]
fn forget_and_prune_remove_the_records_of_snapshots_that_are_gone() {
    let (env, [first, second]) = two_snapshots();
    let (_, v) = verify(&env, &[&first[..8]]);
    let of_first = v["record"].as_str().expect("record").to_string();
    let (_, v) = verify(&env, &[&second[..8]]);
    let of_second = v["record"].as_str().expect("record").to_string();
    // A record whose snapshot never existed here (or went while it was being written).
    let stray = Verification::new(
        Id([9; 32]),
        "read",
        "2026-01-01T00:00:00Z".into(),
        Duration::ZERO,
        vec![],
    );
    let stray = env.open().save_verification(&stray).expect("save").to_hex();
    assert_eq!(records(&env).len(), 3);

    // A dry run that would forget the first snapshot counts its record and the stray one.
    let dry = env
        .ok(&["--json", "prune", "--keep-last", "1", "--dry-run"])
        .json();
    assert_eq!(dry["reclaim"]["verifications_removed"], 2, "{dry}");
    assert_eq!(records(&env).len(), 3, "a dry run removes nothing");
    let text = env.ok(&["prune", "--keep-last", "1", "--dry-run"]).stdout;
    assert!(
        text.contains("2 verification record(s) would be removed"),
        "{text}"
    );

    // forget takes the forgotten snapshot's record (and the stray's) with it.
    let f = env.ok(&["--json", "forget", &first[..8]]).json();
    assert_eq!(f["verifications_removed"], 2, "{f}");
    assert_eq!(records(&env), vec![of_second.clone()]);
    assert!(!record_file(&env, &of_first).exists());
    assert!(!record_file(&env, &stray).exists());

    // prune: the second snapshot is forgotten by policy, and its record goes with it.
    let third = env.write("c.bin", &random_bytes(100_000, 3));
    env.snapshot(&["--path", third.to_str().unwrap()]);
    let p = env.ok(&["--json", "prune", "--keep-last", "1"]).json();
    assert_eq!(p["reclaim"]["verifications_removed"], 1, "{p}");
    assert_eq!(records(&env), Vec::<String>::new());
    env.assert_check_ok("after prune");
}

#[test]
fn a_record_with_a_flipped_byte_is_a_check_warning_and_snapshots_still_works() {
    let (env, [first, second]) = two_snapshots();
    let (_, v) = verify(&env, &[&first[..8]]);
    let good = v["record"].as_str().expect("record").to_string();
    let (_, v) = verify(&env, &[&second[..8]]);
    let bad = v["record"].as_str().expect("record").to_string();
    flip_byte(&record_file(&env, &bad), 40);

    let (r, report) = env.check(true);
    assert_eq!(r.code, EXIT_WARNINGS, "a warning, not damage:\n{}", r.all());
    assert_eq!(report["errors"], serde_json::json!([]), "{report}");
    let named = format!("verifications/{bad}");
    assert!(
        report["warnings"]
            .as_array()
            .is_some_and(|w| w.iter().any(|w| w["file"] == named.as_str())),
        "{report}"
    );

    // The listing works, shows the good record, and leaves the bad one out.
    assert_eq!(
        listed(&env, &first)["verified"]["read"]["id"],
        good.as_str()
    );
    assert_eq!(listed(&env, &second)["verified"], serde_json::json!({}));
    let r = env.run(&["snapshots"]);
    assert_eq!(r.code, EXIT_OK, "{}", r.all());

    // `forget` leaves it (its snapshot cannot be known); prune removes it.
    let p = env.ok(&["--json", "prune", "--reclaim-only"]).json();
    assert_eq!(p["reclaim"]["verifications_removed"], 1, "{p}");
    assert_eq!(records(&env), vec![good]);
    env.assert_check_ok("the damaged record is gone");
}

/// With `--no-lock` rbk writes nothing: the verdict stands, its record is not written, and a
/// warning says so.
#[test]
fn verify_without_a_lock_records_nothing_and_keeps_its_exit_code() {
    let env = Env::new();
    let a = env.write("a.bin", &random_bytes(200_000, 1));
    env.snapshot(&["--path", a.to_str().unwrap()]);
    let (r, v) = verify(&env, &["--no-lock"]);
    assert_eq!(r.code, EXIT_OK, "{}", r.all());
    assert!(v["record"].is_null(), "{v}");
    assert!(r.stderr.contains("not recorded"), "{}", r.stderr);
    assert_eq!(records(&env), Vec::<String>::new());

    flip_byte(&env.packs()[0], 100);
    let r = env.run(&["--no-lock", "verify"]);
    assert_eq!(r.code, EXIT_DAMAGED, "{}", r.all());
    assert!(r.stderr.contains("not recorded"), "{}", r.stderr);
    assert_eq!(records(&env), Vec::<String>::new());
}
