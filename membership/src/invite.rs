//! Invite codes: what an admin hands to an invitee out of band.
//!
//! Owns: the code's content and text form, and the hash of its one-time
//! secret that the log's `Invite` entry records.
//! Must never: put the secret itself in the log or on the server (only its
//! hash), or parse a code with trailing bytes.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use crate::card::Fingerprint;
use crate::sign;

/// Text prefix of an invite code.
pub const PREFIX: &str = "ghinv1-";
const DOMAIN_INVITE_SECRET: &str = "gatehouse/invite-secret/v1";

/// Everything an invitee needs to join: where, which org, whose key to
/// pin as the inviter's, and the one-time secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InviteCode {
    /// Server URL (`https://host:port`).
    pub server: String,
    /// SHA-256 of the server certificate to pin, if self-signed.
    pub server_pin: Option<[u8; 32]>,
    pub org: String,
    /// The fingerprint of the org owner's card (the log's genesis must match).
    pub owner: Fingerprint,
    /// The inviter's card fingerprint.
    pub inviter: Fingerprint,
    pub invite_id: [u8; 16],
    pub secret: [u8; 32],
}

/// `SHA-256(DOMAIN_INVITE_SECRET ‖ 0 ‖ invite_id ‖ secret)`.
pub fn secret_hash(invite_id: &[u8; 16], secret: &[u8; 32]) -> [u8; 32] {
    sign::tagged_hash(DOMAIN_INVITE_SECRET, &[invite_id, secret])
}

impl std::fmt::Display for InviteCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{PREFIX}{}", URL_SAFE_NO_PAD.encode(sign::encode(self)))
    }
}

impl std::str::FromStr for InviteCode {
    type Err = String;
    fn from_str(s: &str) -> Result<InviteCode, String> {
        let body = s
            .trim()
            .strip_prefix(PREFIX)
            .ok_or_else(|| format!("an invite code starts with {PREFIX}"))?;
        let bytes = URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| "the invite code is damaged (not base64)".to_string())?;
        sign::decode_exact("invite code", &bytes).map_err(|e| e.to_string())
    }
}
