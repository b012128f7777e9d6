//! Proves the restore drill (`rbk verify --restore-test`): a good snapshot passes every check in a throwaway stack, a damaged graph fails with exit 3 naming the check, a signal or a kill leaves nothing behind once the next run has cleaned up, and the production containers are never restarted.

use super::*;

/// The drill's checks, by name, from `verify --restore-test --json`: (status, detail).
fn checks(report: &Value) -> BTreeMap<String, (String, String)> {
    report["checks"]
        .as_array()
        .unwrap_or_else(|| panic!("no checks in {report}"))
        .iter()
        .map(|c| {
            (
                c["name"].as_str().expect("name").to_string(),
                (
                    c["status"].as_str().expect("status").to_string(),
                    c["detail"].as_str().expect("detail").to_string(),
                ),
            )
        })
        .collect()
}

fn drill(env: &Env, args: &[&str]) -> Run {
    let mut all = vec!["--json", "verify"];
    all.extend_from_slice(args);
    all.push("--restore-test");
    rbk(env, &all)
}

const SERVICES: [&str; 3] = ["rushdb", "neo4j", "postgres"];

#[test]
fn a_drill_of_a_good_snapshot_passes_every_check_and_leaves_the_stack_alone() {
    let Some(_turn) = docker_test("a_drill_of_a_good_snapshot_passes") else {
        return;
    };
    let stack = Stack::up("drill_good", Variant::Postgres);
    stack.psql("insert into projects (name, token) values ('alpha', 'tok-a'), ('beta', 'tok-b')");
    stack.graph(&["graph-fill", "300"]);
    stack.graph(&["graph-write", "rel:1", "fill-1->fill-2"]);
    stack.graph(&["graph-write", "rel:2", "fill-2->fill-3"]);
    docker(&[
        "exec",
        &stack.rushdb(),
        "sh",
        "-c",
        "echo kept > /uploads/a.txt",
    ]);
    let env = Env::new();
    let snap = stack_snapshot(&env, &["--volumes"]);
    let listed = list(&env);
    let labels = &listed[0]["labels"];
    let counts: Value =
        serde_json::from_str(labels["neo4j.counts"].as_str().expect("neo4j.counts label"))
            .expect("counts are JSON");
    assert_eq!(
        counts,
        serde_json::json!({"nodes": 300, "relationships": 2})
    );
    let rows: Value = serde_json::from_str(labels["sql.rows"].as_str().expect("sql.rows label"))
        .expect("rows are JSON");
    assert_eq!(rows["public.projects"], 2, "{rows}");
    assert!(
        rows["public.heartbeat"].as_u64().expect("heartbeat rows") > 0,
        "{rows}"
    );
    println!("counts took {} ms in the pause", labels["counts.ms"]);

    // `rbk status` holds a stack to a drill age once asked to: none has run yet.
    let st = rbk(&env, &["--json", "status", "--max-drill-age", "7d"]);
    assert_eq!(st.code, EXIT_NEEDS_ATTENTION, "{}", st.all());
    let v = st.json();
    crate::json::assert_shape(&v, "status", crate::status::STATUS_RULES);
    assert_eq!(v["groups"][0]["project"], stack.project.as_str(), "{v}");
    assert!(
        v["groups"][0]["last_snapshot"]["pause_ms"].as_u64() > Some(0),
        "{v}"
    );
    assert!(
        !v["groups"][0]["last_snapshot"]["warnings"]
            .as_array()
            .expect("warnings")
            .is_empty(),
        "the published default key is warned of, and recorded: {v}"
    );
    let p = v["problems"].as_array().expect("problems");
    assert!(
        p.len() == 1
            && p[0]
                .as_str()
                .is_some_and(|l| l.contains("no restore drill has passed")),
        "{v}"
    );

    stack.wait_running(&SERVICES);
    let before = stack.started_at(&SERVICES);
    let began = Instant::now();
    let r = drill(&env, &[&id_of(&snap)[..12]]);
    let took = began.elapsed();
    assert_eq!(r.code, EXIT_OK, "{}", r.all());
    let report = r.json();
    crate::json::assert_shape(
        &report,
        "verify-restore-test",
        crate::json::Rules {
            nullable: &["record"],
            maps: &["images"],
            ..Default::default()
        },
    );
    let checks = checks(&report);
    for name in [
        "encryption key",
        "neo4j load",
        "neo4j consistency",
        "sql load",
        "volumes",
        "neo4j start",
        "graph counts",
        "sql rows",
        "rushdb health",
    ] {
        assert_eq!(checks[name].0, "passed", "{name}: {report}");
    }
    assert_contains(
        &checks["graph counts"].1,
        "300 nodes and 2 relationships",
        "graph counts",
    );
    assert_contains(&checks["rushdb health"].1, "200", "health");
    assert_contains(&checks["volumes"].1, "rushdb-uploads", "volumes");
    assert_eq!(report["passed"], true);
    assert_eq!(report["removed"]["containers"], 3, "{report}");
    println!("drill took {:.1} s: {report}", took.as_secs_f64());
    assert_eq!(
        stack.started_at(&SERVICES),
        before,
        "no production container restarted"
    );
    assert!(
        stack.drill_objects().is_empty(),
        "{:?}",
        stack.drill_objects()
    );
    // Its heartbeats never stopped: RushDB kept running through the drill.
    let hb = stack.max_heartbeat();
    stack.wait_heartbeats(hb);

    // The human form says the same.
    let r = rbk(&env, &["verify", "latest", "--restore-test"]);
    assert_eq!(r.code, EXIT_OK, "{}", r.all());
    assert_contains(&r.stdout, "ok    graph counts", "text report");
    assert_contains(&r.stdout, "passed in", "text report");
    // Recorded in the repository: the listing shows the snapshot as restore-tested.
    let listed = list(&env);
    assert_eq!(
        listed[0]["verified"]["restore-test"]["passed"], true,
        "{}",
        listed[0]
    );
    assert_eq!(
        listed[0]["verified"]["restore-test"]["id"]
            .as_str()
            .map(|s| s.len()),
        Some(64)
    );
    let table = rbk_ok(&env, &["snapshots"]);
    assert_contains(&table.stdout, "restore-tested", "snapshots");
    let st = rbk(&env, &["--json", "status", "--max-drill-age", "7d"]);
    assert_eq!(
        st.code,
        EXIT_OK,
        "the drill is recorded for status: {}",
        st.all()
    );
    let v = st.json();
    crate::json::assert_shape(&v, "status", crate::status::STATUS_RULES);
    assert_eq!(
        v["groups"][0]["last_drill"]["snapshot"],
        id_of(&snap).as_str(),
        "{v}"
    );
}

