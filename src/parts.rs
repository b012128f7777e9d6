//! What a snapshot part is made from: inputs (file, stdin, a producer command) and codec envelopes.

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::cancel::{Cancel, Interruptible};
use crate::codec::neo4j_dump::{DumpFormat, Envelope};
use crate::process::{ExitError, StderrTail};

/// Codec names recorded in manifests.
pub const CODEC_RAW: &str = "raw";
pub const CODEC_NEO4J_DUMP: &str = "neo4j-dump";
/// A stream stored in pieces (a volume-mode tar): restored as stored, verified piece by
/// piece. The store's own name for it is `store::pieces::CODEC_PIECES` (a test in backup.rs
/// keeps the two equal: this layer may not see the store).
pub const CODEC_PIECES: &str = "pieces";

/// Where a part's bytes come from.
#[derive(Debug, Clone)]
pub enum PartInput {
    File(PathBuf),
    Stdin,
    /// rbk runs the producer and reads its stdout.
    Command {
        program: String,
        args: Vec<String>,
    },
}

impl PartInput {
    /// How the manifest names the origin, for people reading `rbk snapshots`.
    pub fn origin(&self) -> String {
        match self {
            PartInput::File(p) => format!("file:{}", p.display()),
            PartInput::Stdin => "stdin".into(),
            PartInput::Command { program, args } => {
                let mut s = format!("command:{program}");
                for a in args {
                    s.push(' ');
                    s.push_str(a);
                }
                s
            }
        }
    }
}

/// `u8 format code || u8 header present || [24-byte header]`.
pub fn encode_envelope(env: &Envelope) -> Vec<u8> {
    let mut out = vec![env.format.code()];
    match &env.header {
        Some(h) => {
            out.push(1);
            out.extend_from_slice(h);
        }
        None => out.push(0),
    }
    out
}

pub fn decode_envelope(bytes: &[u8]) -> Option<Envelope> {
    let format = DumpFormat::from_code(*bytes.first()?)?;
    let header = match (bytes.get(1)?, bytes.len()) {
        (0, 2) => None,
        (1, 26) => {
            let mut h = [0u8; 24];
            h.copy_from_slice(&bytes[2..]);
            Some(h)
        }
        _ => return None,
    };
    Some(Envelope { format, header })
}

/// Opens a file part for reading, once: the handle is what the snapshot reads, so a FIFO or
/// a device is read exactly once. Opened with `O_NONBLOCK`, so opening a FIFO never waits for
/// its writer (a wait nothing could interrupt); reads of a FIFO then wait in `poll(2)`
/// ([`Interruptible`]), which notices a cancellation. A regular file is switched back to
/// blocking reads.
pub fn open_file(path: &Path) -> io::Result<File> {
    let file = File::options()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    if file.metadata()?.is_file() {
        set_nonblocking(&file, false)?;
    }
    Ok(file)
}

/// Opens a file in a directory someone less trusted may write (the SQLite file's, which
/// belongs to the service user): never through a symbolic link (`O_NOFOLLOW`), and only a
/// regular file (checked on the descriptor), so that a planted link cannot make rbk, running
/// as root, read another file into a backup.
pub fn open_regular_nofollow(path: &Path) -> io::Result<File> {
    let file = File::options()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) => io::Error::other(format!(
                "{} is a symbolic link, which rbk does not follow",
                path.display()
            )),
            _ => e,
        })?;
    if !file.metadata()?.is_file() {
        return Err(io::Error::other(format!(
            "{} is not a regular file",
            path.display()
        )));
    }
    set_nonblocking(&file, false)?;
    Ok(file)
}

/// Standard input as a file of its own (a duplicate of descriptor 0): read directly, never
/// through std's buffered `Stdin`, whose buffer a `poll(2)` of the descriptor cannot see.
pub fn open_stdin() -> io::Result<File> {
    // SAFETY: F_DUPFD_CLOEXEC returns a new descriptor we own, or -1.
    let fd = unsafe { libc::fcntl(0, libc::F_DUPFD_CLOEXEC, 3) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh descriptor nobody else owns.
    Ok(File::from(unsafe { OwnedFd::from_raw_fd(fd) }))
}

fn set_nonblocking(file: &File, on: bool) -> io::Result<()> {
    let fd = file.as_raw_fd();
    // SAFETY: fcntl on a descriptor we own; no memory involved.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    let flags = if on {
        flags | libc::O_NONBLOCK
    } else {
        flags & !libc::O_NONBLOCK
    };
    // SAFETY: as above.
    if unsafe { libc::fcntl(fd, libc::F_SETFL, flags) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// A name restore may write as a file in the target directory: one safe file name (not
/// empty, not `.` or `..`, no `/`, no NUL, at most 255 bytes). Restore accepts every such
/// name, including ones a new snapshot may no longer use (control characters), which an
/// older rbk may have stored.
pub fn safe_file_name(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && !name.contains('/')
        && !name.contains('\0')
        && name.len() <= 255
}

/// Why a new snapshot may not name a part `name`, or `None` when it may: the name must be a
/// safe file name (it becomes one on restore), must not take the `.rbk-` prefix of rbk's own
/// temporary files, and must hold no control character (a newline or an escape in a name
/// would forge lines and terminal sequences wherever it is shown).
pub fn new_part_name_problem(name: &str) -> Option<&'static str> {
    if name.chars().any(char::is_control) {
        Some("it holds a control character (a newline, tab or escape)")
    } else if !safe_file_name(name) || name.starts_with(".rbk-") {
        Some(
            "it becomes a file name on restore: not empty, `.` or `..`, no `/`, at most 255 bytes, not starting with `.rbk-`",
        )
    } else {
        None
    }
}

/// Counts and hashes every byte that passes through.
///
/// Hashing can be switched off through `HashSwitch` while the tap is
/// borrowed: a part stored as it came needs no second hash of the same
/// bytes (its stored hash is the source hash), and that pass sat on the
/// critical reading thread.
pub struct Tap<R> {
    inner: R,
    hasher: blake3::Hasher,
    hashing: Arc<AtomicBool>,
    pub bytes: u64,
}

/// Turns a `Tap`'s hashing off from outside.
#[derive(Clone)]
pub struct HashSwitch(Arc<AtomicBool>);

impl HashSwitch {
    pub fn off(&self) {
        self.0.store(false, Ordering::Relaxed);
    }
}

impl<R> Tap<R> {
    pub fn new(inner: R) -> Tap<R> {
        Tap {
            inner,
            hasher: blake3::Hasher::new(),
            hashing: Arc::new(AtomicBool::new(true)),
            bytes: 0,
        }
    }

    pub fn switch(&self) -> HashSwitch {
        HashSwitch(self.hashing.clone())
    }

    /// The hash of every byte read, or `None` if hashing was switched off.
    pub fn hash(&self) -> Option<[u8; 32]> {
        self.hashing
            .load(Ordering::Relaxed)
            .then(|| *self.hasher.finalize().as_bytes())
    }
}

impl<R: Read> Read for Tap<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if self.hashing.load(Ordering::Relaxed) {
            self.hasher.update(&buf[..n]);
        }
        self.bytes += n as u64;
        Ok(n)
    }
}

