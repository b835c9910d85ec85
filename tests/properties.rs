//! Property tests (proptest) on random shapes and data, bounded so that the
//! suite stays fast (128 cases per property natively, 24 under emulation):
//!
//! * **Scalar ≡ Simd** for every algorithm family with a backend parameter —
//!   norms, linear, conv2d, attention, recurrent cells, cross-entropy,
//!   k-means, RoPE — each output within a bound derived from the standard
//!   rounding bound of its computation (see [`gamma`] and each test);
//! * softmax rows sum to 1, log-softmax is its logarithm;
//! * RoPE's relative property: the score of two rotated vectors depends only on
//!   the distance between their positions;
//! * cached decoding equals recomputation (a Llama fed one token at a time
//!   against the whole chunk at once);
//! * gradients against central finite differences in `f64`;
//! * round trips of the loaders and the quantizer.
//!
//! Shapes are drawn by proptest (and shrink on failure); the numbers come from
//! a seeded generator so that a failing case prints a small, replayable seed.

use constml::attention::{AttnOptions, sdpa_views_with};
use constml::ml::{kmeans_lloyd_step_views_with, kmeans_predict_views, kmeans_scratch_len};
use constml::models::quant::{Rounding, dequantize_q8, quantize_q8};
use constml::models::{
    Llama, Llama2cCheckpoint, Llama2cQ8Checkpoint, LlamaConfig, LlamaState, LlamaWeights,
    LogitRows, Tokenizer, llama2c_floats, llama2c_q8_export,
};
use constml::nn::{
    Cell, Conv2dShape, CrossEntropy, RecurrentDyn, conv2d_backward_views_with,
    conv2d_im2col_backward_views_with, conv2d_im2col_scratch_len, conv2d_im2col_views_with,
    conv2d_views_with, cross_entropy_views_with, linear_backward_views_with, linear_views_with,
};
use constml::norm::{
    NormStats, layer_norm_backward_views_with, layer_norm_views_with, rms_norm_backward_views_with,
    rms_norm_views_with,
};
use constml::position::{RopeConfig, RopeDyn, RopeLayout};
use constml::{Backend, MatMut, MatRef, Real, Scalar, Simd};
use proptest::prelude::*;
use rand_core::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

fn config() -> ProptestConfig {
    ProptestConfig {
        // qemu-user runs the aarch64 build about ten times slower.
        cases: if cfg!(target_arch = "aarch64") {
            24
        } else {
            128
        },
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// `n` values uniform in `[-scale, scale)` from `seed`.
fn data<T: Real>(seed: u64, n: usize, scale: f64) -> Vec<T> {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    (0..n)
        .map(|_| {
            let u = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
            T::from_f64((2.0 * u - 1.0) * scale)
        })
        .collect()
}

/// `γ_n = n·ε/(1 − n·ε)`: a sum of `n` products computed in any order is
/// within `γ_n·Σ|aᵢbᵢ|` of the exact value.
fn gamma<T: Real>(n: usize) -> f64 {
    let ne = n as f64 * T::EPSILON.as_f64();
    ne / (1.0 - ne)
}

/// Every `got[i]` within `bound(i)` of `want[i]` (NaN only against NaN).
#[track_caller]
fn within<T: Real>(what: &str, got: &[T], want: &[T], bound: impl Fn(usize) -> f64) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let (g, w) = (g.as_f64(), w.as_f64());
        if g == w || (g.is_nan() && w.is_nan()) {
            continue;
        }
        let b = bound(i);
        assert!((g - w).abs() <= b, "{what}[{i}]: {g} vs {w} (bound {b:e})");
    }
}

fn abs<T: Real>(x: &[T]) -> Vec<T> {
    x.iter().map(|v| v.abs()).collect()
}

// ---------------------------------------------------------------- Scalar ≡ Simd

/// The inputs of one norm comparison.
struct NormData<'a, T> {
    x: &'a [T],
    w: &'a [T],
    b: &'a [T],
    dy: &'a [T],
    n: usize,
    c: usize,
    eps: T,
}

/// LayerNorm forward and backward with backend `B`: `(y, dx, dw, db)`.
fn layer_norm_run<B: Backend, T: Real>(d: &NormData<'_, T>) -> [Vec<T>; 4] {
    let (n, c) = (d.n, d.c);
    let (mut y, mut mean, mut rstd) = (vec![T::ZERO; n * c], vec![T::ZERO; n], vec![T::ZERO; n]);
    let (mut dx, mut dw, mut db) = (vec![T::ZERO; n * c], vec![T::ZERO; c], vec![T::ZERO; c]);
    let xm = MatRef::new(d.x, n, c).unwrap();
    let stats = Some(NormStats::new(&mut mean, &mut rstd));
    let ym = MatMut::new(&mut y, n, c).unwrap();
    layer_norm_views_with::<B, T>(xm, ym, Some(d.w), Some(d.b), d.eps, stats).unwrap();
    let (dym, dxm) = (
        MatRef::new(d.dy, n, c).unwrap(),
        MatMut::new(&mut dx, n, c).unwrap(),
    );
    let (dwo, dbo) = (Some(&mut dw[..]), Some(&mut db[..]));
    layer_norm_backward_views_with::<B, T>(xm, dym, dxm, Some(d.w), d.eps, None, dwo, dbo).unwrap();
    [y, dx, dw, db]
}

