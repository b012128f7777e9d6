//! Where repository files live: a directory on a local disk or a NAS mount.
//!
//! Contract (every backend must keep it, and the rest of the store relies on it):
//! - `write_new` is atomic and durable: after it returns, the file exists with
//!   exactly those bytes even across a power cut; before it returns, readers
//!   see either no file or the whole file. It never changes a file in place.
//!   Content-addressed names may be written twice only with identical bytes.
//! - `list` never shows temporary files.
//! - Errors carry the path, so a message names the file.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::crypto::random_array;
use super::error::{Result, StoreError};
use super::format::FileKind;

/// Prefix of in-progress files; ignored by `list`, removable by anyone once stale.
pub const TEMP_PREFIX: &str = ".tmp-";

/// A temporary file: its path relative to the repository, size and age.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TempFile {
    pub path: String,
    pub size: u64,
    pub age_secs: u64,
}

pub trait Backend: Send + Sync {
    /// A human-readable location, for messages.
    fn location(&self) -> String;
    fn exists(&self, kind: FileKind, name: &str) -> Result<bool>;
    fn read(&self, kind: FileKind, name: &str) -> Result<Vec<u8>>;
    /// Reads exactly `buf.len()` bytes at `offset`; a short file is an error.
    fn read_at(&self, kind: FileKind, name: &str, offset: u64, buf: &mut [u8]) -> Result<()>;
    fn size(&self, kind: FileKind, name: &str) -> Result<u64>;
    fn write_new(&self, kind: FileKind, name: &str, data: &[u8]) -> Result<()>;
    fn list(&self, kind: FileKind) -> Result<Vec<String>>;
    fn remove(&self, kind: FileKind, name: &str) -> Result<()>;
    /// Temporary files (writes in progress, or left by a crash).
    fn temp_files(&self) -> Result<Vec<TempFile>>;
    /// Removes a temporary file named by `temp_files`.
    fn remove_temp(&self, path: &str) -> Result<()>;
    /// Creates the directory layout for a new repository.
    fn create_layout(&self) -> Result<()>;
}

/// A repository in a local directory (a NAS mounted over NFS or SMB counts).
pub struct LocalBackend {
    root: PathBuf,
}

