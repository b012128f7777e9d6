//! `rbk restore <id>` in host mode: verify every byte, run the stop commands, load the graph with `neo4j-admin`, restore SQL with `psql` or put the SQLite file back, run the start commands.
//!
//! The plan (which part goes where, by which command) is decided from the
//! snapshot and `[host]` alone, before anything runs; `--dry-run` prints it.
//! `HostPause` (in `backup/host.rs`) owns the start commands, so they run
//! whatever happens once a stop command has run.

use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::thread::JoinHandle;

use anyhow::{Context, Result, anyhow, bail};
use serde::Serialize;

use super::partial::Partial;
use super::{RestoringInto, verify_parts, write_part};
use crate::parts::CODEC_NEO4J_DUMP;
use crate::process::{self, ExitError, StderrTail};
use crate::source::neo4j::load_command;
use crate::source::postgres::{
    MAINTENANCE_DATABASE, PgConnection, percent_decode, recreate_args, restore_args,
};
use crate::stack::host::{HostConfig, HostPause, Service};
use crate::stack::names::{PART_GRAPH, PART_POSTGRES, PART_SQLITE, PART_SQLITE_WAL};
use crate::store::index::Index;
use crate::store::manifest::{Part, Snapshot};
use crate::store::{Id, Repository, StoreError};

/// What a host-mode restore would do, in order; `--dry-run` prints it.
#[derive(Debug, Clone, Serialize)]
pub struct HostRestorePlan {
    pub snapshot: String,
    pub time: String,
    pub parts: Vec<String>,
    pub steps: Vec<String>,
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct HostRestoreReport {
    pub snapshot: String,
    pub restored: Vec<String>,
    /// From the first stop command to the end of the last start command.
    pub downtime_ms: u64,
    pub warnings: Vec<String>,
}

pub enum HostRestoreOutcome {
    Planned(HostRestorePlan),
    Restored(HostRestoreReport),
}

/// A program and its arguments, as run (no shell), and the Postgres password it gets in its
/// environment (never among its arguments, where `ps` would show it).
struct Invocation {
    program: String,
    args: Vec<String>,
    password: Option<String>,
}

impl Invocation {
    fn new(program: &str, args: Vec<String>) -> Invocation {
        Invocation {
            program: program.to_string(),
            args,
            password: None,
        }
    }

    fn with_password(mut self, password: Option<String>) -> Invocation {
        self.password = password;
        self
    }

    /// The process to start, rbk's secrets left out of its environment.
    fn command(&self) -> Command {
        let mut c = process::command(&self.program);
        c.args(&self.args);
        if let Some(p) = &self.password {
            c.env("PGPASSWORD", p);
        }
        c
    }

