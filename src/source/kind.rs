//! Store kinds: each stateful store of a stack (the Neo4j graph, a Postgres database, a SQLite file, a volume) as one value that knows its parts, its manifest labels, its line in the plan, and how to produce and consume its streams over a transport.
//!
//! Backup and restore loop over a stack's kinds (built by `stack/kinds.rs`) instead of
//! matching on what each store is: adding a store kind is a file here and a line there.
//! Kinds never see the repository: they hand out [`Stream`]s to store, and take the bytes
//! of their parts from a [`PartFeed`] that restore implements.

pub mod external;
pub mod graph;
pub mod graph_volume;
pub mod postgres;
pub mod sqlite;
pub mod volume;

use std::future::Future;
use std::io::{self, Read, Write};
use std::pin::Pin;

use anyhow::Result;

use super::stream::ByteSender;

/// What a store is to the stack, for plans, failure messages and the order of work: the
/// graph and the SQL metadata are dumped in parallel, volumes one after another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    Graph,
    Sql,
    Volume,
}

impl Role {
    /// "graph dump failed: ..." and the like.
    pub fn failure(self) -> &'static str {
        match self {
            Role::Graph => "graph dump failed",
            Role::Sql => "SQL dump failed",
            Role::Volume => "volume archive failed",
        }
    }
}

/// A future that produces a part's bytes into a sender.
pub type Task = Pin<Box<dyn Future<Output = Result<()>> + Send>>;

/// Where a part's bytes come from when it is stored.
pub enum Source {
    /// Produced on the async runtime into the sender it is given (a container's stdout, a
    /// file copied out of a container).
    Task(Box<dyn FnOnce(ByteSender) -> Task + Send>),
    /// Read on the storing thread (a host process's stdout, a file on this host).
    Reader(Box<dyn Read + Send>),
}

impl Source {
    pub fn task<F, Fut>(f: F) -> Source
    where
        F: FnOnce(ByteSender) -> Fut + Send + 'static,
        Fut: Future<Output = Result<()>> + Send + 'static,
    {
        Source::Task(Box::new(move |tx| Box::pin(f(tx))))
    }
}

/// One part to store.
pub struct Stream {
    pub part: String,
    /// How the manifest names where it came from.
    pub origin: String,
    /// Its size if known beforehand (for progress only).
    pub size: Option<u64>,
    /// Stored byte for byte, without looking for a Neo4j dump to decode.
    pub raw: bool,
    pub source: Source,
}

/// A failure to write a part into a consumer. `consumer_gone`: the consumer stopped
/// reading (a broken pipe), so its own exit says why; otherwise the part could not be read.
#[derive(Debug)]
pub struct FeedError {
    pub consumer_gone: bool,
    pub error: anyhow::Error,
}

impl FeedError {
    pub fn other(error: anyhow::Error) -> FeedError {
        FeedError {
            consumer_gone: false,
            error,
        }
    }

    pub fn from_io(e: io::Error) -> FeedError {
        FeedError {
            consumer_gone: e.kind() == io::ErrorKind::BrokenPipe,
            error: e.into(),
        }
    }
}

/// The bytes of a snapshot's parts, as a restore gives them back (a dump re-encoded into a
/// loadable one), each verified against its recorded hash as it is written.
pub trait PartFeed: Sync {
    /// Whether the snapshot holds the part.
    fn has(&self, part: &str) -> bool;
    /// The part's stored size, for messages.
    fn size(&self, part: &str) -> Option<u64>;
    /// The codec the part was stored with.
    fn codec(&self, part: &str) -> Option<&str>;
    /// A label of the snapshot's manifest.
    fn label(&self, key: &str) -> Option<&str>;
    /// Writes the part into `out`.
    fn write(&self, part: &str, out: &mut dyn Write) -> Result<(), FeedError>;
}

/// A store's restore in words: what is checked before anything stops, and what is done
/// while its writers are stopped.
#[derive(Debug, Clone, Default)]
pub struct RestoreSteps {
    pub before: Vec<String>,
    pub during: Vec<String>,
}

/// One stateful store of a stack, over the transport it was built with.
pub trait StoreKind: Send + Sync {
    fn role(&self) -> Role;
    /// The parts this store is saved as, its main part first; a restore of this store
    /// needs the main part and uses the others when the snapshot has them.
    fn parts(&self) -> Vec<String>;
    /// Manifest labels that say what the store was (image, version, kind).
    fn labels(&self) -> Vec<(String, String)>;
    /// Its line in the printed plan.
    fn plan(&self) -> String;
    /// The container that must be stopped while the store is replaced, if any (Postgres
    /// keeps running: its database is dropped and recreated).
    fn holder(&self) -> Option<&super::docker::ContainerInfo>;
    /// The streams to store, found when asked (a SQLite log is stored only when there is
    /// one), and warnings about what was left out.
    fn streams(&self, rt: &tokio::runtime::Handle) -> Result<(Vec<Stream>, Vec<String>)>;
    /// Whether the snapshot's parts can replace the store, as far as the snapshot and this
    /// host's files tell, without connecting to anything (a dump a newer Neo4j made cannot
    /// load; a SQLite path that is a link). A `--dry-run` runs it. By default nothing.
    fn check(&self, _feed: &dyn PartFeed) -> Result<()> {
        Ok(())
    }
    /// What must be asked of a running server before anything stops (the privileges to
    /// recreate a database). By default nothing.
    fn preflight(&self, _rt: &tokio::runtime::Handle, _feed: &dyn PartFeed) -> Result<()> {
        Ok(())
    }
    /// What a restore does, step by step, for a plan printed before anything runs.
    fn restore_steps(&self, feed: &dyn PartFeed) -> RestoreSteps;
    /// Replaces the store with the snapshot's parts. The caller has stopped
    /// [`holder`](Self::holder). Returns the parts it restored.
    fn consume(&self, rt: &tokio::runtime::Handle, feed: &dyn PartFeed) -> Result<Vec<String>>;
    /// Whether a restore has something to put back: the snapshot holds the main part.
    fn restores_from(&self, feed: &dyn PartFeed) -> bool {
        self.parts().first().is_some_and(|p| feed.has(p))
    }
}
