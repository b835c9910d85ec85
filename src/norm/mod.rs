//! Normalisation layers, forward and backward side by side.
//!
//! | module | what | reference |
//! |---|---|---|
//! | [`layer_norm`] | LayerNorm over the last dimension ([`LayerNorm`]) | `torch.nn.LayerNorm` |
//! | [`rms_norm`] | RMSNorm ([`RmsNorm`]) | `torch.nn.RMSNorm`, llama2.c, Hugging Face Llama |
//! | [`batch_norm`] | BatchNorm over `(N, C)`, `(N, C, L)`, `(N, C, H, W)`, train/eval, running statistics, fold into the previous layer ([`BatchNorm`]) | `torch.nn.BatchNorm1d/2d`, `torch.nn.utils.fusion` |
//!
//! Conventions shared by the chapter:
//!
//! * `eps` must be finite and `> 0` (`Err` otherwise); it sits inside the
//!   square root.
//! * Backward passes **write** the input gradient and **add into** the
//!   parameter gradients (caller storage; zero it between steps).
//! * A forward can save what its backward needs (per-row or per-channel
//!   mean and `r = 1/√(var + eps)`) in caller storage, [`NormStats`].

pub mod batch_norm;
pub mod layer_norm;
pub mod rms_norm;

pub use batch_norm::*;
pub use layer_norm::*;
pub use rms_norm::*;

use crate::error::{Error, Result, check_len};
use crate::real::Real;

/// Caller storage for the statistics a forward saves for its backward: one
/// entry per row (LayerNorm, RMSNorm) or per channel (BatchNorm). `mean` is
/// not used by RMSNorm; `rstd` holds `r = 1/√(var + eps)` (RMSNorm:
/// `1/√(mean(x²) + eps)`).
#[derive(Debug)]
pub struct NormStats<'a, T> {
    /// Means (`None` where the norm has none).
    pub mean: Option<&'a mut [T]>,
    /// Reciprocal standard deviations.
    pub rstd: &'a mut [T],
}

impl<'a, T: Real> NormStats<'a, T> {
    /// Means and reciprocal standard deviations.
    pub fn new(mean: &'a mut [T], rstd: &'a mut [T]) -> Self {
        Self {
            mean: Some(mean),
            rstd,
        }
    }
    /// Reciprocal standard deviations only (RMSNorm).
    pub fn rstd_only(rstd: &'a mut [T]) -> Self {
        Self { mean: None, rstd }
    }
    #[inline]
    pub(crate) fn set(&mut self, i: usize, mean: T, rstd: T) {
        if let Some(m) = self.mean.as_deref_mut().and_then(|m| m.get_mut(i)) {
            *m = mean;
        }
        if let Some(r) = self.rstd.get_mut(i) {
            *r = rstd;
        }
    }
}

/// `eps` must be finite and `> 0`.
pub(crate) fn check_eps<T: Real>(what: &'static str, eps: T) -> Result<()> {
    if eps.is_finite() && eps > T::ZERO {
        Ok(())
    } else {
        Err(Error::InvalidParameter {
            what,
            reason: "must be finite and > 0",
        })
    }
}

/// An optional slice, when given, must have length `n`.
pub(crate) fn opt_len<T>(what: &'static str, n: usize, s: Option<&[T]>) -> Result<()> {
    match s {
        Some(s) => check_len(what, n, s.len()),
        None => Ok(()),
    }
}

/// Saved-statistics storage, when given, must hold `n` entries (and a mean
/// when the norm has one).
pub(crate) fn check_stats<T>(stats: &Option<NormStats<'_, T>>, n: usize, mean: bool) -> Result<()> {
    if let Some(s) = stats {
        check_len("norm stats: rstd", n, s.rstd.len())?;
        match (&s.mean, mean) {
            (Some(m), _) => check_len("norm stats: mean", n, m.len())?,
            (None, true) => {
                return Err(Error::InvalidParameter {
                    what: "norm stats: mean",
                    reason: "this norm saves a mean: give storage for it",
                });
            }
            (None, false) => {}
        }
    }
    Ok(())
}
