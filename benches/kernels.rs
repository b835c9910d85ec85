//! Kernel benchmarks: dot, gemm and softmax, Scalar against Simd, f32 and f64,
//! with a "good scalar" row for dot and gemm (see the functions' notes).
//!
//! ```text
//! cargo bench --bench kernels
//! ```
//!
//! Throughput is declared so criterion prints it beside the time: for gemm the
//! "elements" are floating-point operations (2·n³), so `Gelem/s` reads as
//! GFLOP/s; dot and softmax report bytes read (GB/s). Compare the `scalar` and
//! `simd` lines of one group, measured in the same run, for the speedup.

#[path = "common/data.rs"]
mod data;

use data::fill_real;
use std::hint::black_box;

use constml::{Accumulate, Backend, MatMut, MatRef, Real, Scalar, Simd};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

fn type_name<T: Real>() -> &'static str {
    if T::BYTES == 4 { "f32" } else { "f64" }
}

/// The "good scalar" dot a performance-minded engineer writes without SIMD:
/// eight independent accumulators (the compiler may keep them in vector
/// registers), so the sum is not one serial chain of additions. Shown beside
/// `Scalar` (one accumulator, the oracle) so the Simd ratio can be read against
/// both baselines.
fn dot_good_scalar<T: Real>(a: &[T], b: &[T]) -> T {
    let mut acc = [T::ZERO; 8];
    let (ac, ar) = a.as_chunks::<8>();
    let (bc, br) = b.as_chunks::<8>();
    for (x, y) in ac.iter().zip(bc) {
        for u in 0..8 {
            acc[u] += x[u] * y[u];
        }
    }
    let mut s = ((acc[0] + acc[4]) + (acc[2] + acc[6])) + ((acc[1] + acc[5]) + (acc[3] + acc[7]));
    for (&x, &y) in ar.iter().zip(br) {
        s += x * y;
    }
    s
}

fn dot<T: Real>(c: &mut Criterion) {
    let mut g = c.benchmark_group(format!("dot_{}", type_name::<T>()));
    for n in [64usize, 1024, 16_384] {
        let (a, b) = (fill_real::<T>(n, 1), fill_real::<T>(n, 2));
        g.throughput(Throughput::Bytes((2 * n * T::BYTES) as u64));
        g.bench_with_input(BenchmarkId::new("scalar", n), &n, |bch, _| {
            bch.iter(|| Scalar::dot(black_box(&a), black_box(&b)))
        });
        g.bench_with_input(BenchmarkId::new("good_scalar", n), &n, |bch, _| {
            bch.iter(|| dot_good_scalar(black_box(&a), black_box(&b)))
        });
        g.bench_with_input(BenchmarkId::new("simd", n), &n, |bch, _| {
            bch.iter(|| Simd::dot(black_box(&a), black_box(&b)))
        });
    }
    g.finish();
}

fn gemm_one<B: Backend, T: Real>(n: usize, a: &[T], b: &[T], c: &mut [T]) {
    let av = MatRef::new(a, n, n).expect("shape");
    let bv = MatRef::new(b, n, n).expect("shape");
    B::gemm(
        av,
        bv,
        MatMut::new(c, n, n).expect("shape"),
        Accumulate::Overwrite,
    )
    .expect("gemm");
}

/// The "good scalar" product: i-k-j order (the inner loop runs along a row of
/// B and a row of C, contiguous, so LLVM may vectorise it), C's row
/// accumulated in place. Shown beside `Scalar` (one dot product per output,
/// the oracle) so the Simd ratio can be read against both.
fn gemm_good_scalar<T: Real>(n: usize, a: &[T], b: &[T], c: &mut [T]) {
    for (ci, ai) in c.chunks_exact_mut(n).zip(a.chunks_exact(n)) {
        ci.fill(T::ZERO);
        for (&aip, bp) in ai.iter().zip(b.chunks_exact(n)) {
            for (cij, &bpj) in ci.iter_mut().zip(bp) {
                *cij += aip * bpj;
            }
        }
    }
}

