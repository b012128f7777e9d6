//! Proves that whatever goes into a snapshot (files of every awkward size, stdin, a producer's
//! output, Neo4j dumps of every format) comes back byte for byte, and that snapshots and parts
//! are selected exactly as asked.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;
use std::process::Stdio;

use rbk::backup::{PartSpec, SnapshotOptions, snapshot};
use rbk::codec::neo4j_dump::DumpFormat;
use rbk::parts::PartInput;
use rbk::store::config::ChunkerParams;
use serde_json::Value;

use crate::util::*;

/// Restores `id` into a new directory and returns the directory.
fn restore(env: &Env, id: &str, dir: &str) -> std::path::PathBuf {
    let to = env.path(dir);
    env.ok(&["restore", id, "--to", to.to_str().unwrap()]);
    to
}

fn part_names(v: &Value) -> Vec<String> {
    v["parts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_string())
        .collect()
}

fn part<'a>(v: &'a Value, name: &str) -> &'a Value {
    v["parts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("no part {name} in {v}"))
}

/// Files, stdin and a producer command in one snapshot; sizes chosen to sit on and next to the
/// chunker's boundaries, where off-by-one errors in cutting and reassembly would show.
#[test]
fn every_kind_of_input_round_trips_in_one_snapshot() {
    let env = Env::new();
    let c = ChunkerParams::default();
    let (min, avg, max) = (
        c.min_size as usize,
        c.avg_size as usize,
        c.max_size as usize,
    );
    let mut expected: Vec<(String, Vec<u8>)> = vec![
        ("random.bin".into(), random_bytes(MIB + 123, 1)),
        ("text.txt".into(), text_bytes(700_000, 2)),
        ("semi.bin".into(), semi_compressible(2 * MIB, 3)),
        ("empty".into(), Vec::new()),
        ("one.byte".into(), vec![0x5A]),
        ("chunk-min".into(), random_bytes(min, 4)),
        ("chunk-avg".into(), random_bytes(avg, 5)),
        ("chunk-max".into(), random_bytes(max, 6)),
        ("chunk-max-plus-one".into(), random_bytes(max + 1, 7)),
        ("chunk-min-minus-one".into(), random_bytes(min - 1, 8)),
        ("zeros".into(), vec![0u8; 3 * max + 17]),
    ];
    let mut args: Vec<String> = vec!["--json".into(), "snapshot".into()];
    for (name, data) in &expected {
        let p = env.write(name, data);
        args.push("--path".into());
        args.push(p.display().to_string());
    }
    let stdin_data = text_bytes(300_000, 9);
    let produced_src = env.write("producer-input", &random_bytes(400_000, 10));
    let mut produced = b"header\n".to_vec();
    produced.extend_from_slice(&std::fs::read(&produced_src).unwrap());
    produced.extend_from_slice(b"trailer\n");
    args.extend([
        "--stdin".into(),
        "stdin.sql".into(),
        "--command".into(),
        "produced.bin".into(),
        "--".into(),
    ]);
    args.extend([
        "sh".into(),
        "-c".into(),
        format!(
            "printf 'header\\n'; cat '{}'; printf 'trailer\\n'",
            produced_src.display()
        ),
    ]);

    let arg_refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut child = env
        .cmd(&arg_refs)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let feeder = {
        let data = stdin_data.clone();
        std::thread::spawn(move || stdin.write_all(&data))
    };
    let run = wait_with_guard(child, std::time::Duration::from_secs(300), "rbk snapshot");
    feeder.join().unwrap().expect("feeding stdin");
    assert_eq!(run.code, EXIT_OK, "snapshot failed:\n{}", run.all());
    expected.push(("stdin.sql".into(), stdin_data));
    expected.push(("produced.bin".into(), produced));

    let snap = run.json();
    let names: Vec<String> = expected.iter().map(|(n, _)| n.clone()).collect();
    assert_eq!(
        part_names(&snap),
        names,
        "parts are kept in the order given"
    );
    for (name, data) in &expected {
        let p = part(&snap, name);
        assert_eq!(p["codec"], "raw", "{name}: {p}");
        assert_eq!(u64_of(p, "source_size"), data.len() as u64, "{name}: {p}");
        assert_eq!(u64_of(p, "stored_size"), data.len() as u64, "{name}: {p}");
    }
    let total: u64 = expected.iter().map(|(_, d)| d.len() as u64).sum();
    assert_eq!(u64_of(&snap, "bytes_read"), total);

    // `latest` and the 8-digit short id both name this snapshot.
    for (selector, dir) in [
        ("latest", "by-latest"),
        (snap["short_id"].as_str().unwrap(), "by-short-id"),
    ] {
        let to = restore(&env, selector, dir);
        let got: BTreeSet<String> = names_in(&to).into_iter().collect();
        let want: BTreeSet<String> = names.iter().cloned().collect();
        assert_eq!(
            got, want,
            "restore {selector} wrote exactly the parts, no temporary files"
        );
        for (name, data) in &expected {
            assert_file_is(&to.join(name), data, &format!("restore {selector}: {name}"));
        }
    }
    env.assert_check_ok("after the round trip");
}

