//! The SQLite file on this host: read without following links, and replaced through a temporary file beside it, renamed only once written and fsynced.

use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use super::{PART, PART_WAL};
use crate::partial::{Partial, RestoringInto};
use crate::parts::open_regular_nofollow;
use crate::source::kind::{PartFeed, Source, Stream};

/// The file and, if there is a non-empty one, its write-ahead log. The directory is the
/// service user's: whatever is at these names may be planted, so nothing is followed.
pub(super) fn streams(path: &Path) -> Result<(Vec<Stream>, Vec<String>)> {
    let mut out = Vec::new();
    let mut warnings = Vec::new();
    let file =
        open_regular_nofollow(path).with_context(|| format!("cannot open {}", path.display()))?;
    let size = file.metadata().ok().map(|m| m.len());
    out.push(stream(PART, path, file, size));
    // Committed transactions a killed writer left only in the WAL belong to the copy.
    let wal = side_file(path, "-wal");
    let file = match open_regular_nofollow(&wal) {
        Ok(file) => Some(file),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        // A link or a FIFO at the log's name is not RushDB's log: not followed, not stored,
        // and said, since a real log could hold committed transactions.
        Err(e) => {
            warnings.push(format!("{PART_WAL}: {e}; not stored"));
            None
        }
    };
    if let Some(file) = file.filter(|f| f.metadata().is_ok_and(|m| m.len() > 0)) {
        let size = file.metadata().ok().map(|m| m.len());
        out.push(stream(PART_WAL, &wal, file, size));
    }
    Ok((out, warnings))
}

fn stream(part: &str, path: &Path, file: File, size: Option<u64>) -> Stream {
    Stream {
        part: part.into(),
        origin: format!("file:{}", path.display()),
        size,
        raw: true,
        source: Source::Reader(Box::new(file)),
    }
}

/// Before anything stops: the directory exists and what is at the path can be replaced.
pub(super) fn preflight(path: &Path) -> Result<()> {
    let dir = parent_of(path);
    if !dir.is_dir() {
        bail!(
            "sqlite_path {}: the directory {} does not exist",
            path.display(),
            dir.display()
        );
    }
    replaced_file(path)?;
    Ok(())
}

fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// The owner, group and mode of the file at `path`, which a restore replaces (`None`: there
/// is none). Not followed: a symlink there is refused (rbk would replace the link, not the
/// database it points to, and must not lend a planted link's target its owner), and so is
/// anything but a regular file. Set-id and sticky bits are not kept: the file is data.
pub fn replaced_file(path: &Path) -> Result<Option<(u32, u32, u32)>> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => bail!(
            "sqlite_path {} is a symbolic link{}: a restore replaces the file at sqlite_path, \
             so set it to the database file itself",
            path.display(),
            fs::read_link(path)
                .map(|t| format!(" (to {})", t.display()))
                .unwrap_or_default()
        ),
        Ok(m) if m.is_file() => Ok(Some((m.uid(), m.gid(), m.mode() & 0o777))),
        Ok(_) => bail!("sqlite_path {} is not a regular file", path.display()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot stat {}", path.display())),
    }
}

/// `path` with `suffix` appended to its file name (`rushdb.db-wal`).
fn side_file(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// Replaces the SQLite file, and puts its WAL beside it when the snapshot has one: the log
/// of transactions the file alone lacks (RushDB was killed, not stopped, before that
/// snapshot), where SQLite recovers from it. A failure names the directory
/// ([`RestoringInto`]), so that the CLI can tell a full target disk from a full repository.
pub(super) fn put(feed: &dyn PartFeed, path: &Path) -> Result<()> {
    put_files(feed, path).map_err(|e| {
        e.context(RestoringInto {
            what: PART.into(),
            dir: parent_of(path).to_path_buf(),
        })
    })
}

/// Each file is written to a temporary file of its own in the directory (`Partial`: a
/// random name, never through a symlink), given the replaced file's owner and mode through
/// the open descriptor (so RushDB can still open it; SQLite gives its WAL the database's),
/// fsynced, and renamed into place; then the directory is fsynced. A crash leaves the old
/// file or the new one. The file's mode is 0600 when there was none to replace.
fn put_files(feed: &dyn PartFeed, path: &Path) -> Result<()> {
    let dir = parent_of(path);
    if path.file_name().is_none() {
        bail!("sqlite_path {} names no file", path.display());
    }
    let owner = replaced_file(path)?;
    let db_tmp = write_temp(feed, PART, dir, owner)?;
    let wal_tmp = feed
        .has(PART_WAL)
        .then(|| write_temp(feed, PART_WAL, dir, owner))
        .transpose()?;
    // A write-ahead log or journal left by the old database would be replayed into the
    // new one and corrupt it. Removed before the rename: a crash in between loses only
    // the old database's last transactions, which the restore replaces anyway. Unlinking
    // removes a symlink planted there, never what it points to.
    for suffix in ["-wal", "-shm", "-journal"] {
        let side = side_file(path, suffix);
        match fs::remove_file(&side) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                return Err(e).with_context(|| format!("cannot remove {}", side.display()));
            }
            _ => {}
        }
    }
    // The database first: a crash before the WAL's rename leaves the database as of its
    // last checkpoint, consistent; a WAL beside the old database would be replayed into it.
    db_tmp.persist(path, true)?;
    if let Some(w) = wal_tmp {
        w.persist(&side_file(path, "-wal"), true)?;
    }
    File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("cannot fsync {}", dir.display()))?;
    Ok(())
}

/// One part in a new temporary file in `dir`, with `owner` (uid, gid, mode) when known,
/// fsynced.
fn write_temp(
    feed: &dyn PartFeed,
    part: &str,
    dir: &Path,
    owner: Option<(u32, u32, u32)>,
) -> Result<Partial> {
    let mut tmp = Partial::create(dir)?;
    if let Some((uid, gid, mode)) = owner {
        // Owner before mode: a change of owner may clear mode bits.
        std::os::unix::fs::fchown(tmp.file(), Some(uid), Some(gid))
            .context("cannot give the restored file the replaced file's owner")?;
        tmp.file()
            .set_permissions(fs::Permissions::from_mode(mode))
            .context("cannot give the restored file the replaced file's mode")?;
    }
    feed.write(part, tmp.file()).map_err(|e| e.error)?;
    tmp.file().flush()?;
    tmp.file()
        .sync_all()
        .with_context(|| format!("cannot fsync the restored {part}"))?;
    Ok(tmp)
}
