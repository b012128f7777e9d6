//! Object-storage benchmark: the real `rbk` binary against a local directory and a local Garage node, directly and behind 20 ms of round trip.
//!
//! Run: `cargo bench --bench s3` (needs the garage binary: `RBK_GARAGE`, or
//! `~/.cache/rbk-ci/garage/bin/garage` as `.ci/run` installs it; about 10 minutes at 1 GiB).
//!
//! Inputs are the e2e benchmark's (`benches/e2e/inputs.rs`): a page-structured store as a
//! plain tar, day 1 and day 2 (1% of the records changed in runs). For each target (a local
//! directory; Garage through a proxy that adds nothing; Garage through a proxy that delays
//! each direction by 10 ms), in a fresh repository: the first snapshot of day 1, day 1 again
//! unchanged, day 2, and a restore of day 2 to a file. The proxy counts the requests and
//! bytes of each step. Then `rbk copy` from the local repository to a bucket made with
//! `--copy-chunker-params-from`: day 1, then day 2, whose bytes sent are compared with what
//! day 2 added to the local repository.
//!
//! Knobs: `RBK_BENCH_GIB` (default 1.0), `RBK_BENCH_DIR` (default the temp dir),
//! `RBK_BENCH_RTT_MS` (default 20), `RBK_BENCH_SEED` (1), `RBK_BENCH_CHANGE_PERCENT` (1).
//! It prints a table and PASS/MISS against the targets, and exits 0 either way.

#[path = "common/env.rs"]
mod env;
use env::env_or;

#[path = "common/pages.rs"]
#[allow(dead_code)]
mod pages;

#[path = "e2e/inputs.rs"]
#[allow(dead_code)]
mod inputs;
#[path = "e2e/measure.rs"]
#[allow(dead_code)]
mod measure;

#[path = "s3/garage.rs"]
mod garage;
#[path = "s3/proxy.rs"]
mod proxy;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};

use garage::{BUCKET, Garage};
use proxy::{Counts, Traffic};

const PASSWORD: &str = "bench";

/// Where a repository lives, and how rbk reaches it.
struct Target {
    name: &'static str,
    /// A directory, or `s3://...`.
    repo: String,
    /// The proxy's port and counters, for S3.
    via: Option<(u16, Arc<Counts>)>,
}

struct Row {
    target: &'static str,
    step: &'static str,
    bytes: u64,
    usage: measure::Usage,
    traffic: Traffic,
    added: Option<u64>,
    /// CPU seconds Garage used during the step (S3 targets).
    server_cpu: Option<f64>,
}

impl Row {
    fn mbps(&self) -> f64 {
        self.bytes as f64 / 1e6 / self.usage.wall.as_secs_f64().max(1e-9)
    }
}

struct Bench<'g> {
    rbk: PathBuf,
    garage: &'g Garage,
}

impl Bench<'_> {
    fn cmd(&self, target: &Target, args: &[&str]) -> Command {
        let mut c = Command::new(&self.rbk);
        c.args(args)
            .env("RBK_REPO", &target.repo)
            .env("RBK_PASSWORD", PASSWORD)
            .env("RBK_PROGRESS", "none");
        if let Some((port, _)) = &target.via {
            self.garage.env(&mut c, *port);
        }
        c
    }

    fn step(
        &self,
        target: &Target,
        step: &'static str,
        bytes: u64,
        args: &[&str],
    ) -> Result<(Row, serde_json::Value)> {
        if let Some((_, counts)) = &target.via {
            counts.take();
        }
        inputs::sync_all();
        let cpu_before = self.garage.cpu_seconds();
        let done = measure::run(&mut self.cmd(target, args), step)?;
        let server_cpu = target
            .via
            .as_ref()
            .map(|_| self.garage.cpu_seconds() - cpu_before);
        let traffic = target
            .via
            .as_ref()
            .map(|(_, c)| c.take())
            .unwrap_or_default();
        let json: serde_json::Value =
            serde_json::from_str(done.stdout.trim()).unwrap_or(serde_json::Value::Null);
        let added = json.get("bytes_added").and_then(|v| v.as_u64());
        Ok((
            Row {
                target: target.name,
                step,
                bytes,
                usage: done.usage,
                traffic,
                added,
                server_cpu,
            },
            json,
        ))
    }
}

