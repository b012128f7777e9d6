//! `rbk stats` and `rbk diff`: the figures they report, checked against what each test put in.

use std::fs;

use serde_json::Value;

use crate::util::*;

const SIZE: usize = 4 * MIB;

fn stats(env: &Env) -> Value {
    env.ok(&["--json", "stats"]).json()
}

fn f64_of(v: &Value, key: &str) -> f64 {
    v[key].as_f64().unwrap_or_else(|| panic!("no {key} in {v}"))
}

fn array_of<'a>(v: &'a Value, key: &str) -> &'a Vec<Value> {
    v[key]
        .as_array()
        .unwrap_or_else(|| panic!("no array {key} in {v}"))
}

/// Three nights of one file: the second unchanged, the third with 1 MiB rewritten and taken
/// late in the evening at UTC-5, which is already the next day in UTC.
fn calendar(env: &Env) -> Vec<String> {
    let mut data = random_bytes(SIZE, 7);
    let mut ids = Vec::new();
    for (night, time) in [
        "2026-03-01T02:00:00+01:00",
        "2026-03-02T02:00:00+01:00",
        "2026-03-02T23:30:00-05:00",
    ]
    .into_iter()
    .enumerate()
    {
        if night == 2 {
            data[MIB..2 * MIB].copy_from_slice(&random_bytes(MIB, 8));
        }
        let input = env.write("db.bin", &data);
        let path = input.to_str().expect("utf-8 temp path");
        ids.push(id_of(&env.snapshot(&["--path", path, "--time", time])));
    }
    ids
}

#[test]
fn stats_of_an_empty_repository() {
    let env = Env::new();
    let s = stats(&env);
    assert_eq!(u64_of(&s, "snapshots"), 0, "{s}");
    assert_eq!(u64_of(&s, "logical_bytes"), 0, "{s}");
    assert!(s["dedup_ratio"].is_null(), "{s}");
    assert!(s["compression_ratio"].is_null(), "{s}");
    assert_eq!(array_of(&s, "daily").len(), 0, "{s}");
    env.ok(&["stats"]);
}

#[test]
fn stats_count_sizes_dedup_and_daily_growth() {
    let env = Env::new();
    let input = env.write("db.bin", &random_bytes(SIZE, 7));
    let path = input.to_str().expect("utf-8 temp path");
    env.snapshot(&["--path", path, "--time", "2026-03-01T02:00:00+01:00"]);
    env.snapshot(&["--path", path, "--time", "2026-03-02T02:00:00+01:00"]);

    // Two snapshots of the same bytes: everything is stored once.
    let s = stats(&env);
    assert_eq!(u64_of(&s, "snapshots"), 2, "{s}");
    assert_eq!(u64_of(&s, "logical_bytes"), 2 * SIZE as u64, "{s}");
    assert_eq!(u64_of(&s, "source_bytes"), 2 * SIZE as u64, "{s}");
    assert_eq!(u64_of(&s, "unique_chunk_bytes"), SIZE as u64, "{s}");
    assert!((f64_of(&s, "dedup_ratio") - 2.0).abs() < 1e-9, "{s}");
    // Random bytes do not compress; sealing adds a little per chunk.
    let c = f64_of(&s, "compression_ratio");
    assert!((0.95..=1.0).contains(&c), "{s}");
    let packs = env.packs();
    assert_eq!(u64_of(&s, "packs"), packs.len() as u64, "{s}");
    let on_disk: u64 = packs
        .iter()
        .map(|p| fs::metadata(p).expect("pack").len())
        .sum();
    assert_eq!(u64_of(&s, "stored_bytes"), on_disk, "{s}");
    assert!(u64_of(&s, "chunk_blob_bytes") <= on_disk, "{s}");
    assert!(u64_of(&s, "blobs") > u64_of(&s, "unique_chunks"), "{s}");

    let per = array_of(&s, "per_snapshot");
    assert_eq!(per.len(), 2, "{s}");
    assert_eq!(u64_of(&per[0], "bytes_read"), SIZE as u64, "{s}");
    assert!(u64_of(&per[0], "bytes_added") >= SIZE as u64 / 2, "{s}");
    assert_eq!(u64_of(&per[1], "bytes_added"), 0, "{s}");
    let listed = env.snapshots();
    for (p, l) in per.iter().zip(&listed) {
        assert_eq!(p["id"], l["id"], "{s}");
        assert_eq!(p["time"], l["time"], "{s}");
    }

    let daily = array_of(&s, "daily");
    let days: Vec<(&str, u64)> = daily
        .iter()
        .map(|d| (d["date"].as_str().expect("date"), u64_of(d, "bytes_added")))
        .collect();
    assert_eq!(
        days,
        vec![
            ("2026-03-01", u64_of(&per[0], "bytes_added")),
            ("2026-03-02", 0)
        ],
        "{s}"
    );
}

