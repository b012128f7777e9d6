//! Host mode's stack: the `[host]` configuration, and the write pause its commands make (`HostPause`).
//!
//! Writes are paused with `pause_command` (e.g. `systemctl stop rushdb`)
//! and resumed with `resume_command`, always, whatever happens in between.
//! `HostPause` owns the resume (and the Neo4j start) for the snapshot in
//! `backup/host.rs` and for the restore in `restore/host.rs`.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde::Deserialize;

use super::restarted::Restarted;
use crate::cancel::{Cancel, Cancelled};

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostConfig {
    /// Run before the dumps to stop writes (`systemctl stop rushdb`).
    pub pause_command: Option<String>,
    /// Run after, whatever happened (`systemctl start rushdb`).
    pub resume_command: Option<String>,
    /// Neo4j Community must be stopped for a dump: these run around it.
    pub neo4j_stop_command: Option<String>,
    pub neo4j_start_command: Option<String>,
    /// `neo4j-admin` to run (default: none, no graph part).
    pub neo4j_admin: Option<String>,
    pub neo4j_database: Option<String>,
    /// `postgres://user@host/db`; the password from PGPASSWORD or ~/.pgpass, or in the URL
    /// (then handed to pg_dump and psql as PGPASSWORD, never on their command line).
    pub postgres_url: Option<String>,
    /// The SQLite metadata file (SQL_DB_PATH).
    pub sqlite_path: Option<PathBuf>,
}

impl HostConfig {
    pub fn is_empty(&self) -> bool {
        self.neo4j_admin.is_none() && self.postgres_url.is_none() && self.sqlite_path.is_none()
    }

    pub fn database(&self) -> &str {
        self.neo4j_database.as_deref().unwrap_or("neo4j")
    }

    pub(crate) fn stop_command(&self, s: Service) -> Option<&str> {
        match s {
            Service::Writes => self.pause_command.as_deref(),
            Service::Neo4j => self.neo4j_stop_command.as_deref(),
        }
    }

    pub(crate) fn start_command(&self, s: Service) -> Option<&str> {
        match s {
            Service::Writes => self.resume_command.as_deref(),
            Service::Neo4j => self.neo4j_start_command.as_deref(),
        }
    }
}

/// What a pair of `[host]` commands stops and starts again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Service {
    /// RushDB: `pause_command` / `resume_command`.
    Writes,
    /// `neo4j_stop_command` / `neo4j_start_command`.
    Neo4j,
}

impl Service {
    pub(crate) fn stop_name(self) -> &'static str {
        match self {
            Service::Writes => "pause command",
            Service::Neo4j => "Neo4j stop command",
        }
    }

    pub(crate) fn start_name(self) -> &'static str {
        match self {
            Service::Writes => "resume command",
            Service::Neo4j => "Neo4j start command",
        }
    }
}

fn sh(what: &str, cmd: &str) -> Result<()> {
    let status = crate::process::command("sh")
        .arg("-c")
        .arg(cmd)
        .status()
        .with_context(|| format!("running the {what} {cmd:?}"))?;
    if !status.success() {
        bail!("the {what} {cmd:?} failed ({status})");
    }
    Ok(())
}

/// A start command still owed for a stop that ran (or was attempted).
struct Owed {
    service: Service,
    command: String,
}

struct Shared {
    /// Owed start commands, in the order their stops ran.
    owed: Mutex<Vec<Owed>>,
    /// Held by whoever runs a stop or start command: the watcher waits for a stop in
    /// flight, since a start that ran before that stop ended would be undone by it.
    op: Mutex<()>,
    /// The flag the CLI's SIGINT/SIGTERM handler sets.
    cancel: Cancel,
    /// Set once the watcher has run what was owed.
    restarted: Restarted,
    /// Set when the pause is over: the watcher has nothing left to undo and ends.
    ended: AtomicBool,
}