fn main() -> Result<()> {
    let gib: f64 = env_or("RBK_BENCH_GIB", 1.0)?;
    let rtt_ms: u64 = env_or("RBK_BENCH_RTT_MS", 20)?;
    let params = inputs::Params {
        gib,
        seed: env_or("RBK_BENCH_SEED", 1)?,
        change_percent: env_or("RBK_BENCH_CHANGE_PERCENT", 1.0)?,
    };
    let base = std::env::var_os("RBK_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let work = base.join(format!("rbk-s3-bench-{gib}"));
    std::fs::create_dir_all(&work)?;
    let Some(bin) = garage::binary() else {
        println!(
            "no garage binary (RBK_GARAGE, or ~/.cache/rbk-ci/garage/bin/garage): nothing measured"
        );
        return Ok(());
    };
    eprintln!("preparing inputs in {} ...", work.display());
    let inputs = inputs::prepare(&work, &params)?;
    let (day1, day2) = (&inputs.day1_tar, &inputs.day2_tar);
    let size1 = inputs::size_of(day1)?;
    let size2 = inputs::size_of(day2)?;
    let garage = Garage::start(bin, &work.join("garage"))?;
    let direct = proxy::start(garage.s3_addr.clone(), Duration::ZERO)?;
    let delayed = proxy::start(garage.s3_addr.clone(), Duration::from_millis(rtt_ms / 2))?;
    let bench = Bench {
        rbk: PathBuf::from(env!("CARGO_BIN_EXE_rbk")),
        garage: &garage,
    };
    let local_repo = work.join("local-repo");
    let _ = std::fs::remove_dir_all(&local_repo);
    let targets = [
        Target {
            name: "local dir",
            repo: local_repo.to_string_lossy().into_owned(),
            via: None,
        },
        Target {
            name: "garage",
            repo: format!("s3://{BUCKET}/direct"),
            via: Some(direct.clone()),
        },
        Target {
            name: "garage +rtt",
            repo: format!("s3://{BUCKET}/delayed"),
            via: Some(delayed.clone()),
        },
    ];
    println!(
        "rbk S3 benchmark: store {:.0} MB (tar), day 2 {:.2}% of records changed, added RTT {rtt_ms} ms",
        size1 as f64 / 1e6,
        params.change_percent
    );
    let mut rows = Vec::new();
    for t in &targets {
        eprintln!("{} ...", t.name);
        measure::run(
            &mut bench.cmd(t, &["init", "--kdf-memory-mib", "8"]),
            "init",
        )?;
        let path1 = day1.to_str().context("utf-8")?;
        let path2 = day2.to_str().context("utf-8")?;
        inputs::warm(day1)?;
        rows.push(
            bench
                .step(t, "first", size1, &["--json", "snapshot", "--path", path1])?
                .0,
        );
        inputs::warm(day1)?;
        rows.push(
            bench
                .step(
                    t,
                    "unchanged",
                    size1,
                    &["--json", "snapshot", "--path", path1],
                )?
                .0,
        );
        inputs::warm(day2)?;
        rows.push(
            bench
                .step(t, "day 2", size2, &["--json", "snapshot", "--path", path2])?
                .0,
        );
        let out = work.join("restored");
        let _ = std::fs::remove_dir_all(&out);
        rows.push(
            bench
                .step(
                    t,
                    "restore",
                    size2,
                    &["restore", "latest", "--to", out.to_str().context("utf-8")?],
                )?
                .0,
        );
        let restored = out.join(day2.file_name().context("name")?);
        if !inputs::same_bytes(std::fs::File::open(&restored)?, std::fs::File::open(day2)?)? {
            anyhow::bail!("{}: the restore differs from day 2", t.name);
        }
        let _ = std::fs::remove_dir_all(&out);
    }
    let copy = copy_figures(&bench, &targets[0], &delayed, &work)?;
    print(&rows, &copy, rtt_ms);
    Ok(())
}

/// `rbk copy` of the local repository's snapshots, night by night, to a bucket made with
/// its chunking: (bytes sent for day 2, what day 2 added locally, the copy's rows).
fn copy_figures(
    bench: &Bench,
    local: &Target,
    via: &(u16, Arc<Counts>),
    work: &Path,
) -> Result<Vec<Row>> {
    let dest = Target {
        name: "copy +rtt",
        repo: format!("s3://{BUCKET}/copied"),
        via: Some(via.clone()),
    };
    let pass = work.join("pass");
    std::fs::write(&pass, format!("{PASSWORD}\n"))?;
    let pass = pass.to_str().context("utf-8")?;
    measure::run(
        &mut bench.cmd(
            &dest,
            &[
                "init",
                "--kdf-memory-mib",
                "8",
                "--copy-chunker-params-from",
                &local.repo,
                "--from-password-file",
                pass,
            ],
        ),
        "init the copy",
    )?;
    let snaps: serde_json::Value = serde_json::from_str(
        &measure::run(&mut bench.cmd(local, &["--json", "snapshots"]), "snapshots")?.stdout,
    )?;
    let ids: Vec<String> = snaps
        .as_array()
        .context("snapshots")?
        .iter()
        .filter_map(|s| s["id"].as_str().map(str::to_string))
        .collect();
    let mut rows = Vec::new();
    // Night by night, as a nightly copy runs: the first two snapshots (first, unchanged),
    // then day 2.
    for (step, wanted) in [("copy night 1", &ids[..2]), ("copy day 2", &ids[2..])] {
        let mut args = vec![
            "--json",
            "copy",
            "--to",
            &dest.repo,
            "--to-password-file",
            pass,
        ];
        args.extend(wanted.iter().map(String::as_str));
        let mut cmd = bench.cmd(local, &args);
        bench.garage.env(&mut cmd, via.0);
        via.1.take();
        let cpu_before = bench.garage.cpu_seconds();
        let done = measure::run(&mut cmd, step)?;
        let server_cpu = Some(bench.garage.cpu_seconds() - cpu_before);
        let json: serde_json::Value = serde_json::from_str(done.stdout.trim())?;
        rows.push(Row {
            target: dest.name,
            step,
            bytes: 0,
            usage: done.usage,
            traffic: via.1.take(),
            added: json["bytes_added"].as_u64(),
            server_cpu,
        });
    }
    Ok(rows)
}

fn print(rows: &[Row], copy: &[Row], rtt_ms: u64) {
    println!(
        "{:<12} {:<12} {:>8} {:>9} {:>8} {:>8} {:>8} {:>10} {:>10} {:>10}  requests",
        "target",
        "step",
        "seconds",
        "MB/s",
        "CPU s",
        "S3 CPU s",
        "RSS MiB",
        "added MB",
        "up MB",
        "down MB"
    );
    for r in rows.iter().chain(copy) {
        println!(
            "{:<12} {:<12} {:>8.2} {:>9.1} {:>8.2} {:>8} {:>8.1} {:>10} {:>10.1} {:>10.1}  {} ({})",
            r.target,
            r.step,
            r.usage.wall.as_secs_f64(),
            r.mbps(),
            r.usage.cpu,
            r.server_cpu.map_or("-".into(), |c| format!("{c:.2}")),
            r.usage.rss_mib(),
            r.added
                .map_or("-".into(), |a| format!("{:.1}", a as f64 / 1e6)),
            r.traffic.up as f64 / 1e6,
            r.traffic.down as f64 / 1e6,
            r.traffic.total_requests(),
            r.traffic.describe()
        );
    }
    let find =
        |target: &str, step: &str| rows.iter().find(|r| r.target == target && r.step == step);
    let mut verdicts = Vec::new();
    for (target, floor) in [("garage", 0.8), ("garage +rtt", 0.5)] {
        for step in ["first", "restore"] {
            if let (Some(s3), Some(local)) = (find(target, step), find("local dir", step)) {
                let ratio = s3.mbps() / local.mbps().max(1e-9);
                verdicts.push((
                    format!(
                        "{step} on {target} / local (at least {floor:.0}%)",
                        floor = floor * 100.0
                    ),
                    ratio >= floor,
                    format!("{:.0}%", ratio * 100.0),
                ));
            }
        }
    }
    for r in rows {
        verdicts.push((
            format!("peak RSS of {} {} (under 128 MiB)", r.target, r.step),
            r.usage.rss_mib() < 128.0,
            format!("{:.1} MiB", r.usage.rss_mib()),
        ));
    }
    if let Some(u) = find("garage", "unchanged") {
        verdicts.push((
            "requests of an unchanged night (O(new packs + index + snapshot), not O(chunks))"
                .into(),
            u.traffic.total_requests() < 100,
            format!("{} ({})", u.traffic.total_requests(), u.traffic.describe()),
        ));
    }
    if let (Some(c), Some(d2)) = (copy.get(1), find("local dir", "day 2")) {
        let added = d2.added.unwrap_or(0);
        verdicts.push((
            "copy of day 2: bytes sent / bytes day 2 added (at most 1.1)".into(),
            (c.traffic.up as f64) <= 1.1 * added as f64 + 1e6,
            format!(
                "{:.1} MB sent, {:.1} MB added ({:.2}x)",
                c.traffic.up as f64 / 1e6,
                added as f64 / 1e6,
                c.traffic.up as f64 / (added as f64).max(1.0)
            ),
        ));
    }
    println!("targets (added RTT {rtt_ms} ms):");
    for (what, ok, figure) in verdicts {
        println!("  {} {what}: {figure}", if ok { "PASS" } else { "MISS" });
    }
}
