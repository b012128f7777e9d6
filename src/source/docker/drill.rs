//! A drill's throwaway world on the engine: its private network and fresh volumes, all labelled with the drill, and the teardown and leftover search that find them by those labels alone.
//!
//! A restore drill loads a snapshot into containers of its own, beside the running stack,
//! and must leave nothing behind, even when rbk is killed halfway. So every object a drill
//! creates (container, volume, network) carries `io.rbk.drill=<id>` and
//! `io.rbk.project=<project>` from the moment it exists: the labels, not rbk's memory, are
//! what the teardown goes by, and a later run finds a crashed drill's objects the same way.
//! Nothing here touches an object without both labels.

use std::collections::{BTreeMap, HashMap};

use anyhow::{Context, Result, bail};
use bollard::models::{NetworkCreateRequest, VolumeCreateRequest};
use bollard::query_parameters::{
    ListContainersOptions, ListNetworksOptions, ListVolumesOptions, RemoveContainerOptions,
    RemoveVolumeOptions,
};

use super::{Engine, LABEL_RBK_PROJECT};

/// Every container, volume and network of a drill carries this label; its value is the
/// drill's id.
pub const LABEL_DRILL: &str = "io.rbk.drill";

/// Whose throwaway objects these are: a drill's id and the Compose project it drills.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Drill {
    id: String,
    project: String,
}

/// What a teardown removed (objects already gone are not counted).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Teardown {
    pub containers: usize,
    pub volumes: usize,
    pub networks: usize,
}

/// What one drill left on the engine: containers and volumes by name, networks by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrillLeftovers {
    pub drill: Drill,
    pub containers: Vec<String>,
    pub volumes: Vec<String>,
    pub networks: Vec<String>,
}

