//! `rbk copy`: copy snapshots to another repository (the NAS's to an off-site bucket), skipping what it already holds.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::Args;

use super::global::GlobalArgs;
use super::keep::{KeepArgs, candidates};
use super::output::{bytes, esc, json};
use super::password::{PasswordSource, read_named_password};
use crate::retention::plan;
use crate::store::copy::{CopyMode, copy_snapshot, same_snapshot};
use crate::store::manifest::Snapshot;
use crate::store::{Id, Repository};

/// The label a copy carries: the id of the snapshot it was copied from.
pub const COPIED_FROM: &str = "copy.from";

/// Copy snapshots to another repository: all of them, those given, or those a --keep-*
/// policy keeps. Snapshots the destination already holds are skipped, and only the data
/// it lacks is sent, so a nightly copy sends what the night added. The destination keeps
/// its own password and keys. A destination made with `rbk init
/// --copy-chunker-params-from` receives blobs as they are; any other destination
/// receives each part chunked again (slower, same result). A copy that was stopped
/// resumes where it was on the next run.
///
/// Examples:
///   rbk copy --to s3://backups/rushdb --to-password-file /etc/rbk/offsite-pass
///   rbk copy --to /mnt/usb/rbk latest
///   rbk copy --to s3://backups/rushdb --keep-daily 7 --keep-weekly 4
#[derive(Args, Debug)]
#[command(
    verbatim_doc_comment,
    about = "Copy snapshots to another repository, sending only what it lacks"
)]
pub struct CopyArgs {
    /// The snapshots to copy: ids, unique prefixes, or `latest` (default: every snapshot,
    /// or those the --keep-* rules keep).
    #[arg(value_name = "SNAPSHOT")]
    pub ids: Vec<String>,
    /// The destination repository: a directory or s3://BUCKET/PREFIX (S3 settings as for --repo).
    #[arg(long, value_name = "REPO", env = "RBK_COPY_TO")]
    pub to: PathBuf,
    /// Read the destination's password from the first line of FILE.
    #[arg(long, value_name = "FILE", env = "RBK_COPY_PASSWORD_FILE")]
    pub to_password_file: Option<PathBuf>,
    /// Run CMD with `sh -c` for the destination's password.
    #[arg(long, value_name = "CMD", env = "RBK_COPY_PASSWORD_COMMAND")]
    pub to_password_command: Option<String>,
    #[command(flatten)]
    pub keep: KeepArgs,
    /// Say what would be copied; copy nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// One snapshot's fate.
struct Outcome {
    source: Id,
    time: String,
    /// The destination's snapshot: the one that already was, or the new copy.
    copy: Option<Id>,
    already: bool,
    added: u64,
    mode: Option<CopyMode>,
}

pub fn run(global: &GlobalArgs, args: &CopyArgs) -> Result<u8> {
    super::alloc::return_big_buffers();
    let policy = args.keep.policy();
    if !args.ids.is_empty() && !policy.is_empty() {
        return Err(crate::usage!(
            "give snapshots or --keep-* rules, not both: which of them to copy would be unclear"
        ));
    }
    let fields = args.keep.group_fields()?;
    let from = global.open()?;
    let _from_lock = from.read_lock("copy (source)")?;
    let to = open_destination(global, args)?;
    if to.config().repo_id == from.config().repo_id {
        return Err(crate::usage!(
            "the destination is the source repository itself ({}): copy to another one",
            esc(&to.backend().location())
        ));
    }
    let _to_lock = to.lock(false, "copy")?;

    let wanted = select(&from, args, &policy, &fields)?;
    // A destination snapshot that cannot be read is not one a copy can match: the copy
    // is made again (check reports the damaged one).
    let present: Vec<(Id, Snapshot)> = to
        .snapshots()?
        .into_iter()
        .filter_map(|(id, s)| s.ok().map(|s| (id, s)))
        .collect();
    let from_index = from.load_index()?;
    let mut to_index = Arc::new(to.load_index()?);
    let mut outcomes = Vec::with_capacity(wanted.len());
    for (id, snapshot) in wanted {
        let already = present
            .iter()
            .find(|(_, s)| same_snapshot(s, &snapshot))
            .map(|(id, _)| *id);
        let mut outcome = Outcome {
            source: id,
            time: snapshot.time.clone(),
            copy: already,
            already: already.is_some(),
            added: 0,
            mode: None,
        };
        if already.is_none() && !args.dry_run {
            let mut labels: Vec<(String, String)> = snapshot
                .labels
                .iter()
                .filter(|(k, _)| k != COPIED_FROM)
                .cloned()
                .collect();
            labels.push((COPIED_FROM.into(), id.to_hex()));
            let (copy, saved, mode) =
                copy_snapshot(&from, &from_index, &to, to_index.clone(), &snapshot, labels)
                    .with_context(|| format!("copying snapshot {}", id.short()))?;
            outcome.copy = Some(copy);
            outcome.added = saved.stats.bytes_added;
            outcome.mode = Some(mode);
            // What this copy sent is there for the next snapshot to deduplicate against.
            to_index = Arc::new(to.load_index()?);
        }
        report_one(global, args.dry_run, &outcome);
        outcomes.push(outcome);
    }
    report_all(global, args, &to, &outcomes);
    Ok(super::exit::OK)
}

fn open_destination(global: &GlobalArgs, args: &CopyArgs) -> Result<Repository> {
    let backend = crate::store::fault::from_env(global.backend_at(&args.to)?)?;
    let password = read_named_password(
        &PasswordSource {
            file: args.to_password_file.clone(),
            command: args.to_password_command.clone(),
        },
        "password for the destination repository",
        "--to-password-file or --to-password-command",
        false,
    )?;
    global
        .open_with(backend, password.as_bytes())
        .with_context(|| format!("the destination {}", esc(&args.to.to_string_lossy())))
}

/// The snapshots to copy, oldest first (a copy stopped midway has then sent the oldest).
fn select(
    from: &Repository,
    args: &CopyArgs,
    policy: &crate::retention::Policy,
    fields: &[super::keep::GroupField],
) -> Result<Vec<(Id, Snapshot)>> {
    let mut out: Vec<(Id, Snapshot)> = if !args.ids.is_empty() {
        // Every id resolves before anything is copied: a typo copies nothing.
        let mut found = Vec::new();
        for wanted in &args.ids {
            let (id, snapshot) = from.find_snapshot(wanted)?;
            if !found.iter().any(|(f, _): &(Id, Snapshot)| *f == id) {
                found.push((id, snapshot));
            }
        }
        found
    } else {
        let keep: Option<Vec<String>> = if policy.is_empty() {
            None
        } else {
            Some(
                plan(policy, &candidates(from, fields)?)
                    .into_iter()
                    .filter(|d| d.keep)
                    .map(|d| d.id)
                    .collect(),
            )
        };
        let mut all = Vec::new();
        for (id, snapshot) in from.snapshots()? {
            if keep.as_ref().is_some_and(|k| !k.contains(&id.to_hex())) {
                continue;
            }
            let snapshot = snapshot.with_context(|| {
                format!(
                    "snapshot {} of the source cannot be read, so nothing was copied; \
                     name the snapshots to copy, or `rbk forget {}`",
                    id.short(),
                    id.short()
                )
            })?;
            all.push((id, snapshot));
        }
        all
    };
    out.sort_by(|a, b| a.1.time.cmp(&b.1.time).then(a.0.cmp(&b.0)));
    Ok(out)
}

fn report_one(global: &GlobalArgs, dry_run: bool, o: &Outcome) {
    if global.json || global.quiet {
        return;
    }
    let short = o.source.short();
    match (o.already, o.copy, o.mode) {
        (true, Some(copy), _) => println!(
            "{short}  {}  already there as {}",
            esc(&o.time),
            copy.short()
        ),
        (_, Some(copy), Some(mode)) => println!(
            "{short}  {}  copied as {}, {} added{}",
            esc(&o.time),
            copy.short(),
            bytes(o.added),
            match mode {
                CopyMode::Blobs => "",
                CopyMode::Rechunked => " (chunked again: the destination has its own chunking)",
            }
        ),
        _ if dry_run => println!("{short}  {}  would be copied", esc(&o.time)),
        _ => {}
    }
}

fn report_all(global: &GlobalArgs, args: &CopyArgs, to: &Repository, outcomes: &[Outcome]) {
    let copied = outcomes.iter().filter(|o| !o.already).count();
    let added: u64 = outcomes.iter().map(|o| o.added).sum();
    super::monitor::record(super::monitor::Figure::AddedBytes, added as f64);
    if global.json {
        json(&serde_json::json!({
            "dry_run": args.dry_run,
            "destination": to.backend().location(),
            "copied": copied,
            "already_there": outcomes.len() - copied,
            "bytes_added": added,
            "snapshots": outcomes.iter().map(|o| serde_json::json!({
                "source": o.source.to_hex(),
                "time": o.time,
                "copy": o.copy.map(|c| c.to_hex()),
                "already_there": o.already,
                "bytes_added": o.added,
                "chunked_again": o.mode.map(|m| m == CopyMode::Rechunked),
            })).collect::<Vec<_>>(),
        }));
    } else if !global.quiet {
        let verb = if args.dry_run {
            "would be copied"
        } else {
            "copied"
        };
        println!(
            "{copied} snapshot(s) {verb}, {} already there; {} added to {}",
            outcomes.len() - copied,
            bytes(added),
            esc(&to.backend().location())
        );
    }
}
