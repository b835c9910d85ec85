//! MosaicML MPT's multi-query attention layer (the classic MQA reference code,
//! `MultiQueryAttention` of llm-foundry), with an optional KV cache.
//!
//! ```text
//! qkv = x·W_qkvᵀ + b_qkv             (N, DM + 2·HD)   one fused projection
//! qkv = clamp(qkv, −clip, clip)      if clip_qkv
//! q, k, v = split(qkv, [DM, HD, HD])
//! q = LayerNorm_DM(q); k = LayerNorm_HD(k)   if qk_ln (biased variance, eps 1e-5)
//! per query head h (H = DM / HD), all sharing the single k/v head:
//!     softmax(q_h·kᵀ·softmax_scale + attn_bias, causal, key padding)·v
//! out = concat_h(·)·W_outᵀ + b_out
//! ```
//!
//! The fused width `QKV` is its own const parameter, tied to the others by
//! compile-time checks: `DM == H·HD` and `QKV == DM + 2·HD`.
//!
//! Options come through [`AttnOptions`]: `causal` (MPT's `is_causal`, aligned
//! bottom-right as MPT does), an additive bias (ALiBi-like: a [`ScoreBias`]
//! hook of `(head, query position, key position)` or a per-head bias matrix, as
//! MPT's `attn_bias`), and an *allow*-style key padding mask
//! ([`AttnOptions::key_allow`], MPT's `attention_mask`: `true` = real token).
//! The layer's `softmax_scale`, when set, overrides `opts.scale` (which
//! defaults to `1/√HD`).
//!
//! **Deviation from MPT:** constml gives a fully masked query row an output of
//! zeros (and zero weights); MPT fills masked scores with the dtype's minimum
//! instead of `−∞`, so such a row becomes a uniform average of all values.
//! Rows with at least one visible key are identical.
//!
//! [`ScoreBias`]: super::ScoreBias
//!
//! ```compile_fail,E0080
//! use constml::attention::{MptAttention, MptWeights, MptConfig};
//! let w = [[0.0f32; 8]; 11]; // should be 8 + 2·2 = 12 rows
//! let o = [[0.0f32; 8]; 8];
//! let m = MptAttention::<f32, 8, 4, 2, 11>::new(
//!     MptWeights { w_qkv: &w, b_qkv: None, w_out: &o, b_out: None, qk_ln: None },
//!     MptConfig::default(),
//! );
//! ```

use core::marker::PhantomData;

use super::gqa::{HeadsKv, WeightsOut, gqa_views_with};
use super::kv_cache::{KvCache, KvStore, attend_then_append_with};
use super::mha::MhaBuffers;
use super::sdpa::{AttnOptions, KeyPositions};
use super::self_attention::{DecoderScratch, assert_scores_fit};
use crate::backend::{Backend, Simd};
use crate::error::{Error, Result, check_len};
use crate::mat::{MatMut, MatRef};
use crate::nn::linear::{check_linear, linear_views_with};
use crate::norm::layer_norm::layer_norm_inplace_views_with;
use crate::real::Real;

/// The LayerNorm epsilon of MPT's q/k LayerNorm (PyTorch's default).
pub const MPT_LN_EPS: f64 = 1e-5;

/// Clamps every element of `x` to `[−c, c]` (NaN stays NaN).
fn clamp_rows<B: Backend, T: Real>(mut x: MatMut<'_, T>, c: T) {
    let (vc, vn) = (T::splat(c), T::splat(-c));
    for i in 0..x.rows() {
        B::raw_map(
            x.row_mut_or_empty(i),
            |v| {
                if v < -c {
                    -c
                } else if v > c {
                    c
                } else {
                    v
                }
            },
            |v| {
                let lo = T::select_lt(v, vn, vn, v);
                T::select_lt(vc, lo, vc, lo)
            },
        );
    }
}

/// The q/k LayerNorm parameters as slices (`q`: `DM`, `k`: `HD`).
#[derive(Clone, Copy, Debug)]
pub struct QkNormParams<'a, T> {
    /// `q_ln.weight`.
    pub q_weight: &'a [T],
    /// `q_ln.bias`.
    pub q_bias: &'a [T],
    /// `k_ln.weight`.
    pub k_weight: &'a [T],
    /// `k_ln.bias`.
    pub k_bias: &'a [T],
}

