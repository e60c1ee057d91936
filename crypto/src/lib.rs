//! Field and key-wrapping cryptography (XChaCha20-Poly1305, Argon2id).
//!
//! Owns the sealed-field format and its associated data, key wrapping under
//! the account key, and passphrase derivation. Pure functions over byte
//! slices: keys are passed in by reference from secret memory and never
//! copied into owned values here.
//! Must never: return plaintext on authentication failure, reuse a nonce
//! (every nonce is 24 random bytes), or accept a ciphertext whose associated
//! data differs from the place it is opened for.
//!
//! Sealed field layout (version 1):
//! `0x01 ‖ key_id (8) ‖ nonce (24) ‖ ciphertext ‖ tag (16)`, with associated
//! data `"gatehouse/field/v1" ‖ version ‖ key_id ‖ lp(scope) ‖ lp(kind) ‖
//! lp(record id) ‖ lp(field) ‖ lp(binding)`, where `lp` is a u32-length-prefixed string.

use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::{Key, Tag, XChaCha20Poly1305, XNonce};
use gatehouse_ipc::broker::{FieldAddress, KeyScope, OpenFailure};
use zeroize::Zeroizing;

pub const FIELD_VERSION: u8 = 1;
pub const KEY_ID_LEN: usize = 8;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;
const HEADER_LEN: usize = 1 + KEY_ID_LEN + NONCE_LEN;

/// A key identifier: public, random, names which key sealed a ciphertext.
pub type KeyId = [u8; KEY_ID_LEN];

pub use gatehouse_ipc::os::{fill_random, hex, random_bytes};

pub mod two_secret;

fn cipher(key: &[u8; 32]) -> XChaCha20Poly1305 {
    XChaCha20Poly1305::new(Key::from_slice(key))
}

fn push_lp(aad: &mut Vec<u8>, part: &[u8]) {
    aad.extend_from_slice(&(part.len() as u32).to_le_bytes());
    aad.extend_from_slice(part);
}

fn field_aad(addr: &FieldAddress, key_id: &KeyId) -> Vec<u8> {
    let mut aad = Vec::with_capacity(96 + addr.binding.len());
    aad.extend_from_slice(b"gatehouse/field/v1");
    aad.push(FIELD_VERSION);
    aad.extend_from_slice(key_id);
    let scope = match &addr.scope {
        KeyScope::Org(id) => format!("org:{id}"),
        KeyScope::Private => "private".to_string(),
    };
    push_lp(&mut aad, scope.as_bytes());
    push_lp(&mut aad, addr.record_kind.as_bytes());
    push_lp(&mut aad, addr.record_id.as_bytes());
    push_lp(&mut aad, addr.field.as_bytes());
    push_lp(&mut aad, &addr.binding);
    aad
}

/// Seals `plaintext` for `addr` under `key`.
pub fn seal_field(
    key: &[u8; 32],
    key_id: &KeyId,
    addr: &FieldAddress,
    plaintext: &[u8],
) -> Vec<u8> {
    let nonce: [u8; NONCE_LEN] = random_bytes();
    let mut out = Vec::with_capacity(HEADER_LEN + plaintext.len() + TAG_LEN);
    out.push(FIELD_VERSION);
    out.extend_from_slice(key_id);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(plaintext);
    let aad = field_aad(addr, key_id);
    let tag = cipher(key)
        .encrypt_in_place_detached(XNonce::from_slice(&nonce), &aad, &mut out[HEADER_LEN..])
        // Only fails for inputs beyond 256 GiB, which a frame cannot carry.
        .expect("plaintext too long for XChaCha20-Poly1305");
    out.extend_from_slice(&tag);
    out
}

/// The key id a sealed field names, after checking its framing.
pub fn sealed_key_id(sealed: &[u8]) -> Result<KeyId, OpenFailure> {
    if sealed.len() < HEADER_LEN + TAG_LEN {
        return Err(OpenFailure::Truncated);
    }
    if sealed[0] != FIELD_VERSION {
        return Err(OpenFailure::UnknownVersion);
    }
    let mut id = [0u8; KEY_ID_LEN];
    id.copy_from_slice(&sealed[1..1 + KEY_ID_LEN]);
    Ok(id)
}

