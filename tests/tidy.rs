//! Tidy: the layering rules of docs/ARCHITECTURE.md, checked by parsing the source with syn.
//!
//! Each file under src/ is parsed and every path it names is resolved the way rustc resolves
//! a module path: `use` trees (grouped, nested, renamed, globbed), `crate::`, `self::`,
//! `super::` against the file's module (its place under src/, plus any inline `mod`),
//! names brought in by `use`, `mod` or a glob, and fully qualified paths anywhere in code,
//! attributes and macro bodies. Re-exports (`pub use`) are followed too, so an item is judged
//! by where it really lives. A layering rule is then "modules under A never refer to anything
//! under B". Reading `use` lines as text missed paths in code, `super::super::` imports,
//! and everything after a file's first `#[cfg(test)]`.
//!
//! What the parser cannot see: code produced by macro expansion, and what a value reaches
//! without a path being written (a method of a type returned by another layer: the call that
//! returned it is seen, and with it the dependency).
//! The rules about printing and building processes stay textual, as they look for calls a
//! macro may hide; they skip test code item by item, as parsed.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::ops::RangeInclusive;
use std::path::Path;
use std::sync::OnceLock;

use proc_macro2::{Spacing, Span, TokenStream, TokenTree};
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::visit::{self, Visit};
use syn::{Attribute, ImplItem, Item, Meta, UseTree};

// ---------------------------------------------------------------------------------------------
// The rules.

/// "Code in a module under one of `modules` never names anything under one of `banned`,
/// unless it is also under one of `allowed`." Prefixes compare whole segments, so
/// `crate::store` covers `crate::store::pack::X` but not `crate::source::stack` or
/// `crate::storex`; a prefix without `crate` is an external crate (`tokio` is `::tokio` too).
struct Rule {
    modules: &'static [&'static str],
    banned: &'static [&'static str],
    allowed: &'static [&'static str],
    /// Why the rule exists, said above its failures.
    why: &'static str,
    /// A module the redesign has not created yet: the rule then holds vacuously. For the
    /// others an empty match means a misspelt prefix, and fails.
    may_be_absent: bool,
}

const STORE: Rule = Rule {
    modules: &["crate::store"],
    banned: &[
        "crate::cli",
        "crate::backup",
        "crate::restore",
        "crate::stack",
        "crate::parts",
        "crate::codec",
        "crate::source",
        "crate::remote",
        "tokio",
        "bollard",
        "opendal",
    ],
    allowed: &[],
    why: "the store is a library below every other layer: synchronous, no tokio, no Docker",
    may_be_absent: false,
};

const PROCESS: Rule = Rule {
    modules: &["crate::process"],
    banned: &["crate"],
    allowed: &["crate::process"],
    why: "child processes and their exits are used by sources (async) and by parts, backup and \
          restore (synchronous) alike, so the module that owns them is a leaf",
    may_be_absent: false,
};

const PROGRESS: Rule = Rule {
    modules: &["crate::progress"],
    banned: &["crate"],
    allowed: &["crate::progress"],
    why: "the progress interface sits below every layer that reports through it, so it is a leaf",
    may_be_absent: false,
};

const CODECS_AND_INPUTS: Rule = Rule {
    modules: &["crate::codec", "crate::parts"],
    banned: &["crate::store"],
    allowed: &[],
    why: "codecs and inputs are stream formats and readers; backup and restore bring them to the store",
    may_be_absent: false,
};

const SOURCES: Rule = Rule {
    modules: &["crate::source"],
    banned: &[
        "crate::backup",
        "crate::restore",
        "crate::stack",
        "crate::cli",
        "crate::store",
    ],
    allowed: &[],
    why: "sources talk to Docker and the databases and know nothing of repositories or of the \
          layers that drive them",
    may_be_absent: false,
};

const BACKUP_NOT_RESTORE: Rule = Rule {
    modules: &["crate::backup"],
    banned: &["crate::restore"],
    allowed: &[],
    why: "backup and restore are siblings; what both need belongs in the stack layer below them",
    may_be_absent: false,
};

const RESTORE_NOT_BACKUP: Rule = Rule {
    modules: &["crate::restore"],
    banned: &["crate::backup"],
    allowed: &[],
    why: "backup and restore are siblings; what both need belongs in the stack layer below them",
    may_be_absent: false,
};

const STACK: Rule = Rule {
    modules: &["crate::stack"],
    banned: &["crate::backup", "crate::restore", "crate::cli"],
    allowed: &[],
    why: "the stack layer is what backup and restore share, so it sits below both and the cli",
    may_be_absent: true,
};

const REMOTE: Rule = Rule {
    modules: &["crate::remote"],
    banned: &[
        "crate::cli",
        "crate::backup",
        "crate::restore",
        "crate::stack",
        "crate::source",
        "crate::verify",
    ],
    allowed: &[],
    why: "remote backends implement the store's Backend trait for the CLI to choose; they know \
          nothing of stacks, databases or the commands that use them",
    may_be_absent: false,
};

const STATUS: Rule = Rule {
    modules: &["crate::status"],
    banned: &[
        "crate::cli",
        "crate::backup",
        "crate::restore",
        "crate::source",
        "crate::remote",
    ],
    allowed: &[],
    why: "status judges what the repository records; it reads no stack, no backend of its own, \
          and prints nothing",
    may_be_absent: false,
};

/// Every dependency rule, for the test that shows each one can fail.
const RULES: &[&Rule] = &[
    &STORE,
    &PROGRESS,
    &PROCESS,
    &CODECS_AND_INPUTS,
    &SOURCES,
    &BACKUP_NOT_RESTORE,
    &RESTORE_NOT_BACKUP,
    &STACK,
    &REMOTE,
    &STATUS,
];

#[test]
fn the_store_depends_on_nothing_above_it() {
    assert_holds(&[&STORE]);
}

/// The progress interface sits below every layer that reports through it
/// (store, backup, restore), so it may use none of them.
#[test]
fn the_progress_interface_is_a_leaf() {
    assert_holds(&[&PROGRESS]);
}

#[test]
fn the_process_module_is_a_leaf() {
    assert_holds(&[&PROCESS]);
}

#[test]
fn codecs_and_inputs_never_touch_the_store() {
    assert_holds(&[&CODECS_AND_INPUTS]);
}

#[test]
fn sources_depend_on_no_layer_above_them() {
    assert_holds(&[&SOURCES]);
}

/// What both need about a stack lives in the stack layer below them (issue 12).
#[test]
fn backup_and_restore_never_depend_on_each_other() {
    assert_holds(&[&BACKUP_NOT_RESTORE, &RESTORE_NOT_BACKUP]);
}

#[test]
fn the_stack_layer_depends_on_neither_backup_restore_nor_cli() {
    assert_holds(&[&STACK]);
}

#[test]
fn status_judges_records_and_touches_no_stack() {
    assert_holds(&[&STATUS]);
}

