//! Proves `rbk snapshot --neo4j-mode volume`: the data volume's store files round-trip byte for byte, the paused pass (not the pre-copy) is what the snapshot holds and reads again only what changed, a failed pass commits nothing and restarts the stack, and a restore into another Neo4j version is refused before anything stops.

use super::*;

pub(super) const VOLUME: &str = "neo4j.volume.tar";

/// The neo4j service's version from the environment, so that a test can recreate the
/// container as another version over the same volumes.
const VERSIONED: &str = "services:\n  neo4j:\n    environment:\n      NEO4J_VERSION: ${RBK_TEST_NEO4J_VERSION:-2026.01.4}\n";

/// Path -> SHA-256 of every file of the data volume a stopped server leaves (its lock file
/// exists only while it runs; test knobs are not the store's).
fn volume_files(dir_listing: &str) -> BTreeMap<String, String> {
    dir_listing
        .lines()
        .filter_map(|l| l.split_once("  "))
        .map(|(sum, path)| (path.to_string(), sum.to_string()))
        .filter(|(p, _)| !p.ends_with("/store_lock") && !p.contains("rbk-test-knobs"))
        .collect()
}

/// The data volume's files as the running container holds them.
pub(super) fn running_volume(stack: &Stack) -> BTreeMap<String, String> {
    let script = "cd /data && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum";
    volume_files(&docker(&["exec", &stack.neo4j(), "sh", "-c", script]))
}

/// The files of the tar `restore --to` wrote, unpacked by the host's tar.
pub(super) fn tar_volume(tar: &Path) -> BTreeMap<String, String> {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = Command::new("tar")
        .arg("-xf")
        .arg(tar)
        .arg("-C")
        .arg(dir.path())
        .output()
        .expect("tar");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new("sh")
        .arg("-c")
        .arg("find . -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum")
        .current_dir(dir.path())
        .output()
        .expect("sha256sum");
    volume_files(&String::from_utf8_lossy(&out.stdout))
}

fn scan_label(snapshot: &Value) -> Value {
    let raw = snapshot["labels"]["neo4j.volume_scan"]
        .as_str()
        .unwrap_or_else(|| panic!("no neo4j.volume_scan label in {snapshot}"));
    serde_json::from_str(raw).expect("neo4j.volume_scan is JSON")
}

/// A volume-mode snapshot of a stack whose graph changes between the pre-copy and the
/// pause: the snapshot holds the change, its tar is the stopped store file for file, a second
/// snapshot reads again only what changed, a restore drill passes, and `rbk restore` puts the
/// first state back into
/// the running stack. Then the stack's Neo4j is recreated as another version: a restore of
/// the volume is refused before anything stops.
#[test]
fn stack_volume_mode_round_trip() {
    let Some(_turn) = docker_test("stack_volume_mode_round_trip") else {
        return;
    };
    let stack = Stack::up_with("volmode", Variant::Postgres, Some(VERSIONED));
    stack.graph(&["graph-fill", "2000"]);
    stack.graph(&["graph-write", "movie:1", "The Matrix"]);
    stack.psql("insert into projects (name, token) values ('alpha', 'tok-alpha')");
    stack.settle();
    let env = Env::new();

    let plan = rbk_ok(
        &env,
        &["--json", "snapshot", "--dry-run", "--neo4j-mode", "volume"],
    )
    .json();
    assert_eq!(plan["parts"], serde_json::json!([VOLUME, PG]), "{plan}");
    assert_contains(
        plan["graph"].as_str().unwrap_or(""),
        "volume mode",
        "the plan",
    );

    // Written after the pre-copy read the store, before the pause: only the paused pass
    // can have it.
    let late = format!(
        "docker exec {} graph-write movie:late 'Written after the pre-copy'",
        stack.neo4j()
    );
    let mut c = rbk_cmd(&env, &["--json", "snapshot", "--neo4j-mode", "volume"]);
    c.env("RBK_TEST_AFTER_PRECOPY", &late);
    let r = wait_with_guard(c.spawn().expect("spawn rbk"), RBK_GUARD, "volume snapshot");
    assert_done(&r, "volume-mode snapshot");
    let s1 = r.json();
    let id1 = id_of(&s1);
    assert_eq!(part_names(&s1), [VOLUME, PG], "{s1}");
    let listed = list(&env);
    let labels = &listed[0]["labels"];
    assert_eq!(labels["neo4j.mode"], "volume", "{labels}");
    assert_eq!(labels["neo4j.version"], "2026.01.4", "{labels}");
    assert_eq!(labels["neo4j.store_format"], "default", "{labels}");
    assert!(labels["neo4j.precopy_ms"].as_str().is_some(), "{labels}");
    let scan1 = scan_label(&listed[0]);
    // The late write changed the node store and the transaction log: read again.
    assert!(
        scan1["unchanged"].as_u64() < scan1["entries"].as_u64(),
        "{scan1}"
    );
    assert!(scan1["bytes_read"].as_u64() > Some(0), "{scan1}");
    let phases = phase_names(&s1);
    assert!(phases.contains(&"archive neo4j volume"), "{phases:?}");
    assert!(!phases.contains(&"dump neo4j"), "{phases:?}");
    assert_eq!(stack.oneoffs(), Vec::<String>::new(), "no one-off left");
    stack.settle();
    let graph1 = stack.graph_records();
    assert_contains(
        &graph1,
        "movie:late\tWritten after the pre-copy",
        "the graph",
    );
    let files1 = running_volume(&stack);

    // ---- the tar, as a file: the store as the stopped server left it
    let dir1 = restore_to(&env, &id1, "s1");
    assert_eq!(
        tar_volume(&dir1.join(VOLUME)),
        files1,
        "the part is the data volume file for file"
    );
    let verified = rbk_ok(&env, &["--json", "verify", &id1[..12]]).json();
    assert_contains(
        &verified.to_string(),
        "tar",
        "the volume is checked as a tar",
    );

    // ---- the restore drill: the volume unpacked into a throwaway copy of the stack
    let drill = rbk_done(&env, &["--json", "verify", &id1[..12], "--restore-test"]).json();
    assert_eq!(drill["passed"], true, "{drill}");
    assert_contains(
        &drill.to_string(),
        "bytes of store files unpacked into the data volume",
        "the drill restores the volume",
    );
    assert_contains(
        &drill.to_string(),
        "nodes and 0 relationships, as recorded",
        "the drill's counts",
    );

    // ---- a second night: little changed, little read
    stack.graph(&["graph-write", "movie:2", "The Matrix Reloaded"]);
    stack.settle();
    let s2 = stack_snapshot(&env, &["--neo4j-mode", "volume"]);
    let scan2 = &scan_label(&list(&env)[0]);
    println!(
        "volume mode, second night: {scan2}, pause {} ms",
        s2["pause_ms"]
    );
    let (read2, unchanged2) = (
        scan2["bytes_read"].as_u64().expect("bytes_read"),
        scan2["bytes_unchanged"].as_u64().expect("bytes_unchanged"),
    );
    assert!(scan2["unchanged"].as_u64() > Some(0), "{scan2}");
    assert!(
        read2 < unchanged2 + read2,
        "the paused pass read {read2} bytes again, used {unchanged2} unread"
    );
    assert!(
        u64_of(&s2, "bytes_added") * 4 < u64_of(&s2, "bytes_read"),
        "{s2}"
    );
    stack.settle();
    assert_ne!(running_volume(&stack), files1, "the store changed since");

    // ---- restore the first state into the running stack
    let report = rbk_done(&env, &["--json", "restore", &id1[..12]]).json();
    assert_eq!(
        report["restored"],
        serde_json::json!([VOLUME, PG]),
        "{report}"
    );
    stack.wait_running(&["rushdb", "neo4j", "postgres"]);
    assert_eq!(
        running_volume(&stack),
        files1,
        "the volume is back file for file"
    );
    assert_eq!(stack.graph_records(), graph1, "every graph record is back");

    // ---- another Neo4j version: the volume is refused before anything stops
    let up = stack.compose(
        &["up", "-d", "neo4j"],
        &[("RBK_TEST_NEO4J_VERSION", "2026.02.1")],
    );
    assert!(
        up.status.success(),
        "{}",
        String::from_utf8_lossy(&up.stderr)
    );
    stack.settle();
    let started = stack.started_at(&["rushdb", "neo4j", "postgres"]);
    let r = rbk(&env, &["restore", &id1[..12]]);
    assert_ne!(r.code, 0, "{}", r.all());
    assert_contains(&r.stderr, "Neo4j 2026.01.4", "the refusal");
    assert_contains(&r.stderr, "2026.02.1", "the refusal");
    assert_contains(&r.stderr, "not portable", "the refusal");
    assert_eq!(
        stack.started_at(&["rushdb", "neo4j", "postgres"]),
        started,
        "nothing was stopped"
    );
}

