//! The draw: one token from non-negative weights, walking tokens in id order.
//! No sort, no normalisation pass, one uniform number.

use rand_core::Rng;

use super::repro::uniform;
use super::select::scan_probs;
use crate::error::Result;
use crate::real::Real;

/// Tokens per block of the running sums recorded by the sampler's final pass.
pub(crate) const BLOCK: usize = 64;

/// [`draw_slice`] with the help of `starts[b]` = the running sum of `w` (in token
/// order, as [`draw_slice`] accumulates it) before block `b` of [`BLOCK`] tokens:
/// it skips to the block where the running sum first exceeds `u · total` and walks
/// only that block. Every addition is the one the plain walk makes, so the result
/// is bit-identical to [`draw_slice`].
#[inline]
pub(crate) fn draw_blocked<T: Real, R: Rng + ?Sized>(
    w: &[T],
    starts: impl Fn(usize) -> T,
    total: T,
    rng: &mut R,
) -> usize {
    let target = uniform::<T, R>(rng) * total;
    let blocks = w.len().div_ceil(BLOCK);
    // The first block whose end sum exceeds the target (its end is the next
    // block's start, or the total for the last block).
    let mut b = 0;
    while b < blocks {
        let end = if b + 1 < blocks { starts(b + 1) } else { total };
        if end > target {
            break;
        }
        b += 1;
    }
    if b < blocks {
        let mut acc = starts(b);
        let lo = b * BLOCK;
        let hi = (lo + BLOCK).min(w.len());
        for (i, &x) in w.iter().enumerate().take(hi).skip(lo) {
            if x > T::ZERO {
                acc += x;
                if acc > target {
                    return i;
                }
            }
        }
    }
    // Rounding left u · total at or above the sum: the last positive weight.
    w.iter().rposition(|&x| x > T::ZERO).unwrap_or(0)
}

/// Draws from `w` whose sequential token-order sum is `total > 0`.
///
/// `u` = [`uniform`]; the token is the first (in id order) whose running sum of
/// weights exceeds `u · total`. If rounding leaves `u · total` at or above the
/// final sum, the last token with a positive weight is returned. Zero-weight
/// tokens are never returned.
#[inline]
pub(crate) fn draw_slice<T: Real, R: Rng + ?Sized>(w: &[T], total: T, rng: &mut R) -> usize {
    let target = uniform::<T, R>(rng) * total;
    let mut acc = T::ZERO;
    let mut last = 0;
    for (i, &x) in w.iter().enumerate() {
        if x > T::ZERO {
            acc += x;
            last = i;
            if acc > target {
                return i;
            }
        }
    }
    last
}

fn sample_probs_slice<T: Real, R: Rng + ?Sized>(probs: &[T], rng: &mut R) -> Result<usize> {
    let (_, total) = scan_probs("sample_probs: probs", probs)?;
    Ok(draw_slice(probs, total, rng))
}

/// Draws one token from non-negative weights `probs` (they need not sum to 1).
///
/// The rule, bit-reproducible on every target: `S` = the weights summed
/// sequentially in token order; `u` = [`uniform`] (one `next_u32` for `f32`, one
/// `next_u64` for `f64`); the result is the first token, in id order, whose
/// running sum exceeds `u · S`. Zero weights are never drawn.
///
/// Errors: a negative or infinite weight, or weights whose sum overflows
/// ([`Error::InvalidParameter`](crate::Error::InvalidParameter)); a NaN weight
/// ([`Error::NaN`](crate::Error::NaN)); all zero
/// ([`Error::NoCandidates`](crate::Error::NoCandidates)).
///
/// ```
/// use constml::decode::sample_probs;
/// use rand_core::SeedableRng;
/// let mut rng = rand_xoshiro::Xoshiro128PlusPlus::seed_from_u64(1);
/// let t = sample_probs(&[0.0f32, 0.5, 0.0, 0.5], &mut rng)?;
/// assert!(t == 1 || t == 3);
/// # Ok::<(), constml::Error>(())
/// ```
pub fn sample_probs<T: Real, R: Rng + ?Sized, const V: usize>(
    probs: &[T; V],
    rng: &mut R,
) -> Result<usize> {
    const { assert!(V > 0, "the vocabulary size V must be at least 1") };
    sample_probs_slice(probs, rng)
}

/// Runtime-vocabulary face of [`sample_probs`]; an empty slice is
/// [`Error::Empty`](crate::Error::Empty).
#[cfg(feature = "std")]
pub fn sample_probs_dyn<T: Real, R: Rng + ?Sized>(probs: &[T], rng: &mut R) -> Result<usize> {
    sample_probs_slice(probs, rng)
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use rand_core::SeedableRng;
    use std::vec::Vec;

    #[test]
    fn blocked_draw_is_the_plain_draw() {
        let mut x = 99u32;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x
        };
        for n in [1usize, 5, 63, 64, 65, 200, 1000] {
            for _ in 0..20 {
                let w: Vec<f32> = (0..n)
                    .map(|_| {
                        let r = next();
                        if r % 3 == 0 {
                            0.0
                        } else {
                            (r % 1000) as f32 * 1e-3
                        }
                    })
                    .collect();
                let mut starts = Vec::new();
                let mut total = 0.0f32;
                for (i, &v) in w.iter().enumerate() {
                    if i % BLOCK == 0 {
                        starts.push(total);
                    }
                    total += v;
                }
                if total <= 0.0 {
                    continue;
                }
                for seed in 0..50 {
                    let mut a = rand_xoshiro::Xoshiro128PlusPlus::seed_from_u64(seed);
                    let mut b = a.clone();
                    let plain = draw_slice(&w, total, &mut a);
                    let fast = draw_blocked(&w, |i| starts[i], total, &mut b);
                    assert_eq!(plain, fast, "n {n} seed {seed}");
                }
            }
        }
    }
}