#[test]
fn remote_backends_know_only_the_store() {
    assert_holds(&[&REMOTE]);
}

#[test]
fn every_file_says_what_it_is_and_none_is_mod_rs() {
    assert_none("every file", files_say_what_they_are(real()));
}

#[test]
fn only_the_cli_prints() {
    assert_none("only cli/ prints", prints_outside_the_cli(real()));
}

/// The CLI prints through one writer (`cli/output.rs`), which never panics on a closed or
/// full stream: `cli.rs` shadows `println!`, `print!`, `eprintln!` and `eprint!` before any
/// of its modules (textual macro scope reaches only the modules declared after), and no file
/// of cli/ reaches past it to std's macros or to stdout itself. The progress bars and log
/// lines write stderr directly, ignoring failures.
#[test]
fn the_cli_prints_through_one_writer() {
    assert_none("the cli's one writer", cli_writer_bypasses(real()));
}

/// Every child process is built by `process::command`, which keeps rbk's secrets
/// (`RBK_PASSWORD`, the database passwords) out of the environment it inherits.
#[test]
fn only_process_command_rs_builds_processes() {
    assert_none("child processes", processes_outside_process_command(real()));
}

fn assert_holds(rules: &[&Rule]) {
    let a = real();
    let mut failures = Vec::new();
    for rule in rules {
        let modules = a
            .files
            .iter()
            .filter(|f| rule.modules.iter().any(|m| under(&f.module, m)))
            .count();
        assert!(
            modules > 0 || rule.may_be_absent,
            "no file of src/ lies under {:?}: a misspelt rule checks nothing",
            rule.modules
        );
        let found = violations(rule, a);
        if !found.is_empty() {
            failures.push(format!(
                "{} must not depend on {}: {}",
                rule.modules.join(", "),
                rule.banned.join(", "),
                rule.why
            ));
            failures.extend(found);
        }
    }
    assert_none("layering", failures);
}

fn assert_none(what: &str, problems: Vec<String>) {
    assert!(problems.is_empty(), "{what}:\n{}", problems.join("\n"));
}

// ---------------------------------------------------------------------------------------------
// Checking rules against the resolved references.

/// The references that break `rule`, one line each: file, line, column, the path as written
/// and what it resolves to. A path under one already reported in the same file (the uses of
/// a forbidden import) is left out, so the list names the imports to fix.
fn violations(rule: &Rule, a: &Analysis) -> Vec<String> {
    let mut out = Vec::new();
    let mut reported: HashMap<&str, Vec<&[String]>> = HashMap::new();
    for r in &a.refs {
        if !rule.modules.iter().any(|m| under(&r.module, m)) {
            continue;
        }
        let Some(offending) = [&r.path, &r.canonical].into_iter().find(|p| {
            rule.banned.iter().any(|b| under(p, b)) && !rule.allowed.iter().any(|x| under(p, x))
        }) else {
            continue;
        };
        let seen = reported.entry(&r.file).or_default();
        if seen.iter().any(|s| offending.starts_with(s)) {
            continue;
        }
        seen.push(offending);
        let banned = rule
            .banned
            .iter()
            .find(|b| under(offending, b))
            .unwrap_or(&"?");
        let mut line = format!(
            "src/{}:{}:{}: {} must not depend on {banned}: `{}`",
            r.file,
            r.line,
            r.column,
            r.module.join("::"),
            r.written
        );
        if r.written != r.path.join("::") {
            line += &format!(" is {}", r.path.join("::"));
        }
        if r.canonical != r.path {
            line += &format!(", re-exported from {}", r.canonical.join("::"));
        }
        out.push(line);
    }
    out
}

/// Whether `path` lies under `prefix`, comparing whole segments.
fn under(path: &[String], prefix: &str) -> bool {
    let prefix: Vec<&str> = prefix.split("::").collect();
    path.len() >= prefix.len() && path.iter().zip(&prefix).all(|(a, b)| a == b)
}

// ---------------------------------------------------------------------------------------------
// The textual rules: calls that macros may hide, so read as text, outside test code.

fn files_say_what_they_are(a: &Analysis) -> Vec<String> {
    let mut out = Vec::new();
    for f in &a.files {
        if !f.text.starts_with("//!") {
            out.push(format!("src/{} must start with a //! line", f.rel));
        }
        if f.rel == "mod.rs" || f.rel.ends_with("/mod.rs") {
            out.push(format!("src/{}: use foo.rs + foo/, not mod.rs", f.rel));
        }
        for line in &f.path_attributes {
            out.push(format!(
                "src/{}:{line}: #[path] moves a module away from where tidy (and a reader) \
                 looks for it",
                f.rel
            ));
        }
    }
    out
}

fn prints_outside_the_cli(a: &Analysis) -> Vec<String> {
    let mut out = Vec::new();
    for f in &a.files {
        if under(&f.module, "crate::cli") || f.rel == "main.rs" {
            continue;
        }
        for (n, line) in f.code_lines() {
            for banned in ["println!", "eprintln!", "print!(", "eprint!(", "dbg!("] {
                if line.contains(banned) {
                    out.push(format!(
                        "src/{}:{n}: only cli/ prints: {}",
                        f.rel,
                        line.trim()
                    ));
                }
            }
        }
    }
    out
}

fn cli_writer_bypasses(a: &Analysis) -> Vec<String> {
    let mut out = Vec::new();
    match a.files.iter().find(|f| f.rel == "cli.rs") {
        None => out.push("src/cli.rs is missing".to_string()),
        Some(cli) => out.extend(print_macros_shadowed_first(&cli.text)),
    }
    for f in a.files.iter().filter(|f| under(&f.module, "crate::cli")) {
        let r = f.rel.as_str();
        for (n, line) in f.code_lines() {
            let line = line.trim();
            for banned in [
                "std::println!",
                "std::print!",
                "std::eprintln!",
                "std::eprint!",
                "std::dbg!",
            ] {
                if line.contains(banned) {
                    out.push(format!("src/{r}:{n}: print through cli/output.rs: {line}"));
                }
            }
            if r != "cli/output.rs" && line.contains("stdout()") {
                out.push(format!(
                    "src/{r}:{n}: write stdout through cli/output.rs: {line}"
                ));
            }
            if r != "cli/output.rs" && r != "cli/progress.rs" && line.contains("stderr()") {
                out.push(format!(
                    "src/{r}:{n}: write stderr through cli/output.rs: {line}"
                ));
            }
        }
    }
    out
}

