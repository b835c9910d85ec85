//! Multi-head attention with its own projections: the general from-scratch form
//! ([`MultiHeadAttention`]) and PyTorch's `nn.MultiheadAttention` as its packed
//! special case ([`PackedMultiheadAttention`]).
//!
//! The computation (the classic from-scratch exercise, generalised):
//!
//! ```text
//! Q = query·W_qᵀ + b_q      (NQ, H·DK)      query (NQ, DQK_IN)
//! K = key  ·W_kᵀ + b_k      (NK, KVH·DK)    key   (NK, DQK_IN)
//! V = value·W_vᵀ + b_v      (NK, KVH·DV)    value (NK, DV_IN)
//! head h: softmax(Q_h·K_gᵀ·scale + masks)·V_g   with Q_h = columns h·DK .. (h+1)·DK,
//!         g = h / (H / KVH)
//! out = concat_h(head h)·W_oᵀ + b_o   (NQ, DO)
//! ```
//!
//! Every width is independent: query/key input width `DQK_IN`, value input width
//! `DV_IN`, per-head q/k width `DK`, per-head v width `DV`, output width `DO`.
//! `KVH = H` (multi-head attention) unless said otherwise; the decoder's
//! grouped-query weights ([`DecoderWeights`](super::DecoderWeights)) are the
//! same [`MhaWeights`] with `KVH < H`.
//! Weights are `(OUT, IN)` as in `nn.Linear`, stored as nested arrays because
//! stable Rust has no `[T; H * DK]`: `W_q: [[[T; DQK_IN]; DK]; H]` is the
//! `(H·DK, DQK_IN)` matrix, head `h` in rows `h·DK ..`.
//!
//! Faces: the layer structs (const shapes, caller-owned [`MhaScratch`]),
//! [`mha_views_with`] (runtime shapes on views, no allocation) and, with `std`,
//! [`MultiHeadAttentionDyn`].

use core::marker::PhantomData;

use super::gqa::{HeadsKv, WeightsOut, gqa_views_with};
use super::sdpa::{AttnOptions, KeyPositions};
use super::{nested, nested_mut, stacked};
use crate::backend::{Backend, Simd};
use crate::error::{Error, Result};
use crate::mat::{MatMut, MatRef};
use crate::nn::linear::linear_views_with;
use crate::real::Real;

/// The parameters of attention with its own projections, as views (runtime
/// shapes): the general multi-head layer, and the decoder's causal
/// self-attention. `heads` query heads of q/k width `DK` and v width `DV`;
/// `kv_heads` key/value heads (`heads` for multi-head attention, fewer for
/// grouped- or multi-query attention; query head `h` reads kv head
/// `h / (heads / kv_heads)`).
#[derive(Clone, Copy, Debug)]
pub struct MhaParams<'a, T> {
    /// Number of query heads `H`.
    pub heads: usize,
    /// Number of key/value heads `KVH` (`H % KVH == 0`).
    pub kv_heads: usize,
    /// Query projection `(H·DK, DQ_IN)`.
    pub w_q: MatRef<'a, T>,
    /// Query bias `H·DK`.
    pub b_q: Option<&'a [T]>,
    /// Key projection `(KVH·DK, DK_IN)`.
    pub w_k: MatRef<'a, T>,
    /// Key bias `KVH·DK`.
    pub b_k: Option<&'a [T]>,
    /// Value projection `(KVH·DV, DV_IN)`.
    pub w_v: MatRef<'a, T>,
    /// Value bias `KVH·DV`.
    pub b_v: Option<&'a [T]>,
    /// Output projection `(DO, H·DV)`.
    pub w_o: MatRef<'a, T>,
    /// Output bias `DO`.
    pub b_o: Option<&'a [T]>,
}

/// Caller-owned buffers of [`mha_views_with`] and of the decoder block
/// ([`decoder_attention_views_with`](super::decoder_attention_views_with)),
/// as views of any storage.
#[derive(Debug)]
pub struct MhaBuffers<'s, T> {
    /// Projected queries `(NQ, H·DK)`.
    pub q: MatMut<'s, T>,
    /// Projected keys `(NK, KVH·DK)`.
    pub k: MatMut<'s, T>,
    /// Projected values `(NK, KVH·DV)`.
    pub v: MatMut<'s, T>,
    /// Concatenated head outputs `(NQ, H·DV)`.
    pub ctx: MatMut<'s, T>,
    /// Attention weights: at least `NQ·NK` elements (see
    /// [`gqa_views_with`] and [`attend_cache_views_with`](super::attend_cache_views_with)).
    pub scores: &'s mut [T],
}

