//! Death tests for the broker profile (Chromium style): each test forks a child, applies
//! `broker_profile` strictly with temp dirs as state/runtime/install, then does one forbidden
//! or allowed thing and reports back. The parent asserts exactly how the child ended.
#![allow(unsafe_code)]

mod common;

use std::ffi::CString;
use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};

use common::*;
use gatehouse_sandbox::hardening::{LayerStatus, Rlim, SeccompMode};
use gatehouse_sandbox::seccomp::SyscallAction;
use gatehouse_sandbox::{MemoryKind, SecretRegion, Strictness, apply, broker_profile};
use nix::sys::signal::Signal;

fn expect_errno(what: &str, ret: i64, want: i32) -> Result<(), String> {
    let got = errno();
    if ret == -1 && got == want {
        Ok(())
    } else {
        Err(format!(
            "{what}: expected -1/{}, got {ret}/{}",
            std::io::Error::from_raw_os_error(want),
            std::io::Error::from_raw_os_error(got)
        ))
    }
}

fn io_errno(what: &str, r: std::io::Result<impl std::fmt::Debug>, want: i32) -> Result<(), String> {
    match r {
        Err(e) if e.raw_os_error() == Some(want) => Ok(()),
        other => Err(format!(
            "{what}: expected {}, got {other:?}",
            std::io::Error::from_raw_os_error(want)
        )),
    }
}

#[test]
fn after_apply_proc_status_and_report_show_every_layer() {
    let dirs = Dirs::new();
    in_child(|| {
        let report = harden_broker(&dirs)?;
        let status = std::fs::read_to_string("/proc/self/status").map_err(|e| e.to_string())?;
        for want in ["NoNewPrivs:\t1", "Seccomp:\t2", "Seccomp_filters:\t3"] {
            if !status.contains(want) {
                return Err(format!("/proc/self/status lacks {want:?}"));
            }
        }
        // SAFETY: PR_GET_DUMPABLE takes no pointers.
        let d = unsafe { libc::prctl(libc::PR_GET_DUMPABLE, 0, 0, 0, 0) };
        if d != 0 {
            return Err(format!("PR_GET_DUMPABLE = {d}"));
        }
        let (soft, hard) =
            nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_CORE).unwrap();
        if (soft, hard) != (0, 0) {
            return Err(format!("RLIMIT_CORE = {soft}/{hard}"));
        }
        if report.dumpable || !report.no_new_privs || report.core_limit != Rlim::Bytes(0) {
            return Err(format!("report flags wrong: {report:?}"));
        }
        if !matches!(report.seccomp, LayerStatus::Applied { fully_enforced: true, .. }) {
            return Err(format!("seccomp: {:?}", report.seccomp));
        }
        if !matches!(report.landlock, LayerStatus::Applied { fully_enforced: true, abi: Some(a), .. } if a >= 6)
        {
            return Err(format!("landlock: {:?}", report.landlock));
        }
        if report.memory != MemoryKind::MemfdSecret {
            return Err(format!("memory: {} ({:?})", report.memory, report.memory_fallback_reason));
        }
        let me = gatehouse_sandbox::inspect_self();
        if me.no_new_privs != Some(true)
            || me.seccomp != Some(SeccompMode::Filter)
            || me.seccomp_filters != Some(3)
            || me.dumpable != Some(false)
            || me.core_limit != Some(Rlim::Bytes(0))
        {
            return Err(format!("inspect_self: {me:?}"));
        }
        // The report serializes for `gatehouse status`.
        serde_json::to_string(&report).map_err(|e| e.to_string())?;
        Ok(())
    })
    .assert_ok();
}

