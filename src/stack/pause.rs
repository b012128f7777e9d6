//! The write pause: containers and Neo4j databases rbk stopped are started again whatever happens (error, panic, Ctrl-C, SIGTERM), and a signal is reported to the caller, never ends the process here.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Result;
use tokio::runtime::Handle;

use super::restarted::Restarted;
use crate::cancel::{Cancel, Cancelled};
use crate::source::docker::{ContainerInfo, Engine};
use crate::source::neo4j::Database;

/// Something rbk stopped and owes a start.
#[derive(Clone)]
enum Held {
    Container(ContainerInfo),
    /// A Neo4j Enterprise database stopped with `STOP DATABASE` in its running server.
    Database(Database),
}

impl Held {
    fn is_container(&self, c: &ContainerInfo) -> bool {
        matches!(self, Held::Container(h) if h.id == c.id)
    }

    fn is_database(&self, db: &Database) -> bool {
        matches!(self, Held::Database(h) if h.container.id == db.container.id && h.name == db.name)
    }
}

type Stopped = Arc<Mutex<Vec<Held>>>;
/// Held while the main thread stops or starts a container or database, so the watcher never
/// restarts the stack while a stop is still in flight.
type Op = Arc<tokio::sync::Mutex<()>>;

/// How often the watcher looks at the cancellation flag the CLI's signal handler sets.
const WATCH_EVERY: Duration = Duration::from_millis(50);

/// What the main thread and the watcher share about a signal.
#[derive(Default)]
struct Signalled {
    /// Set once the watcher has started everything again.
    restarted: Restarted,
    /// Set when the pause is over: the watcher has nothing left to undo and ends.
    ended: AtomicBool,
}

/// Owns the restart of every container and database it stopped. Dropping it (an error
/// unwinding, a panic) starts them again, most recently stopped first, so Neo4j (the
/// container, or on Enterprise its database) is up before RushDB reconnects.
///
/// Signals reach it through the [`Cancel`] flag the CLI's handler sets: a watcher task then
/// removes this project's one-off containers (which ends a dump or load in flight), waits
/// for a stop in flight, and starts what was stopped. The main thread's next stop or start
/// fails with [`Cancelled`] once that restart is done, and the error unwinds to the CLI,
/// which exits 130. Nothing here ends the process.
pub struct Pause {
    rt: Handle,
    engine: Engine,
    stopped: Stopped,
    op: Op,
    signalled: Arc<Signalled>,
    cancel: Cancel,
    began: Option<Instant>,
}

impl Pause {
    /// Must be called from outside the runtime (it blocks on it). `project` scopes the
    /// one-off containers the watcher removes to this stack's; `cancel` is the flag the
    /// CLI's SIGINT/SIGTERM handler sets.
    pub fn new(rt: Handle, engine: Engine, project: String, cancel: Cancel) -> Pause {
        let stopped: Stopped = Arc::default();
        let op: Op = Arc::default();
        let signalled: Arc<Signalled> = Arc::default();
        cancel.hold();
        rt.spawn(restart_on_cancel(
            engine.clone(),
            project,
            stopped.clone(),
            op.clone(),
            signalled.clone(),
            cancel.clone(),
        ));
        Pause {
            rt,
            engine,
            stopped,
            op,
            signalled,
            cancel,
            began: None,
        }
    }

    /// Stops a container; it is registered for restart before the stop is
    /// attempted, so a stop that fails halfway is still undone.
    /// A container that was not running when the stack was found is left
    /// alone: rbk must not start what the operator stopped.
    pub fn stop(&mut self, c: &ContainerInfo, timeout_secs: i32) -> Result<()> {
        if !c.running {
            return Ok(());
        }
        let _op = self.op_guard()?;
        lock(&self.stopped).push(Held::Container(c.clone()));
        self.began.get_or_insert_with(Instant::now);
        self.rt.block_on(self.engine.stop(c, timeout_secs))
    }

    /// Starts a container again and forgets it.
    pub fn start(&mut self, c: &ContainerInfo) -> Result<()> {
        let _op = self.op_guard()?;
        let result = self.rt.block_on(self.engine.start(c));
        if result.is_ok() {
            lock(&self.stopped).retain(|s| !s.is_container(c));
        }
        result
    }

    /// `STOP DATABASE` in a running Neo4j Enterprise server. Registered for `START DATABASE`
    /// before the stop is attempted, like a container: a stop that failed or timed out may
    /// still have taken the database down, and `START DATABASE` on an online one does nothing.
    pub fn stop_database(&mut self, db: &Database) -> Result<()> {
        let _op = self.op_guard()?;
        lock(&self.stopped).push(Held::Database(db.clone()));
        self.began.get_or_insert_with(Instant::now);
        self.rt.block_on(db.set_online(&self.engine, false))
    }

