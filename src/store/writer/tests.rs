//! The ingest pipeline seals several segments at once: results come back in stream order, and a chunk met by two segments in flight is stored once; pieces join streams, and a piece stored against an earlier one is the one a full read gives.

use std::sync::Arc;

use super::*;
use crate::progress::Silent;
use crate::store::fault::FaultBackend;
use crate::store::manifest::Part;
use crate::store::memory::MemoryBackend;
use crate::store::pieces::{CODEC_PIECES, encode_table};

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

fn snapshot_of(parts: Vec<Part>) -> Snapshot {
    Snapshot {
        time: "2026-12-07T09:00:00Z".into(),
        host: "h".into(),
        tags: Vec::new(),
        parts,
        labels: Vec::new(),
        stats: SnapshotStats::default(),
    }
}

fn pieced_part(stored: StoredStream, envelope: Vec<u8>) -> Part {
    Part {
        name: "volume.tar".into(),
        origin: "test".into(),
        codec: CODEC_PIECES.into(),
        envelope,
        source_size: stored.size,
        source_hash: stored.hash,
        stored,
    }
}

fn restored(repo: &Repository, part: &Part) -> Result<Vec<u8>> {
    let index = repo.load_index()?;
    let mut out = Vec::new();
    repo.restore_part(&index, part, &mut out, &Silent)?;
    Ok(out)
}

/// Pieces stored by one writer join a later stream by their chunk lists: the second
/// night reads only the piece that changed, its stream restores byte for byte, and it is
/// verified piece by piece (a table that lies about its pieces is damage).
#[test]
fn pieces_join_later_streams_unread_and_are_verified_one_by_one() {
    let repo = Repository::init_for_tests(Arc::new(MemoryBackend::default()));
    let (a, b, c) = (
        noise(1, 700_001),
        noise(2, 3_000_000),
        b"end of archive".to_vec(),
    );
    let writer = SnapshotWriter::new(&repo, Arc::new(repo.load_index().expect("index")));
    let pa = writer.add_piece(&a[..], &Silent).expect("piece a");
    let pb = writer.add_piece(&b[..], &Silent).expect("piece b");
    let pc = writer.add_piece(&c[..], &Silent).expect("piece c");
    assert_eq!(
        (pa.size, pa.hash),
        (a.len() as u64, *blake3::hash(&a).as_bytes())
    );
    let (stream, envelope) = writer
        .join_pieces(&[&pa, &pb, &pc], &Silent)
        .expect("joined");
    assert_eq!(stream.size, (a.len() + b.len() + c.len()) as u64);
    assert_eq!(stream.hash, *blake3::hash(&envelope).as_bytes());
    let first = pieced_part(stream, envelope);
    writer
        .commit(snapshot_of(vec![first.clone()]))
        .expect("committed");
    assert_eq!(
        restored(&repo, &first).expect("restored"),
        [&a[..], &b, &c].concat()
    );

    // The next night: b changed in one byte, a and c are used again without being read,
    // and a comes after b now (a piece's chunks start where it starts).
    let mut b2 = b.clone();
    b2[1_500_000] ^= 1;
    let writer = SnapshotWriter::new(&repo, Arc::new(repo.load_index().expect("index")));
    let pb2 = writer.add_piece(&b2[..], &Silent).expect("piece b2");
    let new_after_b2 = writer.stats().new_chunks;
    assert!((1..=3).contains(&new_after_b2), "{:?}", writer.stats());
    let (stream, envelope) = writer
        .join_pieces(&[&pb2, &pa, &pc], &Silent)
        .expect("joined");
    assert_eq!(
        writer.stats().new_chunks,
        new_after_b2,
        "nothing of a or c stored again"
    );
    let second = pieced_part(stream, envelope);
    writer
        .commit(snapshot_of(vec![second.clone()]))
        .expect("committed");
    assert_eq!(
        restored(&repo, &second).expect("restored"),
        [&b2[..], &a, &c].concat()
    );

    // A piece of chunks no writer stored cannot join.
    let writer = SnapshotWriter::new(&repo, Arc::new(repo.load_index().expect("index")));
    let foreign = Piece {
        size: 5,
        hash: *blake3::hash(b"hello").as_bytes(),
        chunks: vec![(Id([9; 32]), 5)],
        blocks: Vec::new(),
    };
    let err = writer.join_pieces(&[&pa, &foreign], &Silent).unwrap_err();
    assert!(err.to_string().contains("has not stored"), "{err}");

    // A table that lies: the first night's stream with the table of a, c, b (its hash made
    // to match, as a writer's bug would): the second piece fails.
    let table = [&pa, &pc, &pb]
        .iter()
        .map(|p| PieceRecord {
            size: p.size,
            hash: p.hash,
        })
        .collect::<Vec<_>>();
    let envelope = encode_table(&table);
    let lying = Part {
        stored: StoredStream {
            hash: table_hash(&envelope),
            ..first.stored.clone()
        },
        envelope,
        ..first.clone()
    };
    let err = restored(&repo, &lying).unwrap_err();
    assert!(
        err.is_damage() && err.to_string().contains("piece 2 of 3"),
        "{err}"
    );
    // An envelope changed after the fact no longer matches the stored hash.
    let mut changed = first.clone();
    changed.envelope.push(0);
    let err = restored(&repo, &changed).unwrap_err();
    assert!(
        err.is_damage() && err.to_string().contains("piece table"),
        "{err}"
    );
}

