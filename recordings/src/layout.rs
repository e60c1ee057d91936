//! The recording file's layout, version 1: magic, AAD domains, chunk
//! header sizes and flags, and the limits readers enforce.
//! Must never: import anything from this crate (every module depends on it).

/// The start of every recording file.
pub(crate) const MAGIC: &[u8] = b"gatehouse-recording/v1 ";
pub(crate) const AAD_DOMAIN: &[u8] = b"gatehouse/recording/v1";
pub(crate) const KEY_CHECK_DOMAIN: &[u8] = b"gatehouse/recording/key-check/v1";
/// File name suffix of a sealed recording.
pub const FILE_SUFFIX: &str = ".cast.sealed";
pub(crate) const NONCE_LEN: usize = 24;
pub(crate) const TAG_LEN: usize = 16;
/// `body_len (4) ‖ index (8) ‖ flags (1) ‖ nonce (24)`.
pub(crate) const CHUNK_HEADER_LEN: usize = 4 + 8 + 1 + NONCE_LEN;
pub(crate) const FLAG_FINAL: u8 = 0x01;
pub(crate) const KNOWN_FLAGS: u8 = FLAG_FINAL;
/// A chunk is sealed once its plaintext reaches this size.
pub(crate) const SEAL_AT: usize = 64 * 1024;
/// Longer output is split into several events (raw bytes before escaping).
pub(crate) const MAX_EVENT_TEXT: usize = 64 * 1024;
/// Readers refuse chunk bodies larger than this (the writer stays far below).
pub const MAX_CHUNK_BODY: usize = 16 * 1024 * 1024;
/// Readers refuse a metadata line longer than this.
pub(crate) const MAX_META_LINE: usize = 16 * 1024;
/// Marker labels are cut to this many bytes.
pub(crate) const MAX_MARKER: usize = 4 * 1024;
pub(crate) const ID_BYTES: usize = 16;
