//! Tests of the dump codec: real fixtures when present, generated dumps of all four formats, and hostile input.

use std::io::{self, Read, Write};

use proptest::prelude::*;

use super::super::tar::{TarBuilder, summarize, walk};
use super::*;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/fixtures/neo4j/");

/// A real dump from the shared fixtures, or `None` (test skipped) in a checkout without them.
fn fixture(name: &str) -> Option<Vec<u8>> {
    let path = std::path::Path::new(FIXTURES).join(name);
    if !path.exists() {
        eprintln!("skipping: fixture {} not present", path.display());
        return None;
    }
    Some(std::fs::read(path).unwrap())
}

/// Deterministic test data: `kind` 0 random, 1 repetitive text, 2 zeros (like fresh id files).
fn data(seed: u64, size: usize, kind: u8) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..size)
        .map(|i| match kind % 3 {
            0 => {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            }
            1 => b"MATCH (n:Person) RETURN n.name;\n"[i % 32],
            _ => 0,
        })
        .collect()
}

/// A small store laid out like the real ones: `./` first, then store files, an index, tx log.
fn sample_files() -> Vec<(String, Vec<u8>)> {
    vec![
        ("./".into(), vec![]),
        ("./neostore.nodestore.db".into(), data(1, 8192, 1)),
        ("./neostore.nodestore.db.id".into(), data(2, 40960, 2)),
        (
            "./neostore.propertystore.db.strings".into(),
            data(3, 70_000, 0),
        ),
        ("./schema/".into(), vec![]),
        ("./schema/index/range-1.0/9/".into(), vec![]),
        (
            "./schema/index/range-1.0/9/index-9".into(),
            data(4, 49152, 1),
        ),
        ("./neostore.empty".into(), vec![]),
        ("./".into(), vec![]),
        ("./checkpoint.1".into(), data(5, 592, 0)),
        ("./neostore.transaction.db.1".into(), data(6, 176, 1)),
    ]
}

/// The tar that `build_dump` puts inside a dump of `files`.
fn tar_of(files: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut b = TarBuilder::new(Vec::new());
    for (name, d) in files {
        if name.ends_with('/') && d.is_empty() {
            b.append_dir(name).unwrap();
        } else {
            b.append(name, d.len() as u64, &d[..]).unwrap();
        }
    }
    b.finish().unwrap()
}

fn dump_of(format: DumpFormat, files: &[(String, Vec<u8>)]) -> Vec<u8> {
    build_dump(Vec::new(), format, files.iter().cloned()).unwrap()
}

/// Hands out 1 to 7 bytes per read, like a pipe, to exercise partial reads everywhere.
struct Trickle<'a>(&'a [u8], usize);

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.1 = self.1 % 7 + 1;
        let n = self.1.min(buf.len()).min(self.0.len());
        buf[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        Ok(n)
    }
}

/// Sniffs and reads everything: the envelope if it was a dump, and what the reader yielded.
fn sniff_all(r: impl Read) -> (Option<Envelope>, io::Result<Vec<u8>>) {
    let mut out = Vec::new();
    match sniff(r).unwrap() {
        Sniffed::Dump {
            envelope,
            mut inner,
        } => {
            let res = inner.read_to_end(&mut out).map(|_| out);
            (Some(envelope), res)
        }
        Sniffed::Plain { mut replay, .. } => (None, replay.read_to_end(&mut out).map(|_| out)),
    }
}

/// Why `input`, taken for plain data, was not taken for a dump (`None`: it did not look like one).
fn unrecognised(input: &[u8]) -> Option<String> {
    match sniff(input).unwrap() {
        Sniffed::Dump { .. } => panic!("taken for a dump"),
        Sniffed::Plain { unrecognised, .. } => unrecognised,
    }
}

