//! HTTP request and response bodies, endpoint paths and error codes.
//!
//! Owns: the body of every endpoint (the table in /work/brief/sync-protocol.md
//! and docs/sync.md lists them) and [`ErrorCode`] with its HTTP status.
//! Must never: carry a secret the server could use: grants, bundles, sealed
//! fields and relay frames are ciphertexts the server stores and returns.
//!
//! Authentication: every endpoint except `info`, `accounts` (register),
//! `auth/*` and `bundle/params`, `bundle/fetch` needs
//! `Authorization: Bearer TOKEN` from [`Session`].

use serde::{Deserialize, Serialize};

use crate::bytes::{Bytes, Hash32};
use crate::ids::{AccountId, ChannelId, KeyId, OrgId};
use crate::membership::{LogEntry, Role};
use crate::record::RecordEnvelope;

// ---------------------------------------------------------------- errors

/// Every error the server answers, as JSON with the matching HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// Malformed body, bad id, bad query (400).
    BadRequest,
    /// No, expired or unknown session token; challenge failed (401).
    Unauthorized,
    /// Authenticated but the role does not allow it (viewer writes, member manages, …) (403).
    Forbidden,
    /// The account is not (or no longer) a member of the org (403).
    NotMember,
    /// No such account, org, record, channel, bundle (404).
    NotFound,
    /// Compare-and-swap failed, or the id already exists (409).
    Conflict,
    /// A size or count limit (413); the message names it.
    TooLarge,
    /// Too many wrong tries (429); `retry_after_ms` says when to try again.
    RateLimited,
    /// A membership-log entry the log does not allow (422); the message says which rule.
    LogRejected,
    /// A signature that does not verify against the key it names (422).
    BadSignature,
    /// An expired challenge, invite or session (410).
    Expired,
    /// The server could not do it (500); nothing was applied.
    Internal,
}

impl ErrorCode {
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::BadRequest => 400,
            ErrorCode::Unauthorized => 401,
            ErrorCode::Forbidden | ErrorCode::NotMember => 403,
            ErrorCode::NotFound => 404,
            ErrorCode::Conflict => 409,
            ErrorCode::Expired => 410,
            ErrorCode::TooLarge => 413,
            ErrorCode::LogRejected | ErrorCode::BadSignature => 422,
            ErrorCode::RateLimited => 429,
            ErrorCode::Internal => 500,
        }
    }
}

/// The body of every error answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{code:?}: {message}")]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_ms: Option<u64>,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            message: message.into(),
            retry_after_ms: None,
        }
    }
}

// ---------------------------------------------------------------- server info

/// `GET /v1/info`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerInfo {
    pub versions: Vec<u32>,
    /// Random per database (every instance on one database says the same);
    /// bound into challenge and registration signatures.
    pub server_id: String,
    pub max_record_bytes: u64,
    pub max_push_records: u64,
    pub max_body_bytes: u64,
}

// ---------------------------------------------------------------- accounts and devices

/// `POST /v1/accounts` (no session): creates an account whose first device key
/// is its identity key. `signature` by the identity key over
/// [`crate::signing::register_bytes`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegisterAccount {
    pub account: AccountId,
    /// Ed25519 public key (32 bytes).
    pub identity_key: Bytes,
    /// X25519 public key (32 bytes).
    pub agreement_key: Bytes,
    pub signature: Bytes,
}

/// `GET /v1/accounts/{account}` (session): an account's public keys, to wrap
/// grants to it and to show fingerprints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountKeys {
    pub account: AccountId,
    pub identity_key: Bytes,
    pub agreement_key: Bytes,
    pub identity_fingerprint: String,
    pub devices: Vec<DeviceInfo>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceInfo {
    pub key_id: KeyId,
    pub label: String,
    pub added_ms: u64,
}

/// `POST /v1/devices` (session): adds an Ed25519 device key to the session's
/// account; `signature` by the NEW key over [`crate::signing::device_bytes`].
/// `DELETE /v1/devices/{key_id}` removes one (and ends its sessions).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddDevice {
    pub device_key: Bytes,
    pub label: String,
    pub signature: Bytes,
}

// ---------------------------------------------------------------- device challenge

/// `POST /v1/auth/challenge` (no session).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChallengeRequest {
    pub account: AccountId,
    /// Which registered device key will answer.
    pub key_id: KeyId,
}

/// The answer to [`ChallengeRequest`]; single use, valid until `expires_ms`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Challenge {
    pub challenge_id: String,
    pub server_id: String,
    /// 32 random bytes.
    pub nonce: Bytes,
    pub expires_ms: u64,
}

/// `POST /v1/auth/response` (no session): `signature` over
/// [`crate::signing::auth_bytes`] by the key `key_id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChallengeResponse {
    pub challenge_id: String,
    pub account: AccountId,
    pub key_id: KeyId,
    pub signature: Bytes,
}

/// A session: `Authorization: Bearer {token}` until `expires_ms`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    pub token: String,
    pub account: AccountId,
    pub expires_ms: u64,
}

