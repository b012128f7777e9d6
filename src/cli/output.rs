//! Everything the CLI prints, through one writer that never panics, and formatting for people.
//!
//! `println!` panics when stdout is a closed pipe (`rbk snapshots | head`) or a full disk, and
//! a panic in the middle of a command is an exit code no script expects. So `cli.rs` shadows
//! `println!`, `print!`, `eprintln!` and `eprint!` with macros that land here: a failed write
//! to stdout is recorded (the first failure; later output is dropped) and the command goes on
//! to its end, releasing its locks as usual; `cli::run` then decides, from `finish()`, that a
//! closed pipe is a quiet end and anything else one error. stderr failures are ignored: there
//! is nowhere left to report them.
//!
//! Names rbk did not choose (part names, tags, hosts, labels, lock descriptions, file names in
//! the repository) can hold control characters: `esc` shows them as `\n`, `\x1b`, `\u{9b}`,
//! so that no name can forge an output line or send the terminal an escape sequence. As a
//! second line of defence the writer escapes every control character but the line end in
//! whatever it prints, and `json` escapes those serde_json leaves raw (DEL, C1 controls).

use std::borrow::Cow;
use std::fmt::{self, Write as _};
use std::io::{self, Write};
use std::sync::Mutex;

/// The first failed write to stdout, if any.
static STDOUT_FAILURE: Mutex<Option<io::Error>> = Mutex::new(None);

/// `println!` and `print!` inside `cli`: `args` on stdout, with a line end when `line`.
pub fn out(args: fmt::Arguments<'_>, line: bool) {
    let mut text = guard(args);
    if line {
        text.push('\n');
    }
    write_stdout(text.as_bytes());
}

/// `eprintln!` and `eprint!` inside `cli`: `args` on stderr; a failure is ignored.
pub fn err(args: fmt::Arguments<'_>, line: bool) {
    let mut text = guard(args);
    if line {
        text.push('\n');
    }
    // One write per message, so that lines from threads do not interleave.
    let _ = io::stderr().lock().write_all(text.as_bytes());
}

/// Bytes rbk generated itself (the man page, a completion script), on stdout as they are.
pub fn raw(bytes: &[u8]) {
    write_stdout(bytes);
}

/// Prints a value as one JSON line on stdout.
pub fn json(value: &serde_json::Value) {
    let mut text = String::new();
    // serde_json escapes the C0 controls; DEL, the C1 controls and the bidirectional
    // overrides can only stand inside strings, where `\uXXXX` means the same character.
    for c in value.to_string().chars() {
        if unprintable(c) {
            let _ = write!(text, "\\u{:04x}", c as u32);
        } else {
            text.push(c);
        }
    }
    text.push('\n');
    write_stdout(text.as_bytes());
}

fn write_stdout(bytes: &[u8]) {
    let mut failure = STDOUT_FAILURE.lock().unwrap_or_else(|p| p.into_inner());
    if failure.is_some() {
        return;
    }
    if let Err(e) = io::stdout().lock().write_all(bytes) {
        *failure = Some(e);
    }
}

/// Flushes stdout and returns its first failure, if any: called once, at the end of a run.
pub fn finish() -> Option<io::Error> {
    let mut failure = STDOUT_FAILURE.lock().unwrap_or_else(|p| p.into_inner());
    if failure.is_none()
        && let Err(e) = io::stdout().lock().flush()
    {
        *failure = Some(e);
    }
    failure.take()
}

/// Whether stderr is a terminal (log lines are coloured only there).
pub fn stderr_is_terminal() -> bool {
    io::IsTerminal::is_terminal(&io::stderr())
}

/// A clap error or help text printed as clap prints it; `Err` when stdout (help, version)
/// could not be written.
pub fn clap_message(e: &clap::Error) -> io::Result<()> {
    let printed = e.print();
    if e.use_stderr() {
        return Ok(());
    }
    printed.and_then(|()| io::stdout().lock().flush())
}

/// A string rbk did not choose, for one line of human output: every control character and
/// bidirectional override escaped (`\n`, `\t`, `\x1b`, `\u{9b}`, `\u{202e}`). Use it on every
/// name, tag, host, label, path or description that comes from the repository or a user.
pub fn esc(s: &str) -> Cow<'_, str> {
    escape(s, |_| false)
}

/// `esc` for each string, joined by `sep`.
pub fn esc_join<S: AsRef<str>>(items: &[S], sep: &str) -> String {
    items
        .iter()
        .map(|s| esc(s.as_ref()))
        .collect::<Vec<_>>()
        .join(sep)
}

/// What the writer lets through: everything but control characters other than the line end.
fn guard(args: fmt::Arguments<'_>) -> String {
    let text = fmt::format(args);
    match escape(&text, |c| c == '\n') {
        Cow::Borrowed(_) => text,
        Cow::Owned(escaped) => escaped,
    }
}

fn escape(s: &str, keep: impl Fn(char) -> bool) -> Cow<'_, str> {
    if !s.chars().any(|c| unprintable(c) && !keep(c)) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match c {
            c if !unprintable(c) || keep(c) => out.push(c),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_ascii() => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
        }
    }
    Cow::Owned(out)
}

/// Control characters (C0, DEL, C1) and the bidirectional controls, which reorder how the
/// rest of a line is shown.
fn unprintable(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{61c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
        )
}

pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

pub fn rate(bytes: u64, ms: u64) -> String {
    if ms == 0 {
        return "-".into();
    }
    format!("{:.0} MB/s", bytes as f64 / 1e6 / (ms as f64 / 1000.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn esc_shows_every_control_character_and_override() {
        assert_eq!(esc("plain name.dump"), "plain name.dump");
        assert!(matches!(esc("plain"), Cow::Borrowed(_)));
        assert_eq!(
            esc("a\nb\rc\td\x1b[31me\x7ff\u{9b}g\u{202e}h\\i"),
            "a\\nb\\rc\\td\\x1b[31me\\x7ff\\u{9b}g\\u{202e}h\\i"
        );
        assert_eq!(esc("ünïcødé ✓"), "ünïcødé ✓");
    }

    #[test]
    fn the_writer_keeps_line_ends_and_nothing_else() {
        assert_eq!(
            guard(format_args!("one\ntwo\x1b[2J\tthree")),
            "one\ntwo\\x1b[2J\\tthree"
        );
    }
}
