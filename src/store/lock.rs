//! Repository locks: shared for snapshot, restore and check; prune beside them; exclusive for the rest.
//!
//! A lock is an encrypted file `locks/<random id>`. To take one, write it,
//! then list the others: a conflict removes ours and fails. Locks are
//! refreshed every few minutes by rewriting them under a new name, so a
//! lock whose holder died is recognised as stale by host and pid, or by age.
//!
//! Prune does not exclude snapshots: it deletes nothing that a lock holder
//! of its time might still use (see `prune` and docs/FORMAT.md). For that
//! to hold, a holder must notice when its own lock was lost (removed as
//! stale while it was suspended, say) before it commits: `LockGuard::verify`.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::backend::Backend;
use super::crypto::{Crypto, random_array};
use super::error::{Result, StoreError};
use super::format::{FileKind, open_file, seal_file};

pub const LOCK_VERSION: u16 = 2;
/// A lock not refreshed for this long is stale whatever host holds it.
pub const STALE_AFTER_SECS: i64 = 30 * 60;
const REFRESH_EVERY: Duration = Duration::from_secs(5 * 60);

/// What a lock excludes (a postcard varint: 0 shared, 1 exclusive, 2 prune).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub enum LockKind {
    /// Snapshot, restore, check: any number at once, beside one prune.
    Shared,
    /// Excludes every other lock.
    Exclusive,
    /// Prune and forget: beside shared locks, never beside another prune.
    Prune,
}

impl LockKind {
    pub fn conflicts_with(self, other: LockKind) -> bool {
        use LockKind::*;
        matches!(
            (self, other),
            (Exclusive, _) | (_, Exclusive) | (Prune, Prune)
        )
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct LockInfo {
    pub kind: LockKind,
    pub host: String,
    pub pid: u32,
    pub command: String,
    /// Seconds since the Unix epoch.
    pub created: i64,
    pub refreshed: i64,
    /// Random, fixed for the lock's life: two locks one process takes in
    /// the same second are still different holders.
    pub nonce: u64,
    /// Which kernel and pid namespace `pid` belongs to (boot id and pid
    /// namespace), so that a lock is judged dead by its pid only where that
    /// pid means the same process: two machines, or two containers, may
    /// share a host name.
    pub machine: String,
}

/// Who holds a lock, stable across refreshes (which rename the file).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LockHolder {
    pub host: String,
    pub pid: u32,
    pub created: i64,
    pub nonce: u64,
}

impl LockInfo {
    pub fn holder(&self) -> LockHolder {
        LockHolder {
            host: self.host.clone(),
            pid: self.pid,
            created: self.created,
            nonce: self.nonce,
        }
    }

    pub fn describe(&self) -> String {
        format!(
            "{} lock held by pid {} on {} ({}), taken at {}",
            match self.kind {
                LockKind::Exclusive => "an exclusive",
                LockKind::Shared => "a shared",
                LockKind::Prune => "a prune",
            },
            self.pid,
            self.host,
            self.command,
            crate::store::time::format_unix(self.created)
        )
    }