/// RMSNorm forward and backward with backend `B`: `(y, dx, dw)`.
fn rms_norm_run<B: Backend, T: Real>(d: &NormData<'_, T>) -> [Vec<T>; 3] {
    let (n, c) = (d.n, d.c);
    let (mut y, mut dx, mut dw) = (vec![T::ZERO; n * c], vec![T::ZERO; n * c], vec![T::ZERO; c]);
    let xm = MatRef::new(d.x, n, c).unwrap();
    rms_norm_views_with::<B, T>(
        xm,
        MatMut::new(&mut y, n, c).unwrap(),
        Some(d.w),
        d.eps,
        None,
    )
    .unwrap();
    let (dym, dxm) = (
        MatRef::new(d.dy, n, c).unwrap(),
        MatMut::new(&mut dx, n, c).unwrap(),
    );
    rms_norm_backward_views_with::<B, T>(xm, dym, dxm, Some(d.w), d.eps, None, Some(&mut dw))
        .unwrap();
    [y, dx, dw]
}

/// LayerNorm and RMSNorm, forward and backward. First-order bound: the row
/// statistics are sums of `C` terms (γ_C relative to the row's magnitude),
/// and every output is that error times `r·|w|` plus a few roundings.
fn norms_agree<T: Real>(n: usize, c: usize, seed: u64) {
    let x: Vec<T> = data(seed, n * c, 3.0);
    let w: Vec<T> = data(seed + 1, c, 2.0);
    let b: Vec<T> = data(seed + 2, c, 1.0);
    let dy: Vec<T> = data(seed + 3, n * c, 1.0);
    let eps = T::from_f64(1e-5);
    // Row i's reciprocal deviation r (LayerNorm; RMSNorm's is smaller): the
    // mean carries γ_C·max|x| of error, which reaches the output times r·|w|
    // (|x| ≤ 3, |w| ≤ 2, |dy| ≤ 1); the backward's row sums add as much again.
    let r: Vec<f64> = (0..n)
        .map(|i| {
            let row: Vec<f64> = x[i * c..(i + 1) * c].iter().map(|v| v.as_f64()).collect();
            let mu = row.iter().sum::<f64>() / c as f64;
            let var = row.iter().map(|v| (v - mu) * (v - mu)).sum::<f64>() / c as f64;
            1.0 / (var + 1e-5).sqrt()
        })
        .collect();
    let rmax = r.iter().fold(1.0f64, |a, &b| a.max(b));
    let bound = |i: usize| {
        8.0 * gamma::<T>(c + 4) * (1.0 + 3.0 * r[(i / c.max(1)).min(n.max(1) - 1)]) * 2.0 * 4.0
    };
    let d = NormData {
        x: &x,
        w: &w,
        b: &b,
        dy: &dy,
        n,
        c,
        eps,
    };
    let (s, v) = (
        layer_norm_run::<Scalar, T>(&d),
        layer_norm_run::<Simd, T>(&d),
    );
    // The row statistics' error grows with the rows (n·C terms for dw, db).
    let big =
        |_: usize| 8.0 * gamma::<T>(c + 4) * (1.0 + 3.0 * rmax) * 2.0 * 4.0 * (n as f64 + 1.0);
    within("LayerNorm y", &v[0], &s[0], bound);
    within("LayerNorm dx", &v[1], &s[1], bound);
    within("LayerNorm dw", &v[2], &s[2], big);
    within("LayerNorm db", &v[3], &s[3], big);

    let (s, v) = (rms_norm_run::<Scalar, T>(&d), rms_norm_run::<Simd, T>(&d));
    within("RMSNorm y", &v[0], &s[0], bound);
    within("RMSNorm dx", &v[1], &s[1], bound);
    within("RMSNorm dw", &v[2], &s[2], big);
}

