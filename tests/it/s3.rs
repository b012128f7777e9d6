//! Repositories on S3-compatible storage, against a real three-node Garage cluster (`garage.rs`): the backend contract, rbk's commands end to end, a node lost, the whole cluster lost mid-snapshot, and two writers racing for the lock.

use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use rbk::codec::neo4j_dump::DumpFormat;
use rbk::remote::s3::{S3Backend, S3Config};
use rbk::store::backend::Backend;
use rbk::store::lock::{LockGuard, LockKind};
use rbk::store::{InitOptions, Repository};
use serde_json::Value;

use crate::garage::{BUCKET, Garage, REGION};
use crate::stack::assert_contains;
use crate::util::*;

fn config(g: &Garage, endpoint: &str, prefix: &str) -> S3Config {
    S3Config {
        bucket: BUCKET.into(),
        prefix: prefix.into(),
        endpoint: Some(endpoint.into()),
        region: REGION.into(),
        virtual_host_style: false,
        access_key_id: g.key_id.clone(),
        secret_access_key: zeroize::Zeroizing::new(g.secret.clone()),
    }
}

/// `rbk ARGS` against `s3://rbk/PREFIX` through `endpoint`.
fn rbk(g: &Garage, endpoint: &str, prefix: &str, args: &[&str]) -> Command {
    let mut c = cmd_for(
        std::path::Path::new(&format!("s3://{BUCKET}/{prefix}")),
        PASSWORD,
        args,
    );
    g.env(&mut c, endpoint);
    c
}

fn ok(g: &Garage, endpoint: &str, prefix: &str, args: &[&str]) -> Run {
    let r = run(rbk(g, endpoint, prefix, args));
    assert_eq!(r.code, EXIT_OK, "rbk {args:?} on S3 failed:\n{}", r.all());
    r
}

/// `rbk snapshot` of a part that `sh -c SCRIPT` produces, started and left running (its
/// output piped), so that a test can stop nodes while it uploads.
fn spawn_snapshot(g: &Garage, endpoint: &str, prefix: &str, script: &str) -> std::process::Child {
    rbk(
        g,
        endpoint,
        prefix,
        &[
            "snapshot",
            "--command",
            "data.bin",
            "--",
            "sh",
            "-c",
            script,
        ],
    )
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped())
    .spawn()
    .expect("spawn rbk")
}

#[test]
fn s3_backend_keeps_the_contract_on_a_garage_cluster() {
    let Some(g) = Garage::start("contract") else {
        return;
    };
    let n = AtomicU32::new(0);
    let failures = rbk::store::conformance::run(&|| {
        let prefix = format!("contract/{}", n.fetch_add(1, Ordering::Relaxed));
        Arc::new(S3Backend::new(&config(&g, &g.endpoints[0], &prefix)).expect("backend"))
            as Arc<dyn Backend>
    });
    assert!(failures.is_empty(), "{failures:#?}");
}

