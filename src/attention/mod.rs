//! Attention: scaled dot-product, multi-head, self-attention, grouped/multi-query, KV caches.
//!
//! One module per algorithm, all built on one implementation of attention,
//! [`attend_views_with`] (one head over one or more runs of keys). Every public item
//! is also re-exported here, so `constml::attention::*` brings the family into
//! scope.
//!
//! | module | what |
//! |---|---|
//! | [`mod@sdpa`] | scaled dot-product attention ([`sdpa()`], batched [`sdpa_batched_views`]), [`AttnOptions`] (masks, bias, causal, window), score hooks ([`ScoreBias`], [`RelativeKv`]; Shaw's terms are [`position::ShawRelative`](crate::position::ShawRelative)) |
//! | [`mod@gqa`] | multi-head attention over projected heads with `KV_HEADS` (GQA; MQA = 1, MHA = `HEADS`) |
//! | [`mha`] | from-scratch [`MultiHeadAttention`] (independent widths) and PyTorch's `nn.MultiheadAttention` ([`PackedMultiheadAttention`]) |
//! | [`self_attention`] | [`SelfAttention`] layer and the decoder's [`CausalSelfAttention`]: project → rotate → attend over cache → append → output projection |
//! | [`mpt`] | MosaicML MPT's multi-query attention layer ([`MptAttention`]) |
//! | [`kv_cache`] | bounded and ring-buffer KV caches ([`KvCache`], `KvCacheDyn`), attention over a cache, beam reordering |
//!
//! # Conventions (see each item for details)
//!
//! * Linear layers: weights `(OUT, IN)`, `y = x·Wᵀ + b` (PyTorch `nn.Linear`);
//!   products of const dims are nested arrays (`[[[T; IN]; D]; H]` is the
//!   `(H·D, IN)` weight of an `H`-head projection).
//! * Boolean masks name their polarity: *allow* (`true` = may attend, PyTorch
//!   SDPA) or *block* (`true` = masked out, `masked_fill`, `nn.MultiheadAttention`).
//! * A fully masked query row gives zeros, never NaN.
//! * Causal masking is by absolute position (bottom-right with a cache).
//! * Query head `h` reads kv head `h / (HEADS / KV_HEADS)`.
//! * Sliding window `W`: `W` keys including the current one; ring slot = position
//!   mod `W`; positions stay absolute.
//!
//! # Backend and faces
//!
//! Every entry point is generic over the element type (`f32`, `f64`) and the
//! backend: a free function `foo` runs `foo_with::<Simd>`, a layer struct carries
//! `B: Backend = Simd`. Each algorithm has a const-generic face (array storage,
//! shapes checked at compile time), a views face (runtime shapes on
//! [`MatRef`]s, no allocation) and, with feature `std`, a
//! runtime-shaped face that allocates its outputs.
//!
//! No function here allocates outside the `std` face: outputs and scratch
//! (including the attention weights) are caller-owned.

pub mod gqa;
pub mod kv_cache;
pub mod mha;
pub mod mpt;
pub mod sdpa;
pub mod self_attention;

pub use gqa::*;
pub use kv_cache::*;
pub use mha::*;
pub use mpt::*;
pub use sdpa::*;
pub use self_attention::*;

use crate::error::Result;
use crate::mat::{MatMut, MatRef};

/// A `(R, C)` view of a nested array `[[[T; D]; H]; R]` with `C = H·D`.
#[inline]
pub(crate) fn nested<T, const R: usize, const H: usize, const D: usize>(
    a: &[[[T; D]; H]; R],
) -> Result<MatRef<'_, T>> {
    MatRef::new(a.as_flattened().as_flattened(), R, H * D)
}

/// A `(H·D, C)` view of stacked per-head weights `[[[T; C]; D]; H]` (head `h`
/// in rows `h·D ..`).
#[inline]
pub(crate) fn stacked<T, const H: usize, const D: usize, const C: usize>(
    a: &[[[T; C]; D]; H],
) -> Result<MatRef<'_, T>> {
    MatRef::new(a.as_flattened().as_flattened(), H * D, C)
}

/// A mutable `(R, H·D)` view of a nested array `[[[T; D]; H]; R]`.
#[inline]
pub(crate) fn nested_mut<T, const R: usize, const H: usize, const D: usize>(
    a: &mut [[[T; D]; H]; R],
) -> Result<MatMut<'_, T>> {
    MatMut::new(a.as_flattened_mut().as_flattened_mut(), R, H * D)
}
