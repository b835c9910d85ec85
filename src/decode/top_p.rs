//! Top-p (nucleus) filtering by probability-mass quickselect: expected O(V), no sort.

use super::lanes::{Wide, each, map, not_after, push_lanes, with_wide};
use super::select::{
    Cand, ProbScan, SelectScratch, check_unit, scan_logits, scan_probs, select_mass,
};
use crate::error::Result;
use crate::real::Real;

/// `Err(InvalidParameter)` unless `0 ≤ p ≤ 1`.
#[inline]
pub(crate) fn check_p<T: Real>(p: T) -> Result<()> {
    check_unit("top_p", p)
}

/// A source of non-negative weights, one token per lane, in token order.
pub(crate) trait Weights<T: Real, W: Wide<T>> {
    /// Calls `f(base, chunk)` for every chunk of `K` weights in order (`base` = the
    /// first token of the chunk); lanes past the vocabulary are 0.
    fn each(&self, f: impl FnMut(usize, W));

    /// [`each`](Weights::each) restricted to the chunks that may hold a weight
    /// `≥ at_least`: a chunk whose every weight is surely below it may be
    /// skipped (callers use only the lanes at or above it, so skipping one
    /// changes nothing). By default nothing is skipped.
    #[inline(always)]
    fn each_at_least(&self, at_least: T, f: impl FnMut(usize, W)) {
        let _ = at_least;
        self.each(f);
    }
}

/// Half the width of the band of logits around `max + ln w` whose weights
/// `e^(x − max)` may fall on either side of `w`: `2^-7·(1 + |ln w| + |max|)`.
/// Outside the band the comparison with `w` is decided by the logit alone —
/// far beyond the rounding of `x − max` and the error of
/// [`repro_exp`](super::repro_exp) (both below `2^-20` relative).
#[inline(always)]
pub(crate) fn band<T: Real>(max: T, ln_w: T) -> T {
    (T::ONE + ln_w.abs() + max.abs()) * T::from_f64(1.0 / 128.0)
}

/// Stored weights.
pub(crate) struct Stored<'a, T>(pub(crate) &'a [T]);

impl<T: Real, W: Wide<T>> Weights<T, W> for Stored<'_, T> {
    #[inline(always)]
    fn each(&self, f: impl FnMut(usize, W)) {
        each::<T, W>(self.0, T::ZERO, f);
    }
}

/// The weights `e^(x − max)` of logits `x` ([`repro_exp`](super::repro_exp)
/// lane by lane), computed on the fly.
pub(crate) struct ExpOf<'a, T> {
    pub(crate) x: &'a [T],
    pub(crate) max: T,
}

impl<T: Real, W: Wide<T>> Weights<T, W> for ExpOf<'_, T> {
    #[inline(always)]
    fn each(&self, mut f: impl FnMut(usize, W)) {
        let max = W::splat(self.max);
        // Padding with −∞ gives weight e^−∞ = 0.
        each::<T, W>(self.x, T::NEG_INFINITY, |base, v| f(base, (v - max).exp()));
    }

    /// Skips, without an exponential, the chunks whose logits all lie below
    /// the [`band`] around `max + ln(at_least)`.
    #[inline(always)]
    fn each_at_least(&self, at_least: T, mut f: impl FnMut(usize, W)) {
        if at_least.partial_cmp(&T::ZERO) != Some(core::cmp::Ordering::Greater) {
            return Weights::<T, W>::each(self, f);
        }
        let l = at_least.ln();
        let lo = W::splat(self.max + l - band(self.max, l));
        let max = W::splat(self.max);
        each::<T, W>(self.x, T::NEG_INFINITY, |base, v| {
            if W::bits(v.ge(lo)) != 0 {
                f(base, (v - max).exp());
            }
        });
    }
}

/// The reproducible sum of the weights of `src` and the number of positive ones.
#[inline]
pub(crate) fn total_of<T: Real, W: Wide<T>>(src: &impl Weights<T, W>) -> (T, usize) {
    let zero = W::splat(T::ZERO);
    let mut acc = zero;
    let mut positive = 0usize;
    src.each(|_, w| {
        acc = acc + w;
        positive += W::bits(w.gt(zero)).count_ones() as usize;
    });
    (acc.tree(), positive)
}

