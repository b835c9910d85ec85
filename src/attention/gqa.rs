//! Grouped-query attention over already-projected heads: one implementation with
//! `KV_HEADS` as a parameter — `KV_HEADS = 1` is multi-query attention (MQA),
//! `KV_HEADS = HEADS` is ordinary multi-head attention.
//!
//! Query head `h` reads kv head `h / (HEADS / KV_HEADS)` (PyTorch's
//! `repeat_interleave`, `enable_gqa=True` in `scaled_dot_product_attention`;
//! not tiling). Heads are packed along the columns: queries `(NQ, HEADS·DK)`,
//! keys `(NK, KV_HEADS·DK)`, values `(NK, KV_HEADS·DV)`, output
//! `(NQ, HEADS·DV)`, head `h` in columns `h·D .. (h+1)·D`. Each head runs
//! [`attend_views_with`]; the masks, bias and hooks of
//! [`AttnOptions`] apply to every head (the hooks receive the head index).
//!
//! | face | function |
//! |---|---|
//! | const-generic | [`gqa`] / [`_with`](gqa_with) |
//! | views (no_std) | [`gqa_views`] / [`_with`](gqa_views_with), keys as [`HeadsKv`] runs |
//! | `std` | [`gqa_dyn`] / [`_with`](gqa_dyn_with) |
//!
//! ```
//! use constml::attention::{gqa, AttnOptions, WeightsOut};
//! // 4 query heads share 2 kv heads (heads 0, 1 → kv 0; heads 2, 3 → kv 1).
//! let q = [[[1.0f32, 0.0]; 4]; 1];
//! let k = [[[1.0f32, 0.0], [0.0, 1.0]]; 3];
//! let v = [[[1.0f32, 2.0], [3.0, 4.0]]; 3];
//! let mut out = [[[0.0f32; 2]; 4]; 1];
//! let mut scratch = [[0.0f32; 3]; 1];
//! gqa(&q, &k, &v, &mut out, &mut scratch, WeightsOut::None, &AttnOptions::new())?;
//! assert_eq!(out[0][0], [1.0, 2.0]); // every key of kv head 0 has the same value
//! assert_eq!(out[0][3], [3.0, 4.0]);
//! # Ok::<(), constml::Error>(())
//! ```
//!
//! `HEADS` must be a multiple of `KV_HEADS`, checked at compile time:
//!
//! ```compile_fail,E0080
//! use constml::attention::{gqa, AttnOptions, WeightsOut};
//! let q = [[[0.0f32; 2]; 3]; 1];
//! let k = [[[0.0f32; 2]; 2]; 1];
//! let mut out = [[[0.0f32; 2]; 3]; 1];
//! let mut s = [[0.0f32; 1]; 1];
//! // 3 query heads cannot share 2 kv heads.
//! gqa(&q, &k, &k, &mut out, &mut s, WeightsOut::None, &AttnOptions::new());
//! ```

use super::sdpa::{
    AttnOptions, KeyPositions, KvSegment, Rows, attend_rows_with, attend_views_with,
};
use super::{nested, nested_mut};
use crate::backend::{Backend, Simd};
use crate::error::{Error, Result, check_len};
use crate::mat::{MatMut, MatRef};
use crate::real::Real;

/// The largest number of key runs one attention call takes (two for the held
/// part of a ring buffer, one for the new tokens of a chunk, one spare).
pub const MAX_RUNS: usize = 4;

/// Where the attention weights of a multi-head call go.
#[derive(Debug, Default)]
pub enum WeightsOut<'a, T> {
    /// Not returned.
    #[default]
    None,
    /// Per head, `(HEADS, NQ, NK)` row-major: `HEADS·NQ·NK` elements.
    PerHead(&'a mut [T]),
    /// Averaged over the heads, `(NQ, NK)`: `NQ·NK` elements
    /// (`nn.MultiheadAttention`'s `average_attn_weights=True`).
    Averaged(&'a mut [T]),
}

#[derive(Clone, Copy, Debug)]
enum Layout {
    /// Head `g` in columns `g·D .. (g+1)·D`.
    Packed,
    /// Head `g` in rows `g·rows_per_head + first .. + len` of a `(KVH·rows, D)` store.
    HeadMajor {
        rows_per_head: usize,
        first: usize,
        len: usize,
    },
}

/// A run of keys and values for all kv heads, with the keys' absolute positions.
///
/// Two layouts: *packed* — keys `(n, KV_HEADS·DK)`, head `g` in columns
/// `g·DK ..` (what a projection produces) — and *head-major* — a
/// `(KV_HEADS·ROWS, D)` store with head `g` in rows `g·ROWS ..` (what a KV
/// cache holds), of which the run uses rows `first .. first + len`.
#[derive(Clone, Copy, Debug)]
pub struct HeadsKv<'a, T> {
    keys: MatRef<'a, T>,
    values: MatRef<'a, T>,
    layout: Layout,
    positions: KeyPositions<'a>,
}

