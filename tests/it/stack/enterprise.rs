//! Proves the Neo4j Enterprise path: the server keeps running while only its database is stopped (STOP DATABASE) for the dump and started again on every way out, and the snapshot restores; volume mode stops the whole server.

use super::*;
use crate::stack::volume_mode;

const PROJECTS: &str = "select id, name, token from projects order by id";
/// The neo4j password of these stacks: distinctive, so a test can tell it never leaked.
const SECRET: &str = "Ent3rprise-s3cret/with-slash";

/// `compose.enterprise.yaml` over `compose.yaml` (the neo4j service says it is Enterprise, so
/// the stand-in `cypher-shell` accepts STOP/START DATABASE), with the password above.
fn enterprise_stack(test: &str) -> Stack {
    let yaml =
        format!("services:\n  neo4j:\n    environment:\n      NEO4J_AUTH: 'neo4j/{SECRET}'\n");
    let stack = Stack::up_layered(
        test,
        Variant::Postgres,
        &["compose.enterprise.yaml"],
        Some(&yaml),
    );
    let env = inspect(&stack.neo4j(), "{{json .Config.Env}}");
    assert!(
        env.contains("NEO4J_EDITION=enterprise"),
        "the override applies"
    );
    assert!(env.contains(SECRET), "the password override applies");
    stack
}

/// The STOP/START DATABASE lines the stand-in `cypher-shell` appended to /logs/neo4j.log
/// (`STOP DATABASE neo4j by neo4j: ...`), in order.
fn database_log(stack: &Stack) -> Vec<String> {
    docker(&["exec", &stack.neo4j(), "cat", "/logs/neo4j.log"])
        .lines()
        .filter_map(|l| {
            let at = l.find("DATABASE neo4j by ")?;
            let verb = l[..at].trim_end().rsplit(' ').next()?;
            Some(format!("{verb} {}", &l[at..]))
        })
        .map(|l| l.split(':').next().unwrap_or_default().to_string())
        .collect()
}

/// The database `neo4j` is online: no STOP DATABASE marker, and the graph helpers (clients of
/// the server) can read it.
fn assert_database_online(stack: &Stack, what: &str) {
    let marker = docker_out(&[
        "exec",
        &stack.neo4j(),
        "test",
        "-e",
        "/data/dbms/stopped-databases/neo4j",
    ]);
    assert!(
        !marker.status.success(),
        "{what}: the database neo4j was left stopped"
    );
    stack.wait_graph();
}