/// `latest` is the newest snapshot even when several are taken within one second, and any
/// unique prefix of an id selects that snapshot.
#[test]
fn latest_and_unique_prefixes_select_the_right_snapshot() {
    let env = Env::new();
    let mut ids = Vec::new();
    let mut contents = Vec::new();
    for i in 0..4u64 {
        let data = text_bytes(50_000 + i as usize * 1000, 100 + i);
        let p = env.write("v.txt", &data);
        ids.push(id_of(&env.snapshot(&["--path", p.to_str().unwrap()])));
        contents.push(data);

        let to = restore(&env, "latest", &format!("latest-{i}"));
        assert_file_is(
            &to.join("v.txt"),
            &contents[i as usize],
            &format!("latest after snapshot {i} ({})", ids[i as usize]),
        );
    }
    let listed: Vec<String> = env.snapshots().iter().map(id_of).collect();
    assert_eq!(listed, ids, "snapshots are listed oldest first");

    for (i, id) in ids.iter().enumerate() {
        let n = (1..=64)
            .find(|&n| ids.iter().filter(|o| o.starts_with(&id[..n])).count() == 1)
            .unwrap();
        // Upper case must work too: people copy ids from anywhere.
        for prefix in [
            id[..n].to_string(),
            id[..n.max(6)].to_uppercase(),
            id.clone(),
        ] {
            let to = restore(&env, &prefix, &format!("prefix-{i}-{prefix}"));
            assert_file_is(
                &to.join("v.txt"),
                &contents[i],
                &format!("restore {prefix}"),
            );
        }
    }
}

/// Prefixes shared by several snapshots, and prefixes no snapshot has, are refused with a
/// message that says which, and nothing is restored.
#[test]
fn ambiguous_and_unknown_prefixes_are_refused() {
    let env = Env::new();
    let input = env.write("tiny", b"tiny");
    // Snapshots through the library until two ids share a first hex digit (at most 17 by the
    // pigeonhole principle); the binary could do it too, only slower.
    let repo = env.open();
    let mut ids: Vec<String> = Vec::new();
    let shared = loop {
        let options = SnapshotOptions {
            parts: vec![PartSpec {
                name: "tiny".into(),
                input: PartInput::File(input.clone()),
            }],
            tags: vec![format!("n{}", ids.len())],
            ..SnapshotOptions::default()
        };
        let id = snapshot(&repo, &options).unwrap().id;
        let hex = id.to_hex();
        if let Some(other) = ids.iter().find(|o| o[..1] == hex[..1]) {
            let common = (0..64)
                .take_while(|&i| other.as_bytes()[i] == hex.as_bytes()[i])
                .count();
            break hex[..common].to_string();
        }
        ids.push(hex);
    };
    drop(repo);

    let to = env.path("ambiguous");
    let r = env.run(&["restore", &shared, "--to", to.to_str().unwrap()]);
    assert_ne!(
        r.code,
        EXIT_OK,
        "an ambiguous prefix must be refused:\n{}",
        r.all()
    );
    assert!(
        r.stderr.contains(&format!("{shared:?}")) && r.stderr.contains("matches 2 snapshots"),
        "the message names the prefix and the count:\n{}",
        r.stderr
    );
    assert!(!to.exists(), "nothing is written for an ambiguous prefix");

    let all: Vec<String> = env.snapshot_files();
    let unknown = (0..=0xFFFFu32)
        .map(|n| format!("{n:04x}"))
        .find(|p| !all.iter().any(|id| id.starts_with(p.as_str())))
        .unwrap();
    for wanted in [unknown.as_str(), "not-an-id", ""] {
        let to = env.path("unknown");
        let r = env.run(&["restore", wanted, "--to", to.to_str().unwrap()]);
        assert_ne!(
            r.code,
            EXIT_OK,
            "restore {wanted:?} must fail:\n{}",
            r.all()
        );
        assert!(
            r.stderr.contains("no snapshot matches") && r.stderr.contains(&format!("{wanted:?}")),
            "{wanted:?}:\n{}",
            r.stderr
        );
        assert!(!to.exists(), "nothing is written for an unknown snapshot");
    }
}

