//! Convolution and pooling benchmarks, Scalar vs Simd in one run.
//!
//! ```text
//! cargo bench --bench conv
//! ```
//!
//! * `conv2d`: batch 1, 3 × 3 kernels, padding 1: 3 → 16 channels on 32 × 32,
//!   16 → 32 channels on 16 × 16, and a depthwise 32-channel 16 × 16 (where
//!   the automatic choice takes the direct kernel). Rows: forward `direct`,
//!   `im2col`, `auto` (what [`conv2d_auto_views_with`] picks), backward
//!   `backward_direct` and `backward_im2col`, each for both backends, and
//!   `natural/scalar`: the plain loop in its natural order (output channel,
//!   output row, output column, then the window), the baseline of the speed
//!   target. The Scalar backend's `direct` row is the "good scalar" (the same
//!   row-wise kernel as Simd, without vectors).
//! * `max_pool2d`: 2 × 2, stride 2, on (1, 16, 32, 32), forward and backward.

#[path = "common/data.rs"]
mod data;

use data::fill;

use std::hint::black_box;

use constml::nn::{
    Conv2dShape, Pool2dShape, conv2d_auto_views_with, conv2d_backward_views_with,
    conv2d_im2col_backward_views_with, conv2d_im2col_scratch_len, conv2d_im2col_views_with,
    conv2d_views_with, max_pool2d_backward_views, max_pool2d_views,
};
use constml::{Backend, Scalar, Simd};
use criterion::{BenchmarkId, Criterion};

fn shapes() -> [(&'static str, Conv2dShape); 3] {
    [
        (
            "3to16_32x32",
            Conv2dShape::new(1, 3, 32, 32, 16, 3, 3).padding(1, 1),
        ),
        (
            "16to32_16x16",
            Conv2dShape::new(1, 16, 16, 16, 32, 3, 3).padding(1, 1),
        ),
        (
            "depthwise32_16x16",
            Conv2dShape::new(1, 32, 16, 16, 32, 3, 3)
                .padding(1, 1)
                .groups(32),
        ),
    ]
}

/// The valid tap range `lo..hi` of output position `o` along one axis: taps
/// `t` with `0 ≤ o·stride + t·dil − pad < len`.
fn taps(o: usize, k: usize, stride: usize, pad: usize, dil: usize, len: usize) -> (usize, usize) {
    let at = |t: usize| (o * stride + t * dil) as isize - pad as isize;
    let lo = (0..k).find(|&t| at(t) >= 0).unwrap_or(k);
    let hi = (lo..k).find(|&t| at(t) >= len as isize).unwrap_or(k);
    (lo, hi)
}

/// The natural-order loop: for each output channel, output row and output
/// column, the window's sum over input channels and taps. The taps that
/// fall inside the image are worked out once per output row and column (no
/// per-element bounds test), and the inner loop walks a weight row and an
/// input row together.
fn natural(x: &[f32], s: &Conv2dShape, w: &[f32], b: &[f32], y: &mut [f32]) {
    let (oh, ow) = s.output().unwrap();
    let (cig, cog, hw, khw) = (
        s.c_in / s.groups,
        s.c_out / s.groups,
        s.h * s.w,
        s.kh * s.kw,
    );
    for o in 0..s.c_out {
        let xg = &x[(o / cog) * cig * hw..(o / cog + 1) * cig * hw];
        let wo = &w[o * cig * khw..(o + 1) * cig * khw];
        for i in 0..oh {
            let (p0, p1) = taps(i, s.kh, s.stride.0, s.padding.0, s.dilation.0, s.h);
            for j in 0..ow {
                let (q0, q1) = taps(j, s.kw, s.stride.1, s.padding.1, s.dilation.1, s.w);
                let mut acc = b[o];
                for c in 0..cig {
                    for p in p0..p1 {
                        let ih = i * s.stride.0 + p * s.dilation.0 - s.padding.0;
                        let x0 = c * hw + ih * s.w + j * s.stride.1;
                        let wrow = &wo[(c * s.kh + p) * s.kw..(c * s.kh + p + 1) * s.kw];
                        for q in q0..q1 {
                            acc += wrow[q] * xg[x0 + q * s.dilation.1 - s.padding.1];
                        }
                    }
                }
                y[(o * oh + i) * ow + j] = acc;
            }
        }
    }
}

fn conv<B: Backend>(c: &mut Criterion) {
    let mut g = c.benchmark_group("conv2d");
    for (name, shape) in shapes() {
        let (lx, lw, ly) = shape.lens().unwrap();
        let (x, w, b, dy) = (fill(lx, 1), fill(lw, 2), fill(shape.c_out, 3), fill(ly, 4));
        let mut y = vec![0.0f32; ly];
        let mut scratch = vec![0.0f32; conv2d_im2col_scratch_len(&shape)];
        if B::NAME == Scalar::NAME {
            // The baseline computes the same convolution.
            let (mut y0, mut y1) = (vec![0.0f32; ly], vec![0.0f32; ly]);
            natural(&x, &shape, &w, &b, &mut y0);
            conv2d_views_with::<B, f32>(&x, &shape, &w, Some(&b), &mut y1).unwrap();
            assert!(
                y0.iter()
                    .zip(&y1)
                    .all(|(a, b)| (a - b).abs() <= 1e-4 * (1.0 + b.abs()))
            );
            g.bench_function(
                BenchmarkId::new(format!("{name}/natural"), B::NAME),
                |bch| bch.iter(|| natural(black_box(&x), &shape, &w, &b, &mut y)),
            );
        }
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
        g.bench_function(BenchmarkId::new(format!("{name}/auto"), B::NAME), |bch| {
            bch.iter(|| {
                conv2d_auto_views_with::<B, f32>(
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
            BenchmarkId::new(format!("{name}/backward_direct"), B::NAME),
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
        g.bench_function(
            BenchmarkId::new(format!("{name}/backward_im2col"), B::NAME),
            |bch| {
                bch.iter(|| {
                    conv2d_im2col_backward_views_with::<B, f32>(
                        black_box(&x),
                        &shape,
                        &w,
                        &dy,
                        Some(&mut dx),
                        Some(&mut dw),
                        Some(&mut db),
                        &mut scratch,
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