/// The neo4j container keeps running through the snapshot (`{{.State.StartedAt}}` unchanged)
/// while its database is stopped and started again (the stand-in logs both), rushdb is stopped
/// and started. The dump holds the store as STOP DATABASE left it (its checkpoint included),
/// which is the store after the snapshot; restoring it (which stops neo4j, as `load` needs)
/// brings back the graph and the SQL metadata. The password never shows in rbk's output (at
/// `-v`; `-vv` turns on the Docker client's own debug log, which shows request bodies).
#[test]
fn stack_enterprise_stops_only_the_database_and_restores() {
    let Some(_turn) = docker_test("stack_enterprise_stops_only_the_database_and_restores") else {
        return;
    };
    let started = Instant::now();
    let stack = enterprise_stack("enterprise");
    stack.psql("insert into projects (name, token) values ('alpha', 'tok-alpha')");
    stack.graph(&["graph-fill", "3000"]);
    stack.graph(&["graph-write", "movie:1", "The Matrix"]);
    let graph_a = stack.graph_records();
    let projects_a = stack.psql(PROJECTS);

    let env = Env::new();
    let plan = rbk_ok(&env, &["--json", "snapshot", "--dry-run"]).json();
    assert_eq!(
        plan["stops"],
        serde_json::json!([stack.rushdb()]),
        "only rushdb stops as a container: {plan}"
    );
    assert_contains(&plan["graph"].to_string(), "STOP DATABASE", "the plan");

    let neo4j_started = stack.started_at(&["neo4j"]);
    let rushdb_started = stack.started_at(&["rushdb"]);
    let store_before = stack.store_files();
    assert_eq!(database_log(&stack), Vec::<String>::new());
    let run = rbk_done(&env, &["-v", "--json", "snapshot"]);
    assert!(
        !run.all().contains(SECRET),
        "the neo4j password leaked into rbk's output:\n{}",
        run.all()
    );
    let s1 = run.json();
    let id1 = id_of(&s1);
    assert_eq!(part_names(&s1), [GRAPH, PG], "{s1}");
    assert_eq!(
        stack.started_at(&["neo4j"]),
        neo4j_started,
        "the neo4j container was not stopped"
    );
    assert_eq!(
        database_log(&stack),
        [
            "STOP DATABASE neo4j by neo4j",
            "START DATABASE neo4j by neo4j"
        ],
        "the database was stopped for the dump and started again"
    );
    assert_database_online(&stack, "after the snapshot");
    stack.wait_running(&["rushdb"]);
    assert_ne!(
        stack.started_at(&["rushdb"]),
        rushdb_started,
        "rushdb was stopped and started"
    );
    assert_eq!(stack.oneoffs(), Vec::<String>::new(), "no one-off left");
    assert!(u64_of(&s1, "pause_ms") > 0, "{s1}");
    let listed = list(&env);
    assert_eq!(
        listed[0]["labels"]["neo4j.edition"], "enterprise",
        "{listed:?}"
    );
    let dir1 = restore_to(&env, &id1, "s1");
    let dumped = dump_files(&dir1.join(GRAPH));
    let store_after = stack.store_files();
    assert_eq!(
        dumped, store_after,
        "the dump holds the store files as the stopped database left them"
    );
    assert_ne!(
        dumped, store_before,
        "the dump was taken after STOP DATABASE (which checkpoints), not from the online store"
    );

    // ---- changes, then the restore
    stack.settle();
    stack.graph(&["graph-write", "movie:1", "The Matrix Reloaded"]);
    stack.psql("update projects set token = 'rotated' where name = 'alpha'");
    assert_ne!(stack.graph_records(), graph_a);
    stack.settle();
    let report = rbk_done(&env, &["--json", "restore", &id1]).json();
    assert_eq!(
        report["restored"],
        serde_json::json!([GRAPH, PG]),
        "{report}"
    );
    stack.wait_running(&["rushdb", "neo4j", "postgres"]);
    assert_eq!(
        stack.store_files(),
        dumped,
        "the graph store is back file for file"
    );
    assert_eq!(stack.graph_records(), graph_a, "every graph record is back");
    assert_eq!(stack.psql(PROJECTS), projects_a, "projects are back");
    stack.wait_heartbeats(stack.max_heartbeat());

    // ---- volume mode needs the server stopped: on Enterprise it stops the container, not
    // only the database (STOP DATABASE would leave `system` and its logs being written)
    let plan = rbk_ok(
        &env,
        &["--json", "snapshot", "--dry-run", "--neo4j-mode", "volume"],
    )
    .json();
    assert_eq!(
        plan["stops"],
        serde_json::json!([stack.rushdb(), stack.neo4j()]),
        "{plan}"
    );
    let sv = stack_snapshot(&env, &["--neo4j-mode", "volume"]);
    assert_eq!(part_names(&sv), [volume_mode::VOLUME, PG], "{sv}");
    let phases = phase_names(&sv);
    assert!(phases.contains(&"stop neo4j"), "{phases:?}");
    assert!(phases.contains(&"start neo4j"), "{phases:?}");
    assert!(!phases.contains(&"stop neo4j database"), "{phases:?}");
    stack.settle();
    assert_eq!(stack.graph_records(), graph_a, "the graph serves again");
    let dir = restore_to(&env, &id_of(&sv), "sv");
    assert_eq!(
        volume_mode::tar_volume(&dir.join(volume_mode::VOLUME)),
        volume_mode::running_volume(&stack),
        "the part is the stopped server's volume"
    );
    println!(
        "enterprise, database stopped for the dump: pause {} ms; volume mode, server stopped: pause {} ms; whole test {:.1} s",
        s1["pause_ms"],
        sv["pause_ms"],
        started.elapsed().as_secs_f64()
    );
}

