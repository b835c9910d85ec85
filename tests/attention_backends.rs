//! Scalar ≡ Simd for the attention family on many shapes, including 0, 1 and the
//! lane width ± 1, with masks, bias, causal/window, hooks and cache runs.
//! Tolerance: 1e-5·√n relative in f32 (1e-13·√n in f64), n the reduction length,
//! relative to max(1, |value|) since outputs are averages of O(1) values.

use constml::attention::*;
use constml::{Backend, MatMut, MatRef, Real, Scalar, Simd};

struct Lcg(u64);
impl Lcg {
    fn f(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
    }
    fn vec<T: Real>(&mut self, n: usize) -> Vec<T> {
        (0..n).map(|_| T::from_f64(self.f())).collect()
    }
    fn below(&mut self, n: usize) -> usize {
        ((self.f() + 1.0) * 0.5 * n as f64) as usize % n.max(1)
    }
}

#[track_caller]
fn same<T: Real>(what: &str, a: &[T], b: &[T], n: usize) {
    let eps = if T::BYTES == 4 { 1e-5 } else { 1e-13 };
    let tol = eps * (n.max(1) as f64).sqrt();
    assert_eq!(a.len(), b.len());
    for (i, (&x, &y)) in a.iter().zip(b).enumerate() {
        let (x, y) = (<T as Real>::to_f64(x), <T as Real>::to_f64(y));
        assert!(
            (x - y).abs() <= tol * y.abs().max(1.0) || (x.is_nan() && y.is_nan()),
            "{what}[{i}]: simd {x:e} vs scalar {y:e}"
        );
    }
}

fn run_sdpa<B: Backend, T: Real>(
    nq: usize,
    nk: usize,
    dk: usize,
    dv: usize,
    data: &(Vec<T>, Vec<T>, Vec<T>),
    opts: &AttnOptions<'_, T>,
) -> (Vec<T>, Vec<T>) {
    let mut out = vec![T::NAN; nq * dv];
    let mut w = vec![T::NAN; nq * nk];
    sdpa_views_with::<B, T>(
        MatRef::new(&data.0, nq, dk).unwrap(),
        MatRef::new(&data.1, nk, dk).unwrap(),
        MatRef::new(&data.2, nk, dv).unwrap(),
        MatMut::new(&mut out, nq, dv).unwrap(),
        &mut w,
        opts,
    )
    .unwrap();
    (out, w)
}

fn sdpa_shapes<T: Real>() {
    let l = T::LANES;
    let mut r = Lcg(42);
    let nqs = [0, 1, 3, l - 1, l + 1];
    let nks = [0, 1, 2, l - 1, l, l + 1, 3 * l + 5];
    let dks = [1, 3, l - 1, l, l + 1, 64];
    let dvs = [1, l, l + 1];
    let mut cases = 0;
    for &nq in &nqs {
        for &nk in &nks {
            for &dk in &dks {
                let dv = dvs[r.below(dvs.len())];
                let data = (
                    r.vec::<T>(nq * dk),
                    r.vec::<T>(nk * dk),
                    r.vec::<T>(nk * dv),
                );
                let mask: Vec<bool> = (0..nq * nk).map(|_| r.f() > -0.4).collect();
                let bias = r.vec::<T>(nq * nk);
                let kmask: Vec<bool> = (0..nk).map(|_| r.f() > -0.6).collect();
                let hook = |h: usize, i: usize, j: usize| {
                    T::from_f64(((h + 3 * i) as f64 - j as f64) * 0.05)
                };
                let ak = r.vec::<T>(5 * dk);
                let av = r.vec::<T>(5 * dv);
                let shaw = ShawRelative::new(
                    2,
                    Some(MatRef::new(&ak, 5, dk).unwrap()),
                    Some(MatRef::new(&av, 5, dv).unwrap()),
                )
                .unwrap();
                let mm = MatRef::new(&mask, nq, nk).unwrap();
                let bm = MatRef::new(&bias, nq, nk).unwrap();
                let variants = [
                    AttnOptions::new(),
                    AttnOptions::new().allow(mm).bias(bm),
                    AttnOptions::new().block(mm).key_block(&kmask).causal(),
                    AttnOptions::new()
                        .causal()
                        .window(3)
                        .query_start(nk.saturating_sub(1)),
                    AttnOptions::new()
                        .query_start(1)
                        .score_bias(&hook)
                        .relative(&shaw)
                        .key_allow(&kmask),
                    AttnOptions::new().scale(T::from_f64(0.7)).causal(),
                ];
                for (vi, o) in variants.iter().enumerate() {
                    let (a, aw) = run_sdpa::<Simd, T>(nq, nk, dk, dv, &data, o);
                    let (b, bw) = run_sdpa::<Scalar, T>(nq, nk, dk, dv, &data, o);
                    let what = format!("sdpa nq={nq} nk={nk} dk={dk} dv={dv} variant {vi}");
                    same(&format!("{what} out"), &a, &b, nk + dk);
                    same(&format!("{what} weights"), &aw, &bw, dk);
                    assert!(a.iter().all(|x| x.is_finite()), "{what}: non-finite output");
                    if nk == 0 {
                        assert!(
                            a.iter().all(|&x| x == T::ZERO),
                            "{what}: no keys must give zeros"
                        );
                    }
                    cases += 1;
                }
            }
        }
    }
    assert!(cases > 1000);
}

#[test]
fn sdpa_scalar_equals_simd() {
    sdpa_shapes::<f32>();
    sdpa_shapes::<f64>();
}