/// The parameters of an MPT attention layer as views (runtime shapes).
#[derive(Clone, Copy, Debug)]
pub struct MptParams<'a, T> {
    /// Query heads `H` (`DM = H·HD`).
    pub heads: usize,
    /// Fused projection `Wqkv` `(DM + 2·HD, DM)`.
    pub w_qkv: MatRef<'a, T>,
    /// Fused bias `DM + 2·HD`.
    pub b_qkv: Option<&'a [T]>,
    /// `out_proj` `(DM, DM)`.
    pub w_out: MatRef<'a, T>,
    /// `out_proj` bias.
    pub b_out: Option<&'a [T]>,
    /// Clamp of q, k, v to `±clip_qkv` (`clip_qkv ≥ 0`, else an `Err`).
    pub clip_qkv: Option<T>,
    /// Optional q/k LayerNorm.
    pub qk_ln: Option<QkNormParams<'a, T>>,
    /// Softmax scale; `None` = `1/√HD`.
    pub softmax_scale: Option<T>,
}

impl<T> MptParams<'_, T> {
    /// `(DM, HD)` from the shapes, checked.
    fn dims(&self) -> Result<(usize, usize)> {
        let (rows, dm) = self.w_qkv.shape();
        if self.heads == 0 || !dm.is_multiple_of(self.heads) {
            return Err(Error::InvalidParameter {
                what: "MPT attention: heads",
                reason: "d_model must be a positive multiple of n_heads",
            });
        }
        let hd = dm / self.heads;
        let want = dm.saturating_add(hd.saturating_mul(2));
        if rows != want {
            return Err(Error::ShapeMismatch {
                what: "MPT attention: Wqkv",
                expected: (want, dm),
                found: (rows, dm),
            });
        }
        Ok((dm, hd))
    }
}

