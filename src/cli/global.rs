//! Options every command takes: where the repository is, how to get the password, how to report.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Result;
use clap::Args;

use super::password::{PasswordFrom, PasswordSource, choose, read_password};
use super::progress::{ProgressMode, reporter};
use super::settings::Settings;
use crate::remote::s3::S3Backend;
use crate::remote::url::{Location, s3_config};
use crate::store::Repository;
use crate::store::backend::{Backend, LocalBackend};
use crate::store::repo::ReadLocking;

#[derive(Args, Debug)]
// Under their own heading in every command's --help, after the command's own options.
#[command(next_help_heading = "Global options")]
pub struct GlobalArgs {
    /// Configuration file (default: ./rbk.toml when present).
    #[arg(long, env = "RBK_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    /// Repository: a directory (local disk or NAS mount), or s3://BUCKET/PREFIX on
    /// S3-compatible storage (credentials and endpoint from AWS_ACCESS_KEY_ID,
    /// AWS_SECRET_ACCESS_KEY, AWS_REGION, AWS_ENDPOINT_URL, or [s3] in rbk.toml).
    #[arg(long, short = 'r', env = "RBK_REPO", global = true)]
    pub repo: Option<PathBuf>,
    /// Read the password from the first line of FILE. The password comes from the first of:
    /// --password-file or --password-command, RBK_PASSWORD, RBK_PASSWORD_FILE or
    /// RBK_PASSWORD_COMMAND, rbk.toml, a prompt; a file and a command together is an error.
    // No `env =`: clap would merge the variable into the flag, and a flag must beat
    // RBK_PASSWORD while the variable must not (password.rs `choose`).
    #[arg(
        long,
        value_name = "FILE",
        global = true,
        conflicts_with = "password_command"
    )]
    pub password_file: Option<PathBuf>,
    /// Run CMD with `sh -c` and use the first line it prints as the password
    /// (see --password-file for the order of the sources).
    #[arg(long, value_name = "CMD", global = true)]
    pub password_command: Option<String>,
    /// Machine-readable output on stdout.
    #[arg(long, global = true)]
    pub json: bool,
    /// Only errors.
    #[arg(long, short, global = true)]
    pub quiet: bool,
    /// Progress of long operations on stderr: bars when stderr is a terminal
    /// (auto), JSON lines (json), or none.
    #[arg(
        long,
        value_enum,
        env = "RBK_PROGRESS",
        default_value = "auto",
        global = true
    )]
    pub progress: ProgressMode,
    /// Read without taking the repository's lock (restore, check, verify, snapshots, stats,
    /// diff, key list only; verify then records no verdict): for a repository on a read-only
    /// mount, or one this user may read but not write. A read-only filesystem is detected and read this way by itself, with a
    /// warning. A prune running meanwhile may remove data being read (the read then fails).
    #[arg(long, global = true)]
    pub no_lock: bool,
    /// snapshot, restore, prune, check, verify, copy: keep Prometheus metrics of their runs
    /// in FILE (text format, for node_exporter's textfile collector; replaced atomically;
    /// one file may serve them all). Also `[metrics] file` in rbk.toml.
    #[arg(long, value_name = "FILE", env = "RBK_METRICS_FILE", global = true)]
    pub metrics_file: Option<PathBuf>,
    /// snapshot, restore, prune, check, verify, copy: tell a dead-man monitor
    /// (healthchecks.io, Uptime Kuma) about each run: URL/start when it begins, URL on
    /// success, URL/fail with the error's last lines on failure; 10 s at most each, and a
    /// ping that fails is only a warning. Also `[ping] url` in rbk.toml.
    #[arg(long, value_name = "URL", env = "RBK_PING_URL", global = true)]
    pub ping_url: Option<String>,
    /// More detail on stderr (repeat for more).
    #[arg(long, short, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
}

impl GlobalArgs {
    pub fn settings(&self) -> Result<Settings> {
        Settings::load(self.config.as_deref())
    }

    pub fn repo_path(&self) -> Result<PathBuf> {
        if let Some(r) = &self.repo {
            return Ok(r.clone());
        }
        self.settings()?.repository.ok_or_else(|| {
            crate::usage!(
                "no repository given: use --repo DIR, set RBK_REPO, or `repository` in rbk.toml"
            )
        })
    }

    /// The repository's backend: a directory, or a bucket for `s3://BUCKET/PREFIX`.
    pub fn backend(&self) -> Result<Arc<dyn Backend>> {
        self.backend_at(&self.repo_path()?)
    }

    /// The backend of a repository at `location` (this one's, or another's for `copy`).
    pub fn backend_at(&self, location: &std::path::Path) -> Result<Arc<dyn Backend>> {
        Ok(
            match Location::parse(location).map_err(|e| crate::usage!("{e:#}"))? {
                Location::Local(path) => Arc::new(LocalBackend::new(path)),
                Location::S3 { bucket, prefix } => {
                    let settings = self.settings()?;
                    Arc::new(S3Backend::new(&s3_config(&bucket, &prefix, &settings.s3)?)?)
                }
            },
        )
    }

    /// Where the repository password comes from (password.rs `choose` has the order).
    pub fn password_source(&self) -> Result<PasswordFrom> {
        let settings = self.settings()?;
        choose(
            PasswordSource {
                file: self.password_file.clone(),
                command: self.password_command.clone(),
            },
            PasswordSource {
                file: settings.password_file,
                command: settings.password_command,
            },
        )
    }

    pub fn open(&self) -> Result<Repository> {
        let backend = crate::store::fault::from_env(self.backend()?)?;
        let password = read_password(&self.password_source()?, false)?;
        self.open_with(backend, password.as_bytes())
    }

    /// Opens the repository `backend` holds with `password`, reporting as this command does.
    pub fn open_with(&self, backend: Arc<dyn Backend>, password: &[u8]) -> Result<Repository> {
        let mut repo = Repository::open(backend, password)?;
        repo.set_progress(reporter(self.progress, self.quiet));
        if self.no_lock {
            repo.set_read_locking(ReadLocking::Skip);
        }
        Ok(repo)
    }

    /// Says so when a reading command found the repository on a read-only filesystem and
    /// read it without a lock.
    pub fn warn_if_read_unlocked(&self, repo: &Repository) {
        if repo.read_without_lock_on_read_only_fs() && !self.quiet {
            eprintln!(
                "warning: the repository is on a read-only filesystem, so this command read it without a lock (--no-lock)"
            );
        }
    }
}
