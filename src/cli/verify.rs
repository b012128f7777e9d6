//! `rbk verify`: read one snapshot as a restore would and check each part's shape.

use anyhow::Result;
use clap::Args;

use super::global::GlobalArgs;
use super::output::{bytes, esc, json};
use crate::store::time::now_rfc3339;
use crate::verify::{record, verify};

/// Read a snapshot as a restore would and check that each store's file is whole.
///
/// Every byte of every part is read and checked against the size and hash recorded at
/// backup, and each part's shape is checked on the way: a Neo4j dump's tar walks to its end
/// and matches the counts its header records; a pg_dump ends with the line pg_dump writes
/// last and closes every table's data; a SQLite file holds every page its header counts.
/// The verdict is recorded in the repository (`rbk snapshots` shows it); nothing else is
/// written. Exit 0 when every part passed, 3 when one did not.
///
/// Example: rbk verify latest
#[derive(Args, Debug)]
pub struct VerifyArgs {
    /// The snapshot: an id, a unique prefix of one, or `latest`.
    #[arg(default_value = "latest")]
    pub snapshot: String,
    /// Restore the snapshot into a throwaway copy of the stack (its recorded images, fresh
    /// volumes, a private network), start it, and check it: Neo4j's consistency check, the
    /// graph and table counts recorded at snapshot time, RushDB's /health. The running
    /// stack is not touched; the drill is removed afterwards whatever happens.
    #[arg(long)]
    pub restore_test: bool,
    /// With --restore-test: the Compose project (default: found by the `rushdb` service label).
    #[arg(long, requires = "restore_test")]
    pub project: Option<String>,
    /// With --restore-test: how long each service may take to be ready.
    #[arg(long, default_value = "10m", requires = "restore_test")]
    pub timeout: humantime::Duration,
}

pub fn run(global: &GlobalArgs, args: &VerifyArgs) -> Result<u8> {
    if args.restore_test {
        return super::drill::run(global, args);
    }
    let repo = global.open()?;
    let lock = repo.read_lock("verify")?;
    global.warn_if_read_unlocked(&repo);
    let started = std::time::Instant::now();
    let started_at = now_rfc3339();
    let verdict = verify(&repo, &args.snapshot)?;
    let ok = verdict.ok();
    // Ran to its end, passed or found the backup bad: that is what is recorded. A record
    // that cannot be written is a warning; the exit code stays the verdict's.
    let record = record::of_read(&verdict, started_at, started.elapsed());
    let recorded = if lock.is_none() {
        eprintln!(
            "warning: the verification was not recorded in the repository: it was read without a lock (--no-lock, or a read-only filesystem), and rbk writes nothing without one"
        );
        None
    } else {
        match repo.save_verification(&record) {
            Ok(id) => Some(id),
            Err(e) => {
                eprintln!(
                    "warning: the verification was not recorded in the repository: {}",
                    esc(&e.to_string())
                );
                None
            }
        }
    };
    drop(lock);
    super::monitor::record(
        super::monitor::Figure::ReadBytes,
        verdict.parts.iter().map(|p| p.size).sum::<u64>() as f64,
    );
    if global.json {
        json(&serde_json::json!({
            "record": recorded.map(|id| id.to_hex()),
            "snapshot": verdict.id.to_hex(),
            "time": verdict.snapshot.time,
            "ok": ok,
            "parts": verdict.parts.iter().map(|p| serde_json::json!({
                "name": p.name,
                "codec": p.codec,
                "size": p.size,
                "check": p.check,
                "ok": p.ok,
                "detail": p.detail,
            })).collect::<Vec<_>>(),
            "duration_ms": record.duration_ms,
        }));
    } else {
        if !global.quiet {
            println!(
                "snapshot {} of {} ({})",
                verdict.id.short(),
                esc(&verdict.snapshot.time),
                esc(&verdict.snapshot.host)
            );
        }
        let width = verdict
            .parts
            .iter()
            .map(|p| esc(&p.name).chars().count())
            .max()
            .unwrap_or(0);
        for p in &verdict.parts {
            if p.ok && global.quiet {
                continue;
            }
            println!(
                "  {}  {:<width$}  {:>10}  {}: {}",
                if p.ok { "ok  " } else { "FAIL" },
                esc(&p.name),
                bytes(p.size),
                p.check,
                esc(&p.detail),
            );
        }
        let failed = verdict.parts.iter().filter(|p| !p.ok).count();
        if failed == 0 {
            if !global.quiet {
                println!("verified {} part(s): every one whole", verdict.parts.len());
            }
        } else {
            println!(
                "{failed} of {} part(s) FAILED: this snapshot would not restore as it was taken",
                verdict.parts.len()
            );
        }
        if let Some(id) = recorded
            && !global.quiet
        {
            println!("recorded as verification {}", id.short());
        }
    }
    Ok(if ok {
        super::exit::OK
    } else {
        super::exit::DAMAGED
    })
}
