//! Losing a pack, an index file or a snapshot file loses no more than it must: the next
//! nightly snapshot heals the repository by itself, `check` names the snapshots a loss
//! affects, `repair index` and `repair snapshots` give back what can be had, `forget` removes
//! an unreadable snapshot, and `prune --dry-run` plans exactly what prune then does.

use std::fs;
use std::path::Path;

use serde_json::Value;

use crate::util::*;

/// The one pack a snapshot of new data wrote (its packs are the new files in `data/`).
fn new_packs(env: &Env, before: &[std::path::PathBuf]) -> Vec<std::path::PathBuf> {
    env.packs()
        .into_iter()
        .filter(|p| !before.contains(p))
        .collect()
}

fn restore_part(env: &Env, id: &str, part: &str, into: &str) -> Run {
    let dir = env.path(into);
    env.run(&["restore", id, "--to", dir.to_str().unwrap(), "--part", part])
}

fn assert_restores(env: &Env, id: &str, part: &str, expected: &[u8], what: &str) {
    let into = format!("out-{id}-{}", blake3::hash(what.as_bytes()).to_hex());
    let r = restore_part(env, id, part, &into);
    assert_eq!(r.code, EXIT_OK, "{what}: restore {id} failed:\n{}", r.all());
    assert_file_is(&env.path(&into).join(part), expected, what);
}

