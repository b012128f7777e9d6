//! Containers created from an image for a drill (not copied from a running service): one typed spec in, a started and inspected container out, labelled so the drill's teardown finds it.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use anyhow::{Context, Result, bail};
use bollard::models::{
    ContainerCreateBody, EndpointSettings, HealthConfig, HostConfig, Mount, MountType,
    NetworkingConfig,
};
use bollard::query_parameters::{CreateContainerOptions, InspectNetworkOptions};

use super::drill::{Drill, LABEL_DRILL};
use super::{ContainerInfo, Engine};

/// A drill volume mounted into a drill container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrillMount {
    /// The volume's name; it must be one of the same drill's (`Engine::create_drill_volume`).
    pub volume: String,
    /// Where it appears in the container.
    pub target: String,
    pub read_only: bool,
}

/// What a drill container is made of. Everything not named here is the image's (user,
/// working directory, exposed ports, which are never published).
#[derive(Clone, Default)]
pub struct ContainerSpec {
    /// An image already on the engine (`rbk-test/debian:1`, `sha256:...`): nothing is pulled.
    pub image: String,
    /// The container's name, unique on the engine.
    pub name: String,
    /// Environment variables as (name, value). Values are often secrets (passwords,
    /// RushDB's encryption key), so `Debug` shows the names only and no error rbk makes
    /// carries a value.
    pub env: Vec<(String, String)>,
    pub mounts: Vec<DrillMount>,
    /// The drill network to join (`Engine::create_drill_network`), alone. `None`: no network
    /// at all (`none`), never the engine's default bridge.
    pub network: Option<String>,
    /// Other names the container answers to on `network` (`neo4j`, `postgres`).
    pub aliases: Vec<String>,
    /// Labels of the caller's own; `io.rbk.*` (set by rbk) and `com.docker.compose.*`
    /// (which would make stack discovery take the drill for the stack) are refused.
    pub labels: BTreeMap<String, String>,
    /// `None`: the image's entrypoint.
    pub entrypoint: Option<Vec<String>>,
    /// `None`: the image's command.
    pub cmd: Option<Vec<String>>,
    /// `None`: the image's user.
    pub user: Option<String>,
    /// `None`: the image's working directory.
    pub working_dir: Option<String>,
    /// `None`: the image's healthcheck, if any.
    pub healthcheck: Option<HealthConfig>,
}

impl fmt::Debug for ContainerSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let env_names: Vec<&str> = self.env.iter().map(|(k, _)| k.as_str()).collect();
        f.debug_struct("ContainerSpec")
            .field("image", &self.image)
            .field("name", &self.name)
            .field("env (names only)", &env_names)
            .field("mounts", &self.mounts)
            .field("network", &self.network)
            .field("aliases", &self.aliases)
            .field("labels", &self.labels)
            .field("entrypoint", &self.entrypoint)
            .field("cmd", &self.cmd)
            .field("user", &self.user)
            .field("working_dir", &self.working_dir)
            .field("healthcheck", &self.healthcheck)
            .finish()
    }
}

impl Engine {
    /// Creates `spec`'s container from its image, labelled as `drill`'s, starts it and
    /// returns what the engine then reports (a short command may already have ended: the
    /// caller reads `running`). A container that was created but would not start is
    /// removed again, so a failure leaves nothing to tear down. The network and every
    /// mounted volume must be `drill`'s own: a drill never joins a network where the
    /// stack's services could resolve its aliases, nor writes a volume it did not create.
    pub async fn create_drill_container(
        &self,
        drill: &Drill,
        spec: &ContainerSpec,
    ) -> Result<ContainerInfo> {
        let created = self.prepare_drill_container(drill, spec).await?;
        if let Err(e) = self.docker.start_container(&created.id, None).await {
            self.force_remove(&created.id).await;
            return Err(e).with_context(|| {
                format!(
                    "starting the drill container {} (from {})",
                    spec.name, spec.image
                )
            });
        }
        self.inspect(&created.id).await
    }

