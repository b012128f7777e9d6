//! Proves that a failed input commits nothing and leaves nothing: a producer that exits
//! non-zero, dies by a signal or floods stderr fails the snapshot with a message naming the
//! part and quoting its stderr, its packs are removed, and a missing file fails up front.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use crate::util::*;

const GUARD: Duration = Duration::from_secs(300);
const PART: &str = "metadata.sql";

/// A repository with one earlier snapshot, so "the list is unchanged" means something.
struct Setup {
    env: Env,
    snapshots: Vec<String>,
    packs: Vec<PathBuf>,
    indexes: Vec<String>,
    /// Enough incompressible bytes to fill more than two packs while the producer runs.
    big: PathBuf,
    big_len: usize,
}

impl Setup {
    fn new() -> Setup {
        let env = Env::new();
        let earlier = env.write("earlier.txt", &text_bytes(200_000, 120));
        env.snapshot(&["--path", earlier.to_str().unwrap()]);
        let pack_target = env.open().config().pack_target as usize;
        let big_len = pack_target * 5 / 2;
        let big = env.write("big.bin", &random_bytes(big_len, 121));
        Setup {
            snapshots: env.snapshot_files(),
            packs: env.packs(),
            indexes: names_in(&env.repo.join("index")),
            env,
            big,
            big_len,
        }
    }

    fn snapshot_with(&self, script: &str) -> Run {
        let child = self
            .env
            .cmd(&["snapshot", "--command", PART, "--", "sh", "-c", script])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn rbk snapshot");
        wait_with_guard(child, GUARD, "rbk snapshot with a failing producer")
    }

    /// Nothing committed, nothing left behind, the repository checks clean.
    fn assert_nothing_left(&self, what: &str) {
        assert_eq!(
            self.env.snapshot_files(),
            self.snapshots,
            "{what}: the snapshot list changed"
        );
        assert_eq!(
            self.env.packs(),
            self.packs,
            "{what}: pack files were left behind"
        );
        assert_eq!(
            names_in(&self.env.repo.join("index")),
            self.indexes,
            "{what}: index files changed"
        );
        assert!(
            names_in(&self.env.repo.join("locks")).is_empty(),
            "{what}: a lock was left behind"
        );
        let (r, v) = self.env.check(true);
        assert_eq!(r.code, EXIT_OK, "{what}: check --read-data:\n{}", r.all());
        assert_eq!(v["errors"].as_array().unwrap().len(), 0, "{what}: {v}");
        assert_eq!(v["warnings"].as_array().unwrap().len(), 0, "{what}: {v}");
    }
}

fn assert_failed_naming(r: &Run, what: &str, needles: &[&str]) {
    assert_ne!(
        r.code,
        EXIT_OK,
        "{what}: the snapshot must fail:\n{}",
        r.all()
    );
    assert!(
        r.stderr.contains(PART),
        "{what}: the message names the part {PART:?}:\n{}",
        r.stderr
    );
    for n in needles {
        assert!(
            r.stderr.contains(n),
            "{what}: the message must contain {n:?}:\n{}",
            r.stderr
        );
    }
}

/// The producer writes two and a half packs' worth, then waits until the test has seen a
/// pack on disk, then complains and exits 7: the packs already written must go.
#[test]
fn a_producer_exiting_non_zero_after_writing_data_commits_nothing() {
    let s = Setup::new();
    let (wrote, go) = (s.env.path("wrote"), s.env.path("go"));
    let script = format!(
        "head -c {} '{}'; : > '{}'; while [ ! -e '{}' ]; do sleep 0.01; done; echo 'pg_dump: error: connection to server lost' >&2; exit 7",
        s.big_len,
        s.big.display(),
        wrote.display(),
        go.display()
    );
    let child = s
        .env
        .cmd(&["snapshot", "--command", PART, "--", "sh", "-c", &script])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The failure must undo packs that were really written, not just never write any.
    let deadline = std::time::Instant::now() + GUARD;
    while !(wrote.exists() && s.env.packs().len() > s.packs.len()) {
        assert!(
            std::time::Instant::now() < deadline,
            "no pack appeared while the producer streamed"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    std::fs::write(&go, b"").unwrap();
    let r = wait_with_guard(child, GUARD, "rbk snapshot");
    assert_failed_naming(
        &r,
        "exit 7",
        &[
            "exited with status 7",
            "pg_dump: error: connection to server lost",
        ],
    );
    s.assert_nothing_left("exit 7");
}

#[test]
fn a_producer_killed_by_a_signal_halfway_commits_nothing() {
    let s = Setup::new();
    let script = format!(
        "head -c 5000000 '{}'; echo 'about to die' >&2; kill -9 $$",
        s.big.display()
    );
    let r = s.snapshot_with(&script);
    assert_failed_naming(&r, "SIGKILL", &["killed by signal 9", "about to die"]);
    s.assert_nothing_left("SIGKILL");
}

/// 100,000 lines on stderr (far more than a pipe holds) around the data: rbk must drain
/// stderr while it reads stdout, and quote the last lines when the producer fails.
#[test]
fn a_producer_flooding_stderr_does_not_deadlock_and_its_tail_is_quoted() {
    let s = Setup::new();
    let flood = "seq 1 100000 | sed 's/^/progress line /' >&2";
    let script = format!(
        "{flood}; head -c 3000000 '{}'; {flood}; echo 'fatal: the last words' >&2; exit 3",
        s.big.display()
    );
    let r = s.snapshot_with(&script);
    assert_failed_naming(
        &r,
        "stderr flood",
        &[
            "exited with status 3",
            "progress line 100000",
            "fatal: the last words",
        ],
    );
    assert!(
        !r.stderr.contains("progress line 1\n"),
        "only the tail is quoted, not 200,000 lines"
    );
    s.assert_nothing_left("stderr flood");

    // The same flood from a producer that succeeds: committed, and byte for byte.
    let script = format!("{flood}; head -c 3000000 '{}'; {flood}", s.big.display());
    let r = s.snapshot_with(&script);
    assert_eq!(
        r.code,
        EXIT_OK,
        "a successful producer with a noisy stderr:\n{}",
        r.all()
    );
    let to = s.env.path("restored");
    s.env
        .ok(&["restore", "latest", "--to", to.to_str().unwrap()]);
    let big = std::fs::read(&s.big).unwrap();
    assert_file_is(
        &to.join(PART),
        &big[..3_000_000],
        "the noisy producer's output",
    );
}

/// A `--path` that does not exist fails before anything is written, even when it comes after
/// a part that would fill packs: the repository is byte for byte as it was.
#[test]
fn a_missing_path_fails_before_anything_is_written() {
    let s = Setup::new();
    let before = tree_digest(&s.env.repo);
    let missing = s.env.path("no-such-dir/neo4j.dump");
    let r = s.env.run(&[
        "snapshot",
        "--path",
        s.big.to_str().unwrap(),
        "--path",
        missing.to_str().unwrap(),
    ]);
    assert_ne!(r.code, EXIT_OK, "{}", r.all());
    assert!(
        r.stderr.contains(missing.to_str().unwrap()),
        "the message names the missing file:\n{}",
        r.stderr
    );
    assert_eq!(
        tree_digest(&s.env.repo),
        before,
        "a snapshot with a missing --path changed the repository"
    );
    s.assert_nothing_left("missing --path");
}
