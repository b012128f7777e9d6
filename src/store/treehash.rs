//! A stream's BLAKE3 hash built from the chaining values of its 64 KiB blocks, so that a later read of the same file can tell which blocks changed without keeping the bytes.
//!
//! BLAKE3 is a tree over 1 KiB chunks: every block of 64 KiB that starts at a multiple of
//! 64 KiB is one of its subtrees, and the hash of the whole stream is those subtrees'
//! chaining values merged in BLAKE3's own shape. The result is `blake3::hash` of the
//! stream, bit for bit, which is what a manifest records and a restore checks; the block
//! values are a by-product, kept on request (32 bytes per 64 KiB). A block's value depends
//! on its bytes and its offset, so two reads of a file agree on a block exactly when its
//! bytes at that offset are the same.

use blake3::Hasher;
use blake3::hazmat::{
    ChainingValue, HasherExt, Mode, merge_subtrees_non_root, merge_subtrees_root,
};
use rayon::prelude::*;

/// Bytes per block: a power of two of BLAKE3 chunks, so every block is a whole subtree.
pub const BLOCK: usize = 64 * 1024;

/// Hashes a stream fed in order, in pieces of any size. Memory is a stack of one value
/// per level of the tree, plus the blocks' values. Without blocks to keep it is BLAKE3's
/// own hasher over the whole stream: the tree costs 4% more (benches/primitives), which a
/// stream no one compares block by block need not pay.
pub struct TreeHasher {
    block: Hasher,
    /// Bytes in `block` so far.
    filled: usize,
    /// Whole blocks hashed so far.
    count: u64,
    /// The first block's root hash, which is the stream's hash if it is the only block.
    first_root: Option<[u8; 32]>,
    /// Subtrees not yet merged, left to right, as BLAKE3's own hasher keeps them: one is
    /// merged with its left neighbour only once a later block shows it is not the last.
    stack: Vec<ChainingValue>,
    blocks: Option<Vec<ChainingValue>>,
}

impl TreeHasher {
    /// `keep_blocks`: hash by blocks and keep every block's value for
    /// [`finalize`](Self::finalize) to return; else hash as `blake3::Hasher` does.
    pub fn new(keep_blocks: bool) -> TreeHasher {
        TreeHasher {
            block: Hasher::new(),
            filled: 0,
            count: 0,
            first_root: None,
            stack: Vec::new(),
            blocks: keep_blocks.then(Vec::new),
        }
    }

    pub fn update(&mut self, mut data: &[u8]) {
        if self.blocks.is_none() {
            self.block.update(data);
            return;
        }
        while !data.is_empty() {
            let n = data.len().min(BLOCK - self.filled);
            self.block.update(&data[..n]);
            self.filled += n;
            data = &data[n..];
            if self.filled == BLOCK {
                self.close_block();
            }
        }
    }

    /// As [`update`](Self::update), with the whole blocks of `data` hashed on rayon's
    /// threads: for a stream read faster than one core hashes it.
    pub fn update_parallel(&mut self, data: &[u8]) {
        if self.blocks.is_none() {
            return self.update(data);
        }
        // Up to the next block boundary, then whole blocks, then the rest.
        let head = data.len().min((BLOCK - self.filled) % BLOCK);
        self.update(&data[..head]);
        let whole = (data.len() - head) / BLOCK * BLOCK;
        let first = self.count;
        let hashed: Vec<(ChainingValue, Option<[u8; 32]>)> = data[head..head + whole]
            .par_chunks(BLOCK)
            .enumerate()
            .map(|(i, block)| {
                let at = first + i as u64;
                let mut hasher = Hasher::new();
                hasher.set_input_offset(at * BLOCK as u64);
                hasher.update(block);
                let root = (at == 0).then(|| *hasher.finalize().as_bytes());
                (hasher.finalize_non_root(), root)
            })
            .collect();
        for (cv, root) in hashed {
            if root.is_some() {
                self.first_root = root;
            }
            self.push_block(cv);
        }
        if whole > 0 {
            // The next block starts after those.
            self.block = Hasher::new();
            self.block.set_input_offset(self.count * BLOCK as u64);
        }
        self.update(&data[head + whole..]);
    }

    /// The values of the whole blocks fed so far, in order (none unless kept).
    pub fn blocks(&self) -> &[ChainingValue] {
        self.blocks.as_deref().unwrap_or_default()
    }