/// Linear forward and backward: every output is a sum of products, so each
/// backend is within γ of the exact value, measured by the same product of
/// absolute values (computed with Scalar).
fn linear_agrees<T: Real>(n: usize, inp: usize, out: usize, seed: u64) {
    let x: Vec<T> = data(seed, n * inp, 2.0);
    let w: Vec<T> = data(seed + 1, out * inp, 1.0);
    let b: Vec<T> = data(seed + 2, out, 1.0);
    let dy: Vec<T> = data(seed + 3, n * out, 1.0);
    let go = |scalar: bool, x: &[T], w: &[T], b: &[T], dy: &[T]| {
        let (mut y, mut dx, mut dw, mut db) = (
            vec![T::ZERO; n * out],
            vec![T::ZERO; n * inp],
            vec![T::ZERO; out * inp],
            vec![T::ZERO; out],
        );
        let (xm, wm) = (
            MatRef::new(x, n, inp).unwrap(),
            MatRef::new(w, out, inp).unwrap(),
        );
        let dym = MatRef::new(dy, n, out).unwrap();
        let ym = MatMut::new(&mut y, n, out).unwrap();
        let (dxm, dwm) = (
            MatMut::new(&mut dx, n, inp).unwrap(),
            MatMut::new(&mut dw, out, inp).unwrap(),
        );
        if scalar {
            linear_views_with::<Scalar, T>(xm, wm, Some(b), ym).unwrap();
            linear_backward_views_with::<Scalar, T>(
                xm,
                wm,
                dym,
                Some(dxm),
                Some(dwm),
                Some(&mut db),
            )
            .unwrap();
        } else {
            linear_views_with::<Simd, T>(xm, wm, Some(b), ym).unwrap();
            linear_backward_views_with::<Simd, T>(xm, wm, dym, Some(dxm), Some(dwm), Some(&mut db))
                .unwrap();
        }
        (y, dx, dw, db)
    };
    let s = go(true, &x, &w, &b, &dy);
    let v = go(false, &x, &w, &b, &dy);
    let m = go(true, &abs(&x), &abs(&w), &abs(&b), &abs(&dy));
    fn two<T: Real>(k: usize, mag: &[T]) -> impl Fn(usize) -> f64 + '_ {
        move |i| 2.0 * gamma::<T>(k + 1) * mag[i].as_f64()
    }
    within("linear y", &v.0, &s.0, two(inp + 1, &m.0));
    within("linear dx", &v.1, &s.1, two(out, &m.1));
    within("linear dw", &v.2, &s.2, two(n, &m.2));
    within("linear db", &v.3, &s.3, two(n, &m.3));
}

/// conv2d: the direct Scalar kernel is the oracle for the direct and im2col
/// paths of both backends, forward and backward, with the γ bound of each
/// output's sum (magnitudes from the same convolution of absolute values).
fn conv_agrees<T: Real>(s: Conv2dShape, seed: u64) {
    let (oh, ow) = s.output().unwrap();
    let cig = s.c_in / s.groups;
    let x: Vec<T> = data(seed, s.n * s.c_in * s.h * s.w, 2.0);
    let w: Vec<T> = data(seed + 1, s.c_out * cig * s.kh * s.kw, 1.0);
    let b: Vec<T> = data(seed + 2, s.c_out, 1.0);
    let ylen = s.n * s.c_out * oh * ow;
    let dy: Vec<T> = data(seed + 3, ylen, 1.0);
    let mut scratch = vec![T::ZERO; conv2d_im2col_scratch_len(&s)];
    type Conv<'f, T> = &'f dyn Fn(&[T], &[T], &mut [T], &mut [T]);
    let fwd = |b_: Conv<'_, T>, x: &[T], w: &[T]| {
        let mut y = vec![T::ZERO; ylen];
        let mut sc = vec![T::ZERO; conv2d_im2col_scratch_len(&s)];
        b_(x, w, &mut y, &mut sc);
        y
    };
    let oracle = fwd(
        &|x, w, y, _| conv2d_views_with::<Scalar, T>(x, &s, w, Some(&b), y).unwrap(),
        &x,
        &w,
    );
    let mag = fwd(
        &|x, w, y, _| conv2d_views_with::<Scalar, T>(x, &s, w, Some(&abs(&b)), y).unwrap(),
        &abs(&x),
        &abs(&w),
    );
    let k = cig * s.kh * s.kw + 1;
    let bound = |i: usize| 2.0 * gamma::<T>(k + 1) * mag[i].as_f64();
    let direct = fwd(
        &|x, w, y, _| conv2d_views_with::<Simd, T>(x, &s, w, Some(&b), y).unwrap(),
        &x,
        &w,
    );
    within("conv2d Simd direct", &direct, &oracle, bound);
    let im2col = fwd(
        &|x, w, y, sc| conv2d_im2col_views_with::<Simd, T>(x, &s, w, Some(&b), y, sc).unwrap(),
        &x,
        &w,
    );
    within("conv2d Simd im2col", &im2col, &oracle, bound);

    // Backward: dx sums over (C_OUT/groups)·KH·KW products, dw over N·OH·OW.
    let back = |which: u8, x: &[T], w: &[T], dy: &[T], scratch: &mut [T]| {
        let (mut dx, mut dw, mut db) = (
            vec![T::ZERO; x.len()],
            vec![T::ZERO; w.len()],
            vec![T::ZERO; s.c_out],
        );
        let (dxo, dwo, dbo) = (Some(&mut dx[..]), Some(&mut dw[..]), Some(&mut db[..]));
        match which {
            0 => conv2d_backward_views_with::<Scalar, T>(x, &s, w, dy, dxo, dwo, dbo).unwrap(),
            1 => conv2d_backward_views_with::<Simd, T>(x, &s, w, dy, dxo, dwo, dbo).unwrap(),
            _ => conv2d_im2col_backward_views_with::<Simd, T>(x, &s, w, dy, dxo, dwo, dbo, scratch)
                .unwrap(),
        }
        (dx, dw, db)
    };
    let o = back(0, &x, &w, &dy, &mut scratch);
    let m = back(0, &abs(&x), &abs(&w), &abs(&dy), &mut scratch);
    let kx = (s.c_out / s.groups) * s.kh * s.kw;
    let kw = s.n * oh * ow;
    for which in [1, 2] {
        let g = back(which, &x, &w, &dy, &mut scratch);
        within("conv2d dx", &g.0, &o.0, |i| {
            2.0 * gamma::<T>(kx + 1) * m.0[i].as_f64()
        });
        within("conv2d dw", &g.1, &o.1, |i| {
            2.0 * gamma::<T>(kw + 1) * m.1[i].as_f64()
        });
        within("conv2d db", &g.2, &o.2, |i| {
            2.0 * gamma::<T>(kw + 1) * m.2[i].as_f64()
        });
    }
}

