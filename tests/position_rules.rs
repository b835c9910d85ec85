//! Position encodings: properties (RoPE's relative-position property, the
//! half-split/interleaved equivalence under llama2.c's weight permutation,
//! Scalar ≡ Simd, hooks inside attention) and bad input (errors, never panics).

mod common;

use common::{Lcg, for_each_backend_and_real};
use constml::attention::{AttnOptions, KvSegment, ScoreBias, attend_views, attend_views_with};
use constml::position::*;
use constml::{Backend, Error, MatMut, MatRef, Matrix, Real, Scalar, Simd};

fn randv<T: Real>(r: &mut Lcg, n: usize) -> Vec<T> {
    (0..n).map(|_| T::from_f64(2.0 * r.unit() - 1.0)).collect()
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

// ------------------------------------------------------------------ RoPE properties

/// ⟨R_m q, R_n k⟩ depends only on m − n, in both layouts, with partial
/// rotation and scaling, at positions up to 10⁶.
#[test]
fn rope_scores_depend_only_on_the_distance() {
    let mut r = Lcg(11);
    for layout in [RopeLayout::Interleaved, RopeLayout::HalfSplit] {
        for (rd, scaling) in [
            (16, RopeScaling::None),
            (8, RopeScaling::Linear(4.0)),
            (16, RopeScaling::Ntk(8.0)),
        ] {
            let rope = RopeDyn::<f64>::new(RopeConfig::new(layout).scaling(scaling), rd).unwrap();
            let (q, k) = (randv::<f64>(&mut r, 20), randv::<f64>(&mut r, 20));
            for delta in [0usize, 1, 7, 300] {
                let score = |m: usize| {
                    let (mut a, mut b) = (q.clone(), k.clone());
                    rope.rotate(m + delta, &mut a).unwrap();
                    rope.rotate(m, &mut b).unwrap();
                    dot(&a, &b)
                };
                let s0 = score(0);
                for m in [1usize, 100, 4095, 100_000, 1_000_000] {
                    // f64 angles carry ~1e-15·m radians of error.
                    let tol = 1e-13 + 4e-15 * m as f64;
                    assert!(
                        (score(m) - s0).abs() <= tol,
                        "{layout:?} {scaling:?} Δ{delta} m{m}"
                    );
                }
            }
        }
    }
}

/// Half-split RoPE on vectors whose coordinates are permuted per head as
/// llama2.c's export permutes the rows of W_q and W_k (Meta → Hugging Face:
/// new row i ← old row 2i, new row i + D/2 ← old row 2i + 1) equals
/// interleaved RoPE on the originals, permuted the same way; so the scores
/// are equal.
#[test]
fn half_split_on_permuted_weights_equals_interleaved() {
    const D: usize = 16;
    let perm = |x: &[f32]| -> Vec<f32> {
        (0..D)
            .map(|i| {
                if i < D / 2 {
                    x[2 * i]
                } else {
                    x[2 * (i - D / 2) + 1]
                }
            })
            .collect()
    };
    // Project with a weight and with its row-permuted copy.
    let mut r = Lcg(5);
    let w = randv::<f32>(&mut r, D * 12); // (D, 12)
    let wp: Vec<f32> = (0..D)
        .flat_map(|i| {
            let src = if i < D / 2 {
                2 * i
            } else {
                2 * (i - D / 2) + 1
            };
            w[src * 12..(src + 1) * 12].to_vec()
        })
        .collect();
    let proj = |w: &[f32], x: &[f32]| -> Vec<f32> {
        (0..D)
            .map(|i| {
                w[i * 12..(i + 1) * 12]
                    .iter()
                    .zip(x)
                    .map(|(a, b)| a * b)
                    .sum()
            })
            .collect()
    };
    let inter = Rope::<f32, D>::new(RopeConfig::new(RopeLayout::Interleaved)).unwrap();
    let half = Rope::<f32, D>::new(RopeConfig::new(RopeLayout::HalfSplit)).unwrap();
    let (xq, xk) = (randv::<f32>(&mut r, 12), randv::<f32>(&mut r, 12));
    for (m, n) in [(0usize, 0usize), (5, 2), (4095, 4000), (100_000, 3)] {
        let (mut q, mut k) = (proj(&w, &xq), proj(&w, &xk));
        let (mut qp, mut kp) = (proj(&wp, &xq), proj(&wp, &xk));
        assert_eq!(qp, perm(&q));
        inter.rotate(m, &mut q).unwrap();
        inter.rotate(n, &mut k).unwrap();
        half.rotate(m, &mut qp).unwrap();
        half.rotate(n, &mut kp).unwrap();
        // The same vectors up to the permutation, bit for bit (same
        // coefficients, same pairs, same arithmetic).
        assert_eq!(qp, perm(&q), "q at {m}");
        assert_eq!(kp, perm(&k), "k at {n}");
        let s = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| (x * y) as f64).sum::<f64>();
        assert!(
            (s(&q, &k) - s(&qp, &kp)).abs() < 1e-5,
            "scores at ({m}, {n})"
        );
    }
}

