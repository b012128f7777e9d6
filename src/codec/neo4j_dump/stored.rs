//! A zstd frame of raw blocks: the re-encoding of a restored dump, at the speed of a copy.
//!
//! A restored dump is read once by `neo4j-admin database load`, in a stack restore straight
//! from a pipe while the stack is down: its writing speed is downtime and its size costs
//! nothing. Even at its fastest level (-1000) zstd's compressor still looks for matches, and
//! that search cost the dump restore about 15% against the same store restored as a tar. The
//! zstd format (RFC 8878) has a block type for bytes stored as they are, so this writer emits
//! what any zstd decoder reads: one frame, raw blocks of at most 128 KiB, a window of 128 KiB
//! (far under the 2^27 that decoders accept by default) and the content checksum (XXH64's low
//! 32 bits), as Neo4j's own dumps carry one.

use std::io::{self, Write};

use xxhash_rust::xxh64::Xxh64;

/// The zstd frame magic number, little-endian on the wire.
const MAGIC: u32 = 0xFD2F_B528;
/// Frame header descriptor: content checksum (bit 2); no content size (the stream's length is
/// not known up front), not a single segment (so a window descriptor follows), no dictionary.
const DESCRIPTOR: u8 = 0b0000_0100;
/// Window descriptor: exponent 7, mantissa 0, i.e. 2^(10+7) = 128 KiB.
const WINDOW: u8 = 7 << 3;
/// The largest block the format allows (Block_Maximum_Size with a 128 KiB window).
pub(super) const BLOCK: usize = 128 * 1024;
/// The three-byte header in front of each block.
const BLOCK_HEADER: usize = 3;

/// Writes one zstd frame of raw blocks to `W`. Call [`finish`](Self::finish): it writes the
/// last block and the checksum; dropping the writer leaves the frame unterminated.
pub struct StoredFrame<W: Write> {
    w: W,
    /// A block header's room, then up to [`BLOCK`] bytes of content: one write per block.
    block: Vec<u8>,
    checksum: Xxh64,
}

impl<W: Write> StoredFrame<W> {
    /// Starts the frame: writes its magic and header.
    pub fn new(mut w: W) -> io::Result<Self> {
        let mut header = MAGIC.to_le_bytes().to_vec();
        header.extend([DESCRIPTOR, WINDOW]);
        w.write_all(&header)?;
        let mut block = Vec::with_capacity(BLOCK_HEADER + BLOCK);
        block.extend([0; BLOCK_HEADER]);
        Ok(StoredFrame {
            w,
            block,
            checksum: Xxh64::new(0),
        })
    }

    /// Writes the buffered content as one raw block; `last` marks the frame's final block
    /// (which may be empty: an empty frame is one empty last block).
    fn emit(&mut self, last: bool) -> io::Result<()> {
        let size = (self.block.len() - BLOCK_HEADER) as u32;
        // Last_Block in bit 0, Block_Type 0 (raw) in bits 1-2, Block_Size in bits 3-23.
        let header = (size << 3) | u32::from(last);
        self.block[..BLOCK_HEADER].copy_from_slice(&header.to_le_bytes()[..BLOCK_HEADER]);
        self.w.write_all(&self.block)?;
        self.block.truncate(BLOCK_HEADER);
        Ok(())
    }

    /// Ends the frame (the last block, then the checksum) and returns the flushed writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.emit(true)?;
        // Content_Checksum: the low 32 bits of XXH64 (seed 0) of the frame's content.
        let checksum = self.checksum.digest() as u32;
        self.w.write_all(&checksum.to_le_bytes())?;
        self.w.flush()?;
        Ok(self.w)
    }
}

impl<W: Write> Write for StoredFrame<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        // A full block is written when more content arrives, not when it fills: the last
        // block of the frame is then never empty unless the whole frame is.
        if self.block.len() == BLOCK_HEADER + BLOCK && !buf.is_empty() {
            self.emit(false)?;
        }
        let room = BLOCK_HEADER + BLOCK - self.block.len();
        let n = buf.len().min(room);
        self.block.extend_from_slice(&buf[..n]);
        self.checksum.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        // A partial block stays buffered: emitting it would end a block early, which is valid
        // but would make the frame's layout depend on how the caller flushed.
        self.w.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(content: &[u8], write_size: usize) -> Vec<u8> {
        let mut f = StoredFrame::new(Vec::new()).unwrap();
        for piece in content.chunks(write_size.max(1)) {
            f.write_all(piece).unwrap();
        }
        f.finish().unwrap()
    }

    /// zstd's own decoder reads the frame back, checking the checksum, at every size around
    /// the block boundary and for every way of cutting the writes.
    #[test]
    fn zstd_decodes_it_byte_for_byte() {
        for len in [0, 1, BLOCK - 1, BLOCK, BLOCK + 1, 3 * BLOCK, 3 * BLOCK + 17] {
            let content: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
            for write_size in [1000, BLOCK, 5 * BLOCK] {
                let frame = stored(&content, write_size);
                assert_eq!(
                    zstd::decode_all(&frame[..]).unwrap(),
                    content,
                    "{len} bytes written {write_size} at a time"
                );
                // Header, blocks of at most BLOCK (one empty one for no content), checksum.
                let blocks = len.div_ceil(BLOCK).max(1);
                assert_eq!(frame.len(), 6 + 3 * blocks + len + 4, "{len} bytes");
            }
        }
    }

    /// The checksum is the one zstd verifies: a flipped content byte fails the decode.
    #[test]
    fn a_changed_byte_fails_the_checksum() {
        let content = vec![7u8; 2 * BLOCK + 5];
        let mut frame = stored(&content, BLOCK);
        let at = 6 + 3 + BLOCK / 2;
        frame[at] ^= 1;
        let err = zstd::decode_all(&frame[..]).unwrap_err();
        assert!(err.to_string().contains("hecksum"), "{err}");
    }

    /// What the frame header says to a decoder: no content size, one frame, a 128 KiB window.
    #[test]
    fn the_header_declares_a_small_window() {
        let frame = stored(b"abc", 3);
        assert_eq!(&frame[..4], &MAGIC.to_le_bytes());
        // Window_Descriptor (RFC 8878, 3.1.1.1.2): 2^(10 + exponent) plus mantissa eighths.
        let (exponent, mantissa) = (u32::from(frame[5] >> 3), u64::from(frame[5] & 7));
        let base = 1u64 << (10 + exponent);
        assert_eq!(base + base / 8 * mantissa, BLOCK as u64);
        let params = zstd::zstd_safe::get_frame_content_size(&frame).unwrap();
        assert_eq!(params, None, "no content size is declared");
        assert_eq!(
            zstd::zstd_safe::find_frame_compressed_size(&frame).unwrap(),
            frame.len()
        );
    }
}
