//! `S3Backend`: a repository in an S3-compatible bucket (AWS, Garage, MinIO...) through OpenDAL, keeping the `Backend` contract.
//!
//! How the contract holds on object storage, where there is no rename and no fsync:
//! - A PUT is atomic: an object is visible whole or not at all, and an upload cut short
//!   (a killed rbk, a lost connection) leaves no object. rbk writes every file with one
//!   PUT (packs are at most a few hundred MiB, under S3's 5 GiB limit for one), so there
//!   are no multipart uploads to abandon and nothing billable is left behind.
//! - Content-addressed files may be written twice only with identical bytes, so a second
//!   PUT of one changes nothing. The config, written once by `init`, is written with
//!   `If-None-Match: *` where the server supports it, so two racing `init`s cannot both win.
//! - Locks are random-named objects: a taker writes its own, then lists the others
//!   (store/lock.rs). That needs read-after-write consistency of listings, which AWS S3
//!   has had since December 2020 and Garage has (its listings are quorum reads).
//! - Retries with exponential backoff on 5xx, throttling and timeouts (OpenDAL's
//!   RetryLayer); a persistent failure is an error naming the object.

use std::future::Future;
use std::io;
use std::path::PathBuf;
use std::time::Duration;

use opendal::layers::{RetryLayer, TimeoutLayer};
use opendal::{ErrorKind, HttpTransporter, OperationContext, Operator};
use opendal_http_transport_reqwest::ReqwestTransport;

use crate::store::backend::{Backend, TempFile};
use crate::store::error::{Result, StoreError};
use crate::store::format::FileKind;

/// Where and how to reach the bucket. The secret is never printed (`Debug` hides it).
#[derive(Clone)]
pub struct S3Config {
    pub bucket: String,
    /// Key prefix of the repository inside the bucket, without slashes at its ends.
    pub prefix: String,
    pub endpoint: Option<String>,
    pub region: String,
    pub virtual_host_style: bool,
    pub access_key_id: String,
    pub secret_access_key: zeroize::Zeroizing<String>,
}

impl std::fmt::Debug for S3Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Config")
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

pub struct S3Backend {
    op: Operator,
    /// Its own runtime: the store is synchronous, and calls come from plain threads
    /// (rayon's, the packer's), never from inside this runtime.
    rt: tokio::runtime::Runtime,
    url: String,
}

/// Attempts of a request before its failure is reported (the first and three retries):
/// with a 20 s stall limit and backoff, a service that is gone fails a request in about a
/// minute and a half.
const ATTEMPTS: usize = 4;

impl S3Backend {
    /// One object written whole (the body is shared, not copied, by each attempt).
    fn put(&self, kind: FileKind, name: &str, body: opendal::Buffer) -> Result<()> {
        let key = Self::key(kind, name);
        let op = self.op.clone();
        let k = key.clone();
        // The config is the repository: two `init`s racing must not both win.
        let exclusive = kind == FileKind::Config && op.info().capability().write_with_if_not_exists;
        // OpenDAL does not retry a write whose body stalled (it cannot know the body can be
        // sent again); rbk's can: the same bytes, so a second PUT is harmless. A node of a
        // cluster that dies mid-upload stalls the PUTs it was part of until the others
        // notice.
        let mut attempt = 1;
        let written = loop {
            let (op, k, body) = (op.clone(), k.clone(), body.clone());
            match self.run(async move { op.write_with(&k, body).if_not_exists(exclusive).await }) {
                Err(e) if attempt < ATTEMPTS && is_timeout(&e) => {
                    tracing::debug!("S3: retrying the write of {key} after a stall: {e}");
                    std::thread::sleep(Duration::from_secs(2 * attempt as u64));
                    attempt += 1;
                }
                other => break other,
            }
        };
        match written {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == ErrorKind::ConditionNotMatch => {
                Err(StoreError::AlreadyExists(PathBuf::from(&self.url)))
            }
            Err(e) => Err(self.err("write", &key, e)),
        }
    }

