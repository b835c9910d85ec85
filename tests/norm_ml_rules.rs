//! Normalisation and classic ML: bad input is an error (never a panic), state
//! is unchanged on `Err`, edge cases (empty, one row, constant rows), Scalar ≡
//! Simd on shapes around the lane width, and the online k-means update.

mod common;

use common::Lcg;
use constml::ml::*;
use constml::norm::*;
use constml::rand_core::SeedableRng;
use constml::{Error, MatMut, MatRef, Matrix, Scalar, Simd};
use rand_xoshiro::Xoshiro256PlusPlus;

fn invalid(e: Error) -> bool {
    matches!(e, Error::InvalidParameter { .. })
}

fn randv(r: &mut Lcg, n: usize) -> Vec<f64> {
    (0..n).map(|_| 2.0 * r.unit() - 1.0).collect()
}

#[test]
fn norm_eps_must_be_finite_and_positive() {
    let x = [1.0f32, 2.0, 3.0];
    let mut y = [0.0f32; 3];
    for eps in [0.0f32, -1e-5, f32::NAN, f32::INFINITY] {
        let xv = MatRef::new(&x, 1, 3).unwrap();
        assert!(invalid(
            layer_norm_views(
                xv,
                MatMut::new(&mut y, 1, 3).unwrap(),
                None,
                None,
                eps,
                None
            )
            .unwrap_err()
        ));
        assert!(invalid(
            rms_norm_views(xv, MatMut::new(&mut y, 1, 3).unwrap(), None, eps, None).unwrap_err()
        ));
        assert!(invalid(
            batch_norm_eval_views(
                &x,
                BnShape::new(3, 1, 1),
                &mut y,
                None,
                None,
                eps,
                &[0.0],
                &[1.0]
            )
            .unwrap_err()
        ));
        assert!(LayerNorm::<f32, 3>::new(None, None, eps).is_err());
        assert!(RmsNorm::<f32, 3>::new(None, eps).is_err());
        assert!(BatchNorm::<f32, 3>::new(None, None, eps, Some(0.1)).is_err());
        assert!(RmsNormDyn::<f32>::new(3, true, Some(eps)).is_err());
    }
    assert_eq!(y, [0.0; 3], "nothing written");
    assert!(BatchNorm::<f32, 3>::new(None, None, 1e-5, Some(f32::NAN)).is_err());
    assert_eq!(RmsNorm::<f64, 3>::machine_eps(None).eps(), f64::EPSILON);
}

#[test]
fn batch_norm_training_needs_two_values_per_channel() {
    let bn = BatchNorm::<f32, 3>::new(None, None, 1e-5, Some(0.1)).unwrap();
    let mut state = BatchNormState::new();
    let before = state;
    let mut y = [[0.0f32; 3]];
    let e = bn
        .forward_train_nc(&[[1.0, 2.0, 3.0]], &mut y, Some(&mut state), None)
        .unwrap_err();
    assert!(invalid(e));
    assert_eq!(state, before, "running statistics unchanged");
    // (1, C, 1) is one value per channel too; (1, C, 2) is fine.
    let mut y3 = [[[0.0f32; 1]; 3]; 1];
    assert!(
        bn.forward_train(&[[[1.0]; 3]; 1], &mut y3, None, None)
            .is_err()
    );
    let mut y2 = [[[0.0f32; 2]; 3]; 1];
    bn.forward_train(&[[[1.0, 2.0]; 3]; 1], &mut y2, Some(&mut state), None)
        .unwrap();
    assert_eq!(state.num_batches_tracked, 1);
    // Eval with one sample is fine.
    bn.forward_eval_nc(&[[1.0, 2.0, 3.0]], &mut y, &state)
        .unwrap();
    // Backward refuses it too.
    let mut dx = [[0.0f32; 3]];
    assert!(
        bn.backward_train_nc(&[[1.0; 3]], &[[1.0; 3]], &mut dx, None, None, None)
            .is_err()
    );
    // A mismatched output leaves the state alone.
    let before = state;
    let mut short = [0.0f32; 5];
    let x = [0.5f32; 6];
    let mut rm = state.running_mean;
    let mut rv = state.running_var;
    let mut nb = state.num_batches_tracked;
    let e = batch_norm_train_views(
        &x,
        BnShape::new(2, 3, 1),
        &mut short,
        None,
        None,
        1e-5,
        Some(0.1),
        Some(RunningStats {
            mean: &mut rm,
            var: &mut rv,
            batches: &mut nb,
        }),
        None,
    )
    .unwrap_err();
    assert!(matches!(e, Error::LengthMismatch { .. }));
    assert_eq!(
        (rm, rv, nb),
        (
            before.running_mean,
            before.running_var,
            before.num_batches_tracked
        )
    );
}

