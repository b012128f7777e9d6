//! `rbk init`: create a repository.

use anyhow::Result;
use clap::Args;

use super::global::GlobalArgs;
use super::password::read_password;
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
}

pub fn run(global: &GlobalArgs, args: &InitArgs) -> Result<u8> {
    let local = global.backend()?;
    let backend = crate::store::fault::from_env(local.clone())?;
    let password = read_password(&global.password_source()?, true)?;
    let options = InitOptions {
        kdf: KdfParams {
            memory_kib: args.kdf_memory_mib * 1024,
            ..KdfParams::default()
        },
        compression_level: args.compression,
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
