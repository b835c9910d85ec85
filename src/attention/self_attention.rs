//! Self-attention: q, k and v all projected from the same input.
//!
//! * [`SelfAttention`]: the layer (multi-head attention with `query = key =
//!   value = x`), optionally causal through [`AttnOptions::causal`].
//! * A decoder's causal self-attention over a KV cache, as public pieces
//!   (the seam between attention and models):
//!
//!   1. **project** x `(N, DM)` to q `(N, H·D)`, k and v `(N, KV_HEADS·D)`
//!      ([`CausalSelfAttention::project`], [`project_qkv_views_with`]);
//!   2. **rotate** q and k at their absolute positions through a [`Rotation`]
//!      hook (RoPE plugs in here, *before* k enters the cache)
//!      ([`rotate_qk`], [`rotate_heads`]);
//!   3. **append** k and v to the cache ([`KvStore::append_rows`],
//!      [`KvCache::append_chunk`]);
//!   4. **attend** over the cache ([`attend_cache`], [`attend_cache_views_with`]);
//!   5. **output projection** ([`CausalSelfAttention::out_proj`]).
//!
//!   [`CausalSelfAttention::forward`] composes them. It attends *before*
//!   appending, with the chunk passed as pending keys, so that a multi-token
//!   chunk (even one longer than a ring buffer) sees exactly its sliding
//!   windows; for one token per step both orders give the same result.
//!
//! Decoding one token at a time with the cache gives the same outputs as
//! recomputing causal attention over the whole sequence, without recomputing
//! earlier positions.

use core::marker::PhantomData;

use super::gqa::{WeightsOut, assert_heads, group_size, head_width};
use super::kv_cache::{KvCache, KvStore, attend_cache_views_with, attend_then_append_with};
use super::mha::{MhaBuffers, MhaParams, MhaScratch, MhaWeights, MultiHeadAttention, project_with};
use super::sdpa::AttnOptions;
use super::{nested, nested_mut};
use crate::backend::{Backend, Simd};
use crate::error::{Error, Result};
use crate::mat::{MatMut, MatRef};
use crate::nn::linear::{check_linear, linear_views_with};
use crate::real::Real;

/// A position-dependent rotation of q and k head vectors (RoPE and friends),
/// applied before keys enter the cache.
///
/// `rotate(pos, x)` rotates one head's vector `x` for absolute position `pos`;
/// a table-based encoding returns [`Error::OutOfRange`] past its table.
/// Implemented for closures `Fn(usize, &mut [T]) -> Result<()>` and by
/// [`NoRotation`].
pub trait Rotation<T> {
    /// Rotates one head's vector in place for absolute position `pos`.
    fn rotate(&self, pos: usize, x: &mut [T]) -> Result<()>;

    /// Rotates every head of every row of `x` `(N, heads·D)`, row `i` at
    /// absolute position `start + i`. The provided method calls
    /// [`rotate`](Rotation::rotate) once per head; an encoding whose
    /// coefficients depend only on the position (RoPE) overrides it to compute
    /// them once per row. The positions are checked before any row is
    /// rotated; an `Err` from [`rotate`](Rotation::rotate) itself stops the
    /// loop with the rows before it already rotated (the provided method
    /// cannot know in advance which positions a hook rejects).
    fn rotate_rows(&self, start: usize, mut x: MatMut<'_, T>, heads: usize) -> Result<()> {
        let d = head_width("rotate: columns", x.cols(), heads)?;
        if d == 0 {
            return Ok(());
        }
        if x.rows() > 0 {
            row_position(start, x.rows() - 1)?;
        }
        for i in 0..x.rows() {
            let pos = row_position(start, i)?;
            if let Some(row) = x.row_mut(i) {
                for h in row.chunks_exact_mut(d) {
                    self.rotate(pos, h)?;
                }
            }
        }
        Ok(())
    }
}

/// The absolute position of row `i` of a chunk starting at `start`.
#[inline]
pub(crate) fn row_position(start: usize, i: usize) -> Result<usize> {
    start.checked_add(i).ok_or(Error::InvalidParameter {
        what: "rotate: position",
        reason: "start + row overflows usize",
    })
}

