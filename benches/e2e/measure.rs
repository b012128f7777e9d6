//! Runs a child process and measures it: wall time, and CPU time and peak RSS from `wait4`'s rusage.

use std::fs::File;
use std::io::{Read, Seek};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// What one child process cost.
#[derive(Debug, Clone, Default)]
pub struct Usage {
    pub wall: Duration,
    /// User plus system CPU seconds.
    pub cpu: f64,
    pub user: f64,
    pub sys: f64,
    /// `ru_maxrss`: the largest resident set, in KiB on Linux.
    pub max_rss_kib: u64,
    /// The harness's own peak RSS (VmHWM) when it spawned the child, in KiB: `ru_maxrss`
    /// cannot be lower (see [`run`]).
    pub floor_kib: u64,
    /// CPU the rest of the machine used meanwhile, in cores (machine busy time from
    /// `/proc/stat` minus the child's CPU, over the wall time): other load skews the figures.
    pub background_cores: f64,
}

impl Usage {
    pub fn rss_mib(&self) -> f64 {
        self.max_rss_kib as f64 / 1024.0
    }
}

/// A finished child: its usage and what it printed on stdout.
pub struct Finished {
    pub usage: Usage,
    pub stdout: String,
}

fn seconds(tv: libc::timeval) -> f64 {
    tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6
}

fn slurp(mut f: File) -> Result<String> {
    f.rewind()?;
    let mut s = String::new();
    f.read_to_string(&mut s)?;
    Ok(s)
}

/// Resets this process's peak RSS to its current RSS and returns it (VmHWM, KiB).
///
/// std spawns with `CLONE_VM | CLONE_VFORK`, so when the child execs, the kernel records the
/// peak RSS of the memory it shared, the harness's, as the child's starting `ru_maxrss`.
/// Resetting the peak first (`5` to `/proc/self/clear_refs`, Linux >= 4.0, no privilege
/// needed) keeps that floor at the harness's current few MiB.
pub fn reset_own_peak() -> u64 {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

/// Busy CPU seconds of the whole machine so far (`/proc/stat`: all but idle and iowait).
pub fn machine_busy_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/stat") else {
        return 0.0;
    };
    let Some(line) = stat.lines().find(|l| l.starts_with("cpu ")) else {
        return 0.0;
    };
    let ticks: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest time is already in user).
    let busy: u64 = ticks
        .iter()
        .take(8)
        .enumerate()
        .filter(|(i, _)| *i != 3 && *i != 4)
        .map(|(_, t)| t)
        .sum();
    // SAFETY: sysconf has no memory-safety preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1);
    busy as f64 / hz as f64
}

/// Runs `cmd` to its end with stdin closed and stdout/stderr captured in temporary files (no
/// pipe to drain, so a chatty child never blocks). Fails unless the child exits with status 0.
pub fn run(cmd: &mut Command, what: &str) -> Result<Finished> {
    let out = tempfile::tempfile()?;
    let err = tempfile::tempfile()?;
    cmd.stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(err.try_clone()?);
    let floor_kib = reset_own_peak();
    let busy_before = machine_busy_seconds();
    let started = Instant::now();
    let child = cmd
        .spawn()
        .with_context(|| format!("{what}: cannot start {cmd:?}"))?;
    let pid = child.id() as libc::pid_t;
    let mut status: libc::c_int = 0;
    // SAFETY: rusage is plain old data, for which all-zero bytes are a valid value.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: `pid` is our own child, not yet reaped (std's `Child` is never waited on
        // here; dropping it does not wait either), and both out-pointers are valid.
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
        if r == pid {
            break;
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            bail!("{what}: wait4 failed: {e}");
        }
    }
    let wall = started.elapsed();
    let busy = machine_busy_seconds() - busy_before;
    drop(child);
    let stdout = slurp(out)?;
    let stderr = slurp(err)?;
    let (user, sys) = (seconds(ru.ru_utime), seconds(ru.ru_stime));
    let usage = Usage {
        wall,
        cpu: user + sys,
        user,
        sys,
        max_rss_kib: ru.ru_maxrss.max(0) as u64,
        floor_kib,
        background_cores: ((busy - (user + sys)) / wall.as_secs_f64().max(1e-9)).max(0.0),
    };
    let exited_ok = libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
    if !exited_ok {
        let how = if libc::WIFEXITED(status) {
            format!("exit status {}", libc::WEXITSTATUS(status))
        } else {
            format!("signal {}", libc::WTERMSIG(status))
        };
        bail!(
            "{what}: {cmd:?} failed ({how})\nstdout:\n{}\nstderr:\n{}",
            tail(&stdout),
            tail(&stderr)
        );
    }
    Ok(Finished { usage, stdout })
}

/// The last lines of a child's output, for error messages.
fn tail(s: &str) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}
