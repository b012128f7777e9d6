//! Neo4j dump codec: recognises `neo4j-admin database dump` files, yields the tar inside, and re-encodes it.
//!
//! A dump is a compressed tar of the store files and transaction logs. Four outer formats exist:
//!
//! | format | bytes on disk | decompressed stream |
//! |---|---|---|
//! | [`DumpFormat::Dzv1Zstd`] (5.x, 2025.x) | `DZV1` + zstd frames | `zstd` + 20-byte header + tar |
//! | [`DumpFormat::LegacyZstd`] (4.x) | zstd frames | `zstd` + 20-byte header + tar |
//! | [`DumpFormat::Dgv1Gzip`] | `DGV1` + one gzip member | tar |
//! | [`DumpFormat::LegacyGzip`] | one gzip member | tar |
//!
//! The 20-byte header is big-endian: `i32` version (1), `i64` regular-file count, `i64` total
//! size of those files. rbk stores the tar (which deduplicates well between dumps) plus the
//! [`Envelope`] (format and the 24 header bytes) and on restore writes a new dump in the same
//! format whose decompressed stream is byte-identical to the original's. The compressed bytes
//! differ, which `neo4j-admin database load` does not care about.
//!
//! Neo4j writes one zstd frame; a dump of several (re-compressed, or with a skippable frame)
//! is read all the same, and written back as one. A stream that starts like a dump (a `DZV1`
//! or `DGV1` magic, or zstd content that starts with `zstd`) but is not one rbk can read is
//! [`Sniffed::Plain`] with the reason, for the caller to warn about.

mod frames;
mod reader;
mod stored;
mod writer;

#[cfg(test)]
mod tests;

pub use reader::{DumpReader, Replay};
pub use writer::{Compression, DumpBuilder, DumpWriter, build_dump};

use std::io::{self, BufRead, Read};

use super::tar::classify_store_prefix;

/// Magic of a zstd frame (RFC 8878), little-endian 0xFD2FB528.
pub const ZSTD_FRAME_MAGIC: [u8; 4] = [0x28, 0xB5, 0x2F, 0xFD];
/// Magic of a gzip member (RFC 1952).
pub const GZIP_MAGIC: [u8; 2] = [0x1F, 0x8B];
/// Length of the envelope header of zstd dumps: ASCII `zstd` plus the 20-byte header.
pub const ZSTD_HEADER_LEN: usize = 24;
/// Largest zstd window accepted or produced (2^27 = 128 MiB), zstd's and zstd-jni's default
/// decoder limit: a larger window could not be loaded by `neo4j-admin` anyway.
pub const MAX_WINDOW_LOG: u32 = 27;

/// Upper bound on the bytes [`sniff`] reads before deciding. A zstd frame header plus its first
/// full block (at most 128 KiB + 3 bytes compressed) always fit, so any intact dump is recognised.
const SNIFF_LIMIT: usize = 256 * 1024;
/// First read size of [`sniff`]; it doubles until a decision or [`SNIFF_LIMIT`].
const SNIFF_START: usize = 4 * 1024;
/// Decompressed bytes of a gzip dump examined for the first tar entries.
const GZIP_PEEK: usize = 64 * 1024;

/// The outer format of a dump. The numeric codes are stored on disk: never renumber.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DumpFormat {
    /// `DZV1` + zstd, written by Neo4j 5.x and 2025.x.
    Dzv1Zstd,
    /// Raw zstd frame, written by Neo4j 4.x.
    LegacyZstd,
    /// `DGV1` + gzip.
    Dgv1Gzip,
    /// Raw gzip, written by older Neo4j versions.
    LegacyGzip,
}

impl DumpFormat {
    /// Every format, in code order.
    pub const ALL: [DumpFormat; 4] = [
        DumpFormat::Dzv1Zstd,
        DumpFormat::LegacyZstd,
        DumpFormat::Dgv1Gzip,
        DumpFormat::LegacyGzip,
    ];

    /// Stable on-disk code.
    pub fn code(self) -> u8 {
        match self {
            DumpFormat::Dzv1Zstd => 1,
            DumpFormat::LegacyZstd => 2,
            DumpFormat::Dgv1Gzip => 3,
            DumpFormat::LegacyGzip => 4,
        }
    }

