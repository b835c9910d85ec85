//! Scalar ≡ Simd for the attention family on many shapes, including 0, 1 and the
//! lane width ± 1, with masks, bias, causal/window, hooks and cache runs.
//! Tolerance: 1e-5·√n relative in f32 (1e-13·√n in f64), n the reduction length,
//! relative to max(1, |value|) since outputs are averages of O(1) values.
//! No input here holds NaN or ±∞, so every output must be finite: outputs start
//! as NaN, and one left unwritten by both backends must not pass as "equal".

mod common;

use common::{Lcg, for_each_backend_and_real};
use constml::attention::*;
use constml::position::ShawRelative;
use constml::{Backend, MatMut, MatRef, Real, Scalar, Simd};

/// Uniform values in [−1, 1).
fn signed(r: &mut Lcg) -> f64 {
    r.unit() * 2.0 - 1.0
}

fn vec<T: Real>(r: &mut Lcg, n: usize) -> Vec<T> {
    (0..n).map(|_| T::from_f64(signed(r))).collect()
}

/// An index in `0..n`.
fn below(r: &mut Lcg, n: usize) -> usize {
    (r.unit() * n as f64) as usize % n.max(1)
}

#[track_caller]
fn same<T: Real>(what: &str, a: &[T], b: &[T], n: usize) {
    let eps = if T::BYTES == 4 { 1e-5 } else { 1e-13 };
    let tol = eps * (n.max(1) as f64).sqrt();
    assert_eq!(a.len(), b.len());
    for (i, (&x, &y)) in a.iter().zip(b).enumerate() {
        let (x, y) = (<T as Real>::as_f64(x), <T as Real>::as_f64(y));
        assert!(
            x.is_finite() && y.is_finite() && (x - y).abs() <= tol * y.abs().max(1.0),
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
                let dv = dvs[below(&mut r, dvs.len())];
                let data = (
                    vec::<T>(&mut r, nq * dk),
                    vec::<T>(&mut r, nk * dk),
                    vec::<T>(&mut r, nk * dv),
                );
                let mask: Vec<bool> = (0..nq * nk).map(|_| signed(&mut r) > -0.4).collect();
                let bias = vec::<T>(&mut r, nq * nk);
                let kmask: Vec<bool> = (0..nk).map(|_| signed(&mut r) > -0.6).collect();
                let hook = |h: usize, i: usize, j: usize| {
                    T::from_f64(((h + 3 * i) as f64 - j as f64) * 0.05)
                };
                let ak = vec::<T>(&mut r, 5 * dk);
                let av = vec::<T>(&mut r, 5 * dv);
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

/// New queries (with their keys and values pending) over a cache: outputs and
/// per-head weights.
fn run_cache<B: Backend, T: Real>(
    cache: &KvCacheDyn<T>,
    heads: usize,
    q: &[T],
    pending: (&[T], &[T]),
) -> (Vec<T>, Vec<T>) {
    let width = cache.kv_heads() * cache.head_dim();
    let n = pending.0.len() / width;
    let cols = q.len() / n;
    let mut out = vec![T::NAN; q.len()];
    let mut s = vec![T::ZERO; attend_cache_scratch_len(n, cache.capacity())];
    let mut w = vec![T::NAN; heads * n * (cache.len() + n)];
    attend_cache_views_with::<B, T, _>(
        MatRef::new(q, n, cols).unwrap(),
        cache.next_position(),
        heads,
        cache,
        Some((
            MatRef::new(pending.0, n, width).unwrap(),
            MatRef::new(pending.1, n, width).unwrap(),
        )),
        MatMut::new(&mut out, n, cols).unwrap(),
        &mut s,
        WeightsOut::PerHead(&mut w),
        &AttnOptions::new(),
    )
    .unwrap();
    (out, w)
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
        let mut cache = KvCacheDyn::<T>::new(kvh, d, cap, CachePolicy::Ring).unwrap();
        for _ in 0..(cap + cap / 2 + 1) {
            let k = vec::<T>(&mut r, kvh * d);
            cache.append_token(&k, &k).unwrap();
        }
        assert_eq!(cache.held().1, 2, "the ring should be wrapped");
        let n = 3;
        let q = vec::<T>(&mut r, n * h * d);
        let kn = vec::<T>(&mut r, n * kvh * d);
        let vn = vec::<T>(&mut r, n * kvh * d);
        let (a, aw) = run_cache::<Simd, T>(&cache, h, &q, (&kn, &vn));
        let (b, bw) = run_cache::<Scalar, T>(&cache, h, &q, (&kn, &vn));
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
        let q = vec::<T>(&mut r, h * dk);
        let k = vec::<T>(&mut r, nk * kvh * dk);
        let v = vec::<T>(&mut r, nk * kvh * dv);
        let split = nk / 3;
        let bias = vec::<T>(&mut r, h * nk);
        let kmask: Vec<bool> = (0..nk).map(|j| j % 5 != 1).collect();
        let hook = |hh: usize, i: usize, j: usize| {
            T::from_f64(hh as f64 * 0.1 - (i as f64 - j as f64) * 0.03)
        };
        let ak = vec::<T>(&mut r, 3 * dk);
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
    for_each_backend_and_real!(stacked_heads);
}
