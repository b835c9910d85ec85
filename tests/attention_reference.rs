//! Attention family against PyTorch reference vectors
//! (tests/reference/gen_attention.py → tests/reference/attention.bin), f32 and f64,
//! both backends.

mod common;

use common::{RefFile, assert_close, entry, for_each_backend_and_real, ref_tol, to_vec};
use constml::attention::*;
use constml::position::ShawRelative;
use constml::{Backend, Error, MatMut, MatRef, Matrix, Real, Simd};

static BIN: &[u8] = include_bytes!("reference/attention.bin");

fn file() -> RefFile<'static> {
    RefFile::parse(BIN).expect("attention.bin is a CMLREF01 file")
}

fn load<T: Real>(name: &str) -> Vec<T> {
    to_vec(&entry(&file(), name))
}

fn tag<T: Real>() -> &'static str {
    if T::BYTES == 4 { "f32" } else { "f64" }
}

/// The reference output `case/name_{f32|f64}` for `T`.
fn want<T: Real>(case: &str, name: &str) -> Vec<T> {
    load(&format!("{case}/{name}_{}", tag::<T>()))
}

fn vec1<T: Real, const C: usize>(name: &str) -> [T; C] {
    let v = load::<T>(name);
    assert_eq!(v.len(), C, "{name}");
    core::array::from_fn(|i| v[i])
}

fn arr2<T: Real, const R: usize, const C: usize>(name: &str) -> [[T; C]; R] {
    let v = load::<T>(name);
    assert_eq!(v.len(), R * C, "{name}");
    core::array::from_fn(|i| core::array::from_fn(|j| v[i * C + j]))
}

fn arr3<T: Real, const A: usize, const B: usize, const C: usize>(name: &str) -> [[[T; C]; B]; A] {
    let v = load::<T>(name);
    assert_eq!(v.len(), A * B * C, "{name}");
    core::array::from_fn(|a| {
        core::array::from_fn(|b| core::array::from_fn(|c| v[(a * B + b) * C + c]))
    })
}

/// A reference entry as a runtime-shaped `(r, c)` matrix.
fn mat<T: Real>(name: &str, r: usize, c: usize) -> Matrix<T> {
    Matrix::from_vec(r, c, load::<T>(name)).unwrap()
}

fn bools<const R: usize, const C: usize>(name: &str) -> [[bool; C]; R] {
    let v = load::<f64>(name);
    assert_eq!(v.len(), R * C, "{name}");
    core::array::from_fn(|i| core::array::from_fn(|j| v[i * C + j] != 0.0))
}

fn bools1<const C: usize>(name: &str) -> [bool; C] {
    let v = load::<f64>(name);
    assert_eq!(v.len(), C, "{name}");
    core::array::from_fn(|i| v[i] != 0.0)
}

#[track_caller]
fn check<T: Real>(what: &str, got: &[T], want: &[T]) {
    let (r, a) = ref_tol::<T>();
    assert_close(what, got, want, r, a);
}

// ------------------------------------------------------------------ plain SDPA

fn sdpa_case<
    B: Backend,
    T: Real,
    const NQ: usize,
    const NK: usize,
    const DK: usize,
    const DV: usize,
>(
    case: &str,
    opts: &AttnOptions<'_, T>,
) -> ([[T; DV]; NQ], [[T; NK]; NQ]) {
    let q = arr2::<T, NQ, DK>(&format!("{case}/q"));
    let k = arr2::<T, NK, DK>(&format!("{case}/k"));
    let v = arr2::<T, NK, DV>(&format!("{case}/v"));
    let mut out = [[T::NAN; DV]; NQ];
    let mut w = [[T::NAN; NK]; NQ];
    sdpa_with::<B, T, NQ, NK, DK, DV>(&q, &k, &v, &mut out, &mut w, opts).unwrap();
    let what = format!("{case} {} {}", B::NAME, tag::<T>());
    check(
        &format!("{what} out"),
        out.as_flattened(),
        &want::<T>(case, "out"),
    );
    check(
        &format!("{what} weights"),
        w.as_flattened(),
        &want::<T>(case, "w"),
    );
    (out, w)
}

