//! Neo4j dumps as users bring them: several zstd frames, skippable frames, files that only start like a dump, damaged dumps, and `--raw NAME` for one part.
//!
//! Dumps are generated (`build_dump`, `store_files`) and, when present, the real fixtures of
//! `../shared/fixtures/neo4j/` re-compressed as several frames.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use rbk::codec::neo4j_dump::DumpFormat;
use serde_json::Value;

use crate::util::*;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/fixtures/neo4j/");

/// A skippable frame (RFC 8878, section 3.1.2) holding `payload`.
fn skippable(payload: &[u8]) -> Vec<u8> {
    let mut out = 0x184D_2A50u32.to_le_bytes().to_vec();
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(payload);
    out
}

/// `magic`, then the `zstd` CLI's output for `inner` cut into `pieces` files (`zstd -c a b`
/// writes one frame per file, one after another).
fn zstd_cli_frames(env: &Env, magic: &[u8], inner: &[u8], pieces: usize) -> Vec<u8> {
    let size = inner.len().div_ceil(pieces);
    let mut args = vec!["-q".to_string(), "-c".to_string()];
    for (i, piece) in inner.chunks(size).enumerate() {
        let p = env.write(&format!("piece-{i}"), piece);
        args.push(p.display().to_string());
    }
    let out = Command::new("zstd")
        .args(&args)
        .stdin(Stdio::null())
        .output()
        .expect("the zstd CLI (apt-get install zstd)");
    assert!(out.status.success(), "zstd: {:?}", out.status);
    let mut dump = magic.to_vec();
    dump.extend_from_slice(&out.stdout);
    dump
}

/// The decompressed stream of a zstd dump: the 24-byte header, then the tar.
fn inner_of(dump: &[u8]) -> (DumpFormat, Vec<u8>) {
    let (envelope, tar) = decode_dump(dump);
    let mut inner = envelope.header.expect("a zstd dump").to_vec();
    inner.extend_from_slice(&tar);
    (envelope.format, inner)
}

/// Whether the zstd data after `magic_len` bytes is exactly one frame.
fn one_frame(dump: &[u8], magic_len: usize) -> bool {
    let body = &dump[magic_len..];
    zstd::zstd_safe::find_frame_compressed_size(body).ok() == Some(body.len())
}

fn part<'a>(snap: &'a Value, name: &str) -> &'a Value {
    snap["parts"]
        .as_array()
        .and_then(|a| a.iter().find(|p| p["name"] == name))
        .unwrap_or_else(|| panic!("no part {name} in {snap}"))
}

/// Stores `dump` as a part, restores it and checks: stored as a dump (no warning), restored
/// as one frame of `format` whose inner stream is byte-identical to `inner` (what the frames
/// of `dump` hold, known from how the test made them).
fn assert_stored_as_dump(
    env: &Env,
    name: &str,
    dump: &[u8],
    (format, inner): (DumpFormat, &[u8]),
    what: &str,
) {
    let path = env.write(name, dump);
    let r = env.run(&["--json", "snapshot", "--path", path.to_str().unwrap()]);
    assert_eq!(r.code, EXIT_OK, "{what}: {}", r.all());
    let snap = r.json();
    assert_eq!(part(&snap, name)["codec"], "neo4j-dump", "{what}: {snap}");
    assert_eq!(snap["warnings"], serde_json::json!([]), "{what}");
    assert_eq!(
        part(&snap, name)["source_size"],
        dump.len() as u64,
        "{what}: every byte of the input was read"
    );
    let to = env.path(&format!("restored-{name}"));
    env.ok(&["restore", &id_of(&snap), "--to", to.to_str().unwrap()]);
    let restored = std::fs::read(to.join(name)).expect("restored dump");
    let (format2, inner2) = inner_of(&restored);
    assert_eq!(format2, format, "{what}");
    assert_same_bytes(&inner2, inner, &format!("{what}: the inner stream"));
    assert!(
        one_frame(&restored, format.magic().map_or(0, |m| m.len())),
        "{what}: restored as one frame"
    );
}

