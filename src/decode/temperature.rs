//! Temperature: `logits / T`, with `T = 0` meaning greedy.

use super::select::{Scan, scan_logits};
use crate::error::{Error, Result};
use crate::real::Real;

/// What a temperature does to a given set of logits.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Temp<T> {
    /// Keep only the greedy token (`T = 0`, or `max / T` overflows).
    Greedy(usize),
    /// Divide every logit by `t`; the largest scaled logit is `max`.
    Scale { t: T, max: T },
}

/// `Err(InvalidParameter)` unless `t` is finite and `≥ 0`.
#[inline]
pub(crate) fn check_temperature<T: Real>(t: T) -> Result<()> {
    if t.is_finite() && t >= T::ZERO {
        Ok(())
    } else {
        Err(Error::InvalidParameter {
            what: "temperature",
            reason: "must be finite and >= 0 (0 means greedy)",
        })
    }
}

/// Resolves a validated temperature against scanned logits.
#[inline]
pub(crate) fn resolve<T: Real>(t: T, scan: &Scan<T>) -> Temp<T> {
    if t == T::ZERO {
        return Temp::Greedy(scan.argmax);
    }
    let max = scan.max / t;
    if max.is_infinite() {
        // T so small that the scaled logits overflow: the T → 0 limit.
        return Temp::Greedy(scan.argmax);
    }
    Temp::Scale { t, max }
}

/// Sets every logit except `keep` to −∞.
#[inline]
pub(crate) fn greedy_mask<T: Real>(logits: &mut [T], keep: usize) {
    for (i, x) in logits.iter_mut().enumerate() {
        if i != keep {
            *x = T::NEG_INFINITY;
        }
    }
}

/// The slice form shared by both faces.
pub(crate) fn temperature_slice<T: Real>(logits: &mut [T], t: T) -> Result<()> {
    check_temperature(t)?;
    let scan = scan_logits("temperature: logits", logits)?;
    match resolve(t, &scan) {
        Temp::Greedy(i) => greedy_mask(logits, i),
        Temp::Scale { t, .. } => {
            for x in logits.iter_mut() {
                *x = *x / t;
            }
        }
    }
    Ok(())
}

/// Temperature in place: divides every logit by `t` (Hugging Face's
/// `TemperatureLogitsWarper`, `scores / T`, an IEEE division).
///
/// **`t = 0` means greedy** (as llama.cpp; Hugging Face rejects 0): every logit
/// except the greedy token's (the largest, lowest id on ties) becomes −∞ and that
/// one is left unchanged. The same happens when `max / t` overflows (the `t → 0`
/// limit). Sampling from the result then always yields the greedy token.
///
/// Errors: `t` negative or not finite ([`Error::InvalidParameter`]); NaN logits
/// ([`Error::NaN`]); a `+∞` logit ([`Error::InvalidParameter`]); every logit −∞
/// ([`Error::NoCandidates`]). On error the logits are untouched.
///
/// ```
/// use constml::decode::temperature;
/// let mut x = [1.0f32, 3.0, 3.0, -2.0];
/// temperature(&mut x, 2.0)?;
/// assert_eq!(x, [0.5, 1.5, 1.5, -1.0]);
/// temperature(&mut x, 0.0)?; // greedy: only token 1 survives
/// assert_eq!(x, [f32::NEG_INFINITY, 1.5, f32::NEG_INFINITY, f32::NEG_INFINITY]);
/// assert!(temperature(&mut x, -1.0).is_err());
/// # Ok::<(), constml::Error>(())
/// ```
///
/// `V = 0` is rejected at compile time:
///
/// ```compile_fail,E0080
/// let mut x: [f32; 0] = [];
/// let _ = constml::decode::temperature(&mut x, 1.0);
/// ```
pub fn temperature<T: Real, const V: usize>(logits: &mut [T; V], t: T) -> Result<()> {
    const { assert!(V > 0, "the vocabulary size V must be at least 1") };
    temperature_slice(logits, t)
}

/// Runtime-vocabulary face of [`temperature`]; an empty slice is [`Error::Empty`].
#[cfg(feature = "std")]
pub fn temperature_dyn<T: Real>(logits: &mut [T], t: T) -> Result<()> {
    temperature_slice(logits, t)
}
