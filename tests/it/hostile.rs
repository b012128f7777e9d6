//! A hostile repository: whoever can write the NAS plants files in every folder of it
//! (garbage, empty, huge sparse, a FIFO, links to a file outside and to /dev/zero, a
//! directory, a file dated in the future, costly key files) and every command runs against
//! each. None may panic or hang, memory stays bounded, a failure is a clear error naming
//! what is wrong, and nothing outside the repository and the restore target is written.

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rbk::store::keys::{KdfParams, KeyFile};

use crate::util::*;

/// Each command must end within this (a FIFO read without care would hang forever).
const LIMIT: Duration = Duration::from_secs(60);
/// Peak memory any command may reach here: the 8 MiB key derivation of the tests' keys and
/// small snapshots need a few tens of MiB; a planted file read whole would need gigabytes.
const RSS_LIMIT_MIB: u64 = 400;

/// A repository with two snapshots, and a file outside it that nothing may touch.
struct Fixture {
    env: Env,
    /// The snapshots, oldest first.
    ids: [String; 2],
    input: PathBuf,
    outside: PathBuf,
}

impl Fixture {
    fn new() -> Fixture {
        let env = Env::new();
        let input = env.write("metadata.sql", &semi_compressible(300 * 1024, 61));
        let first = id_of(&env.snapshot(&["--path", input.to_str().unwrap()]));
        env.write("metadata.sql", &semi_compressible(300 * 1024, 62));
        let second = id_of(&env.snapshot(&["--path", input.to_str().unwrap()]));
        // A real verification record beside whatever is planted, for the commands that read
        // them (snapshots, check, prune) to read.
        env.ok(&["verify", &first[..8]]);
        let outside = env.write("outside-secret", b"root's secret, mode 0600\n");
        fs::set_permissions(&outside, fs::Permissions::from_mode(0o600)).unwrap();
        Fixture {
            env,
            ids: [first, second],
            input,
            outside,
        }
    }

    /// A fresh copy of the repository for one case.
    fn copy(&self, case: &str) -> PathBuf {
        let to = self.env.path(&format!("case-{case}"));
        copy_tree(&self.env.repo, &to);
        to
    }

    /// Every command a user or a schedule runs, against `repo`.
    fn commands(&self, repo: &Path, out: &Path) -> Vec<Vec<String>> {
        let [a, b] = &self.ids;
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let out = out.to_str().unwrap();
        let _ = repo;
        vec![
            s(&["snapshots"]),
            s(&["--json", "snapshots"]),
            s(&["stats"]),
            s(&["diff", &a[..8], &b[..8]]),
            s(&["check"]),
            s(&["check", "--read-data"]),
            s(&["restore", &a[..8], "--to", &format!("{out}/a")]),
            s(&["restore", "latest", "--to", &format!("{out}/latest")]),
            s(&["verify", "latest"]),
            s(&["snapshot", "--path", self.input.to_str().unwrap()]),
            s(&["key", "list"]),
            s(&["prune", "--keep-last", "5", "--dry-run"]),
            s(&["prune", "--keep-last", "5"]),
            s(&["repair", "index", "--dry-run"]),
            s(&["repair", "snapshots", "--dry-run"]),
            s(&["unlock"]),
            s(&["repair", "index"]),
            s(&["check", "--read-data"]),
        ]
    }
}

/// What can be planted, and how.
#[derive(Debug, Clone, Copy)]
enum Plant {
    Garbage,
    Empty,
    HugeSparse,
    Fifo,
    LinkOutside,
    LinkDevZero,
    LinkDirOutside,
    Directory,
    FutureDated,
}

const PLANTS: [Plant; 9] = [
    Plant::Garbage,
    Plant::Empty,
    Plant::HugeSparse,
    Plant::Fifo,
    Plant::LinkOutside,
    Plant::LinkDevZero,
    Plant::LinkDirOutside,
    Plant::Directory,
    Plant::FutureDated,
];

fn plant(what: Plant, at: &Path, outside: &Path) {
    if let Some(dir) = at.parent() {
        fs::create_dir_all(dir).unwrap();
    }
    // `config` is replaced; elsewhere the name is new.
    let _ = fs::remove_file(at);
    match what {
        Plant::Garbage => fs::write(at, random_bytes(1000, 5)).unwrap(),
        Plant::Empty => fs::write(at, b"").unwrap(),
        Plant::HugeSparse => fs::File::create(at)
            .and_then(|f| f.set_len(8 << 30))
            .unwrap(),
        Plant::Fifo => {
            let ok = std::process::Command::new("mkfifo")
                .arg(at)
                .status()
                .unwrap()
                .success();
            assert!(ok, "mkfifo {}", at.display());
        }
        Plant::LinkOutside => symlink(outside, at).unwrap(),
        Plant::LinkDevZero => symlink("/dev/zero", at).unwrap(),
        Plant::LinkDirOutside => symlink(outside.parent().unwrap(), at).unwrap(),
        Plant::Directory => {
            fs::create_dir_all(at).unwrap();
            fs::write(at.join("inside"), b"x").unwrap();
        }
        Plant::FutureDated => {
            fs::write(at, random_bytes(1000, 6)).unwrap();
            let ok = std::process::Command::new("touch")
                .args(["-d", "2100-01-01"])
                .arg(at)
                .status()
                .unwrap()
                .success();
            assert!(ok, "touch {}", at.display());
        }
    }
}

