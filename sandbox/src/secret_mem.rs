//! Secret memory: fixed-size mappings for key material.
//!
//! **Owns:** every mapping that holds a secret in a Gatehouse daemon — [`SecretRegion`]
//! (one page-rounded mapping), [`SecretKey`] (one fixed-size key in its own region),
//! [`SecretArena`] (many small fixed slots sharing one region) — plus
//! [`probe_memory_kind`], which tells `gatehouse status` which kind of memory is in use and
//! why, and [`scrub_stack`], which wipes key residues from the calling thread's stack.
//!
//! Where the kernel offers it, memory comes from `memfd_secret(2)`: those pages are removed
//! from the kernel's direct map, so they cannot be read through `/proc/PID/mem`,
//! `process_vm_readv` or `ptrace(PEEKDATA)` — not even by root — and they are locked and never
//! swapped or dumped. Otherwise the fallback is an anonymous private mapping that is `mlock`ed
//! (never swapped), `MADV_DONTDUMP` (never in a core dump) and `MADV_WIPEONFORK` (a forked child
//! sees zeros). The fallback does **not** defend against root or a same-uid ptracer; see the
//! crate README.
//!
//! **Must never:** reallocate or move a secret (regions have a fixed size, fixed at creation),
//! print secret bytes (`Debug` shows kind and length only; there is no `Display`), silently
//! downgrade from `memfd_secret` to the fallback (the reason is always recorded and
//! [`MemoryPreference::RequireSecret`] refuses), or unmap without zeroizing first.

use std::fmt;
use std::io;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};
use zeroize::Zeroize;

use crate::SandboxError;

/// Which kind of memory backs a secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MemoryKind {
    /// Pages from `memfd_secret(2)`: removed from the kernel direct map, unreadable through
    /// `/proc/PID/mem`, `process_vm_readv` and `ptrace` even by root; locked; never dumped.
    MemfdSecret,
    /// Anonymous private mapping, `mlock`ed, `MADV_DONTDUMP` and `MADV_WIPEONFORK`.
    /// Readable by root and by a same-uid ptracer (when ptrace is permitted).
    MlockDontDump,
}

impl fmt::Display for MemoryKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MemoryKind::MemfdSecret => "memfd_secret",
            MemoryKind::MlockDontDump => "mlock+dontdump",
        })
    }
}

/// What kind of memory a caller accepts for a new region.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MemoryPreference {
    /// `memfd_secret` if the kernel offers it, else the mlock fallback (the reason is recorded
    /// in [`SecretRegion::fallback_reason`]). A memlock-limit failure is an error, never a
    /// reason to fall back.
    #[default]
    Auto,
    /// `memfd_secret` or an error ([`SandboxError::SecretMemoryUnavailable`]).
    RequireSecret,
    /// Always the mlock fallback (tests, or kernels where `memfd_secret` misbehaves).
    ForceMlock,
}

/// The page size of this machine.
pub fn page_size() -> usize {
    // SAFETY: sysconf has no memory-safety preconditions.
    let ps = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if ps <= 0 { 4096 } else { ps as usize }
}

fn round_to_pages(len: usize) -> Option<usize> {
    let ps = page_size();
    len.checked_add(ps - 1).map(|l| l / ps * ps)
}

/// The current `RLIMIT_MEMLOCK` soft limit in bytes (`None` = unlimited or unknown).
pub fn memlock_limit() -> Option<u64> {
    match nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_MEMLOCK) {
        Ok((soft, _)) if soft != libc::RLIM_INFINITY => Some(soft),
        _ => None,
    }
}

/// A fixed-size, page-rounded mapping for secrets that never reallocates or moves.
///
/// Created by [`SecretRegion::new`] / [`SecretRegion::new_with`]. Dropping it zeroizes the whole
/// mapping (volatile writes via `zeroize`), then unmaps it (which also unlocks it).
/// `Debug` prints only the kind and length.
pub struct SecretRegion {
    ptr: NonNull<u8>,
    len: usize,
    map_len: usize,
    kind: MemoryKind,
    fallback_reason: Option<String>,
}

// SAFETY: SecretRegion exclusively owns its mapping (no other handle to it exists; the memfd is
// closed right after mmap). Shared access only hands out `&[u8]`, mutable access requires
// `&mut self`, so the usual borrow rules make cross-thread use as sound as for `Vec<u8>`.
unsafe impl Send for SecretRegion {}
// SAFETY: see `Send` above; `&SecretRegion` only permits reads.
unsafe impl Sync for SecretRegion {}

