//! Neural-network chapter: finite-difference gradient checks in f64 on random
//! shapes, Scalar ≡ Simd for the backward primitives, and bad input (errors,
//! never panics, parameters untouched).

mod common;

use common::Lcg;
use constml::nn::*;
use constml::rand_core::SeedableRng;
use constml::{Accumulate, Backend, Error, MatMut, MatRef, Scalar, Simd};
use rand_xoshiro::Xoshiro128PlusPlus;

fn randv(r: &mut Lcg, n: usize) -> Vec<f64> {
    (0..n).map(|_| 2.0 * r.unit() - 1.0).collect()
}

/// Central differences of `f` at `x` against `grad`.
fn fd_check(what: &str, x: &[f64], grad: &[f64], f: impl Fn(&[f64]) -> f64) {
    let h = 1e-6;
    for i in 0..x.len() {
        let (mut a, mut b) = (x.to_vec(), x.to_vec());
        a[i] += h;
        b[i] -= h;
        let num = (f(&a) - f(&b)) / (2.0 * h);
        let tol = 1e-6 * (1.0 + num.abs());
        assert!(
            (num - grad[i]).abs() <= tol,
            "{what}[{i}]: numeric {num}, analytic {}",
            grad[i]
        );
    }
}

#[test]
fn linear_gradients_match_finite_differences() {
    let mut r = Lcg(1);
    for (n, i, o) in [(1usize, 1usize, 1usize), (3, 5, 4), (7, 17, 9), (2, 33, 16)] {
        let x = randv(&mut r, n * i);
        let w = randv(&mut r, o * i);
        let b = randv(&mut r, o);
        let dy = randv(&mut r, n * o);
        let loss = |x: &[f64], w: &[f64], b: &[f64]| {
            let mut y = vec![0.0; n * o];
            linear_views(
                MatRef::new(x, n, i).unwrap(),
                MatRef::new(w, o, i).unwrap(),
                Some(b),
                MatMut::new(&mut y, n, o).unwrap(),
            )
            .unwrap();
            y.iter().zip(&dy).map(|(a, b)| a * b).sum::<f64>()
        };
        let (mut dx, mut dw, mut db) = (vec![0.0; n * i], vec![0.0; o * i], vec![0.0; o]);
        linear_backward_views(
            MatRef::new(&x, n, i).unwrap(),
            MatRef::new(&w, o, i).unwrap(),
            MatRef::new(&dy, n, o).unwrap(),
            Some(MatMut::new(&mut dx, n, i).unwrap()),
            Some(MatMut::new(&mut dw, o, i).unwrap()),
            Some(&mut db),
        )
        .unwrap();
        fd_check("linear dx", &x, &dx, |v| loss(v, &w, &b));
        fd_check("linear dw", &w, &dw, |v| loss(&x, v, &b));
        fd_check("linear db", &b, &db, |v| loss(&x, &w, v));
    }
}

#[test]
fn activation_gradients_match_finite_differences() {
    let mut r = Lcg(2);
    let x: Vec<f64> = randv(&mut r, 40).iter().map(|v| v * 4.0).collect();
    let dy = randv(&mut r, 40);
    for act in [
        Activation::Relu,
        Activation::Sigmoid,
        Activation::Tanh,
        Activation::Silu,
        Activation::Gelu,
        Activation::GeluTanh,
    ] {
        let loss = |x: &[f64]| {
            let mut y = vec![0.0; x.len()];
            activation_forward(act, x, &mut y).unwrap();
            y.iter().zip(&dy).map(|(a, b)| a * b).sum::<f64>()
        };
        let mut y = vec![0.0; 40];
        activation_forward(act, &x, &mut y).unwrap();
        let mut dx = vec![0.0; 40];
        activation_backward(act, &x, &y, &dy, &mut dx).unwrap();
        fd_check(&format!("{act:?}"), &x, &dx, loss);
    }
}

