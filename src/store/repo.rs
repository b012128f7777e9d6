//! An open repository: the key, the config, and typed access to its files.

use std::sync::{Arc, Mutex, Weak};

use super::backend::Backend;
use super::blob::BlobCodec;
use super::chunker::Chunker;
use super::config::{CONFIG_VERSION, Config};
use super::copy::Chunking;
use super::crypto::{Crypto, MasterKey, random_array};
use super::error::{Result, StoreError};
use super::format::{FileKind, open_file, seal_file};
use super::id::Id;
use super::index::{INDEX_VERSION, Index, IndexBuilder, IndexFile};
use super::keys::{KdfParams, KeyFile, list_keys, new_key_name, resolve_key};
use super::lock::{HeldLock, LockGuard, LockKind, hostname};
use super::manifest::{SNAPSHOT_VERSION, Snapshot};
use super::time::now_unix;
use crate::progress::{Progress, Silent};

pub struct Repository {
    backend: Arc<dyn Backend>,
    master: MasterKey,
    crypto: Crypto,
    config: Config,
    key_name: String,
    /// The locks this process took through this handle, so that a commit
    /// can check they still protect it (`verify_locks`).
    held: Mutex<Vec<Weak<HeldLock>>>,
    /// Where long operations report how far they are; silent unless the
    /// caller (the CLI) sets it.
    progress: Arc<dyn Progress>,
    /// How `read_lock` behaves: take the shared lock, or read without one.
    reading: ReadLocking,
    /// Set when `read_lock` found the repository on a read-only filesystem
    /// and read without a lock, for the caller to say so.
    read_only_fallback: std::sync::atomic::AtomicBool,
}

/// Whether commands that only read take the shared lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReadLocking {
    /// Take it, falling back to none on a read-only filesystem.
    #[default]
    Take,
    /// `--no-lock`: a repository on a read-only mount, or one this user may
    /// read but not write. A prune running elsewhere may then delete what is
    /// being read (the read fails; it never returns wrong bytes).
    Skip,
}

/// Key derivation one password may spend, in KiB-passes: 8 GiB-passes, a few
/// seconds here. A key at the bounds (1 GiB, 10 passes) does not fit, so it is
/// tried only when it is the cheapest there is.
const KDF_BUDGET: u64 = 8 * 1024 * 1024;
/// What each try counts against the budget at least (400 MiB-passes), so that
/// one password tries at most 20 key files (as restic), however cheap.
const KDF_FLOOR: u64 = 400 * 1024;

/// Times a listing is retried when a listed file vanished before it was read.
const RELIST_ATTEMPTS: usize = 100;

/// Choices made once, at `init`.
#[derive(Debug, Clone)]
pub struct InitOptions {
    pub kdf: KdfParams,
    pub compression_level: i32,
    /// Another repository's chunking (`init --copy-chunker-params-from`): the same cut
    /// points and chunk ids, so `rbk copy` moves blobs between the two as they are.
    pub chunking: Option<Chunking>,
}

impl Default for InitOptions {
    fn default() -> Self {
        InitOptions {
            kdf: KdfParams::default(),
            compression_level: 3,
            chunking: None,
        }
    }
}

impl Repository {
    /// A repository for unit tests on `backend`: the defaults, with the cheapest key
    /// derivation (Argon2 at its default cost would dominate every test).
    #[cfg(test)]
    pub(crate) fn init_for_tests(backend: Arc<dyn Backend>) -> Repository {
        let options = InitOptions {
            kdf: super::keys::KdfParams {
                memory_kib: 64,
                iterations: 1,
                parallelism: 1,
            },
            ..Default::default()
        };
        Repository::init(backend, b"pw", &options).expect("init")
    }

