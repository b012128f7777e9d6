//! Key files: the master key wrapped by a password-derived key (Argon2id), several per repository.
//!
//! Layout of `keys/<id>` (not encrypted; the only such file):
//! `u16 LE version || postcard(KeyFile) || BLAKE3(everything before)`.
//! The trailing hash tells a damaged key file apart from a wrong password.
//!
//! A key file is not encrypted, so anyone who can write the repository can
//! plant one: its Argon2id parameters are bounded before anything is derived
//! (a planted key must not cost minutes and gigabytes of every command), and
//! since version 2 its metadata (host, creation time) is authenticated with a
//! key derived from the master key, so that `key list` shows it as fact only
//! when it is.

use argon2::{Algorithm, Argon2, Params, Version};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::backend::Backend;
use super::crypto::{MasterKey, SEAL_OVERHEAD, open_with_key, random_array, seal_with_key};
use super::error::{Result, StoreError};
use super::format::{FileKind, decode_plain, encode_plain};

/// Version 2 adds `meta_mac`; version 1 files are still read (their metadata unverified).
pub const KEY_FILE_VERSION: u16 = 2;
const MASTER_AAD: &[u8] = b"rbk:master-key";
/// Room for `postcard(MasterKey)` (96 bytes: three arrays, no length prefixes).
const MASTER_PLAIN_MAX: usize = 128;
/// BLAKE3 `derive_key` context of the key that authenticates key-file metadata.
const META_CONTEXT: &str = "rbk key file metadata v2";

/// Argon2id cost parameters, stored per key file so they can be raised later.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct KdfParams {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

impl Default for KdfParams {
    /// 64 MiB, 3 passes: about a third of a second here, and the memory is
    /// freed before any snapshot work starts.
    fn default() -> Self {
        KdfParams {
            memory_kib: 64 * 1024,
            iterations: 3,
            parallelism: 1,
        }
    }
}

impl KdfParams {
    /// The most memory a key may demand (1 GiB): `--kdf-memory-mib` offers
    /// 8..=1024 MiB, and a planted key file asking for more is refused unread.
    pub const MAX_MEMORY_KIB: u32 = 1024 * 1024;
    /// At most this many passes (rbk writes 3).
    pub const MAX_ITERATIONS: u32 = 10;
    /// At most this many lanes (rbk writes 1).
    pub const MAX_PARALLELISM: u32 = 4;

    /// Whether a key file may ask for these parameters: a hostile key file must not make
    /// rbk allocate or compute without bound.
    pub fn check(&self) -> Result<()> {
        if self.memory_kib > Self::MAX_MEMORY_KIB
            || self.iterations > Self::MAX_ITERATIONS
            || !(1..=Self::MAX_PARALLELISM).contains(&self.parallelism)
        {
            return Err(StoreError::Invalid(format!(
                "key derivation parameters are out of range ({} KiB, {} passes, {} lanes; at most {} KiB, {} passes, {} lanes)",
                self.memory_kib,
                self.iterations,
                self.parallelism,
                Self::MAX_MEMORY_KIB,
                Self::MAX_ITERATIONS,
                Self::MAX_PARALLELISM
            )));
        }
        Ok(())
    }

    /// What deriving costs, in KiB-passes (memory times passes).
    pub fn cost(&self) -> u64 {
        u64::from(self.memory_kib) * u64::from(self.iterations)
    }

    fn derive(&self, password: &[u8], salt: &[u8]) -> Result<Zeroizing<[u8; 32]>> {
        self.check()?;
        let params = Params::new(self.memory_kib, self.iterations, self.parallelism, Some(32))
            .map_err(|e| StoreError::Invalid(format!("key derivation parameters {self:?}: {e}")))?;
        let mut out = Zeroizing::new([0u8; 32]);
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password_into(password, salt, out.as_mut())
            .map_err(|e| StoreError::Invalid(format!("key derivation failed: {e}")))?;
        Ok(out)
    }
}

#[derive(Debug, Clone)]
pub struct KeyFile {
    /// Seconds since the Unix epoch, as the file claims (see `metadata_verified`).
    pub created: i64,
    /// The host that made it, as the file claims.
    pub host: String,
    pub kdf: KdfParams,
    pub salt: [u8; 16],
    /// `seal(argon2id(password, salt), aad = "rbk:master-key", postcard(MasterKey))`.
    pub sealed_master: Vec<u8>,
    /// Authenticates every field above under a key derived from the master
    /// key; `None` in version 1 files, whose metadata nothing vouches for.
    pub meta_mac: Option<[u8; 32]>,
}

/// Version 1: the fields without `meta_mac`.
#[derive(Serialize, Deserialize)]
struct KeyFileV1 {
    created: i64,
    host: String,
    kdf: KdfParams,
    salt: [u8; 16],
    sealed_master: Vec<u8>,
}

/// Version 2: version 1's fields, then the metadata MAC.
#[derive(Serialize, Deserialize)]
struct KeyFileV2 {
    created: i64,
    host: String,
    kdf: KdfParams,
    salt: [u8; 16],
    sealed_master: Vec<u8>,
    meta_mac: [u8; 32],
}