fn sdpa_all<B: Backend, T: Real>() {
    sdpa_case::<B, T, 3, 5, 8, 6>("sdpa_plain", &AttnOptions::new());

    let allow = bools::<3, 5>("sdpa_allow/mask");
    let (out, w) = sdpa_case::<B, T, 3, 5, 8, 6>(
        "sdpa_allow",
        &AttnOptions::new().allow(MatRef::from_array(&allow)),
    );
    // The fully masked row is exactly zero, never NaN.
    assert!(out[1].iter().chain(&w[1]).all(|&x| x == T::ZERO));

    let block = bools::<4, 6>("sdpa_block/mask");
    let (out, w) = sdpa_case::<B, T, 4, 6, 5, 3>(
        "sdpa_block",
        &AttnOptions::new().block(MatRef::from_array(&block)),
    );
    assert!(out[2].iter().chain(&w[2]).all(|&x| x == T::ZERO));

    let bias = arr2::<T, 3, 5>("sdpa_bias/bias");
    sdpa_case::<B, T, 3, 5, 8, 6>(
        "sdpa_bias",
        &AttnOptions::new().bias(MatRef::from_array(&bias)),
    );

    // Bottom-right causal with NQ < NK (the reference got an explicit mask), scale override.
    sdpa_case::<B, T, 3, 7, 4, 5>(
        "sdpa_causal",
        &AttnOptions::new().causal().scale(T::from_f64(0.3)),
    );
    // The same with explicit positions: queries at 4, 5, 6.
    sdpa_case::<B, T, 3, 7, 4, 5>(
        "sdpa_causal",
        &AttnOptions::new()
            .causal()
            .query_start(4)
            .scale(T::from_f64(0.3)),
    );
    sdpa_case::<B, T, 4, 9, 4, 5>("sdpa_window", &AttnOptions::new().causal().window(3));
}

#[test]
fn sdpa_matches_pytorch() {
    for_each_backend_and_real!(sdpa_all);
}

/// Head dimension 64 over 37–41 keys: the cases that reach the 16-lane vector
/// paths (whole-vector head rows, key counts with tails, the one-row decode path).
fn sdpa64_all<B: Backend, T: Real>() {
    sdpa_case::<B, T, 7, 40, 64, 64>("sdpa64_plain", &AttnOptions::new());
    // The same through the runtime face.
    sdpa_runtime_case::<B, T>("sdpa64_plain", [7, 40, 64, 64], &AttnOptions::new());

    // Bottom-right causal, 6 queries at the end of 41 keys (the reference got an
    // explicit mask), default scale 1/8; then with explicit positions 35..41.
    sdpa_case::<B, T, 6, 41, 64, 64>("sdpa64_causal", &AttnOptions::new().causal());
    sdpa_case::<B, T, 6, 41, 64, 64>(
        "sdpa64_causal",
        &AttnOptions::new().causal().query_start(35),
    );

    // A decode step: one query over 40 keys; causal (the last position sees
    // every key) gives the same.
    sdpa_case::<B, T, 1, 40, 64, 64>("sdpa64_decode", &AttnOptions::new());
    sdpa_case::<B, T, 1, 40, 64, 64>("sdpa64_decode", &AttnOptions::new().causal());

    // DK 64, DV 48, additive float bias.
    let bias = arr2::<T, 3, 37>("sdpa64_dv/bias");
    sdpa_case::<B, T, 3, 37, 64, 48>(
        "sdpa64_dv",
        &AttnOptions::new().bias(MatRef::from_array(&bias)),
    );
}

#[test]
fn sdpa_head_dim_64_matches_pytorch() {
    for_each_backend_and_real!(sdpa64_all);
}

/// Attention over several runs of keys ignores empty runs, including
/// [`KvSegment::empty`] (whose views have no columns at all).
#[test]
fn empty_key_runs_are_ignored() {
    let q = arr2::<f64, 3, 8>("sdpa_plain/q");
    let k = arr2::<f64, 5, 8>("sdpa_plain/k");
    let v = arr2::<f64, 5, 6>("sdpa_plain/v");
    let (km, vm) = (MatRef::from_array(&k), MatRef::from_array(&v));
    let runs = [
        KvSegment::empty(),
        KvSegment::new(km.row_range(0, 2).unwrap(), vm.row_range(0, 2).unwrap(), 0),
        KvSegment::empty(),
        KvSegment::new(km.row_range(2, 3).unwrap(), vm.row_range(2, 3).unwrap(), 2),
    ];
    let mut out = [[f64::NAN; 6]; 3];
    let mut w = [f64::NAN; 15];
    attend_views_with::<constml::Scalar, f64>(
        MatRef::from_array(&q),
        &runs,
        MatMut::from_array(&mut out),
        &mut w,
        0,
        &AttnOptions::new(),
    )
    .unwrap();
    check(
        "runs with empties",
        out.as_flattened(),
        &want::<f64>("sdpa_plain", "out"),
    );
    check(
        "runs with empties: weights",
        &w,
        &want::<f64>("sdpa_plain", "w"),
    );
    // Only empty runs: zeros, as with no keys at all.
    attend_views_with::<constml::Simd, f64>(
        MatRef::from_array(&q),
        &[KvSegment::empty()],
        MatMut::from_array(&mut out),
        &mut w,
        0,
        &AttnOptions::new(),
    )
    .unwrap();
    assert!(out.as_flattened().iter().all(|&x| x == 0.0));
}

