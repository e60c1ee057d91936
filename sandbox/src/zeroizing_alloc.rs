//! A global allocator that zeroizes every block it frees.
//!
//! Owns one thing: no heap block a process frees keeps its old contents. A
//! secret that passed through an ordinary `String`, a serde buffer, a
//! growing `Vec` or a library's internal tables (e.g. the redaction
//! automaton) is wiped when that memory is released — including the old
//! block of a `realloc`, which is copied and wiped rather than handed back
//! to libc as is. Live allocations are not affected; that is what
//! sign-out's purge and `SecretRegion` are for.
//! Must never: return memory to the system allocator before zeroizing it.

use std::alloc::{GlobalAlloc, Layout, System};

use zeroize::Zeroize;

/// `System`, with every freed block zeroized first. Use as
/// `#[global_allocator] static A: ZeroizingAlloc = ZeroizingAlloc;`.
pub struct ZeroizingAlloc;

/// Zeroizes `len` bytes at `ptr` with writes the compiler cannot elide.
///
/// # Safety
/// `ptr` must be valid for writes of `len` bytes.
unsafe fn wipe(ptr: *mut u8, len: usize) {
    // SAFETY: the caller guarantees `ptr..ptr+len` is a live, writable block.
    let block = unsafe { std::slice::from_raw_parts_mut(ptr, len) };
    block.zeroize();
}

// SAFETY: every method forwards to `System` with the same layout contract;
// `dealloc` and `realloc` only add a wipe of a block that is still owned
// (not yet freed) at the time of the wipe.
unsafe impl GlobalAlloc for ZeroizingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as `GlobalAlloc::alloc`.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as `GlobalAlloc::alloc_zeroed`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated with `layout` and is still ours until `System.dealloc`.
        unsafe {
            wipe(ptr, layout.size());
            System.dealloc(ptr, layout);
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `new_size` is non-zero and, rounded to `layout.align()`, does not
        // overflow isize (the `GlobalAlloc::realloc` contract).
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        // SAFETY: a fresh block from `System`; the old one stays valid until freed below.
        let new = unsafe { System.alloc(new_layout) };
        if new.is_null() {
            return new;
        }
        // SAFETY: both blocks are live and distinct; we copy the smaller size, then
        // wipe and free the old block, which is `layout`-sized and ours.
        unsafe {
            std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
            wipe(ptr, layout.size());
            System.dealloc(ptr, layout);
        }
        new
    }
}
