//! Postgres: `pg_dump` and `psql` run inside the `postgres` container, credentials from its environment.

use super::docker::ContainerInfo;
use super::secret::Secret;

/// Settings that win over what the `postgres` container's environment says.
#[derive(Debug, Clone, Default)]
pub struct PgOverride {
    pub user: Option<String>,
    pub database: Option<String>,
    pub password: Option<Secret>,
}

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
    pub fn with_override(mut self, o: &PgOverride) -> PgTarget {
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

    /// Counts the rows of every table of the database in one statement (one snapshot of
    /// the database), printed as NUL-separated `schema.table`, count pairs: table names may
    /// hold any character but NUL. `query_to_xml` runs the per-table `count(*)` inside the
    /// one query; only base tables, not the catalog's.
    pub fn count_rows_command(&self) -> Vec<String> {
        let mut c = self.psql(&self.database);
        c.extend(
            [
                "-X",
                "-q",
                "-A",
                "-t",
                "--field-separator-zero",
                "--record-separator-zero",
                "-v",
                "ON_ERROR_STOP=1",
                "-c",
                COUNT_ROWS,
            ]
            .map(str::to_string),
        );
        c
    }

    fn psql(&self, database: &str) -> Vec<String> {
        ["psql", "-U", &self.user, "-d", database]
            .map(str::to_string)
            .to_vec()
    }
}

/// Rows per SQL table, by `schema.table` (Postgres) or table name (SQLite).
pub type TableRows = std::collections::BTreeMap<String, u64>;

const COUNT_ROWS: &str = "SELECT table_schema || '.' || table_name, \
     (xpath('/row/c/text()', query_to_xml(format('SELECT count(*) AS c FROM %I.%I', \
     table_schema, table_name), false, true, '')))[1]::text \
     FROM information_schema.tables \
     WHERE table_type = 'BASE TABLE' AND table_schema NOT IN ('pg_catalog', 'information_schema') \
     ORDER BY 1";

/// The output of [`PgTarget::count_rows_command`].
pub fn parse_row_counts(out: &str) -> Result<TableRows, String> {
    let mut fields = out.split('\0');
    let mut rows = TableRows::new();
    while let Some(table) = fields.next() {
        // psql ends the last record with a newline or nothing, not a separator.
        let table = table.trim_start_matches('\n');
        if table.is_empty() {
            continue;
        }
        let count = fields.next().map(|c| c.trim()).unwrap_or_default();
        let count = count
            .parse::<u64>()
            .map_err(|_| format!("psql answered {count:?} for the rows of {table}"))?;
        rows.insert(table.to_string(), count);
    }
    Ok(rows)
}

/// Plain format: uncompressed, so it deduplicates; rbk compresses chunks itself.
pub const DUMP_FORMAT: &str = "--format=plain";

/// A host-mode connection string (`postgres_url`) taken apart so that its password never
/// reaches a command line, where `ps` and `/proc/PID/cmdline` show it to every local user:
/// `pg_dump` and `psql` get the string without the password, and the password in their
/// environment as `PGPASSWORD`, which only the process's own user (and root) can read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgConnection {
    /// The connection string without a password.
    pub url: String,
    /// The password it carried (decoded), if any.
    pub password: Option<String>,
}

impl PgConnection {
    /// Takes the password out of a `postgres://` or `postgresql://` URL (`user:PASSWORD@`,
    /// or a `password=` query parameter) or a `key=value` connection string (`password=`).
    /// Anything else is passed as it is, with no password to take. Fails only on a string
    /// whose password cannot be found for sure (bad quoting or percent escapes): rather
    /// than put it on a command line.
    pub fn parse(conninfo: &str) -> Result<PgConnection, String> {
        let rest = conninfo
            .strip_prefix("postgresql://")
            .or_else(|| conninfo.strip_prefix("postgres://"));
        match rest {
            Some(rest) => from_url(&conninfo[..conninfo.len() - rest.len()], rest),
            None if conninfo.contains('=') => from_keywords(conninfo),
            None => Ok(PgConnection {
                url: conninfo.to_string(),
                password: None,
            }),
        }
    }

    /// `PGPASSWORD=...` for the child's environment, if there is a password.
    pub fn env(&self) -> Option<(&'static str, &str)> {
        self.password.as_deref().map(|p| ("PGPASSWORD", p))
    }
}

fn from_url(scheme: &str, rest: &str) -> Result<PgConnection, String> {
    let (before_query, query) = match rest.split_once('?') {
        Some((a, q)) => (a, Some(q)),
        None => (rest, None),
    };
    let (authority, path) = match before_query.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (before_query, None),
    };
    let mut password = None;
    // `user:password@host`: the userinfo ends at the last `@` of the authority.
    let mut url = scheme.to_string();
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, pw)) => {
                password = Some(percent_decode(pw)?);
                url.push_str(&format!("{user}@{host}"));
            }
            None => url.push_str(authority),
        },
        None => url.push_str(authority),
    }
    if let Some(path) = path {
        url.push('/');
        url.push_str(path);
    }
    if let Some(query) = query {
        let mut kept = Vec::new();
        for kv in query.split('&') {
            match kv.split_once('=') {
                // After the userinfo, so it wins, as it does in libpq.
                Some(("password", pw)) => password = Some(percent_decode(pw)?),
                _ => kept.push(kv),
            }
        }
        if !kept.is_empty() {
            url.push('?');
            url.push_str(&kept.join("&"));
        }
    }
    Ok(PgConnection { url, password })
}