/// STOP DATABASE fails (the stand-in's `CYPHER_SHELL_FAIL_STOP` knob): the snapshot fails with
/// cypher-shell's stderr, commits nothing, starts rushdb again and leaves the database online
/// and the neo4j container untouched. With the knob gone the next snapshot succeeds.
#[test]
fn stack_enterprise_stop_database_failing_commits_nothing() {
    let Some(_turn) = docker_test("stack_enterprise_stop_database_failing_commits_nothing") else {
        return;
    };
    let started = Instant::now();
    let stack = enterprise_stack("eestopfail");
    stack.graph(&["graph-fill", "500"]);
    let env = Env::new();
    stack.set_knob("CYPHER_SHELL_FAIL_STOP", "1");
    let listed = list(&env);
    let packs = env.packs();
    let neo4j_started = stack.started_at(&["neo4j"]);
    let rushdb_started = stack.started_at(&["rushdb"]);
    let postgres_started = stack.started_at(&["postgres"]);

    let r = rbk(&env, &["snapshot"]);
    println!("the failed snapshot said:\n{}", r.stderr.trim());
    assert_not_done(&r, "the snapshot must fail");
    assert_ne!(r.code, -1, "rbk died by a signal:\n{}", r.all());
    for needle in [
        "STOP DATABASE",
        "Failed to stop database 'neo4j': simulated failure (CYPHER_SHELL_FAIL_STOP)",
    ] {
        assert_contains(&r.stderr, needle, "the error message");
    }
    assert!(
        !r.all().contains(SECRET),
        "the password leaked:\n{}",
        r.all()
    );
    assert_eq!(list(&env), listed, "a snapshot was committed");
    assert_eq!(env.packs(), packs, "packs were left behind");
    assert_eq!(stack.oneoffs(), Vec::<String>::new(), "a one-off was left");
    stack.wait_running(&["rushdb"]);
    assert_ne!(
        stack.started_at(&["rushdb"]),
        rushdb_started,
        "rushdb was stopped, then started again"
    );
    assert_eq!(
        stack.started_at(&["neo4j"]),
        neo4j_started,
        "neo4j untouched"
    );
    assert_eq!(
        stack.started_at(&["postgres"]),
        postgres_started,
        "postgres untouched"
    );
    assert_database_online(&stack, "after the failed STOP");
    stack.settle();
    let (c, v) = env.check(false);
    // A pack the failed run left in no index is a warning (6), not damage.
    assert_eq!(c.code, check_code_for(&v), "rbk check:\n{}", c.all());
    assert_eq!(v["errors"], serde_json::json!([]), "{v}");

    stack.clear_knobs();
    stack_snapshot(&env, &[]);
    assert_eq!(list(&env).len(), listed.len() + 1);
    assert_database_online(&stack, "after the next snapshot");
    println!(
        "enterprise STOP DATABASE failing: whole test {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// Ctrl-C (SIGINT), then SIGTERM, while the dump of the stopped database hangs halfway
/// (`NEO4J_ADMIN_STALL_AFTER_BYTES`): rbk removes the one-off dump container (which holds the
/// database, so START DATABASE could not succeed before), starts the database and then rushdb,
/// and exits 130; nothing saved, the neo4j container never stopped.
#[test]
fn stack_enterprise_interrupted_mid_dump_starts_the_database_again() {
    let Some(_turn) =
        docker_test("stack_enterprise_interrupted_mid_dump_starts_the_database_again")
    else {
        return;
    };
    let started = Instant::now();
    let stack = enterprise_stack("eeinterrupt");
    stack.graph(&["graph-fill", "2500"]);
    let env = Env::new();
    stack_snapshot(&env, &[]);
    stack.settle();
    stack.set_knob("NEO4J_ADMIN_STALL_AFTER_BYTES", "100000");
    let neo4j_started = stack.started_at(&["neo4j"]);

    for (signal, name) in [(libc::SIGINT, "SIGINT"), (libc::SIGTERM, "SIGTERM")] {
        let listed = list(&env);
        let packs = env.packs();
        let log_before = database_log(&stack).len();
        let child = rbk_cmd(&env, &["snapshot"]).spawn().expect("spawn rbk");
        // The dump runs in its one-off container and has stalled: the database is stopped.
        wait_until(RBK_GUARD, "the one-off dump has stalled", || {
            let running = stack.running_oneoffs();
            running.len() == 1
                && docker_out(&["logs", &running[0]])
                    .stderr
                    .windows(b"stalling after".len())
                    .any(|w| w == b"stalling after")
        });
        assert_eq!(
            database_log(&stack)[log_before..],
            ["STOP DATABASE neo4j by neo4j"],
            "{name}: the database is stopped during the dump"
        );
        let sent = Instant::now();
        // SAFETY: kill(2) on the pid of our own child, which has not been waited for.
        let rc = unsafe { libc::kill(child.id() as libc::pid_t, signal) };
        assert_eq!(rc, 0, "kill: {}", std::io::Error::last_os_error());
        let r = wait_with_guard(child, RBK_GUARD, &format!("rbk snapshot after {name}"));
        let took = sent.elapsed();
        println!(
            "{name}: rbk exited with {} after {} ms; it said:\n{}",
            r.code,
            took.as_millis(),
            r.stderr.trim()
        );
        assert_eq!(r.code, 130, "{name}: {}", r.all());
        assert!(
            took < Duration::from_secs(15),
            "{name}: rbk took {took:?} to exit"
        );
        assert_contains(&r.stderr, "no snapshot is saved", name);
        assert!(
            !r.stderr.contains("could not start"),
            "{name}: everything was started again:\n{}",
            r.stderr
        );
        // Done before rbk exited, not some time later.
        assert_eq!(
            stack.oneoffs(),
            Vec::<String>::new(),
            "{name}: one-off left"
        );
        assert_eq!(
            database_log(&stack)[log_before..],
            [
                "STOP DATABASE neo4j by neo4j",
                "START DATABASE neo4j by neo4j"
            ],
            "{name}: the database was started again"
        );
        assert!(is_running(&stack.rushdb()), "{name}: rushdb left stopped");
        assert_database_online(&stack, name);
        assert_eq!(list(&env), listed, "{name}: a snapshot was committed");
        assert_eq!(env.packs(), packs, "{name}: packs were left behind");
        assert_eq!(
            stack.started_at(&["neo4j"]),
            neo4j_started,
            "{name}: the neo4j container was never stopped"
        );
        stack.settle();
    }
    stack.clear_knobs();
    stack_snapshot(&env, &[]);
    println!(
        "enterprise interrupted mid-dump: whole test {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// The password Neo4j uses is no longer the one `NEO4J_AUTH` set at first start: rbk.toml's
/// `neo4j_password_file` (or `RBK_NEO4J_PASSWORD`, which wins) gives cypher-shell the right
/// one. A wrong one fails cleanly, naming cypher-shell, with nothing committed.
#[test]
fn stack_enterprise_credentials_come_from_the_configuration() {
    let Some(_turn) = docker_test("stack_enterprise_credentials_come_from_the_configuration")
    else {
        return;
    };
    let stack = enterprise_stack("eecreds");
    let env = Env::new();
    let wrong = env.write("neo4j-password", b"not-the-password\n");
    env.write(
        "rbk.toml",
        format!(
            "[stack]\nneo4j_password_file = {:?}\n",
            wrong.display().to_string()
        )
        .as_bytes(),
    );
    let listed = list(&env);

    let r = rbk(&env, &["snapshot"]);
    assert_not_done(&r, "a wrong password must fail");
    assert_contains(&r.stderr, "cypher-shell", "the error names the command");
    assert!(!r.all().contains("not-the-password"), "{}", r.all());
    assert_eq!(list(&env), listed, "a snapshot was committed");
    stack.wait_running(&["rushdb", "neo4j"]);
    assert_database_online(&stack, "after the refused STOP");

    let mut c = rbk_cmd(&env, &["--json", "snapshot"]);
    c.env("RBK_NEO4J_PASSWORD", SECRET);
    let r = wait_with_guard(c.spawn().expect("spawn"), RBK_GUARD, "rbk snapshot");
    assert_done(&r, "the environment's password wins");
    assert!(
        !r.all().contains(SECRET),
        "the password leaked:\n{}",
        r.all()
    );
    assert_eq!(
        database_log(&stack),
        [
            "STOP DATABASE neo4j by neo4j",
            "START DATABASE neo4j by neo4j"
        ]
    );
    assert_database_online(&stack, "after the snapshot");
}