/// A copy into a repository of its own chunking stores a pieced part again piece by
/// piece: the same table and stored hash, the same bytes restored.
#[test]
fn a_pieced_part_copied_across_chunkings_keeps_its_pieces() {
    let from = Repository::init_for_tests(Arc::new(MemoryBackend::default()));
    let to = Repository::init_for_tests(Arc::new(MemoryBackend::default()));
    let pieces = [noise(3, 1_000_000), Vec::new(), noise(4, 400_000)];
    let writer = SnapshotWriter::new(&from, Arc::new(from.load_index().expect("index")));
    let stored: Vec<Piece> = pieces
        .iter()
        .map(|p| writer.add_piece(&p[..], &Silent).expect("piece"))
        .collect();
    let refs: Vec<&Piece> = stored.iter().collect();
    let (stream, envelope) = writer.join_pieces(&refs, &Silent).expect("joined");
    let (_, snapshot) = writer
        .commit(snapshot_of(vec![pieced_part(stream, envelope)]))
        .expect("committed");
    let from_index = from.load_index().expect("index");
    let (_, copied, mode) = crate::store::copy::copy_snapshot(
        &from,
        &from_index,
        &to,
        Arc::new(to.load_index().expect("index")),
        &snapshot,
        Vec::new(),
    )
    .expect("copied");
    assert_eq!(mode, crate::store::copy::CopyMode::Rechunked);
    assert_eq!(copied.parts[0].envelope, snapshot.parts[0].envelope);
    assert_eq!(copied.parts[0].stored.hash, snapshot.parts[0].stored.hash);
    assert_ne!(copied.parts[0].stored.lists, snapshot.parts[0].stored.lists);
    assert_eq!(
        restored(&to, &copied.parts[0]).expect("restored"),
        pieces.concat()
    );
}

/// Stores `new` against a piece of `old`, and checks that the result is the piece a full
/// read of `new` gives, and that it restores. Returns the bytes used from the earlier piece.
fn stored_like(repo: &Repository, old: &[u8], new: &[u8]) -> u64 {
    let writer = SnapshotWriter::new(repo, Arc::new(repo.load_index().expect("index")));
    let base = writer.add_piece(old, &Silent).expect("base piece");
    let like = writer
        .add_piece_like(new, &base, &Silent)
        .expect("piece like");
    let full = writer.add_piece(new, &Silent).expect("full piece");
    // Compared whole, without printing megabytes of block hashes when they differ.
    assert!(
        like.piece == full,
        "old {} new {}: {} of {} chunks differ, hash same {}",
        old.len(),
        new.len(),
        like.piece
            .chunks
            .iter()
            .zip(&full.chunks)
            .filter(|(a, b)| a != b)
            .count()
            + like.piece.chunks.len().abs_diff(full.chunks.len()),
        full.chunks.len(),
        like.piece.hash == full.hash,
    );
    assert!(like.reused <= full.size);
    let (stream, envelope) = writer.join_pieces(&[&like.piece], &Silent).expect("joined");
    let part = pieced_part(stream, envelope);
    writer
        .commit(snapshot_of(vec![part.clone()]))
        .expect("committed");
    assert_eq!(restored(repo, &part).expect("restored"), new);
    like.reused
}

