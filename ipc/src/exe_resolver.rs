//! The peer-executable helper of a sandboxed server (broker, sessiond).
//!
//! Under Landlock the broker cannot read `/proc/PEER/exe` of processes
//! outside its domain (the kernel treats it as ptrace access). So before the
//! broker sandboxes itself it starts a copy of its own binary in
//! `--exe-resolver` mode, connected by a socketpair, which answers one
//! question: "which executable does pid N run?". The broker still pins the
//! peer with a pidfd around the question, so a recycled pid cannot pass.
//!
//! The helper reads only pids from the broker and `/proc`; it holds no
//! secret, is not dumpable, has no_new_privs, and exits when the broker goes
//! away (end of file on its socket). Must never: accept input from anyone but
//! the broker (its only input is the inherited socketpair).

use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::process::{Command, Stdio};
use std::sync::Mutex;

use crate::codec::{check_len, decode, encode_frame};
use crate::peer::{ExeInfo, ExeResolver, ProcResolver};

/// Client side, held by the broker.
pub struct HelperResolver {
    stream: Mutex<UnixStream>,
    _child: std::process::Child,
}

impl HelperResolver {
    /// Starts `exe --exe-resolver` with one end of a socketpair as its stdin.
    pub fn spawn(exe: &std::path::Path) -> std::io::Result<HelperResolver> {
        let (ours, theirs) = UnixStream::pair()?;
        let child = Command::new(exe)
            .arg("--exe-resolver")
            .stdin(Stdio::from(OwnedFd::from(theirs)))
            .stdout(Stdio::null())
            .spawn()?;
        ours.set_read_timeout(Some(std::time::Duration::from_secs(2)))?;
        Ok(HelperResolver {
            stream: Mutex::new(ours),
            _child: child,
        })
    }
}

impl ExeResolver for HelperResolver {
    fn resolve(&self, pid: i32) -> Result<ExeInfo, String> {
        let mut s = self.stream.lock().unwrap_or_else(|p| p.into_inner());
        let ask = encode_frame(&pid).map_err(|e| e.to_string())?;
        s.write_all(&ask).map_err(|e| format!("exe helper: {e}"))?;
        // Answers name their pid: a late answer to an earlier question (after a
        // timeout) is skipped rather than taken for this one.
        loop {
            let mut prefix = [0u8; 4];
            s.read_exact(&mut prefix)
                .map_err(|e| format!("exe helper: {e}"))?;
            let len = check_len(prefix).map_err(|e| e.to_string())?;
            let mut body = vec![0u8; len];
            s.read_exact(&mut body)
                .map_err(|e| format!("exe helper: {e}"))?;
            let (answered, info) =
                decode::<(i32, Result<ExeInfo, String>)>(&body).map_err(|e| e.to_string())?;
            if answered == pid {
                return info;
            }
        }
    }
}

/// Helper side: answers pid → executable on stdin until end of file.
pub fn run_helper() -> std::io::Result<()> {
    let _ = nix::sys::prctl::set_dumpable(false);
    let _ = nix::sys::prctl::set_no_new_privs();
    let _ = nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_CORE, 0, 0);
    let mut io = std::fs::File::from(std::io::stdin().as_fd().try_clone_to_owned()?);
    loop {
        let mut prefix = [0u8; 4];
        if io.read_exact(&mut prefix).is_err() {
            return Ok(());
        }
        let Ok(len) = check_len(prefix) else {
            return Ok(());
        };
        let mut body = vec![0u8; len];
        io.read_exact(&mut body)?;
        let answer: (i32, Result<ExeInfo, String>) = match decode::<i32>(&body) {
            Ok(pid) if pid > 0 => (pid, ProcResolver.resolve(pid)),
            _ => (0, Err("bad request".into())),
        };
        let frame = encode_frame(&answer).map_err(std::io::Error::other)?;
        io.write_all(&frame)?;
    }
}