/// Several frames (the zstd CLI's, frames concatenated by hand), a skippable frame before and
/// after them: each is stored by its inner stream and restored as one frame.
#[test]
fn dumps_of_several_zstd_frames_are_stored_as_dumps() {
    let env = Env::new();
    for format in [DumpFormat::Dzv1Zstd, DumpFormat::LegacyZstd] {
        let dump = build_dump(format, &store_files(21, 4));
        let magic = format.magic().map_or(&b""[..], |m| &m[..]);
        let (_, inner) = inner_of(&dump);
        let expect = (format, &inner[..]);
        let tag = format.name();

        let cli = zstd_cli_frames(&env, magic, &inner, 3);
        assert!(
            !one_frame(&cli, magic.len()),
            "the CLI wrote several frames"
        );
        assert_stored_as_dump(
            &env,
            &format!("{tag}-cli.dump"),
            &cli,
            expect,
            "zstd CLI frames",
        );

        let mut trailing = dump.clone();
        trailing.extend(skippable(b"metadata a tool appended"));
        assert_stored_as_dump(
            &env,
            &format!("{tag}-trailing.dump"),
            &trailing,
            expect,
            "a trailing skippable frame",
        );

        let mut pzstd = magic.to_vec();
        for piece in inner.chunks(inner.len() / 2 + 1) {
            let frame = zstd::encode_all(piece, 1).expect("zstd");
            pzstd.extend(skippable(&(frame.len() as u32).to_le_bytes()));
            pzstd.extend(frame);
        }
        assert_stored_as_dump(
            &env,
            &format!("{tag}-pzstd.dump"),
            &pzstd,
            expect,
            "frames behind skippable frames",
        );
    }
    env.assert_check_ok("after the multi-frame dumps");
}

/// The real dumps of Neo4j 4.3 and 5.0, re-compressed by the zstd CLI as several frames.
#[test]
fn real_dumps_recompressed_as_several_frames() {
    let env = Env::new();
    for (name, magic) in [
        ("movies__neo4j-50.dump", &b"DZV1"[..]),
        ("movies__neo4j-43.dump", &b""[..]),
    ] {
        let path = Path::new(FIXTURES).join(name);
        let Ok(dump) = std::fs::read(&path) else {
            eprintln!("skipping {name}: fixture {} not present", path.display());
            continue;
        };
        let (format, inner) = inner_of(&dump);
        let several = zstd_cli_frames(&env, magic, &inner, 4);
        assert_stored_as_dump(&env, name, &several, (format, &inner), name);
    }
}

/// Files that start like a dump but are not one rbk can read are saved byte for byte, with
/// a warning naming the part (exit 6, `--json`'s `warnings`, `warning:` on stderr).
/// Ordinary compressed files and text earn no warning.
#[test]
fn files_that_only_start_like_dumps_are_stored_with_a_warning() {
    let env = Env::new();
    let mut newer = rbk::codec::neo4j_dump::Envelope::new(DumpFormat::Dzv1Zstd, 1, 5)
        .header
        .unwrap()
        .to_vec();
    newer[7] = 2; // a header version Neo4j has not written
    newer.extend_from_slice(&text_bytes(50_000, 3));
    let mut version_2 = b"DZV1".to_vec();
    version_2.extend(zstd::encode_all(&newer[..], 3).expect("zstd"));
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&text_bytes(80_000, 4)).expect("gzip");
    let mut dgv1_text = b"DGV1".to_vec();
    dgv1_text.extend(gz.finish().expect("gzip"));
    let cases: [(&str, Vec<u8>, &str); 3] = [
        ("version2.dump", version_2, "version 2"),
        (
            "garbage.dump",
            b"DZV1 then no zstd stream at all".to_vec(),
            "DZV1",
        ),
        ("dgv1-text.dump", dgv1_text, "DGV1"),
    ];
    for (name, bytes, reason) in &cases {
        let path = env.write(name, bytes);
        let r = env.run(&["--json", "snapshot", "--path", path.to_str().unwrap()]);
        assert_eq!(r.code, EXIT_WARNINGS, "{name}: {}", r.all());
        let snap = r.json();
        let warnings = snap["warnings"].as_array().expect("warnings");
        assert_eq!(warnings.len(), 1, "{name}: {snap}");
        let w = warnings[0].as_str().unwrap();
        assert!(
            w.starts_with(&format!("{name}: ")) && w.contains(reason) && w.contains("as it is"),
            "{name}: {w}"
        );
        assert!(
            r.stderr.contains(&format!("warning: {w}")),
            "{name}: the warning on stderr:\n{}",
            r.stderr
        );
        assert_eq!(part(&snap, name)["codec"], "raw", "{name}");
        let to = env.path(&format!("restored-{name}"));
        env.ok(&["restore", &id_of(&snap), "--to", to.to_str().unwrap()]);
        assert_file_is(&to.join(name), bytes, name);
    }

    // Ordinary data: no warning, exit 0 (the control).
    let zst = zstd::encode_all(&text_bytes(50_000, 5)[..], 3).expect("zstd");
    let plain = [
        env.write("table.sql", b"-- PostgreSQL database dump\n"),
        env.write("archive.zst", &zst),
    ];
    let mut args = vec!["--json", "snapshot"];
    for p in &plain {
        args.extend(["--path", p.to_str().unwrap()]);
    }
    let r = env.run(&args);
    assert_eq!(r.code, EXIT_OK, "{}", r.all());
    assert_eq!(r.json()["warnings"], serde_json::json!([]));
    assert!(!r.stderr.contains("warning"), "{}", r.stderr);
}