/// Attention: the scores are sums of `dk` products (γ_dk·|q|·|k|·scale); a
/// score error δ moves a weight by at most about 2δ relative, and an output
/// by 2δ·max|v| plus the value sum's own γ_nk.
fn attention_agrees<T: Real>(nq: usize, nk: usize, dk: usize, dv: usize, causal: bool, seed: u64) {
    let q: Vec<T> = data(seed, nq * dk, 1.0);
    let k: Vec<T> = data(seed + 1, nk * dk, 1.0);
    let v: Vec<T> = data(seed + 2, nk * dv, 1.0);
    let mut opts = AttnOptions::new();
    if causal {
        opts = opts.causal();
    }
    let run = |scalar: bool| {
        let (mut out, mut w) = (vec![T::ZERO; nq * dv], vec![T::ZERO; nq * nk]);
        let (qm, km, vm) = (
            MatRef::new(&q, nq, dk).unwrap(),
            MatRef::new(&k, nk, dk).unwrap(),
            MatRef::new(&v, nk, dv).unwrap(),
        );
        let om = MatMut::new(&mut out, nq, dv).unwrap();
        if scalar {
            sdpa_views_with::<Scalar, T>(qm, km, vm, om, &mut w, &opts).unwrap();
        } else {
            sdpa_views_with::<Simd, T>(qm, km, vm, om, &mut w, &opts).unwrap();
        }
        (out, w)
    };
    let (s, v_) = (run(true), run(false));
    // |q·k| ≤ dk (entries in [-1, 1]); times the scale 1/√dk.
    let delta = gamma::<T>(dk + 1) * (dk as f64).sqrt() + 4.0 * T::EPSILON.as_f64();
    let bound = |_: usize| 4.0 * delta + 2.0 * gamma::<T>(nk + 1);
    within("sdpa out", &v_.0, &s.0, bound);
    within("sdpa weights", &v_.1, &s.1, bound);
}

