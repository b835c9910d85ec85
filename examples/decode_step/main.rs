//! One decoder step at a time, as firmware runs it: no allocation, all state
//! in one `static`, weights in `static` tables (see `tiny.rs`).
//!
//! `cargo run --release --example decode_step`
//!
//! The state lives in a `static` behind a lock that hands out `&mut State`:
//! here `std::sync::Mutex` (its `new` is `const`); on a microcontroller a
//! critical-section mutex or `cortex_m::singleton!`, as the firmware demo
//! `firmware/src/bin/story.rs` does. No `static mut`, no reference to one, no `unsafe`.

mod tiny;

use std::sync::Mutex;

use constml::decode::Sampler;
use constml::rand_core::SeedableRng;
use rand_xoshiro::Xoshiro128PlusPlus;
use tiny::State;

static STATE: Mutex<State> = Mutex::new(State::new());

fn main() -> constml::Result<()> {
    let mut state = STATE.lock().unwrap_or_else(|e| e.into_inner());
    let sampler = Sampler::new()
        .with_temperature(0.8)
        .with_top_k(10)
        .with_top_p(0.9);
    println!(
        "tiny decoder: V = {}, width {}, {} heads × {}, ring cache of {} positions",
        tiny::V,
        tiny::DM,
        tiny::H,
        tiny::D,
        tiny::CAP
    );
    println!(
        "state: {} bytes in one static (cache, scratch, activations)",
        State::BYTES
    );
    // 80 steps: past the ring's 64 positions, the oldest fall out of view.
    let run = |state: &mut State| -> constml::Result<Vec<usize>> {
        let mut rng = Xoshiro128PlusPlus::seed_from_u64(7);
        let mut token = 1;
        let mut out = vec![token];
        for _ in 0..80 {
            token = state.step(token, &sampler, &mut rng)?;
            out.push(token);
        }
        Ok(out)
    };
    let first = run(&mut state)?;
    println!("tokens: {first:?}");
    println!("positions fed: {}", state.position());
    // Same seed after a reset: the same tokens (the sampler is bit-reproducible).
    state.reset();
    assert_eq!(run(&mut state)?, first);
    println!("reset and replayed with the same seed: identical");
    Ok(())
}
