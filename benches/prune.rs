//! Prune benchmark: a year of nightly snapshots taken by the real `rbk`, then `rbk prune` with a daily/weekly/monthly policy, measured.
//!
//! Run: `cargo bench --bench prune` (the first run builds the repository: 365 snapshots of a
//! 1 GiB store, 10-20 minutes on 2 cores; later runs reuse it and take a minute or two).
//!
//! History: a page store (`benches/common/pages.rs`, 8 KiB pages of 64-byte records) in a tar,
//! snapshotted with `rbk snapshot --path store.tar --time T` every night at 02:00 Central
//! European time from 2025-11-27 (+01:00 in winter, +02:00 in summer, so retention buckets
//! cross both DST changes), each night with about 1% of the records rewritten in runs (the
//! e2e harness's day-2 changes). The built repository is cached, keyed by its parameters, and
//! an interrupted build resumes where it stopped.
//!
//! Measured on a copy (`cp -a`) of the cached repository, each as a child process (wall time;
//! CPU and peak RSS from `wait4`, see `e2e/measure.rs`): `rbk prune --dry-run` and
//! `rbk prune` with `--keep-daily 7 --keep-weekly 4 --keep-monthly 12`, then `rbk check`,
//! `rbk check --read-data`, and a restore of the newest kept snapshot, verified byte for byte
//! against the last night's input (outside the measurement). Also: what prune reports
//! (snapshots removed, packs deleted and repacked, bytes freed and copied), the size of
//! `data/` before and after, the build's snapshot throughput, and whether the plan matches an
//! independent reading of the policy (`prune/policy.rs`). A table is printed and the same
//! figures are written as JSON next to the cache.
//!
//! Environment knobs:
//! - `RBK_PRUNE_GIB` (default 1): size of the store file in GiB.
//! - `RBK_PRUNE_DAYS` (default 365): nights of snapshots.
//! - `RBK_PRUNE_CHANGE_PERCENT` (default 1): records rewritten each night, in %.
//! - `RBK_PRUNE_SEED` (default 1): generator seed.
//! - `RBK_BENCH_DIR` (default cargo's target tmp dir): where the cache directory
//!   `rbk-prune-bench-<parameters>` and the report `rbk-prune-report-<parameters>.json` go;
//!   needs room for the store, two copies of the repository and a restore (about 7 GB at
//!   the defaults).
//! - `RBK_PRUNE_READ_DATA=0`: skip `rbk check --read-data` after prune.
//! - `RBK_PRUNE_KEEP_WORK=1`: keep the pruned copy and the restore for inspection.
//! - `RBK_PRUNE_BIN` (default the `rbk` cargo built with this bench): the binary to measure,
//!   e.g. a copy, so that a long build is not switched to a rebuilt binary halfway.
//!
//! Peak RSS: the harness stays small (no step holds more than a few MiB), and `measure::run`
//! resets its peak before each spawn, so a child's `ru_maxrss` is its own.

#[path = "common/env.rs"]
mod env;
use env::env_or;

#[path = "common/pages.rs"]
#[allow(dead_code)]
mod pages;

// The e2e harness's process measurement and file helpers, shared rather than copied.
#[path = "e2e/inputs.rs"]
#[allow(dead_code)]
mod inputs;
#[path = "e2e/measure.rs"]
mod measure;

#[path = "prune/build.rs"]
mod build;
#[path = "prune/history.rs"]
mod history;
#[path = "prune/policy.rs"]
mod policy;
#[path = "prune/report.rs"]
mod report;

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use build::{Built, Rbk};
use history::{Store, night};
use inputs::{same_bytes, sync_all};
use report::{BuildSummary, Row, mb, size_json, size_of_tree, usage_json};

/// Bump when the history (store, changes, calendar) changes, so old caches are not reused.
const FORMAT: &str = "v1";

struct Config {
    gib: f64,
    days: u32,
    change_percent: f64,
    seed: u64,
    base: PathBuf,
    read_data: bool,
    keep_work: bool,
}

fn config() -> Result<Config> {
    let cfg = Config {
        gib: env_or("RBK_PRUNE_GIB", 1.0)?,
        days: env_or("RBK_PRUNE_DAYS", 365)?,
        change_percent: env_or("RBK_PRUNE_CHANGE_PERCENT", 1.0)?,
        seed: env_or("RBK_PRUNE_SEED", 1)?,
        base: std::env::var_os("RBK_BENCH_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR"))),
        read_data: env_or("RBK_PRUNE_READ_DATA", 1u8)? == 1,
        keep_work: env_or("RBK_PRUNE_KEEP_WORK", 0u8)? == 1,
    };
    if !(cfg.gib > 0.0 && cfg.gib <= 64.0) {
        bail!("RBK_PRUNE_GIB must be in (0, 64]");
    }
    if !(1..=3660).contains(&cfg.days) {
        bail!("RBK_PRUNE_DAYS must be in 1..=3660");
    }
    if !(cfg.change_percent > 0.0 && cfg.change_percent <= 50.0) {
        bail!("RBK_PRUNE_CHANGE_PERCENT must be in (0, 50]");
    }
    Ok(cfg)
}