/// A stack's parts (a Neo4j dump and a pg_dump) into a bucket and back: stored as a dump,
/// deduplicated the next night, verified, restored byte for byte, checked, pruned. The
/// second node's endpoint serves what the first one wrote (replication factor 3).
#[test]
fn s3_stack_parts_round_trip() {
    let Some(g) = Garage::start("roundtrip") else {
        return;
    };
    let env = Env::empty();
    let (a, b) = (&g.endpoints[0], &g.endpoints[1]);
    let dump = build_dump(DumpFormat::Dzv1Zstd, &store_files(1, 40));
    let dump_path = env.write("neo4j.dump", &dump);
    let sql = text_bytes(3 * 1024 * 1024, 9);
    let sql_path = env.write("metadata.sql", &sql);
    let paths = [
        "--path",
        dump_path.to_str().expect("utf-8"),
        "--path",
        sql_path.to_str().expect("utf-8"),
    ];
    ok(&g, a, "rt", &["init", "--kdf-memory-mib", "8"]);
    let r = run(rbk(&g, a, "rt", &["init", "--kdf-memory-mib", "8"]));
    assert_ne!(r.code, EXIT_OK, "a second init over the same prefix");
    assert_contains(&r.stderr, "already exists", "the refusal");

    let mut args = vec!["--json", "snapshot"];
    args.extend_from_slice(&paths);
    let first: Value = ok(&g, a, "rt", &args).json();
    let parts = first["parts"].as_array().expect("parts");
    assert_eq!(parts[0]["codec"], "neo4j-dump", "{first}");
    let second: Value = ok(&g, b, "rt", &args).json();
    assert_eq!(
        u64_of(&second, "new_chunks"),
        0,
        "an unchanged night adds nothing: {second}"
    );

    ok(&g, b, "rt", &["verify", "latest"]);
    let out = env.path("out");
    ok(
        &g,
        b,
        "rt",
        &["restore", "latest", "--to", out.to_str().expect("utf-8")],
    );
    assert_file_is(&out.join("metadata.sql"), &sql, "the SQL restored from S3");
    let restored = std::fs::read(out.join("neo4j.dump")).expect("restored dump");
    assert_eq!(
        decode_dump(&restored).1,
        decode_dump(&dump).1,
        "the dump's inner stream comes back byte for byte"
    );
    let check: Value = ok(&g, a, "rt", &["--json", "check", "--read-data"]).json();
    assert_eq!(check["ok"], true, "{check}");
    ok(&g, a, "rt", &["forget", &id_of(&first)]);
    ok(
        &g,
        a,
        "rt",
        &["prune", "--reclaim-only", "--max-unused", "0%"],
    );
    let check: Value = ok(&g, b, "rt", &["--json", "check", "--read-data"]).json();
    assert_eq!(check["ok"], true, "after prune: {check}");
}

/// One node of three stopped while a snapshot uploads, and still down for the restore:
/// writes and reads keep their quorum (2 of 3), nothing is lost, and the node serves the
/// snapshot once back.
///
/// Named to sort last among the S3 tests: the longest of them, it then runs beside the
/// first stack tests (libtest starts tests in name order, and each family holds its own lock).
#[test]
fn s3_with_one_node_down_nothing_is_lost() {
    let Some(g) = Garage::start("one_down") else {
        return;
    };
    let env = Env::empty();
    let data = semi_compressible(24 * 1024 * 1024, 4);
    let input = env.write("data.bin", &data);
    let a = &g.endpoints[0];
    ok(&g, a, "one", &["init", "--kdf-memory-mib", "8"]);
    // The producer pauses halfway, so the node goes while packs are being uploaded.
    let script = format!(
        "head -c 12582912 '{0}'; sleep 3; tail -c +12582913 '{0}'",
        input.display()
    );
    let child = spawn_snapshot(&g, a, "one", &script);
    std::thread::sleep(Duration::from_millis(1500));
    g.stop(&g.nodes[2]);
    let r = wait_with_guard(
        child,
        Duration::from_secs(600),
        "rbk snapshot with a node down",
    );
    assert_eq!(
        r.code,
        EXIT_OK,
        "the snapshot with a node stopped midway:\n{}",
        r.all()
    );
    let out = env.path("out");
    ok(
        &g,
        a,
        "one",
        &["restore", "latest", "--to", out.to_str().expect("utf-8")],
    );
    assert_file_is(&out.join("data.bin"), &data, "restored with a node down");
    g.start_node(&g.nodes[2]);
    // Read through the node that missed the writes: its quorum reads find them.
    let c = &g.endpoints[2];
    let out2 = env.path("out2");
    g.wait_serving(c, "one");
    ok(
        &g,
        c,
        "one",
        &["restore", "latest", "--to", out2.to_str().expect("utf-8")],
    );
    assert_file_is(
        &out2.join("data.bin"),
        &data,
        "restored through the node that was down",
    );
    let check: Value = ok(&g, c, "one", &["--json", "check", "--read-data"]).json();
    assert_eq!(check["ok"], true, "{check}");
}