    /// For plans and errors: shell-quoted, passwords in URLs hidden.
    fn display(&self) -> String {
        std::iter::once(&self.program)
            .chain(&self.args)
            .map(|a| shell_quote(&redact(a)))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Where each stack part of the snapshot goes, decided before anything runs.
struct Targets<'a> {
    graph: Option<(&'a Part, Invocation)>,
    postgres: Option<PgSteps<'a>>,
    sqlite: Option<(&'a Part, PathBuf)>,
}

struct PgSteps<'a> {
    part: &'a Part,
    database: String,
    /// Prints whether the role may create databases and may drop this one.
    check: Invocation,
    recreate: Invocation,
    restore: Invocation,
}

fn part<'a>(s: &'a Snapshot, name: &str) -> Option<&'a Part> {
    s.parts.iter().find(|p| p.name == name)
}

/// Matches the snapshot's parts with what `[host]` can restore; refuses a part that has no
/// place to go. Returns the targets and warnings.
fn resolve<'a>(
    id: &Id,
    snap: &'a Snapshot,
    host: &HostConfig,
) -> Result<(Targets<'a>, Vec<String>)> {
    let short = id.short();
    let (graph, pg, sqlite) = (
        part(snap, PART_GRAPH),
        part(snap, PART_POSTGRES),
        part(snap, PART_SQLITE),
    );
    if graph.is_none() && pg.is_none() && sqlite.is_none() {
        bail!(
            "snapshot {short} holds no stack parts ({PART_GRAPH}, {PART_POSTGRES} or {PART_SQLITE}); use --to DIR"
        );
    }
    let mut warnings = Vec::new();
    if host.pause_command.is_none() {
        warnings.push(
            "[host] has no pause_command: RushDB keeps running while its stores are replaced"
                .into(),
        );
    }
    let graph = match (graph, &host.neo4j_admin) {
        (Some(p), Some(admin)) => {
            if p.codec != CODEC_NEO4J_DUMP {
                bail!("{PART_GRAPH} in snapshot {short} is not stored as a Neo4j dump");
            }
            if host.neo4j_stop_command.is_none() {
                warnings.push("[host] has no neo4j_stop_command: neo4j-admin cannot load into a running Community server".into());
            }
            let args = load_command(host.database()).into_iter().skip(1).collect();
            Some((p, Invocation::new(admin, args)))
        }
        (Some(_), None) => bail!(
            "snapshot {short} holds {PART_GRAPH} but [host] sets no neo4j_admin to load it with"
        ),
        (None, Some(_)) => {
            warnings.push(format!(
                "snapshot {short} has no {PART_GRAPH}: the graph is left as it is"
            ));
            None
        }
        (None, None) => None,
    };
    let postgres = match (pg, &host.postgres_url) {
        (Some(p), Some(url)) => {
            // The password goes to psql's environment, the URL without it on its command line.
            let conn = PgConnection::parse(url).map_err(|e| anyhow!(e))?;
            let (maintenance, database) = split_pg_url(&conn.url)?;
            let connect = |url: &str| vec!["-X".to_string(), format!("--dbname={url}")];
            let mut check = connect(&maintenance);
            check.extend(["-A", "-t", "-c"].map(str::to_string));
            check.push(privileges_query(&database));
            // The role that connects owns the new database: the role that then restores into it.
            let mut recreate = connect(&maintenance);
            recreate.extend(recreate_args(&database, None));
            let mut restore = connect(&conn.url);
            restore.extend(restore_args());
            let psql = |args| Invocation::new("psql", args).with_password(conn.password.clone());
            Some(PgSteps {
                part: p,
                database,
                check: psql(check),
                recreate: psql(recreate),
                restore: psql(restore),
            })
        }
        (Some(_), None) => bail!(
            "snapshot {short} holds a Postgres dump ({PART_POSTGRES}) but [host] sets no postgres_url{}",
            if host.sqlite_path.is_some() {
                " (it uses SQLite)"
            } else {
                ""
            }
        ),
        (None, Some(_)) => {
            warnings.push(format!(
                "snapshot {short} has no {PART_POSTGRES}: the Postgres database is left as it is"
            ));
            None
        }
        (None, None) => None,
    };
    let sqlite = match (sqlite, &host.sqlite_path) {
        (Some(p), Some(path)) => {
            let dir = parent_of(path);
            if !dir.is_dir() {
                bail!(
                    "sqlite_path {}: the directory {} does not exist",
                    path.display(),
                    dir.display()
                );
            }
            replaced_file(path)?;
            Some((p, path.clone()))
        }
        (Some(_), None) => bail!(
            "snapshot {short} holds SQLite metadata ({PART_SQLITE}) but [host] sets no sqlite_path{}",
            if host.postgres_url.is_some() {
                " (it uses Postgres)"
            } else {
                ""
            }
        ),
        (None, Some(_)) => {
            warnings.push(format!(
                "snapshot {short} has no {PART_SQLITE}: the SQLite file is left as it is"
            ));
            None
        }
        (None, None) => None,
    };
    Ok((
        Targets {
            graph,
            postgres,
            sqlite,
        },
        warnings,
    ))
}

fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// The steps `restore_host` takes for these targets, in order, as the plan shows them.
fn steps(snap: &Snapshot, t: &Targets<'_>, host: &HostConfig) -> Vec<String> {
    let run = |s: Service, stop: bool| {
        let (name, c) = if stop {
            (s.stop_name(), host.stop_command(s))
        } else {
            (s.start_name(), host.start_command(s))
        };
        c.map(|c| format!("run the {name}: {c}"))
    };
    let bytes: u64 = snap.parts.iter().map(|p| p.stored.size).sum();
    let names: Vec<&str> = snap.parts.iter().map(|p| p.name.as_str()).collect();
    let mut out = vec![format!(
        "verify every byte of {} ({bytes} bytes) against the hashes taken at backup",
        names.join(", ")
    )];
    if let Some(pg) = &t.postgres {
        out.push(format!(
            "check that the role of postgres_url may drop and create database {:?}",
            pg.database
        ));
    }
    out.extend(run(Service::Writes, true));
    if let Some((p, load)) = &t.graph {
        out.extend(run(Service::Neo4j, true));
        out.push(format!("load {}: {}", p.name, load.display()));
        out.extend(run(Service::Neo4j, false));
    }
    if let Some(pg) = &t.postgres {
        out.push(format!(
            "recreate the database, empty: {}",
            pg.recreate.display()
        ));
        out.push(format!(
            "restore {}: {}",
            pg.part.name,
            pg.restore.display()
        ));
    }
    if let Some((p, path)) = &t.sqlite {
        out.push(format!(
            "put {} back as {} (a temporary file beside it, fsynced, renamed over it; its -wal, -shm and -journal files removed)",
            p.name,
            path.display()
        ));
    }
    out.extend(run(Service::Writes, false));
    out
}

pub fn restore_host(
    repo: &Repository,
    wanted: &str,
    host: &HostConfig,
    dry_run: bool,
    cancel: &crate::cancel::Cancel,
) -> Result<HostRestoreOutcome> {
    let _lock = repo.read_lock("restore (host)")?;
    let (id, snap) = repo.find_snapshot(wanted)?;
    let (targets, warnings) = resolve(&id, &snap, host)?;
    if dry_run {
        return Ok(HostRestoreOutcome::Planned(HostRestorePlan {
            snapshot: id.to_hex(),
            time: snap.time.clone(),
            parts: snap.parts.iter().map(|p| p.name.clone()).collect(),
            steps: steps(&snap, &targets, host),
            warnings,
        }));
    }
    let index = repo.load_index()?;
    verify_parts(repo, &index, &snap.parts)?;
    if let Some(pg) = &targets.postgres {
        check_privileges(pg).with_context(|| format!("before restoring {}", pg.part.name))?;
    }

    let mut pause = HostPause::new(host, cancel.clone())?;
    pause.stop(Service::Writes)?;
    let mut restored = Vec::new();
    if let Some((p, load)) = &targets.graph {
        pause.stop(Service::Neo4j)?;
        feed(repo, &index, p, load).with_context(|| format!("loading {}", p.name))?;
        pause.start(Service::Neo4j)?;
        restored.push(p.name.clone());
    }
    if let Some(pg) = &targets.postgres {
        let name = &pg.part.name;
        run_to_end(&pg.recreate)
            .with_context(|| format!("restoring {name}: recreating the database"))?;
        feed(repo, &index, pg.part, &pg.restore).with_context(|| {
            format!("restoring {name} (the database is now partly restored: fix the cause and restore again)")
        })?;
        restored.push(name.clone());
    }
    if let Some((p, path)) = &targets.sqlite {
        // The log of transactions the file alone lacks (RushDB was killed, not stopped,
        // before that snapshot): put back beside it, where SQLite recovers from it.
        let wal = part(&snap, PART_SQLITE_WAL);
        put_sqlite(repo, &index, p, wal, path).map_err(|e| {
            e.context(RestoringInto {
                what: p.name.clone(),
                dir: parent_of(path).to_path_buf(),
            })
        })?;
        restored.push(p.name.clone());
        restored.extend(wal.map(|w| w.name.clone()));
    }
    pause.finish()?;
    Ok(HostRestoreOutcome::Restored(HostRestoreReport {
        snapshot: id.to_hex(),
        restored,
        downtime_ms: pause.elapsed_ms(),
        warnings,
    }))
}

