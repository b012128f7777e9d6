//! Proves the write pause is recorded phase by phase, and that Neo4j serves again as soon as its own dump is over, while the SQL is still being dumped.

use serde_json::Value;

use super::*;

/// Rows of about 100 bytes in a table of their own: enough for `pg_dump` to run for
/// seconds after the stand-in's small graph is dumped.
const BULK_ROWS: u64 = 1_000_000;

fn phase<'a>(phases: &'a [Value], name: &str, report: &Value) -> &'a Value {
    phases
        .iter()
        .find(|p| p["phase"] == name)
        .unwrap_or_else(|| panic!("no phase {name:?} in {report}"))
}

fn start(p: &Value) -> u64 {
    p["start_ms"].as_u64().expect("start_ms")
}

fn end(p: &Value) -> u64 {
    start(p) + p["ms"].as_u64().expect("ms")
}

/// A stack snapshot records each phase of its pause, in `snapshot --json` and in the
/// manifest (`pause.phases`), and prints them. The phases fit together: Neo4j stops after
/// RushDB and after the counts; it starts again once its dump is over, *before* the long SQL
/// dump ends (the point of the order); RushDB starts only after every dump and once Neo4j is
/// healthy again, and its start ends the pause.
#[test]
fn stack_pause_phases() {
    let Some(_turn) = docker_test("stack_pause_phases") else {
        return;
    };
    let started = Instant::now();
    let stack = Stack::up("pause", Variant::Postgres);
    stack.psql(&format!(
        "create table bulk as select g as id, md5(g::text) || md5((g + 1)::text) || \
         md5((g + 2)::text) as pad from generate_series(1, {BULK_ROWS}) g"
    ));
    let env = Env::new();
    let s1 = stack_snapshot(&env, &[]);
    let phases = s1["pause_phases"]
        .as_array()
        .unwrap_or_else(|| panic!("no pause_phases in {s1}"));
    let names: Vec<&str> = phases.iter().filter_map(|p| p["phase"].as_str()).collect();
    println!("phases: {phases:?}");
    for (i, first) in [
        "stop rushdb",
        "count stores",
        "stop neo4j",
        "dump neo4j",
        "start neo4j",
        "wait neo4j healthy",
        "start rushdb",
    ]
    .windows(2)
    .map(|w| (w[0], w[1]))
    .enumerate()
    {
        let (a, b) = first;
        assert!(
            end(phase(phases, a, &s1)) <= start(phase(phases, b, &s1)),
            "{i}: {a} ends before {b} begins: {s1}"
        );
    }
    assert_eq!(names.len(), 8, "{s1}");
    let sql = phase(phases, "dump sql", &s1);
    let neo4j_start = phase(phases, "start neo4j", &s1);
    assert!(
        start(sql) >= end(phase(phases, "stop neo4j", &s1)),
        "the SQL is dumped in the pause: {s1}"
    );
    assert!(
        end(neo4j_start) < end(sql),
        "Neo4j starts again while the SQL is still being dumped: {s1}"
    );
    let rushdb_start = phase(phases, "start rushdb", &s1);
    assert!(start(rushdb_start) >= end(sql), "{s1}");
    let pause = s1["pause_ms"].as_u64().expect("pause_ms");
    assert!(
        end(rushdb_start).abs_diff(pause) < 1000,
        "RushDB's start ends the pause: {s1}"
    );
    // The manifest keeps them.
    let listed = list(&env);
    let recorded: Value =
        serde_json::from_str(listed[0]["labels"]["pause.phases"].as_str().expect("label"))
            .expect("pause.phases is JSON");
    assert_eq!(&recorded, &s1["pause_phases"]);
    stack.wait_running(&["rushdb", "neo4j", "postgres"]);

    // The text report shows where the pause went.
    let r = rbk_done(&env, &["snapshot"]);
    for name in [
        "stop rushdb",
        "dump sql",
        "wait neo4j healthy",
        "start rushdb",
    ] {
        assert_contains(&r.stdout, name, "the text report");
    }
    stack.wait_running(&["rushdb", "neo4j", "postgres"]);
    println!(
        "pause phases: pause {pause} ms, SQL dump {} ms; whole test {:.1} s",
        sql["ms"],
        started.elapsed().as_secs_f64()
    );
}
