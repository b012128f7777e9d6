//! An attacker with write access to the repository but no password rearranges its files:
//! swaps blobs inside a pack, swaps whole packs or snapshot files, replays an old index,
//! truncates each kind of file, deletes a pack. For every case `check --read-data` must exit 3
//! and name the damaged or missing file, and a restore of any snapshot either fails (leaving no
//! wrong bytes under the part's name) or gives back exactly the bytes that were stored.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use rbk::store::Id;

use crate::util::*;

/// One snapshot of the fixture, with where its data went.
struct Snap {
    id: String,
    part: String,
    data: Vec<u8>,
    /// Its pack, relative to the repository (`data/ab/ab12...`): each snapshot wrote one.
    pack: String,
    /// The index file its snapshot wrote (the name alone).
    index: String,
    /// Its part's list blob ids, in hex.
    lists: Vec<String>,
}

/// A repository with two snapshots of new data each, so two packs and two index files.
struct Fixture {
    env: Env,
    snaps: [Snap; 2],
    /// A copy of `index/` taken after the first snapshot (for the replay case).
    old_index: PathBuf,
}

/// Runs of one byte value each: every chunk compresses to a few bytes, so (padded to 64)
/// many blobs have the same sealed length and can be swapped in place.
fn constant_runs(n: usize, run: usize) -> Vec<u8> {
    (0..n).map(|i| (i / run) as u8 + 1).collect()
}

/// The one name in `now` that is not in `before`.
fn new_name(before: &[String], now: &[String], what: &str) -> String {
    let new: Vec<&String> = now.iter().filter(|n| !before.contains(n)).collect();
    assert_eq!(new.len(), 1, "{what}: expected one new file, got {new:?}");
    new[0].clone()
}

impl Fixture {
    fn new() -> Fixture {
        let env = Env::new();
        let inputs = [
            ("runs.bin", constant_runs(3 * MIB, 300 * 1024)),
            ("mixed.bin", semi_compressible(2 * MIB, 51)),
        ];
        let old_index = env.path("index-after-1");
        let mut made = Vec::new();
        for (i, (part, data)) in inputs.into_iter().enumerate() {
            let packs_before: Vec<String> =
                env.packs().iter().map(|p| rel_name(&env.repo, p)).collect();
            let index_before = names_in(&env.repo.join("index"));
            let path = env.write(part, &data);
            let id = id_of(&env.snapshot(&["--path", path.to_str().unwrap()]));
            let packs_now: Vec<String> =
                env.packs().iter().map(|p| rel_name(&env.repo, p)).collect();
            let pack = new_name(&packs_before, &packs_now, "packs");
            let index = new_name(
                &index_before,
                &names_in(&env.repo.join("index")),
                "index files",
            );
            if i == 0 {
                copy_tree(&env.repo.join("index"), &old_index);
            }
            made.push((id, part.to_string(), data, pack, index));
        }
        let repo = env.open();
        let snaps = with_lists(&repo, made);
        Fixture {
            env,
            snaps,
            old_index,
        }
    }

    /// A fresh copy of the repository to tamper with.
    fn copy(&self) -> Env {
        let env = Env::empty();
        copy_tree(&self.env.repo, &env.repo);
        env
    }
}

/// Completes the fixture's snapshots with their list blob ids, read through the library.
fn with_lists(
    repo: &rbk::store::Repository,
    made: Vec<(String, String, Vec<u8>, String, String)>,
) -> [Snap; 2] {
    let snaps: Vec<Snap> = made
        .into_iter()
        .map(|(id, part, data, pack, index)| {
            let manifest = repo.read_snapshot(&id).expect("read snapshot");
            assert_eq!(manifest.parts.len(), 1, "one part");
            let lists = manifest.parts[0]
                .stored
                .lists
                .iter()
                .map(Id::to_hex)
                .collect();
            Snap {
                id,
                part,
                data,
                pack,
                index,
                lists,
            }
        })
        .collect();
    snaps.try_into().unwrap_or_else(|_| panic!("two snapshots"))
}

/// Whether a case names all of its files, or any one of them (alternatives).
#[derive(Clone, Copy)]
enum Names {
    All,
    Any,
}

