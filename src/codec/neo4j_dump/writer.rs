//! Writing side of the dump codec: re-encoding a stored tar as a dump, and generating test dumps.

use std::io::{self, Read, Write};

use super::super::tar::TarBuilder;
use super::stored::StoredFrame;
use super::{DumpFormat, Envelope};

enum Encoder<W: Write> {
    Zstd(zstd::stream::write::Encoder<'static, W>),
    Stored(StoredFrame<W>),
    Gzip(flate2::write::GzEncoder<W>),
}

/// How a [`DumpWriter`] compresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// The codec's own level, clamped to its range: zstd's (3 is what Neo4j uses; every zstd
    /// level keeps the window at or under 2^27, the limit decoders accept by default) or
    /// gzip's 0..=9.
    Level(i32),
    /// Not at all, at the speed of a copy: zstd formats get one frame of raw blocks
    /// (`stored.rs`), gzip formats level 0.
    Stored,
}

/// Writes a dump: the format's magic, then one compressed stream holding the envelope header
/// (zstd formats) and the tar bytes written to it.
///
/// Call [`finish`](Self::finish): dropping the writer leaves the stream unterminated.
pub struct DumpWriter<W: Write> {
    encoder: Encoder<W>,
}

impl<W: Write> DumpWriter<W> {
    /// Starts a dump in `envelope.format`, writing its magic and, for zstd, its header.
    ///
    /// A zstd frame carries a content checksum, like Neo4j's. Fails with `InvalidInput` if the
    /// envelope's header does not match its format.
    pub fn new(mut w: W, envelope: &Envelope, compression: Compression) -> io::Result<Self> {
        let format = envelope.format;
        let header = match (format.is_zstd(), envelope.header) {
            (true, Some(h)) => Some(h),
            (false, None) => None,
            _ => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "envelope for {} must {}have a zstd header",
                        format.name(),
                        if format.is_zstd() { "" } else { "not " }
                    ),
                ));
            }
        };
        if let Some(magic) = format.magic() {
            w.write_all(magic)?;
        }
        let encoder = match (format.is_zstd(), compression) {
            (true, Compression::Stored) => Encoder::Stored(StoredFrame::new(w)?),
            (true, Compression::Level(level)) => {
                let range = zstd::compression_level_range();
                let level = level.clamp(*range.start(), *range.end());
                let mut e = zstd::stream::write::Encoder::new(w, level)?;
                e.include_checksum(true)?;
                Encoder::Zstd(e)
            }
            (false, compression) => {
                let level = match compression {
                    Compression::Level(level) => level.clamp(0, 9) as u32,
                    Compression::Stored => 0,
                };
                Encoder::Gzip(flate2::write::GzEncoder::new(
                    w,
                    flate2::Compression::new(level),
                ))
            }
        };
        let mut writer = DumpWriter { encoder };
        if let Some(h) = header {
            writer.write_all(&h)?;
        }
        Ok(writer)
    }

    /// Ends the compressed stream (nothing is written after it) and returns the flushed writer.
    pub fn finish(self) -> io::Result<W> {
        let mut w = match self.encoder {
            Encoder::Zstd(e) => e.finish()?,
            Encoder::Stored(e) => e.finish()?,
            Encoder::Gzip(e) => e.finish()?,
        };
        w.flush()?;
        Ok(w)
    }
}

impl<W: Write> Write for DumpWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.encoder {
            Encoder::Zstd(e) => e.write(buf),
            Encoder::Stored(e) => e.write(buf),
            Encoder::Gzip(e) => e.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.encoder {
            Encoder::Zstd(e) => e.flush(),
            Encoder::Stored(e) => e.flush(),
            Encoder::Gzip(e) => e.flush(),
        }
    }
}

/// Streams a Neo4j-like dump entry by entry, for generated stores of any size.
///
/// The zstd header needs the file count and byte count before the first file, so the caller
/// declares them; [`finish`](Self::finish) checks them against what was appended.
pub struct DumpBuilder<W: Write> {
    tar: TarBuilder<DumpWriter<W>>,
    format: DumpFormat,
    declared: (i64, i64),
}

impl<W: Write> DumpBuilder<W> {
    /// Starts a dump that will hold `file_count` regular files of `byte_count` bytes in all.
    pub fn new(
        w: W,
        format: DumpFormat,
        file_count: i64,
        byte_count: i64,
        level: i32,
    ) -> io::Result<Self> {
        let envelope = Envelope::new(format, file_count, byte_count);
        Ok(DumpBuilder {
            tar: TarBuilder::new(DumpWriter::new(w, &envelope, Compression::Level(level))?),
            format,
            declared: (file_count, byte_count),
        })
    }

    /// Appends a regular file of exactly `size` bytes read from `data`.
    pub fn append_file(&mut self, name: &str, size: u64, data: impl Read) -> io::Result<()> {
        self.tar.append(name, size, data)
    }

    /// Appends a directory entry (real dumps start with `./`).
    pub fn append_dir(&mut self, name: &str) -> io::Result<()> {
        self.tar.append_dir(name)
    }

    /// Ends the tar and the compressed stream. For zstd formats, fails with `InvalidInput` if
    /// the declared counts were wrong (the dump is written all the same, since the header went
    /// out first).
    pub fn finish(self) -> io::Result<W> {
        let (files, bytes) = self.tar.counts();
        let w = self.tar.finish()?.finish()?;
        let actual = (
            i64::try_from(files).unwrap_or(i64::MAX),
            i64::try_from(bytes).unwrap_or(i64::MAX),
        );
        if self.format.is_zstd() && actual != self.declared {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "dump header declared {} files / {} bytes but {} / {} were written",
                    self.declared.0, self.declared.1, actual.0, actual.1
                ),
            ));
        }
        Ok(w)
    }
}

/// Writes a complete dump of in-memory files at the format's default level. Names ending in
/// `/` with no data become directory entries; the header counts the other entries.
pub fn build_dump<W: Write>(
    w: W,
    format: DumpFormat,
    files: impl IntoIterator<Item = (String, Vec<u8>)>,
) -> io::Result<W> {
    let files: Vec<(String, Vec<u8>)> = files.into_iter().collect();
    let is_dir = |(name, data): &(String, Vec<u8>)| name.ends_with('/') && data.is_empty();
    let regular = files.iter().filter(|f| !is_dir(f));
    let count = regular.clone().count();
    let bytes: usize = regular.map(|(_, d)| d.len()).sum();
    let mut builder = DumpBuilder::new(
        w,
        format,
        i64::try_from(count).unwrap_or(i64::MAX),
        i64::try_from(bytes).unwrap_or(i64::MAX),
        format.default_level(),
    )?;
    for file in &files {
        if is_dir(file) {
            builder.append_dir(&file.0)?;
        } else {
            builder.append_file(&file.0, file.1.len() as u64, &file.1[..])?;
        }
    }
    builder.finish()
}
