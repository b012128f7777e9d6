//! Minimal POSIX ustar header parser, walker and writer: just enough to check a Neo4j dump's inner tar and to generate test dumps.
//!
//! rbk never rewrites the tar inside a dump (it stores it byte for byte), so this module only
//! needs to read headers, skip data and write simple archives. It is written to be fed hostile
//! input: every offset is bounded and every number is checked, so no input makes it panic.

mod builder;
mod walk;

pub use builder::{Owner, TarBuilder, parse_owner};
pub use walk::{TarSummary, TarWalker, summarize, walk};

use std::io;

/// Size of a tar block; headers and data padding are both in these units.
pub const BLOCK_SIZE: usize = 512;

/// The fields of a tar header that rbk needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TarEntryHeader {
    /// Full path: the ustar `prefix`, a `/`, then `name` (or a PAX/GNU long name when walking).
    pub name: String,
    /// Size of the entry's data in bytes, before padding to a whole block.
    pub size: u64,
    /// Raw typeflag byte: `b'0'` or `0` regular file, `b'5'` directory, `b'x'` PAX header, ...
    pub typeflag: u8,
}

impl TarEntryHeader {
    /// Whether this entry is a regular file (what Neo4j counts in its dump header).
    pub fn is_regular_file(&self) -> bool {
        // `7` is a "contiguous file", which every reader treats as a regular file.
        matches!(self.typeflag, b'0' | 0 | b'7')
    }

    /// Whether this entry is a directory.
    pub fn is_dir(&self) -> bool {
        self.typeflag == b'5'
    }

    /// Whether this entry only describes the next one (PAX or GNU long-name records).
    pub fn is_metadata(&self) -> bool {
        matches!(self.typeflag, b'x' | b'g' | b'L' | b'K')
    }

    /// Bytes of data plus padding that follow the header, or `None` if that overflows `u64`.
    pub fn padded_size(&self) -> Option<u64> {
        padded(self.size)
    }
}

/// Rounds a data size up to whole blocks, `None` on overflow.
pub(crate) fn padded(size: u64) -> Option<u64> {
    size.checked_next_multiple_of(BLOCK_SIZE as u64)
}

