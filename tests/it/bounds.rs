//! Resource bounds: a repository whose index lists a million blobs opens for a snapshot within
//! the memory budget docs/ARCHITECTURE.md states (the table costs 44 bytes per blob; no step
//! holds every decoded index file at once).

use std::process::Stdio;

use rbk::store::Id;
use rbk::store::blob::BlobKind;
use rbk::store::format::FileKind;
use rbk::store::index::{INDEX_VERSION, IndexFile, IndexedPack};
use rbk::store::pack::PackedBlob;

use crate::util::*;

const BLOBS: u32 = 1_000_000;
const PER_PACK: u32 = 250;
const PACKS_PER_FILE: u32 = 500;
/// The budget docs/ARCHITECTURE.md gives: memory a million indexed blobs may add to a
/// snapshot's peak (the 44-byte table, its growth slack, one decoded index file).
const BUDGET_MIB_PER_MILLION: u64 = 100;

/// Runs `rbk ARGS` and returns its exit code and peak RSS in MiB (from wait4, so it is this
/// child's own peak, whatever else the test binary runs meanwhile).
fn peak_rss(env: &Env, args: &[&str]) -> (i32, u64) {
    let child = env
        .cmd(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn rbk");
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value for wait4 to fill in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: wait4 on our own child, with valid pointers; it reaps the child, which `child`
    // never waits on afterwards.
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(r, pid, "wait4: {}", std::io::Error::last_os_error());
    std::mem::forget(child);
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -1
    };
    (code, usage.ru_maxrss as u64 / 1024)
}

#[test]
fn a_million_blob_index_opens_within_its_memory_budget() {
    let env = Env::new();
    let input = env.write("small.bin", &random_bytes(256 * 1024, 9));
    let args = ["snapshot", "--path", input.to_str().unwrap()];
    let (code, base) = peak_rss(&env, &args);
    assert_eq!(code, 0);

    let repo = env.open();
    let mut n = 0u32;
    let mut file = IndexFile::default();
    let mut pack_no = 0u32;
    while n < BLOBS {
        let blobs = (0..PER_PACK)
            .map(|i| {
                let k = n + i;
                PackedBlob {
                    kind: BlobKind::Data,
                    id: Id(*blake3::hash(&k.to_le_bytes()).as_bytes()),
                    offset: i * 70_000,
                    length: 70_000,
                }
            })
            .collect();
        file.packs.push(IndexedPack {
            id: Id(*blake3::hash(format!("pack {pack_no}").as_bytes()).as_bytes()),
            blobs,
        });
        n += PER_PACK;
        pack_no += 1;
        if pack_no.is_multiple_of(PACKS_PER_FILE) {
            repo.write_sealed(FileKind::Index, INDEX_VERSION, &std::mem::take(&mut file))
                .expect("write index");
        }
    }
    if !file.packs.is_empty() {
        repo.write_sealed(FileKind::Index, INDEX_VERSION, &file)
            .expect("write index");
    }

    let (code, big) = peak_rss(&env, &args);
    assert_eq!(code, 0);
    println!(
        "snapshot peak RSS: {base} MiB with a small index, {big} MiB with {BLOBS} blobs indexed"
    );
    assert!(
        big.saturating_sub(base) <= BUDGET_MIB_PER_MILLION,
        "{big} MiB over a {BLOBS}-blob index is more than {BUDGET_MIB_PER_MILLION} MiB above the \
         {base} MiB base"
    );
}
