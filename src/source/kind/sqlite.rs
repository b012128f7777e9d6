//! The SQLite metadata as a store kind: the database file (and the write-ahead log a killed RushDB left) copied out while RushDB is stopped, and put back with an empty `-shm`; in the `rushdb` container or on this host.

mod host;

use std::path::PathBuf;

use anyhow::{Context, Result, anyhow};

use super::{PartFeed, RestoreSteps, Role, Source, StoreKind, Stream};
use crate::codec::tar::{Owner, TarBuilder};
use crate::source::docker::{ContainerInfo, Engine};

/// The part the database file is stored as.
pub const PART: &str = "rushdb.db";
/// The SQLite write-ahead log beside the file, when one was left (RushDB killed rather than
/// stopped): committed transactions may live only there, so the file without it is not a
/// consistent copy.
pub const PART_WAL: &str = "rushdb.db-wal";
pub const LABEL_SQLITE_PATH: &str = "sqlite.path";

/// Where the file is.
#[derive(Clone)]
pub enum SqliteAt {
    /// At `path` in `rushdb` (on a volume or in its container layer); the engine's archive
    /// API reads and writes it whether the container runs or not.
    Container {
        engine: Engine,
        rushdb: Box<ContainerInfo>,
        /// The container whose file's owner and mode a restored file gets: `rushdb`, or for a
        /// drill (whose fresh volume has no file yet) the production one.
        owner_of: Box<ContainerInfo>,
        on_volume: bool,
    },
    /// At this path on this host (`[host] sqlite_path`; `path` is its display).
    Host(PathBuf),
}

pub struct SqliteFile {
    pub at: SqliteAt,
    /// The path in the container, or the host path as messages show it.
    pub path: String,
}

impl SqliteFile {
    fn wal_path(&self) -> String {
        format!("{}-wal", self.path)
    }
}

impl StoreKind for SqliteFile {
    fn role(&self) -> Role {
        Role::Sql
    }

    fn parts(&self) -> Vec<String> {
        vec![PART.into(), PART_WAL.into()]
    }

    fn labels(&self) -> Vec<(String, String)> {
        match &self.at {
            SqliteAt::Container { .. } => vec![
                (super::postgres::LABEL_SQL_KIND.into(), "sqlite".into()),
                (LABEL_SQLITE_PATH.into(), self.path.clone()),
            ],
            SqliteAt::Host(_) => Vec::new(),
        }
    }

    fn plan(&self) -> String {
        match &self.at {
            SqliteAt::Container {
                rushdb, on_volume, ..
            } => format!(
                "SQLite {} in {} ({})",
                self.path,
                rushdb.name,
                if *on_volume {
                    "on a volume"
                } else {
                    "in the container layer"
                }
            ),
            SqliteAt::Host(_) => format!("SQLite {}", self.path),
        }
    }

    fn holder(&self) -> Option<&ContainerInfo> {
        match &self.at {
            SqliteAt::Container { rushdb, .. } => Some(rushdb),
            SqliteAt::Host(_) => None,
        }
    }

    fn streams(&self, rt: &tokio::runtime::Handle) -> Result<(Vec<Stream>, Vec<String>)> {
        let (engine, rushdb) = match &self.at {
            SqliteAt::Container { engine, rushdb, .. } => (engine, rushdb),
            SqliteAt::Host(path) => return host::streams(path),
        };
        let mut out = Vec::new();
        // For progress only: the copy is read to its end whatever it says.
        let size = rt
            .block_on(engine.file_size(rushdb, &self.path))
            .ok()
            .flatten();
        out.push(copy_out(engine, rushdb, &self.path, PART, size));
        // The log, if RushDB left a non-empty one (it was killed, not stopped): stored as
        // its own part, so that a restore puts back the pair SQLite recovers from.
        let wal = self.wal_path();
        if let Some(size) = rt.block_on(engine.file_size(rushdb, &wal))?
            && size > 0
        {
            out.push(copy_out(engine, rushdb, &wal, PART_WAL, Some(size)));
        }
        Ok((out, Vec::new()))
    }