/// Recurrent cells over a sequence: each step is a sum of `I + H` products
/// per gate; errors compound through the steps (bounded here by the
/// saturating nonlinearities), so the bound grows with the sequence.
fn recurrent_agrees(cell: Cell, n: usize, seq: usize, i: usize, h: usize, seed: u64) {
    let mk = |scalar: bool| -> Vec<f64> {
        let mut s: RecurrentDyn<f64, Scalar> = RecurrentDyn::zeros(cell, i, h, true).unwrap();
        let mut v: RecurrentDyn<f64, Simd> = RecurrentDyn::zeros(cell, i, h, true).unwrap();
        let g = cell.gates();
        let w_ih: Vec<f64> = data(seed, g * h * i, 0.5);
        let w_hh: Vec<f64> = data(seed + 1, g * h * h, 0.5);
        s.w_ih.copy_from_slice(&w_ih);
        s.w_hh.copy_from_slice(&w_hh);
        v.w_ih.copy_from_slice(&w_ih);
        v.w_hh.copy_from_slice(&w_hh);
        let x: Vec<f64> = data(seed + 2, n * seq * i, 1.0);
        let o = if scalar {
            s.forward(&x, n, seq, None, None).unwrap()
        } else {
            v.forward(&x, n, seq, None, None).unwrap()
        };
        o.out
    };
    let (s, v) = (mk(true), mk(false));
    let bound = |_: usize| 8.0 * seq as f64 * gamma::<f64>(i + h + 2) * (i + h + 2) as f64;
    within("recurrent out", &v, &s, bound);
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn norms_scalar_matches_simd(n in 0usize..5, c in 0usize..70, seed in any::<u64>()) {
        norms_agree::<f32>(n, c, seed);
        norms_agree::<f64>(n, c, seed);
    }

    #[test]
    fn linear_scalar_matches_simd(n in 0usize..6, i in 0usize..40, o in 0usize..20, seed in any::<u64>()) {
        linear_agrees::<f32>(n, i, o, seed);
        linear_agrees::<f64>(n, i, o, seed);
    }

    #[test]
    fn conv2d_scalar_matches_simd(
        n in 1usize..3, g in 1usize..3, ci in 1usize..3, co in 1usize..3,
        h in 1usize..9, w in 1usize..9, kh in 1usize..4, kw in 1usize..4,
        st in 1usize..3, pad in 0usize..2, dil in 1usize..3, seed in any::<u64>(),
    ) {
        let s = Conv2dShape::new(n, g * ci, h, w, g * co, kh, kw)
            .stride(st, 1).padding(pad, pad).dilation(1, dil).groups(g);
        prop_assume!(s.output().is_ok());
        conv_agrees::<f32>(s, seed);
        conv_agrees::<f64>(s, seed);
    }

    #[test]
    fn attention_scalar_matches_simd(
        nq in 0usize..6, nk in 0usize..40, dk in 1usize..40, dv in 0usize..20,
        causal in any::<bool>(), seed in any::<u64>(),
    ) {
        attention_agrees::<f32>(nq, nk, dk, dv, causal, seed);
        attention_agrees::<f64>(nq, nk, dk, dv, causal, seed);
    }

    #[test]
    fn recurrent_scalar_matches_simd(
        cell in prop_oneof![Just(Cell::Lstm), Just(Cell::Gru), Just(Cell::RnnTanh), Just(Cell::RnnRelu)],
        n in 1usize..3, seq in 1usize..5, i in 1usize..20, h in 1usize..20, seed in any::<u64>(),
    ) {
        recurrent_agrees(cell, n, seq, i, h, seed);
    }

    /// Cross-entropy: the loss is a mean of log-sum-exps, the gradient a
    /// softmax minus the target, each within a few roundings per class.
    #[test]
    fn cross_entropy_scalar_matches_simd(n in 1usize..6, c in 1usize..50, smooth in 0u8..3, seed in any::<u64>()) {
        let logits: Vec<f32> = data(seed, n * c, 5.0);
        let targets: Vec<usize> = (0..n).map(|i| (seed as usize).wrapping_add(i * 7) % c).collect();
        let opts = CrossEntropy { label_smoothing: smooth as f32 * 0.1, ..CrossEntropy::default() };
        let lm = MatRef::new(&logits, n, c).unwrap();
        let (mut ds, mut dv) = (vec![0.0f32; n * c], vec![0.0f32; n * c]);
        let ls = cross_entropy_views_with::<Scalar, f32>(lm, &targets, &opts, Some(MatMut::new(&mut ds, n, c).unwrap())).unwrap();
        let lv = cross_entropy_views_with::<Simd, f32>(lm, &targets, &opts, Some(MatMut::new(&mut dv, n, c).unwrap())).unwrap();
        let b = 4.0 * gamma::<f32>(c + 4) * (1.0 + 10.0);
        prop_assert!((ls - lv).abs() as f64 <= b, "loss {} vs {}", ls, lv);
        within("dlogits", &dv, &ds, |_| b);
    }

    /// k-means: one Lloyd step from the same centres; labels may differ only
    /// between near-equidistant centres, so compare the inertia they reach.
    #[test]
    fn kmeans_step_scalar_matches_simd(n in 1usize..60, d in 1usize..6, k in 1usize..6, seed in any::<u64>()) {
        prop_assume!(k <= n);
        let x: Vec<f64> = data(seed, n * d, 4.0);
        let xm = MatRef::new(&x, n, d).unwrap();
        let step = |scalar: bool| {
            let mut c: Vec<f64> = x[..k * d].to_vec();
            let mut labels = vec![0; n];
            let mut scratch = vec![0.0; kmeans_scratch_len(n, k, d)];
            let cm = MatMut::new(&mut c, k, d).unwrap();
            if scalar {
                kmeans_lloyd_step_views_with::<Scalar, f64>(xm, cm, &mut labels, &mut scratch).unwrap();
            } else {
                kmeans_lloyd_step_views_with::<Simd, f64>(xm, cm, &mut labels, &mut scratch).unwrap();
            }
            kmeans_predict_views(xm, MatRef::new(&c, k, d).unwrap(), &mut labels).unwrap()
        };
        let (s, v) = (step(true), step(false));
        prop_assert!((s - v).abs() <= 1e-9 * (1.0 + s), "{} vs {}", s, v);
    }

    /// RoPE: both backends rotate alike (each output is two products).
    #[test]
    fn rope_scalar_matches_simd(rows in 1usize..4, heads in 1usize..4, half in 1usize..20, start in 0usize..5000, split in any::<bool>(), seed in any::<u64>()) {
        let d = 2 * half;
        let layout = if split { RopeLayout::HalfSplit } else { RopeLayout::Interleaved };
        let x: Vec<f32> = data(seed, rows * heads * d, 2.0);
        let (mut a, mut b) = (x.clone(), x.clone());
        RopeDyn::<f32, Scalar>::new(RopeConfig::new(layout), d).unwrap()
            .rotate_rows(start, MatMut::new(&mut a, rows, heads * d).unwrap(), heads).unwrap();
        RopeDyn::<f32, Simd>::new(RopeConfig::new(layout), d).unwrap()
            .rotate_rows(start, MatMut::new(&mut b, rows, heads * d).unwrap(), heads).unwrap();
        within("rope", &b, &a, |_| 4.0 * 2.0 * f32::EPSILON as f64 * 2.0);
    }
}

// ------------------------------------------------------------ other properties

