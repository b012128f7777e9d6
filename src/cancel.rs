//! Cooperative cancellation: a flag the CLI's signal handler sets, and reads of inputs that notice it.
//!
//! Nothing here installs a handler or exits: the CLI registers SIGINT and SIGTERM to store
//! the signal's number in a [`Cancel`]; every input of a file or stream snapshot is read
//! through [`Interruptible`], whose read fails with [`Cancelled`] once the flag is set. The
//! error unwinds like any failed read, so the ordinary drop paths clean up (the snapshot
//! writer deletes its packs, the lock is released, a producer is ended) and nothing runs
//! inside a signal handler but the store of one number.

use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// How long a read of a pipe, FIFO or terminal waits for data before it looks at the flag
/// again: the most a cancellation waits for a reader blocked on an idle producer.
const POLL_MS: libc::c_int = 100;

/// A cancellation flag shared by whoever may set it (a signal handler) and whoever checks it.
/// The default one is never set unless someone sets it.
#[derive(Debug, Clone, Default)]
pub struct Cancel {
    /// 0 while not cancelled; else the number of the signal that cancelled.
    signal: Arc<AtomicUsize>,
    /// Whether a signal may still end the process at once (the CLI's handler reads it):
    /// true until a write pause begins, which must then run its restart to the end.
    exit_at_once: Arc<AtomicBool>,
}

impl Cancel {
    /// The flag a handler reads to decide whether a signal ends the process at once
    /// (signal-hook's `flag::register_conditional_shutdown`).
    pub fn exit_at_once_slot(&self) -> Arc<AtomicBool> {
        self.exit_at_once.clone()
    }

    /// From now on a signal only sets the flag: something (a stopped stack) must be undone
    /// before rbk may exit. Called by the write pauses before their first stop.
    pub fn hold(&self) {
        self.exit_at_once.store(false, Ordering::SeqCst);
    }

    /// The slot a signal handler stores the signal's number in (signal-hook's
    /// `flag::register_usize`): a plain atomic store, safe in a handler.
    pub fn slot(&self) -> Arc<AtomicUsize> {
        self.signal.clone()
    }

    /// Cancels as if `signal` had arrived.
    pub fn cancel(&self, signal: i32) {
        self.signal.store(
            usize::try_from(signal).unwrap_or(1).max(1),
            Ordering::SeqCst,
        );
    }

    /// The signal that cancelled, if any.
    pub fn signal(&self) -> Option<i32> {
        match self.signal.load(Ordering::SeqCst) {
            0 => None,
            n => Some(i32::try_from(n).unwrap_or(i32::MAX)),
        }
    }

    /// `Err(Cancelled)` once cancelled.
    pub fn check(&self) -> Result<(), Cancelled> {
        match self.signal() {
            None => Ok(()),
            Some(signal) => Err(Cancelled { signal }),
        }
    }
}

/// The error of a read (or a wait) cut short by a [`Cancel`]. It travels inside an
/// `io::Error` of kind `Other` (never `Interrupted`, which readers retry); find it with
/// [`cancelled_by`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("interrupted by {}", signal_name(*.signal))]
pub struct Cancelled {
    pub signal: i32,
}

impl From<Cancelled> for io::Error {
    fn from(c: Cancelled) -> io::Error {
        io::Error::other(c)
    }
}

/// The [`Cancelled`] inside `e`, if `e` is one.
pub fn cancelled_by(e: &io::Error) -> Option<Cancelled> {
    e.get_ref()?.downcast_ref::<Cancelled>().copied()
}

/// Whether `e` is work cut short by a signal: a [`Cancelled`] anywhere in its chain, as an
/// error of its own or inside an `io::Error`.
pub fn is_cancelled(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.is::<Cancelled>()
            || c.downcast_ref::<io::Error>()
                .and_then(cancelled_by)
                .is_some()
    })
}

/// `SIGINT`, `SIGTERM`, ... for messages.
pub fn signal_name(signal: i32) -> String {
    match signal {
        libc::SIGINT => "SIGINT".into(),
        libc::SIGTERM => "SIGTERM".into(),
        libc::SIGHUP => "SIGHUP".into(),
        libc::SIGQUIT => "SIGQUIT".into(),
        n => format!("signal {n}"),
    }
}