/// Reference case `case` with q `(nq, dk)`, k `(nk, dk)`, v `(nk, dv)` through
/// the runtime faces: `sdpa_dyn_with` (output and weights) and `sdpa_views_with`
/// with a caller-owned weights buffer. Returns the inputs as matrices.
fn sdpa_runtime_case<B: Backend, T: Real>(
    case: &str,
    [nq, nk, dk, dv]: [usize; 4],
    opts: &AttnOptions<'_, T>,
) -> [Matrix<T>; 3] {
    let (q, k, v) = (
        mat::<T>(&format!("{case}/q"), nq, dk),
        mat::<T>(&format!("{case}/k"), nk, dk),
        mat::<T>(&format!("{case}/v"), nk, dv),
    );
    let what = format!("{case} {} {}", B::NAME, tag::<T>());
    let (out, w) = sdpa_dyn_with::<B, T>(&q, &k, &v, opts).unwrap();
    check(
        &format!("{what} sdpa_dyn out"),
        out.as_slice(),
        &want::<T>(case, "out"),
    );
    check(
        &format!("{what} sdpa_dyn weights"),
        w.as_slice(),
        &want::<T>(case, "w"),
    );

    // Views face with a caller-owned weights buffer.
    let mut out = vec![T::NAN; nq * dv];
    let mut w = vec![T::NAN; sdpa_scratch_len(nq, nk)];
    sdpa_views_with::<B, T>(
        q.view(),
        k.view(),
        v.view(),
        MatMut::new(&mut out, nq, dv).unwrap(),
        &mut w,
        opts,
    )
    .unwrap();
    check(
        &format!("{what} sdpa_views out"),
        &out,
        &want::<T>(case, "out"),
    );
    [q, k, v]
}

fn sdpa_runtime_faces<T: Real>() {
    let bias = mat::<T>("sdpa_bias/bias", 3, 5);
    let o = AttnOptions::new().bias(bias.view());
    let [q, k, v] = sdpa_runtime_case::<Simd, T>("sdpa_bias", [3, 5, 8, 6], &o);
    let mut out = vec![T::ZERO; 3 * 6];

    // Mismatched runtime shapes are errors, not panics.
    assert!(sdpa_dyn(&q, &v, &v, &AttnOptions::new()).is_err());
    assert!(sdpa_dyn(&q, &k, &q, &AttnOptions::new()).is_err());
    let wrong = mat::<T>("sdpa_plain/q", 3, 8);
    assert!(sdpa_dyn(&q, &k, &v, &AttnOptions::new().bias(wrong.view())).is_err());
    let mut small = vec![T::ZERO; 14];
    assert!(matches!(
        sdpa_views(
            q.view(),
            k.view(),
            v.view(),
            MatMut::new(&mut out, 3, 6).unwrap(),
            &mut small,
            &o
        ),
        Err(Error::BufferTooSmall { .. })
    ));
    assert!(sdpa_dyn(&q, &k, &v, &AttnOptions::new().window(0)).is_err());
}

#[test]
fn sdpa_runtime_faces_match_pytorch() {
    sdpa_runtime_faces::<f32>();
    sdpa_runtime_faces::<f64>();
}

// ------------------------------------------------------------------ GQA / MQA

/// Grouped-query attention (const face) on the reference case `case`:
/// q `(NQ, H, DK)`, k `(NK, KVH, DK)`, v `(NK, KVH, DV)` against `case/out`.
fn gqa_case<
    B: Backend,
    T: Real,
    const NQ: usize,
    const NK: usize,
    const H: usize,
    const KVH: usize,
    const DK: usize,
    const DV: usize,
>(
    case: &str,
    opts: &AttnOptions<'_, T>,
) {
    let q = arr3::<T, NQ, H, DK>(&format!("{case}/q"));
    let k = arr3::<T, NK, KVH, DK>(&format!("{case}/k"));
    let v = arr3::<T, NK, KVH, DV>(&format!("{case}/v"));
    let mut out = [[[T::NAN; DV]; H]; NQ];
    let mut s = [[T::ZERO; NK]; NQ];
    gqa_with::<B, T, NQ, NK, H, KVH, DK, DV>(&q, &k, &v, &mut out, &mut s, WeightsOut::None, opts)
        .unwrap();
    check(
        &format!("{case} {} {}", B::NAME, tag::<T>()),
        out.as_flattened().as_flattened(),
        &want::<T>(case, "out"),
    );
}

fn gqa_all<B: Backend, T: Real>() {
    gqa_case::<B, T, 3, 5, 6, 2, 4, 3>("gqa", &AttnOptions::new());
    gqa_case::<B, T, 4, 6, 4, 1, 4, 4>("mqa", &AttnOptions::new().causal());

    // Runtime face.
    let [q, k, v] = gqa_runtime_case::<B, T>("gqa", [3, 5, 6, 2, 4, 3], &AttnOptions::new());
    assert!(gqa_dyn(&q, &k, &v, 6, 4, &AttnOptions::new()).is_err());
}

