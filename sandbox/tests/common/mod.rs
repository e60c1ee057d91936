//! Shared helpers for the death tests: fork a child, run a closure in it (usually after
//! applying a profile), and report how it ended plus any message it wrote.
#![allow(unsafe_code, dead_code)]

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::PathBuf;

use gatehouse_sandbox::{BrokerPaths, Strictness, apply, broker_profile};
use nix::sys::signal::Signal;
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, fork};

/// How a forked child ended.
#[derive(Debug)]
pub struct ChildOutcome {
    pub status: WaitStatus,
    pub message: String,
}

impl ChildOutcome {
    /// The child returned Ok (exit 0). Panics with the child's message otherwise.
    #[track_caller]
    pub fn assert_ok(&self) {
        assert!(
            matches!(self.status, WaitStatus::Exited(_, 0)),
            "child failed: {:?}: {}",
            self.status,
            self.message
        );
    }

    /// The child was killed by `sig`.
    #[track_caller]
    pub fn assert_killed_by(&self, sig: Signal) {
        assert!(
            matches!(self.status, WaitStatus::Signaled(_, s, _) if s == sig),
            "expected death by {sig:?}, got {:?}: {}",
            self.status,
            self.message
        );
    }
}

/// Fork; in the child run `f` and `_exit` (0 on Ok, 1 on Err, 2 on panic), sending any
/// message back over a pipe. Returns when the child is gone.
pub fn in_child(f: impl FnOnce() -> Result<(), String>) -> ChildOutcome {
    let (r, w) = nix::unistd::pipe().expect("pipe");
    // SAFETY (test code): the child only runs `f` and then `_exit`s; glibc resets malloc
    // locks across fork, and nothing the child touches depends on other parent threads.
    match unsafe { fork() }.expect("fork") {
        ForkResult::Child => {
            drop(r);
            let res = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
            let (code, msg) = match res {
                Ok(Ok(())) => (0, String::new()),
                Ok(Err(m)) => (1, m),
                Err(p) => (
                    2,
                    p.downcast_ref::<String>()
                        .cloned()
                        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_else(|| "panic".into()),
                ),
            };
            let mut w = std::fs::File::from(w);
            let _ = w.write_all(msg.as_bytes());
            drop(w);
            // SAFETY: leaving the forked child without running the parent's atexit/test
            // harness machinery.
            unsafe { libc::_exit(code) }
        }
        ForkResult::Parent { child } => {
            drop(w);
            let mut msg = String::new();
            let _ = std::fs::File::from(r).read_to_string(&mut msg);
            let status = waitpid(child, None).expect("waitpid");
            ChildOutcome {
                status,
                message: msg,
            }
        }
    }
}

/// A forked helper process that runs `f` once then sleeps until killed.
pub struct Sibling {
    pub pid: Pid,
}

impl Sibling {
    /// Fork a process that runs `setup` (e.g. drop privileges, apply a profile), signals
    /// readiness, and then sleeps.
    pub fn spawn(setup: impl FnOnce() -> Result<(), String>) -> Sibling {
        let (r, w) = nix::unistd::pipe().expect("pipe");
        // SAFETY (test code): as in `in_child`.
        match unsafe { fork() }.expect("fork") {
            ForkResult::Child => {
                drop(r);
                let ok = setup().is_ok();
                let mut w = std::fs::File::from(w);
                let _ = w.write_all(if ok { b"k" } else { b"e" });
                drop(w);
                loop {
                    std::thread::sleep(std::time::Duration::from_secs(1));
                }
            }
            ForkResult::Parent { child } => {
                drop(w);
                let mut b = [0u8; 1];
                let mut f = std::fs::File::from(r);
                let n = f.read(&mut b).unwrap_or(0);
                assert!(n == 1 && b[0] == b'k', "sibling setup failed");
                Sibling { pid: child }
            }
        }
    }
}

impl Drop for Sibling {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(self.pid, Signal::SIGKILL);
        let _ = waitpid(self.pid, None);
    }
}

/// Temp dirs for a broker: state, runtime, install (with a fake binary) and an outside dir
/// that the profile does not cover.
pub struct Dirs {
    pub root: tempfile::TempDir,
    pub state: PathBuf,
    pub runtime: PathBuf,
    pub install: PathBuf,
    pub outside: PathBuf,
}

impl Dirs {
    pub fn new() -> Dirs {
        let root = tempfile::tempdir().expect("tempdir");
        let mk = |n: &str| {
            let p = root.path().join(n);
            std::fs::create_dir_all(&p).unwrap();
            p
        };
        let (state, runtime, install, outside) =
            (mk("state"), mk("runtime"), mk("install"), mk("outside"));
        std::fs::write(install.join("gatehouse-broker"), b"\x7fELF fake").unwrap();
        std::fs::write(outside.join("secret.txt"), b"not for the broker").unwrap();
        Dirs {
            root,
            state,
            runtime,
            install,
            outside,
        }
    }

    pub fn broker_paths(&self) -> BrokerPaths {
        BrokerPaths::new(&self.state, &self.runtime, &self.install)
    }

    /// Make all dirs owned by `uid` (for unprivileged children).
    pub fn chown_all(&self, uid: u32, gid: u32) {
        for p in [
            self.root.path(),
            &self.state,
            &self.runtime,
            &self.install,
            &self.outside,
        ] {
            std::os::unix::fs::chown(p, Some(uid), Some(gid)).unwrap();
        }
    }
}

/// Apply the broker profile strictly for `dirs`, mapping the error to a message.
pub fn harden_broker(dirs: &Dirs) -> Result<gatehouse_sandbox::HardeningReport, String> {
    apply(&broker_profile(&dirs.broker_paths()), Strictness::Strict).map_err(|e| e.to_string())
}

pub const TEST_USER: &str = "gatehouse-sbx-test";

/// uid/gid of the unprivileged test user, creating it if missing.
pub fn test_user() -> (u32, u32) {
    if nix::unistd::User::from_name(TEST_USER).unwrap().is_none() {
        let st = std::process::Command::new("useradd")
            .args([
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                TEST_USER,
            ])
            .status()
            .expect("useradd");
        // A concurrent test may have created it in the meantime (exit 9 = exists).
        assert!(st.success() || st.code() == Some(9), "useradd failed: {st}");
    }
    let u = nix::unistd::User::from_name(TEST_USER).unwrap().unwrap();
    (u.uid.as_raw(), u.gid.as_raw())
}

/// In a forked child: drop all groups, then to `uid`/`gid` for real, effective and saved ids.
pub fn drop_to(uid: u32, gid: u32) -> Result<(), String> {
    nix::unistd::setgroups(&[]).map_err(|e| format!("setgroups: {e}"))?;
    nix::unistd::setresgid(gid.into(), gid.into(), gid.into())
        .map_err(|e| format!("setgid: {e}"))?;
    nix::unistd::setresuid(uid.into(), uid.into(), uid.into())
        .map_err(|e| format!("setuid: {e}"))?;
    Ok(())
}

/// errno of the last failed libc call.
pub fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// Keep an fd number alive in a test without warnings.
pub fn raw(fd: &OwnedFd) -> i32 {
    fd.as_raw_fd()
}

/// Wrap a raw fd returned by a syscall.
pub fn own(fd: i32) -> OwnedFd {
    // SAFETY (test code): `fd` was just returned by a successful syscall and is owned by us.
    unsafe { OwnedFd::from_raw_fd(fd) }
}