#[test]
fn daily_growth_is_counted_in_each_snapshots_own_offset() {
    let env = Env::new();
    let ids = calendar(&env);
    let s = stats(&env);
    let per = array_of(&s, "per_snapshot");
    assert_eq!(per.len(), 3, "{s}");
    let added: Vec<u64> = per.iter().map(|p| u64_of(p, "bytes_added")).collect();
    assert_eq!(added[1], 0, "{s}");
    // The rewritten MiB dirties one or two chunks on each side of it at most.
    assert!(
        added[2] >= MIB as u64 / 2 && added[2] < 2 * MIB as u64,
        "{s}"
    );
    assert_eq!(
        per.iter()
            .map(|p| p["id"].as_str().expect("id"))
            .collect::<Vec<_>>(),
        ids.iter().map(String::as_str).collect::<Vec<_>>()
    );
    // 23:30 at UTC-5 is March 3rd in UTC, but March 2nd where it was taken.
    let daily = array_of(&s, "daily");
    assert_eq!(daily.len(), 2, "{s}");
    assert_eq!(daily[1]["date"], "2026-03-02", "{s}");
    assert_eq!(u64_of(&daily[1], "snapshots"), 2, "{s}");
    assert_eq!(u64_of(&daily[1], "bytes_added"), added[2], "{s}");
    // Three snapshots, the bytes of a little over one.
    let dedup = f64_of(&s, "dedup_ratio");
    assert!(dedup > 2.0 && dedup < 3.0, "{s}");

    // The text chart: one bar per day that added bytes, the largest full width.
    let text = env.ok(&["stats"]).stdout;
    let bars: Vec<usize> = text
        .lines()
        .filter(|l| l.contains('█'))
        .map(|l| l.chars().filter(|&c| c == '█').count())
        .collect();
    assert_eq!(
        bars,
        vec![40, 40 * added[2] as usize / added[0] as usize],
        "{text}"
    );
}

#[test]
fn compressible_data_has_a_compression_ratio_above_one() {
    let env = Env::new();
    let input = env.write("log.txt", &text_bytes(2 * MIB, 3));
    env.snapshot(&["--path", input.to_str().expect("utf-8 temp path")]);
    let s = stats(&env);
    assert!(f64_of(&s, "compression_ratio") > 2.0, "{s}");
    assert!((f64_of(&s, "dedup_ratio") - 1.0).abs() < 0.05, "{s}");
    assert!(u64_of(&s, "stored_bytes") < MIB as u64, "{s}");
}

#[test]
fn stats_of_a_damaged_snapshot_is_damage() {
    let env = Env::new();
    let input = env.write("db.bin", &random_bytes(MIB, 9));
    env.snapshot(&["--path", input.to_str().expect("utf-8 temp path")]);
    let name = env.snapshot_files().pop().expect("a snapshot file");
    let file = env.repo.join("snapshots").join(name);
    let mut bytes = fs::read(&file).expect("read snapshot");
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    fs::write(&file, bytes).expect("write snapshot");
    let r = env.run(&["--json", "stats"]);
    assert_eq!(r.code, EXIT_DAMAGED, "{}", r.all());
}

fn diff(env: &Env, a: &str, b: &str) -> Value {
    env.ok(&["--json", "diff", a, b]).json()
}

/// The one part a diff reports, by name.
fn part<'a>(d: &'a Value, name: &str) -> &'a Value {
    array_of(d, "parts")
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("no part {name} in {d}"))
}

#[test]
fn diff_of_identical_snapshots_adds_and_removes_nothing() {
    let env = Env::new();
    let ids = calendar(&env);
    let d = diff(&env, &ids[0], &ids[1]);
    assert_eq!(d["a"]["id"], ids[0].as_str(), "{d}");
    assert_eq!(d["b"]["id"], ids[1].as_str(), "{d}");
    assert_eq!(array_of(&d, "parts").len(), 1, "{d}");
    let p = part(&d, "db.bin");
    assert_eq!(p["status"], "unchanged", "{d}");
    assert_eq!(u64_of(&p["a"], "bytes"), SIZE as u64, "{d}");
    assert_eq!(p["a"], p["b"], "{d}");
    for key in [
        "added_chunks",
        "added_bytes",
        "removed_chunks",
        "removed_bytes",
    ] {
        assert_eq!(u64_of(p, key), 0, "{key}: {d}");
        assert_eq!(u64_of(&d, key), 0, "{key}: {d}");
    }
}

