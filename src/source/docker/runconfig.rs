//! What a container runs with (entrypoint, command, user, healthcheck, the environment it was given beyond its image's), how healthy it is, and its address on a network: what a drill copies from the stack and then waits on.

use std::net::IpAddr;

use anyhow::{Context, Result};
use bollard::models::{ContainerInspectResponse, HealthConfig};
use bollard::query_parameters::{InspectContainerOptions, LogsOptions};
use futures_util::StreamExt;

use super::{ContainerInfo, Engine};

/// How a container was configured to run, beyond its image and mounts.
#[derive(Clone, Default)]
pub struct RunConfig {
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    pub user: Option<String>,
    pub working_dir: Option<String>,
    pub healthcheck: Option<HealthConfig>,
    /// The variables the container was given on top of its image's (Compose's
    /// `environment:`), as (name, value): the image's own defaults are left to whichever
    /// image runs. Values may be secrets; nothing prints them.
    pub env: Vec<(String, String)>,
}

/// A container's state as a wait needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    pub running: bool,
    /// Set once it has exited.
    pub exit_code: Option<i64>,
    /// `starting`, `healthy` or `unhealthy` when it has a healthcheck.
    pub status: Option<String>,
}

impl Engine {
    /// What `c` runs with. The environment is the container's minus the entries its image
    /// sets to the same value.
    pub async fn run_config(&self, c: &ContainerInfo) -> Result<RunConfig> {
        let inspected = self.inspect_raw(c).await?;
        let config = inspected.config.unwrap_or_default();
        let image_env = match self.docker.inspect_image(&c.image_id).await {
            Ok(i) => i.config.and_then(|c| c.env).unwrap_or_default(),
            // The image may be gone (`docker image rm` of an untagged image in use fails, but
            // a pruned one can be): keep the whole environment then.
            Err(_) => Vec::new(),
        };
        let env = config
            .env
            .unwrap_or_default()
            .into_iter()
            .filter(|kv| !image_env.contains(kv))
            .filter_map(|kv| {
                let (k, v) = kv.split_once('=')?;
                Some((k.to_string(), v.to_string()))
            })
            .collect();
        Ok(RunConfig {
            entrypoint: config.entrypoint.filter(|e| !e.is_empty()),
            cmd: config.cmd.filter(|c| !c.is_empty()),
            user: config.user.filter(|u| !u.is_empty()),
            working_dir: config.working_dir.filter(|w| !w.is_empty()),
            healthcheck: config.healthcheck,
            env,
        })
    }

    /// Whether `c` runs, how it exited, and what its healthcheck says.
    pub async fn health(&self, c: &ContainerInfo) -> Result<Health> {
        let inspected = self.inspect_raw(c).await?;
        let state = inspected.state.unwrap_or_default();
        let running = state.running.unwrap_or(false);
        Ok(Health {
            running,
            exit_code: (!running && state.finished_at.as_deref().is_some_and(has_time))
                .then_some(state.exit_code)
                .flatten(),
            status: state
                .health
                .and_then(|h| h.status)
                .map(|s| s.to_string())
                .filter(|s| !s.is_empty() && s != "none"),
        })
    }

    /// `c`'s address on `network`, if it has one.
    pub async fn address_on(&self, c: &ContainerInfo, network: &str) -> Result<Option<IpAddr>> {
        let inspected = self.inspect_raw(c).await?;
        Ok(inspected
            .network_settings
            .and_then(|n| n.networks)
            .and_then(|mut n| n.remove(network))
            .and_then(|e| e.ip_address)
            .and_then(|ip| ip.parse().ok()))
    }

    /// The image's id, if the engine has an image by that name (nothing is pulled).
    pub async fn image_id(&self, image: &str) -> Option<String> {
        self.docker.inspect_image(image).await.ok()?.id
    }

    /// The last `lines` lines a container printed (stdout and stderr), for a message about
    /// why it did not come up.
    pub async fn log_tail(&self, c: &ContainerInfo, lines: usize) -> String {
        let mut logs = self.docker.logs(
            &c.id,
            Some(LogsOptions {
                stdout: true,
                stderr: true,
                tail: lines.to_string(),
                ..Default::default()
            }),
        );
        let mut text = String::new();
        while let Some(Ok(chunk)) = logs.next().await {
            text.push_str(&String::from_utf8_lossy(&chunk.into_bytes()));
            if text.len() > 8192 {
                break;
            }
        }
        text.trim_end().to_string()
    }
}

impl Engine {
    /// The engine's whole answer about `c`.
    async fn inspect_raw(&self, c: &ContainerInfo) -> Result<ContainerInspectResponse> {
        self.docker
            .inspect_container(&c.id, None::<InspectContainerOptions>)
            .await
            .with_context(|| format!("inspecting container {}", c.name))
    }
}

/// The engine reports `0001-01-01T00:00:00Z` for a container that never finished.
fn has_time(t: &str) -> bool {
    !t.starts_with("0001-")
}