#[test]
fn execve_kills_with_sigsys() {
    let dirs = Dirs::new();
    in_child(|| {
        harden_broker(&dirs)?;
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
fn execveat_kills_with_sigsys() {
    let dirs = Dirs::new();
    in_child(|| {
        harden_broker(&dirs)?;
        let prog = CString::new("/bin/true").unwrap();
        let argv = [prog.as_ptr(), std::ptr::null()];
        let envp: [*const libc::c_char; 1] = [std::ptr::null()];
        // SAFETY (test): valid NUL-terminated arrays; the kernel never gets to read them.
        unsafe {
            libc::syscall(
                libc::SYS_execveat,
                libc::AT_FDCWD,
                prog.as_ptr(),
                argv.as_ptr(),
                envp.as_ptr(),
                0,
            )
        };
        Err("execveat returned".into())
    })
    .assert_killed_by(Signal::SIGSYS);
}

#[test]
fn spawning_a_program_fails_without_killing() {
    // std::process::Command tries clone3 (ENOSYS by policy), then clone(CLONE_VM|CLONE_VFORK)
    // (EPERM: not a thread). The broker survives and gets an error.
    let dirs = Dirs::new();
    in_child(|| {
        harden_broker(&dirs)?;
        match std::process::Command::new("/bin/true").spawn() {
            Err(e) if e.raw_os_error() == Some(libc::EPERM) => Ok(()),
            other => Err(format!("spawn: {other:?}")),
        }
    })
    .assert_ok();
}

#[test]
fn fork_is_refused_and_clone3_is_enosys() {
    let dirs = Dirs::new();
    in_child(|| {
        harden_broker(&dirs)?;
        // SAFETY (test): fork is refused by the filter, so no child is created.
        let r = unsafe { libc::fork() };
        expect_errno("fork", r as i64, libc::EPERM)?;
        // SAFETY (test): a NULL clone_args pointer never reaches the kernel's copy (filtered).
        let r = unsafe { libc::syscall(libc::SYS_clone3, std::ptr::null::<u8>(), 0usize) };
        expect_errno("clone3", r, libc::ENOSYS)?;
        // SAFETY (test): raw vfork refused by the filter (not in the table).
        let r = unsafe { libc::syscall(libc::SYS_vfork) };
        expect_errno("vfork", r, libc::EPERM)
    })
    .assert_ok();
}

#[test]
fn ptrace_attach_to_sibling_kills() {
    let sib = Sibling::spawn(|| Ok(()));
    let dirs = Dirs::new();
    in_child(|| {
        harden_broker(&dirs)?;
        // SAFETY (test): PTRACE_ATTACH takes a pid only.
        unsafe { libc::ptrace(libc::PTRACE_ATTACH, sib.pid.as_raw(), 0, 0) };
        Err("ptrace returned".into())
    })
    .assert_killed_by(Signal::SIGSYS);
}

#[test]
fn process_vm_readv_of_sibling_kills() {
    let sib = Sibling::spawn(|| Ok(()));
    let dirs = Dirs::new();
    let target = 0u64;
    let remote_addr = &target as *const u64 as usize; // same address in the forked sibling
    in_child(|| {
        harden_broker(&dirs)?;
        let mut buf = [0u8; 8];
        let local = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: 8,
        };
        let remote = libc::iovec {
            iov_base: remote_addr as *mut libc::c_void,
            iov_len: 8,
        };
        // SAFETY (test): iovecs point to valid memory of the stated lengths.
        unsafe { libc::process_vm_readv(sib.pid.as_raw(), &local, 1, &remote, 1, 0) };
        Err("process_vm_readv returned".into())
    })
    .assert_killed_by(Signal::SIGSYS);
}

#[test]
fn process_vm_writev_kills() {
    let dirs = Dirs::new();
    in_child(|| {
        harden_broker(&dirs)?;
        // SAFETY (test): zero iovecs; the call is killed before the kernel looks at them.
        unsafe { libc::process_vm_writev(1, std::ptr::null(), 0, std::ptr::null(), 0, 0) };
        Err("process_vm_writev returned".into())
    })
    .assert_killed_by(Signal::SIGSYS);
}

#[test]
fn only_unix_sockets_can_be_created() {
    let dirs = Dirs::new();
    in_child(|| {
        harden_broker(&dirs)?;
        for (name, domain) in [
            ("AF_INET", libc::AF_INET),
            ("AF_INET6", libc::AF_INET6),
            ("AF_NETLINK", libc::AF_NETLINK),
            ("AF_PACKET", libc::AF_PACKET),
            ("AF_VSOCK", libc::AF_VSOCK),
        ] {
            // SAFETY (test): socket takes integers only.
            let r = unsafe { libc::socket(domain, libc::SOCK_STREAM, 0) };
            expect_errno(name, r as i64, libc::EPERM)?;
        }
        // Upper bits set to smuggle AF_INET past a 32-bit compare: still refused.
        // SAFETY (test): integers only.
        let r = unsafe {
            libc::syscall(
                libc::SYS_socket,
                (1u64 << 32) | libc::AF_INET as u64,
                libc::SOCK_STREAM,
                0,
            )
        };
        expect_errno("AF_INET|1<<32", r, libc::EPERM)?;
        std::net::TcpStream::connect("127.0.0.1:9")
            .err()
            .filter(|e| e.raw_os_error() == Some(libc::EPERM))
            .ok_or("TcpStream::connect not refused with EPERM")?;
        // SAFETY (test): integers only.
        let r = unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
        if r < 0 {
            return Err(format!("AF_UNIX socket refused: {}", errno()));
        }
        drop(own(r));
        Ok(())
    })
    .assert_ok();
}

#[test]
fn landlock_refuses_tcp_even_when_seccomp_allows_inet_sockets() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let dirs = Dirs::new();
    in_child(|| {
        // Same profile but with `socket` unconditional: only Landlock stands in the way.
        let mut profile = broker_profile(&dirs.broker_paths());
        let seccomp = profile.seccomp.as_mut().unwrap();
        let rule = seccomp
            .rules
            .iter_mut()
            .find(|r| r.name == "socket")
            .unwrap();
        rule.when.clear();
        apply(&profile, Strictness::Strict).map_err(|e| e.to_string())?;
        io_errno(
            "tcp connect",
            std::net::TcpStream::connect(addr),
            libc::EACCES,
        )?;
        io_errno(
            "tcp bind",
            std::net::TcpListener::bind("127.0.0.1:0"),
            libc::EACCES,
        )?;
        Ok(())
    })
    .assert_ok();
    drop(listener);
}

#[test]
fn files_outside_allowed_paths_are_eacces_and_install_dir_is_read_only() {
    let dirs = Dirs::new();
    in_child(|| {
        harden_broker(&dirs)?;
        io_errno(
            "read outside",
            std::fs::read(dirs.outside.join("secret.txt")),
            libc::EACCES,
        )?;
        io_errno(
            "read /etc/passwd",
            std::fs::read("/etc/passwd"),
            libc::EACCES,
        )?;
        io_errno(
            "create in install dir",
            std::fs::write(dirs.install.join("evil"), b"x"),
            libc::EACCES,
        )?;
        io_errno(
            "overwrite installed binary",
            std::fs::OpenOptions::new()
                .write(true)
                .open(dirs.install.join("gatehouse-broker")),
            libc::EACCES,
        )?;
        io_errno(
            "mkdir in /tmp",
            std::fs::create_dir("/tmp/gatehouse-sbx-x"),
            libc::EACCES,
        )?;
        // Read-only access does work.
        std::fs::read(dirs.install.join("gatehouse-broker"))
            .map_err(|e| format!("read install: {e}"))?;
        std::fs::read_dir(&dirs.install).map_err(|e| format!("list install: {e}"))?;
        std::fs::read_to_string("/proc/self/status").map_err(|e| format!("proc: {e}"))?;
        Ok(())
    })
    .assert_ok();
}

#[test]
fn state_dir_is_read_write() {
    let dirs = Dirs::new();
    in_child(|| {
        harden_broker(&dirs)?;
        let e = |what: &str| {
            let what = what.to_string();
            move |err: std::io::Error| format!("{what}: {err}")
        };
        let dir = dirs.state.join("vault");
        std::fs::create_dir(&dir).map_err(e("mkdir"))?;
        let tmp = dir.join("keys.tmp");
        let mut f = std::fs::File::create(&tmp).map_err(e("create"))?;
        f.write_all(b"sealed").map_err(e("write"))?;
        f.sync_all().map_err(e("fsync"))?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))
            .map_err(e("chmod"))?;
        std::fs::rename(&tmp, dir.join("keys")).map_err(e("rename"))?;
        let back = std::fs::read(dir.join("keys")).map_err(e("read"))?;
        if back != b"sealed" {
            return Err("read back mismatch".into());
        }
        std::fs::metadata(dir.join("keys")).map_err(e("stat"))?;
        std::fs::read_dir(&dir).map_err(e("readdir"))?.count();
        std::fs::remove_file(dir.join("keys")).map_err(e("unlink"))?;
        std::fs::remove_dir(&dir).map_err(e("rmdir"))?;
        Ok(())
    })
    .assert_ok();
}