impl<T, F: Fn(usize, &mut [T]) -> Result<()>> Rotation<T> for F {
    fn rotate(&self, pos: usize, x: &mut [T]) -> Result<()> {
        self(pos, x)
    }
}

/// The identity rotation (models with learned or no position encoding).
#[derive(Clone, Copy, Debug, Default)]
pub struct NoRotation;

impl<T> Rotation<T> for NoRotation {
    fn rotate(&self, _pos: usize, _x: &mut [T]) -> Result<()> {
        Ok(())
    }
}

/// Applies `rot` to every head of every row of `x` `(N, heads·D)`: row `i` at
/// absolute position `start + i` ([`Rotation::rotate_rows`]).
pub fn rotate_heads<T>(
    rot: &dyn Rotation<T>,
    start: usize,
    x: MatMut<'_, T>,
    heads: usize,
) -> Result<()> {
    rot.rotate_rows(start, x, heads)
}

/// Rotates q `(N, H, D)` and k `(N, KVH, D)` at positions `start ..` (const face
/// of [`rotate_heads`]).
pub fn rotate_qk<T, const N: usize, const H: usize, const KVH: usize, const D: usize>(
    rot: &dyn Rotation<T>,
    start: usize,
    q: &mut [[[T; D]; H]; N],
    k: &mut [[[T; D]; KVH]; N],
) -> Result<()> {
    rotate_heads(rot, start, nested_mut(q)?, H)?;
    rotate_heads(rot, start, nested_mut(k)?, KVH)
}