    /// Inverse of [`code`](Self::code); `None` for unknown codes (e.g. from a newer rbk).
    pub fn from_code(code: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.code() == code)
    }

    /// Short human-readable name, for logs and listings.
    pub fn name(self) -> &'static str {
        match self {
            DumpFormat::Dzv1Zstd => "neo4j-dump-dzv1-zstd",
            DumpFormat::LegacyZstd => "neo4j-dump-legacy-zstd",
            DumpFormat::Dgv1Gzip => "neo4j-dump-dgv1-gzip",
            DumpFormat::LegacyGzip => "neo4j-dump-legacy-gzip",
        }
    }

    /// The 4-byte magic written before the compressed stream, if the format has one.
    pub fn magic(self) -> Option<&'static [u8; 4]> {
        match self {
            DumpFormat::Dzv1Zstd => Some(b"DZV1"),
            DumpFormat::Dgv1Gzip => Some(b"DGV1"),
            DumpFormat::LegacyZstd | DumpFormat::LegacyGzip => None,
        }
    }

    /// Whether the compression layer is zstd (and the stream carries the 24-byte header).
    pub fn is_zstd(self) -> bool {
        matches!(self, DumpFormat::Dzv1Zstd | DumpFormat::LegacyZstd)
    }

    /// Compression level Neo4j itself uses: zstd-jni's default 3, `GZIPOutputStream`'s 6.
    pub fn default_level(self) -> i32 {
        if self.is_zstd() { 3 } else { 6 }
    }
}

/// What rbk must keep besides the inner tar to rebuild a dump.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    pub format: DumpFormat,
    /// `zstd` + the 20-byte header exactly as read; `None` for the gzip formats.
    pub header: Option<[u8; ZSTD_HEADER_LEN]>,
}

impl Envelope {
    /// Envelope for a new dump of `format` holding `file_count` regular files of `byte_count`
    /// bytes in all (the counts only matter for the zstd formats, which record them).
    pub fn new(format: DumpFormat, file_count: i64, byte_count: i64) -> Envelope {
        let header = format.is_zstd().then(|| {
            let mut h = [0u8; ZSTD_HEADER_LEN];
            h[..4].copy_from_slice(b"zstd");
            h[4..8].copy_from_slice(&1i32.to_be_bytes());
            h[8..16].copy_from_slice(&file_count.to_be_bytes());
            h[16..24].copy_from_slice(&byte_count.to_be_bytes());
            h
        });
        Envelope { format, header }
    }

    /// Header version (1 in every known Neo4j release).
    pub fn version(&self) -> Option<i32> {
        let h = self.header.as_ref()?;
        h.get(4..8)?.try_into().ok().map(i32::from_be_bytes)
    }

    /// Number of regular files in the tar, as recorded by Neo4j.
    pub fn file_count(&self) -> Option<i64> {
        self.header_i64(8)
    }

    /// Total size of the regular files in the tar, as recorded by Neo4j.
    pub fn byte_count(&self) -> Option<i64> {
        self.header_i64(16)
    }

    fn header_i64(&self, at: usize) -> Option<i64> {
        let h = self.header.as_ref()?;
        h.get(at..at + 8)?.try_into().ok().map(i64::from_be_bytes)
    }

    /// Whether the header is one Neo4j would accept: `zstd`, version 1, counts not negative.
    fn header_is_plausible(&self) -> bool {
        self.header.is_some_and(|h| h.starts_with(b"zstd"))
            && self.version() == Some(1)
            && self.file_count().is_some_and(|n| n >= 0)
            && self.byte_count().is_some_and(|n| n >= 0)
    }
}

/// Result of [`sniff`].
pub enum Sniffed<R: Read> {
    /// A Neo4j dump: `inner` yields its tar.
    Dump {
        envelope: Envelope,
        inner: DumpReader<R>,
    },
    /// Anything else: `replay` yields every byte from the start. `unrecognised` says why a
    /// stream that starts like a dump (a `DZV1` or `DGV1` magic, or zstd content starting
    /// with `zstd`) was not taken for one; `None` for anything else (text, a SQL dump, an
    /// ordinary `.gz` or `.zst` file).
    Plain {
        replay: Replay<R>,
        unrecognised: Option<String>,
    },
}