#[test]
fn unix_socket_in_runtime_dir_works_with_threads() {
    let dirs = Dirs::new();
    in_child(|| {
        harden_broker(&dirs)?;
        let path = dirs.runtime.join("broker.sock");
        let l = UnixListener::bind(&path).map_err(|e| format!("bind: {e}"))?;
        let t = std::thread::spawn(move || -> std::io::Result<Vec<u8>> {
            let (mut s, _) = l.accept()?;
            let cred = nix::sys::socket::getsockopt(&s, nix::sys::socket::sockopt::PeerCredentials)
                .map_err(std::io::Error::from)?;
            assert_eq!(cred.pid() as u32, std::process::id());
            let mut b = vec![0u8; 5];
            s.read_exact(&mut b)?;
            s.write_all(b"world")?;
            Ok(b)
        });
        let mut c = UnixStream::connect(&path).map_err(|e| format!("connect: {e}"))?;
        c.write_all(b"hello").map_err(|e| e.to_string())?;
        let mut b = [0u8; 5];
        c.read_exact(&mut b).map_err(|e| e.to_string())?;
        let got = t
            .join()
            .map_err(|_| "thread panicked")?
            .map_err(|e| e.to_string())?;
        if got != b"hello" || &b != b"world" {
            return Err("exchange mismatch".into());
        }
        Ok(())
    })
    .assert_ok();
}

