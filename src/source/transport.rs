//! Where a store's commands run: inside a running container (`docker exec`), in a one-off container with a service's image and volumes, or as a process on this host; one way to produce a stream and one way to feed one over each.

use std::io::Write;

use anyhow::{Result, anyhow};

use super::docker::{ContainerInfo, Engine};
use super::kind::{FeedError, Source};
use super::stream::byte_sink;
use crate::parts::CommandReader;
use crate::process::{ExitError, FedChild};

/// A command as run (no shell): its arguments, and variables for its environment alone
/// (a password: never among its arguments, where `ps` and the engine's inspect show it).
#[derive(Clone)]
pub struct Cmd {
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
}

impl Cmd {
    pub fn new(argv: Vec<String>) -> Cmd {
        Cmd {
            argv,
            env: Vec::new(),
        }
    }

    pub fn with_env(mut self, env: impl IntoIterator<Item = (String, String)>) -> Cmd {
        self.env.extend(env);
        self
    }

    /// The command line, as messages and origins show it (no environment).
    pub fn line(&self) -> String {
        self.argv.join(" ")
    }

    /// The command line for a plan a person reads: shell-quoted where needed.
    pub fn shown(&self) -> String {
        self.argv
            .iter()
            .map(|a| shell_quote(a))
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn env_strings(&self) -> Vec<String> {
        self.env.iter().map(|(k, v)| format!("{k}={v}")).collect()
    }

    fn host_command(&self) -> Result<std::process::Command> {
        let (program, args) = self
            .argv
            .split_first()
            .ok_or_else(|| anyhow!("an empty command"))?;
        let mut c = crate::process::command(program);
        c.args(args);
        c.envs(self.env.iter().map(|(k, v)| (k, v)));
        Ok(c)
    }
}

/// Only the names of the environment: its values may be passwords.
impl std::fmt::Debug for Cmd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.env.iter().map(|(k, _)| k.as_str()).collect();
        f.debug_struct("Cmd")
            .field("argv", &self.argv)
            .field("env", &names)
            .finish()
    }
}

/// Where a command runs.
#[derive(Clone)]
pub enum Transport {
    /// Inside this running container (`docker exec`).
    Exec {
        engine: Engine,
        container: Box<ContainerInfo>,
    },
    /// In a one-off container from this container's image, with its volumes (`docker compose
    /// run`): for a server that is stopped, or a command that must be killable (removing the
    /// one-off ends it; the engine has no call that kills an exec'd process).
    OneOff {
        engine: Engine,
        container: Box<ContainerInfo>,
    },
    /// A process on this host (host mode).
    Host,
}

impl Transport {
    /// How a part's origin names `cmd` run here, in the manifest.
    pub fn origin(&self, cmd: &Cmd) -> String {
        match self {
            Transport::Exec { container, .. } | Transport::OneOff { container, .. } => {
                format!("docker:{} {}", container.name, cmd.line())
            }
            Transport::Host => format!("command:{}", cmd.line()),
        }
    }

    /// The container a command runs in (or copies), if any.
    pub fn container(&self) -> Option<&ContainerInfo> {
        match self {
            Transport::Exec { container, .. } | Transport::OneOff { container, .. } => {
                Some(container)
            }
            Transport::Host => None,
        }
    }

    /// `cmd`'s stdout as a part's stream. A non-zero exit fails the stream's last read, so
    /// a failed producer can never look like a complete stream.
    pub fn produce(&self, cmd: Cmd) -> Result<Source> {
        Ok(match self.clone() {
            Transport::Exec { engine, container } => Source::task(move |tx| async move {
                engine
                    .exec_to_stream(&container, cmd.argv.clone(), cmd.env_strings(), tx)
                    .await
                    .map(|_| ())
            }),
            Transport::OneOff { engine, container } => Source::task(move |tx| async move {
                engine
                    .run_oneoff(
                        &container,
                        cmd.argv.clone(),
                        cmd.env_strings(),
                        Some(tx),
                        None,
                    )
                    .await
                    .map(|_| ())
            }),
            // In rbk's process group: host mode's pause ends rbk's children itself on a signal.
            Transport::Host => {
                Source::Reader(Box::new(CommandReader::start(cmd.host_command()?, None)?))
            }
        })
    }

    /// Runs `cmd` to its end with an empty stdin. A non-zero exit is an [`ExitError`].
    pub fn run(&self, rt: &tokio::runtime::Handle, cmd: Cmd) -> Result<()> {
        let env = cmd.env_strings();
        match self {
            Transport::Exec { engine, container } => rt
                .block_on(engine.exec_from_stream(container, cmd.argv, env, None))
                .map(|_| ()),
            Transport::OneOff { engine, container } => rt
                .block_on(engine.run_oneoff(container, cmd.argv, env, None, None))
                .map(|_| ()),
            Transport::Host => FedChild::start(cmd.host_command()?, &cmd.shown())?.wait(),
        }
    }