fn os_err(op: &'static str) -> impl FnOnce(io::Error) -> SandboxError {
    move |source| SandboxError::Memory { op, source }
}

fn memlock_error(requested: usize) -> SandboxError {
    SandboxError::MemlockLimit {
        requested,
        limit: memlock_limit(),
    }
}

/// Try to create a `memfd_secret` mapping of `map_len` bytes.
fn map_secret(map_len: usize) -> Result<NonNull<u8>, (SandboxError, bool /*may fall back*/)> {
    // SAFETY: memfd_secret takes a flags integer and returns a new fd or -1; no pointers.
    let fd = unsafe { libc::syscall(libc::SYS_memfd_secret, libc::O_CLOEXEC as libc::c_uint) };
    if fd < 0 {
        let e = io::Error::last_os_error();
        let reason = match e.raw_os_error() {
            Some(libc::ENOSYS) => format!(
                "memfd_secret unavailable (ENOSYS): kernel older than 5.14, built without \
                 CONFIG_SECRETMEM, or booted with secretmem.enable=0 ({e})"
            ),
            Some(libc::EPERM) | Some(libc::EACCES) => {
                format!("memfd_secret refused by policy (seccomp/LSM): {e}")
            }
            _ => format!("memfd_secret failed: {e}"),
        };
        return Err((SandboxError::SecretMemoryUnavailable { reason }, true));
    }
    let fd = fd as libc::c_int;
    let close = |fd| {
        // SAFETY: `fd` is the memfd we just created and nothing else owns it.
        unsafe { libc::close(fd) };
    };
    // SAFETY: ftruncate on our own fd with a non-negative length.
    if unsafe { libc::ftruncate(fd, map_len as libc::off_t) } != 0 {
        let e = io::Error::last_os_error();
        close(fd);
        return Err((
            SandboxError::SecretMemoryUnavailable {
                reason: format!("memfd_secret ftruncate failed: {e}"),
            },
            true,
        ));
    }
    // SAFETY: a fresh shared mapping of our own memfd; the kernel picks the address, so no
    // existing memory is affected.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            map_len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            fd,
            0,
        )
    };
    let mmap_err = io::Error::last_os_error();
    close(fd);
    if p == libc::MAP_FAILED {
        // secretmem accounts its pages as locked memory: over RLIMIT_MEMLOCK mmap fails with
        // EAGAIN. That is a limit problem, not a reason to fall back (the fallback is locked too).
        if mmap_err.raw_os_error() == Some(libc::EAGAIN) {
            return Err((memlock_error(map_len), false));
        }
        return Err((
            SandboxError::SecretMemoryUnavailable {
                reason: format!("memfd_secret mmap failed: {mmap_err}"),
            },
            true,
        ));
    }
    // A forked child must not inherit a view of the secret pages.
    // SAFETY: advising our own fresh mapping of exactly `map_len` bytes.
    if unsafe { libc::madvise(p, map_len, libc::MADV_DONTFORK) } != 0 {
        let e = io::Error::last_os_error();
        // SAFETY: unmapping the mapping created above, never handed out.
        unsafe { libc::munmap(p, map_len) };
        return Err((os_err("madvise(MADV_DONTFORK)")(e), false));
    }
    NonNull::new(p.cast::<u8>()).ok_or((
        SandboxError::SecretMemoryUnavailable {
            reason: "mmap returned NULL".into(),
        },
        false,
    ))
}

/// Anonymous mapping + mlock + MADV_DONTDUMP + MADV_WIPEONFORK.
fn map_locked(map_len: usize) -> Result<NonNull<u8>, SandboxError> {
    // SAFETY: a fresh private anonymous mapping; the kernel picks the address.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            map_len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return Err(os_err("mmap")(io::Error::last_os_error()));
    }
    let undo = |p: *mut libc::c_void| {
        // SAFETY: unmapping the mapping created above, never handed out.
        unsafe { libc::munmap(p, map_len) };
    };
    // SAFETY: locking our own fresh mapping of exactly `map_len` bytes.
    if unsafe { libc::mlock(p, map_len) } != 0 {
        let e = io::Error::last_os_error();
        undo(p);
        return Err(match e.raw_os_error() {
            Some(libc::ENOMEM) | Some(libc::EPERM) | Some(libc::EAGAIN) => memlock_error(map_len),
            _ => os_err("mlock")(e),
        });
    }
    for (advice, op) in [
        (libc::MADV_DONTDUMP, "madvise(MADV_DONTDUMP)"),
        (libc::MADV_WIPEONFORK, "madvise(MADV_WIPEONFORK)"),
    ] {
        // SAFETY: advising our own fresh mapping of exactly `map_len` bytes.
        if unsafe { libc::madvise(p, map_len, advice) } != 0 {
            let e = io::Error::last_os_error();
            undo(p);
            return Err(os_err(op)(e));
        }
    }
    NonNull::new(p.cast::<u8>()).ok_or_else(|| SandboxError::Memory {
        op: "mmap",
        source: io::Error::other("mmap returned NULL"),
    })
}