#[test]
fn tokio_multi_thread_runtime_works_under_the_filter() {
    let dirs = Dirs::new();
    in_child(|| {
        harden_broker(&dirs)?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(4)
            .enable_all()
            .thread_name("gh-test")
            .build()
            .map_err(|e| format!("runtime: {e}"))?;
        rt.block_on(async {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let path = dirs.runtime.join("tokio.sock");
            let l = tokio::net::UnixListener::bind(&path).map_err(|e| format!("bind: {e}"))?;
            let server = tokio::spawn(async move {
                let (mut s, _) = l.accept().await.unwrap();
                let mut b = [0u8; 4];
                s.read_exact(&mut b).await.unwrap();
                s.write_all(&b).await.unwrap();
            });
            let mut c = tokio::net::UnixStream::connect(&path)
                .await
                .map_err(|e| format!("connect: {e}"))?;
            c.write_all(b"ping").await.map_err(|e| e.to_string())?;
            let mut b = [0u8; 4];
            c.read_exact(&mut b).await.map_err(|e| e.to_string())?;
            server.await.map_err(|e| e.to_string())?;
            // Many tasks across workers, blocking pool threads, timers, tokio::fs.
            let mut handles = Vec::new();
            for i in 0..64u64 {
                handles.push(tokio::spawn(async move {
                    tokio::time::sleep(std::time::Duration::from_millis(i % 5)).await;
                    tokio::task::spawn_blocking(move || i * 2).await.unwrap()
                }));
            }
            let mut sum = 0;
            for h in handles {
                sum += h.await.map_err(|e| e.to_string())?;
            }
            if sum != (0..64).map(|i| i * 2).sum::<u64>() {
                return Err("wrong sum".to_string());
            }
            let f = dirs.state.join("t.txt");
            tokio::fs::write(&f, b"data")
                .await
                .map_err(|e| format!("fs write: {e}"))?;
            let back = tokio::fs::read(&f)
                .await
                .map_err(|e| format!("fs read: {e}"))?;
            if back != b"data" {
                return Err("fs mismatch".into());
            }
            // tokio::signal (signal-hook style self-pipe + rt_sigaction) and kill(self).
            let mut usr1 =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::user_defined1())
                    .map_err(|e| format!("signal: {e}"))?;
            // SAFETY (test): signalling ourselves with integer arguments.
            unsafe { libc::kill(libc::getpid(), libc::SIGUSR1) };
            tokio::time::timeout(std::time::Duration::from_secs(5), usr1.recv())
                .await
                .map_err(|_| "SIGUSR1 not delivered".to_string())?;
            let (tx, rx) = tokio::sync::oneshot::channel();
            std::thread::spawn(move || tx.send(7).unwrap());
            if rx.await.map_err(|e| e.to_string())? != 7 {
                return Err("oneshot".into());
            }
            Ok::<(), String>(())
        })?;
        rt.shutdown_timeout(std::time::Duration::from_secs(5));
        Ok(())
    })
    .assert_ok();
}