#[test]
fn a_drill_of_a_damaged_graph_fails_with_exit_3_and_names_the_check() {
    let Some(_turn) = docker_test("a_drill_of_a_damaged_graph_fails") else {
        return;
    };
    let stack = Stack::up("drill_damaged", Variant::Postgres);
    stack.graph(&["graph-fill", "100"]);
    // Damage the store while Neo4j is stopped, as a failing disk would, then snapshot it.
    docker(&["stop", &stack.rushdb(), &stack.neo4j()]);
    let volume = format!("{}_neo4j-data", stack.project);
    docker(&[
        "run",
        "--rm",
        "-v",
        &format!("{volume}:/data"),
        IMAGE,
        "truncate",
        "-s",
        "-100",
        "/data/databases/neo4j/neostore.nodestore.db",
    ]);
    // Both fully up again before the snapshot stops them: a stand-in stopped while it
    // starts has no SIGTERM handler yet and would sit out the whole stop timeout.
    docker(&["start", &stack.neo4j()]);
    stack.wait_graph();
    let hb = stack.max_heartbeat();
    docker(&["start", &stack.rushdb()]);
    stack.wait_heartbeats(hb);
    let env = Env::new();
    stack_snapshot(&env, &[]);
    // The plain verification cannot see it: the dump is a well-formed dump of a bad store.
    let plain = rbk(&env, &["verify", "latest"]);
    assert_eq!(plain.code, EXIT_OK, "{}", plain.all());

    let r = drill(&env, &["latest"]);
    assert_eq!(r.code, EXIT_DAMAGED, "{}", r.all());
    let report = r.json();
    let checks = checks(&report);
    assert_eq!(checks["neo4j load"].0, "passed", "{report}");
    assert_eq!(checks["neo4j consistency"].0, "failed", "{report}");
    assert_contains(
        &checks["neo4j consistency"].1,
        "neostore.nodestore.db",
        "the failed check names the damaged file",
    );
    assert_eq!(checks["rushdb health"].0, "skipped", "{report}");
    assert_eq!(report["passed"], false);
    assert!(
        stack.drill_objects().is_empty(),
        "{:?}",
        stack.drill_objects()
    );
    let text = rbk(&env, &["verify", "latest", "--restore-test"]);
    assert_eq!(text.code, EXIT_DAMAGED, "{}", text.all());
    assert_contains(&text.stdout, "FAIL  neo4j consistency", "text report");
    let table = rbk_ok(&env, &["snapshots"]);
    assert_contains(&table.stdout, "FAILED restore-test", "snapshots");
    // And `rbk status` says so, until a drill passes.
    let st = rbk(&env, &["status"]);
    assert_eq!(st.code, EXIT_NEEDS_ATTENTION, "{}", st.all());
    assert_contains(&st.stdout, "the last restore-test verification", "status");
    assert_contains(&st.stdout, "neo4j consistency", "status");
}

