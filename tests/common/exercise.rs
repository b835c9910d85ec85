//! Every public no_std entry point of
//! constml (kernels, attention, decoding) for `f32`, on both backends where the
//! API takes one (the `*_with::<B>` forms; the plain forms are their `Simd`
//! wrappers).
//!
//! Shared, file for file, by the on-target suite `firmware/src/bin/tests.rs`
//! (included with `#[path]`, so the generic code is instantiated and must link
//! and run on the M4F and RISC-V machines under QEMU) and
//! by the host test `tests/no_alloc_kernels.rs`, which runs it under a counting
//! allocator: the test proves that exactly what the firmware links allocates
//! nothing. Hence pure `core`: no allocation, no `std`, no `unwrap` (every
//! fallible call returns its error through `?`, and the test requires `Ok`).
//!
//! Shapes are tiny (Cortex-M stack): weights are `static` tables built at
//! compile time (flash on the MCU), inputs are derived from a `seed` the caller
//! passes through `black_box`, so nothing is folded away. The kernel shapes
//! (13, 20) are not multiples of the SIMD lane width, so the tail paths run too.

use constml::attention::{
    AttnOptions, CausalSelfAttention, DecoderScratch, DecoderWeights, KvCache, KvStore, MhaScratch,
    MhaWeights, MptAttention, MptConfig, MptQkNorm, MptWeights, MultiHeadAttention, NoRotation,
    PackedMhaWeights, PackedMultiheadAttention, SelfAttention, WeightsOut, attend_cache_with,
    gqa_with, reorder_beams, sdpa_views_with, sdpa_with,
};
use constml::decode::{
    BeamConfig, BeamModel, BeamScratch, EarlyStopping, Hypotheses, Sampler, SamplerScratch,
    SelectScratch, beam_search_with, greedy_with, min_p, min_p_probs, repro_exp, sample_probs,
    temperature, top_k, top_p, top_p_probs, uniform,
};
use constml::ml::{
    KMeans, KMeansInit, KMeansScratch, LinearRegression, SgdConfig, SgdRule, kmeans_online_update,
    least_squares_views,
};
use constml::models::{
    Gpt2Sized, Gpt2State, Gpt2Weights, Llama, LlamaConfig, LlamaState, LlamaWeights, LogitRows,
};
use constml::nn::{
    Activation, Adam, Cell, Conv2dShape, CrossEntropy, Lstm, Param, Pool2dShape, RecurrentParams,
    RnnShape, Sgd, activation_backward_with, activation_forward_with, avg_pool2d_views,
    bce_with_logits, clip_grad_norm, conv2d_backward_views_with, conv2d_im2col_views_with,
    conv2d_views_with, cross_entropy, dropout_backward, dropout_forward, embedding,
    embedding_backward, linear_backward_with, max_pool2d_backward_views, max_pool2d_views,
    mse_loss, recurrent_backward_scratch_len, recurrent_forward_views_with,
    recurrent_step_scratch_len, recurrent_step_views_with, softmax_backward_views_with,
};
use constml::norm::{
    BatchNorm, BatchNormState, LayerNorm, NormStats, RmsNorm, layer_norm_backward_views_with,
    rms_norm_backward_views_with,
};
use constml::position::{
    Alibi, AlibiForm, BeyondTable, LearnedPositions, Rope, RopeConfig, RopeLayout, RopeScaling,
    RopeTable, ShawRelative, Sinusoidal, SinusoidalLayout, T5Buckets, T5RelativeBias, alibi_slopes,
};
use constml::{Accumulate, Backend, Error, MatMut, MatRef, Result, Scalar, Simd, kernels};
use rand_core::SeedableRng;
use rand_xoshiro::Xoshiro128PlusPlus;

// Kernels: a `(M, K)` matrix, a `(K, M)` one, vectors of `K`.
const M: usize = 13;
const K: usize = 20;
// Attention: model width, query heads, kv heads, head width; queries and keys
// of the cache-free calls; capacities of the bounded and ring caches.
const DM: usize = 16;
const H: usize = 2;
const KVH: usize = 1;
const D: usize = 8;
const NQ: usize = 3;
const NK: usize = 5;
const CAP: usize = 16;
const RING: usize = 6;
// MPT's fused q/k/v projection width.
const QKV: usize = DM + 2 * D;
// Decoding: vocabulary, beams, new tokens.
const V: usize = 32;
const BEAMS: usize = 2;
const MAX_NEW: usize = 6;

/// Runs everything on both backends; the sum of a checksum of every result.
pub fn run_all(seed: f32) -> Result<f32> {
    Ok(run::<Simd>(seed)? + run::<Scalar>(seed)?)
}

/// The sections are `#[inline(never)]`: each has its own stack frame, so the
/// peak stack use is the largest section's, not their sum.
fn run<B: Backend>(seed: f32) -> Result<f32> {
    Ok(kernel_calls::<B>(seed)?
        + sdpa_calls::<B>(seed)?
        + mha_calls::<B>(seed)?
        + kv_cache_calls::<B>(seed)?
        + ring_calls::<B>(seed)?
        + mpt_calls::<B>(seed)?
        + position_calls::<B>(seed)?
        + norm_ml_calls::<B>(seed)?
        + nn_calls::<B>(seed)?
        + recurrent_calls::<B>(seed)?
        + llama_calls::<B>(seed)?
        + decode_calls::<B>(seed)?)
}

// ---------------------------------------------------------------- data

/// A deterministic `(R, C)` table in about `[-0.3, 0.3]`, at compile time.
const fn table<const R: usize, const C: usize>(salt: usize) -> [[f32; C]; R] {
    let mut t = [[0.0; C]; R];
    let mut i = 0;
    while i < R {
        let mut j = 0;
        while j < C {
            t[i][j] = ((i * 7 + j * 3 + salt) % 13) as f32 * 0.05 - 0.3;
            j += 1;
        }
        i += 1;
    }
    t
}

/// `A` stacked [`table`]s.
const fn tables<const A: usize, const R: usize, const C: usize>(salt: usize) -> [[[f32; C]; R]; A] {
    let mut t = [[[0.0; C]; R]; A];
    let mut a = 0;
    while a < A {
        t[a] = table(salt + 5 * a);
        a += 1;
    }
    t
}