    fn check(&self, feed: &dyn PartFeed) -> Result<()> {
        match &self.at {
            SqliteAt::Host(path) if feed.has(PART) => host::preflight(path),
            _ => Ok(()),
        }
    }

    fn restore_steps(&self, _feed: &dyn PartFeed) -> RestoreSteps {
        RestoreSteps {
            before: Vec::new(),
            during: vec![match self.at {
                SqliteAt::Host(_) => format!(
                    "put {PART} back as {} (a temporary file beside it, fsynced, renamed over it; its -wal, -shm and -journal files removed)",
                    self.path
                ),
                SqliteAt::Container { .. } => format!(
                    "put {PART} back as {} (with its -wal if the snapshot has one, and an empty -shm)",
                    self.path
                ),
            }],
        }
    }

    fn consume(&self, rt: &tokio::runtime::Handle, feed: &dyn PartFeed) -> Result<Vec<String>> {
        let mut restored = vec![PART.to_string()];
        if feed.has(PART_WAL) {
            restored.push(PART_WAL.into());
        }
        match &self.at {
            SqliteAt::Host(path) => host::put(feed, path)?,
            SqliteAt::Container {
                engine,
                rushdb,
                owner_of,
                ..
            } => put_in_container(rt, engine, feed, rushdb, owner_of, &self.path)?,
        }
        Ok(restored)
    }
}

fn copy_out(
    engine: &Engine,
    c: &ContainerInfo,
    path: &str,
    part: &str,
    size: Option<u64>,
) -> Stream {
    let (engine, c, p) = (engine.clone(), c.clone(), path.to_string());
    Stream {
        part: part.into(),
        origin: format!("docker:{}:{path}", c.name),
        size,
        // A SQLite file is not a Neo4j dump: stored as it is.
        raw: true,
        source: Source::task(move |tx| async move { engine.download_file(&c, &p, tx).await }),
    }
}

/// Puts the SQLite file (and its WAL, and an empty `-shm`) at `path` in `rushdb`, owned as
/// the file at `path` in `owner_of` is. One tar: a stale WAL or shared-memory file left
/// beside the old file would otherwise be replayed into the restored one. An empty WAL is a
/// valid "no WAL" to SQLite.
fn put_in_container(
    rt: &tokio::runtime::Handle,
    engine: &Engine,
    feed: &dyn PartFeed,
    rushdb: &ContainerInfo,
    owner_of: &ContainerInfo,
    path: &str,
) -> Result<()> {
    let (dir, name) = path
        .rsplit_once('/')
        .ok_or_else(|| anyhow!("SQL_DB_PATH {path} is not absolute"))?;
    // The file keeps the owner and mode it has now (RushDB may run as a user that must be
    // able to write it), without set-id bits; with no regular file there, root's and private.
    let owner = rt
        .block_on(engine.file_owner(owner_of, path))?
        .map(|o| Owner {
            mode: o.mode & 0o777,
            ..o
        })
        .unwrap_or(Owner {
            mode: 0o600,
            ..Owner::ROOT_FILE
        });
    let mut builder = TarBuilder::new(Vec::new());
    let mut add = |file: &str, part: Option<&str>| -> Result<()> {
        let mut bytes = Vec::new();
        if let Some(p) = part {
            feed.write(p, &mut bytes).map_err(|e| e.error)?;
        }
        builder.append_owned(file, bytes.len() as u64, &bytes[..], owner)?;
        Ok(())
    };
    add(name, Some(PART))?;
    add(
        &format!("{name}-wal"),
        feed.has(PART_WAL).then_some(PART_WAL),
    )?;
    add(&format!("{name}-shm"), None)?;
    let tar = bytes::Bytes::from(builder.finish()?);
    rt.block_on(engine.upload_tar(rushdb, if dir.is_empty() { "/" } else { dir }, tar))
        .with_context(|| format!("restoring {PART}"))
}
