//! Write-pause benchmark: the real `rbk` binary against the Docker test stack (tests/images) with generated Neo4j stores of several sizes, dump mode against volume mode.
//!
//! Run: `cargo bench --bench pause` (needs the Docker engine; builds the test image; about
//! 10 minutes for the default sizes). Knobs: `RBK_BENCH_PAUSE_GB` (comma-separated store
//! sizes, default `0.5,2,5`), `RBK_BENCH_DUMP_RATE` (the stand-in `neo4j-admin`'s dump
//! output in bytes per second, default 200000000), `RBK_BENCH_CHANGE_PERCENT` (default 1),
//! `RBK_BENCH_DIR` (where the repositories go, default the temp dir).
//!
//! For each size, a fresh stack whose Neo4j store gets a generated property store of that
//! size (8 KiB pages, each half pseudo-random and half zeros, so that it compresses about
//! 2:1 as store files do), and a fresh repository:
//!   1. dump mode (the default): the pause of a dump of the whole store;
//!   2. volume mode, first: the pre-copy stores the store, the paused pass reads nothing;
//!   3. volume mode, unchanged: the pause of an unchanged store;
//!   4. volume mode with the change percent of the store's pages rewritten in runs of 64
//!      pages (512 KiB) between the pre-copy and the pause (`RBK_TEST_AFTER_PRECOPY`): the
//!      paused pass reads the changed file again;
//!   5. dump mode again, after that change.
//!
//! Restart time is the pause minus its graph phase (`dump neo4j` or `archive neo4j volume`),
//! which overlaps the SQL dump. It prints a table and PASS/MISS against issue 15's targets,
//! and exits 0 either way.

#[path = "common/env.rs"]
mod env;
use env::env_or;

#[path = "e2e/measure.rs"]
#[allow(dead_code)]
mod measure;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::Value;

const PASSWORD: &str = "bench";
const PROJECT: &str = "rbkpausebench";
const STORE_FILE: &str = "/data/databases/neo4j/neostore.propertystore.db";