/// A producer's stdout. End of stream is only reported once the producer
/// has exited with status 0: a non-zero exit or a signal turns the end
/// into an error, so a half-written dump can never look complete.
pub struct CommandReader {
    name: String,
    child: Child,
    stdout: Interruptible<ChildStdout>,
    stderr: Option<JoinHandle<()>>,
    tail: StderrTail,
    finished: bool,
    /// Set for a producer in a process group of its own (see [`spawn`](Self::spawn)).
    cancel: Option<Cancel>,
}

impl CommandReader {
    /// Starts `program` with `args`, its stdin empty, its stdout to be read, its stderr's tail
    /// kept for the error message.
    ///
    /// With a `cancel`, the producer leads a process group of its own (so that a pipeline it
    /// runs, `sh -c 'a | b'`, can be ended whole), its output is read through
    /// [`Interruptible`] and the wait for its exit status notices the flag too; a reader
    /// dropped before the end ends the whole group (SIGTERM, then SIGKILL after a grace
    /// period). Without one (host mode, whose signal thread ends rbk's children itself) the
    /// producer stays in rbk's group and a reader dropped early kills the producer alone.
    pub fn spawn(
        program: &str,
        args: &[String],
        cancel: Option<&Cancel>,
    ) -> io::Result<CommandReader> {
        let mut command = crate::process::command(program);
        command.args(args);
        CommandReader::start(command, cancel)
    }

    /// [`spawn`](Self::spawn) for a command built by the caller (through
    /// [`crate::process::command`]), e.g. with a password in its environment.
    pub fn start(mut command: Command, cancel: Option<&Cancel>) -> io::Result<CommandReader> {
        let program = command.get_program().to_string_lossy().into_owned();
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if cancel.is_some() {
            command.process_group(0);
        }
        let mut child = command
            .spawn()
            .map_err(|e| io::Error::new(e.kind(), format!("cannot start `{program}`: {e}")))?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| io::Error::other("no stdout pipe"))?;
        let stderr = child
            .stderr
            .take()
            .ok_or_else(|| io::Error::other("no stderr pipe"))?;
        let tail = StderrTail::default();
        // Drained on its own thread: a producer that fills the stderr pipe
        // while nobody reads it would block forever.
        let drain = tail.drain_on_thread(stderr);
        Ok(CommandReader {
            name: program,
            child,
            stdout: Interruptible::new(stdout, cancel.cloned().unwrap_or_default()),
            stderr: Some(drain),
            tail,
            finished: false,
            cancel: cancel.cloned(),
        })
    }

    /// The producer's failure, once its stderr has been read to the end (its last lines are
    /// the ones that say why).
    fn failure(&mut self, status: ExitStatus) -> io::Error {
        if let Some(t) = self.stderr.take() {
            let _ = t.join();
        }
        io::Error::other(ExitError::command(&self.name, status, self.tail.text()))
    }

    /// The producer's exit status, once its stdout has ended. A producer that closed its
    /// stdout but runs on is waited for, unless cancelled.
    fn exit_status(&mut self) -> io::Result<ExitStatus> {
        let Some(cancel) = &self.cancel else {
            return self.child.wait();
        };
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            cancel.check()?;
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Read for CommandReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.finished {
            return Ok(0);
        }
        let n = self.stdout.read(buf)?;
        if n > 0 || buf.is_empty() {
            return Ok(n);
        }
        let status = self.exit_status()?;
        if !status.success() {
            return Err(self.failure(status));
        }
        self.finished = true;
        Ok(0)
    }
}

impl Drop for CommandReader {
    /// A reader dropped before the end (another part failed) must not leave
    /// the producer running or a zombie behind.
    fn drop(&mut self) {
        if self.finished {
            if let Some(t) = self.stderr.take() {
                let _ = t.join();
            }
            return;
        }
        if self.cancel.is_some() {
            crate::process::end_group(&mut self.child);
        } else {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        // Not joined: a process that left the group (a daemon it started) may hold the
        // stderr pipe open; the thread ends when the pipe does, and keeps nothing alive.
        drop(self.stderr.take());
    }
}
