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

/// Exit 6 (done, with warnings) must not stop the nightly prune: `rbk.service` counts it as
/// success, and the crontab line, run by `sh` with a stand-in `rbk` that exits with each code
/// in turn, prunes after 0 and 6 only.
#[test]
fn shipped_schedules_prune_after_a_snapshot_with_warnings_and_not_after_a_failure() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/schedule");
    let service = std::fs::read_to_string(dir.join("rbk.service")).expect("rbk.service");
    assert!(
        service.lines().any(|l| l
            .strip_prefix("SuccessExitStatus=")
            .is_some_and(|codes| codes.split_whitespace().any(|c| c == "6"))),
        "rbk.service must count exit 6 as success:\n{service}"
    );

    let crontab = std::fs::read_to_string(dir.join("crontab")).expect("crontab");
    let jobs: Vec<&str> = crontab
        .lines()
        .map(str::trim)
        // Not comments, not `MAILTO=root`: a job starts with its schedule.
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter(|l| !l.split_whitespace().next().is_some_and(|w| w.contains('=')))
        .collect();
    assert_eq!(jobs.len(), 1, "one cron job: {jobs:?}");
    // The command is what follows the five time fields.
    let command = jobs[0]
        .splitn(6, ' ')
        .nth(5)
        .expect("a command after the schedule");
    let env = Env::empty();
    let bin = env.path("bin");
    std::fs::create_dir_all(&bin).expect("mkdir bin");
    let log = env.path("calls");
    let fake = bin.join("rbk");
    std::fs::write(
        &fake,
        format!(
            "#!/bin/sh\necho \"$1\" >> '{}'\n[ \"$1\" = snapshot ] && exit \"$SNAPSHOT_EXIT\"\nexit 0\n",
            log.display()
        ),
    )
    .expect("write the stand-in");
    let mut perms = std::fs::metadata(&fake).expect("stat").permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(&fake, perms).expect("chmod");
    let command = command.replace("cd /etc/rbk", &format!("cd '{}'", env.tmp.path().display()));
    assert_ne!(command, jobs[0], "the job changes into /etc/rbk first");
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    for (code, prunes) in [
        (EXIT_OK, true),
        (EXIT_WARNINGS, true),
        (EXIT_FAILED, false),
        (EXIT_DAMAGED, false),
        (EXIT_LOCKED, false),
        (EXIT_WRONG_PASSWORD, false),
    ] {
        let _ = std::fs::remove_file(&log);
        let out = Command::new("sh")
            .arg("-c")
            .arg(&command)
            .env("PATH", &path)
            .env("SNAPSHOT_EXIT", code.to_string())
            .output()
            .expect("sh");
        let calls = std::fs::read_to_string(&log).unwrap_or_default();
        let want = if prunes {
            "snapshot\nprune\n"
        } else {
            "snapshot\n"
        };
        assert_eq!(
            calls,
            want,
            "snapshot exit {code}: the commands the cron job ran ({})",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