// ---------------------------------------------------------------- orgs and the membership log

/// `POST /v1/orgs` (session): creates an org with its first log entry (`Create`,
/// signed by the session's account as owner).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateOrg {
    pub genesis: LogEntry,
}

/// `GET /v1/orgs` (session): the orgs the account is a member of, or pending in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrgList {
    pub orgs: Vec<OrgSummary>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrgSummary {
    pub org: OrgId,
    /// `None` while pending confirmation.
    pub role: Option<Role>,
    pub log_head: u64,
    pub records_head: u64,
}

/// `POST /v1/orgs/{org}/log` (session, owner/admin): appends one entry. The
/// server checks seq, hash link, signer role and signature with
/// [`crate::Roster::apply`] against the log it holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppendLog {
    pub entry: LogEntry,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogAppended {
    pub seq: u64,
    pub hash: Hash32,
}

/// `GET /v1/orgs/{org}/log?after=N` (session, member, pending joiner, or
/// removed member — who needs to see their removal): entries with seq > N, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogPage {
    pub entries: Vec<LogEntry>,
    pub head_seq: u64,
}

/// `POST /v1/orgs/{org}/join` (session): shows an invite's one-time secret;
/// the account becomes a pending member (not yet in the log). The server
/// compares [`crate::signing::invite_secret_hash`] with the `Invite` entry,
/// refuses an expired or used invite, and marks it used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinOrg {
    pub invite_id: String,
    pub secret: Bytes,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Joined {
    pub org: OrgId,
    pub role: Role,
    /// The owner's identity-key fingerprint as the log's `Create` has it (the
    /// client compares it with the one pinned in the invite code).
    pub owner_fingerprint: String,
}

/// `GET /v1/orgs/{org}/pending` (session, owner/admin).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingList {
    pub pending: Vec<PendingMember>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingMember {
    pub account: AccountId,
    pub invite_id: String,
    pub role: Role,
    pub identity_key: Bytes,
    pub agreement_key: Bytes,
    /// [`crate::fingerprint`] of `identity_key`, for `org confirm --fingerprint`.
    pub fingerprint: String,
    pub joined_ms: u64,
}

// ---------------------------------------------------------------- key grants

/// An org key generation wrapped to one member's X25519 key and signed by
/// the granter's identity key over [`crate::signing::grant_bytes`]. `wrapped`
/// is opaque to the server (format: /work/brief/sync-keys.md).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyGrant {
    pub org: OrgId,
    pub generation: u32,
    pub recipient: AccountId,
    /// Key id of the recipient's X25519 agreement key.
    pub recipient_key_id: KeyId,
    pub granter: AccountId,
    /// Key id of the granter's Ed25519 identity key.
    pub granter_key_id: KeyId,
    /// The membership-log head the granter saw (a grant is checked against the
    /// log up to here: the recipient was a member and the generation current).
    pub log_seq: u64,
    pub wrapped: Bytes,
    pub signature: Bytes,
}

/// `POST /v1/orgs/{org}/grants` (session, owner/admin): stores grants; the
/// recipient must be a member per the log; one grant per (generation, recipient).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PostGrants {
    pub grants: Vec<KeyGrant>,
}

/// `GET /v1/orgs/{org}/grants` (session, member): the grants addressed to the
/// session's account, every generation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantList {
    pub grants: Vec<KeyGrant>,
}

// ---------------------------------------------------------------- records

/// `POST /v1/spaces/{space}/records` (session; writer role for an org space,
/// the owner account for a private space). Each record is compare-and-swapped
/// on its own (`base_revision` must equal the stored revision, 0 = new); the
/// accepted ones get the next sequence numbers of the space, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushRecords {
    pub records: Vec<RecordEnvelope>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushResponse {
    /// One per pushed record, same order.
    pub results: Vec<PushResult>,
    pub head_seq: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum PushResult {
    Accepted {
        seq: u64,
    },
    /// The stored revision is not `base_revision`: pull and merge.
    Conflict {
        current_revision: u64,
        current_seq: u64,
    },
}

/// `GET /v1/spaces/{space}/records?after=SEQ&limit=N` (session, any role):
/// the latest revision of every record changed after SEQ, in seq order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PullResponse {
    pub records: Vec<PulledRecord>,
    /// The space's sequence now.
    pub head_seq: u64,
    /// More records after the last one returned (pull again after its seq).
    pub more: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PulledRecord {
    pub seq: u64,
    pub record: RecordEnvelope,
}

/// `GET /v1/spaces/{space}/wait?after=SEQ&timeout_ms=T` (session): returns as
/// soon as the space's sequence passes SEQ, or after T ms (≤ 60 s).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaitResponse {
    pub head_seq: u64,
    pub changed: bool,
}

// ---------------------------------------------------------------- two-secret key bundle