crate::simd_default!(mpt_project_views => mpt_project_views_with<T: Real>(p: &MptParams<'_, T>, x: MatRef<'_, T>, q: MatMut<'_, T>, k: MatMut<'_, T>, v: MatMut<'_, T>) -> Result<()>);

/// MPT's projection step on views: fused `Wqkv`, clamp, split, q/k LayerNorm,
/// into q `(N, DM)`, k and v `(N, HD)`.
pub fn mpt_project_views_with<B: Backend, T: Real>(
    p: &MptParams<'_, T>,
    x: MatRef<'_, T>,
    mut q: MatMut<'_, T>,
    mut k: MatMut<'_, T>,
    mut v: MatMut<'_, T>,
) -> Result<()> {
    let (dm, hd) = p.dims()?;
    if let Some(c) = p.clip_qkv
        && (c < T::ZERO || c.is_nan())
    {
        return Err(Error::InvalidParameter {
            what: "MPT attention: clip_qkv",
            reason: "must be at least 0 (and not NaN)",
        });
    }
    if let Some(b) = p.b_qkv {
        check_len("MPT attention: Wqkv bias", dm + 2 * hd, b.len())?;
    }
    let bias = |a: usize, n: usize| p.b_qkv.and_then(|b| b.get(a..a + n));
    linear_views_with::<B, T>(x, p.w_qkv.row_range(0, dm)?, bias(0, dm), q.reborrow())?;
    linear_views_with::<B, T>(x, p.w_qkv.row_range(dm, hd)?, bias(dm, hd), k.reborrow())?;
    linear_views_with::<B, T>(
        x,
        p.w_qkv.row_range(dm + hd, hd)?,
        bias(dm + hd, hd),
        v.reborrow(),
    )?;
    if let Some(c) = p.clip_qkv {
        clamp_rows::<B, T>(q.reborrow(), c);
        clamp_rows::<B, T>(k.reborrow(), c);
        clamp_rows::<B, T>(v.reborrow(), c);
    }
    if let Some(ln) = p.qk_ln {
        layer_norm_inplace_views_with::<B, T>(
            q,
            Some(ln.q_weight),
            Some(ln.q_bias),
            T::from_f64(MPT_LN_EPS),
            None,
        )?;
        layer_norm_inplace_views_with::<B, T>(
            k,
            Some(ln.k_weight),
            Some(ln.k_bias),
            T::from_f64(MPT_LN_EPS),
            None,
        )?;
    }
    Ok(())
}

crate::simd_default!(mpt_forward_views => mpt_forward_views_with<T: Real, C: KvStore<T>>(p: &MptParams<'_, T>, x: MatRef<'_, T>, cache: Option<&mut C>, buf: MhaBuffers<'_, T>, out: MatMut<'_, T>, weights: WeightsOut<'_, T>, opts: &AttnOptions<'_, T>) -> Result<()>);

/// The MPT layer on views. With a `cache`, the chunk `x` `(N, DM)` sits at the
/// cache's next position, attends (always causally) over the held keys and
/// itself, and is appended (bounded and full: [`Error::CacheFull`], nothing
/// changed); key columns (key mask, bias) are the held keys oldest first, then
/// the chunk. Without one, the `N` tokens attend among themselves (positions
/// `0..N`; causal if `opts.causal`). `out` is `(N, DM)`; `buf.k`/`buf.v` are
/// `(N, HD)`.
#[allow(clippy::too_many_arguments)]
pub fn mpt_forward_views_with<B: Backend, T: Real, C: KvStore<T>>(
    p: &MptParams<'_, T>,
    x: MatRef<'_, T>,
    cache: Option<&mut C>,
    mut buf: MhaBuffers<'_, T>,
    out: MatMut<'_, T>,
    weights: WeightsOut<'_, T>,
    opts: &AttnOptions<'_, T>,
) -> Result<()> {
    let mut o = *opts;
    if p.softmax_scale.is_some() {
        o.scale = p.softmax_scale;
    }
    // The output projection is checked before the cache can change: an `Err`
    // must leave the cache as it was.
    check_linear(buf.ctx.shape(), p.w_out, p.b_out, out.shape())?;
    mpt_project_views_with::<B, T>(p, x, buf.q.reborrow(), buf.k.reborrow(), buf.v.reborrow())?;
    let (q, k, v) = (buf.q.as_ref(), buf.k.as_ref(), buf.v.as_ref());
    match cache {
        Some(cache) => attend_then_append_with::<B, T, C>(
            q,
            k,
            v,
            (p.heads, 1),
            cache,
            buf.ctx.reborrow(),
            buf.scores,
            weights,
            &o,
        )?,
        None => gqa_views_with::<B, T>(
            q,
            &[HeadsKv::packed(k, v, KeyPositions::Range(0))],
            p.heads,
            1,
            buf.ctx.reborrow(),
            buf.scores,
            weights,
            &o,
        )?,
    }
    linear_views_with::<B, T>(buf.ctx.as_ref(), p.w_out, p.b_out, out)
}

/// MPT's q/k LayerNorm parameters (`q_ln` over `DM`, `k_ln` over `HD`).
#[derive(Clone, Copy, Debug)]
pub struct MptQkNorm<'a, T, const DM: usize, const HD: usize> {
    /// `q_ln.weight`.
    pub q_weight: &'a [T; DM],
    /// `q_ln.bias`.
    pub q_bias: &'a [T; DM],
    /// `k_ln.weight`.
    pub k_weight: &'a [T; HD],
    /// `k_ln.bias`.
    pub k_bias: &'a [T; HD],
}

/// The weights of an [`MptAttention`] layer.
#[derive(Clone, Copy, Debug)]
pub struct MptWeights<'a, T, const DM: usize, const HD: usize, const QKV: usize> {
    /// `Wqkv.weight` `(DM + 2·HD, DM)`.
    pub w_qkv: &'a [[T; DM]; QKV],
    /// `Wqkv.bias`.
    pub b_qkv: Option<&'a [T; QKV]>,
    /// `out_proj.weight` `(DM, DM)`.
    pub w_out: &'a [[T; DM]; DM],
    /// `out_proj.bias`.
    pub b_out: Option<&'a [T; DM]>,
    /// `q_ln`/`k_ln` when `qk_ln` is on.
    pub qk_ln: Option<MptQkNorm<'a, T, DM, HD>>,
}

/// MPT's scalar settings.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct MptConfig<T> {
    /// Clamp q, k and v to `±clip_qkv` after the fused projection.
    pub clip_qkv: Option<T>,
    /// Softmax scale; `None` = `1/√HD`.
    pub softmax_scale: Option<T>,
}

