//! What can go wrong reading or writing a recording, one variant per cause.

use std::io;
use std::path::PathBuf;

use crate::layout::*;

#[derive(Debug, thiserror::Error)]
pub enum RecordingError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("not a Gatehouse recording (the file does not start with \"gatehouse-recording/v1\")")]
    BadMagic,
    #[error(
        "the file ends inside its metadata line ({0} bytes): it was cut short while being created"
    )]
    MetaTruncated(usize),
    #[error("the metadata line is longer than {MAX_META_LINE} bytes")]
    MetaTooLong,
    #[error("the metadata line is not valid: {0}")]
    BadMeta(String),
    #[error("invalid recording id {0:?} (expected 32 lowercase hex digits)")]
    BadId(String),
    #[error("a recording key has 32 bytes, the broker gave {0}")]
    KeyLength(usize),
    #[error("wrong key for recording {0}")]
    WrongKey(String),
    #[error("chunk {index}: unknown flags {flags:#04x}")]
    UnknownFlags { index: u64, flags: u8 },
    #[error("chunk {index}: body length {len} is impossible (corrupt chunk header)")]
    BadChunkLength { index: u64, len: u64 },
    #[error(
        "chunk out of order: expected chunk {expected}, found chunk {found} (chunks were dropped, reordered or copied in)"
    )]
    ChunkOutOfOrder { expected: u64, found: u64 },
    #[error("chunk {index} failed authentication: it was altered, or moved from another recording")]
    ChunkAuth { index: u64 },
    #[error("{bytes} bytes follow the final chunk {index}")]
    DataAfterFinal { index: u64, bytes: u64 },
    #[error("chunk {index}: {what}")]
    BadContent { index: u64, what: String },
}
