//! Top-k filtering by quickselect: expected O(V), no sort.

use super::lanes::{Wide, each, map, not_after, push_lanes, with_wide};
use super::select::{Cand, SelectScratch, scan_logits, select_nth};
use crate::error::{Error, Result};
use crate::real::Real;

/// `Err(InvalidParameter)` for `k = 0`.
#[inline]
pub(crate) fn check_k(k: usize) -> Result<()> {
    if k == 0 {
        Err(Error::InvalidParameter {
            what: "top_k",
            reason: "k must be at least 1",
        })
    } else {
        Ok(())
    }
}

/// Tokens sampled to estimate a pre-filter threshold for top-k.
const SAMPLE: usize = 512;

/// Fills `cand` with the candidates of `keys` above −∞ that do not come after
/// `th` (all of them for `None`), in token order, and returns how many. One
/// vector comparison per chunk; only the lanes that pass are written.
#[inline]
fn fill<T: Real>(keys: &[T], th: Option<Cand<T>>, cand: &mut [Cand<T>]) -> usize {
    with_wide!(T, fill_w(keys, th, cand))
}

fn fill_w<T: Real, W: Wide<T>>(keys: &[T], th: Option<Cand<T>>, cand: &mut [Cand<T>]) -> usize {
    let mut n = 0;
    match th {
        // th.key > −∞ (it is a candidate), so `≥ th.key` excludes −∞.
        Some(th) => {
            let lim = W::splat(th.key);
            each::<T, W>(keys, T::NEG_INFINITY, |base, v| {
                push_lanes(v, W::bits(v.ge(lim)), base, cand, &mut n, |c| !th.before(c));
            });
        }
        None => {
            let ninf = W::splat(T::NEG_INFINITY);
            each::<T, W>(keys, T::NEG_INFINITY, |base, v| {
                push_lanes(v, W::bits(v.gt(ninf)), base, cand, &mut n, |_| true);
            });
        }
    }
    n
}

/// The top-k cut over `keys` (the logits, already divided by the temperature).
///
/// Returns the k-th best candidate — a key survives when it does not come after
/// it ([`not_after`]) — or `None`
/// when `k ≥ finite` (everything survives). `cand` must be as long as `keys`.
///
/// For small `k` a deterministic sample of [`SAMPLE`] evenly spaced tokens gives a
/// threshold that about `2k` tokens pass; the quickselect then runs on those only.
/// If fewer than `k` pass (an unlucky sample), it runs on every token instead.
/// Either way the result is the exact k-th best.
#[inline]
pub(crate) fn top_k_cut<T: Real>(
    keys: &[T],
    k: usize,
    finite: usize,
    cand: &mut [Cand<T>],
) -> Option<Cand<T>> {
    if k >= finite {
        return None;
    }
    let v = keys.len();
    if v >= 4 * SAMPLE && k.saturating_mul(16) <= v {
        let mut n = 0;
        for j in 0..SAMPLE {
            // Evenly spaced positions (u64: no overflow on 32-bit targets).
            let i = (j as u64 * v as u64 / SAMPLE as u64) as usize;
            if let (Some(&key), Some(slot)) = (keys.get(i), cand.get_mut(n))
                && key > T::NEG_INFINITY
            {
                *slot = Cand { key, id: i as u32 };
                n += 1;
            }
        }
        // The sample rank expected to hold about twice k tokens above it overall.
        let expect = (k as u64 * SAMPLE as u64 / v as u64) as usize;
        let rank = 2 * expect + 8;
        if rank <= n {
            let th = select_nth(cand.get_mut(..n)?, rank)?;
            let m = fill(keys, Some(th), cand);
            if m >= k {
                return select_nth(cand.get_mut(..m)?, k);
            }
        }
    }
    let n = fill(keys, None, cand);
    select_nth(cand.get_mut(..n)?, k)
}

/// The slice form shared by both faces.
pub(crate) fn top_k_slice<T: Real>(logits: &mut [T], k: usize, cand: &mut [Cand<T>]) -> Result<()> {
    check_k(k)?;
    let scan = scan_logits("top_k: logits", logits)?;
    if let Some(th) = top_k_cut(logits, k, scan.finite, cand) {
        with_wide!(T, top_k_mask_logits(logits, th));
    }
    Ok(())
}

/// Sets the logits that come after the cut `th` to −∞ ([`not_after`];
/// `th.key > −∞`, so a kept logit is above −∞).
fn top_k_mask_logits<T: Real, W: Wide<T>>(logits: &mut [T], th: Cand<T>) {
    let ninf = W::splat(T::NEG_INFINITY);
    map::<T, W>(logits, T::NEG_INFINITY, |base, x| {
        W::select(not_after(x, th, base), x, ninf)
    });
}

/// Top-k in place: keeps **exactly `k`** logits — the `k` largest, **ties broken
/// by lower token id** — and sets the others to −∞.
///
/// `k ≥ V` (or `k` at least the number of logits above −∞) keeps everything;
/// logits already at −∞ stay there. Found by quickselect in expected O(V) time
/// (a heapsort fallback bounds the worst case by O(V log V)); no sort of the
/// vocabulary. Hugging Face's `TopKLogitsWarper` keeps *every* logit tied with the
/// k-th one, so the two agree on tie-free inputs only.
///
/// Errors: `k = 0`, a `+∞` logit ([`Error::InvalidParameter`]); NaN
/// ([`Error::NaN`]); every logit −∞ ([`Error::NoCandidates`]). On error the logits
/// are untouched.
///
/// ```
/// use constml::decode::{top_k, SelectScratch};
/// let mut scratch = SelectScratch::<f32, 5>::new();
/// let mut x = [1.0f32, 3.0, 2.0, 3.0, 0.0];
/// top_k(&mut x, 2, &mut scratch)?; // the tie at 3.0: both are in the top 2
/// assert_eq!(x, [f32::NEG_INFINITY, 3.0, f32::NEG_INFINITY, 3.0, f32::NEG_INFINITY]);
/// let mut y = [1.0f32, 3.0, 2.0, 3.0, 0.0];
/// top_k(&mut y, 1, &mut scratch)?; // lower id wins the tie
/// assert_eq!(y[1], 3.0);
/// assert_eq!(y[3], f32::NEG_INFINITY);
/// # Ok::<(), constml::Error>(())
/// ```
pub fn top_k<T: Real, const V: usize>(
    logits: &mut [T; V],
    k: usize,
    scratch: &mut SelectScratch<T, V>,
) -> Result<()> {
    const { assert!(V > 0, "the vocabulary size V must be at least 1") };
    top_k_slice(logits, k, &mut scratch.cand)
}

/// Runtime-vocabulary face of [`top_k`]. The scratch must serve exactly
/// `logits.len()` tokens ([`Error::LengthMismatch`] otherwise); an empty slice is
/// [`Error::Empty`].
#[cfg(feature = "std")]
pub fn top_k_dyn<T: Real>(
    logits: &mut [T],
    k: usize,
    scratch: &mut super::select::SelectScratchDyn<T>,
) -> Result<()> {
    super::select::check_dyn(
        "top_k: logits",
        "top_k: scratch",
        logits.len(),
        scratch.len(),
    )?;
    top_k_slice(logits, k, &mut scratch.cand)
}
