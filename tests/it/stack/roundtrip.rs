//! Proves stack snapshots and restores round-trip: both stores of the first state come back exactly, the second snapshot stores only what changed.

use serde_json::Value;

use super::*;

const PROJECTS: &str = "select id, name, token from projects order by id";
const SETTINGS: &str = "select key, value from settings order by key";

/// The value `pg_dump` gives `heartbeat_id_seq`: the highest heartbeat id the dump holds
/// (rushdb is stopped before the dump, so no later id exists in it).
pub(super) fn heartbeat_seq(sql: &str) -> u64 {
    let line = sql
        .lines()
        .find(|l| l.contains("setval('public.heartbeat_id_seq'"))
        .unwrap_or_else(|| panic!("no setval of heartbeat_id_seq in {PG}"));
    let n = line.split(',').nth(1).expect("setval value").trim();
    n.parse()
        .unwrap_or_else(|_| panic!("bad setval line {line:?}"))
}

/// Rows in the dump's `COPY public.<table>` block.
fn copy_rows(sql: &str, table: &str) -> usize {
    let head = format!("COPY public.{table} ");
    let mut in_copy = false;
    let mut n = 0;
    for l in sql.lines() {
        if l.starts_with(&head) {
            in_copy = true;
        } else if in_copy && l == "\\." {
            return n;
        } else if in_copy {
            n += 1;
        }
    }
    panic!("no COPY block for {table} in {PG}");
}

/// What every stack snapshot must show in `rbk snapshots --json`.
fn assert_listed_as_stack(listed: &[Value], reports: &[&Value], project: &str) {
    assert_eq!(listed.len(), reports.len(), "{listed:?}");
    for (l, r) in listed.iter().zip(reports) {
        assert_eq!(l["id"], r["id"]);
        let pause = l["pause_ms"]
            .as_u64()
            .unwrap_or_else(|| panic!("no pause_ms in {l}"));
        assert!(pause > 0, "the pause window is recorded: {l}");
        assert_eq!(l["pause_ms"], r["pause_ms"], "list and report agree");
        assert_eq!(l["labels"]["rbk.kind"], "stack", "{l}");
        assert_eq!(l["labels"]["compose.project"], project, "{l}");
        assert_eq!(
            l["labels"]["pause.ms"].as_str(),
            Some(pause.to_string().as_str())
        );
    }
}