#[test]
fn norm_shapes_are_checked() {
    let x = [1.0f32; 6];
    let mut y = [0.0f32; 6];
    let xv = MatRef::new(&x, 2, 3).unwrap();
    assert!(
        layer_norm_views(
            xv,
            MatMut::new(&mut y, 3, 2).unwrap(),
            None,
            None,
            1e-5,
            None
        )
        .is_err()
    );
    assert!(
        layer_norm_views(
            xv,
            MatMut::new(&mut y, 2, 3).unwrap(),
            Some(&[1.0; 2]),
            None,
            1e-5,
            None
        )
        .is_err()
    );
    let (mut m, mut r) = ([0.0f32; 1], [0.0f32; 2]);
    assert!(
        layer_norm_views(
            xv,
            MatMut::new(&mut y, 2, 3).unwrap(),
            None,
            None,
            1e-5,
            Some(NormStats::new(&mut m, &mut r))
        )
        .is_err()
    );
    let mut r2 = [0.0f32; 2];
    assert!(
        layer_norm_views(
            xv,
            MatMut::new(&mut y, 2, 3).unwrap(),
            None,
            None,
            1e-5,
            Some(NormStats::rstd_only(&mut r2))
        )
        .is_err(),
        "LayerNorm needs mean storage"
    );
    assert!(
        rms_norm_views(
            xv,
            MatMut::new(&mut y, 2, 3).unwrap(),
            Some(&[1.0; 4]),
            1e-5,
            None
        )
        .is_err()
    );
    let mut dx = [0.0f32; 6];
    assert!(
        rms_norm_backward_views(
            xv,
            MatRef::new(&x[..3], 1, 3).unwrap(),
            MatMut::new(&mut dx, 2, 3).unwrap(),
            None,
            1e-5,
            None,
            None
        )
        .is_err()
    );
    assert!(
        batch_norm_eval_views(
            &x,
            BnShape::new(2, 3, 1),
            &mut y,
            None,
            None,
            1e-5,
            &[0.0; 2],
            &[1.0; 3]
        )
        .is_err()
    );
    assert!(BnShape::new(usize::MAX, 2, 2).len().is_err());
    let mut w = [1.0f32; 6];
    assert!(
        fold_batch_norm_views(
            MatMut::new(&mut w, 2, 3).unwrap(),
            &mut [0.0; 3],
            None,
            None,
            1e-5,
            &[0.0; 2],
            &[1.0; 2]
        )
        .is_err()
    );
}

