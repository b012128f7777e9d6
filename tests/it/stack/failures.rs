//! Proves a stack snapshot that fails or is interrupted commits nothing, leaves no one-off container and always starts the stack again.

use std::io::{BufRead, BufReader};
use std::sync::mpsc;

use super::*;

/// What must hold after any failed or interrupted stack snapshot.
struct Before {
    listed: Vec<Value>,
    packs: Vec<PathBuf>,
    postgres_started: Option<BTreeMap<String, String>>,
}

impl Before {
    fn take(env: &Env, stack: &Stack) -> Before {
        Before {
            listed: list(env),
            packs: env.packs(),
            postgres_started: (stack.variant == Variant::Postgres)
                .then(|| stack.started_at(&["postgres"])),
        }
    }

    /// No snapshot, no pack left, no one-off container, rushdb and neo4j running again,
    /// postgres never touched, heartbeats flowing, the repository sound.
    fn assert_nothing_left(&self, env: &Env, stack: &Stack, what: &str) {
        assert_eq!(list(env), self.listed, "{what}: a snapshot was committed");
        assert_eq!(env.packs(), self.packs, "{what}: packs were left behind");
        assert_eq!(
            stack.oneoffs(),
            Vec::<String>::new(),
            "{what}: a one-off container was left"
        );
        stack.wait_running(&["rushdb", "neo4j"]);
        if let Some(started) = &self.postgres_started {
            assert_eq!(
                &stack.started_at(&["postgres"]),
                started,
                "{what}: postgres was restarted"
            );
        }
        stack.settle();
        let (r, v) = env.check(false);
        // A pack the failed run left in no index is a warning (6), not damage.
        assert_eq!(
            r.code,
            check_code_for(&v),
            "{what}: rbk check:\n{}",
            r.all()
        );
        assert_eq!(v["errors"], serde_json::json!([]), "{what}: {v}");
    }
}

