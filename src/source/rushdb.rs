//! RushDB's own answer about itself: `GET /health` on its HTTP port, over plain HTTP/1.0 (the one request rbk makes; no HTTP client crate for it).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use anyhow::{Context, Result, bail};

use super::docker::ContainerInfo;

/// RushDB's port when `RUSHDB_PORT` does not say (its image's default).
pub const DEFAULT_PORT: u16 = 3000;

/// The port RushDB listens on in `c`.
pub fn port_of(c: &ContainerInfo) -> u16 {
    c.env_var("RUSHDB_PORT")
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or(DEFAULT_PORT)
}

/// The HTTP status of `GET /health` at `addr`, within `timeout` for the connection and for
/// the answer each.
pub fn health(addr: SocketAddr, timeout: Duration) -> Result<u16> {
    let mut s = TcpStream::connect_timeout(&addr, timeout)
        .with_context(|| format!("connecting to {addr}"))?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    // One write of the whole request (`write!` would make several). A server may answer
    // and close before reading all of it: its answer is what counts, so a failed write is
    // reported only if no answer can be read either.
    let request = format!(
        "GET /health HTTP/1.0\r\nHost: {addr}\r\nUser-Agent: rbk\r\nConnection: close\r\n\r\n"
    );
    let sent = s.write_all(request.as_bytes());
    // The status line is all rbk reads; a body, however long, is not waited for.
    let mut head = [0u8; 64];
    let mut n = 0;
    while n < head.len() {
        let got = match s.read(&mut head[n..]) {
            Ok(got) => got,
            Err(e) => {
                sent.context("sending the request")?;
                return Err(e).context("reading the answer");
            }
        };
        if got == 0 {
            break;
        }
        n += got;
        if head[..n].contains(&b'\n') {
            break;
        }
    }
    if n == 0 {
        sent.context("sending the request")?;
    }
    parse_status(&head[..n])
}

/// The status code of an HTTP status line (`HTTP/1.1 200 OK`).
fn parse_status(head: &[u8]) -> Result<u16> {
    let line = String::from_utf8_lossy(head);
    let mut words = line.split_whitespace();
    match (
        words.next(),
        words.next().and_then(|c| c.parse::<u16>().ok()),
    ) {
        (Some(v), Some(code)) if v.starts_with("HTTP/") => Ok(code),
        _ => bail!(
            "not an HTTP answer: {:?}",
            line.lines().next().unwrap_or_default()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines_are_read_and_anything_else_refused() {
        assert_eq!(parse_status(b"HTTP/1.1 200 OK\r\n").expect("200"), 200);
        assert_eq!(parse_status(b"HTTP/1.0 503 Service").expect("503"), 503);
        assert!(parse_status(b"SSH-2.0-OpenSSH").is_err());
        assert!(parse_status(b"").is_err());
    }

    #[test]
    fn a_server_that_answers_is_asked_for_health() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let server = std::thread::spawn(move || {
            let (mut c, _) = listener.accept().expect("accept");
            // The whole request, as a server would read it, before answering.
            let mut req = Vec::new();
            let mut buf = [0u8; 256];
            while !req.ends_with(b"\r\n\r\n") {
                let n = c.read(&mut buf).expect("read");
                assert!(n > 0, "the request ended early: {req:?}");
                req.extend_from_slice(&buf[..n]);
            }
            c.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                .expect("write");
            String::from_utf8_lossy(&req).to_string()
        });
        assert_eq!(health(addr, Duration::from_secs(5)).expect("health"), 200);
        let req = server.join().expect("server");
        assert!(req.starts_with("GET /health HTTP/1.0\r\n"), "{req}");
    }

    /// A server that answers before it has read the request, and closes: its answer counts.
    #[test]
    fn an_answer_before_the_request_was_read_counts() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let server = std::thread::spawn(move || {
            let (mut c, _) = listener.accept().expect("accept");
            c.write_all(b"HTTP/1.1 503 Service Unavailable\r\n\r\n")
                .expect("write");
        });
        assert_eq!(health(addr, Duration::from_secs(5)).expect("health"), 503);
        server.join().expect("server");
    }
}