/// Projects `query`, `key` and `value` into `q`, `k` and `v`.
pub(crate) fn project_with<B: Backend, T: Real>(
    p: &MhaParams<'_, T>,
    query: MatRef<'_, T>,
    key: MatRef<'_, T>,
    value: MatRef<'_, T>,
    q: MatMut<'_, T>,
    k: MatMut<'_, T>,
    v: MatMut<'_, T>,
) -> Result<()> {
    linear_views_with::<B, T>(query, p.w_q, p.b_q, q)?;
    linear_views_with::<B, T>(key, p.w_k, p.b_k, k)?;
    linear_views_with::<B, T>(value, p.w_v, p.b_v, v)
}

crate::simd_default!(mha_views => mha_views_with<T: Real>(p: &MhaParams<'_, T>, query: MatRef<'_, T>, key: MatRef<'_, T>, value: MatRef<'_, T>, out: MatMut<'_, T>, buf: MhaBuffers<'_, T>, weights: WeightsOut<'_, T>, opts: &AttnOptions<'_, T>) -> Result<()>);

/// Multi-head attention on views with backend `B`: projects `query`, `key` and
/// `value`, attends per head (keys at positions `0..NK`; masks and hooks from
/// `opts`), concatenates and projects to `out` `(NQ, DO)`. All shapes are
/// checked; `weights` optionally receives per-head or averaged weights. With
/// `p.kv_heads < p.heads` this is grouped-query attention.
#[allow(clippy::too_many_arguments)]
pub fn mha_views_with<B: Backend, T: Real>(
    p: &MhaParams<'_, T>,
    query: MatRef<'_, T>,
    key: MatRef<'_, T>,
    value: MatRef<'_, T>,
    out: MatMut<'_, T>,
    mut buf: MhaBuffers<'_, T>,
    weights: WeightsOut<'_, T>,
    opts: &AttnOptions<'_, T>,
) -> Result<()> {
    if key.rows() != value.rows() {
        return Err(Error::ShapeMismatch {
            what: "multi-head attention: value",
            expected: (key.rows(), value.cols()),
            found: value.shape(),
        });
    }
    project_with::<B, T>(
        p,
        query,
        key,
        value,
        buf.q.reborrow(),
        buf.k.reborrow(),
        buf.v.reborrow(),
    )?;
    gqa_views_with::<B, T>(
        buf.q.as_ref(),
        &[HeadsKv::packed(
            buf.k.as_ref(),
            buf.v.as_ref(),
            KeyPositions::Range(0),
        )],
        p.heads,
        p.kv_heads,
        buf.ctx.reborrow(),
        buf.scores,
        weights,
        opts,
    )?;
    linear_views_with::<B, T>(buf.ctx.as_ref(), p.w_o, p.b_o, out)
}

/// Caller-owned scratch of attention with projections: `NQ` queries over `NK`
/// projected keys, `H` query heads of q/k width `DK` and v width `DV`, `KVH`
/// key/value heads (default `H`) and `S` score columns (default `NK`). Holds
/// the projected q `(NQ, H, DK)`, k `(NK, KVH, DK)`, v `(NK, KVH, DV)`, the
/// concatenated heads `ctx` `(NQ, H, DV)` and the attention weights `(NQ, S)`.
/// `const fn new()`; its size is [`MhaScratch::BYTES`]. The fields are public
/// so the decoder's pieces can be run one by one.
///
/// A decoder step uses it as [`DecoderScratch`](super::DecoderScratch).
#[derive(Clone, Debug)]
pub struct MhaScratch<
    T,
    const NQ: usize,
    const NK: usize,
    const H: usize,
    const DK: usize,
    const DV: usize,
    const KVH: usize = H,
    const S: usize = NK,
> {
    /// Queries `(NQ, H, DK)`.
    pub q: [[[T; DK]; H]; NQ],
    /// Keys `(NK, KVH, DK)`.
    pub k: [[[T; DK]; KVH]; NK],
    /// Values `(NK, KVH, DV)`.
    pub v: [[[T; DV]; KVH]; NK],
    /// Head outputs `(NQ, H, DV)`.
    pub ctx: [[[T; DV]; H]; NQ],
    /// Attention weights `(NQ, S)`.
    pub scores: [[T; S]; NQ],
}

impl<
    T: Real,
    const NQ: usize,
    const NK: usize,
    const H: usize,
    const DK: usize,
    const DV: usize,
    const KVH: usize,
    const S: usize,
