//! Byte streams between async producers and synchronous consumers (and back), with bounded buffering.

use std::io::{self, Read, Write};

use bytes::Bytes;
use tokio::sync::mpsc;

/// Chunks in flight between a producer and its consumer (each up to a few
/// hundred KiB), so a slow repository slows the dump instead of filling memory.
pub const QUEUE: usize = 16;

/// The receiving end of a producer's output. The producer sends its bytes,
/// then either closes the channel (success) or sends one error (failure):
/// a failed producer can never look like a complete stream.
pub struct ByteStream {
    rx: mpsc::Receiver<io::Result<Bytes>>,
    current: Bytes,
    done: bool,
}

pub type ByteSender = mpsc::Sender<io::Result<Bytes>>;

pub fn byte_stream() -> (ByteSender, ByteStream) {
    let (tx, rx) = mpsc::channel(QUEUE);
    (
        tx,
        ByteStream {
            rx,
            current: Bytes::new(),
            done: false,
        },
    )
}

/// Blocking reads for synchronous consumers. Must not be called from inside
/// a tokio runtime thread (it blocks it).
impl Read for ByteStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.current.is_empty() {
            if self.done {
                return Ok(0);
            }
            match self.rx.blocking_recv() {
                Some(Ok(b)) => self.current = b,
                Some(Err(e)) => {
                    self.done = true;
                    return Err(e);
                }
                None => self.done = true,
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        let _ = self.current.split_to(n);
        Ok(n)
    }
}

/// Synchronous writes that feed an async consumer (a container's stdin).
pub struct ByteSink {
    tx: Option<mpsc::Sender<Bytes>>,
    buf: Vec<u8>,
}

pub fn byte_sink() -> (ByteSink, mpsc::Receiver<Bytes>) {
    let (tx, rx) = mpsc::channel(QUEUE);
    (
        ByteSink {
            tx: Some(tx),
            buf: Vec::with_capacity(SINK_CHUNK),
        },
        rx,
    )
}

const SINK_CHUNK: usize = 256 * 1024;

impl ByteSink {
    fn send_buf(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(
            &mut self.buf,
            Vec::with_capacity(SINK_CHUNK),
        ));
        let tx = self
            .tx
            .as_ref()
            .ok_or_else(|| io::Error::other("the sink is closed"))?;
        tx.blocking_send(chunk)
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the consumer stopped reading"))
    }

    /// Flushes and closes: the consumer sees end of input.
    pub fn close(mut self) -> io::Result<()> {
        self.send_buf()?;
        self.tx.take();
        Ok(())
    }
}

impl Write for ByteSink {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= SINK_CHUNK {
            self.send_buf()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send_buf()
    }
}
