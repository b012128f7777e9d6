//! The temporary file a restore writes beside its target: created new under a random name, never through a symlink, renamed over the target only once verified.
//!
//! The target directory may be writable by others (the service user owns the SQLite file's
//! directory; `--to` may name a shared one) while rbk runs as root. Whoever can write there
//! can plant a symlink at any name they can predict, so the file is created with
//! `O_CREAT|O_EXCL|O_NOFOLLOW` (a name that exists, link or not, is never opened but skipped
//! for another random one), and everything done to it afterwards (owner, mode, bytes) goes
//! through the open descriptor, never a path. The name is short and fixed in length, so a
//! part name of up to NAME_MAX bytes still has a temporary name.

use std::ffi::CString;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// Context for a failure while writing a part into a directory of this machine (`--to DIR`,
/// the SQLite file's directory in host mode): it names the directory, and lets the CLI tell
/// a full target disk from a full repository.
#[derive(Debug, thiserror::Error)]
#[error("restoring {what} into {}", dir.display())]
pub struct RestoringInto {
    /// The part, as messages name it.
    pub what: String,
    pub dir: PathBuf,
}

/// Every temporary file's name starts with this (`check`-like tools and tests look for it).
pub const PREFIX: &str = ".rbk-partial-";

/// A test knob, unset in production: the first name tried is `PREFIX` + this value (16
/// lowercase hex digits), so a test can plant a symlink exactly there. Later tries are
/// random as always.
const TEST_NAME_VAR: &str = "RBK_TEST_PARTIAL_NAME";

/// Names tried before giving up: each is 64 random bits, so only a directory full of
/// planted names, or a broken random source, gets this far.
const ATTEMPTS: usize = 16;

/// A temporary file rbk created and owns; removed when dropped unless persisted.
pub struct Partial {
    path: PathBuf,
    file: File,
    persisted: bool,
}

impl Partial {
    /// Creates `PREFIX<16 random hex digits>` in `dir`, mode 0600 (less if the umask says
    /// so), for writing.
    pub fn create(dir: &Path) -> Result<Partial> {
        let fixed = std::env::var(TEST_NAME_VAR)
            .ok()
            .filter(|v| v.len() == 16 && v.bytes().all(|b| b.is_ascii_hexdigit()));
        let mut last = None;
        for attempt in 0..ATTEMPTS {
            let suffix = match (&fixed, attempt) {
                (Some(v), 0) => v.clone(),
                _ => random_hex()?,
            };
            let path = dir.join(format!("{PREFIX}{suffix}"));
            let opened = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW)
                .open(&path);
            match opened {
                Ok(file) => {
                    return Ok(Partial {
                        path,
                        file,
                        persisted: false,
                    });
                }
                // Someone else's file or link: leave it alone and pick another name.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = Some(e),
                Err(e) => {
                    return Err(e).with_context(|| {
                        format!("cannot create a temporary file in {}", dir.display())
                    });
                }
            }
        }
        Err(last.unwrap_or_else(|| io::Error::other("no attempt made"))).with_context(|| {
            format!(
                "cannot create a temporary file in {}: {ATTEMPTS} random names were all taken",
                dir.display()
            )
        })
    }

    /// The open file: write, chown and chmod through it, never through its path.
    pub fn file(&mut self) -> &mut File {
        &mut self.file
    }

    /// Renames the file to `target`. With `replace`, whatever is at `target` is replaced (a
    /// symlink there is replaced, never followed); without, an existing `target` is an
    /// error and left as it is, even one that appeared after the caller looked.
    pub fn persist(mut self, target: &Path, replace: bool) -> Result<()> {
        let renamed = if replace {
            fs::rename(&self.path, target)
        } else {
            rename_noreplace(&self.path, target)
        };
        match renamed {
            Ok(()) => {
                self.persisted = true;
                Ok(())
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(e).with_context(|| {
                format!(
                    "{} appeared while restoring and was left as it is (--overwrite replaces it)",
                    target.display()
                )
            }),
            Err(e) => Err(e).with_context(|| format!("cannot rename into {}", target.display())),
        }
    }
}

impl Drop for Partial {
    fn drop(&mut self) {
        if !self.persisted {
            // Unlinking never follows a link: if someone swapped the name, only the name goes.
            let _ = fs::remove_file(&self.path);
        }
    }
}

fn random_hex() -> Result<String> {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes)
        .map_err(|e| anyhow::anyhow!("the operating system's random source failed: {e}"))?;
    Ok(hex::encode(bytes))
}

/// `rename` that fails with `AlreadyExists` instead of replacing `to`: `renameat2` with
/// `RENAME_NOREPLACE`, or, on a filesystem without it (some network filesystems), a check
/// just before a plain rename.
fn rename_noreplace(from: &Path, to: &Path) -> io::Result<()> {
    let c = |p: &Path| {
        CString::new(p.as_os_str().as_bytes())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a path holds a NUL byte"))
    };
    let (from_c, to_c) = (c(from)?, c(to)?);
    // SAFETY: both are NUL-terminated paths that outlive the call.
    let rc = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            from_c.as_ptr(),
            libc::AT_FDCWD,
            to_c.as_ptr(),
            libc::RENAME_NOREPLACE,
        )
    };
    if rc == 0 {
        return Ok(());
    }
    let e = io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::EINVAL) | Some(libc::ENOSYS) => match fs::symlink_metadata(to) {
            Ok(_) => Err(io::Error::from(io::ErrorKind::AlreadyExists)),
            Err(_) => fs::rename(from, to),
        },
        _ => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_fixed_length_and_distinct() {
        let dir = tempfile::tempdir().unwrap();
        let a = Partial::create(dir.path()).unwrap();
        let b = Partial::create(dir.path()).unwrap();
        assert_ne!(a.path, b.path);
        for p in [&a.path, &b.path] {
            let name = p.file_name().unwrap().to_str().unwrap();
            assert_eq!(name.len(), PREFIX.len() + 16, "{name}");
            assert!(name.starts_with(PREFIX));
        }
        drop(a);
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            1,
            "dropped, removed"
        );
    }

    #[test]
    fn noreplace_leaves_an_existing_target() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("t");
        fs::write(&target, b"mine").unwrap();
        let p = Partial::create(dir.path()).unwrap();
        let e = p.persist(&target, false).unwrap_err();
        assert!(format!("{e:#}").contains("--overwrite"), "{e:#}");
        assert_eq!(fs::read(&target).unwrap(), b"mine");
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            1,
            "the temporary is gone"
        );
    }
}
