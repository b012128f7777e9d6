//! Docker tests of stack mode: `rbk snapshot` / `rbk restore` against real Compose stacks built from `tests/images`.
//!
//! Each test brings up its own Compose project (`rbkit_<test>_<pid>`) and tears it down with
//! `down -v` in a Drop guard, so a failing assertion never leaves a stack behind. The tests run
//! one at a time (a process-wide lock): the machine has two cores, several of the checks are
//! about timing (a pause window, a signal that lands mid-dump), and rbk finds the stack by the
//! `rushdb` service label when no project is given, which a second stack would make ambiguous.
//! The Garage clusters of the S3 tests take a lock of their own and may run beside them.
//! The harness uses the docker and docker-compose CLIs to set up and to look; rbk itself talks
//! to the engine API. `RBK_SKIP_DOCKER=1` skips them (for developers without Docker).

mod disaster;
mod drill;
mod enterprise;
mod failures;
mod isolation;
mod pause;
mod preflight;
mod roundtrip;
mod sqlite;
mod volume_mode;
mod volumes;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::util::*;

/// The image the compose files run (tests/images/README.md).
pub const IMAGE: &str = "rbk-test/debian:1";
/// The label rbk puts on its one-off containers; its value is the container they copy.
pub const ONEOFF_LABEL: &str = "io.rbk.oneoff";
/// The label naming the Compose project a one-off container belongs to.
pub const ONEOFF_PROJECT_LABEL: &str = "io.rbk.project";
/// Upper bound for one rbk run against a small stack: a deadlock guard, not a timing claim.
pub const RBK_GUARD: Duration = Duration::from_secs(60);
/// How long a container may take to be running (and ready) again.
pub const READY: Duration = Duration::from_secs(30);

/// The part names rbk's manifest and `--to DIR` use.
pub const GRAPH: &str = "neo4j.dump";
pub const PG: &str = "metadata.sql";
pub const SQLITE: &str = "rushdb.db";

// ---------------------------------------------------------------- entry

/// The test's turn: holds the lock that runs the Docker tests one at a time, after making
/// sure the image exists and that no other RushDB stack is on the engine. `None` means
/// Docker tests are switched off.
pub fn docker_test(name: &str) -> Option<MutexGuard<'static, ()>> {
    let guard = docker_turn(&format!("stack::{name}"))?;
    // rbk finds the stack by the `rushdb` service label unless told a project; another
    // stack on this engine would make that ambiguous (and the tests' meaning with it).
    let others = docker(&[
        "ps",
        "-a",
        "--filter",
        "label=com.docker.compose.service=rushdb",
        "--format",
        "{{.Names}}",
    ]);
    assert!(
        others.trim().is_empty(),
        "the stack tests need an engine with no other RushDB stack, found: {}\n\
         (take it down, or set RBK_SKIP_DOCKER=1)",
        others.trim()
    );
    Some(guard)
}

/// A Docker test's turn without the stack tests' demand for an engine free of other RushDB
/// stacks (for tests that never look for a stack): the lock that runs the Docker tests one
/// at a time, taken after making sure the image exists. `None` means Docker tests are
/// switched off; `name` is the test's path, for the message saying so.
pub fn docker_turn(name: &str) -> Option<MutexGuard<'static, ()>> {
    static SERIAL: Mutex<()> = Mutex::new(());
    turn_of(&SERIAL, name)
}

