//! Drivers for the backup tools under test: rbk (the release binary), and restic and borg when on PATH.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::measure::{Usage, run};

/// Password of every repository the harness creates.
pub const PASSWORD: &str = "rbk-e2e-bench-password";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Rbk,
    Restic,
    Borg,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Rbk => "rbk",
            Kind::Restic => "restic",
            Kind::Borg => "borg",
        }
    }
}

pub struct Tool {
    pub kind: Kind,
    pub bin: PathBuf,
    /// Where the tool keeps caches and keys outside its repository (restic, borg).
    pub home: PathBuf,
    pub version: String,
}

/// What a backup reported.
pub struct Backup {
    pub usage: Usage,
    /// Snapshot id (rbk, restic) or archive name (borg).
    pub id: String,
    /// New bytes the tool says it stored (rbk `bytes_added`, restic `data_added`, borg
    /// `deduplicated_size`).
    pub added: Option<u64>,
    pub chunks: Option<u64>,
    pub new_chunks: Option<u64>,
}

/// Finds `name` on PATH.
pub fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| {
            use std::os::unix::fs::PermissionsExt;
            p.metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

fn version_of(bin: &Path, arg: &str) -> String {
    Command::new(bin)
        .arg(arg)
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.lines().next().map(str::to_string))
        .unwrap_or_else(|| "?".into())
}

impl Tool {
    pub fn new(kind: Kind, bin: PathBuf, home: PathBuf) -> Tool {
        let version = version_of(
            &bin,
            if kind == Kind::Restic {
                "version"
            } else {
                "--version"
            },
        );
        Tool {
            kind,
            bin,
            home,
            version,
        }
    }

    fn command(&self, repo: &Path) -> Command {
        let mut c = Command::new(&self.bin);
        match self.kind {
            Kind::Rbk => {
                for v in [
                    "RBK_REPO",
                    "RBK_PASSWORD_FILE",
                    "RBK_PASSWORD_COMMAND",
                    "RBK_LOG",
                ] {
                    c.env_remove(v);
                }
                c.env("RBK_PASSWORD", PASSWORD).arg("--repo").arg(repo);
            }
            Kind::Restic => {
                for v in [
                    "RESTIC_REPOSITORY",
                    "RESTIC_PASSWORD_FILE",
                    "RESTIC_PASSWORD_COMMAND",
                ] {
                    c.env_remove(v);
                }
                c.env("RESTIC_PASSWORD", PASSWORD)
                    .env("RESTIC_CACHE_DIR", self.home.join("restic-cache"))
                    .arg("--repo")
                    .arg(repo);
            }
            Kind::Borg => {
                for v in ["BORG_REPO", "BORG_PASSCOMMAND", "BORG_PASSPHRASE_FD"] {
                    c.env_remove(v);
                }
                c.env("BORG_PASSPHRASE", PASSWORD)
                    .env("BORG_BASE_DIR", self.home.join("borg-base"))
                    .env("BORG_RELOCATED_REPO_ACCESS_IS_OK", "yes");
            }
        }
        c
    }

    fn borg_archive(repo: &Path, name: &str) -> String {
        format!("{}::{name}", repo.display())
    }

    pub fn init(&self, repo: &Path) -> Result<Usage> {
        let mut c = self.command(repo);
        match self.kind {
            Kind::Rbk => c.args(["--quiet", "init", "--kdf-memory-mib", "64"]),
            Kind::Restic => c.args(["--quiet", "init"]),
            Kind::Borg => c.args(["init", "--encryption", "repokey"]).arg(repo),
        };
        Ok(run(&mut c, &format!("{} init", self.kind.name()))?.usage)
    }

    /// Backs up one file. `name` names borg's archive; `force` makes restic and borg re-read
    /// a file their metadata cache says is unchanged (rbk always reads everything).
    pub fn backup(&self, repo: &Path, file: &Path, name: &str, force: bool) -> Result<Backup> {
        let mut c = self.command(repo);
        match self.kind {
            Kind::Rbk => c.args(["--json", "snapshot", "--path"]).arg(file),
            Kind::Restic => {
                c.args(["backup", "--json", "--host", "bench"]);
                if force {
                    c.arg("--force");
                }
                c.arg(file)
            }
            Kind::Borg => {
                c.args(["create", "--json", "--compression", "zstd,3"]);
                if force {
                    c.args(["--files-cache", "disabled"]);
                }
                c.arg(Self::borg_archive(repo, name)).arg(file)
            }
        };
        let done = run(&mut c, &format!("{} backup {name}", self.kind.name()))?;
        let out = &done.stdout;
        let backup = match self.kind {
            Kind::Rbk => {
                let v: Value = serde_json::from_str(out.trim())
                    .with_context(|| format!("rbk snapshot --json printed {out:?}"))?;
                Backup {
                    usage: done.usage,
                    id: v["id"].as_str().context("no id in rbk's JSON")?.to_string(),
                    added: v["bytes_added"].as_u64(),
                    chunks: v["chunks"].as_u64(),
                    new_chunks: v["new_chunks"].as_u64(),
                }
            }
            Kind::Restic => {
                let summary = out
                    .lines()
                    .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                    .find(|v| v["message_type"] == "summary")
                    .with_context(|| format!("no summary in restic's JSON output:\n{out}"))?;
                Backup {
                    usage: done.usage,
                    id: summary["snapshot_id"]
                        .as_str()
                        .context("no snapshot_id")?
                        .to_string(),
                    added: summary["data_added"].as_u64(),
                    chunks: None,
                    new_chunks: summary["data_blobs"].as_u64(),
                }
            }
            Kind::Borg => {
                let v: Value = serde_json::from_str(out.trim())
                    .with_context(|| format!("borg create --json printed {out:?}"))?;
                Backup {
                    usage: done.usage,
                    id: name.to_string(),
                    added: v["archive"]["stats"]["deduplicated_size"].as_u64(),
                    chunks: None,
                    new_chunks: None,
                }
            }
        };
        Ok(backup)
    }

    /// Restores snapshot `id` into `dir`; returns the usage and the path of `file`'s copy.
    pub fn restore(
        &self,
        repo: &Path,
        id: &str,
        file: &Path,
        dir: &Path,
    ) -> Result<(Usage, PathBuf)> {
        std::fs::create_dir_all(dir)?;
        let mut c = self.command(repo);
        let under_dir = || dir.join(file.strip_prefix("/").unwrap_or(file));
        let restored = match self.kind {
            Kind::Rbk => {
                c.args(["--quiet", "restore", id, "--to"]).arg(dir);
                dir.join(file.file_name().context("input has no file name")?)
            }
            Kind::Restic => {
                c.args(["--quiet", "restore", id, "--target"]).arg(dir);
                under_dir()
            }
            Kind::Borg => {
                c.arg("extract")
                    .arg(Self::borg_archive(repo, id))
                    .current_dir(dir);
                under_dir()
            }
        };
        let done = run(&mut c, &format!("{} restore", self.kind.name()))?;
        if !restored.is_file() {
            bail!(
                "{} restore left no {}",
                self.kind.name(),
                restored.display()
            );
        }
        Ok((done.usage, restored))
    }

    /// rbk only: the fixed cost of a command (open with Argon2id, read the snapshot list).
    pub fn list(&self, repo: &Path) -> Result<Usage> {
        let mut c = self.command(repo);
        c.args(["--quiet", "snapshots"]);
        Ok(run(&mut c, &format!("{} snapshots", self.kind.name()))?.usage)
    }
}