/// Decode steps over a wrapped ring buffer (two runs of slots + pending keys),
/// GQA, with both backends.
fn cache_runs<T: Real>() {
    let mut r = Lcg(7);
    for &(h, kvh, d, cap) in &[
        (4usize, 2usize, 16usize, 24usize),
        (12, 12, 64, 40),
        (8, 1, 17, 9),
        (3, 3, 1, 5),
    ] {
        let mut cache = KvCacheVec::<T>::new(kvh, d, cap, CachePolicy::Ring).unwrap();
        for _ in 0..(cap + cap / 2 + 1) {
            let k = r.vec::<T>(kvh * d);
            cache.append_token(&k, &k).unwrap();
        }
        assert_eq!(cache.held().1, 2, "the ring should be wrapped");
        let n = 3;
        let q = r.vec::<T>(n * h * d);
        let kn = r.vec::<T>(n * kvh * d);
        let vn = r.vec::<T>(n * kvh * d);
        let run = |simd: bool| {
            let mut out = vec![T::NAN; n * h * d];
            let mut s = vec![T::ZERO; cache_scratch_len(n, cap)];
            let mut w = vec![T::NAN; h * n * (cap + n)];
            let args = (
                MatRef::new(&q, n, h * d).unwrap(),
                Some((
                    MatRef::new(&kn, n, kvh * d).unwrap(),
                    MatRef::new(&vn, n, kvh * d).unwrap(),
                )),
            );
            let o = MatMut::new(&mut out, n, h * d).unwrap();
            let start = cache.next_position();
            let opts = AttnOptions::new();
            if simd {
                attend_cache_with::<Simd, T, _>(
                    args.0,
                    start,
                    h,
                    &cache,
                    args.1,
                    o,
                    &mut s,
                    WeightsOut::PerHead(&mut w),
                    &opts,
                )
            } else {
                attend_cache_with::<Scalar, T, _>(
                    args.0,
                    start,
                    h,
                    &cache,
                    args.1,
                    o,
                    &mut s,
                    WeightsOut::PerHead(&mut w),
                    &opts,
                )
            }
            .unwrap();
            (out, w)
        };
        let (a, aw) = run(true);
        let (b, bw) = run(false);
        same(
            &format!("cache h={h} kvh={kvh} d={d} cap={cap}"),
            &a,
            &b,
            cap + d,
        );
        same("cache weights", &aw, &bw, d);
    }
}

#[test]
fn cache_attention_scalar_equals_simd() {
    cache_runs::<f32>();
    cache_runs::<f64>();
}

/// A decode step (one query) with the heads of a kv group stacked (scratch of
/// `group·NK`) equals the per-head computation (scratch of `NK`): outputs,
/// per-head and averaged weights, with hooks, per-head bias, masks and runs.
fn stacked_heads<B: Backend, T: Real>() {
    let mut r = Lcg(99);
    for &(h, kvh, dk, dv, nk) in &[
        (4usize, 1usize, 16usize, 16usize, 37usize),
        (6, 2, 5, 3, 9),
        (8, 4, 17, 1, 1),
        (3, 1, 1, 2, 0),
    ] {
        let group = h / kvh;
        let q = r.vec::<T>(h * dk);
        let k = r.vec::<T>(nk * kvh * dk);
        let v = r.vec::<T>(nk * kvh * dv);
        let split = nk / 3;
        let bias = r.vec::<T>(h * nk);
        let kmask: Vec<bool> = (0..nk).map(|j| j % 5 != 1).collect();
        let hook = |hh: usize, i: usize, j: usize| {
            T::from_f64(hh as f64 * 0.1 - (i as f64 - j as f64) * 0.03)
        };
        let ak = r.vec::<T>(3 * dk);
        let shaw = ShawRelative::new(1, Some(MatRef::new(&ak, 3, dk).unwrap()), None).unwrap();
        let km = MatRef::new(&k, nk, kvh * dk).unwrap();
        let vm = MatRef::new(&v, nk, kvh * dv).unwrap();
        // Two runs of keys: positions 0..split and split..nk.
        let runs = [
            HeadsKv::packed(
                km.row_range(0, split).unwrap(),
                vm.row_range(0, split).unwrap(),
                KeyPositions::Range(0),
            ),
            HeadsKv::packed(
                km.row_range(split, nk - split).unwrap(),
                vm.row_range(split, nk - split).unwrap(),
                KeyPositions::Range(split),
            ),
        ];
        let opts = AttnOptions::new()
            .causal()
            .query_start(nk.saturating_sub(1))
            .bias_per_head(MatRef::new(&bias, h, nk).unwrap())
            .key_allow(&kmask)
            .score_bias(&hook)
            .relative(&shaw);
        let run = |scratch_rows: usize, average: bool| {
            let mut out = vec![T::NAN; h * dv];
            let mut s = vec![T::NAN; scratch_rows * nk];
            let mut w = vec![T::NAN; if average { nk } else { h * nk }];
            let wo = if average {
                WeightsOut::Averaged(&mut w)
            } else {
                WeightsOut::PerHead(&mut w)
            };
            gqa_views_with::<B, T>(
                MatRef::new(&q, 1, h * dk).unwrap(),
                &runs,
                h,
                kvh,
                MatMut::new(&mut out, 1, h * dv).unwrap(),
                &mut s,
                wo,
                &opts,
            )
            .unwrap();
            (out, w)
        };
        for average in [false, true] {
            let (a, aw) = run(group, average);
            let (b, bw) = run(1, average);
            let what = format!(
                "stacked {} h={h} kvh={kvh} dk={dk} nk={nk} avg={average}",
                B::NAME
            );
            same(&what, &a, &b, nk + dk);
            same(&format!("{what} weights"), &aw, &bw, dk);
        }
    }
}

#[test]
fn stacked_decode_heads_equal_per_head() {
    stacked_heads::<Simd, f32>();
    stacked_heads::<Scalar, f32>();
    stacked_heads::<Simd, f64>();
    stacked_heads::<Scalar, f64>();
}
