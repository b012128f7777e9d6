//! `--metrics-file` and `--ping-url`: how a monitored command (snapshot, restore, prune, check, verify, copy) tells a watcher that it ran, and how it went.
//!
//! Neither may change what the command does or its exit code: a metrics file that cannot
//! be written or a ping that cannot be delivered is a warning on stderr, never a failed
//! backup.

pub mod metrics;

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use super::global::GlobalArgs;
use super::output::esc;
use super::{Command, exit};
use crate::remote::ping::{self, Signal};
use crate::store::format::FileKind;
use metrics::Samples;

/// A figure of the run (`rbk_last_<name>`), as the command records it when it has it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Figure {
    ReadBytes,
    AddedBytes,
    Chunks,
    NewChunks,
    PauseSeconds,
    FreedBytes,
    Warnings,
}

impl Figure {
    fn metric(self) -> &'static str {
        match self {
            Figure::ReadBytes => "rbk_last_read_bytes",
            Figure::AddedBytes => "rbk_last_added_bytes",
            Figure::Chunks => "rbk_last_chunks",
            Figure::NewChunks => "rbk_last_new_chunks",
            Figure::PauseSeconds => "rbk_last_pause_seconds",
            Figure::FreedBytes => "rbk_last_freed_bytes",
            Figure::Warnings => "rbk_last_warnings",
        }
    }
}

/// What the running command recorded. One process runs one command, so one list.
static FIGURES: Mutex<Vec<(Figure, f64)>> = Mutex::new(Vec::new());

/// Records a figure of this run for the metrics file (the last value of each counts).
pub fn record(figure: Figure, value: f64) {
    FIGURES
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push((figure, value));
}

/// The monitoring of one run of a command.
pub struct Monitor {
    command: &'static str,
    metrics_file: Option<PathBuf>,
    ping_url: Option<String>,
    started: Instant,
}

/// The commands that are monitored, by name. A dry run did nothing: it is not a run a
/// watcher should count as last night's backup.
fn monitored(command: &Command) -> Option<&'static str> {
    Some(match command {
        Command::Snapshot(a) if !a.dry_run => "snapshot",
        Command::Restore(a) if !a.dry_run => "restore",
        Command::Prune(a) if !a.dry_run => "prune",
        Command::Check(_) => "check",
        Command::Verify(_) => "verify",
        Command::Copy(a) if !a.dry_run => "copy",
        _ => return None,
    })
}

impl Monitor {
    /// The monitoring `global` and rbk.toml ask for, if `command` is one that is
    /// monitored. A configuration that cannot be read monitors nothing here: the command
    /// reports it itself.
    pub fn of(global: &GlobalArgs, command: &Command) -> Option<Monitor> {
        let name = monitored(command)?;
        let settings = global.settings().ok();
        let metrics_file = global
            .metrics_file
            .clone()
            .or_else(|| settings.as_ref().and_then(|s| s.metrics.file.clone()));
        let ping_url = global
            .ping_url
            .clone()
            .or_else(|| settings.as_ref().and_then(|s| s.ping.url.clone()));
        if metrics_file.is_none() && ping_url.is_none() {
            return None;
        }
        Some(Monitor {
            command: name,
            metrics_file,
            ping_url,
            started: Instant::now(),
        })
    }

    /// Tells the watcher the run has begun.
    pub fn start(&self) {
        self.ping(Signal::Start, String::new());
    }