    /// Creates a repository in an empty (or absent) location.
    pub fn init(
        backend: Arc<dyn Backend>,
        password: &[u8],
        options: &InitOptions,
    ) -> Result<Repository> {
        if backend.exists(FileKind::Config, "")? {
            return Err(StoreError::AlreadyExists(backend.location().into()));
        }
        backend.create_layout()?;
        let mut master = MasterKey::generate();
        let mut config = Config::new(Id(random_array()), options.compression_level);
        if let Some(chunking) = &options.chunking {
            // Only what decides cut points and chunk ids: the data key, and with it
            // every file's encryption, stays this repository's own.
            master.id = chunking.id_key;
            master.chunker = chunking.chunker_key;
            config.chunker = chunking.params;
        }
        let crypto = Crypto::new(&master);
        config.validate().map_err(StoreError::Invalid)?;
        let key = KeyFile::create(&master, password, options.kdf, hostname(), now_unix())?;
        let key_name = new_key_name();
        // The key first: a config without a key would be a repository nobody
        // can open, while a key without a config is not yet a repository. A
        // write that failed after its rename (the directory's fsync) leaves
        // the key: remove it, or it would stay behind as another master's key.
        if let Err(e) = backend.write_new(FileKind::Key, &key_name, &key.encode()) {
            let _ = backend.remove(FileKind::Key, &key_name);
            return Err(e);
        }
        if let Err(e) = backend.write_new(
            FileKind::Config,
            "",
            &seal_file(&crypto, FileKind::Config, CONFIG_VERSION, &config),
        ) {
            // Not a repository yet: leave no key that a later `init` would trip on,
            // unless the config was written after all (a failed fsync after its
            // rename): then the key is what opens it.
            if !backend.exists(FileKind::Config, "").unwrap_or(true) {
                let _ = backend.remove(FileKind::Key, &key_name);
            }
            return Err(e);
        }
        Ok(Repository {
            backend,
            master,
            crypto,
            config,
            key_name,
            held: Mutex::new(Vec::new()),
            progress: Arc::new(Silent),
            reading: ReadLocking::Take,
            read_only_fallback: Default::default(),
        })
    }

    /// Opens a repository with a password, trying each key file.
    pub fn open(backend: Arc<dyn Backend>, password: &[u8]) -> Result<Repository> {
        if !backend.exists(FileKind::Config, "")? {
            return Err(StoreError::NotARepository {
                path: backend.location().into(),
                detail: "it has no config file".into(),
            });
        }
        let names = backend.list(FileKind::Key)?;
        let mut damaged = None;
        let mut config_error = None;
        // Anyone who can write the repository can plant key files: learn what each
        // costs (keeping only that, so many planted files take little memory), then
        // try the cheapest first, at most 20 and within a budget of key derivation,
        // so that planted key files cannot make every command slow or large.
        let read_key = |name: &str| {
            backend
                .read(FileKind::Key, name)
                .and_then(|b| KeyFile::decode(name, &b))
        };
        let mut costs = Vec::new();
        for name in &names {
            match read_key(name) {
                Ok(key) => costs.push((key.kdf.cost(), name)),
                // A damaged key file must not stop another key from opening the repository.
                Err(e) => damaged = Some(e),
            }
        }
        costs.sort();
        let mut spent = 0u64;
        let mut tried = 0usize;
        for (_, name) in &costs {
            // Read again, and judged as it is now: a file replaced since the first
            // pass by a costlier one must not slip past the budget.
            let key = match read_key(name) {
                Ok(key) => key,
                Err(e) => {
                    damaged = Some(e);
                    continue;
                }
            };
            let cost = key.kdf.cost().max(KDF_FLOOR);
            if tried > 0 && spent + cost > KDF_BUDGET {
                break;
            }
            tried += 1;
            spent += cost;
            let master = match key.unlock(password) {
                Ok(Some(master)) => master,
                Ok(None) => continue,
                Err(e) => {
                    damaged = Some(e);
                    continue;
                }
            };
            let crypto = Crypto::new(&master);
            let sealed = backend.read(FileKind::Config, "")?;
            let config =
                open_file::<Config>(&crypto, FileKind::Config, "", CONFIG_VERSION, &sealed)
                    .and_then(|c| {
                        c.validate().map_err(|e| StoreError::damaged("config", e))?;
                        Ok(c)
                    });
            let config = match config {
                Ok(c) => c,
                // This password also opens a key of another master key (left by an
                // `init` that failed before its config was written): try the others.
                Err(e) => {
                    config_error = Some(e);
                    continue;
                }
            };
            return Ok(Repository {
                backend,
                master,
                crypto,
                config,
                key_name: (*name).clone(),
                held: Mutex::new(Vec::new()),
                progress: Arc::new(Silent),
                reading: ReadLocking::Take,
                read_only_fallback: Default::default(),
            });
        }
        // A key that opened but whose master does not open the config: the
        // config is damaged (or replaced), which is what to report.
        if let Some(e) = config_error {
            return Err(e);
        }
        // With no key left that could be right, a damaged key file is the
        // more useful message than "wrong password".
        match damaged {
            Some(e) if names.len() == 1 => Err(e),
            _ => Err(StoreError::WrongPassword {
                keys: names.len(),
                untried: costs.len() - tried,
            }),
        }
    }