/// Scalar ≡ Simd for the rotation kernels at widths around the lane counts.
fn rope_backends<T: Real>() {
    let mut r = Lcg(9);
    for layout in [RopeLayout::Interleaved, RopeLayout::HalfSplit] {
        for rd in [2usize, 4, 6, 8, 14, 16, 18, 30, 32, 34, 62, 64, 66, 128] {
            let cfg = RopeConfig::new(layout);
            let a = RopeDyn::<T, Scalar>::new(cfg, rd).unwrap();
            let b = RopeDyn::<T, Simd>::new(cfg, rd).unwrap();
            let d = rd + 3;
            let x = randv::<T>(&mut r, 3 * d);
            let (mut xa, mut xb) = (x.clone(), x.clone());
            a.rotate_rows(77, MatMut::new(&mut xa, 1, 3 * d).unwrap(), 3)
                .unwrap();
            b.rotate_rows(77, MatMut::new(&mut xb, 1, 3 * d).unwrap(), 3)
                .unwrap();
            for (i, (&p, &q)) in xa.iter().zip(&xb).enumerate() {
                // Each output is a·c ± b·s: two products and one sum (fused or
                // not), |a|, |b|, |c|, |s| ≤ 1.
                let tol = 4.0 * T::EPSILON.as_f64();
                assert!(
                    (p.as_f64() - q.as_f64()).abs() <= tol,
                    "{layout:?} R{rd} [{i}]"
                );
            }
            // Pass-through coordinates are untouched.
            for h in 0..3 {
                assert_eq!(&xb[h * d + rd..(h + 1) * d], &x[h * d + rd..(h + 1) * d]);
            }
        }
    }
}

#[test]
fn rope_scalar_equals_simd() {
    rope_backends::<f32>();
    rope_backends::<f64>();
}

// ------------------------------------------------------------------ hooks in attention

/// ALiBi and T5 through the ScoreBias hook give the same attention as their
/// filled per-head bias matrices.
fn hooks_in_attention<B: Backend, T: Real>() {
    const H: usize = 3;
    const NQ: usize = 4;
    const NK: usize = 9;
    const DK: usize = 5;
    let mut r = Lcg(3);
    let q = randv::<T>(&mut r, H * NQ * DK);
    let k = randv::<T>(&mut r, NK * DK);
    let v = randv::<T>(&mut r, NK * DK);
    let slopes: [T; H] = alibi_slopes();
    let alibi = Alibi::new(&slopes, AlibiForm::Causal).unwrap();
    let t5_table: Vec<T> = randv(&mut r, 32 * H);
    let t5 = T5RelativeBias::new(
        T5Buckets::new(false, 32, 128).unwrap(),
        MatRef::new(&t5_table, 32, H).unwrap(),
    )
    .unwrap();
    for (hook, filled) in [(&alibi as &dyn ScoreBias<T>, 0), (&t5, 1)] {
        let mut bias = vec![T::ZERO; H * NQ * NK];
        let bm = MatMut::new(&mut bias, H * NQ, NK).unwrap();
        if filled == 0 {
            alibi.fill_views(5, 0, bm)
        } else {
            t5.fill_views(5, 0, bm)
        }
        .unwrap();
        for h in 0..H {
            let qh = MatRef::new(&q[h * NQ * DK..(h + 1) * NQ * DK], NQ, DK).unwrap();
            let (km, vm) = (
                MatRef::new(&k, NK, DK).unwrap(),
                MatRef::new(&v, NK, DK).unwrap(),
            );
            let run = |o: AttnOptions<'_, T>| {
                let mut out = vec![T::NAN; NQ * DK];
                let mut w = vec![T::NAN; NQ * NK];
                attend_views_with::<B, T>(
                    qh,
                    &[KvSegment::new(km, vm, 0)],
                    MatMut::new(&mut out, NQ, DK).unwrap(),
                    &mut w,
                    h,
                    &o,
                )
                .unwrap();
                out
            };
            let a = run(AttnOptions::new().causal().query_start(5).score_bias(hook));
            let b = run(AttnOptions::new()
                .causal()
                .query_start(5)
                .bias_per_head(MatRef::new(&bias, H * NQ, NK).unwrap()));
            assert_eq!(a, b, "hook {filled} head {h} {}", B::NAME);
        }
    }
}