/// The turn of a test that holds `lock`, taken after making sure the image exists; `None`
/// means Docker tests are switched off. Tests that touch nothing of each other's (the Garage
/// clusters and the stacks, say) take different locks and may run side by side.
pub fn turn_of(lock: &'static Mutex<()>, name: &str) -> Option<MutexGuard<'static, ()>> {
    if std::env::var("RBK_SKIP_DOCKER").as_deref() == Ok("1") {
        eprintln!("{name}: skipped (RBK_SKIP_DOCKER=1)");
        return None;
    }
    // A test that failed while holding the lock poisons it; the next one may still run.
    let guard = lock.lock().unwrap_or_else(|p| p.into_inner());
    build_image();
    Some(guard)
}

/// `tests/images/build.sh`, once per test process (it is a no-op when the image is current).
fn build_image() {
    static BUILT: OnceLock<Result<(), String>> = OnceLock::new();
    let result = BUILT.get_or_init(|| {
        remove_stale_stacks();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/images/build.sh");
        let out = Command::new("bash")
            .arg(&script)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{} failed ({}):\n{}\n{}",
                script.display(),
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    });
    if let Err(e) = result {
        panic!("the test image could not be built: {e}");
    }
}

/// Takes down what earlier test processes that were killed (so their Drop guards never ran)
/// left: projects named `rbkit_<test>_<pid>` whose pid is gone. A leftover stack with a
/// `rushdb` service would make discovery by label ambiguous for every later run.
fn remove_stale_stacks() {
    let projects = docker(&[
        "ps",
        "-a",
        "--format",
        "{{.Label \"com.docker.compose.project\"}}",
    ]);
    let mut stale: Vec<&str> = lines_ref(&projects)
        .into_iter()
        .filter(|p| p.starts_with("rbkit_"))
        .filter(|p| {
            p.rsplit('_')
                .next()
                .and_then(|pid| pid.parse::<i32>().ok())
                .is_some_and(|pid| pid != std::process::id() as i32 && !pid_alive(pid))
        })
        .collect();
    stale.sort();
    stale.dedup();
    for p in stale {
        eprintln!("removing the stale test stack {p}");
        let label = format!("label=com.docker.compose.project={p}");
        let oneoff = format!("label={ONEOFF_PROJECT_LABEL}={p}");
        let legacy = format!("label={ONEOFF_LABEL}={p}_neo4j_1");
        for filter in [&oneoff, &legacy, &label] {
            for id in lines(&docker(&["ps", "-a", "-q", "--filter", filter])) {
                let _ = docker_out(&["rm", "-f", &id]);
            }
        }
        for v in lines(&docker(&["volume", "ls", "-q", "--filter", &label])) {
            let _ = docker_out(&["volume", "rm", &v]);
        }
        let _ = docker_out(&["network", "rm", &format!("{p}_default")]);
    }
}

fn lines_ref(s: &str) -> Vec<&str> {
    s.lines().map(str::trim).filter(|l| !l.is_empty()).collect()
}

fn pid_alive(pid: i32) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

// ---------------------------------------------------------------- the stack

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    /// `compose.yaml`: rushdb, neo4j, postgres.
    Postgres,
    /// `compose.sqlite.yaml`: rushdb (SQLite on its volume), neo4j.
    Sqlite,
}

/// A running Compose project, taken down (with its volumes) when dropped.
pub struct Stack {
    pub project: String,
    pub variant: Variant,
    files: Vec<PathBuf>,
    /// Holds a compose override file, when the test needs one.
    _dir: Option<tempfile::TempDir>,
}

impl Stack {
    pub fn up(test: &str, variant: Variant) -> Stack {
        Stack::up_with(test, variant, None)
    }

    /// Brings the project up, with `override_yaml` merged over the compose file when given.
    /// `up -d` waits until neo4j (and postgres) are healthy, as rushdb depends on them;
    /// this then waits until rushdb has written its first heartbeats.
    pub fn up_with(test: &str, variant: Variant, override_yaml: Option<&str>) -> Stack {
        Stack::up_layered(test, variant, &[], override_yaml)
    }

    /// Brings the project up with `extra` compose files from `tests/images` (e.g.
    /// `compose.enterprise.yaml`) and then `override_yaml`, merged over the variant's file.
    pub fn up_layered(
        test: &str,
        variant: Variant,
        extra: &[&str],
        override_yaml: Option<&str>,
    ) -> Stack {
        let images = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/images");
        let mut files = vec![images.join(match variant {
            Variant::Postgres => "compose.yaml",
            Variant::Sqlite => "compose.sqlite.yaml",
        })];
        files.extend(extra.iter().map(|f| images.join(f)));
        let dir = override_yaml.map(|yaml| {
            let dir = tempfile::Builder::new()
                .prefix("rbkit-compose-")
                .tempdir()
                .expect("tempdir");
            let path = dir.path().join("override.yaml");
            std::fs::write(&path, yaml).expect("write override");
            files.push(path);
            dir
        });
        let stack = Stack {
            project: format!("rbkit_{test}_{}", std::process::id()),
            variant,
            files,
            _dir: dir,
        };
        // The guard exists before `up`, so a half-started project is taken down too.
        let out = stack.compose(&["up", "-d"], &[]);
        assert!(
            out.status.success(),
            "compose up {} failed:\n{}",
            stack.project,
            String::from_utf8_lossy(&out.stderr)
        );
        stack.wait_heartbeats(0);
        stack
    }

    /// `docker-compose -p P -f F... ARGS` with extra environment (e.g. another key).
    pub fn compose(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut c = Command::new("docker-compose");
        c.arg("-p").arg(&self.project);
        for f in &self.files {
            c.arg("-f").arg(f);
        }
        c.args(args).stdin(Stdio::null());
        for (k, v) in env {
            c.env(k, v);
        }
        c.output().expect("run docker-compose")
    }

