//! `StderrTail`: the last lines a child wrote to its stderr, bounded in lines and bytes, for the error that names it.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, ErrorKind, Read};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// The last [`LINES`](Self::LINES) lines of a child's stderr, each cut to
/// [`LINE_CHARS`](Self::LINE_CHARS) characters. Cloning shares the tail: one clone drains
/// the pipe (a thread, a task), another reads the text once the child is done.
///
/// Bounded because a child's stderr is not rbk's to size: a dump that logs a line per
/// record, or a binary blob without a newline, must not grow rbk's memory.
#[derive(Clone, Default)]
pub struct StderrTail(Arc<Mutex<VecDeque<String>>>);

impl StderrTail {
    /// Lines kept: enough for a program's error and the context it prints before it.
    pub const LINES: usize = 20;
    /// Characters kept of each line.
    pub const LINE_CHARS: usize = 500;
    /// Bytes of one line read before the rest of it is skipped: [`LINE_CHARS`](Self::LINE_CHARS)
    /// characters are at most 4 bytes each (and an invalid sequence at least one byte per
    /// replacement character), plus room for a character cut at the end.
    const LINE_BYTES: usize = 4 * Self::LINE_CHARS + 4;

    /// Keeps `line` (without its newline) as the newest line, dropping the oldest past
    /// [`LINES`](Self::LINES).
    pub fn push_line(&self, line: &[u8]) {
        let line = String::from_utf8_lossy(line)
            .chars()
            .take(Self::LINE_CHARS)
            .collect();
        let mut t = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if t.len() == Self::LINES {
            t.pop_front();
        }
        t.push_back(line);
    }

    /// Keeps the lines of one chunk of output as the engine delivers it (a Docker log frame).
    /// Blank lines are skipped: a frame may end a line the previous frame began, and a tail
    /// of empty lines would say nothing.
    pub fn push_bytes(&self, bytes: &[u8]) {
        for line in String::from_utf8_lossy(bytes).lines() {
            if !line.trim().is_empty() {
                self.push_line(line.as_bytes());
            }
        }
    }

    /// Reads `stderr` to its end, line by line, keeping the tail. A read error ends the
    /// drain (the tail so far stays): the child's exit status is what reports its failure.
    pub fn drain(&self, stderr: impl Read) {
        let mut reader = BufReader::new(stderr);
        let mut line = Vec::new();
        loop {
            let (used, ended) = match reader.fill_buf() {
                Ok([]) => break,
                Ok(buf) => {
                    let (text, ended) = match buf.iter().position(|&b| b == b'\n') {
                        Some(i) => (&buf[..i], true),
                        None => (buf, false),
                    };
                    let room = Self::LINE_BYTES.saturating_sub(line.len());
                    line.extend_from_slice(&text[..text.len().min(room)]);
                    (text.len() + usize::from(ended), ended)
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => return,
            };
            reader.consume(used);
            if ended {
                self.push_line(&line);
                line.clear();
            }
        }
        if !line.is_empty() {
            self.push_line(&line);
        }
    }

    /// [`drain`](Self::drain) on a thread of its own, so a child that fills its stderr pipe
    /// while rbk reads its stdout (or writes its stdin) is never blocked by it. Join the
    /// handle before [`text`](Self::text) to have the last lines.
    pub fn drain_on_thread(&self, stderr: impl Read + Send + 'static) -> JoinHandle<()> {
        let tail = self.clone();
        std::thread::spawn(move || tail.drain(stderr))
    }

    /// The lines kept, oldest first, joined by newlines.
    pub fn text(&self) -> String {
        let t = self.0.lock().unwrap_or_else(|p| p.into_inner());
        t.iter().cloned().collect::<Vec<_>>().join("\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_last_lines_each_cut_short() {
        let tail = StderrTail::default();
        let mut input = String::new();
        for i in 0..30 {
            input.push_str(&format!("line {i}\n"));
        }
        input.push_str(&"x".repeat(100_000));
        input.push_str("\n\nlast");
        tail.drain(input.as_bytes());
        let text = tail.text();
        let lines: Vec<_> = text.split('\n').collect();
        assert_eq!(lines.len(), StderrTail::LINES);
        assert_eq!(lines[0], "line 13");
        assert_eq!(lines[17], "x".repeat(StderrTail::LINE_CHARS));
        // A blank line the child wrote is kept, as it wrote it.
        assert_eq!(lines[18], "");
        assert_eq!(lines[19], "last");
    }

    #[test]
    fn a_long_line_is_cut_at_characters_not_bytes() {
        let tail = StderrTail::default();
        let line = "é€😀".repeat(1000);
        tail.drain(format!("{line}\n").as_bytes());
        let want: String = line.chars().take(StderrTail::LINE_CHARS).collect();
        assert_eq!(tail.text(), want);
    }

    #[test]
    fn frames_skip_blank_lines() {
        let tail = StderrTail::default();
        tail.push_bytes(b"first\n\n");
        tail.push_bytes(b"  \nsecond\n");
        assert_eq!(tail.text(), "first\nsecond");
    }
}