/// cli.rs defines `macro_rules!` println, print, eprintln and eprint before its first `mod`,
/// as textual macro scope reaches only the modules declared after the definition.
fn print_macros_shadowed_first(cli: &str) -> Vec<String> {
    let file = match syn::parse_file(cli) {
        Ok(file) => file,
        Err(e) => return vec![format!("src/cli.rs does not parse: {e}")],
    };
    let first_mod = file.items.iter().position(|i| matches!(i, Item::Mod(_)));
    let mut out = Vec::new();
    for name in ["println", "print", "eprintln", "eprint"] {
        let def = file.items.iter().position(|i| {
            matches!(i, Item::Macro(m) if m.mac.path.is_ident("macro_rules")
                && m.ident.as_ref().is_some_and(|id| id == name))
        });
        match (def, first_mod) {
            (None, _) => out.push(format!(
                "src/cli.rs must shadow {name}! with its own macro_rules!"
            )),
            (Some(d), Some(m)) if d > m => out.push(format!(
                "src/cli.rs: macro_rules! {name} must come before the first `mod`, or the \
                 modules declared before it print through std"
            )),
            _ => {}
        }
    }
    out
}

/// Only the CLI ends the process: below it, a signal or an error is reported up (the write
/// pauses start the stack again and fail with `Cancelled`), so every cleanup on the way out
/// runs, and the exit code is chosen in one place.
#[test]
fn only_the_cli_ends_the_process() {
    assert_none("process exits", exits_outside_the_cli(real()));
}

fn exits_outside_the_cli(a: &Analysis) -> Vec<String> {
    let mut out = Vec::new();
    for f in a
        .files
        .iter()
        .filter(|f| !(f.rel == "cli.rs" || f.rel == "main.rs" || f.rel.starts_with("cli/")))
    {
        for (n, line) in f.code_lines() {
            if line.contains("process::exit") || line.contains("libc::exit") {
                out.push(format!(
                    "src/{}:{n}: only the CLI ends the process; report the signal or error up: {}",
                    f.rel,
                    line.trim()
                ));
            }
        }
    }
    out
}

fn processes_outside_process_command(a: &Analysis) -> Vec<String> {
    let mut out = Vec::new();
    for f in a.files.iter().filter(|f| f.rel != "process/command.rs") {
        for (n, line) in f.code_lines() {
            if line.contains("Command::new") {
                out.push(format!(
                    "src/{}:{n}: build child processes with crate::process::command (it removes \
                     rbk's secrets from their environment): {}",
                    f.rel,
                    line.trim()
                ));
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Reading the tree.

/// The source files, by their path under src/ ("backup/stack.rs"); the tests build small ones.
type Tree = Vec<(String, String)>;

fn load(src: &Path) -> Tree {
    fn walk(dir: &Path, src: &Path, out: &mut Tree) {
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, src, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let rel = path.strip_prefix(src).unwrap();
                let rel = rel.components().map(|c| c.as_os_str().to_str().unwrap());
                let rel = rel.collect::<Vec<_>>().join("/");
                out.push((rel, fs::read_to_string(&path).unwrap()));
            }
        }
    }
    let mut out = Vec::new();
    walk(src, src, &mut out);
    out.sort();
    out
}

/// src/ of this checkout, parsed once for all tests.
fn real() -> &'static Analysis {
    static REAL: OnceLock<Analysis> = OnceLock::new();
    REAL.get_or_init(|| {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        Analysis::of(&load(&src))
    })
}

/// The module a file under src/ is: `backup/stack.rs` is `crate::backup::stack`,
/// `backup.rs` is `crate::backup`, `lib.rs` and `main.rs` are the crate root.
fn module_of(rel: &str) -> Vec<String> {
    let stem = rel.strip_suffix(".rs").unwrap_or(rel);
    let mut parts: Vec<&str> = stem.split('/').collect();
    if parts.len() > 1 && parts.last() == Some(&"mod") {
        parts.pop();
    }
    let mut module = vec!["crate".to_string()];
    if stem != "lib" && stem != "main" {
        module.extend(parts.into_iter().map(String::from));
    }
    module
}

/// One parsed file, as the textual rules need it.
struct SourceFile {
    rel: String,
    module: Vec<String>,
    text: String,
    /// Declared `#[cfg(test)] mod x;` (or inside such a module): no production code.
    test_only: bool,
    /// Lines of items under `#[cfg(test)]`.
    test_lines: Vec<RangeInclusive<usize>>,
    /// Lines of `#[path]` attributes.
    path_attributes: Vec<usize>,
}

impl SourceFile {
    /// Production code lines (1-based numbers) that are not comments.
    fn code_lines(&self) -> Vec<(usize, &str)> {
        if self.test_only {
            return Vec::new();
        }
        self.text
            .lines()
            .enumerate()
            .map(|(i, l)| (i + 1, l))
            .filter(|(n, _)| !self.test_lines.iter().any(|r| r.contains(n)))
            .filter(|(_, l)| !l.trim_start().starts_with("//"))
            .collect()
    }
}

/// A path that code in `module` names, with where it points.
#[derive(Debug, Clone)]
struct Reference {
    file: String,
    /// The module the path is written in: the file's, or an inline `mod` in it.
    module: Vec<String>,
    line: usize,
    /// 1-based, as editors count.
    column: usize,
    written: String,
    /// Resolved: `["crate", "store", "Id"]`, or an external crate's `["tokio", "spawn"]`.
    path: Vec<String>,
    /// `path` with re-exports followed to where the item is defined.
    canonical: Vec<String>,
}

struct Analysis {
    files: Vec<SourceFile>,
    refs: Vec<Reference>,
}

impl Analysis {
    fn of(tree: &Tree) -> Analysis {
        let parsed: Vec<(&str, Vec<String>, syn::File)> = tree
            .iter()
            .map(|(rel, text)| {
                let file = syn::parse_file(text).unwrap_or_else(|e| {
                    let at = e.span().start();
                    panic!("src/{rel}:{}:{}: {e}", at.line, at.column + 1)
                });
                (rel.as_str(), module_of(rel), file)
            })
            .collect();

        // main.rs is the binary crate: its root is not the library's, so it gets its own
        // table of names (it reaches the library as `rbk::`).
        let mut lib = HashMap::new();
        let mut bin = HashMap::new();
        let mut test_modules = HashSet::new();
        for (rel, module, file) in &parsed {
            let table = if *rel == "main.rs" {
                &mut bin
            } else {
                &mut lib
            };
            register(&file.items, module, table, &mut test_modules);
        }
        let package = env!("CARGO_PKG_NAME").replace('-', "_");
        let lib = Resolver {
            modules: &lib,
            package: &package,
        };
        let bin = Resolver {
            modules: &bin,
            package: &package,
        };

        let mut files = Vec::new();
        let mut refs = Vec::new();
        for ((rel, module, file), (_, text)) in parsed.iter().zip(tree) {
            let mut c = Collector {
                resolver: if *rel == "main.rs" { &bin } else { &lib },
                library: &lib,
                file: rel,
                module: module.clone(),
                blocks: Vec::new(),
                refs: Vec::new(),
            };
            c.visit_file(file);
            refs.extend(c.refs);
            let mut t = TestCode::default();
            t.visit_file(file);
            files.push(SourceFile {
                rel: rel.to_string(),
                module: module.clone(),
                text: text.clone(),
                test_only: (1..=module.len()).any(|n| test_modules.contains(&module[..n])),
                test_lines: t.lines,
                path_attributes: t.path_attributes,
            });
        }
        Analysis { files, refs }
    }
}

// ---------------------------------------------------------------------------------------------
// Names in scope.

/// A path as written, before resolution.
#[derive(Debug, Clone, PartialEq)]
struct RawPath {
    /// `::tokio::x`: an external crate, whatever is in scope.
    global: bool,
    segments: Vec<String>,
}

/// The names a module (or a block) makes visible to paths written in it.
#[derive(Default)]
struct Scope {
    /// Items and modules it defines, to their full paths (a block's items: to their name).
    defined: HashMap<String, Vec<String>>,
    /// Names bound by `use`, to the path they import (resolved when asked, from this scope).
    imports: HashMap<String, RawPath>,
    globs: Vec<RawPath>,
}

impl Scope {
    /// `module` is `None` for a block, whose items have no path.
    fn of<'a>(items: impl IntoIterator<Item = &'a Item>, module: Option<&[String]>) -> Scope {
        let mut scope = Scope::default();
        for item in items {
            if let Item::Use(u) = item {
                for leaf in use_leaves(&u.tree) {
                    let raw = RawPath {
                        global: u.leading_colon.is_some(),
                        segments: leaf.segments,
                    };
                    match leaf.binding {
                        None => scope.globs.push(raw),
                        // `use tokio;` names the crate itself, not this binding.
                        Some(name) if !raw.global && raw.segments == [name.clone()] => {}
                        Some(name) => {
                            scope.imports.insert(name, raw);
                        }
                    }
                }
            } else if let Item::ExternCrate(e) = item {
                let name = e.rename.as_ref().map_or(&e.ident, |(_, r)| r).to_string();
                let target = RawPath {
                    global: e.ident != "self",
                    segments: vec![if e.ident == "self" {
                        "crate".to_string()
                    } else {
                        e.ident.to_string()
                    }],
                };
                scope.imports.insert(name, target);
            } else if let Some(name) = item_name(item) {
                let path = match module {
                    Some(m) => [m, std::slice::from_ref(&name)].concat(),
                    None => vec![name.clone()],
                };
                scope.defined.insert(name, path);
            }
        }
        scope
    }
}

