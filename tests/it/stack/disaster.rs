//! Proves disaster recovery: the stack is destroyed with its volumes, the same Compose project comes up again on empty volumes, and `rbk restore latest` with nothing but the repository and its password brings both stores back.

use super::roundtrip::heartbeat_seq;
use super::*;

const PROJECTS: &str = "select id, name, token from projects order by id";
const SETTINGS: &str = "select key, value from settings order by key";
const HEARTBEATS: &str = "select id, at, host, pid from heartbeat";

/// How the rebuilt stack stands when `rbk restore latest` runs.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Fresh {
    /// `docker compose up -d` on empty volumes: Postgres initialised its empty database,
    /// Neo4j made an empty store, RushDB created its empty schema (or SQLite file) and runs.
    Running,
    /// `docker compose up --no-start`, then only Postgres started (it is the one service rbk
    /// never stops or starts, and the SQL restore runs in it): RushDB and Neo4j never ran, so
    /// there is no schema, no SQLite file and no Neo4j store at all, only empty volumes. The
    /// Postgres database is dropped as well: the entrypoint (like the official image's) creates
    /// it before the server accepts TCP connections, which is what the healthcheck waits for,
    /// so a "not yet created" database cannot be caught by waiting; dropping it is the same
    /// state reached deterministically (a server whose `POSTGRES_DB` setup never happened).
    NeverStarted,
}

/// What the first state was, as the stores answer: compared again after the restore.
struct State {
    graph: String,
    projects: String,
    settings: String,
    /// The heartbeat rows up to the highest id the snapshot holds, and that id.
    heartbeats: String,
    last_hb: u64,
}

fn sql(stack: &Stack, q: &str) -> String {
    match stack.variant {
        Variant::Postgres => stack.psql(q),
        Variant::Sqlite => stack.sqlite(q),
    }
}

/// The highest heartbeat id the snapshot's SQL part holds, read from `restore --to` files:
/// rushdb writes heartbeats until it is stopped, so the live tables run ahead of the dump.
fn last_heartbeat_in(env: &Env, id: &str, variant: Variant) -> u64 {
    let dir = restore_to(env, id, "first");
    match variant {
        Variant::Postgres => {
            let dump = std::fs::read_to_string(dir.join(PG)).expect("read metadata.sql");
            heartbeat_seq(&dump)
        }
        Variant::Sqlite => {
            let out = Command::new("sqlite3")
                .arg("-batch")
                .arg(dir.join(SQLITE))
                .arg("select max(id) from heartbeat")
                .output()
                .expect("run the host's sqlite3 (apt-get install sqlite3)");
            assert!(out.status.success(), "{out:?}");
            String::from_utf8_lossy(&out.stdout)
                .trim()
                .parse()
                .expect("heartbeats in the copied file")
        }
    }
}

/// The project's volumes, by engine name.
fn project_volumes(stack: &Stack) -> Vec<String> {
    let label = format!("label=com.docker.compose.project={}", stack.project);
    lines(&docker(&["volume", "ls", "-q", "--filter", &label]))
}