impl KeyFile {
    pub fn create(
        master: &MasterKey,
        password: &[u8],
        kdf: KdfParams,
        host: String,
        created: i64,
    ) -> Result<KeyFile> {
        let salt: [u8; 16] = random_array();
        let wrapping = kdf.derive(password, &salt)?;
        // Serialised into a fixed buffer, and sealed in a vector that already
        // has room for the nonce and tag: a growing vector would leave copies
        // of the plain master key in freed memory that nothing zeroizes.
        let mut plain = Zeroizing::new([0u8; MASTER_PLAIN_MAX]);
        let len = postcard::to_slice(master, plain.as_mut())
            .map_err(|e| StoreError::Invalid(format!("serialising the master key: {e}")))?
            .len();
        let mut buf = Vec::with_capacity(len + SEAL_OVERHEAD);
        buf.extend_from_slice(&plain[..len]);
        let sealed_master = seal_with_key(&wrapping, MASTER_AAD, buf);
        let mut key = KeyFile {
            created,
            host,
            kdf,
            salt,
            sealed_master,
            meta_mac: None,
        };
        key.meta_mac = Some(key.mac(master));
        Ok(key)
    }

    /// `None` when the password is not this key's.
    pub fn unlock(&self, password: &[u8]) -> Result<Option<MasterKey>> {
        let wrapping = self.kdf.derive(password, &self.salt)?;
        let Some(plain) = open_with_key(&wrapping, MASTER_AAD, &self.sealed_master) else {
            return Ok(None);
        };
        let plain = Zeroizing::new(plain);
        postcard::from_bytes(&plain)
            .map(Some)
            .map_err(|_| StoreError::damaged("key file", "the master key does not parse"))
    }

    /// Whether the host and creation time are what this repository's owner
    /// wrote: `Some(true)` when the MAC checks out under `master`,
    /// `Some(false)` when it does not (the file was altered), `None` for a
    /// version 1 file, which carries no MAC.
    pub fn metadata_verified(&self, master: &MasterKey) -> Option<bool> {
        self.meta_mac.map(|mac| {
            // Constant time, as every comparison of a MAC should be.
            blake3::Hash::from(mac) == blake3::Hash::from(self.mac(master))
        })
    }

    fn mac(&self, master: &MasterKey) -> [u8; 32] {
        let key = blake3::derive_key(META_CONTEXT, &master.data);
        let fields = KeyFileV1 {
            created: self.created,
            host: self.host.clone(),
            kdf: self.kdf,
            salt: self.salt,
            sealed_master: self.sealed_master.clone(),
        };
        let bytes = postcard::to_allocvec(&fields).unwrap_or_default();
        *blake3::keyed_hash(&key, &bytes).as_bytes()
    }

    /// Version 2 bytes. Only keys made by `create` (which carry a MAC) are written.
    pub fn encode(&self) -> Vec<u8> {
        let v2 = KeyFileV2 {
            created: self.created,
            host: self.host.clone(),
            kdf: self.kdf,
            salt: self.salt,
            sealed_master: self.sealed_master.clone(),
            meta_mac: self.meta_mac.unwrap_or([0; 32]),
        };
        let mut out = encode_plain(KEY_FILE_VERSION, &v2);
        let sum = blake3::hash(&out);
        out.extend_from_slice(sum.as_bytes());
        out
    }

    pub fn decode(name: &str, bytes: &[u8]) -> Result<KeyFile> {
        let file = FileKind::Key.path_of(name);
        if bytes.len() < 34 {
            return Err(StoreError::damaged(file, "truncated"));
        }
        let (body, sum) = bytes.split_at(bytes.len() - 32);
        if blake3::hash(body).as_bytes() != sum {
            return Err(StoreError::damaged(
                file,
                "checksum mismatch (modified or truncated)",
            ));
        }
        let key = if body.starts_with(&1u16.to_le_bytes()) {
            let v1: KeyFileV1 = decode_plain(&file, 1, body)?;
            KeyFile {
                created: v1.created,
                host: v1.host,
                kdf: v1.kdf,
                salt: v1.salt,
                sealed_master: v1.sealed_master,
                meta_mac: None,
            }
        } else {
            let v2: KeyFileV2 = decode_plain(&file, KEY_FILE_VERSION, body)?;
            KeyFile {
                created: v2.created,
                host: v2.host,
                kdf: v2.kdf,
                salt: v2.salt,
                sealed_master: v2.sealed_master,
                meta_mac: Some(v2.meta_mac),
            }
        };
        // Bounded here, so that no caller derives from a key nobody should.
        key.kdf
            .check()
            .map_err(|e| StoreError::damaged(FileKind::Key.path_of(name), e.to_string()))?;
        Ok(key)
    }
}

/// A fresh key id: random, so ids say nothing about the password or the order of creation.
pub fn new_key_name() -> String {
    hex::encode(random_array::<16>())
}