/// Run-time inputs derived from `seed`.
fn fill<const R: usize, const C: usize>(seed: f32, salt: usize) -> [[f32; C]; R] {
    core::array::from_fn(|i| {
        core::array::from_fn(|j| ((i * 5 + j * 3 + salt) % 11) as f32 * 0.1 * seed - 0.5)
    })
}

fn fill3<const A: usize, const R: usize, const C: usize>(
    seed: f32,
    salt: usize,
) -> [[[f32; C]; R]; A] {
    core::array::from_fn(|a| fill(seed, salt + 3 * a))
}

fn total(x: &[f32]) -> f32 {
    x.iter().sum()
}

/// Sum of the entries that survived a filter (the others are −∞ or 0).
fn finite_total(x: &[f32]) -> f32 {
    x.iter().filter(|v| v.is_finite()).sum()
}

// Attention weights (`(OUT, IN)` as nested arrays, see `constml::attention`).
static W_Q: [[[f32; DM]; D]; H] = tables(1);
static B_Q: [[f32; D]; H] = table(2);
static W_K: [[[f32; DM]; D]; KVH] = tables(3);
static W_V: [[[f32; DM]; D]; KVH] = tables(4);
static W_O: [[[f32; D]; H]; DM] = tables(5);
static B_O: [f32; DM] = table::<1, DM>(6)[0];
static IN_PROJ: [[[f32; DM]; DM]; 3] = tables(7);
static W_OUT: [[f32; DM]; DM] = table(8);
static W_QKV: [[f32; DM]; QKV] = table(9);
static LN_Q: [f32; DM] = [1.0; DM];
static LN_QB: [f32; DM] = [0.0; DM];
static LN_K: [f32; D] = [0.9; D];
static LN_KB: [f32; D] = [0.1; D];
/// Token embeddings, tied with the output layer of [`TinyLm`].
static EMB: [[f32; DM]; V] = table(10);

/// The decoder block over the static weights: grouped-query (`H` query heads
/// sharing `KVH` kv heads), biases on q and the output.
fn decoder<B: Backend>() -> CausalSelfAttention<'static, f32, DM, H, KVH, D, B> {
    CausalSelfAttention::new(DecoderWeights {
        w_q: &W_Q,
        b_q: Some(&B_Q),
        w_k: &W_K,
        b_k: None,
        w_v: &W_V,
        b_v: None,
        w_o: &W_O,
        b_o: Some(&B_O),
    })
}

// ---------------------------------------------------------------- kernels

/// The foundation kernels, slice face and const face.
#[inline(never)]
fn kernel_calls<B: Backend>(seed: f32) -> Result<f32> {
    let a: [[f32; K]; M] = fill(seed, 1);
    let b: [[f32; M]; K] = fill(seed, 2);
    let [mut x]: [[f32; K]; 1] = fill(seed, 3);
    let mut c = [[0.0f32; M]; M];
    let mut y = [0.0f32; M];

    let mut r = B::dot(&x, &a[0])?;
    let (head, tail) = x.split_at_mut(K / 2);
    B::axpy(0.5, tail, head)?;
    B::add(head, tail)?;
    B::mul(head, tail)?;
    B::scale(0.9, &mut x);
    r += B::sum(&x) + B::max(&x)? + B::argmax(&x)? as f32;
    B::softmax(&mut x);
    B::log_softmax(&mut x);
    B::relu(&mut x);
    B::sigmoid(&mut x);
    B::tanh(&mut x);
    B::silu(&mut x);
    B::gelu(&mut x);
    B::gelu_tanh(&mut x);
    r += total(&x);
    let (av, bv) = (MatRef::from_array(&a), MatRef::from_array(&b));
    B::gemm(av, bv, MatMut::from_array(&mut c), Accumulate::Overwrite)?;
    B::gemm_bt(av, av, MatMut::from_array(&mut c), Accumulate::Add)?;
    B::matvec(av, &x, &mut y, Accumulate::Overwrite)?;
    r += total(c.as_flattened()) + total(&y);

    // The const-generic face.
    kernels::matmul_with::<B, f32, M, K, M>(&a, &b, &mut c);
    r += total(c.as_flattened());
    kernels::matmul_bt_with::<B, f32, M, K, M>(&a, &a, &mut c);
    r += total(c.as_flattened());
    kernels::matvec_with::<B, f32, K, M>(&a, &x, &mut y);
    let bias = y;
    constml::nn::linear_with::<B, f32, K, M>(&a, &bias, &x, &mut y);
    r += total(&y);
    kernels::softmax_with::<B, f32, K>(&mut x);
    kernels::log_softmax_with::<B, f32, K>(&mut x);
    r += kernels::dot_with::<B, f32, K>(&x, &a[1]);
    r += kernels::argmax_with::<B, f32, K>(&x)? as f32;
    Ok(r)
}

// ---------------------------------------------------------------- attention

