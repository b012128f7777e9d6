//! What restore writes into its target, a directory others may write too: every part name that backs up restores, symlinks planted at temporary or side-file names are never followed, restored files are private, existing files are not replaced without `--overwrite`, and a full target disk is named as such.
//!
//! The attacker of these tests can write the target directory (a service user's directory,
//! where the SQLite file lives, or a shared `--to` directory) and plants symlinks to a
//! root-only file, the victim, outside it; rbk runs as root. The victim's bytes, mode and
//! owner must come through every restore unchanged.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use rbk::codec::neo4j_dump::DumpFormat;

use crate::host::{Host, assert_success, run_out};
use crate::stack::assert_contains;
use crate::util::*;

/// The test knob that fixes the first temporary name rbk tries, so a test can plant a
/// symlink at it; later tries are random as always.
const KNOB: &str = "RBK_TEST_PARTIAL_NAME";
const KNOWN: &str = "0123456789abcdef";
/// A service user's uid and gid (Debian's `nobody`).
const SERVICE: u32 = 65534;

/// A root-only file outside every target: what a planted symlink points at.
struct Victim {
    path: PathBuf,
}

const SECRET: &[u8] = b"root's secret: nobody else may read or change this\n";

impl Victim {
    fn new(env: &Env) -> Victim {
        let path = env.write("victim", SECRET);
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).expect("chmod");
        std::os::unix::fs::chown(&path, Some(0), Some(0)).expect("chown");
        Victim { path }
    }

    /// Plants a symlink to the victim at `link`.
    fn plant(&self, link: &Path) {
        let _ = fs::remove_file(link);
        symlink(&self.path, link).unwrap_or_else(|e| panic!("symlink {}: {e}", link.display()));
    }

    fn assert_untouched(&self, what: &str) {
        let m = fs::symlink_metadata(&self.path).expect("stat the victim");
        assert!(m.is_file(), "{what}: the victim is no longer a file");
        assert_eq!(
            (m.mode() & 0o7777, m.uid(), m.gid()),
            (0o600, 0, 0),
            "{what}: the victim's mode and owner changed"
        );
        assert_file_is(&self.path, SECRET, &format!("{what}: the victim's bytes"));
    }

    /// A link planted at a name rbk does not own is left as it was.
    fn assert_still_linked(&self, link: &Path, what: &str) {
        let target = fs::read_link(link)
            .unwrap_or_else(|e| panic!("{what}: {} is no longer a link: {e}", link.display()));
        assert_eq!(target, self.path, "{what}: {}", link.display());
    }
}

fn mode_of(path: &Path) -> u32 {
    fs::symlink_metadata(path)
        .unwrap_or_else(|e| panic!("stat {}: {e}", path.display()))
        .mode()
        & 0o7777
}

fn assert_regular(path: &Path, what: &str) {
    let m = fs::symlink_metadata(path)
        .unwrap_or_else(|e| panic!("{what}: stat {}: {e}", path.display()));
    assert!(
        m.is_file(),
        "{what}: {} is not a regular file",
        path.display()
    );
}

/// Files named `names` with distinct contents in `<tmp>/in`, one snapshot of them all (by
/// `--path`, so each part is named after its file); the contents.
fn snapshot_files(env: &Env, names: &[&str]) -> Vec<Vec<u8>> {
    let dir = env.path("in");
    fs::create_dir_all(&dir).expect("mkdir");
    let mut args: Vec<String> = Vec::new();
    let mut contents = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let data = random_bytes(100_000 + i * 7_000, 500 + i as u64);
        let path = dir.join(name);
        fs::write(&path, &data).expect("write input");
        args.extend(["--path".to_string(), path.display().to_string()]);
        contents.push(data);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    env.snapshot(&args);
    contents
}

// ---------------------------------------------------------------- restore --to