/// `--part` restores only the parts named; a part the snapshot lacks is an error that restores nothing.
#[test]
fn part_filter_restores_only_the_named_parts() {
    let env = Env::new();
    let parts: Vec<(&str, Vec<u8>)> = vec![
        ("a.bin", random_bytes(300_000, 20)),
        ("b.sql", text_bytes(200_000, 21)),
        ("c.db", semi_compressible(250_000, 22)),
    ];
    let mut args = Vec::new();
    for (name, data) in &parts {
        args.push("--path".to_string());
        args.push(env.write(name, data).display().to_string());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let id = id_of(&env.snapshot(&args));

    for wanted in [vec!["b.sql"], vec!["a.bin", "c.db"], vec!["c.db"]] {
        let to = env.path(&format!("only-{}", wanted.join("-")));
        let mut args = vec!["restore", id.as_str(), "--to", to.to_str().unwrap()];
        for w in &wanted {
            args.extend(["--part", w]);
        }
        env.ok(&args);
        let mut want: Vec<String> = wanted.iter().map(|s| s.to_string()).collect();
        want.sort();
        assert_eq!(names_in(&to), want, "--part {wanted:?}");
        for (name, data) in parts.iter().filter(|(n, _)| wanted.contains(n)) {
            assert_file_is(&to.join(name), data, name);
        }
    }

    let to = env.path("missing-part");
    let r = env.run(&[
        "restore",
        &id,
        "--to",
        to.to_str().unwrap(),
        "--part",
        "a.bin",
        "--part",
        "nope.sql",
    ]);
    assert_ne!(r.code, EXIT_OK, "{}", r.all());
    assert!(
        r.stderr.contains("nope.sql"),
        "the message names the missing part:\n{}",
        r.stderr
    );
    assert!(
        names_in(&to).is_empty(),
        "no part is restored when one asked for is missing: {:?}",
        names_in(&to)
    );
}

/// Snapshots one dump, checks it was decoded, restores it, and compares what matters to
/// `neo4j-admin load`: the format's magic, the envelope and the inner stream.
fn dump_round_trip(env: &Env, name: &str, original: &[u8]) {
    let path = env.write(name, original);
    let snap = env.snapshot(&["--path", path.to_str().unwrap()]);
    let id = id_of(&snap);
    assert_eq!(
        part(&snap, name)["codec"],
        "neo4j-dump",
        "{name} must be recognised as a dump: {snap}"
    );
    assert_eq!(
        u64_of(part(&snap, name), "source_size"),
        original.len() as u64
    );
    let listed = env
        .snapshots()
        .into_iter()
        .find(|s| id_of(s) == id)
        .expect("listed");
    assert_eq!(part(&listed, name)["codec"], "neo4j-dump", "{listed}");

    let to = restore(env, &id, &format!("restored-{name}"));
    let restored = std::fs::read(to.join(name)).unwrap();
    let (env_orig, inner_orig) = decode_dump(original);
    let (env_rest, inner_rest) = decode_dump(&restored);
    let m = magic_len(env_orig.format);
    assert_eq!(
        restored[..m],
        original[..m],
        "{name}: the restored dump starts with the same magic"
    );
    assert_eq!(
        env_rest, env_orig,
        "{name}: same envelope (format and header)"
    );
    assert_same_bytes(&inner_rest, &inner_orig, &format!("{name}: inner stream"));
    assert_eq!(
        u64_of(part(&snap, name), "stored_size"),
        inner_orig.len() as u64,
        "{name}: the store holds the inner stream"
    );
}

/// The real dumps in `../shared/fixtures/neo4j/` (skipped with a note when absent).
#[test]
fn neo4j_fixture_dumps_round_trip() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures/neo4j");
    let env = Env::new();
    for (name, format) in [
        ("movies__neo4j-50.dump", DumpFormat::Dzv1Zstd),
        ("movies__neo4j-43.dump", DumpFormat::LegacyZstd),
    ] {
        let path = dir.join(name);
        if !path.exists() {
            println!("note: fixture {} is absent; skipping it", path.display());
            continue;
        }
        let original = std::fs::read(&path).unwrap();
        assert_eq!(decode_dump(&original).0.format, format, "{name}");
        dump_round_trip(&env, name, &original);
    }
}

