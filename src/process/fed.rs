//! `FedChild`: a program on this host whose stdin rbk writes (a load, a restore), its stderr's tail kept, its exit an `ExitError`.

use std::process::{Child, ChildStdin, Command, Stdio};
use std::thread::JoinHandle;

use anyhow::{Context, Result};

use super::{ExitError, StderrTail};

/// A started child with its stdin piped to rbk and its stdout discarded (psql prints the
/// result of every SELECT in a dump; nobody reads it).
pub struct FedChild {
    child: Child,
    stdin: Option<ChildStdin>,
    stderr: Option<JoinHandle<()>>,
    tail: StderrTail,
    /// How errors name the command (passwords already hidden by the caller).
    shown: String,
}

impl FedChild {
    /// Starts `command` (built by [`super::command`]), shown in errors as `shown`.
    pub fn start(mut command: Command, shown: &str) -> Result<FedChild> {
        let program = command.get_program().to_string_lossy().into_owned();
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot start `{program}`"))?;
        let stdin = child.stdin.take();
        // Drained on its own thread: a command that fills the stderr pipe while nobody
        // reads it would stop reading its stdin, and both sides would wait forever.
        let tail = StderrTail::default();
        let stderr = child.stderr.take().map(|e| tail.drain_on_thread(e));
        Ok(FedChild {
            child,
            stdin,
            stderr,
            tail,
            shown: shown.to_string(),
        })
    }

    /// The child's stdin, until [`wait`](Self::wait) closes it.
    pub fn stdin(&mut self) -> Option<&mut ChildStdin> {
        self.stdin.as_mut()
    }

    /// Kills the child: its input was cut short by rbk's side, and a consumer that saw a
    /// clean end of input might take a truncated stream as whole.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.wait_status();
    }

    /// Closes stdin (the end of input), waits, and turns a failure into an [`ExitError`]
    /// that names the command and ends with its stderr.
    pub fn wait(mut self) -> Result<()> {
        let status = self.wait_status()?;
        if status.success() {
            return Ok(());
        }
        Err(ExitError::command(&self.shown, status, self.tail.text()).into())
    }

    fn wait_status(&mut self) -> Result<std::process::ExitStatus> {
        drop(self.stdin.take());
        let status = self
            .child
            .wait()
            .with_context(|| format!("waiting for `{}`", self.shown))?;
        if let Some(t) = self.stderr.take() {
            let _ = t.join();
        }
        Ok(status)
    }
}
