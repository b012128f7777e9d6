//! What a local user or a writer of the NAS could do with the repository before: read key
//! files left 0644 by the umask, make rbk derive keys with absurd parameters, block prune
//! forever with a junk lock or one dated in the future, pass off a key file's host and date
//! as fact; and what a user with a read-only copy could not do: read it at all.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

use rbk::store::format::{FileKind, encode_plain, seal_file};
use rbk::store::keys::KeyFile;
use rbk::store::lock::{LOCK_VERSION, LockInfo, LockKind};
use rbk::store::time::now_unix;
use serde_json::Value;

use crate::util::*;

/// `rbk ARGS` with the umask most systems default to (022), as a cron job has it.
fn with_umask_022(env: &Env, args: &[&str]) -> Run {
    let mut c = env.cmd(args);
    // SAFETY: umask is async-signal-safe and changes only the child's own state.
    unsafe {
        c.pre_exec(|| {
            libc::umask(0o022);
            Ok(())
        });
    }
    run(c)
}

/// Item 11: key files, config and every other repository file are 0600 and its folders 0700,
/// whatever the umask: a key file others can read is a password they can guess offline.
#[test]
fn repository_files_are_private_whatever_the_umask() {
    let env = Env::empty();
    assert_eq!(
        with_umask_022(&env, &["init", "--kdf-memory-mib", "8"]).code,
        EXIT_OK
    );
    let p = env.write("a.bin", &random_bytes(300 * 1024, 1));
    for _ in 0..2 {
        let r = with_umask_022(&env, &["snapshot", "--path", p.to_str().unwrap()]);
        assert_eq!(r.code, EXIT_OK, "{}", r.all());
    }
    let r = with_umask_022(
        &env,
        &[
            "key",
            "add",
            "--new-password-command",
            "echo second",
            "--kdf-memory-mib",
            "8",
        ],
    );
    assert_eq!(r.code, EXIT_OK, "{}", r.all());
    // A verification record (of the snapshot prune keeps) in `verifications/`.
    let r = with_umask_022(&env, &["verify", "latest"]);
    assert_eq!(r.code, EXIT_OK, "{}", r.all());
    let r = with_umask_022(&env, &["prune", "--keep-last", "1", "--max-unused", "0%"]);
    assert_eq!(r.code, EXIT_OK, "{}", r.all());
    assert_eq!(
        names_in(&env.repo.join("verifications")).len(),
        1,
        "the record is kept with its snapshot"
    );
    let mut stack = vec![env.repo.clone()];
    let mut seen = 0;
    while let Some(dir) = stack.pop() {
        let mode = fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "folder {} is {mode:o}", dir.display());
        for e in fs::read_dir(&dir).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else {
                let mode = e.metadata().unwrap().permissions().mode() & 0o777;
                assert_eq!(mode, 0o600, "{} is {mode:o}", e.path().display());
                seen += 1;
            }
        }
    }
    assert!(
        seen >= 7,
        "config, 2 keys, a pack, an index, a snapshot, a verification: {seen} files"
    );
}

/// Item 13: `--kdf-memory-mib` outside 8..=1024 is refused before anything is written (it
/// used to overflow: 4194305 MiB wrapped to 1 MiB, and 0 was taken as 1).
#[test]
fn kdf_memory_outside_a_sane_range_is_refused() {
    for bad in ["0", "7", "1025", "4194305", "-1"] {
        let env = Env::empty();
        let r = env.run(&["init", "--kdf-memory-mib", bad]);
        assert_eq!(
            r.code,
            EXIT_USAGE,
            "init --kdf-memory-mib {bad}:\n{}",
            r.all()
        );
        assert!(
            !env.repo.exists(),
            "init --kdf-memory-mib {bad} left a repository"
        );
    }
    let env = Env::new();
    let r = env.run(&[
        "key",
        "add",
        "--new-password-command",
        "echo x",
        "--kdf-memory-mib",
        "4194305",
    ]);
    assert_eq!(r.code, EXIT_USAGE, "{}", r.all());
    assert_eq!(names_in(&env.repo.join("keys")).len(), 1);
}

fn write_lock(env: &Env, name: &str, info: &LockInfo) {
    let repo = env.open();
    let sealed = seal_file(repo.crypto(), FileKind::Lock, LOCK_VERSION, info);
    fs::write(env.repo.join("locks").join(name), sealed).unwrap();
}

fn lock_info(kind: LockKind, host: &str, refreshed: i64) -> LockInfo {
    LockInfo {
        kind,
        host: host.into(),
        pid: 1,
        command: "it: a lock".into(),
        created: refreshed,
        refreshed,
        nonce: 7,
        machine: "elsewhere".into(),
    }
}

