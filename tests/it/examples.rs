//! Help that teaches: every command's `--help` carries an example, and every example parses.

use clap::{Command as ClapCommand, CommandFactory, Parser};
use rbk::cli::Cli;

use crate::util::*;

/// Every command path (`["key", "add"]`), the top level included, from the
/// definition the binary parses: a new command cannot be missed.
fn command_paths() -> Vec<Vec<String>> {
    fn walk(cmd: &ClapCommand, path: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
        out.push(path.clone());
        for sub in cmd.get_subcommands() {
            if sub.get_name() == "help" {
                continue;
            }
            path.push(sub.get_name().to_string());
            walk(sub, path, out);
            path.pop();
        }
    }
    let mut out = Vec::new();
    walk(&Cli::command(), &mut Vec::new(), &mut out);
    out
}

/// The rbk command lines in a help text: lines that start with `rbk ` (or
/// with `Example: rbk `, or pipe into rbk), from `rbk ` to a comment, pipe
/// or redirection. Prose that mentions rbk does not start a line with it.
fn example_lines(help: &str) -> Vec<Vec<String>> {
    let mut found = Vec::new();
    for line in help.lines() {
        let line = line.trim_start();
        let line = line.strip_prefix("Example:").unwrap_or(line).trim_start();
        // Environment assignments may precede the command (`RBK_REPO=... rbk init`).
        let mut rest = line;
        while let Some((word, tail)) = rest.split_once(' ') {
            let is_assignment = word.split_once('=').is_some_and(|(k, _)| {
                !k.is_empty() && k.chars().all(|c| c.is_ascii_uppercase() || c == '_')
            });
            if !is_assignment {
                break;
            }
            rest = tail.trim_start();
        }
        let line = rest;
        let at = if line.starts_with("rbk ") {
            0
        } else if let Some(at) = line.find("| rbk ") {
            at + 2
        } else {
            continue;
        };
        // Split as a shell would, quotes included.
        let Some(words) = shlex::split(&line[at..]) else {
            panic!("an example is not valid shell: {line}");
        };
        let words: Vec<String> = words
            .into_iter()
            .take_while(|w| !["#", "|", ">", "&&", ";"].iter().any(|s| w.starts_with(s)))
            .collect();
        found.push(words);
    }
    found
}

#[test]
fn every_command_has_an_example_and_every_example_parses() {
    let paths = command_paths();
    assert!(paths.len() >= 17, "found only {} commands", paths.len());
    let mut examples = 0;
    for path in paths {
        let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
        args.push("--help");
        let r = run(cmd_for(std::path::Path::new("/nonexistent"), "", &args));
        assert_eq!(r.code, EXIT_OK, "rbk {args:?}:\n{}", r.all());
        assert!(
            r.stdout.contains("Example"),
            "`rbk {}` has no example in its --help:\n{}",
            path.join(" "),
            r.stdout
        );
        let lines = example_lines(&r.stdout);
        assert!(
            !lines.is_empty(),
            "`rbk {} --help` shows no rbk command line:\n{}",
            path.join(" "),
            r.stdout
        );
        for words in lines {
            if let Err(e) = Cli::try_parse_from(&words) {
                panic!(
                    "`rbk {} --help` shows an example rbk rejects: {}\n{e}",
                    path.join(" "),
                    words.join(" ")
                );
            }
            examples += 1;
        }
    }
    assert!(examples >= 30, "found only {examples} examples");
}
