//! End-to-end benchmark: the real `rbk` binary (and restic and borg, when on PATH) on generated database stores.
//!
//! Run: `cargo bench --bench e2e` (10-20 minutes at the default size on 2 cores).
//!
//! Inputs, built in a work directory and reused when kept (`RBK_BENCH_KEEP=1`): a
//! page-structured store (8 KiB pages of 64-byte records, compressing about 3x with zstd -3)
//! and its day-2 version in which 1% of the records changed in runs of a few thousand
//! consecutive records, each as a plain tar (`./` plus one store file) and as a Neo4j DZV1
//! dump (zstd level 3 around the same tar). Generation is deterministic (xorshift) and
//! streams to disk. Inputs are read once before each step, so they come from the page cache;
//! the harness does not drop caches (it cannot assume root) but calls sync(2) between steps.
//!
//! Each tool runs as a child process and is measured with `wait4`: wall time, CPU
//! (user + system) and peak RSS (`ru_maxrss`). Steps, per tool and per input series (tar,
//! dump), each series in a fresh repository: (a) first snapshot of day 1, (b) day 1 again,
//! unchanged, (b') for restic and borg the same with their metadata cache bypassed, (c) day 2,
//! with the repository's growth on disk and the bytes the tool says it added, (d) restore of
//! day 2 (verified against the input afterwards, outside the measurement). Also `zstd -3 -T2`
//! on the day-1 tar as the reference ceiling, and `zstd -d` of its output back to a file; rbk
//! is set against them in the same run (first snapshot / `zstd -3 -T2`, restore / `zstd -d`),
//! a dump's restore against the tar's, and a dump's first snapshot as pause seconds per GB.
//!
//! Environment knobs:
//! - `RBK_BENCH_GIB` (default 1.5): size of the store file in GiB.
//! - `RBK_BENCH_DIR` (default the system temp dir): where the work directory
//!   `rbk-e2e-bench-<GiB>` is created; needs about 7x the store size free.
//! - `RBK_BENCH_KEEP=1`: keep the generated inputs (and reuse them next time).
//! - `RBK_BENCH_CHANGE_PERCENT` (default 1): records changed on day 2, in %.
//! - `RBK_BENCH_SEED` (default 1): generator seed.
//! - `RBK_BENCH_OTHERS=0`: skip restic and borg even when they are on PATH.
//! - `RBK_BENCH_WAIT_IDLE=SECONDS` (default 0): before each step, wait up to that long for the
//!   rest of the machine to use less than 0.1 core (for shared machines; the `bg cores`
//!   column shows how much other load each step saw).
//! - `RBK_BENCH_NICE=N` (default unset): run the harness and every tool at nice level N
//!   (negative needs root), so other load on a shared machine disturbs the figures less.
//!
//! Peak RSS caveat: std spawns children with vfork semantics, so a child's `ru_maxrss` starts
//! at the harness's own peak RSS. The harness therefore resets its peak before each spawn
//! (`/proc/self/clear_refs`) and keeps itself small: generation, verification and the index
//! load run in helper children (`--role ...`, the bench binary re-executing itself). The
//! largest floor seen is printed.
//!
//! It prints one table with every figure, the rbk/other ratios, the index memory, and
//! PASS/MISS against the targets; it exits with status 0 either way (it is a measurement).

#[path = "common/env.rs"]
mod env;
use env::env_or;

#[path = "common/pages.rs"]
#[allow(dead_code)]
mod pages;

#[path = "e2e/inputs.rs"]
mod inputs;
#[path = "e2e/measure.rs"]
mod measure;
#[path = "e2e/report.rs"]
mod report;
#[path = "e2e/tools.rs"]
mod tools;

use std::ffi::OsStr;
use std::fs::{self, File};
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use rbk::codec::neo4j_dump::open_dump;
use rbk::store::Repository;
use rbk::store::backend::LocalBackend;
use rbk::store::index::Index;

use inputs::{Inputs, Params, same_bytes, size_of, sync_all, tree_size, warm};
use report::{Row, Series, Step};
use tools::{Kind, Tool};

struct Config {
    params: Params,
    work: PathBuf,
    keep: bool,
    others: bool,
    wait_idle: f64,
    nice: Option<i32>,
}

