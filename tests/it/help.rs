//! Help generated from the CLI definition: `rbk completions SHELL` and `rbk man` cover every
//! command rbk has, so neither can fall behind when a command is added.

use std::io::Write;
use std::process::{Command, Stdio};

use clap::CommandFactory;
use rbk::cli::Cli;

use crate::util::*;

/// Every command name, from the same definition the binary parses.
fn command_names() -> Vec<String> {
    Cli::command()
        .get_subcommands()
        .map(|c| c.get_name().to_string())
        .collect()
}

#[test]
fn completions_for_every_shell_name_every_command() {
    let env = Env::empty();
    let names = command_names();
    assert!(names.len() >= 10, "{names:?}");
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        // No repository and no password: completions must not need one.
        let r = env.run(&["completions", shell]);
        assert_eq!(r.code, EXIT_OK, "completions {shell}:\n{}", r.all());
        assert!(!r.stdout.trim().is_empty(), "{shell}: empty script");
        for name in &names {
            assert!(
                r.stdout.contains(name.as_str()),
                "{shell}: the script does not mention `{name}`"
            );
        }
    }
    let r = env.run(&["completions", "tcsh"]);
    assert_eq!(r.code, 2, "an unknown shell is bad usage:\n{}", r.all());
}

#[test]
fn man_page_is_roff_and_documents_every_command() {
    let env = Env::empty();
    let r = env.run(&["man"]);
    assert_eq!(r.code, EXIT_OK, "man:\n{}", r.all());
    let page = &r.stdout;
    assert!(
        page.lines().any(|l| l.starts_with(".TH ")),
        "no .TH line:\n{page}"
    );
    for name in command_names() {
        let heading = format!(".SH \"RBK {}\"", name.to_uppercase());
        assert!(page.contains(&heading), "no section for `{name}`");
    }
    // Options of a command appear in its section (`--read-data` is check's).
    assert!(page.contains("read\\-data"), "check's options are missing");

    // Where man(1) exists, the page must format without warnings and the
    // formatted text must name every command.
    let Ok(mut child) = Command::new("man")
        .args(["--warnings", "-l", "-"])
        .env("MANPAGER", "cat")
        .env("MANWIDTH", "100")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    else {
        return;
    };
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(page.as_bytes())
        .expect("feed man");
    let out = child.wait_with_output().expect("man");
    let text = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "man -l - failed: {stderr}");
    assert!(stderr.trim().is_empty(), "man warns:\n{stderr}");
    for name in command_names() {
        assert!(
            text.contains(&format!("RBK {}", name.to_uppercase())),
            "formatted page lacks `{name}`:\n{text}"
        );
    }
}

/// The scheduling files `docs/schedule/` ships hold only rbk command lines that this rbk
/// accepts: each prune line runs against a real repository, each snapshot line parses.
#[test]
fn shipped_schedule_files_use_commands_rbk_accepts() {
    let env = Env::new();
    let input = env.write("x.bin", &random_bytes(64 * 1024, 1));
    env.ok(&["snapshot", "--path", input.to_str().unwrap()]);
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/schedule");
    let mut checked = 0;
    for name in ["rbk.service", "crontab"] {
        let text = std::fs::read_to_string(dir.join(name)).expect("schedule file");
        for line in text.lines().filter(|l| !l.trim_start().starts_with('#')) {
            // Every `rbk ...` command on the line, up to a shell operator or redirection.
            for part in line.split("&&") {
                let Some(at) = part.find("rbk ") else {
                    continue;
                };
                let words: Vec<&str> = part[at + 4..]
                    .split_whitespace()
                    .take_while(|w| !w.starts_with('>') && *w != "|")
                    .collect();
                match words.first() {
                    Some(&"prune") => {
                        env.ok(&words);
                    }
                    Some(&"snapshot") => {
                        let mut args = words.clone();
                        args.push("--help");
                        env.ok(&args);
                    }
                    _ => continue,
                }
                checked += 1;
            }
        }
    }
    assert!(checked >= 4, "found only {checked} rbk command lines");
}
