//! The `main` every Gatehouse daemon shares: logging to stderr
//! (`GATEHOUSE_LOG`, default `info`), the peer-executable helper mode, and
//! one error line and a failure status when start-up fails, and the refusal
//! to start with any `LD_*` variable in the environment (a preload or library
//! path would run someone else's code inside the daemon; an installed setgid
//! binary never sees one, the loader strips them in secure mode), and
//! entering the privilege boundary ([`crate::boundary::enter`]).
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
    if let Some(var) = loader_variable(std::env::vars_os().map(|(k, _)| k)) {
        eprintln!(
            "{name}: refusing to start: {var} is set in the environment (a dynamic loader variable runs other code inside the daemon; unset every LD_* variable)"
        );
        return ExitCode::FAILURE;
    }
    if let Err(e) = crate::boundary::enter() {
        eprintln!("{name}: refusing to start: {e}");
        return ExitCode::FAILURE;
    }
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{name}: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The first `LD_*` variable name among `names`, if any.
pub fn loader_variable(names: impl Iterator<Item = std::ffi::OsString>) -> Option<String> {
    names
        .map(|k| k.to_string_lossy().into_owned())
        .find(|k| k.starts_with("LD_"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn any_ld_variable_is_named() {
        let names = |v: &[&str]| v.iter().map(std::ffi::OsString::from).collect::<Vec<_>>();
        assert_eq!(
            super::loader_variable(names(&["HOME", "LD_AUDIT", "PATH"]).into_iter()),
            Some("LD_AUDIT".into())
        );
        assert_eq!(
            super::loader_variable(names(&["HOME", "OLD_PRELOAD"]).into_iter()),
            None
        );
    }
}