    pub fn new(cfg: &S3Config) -> Result<S3Backend> {
        let url = if cfg.prefix.is_empty() {
            format!("s3://{}", cfg.bucket)
        } else {
            format!("s3://{}/{}", cfg.bucket, cfg.prefix)
        };
        let mut builder = opendal::services::S3::default()
            .bucket(&cfg.bucket)
            .root(&format!("/{}", cfg.prefix))
            .region(&cfg.region)
            .access_key_id(&cfg.access_key_id)
            .secret_access_key(&cfg.secret_access_key)
            // Only what rbk is given: no ~/.aws files, no instance metadata lookups.
            .disable_config_load()
            .disable_ec2_metadata();
        if let Some(endpoint) = &cfg.endpoint {
            builder = builder.endpoint(endpoint);
        }
        if cfg.virtual_host_style {
            builder = builder.enable_virtual_host_style();
        }
        let invalid = |e: opendal::Error| StoreError::Invalid(format!("{url}: {e}"));
        // reqwest (rustls) with a limit on connecting: a server that is gone is a refused or
        // unreachable connection, retried, not a wait for the whole request's timeout.
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| StoreError::Invalid(format!("{url}: the HTTP client: {e}")))?;
        let transport = HttpTransporter::new(ReqwestTransport::new(client));
        // Timeout inside retry: each attempt has its own limit, and one that runs out is
        // retried like a 5xx (OpenDAL marks both temporary).
        let op = Operator::new(builder)
            .map_err(invalid)?
            .with_context(OperationContext::new().with_http_transport(transport))
            // A whole request, and each read or write of a body in it (a pack is 16 MiB
            // by default: one stalled chunk of it, not the whole upload, is what times out).
            .layer(
                TimeoutLayer::new()
                    .with_timeout(Duration::from_secs(60))
                    .with_io_timeout(Duration::from_secs(20)),
            )
            .layer(
                RetryLayer::new()
                    .with_notify(quiet_retry)
                    .with_max_times(ATTEMPTS - 1)
                    .with_jitter()
                    .with_min_delay(Duration::from_millis(200))
                    .with_max_delay(Duration::from_secs(10)),
            );
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("rbk-s3")
            .enable_all()
            .build()
            .map_err(|e| StoreError::Invalid(format!("starting the S3 client: {e}")))?;
        Ok(S3Backend { op, rt, url })
    }

    /// Runs a request on the backend's runtime and waits for it, from any thread.
    fn run<T: Send + 'static>(
        &self,
        fut: impl Future<Output = opendal::Result<T>> + Send + 'static,
    ) -> opendal::Result<T> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.rt.spawn(async move {
            let _ = tx.send(fut.await);
        });
        rx.recv().unwrap_or_else(|_| {
            Err(opendal::Error::new(
                ErrorKind::Unexpected,
                "the S3 client's runtime stopped",
            ))
        })
    }

    /// The body of `key` (`range` of it, or all) as it arrives, a few network chunks at a
    /// time: whoever reads it copies each chunk where it belongs, and dropping the receiver
    /// abandons the request, so nothing is gathered whole first.
    fn receive(
        &self,
        key: &str,
        range: Option<std::ops::Range<u64>>,
    ) -> tokio::sync::mpsc::Receiver<opendal::Result<bytes::Bytes>> {
        let (tx, rx) = tokio::sync::mpsc::channel::<opendal::Result<bytes::Bytes>>(4);
        let (op, k) = (self.op.clone(), key.to_string());
        self.rt.spawn(async move {
            let stream = match op.reader(&k).await {
                Ok(reader) => match range {
                    Some(r) => reader.into_bytes_stream(r).await,
                    None => reader.into_bytes_stream(..).await,
                },
                Err(e) => Err(e),
            };
            let mut stream = match stream {
                Ok(s) => s,
                Err(e) => {
                    let _ = tx.send(Err(e)).await;
                    return;
                }
            };
            while let Some(chunk) = futures_util::StreamExt::next(&mut stream).await {
                let chunk = chunk.map_err(|e| match e.downcast::<opendal::Error>() {
                    Ok(e) => e,
                    Err(e) => opendal::Error::new(ErrorKind::Unexpected, e.to_string()),
                });
                let failed = chunk.is_err();
                // The receiver gone: the read was abandoned, nothing to send to.
                if tx.send(chunk).await.is_err() || failed {
                    return;
                }
            }
        });
        rx
    }

    /// Reads `buf.len()` bytes of `key` from `offset` into `buf` as they arrive. Returns
    /// how many bytes came (fewer: the object is short; one more: it sent too many).
    fn read_into(&self, key: &str, offset: u64, buf: &mut [u8]) -> opendal::Result<usize> {
        let mut rx = self.receive(key, Some(offset..offset + buf.len() as u64));
        let mut at = 0;
        while let Some(chunk) = rx.blocking_recv() {
            let chunk = chunk?;
            let n = chunk.len().min(buf.len() - at);
            buf[at..at + n].copy_from_slice(&chunk[..n]);
            at += n;
            if n < chunk.len() {
                return Ok(at + 1);
            }
        }
        Ok(at)
    }

    /// The object key of a repository file, relative to the prefix.
    fn key(kind: FileKind, name: &str) -> String {
        match kind {
            FileKind::Config => "config".into(),
            FileKind::Pack => format!("data/{}/{name}", name.get(..2).unwrap_or("00")),
            other => format!("{}/{name}", other.dir()),
        }
    }

    fn err(&self, op: &'static str, key: &str, e: opendal::Error) -> StoreError {
        let kind = match e.kind() {
            ErrorKind::NotFound => io::ErrorKind::NotFound,
            ErrorKind::PermissionDenied => io::ErrorKind::PermissionDenied,
            _ => io::ErrorKind::Other,
        };
        StoreError::Io {
            op,
            path: PathBuf::from(format!("{}/{key}", self.url)),
            error: io::Error::new(kind, e.to_string()),
        }
    }

    fn stat(&self, kind: FileKind, name: &str) -> Result<opendal::Metadata> {
        let key = Self::key(kind, name);
        let op = self.op.clone();
        let k = key.clone();
        self.run(async move { op.stat(&k).await })
            .map_err(|e| self.err("stat", &key, e))
    }

    /// Every object under `dir/`, as (key relative to the prefix, size).
    fn list_dir(&self, dir: &str) -> Result<Vec<(String, u64)>> {
        let op = self.op.clone();
        let d = format!("{dir}/");
        let entries = self
            .run(async move { op.list_with(&d).recursive(true).await })
            .map_err(|e| self.err("list", dir, e))?;
        Ok(entries
            .into_iter()
            .filter(|e| e.metadata().is_file())
            .map(|e| (e.path().to_string(), e.metadata().content_length()))
            .collect())
    }
}

