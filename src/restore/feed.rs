//! `SnapshotFeed`: a snapshot's parts as store kinds consume them (`PartFeed`), read from the repository and verified as they are written.

use std::io::{self, Write};

use anyhow::anyhow;

use super::write_part;
use crate::source::kind::{FeedError, PartFeed};
use crate::store::Repository;
use crate::store::StoreError;
use crate::store::index::Index;
use crate::store::manifest::{Part, Snapshot};

pub(crate) struct SnapshotFeed<'a> {
    pub repo: &'a Repository,
    pub index: &'a Index,
    pub snap: &'a Snapshot,
}

impl SnapshotFeed<'_> {
    fn part(&self, name: &str) -> Option<&Part> {
        self.snap.parts.iter().find(|p| p.name == name)
    }
}

impl PartFeed for SnapshotFeed<'_> {
    fn has(&self, part: &str) -> bool {
        self.part(part).is_some()
    }

    fn size(&self, part: &str) -> Option<u64> {
        self.part(part).map(|p| p.stored.size)
    }

    fn codec(&self, part: &str) -> Option<&str> {
        self.part(part).map(|p| p.codec.as_str())
    }

    fn label(&self, key: &str) -> Option<&str> {
        self.snap
            .labels
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn write(&self, name: &str, out: &mut dyn Write) -> Result<(), FeedError> {
        let part = self
            .part(name)
            .ok_or_else(|| FeedError::other(anyhow!("the snapshot has no part {name}")))?;
        write_part(self.repo, self.index, part, out).map_err(|error| FeedError {
            consumer_gone: is_broken_pipe(&error),
            error,
        })
    }
}

/// The consumer stopped reading: its exit status and stderr say why.
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    let pipe = |io: &io::Error| io.kind() == io::ErrorKind::BrokenPipe;
    e.chain().any(|c| {
        c.downcast_ref::<io::Error>().is_some_and(pipe)
            || matches!(c.downcast_ref::<StoreError>(), Some(StoreError::Output(io)) if pipe(io))
    })
}
