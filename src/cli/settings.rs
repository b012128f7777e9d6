//! `rbk.toml`: repository, password and stack settings, below flags and environment in precedence.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Deserialize;

use crate::backup::host::HostConfig;
use crate::source::stack::StackConfig;

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
        toml::from_str(&text)
            .with_context(|| format!("{} is not a valid rbk configuration", path.display()))
    }

    /// The stack settings over the defaults, with `project` from the command line winning.
    pub fn stack_config(&self, project: Option<&str>) -> StackConfig {
        let d = StackConfig::default();
        let s = &self.stack;
        StackConfig {
            project: project.map(str::to_string).or_else(|| s.project.clone()),
            rushdb_service: s.rushdb_service.clone().unwrap_or(d.rushdb_service),
            neo4j_service: s.neo4j_service.clone().unwrap_or(d.neo4j_service),
            postgres_service: s.postgres_service.clone().unwrap_or(d.postgres_service),
            neo4j_database: s.neo4j_database.clone().unwrap_or(d.neo4j_database),
            stop_timeout: s.stop_timeout.unwrap_or(d.stop_timeout),
        }
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
        assert_eq!(s.stack_config(None).project.as_deref(), Some("rushdb"));
        assert_eq!(
            s.stack_config(Some("other")).project.as_deref(),
            Some("other")
        );
        assert_eq!(s.stack_config(None).stop_timeout, 30);
        assert!(toml::from_str::<Settings>("[stack]\nprojet = \"x\"\n").is_err());
    }
}
