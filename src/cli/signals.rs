//! SIGINT and SIGTERM: the one place rbk installs handlers, which only set a `Cancel` flag; the commands report the interruption and exit 130.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::{Context, Result};

use crate::cancel::{Cancel, is_cancelled, signal_name};

/// Which signals end rbk at once, without waiting for the command to wind down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Second {
    /// A second one: a snapshot of parts cleans up after the first (its packs, its lock, its
    /// producer), and a second, should that cleanup hang, ends rbk.
    Exits,
    /// Any one until a write pause begins (nothing is stopped yet: a verification of every
    /// byte before a restore stops at once), none after it: a stack stopped for a pause must
    /// be started again, however impatient the user, and the pause's watcher is doing that.
    Waits,
}

/// Installs handlers for SIGINT and SIGTERM that store the signal's number in the returned
/// flag, and nothing else (signal-hook: atomic stores and, as `second` says, an exit).
pub fn cancel_on_signals(second: Second) -> Result<Cancel> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    use signal_hook::flag;
    let cancel = Cancel::default();
    let armed = Arc::new(AtomicBool::new(false));
    let exit_now = match second {
        Second::Exits => armed.clone(),
        Second::Waits => {
            let now = cancel.exit_at_once_slot();
            now.store(true, std::sync::atomic::Ordering::SeqCst);
            now
        }
    };
    for signal in [SIGINT, SIGTERM] {
        // Registered first, so that it sees the flags as the previous signal left them.
        flag::register_conditional_shutdown(
            signal,
            i32::from(super::exit::INTERRUPTED),
            exit_now.clone(),
        )
        .context("cannot watch for SIGINT/SIGTERM")?;
        flag::register_usize(signal, cancel.slot(), signal as usize)
            .context("cannot watch for SIGINT/SIGTERM")?;
        flag::register(signal, armed.clone()).context("cannot watch for SIGINT/SIGTERM")?;
    }
    Ok(cancel)
}

/// A stack or host command's error, once a signal came: whatever failed (a dump whose
/// container the pause removed, a load it ended) is the signal's doing, so rbk says it was
/// interrupted, what that cost (`outcome`), and exits 130. Any other error is returned.
pub fn interrupted(e: anyhow::Error, cancel: &Cancel, outcome: &str) -> Result<u8> {
    let Some(signal) = cancel.signal() else {
        return Err(e);
    };
    if is_cancelled(&e) {
        // Its own words: where the signal landed (during the pause, or after it).
        eprintln!("rbk: {e:#}");
    } else {
        tracing::debug!("after {}: {e:#}", signal_name(signal));
        eprintln!(
            "rbk: interrupted by {}: the stack was started again; {outcome}",
            signal_name(signal)
        );
    }
    Ok(super::exit::INTERRUPTED)
}