impl LocalBackend {
    pub fn new(root: impl Into<PathBuf>) -> LocalBackend {
        LocalBackend { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `data/<first two hex digits>/<id>` keeps directories small on NAS
    /// filesystems that slow down with many entries; other kinds are flat.
    pub fn path(&self, kind: FileKind, name: &str) -> PathBuf {
        match kind {
            FileKind::Config => self.root.join("config"),
            FileKind::Pack => {
                let prefix = name.get(..2).unwrap_or("00");
                self.root.join("data").join(prefix).join(name)
            }
            other => self.root.join(other.dir()).join(name),
        }
    }

    fn io(op: &'static str, path: &Path, source: io::Error) -> StoreError {
        StoreError::Io {
            op,
            path: path.to_path_buf(),
            error: source,
        }
    }
}

impl Backend for LocalBackend {
    fn location(&self) -> String {
        self.root.display().to_string()
    }

    fn exists(&self, kind: FileKind, name: &str) -> Result<bool> {
        let path = self.path(kind, name);
        match fs::metadata(&path) {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(Self::io("stat", &path, e)),
        }
    }

    fn read(&self, kind: FileKind, name: &str) -> Result<Vec<u8>> {
        let path = self.path(kind, name);
        fs::read(&path).map_err(|e| Self::io("read", &path, e))
    }

    fn read_at(&self, kind: FileKind, name: &str, offset: u64, buf: &mut [u8]) -> Result<()> {
        let path = self.path(kind, name);
        let file = File::open(&path).map_err(|e| Self::io("open", &path, e))?;
        file.read_exact_at(buf, offset).map_err(|e| {
            if e.kind() == io::ErrorKind::UnexpectedEof {
                StoreError::damaged(
                    kind.path_of(name),
                    format!(
                        "shorter than expected: no {} bytes at offset {offset}",
                        buf.len()
                    ),
                )
            } else {
                Self::io("read", &path, e)
            }
        })
    }

    fn size(&self, kind: FileKind, name: &str) -> Result<u64> {
        let path = self.path(kind, name);
        fs::metadata(&path)
            .map(|m| m.len())
            .map_err(|e| Self::io("stat", &path, e))
    }

    fn write_new(&self, kind: FileKind, name: &str, data: &[u8]) -> Result<()> {
        let path = self.path(kind, name);
        let dir = path.parent().unwrap_or(&self.root).to_path_buf();
        // `deletions/` came with prune: repositories made before it lack it.
        if matches!(kind, FileKind::Pack | FileKind::Deletion) {
            fs::create_dir_all(&dir).map_err(|e| Self::io("create directory", &dir, e))?;
        }
        let tmp = dir.join(format!("{TEMP_PREFIX}{}", hex::encode(random_array::<8>())));
        let result = (|| {
            let mut f = OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&tmp)
                .map_err(|e| Self::io("create", &tmp, e))?;
            f.write_all(data).map_err(|e| Self::io("write", &tmp, e))?;
            // fsync before rename: otherwise a crash can leave the new name
            // pointing at a file whose blocks never reached the disk.
            f.sync_all().map_err(|e| Self::io("fsync", &tmp, e))?;
            drop(f);
            fs::rename(&tmp, &path).map_err(|e| Self::io("rename", &path, e))?;
            sync_dir(&dir)
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result
    }

    fn list(&self, kind: FileKind) -> Result<Vec<String>> {
        let dir = self.root.join(kind.dir());
        let mut out = Vec::new();
        let mut dirs = vec![dir.clone()];
        while let Some(d) = dirs.pop() {
            let entries = match fs::read_dir(&d) {
                Ok(e) => e,
                Err(e)
                    if e.kind() == io::ErrorKind::NotFound
                        && (d != dir || kind == FileKind::Deletion) =>
                {
                    continue;
                }
                Err(e) => return Err(Self::io("list", &d, e)),
            };
            for entry in entries {
                let entry = entry.map_err(|e| Self::io("list", &d, e))?;
                let name = entry.file_name().to_string_lossy().into_owned();
                let ft = entry
                    .file_type()
                    .map_err(|e| Self::io("stat", &entry.path(), e))?;
                if kind == FileKind::Pack && ft.is_dir() && d == dir {
                    dirs.push(entry.path());
                } else if ft.is_file() && !name.starts_with(TEMP_PREFIX) {
                    out.push(name);
                }
            }
        }
        out.sort();
        Ok(out)
    }

    fn remove(&self, kind: FileKind, name: &str) -> Result<()> {
        let path = self.path(kind, name);
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Self::io("remove", &path, e)),
        }
    }

    fn temp_files(&self) -> Result<Vec<TempFile>> {
        let mut out = Vec::new();
        let mut dirs = vec![self.root.clone()];
        while let Some(d) = dirs.pop() {
            let Ok(entries) = fs::read_dir(&d) else {
                continue;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                let Ok(meta) = entry.metadata() else { continue };
                if meta.is_dir() {
                    dirs.push(path);
                } else if entry.file_name().to_string_lossy().starts_with(TEMP_PREFIX) {
                    let rel = path.strip_prefix(&self.root).unwrap_or(&path);
                    let age_secs = meta
                        .modified()
                        .ok()
                        .and_then(|m| m.elapsed().ok())
                        .map_or(0, |d| d.as_secs());
                    out.push(TempFile {
                        path: rel.display().to_string(),
                        size: meta.len(),
                        age_secs,
                    });
                }
            }
        }
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(out)
    }

    fn remove_temp(&self, path: &str) -> Result<()> {
        let rel = Path::new(path);
        // Only names `temp_files` could have returned: no way out of the root.
        let inside = rel
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)));
        let is_temp = rel
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with(TEMP_PREFIX));
        if !inside || !is_temp {
            return Err(StoreError::Invalid(format!(
                "{path} is not a temporary file of this repository"
            )));
        }
        let full = self.root.join(rel);
        match fs::remove_file(&full) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Self::io("remove", &full, e)),
        }
    }

    fn create_layout(&self) -> Result<()> {
        fs::create_dir_all(&self.root).map_err(|e| Self::io("create directory", &self.root, e))?;
        for kind in [
            FileKind::Key,
            FileKind::Pack,
            FileKind::Index,
            FileKind::Snapshot,
            FileKind::Lock,
            FileKind::Deletion,
        ] {
            let d = self.root.join(kind.dir());
            fs::create_dir_all(&d).map_err(|e| Self::io("create directory", &d, e))?;
        }
        sync_dir(&self.root)
    }
}

/// Makes a rename durable. Some network filesystems refuse to fsync a
/// directory (EINVAL); their server commits the rename itself, so that
/// refusal is not an error.
fn sync_dir(dir: &Path) -> Result<()> {
    let f = File::open(dir).map_err(|e| LocalBackend::io("open directory", dir, e))?;
    match f.sync_all() {
        Ok(()) => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => Ok(()),
        Err(e) => Err(LocalBackend::io("fsync directory", dir, e)),
    }
}
