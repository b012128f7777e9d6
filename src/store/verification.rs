//! Verification records: small sealed files saying that a snapshot was checked, how, when, and what was found.
//!
//! The store does not know what a check is: the caller names the record's kind (rbk writes
//! `read` for `rbk verify` and `restore-test` for its restore drill) and its checks, each a
//! name, a verdict and a line of figures. Records are evidence for people and schedules
//! (`rbk snapshots` shows the latest of each kind); no restore ever needs one. So a record
//! that cannot be read is reported as a warning, never as damage to backups, and `prune`
//! removes it, as it removes the records of snapshots that are gone.
//!
//! A record is named by the BLAKE3 of its stored bytes, as a snapshot file is: written once
//! (temporary file, fsync, rename), never changed, verifiable without the key.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::error::{Result, StoreError};
use super::format::{FileKind, open_file};
use super::id::Id;
use super::lock::hostname;
use super::repo::Repository;

pub const VERIFICATION_VERSION: u16 = 1;

/// The longest kind a writer accepts: a short word, shown in tables.
pub const MAX_KIND_LEN: usize = 32;

/// `verifications/<id>`: one verification of one snapshot.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Verification {
    /// The snapshot verified (its id, the name of its file).
    pub snapshot: Id,
    /// When the verification began: RFC 3339 with the local UTC offset, as snapshots' times.
    pub time: String,
    /// What kind of verification it was, chosen by the caller: `read`, `restore-test`.
    pub kind: String,
    pub outcome: Outcome,
    pub duration_ms: u64,
    /// The host the verification ran on.
    pub host: String,
    /// The version of rbk that wrote the record.
    pub rbk_version: String,
    pub checks: Vec<Check>,
}

/// What the verification found. One that could not run (the repository unreadable, no
/// Docker) found nothing, and is not recorded at all.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub enum Outcome {
    /// Every check passed.
    Passed,
    /// A check found the backup bad.
    Failed,
}

/// One thing that was checked.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Check {
    pub name: String,
    pub passed: bool,
    /// Figures when it passed (`2 table(s) with data, 501 row(s)`), what is wrong when not.
    pub detail: String,
}

impl Verification {
    /// A record of a verification made on this host by this rbk, which began at `time` and
    /// took `duration`. It passed if every check did.
    pub fn new(
        snapshot: Id,
        kind: impl Into<String>,
        time: String,
        duration: Duration,
        checks: Vec<Check>,
    ) -> Verification {
        let outcome = if checks.iter().all(|c| c.passed) {
            Outcome::Passed
        } else {
            Outcome::Failed
        };
        Verification {
            snapshot,
            time,
            kind: kind.into(),
            outcome,
            duration_ms: u64::try_from(duration.as_millis()).unwrap_or(u64::MAX),
            host: hostname(),
            rbk_version: env!("CARGO_PKG_VERSION").to_string(),
            checks,
        }
    }

    pub fn passed(&self) -> bool {
        self.outcome == Outcome::Passed
    }

    /// Orders records of one snapshot and kind: by time (an instant, whatever its offset),
    /// then by id, so that two records of one instant still have a latest. A time that does
    /// not parse sorts first.
    fn sort_key(&self) -> i128 {
        super::time::parse_rfc3339(&self.time).map_or(i128::MIN, |t| t.unix_timestamp_nanos())
    }
}

/// A record and its id (the name of its file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    pub id: Id,
    pub record: Verification,
}

/// For each snapshot, the latest record of each kind, by kind.
pub type Latest = BTreeMap<Id, BTreeMap<String, Recorded>>;

/// What `prune` and `forget` may remove: records whose snapshot is gone, and records that
/// cannot be read (damaged, truncated, planted). Records of a format version this rbk does
/// not know, or that could not be read for another reason (an I/O error), are kept: they may
/// be good.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stale {
    pub orphaned: Vec<Id>,
    pub damaged: Vec<Id>,
}

/// Each record's snapshot, or that it is damaged: what deciding `Stale` needs, and no more
/// (a record's checks are not kept in memory).
#[derive(Debug, Clone, Default)]
pub struct Subjects {
    about: Vec<(Id, Id)>,
    damaged: Vec<Id>,
}

