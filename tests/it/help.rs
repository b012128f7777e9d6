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
    for name in ["rbk.service", "rbk-verify.service", "crontab"] {
        let text = std::fs::read_to_string(dir.join(name)).expect("schedule file");
        // Commands, and the optional ones shipped commented out (`#ExecStart=`, `#45 4 * * *`):
        // a comment in words starts with `# `.
        for line in text
            .lines()
            .map(|l| l.trim_start())
            .filter(|l| !l.starts_with("# ") && *l != "#")
        {
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
                    // The drill needs a Docker stack: its line must parse.
                    Some(&"verify") if words.contains(&"--restore-test") => {
                        let mut args = words.clone();
                        args.push("--help");
                        env.ok(&args);
                    }
                    Some(&"prune" | &"verify") => {
                        env.ok(&words);
                    }
                    // The morning status (`rbk --quiet status ...`): runs, and finds the
                    // fresh snapshot of a group it holds to no drill.
                    _ if words.contains(&"status") => {
                        env.ok(&words);
                    }
                    // Run against the destination (`--repo ... prune`), or the copy
                    // itself: their lines must parse.
                    Some(&"snapshot" | &"copy") => {
                        let mut args = words.clone();
                        args.push("--help");
                        env.ok(&args);
                    }
                    Some(w) if w.starts_with("--") => {
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
    assert!(checked >= 10, "found only {checked} rbk command lines");
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
        // The nightly one: the weekly `rbk verify` job prunes nothing.
        .filter(|l| l.contains("rbk snapshot"))
        .collect();
    assert_eq!(jobs.len(), 1, "one nightly snapshot job: {jobs:?}");
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

// ---------------------------------------------------------------- item 19: help and man page

/// Every argument of every command (options, positional arguments such as snapshot ids, the
/// program after `--`) says what it is in `--help` and the man page.
#[test]
fn every_argument_is_described() {
    fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
        for arg in cmd.get_arguments() {
            if arg.get_help().is_none() && arg.get_long_help().is_none() {
                missing.push(format!("{path} {}", arg.get_id()));
            }
        }
        for sub in cmd.get_subcommands() {
            walk(sub, &format!("{path} {}", sub.get_name()), missing);
        }
    }
    let mut missing = Vec::new();
    walk(&Cli::command(), "rbk", &mut missing);
    assert!(missing.is_empty(), "arguments without help: {missing:?}");
}

/// `rbk snapshot --help` shows the options every command takes under their own heading,
/// after the command's own.
#[test]
fn help_shows_global_options_apart() {
    let env = Env::empty();
    let help = env.ok(&["snapshot", "--help"]).stdout;
    let heading = help
        .find("\nGlobal options:\n")
        .unwrap_or_else(|| panic!("no `Global options:` heading:\n{help}"));
    let own = help.find("--path").expect("--path");
    let repo = help.find("--repo").expect("--repo");
    assert!(own < heading && heading < repo, "{help}");
}

/// Every `RBK_*` variable the source reads (test-only knobs included, they are documented as
/// such), by the token in non-test code.
fn variables_rbk_reads() -> std::collections::BTreeSet<String> {
    fn files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for e in std::fs::read_dir(dir).expect("read_dir") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                files(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    // Read only by unit tests (golden files), never by the binary.
    const TEST_ONLY: [&str; 1] = ["RBK_BLESS"];
    let mut paths = Vec::new();
    files(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut paths,
    );
    let mut out = std::collections::BTreeSet::new();
    for p in paths {
        let text = std::fs::read_to_string(&p).expect("read");
        let code = &text[..text.find("#[cfg(test)]").unwrap_or(text.len())];
        let bytes = code.as_bytes();
        for (at, _) in code.match_indices("RBK_") {
            if at > 0 && (bytes[at - 1].is_ascii_alphanumeric() || bytes[at - 1] == b'_') {
                continue;
            }
            let name: String = code[at..]
                .chars()
                .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_')
                .collect();
            if name.len() > 4 && !TEST_ONLY.contains(&name.as_str()) {
                out.insert(name);
            }
        }
    }
    out
}

/// The codes of the README's exit-code table.
fn readme_exit_codes() -> Vec<(String, String)> {
    let readme = include_str!("../../README.md");
    let table = readme
        .split("### Exit codes")
        .nth(1)
        .expect("README has an exit-code table");
    table
        .lines()
        .skip_while(|l| !l.starts_with("| code"))
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            (cells[1].to_string(), cells[2].to_string())
        })
        .collect()
}

/// The man page formatted by man(1) where it exists (else the roff with its escapes undone).
fn formatted_man_page() -> String {
    let env = Env::empty();
    let page = env.ok(&["man"]).stdout;
    // Without man(1): headings unindented, text indented, requests dropped, as man shows it.
    let plain = || {
        let mut out = String::new();
        for line in page.lines() {
            let line = line
                .replace("\\-", "-")
                .replace("\\fB", "")
                .replace("\\fR", "")
                .replace("\\fI", "");
            if let Some(heading) = line.strip_prefix(".SH ") {
                out.push_str(heading.trim_matches('"'));
            } else if line.starts_with('.') {
                continue;
            } else {
                out.push_str("       ");
                out.push_str(&line);
            }
            out.push('\n');
        }
        out
    };
    let Ok(mut child) = Command::new("man")
        .args(["-l", "-"])
        .env("MANPAGER", "cat")
        .env("MANWIDTH", "200")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    else {
        return plain();
    };
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(page.as_bytes())
        .expect("feed man");
    let out = child.wait_with_output().expect("man");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Bold and underline as overstrikes, when man does not strip them.
    let mut text = String::new();
    for c in String::from_utf8_lossy(&out.stdout).chars() {
        if c == '\u{8}' {
            text.pop();
        } else {
            text.push(c);
        }
    }
    text
}

/// The lines of section `name` of a formatted page (up to the next unindented heading).
fn section<'a>(text: &'a str, name: &str) -> Vec<&'a str> {
    text.lines()
        .skip_while(|l| l.trim_end() != name)
        .skip(1)
        .take_while(|l| l.is_empty() || l.starts_with(' '))
        .collect()
}

