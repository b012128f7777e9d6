//! `rbk status`: is every group backed up recently, drilled and checked, and is anything wrong? Exit 7 when not.

use std::path::Path;

use anyhow::Result;
use clap::Args;

use super::global::GlobalArgs;
use super::output::{bytes, esc, json};
use crate::remote::url::Location;
use crate::status::{Limits, Status, assess, gather, words};
use crate::store::time::{display, now_unix};

/// Say whether last night's backup happened: per host and stack, the last snapshot, restore
/// drill and `check --read-data`, the repository's size and free space, stale locks.
///
/// One line per problem, then exit 7 if there is one: a group's newest snapshot older than
/// --max-age, a drill or check older than --max-drill-age / --max-check-age (judged only when
/// given), the last verification or check having found damage, a snapshot that cannot be read,
/// a stale lock. Reads without a lock, so a monitoring probe never waits behind a prune.
///
/// Example: rbk status --max-age 26h --max-check-age 8d
#[derive(Args, Debug)]
pub struct StatusArgs {
    /// The newest snapshot of each group (host and Compose project) must be younger than this.
    #[arg(long, value_name = "DURATION", default_value = "26h")]
    pub max_age: humantime::Duration,
    /// A restore drill (`rbk verify --restore-test`) of each stack must have passed within
    /// this long.
    #[arg(long, value_name = "DURATION")]
    pub max_drill_age: Option<humantime::Duration>,
    /// An `rbk check --read-data` must have run within this long.
    #[arg(long, value_name = "DURATION")]
    pub max_check_age: Option<humantime::Duration>,
}

fn secs(d: &humantime::Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

pub fn run(global: &GlobalArgs, args: &StatusArgs) -> Result<u8> {
    let location = global.repo_path()?;
    let repo = global.open()?;
    let evidence = gather(&repo)?;
    let limits = Limits {
        max_age: Some(secs(&args.max_age)),
        max_drill_age: args.max_drill_age.as_ref().map(secs),
        max_check_age: args.max_check_age.as_ref().map(secs),
    };
    let status = assess(&evidence, now_unix(), limits);
    // Free space where the repository is: a directory's filesystem; a bucket has none to tell.
    let free = match Location::parse(&location) {
        Ok(Location::Local(path)) => free_bytes(&path),
        _ => None,
    };
    let code = if status.problems.is_empty() {
        super::exit::OK
    } else {
        super::exit::NEEDS_ATTENTION
    };
    if global.json {
        let mut v = serde_json::to_value(&status)?;
        v["ok"] = serde_json::Value::Bool(status.problems.is_empty());
        v["location"] = serde_json::Value::String(repo.backend().location());
        v["free_bytes"] = serde_json::json!(free);
        v["max_age_s"] = serde_json::json!(limits.max_age);
        v["max_drill_age_s"] = serde_json::json!(limits.max_drill_age);
        v["max_check_age_s"] = serde_json::json!(limits.max_check_age);
        json(&v);
        return Ok(code);
    }
    print_status(global, &status, &repo.backend().location(), free);
    Ok(code)
}

fn print_status(global: &GlobalArgs, status: &Status, location: &str, free: Option<u64>) {
    if !global.quiet {
        println!(
            "repository  {}: {} in {} snapshot(s){}",
            esc(location),
            bytes(status.size_bytes),
            status.snapshots,
            free.map(|f| format!(", {} free", bytes(f)))
                .unwrap_or_default()
        );
        for g in &status.groups {
            let s = &g.last_snapshot;
            println!(
                "{}  last snapshot {} {} ({} ago): {} read, {} added{}",
                esc(&g.name()),
                s.short_id,
                display(&s.time),
                words(s.age_s),
                bytes(s.bytes_read),
                bytes(s.bytes_added),
                s.pause_ms
                    .map(|ms| format!(", writes paused {:.1} s", ms as f64 / 1000.0))
                    .unwrap_or_default()
            );
            for w in &s.warnings {
                println!("    warned: {}", esc(w));
            }
            match &g.last_drill {
                // Only a Compose stack can be drilled.
                _ if g.project.is_none() => {}
                Some(d) => println!(
                    "    last restore drill passed {} ({} ago)",
                    display(&d.time),
                    words(d.age_s)
                ),
                None => println!("    no restore drill has passed"),
            }
        }
        match &status.last_read_data_check {
            Some(c) => println!(
                "check       last --read-data {} ({} ago) on {}: {}, {} read",
                display(&c.time),
                words(c.age_s),
                esc(&c.host),
                if c.passed {
                    "no errors".to_string()
                } else {
                    format!("{} error(s)", c.errors)
                },
                bytes(c.bytes_read)
            ),
            None => println!("check       no `rbk check --read-data` recorded"),
        }
        let live = status.locks.iter().filter(|l| !l.stale).count();
        if live > 0 {
            println!("locks       {live} held by running commands");
        }
    }
    if status.problems.is_empty() {
        if !global.quiet {
            println!("ok");
        }
        return;
    }
    println!("{} problem(s):", status.problems.len());
    for p in &status.problems {
        println!("  {}", esc(p));
    }
}

/// Bytes available to this user on the filesystem holding `path`; `None` if it cannot be
/// asked (the path is gone, or not a local filesystem the kernel can stat).
fn free_bytes(path: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    let mut st = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `c` is a NUL-terminated path and `st` a buffer statvfs fills on success.
    if unsafe { libc::statvfs(c.as_ptr(), st.as_mut_ptr()) } != 0 {
        return None;
    }
    // SAFETY: statvfs returned 0, so it wrote the whole struct.
    let st = unsafe { st.assume_init() };
    // Both are u64 on Linux's 64-bit targets and narrower elsewhere: widen, never narrow.
    #[allow(clippy::useless_conversion)]
    Some(u64::from(st.f_bavail).saturating_mul(u64::from(st.f_frsize)))
}
