//! SIGINT and SIGTERM during a snapshot of files and streams: rbk stops reading, removes its packs, releases its lock, ends its producer, says what was not saved and exits 130.
//!
//! Each test lets a real input (a FIFO, a device, a pipe on stdin, a producer that never
//! ends) run until rbk has written at least one pack, signals rbk alone (as `kill` or
//! systemd would), and then holds the repository to exactly what it was before: the same
//! packs, indexes and snapshots, no lock, no temporary file, `check --read-data` clean, and
//! a following snapshot that works.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::util::*;

const EXIT_INTERRUPTED: i32 = 130;
/// Upper bound for rbk to stop after the signal: the claim the tests make.
const STOP_WITHIN: Duration = Duration::from_secs(10);
/// A deadlock guard for the whole run, not a timing claim.
const GUARD: Duration = Duration::from_secs(120);
/// Incompressible input past one 16 MiB pack.
const INPUT: usize = 24 * MIB;

/// Every file below the repository, as (relative name, BLAKE3): what an interrupted
/// snapshot must leave exactly as it found. Directories are left out: a pack's fan-out
/// directory stays once made (removing it could fail a concurrent writer about to use it).
fn repo_state(env: &Env) -> std::collections::BTreeMap<String, String> {
    let mut files = tree_digest(&env.repo);
    files.retain(|name, _| !name.ends_with('/'));
    files
}

/// Packs finished so far (a pack being written is a `.tmp-` file until its rename).
fn finished_packs(env: &Env) -> usize {
    env.packs()
        .iter()
        .filter(|p| {
            !p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(".tmp-")
        })
        .count()
}

/// A repository that already holds a snapshot (so it has packs and an index to keep).
fn env_with_a_snapshot() -> Env {
    let env = Env::new();
    let first = env.write("first.txt", &text_bytes(300_000, 1));
    env.snapshot(&["--path", first.to_str().unwrap()]);
    env
}

/// Whom the signal goes to.
#[derive(Clone, Copy)]
enum To {
    /// rbk alone, as `kill PID` or systemd sends it.
    Rbk,
    /// A process group, as a terminal sends Ctrl-C to its foreground job.
    Group(i32),
}