/// Opens a sealed field for `addr`. The plaintext buffer is zeroized on drop.
pub fn open_field(
    key: &[u8; 32],
    addr: &FieldAddress,
    sealed: &[u8],
) -> Result<Zeroizing<Vec<u8>>, OpenFailure> {
    let key_id = sealed_key_id(sealed)?;
    let nonce = &sealed[1 + KEY_ID_LEN..HEADER_LEN];
    let (body, tag) = sealed[HEADER_LEN..].split_at(sealed.len() - HEADER_LEN - TAG_LEN);
    let mut buf = Zeroizing::new(body.to_vec());
    let aad = field_aad(addr, &key_id);
    cipher(key)
        .decrypt_in_place_detached(
            XNonce::from_slice(nonce),
            &aad,
            &mut buf,
            Tag::from_slice(tag),
        )
        .map_err(|_| OpenFailure::Tampered)?;
    Ok(buf)
}

/// Wraps a 32-byte key under `wrapping_key`, bound to `purpose` (e.g. `org:ID`).
pub fn wrap_key(wrapping_key: &[u8; 32], purpose: &str, key: &[u8]) -> Vec<u8> {
    let nonce: [u8; NONCE_LEN] = random_bytes();
    let mut out = Vec::with_capacity(NONCE_LEN + key.len() + TAG_LEN);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(key);
    let aad = [b"gatehouse/wrap/v1/".as_slice(), purpose.as_bytes()].concat();
    let tag = cipher(wrapping_key)
        .encrypt_in_place_detached(XNonce::from_slice(&nonce), &aad, &mut out[NONCE_LEN..])
        .expect("key wrap input is small");
    out.extend_from_slice(&tag);
    out
}

/// Unwraps into `out` (which should be secret memory) in place.
/// Returns false if the wrapping key is wrong or the blob was altered.
pub fn unwrap_key_into(
    wrapping_key: &[u8; 32],
    purpose: &str,
    wrapped: &[u8],
    out: &mut [u8],
) -> bool {
    if wrapped.len() != NONCE_LEN + out.len() + TAG_LEN {
        return false;
    }
    let (nonce, rest) = wrapped.split_at(NONCE_LEN);
    let (body, tag) = rest.split_at(out.len());
    out.copy_from_slice(body);
    let aad = [b"gatehouse/wrap/v1/".as_slice(), purpose.as_bytes()].concat();
    let ok = cipher(wrapping_key)
        .decrypt_in_place_detached(XNonce::from_slice(nonce), &aad, out, Tag::from_slice(tag))
        .is_ok();
    if !ok {
        zeroize::Zeroize::zeroize(out);
    }
    ok
}

/// Argon2id parameters, stored beside the salt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct KdfParams {
    pub m_cost_kib: u32,
    pub t_cost: u32,
    pub p_cost: u32,
}

impl KdfParams {
    /// OWASP's second recommended Argon2id setting (19 MiB, 2 passes, 1 lane).
    pub const DEFAULT: KdfParams = KdfParams {
        m_cost_kib: 19 * 1024,
        t_cost: 2,
        p_cost: 1,
    };
}

/// Derives the account key from a passphrase directly into `out`.
pub fn derive_account_key(
    params: KdfParams,
    passphrase: &[u8],
    salt: &[u8],
    out: &mut [u8],
) -> Result<(), String> {
    let p = argon2::Params::new(
        params.m_cost_kib,
        params.t_cost,
        params.p_cost,
        Some(out.len()),
    )
    .map_err(|e| format!("bad Argon2 parameters: {e}"))?;
    argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, p)
        .hash_password_into(passphrase, salt, out)
        .map_err(|e| format!("Argon2id failed: {e}"))
}

/// HMAC-SHA256, used to derive per-purpose subkeys.
pub fn hmac_sha256(key: &[u8], msg: &[u8]) -> [u8; 32] {
    use hmac::{Hmac, Mac};
    let mut mac =
        <Hmac<sha2::Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(msg);
    mac.finalize().into_bytes().into()
}

