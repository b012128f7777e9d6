//! Commands run inside a running container (`docker exec`), their stdout streamed out or their stdin streamed in.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use bollard::exec::{CreateExecOptions, StartExecResults};
use bytes::Bytes;
use tokio::io::AsyncWriteExt;
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
        let code = self.exit_code_of(&exec_id).await?;
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

    /// Runs a short query in a running container: `input` (if any) as its stdin, and its
    /// stdout back as text, at most [`QUERY_OUTPUT_MAX`] bytes (a count, a list of tables).
    /// A non-zero exit is an [`ExitError`]; a query still running after `timeout` is an
    /// error too (the process is left to end on its own: the engine cannot kill an exec).
    pub async fn exec_output(
        &self,
        c: &ContainerInfo,
        cmd: Vec<String>,
        env: Vec<String>,
        input: Option<Bytes>,
        timeout: Duration,
    ) -> Result<String> {
        let run = async {
            let (exec_id, output, mut stdin) =
                self.start_exec(c, &cmd, env, input.is_some()).await?;
            let (tx, mut rx) = mpsc::channel(16);
            let tail = StderrTail::default();
            let pump = {
                let tail = tail.clone();
                tokio::spawn(async move { pump_output(output, Some(&tx), &tail).await })
            };
            if let Some(input) = input {
                stdin.write_all(&input).await?;
                stdin.shutdown().await?;
            }
            // Drained as it comes, so a full channel never blocks the process's stdout.
            let shown = cmd.join(" ");
            let collector = tokio::spawn(async move {
                let mut out = Vec::new();
                while let Some(chunk) = rx.recv().await {
                    let chunk: Bytes = chunk?;
                    if out.len() + chunk.len() > QUERY_OUTPUT_MAX {
                        bail!("`{shown}` printed more than {QUERY_OUTPUT_MAX} bytes");
                    }
                    out.extend_from_slice(&chunk);
                }
                Ok(out)
            });
            let code = self.exit_code_of(&exec_id).await?;
            // As in exec_from_stream: the output may not end by itself once stdin was attached.
            let out = match tokio::time::timeout(Duration::from_secs(2), collector).await {
                Ok(Ok(out)) => out?,
                Ok(Err(e)) => bail!("collecting the output of `{}`: {e}", cmd.join(" ")),
                Err(_) => bail!("the output of `{}` did not end", cmd.join(" ")),
            };
            pump.abort();
            if code != 0 {
                return Err(ExitError::command(
                    &cmd.join(" "),
                    ExitStatusKind::Code(code),
                    tail.text(),
                )
                .into());
            }
            String::from_utf8(out).with_context(|| format!("`{}` printed non-UTF-8", cmd.join(" ")))
        };
        match tokio::time::timeout(timeout, run).await {
            Ok(result) => result,
            Err(_) => bail!(
                "`{}` in {} did not finish within {} s",
                cmd.join(" "),
                c.name,
                timeout.as_secs()
            ),
        }
    }

    /// Waits for an exec to end and returns its exit code. The engine does not always end an
    /// exec's attached stream when the process exits with stdin attached, so this watches the
    /// process instead. Right after the start the engine may still report it not running and
    /// with no exit code (it has not begun yet): only an exit code means it ended; a bounded
    /// wait covers an engine that never reports one.
    async fn exit_code_of(&self, exec_id: &str) -> Result<i64> {
        let mut no_code_since = None;
        loop {
            let state = self.docker.inspect_exec(exec_id).await?;
            if state.running == Some(true) {
                no_code_since = None;
            } else if let Some(code) = state.exit_code {
                return Ok(code);
            } else if no_code_since
                .get_or_insert_with(std::time::Instant::now)
                .elapsed()
                > Duration::from_secs(30)
            {
                return Ok(-1);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// The most a query's output may be: counts and table lists are a few KiB.
pub const QUERY_OUTPUT_MAX: usize = 4 << 20;
