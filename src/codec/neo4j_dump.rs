//! Neo4j dump codec: recognises `neo4j-admin database dump` files, yields the tar inside, and re-encodes it.
//!
//! A dump is a compressed tar of the store files and transaction logs. Four outer formats exist:
//!
//! | format | bytes on disk | decompressed stream |
//! |---|---|---|
//! | [`DumpFormat::Dzv1Zstd`] (5.x, 2025.x) | `DZV1` + one zstd frame | `zstd` + 20-byte header + tar |
//! | [`DumpFormat::LegacyZstd`] (4.x) | one zstd frame | `zstd` + 20-byte header + tar |
//! | [`DumpFormat::Dgv1Gzip`] | `DGV1` + one gzip member | tar |
//! | [`DumpFormat::LegacyGzip`] | one gzip member | tar |
//!
//! The 20-byte header is big-endian: `i32` version (1), `i64` regular-file count, `i64` total
//! size of those files. rbk stores the tar (which deduplicates well between dumps) plus the
//! [`Envelope`] (format and the 24 header bytes) and on restore writes a new dump in the same
//! format whose decompressed stream is byte-identical to the original's. The compressed bytes
//! differ, which `neo4j-admin database load` does not care about.

mod reader;
mod writer;

#[cfg(test)]
mod tests;

pub use reader::{DumpReader, Replay};
pub use writer::{DumpBuilder, DumpWriter, build_dump};

use std::io::{self, Read};

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
    /// Anything else: the reader replays every byte from the start.
    Plain(Replay<R>),
}

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
        match classify(&prefix) {
            Verdict::Dump(envelope) => {
                let magic_len = envelope.format.magic().map_or(0, |m| m.len());
                let inner = DumpReader::new(Replay::new(prefix, magic_len, r), envelope.format)?;
                return Ok(Sniffed::Dump { envelope, inner });
            }
            Verdict::NeedMore if !eof && prefix.len() < SNIFF_LIMIT => {
                target = (target * 2).min(SNIFF_LIMIT);
            }
            Verdict::NeedMore | Verdict::Plain => {
                return Ok(Sniffed::Plain(Replay::new(prefix, 0, r)));
            }
        }
    }
}

/// Sniffs `r` and fails with `InvalidData` unless it is a Neo4j dump.
pub fn open_dump<R: Read>(r: R) -> io::Result<(Envelope, DumpReader<R>)> {
    match sniff(r)? {
        Sniffed::Dump { envelope, inner } => Ok((envelope, inner)),
        Sniffed::Plain(_) => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "not a Neo4j dump (no DZV1/DGV1/zstd/gzip dump layout found)",
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
    Plain,
    /// The prefix ended before a decision could be made.
    NeedMore,
}

fn classify(prefix: &[u8]) -> Verdict {
    let (format, body) = match prefix {
        [b'D', b'Z', b'V', b'1', rest @ ..] => (DumpFormat::Dzv1Zstd, rest),
        [b'D', b'G', b'V', b'1', rest @ ..] => (DumpFormat::Dgv1Gzip, rest),
        [0x28, 0xB5, 0x2F, 0xFD, ..] => (DumpFormat::LegacyZstd, prefix),
        [0x1F, 0x8B, ..] => (DumpFormat::LegacyGzip, prefix),
        // Could still become `DZV1`, `DGV1` or the zstd magic once more bytes arrive.
        _ if prefix.len() < 4 => return Verdict::NeedMore,
        _ => return Verdict::Plain,
    };
    if format.is_zstd() {
        classify_zstd(format, body)
    } else {
        classify_gzip(format, body)
    }
}

/// Decodes the start of a zstd frame and checks for the `zstd` + version-1 header.
fn classify_zstd(format: DumpFormat, body: &[u8]) -> Verdict {
    let Ok(mut decoder) = zstd::stream::read::Decoder::with_buffer(body) else {
        return Verdict::Plain;
    };
    if decoder.window_log_max(MAX_WINDOW_LOG).is_err() {
        return Verdict::Plain;
    }
    let mut header = [0u8; ZSTD_HEADER_LEN];
    if read_up_to(&mut decoder.single_frame(), &mut header) < ZSTD_HEADER_LEN {
        // Truncated prefix, corrupt data or a genuinely short file: more input can only help
        // the first; the others stay undecided until the limit and end up Plain.
        return Verdict::NeedMore;
    }
    let envelope = Envelope {
        format,
        header: Some(header),
    };
    if envelope.header_is_plausible() {
        Verdict::Dump(envelope)
    } else {
        Verdict::Plain
    }
}

/// Decodes the start of a gzip member and checks that it is a tar of Neo4j store files.
fn classify_gzip(format: DumpFormat, body: &[u8]) -> Verdict {
    let mut decoder = flate2::bufread::GzDecoder::new(body);
    let mut peek = vec![0u8; GZIP_PEEK];
    let n = read_up_to(&mut decoder, &mut peek);
    match classify_store_prefix(&peek[..n]) {
        Some(true) => Verdict::Dump(Envelope {
            format,
            header: None,
        }),
        Some(false) => Verdict::Plain,
        None if n == GZIP_PEEK => Verdict::Plain,
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
