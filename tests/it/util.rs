//! Shared helpers: a temporary repository driven through the real `rbk` binary, deterministic data, and file surgery.

use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rbk::codec::neo4j_dump::{DumpFormat, Envelope, open_dump};
use rbk::store::InitOptions;
use rbk::store::Repository;
use rbk::store::backend::LocalBackend;
use rbk::store::keys::KdfParams;
use serde_json::Value;
use tempfile::TempDir;

pub const PASSWORD: &str = "it: correct horse battery staple";
pub const BIN: &str = env!("CARGO_BIN_EXE_rbk");

/// Exit codes the README documents; the tests hold the binary to them.
pub const EXIT_OK: i32 = 0;
pub const EXIT_FAILED: i32 = 1;
pub const EXIT_USAGE: i32 = 2;
pub const EXIT_DAMAGED: i32 = 3;
pub const EXIT_LOCKED: i32 = 4;
pub const EXIT_WRONG_PASSWORD: i32 = 5;
pub const EXIT_WARNINGS: i32 = 6;
pub const EXIT_NEEDS_ATTENTION: i32 = 7;

pub const MIB: usize = 1024 * 1024;

/// A finished `rbk` run.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn from_output(status: ExitStatus, stdout: Vec<u8>, stderr: Vec<u8>) -> Run {
        Run {
            // A signal is not an exit code; -1 never matches one the tests expect.
            code: status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
        }
    }

    /// The one JSON value `--json` prints on stdout.
    pub fn json(&self) -> Value {
        serde_json::from_str(self.stdout.trim()).unwrap_or_else(|e| {
            panic!(
                "stdout is not one JSON value ({e}):\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        })
    }

    /// Everything the user saw, for "does the message name X" assertions.
    pub fn all(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
}

/// A temporary directory with a repository at `<tmp>/repo` and room for inputs and restores.
pub struct Env {
    pub tmp: TempDir,
    pub repo: PathBuf,
}

impl Env {
    /// An environment whose repository does not exist yet.
    pub fn empty() -> Env {
        let tmp = tempfile::Builder::new()
            .prefix("rbk-it-")
            .tempdir()
            .expect("tempdir");
        let repo = tmp.path().join("repo");
        Env { tmp, repo }
    }

    /// An environment with a fresh repository made by `rbk init`.
    pub fn new() -> Env {
        let env = Env::empty();
        // 8 MiB keeps Argon2 quick; every command pays it once to open the repository.
        env.ok(&["init", "--kdf-memory-mib", "8"]);
        env
    }

    /// A path inside the temporary directory (outside the repository).
    pub fn path(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }

    pub fn write(&self, name: &str, data: &[u8]) -> PathBuf {
        let p = self.path(name);
        fs::write(&p, data).unwrap_or_else(|e| panic!("write {}: {e}", p.display()));
        p
    }

    /// `rbk ARGS` against this repository, with the password in the environment and no stdin.
    pub fn cmd(&self, args: &[&str]) -> Command {
        cmd_for(&self.repo, PASSWORD, args)
    }

    pub fn run(&self, args: &[&str]) -> Run {
        run(self.cmd(args))
    }

    /// Runs and insists on exit 0.
    pub fn ok(&self, args: &[&str]) -> Run {
        let r = self.run(args);
        assert_eq!(r.code, EXIT_OK, "rbk {args:?} failed:\n{}", r.all());
        r
    }

    /// `rbk --json snapshot ARGS`, which must succeed; its JSON report.
    pub fn snapshot(&self, args: &[&str]) -> Value {
        let mut all = vec!["--json", "snapshot"];
        all.extend_from_slice(args);
        self.ok(&all).json()
    }

    /// `rbk --json snapshots`: the listed snapshots, oldest first.
    pub fn snapshots(&self) -> Vec<Value> {
        match self.ok(&["--json", "snapshots"]).json() {
            Value::Array(a) => a,
            other => panic!("snapshots --json is not an array: {other}"),
        }
    }

    /// Snapshot ids as the `snapshots/` directory holds them, sorted.
    pub fn snapshot_files(&self) -> Vec<String> {
        names_in(&self.repo.join("snapshots"))
    }

    /// `rbk --json check [--read-data]`: the run and its parsed report.
    pub fn check(&self, read_data: bool) -> (Run, Value) {
        let mut args = vec!["--json", "check"];
        if read_data {
            args.push("--read-data");
        }
        let r = self.run(&args);
        let v = r.json();
        (r, v)
    }

    /// `check --read-data` must pass clean: exit 0, no errors, no warnings.
    pub fn assert_check_ok(&self, context: &str) {
        let (r, v) = self.check(true);
        assert_eq!(
            r.code,
            EXIT_OK,
            "{context}: check --read-data failed or warned:\n{}",
            r.all()
        );
        assert_eq!(v["ok"], Value::Bool(true), "{context}: {v}");
        assert_eq!(
            v["errors"].as_array().map(Vec::len),
            Some(0),
            "{context}: {v}"
        );
        assert_eq!(
            v["warnings"].as_array().map(Vec::len),
            Some(0),
            "{context}: {v}"
        );
    }

    /// `check --read-data` after an interrupted or failed write: no errors, and warnings only
    /// for what an interrupted write leaves (a pack in no index, a temporary file), with the
    /// exit code saying which (6 with such warnings, 0 without). The report.
    pub fn assert_check_ok_but_litter(&self, context: &str) -> Value {
        let (r, v) = self.check(true);
        assert_eq!(v["ok"], Value::Bool(true), "{context}: {v}");
        assert_eq!(
            v["errors"].as_array().map(Vec::len),
            Some(0),
            "{context}: {v}"
        );
        let warnings = v["warnings"].as_array().expect("warnings array");
        for w in warnings {
            assert!(
                is_unreferenced_pack(w) || is_leftover_temp(w),
                "{context}: unexpected warning {w}"
            );
        }
        assert_eq!(
            r.code,
            check_code_for(&v),
            "{context}: check --read-data exit code:\n{}",
            r.all()
        );
        v
    }

    /// Opens the repository through the library.
    pub fn open(&self) -> Repository {
        open_repo(&self.repo)
    }

    /// Every pack file under `data/`, as paths.
    pub fn packs(&self) -> Vec<PathBuf> {
        files_under(&self.repo.join("data"))
    }
}

pub fn cmd_for(repo: &Path, password: &str, args: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    c.args(args)
        .env("RBK_REPO", repo)
        .env("RBK_PASSWORD", password)
        .env_remove("RBK_PASSWORD_FILE")
        .env_remove("RBK_PASSWORD_COMMAND")
        .env_remove("RBK_LOG")
        .env_remove("RBK_PROGRESS")
        .env_remove("RBK_METRICS_FILE")
        .env_remove("RBK_PING_URL")
        .stdin(Stdio::null());
    c
}

/// Runs a command to its end, capturing both streams.
pub fn run(mut c: Command) -> Run {
    let out = c
        .output()
        .unwrap_or_else(|e| panic!("cannot run {c:?}: {e}"));
    Run::from_output(out.status, out.stdout, out.stderr)
}

/// Waits for a spawned child, failing the test (not hanging it) if it never ends:
/// a deadlock guard, not a timing assertion.
pub fn wait_with_guard(mut child: Child, limit: Duration, what: &str) -> Run {
    // Drained while it runs: a child that fills a pipe nobody reads would block on it, and
    // the guard would call that a deadlock of its own.
    let drain = |pipe: Option<Box<dyn std::io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut out = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut out);
            }
            out
        })
    };
    let stdout = drain(child.stdout.take().map(|p| Box::new(p) as _));
    let stderr = drain(child.stderr.take().map(|p| Box::new(p) as _));
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            // What it said before it stuck is where to start looking.
            let said = format!(
                "{}\n{}",
                String::from_utf8_lossy(&stdout.join().unwrap_or_default()),
                String::from_utf8_lossy(&stderr.join().unwrap_or_default())
            );
            panic!("{what} did not finish within {limit:?}: deadlock? Its output:\n{said}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Run::from_output(
        status,
        stdout.join().unwrap_or_default(),
        stderr.join().unwrap_or_default(),
    )
}

