#![allow(unsafe_code)]
#![warn(missing_docs)]
//! Gatehouse process hardening: per-process profiles and secret memory.
//!
//! **Owns:**
//! - [`secret_mem`]: memory for keys (`memfd_secret`, else mlock + `MADV_DONTDUMP`), key and
//!   arena types, stack scrubbing;
//! - [`seccomp`]: the syscall-table data model and its compilation to seccomp-bpf;
//! - [`profile`]: per-process hardening profiles as data ([`profile::broker_profile`]);
//! - [`boundary`]: entering the privilege boundary of a setgid install (all three gids the
//!   group's), and turning non-dumpable;
//! - [`hardening`]: applying a profile ([`hardening::apply`]) and inspecting any process's
//!   hardening ([`hardening::inspect_self`], [`hardening::inspect_pid`]).
//!
//! **Must never:** hold or log a secret itself, load a profile from a file or environment
//! (profiles are reviewed code), silently weaken a layer (every downgrade is either an error
//! in [`hardening::Strictness::Strict`] or recorded in the [`hardening::HardeningReport`]).
//!
//! This is the only Gatehouse crate allowed `unsafe`; every unsafe block states why it is sound.

pub mod boundary;
pub mod daemon;
pub mod hardening;
pub mod memscan;
pub mod profile;
pub mod seccomp;
pub mod secret_mem;
pub mod status;
pub mod zeroizing_alloc;

pub use hardening::{
    HardeningReport, LayerStatus, ProcessHardening, Strictness, apply, inspect_pid, inspect_self,
};
pub use profile::{
    BrokerPaths, CopilotdPaths, Profile, SessiondPaths, SyncdPaths, broker_profile,
    copilotd_profile, sessiond_profile, syncd_profile,
};
pub use secret_mem::{
    MemoryKind, MemoryPreference, SecretArena, SecretKey, SecretKey32, SecretRegion, SecretSlot,
    probe_memory_kind, scrub_stack,
};

use std::fmt;

/// A hardening layer, in the order [`hardening::apply`] applies them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Layer {
    /// `prctl(PR_SET_DUMPABLE, 0)`.
    Dumpable,
    /// `prctl(PR_SET_NO_NEW_PRIVS, 1)`.
    NoNewPrivs,
    /// `setrlimit(RLIMIT_CORE, 0)`.
    CoreLimit,
    /// Landlock filesystem + network + scope restrictions.
    Landlock,
    /// seccomp-bpf syscall filter.
    Seccomp,
}

impl fmt::Display for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Layer::Dumpable => "dumpable (PR_SET_DUMPABLE)",
            Layer::NoNewPrivs => "no_new_privs (PR_SET_NO_NEW_PRIVS)",
            Layer::CoreLimit => "core limit (RLIMIT_CORE)",
            Layer::Landlock => "landlock",
            Layer::Seccomp => "seccomp",
        })
    }
}

/// Every error of this crate. Messages never contain secret bytes.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// A hardening layer could not be applied (in [`hardening::Strictness::Strict`]).
    #[error("hardening layer {layer} failed: {detail}")]
    Layer {
        /// Which layer.
        layer: Layer,
        /// What failed, including the OS error.
        detail: String,
    },
    /// The profile is internally inconsistent (a bug in the profile table).
    #[error("invalid profile: {0}")]
    InvalidProfile(String),
    /// A memory operation for secret memory failed.
    #[error("secret memory: {op} failed: {source}")]
    Memory {
        /// The failing operation.
        op: &'static str,
        /// The OS error.
        source: std::io::Error,
    },
    /// Locking the memory would exceed `RLIMIT_MEMLOCK`.
    #[error(
        "secret memory: locking {requested} bytes exceeds RLIMIT_MEMLOCK (soft limit: {}); \
         raise the limit (e.g. LimitMEMLOCK= in the systemd unit) or use a SecretArena to share pages",
        limit.map(|l| format!("{l} bytes")).unwrap_or_else(|| "unknown".into())
    )]
    MemlockLimit {
        /// Bytes requested (page-rounded).
        requested: usize,
        /// The soft limit at the time of failure (`None` = unlimited/unknown).
        limit: Option<u64>,
    },
    /// `memfd_secret` was required but is not available.
    #[error("secret memory: memfd_secret required but unavailable: {reason}")]
    SecretMemoryUnavailable {
        /// Why (kernel support, policy, ...).
        reason: String,
    },
    /// A zero or overflowing length.
    #[error("secret memory: invalid length {0}")]
    InvalidLength(usize),
    /// Every slot of a [`SecretArena`] is in use.
    #[error("secret arena full ({slots} slots)")]
    ArenaFull {
        /// Capacity of the arena.
        slots: usize,
    },
    /// A [`SecretSlot`] was used with an arena that did not issue it (or after a purge).
    #[error("secret slot does not belong to this arena")]
    ForeignSlot,
    /// The caller's key-initialisation closure failed.
    #[error("secret key initialisation failed: {0}")]
    KeyInit(String),
    /// Reading `/proc/PID/...` failed.
    #[error("cannot inspect process {pid}: {source}")]
    Proc {
        /// The process.
        pid: i32,
        /// The OS error.
        source: std::io::Error,
    },
}