/// Item 6: a part name up to 255 bytes is accepted at snapshot, so it must restore, all parts
/// at once and one by `--part`: the temporary name must not grow with the part's name.
#[test]
fn every_part_name_that_backs_up_restores() {
    let env = Env::new();
    let long = format!("{}.sql", "m".repeat(239)); // 243 bytes: over 255 with a 13-byte prefix
    let longest = format!("{}.dump", "g".repeat(250)); // 255 bytes, NAME_MAX
    let names = [long.as_str(), longest.as_str()];
    let contents = snapshot_files(&env, &names);

    let to = env.path("out");
    let r = env.run(&["restore", "latest", "--to", to.to_str().unwrap()]);
    assert_eq!(r.code, EXIT_OK, "restore of long names:\n{}", r.all());
    for (name, data) in names.iter().zip(&contents) {
        assert_file_is(&to.join(name), data, &format!("{} bytes long", name.len()));
    }
    let one = env.path("one");
    let r = env.run(&[
        "restore",
        "latest",
        "--to",
        one.to_str().unwrap(),
        "--part",
        &longest,
    ]);
    assert_eq!(r.code, EXIT_OK, "--part of the longest name:\n{}", r.all());
    assert_eq!(
        names_in(&one),
        [longest.as_str()],
        "only that part, no temporary file"
    );
    assert_file_is(&one.join(&longest), &contents[1], "the 255-byte name");
}

/// Item 10, `--to`: symlinks to a root-only file planted at the temporary names (the
/// predictable `.rbk-partial-NAME` of earlier versions, and the first name this one tries,
/// fixed by the test knob) are not followed: the restore succeeds, writes each part as a
/// regular file of its own, and leaves the victim and the planted links as they were.
#[test]
fn restore_to_never_follows_a_planted_symlink() {
    let env = Env::new();
    let dir = env.path("in");
    fs::create_dir_all(&dir).expect("mkdir");
    let data = random_bytes(300_000, 71);
    let dump = build_dump(DumpFormat::Dzv1Zstd, &store_files(72, 1));
    let data_path = env.write("in/data.bin", &data);
    let dump_path = env.write("in/neo4j.dump", &dump);
    env.snapshot(&[
        "--path",
        data_path.to_str().unwrap(),
        "--path",
        dump_path.to_str().unwrap(),
    ]);

    let victim = Victim::new(&env);
    let to = env.path("out");
    fs::create_dir(&to).expect("mkdir");
    let links: Vec<PathBuf> = [
        ".rbk-partial-data.bin".to_string(),
        ".rbk-partial-neo4j.dump".to_string(),
        format!(".rbk-partial-{KNOWN}"),
    ]
    .iter()
    .map(|l| to.join(l))
    .collect();
    for l in &links {
        victim.plant(l);
    }
    let mut c = env.cmd(&["restore", "latest", "--to", to.to_str().unwrap()]);
    c.env(KNOB, KNOWN);
    let r = run(c);
    victim.assert_untouched("restore --to with planted links");
    assert_eq!(r.code, EXIT_OK, "{}", r.all());
    assert_regular(&to.join("data.bin"), "data.bin");
    assert_regular(&to.join("neo4j.dump"), "neo4j.dump");
    assert_file_is(&to.join("data.bin"), &data, "data.bin restored");
    let restored = fs::read(to.join("neo4j.dump")).expect("read dump");
    assert_eq!(
        decode_dump(&restored).1,
        decode_dump(&dump).1,
        "the dump's tar"
    );
    for l in &links {
        victim.assert_still_linked(l, "a link rbk did not make");
    }
    let mut expected: Vec<String> = vec!["data.bin".into(), "neo4j.dump".into()];
    expected.sort();
    assert_eq!(names_in(&to), expected, "no temporary file left");
}

