//! Check records: what each `rbk check` of the whole repository found, so that `rbk status` can tell when the bytes were last proven.
//!
//! A verification record (`verification.rs`) is about one snapshot; a check is about the
//! repository: its structure, and with `--read-data` every blob of every pack. Schedules
//! need to know when that last happened and whether it found damage, long after the
//! terminal it printed to is closed, and from any host that opens the repository: so the
//! outcome is kept here, sealed like every file, named by the BLAKE3 of its bytes.
//!
//! Records are evidence, never needed to restore: one that cannot be read is a warning of
//! `check`, and `prune` removes it. Prune also keeps only the newest `KEPT_PER_SCOPE` of each
//! scope, so a daily check does not grow the folder for ever.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::error::{Result, StoreError};
use super::format::{FileKind, open_file};
use super::id::Id;
use super::lock::hostname;
use super::repo::Repository;
pub use super::verification::Outcome;

pub const CHECK_RECORD_VERSION: u16 = 1;

/// The problems a record keeps, first found first: enough to say what broke, small enough
/// that a record of a ruined repository still fits its read bound.
pub const MAX_PROBLEMS: usize = 20;
/// The longest problem line kept, in bytes (longer ones are cut at a character boundary).
pub const MAX_PROBLEM_LEN: usize = 1000;
/// The records of one scope that prune keeps, newest first.
pub const KEPT_PER_SCOPE: usize = 10;

/// `checks/<id>`: one run of `rbk check`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct CheckRecord {
    /// When the check began: RFC 3339 with the local UTC offset, as snapshots' times.
    pub time: String,
    pub scope: Scope,
    /// `Failed` when the check found damage (an error); warnings do not fail it.
    pub outcome: Outcome,
    pub duration_ms: u64,
    /// The host the check ran on.
    pub host: String,
    /// The version of rbk that wrote the record.
    pub rbk_version: String,
    pub snapshots: u64,
    pub packs: u64,
    pub blobs: u64,
    /// Bytes of packs read (0 without `--read-data`).
    pub bytes_read: u64,
    pub errors: u64,
    pub warnings: u64,
    /// The first `MAX_PROBLEMS` errors, as `check` printed them (`file: detail`).
    pub problems: Vec<String>,
}

/// How much a check read.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scope {
    /// Every file listed and every metadata file read; no pack data read.
    Structure,
    /// `--read-data`: every pack read and every blob authenticated and hashed too.
    ReadData,
}

impl Scope {
    pub fn name(self) -> &'static str {
        match self {
            Scope::Structure => "structure",
            Scope::ReadData => "read-data",
        }
    }
}

impl CheckRecord {
    /// A record of a check made on this host by this rbk, which began at `time` and took
    /// `duration`; `errors` are the problems it found, as lines. It failed if there is one.
    pub fn new(
        time: String,
        scope: Scope,
        duration: Duration,
        counts: CheckCounts,
        errors: &[String],
    ) -> CheckRecord {
        let problems = errors
            .iter()
            .take(MAX_PROBLEMS)
            .map(|p| cut(p, MAX_PROBLEM_LEN))
            .collect();
        CheckRecord {
            time,
            scope,
            outcome: if errors.is_empty() {
                Outcome::Passed
            } else {
                Outcome::Failed
            },
            duration_ms: u64::try_from(duration.as_millis()).unwrap_or(u64::MAX),
            host: hostname(),
            rbk_version: env!("CARGO_PKG_VERSION").to_string(),
            snapshots: counts.snapshots,
            packs: counts.packs,
            blobs: counts.blobs,
            bytes_read: counts.bytes_read,
            errors: errors.len() as u64,
            warnings: counts.warnings,
            problems,
        }
    }

    pub fn passed(&self) -> bool {
        self.outcome == Outcome::Passed
    }

    /// Orders records: by time (an instant, whatever its offset); a time that does not
    /// parse sorts first.
    fn sort_key(&self) -> i128 {
        super::time::parse_rfc3339(&self.time).map_or(i128::MIN, |t| t.unix_timestamp_nanos())
    }
}

/// The figures of a check, as `CheckRecord::new` takes them.
#[derive(Debug, Clone, Copy, Default)]
pub struct CheckCounts {
    pub snapshots: u64,
    pub packs: u64,
    pub blobs: u64,
    pub bytes_read: u64,
    pub warnings: u64,
}

/// `s` cut to at most `max` bytes, at a character boundary.
fn cut(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end])
}

/// A record and its id (the name of its file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedCheck {
    pub id: Id,
    pub record: CheckRecord,
}

/// The latest check of each scope, and the latest that failed (what `rbk status` judges).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LatestChecks {
    pub by_scope: BTreeMap<Scope, RecordedCheck>,
    /// Records that could not be read, with why: `status` names them, as `check` does.
    pub unreadable: Vec<(Id, String)>,
}

