//! `rbk prune`: apply a retention policy, then reclaim the space forgotten snapshots used.

use std::collections::HashSet;

use anyhow::{Context, Result};
use clap::Args;

use super::global::GlobalArgs;
use super::keep::{KeepArgs, candidates};
use super::output::{bytes, esc, esc_join, json};
use crate::retention::{Decision, Policy, plan};
use crate::store::Id;
use crate::store::lock::LockKind;
use crate::store::prune::{PruneOptions, PruneReport, forget, prune};

/// Forget snapshots a retention policy does not keep, then reclaim space.
///
/// Rules are restic's: each keeps the newest snapshot of each of its last N
/// calendar buckets (in the time zone each snapshot was taken in), rules are
/// ORed, and snapshots are grouped by host and Compose project.
///
/// Examples:
///   rbk prune --keep-daily 7 --keep-weekly 4 --keep-monthly 12 --dry-run
///   rbk prune --keep-daily 7
///   rbk prune --keep-within 30d --keep-tag release
///   rbk prune --reclaim-only          # after `rbk forget`: reclaim space, forget nothing
#[derive(Args, Debug)]
// Verbatim: clap would otherwise join the example lines into one paragraph.
#[command(
    verbatim_doc_comment,
    about = "Forget snapshots a retention policy does not keep, then reclaim space"
)]
pub struct PruneArgs {
    #[command(flatten)]
    pub keep: KeepArgs,
    /// Print the plan and what would be reclaimed; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Unused space to tolerate in the repository after pruning (e.g. 5%, 0.05, or
    /// `unlimited` to never repack): as restic, packs with the most unused space are
    /// repacked first until the rest is within this share.
    #[arg(long, value_name = "SHARE", default_value = "5%", value_parser = parse_share)]
    pub max_unused: f64,
    /// Go ahead even when the policy would remove every snapshot of a group
    /// (otherwise refused: a typo in a rule must not delete every backup).
    #[arg(long)]
    pub allow_remove_all: bool,
    /// Forget nothing; only reclaim space (after `rbk forget`).
    #[arg(long, conflicts_with_all = ["keep_last", "keep_hourly", "keep_daily", "keep_weekly", "keep_monthly", "keep_yearly", "keep_within", "keep_tag"])]
    pub reclaim_only: bool,
}

fn parse_share(s: &str) -> std::result::Result<f64, String> {
    if s == "unlimited" {
        return Ok(1.0);
    }
    let (num, scale) = match s.strip_suffix('%') {
        Some(n) => (n, 100.0),
        None => (s, 1.0),
    };
    match num.trim().parse::<f64>() {
        Ok(v) if (0.0..=1.0).contains(&(v / scale)) => Ok(v / scale),
        _ => Err(format!("{s:?} is not a share between 0% and 100%")),
    }
}

pub fn run(global: &GlobalArgs, args: &PruneArgs) -> Result<u8> {
    let policy = args.keep.policy();
    if policy.is_empty() && !args.reclaim_only {
        return Err(crate::usage!(
            "no --keep-* rule given: that policy would forget every snapshot. Give at least one rule \
             (e.g. --keep-daily 7), or --reclaim-only to reclaim space without forgetting anything"
        ));
    }
    let fields = args.keep.group_fields()?;
    let repo = global.open()?;
    let lock = repo.lock_kind(LockKind::Prune, "prune")?;
    let decisions = if args.reclaim_only {
        Vec::new()
    } else {
        plan(&policy, &candidates(&repo, &fields)?)
    };
    if !args.allow_remove_all {
        refuse_emptied_groups(&policy, &decisions)?;
    }
    let doomed: Vec<Id> = decisions
        .iter()
        .filter(|d| !d.keep)
        .map(|d| Id::from_hex(&d.id).context("a snapshot id that is not hex"))
        .collect::<Result<_>>()?;
    let options = PruneOptions {
        max_unused: args.max_unused,
        dry_run: args.dry_run,
        assume_forgotten: doomed.iter().copied().collect::<HashSet<Id>>(),
    };
    let records_forgotten = if args.dry_run {
        0
    } else {
        forget(&repo, &doomed)?
    };
    let mut report = prune(&repo, &lock, &options)?;
    // A dry run counts the forgotten snapshots' records in its plan; a real run removed
    // them with the snapshots.
    report.verifications_removed += records_forgotten;
    drop(lock);
    print_outcome(
        global,
        &policy,
        args.reclaim_only,
        &decisions,
        doomed.len(),
        &report,
    );
    Ok(super::exit::OK)
}

