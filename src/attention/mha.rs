//! Multi-head attention with its own projections: the general from-scratch form
//! ([`MultiHeadAttention`]) and PyTorch's `nn.MultiheadAttention` as its packed
//! special case ([`PackedMultiheadAttention`]).
//!
//! The computation (the classic from-scratch exercise, generalised):
//!
//! ```text
//! Q = query·W_qᵀ + b_q      (NQ, H·DK)      query (NQ, DQK_IN)
//! K = key  ·W_kᵀ + b_k      (NK, H·DK)      key   (NK, DQK_IN)
//! V = value·W_vᵀ + b_v      (NK, H·DV)      value (NK, DV_IN)
//! head h: softmax(Q_h·K_hᵀ·scale + masks)·V_h   with Q_h = columns h·DK .. (h+1)·DK
//! out = concat_h(head h)·W_oᵀ + b_o   (NQ, DO)
//! ```
//!
//! Every width is independent: query/key input width `DQK_IN`, value input width
//! `DV_IN`, per-head q/k width `DK`, per-head v width `DV`, output width `DO`.
//! Weights are `(OUT, IN)` as in `nn.Linear`, stored as nested arrays because
//! stable Rust has no `[T; H * DK]`: `W_q: [[[T; DQK_IN]; DK]; H]` is the
//! `(H·DK, DQK_IN)` matrix, head `h` in rows `h·DK ..`.
//!
//! Faces: the layer structs (const shapes, caller-owned [`MhaScratch`]),
//! [`mha_views_with`] (runtime shapes on views, no allocation) and, with `std`,
//! [`MultiHeadAttentionDyn`].

use core::marker::PhantomData;

use super::gqa::{HeadsKv, WeightsOut, gqa_views_with, head_width};
use super::sdpa::{AttnOptions, KeyPositions};
use super::{linear_with, nested, nested_mut, stacked};
use crate::backend::{Backend, Simd};
use crate::error::{Error, Result};
use crate::mat::{MatMut, MatRef};
use crate::real::Real;

/// The parameters of a multi-head attention layer as views (runtime shapes).
#[derive(Clone, Copy, Debug)]
pub struct MhaParams<'a, T> {
    /// Number of heads `H`.
    pub heads: usize,
    /// Query projection `(H·DK, DQ_IN)`.
    pub w_q: MatRef<'a, T>,
    /// Query bias `H·DK`.
    pub b_q: Option<&'a [T]>,
    /// Key projection `(H·DK, DK_IN)`.
    pub w_k: MatRef<'a, T>,
    /// Key bias `H·DK`.
    pub b_k: Option<&'a [T]>,
    /// Value projection `(H·DV, DV_IN)`.
    pub w_v: MatRef<'a, T>,
    /// Value bias `H·DV`.
    pub b_v: Option<&'a [T]>,
    /// Output projection `(DO, H·DV)`.
    pub w_o: MatRef<'a, T>,
    /// Output bias `DO`.
    pub b_o: Option<&'a [T]>,
}

/// Caller-owned buffers of [`mha_views_with`] (views of any storage).
#[derive(Debug)]
pub struct MhaBuffers<'s, T> {
    /// Projected queries `(NQ, H·DK)`.
    pub q: MatMut<'s, T>,
    /// Projected keys `(NK, H·DK)`.
    pub k: MatMut<'s, T>,
    /// Projected values `(NK, H·DV)`.
    pub v: MatMut<'s, T>,
    /// Concatenated head outputs `(NQ, H·DV)`.
    pub ctx: MatMut<'s, T>,
    /// Attention weights of one head, at least `NQ·NK` elements.
    pub scores: &'s mut [T],
}

/// Multi-head attention on views with backend `B`: projects `query`, `key` and
/// `value`, attends per head (keys at positions `0..NK`; masks and hooks from
/// `opts`), concatenates and projects to `out` `(NQ, DO)`. All shapes are
/// checked; `weights` optionally receives per-head or averaged weights.
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
    head_width("multi-head attention: W_q rows", p.w_q.rows(), p.heads)?;
    head_width("multi-head attention: W_v rows", p.w_v.rows(), p.heads)?;
    linear_with::<B, T>(query, p.w_q, p.b_q, buf.q.reborrow())?;
    linear_with::<B, T>(key, p.w_k, p.b_k, buf.k.reborrow())?;
    linear_with::<B, T>(value, p.w_v, p.b_v, buf.v.reborrow())?;
    gqa_views_with::<B, T>(
        buf.q.as_ref(),
        &[HeadsKv::packed(
            buf.k.as_ref(),
            buf.v.as_ref(),
            KeyPositions::Range(0),
        )],
        p.heads,
        p.heads,
        buf.ctx.reborrow(),
        buf.scores,
        weights,
        opts,
    )?;
    linear_with::<B, T>(buf.ctx.as_ref(), p.w_o, p.b_o, out)
}

