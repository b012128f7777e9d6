//! Commands run inside a running container (`docker exec`), their stdout streamed out or their stdin streamed in.

use anyhow::{Context, Result, bail};
use bollard::exec::{CreateExecOptions, StartExecResults};
use bytes::Bytes;
use tokio::sync::mpsc;

use super::streams::{InputStream, OutputStream, feed, finish_stream, pump_output};
use super::{ContainerInfo, Engine, Finished};
use crate::process::{ExitError, ExitStatusKind, StderrTail};
use crate::source::stream::ByteSender;

impl Engine {
    /// Creates and starts an exec with stdout and stderr (and, if asked,
    /// stdin) attached: its id, its output, and its stdin.
    async fn start_exec(
        &self,
        c: &ContainerInfo,
        cmd: &[String],
        env: Vec<String>,
        stdin: bool,
    ) -> Result<(String, OutputStream, InputStream)> {
        let exec = self
            .docker
            .create_exec(
                &c.id,
                CreateExecOptions::<String> {
                    attach_stdin: Some(stdin),
                    attach_stdout: Some(true),
                    attach_stderr: Some(true),
                    cmd: Some(cmd.to_vec()),
                    env: Some(env),
                    ..Default::default()
                },
            )
            .await
            .with_context(|| format!("running {:?} in {}", cmd.first(), c.name))?;
        match self.docker.start_exec(&exec.id, None).await? {
            StartExecResults::Attached { output, input } => Ok((exec.id, output, input)),
            StartExecResults::Detached => bail!("the engine did not attach to the exec"),
        }
    }

    /// Runs `cmd` inside a running container; stdout goes to `out` as it
    /// comes, stderr is kept for messages. A non-zero exit is sent down
    /// `out` as an error, so the consumer cannot mistake it for the end.
    pub async fn exec_to_stream(
        &self,
        c: &ContainerInfo,
        cmd: Vec<String>,
        env: Vec<String>,
        out: ByteSender,
    ) -> Result<Finished> {
        let (exec_id, output, _) = self.start_exec(c, &cmd, env, false).await?;
        let tail = StderrTail::default();
        let consumer_gone = pump_output(output, Some(&out), &tail).await?;
        let code = self
            .docker
            .inspect_exec(&exec_id)
            .await?
            .exit_code
            .unwrap_or(-1);
        finish_stream(&cmd, code, &tail, &out, consumer_gone).await
    }

    /// Runs `cmd` inside a running container with `input` as its stdin
    /// (`None`: no stdin), keeping only its stderr. A non-zero exit is an [`ExitError`]
    /// (after a failure to feed its stdin, which is reported first), so no caller can take a
    /// failed command for a done one.
    pub async fn exec_from_stream(
        &self,
        c: &ContainerInfo,
        cmd: Vec<String>,
        env: Vec<String>,
        input: Option<mpsc::Receiver<Bytes>>,
    ) -> Result<Finished> {
        let (exec_id, output, stdin) = self.start_exec(c, &cmd, env, input.is_some()).await?;
        let tail = StderrTail::default();
        let pump = {
            let tail = tail.clone();
            tokio::spawn(async move { pump_output(output, None, &tail).await })
        };
        let fed = match input {
            Some(rx) => feed(stdin, rx).await,
            None => Ok(()),
        };
        // The engine does not always end an exec's attached stream when the
        // process exits with stdin attached, so watch the process instead. Right after the
        // start the engine may still report it not running and with no exit code (it has not
        // begun yet): only an exit code means it ended; a bounded wait covers an engine that
        // never reports one.
        let mut no_code_since = None;
        let code = loop {
            let state = self.docker.inspect_exec(&exec_id).await?;
            if state.running == Some(true) {
                no_code_since = None;
            } else if let Some(code) = state.exit_code {
                break code;
            } else if no_code_since
                .get_or_insert_with(std::time::Instant::now)
                .elapsed()
                > std::time::Duration::from_secs(30)
            {
                break -1;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        };
        // Let the last stderr arrive, but do not wait on a stream that may never end.
        if tokio::time::timeout(std::time::Duration::from_secs(2), pump)
            .await
            .is_err()
        {
            tracing::debug!("the exec's output stream did not end; abandoned");
        }
        let stderr = tail.text();
        if let Err(e) = fed {
            bail!(
                "feeding {:?}: {e}; its stderr ended with:\n{stderr}",
                cmd.first()
            );
        }
        if code != 0 {
            return Err(
                ExitError::command(&cmd.join(" "), ExitStatusKind::Code(code), stderr).into(),
            );
        }
        Ok(Finished {
            exit_code: code,
            stderr,
        })
    }
}