/// `--raw NAME` stores that part byte for byte and still decodes the others; `--raw` alone
/// means every part; a name that is no part is a usage error (exit 2).
#[test]
fn raw_applies_to_the_parts_it_names() {
    let env = Env::new();
    let a = env.write(
        "a.dump",
        &build_dump(DumpFormat::Dzv1Zstd, &store_files(31, 1)),
    );
    let b = env.write(
        "b.dump",
        &build_dump(DumpFormat::Dzv1Zstd, &store_files(32, 1)),
    );
    let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());
    let codecs = |snap: &Value| {
        (
            part(snap, "a.dump")["codec"].as_str().unwrap().to_string(),
            part(snap, "b.dump")["codec"].as_str().unwrap().to_string(),
        )
    };
    let s = env.snapshot(&["--raw", "a.dump", "--path", a, "--path", b]);
    assert_eq!(codecs(&s), ("raw".into(), "neo4j-dump".into()), "{s}");
    let s = env.snapshot(&["--path", a, "--path", b, "--raw", "b.dump"]);
    assert_eq!(codecs(&s), ("neo4j-dump".into(), "raw".into()), "{s}");
    let s = env.snapshot(&[
        "--raw", "a.dump", "--raw", "b.dump", "--path", a, "--path", b,
    ]);
    assert_eq!(codecs(&s), ("raw".into(), "raw".into()), "{s}");
    let s = env.snapshot(&["--path", a, "--path", b, "--raw"]);
    assert_eq!(codecs(&s), ("raw".into(), "raw".into()), "{s}");
    let s = env.snapshot(&["--path", a, "--raw", "--path", b]);
    assert_eq!(codecs(&s), ("raw".into(), "raw".into()), "{s}");
    let to = env.path("restored");
    env.ok(&["restore", &id_of(&s), "--to", to.to_str().unwrap()]);
    assert_file_is(
        &to.join("a.dump"),
        &std::fs::read(a).unwrap(),
        "--raw a.dump",
    );

    let before = env.snapshot_files();
    let r = env.run(&["snapshot", "--path", a, "--raw", "c.dump"]);
    assert_eq!(r.code, EXIT_USAGE, "{}", r.all());
    assert!(
        r.stderr.contains("\"c.dump\"") && r.stderr.contains("a.dump"),
        "names the stray name and the parts:\n{}",
        r.stderr
    );
    assert_eq!(env.snapshot_files(), before, "nothing saved");
}

/// A dump whose start is fine but whose later frames are damaged is refused (exit 1): a
/// damaged dump must not pass for a backup. The error names the part and suggests `--raw`,
/// which then stores it byte for byte.
#[test]
fn a_dump_damaged_after_its_start_is_refused() {
    let env = Env::new();
    let mut dump = build_dump(DumpFormat::Dzv1Zstd, &store_files(41, 16));
    assert!(dump.len() > 2 * MIB, "{} bytes", dump.len());
    let at = dump.len() - 100_000;
    dump[at] ^= 0x55;
    let path = env.write("graph.dump", &dump);
    let r = env.run(&["snapshot", "--path", path.to_str().unwrap()]);
    assert_eq!(r.code, EXIT_FAILED, "{}", r.all());
    for needle in [
        "\"graph.dump\"",
        "damaged",
        "--raw \"graph.dump\"",
        "corrupt zstd",
    ] {
        assert!(r.stderr.contains(needle), "{needle:?} in:\n{}", r.stderr);
    }
    assert!(env.snapshot_files().is_empty(), "nothing committed");
    assert!(env.packs().is_empty(), "no pack left");

    let s = env.snapshot(&["--raw", "graph.dump", "--path", path.to_str().unwrap()]);
    assert_eq!(part(&s, "graph.dump")["codec"], "raw", "{s}");
    let to = env.path("restored");
    env.ok(&["restore", &id_of(&s), "--to", to.to_str().unwrap()]);
    assert_file_is(
        &to.join("graph.dump"),
        &dump,
        "the damaged dump, kept as it is",
    );
}