fn gemm<T: Real>(c: &mut Criterion) {
    let mut g = c.benchmark_group(format!("gemm_{}", type_name::<T>()));
    g.sample_size(20);
    for n in [64usize, 128, 256] {
        let (a, b) = (fill_real::<T>(n * n, 3), fill_real::<T>(n * n, 4));
        let mut out = vec![T::ZERO; n * n];
        g.throughput(Throughput::Elements(2 * (n * n * n) as u64));
        if n <= 128 {
            g.bench_with_input(BenchmarkId::new("scalar", n), &n, |bch, &n| {
                bch.iter(|| gemm_one::<Scalar, T>(n, &a, &b, &mut out))
            });
        }
        g.bench_with_input(BenchmarkId::new("good_scalar", n), &n, |bch, &n| {
            bch.iter(|| gemm_good_scalar::<T>(n, black_box(&a), &b, &mut out))
        });
        g.bench_with_input(BenchmarkId::new("simd", n), &n, |bch, &n| {
            bch.iter(|| gemm_one::<Simd, T>(n, &a, &b, &mut out))
        });
    }
    g.finish();
}

fn gemm_bt_one<B: Backend, T: Real>(n: usize, a: &[T], b: &[T], c: &mut [T]) {
    let av = MatRef::new(a, n, n).expect("shape");
    let bv = MatRef::new(b, n, n).expect("shape");
    B::gemm_bt(
        av,
        bv,
        MatMut::new(c, n, n).expect("shape"),
        Accumulate::Overwrite,
    )
    .expect("gemm_bt");
}

/// `A·Bᵀ`, the score product of attention (Simd only beyond n = 64).
fn gemm_bt<T: Real>(c: &mut Criterion) {
    let mut g = c.benchmark_group(format!("gemm_bt_{}", type_name::<T>()));
    g.sample_size(20);
    for n in [64usize, 256] {
        let (a, b) = (fill_real::<T>(n * n, 6), fill_real::<T>(n * n, 7));
        let mut out = vec![T::ZERO; n * n];
        g.throughput(Throughput::Elements(2 * (n * n * n) as u64));
        if n <= 64 {
            g.bench_with_input(BenchmarkId::new("scalar", n), &n, |bch, &n| {
                bch.iter(|| gemm_bt_one::<Scalar, T>(n, &a, &b, &mut out))
            });
        }
        g.bench_with_input(BenchmarkId::new("simd", n), &n, |bch, &n| {
            bch.iter(|| gemm_bt_one::<Simd, T>(n, &a, &b, &mut out))
        });
    }
    g.finish();
}

fn softmax<T: Real>(c: &mut Criterion) {
    let mut g = c.benchmark_group(format!("softmax_{}", type_name::<T>()));
    for n in [128usize, 768, 1024, 32_000] {
        let x: Vec<T> = fill_real::<T>(n, 5)
            .into_iter()
            .map(|v| v * T::from_f64(10.0))
            .collect();
        let mut w = x.clone();
        g.throughput(Throughput::Bytes((n * T::BYTES) as u64));
        g.bench_with_input(BenchmarkId::new("scalar", n), &n, |bch, _| {
            bch.iter(|| {
                w.copy_from_slice(&x);
                Scalar::softmax(black_box(&mut w));
            })
        });
        g.bench_with_input(BenchmarkId::new("simd", n), &n, |bch, _| {
            bch.iter(|| {
                w.copy_from_slice(&x);
                Simd::softmax(black_box(&mut w));
            })
        });
    }
    g.finish();
}

fn all(c: &mut Criterion) {
    dot::<f32>(c);
    dot::<f64>(c);
    gemm::<f32>(c);
    gemm::<f64>(c);
    gemm_bt::<f32>(c);
    softmax::<f32>(c);
    softmax::<f64>(c);
}

criterion_group!(benches, all);
criterion_main!(benches);
