//! The planner: which snapshots a policy keeps and why, with restic's `forget` semantics.

use std::cmp::Ordering;

use serde::Serialize;
use time::format_description::well_known::Rfc3339;
use time::{Date, Duration, Month, OffsetDateTime};

use super::policy::{Count, Policy, Within, tag_label};

/// One snapshot as the planner sees it. `time` keeps the UTC offset the
/// snapshot was taken with: calendar buckets are computed in that offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub id: String,
    pub time: OffsetDateTime,
    /// Computed by the caller (host, stack, ...); rules apply per group.
    pub group: String,
    pub tags: Vec<String>,
}

/// The verdict on one snapshot. A kept snapshot has at least one reason,
/// a removed one has none.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    pub id: String,
    pub group: String,
    /// RFC 3339, in the offset the snapshot carries.
    pub time: String,
    pub keep: bool,
    pub reasons: Vec<String>,
}

/// The calendar unit a counted rule keeps one snapshot of.
#[derive(Debug, Clone, Copy)]
enum Bucket {
    /// Every snapshot is its own bucket.
    Last,
    Hourly,
    Daily,
    /// ISO 8601 week (Monday first, week-numbering year).
    Weekly,
    Monthly,
    Yearly,
}

const BUCKETS: [Bucket; 6] = [
    Bucket::Last,
    Bucket::Hourly,
    Bucket::Daily,
    Bucket::Weekly,
    Bucket::Monthly,
    Bucket::Yearly,
];

impl Bucket {
    /// The bucket `t` falls in, read in `t`'s own offset: a snapshot taken at
    /// 00:30 +02:00 belongs to that local day, not to the UTC day before.
    /// `position` is the snapshot's index in its group, newest first.
    fn of(self, t: OffsetDateTime, position: usize) -> i64 {
        let y = i64::from(t.year());
        let m = i64::from(u8::from(t.month()));
        let d = i64::from(t.day());
        let h = i64::from(t.hour());
        match self {
            Bucket::Last => i64::try_from(position).unwrap_or(i64::MAX),
            // Injective even for negative years: the lower digits stay below 10^k.
            Bucket::Hourly => ((y * 100 + m) * 100 + d) * 100 + h,
            Bucket::Daily => (y * 100 + m) * 100 + d,
            Bucket::Weekly => {
                let (iso_year, week, _) = t.to_iso_week_date();
                i64::from(iso_year) * 100 + i64::from(week)
            }
            Bucket::Monthly => y * 100 + m,
            Bucket::Yearly => y,
        }
    }
}

/// A counted rule while a group is walked.
struct Rule {
    name: &'static str,
    bucket: Bucket,
    /// Buckets it may still keep; `None` is unlimited.
    left: Option<u32>,
    /// The bucket of the snapshot this rule kept last.
    last_kept: Option<i64>,
}

/// Decides every candidate. The result has one decision per candidate,
/// ordered by group (ascending), then time (newest first), then id; it
/// depends only on the arguments (no clock is read), not on their order.
///
/// Within a group, snapshots are walked newest first. A counted rule keeps a
/// snapshot whose bucket differs from the one it kept last, while it has
/// count left; it also keeps the group's oldest snapshot if it still has
/// count left ("oldest daily": restic ≥ 0.16 does this so a young series
/// keeps its full history). keep-within is measured back from the group's
/// newest snapshot. An empty policy keeps everything (the CLI refuses it).
pub fn plan(policy: &Policy, candidates: &[Candidate]) -> Vec<Decision> {
    let mut sorted: Vec<&Candidate> = candidates.iter().collect();
    sorted.sort_by(|a, b| order(a, b));
    let mut out = Vec::with_capacity(sorted.len());
    for group in sorted.chunk_by(|a, b| a.group == b.group) {
        plan_group(policy, group, &mut out);
    }
    out
}