/// MosaicML MPT's multi-query attention: `H` query heads of width `HD` sharing
/// one k/v head, `DM = H·HD`, fused projection width `QKV = DM + 2·HD` (both
/// checked at compile time). See the [module docs](self) for the computation and
/// the one documented deviation (fully masked rows).
#[derive(Clone, Copy, Debug)]
pub struct MptAttention<
    'a,
    T,
    const DM: usize,
    const H: usize,
    const HD: usize,
    const QKV: usize,
    B = Simd,
> {
    w: MptWeights<'a, T, DM, HD, QKV>,
    cfg: MptConfig<T>,
    _backend: PhantomData<B>,
}

impl<'a, T: Real, const DM: usize, const H: usize, const HD: usize, const QKV: usize, B: Backend>
    MptAttention<'a, T, DM, H, HD, QKV, B>
{
    /// A layer over these weights.
    pub fn new(w: MptWeights<'a, T, DM, HD, QKV>, cfg: MptConfig<T>) -> Self {
        const {
            assert!(H > 0, "MPT attention: n_heads must be at least 1");
            assert!(
                DM == H * HD,
                "MPT attention: d_model must equal n_heads · head_dim"
            );
            assert!(
                QKV == DM + 2 * HD,
                "MPT attention: Wqkv width must be d_model + 2·head_dim"
            );
        };
        Self {
            w,
            cfg,
            _backend: PhantomData,
        }
    }

    /// The parameters as views.
    pub fn params(&self) -> MptParams<'a, T> {
        let w = &self.w;
        MptParams {
            heads: H,
            w_qkv: MatRef::from_array(w.w_qkv),
            b_qkv: w.b_qkv.map(|b| &b[..]),
            w_out: MatRef::from_array(w.w_out),
            b_out: w.b_out.map(|b| &b[..]),
            clip_qkv: self.cfg.clip_qkv,
            qk_ln: w.qk_ln.map(|l| QkNormParams {
                q_weight: l.q_weight,
                q_bias: l.q_bias,
                k_weight: l.k_weight,
                k_bias: l.k_bias,
            }),
            softmax_scale: self.cfg.softmax_scale,
        }
    }

    /// Without a cache: `N` tokens `(N, DM)` attend among themselves (causal if
    /// `opts.causal`, as MPT's default `is_causal=True`).
    pub fn forward<const N: usize>(
        &self,
        x: &[[T; DM]; N],
        scratch: &mut DecoderScratch<T, N, H, 1, HD, N>,
        out: &mut [[T; DM]; N],
        weights: WeightsOut<'_, T>,
        opts: &AttnOptions<'_, T>,
    ) -> Result<()> {
        mpt_forward_views_with::<B, T, KvCache<T, 1, HD, 1>>(
            &self.params(),
            MatRef::from_array(x),
            None,
            scratch.buffers()?,
            MatMut::from_array(out),
            weights,
            opts,
        )
    }

    /// With a KV cache (MPT's `past_key_value`): the chunk attends causally over
    /// the held keys and itself, then is appended. `S ≥ CAP + N` is checked at
    /// compile time.
    #[allow(clippy::too_many_arguments)]
    pub fn forward_cached<const N: usize, const CAP: usize, const S: usize>(
        &self,
        x: &[[T; DM]; N],
        cache: &mut KvCache<T, 1, HD, CAP>,
        scratch: &mut DecoderScratch<T, N, H, 1, HD, S>,
        out: &mut [[T; DM]; N],
        weights: WeightsOut<'_, T>,
        opts: &AttnOptions<'_, T>,
    ) -> Result<()> {
        assert_scores_fit::<N, CAP, S>();
        mpt_forward_views_with::<B, T, _>(
            &self.params(),
            MatRef::from_array(x),
            Some(cache),
            scratch.buffers()?,
            MatMut::from_array(out),
            weights,
            opts,
        )
    }
}

#[cfg(feature = "std")]
mod dynamic {
    use super::*;
    use crate::attention::gqa::gqa_scratch_len;
    use crate::attention::kv_cache::KvCacheDyn;
    use crate::attention::mha::OwnedBuffers;
    use crate::matrix::Matrix;
    use std::vec::Vec;

