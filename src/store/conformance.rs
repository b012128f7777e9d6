//! The backend contract as code: cases every `Backend` must pass (local directory, memory, S3), run by the tests against each.
//!
//! Each case gets a fresh, empty location from the caller's factory (its layout created)
//! and says what it found when the contract does not hold. The cases are the properties
//! the rest of the store relies on: a written file is seen whole or not at all, listings
//! give every file with its size and nothing else, ranged reads return exactly the bytes
//! asked for or fail, a missing file is "not found" (never a damaged or empty one), and a
//! write that failed leaves nothing visible.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use super::backend::Backend;
use super::error::StoreError;
use super::format::FileKind;

/// Makes a fresh, empty backend location.
pub type Factory<'a> = &'a (dyn Fn() -> Arc<dyn Backend> + Sync);

type Case = fn(&dyn Backend) -> Result<(), String>;

/// Every case, by name.
pub const CASES: [(&str, Case); 9] = [
    ("written files read back whole", round_trip),
    ("a missing file is not found", missing),
    ("ranged reads", ranged_reads),
    ("listing gives every file with its size", listing),
    ("kinds are apart", kinds_apart),
    ("an identical rewrite changes nothing", rewrite),
    ("removal", removal),
    ("modification times are recent", modified),
    ("reads refuse a file larger than its kind", oversized),
];

/// Runs every case (and the concurrent-visibility one) against fresh locations from
/// `fresh`; returns the failures as "case: what was found".
pub fn run(fresh: Factory<'_>) -> Vec<String> {
    let mut failures = Vec::new();
    for (name, case) in CASES {
        let backend = fresh();
        if let Err(e) = backend
            .create_layout()
            .map_err(|e| e.to_string())
            .and_then(|()| case(backend.as_ref()))
        {
            failures.push(format!("{name}: {e}"));
        }
    }
    let backend = fresh();
    if let Err(e) = atomic_visibility(&backend) {
        failures.push(format!("a file is seen whole or not at all: {e}"));
    }
    failures
}

/// Deterministic bytes (no randomness needed: a backend must not care).
pub fn bytes(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2654435761).to_le_bytes()[1] ^ seed)
        .collect()
}

fn pack_name(i: u32) -> String {
    // Pack names are hex ids; backends may fan them out by their first digits.
    format!("{:02x}{:062x}", i % 256, i)
}

fn check(ok: bool, what: impl FnOnce() -> String) -> Result<(), String> {
    if ok { Ok(()) } else { Err(what()) }
}

fn s(e: StoreError) -> String {
    e.to_string()
}

fn round_trip(b: &dyn Backend) -> Result<(), String> {
    for (i, len) in [0usize, 1, 4096, 3 * 1024 * 1024 + 7]
        .into_iter()
        .enumerate()
    {
        let name = pack_name(i as u32);
        let data = bytes(len, i as u8);
        b.write_new(FileKind::Pack, &name, &data).map_err(s)?;
        check(b.exists(FileKind::Pack, &name).map_err(s)?, || {
            format!("{name} does not exist after its write")
        })?;
        let back = b.read(FileKind::Pack, &name).map_err(s)?;
        check(back == data, || {
            format!(
                "{name}: wrote {len} bytes, read back {} different ones",
                back.len()
            )
        })?;
        let size = b.size(FileKind::Pack, &name).map_err(s)?;
        check(size == len as u64, || {
            format!("{name}: size {size}, wrote {len}")
        })?;
    }
    Ok(())
}

fn missing(b: &dyn Backend) -> Result<(), String> {
    let name = pack_name(9);
    check(!b.exists(FileKind::Pack, &name).map_err(s)?, || {
        "exists says yes for a file never written".into()
    })?;
    let not_found = |what: &str, r: Result<(), StoreError>| match r {
        Err(e) if e.is_not_found() => Ok(()),
        Err(e) => Err(format!(
            "{what} of a missing file: {e} (not a \"not found\")"
        )),
        Ok(()) => Err(format!("{what} of a missing file succeeded")),
    };
    not_found("read", b.read(FileKind::Snapshot, &name).map(|_| ()))?;
    not_found("size", b.size(FileKind::Pack, &name).map(|_| ()))?;
    not_found(
        "read_at",
        b.read_at(FileKind::Pack, &name, 0, &mut [0u8; 4]),
    )?;
    b.remove(FileKind::Pack, &name)
        .map_err(|e| format!("removing a missing file: {e}"))
}