/// Constant rows normalise to the bias (zero variance: `r = 1/√eps`, `x̂ = 0`);
/// empty shapes are fine.
#[test]
fn norm_edge_cases() {
    let x = [[7.5f32; 5]; 2];
    let b = [0.25f32; 5];
    let w = [2.0f32; 5];
    let ln = LayerNorm::<f32, 5>::new(Some(&w), Some(&b), 1e-5).unwrap();
    let mut y = [[0.0f32; 5]; 2];
    ln.forward(&x, &mut y, None).unwrap();
    assert_eq!(y, [[0.25; 5]; 2]);
    // Large mean, small spread: the corrected two-pass keeps f32 accuracy.
    let xs: [[f32; 4]; 1] = [[10000.0, 10000.001, 9999.999, 10000.002]];
    let mut ys = [[0.0f32; 4]; 1];
    LayerNorm::<f32, 4>::new(None, None, 1e-12)
        .unwrap()
        .forward(&xs, &mut ys, None)
        .unwrap();
    let xd: Vec<f64> = xs[0].iter().map(|&v| v as f64).collect();
    let mean = xd.iter().sum::<f64>() / 4.0;
    let var = xd.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 4.0;
    for (g, v) in ys[0].iter().zip(&xd) {
        let want = (v - mean) / (var + 1e-12).sqrt();
        assert!((*g as f64 - want).abs() < 1e-4, "{g} vs {want}");
    }
    let e: [[f32; 0]; 3] = [[]; 3];
    let mut ye = e;
    LayerNorm::<f32, 0>::new(None, None, 1e-5)
        .unwrap()
        .forward(&e, &mut ye, None)
        .unwrap();
    RmsNorm::<f32, 0>::new(None, 1e-5)
        .unwrap()
        .forward(&e, &mut ye, None)
        .unwrap();
    batch_norm_train_views::<f32>(
        &[],
        BnShape::new(0, 0, 4),
        &mut [],
        None,
        None,
        1e-5,
        Some(0.1),
        None,
        None,
    )
    .unwrap();
}

/// Scalar ≡ Simd for the norms at widths around the lane counts.
#[test]
fn norms_scalar_equal_simd() {
    let mut r = Lcg(21);
    for c in [1usize, 3, 4, 7, 8, 15, 16, 17, 31, 33, 64, 65] {
        let n = 3;
        let x = randv(&mut r, n * c);
        let dy = randv(&mut r, n * c);
        let w = randv(&mut r, c);
        let run = |simd: bool| {
            let mut y = vec![0.0; n * c];
            let mut dx = vec![0.0; n * c];
            let mut dw = vec![0.0; c];
            let xv = MatRef::new(&x, n, c).unwrap();
            if simd {
                layer_norm_views_with::<Simd, f64>(
                    xv,
                    MatMut::new(&mut y, n, c).unwrap(),
                    Some(&w),
                    None,
                    1e-5,
                    None,
                )
                .unwrap();
                layer_norm_backward_views_with::<Simd, f64>(
                    xv,
                    MatRef::new(&dy, n, c).unwrap(),
                    MatMut::new(&mut dx, n, c).unwrap(),
                    Some(&w),
                    1e-5,
                    None,
                    Some(&mut dw),
                    None,
                )
                .unwrap();
            } else {
                layer_norm_views_with::<Scalar, f64>(
                    xv,
                    MatMut::new(&mut y, n, c).unwrap(),
                    Some(&w),
                    None,
                    1e-5,
                    None,
                )
                .unwrap();
                layer_norm_backward_views_with::<Scalar, f64>(
                    xv,
                    MatRef::new(&dy, n, c).unwrap(),
                    MatMut::new(&mut dx, n, c).unwrap(),
                    Some(&w),
                    1e-5,
                    None,
                    Some(&mut dw),
                    None,
                )
                .unwrap();
            }
            (y, dx, dw)
        };
        let (a, b) = (run(false), run(true));
        for (p, q) in [(&a.0, &b.0), (&a.1, &b.1), (&a.2, &b.2)] {
            let scale = p.iter().fold(1.0f64, |m, v| m.max(v.abs()));
            for (u, v) in p.iter().zip(q.iter()) {
                assert!(
                    (u - v).abs() <= 64.0 * c as f64 * f64::EPSILON * scale,
                    "c = {c}: {u} vs {v}"
                );
            }
        }
    }
}

// ------------------------------------------------------------------ ML

fn blobs(n: usize) -> Vec<f64> {
    let mut r = Lcg(3);
    (0..n * 2)
        .map(|i| if i % 4 < 2 { r.unit() } else { 10.0 + r.unit() })
        .collect()
}

