//! Streaming ustar writer for tests and benchmarks that generate Neo4j-like dumps.
//!
//! Data is copied straight from each entry's reader to the output, so a generated store of
//! many GiB never sits in memory. Headers follow the layout of the tars real Neo4j writes
//! (POSIX `ustar\0` + `00`), with fixed owner and time so that output is reproducible.

use std::io::{self, Read, Write};

use super::BLOCK_SIZE;

/// Largest size the 11 octal digits of the ustar size field can hold; larger entries use GNU
/// base-256, which GNU tar and Apache Commons Compress (Neo4j's tar library) both read.
const MAX_OCTAL_SIZE: u64 = 0o77_777_777_777;

/// Writes a POSIX ustar archive entry by entry.
pub struct TarBuilder<W: Write> {
    w: W,
    regular_files: u64,
    regular_bytes: u64,
}

impl<W: Write> TarBuilder<W> {
    /// Starts an empty archive on `w`.
    pub fn new(w: W) -> Self {
        TarBuilder {
            w,
            regular_files: 0,
            regular_bytes: 0,
        }
    }

    /// Appends a regular file of exactly `size` bytes taken from `data`.
    ///
    /// Fails with `UnexpectedEof` if `data` ends early (the archive is then unusable); bytes of
    /// `data` past `size` are left unread.
    pub fn append(&mut self, name: &str, size: u64, data: impl Read) -> io::Result<()> {
        self.append_typed(name, b'0', size, data)?;
        self.regular_files += 1;
        self.regular_bytes = self.regular_bytes.saturating_add(size);
        Ok(())
    }

    /// Appends a regular file with the given mode and owner (a file put back
    /// into a container must stay writable by the user the service runs as).
    pub fn append_owned(
        &mut self,
        name: &str,
        size: u64,
        data: impl Read,
        owner: Owner,
    ) -> io::Result<()> {
        self.write_entry(header_owned(name, b'0', size, owner)?, name, size, data)?;
        self.regular_files += 1;
        self.regular_bytes = self.regular_bytes.saturating_add(size);
        Ok(())
    }

    /// Appends a directory entry (Neo4j dumps start with `./`).
    pub fn append_dir(&mut self, name: &str) -> io::Result<()> {
        self.append_typed(name, b'5', 0, io::empty())
    }

    /// Appends an entry with any typeflag; [`append`](Self::append) and
    /// [`append_dir`](Self::append_dir) are the usual entry points. Not counted as a file.
    pub fn append_typed(
        &mut self,
        name: &str,
        typeflag: u8,
        size: u64,
        data: impl Read,
    ) -> io::Result<()> {
        self.write_entry(header(name, typeflag, size)?, name, size, data)
    }

    /// A header, then exactly `size` bytes of `data`, padded to a whole block.
    fn write_entry(
        &mut self,
        header: [u8; BLOCK_SIZE],
        name: &str,
        size: u64,
        data: impl Read,
    ) -> io::Result<()> {
        self.w.write_all(&header)?;
        let copied = io::copy(&mut data.take(size), &mut self.w)?;
        if copied < size {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("tar entry {name:?}: data ended after {copied} of {size} bytes"),
            ));
        }
        let pad = (BLOCK_SIZE - (size % BLOCK_SIZE as u64) as usize) % BLOCK_SIZE;
        self.w.write_all(&[0u8; BLOCK_SIZE][..pad])
    }

    /// Regular files appended so far and the sum of their sizes.
    pub fn counts(&self) -> (u64, u64) {
        (self.regular_files, self.regular_bytes)
    }

    /// Writes the end-of-archive marker (two zero blocks, no record padding, as Neo4j does)
    /// and returns the writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.w.write_all(&[0u8; 2 * BLOCK_SIZE])?;
        Ok(self.w)
    }
}

/// Permission bits and numeric owner of a tar entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owner {
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

impl Owner {
    /// What rbk writes when it knows no better: root, 0644 (0755 for directories).
    pub const ROOT_FILE: Owner = Owner {
        mode: 0o644,
        uid: 0,
        gid: 0,
    };
}

/// Reads the mode and numeric owner of a ustar header block (octal fields).
pub fn parse_owner(block: &[u8; BLOCK_SIZE]) -> Option<Owner> {
    let octal = |field: &[u8]| -> Option<u32> {
        let text = std::str::from_utf8(field).ok()?;
        let digits = text.trim_matches(|c: char| c == '\0' || c == ' ');
        u32::from_str_radix(digits, 8).ok()
    };
    Some(Owner {
        mode: octal(&block[100..108])? & 0o7777,
        uid: octal(&block[108..116])?,
        gid: octal(&block[116..124])?,
    })
}

