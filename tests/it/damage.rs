//! Proves that damage to any kind of repository file is found and named: `check --read-data`
//! exits 3 naming the file, and `restore` fails naming it without leaving wrong bytes under
//! the real file name. A wrong password is exit 5 and changes nothing on disk.

use std::fs;
use std::path::PathBuf;

use crate::util::*;

/// A repository holding one snapshot of one part: every blob in it belongs to that part, so
/// damage anywhere in the data must stop the part's restore.
struct Template {
    env: Env,
    id: String,
    data: Vec<u8>,
}

const PART: &str = "data.bin";

impl Template {
    fn new() -> Template {
        let env = Env::new();
        // 3 MiB of half-random data: about 48 chunks in one pack.
        let data = semi_compressible(3 * MIB, 80);
        let path = env.write(PART, &data);
        let id = id_of(&env.snapshot(&["--path", path.to_str().unwrap()]));
        assert_eq!(env.packs().len(), 1, "the template has one pack");
        Template { env, id, data }
    }

    /// A fresh copy of the repository to damage.
    fn copy(&self) -> Env {
        let env = Env::empty();
        copy_tree(&self.env.repo, &env.repo);
        env
    }

    /// The only file in `dir` of the copy.
    fn only(env: &Env, dir: &str) -> PathBuf {
        let files = files_under(&env.repo.join(dir));
        assert_eq!(files.len(), 1, "{dir}: {files:?}");
        files.into_iter().next().unwrap()
    }
}

/// How the damaged repository is expected to behave on restore.
enum RestoreExpect {
    /// Fails with exit 3 and a message naming the file.
    Damaged,
    /// Fails (non-zero) with a message naming the file.
    Fails,
    /// The damage is in data restore does not use (a pack's header: restore reads blobs where
    /// the index says they are, each one authenticated): it succeeds, byte for byte.
    Succeeds,
}

/// Runs check and restore on a damaged copy and holds them to the contract. `names` are the
/// strings of which at least one must appear where the damage is reported (path or id).
fn assert_damage_found(
    t: &Template,
    env: &Env,
    what: &str,
    names: &[String],
    restore: RestoreExpect,
) {
    let names_any = |s: &str| names.iter().any(|n| s.contains(n.as_str()));

    // If the repository did not open, the error on stderr names the file.
    if let Some(v) = check_damaged(env, what, names) {
        let errors = v["errors"].as_array().unwrap();
        assert!(
            errors.iter().any(|e| names_any(e["file"].as_str().unwrap())
                || names_any(e["detail"].as_str().unwrap())),
            "{what}: no check error names any of {names:?}: {v}"
        );
    }
    // People read the plain report: it must name the file too.
    let plain = env.run(&["check", "--read-data"]);
    assert_eq!(plain.code, EXIT_DAMAGED, "{what}: {}", plain.all());
    assert!(
        names_any(&plain.all()),
        "{what}: the plain check report names none of {names:?}:\n{}",
        plain.all()
    );

    let to = env.path("restored");
    let r = env.run(&["restore", &t.id, "--to", to.to_str().unwrap()]);
    let partials: Vec<String> = names_in(&to)
        .into_iter()
        .filter(|n| n.starts_with(".rbk-"))
        .collect();
    assert!(
        partials.is_empty(),
        "{what}: restore left temporary files {partials:?}"
    );
    match restore {
        RestoreExpect::Succeeds => {
            assert_eq!(
                r.code,
                EXIT_OK,
                "{what}: restore reads only authenticated blobs and should succeed:\n{}",
                r.all()
            );
            assert_file_is(&to.join(PART), &t.data, what);
        }
        RestoreExpect::Damaged | RestoreExpect::Fails => {
            if matches!(restore, RestoreExpect::Damaged) {
                assert_eq!(
                    r.code,
                    EXIT_DAMAGED,
                    "{what}: restore must exit 3:\n{}",
                    r.all()
                );
            } else {
                assert_ne!(r.code, EXIT_OK, "{what}: restore must fail:\n{}", r.all());
            }
            assert!(
                names_any(&r.stderr),
                "{what}: the restore error names none of {names:?}:\n{}",
                r.stderr
            );
            assert!(
                !to.join(PART).exists(),
                "{what}: a failed restore left {} under the real name",
                PART
            );
        }
    }
}

/// Offsets worth damaging in a file of `len` bytes: its first, middle and last byte.
fn spots(len: u64) -> [u64; 3] {
    [0, len / 2, len - 1]
}

fn flip_and_check(t: &Template, dir: &str, restore: fn() -> RestoreExpect) {
    let len = fs::metadata(Template::only(&t.env, dir)).unwrap().len();
    for at in spots(len) {
        let env = t.copy();
        let file = Template::only(&env, dir);
        flip_byte(&file, at);
        let what = format!(
            "{} with byte {at} of {len} flipped",
            rel_name(&env.repo, &file)
        );
        let names = vec![rel_name(&env.repo, &file), file_id(&file)];
        assert_damage_found(t, &env, &what, &names, restore());
    }
}

#[test]
fn a_damaged_config_is_named() {
    let t = Template::new();
    let env = t.copy();
    let len = fs::metadata(env.repo.join("config")).unwrap().len();
    for at in spots(len) {
        let env = t.copy();
        flip_byte(&env.repo.join("config"), at);
        assert_damage_found(
            &t,
            &env,
            &format!("config byte {at} flipped"),
            &["config".into()],
            RestoreExpect::Damaged,
        );
    }
}