/// Scaled dot-product attention (masks, bias, causal, window, score hooks,
/// relative terms) and grouped-query attention.
#[inline(never)]
fn sdpa_calls<B: Backend>(seed: f32) -> Result<f32> {
    let q: [[f32; D]; NQ] = fill(seed, 4);
    let k: [[f32; D]; NK] = fill(seed, 5);
    let v: [[f32; D]; NK] = fill(seed, 6);
    let bias: [[f32; NK]; NQ] = fill(seed, 7);
    let shaw_k: [[f32; D]; 3] = fill(seed, 8);
    let shaw_v: [[f32; D]; 3] = fill(seed, 9);
    let shaw = ShawRelative::from_arrays(Some(&shaw_k), Some(&shaw_v));
    let alibi = |h: usize, i: usize, j: usize| -0.25 * (h + 1) as f32 * (i as f32 - j as f32);
    let mask = [[true, false, true, true, false]; NQ];
    let pad = [true, true, true, false, true];
    let mut out = [[0.0f32; D]; NQ];
    let mut w = [[0.0f32; NK]; NQ];

    let o = AttnOptions::new();
    let opts = [
        o,
        o.allow(MatRef::from_array(&mask)),
        o.block(MatRef::from_array(&mask))
            .bias(MatRef::from_array(&bias)),
        o.causal(),
        o.causal().window(2),
        o.key_allow(&pad).scale(0.5),
        o.causal().relative(&shaw).score_bias(&alibi),
    ];
    let mut r = 0.0;
    for opt in &opts {
        sdpa_with::<B, f32, NQ, NK, D, D>(&q, &k, &v, &mut out, &mut w, opt)?;
        r += total(out.as_flattened()) + total(w.as_flattened());
    }
    sdpa_views_with::<B, f32>(
        MatRef::from_array(&q),
        MatRef::from_array(&k),
        MatRef::from_array(&v),
        MatMut::from_array(&mut out),
        w.as_flattened_mut(),
        &o.causal(),
    )?;
    r += total(out.as_flattened());

    // Grouped-query attention: `H` query heads over `KVH` kv heads.
    let gq: [[[f32; D]; H]; NQ] = fill3(seed, 10);
    let gk: [[[f32; D]; KVH]; NK] = fill3(seed, 11);
    let gv: [[[f32; D]; KVH]; NK] = fill3(seed, 12);
    let mut gout = [[[0.0f32; D]; H]; NQ];
    let mut gs = [[0.0f32; NK]; NQ];
    let mut averaged = [0.0f32; NQ * NK];
    let mut per_head = [0.0f32; H * NQ * NK];
    gqa_with::<B, f32, NQ, NK, H, KVH, D, D>(
        &gq,
        &gk,
        &gv,
        &mut gout,
        &mut gs,
        WeightsOut::Averaged(&mut averaged),
        &o.causal(),
    )?;
    r += total(gout.as_flattened().as_flattened()) + total(&averaged);
    gqa_with::<B, f32, NQ, NK, H, KVH, D, D>(
        &gq,
        &gk,
        &gv,
        &mut gout,
        &mut gs,
        WeightsOut::PerHead(&mut per_head),
        &o.key_allow(&pad),
    )?;
    r += total(gout.as_flattened().as_flattened()) + total(&per_head);
    Ok(r)
}

/// Multi-head layers: general (cross-attention), self-attention, PyTorch's
/// packed `nn.MultiheadAttention`.
#[inline(never)]
fn mha_calls<B: Backend>(seed: f32) -> Result<f32> {
    let o = AttnOptions::new();
    let x: [[f32; DM]; NQ] = fill(seed, 13);
    let mem: [[f32; DM]; NK] = fill(seed, 14);
    let mut y = [[0.0f32; DM]; NQ];
    let mut averaged = [0.0f32; NQ * NK];
    let mut r = 0.0;
    let mha_w = MhaWeights {
        w_q: &W_Q,
        b_q: Some(&B_Q),
        w_k: &W_Q,
        b_k: None,
        w_v: &W_Q,
        b_v: None,
        w_o: &W_O,
        b_o: Some(&B_O),
    };
    let mha = MultiHeadAttention::<f32, H, DM, DM, D, D, DM, B>::new(mha_w);
    let mut cross = MhaScratch::<f32, NQ, NK, H, D, D>::new();
    mha.forward(&x, &mem, &mem, &mut y, &mut cross, WeightsOut::None, &o)?;
    r += total(y.as_flattened());
    let sa = SelfAttention::<f32, H, DM, D, D, DM, B>::new(mha_w);
    let mut own = MhaScratch::<f32, NQ, NQ, H, D, D>::new();
    sa.forward(&x, &mut y, &mut own, WeightsOut::None, &o.causal())?;
    r += total(y.as_flattened());
    let packed = PackedMultiheadAttention::<f32, DM, H, D, B>::new(PackedMhaWeights {
        in_proj_weight: &IN_PROJ,
        in_proj_bias: None,
        out_proj_weight: &W_OUT,
        out_proj_bias: Some(&B_O),
    });
    let padding = [false, false, true, false, false];
    packed.forward(
        &x,
        &mem,
        &mem,
        Some(&padding),
        &mut y,
        &mut cross,
        WeightsOut::Averaged(&mut averaged),
        &o,
    )?;
    r += total(y.as_flattened()) + total(&averaged);
    Ok(r)
}

/// A bounded KV cache with the decoder block, then the block's pieces run by
/// hand (append + attend over the cache), truncation and copies.
#[inline(never)]
fn kv_cache_calls<B: Backend>(seed: f32) -> Result<f32> {
    let block = decoder::<B>();
    let x: [[f32; DM]; NQ] = fill(seed, 15);
    let o = AttnOptions::new();
    let mut out = [[0.0f32; DM]; NQ];
    let mut out1 = [[0.0f32; DM]; 1];
    let mut r = 0.0;

    // Bounded cache: a prefill of `NQ` tokens, then decode steps.
    let mut cache = KvCache::<f32, KVH, D, CAP>::new();
    let mut prefill = DecoderScratch::<f32, NQ, H, KVH, D, { CAP + NQ }>::new();
    let mut step = DecoderScratch::<f32, 1, H, KVH, D, { CAP + 1 }>::new();
    block.forward(&x, &mut cache, &NoRotation, &mut prefill, &mut out, &o)?;
    r += total(out.as_flattened());
    for t in 0..4 {
        let token = [x[t % NQ]];
        block.forward(&token, &mut cache, &NoRotation, &mut step, &mut out1, &o)?;
        r += total(&out1[0]);
    }

    // The pieces: project, attend with the token pending, append, project out …
    block.project(&[x[0]], &mut step.q, &mut step.k, &mut step.v)?;
    attend_cache_with::<B, f32, 1, H, KVH, D, CAP, { CAP + 1 }>(
        &step.q,
        cache.next_position(),
        &cache,
        Some((&step.k, &step.v)),
        &mut step.ctx,
        &mut step.scores,
        WeightsOut::None,
        &o,
    )?;
    cache.append_chunk(&step.k, &step.v)?;
    block.out_proj(&step.ctx, &mut out1)?;
    r += total(&out1[0]);
    // … or append first, then attend over the cache alone, with a bias hook.
    block.project(&[x[1]], &mut step.q, &mut step.k, &mut step.v)?;
    let pos = cache.append(&step.k[0], &step.v[0])?;
    let alibi = |h: usize, i: usize, j: usize| -0.125 * (h + 1) as f32 * (i as f32 - j as f32);
    attend_cache_with::<B, f32, 1, H, KVH, D, CAP, { CAP + 1 }>(
        &step.q,
        pos,
        &cache,
        None,
        &mut step.ctx,
        &mut step.scores,
        WeightsOut::None,
        &o.score_bias(&alibi),
    )?;
    block.out_proj(&step.ctx, &mut out1)?;
    r += total(&out1[0]);
    // Roll back two tokens (speculative decoding), copy, empty.
    cache.truncate(cache.next_position() - 2)?;
    let mut copy = KvCache::<f32, KVH, D, CAP>::new();
    copy.copy_from(&cache)?;
    r += copy.next_position() as f32;
    cache.reset();
    Ok(r + cache.next_position() as f32)
}

