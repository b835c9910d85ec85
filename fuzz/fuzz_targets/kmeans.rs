//! k-means on arbitrary points and K.
//!
//! Invariants: each Lloyd iteration (`kmeans_lloyd_step_views`, empty-cluster
//! relocation included) never increases the inertia beyond a rounding bound;
//! a fit (`kmeans_dyn`) is `Err` exactly for K = 0, K > N, non-finite data or a
//! bad configuration, and otherwise returns labels < K that are the nearest
//! centres (up to rounding ties), finite centres, and the inertia of those
//! labels; the fit's inertia is never above that of its own starting centres.
#![no_main]
// Index loops mirror the formulas they check.
#![allow(clippy::needless_range_loop)]

use constml::ml::{
    KMeansConfig, KMeansInit, kmeans_dyn, kmeans_lloyd_step_views, kmeans_predict_views,
    kmeans_scratch_len,
};
use constml::{Error, MatMut, MatRef, Matrix};
use constml_fuzz::{Input, stat};
use libfuzzer_sys::fuzz_target;
use rand_core::SeedableRng;

fuzz_target!(|data: &[u8]| {
    let mut inp = Input::new(data);
    let n = inp.range(1, 40);
    let d = inp.range(1, 4);
    let k = inp.range(0, n + 1);
    let coarse = inp.bool();
    let mut x: Vec<f32> = inp.vec(n * d, |i| {
        if coarse {
            i.small_f32() / 4.0
        } else {
            i.fine_f32()
        }
    });
    let poison = inp.u8() < 16;
    if poison {
        let at = inp.range(0, n * d - 1);
        x[at] = inp.any_f32();
    }
    let finite = x.iter().all(|v| v.is_finite());
    // Squared distances of huge finite values overflow: documented errors.
    let moderate = x.iter().all(|v| v.abs() <= 1e6);
    let xm = MatRef::new(&x, n, d).unwrap();
    // Rounding scale of every squared distance here.
    let norm: f64 = x.iter().map(|&v| (v as f64) * (v as f64)).sum();
    let tol = 1e-5 * (1.0 + norm);

    if moderate && (1..=n).contains(&k) {
        lloyd(&mut inp, xm, n, k, d, tol);
    }

    // A whole fit.
    let cfg = KMeansConfig {
        max_iter: inp.range(0, 20),
        tol: if inp.u8() < 8 { inp.any_f32() } else { 1e-4 },
        n_init: inp.range(0, 3),
    };
    let given: Vec<f32> = (0..k)
        .flat_map(|_| {
            let p = inp.range(0, n - 1);
            x[p * d..(p + 1) * d].to_vec()
        })
        .collect();
    let use_given = inp.bool();
    let init = if use_given {
        KMeansInit::Given(MatRef::new(&given, k, d).unwrap())
    } else {
        KMeansInit::PlusPlus
    };
    let mut rng = rand_xoshiro::Xoshiro128PlusPlus::seed_from_u64(inp.u32() as u64);
    let xmat = Matrix::from_vec(n, d, x.clone()).unwrap();
    let got = kmeans_dyn(&xmat, k, init, &cfg, &mut rng);
    if std::env::var_os("FUZZ_DEBUG").is_some() {
        eprintln!("n {n} d {d} k {k} x {x:?} given {given:?} {use_given} {cfg:?} -> {got:?}");
    }
    let cfg_ok = cfg.max_iter >= 1 && cfg.n_init >= 1 && cfg.tol.is_finite() && cfg.tol >= 0.0;
    if k == 0 || k > n || !finite || !cfg_ok {
        assert!(
            matches!(
                got,
                Err(Error::InvalidParameter { .. } | Error::Empty { .. })
            ),
            "k {k} n {n} finite {finite} {cfg:?}: {got:?}"
        );
        stat("rejected");
        return;
    }
    if !moderate {
        // Either a fit or the documented overflow error; no panic.
        if let Ok((_, labels, _)) = &got {
            assert!(labels.iter().all(|&l| l < k));
        }
        stat("huge values");
        return;
    }
    let (centers, labels, fit) = got.unwrap_or_else(|e| panic!("{e:?}"));
    stat("fitted");
    assert_eq!(centers.shape(), (k, d));
    assert!(centers.as_slice().iter().all(|c| c.is_finite()));
    assert_eq!(labels.len(), n);
    assert!(labels.iter().all(|&l| l < k));
    let mut nearest = vec![0; n];
    let inertia = kmeans_predict_views(xm, centers.view(), &mut nearest).unwrap() as f64;
    // The returned labels cost what the nearest ones do, up to rounding.
    let cost: f64 = (0..n)
        .map(|i| sq(&x[i * d..(i + 1) * d], centers.row(labels[i]).unwrap()))
        .sum();
    assert!(
        (cost - inertia).abs() <= tol,
        "labels cost {cost}, nearest {inertia}"
    );
    assert!(
        (fit.inertia as f64 - cost).abs() <= tol,
        "fit {} vs {cost}",
        fit.inertia
    );
    if use_given {
        let mut l0 = vec![0; n];
        let start = kmeans_predict_views(xm, MatRef::new(&given, k, d).unwrap(), &mut l0).unwrap();
        assert!(
            fit.inertia as f64 <= start as f64 + tol,
            "fit {} above its start {start}",
            fit.inertia
        );
    }
});

fn sq(a: &[f32], b: &[f32]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (*x as f64 - *y as f64).powi(2))
        .sum()
}

/// Lloyd iterations from centres picked among the points (duplicates allowed,
/// so clusters go empty and get relocated).
fn lloyd(inp: &mut Input, x: MatRef<'_, f32>, n: usize, k: usize, d: usize, tol: f64) {
    let mut c: Vec<f32> = (0..k)
        .flat_map(|_| {
            let p = inp.range(0, n - 1);
            x.row(p).unwrap().to_vec()
        })
        .collect();
    let mut labels = vec![0usize; n];
    let mut scratch = vec![0.0f32; kmeans_scratch_len(n, k, d)];
    let mut before = kmeans_predict_views(x, MatRef::new(&c, k, d).unwrap(), &mut labels).unwrap();
    for _ in 0..inp.range(1, 8) {
        kmeans_lloyd_step_views(
            x,
            MatMut::new(&mut c, k, d).unwrap(),
            &mut labels,
            &mut scratch,
        )
        .unwrap();
        assert!(labels.iter().all(|&l| l < k));
        assert!(c.iter().all(|v| v.is_finite()));
        let after = kmeans_predict_views(x, MatRef::new(&c, k, d).unwrap(), &mut labels).unwrap();
        assert!(
            after as f64 <= before as f64 + tol,
            "inertia rose from {before} to {after}"
        );
        stat("lloyd step");
        before = after;
    }
}