fn config() -> Result<Config> {
    let gib: f64 = env_or("RBK_BENCH_GIB", 1.5)?;
    if !(gib > 0.0 && gib <= 64.0) {
        bail!("RBK_BENCH_GIB must be in (0, 64]");
    }
    let base: PathBuf = std::env::var_os("RBK_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    Ok(Config {
        params: Params {
            gib,
            seed: env_or("RBK_BENCH_SEED", 1)?,
            change_percent: env_or("RBK_BENCH_CHANGE_PERCENT", 1.0)?,
        },
        work: base.join(format!("rbk-e2e-bench-{gib}")),
        keep: env_or("RBK_BENCH_KEEP", 0u8)? == 1,
        others: env_or("RBK_BENCH_OTHERS", 1u8)? == 1,
        wait_idle: env_or("RBK_BENCH_WAIT_IDLE", 0.0)?,
        nice: match std::env::var("RBK_BENCH_NICE") {
            Ok(v) if !v.trim().is_empty() => Some(env_or("RBK_BENCH_NICE", 0)?),
            _ => None,
        },
    })
}

fn free_bytes(dir: &Path) -> Option<u64> {
    let c = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()).ok()?;
    // SAFETY: statvfs is plain old data; `c` is a valid NUL-terminated path.
    let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers are valid for the call.
    (unsafe { libc::statvfs(c.as_ptr(), &mut s) } == 0)
        .then(|| s.f_bavail as u64 * s.f_frsize as u64)
}

fn remove_dir(dir: &Path) -> Result<()> {
    match fs::remove_dir_all(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("remove {}", dir.display()))
        }
        _ => Ok(()),
    }
}

/// Waits (up to `max_seconds`) until the machine's other load is under 0.1 core.
fn wait_idle(max_seconds: f64) {
    let started = Instant::now();
    let mut said = false;
    while started.elapsed().as_secs_f64() < max_seconds {
        let before = measure::machine_busy_seconds();
        std::thread::sleep(std::time::Duration::from_millis(1000));
        if measure::machine_busy_seconds() - before < 0.1 {
            return;
        }
        if !said {
            eprintln!("  (waiting for other load on the machine to stop)");
            said = true;
        }
    }
}

/// Puts the input in the page cache and flushes earlier writes, just before a measured step.
fn ready(cfg: &Config, input: &Path) -> Result<()> {
    warm(input)?;
    sync_all();
    if cfg.wait_idle > 0.0 {
        wait_idle(cfg.wait_idle);
    }
    Ok(())
}

fn mb(b: u64) -> f64 {
    b as f64 / 1e6
}

/// rbk facts besides the table: chunk counts and the in-memory index.
#[derive(Default)]
struct RbkFacts {
    day1_chunks: Option<u64>,
    day1_new_chunks: Option<u64>,
    day2_new_chunks: Option<u64>,
    repo_after_day1: u64,
    index_blobs: usize,
    index_memory: usize,
}

struct Bench<'a> {
    cfg: &'a Config,
    inputs: &'a Inputs,
    rows: Vec<Row>,
    rbk: RbkFacts,
}