/// `format`'s magic (if any) followed by `body`.
fn with_magic(format: DumpFormat, body: &[u8]) -> Vec<u8> {
    let mut out = format.magic().map_or(Vec::new(), |m| m.to_vec());
    out.extend_from_slice(body);
    out
}

/// A skippable frame (RFC 8878, section 3.1.2) holding `payload`.
fn skippable(nibble: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = (0x184D_2A50u32 | u32::from(nibble & 0xF))
        .to_le_bytes()
        .to_vec();
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(payload);
    out
}

/// `data` as one zstd frame per piece, cut at `cuts`.
fn frames_of(data: &[u8], cuts: &[usize]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut at = 0;
    for &cut in cuts.iter().chain([&data.len()]) {
        out.extend_from_slice(&zstd::encode_all(&data[at..cut], 3).unwrap());
        at = cut;
    }
    out
}

fn assert_plain(input: &[u8]) {
    for trickle in [false, true] {
        let (env, out) = if trickle {
            sniff_all(Trickle(input, 0))
        } else {
            sniff_all(input)
        };
        assert_eq!(env, None, "{} bytes taken for a dump", input.len());
        assert!(out.unwrap() == input, "replay differs");
    }
}

/// Re-encodes a decoded dump at the format's default level and as a restore does (stored),
/// checks that both decode to the same envelope and tar, and returns the restore's.
fn reencode(envelope: &Envelope, tar: &[u8]) -> Vec<u8> {
    let level = Compression::Level(envelope.format.default_level());
    let mut dumps = [level, Compression::Stored].map(|compression| {
        let mut w = DumpWriter::new(Vec::new(), envelope, compression).unwrap();
        w.write_all(tar).unwrap();
        let dump = w.finish().unwrap();
        let (env2, tar2) = sniff_all(&dump[..]);
        assert_eq!(env2.as_ref(), Some(envelope), "{compression:?}");
        assert!(
            tar2.unwrap() == tar,
            "re-encoded dump decodes differently ({compression:?})"
        );
        dump
    });
    std::mem::take(&mut dumps[1])
}

/// What a zstd frame header and block walk tell (RFC 8878, sections 3.1.1.1 to 3.1.1.2).
#[derive(Debug)]
struct FrameInfo {
    window: u64,
    checksum: bool,
    content_size: Option<u64>,
}

fn zstd_frames(mut data: &[u8]) -> Vec<FrameInfo> {
    let mut frames = Vec::new();
    while !data.is_empty() {
        assert_eq!(data[..4], ZSTD_FRAME_MAGIC);
        let fhd = data[4];
        let single = fhd & 0x20 != 0;
        let checksum = fhd & 0x04 != 0;
        let mut pos = 5;
        let mut window = 0;
        if !single {
            let wd = data[pos];
            let base = 1u64 << (10 + (wd >> 3));
            window = base + base / 8 * u64::from(wd & 7);
            pos += 1;
        }
        pos += [0, 1, 2, 4][usize::from(fhd & 3)];
        let fcs_len = match fhd >> 6 {
            0 => usize::from(single),
            1 => 2,
            2 => 4,
            _ => 8,
        };
        let mut content_size = None;
        if fcs_len > 0 {
            let mut le = [0u8; 8];
            le[..fcs_len].copy_from_slice(&data[pos..pos + fcs_len]);
            let v = u64::from_le_bytes(le) + if fcs_len == 2 { 256 } else { 0 };
            content_size = Some(v);
            if single {
                window = v;
            }
            pos += fcs_len;
        }
        loop {
            let bh = u32::from(data[pos])
                | u32::from(data[pos + 1]) << 8
                | u32::from(data[pos + 2]) << 16;
            let size = (bh >> 3) as usize;
            pos += 3 + if (bh >> 1) & 3 == 1 { 1 } else { size };
            if bh & 1 == 1 {
                break;
            }
        }
        if checksum {
            pos += 4;
        }
        frames.push(FrameInfo {
            window,
            checksum,
            content_size,
        });
        data = &data[pos..];
    }
    frames
}

