//! Options every command takes: where the repository is, how to get the password, how to report.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::Args;

use super::password::{PasswordSource, read_password};
use crate::store::Repository;
use crate::store::backend::LocalBackend;

#[derive(Args, Debug)]
pub struct GlobalArgs {
    /// Repository directory (local disk or NAS mount).
    #[arg(long, short = 'r', env = "RBK_REPO", global = true)]
    pub repo: Option<PathBuf>,
    /// Read the password from this file (first line). Also: RBK_PASSWORD.
    #[arg(long, env = "RBK_PASSWORD_FILE", global = true)]
    pub password_file: Option<PathBuf>,
    /// Run this shell command and use its output as the password.
    #[arg(long, env = "RBK_PASSWORD_COMMAND", global = true)]
    pub password_command: Option<String>,
    /// Machine-readable output on stdout.
    #[arg(long, global = true)]
    pub json: bool,
    /// Only errors.
    #[arg(long, short, global = true)]
    pub quiet: bool,
    /// More detail on stderr (repeat for more).
    #[arg(long, short, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
}

impl GlobalArgs {
    pub fn repo_path(&self) -> Result<PathBuf> {
        self.repo
            .clone()
            .context("no repository given: use --repo DIR or set RBK_REPO")
    }

    pub fn backend(&self) -> Result<Arc<LocalBackend>> {
        Ok(Arc::new(LocalBackend::new(self.repo_path()?)))
    }

    pub fn password_source(&self) -> PasswordSource {
        PasswordSource {
            file: self.password_file.clone(),
            command: self.password_command.clone(),
        }
    }

    pub fn open(&self) -> Result<Repository> {
        let backend = self.backend()?;
        let password = read_password(&self.password_source(), false)?;
        Ok(Repository::open(backend, password.as_bytes())?)
    }
}
