//! Builds the cached repository of nightly snapshots with the real `rbk`, resuming an interrupted build.
//!
//! The cache directory holds `repo/`, the store tar (`store.tar`) as of the last day applied
//! (`input.day`), one JSON line per snapshot taken (`snapshots.jsonl`) and, once every night
//! is in, `built`. The repository itself is the truth about progress: a resumed build counts
//! its snapshots, checks their times against the calendar, and continues after the last one.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::history::{Store, night};
use crate::inputs::{size_of, sync_all};
use crate::measure::{self, Finished};

/// Password of the bench's repositories.
pub const PASSWORD: &str = "rbk-prune-bench-password";
/// Host recorded in every snapshot, so a cached repository plans the same on any machine.
pub const HOST: &str = "rbk-prune-bench";

/// The rbk binary under test, run with a fixed password and nothing from the caller's
/// environment that could point it elsewhere.
pub struct Rbk {
    pub bin: PathBuf,
    /// Working directory of every run, so no `./rbk.toml` of the caller's is read.
    pub cwd: PathBuf,
}

impl Rbk {
    pub fn command(&self, repo: &Path) -> Command {
        let mut c = Command::new(&self.bin);
        for v in [
            "RBK_REPO",
            "RBK_PASSWORD_FILE",
            "RBK_PASSWORD_COMMAND",
            "RBK_CONFIG",
            "RBK_LOG",
        ] {
            c.env_remove(v);
        }
        c.env("RBK_PASSWORD", PASSWORD)
            .current_dir(&self.cwd)
            .arg("--repo")
            .arg(repo);
        c
    }

    /// Runs `rbk --json ARGS` on `repo`, measured, and parses what it printed.
    pub fn json(&self, repo: &Path, args: &[&str], what: &str) -> Result<(Finished, Value)> {
        let mut c = self.command(repo);
        c.arg("--json").args(args);
        let done = measure::run(&mut c, what)?;
        let v = serde_json::from_str(done.stdout.trim())
            .with_context(|| format!("{what}: rbk printed {:?}", done.stdout))?;
        Ok((done, v))
    }
}

/// One nightly snapshot as the build measured it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Night {
    pub day: u32,
    pub time: String,
    pub id: String,
    pub wall_s: f64,
    pub cpu_s: f64,
    pub rss_kib: u64,
    pub background_cores: f64,
    pub bytes_read: u64,
    pub bytes_added: u64,
    pub new_chunks: u64,
    /// Time to apply that night's changes to the input (not part of the snapshot).
    pub change_s: f64,
    pub changed_records: u64,
    pub change_runs: usize,
}

/// The cached repository, ready to be copied and pruned.
pub struct Built {
    pub repo: PathBuf,
    pub nights: Vec<Night>,
    /// Whether this run took no snapshot (the cache was complete).
    pub reused: bool,
    /// Wall time of this run's building, changes and snapshots (0 when reused).
    pub wall_s: f64,
}

fn read_day(path: &Path) -> Option<u32> {
    fs::read_to_string(path).ok()?.trim().parse().ok()
}

