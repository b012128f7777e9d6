//! Fuzz: the segmenter cuts any stream into chunks that concatenate back to it, within the size bounds.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rbk::store::chunker::{Chunker, Segmenter};
use rbk::store::config::ChunkerParams;

fuzz_target!(|data: &[u8]| {
    let params = ChunkerParams {
        min_size: 64,
        avg_size: 256,
        max_size: 1024,
    };
    let chunker = Chunker::new(&[3u8; 32], params);
    let mut seg = Segmenter::new(data, chunker, 4096);
    let mut out = Vec::new();
    while let Ok(Some(s)) = seg.next_segment() {
        for c in s.chunks() {
            assert!(!c.is_empty() && c.len() <= 1024);
            out.extend_from_slice(c);
        }
    }
    assert_eq!(out, data);
});
