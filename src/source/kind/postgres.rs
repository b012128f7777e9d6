//! A Postgres database as a store kind: `pg_dump` out, then `psql` into a database dropped and recreated empty; in the `postgres` container or on this host against a URL.

use std::process::Stdio;

use anyhow::{Context, Result, anyhow, bail};

use super::{PartFeed, RestoreSteps, Role, StoreKind, Stream};
use crate::source::docker::ContainerInfo;
use crate::source::postgres::{
    DUMP_FORMAT, MAINTENANCE_DATABASE, PgConnection, PgTarget, percent_decode, recreate_args,
    restore_args,
};
use crate::source::transport::{Cmd, Transport};

/// The part a pg_dump is stored as.
pub const PART: &str = "metadata.sql";
pub const LABEL_SQL_KIND: &str = "sql.kind";
pub const LABEL_SQL_IMAGE: &str = "sql.image";

/// How the database is reached.
#[derive(Debug, Clone)]
pub enum PgAt {
    /// In the `postgres` container (`Transport::Exec`), as its own user.
    Container(PgTarget),
    /// On this host, by `[host] postgres_url`: the URL without its password on the
    /// command line, the password in the environment.
    Url(PgConnection),
}

pub struct PgDump {
    pub transport: Transport,
    pub at: PgAt,
}

/// The commands of a restore, decided before anything runs.
struct Steps {
    /// Host mode: prints whether the role may create databases and may drop this one.
    check: Option<Cmd>,
    recreate: Cmd,
    restore: Cmd,
    database: String,
}

impl PgDump {
    fn password_env(&self) -> Vec<(String, String)> {
        let password = match &self.at {
            PgAt::Container(t) => t.password.clone(),
            PgAt::Url(c) => c.password.clone(),
        };
        password
            .map(|p| ("PGPASSWORD".to_string(), p))
            .into_iter()
            .collect()
    }

    fn dump(&self) -> Cmd {
        let argv = match &self.at {
            PgAt::Container(t) => t.dump_command(),
            PgAt::Url(c) => vec![
                "pg_dump".into(),
                DUMP_FORMAT.into(),
                format!("--dbname={}", c.url),
            ],
        };
        Cmd::new(argv).with_env(self.password_env())
    }

    fn steps(&self) -> Result<Steps> {
        let env = self.password_env();
        let cmd = |argv: Vec<String>| Cmd::new(argv).with_env(env.clone());
        Ok(match &self.at {
            PgAt::Container(t) => Steps {
                check: None,
                recreate: cmd(t.recreate_command()),
                restore: cmd(t.restore_command()),
                database: t.database.clone(),
            },
            PgAt::Url(c) => {
                let (maintenance, database) = split_pg_url(&c.url)?;
                let psql = |url: &str, rest: Vec<String>| {
                    let mut argv = vec!["psql".to_string(), "-X".into(), format!("--dbname={url}")];
                    argv.extend(rest);
                    cmd(argv)
                };
                let mut check = vec!["-A".to_string(), "-t".into(), "-c".into()];
                check.push(privileges_query(&database));
                Steps {
                    check: Some(psql(&maintenance, check)),
                    // The role that connects owns the new database: the role that then
                    // restores into it.
                    recreate: psql(&maintenance, recreate_args(&database, None)),
                    restore: psql(&c.url, restore_args()),
                    database,
                }
            }
        })
    }
}

impl StoreKind for PgDump {
    fn role(&self) -> Role {
        Role::Sql
    }

    fn parts(&self) -> Vec<String> {
        vec![PART.into()]
    }

    fn labels(&self) -> Vec<(String, String)> {
        match self.transport.container() {
            Some(c) => vec![
                (LABEL_SQL_KIND.into(), "postgres".into()),
                (LABEL_SQL_IMAGE.into(), c.image.clone()),
            ],
            None => Vec::new(),
        }
    }

