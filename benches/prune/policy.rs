//! A second, independent reading of the bench's retention policy, to check the plan `rbk prune` printed.
//!
//! Restic's rules as `rbk prune --help` states them: walking a group newest first, each counted
//! rule keeps a snapshot whose calendar bucket (in the snapshot's own offset) differs from the
//! one it kept last, while it has count left, and keeps the oldest snapshot if count is left
//! at the end. The bench has one group (one host, no project).

use std::collections::BTreeSet;

use time::OffsetDateTime;

/// `--keep-daily 7 --keep-weekly 4 --keep-monthly 12`, the policy the issue measures.
pub const ARGS: [&str; 6] = [
    "--keep-daily",
    "7",
    "--keep-weekly",
    "4",
    "--keep-monthly",
    "12",
];

type BucketOf = fn(&OffsetDateTime) -> i64;

/// The ids the policy keeps among `(id, time)` snapshots.
pub fn kept(snapshots: &[(String, OffsetDateTime)]) -> BTreeSet<String> {
    let mut newest_first: Vec<&(String, OffsetDateTime)> = snapshots.iter().collect();
    newest_first.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let rules: [(u32, BucketOf); 3] = [
        (7, |t| {
            i64::from(t.year()) * 10_000 + i64::from(u8::from(t.month())) * 100 + i64::from(t.day())
        }),
        (4, |t| {
            let (y, w, _) = t.to_iso_week_date();
            i64::from(y) * 100 + i64::from(w)
        }),
        (12, |t| {
            i64::from(t.year()) * 100 + i64::from(u8::from(t.month()))
        }),
    ];
    let mut out = BTreeSet::new();
    for (count, bucket_of) in rules {
        let mut left = count;
        let mut last = None;
        for (i, (id, t)) in newest_first.iter().enumerate() {
            if left == 0 {
                break;
            }
            let b = bucket_of(t);
            if last != Some(b) || i + 1 == newest_first.len() {
                out.insert(id.clone());
                last = Some(b);
                left -= 1;
            }
        }
    }
    out
}
