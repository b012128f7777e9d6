//! The Prometheus text-format file that `--metrics-file` keeps for node_exporter's textfile collector: rendered, merged with the runs it already holds, and replaced atomically.
//!
//! One file may serve every command of a nightly run (snapshot, prune, copy, ...): each
//! command's samples carry a `command` label, and a run rewrites only its own, keeping
//! the others and its own last success (or failure) time, so "no successful snapshot for
//! 26 h" stays answerable after a failed night.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use anyhow::{Context, Result};

/// A metric rbk writes: its name, type and help line.
pub struct Metric {
    pub name: &'static str,
    pub kind: &'static str,
    pub help: &'static str,
}

const fn gauge(name: &'static str, help: &'static str) -> Metric {
    Metric {
        name,
        kind: "gauge",
        help,
    }
}

/// Every metric, in the order the file lists them (docs/METRICS.md describes each).
pub const METRICS: &[Metric] = &[
    gauge(
        "rbk_last_run_timestamp_seconds",
        "When the command's last run ended (Unix time).",
    ),
    gauge(
        "rbk_last_success_timestamp_seconds",
        "When the command last ended with success (exit 0, or 6: done with warnings).",
    ),
    gauge(
        "rbk_last_failure_timestamp_seconds",
        "When the command last failed (any other exit code).",
    ),
    gauge(
        "rbk_last_exit_code",
        "The exit code of the command's last run.",
    ),
    gauge(
        "rbk_last_duration_seconds",
        "How long the command's last run took.",
    ),
    gauge(
        "rbk_last_warnings",
        "Warnings the command's last run reported.",
    ),
    gauge(
        "rbk_last_read_bytes",
        "Bytes the last run read: source bytes stored by snapshot, restored by restore, verified by check and verify.",
    ),
    gauge(
        "rbk_last_added_bytes",
        "Bytes the last run added to the repository (compressed and encrypted).",
    ),
    gauge("rbk_last_chunks", "Chunks of the last snapshot (or copy)."),
    gauge(
        "rbk_last_new_chunks",
        "Chunks the last snapshot (or copy) stored because the repository lacked them.",
    ),
    gauge(
        "rbk_last_pause_seconds",
        "How long the last stack snapshot kept RushDB stopped.",
    ),
    gauge(
        "rbk_last_freed_bytes",
        "Bytes of packs the last prune deleted.",
    ),
    Metric {
        name: "rbk_runs_total",
        kind: "counter",
        help: "Runs of the command since the metrics file was created, by result.",
    },
    gauge(
        "rbk_snapshots",
        "Snapshots in the repository after the last run.",
    ),
    gauge(
        "rbk_repository_size_bytes",
        "Bytes of packs in the repository after the last run.",
    ),
];

/// Samples by (metric name, label set as written between the braces).
pub type Samples = BTreeMap<(String, String), f64>;

/// The samples of an existing file: the lines rbk wrote (`name{labels} value`), others
/// skipped. A missing or unreadable file holds none: the next write starts it afresh.
pub fn read(path: &Path) -> Samples {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Samples::new();
    };
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let value: f64 = value.parse().ok()?;
            let (name, labels) = match series.split_once('{') {
                Some((n, rest)) => (n, rest.strip_suffix('}')?),
                None => (series, ""),
            };
            METRICS
                .iter()
                .any(|m| m.name == name)
                .then(|| ((name.to_string(), labels.to_string()), value))
        })
        .collect()
}

/// The file's text: every metric with samples, with its HELP and TYPE lines.
pub fn render(samples: &Samples) -> String {
    let mut out = String::new();
    for m in METRICS {
        let mine: Vec<_> = samples.iter().filter(|((n, _), _)| n == m.name).collect();
        if mine.is_empty() {
            continue;
        }
        out.push_str(&format!(
            "# HELP {} {}\n# TYPE {} {}\n",
            m.name, m.help, m.name, m.kind
        ));
        for ((name, labels), value) in mine {
            if labels.is_empty() {
                out.push_str(&format!("{name} {value}\n"));
            } else {
                out.push_str(&format!("{name}{{{labels}}} {value}\n"));
            }
        }
    }
    out
}

/// Replaces `path` with `text` in one step: a temporary file beside it (created anew,
/// never through a link planted there), flushed, then renamed over it, so the collector
/// never reads half a file. Readable by all (node_exporter runs as its own user).
pub fn write_atomically(path: &Path, text: &str) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .with_context(|| format!("{} names no file", path.display()))?;
    // A random name: one planted at a name known in advance could only block the write.
    let mut random = [0u8; 8];
    getrandom::fill(&mut random)
        .map_err(|e| anyhow::anyhow!("the operating system's random source failed: {e}"))?;
    let temp = dir.join(format!(
        ".{}.tmp-{}",
        name.to_string_lossy(),
        hex::encode(random)
    ));
    let written = (|| -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&temp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&temp, path)
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&temp);
        return Err(e).with_context(|| format!("cannot write the metrics file {}", path.display()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_rendered_reads_back() {
        let mut samples = Samples::new();
        samples.insert(
            ("rbk_last_exit_code".into(), r#"command="snapshot""#.into()),
            6.0,
        );
        samples.insert(("rbk_snapshots".into(), String::new()), 12.0);
        samples.insert(
            (
                "rbk_runs_total".into(),
                r#"command="prune",result="success""#.into(),
            ),
            3.0,
        );
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("rbk.prom");
        write_atomically(&path, &render(&samples)).expect("write");
        assert_eq!(read(&path), samples);
        let text = std::fs::read_to_string(&path).expect("read");
        assert!(text.contains("# TYPE rbk_runs_total counter\n"), "{text}");
    }

    #[test]
    fn lines_rbk_did_not_write_are_dropped() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("rbk.prom");
        std::fs::write(
            &path,
            "other_metric 1\nrbk_snapshots 4\nrbk_snapshots{x=\"1\"} not-a-number\ngarbage\n",
        )
        .expect("write");
        let samples = read(&path);
        assert_eq!(samples.len(), 1, "{samples:?}");
    }

    #[test]
    fn a_link_planted_at_the_file_is_replaced_not_written_through() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("rbk.prom");
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "keep").expect("victim");
        std::os::unix::fs::symlink(&victim, &path).expect("link");
        write_atomically(&path, "rbk_snapshots 1\n").expect("write");
        assert_eq!(std::fs::read_to_string(&victim).expect("victim"), "keep");
        assert_eq!(
            std::fs::read_to_string(&path).expect("file"),
            "rbk_snapshots 1\n"
        );
        let left: Vec<_> = std::fs::read_dir(dir.path()).expect("list").collect();
        assert_eq!(left.len(), 2, "no temporary file is left: {left:?}");
    }
}
