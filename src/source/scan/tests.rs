//! The scan's protocol run for real (GNU find and tar on a temporary directory, as the one-off runs them): a tar of the whole volume from entries read now and entries unchanged since an earlier scan, which unpacks into the volume as it is.

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};

use super::*;

/// Each entry's bytes by key, as a caller keeps them between scans.
type Kept = HashMap<EntryKey, Vec<u8>>;

/// Scans `dir` with the one-off's script run by `sh`, returning the tar it makes, its
/// figures and the entries it read that a later scan may find unchanged.
fn scan_dir(dir: &Path, known: &Kept) -> Result<(Vec<u8>, ScanStats, Kept)> {
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(script(false))
        .arg("rbk")
        .arg(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    let mut stdin = child.stdin.take().ok_or_else(|| anyhow!("no stdin"))?;
    let mut stdout = child.stdout.take().ok_or_else(|| anyhow!("no stdout"))?;
    let (mut tar, mut kept) = (Vec::new(), Kept::new());
    let stats = scan_stream(
        &mut stdout,
        move |names| stdin.write_all(&names),
        false,
        &|k| known.contains_key(k),
        &mut |entry| {
            match entry {
                Entry::Unchanged(key) => tar.extend_from_slice(&known[key]),
                Entry::Read { key, bytes } => {
                    let mut b = Vec::new();
                    bytes.read_to_end(&mut b)?;
                    if let Some(key) = key {
                        kept.insert(key.clone(), b.clone());
                    }
                    tar.extend_from_slice(&b);
                }
            }
            Ok(())
        },
    )?;
    if !child.wait()?.success() {
        bail!("the scan script failed");
    }
    Ok((tar, stats, kept))
}

/// Unpacks `tar` into a fresh directory and compares it with `dir` (contents, modes, times).
fn assert_unpacks_to(tar: &[u8], dir: &Path) {
    let out = tempfile::tempdir().expect("tempdir");
    let mut untar = Command::new("tar")
        .args(["-xf", "-", "-C"])
        .arg(out.path())
        .stdin(Stdio::piped())
        .spawn()
        .expect("tar");
    untar
        .stdin
        .take()
        .expect("stdin")
        .write_all(tar)
        .expect("fed tar");
    assert!(untar.wait().expect("tar ran").success(), "the tar unpacks");
    let diff = Command::new("diff")
        .arg("-r")
        .arg(dir)
        .arg(out.path())
        .output()
        .expect("diff");
    assert!(
        diff.status.success(),
        "{}",
        String::from_utf8_lossy(&diff.stdout)
    );
    // Modes and modification times too: `find -printf` of both trees.
    let listing = |d: &Path| {
        let out = Command::new("find")
            .arg(".")
            .args(["-printf", "%p %m %T@ %s\n"])
            .current_dir(d)
            .output()
            .expect("find");
        let mut lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| !l.starts_with(". ")) // the root's time is the unpacking's
            .map(|l| {
                // tar keeps whole seconds.
                let mut f: Vec<&str> = l.split(' ').collect();
                let n = f.len();
                let secs = f[n - 2].split('.').next().unwrap_or("").to_string();
                f[n - 2] = "";
                format!("{} {secs}", f.join(" "))
            })
            .collect();
        lines.sort();
        lines
    };
    assert_eq!(listing(dir), listing(out.path()));
}

fn write(path: &Path, bytes: &[u8]) {
    fs::write(path, bytes).expect("write");
}

