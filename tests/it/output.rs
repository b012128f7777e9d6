//! What rbk prints when nobody reads it, and what it prints of names it did not choose: a
//! closed pipe is a quiet end, a full disk under stdout one clear error, neither a panic; and
//! every name from the repository or the user is shown escaped, so that no part name, tag,
//! host or lock description can forge an output line or send a terminal escape.

use std::fs;
use std::io::Read;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use rbk::store::manifest::{Part, Snapshot};
use rbk::store::writer::SnapshotWriter;

use crate::util::*;

const GUARD: Duration = Duration::from_secs(120);

/// Commits one snapshot through the library whose parts are all the same small stream under
/// `names`, with the given host, tags and labels: names rbk itself would not let a new
/// snapshot use (an older rbk, or a hostile one holding the key, could have written them).
fn snapshot_named(
    env: &Env,
    names: &[String],
    host: &str,
    tags: &[&str],
    labels: &[(&str, &str)],
) -> String {
    let repo = env.open();
    let lock = repo.lock(false, "it: named parts").expect("lock");
    let writer = SnapshotWriter::new(&repo, Arc::new(repo.load_index().expect("index")));
    let data = b"the same few bytes under every name\n";
    let stored = writer
        .add_stream(&data[..], &rbk::progress::Silent)
        .expect("store");
    let parts = names
        .iter()
        .map(|n| Part {
            name: n.clone(),
            origin: format!("file:/srv/{n}"),
            codec: "raw".into(),
            envelope: vec![],
            source_size: data.len() as u64,
            source_hash: *blake3::hash(data).as_bytes(),
            stored: stored.clone(),
        })
        .collect();
    let snapshot = Snapshot {
        time: "2026-03-01T02:00:00+01:00".into(),
        host: host.into(),
        tags: tags.iter().map(|t| t.to_string()).collect(),
        parts,
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        stats: Default::default(),
    };
    let (id, _) = writer.commit(snapshot).expect("commit");
    drop(lock);
    id.to_hex()
}

/// Lock files left in the repository (the `.tmp-` writes excluded, as readers do).
fn locks(env: &Env) -> Vec<String> {
    names_in(&env.repo.join("locks"))
}

/// A snapshot of 4000 parts with long names: every listing of it is far larger than a pipe's
/// buffer, so a reader that stops early is certain to leave rbk writing into a closed pipe.
fn big_listing() -> Env {
    let env = Env::new();
    let names: Vec<String> = (0..4000)
        .map(|i| format!("part-{i:04}-{}", "x".repeat(60)))
        .collect();
    snapshot_named(&env, &names, "it", &[], &[]);
    env
}

#[test]
fn a_reader_that_stops_early_is_a_quiet_end() {
    let env = big_listing();
    for args in [
        &["snapshots"][..],
        &["--json", "snapshots"],
        &["diff", "latest", "latest"],
        &["--json", "diff", "latest", "latest"],
    ] {
        let mut c = env.cmd(args);
        c.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = c.spawn().expect("spawn rbk");
        let mut stdout = child.stdout.take().expect("stdout pipe");
        let mut first = [0u8; 100];
        stdout.read_exact(&mut first).expect("the first bytes");
        // Closing the read end: rbk's next write meets EPIPE.
        drop(stdout);
        let r = wait_with_guard(child, GUARD, &format!("rbk {args:?}"));
        assert!(
            !r.stderr.contains("panicked"),
            "rbk {args:?} panicked:\n{}",
            r.stderr
        );
        assert_eq!(
            r.code, EXIT_OK,
            "rbk {args:?}: a closed stdout ends the output, not the command:\n{}",
            r.stderr
        );
        assert_eq!(r.stderr, "", "rbk {args:?}: a quiet end says nothing");
        assert_eq!(
            locks(&env),
            Vec::<String>::new(),
            "rbk {args:?} left a lock"
        );
    }
}

