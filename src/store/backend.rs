//! Where repository files live: a directory on a local disk or a NAS mount.
//!
//! Contract (every backend must keep it, and the rest of the store relies on it):
//! - `write_new` is atomic and durable: after it returns, the file exists with
//!   exactly those bytes even across a power cut; before it returns, readers
//!   see either no file or the whole file. It never changes a file in place.
//!   Content-addressed names may be written twice only with identical bytes.
//! - `list` never shows temporary files, nor anything that is not a regular file.
//! - `read` and `read_at` read only regular files, and `read` at most
//!   `FileKind::max_len` bytes: every byte and every directory of a repository
//!   may have been planted by someone else (a FIFO would hang a reader, a link
//!   to `/dev/zero` or a huge sparse file would exhaust memory).
//! - Errors carry the path, so a message names the file.
//!
//! The local backend writes files 0600 and creates directories 0700 whatever
//! the umask: a key file readable by other local users lets them guess the
//! password offline.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, FileExt, FileTypeExt, OpenOptionsExt};
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
    /// How many files a writer should write at once: one for a disk, more for a store
    /// whose every write waits on network round trips.
    fn parallel_writes(&self) -> usize {
        1
    }
    fn exists(&self, kind: FileKind, name: &str) -> Result<bool>;
    fn read(&self, kind: FileKind, name: &str) -> Result<Vec<u8>>;
    /// Reads exactly `buf.len()` bytes at `offset`; a short file is an error.
    fn read_at(&self, kind: FileKind, name: &str, offset: u64, buf: &mut [u8]) -> Result<()>;
    fn size(&self, kind: FileKind, name: &str) -> Result<u64>;
    /// When the file was last written, in Unix seconds (whatever clock wrote it).
    fn modified(&self, kind: FileKind, name: &str) -> Result<i64>;
    fn write_new(&self, kind: FileKind, name: &str, data: &[u8]) -> Result<()>;
    /// `write_new` of bytes the caller gives up: a backend that must own what it sends (an
    /// object store's request body) takes them instead of copying a 16 MiB pack.
    fn write_new_owned(&self, kind: FileKind, name: &str, data: Vec<u8>) -> Result<()> {
        self.write_new(kind, name, &data)
    }
    /// The files of a kind, sorted by name, each with its size: an object store gives both
    /// in one listing, where asking each file's size would cost a request per file.
    fn list_sized(&self, kind: FileKind) -> Result<Vec<(String, u64)>>;
    /// The names of the files of a kind, sorted.
    fn list(&self, kind: FileKind) -> Result<Vec<String>> {
        Ok(self
            .list_sized(kind)?
            .into_iter()
            .map(|(name, _)| name)
            .collect())
    }
    fn remove(&self, kind: FileKind, name: &str) -> Result<()>;
    /// Temporary files (writes in progress, or left by a crash).
    fn temp_files(&self) -> Result<Vec<TempFile>>;
    /// Entries of the repository's folders that readers ignore because rbk
    /// never writes such a thing there (links, FIFOs, devices, folders where
    /// files belong, files where pack folders belong), as paths relative to
    /// the repository: `check` reports them, nothing removes them.
    fn strays(&self) -> Result<Vec<String>>;
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

    /// Opens a repository file for reading, refusing what rbk never writes: a
    /// symbolic link (`O_NOFOLLOW`), a FIFO, a device or a directory (checked on
    /// the open descriptor, so nothing can be swapped in between; `O_NONBLOCK`
    /// so that opening a FIFO does not wait for a writer). Returns the file and its size.
    fn open_regular(&self, kind: FileKind, name: &str) -> Result<(File, u64)> {
        let path = self.path(kind, name);
        let file = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(&path)
            .map_err(|e| match e.raw_os_error() {
                Some(libc::ELOOP) => StoreError::damaged(
                    kind.path_of(name),
                    "is a symbolic link; rbk never writes links into a repository and does not follow them",
                ),
                _ => Self::io("open", &path, e),
            })?;
        let meta = file.metadata().map_err(|e| Self::io("stat", &path, e))?;
        not_regular(kind, name, meta.file_type())?;
        Ok((file, meta.len()))
    }
}

/// An error unless `ft` is a regular file: what else a repository path holds was not written by rbk.
fn not_regular(kind: FileKind, name: &str, ft: fs::FileType) -> Result<()> {
    let what = if ft.is_file() {
        return Ok(());
    } else if ft.is_dir() {
        "a directory"
    } else if ft.is_symlink() {
        "a symbolic link"
    } else if ft.is_fifo() {
        "a FIFO"
    } else if ft.is_socket() {
        "a socket"
    } else if ft.is_char_device() || ft.is_block_device() {
        "a device"
    } else {
        "not a file"
    };
    Err(StoreError::damaged(
        kind.path_of(name),
        format!("is {what}, not a regular file; rbk did not write it"),
    ))
}

/// Creates `dir` and any missing parents, private to the repository's owner.
fn create_private_dir(dir: &Path) -> Result<()> {
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| LocalBackend::io("create directory", dir, e))
}

impl Backend for LocalBackend {
    fn location(&self) -> String {
        self.root.display().to_string()
    }