fn ranged_reads(b: &dyn Backend) -> Result<(), String> {
    let name = pack_name(1);
    let data = bytes(1024 * 1024 + 3, 7);
    b.write_new(FileKind::Pack, &name, &data).map_err(s)?;
    for (offset, len) in [
        (0usize, 1usize),
        (0, 64),
        (1000, 4096),
        (data.len() - 5, 5),
        (data.len() - 1, 1),
        (512 * 1024, 512 * 1024),
    ] {
        let mut buf = vec![0u8; len];
        b.read_at(FileKind::Pack, &name, offset as u64, &mut buf)
            .map_err(|e| format!("{len} bytes at {offset}: {e}"))?;
        check(buf == data[offset..offset + len], || {
            format!("{len} bytes at {offset} are not the bytes written there")
        })?;
    }
    for (offset, len) in [
        (data.len() - 2, 4usize),
        (data.len(), 1),
        (data.len() + 100, 8),
    ] {
        let mut buf = vec![0u8; len];
        match b.read_at(FileKind::Pack, &name, offset as u64, &mut buf) {
            Err(e) if e.is_damage() => {}
            Err(e) => {
                return Err(format!(
                    "{len} bytes at {offset}, past the end: {e} (not a short file)"
                ));
            }
            Ok(()) => return Err(format!("{len} bytes at {offset}, past the end, were read")),
        }
    }
    Ok(())
}

fn listing(b: &dyn Backend) -> Result<(), String> {
    let mut want = Vec::new();
    for i in 0..300u32 {
        let name = pack_name(i * 7 + 1);
        let len = (i as usize * 13) % 700;
        b.write_new(FileKind::Pack, &name, &bytes(len, i as u8))
            .map_err(s)?;
        want.push((name, len as u64));
    }
    want.sort();
    let got = b.list_sized(FileKind::Pack).map_err(s)?;
    check(got == want, || {
        let missing = want.iter().filter(|w| !got.contains(w)).count();
        let extra = got.iter().filter(|g| !want.contains(g)).count();
        format!(
            "listed {} files, wrote {}: {missing} missing or with the wrong size, {extra} not written (or not sorted)",
            got.len(),
            want.len()
        )
    })?;
    let names = b.list(FileKind::Pack).map_err(s)?;
    check(names.iter().eq(want.iter().map(|(n, _)| n)), || {
        "list and list_sized disagree".into()
    })
}

fn kinds_apart(b: &dyn Backend) -> Result<(), String> {
    b.write_new(FileKind::Snapshot, "aa", b"snapshot")
        .map_err(s)?;
    b.write_new(FileKind::Index, "aa", b"index!").map_err(s)?;
    b.write_new(FileKind::Lock, "bb", b"lock").map_err(s)?;
    check(b.list(FileKind::Snapshot).map_err(s)? == ["aa"], || {
        "snapshots/ lists another kind's files".into()
    })?;
    check(b.list(FileKind::Index).map_err(s)? == ["aa"], || {
        "index/ lists another kind's files".into()
    })?;
    check(b.list(FileKind::Key).map_err(s)?.is_empty(), || {
        "keys/ lists files never written".into()
    })?;
    check(
        b.read(FileKind::Index, "aa").map_err(s)? == b"index!",
        || "two kinds' files of one name are one file".into(),
    )
}

fn rewrite(b: &dyn Backend) -> Result<(), String> {
    let name = pack_name(3);
    let data = bytes(10_000, 3);
    b.write_new(FileKind::Pack, &name, &data).map_err(s)?;
    b.write_new(FileKind::Pack, &name, &data)
        .map_err(|e| format!("a second identical write failed: {e}"))?;
    check(b.read(FileKind::Pack, &name).map_err(s)? == data, || {
        "the rewrite changed the bytes".into()
    })?;
    check(b.list(FileKind::Pack).map_err(s)?.len() == 1, || {
        "the rewrite left two files".into()
    })
}

fn removal(b: &dyn Backend) -> Result<(), String> {
    let (a, c) = (pack_name(4), pack_name(5));
    b.write_new(FileKind::Pack, &a, b"a").map_err(s)?;
    b.write_new(FileKind::Pack, &c, b"c").map_err(s)?;
    b.remove(FileKind::Pack, &a).map_err(s)?;
    check(!b.exists(FileKind::Pack, &a).map_err(s)?, || {
        "a removed file exists".into()
    })?;
    check(b.list(FileKind::Pack).map_err(s)? == [c.clone()], || {
        "a removed file is listed, or the other is not".into()
    })?;
    match b.read(FileKind::Pack, &a) {
        Err(e) if e.is_not_found() => Ok(()),
        other => Err(format!(
            "reading a removed file: {:?}",
            other.map(|d| d.len())
        )),
    }
}

fn modified(b: &dyn Backend) -> Result<(), String> {
    b.write_new(FileKind::Lock, "cc", b"lock").map_err(s)?;
    let t = b.modified(FileKind::Lock, "cc").map_err(s)?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    // Another machine's clock (a server's) may differ by a little.
    check((t - now).abs() < 300, || format!("modified {t}, now {now}"))
}

fn oversized(b: &dyn Backend) -> Result<(), String> {
    let big = bytes(FileKind::Lock.max_len() as usize + 1, 1);
    b.write_new(FileKind::Lock, "dd", &big).map_err(s)?;
    match b.read(FileKind::Lock, "dd") {
        Err(e) if e.is_damage() => Ok(()),
        Err(e) => Err(format!("{e} (not damage)")),
        Ok(_) => Err("a lock file larger than any rbk writes was read whole".into()),
    }
}