/// stdout on a full disk (`/dev/full`): exit 1 and one line saying so, with the lock released.
#[test]
fn a_full_stdout_is_one_clear_error() {
    let env = Env::new();
    let p = env.write("db.bin", &random_bytes(64 * 1024, 1));
    env.ok(&["snapshot", "--path", p.to_str().unwrap()]);
    for args in [
        &["snapshots"][..],
        &["--json", "snapshots"],
        &["diff", "latest", "latest"],
        &["stats"],
        &["check"],
        &["man"],
        &["completions", "bash"],
    ] {
        let full = fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .expect("/dev/full");
        let mut c = env.cmd(args);
        c.stdout(full);
        let r = run(c);
        assert!(
            !r.stderr.contains("panicked"),
            "rbk {args:?} panicked:\n{}",
            r.stderr
        );
        assert_eq!(r.code, EXIT_FAILED, "rbk {args:?}:\n{}", r.stderr);
        let lines: Vec<&str> = r.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "rbk {args:?}: one line:\n{}", r.stderr);
        assert!(
            lines[0].starts_with("rbk: error: ")
                && lines[0].contains("standard output")
                && lines[0].contains("No space left on device"),
            "rbk {args:?}: {}",
            lines[0]
        );
        assert_eq!(
            locks(&env),
            Vec::<String>::new(),
            "rbk {args:?} left a lock"
        );
    }
}

/// A stderr nobody can write to (full, or a closed pipe) changes nothing: the exit code is the
/// command's own, never a panic's 101.
#[test]
fn an_unwritable_stderr_never_panics() {
    let env = Env::new();
    let full = || {
        fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .expect("/dev/full")
    };

    // An error with stderr full.
    let mut c = env.cmd(&["diff", "ffffffff", "latest"]);
    c.stderr(full());
    let r = run(c);
    assert_eq!(r.code, EXIT_FAILED, "stderr full: {}", r.stdout);

    // An error with stderr a closed pipe.
    let mut c = env.cmd(&["snapshot", "--path", "/nonexistent/db.bin"]);
    c.stdout(Stdio::null()).stderr(Stdio::piped());
    let mut child = c.spawn().expect("spawn");
    drop(child.stderr.take());
    let status = child.wait().expect("wait");
    assert_eq!(status.code(), Some(EXIT_FAILED), "stderr closed: {status}");

    // Success, with its report on stdout and stderr full.
    let p = env.write("db.bin", b"bytes");
    let mut c = env.cmd(&["snapshot", "--path", p.to_str().unwrap()]);
    c.stderr(full());
    let r = run(c);
    assert_eq!(r.code, EXIT_OK, "{}", r.stdout);
    assert!(r.stdout.contains("saved"), "{}", r.stdout);
}

// ---------------------------------------------------------------- escaped names

/// Names a hostile or broken repository may hold: each tries to forge a line, move the
/// cursor, set the terminal's title or reorder what is shown.
fn hostile_names() -> Vec<String> {
    [
        "evil\nrbk: error: forged line",
        "esc\x1b[31mred",
        "tab\tname",
        "cr\rname",
        "del\x7fname",
        "csi\u{9b}2Jname",
        "bidi\u{202e}gpj.exe",
    ]
    .map(String::from)
    .to_vec()
}

const HOST: &str = "host\x1b]0;owned\x07";
const TAGS: [&str; 2] = ["tag\nforged", "t\x1b[2J"];
const PROJECT: &str = "proj\nforged";

