//! Finding the RushDB stack: containers by Compose labels, and what each store is.

use anyhow::{Result, bail};

use crate::source::docker::{ContainerInfo, Engine, LABEL_PROJECT, LABEL_SERVICE, VolumeMount};
use crate::source::neo4j::{Edition, version_of};
use crate::source::postgres::{PgOverride, PgTarget};
use crate::source::secret::Secret;
use crate::source::sqlite::resolve_path;

/// The key RushDB's image falls back to; secrets encrypted with it are not secret.
pub const DEFAULT_RUSHDB_KEY: &str = "32SymbolStringForTokenEncryption";
pub const KEY_VAR: &str = "RUSHDB_AES_256_ENCRYPTION_KEY";

/// How to find the stack; every field has a default that fits RushDB's bundled Compose file.
#[derive(Debug, Clone)]
pub struct StackConfig {
    /// Compose project; found from the `rushdb` service's labels when absent.
    pub project: Option<String>,
    pub rushdb_service: String,
    pub neo4j_service: String,
    pub postgres_service: String,
    pub neo4j_database: String,
    /// Seconds `docker stop` waits before the engine kills a container.
    pub stop_timeout: i32,
    /// What to use instead of the `postgres` container's environment.
    pub postgres: PgOverride,
    /// cypher-shell credentials for Neo4j Enterprise instead of `NEO4J_AUTH`
    /// (which only sets the first password).
    pub neo4j_auth: Option<(String, Secret)>,
}

impl Default for StackConfig {
    fn default() -> Self {
        StackConfig {
            project: None,
            rushdb_service: "rushdb".into(),
            neo4j_service: "neo4j".into(),
            postgres_service: "postgres".into(),
            neo4j_database: "neo4j".into(),
            stop_timeout: 60,
            postgres: PgOverride::default(),
            neo4j_auth: None,
        }
    }
}

#[derive(Debug, Clone)]
pub enum GraphStore {
    /// A Neo4j container in the stack.
    Bundled {
        container: Box<ContainerInfo>,
        edition: Edition,
        version: Option<String>,
    },
    /// Neo4j elsewhere (Aura, a managed server): no dump, the manifest
    /// records where and when, to pair with that service's own snapshots.
    External { uri: String },
}

#[derive(Debug, Clone)]
pub enum SqlStore {
    Postgres {
        container: Box<ContainerInfo>,
        target: PgTarget,
    },
    /// The file lives in the `rushdb` container, on a volume or not.
    Sqlite { path: String, on_volume: bool },
}

/// A named volume `rbk snapshot --volumes` archives: one of `rushdb`'s or Neo4j's, other
/// than those whose contents rbk dumps anyway (Neo4j's data volume, the volume holding the
/// SQLite file). Postgres's volumes are left out: its data volume is dumped, and rbk never
/// stops Postgres, so nothing else on it could be copied or restored consistently.
#[derive(Debug, Clone)]
pub struct StackVolume {
    /// The volume's Compose name (`rushdb-uploads`), else its engine name: stable across
    /// project names, so a snapshot restores into a stack brought up under another name.
    pub name: String,
    /// The container that mounts it (`rushdb` or `neo4j`). rbk stops it while restoring the
    /// volume, and while copying it unless it is Neo4j Enterprise (whose server keeps running;
    /// only its database is stopped for the dump).
    pub owner: Box<ContainerInfo>,
    pub mount: VolumeMount,
}

#[derive(Debug, Clone)]
pub struct Stack {
    pub project: String,
    pub rushdb: ContainerInfo,
    pub graph: GraphStore,
    pub sql: SqlStore,
    pub volumes: Vec<StackVolume>,
    /// Why a volume is not in `volumes` (its archive name is taken): a warning for
    /// `--volumes`, which would otherwise leave it out silently.
    pub volumes_left_out: Vec<String>,
}

impl Stack {
    /// Problems worth a warning but not a refusal.
    pub fn warnings(&self) -> Vec<String> {
        let mut w = Vec::new();
        match self.rushdb.env_var(KEY_VAR) {
            None => w.push(format!(
                "{KEY_VAR} is not set on {}: RushDB falls back to its built-in default key, so its stored secrets are not secret; set your own key and keep it outside the backup",
                self.rushdb.name
            )),
            Some(k) if k == DEFAULT_RUSHDB_KEY => w.push(format!(
                "{KEY_VAR} on {} is RushDB's published default: set your own key and keep it outside the backup",
                self.rushdb.name
            )),
            Some(_) => {}
        }
        if let SqlStore::Sqlite {
            path,
            on_volume: false,
        } = &self.sql
        {
            w.push(format!(
                "the SQLite metadata {path} is in {}'s container layer, not on a volume: it is lost whenever the container is recreated",
                self.rushdb.name
            ));
        }
        w
    }
}