> MhaScratch<T, NQ, NK, H, DK, DV, KVH, S>
{
    /// Size in bytes.
    pub const BYTES: usize = core::mem::size_of::<Self>();

    /// Zeroed scratch.
    pub const fn new() -> Self {
        Self {
            q: [[[T::ZERO; DK]; H]; NQ],
            k: [[[T::ZERO; DK]; KVH]; NK],
            v: [[[T::ZERO; DV]; KVH]; NK],
            ctx: [[[T::ZERO; DV]; H]; NQ],
            scores: [[T::ZERO; S]; NQ],
        }
    }

    /// The attention weights of the last head computed, `(NQ, S)` (for a
    /// layer without a cache, `S = NK`).
    pub fn last_head_weights(&self) -> &[[T; S]; NQ] {
        &self.scores
    }

    pub(crate) fn buffers(&mut self) -> Result<MhaBuffers<'_, T>> {
        Ok(MhaBuffers {
            q: nested_mut(&mut self.q)?,
            k: nested_mut(&mut self.k)?,
            v: nested_mut(&mut self.v)?,
            ctx: nested_mut(&mut self.ctx)?,
            scores: self.scores.as_flattened_mut(),
        })
    }
}

impl<
    T: Real,
    const NQ: usize,
    const NK: usize,
    const H: usize,
    const DK: usize,
    const DV: usize,
    const KVH: usize,
    const S: usize,
> Default for MhaScratch<T, NQ, NK, H, DK, DV, KVH, S>
{
    fn default() -> Self {
        Self::new()
    }
}

/// The weights of attention with projections (`(OUT, IN)` as nested arrays;
/// biases optional): `H` query heads and `KVH` key/value heads (default `H`),
/// query/key input width `DQK_IN`, value input width `DV_IN`, per-head widths
/// `DK` (q/k) and `DV` (v), output width `DO`. A decoder's weights are
/// [`DecoderWeights`](super::DecoderWeights).
#[derive(Clone, Copy, Debug)]
pub struct MhaWeights<
    'a,
    T,
    const H: usize,
    const DQK_IN: usize,
    const DV_IN: usize,
    const DK: usize,
    const DV: usize,
    const DO: usize,
    const KVH: usize = H,
> {
    /// `fc_q`: `(H·DK, DQK_IN)`.
    pub w_q: &'a [[[T; DQK_IN]; DK]; H],
    /// `fc_q` bias.
    pub b_q: Option<&'a [[T; DK]; H]>,
    /// `fc_k`: `(KVH·DK, DQK_IN)`.
    pub w_k: &'a [[[T; DQK_IN]; DK]; KVH],
    /// `fc_k` bias.
    pub b_k: Option<&'a [[T; DK]; KVH]>,
    /// `fc_v`: `(KVH·DV, DV_IN)`.
    pub w_v: &'a [[[T; DV_IN]; DV]; KVH],
    /// `fc_v` bias.
    pub b_v: Option<&'a [[T; DV]; KVH]>,
    /// `fc_o`: `(DO, H·DV)`.
    pub w_o: &'a [[[T; DV]; H]; DO],
    /// `fc_o` bias.
    pub b_o: Option<&'a [T; DO]>,
}

impl<
    'a,
    T,
    const H: usize,
    const DQK_IN: usize,
    const DV_IN: usize,
    const DK: usize,
    const DV: usize,
    const DO: usize,
    const KVH: usize,
> MhaWeights<'a, T, H, DQK_IN, DV_IN, DK, DV, DO, KVH>
{
    /// The parameters as views.
    pub fn params(&self) -> Result<MhaParams<'a, T>> {
        Ok(MhaParams {
            heads: H,
            kv_heads: KVH,
            w_q: stacked(self.w_q)?,
            b_q: self.b_q.map(|b| b.as_flattened()),
            w_k: stacked(self.w_k)?,
            b_k: self.b_k.map(|b| b.as_flattened()),
            w_v: stacked(self.w_v)?,
            b_v: self.b_v.map(|b| b.as_flattened()),
            w_o: nested(self.w_o)?,
            b_o: self.b_o.map(|b| &b[..]),
        })
    }
}

