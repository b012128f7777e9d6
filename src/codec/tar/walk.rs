//! Streaming walk over a tar's entries that skips their data, for validation and fuzzing.
//!
//! PAX (`x`) and GNU long-name (`L`) records are folded into the entry they describe, because
//! Neo4j's tar writer may use them for store files over 8 GiB or paths over 100 bytes, and the
//! sizes they carry are needed to find the next header.

use std::io::{self, Read};

use super::{BLOCK_SIZE, TarEntryHeader, TarError, padded, parse_header};

/// Largest PAX or GNU long-name record accepted; real ones are a few hundred bytes, and the
/// bound keeps a hostile archive from making the walker buffer gigabytes.
const MAX_EXTENDED: u64 = 1 << 20;

/// Iterator over the entries of a tar stream; see [`walk`].
pub struct TarWalker<R> {
    r: R,
    /// Bytes consumed from `r` so far, for error messages.
    offset: u64,
    done: bool,
    pending_name: Option<String>,
    pending_size: Option<u64>,
}

/// Walks a tar stream entry by entry, reading headers and skipping data.
///
/// Yields each file, directory, link... header (PAX and GNU long-name records already applied)
/// and stops after the two zero blocks that end the archive. A stream that ends early, or any
/// bad header, yields one error and then nothing more. Bytes after the end marker are not read;
/// [`TarWalker::trailing_bytes`] counts them.
pub fn walk<R: Read>(r: R) -> TarWalker<R> {
    TarWalker {
        r,
        offset: 0,
        done: false,
        pending_name: None,
        pending_size: None,
    }
}

/// Totals of a whole tar, as Neo4j records them in its dump header.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TarSummary {
    /// Number of entries of any type (metadata records excluded).
    pub entries: u64,
    /// Number of regular files.
    pub regular_files: u64,
    /// Sum of the regular files' sizes.
    pub regular_bytes: u64,
    /// Bytes after the end-of-archive marker (record padding or garbage).
    pub trailing_bytes: u64,
}

/// Walks a whole tar stream, then counts any bytes after its end marker.
pub fn summarize<R: Read>(r: R) -> Result<TarSummary, TarError> {
    let mut summary = TarSummary::default();
    let mut walker = walk(r);
    for entry in walker.by_ref() {
        let entry = entry?;
        summary.entries += 1;
        if entry.is_regular_file() {
            summary.regular_files += 1;
            summary.regular_bytes = summary.regular_bytes.saturating_add(entry.size);
        }
    }
    summary.trailing_bytes = walker.trailing_bytes()?;
    Ok(summary)
}

enum Fill {
    Full,
    Empty,
}

impl<R: Read> TarWalker<R> {
    /// Bytes of the underlying stream consumed so far.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Reads the rest of the stream and returns its length. Meant to be called once the walk has
    /// ended, to check for record padding or garbage after the archive.
    pub fn trailing_bytes(&mut self) -> Result<u64, TarError> {
        let n = io::copy(&mut self.r, &mut io::sink())?;
        self.offset += n;
        Ok(n)
    }