impl Config {
    /// Names the cache and the report: everything the built repository depends on.
    fn key(&self) -> String {
        format!(
            "{}gib-{}d-{}pct-s{}-{FORMAT}",
            self.gib, self.days, self.change_percent, self.seed
        )
    }
}

fn remove_dir(dir: &Path) -> Result<()> {
    match fs::remove_dir_all(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("remove {}", dir.display()))
        }
        _ => Ok(()),
    }
}

fn free_bytes(dir: &Path) -> Option<u64> {
    let c = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()).ok()?;
    // SAFETY: statvfs is plain old data; `c` is a valid NUL-terminated path.
    let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers are valid for the call.
    (unsafe { libc::statvfs(c.as_ptr(), &mut s) } == 0)
        .then(|| s.f_bavail as u64 * s.f_frsize as u64)
}

/// Time of a plan entry, for ordering and the policy model.
fn parse_time(s: &str) -> Result<time::OffsetDateTime> {
    rbk::store::time::parse_rfc3339(s).with_context(|| format!("unreadable time {s:?}"))
}

fn u64_at(v: &Value, key: &str) -> u64 {
    v[key].as_u64().unwrap_or(0)
}

fn main() -> Result<()> {
    let cfg = config()?;
    let cache = cfg.base.join(format!("rbk-prune-bench-{}", cfg.key()));
    let work = cache.join("work");
    fs::create_dir_all(&cache).with_context(|| format!("create {}", cache.display()))?;
    let store = Store::new(
        &cache.join("store.tar"),
        cfg.gib,
        cfg.seed,
        cfg.change_percent,
    );
    let rbk = Rbk {
        bin: std::env::var_os("RBK_PRUNE_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_rbk"))),
        cwd: cache.clone(),
    };
    let version = Command::new(&rbk.bin)
        .arg("--version")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();

    println!("rbk prune benchmark");
    println!(
        "  machine: {} CPUs; {} ({version}); cache {} ({:.1} GB free)",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        rbk.bin.display(),
        cache.display(),
        free_bytes(&cache).map_or(0.0, |f| mb(f) / 1e3)
    );
    println!(
        "  history: {} nights from {} to {}, store {:.1} MB ({} records), {}% of records rewritten each night",
        cfg.days,
        night(1),
        night(cfg.days),
        mb(store.store_bytes()),
        store.records,
        cfg.change_percent
    );

    let built = build::build(&rbk, &cache, &store, cfg.days)?;
    let summary = BuildSummary::of(&built.nights);
    if built.reused {
        println!("  repository: reused from the cache (built earlier)");
    } else {
        println!(
            "  repository: built in {:.0} s (snapshots {:.0} s, input changes {:.0} s)",
            built.wall_s, summary.snapshot_wall_s, summary.change_s
        );
    }

    remove_dir(&work)?;
    fs::create_dir_all(&work)?;
    let repo = work.join("repo");
    eprintln!("copying the repository ...");
    let status = Command::new("cp")
        .arg("-a")
        .arg(&built.repo)
        .arg(&repo)
        .status()?;
    if !status.success() {
        bail!("cp -a {} {} failed", built.repo.display(), repo.display());
    }
    sync_all();
    let results = measure_prune(&cfg, &rbk, &built, &store, &repo, &work)?;
    print_report(&cfg, &summary, &results);

    let report = json!({
        "benchmark": "rbk prune",
        "rbk": version,
        "parameters": {
            "gib": cfg.gib,
            "days": cfg.days,
            "change_percent": cfg.change_percent,
            "seed": cfg.seed,
            "store_bytes": store.store_bytes(),
            "first_night": night(1),
            "last_night": night(cfg.days),
            "policy": policy::ARGS.join(" "),
        },
        "build": summary.to_json(),
        "build_reused": built.reused,
        "build_wall_s": built.wall_s,
        "repository_before": {"data": size_json(results.data_before), "all": size_json(results.repo_before)},
        "repository_after": {"data": size_json(results.data_after), "all": size_json(results.repo_after)},
        "prune": results.prune_json,
        "plan_matches_model": results.plan_matches,
        "snapshots_kept": results.kept,
        "check_ok": results.check_ok,
        "restore_identical": results.restore_identical,
        "steps": results.rows.iter().map(|r| json!({
            "step": r.step, "note": r.note, "usage": usage_json(&r.usage),
        })).collect::<Vec<_>>(),
    });
    let path = cfg
        .base
        .join(format!("rbk-prune-report-{}.json", cfg.key()));
    fs::write(&path, serde_json::to_string_pretty(&report)? + "\n")?;
    println!("  report written to {}", path.display());

    if !cfg.keep_work {
        remove_dir(&work)?;
    }
    if !(results.check_ok && results.restore_identical && results.plan_matches) {
        bail!("the pruned repository failed a check (see above)");
    }
    Ok(())
}

