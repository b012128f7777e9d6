//! The Neo4j graph as a store kind: `neo4j-admin database dump --to-stdout` and `load --from-stdin`, in a one-off container of the Neo4j service or on this host.

use anyhow::{Context, Result, bail};

use super::{PartFeed, RestoreSteps, Role, StoreKind, Stream};
use crate::parts::CODEC_NEO4J_DUMP;
use crate::source::docker::ContainerInfo;
use crate::source::neo4j::{Edition, compare_versions, dump_command, load_command};
use crate::source::transport::{Cmd, Transport};

/// The part a graph dump is stored as (and `restore --to DIR` writes).
pub const PART: &str = "neo4j.dump";
pub const LABEL_IMAGE: &str = "neo4j.image";
pub const LABEL_VERSION: &str = "neo4j.version";
pub const LABEL_EDITION: &str = "neo4j.edition";

/// A Neo4j server of a Compose stack, as the plan and the labels describe it.
#[derive(Debug, Clone)]
pub struct Server {
    pub container: ContainerInfo,
    pub edition: Edition,
    pub version: Option<String>,
}

impl Server {
    /// What the manifest records of it: image, edition, version.
    pub fn labels(&self) -> Vec<(String, String)> {
        let mut l = vec![
            (LABEL_IMAGE.into(), self.container.image.clone()),
            (LABEL_EDITION.into(), self.edition.name().into()),
        ];
        if let Some(v) = &self.version {
            l.push((LABEL_VERSION.into(), v.clone()));
        }
        l
    }
}

pub struct Neo4jDump {
    /// A one-off container of the Neo4j service (the database is stopped either way:
    /// `neo4j-admin` refuses one in use), or this host.
    pub transport: Transport,
    /// `neo4j-admin`, or the path `[host] neo4j_admin` gives.
    pub program: String,
    pub database: String,
    /// In a Compose stack: the server, for labels, the plan and the version check.
    pub server: Option<Server>,
}

impl Neo4jDump {
    fn cmd(&self, argv: Vec<String>) -> Cmd {
        let mut argv = argv;
        argv[0] = self.program.clone();
        Cmd::new(argv)
    }

    fn load(&self) -> Cmd {
        self.cmd(load_command(&self.database))
    }
}

impl StoreKind for Neo4jDump {
    fn role(&self) -> Role {
        Role::Graph
    }

    fn parts(&self) -> Vec<String> {
        vec![PART.into()]
    }

    fn labels(&self) -> Vec<(String, String)> {
        self.server.as_ref().map(Server::labels).unwrap_or_default()
    }

    fn plan(&self) -> String {
        let Some(s) = &self.server else {
            return format!("{}: database dump {}", self.program, self.database);
        };
        format!(
            "{} ({}, Neo4j {} {}; {})",
            s.container.name,
            s.container.image,
            s.version.as_deref().unwrap_or("?"),
            s.edition.name(),
            match s.edition {
                Edition::Community => "stopped for an offline dump",
                Edition::Enterprise if s.container.running =>
                    "the server keeps running; its database is stopped (STOP DATABASE) for the dump",
                Edition::Enterprise => "not running: dumped as it is",
            }
        )
    }

    fn holder(&self) -> Option<&ContainerInfo> {
        self.server.as_ref().map(|s| &s.container)
    }

    fn streams(&self, _rt: &tokio::runtime::Handle) -> Result<(Vec<Stream>, Vec<String>)> {
        let cmd = self.cmd(dump_command(&self.database));
        let stream = Stream {
            part: PART.into(),
            origin: self.transport.origin(&cmd),
            size: None,
            // Looked at: a Neo4j dump is decoded so that its inner tar deduplicates.
            raw: false,
            source: self.transport.produce(cmd)?,
        };
        Ok((vec![stream], Vec::new()))
    }

    fn check(&self, feed: &dyn PartFeed) -> Result<()> {
        if !feed.has(PART) {
            return Ok(());
        }
        if feed.codec(PART) != Some(CODEC_NEO4J_DUMP) {
            bail!("{PART} in the snapshot is not stored as a Neo4j dump");
        }
        let running = self.server.as_ref().and_then(|s| s.version.as_deref());
        if let (Some(dumped), Some(running)) = (feed.label(LABEL_VERSION), running)
            && compare_versions(running, dumped).is_lt()
        {
            bail!(
                "the dump was made by Neo4j {dumped}; the stack runs the older {running}, which cannot load it"
            );
        }
        Ok(())
    }

    fn restore_steps(&self, _feed: &dyn PartFeed) -> RestoreSteps {
        RestoreSteps {
            before: Vec::new(),
            during: vec![format!("load {PART}: {}", self.load().shown())],
        }
    }

    fn consume(&self, rt: &tokio::runtime::Handle, feed: &dyn PartFeed) -> Result<Vec<String>> {
        self.transport
            .feed(rt, self.load(), |out| feed.write(PART, out))
            .with_context(|| format!("loading {PART}"))?;
        Ok(vec![PART.into()])
    }
}
