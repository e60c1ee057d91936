//! Installation directories.
//!
//! The broker decides a peer's role from its executable: `/proc/PID/exe` must
//! be the installed binary of that role *beside the broker*. Tests therefore
//! build a real installation: [`install`] copies binaries into the scratch's
//! trusted install dir ([`Scratch::install_dir`]: root-owned 0755 when
//! running as root, so the test user can run but not replace them),
//! optionally under another name — a test peer copied in as
//! `gatehouse-sessiond` takes the sessiond role. [`install_into`] copies into
//! any other directory, e.g. to check that a copy at another path is refused.
//!
//! Copies are made by a child `install -m 0755` process, not by writing the
//! file from this (multi-threaded) test process: a write descriptor open here
//! while another test thread forks would make `exec` of the new file fail
//! with ETXTBSY.
//!
//! [`find_binary`] locates a workspace binary to install.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::scratch::Scratch;
use crate::users;

/// Copies `src` into the scratch's install dir as `name` (mode 0755; owned
/// by root when running as root) and returns the installed path.
pub fn install(scratch: &Scratch, src: &Path, name: &str) -> Result<PathBuf> {
    install_into(scratch.install_dir(), src, name)
}

/// Copies `src` into `dir` as `name` with mode 0755 and returns the path.
/// When not root, a read-only `dir` (0555) is made writable for the copy and
/// read-only again afterwards.
pub fn install_into(dir: &Path, src: &Path, name: &str) -> Result<PathBuf> {
    if name.contains('/') || name.is_empty() {
        bail!("install name must be a plain file name: {name:?}");
    }
    let dst = dir.join(name);
    let restore = if !users::is_root() {
        let meta = std::fs::metadata(dir).with_context(|| format!("stat {}", dir.display()))?;
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o7777;
        if mode & 0o200 == 0 {
            crate::scratch::set_mode(dir, mode | 0o700)?;
            Some(mode)
        } else {
            None
        }
    } else {
        None
    };
    let out = Command::new("install")
        .arg("-m")
        .arg("0755")
        .arg("-T")
        .arg(src)
        .arg(&dst)
        .output()
        .context("running install(1)");
    if let Some(mode) = restore {
        crate::scratch::set_mode(dir, mode)?;
    }
    let out = out?;
    if !out.status.success() {
        bail!(
            "install {} -> {} failed: {}",
            src.display(),
            dst.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(dst)
}

/// Finds the workspace binary `name`:
///
/// 1. `CARGO_BIN_EXE_<name>` in the environment at run time, if set (cargo
///    sets it at *compile* time for integration tests of the package that
///    owns the binary; pass `env!("CARGO_BIN_EXE_<name>")` directly there);
/// 2. beside the running test executable's `deps/` dir, i.e.
///    `target/<profile>/<name>` — present when `cargo test --workspace`
///    (which builds every package's binaries) or `cargo build` built it.
pub fn find_binary(name: &str) -> Result<PathBuf> {
    if let Some(p) = std::env::var_os(format!("CARGO_BIN_EXE_{name}")) {
        let p = PathBuf::from(p);
        if p.is_file() {
            return Ok(p);
        }
    }
    let exe = std::env::current_exe().context("current_exe")?;
    let mut dir = exe.parent();
    while let Some(d) = dir {
        let candidate = d.join(name);
        if candidate.is_file() {
            return Ok(candidate);
        }
        if d.file_name().is_some_and(|n| n == "deps") {
            dir = d.parent();
            continue;
        }
        break;
    }
    bail!(
        "binary {name} not found beside {} — build it first (cargo build --workspace --bins)",
        exe.display()
    )
}
