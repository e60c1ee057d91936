//! HTTP request and response bodies, endpoint paths and error codes.
//!
//! Owns: the body of every endpoint (docs/sync.md lists them; the join,
//! pending, bundle, device and relay bodies are reserved for endpoints the
//! server does not serve yet) and [`ErrorCode`] with its HTTP status.
//! Must never: carry a secret the server could use: grants, bundles, sealed
//! fields and relay frames are ciphertexts the server stores and returns.
//!
//! Authentication: every endpoint except `info`, `accounts` (register),
//! `auth/*` and `bundle/params`, `bundle/fetch` needs
//! `Authorization: Bearer TOKEN` from [`Session`].

use serde::{Deserialize, Serialize};

use crate::Role;
use crate::bytes::{Bytes, Hash32};
use crate::ids::{AccountId, ChannelId, OrgId};
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

/// `POST /v1/accounts` (no session): creates an account from its signed
/// account card (`postcard(gatehouse_membership::SignedCard)`: account name,
/// Ed25519 identity key, X25519 agreement key, self-signed by the identity
/// key). The server verifies the self-signature; the name must be free.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegisterAccount {
    pub card: Bytes,
}

/// `GET /v1/accounts/{account}` (session): an account's signed card, to wrap
/// grants to it and show its fingerprint, and the devices that signed in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountInfo {
    pub account: AccountId,
    pub card: Bytes,
    /// The card's fingerprint as `gatehouse_membership::Fingerprint` prints it.
    pub fingerprint: String,
    pub devices: Vec<DeviceInfo>,
}

/// A device of an account: a name its syncd signs challenges under, recorded
/// at its first sign-in. `DELETE /v1/devices/{device}` (session) ends its
/// sessions and refuses its challenges from then on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceInfo {
    pub device: String,
    pub first_seen_ms: u64,
    pub last_seen_ms: u64,
    pub revoked: bool,
}

// ---------------------------------------------------------------- device challenge

/// `POST /v1/auth/challenge` (no session).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChallengeRequest {
    pub account: AccountId,
    /// The device's name (1..=64 of `[A-Za-z0-9._-]`).
    pub device: String,
}

/// The answer to [`ChallengeRequest`]; single use, valid for
/// [`crate::limits::CHALLENGE_TTL_MS`] after `time_ms`. The device signs
/// `gatehouse_membership` `AuthChallenge { server, account, device, nonce, time_ms }`
/// (domain `gatehouse/sync-auth/v1`) with the account's identity key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Challenge {
    pub challenge_id: String,
    /// The server id from [`ServerInfo`] (goes into the signed `server` field).
    pub server: String,
    /// 32 random bytes.
    pub nonce: Bytes,
    /// The server's clock when it issued the challenge.
    pub time_ms: u64,
}

/// `POST /v1/auth/response` (no session).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChallengeResponse {
    pub challenge_id: String,
    pub account: AccountId,
    pub device: String,
    /// 64 bytes, Ed25519 by the account's identity key.
    pub signature: Bytes,
}

/// A session: `Authorization: Bearer {token}` until `expires_ms`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    pub token: String,
    pub account: AccountId,
    pub device: String,
    pub expires_ms: u64,
}

// ---------------------------------------------------------------- orgs and the membership log

/// One membership-log entry as it travels: `entry` is
/// `postcard(gatehouse_membership::SignedEntry)`, opaque on the wire; `seq`
/// and `hash` repeat what it says (the server fills them in answers; on a
/// push they are checked against the decoded entry).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEntryBlob {
    pub seq: u64,
    pub hash: Hash32,
    pub entry: Bytes,
}

/// `POST /v1/orgs` (session): creates an org with its first log entry
/// (`Genesis`, seq 0, signed by the session account's identity key as owner).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateOrg {
    pub org: OrgId,
    pub genesis: Bytes,
}

