//! Usage errors rbk detects itself exit 2, like clap's: each command line below is one a user
//! must fix, and each leaves the repository as it was. Errors that are not usage (a missing
//! file) keep their own codes.

use std::fs;

use time::format_description::well_known::Rfc3339;

use crate::util::*;

/// An RFC 3339 time `secs` seconds from now.
fn from_now(secs: i64) -> String {
    (time::OffsetDateTime::now_utc() + time::Duration::seconds(secs))
        .format(&Rfc3339)
        .expect("format")
}

/// Each line: arguments, then a phrase the error must contain.
#[test]
fn usage_errors_exit_2_and_change_nothing() {
    let env = Env::new();
    let f = env.write("db.bin", b"some bytes");
    let f = f.to_str().unwrap();
    let dir_a = env.path("a");
    let dir_b = env.path("b");
    fs::create_dir_all(&dir_a).unwrap();
    fs::create_dir_all(&dir_b).unwrap();
    let same_a = env.write("a/same.bin", b"a");
    let same_b = env.write("b/same.bin", b"b");
    let newline_file = env.write("new\nline.bin", b"n");
    let host_toml = env.write(
        "host.toml",
        b"[host]\nsqlite_path = \"/nonexistent/rushdb.db\"\n",
    );
    let typo_toml = env.write("typo.toml", b"repositry = \"/x\"\n");
    let future = from_now(3600);
    let stack_time = from_now(-3600);

    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["snapshot", "--path", "/"], "no file name"),
        (vec!["snapshot", "--stdin", "a\nb"], "control character"),
        (
            vec!["snapshot", "--stdin", "esc\x1b[0m"],
            "control character",
        ),
        (
            vec!["snapshot", "--path", newline_file.to_str().unwrap()],
            "control character",
        ),
        (vec!["snapshot", "--stdin", "."], "cannot be a part name"),
        (vec!["snapshot", "--stdin", "a/b"], "cannot be a part name"),
        (
            vec!["snapshot", "--stdin", ".rbk-x"],
            "cannot be a part name",
        ),
        (vec!["snapshot", "--stdin", ""], "cannot be a part name"),
        (
            vec![
                "snapshot",
                "--path",
                same_a.to_str().unwrap(),
                "--path",
                same_b.to_str().unwrap(),
            ],
            "two parts are named",
        ),
        (
            vec!["snapshot", "--path", f, "--stdin", "db.bin"],
            "two parts are named",
        ),
        (vec!["snapshot", "--", "true"], "needs --command NAME"),
        (vec!["snapshot", "--path", f, "--dry-run"], "stack snapshot"),
        (vec!["snapshot", "--path", f, "--volumes"], "stack snapshot"),
        (vec!["snapshot", "--time", &stack_time], "taken now"),
        (
            vec!["snapshot", "--path", f, "--time", &future],
            "--allow-future",
        ),
        (
            vec![
                "--config",
                host_toml.to_str().unwrap(),
                "snapshot",
                "--dry-run",
            ],
            "host mode",
        ),
        (vec!["restore", "latest", "--part", "db.bin"], "--to DIR"),
        (vec!["restore", "latest", "--dry-run"], "host-mode"),
        (
            vec![
                "--config",
                host_toml.to_str().unwrap(),
                "restore",
                "latest",
                "--project",
                "p",
            ],
            "host mode",
        ),
        (
            vec!["--config", typo_toml.to_str().unwrap(), "snapshots"],
            "repositry",
        ),
        (vec!["init", "--compression", "23"], "23"),
        (vec!["prune", "--dry-run"], "no --keep-* rule"),
        (
            vec!["prune", "--keep-last", "1", "--group-by", "hots"],
            "--group-by",
        ),
        (vec!["--no-lock", "snapshot", "--path", f], "--no-lock"),
        (vec!["--no-lock", "prune", "--keep-last", "1"], "--no-lock"),
        (vec!["snapshot", "--path", f, "--raw", "nope"], "--raw"),
    ];
    let before = tree_digest(&env.repo);
    let mut failures = Vec::new();
    for (args, phrase) in &cases {
        let r = env.run(args);
        if r.code != EXIT_USAGE || !r.stderr.contains(phrase) {
            failures.push(format!(
                "rbk {args:?}: exit {} (want 2), stderr must contain {phrase:?}:\n{}",
                r.code, r.stderr
            ));
        }
        assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    assert_eq!(
        tree_digest(&env.repo),
        before,
        "a usage error changed the repository"
    );

    // Outside a repository: none given, and no password source with no terminal to ask on.
    let mut c = env.cmd(&["snapshots"]);
    c.env_remove("RBK_REPO").current_dir(env.tmp.path());
    let r = run(c);
    assert_eq!(r.code, EXIT_USAGE, "no repository:\n{}", r.all());
    assert!(r.stderr.contains("--repo"), "{}", r.stderr);
    let mut c = env.cmd(&["snapshots"]);
    c.env_remove("RBK_PASSWORD");
    let r = run(c);
    assert_eq!(r.code, EXIT_USAGE, "no password:\n{}", r.all());
    assert!(r.stderr.contains("RBK_PASSWORD"), "{}", r.stderr);

    // As clap's, rbk's own usage errors come before the password is asked for or checked.
    for args in [
        &["snapshot", "--stdin", "a\nb"][..],
        &["snapshot", "--path", f, "--stdin", "db.bin"],
        &["snapshot", "--path", f, "--time", &future],
        &["restore", "latest", "--part", "db.bin"],
    ] {
        let r = run(cmd_for(&env.repo, "not the password", args));
        assert_eq!(
            r.code,
            EXIT_USAGE,
            "rbk {args:?} with a wrong password:\n{}",
            r.all()
        );
    }

    // `init` refused a bad level before it made anything.
    let fresh = env.path("fresh");
    let r = run(cmd_for(&fresh, PASSWORD, &["init", "--compression", "0"]));
    assert_eq!(r.code, EXIT_USAGE, "{}", r.all());
    assert!(
        !fresh.exists(),
        "a refused init created {}",
        fresh.display()
    );
}

/// Not usage: a file that is not there is the world, not the command line.
#[test]
fn a_missing_file_is_not_a_usage_error() {
    let env = Env::new();
    let r = env.run(&["snapshot", "--path", "/nonexistent/db.bin"]);
    assert_eq!(r.code, EXIT_FAILED, "{}", r.all());
}

/// `--time` ahead of the clock by more than a few minutes is refused (it would be `latest`
/// forever and move every `--keep-within` window); a little skew is fine, and
/// `--allow-future` takes any time.
#[test]
fn a_time_in_the_future_needs_allow_future() {
    let env = Env::new();
    let f = env.write("db.bin", b"some bytes");
    let f = f.to_str().unwrap();
    let far = from_now(24 * 3600);
    let r = env.run(&["snapshot", "--path", f, "--time", &far]);
    assert_eq!(r.code, EXIT_USAGE, "{}", r.all());
    assert!(
        env.snapshot_files().is_empty(),
        "a refused snapshot was saved"
    );

    let skew = from_now(60);
    env.snapshot(&["--path", f, "--time", &skew]);
    let v = env.snapshot(&["--path", f, "--time", &far, "--allow-future"]);
    assert_eq!(v["time"], far.as_str(), "{v}");
    assert_eq!(env.snapshot_files().len(), 2);
}
