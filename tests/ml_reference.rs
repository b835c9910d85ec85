//! Classic ML against scikit-learn (tests/reference/gen_ml.py →
//! tests/reference/ml.bin): k-means on iris from given centres (centres,
//! labels, inertia, iteration count) and with k-means++ restarts (the
//! optimum), `SGDRegressor`'s per-sample rule on diabetes after 1 and 5
//! epochs, `LinearRegression`'s closed form, and mini-batch SGD reaching the
//! closed form's loss.

mod common;

use common::{RefFile, entry, to_vec};
use constml::ml::*;
use constml::rand_core::SeedableRng;
use constml::{Backend, MatMut, MatRef, Real, Scalar, Simd};
use rand_xoshiro::Xoshiro256PlusPlus;

static BIN: &[u8] = include_bytes!("reference/ml.bin");

fn file() -> RefFile<'static> {
    RefFile::parse(BIN).expect("ml.bin is a CMLREF01 file")
}

fn load<T: Real>(name: &str) -> Vec<T> {
    to_vec(&entry(&file(), name))
}

fn ints(name: &str) -> Vec<usize> {
    load::<f64>(name).iter().map(|&v| v as usize).collect()
}

fn iris<T: Real>() -> Vec<T> {
    load("iris/x")
}

fn kmeans_given<B: Backend, T: Real>(case: &str) {
    let x = iris::<T>();
    let xv = MatRef::new(&x, 150, 4).unwrap();
    let p = load::<f64>(&format!("kmeans/{case}/params"));
    let (k, max_iter, tol) = (p[0] as usize, p[1] as usize, T::from_f64(p[2]));
    let init = load::<T>(&format!("kmeans/{case}/init"));
    let cfg = KMeansConfig {
        max_iter,
        tol,
        n_init: 1,
    };
    let mut centers = vec![T::NAN; k * 4];
    let mut labels = vec![usize::MAX; 150];
    let mut scratch = vec![T::ZERO; kmeans_scratch_len(150, k, 4)];
    let mut ls = vec![0usize; 150];
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(0);
    let fit = kmeans_views_with::<B, T, _>(
        xv,
        KMeansInit::Given(MatRef::new(&init, k, 4).unwrap()),
        &cfg,
        &mut rng,
        MatMut::new(&mut centers, k, 4).unwrap(),
        &mut labels,
        &mut scratch,
        &mut ls,
    )
    .unwrap();
    let what = format!("k-means {case} {} {}", B::NAME, T::BYTES);
    assert_eq!(
        labels,
        ints(&format!("kmeans/{case}/labels")),
        "{what}: labels"
    );
    assert_eq!(
        fit.n_iter,
        ints(&format!("kmeans/{case}/n_iter"))[0],
        "{what}: n_iter"
    );
    let tol = if T::BYTES == 4 { 2e-5 } else { 1e-12 };
    let want_c = load::<f64>(&format!("kmeans/{case}/centers"));
    for (i, (&g, &w)) in centers.iter().zip(&want_c).enumerate() {
        assert!(
            (g.as_f64() - w).abs() <= tol * w.abs().max(1.0),
            "{what}: centre [{i}] {g} vs {w}"
        );
    }
    let wi = load::<f64>(&format!("kmeans/{case}/inertia"))[0];
    assert!(
        (fit.inertia.as_f64() - wi).abs() <= tol * wi,
        "{what}: inertia {} vs {wi}",
        fit.inertia
    );
}

fn kmeans_all<B: Backend, T: Real>() {
    for case in [
        "given_a",
        "given_b",
        "given_tol0",
        "given_empty",
        "given_k5_maxiter2",
    ] {
        kmeans_given::<B, T>(case);
    }
}

#[test]
fn kmeans_from_given_centres_matches_scikit_learn() {
    kmeans_all::<Simd, f64>();
    kmeans_all::<Scalar, f64>();
    kmeans_all::<Simd, f32>();
    kmeans_all::<Scalar, f32>();
}