#[test]
fn a_damaged_key_file_is_named_not_taken_for_a_wrong_password() {
    let t = Template::new();
    flip_and_check(&t, "keys", || RestoreExpect::Damaged);
}

#[test]
fn a_damaged_index_file_is_named() {
    let t = Template::new();
    flip_and_check(&t, "index", || RestoreExpect::Damaged);
}

#[test]
fn a_damaged_snapshot_file_is_named() {
    let t = Template::new();
    flip_and_check(&t, "snapshots", || RestoreExpect::Damaged);
}

/// Bytes inside blobs: the first (a nonce), the middle of the blob area, the last blob byte.
#[test]
fn a_byte_flipped_inside_a_blob_is_found_and_stops_the_restore() {
    let t = Template::new();
    let pack = Template::only(&t.env, "data");
    let (header_at, _) = pack_header_span(&pack);
    for at in [0, header_at / 2, header_at - 1] {
        let env = t.copy();
        let file = Template::only(&env, "data");
        flip_byte(&file, at);
        let what = format!("pack blob byte {at} (of {header_at} blob bytes) flipped");
        assert_damage_found(
            &t,
            &env,
            &what,
            &[rel_name(&env.repo, &file), file_id(&file)],
            RestoreExpect::Damaged,
        );
    }
}

/// Bytes of the pack header and its length trailer: check finds them; restore does not need
/// the header (see `RestoreExpect::Succeeds`) and must still give the right bytes.
#[test]
fn a_byte_flipped_in_a_pack_header_is_found() {
    let t = Template::new();
    let pack = Template::only(&t.env, "data");
    let (header_at, header_len) = pack_header_span(&pack);
    let size = fs::metadata(&pack).unwrap().len();
    for at in [
        header_at,
        header_at + header_len / 2,
        header_at + header_len - 1,
        size - 1,
    ] {
        let env = t.copy();
        let file = Template::only(&env, "data");
        flip_byte(&file, at);
        let what = format!(
            "pack header byte {at} (header at {header_at}, {header_len} bytes, pack {size} bytes) flipped"
        );
        assert_damage_found(
            &t,
            &env,
            &what,
            &[rel_name(&env.repo, &file), file_id(&file)],
            RestoreExpect::Succeeds,
        );
    }
}

#[test]
fn a_truncated_pack_is_found_and_stops_the_restore() {
    let t = Template::new();
    let env = t.copy();
    let file = Template::only(&env, "data");
    let size = fs::metadata(&file).unwrap().len();
    fs::OpenOptions::new()
        .write(true)
        .open(&file)
        .unwrap()
        .set_len(size / 2)
        .unwrap();
    // Without --read-data too: the sizes alone show the truncation.
    let (r, v) = env.check(false);
    assert_eq!(
        r.code,
        EXIT_DAMAGED,
        "check without --read-data:\n{}",
        r.all()
    );
    assert!(
        v["errors"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["file"].as_str().unwrap().contains(&file_id(&file))),
        "{v}"
    );
    assert_damage_found(
        &t,
        &env,
        "pack truncated to half",
        &[rel_name(&env.repo, &file), file_id(&file)],
        RestoreExpect::Damaged,
    );
}

#[test]
fn a_deleted_pack_is_found_and_stops_the_restore() {
    let t = Template::new();
    let env = t.copy();
    let file = Template::only(&env, "data");
    fs::remove_file(&file).unwrap();
    let (r, v) = env.check(false);
    assert_eq!(
        r.code,
        EXIT_DAMAGED,
        "check without --read-data:\n{}",
        r.all()
    );
    assert!(
        v["errors"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["file"].as_str().unwrap().contains(&file_id(&file))),
        "{v}"
    );
    assert_damage_found(
        &t,
        &env,
        "pack deleted",
        &[rel_name(&env.repo, &file), file_id(&file)],
        RestoreExpect::Fails,
    );
}

/// Every command refuses a wrong password with exit 5 and a clear message, and leaves every
/// byte of the repository as it was (no lock, no half-written file).
#[test]
fn a_wrong_password_is_exit_5_and_changes_nothing() {
    let t = Template::new();
    let env = &t.env;
    let before = tree_digest(&env.repo);
    let input = env.write("input.bin", b"some bytes");
    let to = env.path("restored");
    let commands: Vec<Vec<&str>> = vec![
        vec!["snapshots"],
        vec!["snapshot", "--path", input.to_str().unwrap()],
        vec!["restore", "latest", "--to", to.to_str().unwrap()],
        vec!["check", "--read-data"],
        vec!["unlock", "--all"],
    ];
    for args in &commands {
        let r = run(cmd_for(&env.repo, "not the password", args));
        assert_eq!(
            r.code,
            EXIT_WRONG_PASSWORD,
            "rbk {args:?} with a wrong password:\n{}",
            r.all()
        );
        assert!(
            r.stderr.contains("wrong password"),
            "rbk {args:?}: the message must say so:\n{}",
            r.stderr
        );
        assert_eq!(
            tree_digest(&env.repo),
            before,
            "rbk {args:?} with a wrong password changed the repository"
        );
    }
    assert!(
        !to.exists(),
        "a restore with a wrong password created {}",
        to.display()
    );
    // The control: the right password still works on the untouched repository.
    env.assert_check_ok("with the right password");
}
