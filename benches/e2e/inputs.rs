//! Builds the e2e inputs: day-1 and day-2 stores as plain tars and as Neo4j DZV1 dumps, streamed to disk.
//!
//! One pass of the page generator feeds four writer threads through bounded channels of 1 MiB
//! batches, so memory stays at a few MiB whatever the size. Each tar holds `./` and one store
//! file, exactly like the tar inside the dumps (whose zstd stream is level 3, as Neo4j writes).

use std::fs::{self, File};
use std::io::{self, BufWriter, Read};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use rbk::codec::neo4j_dump::{DumpBuilder, DumpFormat};
use rbk::codec::tar::TarBuilder;

use crate::pages::{PAGE_SIZE, PageGen, RECORDS_PER_PAGE, change_runs};

/// Name of the one store file inside each tar and dump.
pub const STORE_NAME: &str = "./neostore.nodestore.db";
/// Pages per batch handed to the writers (1 MiB).
const BATCH_PAGES: u64 = 128;
/// Bump when the generator's output changes, so kept inputs are rebuilt.
const FORMAT: &str = "rbk-e2e-inputs-v1";

pub struct Params {
    pub gib: f64,
    pub seed: u64,
    pub change_percent: f64,
}

pub struct Inputs {
    pub store_bytes: u64,
    pub records: u64,
    pub changed_records: u64,
    pub runs: usize,
    pub day1_tar: PathBuf,
    pub day2_tar: PathBuf,
    pub day1_dump: PathBuf,
    pub day2_dump: PathBuf,
    /// How long generation took; `None` when kept inputs were reused.
    pub generated_in: Option<Duration>,
}

impl Inputs {
    pub fn all(&self) -> [&Path; 4] {
        [
            &self.day1_tar,
            &self.day2_tar,
            &self.day1_dump,
            &self.day2_dump,
        ]
    }
}

pub fn size_of(path: &Path) -> Result<u64> {
    Ok(fs::metadata(path)
        .with_context(|| format!("stat {}", path.display()))?
        .len())
}

fn stamp_text(
    p: &Params,
    pages: u64,
    changed: u64,
    runs: usize,
    files: &[&Path; 4],
) -> Result<String> {
    let mut s = format!(
        "{FORMAT} pages={pages} seed={} change_percent={} changed={changed} runs={runs}",
        p.seed, p.change_percent
    );
    for f in files {
        s.push_str(&format!(" {}", size_of(f)?));
    }
    Ok(s)
}

/// What the inputs for `p` are, without building them: sizes, paths and day-2 runs.
pub fn plan(dir: &Path, p: &Params) -> (Inputs, Vec<Range<u64>>, u64) {
    let pages = ((p.gib * (1u64 << 30) as f64) / PAGE_SIZE as f64)
        .round()
        .max(BATCH_PAGES as f64) as u64;
    let pages = pages.div_ceil(BATCH_PAGES) * BATCH_PAGES;
    let records = pages * RECORDS_PER_PAGE as u64;
    let runs = change_runs(records, p.change_percent, p.seed);
    let inputs = Inputs {
        store_bytes: pages * PAGE_SIZE as u64,
        records,
        changed_records: runs.iter().map(|r| r.end - r.start).sum(),
        runs: runs.len(),
        day1_tar: dir.join("day1.tar"),
        day2_tar: dir.join("day2.tar"),
        day1_dump: dir.join("day1.dump"),
        day2_dump: dir.join("day2.dump"),
        generated_in: None,
    };
    (inputs, runs, pages)
}

/// Generates the inputs in `dir`, or reuses those a previous run left there for the same
/// parameters (see `RBK_BENCH_KEEP`).
pub fn prepare(dir: &Path, p: &Params) -> Result<Inputs> {
    let (mut inputs, runs, pages) = plan(dir, p);
    let planned = inputs.changed_records;
    let stamp = dir.join("inputs.stamp");
    if let Ok(old) = fs::read_to_string(&stamp)
        && stamp_text(p, pages, planned, inputs.runs, &inputs.all()).is_ok_and(|now| now == old)
    {
        return Ok(inputs);
    }
    let _ = fs::remove_file(&stamp);
    let started = Instant::now();
    let changed = generate(&inputs, pages, PageGen::new(p.seed, runs))?;
    if changed != planned {
        bail!("generator changed {changed} records, planned {planned}");
    }
    inputs.generated_in = Some(started.elapsed());
    fs::write(
        &stamp,
        stamp_text(p, pages, planned, inputs.runs, &inputs.all())?,
    )?;
    Ok(inputs)
}

