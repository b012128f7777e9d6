//! rbk's secrets never reach the programs it starts: a `--command` producer, the password command and the `[host]` hooks see no `RBK_PASSWORD`, `RBK_POSTGRES_PASSWORD` or `RBK_NEO4J_PASSWORD`.
//!
//! Each program prints its environment; a variable rbk does not own passes through as the
//! control that the environment was there to be seen. (`tests/it/host.rs` checks `pg_dump`
//! and `psql` in host mode, with a real PostgreSQL server.)

use std::process::Command;

use crate::util::*;

const PG_SECRET: &str = "pg-secret-that-must-not-leak";
const NEO4J_SECRET: &str = "neo4j-secret-that-must-not-leak";
const CONTROL: &str = "RBK_IT_NOT_A_SECRET=visible";

/// rbk with every secret it reads in its environment (the repository password is set by
/// `Env::cmd`), and a variable of no concern to it.
fn with_secrets(mut c: Command) -> Command {
    c.env("RBK_POSTGRES_PASSWORD", PG_SECRET)
        .env("RBK_NEO4J_PASSWORD", NEO4J_SECRET)
        .env("RBK_IT_NOT_A_SECRET", "visible");
    c
}

fn assert_no_secret(environment: &str, what: &str) {
    assert!(
        environment.contains(CONTROL),
        "{what}: the control variable is missing, so the environment was not seen:\n{environment}"
    );
    for secret in [PASSWORD, PG_SECRET, NEO4J_SECRET] {
        assert!(
            !environment.contains(secret),
            "{what}: a secret reached the child:\n{environment}"
        );
    }
    for name in [
        "RBK_PASSWORD=",
        "RBK_POSTGRES_PASSWORD=",
        "RBK_NEO4J_PASSWORD=",
    ] {
        assert!(
            !environment.lines().any(|l| l.starts_with(name)),
            "{what}: {name} reached the child"
        );
    }
}

/// A producer that prints its environment: stored and restored, it holds no secret.
#[test]
fn a_producer_stores_no_secret() {
    let env = Env::new();
    let r = run(with_secrets(env.cmd(&[
        "--json",
        "snapshot",
        "--command",
        "environment.txt",
        "--",
        "env",
    ])));
    assert_eq!(r.code, EXIT_OK, "{}", r.all());
    let to = env.path("restored");
    env.ok(&["restore", &id_of(&r.json()), "--to", to.to_str().unwrap()]);
    let stored = std::fs::read_to_string(to.join("environment.txt")).expect("restored");
    assert_no_secret(&stored, "the --command producer");
}

/// The password command, and the `[host]` pause and resume commands.
#[test]
fn the_password_command_and_host_hooks_see_no_secret() {
    let env = Env::new();
    let seen = env.path("password-command.env");
    let mut c = with_secrets(env.cmd(&[
        "--password-command",
        &format!("env > '{}'; echo '{PASSWORD}'", seen.display()),
        "snapshots",
    ]));
    c.env_remove("RBK_PASSWORD");
    let r = run(c);
    assert_eq!(r.code, EXIT_OK, "{}", r.all());
    assert_no_secret(
        &std::fs::read_to_string(&seen).expect("the password command ran"),
        "the password command",
    );

    let (pause, resume) = (env.path("pause.env"), env.path("resume.env"));
    let db = env.write(
        "rushdb.db",
        b"SQLite format 3\0 (not really: read as bytes)",
    );
    let config = env.write(
        "rbk.toml",
        format!(
            "[host]\npause_command = \"env > '{}'\"\nresume_command = \"env > '{}'\"\nsqlite_path = \"{}\"\n",
            pause.display(),
            resume.display(),
            db.display()
        )
        .as_bytes(),
    );
    let mut c = with_secrets(env.cmd(&["snapshot"]));
    c.env("RBK_CONFIG", &config);
    let r = run(c);
    assert_eq!(r.code, EXIT_OK, "{}", r.all());
    for (file, what) in [(pause, "the pause command"), (resume, "the resume command")] {
        assert_no_secret(&std::fs::read_to_string(&file).expect(what), what);
    }
}