/// `GET /v1/orgs` (session): the orgs the account is a member of, pending in,
/// or was removed from (so its client learns of the removal and purges).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrgList {
    pub orgs: Vec<OrgSummary>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrgSummary {
    pub org: OrgId,
    pub status: MemberStatus,
    /// The seq of the log's last entry.
    pub log_head: u64,
    pub records_head: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum MemberStatus {
    Active { role: Role },
    Pending { role: Role },
    Removed,
}

/// `POST /v1/orgs/{org}/log` (session): appends one entry. The server checks it
/// with `gatehouse_membership` against the log it holds (seq, hash link,
/// signature, signer an active owner/admin, the role rules) and that the
/// signer is the session's account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppendLog {
    pub entry: Bytes,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogAppended {
    pub seq: u64,
    pub hash: Hash32,
}

/// `GET /v1/orgs/{org}/log?after=N` (session: member, pending joiner or
/// removed member): entries with seq > N in order (`after` absent: from seq 0).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogPage {
    pub entries: Vec<LogEntryBlob>,
    pub head_seq: u64,
}

/// `POST /v1/orgs/{org}/join` (session): shows an invite's one-time secret;
/// the account becomes a pending member (not yet in the log). The server
/// hashes the secret as the log's `Invite` entry does, refuses an unknown,
/// revoked, expired or already used invite, and marks it used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinOrg {
    /// 16 bytes.
    pub invite_id: Bytes,
    pub secret: Bytes,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Joined {
    pub org: OrgId,
    pub role: Role,
}

/// `GET /v1/orgs/{org}/pending` (session, owner/admin).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingList {
    pub pending: Vec<PendingMember>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingMember {
    pub account: AccountId,
    pub invite_id: Bytes,
    pub role: Role,
    /// The joiner's signed card as registered (the admin's client checks the
    /// fingerprint the person typed against it before confirming).
    pub card: Bytes,
    pub fingerprint: String,
    pub joined_ms: u64,
}

// ---------------------------------------------------------------- key grants

/// An org key generation wrapped to one member: `grant` is
/// `postcard(gatehouse_membership::SignedGrant)` (wrapped to the recipient's
/// X25519 key, signed by the granter), opaque to the server apart from the
/// routing fields it repeats and the server checks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyGrant {
    pub org: OrgId,
    pub generation: u32,
    pub recipient: AccountId,
    pub granter: AccountId,
    pub log_seq: u64,
    pub grant: Bytes,
}

/// `POST /v1/orgs/{org}/grants` (session, owner/admin): stores grants; the
/// recipient must be an active member per the log; one grant per
/// (generation, recipient) — a second one replaces the first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PostGrants {
    pub grants: Vec<KeyGrant>,
}

/// `GET /v1/orgs/{org}/grants` (session, active member): the grants addressed
/// to the session's account, every generation.
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

/// `PUT /v1/relay/{channel}` (session: the sharer, an active org member):
/// creates a channel or replaces its participant list. `list` is
/// `postcard(gatehouse_membership::share::SignedShareList)`: the server
/// decodes it and checks it against the org's membership log (the sharer is
/// the session's account and signed it, every participant is an active
/// member, keys sealed to their cards) and the path (its channel); only the
/// channel's creator may replace the list, and only with a higher epoch.
/// The keys inside are sealed to each participant: the server opens nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PutRelay {
    pub list: Bytes,
}

/// `GET /v1/relay/{channel}` (the sharer or a current participant): the
/// current list as the sharer put it, and the frame sequence now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelayInfo {
    pub channel: ChannelId,
    pub org: OrgId,
    pub sharer: AccountId,
    pub epoch: u64,
    pub participants: Vec<AccountId>,
    pub list: Bytes,
    pub head_seq: u64,
}

/// `POST /v1/relay/{channel}/frames` (the sharer or a participant of the
/// current epoch): one sealed frame (`gatehouse_membership::share`). The
/// server relays it to the channel and never opens it; a frame for another
/// epoch than the current one is refused (a revoked participant cannot post).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendFrame {
    pub epoch: u64,
    pub body: Bytes,
}

/// `GET /v1/relay/{channel}/frames?after=SEQ&timeout_ms=T` (the sharer or a
/// current participant): frames after SEQ, at most [`crate::limits::MAX_RELAY_FRAMES`],
/// waiting up to T for one (long-poll). The server keeps the last
/// [`crate::limits::RELAY_KEEP_FRAMES`] frames of a channel.
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
    pub const DEVICE: &str = "/v1/devices/{device}";
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
