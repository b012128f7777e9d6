//! A volume read entry by entry (Neo4j volume mode): a one-off lists every path with its inode, size and times, then tars only the entries rbk asks for, so that a file unchanged since an earlier scan is not read again.
//!
//! The one-off's stdout is the listing (NUL-terminated records, an empty one last), then a
//! tar of the names rbk wrote to its stdin, in that order. The scan hands out the volume's
//! entries in listing order, each either unchanged (the caller already holds its bytes from
//! an earlier scan) or read now as the tar bytes of that one entry; those bytes, and a
//! last piece of end-of-archive blocks, make a tar of the whole volume.

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::{Context, Result, anyhow, bail};

use crate::codec::tar::{BLOCK_SIZE, parse_header};
use crate::process::{ExitError, StderrTail, command};
use crate::source::docker::{ContainerInfo, Engine, VolumeMount};
use crate::source::stream::{byte_sink, byte_stream};

/// Lists the volume (stat taken before any file is read, so a file that changes after its
/// line was printed has a newer ctime than the line says), then tars what is asked.
/// GNU find and tar, as in the Neo4j images (Debian); tar writes records of 1 MiB (`-b
/// 2048`, against 10 KiB by default), which with a pipe of 1 MiB on this host
/// (`widen_pipe`) read a 2 GB file in 0.8 s instead of 1.9 s here. `$2` is `1` when the store may
/// change while it is read (the pre-copy): tar's status 1 ("file changed as we read it",
/// or gone) is then expected, and the paused pass reads such a file again anyway.
const SCAN: &str = r#"cd "$1" || exit 2
find . -xdev -printf '%i %n %s %T@ %C@ %y %p\0' || exit 2
printf '\0'
tar -cf - -b 2048 --numeric-owner --no-recursion --null -T - && exit 0
status=$?
[ "$status" -eq 1 ] && [ "$2" = 1 ] && exit 0
exit "$status""#;

/// Bytes of metadata records (GNU long names, PAX headers) one entry may carry.
const MAX_METADATA: u64 = 1 << 20;

/// What identifies a file across scans: unchanged path, inode, size, modification and
/// change time mean unchanged bytes and tar header (a chmod or chown changes the ctime).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EntryKey {
    pub path: Vec<u8>,
    pub inode: u64,
    pub size: u64,
    pub mtime: String,
    pub ctime: String,
}

/// One line of the listing.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Listed {
    path: Vec<u8>,
    kind: u8,
    nlink: u64,
    key: EntryKey,
}

impl Listed {
    /// Only a regular file with one name can be used again unread: a hard link's tar entry
    /// depends on which of its names came first.
    fn reusable(&self) -> Option<&EntryKey> {
        (self.kind == b'f' && self.nlink == 1).then_some(&self.key)
    }

    /// What tar can archive: files, directories, links (not sockets, which tar skips).
    fn archived(&self) -> bool {
        matches!(self.kind, b'f' | b'd' | b'l')
    }
}

/// An entry of the volume, in order.
pub enum Entry<'a> {
    /// Unchanged since the scan the caller's `known` comes from: its bytes are the ones
    /// read then.
    Unchanged(&'a EntryKey),
    /// Read now: the tar bytes of this entry (its headers, data and padding), and its key
    /// if a later scan may find it unchanged.
    Read {
        key: Option<&'a EntryKey>,
        bytes: &'a mut (dyn Read + Send),
    },
}

/// Figures of one scan.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScanStats {
    pub entries: u64,
    pub unchanged: u64,
    /// Bytes of file data read (entries read now).
    pub bytes_read: u64,
    /// Bytes of file data not read (unchanged entries).
    pub bytes_unchanged: u64,
}

/// A volume, read where its files lie on this host when rbk can read them there, else
/// through a one-off of its owner's image that mounts it read-only.
pub struct VolumeScan {
    pub engine: Engine,
    pub owner: ContainerInfo,
    pub mount: VolumeMount,
    /// `Engine::host_path`: the same script, run by this host's `sh`, GNU `find` and `tar`.
    pub host_path: Option<PathBuf>,
}

