//! The shape of a SQLite database file and of its write-ahead log, from their headers and sizes.
//!
//! Not an integrity check (that needs SQLite itself, which rbk does not link): it finds the
//! damage a backup file suffers in transit, a file that is not SQLite at all, or one cut
//! short, whose header says it has more pages than the file holds. Format:
//! <https://www.sqlite.org/fileformat2.html>, sections 1.3 (the database header) and 4.1
//! (the WAL header).

use std::io::{self, Write};

const MAGIC: &[u8; 16] = b"SQLite format 3\0";
const HEADER_LEN: usize = 100;
const WAL_HEADER_LEN: usize = 32;
const WAL_FRAME_HEADER_LEN: u64 = 24;

/// What a file's header and size say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SqliteSummary {
    pub page_size: u32,
    /// Pages the file holds (database), or whole frames (WAL).
    pub pages: u64,
}

/// Which of the two files a [`SqliteCheck`] expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SqliteFile {
    Database,
    Wal,
}

/// A streaming check: write the file into it, then [`finish`](SqliteCheck::finish). Keeps
/// the header and counts the rest.
#[derive(Debug)]
pub struct SqliteCheck {
    file: SqliteFile,
    header: Vec<u8>,
    size: u64,
}

impl SqliteCheck {
    pub fn new(file: SqliteFile) -> SqliteCheck {
        SqliteCheck {
            file,
            header: Vec::with_capacity(HEADER_LEN),
            size: 0,
        }
    }

    pub fn finish(self) -> Result<SqliteSummary, String> {
        match self.file {
            SqliteFile::Database => database(&self.header, self.size),
            SqliteFile::Wal => wal(&self.header, self.size),
        }
    }
}

impl Write for SqliteCheck {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let room = HEADER_LEN.saturating_sub(self.header.len());
        self.header.extend_from_slice(&buf[..buf.len().min(room)]);
        self.size += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Whether a stream that starts with `prefix` is a SQLite database file.
pub fn looks_like_sqlite(prefix: &[u8]) -> bool {
    prefix.starts_with(MAGIC)
}

fn be32(h: &[u8], at: usize) -> Option<u32> {
    h.get(at..at + 4)?.try_into().ok().map(u32::from_be_bytes)
}

/// A page size as the header encodes it: a power of two from 512 to 32768, or 1 for 65536.
fn page_size(raw: u32) -> Option<u32> {
    match raw {
        1 => Some(65536),
        n if (512..=32768).contains(&n) && n.is_power_of_two() => Some(n),
        _ => None,
    }
}

fn database(h: &[u8], size: u64) -> Result<SqliteSummary, String> {
    if h.len() < HEADER_LEN {
        return Err(format!(
            "{size} bytes: shorter than a SQLite header ({HEADER_LEN} bytes)"
        ));
    }
    if !h.starts_with(MAGIC) {
        return Err("not a SQLite database (no \"SQLite format 3\" header)".into());
    }
    let raw = u32::from(u16::from_be_bytes([h[16], h[17]]));
    let page =
        page_size(raw).ok_or_else(|| format!("its header gives no valid page size ({raw})"))?;
    if !size.is_multiple_of(u64::from(page)) {
        return Err(format!(
            "{size} bytes is not a whole number of {page}-byte pages: cut short or padded"
        ));
    }
    let pages = size / u64::from(page);
    // The page count in the header is valid only when the version-valid-for number equals
    // the change counter (a writer that predates it leaves them apart).
    let (change, valid_for, in_header) = (be32(h, 24), be32(h, 92), be32(h, 28));
    if let (Some(c), Some(v), Some(n)) = (change, valid_for, in_header)
        && c == v
        && n > 0
        && u64::from(n) > pages
    {
        return Err(format!(
            "its header counts {n} pages but the file holds {pages}: cut short"
        ));
    }
    Ok(SqliteSummary {
        page_size: page,
        pages,
    })
}

fn wal(h: &[u8], size: u64) -> Result<SqliteSummary, String> {
    if h.len() < WAL_HEADER_LEN {
        return Err(format!(
            "{size} bytes: shorter than a SQLite WAL header ({WAL_HEADER_LEN} bytes)"
        ));
    }
    if !matches!(be32(h, 0), Some(0x377f_0682 | 0x377f_0683)) {
        return Err("not a SQLite write-ahead log (wrong magic number)".into());
    }
    let raw = be32(h, 8).unwrap_or(0);
    let page =
        page_size(raw).ok_or_else(|| format!("its header gives no valid page size ({raw})"))?;
    // A frame torn by a crash is ignored by SQLite's recovery, so a partial last frame is not
    // damage: only whole frames are counted.
    let frames = (size - WAL_HEADER_LEN as u64) / (WAL_FRAME_HEADER_LEN + u64::from(page));
    Ok(SqliteSummary {
        page_size: page,
        pages: frames,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db(pages: u32, page: u16, in_header: u32) -> Vec<u8> {
        let page_bytes = if page == 1 { 65536 } else { usize::from(page) };
        let mut f = vec![0u8; pages as usize * page_bytes.max(HEADER_LEN)];
        f[..16].copy_from_slice(MAGIC);
        f[16..18].copy_from_slice(&page.to_be_bytes());
        f[24..28].copy_from_slice(&7u32.to_be_bytes());
        f[28..32].copy_from_slice(&in_header.to_be_bytes());
        f[92..96].copy_from_slice(&7u32.to_be_bytes());
        f
    }

    fn check(file: SqliteFile, bytes: &[u8]) -> Result<SqliteSummary, String> {
        let mut c = SqliteCheck::new(file);
        for chunk in bytes.chunks(37) {
            c.write_all(chunk).expect("infallible");
        }
        c.finish()
    }

    #[test]
    fn a_whole_database_passes_and_a_cut_one_fails() {
        let f = db(4, 4096, 4);
        assert!(looks_like_sqlite(&f));
        assert_eq!(
            check(SqliteFile::Database, &f),
            Ok(SqliteSummary {
                page_size: 4096,
                pages: 4
            })
        );
        assert!(check(SqliteFile::Database, &db(1, 1, 1)).is_ok());
        // Cut at a page boundary: only the header's count tells.
        let e = check(SqliteFile::Database, &f[..3 * 4096]).unwrap_err();
        assert!(e.contains("counts 4 pages"), "{e}");
        let e = check(SqliteFile::Database, &f[..4096 + 10]).unwrap_err();
        assert!(e.contains("whole number"), "{e}");
        let e = check(SqliteFile::Database, &f[..50]).unwrap_err();
        assert!(e.contains("shorter"), "{e}");
        let e = check(SqliteFile::Database, &[b'x'; 4096]).unwrap_err();
        assert!(e.contains("not a SQLite"), "{e}");
        let e = check(SqliteFile::Database, &db(1, 1000, 1)).unwrap_err();
        assert!(e.contains("page size"), "{e}");
    }

    #[test]
    fn a_wal_counts_whole_frames() {
        let mut w = vec![0u8; 32 + 2 * (24 + 1024) + 100];
        w[..4].copy_from_slice(&0x377f_0682u32.to_be_bytes());
        w[8..12].copy_from_slice(&1024u32.to_be_bytes());
        assert_eq!(check(SqliteFile::Wal, &w).map(|s| s.pages), Ok(2));
        w[0] = 0;
        assert!(check(SqliteFile::Wal, &w).is_err());
        assert!(check(SqliteFile::Wal, &w[..10]).is_err());
    }
}