/// A ring-buffer cache (sliding window of `RING`) with the decoder block: more
/// tokens than it holds, and a multi-token chunk into a full ring.
#[inline(never)]
fn ring_calls<B: Backend>(seed: f32) -> Result<f32> {
    let block = decoder::<B>();
    let x: [[f32; DM]; NQ] = fill(seed, 15);
    let o = AttnOptions::new();
    let mut out = [[0.0f32; DM]; NQ];
    let mut out1 = [[0.0f32; DM]; 1];
    let mut r = 0.0;
    let mut ring = KvCache::<f32, KVH, D, RING>::new_ring();
    let mut ring_prefill = DecoderScratch::<f32, NQ, H, KVH, D, { RING + NQ }>::new();
    let mut ring_step = DecoderScratch::<f32, 1, H, KVH, D, { RING + 1 }>::new();
    block.forward(&x, &mut ring, &NoRotation, &mut ring_prefill, &mut out, &o)?;
    for t in 0..2 * RING {
        let token = [x[t % NQ]];
        block.forward(
            &token,
            &mut ring,
            &NoRotation,
            &mut ring_step,
            &mut out1,
            &o,
        )?;
        r += total(&out1[0]);
    }
    block.forward(&x, &mut ring, &NoRotation, &mut ring_prefill, &mut out, &o)?;
    Ok(r + total(out.as_flattened()) + ring.oldest_position() as f32)
}

/// Position encodings: RoPE (on the fly and from a table, through the
/// decoder's ring cache), sinusoidal and learned tables, T5 and ALiBi biases.
#[inline(never)]
fn position_calls<B: Backend>(seed: f32) -> Result<f32> {
    let block = decoder::<B>();
    let x: [[f32; DM]; NQ] = fill(seed, 21);
    let o = AttnOptions::new();
    let mut r = 0.0;
    // RoPE through the decoder over a ring cache, past the table's end.
    let cfg = RopeConfig::new(RopeLayout::HalfSplit).scaling(RopeScaling::Ntk(2.0));
    let rope = Rope::<f32, D, B>::new(cfg)?;
    let (mut cos, mut sin) = ([[0.0f32; D]; 2 * RING], [[0.0f32; D]; 2 * RING]);
    let rot = RopeTable::new(rope, &mut cos, &mut sin, BeyondTable::Compute);
    let mut ring = KvCache::<f32, KVH, D, RING>::new_ring();
    let mut step = DecoderScratch::<f32, 1, H, KVH, D, { RING + 1 }>::new();
    let mut out1 = [[0.0f32; DM]; 1];
    for t in 0..3 * RING {
        let token = [x[t % NQ]];
        block.forward(&token, &mut ring, &rot, &mut step, &mut out1, &o)?;
        r += total(&out1[0]);
    }
    let mut q: [[[f32; D]; H]; NQ] = fill3(seed, 22);
    Rope::<f32, D, B>::new(RopeConfig::new(RopeLayout::Interleaved))?.rotate_heads(5, &mut q)?;
    r += total(q.as_flattened().as_flattened());
    // Absolute encodings.
    let mut e: [[f32; DM]; NQ] = fill(seed, 23);
    Sinusoidal::new(SinusoidalLayout::Halves).add(7, &mut e)?;
    let mut wpe = LearnedPositions::<f32, CAP, DM, [[f32; DM]; CAP]>::new(table::<CAP, DM>(24));
    wpe.add_with::<B, NQ>(3, &mut e)?;
    let mut grad = [[0.0f32; DM]; CAP];
    LearnedPositions::<f32, CAP, DM>::backward_at(&[1, 4, 1], &e, &mut grad)?;
    wpe.sgd_step(&grad, 0.1)?;
    r += total(e.as_flattened()) + total(wpe.table().as_flattened());
    // Relative biases inside attention.
    let qa: [[f32; D]; NQ] = fill(seed, 25);
    let kv: [[f32; D]; NK] = fill(seed, 26);
    let mut ctx = [[0.0f32; D]; NQ];
    let mut w = [[0.0f32; NK]; NQ];
    static T5_TABLE: [[f32; H]; 8] = table(27);
    let t5 = T5RelativeBias::from_array(T5Buckets::new(false, 8, 20)?, &T5_TABLE)?;
    sdpa_with::<B, f32, NQ, NK, D, D>(
        &qa,
        &kv,
        &kv,
        &mut ctx,
        &mut w,
        &o.causal().scale(1.0).score_bias(&t5),
    )?;
    r += total(ctx.as_flattened());
    let slopes: [f32; H] = alibi_slopes();
    let alibi = Alibi::new(&slopes, AlibiForm::Causal)?;
    sdpa_with::<B, f32, NQ, NK, D, D>(
        &qa,
        &kv,
        &kv,
        &mut ctx,
        &mut w,
        &o.causal().score_bias(&alibi),
    )?;
    let mut bias = [[0.0f32; NK]; H * NQ];
    alibi.fill_views(2, 0, MatMut::from_array(&mut bias))?;
    Ok(r + total(ctx.as_flattened()) + total(bias.as_flattened()))
}