/// Yields the batches sent on a channel as one byte stream; ends when the sender is dropped.
struct ChannelReader {
    rx: Receiver<Arc<Vec<u8>>>,
    current: Arc<Vec<u8>>,
    pos: usize,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.current.len() {
            match self.rx.recv() {
                Ok(next) => {
                    self.current = next;
                    self.pos = 0;
                }
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len() - self.pos);
        buf[..n].copy_from_slice(&self.current[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

fn create(path: &Path) -> Result<BufWriter<File>> {
    let f = File::create(path).with_context(|| format!("create {}", path.display()))?;
    Ok(BufWriter::with_capacity(1 << 20, f))
}

fn finish_file(w: BufWriter<File>) -> Result<()> {
    let f = w.into_inner().map_err(|e| e.into_error())?;
    f.sync_all()?;
    Ok(())
}

fn write_tar(path: &Path, size: u64, data: ChannelReader) -> Result<()> {
    let mut tar = TarBuilder::new(create(path)?);
    tar.append_dir("./")?;
    tar.append(STORE_NAME, size, data)?;
    finish_file(tar.finish()?)
}

fn write_dump(path: &Path, size: u64, data: ChannelReader) -> Result<()> {
    let mut dump = DumpBuilder::new(create(path)?, DumpFormat::Dzv1Zstd, 1, size as i64, 3)?;
    dump.append_dir("./")?;
    dump.append_file(STORE_NAME, size, data)?;
    finish_file(dump.finish()?)
}

/// Runs the generator and the four writers; returns the number of records changed on day 2.
fn generate(inputs: &Inputs, pages: u64, mut generator: PageGen) -> Result<u64> {
    let size = inputs.store_bytes;
    let channel = || {
        let (tx, rx) = sync_channel::<Arc<Vec<u8>>>(4);
        let reader = ChannelReader {
            rx,
            current: Arc::new(Vec::new()),
            pos: 0,
        };
        (tx, reader)
    };
    let (tx1t, r1t) = channel();
    let (tx2t, r2t) = channel();
    let (tx1d, r1d) = channel();
    let (tx2d, r2d) = channel();
    std::thread::scope(|s| {
        let writers = [
            s.spawn(|| write_tar(&inputs.day1_tar, size, r1t)),
            s.spawn(|| write_tar(&inputs.day2_tar, size, r2t)),
            s.spawn(|| write_dump(&inputs.day1_dump, size, r1d)),
            s.spawn(|| write_dump(&inputs.day2_dump, size, r2d)),
        ];
        let senders: [(&SyncSender<Arc<Vec<u8>>>, bool); 4] =
            [(&tx1t, false), (&tx2t, true), (&tx1d, false), (&tx2d, true)];
        let mut changed = 0;
        let mut sent_all = true;
        for _ in 0..pages / BATCH_PAGES {
            let mut day1 = vec![0u8; BATCH_PAGES as usize * PAGE_SIZE];
            let mut day2 = vec![0u8; day1.len()];
            changed += generator.fill(&mut day1, Some(&mut day2));
            let (day1, day2) = (Arc::new(day1), Arc::new(day2));
            if !senders.iter().all(|(tx, second)| {
                tx.send(if *second { day2.clone() } else { day1.clone() })
                    .is_ok()
            }) {
                sent_all = false;
                break;
            }
        }
        drop((tx1t, tx2t, tx1d, tx2d));
        for w in writers {
            w.join()
                .map_err(|_| anyhow!("an input writer panicked"))??;
        }
        if !sent_all {
            bail!("an input writer stopped early");
        }
        Ok(changed)
    })
}

/// Reads a file to its end so that it is in the page cache; returns its size.
pub fn warm(path: &Path) -> Result<u64> {
    let mut f = File::open(path).with_context(|| format!("open {}", path.display()))?;
    Ok(io::copy(&mut f, &mut io::sink())?)
}

/// Whether two streams hold the same bytes.
pub fn same_bytes(mut a: impl Read, mut b: impl Read) -> Result<bool> {
    let mut ba = vec![0u8; 1 << 20];
    let mut bb = vec![0u8; 1 << 20];
    loop {
        let na = read_full(&mut a, &mut ba)?;
        let nb = read_full(&mut b, &mut bb)?;
        if na != nb || ba[..na] != bb[..nb] {
            return Ok(false);
        }
        if na == 0 {
            return Ok(true);
        }
    }
}

fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Flushes dirty pages of everything written so far, so the next step does not pay for them.
pub fn sync_all() {
    // SAFETY: sync(2) takes no arguments and cannot fail.
    unsafe { libc::sync() };
}

/// Apparent size of every file under `dir`.
pub fn tree_size(dir: &Path) -> Result<u64> {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).with_context(|| format!("list {}", d.display()))? {
            let entry = entry?;
            let ft = entry.file_type()?;
            if ft.is_dir() {
                stack.push(entry.path());
            } else if ft.is_file() {
                total += entry.metadata()?.len();
            }
        }
    }
    Ok(total)
}
