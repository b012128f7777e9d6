//! Page-structured store data for the benches: 8 KiB pages of 64-byte records, generated with xorshift.
//!
//! A page is a 64-byte header (magic, page number, record count, LSN, checksum) followed by 127
//! records of 64 bytes: an id, flags, a label, a property count, a timestamp, a relationship
//! pointer, an amount, a score and a short text of two or three words from a small vocabulary.
//! The mix is tuned so that the whole compresses about 3x with zstd level 3.
//!
//! [`PageGen`] produces day 1 and, in the same pass, day 2: the same pages except that about
//! `change_percent` of the records (in runs of a few thousand consecutive records placed at
//! random) were rewritten, and the pages that hold them carry a new LSN and checksum.

use std::ops::Range;

pub const PAGE_SIZE: usize = 8192;
pub const RECORD_SIZE: usize = 64;
pub const HEADER_SIZE: usize = 64;
pub const RECORDS_PER_PAGE: usize = (PAGE_SIZE - HEADER_SIZE) / RECORD_SIZE;
/// Shortest and longest run of changed records on day 2 (end exclusive).
pub const RUN_LEN: Range<u64> = 2000..6000;

const WORDS: [&str; 40] = [
    "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet",
    "kilo", "lima", "mike", "november", "oscar", "papa", "quebec", "romeo", "sierra", "tango",
    "uniform", "victor", "whiskey", "xray", "yankee", "zulu", "north", "south", "east", "west",
    "red", "green", "blue", "amber", "open", "closed", "pending", "active", "archived", "new",
];

/// xorshift64* (Marsaglia's xorshift with a multiplying output stage, for better low bits).
#[derive(Clone)]
pub struct XorShift(u64);