impl LatestChecks {
    /// The newest record of any scope.
    pub fn newest(&self) -> Option<&RecordedCheck> {
        self.by_scope
            .values()
            .max_by_key(|r| (r.record.sort_key(), r.id))
    }
}

impl Repository {
    /// Writes a record (durably, under the BLAKE3 of its bytes) and returns its id.
    pub fn save_check_record(&self, record: &CheckRecord) -> Result<Id> {
        let (id, bytes) = self.seal(FileKind::CheckRecord, CHECK_RECORD_VERSION, record);
        let max = FileKind::CheckRecord.max_len();
        if bytes.len() as u64 > max {
            // Unreachable with the caps above; kept so that a writer never makes a file
            // readers refuse.
            return Err(StoreError::Invalid(format!(
                "a check record of {} bytes is more than readers accept ({max})",
                bytes.len()
            )));
        }
        self.backend()
            .write_new(FileKind::CheckRecord, &id.to_hex(), &bytes)?;
        Ok(id)
    }

    /// Reads one record, checking its bytes against its name, then opening and decoding it.
    pub fn read_check_record(&self, name: &str) -> Result<CheckRecord> {
        let bytes = self.read_verified(FileKind::CheckRecord, name)?;
        open_file(
            self.crypto(),
            FileKind::CheckRecord,
            name,
            CHECK_RECORD_VERSION,
            &bytes,
        )
    }

    /// Every record, each read or its error (one bad file hides no other), oldest first. A
    /// record removed between the listing and its read (by a prune) is left out.
    pub fn check_records(&self) -> Result<Vec<(Id, Result<CheckRecord>)>> {
        let mut out = Vec::new();
        for id in self
            .backend()
            .list(FileKind::CheckRecord)?
            .iter()
            .filter_map(|n| Id::from_hex(n))
        {
            match self.read_check_record(&id.to_hex()) {
                Err(e) if e.is_not_found() => {}
                r => out.push((id, r)),
            }
        }
        out.sort_by(|a, b| match (&a.1, &b.1) {
            (Ok(x), Ok(y)) => (x.sort_key(), a.0).cmp(&(y.sort_key(), b.0)),
            (Err(_), Ok(_)) => std::cmp::Ordering::Less,
            (Ok(_), Err(_)) => std::cmp::Ordering::Greater,
            (Err(_), Err(_)) => a.0.cmp(&b.0),
        });
        Ok(out)
    }

    /// The latest record of each scope, and the records that could not be read.
    pub fn latest_checks(&self) -> Result<LatestChecks> {
        let mut latest = LatestChecks::default();
        // Oldest first, so the last of each scope wins.
        for (id, record) in self.check_records()? {
            match record {
                Ok(record) => {
                    latest
                        .by_scope
                        .insert(record.scope, RecordedCheck { id, record });
                }
                Err(e) => latest.unreadable.push((id, e.to_string())),
            }
        }
        Ok(latest)
    }

    /// What prune removes: records that are damaged, and all but the newest
    /// `KEPT_PER_SCOPE` of each scope. Records of a newer format, or unreadable for a reason
    /// that says nothing of their bytes (an I/O error), are kept.
    pub fn surplus_check_records(&self) -> Result<Vec<Id>> {
        let mut surplus = Vec::new();
        let mut seen: BTreeMap<Scope, usize> = BTreeMap::new();
        // Newest first.
        for (id, record) in self.check_records()?.into_iter().rev() {
            match record {
                Ok(r) => {
                    let n = seen.entry(r.scope).or_default();
                    *n += 1;
                    if *n > KEPT_PER_SCOPE {
                        surplus.push(id);
                    }
                }
                Err(e) if e.is_damage() => surplus.push(id),
                Err(_) => {}
            }
        }
        Ok(surplus)
    }