    /// MPT's q/k LayerNorm parameters, owned (feature `std`).
    #[derive(Clone, Debug)]
    pub struct MptQkNormDyn<T> {
        /// `q_ln.weight` (`DM`).
        pub q_weight: Vec<T>,
        /// `q_ln.bias` (`DM`).
        pub q_bias: Vec<T>,
        /// `k_ln.weight` (`HD`).
        pub k_weight: Vec<T>,
        /// `k_ln.bias` (`HD`).
        pub k_bias: Vec<T>,
    }

    /// The MPT layer with runtime shapes and owned weights (feature `std`).
    #[derive(Clone, Debug)]
    pub struct MptAttentionDyn<T, B = Simd> {
        /// Query heads.
        pub heads: usize,
        /// `Wqkv.weight` `(DM + 2·HD, DM)`.
        pub w_qkv: Matrix<T>,
        /// `Wqkv.bias`.
        pub b_qkv: Option<Vec<T>>,
        /// `out_proj.weight` `(DM, DM)`.
        pub w_out: Matrix<T>,
        /// `out_proj.bias`.
        pub b_out: Option<Vec<T>>,
        /// `q_ln`/`k_ln` when `qk_ln`.
        pub qk_ln: Option<MptQkNormDyn<T>>,
        /// Clamp and softmax scale.
        pub config: MptConfig<T>,
        /// Backend marker.
        pub backend: PhantomData<B>,
    }

    impl<T: Real, B: Backend> MptAttentionDyn<T, B> {
        fn params(&self) -> MptParams<'_, T> {
            MptParams {
                heads: self.heads,
                w_qkv: self.w_qkv.view(),
                b_qkv: self.b_qkv.as_deref(),
                w_out: self.w_out.view(),
                b_out: self.b_out.as_deref(),
                clip_qkv: self.config.clip_qkv,
                qk_ln: self.qk_ln.as_ref().map(|l| QkNormParams {
                    q_weight: &l.q_weight,
                    q_bias: &l.q_bias,
                    k_weight: &l.k_weight,
                    k_bias: &l.k_bias,
                }),
                softmax_scale: self.config.softmax_scale,
            }
        }

        /// `x` `(N, DM)` → `(N, DM)`, with or without a cache (see
        /// [`mpt_forward_views_with`]).
        ///
        /// ```
        /// use constml::{Matrix, attention::*};
        /// use core::marker::PhantomData;
        /// let (dm, h) = (8, 4); // head_dim 2
        /// let mpt = MptAttentionDyn::<f64> {
        ///     heads: h, w_qkv: Matrix::zeros(dm + 4, dm)?, b_qkv: None,
        ///     w_out: Matrix::zeros(dm, dm)?, b_out: None, qk_ln: None,
        ///     config: MptConfig::default(), backend: PhantomData,
        /// };
        /// let x = Matrix::zeros(3, dm)?;
        /// let mut cache = KvCacheDyn::new(1, 2, 16, CachePolicy::Ring)?;
        /// assert_eq!(mpt.forward(&x, Some(&mut cache), &AttnOptions::new())?.shape(), (3, dm));
        /// assert_eq!(cache.next_position(), 3);
        /// assert!(mpt.forward(&Matrix::zeros(3, 7)?, None, &AttnOptions::new()).is_err());
        /// # Ok::<(), constml::Error>(())
        /// ```
        pub fn forward(
            &self,
            x: &Matrix<T>,
            cache: Option<&mut KvCacheDyn<T>>,
            opts: &AttnOptions<'_, T>,
        ) -> Result<Matrix<T>> {
            let p = self.params();
            let (dm, hd) = p.dims()?;
            let n = x.rows();
            let cols = n.saturating_add(cache.as_ref().map_or(0, |c| c.capacity()));
            let scores = gqa_scratch_len(n, cols, self.heads, 1);
            let mut buf = OwnedBuffers::new(n, n, [dm, hd, hd, dm], scores)?;
            let mut out = Matrix::zeros(n, dm)?;
            mpt_forward_views_with::<B, T, KvCacheDyn<T>>(
                &p,
                x.view(),
                cache,
                buf.views(),
                out.view_mut(),
                WeightsOut::None,
                opts,
            )?;
            Ok(out)
        }
    }
}

#[cfg(feature = "std")]
pub use dynamic::{MptAttentionDyn, MptQkNormDyn};