    fn exists(&self, kind: FileKind, name: &str) -> Result<bool> {
        let path = self.path(kind, name);
        // Not followed: a dangling link still exists, and reading it says what it is.
        match fs::symlink_metadata(&path) {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            // A path component is a file: `--repo` names a file, not a repository.
            Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) => Err(StoreError::NotARepository {
                path: self.root.clone(),
                detail: "it, or a folder in it, is a file, not a directory".into(),
            }),
            Err(e) => Err(Self::io("stat", &path, e)),
        }
    }

    fn read(&self, kind: FileKind, name: &str) -> Result<Vec<u8>> {
        let path = self.path(kind, name);
        let (file, size) = self.open_regular(kind, name)?;
        let max = kind.max_len();
        let too_big = |len: u64| {
            StoreError::damaged(
                kind.path_of(name),
                format!("{len} bytes, more than any such file rbk writes ({max} at most)"),
            )
        };
        if size > max {
            return Err(too_big(size));
        }
        // Bounded even if the file grows after the size was taken.
        let mut out = Vec::with_capacity(size as usize);
        file.take(max + 1)
            .read_to_end(&mut out)
            .map_err(|e| Self::io("read", &path, e))?;
        if out.len() as u64 > max {
            return Err(too_big(out.len() as u64));
        }
        Ok(out)
    }

    fn read_at(&self, kind: FileKind, name: &str, offset: u64, buf: &mut [u8]) -> Result<()> {
        let path = self.path(kind, name);
        let (file, _) = self.open_regular(kind, name)?;
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
        let meta = fs::symlink_metadata(&path).map_err(|e| Self::io("stat", &path, e))?;
        not_regular(kind, name, meta.file_type())?;
        Ok(meta.len())
    }

    fn modified(&self, kind: FileKind, name: &str) -> Result<i64> {
        let path = self.path(kind, name);
        let meta = fs::symlink_metadata(&path).map_err(|e| Self::io("stat", &path, e))?;
        Ok(std::os::unix::fs::MetadataExt::mtime(&meta))
    }

    fn write_new(&self, kind: FileKind, name: &str, data: &[u8]) -> Result<()> {
        let path = self.path(kind, name);
        let dir = path.parent().unwrap_or(&self.root).to_path_buf();
        // Pack folders are made on demand, `deletions/` came with prune,
        // `verifications/` with verification records, and `repair index` must
        // work after `index/` itself was deleted.
        if kind != FileKind::Config {
            create_private_dir(&dir)?;
        }
        let tmp = dir.join(format!("{TEMP_PREFIX}{}", hex::encode(random_array::<8>())));
        let result = (|| {
            // A fresh name, never a link: `create_new` is O_CREAT|O_EXCL, which
            // refuses any existing entry, a planted symbolic link included.
            let mut f = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
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

    fn list_sized(&self, kind: FileKind) -> Result<Vec<(String, u64)>> {
        let dir = self.root.join(kind.dir());
        let mut out = Vec::new();
        let mut dirs = vec![dir.clone()];
        while let Some(d) = dirs.pop() {
            let entries = match fs::read_dir(&d) {
                Ok(e) => e,
                // A folder someone deleted holds no files (`deletions/` is also
                // absent from repositories made before prune existed): the
                // commands that need its files say what is missing.
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
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
                    // Not followed: the entry is a regular file (links are not). One
                    // removed since the directory was read is not listed.
                    match entry.metadata() {
                        Ok(m) => out.push((name, m.len())),
                        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                        Err(e) => return Err(Self::io("stat", &entry.path(), e)),
                    }
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

    fn strays(&self) -> Result<Vec<String>> {
        let mut out = Vec::new();
        let entries = |dir: &Path| -> Result<Vec<(String, fs::FileType)>> {
            let rd = match fs::read_dir(dir) {
                Ok(rd) => rd,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
                Err(e) => return Err(Self::io("list", dir, e)),
            };
            let mut v = Vec::new();
            for entry in rd {
                let entry = entry.map_err(|e| Self::io("list", dir, e))?;
                let ft = entry
                    .file_type()
                    .map_err(|e| Self::io("stat", &entry.path(), e))?;
                let name = entry.file_name().to_string_lossy().into_owned();
                // Temporary files are `temp_files`' to report, whatever they are.
                if !name.starts_with(TEMP_PREFIX) {
                    v.push((name, ft));
                }
            }
            Ok(v)
        };
        // Packs, one folder deeper, come after.
        for kind in FileKind::FOLDERS
            .into_iter()
            .filter(|k| *k != FileKind::Pack)
        {
            for (name, ft) in entries(&self.root.join(kind.dir()))? {
                if !ft.is_file() {
                    out.push(format!("{}/{name}", kind.dir()));
                }
            }
        }
        let data = self.root.join(FileKind::Pack.dir());
        for (sub, ft) in entries(&data)? {
            if !ft.is_dir() {
                out.push(format!("data/{sub}"));
                continue;
            }
            for (name, ft) in entries(&data.join(&sub))? {
                if !ft.is_file() {
                    out.push(format!("data/{sub}/{name}"));
                }
            }
        }
        out.sort();
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
        // A folder that exists already (a NAS mount point) keeps its mode: it is the user's.
        create_private_dir(&self.root)?;
        for kind in FileKind::FOLDERS {
            create_private_dir(&self.root.join(kind.dir()))?;
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
