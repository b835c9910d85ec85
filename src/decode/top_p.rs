//! Top-p (nucleus) filtering by probability-mass quickselect: expected O(V), no sort.

use super::repro::repro_exp;
use super::select::{Cand, SelectScratch, check_unit, scan_logits, scan_probs, select_mass};
use crate::error::Result;
use crate::real::Real;

/// `Err(InvalidParameter)` unless `0 ≤ p ≤ 1`.
#[inline]
pub(crate) fn check_p<T: Real>(p: T) -> Result<()> {
    check_unit("top_p", p)
}

/// The top-p cut over non-negative weights (unnormalised probabilities).
///
/// `weights()` yields the weight of every token in token-id order (called twice);
/// `cand` must be at least as long. Returns the last kept candidate — the
/// threshold of [`top_p_keeps`] — or `None` when everything survives (`p ≥ 1`, or
/// no positive weight).
///
/// The rule: with `S` the sum of all weights (sequential, in token order), keep
/// the smallest set of best candidates (weight descending, lower id first) whose
/// weights sum to at least `p·S`; at least one is kept.
///
/// Two floors shrink the quickselect's input without changing the answer:
/// * tokens below `floor = (1 − p)·S / (2n)` (`n` positive weights) together
///   weigh at most half of the mass top-p may remove, so they lie beyond the cut
///   and are dropped;
/// * tokens at or above `16 · floor` are gathered first; when their own mass
///   (summed in token order) already reaches `p·S`, the cut lies among them and
///   the rest is dropped too.
#[inline]
pub(crate) fn top_p_cut<T: Real, I: Iterator<Item = T>>(
    p: T,
    weights: impl Fn() -> I,
    cand: &mut [Cand<T>],
) -> Option<Cand<T>> {
    if p >= T::ONE {
        return None;
    }
    let mut total = T::ZERO;
    let mut positive = 0usize;
    for w in weights() {
        total += w;
        positive += (w > T::ZERO) as usize;
    }
    if positive == 0 {
        return None;
    }
    let need = p * total;
    let floor = (T::ONE - p) * total / T::from_usize(positive) * T::HALF;
    let high = floor * T::from_f64(16.0);
    // One pass: tokens ≥ high to the front of `cand`, tokens in [floor, high) to
    // the back, both in token order.
    let len = cand.len();
    let (mut nf, mut nb) = (0usize, 0usize);
    if positive.saturating_mul(8) < len {
        // Sparse weights (e.g. after top-k): a plain branch predicts well.
        for (i, w) in weights().enumerate() {
            if w > T::ZERO && w >= floor {
                let c = Cand {
                    key: w,
                    id: i as u32,
                };
                let slot = if w >= high {
                    nf += 1;
                    nf - 1
                } else {
                    nb += 1;
                    len - nb
                };
                if let Some(s) = cand.get_mut(slot) {
                    *s = c;
                }
            }
        }
    } else {
        // Dense weights: branch-free. Both sides' next free slots are written
        // every time; a side advances only when the token is its.
        for (i, w) in weights().enumerate() {
            let c = Cand {
                key: w,
                id: i as u32,
            };
            let pos = w > T::ZERO && w >= floor;
            let front = pos && w >= high;
            if let Some(s) = cand.get_mut(nf) {
                *s = c;
            }
            if let Some(s) = (len - 1).checked_sub(nb).and_then(|j| cand.get_mut(j)) {
                *s = c;
            }
            nf += front as usize;
            nb += (pos && !front) as usize;
        }
    }
    let mut front_mass = T::ZERO;
    for c in cand.get(..nf)? {
        front_mass += c.key;
    }
    let n = if nf > 0 && front_mass >= need {
        nf
    } else {
        cand.copy_within(len - nb..len, nf);
        nf + nb
    };
    select_mass(cand.get_mut(..n)?, need)
}

/// Whether token `id` of weight `w` survives the top-p cut `th`.
#[inline(always)]
pub(crate) fn top_p_keeps<T: Real>(th: Cand<T>, w: T, id: usize) -> bool {
    w > T::ZERO
        && !th.before(Cand {
            key: w,
            id: id as u32,
        })
}

/// The logits form shared by both faces.
pub(crate) fn top_p_slice<T: Real>(logits: &mut [T], p: T, cand: &mut [Cand<T>]) -> Result<()> {
    check_p(p)?;
    let scan = scan_logits("top_p: logits", logits)?;
    let max = scan.max;
    let th = {
        let l: &[T] = logits;
        top_p_cut(p, || l.iter().map(move |&x| repro_exp(x - max)), cand)
    };
    if let Some(th) = th {
        for (i, x) in logits.iter_mut().enumerate() {
            if !top_p_keeps(th, repro_exp(*x - max), i) {
                *x = T::NEG_INFINITY;
            }
        }
    }
    Ok(())
}

/// The probability form shared by both faces.
pub(crate) fn top_p_probs_slice<T: Real>(
    probs: &mut [T],
    p: T,
    cand: &mut [Cand<T>],
) -> Result<()> {
    check_p(p)?;
    scan_probs("top_p_probs: probs", probs)?;
    let th = {
        let q: &[T] = probs;
        top_p_cut(p, || q.iter().copied(), cand)
    };
    if let Some(th) = th {
        for (i, x) in probs.iter_mut().enumerate() {
            if !top_p_keeps(th, *x, i) {
                *x = T::ZERO;
            }
        }
    }
    Ok(())
}