/// Item 13: an exclusive lock dated a day ahead (a skewed clock, or planted) used to block
/// every command forever and survive `rbk unlock`; now it is stale. One ten minutes ahead
/// (clocks that disagree a little) is still honoured.
#[test]
fn a_lock_dated_in_the_future_goes_stale() {
    let env = Env::new();
    let p = env.write("a.bin", &random_bytes(100_000, 2));
    let p = p.to_str().unwrap();
    write_lock(
        &env,
        &"11".repeat(16),
        &lock_info(LockKind::Exclusive, "nas", now_unix() + 600),
    );
    let r = env.run(&["snapshot", "--path", p]);
    assert_eq!(
        r.code,
        EXIT_LOCKED,
        "a lock 10 minutes ahead still holds:\n{}",
        r.all()
    );
    fs::remove_file(env.repo.join("locks").join("11".repeat(16))).unwrap();

    write_lock(
        &env,
        &"22".repeat(16),
        &lock_info(LockKind::Exclusive, "nas", now_unix() + 86_400),
    );
    env.ok(&["snapshot", "--path", p]);
    let r = env.ok(&["--json", "unlock"]);
    assert_eq!(
        r.json()["removed"].as_array().map(Vec::len),
        Some(1),
        "{}",
        r.stdout
    );
    assert!(names_in(&env.repo.join("locks")).is_empty());
}

/// Item 13: a junk file in `locks/` (unreadable) counts as a possible holder only while it
/// is fresh: prune then waits for it; once it is older than a lock can be, prune deletes.
#[test]
fn junk_in_locks_does_not_hold_prune_forever() {
    let env = Env::new();
    let p = env.write("a.bin", &random_bytes(300 * 1024, 3));
    let first = id_of(&env.snapshot(&["--path", p.to_str().unwrap()]));
    env.write("a.bin", &random_bytes(300 * 1024, 4));
    env.snapshot(&["--path", p.to_str().unwrap()]);
    let junk = env.repo.join("locks").join("33".repeat(16));
    fs::write(&junk, random_bytes(500, 5)).unwrap();
    env.ok(&["forget", &first[..8]]);
    let v = env.ok(&["--json", "prune", "--reclaim-only"]).json();
    assert!(
        u64_of(&v["reclaim"], "packs_waiting") > 0,
        "a fresh junk lock may be a live holder: {v}"
    );
    let touched = Command::new("touch")
        .args(["-d", "2 hours ago"])
        .arg(&junk)
        .status()
        .unwrap();
    assert!(touched.success());
    let v = env.ok(&["--json", "prune", "--reclaim-only"]).json();
    assert_eq!(u64_of(&v["reclaim"], "packs_waiting"), 0, "{v}");
    assert!(u64_of(&v["reclaim"], "packs_deleted") > 0, "{v}");
    env.ok(&["unlock"]);
    assert!(!junk.exists(), "unlock removes an unreadable lock");
    env.assert_check_ok("after prune and unlock");
}

/// The key file the repository was made with, decoded.
fn the_key(repo: &Path) -> (String, KeyFile) {
    let name = names_in(&repo.join("keys")).remove(0);
    let key = KeyFile::decode(&name, &fs::read(repo.join("keys").join(&name)).unwrap()).unwrap();
    (name, key)
}

fn key_list(env: &Env) -> Vec<Value> {
    let r = env.run(&["--json", "key", "list"]);
    match r.json() {
        Value::Array(a) => a,
        other => panic!("{other}"),
    }
}

/// Item 14: a key file's host and creation time are authenticated by the master key, so
/// that someone who rewrites them (and recomputes the checksum, as anyone can) is found out:
/// `key list` no longer shows them as fact, and `check` warns of the file. A key file of an
/// older rbk (version 1, no MAC) is listed as unverified.
#[test]
fn key_metadata_is_shown_as_fact_only_when_authenticated() {
    let env = Env::new();
    let listed = key_list(&env);
    assert_eq!(listed[0]["verified"], true, "{listed:?}");
    let (name, key) = the_key(&env.repo);

    let mut forged = key.clone();
    forged.host = "the-ceos-laptop".into();
    forged.created = 0;
    fs::write(env.repo.join("keys").join(&name), forged.encode()).unwrap();
    let listed = key_list(&env);
    assert_eq!(listed[0]["verified"], false, "{listed:?}");
    let plain = env.ok(&["key", "list"]).stdout;
    assert!(
        !plain.contains("the-ceos-laptop"),
        "a forged host shown as fact:\n{plain}"
    );
    let (r, v) = env.check(false);
    assert_eq!(r.code, EXIT_WARNINGS, "{}", r.all());
    assert!(
        v["warnings"].to_string().contains(&format!("keys/{name}")),
        "{v}"
    );

    // Version 1: `u16 1 || postcard(created, host, kdf, salt, sealed_master) || BLAKE3`.
    let mut v1 = encode_plain(
        1,
        &(
            key.created,
            key.host.clone(),
            key.kdf,
            key.salt,
            key.sealed_master.clone(),
        ),
    );
    let sum = blake3::hash(&v1);
    v1.extend_from_slice(sum.as_bytes());
    fs::write(env.repo.join("keys").join(&name), v1).unwrap();
    let listed = key_list(&env);
    assert_eq!(listed[0]["verified"], false, "{listed:?}");
    let plain = env.ok(&["key", "list"]).stdout;
    assert!(plain.contains("unverified"), "{plain}");
    env.assert_check_ok("a version 1 key file is not damage");
}