proptest! {
    #![proptest_config(config())]

    /// Softmax rows sum to 1 (within the rounding of a sum of n terms) and
    /// log-softmax is their logarithm, on both backends, with −∞ entries and
    /// logits spread over a wide range.
    #[test]
    fn softmax_sums_to_one(n in 1usize..300, spread in 0u32..60, masked in 0usize..4, seed in any::<u64>()) {
        let mut x: Vec<f32> = data(seed, n, 2f64.powi(spread as i32 - 20));
        for j in 0..masked.min(n - 1) {
            x[(seed as usize + 31 * j) % n] = f32::NEG_INFINITY;
        }
        if x.iter().all(|v| *v == f32::NEG_INFINITY) { x[0] = 0.0; }
        for scalar in [true, false] {
            let (mut p, mut l) = (x.clone(), x.clone());
            if scalar { Scalar::softmax(&mut p); Scalar::log_softmax(&mut l); }
            else { Simd::softmax(&mut p); Simd::log_softmax(&mut l); }
            let sum: f64 = p.iter().map(|&v| v as f64).sum();
            prop_assert!((sum - 1.0).abs() <= (n as f64 + 4.0) * f32::EPSILON as f64, "sum {}", sum);
            for (pv, lv) in p.iter().zip(&l) {
                prop_assert!((0.0..=1.0).contains(pv));
                if *lv == f32::NEG_INFINITY {
                    prop_assert_eq!(*pv, 0.0);
                } else {
                    let tol = 1e-6 + 4.0 * f32::EPSILON as f64 * *pv as f64 * (1.0 + lv.abs() as f64);
                    prop_assert!(((*lv as f64).exp() - *pv as f64).abs() <= tol, "{} vs {}", lv, pv);
                }
            }
        }
    }

    /// RoPE's relative property: ⟨R(p)q, R(p')k⟩ depends on p − p' only.
    #[test]
    fn rope_scores_depend_on_distance_only(half in 1usize..16, p in 0usize..2000, p2 in 0usize..2000, shift in 0usize..2000, split in any::<bool>(), seed in any::<u64>()) {
        let d = 2 * half;
        let layout = if split { RopeLayout::HalfSplit } else { RopeLayout::Interleaved };
        let rope = RopeDyn::<f64>::new(RopeConfig::new(layout), d).unwrap();
        let q: Vec<f64> = data(seed, d, 1.0);
        let k: Vec<f64> = data(seed + 1, d, 1.0);
        let score = |a: usize, b: usize| {
            let (mut qa, mut kb) = (q.clone(), k.clone());
            rope.rotate(a, &mut qa).unwrap();
            rope.rotate(b, &mut kb).unwrap();
            qa.iter().zip(&kb).map(|(x, y)| x * y).sum::<f64>()
        };
        let (s0, s1) = (score(p, p2), score(p + shift, p2 + shift));
        // Angles up to 4000 rad carry about 4000·ε of rounding each.
        prop_assert!((s0 - s1).abs() <= 1e-11 * d as f64, "{} vs {}", s0, s1);
    }

    /// Cached decoding ≡ recomputation: a random Llama (4 heads over 4, 2 or 1
    /// kv heads; f64)
    /// fed one token at a time gives the logits of one whole chunk.
    #[test]
    fn cached_decoding_equals_recomputation(len in 1usize..9, kv in prop_oneof![Just(1usize), Just(2), Just(4)], shared in any::<bool>(), seed in any::<u64>()) {
        let cfg = LlamaConfig {
            dim: 16, hidden_dim: 24, n_layers: 2, n_heads: 4, n_kv_heads: kv,
            vocab_size: 11, seq_len: 12, shared_classifier: shared,
        };
        let w: Vec<f64> = data(seed, cfg.weights_len(), 0.3);
        let model = Llama::<f64>::new(cfg, LlamaWeights::from_flat(&cfg, &w).unwrap()).unwrap();
        let tokens: Vec<usize> = (0..len).map(|i| (seed as usize >> (i % 32)).wrapping_add(i) % 11).collect();
        let mut arena = vec![0.0; cfg.state_len(len)];
        let mut st = LlamaState::new(&cfg, len, &mut arena).unwrap();
        model.forward(&tokens, &mut st, LogitRows::All).unwrap();
        let whole = st.logits().to_vec();
        st.reset();
        let mut stepwise = Vec::new();
        for &t in &tokens {
            model.forward(&[t], &mut st, LogitRows::Last).unwrap();
            stepwise.extend_from_slice(st.logits());
        }
        within("logits", &stepwise, &whole, |_| 1e-11);
    }

    /// Quantization round trip: every value within half a step (s/2, plus
    /// the rounding of q·s), both rounding rules.
    #[test]
    fn q8_round_trip(groups in 1usize..6, gs in 1usize..40, scale in -20i32..20, seed in any::<u64>()) {
        let x: Vec<f32> = data(seed, groups * gs, 2f64.powi(scale));
        for rule in [Rounding::HalfEven, Rounding::HalfAway] {
            let (mut q, mut s) = (vec![0i8; x.len()], vec![0.0f32; groups]);
            quantize_q8(&x, gs, rule, &mut q, &mut s).unwrap();
            let mut back = vec![0.0f32; x.len()];
            dequantize_q8(&q, &s, gs, &mut back).unwrap();
            for (i, (a, b)) in x.iter().zip(&back).enumerate() {
                let step = s[i / gs] as f64;
                prop_assert!((*a as f64 - *b as f64).abs() <= step / 2.0 * (1.0 + 1e-6) + f32::EPSILON as f64 * a.abs() as f64);
            }
        }
    }

    /// A llama2.c checkpoint written byte by byte loads back with the same
    /// configuration and values; its Q8_0 export loads back too, each weight
    /// within half a step.
    #[test]
    fn checkpoints_round_trip(dim_h in 1usize..4, layers in 1usize..3, vocab in 1usize..20, shared in any::<bool>(), seed in any::<u64>()) {
        let dim = 8 * dim_h;
        let cfg = LlamaConfig {
            dim, hidden_dim: 2 * dim, n_layers: layers, n_heads: 2, n_kv_heads: 1,
            vocab_size: vocab, seq_len: 6, shared_classifier: shared,
        };
        let n = llama2c_floats(&cfg).unwrap();
        let floats: Vec<f32> = data(seed, n, 1.0);
        let mut bytes = Vec::new();
        let v = if shared { vocab as i32 } else { -(vocab as i32) };
        for h in [dim as i32, 2 * dim as i32, layers as i32, 2, 1, v, 6] {
            bytes.extend(h.to_le_bytes());
        }
        bytes.extend(floats.iter().flat_map(|f| f.to_le_bytes()));
        let ck = Llama2cCheckpoint::from_bytes(&bytes).unwrap();
        prop_assert_eq!(*ck.config(), cfg);
        prop_assert_eq!(ck.floats(), &floats[..]);
        prop_assert!(Llama2cCheckpoint::from_bytes(&bytes[..bytes.len() - 1]).is_err());
        let w = ck.weights().unwrap();
        let q8 = llama2c_q8_export(&cfg, &w, 8).unwrap();
        let back = Llama2cQ8Checkpoint::from_vec(q8).unwrap();
        prop_assert_eq!(*back.config(), cfg);
        let qw = back.weights().unwrap();
        let mut row = vec![0.0f32; dim];
        for t in 0..vocab {
            qw.token_embedding.dequantize_row(t, &mut row).unwrap();
            for (j, (a, b)) in row.iter().zip(&w.token_embedding[t * dim..(t + 1) * dim]).enumerate() {
                let step = qw.token_embedding.scale((t * dim + j) / 8).unwrap();
                prop_assert!((a - b).abs() <= step / 2.0 + 1e-7);
            }
        }
    }

    /// The story model's tokenizer: decoding what encoding gives returns the
    /// text, for any printable ASCII.
    #[test]
    fn tokenizer_round_trip(text in "[ -~]{0,60}") {
        let tok = Tokenizer::from_bytes(include_bytes!("../examples/story/tokenizer.bin"), 512).unwrap();
        let ids = tok.encode(&text, true, false).unwrap();
        prop_assert_eq!(ids[0], 1);
        let mut back = Vec::new();
        for w in ids.windows(2) {
            back.extend_from_slice(tok.decode(w[0], w[1]).unwrap());
        }
        prop_assert_eq!(back, text.as_bytes());
    }
}