impl XorShift {
    pub fn new(seed: u64) -> XorShift {
        // Spread small seeds; the state must never be zero.
        XorShift(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `range` (modulo bias is irrelevant here).
    pub fn range(&mut self, range: Range<u64>) -> u64 {
        range.start + self.next_u64() % (range.end - range.start)
    }
}

/// Writes one record for `id`; `version` 0 is day 1, anything else a rewrite on day 2.
fn write_record(out: &mut [u8], id: u64, r: u64, r2: u64, version: u32) {
    out.fill(0);
    out[0..8].copy_from_slice(&id.to_le_bytes());
    let in_use = r & 63 != 0;
    let label = ((r >> 8) % 12) as u8;
    out[8] = u8::from(in_use) | (((r >> 6) & 3) as u8) << 1;
    if !in_use {
        return;
    }
    out[9] = label;
    out[10..12].copy_from_slice(&(((r >> 16) % 16) as u16).to_le_bytes());
    let epoch = if version == 0 {
        1_600_000_000u32
    } else {
        1_700_000_000
    };
    let created = epoch + (id / 16) as u32 + ((r >> 24) & 0xff) as u32;
    out[12..16].copy_from_slice(&created.to_le_bytes());
    let next_rel = if (r >> 32) & 7 == 0 {
        u64::MAX
    } else {
        id * 3 + ((r >> 35) & 63)
    };
    out[16..24].copy_from_slice(&next_rel.to_le_bytes());
    let amount = if label < 4 {
        (r2 % 100_000) as u32
    } else {
        (r2 % 1000) as u32 * 100
    };
    out[24..28].copy_from_slice(&amount.to_le_bytes());
    let score = ((r2 >> 20) % 1000) as f32 * 0.5;
    out[28..32].copy_from_slice(&score.to_le_bytes());
    let mut text = [0u8; 32];
    let mut n = 0;
    let words = 2 + ((r2 >> 30) & 1) as usize;
    for w in 0..words {
        let word = WORDS[((r2 >> (32 + 6 * w)) % WORDS.len() as u64) as usize].as_bytes();
        if w > 0 {
            text[n] = b' ';
            n += 1;
        }
        text[n..n + word.len()].copy_from_slice(word);
        n += word.len();
    }
    out[32..64].copy_from_slice(&text);
}

/// Fills the header of a page whose records are already written.
fn write_header(page: &mut [u8], page_no: u64, lsn: u64) {
    let mut h: u64 = 0xCBF2_9CE4_8422_2325;
    for w in page[HEADER_SIZE..].chunks_exact(8) {
        h = (h ^ u64::from_le_bytes(w.try_into().unwrap_or_default()))
            .wrapping_mul(0x100_0000_01B3);
    }
    let header = &mut page[..HEADER_SIZE];
    header.fill(0);
    header[0..4].copy_from_slice(b"PG01");
    header[4..12].copy_from_slice(&page_no.to_le_bytes());
    header[12..14].copy_from_slice(&(RECORDS_PER_PAGE as u16).to_le_bytes());
    header[16..24].copy_from_slice(&lsn.to_le_bytes());
    header[24..28].copy_from_slice(&((h ^ (h >> 32)) as u32).to_le_bytes());
}

/// Day-2 changes: sorted, disjoint runs of record numbers.
pub fn change_runs(total_records: u64, change_percent: f64, seed: u64) -> Vec<Range<u64>> {
    let target = (total_records as f64 * change_percent / 100.0) as u64;
    let mut rng = XorShift::new(seed ^ 0xD1FF);
    let mut runs: Vec<Range<u64>> = Vec::new();
    let mut changed = 0;
    let mut attempts = 0;
    while changed < target && attempts < 1_000_000 {
        attempts += 1;
        let len = rng.range(RUN_LEN).min(target - changed).max(1);
        if len >= total_records {
            break;
        }
        let start = rng.range(0..total_records - len);
        let run = start..start + len;
        // Keep runs apart so each one is a separate edit.
        let at = runs.partition_point(|r| r.start < run.start);
        let clear_before = at == 0 || runs[at - 1].end + RUN_LEN.end <= run.start;
        let clear_after = at == runs.len() || run.end + RUN_LEN.end <= runs[at].start;
        if clear_before && clear_after {
            changed += len;
            runs.insert(at, run);
        }
    }
    runs
}

/// Generates pages of day 1 and day 2 in order.
pub struct PageGen {
    main: XorShift,
    alt: XorShift,
    page_no: u64,
    runs: Vec<Range<u64>>,
    next_run: usize,
}

impl PageGen {
    pub fn new(seed: u64, runs: Vec<Range<u64>>) -> PageGen {
        PageGen {
            main: XorShift::new(seed),
            alt: XorShift::new(seed ^ 0xA17E_0002),
            page_no: 0,
            runs,
            next_run: 0,
        }
    }

    /// Day 1 only (no changes).
    pub fn day1_only(seed: u64) -> PageGen {
        PageGen::new(seed, Vec::new())
    }

    /// Fills `day1` (a whole number of pages) and, if given, `day2` (same length).
    /// Returns the number of day-2 records that differ from day 1.
    pub fn fill(&mut self, day1: &mut [u8], mut day2: Option<&mut [u8]>) -> u64 {
        assert_eq!(day1.len() % PAGE_SIZE, 0, "whole pages only");
        let mut changed = 0;
        for (i, page) in day1.chunks_exact_mut(PAGE_SIZE).enumerate() {
            let page_no = self.page_no;
            self.page_no += 1;
            let first = page_no * RECORDS_PER_PAGE as u64;
            for (k, rec) in page[HEADER_SIZE..]
                .chunks_exact_mut(RECORD_SIZE)
                .enumerate()
            {
                let id = first + k as u64;
                let (r, r2) = (self.main.next_u64(), self.main.next_u64());
                write_record(rec, id, r, r2, 0);
            }
            write_header(page, page_no, 1000 + page_no / 64);
            let Some(day2) = day2.as_deref_mut() else {
                continue;
            };
            let page2 = &mut day2[i * PAGE_SIZE..(i + 1) * PAGE_SIZE];
            page2.copy_from_slice(page);
            let alt = &mut self.alt;
            changed += rewrite_runs(
                page2,
                page_no,
                &self.runs,
                &mut self.next_run,
                5_000_000 + page_no,
                |_| (alt.next_u64(), alt.next_u64()),
            );
        }
        changed
    }
}

/// Rewrites the records of `page` (page number `page_no`) whose ids fall in `runs`, as a
/// database does when it updates them, and gives a touched page the new `lsn` and checksum.
/// Returns the number of records rewritten.
///
/// `next_run` is the index of the first run that may still matter; pages must come in
/// ascending order for one `next_run`, so a whole pass over the runs stays linear. `random`
/// gives the two random words of each new record: a sequential generator for the e2e day 2,
/// a hash of (day, id) for the prune bench (so replaying a day over a half-written page
/// yields the same bytes).
pub fn rewrite_runs(
    page: &mut [u8],
    page_no: u64,
    runs: &[Range<u64>],
    next_run: &mut usize,
    lsn: u64,
    mut random: impl FnMut(u64) -> (u64, u64),
) -> u64 {
    let first = page_no * RECORDS_PER_PAGE as u64;
    let mut changed = 0;
    for (k, rec) in page[HEADER_SIZE..]
        .chunks_exact_mut(RECORD_SIZE)
        .enumerate()
    {
        let id = first + k as u64;
        while *next_run < runs.len() && runs[*next_run].end <= id {
            *next_run += 1;
        }
        if runs.get(*next_run).is_some_and(|r| r.contains(&id)) {
            let (r, r2) = random(id);
            write_record(rec, id, r, r2, 1);
            changed += 1;
        }
    }
    if changed > 0 {
        write_header(page, page_no, lsn);
    }
    changed
}