/// General multi-head attention (the from-scratch `MultiHeadAttention` with
/// `fc_q`, `fc_k`, `fc_v`, per-head attention, concat, `fc_o`), every width
/// independent; weights held by reference (flash, heap or owned elsewhere).
///
/// ```
/// use constml::attention::{MultiHeadAttention, MhaWeights, MhaScratch, AttnOptions, WeightsOut};
/// // 2 heads, inputs of width 3 (q/k) and 2 (v), per-head widths 2 (q/k) and 1 (v), output 4.
/// let w_q = [[[0.1f32; 3]; 2]; 2];
/// let w_v = [[[0.5f32; 2]; 1]; 2];
/// let w_o = [[[1.0f32; 1]; 2]; 4];
/// let mha = MultiHeadAttention::<f32, 2, 3, 2, 2, 1, 4>::new(MhaWeights {
///     w_q: &w_q, b_q: None, w_k: &w_q, b_k: None, w_v: &w_v, b_v: None, w_o: &w_o, b_o: None,
/// });
/// let (q, k, v) = ([[1.0f32; 3]; 2], [[1.0f32; 3]; 5], [[2.0f32; 2]; 5]);
/// let mut out = [[0.0f32; 4]; 2];
/// let mut scratch = MhaScratch::new();
/// mha.forward(&q, &k, &v, &mut out, &mut scratch, WeightsOut::None, &AttnOptions::new())?;
/// assert!((out[0][0] - 4.0).abs() < 1e-6); // each head outputs 0.5·(2 + 2) = 2; W_o sums them
/// # Ok::<(), constml::Error>(())
/// ```
#[derive(Clone, Copy, Debug)]
pub struct MultiHeadAttention<
    'a,
    T,
    const H: usize,
    const DQK_IN: usize,
    const DV_IN: usize,
    const DK: usize,
    const DV: usize,
    const DO: usize,
    B = Simd,
> {
    w: MhaWeights<'a, T, H, DQK_IN, DV_IN, DK, DV, DO>,
    _backend: PhantomData<B>,
}

impl<
    'a,
    T: Real,
    const H: usize,
    const DQK_IN: usize,
    const DV_IN: usize,
    const DK: usize,
    const DV: usize,
    const DO: usize,
    B: Backend,
> MultiHeadAttention<'a, T, H, DQK_IN, DV_IN, DK, DV, DO, B>
{
    /// A layer over these weights (`H ≥ 1`, checked at compile time).
    pub fn new(w: MhaWeights<'a, T, H, DQK_IN, DV_IN, DK, DV, DO>) -> Self {
        const { assert!(H > 0, "multi-head attention: H must be at least 1") };
        Self {
            w,
            _backend: PhantomData,
        }
    }

    /// The weights.
    pub fn weights(&self) -> &MhaWeights<'a, T, H, DQK_IN, DV_IN, DK, DV, DO> {
        &self.w
    }

    /// The parameters as views.
    pub fn params(&self) -> Result<MhaParams<'a, T>> {
        self.w.params()
    }

    /// Forward pass: query `(NQ, DQK_IN)`, key `(NK, DQK_IN)`, value
    /// `(NK, DV_IN)` → `out` `(NQ, DO)`. Masks, scale and hooks come from `opts`
    /// (keys sit at positions `0..NK`); `weights` optionally receives per-head
    /// `(H, NQ, NK)` or averaged `(NQ, NK)` weights.
    #[allow(clippy::too_many_arguments)]
    pub fn forward<const NQ: usize, const NK: usize>(
        &self,
        query: &[[T; DQK_IN]; NQ],
        key: &[[T; DQK_IN]; NK],
        value: &[[T; DV_IN]; NK],
        out: &mut [[T; DO]; NQ],
        scratch: &mut MhaScratch<T, NQ, NK, H, DK, DV>,
        weights: WeightsOut<'_, T>,
        opts: &AttnOptions<'_, T>,
    ) -> Result<()> {
        mha_views_with::<B, T>(
            &self.params()?,
            MatRef::from_array(query),
            MatRef::from_array(key),
            MatRef::from_array(value),
            MatMut::from_array(out),
            scratch.buffers()?,
            weights,
            opts,
        )
    }
}

/// The weights of PyTorch's `nn.MultiheadAttention` with `E = embed_dim`
/// (`kdim = vdim = E`): packed in-projection `(3E, E)` in q, k, v order, as
/// `[[[T; E]; E]; 3]`, and the output projection.
#[derive(Clone, Copy, Debug)]
pub struct PackedMhaWeights<'a, T, const E: usize> {
    /// `in_proj_weight` `(3E, E)`.
    pub in_proj_weight: &'a [[[T; E]; E]; 3],
    /// `in_proj_bias` `3E`.
    pub in_proj_bias: Option<&'a [[T; E]; 3]>,
    /// `out_proj.weight` `(E, E)`.
    pub out_proj_weight: &'a [[T; E]; E],
    /// `out_proj.bias` `E`.
    pub out_proj_bias: Option<&'a [T; E]>,
}