    pub fn backend(&self) -> &Arc<dyn Backend> {
        &self.backend
    }

    pub fn crypto(&self) -> &Crypto {
        &self.crypto
    }

    /// Reports long operations' progress to `progress` from now on.
    pub fn set_progress(&mut self, progress: Arc<dyn Progress>) {
        self.progress = progress;
    }

    pub fn progress(&self) -> &dyn Progress {
        self.progress.as_ref()
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn key_name(&self) -> &str {
        &self.key_name
    }

    /// Every key file by name, each decoded or the reason it cannot be.
    pub fn list_keys(&self) -> Result<Vec<(String, Result<KeyFile>)>> {
        list_keys(self.backend.as_ref())
    }

    /// Whether a key file's host and creation time are authentic (see
    /// `KeyFile::metadata_verified`): this repository's master key vouches for them.
    pub fn key_metadata_verified(&self, key: &KeyFile) -> Option<bool> {
        key.metadata_verified(&self.master)
    }

    /// Resolves a unique prefix of a key id.
    pub fn find_key(&self, prefix: &str) -> Result<String> {
        resolve_key(&self.backend.list(FileKind::Key)?, prefix)
    }

    /// Wraps this repository's master key with another password, in a new
    /// key file written atomically; returns its id.
    pub fn add_key(&self, password: &[u8], kdf: KdfParams) -> Result<String> {
        let key = KeyFile::create(&self.master, password, kdf, hostname(), now_unix())?;
        let name = new_key_name();
        self.backend
            .write_new(FileKind::Key, &name, &key.encode())?;
        Ok(name)
    }

    /// Removes a key file. Refuses the last readable one (nobody could open
    /// the repository again) and, unless `allow_current`, the one this
    /// handle was opened with. Callers hold an exclusive lock, so two
    /// removals cannot each count the other's key as the one that remains.
    pub fn remove_key(&self, name: &str, allow_current: bool) -> Result<()> {
        let keys = self.list_keys()?;
        if !keys.iter().any(|(n, _)| n == name) {
            return Err(StoreError::NoSuchKey(name.into()));
        }
        let others = keys.iter().filter(|(n, k)| n != name && k.is_ok()).count();
        if others == 0 {
            return Err(StoreError::LastKey(name.into()));
        }
        if name == self.key_name && !allow_current {
            return Err(StoreError::KeyInUse(name.into()));
        }
        self.backend.remove(FileKind::Key, name)
    }

    /// Replaces the key in use by one for `password`: the new key is durable
    /// before the old one is removed, so a crash in between leaves both.
    /// Returns (new key, removed key); the handle stays usable.
    pub fn change_password(&mut self, password: &[u8], kdf: KdfParams) -> Result<(String, String)> {
        let added = self.add_key(password, kdf)?;
        let old = std::mem::replace(&mut self.key_name, added.clone());
        self.remove_key(&old, true)?;
        Ok((added, old))
    }

    /// What decides this repository's cut points and chunk ids (secret: it holds keys).
    pub fn chunking(&self) -> Chunking {
        Chunking {
            params: self.config.chunker,
            id_key: self.master.id,
            chunker_key: self.master.chunker,
        }
    }

    pub fn chunker(&self) -> Chunker {
        Chunker::new(&self.master.chunker, self.config.chunker)
    }

    pub fn blob_codec(&self) -> BlobCodec {
        BlobCodec::new(
            self.crypto.clone(),
            self.config.compression_level,
            self.config.pad_to,
        )
    }

    /// A keyed fingerprint of a secret (an application's encryption key), so
    /// a later run can tell whether the secret changed without the
    /// repository ever holding it. Keyed by the repository, so it cannot be
    /// checked against guesses without the repository's key.
    pub fn fingerprint(&self, context: &str, secret: &[u8]) -> String {
        let key = blake3::derive_key(&format!("rbk fingerprint v1 {context}"), &self.master.id);
        hex::encode(&blake3::keyed_hash(&key, secret).as_bytes()[..16])
    }

    pub fn lock(&self, exclusive: bool, command: &str) -> Result<LockGuard> {
        let kind = if exclusive {
            LockKind::Exclusive
        } else {
            LockKind::Shared
        };
        self.lock_kind(kind, command)
    }

    /// Whether commands that only read take the shared lock (`--no-lock`).
    pub fn set_read_locking(&mut self, reading: ReadLocking) {
        self.reading = reading;
    }

    /// The shared lock for a command that only reads the repository
    /// (restore, check, stats, diff): `None` with `--no-lock`, and when the
    /// repository is on a read-only filesystem (a NAS mounted read-only),
    /// where no lock can be written and no prune can run either.
    pub fn read_lock(&self, command: &str) -> Result<Option<LockGuard>> {
        if self.reading == ReadLocking::Skip {
            return Ok(None);
        }
        match self.lock(false, command) {
            Ok(guard) => Ok(Some(guard)),
            Err(StoreError::Io { error, .. }) if error.raw_os_error() == Some(libc::EROFS) => {
                self.read_only_fallback
                    .store(true, std::sync::atomic::Ordering::Relaxed);
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Whether `read_lock` read without a lock because the filesystem is read-only.
    pub fn read_without_lock_on_read_only_fs(&self) -> bool {
        self.read_only_fallback
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn lock_kind(&self, kind: LockKind, command: &str) -> Result<LockGuard> {
        let guard = LockGuard::acquire(self.backend.clone(), &self.crypto, kind, command)?;
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        held.retain(|w| w.strong_count() > 0);
        held.push(Arc::downgrade(guard.held()));
        Ok(guard)
    }

    /// Fails if a lock this process holds may have stopped protecting it
    /// (see `HeldLock::verify`). Called before anything is committed.
    pub fn verify_locks(&self) -> Result<()> {
        let held: Vec<Arc<HeldLock>> = self
            .held
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter_map(Weak::upgrade)
            .collect();
        for lock in held {
            lock.verify(self.backend.as_ref())?;
        }
        Ok(())
    }

    /// Fails, as damage, for a pack larger than any this repository writes:
    /// check and prune read packs whole, and a planted one must not cost
    /// more memory than a real one.
    pub fn check_pack_len(&self, name: &str) -> Result<()> {
        let size = self.backend.size(FileKind::Pack, name)?;
        let max = self.config.max_pack_len();
        if size > max {
            return Err(StoreError::damaged(
                FileKind::Pack.path_of(name),
                format!("{size} bytes, more than any pack of this repository can be ({max})"),
            ));
        }
        Ok(())
    }

    /// Reads a content-addressed file and checks its bytes against its name.
    pub fn read_verified(&self, kind: FileKind, name: &str) -> Result<Vec<u8>> {
        let bytes = self.backend.read(kind, name)?;
        if Id::of_file(&bytes).to_hex() != name {
            return Err(StoreError::damaged(
                kind.path_of(name),
                "its content does not match its name (modified, truncated or replaced)",
            ));
        }
        Ok(bytes)
    }

    /// Writes a sealed, content-addressed file and returns its id.
    pub fn write_sealed<T: serde::Serialize>(
        &self,
        kind: FileKind,
        version: u16,
        value: &T,
    ) -> Result<Id> {
        let (id, bytes) = self.seal(kind, version, value);
        self.backend.write_new(kind, &id.to_hex(), &bytes)?;
        Ok(id)
    }

    /// A structured file's sealed bytes and the id (name) they will have.
    pub fn seal<T: serde::Serialize>(
        &self,
        kind: FileKind,
        version: u16,
        value: &T,
    ) -> (Id, Vec<u8>) {
        let bytes = seal_file(&self.crypto, kind, version, value);
        (Id::of_file(&bytes), bytes)
    }

    pub fn read_index_file(&self, name: &str) -> Result<IndexFile> {
        let bytes = self.read_verified(FileKind::Index, name)?;
        open_file(&self.crypto, FileKind::Index, name, INDEX_VERSION, &bytes)
    }

    /// Every index file, by name, with damaged ones as errors. A prune
    /// running at the same time replaces index files (the new ones are
    /// durable before the old ones go), so a file that vanishes between
    /// the listing and its read means: list again.
    pub fn index_files(&self) -> Result<Vec<(String, Result<IndexFile>)>> {
        let mut read: std::collections::HashMap<String, Result<IndexFile>> = Default::default();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let names = self.backend.list(FileKind::Index)?;
            let mut vanished = false;
            for name in &names {
                if read.contains_key(name) {
                    continue; // files never change: one read per name
                }
                match self.read_index_file(name) {
                    Err(e) if e.is_not_found() && attempt < RELIST_ATTEMPTS => vanished = true,
                    r => {
                        read.insert(name.clone(), r);
                    }
                }
            }
            if !vanished {
                let mut out: Vec<(String, Result<IndexFile>)> = names
                    .into_iter()
                    .filter_map(|n| read.remove(&n).map(|f| (n, f)))
                    .collect();
                out.sort_by(|a, b| a.0.cmp(&b.0));
                return Ok(out);
            }
        }
    }

    /// Loads every index file into one table; a damaged index file is an error that names it.
    /// Each file is dropped once added, so memory peaks at the table (44 bytes
    /// per blob) plus one decoded file.
    ///
    /// Then one listing of `data/` decides which indexed packs exist: a blob
    /// whose only pack is gone (deleted by hand, lost on the NAS, or an old
    /// index replayed) is left out of the table, so a snapshot stores it again
    /// instead of referring to it, and a restore reads a copy that exists.
    /// Packs a writer indexed were durable before its index file, and prune
    /// deletes none while a lock holder of its time lives, so for a caller
    /// that holds a lock a missing pack means damage, never a race.
    pub fn load_index(&self) -> Result<Index> {
        let mut attempt = 0;
        'relist: loop {
            attempt += 1;
            let mut builder = IndexBuilder::default();
            let names = self.backend.list(FileKind::Index)?;
            for name in &names {
                match self.read_index_file(name) {
                    Ok(file) => builder.add(&file),
                    // Replaced by a prune between the listing and the read.
                    Err(e) if e.is_not_found() && attempt < RELIST_ATTEMPTS => continue 'relist,
                    Err(e) => return Err(e),
                }
            }
            let on_disk = self.packs_on_disk()?;
            return Ok(builder.finish_available(&on_disk).with_sources(names));
        }
    }

    /// The packs in `data/`, by id (names that are not pack ids are not packs).
    pub fn packs_on_disk(&self) -> Result<std::collections::HashSet<Id>> {
        Ok(self
            .backend
            .list(FileKind::Pack)?
            .iter()
            .filter_map(|n| Id::from_hex(n))
            .collect())
    }

    pub fn read_snapshot(&self, name: &str) -> Result<Snapshot> {
        let bytes = self.read_verified(FileKind::Snapshot, name)?;
        open_file(
            &self.crypto,
            FileKind::Snapshot,
            name,
            SNAPSHOT_VERSION,
            &bytes,
        )
    }

    pub fn save_snapshot(&self, snapshot: &Snapshot) -> Result<Id> {
        self.write_sealed(FileKind::Snapshot, SNAPSHOT_VERSION, snapshot)
    }

    /// Every snapshot, oldest first; damaged ones come back as errors so that
    /// one bad file does not hide the others.
    pub fn snapshots(&self) -> Result<Vec<(Id, Result<Snapshot>)>> {
        let mut out = Vec::new();
        for name in self.backend.list(FileKind::Snapshot)? {
            let Some(id) = Id::from_hex(&name) else {
                continue;
            };
            match self.read_snapshot(&name) {
                // Forgotten between the listing and the read.
                Err(e) if e.is_not_found() => {}
                r => out.push((id, r)),
            }
        }
        out.sort_by(|a, b| match (&a.1, &b.1) {
            (Ok(x), Ok(y)) => sort_key(x).cmp(&sort_key(y)),
            _ => std::cmp::Ordering::Equal,
        });
        Ok(out)
    }

    /// Resolves `latest` or a unique id prefix.
    pub fn find_snapshot(&self, wanted: &str) -> Result<(Id, Snapshot)> {
        if wanted == "latest" {
            let mut all = Vec::new();
            for (id, s) in self.snapshots()? {
                // A damaged snapshot might be the newest: guessing would
                // silently restore older data.
                let s = s.map_err(|e| match e {
                    StoreError::Damaged { file, detail } => StoreError::damaged(
                        file,
                        format!("{detail}; it may be the latest snapshot, so name the one to use by its id"),
                    ),
                    other => other,
                })?;
                all.push((id, s));
            }
            all.sort_by_key(|(_, s)| sort_key(s));
            return all
                .pop()
                .ok_or_else(|| StoreError::NoSuchSnapshot(wanted.into()));
        }
        let id = self.resolve_snapshot(wanted)?;
        Ok((id, self.read_snapshot(&id.to_hex())?))
    }

    /// The one snapshot file whose id starts with `prefix`, without reading
    /// it: a file that cannot be read must still be removable by its id.
    pub fn resolve_snapshot(&self, prefix: &str) -> Result<Id> {
        let wanted_lc = prefix.to_ascii_lowercase();
        if wanted_lc.is_empty() || !wanted_lc.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(StoreError::NoSuchSnapshot(prefix.into()));
        }
        let matches: Vec<Id> = self
            .backend
            .list(FileKind::Snapshot)?
            .into_iter()
            .filter(|n| n.starts_with(&wanted_lc))
            // Names that are not ids are not snapshots (`snapshots()` skips them too).
            .filter_map(|n| Id::from_hex(&n))
            .collect();
        match matches.as_slice() {
            [] => Err(StoreError::NoSuchSnapshot(prefix.into())),
            [one] => Ok(*one),
            many => Err(StoreError::AmbiguousSnapshot {
                prefix: prefix.into(),
                count: many.len(),
            }),
        }
    }
}

fn sort_key(s: &Snapshot) -> i128 {
    super::time::parse_rfc3339(&s.time)
        .map(|t| t.unix_timestamp_nanos())
        .unwrap_or(0)
}