fn order(a: &Candidate, b: &Candidate) -> Ordering {
    a.group
        .cmp(&b.group)
        .then_with(|| b.time.cmp(&a.time))
        .then_with(|| a.id.cmp(&b.id))
        // Candidates equal so far (a duplicated id) still get one order
        // whatever the input order was, so the plan never depends on it.
        .then_with(|| a.time.offset().cmp(&b.time.offset()))
        .then_with(|| a.tags.cmp(&b.tags))
}

/// `group` is sorted newest first and not empty.
fn plan_group(policy: &Policy, group: &[&Candidate], out: &mut Vec<Decision>) {
    if policy.is_empty() {
        // Deleting everything is never what an empty policy means; restic
        // keeps all snapshots in that case too.
        out.extend(group.iter().map(|c| decide(c, vec!["empty policy".into()])));
        return;
    }
    let mut rules: Vec<Rule> = policy
        .counts()
        .into_iter()
        .zip(BUCKETS)
        .filter_map(|((name, count), bucket)| {
            let left = match count? {
                Count::N(0) => return None,
                Count::N(n) => Some(n),
                Count::Unlimited => None,
            };
            Some(Rule {
                name,
                bucket,
                left,
                last_kept: None,
            })
        })
        .collect();
    let within = policy.active_within().and_then(|w| {
        let newest = group.first()?.time;
        Some((w, within_cutoff(newest, w)))
    });
    let oldest = group.len().saturating_sub(1);

    for (position, c) in group.iter().enumerate() {
        let mut reasons = Vec::new();
        for rule in &mut rules {
            if rule.left == Some(0) {
                continue;
            }
            let bucket = rule.bucket.of(c.time, position);
            let same = rule.last_kept == Some(bucket);
            if !same || position == oldest {
                reasons.push(if same {
                    format!("oldest {}", rule.name)
                } else {
                    rule.name.to_string()
                });
                rule.last_kept = Some(bucket);
                if let Some(left) = &mut rule.left {
                    *left -= 1;
                }
            }
        }
        if let Some((w, cutoff)) = &within {
            // Strictly after the cutoff, as restic's `After`.
            if cutoff.is_none_or(|cutoff| c.time > cutoff) {
                reasons.push(format!("within {w}"));
            }
        }
        for set in &policy.tags {
            if set.iter().all(|t| c.tags.contains(t)) {
                reasons.push(tag_label(set));
            }
        }
        out.push(decide(c, reasons));
    }
}

fn decide(c: &Candidate, reasons: Vec<String>) -> Decision {
    Decision {
        id: c.id.clone(),
        group: c.group.clone(),
        time: c
            .time
            .format(&Rfc3339)
            .unwrap_or_else(|_| c.time.to_string()),
        keep: !reasons.is_empty(),
        reasons,
    }
}

/// The instant keep-within counts from: `newest` minus the duration, with
/// Go's `AddDate` for years, months and days (done in one step on the wall
/// clock in `newest`'s offset, an overflowing day rolling into the next
/// month: Mar 31 minus 1m is "Feb 31", i.e. Mar 2 or 3), then minus the
/// hours as elapsed time. `None` means before any representable time, so
/// every snapshot is within.
pub(crate) fn within_cutoff(newest: OffsetDateTime, w: Within) -> Option<OffsetDateTime> {
    let months0 = i64::from(u8::from(newest.month())) - 1 - i64::from(w.months);
    let year = i64::from(newest.year()) - i64::from(w.years) + months0.div_euclid(12);
    let month = Month::try_from(u8::try_from(months0.rem_euclid(12) + 1).ok()?).ok()?;
    let first = Date::from_calendar_date(i32::try_from(year).ok()?, month, 1).ok()?;
    let day_offset = i64::from(newest.day()) - 1 - i64::from(w.days);
    let date = first.checked_add(Duration::days(day_offset))?;
    date.with_time(newest.time())
        .assume_offset(newest.offset())
        .checked_sub(Duration::hours(i64::from(w.hours)))
}
