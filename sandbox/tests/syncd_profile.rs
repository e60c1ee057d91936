//! Death tests for the syncd profile: each test forks a child, applies
//! `syncd_profile` strictly over temp dirs, then does one forbidden or
//! allowed thing. syncd may connect outward over TCP (the sync server) but
//! never listen, never exec, never use the keyring, and reach no file
//! outside its own state, the records store and the runtime directory.
#![allow(unsafe_code)]

mod common;

use std::ffi::CString;
use std::path::PathBuf;

use common::*;
use gatehouse_sandbox::{Strictness, SyncdPaths, apply, syncd_profile};
use nix::sys::signal::Signal;

struct SyncdDirs {
    base: Dirs,
    sync: PathBuf,
    db: PathBuf,
}

impl SyncdDirs {
    fn new() -> SyncdDirs {
        let base = Dirs::new();
        let sync = base.state.join("sync");
        std::fs::create_dir_all(&sync).unwrap();
        let db = base.state.join("records.sqlite");
        std::fs::write(&db, b"").unwrap();
        std::fs::write(base.state.join("wrapped-keys.json"), b"{}").unwrap();
        SyncdDirs { base, sync, db }
    }

    fn harden(&self) -> Result<(), String> {
        let mut p = syncd_profile(&SyncdPaths {
            records_files: vec![self.db.clone()],
            state_dir: self.sync.clone(),
            runtime_dir: self.base.runtime.clone(),
            install_dir: self.base.install.clone(),
        });
        // As syncd starts: dumpable until the broker identified it.
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
    let d = SyncdDirs::new();
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
fn tcp_connects_outward_but_cannot_listen_or_use_the_keyring() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let d = SyncdDirs::new();
    in_child(|| {
        d.harden()?;
        std::net::TcpStream::connect(addr)
            .map_err(|e| format!("connect to the sync server: {e}"))?;
        io_errno(
            "tcp bind",
            std::net::TcpListener::bind("127.0.0.1:0"),
            libc::EACCES,
        )?;
        // No key, so no keyring: add_key is refused (EPERM by the table).
        // SAFETY (test): add_key(2) with valid NUL-terminated strings.
        let r = unsafe {
            libc::syscall(
                libc::SYS_add_key,
                c"user".as_ptr(),
                c"probe".as_ptr(),
                c"x".as_ptr(),
                1usize,
                -4i32, // KEY_SPEC_USER_KEYRING
            )
        };
        if r >= 0 {
            return Err("add_key succeeded".into());
        }
        Ok(())
    })
    .assert_ok();
    drop(listener);
}

#[test]
fn only_its_own_files_are_reachable() {
    let d = SyncdDirs::new();
    in_child(|| {
        d.harden()?;
        std::fs::write(d.sync.join("state.json"), b"{}")
            .map_err(|e| format!("write its state: {e}"))?;
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&d.db)
            .map_err(|e| format!("open the store: {e}"))?;
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
            "read /etc/passwd",
            std::fs::read("/etc/passwd"),
            libc::EACCES,
        )?;
        // No TLS trust store: the server's certificate is pinned.
        io_errno(
            "read the trust store",
            std::fs::read_dir("/etc/ssl"),
            libc::EACCES,
        )?;
        Ok(())
    })
    .assert_ok();
}
