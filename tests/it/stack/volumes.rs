//! Proves `rbk snapshot --volumes`: the stack's other named volumes round-trip as tar parts, with owners, modes, times and empty directories.

use super::*;

const UPLOADS: &str = "volume.rushdb-uploads.tar";
const LOGS: &str = "volume.neo4j-logs.tar";

/// Every entry under the volume: path, type, mode, owner, group, size (files), link target
/// and mtime in seconds (what a tar keeps), one line each in name order; then the SHA-256
/// of every regular file.
fn listing(stack: &Stack, dir: &str) -> String {
    let script = format!(
        "set -e; cd {dir}; \
         find . \\( -type d -printf '%P|d|%m|%U|%G|%Ts\\n' \\) \
                -o -printf '%P|%y|%m|%U|%G|%s|%l|%Ts\\n' | LC_ALL=C sort; \
         find . -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum"
    );
    docker(&["exec", &stack.rushdb(), "sh", "-c", &script])
}

/// `rushdb-uploads` (on rushdb, see tests/images/compose.yaml) gets files with unusual modes
/// and owners, an empty directory with mode 0700, a symlink and 300 kB of random bytes. A
/// snapshot with `--volumes` stores it and `neo4j-logs` (Neo4j's data volume and Postgres's
/// are dumped, not archived) as tar parts and names them in the labels; `restore --to` writes
/// the tars, which the host's tar reads. The volume is then changed (files removed, added,
/// modes changed, the empty directory gone) and `rbk restore` must put it back exactly,
/// with the databases, rushdb running again.
#[test]
fn stack_volumes_round_trip() {
    let Some(_turn) = docker_test("stack_volumes_round_trip") else {
        return;
    };
    let started = Instant::now();
    let stack = Stack::up("volumes", Variant::Postgres);
    let setup = "set -e; cd /uploads; \
                 mkdir -p a/empty b/deep/er; chmod 0700 a/empty; chmod 0751 b; \
                 printf hello > a/f; chmod 0640 a/f; chown 1234:5678 a/f; \
                 head -c 300000 /dev/urandom > b/deep/er/big.bin; chmod 0600 b/deep/er/big.bin; \
                 printf '#!/bin/sh\\n' > run.sh; chmod 4755 run.sh; \
                 ln -s a/f link; touch -h -d @1000000000 a/f link; touch -d @1200000000 b";
    docker(&["exec", &stack.rushdb(), "sh", "-c", setup]);
    stack.psql("insert into projects (name, token) values ('alpha', 'tok-alpha')");
    let uploads_a = listing(&stack, "/uploads");
    assert_contains(&uploads_a, "a/empty|d|700|0|0|", "the set-up");
    assert_contains(
        &uploads_a,
        "a/f|f|640|1234|5678|5||1000000000",
        "the set-up",
    );
    let projects = "select id, name, token from projects order by id";
    let projects_a = stack.psql(projects);

    let env = Env::new();
    let plan = rbk_ok(&env, &["--json", "snapshot", "--dry-run", "--volumes"]).json();
    assert_eq!(
        plan["parts"],
        serde_json::json!([GRAPH, PG, UPLOADS, LOGS]),
        "{plan}"
    );
    let s1 = stack_snapshot(&env, &["--volumes"]);
    let id1 = id_of(&s1);
    assert_eq!(part_names(&s1), [GRAPH, PG, UPLOADS, LOGS], "{s1}");
    let listed = list(&env);
    assert_eq!(
        listed[0]["labels"]["volumes"], "rushdb-uploads,neo4j-logs",
        "{listed:?}"
    );
    assert_eq!(stack.oneoffs(), Vec::<String>::new(), "no one-off left");
    stack.settle();

    // ---- the tars, as files, read by the host's tar
    let dir1 = restore_to(&env, &id1, "s1");
    let out = Command::new("tar")
        .arg("-tvf")
        .arg(dir1.join(UPLOADS))
        .output()
        .expect("run tar");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let toc = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "drwx------",
        "./a/empty/",
        "./b/deep/er/big.bin",
        "-rwsr-xr-x",
        "./link -> a/f",
    ] {
        assert_contains(&toc, needle, "the volume tar");
    }
    assert!(dir1.join(LOGS).is_file());

    // ---- changes, then the restore
    let change = "set -e; cd /uploads; rm -rf a/empty b/deep; rm a/f; chmod 0644 run.sh; \
                  mkdir c; echo new > c/new.txt";
    docker(&["exec", &stack.rushdb(), "sh", "-c", change]);
    assert_ne!(listing(&stack, "/uploads"), uploads_a);
    stack.psql("update projects set token = 'rotated'");
    stack.settle();
    let rushdb_started = stack.started_at(&["rushdb"]);
    let report = rbk_done(&env, &["--json", "restore", &id1]).json();
    assert_eq!(
        report["restored"],
        serde_json::json!([GRAPH, LOGS, PG, UPLOADS]),
        "{report}"
    );
    stack.wait_running(&["rushdb", "neo4j", "postgres"]);
    assert_ne!(
        stack.started_at(&["rushdb"]),
        rushdb_started,
        "rushdb was stopped"
    );
    assert_eq!(
        listing(&stack, "/uploads"),
        uploads_a,
        "the volume is back exactly: nothing added, nothing missing, same modes and owners"
    );
    assert_eq!(stack.psql(projects), projects_a, "the metadata is back too");
    assert_eq!(stack.oneoffs(), Vec::<String>::new(), "no one-off left");
    stack.wait_heartbeats(stack.max_heartbeat());

    // ---- without --volumes, no volume part
    let s2 = stack_snapshot(&env, &[]);
    assert_eq!(part_names(&s2), [GRAPH, PG], "{s2}");
    println!(
        "volumes round trip: pause {} ms with volumes, {} ms without; whole test {:.1} s",
        s1["pause_ms"],
        s2["pause_ms"],
        started.elapsed().as_secs_f64()
    );
}
