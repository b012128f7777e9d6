//! Drawing progress: indicatif bars on a terminal, JSON lines on request, nothing in cron logs.
//!
//! Bars go to stderr and only when stderr is a terminal: a nightly job's
//! log (or mail) must hold the report and the errors, not thousands of
//! redrawn lines. `--progress json` is for programs that drive rbk: one
//! JSON object per line on stderr, stdout keeping the one `--json` result.

use std::fmt;
use std::io::{self, IsTerminal, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use clap::ValueEnum;
use indicatif::{HumanBytes, MultiProgress, ProgressBar, ProgressState, ProgressStyle};

use crate::progress::{Progress, Silent, Task, Unit};

/// `--progress`: how long operations show how far they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProgressMode {
    /// Bars on stderr when it is a terminal (and not --quiet); nothing otherwise.
    Auto,
    /// One JSON object per line on stderr: start, progress (at most every
    /// second per task) and end of each task.
    Json,
    /// Nothing.
    None,
}

/// The reporter for this run.
pub fn reporter(mode: ProgressMode, quiet: bool) -> Arc<dyn Progress> {
    match mode {
        ProgressMode::Auto if !quiet && io::stderr().is_terminal() => Arc::new(Bars),
        ProgressMode::Json => Arc::new(JsonLines {
            next: AtomicU64::new(1),
            started: Instant::now(),
        }),
        _ => Arc::new(Silent),
    }
}

/// The bars of this process, created by the first task: log lines must
/// be written around them (see `LogWriter`).
static BARS: OnceLock<MultiProgress> = OnceLock::new();

struct Bars;

impl Progress for Bars {
    fn task(&self, label: &str, unit: Unit, total: Option<u64>) -> Box<dyn Task> {
        let bar = match total {
            Some(t) => ProgressBar::new(t),
            None => ProgressBar::no_length(),
        };
        let added = Arc::new(AtomicU64::new(0));
        bar.set_style(style(unit, total.is_some(), added.clone()));
        bar.set_prefix(label.to_string());
        let bar = BARS.get_or_init(MultiProgress::new).add(bar);
        // Ticks while nothing moves too (a dump that has not started
        // writing yet), so that a stalled run still looks alive and timed.
        bar.enable_steady_tick(Duration::from_millis(250));
        Box::new(BarTask { bar, added })
    }
}

fn template(unit: Unit, known: bool) -> &'static str {
    // About 100 columns at most with a short label; indicatif cuts lines
    // to the terminal's width.
    match (unit, known) {
        (Unit::Bytes, true) => {
            "{prefix:>12} [{bar:24}] {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta} {added}"
        }
        (Unit::Bytes, false) => {
            "{prefix:>12} {spinner} {bytes} {binary_bytes_per_sec} {elapsed} {added}"
        }
        (Unit::Items, true) => "{prefix:>12} [{bar:24}] {pos}/{len} {elapsed}",
        (Unit::Items, false) => "{prefix:>12} {spinner} {pos} {elapsed}",
    }
}

/// `added` is read when the bar is drawn (at most 20 times a second), so
/// that counting a stored chunk stays one atomic add on the snapshot path.
fn style(unit: Unit, known: bool, added: Arc<AtomicU64>) -> ProgressStyle {
    // The templates are constants, each parsed by a unit test.
    ProgressStyle::with_template(template(unit, known))
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .with_key("added", move |_: &ProgressState, w: &mut dyn fmt::Write| {
            let n = added.load(Ordering::Relaxed);
            if n > 0 {
                let _ = write!(w, "added {}", HumanBytes(n));
            }
        })
        .progress_chars("=> ")
}

struct BarTask {
    bar: ProgressBar,
    added: Arc<AtomicU64>,
}

impl Task for BarTask {
    fn advance(&self, n: u64) {
        self.bar.inc(n);
    }

    fn added(&self, n: u64) {
        self.added.fetch_add(n, Ordering::Relaxed);
    }
}

impl Drop for BarTask {
    fn drop(&mut self) {
        // The report printed afterwards says what was done; the bar was only
        // for while it ran.
        self.bar.finish_and_clear();
        if let Some(multi) = BARS.get() {
            multi.remove(&self.bar);
        }
    }
}

struct JsonLines {
    next: AtomicU64,
    started: Instant,
}

/// How often a task's progress line may repeat.
const JSON_INTERVAL: Duration = Duration::from_secs(1);

impl Progress for JsonLines {
    fn task(&self, label: &str, unit: Unit, total: Option<u64>) -> Box<dyn Task> {
        let task = JsonTask {
            id: self.next.fetch_add(1, Ordering::Relaxed),
            label: label.to_string(),
            unit,
            total,
            done: AtomicU64::new(0),
            added: AtomicU64::new(0),
            process_started: self.started,
            started: Instant::now(),
            last: Mutex::new(Instant::now()),
        };
        task.emit("start");
        Box::new(task)
    }
}

struct JsonTask {
    id: u64,
    label: String,
    unit: Unit,
    total: Option<u64>,
    done: AtomicU64,
    added: AtomicU64,
    process_started: Instant,
    started: Instant,
    last: Mutex<Instant>,
}

impl JsonTask {
    fn emit(&self, event: &str) {
        let line = serde_json::json!({
            "type": event,
            "task": self.id,
            "label": self.label,
            "unit": self.unit.name(),
            "done": self.done.load(Ordering::Relaxed),
            "total": self.total,
            "added": self.added.load(Ordering::Relaxed),
            "elapsed_ms": self.started.elapsed().as_millis() as u64,
            "time_ms": self.process_started.elapsed().as_millis() as u64,
        });
        // One write per line, so lines from parallel tasks never interleave;
        // a closed stderr must not fail the backup.
        let _ = io::stderr()
            .lock()
            .write_all(format!("{line}\n").as_bytes());
    }

    fn maybe_emit(&self) {
        let due = {
            let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
            let due = last.elapsed() >= JSON_INTERVAL;
            if due {
                *last = Instant::now();
            }
            due
        };
        if due {
            self.emit("progress");
        }
    }
}

impl Task for JsonTask {
    fn advance(&self, n: u64) {
        self.done.fetch_add(n, Ordering::Relaxed);
        self.maybe_emit();
    }

    fn added(&self, n: u64) {
        self.added.fetch_add(n, Ordering::Relaxed);
        self.maybe_emit();
    }
}

impl Drop for JsonTask {
    fn drop(&mut self) {
        self.emit("end");
    }
}

/// Where log lines go: stderr, with the bars lifted out of the way while a
/// line is written, so that `-v` output and bars do not overwrite each other.
pub struct LogWriter;

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match BARS.get() {
            Some(multi) => multi.suspend(|| io::stderr().write(buf)),
            None => io::stderr().write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        io::stderr().flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_parses() {
        for unit in [Unit::Bytes, Unit::Items] {
            for known in [true, false] {
                assert!(
                    ProgressStyle::with_template(template(unit, known)).is_ok(),
                    "{unit:?}, total known: {known}"
                );
            }
        }
    }
}
