//! Regression tests for what the fuzz targets (`fuzz/`) and the property tests
//! found (the reliability issue). Each test names the finding it pins.

use constml::{MatMut, MatRef, Matrix};

/// Finding 1 (fuzz target `attention`): a matrix with rows but no columns
/// reported its rows past the first as missing: `Matrix::row(1)` of a `(3, 0)`
/// matrix was `None` (the view's stride points past its empty buffer).
#[test]
fn zero_width_matrices_have_every_row() {
    let m = Matrix::<f32>::zeros(3, 0).unwrap();
    for i in 0..3 {
        assert_eq!(m.row(i), Some(&[][..]), "row {i}");
    }
    assert_eq!(m.row(3), None);
    let v = MatRef::<f32>::with_stride(&[], 4, 0, 7).unwrap();
    assert_eq!(v.row(3), Some(&[][..]));
    assert_eq!(v.row(4), None);
    let mut buf: [f32; 0] = [];
    let mut w = MatMut::with_stride(&mut buf, 2, 0, 5).unwrap();
    assert_eq!(w.row_mut(1).map(|r| r.len()), Some(0));
    assert!(w.row_mut(2).is_none());
}

/// Finding 2 (fuzz target `attention`): keys with no rows made the whole run
/// of keys "empty", so values with rows were never checked against them:
/// `sdpa_dyn` with k `(0, 3)` and v `(2, 1)` returned zeros instead of an error.
#[test]
fn values_without_matching_keys_are_an_error() {
    use constml::Error;
    use constml::attention::{AttnOptions, sdpa_dyn};
    let q = Matrix::from_vec(1, 3, vec![1.0f32, 0.0, 0.0]).unwrap();
    let k = Matrix::<f32>::zeros(0, 3).unwrap();
    let v = Matrix::from_vec(2, 1, vec![1.0f32, 2.0]).unwrap();
    let opts = AttnOptions::new();
    assert!(matches!(
        sdpa_dyn(&q, &k, &v, &opts),
        Err(Error::ShapeMismatch { .. })
    ));
    let none = Matrix::<f32>::zeros(0, 3).unwrap();
    assert!(sdpa_dyn(&none, &k, &v, &opts).is_err());
    // Zero keys and zero values of any width: fully masked rows, zeros.
    let v0 = Matrix::<f32>::zeros(0, 1).unwrap();
    let (out, w) = sdpa_dyn(&q, &k, &v0, &opts).unwrap();
    assert_eq!((out.as_slice(), w.shape()), (&[0.0f32][..], (1, 0)));
}

/// Finding 3 (fuzz target `kmeans`): with more clusters than distinct points,
/// a cluster left empty copied the most populous cluster's *unaveraged sum*
/// when its index came first (scikit-learn 1.9.1 does the same: on this input
/// it returns a centre at −12.95 and an inertia of 2886 for labels that are not
/// the nearest centres). Now every fit's labels are the nearest centres and its
/// inertia is theirs.
#[test]
fn kmeans_with_more_clusters_than_distinct_points_stays_consistent() {
    use constml::ml::{KMeansConfig, KMeansInit, kmeans_dyn, kmeans_predict_views};
    use rand_core::SeedableRng;
    let mut x = vec![0.703125f32; 2];
    x.extend([1.953125f32; 13]);
    x.extend([-1.046875f32; 10]);
    let mut init = vec![
        0.703125f32,
        0.703125,
        -1.046875,
        -1.046875,
        -1.046875,
        -1.046875,
    ];
    init.extend([0.703125f32; 12]);
    let xm = Matrix::from_vec(25, 1, x.clone()).unwrap();
    let cfg = KMeansConfig {
        max_iter: 20,
        ..KMeansConfig::default()
    };
    let mut rng = rand_xoshiro::Xoshiro128PlusPlus::seed_from_u64(0);
    for init in [
        KMeansInit::Given(MatRef::new(&init, 18, 1).unwrap()),
        KMeansInit::PlusPlus,
    ] {
        let (c, labels, fit) = kmeans_dyn(&xm, 18, init, &cfg, &mut rng).unwrap();
        // Every centre is a data value (a mean of equal values, up to the
        // rounding of sum × (1/count)): no stray sums.
        let near = |a: f32, b: f32| (a - b).abs() <= 1e-6;
        for &v in c.as_slice() {
            assert!(
                [0.703125, 1.953125, -1.046875].iter().any(|&d| near(v, d)),
                "centre {v}"
            );
        }
        let mut nearest = vec![0; 25];
        let best = kmeans_predict_views(xm.view(), c.view(), &mut nearest).unwrap();
        assert!(
            best < 1e-10 && fit.inertia < 1e-10,
            "{best} {}",
            fit.inertia
        );
        for (i, &l) in labels.iter().enumerate() {
            assert!(near(c.row(l).unwrap()[0], x[i]), "point {i} labelled {l}");
        }
    }
}

/// Finding 4 (the audit of `decode::beam`): a logits processor that wrote `+∞`
/// into the log-probs was accepted (only NaN was checked), and beam search
/// returned hypotheses scored `+∞`. It is now `InvalidParameter`, like a `+∞`
/// logit from the model. (`audit_beam_processor_infinity_is_an_error` covers the
/// const face; this is the runtime face.)
#[test]
fn beam_processor_infinity_is_an_error_in_the_runtime_face() {
    use constml::decode::{BeamConfig, BeamModel, BeamScratchDyn, HypothesesDyn, beam_search_dyn};
    use constml::{Error, Result};
    struct Boost;
    impl BeamModel<f32> for Boost {
        fn step(&mut self, _: usize, _: usize, _: usize, logits: &mut [f32]) -> Result<()> {
            logits.copy_from_slice(&[0.0, 1.0, 2.0]);
            Ok(())
        }
        fn reorder(&mut self, _: &[usize]) -> Result<()> {
            Ok(())
        }
        fn process(&mut self, _: usize, _: &[usize], lp: &mut [f32]) -> Result<()> {
            lp[0] = f32::INFINITY;
            Ok(())
        }
    }
    let mut s = BeamScratchDyn::new(3, 2, 2).unwrap();
    let mut o = HypothesesDyn::new(2, 2).unwrap();
    let r = beam_search_dyn(&mut Boost, &[1], &BeamConfig::new(2), &mut s, &mut o);
    assert!(matches!(r, Err(Error::InvalidParameter { .. })), "{r:?}");
}