fn errors_of(v: &Value) -> Vec<(String, String)> {
    v["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("no errors array: {v}"))
        .iter()
        .map(|e| {
            (
                e["file"].as_str().unwrap_or("").to_string(),
                e["detail"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

/// The nightly routine after a pack was lost: the next snapshot of the same data must not
/// refer to the lost chunks ("0 new chunks" and unrestorable, before), every snapshot taken
/// after the loss restores, and `check` names the snapshot the loss affects and no other.
#[test]
fn a_lost_pack_is_healed_by_the_next_snapshot() {
    let env = Env::new();
    let data = semi_compressible(3 * MIB, 81);
    let input = env.write("metadata.sql", &data);
    let input = input.to_str().unwrap();
    // A part that later snapshots never store again: only day 1 has it.
    let once = random_bytes(MIB, 80);
    let once_path = env.write("once.bin", &once);
    let before = env.packs();
    let day1 = id_of(&env.snapshot(&["--path", input, "--path", once_path.to_str().unwrap()]));
    let lost = new_packs(&env, &before);
    assert_eq!(lost.len(), 1, "day 1 wrote one pack: {lost:?}");
    fs::remove_file(&lost[0]).unwrap();

    // Day 2: the same data. It must store the chunks again, not point at the lost pack.
    let day2 = env.snapshot(&["--path", input]);
    assert!(
        u64_of(&day2, "new_chunks") > 0,
        "the snapshot after the loss stored no chunk again: {day2}"
    );
    let day2 = id_of(&day2);
    assert_restores(&env, &day2, "metadata.sql", &data, "day 2, after the loss");

    // Day 3: changed data, deduplicated against day 2's chunks.
    let mut changed = data.clone();
    changed[MIB..MIB + 4096].fill(7);
    env.write("metadata.sql", &changed);
    let day3 = id_of(&env.snapshot(&["--path", input]));
    assert_restores(&env, &day3, "metadata.sql", &changed, "day 3");

    // Day 2 stored day 1's metadata.sql chunks again, so that part of day 1 is whole again.
    assert_restores(&env, &day1, "metadata.sql", &data, "day 1's healed part");

    // Only day 1 is affected, and check says so by naming its snapshot file and part.
    let (r, v) = env.check(false);
    assert_eq!(r.code, EXIT_DAMAGED, "check:\n{}", r.all());
    let errors = errors_of(&v);
    let lost_rel = rel_name(&env.repo, &lost[0]);
    assert!(
        errors.iter().any(|(f, _)| f == &lost_rel),
        "check names the lost pack {lost_rel}: {errors:?}"
    );
    let day1_file = format!("snapshots/{day1}");
    assert!(
        errors
            .iter()
            .any(|(f, d)| f == &day1_file && d.contains("part once.bin cannot be restored")),
        "check names the affected snapshot {day1_file}: {errors:?}"
    );
    for ok in [&day2, &day3] {
        assert!(
            !errors.iter().any(|(f, _)| f.contains(ok.as_str())),
            "check blames snapshot {ok}, which restores: {errors:?}"
        );
    }
    assert!(
        !errors.iter().any(|(_, d)| d.contains("part metadata.sql")),
        "check blames day 1's metadata.sql, which restores: {errors:?}"
    );
    let r = restore_part(&env, &day1, "once.bin", "out-day1");
    assert_eq!(
        r.code,
        EXIT_DAMAGED,
        "day 1's once.bin cannot restore:\n{}",
        r.all()
    );
    assert!(
        r.stderr.contains(&lost_rel),
        "the restore error names the lost pack:\n{}",
        r.stderr
    );
    assert!(!env.path("out-day1").join("once.bin").exists());

    // Prune works on the healed repository: day 1 is forgotten, the missing pack leaves
    // the index, and everything left checks clean.
    let r = env.run(&["prune", "--keep-last", "2"]);
    assert_eq!(r.code, EXIT_OK, "prune after healing:\n{}", r.all());
    env.assert_check_ok("after prune");
    assert_restores(&env, &day2, "metadata.sql", &data, "day 2 after prune");
    assert_restores(&env, &day3, "metadata.sql", &changed, "day 3 after prune");
}

/// An old copy of `index/` put back after a prune deleted packs it lists (a NAS restored
/// from its own backup, a replay): the writer must not trust it.
#[test]
fn a_replayed_index_that_lists_deleted_packs_does_not_break_the_next_snapshot() {
    let env = Env::new();
    let data = semi_compressible(2 * MIB, 82);
    let input = env.write("a.bin", &data);
    let input = input.to_str().unwrap();
    let first = id_of(&env.snapshot(&["--path", input]));
    let old_index = env.path("index-copy");
    copy_tree(&env.repo.join("index"), &old_index);
    env.ok(&["forget", &first, "--prune"]);
    assert!(env.packs().is_empty(), "prune deleted the only pack");
    fs::remove_dir_all(env.repo.join("index")).unwrap();
    copy_tree(&old_index, &env.repo.join("index"));

    let again = env.snapshot(&["--path", input]);
    assert!(u64_of(&again, "new_chunks") > 0, "stored nothing: {again}");
    assert_restores(&env, &id_of(&again), "a.bin", &data, "after the replay");
}

/// A repository with several snapshots, packs and index files (and a prune that repacked)
/// loses its whole `index/` folder: `repair index` rebuilds it from the packs' headers and
/// every snapshot restores byte for byte again.
#[test]
fn repair_index_after_losing_the_index_folder_restores_every_snapshot() {
    let env = Env::new();
    let mut inputs: Vec<(String, Vec<u8>)> = Vec::new();
    let base = semi_compressible(6 * MIB, 83);
    for day in 0..4u8 {
        let mut data = base.clone();
        let at = day as usize * MIB;
        data[at..at + 64 * 1024].fill(day + 1);
        let path = env.write("nightly.bin", &data);
        let extra = env.write("extra.bin", &random_bytes(300 * 1024, 90 + day as u64));
        let id = id_of(&env.snapshot(&[
            "--path",
            path.to_str().unwrap(),
            "--path",
            extra.to_str().unwrap(),
        ]));
        inputs.push((id, data));
    }
    // Forget one and repack, so the index is a prune's, not only the writers'.
    let (gone, _) = inputs.remove(1);
    env.ok(&["forget", &gone]);
    env.ok(&["prune", "--reclaim-only", "--max-unused", "0%"]);
    let index_files = names_in(&env.repo.join("index"));
    assert!(!index_files.is_empty());

    fs::remove_dir_all(env.repo.join("index")).unwrap();
    let (r, _) = env.check(false);
    assert_eq!(r.code, EXIT_DAMAGED, "check without an index:\n{}", r.all());
    assert!(
        r.all().contains("rbk repair index"),
        "check points to `rbk repair index`:\n{}",
        r.all()
    );

    let dry = env.ok(&["--json", "repair", "index", "--dry-run"]).json();
    assert!(
        names_in(&env.repo.join("index")).is_empty(),
        "a dry run wrote an index file"
    );
    let r = env.ok(&["--json", "repair", "index"]);
    let v = r.json();
    assert_eq!(
        v["packs"], dry["packs"],
        "the dry run planned the same: {dry} vs {v}"
    );
    assert_eq!(
        u64_of(&v, "packs"),
        env.packs().len() as u64,
        "every pack indexed: {v}"
    );
    env.assert_check_ok("after repair index");
    for (id, data) in &inputs {
        assert_restores(&env, id, "nightly.bin", data, "after repair index");
    }
}

/// `check` after one index file was deleted: the packs it listed hold blobs snapshots need,
/// which is damage to repair, not litter "left by an interrupted snapshot"; and the prune dry
/// run promises exactly the deletions the real prune makes (none of those packs).
#[test]
fn a_deleted_index_file_is_damage_and_prune_dry_run_matches_prune() {
    let env = Env::new();
    let a = env.write("a.bin", &semi_compressible(2 * MIB, 84));
    let b = env.write("b.bin", &random_bytes(MIB, 85));
    env.snapshot(&["--path", a.to_str().unwrap()]);
    let index_before = names_in(&env.repo.join("index"));
    let packs_before = env.packs();
    let second = id_of(&env.snapshot(&["--path", b.to_str().unwrap()]));
    let second_packs = new_packs(&env, &packs_before);
    let second_index: Vec<String> = names_in(&env.repo.join("index"))
        .into_iter()
        .filter(|n| !index_before.contains(n))
        .collect();
    assert_eq!(second_index.len(), 1);
    fs::remove_file(env.repo.join("index").join(&second_index[0])).unwrap();

    let (r, v) = env.check(false);
    assert_eq!(r.code, EXIT_DAMAGED, "check:\n{}", r.all());
    for pack in &second_packs {
        let rel = rel_name(&env.repo, pack);
        let finding = v["errors"]
            .as_array()
            .into_iter()
            .flatten()
            .chain(v["warnings"].as_array().into_iter().flatten())
            .find(|p| p["file"] == rel.as_str())
            .unwrap_or_else(|| panic!("check says nothing of {rel}: {v}"));
        let detail = finding["detail"].as_str().unwrap_or("");
        assert!(
            !detail.contains("interrupted"),
            "{rel} is needed, not litter: {finding}"
        );
        assert!(detail.contains("repair index"), "{finding}");
    }
    assert!(
        errors_of(&v)
            .iter()
            .any(|(f, _)| f == &format!("snapshots/{second}")),
        "check names the affected snapshot: {v}"
    );

    let dry = env
        .ok(&["--json", "prune", "--reclaim-only", "--dry-run"])
        .json();
    let real = env.ok(&["--json", "prune", "--reclaim-only"]).json();
    for key in [
        "packs_deleted",
        "bytes_freed",
        "packs_rescued",
        "packs_repacked",
    ] {
        assert_eq!(
            dry["reclaim"][key], real["reclaim"][key],
            "prune --dry-run planned {key} differently from prune:\ndry: {dry}\nreal: {real}"
        );
    }
    assert_eq!(u64_of(&real["reclaim"], "packs_deleted"), 0, "{real}");
    for pack in &second_packs {
        assert!(pack.exists(), "prune deleted {}", pack.display());
    }
    env.assert_check_ok("after prune re-indexed the packs");
    let dir = env.path("out");
    env.ok(&["restore", &second, "--to", dir.to_str().unwrap()]);
    assert_file_is(
        &dir.join("b.bin"),
        &fs::read(&b).unwrap(),
        "second snapshot",
    );
}

/// `repair snapshots` drops the parts whose data is gone and keeps the rest: a dry run first
/// (changing nothing), then new snapshot files in place of the old ones, a snapshot with no
/// part left removed, and the repository checks clean after `repair index`.
#[test]
fn repair_snapshots_drops_lost_parts_and_keeps_the_rest() {
    let env = Env::new();
    let sql = random_bytes(MIB, 86);
    let graph = random_bytes(MIB, 87);
    let sql_path = env.write("metadata.sql", &sql);
    let sql_only = id_of(&env.snapshot(&["--path", sql_path.to_str().unwrap()]));
    let before = env.packs();
    let graph_path = env.write("neo4j.bin", &graph);
    // A second snapshot with both parts: metadata.sql deduplicates, neo4j.bin is new.
    let two = id_of(&env.snapshot(&[
        "--path",
        sql_path.to_str().unwrap(),
        "--path",
        graph_path.to_str().unwrap(),
    ]));
    let graph_packs = new_packs(&env, &before);
    assert_eq!(graph_packs.len(), 1);
    // A third with the graph alone.
    let graph_only = id_of(&env.snapshot(&["--path", graph_path.to_str().unwrap()]));
    fs::remove_file(&graph_packs[0]).unwrap();

    let snapshots_before = env.snapshot_files();
    let dry = env
        .ok(&["--json", "repair", "snapshots", "--dry-run"])
        .json();
    assert_eq!(
        env.snapshot_files(),
        snapshots_before,
        "a dry run changed snapshots"
    );
    let planned: Vec<&str> = dry["repaired"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(planned.len(), 2, "{dry}");
    assert!(planned.contains(&two.as_str()) && planned.contains(&graph_only.as_str()));

    let v = env.ok(&["--json", "repair", "snapshots"]).json();
    let files = env.snapshot_files();
    assert!(files.contains(&sql_only), "the untouched snapshot stays");
    assert!(
        !files.contains(&two) && !files.contains(&graph_only),
        "{files:?}"
    );
    let rewritten = v["repaired"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == two.as_str())
        .unwrap_or_else(|| panic!("{v}"));
    let new_id = rewritten["new_id"].as_str().unwrap().to_string();
    assert_eq!(rewritten["kept"], serde_json::json!(["metadata.sql"]));
    assert_eq!(files.len(), 2, "{files:?}");
    assert_restores(&env, &new_id, "metadata.sql", &sql, "the kept part");
    let listed = env.snapshots();
    let entry = listed.iter().find(|s| s["id"] == new_id.as_str()).unwrap();
    assert_eq!(entry["labels"]["rbk.repaired_from"], two.as_str());

    env.ok(&["repair", "index"]);
    env.assert_check_ok("after both repairs");
}

/// A snapshot file that cannot be read (garbage, truncated) is removable by its id, and
/// says so; before, `forget` refused it and every nightly prune failed forever.
#[test]
fn forget_removes_an_unreadable_snapshot_and_prune_runs_again() {
    let env = Env::new();
    let a = env.write("a.bin", &random_bytes(200 * 1024, 88));
    let keep = id_of(&env.snapshot(&["--path", a.to_str().unwrap()]));
    let broken = id_of(&env.snapshot(&["--path", a.to_str().unwrap(), "--tag", "x"]));
    let file = env.repo.join("snapshots").join(&broken);
    let len = fs::metadata(&file).unwrap().len();
    truncate(&file, len / 2);

    let r = env.run(&["prune", "--keep-last", "5"]);
    assert_eq!(r.code, EXIT_DAMAGED, "prune stops at it:\n{}", r.all());
    assert!(
        r.all().contains("rbk forget"),
        "and says how to go on:\n{}",
        r.all()
    );

    let r = env.run(&["forget", &broken[..8]]);
    assert_eq!(
        r.code,
        EXIT_OK,
        "forget the unreadable snapshot:\n{}",
        r.all()
    );
    assert!(r.stdout.contains("unreadable"), "{}", r.stdout);
    assert_eq!(env.snapshot_files(), vec![keep]);
    env.ok(&["prune", "--keep-last", "5"]);
}

fn truncate(file: &Path, len: u64) {
    fs::OpenOptions::new()
        .write(true)
        .open(file)
        .and_then(|f| f.set_len(len))
        .unwrap_or_else(|e| panic!("truncate {}: {e}", file.display()));
}