/// The host is gone: containers and volumes removed (`down -v`), then the same Compose
/// project brought up again from its file, as on a new machine.
fn lose_and_rebuild(stack: &Stack, fresh: Fresh) {
    let volumes = project_volumes(stack);
    assert!(!volumes.is_empty(), "the stack has volumes to lose");
    // A one-off container would hold the neo4j volume, which `down -v` could not remove.
    for id in stack.oneoffs() {
        let _ = docker_out(&["rm", "-f", &id]);
    }
    let out = stack.compose(&["down", "-v", "-t", "1"], &[]);
    assert!(
        out.status.success(),
        "compose down -v:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        project_volumes(stack),
        Vec::<String>::new(),
        "down -v removed every volume of the project ({volumes:?} before)"
    );
    match fresh {
        Fresh::Running => {
            let out = stack.compose(&["up", "-d"], &[]);
            assert!(
                out.status.success(),
                "compose up:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
            // Settled, not only up: the restore stops rushdb, which ignores SIGTERM until
            // its handler is installed.
            stack.wait_heartbeats(0);
            stack.settle();
        }
        Fresh::NeverStarted => {
            let out = stack.compose(&["up", "--no-start"], &[]);
            assert!(
                out.status.success(),
                "compose up --no-start:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
            if stack.variant == Variant::Postgres {
                let pg = stack.postgres();
                docker(&["start", &pg]);
                wait_until(READY, &format!("{pg} is healthy"), || {
                    inspect(&pg, "{{.State.Health.Status}}") == "healthy"
                });
                docker(&[
                    "exec",
                    &pg,
                    "psql",
                    "-X",
                    "-q",
                    "-U",
                    "rushdb",
                    "-d",
                    "postgres",
                    "-v",
                    "ON_ERROR_STOP=1",
                    "-c",
                    "DROP DATABASE rushdb",
                ]);
            }
            for s in ["rushdb", "neo4j"] {
                assert!(!is_running(&stack.container(s)), "{s} never started");
            }
        }
    }
}

/// Asserts that the rebuilt stack holds none of the first state: the restore has to bring
/// everything back, not find it left over.
fn assert_empty(stack: &Stack, fresh: Fresh) {
    match fresh {
        Fresh::Running => {
            assert_eq!(
                stack.graph_records().trim(),
                "",
                "the new Neo4j store is empty"
            );
            assert_eq!(
                sql(stack, PROJECTS).trim(),
                "",
                "no project in the new store"
            );
        }
        Fresh::NeverStarted => {
            if stack.variant == Variant::Postgres {
                let exists = stack.psql_try("select 1");
                assert!(
                    !exists.status.success(),
                    "the database rushdb does not exist"
                );
            }
            // Neo4j's data volume and (SQLite) rushdb's are empty: nothing ever ran on them.
            let volumes = project_volumes(stack);
            for v in volumes.iter().filter(|v| !v.ends_with("postgres-data")) {
                let mount = format!("{v}:/v");
                let listed = docker(&["run", "--rm", "-v", &mount, IMAGE, "ls", "-A", "/v"]);
                assert_eq!(listed.trim(), "", "volume {v} is empty");
            }
        }
    }
}

fn disaster_recovery(test: &str, variant: Variant, fresh: Fresh) {
    let started = Instant::now();
    let stack = Stack::up(test, variant);

    // ---- the first state, in both stores
    sql(
        &stack,
        "insert into projects (name, token) values \
         ('alpha', 'tok-alpha'), ('beta', 'tok-beta'), ('gamma', 'tok-gamma')",
    );
    stack.graph(&["graph-fill", "2000"]);
    stack.graph(&["graph-write", "movie:1", "The Matrix"]);
    stack.graph(&["graph-write", "person:1", "Keanu Reeves"]);

    let old = Env::new();
    let s1 = stack_snapshot(&old, &[]);
    let id1 = id_of(&s1);
    let sql_part = match variant {
        Variant::Postgres => PG,
        Variant::Sqlite => SQLITE,
    };
    assert_eq!(part_names(&s1), [GRAPH, sql_part], "{s1}");
    stack.settle();
    // What the dump holds, decoded without rbk's codec: the store must come back to exactly it.
    let dumped = dump_files(&restore_to(&old, &id1, "s1").join(GRAPH));
    let last_hb = last_heartbeat_in(&old, &id1, variant);
    let first = State {
        graph: stack.graph_records(),
        projects: sql(&stack, PROJECTS),
        settings: sql(&stack, SETTINGS),
        heartbeats: sql(
            &stack,
            &format!("{HEARTBEATS} where id <= {last_hb} order by id"),
        ),
        last_hb,
    };
    assert_eq!(lines(&first.projects).len(), 3, "{}", first.projects);
    assert!(
        !first.heartbeats.is_empty(),
        "rushdb wrote heartbeats before the snapshot"
    );

    // ---- the night the host is gone: all that survives is the repository and its password.
    // The new machine gets a copy of the repository directory and nothing else of the old
    // environment (no cache, no restored files).
    let new = Env::empty();
    copy_tree(&old.repo, &new.repo);
    drop(old);
    lose_and_rebuild(&stack, fresh);
    assert_empty(&stack, fresh);

    // ---- the restore, on the new machine
    let listed = list(&new);
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["id"], id1.as_str());
    let restore_started = Instant::now();
    let report = rbk_done(&new, &["--json", "restore", "latest"]).json();
    let restore_took = restore_started.elapsed();
    assert_eq!(report["snapshot"], id1.as_str(), "{report}");
    assert_eq!(report["project"], stack.project.as_str(), "{report}");
    assert_eq!(
        report["restored"],
        serde_json::json!([GRAPH, sql_part]),
        "{report}"
    );
    let running: &[&str] = match variant {
        Variant::Postgres => &["rushdb", "neo4j", "postgres"],
        Variant::Sqlite => &["rushdb", "neo4j"],
    };
    stack.wait_running(running);

    // Both stores hold exactly the first state. The store files first: nothing may stop Neo4j
    // between the restore and this look (a graceful stop appends a checkpoint).
    assert_eq!(
        stack.store_files(),
        dumped,
        "the graph store is the dump, file for file"
    );
    assert_eq!(
        stack.graph_records(),
        first.graph,
        "every graph record is back"
    );
    assert_eq!(sql(&stack, PROJECTS), first.projects, "projects are back");
    assert_eq!(sql(&stack, SETTINGS), first.settings, "settings are back");
    assert_eq!(
        sql(
            &stack,
            &format!("{HEARTBEATS} where id <= {} order by id", first.last_hb)
        ),
        first.heartbeats,
        "the first state's heartbeats are back, and only those"
    );

    // RushDB answers (its health check compares the key with the one the restored database
    // was made with) and writes again, into both stores.
    stack.wait_heartbeats(first.last_hb);
    let rushdb = stack.rushdb();
    wait_until(READY, &format!("{rushdb} answers /health"), || {
        docker_out(&["exec", &rushdb, "http-ok", "http://localhost:3000/health"])
            .status
            .success()
    });
    sql(
        &stack,
        "insert into projects (name, token) values ('after', 'tok-after')",
    );
    assert_eq!(lines(&sql(&stack, PROJECTS)).len(), 4);
    stack.graph(&["graph-write", "movie:2", "The Matrix Reloaded"]);
    assert_eq!(
        stack.graph(&["graph-read", "movie:1"]).trim(),
        "The Matrix",
        "old records read beside new ones"
    );

    // The repository is whole after it was used from the new machine.
    new.assert_check_ok("after the disaster recovery");
    let name = match variant {
        Variant::Postgres => "postgres",
        Variant::Sqlite => "sqlite",
    };
    println!(
        "disaster recovery ({name}, {fresh:?}): restore {:.1} s, whole test {:.1} s",
        restore_took.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
}

#[test]
fn stack_disaster_recovery_postgres() {
    let Some(_turn) = docker_test("stack_disaster_recovery_postgres") else {
        return;
    };
    disaster_recovery("drpg", Variant::Postgres, Fresh::Running);
}

#[test]
fn stack_disaster_recovery_sqlite() {
    let Some(_turn) = docker_test("stack_disaster_recovery_sqlite") else {
        return;
    };
    disaster_recovery("drsqlite", Variant::Sqlite, Fresh::Running);
}

#[test]
fn stack_disaster_recovery_postgres_never_started() {
    let Some(_turn) = docker_test("stack_disaster_recovery_postgres_never_started") else {
        return;
    };
    disaster_recovery("drpgnew", Variant::Postgres, Fresh::NeverStarted);
}

#[test]
fn stack_disaster_recovery_sqlite_never_started() {
    let Some(_turn) = docker_test("stack_disaster_recovery_sqlite_never_started") else {
        return;
    };
    disaster_recovery("drsqlitenew", Variant::Sqlite, Fresh::NeverStarted);
}