impl SecretRegion {
    /// A region of at least `len` bytes (rounded up to whole pages), zero-filled, using
    /// [`MemoryPreference::Auto`].
    pub fn new(len: usize) -> Result<SecretRegion, SandboxError> {
        Self::new_with(len, MemoryPreference::Auto)
    }

    /// A region of at least `len` bytes (rounded up to whole pages), zero-filled, with the
    /// given preference. `len == 0` is an error.
    pub fn new_with(len: usize, pref: MemoryPreference) -> Result<SecretRegion, SandboxError> {
        if len == 0 {
            return Err(SandboxError::InvalidLength(len));
        }
        let map_len = round_to_pages(len).ok_or(SandboxError::InvalidLength(len))?;
        let (ptr, kind, fallback_reason) = match pref {
            MemoryPreference::ForceMlock => (
                map_locked(map_len)?,
                MemoryKind::MlockDontDump,
                Some("mlock fallback forced by caller (MemoryPreference::ForceMlock)".to_string()),
            ),
            MemoryPreference::RequireSecret => {
                let p = map_secret(map_len).map_err(|(e, _)| e)?;
                (p, MemoryKind::MemfdSecret, None)
            }
            MemoryPreference::Auto => match map_secret(map_len) {
                Ok(p) => (p, MemoryKind::MemfdSecret, None),
                Err((e, true)) => {
                    let reason = match e {
                        SandboxError::SecretMemoryUnavailable { reason } => reason,
                        other => other.to_string(),
                    };
                    tracing::warn!(%reason, "secret memory: falling back to mlock+dontdump");
                    (
                        map_locked(map_len)?,
                        MemoryKind::MlockDontDump,
                        Some(reason),
                    )
                }
                Err((e, false)) => return Err(e),
            },
        };
        Ok(SecretRegion {
            ptr,
            len,
            map_len,
            kind,
            fallback_reason,
        })
    }

    /// Which kind of memory backs this region.
    pub fn kind(&self) -> MemoryKind {
        self.kind
    }

    /// Why this region is not `memfd_secret` (`None` when it is).
    pub fn fallback_reason(&self) -> Option<&str> {
        self.fallback_reason.as_deref()
    }

    /// The usable length requested at creation.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Always false: a region has at least one byte.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The mapped length (whole pages) that is locked and zeroized on drop.
    pub fn mapped_len(&self) -> usize {
        self.map_len
    }

    /// The secret bytes.
    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: `ptr` points to a live mapping of `map_len >= len` readable bytes owned by
        // `self`; the returned borrow is tied to `&self`, so no `&mut` alias can coexist.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }

    /// The secret bytes, mutably.
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: as in `as_slice`, and `&mut self` guarantees exclusivity.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }

    fn whole_mapping(&mut self) -> &mut [u8] {
        // SAFETY: the whole mapping is `map_len` writable bytes owned by `self`; `&mut self`
        // guarantees exclusivity.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.map_len) }
    }

    /// Overwrite the whole mapping with zeros (volatile writes that the compiler cannot elide).
    pub fn zeroize(&mut self) {
        self.whole_mapping().zeroize();
    }

    /// The start address of the mapping (for tests that probe `/proc/PID/mem`; never a way to
    /// access the bytes).
    pub fn addr(&self) -> usize {
        self.ptr.as_ptr() as usize
    }
}

impl Drop for SecretRegion {
    fn drop(&mut self) {
        self.zeroize();
        // SAFETY: `ptr`/`map_len` describe the mapping created in `new_with`, owned only by us;
        // no borrow of it can outlive `self`. munmap also drops the mlock.
        unsafe {
            libc::munmap(self.ptr.as_ptr().cast(), self.map_len);
        }
    }
}

impl fmt::Debug for SecretRegion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretRegion")
            .field("kind", &self.kind)
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

