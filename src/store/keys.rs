//! Key files: the master key wrapped by a password-derived key (Argon2id), several per repository.
//!
//! Layout of `keys/<id>` (not encrypted; the only such file):
//! `u16 LE version || postcard(KeyFile) || BLAKE3(everything before)`.
//! The trailing hash tells a damaged key file apart from a wrong password.

use argon2::{Algorithm, Argon2, Params, Version};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::backend::Backend;
use super::crypto::{MasterKey, SEAL_OVERHEAD, open_with_key, random_array, seal_with_key};
use super::error::{Result, StoreError};
use super::format::{FileKind, decode_plain, encode_plain};

pub const KEY_FILE_VERSION: u16 = 1;
const MASTER_AAD: &[u8] = b"rbk:master-key";
/// Room for `postcard(MasterKey)` (96 bytes: three arrays, no length prefixes).
const MASTER_PLAIN_MAX: usize = 128;

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
    /// Hostile key files must not make rbk allocate without bound.
    const MAX_MEMORY_KIB: u32 = 4 * 1024 * 1024;
    const MAX_ITERATIONS: u32 = 64;

    fn derive(&self, password: &[u8], salt: &[u8]) -> Result<Zeroizing<[u8; 32]>> {
        if self.memory_kib > Self::MAX_MEMORY_KIB
            || self.iterations > Self::MAX_ITERATIONS
            || self.parallelism > 16
        {
            return Err(StoreError::Invalid(format!(
                "key derivation parameters are out of range: {self:?}"
            )));
        }
        let params = Params::new(self.memory_kib, self.iterations, self.parallelism, Some(32))
            .map_err(|e| StoreError::Invalid(format!("key derivation parameters {self:?}: {e}")))?;
        let mut out = Zeroizing::new([0u8; 32]);
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password_into(password, salt, out.as_mut())
            .map_err(|e| StoreError::Invalid(format!("key derivation failed: {e}")))?;
        Ok(out)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeyFile {
    /// Seconds since the Unix epoch.
    pub created: i64,
    pub host: String,
    pub kdf: KdfParams,
    pub salt: [u8; 16],
    /// `seal(argon2id(password, salt), aad = "rbk:master-key", postcard(MasterKey))`.
    pub sealed_master: Vec<u8>,
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
        Ok(KeyFile {
            created,
            host,
            kdf,
            salt,
            sealed_master,
        })
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

    pub fn encode(&self) -> Vec<u8> {
        let mut out = encode_plain(KEY_FILE_VERSION, self);
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
        decode_plain(&file, KEY_FILE_VERSION, body)
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