/// A write whose body stalled, which OpenDAL's timeout layer reports as a persistent
/// `Unexpected` error (temporary ones were retried by the retry layer already).
fn is_timeout(e: &opendal::Error) -> bool {
    !e.is_temporary() && e.kind() == ErrorKind::Unexpected && e.to_string().contains("timeout")
}

/// A retry is logged at debug level (`-vv`), not as a warning: a flaky link retries often,
/// and the failure that remains is reported anyway. Called on the runtime's threads, so it
/// must not wait for anything.
fn quiet_retry(event: opendal::layers::RetryEvent<'_>) {
    tracing::debug!(
        "S3: retrying {:?} (attempt {}) in {:.1} s: {}",
        event.op,
        event.attempt,
        event.retry_after.as_secs_f64(),
        event.err
    );
}

impl Backend for S3Backend {
    fn location(&self) -> String {
        self.url.clone()
    }

    /// Two uploads at once: a pack's PUT waits on round trips that the other one fills.
    /// Each holds a pack (16 MiB), so more would cost memory for little.
    fn parallel_writes(&self) -> usize {
        2
    }

    fn exists(&self, kind: FileKind, name: &str) -> Result<bool> {
        match self.stat(kind, name) {
            Ok(_) => Ok(true),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn read(&self, kind: FileKind, name: &str) -> Result<Vec<u8>> {
        let key = Self::key(kind, name);
        let max = kind.max_len();
        let too_big = |len: u64| {
            StoreError::damaged(
                kind.path_of(name),
                format!("{len} bytes, more than any such file rbk writes ({max} at most)"),
            )
        };
        // One request, not a HEAD for the size and then a GET: each is a round trip, and
        // opening a repository reads a dozen files. The body is taken as it comes and
        // refused once it passes what such a file can hold, so a planted giant costs at
        // most that much memory.
        let mut rx = self.receive(&key, None);
        let mut data = Vec::new();
        while let Some(chunk) = rx.blocking_recv() {
            let chunk = chunk.map_err(|e| self.err("read", &key, e))?;
            if (data.len() + chunk.len()) as u64 > max {
                drop(rx);
                let size = self.stat(kind, name)?.content_length();
                return Err(too_big(size.max(max + 1)));
            }
            data.extend_from_slice(&chunk);
        }
        Ok(data)
    }

    fn read_at(&self, kind: FileKind, name: &str, offset: u64, buf: &mut [u8]) -> Result<()> {
        let key = Self::key(kind, name);
        let wanted = buf.len();
        let short = || {
            StoreError::damaged(
                kind.path_of(name),
                format!("shorter than expected: no {wanted} bytes at offset {offset}"),
            )
        };
        if buf.is_empty() {
            return self.stat(kind, name).map(|_| ());
        }
        let end = offset + buf.len() as u64;
        match self.read_into(&key, offset, buf) {
            Ok(n) if n == wanted => Ok(()),
            Ok(_) => Err(short()),
            Err(e) if e.kind() == ErrorKind::RangeNotSatisfied => Err(short()),
            // OpenDAL reports a range that ran past the end as too little data, in words:
            // the object's size tells a short file from a failed read.
            Err(e) if e.kind() != ErrorKind::NotFound => match self.size(kind, name) {
                Ok(size) if size < end => Err(short()),
                _ => Err(self.err("read", &key, e)),
            },
            Err(e) => Err(self.err("read", &key, e)),
        }
    }

    fn size(&self, kind: FileKind, name: &str) -> Result<u64> {
        Ok(self.stat(kind, name)?.content_length())
    }

    fn modified(&self, kind: FileKind, name: &str) -> Result<i64> {
        let meta = self.stat(kind, name)?;
        Ok(meta
            .last_modified()
            .map(std::time::SystemTime::from)
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0))
    }

    fn write_new(&self, kind: FileKind, name: &str, data: &[u8]) -> Result<()> {
        self.put(kind, name, opendal::Buffer::from(data.to_vec()))
    }

    fn write_new_owned(&self, kind: FileKind, name: &str, data: Vec<u8>) -> Result<()> {
        self.put(kind, name, opendal::Buffer::from(data))
    }
    fn list_sized(&self, kind: FileKind) -> Result<Vec<(String, u64)>> {
        if kind == FileKind::Config {
            return Ok(Vec::new());
        }
        let dir = kind.dir();
        let mut out: Vec<(String, u64)> = self
            .list_dir(dir)?
            .into_iter()
            .filter_map(|(key, size)| {
                let rest = key.strip_prefix(dir)?.strip_prefix('/')?;
                // As the local backend does: packs in their fan-out folder, other kinds
                // directly in theirs; anything else is a stray.
                let name = match kind {
                    FileKind::Pack => {
                        let (fan, name) = rest.split_once('/')?;
                        (fan.len() == 2 && !name.contains('/')).then_some(name)?
                    }
                    _ => (!rest.contains('/')).then_some(rest)?,
                };
                Some((name.to_string(), size))
            })
            .collect();
        out.sort();
        Ok(out)
    }

    fn remove(&self, kind: FileKind, name: &str) -> Result<()> {
        let key = Self::key(kind, name);
        let op = self.op.clone();
        let k = key.clone();
        match self.run(async move { op.delete(&k).await }) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(self.err("remove", &key, e)),
        }
    }

