//! The draw: one token from non-negative weights, walking tokens in id order.
//! No sort, no normalisation pass, one uniform number.

use rand_core::Rng;

use super::lanes::{Wide, each, with_wide};
use super::repro::uniform;
use super::select::scan_probs;
use crate::error::Result;
use crate::real::Real;

/// Tokens per block of the draw (a multiple of every lane count `K`).
pub(crate) const BLOCK: usize = 256;

/// Draws from `w` whose reproducible sum (see the [module documentation](super)) is
/// `total > 0`: the rule of the [module documentation](super) ("The draw").
///
/// `target = u · total` with `u` = [`uniform`]. Block `b` (tokens `256·b ..
/// 256·(b + 1)`) starts at `S_b` = the reproducible sum of the tokens before it
/// and ends at `S_{b+1}` (the last block ends at `total`). The chosen block is the
/// first with `S_{b+1} > target`; in it, the token is the first whose running sum
/// `S_b + w_{256·b} + … + w_i` (sequential, in id order, over positive weights)
/// exceeds `target`, or the block's last positive-weight token if rounding keeps
/// the walk at or below `target`. If no block qualifies (rounding left `target`
/// at `total`), the last positive-weight token. Zero weights are never drawn.
#[inline]
pub(crate) fn draw_slice<T: Real, R: Rng + ?Sized>(w: &[T], total: T, rng: &mut R) -> usize {
    let target = uniform::<T, R>(rng) * total;
    with_wide!(T, draw_target(w, target))
}

/// [`draw_slice`] after the uniform number: the token for `target`.
#[inline]
fn draw_target<T: Real, W: Wide<T>>(w: &[T], target: T) -> usize {
    let mut acc = W::splat(T::ZERO);
    let mut start = T::ZERO;
    for (b, block) in w.chunks(BLOCK).enumerate() {
        // Blocks start at multiples of K, so lane j keeps summing the tokens
        // i ≡ j (mod K): `end` is the reproducible sum of w[..256·(b + 1)].
        each::<T, W>(block, T::ZERO, |_, v| acc = acc + v);
        let end = acc.tree();
        if end > target {
            let mut run = start;
            let mut last = None;
            for (j, &x) in block.iter().enumerate() {
                if x > T::ZERO {
                    run += x;
                    last = Some(j);
                    if run > target {
                        return b * BLOCK + j;
                    }
                }
            }
            if let Some(j) = last {
                return b * BLOCK + j;
            }
        }
        start = end;
    }
    w.iter().rposition(|&x| x > T::ZERO).unwrap_or(0)
}

fn sample_probs_slice<T: Real, R: Rng + ?Sized>(probs: &[T], rng: &mut R) -> Result<usize> {
    let scan = scan_probs("sample_probs: probs", probs)?;
    Ok(draw_slice(probs, scan.total, rng))
}

/// Draws one token from non-negative weights `probs` (they need not sum to 1).
///
/// The rule, bit-reproducible on every target (details in the
/// [module documentation](super), "The draw"): `S` = the reproducible sum of the
/// weights; `u` = [`uniform`] (one `next_u32` for `f32`, one `next_u64` for
/// `f64`); the result is the first token, in id order, whose running sum exceeds
/// `u · S` — running sums restart from the reproducible prefix sum at every block
/// of 256 tokens. Zero weights are never drawn.
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

    /// The documented rule, written out with scalar arithmetic only.
    fn rule(w: &[f32], target: f32) -> usize {
        let prefix = |n: usize| {
            let mut p = [0.0f32; 16];
            for (i, &x) in w[..n].iter().enumerate() {
                p[i % 16] += x;
            }
            let mut h = 8;
            while h > 0 {
                for j in 0..h {
                    p[j] += p[j + h];
                }
                h /= 2;
            }
            p[0]
        };
        let blocks = w.len().div_ceil(BLOCK);
        for b in 0..blocks {
            let hi = ((b + 1) * BLOCK).min(w.len());
            if prefix(hi) > target {
                let mut run = prefix(b * BLOCK);
                let mut last = None;
                for (i, &x) in w.iter().enumerate().take(hi).skip(b * BLOCK) {
                    if x > 0.0 {
                        run += x;
                        last = Some(i);
                        if run > target {
                            return i;
                        }
                    }
                }
                return last.unwrap();
            }
        }
        w.iter().rposition(|&x| x > 0.0).unwrap()
    }

    #[test]
    fn draw_follows_the_documented_rule() {
        let mut x = 99u32;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x
        };
        for n in [1usize, 5, 17, 255, 256, 257, 700, 3000] {
            for _ in 0..10 {
                let w: Vec<f32> = (0..n)
                    .map(|_| {
                        let r = next();
                        if r % 3 == 0 {
                            0.0
                        } else {
                            (r % 1000) as f32 * 1e-3 * 10f32.powi((r % 5) as i32 - 2)
                        }
                    })
                    .collect();
                let total = crate::decode::lanes::sum::<f32, wide::f32x16>(&w);
                if total <= 0.0 {
                    continue;
                }
                for seed in 0..60 {
                    let mut a = rand_xoshiro::Xoshiro128PlusPlus::seed_from_u64(seed);
                    let mut b = a.clone();
                    let got = draw_slice(&w, total, &mut a);
                    let want = rule(&w, uniform::<f32, _>(&mut b) * total);
                    assert_eq!(got, want, "n {n} seed {seed}");
                    assert!(w[got] > 0.0);
                }
                // The extremes of u: 0 and just below 1.
                assert_eq!(draw_target::<f32, wide::f32x16>(&w, 0.0), rule(&w, 0.0));
                assert_eq!(draw_target::<f32, wide::f32x16>(&w, total), rule(&w, total));
                // The decision points: targets at every block boundary's prefix sum
                // and one ulp either side, and at the first running sums of a block.
                for b in 0..=n.div_ceil(BLOCK) {
                    let edge =
                        crate::decode::lanes::sum::<f32, wide::f32x16>(&w[..(b * BLOCK).min(n)]);
                    let first = w[(b * BLOCK).min(n - 1)];
                    for t in [
                        edge,
                        edge + first,
                        (edge + first) + w[((b * BLOCK) + 1).min(n - 1)],
                    ] {
                        for t in [t.next_down(), t, t.next_up()] {
                            let got = draw_target::<f32, wide::f32x16>(&w, t);
                            assert_eq!(got, rule(&w, t), "n {n} block {b} target {t:e}");
                        }
                    }
                }
            }
        }
    }
}