#[test]
fn man_page_has_exit_status_and_environment_and_no_missing_pages() {
    let text = formatted_man_page();

    let exit = section(&text, "EXIT STATUS");
    assert!(!exit.is_empty(), "no EXIT STATUS section:\n{text}");
    let codes = readme_exit_codes();
    assert!(codes.len() >= 7, "{codes:?}");
    for (code, _) in &codes {
        assert!(
            exit.iter()
                .any(|l| l.trim_start().starts_with(&format!("{code} "))
                    || l.trim() == code.as_str()),
            "EXIT STATUS lacks code {code}:\n{}",
            exit.join("\n")
        );
    }

    let environment = section(&text, "ENVIRONMENT").join("\n");
    assert!(!environment.is_empty(), "no ENVIRONMENT section:\n{text}");
    let mut wanted = variables_rbk_reads();
    assert!(wanted.contains("RBK_PASSWORD"), "{wanted:?}");
    wanted.insert("DOCKER_HOST".into());
    for v in &wanted {
        assert!(
            environment.contains(v.as_str()),
            "ENVIRONMENT lacks {v}:\n{environment}"
        );
    }

    // No reference to a page that does not exist: rbk's commands are sections of this page.
    const REAL: [&str; 4] = ["rbk(1)", "zstd(1)", "systemd.timer(5)", "crontab(5)"];
    let mut refs = Vec::new();
    for (at, _) in text.match_indices('(') {
        let section = text[at + 1..].chars().next();
        if !section.is_some_and(|c| c.is_ascii_digit()) || text[at..].chars().nth(2) != Some(')') {
            continue;
        }
        let name: String = text[..at]
            .chars()
            .rev()
            .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        let reference = format!("{name}{}", &text[at..at + 3]);
        if !name.is_empty() && !REAL.contains(&reference.as_str()) {
            refs.push(reference);
        }
    }
    assert!(
        refs.is_empty(),
        "references to pages that do not exist: {refs:?}"
    );

    // Each `key` command has its own section, with its options.
    for name in ["LIST", "ADD", "REMOVE", "PASSWD"] {
        assert!(
            text.contains(&format!("RBK KEY {name}")),
            "no RBK KEY {name}:\n{text}"
        );
    }
    assert!(text.contains("--new-password-file"), "key add's options");
}
