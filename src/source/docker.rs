//! The Docker engine through bollard: the `Engine` handle, its connection, and what rbk knows of a container.
//!
//! The engine's operations live under `docker/`, one concept per file, all as methods of
//! `Engine`: `containers` (find, inspect, stop, start), `exec` (commands in a running
//! container), `oneoff` (one-off containers copying a service, and their leftovers),
//! `files` (file copy in and out), `runconfig` (what a container runs with, its health and address), `create` and `drill` (throwaway containers, volumes and a
//! private network built from images, and their teardown), `streams` (the output, stdin and
//! exit status plumbing they share) and `unreachable` (why the engine could not be reached).

mod containers;
mod create;
mod drill;
mod exec;
mod files;
mod host_path;
mod oneoff;
mod runconfig;
mod streams;
mod unreachable;

use anyhow::{Result, anyhow};
use bollard::Docker;

pub use create::{ContainerSpec, DrillMount};
pub use drill::{Drill, DrillLeftovers, LABEL_DRILL, Teardown};
pub use runconfig::{Health, RunConfig};

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
    /// The drill a container belongs to (its `io.rbk.drill` and `io.rbk.project` labels), so
    /// that the one-off containers made from it are that drill's too.
    pub drill: Option<Drill>,
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
    /// Reached over a Unix socket: the engine's paths are this host's.
    local: bool,
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
        let docker = Docker::connect_with_host(&host)
            .map_err(|e| unreachable::unreachable_engine(&host, &e))?;
        match tokio::time::timeout(CONNECT_TIMEOUT, docker.negotiate_version()).await {
            Ok(Ok(docker)) => Ok(Engine {
                docker,
                local: host.starts_with("unix://") || host.starts_with('/'),
            }),
            Ok(Err(e)) => Err(unreachable::unreachable_engine(&host, &e)),
            Err(_) => Err(anyhow!(
                "the Docker engine at {} accepted the connection but did not answer within {} s: \
                 is it hung? Restart Docker, or point DOCKER_HOST at one that works",
                unreachable::socket_of(&host),
                CONNECT_TIMEOUT.as_secs()
            )),
        }
    }
}

/// `DOCKER_HOST` when unset, as the Docker CLI has it.
const DEFAULT_DOCKER_HOST: &str = "unix:///var/run/docker.sock";

/// How long the engine has to answer rbk's first request.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Whether `e` is the Docker engine failing (an API error or a lost connection) rather than
/// a command in a container failing: the one means rbk could not do its work, the other may
/// be the data's fault.
pub fn is_engine_error(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.is::<bollard::errors::Error>())
}
