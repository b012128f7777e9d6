//! zstd frames one after another (RFC 8878, section 3.1): data frames, skippable frames between them, and nothing after the last.
//!
//! Neo4j writes one frame, but a dump re-compressed by a tool that writes several (frames
//! concatenated by `cat`, `pzstd`'s independent frames each behind a skippable frame, a
//! trailing skippable frame of metadata) is just as valid: zstd's streaming decoder, which
//! `neo4j-admin` reads with through zstd-jni, decodes the data frames in order and skips the
//! skippable ones. This decoder does the same, frame by frame, so that it can tell the end
//! of the last frame from bytes that belong to no frame.

use std::io::{self, BufRead, Read};

use zstd::stream::raw::{Decoder, InBuffer, Operation, OutBuffer};
use zstd::zstd_safe::DParameter;

use super::MAX_WINDOW_LOG;

/// Magic of a zstd data frame, little-endian on disk (`28 B5 2F FD`).
const FRAME_MAGIC: u32 = 0xFD2F_B528;
/// Skippable frames have magics `0x184D2A50` to `0x184D2A5F`, then a 4-byte length.
const SKIPPABLE_MAGIC: u32 = 0x184D_2A50;
const SKIPPABLE_MASK: u32 = 0xFFFF_FFF0;

/// Whether `magic` (the first 4 bytes of a stream) opens a zstd data or skippable frame.
pub(super) fn is_frame_magic(magic: [u8; 4]) -> bool {
    let m = u32::from_le_bytes(magic);
    m == FRAME_MAGIC || m & SKIPPABLE_MASK == SKIPPABLE_MAGIC
}

enum State {
    /// At a frame boundary (or the start): the next 4 bytes say what follows.
    Between,
    /// Inside a data frame.
    InFrame,
    /// Inside a skippable frame, with this many bytes of it left.
    Skipping(u64),
    /// The last frame ended where the input did.
    Done,
}

/// Decodes the data frames of `source` in order, skipping skippable frames.
///
/// Errors: `UnexpectedEof` when the input ends inside a frame (or before any); `InvalidData`
/// with a sentence of its own for bytes that start no frame (after the last one: "unexpected
/// data after the end of the compressed stream"); zstd's own errors (kind `Other`) for a
/// corrupt frame or a window over 2^[`MAX_WINDOW_LOG`]. Errors of `source` are passed
/// through unchanged (including `WouldBlock`, which the sniffer's prefix uses for "not yet").
pub struct ZstdFrames<B> {
    source: B,
    decoder: Decoder<'static>,
    state: State,
    /// Data frames begun so far.
    frames: u64,
}

impl<B: BufRead> ZstdFrames<B> {
    pub fn new(source: B) -> io::Result<ZstdFrames<B>> {
        let mut decoder = Decoder::new()?;
        decoder.set_parameter(DParameter::WindowLogMax(MAX_WINDOW_LOG))?;
        Ok(ZstdFrames {
            source,
            decoder,
            state: State::Between,
            frames: 0,
        })
    }

    pub fn get_mut(&mut self) -> &mut B {
        &mut self.source
    }

    /// Reads up to `buf.len()` bytes of the source (fewer only at its end).
    fn take(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut got = 0;
        while got < buf.len() {
            let available = self.source.fill_buf()?;
            if available.is_empty() {
                break;
            }
            let n = available.len().min(buf.len() - got);
            buf[got..got + n].copy_from_slice(&available[..n]);
            self.source.consume(n);
            got += n;
        }
        Ok(got)
    }

    /// At a boundary: reads the next magic and enters the frame it opens, or ends.
    fn next_frame(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut magic = [0u8; 4];
        match self.take(&mut magic)? {
            0 if self.frames > 0 => {
                self.state = State::Done;
                return Ok(0);
            }
            0 => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the stream ends before its first zstd frame",
                ));
            }
            4 => {}
            _ => return Err(self.stray()),
        }
        let m = u32::from_le_bytes(magic);
        if m == FRAME_MAGIC {
            if self.frames > 0 {
                self.decoder.reinit()?;
            }
            self.frames += 1;
            self.state = State::InFrame;
            // The magic was taken off the source: zstd must see it first. It keeps header
            // bytes until it has the whole header, so all 4 are consumed here.
            let mut src = InBuffer::around(&magic);
            let mut dst = OutBuffer::around(buf);
            while src.pos() < magic.len() {
                let before = src.pos();
                self.decoder.run(&mut src, &mut dst)?;
                if src.pos() == before {
                    return Err(io::Error::other("zstd did not take a frame's magic"));
                }
            }
            return Ok(dst.pos());
        }
        if m & SKIPPABLE_MASK == SKIPPABLE_MAGIC {
            let mut len = [0u8; 4];
            if self.take(&mut len)? < len.len() {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the stream ends inside a skippable frame's header",
                ));
            }
            self.state = State::Skipping(u64::from(u32::from_le_bytes(len)));
            return Ok(0);
        }
        Err(self.stray())
    }

    fn stray(&self) -> io::Error {
        let what = if self.frames > 0 {
            "unexpected data after the end of the compressed stream (not a zstd frame)"
        } else {
            "not a zstd frame"
        };
        io::Error::new(io::ErrorKind::InvalidData, what)
    }

    fn skip(&mut self, left: u64) -> io::Result<()> {
        let available = self.source.fill_buf()?;
        if available.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the stream ends inside a skippable frame",
            ));
        }
        let n = usize::try_from(left)
            .unwrap_or(usize::MAX)
            .min(available.len());
        self.source.consume(n);
        let left = left - n as u64;
        self.state = if left == 0 {
            State::Between
        } else {
            State::Skipping(left)
        };
        Ok(())
    }

    /// Decodes from inside a data frame; 0 bytes when the frame ended without output.
    fn decode(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let input = self.source.fill_buf()?;
        let end = input.is_empty();
        let mut src = InBuffer::around(input);
        let mut dst = OutBuffer::around(buf);
        let hint = self.decoder.run(&mut src, &mut dst)?;
        let (read, written) = (src.pos(), dst.pos());
        self.source.consume(read);
        if hint == 0 {
            self.state = State::Between;
        } else if written == 0 && (end || read == 0) {
            return Err(if end {
                io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the stream ends inside a zstd frame",
                )
            } else {
                io::Error::other("zstd made no progress")
            });
        }
        Ok(written)
    }
}

impl<B: BufRead> Read for ZstdFrames<B> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            let n = match self.state {
                State::Done => return Ok(0),
                State::Between => self.next_frame(buf)?,
                State::Skipping(left) => {
                    self.skip(left)?;
                    0
                }
                State::InFrame => self.decode(buf)?,
            };
            if n > 0 {
                return Ok(n);
            }
        }
    }
}