/// `neo4j-admin` writes 200,000 bytes of the dump, then fails (the stand-in's knob, read from
/// the neo4j volume since rbk decides the one-off container's environment).
#[test]
fn stack_snapshot_with_a_dump_failing_halfway_commits_nothing() {
    let Some(_turn) = docker_test("stack_snapshot_with_a_dump_failing_halfway_commits_nothing")
    else {
        return;
    };
    let started = Instant::now();
    let stack = Stack::up("dumpfail", Variant::Postgres);
    // About 1.2 MB of dump, so the failure lands in the middle of it.
    stack.graph(&["graph-fill", "5000"]);
    let env = Env::new();
    stack_snapshot(&env, &[]);
    stack.settle();
    stack.set_knob("NEO4J_ADMIN_FAIL_AFTER_BYTES", "200000");
    let before = Before::take(&env, &stack);

    let r = rbk(&env, &["snapshot"]);
    assert_not_done(&r, "the snapshot must fail");
    assert_ne!(r.code, -1, "rbk died by a signal:\n{}", r.all());
    for needle in [
        GRAPH,
        // The stand-in's stderr tail: its progress line and its error.
        "Starting dump of database 'neo4j'",
        "neo4j-admin: Failed to dump database: simulated I/O error after 200000 bytes \
         (NEO4J_ADMIN_FAIL_AFTER_BYTES)",
        "exited with status 1",
        "nothing was saved",
    ] {
        assert_contains(&r.stderr, needle, "the error message");
    }
    println!("the failed snapshot said:\n{}", r.stderr.trim());
    before.assert_nothing_left(&env, &stack, "dump failing halfway");

    // The failure changed nothing that the next night's snapshot depends on.
    stack.clear_knobs();
    stack_snapshot(&env, &[]);
    assert_eq!(list(&env).len(), before.listed.len() + 1);
    println!(
        "dump failing halfway: whole test {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// A second signal while the first one's restart is under way (an impatient user pressing
/// Ctrl-C again, or systemd's SIGTERM after a Ctrl-C) cannot cut the restart short: rbk still
/// exits 130 only once neo4j and rushdb run again, and nothing is saved.
#[test]
fn a_second_signal_cannot_cut_the_restart_short() {
    let Some(_turn) = docker_test("a_second_signal_cannot_cut_the_restart_short") else {
        return;
    };
    let stack = Stack::up("second_signal", Variant::Postgres);
    stack.graph(&["graph-fill", "2500"]);
    let env = Env::new();
    stack_snapshot(&env, &[]);
    stack.settle();
    stack.set_knob("NEO4J_ADMIN_BYTES_PER_SEC", "50000");
    let before = Before::take(&env, &stack);
    let child = rbk_cmd(&env, &["snapshot"]).spawn().expect("spawn rbk");
    wait_until(RBK_GUARD, "the one-off dump container runs", || {
        stack.running_oneoffs().len() == 1 && !is_running(&stack.neo4j())
    });
    let pid = child.id() as libc::pid_t;
    // SAFETY: kill(2) on the pid of our own child, which has not been waited for.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGINT) }, 0);
    // The second lands while the watcher removes the one-off and starts neo4j and rushdb.
    std::thread::sleep(Duration::from_millis(30));
    // SAFETY: as above; the child cannot have been reaped, nothing waited for it yet.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGINT) }, 0);
    std::thread::sleep(Duration::from_millis(30));
    // SAFETY: as above.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let r = wait_with_guard(child, RBK_GUARD, "rbk snapshot after three signals");
    // Read at once: what runs when rbk has exited is what rbk left, not what Docker's
    // restart policy brought back later.
    let running = (is_running(&stack.neo4j()), is_running(&stack.rushdb()));
    assert_eq!(
        r.code,
        130,
        "rbk must exit 130, not die of a signal:\n{}",
        r.all()
    );
    assert_eq!(
        running,
        (true, true),
        "neo4j and rushdb run when rbk exits:\n{}",
        r.all()
    );
    stack.clear_knobs();
    before.assert_nothing_left(&env, &stack, "three signals");
}

/// Ctrl-C (SIGINT), then SIGTERM, while the one-off container is streaming a throttled dump:
/// rbk removes the one-off, starts neo4j and rushdb again and exits non-zero; nothing saved.
#[test]
fn stack_snapshot_interrupted_mid_dump_restarts_the_stack() {
    let Some(_turn) = docker_test("stack_snapshot_interrupted_mid_dump_restarts_the_stack") else {
        return;
    };
    let started = Instant::now();
    let stack = Stack::up("interrupt", Variant::Postgres);
    // About 600 kB of dump at 50 kB/s: some twelve seconds, far longer than the test waits.
    stack.graph(&["graph-fill", "2500"]);
    let env = Env::new();
    stack_snapshot(&env, &[]);
    stack.settle();
    stack.set_knob("NEO4J_ADMIN_BYTES_PER_SEC", "50000");

    for (signal, name) in [(libc::SIGINT, "SIGINT"), (libc::SIGTERM, "SIGTERM")] {
        let before = Before::take(&env, &stack);
        let child = rbk_cmd(&env, &["snapshot"]).spawn().expect("spawn rbk");
        // The dump is running: neo4j stopped, the one-off container up and past its first
        // log line (so the signal lands while bytes flow, not before the dump began).
        wait_until(RBK_GUARD, "the one-off dump container runs", || {
            let running = stack.running_oneoffs();
            running.len() == 1
                && !is_running(&stack.neo4j())
                && docker_out(&["logs", &running[0]])
                    .stderr
                    .windows(b"Starting dump".len())
                    .any(|w| w == b"Starting dump")
        });
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
        // 130 as docs/ARCHITECTURE.md says, for both signals: the signal task owns the exit.
        // (Before src/pause.rs made the main thread yield to it, the main thread sometimes
        // won the race and exited 1, blaming the dump the signal task had just killed.)
        assert_eq!(
            r.code,
            130,
            "{name}: rbk must exit 130 (-1: it died of the signal unhandled):\n{}",
            r.all()
        );
        assert!(
            !r.stderr.contains("dump failed"),
            "{name}: the interruption is not reported as a failed dump:\n{}",
            r.stderr
        );
        assert!(
            took < Duration::from_secs(15),
            "{name}: rbk took {took:?} to exit"
        );
        assert_contains(&r.stderr, "no snapshot is saved", name);
        // rbk removed the one-off before it exited, not some time later.
        assert_eq!(
            stack.oneoffs(),
            Vec::<String>::new(),
            "{name}: a one-off container outlived rbk"
        );
        before.assert_nothing_left(&env, &stack, name);
    }
    println!(
        "interrupted mid-dump: whole test {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// Ctrl-C (SIGINT), then SIGTERM, after rbk has started the stack again but before the commit:
/// rbk exits 130 at once (tokio's signal handlers stay installed once the pause is over, so
/// without a listener the signal would be swallowed and the commit would run on). The window
/// is held open by the test knob `RBK_TEST_DELAY_COMMIT_MS` (30 s here): the exit must come
/// long before it closes, and nothing is committed. An exit at any later point is safe as
/// well (the store renames packs, index and snapshot into place in that order; killing rbk
/// mid-commit is tested in tests/it/crash.rs).
#[test]
fn stack_snapshot_interrupted_after_the_restart_exits_at_once() {
    let Some(_turn) = docker_test("stack_snapshot_interrupted_after_the_restart_exits_at_once")
    else {
        return;
    };
    let started = Instant::now();
    let stack = Stack::up("latesignal", Variant::Postgres);
    let env = Env::new();
    for (signal, name) in [(libc::SIGINT, "SIGINT"), (libc::SIGTERM, "SIGTERM")] {
        stack.settle();
        let listed = list(&env);
        let rushdb_started = stack.started_at(&["rushdb"]);
        let child = rbk_cmd(&env, &["snapshot"])
            .env("RBK_TEST_DELAY_COMMIT_MS", "30000")
            .spawn()
            .expect("spawn rbk");
        // rbk stopped rushdb and started it again: the pause is over, the commit is waiting.
        wait_until(RBK_GUARD, "rbk started rushdb again", || {
            is_running(&stack.rushdb()) && stack.started_at(&["rushdb"]) != rushdb_started
        });
        wait_until(READY, "neo4j runs", || is_running(&stack.neo4j()));
        // The pause guard is dropped right after the start returns; give it that moment.
        std::thread::sleep(Duration::from_millis(500));
        // SAFETY: kill(2) on the pid of our own child, which has not been waited for.
        let rc = unsafe { libc::kill(child.id() as libc::pid_t, signal) };
        assert_eq!(rc, 0, "kill: {}", std::io::Error::last_os_error());
        let sent = Instant::now();
        let r = wait_with_guard(child, RBK_GUARD, &format!("rbk snapshot after {name}"));
        let took = sent.elapsed();
        println!(
            "{name} after the restart: rbk exited {} after {} ms; it said:\n{}",
            r.code,
            took.as_millis(),
            r.stderr.trim()
        );
        assert_eq!(r.code, 130, "{name}: {}", r.all());
        assert!(
            took < Duration::from_secs(5),
            "{name}: rbk took {took:?} to exit (the commit delay is 30 s)"
        );
        assert_contains(
            &r.stderr,
            "interrupted after the stack was started again",
            name,
        );
        assert_eq!(list(&env), listed, "{name}: nothing was committed");
        assert_eq!(stack.oneoffs(), Vec::<String>::new(), "{name}: one-offs");
        stack.wait_running(&["rushdb", "neo4j", "postgres"]);
        let (r, v) = env.check(false);
        // Packs the interrupted run wrote before its commit are warnings (6), not damage.
        assert_eq!(
            r.code,
            check_code_for(&v),
            "{name}: rbk check:\n{}",
            r.all()
        );
        assert_eq!(v["errors"], serde_json::json!([]), "{name}: {v}");
    }
    // The knob unset: the same stack snapshots as usual.
    stack.settle();
    stack_snapshot(&env, &[]);
    assert_eq!(list(&env).len(), 1);
    println!(
        "interrupted after the restart: whole test {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// A container that will not stop, as far as this engine allows one.
///
/// What the engine does (Docker 20.10, kernel 6.x, cgroup v1) was tried first, by hand:
/// `docker stop` on a `docker pause`d container unpauses it and stops it (exit 0); a container
/// frozen through the cgroup freezer directly is killed by the SIGKILL after the stop timeout
/// (exit 137); a process that ignores its stop signal is killed the same way. SIGKILL is never
/// refused here, so no container "will not stop". What is tested instead:
///
/// 1. rushdb ignores its stop signal (`stop_signal: SIGWINCH`): rbk's `stop_timeout` from
///    rbk.toml (3 s) is what the engine waits before it kills; the snapshot still succeeds.
/// 2. rushdb is `docker pause`d before the snapshot: whatever the engine does with it, rbk
///    either saves a snapshot and leaves rushdb running (unpaused), or fails naming it.
/// 3. SIGINT while the engine waits out rushdb's stop: rbk waits for the stop in flight, then
///    starts rushdb before it exits 130 (it used to start it too early and leave it stopped).
/// 4. The stop call itself fails: while the engine waits out rushdb's stop timeout, the test
///    removes the neo4j container, so rbk's stop of neo4j gets the engine's 404. rbk must
///    exit non-zero naming the container, save nothing, start rushdb (which it had stopped)
///    again, and leave postgres (never stopped) running.
#[test]
fn stack_snapshot_with_a_container_that_will_not_stop() {
    let Some(_turn) = docker_test("stack_snapshot_with_a_container_that_will_not_stop") else {
        return;
    };
    let started = Instant::now();
    let stack = Stack::up_with(
        "nostop",
        Variant::Postgres,
        Some("services:\n  rushdb:\n    stop_signal: SIGWINCH\n"),
    );
    assert_eq!(
        inspect(&stack.rushdb(), "{{.Config.StopSignal}}"),
        "SIGWINCH"
    );
    let env = Env::new();
    let config = env.write("rbk.toml", b"[stack]\nstop_timeout = 3\n");
    let config = config.to_str().unwrap();

    // 1. Ignored stop signal: killed after rbk's stop timeout.
    let s1 = stack_snapshot(&env, &["--config", config]);
    let pause1 = u64_of(&s1, "pause_ms");
    println!("rushdb ignoring SIGTERM: pause {pause1} ms with stop_timeout = 3");
    assert!(
        pause1 >= 3000,
        "rbk waited its stop_timeout for rushdb: {pause1} ms"
    );
    stack.settle();

    // 2. A paused rushdb.
    docker(&["pause", &stack.rushdb()]);
    let before = Before::take(&env, &stack);
    let r = rbk(&env, &["--json", "--config", config, "snapshot"]);
    if r.code == EXIT_OK || r.code == EXIT_WARNINGS {
        assert_done(&r, "the snapshot of a paused rushdb");
        println!("a paused rushdb: the engine stopped it; snapshot saved");
        assert_eq!(list(&env).len(), before.listed.len() + 1);
        stack.wait_running(&["rushdb", "neo4j"]);
        assert_eq!(inspect(&stack.rushdb(), "{{.State.Paused}}"), "false");
    } else {
        println!(
            "a paused rushdb: the engine refused to stop it:\n{}",
            r.stderr
        );
        assert_contains(&r.stderr, &stack.rushdb(), "the error names the container");
        assert_eq!(list(&env), before.listed, "nothing committed");
        assert!(is_running(&stack.rushdb()) && is_running(&stack.neo4j()));
        docker(&["unpause", &stack.rushdb()]);
    }

    // 3. Ctrl-C while the engine is still stopping rushdb. Starting it again at once would be
    //    a no-op (it still runs), and the stop would then complete after rbk had exited:
    //    rbk must wait for the stop in flight, then start rushdb. neo4j was not stopped yet
    //    and must not be touched.
    stack.settle();
    let before = Before::take(&env, &stack);
    let neo4j_started = stack.started_at(&["neo4j"]);
    let rushdb_started = stack.started_at(&["rushdb"]);
    let (kills, events) = watch_kills(&stack.rushdb());
    let child = rbk_cmd(&env, &["--config", config, "snapshot"])
        .spawn()
        .expect("spawn rbk");
    kills
        .recv_timeout(RBK_GUARD)
        .expect("rbk never stopped rushdb");
    drop(events);
    // SAFETY: kill(2) on the pid of our own child, which has not been waited for.
    let rc = unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
    assert_eq!(rc, 0, "kill: {}", std::io::Error::last_os_error());
    let sent = Instant::now();
    let r = wait_with_guard(child, RBK_GUARD, "rbk snapshot after SIGINT");
    println!(
        "SIGINT during rushdb's stop: rbk exited {} after {} ms (the stop it waited out)",
        r.code,
        sent.elapsed().as_millis()
    );
    assert_eq!(r.code, 130, "{}", r.all());
    // rbk waited out the stop and started rushdb before it exited: a new start, not the
    // old process that the engine was still about to kill (a start during a stop is a no-op).
    assert!(
        is_running(&stack.rushdb()),
        "rushdb was left stopped:\n{}",
        r.all()
    );
    assert_ne!(
        stack.started_at(&["rushdb"]),
        rushdb_started,
        "rushdb was not started again after its stop completed, so it is left stopped:\n{}",
        r.all()
    );
    assert_eq!(
        stack.started_at(&["neo4j"]),
        neo4j_started,
        "neo4j was never stopped"
    );
    before.assert_nothing_left(&env, &stack, "SIGINT during a stop");

    // 4. The stop call fails.
    stack.settle();
    let before = Before::take(&env, &stack);
    let rushdb_started = stack.started_at(&["rushdb"]);
    let (kills, events) = watch_kills(&stack.rushdb());
    let child = rbk_cmd(&env, &["--config", config, "snapshot"])
        .spawn()
        .expect("spawn rbk");
    // rbk has sent rushdb its stop signal; the engine now waits 3 s before it kills.
    kills
        .recv_timeout(RBK_GUARD)
        .expect("rbk never stopped rushdb");
    docker(&["rm", "-f", &stack.neo4j()]);
    let r = wait_with_guard(child, RBK_GUARD, "rbk snapshot");
    drop(events);
    println!("the stop call failing:\n{}", r.stderr.trim());
    assert_not_done(&r, "rbk must fail");
    assert_contains(&r.stderr, &stack.neo4j(), "the error names the container");
    assert_contains(&r.stderr, "stopping", "the error says what failed");
    // rbk also says it could not start the vanished container again.
    assert_contains(
        &r.stderr,
        "could not start",
        "the restart failure is reported",
    );
    assert_eq!(list(&env), before.listed, "nothing committed");
    assert_eq!(env.packs(), before.packs, "no packs left");
    stack.wait_running(&["rushdb"]);
    assert_ne!(
        stack.started_at(&["rushdb"]),
        rushdb_started,
        "rushdb was stopped, so it was started again"
    );
    assert_eq!(
        stack.started_at(&["postgres"]),
        before.postgres_started.clone().unwrap(),
        "postgres was never stopped"
    );
    stack.wait_heartbeats(stack.max_heartbeat());
    println!(
        "a container that will not stop: whole test {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// `docker events` for the stop signal the engine sends `container`, from now on: a channel
/// that receives one message per signal, and the watcher (killed when dropped).
fn watch_kills(container: &str) -> (mpsc::Receiver<String>, Watcher) {
    // --since replays from just before this call, so an event that happens while the
    // watcher is still subscribing is not missed.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    let since = format!("{}.{:09}", now.as_secs(), now.subsec_nanos());
    let mut child = Command::new("docker")
        .args([
            "events",
            "--since",
            &since,
            "--filter",
            &format!("container={container}"),
            "--filter",
            "event=kill",
            "--format",
            "{{.Action}} {{index .Actor.Attributes \"signal\"}}",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("docker events");
    let out = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (rx, Watcher(child))
}

struct Watcher(std::process::Child);

impl Drop for Watcher {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