/// `host=h password='s e c r e t' dbname=x`: values bare or single-quoted, `\` escaping
/// inside quotes (libpq's rules); the `password` pair is taken out, the rest kept as written.
fn from_keywords(conninfo: &str) -> Result<PgConnection, String> {
    let bad = || "postgres_url: a key=value connection string rbk cannot read".to_string();
    let mut kept = Vec::new();
    let mut password = None;
    let mut chars = conninfo.char_indices().peekable();
    loop {
        while chars.next_if(|(_, c)| c.is_whitespace()).is_some() {}
        let Some(&(start, _)) = chars.peek() else {
            break;
        };
        let mut key = String::new();
        while let Some((_, c)) = chars.next_if(|(_, c)| *c != '=' && !c.is_whitespace()) {
            key.push(c);
        }
        while chars.next_if(|(_, c)| c.is_whitespace()).is_some() {}
        if chars.next().map(|(_, c)| c) != Some('=') {
            return Err(bad());
        }
        while chars.next_if(|(_, c)| c.is_whitespace()).is_some() {}
        let mut value = String::new();
        if chars.next_if(|(_, c)| *c == '\'').is_some() {
            loop {
                match chars.next() {
                    Some((_, '\\')) => value.push(chars.next().ok_or_else(bad)?.1),
                    Some((_, '\'')) => break,
                    Some((_, c)) => value.push(c),
                    None => return Err(bad()),
                }
            }
        } else {
            while let Some((_, c)) = chars.next_if(|(_, c)| !c.is_whitespace()) {
                if c == '\\' {
                    value.push(chars.next().ok_or_else(bad)?.1);
                } else {
                    value.push(c);
                }
            }
        }
        let end = chars.peek().map_or(conninfo.len(), |&(i, _)| i);
        if key == "password" {
            password = Some(value);
        } else {
            kept.push(&conninfo[start..end]);
        }
    }
    Ok(PgConnection {
        url: kept
            .iter()
            .map(|kv| kv.trim_end())
            .collect::<Vec<_>>()
            .join(" "),
        password,
    })
}

/// Decodes `%XX` escapes (URLs carry reserved characters of user names, passwords and
/// database names that way).
pub fn percent_decode(s: &str) -> Result<String, String> {
    let mut out = Vec::with_capacity(s.len());
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        if b == b'%' {
            let hex: Vec<u8> = bytes.by_ref().take(2).collect();
            let v = std::str::from_utf8(&hex)
                .ok()
                .filter(|h| h.len() == 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| "a bad percent escape in postgres_url".to_string())?;
            out.push(v);
        } else {
            out.push(b);
        }
    }
    String::from_utf8(out).map_err(|_| "postgres_url is not UTF-8 once decoded".to_string())
}

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

    #[test]
    fn row_counts_are_read_from_nul_separated_pairs() {
        let rows = parse_row_counts("public.a|b\x003\x00public.heartbeat\x0017\n").expect("rows");
        assert_eq!(rows.get("public.a|b"), Some(&3));
        assert_eq!(rows.get("public.heartbeat"), Some(&17));
        assert_eq!(rows.len(), 2);
        assert!(parse_row_counts("").expect("none").is_empty());
        assert!(parse_row_counts("public.x\x00many\x00").is_err());
        assert!(parse_row_counts("public.x").is_err());
    }

    #[test]
    fn passwords_come_out_of_connection_strings() {
        let c = |s: &str| PgConnection::parse(s).unwrap();
        assert_eq!(
            c("postgres://rushdb:s3%2Fcr%40t@db.local:5433/rush%20db?sslmode=disable"),
            PgConnection {
                url: "postgres://rushdb@db.local:5433/rush%20db?sslmode=disable".into(),
                password: Some("s3/cr@t".into()),
            }
        );
        assert_eq!(
            c("postgresql://u@h/db?password=p%26w&application_name=rbk"),
            PgConnection {
                url: "postgresql://u@h/db?application_name=rbk".into(),
                password: Some("p&w".into()),
            }
        );
        assert_eq!(
            c("postgres://u:first@h/db?password=second")
                .password
                .as_deref(),
            Some("second"),
            "the query parameter wins, as in libpq"
        );
        assert_eq!(
            c("postgres://u@h:5432"),
            PgConnection {
                url: "postgres://u@h:5432".into(),
                password: None,
            }
        );
        assert_eq!(
            c(r"host=h  password='it\'s a \\ secret' dbname=rushdb user=u"),
            PgConnection {
                url: "host=h dbname=rushdb user=u".into(),
                password: Some(r"it's a \ secret".into()),
            }
        );
        assert_eq!(c("password=bare host=h").password.as_deref(), Some("bare"));
        assert_eq!(c("rushdb").url, "rushdb", "a database name alone");
        for bad in [
            "postgres://u:bad%zz@h/db",
            "host=h password='unterminated",
            "host=h password",
        ] {
            assert!(PgConnection::parse(bad).is_err(), "{bad}");
        }
    }

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