#[test]
fn score_hooks_equal_filled_bias() {
    for_each_backend_and_real!(hooks_in_attention);
}

/// A hook that knows its head count refuses heads past it.
#[test]
fn score_hook_with_too_few_heads_is_an_error() {
    let slopes = [0.5f32, 0.25];
    let alibi = Alibi::new(&slopes, AlibiForm::Causal).unwrap();
    let q = [0.0f32; 4];
    let mut out = [0.0f32; 4];
    let mut w = [0.0f32; 4];
    fn m(s: &[f32]) -> MatRef<'_, f32> {
        MatRef::new(s, 2, 2).unwrap()
    }
    let seg = [KvSegment::new(m(&q), m(&q), 0)];
    let o = AttnOptions::new().score_bias(&alibi);
    assert!(
        attend_views(
            m(&q),
            &seg,
            MatMut::new(&mut out, 2, 2).unwrap(),
            &mut w,
            1,
            &o
        )
        .is_ok()
    );
    let e = attend_views(
        m(&q),
        &seg,
        MatMut::new(&mut out, 2, 2).unwrap(),
        &mut w,
        2,
        &o,
    )
    .unwrap_err();
    assert!(
        matches!(
            e,
            Error::OutOfRange {
                index: 2,
                len: 2,
                ..
            }
        ),
        "{e:?}"
    );
}

// ------------------------------------------------------------------ bad input

fn invalid(e: Error) -> bool {
    matches!(e, Error::InvalidParameter { .. })
}