#[test]
fn loss_gradients_match_finite_differences() {
    let mut r = Lcg(3);
    let (n, c) = (6usize, 5usize);
    let logits = randv(&mut r, n * c);
    let targets = [0usize, 4, 2, 2, 1, 3];
    for opts in [
        CrossEntropy::default(),
        CrossEntropy {
            label_smoothing: 0.2,
            ignore_index: None,
        },
        CrossEntropy {
            label_smoothing: 0.1,
            ignore_index: Some(2),
        },
    ] {
        let f = |l: &[f64]| {
            cross_entropy_views(MatRef::new(l, n, c).unwrap(), &targets, &opts, None).unwrap()
        };
        let mut d = vec![0.0; n * c];
        cross_entropy_views(
            MatRef::new(&logits, n, c).unwrap(),
            &targets,
            &opts,
            Some(MatMut::new(&mut d, n, c).unwrap()),
        )
        .unwrap();
        fd_check("cross-entropy", &logits, &d, f);
    }
    let t: Vec<f64> = (0..n * c).map(|i| (i % 3) as f64 / 2.0).collect();
    let mut d = vec![0.0; n * c];
    bce_with_logits(&logits, &t, Some(&mut d)).unwrap();
    fd_check("bce", &logits, &d, |x| {
        bce_with_logits(x, &t, None).unwrap()
    });
    mse_loss(&logits, &t, Some(&mut d)).unwrap();
    fd_check("mse", &logits, &d, |x| mse_loss(x, &t, None).unwrap());
}

#[test]
fn softmax_backward_matches_finite_differences() {
    let mut r = Lcg(4);
    let (n, c) = (3usize, 7usize);
    let x = randv(&mut r, n * c);
    let dy = randv(&mut r, n * c);
    for log in [false, true] {
        let fwd = |x: &[f64]| {
            let mut y = x.to_vec();
            for row in y.chunks_mut(c) {
                if log {
                    Simd::log_softmax(row)
                } else {
                    Simd::softmax(row)
                }
            }
            y
        };
        let y = fwd(&x);
        let mut dx = vec![0.0; n * c];
        let (ym, dym, dxm) = (
            MatRef::new(&y, n, c).unwrap(),
            MatRef::new(&dy, n, c).unwrap(),
            MatMut::new(&mut dx, n, c).unwrap(),
        );
        if log {
            log_softmax_backward_views(ym, dym, dxm)
        } else {
            softmax_backward_views(ym, dym, dxm)
        }
        .unwrap();
        fd_check(if log { "log_softmax" } else { "softmax" }, &x, &dx, |v| {
            fwd(v).iter().zip(&dy).map(|(a, b)| a * b).sum()
        });
    }
}