/// The name an item defines in the type or value namespace (macros live apart).
fn item_name(item: &Item) -> Option<String> {
    let ident = match item {
        Item::Const(i) => &i.ident,
        Item::Enum(i) => &i.ident,
        Item::Fn(i) => &i.sig.ident,
        Item::Mod(i) => &i.ident,
        Item::Static(i) => &i.ident,
        Item::Struct(i) => &i.ident,
        Item::Trait(i) => &i.ident,
        Item::TraitAlias(i) => &i.ident,
        Item::Type(i) => &i.ident,
        Item::Union(i) => &i.ident,
        _ => return None,
    };
    Some(ident.to_string())
}

/// Records the scope of `module` and of each inline module in it, and which modules exist
/// only in test builds.
fn register(
    items: &[Item],
    module: &[String],
    table: &mut HashMap<Vec<String>, Scope>,
    test_modules: &mut HashSet<Vec<String>>,
) {
    table.insert(module.to_vec(), Scope::of(items, Some(module)));
    for item in items {
        if let Item::Mod(m) = item {
            let child = [module, &[m.ident.to_string()]].concat();
            if is_cfg_test(&m.attrs) {
                test_modules.insert(child.clone());
            }
            if let Some((_, inner)) = &m.content {
                register(inner, &child, table, test_modules);
            }
        }
    }
}

/// One imported path of a `use` tree: `use a::{b, c::{self as d, *}}` has `a::b` bound to
/// `b`, `a::c` bound to `d` and the glob `a::c::*` (binding `None`).
struct UseLeaf {
    segments: Vec<String>,
    binding: Option<String>,
    span: Span,
}

fn use_leaves(tree: &UseTree) -> Vec<UseLeaf> {
    fn walk(tree: &UseTree, prefix: &mut Vec<String>, out: &mut Vec<UseLeaf>) {
        let leaf = |prefix: &[String], ident: &syn::Ident, rename: Option<&syn::Ident>| {
            let segments = if ident == "self" {
                prefix.to_vec()
            } else {
                [prefix, &[ident.to_string()]].concat()
            };
            // `use Trait as _` binds `_`, which no path can spell: an import that shadows
            // nothing.
            let name = rename.unwrap_or(ident);
            let binding = if name == "self" {
                segments.last().cloned()
            } else {
                Some(name.to_string())
            };
            UseLeaf {
                segments,
                binding,
                span: ident.span(),
            }
        };
        match tree {
            UseTree::Path(p) => {
                prefix.push(p.ident.to_string());
                walk(&p.tree, prefix, out);
                prefix.pop();
            }
            UseTree::Name(n) => out.push(leaf(prefix, &n.ident, None)),
            UseTree::Rename(r) => out.push(leaf(prefix, &r.ident, Some(&r.rename))),
            UseTree::Glob(g) => out.push(UseLeaf {
                segments: prefix.clone(),
                binding: None,
                span: g.star_token.spans[0],
            }),
            UseTree::Group(g) => {
                for t in &g.items {
                    walk(t, prefix, out);
                }
            }
        }
    }
    let mut out = Vec::new();
    walk(tree, &mut Vec::new(), &mut out);
    out
}

/// How many imports deep a name is followed: real chains are two or three long, and the
/// bound stops cycles (`use a::*` in b, `use b::*` in a), which rustc rejects anyway.
const DEPTH: usize = 8;

/// Resolves paths against the scopes of one crate's modules.
struct Resolver<'a> {
    modules: &'a HashMap<Vec<String>, Scope>,
    /// The library's name: `rbk::cli` from main.rs is the library's `crate::cli`.
    package: &'a str,
}