#[test]
fn secret_memory_works_after_apply() {
    let dirs = Dirs::new();
    in_child(|| {
        harden_broker(&dirs)?;
        let mut r = SecretRegion::new(64).map_err(|e| e.to_string())?;
        if r.kind() != MemoryKind::MemfdSecret {
            return Err(format!("kind {}: {:?}", r.kind(), r.fallback_reason()));
        }
        r.as_mut_slice().fill(0x42);
        if r.as_slice().iter().any(|b| *b != 0x42) {
            return Err("readback".into());
        }
        let mut k = gatehouse_sandbox::SecretKey32::generate(|k| {
            // getrandom syscall directly.
            // SAFETY (test): the buffer is 32 writable bytes.
            let n = unsafe { libc::getrandom(k.as_mut_ptr().cast(), 32, 0) };
            if n == 32 {
                Ok(())
            } else {
                Err(format!("getrandom {n}"))
            }
        })
        .map_err(|e| e.to_string())?;
        k.zeroize();
        // Fallback memory (mlock/madvise) also works under the filter.
        gatehouse_sandbox::SecretRegion::new_with(
            64,
            gatehouse_sandbox::MemoryPreference::ForceMlock,
        )
        .map_err(|e| format!("mlock fallback: {e}"))?;
        Ok(())
    })
    .assert_ok();
}

#[test]
fn kernel_keyring_add_read_unlink_works_after_apply() {
    let dirs = Dirs::new();
    in_child(|| {
        harden_broker(&dirs)?;
        let ty = CString::new("user").unwrap();
        let desc = CString::new(format!("gatehouse-sbx-test-{}", std::process::id())).unwrap();
        let payload = b"sealed-payload";
        // SAFETY (test): valid C strings and payload buffer.
        let id = unsafe {
            libc::syscall(
                libc::SYS_add_key,
                ty.as_ptr(),
                desc.as_ptr(),
                payload.as_ptr(),
                payload.len(),
                libc::KEY_SPEC_SESSION_KEYRING,
            )
        };
        if id < 0 {
            return Err(format!("add_key: {}", std::io::Error::last_os_error()));
        }
        let mut buf = [0u8; 64];
        // SAFETY (test): buffer of the stated length.
        let n = unsafe {
            libc::syscall(
                libc::SYS_keyctl,
                libc::KEYCTL_READ,
                id,
                buf.as_mut_ptr(),
                buf.len(),
            )
        };
        if n != payload.len() as i64 || &buf[..payload.len()] != payload {
            return Err(format!("keyctl read: {n}"));
        }
        // SAFETY (test): request_key with valid strings, no callout.
        let found = unsafe {
            libc::syscall(
                libc::SYS_request_key,
                ty.as_ptr(),
                desc.as_ptr(),
                std::ptr::null::<libc::c_char>(),
                0,
            )
        };
        if found != id {
            return Err(format!("request_key: {found} vs {id}"));
        }
        // SAFETY (test): integer arguments.
        let r = unsafe { libc::syscall(libc::SYS_keyctl, libc::KEYCTL_INVALIDATE, id) };
        if r != 0 {
            return Err(format!(
                "keyctl invalidate: {}",
                std::io::Error::last_os_error()
            ));
        }
        Ok(())
    })
    .assert_ok();
}

#[test]
fn hardening_cannot_be_undone_and_signals_stay_local() {
    let sib = Sibling::spawn(|| Ok(()));
    let dirs = Dirs::new();
    in_child(|| {
        harden_broker(&dirs)?;
        // SAFETY (test): integer arguments.
        let r = unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 1, 0, 0, 0) };
        expect_errno("PR_SET_DUMPABLE=1", r as i64, libc::EPERM)?;
        let r = nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_CORE, 0, 0);
        if r != Err(nix::errno::Errno::EPERM) {
            return Err(format!("setrlimit(RLIMIT_CORE): {r:?}"));
        }
        // SAFETY (test): kill with integer arguments; signal 0 only probes.
        let r = unsafe { libc::kill(sib.pid.as_raw(), 0) };
        expect_errno("kill(sibling)", r as i64, libc::EPERM)?;
        // SAFETY (test): as above, to itself.
        let r = unsafe { libc::kill(libc::getpid(), 0) };
        if r != 0 {
            return Err("kill(self, 0) refused".into());
        }
        // No executable memory.
        // SAFETY (test): fresh anonymous mapping request; refused by the filter.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                4096,
                libc::PROT_READ | libc::PROT_EXEC,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p != libc::MAP_FAILED || errno() != libc::EPERM {
            return Err("mmap(PROT_EXEC) not refused".into());
        }
        // No new filters / landlock domains / io_uring / user namespaces.
        // SAFETY (test): integer arguments.
        let r = unsafe { libc::syscall(libc::SYS_io_uring_setup, 1, std::ptr::null_mut::<u8>()) };
        expect_errno("io_uring_setup", r, libc::EPERM)?;
        // SAFETY (test): integer arguments.
        let r = unsafe { libc::unshare(libc::CLONE_NEWUSER) };
        expect_errno("unshare", r as i64, libc::EPERM)?;
        Ok(())
    })
    .assert_ok();
}

