//! Device authentication: the body a device signs (through its broker) to
//! answer a sync server's challenge.
//!
//! Owns: [`AuthChallenge`] and its signature under `DOMAIN_AUTH`.
//! Must never: sign a challenge without the server id and the device name in
//! it (a signature for one server or device must not open another).

use serde::{Deserialize, Serialize};

use crate::PublicKey;
use crate::sign::{self, DOMAIN_AUTH};

/// What the account's identity key signs to sign a device in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthChallenge {
    /// The server's id (`GET /v1/info`).
    pub server: String,
    pub account: String,
    pub device: String,
    /// The server's random nonce (32 bytes).
    pub nonce: Vec<u8>,
    /// The server's clock when it issued the challenge.
    pub time_ms: u64,
}

impl AuthChallenge {
    /// 64-byte Ed25519 signature by the identity key.
    pub fn sign(&self, identity_seed: &[u8; 32]) -> Vec<u8> {
        let key = ed25519_dalek::SigningKey::from_bytes(identity_seed);
        sign::sign(&key, DOMAIN_AUTH, self)
    }

    pub fn verify(&self, identity: &PublicKey, signature: &[u8]) -> bool {
        sign::verify(identity, DOMAIN_AUTH, self, signature)
    }
}