    /// Creates `spec`'s container like [`create_drill_container`](Engine::create_drill_container)
    /// but does not start it: a drill loads a container's volumes first (Neo4j must not run
    /// during `neo4j-admin database load`), and starts it with [`Engine::start`].
    pub async fn prepare_drill_container(
        &self,
        drill: &Drill,
        spec: &ContainerSpec,
    ) -> Result<ContainerInfo> {
        let what = format!("the drill container {} (from {})", spec.name, spec.image);
        let body = self
            .drill_container_body(drill, spec)
            .await
            .with_context(|| format!("creating {what}"))?;
        let created = self
            .docker
            .create_container(
                Some(CreateContainerOptions {
                    name: Some(spec.name.clone()),
                    ..Default::default()
                }),
                body,
            )
            .await
            .with_context(|| format!("creating {what}"))?;
        self.inspect(&created.id).await
    }

    /// The engine's form of `spec`, after checking what it may refer to.
    async fn drill_container_body(
        &self,
        drill: &Drill,
        spec: &ContainerSpec,
    ) -> Result<ContainerCreateBody> {
        if spec.image.is_empty() || spec.name.is_empty() {
            bail!("a drill container needs an image and a name");
        }
        let mut labels: HashMap<String, String> = HashMap::new();
        for (k, v) in &spec.labels {
            if k.starts_with("io.rbk.") || k.starts_with("com.docker.compose.") {
                bail!("the label {k} is not the caller's to set on a drill container");
            }
            labels.insert(k.clone(), v.clone());
        }
        labels.extend(drill.labels());
        let mut env = Vec::with_capacity(spec.env.len());
        for (k, v) in &spec.env {
            // The engine quotes a malformed variable whole in its error, value included.
            if k.is_empty() || k.contains('=') || k.contains('\0') {
                bail!("{k:?} is not an environment variable name");
            }
            env.push(format!("{k}={v}"));
        }
        let mut mounts = Vec::with_capacity(spec.mounts.len());
        for m in &spec.mounts {
            self.require_drill_volume(drill, &m.volume).await?;
            mounts.push(Mount {
                target: Some(m.target.clone()),
                source: Some(m.volume.clone()),
                typ: Some(MountType::VOLUME),
                read_only: Some(m.read_only),
                ..Default::default()
            });
        }
        let (network_mode, networking_config) = match &spec.network {
            Some(network) => {
                self.require_drill_network(drill, network).await?;
                let endpoint = EndpointSettings {
                    aliases: (!spec.aliases.is_empty()).then(|| spec.aliases.clone()),
                    ..Default::default()
                };
                let config = NetworkingConfig {
                    endpoints_config: Some(HashMap::from([(network.clone(), endpoint)])),
                };
                (network.clone(), Some(config))
            }
            None if !spec.aliases.is_empty() => {
                bail!("network aliases need a network");
            }
            None => ("none".to_string(), None),
        };
        Ok(ContainerCreateBody {
            image: Some(spec.image.clone()),
            entrypoint: spec.entrypoint.clone(),
            cmd: spec.cmd.clone(),
            user: spec.user.clone(),
            working_dir: spec.working_dir.clone(),
            healthcheck: spec.healthcheck.clone(),
            env: Some(env),
            labels: Some(labels),
            networking_config,
            host_config: Some(HostConfig {
                mounts: Some(mounts),
                network_mode: Some(network_mode),
                // Ports the image exposes stay inside the drill network.
                publish_all_ports: Some(false),
                ..Default::default()
            }),
            ..Default::default()
        })
    }

    /// Fails unless the volume `name` exists and carries `drill`'s labels.
    async fn require_drill_volume(&self, drill: &Drill, name: &str) -> Result<()> {
        let v = self
            .docker
            .inspect_volume(name)
            .await
            .with_context(|| format!("inspecting the volume {name}"))?;
        if !drill.owns(&v.labels) {
            bail!(
                "the volume {name} is not drill {}'s: a drill mounts only volumes it created",
                drill.id()
            );
        }
        Ok(())
    }

    /// Fails unless the network `name` exists and carries `drill`'s labels.
    async fn require_drill_network(&self, drill: &Drill, name: &str) -> Result<()> {
        let n = self
            .docker
            .inspect_network(name, None::<InspectNetworkOptions>)
            .await
            .with_context(|| format!("inspecting the network {name}"))?;
        if !drill.owns(&n.labels.unwrap_or_default()) {
            bail!(
                "the network {name} is not drill {}'s ({LABEL_DRILL}): a drill joins only its own",
                drill.id()
            );
        }
        Ok(())
    }
}