/// Normalisation (forward, backward, BatchNorm training/eval/fold) and
/// classic ML (SGD, least squares, k-means, the online update).
#[inline(never)]
fn norm_ml_calls<B: Backend>(seed: f32) -> Result<f32> {
    let x: [[f32; DM]; NQ] = fill(seed, 31);
    let dy: [[f32; DM]; NQ] = fill(seed, 32);
    let mut r = 0.0;
    let ln = LayerNorm::<f32, DM, B>::new(Some(&LN_Q), Some(&LN_QB), 1e-5)?;
    let mut y = [[0.0f32; DM]; NQ];
    let (mut mean, mut rstd) = ([0.0f32; NQ], [0.0f32; NQ]);
    ln.forward(&x, &mut y, Some(NormStats::new(&mut mean, &mut rstd)))?;
    let mut dx = [[0.0f32; DM]; NQ];
    let (mut dw, mut db) = ([0.0f32; DM], [0.0f32; DM]);
    ln.backward(
        &x,
        &dy,
        &mut dx,
        Some((&mean, &rstd)),
        Some(&mut dw),
        Some(&mut db),
    )?;
    layer_norm_backward_views_with::<B, f32>(
        MatRef::from_array(&x),
        MatRef::from_array(&dy),
        MatMut::from_array(&mut dx),
        None,
        1e-5,
        None,
        None,
        None,
    )?;
    r += total(y.as_flattened()) + total(dx.as_flattened()) + total(&dw) + total(&db);
    let rms = RmsNorm::<f32, DM, B>::new(Some(&LN_Q), 1e-6)?;
    rms.forward_inplace(&mut y, None)?;
    rms_norm_backward_views_with::<B, f32>(
        MatRef::from_array(&x),
        MatRef::from_array(&dy),
        MatMut::from_array(&mut dx),
        Some(&LN_Q),
        1e-6,
        None,
        Some(&mut dw),
    )?;
    r += total(y.as_flattened()) + total(dx.as_flattened());
    // BatchNorm over (N, C, L) = (NQ, 2, 8): training, backward, eval, fold.
    let bn = BatchNorm::<f32, 2, B>::new(Some(&[1.0, 0.5]), Some(&[0.0, 0.1]), 1e-5, Some(0.1))?;
    let xb: [[[f32; 8]; 2]; NQ] = fill3(seed, 33);
    let mut yb = [[[0.0f32; 8]; 2]; NQ];
    let mut state = BatchNormState::new();
    let (mut bm, mut br) = ([0.0f32; 2], [0.0f32; 2]);
    bn.forward_train(&xb, &mut yb, Some(&mut state), Some((&mut bm, &mut br)))?;
    let mut dxb = [[[0.0f32; 8]; 2]; NQ];
    let (mut gw, mut gb) = ([0.0f32; 2], [0.0f32; 2]);
    bn.backward_train(
        &xb,
        &yb,
        &mut dxb,
        Some((&bm, &br)),
        Some(&mut gw),
        Some(&mut gb),
    )?;
    bn.forward_eval(&xb, &mut yb, &state)?;
    let mut wl: [[f32; 3]; 2] = fill(seed, 34);
    let mut bl = [0.1f32, -0.1];
    bn.fold(&state, &mut wl, &mut bl)?;
    r += total(yb.as_flattened().as_flattened()) + total(dxb.as_flattened().as_flattened());
    r += total(wl.as_flattened()) + total(&bl) + total(&gw) + total(&gb);
    // Linear regression: mini-batch SGD with shuffling, the scikit-learn
    // rule, and least squares.
    let xs: [[f32; 2]; 8] = fill(seed, 35);
    let ys: [f32; 8] = core::array::from_fn(|i| 2.0 * xs[i][0] - xs[i][1] + 0.5);
    let mut model = LinearRegression::<f32, 2>::new();
    let mut perm = [0usize; 8];
    let mut rng = Xoshiro128PlusPlus::seed_from_u64(5);
    let mut last = 0.0f32;
    model.fit_sgd(
        &xs,
        &ys,
        None,
        &SgdConfig::new(0.1, 3, 4),
        &mut perm,
        Some(&mut rng),
        &mut |e| last = e.train_loss,
    )?;
    let cfg = SgdConfig {
        rule: SgdRule::Sklearn,
        ..SgdConfig::new(0.05, 1, 2)
    };
    model.fit_sgd(&xs, &ys, None, &cfg, &mut perm, None, &mut |_| {})?;
    let mut lsq = [0.0f32; 8 * 3 + 8];
    let (mut w, mut b) = ([0.0f32; 2], 0.0f32);
    least_squares_views(MatRef::from_array(&xs), &ys, &mut lsq, &mut w, &mut b)?;
    r += last + model.predict(&xs[0]) + total(&w) + b;
    // k-means, const face, and the online update.
    let mut centers = [[0.0f32; 2]; 2];
    let mut labels = [0usize; 8];
    let mut scratch = KMeansScratch::<f32, 8, 2, 2>::new();
    let fit = KMeans::<f32, 2, 2, B>::new().n_init(2).fit(
        &xs,
        KMeansInit::PlusPlus,
        &mut rng,
        &mut centers,
        &mut labels,
        &mut scratch,
    )?;
    let mut counts = [1u64, 1];
    let c = kmeans_online_update(MatMut::from_array(&mut centers), &mut counts, &xs[3])?;
    Ok(r + fit.inertia + total(centers.as_flattened()) + c as f32)
}