/// PyTorch's `nn.MultiheadAttention` (`batch_first`, unbatched per call,
/// `kdim = vdim = embed_dim`, no dropout): the packed special case of
/// [`MultiHeadAttention`] with `E = H·HD` (checked at compile time). Head `h`
/// uses columns `h·HD .. (h+1)·HD` of the projected q, k, v.
///
/// Masks follow PyTorch's polarity: `key_padding_mask` is a *block* mask
/// (`true` = ignore that key); a boolean `attn_mask` goes in `opts` as
/// [`AttnOptions::block`], a float one as [`AttnOptions::bias`]. Weights: per
/// head (`average_attn_weights=False`) or averaged over heads (`True`).
///
/// ```compile_fail,E0080
/// use constml::attention::{PackedMultiheadAttention, PackedMhaWeights};
/// let w = [[[0.0f32; 6]; 6]; 3];
/// let o = [[0.0f32; 6]; 6];
/// // 6 ≠ 4 heads × 2: rejected at compile time.
/// let m = PackedMultiheadAttention::<f32, 6, 4, 2>::new(PackedMhaWeights {
///     in_proj_weight: &w, in_proj_bias: None, out_proj_weight: &o, out_proj_bias: None,
/// });
/// ```
#[derive(Clone, Copy, Debug)]
pub struct PackedMultiheadAttention<
    'a,
    T,
    const E: usize,
    const H: usize,
    const HD: usize,
    B = Simd,
> {
    w: PackedMhaWeights<'a, T, E>,
    _backend: PhantomData<B>,
}

impl<'a, T: Real, const E: usize, const H: usize, const HD: usize, B: Backend>
    PackedMultiheadAttention<'a, T, E, H, HD, B>
{
    /// A layer over these weights; `E == H·HD` and `H ≥ 1` are checked at compile time.
    pub fn new(w: PackedMhaWeights<'a, T, E>) -> Self {
        const {
            assert!(H > 0, "nn.MultiheadAttention: num_heads must be at least 1");
            assert!(
                E == H * HD,
                "nn.MultiheadAttention: embed_dim must equal num_heads · head_dim"
            );
        };
        Self {
            w,
            _backend: PhantomData,
        }
    }

    /// The parameters as views.
    pub fn params(&self) -> MhaParams<'a, T> {
        let [w_q, w_k, w_v] = self.w.in_proj_weight;
        let b = self.w.in_proj_bias;
        let pick = |i: usize| b.and_then(|b| b.get(i)).map(|r| &r[..]);
        MhaParams {
            heads: H,
            kv_heads: H,
            w_q: MatRef::from_array(w_q),
            b_q: pick(0),
            w_k: MatRef::from_array(w_k),
            b_k: pick(1),
            w_v: MatRef::from_array(w_v),
            b_v: pick(2),
            w_o: MatRef::from_array(self.w.out_proj_weight),
            b_o: self.w.out_proj_bias.map(|b| &b[..]),
        }
    }

    /// Forward pass: query `(L, E)`, key and value `(S, E)` → `out` `(L, E)`.
    /// `key_padding_mask` (block: `true` = ignore) replaces `opts.key_mask` when
    /// given.
    #[allow(clippy::too_many_arguments)]
    pub fn forward<const L: usize, const S: usize>(
        &self,
        query: &[[T; E]; L],
        key: &[[T; E]; S],
        value: &[[T; E]; S],
        key_padding_mask: Option<&[bool; S]>,
        out: &mut [[T; E]; L],
        scratch: &mut MhaScratch<T, L, S, H, HD, HD>,
        weights: WeightsOut<'_, T>,
        opts: &AttnOptions<'_, T>,
    ) -> Result<()> {
        let mut o = *opts;
        if let Some(m) = key_padding_mask {
            o = o.key_block(m);
        }
        mha_views_with::<B, T>(
            &self.params(),
            MatRef::from_array(query),
            MatRef::from_array(key),
            MatRef::from_array(value),
            MatMut::from_array(out),
            scratch.buffers()?,
            weights,
            &o,
        )
    }
}

#[cfg(feature = "std")]
mod dynamic {
    use super::*;
    use crate::attention::gqa::{group_size, head_width};
    use crate::attention::sdpa::sdpa_scratch_len;
    use crate::matrix::Matrix;
    use crate::matrix::zeros_vec;
    use std::vec::Vec;