fn check_fixture(name: &str, format: DumpFormat) {
    let Some(dump) = fixture(name) else { return };
    let (envelope, tar) = sniff_all(&dump[..]);
    let envelope = envelope.expect("fixture not recognised as a dump");
    let tar = tar.unwrap();
    assert_eq!(envelope.format, format);
    assert_eq!(envelope.version(), Some(1));
    let summary = summarize(&tar[..]).unwrap();
    assert_eq!(envelope.file_count(), Some(summary.regular_files as i64));
    assert_eq!(envelope.byte_count(), Some(summary.regular_bytes as i64));
    assert_eq!(summary.trailing_bytes, 0, "Neo4j writes no record padding");
    let names: Vec<String> = walk(&tar[..]).map(|e| e.unwrap().name).collect();
    assert_eq!(names[0], "./");
    assert!(
        names
            .iter()
            .any(|n| n.starts_with("./neostore.transaction.db."))
    );
    assert!(names.iter().any(|n| n.starts_with("./schema/index/")));

    // What Neo4j wrote: one frame, 2 MiB window, content checksum, no content size.
    let body = &dump[format.magic().map_or(0, |m| m.len())..];
    let frames = zstd_frames(body);
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0].window, 2 << 20);
    assert!(frames[0].checksum);
    assert_eq!(frames[0].content_size, None);

    let again = reencode(&envelope, &tar);
    match format {
        DumpFormat::Dzv1Zstd => assert_eq!(again[..8], *b"DZV1\x28\xB5\x2F\xFD"),
        _ => assert_eq!(again[..4], ZSTD_FRAME_MAGIC),
    }
    let frames = zstd_frames(&again[format.magic().map_or(0, |m| m.len())..]);
    assert_eq!(frames.len(), 1);
    assert!(frames[0].checksum);
    assert!(frames[0].window <= 1 << MAX_WINDOW_LOG);
    // Also through a trickling reader, as from a pipe.
    let (env3, tar3) = sniff_all(Trickle(&dump, 0));
    assert_eq!(env3, Some(envelope));
    assert!(tar3.unwrap() == tar);
}

#[test]
fn fixture_neo4j_50_dzv1() {
    check_fixture("movies__neo4j-50.dump", DumpFormat::Dzv1Zstd);
}

#[test]
fn fixture_neo4j_43_legacy_zstd() {
    check_fixture("movies__neo4j-43.dump", DumpFormat::LegacyZstd);
}

#[test]
fn generated_dumps_round_trip_in_all_formats() {
    let files = sample_files();
    let tar = tar_of(&files);
    for format in DumpFormat::ALL {
        let dump = dump_of(format, &files);
        match format.magic() {
            Some(m) => assert_eq!(dump[..4], *m),
            None if format.is_zstd() => assert_eq!(dump[..4], ZSTD_FRAME_MAGIC),
            None => assert_eq!(dump[..2], GZIP_MAGIC),
        }
        let (envelope, inner) = sniff_all(&dump[..]);
        let envelope = envelope.unwrap();
        assert_eq!(envelope.format, format);
        assert!(inner.unwrap() == tar, "{format:?}");
        if format.is_zstd() {
            assert_eq!(envelope.file_count(), Some(7));
            assert_eq!(
                envelope.byte_count(),
                Some(8192 + 40960 + 70_000 + 49152 + 592 + 176)
            );
        } else {
            assert_eq!(envelope.header, None);
            assert_eq!(envelope.file_count(), None);
        }
        reencode(&envelope, &tar);
        let (_, via_pipe) = sniff_all(Trickle(&dump, 3));
        assert!(via_pipe.unwrap() == tar);
    }
}

