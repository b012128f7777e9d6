//! Containers that already exist: find them by label, inspect, stop and start them, remove them.

use std::collections::HashMap;

use anyhow::{Context, Result, anyhow, bail};
use bollard::models::ContainerSummary;
use bollard::query_parameters::{
    InspectContainerOptions, ListContainersOptions, RemoveContainerOptions, StopContainerOptions,
};

use super::{
    ContainerInfo, Drill, Engine, LABEL_DRILL, LABEL_PROJECT, LABEL_RBK_PROJECT, LABEL_SERVICE,
    LABEL_VOLUME, VolumeMount,
};

impl Engine {
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
    pub(super) async fn list_with_labels(
        &self,
        labels: &[String],
    ) -> Result<Vec<ContainerSummary>> {
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
            drill: match (labels.get(LABEL_DRILL), labels.get(LABEL_RBK_PROJECT)) {
                (Some(id), Some(project)) => Drill::new(id, project).ok(),
                _ => None,
            },
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

    /// Removes a container whatever its state; best effort (it may be gone already).
    pub(super) async fn force_remove(&self, id: &str) {
        let options = RemoveContainerOptions {
            force: true,
            ..Default::default()
        };
        let _ = self.docker.remove_container(id, Some(options)).await;
    }
}