    /// Fills `buf` completely, or reports a clean EOF before its first byte.
    fn read_block(&mut self, buf: &mut [u8; BLOCK_SIZE]) -> Result<Fill, TarError> {
        let mut got = 0;
        while got < buf.len() {
            match self.r.read(&mut buf[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
        self.offset += got as u64;
        match got {
            0 => Ok(Fill::Empty),
            BLOCK_SIZE => Ok(Fill::Full),
            _ => Err(TarError::Truncated {
                offset: self.offset,
            }),
        }
    }

    /// Discards `n` bytes of entry data, failing if the stream ends first.
    fn skip(&mut self, n: u64) -> Result<(), TarError> {
        let copied = io::copy(&mut (&mut self.r).take(n), &mut io::sink())?;
        self.offset += copied;
        if copied < n {
            return Err(TarError::Truncated {
                offset: self.offset,
            });
        }
        Ok(())
    }

    /// Reads a bounded metadata record's data (plus padding) into memory.
    fn read_extended(&mut self, size: u64) -> Result<Vec<u8>, TarError> {
        let at = self.offset;
        if size > MAX_EXTENDED {
            return Err(TarError::BadExtendedHeader {
                offset: at,
                reason: "record larger than 1 MiB",
            });
        }
        let mut data = Vec::new();
        (&mut self.r).take(size).read_to_end(&mut data)?;
        self.offset += data.len() as u64;
        if (data.len() as u64) < size {
            return Err(TarError::Truncated {
                offset: self.offset,
            });
        }
        self.skip(padded(size).unwrap_or(size) - size)?;
        Ok(data)
    }

    fn next_entry(&mut self) -> Result<Option<TarEntryHeader>, TarError> {
        let mut block = [0u8; BLOCK_SIZE];
        loop {
            let at = self.offset;
            if let Fill::Empty = self.read_block(&mut block)? {
                return Err(TarError::MissingEndMarker { offset: at });
            }
            let Some(mut header) = parse_header(&block).map_err(|e| TarError::AtOffset {
                offset: at,
                source: Box::new(e),
            })?
            else {
                // One zero block must be followed by a second one.
                let second = self.offset;
                match self.read_block(&mut block)? {
                    Fill::Full if block.iter().all(|&b| b == 0) => return Ok(None),
                    _ => return Err(TarError::MissingEndMarker { offset: second }),
                }
            };
            match header.typeflag {
                b'x' => {
                    let data = self.read_extended(header.size)?;
                    self.apply_pax(&data, at)?;
                }
                b'L' => {
                    let data = self.read_extended(header.size)?;
                    let name = data.split(|&b| b == 0).next().unwrap_or(&[]);
                    self.pending_name = Some(String::from_utf8_lossy(name).into_owned());
                }
                _ => {
                    if let Some(name) = self.pending_name.take() {
                        header.name = name;
                    }
                    if let Some(size) = self.pending_size.take() {
                        header.size = size;
                    }
                    let data = header
                        .padded_size()
                        .ok_or(TarError::SizeOverflow { size: header.size })?;
                    self.skip(data)?;
                    // Global PAX headers and GNU long link names only describe metadata that
                    // rbk does not use; they are skipped, not reported.
                    if matches!(header.typeflag, b'g' | b'K') {
                        continue;
                    }
                    return Ok(Some(header));
                }
            }
        }
    }

    /// Takes `path` and `size` from a PAX record set: `"<len> <key>=<value>\n"` repeated.
    fn apply_pax(&mut self, mut data: &[u8], at: u64) -> Result<(), TarError> {
        let bad = |reason| TarError::BadExtendedHeader { offset: at, reason };
        while !data.is_empty() {
            let space = data
                .iter()
                .position(|&b| b == b' ')
                .ok_or_else(|| bad("record without length"))?;
            let len: usize = std::str::from_utf8(&data[..space])
                .ok()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| bad("record length is not a number"))?;
            if len <= space + 1 || len > data.len() || data[len - 1] != b'\n' {
                return Err(bad("record length out of range"));
            }
            let record = &data[space + 1..len - 1];
            data = &data[len..];
            let Some(eq) = record.iter().position(|&b| b == b'=') else {
                return Err(bad("record without `=`"));
            };
            let (key, value) = (&record[..eq], &record[eq + 1..]);
            match key {
                b"path" => self.pending_name = Some(String::from_utf8_lossy(value).into_owned()),
                b"size" => {
                    let size = std::str::from_utf8(value)
                        .ok()
                        .and_then(|s| s.parse::<u64>().ok())
                        .ok_or_else(|| bad("size is not a number"))?;
                    self.pending_size = Some(size);
                }
                _ => {}
            }
        }
        Ok(())
    }
}

impl<R: Read> Iterator for TarWalker<R> {
    type Item = Result<TarEntryHeader, TarError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.next_entry() {
            Ok(Some(h)) => Some(Ok(h)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::TarBuilder;
    use super::*;
    use proptest::prelude::*;

    /// One PAX record; its length prefix counts itself.
    fn pax_record(key: &str, value: &str) -> String {
        let body = format!(" {key}={value}\n");
        let len = (1..5)
            .map(|digits| body.len() + digits)
            .find(|total| total.to_string().len() + body.len() == *total)
            .unwrap();
        format!("{len}{body}")
    }

    fn sample() -> Vec<u8> {
        let mut b = TarBuilder::new(Vec::new());
        b.append_dir("./").unwrap();
        b.append("./neostore", 8192, io::repeat(1).take(8192))
            .unwrap();
        b.append("./neostore.transaction.db.0", 5, &b"hello"[..])
            .unwrap();
        b.append("./empty", 0, io::empty()).unwrap();
        b.finish().unwrap()
    }

    #[test]
    fn walks_and_summarizes() {
        let tar = sample();
        let names: Vec<String> = walk(&tar[..]).map(|e| e.unwrap().name).collect();
        assert_eq!(
            names,
            ["./", "./neostore", "./neostore.transaction.db.0", "./empty"]
        );
        let s = summarize(&tar[..]).unwrap();
        assert_eq!(
            s,
            TarSummary {
                entries: 4,
                regular_files: 3,
                regular_bytes: 8197,
                trailing_bytes: 0
            }
        );
        let mut padded = tar.clone();
        padded.extend_from_slice(&[0; 9216]);
        assert_eq!(summarize(&padded[..]).unwrap().trailing_bytes, 9216);
    }

    #[test]
    fn truncation_is_an_error_everywhere() {
        let tar = sample();
        for cut in (0..tar.len()).step_by(97) {
            let result = summarize(&tar[..cut]);
            assert!(result.is_err(), "cut at {cut} passed");
        }
    }

    #[test]
    fn pax_and_gnu_long_names_apply_to_the_next_entry() {
        let mut tar = Vec::new();
        let mut b = TarBuilder::new(&mut tar);
        let records = pax_record("path", "./neostore.nodestore.db") + &pax_record("size", "4000");
        b.append_typed(
            "./PaxHeaders/x",
            b'x',
            records.len() as u64,
            records.as_bytes(),
        )
        .unwrap();
        // The ustar size field says 0; the PAX size 4000 must be the one used to skip data.
        b.append_typed("short", b'0', 0, io::empty()).unwrap();
        b.finish().unwrap();
        // Splice 4000 data bytes (padded) after the second header, before the end marker.
        let end = tar.len() - 1024;
        let mut spliced = tar[..end].to_vec();
        spliced.extend(std::iter::repeat_n(9u8, 4096));
        spliced.extend_from_slice(&tar[end..]);
        let entries: Vec<_> = walk(&spliced[..]).map(|e| e.unwrap()).collect();
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].name, "./neostore.nodestore.db");
        assert_eq!(entries[0].size, 4000);

        let mut tar = Vec::new();
        let mut b = TarBuilder::new(&mut tar);
        let long = format!("./{}/neostore", "d".repeat(200));
        b.append_typed(
            "././@LongLink",
            b'L',
            long.len() as u64 + 1,
            io::Cursor::new(format!("{long}\0")),
        )
        .unwrap();
        b.append("truncated-name", 1, &b"z"[..]).unwrap();
        b.finish().unwrap();
        let entries: Vec<_> = walk(&tar[..]).map(|e| e.unwrap()).collect();
        assert_eq!(entries[0].name, long);
    }

    proptest! {
        #[test]
        fn walking_garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
            let _ = summarize(&bytes[..]);
        }

        #[test]
        fn walking_mutated_tar_never_panics(pos in 0usize..9728, byte in any::<u8>()) {
            let mut tar = sample();
            let len = tar.len();
            tar[pos % len] = byte;
            let _ = summarize(&tar[..]);
        }
    }
}