    /// The container of a service, as docker-compose v1 names it.
    pub fn container(&self, service: &str) -> String {
        format!("{}_{service}_1", self.project)
    }

    pub fn rushdb(&self) -> String {
        self.container("rushdb")
    }

    pub fn neo4j(&self) -> String {
        self.container("neo4j")
    }

    pub fn postgres(&self) -> String {
        self.container("postgres")
    }

    /// The rbk one-off containers of this stack's project, running or not.
    pub fn oneoffs(&self) -> Vec<String> {
        let filter = format!("label={ONEOFF_PROJECT_LABEL}={}", self.project);
        lines(&docker(&["ps", "-a", "-q", "--filter", &filter]))
    }

    /// Every container, volume and network of a restore drill of this project, by kind and
    /// name: empty when no drill exists or every drill was torn down.
    pub fn drill_objects(&self) -> Vec<String> {
        let drill = "label=io.rbk.drill";
        let project = format!("label=io.rbk.project={}", self.project);
        let mut out = Vec::new();
        for (kind, args) in [
            ("container", vec!["ps", "-a", "--format", "{{.Names}}"]),
            ("volume", vec!["volume", "ls", "--format", "{{.Name}}"]),
            ("network", vec!["network", "ls", "--format", "{{.Name}}"]),
        ] {
            let mut args = args;
            args.extend(["--filter", drill, "--filter", &project]);
            out.extend(
                lines(&docker(&args))
                    .into_iter()
                    .map(|n| format!("{kind} {n}")),
            );
        }
        out
    }

    /// The one-off containers made from this stack's neo4j container (the dumps), running.
    pub fn running_oneoffs(&self) -> Vec<String> {
        let filter = format!("label={ONEOFF_LABEL}={}", self.neo4j());
        lines(&docker(&[
            "ps",
            "-q",
            "--filter",
            &filter,
            "--filter",
            "status=running",
        ]))
    }

    // ------------------------------------------------------------ SQL

