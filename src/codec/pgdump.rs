//! The shape of a plain-format `pg_dump`: its header, every `COPY` block closed, and the line pg_dump writes last.
//!
//! A dump cut short (a full disk, a killed `pg_dump` whose exit status was lost, a file
//! truncated on the NAS before it was backed up) still restores with `psql`, silently
//! missing the tables it never reached. pg_dump ends every complete dump with the comment
//! `-- PostgreSQL database dump complete`; the data of each table sits between `COPY ...
//! FROM stdin;` and a line `\.`. This checker reads the stream once, keeping only the start
//! of the current line, so its memory does not grow with the dump or with its longest line.

use std::io::{self, Write};

/// What pg_dump writes near the top of every plain-format dump.
const HEADER: &[u8] = b"-- PostgreSQL database dump";
/// What pg_dump writes after everything else (before a `\unrestrict` line, in the releases
/// since August 2025).
const COMPLETE: &[u8] = b"-- PostgreSQL database dump complete";
/// How many lines the header may come after (the first is `--`).
const HEADER_WITHIN_LINES: u64 = 8;
/// Bytes of each line kept: enough to classify it.
const KEEP: usize = 64;

/// Figures of a well-formed dump.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PgDumpSummary {
    /// `COPY` blocks: tables with data.
    pub tables: u64,
    /// Data rows over all of them.
    pub rows: u64,
    pub lines: u64,
}

/// A streaming check of a plain-format pg_dump: write the dump into it, then [`finish`].
///
/// [`finish`]: PgDumpCheck::finish
#[derive(Debug, Default)]
pub struct PgDumpCheck {
    /// The start of the line being read.
    head: Vec<u8>,
    /// Whether the line being read has any byte yet.
    in_line: bool,
    lines: u64,
    header_seen: bool,
    in_copy: bool,
    tables: u64,
    rows: u64,
    complete_seen: bool,
    /// The first line after the `complete` line that pg_dump would not write there.
    after_complete: Option<u64>,
}

impl PgDumpCheck {
    pub fn new() -> PgDumpCheck {
        PgDumpCheck::default()
    }

    fn end_line(&mut self) {
        self.lines += 1;
        let line = trim_cr(&self.head);
        if self.in_copy {
            if line == b"\\." {
                self.in_copy = false;
            } else {
                self.rows += 1;
            }
        } else if line.starts_with(COMPLETE) {
            self.complete_seen = true;
        } else if line.starts_with(HEADER) && self.lines <= HEADER_WITHIN_LINES {
            self.header_seen = true;
        } else if self.complete_seen {
            let expected = line.is_empty() || line.starts_with(b"--") || line.starts_with(b"\\");
            if !expected && self.after_complete.is_none() {
                self.after_complete = Some(self.lines);
            }
        } else if line.starts_with(b"COPY ") {
            self.in_copy = true;
            self.tables += 1;
        }
        self.head.clear();
        self.in_line = false;
    }

    /// Whether what was written is a whole plain-format dump; the reason when it is not.
    pub fn finish(mut self) -> Result<PgDumpSummary, String> {
        if self.in_line {
            // pg_dump ends every line: a last one without its newline was cut short. After
            // the `complete` line that costs nothing (only comments follow it); before, the
            // line is judged as it is, and the dump is incomplete unless it was that line.
            if self.complete_seen {
                self.lines += 1;
            } else {
                self.end_line();
            }
        }
        if !self.header_seen {
            return Err(
                "it does not start like a plain-format pg_dump (no \"-- PostgreSQL database dump\" line at the top)"
                    .into(),
            );
        }
        if self.in_copy {
            return Err(format!(
                "it ends inside the data of its table number {} (no closing \\. line): cut short",
                self.tables
            ));
        }
        if !self.complete_seen {
            return Err(self.cut_short());
        }
        if let Some(line) = self.after_complete {
            return Err(format!(
                "it goes on after pg_dump's last line (line {line}): two dumps joined, or garbage appended"
            ));
        }
        Ok(PgDumpSummary {
            tables: self.tables,
            rows: self.rows,
            lines: self.lines,
        })
    }

    fn cut_short(&self) -> String {
        format!(
            "it has no \"-- PostgreSQL database dump complete\" line, which pg_dump writes last: cut short after {} line(s) and {} table(s)",
            self.lines, self.tables
        )
    }
}

fn trim_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

