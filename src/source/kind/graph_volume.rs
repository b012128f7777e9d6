//! The Neo4j graph as its data volume (volume mode): the store files themselves, archived by a scan that reads again only what changed since the pre-copy, and unpacked into the volume on restore by the same Neo4j version only.
//!
//! Store files are not portable across Neo4j versions (a newer server migrates them on
//! start, an older one refuses them), which is why dump mode stays the default: a dump
//! loads into any later version. The part holds the whole data volume (`/data`): every
//! database (`neo4j`, `system`), their transaction logs and the cluster state, so that the
//! server finds after a restore what it wrote before the pause.

use anyhow::{Result, bail};

use super::graph::{LABEL_VERSION, Server};
use super::volume::unpack;
use super::{PartFeed, RestoreSteps, Role, StoreKind, Stream};
use crate::parts::CODEC_PIECES;
use crate::source::docker::{ContainerInfo, Engine, VolumeMount};
use crate::source::scan::VolumeScan;

/// The part a volume-mode snapshot stores the data volume as.
pub const PART: &str = "neo4j.volume.tar";
/// `volume` in a volume-mode snapshot (absent in a dump-mode one).
pub const LABEL_MODE: &str = "neo4j.mode";
/// The store format the server was configured with (`NEO4J_db_format`), or `default`.
pub const LABEL_STORE_FORMAT: &str = "neo4j.store_format";
/// Where the Neo4j images keep their data (`server.directories.data`).
pub const DATA_DIR: &str = "/data";

pub struct Neo4jVolume {
    pub engine: Engine,
    pub server: Server,
    /// The volume mounted at `/data`.
    pub mount: VolumeMount,
}

impl Neo4jVolume {
    /// The volume mode of a bundled Neo4j: its container must mount a volume at `/data`.
    pub fn of(engine: &Engine, server: &Server) -> Option<Neo4jVolume> {
        let mount = server
            .container
            .mounts
            .iter()
            .find(|m| m.target.trim_end_matches('/') == DATA_DIR)?;
        Some(Neo4jVolume {
            engine: engine.clone(),
            server: server.clone(),
            mount: mount.clone(),
        })
    }

    /// The scan of the data volume: on this host where rbk can read it there, else from a
    /// one-off of the Neo4j container.
    pub fn scanner(&self, rt: &tokio::runtime::Handle) -> VolumeScan {
        VolumeScan {
            engine: self.engine.clone(),
            owner: self.server.container.clone(),
            mount: self.mount.clone(),
            // `RBK_TEST_ONE_OFF_SCAN=1` (a test knob) takes the one-off path here too, so
            // that the Docker tests cover both.
            host_path: match std::env::var("RBK_TEST_ONE_OFF_SCAN").as_deref() {
                Ok("1") => None,
                _ => rt.block_on(self.engine.host_path(&self.mount)),
            },
        }
    }

    fn store_format(&self) -> String {
        self.server
            .container
            .env_var("NEO4J_db_format")
            .filter(|f| !f.is_empty())
            .unwrap_or_else(|| "default".into())
    }
}

impl StoreKind for Neo4jVolume {
    fn role(&self) -> Role {
        Role::Graph
    }

    fn parts(&self) -> Vec<String> {
        vec![PART.into()]
    }

    fn labels(&self) -> Vec<(String, String)> {
        let mut l = self.server.labels();
        l.push((LABEL_MODE.into(), "volume".into()));
        l.push((LABEL_STORE_FORMAT.into(), self.store_format()));
        l
    }

    fn plan(&self) -> String {
        let s = &self.server;
        format!(
            "{} ({}, Neo4j {} {}; volume mode: {} archived while it runs, then what changed with the server stopped, whatever the edition)",
            s.container.name,
            s.container.image,
            s.version.as_deref().unwrap_or("?"),
            s.edition.name(),
            self.mount.source,
        )
    }

    fn holder(&self) -> Option<&ContainerInfo> {
        Some(&self.server.container)
    }

    fn streams(&self, _rt: &tokio::runtime::Handle) -> Result<(Vec<Stream>, Vec<String>)> {
        bail!("a volume-mode graph is stored by its scan, not as a stream")
    }

    fn check(&self, feed: &dyn PartFeed) -> Result<()> {
        if !feed.has(PART) {
            return Ok(());
        }
        if feed.codec(PART) != Some(CODEC_PIECES) {
            bail!("{PART} in the snapshot is not stored in pieces, as volume mode stores it");
        }
        let advice = "store files are not portable across Neo4j versions; restore a dump-mode snapshot (rbk snapshot --neo4j-mode dump) instead, or run the version the snapshot was taken with";
        let recorded = feed.label(LABEL_VERSION);
        let running = self.server.version.as_deref();
        match (recorded, running) {
            (Some(r), Some(n)) if r == n => {}
            (Some(r), Some(n)) => bail!(
                "the snapshot holds the store files of Neo4j {r}; the stack runs Neo4j {n}: {advice}"
            ),
            (None, _) => bail!(
                "the snapshot does not say which Neo4j version wrote its store files: {advice}"
            ),
            (Some(r), None) => bail!(
                "the snapshot holds the store files of Neo4j {r}, and the version the stack runs could not be found: {advice}"
            ),
        }
        let format = self.store_format();
        if let Some(recorded) = feed.label(LABEL_STORE_FORMAT)
            && recorded != format
        {
            bail!(
                "the snapshot holds store files of format {recorded}; the stack's Neo4j is configured for {format} (NEO4J_db_format): {advice}"
            );
        }
        Ok(())
    }

    fn restore_steps(&self, _feed: &dyn PartFeed) -> RestoreSteps {
        RestoreSteps {
            before: vec![format!(
                "check that the stack runs the Neo4j version that wrote {PART}"
            )],
            during: vec![format!(
                "empty volume {} ({}:{DATA_DIR}) and unpack {PART} into it",
                self.mount.source, self.server.container.name
            )],
        }
    }

    fn consume(&self, rt: &tokio::runtime::Handle, feed: &dyn PartFeed) -> Result<Vec<String>> {
        unpack(
            rt,
            &self.engine,
            &self.server.container,
            &self.mount,
            feed,
            PART,
        )?;
        Ok(vec![PART.into()])
    }
}