/// The write pause of a host-mode snapshot or restore. Every start command is registered
/// before its stop runs, and runs exactly once on every path out: `start`/`finish`, an error
/// or panic unwinding through `Drop` (Neo4j first, then RushDB), or SIGINT/SIGTERM, seen in
/// the [`Cancel`] flag the CLI's handler sets: a watcher thread then ends the command rbk is
/// streaming to or from (a dump, a load, psql: they would keep Neo4j's store locked) and runs
/// what is owed; the main thread's next stop, start or `finish` fails with [`Cancelled`] once
/// that is done, and the error unwinds to the CLI, which exits 130. A stop or start command
/// in flight is let finish first; one that hangs holds the exit up.
pub(crate) struct HostPause {
    host: HostConfig,
    shared: Arc<Shared>,
    began: Option<Instant>,
}

impl HostPause {
    pub(crate) fn new(host: &HostConfig, cancel: Cancel) -> Result<HostPause> {
        cancel.hold();
        let shared = Arc::new(Shared {
            owed: Mutex::default(),
            op: Mutex::default(),
            cancel,
            restarted: Restarted::default(),
            ended: AtomicBool::new(false),
        });
        watch(shared.clone())?;
        Ok(HostPause {
            host: host.clone(),
            shared,
            began: None,
        })
    }

    /// Registers the service's start command, then runs its stop command.
    pub(crate) fn stop(&mut self, s: Service) -> Result<()> {
        let _op = self.shared.op()?;
        if let Some(c) = self.host.start_command(s) {
            lock(&self.shared.owed).push(Owed {
                service: s,
                command: c.to_string(),
            });
        }
        self.began.get_or_insert_with(Instant::now);
        match self.host.stop_command(s) {
            Some(c) => sh(s.stop_name(), c),
            None => Ok(()),
        }
    }

    /// Runs the service's start command now, if it is owed.
    pub(crate) fn start(&mut self, s: Service) -> Result<()> {
        let _op = self.shared.op()?;
        let owed = {
            let mut owed = lock(&self.shared.owed);
            owed.iter()
                .rposition(|o| o.service == s)
                .map(|i| owed.remove(i))
        };
        match owed {
            Some(o) => sh(s.start_name(), &o.command),
            None => Ok(()),
        }
    }

    /// Runs every owed start command, most recent first; all run even if one fails, and the
    /// first failure is returned. After a signal the watcher ran them, and this fails with
    /// [`Cancelled`].
    pub(crate) fn finish(&mut self) -> Result<()> {
        let _op = self.shared.op()?;
        let owed: Vec<Owed> = lock(&self.shared.owed).drain(..).rev().collect();
        let mut first = None;
        for o in owed {
            if let Err(e) = sh(o.service.start_name(), &o.command) {
                match first {
                    None => first = Some(e),
                    Some(_) => log_safely(|| tracing::error!("{e:#}")),
                }
            }
        }
        first.map_or(Ok(()), Err)
    }

    /// Milliseconds since the first stop.
    pub(crate) fn elapsed_ms(&self) -> u64 {
        self.began
            .map(|b| b.elapsed().as_millis() as u64)
            .unwrap_or(0)
    }
}

impl Drop for HostPause {
    fn drop(&mut self) {
        match self.finish() {
            Ok(()) => {}
            Err(e) if crate::cancel::is_cancelled(&e) => {}
            Err(e) => log_safely(|| tracing::error!("{e:#}")),
        }
        self.shared.ended.store(true, Ordering::SeqCst);
    }
}