impl VolumeScan {
    /// Scans the volume: every entry in listing order to `on_entry`, then a last `Read`
    /// of the end-of-archive blocks. `changing`: the store may be written meanwhile (the
    /// pre-copy), so files that vanish or change as tar reads them are not errors.
    pub fn scan(
        &self,
        rt: &tokio::runtime::Handle,
        changing: bool,
        known: &(dyn Fn(&EntryKey) -> bool + Sync),
        on_entry: &mut dyn FnMut(Entry<'_>) -> Result<()>,
    ) -> Result<ScanStats> {
        if let Some(path) = &self.host_path {
            return scan_here(path, changing, known, on_entry).with_context(|| {
                format!(
                    "scanning volume {} at {}",
                    self.mount.source,
                    path.display()
                )
            });
        }
        let (tx, mut out) = byte_stream();
        let (mut names_sink, names) = byte_sink();
        let script = script(changing);
        let task = {
            let (engine, owner, mount) =
                (self.engine.clone(), self.owner.clone(), self.mount.clone());
            rt.spawn(async move {
                engine
                    .run_on_volume(&owner, &mount, true, &script, Some(tx), Some(names))
                    .await
            })
        };
        let send_names = move |names: Vec<u8>| {
            names_sink
                .write_all(&names)
                .and_then(|()| names_sink.close())
        };
        let scanned = scan_stream(&mut out, send_names, changing, known, on_entry);
        // A scan that stopped early must not leave the one-off waiting on a full channel:
        // without a reader its output is drained and dropped, and it ends.
        drop(out);
        let finished = rt
            .block_on(task)
            .map_err(|e| anyhow!("{e}"))
            .and_then(|r| r.map(|_| ()));
        // A one-off that failed sent its failure down the stream, so the scan's own error
        // says it; a scan that stopped on its own (the repository) made the one-off fail
        // only by no longer reading.
        match (scanned, finished) {
            (Ok(stats), Ok(())) => Ok(stats),
            (Err(e), _) | (Ok(_), Err(e)) => {
                Err(e.context(format!("scanning volume {}", self.mount.source)))
            }
        }
    }
}

/// The scan run on this host, over the volume's directory.
fn scan_here(
    path: &Path,
    changing: bool,
    known: &(dyn Fn(&EntryKey) -> bool + Sync),
    on_entry: &mut dyn FnMut(Entry<'_>) -> Result<()>,
) -> Result<ScanStats> {
    let mut child = command("sh")
        .arg("-c")
        .arg(script(changing))
        .arg("rbk")
        .arg(path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting sh to scan the volume")?;
    let tail = StderrTail::default();
    let draining = child.stderr.take().map(|e| tail.drain_on_thread(e));
    let (Some(mut stdin), Some(mut stdout)) = (child.stdin.take(), child.stdout.take()) else {
        bail!("the scan's pipes could not be opened");
    };
    widen_pipe(&stdout);
    // Closing stdin (the drop at the end of the closure) tells tar the names are over.
    let scanned = scan_stream(
        &mut stdout,
        move |names| stdin.write_all(&names),
        changing,
        known,
        on_entry,
    );
    // A scan that stopped early closes the pipe: tar ends on the broken pipe.
    drop(stdout);
    let status = child.wait().context("waiting for the volume's scan")?;
    if let Some(d) = draining {
        let _ = d.join();
    }
    let failed = || ExitError {
        what: "the volume's scan (find and tar)".into(),
        status: status.into(),
        tail: tail.text(),
    };
    // tar killed by the pipe this end closed is this end's failure; any other failure of
    // the script explains a stream that was cut short or malformed.
    // (tar's death by SIGPIPE reaches rbk as the script's exit status 128 + 13.)
    let broken_pipe = status.code() == Some(141)
        || std::os::unix::process::ExitStatusExt::signal(&status) == Some(13);
    match scanned {
        Err(e) if status.success() || broken_pipe => Err(e),
        Err(e) => Err(e.context(failed())),
        Ok(_) if !status.success() => Err(failed().into()),
        Ok(stats) => Ok(stats),
    }
}

/// Asks for a pipe of 1 MiB (Linux's default unprivileged limit), against 64 KiB: tar's
/// records then cross it in one write and one read rather than sixteen of each, with as
/// many switches between the two processes on a machine of two cores. Where the kernel
/// refuses, the pipe stays as it was and the scan is only slower.
fn widen_pipe(pipe: &impl std::os::fd::AsRawFd) {
    // SAFETY: fcntl on a descriptor this process owns; F_SETPIPE_SZ only resizes its buffer.
    let _ = unsafe { libc::fcntl(pipe.as_raw_fd(), libc::F_SETPIPE_SZ, 1 << 20) };
}

/// The script the one-off runs: `sh -c SCRIPT rbk DIR`.
pub(crate) fn script(changing: bool) -> String {
    SCAN.replace("\"$2\"", if changing { "1" } else { "0" })
}

/// The scan over the one-off's stdout; `send_names` writes tar's names to its stdin and
/// closes it.
pub(crate) fn scan_stream(
    out: &mut (dyn Read + Send),
    send_names: impl FnOnce(Vec<u8>) -> io::Result<()> + Send,
    changing: bool,
    known: &(dyn Fn(&EntryKey) -> bool + Sync),
    on_entry: &mut dyn FnMut(Entry<'_>) -> Result<()>,
) -> Result<ScanStats> {
    std::thread::scope(|scope| -> Result<ScanStats> {
        let listing = read_listing(out)?;
        let names: Vec<u8> = listing
            .iter()
            .filter(|l| l.archived() && !l.reusable().is_some_and(known))
            .flat_map(|l| l.path.iter().copied().chain([0]))
            .collect();
        // Written beside the reads: tar reads its names as it archives, and a long list
        // would otherwise wait on tar while tar waits on its full stdout.
        let writer = scope.spawn(move || send_names(names));
        let merged = merge(&listing, known, changing, out, on_entry);
        if merged.is_err() {
            // The writer may wait on tar, which waits on its stdout: read on until it ends.
            let mut buf = vec![0u8; 64 * 1024];
            while !writer.is_finished() && matches!(out.read(&mut buf), Ok(n) if n > 0) {}
        }
        let written = writer
            .join()
            .map_err(|_| anyhow!("the thread writing tar's names panicked"))?;
        let stats = merged?;
        written.context("writing the names to archive")?;
        // The rest is tar's record padding.
        io::copy(out, &mut io::sink()).context("reading the volume's archive")?;
        Ok(stats)
    })
}

/// Reads the listing: records up to the first empty one.
fn read_listing(out: &mut (dyn Read + Send)) -> Result<Vec<Listed>> {
    let mut listing = Vec::new();
    let mut record = Vec::new();
    let mut byte = [0u8; 1];
    loop {
        if out
            .read(&mut byte)
            .context("reading the volume's listing")?
            == 0
        {
            bail!("the volume's listing ended before its end mark");
        }
        if byte[0] != 0 {
            record.push(byte[0]);
            continue;
        }
        if record.is_empty() {
            return Ok(listing);
        }
        listing.push(parse_listed(&record)?);
        record.clear();
    }
}

/// `INODE NLINK SIZE MTIME CTIME TYPE PATH` (the path may hold spaces).
fn parse_listed(record: &[u8]) -> Result<Listed> {
    let shown = || String::from_utf8_lossy(record).into_owned();
    let mut fields = record.splitn(7, |&b| b == b' ');
    let mut next = || {
        fields
            .next()
            .ok_or_else(|| anyhow!("a line of the volume's listing is short: {}", shown()))
    };
    let number = |f: &[u8]| -> Result<u64> {
        std::str::from_utf8(f)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| anyhow!("a line of the volume's listing is malformed: {}", shown()))
    };
    let inode = number(next()?)?;
    let nlink = number(next()?)?;
    let size = number(next()?)?;
    let mtime = String::from_utf8_lossy(next()?).into_owned();
    let ctime = String::from_utf8_lossy(next()?).into_owned();
    let kind = match next()? {
        [k] => *k,
        _ => bail!("a line of the volume's listing is malformed: {}", shown()),
    };
    let path = next()?.to_vec();
    if !(path == b"." || path.starts_with(b"./")) {
        bail!("a line of the volume's listing is malformed: {}", shown());
    }
    Ok(Listed {
        path: path.clone(),
        kind,
        nlink,
        key: EntryKey {
            path,
            inode,
            size,
            mtime,
            ctime,
        },
    })
}

/// Walks the listing, taking each entry to read from the tar in turn.
fn merge(
    listing: &[Listed],
    known: &(dyn Fn(&EntryKey) -> bool + Sync),
    changing: bool,
    tar: &mut (dyn Read + Send),
    on_entry: &mut dyn FnMut(Entry<'_>) -> Result<()>,
) -> Result<ScanStats> {
    let mut stats = ScanStats::default();
    let mut next = next_entry(tar)?;
    for listed in listing.iter().filter(|l| l.archived()) {
        stats.entries += 1;
        if let Some(key) = listed.reusable().filter(|k| known(k)) {
            stats.unchanged += 1;
            stats.bytes_unchanged += key.size;
            on_entry(Entry::Unchanged(key))?;
            continue;
        }
        let Some((name, head, data)) = &mut next else {
            if changing {
                continue; // gone since it was listed
            }
            bail!(
                "{} is missing from the volume's archive",
                String::from_utf8_lossy(&listed.path)
            );
        };
        if name.as_slice() != trimmed(&listed.path) {
            if changing {
                continue; // gone since it was listed: tar skipped it
            }
            bail!(
                "the volume's archive holds {} where {} was listed",
                String::from_utf8_lossy(name),
                String::from_utf8_lossy(&listed.path)
            );
        }
        if listed.kind == b'f' {
            stats.bytes_read += listed.key.size;
        }
        {
            let mut bytes = io::Cursor::new(std::mem::take(head)).chain((&mut *tar).take(*data));
            on_entry(Entry::Read {
                key: listed.reusable(),
                bytes: &mut bytes,
            })?;
            // Whatever the consumer left is not the next entry's.
            io::copy(&mut bytes, &mut io::sink()).context("reading the volume's archive")?;
        }
        next = next_entry(tar)?;
    }
    if let Some((name, _, _)) = next {
        bail!(
            "the volume's archive holds {}, which was not asked for",
            String::from_utf8_lossy(&name)
        );
    }
    // The end of the archive, as a piece of its own (tar's record padding is not kept).
    on_entry(Entry::Read {
        key: None,
        bytes: &mut io::Cursor::new(vec![0u8; 2 * BLOCK_SIZE]),
    })?;
    Ok(stats)
}

/// A tar name as the listing has it: without the trailing `/` of a directory.
fn trimmed(name: &[u8]) -> &[u8] {
    match name {
        [rest @ .., b'/'] if !rest.is_empty() => trimmed(rest),
        _ => name,
    }
}

/// The next entry of the tar: its name, its header blocks (metadata records included), and
/// the bytes of data and padding that follow them. `None` at the end-of-archive block.
type Next = Option<(Vec<u8>, Vec<u8>, u64)>;

fn next_entry(tar: &mut (dyn Read + Send)) -> Result<Next> {
    let mut head = Vec::new();
    let mut long_name: Option<Vec<u8>> = None;
    loop {
        let mut block = [0u8; BLOCK_SIZE];
        tar.read_exact(&mut block)
            .context("reading the volume's archive (it ended early?)")?;
        let Some(header) = parse_header(&block).context("reading the volume's archive")? else {
            if !head.is_empty() {
                bail!("the volume's archive ends inside an entry's headers");
            }
            return Ok(None);
        };
        head.extend_from_slice(&block);
        let padded = header
            .padded_size()
            .ok_or_else(|| anyhow!("an entry of the volume's archive is too large"))?;
        if !header.is_metadata() {
            let name = long_name.unwrap_or_else(|| header.name.clone().into_bytes());
            return Ok(Some((trimmed(&name).to_vec(), head, padded)));
        }
        if padded > MAX_METADATA {
            bail!("an entry of the volume's archive has {padded} bytes of metadata");
        }
        let start = head.len();
        head.resize(start + padded as usize, 0);
        tar.read_exact(&mut head[start..])
            .context("reading the volume's archive")?;
        let data = &head[start..start + header.size as usize];
        match header.typeflag {
            b'L' => long_name = Some(data.split(|&b| b == 0).next().unwrap_or(data).to_vec()),
            b'x' => {
                if let Some(path) = pax_path(data) {
                    long_name = Some(path);
                }
            }
            _ => {}
        }
    }
}

/// The `path` record of a PAX header's data (`LEN path=VALUE\n` records).
fn pax_path(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut path = None;
    while !data.is_empty() {
        let space = data.iter().position(|&b| b == b' ')?;
        let len: usize = std::str::from_utf8(&data[..space]).ok()?.parse().ok()?;
        let record = data.get(space + 1..len)?;
        let record = record.strip_suffix(b"\n")?;
        if let Some(value) = record.strip_prefix(b"path=") {
            path = Some(value.to_vec());
        }
        data = &data[len..];
    }
    path
}

#[cfg(test)]
mod tests;
