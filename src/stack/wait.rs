//! Waiting for a container to be ready (a drill's services, Neo4j after a snapshot's dump): its healthcheck when it has one, else a probe of the caller's; a container that exits, a signal, or the time limit end the wait.

use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use tokio::runtime::Runtime;

use crate::cancel::Cancel;
use crate::source::docker::{ContainerInfo, Engine};

/// How often a wait looks again.
const POLL: Duration = Duration::from_millis(250);

/// What one look found.
pub enum Probe {
    Ready,
    /// Not yet, and why (shown if time runs out).
    NotYet(String),
}

/// A probe that answers `Ok(true)` when ready; its errors only mean "not yet".
pub fn probe(answer: Result<bool>) -> Probe {
    match answer {
        Ok(true) => Probe::Ready,
        Ok(false) => Probe::NotYet("no answer yet".into()),
        Err(e) => Probe::NotYet(format!("{e:#}")),
    }
}

/// Waits until `c` is ready: healthy by its own healthcheck or, without one, when `ready`
/// says so. Fails, with the container's last log lines, when it exits or the limit passes,
/// and with `Cancelled` on a signal.
pub fn until_ready(
    rt: &Runtime,
    engine: &Engine,
    c: &ContainerInfo,
    cancel: &Cancel,
    limit: Duration,
    mut ready: impl FnMut() -> Probe,
) -> Result<()> {
    let waited = until(cancel, limit, &format!("{} was not ready", c.name), || {
        let health = rt.block_on(engine.health(c))?;
        if let (false, Some(code)) = (health.running, health.exit_code) {
            bail!("{} exited with status {code} before it was ready", c.name);
        }
        Ok(match health.status.as_deref() {
            Some("healthy") => Probe::Ready,
            Some(other) => Probe::NotYet(format!("its healthcheck says {other}")),
            None if health.running => ready(),
            None => Probe::NotYet("not running yet".into()),
        })
    });
    waited.map_err(|e| {
        let logs = rt.block_on(engine.log_tail(c, 20));
        e.context(format!("the last lines of {}:\n{logs}", c.name))
    })
}

/// Looks until `look` finds it ready; an error from `look` ends the wait, as do a signal and
/// the limit (`what` says what did not happen in time).
pub fn until(
    cancel: &Cancel,
    limit: Duration,
    what: &str,
    mut look: impl FnMut() -> Result<Probe>,
) -> Result<()> {
    let began = Instant::now();
    loop {
        cancel.check()?;
        let why = match look()? {
            Probe::Ready => return Ok(()),
            Probe::NotYet(why) => why,
        };
        if began.elapsed() > limit {
            bail!("{what} within {} s: {why}", limit.as_secs());
        }
        std::thread::sleep(POLL);
    }
}
