//! Errors of the simulator itself (start-up, files, keys, sockets).
//!
//! Errors a *client* provokes by typing something wrong are not Rust errors:
//! they are device messages (`% Invalid input ...`, `bad command name ...`)
//! produced by the vendor modules (each renders its own error type, e.g.
//! `ios::IosError`, `routeros::RosError`); this module names no vendor.

use std::path::PathBuf;

/// Anything that can stop a device from starting or running.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file (host key, password, authorized keys, log) could not be read or written.
    #[error("{what} {path}: {source}")]
    File {
        /// What the file is for.
        what: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// The host key file exists but is not an OpenSSH private key.
    #[error("host key {path}: {reason}")]
    HostKey {
        /// The path involved.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
    /// An authorized key line could not be parsed.
    #[error("authorized key {path} line {line}: {reason}")]
    AuthorizedKey {
        /// The path involved.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What was wrong.
        reason: String,
    },
    /// The password file was empty.
    #[error("password file {0} is empty")]
    EmptyPassword(PathBuf),
    /// The operating system refused randomness.
    #[error("no randomness: {0}")]
    Random(String),
    /// Binding or accepting on the listen address failed.
    #[error("listen {addr}: {source}")]
    Listen {
        /// The address asked for.
        addr: String,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// The SSH layer failed.
    #[error("ssh: {0}")]
    Ssh(#[from] russh::Error),
}