    /// Runs `cmd` with what `write` writes as its stdin. The command's own failure (an
    /// [`ExitError`], with its stderr) wins over the broken pipe it causes on this side; a
    /// failure to read the part wins over the rest (and ends a host process at once: one
    /// that saw a clean end of input might take a truncated stream as whole).
    pub fn feed(
        &self,
        rt: &tokio::runtime::Handle,
        cmd: Cmd,
        write: impl FnOnce(&mut dyn Write) -> Result<(), FeedError>,
    ) -> Result<()> {
        let (engine, container, oneoff) = match self {
            Transport::Exec { engine, container } => (engine, container, false),
            Transport::OneOff { engine, container } => (engine, container, true),
            Transport::Host => {
                let mut child = FedChild::start(cmd.host_command()?, &cmd.shown())?;
                let fed = match child.stdin() {
                    Some(stdin) => write(stdin),
                    None => Err(FeedError::other(anyhow!("no stdin pipe"))),
                };
                return match fed {
                    Err(e) if !e.consumer_gone => {
                        child.kill();
                        Err(e.error)
                    }
                    fed => {
                        let waited = child.wait();
                        waited?;
                        fed.map_err(|e| e.error)
                    }
                };
            }
        };
        let (mut sink, rx) = byte_sink();
        let task = {
            let (engine, c, env) = (engine.clone(), container.clone(), cmd.env_strings());
            let argv = cmd.argv.clone();
            rt.spawn(async move {
                if oneoff {
                    engine.run_oneoff(&c, argv, env, None, Some(rx)).await
                } else {
                    engine.exec_from_stream(&c, argv, env, Some(rx)).await
                }
            })
        };
        let fed = write(&mut sink).and_then(|()| sink.close().map_err(FeedError::from_io));
        let consumed = rt
            .block_on(task)
            .map_err(|e| anyhow!("the task feeding `{}` failed: {e}", cmd.line()))?;
        match (fed, consumed) {
            (Err(e), _) if !e.consumer_gone => Err(e.error),
            (_, Err(e)) => Err(e),
            (Err(e), Ok(_)) => Err(e.error),
            (Ok(()), Ok(_)) => Ok(()),
        }
    }
}

/// The [`ExitError`] of a failed command, worded by the caller; any other error as it is.
pub fn reword_exit(
    e: anyhow::Error,
    word: impl FnOnce(&ExitError) -> anyhow::Error,
) -> anyhow::Error {
    match ExitError::find(&e) {
        Some(failed) => word(failed),
        None => e,
    }
}

/// `s` as a shell would need it written to read it back as one word.
pub fn shell_quote(s: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_./:=@,%+*".contains(c);
    if !s.is_empty() && s.chars().all(plain) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime")
    }

    fn sh(script: &str) -> Cmd {
        Cmd::new(vec!["sh".into(), "-c".into(), script.into()])
    }

    /// A command that dies while rbk writes: its own exit and stderr are the error, not the
    /// broken pipe rbk saw.
    #[test]
    fn a_failed_consumer_is_reported_over_the_broken_pipe_it_caused() {
        let rt = rt();
        let e = Transport::Host
            .feed(rt.handle(), sh("echo refused >&2; exit 3"), |out| {
                for _ in 0..1024 {
                    out.write_all(&[0u8; 64 * 1024])
                        .map_err(FeedError::from_io)?;
                }
                Ok(())
            })
            .expect_err("the command failed");
        let failed = ExitError::find(&e).expect("an exit error");
        assert_eq!(failed.tail, "refused");
        assert!(e.to_string().contains("exited with status 3"), "{e:#}");
    }

    /// A part that cannot be read: that is the error, and the command is ended rather than
    /// left to take a truncated input as whole.
    #[test]
    fn a_failed_feed_wins_and_ends_the_command() {
        let rt = rt();
        let started = std::time::Instant::now();
        let e = Transport::Host
            .feed(rt.handle(), sh("cat >/dev/null; sleep 30"), |out| {
                out.write_all(b"partial").map_err(FeedError::from_io)?;
                Err(FeedError::other(anyhow!("chunk 7 is damaged")))
            })
            .expect_err("the feed failed");
        assert_eq!(e.to_string(), "chunk 7 is damaged");
        assert!(started.elapsed() < std::time::Duration::from_secs(20));
    }

    #[test]
    fn commands_run_to_their_end_with_their_environment() {
        let rt = rt();
        let ok = sh("test \"$RBK_T\" = v").with_env([("RBK_T".to_string(), "v".to_string())]);
        Transport::Host.run(rt.handle(), ok).expect("ran");
        let e = Transport::Host
            .run(rt.handle(), sh("exit 4"))
            .expect_err("failed");
        assert!(ExitError::find(&e).is_some(), "{e:#}");
        let shown = format!(
            "{:?}",
            Cmd::new(vec!["psql".into()])
                .with_env([("PGPASSWORD".to_string(), "secret".to_string())])
        );
        assert!(
            shown.contains("PGPASSWORD") && !shown.contains("secret"),
            "{shown}"
        );
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
    }
}
