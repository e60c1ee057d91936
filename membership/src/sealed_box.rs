//! Sealing a small secret to one account's X25519 agreement key: an
//! ephemeral X25519 key, the shared secret through HMAC-SHA256 (keyed by it,
//! over `domain ‖ 0x00 ‖ ephemeral ‖ recipient`) into an XChaCha20-Poly1305
//! key, and the caller's associated data. Used by org-key grants and by
//! shared-session keys; each passes its own domain.
//!
//! Owns the construction only. Must never: seal without a domain, or reuse
//! an ephemeral key or a nonce (both are fresh per call).

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::PublicKey;

/// What a seal produced besides the ciphertext.
pub struct Sealed {
    pub ephemeral: PublicKey,
    pub nonce: [u8; 24],
    pub ciphertext: Vec<u8>,
}

/// No randomness, or the AEAD refused (it does not for these sizes).
#[derive(Debug)]
pub struct SealError(pub String);

/// The wrapping key for `shared` (see the module docs).
fn wrapping_key(
    domain: &str,
    shared: &[u8; 32],
    ephemeral: &PublicKey,
    recipient: &PublicKey,
) -> Zeroizing<[u8; 32]> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(shared).expect("HMAC takes any key length");
    mac.update(domain.as_bytes());
    mac.update(&[0]);
    mac.update(ephemeral);
    mac.update(recipient);
    Zeroizing::new(mac.finalize().into_bytes().into())
}

/// A fresh ephemeral key and nonce; `aad(ephemeral)` gives the associated
/// data, which may bind the ephemeral key itself.
pub fn seal_to(
    domain: &str,
    recipient: &PublicKey,
    plaintext: &[u8],
    aad: impl FnOnce(&PublicKey) -> Vec<u8>,
) -> Result<Sealed, SealError> {
    let mut eph = Zeroizing::new([0u8; 32]);
    let mut nonce = [0u8; 24];
    getrandom::fill(eph.as_mut()).map_err(|e| SealError(e.to_string()))?;
    getrandom::fill(&mut nonce).map_err(|e| SealError(e.to_string()))?;
    let eph_secret = x25519_dalek::StaticSecret::from(*eph);
    let ephemeral = x25519_dalek::PublicKey::from(&eph_secret).to_bytes();
    let shared = eph_secret.diffie_hellman(&x25519_dalek::PublicKey::from(*recipient));
    let key = wrapping_key(domain, shared.as_bytes(), &ephemeral, recipient);
    let aad = aad(&ephemeral);
    let ciphertext = XChaCha20Poly1305::new(key.as_ref().into())
        .encrypt(
            XNonce::from_slice(&nonce),
            Payload {
                msg: plaintext,
                aad: &aad,
            },
        )
        .map_err(|_| SealError("the AEAD refused to seal".into()))?;
    Ok(Sealed {
        ephemeral,
        nonce,
        ciphertext,
    })
}

/// Opens what [`seal_to`] sealed to `recipient` (the public half of
/// `secret`); `None` for a wrong key or any changed byte.
pub fn open_from(
    domain: &str,
    secret: &[u8; 32],
    recipient: &PublicKey,
    ephemeral: &PublicKey,
    nonce: &[u8; 24],
    ciphertext: &[u8],
    aad: &[u8],
) -> Option<Zeroizing<Vec<u8>>> {
    let secret = x25519_dalek::StaticSecret::from(*secret);
    let shared = secret.diffie_hellman(&x25519_dalek::PublicKey::from(*ephemeral));
    let key = wrapping_key(domain, shared.as_bytes(), ephemeral, recipient);
    XChaCha20Poly1305::new(key.as_ref().into())
        .decrypt(
            XNonce::from_slice(nonce),
            Payload {
                msg: ciphertext,
                aad,
            },
        )
        .ok()
        .map(Zeroizing::new)
}
