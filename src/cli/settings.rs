//! `rbk.toml`: repository, password and stack settings, below flags and environment in precedence.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Deserialize;

use crate::backup::stack::GraphMode;
use crate::source::postgres::PgOverride;
use crate::source::secret::Secret;
use crate::stack::discover::StackConfig;
use crate::stack::host::HostConfig;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub repository: Option<PathBuf>,
    pub password_file: Option<PathBuf>,
    pub password_command: Option<String>,
    #[serde(default)]
    pub stack: StackSettings,
    /// Host mode: a stack outside Compose; when present, `rbk snapshot` uses it.
    pub host: Option<HostConfig>,
    /// A repository on S3-compatible storage (`repository = "s3://BUCKET/PREFIX"`).
    #[serde(default)]
    pub s3: crate::remote::url::S3Settings,
    /// `[metrics] file`: as `--metrics-file`.
    #[serde(default)]
    pub metrics: MetricsSettings,
    /// `[neo4j] mode`: as `--neo4j-mode`.
    #[serde(default)]
    pub neo4j: Neo4jSettings,
    /// `[ping] url`: as `--ping-url`.
    #[serde(default)]
    pub ping: PingSettings,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsSettings {
    pub file: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Neo4jSettings {
    /// How a stack snapshot stores the graph: `dump` (the default) or `volume`.
    pub mode: Option<GraphMode>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PingSettings {
    pub url: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StackSettings {
    pub project: Option<String>,
    pub rushdb_service: Option<String>,
    pub neo4j_service: Option<String>,
    pub postgres_service: Option<String>,
    pub neo4j_database: Option<String>,
    pub stop_timeout: Option<i32>,
    /// Postgres credentials, when the container's environment is not what the database uses.
    pub postgres_user: Option<String>,
    pub postgres_database: Option<String>,
    /// A file whose first line is the Postgres password (`RBK_POSTGRES_PASSWORD` wins).
    pub postgres_password_file: Option<PathBuf>,
    /// Neo4j Enterprise: the user for cypher-shell (default `neo4j`).
    pub neo4j_user: Option<String>,
    /// A file whose first line is the Neo4j password (`RBK_NEO4J_PASSWORD` wins).
    pub neo4j_password_file: Option<PathBuf>,
}

/// A password from the environment variable `var`, else the first line of `file`.
fn secret(var: &str, file: Option<&Path>) -> Result<Option<Secret>> {
    if let Ok(v) = std::env::var(var) {
        return Ok(Some(Secret::new(v)));
    }
    let Some(file) = file else { return Ok(None) };
    let text = zeroize::Zeroizing::new(
        std::fs::read_to_string(file)
            .with_context(|| format!("cannot read the password file {}", file.display()))?,
    );
    Ok(Some(Secret::new(
        text.lines().next().unwrap_or_default().to_string(),
    )))
}

impl Settings {
    /// `--config`, else `RBK_CONFIG` (clap fills both into `explicit`), else
    /// `./rbk.toml` when it exists, else defaults.
    pub fn load(explicit: Option<&Path>) -> Result<Settings> {
        let path = match explicit {
            Some(p) => p.to_path_buf(),
            None => {
                let here = PathBuf::from("rbk.toml");
                if !here.exists() {
                    return Ok(Settings::default());
                }
                here
            }
        };
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        // A setting rbk does not know or cannot read is for the user to fix, as a bad flag is.
        toml::from_str(&text)
            .map_err(|e| crate::usage!("{} is not a valid rbk configuration: {e}", path.display()))
    }

    /// The stack settings over the defaults, with `project` from the command line winning,
    /// and passwords from the environment over files.
    pub fn stack_config(&self, project: Option<&str>) -> Result<StackConfig> {
        let d = StackConfig::default();
        let s = &self.stack;
        let neo4j_password = secret("RBK_NEO4J_PASSWORD", s.neo4j_password_file.as_deref())?;
        Ok(StackConfig {
            postgres: PgOverride {
                user: s.postgres_user.clone(),
                database: s.postgres_database.clone(),
                password: secret("RBK_POSTGRES_PASSWORD", s.postgres_password_file.as_deref())?,
            },
            neo4j_auth: neo4j_password
                .map(|p| (s.neo4j_user.clone().unwrap_or_else(|| "neo4j".into()), p)),
            project: project.map(str::to_string).or_else(|| s.project.clone()),
            rushdb_service: s.rushdb_service.clone().unwrap_or(d.rushdb_service),
            neo4j_service: s.neo4j_service.clone().unwrap_or(d.neo4j_service),
            postgres_service: s.postgres_service.clone().unwrap_or(d.postgres_service),
            neo4j_database: s.neo4j_database.clone().unwrap_or(d.neo4j_database),
            stop_timeout: s.stop_timeout.unwrap_or(d.stop_timeout),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_full_file_and_rejects_typos() {
        let s: Settings = toml::from_str(
            "repository = \"/mnt/nas/rbk\"\npassword_file = \"/root/.rbk-pass\"\n[stack]\nproject = \"rushdb\"\nstop_timeout = 30\n",
        )
        .unwrap();
        let c = s.stack_config(None).unwrap();
        assert_eq!(c.project.as_deref(), Some("rushdb"));
        assert_eq!(
            s.stack_config(Some("other")).unwrap().project.as_deref(),
            Some("other")
        );
        assert_eq!(c.stop_timeout, 30);
        assert!(c.postgres.user.is_none() && c.neo4j_auth.is_none());
        assert!(toml::from_str::<Settings>("[stack]\nprojet = \"x\"\n").is_err());
    }

    #[test]
    fn credentials_come_from_files_and_are_never_printed() {
        let dir = tempfile::tempdir().unwrap();
        let pg = dir.path().join("pg");
        let neo = dir.path().join("neo");
        std::fs::write(&pg, "pg secret\nignored\n").unwrap();
        std::fs::write(&neo, "neo secret\n").unwrap();
        let text = format!(
            "[stack]\npostgres_user = \"rushdb\"\npostgres_database = \"meta\"\npostgres_password_file = {:?}\nneo4j_password_file = {:?}\n",
            pg.display().to_string(),
            neo.display().to_string()
        );
        let s: Settings = toml::from_str(&text).unwrap();
        let c = s.stack_config(None).unwrap();
        assert_eq!(c.postgres.user.as_deref(), Some("rushdb"));
        assert_eq!(c.postgres.database.as_deref(), Some("meta"));
        assert_eq!(c.postgres.password.as_ref().unwrap().expose(), "pg secret");
        let (user, password) = c.neo4j_auth.as_ref().unwrap();
        assert_eq!((user.as_str(), password.expose()), ("neo4j", "neo secret"));
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("pg secret") && !shown.contains("neo secret"),
            "{shown}"
        );
        let missing: Settings =
            toml::from_str("[stack]\nneo4j_password_file = \"/nonexistent/rbk\"\n").unwrap();
        assert!(missing.stack_config(None).is_err());
    }
}