/// A dump [`sniff`] recognised that turned out damaged further on (corrupt compressed data,
/// cut short, bytes after its end). [`DumpReader`] returns it inside its `io::Error`s, so a
/// caller can tell a damaged dump from a failing input.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct DamagedDump(pub String);

/// Decides whether a stream is a Neo4j dump, reading at most 256 KiB of it.
///
/// The magic alone is not enough: for zstd the decompressed stream must start with `zstd` and
/// a version-1 header with non-negative counts, for gzip it must start with a tar whose first
/// file has a Neo4j store name. Anything else (including inputs too short or corrupt within the
/// examined prefix) is [`Sniffed::Plain`] and replayed byte for byte, so this works on
/// unseekable input such as stdin. Only a failing read of `r` is an error.
pub fn sniff<R: Read>(mut r: R) -> io::Result<Sniffed<R>> {
    let mut prefix = Vec::new();
    let mut target = SNIFF_START;
    loop {
        let eof = fill(&mut r, &mut prefix, target)?;
        let verdict = classify(&prefix, eof);
        let unrecognised = match verdict {
            Verdict::Dump(envelope) => {
                let magic_len = envelope.format.magic().map_or(0, |m| m.len());
                let inner = DumpReader::new(Replay::new(prefix, magic_len, r), envelope.format)?;
                return Ok(Sniffed::Dump { envelope, inner });
            }
            Verdict::NeedMore if !eof && prefix.len() < SNIFF_LIMIT => {
                target = (target * 2).min(SNIFF_LIMIT);
                continue;
            }
            Verdict::NeedMore => dump_magic(&prefix).map(|m| {
                format!(
                    "it starts with the Neo4j dump magic {m} but {} before a dump header could be read",
                    if eof {
                        "ends"
                    } else {
                        "its first 256 KiB do not decode"
                    }
                )
            }),
            Verdict::Plain(why) => why,
        };
        return Ok(Sniffed::Plain {
            replay: Replay::new(prefix, 0, r),
            unrecognised,
        });
    }
}

/// Sniffs `r` and fails with `InvalidData` unless it is a Neo4j dump.
pub fn open_dump<R: Read>(r: R) -> io::Result<(Envelope, DumpReader<R>)> {
    match sniff(r)? {
        Sniffed::Dump { envelope, inner } => Ok((envelope, inner)),
        Sniffed::Plain { unrecognised, .. } => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            match unrecognised {
                Some(why) => format!("not a Neo4j dump rbk can read: {why}"),
                None => "not a Neo4j dump (no DZV1/DGV1/zstd/gzip dump layout found)".into(),
            },
        )),
    }
}

/// Reads from `r` until `buf` holds `target` bytes; returns true at end of input.
fn fill<R: Read>(r: &mut R, buf: &mut Vec<u8>, target: usize) -> io::Result<bool> {
    let mut chunk = [0u8; 8192];
    while buf.len() < target {
        let want = (target - buf.len()).min(chunk.len());
        match r.read(&mut chunk[..want]) {
            Ok(0) => return Ok(true),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(false)
}

enum Verdict {
    Dump(Envelope),
    /// Not a dump; why, if it looked like one.
    Plain(Option<String>),
    /// The prefix ended before a decision could be made.
    NeedMore,
}

/// `DZV1` or `DGV1` when `prefix` starts with one: a file that does is meant to be a dump.
fn dump_magic(prefix: &[u8]) -> Option<&'static str> {
    ["DZV1", "DGV1"]
        .into_iter()
        .find(|m| prefix.starts_with(m.as_bytes()))
}

fn classify(prefix: &[u8], eof: bool) -> Verdict {
    let (format, body) = match prefix {
        [b'D', b'Z', b'V', b'1', rest @ ..] => (DumpFormat::Dzv1Zstd, rest),
        [b'D', b'G', b'V', b'1', rest @ ..] => (DumpFormat::Dgv1Gzip, rest),
        // A zstd data frame, or a skippable frame before one.
        [a, b, c, d, ..] if frames::is_frame_magic([*a, *b, *c, *d]) => {
            (DumpFormat::LegacyZstd, prefix)
        }
        [0x1F, 0x8B, ..] => (DumpFormat::LegacyGzip, prefix),
        // Could still become `DZV1`, `DGV1` or the zstd magic once more bytes arrive.
        _ if prefix.len() < 4 => return Verdict::NeedMore,
        _ => return Verdict::Plain(None),
    };
    if format.is_zstd() {
        classify_zstd(format, body, eof)
    } else {
        classify_gzip(format, body)
    }
}

/// The examined prefix as a `BufRead` whose end is "not yet" (`WouldBlock`) unless it is the
/// end of the input, so that the frame decoder tells a short prefix from a short stream.
struct Prefix<'a> {
    data: &'a [u8],
    eof: bool,
}