/// Postgres variant. The first state: three projects, settings, heartbeats, 40,000 graph
/// records plus two named ones. Then rows updated, inserted and deleted, graph records
/// rewritten, a second snapshot, and a restore of the first.
///
/// The graph store is compared file by file, exactly: the Neo4j stand-in appends a checkpoint
/// to `checkpoint.0` on every graceful stop, so "the files before the snapshot" are not what
/// the dump holds. What the dump holds is decoded from `restore --to` (zstd and GNU tar in a
/// container, not rbk's codec); the running store right after the first snapshot must equal
/// it (the dump captured the store as the stop left it, and starting Neo4j changes nothing),
/// and the running store right after the restore must equal it again (the restore stops
/// Neo4j, which appends a checkpoint to the *current* store, then loads the dump over it).
/// The records themselves are compared through `graph-read` as well.
///
/// Heartbeats never stop while rushdb runs, so the first state's heartbeat rows are those
/// with an id up to the sequence value in the first dump: those rows, read from the live
/// database right after the first snapshot, must be back exactly, and every row above that
/// id after the restore must have been written after it (the heartbeats resumed).
#[test]
fn stack_round_trip_postgres() {
    let Some(_turn) = docker_test("stack_round_trip_postgres") else {
        return;
    };
    let started = Instant::now();
    let stack = Stack::up("roundtrip", Variant::Postgres);
    let up_took = started.elapsed();

    // ---- the first state
    stack.psql(
        "insert into projects (name, token) values \
         ('alpha', 'tok-alpha'), ('beta', 'tok-beta'), ('gamma', 'tok-gamma')",
    );
    // About 10 MB of store (a 9 MB dump), so that dedup has something to save.
    stack.graph(&["graph-fill", "40000"]);
    stack.graph(&["graph-write", "movie:1", "The Matrix"]);
    stack.graph(&["graph-write", "person:1", "Keanu Reeves"]);
    let graph_a = stack.graph_records();
    let projects_a = stack.psql(PROJECTS);
    let settings_a = stack.psql(SETTINGS);
    let heartbeats_before = stack.psql("select id, at, host, pid from heartbeat order by id");
    assert_eq!(lines(&projects_a).len(), 3, "{projects_a}");
    assert!(settings_a.contains("encryption_key_check"), "{settings_a}");

    let env = Env::new();
    let s1 = stack_snapshot(&env, &[]);
    let id1 = id_of(&s1);
    assert_eq!(part_names(&s1), [GRAPH, PG], "{s1}");
    stack.wait_running(&["rushdb", "neo4j", "postgres"]);
    // Neo4j was started again and nothing has stopped it since.
    let store_after_s1 = stack.store_files();
    let dir1 = restore_to(&env, &id1, "s1");
    let dumped = dump_files(&dir1.join(GRAPH));
    assert_eq!(
        store_after_s1, dumped,
        "the dump holds exactly the store files as they were on disk"
    );
    let sql1 = std::fs::read_to_string(dir1.join(PG)).expect("read metadata.sql");
    let last_hb = heartbeat_seq(&sql1);
    let heartbeats_a = stack.psql(&format!(
        "select id, at, host, pid from heartbeat where id <= {last_hb} order by id"
    ));
    assert_eq!(
        lines(&heartbeats_a).len(),
        copy_rows(&sql1, "heartbeat"),
        "the dump holds every heartbeat row up to id {last_hb}"
    );
    assert!(
        heartbeats_a.starts_with(&heartbeats_before),
        "every heartbeat recorded before the snapshot is in it"
    );

    // ---- changes
    stack.psql("update projects set token = 'rotated' where name = 'alpha'");
    stack.psql("insert into projects (name, token) values ('delta', 'tok-delta')");
    stack.psql("delete from projects where name = 'beta'");
    stack.psql("delete from heartbeat where id <= 3");
    stack.psql("insert into settings (key, value) values ('theme', 'dark')");
    stack.wait_graph();
    stack.graph(&["graph-write", "movie:1", "The Matrix Reloaded"]);
    stack.graph(&["graph-write", "movie:2", "The Matrix Revolutions"]);
    stack.graph(&["graph-fill", "50", "7"]);
    assert_ne!(stack.psql(PROJECTS), projects_a);
    assert_ne!(stack.psql(SETTINGS), settings_a);
    assert_ne!(stack.graph_records(), graph_a);
    stack.settle();

    let r = rbk_done(&env, &["--json", "--progress", "json", "snapshot"]);
    let s2 = r.json();
    let events = progress_events(&r.stderr);
    // The dumps run in parallel, so their tasks start in either order.
    let mut labels = task_labels(&events);
    assert_eq!(labels.len(), 4, "{events:?}");
    labels[1..3].sort();
    let mut parts = [GRAPH, PG];
    parts.sort();
    assert_eq!(
        labels,
        ["stop stack", parts[0], parts[1], "start stack"],
        "{events:?}"
    );
    for p in s2["parts"].as_array().expect("parts") {
        let name = p["name"].as_str().expect("part name");
        assert_eq!(
            task_end(&events, name)["done"],
            p["source_size"],
            "progress counts {name}'s bytes as read from the dump"
        );
    }
    let (read2, added2) = (u64_of(&s2, "bytes_read"), u64_of(&s2, "bytes_added"));
    let (chunks2, new2) = (u64_of(&s2, "chunks"), u64_of(&s2, "new_chunks"));
    println!(
        "second snapshot: read {read2} B, added {added2} B ({:.2} %), {new2} of {chunks2} chunks new; \
         pause {} ms then {} ms",
        100.0 * added2 as f64 / read2 as f64,
        s1["pause_ms"],
        s2["pause_ms"]
    );
    assert!(
        added2 * 10 < read2,
        "a few changed records and rows store a small fraction: added {added2} of {read2} bytes"
    );
    assert!(new2 * 4 < chunks2, "{new2} of {chunks2} chunks new");
    stack.settle();
    assert_ne!(
        stack.store_files(),
        dumped,
        "the store changed since the first snapshot (or the comparison proves nothing)"
    );

    // ---- restore the first state into the running stack
    let before_restore = stack.psql("select now()").trim().to_string();
    let r = rbk_done(
        &env,
        &["--json", "--progress", "json", "restore", &id1[..12]],
    );
    let report = r.json();
    // Every byte is verified before the stack is touched, then each part is loaded.
    let events = progress_events(&r.stderr);
    assert_eq!(
        task_labels(&events),
        [
            &format!("verify {GRAPH}"),
            &format!("verify {PG}"),
            "stop rushdb",
            "stop neo4j",
            GRAPH,
            PG,
            "start rushdb"
        ],
        "{events:?}"
    );
    assert_eq!(report["snapshot"], id1.as_str(), "{report}");
    assert_eq!(report["project"], stack.project.as_str(), "{report}");
    assert_eq!(
        report["restored"],
        serde_json::json!([GRAPH, PG]),
        "{report}"
    );
    println!("restore: RushDB down for {} ms", report["downtime_ms"]);
    stack.wait_running(&["rushdb", "neo4j", "postgres"]);

    // The store files first: nothing may stop Neo4j between the restore and this look.
    assert_eq!(
        stack.store_files(),
        dumped,
        "the graph store is back file for file"
    );
    assert_eq!(stack.graph_records(), graph_a, "every graph record is back");
    assert_eq!(stack.psql(PROJECTS), projects_a, "projects are back");
    assert_eq!(stack.psql(SETTINGS), settings_a, "settings are back");
    assert_eq!(
        stack.psql(&format!(
            "select id, at, host, pid from heartbeat where id <= {last_hb} order by id"
        )),
        heartbeats_a,
        "the first state's heartbeats are back, and only those"
    );
    assert_eq!(
        stack
            .psql(&format!(
                "select count(*) from heartbeat where id > {last_hb} and at < '{before_restore}'"
            ))
            .trim(),
        "0",
        "rows written after the first snapshot are gone"
    );
    stack.wait_heartbeats(last_hb);

    // ---- the listing
    assert_listed_as_stack(&list(&env), &[&s1, &s2], &stack.project);
    println!(
        "round trip (postgres): compose up {:.1} s, whole test {:.1} s",
        up_took.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
}

/// SQLite variant: `rushdb.db` on rushdb's volume instead of postgres.
#[test]
fn stack_round_trip_sqlite() {
    let Some(_turn) = docker_test("stack_round_trip_sqlite") else {
        return;
    };
    let started = Instant::now();
    let stack = Stack::up("sqlite", Variant::Sqlite);
    stack.sqlite(
        "insert into projects (name, token) values \
         ('alpha', 'tok-alpha'), ('beta', 'tok-beta'), ('gamma', 'tok-gamma')",
    );
    stack.graph(&["graph-write", "movie:1", "The Matrix"]);
    let projects_a = stack.sqlite(PROJECTS);
    let settings_a = stack.sqlite(SETTINGS);
    assert_eq!(lines(&projects_a).len(), 3, "{projects_a}");

    let env = Env::new();
    let s1 = stack_snapshot(&env, &[]);
    let id1 = id_of(&s1);
    assert_eq!(part_names(&s1), [GRAPH, SQLITE], "{s1}");
    // The SQLite file copied out of the container is whole by its header, and so is the dump.
    let verified = env.ok(&["--json", "verify", &id1[..8]]).json();
    assert_eq!(
        verified_checks(&verified),
        ["neo4j-dump", "sqlite"],
        "{verified}"
    );

    // The file rbk stored, queried by the host's sqlite3.
    let dir1 = restore_to(&env, &id1, "s1");
    let db = dir1.join(SQLITE);
    let host_sqlite = |sql: &str| -> String {
        let out = Command::new("sqlite3")
            .arg("-batch")
            .arg(&db)
            .arg(sql)
            .output()
            .expect("run the host's sqlite3 (apt-get install sqlite3)");
        assert!(
            out.status.success(),
            "sqlite3 {sql:?} on {}:\n{}",
            db.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert_eq!(host_sqlite("pragma integrity_check").trim(), "ok");
    assert_eq!(host_sqlite(PROJECTS), projects_a);
    assert_eq!(host_sqlite(SETTINGS), settings_a);
    let last_hb: u64 = host_sqlite("select max(id) from heartbeat")
        .trim()
        .parse()
        .expect("heartbeats in the copy");
    let heartbeats_a = host_sqlite("select id, at, host, pid from heartbeat order by id");
    let live_first =
        format!("select id, at, host, pid from heartbeat where id <= {last_hb} order by id");
    assert_eq!(
        stack.sqlite(&live_first),
        heartbeats_a,
        "the copy is the database as it was when rushdb stopped"
    );

    // ---- changes
    stack.sqlite("update projects set token = 'rotated' where name = 'alpha'");
    stack.sqlite("insert into projects (name, token) values ('delta', 'tok-delta')");
    stack.sqlite("delete from projects where name = 'beta'");
    stack.sqlite("delete from heartbeat where id <= 3");
    stack.wait_graph();
    stack.graph(&["graph-write", "movie:1", "The Matrix Reloaded"]);
    assert_ne!(stack.sqlite(PROJECTS), projects_a);
    stack_snapshot(&env, &[]);
    stack.settle();

    // ---- restore
    let r = rbk_done(&env, &["--json", "restore", &id1]);
    assert_eq!(
        r.json()["restored"],
        serde_json::json!([GRAPH, SQLITE]),
        "{}",
        r.stdout
    );
    stack.wait_running(&["rushdb", "neo4j"]);
    assert_eq!(stack.sqlite(PROJECTS), projects_a, "projects are back");
    assert_eq!(stack.sqlite(SETTINGS), settings_a, "settings are back");
    assert_eq!(
        stack.sqlite(&live_first),
        heartbeats_a,
        "the first state's heartbeats are back"
    );
    stack.wait_graph();
    assert_eq!(stack.graph(&["graph-read", "movie:1"]).trim(), "The Matrix");
    stack.wait_heartbeats(last_hb);
    let listed = list(&env);
    assert_eq!(listed.len(), 2);
    for l in &listed {
        assert!(l["pause_ms"].as_u64().unwrap_or(0) > 0, "{l}");
        assert_eq!(l["labels"]["sql.kind"], "sqlite", "{l}");
    }
    println!(
        "round trip (sqlite): whole test {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// The JSON progress lines among a run's stderr (warnings are lines of their own).
fn progress_events(stderr: &str) -> Vec<Value> {
    stderr
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// Task labels in the order the tasks started.
fn task_labels(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .filter(|e| e["type"] == "start")
        .map(|e| e["label"].as_str().unwrap_or_default().to_string())
        .collect()
}

fn task_end<'a>(events: &'a [Value], label: &str) -> &'a Value {
    events
        .iter()
        .find(|e| e["type"] == "end" && e["label"] == label)
        .unwrap_or_else(|| panic!("no end of task {label}: {events:?}"))
}