/// Reference case `case` through the runtime face `gqa_dyn_with`: q
/// `(nq, h·dk)`, k `(nk, kvh·dk)`, v `(nk, kvh·dv)` (the `(N, heads, D)` entries
/// read row-major). Returns the inputs as matrices.
fn gqa_runtime_case<B: Backend, T: Real>(
    case: &str,
    [nq, nk, h, kvh, dk, dv]: [usize; 6],
    opts: &AttnOptions<'_, T>,
) -> [Matrix<T>; 3] {
    let (q, k, v) = (
        mat::<T>(&format!("{case}/q"), nq, h * dk),
        mat::<T>(&format!("{case}/k"), nk, kvh * dk),
        mat::<T>(&format!("{case}/v"), nk, kvh * dv),
    );
    let out = gqa_dyn_with::<B, T>(&q, &k, &v, h, kvh, opts).unwrap();
    check(
        &format!("{case} gqa_dyn {} {}", B::NAME, tag::<T>()),
        out.as_slice(),
        &want::<T>(case, "out"),
    );
    [q, k, v]
}

#[test]
fn gqa_and_mqa_match_pytorch_enable_gqa() {
    for_each_backend_and_real!(gqa_all);
}

/// 8 query heads over 2 KV heads of width 64, bottom-right causal with 5
/// queries at the end of 40 keys.
fn gqa64_all<B: Backend, T: Real>() {
    let causal = AttnOptions::new().causal();
    gqa_case::<B, T, 5, 40, 8, 2, 64, 64>("gqa64", &causal);
    gqa_runtime_case::<B, T>("gqa64", [5, 40, 8, 2, 64, 64], &causal);
}

#[test]
fn gqa_head_dim_64_matches_pytorch_enable_gqa() {
    for_each_backend_and_real!(gqa64_all);
}

// ------------------------------------------------------------------ general MHA

/// The from-scratch MultiHeadAttention reference case `case` (entries of
/// `mha_case` in gen_attention.py): `H` heads, inputs of widths `DQK_IN`
/// (query, key) and `DV_IN` (value), head widths `DK`, `DV`, output width `DO`,
/// `NQ` queries over `NK` keys, block mask (`masked_fill` polarity).
fn mha_case<
    B: Backend,
    T: Real,
    const H: usize,
    const DQK_IN: usize,
    const DV_IN: usize,
    const DK: usize,
    const DV: usize,
    const DO: usize,
    const NQ: usize,
    const NK: usize,
>(
    case: &str,
) {
    let e = |n: &str| format!("{case}/{n}");
    let w_q = arr3::<T, H, DK, DQK_IN>(&e("fc_q_w"));
    let b_q = arr2::<T, H, DK>(&e("fc_q_b"));
    let w_k = arr3::<T, H, DK, DQK_IN>(&e("fc_k_w"));
    let b_k = arr2::<T, H, DK>(&e("fc_k_b"));
    let w_v = arr3::<T, H, DV, DV_IN>(&e("fc_v_w"));
    let b_v = arr2::<T, H, DV>(&e("fc_v_b"));
    let w_o = arr3::<T, DO, H, DV>(&e("fc_o_w"));
    let b_o = vec1::<T, DO>(&e("fc_o_b"));
    let layer = MultiHeadAttention::<T, H, DQK_IN, DV_IN, DK, DV, DO, B>::new(MhaWeights {
        w_q: &w_q,
        b_q: Some(&b_q),
        w_k: &w_k,
        b_k: Some(&b_k),
        w_v: &w_v,
        b_v: Some(&b_v),
        w_o: &w_o,
        b_o: Some(&b_o),
    });
    let query = arr2::<T, NQ, DQK_IN>(&e("query"));
    let key = arr2::<T, NK, DQK_IN>(&e("key"));
    let value = arr2::<T, NK, DV_IN>(&e("value"));
    let mask = bools::<NQ, NK>(&e("mask"));
    let mut out = [[T::NAN; DO]; NQ];
    let mut scratch = MhaScratch::new();
    let mut w = vec![T::NAN; H * NQ * NK];
    layer
        .forward(
            &query,
            &key,
            &value,
            &mut out,
            &mut scratch,
            WeightsOut::PerHead(&mut w),
            &AttnOptions::new().block(MatRef::from_array(&mask)),
        )
        .unwrap();
    let what = format!("{case} {} {}", B::NAME, tag::<T>());
    check(
        &format!("{what} out"),
        out.as_flattened(),
        &want::<T>(case, "out"),
    );
    check(
        &format!("{what} per-head weights"),
        &w,
        &want::<T>(case, "w"),
    );
}

fn mha_general<B: Backend, T: Real>() {
    // H = 2, DQK_IN = 5, DV_IN = 4, DK = 3, DV = 2, DO = 3; NQ = 2, NK = 4.
    mha_case::<B, T, 2, 5, 4, 3, 2, 3, 2, 4>("mha");
}