pub fn open_repo(path: &Path) -> Repository {
    Repository::open(Arc::new(LocalBackend::new(path)), PASSWORD.as_bytes())
        .unwrap_or_else(|e| panic!("open {}: {e}", path.display()))
}

/// A repository made through the library with the cheapest key derivation, for tests that
/// never run the binary against it.
pub fn init_repo_lib(path: &Path) -> Repository {
    let options = InitOptions {
        kdf: KdfParams {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
        },
        compression_level: 3,
        ..Default::default()
    };
    Repository::init(
        Arc::new(LocalBackend::new(path)),
        PASSWORD.as_bytes(),
        &options,
    )
    .expect("init")
}

/// The exit code `rbk check` owes its JSON report: 3 with errors, 6 with warnings only, 0
/// for a clean repository.
pub fn check_code_for(v: &Value) -> i32 {
    let count = |key: &str| {
        v[key]
            .as_array()
            .unwrap_or_else(|| panic!("no {key} array in {v}"))
            .len()
    };
    if count("errors") > 0 {
        EXIT_DAMAGED
    } else if count("warnings") > 0 {
        EXIT_WARNINGS
    } else {
        EXIT_OK
    }
}

/// A check warning about a temporary file (a write that was cut short).
pub fn is_leftover_temp(w: &Value) -> bool {
    w["file"].as_str().is_some_and(|f| f.contains("/.tmp-"))
        && w["detail"]
            .as_str()
            .is_some_and(|d| d.contains("temporary file"))
}

