//! The e2e harness's results: one row per measured step, the tables, the ratios and the targets.

use crate::measure::Usage;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Series {
    /// The store as a plain tar (what rbk stores byte for byte).
    Tar,
    /// The store as a Neo4j DZV1 dump (zstd 3 around the same tar).
    Dump,
    /// `zstd -3 -T2` on the day-1 tar: the ceiling for a compressing pass on this machine.
    Reference,
}

impl Series {
    pub fn name(self) -> &'static str {
        match self {
            Series::Tar => "tar",
            Series::Dump => "dump",
            Series::Reference => "ref",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// (a) first snapshot of day 1 into an empty repository.
    First,
    /// (b) day 1 again, unchanged.
    Unchanged,
    /// (b') day 1 again with the tool's metadata cache bypassed (restic `--force`, borg
    /// `--files-cache disabled`), so it reads and chunks the file as rbk always does.
    UnchangedReread,
    /// (c) day 2.
    Day2,
    /// (d) restore of day 2.
    Restore,
    /// rbk's fixed cost per command: `rbk snapshots` (Argon2id open, snapshot list).
    Open,
    /// `zstd -3 -T2` of the day-1 tar to a file.
    Zstd,
    /// `zstd -d` of that file back to a tar file.
    Unzstd,
}

impl Step {
    pub fn name(self) -> &'static str {
        match self {
            Step::First => "a first day1",
            Step::Unchanged => "b unchanged day1",
            Step::UnchangedReread => "b' unchanged re-read",
            Step::Day2 => "c day2",
            Step::Restore => "d restore day2",
            Step::Open => "open (snapshots)",
            Step::Zstd => "zstd -3 -T2 day1",
            Step::Unzstd => "zstd -d day1",
        }
    }
}

pub struct Row {
    pub series: Series,
    pub step: Step,
    pub tool: String,
    /// Bytes of the file the step read or wrote (input, or restored file).
    pub bytes: u64,
    /// Bytes of the uncompressed store stream behind it (the tar; for dumps, the tar inside).
    pub store_bytes: u64,
    pub usage: Usage,
    pub added: Option<u64>,
    pub growth: Option<u64>,
}

impl Row {
    pub fn secs(&self) -> f64 {
        self.usage.wall.as_secs_f64().max(1e-9)
    }
    /// MB/s of the file the tool was given (or wrote).
    pub fn mbps(&self) -> f64 {
        self.bytes as f64 / 1e6 / self.secs()
    }
    /// MB/s of the store data behind it.
    pub fn store_mbps(&self) -> f64 {
        self.store_bytes as f64 / 1e6 / self.secs()
    }
    /// CPU seconds per GB of store data.
    pub fn cpu_per_gb(&self) -> f64 {
        self.usage.cpu / (self.store_bytes as f64 / 1e9)
    }
    /// Repository growth as % of the input file.
    pub fn growth_pct(&self) -> Option<f64> {
        self.growth.map(|g| 100.0 * g as f64 / self.bytes as f64)
    }
    pub fn added_pct(&self) -> Option<f64> {
        self.added.map(|a| 100.0 * a as f64 / self.bytes as f64)
    }
}

fn opt(v: Option<f64>, width: usize, prec: usize) -> String {
    match v {
        Some(v) => format!("{v:>width$.prec$}"),
        None => format!("{:>width$}", "-"),
    }
}

pub fn print_rows(rows: &[Row]) {
    println!(
        "{:<6} {:<21} {:<12} {:>9} {:>8} {:>8} {:>9} {:>7} {:>8} {:>8} {:>9} {:>7} {:>9} {:>7}",
        "series",
        "step",
        "tool",
        "input MB",
        "wall s",
        "MB/s",
        "store MB/s",
        "CPU s",
        "CPU s/GB",
        "RSS MiB",
        "added MB",
        "added%",
        "repo+ MB",
        "growth%"
    );
    for r in rows {
        println!(
            "{:<6} {:<21} {:<12} {:>9.1} {:>8.2} {:>8.0} {:>9.0} {:>8.2} {:>8.2} {:>8.1} {} {} {} {} {:>8.2}",
            r.series.name(),
            r.step.name(),
            r.tool,
            r.bytes as f64 / 1e6,
            r.secs(),
            r.mbps(),
            r.store_mbps(),
            r.usage.cpu,
            r.cpu_per_gb(),
            r.usage.rss_mib(),
            opt(r.added.map(|a| a as f64 / 1e6), 9, 2),
            opt(r.added_pct(), 7, 3),
            opt(r.growth.map(|g| g as f64 / 1e6), 9, 2),
            opt(r.growth_pct(), 7, 3),
            r.usage.background_cores,
        );
    }
    let busy = rows
        .iter()
        .filter(|r| r.usage.background_cores > 0.2)
        .count();
    if busy > 0 {
        println!(
            "  WARNING: {busy} step(s) ran while other processes used more than 0.2 cores (bg cores): their figures are skewed; rerun on an idle machine"
        );
    }
}