/// Item 11, `--to`: a part records no mode, so what restore writes is for its owner alone
/// (0600), whatever the umask; a dump re-encoded on the way too.
#[test]
fn restored_files_are_private() {
    let env = Env::new();
    let raw = env.write("metadata.sql", &text_bytes(50_000, 81));
    let dump = env.write(
        "neo4j.dump",
        &build_dump(DumpFormat::Dzv1Zstd, &store_files(82, 1)),
    );
    env.snapshot(&[
        "--path",
        raw.to_str().unwrap(),
        "--path",
        dump.to_str().unwrap(),
    ]);
    let to = env.path("out");
    let mut c = env.cmd(&["restore", "latest", "--to", to.to_str().unwrap()]);
    // SAFETY: umask is async-signal-safe and touches only the child's own state.
    unsafe {
        c.pre_exec(|| {
            libc::umask(0o022);
            Ok(())
        });
    }
    let r = run(c);
    assert_eq!(r.code, EXIT_OK, "{}", r.all());
    for name in ["metadata.sql", "neo4j.dump"] {
        assert_eq!(mode_of(&to.join(name)), 0o600, "{name} under umask 022");
    }
}

/// Item 18: `--to` a directory that already holds files of the parts' names is refused
/// before anything is written (exit 2; the error lists those files, a symlink among them,
/// and says how to go on); `--part` of a name that is free restores; `--overwrite`
/// replaces them, the symlink by a regular file (its target untouched).
#[test]
fn restore_to_refuses_to_replace_files_without_overwrite() {
    let env = Env::new();
    let names = ["a.sql", "b.sql", "c.sql"];
    let contents = snapshot_files(&env, &names);
    let victim = Victim::new(&env);
    let to = env.path("out");
    fs::create_dir(&to).expect("mkdir");
    fs::write(to.join("a.sql"), b"my own edits").expect("write");
    victim.plant(&to.join("c.sql"));
    let before = tree_digest(&to);

    for json in [false, true] {
        let mut args = vec!["restore", "latest", "--to", to.to_str().unwrap()];
        if json {
            args.insert(0, "--json");
        }
        let r = env.run(&args);
        assert_eq!(r.code, EXIT_USAGE, "{}", r.all());
        assert!(
            r.stdout.is_empty(),
            "a refusal prints no result:\n{}",
            r.stdout
        );
        for listed in ["a.sql", "c.sql", "--overwrite"] {
            assert_contains(&r.stderr, listed, "the refusal");
        }
        assert!(
            !r.stderr.contains("b.sql"),
            "b.sql is free, yet listed:\n{}",
            r.stderr
        );
        assert_eq!(tree_digest(&to), before, "a refused restore wrote nothing");
        victim.assert_still_linked(&to.join("c.sql"), "refused");
    }

    env.ok(&[
        "restore",
        "latest",
        "--to",
        to.to_str().unwrap(),
        "--part",
        "b.sql",
    ]);
    assert_file_is(&to.join("b.sql"), &contents[1], "b.sql, which was free");
    assert_file_is(&to.join("a.sql"), b"my own edits", "a.sql not replaced");

    env.ok(&[
        "restore",
        "latest",
        "--to",
        to.to_str().unwrap(),
        "--overwrite",
    ]);
    for (name, data) in names.iter().zip(&contents) {
        assert_regular(&to.join(name), name);
        assert_file_is(&to.join(name), data, name);
    }
    victim.assert_untouched("--overwrite of a symlink");
    assert_eq!(names_in(&to), names, "no temporary file left");

    // --overwrite is about files written with --to; alone it is a usage error.
    let r = env.run(&["restore", "latest", "--overwrite"]);
    assert_eq!(r.code, EXIT_USAGE, "{}", r.all());
}

// ---------------------------------------------------------------- a full disk

