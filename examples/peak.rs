//! One core's f32 FMA peak, measured: the reference the README's gemm
//! percentages are computed against.
//!
//! `cargo run --release --example peak`
//!
//! Twelve independent accumulators of the build's widest `wide` vector
//! (16 f32 lanes with AVX-512 under `-C target-cpu=native`) each take one fused
//! multiply-add per iteration — enough independent chains to cover the FMA
//! latency on current x86 and ARM cores. Each FMA counts as 2 FLOPs per lane.
//! Prints the best of several timed runs.

use std::hint::black_box;
use std::time::Instant;

use constml::Real;

const ACC: usize = 12;

/// `iters` rounds of one FMA into each of the `ACC` accumulators.
#[inline(never)]
fn fma_chains(iters: usize, a: f32, b: f32) -> f32 {
    let (va, vb) = (f32::splat(a), f32::splat(b));
    let mut acc = [f32::splat(0.0); ACC];
    for (i, x) in acc.iter_mut().enumerate() {
        *x = f32::splat(i as f32 * 1e-3);
    }
    for _ in 0..iters {
        for x in acc.iter_mut() {
            *x = f32::fma(*x, va, vb);
        }
    }
    acc.iter().map(|&v| f32::hsum(v)).sum()
}

fn main() {
    let iters = 20_000_000;
    let flops = (2 * f32::LANES * ACC * iters) as f64;
    // Values that keep every accumulator finite and normal (x·a + b → b/(1−a)).
    let (a, b) = (black_box(0.999f32), black_box(1e-3f32));
    let mut best = f64::INFINITY;
    let mut sink = 0.0;
    for _ in 0..7 {
        let t = Instant::now();
        sink += fma_chains(black_box(iters), a, b);
        best = best.min(t.elapsed().as_secs_f64());
    }
    println!(
        "f32 FMA peak, one core: {:.1} GFLOP/s ({} lanes × {ACC} chains, best of 7; checksum {sink:.3})",
        flops / best / 1e9,
        f32::LANES
    );
}