impl Subjects {
    /// The records to remove once `exists` says which snapshots exist. The snapshots must
    /// be listed after the records were: a record is written after its snapshot, so a
    /// snapshot committed meanwhile has no record in this set to lose.
    pub fn stale(&self, exists: impl Fn(&Id) -> bool) -> Stale {
        Stale {
            orphaned: self
                .about
                .iter()
                .filter(|(_, snapshot)| !exists(snapshot))
                .map(|(record, _)| *record)
                .collect(),
            damaged: self.damaged.clone(),
        }
    }
}

impl Repository {
    /// Writes a record (durably, under the BLAKE3 of its bytes) and returns its id. A kind
    /// that is empty, longer than `MAX_KIND_LEN` or not lower-case letters, digits and `-`,
    /// or a record larger than readers accept, is refused: a record must fit on a line of
    /// `rbk snapshots` and be readable once written.
    pub fn save_verification(&self, record: &Verification) -> Result<Id> {
        let kind_ok = !record.kind.is_empty()
            && record.kind.len() <= MAX_KIND_LEN
            && record
                .kind
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !kind_ok {
            return Err(StoreError::Invalid(format!(
                "verification kind {:?}: give 1 to {MAX_KIND_LEN} lower-case letters, digits or '-'",
                record.kind
            )));
        }
        let (id, bytes) = self.seal(FileKind::Verification, VERIFICATION_VERSION, record);
        let max = FileKind::Verification.max_len();
        if bytes.len() as u64 > max {
            return Err(StoreError::Invalid(format!(
                "a verification record of {} bytes is more than readers accept ({max}); give fewer or shorter checks",
                bytes.len()
            )));
        }
        self.backend()
            .write_new(FileKind::Verification, &id.to_hex(), &bytes)?;
        Ok(id)
    }

    /// Reads one record, checking its bytes against its name, then opening and decoding it.
    pub fn read_verification(&self, name: &str) -> Result<Verification> {
        let bytes = self.read_verified(FileKind::Verification, name)?;
        open_file(
            self.crypto(),
            FileKind::Verification,
            name,
            VERIFICATION_VERSION,
            &bytes,
        )
    }

    /// The names under `verifications/` that are record ids (nothing else is a record: the
    /// same rule as `snapshots()`).
    fn verification_ids(&self) -> Result<Vec<Id>> {
        Ok(self
            .backend()
            .list(FileKind::Verification)?
            .iter()
            .filter_map(|n| Id::from_hex(n))
            .collect())
    }

    /// Every record, oldest first; one that cannot be read comes back as its error, so that
    /// one bad file hides no other. A record removed between the listing and its read (by a
    /// prune) is left out.
    pub fn verifications(&self) -> Result<Vec<(Id, Result<Verification>)>> {
        let mut out = Vec::new();
        for id in self.verification_ids()? {
            match self.read_verification(&id.to_hex()) {
                Err(e) if e.is_not_found() => {}
                r => out.push((id, r)),
            }
        }
        out.sort_by(|a, b| match (&a.1, &b.1) {
            (Ok(x), Ok(y)) => (x.sort_key(), a.0).cmp(&(y.sort_key(), b.0)),
            _ => std::cmp::Ordering::Equal,
        });
        Ok(out)
    }

    /// For each snapshot, the latest record of each kind: what a listing shows. Records that
    /// cannot be read are left out (`check` reports them). One record is held at a time
    /// beside the latest ones.
    pub fn latest_verifications(&self) -> Result<Latest> {
        let mut latest = Latest::new();
        for id in self.verification_ids()? {
            let Ok(record) = self.read_verification(&id.to_hex()) else {
                continue;
            };
            let by_kind = latest.entry(record.snapshot).or_default();
            let newer = match by_kind.get(&record.kind) {
                Some(have) => (record.sort_key(), id) > (have.record.sort_key(), have.id),
                None => true,
            };
            if newer {
                by_kind.insert(record.kind.clone(), Recorded { id, record });
            }
        }
        Ok(latest)
    }

    /// Every record's snapshot, read for `Subjects::stale`. Call it before listing the
    /// snapshots (see there).
    pub fn verification_subjects(&self) -> Result<Subjects> {
        let mut subjects = Subjects::default();
        for id in self.verification_ids()? {
            match self.read_verification(&id.to_hex()) {
                Ok(record) => subjects.about.push((id, record.snapshot)),
                Err(e) if e.is_damage() => subjects.damaged.push(id),
                // Gone already, of a newer format, or unreadable for a reason that says
                // nothing about its bytes: kept.
                Err(_) => {}
            }
        }
        Ok(subjects)
    }

