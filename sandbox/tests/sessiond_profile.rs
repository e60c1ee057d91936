//! Death tests for the sessiond profile: each test forks a child, applies
//! `sessiond_profile` strictly over temp dirs, then does one forbidden or
//! allowed thing. sessiond may connect outward over TCP (devices) but never
//! listen, never exec, and reach no file outside its recordings, audit log,
//! records store and runtime directory.
#![allow(unsafe_code)]

mod common;

use std::ffi::CString;
use std::path::PathBuf;

use common::*;
use gatehouse_sandbox::{SessiondPaths, Strictness, apply, sessiond_profile};
use nix::sys::signal::Signal;

struct SessiondDirs {
    base: Dirs,
    recordings: PathBuf,
    audit: PathBuf,
    db: PathBuf,
}

impl SessiondDirs {
    fn new() -> SessiondDirs {
        let base = Dirs::new();
        let recordings = base.state.join("recordings");
        let audit = base.state.join("audit");
        std::fs::create_dir_all(&recordings).unwrap();
        std::fs::create_dir_all(&audit).unwrap();
        let db = base.state.join("records.sqlite");
        std::fs::write(&db, b"").unwrap();
        std::fs::write(base.state.join("wrapped-keys.json"), b"{}").unwrap();
        SessiondDirs {
            base,
            recordings,
            audit,
            db,
        }
    }

    fn paths(&self) -> SessiondPaths {
        SessiondPaths {
            recordings_dir: self.recordings.clone(),
            audit_dir: self.audit.clone(),
            records_files: vec![self.db.clone()],
            runtime_dir: self.base.runtime.clone(),
            install_dir: self.base.install.clone(),
        }
    }

    fn harden(&self) -> Result<(), String> {
        let mut p = sessiond_profile(&self.paths());
        // As sessiond starts: dumpable until the broker identified it.
        p.flags.non_dumpable = false;
        apply(&p, Strictness::Strict)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

fn io_errno(what: &str, r: std::io::Result<impl std::fmt::Debug>, want: i32) -> Result<(), String> {
    match r {
        Err(e) if e.raw_os_error() == Some(want) => Ok(()),
        other => Err(format!("{what}: expected errno {want}, got {other:?}")),
    }
}

#[test]
fn execve_kills_with_sigsys() {
    let d = SessiondDirs::new();
    in_child(|| {
        d.harden()?;
        let prog = CString::new("/bin/true").unwrap();
        let argv = [prog.as_ptr(), std::ptr::null()];
        let envp = [std::ptr::null()];
        // SAFETY (test): valid NUL-terminated argv/envp arrays.
        unsafe { libc::execve(prog.as_ptr(), argv.as_ptr(), envp.as_ptr()) };
        Err("execve returned".into())
    })
    .assert_killed_by(Signal::SIGSYS);
}

#[test]
fn tcp_connects_outward_but_cannot_listen() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let d = SessiondDirs::new();
    in_child(|| {
        d.harden()?;
        std::net::TcpStream::connect(addr).map_err(|e| format!("connect to a device: {e}"))?;
        io_errno(
            "tcp bind",
            std::net::TcpListener::bind("127.0.0.1:0"),
            libc::EACCES,
        )?;
        // Raw and packet sockets are not for sessiond.
        // SAFETY (test): plain socket(2) call; the fd is closed if created.
        let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, 0) };
        if fd >= 0 {
            // SAFETY (test): closing the fd we just got.
            unsafe { libc::close(fd) };
            return Err("AF_PACKET socket created".into());
        }
        Ok(())
    })
    .assert_ok();
    drop(listener);
}

#[test]
fn only_its_own_files_are_reachable() {
    let d = SessiondDirs::new();
    in_child(|| {
        d.harden()?;
        std::fs::write(d.recordings.join("r.cast.sealed"), b"x")
            .map_err(|e| format!("write recording: {e}"))?;
        std::fs::write(d.audit.join("sessions.jsonl"), b"{}\n")
            .map_err(|e| format!("write audit: {e}"))?;
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&d.db)
            .map_err(|e| format!("open the store: {e}"))?;
        // The broker's state beside the store, the rest of the disk: no.
        io_errno(
            "read broker state",
            std::fs::read(d.base.state.join("wrapped-keys.json")),
            libc::EACCES,
        )?;
        io_errno(
            "create beside the store",
            std::fs::write(d.base.state.join("evil"), b"x"),
            libc::EACCES,
        )?;
        io_errno(
            "read outside",
            std::fs::read(d.base.outside.join("secret.txt")),
            libc::EACCES,
        )?;
        io_errno(
            "read ~/.ssh-like file",
            std::fs::read("/etc/passwd"),
            libc::EACCES,
        )?;
        Ok(())
    })
    .assert_ok();
}

#[test]
fn it_can_turn_non_dumpable_but_never_back() {
    let d = SessiondDirs::new();
    in_child(|| {
        d.harden()?;
        nix::sys::prctl::set_dumpable(false).map_err(|e| format!("set 0: {e}"))?;
        match nix::sys::prctl::set_dumpable(true) {
            Err(nix::errno::Errno::EPERM) => {}
            other => return Err(format!("dumpable again: {other:?}")),
        }
        if nix::sys::prctl::get_dumpable().map_err(|e| e.to_string())? {
            return Err("still dumpable".into());
        }
        Ok(())
    })
    .assert_ok();
}