impl<'a, T> HeadsKv<'a, T> {
    /// Packed keys `(n, KV_HEADS·DK)` and values `(n, KV_HEADS·DV)` at positions
    /// `positions` (usually `KeyPositions::Range(first)`).
    pub fn packed(keys: MatRef<'a, T>, values: MatRef<'a, T>, positions: KeyPositions<'a>) -> Self {
        Self {
            keys,
            values,
            layout: Layout::Packed,
            positions,
        }
    }

    /// Head-major stores `(KV_HEADS·rows_per_head, D)`; the run is rows
    /// `first .. first + len` of every head, at `positions`.
    pub fn head_major(
        keys: MatRef<'a, T>,
        values: MatRef<'a, T>,
        rows_per_head: usize,
        first: usize,
        len: usize,
        positions: KeyPositions<'a>,
    ) -> Self {
        Self {
            keys,
            values,
            layout: Layout::HeadMajor {
                rows_per_head,
                first,
                len,
            },
            positions,
        }
    }

    /// Number of keys in the run.
    pub fn len(&self) -> usize {
        match self.layout {
            Layout::Packed => self.keys.rows(),
            Layout::HeadMajor { len, .. } => len,
        }
    }

    /// `true` if the run holds no keys.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The single-head run of kv head `g` (of `kv_heads`), keys `(n, dk)` and
    /// values `(n, dv)`.
    pub fn head(
        &self,
        g: usize,
        kv_heads: usize,
        dk: usize,
        dv: usize,
    ) -> Result<KvSegment<'a, T>> {
        let (keys, values) = match self.layout {
            Layout::Packed => {
                let (n, kc) = self.keys.shape();
                if kc != kv_heads.saturating_mul(dk) {
                    return Err(Error::ShapeMismatch {
                        what: "attention: packed keys",
                        expected: (n, kv_heads.saturating_mul(dk)),
                        found: self.keys.shape(),
                    });
                }
                if self.values.shape() != (n, kv_heads.saturating_mul(dv)) {
                    return Err(Error::ShapeMismatch {
                        what: "attention: packed values",
                        expected: (n, kv_heads.saturating_mul(dv)),
                        found: self.values.shape(),
                    });
                }
                (
                    self.keys.col_range(g.saturating_mul(dk), dk)?,
                    self.values.col_range(g.saturating_mul(dv), dv)?,
                )
            }
            Layout::HeadMajor {
                rows_per_head,
                first,
                len,
            } => {
                let rows = kv_heads.saturating_mul(rows_per_head);
                if self.keys.shape() != (rows, dk) {
                    return Err(Error::ShapeMismatch {
                        what: "attention: head-major keys",
                        expected: (rows, dk),
                        found: self.keys.shape(),
                    });
                }
                if self.values.shape() != (rows, dv) {
                    return Err(Error::ShapeMismatch {
                        what: "attention: head-major values",
                        expected: (rows, dv),
                        found: self.values.shape(),
                    });
                }
                if first.saturating_add(len) > rows_per_head {
                    return Err(Error::OutOfRange {
                        what: "attention: head-major run",
                        index: first.saturating_add(len),
                        len: rows_per_head,
                    });
                }
                let r0 = g.saturating_mul(rows_per_head).saturating_add(first);
                (
                    self.keys.row_range(r0, len)?,
                    self.values.row_range(r0, len)?,
                )
            }
        };
        Ok(KvSegment {
            keys,
            values,
            positions: self.positions,
        })
    }
}

