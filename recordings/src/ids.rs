//! Where recordings live and what their ids look like: the directory of a
//! profile, a recording's file name, new random ids, and the key the broker
//! hands out for one recording.
//! Must never: accept an id that is not 32 lowercase hex digits into a path.

use std::io;
use std::path::{Path, PathBuf};

use gatehouse_ipc::{Layout, SecretBytes};
use zeroize::Zeroizing;

use crate::error::*;
use crate::layout::*;

/// Where a profile keeps its recordings.
pub fn recordings_dir(layout: &Layout) -> PathBuf {
    layout.root.join("recordings")
}

/// The file of recording `id` in `dir`.
pub fn recording_path(dir: &Path, id: &str) -> PathBuf {
    dir.join(format!("{id}{FILE_SUFFIX}"))
}

/// A new random recording id: 32 lowercase hex digits.
pub fn new_recording_id() -> io::Result<String> {
    let mut b = [0u8; ID_BYTES];
    fill_random(&mut b)?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

pub(crate) fn fill_random(buf: &mut [u8]) -> io::Result<()> {
    getrandom::fill(buf).map_err(|e| io::Error::other(format!("OS random source: {e}")))
}

/// Whether `id` has the form [`new_recording_id`] gives (so it is safe in a path).
pub fn is_recording_id(id: &str) -> bool {
    id.len() == 2 * ID_BYTES && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The 32-byte key the broker answered `RecordingKey` with.
pub fn recording_key(secret: &SecretBytes) -> Result<Zeroizing<[u8; 32]>, RecordingError> {
    let mut key = Zeroizing::new([0u8; 32]);
    if secret.len() != key.len() {
        return Err(RecordingError::KeyLength(secret.len()));
    }
    key.copy_from_slice(secret.expose());
    Ok(key)
}
