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

    /// The configuration's user, database and password over the container's.
    pub fn with_override(mut self, o: &super::stack::PgOverride) -> PgTarget {
        if let Some(u) = &o.user {
            self.user = u.clone();
        }
        if let Some(d) = &o.database {
            self.database = d.clone();
        }
        if let Some(p) = &o.password {
            self.password = Some(p.expose().to_string());
        }
        self
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
            DUMP_FORMAT.into(),
        ]
    }

    /// Drops and recreates the database, so the dump is restored into an empty one.
    pub fn recreate_command(&self) -> Vec<String> {
        let mut c = self.psql(MAINTENANCE_DATABASE);
        c.extend(recreate_args(&self.database, Some(&self.user)));
        c
    }

    pub fn restore_command(&self) -> Vec<String> {
        let mut c = self.psql(&self.database);
        c.extend(restore_args());
        c
    }

    fn psql(&self, database: &str) -> Vec<String> {
        ["psql", "-U", &self.user, "-d", database]
            .map(str::to_string)
            .to_vec()
    }
}

/// Plain format: uncompressed, so it deduplicates; rbk compresses chunks itself.
pub const DUMP_FORMAT: &str = "--format=plain";

/// Where psql connects to drop and recreate a database: a database cannot drop itself.
pub const MAINTENANCE_DATABASE: &str = "postgres";

/// psql arguments, after the connection options (to the maintenance database), that drop and
/// recreate `database`, so a dump is restored into an empty one. Without an `owner` the role
/// that connects owns it.
pub fn recreate_args(database: &str, owner: Option<&str>) -> Vec<String> {
    let db = quote_ident(database);
    let create = match owner {
        Some(o) => format!("CREATE DATABASE {db} OWNER {}", quote_ident(o)),
        None => format!("CREATE DATABASE {db}"),
    };
    vec![
        "-v".into(),
        "ON_ERROR_STOP=1".into(),
        "-c".into(),
        format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"),
        "-c".into(),
        create,
    ]
}

/// psql arguments, after the connection options, that restore a plain dump from stdin and stop
/// at the first error, so a failed restore is reported, never half-applied in silence.
pub fn restore_args() -> Vec<String> {
    ["-v", "ON_ERROR_STOP=1", "-q"].map(str::to_string).to_vec()
}

fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Docker restore's commands, pinned: host mode shares the SQL and flags.
    #[test]
    fn commands_keep_their_exact_form() {
        let t = PgTarget {
            user: "rushdb".into(),
            database: "rush\"db".into(),
            password: None,
        };
        assert_eq!(
            t.recreate_command(),
            [
                "psql",
                "-U",
                "rushdb",
                "-d",
                "postgres",
                "-v",
                "ON_ERROR_STOP=1",
                "-c",
                "DROP DATABASE IF EXISTS \"rush\"\"db\" WITH (FORCE)",
                "-c",
                "CREATE DATABASE \"rush\"\"db\" OWNER \"rushdb\""
            ]
        );
        assert_eq!(
            t.restore_command(),
            [
                "psql",
                "-U",
                "rushdb",
                "-d",
                "rush\"db",
                "-v",
                "ON_ERROR_STOP=1",
                "-q"
            ]
        );
        assert_eq!(
            recreate_args("x", None)[5],
            "CREATE DATABASE \"x\"",
            "without an owner, the connecting role owns it"
        );
    }
}