/// Dumps the test builds itself, one per outer format, in one snapshot and one at a time.
#[test]
fn generated_dumps_in_every_format_round_trip() {
    let env = Env::new();
    for (i, format) in DumpFormat::ALL.into_iter().enumerate() {
        let dump = build_dump(format, &store_files(30 + i as u64, 2));
        assert_eq!(decode_dump(&dump).0.format, format);
        dump_round_trip(&env, &format!("{}.dump", format.name()), &dump);
    }
    env.assert_check_ok("after the dump round trips");
}

/// A gzip or zstd file that is not a Neo4j dump must not be re-encoded: it comes back exactly.
#[test]
fn compressed_files_that_are_not_dumps_are_stored_raw() {
    let env = Env::new();
    let text = text_bytes(500_000, 40);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&text).unwrap();
    let gz = gz.finish().unwrap();
    let zst = zstd::encode_all(&text[..], 3).unwrap();
    // A gzip'd tar of something that is not a Neo4j store is not a dump either.
    let tar_gz = {
        let mut b = rbk::codec::tar::TarBuilder::new(Vec::new());
        b.append("./app.sqlite.db", 70_000, &random_bytes(70_000, 41)[..])
            .unwrap();
        let tar = b.finish().unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&tar).unwrap();
        gz.finish().unwrap()
    };
    let files = [
        ("log.txt.gz", gz),
        ("log.txt.zst", zst),
        ("backup.tar.gz", tar_gz),
    ];
    let mut args = Vec::new();
    for (name, data) in &files {
        args.push("--path".to_string());
        args.push(env.write(name, data).display().to_string());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let snap = env.snapshot(&args);
    for (name, _) in &files {
        assert_eq!(part(&snap, name)["codec"], "raw", "{name}: {snap}");
    }
    let to = restore(&env, &id_of(&snap), "restored");
    for (name, data) in &files {
        assert_file_is(&to.join(name), data, name);
    }
}

/// `--raw` turns dump detection off: the dump is stored and restored byte for byte.
#[test]
fn raw_flag_stores_a_dump_byte_for_byte() {
    let env = Env::new();
    let dump = build_dump(DumpFormat::Dzv1Zstd, &store_files(50, 1));
    let path = env.write("neo4j.dump", &dump);
    let snap = env.snapshot(&["--raw", "--path", path.to_str().unwrap()]);
    assert_eq!(part(&snap, "neo4j.dump")["codec"], "raw", "{snap}");
    assert_eq!(
        u64_of(part(&snap, "neo4j.dump"), "stored_size"),
        dump.len() as u64
    );
    let to = restore(&env, &id_of(&snap), "restored");
    assert_file_is(&to.join("neo4j.dump"), &dump, "--raw dump");
    // The same dump without --raw is decoded: the control that shows --raw made the difference.
    let snap = env.snapshot(&["--path", path.to_str().unwrap()]);
    assert_eq!(part(&snap, "neo4j.dump")["codec"], "neo4j-dump", "{snap}");
}
