//! Neo4j: the `neo4j-admin` commands for dump and load, `STOP`/`START DATABASE` through cypher-shell, and version and edition from the container.

use std::cmp::Ordering;

use anyhow::{Context, Result};

use super::docker::{ContainerInfo, Engine};
use crate::process::ExitError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Edition {
    /// Must be stopped for a dump: rbk dumps from a one-off container.
    Community,
    /// The server keeps running; only the database is stopped (`STOP DATABASE`) for the dump,
    /// which `neo4j-admin` refuses on a database in use, whatever the edition.
    Enterprise,
}

impl Edition {
    pub fn of(c: &ContainerInfo) -> Edition {
        let enterprise = c
            .env_var("NEO4J_EDITION")
            .is_some_and(|e| e.eq_ignore_ascii_case("enterprise"))
            || c.image.contains("enterprise");
        if enterprise {
            Edition::Enterprise
        } else {
            Edition::Community
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Edition::Community => "community",
            Edition::Enterprise => "enterprise",
        }
    }
}

/// Streams the dump to stdout (Neo4j 5.19 and later, 2025.x, 2026.x); logs go to stderr.
pub fn dump_command(database: &str) -> Vec<String> {
    ["neo4j-admin", "database", "dump", database, "--to-stdout"]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

pub fn load_command(database: &str) -> Vec<String> {
    [
        "neo4j-admin",
        "database",
        "load",
        database,
        "--from-stdin",
        "--overwrite-destination=true",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// A database of a running Neo4j Enterprise server, stopped and started through cypher-shell
/// in that server's container (against `system`, where administration commands run).
#[derive(Debug, Clone)]
pub struct Database {
    pub container: ContainerInfo,
    pub name: String,
    /// From the configuration; else `NEO4J_AUTH` of the container.
    pub auth: Option<(String, super::secret::Secret)>,
}

impl Database {
    pub fn new(
        container: &ContainerInfo,
        name: &str,
        auth: Option<(String, super::secret::Secret)>,
    ) -> Database {
        Database {
            container: container.clone(),
            name: name.to_string(),
            auth,
        }
    }

    /// `STOP DATABASE` (`online == false`) or `START DATABASE`, waiting until it is done.
    /// The credentials go in the exec's environment, never on its command line (which the
    /// engine shows to anyone who can inspect the container) nor in rbk's messages.
    pub async fn set_online(&self, engine: &Engine, online: bool) -> Result<()> {
        let verb = if online { "START" } else { "STOP" };
        let cmd = cypher_shell_command(&format!("{verb} DATABASE {} WAIT", quote_name(&self.name)));
        let env = self.env();
        engine
            .exec_from_stream(&self.container, cmd, env, None)
            .await
            .map_err(|e| match ExitError::find(&e) {
                // Named by its statement and its container: the command line says less.
                Some(failed) => ExitError {
                    what: format!(
                        "`cypher-shell -d system \"{verb} DATABASE {} WAIT\"` in {}",
                        self.name, self.container.name
                    ),
                    status: failed.status,
                    tail: failed.tail.trim().to_string(),
                }
                .into(),
                None => e,
            })?;
        Ok(())
    }

    /// cypher-shell's credentials, for the exec's environment.
    fn env(&self) -> Vec<String> {
        match &self.auth {
            Some((user, password)) => vec![
                format!("NEO4J_USERNAME={user}"),
                format!("NEO4J_PASSWORD={}", password.expose()),
            ],
            None => cypher_shell_env(&self.container),
        }
    }

    /// The database's node and relationship counts, through cypher-shell in the running
    /// server's container: one cypher-shell start for both statements (fed on stdin), and
    /// Neo4j answers both from its counts store, without a scan.
    pub async fn counts(&self, engine: &Engine) -> Result<GraphCounts> {
        let cmd: Vec<String> = [
            "cypher-shell",
            "-d",
            &self.name,
            "--format",
            "plain",
            "--non-interactive",
        ]
        .map(str::to_string)
        .to_vec();
        let out = engine
            .exec_output(
                &self.container,
                cmd,
                self.env(),
                Some(bytes::Bytes::from_static(COUNT_STATEMENTS.as_bytes())),
                COUNT_TIMEOUT,
            )
            .await
            .with_context(|| {
                format!(
                    "counting the graph of {} in {}",
                    self.name, self.container.name
                )
            })?;
        parse_counts(&out)
    }
}

/// The two statements whose answers are a snapshot's graph counts.
const COUNT_STATEMENTS: &str =
    "MATCH (n) RETURN count(n) AS nodes;\nMATCH ()-[r]->() RETURN count(r) AS relationships;\n";

/// cypher-shell starts a JVM; on a loaded host that alone takes seconds.
const COUNT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// A graph's size as Cypher counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct GraphCounts {
    pub nodes: u64,
    pub relationships: u64,
}

/// cypher-shell's plain output for [`COUNT_STATEMENTS`]: each result is its column name on
/// one line and its value on the next (strings quoted, numbers bare).
fn parse_counts(out: &str) -> Result<GraphCounts> {
    let mut nodes = None;
    let mut relationships = None;
    let mut lines = out.lines().map(str::trim).filter(|l| !l.is_empty());
    while let Some(column) = lines.next() {
        let slot = match column {
            "nodes" => &mut nodes,
            "relationships" => &mut relationships,
            _ => continue,
        };
        let value = lines.next().unwrap_or_default();
        *slot = Some(value.parse::<u64>().map_err(|_| {
            anyhow::anyhow!("cypher-shell answered {value:?} for the count of {column}")
        })?);
    }
    match (nodes, relationships) {
        (Some(nodes), Some(relationships)) => Ok(GraphCounts {
            nodes,
            relationships,
        }),
        _ => anyhow::bail!(
            "cypher-shell did not answer both counts; it printed: {}",
            out.chars().take(300).collect::<String>()
        ),
    }
}

fn cypher_shell_command(statement: &str) -> Vec<String> {
    [
        "cypher-shell",
        "-d",
        "system",
        "--format",
        "plain",
        statement,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// A database name as a Cypher identifier: backquoted (names may hold `-` and `.`), with any
/// backquote doubled.
fn quote_name(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

/// `NEO4J_USERNAME`/`NEO4J_PASSWORD` for cypher-shell, from the container's `NEO4J_AUTH`
/// (`user/password`, as the official image takes it). `none` (authentication off) or no
/// `NEO4J_AUTH` at all: nothing, so cypher-shell connects without credentials or with what the
/// container's own environment gives it. `NEO4J_AUTH` only sets the initial password; a
/// password changed since then makes `STOP DATABASE` fail, and with it the snapshot, before
/// anything was dumped.
fn cypher_shell_env(c: &ContainerInfo) -> Vec<String> {
    let Some(auth) = c.env_var("NEO4J_AUTH") else {
        return Vec::new();
    };
    match auth.split_once('/') {
        Some((user, password)) if !auth.eq_ignore_ascii_case("none") => vec![
            format!("NEO4J_USERNAME={user}"),
            format!("NEO4J_PASSWORD={password}"),
        ],
        _ => Vec::new(),
    }
}

/// The Neo4j version a container runs: `NEO4J_VERSION` from its environment,
/// else the image tag (`neo4j:2026.01.4-community` -> `2026.01.4`).
pub fn version_of(c: &ContainerInfo) -> Option<String> {
    if let Some(v) = c.env_var("NEO4J_VERSION") {
        return Some(v);
    }
    let tag = c.image.rsplit_once(':')?.1;
    let v: String = tag
        .chars()
        .take_while(|ch| ch.is_ascii_digit() || *ch == '.')
        .collect();
    (!v.is_empty()).then_some(v)
}

/// Compares dotted versions numerically (`5.26.1` < `2025.01.0`).
pub fn compare_versions(a: &str, b: &str) -> Ordering {
    let parse = |s: &str| -> Vec<u64> { s.split('.').map(|p| p.parse().unwrap_or(0)).collect() };
    parse(a).cmp(&parse(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn container(env: &[&str]) -> ContainerInfo {
        ContainerInfo {
            id: "id".into(),
            name: "p_neo4j_1".into(),
            project: None,
            service: None,
            image: "neo4j:2026.01.4-enterprise".into(),
            image_id: "sha256:x".into(),
            env: env.iter().map(|s| s.to_string()).collect(),
            mounts: Vec::new(),
            running: true,
            drill: None,
        }
    }

    #[test]
    fn counts_are_read_from_plain_output() {
        let c = parse_counts("nodes\n171\nrelationships\n253\n").expect("counts");
        assert_eq!((c.nodes, c.relationships), (171, 253));
        assert!(parse_counts("nodes\n171\n").is_err());
        assert!(parse_counts("nodes\n\"x\"\nrelationships\n1\n").is_err());
    }

    #[test]
    fn credentials_come_from_neo4j_auth_and_never_reach_the_command_line() {
        let c = container(&["NEO4J_AUTH=neo4j/pa/ss word"]);
        assert_eq!(
            cypher_shell_env(&c),
            ["NEO4J_USERNAME=neo4j", "NEO4J_PASSWORD=pa/ss word"]
        );
        assert!(cypher_shell_env(&container(&["NEO4J_AUTH=none"])).is_empty());
        assert!(cypher_shell_env(&container(&[])).is_empty());
        let cmd = cypher_shell_command("STOP DATABASE `neo4j` WAIT");
        assert!(!cmd.iter().any(|a| a.contains("pa/ss")), "{cmd:?}");
        assert_eq!(quote_name("my-db"), "`my-db`");
        assert_eq!(quote_name("a`b"), "`a``b`");
    }

    #[test]
    fn versions_compare_numerically() {
        assert_eq!(compare_versions("5.26.1", "2025.01.0"), Ordering::Less);
        assert_eq!(compare_versions("2026.01.4", "2026.01.4"), Ordering::Equal);
        assert_eq!(compare_versions("5.9", "5.19"), Ordering::Less);
    }
}