fn mha64<B: Backend, T: Real>() {
    // H = 2, DQK_IN = 24, DV_IN = 20, DK = DV = 64, DO = 12; NQ = NK = 40.
    mha_case::<B, T, 2, 24, 20, 64, 64, 12, 40, 40>("mha64");
}

#[test]
fn general_mha_matches_pytorch() {
    for_each_backend_and_real!(mha_general);
}

#[test]
fn general_mha_head_dim_64_matches_pytorch() {
    for_each_backend_and_real!(mha64);
}

// ------------------------------------------------------------------ nn.MultiheadAttention

fn nn_mha<B: Backend, T: Real>() {
    let in_w = arr3::<T, 3, 8, 8>("nnmha/in_proj_weight");
    let in_b = arr2::<T, 3, 8>("nnmha/in_proj_bias");
    let out_w = arr2::<T, 8, 8>("nnmha/out_proj_weight");
    let out_b = vec1::<T, 8>("nnmha/out_proj_bias");
    let layer = PackedMultiheadAttention::<T, 8, 2, 4, B>::new(PackedMhaWeights {
        in_proj_weight: &in_w,
        in_proj_bias: Some(&in_b),
        out_proj_weight: &out_w,
        out_proj_bias: Some(&out_b),
    });
    let query = arr2::<T, 3, 8>("nnmha/query");
    let key = arr2::<T, 5, 8>("nnmha/key");
    let value = arr2::<T, 5, 8>("nnmha/value");
    let kpm = bools1::<5>("nnmha/key_padding_mask");
    let am = bools::<3, 5>("nnmha/attn_mask");
    let mut scratch = MhaScratch::new();
    let mut out = [[T::NAN; 8]; 3];
    let mut run = |weights: WeightsOut<'_, T>, opts: &AttnOptions<'_, T>| {
        layer
            .forward(
                &query,
                &key,
                &value,
                Some(&kpm),
                &mut out,
                &mut scratch,
                weights,
                opts,
            )
            .unwrap();
        out
    };

    let mut wavg = vec![T::NAN; 3 * 5];
    let o = run(WeightsOut::Averaged(&mut wavg), &AttnOptions::new());
    check(
        &format!("nn.MHA {}", B::NAME),
        o.as_flattened(),
        &want::<T>("nnmha", "out"),
    );
    check(
        "nn.MHA averaged weights",
        &wavg,
        &want::<T>("nnmha", "wavg"),
    );

    let mut whead = vec![T::NAN; 2 * 3 * 5];
    run(WeightsOut::PerHead(&mut whead), &AttnOptions::new());
    check(
        "nn.MHA per-head weights",
        &whead,
        &want::<T>("nnmha", "whead"),
    );

    // Boolean attn_mask: nn.MultiheadAttention's polarity is "true = not allowed".
    let o = run(
        WeightsOut::None,
        &AttnOptions::new().block(MatRef::from_array(&am)),
    );
    check(
        "nn.MHA attn_mask",
        o.as_flattened(),
        &want::<T>("nnmha", "out_am"),
    );

    // std face from the packed weights.
    let (in_w, out_w) = (
        mat::<T>("nnmha/in_proj_weight", 24, 8),
        mat::<T>("nnmha/out_proj_weight", 8, 8),
    );
    let dynl = MultiHeadAttentionDyn::<T, B>::from_packed(
        2,
        in_w.clone(),
        Some(load("nnmha/in_proj_bias")),
        out_w.clone(),
        Some(load("nnmha/out_proj_bias")),
    )
    .unwrap();
    let (query, key, value) = (
        mat::<T>("nnmha/query", 3, 8),
        mat::<T>("nnmha/key", 5, 8),
        mat::<T>("nnmha/value", 5, 8),
    );
    let padded = AttnOptions::new().key_block(&kpm);
    let (o, w) = dynl
        .forward_with_weights(&query, &key, &value, WeightsKind::Both, &padded)
        .unwrap();
    check("nn.MHA dyn", o.as_slice(), &want::<T>("nnmha", "out"));
    let avg = w.averaged.unwrap();
    assert_eq!(avg.shape(), (3, 5));
    check(
        "nn.MHA dyn weights",
        avg.as_slice(),
        &want::<T>("nnmha", "wavg"),
    );
    let per_head: Vec<T> = w
        .per_head
        .unwrap()
        .iter()
        .flat_map(|m| m.as_slice().to_vec())
        .collect();
    check(
        "nn.MHA dyn per-head weights",
        &per_head,
        &want::<T>("nnmha", "whead"),
    );
    let (_, w) = dynl
        .forward_with_weights(&query, &key, &value, WeightsKind::Averaged, &padded)
        .unwrap();
    assert!(w.per_head.is_none());
    // Both kinds average with the same operations in the same order.
    assert_eq!(w.averaged.unwrap(), avg);
    assert!(MultiHeadAttentionDyn::<T, B>::from_packed(3, in_w, None, out_w, None).is_err());
}

