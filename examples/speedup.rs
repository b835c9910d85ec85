//! A first taste of constml: the Simd/Scalar speedup of dot, gemm and softmax.
//!
//! ```text
//! cargo run --release --example speedup
//! ```
//!
//! Times each kernel with both backends on the same data (best of several runs,
//! so noise from other processes mostly drops out) and prints GFLOP/s beside the
//! ratio. Criterion benchmarks (`cargo bench --bench kernels`) are the careful
//! measurement; this is the quick look.

use std::hint::black_box;
use std::time::{Duration, Instant};

use constml::{Accumulate, Backend, MatMut, MatRef, Real, Scalar, Simd};

/// Best time per call over `rounds` rounds of `reps` calls.
fn best_of(rounds: usize, reps: usize, mut f: impl FnMut()) -> Duration {
    let mut best = Duration::MAX;
    for _ in 0..rounds {
        let t = Instant::now();
        for _ in 0..reps {
            f();
        }
        best = best.min(t.elapsed() / reps as u32);
    }
    best
}

/// A deterministic pseudo-random fill in [−1, 1).
fn fill(n: usize, seed: u32) -> Vec<f32> {
    let mut s = seed.wrapping_mul(2_654_435_761).max(1);
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            (s >> 8) as f32 / (1u32 << 23) as f32 - 1.0
        })
        .collect()
}

fn reps_for(work: f64) -> usize {
    ((2e7 / work.max(1.0)) as usize).clamp(1, 100_000)
}

fn dot_time<B: Backend>(a: &[f32], b: &[f32]) -> Duration {
    best_of(7, reps_for(a.len() as f64), || {
        black_box(B::dot(black_box(a), black_box(b)).ok());
    })
}

fn gemm_time<B: Backend>(n: usize, a: &[f32], b: &[f32], c: &mut [f32]) -> Duration {
    let flops = 2.0 * (n * n * n) as f64;
    let reps = if B::NAME == "scalar" {
        1
    } else {
        reps_for(flops / 8.0)
    };
    best_of(if B::NAME == "scalar" { 2 } else { 7 }, reps, || {
        let av = MatRef::new(a, n, n).expect("shape");
        let bv = MatRef::new(b, n, n).expect("shape");
        let cv = MatMut::new(c, n, n).expect("shape");
        B::gemm(av, bv, cv, Accumulate::Overwrite).expect("gemm");
        black_box(&c);
    })
}

fn softmax_time<B: Backend>(x: &[f32], work: &mut [f32]) -> Duration {
    best_of(7, reps_for(x.len() as f64 * 4.0), || {
        work.copy_from_slice(x);
        B::softmax(black_box(&mut *work));
    })
}

fn main() {
    println!(
        "constml speedup: f32, {} lanes per vector in this build{}",
        f32::LANES,
        if f32::LANES < 8 {
            " (build with -C target-cpu=native for AVX2/AVX-512)"
        } else {
            ""
        }
    );

    header("dot", "scalar ns", "simd ns");
    for n in [64usize, 1024, 16_384] {
        let (a, b) = (fill(n, 1), fill(n, 2));
        let (s, v) = (dot_time::<Scalar>(&a, &b), dot_time::<Simd>(&a, &b));
        row(n, s.as_secs_f64() * 1e9, v.as_secs_f64() * 1e9, s, v);
    }

    header("gemm", "scalar GF/s", "simd GF/s");
    for n in [64usize, 128, 256] {
        let (a, b) = (fill(n * n, 3), fill(n * n, 4));
        let mut c = vec![0.0f32; n * n];
        let gflop = 2.0 * (n * n * n) as f64 / 1e9;
        let s = gemm_time::<Scalar>(n, &a, &b, &mut c);
        let v = gemm_time::<Simd>(n, &a, &b, &mut c);
        row(n, gflop / s.as_secs_f64(), gflop / v.as_secs_f64(), s, v);
    }

    header("softmax", "scalar ns", "simd ns");
    for n in [128usize, 1024, 32_000] {
        let x: Vec<f32> = fill(n, 5).iter().map(|v| v * 10.0).collect();
        let mut w = vec![0.0f32; n];
        let s = softmax_time::<Scalar>(&x, &mut w);
        let v = softmax_time::<Simd>(&x, &mut w);
        row(n, s.as_secs_f64() * 1e9, v.as_secs_f64() * 1e9, s, v);
    }
}

fn header(kernel: &str, scalar: &str, simd: &str) {
    println!(
        "\n{kernel:<10} {:>8} {scalar:>12} {simd:>12} {:>9}",
        "n", "speedup"
    );
}

/// One table row: the two figures shown and the two times whose ratio is the speedup.
fn row(n: usize, scalar: f64, simd: f64, t_scalar: Duration, t_simd: Duration) {
    let speedup = t_scalar.as_secs_f64() / t_simd.as_secs_f64();
    println!(
        "{:<10} {n:>8} {scalar:>12.2} {simd:>12.2} {speedup:>8.1}x",
        ""
    );
}
