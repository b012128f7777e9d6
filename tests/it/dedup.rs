//! Proves deduplication: unchanged data costs (almost) nothing the second time, a small
//! change costs about what changed, and for Neo4j dumps that holds through the compression.

use rbk::codec::neo4j_dump::DumpFormat;

use crate::util::*;

/// A second snapshot of 32 MiB that did not change adds under 1% of its size, both by rbk's
/// own count and on disk.
#[test]
fn unchanged_data_adds_under_one_percent() {
    let env = Env::new();
    let data = semi_compressible(32 * MIB, 60);
    let path = env.write("db.bin", &data);
    let path = path.to_str().unwrap();
    let first = env.snapshot(&["--path", path]);
    let first_added = u64_of(&first, "bytes_added");
    // The control: the first snapshot really stored the data (zstd halves it, no more).
    assert!(
        first_added > data.len() as u64 / 3,
        "the first snapshot added only {first_added} bytes of {}",
        data.len()
    );

    let disk_before = tree_size(&env.repo);
    let second = env.snapshot(&["--path", path]);
    let disk_growth = tree_size(&env.repo) - disk_before;
    let added = u64_of(&second, "bytes_added");
    let limit = data.len() as u64 / 100;
    assert!(
        added < limit,
        "the second snapshot of {} unchanged bytes added {added} bytes (limit 1% = {limit}; the first added {first_added})",
        data.len()
    );
    assert!(
        disk_growth < limit,
        "the repository grew by {disk_growth} bytes on disk for {} unchanged bytes (limit 1% = {limit})",
        data.len()
    );
    println!(
        "unchanged data: {} B; first added {first_added} B, second {added} B, disk growth {disk_growth} B",
        data.len()
    );
    assert_eq!(
        u64_of(&second, "new_chunks"),
        0,
        "no chunk of unchanged data is new: {second}"
    );
    assert_eq!(u64_of(&second, "chunks"), u64_of(&first, "chunks"));

    let to = env.path("restored");
    env.ok(&["restore", &id_of(&second), "--to", to.to_str().unwrap()]);
    assert_file_is(&to.join("db.bin"), &data, "the deduplicated snapshot");
}

/// Content-defined chunking: 100 bytes inserted near the start shift everything after them,
/// yet only the chunks around the insertion are new.
#[test]
fn an_insertion_near_the_start_adds_little() {
    let env = Env::new();
    let data = semi_compressible(16 * MIB, 61);
    let mut edited = data[..1000].to_vec();
    edited.extend_from_slice(&random_bytes(100, 62));
    edited.extend_from_slice(&data[1000..]);
    let first = env.snapshot(&["--path", env.write("db.bin", &data).to_str().unwrap()]);
    let second = env.snapshot(&["--path", env.write("db.bin", &edited).to_str().unwrap()]);
    let (a1, a2) = (
        u64_of(&first, "bytes_added"),
        u64_of(&second, "bytes_added"),
    );
    println!("insertion: first added {a1} B, second {a2} B");
    assert!(
        a2 * 100 < a1 * 5,
        "after inserting 100 bytes into {} the second snapshot added {a2} bytes, {:.2}% of the first's {a1} (limit 5%)",
        data.len(),
        a2 as f64 * 100.0 / a1 as f64
    );
}

/// Snapshots two dumps one after the other; returns what each added, and the second snapshot's id.
fn added_by_two_dumps(env: &Env, raw: bool, dump1: &[u8], dump2: &[u8]) -> (u64, u64, String) {
    let mut out = Vec::new();
    for dump in [dump1, dump2] {
        let path = env.write("neo4j.dump", dump);
        let mut args = vec!["--path", path.to_str().unwrap()];
        if raw {
            args.push("--raw");
        }
        let s = env.snapshot(&args);
        let codec = if raw { "raw" } else { "neo4j-dump" };
        assert_eq!(s["parts"][0]["codec"], codec, "{s}");
        out.push((u64_of(&s, "bytes_added"), id_of(&s)));
    }
    (out[0].0, out[1].0, out[1].1.clone())
}

/// A Neo4j store of about 17 MiB in DZV1 dumps, changed between two dumps in one small
/// region: 512 bytes overwritten in place, or one 8 KiB page appended to a store file (which
/// moves every later byte of the tar). rbk stores the inner tar, so the second snapshot adds
/// a small fraction either way; the restored dump decodes to the second store.
#[test]
fn a_dump_whose_store_changed_in_one_small_region_adds_a_small_fraction() {
    let files = store_files(70, 48);
    let dump1 = build_dump(DumpFormat::Dzv1Zstd, &files);
    let inner_size = decode_dump(&dump1).1.len();

    let mut overwritten = files.clone();
    let node_store = &mut overwritten[1].1;
    let at = node_store.len() / 2;
    node_store[at..at + 512].copy_from_slice(&random_bytes(512, 71));
    let mut grown = files.clone();
    grown[1].1.extend_from_slice(&semi_compressible(8192, 72));

    for (change, changed) in [
        ("512 bytes overwritten", overwritten),
        ("an 8 KiB page appended", grown),
    ] {
        let dump2 = build_dump(DumpFormat::Dzv1Zstd, &changed);
        let env = Env::new();
        let (a1, a2, id2) = added_by_two_dumps(&env, false, &dump1, &dump2);
        println!(
            "dump dedup, {change}: inner {inner_size} B; first dump added {a1} B, second {a2} B"
        );
        assert!(
            a2 * 100 < a1 * 5,
            "a dump of a {inner_size}-byte store with {change} added {a2} bytes, {:.2}% of the first dump's {a1} (limit 5%)",
            a2 as f64 * 100.0 / a1 as f64
        );
        let to = env.path("restored");
        env.ok(&["restore", &id2, "--to", to.to_str().unwrap()]);
        let restored = std::fs::read(to.join("neo4j.dump")).unwrap();
        assert_same_bytes(
            &decode_dump(&restored).1,
            &decode_dump(&dump2).1,
            &format!("{change}: the second dump's inner stream"),
        );

        if change.contains("appended") {
            // The control: stored byte for byte, the grown dump shares little with the first,
            // since every compressed block after the change moved; the codec made the difference.
            let raw = Env::new();
            let (r1, r2, _) = added_by_two_dumps(&raw, true, &dump1, &dump2);
            println!("dump dedup control, {change}, --raw: first added {r1} B, second {r2} B");
            assert!(
                r2 * 3 > r1,
                "control: with --raw the grown dump should add a large part of its size again (over a third), added {r2} of {r1}"
            );
        }
    }
}
