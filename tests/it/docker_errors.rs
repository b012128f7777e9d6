//! A Docker engine rbk cannot use: a socket that accepts and never answers, one that refuses, one that does not exist, one rbk may not open. Stack-mode `snapshot` and `restore` fail within seconds with one plain sentence naming the socket and the likely cause, and touch nothing.
//!
//! The sockets are the test's own Unix sockets, given to rbk by `DOCKER_HOST`; no engine is
//! needed.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::stack::assert_contains;
use crate::util::*;

/// How long a stack command may take against a dead engine: the brief's 10 s, plus the
/// key derivation and process start.
const FAST: Duration = Duration::from_secs(15);
/// A deadlock guard, well below rbk's old 120 s wait so a regression fails quickly.
const GUARD: Duration = Duration::from_secs(40);

/// `rbk ARGS` in stack mode (no rbk.toml) against the engine at `docker_host`, as `uid` when
/// given. The run and how long it took.
fn stack_run(env: &Env, docker_host: &str, args: &[&str], uid: Option<u32>) -> (Run, Duration) {
    let mut c = env.cmd(args);
    c.env("DOCKER_HOST", docker_host)
        .env_remove("RBK_CONFIG")
        .current_dir(env.tmp.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    if let Some(uid) = uid {
        c.uid(uid).gid(uid);
    }
    let started = Instant::now();
    let r = wait_with_guard(
        c.spawn().expect("spawn rbk"),
        GUARD,
        &format!("rbk {args:?}"),
    );
    (r, started.elapsed())
}

/// A repository with one snapshot (of a file), to restore in stack mode; its id.
fn repo_with_snapshot(env: &Env) -> String {
    let f = env.write("metadata.sql", &text_bytes(10_000, 3));
    id_of(&env.snapshot(&["--path", f.to_str().unwrap()]))
}

/// Both stack commands against `docker_host`: each fails (exit 1) within `FAST`, with one
/// line on stderr that names `socket` and contains every one of `says`, no raw client error,
/// and the repository unchanged.
fn assert_both_fail_plainly(
    env: &Env,
    id: &str,
    docker_host: &str,
    socket: &Path,
    says: &[&str],
    uid: Option<u32>,
) {
    let before = tree_digest(&env.repo);
    for args in [vec!["snapshot"], vec!["restore", id]] {
        let what = format!("rbk {args:?} against {docker_host}");
        let (r, took) = stack_run(env, docker_host, &args, uid);
        assert_eq!(r.code, EXIT_FAILED, "{what}:\n{}", r.all());
        assert!(took < FAST, "{what} took {took:?}:\n{}", r.all());
        assert_contains(&r.stderr, &socket.display().to_string(), &what);
        for s in says {
            assert_contains(&r.stderr, s, &what);
        }
        assert_eq!(
            r.stderr.trim().lines().count(),
            1,
            "{what}: one line:\n{}",
            r.stderr
        );
        for raw in ["hyper", "legacy client", "Socket not found", "client error"] {
            assert!(
                !r.stderr.contains(raw),
                "{what}: a raw client error:\n{}",
                r.stderr
            );
        }
        assert_eq!(
            tree_digest(&env.repo),
            before,
            "{what}: the repository changed"
        );
    }
}

/// Item 17b: a socket that accepts connections and never answers (a hung engine). rbk
/// used to wait the client's 120 s; now both commands give up within seconds.
#[test]
fn a_socket_that_never_answers_fails_fast() {
    let env = Env::new();
    let id = repo_with_snapshot(&env);
    let socket = env.path("hung.sock");
    let listener = UnixListener::bind(&socket).expect("bind");
    // Accept every connection and hold it open, reading and answering nothing.
    std::thread::spawn(move || {
        let mut held: Vec<UnixStream> = Vec::new();
        for conn in listener.incoming() {
            match conn {
                Ok(c) => held.push(c),
                Err(_) => return,
            }
        }
    });
    let host = format!("unix://{}", socket.display());
    assert_both_fail_plainly(&env, &id, &host, &socket, &["did not answer"], None);
}

/// Item 17c: a socket path with nothing there, a socket nobody listens on (a stopped
/// engine), and one rbk's user may not open: each one sentence with the likely cause.
#[test]
fn an_unreachable_engine_is_one_plain_sentence() {
    let env = Env::new();
    let id = repo_with_snapshot(&env);

    let missing = env.path("no-such.sock");
    let host = format!("unix://{}", missing.display());
    assert_both_fail_plainly(&env, &id, &host, &missing, &["is Docker running?"], None);

    let refusing = env.path("stopped.sock");
    drop(UnixListener::bind(&refusing).expect("bind"));
    let host = format!("unix://{}", refusing.display());
    assert_both_fail_plainly(
        &env,
        &id,
        &host,
        &refusing,
        &["refuses connections", "is Docker running?"],
        None,
    );

    // As an unprivileged user: the socket is root's (0660, like root:docker), the
    // repository the user's own.
    let uid = 65534;
    let listening = env.path("root-only.sock");
    let _listener = UnixListener::bind(&listening).expect("bind");
    fs::set_permissions(&listening, fs::Permissions::from_mode(0o660)).expect("chmod");
    fs::set_permissions(env.tmp.path(), fs::Permissions::from_mode(0o755)).expect("chmod");
    let out = std::process::Command::new("chown")
        .args(["-R", &format!("{uid}:{uid}")])
        .arg(&env.repo)
        .output()
        .expect("chown");
    assert!(out.status.success(), "chown the repository");
    let host = format!("unix://{}", listening.display());
    assert_both_fail_plainly(
        &env,
        &id,
        &host,
        &listening,
        &["permission denied", "docker group"],
        Some(uid),
    );
}