/// Where a planted file goes in each folder: a name readers take for one of theirs.
fn target(repo: &Path, folder: &str) -> PathBuf {
    let hex64 = "ab".repeat(32);
    match folder {
        "config" => repo.join("config"),
        "keys" => repo.join("keys").join("cd".repeat(16)),
        "data" => repo.join("data").join("ab").join(&hex64),
        "locks" => repo.join("locks").join("ef".repeat(16)),
        other => repo.join(other).join(&hex64),
    }
}

/// Mode, bytes and modification time of the file outside, and the names beside it.
fn outside_state(f: &Fixture) -> (u32, Vec<u8>, std::time::SystemTime) {
    let m = fs::metadata(&f.outside).unwrap();
    (
        m.permissions().mode(),
        fs::read(&f.outside).unwrap(),
        m.modified().unwrap(),
    )
}

/// Runs every command against `repo` and holds each to the rules.
fn run_all(f: &Fixture, repo: &Path, case: &str, planted: &str) {
    let before = outside_state(f);
    let out = f.env.path(&format!("out-{case}"));
    for args in f.commands(repo, &out) {
        let what = format!("{case}: rbk {}", args.join(" "));
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let m = run_measured(cmd_for(repo, PASSWORD, &argv), LIMIT, &what);
        let r = &m.run;
        assert!(
            [EXIT_OK, EXIT_FAILED, EXIT_DAMAGED, EXIT_WARNINGS].contains(&r.code),
            "{what}: exit {} (a panic is 101, a signal -1):\n{}",
            r.code,
            r.all()
        );
        assert!(!r.stderr.contains("panicked"), "{what}:\n{}", r.all());
        assert!(
            m.max_rss_mib <= RSS_LIMIT_MIB,
            "{what}: {} MiB resident, more than {RSS_LIMIT_MIB}",
            m.max_rss_mib
        );
        if r.code == EXIT_FAILED || r.code == EXIT_DAMAGED {
            // A clear error: it names the planted file (or, for a snapshot the plant made
            // unreadable, what to do), never only an OS error code.
            assert!(
                r.all().contains(planted) || r.all().contains("rbk forget"),
                "{what}: failed without naming {planted}:\n{}",
                r.all()
            );
        }
    }
    assert_eq!(
        outside_state(f),
        before,
        "{case}: the file outside the repository was touched"
    );
    assert_eq!(
        fs::read_dir(f.outside.parent().unwrap())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with(".rbk"))
            .count(),
        0,
        "{case}: rbk wrote beside the file outside the repository"
    );
}

fn every_plant_in(folder: &str) {
    let f = Fixture::new();
    for p in PLANTS {
        let case = format!("{folder}-{p:?}");
        let repo = f.copy(&case);
        let at = target(&repo, folder);
        plant(p, &at, &f.outside);
        let planted = at
            .strip_prefix(&repo)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        run_all(&f, &repo, &case, &planted);
        // Whatever every other command ignores, check points out (unless a command
        // removed it: prune deletes a pack in no index, unlock an unreadable lock,
        // repair index replaces index files).
        if fs::symlink_metadata(&at).is_err() {
            continue;
        }
        let r = run(cmd_for(&repo, PASSWORD, &["--json", "check"]));
        if !r.stdout.trim().is_empty() {
            let v = r.json();
            let named = ["errors", "warnings"].iter().any(|k| {
                v[k].as_array()
                    .into_iter()
                    .flatten()
                    .any(|p| p["file"].as_str().is_some_and(|f| f.starts_with(&planted)))
            });
            assert!(named, "{case}: check does not name {planted}: {v}");
        } else {
            assert!(r.stderr.contains(&planted), "{case}:\n{}", r.all());
        }
    }
}

#[test]
fn planted_in_config() {
    every_plant_in("config");
}

#[test]
fn planted_in_keys() {
    every_plant_in("keys");
}

#[test]
fn planted_in_data() {
    every_plant_in("data");
}

#[test]
fn planted_in_index() {
    every_plant_in("index");
}

#[test]
fn planted_in_snapshots() {
    every_plant_in("snapshots");
}

#[test]
fn planted_in_locks() {
    every_plant_in("locks");
}

#[test]
fn planted_in_deletions() {
    every_plant_in("deletions");
}

#[test]
fn planted_in_verifications() {
    every_plant_in("verifications");
}