/// A check warning about a pack in no index (left by an interrupted snapshot or prune).
pub fn is_unreferenced_pack(w: &Value) -> bool {
    w["file"].as_str().is_some_and(|f| f.starts_with("data/"))
        && w["detail"]
            .as_str()
            .is_some_and(|d| d.contains("in no index"))
}

/// A run that must not have done its job: neither 0 nor 6 (done, with warnings).
pub fn assert_not_done(r: &Run, what: &str) {
    assert!(
        r.code != EXIT_OK && r.code != EXIT_WARNINGS,
        "{what}: expected a failure, got exit {}:\n{}",
        r.code,
        r.all()
    );
}

/// `check --read-data --json` on a damaged repository: exit 3 (never a panic), and either its
/// report (`ok` false), or, when the repository did not open, an error on stderr naming one
/// of `names`. The report, if it opened.
pub fn check_damaged(env: &Env, what: &str, names: &[String]) -> Option<Value> {
    let r = env.run(&["--json", "check", "--read-data"]);
    assert_ne!(r.code, 101, "{what}: check panicked:\n{}", r.all());
    assert_eq!(
        r.code,
        EXIT_DAMAGED,
        "{what}: check --read-data must exit 3:\n{}",
        r.all()
    );
    if r.stdout.trim().is_empty() {
        assert!(
            names.iter().any(|n| r.stderr.contains(n.as_str())),
            "{what}: the repository did not open and the error names none of {names:?}:\n{}",
            r.stderr
        );
        eprintln!("{what}: check did not open: {}", r.stderr.trim());
        return None;
    }
    let v = r.json();
    assert_eq!(v["ok"], false, "{what}: {v}");
    Some(v)
}

/// A command that reports warnings (a stack snapshot or restore) finished its job: exit 6
/// exactly when it warned, 0 when it did not. Warnings are the `warnings` array of its JSON
/// report, or `warning:` lines of its text. Anything else fails the test.
pub fn assert_done(r: &Run, what: &str) {
    assert!(
        r.code == EXIT_OK || r.code == EXIT_WARNINGS,
        "{what} failed:\n{}",
        r.all()
    );
    let warned = match serde_json::from_str::<Value>(r.stdout.trim()) {
        Ok(v) if v.get("warnings").is_some() => {
            v["warnings"].as_array().is_some_and(|w| !w.is_empty())
        }
        _ => r.all().contains("warning: "),
    };
    let expected = if warned { EXIT_WARNINGS } else { EXIT_OK };
    assert_eq!(
        r.code,
        expected,
        "{what}: exit 6 exactly when it warned:\n{}",
        r.all()
    );
}

/// Id as hex from a JSON report.
pub fn id_of(v: &Value) -> String {
    v["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no id in {v}"))
        .to_string()
}

