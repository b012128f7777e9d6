//! Building child processes (the one place: without rbk's secrets in their environment) and ending a producer's process group.
//!
//! Every program rbk starts (a `--command` producer, the `[host]` pause and resume hooks,
//! `pg_dump`, `psql`, `neo4j-admin`, the password command) inherits rbk's environment, and
//! that environment may hold the repository password and the database passwords rbk reads.
//! A producer that prints its environment would store them in the backup; a hook would hand
//! them to whatever it runs. So [`command`] removes them, and `tests/tidy.rs` holds every
//! other file to building processes through it.

use std::ffi::OsStr;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// The environment variables rbk reads secrets from. None of them reaches a child.
pub const SECRETS: [&str; 3] = [
    "RBK_PASSWORD",
    "RBK_POSTGRES_PASSWORD",
    "RBK_NEO4J_PASSWORD",
];

/// How long a producer's process group has between SIGTERM and SIGKILL.
pub const GRACE: Duration = Duration::from_secs(5);

/// `Command::new(program)` with rbk's secrets removed from the environment it inherits.
/// A caller that must hand a child a password (`PGPASSWORD` for `pg_dump`) sets it on the
/// command explicitly, for that child alone.
pub fn command(program: impl AsRef<OsStr>) -> Command {
    let mut c = Command::new(program);
    for var in SECRETS {
        c.env_remove(var);
    }
    c
}

/// Ends `child`, which leads a process group of its own (`process_group(0)`), and everything
/// in that group (`sh -c 'a | b'` runs `a` and `b` there): SIGTERM (with SIGCONT, so a
/// stopped process sees it), up to [`GRACE`] for the group to go, then SIGKILL; reaps
/// `child`. The leader is reaped only at the end, so its process group id cannot be reused
/// by another group while it is signalled.
pub fn end_group(child: &mut Child) {
    let Ok(pgid) = i32::try_from(child.id()) else {
        return;
    };
    if let Ok(Some(_)) = child.try_wait() {
        // Reaped already: the id may belong to someone else by now; signal nothing.
        return;
    }
    signal_group(pgid, libc::SIGTERM);
    signal_group(pgid, libc::SIGCONT);
    let deadline = Instant::now() + GRACE;
    while group_alive(pgid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    if group_alive(pgid) {
        signal_group(pgid, libc::SIGKILL);
    }
    let _ = child.wait();
}

fn signal_group(pgid: i32, signal: i32) {
    // SAFETY: kill(2) on the process group our unreaped child leads; no memory involved.
    unsafe { libc::kill(-pgid, signal) };
}

/// Whether a process of group `pgid` is still running (zombies do not count: they have
/// ended and wait only to be reaped, the leader by us, the others by their new parent).
fn group_alive(pgid: i32) -> bool {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        // Without /proc, assume it lives: the caller's deadline still ends the wait.
        return true;
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .any(|pid| group_of(pid).is_some_and(|(state, pgrp)| pgrp == pgid && state != 'Z'))
}

/// State and process group of `pid`, from `/proc/PID/stat` (`pid (comm) state ppid pgrp ...`).
fn group_of(pid: i32) -> Option<(char, i32)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: the fields follow the last `)`.
    let mut fields = stat.rsplit_once(')')?.1.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let _ppid = fields.next()?;
    let pgrp = fields.next()?.parse().ok()?;
    Some((state, pgrp))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::CommandExt;

    #[test]
    fn every_secret_is_removed() {
        // What children really inherit is tested end to end in tests/it/secrets.rs.
        let c = command("env");
        let removed: Vec<_> = c
            .get_envs()
            .filter(|(_, v)| v.is_none())
            .map(|(k, _)| k.to_string_lossy().into_owned())
            .collect();
        for s in SECRETS {
            assert!(removed.iter().any(|r| r == s), "{s} is not removed");
        }
    }

    #[test]
    fn ending_a_group_ends_a_pipeline_in_it() {
        let mut child = command("sh")
            .args(["-c", "sleep 600 | sleep 600"])
            .process_group(0)
            .spawn()
            .expect("sh");
        let pgid = child.id() as i32;
        let started = Instant::now();
        while !(group_alive(pgid)
            && std::fs::read_dir("/proc")
                .unwrap()
                .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
                .filter(|&p| group_of(p).is_some_and(|(_, g)| g == pgid))
                .count()
                >= 3)
        {
            assert!(started.elapsed() < Duration::from_secs(10), "no pipeline");
            std::thread::sleep(Duration::from_millis(10));
        }
        end_group(&mut child);
        let deadline = Instant::now() + Duration::from_secs(5);
        while group_alive(pgid) {
            assert!(
                Instant::now() < deadline,
                "the pipeline outlived its group's end"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}