/// SIGTERM while the drill's containers exist: exit 130, nothing of the drill left, the
/// production stack untouched. Then a drill killed with SIGKILL (no teardown at all) leaves
/// its objects, and the next drill removes them and says so.
#[test]
fn a_drill_cut_short_leaves_nothing_behind() {
    let Some(_turn) = docker_test("a_drill_cut_short_leaves_nothing") else {
        return;
    };
    let stack = Stack::up("drill_cut", Variant::Postgres);
    stack.graph(&["graph-fill", "100"]);
    let env = Env::new();
    stack_snapshot(&env, &[]);
    stack.wait_running(&SERVICES);
    let before = stack.started_at(&SERVICES);

    for signal in [libc::SIGTERM, libc::SIGKILL] {
        let child = rbk_cmd(&env, &["verify", "latest", "--restore-test"])
            .spawn()
            .expect("spawn rbk");
        let pid = child.id() as i32;
        wait_until(Duration::from_secs(60), "a drill container exists", || {
            stack
                .drill_objects()
                .iter()
                .any(|o| o.starts_with("container "))
        });
        // SAFETY: the pid is our own child's.
        unsafe { libc::kill(pid, signal) };
        let out = wait_with_guard(child, Duration::from_secs(120), "the drill");
        if signal == libc::SIGTERM {
            assert_eq!(out.code, 130, "{}", out.all());
            assert_contains(&out.stderr, "the drill was torn down", "SIGTERM");
            assert!(
                stack.drill_objects().is_empty(),
                "{:?}",
                stack.drill_objects()
            );
        } else {
            assert_eq!(out.code, -1, "killed by SIGKILL: {}", out.all());
            assert!(
                !stack.drill_objects().is_empty(),
                "a killed drill leaves its objects"
            );
        }
    }
    // The next drill removes the killed one's leftovers first, then runs.
    let r = drill(&env, &["latest"]);
    assert_eq!(r.code, EXIT_OK, "{}", r.all());
    assert_contains(
        &r.json()["warnings"].to_string(),
        "that an interrupted rbk left behind",
        "leftovers reported",
    );
    assert!(
        stack.drill_objects().is_empty(),
        "{:?}",
        stack.drill_objects()
    );
    assert_eq!(
        stack.started_at(&SERVICES),
        before,
        "no production container restarted"
    );
}

#[test]
fn a_drill_of_a_sqlite_stack_passes() {
    let Some(_turn) = docker_test("a_drill_of_a_sqlite_stack_passes") else {
        return;
    };
    let stack = Stack::up("drill_sqlite", Variant::Sqlite);
    stack.graph(&["graph-fill", "50"]);
    let env = Env::new();
    stack_snapshot(&env, &[]);
    let r = drill(&env, &["latest"]);
    assert_eq!(r.code, EXIT_OK, "{}", r.all());
    let report = r.json();
    let checks = checks(&report);
    assert_eq!(checks["sql load"].0, "passed", "{report}");
    assert_eq!(checks["sql rows"].0, "skipped", "{report}");
    assert_eq!(checks["graph counts"].0, "passed", "{report}");
    assert_eq!(checks["rushdb health"].0, "passed", "{report}");
    assert!(
        stack.drill_objects().is_empty(),
        "{:?}",
        stack.drill_objects()
    );
}
