//! Read-ahead: the input is read on its own thread, so a slow producer-side step
//! (decompressing a dump, a pipe, a syscall) overlaps with chunking.

use std::io::{self, BufRead, Read};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

/// Bytes per buffer handed from the reading thread to the chunking thread.
const BUF_SIZE: usize = 1 << 20;
/// Buffers in flight; they are recycled, so this is also the memory bound.
const BUFFERS: usize = 4;

type Filled = io::Result<(Vec<u8>, usize)>;

/// Reads `source` to its end, sending filled buffers; returns when the
/// source ends, fails, or the consumer hangs up. Buffers come back through
/// `recycle` so they are allocated (and zeroed) only once.
pub fn pump<R: Read>(mut source: R, out: SyncSender<Filled>, recycle: Receiver<Vec<u8>>) {
    let mut spare: Vec<Vec<u8>> = (0..BUFFERS).map(|_| vec![0u8; BUF_SIZE]).collect();
    loop {
        let mut buf = match spare.pop() {
            Some(b) => b,
            None => match recycle.recv() {
                Ok(b) => b,
                Err(_) => return,
            },
        };
        let mut filled = 0;
        while filled < buf.len() {
            match source.read(&mut buf[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let _ = out.send(Err(e));
                    return;
                }
            }
        }
        let end = filled < buf.len();
        if filled > 0 && out.send(Ok((buf, filled))).is_err() {
            return;
        }
        if end {
            return;
        }
    }
}

/// Appends from `reader` to `buf` until it holds `limit` bytes or the input ends; true at
/// the end. Copies straight out of the reader's buffer: reading into fresh spare capacity
/// would zero it first, which cost as much as chunking.
pub fn fill_to(reader: &mut impl BufRead, buf: &mut Vec<u8>, limit: usize) -> io::Result<bool> {
    while buf.len() < limit {
        let available = match reader.fill_buf() {
            Ok(a) => a,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if available.is_empty() {
            return Ok(true);
        }
        let n = available.len().min(limit - buf.len());
        buf.extend_from_slice(&available[..n]);
        reader.consume(n);
    }
    Ok(false)
}

/// The consuming side: a `Read` over the buffers `pump` sends.
pub struct Ahead {
    rx: Receiver<Filled>,
    recycle: SyncSender<Vec<u8>>,
    current: Vec<u8>,
    len: usize,
    pos: usize,
}

/// A connected pair: run `pump(source, tx, recycle_rx)` on one thread and read `Ahead` on another.
pub fn channel() -> (SyncSender<Filled>, Receiver<Vec<u8>>, Ahead) {
    let (tx, rx) = sync_channel(BUFFERS);
    let (recycle_tx, recycle_rx) = sync_channel(BUFFERS);
    (
        tx,
        recycle_rx,
        Ahead {
            rx,
            recycle: recycle_tx,
            current: Vec::new(),
            len: 0,
            pos: 0,
        },
    )
}

impl BufRead for Ahead {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.pos == self.len {
            match self.rx.recv() {
                Ok(Ok((buf, len))) => {
                    let old = std::mem::replace(&mut self.current, buf);
                    if !old.is_empty() {
                        let _ = self.recycle.try_send(old);
                    }
                    self.len = len;
                    self.pos = 0;
                }
                Ok(Err(e)) => return Err(e),
                Err(_) => return Ok(&[]),
            }
        }
        Ok(&self.current[self.pos..self.len])
    }

    fn consume(&mut self, n: usize) {
        self.pos = (self.pos + n).min(self.len);
    }
}

impl Read for Ahead {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let available = self.fill_buf()?;
        let n = out.len().min(available.len());
        out[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passes_bytes_and_errors_through() {
        let data: Vec<u8> = (0..3_500_000u32).map(|i| (i % 251) as u8).collect();
        let (tx, recycle, mut ahead) = channel();
        let mut got = Vec::new();
        std::thread::scope(|s| {
            s.spawn(|| pump(&data[..], tx, recycle));
            ahead.read_to_end(&mut got).unwrap();
        });
        assert_eq!(got, data);

        struct Failing;
        impl Read for Failing {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(io::Error::other("producer died"))
            }
        }
        let (tx, recycle, mut ahead) = channel();
        std::thread::scope(|s| {
            s.spawn(|| pump(Failing, tx, recycle));
            assert!(ahead.read_to_end(&mut Vec::new()).is_err());
        });
    }
}