#[test]
fn nn_multihead_attention_matches_pytorch() {
    for_each_backend_and_real!(nn_mha);
}

// ------------------------------------------------------------------ MPT

fn mpt<B: Backend, T: Real>() {
    let w_qkv = arr2::<T, 12, 8>("mpt/w_qkv");
    let b_qkv = vec1::<T, 12>("mpt/b_qkv");
    let w_out = arr2::<T, 8, 8>("mpt/w_out");
    let b_out = vec1::<T, 8>("mpt/b_out");
    let (qw, qb) = (vec1::<T, 8>("mpt/qln_w"), vec1::<T, 8>("mpt/qln_b"));
    let (kw, kb) = (vec1::<T, 2>("mpt/kln_w"), vec1::<T, 2>("mpt/kln_b"));
    let x = arr2::<T, 5, 8>("mpt/x");
    let slopes = load::<T>("mpt/slopes");
    let pad = bools1::<5>("mpt/key_padding");
    let layer = MptAttention::<T, 8, 4, 2, 12, B>::new(
        MptWeights {
            w_qkv: &w_qkv,
            b_qkv: Some(&b_qkv),
            w_out: &w_out,
            b_out: Some(&b_out),
            qk_ln: Some(MptQkNorm {
                q_weight: &qw,
                q_bias: &qb,
                k_weight: &kw,
                k_bias: &kb,
            }),
        },
        MptConfig {
            clip_qkv: Some(T::from_f64(0.8)),
            softmax_scale: Some(T::from_f64(0.4)),
        },
    );
    // ALiBi through the score hook: −slope_h · (query position − key position).
    // MPT's tensor is slope_h · (j − (S − 1)); under causal masking the two differ
    // by a per-row constant, which softmax removes.
    let alibi = |h: usize, i: usize, j: usize| -slopes[h] * (T::from_usize(i) - T::from_usize(j));
    let base = AttnOptions::new().causal().score_bias(&alibi);

    let mut scratch = DecoderScratch::<T, 5, 4, 1, 2, 5>::new();
    let mut out = [[T::NAN; 8]; 5];
    layer
        .forward(
            &x,
            &mut scratch,
            &mut out,
            WeightsOut::None,
            &base.key_allow(&pad),
        )
        .unwrap();
    check(
        &format!("MPT {}", B::NAME),
        out.as_flattened(),
        &want::<T>("mpt", "out"),
    );

    layer
        .forward(&x, &mut scratch, &mut out, WeightsOut::None, &base)
        .unwrap();
    check(
        "MPT no padding",
        out.as_flattened(),
        &want::<T>("mpt", "out_nopad"),
    );

    // With a KV cache: prefill 3 tokens, then decode 2 one at a time.
    let nopad = want::<T>("mpt", "out_nopad");
    for policy in [CachePolicy::Bounded, CachePolicy::Ring] {
        let mut cache = KvCache::<T, 1, 2, 8>::with_policy(policy);
        let mut s3 = DecoderScratch::<T, 3, 4, 1, 2, 11>::new();
        let mut o3 = [[T::NAN; 8]; 3];
        let x3: [[T; 8]; 3] = core::array::from_fn(|i| x[i]);
        layer
            .forward_cached(&x3, &mut cache, &mut s3, &mut o3, WeightsOut::None, &base)
            .unwrap();
        check("MPT cached prefill", o3.as_flattened(), &nopad[..24]);
        for t in 3..5 {
            let mut s1 = DecoderScratch::<T, 1, 4, 1, 2, 9>::new();
            let mut o1 = [[T::NAN; 8]; 1];
            layer
                .forward_cached(
                    &[x[t]],
                    &mut cache,
                    &mut s1,
                    &mut o1,
                    WeightsOut::None,
                    &base,
                )
                .unwrap();
            check("MPT cached decode", &o1[0], &nopad[t * 8..t * 8 + 8]);
        }
        assert_eq!(cache.next_position(), 5);
    }

    // std face.
    let mpt_dyn = MptAttentionDyn::<T, B> {
        heads: 4,
        w_qkv: mat("mpt/w_qkv", 12, 8),
        b_qkv: Some(load("mpt/b_qkv")),
        w_out: mat("mpt/w_out", 8, 8),
        b_out: Some(load("mpt/b_out")),
        qk_ln: Some(MptQkNormDyn {
            q_weight: qw.to_vec(),
            q_bias: qb.to_vec(),
            k_weight: kw.to_vec(),
            k_bias: kb.to_vec(),
        }),
        config: MptConfig {
            clip_qkv: Some(T::from_f64(0.8)),
            softmax_scale: Some(T::from_f64(0.4)),
        },
        backend: core::marker::PhantomData,
    };
    let xm = mat::<T>("mpt/x", 5, 8);
    let o = mpt_dyn.forward(&xm, None, &base.key_allow(&pad)).unwrap();
    check("MPT dyn", o.as_slice(), &want::<T>("mpt", "out"));
    let mut cache = KvCacheDyn::new(1, 2, 4, CachePolicy::Ring).unwrap();
    let o = mpt_dyn.forward(&xm, Some(&mut cache), &base).unwrap();
    // A ring of 4 sees a window of 4: the last token misses key 0, so only the
    // first four rows equal the full computation.
    check("MPT dyn cached", &o.as_slice()[..32], &nopad[..32]);
}