/// Which kind of secret memory new regions get on this machine right now, and — when it is
/// not `memfd_secret` — why. Performs a real one-page allocation (and frees it), so it also
/// reflects seccomp policy and `RLIMIT_MEMLOCK`.
pub fn probe_memory_kind() -> (MemoryKind, Option<String>) {
    match SecretRegion::new_with(1, MemoryPreference::RequireSecret) {
        Ok(_) => (MemoryKind::MemfdSecret, None),
        Err(SandboxError::SecretMemoryUnavailable { reason }) => {
            (MemoryKind::MlockDontDump, Some(reason))
        }
        Err(e) => (MemoryKind::MlockDontDump, Some(e.to_string())),
    }
}

/// A fixed-size secret key of `N` bytes in its own [`SecretRegion`] (one page).
///
/// Many keys? Prefer a [`SecretArena`]: each region costs a page of `RLIMIT_MEMLOCK`.
pub struct SecretKey<const N: usize> {
    region: SecretRegion,
}

/// A 256-bit key in secret memory.
pub type SecretKey32 = SecretKey<32>;

impl<const N: usize> SecretKey<N> {
    /// An all-zero key in secret memory ([`MemoryPreference::Auto`]).
    pub fn zeroed() -> Result<Self, SandboxError> {
        Self::zeroed_with(MemoryPreference::Auto)
    }

    /// An all-zero key in secret memory with the given preference.
    pub fn zeroed_with(pref: MemoryPreference) -> Result<Self, SandboxError> {
        if N == 0 {
            return Err(SandboxError::InvalidLength(0));
        }
        Ok(SecretKey {
            region: SecretRegion::new_with(N, pref)?,
        })
    }

    /// Move `src` into secret memory, zeroizing `src` (even on error).
    pub fn from_bytes(src: &mut [u8; N]) -> Result<Self, SandboxError> {
        let k = Self::zeroed();
        let k = k.map(|mut k| {
            k.expose_mut().copy_from_slice(src);
            k
        });
        src.zeroize();
        k
    }

    /// Build the key in place (e.g. `|k| getrandom::fill(k)`), so it never exists elsewhere.
    pub fn generate<E>(f: impl FnOnce(&mut [u8; N]) -> Result<(), E>) -> Result<Self, SandboxError>
    where
        E: fmt::Display,
    {
        let mut k = Self::zeroed()?;
        f(k.expose_mut()).map_err(|e| SandboxError::KeyInit(e.to_string()))?;
        Ok(k)
    }

    /// The key bytes.
    pub fn expose(&self) -> &[u8; N] {
        self.region.as_slice()[..N]
            .try_into()
            .expect("region holds N bytes")
    }

    /// The key bytes, mutably.
    pub fn expose_mut(&mut self) -> &mut [u8; N] {
        (&mut self.region.as_mut_slice()[..N])
            .try_into()
            .expect("region holds N bytes")
    }

    /// Which kind of memory holds this key.
    pub fn kind(&self) -> MemoryKind {
        self.region.kind()
    }

    /// Overwrite the key with zeros.
    pub fn zeroize(&mut self) {
        self.region.zeroize();
    }
}

impl<const N: usize> fmt::Debug for SecretKey<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretKey")
            .field("len", &N)
            .field("kind", &self.region.kind)
            .finish_non_exhaustive()
    }
}

static NEXT_ARENA_ID: AtomicU64 = AtomicU64::new(1);

/// A handle to one slot of a [`SecretArena`]. Not `Clone`/`Copy`: it is the only way to reach
/// the slot, and [`SecretArena::free`] consumes it, so a freed slot cannot be used again.
/// Dropping a handle without freeing it keeps the slot allocated (zeroized when the arena drops).
#[must_use = "a dropped SecretSlot stays allocated until its arena drops; use SecretArena::free"]
#[derive(Debug, PartialEq, Eq)]
pub struct SecretSlot {
    arena: u64,
    index: usize,
}

impl SecretSlot {
    /// The slot index inside its arena (for diagnostics).
    pub fn index(&self) -> usize {
        self.index
    }
}

/// Many fixed-size secret slots in one [`SecretRegion`] (one `memfd_secret` mapping), so that
/// hundreds of 32-byte keys cost a page or two of `RLIMIT_MEMLOCK` instead of a page each.
///
/// The arena owns the memory; slots are indices ([`SecretSlot`]), checked against the arena
/// that issued them. Freed slots are zeroized immediately.
pub struct SecretArena {
    region: SecretRegion,
    slot_size: usize,
    used: Vec<bool>,
    id: u64,
}

impl SecretArena {
    /// An arena of `slots` slots of `slot_size` bytes each ([`MemoryPreference::Auto`]).
    pub fn new(slot_size: usize, slots: usize) -> Result<Self, SandboxError> {
        Self::new_with(slot_size, slots, MemoryPreference::Auto)
    }