#[test]
fn kmeans_bad_input_is_an_error() {
    let x = blobs(6);
    let xv = MatRef::new(&x, 6, 2).unwrap();
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(1);
    let cfg = KMeansConfig::default();
    let mut s = vec![0.0; kmeans_scratch_len(6, 7, 2)];
    let (mut l, mut ls) = (vec![0usize; 6], vec![0usize; 6]);
    for k in [0usize, 7] {
        let mut c = vec![0.0; k * 2];
        let e = kmeans_views(
            xv,
            KMeansInit::PlusPlus,
            &cfg,
            &mut rng,
            MatMut::new(&mut c, k, 2).unwrap(),
            &mut l,
            &mut s,
            &mut ls,
        )
        .unwrap_err();
        assert!(invalid(e), "K = {k}");
    }
    let mut c = vec![0.0; 4];
    let mut bad = x.clone();
    bad[3] = f64::NAN;
    assert!(
        kmeans_views(
            MatRef::new(&bad, 6, 2).unwrap(),
            KMeansInit::PlusPlus,
            &cfg,
            &mut rng,
            MatMut::new(&mut c, 2, 2).unwrap(),
            &mut l,
            &mut s,
            &mut ls
        )
        .is_err()
    );
    let init = [0.0, f64::INFINITY, 1.0, 1.0];
    assert!(
        kmeans_views(
            xv,
            KMeansInit::Given(MatRef::new(&init, 2, 2).unwrap()),
            &cfg,
            &mut rng,
            MatMut::new(&mut c, 2, 2).unwrap(),
            &mut l,
            &mut s,
            &mut ls
        )
        .is_err()
    );
    for bad_cfg in [
        KMeansConfig { max_iter: 0, ..cfg },
        KMeansConfig { n_init: 0, ..cfg },
        KMeansConfig { tol: -1.0, ..cfg },
        KMeansConfig {
            tol: f64::NAN,
            ..cfg
        },
    ] {
        assert!(
            kmeans_views(
                xv,
                KMeansInit::PlusPlus,
                &bad_cfg,
                &mut rng,
                MatMut::new(&mut c, 2, 2).unwrap(),
                &mut l,
                &mut s,
                &mut ls
            )
            .is_err()
        );
    }
    assert!(
        kmeans_views(
            xv,
            KMeansInit::PlusPlus,
            &cfg,
            &mut rng,
            MatMut::new(&mut c, 2, 2).unwrap(),
            &mut l,
            &mut s[..3],
            &mut ls
        )
        .is_err()
    );
    // K = N and K = 1 work; K = N gives zero inertia.
    let mut c6 = vec![0.0; 12];
    let f = kmeans_views(
        xv,
        KMeansInit::PlusPlus,
        &cfg,
        &mut rng,
        MatMut::new(&mut c6, 6, 2).unwrap(),
        &mut l,
        &mut s,
        &mut ls,
    )
    .unwrap();
    assert_eq!(f.inertia, 0.0);
    let mut c1 = vec![0.0; 2];
    kmeans_views(
        xv,
        KMeansInit::PlusPlus,
        &cfg,
        &mut rng,
        MatMut::new(&mut c1, 1, 2).unwrap(),
        &mut l,
        &mut s,
        &mut ls,
    )
    .unwrap();
    assert!(l.iter().all(|&v| v == 0));
}