fn find<'a>(rows: &'a [Row], series: Series, step: Step, tool: &str) -> Option<&'a Row> {
    rows.iter()
        .find(|r| r.series == series && r.step == step && r.tool == tool)
}

/// rbk's figures divided by each other tool's, step by step.
pub fn print_ratios(rows: &[Row], others: &[&str]) {
    if others.is_empty() {
        println!("(no restic or borg: not on PATH, or RBK_BENCH_OTHERS=0; no comparison)");
        return;
    }
    println!(
        "ratios rbk/other: MB/s > 1 means rbk is faster; CPU s/GB, RSS and growth < 1 mean rbk uses less"
    );
    print!("{:<6} {:<32}", "series", "step (rbk step vs other's step)");
    for o in others {
        print!(
            " | {:>13} {:>13} {:>11} {:>13}",
            format!("MB/s vs {o}"),
            format!("CPU/GB vs {o}"),
            format!("RSS vs {o}"),
            format!("growth vs {o}")
        );
    }
    println!();
    let pairs = [
        (Series::Tar, Step::First, Step::First),
        (Series::Tar, Step::Unchanged, Step::Unchanged),
        (Series::Tar, Step::Unchanged, Step::UnchangedReread),
        (Series::Tar, Step::Day2, Step::Day2),
        (Series::Tar, Step::Restore, Step::Restore),
        (Series::Dump, Step::First, Step::First),
        (Series::Dump, Step::Unchanged, Step::Unchanged),
        (Series::Dump, Step::Day2, Step::Day2),
        (Series::Dump, Step::Restore, Step::Restore),
    ];
    for (series, mine, theirs) in pairs {
        let Some(r) = find(rows, series, mine, "rbk") else {
            continue;
        };
        let label = if mine == theirs {
            mine.name().to_string()
        } else {
            format!("{} vs {}", mine.name(), &theirs.name()[..2])
        };
        print!("{:<6} {:<32}", series.name(), label);
        for o in others {
            match find(rows, series, theirs, o) {
                Some(t) => {
                    // Growth only means something where data is stored: the first and day-2 steps.
                    let growth = match (r.growth, t.growth) {
                        (Some(a), Some(b)) if b > 0 && matches!(mine, Step::First | Step::Day2) => {
                            Some(a as f64 / b as f64)
                        }
                        _ => None,
                    };
                    print!(
                        " | {:>13.2} {:>13.2} {:>11.2} {}",
                        r.mbps() / t.mbps(),
                        r.cpu_per_gb() / t.cpu_per_gb(),
                        r.usage.rss_mib() / t.usage.rss_mib(),
                        opt(growth, 13, 3)
                    );
                }
                None => print!(" | {:>13} {:>13} {:>11} {:>13}", "-", "-", "-", "-"),
            }
        }
        println!();
    }
}

fn verdict(ok: bool) -> &'static str {
    if ok { "PASS" } else { "MISS" }
}