#[test]
fn rope_bad_input_is_an_error() {
    let base = RopeConfig::new(RopeLayout::HalfSplit);
    for r in [0usize, 1, 7] {
        assert!(
            invalid(RopeDyn::<f32>::new(base, r).unwrap_err()),
            "rotary dim {r}"
        );
    }
    for theta in [f64::NAN, f64::INFINITY, 0.0, -10.0] {
        assert!(
            invalid(RopeDyn::<f32>::new(base.theta(theta), 8).unwrap_err()),
            "theta {theta}"
        );
        assert!(
            invalid(Rope::<f32, 8>::new(base.theta(theta)).unwrap_err()),
            "theta {theta}"
        );
    }
    assert!(RopeDyn::<f32>::new(base.theta(1e300).recipe(RopeRecipe::HuggingFace), 8).is_err());
    for s in [f64::NAN, f64::INFINITY, 0.0, -2.0] {
        for sc in [RopeScaling::Linear(s), RopeScaling::Ntk(s)] {
            assert!(
                invalid(RopeDyn::<f32>::new(base.scaling(sc), 8).unwrap_err()),
                "{sc:?}"
            );
        }
    }
    assert!(invalid(
        RopeDyn::<f32>::new(base.scaling(RopeScaling::Ntk(2.0)), 2).unwrap_err()
    ));
    assert!(invalid(
        RopeDyn::<f32>::new(base.theta(1e300).scaling(RopeScaling::Ntk(1e300)), 4).unwrap_err()
    ));

    let rope = Rope::<f32, 8>::new(base).unwrap();
    let mut short = [1.0f32; 6];
    assert!(matches!(
        rope.rotate(3, &mut short).unwrap_err(),
        Error::BufferTooSmall {
            needed: 8,
            found: 6,
            ..
        }
    ));
    assert_eq!(short, [1.0; 6], "unchanged");
    let mut x = [1.0f32; 12];
    // 12 columns in 5 heads; 2 heads of 6 (< R = 8); zero heads.
    for heads in [5, 2, 0] {
        assert!(
            rope.rotate_rows(0, MatMut::new(&mut x, 1, 12).unwrap(), heads)
                .is_err(),
            "{heads} heads"
        );
    }
    // Positions that overflow.
    let mut two = [1.0f32; 16];
    assert!(
        rope.rotate_rows(usize::MAX, MatMut::new(&mut two, 2, 8).unwrap(), 1)
            .is_err()
    );
    // A strict table past its end.
    let (mut c, mut s) = ([[0.0f32; 8]; 4], [[0.0f32; 8]; 4]);
    let t = RopeTable::new(rope, &mut c, &mut s, BeyondTable::Error);
    assert!(matches!(
        t.rotate(4, &mut [0.0; 8]).unwrap_err(),
        Error::OutOfRange {
            index: 4,
            len: 4,
            ..
        }
    ));
    let d = RopeDyn::<f32>::new(base, 8)
        .unwrap()
        .with_table(4, BeyondTable::Error)
        .unwrap();
    assert!(matches!(
        d.rotate(9, &mut [0.0; 8]).unwrap_err(),
        Error::OutOfRange {
            index: 9,
            len: 4,
            ..
        }
    ));
    assert!(
        RopeDyn::<f32>::new(base, 8)
            .unwrap()
            .with_table(usize::MAX, BeyondTable::Error)
            .is_err()
    );
}

#[test]
fn t5_bad_input_is_an_error() {
    // max_exact = 0: fewer than 4 buckets bidirectional, 2 causal.
    for (bi, nb) in [(true, 0), (true, 1), (true, 3), (false, 0), (false, 1)] {
        assert!(
            invalid(T5Buckets::new(bi, nb, 100).unwrap_err()),
            "{bi} {nb}"
        );
    }
    // max_distance must exceed max_exact.
    assert!(invalid(T5Buckets::new(true, 4, 1).unwrap_err()));
    assert!(invalid(T5Buckets::new(false, 2, 1).unwrap_err()));
    assert!(invalid(T5Buckets::new(false, 32, 16).unwrap_err()));
    assert!(T5Buckets::new(false, 2, 2).is_ok());
    // The smallest valid configurations stay in range at huge distances.
    for b in [
        T5Buckets::new(true, 4, 2).unwrap(),
        T5Buckets::new(false, 2, 2).unwrap(),
    ] {
        for (q, k) in [(0usize, usize::MAX), (usize::MAX, 0), (7, 7)] {
            assert!(b.bucket(q, k) < b.num_buckets());
        }
    }
    let table = [0.0f32; 8];
    let b = T5Buckets::default();
    assert!(
        T5RelativeBias::new(b, MatRef::new(&table, 4, 2).unwrap()).is_err(),
        "32 rows expected"
    );
    assert!(
        T5RelativeBias::new(
            T5Buckets::new(true, 4, 8).unwrap(),
            MatRef::new(&table[..0], 4, 0).unwrap()
        )
        .is_err(),
        "zero heads"
    );
    let t = T5RelativeBias::new(
        T5Buckets::new(true, 4, 8).unwrap(),
        MatRef::new(&table, 4, 2).unwrap(),
    )
    .unwrap();
    let mut out = [0.0f32; 9];
    assert!(
        t.fill_views(0, 0, MatMut::new(&mut out, 3, 3).unwrap())
            .is_err(),
        "3 rows for 2 heads"
    );
    let mut out = [0.0f32; 4];
    assert!(
        t.fill_views(usize::MAX, 0, MatMut::new(&mut out, 4, 1).unwrap())
            .is_err(),
        "overflow"
    );
}