/// Refuses a plan that keeps no snapshot of some group: almost always a rule
/// that matches nothing (`--keep-tag` with a tag no snapshot has, a host
/// renamed), and the price of going ahead is every backup of that group.
fn refuse_emptied_groups(policy: &Policy, decisions: &[Decision]) -> Result<()> {
    let mut groups: Vec<(&str, usize, usize)> = Vec::new();
    for d in decisions {
        match groups.iter_mut().find(|(g, _, _)| *g == d.group) {
            Some((_, total, kept)) => {
                *total += 1;
                *kept += usize::from(d.keep);
            }
            None => groups.push((&d.group, 1, usize::from(d.keep))),
        }
    }
    let emptied: Vec<String> = groups
        .iter()
        .filter(|(_, _, kept)| *kept == 0)
        .map(|(g, total, _)| {
            let name = if g.is_empty() { "all snapshots" } else { g };
            format!("{name} ({total} snapshot(s))")
        })
        .collect();
    if emptied.is_empty() {
        return Ok(());
    }
    Err(crate::usage!(
        "the policy \"{}\" would remove every snapshot of {}; nothing was removed. \
         Check the rules (does any snapshot carry that tag, that host?), see the plan with \
         --dry-run --allow-remove-all, or pass --allow-remove-all if that is what you want",
        policy.describe(),
        emptied.join(", ")
    ))
}

fn print_outcome(
    global: &GlobalArgs,
    policy: &Policy,
    reclaim_only: bool,
    decisions: &[Decision],
    forgotten: usize,
    report: &PruneReport,
) {
    if !report.dry_run {
        super::monitor::record(
            super::monitor::Figure::FreedBytes,
            report.bytes_freed as f64,
        );
    }
    if global.json {
        json(&serde_json::json!({
            "dry_run": report.dry_run,
            "policy": if reclaim_only { serde_json::Value::Null } else { serde_json::json!(policy.describe()) },
            "plan": decisions,
            "snapshots_removed": forgotten,
            "reclaim": report,
        }));
        return;
    }
    if global.quiet {
        return;
    }
    let would = if report.dry_run { "would be " } else { "" };
    if !reclaim_only {
        println!("policy: {}", esc(&policy.describe()));
        let mut group = None;
        for d in decisions {
            if group != Some(&d.group) {
                group = Some(&d.group);
                println!(
                    "{}:",
                    if d.group.is_empty() {
                        "all snapshots".into()
                    } else {
                        esc(&d.group)
                    }
                );
            }
            let short = d.id.get(..8).unwrap_or(&d.id);
            if d.keep {
                println!(
                    "  keep    {short}  {}  {}",
                    d.time,
                    esc_join(&d.reasons, ", ")
                );
            } else {
                println!("  remove  {short}  {}", d.time);
            }
        }
        println!(
            "{} snapshot(s) {would}kept, {forgotten} {would}removed",
            decisions.len() - forgotten
        );
    }
    // A dry run writes no pack, so it cannot say how many the copies would fill.
    let into = if report.dry_run {
        String::new()
    } else {
        format!(" into {} new", report.packs_written)
    };
    println!(
        "space: {} pack(s) {would}deleted ({}), {} of them {would}repacked first ({} copied{into}); {} net {would}freed; {} unused left within --max-unused",
        report.packs_deleted,
        bytes(report.bytes_freed),
        report.packs_repacked,
        bytes(report.bytes_repacked),
        bytes(report.bytes_freed.saturating_sub(report.bytes_written)),
        bytes(report.unused_bytes_kept),
    );
    if report.packs_waiting > 0 {
        println!(
            "{} pack(s) out of the index wait for processes that were running to finish; the next prune deletes them:",
            report.packs_waiting
        );
        for w in &report.waiting_for {
            println!("  {}", esc(w));
        }
    }
    if report.verifications_removed > 0 {
        println!(
            "{} verification record(s) {would}removed: of snapshots that are gone, or unreadable",
            report.verifications_removed
        );
    }
    if report.check_records_removed > 0 {
        println!(
            "{} check record(s) {would}removed: beyond the newest {} of their scope, or unreadable",
            report.check_records_removed,
            crate::store::check_record::KEPT_PER_SCOPE
        );
    }
    if report.packs_rescued > 0 {
        println!(
            "{} pack(s) kept: snapshots taken during the prune use them",
            report.packs_rescued
        );
    }
    println!("done in {:.1} s", report.duration_ms as f64 / 1000.0);
}