/// What the measured steps found.
struct Results {
    rows: Vec<Row>,
    prune_json: Value,
    data_before: report::Size,
    repo_before: report::Size,
    data_after: report::Size,
    repo_after: report::Size,
    kept: usize,
    plan_matches: bool,
    check_ok: bool,
    restore_identical: bool,
}

fn measure_prune(
    cfg: &Config,
    rbk: &Rbk,
    built: &Built,
    store: &Store,
    repo: &Path,
    work: &Path,
) -> Result<Results> {
    let mut rows = Vec::new();
    let data_before = size_of_tree(&repo.join("data"))?;
    let repo_before = size_of_tree(repo)?;

    let mut args = vec!["prune"];
    args.extend(policy::ARGS);
    let mut dry = args.clone();
    dry.push("--dry-run");
    eprintln!("rbk prune --dry-run ...");
    let (done, v) = rbk.json(repo, &dry, "rbk prune --dry-run")?;
    rows.push(Row {
        step: "prune --dry-run".into(),
        usage: done.usage,
        note: format!(
            "would free {:.1} MB, repack {:.1} MB",
            mb(u64_at(&v["reclaim"], "bytes_freed")),
            mb(u64_at(&v["reclaim"], "bytes_repacked"))
        ),
    });

    sync_all();
    eprintln!("rbk prune ...");
    let (done, v) = rbk.json(repo, &args, "rbk prune")?;
    let r = &v["reclaim"];
    rows.push(Row {
        step: "prune".into(),
        usage: done.usage,
        note: format!(
            "{} snapshots removed, {} packs deleted, {} repacked",
            u64_at(&v, "snapshots_removed"),
            u64_at(r, "packs_deleted"),
            u64_at(r, "packs_repacked")
        ),
    });
    sync_all();
    let data_after = size_of_tree(&repo.join("data"))?;
    let repo_after = size_of_tree(repo)?;

    // The plan against an independent reading of the policy.
    let plan = v["plan"].as_array().context("no plan in prune's JSON")?;
    let mut all = Vec::new();
    let mut kept_by_rbk = BTreeSet::new();
    for d in plan {
        let id = d["id"]
            .as_str()
            .context("a plan entry without id")?
            .to_string();
        let t = parse_time(d["time"].as_str().unwrap_or(""))?;
        if d["keep"].as_bool() == Some(true) {
            kept_by_rbk.insert(id.clone());
        }
        all.push((id, t));
    }
    let kept_by_model = policy::kept(&all);
    let plan_matches = kept_by_rbk == kept_by_model && all.len() == built.nights.len();
    if !plan_matches {
        eprintln!(
            "PLAN MISMATCH: {} snapshots in the plan ({} built); kept by rbk only: {:?}; kept by the model only: {:?}",
            all.len(),
            built.nights.len(),
            kept_by_rbk.difference(&kept_by_model).collect::<Vec<_>>(),
            kept_by_model.difference(&kept_by_rbk).collect::<Vec<_>>()
        );
    }

    let mut check_ok = true;
    let mut checks = vec![("check", vec!["check"])];
    if cfg.read_data {
        checks.push(("check --read-data", vec!["check", "--read-data"]));
    }
    for (name, a) in checks {
        eprintln!("rbk {name} ...");
        sync_all();
        match rbk.json(repo, &a, &format!("rbk {name}")) {
            Ok((done, v)) => {
                let errors = v["errors"].as_array().map_or(0, Vec::len);
                let warnings = v["warnings"].as_array().map_or(0, Vec::len);
                check_ok &= v["ok"].as_bool() == Some(true) && errors == 0;
                rows.push(Row {
                    step: name.into(),
                    usage: done.usage,
                    note: format!("{errors} errors, {warnings} warnings"),
                });
            }
            Err(e) => {
                eprintln!("rbk {name} FAILED: {e:#}");
                check_ok = false;
            }
        }
    }

    // The newest kept snapshot is the last night's, whose input is the store as it is now.
    let newest = all
        .iter()
        .filter(|(id, _)| kept_by_rbk.contains(id))
        .max_by_key(|(_, t)| *t)
        .context("prune kept no snapshot")?;
    let last = built.nights.last().context("no snapshot was taken")?;
    if newest.0 != last.id {
        bail!(
            "the newest kept snapshot {} is not the last night's ({})",
            newest.0,
            last.id
        );
    }
    let to = work.join("restore");
    fs::create_dir_all(&to)?;
    eprintln!("rbk restore {} ...", &newest.0[..8]);
    sync_all();
    let mut c = rbk.command(repo);
    c.args(["--quiet", "restore", &newest.0, "--to"]).arg(&to);
    let done = measure::run(&mut c, "rbk restore")?;
    let restored = to.join("store.tar");
    let restore_identical = same_bytes(File::open(&restored)?, File::open(&store.path)?)?;
    rows.push(Row {
        step: format!("restore {}", &newest.0[..8]),
        usage: done.usage,
        note: format!(
            "{:.1} MB, {}",
            mb(inputs::size_of(&restored)?),
            if restore_identical {
                "byte-identical to the last night's input"
            } else {
                "DIFFERENT from the last night's input"
            }
        ),
    });

    Ok(Results {
        rows,
        prune_json: v,
        data_before,
        repo_before,
        data_after,
        repo_after,
        kept: kept_by_rbk.len(),
        plan_matches,
        check_ok,
        restore_identical,
    })
}

