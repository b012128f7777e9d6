//! A TCP proxy between rbk and Garage that delays each direction and counts what crosses it: bytes each way, and S3 requests by method.
//!
//! Requests are counted by reading the client's HTTP/1.1 framing: a request line and headers,
//! then a body of `Content-Length` bytes (OpenDAL sends every S3 request that way), so that a
//! pack's bytes are never mistaken for a request line.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

/// What crossed the proxy since it started (or since the last `take`).
#[derive(Default)]
pub struct Counts {
    up: AtomicU64,
    down: AtomicU64,
    requests: Mutex<BTreeMap<String, u64>>,
}

/// One step's traffic.
#[derive(Debug, Clone, Default)]
pub struct Traffic {
    pub up: u64,
    pub down: u64,
    pub requests: BTreeMap<String, u64>,
}

impl Traffic {
    pub fn total_requests(&self) -> u64 {
        self.requests.values().sum()
    }

    pub fn describe(&self) -> String {
        self.requests
            .iter()
            .map(|(m, n)| format!("{n} {m}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl Counts {
    /// The traffic so far, and the counters back to zero.
    pub fn take(&self) -> Traffic {
        Traffic {
            up: self.up.swap(0, Ordering::SeqCst),
            down: self.down.swap(0, Ordering::SeqCst),
            requests: std::mem::take(&mut *self.requests.lock().unwrap_or_else(|p| p.into_inner())),
        }
    }
}

/// Listens on 127.0.0.1 and forwards to `upstream`, each direction delayed by `one_way`.
/// Returns the port and the counters; it runs until the process exits.
pub fn start(upstream: String, one_way: Duration) -> Result<(u16, Arc<Counts>)> {
    let listener = TcpListener::bind("127.0.0.1:0").context("bind the proxy")?;
    let port = listener.local_addr()?.port();
    let counts = Arc::new(Counts::default());
    let shared = counts.clone();
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let Ok(server) = TcpStream::connect(&upstream) else {
                continue;
            };
            let _ = client.set_nodelay(true);
            let _ = server.set_nodelay(true);
            let (c2, s2) = match (client.try_clone(), server.try_clone()) {
                (Ok(c), Ok(s)) => (c, s),
                _ => continue,
            };
            let up = shared.clone();
            let down = shared.clone();
            std::thread::spawn(move || pump(client, server, one_way, &up, true));
            std::thread::spawn(move || pump(s2, c2, one_way, &down, false));
        }
    });
    Ok((port, counts))
}

/// Copies `from` to `to`, each read delivered `delay` after it arrived.
fn pump(mut from: TcpStream, to: TcpStream, delay: Duration, counts: &Counts, upward: bool) {
    let (tx, rx) = sync_channel::<(Instant, Vec<u8>)>(1024);
    let writer = std::thread::spawn(move || deliver(rx, to, delay));
    let mut parser = Requests::default();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if upward {
            counts.up.fetch_add(n as u64, Ordering::Relaxed);
            for method in parser.feed(&buf[..n]) {
                *counts
                    .requests
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .entry(method)
                    .or_default() += 1;
            }
        } else {
            counts.down.fetch_add(n as u64, Ordering::Relaxed);
        }
        if tx.send((Instant::now(), buf[..n].to_vec())).is_err() {
            break;
        }
    }
    drop(tx);
    let _ = writer.join();
}

fn deliver(rx: Receiver<(Instant, Vec<u8>)>, mut to: TcpStream, delay: Duration) {
    for (arrived, bytes) in rx {
        let due = arrived + delay;
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
        if to.write_all(&bytes).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

/// The client side's HTTP/1.1 framing: headers, then a body of Content-Length bytes.
#[derive(Default)]
struct Requests {
    head: Vec<u8>,
    body_left: u64,
}

impl Requests {
    /// The methods of the requests whose headers end in `bytes`.
    fn feed(&mut self, mut bytes: &[u8]) -> Vec<String> {
        let mut seen = Vec::new();
        while !bytes.is_empty() {
            if self.body_left > 0 {
                let n = (self.body_left as usize).min(bytes.len());
                self.body_left -= n as u64;
                bytes = &bytes[n..];
                continue;
            }
            self.head.extend_from_slice(bytes);
            bytes = &[];
            let Some(end) = self.head.windows(4).position(|w| w == b"\r\n\r\n") else {
                continue;
            };
            let head = String::from_utf8_lossy(&self.head[..end]).to_string();
            let rest = self.head[end + 4..].to_vec();
            self.head.clear();
            let method = head.split_whitespace().next().unwrap_or("?").to_string();
            // A GET with a `prefix`/`list-type` query is a listing.
            let kind = if method == "GET"
                && head.lines().next().is_some_and(|l| l.contains("list-type"))
            {
                "LIST".to_string()
            } else {
                method
            };
            seen.push(kind);
            self.body_left = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.trim()
                        .eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse().ok())?
                })
                .unwrap_or(0);
            seen.extend(self.feed(&rest));
            return seen;
        }
        seen
    }
}
