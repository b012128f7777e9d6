//! Fault injection for tests: a backend wrapper that fails, or kills the process, at the Nth operation.
//!
//! Enabled only by the `RBK_FAULT` environment variable, read once when a
//! repository is opened by the command line:
//! `RBK_FAULT=<action>@<operation>:<n>[,<action>@<operation>:<n>...]`, where
//! action is `kill` (SIGKILL this process just before the operation: a
//! crash at that exact point), `eio` or `enospc` (the operation fails with
//! that error and does nothing), `short` (a read returns only the first half
//! of the file, as a flaky network mount might), `truncate` (a write
//! stores only the first half of the file and reports success, as a lying
//! disk might) or `syncdir` (a write happens, then fails with EIO as a
//! failed fsync of the directory after the rename would: the file exists
//! although the write reported an error); operation is `write`, `remove`, `read`, `list`, or
//! `mutation` (a write or a remove). `n` counts from 1. The crash and fault
//! tests use it; nothing else does. `rbk copy` applies it to the destination only.

use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::backend::{Backend, TempFile};
use super::error::{Result, StoreError};
use super::format::FileKind;

pub const ENV: &str = "RBK_FAULT";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Kill,
    Errno(i32),
    Short,
    Truncate,
    SyncDir,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Write,
    Remove,
    Read,
    List,
    Mutation,
}

impl Op {
    fn covers(self, actual: Op) -> bool {
        self == actual || (self == Op::Mutation && matches!(actual, Op::Write | Op::Remove))
    }
}

#[derive(Debug)]
struct Rule {
    action: Action,
    op: Op,
    at: u64,
    seen: AtomicU64,
}

pub struct FaultBackend {
    inner: Arc<dyn Backend>,
    rules: Vec<Rule>,
}

/// Wraps `inner` when `RBK_FAULT` is set; a malformed value is an error, not ignored.
pub fn from_env(inner: Arc<dyn Backend>) -> Result<Arc<dyn Backend>> {
    match std::env::var(ENV) {
        Ok(spec) if !spec.is_empty() => Ok(Arc::new(FaultBackend::parse(inner, &spec)?)),
        _ => Ok(inner),
    }
}

impl FaultBackend {
    pub fn parse(inner: Arc<dyn Backend>, spec: &str) -> Result<FaultBackend> {
        let bad = || {
            StoreError::Invalid(format!(
                "{ENV}={spec:?}: expected ACTION@OPERATION:N, e.g. kill@mutation:3"
            ))
        };
        let mut rules = Vec::new();
        for item in spec.split(',') {
            let (action, rest) = item.split_once('@').ok_or_else(bad)?;
            let (op, n) = rest.split_once(':').ok_or_else(bad)?;
            let action = match action {
                "kill" => Action::Kill,
                "eio" => Action::Errno(libc::EIO),
                "enospc" => Action::Errno(libc::ENOSPC),
                "short" => Action::Short,
                "truncate" => Action::Truncate,
                "syncdir" => Action::SyncDir,
                _ => return Err(bad()),
            };
            let op = match op {
                "write" => Op::Write,
                "remove" => Op::Remove,
                "read" => Op::Read,
                "list" => Op::List,
                "mutation" => Op::Mutation,
                _ => return Err(bad()),
            };
            let at: u64 = n.parse().ok().filter(|&n| n > 0).ok_or_else(bad)?;
            rules.push(Rule {
                action,
                op,
                at,
                seen: AtomicU64::new(0),
            });
        }
        Ok(FaultBackend { inner, rules })
    }

    /// Applies the rules due at this operation: kills, or fails, or returns
    /// the damage (`Short`, `Truncate`) for the caller to apply.
    fn before(&self, op: Op, what: &str) -> Result<Option<Action>> {
        for rule in &self.rules {
            if !rule.op.covers(op) {
                continue;
            }
            let n = rule.seen.fetch_add(1, Ordering::SeqCst) + 1;
            if n != rule.at {
                continue;
            }
            match rule.action {
                Action::Kill => {
                    // SAFETY: kill(2) on our own pid has no memory-safety preconditions.
                    unsafe {
                        libc::kill(libc::getpid(), libc::SIGKILL);
                    }
                }
                Action::Errno(errno) => {
                    return Err(StoreError::Io {
                        op: "injected fault in",
                        path: PathBuf::from(what),
                        error: io::Error::from_raw_os_error(errno),
                    });
                }
                damage => return Ok(Some(damage)),
            }
        }
        Ok(None)
    }
}

impl Backend for FaultBackend {
    fn location(&self) -> String {
        self.inner.location()
    }

    fn parallel_writes(&self) -> usize {
        self.inner.parallel_writes()
    }

    fn exists(&self, kind: FileKind, name: &str) -> Result<bool> {
        self.inner.exists(kind, name)
    }

    fn read(&self, kind: FileKind, name: &str) -> Result<Vec<u8>> {
        let damage = self.before(Op::Read, &kind.path_of(name))?;
        let mut bytes = self.inner.read(kind, name)?;
        if damage == Some(Action::Short) {
            bytes.truncate(bytes.len() / 2);
        }
        Ok(bytes)
    }

    fn read_at(&self, kind: FileKind, name: &str, offset: u64, buf: &mut [u8]) -> Result<()> {
        let damage = self.before(Op::Read, &kind.path_of(name))?;
        self.inner.read_at(kind, name, offset, buf)?;
        if damage == Some(Action::Short) {
            // The contract is "exactly buf.len() bytes or an error": a short
            // read shows as zeroed bytes past the half, which only the
            // authentication of what was read can catch.
            let half = buf.len() / 2;
            buf[half..].fill(0);
        }
        Ok(())
    }

    fn size(&self, kind: FileKind, name: &str) -> Result<u64> {
        self.inner.size(kind, name)
    }

    fn modified(&self, kind: FileKind, name: &str) -> Result<i64> {
        self.inner.modified(kind, name)
    }

    fn write_new(&self, kind: FileKind, name: &str, data: &[u8]) -> Result<()> {
        match self.before(Op::Write, &kind.path_of(name))? {
            Some(Action::Truncate) => self.inner.write_new(kind, name, &data[..data.len() / 2]),
            Some(Action::SyncDir) => {
                self.inner.write_new(kind, name, data)?;
                Err(StoreError::Io {
                    op: "injected fault in fsync directory after writing",
                    path: PathBuf::from(kind.path_of(name)),
                    error: io::Error::from_raw_os_error(libc::EIO),
                })
            }
            _ => self.inner.write_new(kind, name, data),
        }
    }

    fn list_sized(&self, kind: FileKind) -> Result<Vec<(String, u64)>> {
        let _ = self.before(Op::List, kind.dir())?;
        self.inner.list_sized(kind)
    }

    fn remove(&self, kind: FileKind, name: &str) -> Result<()> {
        let _ = self.before(Op::Remove, &kind.path_of(name))?;
        self.inner.remove(kind, name)
    }

    fn temp_files(&self) -> Result<Vec<TempFile>> {
        self.inner.temp_files()
    }

    fn strays(&self) -> Result<Vec<String>> {
        self.inner.strays()
    }

    fn remove_temp(&self, path: &str) -> Result<()> {
        let _ = self.before(Op::Remove, path)?;
        self.inner.remove_temp(path)
    }

    fn create_layout(&self) -> Result<()> {
        self.inner.create_layout()
    }
}
