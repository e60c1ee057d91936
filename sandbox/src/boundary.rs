//! The privilege boundary's first step in every Gatehouse binary.
//!
//! An installed Gatehouse binary is setgid to the dedicated group `gatehouse`
//! (see `scripts/install`); the user is not a member. The loader then runs it
//! in secure mode (no `LD_PRELOAD`/`LD_LIBRARY_PATH`, not dumpable) with the
//! group as its effective and saved gid, the user's own group as its real gid.
//!
//! Owns: [`enter`], which makes the group this process's real, effective and
//! saved gid, and makes the process dumpable again so that the broker and
//! sessiond (same uid, same group) may read its `/proc/PID/exe` to identify
//! it. The user's other processes still cannot ptrace it or read its memory
//! or environment: the kernel's ptrace check requires the caller's gid to
//! equal all three of ours, and the user does not have the group. It also
//! refuses a process whose binary is setgid but that runs *without* the group
//! (started under ptrace, under `no_new_privs`, or through the loader run as
//! a program): such a start is exactly how a same-uid attacker would slip
//! code into an installed binary.
//!
//! Must never: gain a group the process did not already have, or make a
//! process dumpable whose three gids are not all the boundary's group.

use std::os::unix::fs::MetadataExt;

/// Why the boundary could not be entered.
#[derive(Debug, thiserror::Error)]
pub enum BoundaryError {
    /// Our own executable cannot be inspected.
    #[error("cannot inspect /proc/self/exe: {0}")]
    OwnExe(std::io::Error),
    /// The binary is setgid but the process does not run with its group.
    #[error(
        "this installed binary is setgid to gid {group} but runs with effective gid {egid}: it was started under ptrace, no_new_privs or the loader run as a program, which strips the privilege boundary; start it normally"
    )]
    GroupNotGranted {
        /// The binary's group.
        group: u32,
        /// Our effective gid.
        egid: u32,
    },
    /// A system call failed.
    #[error("{what}: {source}")]
    Sys {
        /// The call.
        what: &'static str,
        /// Its error.
        source: nix::Error,
    },
}

/// Enters the boundary: `Ok(Some(gid))` when this process runs from an
/// installed setgid binary (all three gids are now `gid`), `Ok(None)` in a
/// development build (binary not setgid: the boundary is off).
pub fn enter() -> Result<Option<u32>, BoundaryError> {
    let meta = std::fs::metadata("/proc/self/exe").map_err(BoundaryError::OwnExe)?;
    if meta.mode() & 0o2000 == 0 {
        return Ok(None);
    }
    let group = meta.gid();
    let egid = nix::unistd::getegid().as_raw();
    if egid != group {
        return Err(BoundaryError::GroupNotGranted { group, egid });
    }
    let g = nix::unistd::Gid::from_raw(group);
    nix::unistd::setresgid(g, g, g).map_err(|source| BoundaryError::Sys {
        what: "setresgid",
        source,
    })?;
    nix::sys::prctl::set_dumpable(true).map_err(|source| BoundaryError::Sys {
        what: "PR_SET_DUMPABLE 1",
        source,
    })?;
    Ok(Some(group))
}

/// Makes the calling process non-dumpable (`PR_SET_DUMPABLE 0`) for the
/// rest of its life: a process holding a secret or waiting on one (the app,
/// the CLI during `exec --request` and `connect`). No process of the user
/// can then read its memory, environment or `/proc/PID/*` (owned by root),
/// even in a development build. Each later connection to a Gatehouse server
/// is made dumpable only until the server has identified it
/// (`gatehouse_ipc::dumpable`).
pub fn make_non_dumpable() -> Result<(), BoundaryError> {
    gatehouse_ipc::dumpable::stay_non_dumpable().map_err(|source| BoundaryError::Sys {
        what: "PR_SET_DUMPABLE 0",
        source,
    })
}
