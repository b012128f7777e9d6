//! The Docker engine through bollard: find containers, stop and start them, run commands and one-off containers.

use std::collections::HashMap;
use std::io;

use anyhow::{Context, Result, anyhow, bail};
use bollard::Docker;
use bollard::container::LogOutput;
use bollard::exec::{CreateExecOptions, StartExecResults};
use bollard::models::{ContainerCreateBody, ContainerSummary, HostConfig, Mount, MountType};
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
/// On volumes: the name the Compose file gives the volume (`uploads`, not `myproject_uploads`).
pub const LABEL_VOLUME: &str = "com.docker.compose.volume";
/// Every container rbk creates carries this label, so leftovers can be found; its value is
/// the name of the container the one-off copies.
pub const LABEL_RBK: &str = "io.rbk.oneoff";
/// The Compose project a one-off container belongs to: leftovers are removed per project, so
/// two rbk runs against two stacks on one engine never remove each other's dumps.
pub const LABEL_RBK_PROJECT: &str = "io.rbk.project";

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
    /// Connects through `DOCKER_HOST` or the default socket, and agrees on an API version
    /// the engine speaks (older engines refuse newer ones). That first request is bounded by
    /// `CONNECT_TIMEOUT`: a socket that accepts and never answers (a hung engine) must not
    /// hold rbk for the client's own 120 s. Later requests are not: stopping a container
    /// may rightly take its whole stop timeout. A failure is one sentence naming the socket
    /// and its likely cause, not the HTTP client's wording.
    pub async fn connect() -> Result<Engine> {
        let host = std::env::var("DOCKER_HOST").unwrap_or_else(|_| DEFAULT_DOCKER_HOST.to_string());
        let docker = Docker::connect_with_host(&host).map_err(|e| unreachable_engine(&host, &e))?;
        match tokio::time::timeout(CONNECT_TIMEOUT, docker.negotiate_version()).await {
            Ok(Ok(docker)) => Ok(Engine { docker }),
            Ok(Err(e)) => Err(unreachable_engine(&host, &e)),
            Err(_) => Err(anyhow!(
                "the Docker engine at {} accepted the connection but did not answer within {} s: \
                 is it hung? Restart Docker, or point DOCKER_HOST at one that works",
                socket_of(&host),
                CONNECT_TIMEOUT.as_secs()
            )),
        }
    }

    /// Containers carrying every given label (`key=value`), running or not.
    pub async fn containers_with_labels(&self, labels: &[String]) -> Result<Vec<ContainerInfo>> {
        let mut out = Vec::new();
        for c in self.list_with_labels(labels).await? {
            if let Some(id) = c.id {
                out.push(self.inspect(&id).await?);
            }
        }
        Ok(out)
    }

    /// The engine's summaries of the containers carrying every given label, running or not.
    async fn list_with_labels(&self, labels: &[String]) -> Result<Vec<ContainerSummary>> {
        let mut filters = HashMap::new();
        filters.insert("label".to_string(), labels.to_vec());
        self.docker
            .list_containers(Some(ListContainersOptions {
                all: true,
                filters: Some(filters),
                ..Default::default()
            }))
            .await
            .context("listing containers")
    }

    /// The Compose name of a volume (`com.docker.compose.volume`), if it has one.
    pub async fn compose_volume_name(&self, volume: &str) -> Result<Option<String>> {
        let v = self
            .docker
            .inspect_volume(volume)
            .await
            .with_context(|| format!("inspecting volume {volume}"))?;
        Ok(v.labels.get(LABEL_VOLUME).cloned())
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
        let mut full_env = like.env.clone();
        full_env.extend(env);
        let spec = OneOff {
            mounts: like.mounts.iter().map(|m| (m.clone(), false)).collect(),
            entrypoint: None,
            cmd,
            env: full_env,
            user: None,
        };
        self.run_spec(like, spec, out, input).await
    }

    /// Runs `script` (`sh -c`, with the mount point as `$1`) as root in a one-off container
    /// from `owner`'s image with only `volume` mounted, at the place `owner` mounts it (read
    /// only when asked). The image's entrypoint and user are bypassed: an application image
    /// may start its program from the entrypoint, or run as a user that cannot read every
    /// file of the volume.
    pub async fn run_on_volume(
        &self,
        owner: &ContainerInfo,
        volume: &VolumeMount,
        read_only: bool,
        script: &str,
        out: Option<ByteSender>,
        input: Option<mpsc::Receiver<Bytes>>,
    ) -> Result<Finished> {
        let spec = OneOff {
            mounts: vec![(volume.clone(), read_only)],
            entrypoint: Some(vec![
                "/bin/sh".into(),
                "-c".into(),
                script.into(),
                "rbk".into(),
                volume.target.clone(),
            ]),
            cmd: Vec::new(),
            env: Vec::new(),
            user: Some("0:0".into()),
        };
        self.run_spec(owner, spec, out, input).await
    }

    async fn run_spec(
        &self,
        like: &ContainerInfo,
        spec: OneOff,
        out: Option<ByteSender>,
        input: Option<mpsc::Receiver<Bytes>>,
    ) -> Result<Finished> {
        let mounts = spec
            .mounts
            .iter()
            .map(|(m, read_only)| Mount {
                target: Some(m.target.clone()),
                source: Some(m.source.clone()),
                typ: Some(if m.kind == "bind" {
                    MountType::BIND
                } else {
                    MountType::VOLUME
                }),
                read_only: Some(*read_only),
                ..Default::default()
            })
            .collect();
        let mut labels = HashMap::new();
        labels.insert(LABEL_RBK.to_string(), like.name.clone());
        labels.insert(
            LABEL_RBK_PROJECT.to_string(),
            like.project.clone().unwrap_or_default(),
        );
        // What the error messages show: the command as the one-off runs it.
        let shown: Vec<String> = match &spec.entrypoint {
            Some(e) => e.iter().chain(&spec.cmd).cloned().collect(),
            None => spec.cmd.clone(),
        };
        let created = self
            .docker
            .create_container(
                None::<CreateContainerOptions>,
                ContainerCreateBody {
                    image: Some(like.image_id.clone()),
                    entrypoint: spec.entrypoint,
                    cmd: (!spec.cmd.is_empty()).then_some(spec.cmd),
                    env: Some(spec.env),
                    user: spec.user,
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
        let result = self.drive_oneoff(&id, &shown, out, input).await;
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

    /// The size of a file in a container (running or stopped), or `None` if
    /// there is no such file.
    pub async fn file_size(&self, c: &ContainerInfo, path: &str) -> Result<Option<u64>> {
        let options = bollard::query_parameters::ContainerArchiveInfoOptions {
            path: path.to_string(),
        };
        match self
            .docker
            .get_container_archive_info(&c.id, Some(options))
            .await
        {
            Ok(stat) => Ok(Some(stat.size.max(0) as u64)),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(None),
            Err(e) => Err(anyhow::anyhow!("looking for {path} in {}: {e}", c.name)),
        }
    }

    /// The mode and numeric owner of a file in a container, from the first
    /// header block of the engine's archive of it (the rest is not read).
    /// `None` if there is no such file.
    pub async fn file_owner(
        &self,
        c: &ContainerInfo,
        path: &str,
    ) -> Result<Option<crate::codec::tar::Owner>> {
        if self.file_size(c, path).await?.is_none() {
            return Ok(None);
        }
        let mut stream = self.docker.download_from_container(
            &c.id,
            Some(DownloadFromContainerOptions {
                path: path.to_string(),
            }),
        );
        let mut head: Vec<u8> = Vec::with_capacity(crate::codec::tar::BLOCK_SIZE);
        while head.len() < crate::codec::tar::BLOCK_SIZE {
            match stream.next().await {
                Some(Ok(b)) => head.extend_from_slice(&b),
                Some(Err(e)) => bail!("reading {path} in {}: {e}", c.name),
                None => break,
            }
        }
        let block: Option<&[u8; crate::codec::tar::BLOCK_SIZE]> = head
            .get(..crate::codec::tar::BLOCK_SIZE)
            .and_then(|b| b.try_into().ok());
        // Only a regular file's owner and mode say anything: the engine archives a link as a
        // link (mode 0777), and whoever can write the directory may have planted one there.
        Ok(block
            .filter(|b| matches!(b[156], b'0' | 0))
            .and_then(crate::codec::tar::parse_owner))
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

    /// One-off containers rbk left behind for `project` (a crash mid-dump): removed before
    /// new work. Only that project's: another stack on the same engine may have a dump of
    /// its own in flight. One-offs made before rbk labelled the project are recognised by
    /// the container they copy (the `io.rbk.oneoff` value) being one of the project's.
    pub async fn remove_leftovers(&self, project: &str) -> Result<usize> {
        let oneoffs = self.list_with_labels(&[LABEL_RBK.to_string()]).await?;
        let mut names: Option<Vec<String>> = None;
        let mut removed = 0;
        for c in oneoffs {
            let labels = c.labels.unwrap_or_default();
            let mine = match labels.get(LABEL_RBK_PROJECT) {
                Some(p) => p == project,
                None => {
                    if names.is_none() {
                        let in_project = self
                            .list_with_labels(&[format!("{LABEL_PROJECT}={project}")])
                            .await?;
                        names = Some(
                            in_project
                                .into_iter()
                                .flat_map(|c| c.names.unwrap_or_default())
                                .map(|n| n.trim_start_matches('/').to_string())
                                .collect(),
                        );
                    }
                    let copied = labels.get(LABEL_RBK).map(String::as_str).unwrap_or("");
                    names
                        .as_ref()
                        .is_some_and(|n| n.iter().any(|n| n == copied))
                }
            };
            if let (true, Some(id)) = (mine, c.id) {
                self.force_remove(&id).await;
                removed += 1;
            }
        }
        Ok(removed)
    }
}

/// `DOCKER_HOST` when unset, as the Docker CLI has it.
const DEFAULT_DOCKER_HOST: &str = "unix:///var/run/docker.sock";

/// How long the engine has to answer rbk's first request.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The socket's path for `unix://` hosts, the address as given for the others.
fn socket_of(host: &str) -> &str {
    host.strip_prefix("unix://").unwrap_or(host)
}

/// Why the engine at `host` could not be reached, as one plain sentence: the OS error at
/// the bottom of the client's error says whether the socket is missing, refused or not ours.
fn unreachable_engine(host: &str, e: &bollard::errors::Error) -> anyhow::Error {
    let socket = socket_of(host);
    let mut io_kind = None;
    let mut innermost: &dyn std::error::Error = e;
    let mut cause: Option<&dyn std::error::Error> = Some(e);
    while let Some(c) = cause {
        if let Some(io) = c.downcast_ref::<io::Error>() {
            io_kind = Some(io.kind());
        }
        innermost = c;
        cause = c.source();
    }
    match (e, io_kind) {
        (bollard::errors::Error::SocketNotFoundError(_), _)
        | (_, Some(io::ErrorKind::NotFound)) => {
            anyhow!(
                "there is no Docker socket at {socket}: is Docker running? (If it listens elsewhere, set DOCKER_HOST)"
            )
        }
        (_, Some(io::ErrorKind::ConnectionRefused)) if host.starts_with("unix://") => {
            anyhow!("the Docker socket {socket} refuses connections: is Docker running?")
        }
        (_, Some(io::ErrorKind::ConnectionRefused)) => {
            anyhow!("the Docker engine at {host} refuses connections: is Docker running?")
        }
        (_, Some(io::ErrorKind::PermissionDenied)) => anyhow!(
            "permission denied on the Docker socket {socket}: run as root or as a member of the docker group"
        ),
        (bollard::errors::Error::UnsupportedURISchemeError { .. }, _) => anyhow!(
            "DOCKER_HOST={host} is not an address rbk can use (unix:///PATH, tcp://HOST:PORT or http://HOST:PORT)"
        ),
        _ => anyhow!("cannot reach the Docker engine at {socket}: {innermost}"),
    }
}

/// How a one-off container differs from the container whose image it runs.
struct OneOff {
    /// Each mount, and whether it is read-only.
    mounts: Vec<(VolumeMount, bool)>,
    /// `None`: the image's entrypoint.
    entrypoint: Option<Vec<String>>,
    cmd: Vec<String>,
    env: Vec<String>,
    /// `None`: the image's user.
    user: Option<String>,
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
