//! Secret memory: read-back, zeroize, Debug hygiene, arena/key handles, memlock errors, stack
//! scrubbing, and the property the design rests on — memfd_secret pages cannot be read through
//! /proc/PID/mem, even by root, while ordinary heap memory can.
#![allow(unsafe_code)]

mod common;

use std::os::unix::fs::FileExt;

use common::*;
use gatehouse_sandbox::secret_mem::{STACK_SCRUB_BYTES, memlock_limit, page_size};
use gatehouse_sandbox::{
    MemoryKind, MemoryPreference, SandboxError, SecretArena, SecretKey32, SecretRegion,
    probe_memory_kind, scrub_stack,
};

fn no_secretmem_expected() -> bool {
    std::env::var_os("GATEHOUSE_TEST_NO_SECRETMEM").is_some()
}

#[test]
fn probe_reports_memfd_secret_on_this_kernel() {
    let (kind, why) = probe_memory_kind();
    if no_secretmem_expected() {
        assert_eq!(kind, MemoryKind::MlockDontDump);
        assert!(why.is_some(), "a fallback must say why");
        return;
    }
    assert_eq!(kind, MemoryKind::MemfdSecret, "fallback reason: {why:?}");
    assert_eq!(why, None);
    assert_eq!(kind.to_string(), "memfd_secret");
    assert_eq!(MemoryKind::MlockDontDump.to_string(), "mlock+dontdump");
    assert_eq!(serde_json::to_string(&kind).unwrap(), "\"memfd_secret\"");
}

#[test]
fn region_reads_back_zeroizes_and_has_page_rounded_fixed_size() {
    for pref in [MemoryPreference::Auto, MemoryPreference::ForceMlock] {
        let mut r = SecretRegion::new_with(100, pref).unwrap();
        assert_eq!(r.len(), 100);
        assert_eq!(r.mapped_len(), page_size());
        assert!(
            r.as_slice().iter().all(|b| *b == 0),
            "fresh region is zeroed"
        );
        for (i, b) in r.as_mut_slice().iter_mut().enumerate() {
            *b = i as u8;
        }
        assert!(r.as_slice().iter().enumerate().all(|(i, b)| *b == i as u8));
        let addr = r.addr();
        r.zeroize();
        assert!(r.as_slice().iter().all(|b| *b == 0));
        assert_eq!(r.addr(), addr, "never moves");
    }
    assert!(matches!(
        SecretRegion::new(0),
        Err(SandboxError::InvalidLength(0))
    ));
    let r = SecretRegion::new(page_size() + 1).unwrap();
    assert_eq!(r.mapped_len(), 2 * page_size());
}

#[test]
fn kinds_follow_preference_and_fallback_says_why() {
    let m = SecretRegion::new_with(32, MemoryPreference::ForceMlock).unwrap();
    assert_eq!(m.kind(), MemoryKind::MlockDontDump);
    assert!(m.fallback_reason().is_some());
    if !no_secretmem_expected() {
        let s = SecretRegion::new_with(32, MemoryPreference::RequireSecret).unwrap();
        assert_eq!(s.kind(), MemoryKind::MemfdSecret);
        assert_eq!(s.fallback_reason(), None);
        assert_eq!(
            SecretRegion::new(32).unwrap().kind(),
            MemoryKind::MemfdSecret
        );
    }
}

#[test]
fn debug_never_shows_bytes() {
    let mut r = SecretRegion::new(16).unwrap();
    r.as_mut_slice().copy_from_slice(b"TOPSECRETKEY1234");
    let d = format!("{r:?}");
    assert!(!d.contains("TOPSECRET"), "{d}");
    assert!(!d.contains("84, 79, 80"), "{d}"); // "TOP" as decimal bytes
    assert!(d.contains("kind") && d.contains("len"), "{d}");
    let mut src = *b"0123456789abcdef0123456789ABCDEF";
    let k = SecretKey32::from_bytes(&mut src).unwrap();
    assert_eq!(src, [0u8; 32], "source zeroized");
    assert_eq!(k.expose(), b"0123456789abcdef0123456789ABCDEF");
    let d = format!("{k:?}");
    assert!(!d.contains("0123") && !d.contains("48, 49"), "{d}");
    let mut a = SecretArena::new(32, 4).unwrap();
    let s = a.alloc().unwrap();
    a.get_mut(&s)
        .unwrap()
        .copy_from_slice(b"ARENASECRETARENASECRETARENASECRE");
    let d = format!("{a:?} {s:?}");
    assert!(!d.contains("ARENA") && !d.contains("65, 82"), "{d}");
}

