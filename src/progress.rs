//! Progress reporting: long operations say how far they are through this interface; only the CLI draws it.
//!
//! The store, the sources and the restore code never print. They open a
//! [`Task`] for each stretch of work that can take long (a part being
//! stored or restored, packs being read, packs being repacked), advance it,
//! and drop it when the stretch is over. Tasks may run at once on several
//! threads (the graph and SQL dumps are stored in parallel). What a task
//! looks like (a bar, a JSON line, nothing) is the caller's choice.

use std::io::{self, Read, Write};

/// What a task counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Bytes,
    /// Files, snapshots, packs: anything counted one by one.
    Items,
}

impl Unit {
    pub fn name(self) -> &'static str {
        match self {
            Unit::Bytes => "bytes",
            Unit::Items => "items",
        }
    }
}

/// Where tasks are reported. Implementations must be cheap to call per
/// chunk: `advance` runs once per read or write.
pub trait Progress: Send + Sync {
    /// A stretch of work begins. `total` is given when it is known, so that
    /// a rate can become an ETA. The task ends when the returned value drops.
    fn task(&self, label: &str, unit: Unit, total: Option<u64>) -> Box<dyn Task>;
}

/// One stretch of work in progress.
pub trait Task: Send + Sync {
    /// `n` more units are done.
    fn advance(&self, n: u64);
    /// `n` bytes that were new went into the repository (a snapshot's
    /// deduplicated, compressed, sealed bytes; a repack's copies).
    fn added(&self, n: u64) {
        let _ = n;
    }
}

/// Reports nothing: the library's default, and what tests get.
pub struct Silent;

impl Progress for Silent {
    fn task(&self, _: &str, _: Unit, _: Option<u64>) -> Box<dyn Task> {
        Box::new(Silent)
    }
}

impl Task for Silent {
    fn advance(&self, _: u64) {}
}

/// A reader that advances a task by the bytes read through it.
pub struct CountingReader<'t, R> {
    inner: R,
    task: &'t dyn Task,
}

impl<'t, R> CountingReader<'t, R> {
    pub fn new(inner: R, task: &'t dyn Task) -> Self {
        CountingReader { inner, task }
    }
}

impl<R: Read> Read for CountingReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.task.advance(n as u64);
        Ok(n)
    }
}

/// A writer that advances a task by the bytes written through it.
pub struct CountingWriter<'t, W: ?Sized> {
    task: &'t dyn Task,
    inner: &'t mut W,
}

impl<'t, W: Write + ?Sized> CountingWriter<'t, W> {
    pub fn new(inner: &'t mut W, task: &'t dyn Task) -> Self {
        CountingWriter { task, inner }
    }
}

impl<W: Write + ?Sized> Write for CountingWriter<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.task.advance(n as u64);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    #[derive(Default)]
    struct Count(AtomicU64);

    impl Task for Count {
        fn advance(&self, n: u64) {
            self.0.fetch_add(n, Ordering::Relaxed);
        }
    }

    #[test]
    fn counting_reader_and_writer_count_every_byte() {
        let task = Count::default();
        let data = vec![7u8; 100_000];
        let mut read = Vec::new();
        CountingReader::new(&data[..], &task)
            .read_to_end(&mut read)
            .expect("read from memory");
        assert_eq!(task.0.load(Ordering::Relaxed), 100_000);
        let mut out = Vec::new();
        CountingWriter::new(&mut out, &task)
            .write_all(&read)
            .expect("write to memory");
        assert_eq!(task.0.load(Ordering::Relaxed), 200_000);
        assert_eq!(out, data);
    }
}