#[test]
fn format_codes_are_stable() {
    let codes: Vec<u8> = DumpFormat::ALL.iter().map(|f| f.code()).collect();
    assert_eq!(codes, [1, 2, 3, 4]);
    for f in DumpFormat::ALL {
        assert_eq!(DumpFormat::from_code(f.code()), Some(f));
        assert!(f.name().starts_with("neo4j-dump-"));
    }
    assert_eq!(DumpFormat::from_code(0), None);
    assert_eq!(DumpFormat::from_code(5), None);
}

#[test]
fn ordinary_compressed_files_are_plain() {
    let random = data(9, 100_000, 0);
    assert_plain(&zstd::encode_all(&random[..], 3).unwrap());
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&data(1, 50_000, 1)).unwrap();
    assert_plain(&gz.finish().unwrap());

    // A .tar.gz of something else, laid out just like a dump.
    let other = vec![
        ("./".to_string(), vec![]),
        ("./app.db".to_string(), data(2, 5000, 1)),
        ("./neostore".to_string(), data(3, 10, 1)),
    ];
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&tar_of(&other)).unwrap();
    assert_plain(&gz.finish().unwrap());

    // zstd content that starts like a dump header but is not a valid one.
    let mut bad_version = Envelope::new(DumpFormat::LegacyZstd, 1, 1)
        .header
        .unwrap()
        .to_vec();
    bad_version[7] = 2;
    bad_version.extend_from_slice(&tar_of(&sample_files()));
    assert_plain(&zstd::encode_all(&bad_version[..], 3).unwrap());
    let negative = Envelope::new(DumpFormat::LegacyZstd, -1, 5).header.unwrap();
    assert_plain(&zstd::encode_all(&negative[..], 3).unwrap());
    let mut dzv1 = b"DZV1".to_vec();
    dzv1.extend_from_slice(&zstd::encode_all(&negative[..], 3).unwrap());
    assert_plain(&dzv1);
}

/// A window over 2^27 could not be loaded by `neo4j-admin`, and decoding it would need more
/// memory than rbk allows: such a stream is stored as it is.
#[test]
fn zstd_window_over_the_limit_is_plain() {
    let envelope = Envelope::new(DumpFormat::LegacyZstd, 1, 3);
    let mut e = zstd::stream::write::Encoder::new(Vec::new(), 1).unwrap();
    e.window_log(MAX_WINDOW_LOG + 1).unwrap();
    e.write_all(&envelope.header.unwrap()).unwrap();
    e.write_all(&tar_of(&sample_files())).unwrap();
    let big_window = e.finish().unwrap();
    assert_eq!(
        zstd_frames(&big_window)[0].window,
        1 << (MAX_WINDOW_LOG + 1)
    );
    assert_plain(&big_window);
}

#[test]
fn short_odd_and_large_inputs_are_plain() {
    assert_plain(b"");
    assert_plain(b"abc");
    assert_plain(b"DZV");
    assert_plain(&[0x1F, 0x8B, 0x08]);
    assert_plain(&ZSTD_FRAME_MAGIC);
    assert_plain(b"DZV1");
    assert_plain(b"DGV1 but not gzip at all");
    assert_plain(b"DZV1\x28\xB5\x2F\xFDgarbage garbage garbage");
    assert_plain(&data(4, 1 << 20, 0));
    // A dump cut inside its first block cannot be confirmed, so it is kept as it is.
    let dump = dump_of(DumpFormat::Dzv1Zstd, &sample_files());
    assert_plain(&dump[..20]);
}

