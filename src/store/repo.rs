//! An open repository: the key, the config, and typed access to its files.

use std::sync::Arc;

use super::backend::Backend;
use super::blob::BlobCodec;
use super::chunker::Chunker;
use super::config::{CONFIG_VERSION, Config};
use super::crypto::{Crypto, MasterKey, random_array};
use super::error::{Result, StoreError};
use super::format::{FileKind, open_file, seal_file};
use super::id::Id;
use super::index::{INDEX_VERSION, Index, IndexFile};
use super::keys::{KdfParams, KeyFile};
use super::lock::{LockGuard, hostname};
use super::manifest::{SNAPSHOT_VERSION, Snapshot};
use super::time::now_unix;

pub struct Repository {
    backend: Arc<dyn Backend>,
    master: MasterKey,
    crypto: Crypto,
    config: Config,
    key_name: String,
}

/// Choices made once, at `init`.
#[derive(Debug, Clone)]
pub struct InitOptions {
    pub kdf: KdfParams,
    pub compression_level: i32,
}

impl Default for InitOptions {
    fn default() -> Self {
        InitOptions {
            kdf: KdfParams::default(),
            compression_level: 3,
        }
    }
}

impl Repository {
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
        let master = MasterKey::generate();
        let crypto = Crypto::new(&master);
        let config = Config::new(Id(random_array()), options.compression_level);
        config.validate().map_err(StoreError::Invalid)?;
        let key = KeyFile::create(&master, password, options.kdf, hostname(), now_unix())?;
        let key_name = hex::encode(random_array::<16>());
        // The key first: a config without a key would be a repository nobody
        // can open, while a key without a config is not yet a repository.
        backend.write_new(FileKind::Key, &key_name, &key.encode())?;
        backend.write_new(
            FileKind::Config,
            "",
            &seal_file(&crypto, FileKind::Config, CONFIG_VERSION, &config),
        )?;
        Ok(Repository {
            backend,
            master,
            crypto,
            config,
            key_name,
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
        for name in &names {
            let key = match backend
                .read(FileKind::Key, name)
                .and_then(|b| KeyFile::decode(name, &b))
            {
                Ok(k) => k,
                Err(e) => {
                    damaged = Some(e);
                    continue;
                }
            };
            if let Some(master) = key.unlock(password)? {
                let crypto = Crypto::new(&master);
                let sealed = backend.read(FileKind::Config, "")?;
                let config: Config =
                    open_file(&crypto, FileKind::Config, "", CONFIG_VERSION, &sealed)?;
                config
                    .validate()
                    .map_err(|e| StoreError::damaged("config", e))?;
                return Ok(Repository {
                    backend,
                    master,
                    crypto,
                    config,
                    key_name: name.clone(),
                });
            }
        }
        // With no key left that could be right, a damaged key file is the
        // more useful message than "wrong password".
        match damaged {
            Some(e) if names.len() == 1 => Err(e),
            _ => Err(StoreError::WrongPassword { keys: names.len() }),
        }
    }

    pub fn backend(&self) -> &Arc<dyn Backend> {
        &self.backend
    }

    pub fn crypto(&self) -> &Crypto {
        &self.crypto
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn key_name(&self) -> &str {
        &self.key_name
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
        LockGuard::acquire(self.backend.clone(), &self.crypto, exclusive, command)
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
        let bytes = seal_file(&self.crypto, kind, version, value);
        let id = Id::of_file(&bytes);
        self.backend.write_new(kind, &id.to_hex(), &bytes)?;
        Ok(id)
    }

    pub fn read_index_file(&self, name: &str) -> Result<IndexFile> {
        let bytes = self.read_verified(FileKind::Index, name)?;
        open_file(&self.crypto, FileKind::Index, name, INDEX_VERSION, &bytes)
    }

    /// Loads every index file into one table; a damaged index file is an error that names it.
    pub fn load_index(&self) -> Result<Index> {
        let mut files = Vec::new();
        for name in self.backend.list(FileKind::Index)? {
            files.push(self.read_index_file(&name)?);
        }
        Ok(Index::from_files(&files))
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
            out.push((id, self.read_snapshot(&name)));
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
        let wanted_lc = wanted.to_ascii_lowercase();
        if wanted_lc.is_empty() || !wanted_lc.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(StoreError::NoSuchSnapshot(wanted.into()));
        }
        let matches: Vec<String> = self
            .backend
            .list(FileKind::Snapshot)?
            .into_iter()
            .filter(|n| n.starts_with(&wanted_lc))
            .collect();
        match matches.as_slice() {
            [] => Err(StoreError::NoSuchSnapshot(wanted.into())),
            [one] => {
                let id = Id::from_hex(one).ok_or_else(|| {
                    StoreError::damaged(FileKind::Snapshot.path_of(one), "bad name")
                })?;
                Ok((id, self.read_snapshot(one)?))
            }
            many => Err(StoreError::AmbiguousSnapshot {
                prefix: wanted.into(),
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
