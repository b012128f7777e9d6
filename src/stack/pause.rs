//! The write pause: containers and Neo4j databases rbk stopped are started again whatever happens (error, panic, Ctrl-C, SIGTERM).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Result;
use tokio::runtime::Handle;

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
/// Held while the main thread stops or starts a container or database, so the signal task never
/// restarts the stack (and exits) while a stop is still in flight.
type Op = Arc<tokio::sync::Mutex<()>>;

/// Set by the signal task; from then on it owns the restart and the exit status.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Set once the pause is over (everything started again): a signal from then on has nothing
/// to undo and ends the process at once. What may still run (a snapshot's commit) is safe to
/// cut short: the store writes packs, then the index, then the snapshot, each renamed into
/// place only when durable, so an exit at any point leaves no half snapshot.
static ENDED: AtomicBool = AtomicBool::new(false);

fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// The main thread, holding no `Op` guard, after SIGINT/SIGTERM: it must neither stop
/// anything more nor report the dump the signal task killed as an error of its own and exit
/// first (with status 1 instead of 130). It waits for the signal task to end the process.
fn wait_for_signal_task() -> ! {
    std::thread::sleep(Duration::from_secs(600));
    // The signal task hung on the engine; give up with the status it would have used.
    std::process::exit(130);
}

/// Owns the restart of every container and database it stopped. Dropping it (an error
/// unwinding, a panic) starts them again, most recently stopped first, so
/// Neo4j (the container, or on Enterprise its database) is up before RushDB
/// reconnects. A signal task does the same on Ctrl-C or SIGTERM and then ends the process.
///
/// The signal task outlives the `Pause` (it lives as long as the runtime): tokio keeps its
/// SIGINT/SIGTERM handlers installed once they exist, so without a listener a Ctrl-C during
/// the commit that follows the restart would be swallowed. After the drop it exits 130 at once.
pub struct Pause {
    rt: Handle,
    engine: Engine,
    stopped: Stopped,
    op: Op,
    began: Option<Instant>,
}

impl Pause {
    /// Must be called from outside the runtime (it blocks on it). `project` scopes the
    /// one-off containers the signal task removes to this stack's.
    pub fn new(rt: Handle, engine: Engine, project: String) -> Pause {
        let stopped: Stopped = Arc::default();
        let op: Op = Arc::default();
        ENDED.store(false, Ordering::SeqCst);
        rt.spawn(restart_on_signal(
            engine.clone(),
            project,
            stopped.clone(),
            op.clone(),
        ));
        Pause {
            rt,
            engine,
            stopped,
            op,
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
        let _op = self.op_guard();
        lock(&self.stopped).push(Held::Container(c.clone()));
        self.began.get_or_insert_with(Instant::now);
        self.rt.block_on(self.engine.stop(c, timeout_secs))
    }

    /// Starts a container again and forgets it.
    pub fn start(&mut self, c: &ContainerInfo) -> Result<()> {
        let _op = self.op_guard();
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
        let _op = self.op_guard();
        lock(&self.stopped).push(Held::Database(db.clone()));
        self.began.get_or_insert_with(Instant::now);
        self.rt.block_on(db.set_online(&self.engine, false))
    }

    /// `START DATABASE` again, and forgets it.
    pub fn start_database(&mut self, db: &Database) -> Result<()> {
        let _op = self.op_guard();
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

    /// The right to touch containers, unless a signal came: then this never returns.
    fn op_guard(&self) -> tokio::sync::OwnedMutexGuard<()> {
        if interrupted() {
            wait_for_signal_task();
        }
        let guard = self.op.clone().blocking_lock_owned();
        // The signal may have come while the guard was awaited.
        if interrupted() {
            drop(guard);
            wait_for_signal_task();
        }
        guard
    }

    /// Starts everything still stopped; returns what could not be started.
    pub fn restart_all(&mut self) -> Vec<String> {
        let _op = self.op_guard();
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
        ENDED.store(true, Ordering::SeqCst);
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

async fn restart_on_signal(engine: Engine, project: String, stopped: Stopped, op: Op) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        return;
    };
    tokio::select! {
        _ = int.recv() => {}
        _ = term.recv() => {}
    }
    if ENDED.load(Ordering::SeqCst) {
        tracing::warn!(
            "interrupted after the stack was started again: exiting; a snapshot is saved only if its commit had finished"
        );
        std::process::exit(130);
    }
    INTERRUPTED.store(true, Ordering::SeqCst);
    tracing::warn!("interrupted: starting the stack again before exiting; no snapshot is saved");
    // A dump container still holding Neo4j's volume (or, on Enterprise, the stopped database,
    // which `START DATABASE` could not take back from it) must go first (this also ends a
    // dump the main thread is reading, which then yields to this task).
    let _ = engine.remove_leftovers(&project).await;
    // Wait for a stop the main thread has in flight: starting a container that is still
    // being stopped would be a no-op, and it would then stay stopped.
    let _op = op.lock().await;
    let list: Vec<Held> = lock(&stopped).drain(..).rev().collect();
    for failure in restart(&engine, list).await {
        tracing::error!("{failure}");
    }
    std::process::exit(130);
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
