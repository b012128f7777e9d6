//! Content-defined chunking: FastCDC 2020 cut points over a gear table derived from the repository key.
//!
//! The `fastcdc` crate's own "seed" only XORs one 64-bit value into its public
//! table; here all 256 entries come from the key (BLAKE3 in XOF mode), and the
//! crate's `cut_gear` does the scanning.

use std::io::{self, BufRead};

use fastcdc::v2020::{Normalization, cut_gear, select_masks};

use super::config::ChunkerParams;
use super::readahead::fill_to;

/// Finds chunk boundaries. Cheap to clone; immutable once built.
#[derive(Clone)]
pub struct Chunker {
    gear: Box<[u64; 256]>,
    gear_ls: Box<[u64; 256]>,
    min: usize,
    avg: usize,
    max: usize,
    masks: (u64, u64, u64, u64),
}

impl Chunker {
    pub fn new(chunker_key: &[u8; 32], params: ChunkerParams) -> Chunker {
        let mut reader = blake3::Hasher::new_keyed(chunker_key)
            .update(b"rbk chunker gear table v1")
            .finalize_xof();
        let mut gear = Box::new([0u64; 256]);
        let mut bytes = [0u8; 8];
        for g in gear.iter_mut() {
            reader.fill(&mut bytes);
            *g = u64::from_le_bytes(bytes);
        }
        // FastCDC 2020 scans two bytes per step; the second table is the
        // first shifted left by one, as the crate's own tables are.
        let mut gear_ls = Box::new([0u64; 256]);
        for (ls, g) in gear_ls.iter_mut().zip(gear.iter()) {
            *ls = g << 1;
        }
        let (mask_s, mask_l) = select_masks(params.avg_size as usize, Normalization::Level1);
        Chunker {
            gear,
            gear_ls,
            min: params.min_size as usize,
            avg: params.avg_size as usize,
            max: params.max_size as usize,
            masks: (mask_s, mask_l, mask_s << 1, mask_l << 1),
        }
    }

    pub fn max_size(&self) -> usize {
        self.max
    }

    /// Length of the chunk that starts at `data[0]`. Callers must pass at
    /// least `max_size` bytes unless `data` is the end of the stream.
    pub fn cut(&self, data: &[u8]) -> usize {
        let (ms, ml, msl, mll) = self.masks;
        let (_, len) = cut_gear(
            data,
            self.min,
            self.avg,
            self.max,
            ms,
            ml,
            msl,
            mll,
            &self.gear[..],
            &self.gear_ls[..],
        );
        len
    }
}

/// A run of whole chunks cut from a stream: `data` and the end offset of each chunk.
pub struct Segment {
    pub data: Vec<u8>,
    pub ends: Vec<u32>,
}

impl Segment {
    pub fn chunks(&self) -> impl Iterator<Item = &[u8]> {
        let mut start = 0usize;
        self.ends.iter().map(move |&e| {
            let s = &self.data[start..e as usize];
            start = e as usize;
            s
        })
    }
}

/// Reads a stream into segments of whole chunks. Memory is bounded by the
/// segment size, whatever the stream's length.
pub struct Segmenter<R> {
    reader: R,
    chunker: Chunker,
    segment_size: usize,
    carry: Vec<u8>,
    eof: bool,
}

impl<R: BufRead> Segmenter<R> {
    pub fn new(reader: R, chunker: Chunker, segment_size: usize) -> Segmenter<R> {
        let segment_size = segment_size.max(chunker.max_size() * 2);
        Segmenter {
            reader,
            chunker,
            segment_size,
            carry: Vec::new(),
            eof: false,
        }
    }

    /// The next segment, or `None` at the end of the stream. A read error is
    /// returned as is: the caller decides that the whole stream failed.
    pub fn next_segment(&mut self) -> io::Result<Option<Segment>> {
        let mut buf = Vec::with_capacity(self.segment_size);
        buf.append(&mut self.carry);
        if !self.eof {
            self.eof = fill_to(&mut self.reader, &mut buf, self.segment_size)?;
        }
        if buf.is_empty() {
            return Ok(None);
        }
        let mut ends = Vec::new();
        let mut pos = 0usize;
        while pos < buf.len() {
            let rest = &buf[pos..];
            // Without a full window the cut could differ from the one the
            // whole stream gives, which would break deduplication.
            if !self.eof && rest.len() < self.chunker.max_size() {
                break;
            }
            pos += self.chunker.cut(rest);
            ends.push(pos as u32);
        }
        self.carry = buf[pos..].to_vec();
        buf.truncate(pos);
        Ok(Some(Segment { data: buf, ends }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunker() -> Chunker {
        Chunker::new(
            &[7u8; 32],
            ChunkerParams {
                min_size: 2048,
                avg_size: 8192,
                max_size: 32768,
            },
        )
    }

    fn pseudo_random(n: usize, seed: u64) -> Vec<u8> {
        let mut x = seed | 1;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    fn cut_all(data: &[u8], segment: usize) -> Vec<Vec<u8>> {
        let mut s = Segmenter::new(data, chunker(), segment);
        let mut out = Vec::new();
        while let Some(seg) = s.next_segment().unwrap() {
            out.extend(seg.chunks().map(|c| c.to_vec()));
        }
        out
    }

    #[test]
    fn cuts_do_not_depend_on_segment_size() {
        let data = pseudo_random(1 << 20, 3);
        let a = cut_all(&data, 65536);
        let b = cut_all(&data, 1 << 22);
        assert_eq!(a, b);
        assert_eq!(a.concat(), data);
        assert!(a.iter().all(|c| c.len() <= 32768));
    }

    #[test]
    fn an_insertion_only_changes_nearby_chunks() {
        let data = pseudo_random(1 << 20, 5);
        let mut edited = data[..500_000].to_vec();
        edited.extend_from_slice(b"inserted bytes");
        edited.extend_from_slice(&data[500_000..]);
        let a = cut_all(&data, 1 << 20);
        let b = cut_all(&edited, 1 << 20);
        let shared = b.iter().filter(|c| a.contains(c)).count();
        assert!(shared + 3 >= b.len(), "{shared} of {}", b.len());
    }

    #[test]
    fn the_gear_table_is_keyed() {
        let data = pseudo_random(1 << 18, 9);
        let p = ChunkerParams {
            min_size: 2048,
            avg_size: 8192,
            max_size: 32768,
        };
        let a = Chunker::new(&[1u8; 32], p);
        let b = Chunker::new(&[2u8; 32], p);
        assert_ne!(a.cut(&data), b.cut(&data));
    }
}