/// The MPT layer against `mpt_reference` in gen_attention.py. That reference is
/// our own transcription of MPT's multi-query attention forward (torch attention
/// path) into plain PyTorch, written for these tests; it is not MosaicML
/// llm-foundry's code, which the generator neither imports nor runs.
#[test]
fn mpt_layer_matches_pytorch_mpt_computation() {
    for_each_backend_and_real!(mpt);
}

/// The reference MPT weights without biases or q/k LayerNorm.
fn plain_mpt<'a>(
    w_qkv: &'a [[f32; 8]; 12],
    w_out: &'a [[f32; 8]; 8],
    config: MptConfig<f32>,
) -> MptAttention<'a, f32, 8, 4, 2, 12> {
    MptAttention::new(
        MptWeights {
            w_qkv,
            b_qkv: None,
            w_out,
            b_out: None,
            qk_ln: None,
        },
        config,
    )
}

/// Documented deviation: MPT gives a fully masked row a uniform average (it
/// fills with the dtype's minimum); constml gives zeros.
#[test]
fn mpt_fully_masked_row_is_zero() {
    let w_qkv = arr2::<f32, 12, 8>("mpt/w_qkv");
    let w_out = arr2::<f32, 8, 8>("mpt/w_out");
    let x = arr2::<f32, 5, 8>("mpt/x");
    let layer = plain_mpt(&w_qkv, &w_out, MptConfig::default());
    // Causal + key 0 padded: query 0 sees nothing.
    let pad = [false, true, true, true, true];
    let mut scratch = DecoderScratch::<f32, 5, 4, 1, 2, 5>::new();
    let mut out = [[f32::NAN; 8]; 5];
    layer
        .forward(
            &x,
            &mut scratch,
            &mut out,
            WeightsOut::None,
            &AttnOptions::new().causal().key_allow(&pad),
        )
        .unwrap();
    assert_eq!(out[0], [0.0; 8]);
    assert!(out[1].iter().all(|v| v.is_finite() && *v != 0.0));
}

/// `clip_qkv` clamps to `[−c, c]`: a negative or NaN `c` is an error (it used
/// to run and clamp every element to `±c` in a meaningless order).
#[test]
fn mpt_rejects_a_negative_or_nan_clip() {
    let w_qkv = arr2::<f32, 12, 8>("mpt/w_qkv");
    let w_out = arr2::<f32, 8, 8>("mpt/w_out");
    let x = arr2::<f32, 5, 8>("mpt/x");
    for clip in [-0.5f32, f32::NAN] {
        let config = MptConfig {
            clip_qkv: Some(clip),
            softmax_scale: None,
        };
        let layer = plain_mpt(&w_qkv, &w_out, config);
        let mut scratch = DecoderScratch::<f32, 5, 4, 1, 2, 5>::new();
        let mut out = [[0.0f32; 8]; 5];
        let r = layer.forward(
            &x,
            &mut scratch,
            &mut out,
            WeightsOut::None,
            &AttnOptions::new(),
        );
        assert!(
            matches!(r, Err(Error::InvalidParameter { .. })),
            "clip {clip}: {r:?}"
        );
    }
}

// ------------------------------------------------------------------ score hooks

fn hooks<B: Backend, T: Real>() {
    // Additive bias hook f(head, qpos, kpos) vs an explicit (H, NQ, NK) bias tensor.
    let f = |h: usize, i: usize, j: usize| {
        T::from_f64((0.3 * h as f64 + 0.7 * i as f64 - 0.2 * j as f64).sin())
    };
    gqa_case::<B, T, 3, 5, 2, 2, 4, 4>(
        "hook_bias",
        &AttnOptions::new().query_start(2).score_bias(&f),
    );

    // The same bias as a per-head matrix.
    let bias: Vec<T> = (0..2)
        .flat_map(|h| (0..3).flat_map(move |i| (0..5).map(move |j| f(h, 2 + i, j))))
        .collect();
    let bm = MatRef::new(&bias, 6, 5).unwrap();
    gqa_case::<B, T, 3, 5, 2, 2, 4, 4>("hook_bias", &AttnOptions::new().bias_per_head(bm));

    // Shaw relative key/value terms vs the explicit einsum computation.
    let q = arr2::<T, 3, 4>("shaw/q");
    let k = arr2::<T, 6, 4>("shaw/k");
    let v = arr2::<T, 6, 3>("shaw/v");
    let ak = arr2::<T, 5, 4>("shaw/ak");
    let av = arr2::<T, 5, 3>("shaw/av");
    let shaw = ShawRelative::from_arrays(Some(&ak), Some(&av));
    let mut out = [[T::NAN; 3]; 3];
    let mut w = [[T::NAN; 6]; 3];
    sdpa_with::<B, T, 3, 6, 4, 3>(
        &q,
        &k,
        &v,
        &mut out,
        &mut w,
        &AttnOptions::new().causal().relative(&shaw),
    )
    .unwrap();
    check(
        &format!("Shaw {}", B::NAME),
        out.as_flattened(),
        &want::<T>("shaw", "out"),
    );
    check("Shaw weights", w.as_flattened(), &want::<T>("shaw", "w"));
}