/// rbk against the zstd CLI on the same input in the same run, and a dump's restore against
/// the tar's: the figures of the issue "Restore a Neo4j dump as fast as a tar".
pub fn print_against_references(rows: &[Row]) {
    println!("rbk against the zstd CLI and the plain tar (same run):");
    let zstd = |step| find(rows, Series::Reference, step, "zstd");
    let rbk = |series, step| find(rows, series, step, "rbk");
    let line = |what: &str, value: String, target: &str, ok: Option<bool>| {
        let verdict = ok.map_or("    ", verdict);
        println!("  {verdict:<4} {what:<52} {value:>22}   {target}");
    };
    if let (Some(first), Some(z)) = (rbk(Series::Tar, Step::First), zstd(Step::Zstd)) {
        let ratio = first.store_mbps() / z.store_mbps();
        line(
            "first snapshot / zstd -3 -T2 (MB/s)",
            format!(
                "{:.0} / {:.0} = {ratio:.2}",
                first.store_mbps(),
                z.store_mbps()
            ),
            "target >= 0.90",
            Some(ratio >= 0.90),
        );
        line(
            "  CPU s/GB: rbk first snapshot, zstd -3 -T2",
            format!("{:.2}, {:.2}", first.cpu_per_gb(), z.cpu_per_gb()),
            "",
            None,
        );
    }
    if let (Some(restore), Some(z)) = (rbk(Series::Tar, Step::Restore), zstd(Step::Unzstd)) {
        line(
            "restore / zstd -d to a file (MB/s)",
            format!(
                "{:.0} / {:.0} = {:.2}",
                restore.store_mbps(),
                z.store_mbps(),
                restore.store_mbps() / z.store_mbps()
            ),
            "(reported)",
            None,
        );
    }
    if let (Some(tar), Some(dump)) = (
        rbk(Series::Tar, Step::Restore),
        rbk(Series::Dump, Step::Restore),
    ) {
        let ratio = dump.secs() / tar.secs();
        line(
            "dump restore time / tar restore time",
            format!("{:.2} s / {:.2} s = {ratio:.2}", dump.secs(), tar.secs()),
            "target <= 1.00",
            Some(ratio <= 1.0),
        );
    }
    if let Some(first) = rbk(Series::Dump, Step::First) {
        let store_gb = first.store_bytes as f64 / 1e9;
        line(
            "dump first snapshot: pause s per GB of store",
            format!(
                "{:.2} s/GB ({:.2} CPU s/GB)",
                first.secs() / store_gb,
                first.cpu_per_gb()
            ),
            "(reported)",
            None,
        );
    }
}

/// PASS/MISS of rbk against the targets (2-core machine). Returns the number missed.
pub fn print_targets(rows: &[Row]) -> usize {
    let mut missed = 0;
    let mut check = |what: String, value: String, target: &str, ok: bool| {
        println!(
            "  {:<4} {:<48} {:>16}   target {}",
            verdict(ok),
            what,
            value,
            target
        );
        missed += usize::from(!ok);
    };
    let throughput = [
        (Step::First, 350.0, ">= 350 MB/s"),
        (Step::Unchanged, 1000.0, ">= 1000 MB/s"),
        (Step::Restore, 1000.0, ">= 1000 MB/s"),
    ];
    for (step, min, target) in throughput {
        if let Some(r) = find(rows, Series::Tar, step, "rbk") {
            check(
                format!("tar  {}", step.name()),
                format!("{:.0} MB/s", r.mbps()),
                target,
                r.mbps() >= min,
            );
        }
    }
    for r in rows.iter().filter(|r| r.tool == "rbk") {
        check(
            format!("{:<4} {} peak RSS", r.series.name(), r.step.name()),
            format!("{:.1} MiB", r.usage.rss_mib()),
            "< 128 MiB",
            r.usage.rss_mib() < 128.0,
        );
    }
    for r in rows
        .iter()
        .filter(|r| r.tool == "rbk" && r.step != Step::Open)
    {
        check(
            format!(
                "{:<4} {} CPU per GB of store",
                r.series.name(),
                r.step.name()
            ),
            format!("{:.2} s/GB", r.cpu_per_gb()),
            "<= 5 CPU s/GB",
            r.cpu_per_gb() <= 5.0,
        );
    }
    for series in [Series::Tar, Series::Dump] {
        if let Some(r) = find(rows, series, Step::Day2, "rbk")
            && let Some(g) = r.growth_pct()
        {
            check(
                format!(
                    "{:<4} day-2 growth (repo on disk, % of input)",
                    series.name()
                ),
                format!("{g:.3} %"),
                "<= 2 %",
                g <= 2.0,
            );
        }
    }
    missed
}