impl Resolver<'_> {
    /// Where `raw`, written in `module` inside the nested `blocks`, points.
    fn resolve(
        &self,
        raw: &RawPath,
        module: &[String],
        blocks: &[Scope],
        depth: usize,
    ) -> Vec<String> {
        let segs = &raw.segments;
        let Some(first) = segs.first() else {
            return module.to_vec();
        };
        if raw.global {
            return self.external(segs);
        }
        let (base, rest) = match first.as_str() {
            "crate" | "$crate" => (vec!["crate".to_string()], &segs[1..]),
            "self" => (module.to_vec(), &segs[1..]),
            "super" => {
                let ups = segs.iter().take_while(|s| *s == "super").count();
                let keep = module.len().saturating_sub(ups).max(1);
                (module[..keep].to_vec(), &segs[ups..])
            }
            "Self" => return segs.clone(),
            name => match self.lookup(name, module, blocks, depth) {
                Some(found) => (found, &segs[1..]),
                None => return self.external(segs),
            },
        };
        [base.as_slice(), rest].concat()
    }

    /// A name nothing in scope defines: an external crate, std's prelude, or a local.
    fn external(&self, segs: &[String]) -> Vec<String> {
        if segs.first().is_some_and(|s| s == self.package) {
            [&["crate".to_string()], &segs[1..]].concat()
        } else {
            segs.to_vec()
        }
    }

    /// `name` as the innermost block, then the enclosing module, define or import it. Blocks
    /// see their enclosing blocks; a module sees no further (its parent only by `super`).
    fn lookup(
        &self,
        name: &str,
        module: &[String],
        blocks: &[Scope],
        depth: usize,
    ) -> Option<Vec<String>> {
        if depth > DEPTH {
            return None;
        }
        for i in (0..blocks.len()).rev() {
            if let Some(found) = self.in_scope(&blocks[i], name, module, &blocks[..=i], depth) {
                return Some(found);
            }
        }
        self.in_module(name, module, depth)
    }

    fn in_module(&self, name: &str, module: &[String], depth: usize) -> Option<Vec<String>> {
        if depth > DEPTH {
            return None;
        }
        let scope = self.modules.get(module)?;
        self.in_scope(scope, name, module, &[], depth)
    }

    /// Explicit names first, then globs, as rustc lets an explicit import shadow a glob's.
    fn in_scope(
        &self,
        scope: &Scope,
        name: &str,
        module: &[String],
        blocks: &[Scope],
        depth: usize,
    ) -> Option<Vec<String>> {
        if let Some(path) = scope.defined.get(name) {
            return Some(path.clone());
        }
        if let Some(raw) = scope.imports.get(name) {
            return Some(self.resolve(raw, module, blocks, depth + 1));
        }
        for glob in &scope.globs {
            let target = self.resolve(glob, module, blocks, depth + 1);
            if target != module
                && let Some(found) = self.in_module(name, &target, depth + 1)
            {
                return Some(found);
            }
        }
        None
    }

    /// `path` with every re-export on the way followed: `crate::store::Id` is
    /// `crate::store::id::Id` when store.rs says `pub use id::Id`.
    fn canonical(&self, path: &[String]) -> Vec<String> {
        let mut path = path.to_vec();
        'again: for _ in 0..DEPTH {
            for i in 1..path.len() {
                let (module, name) = (&path[..i], &path[i]);
                // A module goes deeper; so does a prefix with no scope of its own (a tree
                // without lib.rs), as its next segment may still be a module.
                if self.modules.contains_key(&path[..=i]) {
                    continue;
                }
                let Some(scope) = self.modules.get(module) else {
                    continue;
                };
                if scope.defined.contains_key(name) {
                    break;
                }
                match self.in_module(name, module, 0) {
                    Some(target) if target[..] != path[..=i] => {
                        path = [target.as_slice(), &path[i + 1..]].concat();
                        continue 'again;
                    }
                    _ => break,
                }
            }
            break;
        }
        path
    }
}

// ---------------------------------------------------------------------------------------------
// Collecting the paths a file names.

struct Collector<'a> {
    resolver: &'a Resolver<'a>,
    /// Re-exports are followed in the library, where everything `crate::` points.
    library: &'a Resolver<'a>,
    file: &'a str,
    module: Vec<String>,
    blocks: Vec<Scope>,
    refs: Vec<Reference>,
}

impl Collector<'_> {
    fn record(&mut self, raw: RawPath, span: Span, written: String, from_use: bool) {
        // `self` alone is a receiver and `Self` the type being implemented, not modules.
        if !from_use
            && !raw.global
            && matches!(&raw.segments[..], [s] if s == "self" || s == "Self")
        {
            return;
        }
        let path = self.resolver.resolve(&raw, &self.module, &self.blocks, 0);
        // A lone name nothing in scope defines is a local, a generic or from std's prelude.
        if !from_use && path.len() < 2 && path.first().is_none_or(|s| s != "crate") {
            return;
        }
        let canonical = self.library.canonical(&path);
        let at = span.start();
        self.refs.push(Reference {
            file: self.file.to_string(),
            module: self.module.clone(),
            line: at.line,
            column: at.column + 1,
            written,
            path,
            canonical,
        });
    }

    /// Paths inside a macro's tokens, which syn leaves unparsed: `a::b` sequences, with a
    /// leading `::` or `$crate`. Lone names are left out, as in `record`.
    fn scan(&mut self, tokens: TokenStream) {
        let tts: Vec<TokenTree> = tokens.into_iter().collect();
        let mut i = 0;
        while i < tts.len() {
            if let TokenTree::Group(g) = &tts[i] {
                self.scan(g.stream());
                i += 1;
                continue;
            }
            match path_at(&tts, i) {
                Some((raw, span, next)) => {
                    if raw.global || raw.segments.len() > 1 {
                        let written = format!(
                            "{}{}",
                            if raw.global { "::" } else { "" },
                            raw.segments.join("::")
                        );
                        self.record(raw, span, written, false);
                    }
                    i = next;
                }
                None => i += 1,
            }
        }
    }
}

fn is_punct(tt: Option<&TokenTree>, c: char) -> bool {
    matches!(tt, Some(TokenTree::Punct(p)) if p.as_char() == c)
}

/// `::` at `i`: a joint `:` then `:`.
fn is_path_sep(tts: &[TokenTree], i: usize) -> bool {
    matches!(tts.get(i), Some(TokenTree::Punct(p)) if p.as_char() == ':' && p.spacing() == Spacing::Joint)
        && is_punct(tts.get(i + 1), ':')
}

/// The path starting at token `i`, its first token's span and the index after it.
fn path_at(tts: &[TokenTree], i: usize) -> Option<(RawPath, Span, usize)> {
    let mut j = i;
    let mut global = false;
    let mut segments = Vec::new();
    let span;
    if is_punct(tts.get(j), '$') {
        // `$crate` is the defining crate; `$name` a fragment, no path; `$( ... )*` a
        // repetition, whose group the caller scans next.
        match tts.get(j + 1) {
            Some(TokenTree::Ident(id)) if id == "crate" => {
                segments.push("$crate".to_string());
                span = tts[j].span();
                j += 2;
            }
            Some(TokenTree::Ident(_)) => {
                return Some((RawPath { global, segments }, tts[j].span(), j + 2));
            }
            _ => return None,
        }
    } else if is_path_sep(tts, j) {
        // `::x` after a name or `>` continues a path (`Vec::<u8>::new`), else starts at the
        // extern prelude.
        let continues =
            i > 0 && (matches!(tts[i - 1], TokenTree::Ident(_)) || is_punct(tts.get(i - 1), '>'));
        if continues {
            return None;
        }
        let Some(TokenTree::Ident(id)) = tts.get(j + 2) else {
            return None;
        };
        global = true;
        span = tts[j].span();
        segments.push(id.to_string());
        j += 3;
    } else if let Some(TokenTree::Ident(id)) = tts.get(j) {
        if i > 0 && is_punct(tts.get(i - 1), '.') {
            return None;
        }
        segments.push(id.to_string());
        span = id.span();
        j += 1;
    } else {
        return None;
    }
    while is_path_sep(tts, j) {
        let Some(TokenTree::Ident(id)) = tts.get(j + 2) else {
            break;
        };
        segments.push(id.to_string());
        j += 3;
    }
    Some((RawPath { global, segments }, span, j))
}