/// Truncation anywhere must surface as an error, never as a short but "successful" read.
#[test]
fn truncated_dumps_fail() {
    // zstd decodes nothing until it has a whole compressed block, so a cut inside the first
    // block is undecidable (and Plain); keep that block small so most cuts come after it.
    let mut files = sample_files();
    let random = files.remove(3);
    files.push(random);
    for format in DumpFormat::ALL {
        let dump = dump_of(format, &files);
        let mut dumps_seen = 0;
        let cuts = (1..dump.len())
            .step_by(dump.len() / 150 + 1)
            .chain([dump.len() - 1]);
        for cut in cuts {
            match sniff_all(&dump[..cut]) {
                (Some(_), out) => {
                    dumps_seen += 1;
                    let err = out.expect_err("truncated dump read without error");
                    assert_eq!(
                        err.kind(),
                        io::ErrorKind::UnexpectedEof,
                        "{format:?} cut {cut}: {err}"
                    );
                }
                (None, out) => assert!(out.unwrap() == dump[..cut]),
            }
        }
        assert!(
            dumps_seen > 60,
            "{format:?}: only {dumps_seen} cuts recognised"
        );
    }
}

/// Bytes after the end that start no zstd frame (or, for gzip, anything after the one
/// member) are refused; a second zstd frame is not trailing data but more of the stream.
#[test]
fn trailing_bytes_fail() {
    let files = sample_files();
    for format in DumpFormat::ALL {
        let clean = dump_of(format, &files);
        let mut tails = vec![b"\0".to_vec(), b"garbage".to_vec(), b"\x28\xB5".to_vec()];
        if !format.is_zstd() {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            gz.write_all(b"more").unwrap();
            tails.push(gz.finish().unwrap());
        }
        for tail in tails {
            let mut dump = clean.clone();
            dump.extend_from_slice(&tail);
            let (env, out) = sniff_all(&dump[..]);
            assert!(env.is_some());
            let err = out.expect_err("trailing data accepted");
            assert_eq!(err.kind(), io::ErrorKind::InvalidData);
            assert!(err.to_string().contains("after the end"), "{err}");
            let damaged = err.get_ref().is_some_and(|e| e.is::<DamagedDump>());
            assert!(damaged, "{format:?}: not marked as a damaged dump: {err}");
        }
    }
}

/// What `zstd` writes for several inputs, `cat` of two `.zst` files, `pzstd` (each frame
/// behind a skippable frame) and a trailing skippable frame of metadata: all one stream,
/// decoded frame after frame, and re-encoded as one frame with the same inner bytes.
#[test]
fn several_frames_and_skippable_frames_are_one_stream() {
    let files = sample_files();
    let tar = tar_of(&files);
    for format in [DumpFormat::Dzv1Zstd, DumpFormat::LegacyZstd] {
        let envelope = Envelope::new(format, 7, 8192 + 40960 + 70_000 + 49152 + 592 + 176);
        let mut inner = envelope.header.unwrap().to_vec();
        inner.extend_from_slice(&tar);
        let n = inner.len();
        let variants: Vec<(&str, Vec<u8>)> = vec![
            ("three frames", frames_of(&inner, &[n / 3, 2 * n / 3])),
            // The 24-byte header split over two frames, and an empty frame.
            ("header split", frames_of(&inner, &[10, 10, 5000])),
            ("trailing skippable", {
                let mut b = frames_of(&inner, &[]);
                b.extend(skippable(0, b"rbk test metadata"));
                b
            }),
            ("pzstd-like", {
                let mut b = Vec::new();
                for (from, to) in [(0, n / 2), (n / 2, n)] {
                    let frame = zstd::encode_all(&inner[from..to], 1).unwrap();
                    b.extend(skippable(0, &(frame.len() as u32).to_le_bytes()));
                    b.extend(frame);
                }
                b
            }),
            ("empty skippable between", {
                let mut b = frames_of(&inner[..n / 2], &[]);
                b.extend(skippable(0xF, b""));
                b.extend(frames_of(&inner[n / 2..], &[]));
                b
            }),
        ];
        for (what, body) in variants {
            let dump = with_magic(format, &body);
            for trickle in [false, true] {
                let (env, out) = if trickle {
                    sniff_all(Trickle(&dump, 0))
                } else {
                    sniff_all(&dump[..])
                };
                assert_eq!(env.as_ref(), Some(&envelope), "{format:?} {what}");
                assert!(out.unwrap() == tar, "{format:?} {what}: wrong inner stream");
            }
            let again = reencode(&envelope, &tar);
            let frames = zstd_frames(&again[format.magic().map_or(0, |m| m.len())..]);
            assert_eq!(frames.len(), 1, "{format:?} {what}: rewritten as one frame");
            // Cut inside a later frame or a skippable frame: an error, never a short stream.
            // (A cut inside the first block cannot be told from plain data: kept as it is.)
            for cut in [dump.len() - 1, dump.len() - body.len() / 3] {
                match sniff_all(&dump[..cut]) {
                    (Some(_), out) => {
                        let err = out.expect_err("a cut multi-frame dump read without error");
                        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof, "{what}: {err}");
                    }
                    (None, out) => {
                        assert!(cut < dump.len() - 1, "{what}: a dump cut by one byte");
                        assert!(out.unwrap() == dump[..cut]);
                    }
                }
            }
        }
    }
}

