//! The prune bench's results: measured steps as a table and as JSON, and repository sizes.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use anyhow::{Context, Result};
use serde_json::{Value, json};

use crate::build::Night;
use crate::measure::Usage;

/// One measured child process.
pub struct Row {
    pub step: String,
    pub usage: Usage,
    /// What the step did, in a few words (e.g. "no errors", "byte-identical").
    pub note: String,
}

pub fn mb(b: u64) -> f64 {
    b as f64 / 1e6
}

pub fn usage_json(u: &Usage) -> Value {
    json!({
        "wall_s": u.wall.as_secs_f64(),
        "cpu_s": u.cpu,
        "user_s": u.user,
        "sys_s": u.sys,
        "peak_rss_mib": u.rss_mib(),
        "rss_floor_mib": u.floor_kib as f64 / 1024.0,
        "background_cores": u.background_cores,
    })
}

pub fn print_rows(rows: &[Row]) {
    println!(
        "{:<26} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8}  note",
        "step", "wall s", "CPU s", "user s", "sys s", "RSS MiB", "bg cores"
    );
    for r in rows {
        let u = &r.usage;
        println!(
            "{:<26} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>8.1} {:>8.2}  {}",
            r.step,
            u.wall.as_secs_f64(),
            u.cpu,
            u.user,
            u.sys,
            u.rss_mib(),
            u.background_cores,
            r.note
        );
    }
    if rows.iter().any(|r| r.usage.background_cores > 0.2) {
        println!(
            "  WARNING: other processes used more than 0.2 cores during some steps (bg cores): wall times are skewed"
        );
    }
}

/// Bytes of the files under `dir`: apparent (sum of lengths) and allocated on disk (what
/// `du` shows, blocks included).
#[derive(Debug, Clone, Copy, Default)]
pub struct Size {
    pub apparent: u64,
    pub allocated: u64,
    pub files: u64,
}

pub fn size_of_tree(dir: &Path) -> Result<Size> {
    let mut s = Size::default();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).with_context(|| format!("list {}", d.display()))? {
            let entry = entry?;
            let m = entry.metadata()?;
            if m.is_dir() {
                stack.push(entry.path());
            } else if m.is_file() {
                s.apparent += m.len();
                s.allocated += m.blocks() * 512;
                s.files += 1;
            }
        }
    }
    Ok(s)
}

pub fn size_json(s: Size) -> Value {
    json!({"apparent_bytes": s.apparent, "allocated_bytes": s.allocated, "files": s.files})
}

/// What building the repository cost, from the nights' measurements.
pub struct BuildSummary {
    pub nights: usize,
    pub bytes_read: u64,
    pub bytes_added: u64,
    pub snapshot_wall_s: f64,
    pub snapshot_cpu_s: f64,
    pub first_wall_s: f64,
    pub first_mbps: f64,
    /// Nights after the first (incremental snapshots): mean wall time and throughput.
    pub later_mean_wall_s: f64,
    pub later_mbps: f64,
    pub later_mean_cpu_s: f64,
    pub later_mean_added: f64,
    pub max_rss_mib: f64,
    pub change_s: f64,
}

impl BuildSummary {
    pub fn of(nights: &[Night]) -> BuildSummary {
        let later = nights.get(1..).unwrap_or(&[]);
        let sum = |f: fn(&Night) -> f64, ns: &[Night]| ns.iter().map(f).sum::<f64>();
        let later_n = later.len().max(1) as f64;
        let later_wall = sum(|n| n.wall_s, later);
        BuildSummary {
            nights: nights.len(),
            bytes_read: nights.iter().map(|n| n.bytes_read).sum(),
            bytes_added: nights.iter().map(|n| n.bytes_added).sum(),
            snapshot_wall_s: sum(|n| n.wall_s, nights),
            snapshot_cpu_s: sum(|n| n.cpu_s, nights),
            first_wall_s: nights.first().map_or(0.0, |n| n.wall_s),
            first_mbps: nights
                .first()
                .map_or(0.0, |n| mb(n.bytes_read) / n.wall_s.max(1e-9)),
            later_mean_wall_s: later_wall / later_n,
            later_mbps: mb(later.iter().map(|n| n.bytes_read).sum()) / later_wall.max(1e-9),
            later_mean_cpu_s: sum(|n| n.cpu_s, later) / later_n,
            later_mean_added: later.iter().map(|n| n.bytes_added as f64).sum::<f64>() / later_n,
            max_rss_mib: nights.iter().map(|n| n.rss_kib).max().unwrap_or(0) as f64 / 1024.0,
            change_s: sum(|n| n.change_s, nights),
        }
    }

    pub fn mbps(&self) -> f64 {
        mb(self.bytes_read) / self.snapshot_wall_s.max(1e-9)
    }

    pub fn to_json(&self) -> Value {
        json!({
            "snapshots": self.nights,
            "bytes_read": self.bytes_read,
            "bytes_added": self.bytes_added,
            "snapshot_wall_s": self.snapshot_wall_s,
            "snapshot_cpu_s": self.snapshot_cpu_s,
            "throughput_mb_s": self.mbps(),
            "first_wall_s": self.first_wall_s,
            "first_mb_s": self.first_mbps,
            "nightly_mean_wall_s": self.later_mean_wall_s,
            "nightly_mb_s": self.later_mbps,
            "nightly_mean_cpu_s": self.later_mean_cpu_s,
            "nightly_mean_bytes_added": self.later_mean_added,
            "max_snapshot_rss_mib": self.max_rss_mib,
            "input_change_s": self.change_s,
        })
    }
}