/// Caller-owned scratch of a multi-head attention layer with `NQ` queries, `NK`
/// keys, `H` heads of q/k width `DK` and v width `DV`: projected q, k, v, the
/// concatenated heads and one head's attention weights. `const fn new()`;
/// its size is [`MhaScratch::BYTES`].
#[derive(Clone, Debug)]
pub struct MhaScratch<
    T,
    const NQ: usize,
    const NK: usize,
    const H: usize,
    const DK: usize,
    const DV: usize,
> {
    q: [[[T; DK]; H]; NQ],
    k: [[[T; DK]; H]; NK],
    v: [[[T; DV]; H]; NK],
    ctx: [[[T; DV]; H]; NQ],
    scores: [[T; NK]; NQ],
}

impl<T: Real, const NQ: usize, const NK: usize, const H: usize, const DK: usize, const DV: usize>
    MhaScratch<T, NQ, NK, H, DK, DV>
{
    /// Size in bytes.
    pub const BYTES: usize = core::mem::size_of::<Self>();

    /// Zeroed scratch.
    pub const fn new() -> Self {
        Self {
            q: [[[T::ZERO; DK]; H]; NQ],
            k: [[[T::ZERO; DK]; H]; NK],
            v: [[[T::ZERO; DV]; H]; NK],
            ctx: [[[T::ZERO; DV]; H]; NQ],
            scores: [[T::ZERO; NK]; NQ],
        }
    }

    /// The attention weights of the last head computed, `(NQ, NK)`.
    pub fn last_head_weights(&self) -> &[[T; NK]; NQ] {
        &self.scores
    }

    fn buffers(&mut self) -> Result<MhaBuffers<'_, T>> {
        Ok(MhaBuffers {
            q: nested_mut(&mut self.q)?,
            k: nested_mut(&mut self.k)?,
            v: nested_mut(&mut self.v)?,
            ctx: nested_mut(&mut self.ctx)?,
            scores: self.scores.as_flattened_mut(),
        })
    }
}

impl<T: Real, const NQ: usize, const NK: usize, const H: usize, const DK: usize, const DV: usize>
    Default for MhaScratch<T, NQ, NK, H, DK, DV>
{
    fn default() -> Self {
        Self::new()
    }
}

