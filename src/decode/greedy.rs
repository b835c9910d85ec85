//! Greedy decoding: the most likely next token.

use crate::backend::{Backend, Simd};
use crate::error::{Error, Result};
use crate::real::Real;

/// The slice form shared by both faces: validation, then the backend's `max`.
#[inline]
pub(crate) fn greedy_slice<B: Backend, T: Real>(logits: &[T]) -> Result<usize> {
    let m = B::max(logits).map_err(|e| match e {
        Error::Empty { .. } => Error::Empty { what: "greedy" },
        Error::NaN { .. } => Error::NaN { what: "greedy" },
        other => other,
    })?;
    if m == T::NEG_INFINITY {
        return Err(Error::NoCandidates);
    }
    // `m` came from `logits`, so the search succeeds; the fallback is unreachable.
    logits
        .iter()
        .position(|&x| x == m)
        .ok_or(Error::NoCandidates)
}

/// Greedy decoding: the index of the largest logit, the **lowest token id on
/// ties**, with the [`Simd`] backend (see [`greedy_with`]).
///
/// `+∞` is a valid (winning) logit here. Errors: [`Error::NaN`] if any logit is
/// NaN, [`Error::NoCandidates`] if every logit is −∞.
///
/// ```
/// use constml::decode::greedy;
/// assert_eq!(greedy(&[0.5f32, 2.0, -1.0, 2.0])?, 1); // tie: lower id wins
/// assert!(greedy(&[f32::NEG_INFINITY; 3]).is_err());
/// # Ok::<(), constml::Error>(())
/// ```
///
/// `V = 0` is rejected at compile time:
///
/// ```compile_fail,E0080
/// let _ = constml::decode::greedy::<f32, 0>(&[]);
/// ```
#[inline]
pub fn greedy<T: Real, const V: usize>(logits: &[T; V]) -> Result<usize> {
    greedy_with::<Simd, T, V>(logits)
}

/// [`greedy`] with an explicit backend `B` (the maximum is a backend reduction;
/// the result does not depend on the backend).
#[inline]
pub fn greedy_with<B: Backend, T: Real, const V: usize>(logits: &[T; V]) -> Result<usize> {
    const { assert!(V > 0, "the vocabulary size V must be at least 1") };
    greedy_slice::<B, T>(logits)
}

/// Runtime-vocabulary face of [`greedy`]: any slice length; an empty slice is
/// [`Error::Empty`].
#[cfg(feature = "std")]
#[inline]
pub fn greedy_dyn<T: Real>(logits: &[T]) -> Result<usize> {
    greedy_slice::<Simd, T>(logits)
}

/// [`greedy_dyn`] with an explicit backend.
#[cfg(feature = "std")]
#[inline]
pub fn greedy_dyn_with<B: Backend, T: Real>(logits: &[T]) -> Result<usize> {
    greedy_slice::<B, T>(logits)
}
