//! Min-p filtering: keep tokens at least `min_p` times as probable as the top one.
//! One O(V) pass, no scratch, no sort.

use super::lanes::{Wide, map, with_wide};
use super::select::{check_unit, scan_logits, scan_probs};
use crate::error::Result;
use crate::real::Real;

/// `Err(InvalidParameter)` unless `0 ≤ min_p ≤ 1`.
#[inline]
pub(crate) fn check_min_p<T: Real>(min_p: T) -> Result<()> {
    check_unit("min_p", min_p)
}

/// The logits form shared by both faces.
pub(crate) fn min_p_slice<T: Real>(logits: &mut [T], min_p: T) -> Result<()> {
    check_min_p(min_p)?;
    let scan = scan_logits("min_p: logits", logits)?;
    with_wide!(T, min_p_logits(logits, min_p, scan.max));
    Ok(())
}

/// The min-p rule on logits: keep `e^(x − max) ≥ min_p` (the weight of the top
/// token is `e^0 = 1`; Hugging Face removes `probs < min_p · top_prob`).
fn min_p_logits<T: Real, W: Wide<T>>(logits: &mut [T], min_p: T, max: T) {
    // With w = e^(x − max) the top weight is e^0 = 1 exactly: keep w ≥ min_p · 1.
    let (mv, lim, ninf) = (
        W::splat(max),
        W::splat(min_p * T::ONE),
        W::splat(T::NEG_INFINITY),
    );
    map::<T, W>(logits, T::NEG_INFINITY, |_, x| {
        W::select((x - mv).exp().ge(lim), x, ninf)
    });
}

/// The probability form shared by both faces.
pub(crate) fn min_p_probs_slice<T: Real>(probs: &mut [T], min_p: T) -> Result<()> {
    check_min_p(min_p)?;
    let scan = scan_probs("min_p_probs: probs", probs)?;
    with_wide!(T, min_p_probs_w(probs, min_p * scan.max));
    Ok(())
}

/// The min-p rule on weights: keep `w ≥ lim = min_p · max(w)`, zero the others.
fn min_p_probs_w<T: Real, W: Wide<T>>(probs: &mut [T], lim: T) {
    let lim = W::splat(lim);
    map::<T, W>(probs, T::ZERO, |_, w| w & w.ge(lim));
}

/// Min-p filtering of logits in place: keeps the tokens whose probability is
/// **≥ `min_p` × the top probability** (equality survives) and sets the others to
/// −∞. `min_p = 0` keeps everything; `min_p = 1` keeps the tokens tied with the
/// top one; the top token always survives.
///
/// The ratio is computed as `e^(x − max) ≥ min_p` with the bit-reproducible
/// [`repro_exp`](super::repro_exp) (normalisation cancels in the ratio), as Hugging
/// Face's `MinPLogitsWarper` compares `probs < min_p · top_prob`.
///
/// Errors: `min_p` outside `[0, 1]` or NaN, a `+∞` logit
/// ([`Error::InvalidParameter`](crate::Error::InvalidParameter)); NaN logits
/// ([`Error::NaN`](crate::Error::NaN)); every logit −∞
/// ([`Error::NoCandidates`](crate::Error::NoCandidates)). On error the logits are
/// untouched.
///
/// ```
/// use constml::decode::min_p;
/// let mut x = [0.0f32, -1.0, -3.0, 0.0];
/// min_p(&mut x, 0.1)?; // e^-3 ≈ 0.05 < 0.1 is removed, e^-1 ≈ 0.37 stays
/// assert_eq!(x, [0.0, -1.0, f32::NEG_INFINITY, 0.0]);
/// # Ok::<(), constml::Error>(())
/// ```
pub fn min_p<T: Real, const V: usize>(logits: &mut [T; V], min_p: T) -> Result<()> {
    const { assert!(V > 0, "the vocabulary size V must be at least 1") };
    min_p_slice(logits, min_p)
}

/// Min-p on probabilities in place: entries below `min_p × max(probs)` become 0
/// (the weights need not sum to 1). Exact for dyadic inputs:
///
/// ```
/// use constml::decode::min_p_probs;
/// let mut q = [0.5f32, 0.25, 0.125, 0.125];
/// min_p_probs(&mut q, 0.25)?; // 0.125 = 0.25 × 0.5 exactly: everything kept
/// assert_eq!(q, [0.5, 0.25, 0.125, 0.125]);
/// min_p_probs(&mut q, 0.5)?; // 0.25 = 0.5 × 0.5 kept, 0.125 removed
/// assert_eq!(q, [0.5, 0.25, 0.0, 0.0]);
/// # Ok::<(), constml::Error>(())
/// ```
///
/// Errors as [`top_p_probs`](super::top_p_probs), with `min_p` in place of `p`.
pub fn min_p_probs<T: Real, const V: usize>(probs: &mut [T; V], min_p: T) -> Result<()> {
    const { assert!(V > 0, "the vocabulary size V must be at least 1") };
    min_p_probs_slice(probs, min_p)
}

/// Runtime-vocabulary face of [`min_p`]; an empty slice is
/// [`Error::Empty`](crate::Error::Empty).
#[cfg(feature = "std")]
pub fn min_p_dyn<T: Real>(logits: &mut [T], min_p: T) -> Result<()> {
    min_p_slice(logits, min_p)
}

/// Runtime-vocabulary face of [`min_p_probs`]; an empty slice is
/// [`Error::Empty`](crate::Error::Empty).
#[cfg(feature = "std")]
pub fn min_p_probs_dyn<T: Real>(probs: &mut [T], min_p: T) -> Result<()> {
    min_p_probs_slice(probs, min_p)
}
