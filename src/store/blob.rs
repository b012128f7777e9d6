//! One chunk as stored: compressed when that helps, padded, sealed with its id as associated data.
//!
//! Sealed plaintext: `u8 codec (0 raw, 1 zstd) || u32 LE payload length || payload || zero padding`
//! to a multiple of the config's `pad_to`. Binding the id as associated data
//! means a blob cannot be swapped for another blob, even by someone who can
//! write to the repository.

use std::cell::RefCell;

use serde::{Deserialize, Serialize};

use super::crypto::Crypto;
use super::id::Id;

const CODEC_RAW: u8 = 0;
const CODEC_ZSTD: u8 = 1;
/// No blob rbk writes expands beyond this; anything claiming more is refused
/// before allocation.
pub const MAX_BLOB_PLAINTEXT: usize = 32 * 1024 * 1024;

/// What a blob holds: stream data, or a list of the chunk ids of a part.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum BlobKind {
    Data,
    List,
}

/// Compresses and seals chunks; opens and verifies them. Shared by all threads.
#[derive(Clone)]
pub struct BlobCodec {
    crypto: Crypto,
    level: i32,
    pad_to: usize,
}

thread_local! {
    // zstd contexts are expensive to create and reusable: one per thread.
    static COMPRESSOR: RefCell<Option<(i32, zstd::bulk::Compressor<'static>)>> = const { RefCell::new(None) };
    static DECOMPRESSOR: RefCell<Option<zstd::bulk::Decompressor<'static>>> = const { RefCell::new(None) };
}

impl BlobCodec {
    pub fn new(crypto: Crypto, level: i32, pad_to: u32) -> BlobCodec {
        BlobCodec {
            crypto,
            level,
            pad_to: pad_to.max(1) as usize,
        }
    }

    pub fn id_of(&self, plaintext: &[u8]) -> Id {
        self.crypto.chunk_id(plaintext)
    }

    /// The sealed bytes of a chunk whose id is `id`.
    pub fn seal(&self, id: &Id, data: &[u8]) -> Vec<u8> {
        let compressed = compress(self.level, data);
        let (codec, payload) = match &compressed {
            Some(c) if c.len() < data.len() => (CODEC_ZSTD, c.as_slice()),
            _ => (CODEC_RAW, data),
        };
        self.seal_framed(id, codec, payload)
    }

    fn seal_framed(&self, id: &Id, codec: u8, payload: &[u8]) -> Vec<u8> {
        let unpadded = 5 + payload.len();
        let padded = unpadded.div_ceil(self.pad_to) * self.pad_to;
        let mut plain = Vec::with_capacity(padded + super::crypto::SEAL_OVERHEAD);
        plain.push(codec);
        plain.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        plain.extend_from_slice(payload);
        plain.resize(padded, 0);
        self.crypto.seal(&id.0, plain)
    }

    /// Opens a sealed blob and checks that its content hashes to `id`.
    /// The error says what is wrong, for a message that names the blob.
    pub fn open(&self, id: &Id, sealed: &[u8]) -> Result<Vec<u8>, String> {
        let data = self.open_authenticated(id, sealed)?;
        if self.crypto.chunk_id(&data) != *id {
            return Err("content does not match its id".into());
        }
        Ok(data)
    }

    /// Checks a sealed blob's authentication and framing without
    /// decompressing it: enough to copy it verbatim (prune's repack), since
    /// the AEAD with the id as associated data proves these are the bytes a
    /// key holder sealed for this id.
    pub fn verify_sealed(&self, id: &Id, sealed: &[u8]) -> Result<(), String> {
        let plain = self.open_framed(id, sealed)?;
        match unframe(&plain)?.0 {
            CODEC_RAW | CODEC_ZSTD => Ok(()),
            other => Err(format!("unknown codec {other}")),
        }
    }

    /// Opens a sealed blob without recomputing its id. The AEAD, with the id
    /// as associated data, already proves a key holder sealed these bytes
    /// for this id; restore uses this and verifies the whole stream's hash
    /// instead, which saves a hash pass over every restored byte.
    pub fn open_authenticated(&self, id: &Id, sealed: &[u8]) -> Result<Vec<u8>, String> {
        let plain = self.open_framed(id, sealed)?;
        let (codec, payload) = unframe(&plain)?;
        expand(codec, payload)
    }

    /// A blob of another repository (`from` opens it) sealed for this one, as `rbk copy`
    /// moves it: the content must hash to `id` under this repository's id key (the two
    /// share their chunking secrets, or the ids would not be this repository's), and the
    /// compressed payload is sealed again as it is, not compressed a second time.
    pub fn reseal_from(&self, from: &BlobCodec, id: &Id, sealed: &[u8]) -> Result<Vec<u8>, String> {
        let plain = from.open_framed(id, sealed)?;
        let (codec, payload) = unframe(&plain)?;
        if self.id_of(&expand(codec, payload)?) != *id {
            return Err("content does not match its id".into());
        }
        Ok(self.seal_framed(id, codec, payload))
    }

    fn open_framed(&self, id: &Id, sealed: &[u8]) -> Result<Vec<u8>, String> {
        self.crypto
            .open(&id.0, sealed)
            .ok_or_else(|| "authentication failed (modified, truncated or swapped)".into())
    }
}

/// The codec byte and the payload of an opened blob.
fn unframe(plain: &[u8]) -> Result<(u8, &[u8]), String> {
    if plain.len() < 5 {
        return Err("too short".into());
    }
    let len = u32::from_le_bytes([plain[1], plain[2], plain[3], plain[4]]) as usize;
    let payload = plain
        .get(5..5 + len)
        .ok_or("payload length exceeds the blob")?;
    Ok((plain[0], payload))
}

fn expand(codec: u8, payload: &[u8]) -> Result<Vec<u8>, String> {
    match codec {
        CODEC_RAW => Ok(payload.to_vec()),
        CODEC_ZSTD => decompress(payload),
        other => Err(format!("unknown codec {other}")),
    }
}

fn compress(level: i32, data: &[u8]) -> Option<Vec<u8>> {
    COMPRESSOR.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.as_ref().is_none_or(|(l, _)| *l != level) {
            *slot = Some((level, zstd::bulk::Compressor::new(level).ok()?));
        }
        let (_, c) = slot.as_mut()?;
        c.compress(data).ok()
    })
}