    /// The weights of attention with projections, owned, with runtime shapes
    /// (feature `std`): the `std` counterpart of [`MhaWeights`], used by
    /// [`MultiHeadAttentionDyn`] and
    /// [`CausalSelfAttentionDyn`](crate::attention::CausalSelfAttentionDyn).
    /// Shapes are checked at each call.
    #[derive(Clone, Debug)]
    pub struct MhaWeightsDyn<T> {
        /// Number of query heads `H`.
        pub heads: usize,
        /// Number of key/value heads (`heads` for multi-head attention).
        pub kv_heads: usize,
        /// Query projection `(H·DK, DQK_IN)`.
        pub w_q: Matrix<T>,
        /// Query bias `H·DK`.
        pub b_q: Option<Vec<T>>,
        /// Key projection `(KVH·DK, DQK_IN)`.
        pub w_k: Matrix<T>,
        /// Key bias `KVH·DK`.
        pub b_k: Option<Vec<T>>,
        /// Value projection `(KVH·DV, DV_IN)`.
        pub w_v: Matrix<T>,
        /// Value bias `KVH·DV`.
        pub b_v: Option<Vec<T>>,
        /// Output projection `(DO, H·DV)`.
        pub w_o: Matrix<T>,
        /// Output bias `DO`.
        pub b_o: Option<Vec<T>>,
    }

    impl<T: Real> MhaWeightsDyn<T> {
        /// `nn.MultiheadAttention`'s packed weights: `in_proj_weight` `(3E, E)`
        /// (q, k, v order), `in_proj_bias` `3E`, `out_proj` `(E, E)` and `E`;
        /// `heads` must divide `E`.
        pub fn from_packed(
            heads: usize,
            in_proj_weight: Matrix<T>,
            in_proj_bias: Option<Vec<T>>,
            out_proj_weight: Matrix<T>,
            out_proj_bias: Option<Vec<T>>,
        ) -> Result<Self> {
            let (r, e) = in_proj_weight.shape();
            if r != e.saturating_mul(3) {
                return Err(Error::ShapeMismatch {
                    what: "nn.MultiheadAttention: in_proj_weight",
                    expected: (e.saturating_mul(3), e),
                    found: (r, e),
                });
            }
            head_width("nn.MultiheadAttention: embed_dim", e, heads)?;
            if let Some(b) = &in_proj_bias {
                crate::error::check_len("nn.MultiheadAttention: in_proj_bias", r, b.len())?;
            }
            // (3E, E) is allocated, so E·E and 3·E cannot overflow.
            let n = e * e;
            let part = |i: usize| -> Result<Matrix<T>> {
                let src = in_proj_weight.as_slice().get(i * n..(i + 1) * n).ok_or(
                    Error::BufferTooSmall {
                        what: "nn.MultiheadAttention: in_proj_weight",
                        needed: 3 * n,
                        found: in_proj_weight.as_slice().len(),
                    },
                )?;
                Matrix::from_vec(e, e, src.to_vec())
            };
            let bias = |i: usize| {
                in_proj_bias
                    .as_ref()
                    .and_then(|b| b.get(i * e..(i + 1) * e))
                    .map(|s| s.to_vec())
            };
            Ok(Self {
                heads,
                kv_heads: heads,
                w_q: part(0)?,
                b_q: bias(0),
                w_k: part(1)?,
                b_k: bias(1),
                w_v: part(2)?,
                b_v: bias(2),
                w_o: out_proj_weight,
                b_o: out_proj_bias,
            })
        }

        /// The parameters as views.
        pub fn params(&self) -> MhaParams<'_, T> {
            MhaParams {
                heads: self.heads,
                kv_heads: self.kv_heads,
                w_q: self.w_q.view(),
                b_q: self.b_q.as_deref(),
                w_k: self.w_k.view(),
                b_k: self.b_k.as_deref(),
                w_v: self.w_v.view(),
                b_v: self.b_v.as_deref(),
                w_o: self.w_o.view(),
                b_o: self.b_o.as_deref(),
            }
        }