/// Neural-network layers, losses and optimisers: a forward/backward through
/// linear → GELU → linear → cross-entropy, the other activations, softmax
/// backward, dropout, embedding, MSE/BCE, SGD/Adam steps and clipping.
#[inline(never)]
fn nn_calls<B: Backend>(seed: f32) -> Result<f32> {
    let x: [[f32; DM]; NQ] = fill(seed, 41);
    let mut h = [[0.0f32; D]; NQ];
    let mut a = [[0.0f32; D]; NQ];
    let w1: [[f32; DM]; D] = table(42);
    let w2: [[f32; D]; 4] = table(43);
    for i in 0..NQ {
        constml::nn::linear_with::<B, f32, DM, D>(&w1, &[0.0; D], &x[i], &mut h[i]);
    }
    activation_forward_with::<B, f32>(Activation::Gelu, h.as_flattened(), a.as_flattened_mut())?;
    let mut logits = [[0.0f32; 4]; NQ];
    for i in 0..NQ {
        constml::nn::linear_with::<B, f32, D, 4>(&w2, &[0.1; 4], &a[i], &mut logits[i]);
    }
    let mut dlogits = [[0.0f32; 4]; NQ];
    let targets = [1usize, 3, 0];
    let opts = CrossEntropy {
        label_smoothing: 0.1,
        ignore_index: Some(3),
    };
    let loss = cross_entropy(&logits, &targets, &opts, Some(&mut dlogits))?;
    let (mut da, mut dw2, mut db2) = ([[0.0f32; D]; NQ], [[0.0f32; D]; 4], [0.0f32; 4]);
    linear_backward_with::<B, f32, NQ, D, 4>(
        &a,
        &w2,
        &dlogits,
        Some(&mut da),
        Some(&mut dw2),
        Some(&mut db2),
    )?;
    let mut dh = [[0.0f32; D]; NQ];
    activation_backward_with::<B, f32>(
        Activation::Gelu,
        h.as_flattened(),
        a.as_flattened(),
        da.as_flattened(),
        dh.as_flattened_mut(),
    )?;
    let mut dw1 = [[0.0f32; DM]; D];
    linear_backward_with::<B, f32, NQ, DM, D>(&x, &w1, &dh, None, Some(&mut dw1), None)?;
    let mut r = loss + total(dw1.as_flattened()) + total(&db2);
    for act in [
        Activation::Relu,
        Activation::Sigmoid,
        Activation::Tanh,
        Activation::Silu,
        Activation::GeluTanh,
    ] {
        activation_forward_with::<B, f32>(act, h.as_flattened(), a.as_flattened_mut())?;
        activation_backward_with::<B, f32>(
            act,
            h.as_flattened(),
            a.as_flattened(),
            da.as_flattened(),
            dh.as_flattened_mut(),
        )?;
        r += total(dh.as_flattened());
    }
    let mut sm = logits;
    for row in sm.iter_mut() {
        B::softmax(row);
    }
    let mut dsm = [[0.0f32; 4]; NQ];
    softmax_backward_views_with::<B, f32>(
        MatRef::from_array(&sm),
        MatRef::from_array(&dlogits),
        MatMut::from_array(&mut dsm),
    )?;
    let mut rng = Xoshiro128PlusPlus::seed_from_u64(3);
    let (mut y, mut mask) = ([0.0f32; DM], [false; DM]);
    dropout_forward(&x[0], &mut y, &mut mask, 0.25, true, &mut rng)?;
    let mut dx = [0.0f32; DM];
    dropout_backward(&y, &mask, 0.25, true, &mut dx)?;
    let mut e = [[0.0f32; DM]; 2];
    embedding(&EMB, &[3, 7], &mut e)?;
    let mut ge = [[0.0f32; DM]; V];
    embedding_backward(&[3, 3], &e, &mut ge)?;
    let mut dp = [0.0f32; DM];
    r +=
        mse_loss(&x[0], &x[1], Some(&mut dp))? + bce_with_logits(&x[0], &[0.5; DM], Some(&mut dp))?;
    // Optimisers on the second layer.
    let mut w = w2;
    let mut st = [0.0f32; 2 * 4 * D];
    Sgd::new(0.1)
        .momentum(0.9)
        .nesterov(true)
        .step_with::<B>(&mut [Param::new(
            w.as_flattened_mut(),
            dw2.as_flattened(),
            &mut st[..4 * D],
        )])?;
    Adam::adamw(1e-3).step(&mut [Param::new(
        w.as_flattened_mut(),
        dw2.as_flattened(),
        &mut st,
    )])?;
    let n = clip_grad_norm(&mut [dw1.as_flattened_mut(), &mut db2[..]], 1.0)?;
    // Convolution (two groups, stride 2, padding 1) and pooling, forward and backward.
    let cs = Conv2dShape::new(1, 2, 6, 6, 4, 3, 3)
        .stride(2, 1)
        .padding(1, 1)
        .groups(2);
    let img: [f32; 72] = core::array::from_fn(|i| (i % 7) as f32 * 0.1 * seed);
    let cw: [f32; 36] = core::array::from_fn(|i| (i % 5) as f32 * 0.05 - 0.1);
    let mut cy = [0.0f32; 4 * 3 * 6];
    conv2d_views_with::<B, f32>(&img, &cs, &cw, Some(&[0.1; 4]), &mut cy)?;
    let mut col = [0.0f32; 9 * 18];
    conv2d_im2col_views_with::<B, f32>(&img, &cs, &cw, None, &mut cy, &mut col)?;
    let (mut dimg, mut dcw, mut dcb) = ([0.0f32; 72], [0.0f32; 36], [0.0f32; 4]);
    conv2d_backward_views_with::<B, f32>(
        &img,
        &cs,
        &cw,
        &cy,
        Some(&mut dimg),
        Some(&mut dcw),
        Some(&mut dcb),
    )?;
    let ps = Pool2dShape::new(1, 4, 3, 6, 2, 2).ceil_mode(true);
    let (mut py, mut pi) = ([0.0f32; 4 * 2 * 3], [0usize; 4 * 2 * 3]);
    max_pool2d_views(&cy, &ps, &mut py, &mut pi)?;
    let mut dpool = [0.0f32; 72];
    max_pool2d_backward_views(&ps, &py, &pi, &mut dpool)?;
    avg_pool2d_views(&cy, &ps, false, &mut py)?;
    let r = r + total(&dimg) + total(&dcw) + total(&dcb) + total(&py) + total(&dpool);
    Ok(r + n
        + total(dsm.as_flattened())
        + total(&dx)
        + total(ge.as_flattened())
        + total(w.as_flattened()))
}