    /// Removes records (prune, under its lock).
    pub fn remove_check_records(&self, ids: &[Id]) -> Result<()> {
        for id in ids {
            self.backend().remove(FileKind::CheckRecord, &id.to_hex())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::store::backend::LocalBackend;
    use crate::store::format::{encode_plain, seal_file};

    fn repo(dir: &std::path::Path) -> Repository {
        Repository::init_for_tests(Arc::new(LocalBackend::new(dir)))
    }

    fn record(time: &str, scope: Scope, errors: &[&str]) -> CheckRecord {
        let errors: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
        CheckRecord::new(
            time.into(),
            scope,
            Duration::from_millis(1500),
            CheckCounts {
                snapshots: 3,
                packs: 4,
                blobs: 5,
                bytes_read: 6,
                warnings: 0,
            },
            &errors,
        )
    }

    #[test]
    fn a_record_round_trips_under_the_hash_of_its_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let repo = repo(dir.path());
        let r = record(
            "2026-12-07T03:00:00+01:00",
            Scope::ReadData,
            &["data/ab/x: bad"],
        );
        assert!(!r.passed(), "an error fails the check");
        assert_eq!(r.errors, 1);
        let id = repo.save_check_record(&r).unwrap();
        let stored = std::fs::read(dir.path().join("checks").join(id.to_hex())).unwrap();
        assert_eq!(Id::of_file(&stored), id);
        assert_eq!(repo.read_check_record(&id.to_hex()).unwrap(), r);
    }

    /// The layout docs/FORMAT.md gives, byte for byte.
    #[test]
    fn the_plaintext_is_the_documented_layout() {
        let r = CheckRecord {
            time: "T".into(),
            scope: Scope::ReadData,
            outcome: Outcome::Failed,
            duration_ms: 300,
            host: "h".into(),
            rbk_version: "0.1.0".into(),
            snapshots: 1,
            packs: 2,
            blobs: 3,
            bytes_read: 4,
            errors: 1,
            warnings: 0,
            problems: vec!["p".into()],
        };
        let mut want = vec![1, 0]; // u16 LE version 1
        want.extend_from_slice(&[1, b'T']);
        want.push(1); // scope: ReadData = 1
        want.push(1); // outcome: Failed = 1
        want.extend_from_slice(&[0xAC, 0x02]); // 300 as a LEB128 varint
        want.extend_from_slice(&[1, b'h']);
        want.extend_from_slice(&[5, b'0', b'.', b'1', b'.', b'0']);
        want.extend_from_slice(&[1, 2, 3, 4, 1, 0]);
        want.extend_from_slice(&[1, 1, b'p']);
        assert_eq!(encode_plain(CHECK_RECORD_VERSION, &r), want);
    }

    #[test]
    fn problems_are_capped_so_a_ruined_repository_still_gets_a_record() {
        let dir = tempfile::tempdir().unwrap();
        let repo = repo(dir.path());
        let errors: Vec<String> = (0..10_000)
            .map(|i| format!("data/{i}: {}", "é".repeat(5000)))
            .collect();
        let r = CheckRecord::new(
            "2026-12-07T03:00:00Z".into(),
            Scope::ReadData,
            Duration::ZERO,
            CheckCounts::default(),
            &errors,
        );
        assert_eq!(r.errors, 10_000);
        assert_eq!(r.problems.len(), MAX_PROBLEMS);
        assert!(r.problems.iter().all(|p| p.len() <= MAX_PROBLEM_LEN + 3));
        let id = repo.save_check_record(&r).unwrap();
        assert_eq!(repo.read_check_record(&id.to_hex()).unwrap(), r);
    }

    #[test]
    fn the_latest_of_each_scope_wins_and_prune_keeps_ten_of_each() {
        let dir = tempfile::tempdir().unwrap();
        let repo = repo(dir.path());
        let mut structure = Vec::new();
        for day in 1..=12 {
            // The same instants written with another offset must still sort by instant.
            let t = format!("2026-11-{day:02}T02:00:00-01:00");
            structure.push(
                repo.save_check_record(&record(&t, Scope::Structure, &[]))
                    .unwrap(),
            );
        }
        let data_old = repo
            .save_check_record(&record("2026-11-01T00:00:00Z", Scope::ReadData, &["x"]))
            .unwrap();
        let data_new = repo
            .save_check_record(&record("2026-11-02T00:00:00Z", Scope::ReadData, &[]))
            .unwrap();
        let latest = repo.latest_checks().unwrap();
        assert_eq!(latest.by_scope[&Scope::Structure].id, structure[11]);
        assert_eq!(latest.by_scope[&Scope::ReadData].id, data_new);
        assert_eq!(latest.newest().unwrap().id, structure[11]);

        // A flipped byte: damage, shown as unreadable, and removed by prune.
        let path = dir.path().join("checks").join(data_old.to_hex());
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[30] ^= 1;
        std::fs::write(&path, bytes).unwrap();
        let latest = repo.latest_checks().unwrap();
        assert_eq!(latest.unreadable.len(), 1);
        assert_eq!(latest.by_scope[&Scope::ReadData].id, data_new);

        // A newer format: kept, whatever its age.
        let newer = seal_file(
            repo.crypto(),
            FileKind::CheckRecord,
            2,
            &record("2020-01-01T00:00:00Z", Scope::Structure, &[]),
        );
        let newer_id = Id::of_file(&newer);
        repo.backend()
            .write_new(FileKind::CheckRecord, &newer_id.to_hex(), &newer)
            .unwrap();

        let mut surplus = repo.surplus_check_records().unwrap();
        surplus.sort();
        let mut want = vec![structure[0], structure[1], data_old];
        want.sort();
        assert_eq!(surplus, want);
        repo.remove_check_records(&surplus).unwrap();
        assert!(repo.surplus_check_records().unwrap().is_empty());
        assert_eq!(repo.check_records().unwrap().len(), 12);
    }
}
