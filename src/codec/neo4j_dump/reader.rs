//! Reading side of the dump codec: the prefix-replaying source and the decoder that yields a dump's tar.

use std::io::{self, BufRead, BufReader, Read};

use super::frames::ZstdFrames;
use super::{DamagedDump, DumpFormat, ZSTD_HEADER_LEN};

/// A reader that first returns bytes already consumed by [`sniff`](super::sniff), then the
/// rest of the original stream, so that sniffing an unseekable input loses nothing.
pub struct Replay<R> {
    prefix: Vec<u8>,
    pos: usize,
    inner: R,
    /// Set when `inner` itself failed, so that [`DumpReader`] passes such errors through
    /// instead of blaming the compressed data.
    inner_failed: bool,
}

impl<R> Replay<R> {
    /// Replays `prefix[pos..]`, then `inner`.
    pub(super) fn new(prefix: Vec<u8>, pos: usize, inner: R) -> Self {
        Replay {
            prefix,
            pos,
            inner,
            inner_failed: false,
        }
    }

    /// The buffered bytes not yet replayed.
    pub fn buffered(&self) -> &[u8] {
        self.prefix.get(self.pos..).unwrap_or(&[])
    }

    /// The buffered bytes not yet replayed, and the original reader positioned after them.
    pub fn into_parts(mut self) -> (Vec<u8>, R) {
        let rest = self.prefix.split_off(self.pos.min(self.prefix.len()));
        (rest, self.inner)
    }
}

impl<R: Read> Read for Replay<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let buffered = self.buffered();
        if !buffered.is_empty() {
            let n = buffered.len().min(buf.len());
            buf[..n].copy_from_slice(&buffered[..n]);
            self.pos += n;
            if self.pos >= self.prefix.len() {
                // Free the up to 256 KiB prefix as soon as it has been replayed.
                self.prefix = Vec::new();
                self.pos = 0;
            }
            return Ok(n);
        }
        self.inner.read(buf).inspect_err(|e| {
            if e.kind() != io::ErrorKind::Interrupted {
                self.inner_failed = true;
            }
        })
    }
}

/// Buffer between the source and the decompressor.
const READ_BUFFER: usize = 64 * 1024;

type Source<R> = BufReader<Replay<R>>;

enum Decoder<R: Read> {
    Zstd(ZstdFrames<Source<R>>),
    Gzip(flate2::bufread::GzDecoder<Source<R>>),
}

/// Yields the tar inside a dump (after the 24-byte envelope header of zstd dumps).
///
/// A zstd dump may hold several frames, decoded one after another, and skippable frames
/// anywhere between them (`frames.rs`); a gzip dump holds the one member Neo4j writes.
/// Fails with `InvalidData` on corrupt compressed data, on data after the last zstd frame or
/// the gzip member, and on a zstd window over 2^27; with `UnexpectedEof` when the dump is cut
/// short. Those errors carry a [`DamagedDump`]; errors of the underlying reader are passed
/// through unchanged. Memory use is bounded by the zstd window (at most 128 MiB, 2 MiB in
/// dumps Neo4j writes) plus buffers.
pub struct DumpReader<R: Read> {
    format: DumpFormat,
    /// Boxed because the decoders' state is large and `Sniffed` moves readers around by value.
    decoder: Box<Decoder<R>>,
    /// Envelope-header bytes still to discard before the tar starts.
    header_left: usize,
    finished: bool,
}

impl<R: Read> DumpReader<R> {
    /// Decodes `source`, which must be positioned at the compressed stream (after any magic).
    pub(super) fn new(source: Replay<R>, format: DumpFormat) -> io::Result<Self> {
        let source = BufReader::with_capacity(READ_BUFFER, source);
        let (decoder, header_left) = if format.is_zstd() {
            (Decoder::Zstd(ZstdFrames::new(source)?), ZSTD_HEADER_LEN)
        } else {
            (Decoder::Gzip(flate2::bufread::GzDecoder::new(source)), 0)
        };
        Ok(DumpReader {
            format,
            decoder: Box::new(decoder),
            header_left,
            finished: false,
        })
    }

    /// The dump's outer format.
    pub fn format(&self) -> DumpFormat {
        self.format
    }

    fn source(&mut self) -> &mut Source<R> {
        match &mut *self.decoder {
            Decoder::Zstd(d) => d.get_mut(),
            Decoder::Gzip(d) => d.get_mut(),
        }
    }

    fn decode(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let result = match &mut *self.decoder {
            Decoder::Zstd(d) => d.read(buf),
            Decoder::Gzip(d) => d.read(buf),
        };
        result.map_err(|e| self.explain(e))
    }

    /// Turns a decoder error into one that says what is wrong with the dump, unless it is the
    /// underlying reader's own error.
    fn explain(&mut self, e: io::Error) -> io::Error {
        if self.source().get_ref().inner_failed || e.kind() == io::ErrorKind::Interrupted {
            return e;
        }
        let zstd = self.format.is_zstd();
        let codec = if zstd { "zstd" } else { "gzip" };
        let name = self.format.name();
        match e.kind() {
            io::ErrorKind::UnexpectedEof => damaged(
                io::ErrorKind::UnexpectedEof,
                format!("{name}: truncated, the {codec} stream ends early ({e})"),
            ),
            // The frame decoder's own sentences (bytes that start no frame).
            io::ErrorKind::InvalidData if zstd => {
                damaged(io::ErrorKind::InvalidData, format!("{name}: {e}"))
            }
            _ => damaged(
                io::ErrorKind::InvalidData,
                format!("{name}: corrupt {codec} stream: {e}"),
            ),
        }
    }

    /// After the gzip member ended: anything left in the source is an error (the zstd frame
    /// decoder tells trailing bytes from another frame itself).
    fn check_trailing(&mut self) -> io::Result<()> {
        if self.format.is_zstd() {
            return Ok(());
        }
        let name = self.format.name();
        let left = loop {
            match self.source().fill_buf() {
                Ok(rest) => break rest.len(),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        };
        if left > 0 {
            return Err(damaged(
                io::ErrorKind::InvalidData,
                format!("{name}: unexpected data after the end of the compressed stream"),
            ));
        }
        Ok(())
    }

    /// Discards the envelope header (already parsed by `sniff`) before the first tar byte.
    fn skip_header(&mut self) -> io::Result<()> {
        let mut scratch = [0u8; ZSTD_HEADER_LEN];
        while self.header_left > 0 {
            let want = self.header_left;
            match self.decode(&mut scratch[..want]) {
                Ok(0) => {
                    return Err(damaged(
                        io::ErrorKind::UnexpectedEof,
                        format!("{}: stream ends inside its header", self.format.name()),
                    ));
                }
                Ok(n) => self.header_left -= n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

impl<R: Read> Read for DumpReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() || self.finished {
            return Ok(0);
        }
        self.skip_header()?;
        let n = self.decode(buf)?;
        if n == 0 {
            self.check_trailing()?;
            self.finished = true;
        }
        Ok(n)
    }
}

fn damaged(kind: io::ErrorKind, message: String) -> io::Error {
    io::Error::new(kind, DamagedDump(message))
}
