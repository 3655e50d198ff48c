//! A bump allocator for plugins whose instances live for one call.
//!
//! The host gives every call a fresh instance and throws its memory away
//! afterwards, so freeing is wasted work: in the built-in generators `malloc`
//! and `free` were about half of all instructions (callgrind on the native
//! build). This allocator hands out memory by moving a pointer, grows the
//! linear memory in 1 MiB steps, and reclaims only the most recent block
//! (which makes growing the last `String` or `Vec` in place cheap). Use it
//! with [`crate::bump_allocator!`] in a plugin whose total allocation per
//! call is modest (the built-ins allocate 0.2–1.3 MiB per render); the
//! host's memory cap still applies: a failed `memory.grow` is an allocation
//! failure, which traps.

use core::alloc::{GlobalAlloc, Layout};
use core::cell::Cell;

const PAGE: usize = 64 * 1024;
/// Grow at least this many pages at once (1 MiB).
const MIN_GROW_PAGES: usize = 16;

/// The allocator; install it with [`crate::bump_allocator!`].
pub struct BumpAllocator {
    /// Next free byte.
    next: Cell<usize>,
    /// End of the region owned by the allocator.
    end: Cell<usize>,
}

// SAFETY: wasm32 components run on one thread (no shared memory, no
// threads), so the cells are never accessed concurrently.
#[allow(unsafe_code)]
unsafe impl Sync for BumpAllocator {}

impl BumpAllocator {
    pub const fn new() -> Self {
        BumpAllocator { next: Cell::new(0), end: Cell::new(0) }
    }

    /// Makes room for `size` bytes aligned to `align`; the start address.
    fn reserve(&self, size: usize, align: usize) -> Option<usize> {
        let start = self.next.get().checked_add(align - 1)? & !(align - 1);
        let stop = start.checked_add(size)?;
        if stop <= self.end.get() && self.end.get() != 0 {
            self.next.set(stop);
            return Some(start);
        }
        // Grow the memory; if something else grew it meanwhile (the C
        // library has its own malloc), the new pages are not contiguous
        // with ours and a fresh region starts there.
        let pages = size.checked_add(align)?.div_ceil(PAGE).max(MIN_GROW_PAGES);
        let old = core::arch::wasm32::memory_grow(0, pages);
        if old == usize::MAX {
            return None;
        }
        let base = old * PAGE;
        let top = base + pages * PAGE;
        if base != self.end.get() || self.end.get() == 0 {
            self.next.set(base);
        }
        self.end.set(top);
        let start = self.next.get().checked_add(align - 1)? & !(align - 1);
        let stop = start.checked_add(size)?;
        if stop > top {
            return None;
        }
        self.next.set(stop);
        Some(start)
    }
}

impl Default for BumpAllocator {
    fn default() -> Self {
        Self::new()
    }
}

// SAFETY: `alloc` returns either null or a block of `layout.size()` bytes
// aligned to `layout.align()` that no other live allocation overlaps (the
// pointer only moves forward, except that freeing or shrinking the most
// recent block moves it back to that block's end or start).
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for BumpAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        match self.reserve(layout.size(), layout.align()) {
            Some(addr) => addr as *mut u8,
            None => core::ptr::null_mut(),
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // Only the most recent block can be given back.
        if ptr as usize + layout.size() == self.next.get() {
            self.next.set(ptr as usize);
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let addr = ptr as usize;
        // The most recent block grows or shrinks in place when it fits.
        if addr + layout.size() == self.next.get()
            && let Some(stop) = addr.checked_add(new_size)
            && stop <= self.end.get()
        {
            self.next.set(stop);
            return ptr;
        }
        if new_size <= layout.size() {
            return ptr;
        }
        // SAFETY: the caller guarantees `layout.align()` is valid and
        // `new_size` does not overflow when rounded to it.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        // SAFETY: as for `alloc`; the old block stays valid while copying.
        let new = unsafe { self.alloc(new_layout) };
        if !new.is_null() {
            // SAFETY: both blocks are valid for `layout.size()` bytes and do not overlap.
            unsafe { core::ptr::copy_nonoverlapping(ptr, new, layout.size()) };
        }
        new
    }
}