/// Scratch elements for `nq` queries over `nk` keys with `heads` query heads
/// and `kv_heads` kv heads. The minimum any call accepts is `nq·nk`; this size
/// is `nq·nk`, or `(heads / kv_heads)·nk` for a decode step (`nq = 1`), which
/// lets the query heads that share a kv head run as one matrix product (faster
/// for GQA and MQA decoding, same results).
pub const fn gqa_scratch_len(nq: usize, nk: usize, heads: usize, kv_heads: usize) -> usize {
    let group = match heads.checked_div(kv_heads) {
        Some(g) => g,
        None => 1,
    };
    let rows = if nq == 1 && group > nq { group } else { nq };
    rows.saturating_mul(nk)
}

/// Checks `heads`/`kv_heads` and returns the group size `heads / kv_heads`.
pub(crate) fn group_size(heads: usize, kv_heads: usize) -> Result<usize> {
    if heads == 0 || kv_heads == 0 {
        return Err(Error::InvalidParameter {
            what: "attention: heads",
            reason: "heads and kv_heads must be at least 1",
        });
    }
    if !heads.is_multiple_of(kv_heads) {
        return Err(Error::InvalidParameter {
            what: "attention: kv_heads",
            reason: "heads must be a multiple of kv_heads",
        });
    }
    Ok(heads / kv_heads)
}

/// Compile-time check of a const head configuration: `KVH ≥ 1` and
/// `H % KVH == 0` (fires when a caller is instantiated).
#[inline(always)]
pub(crate) fn assert_heads<const H: usize, const KVH: usize>() {
    const {
        assert!(KVH > 0, "attention: KV_HEADS must be at least 1");
        assert!(
            H.is_multiple_of(KVH),
            "attention: HEADS must be a multiple of KV_HEADS"
        );
    };
}

/// Per-head width of a packed `(N, heads·D)` matrix.
pub(crate) fn head_width(what: &'static str, cols: usize, heads: usize) -> Result<usize> {
    if heads == 0 || !cols.is_multiple_of(heads) {
        return Err(Error::InvalidParameter {
            what,
            reason: "columns must be a multiple of the number of heads",
        });
    }
    Ok(cols / heads)
}