    /// None: a PUT is atomic, so no write leaves a partial object behind.
    fn temp_files(&self) -> Result<Vec<TempFile>> {
        Ok(Vec::new())
    }

    fn strays(&self) -> Result<Vec<String>> {
        let op = self.op.clone();
        let entries = self
            .run(async move { op.list_with("").recursive(true).await })
            .map_err(|e| self.err("list", "", e))?;
        let known = |key: &str| -> bool {
            if key == "config" {
                return true;
            }
            FileKind::FOLDERS.iter().any(|k| {
                let Some(rest) = key.strip_prefix(k.dir()).and_then(|r| r.strip_prefix('/')) else {
                    return false;
                };
                match k {
                    FileKind::Pack => rest.split_once('/').is_some_and(|(fan, n)| {
                        fan.len() == 2 && !n.is_empty() && !n.contains('/')
                    }),
                    _ => !rest.is_empty() && !rest.contains('/'),
                }
            })
        };
        let mut out: Vec<String> = entries
            .into_iter()
            .filter(|e| e.metadata().is_file() && !known(e.path()))
            .map(|e| e.path().to_string())
            .collect();
        out.sort();
        Ok(out)
    }

    fn remove_temp(&self, _path: &str) -> Result<()> {
        Ok(())
    }

    /// Nothing: object storage has no folders to make.
    fn create_layout(&self) -> Result<()> {
        Ok(())
    }
}
