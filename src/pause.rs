//! The write pause: containers rbk stopped are started again whatever happens (error, panic, Ctrl-C, SIGTERM).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Result;
use tokio::runtime::Handle;

use crate::source::docker::{ContainerInfo, Engine};

type Stopped = Arc<Mutex<Vec<ContainerInfo>>>;
/// Held while the main thread stops or starts a container, so the signal task never
/// restarts the stack (and exits) while a stop is still in flight.
type Op = Arc<tokio::sync::Mutex<()>>;

/// Set by the signal task; from then on it owns the restart and the exit status.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

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

/// Owns the restart of every container it stopped. Dropping it (an error
/// unwinding, a panic) starts them again, most recently stopped first, so
/// Neo4j is up before RushDB reconnects. A signal task does the same on
/// Ctrl-C or SIGTERM and then ends the process.
pub struct Pause {
    rt: Handle,
    engine: Engine,
    stopped: Stopped,
    op: Op,
    began: Option<Instant>,
    signals: tokio::task::JoinHandle<()>,
}

impl Pause {
    /// Must be called from outside the runtime (it blocks on it).
    pub fn new(rt: Handle, engine: Engine) -> Pause {
        let stopped: Stopped = Arc::default();
        let op: Op = Arc::default();
        let signals = rt.spawn(restart_on_signal(
            engine.clone(),
            stopped.clone(),
            op.clone(),
        ));
        Pause {
            rt,
            engine,
            stopped,
            op,
            began: None,
            signals,
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
        lock(&self.stopped).push(c.clone());
        self.began.get_or_insert_with(Instant::now);
        self.rt.block_on(self.engine.stop(c, timeout_secs))
    }

    /// Starts a container again and forgets it.
    pub fn start(&mut self, c: &ContainerInfo) -> Result<()> {
        let _op = self.op_guard();
        let result = self.rt.block_on(self.engine.start(c));
        if result.is_ok() {
            lock(&self.stopped).retain(|s| s.id != c.id);
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
        let list: Vec<ContainerInfo> = lock(&self.stopped).drain(..).rev().collect();
        let engine = self.engine.clone();
        self.rt.block_on(restart(&engine, list))
    }
}

impl Drop for Pause {
    fn drop(&mut self) {
        for failure in self.restart_all() {
            tracing::error!("{failure}");
        }
        self.signals.abort();
    }
}

async fn restart(engine: &Engine, list: Vec<ContainerInfo>) -> Vec<String> {
    let mut failures = Vec::new();
    for c in list {
        if let Err(e) = engine.start(&c).await {
            failures.push(format!(
                "could not start {} again: {e:#}; start it by hand (docker start {})",
                c.name, c.name
            ));
        }
    }
    failures
}

async fn restart_on_signal(engine: Engine, stopped: Stopped, op: Op) {
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
    INTERRUPTED.store(true, Ordering::SeqCst);
    tracing::warn!("interrupted: starting the stack again before exiting; no snapshot is saved");
    // A dump container still holding Neo4j's volume must go first (this also ends a dump
    // the main thread is reading, which then yields to this task).
    let _ = engine.remove_leftovers().await;
    // Wait for a stop the main thread has in flight: starting a container that is still
    // being stopped would be a no-op, and it would then stay stopped.
    let _op = op.lock().await;
    let list: Vec<ContainerInfo> = lock(&stopped).drain(..).rev().collect();
    for failure in restart(&engine, list).await {
        tracing::error!("{failure}");
    }
    std::process::exit(130);
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
