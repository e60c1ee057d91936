//! Session recordings: asciicast v3, sealed at rest in chunks.
//!
//! Owns the recording file format (`<profile>/recordings/<id>.cast.sealed`),
//! writing it while a session runs, reading it back (a verified prefix of a
//! file that a crash cut short), listing recordings without a key, and
//! exporting plain asciicast v3.
//! Must never: put session data on disk in plaintext (the plaintext metadata
//! line holds only id, host, user, kind, start time and terminal size: no
//! output, no command), return bytes of a chunk that failed authentication,
//! accept a chunk out of order or from another recording, record keystrokes
//! unless asked to, or panic on a damaged file.
//!
//! File layout (version 1):
//!
//! ```text
//! gatehouse-recording/v1 {"id":…,"host":…,"user":…,"kind":"shell",…,"key_check":…}\n
//! chunk 0 ‖ chunk 1 ‖ … ‖ chunk N (FINAL flag)
//!
//! chunk = body_len u32 LE ‖ index u64 LE ‖ flags u8 ‖ nonce (24) ‖ body
//! body  = XChaCha20-Poly1305 ciphertext ‖ tag (16), body_len bytes
//! aad   = "gatehouse/recording/v1" ‖ SHA-256(metadata line) ‖ lp(id) ‖ index ‖ flags
//! ```
//!
//! The chunk plaintexts, concatenated, are an asciicast v3 file: chunk 0
//! starts with the header line and every chunk holds whole lines. Each chunk
//! is appended with one `write()`, so killing the writer leaves whole chunks.
//! A finished recording ends with a chunk flagged FINAL; a file without one
//! was cut short (sessiond crashed, or is still writing) and the chunks before
//! the cut stay readable. `key_check` (a hash of key and id) lets a reader say
//! "wrong key" instead of "chunk 0 failed authentication".

//!
//! Modules: [`ids`] (paths, ids, keys), [`format`] (asciicast v3 events),
//! [`seal`] (chunk sealing), [`writer`], [`reader`], [`list`] (no key), and
//! [`playback`] (time on a timeline → what a terminal shows, for any
//! [`playback::TermSink`]).

pub mod error;
pub mod export;
pub mod format;
pub mod ids;
pub mod layout;
pub mod list;
pub mod playback;
pub mod reader;
pub mod seal;
pub mod writer;

pub use error::RecordingError;
pub use export::{export_asciicast, write_asciicast};
pub use format::{
    CastHeader, CastTerm, Event, EventData, RecordingKind, RecordingMeta, RecordingOptions,
};
pub use ids::{is_recording_id, new_recording_id, recording_key, recording_path, recordings_dir};
pub use layout::{FILE_SUFFIX, MAX_CHUNK_BODY};
pub use list::{ChunkScan, ListedRecording, UnreadableRecording, list, scan};
pub use reader::{Recording, RecordingReader};
pub use writer::{FinishedRecording, RecordingWriter};

#[cfg(test)]
mod tests;
