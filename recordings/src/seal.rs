//! Sealed chunks: the file's constants, the AAD that binds a chunk to its
//! recording, index and flags, the key check, and XChaCha20-Poly1305 built
//! from HChaCha20 and ring's ChaCha20-Poly1305.
//! Must never: return plaintext of a chunk that failed authentication.

use chacha20::cipher::consts::U10;
use chacha20::cipher::generic_array::GenericArray;
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, UnboundKey};
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, Zeroizing};

use crate::layout::*;
use crate::{error::*, format::*, ids::*};

pub(crate) fn key_check(key: &[u8; 32], id: &str) -> String {
    let mut h = Sha256::new();
    h.update(KEY_CHECK_DOMAIN);
    h.update(key);
    h.update(id.as_bytes());
    h.finalize()[..16]
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

/// `domain ‖ SHA-256(metadata line) ‖ lp(id)`; index and flags follow per chunk.
pub(crate) fn aad_prefix(meta_line: &[u8], id: &str) -> Vec<u8> {
    let mut aad = Vec::with_capacity(AAD_DOMAIN.len() + 32 + 4 + id.len() + 9);
    aad.extend_from_slice(AAD_DOMAIN);
    aad.extend_from_slice(&Sha256::digest(meta_line));
    aad.extend_from_slice(&(id.len() as u32).to_le_bytes());
    aad.extend_from_slice(id.as_bytes());
    aad
}

pub(crate) fn chunk_aad(prefix: &[u8], index: u64, flags: u8) -> Vec<u8> {
    let mut aad = Vec::with_capacity(prefix.len() + 9);
    aad.extend_from_slice(prefix);
    aad.extend_from_slice(&index.to_le_bytes());
    aad.push(flags);
    aad
}

/// XChaCha20-Poly1305 (draft-irtf-cfrg-xchacha): HChaCha20 turns the key and
/// the first 16 nonce bytes into a subkey, then ChaCha20-Poly1305 runs with
/// nonce `0000 ‖ last 8 bytes`. Byte for byte what
/// `chacha20poly1305::XChaCha20Poly1305` computes (tested); ring's
/// ChaCha20-Poly1305 runs about twice as fast on the recording path.
pub(crate) struct ChunkCipher {
    pub(crate) key: Zeroizing<[u8; 32]>,
}

impl ChunkCipher {
    pub(crate) fn inner(&self, nonce: &[u8; NONCE_LEN]) -> Option<(LessSafeKey, Nonce)> {
        let (head, tail) = nonce.split_first_chunk::<16>()?;
        let mut derived = chacha20::hchacha::<U10>(
            GenericArray::from_slice(&self.key[..]),
            GenericArray::from_slice(head),
        );
        let key = UnboundKey::new(&CHACHA20_POLY1305, &derived).ok();
        derived.as_mut_slice().zeroize();
        let mut inner_nonce = [0u8; 12];
        inner_nonce[4..].copy_from_slice(tail);
        Some((
            LessSafeKey::new(key?),
            Nonce::assume_unique_for_key(inner_nonce),
        ))
    }

    /// Encrypts `buf` in place; `None` only if the input is beyond the cipher's limits.
    pub(crate) fn seal(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        buf: &mut [u8],
    ) -> Option<[u8; TAG_LEN]> {
        let (key, nonce) = self.inner(nonce)?;
        let tag = key
            .seal_in_place_separate_tag(nonce, Aad::from(aad), buf)
            .ok()?;
        tag.as_ref().try_into().ok()
    }

    /// Decrypts `buf` in place; `false` if authentication failed.
    pub(crate) fn open(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        buf: &mut [u8],
        tag: &[u8],
    ) -> bool {
        let Some((key, nonce)) = self.inner(nonce) else {
            return false;
        };
        let Ok(tag) = ring::aead::Tag::try_from(tag) else {
            return false;
        };
        key.open_in_place_separate_tag(nonce, Aad::from(aad), tag, buf, 0..)
            .is_ok()
    }
}

/// Splits off and parses the metadata line; returns it and its length with the newline.
pub(crate) fn parse_meta_line(bytes: &[u8]) -> Result<(MetaLine, usize), RecordingError> {
    if !bytes.starts_with(MAGIC) {
        return Err(if MAGIC.starts_with(bytes) {
            RecordingError::MetaTruncated(bytes.len())
        } else {
            RecordingError::BadMagic
        });
    }
    let window = &bytes[..bytes.len().min(MAX_META_LINE)];
    let Some(nl) = window.iter().position(|&b| b == b'\n') else {
        return Err(if bytes.len() < MAX_META_LINE {
            RecordingError::MetaTruncated(bytes.len())
        } else {
            RecordingError::MetaTooLong
        });
    };
    let line: MetaLine = serde_json::from_slice(&bytes[MAGIC.len()..nl])
        .map_err(|e| RecordingError::BadMeta(e.to_string()))?;
    if !is_recording_id(&line.meta.id) {
        return Err(RecordingError::BadId(line.meta.id));
    }
    Ok((line, nl + 1))
}

pub(crate) struct ChunkHeader {
    pub(crate) body_len: usize,
    pub(crate) index: u64,
    pub(crate) flags: u8,
    pub(crate) nonce: [u8; NONCE_LEN],
}

impl ChunkHeader {
    /// The header at the start of `b`, if `b` holds a whole one.
    pub(crate) fn parse(b: &[u8]) -> Option<ChunkHeader> {
        let (len, rest) = b.split_first_chunk::<4>()?;
        let (index, rest) = rest.split_first_chunk::<8>()?;
        let (flags, rest) = rest.split_first()?;
        let (nonce, _) = rest.split_first_chunk::<NONCE_LEN>()?;
        Some(ChunkHeader {
            body_len: u32::from_le_bytes(*len) as usize,
            index: u64::from_le_bytes(*index),
            flags: *flags,
            nonce: *nonce,
        })
    }
}

/// The rules chunk headers follow, checked without the key.
#[derive(Default)]
pub(crate) struct Framing {
    pub(crate) next_index: u64,
    /// Index of the final chunk, once seen.
    pub(crate) final_seen: Option<u64>,
}

impl Framing {
    pub(crate) fn check(&self, h: &ChunkHeader) -> Result<(), RecordingError> {
        if let Some(index) = self.final_seen {
            return Err(RecordingError::DataAfterFinal {
                index,
                bytes: (CHUNK_HEADER_LEN + h.body_len) as u64,
            });
        }
        if h.index != self.next_index {
            return Err(RecordingError::ChunkOutOfOrder {
                expected: self.next_index,
                found: h.index,
            });
        }
        if h.flags & !KNOWN_FLAGS != 0 {
            return Err(RecordingError::UnknownFlags {
                index: h.index,
                flags: h.flags,
            });
        }
        if h.body_len < TAG_LEN || h.body_len > MAX_CHUNK_BODY {
            return Err(RecordingError::BadChunkLength {
                index: h.index,
                len: h.body_len as u64,
            });
        }
        Ok(())
    }

    pub(crate) fn accept(&mut self, h: &ChunkHeader) {
        if h.flags & FLAG_FINAL != 0 {
            self.final_seen = Some(h.index);
        }
        self.next_index += 1;
    }

    /// Bytes at the end too few for a chunk header.
    pub(crate) fn trailing(&self, bytes: u64) -> Result<(), RecordingError> {
        match self.final_seen {
            Some(index) => Err(RecordingError::DataAfterFinal { index, bytes }),
            None => Ok(()),
        }
    }
}