    fn plan(&self) -> String {
        match (&self.at, self.transport.container()) {
            (PgAt::Container(t), Some(c)) => format!(
                "{} ({}): pg_dump -U {} {}",
                c.name, c.image, t.user, t.database
            ),
            _ => format!("pg_dump {}", self.dump().shown()),
        }
    }

    fn holder(&self) -> Option<&ContainerInfo> {
        // Postgres keeps running: pg_dump reads one snapshot of the database, and a
        // restore drops and recreates the database through the server.
        None
    }

    fn streams(&self, _rt: &tokio::runtime::Handle) -> Result<(Vec<Stream>, Vec<String>)> {
        let cmd = self.dump();
        let origin = match self.transport {
            // The URL names the server and the role: the origin keeps to the program.
            Transport::Host => "command:pg_dump".to_string(),
            _ => self.transport.origin(&cmd),
        };
        let stream = Stream {
            part: PART.into(),
            origin,
            size: None,
            // A plain dump deduplicates as it is.
            raw: true,
            source: self.transport.produce(cmd)?,
        };
        Ok((vec![stream], Vec::new()))
    }

    fn preflight(&self, _rt: &tokio::runtime::Handle, feed: &dyn PartFeed) -> Result<()> {
        if !feed.has(PART) {
            return Ok(());
        }
        let steps = self.steps()?;
        if let Some(check) = &steps.check {
            check_privileges(check, &steps.database)
                .with_context(|| format!("before restoring {PART}"))?;
        }
        Ok(())
    }

    fn restore_steps(&self, _feed: &dyn PartFeed) -> RestoreSteps {
        let Ok(steps) = self.steps() else {
            return RestoreSteps::default();
        };
        RestoreSteps {
            before: steps
                .check
                .iter()
                .map(|_| {
                    format!(
                        "check that the role of postgres_url may drop and create database {:?}",
                        steps.database
                    )
                })
                .collect(),
            during: vec![
                format!("recreate the database, empty: {}", steps.recreate.shown()),
                format!("restore {PART}: {}", steps.restore.shown()),
            ],
        }
    }

    fn consume(&self, rt: &tokio::runtime::Handle, feed: &dyn PartFeed) -> Result<Vec<String>> {
        let steps = self.steps()?;
        self.transport
            .run(rt, steps.recreate)
            .with_context(|| format!("restoring {PART}: recreating the database"))?;
        self.transport
            .feed(rt, steps.restore, |out| feed.write(PART, out))
            .with_context(|| {
                format!(
                    "restoring {PART} (the database is now partly restored: fix the cause and restore again)"
                )
            })?;
        Ok(vec![PART.into()])
    }
}

/// `t|t`: the role may create databases | may drop `database` (it owns it, or is a member
/// of its owner, or is a superuser; true when the database does not exist yet).
fn privileges_query(database: &str) -> String {
    let literal = format!("'{}'", database.replace('\'', "''"));
    format!(
        "select r.rolsuper or r.rolcreatedb, \
         coalesce(r.rolsuper or pg_has_role(d.datdba, 'MEMBER'), true) \
         from pg_roles r left join pg_database d on d.datname = {literal} \
         where r.rolname = current_user"
    )
}