/// Finds the stack by Compose labels, and says what it found or why not.
pub async fn discover(engine: &Engine, cfg: &StackConfig) -> Result<Stack> {
    let project = match &cfg.project {
        Some(p) => p.clone(),
        None => {
            let found = engine
                .containers_with_labels(&[format!("{LABEL_SERVICE}={}", cfg.rushdb_service)])
                .await?;
            let mut projects: Vec<String> =
                found.iter().filter_map(|c| c.project.clone()).collect();
            projects.sort();
            projects.dedup();
            match projects.as_slice() {
                [one] => one.clone(),
                [] => bail!(
                    "no container with the label {LABEL_SERVICE}={}: is the stack running under Docker Compose? (set `project` in rbk.toml, or use host mode)",
                    cfg.rushdb_service
                ),
                many => bail!(
                    "several Compose projects have a `{}` service ({}): choose one with --project or `project` in rbk.toml",
                    cfg.rushdb_service,
                    many.join(", ")
                ),
            }
        }
    };
    let in_project = engine
        .containers_with_labels(&[format!("{LABEL_PROJECT}={project}")])
        .await?;
    let service = |name: &str| -> Result<Option<ContainerInfo>> {
        let mut matches = in_project
            .iter()
            .filter(|c| c.service.as_deref() == Some(name));
        let first = matches.next().cloned();
        if matches.next().is_some() {
            bail!(
                "project {project} has several `{name}` containers (scaled?); rbk needs exactly one"
            );
        }
        Ok(first)
    };
    let Some(rushdb) = service(&cfg.rushdb_service)? else {
        bail!("project {project} has no `{}` service", cfg.rushdb_service);
    };
    let graph = match service(&cfg.neo4j_service)? {
        Some(container) => GraphStore::Bundled {
            edition: Edition::of(&container),
            version: version_of(&container),
            container: Box::new(container),
        },
        None => GraphStore::External {
            uri: rushdb
                .env_var("NEO4J_URL")
                .unwrap_or_else(|| "(NEO4J_URL not set)".into()),
        },
    };
    let sql = if rushdb
        .env_var("SQL_DB_TYPE")
        .is_some_and(|t| t.eq_ignore_ascii_case("sqlite"))
    {
        let path = resolve_path(rushdb.env_var("SQL_DB_PATH").as_deref());
        SqlStore::Sqlite {
            on_volume: rushdb.mount_for(&path).is_some(),
            path,
        }
    } else {
        let Some(container) = service(&cfg.postgres_service)? else {
            bail!(
                "project {project} has no `{}` service, and {} is not set to SQLite (SQL_DB_TYPE)",
                cfg.postgres_service,
                rushdb.name
            );
        };
        SqlStore::Postgres {
            target: PgTarget::from_container(&container).with_override(&cfg.postgres),
            container: Box::new(container),
        }
    };
    let (volumes, volumes_left_out) = volumes_of(engine, &rushdb, &graph, &sql).await?;
    Ok(Stack {
        project,
        rushdb,
        graph,
        sql,
        volumes,
        volumes_left_out,
    })
}

/// The named volumes of `rushdb` and Neo4j that are not dumped in another form, and a
/// message for each one left out.
async fn volumes_of(
    engine: &Engine,
    rushdb: &ContainerInfo,
    graph: &GraphStore,
    sql: &SqlStore,
) -> Result<(Vec<StackVolume>, Vec<String>)> {
    let mut skip: Vec<&str> = Vec::new();
    if let SqlStore::Sqlite { path, .. } = sql
        && let Some(m) = rushdb.mount_for(path)
    {
        skip.push(&m.source);
    }
    let mut owners = vec![rushdb];
    if let GraphStore::Bundled { container, .. } = graph {
        let data = container
            .env_var("NEO4J_server_directories_data")
            .unwrap_or_else(|| "/data".into());
        if let Some(m) = container.mount_for(&data) {
            skip.push(&m.source);
        }
        owners.push(container);
    }
    let mut out: Vec<StackVolume> = Vec::new();
    let mut left_out = Vec::new();
    for owner in owners {
        for m in owner.mounts.iter().filter(|m| m.kind == "volume") {
            if skip.contains(&m.source.as_str()) || out.iter().any(|v| v.mount.source == m.source) {
                continue;
            }
            let mut name = engine
                .compose_volume_name(&m.source)
                .await?
                .unwrap_or_else(|| m.source.clone());
            // Compose names are unique within a project, but an external volume goes by its
            // engine name, which may equal one of them: then the later one goes by its engine
            // name, and if even that is taken it is left out rather than fail every command.
            if out.iter().any(|v| v.name == name) {
                name = m.source.clone();
            }
            if out.iter().any(|v| v.name == name) {
                left_out.push(format!(
                    "volume {} would be archived under the name {name}, which another volume has; left out of --volumes",
                    m.source
                ));
                continue;
            }
            out.push(StackVolume {
                name,
                owner: Box::new(owner.clone()),
                mount: m.clone(),
            });
        }
    }
    Ok((out, left_out))
}
