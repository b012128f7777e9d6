//! Waiting for a drill container to be ready: its healthcheck when it has one, else a probe of the caller's; a container that exits, a signal, or the time limit end the wait.

use std::time::{Duration, Instant};

use anyhow::{Result, anyhow, bail};
use tokio::runtime::Runtime;

use crate::cancel::Cancel;
use crate::source::docker::{ContainerInfo, Engine};

/// How often a wait looks again.
const POLL: Duration = Duration::from_millis(250);

/// Waits until `c` is ready: healthy by its own healthcheck or, without one, when `probe`
/// answers `Ok(true)` (a probe's error only means "not yet"; the last one is in the
/// message if time runs out). Fails, with the container's last log lines, when it exits
/// or the limit passes, and with `Cancelled` on a signal.
pub(super) fn until_ready(
    rt: &Runtime,
    engine: &Engine,
    c: &ContainerInfo,
    cancel: &Cancel,
    limit: Duration,
    mut probe: impl FnMut() -> Result<bool>,
) -> Result<()> {
    let began = Instant::now();
    let mut last = String::from("no answer yet");
    loop {
        cancel.check()?;
        let health = rt.block_on(engine.health(c))?;
        if !health.running && health.exit_code.is_some() {
            let logs = rt.block_on(engine.log_tail(c, 20));
            bail!(
                "{} exited with status {} before it was ready; its last lines:\n{logs}",
                c.name,
                health.exit_code.unwrap_or(-1)
            );
        }
        match health.status.as_deref() {
            Some("healthy") => return Ok(()),
            Some(other) => last = format!("its healthcheck says {other}"),
            None if health.running => match probe() {
                Ok(true) => return Ok(()),
                Ok(false) => {}
                Err(e) => last = format!("{e:#}"),
            },
            None => {}
        }
        if began.elapsed() > limit {
            let logs = rt.block_on(engine.log_tail(c, 20));
            return Err(anyhow!(
                "{} was not ready within {} s ({last}); its last lines:\n{logs}",
                c.name,
                limit.as_secs()
            ));
        }
        std::thread::sleep(POLL);
    }
}

/// Polls `probe` until it answers `Ok(true)`, like [`until_ready`] without a container.
pub(super) fn until(
    cancel: &Cancel,
    limit: Duration,
    what: &str,
    mut probe: impl FnMut() -> Result<bool>,
) -> Result<()> {
    let began = Instant::now();
    let mut last = String::from("no answer yet");
    loop {
        cancel.check()?;
        match probe() {
            Ok(true) => return Ok(()),
            Ok(false) => {}
            Err(e) => last = format!("{e:#}"),
        }
        if began.elapsed() > limit {
            bail!("{what} within {} s: {last}", limit.as_secs());
        }
        std::thread::sleep(POLL);
    }
}
