//! Proves that processes share a repository safely: concurrent snapshots both land, an
//! exclusive lock keeps snapshots out (and is kept out by them) with a message naming the
//! holder, and locks of dead processes block nothing and are removed by `rbk unlock`.

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use rbk::store::StoreError;
use rbk::store::format::{FileKind, seal_file};
use rbk::store::lock::{LOCK_VERSION, LockInfo, hostname};

use crate::util::*;

const GUARD: Duration = Duration::from_secs(300);

/// A producer that announces itself with `started`, waits for `go`, then prints `file`.
/// rbk takes its lock before it starts the producer, so `started` means "rbk holds its lock".
fn gated_producer(started: &Path, go: &Path, file: &Path) -> String {
    format!(
        "set -e; : > '{}'; n=0; while [ ! -e '{}' ]; do sleep 0.01; n=$((n+1)); [ $n -lt 30000 ]; done; cat '{}'",
        started.display(),
        go.display(),
        file.display()
    )
}

fn spawn_snapshot(env: &Env, part: &str, script: &str) -> Child {
    env.cmd(&[
        "--json",
        "snapshot",
        "--command",
        part,
        "--",
        "sh",
        "-c",
        script,
    ])
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .expect("spawn rbk snapshot")
}

fn wait_for(path: &Path) {
    let deadline = Instant::now() + GUARD;
    while !path.exists() {
        assert!(
            Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Two snapshots run at the same time, with data that partly overlaps: each rbk waits in its
/// producer until the other has started, so both hold the repository at once.
#[test]
fn two_snapshots_started_at_once_both_succeed() {
    let env = Env::new();
    let a = semi_compressible(6 * MIB, 110);
    let mut b = a[..3 * MIB].to_vec();
    b.extend_from_slice(&random_bytes(3 * MIB, 111));
    let (fa, fb) = (env.write("a.bin", &a), env.write("b.bin", &b));
    let (sa, sb) = (env.path("started-a"), env.path("started-b"));
    // Each one's "go" is the other's "started".
    let ca = spawn_snapshot(&env, "a.bin", &gated_producer(&sa, &sb, &fa));
    let cb = spawn_snapshot(&env, "b.bin", &gated_producer(&sb, &sa, &fb));
    let ra = wait_with_guard(ca, GUARD, "snapshot a");
    let rb = wait_with_guard(cb, GUARD, "snapshot b");
    assert_eq!(ra.code, EXIT_OK, "snapshot a:\n{}", ra.all());
    assert_eq!(rb.code, EXIT_OK, "snapshot b:\n{}", rb.all());
    let (ia, ib) = (id_of(&ra.json()), id_of(&rb.json()));

    let listed: Vec<String> = env.snapshots().iter().map(id_of).collect();
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert!(listed.contains(&ia) && listed.contains(&ib), "{listed:?}");
    for (id, name, data) in [(&ia, "a.bin", &a), (&ib, "b.bin", &b)] {
        let to = env.path(&format!("restored-{name}"));
        env.ok(&["restore", id, "--to", to.to_str().unwrap()]);
        assert_file_is(&to.join(name), data, name);
    }
    let (r, v) = env.check(true);
    assert_eq!(r.code, EXIT_OK, "{}", r.all());
    assert_eq!(v["errors"].as_array().unwrap().len(), 0, "{v}");
    // Both writers' packs are indexed, even where they hold the same blobs.
    assert_eq!(v["warnings"].as_array().unwrap().len(), 0, "{v}");
    assert!(
        names_in(&env.repo.join("locks")).is_empty(),
        "both locks are released"
    );
}

/// An exclusive lock held through the library (as maintenance would hold it) makes
/// `rbk snapshot` exit 4 naming the holder, without writing anything; once released, the
/// same snapshot succeeds.
#[test]
fn an_exclusive_lock_blocks_a_snapshot_until_released() {
    let env = Env::new();
    let input = env.write("in.bin", &random_bytes(500_000, 112));
    let repo = env.open();
    let guard = repo.lock(true, "it-maintenance").expect("exclusive lock");
    let before = tree_digest(&env.repo.join("data"));

    let r = env.run(&["snapshot", "--path", input.to_str().unwrap()]);
    assert_eq!(
        r.code,
        EXIT_LOCKED,
        "a snapshot under an exclusive lock:\n{}",
        r.all()
    );
    for needle in [
        "locked",
        "exclusive",
        &format!("pid {}", std::process::id()),
        "it-maintenance",
        "rbk unlock",
    ] {
        assert!(
            r.stderr.contains(needle),
            "the message must mention {needle:?}:\n{}",
            r.stderr
        );
    }
    assert!(
        env.snapshot_files().is_empty(),
        "no snapshot under an exclusive lock"
    );
    assert_eq!(
        tree_digest(&env.repo.join("data")),
        before,
        "nothing written under an exclusive lock"
    );

    drop(guard);
    let id = id_of(&env.snapshot(&["--path", input.to_str().unwrap()]));
    assert_eq!(env.snapshot_files(), vec![id]);
}

/// While `rbk snapshot` runs, an exclusive lock is refused naming the snapshot's process,
/// a shared one is granted, and after the snapshot the exclusive lock is granted too.
#[test]
fn a_running_snapshot_keeps_an_exclusive_lock_out() {
    let env = Env::new();
    let data = random_bytes(1_000_000, 113);
    let file = env.write("in.bin", &data);
    let (started, go) = (env.path("started"), env.path("go"));
    let child = spawn_snapshot(&env, "in.bin", &gated_producer(&started, &go, &file));
    let pid = child.id();
    wait_for(&started);

    let repo = env.open();
    match repo.lock(true, "it-maintenance") {
        Err(StoreError::Locked { holder }) => {
            assert!(
                holder.contains(&format!("pid {pid}"))
                    && holder.contains("snapshot")
                    && holder.contains("shared"),
                "the holder is named: {holder}"
            );
        }
        Err(e) => panic!("expected Locked, got {e}"),
        Ok(_) => panic!("an exclusive lock was granted while a snapshot ran"),
    }
    let shared = repo.lock(false, "it-reader").expect("shared locks coexist");
    drop(shared);

    std::fs::write(&go, b"").unwrap();
    let r = wait_with_guard(child, GUARD, "the gated snapshot");
    assert_eq!(r.code, EXIT_OK, "{}", r.all());
    drop(
        repo.lock(true, "it-maintenance")
            .expect("the exclusive lock once the snapshot is done"),
    );
    let to = env.path("restored");
    env.ok(&["restore", "latest", "--to", to.to_str().unwrap()]);
    assert_file_is(&to.join("in.bin"), &data, "the gated snapshot");
}

/// Writes a lock file as another process would have: encrypted like rbk's own.
pub(crate) fn plant_lock(env: &Env, name: &str, info: &LockInfo) {
    let repo = env.open();
    let bytes = seal_file(repo.crypto(), FileKind::Lock, LOCK_VERSION, info);
    repo.backend()
        .write_new(FileKind::Lock, name, &bytes)
        .expect("write lock");
}

pub(crate) fn lock_info(host: &str, pid: u32, age_secs: i64) -> LockInfo {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    LockInfo {
        kind: rbk::store::lock::LockKind::Exclusive,
        host: host.to_string(),
        pid,
        command: format!("it-planted-{pid}"),
        created: now - age_secs,
        refreshed: now - age_secs,
        nonce: u64::from(pid),
        machine: if host == hostname() {
            rbk::store::lock::machine_id()
        } else {
            "another-machine".into()
        },
    }
}

/// Exclusive locks left by processes that are gone (dead pid on this host, or not refreshed
/// for over 30 minutes on another) do not block; live ones (a running pid here, a fresh lock
/// from another host) do, which proves the planted files are read at all. `rbk unlock` removes
/// the stale ones and keeps the live ones.
#[test]
fn stale_locks_do_not_block_and_unlock_removes_them() {
    let env = Env::new();
    let input = env.write("in.bin", b"small input");
    let snapshot = || env.run(&["snapshot", "--path", input.to_str().unwrap()]);

    let mut gone = std::process::Command::new("true").spawn().unwrap();
    let dead_pid = gone.id();
    gone.wait().unwrap();
    plant_lock(&env, "dead-pid", &lock_info(&hostname(), dead_pid, 0));
    plant_lock(
        &env,
        "old-other-host",
        &lock_info("it-other-host", 1, 31 * 60),
    );
    let r = snapshot();
    assert_eq!(r.code, EXIT_OK, "stale locks must not block:\n{}", r.all());

    let mut sleeper = std::process::Command::new("sleep")
        .arg("300")
        .spawn()
        .unwrap();
    plant_lock(&env, "live-pid", &lock_info(&hostname(), sleeper.id(), 0));
    let r = snapshot();
    assert_eq!(
        r.code,
        EXIT_LOCKED,
        "a live exclusive lock blocks:\n{}",
        r.all()
    );
    assert!(
        r.stderr.contains(&format!("pid {}", sleeper.id())),
        "{}",
        r.stderr
    );

    let r = env.ok(&["--json", "unlock"]);
    let v = r.json();
    assert_eq!(
        v["removed"].as_array().unwrap().len(),
        2,
        "the dead-pid and the old lock: {v}"
    );
    assert_eq!(v["kept"].as_array().unwrap().len(), 1, "the live lock: {v}");
    assert_eq!(
        names_in(&env.repo.join("locks")),
        vec!["live-pid".to_string()]
    );

    sleeper.kill().unwrap();
    sleeper.wait().unwrap();
    let r = snapshot();
    assert_eq!(
        r.code,
        EXIT_OK,
        "once its process is gone the lock is stale:\n{}",
        r.all()
    );

    plant_lock(&env, "fresh-other-host", &lock_info("it-other-host", 1, 0));
    let r = snapshot();
    assert_eq!(
        r.code,
        EXIT_LOCKED,
        "a fresh lock from another host cannot be judged by pid and blocks:\n{}",
        r.all()
    );
    assert!(r.stderr.contains("it-other-host"), "{}", r.stderr);
    // --all removes locks that look alive too.
    env.ok(&["unlock", "--all"]);
    assert!(names_in(&env.repo.join("locks")).is_empty());
    assert_eq!(snapshot().code, EXIT_OK);
}

/// An rbk killed with SIGKILL while it holds its lock leaves the lock file behind; it blocks
/// neither an exclusive lock nor a snapshot, and `rbk unlock` removes it.
#[test]
fn the_lock_of_a_killed_rbk_is_stale() {
    let env = Env::new();
    let file = env.write("in.bin", &random_bytes(100_000, 114));
    let (started, go) = (env.path("started"), env.path("go"));
    let mut child = spawn_snapshot(&env, "in.bin", &gated_producer(&started, &go, &file));
    wait_for(&started);
    child.kill().unwrap();
    child.wait().unwrap();
    // Let the orphaned producer finish instead of polling for minutes.
    std::fs::write(&go, b"").unwrap();
    let locks = names_in(&env.repo.join("locks"));
    assert_eq!(locks.len(), 1, "the killed rbk's lock remains: {locks:?}");

    let repo = env.open();
    drop(
        repo.lock(true, "it-maintenance")
            .expect("a dead process's lock is stale"),
    );
    let id = id_of(&env.snapshot(&["--path", file.to_str().unwrap()]));
    assert_eq!(env.snapshot_files(), vec![id]);

    let v = env.ok(&["--json", "unlock"]).json();
    assert_eq!(v["removed"].as_array().unwrap().len(), 1, "{v}");
    assert!(names_in(&env.repo.join("locks")).is_empty());
}
