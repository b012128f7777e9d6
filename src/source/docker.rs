//! The Docker engine through bollard: find containers, stop and start them, run commands and one-off containers.

use std::collections::HashMap;
use std::io;

use anyhow::{Context, Result, anyhow, bail};
use bollard::Docker;
use bollard::container::LogOutput;
use bollard::exec::{CreateExecOptions, StartExecResults};
use bollard::models::{ContainerCreateBody, HostConfig, Mount, MountType};
use bollard::query_parameters::{
    AttachContainerOptions, CreateContainerOptions, DownloadFromContainerOptions,
    InspectContainerOptions, ListContainersOptions, RemoveContainerOptions, StopContainerOptions,
    UploadToContainerOptions, WaitContainerOptions,
};
use bytes::Bytes;
use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

use super::stream::{ByteSender, StderrTail};

pub const LABEL_PROJECT: &str = "com.docker.compose.project";
pub const LABEL_SERVICE: &str = "com.docker.compose.service";
/// Every container rbk creates carries this label, so leftovers can be found.
pub const LABEL_RBK: &str = "io.rbk.oneoff";

type OutputStream = std::pin::Pin<
    Box<dyn futures_util::Stream<Item = Result<LogOutput, bollard::errors::Error>> + Send>,
>;
type InputStream = std::pin::Pin<Box<dyn tokio::io::AsyncWrite + Send>>;

/// What rbk needs to know of a container.
#[derive(Debug, Clone)]
pub struct ContainerInfo {
    pub id: String,
    pub name: String,
    pub project: Option<String>,
    pub service: Option<String>,
    /// The image as configured (`neo4j:2026.01.4`).
    pub image: String,
    /// The image id (`sha256:...`), for the one-off container.
    pub image_id: String,
    pub env: Vec<String>,
    pub mounts: Vec<VolumeMount>,
    pub running: bool,
}

#[derive(Debug, Clone)]
pub struct VolumeMount {
    /// `volume` or `bind`.
    pub kind: String,
    /// Volume name, or host path for a bind.
    pub source: String,
    pub target: String,
}

impl ContainerInfo {
    pub fn env_var(&self, name: &str) -> Option<String> {
        self.env.iter().find_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            (k == name).then(|| v.to_string())
        })
    }

    /// The mount that holds `path`, if any (the longest matching target).
    pub fn mount_for(&self, path: &str) -> Option<&VolumeMount> {
        self.mounts
            .iter()
            .filter(|m| {
                path == m.target
                    || path.starts_with(&format!("{}/", m.target.trim_end_matches('/')))
            })
            .max_by_key(|m| m.target.len())
    }
}

/// The outcome of a command or one-off container that produced a stream.
pub struct Finished {
    pub exit_code: i64,
    pub stderr: String,
}

#[derive(Clone)]
pub struct Engine {
    docker: Docker,
}

impl Engine {
    /// Connects through `DOCKER_HOST` or the default socket, and agrees on
    /// an API version the engine speaks (older engines refuse newer ones).
    pub async fn connect() -> Result<Engine> {
        let docker = Docker::connect_with_defaults()
            .context("cannot reach the Docker engine (DOCKER_HOST or /var/run/docker.sock)")?;
        let docker = docker
            .negotiate_version()
            .await
            .context("cannot reach the Docker engine (DOCKER_HOST or /var/run/docker.sock)")?;
        Ok(Engine { docker })
    }

    /// Containers carrying every given label (`key=value`), running or not.
    pub async fn containers_with_labels(&self, labels: &[String]) -> Result<Vec<ContainerInfo>> {
        let mut out = Vec::new();
        for id in self.ids_with_labels(labels).await? {
            out.push(self.inspect(&id).await?);
        }
        Ok(out)
    }

    /// Ids of the containers carrying every given label, running or not.
    async fn ids_with_labels(&self, labels: &[String]) -> Result<Vec<String>> {
        let mut filters = HashMap::new();
        filters.insert("label".to_string(), labels.to_vec());
        let list = self
            .docker
            .list_containers(Some(ListContainersOptions {
                all: true,
                filters: Some(filters),
                ..Default::default()
            }))
            .await
            .context("listing containers")?;
        Ok(list.into_iter().filter_map(|c| c.id).collect())
    }

