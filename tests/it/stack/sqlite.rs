//! SQLite metadata beyond the plain file: a write-ahead log left by a killed RushDB is part
//! of the consistent copy, a stale one is never replayed into a restored file, and the file
//! keeps the owner the service runs as.

use super::*;

const PROJECTS: &str = "select id, name, token from projects order by id";

/// Runs `sql` in a process inside the rushdb container that commits it in WAL mode and then
/// holds its connection until the container stops: killed, not closed, so what it wrote
/// lives only in the WAL (SQLite checkpoints when the last connection closes cleanly).
fn commit_and_hold(stack: &Stack, sql: &str) {
    let holder = format!(
        "import sqlite3, time\n\
         c = sqlite3.connect('/data/rushdb.db', timeout=10)\n\
         c.execute('pragma journal_mode=wal')\n\
         c.execute(\"{sql}\")\n\
         c.commit()\n\
         time.sleep(3600)\n"
    );
    docker(&["exec", "-d", &stack.rushdb(), "python3", "-c", &holder]);
}

fn wait_for(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn stack_sqlite_wal_is_kept_and_stale_wal_is_not_replayed() {
    let Some(_turn) = docker_test("stack_sqlite_wal_is_kept_and_stale_wal_is_not_replayed") else {
        return;
    };
    let stack = Stack::up("sqlitewal", Variant::Sqlite);
    stack.sqlite("insert into projects (name, token) values ('alpha', 'tok-alpha')");
    let projects_0 = stack.sqlite(PROJECTS);

    // 1. A snapshot of the plain file: no WAL part.
    let env = Env::new();
    let s0 = stack_snapshot(&env, &[]);
    let id0 = id_of(&s0);
    assert!(
        !part_names(&s0).iter().any(|n| n == "rushdb.db-wal"),
        "{s0}"
    );

    // 2. A killed writer leaves a WAL that deletes every project; the file gets another owner.
    // Settled first: the restore below stops rushdb, which ignores SIGTERM until it is up.
    stack.settle();
    commit_and_hold(&stack, "delete from projects");
    wait_for("the delete", || stack.sqlite(PROJECTS).trim().is_empty());
    docker(&[
        "exec",
        &stack.rushdb(),
        "chown",
        "1234:1234",
        "/data/rushdb.db",
    ]);

    // 3. Restoring s0 puts back its rows: the stale WAL is not replayed into it (SQLite
    // would, were it left beside the file), and the file keeps its owner.
    rbk_done(&env, &["restore", &id0]);
    stack.settle();
    assert_eq!(
        stack.sqlite(PROJECTS),
        projects_0,
        "a stale WAL was replayed"
    );
    assert_eq!(stack.sqlite("pragma integrity_check").trim(), "ok");
    assert_eq!(
        docker(&[
            "exec",
            &stack.rushdb(),
            "stat",
            "-c",
            "%u:%g",
            "/data/rushdb.db"
        ])
        .trim(),
        "1234:1234",
        "the restored file keeps its owner"
    );

    // 4. A row that lives only in the WAL when RushDB is stopped is stored with it...
    commit_and_hold(
        &stack,
        "insert into projects (name, token) values ('in-wal', 'tok-wal')",
    );
    wait_for("the WAL row", || stack.sqlite(PROJECTS).contains("in-wal"));
    let projects_1 = stack.sqlite(PROJECTS);
    let s1 = stack_snapshot(&env, &[]);
    let id1 = id_of(&s1);
    let names = part_names(&s1);
    assert!(
        names.iter().any(|n| n == "rushdb.db-wal"),
        "the WAL was not stored: {names:?}"
    );
    // ...and the stored pair opens with it, on the host.
    let dir = restore_to(&env, &id1, "s1");
    let out = Command::new("sqlite3")
        .arg("-batch")
        .arg(dir.join("rushdb.db"))
        .arg(PROJECTS)
        .output()
        .expect("host sqlite3");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), projects_1);

    // 5. Back to s0, then to s1: the WAL row comes back with its snapshot.
    stack.settle();
    rbk_done(&env, &["restore", &id0]);
    stack.settle();
    assert_eq!(stack.sqlite(PROJECTS), projects_0);
    rbk_done(&env, &["restore", &id1]);
    stack.wait_running(&["rushdb", "neo4j"]);
    assert_eq!(stack.sqlite(PROJECTS), projects_1);

    // 6. Whoever can write /data (the service user) replaces the file by a link to another
    // file: the restore puts a regular file there, private (a link's 0777 says nothing of the
    // file's mode), and the other file stays as it was.
    stack.settle();
    docker(&[
        "exec",
        &stack.rushdb(),
        "sh",
        "-c",
        "echo secret > /data/other && chmod 600 /data/other && \
         rm -f /data/rushdb.db /data/rushdb.db-wal /data/rushdb.db-shm && \
         ln -s /data/other /data/rushdb.db",
    ]);
    rbk_done(&env, &["restore", &id0]);
    stack.settle();
    assert_eq!(stack.sqlite(PROJECTS), projects_0);
    let restored = docker(&[
        "exec",
        &stack.rushdb(),
        "stat",
        "-c",
        "%F %a",
        "/data/rushdb.db",
    ]);
    assert_eq!(restored.trim(), "regular file 600", "the restored file");
    let other = docker(&["exec", &stack.rushdb(), "stat", "-c", "%a", "/data/other"]);
    assert_eq!(other.trim(), "600", "the file the link pointed to");
    let other = docker(&["exec", &stack.rushdb(), "cat", "/data/other"]);
    assert_eq!(other.trim(), "secret", "the file the link pointed to");
}