pub fn u64_of(v: &Value, key: &str) -> u64 {
    v[key].as_u64().unwrap_or_else(|| panic!("no {key} in {v}"))
}

// ---------------------------------------------------------------- data

/// xorshift64*: deterministic, fast, and good enough that zstd cannot shrink its output.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    pub fn fill(&mut self, buf: &mut [u8]) {
        let mut chunks = buf.chunks_exact_mut(8);
        for c in &mut chunks {
            c.copy_from_slice(&self.next_u64().to_le_bytes());
        }
        let rest = chunks.into_remainder();
        let last = self.next_u64().to_le_bytes();
        rest.copy_from_slice(&last[..rest.len()]);
    }
}

/// Incompressible bytes.
pub fn random_bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut v = vec![0u8; n];
    Rng::new(seed).fill(&mut v);
    v
}

/// Log-like text from a small vocabulary: compresses about threefold, never repeats a line.
pub fn text_bytes(n: usize, seed: u64) -> Vec<u8> {
    const WORDS: [&str; 16] = [
        "MATCH",
        "(n:Person)",
        "RETURN",
        "n.name",
        "WHERE",
        "created",
        "project",
        "token",
        "user",
        "edge",
        "SET",
        "MERGE",
        "label",
        "value",
        "graph",
        "rushdb",
    ];
    let mut rng = Rng::new(seed);
    let mut out = Vec::with_capacity(n + 128);
    let mut line = 0u64;
    while out.len() < n {
        line += 1;
        write!(out, "{line:08} ").unwrap();
        for _ in 0..8 {
            out.extend_from_slice(WORDS[rng.below(16) as usize].as_bytes());
            out.push(b' ');
        }
        writeln!(out, "{}", rng.next_u64() % 1_000_000).unwrap();
    }
    out.truncate(n);
    out
}

/// About half random, half zeros in every 4 KiB block: zstd halves it, and no two blocks are alike.
pub fn semi_compressible(n: usize, seed: u64) -> Vec<u8> {
    let mut v = vec![0u8; n];
    let mut rng = Rng::new(seed);
    for block in v.chunks_mut(4096) {
        let half = block.len().div_ceil(2);
        rng.fill(&mut block[..half]);
    }
    v
}

/// `period` random bytes repeated to length `n`.
pub fn repeated(n: usize, period: usize, seed: u64) -> Vec<u8> {
    let unit = random_bytes(period.max(1), seed);
    unit.iter().copied().cycle().take(n).collect()
}

/// Panics with the first differing offset instead of printing megabytes.
pub fn assert_same_bytes(actual: &[u8], expected: &[u8], what: &str) {
    if actual == expected {
        return;
    }
    let first = actual
        .iter()
        .zip(expected)
        .position(|(a, b)| a != b)
        .unwrap_or(actual.len().min(expected.len()));
    panic!(
        "{what}: {} bytes, expected {}; first difference at offset {first}",
        actual.len(),
        expected.len()
    );
}

pub fn assert_file_is(path: &Path, expected: &[u8], what: &str) {
    let actual =
        fs::read(path).unwrap_or_else(|e| panic!("{what}: cannot read {}: {e}", path.display()));
    assert_same_bytes(&actual, expected, what);
}

// ---------------------------------------------------------------- files

/// Regular file names directly in `dir`, sorted (empty if `dir` is missing),
/// without `.tmp-*` writes in progress, which docs/FORMAT.md tells readers to ignore.
pub fn names_in(dir: &Path) -> Vec<String> {
    let mut out: Vec<String> = match fs::read_dir(dir) {
        Ok(rd) => rd
            .map(|e| e.expect("dir entry"))
            .filter(|e| e.file_type().map(|t| t.is_file()).unwrap_or(false))
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| !n.starts_with(".tmp-"))
            .collect(),
        Err(_) => Vec::new(),
    };
    out.sort();
    out
}

/// Every regular file below `dir`, recursively, sorted.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = fs::read_dir(&d) else { continue };
        for e in rd {
            let e = e.expect("dir entry");
            let t = e.file_type().expect("file type");
            if t.is_dir() {
                stack.push(e.path());
            } else if t.is_file() {
                out.push(e.path());
            }
        }
    }
    out.sort();
    out
}