impl Shared {
    /// The right to run a stop or start command, unless a signal came: then the watcher
    /// owns the restart, and this waits for it and fails, so the main thread neither stops
    /// anything more nor returns before the stack runs again.
    fn op(&self) -> std::result::Result<MutexGuard<'_, ()>, Cancelled> {
        self.check()?;
        let guard = lock(&self.op);
        if let Err(c) = self.cancel.check() {
            drop(guard);
            self.restarted.wait();
            return Err(c);
        }
        Ok(guard)
    }

    /// The watcher restarts whenever it sees the flag before the pause ended, and the pause
    /// ends only after this returns: so it will, or it has.
    fn check(&self) -> std::result::Result<(), Cancelled> {
        self.cancel.check().inspect_err(|_| self.restarted.wait())
    }

    fn on_cancel(&self) {
        log_safely(|| {
            tracing::warn!("interrupted: starting the stack again before exiting; nothing is saved")
        });
        let _op = lock(&self.op);
        end_children();
        let owed: Vec<Owed> = lock(&self.owed).drain(..).rev().collect();
        for o in owed {
            if let Err(e) = sh(o.service.start_name(), &o.command) {
                log_safely(|| tracing::error!("{e:#}"));
            }
        }
        self.restarted.set();
    }
}

/// Logs without letting a closed stderr (a reader of a pipe gone, a closed terminal) stop
/// the restart: tracing's writer panics when it cannot report its own write error, which
/// would end the watcher, or abort a main thread already unwinding, before the start
/// commands ran.
fn log_safely(log: impl FnOnce()) {
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(log));
}

/// The watcher: a thread that looks at the flag every 50 ms while the pause lasts. The
/// flag before the end: a pause that ends after a signal waits for this restart.
fn watch(shared: Arc<Shared>) -> Result<()> {
    std::thread::Builder::new()
        .name("rbk-pause-watch".into())
        .spawn(move || {
            loop {
                if shared.cancel.check().is_err() {
                    shared.on_cancel();
                    return;
                }
                if shared.ended.load(Ordering::SeqCst) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        })
        .context("starting the pause's watcher thread")?;
    Ok(())
}

/// Ends rbk's child processes (the dump, load or psql in flight; no stop or start command
/// runs, the caller holds `op`): SIGTERM, then SIGKILL after 10 s. A Ctrl-C reaches them
/// from the terminal anyway; a SIGTERM to rbk alone does not, and a load left running would
/// keep Neo4j's store locked against the start command.
fn end_children() {
    let children = children_of(std::process::id());
    let signal_alive = |signal| {
        for &pid in children.iter().filter(|&&p| alive(p)) {
            // SAFETY: kill(2) on a pid read from /proc as our own child; no memory involved.
            unsafe { libc::kill(pid, signal) };
        }
    };
    let wait = |limit| {
        let deadline = Instant::now() + limit;
        while children.iter().any(|&p| alive(p)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    signal_alive(libc::SIGTERM);
    wait(Duration::from_secs(10));
    signal_alive(libc::SIGKILL);
    wait(Duration::from_secs(2));
}

/// Pids whose parent is `parent`, from `/proc/PID/stat` (`pid (comm) state ppid ...`).
fn children_of(parent: u32) -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| stat_of(pid).is_some_and(|(_, ppid)| ppid == parent))
        .collect()
}

/// Running, not yet a zombie (a zombie holds no locks; its parent reaps it).
fn alive(pid: i32) -> bool {
    stat_of(pid).is_some_and(|(state, _)| state != 'Z')
}

fn stat_of(pid: i32) -> Option<(char, u32)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: the fields follow the last `)`.
    let mut fields = stat.rsplit_once(')')?.1.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    Some((state, ppid))
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_its_own_parent_from_proc() {
        let me = std::process::id() as i32;
        let (state, ppid) = stat_of(me).expect("/proc/self/stat");
        assert_ne!(state, 'Z');
        assert!(ppid > 0);
        let mut child = crate::process::command("sleep")
            .arg("5")
            .spawn()
            .expect("sleep");
        assert!(children_of(me as u32).contains(&(child.id() as i32)));
        child.kill().expect("kill");
        child.wait().expect("wait");
        assert!(!alive(child.id() as i32));
    }
}
