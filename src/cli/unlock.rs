//! `rbk unlock`: remove stale locks (or, with --all, every lock).

use anyhow::Result;
use clap::Args;

use super::global::GlobalArgs;
use super::output::{esc, json};
use crate::store::format::FileKind;
use crate::store::lock::{hostname, list_locks};

/// Remove locks left by rbk processes that are gone.
///
/// Example: rbk unlock            # stale locks only; --all for every lock
#[derive(Args, Debug)]
pub struct UnlockArgs {
    /// Remove every lock, including ones that look alive.
    #[arg(long)]
    pub all: bool,
}

pub fn run(global: &GlobalArgs, args: &UnlockArgs) -> Result<u8> {
    let repo = global.open()?;
    let now = crate::store::time::now_unix();
    let host = hostname();
    let mut removed = Vec::new();
    let mut kept = Vec::new();
    for (name, info) in list_locks(repo.backend().as_ref(), repo.crypto())? {
        let stale = match &info {
            Ok(i) => args.all || i.is_stale(now, &host),
            // Unreadable lock files are damage, never a live holder.
            Err(_) => true,
        };
        let what = match &info {
            Ok(i) => i.describe(),
            Err(e) => e.to_string(),
        };
        if stale {
            repo.backend().remove(FileKind::Lock, &name)?;
            removed.push(what);
        } else {
            kept.push(what);
        }
    }
    if global.json {
        json(&serde_json::json!({"removed": removed, "kept": kept}));
    } else if !global.quiet {
        for r in &removed {
            println!("removed {}", esc(r));
        }
        for k in &kept {
            println!("kept (still alive) {}", esc(k));
        }
        println!("{} lock(s) removed", removed.len());
    }
    Ok(super::exit::OK)
}
