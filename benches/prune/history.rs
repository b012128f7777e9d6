//! The prune bench's history: a page store that changes a little every night, and the nights it is snapshotted.
//!
//! The store is one tar (`./` plus one store file, like the e2e inputs). Day 1 comes from the
//! page generator; every later day rewrites about `change_percent` of the records in runs, with
//! the e2e harness's day-2 logic (`change_runs` places the runs, `rewrite_runs` rewrites them),
//! in place, so a day costs a few MB of writes instead of a new GiB file.
//!
//! A day's new records are a function of (seed, day, record id), not of a sequential generator:
//! replaying a day over a half-written file gives the same bytes, which is what lets an
//! interrupted build resume (see `build.rs`).

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use rbk::codec::tar::TarBuilder;
use time::{Date, Duration, Month, Weekday};

use crate::inputs::STORE_NAME;
use crate::pages::{PAGE_SIZE, PageGen, RECORDS_PER_PAGE, XorShift, change_runs, rewrite_runs};

/// Pages generated per read of the day-1 generator (1 MiB).
const BATCH_PAGES: u64 = 128;
/// Where the store file's bytes start in the tar: the `./` header and the file's header.
const DATA_OFFSET: u64 = 1024;

/// The store tar on disk and the parameters that make each of its days.
pub struct Store {
    pub path: PathBuf,
    pub pages: u64,
    pub records: u64,
    seed: u64,
    change_percent: f64,
}

/// What one night's changes were.
pub struct DayChange {
    pub records: u64,
    pub runs: usize,
}

impl Store {
    pub fn new(path: &Path, gib: f64, seed: u64, change_percent: f64) -> Store {
        // Whole batches of pages, as the e2e inputs round them.
        let pages = ((gib * (1u64 << 30) as f64) / PAGE_SIZE as f64)
            .round()
            .max(BATCH_PAGES as f64) as u64;
        let pages = pages.div_ceil(BATCH_PAGES) * BATCH_PAGES;
        Store {
            path: path.to_path_buf(),
            pages,
            records: pages * RECORDS_PER_PAGE as u64,
            seed,
            change_percent,
        }
    }

    /// Bytes of the store file inside the tar.
    pub fn store_bytes(&self) -> u64 {
        self.pages * PAGE_SIZE as u64
    }

    /// Writes day 1: the whole tar, from the generator.
    pub fn generate(&self) -> Result<()> {
        let file =
            File::create(&self.path).with_context(|| format!("create {}", self.path.display()))?;
        let mut tar = TarBuilder::new(BufWriter::with_capacity(1 << 20, file));
        tar.append_dir("./")?;
        let pages = GeneratedPages {
            generator: PageGen::day1_only(self.seed),
            left: self.pages,
            buf: Vec::new(),
            pos: 0,
        };
        tar.append(STORE_NAME, self.store_bytes(), pages)?;
        let file = tar.finish()?.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        // Days are applied at a fixed offset: make sure page 0 really starts there.
        let mut head = [0u8; 12];
        File::open(&self.path)?.read_exact_at(&mut head, DATA_OFFSET)?;
        if &head[..4] != b"PG01" || head[4..12] != [0; 8] {
            bail!(
                "{}: page 0 is not at offset {DATA_OFFSET}",
                self.path.display()
            );
        }
        Ok(())
    }

    /// Turns day `day - 1` into day `day` (day >= 2) by rewriting this night's runs of records.
    pub fn apply_day(&self, day: u32) -> Result<DayChange> {
        let day_seed = self.seed ^ (u64::from(day) << 32);
        let runs = change_runs(self.records, self.change_percent, day_seed);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&self.path)
            .with_context(|| format!("open {}", self.path.display()))?;
        let mut next_run = 0;
        let mut changed = 0;
        for run in &runs {
            // Runs lie more than a page apart, so every page belongs to one run, and the
            // pages come in ascending order as `rewrite_runs` wants.
            let first = run.start / RECORDS_PER_PAGE as u64;
            let last = (run.end - 1) / RECORDS_PER_PAGE as u64;
            let mut buf = vec![0u8; (last - first + 1) as usize * PAGE_SIZE];
            let at = DATA_OFFSET + first * PAGE_SIZE as u64;
            file.read_exact_at(&mut buf, at)?;
            for (i, page) in buf.chunks_exact_mut(PAGE_SIZE).enumerate() {
                let page_no = first + i as u64;
                // A new LSN per night, as a database's log advances.
                let lsn = 5_000_000 * u64::from(day) + page_no;
                changed += rewrite_runs(page, page_no, &runs, &mut next_run, lsn, |id| {
                    let mut r = XorShift::new(day_seed ^ id.wrapping_mul(0xD6E8_FEB8_6659_FD93));
                    (r.next_u64(), r.next_u64())
                });
            }
            file.write_all_at(&buf, at)?;
        }
        // Durable before the caller records the day as applied (a resume trusts that record).
        file.sync_data()?;
        Ok(DayChange {
            records: changed,
            runs: runs.len(),
        })
    }
}

/// The day-1 store file, as a `Read` over the generator (1 MiB at a time, whatever the size).
struct GeneratedPages {
    generator: PageGen,
    left: u64,
    buf: Vec<u8>,
    pos: usize,
}

impl Read for GeneratedPages {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.pos == self.buf.len() {
            if self.left == 0 {
                return Ok(0);
            }
            let n = self.left.min(BATCH_PAGES);
            self.left -= n;
            self.buf.resize(n as usize * PAGE_SIZE, 0);
            self.generator.fill(&mut self.buf, None);
            self.pos = 0;
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// The first night of the history.
pub fn first_night() -> Date {
    Date::from_calendar_date(2025, Month::November, 27).expect("a valid date")
}

/// The last Sunday of `month`: the day European summer time starts (March) or ends (October).
fn last_sunday(year: i32, month: Month) -> Date {
    let mut d = Date::from_calendar_date(year, month, month.length(year)).expect("a valid date");
    while d.weekday() != Weekday::Sunday {
        d = d.previous_day().expect("not the first date");
    }
    d
}

/// When the snapshot of `day` (1-based) is taken: 02:00 Central European time, as a nightly
/// timer on a host in Berlin or Paris would run it, with the offset of that night (+01:00 in
/// winter, +02:00 in summer). On the night summer time starts, 02:00 does not exist and the
/// timer runs at 03:00 +02:00; on the night it ends, 02:00 comes twice and the first (+02:00)
/// runs it.
pub fn night(day: u32) -> String {
    let date = first_night() + Duration::days(i64::from(day) - 1);
    let (start, end) = (
        last_sunday(date.year(), Month::March),
        last_sunday(date.year(), Month::October),
    );
    let (hour, offset) = if date == start {
        (3, 2)
    } else if date > start && date <= end {
        (2, 2)
    } else {
        (2, 1)
    };
    format!(
        "{:04}-{:02}-{:02}T{hour:02}:00:00+{offset:02}:00",
        date.year(),
        u8::from(date.month()),
        date.day()
    )
}
