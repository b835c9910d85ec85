//! A counting global allocator for the "allocates nothing" tests.
//!
//! A test binary installs it with
//!
//! ```ignore
//! #[path = "common/counting.rs"]
//! mod counting;
//!
//! #[global_allocator]
//! static ALLOC: counting::Counting = counting::Counting;
//! ```
//!
//! and measures a closure with [`allocations_during`]. The counter is per thread,
//! so the test harness's other threads (parallel tests, its own bookkeeping) do
//! not disturb a measurement.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

thread_local! {
    // Const-initialised and without a destructor: touching it never allocates
    // and works at any point of the thread's life.
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

/// Counts one allocation on the calling thread.
fn count() {
    // `try_with` cannot fail for this key (no destructor), and a global allocator
    // must not panic, so a failure would simply not be counted.
    let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
}

/// The system allocator, counting every allocation and reallocation per thread.
pub struct Counting;

// SAFETY: every method forwards its arguments unchanged to `System`, so `System`'s
// guarantees carry over to the caller. The only addition is a thread-local
// counter increment, which neither allocates nor touches the memory handed out.
// Test code only; the library itself forbids `unsafe`.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract, which is
        // `System.alloc`'s.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: `ptr` was allocated by this allocator, that is by `System`, with
        // `layout`; the caller upholds the rest of `realloc`'s contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by this allocator, that is by `System`, with
        // `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }
}

/// The number of allocations (including reallocations) the calling thread made
/// while `f` ran.
pub fn allocations_during(f: impl FnOnce()) -> usize {
    let before = ALLOCATIONS.with(Cell::get);
    f();
    ALLOCATIONS.with(Cell::get) - before
}
