//! `MemoryBackend`: a repository held in memory, for tests and as the simplest backend that keeps the contract.

use std::collections::BTreeMap;
use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use super::backend::{Backend, TempFile};
use super::error::{Result, StoreError};
use super::format::FileKind;

/// Files by kind and name, each with its bytes and the time it was written. A write
/// replaces the map entry in one step under the lock, so readers see no file or all of
/// it; clones share the files (two "processes" on one repository).
#[derive(Clone, Default)]
pub struct MemoryBackend {
    files: Arc<Mutex<Files>>,
    /// What `parallel_writes` answers (1 unless set): a test can have the writer behave as
    /// it does against an object store.
    parallel: Option<usize>,
}

/// (folder, name) -> (bytes, Unix time written).
type Files = BTreeMap<(String, String), (Arc<Vec<u8>>, i64)>;

impl MemoryBackend {
    pub fn new() -> MemoryBackend {
        MemoryBackend::default()
    }

    /// The same backend, asking writers for `n` pack writes at once.
    pub fn with_parallel_writes(mut self, n: usize) -> MemoryBackend {
        self.parallel = Some(n);
        self
    }

    fn files(&self) -> MutexGuard<'_, Files> {
        // A panic elsewhere while the map was held leaves whole entries: still usable.
        self.files.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn key(kind: FileKind, name: &str) -> (String, String) {
        (kind.dir().to_string(), name.to_string())
    }

    fn get(&self, kind: FileKind, name: &str) -> Result<(Arc<Vec<u8>>, i64)> {
        self.files()
            .get(&Self::key(kind, name))
            .cloned()
            .ok_or_else(|| StoreError::Io {
                op: "open",
                path: PathBuf::from(format!("memory:{}", kind.path_of(name))),
                error: io::Error::from(io::ErrorKind::NotFound),
            })
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

impl Backend for MemoryBackend {
    fn parallel_writes(&self) -> usize {
        self.parallel.unwrap_or(1)
    }
    fn location(&self) -> String {
        "memory".into()
    }

    fn exists(&self, kind: FileKind, name: &str) -> Result<bool> {
        Ok(self.files().contains_key(&Self::key(kind, name)))
    }

    fn read(&self, kind: FileKind, name: &str) -> Result<Vec<u8>> {
        let (data, _) = self.get(kind, name)?;
        if data.len() as u64 > kind.max_len() {
            return Err(StoreError::damaged(
                kind.path_of(name),
                format!(
                    "{} bytes, more than any such file rbk writes ({} at most)",
                    data.len(),
                    kind.max_len()
                ),
            ));
        }
        Ok(data.to_vec())
    }

    fn read_at(&self, kind: FileKind, name: &str, offset: u64, buf: &mut [u8]) -> Result<()> {
        let (data, _) = self.get(kind, name)?;
        let range = usize::try_from(offset)
            .ok()
            .and_then(|start| Some(start..start.checked_add(buf.len())?))
            .filter(|r| r.end <= data.len());
        match range {
            Some(r) => {
                buf.copy_from_slice(&data[r]);
                Ok(())
            }
            None => Err(StoreError::damaged(
                kind.path_of(name),
                format!(
                    "shorter than expected: no {} bytes at offset {offset}",
                    buf.len()
                ),
            )),
        }
    }

    fn size(&self, kind: FileKind, name: &str) -> Result<u64> {
        Ok(self.get(kind, name)?.0.len() as u64)
    }

    fn modified(&self, kind: FileKind, name: &str) -> Result<i64> {
        Ok(self.get(kind, name)?.1)
    }

    fn write_new(&self, kind: FileKind, name: &str, data: &[u8]) -> Result<()> {
        self.files()
            .insert(Self::key(kind, name), (Arc::new(data.to_vec()), now()));
        Ok(())
    }

    fn list_sized(&self, kind: FileKind) -> Result<Vec<(String, u64)>> {
        let dir = kind.dir();
        Ok(self
            .files()
            .iter()
            .filter(|((d, _), _)| d == dir)
            .map(|((_, name), (data, _))| (name.clone(), data.len() as u64))
            .collect())
    }

    fn remove(&self, kind: FileKind, name: &str) -> Result<()> {
        self.files().remove(&Self::key(kind, name));
        Ok(())
    }

    fn temp_files(&self) -> Result<Vec<TempFile>> {
        Ok(Vec::new())
    }

    fn strays(&self) -> Result<Vec<String>> {
        Ok(Vec::new())
    }

    fn remove_temp(&self, _path: &str) -> Result<()> {
        Ok(())
    }

    fn create_layout(&self) -> Result<()> {
        Ok(())
    }
}