#[test]
fn alibi_bad_input_is_an_error() {
    assert!(invalid(alibi_slopes_into::<f32>(&mut [], 8.0).unwrap_err()));
    assert!(invalid(
        alibi_slopes_into::<f32>(&mut [0.0; 4], f64::NAN).unwrap_err()
    ));
    assert!(alibi_slope(4, 4, 8.0).is_err());
    assert!(Alibi::<f32>::new(&[], AlibiForm::Causal).is_err());
    assert!(Alibi::new(&[0.5f32, f32::NAN], AlibiForm::Causal).is_err());
    let s = [0.5f32, 0.25];
    let a = Alibi::new(&s, AlibiForm::Symmetric).unwrap();
    let mut out = [0.0f32; 3];
    assert!(
        a.fill_views(0, 0, MatMut::new(&mut out, 3, 1).unwrap())
            .is_err()
    );
    assert_eq!(a.bias(1, 2, 6), -1.0);
    assert_eq!(a.bias(1, 6, 2), -1.0);
    let b = Alibi::new(&s, AlibiForm::Bloom { first: 3 }).unwrap();
    assert_eq!(
        (b.bias(0, 9, 2), b.bias(0, 9, 3), b.bias(0, 9, 5)),
        (0.0, 0.0, 1.0)
    );
    // Any head count and maximum bias gives finite slopes in (0, 1].
    let mut big = vec![0.0f64; 1000];
    alibi_slopes_into(&mut big, 8.0).unwrap();
    assert!(big.iter().all(|&x| x > 0.0 && x <= 1.0));
}

#[test]
fn sinusoidal_bad_input_is_an_error() {
    let halves = Sinusoidal::new(SinusoidalLayout::Halves);
    for d in 0..4 {
        let mut t = vec![7.0f32; 2 * d];
        assert!(
            invalid(
                halves
                    .table_views(0, MatMut::new(&mut t, 2, d).unwrap())
                    .unwrap_err()
            ),
            "d = {d}"
        );
        assert!(t.iter().all(|&v| v == 7.0), "unchanged");
    }
    let inter = Sinusoidal::new(SinusoidalLayout::Interleaved);
    for base in [f64::NAN, 0.0, -1.0, f64::INFINITY] {
        assert!(
            inter.base(base).table_dyn::<f32>(0, 2, 4).is_err(),
            "base {base}"
        );
    }
    let mut x = [[1.0f32; 4]; 2];
    assert!(inter.add(usize::MAX, &mut x).is_err());
    assert_eq!(x, [[1.0; 4]; 2]);
    // Empty shapes are fine.
    assert!(
        inter
            .table_dyn::<f32>(0, 0, 4)
            .unwrap()
            .as_slice()
            .is_empty()
    );
    assert!(inter.table_dyn::<f32>(usize::MAX, 1, 1).is_ok());
}

#[test]
fn learned_bad_input_is_an_error() {
    static T: [[f32; 2]; 3] = [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]];
    let wpe = LearnedPositions::new(&T);
    let mut x = [[0.0f32; 2]; 2];
    assert!(matches!(
        wpe.add(2, &mut x).unwrap_err(),
        Error::OutOfRange {
            index: 3,
            len: 3,
            ..
        }
    ));
    assert!(wpe.add(usize::MAX, &mut x).is_err());
    assert!(wpe.add_at(&[0, 3], &mut x).is_err());
    assert_eq!(x, [[0.0; 2]; 2], "nothing written");
    let mut g = [[0.0f32; 2]; 3];
    assert!(LearnedPositions::<f32, 3, 2>::backward(2, &[[1.0; 2]; 2], &mut g).is_err());
    assert!(LearnedPositions::<f32, 3, 2>::backward_at(&[9, 0], &[[1.0; 2]; 2], &mut g).is_err());
    assert_eq!(g, [[0.0; 2]; 3], "nothing written");
    let mut owned = LearnedPositions::new(T);
    for lr in [f32::NAN, f32::INFINITY] {
        assert!(owned.sgd_step(&g, lr).is_err());
    }
    // Views: width and count mismatches.
    let mut xv = [0.0f32; 6];
    assert!(
        learned_add_views(
            MatRef::from_array(&T),
            0,
            MatMut::new(&mut xv, 2, 3).unwrap()
        )
        .is_err()
    );
    assert!(
        learned_add_at_views(
            MatRef::from_array(&T),
            &[0],
            MatMut::new(&mut xv, 3, 2).unwrap()
        )
        .is_err()
    );
    let mut gm = Matrix::<f32>::zeros(2, 2).unwrap();
    assert!(learned_sgd_step_views(gm.view_mut(), MatRef::from_array(&T), 0.1).is_err());
    // Zero rows at any start are fine.
    let mut none: [[f32; 2]; 0] = [];
    assert!(wpe.add(usize::MAX, &mut none).is_ok());
}

