//! Convolution and pooling benchmarks, Scalar vs Simd in one run.
//!
//! ```text
//! cargo bench --bench conv
//! ```
//!
//! * `conv2d`: forward (direct and im2col + gemm) and backward (direct), batch
//!   1, 3 × 3 kernels, padding 1: 3 → 16 channels on 32 × 32, and 16 → 32
//!   channels on 16 × 16.
//! * `max_pool2d`: 2 × 2, stride 2, on (1, 16, 32, 32), forward and backward.

#[path = "common/data.rs"]
mod data;

use data::fill;

use std::hint::black_box;

use constml::nn::{
    Conv2dShape, Pool2dShape, conv2d_backward_views_with, conv2d_im2col_scratch_len,
    conv2d_im2col_views_with, conv2d_views_with, max_pool2d_backward_views, max_pool2d_views,
};
use constml::{Backend, Scalar, Simd};
use criterion::{BenchmarkId, Criterion};

fn conv<B: Backend>(c: &mut Criterion) {
    let mut g = c.benchmark_group("conv2d");
    for (name, shape) in [
        (
            "3to16_32x32",
            Conv2dShape::new(1, 3, 32, 32, 16, 3, 3).padding(1, 1),
        ),
        (
            "16to32_16x16",
            Conv2dShape::new(1, 16, 16, 16, 32, 3, 3).padding(1, 1),
        ),
    ] {
        let (lx, lw, ly) = shape.lens().unwrap();
        let (x, w, b, dy) = (fill(lx, 1), fill(lw, 2), fill(shape.c_out, 3), fill(ly, 4));
        let mut y = vec![0.0f32; ly];
        let mut scratch = vec![0.0f32; conv2d_im2col_scratch_len(&shape)];
        g.bench_function(BenchmarkId::new(format!("{name}/direct"), B::NAME), |bch| {
            bch.iter(|| {
                conv2d_views_with::<B, f32>(black_box(&x), &shape, &w, Some(&b), &mut y).unwrap()
            })
        });
        g.bench_function(BenchmarkId::new(format!("{name}/im2col"), B::NAME), |bch| {
            bch.iter(|| {
                conv2d_im2col_views_with::<B, f32>(
                    black_box(&x),
                    &shape,
                    &w,
                    Some(&b),
                    &mut y,
                    &mut scratch,
                )
                .unwrap()
            })
        });
        let (mut dx, mut dw, mut db) = (
            vec![0.0f32; lx],
            vec![0.0f32; lw],
            vec![0.0f32; shape.c_out],
        );
        g.bench_function(
            BenchmarkId::new(format!("{name}/backward"), B::NAME),
            |bch| {
                bch.iter(|| {
                    conv2d_backward_views_with::<B, f32>(
                        black_box(&x),
                        &shape,
                        &w,
                        &dy,
                        Some(&mut dx),
                        Some(&mut dw),
                        Some(&mut db),
                    )
                    .unwrap()
                })
            },
        );
    }
    g.finish();
}

fn pool(c: &mut Criterion) {
    let shape = Pool2dShape::new(1, 16, 32, 32, 2, 2);
    let x = fill(16 * 32 * 32, 5);
    let (mut y, mut idx) = (vec![0.0f32; 16 * 256], vec![0usize; 16 * 256]);
    c.bench_function("max_pool2d/16x32x32_k2/forward", |b| {
        b.iter(|| max_pool2d_views(black_box(&x), &shape, &mut y, &mut idx).unwrap())
    });
    let mut dx = vec![0.0f32; 16 * 32 * 32];
    c.bench_function("max_pool2d/16x32x32_k2/backward", |b| {
        b.iter(|| max_pool2d_backward_views(&shape, black_box(&y), &idx, &mut dx).unwrap())
    });
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    conv::<Scalar>(&mut c);
    conv::<Simd>(&mut c);
    pool(&mut c);
    c.final_summary();
}