    /// An arena with an explicit memory preference.
    pub fn new_with(
        slot_size: usize,
        slots: usize,
        pref: MemoryPreference,
    ) -> Result<Self, SandboxError> {
        let total = slot_size
            .checked_mul(slots)
            .filter(|t| *t > 0)
            .ok_or(SandboxError::InvalidLength(0))?;
        Ok(SecretArena {
            region: SecretRegion::new_with(total, pref)?,
            slot_size,
            used: vec![false; slots],
            id: NEXT_ARENA_ID.fetch_add(1, Ordering::Relaxed),
        })
    }

    /// Take a free (all-zero) slot.
    pub fn alloc(&mut self) -> Result<SecretSlot, SandboxError> {
        let index = self
            .used
            .iter()
            .position(|u| !u)
            .ok_or(SandboxError::ArenaFull {
                slots: self.used.len(),
            })?;
        self.used[index] = true;
        Ok(SecretSlot {
            arena: self.id,
            index,
        })
    }

    fn check(&self, slot: &SecretSlot) -> Result<std::ops::Range<usize>, SandboxError> {
        if slot.arena != self.id || !self.used.get(slot.index).copied().unwrap_or(false) {
            return Err(SandboxError::ForeignSlot);
        }
        let start = slot.index * self.slot_size;
        Ok(start..start + self.slot_size)
    }

    /// The bytes of `slot`.
    pub fn get(&self, slot: &SecretSlot) -> Result<&[u8], SandboxError> {
        let r = self.check(slot)?;
        Ok(&self.region.as_slice()[r])
    }

    /// The bytes of `slot`, mutably.
    pub fn get_mut(&mut self, slot: &SecretSlot) -> Result<&mut [u8], SandboxError> {
        let r = self.check(slot)?;
        Ok(&mut self.region.as_mut_slice()[r])
    }

    /// Zeroize `slot` and return it to the arena.
    pub fn free(&mut self, slot: SecretSlot) -> Result<(), SandboxError> {
        let r = self.check(&slot)?;
        self.region.as_mut_slice()[r].zeroize();
        self.used[slot.index] = false;
        Ok(())
    }

    /// Number of slots.
    pub fn capacity(&self) -> usize {
        self.used.len()
    }

    /// Number of slots in use.
    pub fn in_use(&self) -> usize {
        self.used.iter().filter(|u| **u).count()
    }

    /// Size of each slot in bytes.
    pub fn slot_size(&self) -> usize {
        self.slot_size
    }

    /// Which kind of memory backs the arena.
    pub fn kind(&self) -> MemoryKind {
        self.region.kind()
    }

    /// Zeroize every slot (e.g. at sign-out) and mark them all free. Outstanding handles then
    /// fail with [`SandboxError::ForeignSlot`].
    pub fn purge(&mut self) {
        self.region.zeroize();
        self.used.iter_mut().for_each(|u| *u = false);
        self.id = NEXT_ARENA_ID.fetch_add(1, Ordering::Relaxed);
    }
}

impl fmt::Debug for SecretArena {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretArena")
            .field("kind", &self.region.kind)
            .field("slot_size", &self.slot_size)
            .field("capacity", &self.used.len())
            .field("in_use", &self.in_use())
            .finish_non_exhaustive()
    }
}

/// Bytes of stack that [`scrub_stack`] overwrites.
pub const STACK_SCRUB_BYTES: usize = 32 * 1024;

/// Bytes of stack that [`scrub_stack_deep`] overwrites.
pub const DEEP_STACK_SCRUB_BYTES: usize = 512 * 1024;

/// Overwrite ~32 KiB of the calling thread's stack below the caller's frame with zeros, so
/// key residues left by crypto code (spilled registers, temporaries) do not linger.
/// Call it right after a crypto operation returns, from the same thread.
#[inline(never)]
pub fn scrub_stack() {
    scrub_stack_inner::<STACK_SCRUB_BYTES>();
    std::hint::black_box(());
}

/// Like [`scrub_stack`] but 512 KiB deep: for operations with deep call trees
/// (Argon2id key derivation), where residues sit far below the caller. The
/// thread must have that much stack left (tokio workers have 2 MiB).
#[inline(never)]
pub fn scrub_stack_deep() {
    scrub_stack_inner::<DEEP_STACK_SCRUB_BYTES>();
    std::hint::black_box(());
}

#[inline(never)]
fn scrub_stack_inner<const N: usize>() {
    let mut buf = [0u8; N];
    std::hint::black_box(&mut buf);
    buf.zeroize();
    std::hint::black_box(&mut buf);
}
