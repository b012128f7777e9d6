//! Postgres: `pg_dump` and `psql` run inside the `postgres` container, credentials from its environment.

use super::docker::ContainerInfo;

#[derive(Debug, Clone)]
pub struct PgTarget {
    pub user: String,
    pub database: String,
    pub password: Option<String>,
}

impl PgTarget {
    /// As the official image reads them: `POSTGRES_USER` (default `postgres`),
    /// `POSTGRES_DB` (default the user), `POSTGRES_PASSWORD`.
    pub fn from_container(c: &ContainerInfo) -> PgTarget {
        let user = c
            .env_var("POSTGRES_USER")
            .unwrap_or_else(|| "postgres".into());
        PgTarget {
            database: c.env_var("POSTGRES_DB").unwrap_or_else(|| user.clone()),
            password: c.env_var("POSTGRES_PASSWORD"),
            user,
        }
    }

    /// Environment for the exec: the password, so no prompt can appear.
    pub fn env(&self) -> Vec<String> {
        self.password
            .iter()
            .map(|p| format!("PGPASSWORD={p}"))
            .collect()
    }

    /// Plain-format dump: uncompressed, so it deduplicates; rbk compresses chunks itself.
    pub fn dump_command(&self) -> Vec<String> {
        vec![
            "pg_dump".into(),
            "-U".into(),
            self.user.clone(),
            "-d".into(),
            self.database.clone(),
            "--format=plain".into(),
        ]
    }

    /// Drops and recreates the database, so the dump is restored into an empty one.
    pub fn recreate_command(&self) -> Vec<String> {
        let db = quote_ident(&self.database);
        let user = quote_ident(&self.user);
        vec![
            "psql".into(),
            "-U".into(),
            self.user.clone(),
            "-d".into(),
            "postgres".into(),
            "-v".into(),
            "ON_ERROR_STOP=1".into(),
            "-c".into(),
            format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"),
            "-c".into(),
            format!("CREATE DATABASE {db} OWNER {user}"),
        ]
    }

    pub fn restore_command(&self) -> Vec<String> {
        vec![
            "psql".into(),
            "-U".into(),
            self.user.clone(),
            "-d".into(),
            self.database.clone(),
            "-v".into(),
            "ON_ERROR_STOP=1".into(),
            "-q".into(),
        ]
    }
}

fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}