    /// Tells the watcher how the run ended, and writes the metrics file. `error` is the
    /// failed command's message.
    pub fn finish(self, global: &GlobalArgs, code: u8, error: Option<&str>) {
        let success = code == exit::OK || code == exit::WARNINGS;
        if self.ping_url.is_some() {
            let body = match (success, error) {
                (true, _) if code == exit::WARNINGS => {
                    format!("rbk {}: done, with warnings (exit {code})", self.command)
                }
                (true, _) => format!("rbk {}: done", self.command),
                // The last lines: a monitoring service keeps a limited body.
                (false, Some(e)) => format!(
                    "rbk {} failed (exit {code}):\n{}",
                    self.command,
                    last_lines(e, 20, 8 * 1024)
                ),
                (false, None) => format!("rbk {} failed (exit {code})", self.command),
            };
            let signal = if success {
                Signal::Success
            } else {
                Signal::Failure
            };
            self.ping(signal, body);
        }
        if let Some(path) = &self.metrics_file {
            let samples = self.samples(global, path, code, success);
            // Even with --quiet, as for a ping: a watcher reading a stale file is misled.
            if let Err(e) = metrics::write_atomically(path, &metrics::render(&samples)) {
                eprintln!("warning: {}", esc(&format!("{e:#}")));
            }
        }
    }

    fn ping(&self, signal: Signal, body: String) {
        let Some(url) = &self.ping_url else { return };
        if let Err(e) = ping::ping(url, signal, body) {
            // Even with --quiet: a watcher that hears nothing will raise an alarm, and this
            // line says why.
            eprintln!(
                "warning: the monitoring ping to {} was not delivered: {}",
                esc(&ping::shown(url)),
                esc(&format!("{e:#}"))
            );
        }
    }

    /// The file's samples after this run: the ones it held, this command's replaced.
    fn samples(
        &self,
        global: &GlobalArgs,
        path: &std::path::Path,
        code: u8,
        success: bool,
    ) -> Samples {
        let mut samples = metrics::read(path);
        let label = format!("command=\"{}\"", self.command);
        // This command's figures of an earlier run describe that run, not this one.
        samples.retain(|(name, labels), _| {
            labels != &label
                || name == "rbk_last_success_timestamp_seconds"
                || name == "rbk_last_failure_timestamp_seconds"
        });
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        let mut set = |name: &str, labels: &str, value: f64| {
            samples.insert((name.to_string(), labels.to_string()), value);
        };
        set("rbk_last_run_timestamp_seconds", &label, now.floor());
        let when = if success {
            "rbk_last_success_timestamp_seconds"
        } else {
            "rbk_last_failure_timestamp_seconds"
        };
        set(when, &label, now.floor());
        set("rbk_last_exit_code", &label, f64::from(code));
        set(
            "rbk_last_duration_seconds",
            &label,
            (self.started.elapsed().as_secs_f64() * 1000.0).round() / 1000.0,
        );
        for (figure, value) in FIGURES.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            set(figure.metric(), &label, *value);
        }
        let result = if success { "success" } else { "failure" };
        let runs = (
            "rbk_runs_total".to_string(),
            format!("{label},result=\"{result}\""),
        );
        *samples.entry(runs).or_insert(0.0) += 1.0;
        // What the repository holds now, from a listing (no password needed): left as it
        // was when the repository cannot be listed.
        if let Ok(backend) = global.backend() {
            if let Ok(packs) = backend.list_sized(FileKind::Pack) {
                let size: u64 = packs.iter().map(|(_, s)| s).sum();
                samples.insert(
                    ("rbk_repository_size_bytes".into(), String::new()),
                    size as f64,
                );
            }
            if let Ok(snapshots) = backend.list(FileKind::Snapshot) {
                samples.insert(
                    ("rbk_snapshots".into(), String::new()),
                    snapshots.len() as f64,
                );
            }
        }
        samples
    }
}

/// The last `lines` lines of `text`, at most `max` bytes (cut at a character boundary).
fn last_lines(text: &str, lines: usize, max: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    let tail = all[all.len().saturating_sub(lines)..].join("\n");
    if tail.len() <= max {
        return tail;
    }
    let mut from = tail.len() - max;
    while !tail.is_char_boundary(from) {
        from += 1;
    }
    tail[from..].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_lines_are_kept_within_a_bound() {
        let text: String = (0..100).map(|i| format!("line {i}\n")).collect();
        let tail = last_lines(&text, 3, 1000);
        assert_eq!(tail, "line 97\nline 98\nline 99");
        let cut = last_lines("ééééé", 1, 3);
        assert_eq!(cut, "é");
    }
}