        /// Buffers for `nq` queries over `nk` projected keys with `scores`
        /// score elements.
        pub(crate) fn buffers(
            &self,
            nq: usize,
            nk: usize,
            scores: usize,
        ) -> Result<OwnedBuffers<T>> {
            let group = group_size(self.heads, self.kv_heads)?;
            let ctx = self
                .w_v
                .rows()
                .checked_mul(group)
                .ok_or(Error::InvalidParameter {
                    what: "multi-head attention: heads",
                    reason: "H·DV overflows usize",
                })?;
            let cols = [self.w_q.rows(), self.w_k.rows(), self.w_v.rows(), ctx];
            OwnedBuffers::new(nq, nk, cols, scores)
        }
    }

    /// Heap buffers behind an [`MhaBuffers`] (the `std` faces).
    pub(crate) struct OwnedBuffers<T> {
        q: Matrix<T>,
        k: Matrix<T>,
        v: Matrix<T>,
        ctx: Matrix<T>,
        scores: Vec<T>,
    }

    impl<T: Real> OwnedBuffers<T> {
        /// q `(nq, c0)`, k `(nk, c1)`, v `(nk, c2)`, ctx `(nq, c3)` and
        /// `scores` score elements.
        pub(crate) fn new(nq: usize, nk: usize, cols: [usize; 4], scores: usize) -> Result<Self> {
            let [cq, ck, cv, cc] = cols;
            Ok(Self {
                q: Matrix::zeros(nq, cq)?,
                k: Matrix::zeros(nk, ck)?,
                v: Matrix::zeros(nk, cv)?,
                ctx: Matrix::zeros(nq, cc)?,
                scores: zeros_vec("attention: scores", scores)?,
            })
        }

        pub(crate) fn views(&mut self) -> MhaBuffers<'_, T> {
            MhaBuffers {
                q: self.q.view_mut(),
                k: self.k.view_mut(),
                v: self.v.view_mut(),
                ctx: self.ctx.view_mut(),
                scores: &mut self.scores,
            }
        }
    }

    /// Multi-head attention with runtime shapes and owned weights (feature
    /// `std`); covers both the general form and `nn.MultiheadAttention`
    /// ([`from_packed`](Self::from_packed)), and grouped-query attention when
    /// `weights.kv_heads < weights.heads`.
    ///
    /// ```
    /// use constml::{Matrix, attention::{MultiHeadAttentionDyn, AttnOptions}};
    /// let e = 4;
    /// let mha = MultiHeadAttentionDyn::<f32>::from_packed(
    ///     2,
    ///     Matrix::zeros(3 * e, e)?, None,
    ///     Matrix::zeros(e, e)?, None,
    /// )?;
    /// let x = Matrix::zeros(3, e)?;
    /// assert_eq!(mha.forward(&x, &x, &x, &AttnOptions::new())?.shape(), (3, e));
    /// assert!(mha.forward(&x, &Matrix::zeros(3, 5)?, &x, &AttnOptions::new()).is_err());
    /// # Ok::<(), constml::Error>(())
    /// ```
    #[derive(Clone, Debug)]
    pub struct MultiHeadAttentionDyn<T, B = Simd> {
        /// The weights.
        pub weights: MhaWeightsDyn<T>,
        _backend: PhantomData<B>,
    }

    impl<T: Real, B: Backend> MultiHeadAttentionDyn<T, B> {
        /// A layer over these weights; shapes are checked at each call.
        pub fn new(weights: MhaWeightsDyn<T>) -> Self {
            Self {
                weights,
                _backend: PhantomData,
            }
        }

        /// `nn.MultiheadAttention`'s packed weights; see
        /// [`MhaWeightsDyn::from_packed`].
        pub fn from_packed(
            heads: usize,
            in_proj_weight: Matrix<T>,
            in_proj_bias: Option<Vec<T>>,
            out_proj_weight: Matrix<T>,
            out_proj_bias: Option<Vec<T>>,
        ) -> Result<Self> {
            Ok(Self::new(MhaWeightsDyn::from_packed(
                heads,
                in_proj_weight,
                in_proj_bias,
                out_proj_weight,
                out_proj_bias,
            )?))
        }

        fn run(
            &self,
            query: &Matrix<T>,
            key: &Matrix<T>,
            value: &Matrix<T>,
            weights: WeightsOut<'_, T>,
            opts: &AttnOptions<'_, T>,
        ) -> Result<Matrix<T>> {
            let (nq, nk) = (query.rows(), key.rows());
            let w = &self.weights;
            let mut buf = w.buffers(nq, nk, sdpa_scratch_len(nq, nk))?;
            let mut out = Matrix::zeros(nq, w.w_o.rows())?;
            mha_views_with::<B, T>(
                &w.params(),
                query.view(),
                key.view(),
                value.view(),
                out.view_mut(),
                buf.views(),
                weights,
                opts,
            )?;
            Ok(out)
        }

        /// Forward pass: query `(NQ, ·)`, key and value `(NK, ·)` → `(NQ, DO)`.
        pub fn forward(
            &self,
            query: &Matrix<T>,
            key: &Matrix<T>,
            value: &Matrix<T>,
            opts: &AttnOptions<'_, T>,
        ) -> Result<Matrix<T>> {
            self.run(query, key, value, WeightsOut::None, opts)
        }

        /// Self-attention: `forward(x, x, x)`.
        pub fn forward_self(&self, x: &Matrix<T>, opts: &AttnOptions<'_, T>) -> Result<Matrix<T>> {
            self.run(x, x, x, WeightsOut::None, opts)
        }

        /// Forward pass that also returns the attention weights, per head
        /// (`H` matrices `(NQ, NK)`), averaged over heads (`(NQ, NK)`, as
        /// `nn.MultiheadAttention`'s `average_attn_weights=True`) or both,
        /// from one pass.
        ///
        /// ```
        /// use constml::{Matrix, attention::{AttnOptions, MhaWeightsDyn,
        ///     MultiHeadAttentionDyn, WeightsKind}};
        /// let eye = |n: usize| Matrix::from_vec(n, n, (0..n * n)
        ///     .map(|i| if i % (n + 1) == 0 { 1.0f32 } else { 0.0 }).collect());
        /// let w = MhaWeightsDyn { heads: 2, kv_heads: 2, w_q: eye(4)?, b_q: None,
        ///     w_k: eye(4)?, b_k: None, w_v: eye(4)?, b_v: None, w_o: eye(4)?, b_o: None };
        /// let mha = MultiHeadAttentionDyn::<f32>::new(w);
        /// let x = Matrix::from_vec(3, 4, (0..12).map(|i| i as f32 / 10.0).collect())?;
        /// let (out, w) = mha.forward_with_weights(&x, &x, &x, WeightsKind::Both,
        ///     &AttnOptions::new())?;
        /// let (per_head, avg) = (w.per_head.unwrap(), w.averaged.unwrap());
        /// assert_eq!((out.shape(), per_head.len(), avg.shape()), ((3, 4), 2, (3, 3)));
        /// let mean = (per_head[0].as_slice()[1] + per_head[1].as_slice()[1]) / 2.0;
        /// assert!((avg.as_slice()[1] - mean).abs() < 1e-7);
        /// # Ok::<(), constml::Error>(())
        /// ```
        pub fn forward_with_weights(
            &self,
            query: &Matrix<T>,
            key: &Matrix<T>,
            value: &Matrix<T>,
            kind: WeightsKind,
            opts: &AttnOptions<'_, T>,
        ) -> Result<(Matrix<T>, AttnWeightsDyn<T>)> {
            let (nq, nk) = (query.rows(), key.rows());
            let per = sdpa_scratch_len(nq, nk);
            let heads = self.weights.heads;
            if kind == WeightsKind::Averaged {
                // The kernel averages as it goes: no per-head buffer.
                let mut avg = Matrix::zeros(nq, nk)?;
                let wo = WeightsOut::Averaged(avg.as_mut_slice());
                let out = self.run(query, key, value, wo, opts)?;
                let weights = AttnWeightsDyn {
                    per_head: None,
                    averaged: Some(avg),
                };
                return Ok((out, weights));
            }
            let mut w = zeros_vec("attention weights", per.saturating_mul(heads))?;
            let out = self.run(query, key, value, WeightsOut::PerHead(&mut w), opts)?;
            // `w` holds `heads · per` elements, head `h` at `h · per`.
            let head = |h: usize| w.get(h * per..(h + 1) * per).unwrap_or(&[]);
            let averaged = if kind == WeightsKind::Both {
                // The same operations, in the same order, as the kernel's
                // `WeightsOut::Averaged`: head 0, plus each further head in
                // order, times 1/heads — so `Both` and `Averaged` agree bit
                // for bit.
                let mut avg = Matrix::from_vec(nq, nk, head(0).to_vec())?;
                for h in 1..heads {
                    B::raw_zip(avg.as_mut_slice(), head(h), false);
                }
                B::raw_affine(avg.as_mut_slice(), T::ONE / T::from_usize(heads), T::ZERO);
                Some(avg)
            } else {
                None
            };
            let per_head = (0..heads)
                .map(|h| Matrix::from_vec(nq, nk, head(h).to_vec()))
                .collect::<Result<Vec<_>>>()?;
            let per_head = Some(per_head);
            Ok((out, AttnWeightsDyn { per_head, averaged }))
        }
    }

    /// Which attention weights [`MultiHeadAttentionDyn::forward_with_weights`]
    /// returns.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum WeightsKind {
        /// One `(NQ, NK)` matrix per head.
        PerHead,
        /// Their mean over heads.
        Averaged,
        /// Both, from one pass.
        Both,
    }

    /// Attention weights of a runtime-face forward pass: the fields that the
    /// [`WeightsKind`] asked for are `Some`.
    #[derive(Clone, Debug, PartialEq)]
    pub struct AttnWeightsDyn<T> {
        /// Per head: `H` matrices `(NQ, NK)`, head `h` at index `h`.
        pub per_head: Option<Vec<Matrix<T>>>,
        /// Averaged over heads: `(NQ, NK)`.
        pub averaged: Option<Matrix<T>>,
    }
}

#[cfg(feature = "std")]
pub(crate) use dynamic::OwnedBuffers;
#[cfg(feature = "std")]
pub use dynamic::{AttnWeightsDyn, MhaWeightsDyn, MultiHeadAttentionDyn, WeightsKind};