impl<'ast> Visit<'ast> for Collector<'_> {
    fn visit_item_use(&mut self, u: &'ast syn::ItemUse) {
        let global = u.leading_colon.is_some();
        for leaf in use_leaves(&u.tree) {
            let glob = leaf.binding.is_none();
            let written = format!(
                "{}{}{}",
                if global { "::" } else { "" },
                leaf.segments.join("::"),
                if glob { "::*" } else { "" }
            );
            let raw = RawPath {
                global,
                segments: leaf.segments,
            };
            self.record(raw, leaf.span, written, true);
        }
    }

    fn visit_item_mod(&mut self, m: &'ast syn::ItemMod) {
        for attr in &m.attrs {
            self.visit_attribute(attr);
        }
        if let Some((_, items)) = &m.content {
            // An inline module sees none of the blocks around it, only its own names.
            let blocks = std::mem::take(&mut self.blocks);
            self.module.push(m.ident.to_string());
            for item in items {
                self.visit_item(item);
            }
            self.module.pop();
            self.blocks = blocks;
        }
    }

    fn visit_block(&mut self, b: &'ast syn::Block) {
        let items = b.stmts.iter().filter_map(|s| match s {
            syn::Stmt::Item(i) => Some(i),
            _ => None,
        });
        self.blocks.push(Scope::of(items, None));
        visit::visit_block(self, b);
        self.blocks.pop();
    }

    fn visit_path(&mut self, p: &'ast syn::Path) {
        let raw = RawPath {
            global: p.leading_colon.is_some(),
            segments: p.segments.iter().map(|s| s.ident.to_string()).collect(),
        };
        let span = match (&p.leading_colon, p.segments.first()) {
            (Some(c), _) => c.spans[0],
            (None, Some(s)) => s.ident.span(),
            (None, None) => Span::call_site(),
        };
        let written = format!(
            "{}{}",
            if raw.global { "::" } else { "" },
            raw.segments.join("::")
        );
        self.record(raw, span, written, false);
        visit::visit_path(self, p);
    }

    fn visit_macro(&mut self, m: &'ast syn::Macro) {
        self.visit_path(&m.path);
        self.scan(m.tokens.clone());
    }

    fn visit_meta_list(&mut self, l: &'ast syn::MetaList) {
        self.visit_path(&l.path);
        self.scan(l.tokens.clone());
    }

    /// `pub(crate)`, `pub(in crate::x)`: who may see an item, not something it uses.
    fn visit_visibility(&mut self, _: &'ast syn::Visibility) {}
}

// ---------------------------------------------------------------------------------------------
// Test code, for the textual rules.

#[derive(Default)]
struct TestCode {
    lines: Vec<RangeInclusive<usize>>,
    path_attributes: Vec<usize>,
}

impl TestCode {
    fn skip(&mut self, attrs: &[Attribute], node: &impl Spanned) -> bool {
        if is_cfg_test(attrs) {
            for attr in attrs {
                self.visit_attribute(attr);
            }
            let span = node.span();
            self.lines.push(span.start().line..=span.end().line);
            return true;
        }
        false
    }
}

impl<'ast> Visit<'ast> for TestCode {
    fn visit_item(&mut self, item: &'ast Item) {
        if !self.skip(item_attrs(item), item) {
            visit::visit_item(self, item);
        }
    }

    fn visit_impl_item(&mut self, item: &'ast ImplItem) {
        let attrs: &[Attribute] = match item {
            ImplItem::Const(i) => &i.attrs,
            ImplItem::Fn(i) => &i.attrs,
            ImplItem::Type(i) => &i.attrs,
            ImplItem::Macro(i) => &i.attrs,
            _ => &[],
        };
        if !self.skip(attrs, item) {
            visit::visit_impl_item(self, item);
        }
    }

    fn visit_stmt(&mut self, stmt: &'ast syn::Stmt) {
        let attrs: &[Attribute] = match stmt {
            syn::Stmt::Local(l) => &l.attrs,
            syn::Stmt::Macro(m) => &m.attrs,
            _ => &[],
        };
        if !self.skip(attrs, stmt) {
            visit::visit_stmt(self, stmt);
        }
    }

    fn visit_attribute(&mut self, attr: &'ast Attribute) {
        if attr.path().is_ident("path") {
            self.path_attributes.push(attr.span().start().line);
        }
    }
}

fn item_attrs(item: &Item) -> &[Attribute] {
    match item {
        Item::Const(i) => &i.attrs,
        Item::Enum(i) => &i.attrs,
        Item::ExternCrate(i) => &i.attrs,
        Item::Fn(i) => &i.attrs,
        Item::ForeignMod(i) => &i.attrs,
        Item::Impl(i) => &i.attrs,
        Item::Macro(i) => &i.attrs,
        Item::Mod(i) => &i.attrs,
        Item::Static(i) => &i.attrs,
        Item::Struct(i) => &i.attrs,
        Item::Trait(i) => &i.attrs,
        Item::TraitAlias(i) => &i.attrs,
        Item::Type(i) => &i.attrs,
        Item::Union(i) => &i.attrs,
        Item::Use(i) => &i.attrs,
        _ => &[],
    }
}

/// `#[cfg(test)]` or `#[cfg(all(test, ...))]`: compiled only into tests. `any(test, ...)` is
/// not, as it may be compiled without them.
fn is_cfg_test(attrs: &[Attribute]) -> bool {
    fn test_only(meta: &Meta) -> bool {
        match meta {
            Meta::Path(p) => p.is_ident("test"),
            Meta::List(l) if l.path.is_ident("all") => l
                .parse_args_with(Punctuated::<Meta, syn::Token![,]>::parse_terminated)
                .is_ok_and(|all| all.iter().any(test_only)),
            _ => false,
        }
    }
    attrs
        .iter()
        .any(|a| a.path().is_ident("cfg") && a.parse_args::<Meta>().is_ok_and(|m| test_only(&m)))
}

// ---------------------------------------------------------------------------------------------
// The parser and the rules, on small trees.

mod resolver {
    use super::*;

    fn tree(files: &[(&str, &str)]) -> Tree {
        files
            .iter()
            .map(|(rel, text)| (rel.to_string(), format!("//! A test file.\n{text}")))
            .collect()
    }

    /// The resolved paths named in `file`, written as `a::b`, in source order.
    fn paths_in(files: &[(&str, &str)], file: &str) -> Vec<String> {
        Analysis::of(&tree(files))
            .refs
            .iter()
            .filter(|r| r.file == file)
            .map(|r| r.path.join("::"))
            .collect()
    }