/// `check --read-data --json` must exit 3 and name the files. If the repository does not open
/// (no report on stdout), the error on stderr must name one of them. Returns whether it opened.
fn assert_check_names(env: &Env, what: &str, expected: &[String], how: Names) -> bool {
    let Some(v) = check_damaged(env, what, expected) else {
        return false;
    };
    let files: Vec<&str> = v["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("{what}: no errors array: {v}"))
        .iter()
        .map(|e| {
            e["file"]
                .as_str()
                .unwrap_or_else(|| panic!("{what}: error without a file: {e}"))
        })
        .collect();
    let named = |n: &String| files.contains(&n.as_str());
    let found = match how {
        Names::All => expected.iter().all(named),
        Names::Any => expected.iter().any(named),
    };
    assert!(
        found,
        "{what}: check errors name files {files:?}, expected {} of {expected:?}: {v}",
        match how {
            Names::All => "all",
            Names::Any => "one",
        }
    );
    let mut distinct = files.clone();
    distinct.dedup();
    eprintln!("{what}: check errors name {distinct:?}");
    true
}

/// Restores a snapshot into a fresh directory: either it fails (not a panic, with a message,
/// nothing left under the part's name) or it gives back exactly the stored bytes. With
/// `must_succeed` (the tampering does not touch this snapshot) only the latter is accepted.
fn assert_restore_safe(env: &Env, snap: &Snap, what: &str, must_succeed: bool) {
    let to = env.path(&format!("restored-{}", &snap.id[..12]));
    let r = env.run(&["restore", &snap.id, "--to", to.to_str().unwrap()]);
    let what = format!("{what}: restore of {} ({})", &snap.id[..12], snap.part);
    assert_ne!(r.code, 101, "{what} panicked:\n{}", r.all());
    let partials: Vec<String> = names_in(&to)
        .into_iter()
        .filter(|n| n.starts_with(".rbk-"))
        .collect();
    assert!(
        partials.is_empty(),
        "{what} left temporary files {partials:?}"
    );
    let file = to.join(&snap.part);
    if r.code == EXIT_OK {
        assert_file_is(&file, &snap.data, &what);
        eprintln!("{what}: exit 0, right bytes");
        return;
    }
    assert!(
        !must_succeed,
        "{what}: the tampering does not touch this snapshot, yet restore failed:\n{}",
        r.all()
    );
    assert!(
        !r.stderr.trim().is_empty(),
        "{what}: failed (exit {}) without a message",
        r.code
    );
    if file.exists() {
        assert_file_is(
            &file,
            &snap.data,
            &format!("{what} failed, yet left a file"),
        );
    }
    eprintln!("{what}: exit {}: {}", r.code, r.stderr.trim());
}

/// Restores every snapshot; those at the indices in `untouched` must succeed.
fn assert_restores_safe(t: &Fixture, env: &Env, what: &str, untouched: &[usize]) {
    for (i, snap) in t.snaps.iter().enumerate() {
        assert_restore_safe(env, snap, what, untouched.contains(&i));
    }
}

fn swap_files(a: &Path, b: &Path) {
    let bytes_a = fs::read(a).expect("read");
    let bytes_b = fs::read(b).expect("read");
    fs::write(a, bytes_b).expect("write");
    fs::write(b, bytes_a).expect("write");
}

fn truncate_to_half(file: &Path) {
    let size = fs::metadata(file).expect("metadata").len();
    fs::OpenOptions::new()
        .write(true)
        .open(file)
        .expect("open")
        .set_len(size / 2)
        .expect("truncate");
}

#[test]
fn two_blobs_swapped_inside_a_pack_are_found() {
    let t = Fixture::new();
    let env = t.copy();
    let snap = &t.snaps[0];

    // Two distinct data blobs of the snapshot in the same pack with the same sealed length.
    let repo = env.open();
    let index = repo.load_index().expect("load index");
    let mut by_len: BTreeMap<(Id, u32), Vec<(Id, u32)>> = BTreeMap::new();
    for list in &snap.lists {
        let list = Id::from_hex(list).unwrap();
        for (chunk, _) in repo.read_list(&index, &list, "tamper").expect("read list") {
            let loc = index.get(&chunk).expect("indexed chunk");
            let same = by_len.entry((loc.pack, loc.length)).or_default();
            if !same.iter().any(|(id, _)| *id == chunk) {
                same.push((chunk, loc.offset));
            }
        }
    }
    let ((pack, length), pair) = by_len
        .iter()
        .find(|(_, blobs)| blobs.len() >= 2)
        .expect("two data blobs of equal length in one pack");
    let (a, b) = (pair[0].1 as usize, pair[1].1 as usize);
    let len = *length as usize;
    let file = env.repo.join(&snap.pack);
    assert_eq!(
        file_id(&file),
        pack.to_hex(),
        "the blobs are in the first pack"
    );
    let mut bytes = fs::read(&file).unwrap();
    let blob_a = bytes[a..a + len].to_vec();
    let blob_b = bytes[b..b + len].to_vec();
    assert_ne!(blob_a, blob_b);
    bytes[a..a + len].copy_from_slice(&blob_b);
    bytes[b..b + len].copy_from_slice(&blob_a);
    fs::write(&file, bytes).unwrap();

    let what = format!(
        "blobs at {a} and {b} ({len} bytes) of {} swapped",
        snap.pack
    );
    assert_check_names(&env, &what, std::slice::from_ref(&snap.pack), Names::All);
    assert_restores_safe(&t, &env, &what, &[1]);
}

#[test]
fn two_packs_with_swapped_contents_are_found() {
    let t = Fixture::new();
    let env = t.copy();
    let [a, b] = &t.snaps;
    swap_files(&env.repo.join(&a.pack), &env.repo.join(&b.pack));
    let what = format!("packs {} and {} swapped", a.pack, b.pack);
    assert_check_names(&env, &what, &[a.pack.clone(), b.pack.clone()], Names::All);
    assert_restores_safe(&t, &env, &what, &[]);
}

#[test]
fn two_snapshot_files_with_swapped_contents_are_found() {
    let t = Fixture::new();
    let env = t.copy();
    let [a, b] = &t.snaps;
    let dir = env.repo.join("snapshots");
    swap_files(&dir.join(&a.id), &dir.join(&b.id));
    let what = "snapshot files swapped";
    let names = [format!("snapshots/{}", a.id), format!("snapshots/{}", b.id)];
    assert_check_names(&env, what, &names, Names::All);
    assert_restores_safe(&t, &env, what, &[]);
}

#[test]
fn a_replayed_old_index_is_found() {
    let t = Fixture::new();
    let env = t.copy();
    let index_dir = env.repo.join("index");
    fs::remove_dir_all(&index_dir).unwrap();
    copy_tree(&t.old_index, &index_dir);
    assert!(
        !names_in(&index_dir).contains(&t.snaps[1].index),
        "the replayed index lacks the second snapshot's index file"
    );
    let what = "index/ replaced by its copy from before the second snapshot";
    // The second snapshot's list blobs are in no index: check names them.
    let names: Vec<String> = t.snaps[1]
        .lists
        .iter()
        .map(|l| format!("blob {l}"))
        .collect();
    assert_check_names(&env, what, &names, Names::Any);
    assert_restores_safe(&t, &env, what, &[0]);
}

#[test]
fn each_kind_of_file_truncated_to_half_is_found() {
    let t = Fixture::new();
    let key = names_in(&t.env.repo.join("keys"));
    assert_eq!(key.len(), 1, "one key file: {key:?}");
    let second = &t.snaps[1];
    // (what, the file relative to the repository, snapshots that must still restore)
    let cases: [(&str, String, &[usize]); 5] = [
        ("config", "config".into(), &[]),
        ("key file", format!("keys/{}", key[0]), &[]),
        ("pack", second.pack.clone(), &[0]),
        // Restore loads the whole index first, so a damaged index file may stop every restore.
        ("index file", format!("index/{}", second.index), &[]),
        ("snapshot file", format!("snapshots/{}", second.id), &[0]),
    ];
    for (kind, rel, untouched) in cases {
        let env = t.copy();
        let file = env.repo.join(&rel);
        truncate_to_half(&file);
        let what = format!("{kind} {rel} truncated to half");
        let opened = assert_check_names(&env, &what, std::slice::from_ref(&rel), Names::All);
        assert_restores_safe(&t, &env, &what, untouched);
        // Another command: no panic; if it fails, what it prints names the file, and on a
        // repository that does not open it must fail.
        let r = env.run(&["snapshots"]);
        assert_ne!(r.code, 101, "{what}: snapshots panicked:\n{}", r.all());
        if !opened {
            assert_ne!(
                r.code,
                EXIT_OK,
                "{what}: `rbk snapshots` succeeded:\n{}",
                r.all()
            );
        }
        if r.code != EXIT_OK {
            assert!(
                r.all().contains(&rel),
                "{what}: `rbk snapshots` failed (exit {}) without naming {rel}:\n{}",
                r.code,
                r.all()
            );
        }
    }
}

#[test]
fn a_deleted_pack_is_found_and_only_its_snapshot_fails() {
    let t = Fixture::new();
    let env = t.copy();
    let pack = &t.snaps[1].pack;
    fs::remove_file(env.repo.join(pack)).unwrap();
    let what = format!("pack {pack} deleted");
    assert_check_names(&env, &what, std::slice::from_ref(pack), Names::All);
    assert_restores_safe(&t, &env, &what, &[0]);
}

/// Listing snapshots when one file is damaged: both output modes list it, name it, and exit 3
/// (as `key list` does for a damaged key file, with or without `--json`).
#[test]
fn a_truncated_snapshot_file_makes_snapshots_exit_3_in_both_modes() {
    let env = Env::new();
    let path = env.write("small.bin", &random_bytes(64 * 1024, 52));
    let id = id_of(&env.snapshot(&["--path", path.to_str().unwrap()]));
    let rel = format!("snapshots/{id}");
    truncate_to_half(&env.repo.join(&rel));

    let plain = env.run(&["snapshots"]);
    assert_eq!(plain.code, EXIT_DAMAGED, "plain:\n{}", plain.all());
    assert!(plain.all().contains(&rel), "plain:\n{}", plain.all());

    let r = env.run(&["--json", "snapshots"]);
    let v = r.json();
    let listed = v.as_array().unwrap_or_else(|| panic!("not an array: {v}"));
    assert!(
        listed.iter().any(
            |s| s["id"] == id.as_str() && s["error"].as_str().is_some_and(|e| e.contains(&rel))
        ),
        "--json lists the damaged snapshot with an error naming {rel}: {v}"
    );
    assert_eq!(
        r.code,
        EXIT_DAMAGED,
        "--json snapshots must exit 3 like the plain listing:\n{}",
        r.all()
    );
}
