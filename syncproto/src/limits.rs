//! Size and count limits. The server enforces every one of them and answers
//! `too_large` (HTTP 413) naming the limit; clients check before sending.
//!
//! Owns: the numbers. Must never: be raised by a request.

/// Longest identifier (account, org, record id, kind, channel), in bytes.
pub const MAX_ID_LEN: usize = 64;
/// Largest record envelope, measured as its JSON encoding (plaintext fields,
/// every sealed field, MAC and signature together).
pub const MAX_RECORD_BYTES: usize = 256 * 1024;
/// Most records in one push.
pub const MAX_PUSH_RECORDS: usize = 500;
/// Largest HTTP request body (any endpoint).
pub const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;
/// Most records in one pull answer (the server may return fewer).
pub const MAX_PULL_RECORDS: usize = 1000;
/// Largest membership-log entry (JSON).
pub const MAX_LOG_ENTRY_BYTES: usize = 64 * 1024;
/// Largest wrapped key grant (`wrapped` bytes).
pub const MAX_GRANT_BYTES: usize = 4 * 1024;
/// Largest key bundle (`bundle` bytes).
pub const MAX_BUNDLE_BYTES: usize = 64 * 1024;
/// Longest long-poll wait a client may ask for.
pub const MAX_WAIT_MS: u64 = 60_000;
/// Largest relay frame (issue 14): a sealed body of up to 64 KiB, its header
/// and tag.
pub const MAX_RELAY_FRAME_BYTES: usize = 64 * 1024 + 1024;
/// Largest share list (`PutRelay.list`).
pub const MAX_RELAY_LIST_BYTES: usize = 64 * 1024;
/// Most frames in one relay answer.
pub const MAX_RELAY_FRAMES: usize = 256;
/// Frames a channel keeps (older ones are dropped: the relay is live, the
/// sharer's recording is the record).
pub const RELAY_KEEP_FRAMES: u64 = 4096;
/// Wrong key-bundle verifiers allowed per account per [`BUNDLE_WINDOW_MS`]
/// before the server answers `rate_limited`.
pub const BUNDLE_MAX_WRONG: u32 = 5;
pub const BUNDLE_WINDOW_MS: u64 = 15 * 60 * 1000;
/// How long a device challenge is valid.
pub const CHALLENGE_TTL_MS: u64 = 60_000;
/// How long a session token is valid.
pub const SESSION_TTL_MS: u64 = 12 * 60 * 60 * 1000;