#[test]
fn shaw_zero_distance_is_an_error() {
    let t = [0.0f32; 4];
    assert!(invalid(
        ShawRelative::new(0, Some(MatRef::new(&t, 1, 4).unwrap()), None).unwrap_err()
    ));
    assert!(ShawRelative::new(usize::MAX, None::<MatRef<'_, f32>>, None).is_err());
}

/// Every position is checked before any row is rotated: on `Err` the input is
/// untouched (strict table past its end, positions that overflow).
#[test]
fn rope_errors_leave_the_input_untouched() {
    let rope = Rope::<f32, 4>::new(RopeConfig::new(RopeLayout::Interleaved)).unwrap();
    let (mut c, mut s) = ([[0.0f32; 4]; 2], [[0.0f32; 4]; 2]);
    let strict = RopeTable::new(rope, &mut c, &mut s, BeyondTable::Error);
    let mut x = [0.5f32; 12];
    assert!(
        strict
            .rotate_rows(0, MatMut::new(&mut x, 3, 4).unwrap(), 1)
            .is_err()
    );
    assert_eq!(x, [0.5; 12]);
    assert!(
        rope.rotate_rows(usize::MAX - 1, MatMut::new(&mut x, 3, 4).unwrap(), 1)
            .is_err()
    );
    assert_eq!(x, [0.5; 12]);
    let d = RopeDyn::<f32>::new(RopeConfig::new(RopeLayout::HalfSplit), 4)
        .unwrap()
        .with_table(2, BeyondTable::Error)
        .unwrap();
    assert!(
        d.rotate_rows(1, MatMut::new(&mut x, 3, 4).unwrap(), 1)
            .is_err()
    );
    assert_eq!(x, [0.5; 12]);
    // The Hugging Face recipe rejects a base or factor that f32 cannot hold.
    let hf = RopeConfig::new(RopeLayout::HalfSplit).recipe(RopeRecipe::HuggingFace);
    assert!(RopeDyn::<f32>::new(hf.theta(1e38).scaling(RopeScaling::Ntk(1e3)), 4).is_err());
    assert!(RopeDyn::<f32>::new(hf.scaling(RopeScaling::Linear(1e-60)), 4).is_err());
    assert!(RopeDyn::<f32>::new(hf.scaling(RopeScaling::Linear(1e60)), 4).is_err());
    // Runtime sizes that cannot be allocated are errors.
    assert!(RopeDyn::<f32>::new(RopeConfig::new(RopeLayout::HalfSplit), 1 << 62).is_err());
    assert!(
        RopeDyn::<f32>::new(RopeConfig::new(RopeLayout::HalfSplit), 64)
            .unwrap()
            .with_table(usize::MAX / 64, BeyondTable::Error)
            .is_err()
    );
    // Sinusoidal: checks first, writes after.
    let halves = Sinusoidal::new(SinusoidalLayout::Halves);
    let mut t = [7.0f32; 10];
    assert!(
        halves
            .table_views(usize::MAX, MatMut::new(&mut t, 2, 5).unwrap())
            .is_err()
    );
    assert_eq!(t, [7.0; 10]);
    assert!(halves.value(0, 0, 3).is_err());
    assert!(halves.value(0, 9, 8).is_err());
}
