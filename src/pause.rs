//! The write pause: containers rbk stopped are started again whatever happens (error, panic, Ctrl-C, SIGTERM).

use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::Result;
use tokio::runtime::Handle;

use crate::source::docker::{ContainerInfo, Engine};

type Stopped = Arc<Mutex<Vec<ContainerInfo>>>;

/// Owns the restart of every container it stopped. Dropping it (an error
/// unwinding, a panic) starts them again, most recently stopped first, so
/// Neo4j is up before RushDB reconnects. A signal task does the same on
/// Ctrl-C or SIGTERM and then ends the process.
pub struct Pause {
    rt: Handle,
    engine: Engine,
    stopped: Stopped,
    began: Option<Instant>,
    signals: tokio::task::JoinHandle<()>,
}

impl Pause {
    /// Must be called from outside the runtime (it blocks on it).
    pub fn new(rt: Handle, engine: Engine) -> Pause {
        let stopped: Stopped = Arc::default();
        let signals = rt.spawn(restart_on_signal(engine.clone(), stopped.clone()));
        Pause {
            rt,
            engine,
            stopped,
            began: None,
            signals,
        }
    }

    /// Stops a container; it is registered for restart before the stop is
    /// attempted, so a stop that fails halfway is still undone.
    pub fn stop(&mut self, c: &ContainerInfo, timeout_secs: i32) -> Result<()> {
        lock(&self.stopped).push(c.clone());
        self.began.get_or_insert_with(Instant::now);
        self.rt.block_on(self.engine.stop(c, timeout_secs))
    }

    /// Starts a container again and forgets it.
    pub fn start(&mut self, c: &ContainerInfo) -> Result<()> {
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

    /// Starts everything still stopped; returns what could not be started.
    pub fn restart_all(&mut self) -> Vec<String> {
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

async fn restart_on_signal(engine: Engine, stopped: Stopped) {
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
    tracing::warn!("interrupted: starting the stack again before exiting; no snapshot is saved");
    // A dump container still holding Neo4j's volume must go first.
    let _ = engine.remove_leftovers().await;
    let list: Vec<ContainerInfo> = lock(&stopped).drain(..).rev().collect();
    for failure in restart(&engine, list).await {
        tracing::error!("{failure}");
    }
    std::process::exit(130);
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
