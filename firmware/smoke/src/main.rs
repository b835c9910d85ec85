//! A no_std binary that calls every public no_std entry point of constml
//! (kernels, attention, decoding) for `f32`, so that the generic code is
//! instantiated and must compile and link for the MCU target (a library build
//! alone instantiates nothing). It runs everything once at start-up and then
//! idles; the input seed and the result go through `black_box` so nothing is
//! folded or optimised away.
//!
//! The calls live in [`exercise`], which `tests/no_alloc_kernels.rs` also runs
//! on the host under a counting allocator: what links here allocates nothing.
#![no_std]
#![no_main]

#[path = "../../../tests/common/exercise.rs"]
mod exercise;

use core::hint::black_box;

use cortex_m_rt::entry;
use panic_halt as _;

#[entry]
fn main() -> ! {
    // An `Err` (none is expected: the host test checks) has nowhere to go.
    let _ = black_box(exercise::run_all(black_box(0.37)));
    loop {
        core::hint::spin_loop();
    }
}