impl Read for Prefix<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = {
            let available = self.fill_buf()?;
            let n = available.len().min(buf.len());
            buf[..n].copy_from_slice(&available[..n]);
            n
        };
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for Prefix<'_> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.data.is_empty() && !self.eof {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        Ok(self.data)
    }

    fn consume(&mut self, n: usize) {
        self.data = &self.data[n.min(self.data.len())..];
    }
}

/// Decodes the start of the zstd frames and checks for the `zstd` + version-1 header.
fn classify_zstd(format: DumpFormat, body: &[u8], eof: bool) -> Verdict {
    // Only a file with the DZV1 magic, or zstd content that starts with `zstd`, is meant to
    // be a dump: an ordinary `.zst` file that is not one deserves no warning.
    let meant = format.magic().is_some();
    let why = |what: String| Verdict::Plain(meant.then_some(what));
    let mut decoder = match frames::ZstdFrames::new(Prefix { data: body, eof }) {
        Ok(d) => d,
        Err(e) => return why(format!("rbk cannot decode it ({e})")),
    };
    let mut header = [0u8; ZSTD_HEADER_LEN];
    let mut got = 0;
    while got < header.len() {
        match decoder.read(&mut header[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Verdict::NeedMore,
            Err(e) => {
                return why(format!(
                    "it starts with the Neo4j dump magic DZV1 but what follows is not a zstd stream rbk can read ({e})"
                ));
            }
        }
    }
    if got < header.len() {
        return why(format!(
            "it starts with the Neo4j dump magic DZV1 but its zstd stream holds only {got} bytes, no dump header"
        ));
    }
    let envelope = Envelope {
        format,
        header: Some(header),
    };
    if envelope.header_is_plausible() {
        return Verdict::Dump(envelope);
    }
    if meant || header.starts_with(b"zstd") {
        return Verdict::Plain(Some(format!(
            "it starts like a Neo4j dump but its header is not one Neo4j writes (it begins {:?}, version {}, {} files, {} bytes)",
            String::from_utf8_lossy(&header[..4]),
            envelope.version().unwrap_or_default(),
            envelope.file_count().unwrap_or_default(),
            envelope.byte_count().unwrap_or_default(),
        )));
    }
    Verdict::Plain(None)
}

/// Decodes the start of a gzip member and checks that it is a tar of Neo4j store files.
fn classify_gzip(format: DumpFormat, body: &[u8]) -> Verdict {
    let meant = format.magic().is_some();
    let mut decoder = flate2::bufread::GzDecoder::new(body);
    let mut peek = vec![0u8; GZIP_PEEK];
    let n = read_up_to(&mut decoder, &mut peek);
    match classify_store_prefix(&peek[..n]) {
        Some(true) => Verdict::Dump(Envelope {
            format,
            header: None,
        }),
        Some(false) => Verdict::Plain(meant.then(|| {
            "it starts with the Neo4j dump magic DGV1 but its gzip stream holds no Neo4j store files".to_string()
        })),
        None if n == GZIP_PEEK => Verdict::Plain(meant.then(|| {
            "it starts with the Neo4j dump magic DGV1 but its gzip stream does not start with a tar of Neo4j store files".to_string()
        })),
        None => Verdict::NeedMore,
    }
}

/// Reads until `buf` is full, the stream ends or fails; returns the bytes read. Errors are
/// deliberately dropped: at sniff time a decoding error just means "not (yet) a dump".
fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> usize {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    got
}