#[test]
fn sigsegv_in_hardened_child_leaves_no_core() {
    let dirs = Dirs::new();
    let out = in_child(|| {
        std::env::set_current_dir(&dirs.state).map_err(|e| e.to_string())?;
        harden_broker(&dirs)?;
        // std installs a SIGSEGV handler (stack-overflow detection); restore the default
        // action so the signal terminates the process as a real crash would.
        // SAFETY (test): setting a default disposition and raising a signal.
        unsafe {
            libc::signal(libc::SIGSEGV, libc::SIG_DFL);
            libc::raise(libc::SIGSEGV);
        }
        Err("survived SIGSEGV".into())
    });
    match out.status {
        nix::sys::wait::WaitStatus::Signaled(_, Signal::SIGSEGV, core) => {
            assert!(!core, "kernel reports a core dump");
        }
        other => panic!("unexpected: {other:?}: {}", out.message),
    }
    let cores: Vec<_> = std::fs::read_dir(&dirs.state)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("core"))
        .collect();
    assert!(cores.is_empty(), "core files: {cores:?}");
}

#[test]
fn unprivileged_sibling_cannot_read_or_trace_hardened_process() {
    let (uid, gid) = test_user();
    let dirs = Dirs::new();
    dirs.chown_all(uid, gid);
    // The hardened process: drop to the test user, apply the profile, wait.
    // setuid() clears "dumpable" by itself, so both siblings set it back first: the
    // hardened one must become non-dumpable through apply(), not through the uid change.
    let set_dumpable = || {
        // SAFETY (test): integer arguments.
        unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 1, 0, 0, 0) };
    };
    let hardened = Sibling::spawn(|| {
        drop_to(uid, gid)?;
        set_dumpable();
        harden_broker(&dirs).map(|_| ())
    });
    // A plain same-uid process for contrast (proves the refusal is the hardening).
    let plain = Sibling::spawn(|| {
        drop_to(uid, gid)?;
        set_dumpable();
        Ok(())
    });
    let hp = hardened.pid.as_raw();
    let pp = plain.pid.as_raw();

    // From the outside, inspect_pid sees the hardening.
    let h = gatehouse_sandbox::inspect_pid(hp).unwrap();
    assert_eq!(h.no_new_privs, Some(true), "{h:?}");
    assert_eq!(h.seccomp, Some(SeccompMode::Filter), "{h:?}");
    assert_eq!(h.dumpable, Some(false), "{h:?}");
    assert_eq!(h.core_limit, Some(Rlim::Bytes(0)), "{h:?}");
    let p = gatehouse_sandbox::inspect_pid(pp).unwrap();
    assert_eq!(p.dumpable, Some(true), "{p:?}");

    in_child(|| {
        drop_to(uid, gid)?;
        // SAFETY (test): PR_SET_DUMPABLE after setuid resets dumpable; make sure the attacker
        // is an ordinary dumpable same-uid process.
        unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 1, 0, 0, 0) };
        io_errno(
            "open hardened /proc/PID/mem",
            std::fs::File::open(format!("/proc/{hp}/mem")),
            libc::EACCES,
        )?;
        io_errno(
            "readlink hardened /proc/PID/exe",
            std::fs::read_link(format!("/proc/{hp}/exe")),
            libc::EACCES,
        )?;
        // SAFETY (test): PTRACE_ATTACH takes a pid only.
        let r = unsafe { libc::ptrace(libc::PTRACE_ATTACH, hp, 0, 0) };
        expect_errno("ptrace attach hardened", r, libc::EPERM)?;
        // Contrast: the plain same-uid process is readable (no Yama on this kernel).
        std::fs::File::open(format!("/proc/{pp}/mem"))
            .map_err(|e| format!("control: open plain /proc/PID/mem: {e}"))?;
        Ok(())
    })
    .assert_ok();
}

