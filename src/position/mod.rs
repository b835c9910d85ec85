//! Position encodings.
//!
//! One file per encoding. Attention exposes the hooks they plug into
//! ([`ScoreBias`](crate::attention::ScoreBias) for a per-(head, query position,
//! key position) score bias, [`RelativeKv`](crate::attention::RelativeKv) for
//! relative key/value terms, [`Rotation`](crate::attention::Rotation) for q/k
//! rotation before the cache append); the encodings live here.
//!
//! | module | what | plugs in as |
//! |---|---|---|
//! | [`sinusoidal`] | fixed sin/cos tables, interleaved and concatenated-halves layouts ([`Sinusoidal`]) | added to embeddings |
//! | [`learned`] | learned absolute table with backward and SGD ([`LearnedPositions`]) | added to embeddings |
//! | [`rope`] | rotary embedding, interleaved and half-split, linear / NTK scaling ([`Rope`], [`RopeTable`]) | [`Rotation`](crate::attention::Rotation) |
//! | [`t5`] | T5's bucketed relative bias ([`T5Buckets`], [`T5RelativeBias`]) | [`ScoreBias`](crate::attention::ScoreBias) or a per-head bias |
//! | [`alibi`] | ALiBi slopes and biases, causal / symmetric / Bloom ([`Alibi`]) | [`ScoreBias`](crate::attention::ScoreBias) or a per-head bias |
//! | [`shaw`] | Shaw et al.'s relative key/value terms ([`ShawRelative`]) | [`RelativeKv`](crate::attention::RelativeKv) |

pub mod alibi;
pub mod learned;
pub mod rope;
pub mod shaw;
pub mod sinusoidal;
pub mod t5;

pub use alibi::{Alibi, AlibiForm, alibi_slope, alibi_slopes, alibi_slopes_into};
pub use learned::*;
#[cfg(feature = "std")]
pub use rope::RopeDyn;
pub use rope::{BeyondTable, Rope, RopeConfig, RopeLayout, RopeRecipe, RopeScaling, RopeTable};
pub use shaw::ShawRelative;
#[cfg(feature = "std")]
pub use shaw::ShawRelativeDyn;
pub use sinusoidal::{Sinusoidal, SinusoidalLayout};
pub use t5::{T5Buckets, T5RelativeBias};

/// Checks a per-head bias matrix `(heads·NQ, NK)` to fill for queries at
/// `query_start ..` and keys at `key_start ..`; returns `(NQ, NK)`.
pub(crate) fn bias_rows(
    what: &'static str,
    heads: usize,
    rows: usize,
    cols: usize,
    query_start: usize,
    key_start: usize,
) -> crate::Result<(usize, usize)> {
    if heads == 0 || !rows.is_multiple_of(heads) {
        return Err(crate::Error::InvalidParameter {
            what,
            reason: "out must have heads · NQ rows",
        });
    }
    let nq = rows / heads;
    if nq > 0
        && cols > 0
        && (query_start.checked_add(nq - 1).is_none() || key_start.checked_add(cols - 1).is_none())
    {
        return Err(crate::Error::InvalidParameter {
            what,
            reason: "start + length overflows usize",
        });
    }
    Ok((nq, cols))
}
