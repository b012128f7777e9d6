//! Keys and authenticated encryption: XChaCha20-Poly1305 with random nonces, keyed BLAKE3 ids.

use chacha20poly1305::aead::{AeadInOut, KeyInit};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop};

use super::id::Id;

pub const NONCE_LEN: usize = 24;
pub const TAG_LEN: usize = 16;
/// Bytes a sealed message adds to its plaintext.
pub const SEAL_OVERHEAD: usize = NONCE_LEN + TAG_LEN;

/// The repository's secrets. Generated once at `init`, stored only wrapped
/// by password-derived keys in `keys/*`, zeroized when dropped.
#[derive(Clone, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
pub struct MasterKey {
    /// Encrypts every blob and every file except key files.
    pub data: [u8; 32],
    /// Keys the BLAKE3 chunk ids, so ids do not reveal known content.
    pub id: [u8; 32],
    /// Derives the chunker's gear table, so cut points do not follow a public table.
    pub chunker: [u8; 32],
}

impl MasterKey {
    pub fn generate() -> MasterKey {
        MasterKey {
            data: random_array(),
            id: random_array(),
            chunker: random_array(),
        }
    }
}

pub fn random_array<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    // The OS random source failing is not a recoverable condition for a
    // program that must generate keys and nonces.
    getrandom::fill(&mut out).expect("the operating system's random source failed");
    out
}

/// Sealing and opening with the data key, plus chunk ids with the id key.
/// Cheap to share between threads: the cipher holds only the expanded key.
#[derive(Clone)]
pub struct Crypto {
    cipher: XChaCha20Poly1305,
    id_key: [u8; 32],
}

impl Drop for Crypto {
    fn drop(&mut self) {
        self.id_key.zeroize();
    }
}

impl Crypto {
    pub fn new(master: &MasterKey) -> Crypto {
        Crypto {
            cipher: cipher_for(&master.data),
            id_key: master.id,
        }
    }

    /// A chunk's id: BLAKE3 keyed with the repository's id key.
    pub fn chunk_id(&self, plaintext: &[u8]) -> Id {
        Id(*blake3::keyed_hash(&self.id_key, plaintext).as_bytes())
    }

    /// Encrypts `buf` in place into `nonce || ciphertext || tag`, binding `aad`.
    pub fn seal(&self, aad: &[u8], mut buf: Vec<u8>) -> Vec<u8> {
        seal_with(&self.cipher, aad, &mut buf);
        buf
    }

    /// Reverses [`Crypto::seal`]; `None` when the bytes or `aad` are not what was sealed.
    pub fn open(&self, aad: &[u8], sealed: &[u8]) -> Option<Vec<u8>> {
        open_with(&self.cipher, aad, sealed)
    }
}

/// The cipher copies the key in; the copy made on the way is wiped here.
/// (The cipher's own copy is wiped on drop only with chacha20poly1305's
/// `zeroize` feature.)
fn cipher_for(key: &[u8; 32]) -> XChaCha20Poly1305 {
    let mut key = Key::from(*key);
    let cipher = XChaCha20Poly1305::new(&key);
    key[..].zeroize();
    cipher
}

/// Seals with a one-off key (the password-derived key that wraps the master key).
pub fn seal_with_key(key: &[u8; 32], aad: &[u8], mut buf: Vec<u8>) -> Vec<u8> {
    let cipher = cipher_for(key);
    seal_with(&cipher, aad, &mut buf);
    buf
}

pub fn open_with_key(key: &[u8; 32], aad: &[u8], sealed: &[u8]) -> Option<Vec<u8>> {
    let cipher = cipher_for(key);
    open_with(&cipher, aad, sealed)
}

fn seal_with(cipher: &XChaCha20Poly1305, aad: &[u8], buf: &mut Vec<u8>) {
    // A random 192-bit nonce never repeats in practice, so no counter state
    // has to survive crashes or be shared between concurrent writers.
    let nonce_bytes: [u8; NONCE_LEN] = random_array();
    let nonce = XNonce::from(nonce_bytes);
    cipher
        .encrypt_in_place(&nonce, aad, buf)
        .expect("XChaCha20-Poly1305 accepts messages of any size rbk writes");
    buf.splice(0..0, nonce_bytes);
}

fn open_with(cipher: &XChaCha20Poly1305, aad: &[u8], sealed: &[u8]) -> Option<Vec<u8>> {
    if sealed.len() < SEAL_OVERHEAD {
        return None;
    }
    let (nonce_bytes, body) = sealed.split_at(NONCE_LEN);
    let nonce = XNonce::try_from(nonce_bytes).ok()?;
    let mut buf = body.to_vec();
    cipher.decrypt_in_place(&nonce, aad, &mut buf).ok()?;
    Some(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_round_trip_and_aad_binding() {
        let key = MasterKey::generate();
        let c = Crypto::new(&key);
        let sealed = c.seal(b"a", b"hello".to_vec());
        assert_eq!(sealed.len(), 5 + SEAL_OVERHEAD);
        assert_eq!(c.open(b"a", &sealed).as_deref(), Some(&b"hello"[..]));
        assert!(c.open(b"b", &sealed).is_none());
        let mut flipped = sealed.clone();
        flipped[30] ^= 1;
        assert!(c.open(b"a", &flipped).is_none());
        assert!(c.open(b"a", &sealed[..10]).is_none());
    }

    #[test]
    fn chunk_ids_depend_on_the_key() {
        let a = Crypto::new(&MasterKey::generate());
        let b = Crypto::new(&MasterKey::generate());
        assert_ne!(a.chunk_id(b"x"), b.chunk_id(b"x"));
        assert_eq!(a.chunk_id(b"x"), a.chunk_id(b"x"));
    }
}
