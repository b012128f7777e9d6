//! `rbk key`: list, add, remove and replace the passwords (key files) that open a repository.

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Subcommand};

use super::global::GlobalArgs;
use super::output::{esc, json};
use super::password::{PasswordSource, read_new_password};
use crate::store::keys::{KdfParams, KeyFile};
use crate::store::time::format_unix;

/// Manage the passwords that open the repository (one key file each).
///
/// Every key file wraps the same master key, so any one password opens the
/// repository and changing passwords never re-encrypts data. New passwords
/// come from a file, a command or the terminal, never from an argument.
///
/// Example: rbk key add --new-password-file ~/.rbk-pass-2
#[derive(Args, Debug)]
pub struct KeyArgs {
    #[command(subcommand)]
    pub command: KeyCommand,
}

#[derive(Subcommand, Debug)]
pub enum KeyCommand {
    List(ListArgs),
    Add(AddArgs),
    Remove(RemoveArgs),
    Passwd(PasswdArgs),
}

/// List key files: id (* = the one the current password opened), host, creation time, KDF.
///
/// Example: rbk key list --json | jq -r '.[] | select(.current) | .id'
#[derive(Args, Debug)]
pub struct ListArgs {}

/// Add a password: a new key file wrapping the same master key.
///
/// Example: rbk key add --new-password-command 'pass show backup/rbk-2'
#[derive(Args, Debug)]
pub struct AddArgs {
    #[command(flatten)]
    pub new: NewPasswordArgs,
}

/// Remove a key file by id (any unique prefix).
///
/// The last readable key is never removed. The key the current password
/// opened is removed only with --allow-current (or use `rbk key passwd`).
///
/// Example: rbk key remove 3f2a
#[derive(Args, Debug)]
pub struct RemoveArgs {
    /// The key's id, or a unique prefix of it (see `rbk key list`).
    pub id: String,
    /// Also remove the key the current password opened (check that another password works first).
    #[arg(long)]
    pub allow_current: bool,
}

/// Change the password: add a key for the new one, then remove the key in use.
///
/// A crash in between leaves both keys, never none.
///
/// Example: rbk key passwd --new-password-file ~/.rbk-pass-new
#[derive(Args, Debug)]
pub struct PasswdArgs {
    #[command(flatten)]
    pub new: NewPasswordArgs,
}

/// Where the new password comes from (the prompt asks twice when neither is given).
#[derive(Args, Debug)]
pub struct NewPasswordArgs {
    /// Read the new password from this file (first line).
    #[arg(long, value_name = "FILE", conflicts_with = "new_password_command")]
    pub new_password_file: Option<PathBuf>,
    /// Run this shell command and use the first line it prints as the new password.
    #[arg(long, value_name = "CMD")]
    pub new_password_command: Option<String>,
    /// Argon2id memory in MiB for the new key, 8 to 1024 (lower only for small machines).
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(8..=1024))]
    pub kdf_memory_mib: u32,
}

impl NewPasswordArgs {
    fn source(&self) -> PasswordSource {
        PasswordSource {
            file: self.new_password_file.clone(),
            command: self.new_password_command.clone(),
        }
    }

    fn kdf(&self) -> KdfParams {
        KdfParams {
            memory_kib: self.kdf_memory_mib * 1024,
            ..KdfParams::default()
        }
    }
}

pub fn run(global: &GlobalArgs, args: &KeyArgs) -> Result<u8> {
    match &args.command {
        KeyCommand::List(_) => list(global),
        KeyCommand::Add(a) => add(global, a),
        KeyCommand::Remove(a) => remove(global, a),
        KeyCommand::Passwd(a) => passwd(global, a),
    }
}