/// A reader polling while a writer writes large files: every read of a file that exists
/// returns all of its bytes, and a listed file is a whole one.
fn atomic_visibility(b: &Arc<dyn Backend>) -> Result<(), String> {
    b.create_layout().map_err(s)?;
    let data = Arc::new(bytes(8 * 1024 * 1024, 5));
    let done = Arc::new(AtomicBool::new(false));
    let reader = {
        let (b, data, done) = (b.clone(), data.clone(), done.clone());
        std::thread::spawn(move || -> Result<u32, String> {
            let mut seen = 0;
            // One last pass after the writer is done, so every file is read at least once.
            loop {
                let last = done.load(Ordering::Acquire);
                for (name, size) in b.list_sized(FileKind::Pack).map_err(s)? {
                    check(size == data.len() as u64, || {
                        format!("{name} listed with {size} bytes")
                    })?;
                    match b.read(FileKind::Pack, &name) {
                        Ok(back) => {
                            check(back == *data, || {
                                format!("{name} read with {} bytes", back.len())
                            })?;
                            seen += 1;
                        }
                        Err(e) if e.is_not_found() => {}
                        Err(e) => return Err(format!("reading {name}: {e}")),
                    }
                }
                if last {
                    break;
                }
            }
            check(seen >= 4, || {
                format!("only {seen} reads of the 4 files written")
            })?;
            Ok(seen)
        })
    };
    let written = (|| {
        for i in 0..4 {
            b.write_new(FileKind::Pack, &pack_name(100 + i), &data)
                .map_err(s)?;
        }
        Ok::<_, String>(())
    })();
    done.store(true, Ordering::Release);
    let read = reader
        .join()
        .map_err(|_| "the reader panicked".to_string())?;
    written?;
    read.map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::backend::LocalBackend;
    use crate::store::memory::MemoryBackend;

    #[test]
    fn the_memory_backend_keeps_the_contract() {
        let failures = run(&|| Arc::new(MemoryBackend::new()) as Arc<dyn Backend>);
        assert!(failures.is_empty(), "{failures:#?}");
    }

    #[test]
    fn the_local_backend_keeps_the_contract() {
        let root = tempfile::tempdir().expect("tempdir");
        let n = std::sync::atomic::AtomicU32::new(0);
        let failures = run(&|| {
            let dir = root
                .path()
                .join(n.fetch_add(1, Ordering::Relaxed).to_string());
            Arc::new(LocalBackend::new(dir)) as Arc<dyn Backend>
        });
        assert!(failures.is_empty(), "{failures:#?}");
    }

    /// The suite can fail: a backend that loses every other file does not pass it.
    #[test]
    fn a_backend_that_breaks_the_contract_fails_the_suite() {
        struct Lossy(MemoryBackend);
        impl Backend for Lossy {
            fn location(&self) -> String {
                self.0.location()
            }
            fn exists(&self, k: FileKind, n: &str) -> crate::store::error::Result<bool> {
                self.0.exists(k, n)
            }
            fn read(&self, k: FileKind, n: &str) -> crate::store::error::Result<Vec<u8>> {
                // Reads return a file cut short, as a lying network mount might.
                let mut d = self.0.read(k, n)?;
                d.truncate(d.len() / 2);
                Ok(d)
            }
            fn read_at(
                &self,
                k: FileKind,
                n: &str,
                o: u64,
                b: &mut [u8],
            ) -> crate::store::error::Result<()> {
                self.0.read_at(k, n, o, b)
            }
            fn size(&self, k: FileKind, n: &str) -> crate::store::error::Result<u64> {
                self.0.size(k, n)
            }
            fn modified(&self, k: FileKind, n: &str) -> crate::store::error::Result<i64> {
                self.0.modified(k, n)
            }
            fn write_new(&self, k: FileKind, n: &str, d: &[u8]) -> crate::store::error::Result<()> {
                self.0.write_new(k, n, d)
            }
            fn list_sized(&self, k: FileKind) -> crate::store::error::Result<Vec<(String, u64)>> {
                self.0.list_sized(k)
            }
            fn remove(&self, k: FileKind, n: &str) -> crate::store::error::Result<()> {
                self.0.remove(k, n)
            }
            fn temp_files(
                &self,
            ) -> crate::store::error::Result<Vec<crate::store::backend::TempFile>> {
                self.0.temp_files()
            }
            fn strays(&self) -> crate::store::error::Result<Vec<String>> {
                self.0.strays()
            }
            fn remove_temp(&self, p: &str) -> crate::store::error::Result<()> {
                self.0.remove_temp(p)
            }
            fn create_layout(&self) -> crate::store::error::Result<()> {
                self.0.create_layout()
            }
        }
        let failures = run(&|| Arc::new(Lossy(MemoryBackend::new())) as Arc<dyn Backend>);
        assert!(
            failures
                .iter()
                .any(|f| f.starts_with("written files read back whole")),
            "{failures:#?}"
        );
        assert!(
            failures
                .iter()
                .any(|f| f.starts_with("a file is seen whole")),
            "{failures:#?}"
        );
    }
}
