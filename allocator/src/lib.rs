//! The allocator of Uchat's server binaries (`uchat-server`, `gateway`, `message-svc`), and the
//! one setting that makes it give memory back.
//!
//! mimalloc measured faster than the system allocator for the services' many small buffers
//! (docs/BENCHMARKS.md). But it returns freed pages to the system only after a delay (a
//! second by default) that is not a timer: it is checked when the thread that freed them next
//! allocates. A server whose attackers have just been disconnected goes quiet, so it kept
//! their memory indefinitely: `uchat-bench hold` measured +118 MiB still resident 15 s after
//! forty flooding readers were closed, against +30 MiB with a delay of zero (the system
//! allocator kept +251 MiB). [`return_freed_memory_promptly`] sets the delay to zero, so the
//! `free` that empties a page hands it back. It costs a system call per emptied page: about
//! 5 % of message-svc's stored messages per second at 75,000/s, far above what the whole
//! stack needs of it.
//!
//! [`Counted`] wraps an allocator to count the bytes it has live: tests measure with it what a
//! component holds (a closed session, an idle one) exactly, which resident memory, moved by
//! the allocator's own bookkeeping, cannot show.
//!
//! This is one of the workspace's two places with `unsafe` code (the other is one block in
//! `protocol`'s AVX-512 arithmetic), kept in its own crate so that the other crates can forbid
//! it.

use std::alloc::{GlobalAlloc, Layout};
use std::sync::atomic::{AtomicUsize, Ordering};

pub use mimalloc::MiMalloc as Allocator;

/// The environment variable through which mimalloc takes the delay, in milliseconds. When it
/// is set, [`return_freed_memory_promptly`] leaves the operator's choice alone.
pub const PURGE_DELAY_ENV: &str = "MIMALLOC_PURGE_DELAY";

/// `mi_option_purge_delay` in mimalloc v3's `mi_option_t` (its `mimalloc.h`); the -sys crate
/// does not name it.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Makes the allocator return emptied pages to the system at once. Call it first thing in
/// `main` of a binary whose global allocator is [`Allocator`]; returns `false` (and changes
/// nothing) when [`PURGE_DELAY_ENV`] is set.
#[allow(unsafe_code)]
pub fn return_freed_memory_promptly() -> bool {
    if std::env::var_os(PURGE_DELAY_ENV).is_some() {
        return false;
    }
    // SAFETY: `mi_option_set` stores one integer in mimalloc's option table (an atomic
    // write, safe from any thread at any time); 0 is a documented value of this option
    // ("use 0 for immediate purging"). It reads or frees no memory of ours.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0) };
    true
}

/// The delay in force, in milliseconds.
#[allow(unsafe_code)]
#[allow(clippy::useless_conversion)] // `c_long` is 32 bits on some platforms
pub fn purge_delay_ms() -> i64 {
    // SAFETY: `mi_option_get` reads one integer from mimalloc's option table.
    i64::from(unsafe { libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY) })
}

/// An allocator that counts the bytes it has handed out and not yet had back. For tests and
/// measurements: every allocation and free pays an atomic add on one shared counter.
///
/// ```ignore
/// #[global_allocator]
/// static ALLOCATOR: allocator::Counted<allocator::Allocator> =
///     allocator::Counted::new(allocator::Allocator);
/// ```
pub struct Counted<A> {
    inner: A,
    live: AtomicUsize,
    peak: AtomicUsize,
}

impl<A> Counted<A> {
    /// Counts what `inner` allocates.
    pub const fn new(inner: A) -> Self {
        Self {
            inner,
            live: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
        }
    }

    /// Bytes allocated and not yet freed, as the callers asked for them (without the
    /// allocator's rounding and bookkeeping).
    pub fn live_bytes(&self) -> usize {
        self.live.load(Ordering::Relaxed)
    }

    /// The most [`live_bytes`](Self::live_bytes) has been since the last
    /// [`reset_peak`](Self::reset_peak) (or since the start).
    pub fn peak_bytes(&self) -> usize {
        self.peak.load(Ordering::Relaxed)
    }

    /// Starts a new peak from what is live now.
    pub fn reset_peak(&self) {
        self.peak.store(self.live_bytes(), Ordering::Relaxed);
    }

    fn added(&self, bytes: usize) {
        let now = self.live.fetch_add(bytes, Ordering::Relaxed) + bytes;
        self.peak.fetch_max(now, Ordering::Relaxed);
    }
}

// SAFETY: every method forwards to `inner` with the caller's own pointer and layout, so each
// keeps `inner`'s guarantees; the counting touches only an atomic integer, never the memory.
#[allow(unsafe_code)]
unsafe impl<A: GlobalAlloc> GlobalAlloc for Counted<A> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as received; the caller upholds `alloc`'s contract.
        let ptr = unsafe { self.inner.alloc(layout) };
        if !ptr.is_null() {
            self.added(layout.size());
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as `alloc`.
        let ptr = unsafe { self.inner.alloc_zeroed(layout) };
        if !ptr.is_null() {
            self.added(layout.size());
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from this allocator, that is from `inner`, with `layout`.
        unsafe { self.inner.dealloc(ptr, layout) };
        self.live.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as `dealloc` for `ptr` and `layout`; the caller upholds `new_size`'s rules.
        let new = unsafe { self.inner.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            // On failure the old block stays, and so does its count.
            self.added(new_size);
            self.live.fetch_sub(layout.size(), Ordering::Relaxed);
        }
        new
    }
}