/// Writes `$1` bytes of 8 KiB pages to `$2`: each page half pseudo-random (seeded by its
/// number) and half zeros.
const GENERATE: &str = r#"
import os, random, sys
size, path = int(sys.argv[1]), sys.argv[2]
page = 8192
with open(path, "wb") as f:
    for n in range(size // page):
        f.write(random.Random(n).randbytes(page // 2) + bytes(page // 2))
"#;

/// Rewrites `$1` percent of the pages of `$2` in runs of 64 pages spread evenly over the
/// file, with new pseudo-random halves (seed `$3`).
const CHANGE: &str = r#"
import os, random, sys
percent, path, seed = float(sys.argv[1]), sys.argv[2], int(sys.argv[3])
page, run = 8192, 64
pages = os.path.getsize(path) // page
runs = max(1, int(pages * percent / 100) // run)
step = pages // runs
with open(path, "r+b") as f:
    for r in range(runs):
        f.seek(r * step * page)
        rng = random.Random(seed * 1_000_003 + r)
        f.write(b"".join(rng.randbytes(page // 2) + bytes(page // 2) for _ in range(run)))
"#;

fn main() -> Result<()> {
    let sizes: Vec<f64> = std::env::var("RBK_BENCH_PAUSE_GB")
        .unwrap_or_else(|_| "0.5,2,5".into())
        .split(',')
        .map(|s| s.trim().parse().context("RBK_BENCH_PAUSE_GB"))
        .collect::<Result<_>>()?;
    let rate: u64 = env_or("RBK_BENCH_DUMP_RATE", 200_000_000)?;
    let change: f64 = env_or("RBK_BENCH_CHANGE_PERCENT", 1.0)?;
    let base = std::env::var_os("RBK_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let docker = Command::new("docker").arg("info").output();
    if !docker.is_ok_and(|o| o.status.success()) {
        println!("no Docker engine: nothing measured");
        return Ok(());
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let built = Command::new("bash")
        .arg(root.join("tests/images/build.sh"))
        .status()?;
    if !built.success() {
        bail!("tests/images/build.sh failed");
    }
    let rbk = PathBuf::from(env!("CARGO_BIN_EXE_rbk"));
    let mut rows = Vec::new();
    for gb in sizes {
        let stack = Stack::up(root)?;
        let result = measure_size(&stack, &rbk, &base, gb, rate, change);
        drop(stack);
        rows.push(result?);
    }
    report(&rows, rate, change);
    Ok(())
}

/// The test stack under a fixed project name, taken down on drop.
struct Stack {
    files: PathBuf,
}

impl Stack {
    fn up(root: &Path) -> Result<Stack> {
        let stack = Stack {
            files: root.join("tests/images/compose.yaml"),
        };
        stack.compose(&["down", "-v"])?;
        stack.compose(&["up", "-d"])?;
        Ok(stack)
    }

    fn compose(&self, args: &[&str]) -> Result<()> {
        let out = Command::new("docker-compose")
            .args(["-p", PROJECT, "-f"])
            .arg(&self.files)
            .args(args)
            // Not RushDB's published default, which rbk warns of (exit 6).
            .env(
                "RUSHDB_AES_256_ENCRYPTION_KEY",
                "rbk-pause-bench-key-0123456789ab",
            )
            .stdin(Stdio::null())
            .output()?;
        if !out.status.success() {
            bail!(
                "docker-compose {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(())
    }

    fn neo4j(&self) -> String {
        format!("{PROJECT}_neo4j_1")
    }

    fn exec(&self, args: &[&str]) -> Result<()> {
        let out = Command::new("docker")
            .args(["exec", &self.neo4j()])
            .args(args)
            .output()?;
        if !out.status.success() {
            bail!("{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(())
    }

    /// Waits until every service is healthy again (after a snapshot's restart).
    fn settle(&self) -> Result<()> {
        let until = Instant::now() + Duration::from_secs(60);
        for service in ["rushdb", "neo4j", "postgres"] {
            let name = format!("{PROJECT}_{service}_1");
            loop {
                let out = Command::new("docker")
                    .args(["inspect", "-f", "{{.State.Health.Status}}", &name])
                    .output()?;
                if String::from_utf8_lossy(&out.stdout).trim() == "healthy" {
                    break;
                }
                if Instant::now() > until {
                    bail!("{name} is not healthy after 60 s");
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        }
        Ok(())
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        let _ = self.compose(&["down", "-v"]);
    }
}

/// One snapshot's figures.
#[derive(Debug, Default, Clone)]
struct Shot {
    pause_ms: u64,
    graph_ms: u64,
    precopy_ms: Option<u64>,
    bytes_added: u64,
    rss_mib: f64,
    scan: Option<Value>,
}

impl Shot {
    fn restart_ms(&self) -> u64 {
        self.pause_ms.saturating_sub(self.graph_ms)
    }
}

struct Row {
    gb: f64,
    store: u64,
    dump: Shot,
    first: Shot,
    unchanged: Shot,
    changed: Shot,
    dump_changed: Shot,
}

fn measure_size(
    stack: &Stack,
    rbk: &Path,
    base: &Path,
    gb: f64,
    rate: u64,
    change: f64,
) -> Result<Row> {
    let store = (gb * 1e9) as u64 / 8192 * 8192;
    eprintln!("{gb} GB: generating the store ...");
    stack.settle()?;
    stack.exec(&["python3", "-c", GENERATE, &store.to_string(), STORE_FILE])?;
    stack.exec(&[
        "sh",
        "-c",
        &format!("mkdir -p /data/rbk-test-knobs && echo {rate} > /data/rbk-test-knobs/NEO4J_ADMIN_BYTES_PER_SEC"),
    ])?;
    let repo = base.join("rbk-pause-bench-repo");
    let _ = std::fs::remove_dir_all(&repo);
    let init = Command::new(rbk)
        .args(["--repo"])
        .arg(&repo)
        .arg("init")
        .env("RBK_PASSWORD", PASSWORD)
        .output()?;
    if !init.status.success() {
        bail!("rbk init: {}", String::from_utf8_lossy(&init.stderr));
    }
    let shot = |mode: &str, after: Option<String>| -> Result<Shot> {
        stack.settle()?;
        eprintln!("{gb} GB: {mode} snapshot ...");
        let mut cmd = Command::new(rbk);
        cmd.args(["--json", "--repo"])
            .arg(&repo)
            .args(["snapshot", "--project", PROJECT, "--neo4j-mode", mode])
            .env("RBK_PASSWORD", PASSWORD);
        if let Some(after) = after {
            cmd.env("RBK_TEST_AFTER_PRECOPY", after);
        }
        let finished = measure::run(&mut cmd, "rbk snapshot")?;
        let report: Value = serde_json::from_str(finished.stdout.trim())
            .with_context(|| format!("snapshot report: {}", finished.stdout))?;
        let labels = latest_labels(rbk, &repo)?;
        let graph = ["dump neo4j", "archive neo4j volume"];
        Ok(Shot {
            pause_ms: report["pause_ms"].as_u64().unwrap_or(0),
            graph_ms: report["pause_phases"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|p| graph.contains(&p["phase"].as_str().unwrap_or("")))
                .filter_map(|p| p["ms"].as_u64())
                .sum(),
            precopy_ms: labels["neo4j.precopy_ms"]
                .as_str()
                .and_then(|v| v.parse().ok()),
            bytes_added: report["bytes_added"].as_u64().unwrap_or(0),
            rss_mib: finished.usage.rss_mib(),
            scan: labels["neo4j.volume_scan"]
                .as_str()
                .and_then(|v| serde_json::from_str(v).ok()),
        })
    };
    let change_cmd = |seed: u32| {
        format!(
            "docker exec {} python3 -c '{}' {change} {STORE_FILE} {seed}",
            stack.neo4j(),
            CHANGE.replace('\'', "\"")
        )
    };
    let dump = shot("dump", None)?;
    let first = shot("volume", None)?;
    let unchanged = shot("volume", None)?;
    let changed = shot("volume", Some(change_cmd(1)))?;
    stack.settle()?;
    let out = Command::new("sh").arg("-c").arg(change_cmd(2)).output()?;
    if !out.status.success() {
        bail!(
            "changing the store: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let dump_changed = shot("dump", None)?;
    let _ = std::fs::remove_dir_all(&repo);
    Ok(Row {
        gb,
        store,
        dump,
        first,
        unchanged,
        changed,
        dump_changed,
    })
}

fn latest_labels(rbk: &Path, repo: &Path) -> Result<Value> {
    let out = Command::new(rbk)
        .args(["--json", "--repo"])
        .arg(repo)
        .arg("snapshots")
        .env("RBK_PASSWORD", PASSWORD)
        .output()?;
    let list: Value = serde_json::from_slice(&out.stdout).context("snapshots --json")?;
    Ok(list
        .as_array()
        .and_then(|a| a.last())
        .map(|s| s["labels"].clone())
        .unwrap_or(Value::Null))
}

fn secs(ms: u64) -> String {
    format!("{:.1}", ms as f64 / 1000.0)
}

fn report(rows: &[Row], rate: u64, change: f64) {
    println!(
        "\nwrite pause, dump mode (stand-in dump output throttled to {} MB/s) against volume mode; {change}% of the store changed in runs",
        rate / 1_000_000
    );
    println!(
        "{:>6} | {:>10} {:>8} | {:>9} {:>10} {:>8} | {:>10} {:>8} {:>9} {:>7} | {:>10} | {:>8}",
        "store",
        "dump s",
        "restart",
        "pre-copy",
        "vol same s",
        "archive",
        "vol chg s",
        "archive",
        "added",
        "growth",
        "dump chg s",
        "vol/dump"
    );
    let mut verdicts = Vec::new();
    for r in rows {
        let c = &r.changed;
        println!(
            "{:>5}G | {:>10} {:>8} | {:>9} {:>10} {:>8} | {:>10} {:>8} {:>8}M {:>6.2}% | {:>10} | {:>8.2}",
            r.gb,
            secs(r.dump.pause_ms),
            secs(r.dump.restart_ms()),
            r.unchanged.precopy_ms.map(secs).unwrap_or_default(),
            secs(r.unchanged.pause_ms),
            secs(r.unchanged.graph_ms),
            secs(c.pause_ms),
            secs(c.graph_ms),
            c.bytes_added / 1_000_000,
            100.0 * c.bytes_added as f64 / r.store as f64,
            secs(r.dump_changed.pause_ms),
            c.pause_ms as f64 / r.dump_changed.pause_ms.max(1) as f64,
        );
        let store_gb = r.store as f64 / 1e9;
        let unchanged_limit = r.unchanged.restart_ms() as f64 + 1000.0 * store_gb / 2.0;
        let changed_gb = store_gb * change / 100.0;
        let changed_limit = c.restart_ms() as f64 + 2000.0 * changed_gb;
        let scanned = |field: &str| c.scan.as_ref().and_then(|s| s[field].as_u64()).unwrap_or(0);
        let (files_read, reused) = (scanned("bytes_read"), scanned("bytes_read_reused"));
        verdicts.push(format!(
            "{}G unchanged: pause {} s <= restart {} s + 1 s per 2 GB ({:.1} s): {}",
            r.gb,
            secs(r.unchanged.pause_ms),
            secs(r.unchanged.restart_ms()),
            unchanged_limit / 1000.0,
            pass(r.unchanged.pause_ms as f64 <= unchanged_limit)
        ));
        verdicts.push(format!(
            "{}G {change}% changed: pause {} s <= restart {} s + 2 s per GB changed ({:.2} s): {}; the paused pass read {:.2} GB of changed files again ({:.2} s per GB read), {:.1}% of it stored as the pre-copy's chunks",
            r.gb,
            secs(c.pause_ms),
            secs(c.restart_ms()),
            changed_limit / 1000.0,
            pass(c.pause_ms as f64 <= changed_limit),
            files_read as f64 / 1e9,
            c.graph_ms as f64 / 1000.0 / (files_read as f64 / 1e9).max(1e-9),
            100.0 * reused as f64 / files_read.max(1) as f64,
        ));
        verdicts.push(format!(
            "{}G day-2 growth {:.2}% of the store for a {change}% change: {}",
            r.gb,
            100.0 * c.bytes_added as f64 / r.store as f64,
            pass(c.bytes_added as f64 <= r.store as f64 * change / 100.0)
        ));
        verdicts.push(format!(
            "{}G peak RSS: dump {:.0} MiB, volume first {:.0} MiB, volume changed {:.0} MiB",
            r.gb, r.dump.rss_mib, r.first.rss_mib, c.rss_mib
        ));
    }
    println!();
    for v in verdicts {
        println!("{v}");
    }
}

fn pass(ok: bool) -> &'static str {
    if ok { "PASS" } else { "MISS" }
}