#[test]
fn backward_primitives_scalar_equal_simd() {
    let mut r = Lcg(5);
    for (k, m, n) in [
        (0usize, 3usize, 4usize),
        (1, 1, 1),
        (3, 17, 15),
        (64, 33, 17),
        (5, 16, 16),
        (40, 70, 9),
    ] {
        let a = randv(&mut r, k * m);
        let b = randv(&mut r, k * n);
        let c0 = randv(&mut r, m * n);
        for acc in [Accumulate::Overwrite, Accumulate::Add] {
            let (mut cs, mut cv) = (c0.clone(), c0.clone());
            Scalar::gemm_at(
                MatRef::new(&a, k, m).unwrap(),
                MatRef::new(&b, k, n).unwrap(),
                MatMut::new(&mut cs, m, n).unwrap(),
                acc,
            )
            .unwrap();
            Simd::gemm_at(
                MatRef::new(&a, k, m).unwrap(),
                MatRef::new(&b, k, n).unwrap(),
                MatMut::new(&mut cv, m, n).unwrap(),
                acc,
            )
            .unwrap();
            for i in 0..m {
                for j in 0..n {
                    // Naive reference and the per-output rounding bound.
                    let (mut s, mut bound) = (
                        if acc == Accumulate::Add {
                            c0[i * n + j]
                        } else {
                            0.0
                        },
                        0.0f64,
                    );
                    for p in 0..k {
                        s += a[p * m + i] * b[p * n + j];
                        bound += (a[p * m + i] * b[p * n + j]).abs();
                    }
                    let tol = 4.0 * (k as f64 + 2.0) * f64::EPSILON * (bound + c0[i * n + j].abs())
                        + 1e-300;
                    assert!((cs[i * n + j] - s).abs() <= tol, "scalar ({k},{m},{n})");
                    assert!((cv[i * n + j] - s).abs() <= tol, "simd ({k},{m},{n})");
                }
            }
        }
        let mut ys = vec![1.0; n];
        let mut yv = vec![1.0; n];
        Scalar::col_sums(MatRef::new(&b, k, n).unwrap(), &mut ys, Accumulate::Add).unwrap();
        Simd::col_sums(MatRef::new(&b, k, n).unwrap(), &mut yv, Accumulate::Add).unwrap();
        assert_eq!(ys, yv);
    }
    let mut c = [0.0f32; 6];
    Simd::ger(
        2.0,
        &[1.0, 2.0],
        &[1.0, 0.0, -1.0],
        MatMut::new(&mut c, 2, 3).unwrap(),
    )
    .unwrap();
    assert_eq!(c, [2.0, 0.0, -2.0, 4.0, 0.0, -4.0]);
    assert!(Simd::ger(1.0, &[1.0f32], &[1.0], MatMut::new(&mut c, 2, 3).unwrap()).is_err());
    assert!(
        Simd::gemm_at(
            MatRef::new(&[1.0f32; 6], 2, 3).unwrap(),
            MatRef::new(&[1.0f32; 6], 3, 2).unwrap(),
            MatMut::new(&mut c, 3, 2).unwrap(),
            Accumulate::Add
        )
        .is_err()
    );
}

fn invalid(e: Error) -> bool {
    matches!(e, Error::InvalidParameter { .. })
}

#[test]
fn optimiser_bad_input_leaves_parameters_untouched() {
    let mut w = [1.0f32, 2.0];
    let g = [0.5f32, 0.5];
    let mut st = [0.0f32; 4];
    for lr in [0.0f32, -1.0, f32::NAN, f32::INFINITY] {
        assert!(invalid(
            Sgd::new(lr)
                .step(&mut [Param::new(&mut w, &g, &mut [])])
                .unwrap_err()
        ));
        assert!(invalid(
            Adam::new(lr)
                .step(&mut [Param::new(&mut w, &g, &mut st)])
                .unwrap_err()
        ));
    }
    for (b1, b2) in [(1.0f32, 0.9), (0.9, 1.0), (-0.1, 0.9), (0.9, f32::NAN)] {
        assert!(invalid(
            Adam::new(0.1)
                .betas(b1, b2)
                .step(&mut [Param::new(&mut w, &g, &mut st)])
                .unwrap_err()
        ));
    }
    assert!(
        Adam::new(0.1)
            .eps(0.0)
            .step(&mut [Param::new(&mut w, &g, &mut st)])
            .is_err()
    );
    assert!(
        Sgd::new(0.1)
            .nesterov(true)
            .step(&mut [Param::new(&mut w, &g, &mut [])])
            .is_err(),
        "nesterov without momentum"
    );
    assert!(
        Sgd::new(0.1)
            .momentum(0.9)
            .dampening(0.1)
            .nesterov(true)
            .step(&mut [Param::new(&mut w, &g, &mut st[..2])])
            .is_err()
    );
    assert!(
        Sgd::new(0.1)
            .momentum(-0.5)
            .step(&mut [Param::new(&mut w, &g, &mut st[..2])])
            .is_err()
    );
    assert!(
        Sgd::new(0.1)
            .weight_decay(-1.0)
            .step(&mut [Param::new(&mut w, &g, &mut [])])
            .is_err()
    );
    // A wrong state or gradient length in the second parameter: the first is untouched too.
    let mut w2 = [3.0f32; 3];
    let (s1, s2) = st.split_at_mut(2);
    let e = Sgd::new(0.1)
        .momentum(0.9)
        .step(&mut [Param::new(&mut w, &g, s1), Param::new(&mut w2, &g, s2)])
        .unwrap_err();
    assert!(matches!(e, Error::LengthMismatch { .. }));
    assert!(
        Adam::new(0.1)
            .step(&mut [Param::new(&mut w, &g, &mut st[..3])])
            .is_err()
    );
    assert_eq!(w, [1.0, 2.0]);
    assert_eq!(w2, [3.0; 3]);
    // Clipping: a non-finite norm or max_norm is an error, nothing scaled.
    let mut g1 = [3.0f32, 4.0];
    let mut g2 = [f32::NAN];
    assert!(clip_grad_norm(&mut [&mut g1[..], &mut g2[..]], 1.0).is_err());
    assert_eq!(g1, [3.0, 4.0]);
    assert!(clip_grad_norm(&mut [&mut g1[..]], 0.0).is_err());
    let n = clip_grad_norm(&mut [&mut g1[..]], 1.0).unwrap();
    assert_eq!(n, 5.0);
    assert!((g1[0] - 0.6).abs() < 1e-6);
}