/// A character that must never reach a terminal raw from a name: a control character other
/// than the line ends rbk writes itself, or a bidirectional override.
fn unprintable(c: char) -> bool {
    (c.is_control() && c != '\n')
        || matches!(c, '\u{61c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// Runs rbk and returns its exit code and raw stdout and stderr bytes.
fn run_raw(c: &mut Command) -> (i32, Vec<u8>, Vec<u8>) {
    let out = c.output().expect("run rbk");
    (out.status.code().unwrap_or(-1), out.stdout, out.stderr)
}

fn assert_printable(bytes: &[u8], what: &str) -> String {
    let text =
        String::from_utf8(bytes.to_vec()).unwrap_or_else(|e| panic!("{what}: not UTF-8: {e}"));
    if let Some((at, c)) = text.char_indices().find(|(_, c)| unprintable(*c)) {
        panic!("{what}: a raw {c:?} at byte {at}:\n{}", text.escape_debug());
    }
    text
}

#[test]
fn names_from_the_repository_are_printed_escaped() {
    let env = Env::new();
    let names = hostile_names();
    snapshot_named(
        &env,
        &names,
        HOST,
        &TAGS,
        &[(rbk::stack::names::label::PROJECT, PROJECT)],
    );

    // The table: a header, one row, the count. No name adds a line.
    let (code, out, err) = run_raw(&mut env.cmd(&["snapshots"]));
    assert_eq!(code, EXIT_OK, "{}", String::from_utf8_lossy(&err));
    let text = assert_printable(&out, "snapshots");
    assert_eq!(text.lines().count(), 3, "snapshots:\n{text}");
    for shown in [
        "evil\\nrbk: error: forged line",
        "esc\\x1b[31mred",
        "tab\\tname",
        "cr\\rname",
        "del\\x7fname",
        "csi\\u{9b}2Jname",
        "bidi\\u{202e}gpj.exe",
        "host\\x1b]0;owned\\x07/proj\\nforged",
        "tag\\nforged,t\\x1b[2J",
    ] {
        assert!(text.contains(shown), "snapshots lacks {shown:?}:\n{text}");
    }

    // diff: two heading lines, a line per part, the total.
    let (code, out, err) = run_raw(&mut env.cmd(&["diff", "latest", "latest"]));
    assert_eq!(code, EXIT_OK, "{}", String::from_utf8_lossy(&err));
    let text = assert_printable(&out, "diff");
    assert_eq!(text.lines().count(), names.len() + 3, "diff:\n{text}");
    assert!(text.contains("evil\\nrbk: error: forged line"), "{text}");

    // prune --dry-run names the group (host and project) and the snapshot's reasons.
    let (code, out, err) = run_raw(&mut env.cmd(&["prune", "--keep-last", "1", "--dry-run"]));
    assert_eq!(code, EXIT_OK, "{}", String::from_utf8_lossy(&err));
    let text = assert_printable(&out, "prune --dry-run");
    assert!(text.contains("host=host\\x1b]0;owned\\x07"), "{text}");

    // restore --to writes each file under its real name, and says so escaped.
    let dir = env.path("out");
    let (code, out, err) =
        run_raw(&mut env.cmd(&["restore", "latest", "--to", dir.to_str().unwrap()]));
    assert_eq!(code, EXIT_OK, "{}", String::from_utf8_lossy(&err));
    let text = assert_printable(&out, "restore --to");
    assert_eq!(text.lines().count(), names.len() + 1, "restore:\n{text}");
    assert!(text.contains("evil\\nrbk: error: forged line"), "{text}");
    for n in &names {
        assert!(dir.join(n).is_file(), "{n:?} was not restored");
    }

    // --json holds every name exactly, and no raw DEL, C1 control or override either.
    let (code, out, _) = run_raw(&mut env.cmd(&["--json", "snapshots"]));
    assert_eq!(code, EXIT_OK);
    let text = assert_printable(&out, "snapshots --json");
    let v: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    let got: Vec<&str> = v[0]["parts"]
        .as_array()
        .expect("parts")
        .iter()
        .map(|p| p["name"].as_str().expect("name"))
        .collect();
    assert_eq!(got, names.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(v[0]["host"], HOST);
}

/// A lock held under a hostile command name: `unlock` (which keeps it, alive) and the error
/// of a command it blocks show its description escaped.
#[test]
fn lock_descriptions_are_printed_escaped() {
    let env = Env::new();
    let repo = env.open();
    let held = repo
        .lock(true, "evil\nrbk: error: forged\x1b[2J")
        .expect("exclusive lock");

    let (code, out, err) = run_raw(&mut env.cmd(&["unlock"]));
    assert_eq!(code, EXIT_OK, "{}", String::from_utf8_lossy(&err));
    let text = assert_printable(&out, "unlock");
    assert_eq!(text.lines().count(), 2, "unlock:\n{text}");
    assert!(text.contains("evil\\nrbk: error: forged\\x1b[2J"), "{text}");

    let p = env.write("db.bin", b"bytes");
    let (code, _, err) = run_raw(&mut env.cmd(&["snapshot", "--path", p.to_str().unwrap()]));
    assert_eq!(code, EXIT_LOCKED);
    let text = assert_printable(&err, "the locked error");
    assert!(!text.contains("\nrbk: error: forged"), "{text}");
    drop(held);
}