/// Spawns `rbk` (its stdout and stderr piped), hands it to `started` (to feed its stdin),
/// waits until it has written a pack more than the repository had, sends `signal` and
/// returns what rbk said, insisting it ended within [`STOP_WITHIN`] of the signal.
fn signal_once_packed(
    env: &Env,
    mut rbk: Command,
    (signal, to): (i32, To),
    what: &str,
    started: impl FnOnce(&mut Child),
) -> Run {
    let packs_before = finished_packs(env);
    rbk.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = rbk.spawn().expect("spawn rbk");
    started(&mut child);
    let deadline = Instant::now() + GUARD;
    while finished_packs(env) <= packs_before {
        let ended = child.try_wait().expect("try_wait").is_some();
        if ended || Instant::now() > deadline {
            let _ = child.kill();
            let r = wait_with_guard(child, GUARD, what);
            panic!(
                "{what}: rbk wrote no pack before the signal (ended: {ended}):\n{}",
                r.all()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let target = match to {
        To::Rbk => child.id() as i32,
        To::Group(group) => -group,
    };
    // SAFETY: kill(2) to the rbk process this test spawned and has not reaped, or to the
    // process group the test made for it.
    assert_eq!(unsafe { libc::kill(target, signal) }, 0);
    let signalled = Instant::now();
    let r = wait_with_guard(child, GUARD, what);
    let took = signalled.elapsed();
    assert!(
        took < STOP_WITHIN,
        "{what}: rbk took {took:?} to stop after the signal:\n{}",
        r.all()
    );
    r
}

/// What every interrupted snapshot must leave: exit 130, the message, the repository as it
/// was (no pack, index, snapshot, lock or temporary file added), a clean check, and a next
/// snapshot that works.
fn assert_stopped_cleanly(
    env: &Env,
    r: &Run,
    before: &std::collections::BTreeMap<String, String>,
    signal: &str,
    part: &str,
    what: &str,
) {
    assert_eq!(r.code, EXIT_INTERRUPTED, "{what}: exit code:\n{}", r.all());
    assert!(
        r.stderr.contains(&format!(
            "interrupted by {signal}: snapshot not saved; nothing was committed"
        )),
        "{what}: the message says nothing was saved:\n{}",
        r.stderr
    );
    assert!(
        r.stderr.contains(&format!("of part {part:?}")) && r.stderr.contains("had been read"),
        "{what}: the message says how far it read:\n{}",
        r.stderr
    );
    assert!(
        r.stdout.is_empty(),
        "{what}: nothing on stdout:\n{}",
        r.stdout
    );
    let after = repo_state(env);
    let added: Vec<&String> = after.keys().filter(|k| !before.contains_key(*k)).collect();
    let removed: Vec<&String> = before.keys().filter(|k| !after.contains_key(*k)).collect();
    assert!(
        added.is_empty() && removed.is_empty() && after == *before,
        "{what}: the repository changed: added {added:?}, removed {removed:?}"
    );
    assert!(
        names_in(&env.repo.join("locks")).is_empty(),
        "{what}: a lock was left"
    );
    let temps: Vec<PathBuf> = files_under(&env.repo)
        .into_iter()
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(".tmp-")
        })
        .collect();
    assert!(temps.is_empty(), "{what}: temporary files left: {temps:?}");
    env.assert_check_ok(what);
    let next = env.write("next.txt", &text_bytes(100_000, 2));
    let s = env.snapshot(&["--path", next.to_str().unwrap()]);
    assert_eq!(s["parts"][0]["name"], "next.txt", "{what}: {s}");
}

/// `--path FIFO`, its writer holding the FIFO open after 24 MiB: rbk waits in a read that
/// only the signal can end. SIGINT.
#[test]
fn sigint_during_a_fifo_path() {
    let env = env_with_a_snapshot();
    let before = repo_state(&env);
    let fifo = env.path("stream.fifo");
    mkfifo(&fifo);
    let (release, hold) = mpsc::channel::<()>();
    let writer = {
        let fifo = fifo.clone();
        std::thread::spawn(move || {
            let mut f = fs::OpenOptions::new()
                .write(true)
                .open(&fifo)
                .expect("open the FIFO for writing");
            // An rbk that stopped reading makes this fail (EPIPE): that is its end.
            if f.write_all(&random_bytes(INPUT, 5)).is_ok() {
                let _ = hold.recv();
            }
        })
    };
    let r = signal_once_packed(
        &env,
        env.cmd(&["snapshot", "--path", fifo.to_str().unwrap()]),
        (libc::SIGINT, To::Rbk),
        "SIGINT, --path FIFO",
        |_| {},
    );
    let _ = release.send(());
    writer.join().expect("writer");
    assert_stopped_cleanly(&env, &r, &before, "SIGINT", "stream.fifo", "--path FIFO");
}

/// `--path /dev/urandom`: a device that never ends, read as fast as rbk can. SIGTERM.
#[test]
fn sigterm_during_an_endless_device_path() {
    let env = env_with_a_snapshot();
    let before = repo_state(&env);
    let r = signal_once_packed(
        &env,
        env.cmd(&["snapshot", "--path", "/dev/urandom"]),
        (libc::SIGTERM, To::Rbk),
        "SIGTERM, --path /dev/urandom",
        |_| {},
    );
    assert_stopped_cleanly(&env, &r, &before, "SIGTERM", "urandom", "--path device");
}

/// `--stdin`: 24 MiB down a pipe that then stays open. SIGINT.
#[test]
fn sigint_during_stdin_that_stays_open() {
    let env = env_with_a_snapshot();
    let before = repo_state(&env);
    let mut rbk = env.cmd(&["snapshot", "--stdin", "piped.bin"]);
    rbk.stdin(Stdio::piped());
    let (release, hold) = mpsc::channel::<()>();
    let mut writer = None;
    let what = "SIGINT, --stdin";
    let r = signal_once_packed(&env, rbk, (libc::SIGINT, To::Rbk), what, |child| {
        let mut stdin = child.stdin.take().expect("stdin");
        writer = Some(std::thread::spawn(move || {
            if stdin.write_all(&random_bytes(INPUT, 6)).is_ok() {
                let _ = hold.recv();
            }
        }));
    });
    let _ = release.send(());
    writer.expect("writer").join().expect("writer");
    assert_stopped_cleanly(&env, &r, &before, "SIGINT", "piped.bin", "--stdin");
}

/// Ctrl-C on a terminal pipeline, `producer | rbk snapshot --stdin`: SIGINT reaches both, the
/// producer dies and rbk's stdin ends early. A stream cut short must not be saved as whole.
#[test]
fn ctrl_c_on_a_pipeline_into_stdin_saves_nothing() {
    use std::os::unix::process::CommandExt;
    let env = env_with_a_snapshot();
    let big = env.write("big.bin", &random_bytes(INPUT, 8));
    let before = repo_state(&env);
    // The pipeline's process group, as a shell with job control makes one: the producer
    // leads it, rbk joins it.
    let mut producer = Command::new("sh");
    producer
        .arg("-c")
        .arg(format!("cat '{}'; exec sleep 600", big.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .process_group(0);
    let mut producer = as_a_terminal_job(producer).spawn().expect("producer");
    let group = producer.id() as i32;
    let _guard = KillGroup(group);
    let mut rbk = env.cmd(&["snapshot", "--stdin", "piped.bin"]);
    rbk.stdin(producer.stdout.take().expect("stdout"))
        .process_group(group);
    let rbk = as_a_terminal_job(rbk);
    let ctrl_c = (libc::SIGINT, To::Group(group));
    let r = signal_once_packed(&env, rbk, ctrl_c, "Ctrl-C, producer | rbk", |_| {});
    let _ = producer.wait();
    assert_stopped_cleanly(&env, &r, &before, "SIGINT", "piped.bin", "a pipeline");
}

/// A producer that never ends, in a pipeline of its own (`sh` and `cat`): after the signal
/// neither is left running. Both signals.
#[test]
fn a_signal_during_a_command_ends_its_producer() {
    for (signal, name) in [(libc::SIGTERM, "SIGTERM"), (libc::SIGINT, "SIGINT")] {
        let env = env_with_a_snapshot();
        let big = env.write("big.bin", &random_bytes(INPUT, 7));
        let pidfile = env.path("producer.pid");
        let script = format!(
            "echo $$ > '{}'; while :; do cat '{}'; done",
            pidfile.display(),
            big.display()
        );
        let before = repo_state(&env);
        let rbk = env.cmd(&[
            "snapshot",
            "--command",
            "endless.bin",
            "--",
            "sh",
            "-c",
            &script,
        ]);
        let what = format!("{name}, --command");
        let r = signal_once_packed(&env, rbk, (signal, To::Rbk), &what, |_| {});
        let producer = read_pid(&pidfile);
        // Left running by a failed test, it would stream forever: end it whatever happens.
        let _guard = KillGroup(producer);
        let running = live_in_group(producer);
        assert!(
            running.is_empty(),
            "{name}: the producer's processes are still running: {running:?}\n{}",
            r.all()
        );
        assert_stopped_cleanly(&env, &r, &before, name, "endless.bin", "--command");
    }
}

/// A job of an interactive shell starts with SIGINT at its default action. A test runner
/// started in the background of a shell without job control (`cmd &`, as CI runners often
/// are) passes SIGINT on ignored, and an ignored signal stays ignored across `exec`: the
/// producer's `sleep 600` would outlive the Ctrl-C it is meant to die of.
fn as_a_terminal_job(mut c: Command) -> Command {
    use std::os::unix::process::CommandExt;
    // SAFETY: signal(2) is async-signal-safe and changes only the child's own disposition.
    unsafe {
        c.pre_exec(|| {
            libc::signal(libc::SIGINT, libc::SIG_DFL);
            Ok(())
        });
    }
    c
}

struct KillGroup(i32);

impl Drop for KillGroup {
    fn drop(&mut self) {
        // SAFETY: kill(2) on the producer's process group (its leader's pid), as a last resort.
        unsafe {
            libc::kill(-self.0, libc::SIGKILL);
            libc::kill(self.0, libc::SIGKILL);
        }
    }
}

fn mkfifo(path: &Path) {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).expect("path");
    // SAFETY: a NUL-terminated path we own.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo");
}

fn read_pid(path: &Path) -> i32 {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.trim()
        .parse()
        .unwrap_or_else(|_| panic!("{}: not a pid: {text:?}", path.display()))
}

/// Processes of group `pgid` (or the process `pgid` itself) still running (not zombies).
fn live_in_group(pgid: i32) -> Vec<i32> {
    let mut out = Vec::new();
    for e in fs::read_dir("/proc").expect("/proc") {
        let Some(pid) = e
            .ok()
            .and_then(|e| e.file_name().to_str()?.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let (state, pgrp) = (fields[0], fields[2].parse::<i32>().unwrap_or(0));
        if (pid == pgid || pgrp == pgid) && state != "Z" {
            out.push(pid);
        }
    }
    out
}
