//! Criterion benches of the store's primitives: chunker, keyed chunk ids, zstd, blob seal/open, stream hashes (MB/s).
//!
//! Run: `cargo bench --bench primitives` (about a minute). Inputs are page-structured store
//! data (8 KiB pages of 64-byte records, see `benches/common/pages.rs`), which is what rbk
//! sees when it backs up a database store.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rbk::store::blob::BlobCodec;
use rbk::store::chunker::Chunker;
use rbk::store::config::ChunkerParams;
use rbk::store::crypto::{Crypto, MasterKey};
use rbk::store::treehash::TreeHasher;

#[path = "common/pages.rs"]
#[allow(dead_code)]
mod pages;

const CHUNKER_INPUT: usize = 64 << 20;
const CHUNK: usize = 64 << 10;
const STREAM: usize = 64 << 20;

fn page_data(len: usize, seed: u64) -> Vec<u8> {
    let mut buf = vec![0u8; len.next_multiple_of(pages::PAGE_SIZE)];
    pages::PageGen::day1_only(seed).fill(&mut buf, None);
    buf.truncate(len);
    buf
}

fn chunker(c: &mut Criterion) {
    let data = page_data(CHUNKER_INPUT, 1);
    let chunker = Chunker::new(&[7u8; 32], ChunkerParams::default());
    let mut group = c.benchmark_group("chunker");
    group.throughput(Throughput::Bytes(data.len() as u64));
    group.bench_function("cut_64MiB_default_params", |b| {
        b.iter(|| {
            let mut pos = 0usize;
            let mut chunks = 0usize;
            while pos < data.len() {
                pos += chunker.cut(black_box(&data[pos..]));
                chunks += 1;
            }
            black_box(chunks)
        })
    });
    group.finish();
}

fn chunk_ids(c: &mut Criterion) {
    let data = page_data(CHUNK, 2);
    let crypto = Crypto::new(&MasterKey::generate());
    let mut group = c.benchmark_group("chunk_id");
    group.throughput(Throughput::Bytes(CHUNK as u64));
    group.bench_function("keyed_blake3_64KiB", |b| {
        b.iter(|| crypto.chunk_id(black_box(&data)))
    });
    group.finish();
}

fn zstd3(c: &mut Criterion) {
    let data = page_data(CHUNK, 3);
    let mut compressor = zstd::bulk::Compressor::new(3).expect("zstd context");
    let compressed = compressor.compress(&data).expect("zstd compress");
    eprintln!(
        "zstd level 3 on a 64 KiB page-structured chunk: {} -> {} bytes (ratio {:.2})",
        data.len(),
        compressed.len(),
        data.len() as f64 / compressed.len() as f64
    );
    let mut decompressor = zstd::bulk::Decompressor::new().expect("zstd context");
    let mut group = c.benchmark_group("zstd");
    group.throughput(Throughput::Bytes(CHUNK as u64));
    group.bench_function("compress_level3_64KiB", |b| {
        b.iter(|| {
            compressor
                .compress(black_box(&data))
                .expect("zstd compress")
        })
    });
    // The same over 64 MiB of distinct chunks: data and tables no longer hot in cache, as in
    // a real snapshot.
    let stream = page_data(STREAM, 5);
    group.throughput(Throughput::Bytes(STREAM as u64));
    group.bench_function("compress_level3_64MiB_in_64KiB_chunks", |b| {
        b.iter(|| {
            stream
                .chunks(CHUNK)
                .map(|c| {
                    compressor
                        .compress(black_box(c))
                        .expect("zstd compress")
                        .len()
                })
                .sum::<usize>()
        })
    });
    let mut level1 = zstd::bulk::Compressor::new(1).expect("zstd context");
    eprintln!(
        "zstd level 1 on the same chunk: {} bytes (ratio {:.2})",
        level1.compress(&data).expect("zstd compress").len(),
        data.len() as f64 / level1.compress(&data).expect("zstd compress").len() as f64
    );
    group.throughput(Throughput::Bytes(CHUNK as u64));
    group.bench_function("compress_level1_64KiB", |b| {
        b.iter(|| level1.compress(black_box(&data)).expect("zstd compress"))
    });
    group.bench_function("decompress_64KiB", |b| {
        b.iter(|| {
            decompressor
                .decompress(black_box(&compressed), CHUNK)
                .expect("zstd decompress")
        })
    });
    group.finish();
}

fn seal_open(c: &mut Criterion) {
    let data = page_data(CHUNK, 4);
    let crypto = Crypto::new(&MasterKey::generate());
    let codec = BlobCodec::new(crypto.clone(), 3, 64);
    let id = codec.id_of(&data);
    let sealed = codec.seal(&id, &data);
    let mut group = c.benchmark_group("blob");
    group.throughput(Throughput::Bytes(CHUNK as u64));
    // seal = zstd 3 + padding + XChaCha20-Poly1305; open = decrypt + unzstd + keyed BLAKE3 check.
    group.bench_function("seal_64KiB", |b| {
        b.iter(|| codec.seal(black_box(&id), black_box(&data)))
    });
    group.bench_function("open_64KiB", |b| {
        b.iter(|| {
            codec
                .open(black_box(&id), black_box(&sealed))
                .expect("open")
        })
    });
    // The cipher alone, to split seal/open into compression and encryption.
    group.bench_function("xchacha20poly1305_seal_64KiB", |b| {
        b.iter(|| crypto.seal(black_box(&id.0), black_box(data.clone())))
    });
    group.finish();
}

/// A stream's hash as the writer takes it (2 MiB segments): BLAKE3's own hasher against
/// the tree of 64 KiB blocks that gives the same hash and keeps the blocks' values, on one
/// thread and on rayon's.
fn stream_hash(c: &mut Criterion) {
    let data = page_data(STREAM, 3);
    let mut group = c.benchmark_group("stream_hash");
    group.throughput(Throughput::Bytes(data.len() as u64));
    group.bench_function("blake3_hasher_64MiB", |b| {
        b.iter(|| {
            let mut h = blake3::Hasher::new();
            for segment in data.chunks(2 << 20) {
                h.update(black_box(segment));
            }
            h.finalize()
        })
    });
    group.bench_function("tree_hasher_64MiB", |b| {
        b.iter(|| {
            let mut h = TreeHasher::new(true);
            for segment in data.chunks(2 << 20) {
                h.update(black_box(segment));
            }
            h.finalize()
        })
    });
    group.bench_function("tree_hasher_parallel_64MiB", |b| {
        b.iter(|| {
            let mut h = TreeHasher::new(true);
            for window in data.chunks(8 << 20) {
                h.update_parallel(black_box(window));
            }
            h.finalize()
        })
    });
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args()
}

criterion_group! {
    name = benches;
    config = config();
    targets = chunker, chunk_ids, zstd3, seal_open, stream_hash
}
criterion_main!(benches);