/// The top-p cut over non-negative weights (unnormalised probabilities).
///
/// `total` is the reproducible sum of the weights of `src`, `positive` the number
/// of positive ones ([`total_of`]) and `top` the largest weight, or a fixed upper
/// bound of it (it places the mass buckets of the quickselect's first round, so
/// it is part of the summation order: every path that must agree passes the
/// same `top`); `cand` must be at least as long as the vocabulary. Returns the
/// last kept candidate — the threshold of [`top_p_mask`] — or `None` when
/// everything survives (`p ≥ 1`, or no positive weight).
///
/// The rule: keep the smallest set of best candidates (weight descending, lower id
/// first) whose weights sum to at least `p·total`; at least one is kept.
///
/// Two floors shrink the quickselect's input without changing the answer:
/// * tokens below `floor = (1 − p)·total / (2n)` (`n` positive weights) together
///   weigh at most half of the mass top-p may remove, so they lie beyond the cut
///   and are dropped;
/// * tokens at or above `16 · floor` are gathered first (one vector pass); when
///   their own mass (the reproducible sum over them, in token order) already
///   reaches `p·total`, the cut lies among them and the rest is dropped too;
///   otherwise a second pass gathers every token at or above `floor`.
#[inline]
pub(crate) fn top_p_cut<T: Real, W: Wide<T>>(
    p: T,
    total: T,
    positive: usize,
    top: T,
    src: &impl Weights<T, W>,
    cand: &mut [Cand<T>],
) -> Option<Cand<T>> {
    if p >= T::ONE || positive == 0 {
        return None;
    }
    let need = p * total;
    let floor = (T::ONE - p) * total / T::from_usize(positive) * T::HALF;
    let high = floor * T::from_f64(16.0);
    let zero = W::splat(T::ZERO);
    // The tokens ≥ high, in token order, and their mass.
    let hv = W::splat(high);
    let mut acc = zero;
    let mut n = 0usize;
    // (Skipped chunks hold no lane ≥ high: they would add +0 to `acc`.)
    src.each_at_least(high, |base, w| {
        let m = w.ge(hv) & w.gt(zero);
        acc = acc + (w & m);
        push_lanes(w, W::bits(m), base, cand, &mut n, |_| true);
    });
    if n == 0 || acc.tree() < need {
        // Every token ≥ floor, in token order.
        let fv = W::splat(floor);
        n = 0;
        src.each_at_least(floor, |base, w| {
            let m = w.ge(fv) & w.gt(zero);
            push_lanes(w, W::bits(m), base, cand, &mut n, |_| true);
        });
    }
    select_mass(cand.get_mut(..n)?, need, top)
}

/// The lanes of weights `w` (tokens `base..`) that survive the top-p cut `th`:
/// the positive weights that do not come after `th` in candidate order.
#[inline(always)]
pub(crate) fn top_p_mask<T: Real, W: Wide<T>>(th: Cand<T>, w: W, base: usize) -> W {
    not_after(w, th, base) & w.gt(W::splat(T::ZERO))
}

/// The logits form shared by both faces.
pub(crate) fn top_p_slice<T: Real>(logits: &mut [T], p: T, cand: &mut [Cand<T>]) -> Result<()> {
    check_p(p)?;
    let scan = scan_logits("top_p: logits", logits)?;
    with_wide!(T, top_p_logits(logits, p, scan.max, cand));
    Ok(())
}

fn top_p_logits<T: Real, W: Wide<T>>(logits: &mut [T], p: T, max: T, cand: &mut [Cand<T>]) {
    let th = {
        let src = ExpOf { x: logits, max };
        let (total, positive) = total_of::<T, W>(&src);
        top_p_cut::<T, W>(p, total, positive, T::ONE, &src, cand)
    };
    if let Some(th) = th {
        let (mv, ninf) = (W::splat(max), W::splat(T::NEG_INFINITY));
        // Logits above the band around the threshold's are kept and those
        // below it dropped without their exponential; a chunk with a lane in
        // the band takes the exact rule.
        let l = th.key.ln();
        let d = band(max, l);
        let (lo, hi) = (W::splat(max + l - d), W::splat(max + l + d));
        let all = u32::MAX >> (32 - W::K);
        map::<T, W>(logits, T::NEG_INFINITY, |base, x| {
            let keep = x.gt(hi);
            if W::bits(keep | lo.gt(x)) == all {
                W::select(keep, x, ninf)
            } else {
                W::select(top_p_mask(th, (x - mv).exp(), base), x, ninf)
            }
        });
    }
}

/// The probability form shared by both faces.
pub(crate) fn top_p_probs_slice<T: Real>(
    probs: &mut [T],
    p: T,
    cand: &mut [Cand<T>],
) -> Result<()> {
    check_p(p)?;
    let scan = scan_probs("top_p_probs: probs", probs)?;
    with_wide!(T, top_p_probs_w(probs, p, scan, cand));
    Ok(())
}

fn top_p_probs_w<T: Real, W: Wide<T>>(
    probs: &mut [T],
    p: T,
    scan: ProbScan<T>,
    cand: &mut [Cand<T>],
) {
    let th = top_p_cut::<T, W>(p, scan.total, scan.positive, scan.max, &Stored(probs), cand);
    if let Some(th) = th {
        map::<T, W>(probs, T::ZERO, |base, w| w & top_p_mask(th, w, base));
    }
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
/// their total is the reproducible sum of the [module documentation](super), and
/// the cut is found by a probability-mass quickselect (partition around a pivot,
/// keep the side that holds the needed mass) in expected O(V): no sort. Partial
/// masses are summed in an order fixed by the algorithm — deterministic on every
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
