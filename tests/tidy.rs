//! Tidy: the layering rules of docs/ARCHITECTURE.md, checked by reading the source.

use std::fs;
use std::path::{Path, PathBuf};

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Code lines outside tests and comments (tests may print and use anything).
fn code_lines(path: &Path) -> Vec<String> {
    if path.file_name().is_some_and(|n| n == "tests.rs") {
        return Vec::new();
    }
    let text = fs::read_to_string(path).unwrap();
    let end = text.find("#[cfg(test)]").unwrap_or(text.len());
    text[..end]
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .map(str::to_string)
        .collect()
}

fn rel(path: &Path) -> String {
    path.strip_prefix(src()).unwrap().display().to_string()
}

#[test]
fn every_file_says_what_it_is_and_none_is_mod_rs() {
    for f in rust_files(&src()) {
        let text = fs::read_to_string(&f).unwrap();
        assert!(
            text.starts_with("//!"),
            "{} must start with a //! line",
            rel(&f)
        );
        assert!(
            f.file_name().unwrap() != "mod.rs",
            "{}: use foo.rs + foo/, not mod.rs",
            rel(&f)
        );
    }
}

#[test]
fn the_store_depends_on_nothing_above_it() {
    for f in rust_files(&src().join("store"))
        .into_iter()
        .chain([src().join("store.rs")])
    {
        for line in code_lines(&f) {
            let l = line.trim();
            for banned in [
                "crate::cli",
                "crate::backup",
                "crate::restore",
                "crate::parts",
                "crate::codec",
                "crate::source",
                "tokio",
                "bollard",
            ] {
                assert!(
                    !l.contains(banned),
                    "{}: the store must not use {banned}: {l}",
                    rel(&f)
                );
            }
        }
    }
}

/// The progress interface sits below every layer that reports through it
/// (store, backup, restore), so it may use none of them.
#[test]
fn the_progress_interface_is_a_leaf() {
    let f = src().join("progress.rs");
    for line in code_lines(&f) {
        assert!(
            !line.contains("crate::"),
            "{}: the progress interface must not use the crate: {line}",
            rel(&f)
        );
    }
}

#[test]
fn codecs_and_inputs_never_touch_the_store() {
    let mut files = rust_files(&src().join("codec"));
    files.extend([src().join("codec.rs"), src().join("parts.rs")]);
    for f in files {
        for line in code_lines(&f) {
            assert!(
                !line.contains("crate::store"),
                "{}: codecs and inputs must not use the store: {line}",
                rel(&f)
            );
        }
    }
}

#[test]
fn sources_never_touch_the_store() {
    let mut files = rust_files(&src().join("source"));
    files.push(src().join("source.rs"));
    for f in files {
        for line in code_lines(&f) {
            for banned in [
                "crate::store",
                "crate::backup",
                "crate::restore",
                "crate::cli",
            ] {
                assert!(
                    !line.contains(banned),
                    "{}: sources must not use {banned}: {line}",
                    rel(&f)
                );
            }
        }
    }
}

#[test]
fn only_the_cli_prints() {
    for f in rust_files(&src()) {
        let r = rel(&f);
        if r.starts_with("cli") || r == "main.rs" {
            continue;
        }
        for line in code_lines(&f) {
            for banned in ["println!", "eprintln!", "print!(", "eprint!(", "dbg!("] {
                assert!(!line.contains(banned), "{r}: only cli/ prints: {line}");
            }
        }
    }
}

/// The CLI prints through one writer (`cli/output.rs`), which never panics on a closed or
/// full stream: `cli.rs` shadows `println!`, `print!`, `eprintln!` and `eprint!` before any
/// of its modules (textual macro scope reaches only the modules declared after), and no file
/// of cli/ reaches past it to std's macros or to stdout itself. The progress bars and log
/// lines write stderr directly, ignoring failures.
#[test]
fn the_cli_prints_through_one_writer() {
    let cli = fs::read_to_string(src().join("cli.rs")).unwrap();
    let first_mod = cli
        .lines()
        .position(|l| l.starts_with("mod ") || l.starts_with("pub mod "))
        .expect("cli.rs declares its modules");
    for name in ["println", "print", "eprintln", "eprint"] {
        let def = cli
            .lines()
            .position(|l| l.trim_start() == format!("macro_rules! {name} {{"))
            .unwrap_or_else(|| panic!("cli.rs must shadow {name}! with its own macro"));
        assert!(
            def < first_mod,
            "cli.rs: macro_rules! {name} must come before the first `mod`, or the modules \
             declared before it print through std"
        );
    }
    let mut files = rust_files(&src().join("cli"));
    files.push(src().join("cli.rs"));
    for f in files {
        let r = rel(&f);
        for line in code_lines(&f) {
            for banned in [
                "std::println!",
                "std::print!",
                "std::eprintln!",
                "std::eprint!",
                "std::dbg!",
            ] {
                assert!(
                    !line.contains(banned),
                    "{r}: print through cli/output.rs: {line}"
                );
            }
            if r != "cli/output.rs" {
                assert!(
                    !line.contains("stdout()"),
                    "{r}: write stdout through cli/output.rs: {line}"
                );
            }
            if r != "cli/output.rs" && r != "cli/progress.rs" {
                assert!(
                    !line.contains("stderr()"),
                    "{r}: write stderr through cli/output.rs: {line}"
                );
            }
        }
    }
}

/// Every child process is built by `child::command`, which keeps rbk's secrets
/// (`RBK_PASSWORD`, the database passwords) out of the environment it inherits.
#[test]
fn only_child_rs_builds_processes() {
    for f in rust_files(&src()) {
        let r = rel(&f);
        if r == "child.rs" {
            continue;
        }
        for line in code_lines(&f) {
            assert!(
                !line.contains("Command::new"),
                "{r}: build child processes with crate::child::command (it removes rbk's secrets from their environment): {line}"
            );
        }
    }
}
