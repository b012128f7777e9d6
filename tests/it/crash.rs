//! Proves crash safety: `rbk snapshot` killed with SIGKILL at many points of a 64 MiB
//! snapshot never leaves a damaged repository, never loses an earlier snapshot, never
//! commits a partial one, and its stale locks do not block later work.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::util::*;

const INPUT: usize = 64 * MIB;
/// The producer writes its input in this many pieces and marks each one done, so kill points
/// can be placed by progress through the input rather than by guessed delays.
const PIECES: usize = 16;
const PART: &str = "big.bin";

/// The input of run `seed`: half-random, so zstd halves it and every run writes about
/// 32 MiB of new blobs (two full packs and a partial one). Each run has its own seed, so
/// every run writes new packs instead of deduplicating against an earlier run.
fn input(seed: u64) -> Vec<u8> {
    semi_compressible(INPUT, seed)
}

/// A snapshot that exists and what it must restore to.
struct Known {
    id: String,
    part: &'static str,
    seed: Option<u64>,
}

struct Harness {
    env: Env,
    known: Vec<Known>,
    base: Vec<u8>,
    runs: usize,
}

/// One `rbk snapshot` whose producer reports its progress through marker files.
struct Attempt {
    child: Child,
    marks: PathBuf,
    stderr: PathBuf,
    started: Instant,
    /// Snapshots that existed when the run started.
    before: Vec<String>,
}

impl Attempt {
    fn mark(&self, i: usize) -> PathBuf {
        self.marks.join(format!("mark-{i}"))
    }

    fn all_read(&self) -> bool {
        self.mark(PIECES - 1).exists()
    }

    fn exited(&mut self) -> bool {
        self.child.try_wait().expect("try_wait").is_some()
    }

    /// Waits until the producer has handed over piece `i` (or rbk has exited).
    fn wait_for_mark(&mut self, i: usize) {
        let guard = Instant::now() + Duration::from_secs(300);
        while !self.mark(i).exists() && !self.exited() {
            assert!(
                Instant::now() < guard,
                "the producer never reached piece {i}"
            );
            std::thread::sleep(Duration::from_micros(500));
        }
    }
}

impl Harness {
    fn new() -> Harness {
        let env = Env::new();
        // An earlier snapshot of a different kind that every crash must leave intact.
        let base = text_bytes(3 * MIB, 90);
        let path = env.write("base.txt", &base);
        let id = id_of(&env.snapshot(&["--path", path.to_str().unwrap()]));
        Harness {
            env,
            known: vec![Known {
                id,
                part: "base.txt",
                seed: None,
            }],
            base,
            runs: 0,
        }
    }

    /// Starts `rbk snapshot --command big.bin -- sh -c '...'` on a fresh input.
    fn start(&mut self, seed: u64) -> Attempt {
        self.runs += 1;
        let dir = self.env.path(&format!("run-{}", self.runs));
        let marks = dir.join("marks");
        fs::create_dir_all(&marks).unwrap();
        let data = input(seed);
        // `set -e`: once rbk is dead, a failed `cat` ends the producer instead of letting it
        // go on creating marks.
        let mut script = String::from("set -e; ");
        for (i, piece) in data.chunks(INPUT / PIECES).enumerate() {
            let p = dir.join(format!("piece-{i}"));
            fs::write(&p, piece).unwrap();
            script.push_str(&format!(
                "cat '{}'; : > '{}'; ",
                p.display(),
                marks.join(format!("mark-{i}")).display()
            ));
        }
        let stderr = dir.join("rbk.stderr");
        let before = self.env.snapshot_files();
        let child = self
            .env
            .cmd(&["snapshot", "--command", PART, "--", "sh", "-c", &script])
            .stdout(Stdio::null())
            .stderr(File::create(&stderr).unwrap())
            .spawn()
            .expect("spawn rbk snapshot");
        Attempt {
            child,
            marks,
            stderr,
            started: Instant::now(),
            before,
        }
    }

    /// Kills the attempt (unless it already ended) and holds the repository to the contract.
    /// Returns whether the run completed on its own.
    fn kill_and_verify(&mut self, mut a: Attempt, seed: u64, point: &str) -> bool {
        let all_read_at_kill = a.all_read();
        // SIGKILL: no destructor, no cleanup, as in a power cut of the process.
        let _ = a.child.kill();
        let status = a.child.wait().expect("wait");
        let completed = status.success();
        let stderr = fs::read_to_string(&a.stderr).unwrap_or_default();
        assert!(
            completed || std::os::unix::process::ExitStatusExt::signal(&status) == Some(9),
            "{point}: rbk failed on its own ({status}):\n{stderr}"
        );

        let after = self.env.snapshot_files();
        let new: Vec<&String> = after.iter().filter(|s| !a.before.contains(s)).collect();
        if completed {
            assert_eq!(
                new.len(),
                1,
                "{point}: a completed run must leave exactly one new snapshot: {new:?}"
            );
        } else {
            assert!(new.len() <= 1, "{point}: {new:?}");
            // A kill can land after the commit (the manifest is written, the process has not
            // exited yet); then the snapshot must be whole, and it cannot have been committed
            // before the producer's last byte was read.
            if !new.is_empty() {
                assert!(
                    all_read_at_kill,
                    "{point}: a snapshot was committed before its input was read"
                );
            }
        }
        if let Some(id) = new.first() {
            self.known.push(Known {
                id: (*id).clone(),
                part: PART,
                seed: Some(seed),
            });
        }

        let (r, v) = self.env.check(true);
        // Where the kill landed, as the repository shows it: for the report, not asserted.
        let temps = files_under(&self.env.repo)
            .iter()
            .filter(|p| file_id(p).starts_with(".tmp-"))
            .count();
        println!(
            "crash: {point}: {}; {} unindexed packs, {temps} temporary files, {} index files, {} snapshots",
            if completed { "completed" } else { "killed" },
            v["warnings"].as_array().map_or(0, Vec::len),
            names_in(&self.env.repo.join("index")).len(),
            after.len()
        );
        // What a kill leaves (below) is a warning, not damage: exit 6 with it, 0 without.
        assert_eq!(
            r.code,
            check_code_for(&v),
            "{point}: check --read-data after the kill:\n{}",
            r.all()
        );
        assert_eq!(v["errors"].as_array().unwrap().len(), 0, "{point}: {v}");
        for w in v["warnings"].as_array().unwrap() {
            assert!(
                is_unreferenced_pack(w) || is_leftover_temp(w),
                "{point}: unexpected warning {w}"
            );
        }
        self.verify_known(point);
        completed
    }