/// Builds one header block.
fn header(name: &str, typeflag: u8, size: u64) -> io::Result<[u8; BLOCK_SIZE]> {
    let owner = if typeflag == b'5' {
        Owner {
            mode: 0o755,
            ..Owner::ROOT_FILE
        }
    } else {
        Owner::ROOT_FILE
    };
    header_owned(name, typeflag, size, owner)
}

fn header_owned(name: &str, typeflag: u8, size: u64, owner: Owner) -> io::Result<[u8; BLOCK_SIZE]> {
    let mut h = [0u8; BLOCK_SIZE];
    let (prefix, base) = split_name(name)?;
    h[..base.len()].copy_from_slice(base.as_bytes());
    h[345..345 + prefix.len()].copy_from_slice(prefix.as_bytes());
    let octal7 = |v: u32| format!("{:07o}\0", v.min(0o7777777));
    h[100..108].copy_from_slice(octal7(owner.mode & 0o7777).as_bytes());
    h[108..116].copy_from_slice(octal7(owner.uid).as_bytes());
    h[116..124].copy_from_slice(octal7(owner.gid).as_bytes());
    if size <= MAX_OCTAL_SIZE {
        h[124..136].copy_from_slice(format!("{size:011o}\0").as_bytes());
    } else {
        h[124] = 0x80;
        h[128..136].copy_from_slice(&size.to_be_bytes());
    }
    h[136..148].copy_from_slice(b"00000000000\0"); // mtime: fixed for reproducible output
    h[156] = typeflag;
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    Ok(h)
}

/// Splits a path into the ustar `prefix` (at most 155 bytes) and `name` (at most 100 bytes),
/// cutting at a `/`.
fn split_name(name: &str) -> io::Result<(&str, &str)> {
    if name.len() <= 100 {
        return Ok(("", name));
    }
    // The cut is the last `/` that leaves a name of at most 100 bytes and a non-empty one.
    let fits = name
        .char_indices()
        .rev()
        .find(|&(i, c)| c == '/' && i <= 155 && name.len() - i - 1 <= 100 && i + 1 < name.len())
        .map(|(i, _)| i);
    match fits {
        Some(i) => Ok((&name[..i], &name[i + 1..])),
        None => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("tar path too long for ustar: {name:?}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::super::{parse_header, summarize, walk};
    use super::*;

    #[test]
    fn sizes_above_8_gib_use_base256() {
        let h = header("./neostore.nodestore.db", b'0', 9 << 30).unwrap();
        assert_eq!(h[124], 0x80);
        assert_eq!(parse_header(&h).unwrap().unwrap().size, 9 << 30);
        let h = header("x", b'0', MAX_OCTAL_SIZE).unwrap();
        assert_eq!(&h[124..136], b"77777777777\0");
    }

    #[test]
    fn names_that_cannot_be_split_are_rejected() {
        assert!(header(&"a".repeat(101), b'0', 0).is_err());
        assert!(header(&format!("{}/b", "a".repeat(156)), b'0', 0).is_err());
        assert!(header(&format!("a/{}", "b".repeat(101)), b'0', 0).is_err());
        let ok = format!("{}/{}", "a".repeat(155), "b".repeat(100));
        assert_eq!(
            parse_header(&header(&ok, b'0', 0).unwrap())
                .unwrap()
                .unwrap()
                .name,
            ok
        );
    }

    #[test]
    fn short_data_is_an_error_and_counts_are_kept() {
        let mut b = TarBuilder::new(Vec::new());
        assert!(b.append("f", 10, &b"short"[..]).is_err());
        let mut b = TarBuilder::new(Vec::new());
        b.append("a", 3, &b"abcdef"[..]).unwrap();
        b.append_dir("d/").unwrap();
        b.append("b", 512, io::repeat(0).take(512)).unwrap();
        assert_eq!(b.counts(), (2, 515));
        let tar = b.finish().unwrap();
        assert_eq!(tar.len(), 512 * 2 + 512 + 512 * 2 + 1024);
        assert_eq!(walk(&tar[..]).count(), 3);
        assert_eq!(summarize(&tar[..]).unwrap().regular_bytes, 515);
    }
}
