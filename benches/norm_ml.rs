//! Normalisation and classic-ML benchmarks, Scalar vs Simd in one run.
//!
//! ```text
//! cargo bench --bench norm_ml
//! python3 benches/sklearn_lloyd.py     # scikit-learn's own Lloyd iteration, same machine
//! ```
//!
//! * `layer_norm_768`: LayerNorm forward (affine) of 64 rows × 768, and its
//!   backward.
//! * `rms_norm_4096`: RMSNorm forward of 16 rows × 4096, and its backward.
//! * `batch_norm2d`: BatchNorm2d training forward and backward on
//!   (8, 32, 16, 16).
//! * `kmeans_lloyd`: one Lloyd iteration (assignment and update) on
//!   10 000 × 16 standard-normal `f32` points, K = 8 (the first 8 points as
//!   centres) — the case `benches/sklearn_lloyd.py` times for scikit-learn's
//!   `lloyd_iter_chunked_dense` (`n_threads=1`, its own seeded normal draws).
//! * `sgd_epoch`: one mini-batch SGD epoch (batch 32) on the diabetes data
//!   (442 × 10, `examples/data/diabetes.csv`), `f64`.

#[path = "common/data.rs"]
mod data;

use data::{fill, normal};

use std::hint::black_box;

use constml::ml::*;
use constml::norm::*;
use constml::{Backend, MatMut, MatRef, Scalar, Simd};
use criterion::{BenchmarkId, Criterion};

fn norms<B: Backend>(c: &mut Criterion) {
    let mut g = c.benchmark_group("norm");
    // LayerNorm, 64 × 768.
    let (n, w) = (64, 768);
    let x = fill(n * w, 1);
    let dy = fill(n * w, 2);
    let (gamma, beta) = (fill(w, 3), fill(w, 4));
    let mut y = vec![0.0f32; n * w];
    let (mut m, mut r) = (vec![0.0f32; n], vec![0.0f32; n]);
    g.bench_function(
        BenchmarkId::new("layer_norm_768", format!("{}/forward", B::NAME)),
        |b| {
            b.iter(|| {
                layer_norm_views_with::<B, f32>(
                    MatRef::new(black_box(&x), n, w).unwrap(),
                    MatMut::new(&mut y, n, w).unwrap(),
                    Some(&gamma),
                    Some(&beta),
                    1e-5,
                    Some(NormStats::new(&mut m, &mut r)),
                )
                .unwrap()
            })
        },
    );
    let mut dx = vec![0.0f32; n * w];
    let (mut dg, mut db) = (vec![0.0f32; w], vec![0.0f32; w]);
    g.bench_function(
        BenchmarkId::new("layer_norm_768", format!("{}/backward", B::NAME)),
        |b| {
            b.iter(|| {
                layer_norm_backward_views_with::<B, f32>(
                    MatRef::new(black_box(&x), n, w).unwrap(),
                    MatRef::new(&dy, n, w).unwrap(),
                    MatMut::new(&mut dx, n, w).unwrap(),
                    Some(&gamma),
                    1e-5,
                    Some((&m, &r)),
                    Some(&mut dg),
                    Some(&mut db),
                )
                .unwrap()
            })
        },
    );
    // RMSNorm, 16 × 4096.
    let (n, w) = (16, 4096);
    let x = fill(n * w, 5);
    let dy = fill(n * w, 6);
    let gamma = fill(w, 7);
    let mut y = vec![0.0f32; n * w];
    let mut r = vec![0.0f32; n];
    g.bench_function(
        BenchmarkId::new("rms_norm_4096", format!("{}/forward", B::NAME)),
        |b| {
            b.iter(|| {
                rms_norm_views_with::<B, f32>(
                    MatRef::new(black_box(&x), n, w).unwrap(),
                    MatMut::new(&mut y, n, w).unwrap(),
                    Some(&gamma),
                    1e-5,
                    Some(NormStats::rstd_only(&mut r)),
                )
                .unwrap()
            })
        },
    );
    let mut dx = vec![0.0f32; n * w];
    let mut dg = vec![0.0f32; w];
    g.bench_function(
        BenchmarkId::new("rms_norm_4096", format!("{}/backward", B::NAME)),
        |b| {
            b.iter(|| {
                rms_norm_backward_views_with::<B, f32>(
                    MatRef::new(black_box(&x), n, w).unwrap(),
                    MatRef::new(&dy, n, w).unwrap(),
                    MatMut::new(&mut dx, n, w).unwrap(),
                    Some(&gamma),
                    1e-5,
                    Some(&r),
                    Some(&mut dg),
                )
                .unwrap()
            })
        },
    );
    // BatchNorm2d (8, 32, 16, 16).
    let shape = BnShape::new(8, 32, 256);
    let len = 8 * 32 * 256;
    let x = fill(len, 8);
    let dy = fill(len, 9);
    let (gamma, beta) = (fill(32, 10), fill(32, 11));
    let mut y = vec![0.0f32; len];
    let (mut rm, mut rv, mut nb) = (vec![0.0f32; 32], vec![1.0f32; 32], 0u64);
    let (mut m, mut r) = (vec![0.0f32; 32], vec![0.0f32; 32]);
    g.bench_function(
        BenchmarkId::new("batch_norm2d", format!("{}/train_forward", B::NAME)),
        |b| {
            b.iter(|| {
                batch_norm_train_views_with::<B, f32>(
                    black_box(&x),
                    shape,
                    &mut y,
                    Some(&gamma),
                    Some(&beta),
                    1e-5,
                    Some(0.1),
                    Some(RunningStats {
                        mean: &mut rm,
                        var: &mut rv,
                        batches: &mut nb,
                    }),
                    Some(NormStats::new(&mut m, &mut r)),
                )
                .unwrap()
            })
        },
    );
    let mut dx = vec![0.0f32; len];
    let (mut dg, mut db) = (vec![0.0f32; 32], vec![0.0f32; 32]);
    g.bench_function(
        BenchmarkId::new("batch_norm2d", format!("{}/train_backward", B::NAME)),
        |b| {
            b.iter(|| {
                batch_norm_backward_views_with::<B, f32>(
                    black_box(&x),
                    shape,
                    &dy,
                    &mut dx,
                    Some(&gamma),
                    1e-5,
                    Some((&m, &r)),
                    Some(&mut dg),
                    Some(&mut db),
                )
                .unwrap()
            })
        },
    );
    g.finish();
}