#[test]
fn score_hooks_match_explicit_bias() {
    for_each_backend_and_real!(hooks);
}

#[test]
fn hooks_reject_negative_query_positions_and_bad_terms() {
    let q = [[0.5f32; 2]; 3];
    let k = [[0.5f32; 2]; 2];
    let mut out = [[0.0f32; 2]; 3];
    let mut w = [[0.0f32; 2]; 3];
    let f = |_: usize, _: usize, _: usize| 0.0f32;
    // Bottom-right with NQ > NK puts query 0 before every key: no position for the hook.
    assert!(
        sdpa(
            &q,
            &k,
            &k,
            &mut out,
            &mut w,
            &AttnOptions::new().score_bias(&f)
        )
        .is_err()
    );
    // Without hooks, the causal rows before every key are fully masked: zeros.
    sdpa(&q, &k, &k, &mut out, &mut w, &AttnOptions::new().causal()).unwrap();
    assert_eq!(out[0], [0.0, 0.0]);
    assert_eq!(out[2], [0.5, 0.5]);
    // A relative table of the wrong width is an error.
    let ak = [[0.0f32; 3]; 3];
    let shaw = ShawRelative::from_arrays(Some(&ak), None::<&[[f32; 2]; 3]>);
    assert!(matches!(
        sdpa(
            &q,
            &k,
            &k,
            &mut out,
            &mut w,
            &AttnOptions::new().query_start(0).relative(&shaw)
        ),
        Err(Error::LengthMismatch { .. })
    ));
    assert!(ShawRelative::new(1, Some(MatRef::from_array(&ak)), None).is_ok());
    assert!(ShawRelative::new(2, Some(MatRef::from_array(&ak)), None).is_err());
}

#[test]
fn nan_propagates_without_panic() {
    let mut q = [[0.5f32; 4]; 2];
    q[1][2] = f32::NAN;
    let k = [[0.25f32; 4]; 3];
    let v = [[1.0f32; 4]; 3];
    let mut out = [[0.0f32; 4]; 2];
    let mut w = [[0.0f32; 3]; 2];
    sdpa(&q, &k, &v, &mut out, &mut w, &AttnOptions::new()).unwrap();
    assert!(out[0].iter().all(|x| (x - 1.0).abs() < 1e-6));
    assert!(out[1].iter().all(|x| x.is_nan()));
}

/// The `meta` entry names the generator; the library versions it records are
/// printed, never checked (a regenerated file may come from other versions).
#[test]
fn meta_names_the_generator() {
    let meta = entry(&file(), "meta").text();
    println!("attention.bin meta: {meta}");
    assert!(meta.contains("gen_attention.py"), "{meta}");
}

// ------------------------------------------------------------------ bad input

/// Absurd sizes in the runtime faces are an `Err`: the scratch size saturates
/// to `usize::MAX`, which used to reach `vec![0; usize::MAX]` (a panic).
#[test]
fn runtime_face_oversized_scratch_is_an_error() {
    let q = Matrix::<f32>::zeros(1, 0).unwrap();
    let k = Matrix::<f32>::zeros(2, 0).unwrap();
    let r = gqa_dyn(&q, &k, &k, usize::MAX, 1, &AttnOptions::new());
    assert!(matches!(r, Err(Error::InvalidParameter { .. })), "{r:?}");

    // Per-head weights of 2^62 (empty) heads.
    let heads = 1usize << 62;
    let z = |r, c| Matrix::<f32>::zeros(r, c).unwrap();
    let mha = MultiHeadAttentionDyn::<f32>::new(MhaWeightsDyn {
        heads,
        kv_heads: heads,
        w_q: z(0, 4),
        b_q: None,
        w_k: z(0, 4),
        b_k: None,
        w_v: z(0, 4),
        b_v: None,
        w_o: z(4, 0),
        b_o: None,
    });
    let x = z(1, 4);
    let r = mha.forward_with_weights(&x, &x, &x, WeightsKind::PerHead, &AttnOptions::new());
    assert!(matches!(r, Err(Error::InvalidParameter { .. })), "{r:?}");
}