#[test]
fn a_second_scan_reads_only_what_changed_and_still_makes_the_whole_volume() {
    let vol = tempfile::tempdir().expect("tempdir");
    let v = vol.path();
    fs::create_dir_all(v.join("databases/neo4j")).expect("mkdir");
    fs::create_dir_all(v.join("transactions/neo4j")).expect("mkdir");
    let long = "a-store-file-with-a-name-longer-than-one-hundred-bytes-".repeat(3);
    let page: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    write(&v.join("databases/neo4j/neostore.nodestore.db"), &page);
    write(
        &v.join("databases/neo4j/neostore.relationshipstore.db"),
        &page[..1000],
    );
    write(&v.join(format!("databases/neo4j/{long}")), b"long name");
    write(&v.join("databases/neo4j/with space.db"), b"spaces");
    write(
        &v.join("transactions/neo4j/neostore.transaction.db.0"),
        b"log 0",
    );
    write(&v.join("empty"), b"");
    std::os::unix::fs::symlink("databases/neo4j", v.join("link")).expect("symlink");

    let (tar, first, kept) = scan_dir(v, &Kept::new()).expect("first scan");
    assert_unpacks_to(&tar, v);
    assert_eq!(first.unchanged, 0);
    assert_eq!(kept.len(), 6, "every regular file may be used again");
    assert_eq!(tar.len() % 512, 0);

    // Unchanged: nothing read, the same tar.
    let (again, second, _) = scan_dir(v, &kept).expect("second scan");
    assert_eq!(again, tar, "an unchanged volume gives the same bytes");
    assert_eq!((second.unchanged, second.bytes_read), (6, 0), "{second:?}");

    // Changed in place (same size), grown, new, removed, and a mode changed.
    let mut changed = page.clone();
    changed[150_000] ^= 0xff;
    write(&v.join("databases/neo4j/neostore.nodestore.db"), &changed);
    let mut log = fs::OpenOptions::new()
        .append(true)
        .open(v.join("transactions/neo4j/neostore.transaction.db.0"))
        .expect("open");
    log.write_all(b" and more").expect("append");
    write(
        &v.join("transactions/neo4j/neostore.transaction.db.1"),
        b"log 1",
    );
    fs::remove_file(v.join("empty")).expect("rm");
    fs::set_permissions(
        v.join("databases/neo4j/with space.db"),
        fs::Permissions::from_mode(0o600),
    )
    .expect("chmod");
    let (third_tar, third, _) = scan_dir(v, &kept).expect("third scan");
    assert_unpacks_to(&third_tar, v);
    assert_eq!(third.unchanged, 2, "{third:?}");
    assert_eq!(
        third.bytes_read,
        (page.len() + b"log 0 and more".len() + b"log 1".len() + b"spaces".len()) as u64
    );
}

#[test]
fn a_listing_or_archive_that_is_not_what_was_asked_is_an_error() {
    let bad = |listing: &[u8], tar: &[u8]| {
        let mut out = io::Cursor::new([listing, tar].concat());
        scan_stream(&mut out, |_| Ok(()), false, &|_| false, &mut |_| Ok(()))
            .expect_err("refused")
            .to_string()
    };
    assert!(bad(b"12 1 5 1.0 1.0 f ./a", b"").contains("end mark"));
    assert!(bad(b"x 1 5 1.0 1.0 f ./a\0\0", b"").contains("malformed"));
    assert!(bad(b"12 1 5 1.0 1.0\0\0", b"").contains("short"));
    assert!(bad(b"12 1 5 1.0 1.0 f /etc/passwd\0\0", b"").contains("malformed"));
    // Listed, but the archive ends at once.
    assert!(bad(b"12 1 5 1.0 1.0 f ./a\0\0", &[0u8; 1024]).contains("missing"));
    // Garbage where a header belongs.
    assert!(bad(b"12 1 5 1.0 1.0 f ./a\0\0", &[7u8; 1024]).contains("archive"));
}

#[test]
fn pax_paths_are_found_and_malformed_records_ignored() {
    let rec = b"20 path=./a/b/c/d/e\n13 mtime=1.5\n";
    assert_eq!(pax_path(rec), Some(b"./a/b/c/d/e".to_vec()));
    assert_eq!(pax_path(b"99 path=x\n"), None);
    assert_eq!(pax_path(b"x path=x\n"), None);
    assert_eq!(trimmed(b"./dir/"), b"./dir");
    assert_eq!(trimmed(b"./"), b".");
}

/// On this host: the scan reads a directory as the one-off would; a consumer that stops
/// early gets its own error back (tar dies on the closed pipe, which is not the scan's
/// failure), and a script that fails is named with its stderr.
#[test]
fn the_scan_on_this_host_reads_a_directory_and_reports_failures() {
    let vol = tempfile::tempdir().expect("tempdir");
    let big: Vec<u8> = (0..4_000_000u32).map(|i| (i % 253) as u8).collect();
    write(&vol.path().join("big.db"), &big);
    write(&vol.path().join("small.db"), b"small");
    let mut tar = Vec::new();
    let stats = scan_here(vol.path(), false, &|_| false, &mut |entry| {
        if let Entry::Read { bytes, .. } = entry {
            bytes.read_to_end(&mut tar)?;
        }
        Ok(())
    })
    .expect("scanned");
    assert_eq!(stats.bytes_read, big.len() as u64 + 5);
    assert_unpacks_to(&tar, vol.path());

    let err = scan_here(vol.path(), false, &|_| false, &mut |_| {
        bail!("the repository is full")
    })
    .expect_err("stopped");
    assert_eq!(format!("{err:#}"), "the repository is full");

    let err = scan_here(&vol.path().join("gone"), false, &|_| false, &mut |_| Ok(()))
        .expect_err("no such directory");
    let shown = format!("{err:#}");
    assert!(shown.contains("exited with status 2"), "{shown}");
    assert!(shown.contains("gone"), "the script's stderr: {shown}");
}
