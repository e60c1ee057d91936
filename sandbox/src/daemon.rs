//! The `main` every Gatehouse daemon shares: logging to stderr
//! (`GATEHOUSE_LOG`, default `info`), the peer-executable helper mode, and
//! one error line and a failure status when start-up fails.
//!
//! Must never: decide anything about hardening (each daemon's start-up
//! applies its own profile in its own order).

use std::process::ExitCode;

/// Runs daemon `name`: as its peer-executable helper when `exe_resolver`
/// (see `gatehouse_ipc::exe_resolver`), else `run`.
pub fn main(name: &str, exe_resolver: bool, run: impl FnOnce() -> Result<(), String>) -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("GATEHOUSE_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    if exe_resolver {
        return match gatehouse_ipc::exe_resolver::run_helper() {
            Ok(()) => ExitCode::SUCCESS,
            Err(_) => ExitCode::FAILURE,
        };
    }
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{name}: {e}");
            ExitCode::FAILURE
        }
    }
}