#[test]
fn diff_after_a_rewritten_region_counts_the_new_chunks() {
    let env = Env::new();
    let ids = calendar(&env);
    let d = diff(&env, &ids[1], &ids[2]);
    let p = part(&d, "db.bin");
    assert_eq!(p["status"], "changed", "{d}");
    assert_eq!(u64_of(&p["a"], "bytes"), SIZE as u64, "{d}");
    assert_eq!(u64_of(&p["b"], "bytes"), SIZE as u64, "{d}");
    // The rewritten MiB is new random data: every chunk over it is one the
    // snapshot had to store, so the diff's added chunks are its new chunks.
    let listed = env.snapshots();
    let stats = stats(&env);
    let third = &array_of(&stats, "per_snapshot")[2];
    assert_eq!(listed[2]["id"], ids[2].as_str());
    assert_eq!(
        u64_of(p, "added_chunks"),
        u64_of(third, "new_chunks"),
        "{d}\n{stats}"
    );
    let added = u64_of(p, "added_bytes");
    assert!(added >= MIB as u64 && added < 2 * MIB as u64, "{d}");
    // The same length went out as came in (the file kept its size) ...
    assert_eq!(u64_of(p, "removed_bytes"), added, "{d}");
    assert!(u64_of(p, "removed_chunks") > 0, "{d}");
    // ... and the reverse diff swaps the two.
    let r = diff(&env, &ids[2], &ids[1]);
    let q = part(&r, "db.bin");
    assert_eq!(q["added_chunks"], p["removed_chunks"], "{r}");
    assert_eq!(q["removed_bytes"], p["added_bytes"], "{r}");
    assert_eq!(u64_of(&d, "added_bytes"), added, "{d}");
}

#[test]
fn diff_names_new_and_removed_parts() {
    let env = Env::new();
    let db = env.write("db.bin", &random_bytes(SIZE, 7));
    let extra = env.write("extra.bin", &random_bytes(MIB / 2, 11));
    let db = db.to_str().expect("utf-8 temp path");
    let extra = extra.to_str().expect("utf-8 temp path");
    let one = id_of(&env.snapshot(&["--path", db]));
    let two = id_of(&env.snapshot(&["--path", db, "--path", extra]));

    let d = diff(&env, &one, &two);
    assert_eq!(part(&d, "db.bin")["status"], "unchanged", "{d}");
    let p = part(&d, "extra.bin");
    assert_eq!(p["status"], "new", "{d}");
    assert!(p["a"].is_null(), "{d}");
    assert_eq!(u64_of(&p["b"], "bytes"), MIB as u64 / 2, "{d}");
    assert_eq!(u64_of(p, "added_bytes"), MIB as u64 / 2, "{d}");
    assert_eq!(u64_of(p, "added_chunks"), u64_of(&p["b"], "chunks"), "{d}");
    assert_eq!(u64_of(&d, "added_bytes"), MIB as u64 / 2, "{d}");

    let r = diff(&env, &two, &one);
    let p = part(&r, "extra.bin");
    assert_eq!(p["status"], "removed", "{r}");
    assert!(p["b"].is_null(), "{r}");
    assert_eq!(u64_of(p, "removed_bytes"), MIB as u64 / 2, "{r}");
    assert_eq!(u64_of(&r, "added_bytes"), 0, "{r}");

    // `latest` resolves; an unknown snapshot is an error, not an empty diff.
    assert_eq!(diff(&env, &one, "latest")["b"]["id"], two.as_str());
    let bad = env.run(&["--json", "diff", "ffffffff", &two]);
    assert_ne!(bad.code, EXIT_OK, "{}", bad.all());
    env.ok(&["diff", &one, &two]);
}

/// `rbk snapshots` is a table: every row's tags and parts start where the header says their
/// columns start, whatever the widths, and `--json` gives each snapshot's stack.
#[test]
fn snapshots_table_columns_line_up() {
    let env = Env::new();
    let p = env.write("a.bin", &random_bytes(64 * 1024, 3));
    env.ok(&[
        "snapshot",
        "--path",
        p.to_str().unwrap(),
        "--host",
        "a-rather-long-host-name",
    ]);
    env.ok(&[
        "snapshot",
        "--path",
        p.to_str().unwrap(),
        "--tag",
        "nightly",
        "--tag",
        "v2",
    ]);
    let out = env.ok(&["snapshots"]).stdout;
    let lines: Vec<&str> = out.lines().collect();
    let header = lines[0];
    let tags_at = header.find("tags").expect("a tags column");
    let parts_at = header.find("parts").expect("a parts column");
    assert!(
        header.contains("pause") && header.contains("host/stack"),
        "{header}"
    );
    for row in &lines[1..3] {
        assert_eq!(row.get(parts_at..parts_at + 5), Some("a.bin"), "{out}");
    }
    assert_eq!(
        lines[2].get(tags_at..tags_at + 10),
        Some("nightly,v2"),
        "{out}"
    );
    assert_eq!(lines[1].get(tags_at..tags_at + 1), Some("-"), "{out}");
    for s in env.snapshots() {
        assert!(s.get("project").is_some(), "{s}");
    }
}