/// Runs `script` (sh) in a private mount namespace where `mnt` is a fresh 1 MiB tmpfs,
/// with rbk's environment (`$RBK` the binary, `$MNT` the mount point), then lists what is
/// left on the tmpfs. The run and that listing.
fn on_small_disk(env: &Env, mnt: &Path, script: &str, vars: &[(&str, &Path)]) -> (Run, String) {
    fs::create_dir_all(mnt).expect("mkdir");
    let listing = env.path("left-on-small-disk");
    let wrapped = format!(
        "mount -t tmpfs -o size=1m tmpfs \"$MNT\" || exit 99\n{script}\nrc=$?\n\
         ls -A \"$MNT\" > \"$LISTING\"\nexit $rc\n"
    );
    let mut c = Command::new("unshare");
    c.args(["-m", "sh", "-c", &wrapped])
        .env("RBK", BIN)
        .env("MNT", mnt)
        .env("LISTING", &listing)
        .env("RBK_REPO", &env.repo)
        .env("RBK_PASSWORD", PASSWORD)
        .env_remove("RBK_PASSWORD_FILE")
        .env_remove("RBK_PASSWORD_COMMAND")
        .env_remove("RBK_LOG")
        .env_remove("RBK_PROGRESS")
        .stdin(std::process::Stdio::null());
    for (k, v) in vars {
        c.env(k, v);
    }
    let r = run(c);
    assert_ne!(r.code, 99, "cannot mount a tmpfs:\n{}", r.all());
    let left = fs::read_to_string(&listing).expect("the listing");
    (r, left)
}

/// The hint rbk gives for a full restore target: it names the target's directory, says to
/// free space there or restore elsewhere, and does not send the user to prune a repository
/// that is not full.
fn assert_target_full_hint(r: &Run, dir: &Path, what: &str) {
    assert_eq!(r.code, EXIT_FAILED, "{what}:\n{}", r.all());
    assert_contains(&r.stderr, "No space left on device", what);
    let hint = r
        .stderr
        .lines()
        .find(|l| l.contains("is full"))
        .unwrap_or_else(|| panic!("{what}: no disk-full hint:\n{}", r.stderr));
    assert_contains(
        hint,
        &dir.display().to_string(),
        &format!("{what}: names the target"),
    );
    assert_contains(hint, "free space there", what);
    assert!(
        !r.stderr.contains("prune"),
        "{what}: sends the user to prune a repository that is not full:\n{}",
        r.stderr
    );
}

/// Item 17a: a restore onto a full disk names that disk (the `--to` directory, the SQLite
/// file's directory in host mode), not the repository, and keeps nothing half-written; a
/// full repository still gets the prune hint.
#[test]
fn a_full_target_disk_is_named_not_the_repository() {
    let env = Env::new();
    let big = env.write("big.bin", &random_bytes(3 * MIB, 91));
    let dump = env.write(
        "neo4j.dump",
        &build_dump(
            DumpFormat::Dzv1Zstd,
            &[
                ("./".into(), vec![]),
                ("./neostore.nodestore.db".into(), random_bytes(3 * MIB, 92)),
            ],
        ),
    );
    env.snapshot(&[
        "--path",
        big.to_str().unwrap(),
        "--path",
        dump.to_str().unwrap(),
    ]);
    let mnt = env.path("small");
    for part in ["big.bin", "neo4j.dump"] {
        let (r, left) = on_small_disk(
            &env,
            &mnt,
            "\"$RBK\" restore latest --to \"$MNT/out\" --part \"$PART\"",
            &[("PART", Path::new(part))],
        );
        let what = format!("restore of {part} onto a full disk");
        assert_target_full_hint(&r, &mnt.join("out"), &what);
        assert_eq!(left.trim(), "out", "{what}: left {left}");
    }

    // Control: the repository's disk is the full one.
    let (r, _) = on_small_disk(
        &env,
        &mnt,
        "RBK_REPO=\"$MNT/repo\" \"$RBK\" init --kdf-memory-mib 8 >/dev/null && \
         RBK_REPO=\"$MNT/repo\" \"$RBK\" snapshot --path \"$BIG\"",
        &[("BIG", &big)],
    );
    assert_eq!(r.code, EXIT_FAILED, "{}", r.all());
    assert_contains(&r.stderr, "rbk prune", "a full repository");
}

// ---------------------------------------------------------------- host mode, SQLite