    pub async fn inspect(&self, id: &str) -> Result<ContainerInfo> {
        let c = self
            .docker
            .inspect_container(id, None::<InspectContainerOptions>)
            .await
            .with_context(|| format!("inspecting container {id}"))?;
        let config = c.config.unwrap_or_default();
        let labels = config.labels.unwrap_or_default();
        let mounts = c
            .mounts
            .unwrap_or_default()
            .into_iter()
            .filter_map(|m| {
                let kind = match m.typ.as_deref() {
                    Some("volume") => "volume",
                    Some("bind") => "bind",
                    _ => return None,
                };
                let source = if kind == "volume" { m.name? } else { m.source? };
                Some(VolumeMount {
                    kind: kind.into(),
                    source,
                    target: m.destination?,
                })
            })
            .collect();
        Ok(ContainerInfo {
            id: c.id.unwrap_or_else(|| id.to_string()),
            name: c
                .name
                .unwrap_or_default()
                .trim_start_matches('/')
                .to_string(),
            project: labels.get(LABEL_PROJECT).cloned(),
            service: labels.get(LABEL_SERVICE).cloned(),
            image: config.image.unwrap_or_default(),
            image_id: c.image.unwrap_or_default(),
            env: config.env.unwrap_or_default(),
            mounts,
            running: c.state.and_then(|s| s.running).unwrap_or(false),
        })
    }

    /// Stops a container, waiting up to `timeout_secs` before the engine kills it.
    pub async fn stop(&self, c: &ContainerInfo, timeout_secs: i32) -> Result<()> {
        self.docker
            .stop_container(
                &c.id,
                Some(StopContainerOptions {
                    t: Some(timeout_secs),
                    signal: None,
                }),
            )
            .await
            .with_context(|| format!("stopping {}", c.name))?;
        if self.inspect(&c.id).await?.running {
            bail!("{} is still running after `stop`", c.name);
        }
        Ok(())
    }

