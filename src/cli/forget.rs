//! `rbk forget`: remove snapshots by id (their data goes at the next prune).

use anyhow::Result;
use clap::Args;

use super::global::GlobalArgs;
use super::output::{bytes, esc, json};
use crate::store::lock::LockKind;
use crate::store::prune::{PruneOptions, forget, prune};

/// Remove snapshots by id (a unique prefix is enough). Their data is
/// reclaimed by the next `rbk prune`, or now with --prune.
///
/// Examples:
///   rbk forget 3f9a2c1e
///   rbk forget 3f9a2c1e 77b01d4a --prune
#[derive(Args, Debug)]
// Verbatim: clap would otherwise join the example lines into one paragraph.
#[command(
    verbatim_doc_comment,
    about = "Remove snapshots by id; their data is reclaimed by the next prune"
)]
pub struct ForgetArgs {
    /// The snapshots to remove: ids, or unique prefixes of them (see `rbk snapshots`).
    #[arg(required = true, value_name = "SNAPSHOT")]
    pub ids: Vec<String>,
    /// Reclaim the space right away (as `rbk prune --reclaim-only`).
    #[arg(long)]
    pub prune: bool,
}

pub fn run(global: &GlobalArgs, args: &ForgetArgs) -> Result<u8> {
    let repo = global.open()?;
    let lock = repo.lock_kind(LockKind::Prune, "forget")?;
    // Every id resolves before any is removed: a typo removes nothing. By
    // name: a snapshot file that cannot be read must be removable (prune
    // stops at it), and is named as such.
    let mut ids = Vec::new();
    for wanted in &args.ids {
        let id = if wanted == "latest" {
            repo.find_snapshot(wanted)?.0
        } else {
            repo.resolve_snapshot(wanted)?
        };
        ids.push(id);
    }
    ids.sort();
    ids.dedup();
    let unreadable: Vec<Option<String>> = ids
        .iter()
        .map(|id| {
            repo.read_snapshot(&id.to_hex())
                .err()
                .map(|e| e.to_string())
        })
        .collect();
    let records = forget(&repo, &ids)?;
    let report = if args.prune {
        Some(prune(&repo, &lock, &PruneOptions::default())?)
    } else {
        None
    };
    drop(lock);
    if global.json {
        json(&serde_json::json!({
            "removed": ids.iter().map(|i| i.to_hex()).collect::<Vec<_>>(),
            "unreadable": ids.iter().zip(&unreadable).filter(|(_, u)| u.is_some()).map(|(i, _)| i.to_hex()).collect::<Vec<_>>(),
            "reclaim": report,
            "verifications_removed": records,
        }));
    } else if !global.quiet {
        for (id, unreadable) in ids.iter().zip(&unreadable) {
            match unreadable {
                Some(e) => println!(
                    "removed snapshot {} (it was unreadable: {})",
                    id.short(),
                    esc(e)
                ),
                None => println!("removed snapshot {}", id.short()),
            }
        }
        if records > 0 {
            println!("removed {records} verification record(s) of those snapshots");
        }
        if let Some(r) = report {
            println!(
                "{} pack(s) deleted, {} freed; {} pack(s) repacked",
                r.packs_deleted,
                bytes(r.bytes_freed),
                r.packs_repacked
            );
        } else {
            println!("run `rbk prune --reclaim-only` to reclaim their space");
        }
    }
    Ok(super::exit::OK)
}