fn sqlite(db: &Path, sql: &str) -> String {
    let out = run_out(Command::new("sqlite3").arg("-batch").arg(db).arg(sql));
    assert_success(&out, &format!("sqlite3 {sql:?}"));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A database in `dir`, owned by the service user with mode 0640, in a directory the
/// service user owns (it may plant anything there).
fn service_db(dir: &Path, name: &str) -> PathBuf {
    fs::create_dir_all(dir).expect("mkdir");
    std::os::unix::fs::chown(dir, Some(SERVICE), Some(SERVICE)).expect("chown dir");
    let db = dir.join(name);
    sqlite(
        &db,
        "create table t (k text primary key, v text); insert into t values ('a', 'first')",
    );
    std::os::unix::fs::chown(&db, Some(SERVICE), Some(SERVICE)).expect("chown db");
    fs::set_permissions(&db, fs::Permissions::from_mode(0o640)).expect("chmod");
    db
}

/// Commits a row in WAL mode and dies before the checkpoint, as a killed RushDB does: the
/// row lives only in `-wal`.
fn commit_into_wal(db: &Path, value: &str) {
    let py = format!(
        "import sqlite3, os\n\
         c = sqlite3.connect({:?})\n\
         c.execute('pragma journal_mode=wal')\n\
         c.execute(\"insert or replace into t values ('w', '{value}')\")\n\
         c.commit()\n\
         os._exit(0)\n",
        db.display().to_string()
    );
    assert_success(
        &run_out(Command::new("python3").arg("-c").arg(&py)),
        "python3",
    );
}

fn side(db: &Path, suffix: &str) -> PathBuf {
    let mut s = db.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

fn assert_owned_by_service(path: &Path, mode: u32, what: &str) {
    let m = fs::symlink_metadata(path).unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(m.is_file(), "{what}: not a regular file");
    assert_eq!(
        (m.mode() & 0o7777, m.uid(), m.gid()),
        (mode, SERVICE, SERVICE),
        "{what}: mode and owner"
    );
}

/// A host-mode setup of SQLite metadata alone: the host, the service user's directory, the
/// database `name` in it, and the rbk.toml that backs it up.
fn sqlite_host(name: &str) -> (Host, PathBuf, PathBuf, PathBuf) {
    let host = Host::new();
    let srv = host.env.path("srv");
    let db = service_db(&srv, name);
    let mut keys = host.markers();
    keys.push(("sqlite_path", db.display().to_string()));
    let config = host.config("rbk", &keys);
    (host, srv, db, config)
}

/// Item 10, host mode: the service user, who owns the SQLite file's directory, plants
/// symlinks to a root-only file at the temporary names (the predictable ones of earlier
/// versions and the first name this one tries) and at the `-wal`, `-shm` and `-journal`
/// names. Restores with and without a WAL go through, the victim keeps its bytes, mode and
/// owner, and the database and its WAL come back as regular files with the database's
/// owner and mode.
#[test]
fn host_sqlite_restore_never_follows_a_planted_symlink() {
    let (host, srv, db, config) = sqlite_host("rushdb.db");
    let plain = id_of(&host.snapshot(&config));
    commit_into_wal(&db, "only in the wal");
    let with_wal = host.snapshot(&config);
    assert_eq!(
        crate::stack::part_names(&with_wal),
        ["rushdb.db", "rushdb.db-wal"]
    );
    let with_wal = id_of(&with_wal);
    let rows = |db: &Path| sqlite(db, "select k, v from t order by k");
    let rows_wal = rows(&db);
    assert!(rows_wal.contains("only in the wal"), "{rows_wal}");
    sqlite(
        &db,
        "pragma wal_checkpoint(truncate); pragma journal_mode=delete; update t set v = 'later'",
    );
    host.take_events();

    let victim = Victim::new(&host.env);
    let temps = [
        ".rbk-partial-rushdb.db".to_string(),
        ".rbk-partial-rushdb.db-wal".to_string(),
        format!(".rbk-partial-{KNOWN}"),
    ];
    for (id, want_wal) in [(&with_wal, true), (&plain, false), (&with_wal, true)] {
        let what = format!("host restore {} (WAL: {want_wal})", &id[..8]);
        for t in &temps {
            victim.plant(&srv.join(t));
        }
        for s in ["-wal", "-shm", "-journal"] {
            victim.plant(&side(&db, s));
        }
        let mut c = host.cmd(&config, &["--json", "restore", id]);
        c.env(KNOB, KNOWN);
        let r = wait_with_guard(
            c.spawn().expect("spawn"),
            std::time::Duration::from_secs(120),
            &what,
        );
        victim.assert_untouched(&what);
        assert_eq!(r.code, EXIT_OK, "{what}:\n{}", r.all());
        assert_eq!(host.take_events(), ["pause", "resume"], "{what}");
        assert_owned_by_service(&db, 0o640, &what);
        if want_wal {
            assert_owned_by_service(&side(&db, "-wal"), 0o640, &format!("{what}: -wal"));
        } else {
            assert!(
                fs::symlink_metadata(side(&db, "-wal")).is_err(),
                "{what}: -wal left"
            );
        }
        for s in ["-shm", "-journal"] {
            assert!(
                fs::symlink_metadata(side(&db, s)).is_err(),
                "{what}: {s} left"
            );
        }
        for t in &temps {
            victim.assert_still_linked(&srv.join(t), &what);
        }
        let mut expected = vec!["rushdb.db".to_string()];
        if want_wal {
            expected.push("rushdb.db-wal".into());
        }
        assert_eq!(names_in(&srv), expected, "{what}: no temporary file left");
        // Read a copy: sqlite3 as root would create a root-owned -shm beside the original.
        let copy = host.env.path("copy");
        let _ = fs::remove_dir_all(&copy);
        fs::create_dir(&copy).expect("mkdir");
        for n in &expected {
            fs::copy(srv.join(n), copy.join(n)).expect("copy");
        }
        let got = rows(&copy.join("rushdb.db"));
        if want_wal {
            assert_eq!(got, rows_wal, "{what}: the WAL's row is back");
        } else {
            assert!(
                !got.contains("only in the wal") && !got.contains("later"),
                "{what}: {got}"
            );
        }
    }
}

/// Items 6 and 11, host mode: a SQLite file whose name is long (245 bytes: its `-journal`
/// still fits in NAME_MAX, a 13-byte prefix does not) restores; a file that no longer
/// exists comes back private (0600), as its mode is not known.
#[test]
fn host_sqlite_long_name_and_new_file() {
    let host = Host::new();
    let srv = host.env.path("srv");
    let name = format!("{}.db", "r".repeat(242));
    let db = service_db(&srv, &name);
    let mut keys = host.markers();
    keys.push(("sqlite_path", db.display().to_string()));
    let config = host.config("rbk", &keys);
    let id = id_of(&host.snapshot(&config));
    let before = fs::read(&db).expect("read");
    sqlite(&db, "update t set v = 'later'");
    host.take_events();

    let r = host.run(&config, &["restore", &id]);
    assert_eq!(r.code, EXIT_OK, "a 245-byte file name:\n{}", r.all());
    assert_file_is(&db, &before, "the long-named file");
    assert_owned_by_service(&db, 0o640, "the long-named file keeps its owner and mode");

    fs::remove_file(&db).expect("rm");
    let mut c = host.cmd(&config, &["restore", &id]);
    // SAFETY: umask is async-signal-safe and touches only the child's own state.
    unsafe {
        c.pre_exec(|| {
            libc::umask(0o022);
            Ok(())
        });
    }
    let r = wait_with_guard(
        c.spawn().expect("spawn"),
        std::time::Duration::from_secs(120),
        "restore",
    );
    assert_eq!(r.code, EXIT_OK, "{}", r.all());
    assert_file_is(&db, &before, "the file, back where there was none");
    assert_eq!(mode_of(&db), 0o600, "a file whose mode is not known");
    assert_eq!(names_in(&srv), [name], "no temporary file left");
}

/// Host mode: a `sqlite_path` that is a symlink is refused before anything runs (rbk would
/// replace the link, not the file it points to, with owner and mode it cannot know), and
/// nothing changes.
#[test]
fn host_sqlite_path_that_is_a_symlink_is_refused() {
    let (host, _, db, config) = sqlite_host("rushdb.db");
    let id = id_of(&host.snapshot(&config));
    host.take_events();

    let victim = Victim::new(&host.env);
    fs::remove_file(&db).expect("rm");
    victim.plant(&db);
    let r = host.run(&config, &["restore", &id]);
    assert_eq!(r.code, EXIT_FAILED, "{}", r.all());
    assert_contains(&r.stderr, "is a symbolic link", "the refusal");
    assert_contains(&r.stderr, &db.display().to_string(), "names sqlite_path");
    assert!(
        host.take_events().is_empty(),
        "a refused restore ran commands"
    );
    victim.assert_untouched("sqlite_path a symlink");
    victim.assert_still_linked(&db, "sqlite_path a symlink");
}

/// The other direction of item 10, host mode: whoever can write the SQLite file's directory
/// (the service user) plants `rushdb.db-wal` as a link to a root-only file. The snapshot,
/// taken as root, must not follow it into the backup: it warns (exit 6) and stores the
/// database alone. A `sqlite_path` that is itself a link is refused before anything runs.
#[test]
fn host_sqlite_snapshot_never_follows_a_planted_link() {
    let (host, srv, db, config) = sqlite_host("rushdb.db");
    let victim = Victim::new(&host.env);
    let wal = srv.join("rushdb.db-wal");
    victim.plant(&wal);

    let r = host.run(&config, &["--json", "snapshot"]);
    assert_eq!(r.code, EXIT_WARNINGS, "saved, with a warning:\n{}", r.all());
    let v = r.json();
    assert!(v["warnings"].to_string().contains("rushdb.db-wal"), "{v}");
    let parts: Vec<&str> = v["parts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(parts, ["rushdb.db"], "{v}");
    let out = host.env.path("out");
    let r = host.run(
        &config,
        &["restore", &id_of(&v), "--to", out.to_str().unwrap()],
    );
    assert_eq!(r.code, EXIT_OK, "{}", r.all());
    for f in files_under(&out) {
        let bytes = fs::read(&f).unwrap();
        assert!(
            !bytes.windows(SECRET.len()).any(|w| w == SECRET),
            "{} holds the victim's bytes",
            f.display()
        );
    }
    victim.assert_untouched("a planted -wal link");
    victim.assert_still_linked(&wal, "a planted -wal link");
    host.take_events();

    fs::remove_file(&wal).unwrap();
    let real = host.env.path("real.db");
    fs::rename(&db, &real).unwrap();
    symlink(&real, &db).unwrap();
    let r = host.run(&config, &["snapshot"]);
    assert_eq!(r.code, EXIT_FAILED, "{}", r.all());
    assert_contains(&r.stderr, "is a symbolic link", "the refusal");
    assert!(
        host.take_events().is_empty(),
        "a refused snapshot ran commands"
    );
}

/// Item 17a, host mode: the SQLite file's directory on a full disk is named as the full one.
#[test]
fn host_sqlite_restore_onto_a_full_disk_names_it() {
    let (host, srv, db, config) = sqlite_host("rushdb.db");
    sqlite(
        &db,
        "insert into t values ('big', hex(randomblob(1000000)))",
    );
    let id = id_of(&host.snapshot(&config));
    host.take_events();

    // The tmpfs hides the directory's files: the restore writes a new file there.
    let (r, left) = on_small_disk(
        &host.env,
        &srv,
        "RBK_CONFIG=\"$CONFIG\" \"$RBK\" restore \"$ID\"",
        &[("CONFIG", &config), ("ID", Path::new(&id))],
    );
    assert_target_full_hint(&r, &srv, "host restore onto a full disk");
    assert!(left.trim().is_empty(), "left on the full disk: {left}");
    assert_eq!(
        host.take_events(),
        ["pause", "resume"],
        "resumed after the failure"
    );
}