#[test]
fn arena_slots_are_isolated_zeroized_on_free_and_checked() {
    let mut a = SecretArena::new(32, 3).unwrap();
    assert_eq!(a.capacity(), 3);
    let s0 = a.alloc().unwrap();
    let s1 = a.alloc().unwrap();
    let s2 = a.alloc().unwrap();
    assert!(matches!(
        a.alloc(),
        Err(SandboxError::ArenaFull { slots: 3 })
    ));
    a.get_mut(&s0).unwrap().fill(0xAA);
    a.get_mut(&s1).unwrap().fill(0xBB);
    assert!(a.get(&s0).unwrap().iter().all(|b| *b == 0xAA));
    assert!(a.get(&s1).unwrap().iter().all(|b| *b == 0xBB));
    assert!(a.get(&s2).unwrap().iter().all(|b| *b == 0));
    let idx = s1.index();
    a.free(s1).unwrap();
    assert_eq!(a.in_use(), 2);
    let again = a.alloc().unwrap();
    assert_eq!(again.index(), idx);
    assert!(
        a.get(&again).unwrap().iter().all(|b| *b == 0),
        "freed slot was zeroized"
    );
    // A handle from another arena is refused.
    let mut other = SecretArena::new(32, 3).unwrap();
    let foreign = other.alloc().unwrap();
    assert!(matches!(a.get(&foreign), Err(SandboxError::ForeignSlot)));
    // Purge zeroizes everything and invalidates all handles.
    a.purge();
    assert_eq!(a.in_use(), 0);
    assert!(matches!(a.get(&s0), Err(SandboxError::ForeignSlot)));
    // 128 keys of 32 bytes share one page.
    let big = SecretArena::new(32, 128).unwrap();
    assert_eq!(big.capacity(), 128);
}

#[test]
fn scrub_stack_wipes_residues_below_the_caller() {
    #[inline(never)]
    fn leave_residue() -> usize {
        let mut buf = [0x5Au8; 24 * 1024];
        std::hint::black_box(&mut buf);
        buf.as_ptr() as usize // lowest address: deepest part of the residue
    }
    std::thread::spawn(|| {
        let mem = std::fs::File::open("/proc/self/mem").unwrap();
        let mut probe = vec![0u8; 1024];
        let addr = leave_residue();
        mem.read_exact_at(&mut probe, addr as u64).unwrap();
        assert!(
            probe.iter().all(|b| *b == 0x5A),
            "residue should be there before scrubbing"
        );
        scrub_stack();
        mem.read_exact_at(&mut probe, addr as u64).unwrap();
        assert!(
            probe.iter().all(|b| *b == 0),
            "residue survived scrub_stack"
        );
    })
    .join()
    .unwrap();
    assert_eq!(STACK_SCRUB_BYTES, 32 * 1024);
}

