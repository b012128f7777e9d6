//! Getting the password: a file, a command, the environment, or a prompt that does not echo.
//! Never the password itself as a flag.

use std::ffi::OsString;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::{Context, Result, bail};
use zeroize::{Zeroize, Zeroizing};

/// A password file and a password command, as one level (flags, rbk.toml) gives them.
pub struct PasswordSource {
    pub file: Option<PathBuf>,
    pub command: Option<String>,
}

/// Where the repository password comes from.
#[derive(Debug, PartialEq, Eq)]
pub enum PasswordFrom {
    File(PathBuf),
    Command(String),
    /// `RBK_PASSWORD`.
    Variable,
    Prompt,
}

/// The first source that is set, in this order (README, "Options for every command"):
/// the `--password-file`/`--password-command` flags, `RBK_PASSWORD`,
/// `RBK_PASSWORD_FILE`/`RBK_PASSWORD_COMMAND`, rbk.toml's `password_file`/`password_command`,
/// then the prompt. What the command line says beats what the environment says, and the
/// environment beats the configuration file. A file and a command at the same level is a
/// usage error (as restic's): which one was meant cannot be known. An empty variable counts
/// as unset, except `RBK_PASSWORD`, which then holds an empty password (refused when read).
pub fn choose(flags: PasswordSource, settings: PasswordSource) -> Result<PasswordFrom> {
    if let Some(from) = one_of(flags, "--password-file and --password-command")? {
        return Ok(from);
    }
    if std::env::var_os("RBK_PASSWORD").is_some() {
        return Ok(PasswordFrom::Variable);
    }
    let env = PasswordSource {
        file: variable("RBK_PASSWORD_FILE").map(PathBuf::from),
        command: variable("RBK_PASSWORD_COMMAND")
            .map(|c| {
                c.into_string()
                    .map_err(|_| crate::usage!("RBK_PASSWORD_COMMAND is not valid UTF-8"))
            })
            .transpose()?,
    };
    if let Some(from) = one_of(env, "RBK_PASSWORD_FILE and RBK_PASSWORD_COMMAND")? {
        return Ok(from);
    }
    if let Some(from) = one_of(settings, "rbk.toml's password_file and password_command")? {
        return Ok(from);
    }
    Ok(PasswordFrom::Prompt)
}

fn variable(name: &str) -> Option<OsString> {
    std::env::var_os(name).filter(|v| !v.is_empty())
}

/// The one source a level sets, if any; both is an error naming them (`both`).
fn one_of(level: PasswordSource, both: &str) -> Result<Option<PasswordFrom>> {
    match (level.file, level.command) {
        (Some(_), Some(_)) => Err(crate::usage!(
            "{both} are both set: give a password file or a password command, not both"
        )),
        (Some(file), None) => Ok(Some(PasswordFrom::File(file))),
        (None, Some(command)) => Ok(Some(PasswordFrom::Command(command))),
        (None, None) => Ok(None),
    }
}

/// Reads the password from where `choose` said; the prompt asks on a terminal (twice when
/// `confirm`, for `init`).
pub fn read_password(from: &PasswordFrom, confirm: bool) -> Result<Zeroizing<String>> {
    match from {
        PasswordFrom::File(path) => from_file(path, "password"),
        PasswordFrom::Command(cmd) => from_command(cmd, "password"),
        PasswordFrom::Variable => match std::env::var("RBK_PASSWORD") {
            Ok(p) => non_empty(Zeroizing::new(p), "RBK_PASSWORD"),
            Err(_) => bail!("RBK_PASSWORD is not valid UTF-8"),
        },
        PasswordFrom::Prompt => {
            if !std::io::stdin().is_terminal() {
                return Err(crate::usage!(
                    "no password: give --password-file or --password-command, or set \
                     RBK_PASSWORD, RBK_PASSWORD_FILE or RBK_PASSWORD_COMMAND (no terminal to ask on)"
                ));
            }
            prompt("repository password", confirm)
        }
    }
}

/// A second password, for `rbk key add` and `rbk key passwd`: the file, the
/// command, or a prompt asked twice. Never `RBK_PASSWORD`, which holds the
/// current password.
pub fn read_new_password(src: &PasswordSource) -> Result<Zeroizing<String>> {
    read_named_password(
        src,
        "new password",
        "--new-password-file or --new-password-command",
        true,
    )
}

/// A password that is not this repository's (a new one, another repository's): from
/// `src`, or a prompt on a terminal. `what` names it, `flags` says how to give it.
pub fn read_named_password(
    src: &PasswordSource,
    what: &str,
    flags: &str,
    confirm: bool,
) -> Result<Zeroizing<String>> {
    if src.file.is_some() && src.command.is_some() {
        return Err(crate::usage!(
            "{flags} are both set: give a password file or a password command, not both"
        ));
    }
    if let Some(p) = from_file_or_command(src, what)? {
        return Ok(p);
    }
    if !std::io::stdin().is_terminal() {
        return Err(crate::usage!(
            "no {what}: use {flags} (no terminal to ask on)"
        ));
    }
    prompt(what, confirm)
}

/// `what` names the password in messages ("password", "new password").
fn from_file_or_command(src: &PasswordSource, what: &str) -> Result<Option<Zeroizing<String>>> {
    if let Some(path) = &src.file {
        return from_file(path, what).map(Some);
    }
    if let Some(cmd) = &src.command {
        return from_command(cmd, what).map(Some);
    }
    Ok(None)
}

fn from_file(path: &Path, what: &str) -> Result<Zeroizing<String>> {
    let raw = Zeroizing::new(
        std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the {what} file {}", path.display()))?,
    );
    non_empty(first_line(&raw), &format!("the {what} file"))
}

fn from_command(cmd: &str, what: &str) -> Result<Zeroizing<String>> {
    let out = crate::process::command("sh")
        .arg("-c")
        .arg(cmd)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("cannot run the {what} command {cmd:?}"))?;
    let mut stdout = Zeroizing::new(out.stdout);
    if !out.status.success() {
        bail!("the {what} command {cmd:?} failed ({})", out.status);
    }
    let raw = match String::from_utf8(std::mem::take(&mut *stdout)) {
        Ok(s) => Zeroizing::new(s),
        Err(e) => {
            // The error owns the bytes: wipe them before it is dropped.
            e.into_bytes().zeroize();
            bail!("the {what} command printed invalid UTF-8");
        }
    };
    non_empty(first_line(&raw), &format!("the {what} command"))
}

fn prompt(what: &str, confirm: bool) -> Result<Zeroizing<String>> {
    let first = Zeroizing::new(rpassword::prompt_password(format!("{what}: "))?);
    if confirm {
        let again = Zeroizing::new(rpassword::prompt_password(format!("repeat the {what}: "))?);
        if *first != *again {
            bail!("the passwords do not match");
        }
    }
    non_empty(first, "the prompt")
}

fn first_line(s: &str) -> Zeroizing<String> {
    Zeroizing::new(s.lines().next().unwrap_or("").to_string())
}

fn non_empty(p: Zeroizing<String>, from: &str) -> Result<Zeroizing<String>> {
    if p.is_empty() {
        bail!("the password from {from} is empty");
    }
    Ok(p)
}