    /// Every snapshot that exists restores byte for byte.
    fn verify_known(&self, point: &str) {
        for k in &self.known {
            let to = self.env.path("verify");
            let _ = fs::remove_dir_all(&to);
            self.env
                .ok(&["restore", &k.id, "--to", to.to_str().unwrap()]);
            let expected = match k.seed {
                Some(seed) => input(seed),
                None => self.base.clone(),
            };
            assert_file_is(
                &to.join(k.part),
                &expected,
                &format!("{point}: snapshot {}", k.id),
            );
            fs::remove_dir_all(&to).unwrap();
        }
    }

    /// The run's files (64 MiB of pieces) are not needed once it is verified.
    fn clean_run(&self, a_dir: &Path) {
        let _ = fs::remove_dir_all(a_dir);
    }
}

/// A write cut short by the kill: reported by check, harmless.
#[test]
#[cfg_attr(
    debug_assertions,
    ignore = "30 snapshots of 64 MiB and as many check --read-data: minutes in a debug build; run with --release"
)]
fn sigkill_at_many_points_never_damages_the_repository() {
    let mut h = Harness::new();
    let mut seed = 1000;

    // Calibration: one run to its end, timing the part after the producer's last byte (the
    // final packs, the index, the manifest), where the kill points of the second phase go.
    let mut a = h.start(seed);
    a.wait_for_mark(PIECES - 1);
    let tail_start = Instant::now();
    let guard = Instant::now() + Duration::from_secs(300);
    while !a.exited() {
        assert!(Instant::now() < guard, "the calibration run did not finish");
        std::thread::sleep(Duration::from_micros(200));
    }
    let tail = tail_start.elapsed();
    let total = a.started.elapsed();
    let dir = a.marks.parent().unwrap().to_path_buf();
    assert!(
        h.kill_and_verify(a, seed, "calibration"),
        "the calibration run must complete"
    );
    h.clean_run(&dir);
    println!("crash: a full run took {total:?}, {tail:?} of it after the last input byte");

    let mut kills = 0;
    let mut completions = 0;
    // Phase 1: while the input streams in, right after each piece is handed over.
    for piece in 0..PIECES {
        seed += 1;
        let mut a = h.start(seed);
        a.wait_for_mark(piece);
        let dir = a.marks.parent().unwrap().to_path_buf();
        if h.kill_and_verify(a, seed, &format!("killed after piece {piece}/{PIECES}")) {
            completions += 1;
        } else {
            kills += 1;
        }
        h.clean_run(&dir);
    }
    // Phase 2: after the last byte, at fractions of the measured tail, up to and past its
    // end, so that the last kills land around the commit or after it.
    for step in 0..=12u32 {
        seed += 1;
        let delay = tail * step / 10;
        let mut a = h.start(seed);
        a.wait_for_mark(PIECES - 1);
        std::thread::sleep(delay);
        let dir = a.marks.parent().unwrap().to_path_buf();
        if h.kill_and_verify(
            a,
            seed,
            &format!("killed {delay:?} after the last input byte"),
        ) {
            completions += 1;
        } else {
            kills += 1;
        }
        h.clean_run(&dir);
    }
    println!(
        "crash: {kills} runs killed, {completions} completed before the kill; {} snapshots exist",
        h.known.len()
    );
    assert!(
        kills >= 15,
        "only {kills} runs were killed mid-way; the test must exercise crashes"
    );

    // Stale locks of the dead processes remain, and none of them is an obstacle.
    let stale = names_in(&h.env.repo.join("locks")).len();
    assert!(
        stale > 0,
        "the killed runs should have left their locks behind"
    );
    let repo = h.env.open();
    let exclusive = repo.lock(true, "it: after the crashes");
    assert!(
        exclusive.is_ok(),
        "an exclusive lock must ignore {stale} stale locks of dead processes: {:?}",
        exclusive.err()
    );
    drop(exclusive);
    drop(repo);

    seed += 1;
    let path = h.env.write("after.bin", &input(seed));
    let id = id_of(&h.env.snapshot(&["--path", path.to_str().unwrap()]));
    let to = h.env.path("after");
    h.env.ok(&["restore", &id, "--to", to.to_str().unwrap()]);
    assert_file_is(
        &to.join("after.bin"),
        &input(seed),
        "the snapshot after the crashes",
    );

    let r = h.env.ok(&["--json", "unlock"]);
    assert_eq!(
        r.json()["removed"].as_array().unwrap().len(),
        stale,
        "rbk unlock removes every stale lock: {}",
        r.stdout
    );
    assert!(names_in(&h.env.repo.join("locks")).is_empty());
    // The killed runs' packs and temporary files stay until a prune: warnings, not damage.
    h.env
        .assert_check_ok_but_litter("after the crashes, a new snapshot and unlock");
    h.verify_known("at the end");
}
