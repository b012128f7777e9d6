//! SQLite metadata: the database file taken out of (and put back into) the `rushdb` container.
//!
//! rbk copies the file while `rushdb` is stopped, so the copy is consistent;
//! the engine's archive API works whether the file is on a volume or in the
//! container's own layer, and whether the container runs or not.

use std::io::{self, Read};

use bytes::Bytes;

use super::stream::{ByteSender, ByteStream};
use crate::codec::tar::parse_header;

/// Where RushDB keeps the file when `SQL_DB_PATH` is relative: the image's working directory.
pub const IMAGE_WORKDIR: &str = "/app/platform/core";
pub const DEFAULT_PATH: &str = "./rushdb.db";

/// `SQL_DB_PATH` resolved to an absolute path inside the container.
pub fn resolve_path(sql_db_path: Option<&str>) -> String {
    let p = sql_db_path.unwrap_or(DEFAULT_PATH);
    if p.starts_with('/') {
        p.to_string()
    } else {
        format!("{IMAGE_WORKDIR}/{}", p.trim_start_matches("./"))
    }
}

/// Reads a tar stream (as the engine's archive API sends it) and sends the
/// bytes of its single regular file to `out`. Runs on a blocking thread.
pub fn untar_single_file(mut tar: ByteStream, out: &ByteSender) -> anyhow::Result<()> {
    let result = (|| -> io::Result<()> {
        let mut block = [0u8; 512];
        loop {
            tar.read_exact(&mut block)?;
            let header = parse_header(&block)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?
                .ok_or_else(|| {
                    io::Error::new(io::ErrorKind::InvalidData, "no regular file in the archive")
                })?;
            let padded = header.size.div_ceil(512) * 512;
            if !header.is_regular_file() {
                io::copy(&mut (&mut tar).take(padded), &mut io::sink())?;
                continue;
            }
            let mut left = header.size;
            let mut buf = vec![0u8; 256 * 1024];
            while left > 0 {
                let n = (left as usize).min(buf.len());
                tar.read_exact(&mut buf[..n])?;
                out.blocking_send(Ok(Bytes::copy_from_slice(&buf[..n])))
                    .map_err(|_| {
                        io::Error::new(io::ErrorKind::BrokenPipe, "the consumer stopped reading")
                    })?;
                left -= n as u64;
            }
            return Ok(());
        }
    })();
    if let Err(e) = result {
        let msg = format!("copying the SQLite file: {e}");
        let _ = out.blocking_send(Err(io::Error::other(msg.clone())));
        anyhow::bail!(msg);
    }
    Ok(())
}