fn read_nights(path: &Path) -> Vec<Night> {
    fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// The snapshot times in `repo`, oldest first.
fn snapshot_times(rbk: &Rbk, repo: &Path) -> Result<Vec<String>> {
    let (_, v) = rbk.json(repo, &["snapshots"], "rbk snapshots")?;
    let mut times: Vec<String> = v
        .as_array()
        .context("rbk snapshots --json is not an array")?
        .iter()
        .map(|s| s["time"].as_str().unwrap_or("").to_string())
        .collect();
    // The calendar's strings sort by instant within one offset; sort by instant to be exact.
    times.sort_by_key(|t| rbk::store::time::parse_rfc3339(t).map(|t| t.unix_timestamp()));
    Ok(times)
}

/// Builds, resumes or reuses the repository in `dir` for `days` nights of `store`.
pub fn build(rbk: &Rbk, dir: &Path, store: &Store, days: u32) -> Result<Built> {
    let repo = dir.join("repo");
    let stamp = dir.join("built");
    let nights_file = dir.join("snapshots.jsonl");
    let day_file = dir.join("input.day");
    if stamp.exists() {
        return Ok(Built {
            repo,
            nights: read_nights(&nights_file),
            reused: true,
            wall_s: 0.0,
        });
    }
    fs::create_dir_all(dir)?;
    let started = Instant::now();

    let done = if repo.join("config").exists() {
        let times = snapshot_times(rbk, &repo)?;
        for (i, t) in times.iter().enumerate() {
            if *t != night(i as u32 + 1) {
                bail!(
                    "{}: snapshot {} has time {t}, the calendar says {}; remove {} to rebuild",
                    repo.display(),
                    i + 1,
                    night(i as u32 + 1),
                    dir.display()
                );
            }
        }
        if !times.is_empty() {
            eprintln!("resuming the build after night {} of {days}", times.len());
        }
        times.len() as u32
    } else {
        // No config: nothing usable was written (or init itself was cut short).
        let _ = fs::remove_dir_all(&repo);
        let mut c = rbk.command(&repo);
        c.args(["--quiet", "init", "--kdf-memory-mib", "64"]);
        measure::run(&mut c, "rbk init")?;
        0
    };

    // The input must be at night `done` (then apply the next night) or already at `done + 1`
    // (changed, then interrupted before its snapshot committed). Anything else: rebuild it.
    let size_ok = size_of(&store.path).is_ok_and(|s| s > store.store_bytes());
    let mut input_day = read_day(&day_file).filter(|d| size_ok && (*d == done || *d == done + 1));
    if done == 0 && input_day == Some(0) {
        input_day = None;
    }
    let mut input_day = match input_day {
        Some(d) => d,
        None => {
            let target = done.max(1);
            eprintln!(
                "generating the store ({:.2} GiB) as of night {target} ...",
                store.store_bytes() as f64 / (1u64 << 30) as f64
            );
            let _ = fs::remove_file(&day_file);
            store.generate()?;
            for d in 2..=target {
                store.apply_day(d)?;
            }
            fs::write(&day_file, target.to_string())?;
            target
        }
    };

    let mut nights: Vec<Night> = read_nights(&nights_file)
        .into_iter()
        .filter(|n| n.day <= done)
        .collect();
    // Rewritten without lines of snapshots that never committed.
    let mut text = String::new();
    for n in &nights {
        text.push_str(&serde_json::to_string(n)?);
        text.push('\n');
    }
    fs::write(&nights_file, text)?;

    for day in done + 1..=days {
        let (mut change_s, mut changed_records, mut change_runs) = (0.0, 0, 0);
        if input_day < day {
            let t = Instant::now();
            let change = store.apply_day(day)?;
            change_s = t.elapsed().as_secs_f64();
            changed_records = change.records;
            change_runs = change.runs;
            fs::write(&day_file, day.to_string())?;
            input_day = day;
        }
        // The input's changed pages and the last snapshot's writes are flushed, so this
        // snapshot does not pay for them.
        sync_all();
        let time = night(day);
        let mut c = rbk.command(&repo);
        c.args([
            "--json", "snapshot", "--host", HOST, "--time", &time, "--path",
        ])
        .arg(&store.path);
        let taken = measure::run(&mut c, &format!("rbk snapshot night {day}"))?;
        let v: Value = serde_json::from_str(taken.stdout.trim())
            .with_context(|| format!("rbk snapshot --json printed {:?}", taken.stdout))?;
        let n = Night {
            day,
            time,
            id: v["id"].as_str().context("no id in rbk's JSON")?.to_string(),
            wall_s: taken.usage.wall.as_secs_f64(),
            cpu_s: taken.usage.cpu,
            rss_kib: taken.usage.max_rss_kib,
            background_cores: taken.usage.background_cores,
            bytes_read: v["bytes_read"].as_u64().unwrap_or(0),
            bytes_added: v["bytes_added"].as_u64().unwrap_or(0),
            new_chunks: v["new_chunks"].as_u64().unwrap_or(0),
            change_s,
            changed_records,
            change_runs,
        };
        let mut f = OpenOptions::new()
            .append(true)
            .create(true)
            .open(&nights_file)?;
        writeln!(f, "{}", serde_json::to_string(&n)?)?;
        if day == 1 || day % 10 == 0 || day == days {
            let elapsed = started.elapsed().as_secs_f64();
            let nights_taken = f64::from(day - done);
            eprintln!(
                "  night {day:>3}/{days} {}: {:.2} s ({:.0} MB/s), CPU {:.2} s, RSS {:.0} MiB, added {:.2} MB, bg {:.2} cores; about {:.0} s to go",
                n.time,
                n.wall_s,
                n.bytes_read as f64 / 1e6 / n.wall_s.max(1e-9),
                n.cpu_s,
                n.rss_kib as f64 / 1024.0,
                n.bytes_added as f64 / 1e6,
                n.background_cores,
                elapsed / nights_taken * f64::from(days - day)
            );
        }
        nights.push(n);
    }
    fs::write(&stamp, format!("{days}\n"))?;
    Ok(Built {
        repo,
        nights,
        reused: false,
        wall_s: started.elapsed().as_secs_f64(),
    })
}