#[test]
fn sgd_and_least_squares_bad_input_is_an_error() {
    let x = blobs(8);
    let y: Vec<f64> = (0..8).map(|i| i as f64).collect();
    let xv = MatRef::new(&x, 8, 2).unwrap();
    let mut perm = vec![0; 8];
    let mut s = vec![0.0; 2];
    let run =
        |cfg: &SgdConfig<f64>, x: MatRef<'_, f64>, y: &[f64], perm: &mut [usize], s: &mut [f64]| {
            let (mut w, mut b) = (vec![0.0; 2], 0.0);
            sgd_fit_views(x, y, None, cfg, &mut w, &mut b, perm, None, s, &mut |_| {})
                .map(|_| (w, b))
        };
    let good = SgdConfig::new(0.1, 3, 2);
    for lr in [0.0, -0.1, f64::NAN, f64::INFINITY] {
        assert!(invalid(
            run(
                &SgdConfig {
                    lr: LearningRate::Constant(lr),
                    ..good
                },
                xv,
                &y,
                &mut perm,
                &mut s
            )
            .unwrap_err()
        ));
    }
    assert!(
        run(
            &SgdConfig {
                lr: LearningRate::InvScaling {
                    eta0: 0.1,
                    power_t: f64::NAN
                },
                ..good
            },
            xv,
            &y,
            &mut perm,
            &mut s
        )
        .is_err()
    );
    assert!(
        run(
            &SgdConfig {
                rule: SgdRule::MiniBatch(0),
                ..good
            },
            xv,
            &y,
            &mut perm,
            &mut s
        )
        .is_err()
    );
    assert!(run(&SgdConfig { l2: -1.0, ..good }, xv, &y, &mut perm, &mut s).is_err());
    assert!(
        run(
            &SgdConfig {
                validate_every: 0,
                ..good
            },
            xv,
            &y,
            &mut perm,
            &mut s
        )
        .is_err()
    );
    assert!(matches!(
        run(
            &good,
            MatRef::new(&x[..0], 0, 2).unwrap(),
            &[],
            &mut [],
            &mut s
        )
        .unwrap_err(),
        Error::Empty { .. }
    ));
    let mut yn = y.clone();
    yn[2] = f64::NAN;
    assert!(run(&good, xv, &yn, &mut perm, &mut s).is_err());
    assert!(run(&good, xv, &y[..7], &mut perm, &mut s).is_err());
    assert!(run(&good, xv, &y, &mut perm, &mut s[..1]).is_err());
    // Zero epochs is no work.
    assert_eq!(
        run(&SgdConfig { epochs: 0, ..good }, xv, &y, &mut perm, &mut s).unwrap(),
        (vec![0.0; 2], 0.0)
    );
    // drop_last skips the partial batch: 8 = 3 + 3 + 2 gives 2 steps an
    // epoch (3 without it); a batch larger than N then takes no step at all.
    let steps = |cfg: &SgdConfig<f64>, perm: &mut [usize], s: &mut [f64]| {
        let (mut w, mut b) = (vec![0.0; 2], 0.0);
        sgd_fit_views(
            xv,
            &y,
            None,
            cfg,
            &mut w,
            &mut b,
            perm,
            None,
            s,
            &mut |_| {},
        )
        .unwrap()
    };
    assert_eq!(
        steps(
            &SgdConfig {
                drop_last: true,
                ..good
            },
            &mut perm,
            &mut s
        ),
        4
    );
    assert_eq!(steps(&good, &mut perm, &mut s), 6);
    assert_eq!(
        steps(
            &SgdConfig {
                drop_last: true,
                ..SgdConfig::new(0.1, 9, 2)
            },
            &mut perm,
            &mut s
        ),
        0
    );
    // A batch larger than N is one batch per epoch.
    assert!(run(&SgdConfig::new(0.1, 100, 2), xv, &y, &mut perm, &mut s).is_ok());

    // Closed form: a constant feature is collinear with the intercept.
    let mut xc = x.clone();
    for i in 0..8 {
        xc[i * 2 + 1] = 3.0;
    }
    let m = Matrix::from_vec(8, 2, xc).unwrap();
    assert!(invalid(least_squares_dyn(&m, &y).unwrap_err()));
    // Too few rows, NaN data, short scratch.
    let m3 = Matrix::from_vec(2, 2, x[..4].to_vec()).unwrap();
    assert!(least_squares_dyn(&m3, &y[..2]).is_err());
    let mut xn = x.clone();
    xn[0] = f64::INFINITY;
    assert!(least_squares_dyn(&Matrix::from_vec(8, 2, xn).unwrap(), &y).is_err());
    let (mut w, mut b) = ([0.0; 2], 0.0);
    assert!(least_squares_views(xv, &y, &mut [0.0; 5], &mut w, &mut b).is_err());
}

