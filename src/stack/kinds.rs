//! A stack's stores as store kinds (`source/kind`): what backup and restore loop over, for a Compose stack, a drill's copy of one, or `[host]`.

use anyhow::{Result, anyhow};

use super::discover::{GraphStore, SqlStore, Stack, StackConfig};
use super::host::HostConfig;
use crate::source::docker::{ContainerInfo, Engine};
use crate::source::kind::external::ExternalGraph;
use crate::source::kind::graph::{Neo4jDump, Server};
use crate::source::kind::graph_volume::Neo4jVolume;
use crate::source::kind::postgres::{PgAt, PgDump};
use crate::source::kind::sqlite::{SqliteAt, SqliteFile};
use crate::source::kind::volume::VolumeTar;
use crate::source::kind::{Role, StoreKind};
use crate::source::postgres::PgConnection;
use crate::source::transport::Transport;

pub type Kinds = Vec<Box<dyn StoreKind>>;

/// The stores of a Compose stack: the graph, the SQL metadata, and each named volume that is
/// not dumped in another form (a backup archives those only with `--volumes`; a restore
/// puts back those the snapshot holds). A restored SQLite file gets the owner and mode of
/// the file in `sqlite_owner` (the stack's own `rushdb`, unless a drill says otherwise).
pub fn of_stack(
    engine: &Engine,
    stack: &Stack,
    cfg: &StackConfig,
    sqlite_owner: Option<&ContainerInfo>,
) -> Kinds {
    let mut kinds: Kinds = Vec::new();
    match &stack.graph {
        GraphStore::Bundled {
            container,
            edition,
            version,
        } => {
            let server = Server {
                container: (**container).clone(),
                edition: *edition,
                version: version.clone(),
            };
            // Both modes: a restore takes the one whose part the snapshot holds; a snapshot
            // keeps the one it was asked for.
            let volume = Neo4jVolume::of(engine, &server);
            kinds.push(Box::new(Neo4jDump {
                // Both editions dump and load from a one-off container with Neo4j's volumes,
                // as the database is not in use either way. On Enterprise this rather than
                // `exec` in the running server: removing the one-off (on Ctrl-C or SIGTERM)
                // is what ends a dump that still holds the database, and the engine has no
                // call that kills an exec'd process.
                transport: Transport::OneOff {
                    engine: engine.clone(),
                    container: container.clone(),
                },
                program: "neo4j-admin".into(),
                database: cfg.neo4j_database.clone(),
                server: Some(server),
            }));
            if let Some(volume) = volume {
                kinds.push(Box::new(volume));
            }
        }
        GraphStore::External { uri } => kinds.push(Box::new(ExternalGraph { uri: uri.clone() })),
    }
    match &stack.sql {
        SqlStore::Postgres { container, target } => kinds.push(Box::new(PgDump {
            transport: Transport::Exec {
                engine: engine.clone(),
                container: container.clone(),
            },
            at: PgAt::Container(target.clone()),
        })),
        SqlStore::Sqlite { path, on_volume } => kinds.push(Box::new(SqliteFile {
            at: SqliteAt::Container {
                engine: engine.clone(),
                rushdb: Box::new(stack.rushdb.clone()),
                owner_of: Box::new(sqlite_owner.unwrap_or(&stack.rushdb).clone()),
                on_volume: *on_volume,
            },
            path: path.clone(),
        })),
    }
    for v in &stack.volumes {
        kinds.push(Box::new(VolumeTar {
            engine: engine.clone(),
            name: v.name.clone(),
            owner: (*v.owner).clone(),
            mount: v.mount.clone(),
        }));
    }
    kinds
}

/// The stores `[host]` names, each over host processes and files.
pub fn of_host(host: &HostConfig) -> Result<Kinds> {
    let mut kinds: Kinds = Vec::new();
    if let Some(admin) = &host.neo4j_admin {
        kinds.push(Box::new(Neo4jDump {
            transport: Transport::Host,
            program: admin.clone(),
            database: host.database().to_string(),
            server: None,
        }));
    }
    if let Some(url) = &host.postgres_url {
        // The password to the environment of pg_dump and psql: on their command line `ps`
        // would show it.
        let conn = PgConnection::parse(url).map_err(|e| anyhow!(e))?;
        kinds.push(Box::new(PgDump {
            transport: Transport::Host,
            at: PgAt::Url(conn),
        }));
    }
    if let Some(path) = &host.sqlite_path {
        kinds.push(Box::new(SqliteFile {
            at: SqliteAt::Host(path.clone()),
            path: path.display().to_string(),
        }));
    }
    Ok(kinds)
}

/// The kinds of one role.
pub fn with_role(kinds: &Kinds, role: Role) -> impl Iterator<Item = &dyn StoreKind> {
    kinds
        .iter()
        .map(|k| k.as_ref())
        .filter(move |k| k.role() == role)
}