/// k-means++ with 10 restarts reaches scikit-learn's optimum on iris
/// (inertia 78.8514), from several seeds, on the const face.
#[test]
fn kmeans_plus_plus_reaches_the_iris_optimum() {
    let x = iris::<f64>();
    let xa: Box<[[f64; 4]; 150]> = Box::new(core::array::from_fn(|i| {
        core::array::from_fn(|j| x[i * 4 + j])
    }));
    let best = load::<f64>("kmeans/iris_best/inertia")[0];
    assert!((best - 78.8514).abs() < 5e-5);
    for seed in 0..5 {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        let (mut c, mut l) = ([[0.0; 4]; 3], [0usize; 150]);
        let mut s = Box::new(KMeansScratch::new());
        let fit = KMeans::<f64, 3, 4>::new()
            .n_init(10)
            .fit(&xa, KMeansInit::PlusPlus, &mut rng, &mut c, &mut l, &mut s)
            .unwrap();
        assert!(
            (fit.inertia - best).abs() < 1e-9,
            "seed {seed}: inertia {}",
            fit.inertia
        );
        assert!(fit.run < 10);
        // The labels are the nearest centres.
        for (i, &li) in l.iter().enumerate() {
            let d = |k: usize| (0..4).map(|j| (xa[i][j] - c[k][j]).powi(2)).sum::<f64>();
            assert!((0..3).all(|k| d(li) <= d(k)), "seed {seed}: point {i}");
        }
    }
}

// ------------------------------------------------------------------ SGD

fn diabetes<T: Real>() -> (Vec<T>, Vec<T>) {
    (load("diabetes/x"), load("diabetes/y"))
}

fn sgd_sklearn<B: Backend>(case: &str) {
    let (x, y) = diabetes::<f64>();
    let xv = MatRef::new(&x, 442, 10).unwrap();
    let p = load::<f64>(&format!("sgd/{case}/params"));
    let lr = if p[3] == 0.0 {
        LearningRate::Constant(p[0])
    } else {
        LearningRate::InvScaling {
            eta0: p[0],
            power_t: p[1],
        }
    };
    let l2 = if p[4] == 0.0 { 0.0 } else { p[2] };
    for epochs in [1usize, 5] {
        let cfg = SgdConfig {
            lr,
            rule: SgdRule::Sklearn,
            epochs,
            l2,
            validate_every: 1,
            drop_last: false,
        };
        let (mut w, mut b) = (vec![0.0; 10], 0.0);
        let mut perm = vec![0; 442];
        let mut scratch = vec![0.0; sgd_scratch_len(10)];
        let mut reports = 0;
        let steps = sgd_fit_views_with::<B, f64>(
            xv,
            &y,
            None,
            &cfg,
            &mut w,
            &mut b,
            &mut perm,
            None,
            &mut scratch,
            &mut |_| reports += 1,
        )
        .unwrap();
        let e = |k: &str| load::<f64>(&format!("sgd/{case}/epochs{epochs}/{k}"));
        let what = format!("SGD {case} {epochs} epochs {}", B::NAME);
        assert_eq!(steps as f64 + 1.0, e("t")[0], "{what}: t");
        assert_eq!(reports, epochs);
        for (i, (&g, &want)) in w.iter().zip(&e("coef")).enumerate() {
            assert!(
                (g - want).abs() <= 1e-10 * want.abs().max(1.0),
                "{what}: coef[{i}] {g} vs {want}"
            );
        }
        let bi = e("intercept")[0];
        assert!(
            (b - bi).abs() <= 1e-10 * bi.abs(),
            "{what}: intercept {b} vs {bi}"
        );
    }
}

#[test]
fn sgd_sklearn_rule_matches_sgd_regressor() {
    for case in ["const_none", "inv_none", "const_l2", "inv_l2"] {
        sgd_sklearn::<Simd>(case);
        sgd_sklearn::<Scalar>(case);
    }
}

#[test]
fn closed_form_matches_linear_regression() {
    let (x, y) = diabetes::<f64>();
    let m = constml::Matrix::from_vec(442, 10, x.clone()).unwrap();
    let (w, b) = least_squares_dyn(&m, &y).unwrap();
    for (i, (&g, &want)) in w.iter().zip(&load::<f64>("linreg/coef")).enumerate() {
        assert!(
            (g - want).abs() <= 1e-8 * want.abs().max(1.0),
            "coef[{i}] {g} vs {want}"
        );
    }
    assert!((b - load::<f64>("linreg/intercept")[0]).abs() < 1e-8);
    let mse = 2.0 * half_mse(m.view(), &y, &w, b).unwrap();
    let want = load::<f64>("linreg/train_mse")[0];
    assert!((mse - want).abs() < 1e-8 * want, "{mse} vs {want}");
}

/// Mini-batch SGD (shuffled, last batch partial: 442 = 13·32 + 26) reaches
/// the closed form's training MSE within 2 %; the callback sees the losses
/// fall.
#[test]
fn minibatch_sgd_reaches_the_closed_form_loss() {
    let (x, y) = diabetes::<f64>();
    let m = constml::Matrix::from_vec(442, 10, x).unwrap();
    let (wc, bc) = least_squares_dyn(&m, &y).unwrap();
    let best = half_mse(m.view(), &y, &wc, bc).unwrap();
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(42);
    let cfg = SgdConfig {
        validate_every: 100,
        ..SgdConfig::new(0.5, 32, 3000)
    };
    let fit = sgd_fit_dyn(&m, &y, None, &cfg, Some(&mut rng)).unwrap();
    let history = fit.history;
    assert_eq!(fit.steps, 3000 * 14);
    assert_eq!(history.len(), 30);
    let last = history.last().unwrap();
    assert_eq!(last.steps, 3000 * 14);
    assert!(
        last.train_loss <= best * 1.02,
        "{} vs closed form {best}",
        last.train_loss
    );
    assert!(history[0].train_loss > last.train_loss);
}