/// Everything that can be wrong with a tar stream.
#[derive(Debug, thiserror::Error)]
pub enum TarError {
    #[error("I/O error while reading tar: {0}")]
    Io(#[from] io::Error),
    #[error("tar header checksum mismatch: stored {stored}, computed {computed}")]
    BadChecksum { stored: u64, computed: u64 },
    #[error("tar header has no ustar magic")]
    BadMagic,
    #[error("tar header field `{field}` is not a valid number")]
    BadNumber { field: &'static str },
    #[error("tar entry size {size} overflows when padded to whole blocks")]
    SizeOverflow { size: u64 },
    #[error("tar stream truncated at byte {offset}")]
    Truncated { offset: u64 },
    #[error("tar stream ended at byte {offset} without the two zero blocks that mark its end")]
    MissingEndMarker { offset: u64 },
    #[error("bad extended header at byte {offset}: {reason}")]
    BadExtendedHeader { offset: u64, reason: &'static str },
    #[error("at tar byte {offset}: {source}")]
    AtOffset {
        offset: u64,
        #[source]
        source: Box<TarError>,
    },
}

// Field offsets and lengths of the ustar header (POSIX.1-1988).
const NAME: (usize, usize) = (0, 100);
const SIZE: (usize, usize) = (124, 12);
const CHKSUM: (usize, usize) = (148, 8);
const TYPEFLAG: usize = 156;
const MAGIC: (usize, usize) = (257, 6);
const PREFIX: (usize, usize) = (345, 155);

fn field(block: &[u8; BLOCK_SIZE], (start, len): (usize, usize)) -> &[u8] {
    // The constants above all lie inside 512 bytes; `get` keeps that a checked fact anyway.
    block.get(start..start + len).unwrap_or(&[])
}

/// Parses one header block. `Ok(None)` means an all-zero block (end-of-archive marker).
///
/// Checks the checksum (unsigned or historical signed sum) and the `ustar` magic; accepts both
/// the POSIX (`ustar\0` + `00`) and the GNU (`ustar  \0`) spellings. Sizes may be octal or GNU
/// base-256. The ustar `prefix` is only honoured in POSIX headers, because GNU headers keep
/// access and change times in that area.
pub fn parse_header(block: &[u8; BLOCK_SIZE]) -> Result<Option<TarEntryHeader>, TarError> {
    if block.iter().all(|&b| b == 0) {
        return Ok(None);
    }
    let stored = parse_number(field(block, CHKSUM), "chksum")?;
    let (unsigned, signed) = checksums(block);
    if stored != unsigned && i64::try_from(stored).ok() != Some(signed) {
        return Err(TarError::BadChecksum {
            stored,
            computed: unsigned,
        });
    }
    let magic = field(block, MAGIC);
    if !magic.starts_with(b"ustar") {
        return Err(TarError::BadMagic);
    }
    let posix = magic == b"ustar\0";
    let size = parse_number(field(block, SIZE), "size")?;
    if padded(size).is_none() {
        return Err(TarError::SizeOverflow { size });
    }
    let base = cstr(field(block, NAME));
    let prefix = if posix {
        cstr(field(block, PREFIX))
    } else {
        &[]
    };
    let name = if prefix.is_empty() {
        String::from_utf8_lossy(base).into_owned()
    } else {
        format!(
            "{}/{}",
            String::from_utf8_lossy(prefix),
            String::from_utf8_lossy(base)
        )
    };
    Ok(Some(TarEntryHeader {
        name,
        size,
        typeflag: block[TYPEFLAG],
    }))
}

/// Sum of the header bytes with the checksum field counted as spaces, as unsigned and as
/// signed bytes (some old tars used signed `char`).
fn checksums(block: &[u8; BLOCK_SIZE]) -> (u64, i64) {
    let (start, len) = CHKSUM;
    let mut unsigned = 0u64;
    let mut signed = 0i64;
    for (i, &b) in block.iter().enumerate() {
        let b = if (start..start + len).contains(&i) {
            b' '
        } else {
            b
        };
        unsigned += u64::from(b);
        signed += i64::from(b as i8);
    }
    (unsigned, signed)
}

/// The bytes of a NUL-terminated field up to its first NUL.
fn cstr(f: &[u8]) -> &[u8] {
    let end = f.iter().position(|&b| b == 0).unwrap_or(f.len());
    &f[..end]
}

/// Parses a numeric field: octal digits surrounded by spaces/NULs, or GNU base-256 when the
/// top bit of the first byte is set. An empty field reads as 0, as every common tar does.
fn parse_number(f: &[u8], name: &'static str) -> Result<u64, TarError> {
    let bad = || TarError::BadNumber { field: name };
    let Some(&first) = f.first() else {
        return Ok(0);
    };
    if first & 0x80 != 0 {
        // 0xff starts a negative base-256 number: never valid for sizes or checksums.
        if first & 0x40 != 0 {
            return Err(bad());
        }
        let mut v = u64::from(first & 0x3f);
        for &b in &f[1..] {
            v = v
                .checked_mul(256)
                .and_then(|v| v.checked_add(u64::from(b)))
                .ok_or_else(bad)?;
        }
        return Ok(v);
    }
    let text = f.trim_ascii_start();
    let digits_end = text
        .iter()
        .position(|b| !(b'0'..=b'7').contains(b))
        .unwrap_or(text.len());
    let (digits, rest) = text.split_at(digits_end);
    if !rest.iter().all(|&b| b == b' ' || b == 0) {
        return Err(bad());
    }
    digits.iter().try_fold(0u64, |v, &d| {
        v.checked_mul(8)
            .and_then(|v| v.checked_add(u64::from(d - b'0')))
            .ok_or_else(bad)
    })
}

/// Whether `first_block` starts a tar whose first file is a Neo4j store or transaction-log file.
///
/// Real dumps start with a `./` directory entry, so this accepts a longer prefix of the tar
/// (any length) and skips directory and PAX/GNU metadata entries, deciding on the first other
/// entry found in the slice. Returns false when the slice holds no such entry, or anything in
/// it is not a valid ustar header.
pub fn looks_like_neo4j_store(first_block: &[u8]) -> bool {
    classify_store_prefix(first_block) == Some(true)
}

/// Like [`looks_like_neo4j_store`] but tells "not yet known" (`None`: the slice ended before the
/// first file entry) apart from "no", so a caller can fetch more bytes and ask again.
pub fn classify_store_prefix(prefix: &[u8]) -> Option<bool> {
    let mut offset = 0usize;
    loop {
        // Running out of bytes before the first file entry means "not known yet".
        let block = prefix.get(offset..)?.first_chunk::<BLOCK_SIZE>()?;
        let header = match parse_header(block) {
            Ok(Some(h)) => h,
            Ok(None) | Err(_) => return Some(false),
        };
        if !(header.is_dir() || header.is_metadata()) {
            return Some(is_neo4j_store_path(&header.name));
        }
        let skip = header
            .padded_size()
            .and_then(|p| usize::try_from(p).ok())
            .and_then(|p| p.checked_add(BLOCK_SIZE))
            .and_then(|p| p.checked_add(offset));
        match skip {
            Some(next) => offset = next,
            None => return Some(false),
        }
    }
}

/// Whether a tar path names something Neo4j keeps in a database or transaction-log directory.
///
/// Seen in real 4.3 and 5.0 dumps: `./neostore*` (store files, id files, counts, and the
/// transaction logs `neostore.transaction.db.N`), `./checkpoint.N` (5.x separate checkpoint
/// log), `./schema/index/<provider>/<id>/...` and `./profiles/...cacheprof`. Also accepted:
/// `database_lock`/`store_lock` and the 5.x block format's `block.*.db*` files. A bare `*.db`
/// is deliberately not enough: an ordinary `.tar.gz` holding an SQLite file would otherwise be
/// taken for a dump and restored re-compressed instead of byte for byte.
pub fn is_neo4j_store_path(name: &str) -> bool {
    let parts: Vec<&str> = name
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect();
    let Some(&base) = parts.last() else {
        return false;
    };
    let checkpoint = base
        .strip_prefix("checkpoint.")
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
    let schema_index = parts.windows(2).any(|w| w == ["schema", "index"]) && parts.len() > 2;
    let profile = parts.first() == Some(&"profiles") && base.ends_with(".cacheprof");
    base.starts_with("neostore")
        || base == "database_lock"
        || base == "store_lock"
        || checkpoint
        || (base.starts_with("block.") && base.contains(".db"))
        || schema_index
        || profile
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::io::Read;

    fn header_block(name: &str, size: u64, typeflag: u8) -> [u8; BLOCK_SIZE] {
        let mut out = Vec::new();
        let mut b = TarBuilder::new(&mut out);
        if typeflag == b'5' {
            b.append_dir(name).unwrap();
        } else {
            b.append(name, size, io::repeat(7).take(size)).unwrap();
        }
        *out.first_chunk::<BLOCK_SIZE>().unwrap()
    }

    #[test]
    fn parses_what_the_builder_writes() {
        let block = header_block("./neostore.nodestore.db", 8192, b'0');
        let h = parse_header(&block).unwrap().unwrap();
        assert_eq!(h.name, "./neostore.nodestore.db");
        assert_eq!(h.size, 8192);
        assert!(h.is_regular_file());
        assert_eq!(parse_header(&[0; BLOCK_SIZE]).unwrap(), None);
    }

    #[test]
    fn checksum_and_magic_are_checked() {
        let mut block = header_block("a", 1, b'0');
        block[0] = b'b';
        assert!(matches!(
            parse_header(&block),
            Err(TarError::BadChecksum { .. })
        ));
        let mut block = header_block("a", 1, b'0');
        block[257] = b'x';
        // Keep the checksum right so that only the magic is wrong.
        block[148..156].copy_from_slice(b"        ");
        let sum: u64 = block.iter().map(|&b| u64::from(b)).sum();
        block[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        assert!(matches!(parse_header(&block), Err(TarError::BadMagic)));
    }

    #[test]
    fn numbers_octal_and_base256() {
        assert_eq!(parse_number(b"00000001750 ", "t").unwrap(), 1000);
        assert_eq!(parse_number(b"   17\0\0\0\0", "t").unwrap(), 15);
        assert_eq!(parse_number(b"\0\0\0\0", "t").unwrap(), 0);
        assert!(parse_number(b"0009", "t").is_err());
        assert!(parse_number(b"12 3", "t").is_err());
        let mut big = [0u8; 12];
        big[0] = 0x80;
        big[4..].copy_from_slice(&(20u64 << 30).to_be_bytes());
        assert_eq!(parse_number(&big, "t").unwrap(), 20 << 30);
        assert!(parse_number(&[0xff; 12], "t").is_err());
        let mut huge = [0xffu8; 12];
        huge[0] = 0x80;
        assert!(parse_number(&huge, "t").is_err());
    }

    #[test]
    fn builder_splits_long_names_into_prefix() {
        let dir = "schema/index/range-1.0/".repeat(5);
        let name = format!("./{dir}index-9");
        assert!(name.len() > 100);
        let block = header_block(&name, 3, b'0');
        assert_eq!(parse_header(&block).unwrap().unwrap().name, name);
    }

    #[test]
    fn neo4j_names() {
        for yes in [
            "./neostore",
            "./neostore.transaction.db.0",
            "neostore.nodestore.db.id",
            "./checkpoint.1",
            "./database_lock",
            "./schema/index/range-1.0/9/index-9",
            "./profiles/neostore.id.0.cacheprof",
            "./block.big_values.db",
        ] {
            assert!(is_neo4j_store_path(yes), "{yes}");
        }
        for no in [
            "./",
            "README.md",
            "app.db",
            "src/schema/index.rs",
            "checkpoint.",
            "checkpoint.x",
            "profiles/x.txt",
        ] {
            assert!(!is_neo4j_store_path(no), "{no}");
        }
    }

    #[test]
    fn store_prefix_skips_leading_directories() {
        let mut tar = Vec::new();
        let mut b = TarBuilder::new(&mut tar);
        b.append_dir("./").unwrap();
        b.append_dir("./schema/").unwrap();
        b.append("./neostore.counts.db", 3, &b"abc"[..]).unwrap();
        b.finish().unwrap();
        assert!(looks_like_neo4j_store(&tar));
        assert_eq!(classify_store_prefix(&tar[..1024]), None);
        assert!(!looks_like_neo4j_store(&tar[..1024]));
        assert!(!looks_like_neo4j_store(&[]));
        assert!(!looks_like_neo4j_store(&[0; 1024]));

        let mut other = Vec::new();
        let mut b = TarBuilder::new(&mut other);
        b.append_dir("./").unwrap();
        b.append("./notes.txt", 3, &b"abc"[..]).unwrap();
        b.finish().unwrap();
        assert_eq!(classify_store_prefix(&other), Some(false));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn parse_header_never_panics(bytes in proptest::collection::vec(any::<u8>(), BLOCK_SIZE)) {
            let block: [u8; BLOCK_SIZE] = bytes.try_into().unwrap();
            let _ = parse_header(&block);
            let _ = classify_store_prefix(&block);
        }

        #[test]
        fn mutated_valid_header_never_panics(
            pos in 0usize..BLOCK_SIZE,
            byte in any::<u8>(),
            fix_checksum in any::<bool>(),
        ) {
            let mut block = header_block("./neostore.id", 49152, b'0');
            block[pos] = byte;
            if fix_checksum {
                block[148..156].copy_from_slice(b"        ");
                let sum: u64 = block.iter().map(|&b| u64::from(b)).sum();
                block[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
            }
            let _ = parse_header(&block);
            let _ = classify_store_prefix(&block);
        }
    }
}