/// `rbk ARGS` inside a mount namespace of its own where the repository is a read-only bind
/// mount of itself (a NAS mounted read-only).
fn read_only(env: &Env, args: &[&str]) -> Run {
    let repo = env.repo.to_str().unwrap();
    let script = format!(
        "mount --bind '{repo}' '{repo}' && mount -o remount,bind,ro '{repo}' && exec \"$0\" \"$@\""
    );
    let mut c = Command::new("unshare");
    c.args(["-m", "sh", "-c", &script, BIN]).args(args);
    c.env("RBK_REPO", &env.repo)
        .env("RBK_PASSWORD", PASSWORD)
        .env_remove("RBK_PASSWORD_FILE")
        .env_remove("RBK_PASSWORD_COMMAND")
        .env_remove("RBK_CONFIG")
        .current_dir(env.tmp.path());
    run(c)
}

/// Item 4: on a read-only filesystem the commands that only read work, without a lock and
/// saying so; `--no-lock` does the same where locks could be written (a lock held by another
/// process does not stop it); and a command that writes refuses `--no-lock`.
#[test]
fn a_read_only_repository_can_be_restored_and_checked() {
    let env = Env::new();
    let data = random_bytes(200 * 1024, 6);
    let p = env.write("db.bin", &data);
    let a = id_of(&env.snapshot(&["--path", p.to_str().unwrap()]));
    let b = id_of(&env.snapshot(&["--path", p.to_str().unwrap(), "--tag", "x"]));
    let out = env.path("out");
    let out_s = out.to_str().unwrap();
    let before = tree_digest(&env.repo);
    for args in [
        vec!["snapshots"],
        vec!["stats"],
        vec!["diff", &a[..8], &b[..8]],
        vec!["check", "--read-data"],
        vec!["key", "list"],
        vec!["restore", "latest", "--to", out_s],
        // It cannot record its verdict there: a warning, and the verdict's exit code.
        vec!["verify", "latest"],
    ] {
        let r = read_only(&env, &args);
        assert_eq!(
            r.code,
            EXIT_OK,
            "rbk {args:?} on a read-only mount:\n{}",
            r.all()
        );
        if args[0] != "snapshots" && args[0] != "key" {
            assert!(
                r.stderr.contains("read-only"),
                "rbk {args:?} says why no lock:\n{}",
                r.stderr
            );
        }
    }
    assert_file_is(
        &out.join("db.bin"),
        &data,
        "restored from a read-only repository",
    );
    let r = read_only(&env, &["snapshot", "--path", p.to_str().unwrap()]);
    assert_ne!(
        r.code,
        EXIT_OK,
        "a snapshot cannot be written there:\n{}",
        r.all()
    );
    assert_eq!(
        tree_digest(&env.repo),
        before,
        "the read-only repository changed"
    );

    // --no-lock on a writable repository: an exclusive lock held elsewhere does not stop it.
    let repo = env.open();
    let held = repo.lock(true, "it: key passwd").expect("exclusive lock");
    let r = env.run(&["check"]);
    assert_eq!(r.code, EXIT_LOCKED, "{}", r.all());
    env.ok(&["--no-lock", "check"]);
    let out2 = env.path("out2");
    env.ok(&[
        "--no-lock",
        "restore",
        &a[..8],
        "--to",
        out2.to_str().unwrap(),
    ]);
    drop(held);
    let r = env.run(&["--no-lock", "snapshot", "--path", p.to_str().unwrap()]);
    assert_eq!(r.code, EXIT_USAGE, "{}", r.all());
}

/// Item 17: a repository path that is a file, or lies below one, is one plain sentence (it
/// was "stat data/x/config: Not a directory"), exit 1, and nothing is created.
#[test]
fn a_repository_path_through_a_file_is_one_plain_sentence() {
    let env = Env::empty();
    let file = env.write("not-a-dir", b"x");
    for repo in [file.clone(), file.join("repo")] {
        let r = run(cmd_for(&repo, PASSWORD, &["snapshots"]));
        assert_eq!(r.code, EXIT_FAILED, "{}", r.all());
        let lines: Vec<&str> = r.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "one line:\n{}", r.stderr);
        assert!(
            lines[0].contains("no rbk repository") && lines[0].contains("not a directory"),
            "{}",
            r.stderr
        );
        assert!(!r.stderr.contains("os error"), "{}", r.stderr);
    }
    assert_eq!(fs::read(&file).unwrap(), b"x");
}