    fn close_block(&mut self) {
        if self.count == 0 {
            self.first_root = Some(*self.block.finalize().as_bytes());
        }
        let cv = self.block.finalize_non_root();
        self.push_block(cv);
        self.block = Hasher::new();
        self.block.set_input_offset(self.count * BLOCK as u64);
        self.filled = 0;
    }

    /// Adds the next block's value to the tree.
    fn push_block(&mut self, cv: ChainingValue) {
        if let Some(blocks) = &mut self.blocks {
            blocks.push(cv);
        }
        // The subtrees left of this block are complete: merge pairs until one subtree
        // stands for each set bit of the count of blocks before it.
        while self.stack.len() > self.count.count_ones() as usize {
            let (Some(right), Some(left)) = (self.stack.pop(), self.stack.pop()) else {
                break;
            };
            self.stack
                .push(merge_subtrees_non_root(&left, &right, Mode::Hash));
        }
        self.stack.push(cv);
        self.count += 1;
    }

    /// The stream's hash (`blake3::hash` of every byte fed) and, if kept, its blocks'
    /// values, the last one short if the stream does not end on a block boundary.
    pub fn finalize(mut self) -> ([u8; 32], Vec<ChainingValue>) {
        if self.blocks.is_none() {
            return (*self.block.finalize().as_bytes(), Vec::new());
        }
        if self.filled > 0 {
            self.close_block();
        }
        let blocks = self.blocks.take().unwrap_or_default();
        let hash = match self.count {
            0 => *blake3::hash(&[]).as_bytes(),
            1 => self.first_root.unwrap_or_default(),
            // Right to left, as BLAKE3 finishes: the last merge is the root.
            _ => {
                let mut right = self.stack.pop().unwrap_or_default();
                while self.stack.len() > 1 {
                    let left = self.stack.pop().unwrap_or_default();
                    right = merge_subtrees_non_root(&left, &right, Mode::Hash);
                }
                let left = self.stack.pop().unwrap_or_default();
                merge_subtrees_root(&left, &right, Mode::Hash).into()
            }
        };
        (hash, blocks)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(n: usize, seed: u8) -> Vec<u8> {
        (0..n)
            .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[1] ^ seed)
            .collect()
    }

    /// The hash is BLAKE3's, whatever the length (around every block and power-of-two
    /// boundary that shapes the tree) and however the stream was fed.
    #[test]
    fn the_hash_is_blake3_of_the_stream() {
        let lens = [
            0,
            1,
            1023,
            1024,
            BLOCK - 1,
            BLOCK,
            BLOCK + 1,
            2 * BLOCK,
            2 * BLOCK + 7,
            3 * BLOCK,
            4 * BLOCK - 1,
            4 * BLOCK + 1024,
            5 * BLOCK + 3,
            17 * BLOCK + 100,
            64 * BLOCK + 1,
        ];
        for len in lens {
            let data = bytes(len, 3);
            for step in [1usize << 20, BLOCK, 1000, 7] {
                if step == 7 && len > 3 * BLOCK {
                    continue;
                }
                for (keep, parallel) in [(false, false), (true, false), (true, true)] {
                    let mut h = TreeHasher::new(keep);
                    for piece in data.chunks(step) {
                        if parallel {
                            h.update_parallel(piece);
                        } else {
                            h.update(piece);
                        }
                    }
                    let (hash, blocks) = h.finalize();
                    let case = format!("len {len} step {step} keep {keep} parallel {parallel}");
                    assert_eq!(hash, *blake3::hash(&data).as_bytes(), "{case}");
                    let kept = if keep { len.div_ceil(BLOCK) } else { 0 };
                    assert_eq!(blocks.len(), kept, "{case}");
                }
            }
        }
    }

    /// Two streams agree on exactly the blocks whose bytes they share at the same offset.
    #[test]
    fn blocks_differ_exactly_where_the_bytes_do() {
        let a = bytes(6 * BLOCK + 500, 1);
        let mut b = a.clone();
        b[2 * BLOCK + 17] ^= 1;
        b[5 * BLOCK] ^= 1;
        b.truncate(6 * BLOCK + 499);
        let of = |d: &[u8]| {
            let mut h = TreeHasher::new(true);
            h.update(d);
            h.finalize().1
        };
        let (ba, bb) = (of(&a), of(&b));
        let same: Vec<bool> = ba.iter().zip(&bb).map(|(x, y)| x == y).collect();
        assert_eq!(same, [true, true, false, true, true, false, false]);
    }
}
