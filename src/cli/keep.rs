//! Retention rules as flags (`--keep-*`, `--group-by`), shared by `prune` and `copy`, and the snapshots they judge.

use anyhow::{Context, Result};
use clap::Args;

use crate::retention::{Candidate, Count, Policy, Within, parse_tag_set};
use crate::stack::names::label;
use crate::store::Repository;

/// Rules are restic's: each keeps the newest snapshot of each of its last N calendar
/// buckets (in the time zone each snapshot was taken in), rules are ORed, and snapshots
/// are grouped by host and Compose project.
#[derive(Args, Debug)]
pub struct KeepArgs {
    /// Keep the N newest snapshots.
    #[arg(long, value_name = "N")]
    pub keep_last: Option<Count>,
    /// Keep the newest snapshot of each of the last N hours that have one.
    #[arg(long, value_name = "N")]
    pub keep_hourly: Option<Count>,
    /// Keep the newest snapshot of each of the last N days that have one.
    #[arg(long, value_name = "N")]
    pub keep_daily: Option<Count>,
    /// Keep the newest snapshot of each of the last N ISO weeks that have one.
    #[arg(long, value_name = "N")]
    pub keep_weekly: Option<Count>,
    /// Keep the newest snapshot of each of the last N months that have one.
    #[arg(long, value_name = "N")]
    pub keep_monthly: Option<Count>,
    /// Keep the newest snapshot of each of the last N years that have one.
    #[arg(long, value_name = "N")]
    pub keep_yearly: Option<Count>,
    /// Keep every snapshot within this long of the newest (e.g. 7d, 1y2m, 36h).
    #[arg(long, value_name = "DURATION")]
    pub keep_within: Option<Within>,
    /// Keep snapshots that carry all of these tags (comma-separated; repeatable, ORed).
    #[arg(long, value_name = "TAGS", value_parser = parse_tags)]
    pub keep_tag: Vec<Vec<String>>,
    /// Group snapshots by these fields before applying the rules: any of
    /// host, project, tags, joined by commas; or `none` for one group.
    #[arg(long, value_name = "FIELDS", default_value = "host,project")]
    pub group_by: String,
}

/// Also how `rbk snapshot --tag` splits its value, so the two always agree.
pub fn parse_tags(s: &str) -> std::result::Result<Vec<String>, String> {
    parse_tag_set(s).map_err(|e| e.to_string())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupField {
    Host,
    Project,
    Tags,
}

fn parse_group_by(s: &str) -> Result<Vec<GroupField>> {
    if s == "none" || s.is_empty() {
        return Ok(Vec::new());
    }
    s.split(',')
        .map(|f| match f.trim() {
            "host" => Ok(GroupField::Host),
            "project" => Ok(GroupField::Project),
            "tags" => Ok(GroupField::Tags),
            other => Err(crate::usage!(
                "--group-by: {other:?} is not host, project, tags or none"
            )),
        })
        .collect()
}

impl KeepArgs {
    pub fn policy(&self) -> Policy {
        Policy {
            last: self.keep_last,
            hourly: self.keep_hourly,
            daily: self.keep_daily,
            weekly: self.keep_weekly,
            monthly: self.keep_monthly,
            yearly: self.keep_yearly,
            within: self.keep_within,
            tags: self.keep_tag.clone(),
        }
    }

    pub fn group_fields(&self) -> Result<Vec<GroupField>> {
        parse_group_by(&self.group_by)
    }
}

/// Every snapshot as the planner sees it. A damaged snapshot stops prune:
/// it cannot be planned, and what it needs cannot be known.
pub fn candidates(repo: &Repository, fields: &[GroupField]) -> Result<Vec<Candidate>> {
    let mut out = Vec::new();
    for (id, snapshot) in repo.snapshots()? {
        let s = snapshot.with_context(|| {
            format!(
                "snapshot {} cannot be read, so prune changes nothing: `rbk forget {}` removes it",
                id.short(),
                id.short()
            )
        })?;
        let time = crate::store::time::parse_rfc3339(&s.time).with_context(|| {
            format!(
                "snapshot {} has an unreadable time {:?}",
                id.short(),
                s.time
            )
        })?;
        let project = s
            .labels
            .iter()
            .find(|(k, _)| k == label::PROJECT)
            .map(|(_, v)| v.as_str())
            // Snapshots of files and streams belong to no stack.
            .unwrap_or("(none)");
        let group: Vec<String> = fields
            .iter()
            .map(|f| match f {
                GroupField::Host => format!("host={}", s.host),
                GroupField::Project => format!("project={project}"),
                GroupField::Tags => {
                    let mut t = s.tags.clone();
                    t.sort();
                    format!("tags={}", t.join(","))
                }
            })
            .collect();
        out.push(Candidate {
            id: id.to_hex(),
            time,
            group: group.join(" "),
            tags: s.tags,
        });
    }
    Ok(out)
}