/// A file that starts like a dump (a DZV1 or DGV1 magic, zstd content starting with
/// `zstd`) but is not one rbk can read says why; ordinary compressed files say nothing.
#[test]
fn unrecognised_dumps_say_why() {
    let tar = tar_of(&sample_files());
    let mut version_2 = Envelope::new(DumpFormat::Dzv1Zstd, 7, 5)
        .header
        .unwrap()
        .to_vec();
    version_2[7] = 2;
    version_2.extend_from_slice(&tar);
    let v2 = zstd::encode_all(&version_2[..], 3).unwrap();
    let why = unrecognised(&with_magic(DumpFormat::Dzv1Zstd, &v2)).expect("a reason");
    assert!(why.contains("header") && why.contains("version 2"), "{why}");
    let why = unrecognised(&v2).expect("legacy zstd with a `zstd` header is meant as a dump");
    assert!(why.contains("version 2"), "{why}");

    let why = unrecognised(b"DZV1 and then not zstd at all").expect("a reason");
    assert!(
        why.contains("DZV1") && why.contains("not a zstd stream"),
        "{why}"
    );
    let why = unrecognised(b"DZV1").expect("a reason");
    assert!(why.contains("DZV1"), "{why}");
    let cut = dump_of(DumpFormat::Dzv1Zstd, &sample_files());
    assert!(unrecognised(&cut[..20]).is_some_and(|w| w.contains("DZV1")));
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&data(1, 50_000, 1)).unwrap();
    let gz = gz.finish().unwrap();
    let why = unrecognised(&with_magic(DumpFormat::Dgv1Gzip, &gz)).expect("a reason");
    assert!(why.contains("DGV1"), "{why}");
    assert!(unrecognised(b"DGV1 but not gzip").is_some());

    // Nothing dump-like about these: no warning.
    assert_eq!(unrecognised(&gz), None);
    assert_eq!(
        unrecognised(&zstd::encode_all(&data(9, 100_000, 0)[..], 3).unwrap()),
        None
    );
    assert_eq!(unrecognised(b"-- PostgreSQL database dump\n"), None);
    assert_eq!(unrecognised(b""), None);
}

/// Damage found while decoding is marked as such; the input's own failure is not.
#[test]
fn damage_is_told_from_a_failing_input() {
    let files = vec![
        ("./".to_string(), vec![]),
        ("./neostore.nodestore.db".to_string(), data(11, 600_000, 0)),
    ];
    let mut dump = dump_of(DumpFormat::Dzv1Zstd, &files);
    let at = dump.len() - 1000;
    dump[at] ^= 0x40;
    let (_, out) = sniff_all(&dump[..]);
    let err = out.unwrap_err();
    assert!(
        err.get_ref().is_some_and(|e| e.is::<DamagedDump>()),
        "{err}"
    );
    let cut = dump_of(DumpFormat::Dzv1Zstd, &files);
    let (_, out) = sniff_all(&cut[..cut.len() - 10]);
    let err = out.unwrap_err();
    assert!(
        err.get_ref().is_some_and(|e| e.is::<DamagedDump>()),
        "{err}"
    );
}