/// A reader that fails with [`Cancelled`] once its [`Cancel`] is set.
///
/// A regular file (or block device) is read as it is, the flag checked before each read. A
/// descriptor whose read can block for as long as its writer likes (a pipe, a FIFO, a
/// terminal, a socket) is first waited on with `poll(2)` for at most [`POLL_MS`], so a read
/// blocked on an idle producer notices the flag within that time. Such a descriptor may be
/// non-blocking (a FIFO opened with `O_NONBLOCK`, so that opening it never waits for a
/// writer): `WouldBlock` just means waiting again.
pub struct Interruptible<R> {
    inner: R,
    cancel: Cancel,
    poll: bool,
}

impl<R: Read + AsFd> Interruptible<R> {
    pub fn new(inner: R, cancel: Cancel) -> Interruptible<R> {
        let poll = !is_regular(&inner);
        Interruptible {
            inner,
            cancel,
            poll,
        }
    }

    /// The reader inside.
    pub fn get_mut(&mut self) -> &mut R {
        &mut self.inner
    }

    /// Waits until the descriptor is readable (or hung up, or failed: the read says which),
    /// checking the flag every [`POLL_MS`].
    fn wait_readable(&self) -> io::Result<()> {
        loop {
            self.cancel.check()?;
            let mut fd = libc::pollfd {
                fd: self.inner.as_fd().as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd, borrowed for the duration of the call.
            match unsafe { libc::poll(&mut fd, 1, POLL_MS) } {
                0 => continue,
                n if n > 0 => return Ok(()),
                _ => {
                    let e = io::Error::last_os_error();
                    if e.kind() != io::ErrorKind::Interrupted {
                        return Err(e);
                    }
                }
            }
        }
    }
}

impl<R: Read + AsFd> Read for Interruptible<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            self.cancel.check()?;
            if self.poll {
                self.wait_readable()?;
            }
            match self.inner.read(buf) {
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                    ) => {}
                r => return r,
            }
        }
    }
}

/// A regular file or a block device: reads of it end on their own.
fn is_regular(fd: &impl AsFd) -> bool {
    // SAFETY: fstat fills a zeroed stat for a descriptor we borrow.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstat(fd.as_fd().as_raw_fd(), &mut st) } != 0 {
        // Unknown: poll, which is right for anything.
        return false;
    }
    matches!(st.st_mode & libc::S_IFMT, libc::S_IFREG | libc::S_IFBLK)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::time::{Duration, Instant};

    /// A read blocked on a pipe nobody writes to ends with `Cancelled` soon after the flag
    /// is set from another thread; the error is found inside the `io::Error`.
    #[test]
    fn a_blocked_pipe_read_notices_the_flag() {
        let (reader, mut writer) = io::pipe().expect("pipe");
        writer.write_all(b"abc").expect("write");
        let cancel = Cancel::default();
        let mut r = Interruptible::new(reader, cancel.clone());
        let mut buf = [0u8; 16];
        assert_eq!(r.read(&mut buf).expect("read"), 3);
        let setter = {
            let cancel = cancel.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(200));
                cancel.cancel(libc::SIGTERM);
            })
        };
        let started = Instant::now();
        let e = r.read(&mut buf).expect_err("cancelled");
        assert_eq!(
            cancelled_by(&e),
            Some(Cancelled {
                signal: libc::SIGTERM
            })
        );
        assert!(started.elapsed() < Duration::from_secs(5));
        assert_eq!(e.to_string(), "interrupted by SIGTERM");
        setter.join().expect("join");
        drop(writer);
    }

    #[test]
    fn a_file_reads_to_its_end_until_cancelled() {
        let mut f = tempfile::tempfile().expect("tempfile");
        f.write_all(&[7u8; 100]).expect("write");
        let cancel = Cancel::default();
        let mut r = Interruptible::new(f, cancel.clone());
        assert!(!r.poll);
        std::io::Seek::rewind(r.get_mut()).expect("rewind");
        let mut out = Vec::new();
        r.read_to_end(&mut out).expect("read");
        assert_eq!(out.len(), 100);
        cancel.cancel(libc::SIGINT);
        assert!(cancelled_by(&r.read(&mut [0u8; 4]).expect_err("cancelled")).is_some());
        assert_eq!(cancel.signal(), Some(libc::SIGINT));
    }
}