    /// Stale: its process is gone (same host, same machine and pid
    /// namespace), or it has not been refreshed for too long, or it claims a
    /// refresh so far in the future that no clock skew explains it (a lock
    /// dated ahead would otherwise never go stale).
    pub fn is_stale(&self, now: i64, this_host: &str) -> bool {
        let here = self.host == this_host && self.machine == machine_id();
        (here && !pid_alive(self.pid)) || dated_stale(self.refreshed, now)
    }
}

/// A lock last written at `written` (its refresh time, or for a file that
/// cannot be read its modification time) is stale at `now` when the two are
/// further apart than `STALE_AFTER_SECS`, either way.
pub fn dated_stale(written: i64, now: i64) -> bool {
    now.saturating_sub(written) > STALE_AFTER_SECS || written.saturating_sub(now) > STALE_AFTER_SECS
}

/// Whether an unreadable lock file may still belong to a live holder: only
/// while it is fresh by its modification time (holders rewrite theirs every
/// few minutes), so junk planted in `locks/` does not count forever.
pub fn unreadable_may_be_held(backend: &dyn Backend, name: &str, now: i64) -> bool {
    backend
        .modified(FileKind::Lock, name)
        .is_ok_and(|m| !dated_stale(m, now))
}

/// This process's kernel boot id and pid namespace: where a pid is meaningful.
pub fn machine_id() -> String {
    static ID: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    ID.get_or_init(|| {
        let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
            .map(|s| s.trim().to_string())
            .unwrap_or_default();
        let ns = std::fs::read_link("/proc/self/ns/pid")
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        format!("{boot}/{ns}")
    })
    .clone()
}

fn pid_alive(pid: u32) -> bool {
    let Ok(pid) = i32::try_from(pid) else {
        return false;
    };
    // Signal 0 checks for existence; EPERM means it exists but is not ours.
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

pub fn hostname() -> String {
    let mut buf = [0u8; 256];
    let r = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if r != 0 {
        return "unknown".into();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

/// Every lock file and what it says; damaged ones are returned as errors.
///
/// A holder refreshing its lock writes a new file, then removes the old: a
/// listing taken before the new one and read after the old one went would
/// miss that holder. So when a listed file has vanished, list again and read
/// what is new, until a listing holds no file that vanished (or attempts run
/// out, when the last listing's files are returned).
pub fn list_locks(
    backend: &dyn Backend,
    crypto: &Crypto,
) -> Result<Vec<(String, Result<LockInfo>)>> {
    let mut seen: std::collections::BTreeMap<String, Result<LockInfo>> = Default::default();
    for _ in 0..LIST_ATTEMPTS {
        let mut vanished = false;
        for name in backend.list(FileKind::Lock)? {
            if seen.contains_key(&name) {
                continue;
            }
            let info = match backend.read(FileKind::Lock, &name) {
                Ok(bytes) => open_file(crypto, FileKind::Lock, &name, LOCK_VERSION, &bytes),
                Err(e) if e.is_not_found() => {
                    vanished = true;
                    continue;
                }
                Err(e) => Err(e),
            };
            seen.insert(name, info);
        }
        if !vanished {
            break;
        }
    }
    Ok(seen.into_iter().collect())
}

const LIST_ATTEMPTS: usize = 20;

/// What the holder and its refresher share: the current file name and when
/// it was last written.
#[derive(Debug)]
pub struct HeldLock {
    name: Mutex<String>,
    refreshed: AtomicI64,
    holder: LockHolder,
    /// Set for good once the lock may have been judged stale by others (its
    /// file vanished, or a refresh came too late): refreshing again would
    /// only hide that from `verify`.
    lost: std::sync::atomic::AtomicBool,
}

impl HeldLock {
    pub fn holder(&self) -> &LockHolder {
        &self.holder
    }

    pub fn name(&self) -> String {
        self.name.lock().map(|n| n.clone()).unwrap_or_default()
    }

    /// Fails if this lock may no longer protect its holder: its file is
    /// gone (someone judged it stale and removed it), or it has not been
    /// refreshed for so long that others may judge it stale now. A writer
    /// calls this before it commits, so that a process that slept through
    /// a prune cannot commit a snapshot referring to data prune deleted.
    pub fn verify(&self, backend: &dyn Backend) -> Result<()> {
        if self.lost.load(Ordering::SeqCst) {
            return Err(StoreError::LockLost(
                "it went unrefreshed long enough for others to judge it stale, or was removed"
                    .into(),
            ));
        }
        let age = super::time::now_unix().saturating_sub(self.refreshed.load(Ordering::SeqCst));
        // A minute's margin for clocks that disagree between hosts.
        if age > STALE_AFTER_SECS - 60 {
            return Err(StoreError::LockLost(format!(
                "it was last refreshed {age} s ago (the process was suspended, or the repository was unreachable)"
            )));
        }
        let name = self.name();
        if !backend.exists(FileKind::Lock, &name)? {
            return Err(StoreError::LockLost(format!(
                "{} was removed by another process",
                FileKind::Lock.path_of(&name)
            )));
        }
        Ok(())
    }
}

/// A held lock; released (its file removed) on drop.
pub struct LockGuard {
    backend: Arc<dyn Backend>,
    held: Arc<HeldLock>,
    stop: Option<mpsc::Sender<()>>,
    refresher: Option<JoinHandle<()>>,
}

impl LockGuard {
    pub fn acquire(
        backend: Arc<dyn Backend>,
        crypto: &Crypto,
        kind: LockKind,
        command: &str,
    ) -> Result<LockGuard> {
        let now = super::time::now_unix();
        let host = hostname();
        let info = LockInfo {
            kind,
            host: host.clone(),
            pid: std::process::id(),
            command: command.to_string(),
            created: now,
            refreshed: now,
            nonce: u64::from_le_bytes(random_array::<8>()),
            machine: machine_id(),
        };
        let name = write_lock(backend.as_ref(), crypto, &info)?;
        let conflict = (|| -> Result<Option<String>> {
            for (other, found) in list_locks(backend.as_ref(), crypto)? {
                if other == name {
                    continue;
                }
                // An unreadable lock is not a reason to refuse work: `check`
                // reports it, and `rbk unlock` removes it.
                let Ok(found) = found else { continue };
                if kind.conflicts_with(found.kind) && !found.is_stale(now, &host) {
                    return Ok(Some(found.describe()));
                }
            }
            Ok(None)
        })();
        match conflict {
            Ok(None) => {}
            Ok(Some(holder)) => {
                let _ = backend.remove(FileKind::Lock, &name);
                return Err(StoreError::Locked { holder });
            }
            Err(e) => {
                let _ = backend.remove(FileKind::Lock, &name);
                return Err(e);
            }
        }
        let held = Arc::new(HeldLock {
            name: Mutex::new(name),
            refreshed: AtomicI64::new(now),
            holder: info.holder(),
            lost: std::sync::atomic::AtomicBool::new(false),
        });
        let (stop, stopped) = mpsc::channel::<()>();
        let refresher = {
            let backend = backend.clone();
            let crypto = crypto.clone();
            let held = held.clone();
            let mut info = info;
            std::thread::spawn(move || {
                loop {
                    match stopped.recv_timeout(REFRESH_EVERY) {
                        Err(RecvTimeoutError::Timeout) => {}
                        _ => return,
                    }
                    let now = super::time::now_unix();
                    // Too late (the process was suspended, the NAS away), or
                    // removed by someone who judged it stale: lost for good.
                    let late = now.saturating_sub(held.refreshed.load(Ordering::SeqCst))
                        > STALE_AFTER_SECS - 60;
                    let gone = !backend.exists(FileKind::Lock, &held.name()).unwrap_or(true);
                    if late || gone {
                        held.lost.store(true, Ordering::SeqCst);
                        return;
                    }
                    info.refreshed = now;
                    // Write the new lock before removing the old, so there is
                    // never a moment without one.
                    if let Ok(new) = write_lock(backend.as_ref(), &crypto, &info)
                        && let Ok(mut current) = held.name.lock()
                    {
                        let old = std::mem::replace(&mut *current, new);
                        held.refreshed.store(info.refreshed, Ordering::SeqCst);
                        let _ = backend.remove(FileKind::Lock, &old);
                    }
                }
            })
        };
        Ok(LockGuard {
            backend,
            held,
            stop: Some(stop),
            refresher: Some(refresher),
        })
    }
}

impl LockGuard {
    pub fn held(&self) -> &Arc<HeldLock> {
        &self.held
    }

    /// The lock file's current name (it changes at every refresh).
    pub fn name(&self) -> String {
        self.held.name()
    }
}

fn write_lock(backend: &dyn Backend, crypto: &Crypto, info: &LockInfo) -> Result<String> {
    let name = hex::encode(random_array::<16>());
    backend.write_new(
        FileKind::Lock,
        &name,
        &seal_file(crypto, FileKind::Lock, LOCK_VERSION, info),
    )?;
    Ok(name)
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.refresher.take() {
            let _ = t.join();
        }
        let _ = self.backend.remove(FileKind::Lock, &self.held.name());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(host: &str, machine: &str, pid: u32, refreshed: i64) -> LockInfo {
        LockInfo {
            kind: LockKind::Shared,
            host: host.into(),
            pid,
            command: "test".into(),
            created: refreshed,
            refreshed,
            nonce: 1,
            machine: machine.into(),
        }
    }

    /// A pid means a process only on its own machine and pid namespace: a live lock from
    /// another machine that happens to share our host name is not judged dead by our pids.
    #[test]
    fn staleness_by_pid_needs_the_same_machine() {
        let now = 1_000_000;
        let host = hostname();
        let dead = u32::MAX - 7; // no such pid
        assert!(info(&host, &machine_id(), dead, now).is_stale(now, &host));
        assert!(!info(&host, "other-boot/pid:[1]", dead, now).is_stale(now, &host));
        assert!(!info(&host, &machine_id(), std::process::id(), now).is_stale(now, &host));
        // Age alone makes any lock stale, wherever it came from.
        let old = now - STALE_AFTER_SECS - 1;
        assert!(info("elsewhere", "other", 1, old).is_stale(now, &host));
        assert!(!info("elsewhere", "other", 1, now).is_stale(now, &host));
        // A refresh time from a hostile or broken clock does not overflow.
        assert!(info("elsewhere", "other", 1, i64::MIN).is_stale(i64::MAX, &host));
        assert!(info("elsewhere", "other", 1, i64::MAX).is_stale(i64::MIN, &host));
        // Dated ahead: a skewed clock within the limit is honoured, beyond it is stale.
        assert!(!info("elsewhere", "other", 1, now + 600).is_stale(now, &host));
        assert!(info("elsewhere", "other", 1, now + STALE_AFTER_SECS + 1).is_stale(now, &host));
    }

    #[test]
    fn kinds_conflict_as_documented() {
        use LockKind::*;
        assert!(!Shared.conflicts_with(Shared));
        assert!(!Shared.conflicts_with(Prune) && !Prune.conflicts_with(Shared));
        assert!(Prune.conflicts_with(Prune));
        for k in [Shared, Prune, Exclusive] {
            assert!(Exclusive.conflicts_with(k) && k.conflicts_with(Exclusive));
        }
    }
}