/// Top-p (nucleus) filtering of logits in place: keeps the **smallest set of most
/// probable tokens whose probability mass is ≥ `p`** and sets the others to −∞.
///
/// Conventions:
/// * the token that crosses `p` is kept; reaching `p` exactly stops there;
/// * ties in probability are broken by **lower token id**;
/// * at least one token always survives: `p = 0` keeps only the most probable
///   token; `p = 1` keeps everything (the logits are left unchanged).
///
/// Probabilities are `e^(x − max)` with the bit-reproducible [`repro_exp`](super::repro_exp),
/// their total is summed sequentially in token order, and the cut is found by a
/// probability-mass quickselect (partition around a pivot, keep the side that
/// holds the needed mass) in expected O(V): no sort. Partial masses are summed in
/// the order the partitions leave the candidates in — deterministic on every
/// target, but at a boundary that is not exactly representable the cut can differ
/// by rounding from a sorted cumulative sum (Hugging Face's `TopPLogitsWarper`
/// sums sorted probabilities in `f32`), so the two agree away from the boundary;
/// boundaries are exact for dyadic probabilities (see [`top_p_probs`]).
///
/// Errors: `p` outside `[0, 1]` or NaN, a `+∞` logit
/// ([`Error::InvalidParameter`](crate::Error::InvalidParameter)); NaN logits
/// ([`Error::NaN`](crate::Error::NaN)); every logit −∞
/// ([`Error::NoCandidates`](crate::Error::NoCandidates)). On error the logits are
/// untouched.
///
/// ```
/// use constml::decode::{top_p, SelectScratch};
/// let mut scratch = SelectScratch::<f32, 4>::new();
/// let mut x = [0.0f32, 2.0, 0.0, 5.0];
/// top_p(&mut x, 0.5, &mut scratch)?; // token 3 alone holds > 90 % of the mass
/// assert_eq!(x, [f32::NEG_INFINITY, f32::NEG_INFINITY, f32::NEG_INFINITY, 5.0]);
/// # Ok::<(), constml::Error>(())
/// ```
pub fn top_p<T: Real, const V: usize>(
    logits: &mut [T; V],
    p: T,
    scratch: &mut SelectScratch<T, V>,
) -> Result<()> {
    const { assert!(V > 0, "the vocabulary size V must be at least 1") };
    top_p_slice(logits, p, &mut scratch.cand)
}

/// Top-p on probabilities in place: the same rule as [`top_p`], applied to
/// non-negative weights `probs` (they need not sum to 1: the mass is relative to
/// their sum); removed entries become `0`.
///
/// With dyadic probabilities (0.5, 0.25, …) every sum is exact, so the boundary
/// rules hold literally:
///
/// ```
/// use constml::decode::{top_p_probs, SelectScratch};
/// let mut s = SelectScratch::<f32, 4>::new();
/// let mut q = [0.25f32, 0.125, 0.5, 0.125];
/// top_p_probs(&mut q, 0.75, &mut s)?; // 0.5 + 0.25 reaches 0.75 exactly: stop
/// assert_eq!(q, [0.25, 0.0, 0.5, 0.0]);
/// let mut q = [0.25f32, 0.125, 0.5, 0.125];
/// top_p_probs(&mut q, 0.8, &mut s)?; // crossing token kept; tie → lower id (1)
/// assert_eq!(q, [0.25, 0.125, 0.5, 0.0]);
/// # Ok::<(), constml::Error>(())
/// ```
///
/// Errors: `p` outside `[0, 1]`, a negative or infinite entry or an infinite sum
/// ([`Error::InvalidParameter`](crate::Error::InvalidParameter)); NaN
/// ([`Error::NaN`](crate::Error::NaN)); all zero
/// ([`Error::NoCandidates`](crate::Error::NoCandidates)). On error the weights are
/// untouched.
pub fn top_p_probs<T: Real, const V: usize>(
    probs: &mut [T; V],
    p: T,
    scratch: &mut SelectScratch<T, V>,
) -> Result<()> {
    const { assert!(V > 0, "the vocabulary size V must be at least 1") };
    top_p_probs_slice(probs, p, &mut scratch.cand)
}

/// Runtime-vocabulary face of [`top_p`]. An empty slice is
/// [`Error::Empty`](crate::Error::Empty); the scratch must serve exactly
/// `logits.len()` tokens ([`Error::LengthMismatch`](crate::Error::LengthMismatch)
/// otherwise).
#[cfg(feature = "std")]
pub fn top_p_dyn<T: Real>(
    logits: &mut [T],
    p: T,
    scratch: &mut super::select::SelectScratchDyn<T>,
) -> Result<()> {
    super::select::check_dyn(
        "top_p: logits",
        "top_p: scratch",
        logits.len(),
        scratch.len(),
    )?;
    top_p_slice(logits, p, &mut scratch.cand)
}

/// Runtime-vocabulary face of [`top_p_probs`], with the same scratch rules as
/// [`top_p_dyn`].
#[cfg(feature = "std")]
pub fn top_p_probs_dyn<T: Real>(
    probs: &mut [T],
    p: T,
    scratch: &mut super::select::SelectScratchDyn<T>,
) -> Result<()> {
    super::select::check_dyn(
        "top_p_probs: probs",
        "top_p_probs: scratch",
        probs.len(),
        scratch.len(),
    )?;
    top_p_probs_slice(probs, p, &mut scratch.cand)
}
