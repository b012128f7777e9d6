//! Host mode against real components: `rbk snapshot` / `rbk restore` with `[host]` commands, a private PostgreSQL cluster, the Neo4j stand-ins run as host processes, and sqlite3.
//!
//! PostgreSQL is the host's own (Debian's `postgresql`): each test that needs it runs initdb
//! (as the `postgres` user: initdb refuses root) into a temporary directory and starts a
//! cluster on a free port of 127.0.0.1 with trust authentication, stopped by a Drop guard.
//! rbk runs the host's real `pg_dump` and `psql` against it. Without the server binaries those
//! tests fail, unless `RBK_SKIP_HOST_PG=1` says to skip them.
//!
//! Neo4j is the stand-in of `tests/images/rootfs/usr/local/bin` (Python, the real dump
//! format), pointed at a data directory in the test's tempdir by its
//! `NEO4J_server_directories_data` variable: the server runs as a background process that holds
//! the store lock (so a load into a running Neo4j is refused, as with Community), and the test
//! writes small scripts that rbk's `[host]` commands call: `neo4j-admin` (a wrapper with the
//! environment and a stall knob), `neo4j-start`, `neo4j-stop`. Every pause, resume, stop and
//! start appends a line to an events file, so each test checks exactly what ran, in order.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;
use tempfile::TempDir;

use crate::stack::{assert_contains, lines, part_names, wait_until};
use crate::util::*;

const GRAPH: &str = "neo4j.dump";
const PG: &str = "metadata.sql";
const SQLITE: &str = "rushdb.db";
/// Upper bound for one rbk run: a deadlock guard, not a timing claim.
const GUARD: Duration = Duration::from_secs(120);
const EXIT_FAILED: i32 = 1;
const EXIT_INTERRUPTED: i32 = 130;

/// The order of commands in every complete snapshot or restore with a graph.
const FULL_CYCLE: [&str; 4] = ["pause", "neo4j-stop", "neo4j-start", "resume"];

fn standins() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/images/rootfs/usr/local/bin")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

pub(crate) fn run_out(c: &mut Command) -> Output {
    c.stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {c:?}: {e}"))
}

pub(crate) fn assert_success(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Running, and not a zombie (a zombie holds no locks).
fn alive(pid: u32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .map(|(_, rest)| rest.trim_start().to_string())
        })
        .is_some_and(|rest| !rest.starts_with('Z'))
}

fn read_pid(path: &Path) -> u32 {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.trim()
        .parse()
        .unwrap_or_else(|_| panic!("{}: not a pid: {text:?}", path.display()))
}

// ---------------------------------------------------------------- PostgreSQL

/// A private PostgreSQL cluster owned by the `postgres` user, with a role and database
/// `rushdb` (the role owns the database and may create databases, as rbk's restore needs).
struct Pg {
    dir: TempDir,
    bin: PathBuf,
    port: u16,
}

