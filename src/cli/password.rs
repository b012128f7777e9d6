//! Getting the password: environment, file, command, or a prompt that does not echo. Never a flag.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::{Context, Result, bail};
use zeroize::{Zeroize, Zeroizing};

pub struct PasswordSource {
    pub file: Option<PathBuf>,
    pub command: Option<String>,
}

/// In order: `RBK_PASSWORD`, the file, the command, then a prompt on a
/// terminal (twice when `confirm`, for `init`).
pub fn read_password(src: &PasswordSource, confirm: bool) -> Result<Zeroizing<String>> {
    if let Ok(p) = std::env::var("RBK_PASSWORD") {
        return non_empty(Zeroizing::new(p), "RBK_PASSWORD");
    }
    if let Some(p) = from_file_or_command(src, "password")? {
        return Ok(p);
    }
    if !std::io::stdin().is_terminal() {
        bail!(
            "no password: set RBK_PASSWORD, RBK_PASSWORD_FILE or RBK_PASSWORD_COMMAND (no terminal to ask on)"
        );
    }
    prompt("repository password", confirm)
}

/// A second password, for `rbk key add` and `rbk key passwd`: the file, the
/// command, or a prompt asked twice. Never `RBK_PASSWORD`, which holds the
/// current password.
pub fn read_new_password(src: &PasswordSource) -> Result<Zeroizing<String>> {
    if let Some(p) = from_file_or_command(src, "new password")? {
        return Ok(p);
    }
    if !std::io::stdin().is_terminal() {
        bail!(
            "no new password: use --new-password-file or --new-password-command (no terminal to ask on)"
        );
    }
    prompt("new password", true)
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
    let out = crate::child::command("sh")
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