/// Two single Lloyd steps from the given centres reproduce scikit-learn's
/// centres after `max_iter = 2` (its final relabelling does not move them),
/// on both backends.
#[test]
fn lloyd_steps_match_scikit_learn() {
    let x = iris::<f64>();
    let xv = MatRef::new(&x, 150, 4).unwrap();
    let mut c = load::<f64>("kmeans/given_k5_maxiter2/init");
    let mut c2 = c.clone();
    let mut labels = vec![0usize; 150];
    let mut scratch = vec![0.0; kmeans_scratch_len(150, 5, 4)];
    for _ in 0..2 {
        kmeans_lloyd_step_views_with::<Simd, f64>(
            xv,
            MatMut::new(&mut c, 5, 4).unwrap(),
            &mut labels,
            &mut scratch,
        )
        .unwrap();
        kmeans_lloyd_step_views_with::<Scalar, f64>(
            xv,
            MatMut::new(&mut c2, 5, 4).unwrap(),
            &mut labels,
            &mut scratch,
        )
        .unwrap();
    }
    let want = load::<f64>("kmeans/given_k5_maxiter2/centers");
    for (i, ((&a, &b), &w)) in c.iter().zip(&c2).zip(&want).enumerate() {
        assert!(
            (a - w).abs() < 1e-12 && (b - w).abs() < 1e-12,
            "centre [{i}]: {a} {b} vs {w}"
        );
    }
    // The labels after a step are the nearest of the centres it started from:
    // relabelling with the final centres (predict) gives scikit-learn's.
    let inertia = kmeans_predict_views(xv, MatRef::new(&c, 5, 4).unwrap(), &mut labels).unwrap();
    assert_eq!(labels, ints("kmeans/given_k5_maxiter2/labels"));
    let wi = load::<f64>("kmeans/given_k5_maxiter2/inertia")[0];
    assert!((inertia - wi).abs() < 1e-10 * wi);
}

/// A relocation that empties its donor cluster (x = 0, 1, 50 from centres
/// 0.5, 1000, 95): one step and the whole fit equal scikit-learn's.
#[test]
fn kmeans_relocation_corner_matches_scikit_learn() {
    let x = load::<f64>("kmeans/tiny_donor/x");
    let init = load::<f64>("kmeans/tiny_donor/init");
    let xv = MatRef::new(&x, 3, 1).unwrap();
    let mut scratch = vec![0.0; kmeans_scratch_len(3, 3, 1)];
    for simd in [false, true] {
        let mut c = init.clone();
        let mut labels = vec![0usize; 3];
        if simd {
            kmeans_lloyd_step_views_with::<Simd, f64>(
                xv,
                MatMut::new(&mut c, 3, 1).unwrap(),
                &mut labels,
                &mut scratch,
            )
            .unwrap();
        } else {
            kmeans_lloyd_step_views_with::<Scalar, f64>(
                xv,
                MatMut::new(&mut c, 3, 1).unwrap(),
                &mut labels,
                &mut scratch,
            )
            .unwrap();
        }
        assert_eq!(
            c,
            load::<f64>("kmeans/tiny_donor/step_centers"),
            "one step (simd {simd})"
        );
    }
    let mut c = vec![0.0; 3];
    let mut labels = vec![0usize; 3];
    let mut ls = vec![0usize; 3];
    let fit = kmeans_views(
        xv,
        KMeansInit::Given(MatRef::new(&init, 3, 1).unwrap()),
        &KMeansConfig::default(),
        &mut Xoshiro256PlusPlus::seed_from_u64(0),
        MatMut::new(&mut c, 3, 1).unwrap(),
        &mut labels,
        &mut scratch,
        &mut ls,
    )
    .unwrap();
    assert_eq!(c, load::<f64>("kmeans/tiny_donor/centers"));
    assert_eq!(labels, ints("kmeans/tiny_donor/labels"));
    assert_eq!(fit.n_iter, ints("kmeans/tiny_donor/n_iter")[0]);
    assert_eq!(fit.inertia, load::<f64>("kmeans/tiny_donor/inertia")[0]);
}