impl Drill {
    /// The id and project go into labels and names, so they are kept to what a Docker
    /// object name allows (letters, digits, `_`, `.`, `-`) and may not be empty: an empty
    /// value would match every unlabelled project's objects in a filter.
    pub fn new(id: &str, project: &str) -> Result<Drill> {
        for (what, value) in [("drill id", id), ("project", project)] {
            let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-');
            if value.is_empty() || !value.chars().all(allowed) {
                bail!("{value:?} is not a usable {what} (letters, digits, `_`, `.`, `-`)");
            }
        }
        Ok(Drill {
            id: id.to_string(),
            project: project.to_string(),
        })
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn project(&self) -> &str {
        &self.project
    }

    /// A name for one of the drill's objects (`rbk-drill-<id>-neo4j`), which no Compose
    /// project's names (`<project>_<service>_1`, `<project>-<service>-1`) can collide with
    /// unless the project is itself named `rbk-drill-...`.
    pub fn name(&self, what: &str) -> String {
        format!("rbk-drill-{}-{what}", self.id)
    }

    /// The labels every object of the drill carries.
    pub fn labels(&self) -> HashMap<String, String> {
        HashMap::from([
            (LABEL_DRILL.to_string(), self.id.clone()),
            (LABEL_RBK_PROJECT.to_string(), self.project.clone()),
        ])
    }

    /// Whether an object with `labels` is this drill's.
    pub(super) fn owns(&self, labels: &HashMap<String, String>) -> bool {
        labels.get(LABEL_DRILL) == Some(&self.id)
            && labels.get(LABEL_RBK_PROJECT) == Some(&self.project)
    }

    /// The engine's list filter for this drill's objects (the labels are ANDed).
    fn filters(&self) -> HashMap<String, Vec<String>> {
        label_filter(vec![
            format!("{LABEL_DRILL}={}", self.id),
            format!("{LABEL_RBK_PROJECT}={}", self.project),
        ])
    }
}

fn label_filter(labels: Vec<String>) -> HashMap<String, Vec<String>> {
    HashMap::from([("label".to_string(), labels)])
}

/// Whether the engine answered that the object is not there (any more).
fn is_gone(e: &bollard::errors::Error) -> bool {
    matches!(
        e,
        bollard::errors::Error::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

impl Engine {
    /// Creates the drill's private network `name` and returns its id: a bridge marked
    /// internal, so its containers reach each other (by name and alias) but nothing outside,
    /// and nothing outside reaches them (an internal network publishes no ports). An
    /// existing network of that name is refused, not shared: engines before API 1.44 would
    /// otherwise create a second network with the same name.
    pub async fn create_drill_network(&self, drill: &Drill, name: &str) -> Result<String> {
        let existing = self
            .docker
            .list_networks(Some(ListNetworksOptions {
                filters: Some(HashMap::from([(
                    "name".to_string(),
                    vec![name.to_string()],
                )])),
            }))
            .await
            .context("listing networks")?;
        // The engine's name filter matches parts of names too.
        if existing.iter().any(|n| n.name.as_deref() == Some(name)) {
            bail!("a network named {name} already exists; a drill creates its own");
        }
        let created = self
            .docker
            .create_network(NetworkCreateRequest {
                name: name.to_string(),
                driver: Some("bridge".to_string()),
                internal: Some(true),
                attachable: Some(false),
                labels: Some(drill.labels()),
                ..Default::default()
            })
            .await
            .with_context(|| format!("creating the drill network {name}"))?;
        Ok(created.id)
    }

    /// Creates the drill's fresh, empty volume `name`. The engine answers a create for a
    /// name that exists with the existing volume, data and all, so an existing name is
    /// refused before, and the answer's labels checked after (another process may have
    /// created it in between): a drill must never mistake the stack's data for its own.
    pub async fn create_drill_volume(&self, drill: &Drill, name: &str) -> Result<()> {
        match self.docker.inspect_volume(name).await {
            Ok(_) => bail!("a volume named {name} already exists; a drill uses fresh volumes only"),
            Err(e) if is_gone(&e) => {}
            Err(e) => return Err(e).with_context(|| format!("looking for the volume {name}")),
        }
        let v = self
            .docker
            .create_volume(VolumeCreateRequest {
                name: Some(name.to_string()),
                labels: Some(drill.labels()),
                ..Default::default()
            })
            .await
            .with_context(|| format!("creating the drill volume {name}"))?;
        if !drill.owns(&v.labels) {
            bail!(
                "the volume {name} appeared meanwhile and is not drill {}'s",
                drill.id
            );
        }
        Ok(())
    }

    /// Removes every container, volume and network carrying `drill`'s labels, in that order
    /// (a volume or network in use cannot go). Objects already gone are fine, so a second
    /// teardown does nothing and succeeds, and so does one after someone removed a part. A failure to remove one
    /// object does not stop the others: the error, at the end, names every object left.
    pub async fn remove_drill(&self, drill: &Drill) -> Result<Teardown> {
        let mut done = Teardown::default();
        let mut left: Vec<String> = Vec::new();

        let containers = self
            .docker
            .list_containers(Some(ListContainersOptions {
                all: true,
                filters: Some(drill.filters()),
                ..Default::default()
            }))
            .await
            .context("listing the drill's containers")?;
        for c in containers {
            let Some(id) = c.id else { continue };
            // `v`: the anonymous volumes an image's VOLUME lines made go too.
            let options = RemoveContainerOptions {
                force: true,
                v: true,
                ..Default::default()
            };
            match self.docker.remove_container(&id, Some(options)).await {
                Ok(()) => done.containers += 1,
                Err(e) if is_gone(&e) => {}
                Err(e) => left.push(format!("container {}: {e}", first_name(c.names, &id))),
            }
        }

        let volumes = self
            .docker
            .list_volumes(Some(ListVolumesOptions {
                filters: Some(drill.filters()),
            }))
            .await
            .context("listing the drill's volumes")?;
        for v in volumes.volumes.unwrap_or_default() {
            match self
                .docker
                .remove_volume(&v.name, None::<RemoveVolumeOptions>)
                .await
            {
                Ok(()) => done.volumes += 1,
                Err(e) if is_gone(&e) => {}
                Err(e) => left.push(format!("volume {}: {e}", v.name)),
            }
        }

        for n in self.drill_networks(drill.filters()).await? {
            let Some(id) = n.id else { continue };
            match self.docker.remove_network(&id).await {
                Ok(()) => done.networks += 1,
                Err(e) if is_gone(&e) => {}
                Err(e) => left.push(format!("network {}: {e}", n.name.as_deref().unwrap_or(&id))),
            }
        }

        if !left.is_empty() {
            bail!(
                "tearing down drill {} left behind:\n  {}",
                drill.id,
                left.join("\n  ")
            );
        }
        Ok(done)
    }

    /// Every drill of `project` that has objects on the engine, each with what it left:
    /// a drill whose rbk was killed before its teardown, for a later run to remove with
    /// `remove_drill`. A drill still running in another rbk process is listed too; telling
    /// the two apart (a lock, an age) is the caller's. Other projects' drills are left out,
    /// as for one-off containers.
    pub async fn drill_leftovers(&self, project: &str) -> Result<Vec<DrillLeftovers>> {
        let filters = label_filter(vec![
            LABEL_DRILL.to_string(),
            format!("{LABEL_RBK_PROJECT}={project}"),
        ]);
        let containers = self
            .docker
            .list_containers(Some(ListContainersOptions {
                all: true,
                filters: Some(filters.clone()),
                ..Default::default()
            }))
            .await
            .context("listing drill containers")?;
        let volumes = self
            .docker
            .list_volumes(Some(ListVolumesOptions {
                filters: Some(filters.clone()),
            }))
            .await
            .context("listing drill volumes")?
            .volumes
            .unwrap_or_default();
        let networks = self.drill_networks(filters).await?;

        // One entry per drill id, in id order; the lists keep the engine's order.
        let mut found: BTreeMap<String, DrillLeftovers> = BTreeMap::new();
        for c in containers {
            let name = first_name(c.names, c.id.as_deref().unwrap_or_default());
            entry(&mut found, c.labels, project).containers.push(name);
        }
        for v in volumes {
            entry(&mut found, Some(v.labels), project)
                .volumes
                .push(v.name);
        }
        for n in networks {
            let name = n.name.or(n.id).unwrap_or_default();
            entry(&mut found, n.labels, project).networks.push(name);
        }
        Ok(found.into_values().collect())
    }

    /// The networks matching `filters`.
    async fn drill_networks(
        &self,
        filters: HashMap<String, Vec<String>>,
    ) -> Result<Vec<bollard::models::Network>> {
        self.docker
            .list_networks(Some(ListNetworksOptions {
                filters: Some(filters),
            }))
            .await
            .context("listing drill networks")
    }
}

/// The leftovers of the drill whose id `labels` carry, added to `found` when new.
fn entry<'a>(
    found: &'a mut BTreeMap<String, DrillLeftovers>,
    labels: Option<HashMap<String, String>>,
    project: &str,
) -> &'a mut DrillLeftovers {
    let id = labels
        .and_then(|mut l| l.remove(LABEL_DRILL))
        .unwrap_or_default();
    found.entry(id.clone()).or_insert_with(|| DrillLeftovers {
        drill: Drill {
            id,
            project: project.to_string(),
        },
        containers: Vec::new(),
        volumes: Vec::new(),
        networks: Vec::new(),
    })
}

/// A container's first name without the engine's leading `/`, else its id.
fn first_name(names: Option<Vec<String>>, id: &str) -> String {
    names
        .unwrap_or_default()
        .into_iter()
        .next()
        .map(|n| n.trim_start_matches('/').to_string())
        .unwrap_or_else(|| id.to_string())
}