/// Runs `inv` with the part's bytes (re-encoded for a dump) on its stdin. The command's own
/// failure, with the tail of its stderr, wins over the broken pipe it causes on this side.
fn feed(repo: &Repository, index: &Index, part: &Part, inv: &Invocation) -> Result<()> {
    let mut child = Spawned::new(inv)?;
    let fed = match child.stdin.as_mut() {
        Some(stdin) => write_part(repo, index, part, stdin),
        None => Err(anyhow!("no stdin pipe")),
    };
    match fed {
        // The command stopped reading: its exit status and stderr say why.
        Err(e) if !is_broken_pipe(&e) => {
            // A consumer that saw a clean end of input might take a truncated stream as whole.
            let _ = child.child.kill();
            let _ = child.wait(inv);
            Err(e)
        }
        fed => child.wait(inv).and(fed),
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    let pipe = |io: &io::Error| io.kind() == io::ErrorKind::BrokenPipe;
    e.chain().any(|c| {
        c.downcast_ref::<io::Error>().is_some_and(pipe)
            || matches!(c.downcast_ref::<StoreError>(), Some(StoreError::Output(io)) if pipe(io))
    })
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
fn check_privileges(pg: &PgSteps<'_>) -> Result<()> {
    let out = pg
        .check
        .command()
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot start `{}`", pg.check.program))?;
    if !out.status.success() {
        bail!(
            "`{}` failed ({}): {}",
            pg.check.display(),
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
            "the role of postgres_url does not own database {:?}, so it cannot drop it",
            pg.database
        ),
        other => bail!("unexpected answer {other:?} from `{}`", pg.check.display()),
    }
}

/// Runs `inv` with an empty stdin.
fn run_to_end(inv: &Invocation) -> Result<()> {
    Spawned::new(inv)?.wait(inv)
}

struct Spawned {
    child: Child,
    stdin: Option<ChildStdin>,
    stderr: Option<JoinHandle<()>>,
    tail: StderrTail,
}

impl Spawned {
    fn new(inv: &Invocation) -> Result<Spawned> {
        let mut child = inv
            .command()
            .stdin(Stdio::piped())
            // psql prints the result of every SELECT in a dump; nobody reads it.
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot start `{}`", inv.program))?;
        let stdin = child.stdin.take();
        // Drained on its own thread: a command that fills the stderr pipe while nobody
        // reads it would stop reading its stdin, and both sides would wait forever.
        let tail = StderrTail::default();
        let stderr = child.stderr.take().map(|e| tail.drain_on_thread(e));
        Ok(Spawned {
            child,
            stdin,
            stderr,
            tail,
        })
    }

    /// Closes stdin (the end of input), waits, and turns a failure into an error that names
    /// the command and ends with its stderr.
    fn wait(mut self, inv: &Invocation) -> Result<()> {
        drop(self.stdin.take());
        let status = self
            .child
            .wait()
            .with_context(|| format!("waiting for `{}`", inv.program))?;
        if let Some(t) = self.stderr.take() {
            let _ = t.join();
        }
        if status.success() {
            return Ok(());
        }
        Err(ExitError::command(&inv.display(), status, self.tail.text()).into())
    }
}

/// The owner, group and mode of the file at `path`, which a restore replaces (`None`: there
/// is none). Not followed: a symlink there is refused (rbk would replace the link, not the
/// database it points to, and must not lend a planted link's target its owner), and so is
/// anything but a regular file. Set-id and sticky bits are not kept: the file is data.
fn replaced_file(path: &Path) -> Result<Option<(u32, u32, u32)>> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => bail!(
            "sqlite_path {} is a symbolic link{}: a restore replaces the file at sqlite_path, \
             so set it to the database file itself",
            path.display(),
            fs::read_link(path)
                .map(|t| format!(" (to {})", t.display()))
                .unwrap_or_default()
        ),
        Ok(m) if m.is_file() => Ok(Some((m.uid(), m.gid(), m.mode() & 0o777))),
        Ok(_) => bail!("sqlite_path {} is not a regular file", path.display()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot stat {}", path.display())),
    }
}

/// `path` with `suffix` appended to its file name (`rushdb.db-wal`).
fn side_file(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// Replaces the SQLite file, and puts its WAL beside it when the snapshot has one. Each is
/// written to a temporary file of its own in the directory (`Partial`: a random name,
/// never through a symlink), given the replaced file's owner and mode through the open
/// descriptor (so RushDB can still open it; SQLite gives its WAL the database's), fsynced,
/// and renamed into place; then the directory is fsynced. A crash leaves the old file or
/// the new one. The file's mode is 0600 when there was none to replace.
fn put_sqlite(
    repo: &Repository,
    index: &Index,
    db: &Part,
    wal: Option<&Part>,
    path: &Path,
) -> Result<()> {
    let dir = parent_of(path);
    if path.file_name().is_none() {
        bail!("sqlite_path {} names no file", path.display());
    }
    let owner = replaced_file(path)?;
    let db_tmp = write_temp(repo, index, db, dir, owner)?;
    let wal_tmp = wal
        .map(|w| write_temp(repo, index, w, dir, owner))
        .transpose()?;
    // A write-ahead log or journal left by the old database would be replayed into the
    // new one and corrupt it. Removed before the rename: a crash in between loses only
    // the old database's last transactions, which the restore replaces anyway. Unlinking
    // removes a symlink planted there, never what it points to.
    for suffix in ["-wal", "-shm", "-journal"] {
        let side = side_file(path, suffix);
        match fs::remove_file(&side) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                return Err(e).with_context(|| format!("cannot remove {}", side.display()));
            }
            _ => {}
        }
    }
    // The database first: a crash before the WAL's rename leaves the database as of its
    // last checkpoint, consistent; a WAL beside the old database would be replayed into it.
    db_tmp.persist(path, true)?;
    if let Some(w) = wal_tmp {
        w.persist(&side_file(path, "-wal"), true)?;
    }
    File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("cannot fsync {}", dir.display()))?;
    Ok(())
}