/// A file read again in the pause: its piece is the one a full read gives, whatever
/// changed (pages rewritten in place, a new header, growth, truncation, a shift), and the
/// bytes that did not change come from the earlier piece without being cut or sealed.
#[test]
fn a_file_read_again_is_stored_against_its_earlier_piece() {
    let repo = Repository::init_for_tests(Arc::new(MemoryBackend::default()));
    let old = noise(40, 6_000_000);
    let overwrite = |data: &mut Vec<u8>, at: usize, len: usize, seed: u64| {
        data[at..at + len].copy_from_slice(&noise(seed, len));
    };

    // Unchanged: all but the last chunk (whose cut was the stream's end) reused.
    let reused = stored_like(&repo, &old, &old);
    assert!(reused >= old.len() as u64 - 256 * 1024, "{reused}");

    // 1% of 8 KiB pages rewritten in runs of 8 pages, spread over the file.
    let mut paged = old.clone();
    for (i, at) in (0..old.len() - 65_536).step_by(1_000_000).enumerate() {
        overwrite(&mut paged, at - at % 8192, 65_536, 50 + i as u64);
    }
    let reused = stored_like(&repo, &old, &paged);
    // Each run costs at most its blocks and the chunks across their edges.
    assert!(reused >= old.len() as u64 - 6 * 900_000, "{reused}");

    // A tar header rewritten (new times), and the file grown by a page.
    let mut header = old.clone();
    overwrite(&mut header, 0, 512, 60);
    header.extend_from_slice(&noise(61, 8192));
    let reused = stored_like(&repo, &old, &header);
    assert!(reused >= old.len() as u64 - 1_000_000, "{reused}");

    // A file of whole blocks that grew: its last chunk was cut by its end, not by the
    // chunker, and ends elsewhere in the longer file although its blocks are the same.
    let whole = noise(41, 64 * 65_536);
    let grown = [&whole[..], &noise(42, 100_000)].concat();
    assert!(stored_like(&repo, &whole, &grown) >= whole.len() as u64 - 256 * 1024);

    // Truncated, shifted by one byte, emptied, and from nothing.
    assert!(stored_like(&repo, &old, &old[..4_000_003]) > 3_000_000);
    stored_like(&repo, &old, &[&[0u8][..], &old].concat());
    assert_eq!(stored_like(&repo, &old, &[]), 0);
    assert_eq!(stored_like(&repo, &[], &old), 0);
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(24))]

    /// Whatever the edits, the piece is the one a full read gives (`stored_like` checks).
    #[test]
    fn a_piece_like_an_earlier_one_is_the_full_reads_piece(
        len in 0usize..1_500_000,
        edits in proptest::collection::vec((0.0f64..1.0, 1usize..100_000, 0u64..1000), 0..6),
        resize in -300_000i64..300_000,
    ) {
        let repo = Repository::init_for_tests(Arc::new(MemoryBackend::default()));
        let old = noise(7, len);
        let mut new = old.clone();
        for (at, n, seed) in edits {
            let at = (at * new.len() as f64) as usize;
            let n = n.min(new.len() - at);
            new[at..at + n].copy_from_slice(&noise(seed, n));
        }
        let size = (new.len() as i64 + resize).max(0) as usize;
        new.resize(size, 0xA5);
        stored_like(&repo, &old, &new);
    }
}