/// Every key file by name, sorted, each decoded or the reason it cannot be.
pub fn list_keys(backend: &dyn Backend) -> Result<Vec<(String, Result<KeyFile>)>> {
    let mut names = backend.list(FileKind::Key)?;
    names.sort();
    Ok(names
        .into_iter()
        .map(|name| {
            let key = backend
                .read(FileKind::Key, &name)
                .and_then(|b| KeyFile::decode(&name, &b));
            (name, key)
        })
        .collect())
}

/// The one name in `names` that starts with `prefix` (a whole id is a prefix of itself).
pub fn resolve_key(names: &[String], prefix: &str) -> Result<String> {
    let wanted = prefix.to_ascii_lowercase();
    if wanted.is_empty() {
        return Err(StoreError::NoSuchKey(prefix.into()));
    }
    let matches: Vec<&String> = names.iter().filter(|n| n.starts_with(&wanted)).collect();
    match matches.as_slice() {
        [] => Err(StoreError::NoSuchKey(prefix.into())),
        [one] => Ok((*one).clone()),
        many => Err(StoreError::AmbiguousKey {
            prefix: prefix.into(),
            count: many.len(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cheap() -> KdfParams {
        KdfParams {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
        }
    }

    #[test]
    fn wraps_and_unwraps() {
        let master = MasterKey::generate();
        let kf = KeyFile::create(&master, b"pw", cheap(), "h".into(), 0).unwrap();
        let bytes = kf.encode();
        let back = KeyFile::decode("k", &bytes).unwrap();
        let got = back.unlock(b"pw").unwrap().unwrap();
        assert_eq!(got.data, master.data);
        assert!(back.unlock(b"wrong").unwrap().is_none());
    }

    #[test]
    fn key_ids_resolve_by_unique_prefix() {
        let names = vec!["ab12".to_string(), "ab34".to_string(), "cd56".to_string()];
        assert_eq!(resolve_key(&names, "c").unwrap(), "cd56");
        assert_eq!(resolve_key(&names, "AB3").unwrap(), "ab34");
        assert!(matches!(
            resolve_key(&names, "ab"),
            Err(StoreError::AmbiguousKey { count: 2, .. })
        ));
        assert!(matches!(
            resolve_key(&names, "ef"),
            Err(StoreError::NoSuchKey(_))
        ));
        assert!(matches!(
            resolve_key(&names, ""),
            Err(StoreError::NoSuchKey(_))
        ));
    }

    /// Host and time are vouched for by the master key: altered (with the checksum
    /// recomputed, as anyone can), they no longer verify; a version 1 file verifies nothing.
    #[test]
    fn metadata_is_authenticated_by_the_master_key() {
        let master = MasterKey::generate();
        let kf = KeyFile::create(&master, b"pw", cheap(), "nas".into(), 1_000).unwrap();
        let back = KeyFile::decode("k", &kf.encode()).unwrap();
        assert_eq!(back.metadata_verified(&master), Some(true));
        assert_eq!(back.metadata_verified(&MasterKey::generate()), Some(false));
        let mut forged = back.clone();
        forged.host = "laptop".into();
        let forged = KeyFile::decode("k", &forged.encode()).unwrap();
        assert_eq!(forged.metadata_verified(&master), Some(false));
        assert!(
            forged.unlock(b"pw").unwrap().is_some(),
            "the key itself still opens"
        );

        let v1 = KeyFileV1 {
            created: kf.created,
            host: kf.host.clone(),
            kdf: kf.kdf,
            salt: kf.salt,
            sealed_master: kf.sealed_master.clone(),
        };
        let mut bytes = encode_plain(1, &v1);
        let sum = blake3::hash(&bytes);
        bytes.extend_from_slice(sum.as_bytes());
        let old = KeyFile::decode("k", &bytes).unwrap();
        assert_eq!(old.metadata_verified(&master), None);
        assert!(old.unlock(b"pw").unwrap().is_some());
    }

    /// A key file asking for more than the bounds is damage, refused before any derivation.
    #[test]
    fn key_files_beyond_the_kdf_bounds_are_refused_unread() {
        let master = MasterKey::generate();
        for kdf in [
            KdfParams {
                memory_kib: KdfParams::MAX_MEMORY_KIB + 1,
                ..cheap()
            },
            KdfParams {
                iterations: KdfParams::MAX_ITERATIONS + 1,
                ..cheap()
            },
            KdfParams {
                parallelism: 0,
                ..cheap()
            },
        ] {
            let mut kf = KeyFile::create(&master, b"pw", cheap(), "h".into(), 0).unwrap();
            kf.kdf = kdf;
            assert!(
                matches!(
                    KeyFile::decode("k", &kf.encode()),
                    Err(StoreError::Damaged { .. })
                ),
                "{kdf:?}"
            );
        }
    }

    #[test]
    fn damage_is_not_a_wrong_password() {
        let kf = KeyFile::create(&MasterKey::generate(), b"pw", cheap(), "h".into(), 0).unwrap();
        let mut bytes = kf.encode();
        bytes[5] ^= 0x40;
        assert!(matches!(
            KeyFile::decode("k", &bytes),
            Err(StoreError::Damaged { .. })
        ));
    }
}
