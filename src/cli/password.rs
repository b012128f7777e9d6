//! Getting the password: environment, file, command, or a prompt that does not echo. Never a flag.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};
use zeroize::Zeroizing;

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
    if let Some(path) = &src.file {
        let raw = Zeroizing::new(
            std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the password file {}", path.display()))?,
        );
        return non_empty(first_line(&raw), "the password file");
    }
    if let Some(cmd) = &src.command {
        let out = Command::new("sh")
            .arg("-c")
            .arg(cmd)
            .stdin(Stdio::null())
            .stderr(Stdio::inherit())
            .output()
            .with_context(|| format!("cannot run the password command {cmd:?}"))?;
        if !out.status.success() {
            bail!("the password command {cmd:?} failed ({})", out.status);
        }
        let raw = Zeroizing::new(
            String::from_utf8(out.stdout).context("the password command printed invalid UTF-8")?,
        );
        return non_empty(first_line(&raw), "the password command");
    }
    if !std::io::stdin().is_terminal() {
        bail!(
            "no password: set RBK_PASSWORD, RBK_PASSWORD_FILE or RBK_PASSWORD_COMMAND (no terminal to ask on)"
        );
    }
    let first = Zeroizing::new(rpassword::prompt_password("repository password: ")?);
    if confirm {
        let again = Zeroizing::new(rpassword::prompt_password("repeat the password: ")?);
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