/// The property the design rests on: root reading /proc/PARENT/mem gets the heap but not
/// memfd_secret pages. The mlock fallback is readable (that is what it does not defend).
#[test]
fn root_cannot_read_memfd_secret_through_proc_mem_but_can_read_heap() {
    if no_secretmem_expected() {
        return;
    }
    let mut secret = SecretRegion::new_with(64, MemoryPreference::RequireSecret).unwrap();
    secret.as_mut_slice().fill(0xC3);
    let mut fallback = SecretRegion::new_with(64, MemoryPreference::ForceMlock).unwrap();
    fallback.as_mut_slice().fill(0xD4);
    let heap = Box::new([0xE5u8; 64]); // on the heap on purpose
    let parent = std::process::id();
    let (s_addr, f_addr, h_addr) = (secret.addr(), fallback.addr(), heap.as_ptr() as usize);
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test runs as root (CI does)"
    );
    in_child(|| {
        let mem = std::fs::File::open(format!("/proc/{parent}/mem"))
            .map_err(|e| format!("open /proc/{parent}/mem as root: {e}"))?;
        let mut buf = [0u8; 64];
        mem.read_exact_at(&mut buf, h_addr as u64)
            .map_err(|e| format!("heap read failed: {e}"))?;
        if buf != [0xE5; 64] {
            return Err("heap read wrong bytes".into());
        }
        mem.read_exact_at(&mut buf, f_addr as u64)
            .map_err(|e| format!("mlock fallback read failed: {e}"))?;
        if buf != [0xD4; 64] {
            return Err("fallback read wrong bytes".into());
        }
        buf = [0; 64];
        match mem.read_at(&mut buf, s_addr as u64) {
            Err(e) if matches!(e.raw_os_error(), Some(libc::EIO) | Some(libc::EFAULT)) => {}
            other => {
                return Err(format!(
                    "memfd_secret page readable via /proc/PID/mem: {other:?} first={:#x}",
                    buf[0]
                ));
            }
        }
        if buf.contains(&0xC3) {
            return Err("secret bytes leaked".into());
        }
        // process_vm_readv (root, not sandboxed) fails the same way.
        let mut out = [0u8; 64];
        let local = libc::iovec {
            iov_base: out.as_mut_ptr().cast(),
            iov_len: 64,
        };
        let remote = libc::iovec {
            iov_base: s_addr as *mut libc::c_void,
            iov_len: 64,
        };
        // SAFETY (test): iovecs describe valid buffers of the stated lengths.
        let n = unsafe { libc::process_vm_readv(parent as i32, &local, 1, &remote, 1, 0) };
        if n >= 0 || out.contains(&0xC3) {
            return Err(format!("process_vm_readv read the secret page: {n}"));
        }
        // And the forked child does not even have the mapping (MADV_DONTFORK).
        let mut own_view = [0u8; 64];
        let me = std::fs::File::open("/proc/self/mem").unwrap();
        if me.read_exact_at(&mut own_view, s_addr as u64).is_ok() && own_view.contains(&0xC3) {
            return Err("child inherited the secret mapping".into());
        }
        Ok(())
    })
    .assert_ok();
    assert!(
        secret.as_slice().iter().all(|b| *b == 0xC3),
        "parent still reads its secret"
    );
}

#[test]
fn memlock_limit_is_reported_clearly_for_unprivileged_users() {
    let (uid, gid) = test_user();
    in_child(|| {
        let limit = 64 * 1024;
        nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_MEMLOCK, limit, limit)
            .map_err(|e| e.to_string())?;
        drop_to(uid, gid)?; // root's CAP_IPC_LOCK would bypass the limit
        if memlock_limit() != Some(limit) {
            return Err(format!("limit not visible: {:?}", memlock_limit()));
        }
        for pref in [MemoryPreference::Auto, MemoryPreference::ForceMlock] {
            match SecretRegion::new_with(1024 * 1024, pref) {
                Err(e @ SandboxError::MemlockLimit { .. }) => {
                    let msg = e.to_string();
                    if !msg.contains("RLIMIT_MEMLOCK") || !msg.contains("65536") {
                        return Err(format!("unclear message: {msg}"));
                    }
                }
                other => return Err(format!("{pref:?}: expected MemlockLimit, got {other:?}")),
            }
        }
        // Within the limit it works, for an unprivileged user too.
        let r = SecretRegion::new(4096).map_err(|e| e.to_string())?;
        if !no_secretmem_expected() && r.kind() != MemoryKind::MemfdSecret {
            return Err(format!("unprivileged kind: {:?}", r.fallback_reason()));
        }
        Ok(())
    })
    .assert_ok();
}
