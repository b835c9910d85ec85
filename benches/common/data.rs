//! Shared by the benches: deterministic input data and a plain median timer
//! for the summaries some benches print after criterion's runs.
#![allow(dead_code)]

use std::time::Instant;

use constml::Real;

/// `n` values in `[-1, 1)` from a seeded xorshift generator.
pub fn fill(n: usize, seed: u64) -> Vec<f32> {
    fill_real(n, seed)
}

/// [`fill`] in either element type (the same draws, rounded once).
pub fn fill_real<T: Real>(n: usize, seed: u64) -> Vec<T> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            T::from_f64((s >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0)
        })
        .collect()
}

/// Standard normal draws (Box–Muller on [`fill`]'s uniforms).
pub fn normal(n: usize, seed: u64) -> Vec<f32> {
    let u = fill(n + 1, seed);
    (0..n)
        .map(|i| {
            let a = (0.5 + 0.5 * f64::from(u[i])).max(1e-12);
            let b = 0.5 + 0.5 * f64::from(u[i + 1]);
            ((-2.0 * a.ln()).sqrt() * (2.0 * std::f64::consts::PI * b).cos()) as f32
        })
        .collect()
}

/// Seconds per call of `f`: batches doubled until one takes 50 ms, then the
/// median of 7 such batches.
pub fn time(mut f: impl FnMut()) -> f64 {
    let mut iters = 1u64;
    loop {
        let t = Instant::now();
        for _ in 0..iters {
            f();
        }
        if t.elapsed().as_secs_f64() > 0.05 {
            break;
        }
        iters *= 2;
    }
    let mut v: Vec<f64> = (0..7)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..iters {
                f();
            }
            t.elapsed().as_secs_f64() / iters as f64
        })
        .collect();
    v.sort_by(f64::total_cmp);
    v[3]
}
