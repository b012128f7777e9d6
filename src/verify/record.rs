//! What a verification leaves in the repository, and which of a snapshot's records a listing shows.

use std::time::Duration;

use super::Verdict;
use crate::store::verification::{Check, Recorded, Verification};

/// The kind of record `rbk verify` writes: every byte read, each part's shape checked.
pub const KIND_READ: &str = "read";
/// The kind the restore drill writes: the snapshot loaded into a throwaway stack.
pub const KIND_RESTORE_TEST: &str = "restore-test";

/// `rbk verify`'s verdict as a record of kind `read`, one check per part (named by the
/// part; its detail says what it was checked as, then what was found). `started` is the
/// RFC 3339 time the verification began.
pub fn of_read(verdict: &Verdict, started: String, duration: Duration) -> Verification {
    let checks = verdict
        .parts
        .iter()
        .map(|p| Check {
            name: p.name.clone(),
            passed: p.ok,
            detail: format!("{}: {}", p.check, p.detail),
        })
        .collect();
    Verification::new(verdict.id, KIND_READ, started, duration, checks)
}

/// The one record a listing shows of a snapshot, from the latest of each kind: the
/// restore-test, as it proves more (it also reads every byte), unless a `read` newer than it
/// failed (something broke since, and a backup found bad must not look good); else the
/// `read`. Other kinds are shown only in `--json`.
pub fn headline<'a>(
    restore_test: Option<&'a Recorded>,
    read: Option<&'a Recorded>,
) -> Option<&'a Recorded> {
    let newer = |a: &Recorded, b: &Recorded| {
        let t = |r: &Recorded| crate::store::time::parse_rfc3339(&r.record.time);
        t(a) > t(b)
    };
    match (restore_test, read) {
        (Some(drill), Some(read)) if !read.record.passed() && newer(read, drill) => Some(read),
        (Some(drill), _) => Some(drill),
        (None, read) => read,
    }
}

/// How a listing words a record: `restore-tested 2026-12-06`, `verified 2026-12-06`,
/// `FAILED restore-test 2026-12-06`, `FAILED verify 2026-12-06`; another kind by its name.
/// The date is the one in the record's own offset.
pub fn describe(r: &Recorded) -> String {
    let record = &r.record;
    let date = crate::store::time::parse_rfc3339(&record.time)
        .map(|t| t.date().to_string())
        .unwrap_or_else(|| record.time.clone());
    let (passed, failed) = match record.kind.as_str() {
        KIND_READ => ("verified", "verify"),
        KIND_RESTORE_TEST => ("restore-tested", "restore-test"),
        other => (other, other),
    };
    if record.passed() {
        format!("{passed} {date}")
    } else {
        format!("FAILED {failed} {date}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Id;

    fn recorded(kind: &str, time: &str, passed: bool) -> Recorded {
        let record = Verification::new(
            Id([1; 32]),
            kind,
            time.into(),
            Duration::ZERO,
            vec![Check {
                name: "neo4j.dump".into(),
                passed,
                detail: String::new(),
            }],
        );
        Recorded {
            id: Id::of_file(time.as_bytes()),
            record,
        }
    }

    #[test]
    fn the_restore_test_is_shown_unless_a_newer_read_failed() {
        let drill = recorded(KIND_RESTORE_TEST, "2026-12-06T10:00:00Z", true);
        let older_pass = recorded(KIND_READ, "2026-12-05T10:00:00Z", true);
        let newer_pass = recorded(KIND_READ, "2026-12-07T10:00:00Z", true);
        let older_fail = recorded(KIND_READ, "2026-12-05T10:00:00Z", false);
        let newer_fail = recorded(KIND_READ, "2026-12-07T10:00:00Z", false);
        let shown = |d, r| headline(d, r).map(describe);
        assert_eq!(shown(None, None), None);
        assert_eq!(
            shown(Some(&drill), None).as_deref(),
            Some("restore-tested 2026-12-06")
        );
        assert_eq!(
            shown(None, Some(&older_fail)).as_deref(),
            Some("FAILED verify 2026-12-05")
        );
        for read in [&older_pass, &newer_pass, &older_fail] {
            assert_eq!(
                shown(Some(&drill), Some(read)).as_deref(),
                Some("restore-tested 2026-12-06")
            );
        }
        assert_eq!(
            shown(Some(&drill), Some(&newer_fail)).as_deref(),
            Some("FAILED verify 2026-12-07")
        );
        // A drill that failed stays failed after a read that passed: a read proves less.
        let failed_drill = recorded(KIND_RESTORE_TEST, "2026-12-06T10:00:00Z", false);
        assert_eq!(
            shown(Some(&failed_drill), Some(&newer_pass)).as_deref(),
            Some("FAILED restore-test 2026-12-06")
        );
    }

    #[test]
    fn the_date_is_the_records_own() {
        let late = recorded(KIND_READ, "2026-12-06T23:30:00-05:00", true);
        assert_eq!(describe(&late), "verified 2026-12-06");
        let other = recorded("smoke", "2026-12-06T10:00:00Z", true);
        assert_eq!(describe(&other), "smoke 2026-12-06");
    }
}