/// Connects to the server and checks the privileges the recreation needs, before anything
/// stops: without them the database would be dropped and not created again.
fn check_privileges(check: &Cmd, database: &str) -> Result<()> {
    let (program, args) = check
        .argv
        .split_first()
        .ok_or_else(|| anyhow!("an empty command"))?;
    let out = crate::process::command(program)
        .args(args)
        .envs(check.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot start `{program}`"))?;
    if !out.status.success() {
        bail!(
            "`{}` failed ({}): {}",
            check.shown(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    match String::from_utf8_lossy(&out.stdout).trim() {
        "t|t" => Ok(()),
        "f|t" | "f|f" => bail!(
            "the role of postgres_url may not create databases: give it CREATEDB (ALTER ROLE ... CREATEDB)"
        ),
        "t|f" => bail!(
            "the role of postgres_url does not own database {database:?}, so it cannot drop it"
        ),
        other => bail!("unexpected answer {other:?} from `{}`", check.shown()),
    }
}

/// The same URL pointed at the maintenance database of the same server, and the database
/// it names (which a database cannot drop while connected to itself).
pub fn split_pg_url(url: &str) -> Result<(String, String)> {
    let rest = url
        .strip_prefix("postgresql://")
        .or_else(|| url.strip_prefix("postgres://"))
        .ok_or_else(|| {
            anyhow!(
                "postgres_url {} must be a postgres:// URL to restore into",
                redact(url)
            )
        })?;
    let scheme = &url[..url.len() - rest.len()];
    let (before_query, query) = match rest.split_once('?') {
        Some((a, q)) => (a, Some(q)),
        None => (rest, None),
    };
    let (authority, path) = before_query.split_once('/').unwrap_or((before_query, ""));
    let database = percent_decode(path).map_err(|e| anyhow!(e))?;
    if database.is_empty() {
        bail!(
            "postgres_url {} names no database (postgres://user@host/DATABASE)",
            redact(url)
        );
    }
    if let Some(q) = query
        && q.split('&').any(|kv| kv.starts_with("dbname="))
    {
        bail!(
            "postgres_url {}: name the database in the path, not with dbname=",
            redact(url)
        );
    }
    let query = query.map(|q| format!("?{q}")).unwrap_or_default();
    Ok((
        format!("{scheme}{authority}/{MAINTENANCE_DATABASE}{query}"),
        database,
    ))
}

/// A URL (or `--dbname=URL`) with the password replaced by `***`.
pub fn redact(arg: &str) -> String {
    let Some(start) = arg.find("://").map(|i| i + 3) else {
        return arg.to_string();
    };
    let end = arg[start..].find('/').map_or(arg.len(), |i| start + i);
    let Some(at) = arg[start..end].rfind('@').map(|i| start + i) else {
        return arg.to_string();
    };
    match arg[start..at].find(':') {
        Some(colon) => format!("{}:***{}", &arg[..start + colon], &arg[at..]),
        None => arg.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_urls_split_into_maintenance_and_database() {
        let (m, d) = split_pg_url("postgres://rushdb:s3cret@db.local:5433/rush%20db").unwrap();
        assert_eq!(m, "postgres://rushdb:s3cret@db.local:5433/postgres");
        assert_eq!(d, "rush db");
        let (m, d) =
            split_pg_url("postgresql:///rushdb?host=/var/run/postgresql&sslmode=disable").unwrap();
        assert_eq!(
            m,
            "postgresql:///postgres?host=/var/run/postgresql&sslmode=disable"
        );
        assert_eq!(d, "rushdb");
        for bad in [
            "host=localhost dbname=rushdb",
            "postgres://localhost",
            "postgres://localhost/",
            "postgres://h/x?dbname=y",
            "postgres://h/bad%zz",
        ] {
            assert!(split_pg_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn passwords_never_show() {
        assert_eq!(
            redact("--dbname=postgres://rushdb:s3cret@h:5432/db"),
            "--dbname=postgres://rushdb:***@h:5432/db"
        );
        assert_eq!(redact("postgres://rushdb@h/db"), "postgres://rushdb@h/db");
        assert_eq!(redact("-c"), "-c");
        let kind = PgDump {
            transport: Transport::Host,
            at: PgAt::Url(PgConnection::parse("postgres://u:pw@h/x").unwrap()),
        };
        let steps = kind.steps().unwrap();
        assert_eq!(
            steps.recreate.shown(),
            "psql -X --dbname=postgres://u@h/postgres -v ON_ERROR_STOP=1 -c 'DROP DATABASE IF EXISTS \"x\" WITH (FORCE)' -c 'CREATE DATABASE \"x\"'"
        );
        assert!(format!("{:?}", steps.restore).contains("PGPASSWORD"));
        assert!(!format!("{:?}", steps.restore).contains("pw"));
    }
}