impl Write for PgDumpCheck {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut rest = buf;
        while !rest.is_empty() {
            match rest.iter().position(|&b| b == b'\n') {
                Some(at) => {
                    self.keep(&rest[..at]);
                    self.end_line();
                    rest = &rest[at + 1..];
                }
                None => {
                    self.keep(rest);
                    rest = &[];
                }
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl PgDumpCheck {
    fn keep(&mut self, bytes: &[u8]) {
        if !bytes.is_empty() {
            self.in_line = true;
        }
        let room = KEEP.saturating_sub(self.head.len());
        self.head.extend_from_slice(&bytes[..bytes.len().min(room)]);
    }
}

/// Whether a stream that starts with `prefix` looks like a plain-format pg_dump: its first
/// line is `--`, and the header comes within the next few.
pub fn looks_like_pg_dump(prefix: &[u8]) -> bool {
    let mut lines = prefix.split(|&b| b == b'\n');
    lines.next().map(trim_cr) == Some(b"--".as_slice())
        && lines
            .take(HEADER_WITHIN_LINES as usize)
            .any(|l| trim_cr(l).starts_with(HEADER) && !trim_cr(l).starts_with(COMPLETE))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DUMP: &str = "--\n-- PostgreSQL database dump\n--\n\n\\restrict abc\n\
        SET statement_timeout = 0;\nCREATE TABLE public.t (a integer);\n\
        COPY public.t (a) FROM stdin;\n1\n2\n\\.\n\n\
        COPY public.u (b) FROM stdin;\n\\.\n\n\
        --\n-- PostgreSQL database dump complete\n--\n\n\\unrestrict abc\n\n";

    fn check_in_pieces(bytes: &[u8], piece: usize) -> Result<PgDumpSummary, String> {
        let mut c = PgDumpCheck::new();
        for chunk in bytes.chunks(piece) {
            c.write_all(chunk).expect("infallible");
        }
        c.finish()
    }

    #[test]
    fn a_whole_dump_passes_however_it_is_cut_into_writes() {
        for piece in [1, 2, 3, 7, 64, 4096] {
            let s = check_in_pieces(DUMP.as_bytes(), piece).expect("whole");
            assert_eq!(s.tables, 2, "piece {piece}");
            assert_eq!(s.rows, 2, "piece {piece}");
        }
        assert!(looks_like_pg_dump(DUMP.as_bytes()));
        assert!(!looks_like_pg_dump(b"SQLite format 3\0"));
        assert!(!looks_like_pg_dump(b"x\n-- PostgreSQL database dump\n"));
    }

    #[test]
    fn every_cut_of_a_dump_fails_until_its_last_line() {
        let bytes = DUMP.as_bytes();
        let complete = DUMP
            .find("-- PostgreSQL database dump complete")
            .expect("marker");
        let whole_at = complete + COMPLETE.len();
        for cut in 0..bytes.len() {
            let r = check_in_pieces(&bytes[..cut], 5);
            assert_eq!(r.is_ok(), cut >= whole_at, "cut at {cut}: {r:?}");
        }
    }

    #[test]
    fn a_dump_cut_inside_a_table_says_so() {
        let at = DUMP.find("2\n\\.").expect("row");
        let e = check_in_pieces(&DUMP.as_bytes()[..at], 4096).unwrap_err();
        assert!(e.contains("inside the data"), "{e}");
        let e = check_in_pieces(b"hello\n", 4096).unwrap_err();
        assert!(e.contains("does not start like"), "{e}");
    }

    #[test]
    fn text_after_the_last_line_fails() {
        let joined = format!("{DUMP}CREATE TABLE x (a int);\n");
        let e = check_in_pieces(joined.as_bytes(), 4096).unwrap_err();
        assert!(e.contains("goes on after"), "{e}");
    }

    #[test]
    fn long_lines_cost_no_memory() {
        let mut c = PgDumpCheck::new();
        c.write_all(b"--\n-- PostgreSQL database dump\nCOPY t (a) FROM stdin;\n")
            .expect("infallible");
        for _ in 0..1000 {
            c.write_all(&[b'x'; 4096]).expect("infallible");
        }
        assert!(c.head.len() <= KEEP);
        c.write_all(b"\n\\.\n-- PostgreSQL database dump complete\n")
            .expect("infallible");
        assert_eq!(c.finish().expect("whole").rows, 1);
    }
}