    fn has(paths: &[String], want: &[&str]) {
        for w in want {
            assert!(paths.iter().any(|p| p == w), "{w} missing from {paths:#?}");
        }
    }

    #[test]
    fn files_map_to_modules_by_their_place_under_src() {
        assert_eq!(module_of("backup/stack.rs"), ["crate", "backup", "stack"]);
        assert_eq!(module_of("backup.rs"), ["crate", "backup"]);
        assert_eq!(module_of("lib.rs"), ["crate"]);
        assert_eq!(module_of("main.rs"), ["crate"]);
        assert_eq!(module_of("codec/neo4j_dump/frames.rs").len(), 4);
    }

    #[test]
    fn grouped_and_nested_use_trees() {
        let src = "use crate::{backup::x, store::{a, b as c, self, pack::*}};\n\
                   use ::tokio::sync::{mpsc, oneshot};\n\
                   use std::io;\n\
                   use bollard::Docker;\n";
        let paths = paths_in(&[("cli/foo.rs", src)], "cli/foo.rs");
        assert_eq!(
            paths,
            [
                "crate::backup::x",
                "crate::store::a",
                "crate::store::b",
                "crate::store",
                "crate::store::pack",
                "tokio::sync::mpsc",
                "tokio::sync::oneshot",
                "std::io",
                "bollard::Docker",
            ]
        );
    }

    #[test]
    fn super_and_self_resolve_against_the_files_module() {
        let walk = "use super::super::TarBuilder;\n\
                    use super::{parse, Owner};\n\
                    use self::inner::Step;\n\
                    mod inner { pub struct Step; }\n";
        let paths = paths_in(&[("codec/tar/walk.rs", walk)], "codec/tar/walk.rs");
        has(
            &paths,
            &[
                "crate::codec::TarBuilder",
                "crate::codec::tar::parse",
                "crate::codec::tar::Owner",
                "crate::codec::tar::walk::inner::Step",
            ],
        );
        // In a `foo.rs` file, `super` is the parent of `foo`; in lib.rs `self` is the root.
        let backup = paths_in(&[("backup.rs", "use super::store::Id;")], "backup.rs");
        assert_eq!(backup, ["crate::store::Id"]);
        let lib = paths_in(&[("lib.rs", "use self::store::Id;")], "lib.rs");
        assert_eq!(lib, ["crate::store::Id"]);
    }

    #[test]
    fn qualified_paths_in_code_types_attributes_and_macros() {
        let src = "fn f(id: crate::store::Id) -> Vec<crate::store::manifest::Part> {\n\
                   let k = crate::backup::stack::label::KIND;\n\
                   let v = Vec::<crate::codec::tar::Owner>::new();\n\
                   let n = <u8 as crate::parts::Size>::size();\n\
                   if k.is_empty() { return Err(crate::usage!(\"no {}\", k)); }\n\
                   format!(\"{}\", crate::source::docker::LABEL);\n\
                   tokio::spawn(async {});\n\
                   }\n\
                   #[tokio::test]\n\
                   async fn t() {}\n\
                   #[derive(serde::Serialize)]\n\
                   struct S;\n\
                   macro_rules! m { () => { $crate::cli::output::out() }; }\n\
                   macro_rules! n { ($($x:expr),*) => { $( $crate::store::put($x); )* }; }\n";
        let paths = paths_in(&[("restore.rs", src)], "restore.rs");
        has(
            &paths,
            &[
                "crate::store::Id",
                "crate::store::manifest::Part",
                "crate::backup::stack::label::KIND",
                "crate::codec::tar::Owner",
                "crate::parts::Size::size",
                "crate::usage",
                "crate::source::docker::LABEL",
                "tokio::spawn",
                "tokio::test",
                "serde::Serialize",
                "crate::cli::output::out",
                "crate::store::put",
            ],
        );
    }

    #[test]
    fn names_from_use_mod_and_blocks_are_followed() {
        let src = "use crate::backup;\n\
                   mod stack;\n\
                   struct Local;\n\
                   fn f() {\n\
                   backup::stack::pause_ms();\n\
                   stack::load();\n\
                   Local::new();\n\
                   use crate::store as s;\n\
                   s::open();\n\
                   }\n";
        let paths = paths_in(&[("restore.rs", src)], "restore.rs");
        has(
            &paths,
            &[
                "crate::backup",
                "crate::backup::stack::pause_ms",
                "crate::restore::stack::load",
                "crate::restore::Local::new",
                "crate::store",
                "crate::store::open",
            ],
        );
        // main.rs reaches the library by its crate name.
        let main = "fn main() { rbk::cli::run(); }";
        assert_eq!(
            paths_in(&[("main.rs", main)], "main.rs"),
            ["crate::cli::run"]
        );
    }

    #[test]
    fn test_modules_count_and_see_their_parent_through_globs() {
        let host = "use crate::backup::stack::label;\n\
                    #[cfg(test)]\n\
                    mod tests {\n\
                    use super::*;\n\
                    use super::super::partial::Partial;\n\
                    use crate::backup::host::HostPause;\n\
                    fn t() { label::KIND; }\n\
                    }\n";
        let a = Analysis::of(&tree(&[("restore/host.rs", host)]));
        let refs: Vec<(String, String)> = a
            .refs
            .iter()
            .map(|r| (r.module.join("::"), r.path.join("::")))
            .collect();
        let tests = "crate::restore::host::tests".to_string();
        for want in [
            "crate::restore::host",
            "crate::restore::partial::Partial",
            "crate::backup::host::HostPause",
            "crate::backup::stack::label::KIND",
        ] {
            assert!(
                refs.contains(&(tests.clone(), want.to_string())),
                "{want} missing from {refs:#?}"
            );
        }
    }

    #[test]
    fn re_exports_are_followed_to_where_the_item_lives() {
        let files = [
            ("stack.rs", "pub use crate::backup::stack::label;\n"),
            (
                "restore.rs",
                "use crate::stack::label;\nfn f() { label::KIND; crate::stack::label::PROJECT; }\n",
            ),
            (
                "backup/stack.rs",
                "pub mod label { pub const KIND: &str = \"\"; }\n",
            ),
        ];
        let a = Analysis::of(&tree(&files));
        let stack: Vec<_> = a.refs.iter().filter(|r| r.file == "stack.rs").collect();
        assert_eq!(stack.len(), 1);
        assert_eq!(stack[0].path.join("::"), "crate::backup::stack::label");
        let restore: Vec<(String, String)> = a
            .refs
            .iter()
            .filter(|r| r.file == "restore.rs")
            .map(|r| (r.path.join("::"), r.canonical.join("::")))
            .collect();
        for (path, canonical) in [
            ("crate::stack::label", "crate::backup::stack::label"),
            (
                "crate::stack::label::KIND",
                "crate::backup::stack::label::KIND",
            ),
            (
                "crate::stack::label::PROJECT",
                "crate::backup::stack::label::PROJECT",
            ),
        ] {
            assert!(
                restore.contains(&(path.to_string(), canonical.to_string())),
                "{path} -> {canonical} missing from {restore:#?}"
            );
        }
        // So restore leans on backup through the re-export, and both rules say so.
        assert_eq!(violations(&RESTORE_NOT_BACKUP, &a).len(), 1);
        assert_eq!(violations(&STACK, &a).len(), 1);
    }