/// Recurrent layers: an LSTM (const face) forward and backward through time
/// with the im2col conv backward's scratch discipline, a GRU step and a ReLU
/// RNN over views.
#[inline(never)]
fn recurrent_calls<B: Backend>(seed: f32) -> Result<f32> {
    const N: usize = 2;
    const S: usize = 3;
    const I: usize = 4;
    const H: usize = 5;
    const SHAPE: RnnShape = RnnShape::new(N, S, I, H);
    let shape = SHAPE;
    let mut lstm = Lstm::<f32, I, H, B>::zeros(Cell::Lstm, true)?;
    lstm.w_ih = tables::<4, H, I>(31);
    lstm.w_hh = tables::<4, H, H>(32);
    lstm.b_ih = Some(table::<4, H>(33));
    let x: [[[f32; I]; S]; N] = [fill::<S, I>(seed, 34), fill::<S, I>(seed, 35)];
    let mut out = [[[0.0f32; H]; S]; N];
    let (mut h_n, mut c_n) = ([[0.0f32; H]; N], [[0.0f32; H]; N]);
    let mut saved = [[[[0.0f32; H]; 6]; S]; N];
    let mut scratch = [0.0f32; recurrent_backward_scratch_len(Cell::Lstm, &SHAPE)];
    lstm.forward(
        &x,
        None,
        None,
        &mut out,
        Some(&mut h_n),
        Some(&mut c_n),
        &mut saved,
        &mut scratch,
    )?;
    let mut grads = Lstm::<f32, I, H, B>::zeros(Cell::Lstm, true)?;
    let mut dx = [[[0.0f32; I]; S]; N];
    let (mut dh0, mut dc0) = ([[0.0f32; H]; N], [[0.0f32; H]; N]);
    lstm.backward(
        &x,
        None,
        None,
        &out,
        &saved,
        Some(&out),
        Some(&h_n),
        None,
        &mut grads,
        Some(&mut dx),
        Some(&mut dh0),
        Some(&mut dc0),
        &mut scratch,
    )?;
    let gw = tables::<3, H, I>(36);
    let gu = tables::<3, H, H>(37);
    let gru = RecurrentParams::new(
        Cell::Gru,
        gw.as_flattened().as_flattened(),
        gu.as_flattened().as_flattened(),
        None,
        None,
    );
    let mut h = [0.1f32 * seed; N * H];
    let mut step = [0.0f32; recurrent_step_scratch_len(Cell::Gru, N, H)];
    let x0 = [x[0][0], x[1][0]];
    recurrent_step_views_with::<B, f32>(&gru, N, x0.as_flattened(), &mut h, None, &mut step)?;
    let rw = table::<H, I>(38);
    let ru = table::<H, H>(39);
    let rnn = RecurrentParams::new(
        Cell::RnnRelu,
        rw.as_flattened(),
        ru.as_flattened(),
        None,
        None,
    );
    let mut rout = [0.0f32; N * S * H];
    recurrent_forward_views_with::<B, f32>(
        &rnn,
        &shape,
        x.as_flattened().as_flattened(),
        None,
        None,
        &mut rout,
        None,
        None,
        &mut [],
        &mut scratch,
    )?;
    Ok(total(out.as_flattened().as_flattened())
        + total(dx.as_flattened().as_flattened())
        + total(grads.w_hh.as_flattened().as_flattened())
        + total(dc0.as_flattened())
        + total(&h)
        + total(&rout))
}

/// A tiny Llama (grouped-query, two layers) with `static` weights: a
/// prompt chunk, cached decode steps and the generation loop, in a state
/// arena sized by the `const fn`.
#[inline(never)]
fn llama_calls<B: Backend>(seed: f32) -> Result<f32> {
    const CFG: LlamaConfig = LlamaConfig {
        dim: 8,
        hidden_dim: 16,
        n_layers: 2,
        n_heads: 2,
        n_kv_heads: 1,
        vocab_size: 16,
        seq_len: 8,
        shared_classifier: true,
    };
    static W: [[f32; 8]; CFG.weights_len() / 8] = table::<{ CFG.weights_len() / 8 }, 8>(41);
    let m = Llama::<f32, B>::new(CFG, LlamaWeights::from_flat(&CFG, W.as_flattened())?)?;
    let mut arena = [0.0f32; CFG.state_len(2)];
    let mut st = LlamaState::new(&CFG, 2, &mut arena)?;
    let t = (seed * 3.0) as usize % CFG.vocab_size;
    m.forward(&[1, t], &mut st, LogitRows::Last)?;
    m.forward(&[5], &mut st, LogitRows::Last)?;
    let mut r = total(st.logits());
    let mut emitted = 0usize;
    m.generate(
        &[1, t, 4],
        6,
        &mut st,
        |logits| B::argmax(logits),
        |_, next| {
            emitted += next;
            Ok(())
        },
    )?;
    r += emitted as f32;
    // A tiny GPT-2 through its const face: static weights, a ring cache
    // shorter than the context.
    type TinyGpt2<B> = Gpt2Sized<'static, f32, 16, 12, 8, 2, 1, B>;
    static G: [[f32; 8]; TinyGpt2::<Simd>::WEIGHTS_LEN / 8] =
        table::<{ TinyGpt2::<Simd>::WEIGHTS_LEN / 8 }, 8>(43);
    let g = TinyGpt2::<B>::new(Gpt2Weights::from_flat(
        &TinyGpt2::<B>::CONFIG,
        G.as_flattened(),
    )?)?;
    let mut garena = [0.0f32; TinyGpt2::<Simd>::CONFIG.state_len(2, 4)];
    let mut gs = Gpt2State::new(
        &TinyGpt2::<B>::CONFIG,
        2,
        4,
        constml::attention::CachePolicy::Ring,
        &mut garena,
    )?;
    g.forward(&[1, t], &mut gs, LogitRows::Last)?;
    for step in 0..6 {
        let next = B::argmax(gs.logits())?;
        g.forward(&[(next + step) % 16], &mut gs, LogitRows::Last)?;
    }
    Ok(r + total(gs.logits()))
}