/// Public parameters of the client-side derivation (from passphrase + Secret Key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KdfParams {
    /// `argon2id`.
    pub algorithm: String,
    pub salt: Bytes,
    pub m_kib: u32,
    pub t: u32,
    pub p: u32,
}

/// `PUT /v1/bundle` (session): stores the account's wrapped key bundle and a
/// verifier derived from both secrets (the server keeps only a slow hash of it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PutBundle {
    pub kdf: KdfParams,
    /// 32 bytes, derived client-side from passphrase + Secret Key, distinct
    /// from the bundle's wrapping key.
    pub verifier: Bytes,
    /// Opaque: the account's private keys sealed under the two-secret key.
    pub bundle: Bytes,
}

/// `GET /v1/bundle/params/{account}` (no session).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BundleParams {
    pub account: AccountId,
    pub kdf: KdfParams,
}

/// `POST /v1/bundle/fetch` (no session, rate-limited per account).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchBundle {
    pub account: AccountId,
    pub verifier: Bytes,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyBundle {
    pub account: AccountId,
    pub kdf: KdfParams,
    pub bundle: Bytes,
}

// ---------------------------------------------------------------- share relay (issue 14)

/// One participant of a shared session: their share role (enforced by the
/// sharer's sessiond, not the server) and the session key wrapped to their
/// X25519 key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelayParticipant {
    pub account: AccountId,
    /// `viewer`, `co-worker` or `owner` (issue 14).
    pub share_role: String,
    pub wrapped_key: Bytes,
}

/// `PUT /v1/relay/{channel}` (session, org member): creates or replaces a
/// channel's participant list; only its creator (the sharer) may replace it.
/// Each replacement raises `epoch` (a new session key). Signed by the sharer
/// over [`crate::signing::relay_participants_bytes`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelayParticipants {
    pub channel: ChannelId,
    pub org: OrgId,
    pub epoch: u64,
    pub participants: Vec<RelayParticipant>,
    pub sharer: AccountId,
    pub sharer_key_id: KeyId,
    pub signature: Bytes,
}

/// `POST /v1/relay/{channel}/frames` (session, sharer or participant): one
/// sealed frame. The server relays it to the channel; it never opens it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendFrame {
    pub epoch: u64,
    pub body: Bytes,
}

/// `GET /v1/relay/{channel}/frames?after=SEQ&timeout_ms=T` (session, sharer or
/// current participant): frames after SEQ (long-poll).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelayFrames {
    pub frames: Vec<RelayFrame>,
    pub head_seq: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelayFrame {
    pub seq: u64,
    pub sender: AccountId,
    pub epoch: u64,
    pub body: Bytes,
    pub at_ms: u64,
}

/// Request paths (prefix `/v1`). `{…}` are path parameters.
pub mod paths {
    pub const INFO: &str = "/v1/info";
    pub const ACCOUNTS: &str = "/v1/accounts";
    pub const ACCOUNT: &str = "/v1/accounts/{account}";
    pub const DEVICES: &str = "/v1/devices";
    pub const DEVICE: &str = "/v1/devices/{key_id}";
    pub const AUTH_CHALLENGE: &str = "/v1/auth/challenge";
    pub const AUTH_RESPONSE: &str = "/v1/auth/response";
    pub const ORGS: &str = "/v1/orgs";
    pub const ORG_LOG: &str = "/v1/orgs/{org}/log";
    pub const ORG_JOIN: &str = "/v1/orgs/{org}/join";
    pub const ORG_PENDING: &str = "/v1/orgs/{org}/pending";
    pub const ORG_GRANTS: &str = "/v1/orgs/{org}/grants";
    pub const SPACE_RECORDS: &str = "/v1/spaces/{space}/records";
    pub const SPACE_WAIT: &str = "/v1/spaces/{space}/wait";
    pub const BUNDLE: &str = "/v1/bundle";
    pub const BUNDLE_PARAMS: &str = "/v1/bundle/params/{account}";
    pub const BUNDLE_FETCH: &str = "/v1/bundle/fetch";
    pub const RELAY: &str = "/v1/relay/{channel}";
    pub const RELAY_FRAMES: &str = "/v1/relay/{channel}/frames";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_have_statuses_and_snake_case_codes() {
        let e = ApiError::new(
            ErrorCode::TooLarge,
            "record is 300000 bytes; the limit is 262144",
        );
        let j = serde_json::to_string(&e).unwrap();
        assert!(j.contains("\"too_large\""), "{j}");
        assert_eq!(ErrorCode::TooLarge.http_status(), 413);
        assert_eq!(ErrorCode::RateLimited.http_status(), 429);
        assert_eq!(serde_json::from_str::<ApiError>(&j).unwrap(), e);
    }

    #[test]
    fn push_results_are_tagged() {
        let r = PushResult::Conflict {
            current_revision: 3,
            current_seq: 9,
        };
        let j = serde_json::to_string(&r).unwrap();
        assert_eq!(
            j,
            r#"{"status":"conflict","current_revision":3,"current_seq":9}"#
        );
    }
}