#[test]
fn landlocked_broker_cannot_resolve_unsandboxed_peer_exe() {
    // Documents a real constraint for the broker's peer-identity check: Landlock denies
    // ptrace-mode access (which readlink(/proc/PID/exe) needs) to processes outside the
    // sandbox's domain. /proc/PID/status stays readable.
    let peer = Sibling::spawn(|| Ok(()));
    let dirs = Dirs::new();
    in_child(|| {
        let pp = peer.pid.as_raw();
        std::fs::read_link(format!("/proc/{pp}/exe")).map_err(|e| format!("before: {e}"))?;
        harden_broker(&dirs)?;
        io_errno(
            "readlink peer exe after landlock",
            std::fs::read_link(format!("/proc/{pp}/exe")),
            libc::EACCES,
        )?;
        std::fs::read_to_string(format!("/proc/{pp}/status"))
            .map_err(|e| format!("peer status: {e}"))?;
        Ok(())
    })
    .assert_ok();
}

#[test]
fn strict_mode_refuses_landlock_in_multithreaded_process_without_tsync() {
    if gatehouse_sandbox::hardening::landlock_abi().unwrap_or(0) >= 8 {
        return; // TSYNC available: the situation cannot arise.
    }
    let dirs = Dirs::new();
    in_child(|| {
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let t = std::thread::spawn(move || rx.recv().ok());
        let err = apply(&broker_profile(&dirs.broker_paths()), Strictness::Strict)
            .err()
            .ok_or("Strict apply succeeded with 2 threads")?;
        if !matches!(
            err,
            gatehouse_sandbox::SandboxError::Layer {
                layer: gatehouse_sandbox::Layer::Landlock,
                ..
            }
        ) {
            return Err(format!("wrong error: {err}"));
        }
        // AllowDegraded records it instead.
        let report = apply(
            &broker_profile(&dirs.broker_paths()),
            Strictness::AllowDegraded,
        )
        .map_err(|e| e.to_string())?;
        if !matches!(report.landlock, LayerStatus::Degraded { .. }) {
            return Err(format!("landlock: {:?}", report.landlock));
        }
        if !matches!(report.seccomp, LayerStatus::Applied { .. }) {
            return Err(format!("seccomp: {:?}", report.seccomp));
        }
        drop(tx);
        let _ = t.join();
        Ok(())
    })
    .assert_ok();
}

#[test]
fn broker_table_is_well_formed_and_reviewed() {
    let dirs = Dirs::new();
    let p = broker_profile(&dirs.broker_paths());
    let s = p.seccomp.as_ref().unwrap();
    s.validate().unwrap();
    assert_eq!(s.default_action, SyscallAction::Errno(libc::EPERM));
    for r in &s.rules {
        assert!(!r.why.trim().is_empty(), "{} has no reason", r.name);
    }
    for k in [
        "execve",
        "execveat",
        "ptrace",
        "process_vm_readv",
        "process_vm_writev",
    ] {
        assert_eq!(s.rule(k).unwrap().action, SyscallAction::KillProcess, "{k}");
    }
    assert_eq!(
        s.rule("clone3").unwrap().action,
        SyscallAction::Errno(libc::ENOSYS)
    );
    for absent in [
        "fork",
        "vfork",
        "io_uring_setup",
        "bpf",
        "seccomp",
        "mount",
        "pidfd_getfd",
        "memfd_create",
        "personality",
    ] {
        assert!(s.rule(absent).is_none(), "{absent} must not be listed");
    }
    let ll = p.landlock.as_ref().unwrap();
    assert!(ll.tcp_bind.is_empty() && ll.tcp_connect.is_empty());
    s.compile(1).unwrap();
}

#[test]
fn known_gap_landlock_does_not_restrict_connect_to_pathname_unix_sockets() {
    // Documented limitation (README): Landlock up to ABI 8 does not control connect(2) to an
    // existing pathname unix socket, so the broker can reach any unix socket whose file
    // permissions allow it (that is how it reaches the D-Bus session bus without a rule).
    let dirs = Dirs::new();
    let path = dirs.outside.join("other-service.sock");
    let listener = UnixListener::bind(&path).unwrap();
    in_child(|| {
        harden_broker(&dirs)?;
        UnixStream::connect(&path).map_err(|e| format!("connect: {e}"))?;
        Ok(())
    })
    .assert_ok();
    drop(listener);
}
