//! A Neo4j outside the stack (Aura, a managed server) as a store kind with no part: the manifest records where it is, to pair with that service's own snapshots.

use anyhow::Result;

use super::{PartFeed, RestoreSteps, Role, StoreKind, Stream};
use crate::source::docker::ContainerInfo;

pub const LABEL_URI: &str = "neo4j.external_uri";

pub struct ExternalGraph {
    pub uri: String,
}

impl StoreKind for ExternalGraph {
    fn role(&self) -> Role {
        Role::Graph
    }

    fn parts(&self) -> Vec<String> {
        Vec::new()
    }

    fn labels(&self) -> Vec<(String, String)> {
        vec![(LABEL_URI.into(), self.uri.clone())]
    }

    fn plan(&self) -> String {
        format!(
            "external Neo4j at {}: not dumped; pair with its own snapshot",
            self.uri
        )
    }

    fn holder(&self) -> Option<&ContainerInfo> {
        None
    }

    fn streams(&self, _rt: &tokio::runtime::Handle) -> Result<(Vec<Stream>, Vec<String>)> {
        Ok((Vec::new(), Vec::new()))
    }

    fn restore_steps(&self, _feed: &dyn PartFeed) -> RestoreSteps {
        RestoreSteps::default()
    }

    fn consume(&self, _rt: &tokio::runtime::Handle, _feed: &dyn PartFeed) -> Result<Vec<String>> {
        Ok(Vec::new())
    }
}