#[test]
fn layer_and_loss_bad_input_is_an_error() {
    let x = [1.0f32; 6];
    let mut y = [0.0f32; 6];
    // Labels past the class count, every row ignored, empty batch, smoothing out of range.
    let l = MatRef::new(&x, 2, 3).unwrap();
    assert!(matches!(
        cross_entropy_views(l, &[0, 3], &CrossEntropy::default(), None).unwrap_err(),
        Error::OutOfRange {
            index: 3,
            len: 3,
            ..
        }
    ));
    assert!(
        cross_entropy_views(
            l,
            &[5, 5],
            &CrossEntropy {
                label_smoothing: 0.0,
                ignore_index: Some(5)
            },
            None
        )
        .is_err()
    );
    assert!(
        cross_entropy_views(
            l,
            &[0, 5],
            &CrossEntropy {
                label_smoothing: 0.0,
                ignore_index: Some(5)
            },
            None
        )
        .is_ok()
    );
    assert!(
        cross_entropy_views(
            MatRef::new(&x[..0], 0, 3).unwrap(),
            &[],
            &CrossEntropy::default(),
            None
        )
        .is_err()
    );
    assert!(
        cross_entropy_views(
            l,
            &[0, 1],
            &CrossEntropy {
                label_smoothing: 1.5,
                ignore_index: None
            },
            None
        )
        .is_err()
    );
    let mut d = [7.0f32; 6];
    assert!(
        cross_entropy_views(
            l,
            &[0, 9],
            &CrossEntropy::default(),
            Some(MatMut::new(&mut d, 2, 3).unwrap())
        )
        .is_err()
    );
    assert_eq!(d, [7.0; 6], "gradient untouched on Err");
    assert!(mse_loss(&x, &x[..5], None).is_err());
    assert!(mse_loss::<f32>(&[], &[], None).is_err());
    assert!(bce_with_logits(&x[..2], &[0.5, 1.5], None).is_err());
    // Linear shapes.
    let w = [1.0f32; 6];
    assert!(
        linear_backward_views(
            MatRef::new(&x, 2, 3).unwrap(),
            MatRef::new(&w, 3, 2).unwrap(),
            MatRef::new(&x, 2, 3).unwrap(),
            None,
            None,
            None
        )
        .is_err()
    );
    let mut dw = [0.0f32; 4];
    assert!(
        linear_backward_views(
            MatRef::new(&x, 2, 3).unwrap(),
            MatRef::new(&w, 2, 3).unwrap(),
            MatRef::new(&x[..4], 2, 2).unwrap(),
            None,
            Some(MatMut::new(&mut dw, 2, 2).unwrap()),
            None
        )
        .is_err()
    );
    // Embedding ids past the table, activation lengths, dropout p.
    assert!(
        embedding_views(
            MatRef::new(&x, 3, 2).unwrap(),
            &[3],
            MatMut::new(&mut y[..2], 1, 2).unwrap()
        )
        .is_err()
    );
    assert!(activation_forward(Activation::Relu, &x, &mut y[..5]).is_err());
    let mut rng = Xoshiro128PlusPlus::seed_from_u64(1);
    let mut mask = [false; 6];
    assert!(dropout_forward(&x, &mut y, &mut mask, 1.5, true, &mut rng).is_err());
    assert!(dropout_forward(&x, &mut y, &mut mask, f32::NAN, true, &mut rng).is_err());
    dropout_forward(&x, &mut y, &mut mask, 1.0, true, &mut rng).unwrap();
    assert_eq!(y, [0.0; 6]);
    dropout_forward(&x, &mut y, &mut mask, 0.3, false, &mut rng).unwrap();
    assert_eq!(y, x);
}