/// The weights of a [`MultiHeadAttention`] layer (`(OUT, IN)` as nested arrays;
/// biases optional).
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
> {
    /// `fc_q`: `(H·DK, DQK_IN)`.
    pub w_q: &'a [[[T; DQK_IN]; DK]; H],
    /// `fc_q` bias.
    pub b_q: Option<&'a [[T; DK]; H]>,
    /// `fc_k`: `(H·DK, DQK_IN)`.
    pub w_k: &'a [[[T; DQK_IN]; DK]; H],
    /// `fc_k` bias.
    pub b_k: Option<&'a [[T; DK]; H]>,
    /// `fc_v`: `(H·DV, DV_IN)`.
    pub w_v: &'a [[[T; DV_IN]; DV]; H],
    /// `fc_v` bias.
    pub b_v: Option<&'a [[T; DV]; H]>,
    /// `fc_o`: `(DO, H·DV)`.
    pub w_o: &'a [[[T; DV]; H]; DO],
    /// `fc_o` bias.
    pub b_o: Option<&'a [T; DO]>,
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
        let w = &self.w;
        Ok(MhaParams {
            heads: H,
            w_q: stacked(w.w_q)?,
            b_q: w.b_q.map(|b| b.as_flattened()),
            w_k: stacked(w.w_k)?,
            b_k: w.b_k.map(|b| b.as_flattened()),
            w_v: stacked(w.w_v)?,
            b_v: w.b_v.map(|b| b.as_flattened()),
            w_o: nested(w.w_o)?,
            b_o: w.b_o.map(|b| &b[..]),
        })
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
/// ```compile_fail
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
    use crate::matrix::Matrix;
    use std::vec;
    use std::vec::Vec;

    /// Multi-head attention with runtime shapes and owned weights (feature
    /// `std`); covers both the general form and `nn.MultiheadAttention`
    /// ([`from_packed`](Self::from_packed)).
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
        /// Number of heads.
        pub heads: usize,
        /// Query projection `(H·DK, DQK_IN)` and bias.
        pub w_q: Matrix<T>,
        /// Query bias.
        pub b_q: Option<Vec<T>>,
        /// Key projection `(H·DK, DK_IN)`.
        pub w_k: Matrix<T>,
        /// Key bias.
        pub b_k: Option<Vec<T>>,
        /// Value projection `(H·DV, DV_IN)`.
        pub w_v: Matrix<T>,
        /// Value bias.
        pub b_v: Option<Vec<T>>,
        /// Output projection `(DO, H·DV)`.
        pub w_o: Matrix<T>,
        /// Output bias.
        pub b_o: Option<Vec<T>>,
        _backend: PhantomData<B>,
    }

    impl<T: Real, B: Backend> MultiHeadAttentionDyn<T, B> {
        /// The general form from separate projections; shapes are checked at
        /// each call.
        #[allow(clippy::too_many_arguments)]
        pub fn new(
            heads: usize,
            w_q: Matrix<T>,
            b_q: Option<Vec<T>>,
            w_k: Matrix<T>,
            b_k: Option<Vec<T>>,
            w_v: Matrix<T>,
            b_v: Option<Vec<T>>,
            w_o: Matrix<T>,
            b_o: Option<Vec<T>>,
        ) -> Self {
            Self {
                heads,
                w_q,
                b_q,
                w_k,
                b_k,
                w_v,
                b_v,
                w_o,
                b_o,
                _backend: PhantomData,
            }
        }

        /// `nn.MultiheadAttention`'s packed weights: `in_proj_weight` `(3E, E)`
        /// (q, k, v order), `in_proj_bias` `3E`, `out_proj` `(E, E)` and `E`.
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
            let part = |i: usize| -> Result<Matrix<T>> {
                let n = e * e;
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
            Ok(Self::new(
                heads,
                part(0)?,
                bias(0),
                part(1)?,
                bias(1),
                part(2)?,
                bias(2),
                out_proj_weight,
                out_proj_bias,
            ))
        }

        fn params(&self) -> MhaParams<'_, T> {
            MhaParams {
                heads: self.heads,
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

        fn run(
            &self,
            query: &Matrix<T>,
            key: &Matrix<T>,
            value: &Matrix<T>,
            weights: WeightsOut<'_, T>,
            opts: &AttnOptions<'_, T>,
        ) -> Result<Matrix<T>> {
            let (nq, nk) = (query.rows(), key.rows());
            let mut q = Matrix::zeros(nq, self.w_q.rows())?;
            let mut k = Matrix::zeros(nk, self.w_k.rows())?;
            let mut v = Matrix::zeros(nk, self.w_v.rows())?;
            let mut ctx = Matrix::zeros(nq, self.w_v.rows())?;
            let mut scores = vec![T::ZERO; super::super::sdpa::scratch_len(nq, nk)];
            let mut out = Matrix::zeros(nq, self.w_o.rows())?;
            mha_views_with::<B, T>(
                &self.params(),
                query.view(),
                key.view(),
                value.view(),
                out.view_mut(),
                MhaBuffers {
                    q: q.view_mut(),
                    k: k.view_mut(),
                    v: v.view_mut(),
                    ctx: ctx.view_mut(),
                    scores: &mut scores,
                },
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

        /// Forward pass that also returns the attention weights: averaged over
        /// heads `(NQ·NK)` when `average`, else per head `(H·NQ·NK)`.
        pub fn forward_with_weights(
            &self,
            query: &Matrix<T>,
            key: &Matrix<T>,
            value: &Matrix<T>,
            average: bool,
            opts: &AttnOptions<'_, T>,
        ) -> Result<(Matrix<T>, Vec<T>)> {
            let per = super::super::sdpa::scratch_len(query.rows(), key.rows());
            let mut w = vec![
                T::ZERO;
                if average {
                    per
                } else {
                    per.saturating_mul(self.heads)
                }
            ];
            let wo = if average {
                WeightsOut::Averaged(&mut w)
            } else {
                WeightsOut::PerHead(&mut w)
            };
            let out = self.run(query, key, value, wo, opts)?;
            Ok((out, w))
        }
    }
}

#[cfg(feature = "std")]
pub use dynamic::MultiHeadAttentionDyn;
