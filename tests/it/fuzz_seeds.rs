//! Seed corpora for the fuzz targets, taken from real repository files: every decoder the
//! `decode_files` target feeds must accept the plaintext of a real file of its kind (so the
//! fuzzer starts from valid inputs), and the dumps `neo4j_dump` starts from are real and
//! generated ones. With `RBK_FUZZ_SEEDS=DIR` the seeds are written to `DIR/<target>/`
//! (`fuzz/run.sh` does that); otherwise to a temporary directory.

use std::fs;
use std::path::{Path, PathBuf};

use rbk::codec::neo4j_dump::DumpFormat;
use rbk::store::config::{CONFIG_VERSION, Config};
use rbk::store::format::{FileKind, decode_plain, encode_plain, open_file};
use rbk::store::index::{INDEX_VERSION, IndexFile};
use rbk::store::keys::KeyFile;
use rbk::store::lock::{LOCK_VERSION, LockInfo, list_locks};
use rbk::store::manifest::{SNAPSHOT_VERSION, Snapshot, decode_list};
use rbk::store::prune::DELETION_VERSION;
use rbk::store::verification::VERIFICATION_VERSION;

use crate::util::*;

fn write_seed(dir: &Path, target: &str, name: &str, bytes: &[u8]) {
    let d = dir.join(target);
    fs::create_dir_all(&d).expect("seed dir");
    fs::write(d.join(name), bytes).expect("write seed");
}

/// `decode_files` picks its decoder by the first byte (mod 9): this is that byte.
fn tagged(which: u8, plain: &[u8]) -> Vec<u8> {
    let mut v = vec![which];
    v.extend_from_slice(plain);
    v
}

/// A structured file's plaintext as `decode_files` seed `tag`: encoded as rbk writes it,
/// proved to decode again, and written under `name`.
fn structured_seed<T: serde::Serialize + serde::de::DeserializeOwned>(
    out: &Path,
    name: &str,
    tag: u8,
    version: u16,
    value: &T,
) {
    let plain = encode_plain(version, value);
    decode_plain::<T>("seed", version, &plain)
        .unwrap_or_else(|e| panic!("{name} does not round-trip: {e}"));
    write_seed(out, "decode_files", name, &tagged(tag, &plain));
}

#[test]
fn fuzz_seed_corpora_come_from_real_files() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out: PathBuf = std::env::var_os("RBK_FUZZ_SEEDS")
        .map(PathBuf::from)
        .unwrap_or_else(|| tmp.path().to_path_buf());

    // A repository with snapshots, a forgotten one (so prune leaves a deletion record
    // while a lock is held), a verification record, and a lock.
    let env = Env::new();
    let a = semi_compressible(2 * MIB, 1);
    let pa = env.write("a.bin", &a);
    let first = id_of(&env.snapshot(&["--path", pa.to_str().unwrap()]));
    let b = semi_compressible(2 * MIB, 2);
    let pb = env.write("b.bin", &b);
    env.snapshot(&["--path", pb.to_str().unwrap(), "--tag", "t"]);
    env.ok(&["forget", &first]);
    env.ok(&["verify", "latest"]);
    let repo = env.open();
    let held = repo.lock(false, "it: fuzz seeds").expect("lock");
    env.ok(&["prune", "--reclaim-only"]);
    let crypto = repo.crypto();
    let backend = repo.backend();

    let config: Config = open_file(
        crypto,
        FileKind::Config,
        "",
        CONFIG_VERSION,
        &backend.read(FileKind::Config, "").expect("config"),
    )
    .expect("open config");
    structured_seed(&out, "config", 0, CONFIG_VERSION, &config);

    for name in backend.list(FileKind::Key).expect("keys") {
        let bytes = backend.read(FileKind::Key, &name).expect("key");
        KeyFile::decode(&name, &bytes).expect("key decodes");
        write_seed(
            &out,
            "decode_files",
            &format!("key-{name}"),
            &tagged(1, &bytes),
        );
    }
    let mut lists = 0;
    for name in backend.list(FileKind::Index).expect("index") {
        let file: IndexFile = repo.read_index_file(&name).expect("index file");
        structured_seed(&out, &format!("index-{name}"), 3, INDEX_VERSION, &file);
        // A pack header's plaintext, from the first pack this index lists.
        if let Some(pack) = file.packs.first() {
            let entries: Vec<rbk::store::pack::PackEntry> = pack
                .blobs
                .iter()
                .map(|b| rbk::store::pack::PackEntry {
                    kind: b.kind,
                    id: b.id,
                    length: b.length,
                })
                .collect();
            let plain = encode_plain(1, &entries);
            write_seed(
                &out,
                "decode_files",
                &format!("pack-header-{name}"),
                &tagged(2, &plain),
            );
        }
    }
    let index = repo.load_index().expect("load index");
    for (id, snapshot) in repo.snapshots().expect("snapshots") {
        let snapshot: Snapshot = snapshot.expect("snapshot");
        structured_seed(
            &out,
            &format!("snapshot-{id}"),
            4,
            SNAPSHOT_VERSION,
            &snapshot,
        );
        for list in snapshot.parts.iter().flat_map(|p| &p.stored.lists) {
            let bytes = repo.read_blob(&index, list, "seed").expect("list blob");
            decode_list(&bytes).expect("list decodes");
            write_seed(
                &out,
                "decode_files",
                &format!("list-{list}"),
                &tagged(7, &bytes),
            );
            lists += 1;
        }
    }
    assert!(lists > 0);
    let mut locks = 0;
    for (name, info) in list_locks(backend.as_ref(), crypto).expect("locks") {
        let info: LockInfo = info.expect("lock");
        structured_seed(&out, &format!("lock-{name}"), 5, LOCK_VERSION, &info);
        locks += 1;
    }
    assert!(locks > 0, "the held lock is listed");
    let mut records = 0;
    for name in backend.list(FileKind::Deletion).expect("deletions") {
        let record = rbk::store::prune::read_record(&repo, &name).expect("record");
        structured_seed(
            &out,
            &format!("deletion-{name}"),
            6,
            DELETION_VERSION,
            &record,
        );
        records += 1;
    }
    assert!(
        records > 0,
        "prune waited for the held lock and left a record"
    );
    let mut verifications = 0;
    for (id, record) in repo.verifications().expect("verifications") {
        let record = record.expect("verification record");
        structured_seed(
            &out,
            &format!("verification-{id}"),
            8,
            VERIFICATION_VERSION,
            &record,
        );
        verifications += 1;
    }
    assert!(verifications > 0, "verify left a record");
    drop(held);

    // Dumps: each format, generated; and the real fixtures when present.
    let files = vec![
        ("neostore".to_string(), text_bytes(20_000, 3)),
        ("schema/index.db".to_string(), random_bytes(3000, 4)),
    ];
    for format in DumpFormat::ALL {
        let dump = build_dump(format, &files);
        write_seed(
            &out,
            "neo4j_dump",
            &format!("generated-{}", format.name()),
            &dump,
        );
    }
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures/neo4j");
    if let Ok(entries) = fs::read_dir(&fixtures) {
        for e in entries.flatten() {
            if e.path().extension().is_some_and(|x| x == "dump") {
                let bytes = fs::read(e.path()).expect("fixture");
                write_seed(&out, "neo4j_dump", &e.file_name().to_string_lossy(), &bytes);
            }
        }
    }
    write_seed(&out, "chunker_roundtrip", "text", &text_bytes(16 * 1024, 5));
    write_seed(
        &out,
        "chunker_roundtrip",
        "random",
        &random_bytes(16 * 1024, 6),
    );
}