impl Pg {
    /// The cluster, or `None` when the host has no server binaries and `RBK_SKIP_HOST_PG=1`.
    fn start(test: &str) -> Option<Pg> {
        let Some(bin) = pg_bin() else {
            if std::env::var("RBK_SKIP_HOST_PG").as_deref() == Ok("1") {
                eprintln!(
                    "host::{test}: skipped: no PostgreSQL server binaries (RBK_SKIP_HOST_PG=1)"
                );
                return None;
            }
            panic!(
                "host::{test} needs PostgreSQL's server binaries (/usr/lib/postgresql/*/bin/initdb): \
                 apt-get install -y postgresql, or set RBK_SKIP_HOST_PG=1 to skip"
            );
        };
        let dir = tempfile::Builder::new()
            .prefix("rbk-it-pg-")
            .tempdir()
            .expect("tempdir");
        assert_success(
            &run_out(Command::new("chown").arg("postgres:").arg(dir.path())),
            "chown the cluster directory",
        );
        let mut pg = Pg { dir, bin, port: 0 };
        let data = pg.data();
        let initdb = pg.as_postgres(
            "initdb",
            &[
                "-D",
                &data,
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ],
        );
        assert_success(&initdb, "initdb");
        // A port found free can be taken before the server binds it: try a few.
        let mut last = None;
        for _ in 0..3 {
            pg.port = free_port();
            let options = format!(
                "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off",
                pg.port,
                pg.dir.path().display()
            );
            let log = pg.dir.path().join("server.log");
            let out = pg.as_postgres(
                "pg_ctl",
                &[
                    "-D",
                    &data,
                    "-l",
                    &log.display().to_string(),
                    "-w",
                    "-t",
                    "60",
                    "-o",
                    &options,
                    "start",
                ],
            );
            if out.status.success() {
                last = None;
                break;
            }
            last = Some(format!(
                "{}\n{}",
                String::from_utf8_lossy(&out.stderr),
                fs::read_to_string(&log).unwrap_or_default()
            ));
        }
        if let Some(e) = last {
            panic!("the PostgreSQL cluster did not start:\n{e}");
        }
        // Two calls: CREATE DATABASE cannot run in the transaction of a multi-statement -c.
        pg.sql_as("postgres", "postgres", "create role rushdb login createdb");
        pg.sql_as(
            "postgres",
            "postgres",
            "create database rushdb owner rushdb",
        );
        Some(pg)
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    /// initdb and pg_ctl refuse to run as root.
    fn as_postgres(&self, tool: &str, args: &[&str]) -> Output {
        run_out(
            Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .arg(self.bin.join(tool))
                .args(args)
                .current_dir(self.dir.path()),
        )
    }

    /// What `[host]` gets: the role and database RushDB uses.
    fn url(&self) -> String {
        format!("postgres://rushdb@127.0.0.1:{}/rushdb", self.port)
    }

    /// Unaligned rows, `|` between fields.
    fn try_sql_as(&self, user: &str, db: &str, sql: &str) -> Output {
        run_out(
            Command::new("psql")
                .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h"])
                .arg("127.0.0.1")
                .arg("-p")
                .arg(self.port.to_string())
                .args(["-U", user, "-d", db, "-c", sql]),
        )
    }

    fn sql_as(&self, user: &str, db: &str, sql: &str) -> String {
        let out = self.try_sql_as(user, db, sql);
        assert_success(&out, &format!("psql {sql:?}"));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// As RushDB: role and database `rushdb`.
    fn sql(&self, sql: &str) -> String {
        self.sql_as("rushdb", "rushdb", sql)
    }

    /// Every row RushDB keeps, and the sequence behind the ids: equal means restored.
    fn state(&self) -> String {
        self.sql(
            "select 'p', id, name, token from projects union all \
             select 's', 0, key, value from settings order by 1, 2, 3",
        ) + &self.sql("select last_value, is_called from projects_id_seq")
    }

    fn table_exists(&self, name: &str) -> bool {
        self.sql(&format!("select to_regclass('public.{name}') is not null"))
            .trim()
            == "t"
    }
}

impl Drop for Pg {
    fn drop(&mut self) {
        let data = self.data();
        let out = self.as_postgres("pg_ctl", &["-D", &data, "-m", "immediate", "stop"]);
        if !out.status.success() {
            eprintln!(
                "stopping the test cluster failed:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

/// The newest `/usr/lib/postgresql/<version>/bin` with an initdb.
fn pg_bin() -> Option<PathBuf> {
    let mut found: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| {
            let e = e.ok()?;
            let version = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, bin)| bin)
}

const PG_SCHEMA: &str = "\
    create table projects (id serial primary key, name text not null, token text not null); \
    create table settings (key text primary key, value text not null); \
    insert into projects (name, token) values \
      ('alpha', 'tok-alpha'), ('beta', 'tok-beta'), ('gamma', 'tok-gamma'); \
    insert into settings values ('encryption_key_check', 'c1f0'), ('theme', 'dark')";

const PG_CHANGES: &str = "\
    update projects set token = 'tok-rotated' where name = 'alpha'; \
    delete from projects where name = 'beta'; \
    insert into projects (name, token) values ('delta', 'tok-delta'); \
    update settings set value = 'light' where key = 'theme'; \
    create table extra (x int); insert into extra values (1)";

// ---------------------------------------------------------------- Neo4j stand-ins

/// The Neo4j stand-in on the host: data in `<dir>/data`, the server a background process
/// (pid in `<dir>/server.pid`), and the scripts `[host]` runs in `<dir>/bin`.
struct Neo4j {
    dir: PathBuf,
}

impl Neo4j {
    /// Writes the scripts and starts the server (which creates the store).
    fn new(env: &Env, events: &Path) -> Neo4j {
        let dir = env.path("neo4j");
        let bin = dir.join("bin");
        fs::create_dir_all(&bin).expect("mkdir");
        let standins = standins();
        let common = format!(
            "#!/bin/sh\n\
             export NEO4J_server_directories_data='{data}' NEO4J_server_directories_logs='{logs}' \
             NEO4J_HTTP_PORT={port}\n\
             unset NEO4J_EDITION\n\
             alive() {{ s=$(sed -n 's/.*) \\(.\\).*/\\1/p' \"/proc/$1/stat\" 2>/dev/null); \
             [ -n \"$s\" ] && [ \"$s\" != Z ]; }}\n",
            data = dir.join("data").display(),
            logs = dir.join("logs").display(),
            port = free_port(),
        );
        let d = dir.display();
        let s = standins.display();
        let e = events.display();
        let scripts = [
            (
                "neo4j-admin",
                format!(
                    "{common}echo $$ > \"{d}/$2.pid\"\n\
                     if [ \"$2\" = load ] && [ -e '{d}/stall-load' ]; then\n\
                     \x20 echo 'neo4j-admin: load stalls (test knob)' >&2; exec sleep 600\n\
                     fi\n\
                     exec '{s}/neo4j-admin' \"$@\"\n"
                ),
            ),
            (
                "neo4j-start",
                format!(
                    "{common}pid=$(cat '{d}/server.pid' 2>/dev/null)\n\
                     if [ -z \"$pid\" ] || ! alive \"$pid\"; then\n\
                     \x20 '{s}/neo4j' < /dev/null >> '{d}/server.log' 2>&1 &\n\
                     \x20 echo $! > '{d}/server.pid'\n\
                     \x20 i=0\n\
                     \x20 until '{s}/neo4j-graph' read no-such-key 2>&1 | grep -q 'no record'; do\n\
                     \x20   i=$((i+1)); [ $i -lt 300 ] || {{ echo 'neo4j did not start' >&2; exit 1; }}\n\
                     \x20   sleep 0.05\n\
                     \x20 done\n\
                     fi\n\
                     echo neo4j-start >> '{e}'\n"
                ),
            ),
            (
                "neo4j-stop",
                format!(
                    "{common}pid=$(cat '{d}/server.pid' 2>/dev/null)\n\
                     if [ -n \"$pid\" ]; then\n\
                     \x20 kill -TERM \"$pid\" 2>/dev/null\n\
                     \x20 i=0\n\
                     \x20 while alive \"$pid\"; do\n\
                     \x20   i=$((i+1)); [ $i -lt 300 ] || {{ echo 'neo4j did not stop' >&2; exit 1; }}\n\
                     \x20   sleep 0.05\n\
                     \x20 done\n\
                     fi\n\
                     echo neo4j-stop >> '{e}'\n"
                ),
            ),
            (
                "neo4j-graph",
                format!("{common}exec '{s}/neo4j-graph' \"$@\"\n"),
            ),
        ];
        for (name, text) in scripts {
            let path = bin.join(name);
            fs::write(&path, text).expect("write script");
            assert_success(
                &run_out(Command::new("chmod").arg("755").arg(&path)),
                "chmod",
            );
        }
        let neo = Neo4j { dir };
        assert_success(&run_out(&mut neo.script("neo4j-start")), "neo4j-start");
        neo
    }

    fn script(&self, name: &str) -> Command {
        Command::new(self.dir.join("bin").join(name))
    }

    /// `neo4j-graph write|fill|read ...` against the running server.
    fn graph(&self, args: &[&str]) -> String {
        let out = run_out(self.script("neo4j-graph").args(args));
        assert_success(&out, &format!("neo4j-graph {args:?}"));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Every record, in store order; the server must be serving.
    fn records(&self) -> String {
        self.graph(&["read"])
    }

    fn serves(&self) -> bool {
        let out = run_out(self.script("neo4j-graph").args(["read", "no-such-key"]));
        String::from_utf8_lossy(&out.stderr).contains("no record")
    }

    /// Name -> BLAKE3 of every file of the `neo4j` database and its transaction logs.
    fn store_files(&self) -> BTreeMap<String, String> {
        let data = self.dir.join("data");
        let mut out = BTreeMap::new();
        for (tag, root) in [
            ("db", data.join("databases/neo4j")),
            ("tx", data.join("transactions/neo4j")),
        ] {
            for (name, hash) in tree_digest(&root) {
                out.insert(format!("{tag}/{name}"), hash);
            }
        }
        assert!(out.len() > 5, "no store: {out:?}");
        out
    }

    /// The `[host]` keys for this Neo4j.
    fn config(&self) -> Vec<(&'static str, String)> {
        let bin = self.dir.join("bin");
        vec![
            ("neo4j_admin", bin.join("neo4j-admin").display().to_string()),
            (
                "neo4j_stop_command",
                bin.join("neo4j-stop").display().to_string(),
            ),
            (
                "neo4j_start_command",
                bin.join("neo4j-start").display().to_string(),
            ),
        ]
    }
}

impl Drop for Neo4j {
    fn drop(&mut self) {
        let _ = run_out(&mut self.script("neo4j-stop"));
    }
}

// ---------------------------------------------------------------- rbk in host mode

/// A repository, an events file, and `rbk` run with an `rbk.toml` of the test's making.
pub(crate) struct Host {
    pub(crate) env: Env,
    pub(crate) events: PathBuf,
}

impl Host {
    pub(crate) fn new() -> Host {
        let env = Env::new();
        let events = env.path("events");
        fs::write(&events, "").expect("events");
        Host { env, events }
    }

    /// pause/resume commands that record themselves in the events file.
    pub(crate) fn markers(&self) -> Vec<(&'static str, String)> {
        let e = self.events.display();
        vec![
            ("pause_command", format!("echo pause >> '{e}'")),
            ("resume_command", format!("echo resume >> '{e}'")),
        ]
    }

    /// Writes `[host]` with these keys to `<tmp>/NAME.toml`.
    pub(crate) fn config(&self, name: &str, keys: &[(&str, String)]) -> PathBuf {
        let mut text = String::from("[host]\n");
        for (k, v) in keys {
            let v = v.replace('\\', "\\\\").replace('"', "\\\"");
            text.push_str(&format!("{k} = \"{v}\"\n"));
        }
        self.env.write(&format!("{name}.toml"), text.as_bytes())
    }

    pub(crate) fn cmd(&self, config: &Path, args: &[&str]) -> Command {
        let mut c = self.env.cmd(args);
        c.current_dir(self.env.tmp.path())
            .env("RBK_CONFIG", config)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for var in ["PGHOST", "PGPORT", "PGUSER", "PGDATABASE", "PGSERVICE"] {
            c.env_remove(var);
        }
        c
    }

    pub(crate) fn run(&self, config: &Path, args: &[&str]) -> Run {
        let child = self.cmd(config, args).spawn().expect("spawn rbk");
        wait_with_guard(child, GUARD, &format!("rbk {args:?}"))
    }

    pub(crate) fn ok(&self, config: &Path, args: &[&str]) -> Run {
        let r = self.run(config, args);
        assert_eq!(r.code, EXIT_OK, "rbk {args:?} failed:\n{}", r.all());
        r
    }

    pub(crate) fn snapshot(&self, config: &Path) -> Value {
        self.ok(config, &["--json", "snapshot"]).json()
    }

    pub(crate) fn restore(&self, config: &Path, id: &str) -> Value {
        self.ok(config, &["--json", "restore", id]).json()
    }

    /// The events since the last call, which clears them.
    pub(crate) fn take_events(&self) -> Vec<String> {
        let text = fs::read_to_string(&self.events).expect("events");
        fs::write(&self.events, "").expect("events");
        lines(&text)
    }
}

fn assert_events(got: Vec<String>, want: &[&str], what: &str) {
    assert_eq!(got, want, "{what}: the commands that ran, in order");
}

// ---------------------------------------------------------------- tests

/// Postgres and the graph. The first state, a snapshot, then rows updated, deleted and
/// inserted, a table added, graph records rewritten, a second snapshot; `--dry-run` of a
/// restore of the first touches nothing; the restore brings back every row, the sequence,
/// the very graph files and records of the first state, and drops what came later (the
/// database is recreated empty before the dump is replayed).
#[test]
fn host_round_trip_postgres() {
    let Some(pg) = Pg::start("host_round_trip_postgres") else {
        return;
    };
    let host = Host::new();
    let neo = Neo4j::new(&host.env, &host.events);
    pg.sql(PG_SCHEMA);
    neo.graph(&["fill", "3000"]);
    neo.graph(&["write", "movie:1", "The Matrix"]);
    host.take_events();
    let mut keys = host.markers();
    keys.extend(neo.config());
    keys.push(("postgres_url", pg.url()));
    let config = host.config("rbk", &keys);

    let s1 = host.snapshot(&config);
    assert_eq!(part_names(&s1), [GRAPH, PG], "{s1}");
    assert_eq!(s1["parts"][0]["codec"], "neo4j-dump", "{s1}");
    assert_events(host.take_events(), &FULL_CYCLE, "snapshot 1");
    assert!(neo.serves(), "Neo4j runs again after the snapshot");
    // The pause's phases, in the order the commands ran, one after another.
    let phases = s1["pause_phases"]
        .as_array()
        .unwrap_or_else(|| panic!("no pause_phases in {s1}"));
    let names: Vec<&str> = phases.iter().filter_map(|p| p["phase"].as_str()).collect();
    assert_eq!(
        names,
        [
            "pause writes",
            "stop neo4j",
            "dump neo4j",
            "start neo4j",
            "dump sql",
            "resume writes"
        ],
        "{s1}"
    );
    let end = |p: &serde_json::Value| p["start_ms"].as_u64().unwrap() + p["ms"].as_u64().unwrap();
    for pair in phases.windows(2) {
        assert!(
            end(&pair[0]) <= pair[1]["start_ms"].as_u64().unwrap(),
            "{s1}"
        );
    }
    let (rows_a, graph_a, files_a) = (pg.state(), neo.records(), neo.store_files());
    assert!(graph_a.contains("movie:1\tThe Matrix\n"), "{graph_a}");
    assert_eq!(lines(&pg.sql("select name from projects")).len(), 3);

    pg.sql(PG_CHANGES);
    neo.graph(&["write", "movie:1", "The Matrix Reloaded"]);
    neo.graph(&["fill", "500", "1"]);
    neo.graph(&["write", "person:2", "Carrie-Anne Moss"]);
    let (rows_b, graph_b) = (pg.state(), neo.records());
    assert_ne!(rows_b, rows_a);
    assert_ne!(graph_b, graph_a);
    assert_ne!(neo.store_files(), files_a);
    let s2 = host.snapshot(&config);
    assert_events(host.take_events(), &FULL_CYCLE, "snapshot 2");
    let listed = host.ok(&config, &["--json", "snapshots"]).json();
    assert_eq!(listed[1]["id"], s2["id"]);
    assert_eq!(listed[1]["labels"]["rbk.kind"], "host", "{listed}");
    // A real pg_dump's output, and the stand-in's dump, pass verify's shape checks.
    let verified = host
        .ok(&config, &["--json", "verify", &id_of(&s2)[..8]])
        .json();
    assert_eq!(
        verified_checks(&verified),
        ["neo4j-dump", "pg-dump"],
        "{verified}"
    );

    let id1 = id_of(&s1);
    let plan = host.ok(&config, &["restore", &id1[..8], "--dry-run"]);
    let order = [
        "verify every byte of neo4j.dump, metadata.sql",
        "check that the role of postgres_url may drop and create database \"rushdb\"",
        "run the pause command: echo pause",
        "run the Neo4j stop command:",
        "load neo4j.dump: ",
        "database load neo4j --from-stdin --overwrite-destination=true",
        "run the Neo4j start command:",
        "recreate the database, empty: psql -X --dbname=postgres://rushdb@127.0.0.1:",
        "/postgres -v ON_ERROR_STOP=1 -c 'DROP DATABASE IF EXISTS \"rushdb\" WITH (FORCE)' -c 'CREATE DATABASE \"rushdb\"'",
        "restore metadata.sql: psql -X --dbname=postgres://rushdb@127.0.0.1:",
        "run the resume command: echo resume",
        "nothing was touched (--dry-run)",
    ];
    let mut at = 0;
    for step in order {
        let found = plan.stdout[at..]
            .find(step)
            .unwrap_or_else(|| panic!("the plan lacks {step:?} (in order):\n{}", plan.stdout));
        at += found + step.len();
    }
    assert!(host.take_events().is_empty(), "--dry-run ran commands");
    assert_eq!(pg.state(), rows_b, "--dry-run changed the database");
    assert_eq!(neo.records(), graph_b, "--dry-run changed the graph");

    let report = host.restore(&config, &id1);
    assert_eq!(report["snapshot"], s1["id"], "{report}");
    assert_eq!(
        report["restored"],
        serde_json::json!([GRAPH, PG]),
        "{report}"
    );
    assert!(u64_of(&report, "downtime_ms") > 0, "{report}");
    assert_events(host.take_events(), &FULL_CYCLE, "restore");
    assert!(neo.serves(), "Neo4j runs again after the restore");
    assert_eq!(
        neo.records(),
        graph_a,
        "every graph record of the first state"
    );
    assert_eq!(
        neo.store_files(),
        files_a,
        "every graph file of the first state"
    );
    assert_eq!(
        pg.state(),
        rows_a,
        "every row and the sequence of the first state"
    );
    assert!(!pg.table_exists("extra"), "restored into an empty database");
    assert_eq!(
        pg.sql_as(
            "postgres",
            "postgres",
            "select pg_get_userbyid(datdba) from pg_database where datname = 'rushdb'"
        )
        .trim(),
        "rushdb",
        "the recreated database belongs to the role of postgres_url"
    );
    host.env.assert_check_ok("after the restore");
}

/// A dump that dies halfway (`NEO4J_ADMIN_FAIL_AFTER_BYTES`): no snapshot, no pack left,
/// the error names the part and ends with the stand-in's stderr, and Neo4j was started and
/// writes resumed, in that order. The next snapshot then succeeds.
#[test]
fn host_dump_failing_halfway_commits_nothing() {
    let host = Host::new();
    let neo = Neo4j::new(&host.env, &host.events);
    neo.graph(&["fill", "3000"]);
    host.take_events();
    let mut keys = host.markers();
    keys.extend(neo.config());
    let config = host.config("rbk", &keys);

    let mut c = host.cmd(&config, &["snapshot"]);
    c.env("NEO4J_ADMIN_FAIL_AFTER_BYTES", "100000");
    let r = wait_with_guard(c.spawn().expect("spawn"), GUARD, "rbk snapshot");
    assert_eq!(r.code, EXIT_FAILED, "{}", r.all());
    assert_contains(
        &r.stderr,
        &format!("part {GRAPH}"),
        "the error names the part",
    );
    assert_contains(
        &r.stderr,
        "simulated I/O error after 100000 bytes",
        "the error ends with the producer's stderr",
    );
    assert!(host.env.snapshot_files().is_empty(), "nothing committed");
    assert!(host.env.packs().is_empty(), "no pack left behind");
    assert_events(host.take_events(), &FULL_CYCLE, "failed snapshot");
    assert!(neo.serves(), "Neo4j runs again");

    let s = host.snapshot(&config);
    assert_eq!(part_names(&s), [GRAPH]);
    assert_events(host.take_events(), &FULL_CYCLE, "the next snapshot");
}

/// Two restores that fail once the stack is paused, each still starting Neo4j and resuming
/// writes: a Neo4j stop command that does not stop it (the load refuses a running server, and
/// the SQL is not touched), then a dump that names a role the server no longer has (psql
/// stops at the error). Each error names the part and ends with the command's stderr.
#[test]
fn host_failing_restore_still_resumes() {
    let Some(pg) = Pg::start("host_failing_restore_still_resumes") else {
        return;
    };
    let host = Host::new();
    let neo = Neo4j::new(&host.env, &host.events);
    pg.sql(PG_SCHEMA);
    pg.sql_as("postgres", "postgres", "create role reader");
    pg.sql("grant select on projects to reader");
    neo.graph(&["fill", "1000"]);
    host.take_events();
    let mut keys = host.markers();
    keys.extend(neo.config());
    keys.push(("postgres_url", pg.url()));
    let config = host.config("rbk", &keys);
    let id = id_of(&host.snapshot(&config));
    host.take_events();
    pg.sql(PG_CHANGES);
    neo.graph(&["write", "movie:1", "The Matrix Reloaded"]);
    let (rows_b, graph_b) = (pg.state(), neo.records());

    // The stop command only records itself: Neo4j keeps running and holds its store.
    let noop_stop = format!("echo neo4j-stop-noop >> '{}'", host.events.display());
    let mut bad = keys.clone();
    bad.retain(|(k, _)| *k != "neo4j_stop_command");
    bad.push(("neo4j_stop_command", noop_stop));
    let bad = host.config("no-stop", &bad);
    let r = host.run(&bad, &["restore", &id]);
    assert_eq!(r.code, EXIT_FAILED, "{}", r.all());
    assert_contains(&r.stderr, &format!("loading {GRAPH}"), "names the part");
    assert_contains(
        &r.stderr,
        "The database is in use. Stop database 'neo4j' and try again.",
        "ends with neo4j-admin's stderr",
    );
    assert_events(
        host.take_events(),
        &["pause", "neo4j-stop-noop", "neo4j-start", "resume"],
        "failed load",
    );
    assert_eq!(neo.records(), graph_b, "the refused load left the graph");
    assert_eq!(pg.state(), rows_b, "the SQL was not touched");

    pg.sql_as(
        "postgres",
        "rushdb",
        "revoke select on projects from reader; drop role reader",
    );
    let r = host.run(&config, &["restore", &id]);
    assert_eq!(r.code, EXIT_FAILED, "{}", r.all());
    assert_contains(&r.stderr, &format!("restoring {PG}"), "names the part");
    assert_contains(
        &r.stderr,
        "role \"reader\" does not exist",
        "ends with psql's stderr",
    );
    assert_events(host.take_events(), &FULL_CYCLE, "failed psql");
    assert!(neo.serves(), "Neo4j runs again");
}

/// SIGTERM to rbk alone, first while `neo4j-admin load` hangs, then while a dump hangs
/// (`NEO4J_ADMIN_STALL_AFTER_BYTES`): rbk ends the hanging command, starts Neo4j, resumes
/// writes and exits with 130; the graph is as it was and no snapshot is committed.
#[test]
fn host_sigterm_ends_the_command_and_resumes() {
    let host = Host::new();
    let neo = Neo4j::new(&host.env, &host.events);
    neo.graph(&["fill", "3000"]);
    host.take_events();
    let mut keys = host.markers();
    keys.extend(neo.config());
    let config = host.config("rbk", &keys);
    let id = id_of(&host.snapshot(&config));
    host.take_events();
    neo.graph(&["write", "movie:1", "The Matrix Reloaded"]);
    let graph_b = neo.records();

    let sigterm_when = |c: &mut Command, marker: &Path, what: &str| -> Run {
        let _ = fs::remove_file(marker);
        let mut child = c.spawn().expect("spawn rbk");
        let pid = child.id();
        let deadline = std::time::Instant::now() + GUARD;
        while !marker.exists() {
            let ended = child.try_wait().expect("try_wait").is_some();
            if ended || std::time::Instant::now() > deadline {
                // No rbk left behind, blocked on a pipe, when the test fails.
                let _ = child.kill();
                let r = wait_with_guard(child, GUARD, what);
                panic!("{what} never started (rbk ended: {ended}):\n{}", r.all());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        // Past the start of the command: in the load, rbk is blocked writing into a pipe
        // nobody reads; in the dump, the stand-in stalls after its first bytes.
        std::thread::sleep(Duration::from_millis(500));
        // SAFETY: signals the rbk process this test spawned and has not reaped.
        assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGTERM) }, 0);
        let r = wait_with_guard(child, GUARD, what);
        let stuck = read_pid(marker);
        wait_until(Duration::from_secs(5), &format!("{what} has ended"), || {
            !alive(stuck)
        });
        r
    };

    fs::write(neo.dir.join("stall-load"), "").expect("knob");
    let r = sigterm_when(
        &mut host.cmd(&config, &["restore", &id]),
        &neo.dir.join("load.pid"),
        "a hanging load",
    );
    assert_eq!(r.code, EXIT_INTERRUPTED, "{}", r.all());
    assert_events(host.take_events(), &FULL_CYCLE, "SIGTERM in the load");
    assert!(neo.serves(), "Neo4j runs again");
    assert_eq!(neo.records(), graph_b, "the graph is as it was");

    let mut c = host.cmd(&config, &["snapshot"]);
    c.env("NEO4J_ADMIN_STALL_AFTER_BYTES", "20000");
    let r = sigterm_when(&mut c, &neo.dir.join("dump.pid"), "a hanging dump");
    assert_eq!(r.code, EXIT_INTERRUPTED, "{}", r.all());
    assert_events(host.take_events(), &FULL_CYCLE, "SIGTERM in the dump");
    assert!(neo.serves(), "Neo4j runs again");
    assert_eq!(host.env.snapshot_files().len(), 1, "no second snapshot");
}

/// SQLite metadata: the file back byte for byte, atomically, with its mode kept and a
/// stale write-ahead log of the replaced database removed; `--dry-run` touches nothing.
#[test]
fn host_round_trip_sqlite() {
    use std::os::unix::fs::PermissionsExt;
    let host = Host::new();
    let db = host.env.path("srv/rushdb.db");
    fs::create_dir_all(db.parent().unwrap()).expect("mkdir");
    let sqlite = |sql: &str| -> String {
        let out = run_out(Command::new("sqlite3").arg("-batch").arg(&db).arg(sql));
        assert_success(&out, &format!("sqlite3 {sql:?}"));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let schema = PG_SCHEMA.replace("serial", "integer");
    sqlite(&schema);
    fs::set_permissions(&db, fs::Permissions::from_mode(0o640)).expect("chmod");
    let mut keys = host.markers();
    keys.push(("sqlite_path", db.display().to_string()));
    let config = host.config("rbk", &keys);

    let s1 = host.snapshot(&config);
    assert_eq!(part_names(&s1), [SQLITE]);
    assert_events(host.take_events(), &["pause", "resume"], "snapshot 1");
    let file_a = fs::read(&db).expect("read");
    let rows = "select * from projects order by id; select * from settings order by key";
    let rows_a = sqlite(rows);
    sqlite(&PG_CHANGES.replace("create table extra (x int)", "create table extra (x)"));
    assert_ne!(sqlite(rows), rows_a);
    host.snapshot(&config);
    host.take_events();
    // What a crashed RushDB leaves: SQLite would replay it into the restored file.
    let wal = host
        .env
        .write("srv/rushdb.db-wal", b"stale write-ahead log");

    let plan = host.ok(&config, &["restore", "latest", "--dry-run"]);
    assert_contains(
        &plan.stdout,
        &format!("put {SQLITE} back as {}", db.display()),
        "the plan",
    );
    assert!(host.take_events().is_empty(), "--dry-run ran commands");
    assert!(wal.exists(), "--dry-run removed a file");

    let report = host.restore(&config, &id_of(&s1));
    assert_eq!(report["restored"], serde_json::json!([SQLITE]), "{report}");
    assert_events(host.take_events(), &["pause", "resume"], "restore");
    assert_file_is(&db, &file_a, "the SQLite file of the first snapshot");
    assert_eq!(sqlite(rows), rows_a);
    assert_eq!(sqlite("pragma integrity_check").trim(), "ok");
    assert_eq!(
        sqlite("select count(*) from sqlite_master where name = 'extra'").trim(),
        "0"
    );
    assert!(!wal.exists(), "the stale WAL was removed");
    assert_eq!(
        fs::metadata(&db).expect("stat").permissions().mode() & 0o777,
        0o640,
        "the file's mode is kept"
    );
    assert_eq!(
        names_in(db.parent().unwrap()),
        [SQLITE],
        "no temporary file left beside it"
    );

    // A writer killed after a commit in WAL mode: the row lives only in `-wal`, which the
    // snapshot stores beside the file and the restore puts back.
    let py = format!(
        "import sqlite3, os\n\
         c = sqlite3.connect({:?})\n\
         c.execute('pragma journal_mode=wal')\n\
         c.execute(\"insert into settings (key, value) values ('only-in-wal', 'yes')\")\n\
         c.commit()\n\
         os._exit(0)\n",
        db.display().to_string()
    );
    assert_success(
        &run_out(Command::new("python3").arg("-c").arg(&py)),
        "python3",
    );
    assert!(
        fs::metadata(&wal).is_ok_and(|m| m.len() > 0),
        "no WAL was left"
    );
    let s3 = host.snapshot(&config);
    assert_eq!(part_names(&s3), [SQLITE, "rushdb.db-wal"], "{s3}");
    let rows_c = sqlite(rows);
    assert!(rows_c.contains("only-in-wal"));
    host.restore(&config, &id_of(&s1));
    assert_eq!(sqlite(rows), rows_a);
    let report = host.restore(&config, &id_of(&s3));
    assert_eq!(
        report["restored"],
        serde_json::json!([SQLITE, "rushdb.db-wal"]),
        "{report}"
    );
    assert_eq!(sqlite(rows), rows_c, "the WAL's row is back");
    assert_eq!(sqlite("pragma integrity_check").trim(), "ok");
}

/// Refusals before anything runs: a part the configuration has no place for (a graph dump
/// but no neo4j_admin; SQLite metadata but only a postgres_url), and a snapshot with one
/// damaged byte (found by reading every byte first). No command runs, no file changes.
#[test]
fn host_restore_preflight_refuses_before_touching_anything() {
    let host = Host::new();
    let db = host.env.path("rushdb.db");
    let out = run_out(
        Command::new("sqlite3")
            .arg(&db)
            .arg("create table t (x); insert into t values (1)"),
    );
    assert_success(&out, "sqlite3");
    let before = fs::read(&db).expect("read");
    let mut keys = host.markers();
    keys.push(("sqlite_path", db.display().to_string()));
    let config = host.config("rbk", &keys);
    let sqlite_id = id_of(&host.snapshot(&config));
    let dump = host.env.write(
        GRAPH,
        &build_dump(
            rbk::codec::neo4j_dump::DumpFormat::Dzv1Zstd,
            &store_files(7, 1),
        ),
    );
    // Part mode (`--path`) ignores `[host]`: a snapshot with a graph part and no Neo4j here.
    let graph_id = id_of(
        &host
            .ok(
                &config,
                &["--json", "snapshot", "--path", dump.to_str().unwrap()],
            )
            .json(),
    );
    host.take_events();

    let r = host.run(&config, &["restore", &graph_id]);
    assert_eq!(r.code, EXIT_FAILED, "{}", r.all());
    assert_contains(
        &r.stderr,
        &format!("holds {GRAPH} but [host] sets no neo4j_admin"),
        "a graph without neo4j_admin",
    );

    let mut pg_only = host.markers();
    pg_only.push((
        "postgres_url",
        "postgres://rushdb@127.0.0.1:1/rushdb".into(),
    ));
    let pg_only = host.config("pg-only", &pg_only);
    let r = host.run(&pg_only, &["restore", &sqlite_id]);
    assert_eq!(r.code, EXIT_FAILED, "{}", r.all());
    assert_contains(
        &r.stderr,
        &format!(
            "holds SQLite metadata ({SQLITE}) but [host] sets no sqlite_path (it uses Postgres)"
        ),
        "SQLite metadata without sqlite_path",
    );
    assert!(
        host.take_events().is_empty(),
        "a refused restore ran commands"
    );

    fs::write(&db, b"not what the snapshot holds").expect("write");
    for pack in host.env.packs() {
        let (header_at, _) = pack_header_span(&pack);
        flip_byte(&pack, header_at / 2);
    }
    let r = host.run(&config, &["restore", &sqlite_id]);
    assert_eq!(r.code, EXIT_DAMAGED, "{}", r.all());
    assert_contains(
        &r.stderr,
        &format!("verifying part {SQLITE}"),
        "names the part",
    );
    assert!(
        host.take_events().is_empty(),
        "a damaged snapshot ran commands"
    );
    assert_file_is(
        &db,
        b"not what the snapshot holds",
        "the SQLite file untouched",
    );
    assert_ne!(before, b"not what the snapshot holds");
}

/// `postgres_url` with a password, for a role that needs one (scram over TCP): `pg_dump` and
/// `psql` get the URL without it on their command lines (seen by wrappers on PATH, which log
/// their arguments and environment and exec the real programs) and the password as
/// PGPASSWORD; snapshot and restore still work against the real server.
#[test]
fn host_postgres_password_stays_off_command_lines() {
    let Some(pg) = Pg::start("host_postgres_password_stays_off_command_lines") else {
        return;
    };
    let host = Host::new();
    pg.sql(PG_SCHEMA);
    let password = "s3cret pa/ss@w:rd%";
    let encoded = "s3cret%20pa%2Fss%40w%3Ard%25";
    pg.sql_as(
        "postgres",
        "postgres",
        &format!("alter role rushdb password '{password}'"),
    );
    fs::write(
        Path::new(&pg.data()).join("pg_hba.conf"),
        "local all all trust\n\
         host all rushdb 127.0.0.1/32 scram-sha-256\n\
         host all all 127.0.0.1/32 trust\n",
    )
    .expect("pg_hba.conf");
    assert_success(
        &pg.as_postgres("pg_ctl", &["-D", &pg.data(), "reload"]),
        "reload",
    );
    // The control: from now on the role cannot connect without its password.
    let without = || {
        run_out(
            Command::new("psql")
                .args(["-X", "-w", "-h", "127.0.0.1", "-p"])
                .arg(pg.port.to_string())
                .args(["-U", "rushdb", "-d", "rushdb", "-c", "select 1"])
                .env_remove("PGPASSWORD"),
        )
    };
    wait_until(
        Duration::from_secs(10),
        "the server to ask for a password",
        || !without().status.success(),
    );
    let as_admin = |sql: &str| pg.sql_as("postgres", "rushdb", sql);
    let rows = "select 'p', id, name, token from projects union all \
                select 's', 0, key, value from settings order by 1, 2, 3";
    let rows_a = as_admin(rows);

    let bin = host.env.path("pg-wrappers");
    fs::create_dir_all(&bin).expect("mkdir");
    let args_log = host.env.path("pg-args.log");
    for tool in ["pg_dump", "psql"] {
        let out = run_out(
            Command::new("sh")
                .arg("-c")
                .arg(format!("command -v {tool}")),
        );
        assert_success(&out, &format!("command -v {tool}"));
        let real = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let script = bin.join(tool);
        fs::write(
            &script,
            format!(
                "#!/bin/sh\n\
                 printf '%s\\n' \"{tool} $*\" >> '{args}'\n\
                 env > '{bin}/{tool}.env'\n\
                 exec '{real}' \"$@\"\n",
                args = args_log.display(),
                bin = bin.display(),
            ),
        )
        .expect("wrapper");
        assert_success(
            &run_out(Command::new("chmod").arg("755").arg(&script)),
            "chmod",
        );
    }
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut keys = host.markers();
    keys.push((
        "postgres_url",
        format!("postgres://rushdb:{encoded}@127.0.0.1:{}/rushdb", pg.port),
    ));
    let config = host.config("rbk", &keys);
    let run = |args: &[&str]| -> Run {
        let mut c = host.cmd(&config, args);
        c.env("PATH", &path).env_remove("PGPASSWORD");
        let r = wait_with_guard(c.spawn().expect("spawn rbk"), GUARD, "rbk");
        assert_eq!(r.code, EXIT_OK, "rbk {args:?}:\n{}", r.all());
        r
    };

    let s = run(&["--json", "snapshot"]).json();
    assert_eq!(part_names(&s), [PG], "{s}");
    as_admin(PG_CHANGES);
    assert_ne!(as_admin(rows), rows_a);
    run(&["--json", "restore", &id_of(&s)]);
    assert_eq!(as_admin(rows), rows_a, "every row of the first state");

    let logged = fs::read_to_string(&args_log).expect("the wrappers ran");
    let commands: Vec<&str> = logged
        .lines()
        .map(|l| l.split(' ').next().unwrap_or(""))
        .collect();
    assert_eq!(
        commands,
        ["pg_dump", "psql", "psql", "psql"],
        "pg_dump, then psql to check, recreate and restore:\n{logged}"
    );
    for secret in ["s3cret", encoded] {
        assert!(
            !logged.contains(secret),
            "a password on a command line:\n{logged}"
        );
    }
    assert!(
        logged.contains(&format!("postgres://rushdb@127.0.0.1:{}/", pg.port)),
        "{logged}"
    );
    for tool in ["pg_dump", "psql"] {
        let environment = fs::read_to_string(bin.join(format!("{tool}.env"))).expect("env");
        assert!(
            environment
                .lines()
                .any(|l| l == format!("PGPASSWORD={password}")),
            "{tool} got the password in its environment"
        );
        assert!(
            !environment.contains(PASSWORD) && !environment.contains("RBK_PASSWORD="),
            "{tool} got rbk's repository password"
        );
    }
}
