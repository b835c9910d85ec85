//! Neural-network benchmarks, Scalar vs Simd in one run.
//!
//! ```text
//! cargo bench --bench nn
//! ```
//!
//! * `linear`: a linear layer at batch 64, 784 → 256 (an MNIST-sized first
//!   layer): forward `y = x·Wᵀ + b`, and backward (`dx`, `dW`, `db`).
//! * `mlp_step`: one training step of `examples/mlp_digits` (64 → 128 → 10,
//!   batch 32: forward, cross-entropy, backward, Adam).

#[path = "common/data.rs"]
mod data;

use data::fill;

use std::hint::black_box;

use constml::nn::{linear_backward_views_with, linear_views_with};
use constml::{Backend, MatMut, MatRef, Scalar, Simd};
use criterion::{BenchmarkId, Criterion};

#[path = "../examples/mlp_digits/mlp.rs"]
#[allow(dead_code)]
mod mlp;

fn linear<B: Backend>(c: &mut Criterion) {
    let (n, i, o) = (64, 784, 256);
    let (x, w, b, dy) = (fill(n * i, 1), fill(o * i, 2), fill(o, 3), fill(n * o, 4));
    let mut y = vec![0.0f32; n * o];
    let mut g = c.benchmark_group("linear_64x784x256");
    g.bench_function(BenchmarkId::new("forward", B::NAME), |bch| {
        bch.iter(|| {
            linear_views_with::<B, f32>(
                MatRef::new(black_box(&x), n, i).unwrap(),
                MatRef::new(&w, o, i).unwrap(),
                Some(&b),
                MatMut::new(&mut y, n, o).unwrap(),
            )
            .unwrap()
        })
    });
    let (mut dx, mut dw, mut db) = (vec![0.0f32; n * i], vec![0.0f32; o * i], vec![0.0f32; o]);
    g.bench_function(BenchmarkId::new("backward", B::NAME), |bch| {
        bch.iter(|| {
            linear_backward_views_with::<B, f32>(
                MatRef::new(black_box(&x), n, i).unwrap(),
                MatRef::new(&w, o, i).unwrap(),
                MatRef::new(&dy, n, o).unwrap(),
                Some(MatMut::new(&mut dx, n, i).unwrap()),
                Some(MatMut::new(&mut dw, o, i).unwrap()),
                Some(&mut db),
            )
            .unwrap()
        })
    });
    g.finish();
}

fn mlp_step<B: Backend>(c: &mut Criterion) {
    let mut net: Box<mlp::Mlp<B>> = Box::new(mlp::Mlp::new(1, 1e-3));
    let xs = fill(mlp::BATCH * mlp::IN, 5);
    let x: Vec<[f32; mlp::IN]> = xs
        .chunks_exact(mlp::IN)
        .map(|r| core::array::from_fn(|j| 0.5 + 0.5 * r[j]))
        .collect();
    let y: Vec<usize> = (0..mlp::BATCH).map(|i| i % mlp::OUT).collect();
    c.bench_function(&format!("mlp_step/digits_batch32/{}", B::NAME), |b| {
        b.iter(|| net.train_step(black_box(&x), &y, mlp::BATCH).unwrap())
    });
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    linear::<Scalar>(&mut c);
    linear::<Simd>(&mut c);
    mlp_step::<Scalar>(&mut c);
    mlp_step::<Simd>(&mut c);
    c.final_summary();
}