// ------------------------------------------------------- finite differences

/// Central differences of `loss` at `x` (f64), against `grad`.
fn fd_check(what: &str, x: &mut [f64], grad: &[f64], loss: &mut dyn FnMut(&[f64]) -> f64) {
    let h = 1e-6;
    for i in 0..x.len() {
        let x0 = x[i];
        x[i] = x0 + h;
        let up = loss(x);
        x[i] = x0 - h;
        let down = loss(x);
        x[i] = x0;
        let fd = (up - down) / (2.0 * h);
        assert!(
            (fd - grad[i]).abs() <= 1e-6 * (1.0 + fd.abs()),
            "{what}[{i}]: {} vs finite difference {fd}",
            grad[i]
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: config().cases / 3 + 1, ..config() })]

    /// LayerNorm and RMSNorm backward against finite differences of
    /// L = Σ dy·y, for x, the weight and the bias.
    #[test]
    fn norm_gradients_match_finite_differences(n in 1usize..4, c in 1usize..12, seed in any::<u64>()) {
        let mut x: Vec<f64> = data(seed, n * c, 2.0);
        let mut w: Vec<f64> = data(seed + 1, c, 2.0);
        let mut b: Vec<f64> = data(seed + 2, c, 1.0);
        let dy: Vec<f64> = data(seed + 3, n * c, 1.0);
        let eps = 1e-5;
        let ln = |x: &[f64], w: &[f64], b: &[f64]| {
            let mut y = vec![0.0; n * c];
            layer_norm_views_with::<Simd, f64>(MatRef::new(x, n, c).unwrap(), MatMut::new(&mut y, n, c).unwrap(), Some(w), Some(b), eps, None).unwrap();
            y.iter().zip(&dy).map(|(a, d)| a * d).sum::<f64>()
        };
        let (mut dx, mut dw, mut db) = (vec![0.0; n * c], vec![0.0; c], vec![0.0; c]);
        layer_norm_backward_views_with::<Simd, f64>(MatRef::new(&x, n, c).unwrap(), MatRef::new(&dy, n, c).unwrap(), MatMut::new(&mut dx, n, c).unwrap(), Some(&w), eps, None, Some(&mut dw), Some(&mut db)).unwrap();
        let (w0, b0) = (w.clone(), b.clone());
        fd_check("LayerNorm dx", &mut x, &dx, &mut |x| ln(x, &w0, &b0));
        let x0 = x.clone();
        fd_check("LayerNorm dw", &mut w, &dw, &mut |w| ln(&x0, w, &b0));
        fd_check("LayerNorm db", &mut b, &db, &mut |b| ln(&x0, &w0, b));

        let rms = |x: &[f64], w: &[f64]| {
            let mut y = vec![0.0; n * c];
            rms_norm_views_with::<Simd, f64>(MatRef::new(x, n, c).unwrap(), MatMut::new(&mut y, n, c).unwrap(), Some(w), eps, None).unwrap();
            y.iter().zip(&dy).map(|(a, d)| a * d).sum::<f64>()
        };
        let (mut dx, mut dw) = (vec![0.0; n * c], vec![0.0; c]);
        rms_norm_backward_views_with::<Simd, f64>(MatRef::new(&x, n, c).unwrap(), MatRef::new(&dy, n, c).unwrap(), MatMut::new(&mut dx, n, c).unwrap(), Some(&w), eps, None, Some(&mut dw)).unwrap();
        fd_check("RMSNorm dx", &mut x, &dx, &mut |x| rms(x, &w0));
        fd_check("RMSNorm dw", &mut w, &dw, &mut |w| rms(&x0, w));
    }

    /// conv2d backward against finite differences of L = Σ dy·y.
    #[test]
    fn conv2d_gradients_match_finite_differences(g in 1usize..3, h in 2usize..6, w in 2usize..6, k in 1usize..3, st in 1usize..3, pad in 0usize..2, seed in any::<u64>()) {
        let s = Conv2dShape::new(1, 2 * g, h, w, g, k, k).stride(st, st).padding(pad, pad).groups(g);
        prop_assume!(s.output().is_ok());
        let (oh, ow) = s.output().unwrap();
        let mut x: Vec<f64> = data(seed, 2 * g * h * w, 1.0);
        let mut wt: Vec<f64> = data(seed + 1, g * 2 * k * k, 1.0);
        let dy: Vec<f64> = data(seed + 2, g * oh * ow, 1.0);
        let loss = |x: &[f64], wt: &[f64]| {
            let mut y = vec![0.0; g * oh * ow];
            conv2d_views_with::<Simd, f64>(x, &s, wt, None, &mut y).unwrap();
            y.iter().zip(&dy).map(|(a, d)| a * d).sum::<f64>()
        };
        let (mut dx, mut dw) = (vec![0.0; x.len()], vec![0.0; wt.len()]);
        conv2d_backward_views_with::<Simd, f64>(&x, &s, &wt, &dy, Some(&mut dx), Some(&mut dw), None).unwrap();
        let w0 = wt.clone();
        fd_check("conv2d dx", &mut x, &dx, &mut |x| loss(x, &w0));
        let x0 = x.clone();
        fd_check("conv2d dw", &mut wt, &dw, &mut |wt| loss(&x0, wt));
    }

    /// LSTM and GRU backpropagation through time against finite differences
    /// of L = Σ dout·out, for the input and the recurrent weights.
    #[test]
    fn recurrent_gradients_match_finite_differences(gru in any::<bool>(), seq in 1usize..4, i in 1usize..4, h in 1usize..4, seed in any::<u64>()) {
        let cell = if gru { Cell::Gru } else { Cell::Lstm };
        let g = cell.gates();
        let mut layer: RecurrentDyn<f64> = RecurrentDyn::zeros(cell, i, h, true).unwrap();
        layer.w_ih.copy_from_slice(&data::<f64>(seed, g * h * i, 0.8));
        layer.w_hh.copy_from_slice(&data::<f64>(seed + 1, g * h * h, 0.8));
        let mut x: Vec<f64> = data(seed + 2, seq * i, 1.0);
        let dout: Vec<f64> = data(seed + 3, seq * h, 1.0);
        layer.forward(&x, 1, seq, None, None).unwrap();
        let grads = layer.backward(Some(&dout), None, None).unwrap();
        let mut whh = layer.w_hh.clone();
        let dwhh = layer.dw_hh.clone();
        let mut probe: RecurrentDyn<f64> = RecurrentDyn::zeros(cell, i, h, true).unwrap();
        probe.w_ih.copy_from_slice(&layer.w_ih);
        probe.w_hh.copy_from_slice(&layer.w_hh);
        let x0 = x.clone();
        fd_check("recurrent dx", &mut x, &grads.dx, &mut |x| {
            let o = probe.forward(x, 1, seq, None, None).unwrap();
            o.out.iter().zip(&dout).map(|(a, d)| a * d).sum()
        });
        fd_check("recurrent dW_hh", &mut whh, &dwhh, &mut |w| {
            probe.w_hh.copy_from_slice(w);
            let o = probe.forward(&x0, 1, seq, None, None).unwrap();
            o.out.iter().zip(&dout).map(|(a, d)| a * d).sum()
        });
    }
}