/// A dump far larger than the sniff prefix: flips past the prefix must be caught while reading.
#[test]
fn flipped_bytes_fail() {
    let files = vec![
        ("./".to_string(), vec![]),
        ("./neostore.nodestore.db".to_string(), data(11, 600_000, 0)),
        (
            "./neostore.transaction.db.0".to_string(),
            data(12, 300_000, 1),
        ),
    ];
    for format in DumpFormat::ALL {
        let dump = dump_of(format, &files);
        for pos in (SNIFF_LIMIT + 1000..dump.len() - 10).step_by(50_000) {
            let mut bad = dump.clone();
            bad[pos] ^= 0x40;
            let (env, out) = sniff_all(&bad[..]);
            assert!(env.is_some());
            let err = out.expect_err("corruption not detected");
            assert_eq!(
                err.kind(),
                io::ErrorKind::InvalidData,
                "{format:?} at {pos}: {err}"
            );
            assert!(err.to_string().contains("corrupt"), "{err}");
        }
    }
}

#[test]
fn reader_errors_pass_through() {
    struct FailAfter<'a>(&'a [u8]);
    impl Read for FailAfter<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.0.is_empty() {
                return Err(io::Error::new(io::ErrorKind::ConnectionReset, "pipe broke"));
            }
            let n = buf.len().min(self.0.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }
    let files = vec![
        ("./".to_string(), vec![]),
        ("./neostore".to_string(), data(3, 1 << 20, 0)),
    ];
    for format in DumpFormat::ALL {
        let dump = dump_of(format, &files);
        let (env, out) = sniff_all(FailAfter(&dump[..SNIFF_LIMIT + 5000]));
        assert!(env.is_some());
        let err = out.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionReset);
        assert!(!err.get_ref().is_some_and(|e| e.is::<DamagedDump>()));
        // Failing inside the sniff prefix is the only error `sniff` itself returns.
        assert!(sniff(FailAfter(&dump[..100])).is_err());
    }
}

#[test]
fn writer_checks_envelope_and_builder_checks_counts() {
    let zstd_without_header = Envelope {
        format: DumpFormat::Dzv1Zstd,
        header: None,
    };
    assert!(DumpWriter::new(Vec::new(), &zstd_without_header, Compression::Level(3)).is_err());
    let gzip_with_header = Envelope {
        format: DumpFormat::LegacyGzip,
        header: Envelope::new(DumpFormat::LegacyZstd, 0, 0).header,
    };
    assert!(DumpWriter::new(Vec::new(), &gzip_with_header, Compression::Stored).is_err());

    let mut b = DumpBuilder::new(Vec::new(), DumpFormat::Dzv1Zstd, 2, 10, 3).unwrap();
    b.append_file("./neostore", 10, &[0u8; 10][..]).unwrap();
    assert_eq!(b.finish().unwrap_err().kind(), io::ErrorKind::InvalidInput);
    // Levels outside a codec's range are clamped, not refused.
    for format in DumpFormat::ALL {
        let env = Envelope::new(format, 0, 0);
        for compression in [-1000, 1000].map(Compression::Level) {
            DumpWriter::new(Vec::new(), &env, compression)
                .unwrap()
                .finish()
                .unwrap();
        }
    }
}