fn kmeans<B: Backend>(c: &mut Criterion) {
    let (n, d, k) = (10_000, 16, 8);
    let x = normal(n * d, 12);
    let start: Vec<f32> = x[..k * d].to_vec();
    let mut centers = start.clone();
    let mut labels = vec![0usize; n];
    let mut scratch = vec![0.0f32; kmeans_scratch_len(n, k, d)];
    c.bench_function(&format!("kmeans_lloyd/10000x16_k8/{}", B::NAME), |b| {
        b.iter(|| {
            centers.copy_from_slice(&start);
            kmeans_lloyd_step_views_with::<B, f32>(
                MatRef::new(black_box(&x), n, d).unwrap(),
                MatMut::new(&mut centers, k, d).unwrap(),
                &mut labels,
                &mut scratch,
            )
            .unwrap()
        })
    });
}

fn sgd_epoch(c: &mut Criterion) {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/data/diabetes.csv"
    ))
    .expect("examples/data/diabetes.csv");
    let (mut x, mut y) = (Vec::new(), Vec::new());
    for line in text.lines().skip(1) {
        let v: Vec<f64> = line
            .split(',')
            .map(|s| s.trim().parse().expect("a number"))
            .collect();
        x.extend_from_slice(&v[..10]);
        y.push(v[10]);
    }
    let n = y.len();
    let cfg = SgdConfig::new(0.5, 32, 1);
    let mut perm = vec![0usize; n];
    let mut scratch = vec![0.0f64; sgd_scratch_len(10)];
    use constml::rand_core::SeedableRng;
    let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(1);
    let (mut w, mut b0) = (vec![0.0f64; 10], 0.0f64);
    c.bench_function("sgd_epoch/diabetes_batch32", |b| {
        b.iter(|| {
            sgd_fit_views(
                MatRef::new(black_box(&x), n, 10).unwrap(),
                &y,
                None,
                &cfg,
                &mut w,
                &mut b0,
                &mut perm,
                Some(&mut rng),
                &mut scratch,
                &mut |_| {},
            )
            .unwrap()
        })
    });
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    norms::<Scalar>(&mut c);
    norms::<Simd>(&mut c);
    kmeans::<Scalar>(&mut c);
    kmeans::<Simd>(&mut c);
    sgd_epoch(&mut c);
    c.final_summary();
}
