//! Small OS primitives every Gatehouse process shares: the wall clock in
//! milliseconds, the OS random source, lowercase hex, and atomic file writes.
//!
//! Owns nothing but these helpers, so that a client never links a daemon
//! crate to get them.
//! Must never: fall back to a weaker random source (a process that cannot
//! read the OS CSPRNG stops rather than make keys or ids from anything else).

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch (0 if the clock is before it).
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// `N` bytes from the OS CSPRNG.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    fill_random(&mut b);
    b
}

/// Fills `buf` from the OS CSPRNG.
pub fn fill_random(buf: &mut [u8]) {
    // getrandom only fails if the kernel has no entropy source at all; a key
    // broker cannot run safely then.
    getrandom::fill(buf).expect("the OS random source failed");
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Writes `bytes` to `path` atomically (temp file, fsync, rename, fsync of
/// the directory), mode 0600.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}