    #[test]
    fn comments_strings_and_visibility_are_not_dependencies() {
        let src = "// use crate::backup::x;\n\
                   /// See [`crate::backup::stack`].\n\
                   pub(crate) fn f() -> &'static str { \"crate::backup::y\" }\n\
                   pub(in crate::store) struct S;\n";
        let paths = paths_in(&[("store/foo.rs", src)], "store/foo.rs");
        assert!(paths.iter().all(|p| !p.contains("backup")), "{paths:#?}");
        assert!(!paths.contains(&"crate::store".to_string()), "{paths:#?}");
    }

    #[test]
    fn prefixes_compare_whole_segments() {
        let p = |s: &str| s.split("::").map(String::from).collect::<Vec<_>>();
        assert!(under(&p("crate::store::pack::X"), "crate::store"));
        assert!(under(&p("crate::store"), "crate::store"));
        assert!(!under(&p("crate::storex::X"), "crate::store"));
        assert!(!under(&p("crate::source::stack::X"), "crate::stack"));
        assert!(!under(&p("tokio_util::X"), "tokio"));
        assert!(under(&p("tokio::spawn"), "tokio"));
    }

    /// Each dependency rule, run over a tree with one file breaking it, reports that file,
    /// its line and the offending path: for every banned prefix of every rule.
    #[test]
    fn every_dependency_rule_can_fail() {
        for rule in RULES {
            for banned in rule.banned {
                let module = rule.modules[0].strip_prefix("crate::").unwrap();
                let file = format!("{}/tidy_fake.rs", module.replace("::", "/"));
                let target = if *banned == "crate" {
                    "crate::elsewhere".to_string()
                } else {
                    banned.to_string()
                };
                let src = format!("fn f() {{}}\nuse {target}::Thing;\n");
                let a = Analysis::of(&tree(&[(&file, &src)]));
                let found = violations(rule, &a);
                assert_eq!(found.len(), 1, "{file} using {target}: {found:#?}");
                let at = format!("src/{file}:3:");
                assert!(found[0].starts_with(&at), "{} is not at {at}", found[0]);
                assert!(
                    found[0].contains(&format!("{target}::Thing")),
                    "{}",
                    found[0]
                );
            }
        }
    }

    /// The forms a forbidden dependency can take are all caught, and reported once per
    /// import, not again at each use of the imported name.
    #[test]
    fn a_rule_sees_every_form_of_a_dependency() {
        let files = [
            (
                "restore/stack.rs",
                "use crate::backup::stack::{PART_GRAPH, label};\n\
                 use super::super::backup::host;\n\
                 fn f() { PART_GRAPH; label::KIND; host::run(); crate::backup::stack::pause_ms(); }\n\
                 #[cfg(test)]\nmod tests { use crate::backup::Plan; }\n",
            ),
            ("restore.rs", "pub use crate::backup::snapshot;\n"),
            (
                "backup.rs",
                "fn f() { let _ = crate::restore::stack::load(); }\n",
            ),
        ];
        let a = Analysis::of(&tree(&files));
        let found = violations(&RESTORE_NOT_BACKUP, &a);
        let at: Vec<&str> = found
            .iter()
            .map(|v| v.split(": ").next().unwrap())
            .collect();
        assert_eq!(
            at,
            [
                "src/restore/stack.rs:2:28",
                "src/restore/stack.rs:2:40",
                "src/restore/stack.rs:3:27",
                "src/restore/stack.rs:4:48",
                "src/restore/stack.rs:6:32",
                "src/restore.rs:2:24",
            ],
            "{found:#?}"
        );
        assert!(found[2].contains("`super::super::backup::host` is crate::backup::host"));
        let back = violations(&BACKUP_NOT_RESTORE, &a);
        assert_eq!(back.len(), 1, "{back:#?}");
        assert!(
            back[0]
                .starts_with("src/backup.rs:2:18: crate::backup must not depend on crate::restore")
        );
    }

    #[test]
    fn the_textual_rules_can_fail() {
        let mut files = tree(&[
            (
                "store/pack.rs",
                "#[cfg(test)]\nfn helper() { println!(\"tests may print\"); }\n\
                 fn f() { println!(\"after a cfg(test) item, still production\"); }\n\
                 fn g() { std::process::Command::new(\"sh\"); }\n\
                 fn h() { std::process::exit(130); }\n",
            ),
            (
                "store/tests.rs",
                "fn t() { println!(\"a test file may print\"); }\n",
            ),
            (
                "store.rs",
                "#[cfg(test)]\nmod tests;\nmod pack;\n#[path = \"elsewhere.rs\"]\nmod moved;\n",
            ),
            ("codec/mod.rs", ""),
            (
                "cli.rs",
                "mod output;\nmacro_rules! println { () => {} }\nmacro_rules! print { () => {} }\n\
                 macro_rules! eprintln { () => {} }\n",
            ),
            (
                "cli/diff.rs",
                "fn f() { std::println!(\"x\"); let _ = std::io::stdout(); }\n",
            ),
        ]);
        files.push(("parts.rs".to_string(), "fn no_doc() {}\n".to_string()));
        let a = Analysis::of(&files);
        let prints = prints_outside_the_cli(&a);
        assert_eq!(prints.len(), 1, "{prints:#?}");
        assert!(prints[0].starts_with("src/store/pack.rs:4:"), "{prints:#?}");
        let children = processes_outside_process_command(&a);
        assert_eq!(children.len(), 1, "{children:#?}");
        assert!(
            children[0].starts_with("src/store/pack.rs:5:"),
            "{children:#?}"
        );
        let exits = exits_outside_the_cli(&a);
        assert_eq!(exits.len(), 1, "{exits:#?}");
        assert!(exits[0].starts_with("src/store/pack.rs:6:"), "{exits:#?}");
        let writer = cli_writer_bypasses(&a).join("\n");
        for want in [
            "macro_rules! println must come before the first `mod`",
            "must shadow eprint! with its own macro_rules!",
            "src/cli/diff.rs:2: print through cli/output.rs",
            "src/cli/diff.rs:2: write stdout through cli/output.rs",
        ] {
            assert!(writer.contains(want), "{want} missing from\n{writer}");
        }
        let described = files_say_what_they_are(&a).join("\n");
        for want in [
            "src/parts.rs must start with a //! line",
            "src/codec/mod.rs: use foo.rs + foo/, not mod.rs",
            "src/store.rs:5: #[path]",
        ] {
            assert!(described.contains(want), "{want} missing from\n{described}");
        }
    }
}
