//! `rbk copy` between two local repositories: what it sends, what it skips, how it resumes,
//! and that a copy restores to the same bytes (S3 as a destination is in s3.rs).

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::util::*;

/// `chunked_again` is null for a snapshot that was already there.
const COPY_SHAPE: crate::json::Rules = crate::json::Rules {
    nullable: &["snapshots[].chunked_again", "snapshots[].copy"],
    maps: &[],
    keyed: &[],
};

const DST_PASSWORD: &str = "it: the off-site copy's own password";

/// A destination repository beside `env`'s: made with the source's chunking when `shared`.
struct Dest {
    repo: PathBuf,
    pass: PathBuf,
}

impl Dest {
    fn new(env: &Env, name: &str, shared: bool) -> Dest {
        let repo = env.path(name);
        let pass = env.write(
            &format!("{name}.pass"),
            format!("{DST_PASSWORD}\n").as_bytes(),
        );
        let src_pass = env.write("src.pass", format!("{PASSWORD}\n").as_bytes());
        let mut args = vec!["init", "--kdf-memory-mib", "8"];
        if shared {
            args.extend([
                "--copy-chunker-params-from",
                env.repo.to_str().unwrap(),
                "--from-password-file",
                src_pass.to_str().unwrap(),
            ]);
        }
        let r = run(cmd_for(&repo, DST_PASSWORD, &args));
        assert_eq!(r.code, EXIT_OK, "init {name}:\n{}", r.all());
        Dest { repo, pass }
    }

    fn cmd(&self, args: &[&str]) -> Command {
        cmd_for(&self.repo, DST_PASSWORD, args)
    }

    fn ok(&self, args: &[&str]) -> Run {
        let r = run(self.cmd(args));
        assert_eq!(
            r.code,
            EXIT_OK,
            "rbk {args:?} on the destination:\n{}",
            r.all()
        );
        r
    }

    fn snapshots(&self) -> Vec<Value> {
        match self.ok(&["--json", "snapshots"]).json() {
            Value::Array(a) => a,
            other => panic!("snapshots --json: {other}"),
        }
    }