impl Bench<'_> {
    fn push(
        &mut self,
        series: Series,
        step: Step,
        tool: &str,
        bytes: u64,
        usage: measure::Usage,
    ) -> &mut Row {
        let row = Row {
            series,
            step,
            tool: tool.to_string(),
            bytes,
            store_bytes: size_of(&self.inputs.day1_tar).unwrap_or(bytes),
            usage,
            added: None,
            growth: None,
        };
        eprintln!(
            "  {:<6} {:<5} {:<22} {:>7.2} s {:>7.0} MB/s  CPU {:>6.2} s (user {:.2} + sys {:.2})  RSS {:>6.1} MiB  bg {:.2} cores",
            tool,
            series.name(),
            step.name(),
            row.secs(),
            row.mbps(),
            row.usage.cpu,
            row.usage.user,
            row.usage.sys,
            row.usage.rss_mib(),
            row.usage.background_cores
        );
        self.rows.push(row);
        self.rows.last_mut().expect("just pushed")
    }

    fn series(&mut self, tool: &Tool, series: Series) -> Result<()> {
        let (day1, day2) = match series {
            Series::Dump => (&self.inputs.day1_dump, &self.inputs.day2_dump),
            _ => (&self.inputs.day1_tar, &self.inputs.day2_tar),
        };
        let name = tool.kind.name();
        let repo = self.cfg.work.join(format!("repo-{name}-{}", series.name()));
        let restore_dir = self
            .cfg
            .work
            .join(format!("restore-{name}-{}", series.name()));
        remove_dir(&repo)?;
        remove_dir(&restore_dir)?;
        tool.init(&repo)?;
        let (size1, size2) = (size_of(day1)?, size_of(day2)?);

        ready(self.cfg, day1)?;
        let a = tool.backup(&repo, day1, "day1", false)?;
        let after_a = tree_size(&repo)?;
        let row = self.push(series, Step::First, name, size1, a.usage);
        row.added = a.added;
        row.growth = Some(after_a);
        if tool.kind == Kind::Rbk && series == Series::Tar {
            self.rbk.day1_chunks = a.chunks;
            self.rbk.day1_new_chunks = a.new_chunks;
            self.rbk.repo_after_day1 = after_a;
        }

        ready(self.cfg, day1)?;
        let b = tool.backup(&repo, day1, "day1-again", false)?;
        let after_b = tree_size(&repo)?;
        let row = self.push(series, Step::Unchanged, name, size1, b.usage);
        row.added = b.added;
        row.growth = Some(after_b - after_a);

        let mut before_c = after_b;
        if tool.kind != Kind::Rbk && series == Series::Tar {
            ready(self.cfg, day1)?;
            let f = tool.backup(&repo, day1, "day1-reread", true)?;
            let after_f = tree_size(&repo)?;
            let row = self.push(series, Step::UnchangedReread, name, size1, f.usage);
            row.added = f.added;
            row.growth = Some(after_f - after_b);
            before_c = after_f;
        }

        ready(self.cfg, day2)?;
        let c = tool.backup(&repo, day2, "day2", false)?;
        let after_c = tree_size(&repo)?;
        let row = self.push(series, Step::Day2, name, size2, c.usage);
        row.added = c.added;
        row.growth = Some(after_c - before_c);
        if tool.kind == Kind::Rbk && series == Series::Tar {
            self.rbk.day2_new_chunks = c.new_chunks;
        }

        sync_all();
        if self.cfg.wait_idle > 0.0 {
            wait_idle(self.cfg.wait_idle);
        }
        let (usage, restored) = tool.restore(&repo, &c.id, day2, &restore_dir)?;
        let restored_size = size_of(&restored)?;
        self.push(series, Step::Restore, name, restored_size, usage);
        // Verified outside the measurement: byte for byte, or for a dump re-encoded by rbk
        // (whose compressed bytes differ), the tar inside it against the day-2 tar.
        let (mode, expected) = if tool.kind == Kind::Rbk && series == Series::Dump {
            ("dump-inner", &self.inputs.day2_tar)
        } else {
            ("plain", day2)
        };
        let verdict = helper(&[
            OsStr::new("verify"),
            OsStr::new(mode),
            restored.as_os_str(),
            expected.as_os_str(),
        ])?;
        if verdict.trim() != "same" {
            bail!(
                "{name} restored {} with different content",
                restored.display()
            );
        }
        remove_dir(&restore_dir)?;

        if tool.kind == Kind::Rbk && series == Series::Tar {
            let usage = tool.list(&repo)?;
            self.push(series, Step::Open, name, 0, usage);
            let out = helper(&[OsStr::new("index"), repo.as_os_str()])?;
            let mut numbers = out.split_whitespace().map(str::parse::<usize>);
            if let (Some(Ok(blobs)), Some(Ok(memory))) = (numbers.next(), numbers.next()) {
                self.rbk.index_blobs = blobs;
                self.rbk.index_memory = memory;
            }
        }
        remove_dir(&repo)?;
        Ok(())
    }

    fn zstd_reference(&mut self, zstd: &Path) -> Result<u64> {
        let out = self.cfg.work.join("day1.tar.zst");
        ready(self.cfg, &self.inputs.day1_tar)?;
        let mut c = Command::new(zstd);
        c.args(["-3", "-T2", "-q", "-f"])
            .arg(&self.inputs.day1_tar)
            .arg("-o")
            .arg(&out);
        let done = measure::run(&mut c, "zstd -3 -T2")?;
        let compressed = size_of(&out)?;
        let bytes = size_of(&self.inputs.day1_tar)?;
        self.push(Series::Reference, Step::Zstd, "zstd", bytes, done.usage);
        // And back to a file: what a restore writing the tar is held against.
        let back = self.cfg.work.join("day1.tar.unzst");
        ready(self.cfg, &out)?;
        let mut d = Command::new(zstd);
        d.args(["-d", "-q", "-f"]).arg(&out).arg("-o").arg(&back);
        let done = measure::run(&mut d, "zstd -d")?;
        let _ = fs::remove_file(&out);
        let _ = fs::remove_file(&back);
        self.push(Series::Reference, Step::Unzstd, "zstd", bytes, done.usage);
        Ok(compressed)
    }
}

