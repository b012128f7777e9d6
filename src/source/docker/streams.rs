//! The plumbing a command in a container shares with rbk: stdout into a byte channel, stderr into a tail, stdin fed from a channel, and the exit status turned into the end of the stream.

use std::io;

use anyhow::{Context, Result, bail};
use bollard::container::LogOutput;
use bytes::Bytes;
use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

use super::Finished;
use crate::process::{ExitError, ExitStatusKind, StderrTail};
use crate::source::stream::ByteSender;

pub(super) type OutputStream = std::pin::Pin<
    Box<dyn futures_util::Stream<Item = Result<LogOutput, bollard::errors::Error>> + Send>,
>;
pub(super) type InputStream = std::pin::Pin<Box<dyn tokio::io::AsyncWrite + Send>>;

/// Copies a container's output: stdout to `out` (when given), stderr into
/// `tail`. Returns true when the consumer hung up early.
pub(super) async fn pump_output(
    mut output: OutputStream,
    out: Option<&ByteSender>,
    tail: &StderrTail,
) -> Result<bool> {
    let mut consumer_gone = false;
    while let Some(item) = output.next().await {
        match item.context("reading the container's output")? {
            LogOutput::StdOut { message } | LogOutput::Console { message } => {
                if let Some(out) = out
                    && !consumer_gone
                    && out.send(Ok(message)).await.is_err()
                {
                    // Keep draining so the process is not blocked on a full pipe.
                    consumer_gone = true;
                }
            }
            LogOutput::StdErr { message } => tail.push_bytes(&message),
            LogOutput::StdIn { .. } => {}
        }
    }
    Ok(consumer_gone)
}

pub(super) async fn feed(mut stdin: InputStream, mut rx: mpsc::Receiver<Bytes>) -> io::Result<()> {
    while let Some(chunk) = rx.recv().await {
        stdin.write_all(&chunk).await?;
    }
    stdin.flush().await?;
    stdin.shutdown().await
}

/// Ends a produced stream: success closes it, failure sends the error down it.
pub(super) async fn finish_stream(
    cmd: &[String],
    code: i64,
    tail: &StderrTail,
    out: &ByteSender,
    consumer_gone: bool,
) -> Result<Finished> {
    let stderr = tail.text();
    if code != 0 {
        let failed = ExitError::command(&cmd.join(" "), ExitStatusKind::Code(code), stderr);
        let _ = out.send(Err(io::Error::other(failed.clone()))).await;
        return Err(failed.into());
    }
    if consumer_gone {
        bail!("the consumer of `{}` stopped reading", cmd.join(" "));
    }
    Ok(Finished {
        exit_code: code,
        stderr,
    })
}
