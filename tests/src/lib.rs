//! Gatehouse cross-process test harness.
//!
//! Gatehouse tests start *real* processes (the broker, test peers standing in
//! for sessiond/copilotd/ui, the CLI) as an unprivileged user, next to a real
//! OS keychain, and inspect them from the outside. This crate provides the
//! pieces those tests share; nothing in it is a mock:
//!
//! * [`users`] — an unprivileged test user (created on demand when running as
//!   root) and a second "other uid" user; [`users::run_as`] configures a
//!   [`std::process::Command`] to run as one of them.
//! * [`scratch`] — a per-test scratch directory with a private home, runtime
//!   dir (`XDG_RUNTIME_DIR`) and a trusted install dir.
//! * [`install`] — copies binaries into an install dir, optionally under the
//!   name of another role (`gatehouse-sessiond`, ...).
//! * [`keychain_env`] — a private D-Bus session bus with `gnome-keyring-daemon`
//!   serving the Secret Service as the test user, and helpers for the kernel
//!   keyutils backend ([`keychain_env::keyutils_wrap`]).
//! * [`memscan`] — scans another process's memory for byte strings.
//! * [`xvfb`] — a private X server for the real app's window, driven with
//!   xdotool.
//! * [`proc`] — waiting for sockets and exits, `/proc/PID/status`, kill
//!   guards, reading child output lines with a timeout.
//!
//! See `tests/README.md` for how to use them and for the keychain findings.
#![allow(unsafe_code)] // pre_exec (keyutils session join) only; see keychain_env

pub mod broker;
pub mod install;
pub mod keychain_env;
/// The memory scanner lives in `gatehouse-sandbox` (the audit command uses it too).
pub use gatehouse_sandbox::memscan;
pub mod proc;
pub mod scratch;
pub mod sshd;
pub mod sync_server;
pub mod users;
pub mod xvfb;

pub use install::{find_binary, install, install_into};
pub use keychain_env::{KeychainEnv, SessionKeyring, keyutils_wrap};
pub use memscan::{ScanReport, scan_process};
pub use proc::{ChildGuard, LineReader, wait_for_exit, wait_for_socket};
pub use scratch::Scratch;
pub use users::{TestUser, run_as};

/// Whether a lab device's data log (`BrokerFixture::lab_log`) records any
/// text containing `needle`.
pub fn device_received(log: &std::path::Path, needle: &str) -> anyhow::Result<bool> {
    let text = std::fs::read_to_string(log)?;
    Ok(text.lines().any(|l| {
        serde_json::from_str::<serde_json::Value>(l)
            .ok()
            .and_then(|v| v["text"].as_str().map(|t| t.contains(needle)))
            .unwrap_or(false)
    }))
}