/// Every node stopped in the middle of a snapshot: a clear error naming the object, no
/// snapshot committed; once the nodes are back, the repository checks clean and the next
/// snapshot succeeds.
#[test]
fn s3_cluster_lost_mid_snapshot_commits_nothing() {
    let Some(g) = Garage::start("all_down") else {
        return;
    };
    let env = Env::empty();
    let a = &g.endpoints[0];
    ok(&g, a, "down", &["init", "--kdf-memory-mib", "8"]);
    // A producer slow enough that the cluster goes away while it runs.
    let script = "head -c 8388608 /dev/urandom; sleep 3; head -c 33554432 /dev/urandom";
    let child = spawn_snapshot(&g, a, "down", script);
    std::thread::sleep(Duration::from_millis(1500));
    for n in &g.nodes {
        g.stop(n);
    }
    let r = wait_with_guard(
        child,
        Duration::from_secs(600),
        "rbk snapshot with the cluster gone",
    );
    assert_ne!(r.code, EXIT_OK, "{}", r.all());
    assert_contains(
        &r.stderr,
        &format!("s3://{BUCKET}/down/"),
        "the error names the object",
    );
    assert!(!r.stderr.contains("panicked"), "{}", r.all());
    for n in &g.nodes {
        g.start_node(n);
    }
    g.wait_serving(a, "down");
    let listed: Value = ok(&g, a, "down", &["--json", "snapshots"]).json();
    assert_eq!(
        listed.as_array().map(Vec::len),
        Some(0),
        "nothing committed: {listed}"
    );
    let input = env.write("small.bin", &random_bytes(2 * 1024 * 1024, 3));
    ok(
        &g,
        a,
        "down",
        &["snapshot", "--path", input.to_str().expect("utf-8")],
    );
    let (_, check) = {
        let r = run(rbk(&g, a, "down", &["--json", "check", "--read-data"]));
        let v = r.json();
        (r, v)
    };
    assert_eq!(check["ok"], true, "{check}");
    assert_eq!(check["errors"].as_array().map(Vec::len), Some(0), "{check}");
}

/// Two writers racing for the exclusive lock over S3, through different nodes, many times:
/// never both hold it.
#[test]
fn s3_two_writers_never_both_hold_the_lock() {
    let Some(g) = Garage::start("lock_race") else {
        return;
    };
    let repo = Repository::init(
        Arc::new(S3Backend::new(&config(&g, &g.endpoints[0], "locks")).expect("backend")),
        PASSWORD.as_bytes(),
        &InitOptions {
            kdf: rbk::store::keys::KdfParams {
                memory_kib: 8 * 1024,
                ..Default::default()
            },
            compression_level: 3,
            ..Default::default()
        },
    )
    .expect("init");
    let crypto = repo.crypto().clone();
    let held = Arc::new(AtomicBool::new(false));
    let won = Arc::new(AtomicU32::new(0));
    let rounds = 15;
    let barrier = Arc::new(Barrier::new(2));
    let writers: Vec<_> = (0..2)
        .map(|w| {
            let backend: Arc<dyn Backend> =
                Arc::new(S3Backend::new(&config(&g, &g.endpoints[w], "locks")).expect("backend"));
            let (crypto, held, won, barrier) =
                (crypto.clone(), held.clone(), won.clone(), barrier.clone());
            std::thread::spawn(move || {
                for _ in 0..rounds {
                    barrier.wait();
                    if let Ok(lock) =
                        LockGuard::acquire(backend.clone(), &crypto, LockKind::Exclusive, "race")
                    {
                        assert!(
                            !held.swap(true, Ordering::SeqCst),
                            "two writers held the exclusive lock at once"
                        );
                        won.fetch_add(1, Ordering::SeqCst);
                        std::thread::sleep(Duration::from_millis(50));
                        held.store(false, Ordering::SeqCst);
                        drop(lock);
                    }
                    barrier.wait();
                }
            })
        })
        .collect();
    for w in writers {
        w.join().expect("a writer panicked");
    }
    // Both may back off in a round; a lock that no one ever gets would be a broken protocol.
    assert!(
        won.load(Ordering::SeqCst) > 0,
        "no writer ever got the lock"
    );
}