/// Every entry below `root` (directories too) with the BLAKE3 of each file's bytes:
/// equal trees mean nothing was created, removed or changed.
pub fn tree_digest(root: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap_or_else(|e| panic!("read_dir {}: {e}", d.display())) {
            let e = e.expect("dir entry");
            let rel = e.path().strip_prefix(root).unwrap().display().to_string();
            let t = e.file_type().expect("file type");
            if t.is_dir() {
                out.insert(rel + "/", "dir".to_string());
                stack.push(e.path());
            } else {
                let bytes = fs::read(e.path()).expect("read");
                out.insert(rel, blake3::hash(&bytes).to_hex().to_string());
            }
        }
    }
    out
}

/// Total bytes of the regular files below `root`.
pub fn tree_size(root: &Path) -> u64 {
    files_under(root)
        .iter()
        .map(|p| fs::metadata(p).map(|m| m.len()).unwrap_or(0))
        .sum()
}

/// Copies a directory tree (a repository template for destructive tests).
pub fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).expect("mkdir");
    for e in fs::read_dir(from).expect("read_dir") {
        let e = e.expect("dir entry");
        let dest = to.join(e.file_name());
        if e.file_type().expect("file type").is_dir() {
            copy_tree(&e.path(), &dest);
        } else {
            fs::copy(e.path(), &dest).expect("copy");
        }
    }
}

/// Flips every bit of one byte in place.
pub fn flip_byte(path: &Path, offset: u64) {
    let mut bytes = fs::read(path).expect("read");
    let i = usize::try_from(offset).unwrap();
    assert!(
        i < bytes.len(),
        "offset {i} is outside {} ({} bytes)",
        path.display(),
        bytes.len()
    );
    bytes[i] ^= 0xFF;
    fs::write(path, bytes).expect("write");
}

/// The pack's layout from its trailer: (where the sealed header starts, its length).
pub fn pack_header_span(pack: &Path) -> (u64, u64) {
    let bytes = fs::read(pack).expect("read pack");
    let n = bytes.len();
    let len = u32::from_le_bytes(bytes[n - 4..].try_into().unwrap()) as u64;
    (n as u64 - 4 - len, len)
}

/// The repository-relative name of a file (`data/ab/ab12...`), as messages give it.
pub fn rel_name(repo: &Path, file: &Path) -> String {
    file.strip_prefix(repo).unwrap().display().to_string()
}

/// A name for a file in messages: the id part alone, which every message must contain.
pub fn file_id(file: &Path) -> String {
    file.file_name().unwrap().to_string_lossy().into_owned()
}

// ---------------------------------------------------------------- Neo4j dumps

/// Files laid out like a small Neo4j store: `./` first, store files, an index, the tx log.
/// `scale` multiplies the sizes; `seed` varies the contents.
pub fn store_files(seed: u64, scale: usize) -> Vec<(String, Vec<u8>)> {
    vec![
        ("./".into(), vec![]),
        (
            "./neostore.nodestore.db".into(),
            semi_compressible(96 * 1024 * scale, seed),
        ),
        (
            "./neostore.nodestore.db.id".into(),
            vec![0u8; 40 * 1024 * scale],
        ),
        (
            "./neostore.propertystore.db.strings".into(),
            text_bytes(128 * 1024 * scale, seed + 1),
        ),
        (
            "./neostore.relationshipstore.db".into(),
            semi_compressible(64 * 1024 * scale, seed + 2),
        ),
        ("./schema/".into(), vec![]),
        ("./schema/index/range-1.0/9/".into(), vec![]),
        (
            "./schema/index/range-1.0/9/index-9".into(),
            random_bytes(24 * 1024 * scale, seed + 3),
        ),
        ("./neostore.empty".into(), vec![]),
        ("./checkpoint.1".into(), random_bytes(592, seed + 4)),
        (
            "./neostore.transaction.db.1".into(),
            text_bytes(8 * 1024 * scale + 176, seed + 5),
        ),
    ]
}