/// Grouped-query attention on views with the [`Simd`] backend; see
/// [`gqa_views_with`].
#[allow(clippy::too_many_arguments)]
pub fn gqa_views<T: Real>(
    q: MatRef<'_, T>,
    kv: &[HeadsKv<'_, T>],
    heads: usize,
    kv_heads: usize,
    out: MatMut<'_, T>,
    scratch: &mut [T],
    weights: WeightsOut<'_, T>,
    opts: &AttnOptions<'_, T>,
) -> Result<()> {
    gqa_views_with::<Simd, T>(q, kv, heads, kv_heads, out, scratch, weights, opts)
}

/// Grouped-query attention on views: queries `q` `(NQ, heads·DK)`, keys and
/// values as up to [`MAX_RUNS`] runs `kv` (all runs' keys together form `NK`),
/// output `out` `(NQ, heads·DV)`. `scratch` needs at least `NQ·NK` elements
/// (see [`gqa_scratch_len`]: with `NQ = 1` and `(heads / kv_heads)·NK`
/// elements, the query heads of a group are computed together); its contents
/// afterwards are unspecified. `weights` optionally receives per-head or
/// head-averaged weights.
///
/// Query head `h` reads kv head `h / (heads / kv_heads)`.
#[allow(clippy::too_many_arguments)]
pub fn gqa_views_with<B: Backend, T: Real>(
    q: MatRef<'_, T>,
    kv: &[HeadsKv<'_, T>],
    heads: usize,
    kv_heads: usize,
    mut out: MatMut<'_, T>,
    scratch: &mut [T],
    mut weights: WeightsOut<'_, T>,
    opts: &AttnOptions<'_, T>,
) -> Result<()> {
    let group = group_size(heads, kv_heads)?;
    let dk = head_width("attention: query columns", q.cols(), heads)?;
    let dv = head_width("attention: output columns", out.cols(), heads)?;
    let nq = q.rows();
    if out.rows() != nq {
        return Err(Error::ShapeMismatch {
            what: "attention: out",
            expected: (nq, out.cols()),
            found: out.shape(),
        });
    }
    if kv.len() > MAX_RUNS {
        return Err(Error::InvalidParameter {
            what: "attention: key runs",
            reason: "at most MAX_RUNS runs of keys per call",
        });
    }
    let nk = kv
        .iter()
        .try_fold(0usize, |a, r| a.checked_add(r.len()))
        .ok_or(Error::InvalidParameter {
            what: "attention: keys",
            reason: "key count overflows usize",
        })?;
    let per_head = nq.checked_mul(nk).ok_or(Error::BufferTooSmall {
        what: "attention: scratch",
        needed: usize::MAX,
        found: scratch.len(),
    })?;
    match &weights {
        WeightsOut::None => {}
        WeightsOut::PerHead(w) => check_len(
            "attention: per-head weights",
            per_head.saturating_mul(heads),
            w.len(),
        )?,
        WeightsOut::Averaged(w) => check_len("attention: averaged weights", per_head, w.len())?,
    }

    // A decode step (one query) with several query heads per kv head: stack the
    // group's heads as rows, one matrix product per kv head.
    let stack = nq == 1 && group > 1 && scratch.len() >= group.saturating_mul(nk);
    let step = if stack { group } else { 1 };
    let mut h = 0;
    while h < heads {
        let g = h / group;
        let mut segs = [KvSegment::empty(); MAX_RUNS];
        for (s, r) in segs.iter_mut().zip(kv) {
            *s = r.head(g, kv_heads, dk, dv)?;
        }
        let segs = &segs[..kv.len()];
        if stack {
            let qrow = q
                .row_or_empty(0)
                .get(h * dk..(h + group) * dk)
                .unwrap_or(&[]);
            let qg = MatRef::new(qrow, group, dk)?;
            let orow = out.row_mut_or_empty(0);
            let olen = orow.len();
            let ochunk = orow
                .get_mut(h * dv..(h + group) * dv)
                .ok_or(Error::BufferTooSmall {
                    what: "attention: out",
                    needed: (h + group) * dv,
                    found: olen,
                })?;
            let og = MatMut::new(ochunk, group, dv)?;
            attend_rows_with::<B, T>(qg, segs, og, scratch, Rows::StackedHeads { head0: h }, opts)?;
        } else {
            let qh = q.col_range(h * dk, dk)?;
            let oh = out.reborrow().col_range(h * dv, dv)?;
            attend_views_with::<B, T>(qh, segs, oh, scratch, h, opts)?;
        }
        // Scratch rows: one per head when stacked (NQ = 1), else this head's NQ rows.
        for r in 0..step {
            let hr = h + r;
            let Some(wh) = scratch.get(r * per_head..(r + 1) * per_head) else {
                return Err(Error::BufferTooSmall {
                    what: "attention: scratch",
                    needed: (r + 1) * per_head,
                    found: scratch.len(),
                });
            };
            match &mut weights {
                WeightsOut::None => {}
                WeightsOut::PerHead(w) => {
                    if let Some(dst) = w.get_mut(hr * per_head..(hr + 1) * per_head) {
                        dst.copy_from_slice(wh);
                    }
                }
                WeightsOut::Averaged(w) => {
                    if hr == 0 {
                        for (d, &x) in w.iter_mut().zip(wh) {
                            *d = x;
                        }
                    } else {
                        B::raw_zip(w, wh, false);
                    }
                }
            }
        }
        h += step;
    }
    if let WeightsOut::Averaged(w) = &mut weights {
        B::raw_affine(w, T::ONE / T::from_usize(heads), T::ZERO);
    }
    Ok(())
}

/// Grouped-query attention, const-generic face, with the [`Simd`] backend; see
/// [`gqa_with`].
pub fn gqa<
    T: Real,
    const NQ: usize,
    const NK: usize,
    const H: usize,
    const KVH: usize,
    const DK: usize,
    const DV: usize,
>(
    q: &[[[T; DK]; H]; NQ],
    k: &[[[T; DK]; KVH]; NK],
    v: &[[[T; DV]; KVH]; NK],
    out: &mut [[[T; DV]; H]; NQ],
    scratch: &mut [[T; NK]; NQ],
    weights: WeightsOut<'_, T>,
    opts: &AttnOptions<'_, T>,
) -> Result<()> {
    gqa_with::<Simd, T, NQ, NK, H, KVH, DK, DV>(q, k, v, out, scratch, weights, opts)
}

/// Grouped-query attention, const-generic face: q `(NQ, H, DK)`,
/// k `(NK, KVH, DK)`, v `(NK, KVH, DV)` → out `(NQ, H, DV)` (PyTorch's
/// `(L, H, D)` order, i.e. `(B, H, L, D)` transposed). `KVH = 1` is MQA,
/// `KVH = H` is MHA; `H % KVH == 0` is checked at compile time. Keys sit at
/// positions `0..NK`. Must match
/// `scaled_dot_product_attention(..., enable_gqa=True)`.
pub fn gqa_with<
    B: Backend,
    T: Real,
    const NQ: usize,
    const NK: usize,
    const H: usize,
    const KVH: usize,
    const DK: usize,
    const DV: usize,
>(
    q: &[[[T; DK]; H]; NQ],
    k: &[[[T; DK]; KVH]; NK],
    v: &[[[T; DV]; KVH]; NK],
    out: &mut [[[T; DV]; H]; NQ],
    scratch: &mut [[T; NK]; NQ],
    weights: WeightsOut<'_, T>,
    opts: &AttnOptions<'_, T>,
) -> Result<()> {
    assert_heads::<H, KVH>();
    gqa_views_with::<B, T>(
        nested(q)?,
        &[HeadsKv::packed(
            nested(k)?,
            nested(v)?,
            KeyPositions::Range(0),
        )],
        H,
        KVH,
        nested_mut(out)?,
        scratch.as_flattened_mut(),
        weights,
        opts,
    )
}

#[cfg(feature = "std")]
mod dynamic {
    use super::*;
    use crate::matrix::Matrix;
    use crate::matrix::zeros_vec;

    /// Grouped-query attention on runtime-shaped matrices (feature `std`) with
    /// the [`Simd`] backend; see [`gqa_dyn_with`].
    pub fn gqa_dyn<T: Real>(
        q: &Matrix<T>,
        k: &Matrix<T>,
        v: &Matrix<T>,
        heads: usize,
        kv_heads: usize,
        opts: &AttnOptions<'_, T>,
    ) -> Result<Matrix<T>> {
        gqa_dyn_with::<Simd, T>(q, k, v, heads, kv_heads, opts)
    }

    /// Grouped-query attention on runtime-shaped matrices (feature `std`):
    /// q `(NQ, heads·DK)`, k `(NK, kv_heads·DK)`, v `(NK, kv_heads·DV)` →
    /// `(NQ, heads·DV)`. Mismatched shapes or head counts are an `Err`.
    ///
    /// ```
    /// use constml::{Matrix, attention::{gqa_dyn, AttnOptions}};
    /// let q = Matrix::<f32>::zeros(2, 8)?; // 4 heads of 2
    /// let k = Matrix::<f32>::zeros(5, 2)?; // 1 kv head (MQA)
    /// let out = gqa_dyn(&q, &k, &k, 4, 1, &AttnOptions::new())?;
    /// assert_eq!(out.shape(), (2, 8));
    /// assert!(gqa_dyn(&q, &k, &k, 4, 3, &AttnOptions::new()).is_err());
    /// # Ok::<(), constml::Error>(())
    /// ```
    pub fn gqa_dyn_with<B: Backend, T: Real>(
        q: &Matrix<T>,
        k: &Matrix<T>,
        v: &Matrix<T>,
        heads: usize,
        kv_heads: usize,
        opts: &AttnOptions<'_, T>,
    ) -> Result<Matrix<T>> {
        group_size(heads, kv_heads)?;
        let dv = head_width("attention: value columns", v.cols(), kv_heads)?;
        let mut out = Matrix::zeros(q.rows(), heads.saturating_mul(dv))?;
        let mut scratch = zeros_vec(
            "gqa_dyn: scratch",
            gqa_scratch_len(q.rows(), k.rows(), heads, kv_heads),
        )?;
        gqa_views_with::<B, T>(
            q.view(),
            &[HeadsKv::packed(k.view(), v.view(), KeyPositions::Range(0))],
            heads,
            kv_heads,
            out.view_mut(),
            &mut scratch,
            WeightsOut::None,
            opts,
        )?;
        Ok(out)
    }
}

#[cfg(feature = "std")]
pub use dynamic::{gqa_dyn, gqa_dyn_with};