fn print_report(cfg: &Config, s: &BuildSummary, r: &Results) {
    let p = &r.prune_json;
    let rc = &p["reclaim"];
    println!();
    println!("results (MB = 10^6 B):");
    println!(
        "  build: {} snapshots, {:.1} GB read in {:.0} s of snapshots: {:.0} MB/s, {:.0} CPU s; first night {:.2} s ({:.0} MB/s), later nights {:.2} s each ({:.0} MB/s, {:.2} CPU s, {:.2} MB added); peak RSS {:.1} MiB",
        s.nights,
        mb(s.bytes_read) / 1e3,
        s.snapshot_wall_s,
        s.mbps(),
        s.snapshot_cpu_s,
        s.first_wall_s,
        s.first_mbps,
        s.later_mean_wall_s,
        s.later_mbps,
        s.later_mean_cpu_s,
        s.later_mean_added / 1e6,
        s.max_rss_mib
    );
    report::print_rows(&r.rows);
    println!(
        "  policy {}: {} snapshots kept, {} removed; plan {} the independent model",
        policy::ARGS.join(" "),
        r.kept,
        u64_at(p, "snapshots_removed"),
        if r.plan_matches {
            "matches"
        } else {
            "DOES NOT MATCH"
        }
    );
    println!(
        "  reclaim: {} packs before ({:.1} MB), {} deleted, {:.1} MB freed; {} repacked ({:.1} MB copied into {} new packs); {:.1} MB unused kept below the repack threshold (default --max-unused 5%); index files {} written, {} removed; prune says {:.1} s",
        u64_at(rc, "packs_before"),
        mb(u64_at(rc, "bytes_before")),
        u64_at(rc, "packs_deleted"),
        mb(u64_at(rc, "bytes_freed")),
        u64_at(rc, "packs_repacked"),
        mb(u64_at(rc, "bytes_repacked")),
        u64_at(rc, "packs_written"),
        mb(u64_at(rc, "unused_bytes_kept")),
        u64_at(rc, "index_files_written"),
        u64_at(rc, "index_files_removed"),
        u64_at(rc, "duration_ms") as f64 / 1e3
    );
    println!(
        "  data/: {:.1} MB -> {:.1} MB apparent ({:.1} -> {:.1} MB on disk, {} -> {} files); whole repository {:.1} -> {:.1} MB",
        mb(r.data_before.apparent),
        mb(r.data_after.apparent),
        mb(r.data_before.allocated),
        mb(r.data_after.allocated),
        r.data_before.files,
        r.data_after.files,
        mb(r.repo_before.apparent),
        mb(r.repo_after.apparent)
    );
    println!(
        "  check after prune: {}; restore of the newest kept snapshot: {}{}",
        if r.check_ok { "no errors" } else { "FAILED" },
        if r.restore_identical {
            "byte-identical"
        } else {
            "DIFFERENT"
        },
        if cfg.read_data {
            ""
        } else {
            " (RBK_PRUNE_READ_DATA=0: no --read-data)"
        }
    );
}