    pub async fn start(&self, c: &ContainerInfo) -> Result<()> {
        match self.docker.start_container(&c.id, None).await {
            Ok(()) => Ok(()),
            // 304: already running, which is what we wanted.
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 304, ..
            }) => Ok(()),
            Err(e) => Err(anyhow!(e)).with_context(|| format!("starting {}", c.name)),
        }
    }

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
    /// (`None`: no stdin), keeping only its stderr.
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
        // process exits with stdin attached, so watch the process instead.
        let code = loop {
            let state = self.docker.inspect_exec(&exec_id).await?;
            if state.running != Some(true) {
                break state.exit_code.unwrap_or(-1);
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
        Ok(Finished {
            exit_code: code,
            stderr,
        })
    }

    /// Runs a one-off container from `like`'s image with `like`'s volumes
    /// (the way `docker compose run` would), streaming stdout to `out`
    /// and, when given, `input` to stdin. The container is removed afterwards.
    pub async fn run_oneoff(
        &self,
        like: &ContainerInfo,
        cmd: Vec<String>,
        env: Vec<String>,
        out: Option<ByteSender>,
        input: Option<mpsc::Receiver<Bytes>>,
    ) -> Result<Finished> {
        let mounts = like
            .mounts
            .iter()
            .map(|m| Mount {
                target: Some(m.target.clone()),
                source: Some(m.source.clone()),
                typ: Some(if m.kind == "bind" {
                    MountType::BIND
                } else {
                    MountType::VOLUME
                }),
                ..Default::default()
            })
            .collect();
        let mut labels = HashMap::new();
        labels.insert(LABEL_RBK.to_string(), like.name.clone());
        let mut full_env = like.env.clone();
        full_env.extend(env);
        let created = self
            .docker
            .create_container(
                None::<CreateContainerOptions>,
                ContainerCreateBody {
                    image: Some(like.image_id.clone()),
                    cmd: Some(cmd.clone()),
                    env: Some(full_env),
                    labels: Some(labels),
                    attach_stdout: Some(true),
                    attach_stderr: Some(true),
                    attach_stdin: Some(input.is_some()),
                    open_stdin: Some(input.is_some()),
                    stdin_once: Some(input.is_some()),
                    host_config: Some(HostConfig {
                        mounts: Some(mounts),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
            )
            .await
            .with_context(|| format!("creating a one-off container from {}", like.image))?;
        let id = created.id;
        let result = self.drive_oneoff(&id, &cmd, out, input).await;
        self.force_remove(&id).await;
        result
    }

    /// Removes a container whatever its state; best effort (it may be gone already).
    async fn force_remove(&self, id: &str) {
        let options = RemoveContainerOptions {
            force: true,
            ..Default::default()
        };
        let _ = self.docker.remove_container(id, Some(options)).await;
    }

    async fn drive_oneoff(
        &self,
        id: &str,
        cmd: &[String],
        out: Option<ByteSender>,
        input: Option<mpsc::Receiver<Bytes>>,
    ) -> Result<Finished> {
        // Attach before start, or the first output could be lost.
        let attached = self
            .docker
            .attach_container(
                id,
                Some(AttachContainerOptions {
                    stream: true,
                    stdout: true,
                    stderr: true,
                    stdin: input.is_some(),
                    ..Default::default()
                }),
            )
            .await?;
        self.docker
            .start_container(id, None)
            .await
            .context("starting the one-off container")?;
        let tail = StderrTail::default();
        let (fed, pumped) = tokio::join!(
            async {
                match input {
                    Some(rx) => feed(attached.input, rx).await,
                    None => Ok(()),
                }
            },
            pump_output(attached.output, out.as_ref(), &tail)
        );
        let consumer_gone = pumped?;
        let mut wait = self.docker.wait_container(id, None::<WaitContainerOptions>);
        let code = match wait.next().await {
            Some(Ok(r)) => r.status_code,
            // bollard reports a non-zero exit as an error carrying the code.
            Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. })) => code,
            Some(Err(e)) => return Err(e.into()),
            None => -1,
        };
        if let Err(e) = fed {
            let msg = format!("{e}; its stderr ended with:\n{}", tail.text());
            bail!("feeding {:?}: {msg}", cmd.first());
        }
        match out {
            Some(out) => finish_stream(cmd, code, &tail, &out, consumer_gone).await,
            None => Ok(Finished {
                exit_code: code,
                stderr: tail.text(),
            }),
        }
    }

    /// The bytes of one file from a container (running or stopped, volume
    /// or container layer), streamed to `out`.
    pub async fn download_file(
        &self,
        c: &ContainerInfo,
        path: &str,
        out: ByteSender,
    ) -> Result<()> {
        let mut stream = self.docker.download_from_container(
            &c.id,
            Some(DownloadFromContainerOptions {
                path: path.to_string(),
            }),
        );
        // The engine sends a tar of the path; unpack its one regular file.
        let (tar_tx, tar_rx) = super::stream::byte_stream();
        let unpack = tokio::task::spawn_blocking({
            let out = out.clone();
            move || super::sqlite::untar_single_file(tar_rx, &out)
        });
        while let Some(chunk) = stream.next().await {
            match chunk {
                Ok(b) => {
                    if tar_tx.send(Ok(b)).await.is_err() {
                        break;
                    }
                }
                Err(e) => {
                    let _ = tar_tx
                        .send(Err(io::Error::other(format!("downloading {path}: {e}"))))
                        .await;
                    break;
                }
            }
        }
        drop(tar_tx);
        unpack.await.context("the unpacking task failed")?
    }

    /// Puts a file into a container (running or stopped) from a tar stream.
    pub async fn upload_tar(&self, c: &ContainerInfo, dir: &str, tar: Bytes) -> Result<()> {
        self.docker
            .upload_to_container(
                &c.id,
                Some(UploadToContainerOptions {
                    path: dir.to_string(),
                    ..Default::default()
                }),
                bollard::body_full(tar),
            )
            .await
            .with_context(|| format!("copying into {}:{dir}", c.name))
    }

    /// One-off containers rbk left behind (a crash mid-dump): removed before new work.
    pub async fn remove_leftovers(&self) -> Result<usize> {
        let ids = self.ids_with_labels(&[LABEL_RBK.to_string()]).await?;
        for id in &ids {
            self.force_remove(id).await;
        }
        Ok(ids.len())
    }
}

/// Copies a container's output: stdout to `out` (when given), stderr into
/// `tail`. Returns true when the consumer hung up early.
async fn pump_output(
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

async fn feed(mut stdin: InputStream, mut rx: mpsc::Receiver<Bytes>) -> io::Result<()> {
    while let Some(chunk) = rx.recv().await {
        stdin.write_all(&chunk).await?;
    }
    stdin.flush().await?;
    stdin.shutdown().await
}

/// Ends a produced stream: success closes it, failure sends the error down it.
async fn finish_stream(
    cmd: &[String],
    code: i64,
    tail: &StderrTail,
    out: &ByteSender,
    consumer_gone: bool,
) -> Result<Finished> {
    let stderr = tail.text();
    if code != 0 {
        let mut msg = format!("`{}` exited with status {code}", cmd.join(" "));
        if !stderr.is_empty() {
            msg.push_str("; its stderr ended with:\n");
            msg.push_str(&stderr);
        }
        let _ = out.send(Err(io::Error::other(msg.clone()))).await;
        bail!(msg);
    }
    if consumer_gone {
        bail!("the consumer of `{}` stopped reading", cmd.join(" "));
    }
    Ok(Finished {
        exit_code: code,
        stderr,
    })
}