    /// `START DATABASE` again, and forgets it.
    pub fn start_database(&mut self, db: &Database) -> Result<()> {
        let _op = self.op_guard()?;
        let result = self.rt.block_on(db.set_online(&self.engine, true));
        if result.is_ok() {
            lock(&self.stopped).retain(|s| !s.is_database(db));
        }
        result
    }

    /// Milliseconds since the first stop.
    pub fn elapsed_ms(&self) -> u64 {
        self.began
            .map(|b| b.elapsed().as_millis() as u64)
            .unwrap_or(0)
    }

    /// `Err(Cancelled)` once a signal came, after the watcher has started everything
    /// again: the caller stops what it was doing and unwinds.
    pub fn check(&self) -> std::result::Result<(), Cancelled> {
        match self.cancel.check() {
            Ok(()) => Ok(()),
            // The watcher restarts the stack whenever it sees the flag before the pause
            // ended, and the pause ends only after this returns: so it will, or it has.
            Err(c) => {
                self.signalled.restarted.wait();
                Err(c)
            }
        }
    }

    /// The right to touch containers, unless a signal came: then the watcher owns the
    /// restart, and this waits for it and fails.
    fn op_guard(&self) -> std::result::Result<tokio::sync::OwnedMutexGuard<()>, Cancelled> {
        self.check()?;
        let guard = self.op.clone().blocking_lock_owned();
        // The signal may have come while the guard was awaited: the watcher waits for it.
        if let Err(c) = self.cancel.check() {
            drop(guard);
            self.signalled.restarted.wait();
            return Err(c);
        }
        Ok(guard)
    }

    /// Starts everything still stopped; returns what could not be started. After a signal
    /// the watcher did that already.
    pub fn restart_all(&mut self) -> Vec<String> {
        let Ok(_op) = self.op_guard() else {
            return Vec::new();
        };
        let list: Vec<Held> = lock(&self.stopped).drain(..).rev().collect();
        let engine = self.engine.clone();
        self.rt.block_on(restart(&engine, list))
    }
}

impl Drop for Pause {
    fn drop(&mut self) {
        for failure in self.restart_all() {
            tracing::error!("{failure}");
        }
        self.signalled.ended.store(true, Ordering::SeqCst);
    }
}

async fn restart(engine: &Engine, list: Vec<Held>) -> Vec<String> {
    let mut failures = Vec::new();
    for held in list {
        match held {
            Held::Container(c) => {
                if let Err(e) = engine.start(&c).await {
                    failures.push(format!(
                        "could not start {} again: {e:#}; start it by hand (docker start {})",
                        c.name, c.name
                    ));
                }
            }
            Held::Database(db) => {
                if let Err(e) = db.set_online(engine, true).await {
                    failures.push(format!(
                        "could not start the Neo4j database {} in {} again: {e:#}; start it by hand (cypher-shell -d system \"START DATABASE {}\")",
                        db.name, db.container.name, db.name
                    ));
                }
            }
        }
    }
    failures
}

/// The watcher: once the cancellation flag is set while the pause lasts, it starts the stack
/// again. It ends with the pause; a signal after that has nothing to undo, and the main
/// thread sees the flag itself (before the commit).
async fn restart_on_cancel(
    engine: Engine,
    project: String,
    stopped: Stopped,
    op: Op,
    signalled: Arc<Signalled>,
    cancel: Cancel,
) {
    // The flag before the end: a pause that ends after a signal came waits for this
    // restart (`Pause::check`), so the flag must win.
    loop {
        if cancel.signal().is_some() {
            break;
        }
        if signalled.ended.load(Ordering::SeqCst) {
            return;
        }
        tokio::time::sleep(WATCH_EVERY).await;
    }
    tracing::warn!("interrupted: starting the stack again before exiting; no snapshot is saved");
    // A dump container still holding Neo4j's volume (or, on Enterprise, the stopped database,
    // which `START DATABASE` could not take back from it) must go first (this also ends a
    // dump the main thread is reading).
    let _ = engine.remove_leftovers(&project).await;
    // Wait for a stop the main thread has in flight: starting a container that is still
    // being stopped would be a no-op, and it would then stay stopped.
    let _op = op.lock().await;
    let list: Vec<Held> = lock(&stopped).drain(..).rev().collect();
    for failure in restart(&engine, list).await {
        tracing::error!("{failure}");
    }
    signalled.restarted.set();
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
