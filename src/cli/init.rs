//! `rbk init`: create a repository.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;

use super::global::GlobalArgs;
use super::password::{PasswordSource, read_named_password, read_password};
use crate::store::copy::Chunking;
use crate::store::keys::KdfParams;
use crate::store::{InitOptions, Repository};

/// Create a new repository.
///
/// Example: RBK_REPO=/mnt/nas/rbk RBK_PASSWORD_FILE=~/.rbk-pass rbk init
#[derive(Args, Debug)]
pub struct InitArgs {
    /// zstd level for stored chunks (1-22).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(i32).range(1..=22))]
    pub compression: i32,
    /// Argon2id memory in MiB for the key, 8 to 1024 (lower only for small machines).
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(8..=1024))]
    pub kdf_memory_mib: u32,
    /// Chunk like the repository REPO (its chunker parameters and chunking secrets; not its
    /// password or data key), so that `rbk copy` from it moves blobs as they are and they
    /// deduplicate with snapshots taken into this repository directly.
    #[arg(long, value_name = "REPO")]
    pub copy_chunker_params_from: Option<PathBuf>,
    /// Read the password of --copy-chunker-params-from's repository from FILE.
    #[arg(long, value_name = "FILE", requires = "copy_chunker_params_from")]
    pub from_password_file: Option<PathBuf>,
    /// Run CMD with `sh -c` for the password of --copy-chunker-params-from's repository.
    #[arg(long, value_name = "CMD", requires = "copy_chunker_params_from")]
    pub from_password_command: Option<String>,
}

pub fn run(global: &GlobalArgs, args: &InitArgs) -> Result<u8> {
    let local = global.backend()?;
    let backend = crate::store::fault::from_env(local.clone())?;
    // The other repository first: a wrong password there must not follow a prompt here.
    let chunking = match &args.copy_chunker_params_from {
        Some(other) => Some(chunking_of(global, args, other)?),
        None => None,
    };
    let password = read_password(&global.password_source()?, true)?;
    let options = InitOptions {
        kdf: KdfParams {
            memory_kib: args.kdf_memory_mib * 1024,
            ..KdfParams::default()
        },
        compression_level: args.compression,
        chunking,
    };
    let repo = Repository::init(backend, password.as_bytes(), &options)?;
    if global.json {
        super::output::json(&serde_json::json!({
            "repository": local.location(),
            "repo_id": repo.config().repo_id.to_hex(),
            "key": repo.key_name(),
        }));
    } else if !global.quiet {
        println!(
            "created repository {} at {}",
            repo.config().repo_id.short(),
            super::output::esc(&local.location())
        );
        println!("keep the password safe: without it the backups cannot be read");
    }
    Ok(super::exit::OK)
}

/// The chunking of the repository at `other`, opened with its own password.
fn chunking_of(global: &GlobalArgs, args: &InitArgs, other: &Path) -> Result<Chunking> {
    let password = read_named_password(
        &PasswordSource {
            file: args.from_password_file.clone(),
            command: args.from_password_command.clone(),
        },
        "password of the repository to copy the chunker parameters from",
        "--from-password-file or --from-password-command",
        false,
    )?;
    let repo = global
        .open_with(global.backend_at(other)?, password.as_bytes())
        .with_context(|| {
            format!(
                "the repository to copy the chunker parameters from, {}",
                super::output::esc(&other.to_string_lossy())
            )
        })?;
    Ok(repo.chunking())
}