    fn copy_args<'a>(&'a self, extra: &[&'a str]) -> Vec<&'a str> {
        let mut args = vec![
            "--json",
            "copy",
            "--to",
            self.repo.to_str().unwrap(),
            "--to-password-file",
            self.pass.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        args
    }

    /// `rbk --json copy --to THIS ARGS` from `env`'s repository, which must succeed.
    fn copy_from(&self, env: &Env, extra: &[&str]) -> Value {
        env.ok(&self.copy_args(extra)).json()
    }

    fn assert_check_ok(&self, context: &str) {
        let r = run(self.cmd(&["--json", "check", "--read-data"]));
        assert_eq!(
            r.code,
            EXIT_OK,
            "{context}: check of the destination:\n{}",
            r.all()
        );
    }

    /// Restores `id` of the destination and compares each file with what was snapshotted.
    fn assert_restores(&self, env: &Env, id: &str, files: &[(&str, &[u8])]) {
        let to = env.path(&format!("restored-{id}"));
        self.ok(&["restore", id, "--to", to.to_str().unwrap()]);
        for (name, data) in files {
            assert_file_is(&to.join(name), data, &format!("{name} of copy {id}"));
        }
    }
}

fn copied(v: &Value) -> u64 {
    u64_of(v, "copied")
}

/// Two nights of a store: the second rewrites 64 KiB in the middle of the first file.
fn two_nights(env: &Env) -> (Vec<u8>, Vec<u8>, Vec<u8>, u64) {
    let day1 = semi_compressible(12 * MIB, 1);
    let sql = text_bytes(3 * MIB, 2);
    let a = env.write("a.bin", &day1);
    let b = env.write("b.sql", &sql);
    let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());
    let first = env.snapshot(&["--path", a, "--path", b]);
    let mut day2 = day1.clone();
    day2[6 * MIB..6 * MIB + 65536].copy_from_slice(&random_bytes(65536, 3));
    env.write("a.bin", &day2);
    let second = env.snapshot(&["--path", a, "--path", b]);
    let added = u64_of(&first, "bytes_added") + u64_of(&second, "bytes_added");
    (day1, day2, sql, added)
}

/// With the source's chunking, a copy sends exactly the blobs the source stored (no more:
/// it deduplicates night against night as the source did), a second copy sends nothing,
/// and a snapshot taken straight into the destination deduplicates with the copies.
#[test]
fn a_copy_with_shared_chunking_sends_what_the_source_stored_once() {
    let env = Env::new();
    let (_, day2, sql, source_added) = two_nights(&env);
    let dst = Dest::new(&env, "offsite", true);

    let v = dst.copy_from(&env, &[]);
    assert_eq!(copied(&v), 2, "{v}");
    assert_eq!(
        v["snapshots"][0]["chunked_again"],
        Value::Bool(false),
        "shared chunking moves blobs: {v}"
    );
    assert_eq!(
        u64_of(&v, "bytes_added"),
        source_added,
        "the copies add what the snapshots added to the source: {v}"
    );

    let again = dst.copy_from(&env, &[]);
    crate::json::assert_shape(&again, "copy", COPY_SHAPE);
    assert_eq!(copied(&again), 0, "{again}");
    assert_eq!(u64_of(&again, "already_there"), 2, "{again}");
    assert_eq!(u64_of(&again, "bytes_added"), 0, "{again}");

    let snaps = dst.snapshots();
    assert_eq!(snaps.len(), 2);
    let latest = id_of(&snaps[1]);
    dst.assert_restores(&env, &latest, &[("a.bin", &day2), ("b.sql", &sql)]);
    dst.assert_check_ok("after two copies");

    // The same files snapshotted into the destination directly: nothing new to store.
    let a = env.path("a.bin");
    let b = env.path("b.sql");
    let direct = dst
        .ok(&[
            "--json",
            "snapshot",
            "--path",
            a.to_str().unwrap(),
            "--path",
            b.to_str().unwrap(),
        ])
        .json();
    assert_eq!(u64_of(&direct, "new_chunks"), 0, "{direct}");
}

/// A destination with its own chunking receives each part chunked again: the same bytes,
/// its own dedup (the second night costs little there too), and nothing copied twice.
#[test]
fn a_copy_to_a_repository_with_its_own_chunking_chunks_again() {
    let env = Env::new();
    let (day1, day2, sql, _) = two_nights(&env);
    let dst = Dest::new(&env, "usb", false);

    let v = dst.copy_from(&env, &[]);
    assert_eq!(copied(&v), 2, "{v}");
    assert_eq!(v["snapshots"][0]["chunked_again"], Value::Bool(true), "{v}");
    let night2 = u64_of(&v["snapshots"][1], "bytes_added");
    assert!(
        night2 < 2 * MIB as u64,
        "the second night, 64 KiB changed, added {night2} bytes to the destination: {v}"
    );
    let snaps = dst.snapshots();
    dst.assert_restores(
        &env,
        &id_of(&snaps[0]),
        &[("a.bin", &day1), ("b.sql", &sql)],
    );
    dst.assert_restores(
        &env,
        &id_of(&snaps[1]),
        &[("a.bin", &day2), ("b.sql", &sql)],
    );
    assert_eq!(copied(&dst.copy_from(&env, &[])), 0);
    dst.assert_check_ok("after the copies");
    // The copy says where it came from.
    let source = id_of(&env.snapshots()[1]);
    let labels = snaps[1]["labels"].to_string();
    assert!(labels.contains(&source), "{labels}");
}

/// Snapshots by id (or `latest`), or by a --keep-* policy; both at once, or an id that
/// does not exist, is refused before anything is copied.
#[test]
fn copy_takes_ids_or_a_policy_and_a_typo_copies_nothing() {
    let env = Env::new();
    let data = env.write("x.bin", &semi_compressible(MIB, 9));
    let x = data.to_str().unwrap();
    for day in 1..=4 {
        let time = format!("2026-11-0{day}T02:00:00Z");
        env.snapshot(&["--path", x, "--time", &time]);
    }
    let dst = Dest::new(&env, "copy", true);

    let r = env.run(&dst.copy_args(&["ffffffff"]));
    assert_eq!(r.code, EXIT_FAILED, "{}", r.all());
    let r = env.run(&dst.copy_args(&["latest", "--keep-last", "2"]));
    assert_eq!(r.code, EXIT_USAGE, "{}", r.all());
    assert!(dst.snapshots().is_empty());

    let v = dst.copy_from(&env, &["latest"]);
    assert_eq!(copied(&v), 1, "{v}");
    assert_eq!(dst.snapshots()[0]["time"], env.snapshots()[3]["time"]);

    let v = dst.copy_from(&env, &["--keep-last", "2"]);
    assert_eq!((copied(&v), u64_of(&v, "already_there")), (1, 1), "{v}");
    let first = id_of(&env.snapshots()[0]);
    let v = dst.copy_from(&env, &[&first[..8]]);
    assert_eq!(copied(&v), 1, "{v}");
    let times: Vec<Value> = dst.snapshots().iter().map(|s| s["time"].clone()).collect();
    let want: Vec<Value> = [0, 2, 3]
        .iter()
        .map(|&i| env.snapshots()[i]["time"].clone())
        .collect();
    assert_eq!(times, want);

    let dry = dst.copy_from(&env, &["--dry-run"]);
    assert_eq!(
        (copied(&dry), u64_of(&dry, "already_there")),
        (1, 3),
        "{dry}"
    );
    assert_eq!(dst.snapshots().len(), 3, "a dry run copies nothing");
}

/// A copy killed midway (SIGKILL before a write to the destination) resumes: the next run
/// sends only what the first had not, and the result is whole.
#[test]
fn a_killed_copy_resumes_without_sending_again() {
    let env = Env::new();
    let parts: Vec<(String, Vec<u8>)> = (0..3)
        .map(|i| (format!("p{i}.bin"), random_bytes(20 * MIB, 40 + i)))
        .collect();
    let mut args = vec!["--json".to_string(), "snapshot".to_string()];
    for (name, data) in &parts {
        args.push("--path".into());
        args.push(env.write(name, data).to_str().unwrap().into());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    env.ok(&args);
    let dst = Dest::new(&env, "resumed", true);

    // Writes to the destination: its lock, then packs (16 MiB each) and an index
    // checkpoint after each part. The 7th write comes after the first part's checkpoint.
    let mut killed = env.cmd(&dst.copy_args(&[]));
    killed.env("RBK_FAULT", "kill@write:7");
    let r = run(killed);
    assert_ne!(r.code, EXIT_OK, "the copy was to be killed:\n{}", r.all());
    assert!(
        dst.snapshots().is_empty(),
        "no snapshot before the copy ends"
    );
    assert!(
        !names_in(&dst.repo.join("index")).is_empty(),
        "the killed copy checkpointed what it had sent"
    );

    let v = dst.copy_from(&env, &[]);
    assert_eq!(copied(&v), 1, "{v}");
    let resumed = u64_of(&v, "bytes_added");
    assert!(
        resumed < 48 * MIB as u64,
        "the resumed copy sent {resumed} bytes of 60 MiB: it did not skip what was sent: {v}"
    );
    let files: Vec<(&str, &[u8])> = parts
        .iter()
        .map(|(n, d)| (n.as_str(), d.as_slice()))
        .collect();
    dst.assert_restores(&env, &id_of(&dst.snapshots()[0]), &files);
    let r = run(dst.cmd(&["--json", "check", "--read-data"]));
    let report = r.json();
    assert_eq!(
        report["errors"].as_array().map(Vec::len),
        Some(0),
        "{report}"
    );
}

/// A wrong destination password, a destination that is the source, and a wrong password
/// for --copy-chunker-params-from: clear errors, nothing written.
#[test]
fn wrong_passwords_and_the_source_as_destination_change_nothing() {
    let env = Env::new();
    let x = env.write("x.bin", &semi_compressible(MIB, 5));
    env.snapshot(&["--path", x.to_str().unwrap()]);
    let dst = Dest::new(&env, "dst", false);

    let wrong = env.write("wrong.pass", b"not it\n");
    let mut args = dst.copy_args(&[]);
    args[5] = wrong.to_str().unwrap();
    let r = env.run(&args);
    assert_eq!(r.code, EXIT_WRONG_PASSWORD, "{}", r.all());
    assert!(r.stderr.contains("destination"), "{}", r.stderr);
    assert!(dst.snapshots().is_empty());

    let own = env.write("own.pass", format!("{PASSWORD}\n").as_bytes());
    let r = env.run(&[
        "copy",
        "--to",
        env.repo.to_str().unwrap(),
        "--to-password-file",
        own.to_str().unwrap(),
    ]);
    assert_eq!(r.code, EXIT_USAGE, "{}", r.all());
    assert_eq!(env.snapshots().len(), 1);

    let never: PathBuf = env.path("never");
    let r = run(cmd_for(
        &never,
        DST_PASSWORD,
        &[
            "init",
            "--copy-chunker-params-from",
            env.repo.to_str().unwrap(),
            "--from-password-file",
            wrong.to_str().unwrap(),
        ],
    ));
    assert_eq!(r.code, EXIT_WRONG_PASSWORD, "{}", r.all());
    assert!(!Path::new(&never).join("config").exists());
}
