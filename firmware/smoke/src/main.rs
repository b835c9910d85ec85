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

#[path = "../../../examples/decode_step/tiny.rs"]
#[allow(dead_code)]
mod tiny;

use core::hint::black_box;

use constml::decode::Sampler;
use cortex_m_rt::entry;
use panic_halt as _;
use rand_core::SeedableRng;

#[entry]
fn main() -> ! {
    // An `Err` (none is expected: the host test checks) has nowhere to go.
    let _ = black_box(exercise::run_all(black_box(0.37)));

    // The decode step of `examples/decode_step`, its state in a `static` by the
    // same pattern as the example: a lock hands out `&'static mut State` once
    // (`cortex_m::singleton!`, a critical section; no `static mut` reference
    // in this crate, no `unsafe`). `State::new` is `const`, so the state is
    // placed in `.bss`, never built on the stack.
    if let Some(state) = cortex_m::singleton!(: tiny::State = tiny::State::new()) {
        let sampler = Sampler::new().with_temperature(0.8).with_top_k(10);
        let mut rng = rand_xoshiro::Xoshiro128PlusPlus::seed_from_u64(black_box(7));
        let mut token = 1;
        for _ in 0..8 {
            match state.step(token, &sampler, &mut rng) {
                Ok(t) => token = t,
                Err(_) => break,
            }
        }
        black_box(token);
    }
    loop {
        core::hint::spin_loop();
    }
}
