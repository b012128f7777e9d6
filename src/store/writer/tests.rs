//! The ingest pipeline seals several segments at once: results come back in stream order, and a chunk met by two segments in flight is stored once.

use std::sync::Arc;

use super::*;
use crate::progress::Silent;
use crate::store::fault::FaultBackend;
use crate::store::memory::MemoryBackend;

/// Deterministic bytes that do not compress: BLAKE3's output stream for `seed`.
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    blake3::Hasher::new()
        .update(&seed.to_le_bytes())
        .finalize_xof()
        .fill(&mut out);
    out
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

/// A pack write fails (a full disk, an object store gone) while more packs are coming: the
/// packer must stop and report it, with one writer or several. It used to keep the queue's
/// receiving end itself, so once every writer had ended, its next pack waited forever for a
/// writer, and the snapshot hung instead of failing.
#[test]
fn a_failed_pack_write_ends_the_packer_instead_of_hanging_it() {
    for writers in [1, 4] {
        let inner = Arc::new(MemoryBackend::new().with_parallel_writes(writers));
        let backend: Arc<dyn Backend> =
            Arc::new(FaultBackend::parse(inner, "enospc@write:1").expect("fault spec"));
        let crypto = Repository::init_for_tests(Arc::new(MemoryBackend::new()))
            .crypto()
            .clone();
        let (ended, outcome) = sync_channel(1);
        std::thread::spawn(move || {
            // A pack per blob: many packs after the failed one.
            let mut packer = Packer::start(backend, crypto, 1024, Arc::default(), Arc::default());
            if let Some(tx) = packer.tx.take() {
                for i in 0..64u32 {
                    let id = Id(*blake3::hash(&i.to_le_bytes()).as_bytes());
                    if tx.send((BlobKind::Data, id, vec![7u8; 2048])).is_err() {
                        break;
                    }
                }
            }
            let all_written = packer.handle.take().map(|h| h.join().unwrap_or(false));
            let failure = lock(&packer.failure).take();
            let _ = ended.send((all_written, failure.map(|e| e.to_string())));
        });
        let (all_written, failure) = outcome
            .recv_timeout(std::time::Duration::from_secs(60))
            .unwrap_or_else(|_| {
                panic!("{writers} writer(s): the packer hung after a failed write")
            });
        assert_eq!(all_written, Some(false), "{writers} writer(s)");
        let failure = failure.unwrap_or_else(|| panic!("{writers} writer(s): no failure recorded"));
        assert!(
            failure.contains("No space left")
                || failure.contains("ENOSPC")
                || failure.contains("space"),
            "{failure}"
        );
    }
}