/// The repository's own key file, read before anything is planted beside it: its name is
/// random, so "the first file in keys/" would be a planted one as often as not.
fn the_real_key(repo: &Path) -> KeyFile {
    let names = names_in(&repo.join("keys"));
    assert_eq!(names.len(), 1, "the fixture has one key: {names:?}");
    KeyFile::decode(
        &names[0],
        &fs::read(repo.join("keys").join(&names[0])).unwrap(),
    )
    .expect("the fixture's key")
}

/// A copy of the repository's key file with other Argon2id parameters (it opens with no
/// password, but whoever tries it pays for the derivation).
fn costly_key(real: &KeyFile, kdf: KdfParams) -> Vec<u8> {
    let mut key = real.clone();
    key.kdf = kdf;
    key.encode()
}

/// Key files anyone can plant: one at the bounds rbk accepts, one far beyond them (4 GiB, 64
/// passes: minutes and gigabytes per command before), and ten cheap ones tried before the
/// real key. With the right password every command stays fast and small. With a wrong one,
/// and twenty more cheap ones, rbk tries at most 20 key files within a bounded amount of key
/// derivation, says some were not tried, and exits 5.
#[test]
fn planted_key_files_cost_bounded_time_and_memory() {
    let f = Fixture::new();
    let repo = f.copy("costly-keys");
    let real = the_real_key(&repo);
    let beyond = KdfParams {
        memory_kib: 4 * 1024 * 1024,
        iterations: 64,
        parallelism: 1,
    };
    let bound = KdfParams {
        memory_kib: 1024 * 1024,
        iterations: 10,
        parallelism: 1,
    };
    fs::write(
        repo.join("keys").join("ee".repeat(16)),
        costly_key(&real, beyond),
    )
    .unwrap();
    fs::write(
        repo.join("keys").join("ef".repeat(16)),
        costly_key(&real, bound),
    )
    .unwrap();
    let plant_cheap = |range: std::ops::Range<u8>| {
        for i in range {
            let cheap = KdfParams {
                memory_kib: 64,
                iterations: 1,
                parallelism: 1,
            };
            let name = format!("{:02x}", i).repeat(16);
            fs::write(repo.join("keys").join(name), costly_key(&real, cheap)).unwrap();
        }
    };
    plant_cheap(0..10);
    run_all(&f, &repo, "costly-keys", "keys/");
    plant_cheap(10..30);

    let m = run_measured(
        cmd_for(&repo, "not the password", &["snapshots"]),
        LIMIT,
        "a wrong password against costly keys",
    );
    assert_eq!(m.run.code, EXIT_WRONG_PASSWORD, "{}", m.run.all());
    assert!(m.run.stderr.contains("not tried"), "{}", m.run.stderr);
    assert!(
        m.max_rss_mib <= RSS_LIMIT_MIB,
        "{} MiB for a wrong password",
        m.max_rss_mib
    );
    assert!(
        m.elapsed < Duration::from_secs(20),
        "a wrong password took {:?}",
        m.elapsed
    );
}

/// A planted pack below the backend's bound for any pack (1 GiB) but larger than any pack
/// of this repository can be: check and prune, which read packs whole, refuse it unread
/// instead of holding 900 MiB (twice, with two reading threads).
#[test]
fn a_planted_pack_larger_than_this_repository_writes_is_not_read_whole() {
    let f = Fixture::new();
    let repo = f.copy("big-pack");
    let name = "ab".repeat(32);
    let at = repo.join("data").join("ab").join(&name);
    fs::create_dir_all(at.parent().unwrap()).unwrap();
    fs::File::create(&at)
        .and_then(|file| file.set_len(900 << 20))
        .unwrap();
    let m = run_measured(
        cmd_for(&repo, PASSWORD, &["--json", "check", "--read-data"]),
        LIMIT,
        "check --read-data",
    );
    assert!(m.max_rss_mib < 200, "{} MiB resident", m.max_rss_mib);
    assert!(
        m.run.stdout.contains(&format!("data/ab/{name}")),
        "check names the planted pack:\n{}",
        m.run.all()
    );
    let m = run_measured(
        cmd_for(&repo, PASSWORD, &["prune", "--reclaim-only"]),
        LIMIT,
        "prune",
    );
    assert!(m.max_rss_mib < 200, "{} MiB resident", m.max_rss_mib);
}

/// The memory bounds above are the command's own: a test process that holds 300 MiB (as the
/// whole suite in one process does at times) does not make a small command look large.
#[test]
fn peak_memory_measured_is_the_commands_own() {
    let held: Vec<u8> = vec![1u8; 300 << 20];
    // Touch every page, so the memory is resident and not only reserved.
    let touched: u64 = held.iter().step_by(4096).map(|&b| u64::from(b)).sum();
    assert_eq!(touched, (held.len() / 4096) as u64);
    let mut c = std::process::Command::new(BIN);
    c.arg("--version");
    let m = run_measured(c, LIMIT, "rbk --version");
    assert_eq!(m.run.code, EXIT_OK, "{}", m.run.all());
    assert!(
        m.max_rss_mib < 100,
        "{} MiB for rbk --version",
        m.max_rss_mib
    );
    drop(held);
}