fn list(global: &GlobalArgs) -> Result<u8> {
    let repo = global.open()?;
    let keys = repo.list_keys()?;
    let current = repo.key_name();
    // A damaged key file is bytes in the repository that are wrong, even
    // when another key still opens it.
    let code = if keys.iter().any(|(_, k)| k.is_err()) {
        super::exit::DAMAGED
    } else {
        super::exit::OK
    };
    if global.json {
        let items: Vec<serde_json::Value> = keys
            .iter()
            .map(|(name, k)| match k {
                Ok(k) => serde_json::json!({
                    "id": name,
                    "current": name == current,
                    "verified": repo.key_metadata_verified(k) == Some(true),
                    "host": k.host,
                    "created": format_unix(k.created),
                    "created_unix": k.created,
                    "kdf": {
                        "algorithm": "argon2id",
                        "memory_kib": k.kdf.memory_kib,
                        "iterations": k.kdf.iterations,
                        "parallelism": k.kdf.parallelism,
                    },
                }),
                Err(e) => serde_json::json!({
                    "id": name,
                    "current": name == current,
                    "error": e.to_string(),
                }),
            })
            .collect();
        json(&serde_json::Value::Array(items));
    } else {
        println!("  {:<32} {:<16} {:<25} kdf", "id", "host", "created");
        for (name, k) in &keys {
            let mark = if name == current { '*' } else { ' ' };
            match k {
                Ok(k) => {
                    // Unauthenticated metadata is anyone's claim: shown, but not as fact.
                    let (host, created) = match repo.key_metadata_verified(k) {
                        Some(true) => (esc(&k.host).to_string(), format_unix(k.created)),
                        Some(false) => ("(not verifiable)".to_string(), "-".to_string()),
                        None => (
                            format!("{}?", esc(&k.host)),
                            format!("{}?", format_unix(k.created)),
                        ),
                    };
                    println!(
                        "{mark} {:<32} {:<16} {:<25} {}",
                        esc(name),
                        host,
                        created,
                        describe_kdf(k)
                    )
                }
                Err(e) => println!("{mark} {:<32} damaged: {}", esc(name), esc(&e.to_string())),
            }
        }
        println!(
            "{} key(s); * marks the one the current password opened",
            keys.len()
        );
        if keys.iter().any(|(_, k)| {
            k.as_ref()
                .is_ok_and(|k| repo.key_metadata_verified(k) != Some(true))
        }) {
            println!(
                "host and time with ? are unverified (a key file of an older rbk: nothing vouches for them); \
                 (not verifiable): the key file was altered, or it belongs to another master key (an interrupted init, or planted)"
            );
        }
    }
    Ok(code)
}

fn describe_kdf(k: &KeyFile) -> String {
    format!(
        "argon2id {} MiB, {} pass(es), parallelism {}",
        k.kdf.memory_kib / 1024,
        k.kdf.iterations,
        k.kdf.parallelism
    )
}

fn add(global: &GlobalArgs, args: &AddArgs) -> Result<u8> {
    let repo = global.open()?;
    let password = read_new_password(&args.new.source())?;
    let name = repo.add_key(password.as_bytes(), args.new.kdf())?;
    if global.json {
        json(&serde_json::json!({ "added": name }));
    } else if !global.quiet {
        println!("added key {}", esc(&name));
    }
    Ok(super::exit::OK)
}

fn remove(global: &GlobalArgs, args: &RemoveArgs) -> Result<u8> {
    let repo = global.open()?;
    // Exclusive, so two removals cannot each leave only the other's key.
    let _lock = repo.lock(true, "key remove")?;
    let name = repo.find_key(&args.id)?;
    repo.remove_key(&name, args.allow_current)?;
    if global.json {
        json(&serde_json::json!({ "removed": name }));
    } else if !global.quiet {
        println!("removed key {}", esc(&name));
    }
    Ok(super::exit::OK)
}

fn passwd(global: &GlobalArgs, args: &PasswdArgs) -> Result<u8> {
    let mut repo = global.open()?;
    let password = read_new_password(&args.new.source())?;
    let _lock = repo.lock(true, "key passwd")?;
    let (added, removed) = repo.change_password(password.as_bytes(), args.new.kdf())?;
    if global.json {
        json(&serde_json::json!({ "added": added, "removed": removed }));
    } else if !global.quiet {
        println!(
            "added key {} for the new password; removed key {} (the old password)",
            esc(&added),
            esc(&removed)
        );
    }
    Ok(super::exit::OK)
}