/// One part in a new temporary file in `dir`, with `owner` (uid, gid, mode) when known,
/// fsynced.
fn write_temp(
    repo: &Repository,
    index: &Index,
    part: &Part,
    dir: &Path,
    owner: Option<(u32, u32, u32)>,
) -> Result<Partial> {
    let mut tmp = Partial::create(dir)?;
    if let Some((uid, gid, mode)) = owner {
        // Owner before mode: a change of owner may clear mode bits.
        std::os::unix::fs::fchown(tmp.file(), Some(uid), Some(gid))
            .context("cannot give the restored file the replaced file's owner")?;
        tmp.file()
            .set_permissions(fs::Permissions::from_mode(mode))
            .context("cannot give the restored file the replaced file's mode")?;
    }
    write_part(repo, index, part, tmp.file())?;
    tmp.file().flush()?;
    tmp.file()
        .sync_all()
        .with_context(|| format!("cannot fsync the restored {}", part.name))?;
    Ok(tmp)
}

/// The same URL pointed at the maintenance database of the same server, and the database
/// it names (which a database cannot drop while connected to itself).
fn split_pg_url(url: &str) -> Result<(String, String)> {
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
fn redact(arg: &str) -> String {
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

fn shell_quote(s: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_./:=@,%+*".contains(c);
    if !s.is_empty() && s.chars().all(plain) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
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
        let inv = Invocation::new(
            "psql",
            vec![
                "--dbname=postgres://u:pw@h/postgres".into(),
                "-c".into(),
                "DROP DATABASE \"x\"".into(),
            ],
        );
        assert_eq!(
            inv.display(),
            "psql --dbname=postgres://u:***@h/postgres -c 'DROP DATABASE \"x\"'"
        );
    }
}