    /// Removes records (prune and forget, under their prune lock).
    pub fn remove_verifications(&self, ids: &[Id]) -> Result<()> {
        for id in ids {
            self.backend()
                .remove(FileKind::Verification, &id.to_hex())?;
        }
        Ok(())
    }

    /// Removes the records of snapshots that no longer exist (after `forget` removed some),
    /// and returns how many. The records are read before the snapshots are listed, as
    /// `Subjects::stale` needs. Damaged records are left to prune, which reports them.
    pub fn remove_orphaned_verifications(&self) -> Result<usize> {
        let subjects = self.verification_subjects()?;
        let listed: HashSet<Id> = self
            .backend()
            .list(FileKind::Snapshot)?
            .iter()
            .filter_map(|n| Id::from_hex(n))
            .collect();
        let stale = subjects.stale(|s| listed.contains(s));
        self.remove_verifications(&stale.orphaned)?;
        Ok(stale.orphaned.len())
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

    fn record(snapshot: u8, kind: &str, time: &str, passed: bool) -> Verification {
        Verification::new(
            Id([snapshot; 32]),
            kind,
            time.to_string(),
            Duration::from_millis(1234),
            vec![
                Check {
                    name: "metadata.sql".into(),
                    passed: true,
                    detail: "pg-dump: 2 table(s) with data, 501 row(s)".into(),
                },
                Check {
                    name: "neo4j.dump".into(),
                    passed,
                    detail: "neo4j-dump: 10 entries".into(),
                },
            ],
        )
    }

    #[test]
    fn a_record_round_trips_under_the_hash_of_its_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let repo = repo(dir.path());
        let r = record(1, "read", "2026-12-06T13:02:48.067195890+01:00", false);
        assert_eq!(r.outcome, Outcome::Failed, "a check failed");
        assert_eq!(r.duration_ms, 1234);
        assert_eq!(r.rbk_version, env!("CARGO_PKG_VERSION"));
        let id = repo.save_verification(&r).unwrap();
        let stored = std::fs::read(dir.path().join("verifications").join(id.to_hex())).unwrap();
        assert_eq!(Id::of_file(&stored), id);
        assert_eq!(repo.read_verification(&id.to_hex()).unwrap(), r);
        let all = repo.verifications().unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].0, id);
        assert_eq!(all[0].1.as_ref().unwrap(), &r);
    }

    /// The layout docs/FORMAT.md gives, byte for byte: a second reader needs nothing else.
    #[test]
    fn the_plaintext_is_the_documented_layout() {
        let r = Verification {
            snapshot: Id([7; 32]),
            time: "T".into(),
            kind: "read".into(),
            outcome: Outcome::Failed,
            duration_ms: 300,
            host: "h".into(),
            rbk_version: "0.1.0".into(),
            checks: vec![Check {
                name: "a".into(),
                passed: false,
                detail: "bad".into(),
            }],
        };
        let mut want = vec![1, 0]; // u16 LE version 1
        want.extend_from_slice(&[7; 32]); // snapshot: [u8; 32], raw
        want.extend_from_slice(&[1, b'T']); // time: varint length, UTF-8
        want.extend_from_slice(&[4, b'r', b'e', b'a', b'd']);
        want.push(1); // outcome: variant index, Failed = 1
        want.extend_from_slice(&[0xAC, 0x02]); // duration_ms 300: LEB128 varint
        want.extend_from_slice(&[1, b'h']);
        want.extend_from_slice(&[5, b'0', b'.', b'1', b'.', b'0']);
        want.push(1); // one check
        want.extend_from_slice(&[1, b'a', 0, 3, b'b', b'a', b'd']);
        assert_eq!(encode_plain(VERIFICATION_VERSION, &r), want);
    }

    #[test]
    fn a_newer_version_is_refused_and_kept_by_prune() {
        let dir = tempfile::tempdir().unwrap();
        let repo = repo(dir.path());
        let r = record(1, "read", "2026-12-06T13:02:48Z", true);
        let sealed = seal_file(repo.crypto(), FileKind::Verification, 2, &r);
        let name = Id::of_file(&sealed).to_hex();
        repo.backend()
            .write_new(FileKind::Verification, &name, &sealed)
            .unwrap();
        match repo.read_verification(&name) {
            Err(StoreError::UnsupportedVersion {
                found: 2,
                supported: 1,
                ..
            }) => {}
            other => panic!("not refused as a newer version: {other:?}"),
        }
        // Not damage: an rbk that cannot read it must not remove it.
        let stale = repo.verification_subjects().unwrap().stale(|_| false);
        assert_eq!(stale, Stale::default());
    }

    #[test]
    fn an_oversized_record_is_refused_unread_and_never_written() {
        let dir = tempfile::tempdir().unwrap();
        let repo = repo(dir.path());
        let name = "ab".repeat(32);
        let at = dir.path().join("verifications").join(&name);
        let file = std::fs::File::create(&at).unwrap();
        // Sparse: 8 GiB that read whole would exhaust memory.
        file.set_len(8 << 30).unwrap();
        match repo.read_verification(&name) {
            Err(e @ StoreError::Damaged { .. }) => {
                assert!(e.to_string().contains("more than any such file"), "{e}")
            }
            other => panic!("not refused as too large: {other:?}"),
        }
        let stale = repo.verification_subjects().unwrap().stale(|_| true);
        assert_eq!(stale.damaged, vec![Id::from_hex(&name).unwrap()]);

        let mut big = record(1, "read", "2026-12-06T13:02:48Z", true);
        big.checks[0].detail = "x".repeat(2 << 20);
        match repo.save_verification(&big) {
            Err(StoreError::Invalid(m)) => assert!(m.contains("more than readers accept"), "{m}"),
            other => panic!("an oversized record was not refused: {other:?}"),
        }
        for kind in ["", "Read", "restore test", &"x".repeat(MAX_KIND_LEN + 1)] {
            let r = record(1, kind, "2026-12-06T13:02:48Z", true);
            assert!(
                matches!(repo.save_verification(&r), Err(StoreError::Invalid(_))),
                "kind {kind:?}"
            );
        }
        assert_eq!(repo.verification_ids().unwrap().len(), 1, "only the plant");
    }

    #[test]
    fn a_flipped_byte_is_damage_that_hides_no_other_record() {
        let dir = tempfile::tempdir().unwrap();
        let repo = repo(dir.path());
        let good = repo
            .save_verification(&record(1, "read", "2026-12-06T13:02:48Z", true))
            .unwrap();
        let bad = repo
            .save_verification(&record(2, "read", "2026-12-07T13:02:48Z", true))
            .unwrap();
        let path = dir.path().join("verifications").join(bad.to_hex());
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[40] ^= 0xFF;
        std::fs::write(&path, bytes).unwrap();
        let all = repo.verifications().unwrap();
        assert_eq!(all.len(), 2);
        let damaged = all.iter().find(|(id, _)| *id == bad).unwrap();
        assert!(damaged.1.as_ref().is_err_and(StoreError::is_damage));
        let latest = repo.latest_verifications().unwrap();
        assert_eq!(latest.len(), 1);
        assert_eq!(latest[&Id([1; 32])]["read"].id, good);
        let stale = repo.verification_subjects().unwrap().stale(|_| true);
        assert_eq!(stale.damaged, vec![bad]);
        assert!(stale.orphaned.is_empty());
    }

    #[test]
    fn the_latest_of_each_kind_wins_whatever_the_offset() {
        let dir = tempfile::tempdir().unwrap();
        let repo = repo(dir.path());
        // 12:00 UTC, then 12:30 UTC written with another offset, then an older drill.
        repo.save_verification(&record(1, "read", "2026-12-06T12:00:00Z", true))
            .unwrap();
        let newer = repo
            .save_verification(&record(1, "read", "2026-12-06T11:30:00-01:00", false))
            .unwrap();
        let drill = repo
            .save_verification(&record(1, "restore-test", "2026-12-01T12:00:00Z", true))
            .unwrap();
        let other = repo
            .save_verification(&record(2, "read", "2026-12-06T12:00:00Z", true))
            .unwrap();
        let latest = repo.latest_verifications().unwrap();
        let one = &latest[&Id([1; 32])];
        assert_eq!(one.len(), 2);
        assert_eq!(one["read"].id, newer);
        assert!(!one["read"].record.passed());
        assert_eq!(one["restore-test"].id, drill);
        assert_eq!(latest[&Id([2; 32])]["read"].id, other);

        // Snapshot 2 is gone: its record is orphaned, and only it is removed.
        let exists = |s: &Id| *s == Id([1; 32]);
        let stale = repo.verification_subjects().unwrap().stale(exists);
        assert_eq!(stale.orphaned, vec![other]);
        repo.remove_verifications(&stale.orphaned).unwrap();
        assert_eq!(repo.verifications().unwrap().len(), 3);
    }
}