/// The MAC of a record's content under its scope key.
pub fn record_mac(key: &[u8; 32], item: &gatehouse_ipc::broker::MacItem) -> [u8; 32] {
    let subkey = zeroize::Zeroizing::new(hmac_sha256(key, b"gatehouse/record-mac/v1"));
    let scope = match &item.scope {
        KeyScope::Org(id) => format!("org:{id}"),
        KeyScope::Private => "private".to_string(),
    };
    let mut msg = Vec::with_capacity(64 + item.content.len());
    push_lp(&mut msg, scope.as_bytes());
    push_lp(&mut msg, item.record_kind.as_bytes());
    push_lp(&mut msg, item.record_id.as_bytes());
    push_lp(&mut msg, &item.content);
    hmac_sha256(&subkey[..], &msg)
}

/// Constant-time comparison of two MACs.
pub fn mac_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(record: &str, field: &str, org: &str) -> FieldAddress {
        FieldAddress {
            scope: KeyScope::Org(org.into()),
            record_kind: "host".into(),
            record_id: record.into(),
            field: field.into(),
            binding: b"10.0.0.1:22".to_vec(),
        }
    }

    #[test]
    fn seal_open_roundtrip_and_binding() {
        let key = random_bytes::<32>();
        let id = random_bytes::<8>();
        let a = addr("r1", "ssh.password", "o1");
        let sealed = seal_field(&key, &id, &a, b"s3cret");
        assert_eq!(&*open_field(&key, &a, &sealed).unwrap(), b"s3cret");
        for moved in [
            addr("r2", "ssh.password", "o1"),
            addr("r1", "ssh.user", "o1"),
            addr("r1", "ssh.password", "o2"),
        ] {
            assert_eq!(
                open_field(&key, &moved, &sealed),
                Err(OpenFailure::Tampered)
            );
        }
        let mut rebound = a.clone();
        rebound.binding = b"10.6.6.6:22".to_vec();
        assert_eq!(
            open_field(&key, &rebound, &sealed),
            Err(OpenFailure::Tampered)
        );
        for i in 0..sealed.len() {
            let mut flipped = sealed.clone();
            flipped[i] ^= 0x01;
            assert!(
                open_field(&key, &a, &flipped).is_err(),
                "bit flip at byte {i} went unnoticed"
            );
        }
        assert_eq!(
            open_field(&key, &a, &sealed[..20]),
            Err(OpenFailure::Truncated)
        );
    }

    #[test]
    fn record_mac_binds_scope_kind_id_and_content() {
        use gatehouse_ipc::broker::MacItem;
        let key = random_bytes::<32>();
        let item = MacItem {
            scope: KeyScope::Org("o".into()),
            record_kind: "host".into(),
            record_id: "h".into(),
            content: b"a=1".to_vec(),
        };
        let m = record_mac(&key, &item);
        assert!(mac_eq(&m, &record_mac(&key, &item)));
        let variants = [
            MacItem {
                content: b"a=2".to_vec(),
                ..item.clone()
            },
            MacItem {
                record_id: "h2".into(),
                ..item.clone()
            },
            MacItem {
                record_kind: "memory".into(),
                ..item.clone()
            },
            MacItem {
                scope: KeyScope::Private,
                ..item.clone()
            },
        ];
        for v in variants {
            assert!(!mac_eq(&m, &record_mac(&key, &v)), "{v:?}");
        }
        assert!(!mac_eq(&m, &record_mac(&random_bytes::<32>(), &item)));
        assert!(!mac_eq(&m, &m[..31]));
    }

    #[test]
    fn wrap_unwrap() {
        let wk = random_bytes::<32>();
        let k = random_bytes::<32>();
        let w = wrap_key(&wk, "org:x", &k);
        let mut out = [0u8; 32];
        assert!(unwrap_key_into(&wk, "org:x", &w, &mut out));
        assert_eq!(out, k);
        assert!(!unwrap_key_into(&wk, "org:y", &w, &mut out));
        assert_eq!(out, [0u8; 32], "failed unwrap must not leave bytes behind");
    }
}