/// MosaicML MPT's multi-query layer (q/k LayerNorm, clipping), without and
/// with a cache.
#[inline(never)]
fn mpt_calls<B: Backend>(seed: f32) -> Result<f32> {
    let x: [[f32; DM]; NQ] = fill(seed, 16);
    let o = AttnOptions::new();
    let mut out = [[0.0f32; DM]; NQ];
    let mut out1 = [[0.0f32; DM]; 1];
    let mut r = 0.0;
    let mpt = MptAttention::<f32, DM, H, D, QKV, B>::new(
        MptWeights {
            w_qkv: &W_QKV,
            b_qkv: None,
            w_out: &W_OUT,
            b_out: Some(&B_O),
            qk_ln: Some(MptQkNorm {
                q_weight: &LN_Q,
                q_bias: &LN_QB,
                k_weight: &LN_K,
                k_bias: &LN_KB,
            }),
        },
        MptConfig {
            clip_qkv: Some(0.5),
            softmax_scale: None,
        },
    );
    let mut mpt_plain = DecoderScratch::<f32, NQ, H, 1, D, NQ>::new();
    mpt.forward(&x, &mut mpt_plain, &mut out, WeightsOut::None, &o.causal())?;
    r += total(out.as_flattened());
    let mut mpt_cache = KvCache::<f32, 1, D, CAP>::new();
    let mut mpt_prefill = DecoderScratch::<f32, NQ, H, 1, D, { CAP + NQ }>::new();
    let mut mpt_step = DecoderScratch::<f32, 1, H, 1, D, { CAP + 1 }>::new();
    mpt.forward_cached(
        &x,
        &mut mpt_cache,
        &mut mpt_prefill,
        &mut out,
        WeightsOut::None,
        &o,
    )?;
    r += total(out.as_flattened());
    mpt.forward_cached(
        &[x[2]],
        &mut mpt_cache,
        &mut mpt_step,
        &mut out1,
        WeightsOut::None,
        &o,
    )?;
    r += total(&out1[0]);
    Ok(r)
}

// ---------------------------------------------------------------- decoding

/// A one-layer language model for beam search and sampling: tied embeddings
/// around the decoder block, one KV cache per beam (reordered with
/// [`reorder_beams`]).
struct TinyLm<B: Backend> {
    block: CausalSelfAttention<'static, f32, DM, H, KVH, D, B>,
    caches: [KvCache<f32, KVH, D, CAP>; BEAMS],
    scratch: DecoderScratch<f32, 1, H, KVH, D, { CAP + 1 }>,
    hidden: [[f32; DM]; 1],
}

impl<B: Backend> TinyLm<B> {
    fn new() -> Self {
        Self {
            block: decoder(),
            caches: [const { KvCache::new() }; BEAMS],
            scratch: DecoderScratch::new(),
            hidden: [[0.0; DM]],
        }
    }
}

impl<B: Backend> BeamModel<f32> for TinyLm<B> {
    fn step(&mut self, beam: usize, token: usize, _pos: usize, logits: &mut [f32]) -> Result<()> {
        let cache = self.caches.get_mut(beam).ok_or(Error::Model {
            what: "TinyLm: no such beam",
        })?;
        let x = EMB.get(token).ok_or(Error::Model {
            what: "TinyLm: no such token",
        })?;
        self.block.forward(
            core::array::from_ref(x),
            cache,
            &NoRotation,
            &mut self.scratch,
            &mut self.hidden,
            &AttnOptions::new(),
        )?;
        B::matvec(
            MatRef::from_array(&EMB),
            &self.hidden[0],
            logits,
            Accumulate::Overwrite,
        )
    }

    fn reorder(&mut self, parents: &[usize]) -> Result<()> {
        reorder_beams(&mut self.caches, parents)
    }
}

/// Greedy, the filters, the sampler (seeded xoshiro128++) and beam search.
#[inline(never)]
fn decode_calls<B: Backend>(seed: f32) -> Result<f32> {
    let [logits]: [[f32; V]; 1] = fill(6.0 * seed, 17);
    let mut tokens = greedy_with::<B, f32, V>(&logits)?;
    let mut r = 0.0;

    // The filters, on logits and on probabilities.
    let mut sel = SelectScratch::<f32, V>::new();
    let mut x = logits;
    temperature(&mut x, 0.7)?;
    top_k(&mut x, 8, &mut sel)?;
    top_p(&mut x, 0.9, &mut sel)?;
    min_p(&mut x, 0.05)?;
    r += finite_total(&x);
    let mut probs = logits;
    kernels::softmax_with::<B, f32, V>(&mut probs);
    top_p_probs(&mut probs, 0.8, &mut sel)?;
    min_p_probs(&mut probs, 0.1)?;
    r += total(&probs);

    // Sampling: the draw alone, then the whole sampler.
    let mut rng = Xoshiro128PlusPlus::seed_from_u64(u64::from(seed.to_bits()));
    tokens += sample_probs(&probs, &mut rng)?;
    let sampler = Sampler::new()
        .with_temperature(0.8)
        .with_top_k(10)
        .with_top_p(0.9)
        .with_min_p(0.05);
    let mut ss = SamplerScratch::<f32, V>::new();
    tokens += sampler.sample(&logits, &mut ss, &mut rng)?;
    let mut y = logits;
    sampler.process(&mut y, &mut ss)?;
    r += finite_total(&y) + repro_exp(-seed) + uniform::<f32, _>(&mut rng);

    // Beam search over the tiny model.
    let mut lm = TinyLm::<B>::new();
    let mut beams = BeamScratch::<f32, V, BEAMS, MAX_NEW>::new();
    let mut hyps = Hypotheses::<f32, BEAMS, MAX_NEW>::new();
    let eos = [3];
    let cfg = BeamConfig::new(eos)
        .with_num_return(BEAMS)
        .with_length_penalty(1.2)
        .with_early_stopping(EarlyStopping::Never);
    let prompt = [1, 2];
    tokens += beam_search_with::<B, f32, V, BEAMS, MAX_NEW>(
        &mut lm, &prompt, &cfg, &mut beams, &mut hyps,
    )?;
    for (seq, score) in hyps.iter() {
        tokens += seq.iter().sum::<usize>();
        r += score;
    }

    // Sampling generation from the same model, beam 0's cache emptied.
    lm.caches[0].reset();
    let mut next = [0.0f32; V];
    let mut token = prompt[0];
    for pos in 0..MAX_NEW {
        lm.step(0, token, pos, &mut next)?;
        token = sampler.sample(&next, &mut ss, &mut rng)?;
        tokens += token;
    }
    Ok(r + tokens as f32)
}