/// The streaming path benchmarks use: files come from readers, the dump goes to a file.
#[test]
fn streamed_dump_through_a_file() {
    let sizes = [3 << 20, 0, 1 << 20];
    for format in [DumpFormat::Dzv1Zstd, DumpFormat::LegacyGzip] {
        let file = tempfile::tempfile().unwrap();
        let total: u64 = sizes.iter().sum();
        let mut b = DumpBuilder::new(file, format, 3, total as i64, 1).unwrap();
        b.append_dir("./").unwrap();
        for (i, size) in sizes.iter().enumerate() {
            let name = format!("./neostore.store{i}.db");
            b.append_file(&name, *size, io::repeat(i as u8).take(*size))
                .unwrap();
        }
        let mut file = b.finish().unwrap();
        io::Seek::rewind(&mut file).unwrap();
        let (envelope, inner) = open_dump(io::BufReader::new(file)).unwrap();
        assert_eq!(envelope.format, format);
        let summary = summarize(inner).unwrap();
        assert_eq!((summary.regular_files, summary.regular_bytes), (3, total));
    }
    assert!(open_dump(&b"not a dump"[..]).is_err());
}

fn file_set() -> impl Strategy<Value = Vec<(String, Vec<u8>)>> {
    let names = prop_oneof![
        "neostore\\.[a-z]{1,20}\\.db(\\.id)?",
        "neostore\\.transaction\\.db\\.[0-9]{1,3}",
        "schema/index/range-1\\.0/[0-9]{1,2}/index-[0-9]{1,2}",
        "[a-zA-Z0-9_.-]{1,40}",
        "([a-z]{1,30}/){1,5}[a-z]{1,30}",
    ];
    let file = (names, 0usize..200 * 1024, any::<u64>(), any::<u8>());
    proptest::collection::vec(file, 0..5).prop_map(|files| {
        // Real dumps open with `./` and a store file, which is what gzip detection relies on.
        let mut out = vec![
            ("./".to_string(), vec![]),
            ("./neostore".to_string(), data(0, 8192, 1)),
        ];
        for (name, size, seed, kind) in files {
            out.push((format!("./{name}"), data(seed, size, kind)));
        }
        out
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn random_file_sets_round_trip(files in file_set(), format_code in 1u8..=4) {
        let format = DumpFormat::from_code(format_code).unwrap();
        let dump = dump_of(format, &files);
        let (envelope, inner) = sniff_all(&dump[..]);
        let envelope = envelope.unwrap();
        prop_assert_eq!(envelope.format, format);
        let tar = inner.unwrap();
        prop_assert!(tar == tar_of(&files));
        if format.is_zstd() {
            let summary = summarize(&tar[..]).unwrap();
            prop_assert_eq!(envelope.file_count(), Some(summary.regular_files as i64));
            prop_assert_eq!(envelope.byte_count(), Some(summary.regular_bytes as i64));
        }
        reencode(&envelope, &tar);
    }

    /// Any single corrupted byte: either not taken for a dump, or an error, or (gzip header
    /// fields outside the CRC, such as mtime) exactly the original tar. Never other content.
    #[test]
    fn corrupted_small_dumps_never_yield_wrong_data(format_code in 1u8..=4, pos in any::<usize>(), flip in 1u8..=255) {
        let format = DumpFormat::from_code(format_code).unwrap();
        let files = sample_files();
        let mut dump = dump_of(format, &files);
        let pos = pos % dump.len();
        dump[pos] ^= flip;
        match sniff_all(&dump[..]) {
            (Some(_), Ok(tar)) => prop_assert!(tar == tar_of(&files)),
            (Some(_), Err(_)) => {}
            (None, out) => prop_assert!(out.unwrap() == dump),
        }
    }

    #[test]
    fn arbitrary_input_never_panics_and_replays(bytes in proptest::collection::vec(any::<u8>(), 0..2048), magic in 0usize..5) {
        let mut input = [&b"DZV1"[..], b"DGV1", &ZSTD_FRAME_MAGIC, &GZIP_MAGIC, b""][magic].to_vec();
        input.extend_from_slice(&bytes);
        let (env, out) = sniff_all(&input[..]);
        if env.is_none() {
            prop_assert!(out.unwrap() == input);
        }
    }
}