crate::simd_default!(project_qkv_views => project_qkv_views_with<T: Real>(p: &MhaParams<'_, T>, x: MatRef<'_, T>, q: MatMut<'_, T>, k: MatMut<'_, T>, v: MatMut<'_, T>) -> Result<()>);

/// Piece 1: q, k, v projections of `x` `(N, DM)` into `q` `(N, H·D)`, `k` and
/// `v` `(N, KV_HEADS·D)`.
pub fn project_qkv_views_with<B: Backend, T: Real>(
    p: &MhaParams<'_, T>,
    x: MatRef<'_, T>,
    q: MatMut<'_, T>,
    k: MatMut<'_, T>,
    v: MatMut<'_, T>,
) -> Result<()> {
    project_with::<B, T>(p, x, x, x, q, k, v)
}

crate::simd_default!(decoder_attention_views => decoder_attention_views_with<T: Real, C: KvStore<T>>(p: &MhaParams<'_, T>, x: MatRef<'_, T>, cache: &mut C, rot: &dyn Rotation<T>, buf: MhaBuffers<'_, T>, out: MatMut<'_, T>, opts: &AttnOptions<'_, T>) -> Result<()>);

/// The decoder block on views: project → rotate → attend over the cache (with
/// the chunk pending) → append → output projection. The chunk's first token sits
/// at the cache's next position. `out` is `(N, DM)`; `buf.scores` needs at least
/// `N · (held + N)` elements ([`attend_cache_scratch_len`](super::attend_cache_scratch_len)).
///
/// If the cache cannot take the chunk (bounded and full), nothing is changed
/// and [`Error::CacheFull`] is returned.
#[allow(clippy::too_many_arguments)]
pub fn decoder_attention_views_with<B: Backend, T: Real, C: KvStore<T>>(
    p: &MhaParams<'_, T>,
    x: MatRef<'_, T>,
    cache: &mut C,
    rot: &dyn Rotation<T>,
    mut buf: MhaBuffers<'_, T>,
    out: MatMut<'_, T>,
    opts: &AttnOptions<'_, T>,
) -> Result<()> {
    group_size(p.heads, p.kv_heads)?;
    // Before rotating: a full cache is `CacheFull`, not a rotation table's
    // `OutOfRange` for the positions past it.
    cache.check_append(x.rows())?;
    // Everything that can fail after the append is checked before it: an `Err`
    // must leave the cache as it was.
    check_linear(buf.ctx.shape(), p.w_o, p.b_o, out.shape())?;
    let start = cache.next_position();
    project_qkv_views_with::<B, T>(p, x, buf.q.reborrow(), buf.k.reborrow(), buf.v.reborrow())?;
    rotate_heads(rot, start, buf.q.reborrow(), p.heads)?;
    rotate_heads(rot, start, buf.k.reborrow(), p.kv_heads)?;
    attend_then_append_with::<B, T, C>(
        buf.q.as_ref(),
        buf.k.as_ref(),
        buf.v.as_ref(),
        (p.heads, p.kv_heads),
        cache,
        buf.ctx.reborrow(),
        buf.scores,
        WeightsOut::None,
        opts,
    )?;
    linear_views_with::<B, T>(buf.ctx.as_ref(), p.w_o, p.b_o, out)
}

/// Caller-owned scratch of a decoder attention step of `N` tokens with `H`
/// query heads, `KVH` kv heads of width `D`, and `S` score columns
/// (`S ≥ CAP + N` for a cache of `CAP` positions). For a decode step (`N = 1`)
/// of a grouped-query model, `S ≥ (H / KVH)·(CAP + 1)` lets the query heads
/// that share a kv head be computed together (faster, same results).
/// `const fn new()`; size [`MhaScratch::BYTES`]. The fields are public so the
/// pieces can be run one by one.
pub type DecoderScratch<
    T,
    const N: usize,
    const H: usize,
    const KVH: usize,
    const D: usize,
    const S: usize,
> = MhaScratch<T, N, N, H, D, D, KVH, S>;

/// Compile-time check that `S` score columns hold a cache of `CAP` positions
/// plus a chunk of `N` tokens (fires when a caller is instantiated).
#[inline(always)]
pub(crate) fn assert_scores_fit<const N: usize, const CAP: usize, const S: usize>() {
    const {
        assert!(
            S >= CAP + N,
            "attention: scratch needs S >= CAP + N score columns"
        )
    };
}

/// Keys and values `(N, KVH, D)` of a chunk not yet appended to the cache.
pub type PendingKv<'a, T, const N: usize, const KVH: usize, const D: usize> =
    (&'a [[[T; D]; KVH]; N], &'a [[[T; D]; KVH]; N]);

/// Piece 4, const face: attention of q `(N, H, D)` at positions `start ..` over
/// a cache, optionally with the chunk's not-yet-appended k/v as `pending`; see
/// [`attend_cache_views_with`]. `scores` needs `S ≥ held + pending` columns.
/// `H` must be a multiple of `KVH` (checked at compile time):
///
/// ```compile_fail,E0080
/// use constml::attention::{attend_cache, AttnOptions, KvCache, WeightsOut};
/// let cache = KvCache::<f32, 2, 4, 8>::new();
/// let q = [[[0.0f32; 4]; 3]; 1]; // H = 3 query heads over KVH = 2
/// let mut ctx = [[[0.0f32; 4]; 3]; 1];
/// let mut scores = [[0.0f32; 9]; 1];
/// let _ = attend_cache(&q, 0, &cache, None, &mut ctx, &mut scores, WeightsOut::None,
///                      &AttnOptions::new());
/// ```
#[allow(clippy::too_many_arguments)]
pub fn attend_cache_with<
    B: Backend,
    T: Real,
    const N: usize,
    const H: usize,
    const KVH: usize,
    const D: usize,
    const CAP: usize,
    const S: usize,
>(
    q: &[[[T; D]; H]; N],
    start: usize,
    cache: &KvCache<T, KVH, D, CAP>,
    pending: Option<PendingKv<'_, T, N, KVH, D>>,
    ctx: &mut [[[T; D]; H]; N],
    scores: &mut [[T; S]; N],
    weights: WeightsOut<'_, T>,
    opts: &AttnOptions<'_, T>,
) -> Result<()> {
    assert_heads::<H, KVH>();
    let pending = match pending {
        Some((k, v)) => Some((nested(k)?, nested(v)?)),
        None => None,
    };
    attend_cache_views_with::<B, T, _>(
        nested(q)?,
        start,
        H,
        cache,
        pending,
        nested_mut(ctx)?,
        scores.as_flattened_mut(),
        weights,
        opts,
    )
}

/// [`attend_cache_with`] with the [`Simd`] backend.
#[allow(clippy::too_many_arguments)]
pub fn attend_cache<
    T: Real,
    const N: usize,
    const H: usize,
    const KVH: usize,
    const D: usize,
    const CAP: usize,
    const S: usize,
>(
    q: &[[[T; D]; H]; N],
    start: usize,
    cache: &KvCache<T, KVH, D, CAP>,
    pending: Option<PendingKv<'_, T, N, KVH, D>>,
    ctx: &mut [[[T; D]; H]; N],
    scores: &mut [[T; S]; N],
    weights: WeightsOut<'_, T>,
    opts: &AttnOptions<'_, T>,
) -> Result<()> {
    attend_cache_with::<Simd, T, N, H, KVH, D, CAP, S>(
        q, start, cache, pending, ctx, scores, weights, opts,
    )
}

/// The weights of a [`CausalSelfAttention`] block, `(OUT, IN)` as nested
/// arrays: model width `DM`, `H` query heads, `KVH` kv heads of width `D` —
/// q `(H·D, DM)`, k and v `(KVH·D, DM)`, output `(DM, H·D)`, biases optional.
pub type DecoderWeights<'a, T, const DM: usize, const H: usize, const KVH: usize, const D: usize> =
    MhaWeights<'a, T, H, DM, DM, D, D, DM, KVH>;

/// A decoder's causal self-attention over a KV cache, grouped-query in general
/// (`KVH = H`: multi-head, `KVH = 1`: multi-query): model width `DM`, `H` query
/// heads, `KVH` kv heads, head width `D`. `H % KVH == 0` is checked at compile
/// time.
///
/// ```
/// use constml::attention::{CausalSelfAttention, DecoderWeights, DecoderScratch, KvCache, KvStore,
///     NoRotation, AttnOptions};
/// const DM: usize = 4;
/// let wq = [[[0.1f32; DM]; 2]; 2];
/// let wkv = [[[0.2f32; DM]; 2]; 1];
/// let wo = [[[0.3f32; 2]; 2]; DM];
/// let layer = CausalSelfAttention::<f32, DM, 2, 1, 2>::new(DecoderWeights {
///     w_q: &wq, b_q: None, w_k: &wkv, b_k: None, w_v: &wkv, b_v: None, w_o: &wo, b_o: None,
/// });
/// let mut cache = KvCache::<f32, 1, 2, 8>::new();
/// let mut scratch = DecoderScratch::<f32, 1, 2, 1, 2, 9>::new(); // S = CAP + N
/// let mut out = [[0.0f32; DM]];
/// for t in 0..3 {
///     layer.forward(&[[t as f32; DM]], &mut cache, &NoRotation, &mut scratch, &mut out, &AttnOptions::new())?;
/// }
/// assert_eq!(cache.next_position(), 3);
/// # Ok::<(), constml::Error>(())
/// ```
///
/// ```compile_fail,E0080
/// use constml::attention::{CausalSelfAttention, DecoderWeights};
/// let wq = [[[0.0f32; 4]; 2]; 3];
/// let wkv = [[[0.0f32; 4]; 2]; 2];
/// let wo = [[[0.0f32; 2]; 3]; 4];
/// // 3 query heads cannot share 2 kv heads.
/// let l = CausalSelfAttention::<f32, 4, 3, 2, 2>::new(DecoderWeights {
///     w_q: &wq, b_q: None, w_k: &wkv, b_k: None, w_v: &wkv, b_v: None, w_o: &wo, b_o: None,
/// });
/// ```
#[derive(Clone, Copy, Debug)]
pub struct CausalSelfAttention<
    'a,
    T,
    const DM: usize,
    const H: usize,
    const KVH: usize,
    const D: usize,
    B = Simd,
> {
    w: DecoderWeights<'a, T, DM, H, KVH, D>,
    _backend: PhantomData<B>,
}

impl<'a, T: Real, const DM: usize, const H: usize, const KVH: usize, const D: usize, B: Backend>
    CausalSelfAttention<'a, T, DM, H, KVH, D, B>
{
    /// A block over these weights.
    pub fn new(w: DecoderWeights<'a, T, DM, H, KVH, D>) -> Self {
        assert_heads::<H, KVH>();
        Self {
            w,
            _backend: PhantomData,
        }
    }

    /// The parameters as views.
    pub fn params(&self) -> Result<MhaParams<'a, T>> {
        self.w.params()
    }

    /// Piece 1: projects `x` `(N, DM)` to q `(N, H, D)`, k and v `(N, KVH, D)`.
    pub fn project<const N: usize>(
        &self,
        x: &[[T; DM]; N],
        q: &mut [[[T; D]; H]; N],
        k: &mut [[[T; D]; KVH]; N],
        v: &mut [[[T; D]; KVH]; N],
    ) -> Result<()> {
        project_qkv_views_with::<B, T>(
            &self.params()?,
            MatRef::from_array(x),
            nested_mut(q)?,
            nested_mut(k)?,
            nested_mut(v)?,
        )
    }

    /// Piece 5: output projection of the head outputs `(N, H, D)` to `(N, DM)`.
    pub fn out_proj<const N: usize>(
        &self,
        ctx: &[[[T; D]; H]; N],
        out: &mut [[T; DM]; N],
    ) -> Result<()> {
        let p = self.params()?;
        linear_views_with::<B, T>(nested(ctx)?, p.w_o, p.b_o, MatMut::from_array(out))
    }

    /// The composed block for a chunk of `N` tokens (a decode step when `N = 1`,
    /// a prefill otherwise) starting at the cache's next position; see
    /// [`decoder_attention_views_with`]. `S ≥ CAP + N` is checked at compile time:
    ///
    /// ```compile_fail,E0080
    /// use constml::attention::*;
    /// let wq = [[[0.0f32; 4]; 2]; 2];
    /// let wkv = [[[0.0f32; 4]; 2]; 1];
    /// let wo = [[[0.0f32; 2]; 2]; 4];
    /// let l = CausalSelfAttention::<f32, 4, 2, 1, 2>::new(DecoderWeights {
    ///     w_q: &wq, b_q: None, w_k: &wkv, b_k: None, w_v: &wkv, b_v: None, w_o: &wo, b_o: None,
    /// });
    /// let mut cache = KvCache::<f32, 1, 2, 8>::new();
    /// let mut s = DecoderScratch::<f32, 1, 2, 1, 2, 8>::new(); // S = 8 < CAP + N = 9
    /// let o = AttnOptions::new();
    /// let _ = l.forward(&[[0.0; 4]], &mut cache, &NoRotation, &mut s, &mut [[0.0; 4]], &o);
    /// ```
    pub fn forward<const N: usize, const CAP: usize, const S: usize>(
        &self,
        x: &[[T; DM]; N],
        cache: &mut KvCache<T, KVH, D, CAP>,
        rot: &dyn Rotation<T>,
        scratch: &mut DecoderScratch<T, N, H, KVH, D, S>,
        out: &mut [[T; DM]; N],
        opts: &AttnOptions<'_, T>,
    ) -> Result<()> {
        assert_scores_fit::<N, CAP, S>();
        decoder_attention_views_with::<B, T, _>(
            &self.params()?,
            MatRef::from_array(x),
            cache,
            rot,
            scratch.buffers()?,
            MatMut::from_array(out),
            opts,
        )
    }
}

/// Self-attention as a layer: multi-head attention with q, k and v all projected
/// from the same `x` `(N, DX)`; `H` heads of q/k width `DK` and v width `DV`,
/// output width `DO`. Causal when `opts` says so ([`AttnOptions::causal`]).
#[derive(Clone, Copy, Debug)]
pub struct SelfAttention<
    'a,
    T,
    const H: usize,
    const DX: usize,
    const DK: usize,
    const DV: usize,
    const DO: usize,
    B = Simd,
> {
    mha: MultiHeadAttention<'a, T, H, DX, DX, DK, DV, DO, B>,
}

impl<
    'a,
    T: Real,
    const H: usize,
    const DX: usize,
    const DK: usize,
    const DV: usize,
    const DO: usize,
    B: Backend,
> SelfAttention<'a, T, H, DX, DK, DV, DO, B>
{
    /// A layer over these weights (`fc_q`, `fc_k`, `fc_v` all read `x`).
    pub fn new(w: MhaWeights<'a, T, H, DX, DX, DK, DV, DO>) -> Self {
        Self {
            mha: MultiHeadAttention::new(w),
        }
    }

    /// Forward pass: `x` `(N, DX)` → `out` `(N, DO)`.
    pub fn forward<const N: usize>(
        &self,
        x: &[[T; DX]; N],
        out: &mut [[T; DO]; N],
        scratch: &mut MhaScratch<T, N, N, H, DK, DV>,
        weights: WeightsOut<'_, T>,
        opts: &AttnOptions<'_, T>,
    ) -> Result<()> {
        self.mha.forward(x, x, x, out, scratch, weights, opts)
    }
}

#[cfg(feature = "std")]
mod dynamic {
    use super::*;
    use crate::attention::gqa::gqa_scratch_len;
    use crate::attention::kv_cache::KvCacheDyn;
    use crate::attention::mha::MhaWeightsDyn;
    use crate::matrix::Matrix;

    /// A decoder's causal self-attention with runtime shapes and owned weights
    /// (feature `std`), over a [`KvCacheDyn`]. Same computation as
    /// [`CausalSelfAttention`].
    #[derive(Clone, Debug)]
    pub struct CausalSelfAttentionDyn<T, B = Simd> {
        /// The weights: q `(H·D, DM)`, k and v `(KVH·D, DM)`, output `(DM, H·D)`.
        pub weights: MhaWeightsDyn<T>,
        _backend: PhantomData<B>,
    }

    impl<T: Real, B: Backend> CausalSelfAttentionDyn<T, B> {
        /// A block over these weights; shapes are checked at each call.
        pub fn new(weights: MhaWeightsDyn<T>) -> Self {
            Self {
                weights,
                _backend: PhantomData,
            }
        }

        /// One chunk `x` `(N, DM)` through the block, appending to `cache`;
        /// returns `(N, DM)`.
        ///
        /// ```
        /// use constml::{Matrix, attention::*};
        /// let (dm, h, kvh, d) = (4, 2, 1, 2);
        /// let layer = CausalSelfAttentionDyn::<f32>::new(MhaWeightsDyn {
        ///     heads: h, kv_heads: kvh,
        ///     w_q: Matrix::zeros(h * d, dm)?, b_q: None,
        ///     w_k: Matrix::zeros(kvh * d, dm)?, b_k: None,
        ///     w_v: Matrix::zeros(kvh * d, dm)?, b_v: None,
        ///     w_o: Matrix::zeros(dm, h * d)?, b_o: None,
        /// });
        /// let mut cache = KvCacheDyn::new(kvh, d, 2, CachePolicy::Bounded)?;
        /// let x = Matrix::zeros(2, dm)?;
        /// layer.forward(&x, &mut cache, &NoRotation, &AttnOptions::new())?;
        /// assert_eq!(layer.forward(&x, &mut cache, &NoRotation, &AttnOptions::new()),
        ///            Err(constml::Error::CacheFull { capacity: 2 }));
        /// # Ok::<(), constml::Error>(())
        /// ```
        pub fn forward(
            &self,
            x: &Matrix<T>,
            cache: &mut KvCacheDyn<T>,
            rot: &dyn Rotation<T>,
            opts: &AttnOptions<'_, T>,
        ) -> Result<Matrix<T>> {
            let n = x.rows();
            let w = &self.weights;
            let cols = cache.capacity().saturating_add(n);
            let scores = gqa_scratch_len(n, cols, w.heads, w.kv_heads);
            let mut buf = w.buffers(n, n, scores)?;
            let mut out = Matrix::zeros(n, w.w_o.rows())?;
            decoder_attention_views_with::<B, T, _>(
                &w.params(),
                x.view(),
                cache,
                rot,
                buf.views(),
                out.view_mut(),
                opts,
            )?;
            Ok(out)
        }
    }
}

#[cfg(feature = "std")]
pub use dynamic::CausalSelfAttentionDyn;