/// The online update keeps each centre at the mean of the samples it won
/// (seeded with one sample each, count 1).
#[test]
fn online_kmeans_keeps_running_means() {
    let x = blobs(40);
    let mut centers = [x[0], x[1], x[2], x[3]];
    let mut counts = [1u64, 1];
    let mut sums = [[x[0], x[1]], [x[2], x[3]]];
    for i in 2..40 {
        let p = &x[i * 2..i * 2 + 2];
        let c =
            kmeans_online_update(MatMut::new(&mut centers, 2, 2).unwrap(), &mut counts, p).unwrap();
        sums[c][0] += p[0];
        sums[c][1] += p[1];
    }
    assert_eq!(counts.iter().sum::<u64>(), 40);
    for c in 0..2 {
        for j in 0..2 {
            let mean = sums[c][j] / counts[c] as f64;
            assert!((centers[c * 2 + j] - mean).abs() < 1e-12);
        }
    }
    assert!(
        kmeans_online_update(
            MatMut::new(&mut centers, 2, 2).unwrap(),
            &mut counts,
            &[f64::NAN, 0.0]
        )
        .is_err()
    );
    assert!(
        kmeans_online_update(
            MatMut::new(&mut centers, 2, 2).unwrap(),
            &mut counts[..1],
            &[0.0, 0.0]
        )
        .is_err()
    );
    let mut none: [f64; 0] = [];
    assert!(
        kmeans_online_update(MatMut::new(&mut none, 0, 2).unwrap(), &mut [], &[0.0, 0.0]).is_err()
    );
}

/// Shared by both faces: the const-face k-means equals the views face.
#[test]
fn kmeans_faces_agree() {
    let x = blobs(30);
    let xa: [[f64; 2]; 30] = core::array::from_fn(|i| [x[2 * i], x[2 * i + 1]]);
    let km = KMeans::<f64, 3, 2>::new().n_init(4);
    let (mut c, mut l) = ([[0.0; 2]; 3], [0usize; 30]);
    let mut s = KMeansScratch::new();
    let f1 = km
        .fit(
            &xa,
            KMeansInit::PlusPlus,
            &mut Xoshiro256PlusPlus::seed_from_u64(9),
            &mut c,
            &mut l,
            &mut s,
        )
        .unwrap();
    let (mut c2, mut l2) = (vec![0.0; 6], vec![0usize; 30]);
    let mut sv = vec![0.0; kmeans_scratch_len(30, 3, 2)];
    let mut ls = vec![0usize; 30];
    let f2 = kmeans_views(
        MatRef::new(&x, 30, 2).unwrap(),
        KMeansInit::PlusPlus,
        km.config(),
        &mut Xoshiro256PlusPlus::seed_from_u64(9),
        MatMut::new(&mut c2, 3, 2).unwrap(),
        &mut l2,
        &mut sv,
        &mut ls,
    )
    .unwrap();
    assert_eq!(f1, f2);
    assert_eq!(c.as_flattened(), &c2[..]);
    assert_eq!(&l[..], &l2[..]);
}

/// The nearest-centre kernel: Simd (vector selects) ≡ Scalar (plain loop),
/// ties to the first index, at widths around the lane count.
#[test]
fn nearest_kernel_scalar_equals_simd() {
    use constml::Backend;
    let mut r = Lcg(77);
    for k in 1..10usize {
        for n in [0usize, 1, 3, 4, 7, 8, 15, 16, 17, 33] {
            // Values on a coarse grid, so that ties occur.
            let m: Vec<f32> = (0..k * n)
                .map(|_| (r.unit() * 4.0).floor() as f32)
                .collect();
            let bias: Vec<f32> = (0..k).map(|_| (r.unit() * 4.0).floor() as f32).collect();
            let (mut a, mut b) = (vec![9usize; n], vec![9usize; n]);
            Scalar::raw_nearest(&m, n, &bias, &mut a);
            Simd::raw_nearest(&m, n, &bias, &mut b);
            assert_eq!(a, b, "k = {k}, n = {n}");
            for (c, &best) in a.iter().enumerate() {
                let v = |j: usize| bias[j] - 2.0 * m[j * n + c];
                assert!((0..k).all(|j| v(best) <= v(j)));
                assert!((0..best).all(|j| v(j) > v(best)), "first minimum");
            }
        }
    }
}