/// `rbk copy` local -> S3 (the bucket made with the local repository's chunking) -> a second
/// local repository (its own chunking): restores from each are byte-identical, the bucket
/// receives only what each night added, and a second copy sends nothing.
#[test]
fn s3_copy_local_to_s3_and_back() {
    let Some(g) = Garage::start("copy") else {
        return;
    };
    let env = Env::new();
    let a = &g.endpoints[0];
    let pass = env.write("pass", format!("{PASSWORD}\n").as_bytes());
    let pass = pass.to_str().expect("utf-8");
    let bucket = format!("s3://{BUCKET}/copied");
    let dump = build_dump(DumpFormat::Dzv1Zstd, &store_files(2, 30));
    let sql = text_bytes(2 * 1024 * 1024, 4);
    let dump_path = env.write("neo4j.dump", &dump);
    let sql_path = env.write("metadata.sql", &sql);
    let paths = [
        "--path",
        dump_path.to_str().expect("utf-8"),
        "--path",
        sql_path.to_str().expect("utf-8"),
    ];
    let night1 = env.snapshot(&paths);

    ok(
        &g,
        a,
        "copied",
        &[
            "init",
            "--kdf-memory-mib",
            "8",
            "--copy-chunker-params-from",
            env.repo.to_str().expect("utf-8"),
            "--from-password-file",
            pass,
        ],
    );
    let copy_to = |from: &std::path::Path, to: &str, extra: &[(&str, &str)]| -> Value {
        let mut c = cmd_for(
            from,
            PASSWORD,
            &["--json", "copy", "--to", to, "--to-password-file", pass],
        );
        g.env(&mut c, a);
        for (k, v) in extra {
            c.env(k, v);
        }
        let r = run(c);
        assert_eq!(r.code, EXIT_OK, "copy to {to}:\n{}", r.all());
        r.json()
    };
    let first = copy_to(&env.repo, &bucket, &[]);
    assert_eq!(u64_of(&first, "copied"), 1, "{first}");
    assert_eq!(
        u64_of(&first, "bytes_added"),
        u64_of(&night1, "bytes_added"),
        "{first}"
    );

    // Night 2: the SQL grew; the bucket receives what the night added, no more.
    let mut sql2 = sql.clone();
    sql2.extend_from_slice(&text_bytes(100_000, 5));
    std::fs::write(&sql_path, &sql2).expect("write");
    let night2 = env.snapshot(&paths);
    let second = copy_to(&env.repo, &bucket, &[]);
    assert_eq!(u64_of(&second, "copied"), 1, "{second}");
    assert_eq!(
        u64_of(&second, "bytes_added"),
        u64_of(&night2, "bytes_added"),
        "{second}"
    );
    assert_eq!(u64_of(&copy_to(&env.repo, &bucket, &[]), "copied"), 0);
    let check: Value = ok(&g, a, "copied", &["--json", "check", "--read-data"]).json();
    assert_eq!(check["ok"], true, "{check}");

    // Back from the bucket to a repository of its own chunking.
    let back = env.path("back");
    let r = run(cmd_for(&back, PASSWORD, &["init", "--kdf-memory-mib", "8"]));
    assert_eq!(r.code, EXIT_OK, "{}", r.all());
    let mut c = rbk(
        &g,
        a,
        "copied",
        &[
            "--json",
            "copy",
            "--to",
            back.to_str().expect("utf-8"),
            "--to-password-file",
            pass,
        ],
    );
    c.env("RBK_REPO", &bucket);
    let r = run(c);
    assert_eq!(r.code, EXIT_OK, "copy back:\n{}", r.all());
    assert_eq!(u64_of(&r.json(), "copied"), 2, "{}", r.stdout);

    for (which, mut cmd) in [
        ("the bucket", rbk(&g, a, "copied", &[])),
        ("the copy back", cmd_for(&back, PASSWORD, &[])),
    ] {
        let out = env.path(&format!("out-{}", which.replace(' ', "-")));
        cmd.args(["restore", "latest", "--to", out.to_str().expect("utf-8")]);
        let r = run(cmd);
        assert_eq!(r.code, EXIT_OK, "restore from {which}:\n{}", r.all());
        assert_file_is(
            &out.join("metadata.sql"),
            &sql2,
            &format!("SQL from {which}"),
        );
        let restored = std::fs::read(out.join("neo4j.dump")).expect("restored dump");
        assert_eq!(
            decode_dump(&restored).1,
            decode_dump(&dump).1,
            "the dump from {which} decodes to the same store"
        );
    }
}
