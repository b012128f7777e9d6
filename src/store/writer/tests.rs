//! The ingest pipeline seals several segments at once: results come back in stream order, and a chunk met by two segments in flight is stored once.

use std::sync::Arc;

use super::*;
use crate::progress::Silent;
use crate::store::memory::MemoryBackend;

/// Deterministic bytes that do not compress (xorshift), so that chunks differ.
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

#[test]
fn segments_sealed_at_once_keep_the_stream_in_order_and_store_each_chunk_once() {
    let repo = Repository::init_for_tests(Arc::new(MemoryBackend::default()));
    // A block smaller than a segment, repeated back to back: its chunks fall in segments
    // that are sealed at the same time. Unique data between the repeats keeps the order
    // observable.
    let block = noise(1, SEGMENT_SIZE / 2 + 12_345);
    let mut input = Vec::new();
    for i in 0..(SEALING * 4) as u64 {
        input.extend_from_slice(&block);
        input.extend_from_slice(&noise(100 + i, 300_000));
    }
    let writer = SnapshotWriter::new(&repo, Arc::new(repo.load_index().expect("index")));
    let stream = writer.add_stream(&input[..], &Silent).expect("stored");
    assert_eq!(stream.size, input.len() as u64);
    assert_eq!(stream.hash, *blake3::hash(&input).as_bytes());
    let stats = writer.stats();
    assert_eq!(stats.chunks, stream.chunks);
    let snapshot = Snapshot {
        time: "2026-12-07T09:00:00Z".into(),
        host: "h".into(),
        tags: Vec::new(),
        parts: Vec::new(),
        labels: Vec::new(),
        stats: SnapshotStats::default(),
    };
    writer.commit(snapshot).expect("committed");

    let index = repo.load_index().expect("index");
    // Every new chunk was sealed and indexed once: as many index entries as new chunks,
    // fewer than the chunks the stream lists (the repeats), plus its list blobs.
    assert!(stats.new_chunks < stream.chunks, "{stats:?}");
    assert_eq!(
        index.len() as u64,
        stats.new_chunks + stream.lists.len() as u64,
        "{stats:?}"
    );
    let mut out = Vec::new();
    repo.restore_stream(&index, &stream, "test", &mut out, &Silent)
        .expect("restored");
    assert!(
        out == input,
        "the stream comes back byte for byte, in order"
    );
}