/// A dump of `files` in `format`, as `neo4j-admin` would write it.
pub fn build_dump(format: DumpFormat, files: &[(String, Vec<u8>)]) -> Vec<u8> {
    rbk::codec::neo4j_dump::build_dump(Vec::new(), format, files.iter().cloned())
        .expect("build_dump")
}

/// A dump's envelope and its whole decompressed inner stream (the tar).
pub fn decode_dump(dump: &[u8]) -> (Envelope, Vec<u8>) {
    let (envelope, mut inner) = open_dump(dump).expect("not a Neo4j dump");
    let mut tar = Vec::new();
    inner.read_to_end(&mut tar).expect("decode dump");
    (envelope, tar)
}

/// Bytes at the start of a dump that identify its format.
pub fn magic_len(format: DumpFormat) -> usize {
    match format {
        DumpFormat::LegacyGzip => 2,
        _ => 4,
    }
}

/// A run with what it cost: wall time and peak resident memory.
#[derive(Debug)]
pub struct Measured {
    pub run: Run,
    pub elapsed: Duration,
    pub max_rss_mib: u64,
}

/// Runs a command to its end with no stdin, capturing both streams, and measures it; fails
/// the test (killing the child) if it runs longer than `limit`: a hang is a finding.
///
/// The peak memory comes from GNU time, which forks the command from its own small process.
/// `wait4` on a child of this test process cannot give it: Linux carries the high-water mark
/// of the address space a child execs from into that child's `ru_maxrss`, and std spawns with
/// `vfork`, so every child would report at least this process's peak, which in the full suite
/// (dozens of tests in one process) reached 237 MiB for a 14 MiB command.
pub fn run_measured(c: Command, limit: Duration, what: &str) -> Measured {
    let report = tempfile::NamedTempFile::new().expect("temporary file");
    let mut timed = Command::new(GNU_TIME);
    timed
        .arg("--format=%M")
        .arg("--output")
        .arg(report.path())
        .arg("--")
        .arg(c.get_program())
        .args(c.get_args());
    for (key, value) in c.get_envs() {
        match value {
            Some(v) => timed.env(key, v),
            None => timed.env_remove(key),
        };
    }
    if let Some(dir) = c.get_current_dir() {
        timed.current_dir(dir);
    }
    // Its own process group, so that a hang is ended for the command and not only for time.
    timed
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let started = Instant::now();
    let mut child = timed
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {GNU_TIME} (package `time`) for {what}: {e}"));
    let drain = |r: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            if let Some(mut r) = r {
                let _ = r.read_to_end(&mut v);
            }
            v
        })
    };
    let out = drain(
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    );
    let err = drain(
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    );
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if started.elapsed() > limit {
            // SAFETY: a plain signal to the process group this function created.
            unsafe { libc::kill(-(child.id() as libc::pid_t), libc::SIGKILL) };
            let _ = child.wait();
            let said = format!(
                "{}\n{}",
                String::from_utf8_lossy(&out.join().unwrap_or_default()),
                String::from_utf8_lossy(&err.join().unwrap_or_default())
            );
            panic!("{what} did not finish within {limit:?}: a hang. Its output:\n{said}");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let elapsed = started.elapsed();
    // GNU time writes "Command exited with non-zero status N" (or "terminated by signal")
    // before the figure; the figure is the last line.
    let written = fs::read_to_string(report.path()).expect("GNU time's report");
    let rss_kib: u64 = written
        .lines()
        .last()
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or_else(|| panic!("GNU time's report for {what}: {written:?}"));
    Measured {
        run: Run {
            // GNU time exits with the command's status, or 128 + the signal that ended it.
            code: status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.join().unwrap_or_default()).into_owned(),
            stderr: String::from_utf8_lossy(&err.join().unwrap_or_default()).into_owned(),
        },
        elapsed,
        max_rss_mib: rss_kib / 1024,
    }
}

/// GNU time (Debian package `time`): measures a command's own peak memory.
const GNU_TIME: &str = "/usr/bin/time";

/// The report of a `rbk --json verify` that passed: what each part was checked as, in order.
pub fn verified_checks(report: &Value) -> Vec<String> {
    assert_eq!(report["ok"], true, "verify failed: {report}");
    report["parts"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|p| p["check"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}