/// The paused pass fails (the repository's disk is full when the changed store's first
/// pack is written): nothing is committed, the stack runs again, no one-off is left, and
/// the next volume-mode snapshot succeeds.
#[test]
fn stack_volume_mode_failed_pass_commits_nothing() {
    let Some(_turn) = docker_test("stack_volume_mode_failed_pass_commits_nothing") else {
        return;
    };
    let stack = Stack::up("volfail", Variant::Postgres);
    stack.settle();
    let env = Env::new();
    // The pre-copy of the small store fills no pack; the write after it adds tens of MB,
    // so the paused pass's first pack write is the lock's and then this one.
    let fill = format!("docker exec {} graph-fill 200000 7", stack.neo4j());
    let mut c = rbk_cmd(&env, &["snapshot", "--neo4j-mode", "volume"]);
    // Through the one-off container (the round trip reads the volume on this host): its
    // output must not be left waiting on a scan that stopped.
    c.env("RBK_TEST_AFTER_PRECOPY", &fill)
        .env("RBK_FAULT", "enospc@write:2")
        .env("RBK_TEST_ONE_OFF_SCAN", "1");
    let r = wait_with_guard(c.spawn().expect("spawn rbk"), RBK_GUARD, "failing snapshot");
    assert_ne!(r.code, 0, "{}", r.all());
    assert_ne!(r.code, EXIT_WARNINGS, "{}", r.all());
    assert_contains(&r.stderr, "space", "the failure");
    assert_contains(&r.stderr, "server stopped", "a failure of the paused pass");
    assert!(list(&env).is_empty(), "nothing was committed");
    stack.wait_running(&["rushdb", "neo4j", "postgres"]);
    assert_eq!(stack.oneoffs(), Vec::<String>::new(), "no one-off left");
    stack.settle();

    let mut c = rbk_cmd(&env, &["--json", "snapshot", "--neo4j-mode", "volume"]);
    c.env("RBK_TEST_ONE_OFF_SCAN", "1");
    let r = wait_with_guard(c.spawn().expect("spawn rbk"), RBK_GUARD, "volume snapshot");
    assert_done(&r, "volume-mode snapshot through a one-off");
    let s = r.json();
    assert_eq!(part_names(&s), [VOLUME, PG], "{s}");
    // Read through the one-off, the part is the volume all the same.
    let id = id_of(&s);
    let dir = restore_to(&env, &id, "s");
    stack.settle();
    assert_eq!(tar_volume(&dir.join(VOLUME)), running_volume(&stack));
}