/// Many channels (64 × 4096, the BatchNorm1d shape of a wide MLP): every
/// channel of the output has mean 0 and variance ≈ 1, and the input gradient
/// of `Σ y²/2` (dy = y) sums to 0 over each channel. (BatchNorm visits each
/// channel's values only; this shape took seconds when it walked every slice
/// for every channel.)
#[test]
fn batch_norm_many_channels() {
    let (n, c) = (64usize, 4096usize);
    let mut r = Lcg(8);
    let x: Vec<f32> = (0..n * c).map(|_| r.unit() as f32).collect();
    let mut y = vec![0.0f32; n * c];
    batch_norm_train_views(
        &x,
        BnShape::new(n, c, 1),
        &mut y,
        None,
        None,
        1e-5,
        Some(0.1),
        None,
        None,
    )
    .unwrap();
    let mut dx = vec![0.0f32; n * c];
    batch_norm_backward_views(
        &x,
        BnShape::new(n, c, 1),
        &y,
        &mut dx,
        None,
        1e-5,
        None,
        None,
        None,
    )
    .unwrap();
    for ch in [0usize, 1, 2047, 4095] {
        let col: Vec<f64> = (0..n).map(|i| y[i * c + ch] as f64).collect();
        let mean = col.iter().sum::<f64>() / n as f64;
        let var = col.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n as f64;
        assert!(
            mean.abs() < 1e-5 && (var - 1.0).abs() < 1e-3,
            "channel {ch}: {mean} {var}"
        );
        let g: f64 = (0..n).map(|i| dx[i * c + ch] as f64).sum();
        assert!(g.abs() < 1e-4, "channel {ch}: Σ dx = {g}");
    }
}

/// Runtime faces: sizes that cannot be allocated, and a training backward
/// without a training forward, are errors.
#[test]
fn runtime_faces_refuse_impossible_requests() {
    assert!(LayerNormDyn::<f32>::new(usize::MAX, true, true, 1e-5).is_err());
    assert!(RmsNormDyn::<f32>::new(usize::MAX, true, None).is_err());
    assert!(BatchNormDyn::<f32>::new(usize::MAX, true, 1e-5, Some(0.1)).is_err());
    let mut bn = BatchNormDyn::<f32>::new(4, true, 1e-5, Some(0.1)).unwrap();
    assert!(
        bn.forward(&[0.0; 8], BnShape::new(1 << 40, 4, 1 << 20))
            .is_err()
    );
    assert!(
        bn.backward(&[0.0; 8], BnShape::new(2, 4, 1), &[0.0; 8])
            .is_err(),
        "no forward yet"
    );
    let big = Matrix::<f64>::zeros(1 << 62, 0).unwrap();
    assert!(least_squares_dyn(&big, &[]).is_err());
    assert!(sgd_fit_dyn(&big, &[], None, &SgdConfig::new(0.1, 1, 1), None).is_err());
    let small = Matrix::<f64>::zeros(4, 0).unwrap();
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(1);
    assert!(
        kmeans_dyn(
            &small,
            usize::MAX,
            KMeansInit::PlusPlus,
            &KMeansConfig::default(),
            &mut rng
        )
        .is_err()
    );
    // Overflowing distances are an error, not an infinite inertia.
    let x = [[0.0f64], [1e200], [-1e200], [2e200]];
    let (mut cc, mut l) = ([[0.0]; 2], [0usize; 4]);
    let mut s = KMeansScratch::new();
    assert!(
        KMeans::<f64, 2, 1>::new()
            .fit(&x, KMeansInit::PlusPlus, &mut rng, &mut cc, &mut l, &mut s)
            .is_err()
    );
}