fn decompress(payload: &[u8]) -> Result<Vec<u8>, String> {
    // The frame header states the content size; bound it before allocating.
    let size = zstd::zstd_safe::get_frame_content_size(payload)
        .map_err(|_| "zstd frame header is invalid".to_string())?
        .ok_or("zstd frame does not state its size")?;
    if size > MAX_BLOB_PLAINTEXT as u64 {
        return Err(format!(
            "claims {size} bytes, more than any blob rbk writes"
        ));
    }
    DECOMPRESSOR.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.is_none() {
            *slot = Some(zstd::bulk::Decompressor::new().map_err(|e| e.to_string())?);
        }
        let d = slot.as_mut().ok_or("no decompressor")?;
        let out = d
            .decompress(payload, size as usize)
            .map_err(|e| format!("zstd: {e}"))?;
        if out.len() as u64 != size {
            return Err("decompressed size differs from the frame header".into());
        }
        Ok(out)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::crypto::MasterKey;

    #[test]
    fn round_trip_compressible_and_not() {
        let codec = BlobCodec::new(Crypto::new(&MasterKey::generate()), 3, 64);
        for data in [
            vec![],
            vec![0u8; 100_000],
            (0..50_000u32)
                .map(|i| i.wrapping_mul(2654435761) as u8 >> 1)
                .collect::<Vec<u8>>(),
        ] {
            let id = codec.id_of(&data);
            let sealed = codec.seal(&id, &data);
            assert_eq!((sealed.len() - super::super::crypto::SEAL_OVERHEAD) % 64, 0);
            assert_eq!(codec.open(&id, &sealed).unwrap(), data);
            let other = codec.id_of(b"other");
            assert!(codec.open(&other, &sealed).is_err());
        }
    }

    #[test]
    fn reseal_needs_the_same_id_key_and_keeps_the_payload() {
        let source = MasterKey::generate();
        let from = BlobCodec::new(Crypto::new(&source), 3, 64);
        let sharing = MasterKey {
            data: MasterKey::generate().data,
            ..source.clone()
        };
        let to = BlobCodec::new(Crypto::new(&sharing), 19, 64);
        let data = vec![7u8; 100_000];
        let id = from.id_of(&data);
        let sealed = from.seal(&id, &data);
        let moved = to.reseal_from(&from, &id, &sealed).unwrap();
        assert_eq!(to.open(&id, &moved).unwrap(), data);
        assert_eq!(
            moved.len(),
            sealed.len(),
            "the level-3 payload, not a new one"
        );
        assert!(
            from.open(&id, &moved).is_err(),
            "sealed with the new data key"
        );
        let stranger = BlobCodec::new(Crypto::new(&MasterKey::generate()), 3, 64);
        assert!(stranger.reseal_from(&from, &id, &sealed).is_err());
        let mut flipped = sealed.clone();
        flipped[30] ^= 1;
        assert!(to.reseal_from(&from, &id, &flipped).is_err());
    }
}