/// Runs this binary again as a helper (`--role ...`) and returns what it printed.
fn helper(args: &[&OsStr]) -> Result<String> {
    let exe = std::env::current_exe()?;
    let out = Command::new(exe)
        .arg("--role")
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()?;
    if !out.status.success() {
        bail!("helper {args:?} failed ({})", out.status);
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The helper roles, each in its own process so that its memory never raises the harness's
/// peak RSS (which every child's `ru_maxrss` would inherit).
fn role(cfg: &Config, args: &[String]) -> Result<()> {
    match args {
        [r] if r == "generate" => {
            let inputs = inputs::prepare(&cfg.work, &cfg.params)?;
            match inputs.generated_in {
                Some(d) => println!("generated {}", d.as_secs_f64()),
                None => println!("reused"),
            }
        }
        [r, mode, restored, expected] if r == "verify" => {
            let expected = File::open(expected)?;
            let restored = BufReader::new(File::open(restored)?);
            let same = match mode.as_str() {
                "dump-inner" => same_bytes(open_dump(restored)?.1, expected)?,
                _ => same_bytes(restored, expected)?,
            };
            println!("{}", if same { "same" } else { "different" });
        }
        [r, repo] if r == "index" => {
            let repo = Repository::open(
                Arc::new(LocalBackend::new(repo)),
                tools::PASSWORD.as_bytes(),
            )?;
            let index = repo.load_index()?;
            println!("{} {}", index.len(), index.memory_bytes());
        }
        _ => bail!("unknown helper role {args:?}"),
    }
    Ok(())
}

fn main() -> Result<()> {
    let cfg = config()?;
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().is_some_and(|a| a == "--role") {
        return role(&cfg, &args[1..]);
    }
    if let Some(n) = cfg.nice {
        // SAFETY: setpriority has no memory-safety preconditions; children inherit the level.
        if unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, n) } != 0 {
            bail!("RBK_BENCH_NICE={n}: {}", std::io::Error::last_os_error());
        }
    }
    let rbk_bin = PathBuf::from(env!("CARGO_BIN_EXE_rbk"));
    let mut tools = vec![Tool::new(Kind::Rbk, rbk_bin, cfg.work.clone())];
    if cfg.others {
        for kind in [Kind::Restic, Kind::Borg] {
            match tools::on_path(kind.name()) {
                Some(bin) => tools.push(Tool::new(kind, bin, cfg.work.clone())),
                None => eprintln!("{} is not on PATH: skipped", kind.name()),
            }
        }
    }
    let zstd = tools::on_path("zstd");

    fs::create_dir_all(&cfg.work).with_context(|| format!("create {}", cfg.work.display()))?;
    let store_estimate = (cfg.params.gib * (1u64 << 30) as f64) as u64;
    if let Some(free) = free_bytes(&cfg.work)
        && free < 7 * store_estimate
    {
        bail!(
            "{} has {:.1} GB free, the benchmark needs about {:.1} GB (7x the store); set RBK_BENCH_DIR or RBK_BENCH_GIB",
            cfg.work.display(),
            mb(free) / 1e3,
            mb(7 * store_estimate) / 1e3
        );
    }

    println!("rbk e2e benchmark");
    println!(
        "  machine: {} CPUs, work dir {} ({:.1} GB free)",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        cfg.work.display(),
        free_bytes(&cfg.work).map_or(0.0, |f| mb(f) / 1e3)
    );
    for t in &tools {
        println!("  {}: {} ({})", t.kind.name(), t.bin.display(), t.version);
    }
    let caches = [cfg.work.join("restic-cache"), cfg.work.join("borg-base")];
    for c in &caches {
        remove_dir(c)?;
    }
    eprintln!("preparing inputs in {} ...", cfg.work.display());
    let (mut inputs, _, _) = inputs::plan(&cfg.work, &cfg.params);
    let generated = helper(&[OsStr::new("generate")])?;
    inputs.generated_in = generated
        .trim()
        .strip_prefix("generated ")
        .and_then(|s| s.parse().ok())
        .map(std::time::Duration::from_secs_f64);
    let tar1 = size_of(&inputs.day1_tar)?;
    let (dump1, dump2) = (size_of(&inputs.day1_dump)?, size_of(&inputs.day2_dump)?);
    println!(
        "  store: {:.1} MB ({} records of 64 B in 8 KiB pages); day 2: {} records changed ({:.2} %) in {} runs",
        mb(inputs.store_bytes),
        inputs.records,
        inputs.changed_records,
        100.0 * inputs.changed_records as f64 / inputs.records as f64,
        inputs.runs
    );
    println!(
        "  inputs: day1.tar {:.1} MB, day1.dump {:.1} MB, day2.dump {:.1} MB; zstd -3 ratio (DZV1 dump, one thread): {:.2}x; {}",
        mb(tar1),
        mb(dump1),
        mb(dump2),
        tar1 as f64 / dump1 as f64,
        match inputs.generated_in {
            Some(d) => format!("generated in {:.1} s", d.as_secs_f64()),
            None => "reused from a previous run".into(),
        }
    );
    println!(
        "  inputs are read once before each step (page cache warm); sync(2) between steps; no cache drop"
    );

    let mut bench = Bench {
        cfg: &cfg,
        inputs: &inputs,
        rows: Vec::new(),
        rbk: RbkFacts::default(),
    };
    let started = Instant::now();
    let mut zstd_compressed = None;
    if let Some(z) = &zstd {
        zstd_compressed = Some(bench.zstd_reference(z)?);
    }
    for tool in &tools {
        for series in [Series::Tar, Series::Dump] {
            eprintln!("{} / {} ...", tool.kind.name(), series.name());
            bench.series(tool, series)?;
        }
    }
    let others: Vec<&str> = tools
        .iter()
        .filter(|t| t.kind != Kind::Rbk)
        .map(|t| t.kind.name())
        .collect();

    println!();
    println!(
        "results ({:.0} s of measuring; MB = 10^6 B; MB/s of the file given or written; store MB/s and CPU s/GB of the tar behind it; growth% = repository growth on disk / input file):",
        started.elapsed().as_secs_f64()
    );
    report::print_rows(&bench.rows);
    if let Some(c) = zstd_compressed {
        println!(
            "  zstd -3 -T2 on day1.tar: {:.1} MB -> {:.1} MB, ratio {:.2}x",
            mb(tar1),
            mb(c),
            tar1 as f64 / c as f64
        );
    }
    if let Some(r) = bench
        .rows
        .iter()
        .find(|r| r.series == Series::Dump && r.step == Step::Day2 && r.tool == "rbk")
        && let Some(g) = r.growth
    {
        println!(
            "  rbk dump day 2: repository growth {:.2} MB = {:.3} % of the dump file, {:.3} % of the store inside it",
            mb(g),
            100.0 * g as f64 / r.bytes as f64,
            100.0 * g as f64 / r.store_bytes as f64
        );
    }
    let f = &bench.rbk;
    println!();
    println!("rbk chunks and index:");
    println!(
        "  day 1: {} chunks (mean {:.1} KiB), {} stored; repository after day 1 {:.1} MB ({:.2}x smaller than the tar); day 2: {} new chunks",
        f.day1_chunks.unwrap_or(0),
        inputs.store_bytes as f64 / 1024.0 / f.day1_chunks.unwrap_or(1).max(1) as f64,
        f.day1_new_chunks.unwrap_or(0),
        mb(f.repo_after_day1),
        tar1 as f64 / f.repo_after_day1.max(1) as f64,
        f.day2_new_chunks.unwrap_or(0)
    );
    println!(
        "  in-memory index: Index::BYTES_PER_BLOB = {} B; {} blobs after day 2 -> {:.2} MiB (memory_bytes {}); {:.0} KiB per GB stored, {:.1} MiB per TB",
        Index::BYTES_PER_BLOB,
        f.index_blobs,
        (f.index_blobs * Index::BYTES_PER_BLOB) as f64 / (1u64 << 20) as f64,
        f.index_memory,
        (f.index_blobs * Index::BYTES_PER_BLOB) as f64 / 1024.0 / (inputs.store_bytes as f64 / 1e9),
        (f.index_blobs * Index::BYTES_PER_BLOB) as f64 / (1u64 << 20) as f64 * 1000.0
            / (inputs.store_bytes as f64 / 1e9)
    );
    println!();
    report::print_ratios(&bench.rows, &others);
    println!();
    report::print_against_references(&bench.rows);
    println!();
    println!("targets (rbk, 2-core machine):");
    let missed = report::print_targets(&bench.rows);
    println!("  {missed} missed");
    println!(
        "  (largest RSS floor a child inherited from the harness: {:.1} MiB)",
        bench
            .rows
            .iter()
            .map(|r| r.usage.floor_kib)
            .max()
            .unwrap_or(0) as f64
            / 1024.0
    );

    for c in &caches {
        remove_dir(c)?;
    }
    if !cfg.keep {
        for p in inputs.all() {
            let _ = fs::remove_file(p);
        }
        let _ = fs::remove_file(cfg.work.join("inputs.stamp"));
        remove_dir(&cfg.work)?;
    }
    Ok(())
}
