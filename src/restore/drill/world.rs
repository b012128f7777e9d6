//! The drill's throwaway stack: one container per service of the production stack, from the images the snapshot recorded, with that service's settings, fresh volumes at the same places and a private network; torn down whatever happens.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tokio::runtime::Handle;

use crate::cancel::Cancel;
use crate::source::docker::{ContainerInfo, ContainerSpec, Drill, DrillMount, Engine, Teardown};

/// What the drill built: its containers (created, not started) by role.
pub(super) struct World {
    pub network: String,
    pub neo4j: Option<ContainerInfo>,
    pub postgres: Option<ContainerInfo>,
    pub rushdb: ContainerInfo,
    /// The image each container runs, by role, for the report.
    pub images: Vec<(String, String)>,
    pub warnings: Vec<String>,
}

/// A production container to copy, the role it plays and the image the snapshot recorded
/// for it.
pub(super) struct Copy<'a> {
    pub role: &'static str,
    pub from: &'a ContainerInfo,
    pub recorded_image: Option<&'a str>,
}

/// Creates the network, then for each service its volumes and its container, all labelled
/// as the drill's. Nothing of the production stack is changed: its containers are only
/// inspected.
pub(super) async fn build(engine: &Engine, drill: &Drill, copies: &[Copy<'_>]) -> Result<World> {
    let network = drill.name("net");
    engine.create_drill_network(drill, &network).await?;
    let (mut neo4j, mut postgres, mut rushdb) = (None, None, None);
    let mut images = Vec::new();
    let mut warnings = Vec::new();
    for copy in copies {
        let c = copy.from;
        let image = match copy.recorded_image {
            Some(recorded) if engine.image_id(recorded).await.is_some() => recorded.to_string(),
            recorded => {
                if let Some(recorded) = recorded {
                    warnings.push(format!(
                        "the image {recorded} the snapshot recorded for {} is not on this engine: the drill runs the stack's current {}",
                        copy.role, c.image
                    ));
                }
                c.image_id.clone()
            }
        };
        let run = engine.run_config(c).await?;
        let mut mounts = Vec::new();
        for (i, m) in c.mounts.iter().enumerate() {
            if m.kind != "volume" {
                warnings.push(format!(
                    "{} of {} is a bind mount ({}): the drill's {} runs without it",
                    m.target, c.name, m.source, copy.role
                ));
                continue;
            }
            let volume = drill.name(&format!("{}-{i}", copy.role));
            engine.create_drill_volume(drill, &volume).await?;
            mounts.push(DrillMount {
                volume,
                target: m.target.clone(),
                read_only: false,
            });
        }
        // The service's name (what the others' settings point at: `bolt://neo4j:7687`) and
        // the container's own, both answered on the drill network only.
        let mut aliases: Vec<String> = c.service.iter().cloned().collect();
        aliases.push(c.name.clone());
        let spec = ContainerSpec {
            image: image.clone(),
            name: drill.name(copy.role),
            env: run.env,
            mounts,
            network: Some(network.clone()),
            aliases,
            entrypoint: run.entrypoint,
            cmd: run.cmd,
            user: run.user,
            working_dir: run.working_dir,
            healthcheck: run.healthcheck,
            ..Default::default()
        };
        let created = engine.prepare_drill_container(drill, &spec).await?;
        images.push((copy.role.to_string(), image));
        match copy.role {
            "neo4j" => neo4j = Some(created),
            "postgres" => postgres = Some(created),
            _ => rushdb = Some(created),
        }
    }
    let Some(rushdb) = rushdb else {
        bail!("the drill copies a stack without a rushdb service");
    };
    Ok(World {
        network,
        neo4j,
        postgres,
        rushdb,
        images,
        warnings,
    })
}

/// Tears the drill down when dropped (an error unwinding, a panic, the end), and at once
/// when the cancel flag is set (SIGINT, SIGTERM): removing the containers also ends a load
/// or a check in flight, whose feeder then fails and unwinds here.
pub(super) struct TeardownGuard {
    rt: Handle,
    engine: Engine,
    drill: Drill,
    done: Arc<AtomicBool>,
    pub removed: Option<Teardown>,
}

/// How often the watcher looks at the cancel flag.
const WATCH_EVERY: Duration = Duration::from_millis(50);

impl TeardownGuard {
    /// Must be called from outside the runtime.
    pub fn new(rt: Handle, engine: Engine, drill: Drill, cancel: Cancel) -> TeardownGuard {
        let done = Arc::new(AtomicBool::new(false));
        // A signal must not end rbk before the drill is gone.
        cancel.hold();
        {
            let (engine, drill, done) = (engine.clone(), drill.clone(), done.clone());
            rt.spawn(async move {
                while !done.load(Ordering::SeqCst) {
                    if cancel.check().is_err() {
                        if let Err(e) = engine.remove_drill(&drill).await {
                            tracing::warn!("tearing down the drill after a signal: {e:#}");
                        }
                        return;
                    }
                    tokio::time::sleep(WATCH_EVERY).await;
                }
            });
        }
        TeardownGuard {
            rt,
            engine,
            drill,
            done,
            removed: None,
        }
    }

    /// Tears down now and reports what went; a second call (or the drop) does nothing more.
    pub fn finish(&mut self) -> Result<Teardown> {
        self.done.store(true, Ordering::SeqCst);
        let removed = self
            .rt
            .block_on(self.engine.remove_drill(&self.drill))
            .context("tearing down the drill")?;
        let total = self.removed.get_or_insert_with(Teardown::default);
        total.containers += removed.containers;
        total.volumes += removed.volumes;
        total.networks += removed.networks;
        Ok(*total)
    }
}

impl Drop for TeardownGuard {
    fn drop(&mut self) {
        if self.removed.is_none()
            && let Err(e) = self.finish()
        {
            tracing::warn!("{e:#}");
        }
    }
}