    /// One psql command in the postgres container; unaligned output, `|` between fields.
    pub fn psql(&self, sql: &str) -> String {
        let out = self.psql_try(sql);
        assert!(
            out.status.success(),
            "psql {sql:?} failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn psql_try(&self, sql: &str) -> Output {
        docker_out(&[
            "exec",
            &self.postgres(),
            "psql",
            "-X",
            "-q",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
            "-U",
            "rushdb",
            "-d",
            "rushdb",
            "-c",
            sql,
        ])
    }

    /// One statement on the SQLite file in the rushdb container (the stand-in writes a
    /// heartbeat every 0.5 s, hence the busy timeout).
    pub fn sqlite(&self, sql: &str) -> String {
        let out = self.sqlite_try(sql);
        assert!(
            out.status.success(),
            "sqlite3 {sql:?} failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn sqlite_try(&self, sql: &str) -> Output {
        docker_out(&[
            "exec",
            &self.rushdb(),
            "sqlite3",
            "-batch",
            "-cmd",
            ".timeout 5000",
            "/data/rushdb.db",
            sql,
        ])
    }

    /// The highest heartbeat id, or 0 while the table is missing or the store unreachable.
    pub fn max_heartbeat(&self) -> u64 {
        let sql = "select coalesce(max(id), 0) from heartbeat";
        let out = match self.variant {
            Variant::Postgres => self.psql_try(sql),
            Variant::Sqlite => self.sqlite_try(sql),
        };
        if !out.status.success() {
            return 0;
        }
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .unwrap_or(0)
    }

    /// Waits until rushdb has written at least two heartbeats with an id above `after`:
    /// it is running and connected to its store.
    pub fn wait_heartbeats(&self, after: u64) {
        wait_until(
            READY,
            &format!("{} writes heartbeats past id {after}", self.rushdb()),
            || self.max_heartbeat() >= after + 2,
        );
    }

    /// Waits until the stack is back in service after rbk started it again: Neo4j serves and
    /// rushdb writes new heartbeats. Needed before anything stops rushdb again: the stand-in
    /// is Python as PID 1, which ignores SIGTERM until it has installed its handler, so a stop
    /// in its first moments waits out the whole stop timeout (60 s by default).
    pub fn settle(&self) {
        let services: &[&str] = match self.variant {
            Variant::Postgres => &["rushdb", "neo4j", "postgres"],
            Variant::Sqlite => &["rushdb", "neo4j"],
        };
        self.wait_running(services);
        self.wait_graph();
        self.wait_heartbeats(self.max_heartbeat());
    }

    // ------------------------------------------------------------ graph

    /// A graph helper (`graph-write`, `graph-fill`, `graph-read`) in the neo4j container.
    pub fn graph(&self, args: &[&str]) -> String {
        let name = self.neo4j();
        let mut all = vec!["exec", name.as_str()];
        all.extend_from_slice(args);
        let out = docker_out(&all);
        assert!(
            out.status.success(),
            "{args:?} failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Waits until the Neo4j stand-in serves again (the helpers need it to hold its lock).
    pub fn wait_graph(&self) {
        let name = self.neo4j();
        wait_until(READY, &format!("{name} serves the graph"), || {
            docker_out(&["exec", &name, "graph-read", "no-such-key"])
                .stderr
                .windows(b"no record".len())
                .any(|w| w == b"no record")
        });
    }

    /// Every graph record, in store order (`KEY<TAB>VALUE` lines).
    pub fn graph_records(&self) -> String {
        self.wait_graph();
        self.graph(&["graph-read"])
    }

    /// Name -> SHA-256 of every file of the `neo4j` database's store and transaction logs,
    /// named as in a dump (`./neostore`, `./checkpoint.0`, ...).
    pub fn store_files(&self) -> BTreeMap<String, String> {
        let script = "set -e; for d in /data/databases/neo4j /data/transactions/neo4j; do \
                      cd \"$d\"; find . -type f -print0 | sort -z | xargs -0 -r sha256sum; done";
        let out = docker(&["exec", &self.neo4j(), "sh", "-c", script]);
        checksums(&out, "the running store")
    }

    /// Writes a `neo4j-admin` test knob into the neo4j volume (read by the next dump).
    pub fn set_knob(&self, name: &str, value: &str) {
        let script =
            format!("mkdir -p /data/rbk-test-knobs && echo {value} > /data/rbk-test-knobs/{name}");
        docker(&["exec", &self.neo4j(), "sh", "-c", &script]);
    }

    pub fn clear_knobs(&self) {
        docker(&["exec", &self.neo4j(), "rm", "-rf", "/data/rbk-test-knobs"]);
    }

    // ------------------------------------------------------------ state

    /// `{{.State.StartedAt}}` of every container of the stack, by name: equal before and
    /// after means nothing was stopped or restarted.
    pub fn started_at(&self, services: &[&str]) -> BTreeMap<String, String> {
        services
            .iter()
            .map(|s| {
                let name = self.container(s);
                let at = inspect(&name, "{{.State.StartedAt}}");
                (name, at)
            })
            .collect()
    }

    /// Waits until every given container runs.
    pub fn wait_running(&self, services: &[&str]) {
        for s in services {
            let name = self.container(s);
            wait_until(READY, &format!("{name} is running"), || is_running(&name));
        }
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        // A one-off dump container holds the neo4j volume, which `down -v` could not remove.
        for id in self.oneoffs() {
            let _ = docker_out(&["rm", "-f", &id]);
        }
        // A drill a failed test left: containers first, then what they held.
        for object in self.drill_objects() {
            if let Some((kind, name)) = object.split_once(' ') {
                let _ = match kind {
                    "container" => docker_out(&["rm", "-f", "-v", name]),
                    _ => docker_out(&[kind, "rm", name]),
                };
            }
        }
        let out = self.compose(&["down", "-v", "-t", "1"], &[]);
        if !out.status.success() {
            eprintln!(
                "compose down {} failed:\n{}",
                self.project,
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

// ---------------------------------------------------------------- docker

pub fn docker_out(args: &[&str]) -> Output {
    Command::new("docker")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run docker {args:?}: {e}"))
}

/// `docker ARGS`, which must succeed; its stdout.
pub fn docker(args: &[&str]) -> String {
    let out = docker_out(args);
    assert!(
        out.status.success(),
        "docker {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn inspect(container: &str, format: &str) -> String {
    docker(&["inspect", "-f", format, container])
        .trim()
        .to_string()
}

pub fn is_running(container: &str) -> bool {
    let out = docker_out(&["inspect", "-f", "{{.State.Running}}", container]);
    out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == "true"
}

pub fn lines(s: &str) -> Vec<String> {
    s.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

/// Polls `ready` every 100 ms; fails the test with `what` after `limit`.
pub fn wait_until(limit: Duration, what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    loop {
        if ready() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?}: {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `sha256sum` output as name -> hash.
fn checksums(out: &str, what: &str) -> BTreeMap<String, String> {
    let mut map = BTreeMap::new();
    for line in lines(out) {
        let (hash, name) = line
            .split_once("  ")
            .unwrap_or_else(|| panic!("{what}: not a sha256sum line: {line:?}"));
        assert!(
            map.insert(name.to_string(), hash.to_string()).is_none(),
            "{what}: {name} twice"
        );
    }
    assert!(!map.is_empty(), "{what}: no files");
    map
}

/// Name -> SHA-256 of every regular file a Neo4j dump holds, decoded independently of rbk:
/// the magic checked here, then `zstd -d` and GNU tar in a container of the test image.
pub fn dump_files(dump: &Path) -> BTreeMap<String, String> {
    let bytes = std::fs::read(dump).unwrap_or_else(|e| panic!("read {}: {e}", dump.display()));
    assert_eq!(
        &bytes[..4],
        b"DZV1",
        "{} is not a DZV1 dump",
        dump.display()
    );
    // After the magic: one zstd frame holding "zstd", a 20-byte header, then the tar.
    let script = "set -e; mkdir /x; cd /x; zstd -dc | tail -c +25 | tar -xf -; \
                  find . -type f -print0 | sort -z | xargs -0 -r sha256sum";
    let mut child = Command::new("docker")
        .args(["run", "--rm", "-i", IMAGE, "sh", "-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("docker run");
    let mut stdin = child.stdin.take().unwrap();
    let feeder = std::thread::spawn(move || stdin.write_all(&bytes[4..]));
    let run = wait_with_guard(child, RBK_GUARD, "decoding a dump");
    feeder.join().unwrap().expect("feed the dump");
    assert_eq!(
        run.code,
        0,
        "decoding {} failed:\n{}",
        dump.display(),
        run.stderr
    );
    checksums(&run.stdout, "the dump")
}

// ---------------------------------------------------------------- rbk

/// `rbk ARGS` against `env`'s repository, from the temporary directory (so no stray
/// `./rbk.toml` is read), with no `RBK_CONFIG` from outside.
pub fn rbk_cmd(env: &Env, args: &[&str]) -> Command {
    let mut c = env.cmd(args);
    c.current_dir(env.tmp.path())
        .env_remove("RBK_CONFIG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

pub fn rbk(env: &Env, args: &[&str]) -> Run {
    let child = rbk_cmd(env, args).spawn().expect("spawn rbk");
    wait_with_guard(child, RBK_GUARD, &format!("rbk {args:?}"))
}

pub fn rbk_ok(env: &Env, args: &[&str]) -> Run {
    let r = rbk(env, args);
    assert_eq!(r.code, EXIT_OK, "rbk {args:?} failed:\n{}", r.all());
    r
}

/// A stack snapshot or restore, which must be done: exit 0, or 6 exactly when it warned
/// (the test stacks run with RushDB's published default key, which is warned about).
pub fn rbk_done(env: &Env, args: &[&str]) -> Run {
    let r = rbk(env, args);
    assert_done(&r, &format!("rbk {args:?}"));
    r
}

/// `rbk --json snapshot ARGS` of the stack, which must be done (exit 0 or 6): its report.
pub fn stack_snapshot(env: &Env, args: &[&str]) -> Value {
    let mut all = vec!["--json", "snapshot"];
    all.extend_from_slice(args);
    rbk_done(env, &all).json()
}

/// `rbk --json snapshots`, which must succeed.
pub fn list(env: &Env) -> Vec<Value> {
    match rbk_ok(env, &["--json", "snapshots"]).json() {
        Value::Array(a) => a,
        other => panic!("snapshots --json is not an array: {other}"),
    }
}

/// Part names of a snapshot report, in order.
pub fn part_names(v: &Value) -> Vec<String> {
    v["parts"]
        .as_array()
        .unwrap_or_else(|| panic!("no parts in {v}"))
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_string())
        .collect()
}

/// The names of a snapshot report's pause phases, in order.
pub fn phase_names(v: &Value) -> Vec<&str> {
    v["pause_phases"]
        .as_array()
        .unwrap_or_else(|| panic!("no pause_phases in {v}"))
        .iter()
        .filter_map(|p| p["phase"].as_str())
        .collect()
}

/// `rbk restore ID --to DIR`, which must succeed; the directory.
pub fn restore_to(env: &Env, id: &str, name: &str) -> PathBuf {
    let dir = env.path(name);
    rbk_ok(env, &["restore", id, "--to", dir.to_str().unwrap()]);
    dir
}

pub fn assert_contains(haystack: &str, needle: &str, what: &str) {
    assert!(
        haystack.contains(needle),
        "{what}: expected {needle:?} in:\n{haystack}"
    );
}