/// Dropout keeps about 1 − p of the elements, scaled by 1/(1 − p).
#[test]
fn dropout_statistics() {
    let mut rng = Xoshiro128PlusPlus::seed_from_u64(9);
    let x = vec![1.0f64; 20_000];
    let mut y = vec![0.0; 20_000];
    let mut mask = vec![false; 20_000];
    dropout_forward(&x, &mut y, &mut mask, 0.25, true, &mut rng).unwrap();
    let kept = mask.iter().filter(|&&m| m).count() as f64 / 20_000.0;
    assert!((kept - 0.75).abs() < 0.02, "{kept}");
    assert!(y.iter().all(|&v| v == 0.0 || (v - 4.0 / 3.0).abs() < 1e-12));
}

/// Review cases: plain SGD with weight decay in PyTorch's order (no folded
/// factor that rounds to 1 in f32), no L2 term at zero decay (an infinite
/// weight stays infinite), clipping that overflows the element type, and
/// views whose row offsets would overflow.
#[test]
fn optimiser_and_view_corner_cases() {
    // PyTorch's order, bit for bit, over many steps with a gradient.
    let (lr, wd) = (3e-4f32, 2e-4f32);
    let (mut w, mut want) = ([0.75f32], 0.75f32);
    for t in 0..3000 {
        let g = [0.01f32 * ((t % 7) as f32 - 3.0)];
        Sgd::new(lr)
            .weight_decay(wd)
            .step(&mut [Param::new(&mut w, &g, &mut [])])
            .unwrap();
        want -= lr * (g[0] + wd * want);
    }
    assert_eq!(w[0], want);
    let mut w = [f32::INFINITY, 1.0];
    let mut st = [0.0f32; 4];
    Adam::new(0.1)
        .step(&mut [Param::new(&mut w, &[0.5, 0.5], &mut st)])
        .unwrap();
    assert_eq!(w[0], f32::INFINITY);
    let mut w = [f32::INFINITY];
    Sgd::new(0.1)
        .momentum(0.9)
        .step(&mut [Param::new(&mut w, &[0.5], &mut [0.0])])
        .unwrap();
    assert_eq!(w[0], f32::INFINITY);
    let mut g = [3e38f32, 3e38];
    assert!(clip_grad_norm(&mut [&mut g[..]], 1.0).is_err());
    assert_eq!(g, [3e38, 3e38], "nothing scaled");
    assert_eq!(Adam::<f32>::new(0.1).state_len(usize::MAX), usize::MAX);
    // A zero-width view with a huge stride: rows are empty, nothing overflows.
    let v = MatRef::<f32>::with_stride(&[], 3, 0, usize::MAX).unwrap();
    // Its rows exist and are empty (the offset, which would overflow, is never
    // formed; before the reliability audit this returned `None`).
    assert_eq!(v.row(2), Some(&[][..]));
    assert_eq!(v.row(3), None);
    let mut y = [0.0f32; 0];
    Simd::col_sums(v, &mut y, Accumulate::Overwrite).unwrap();
    let mut out = [0usize; 2];
    Simd::raw_nearest::<f32>(&[], usize::MAX, &[0.0; 3], &mut out);
    Scalar::raw_nearest::<f32>(&[], usize::MAX, &[0.0; 3], &mut out);
}
