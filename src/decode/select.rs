//! Shared selection machinery: the candidate order, an expected-O(n) quickselect for
//! the k-th best candidate, a probability-mass quickselect, the logits and
//! probability scans every decoding entry point starts with, and the caller-owned
//! [`SelectScratch`].
//!
//! Everything here is deterministic: pivots come from a fixed-seed generator, and
//! every mass is summed in an order fixed by the algorithm (never by the SIMD
//! width of the build), so the same input gives the same cut on every target.

use super::lanes::{Wide, each, with_wide};
use crate::error::{Error, Result};
use crate::real::Real;

/// One candidate token: a key (a scaled logit or a probability weight) and its id.
///
/// Candidates are ordered by key, larger first, and on equal keys by token id,
/// lower first: a strict total order (keys are never NaN here), so "the k best"
/// and "the smallest most-probable set" are always unique.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct Cand<T> {
    pub(crate) key: T,
    pub(crate) id: u32,
}

impl<T: Real> Cand<T> {
    /// A placeholder used to fill scratch arrays in `const fn new()`.
    pub(crate) const ZERO: Self = Cand {
        key: T::ZERO,
        id: 0,
    };

    /// `true` if `self` comes strictly before `other` in candidate order.
    #[inline(always)]
    pub(crate) fn before(self, other: Self) -> bool {
        // Non-short-circuit operators: no branch on an unpredictable comparison.
        (self.key > other.key) | ((self.key == other.key) & (self.id < other.id))
    }
}

/// Ranges at most this long are finished with an insertion sort.
const SMALL: usize = 32;

/// A small fixed-seed xorshift generator for pivot positions (deterministic).
struct PivotRng(u32);

impl PivotRng {
    fn new(n: usize) -> Self {
        // Any non-zero seed works; mixing in `n` varies the pivots between sizes.
        PivotRng((0x9E37_79B9 ^ (n as u32)) | 1)
    }
    #[inline]
    fn below(&mut self, n: usize) -> usize {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.0 = x;
        // The multiply-shift maps x onto 0..n without division.
        ((x as u64 * n as u64) >> 32) as usize
    }
}

/// The median (in candidate order) of three pseudo-random elements of a
/// non-empty `c`.
#[inline]
fn pivot<T: Real>(c: &[Cand<T>], rng: &mut PivotRng) -> Option<Cand<T>> {
    let n = c.len();
    let a = *c.get(rng.below(n))?;
    let b = *c.get(rng.below(n))?;
    let d = *c.get(rng.below(n))?;
    Some(if a.before(b) {
        if b.before(d) {
            b
        } else if a.before(d) {
            d
        } else {
            a
        }
    } else if a.before(d) {
        a
    } else if b.before(d) {
        d
    } else {
        b
    })
}

/// The number of candidates of `c` that come before `p`, and the sum of their
/// keys. The sum uses four partial sums — the candidate at position `i` of `c`
/// goes to partial `i mod 4`, each summed in increasing `i` — combined as
/// `(s0 + s1) + (s2 + s3)`: a fixed order (independent of the build) that does not
/// wait on one long chain of additions.
#[inline]
fn count_before<T: Real>(c: &[Cand<T>], p: Cand<T>) -> (usize, T) {
    let mut n = 0usize;
    let mut m = [T::ZERO; 4];
    let (chunks, tail) = c.as_chunks::<4>();
    for ch in chunks {
        for (mj, &x) in m.iter_mut().zip(ch) {
            let b = x.before(p);
            n += b as usize;
            *mj += if b { x.key } else { T::ZERO };
        }
    }
    for (mj, &x) in m.iter_mut().zip(tail) {
        let b = x.before(p);
        n += b as usize;
        *mj += if b { x.key } else { T::ZERO };
    }
    let [a, b, c, d] = m;
    (n, (a + b) + (c + d))
}

/// The number of candidates of `c` that come before `p` (no mass).
#[inline]
fn count_only<T: Real>(c: &[Cand<T>], p: Cand<T>) -> usize {
    c.iter().map(|&x| x.before(p) as usize).sum()
}

/// Moves the candidates of `c` that come before `p` (`keep_before`) or after it
/// to the front of `c`, in their order, and returns how many there are. The write
/// index never passes the read index, so this is a single branch-free pass.
#[inline]
fn compact<T: Real>(c: &mut [Cand<T>], p: Cand<T>, keep_before: bool) -> usize {
    let mut i = 0;
    for j in 0..c.len() {
        let x = c[j];
        c[i] = x;
        let keep = if keep_before {
            x.before(p)
        } else {
            p.before(x)
        };
        i += keep as usize;
    }
    i
}

/// Sorts `c` into candidate order (insertion sort; short slices only).
fn insertion_sort<T: Real>(c: &mut [Cand<T>]) {
    for i in 1..c.len() {
        let x = c[i];
        let mut j = i;
        while j > 0 && x.before(c[j - 1]) {
            c[j] = c[j - 1];
            j -= 1;
        }
        c[j] = x;
    }
}

/// Sorts `c` into candidate order with a heapsort: the worst-case fallback of the
/// quickselects, O(n log n), reached only after many unlucky pivots.
fn heap_sort<T: Real>(c: &mut [Cand<T>]) {
    let n = c.len();
    // A max-heap whose maximum is the candidate that sorts last yields the slice
    // in candidate order (best first).
    let sift = |s: &mut [Cand<T>], mut root: usize, end: usize| loop {
        let mut child = 2 * root + 1;
        if child >= end {
            break;
        }
        if child + 1 < end && s[child].before(s[child + 1]) {
            child += 1;
        }
        if s[root].before(s[child]) {
            s.swap(root, child);
            root = child;
        } else {
            break;
        }
    };
    for start in (0..n / 2).rev() {
        sift(c, start, n);
    }
    for end in (1..n).rev() {
        c.swap(0, end);
        sift(c, 0, end);
    }
}

/// Sorts a short or unlucky range in candidate order.
fn finish_sort<T: Real>(c: &mut [Cand<T>]) {
    if c.len() <= SMALL {
        insertion_sort(c);
    } else {
        heap_sort(c);
    }
}

/// The number of rounds after which a quickselect gives up on pivots and sorts
/// what is left with [`heap_sort`]: about twice the expected depth.
fn round_budget(n: usize) -> u32 {
    2 * (usize::BITS - n.leading_zeros()) + 16
}

/// The `n`-th best candidate of `c` (1-based), by quickselect: each round counts
/// the candidates before a pivot and keeps (compacts) the side holding the
/// target. Expected O(len), worst case O(len · log len). The contents of `c` are
/// consumed. `None` unless `1 ≤ n ≤ c.len()`.
pub(crate) fn select_nth<T: Real>(c: &mut [Cand<T>], n: usize) -> Option<Cand<T>> {
    if n == 0 || n > c.len() {
        return None;
    }
    let mut rank = n - 1; // 0-based rank of the target within c[..len]
    let mut len = c.len();
    let mut rng = PivotRng::new(len);
    let mut rounds = round_budget(len);
    loop {
        let r = c.get_mut(..len)?;
        if len <= SMALL || rounds == 0 {
            finish_sort(r);
            return r.get(rank).copied();
        }
        rounds -= 1;
        let p = pivot(r, &mut rng)?;
        let before = count_only(r, p);
        if before == rank {
            return Some(p);
        }
        if rank < before {
            len = compact(r, p, true);
        } else {
            rank -= before + 1;
            len = compact(r, p, false);
        }
    }
}

/// Probability-mass quickselect. The keys of `c` are non-negative weights, at
/// most `top` (an upper bound: it places the buckets of the first round, so it
/// is part of the summation order).
///
/// Returns the last candidate (in candidate order) of the smallest set of best
/// candidates whose weights sum to at least `need` (at least one candidate).
/// On a long `c` a first round narrows the search to one quarter-octave bucket
/// of weights (`bucket_round`); then each round sums the weights before a pivot
/// and keeps the side that holds the needed mass: expected O(len). Masses are
/// summed in an order fixed by the algorithm (bucket masses in array order, then
/// `count_before`'s four partial sums, the final short range walked sequentially
/// in candidate order) — deterministic on every target. If rounding keeps the
/// running sum below `need` to the end of the range searched, the last candidate
/// of that range is returned. `None` only for an empty `c`. The contents of `c`
/// are consumed.
pub(crate) fn select_mass<T: Real>(c: &mut [Cand<T>], need: T, top: T) -> Option<Cand<T>> {
    let mut len = c.len();
    // `acc` is the mass of the candidates already known to come before c[..len].
    let mut acc = T::ZERO;
    let mut rng = PivotRng::new(len);
    let mut rounds = round_budget(len);
    // The best candidate after the range, if any: the answer when the range runs
    // out before the mass is reached.
    let mut next: Option<Cand<T>> = None;
    if len > 4 * BUCKETS {
        len = bucket_round(c, need, top, &mut acc);
    }
    loop {
        let r = c.get_mut(..len)?;
        if len <= SMALL || rounds == 0 {
            finish_sort(r);
            for &x in r.iter() {
                acc += x.key;
                if acc >= need {
                    return Some(x);
                }
            }
            return r.last().copied().or(next);
        }
        rounds -= 1;
        let p = pivot(r, &mut rng)?;
        let (before, mass) = count_before(r, p);
        if acc + mass >= need {
            if before == 0 {
                return Some(p);
            }
            len = compact(r, p, true);
            next = Some(p);
        } else {
            acc = acc + mass + p.key;
            if acc >= need {
                return Some(p);
            }
            len = compact(r, p, false);
            if len == 0 {
                return Some(p);
            }
        }
    }
}

/// Buckets of the first round of [`select_mass`]: quarter octaves below `top`.
const BUCKETS: usize = 128;

/// The bucket of a positive key: the number of quarter octaves it lies below
/// `top_bits` (the `f64` bits of an upper bound of the keys, shifted right by 50:
/// exponent and two leading mantissa bits), clamped to the last bucket. For
/// positive floats the bits grow with the value, so better candidates never lie
/// in later buckets: the buckets are consecutive runs of the candidate order.
#[inline(always)]
fn bucket<T: Real>(key: T, top_bits: u64) -> usize {
    let k = key.as_f64().to_bits() >> 50;
    (top_bits.saturating_sub(k) as usize).min(BUCKETS - 1)
}

/// The first round of [`select_mass`] on a long `c` of positive keys at most
/// `top`: one pass sums the keys bucket by bucket ([`bucket`]; each bucket's mass
/// in array order), the bucket where the running mass (in bucket order, from
/// `acc`) reaches `need` is compacted to the front of `c`, and the mass of the
/// buckets before it is added to `acc`. If no bucket reaches `need` (rounding),
/// the last non-empty bucket is kept. Returns the length of the kept range (at
/// least 1 for a non-empty `c`). Deterministic.
fn bucket_round<T: Real>(c: &mut [Cand<T>], need: T, top: T, acc: &mut T) -> usize {
    let top_bits = top.as_f64().to_bits() >> 50;
    let mut mass = [T::ZERO; BUCKETS];
    let mut count = [0u32; BUCKETS];
    for x in c.iter() {
        let b = bucket(x.key, top_bits);
        if let (Some(m), Some(n)) = (mass.get_mut(b), count.get_mut(b)) {
            *m += x.key;
            *n += 1;
        }
    }
    // `run` is the mass before bucket b; the cut bucket keeps its own.
    let mut run = *acc;
    let mut cut = None;
    for (b, (&m, &n)) in mass.iter().zip(count.iter()).enumerate() {
        if n == 0 {
            continue;
        }
        cut = Some(b);
        *acc = run;
        if run + m >= need {
            break;
        }
        run += m;
    }
    let Some(cut) = cut else {
        return c.len();
    };
    let mut i = 0;
    for j in 0..c.len() {
        let x = c[j];
        c[i] = x;
        i += (bucket(x.key, top_bits) == cut) as usize;
    }
    i
}

/// What a decoding entry point needs to know about its logits.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Scan<T> {
    /// The largest logit: the bits of `logits[argmax]`.
    pub(crate) max: T,
    /// The lowest token id holding `max`.
    pub(crate) argmax: usize,
    /// The number of logits above −∞.
    pub(crate) finite: usize,
}

/// Validates logits for the probability-based processors and the sampler.
///
/// `Err(Empty)` for no logits, `Err(OutOfRange)` for a vocabulary that does not
/// fit token ids in `u32`, `Err(NaN)` for any NaN, `Err(InvalidParameter)` for any
/// +∞ (its probability is undefined), `Err(NoCandidates)` when every logit is −∞.
///
/// One fixed-width vector pass finds the maximum, any NaN and the number of
/// logits above −∞; a second finds the first logit equal to the maximum. A
/// maximum is exact and its value does not depend on the reduction order —
/// except for the sign of a zero: `+0` and `−0` compare equal. So the scan reads
/// the maximum back from the first logit that holds it: `max` has the same bits
/// on every build.
pub(crate) fn scan_logits<T: Real>(what: &'static str, logits: &[T]) -> Result<Scan<T>> {
    if logits.is_empty() {
        return Err(Error::Empty { what });
    }
    check_vocab(what, logits.len())?;
    let (m, nan, finite) = with_wide!(T, max_scan(logits));
    if nan {
        return Err(Error::NaN { what });
    }
    if m == T::INFINITY {
        return Err(Error::InvalidParameter {
            what,
            reason: "logits must not contain +inf",
        });
    }
    if m == T::NEG_INFINITY {
        return Err(Error::NoCandidates);
    }
    // `m` is one of the logits, so the search succeeds; the fallback is unreachable.
    let argmax = with_wide!(T, first_equal(logits, m));
    let max = logits.get(argmax).copied().unwrap_or(m);
    Ok(Scan {
        max,
        argmax,
        finite,
    })
}

/// `(maximum, any NaN, number above −∞)` of `x` (the maximum ignores NaN). Four
/// running maxima break the compare-and-select dependency chain; a maximum is
/// exact, so their number does not change the result (up to the sign of a zero,
/// which [`scan_logits`] reads back from the logits).
#[inline]
fn max_scan<T: Real, W: Wide<T>>(x: &[T]) -> (T, bool, usize) {
    let ninf = W::splat(T::NEG_INFINITY);
    let mut m = [ninf; 4];
    let mut nan = 0u32;
    let mut finite = 0usize;
    let mut step = |m: &mut W, v: W| {
        *m = W::select(v.gt(*m), v, *m);
        nan |= W::bits(v.ne(v));
        finite += W::bits(v.gt(ninf)).count_ones() as usize;
    };
    let (chunks, tail) = W::split(x);
    let (quads, rest) = chunks.as_chunks::<4>();
    for q in quads {
        for (mj, c) in m.iter_mut().zip(q) {
            step(mj, W::load(c));
        }
    }
    let mut last = W::chunk_of(T::NEG_INFINITY);
    for (d, &v) in last.as_mut().iter_mut().zip(tail) {
        *d = v;
    }
    for (mj, c) in m.iter_mut().zip(rest.iter().chain(Some(&last))) {
        step(mj, W::load(c));
    }
    let [a, b, c, d] = m;
    let top = a
        .max_lane()
        .max(b.max_lane())
        .max(c.max_lane().max(d.max_lane()));
    (top, nan != 0, finite)
}

/// The index of the first element of `x` equal to `m` (`0` if none).
#[inline]
fn first_equal<T: Real, W: Wide<T>>(x: &[T], m: T) -> usize {
    let mv = W::splat(m);
    let (chunks, tail) = W::split(x);
    for (c, chunk) in chunks.iter().enumerate() {
        let b = W::bits(W::load(chunk).eq(mv));
        if b != 0 {
            return c * W::K + b.trailing_zeros() as usize;
        }
    }
    tail.iter()
        .position(|&v| v == m)
        .map_or(0, |j| chunks.len() * W::K + j)
}

/// What [`scan_probs`] reports about valid weights.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ProbScan<T> {
    /// The largest weight.
    pub(crate) max: T,
    /// The reproducible sum of all weights (the order of the
    /// [module documentation](super)).
    pub(crate) total: T,
    /// The number of positive weights.
    pub(crate) positive: usize,
}

/// Validates non-negative weights (probabilities, not necessarily normalised):
/// `Err(Empty)` for none, `Err(OutOfRange)` for a vocabulary beyond `u32` ids,
/// `Err(NaN)` or `Err(InvalidParameter)` for the first NaN, negative or infinite
/// entry (in token order), `Err(NoCandidates)` when all are zero,
/// `Err(InvalidParameter)` for an infinite sum.
///
/// The sum is the reproducible one (`K` interleaved partial sums and a fixed
/// tree; see the [module documentation](super)), the order the draw uses.
pub(crate) fn scan_probs<T: Real>(what: &'static str, probs: &[T]) -> Result<ProbScan<T>> {
    if probs.is_empty() {
        return Err(Error::Empty { what });
    }
    check_vocab(what, probs.len())?;
    let (bad, scan) = with_wide!(T, prob_scan(probs));
    if bad {
        // Report the first offending entry, as a sequential scan would.
        for &x in probs {
            if x.is_nan() {
                return Err(Error::NaN { what });
            }
            if x < T::ZERO || x == T::INFINITY {
                return Err(Error::InvalidParameter {
                    what,
                    reason: "probabilities must be finite and >= 0",
                });
            }
        }
    }
    if scan.max == T::ZERO {
        return Err(Error::NoCandidates);
    }
    if !scan.total.is_finite() {
        return Err(Error::InvalidParameter {
            what,
            reason: "probabilities must have a finite sum",
        });
    }
    Ok(scan)
}

/// One vector pass over weights: whether any is NaN, negative or +∞, and the
/// [`ProbScan`] figures (meaningful only when none is).
#[inline]
fn prob_scan<T: Real, W: Wide<T>>(q: &[T]) -> (bool, ProbScan<T>) {
    let zero = W::splat(T::ZERO);
    let inf = W::splat(T::INFINITY);
    let mut bad = 0u32;
    let mut m = zero;
    let mut acc = zero;
    let mut positive = 0usize;
    each::<T, W>(q, T::ZERO, |_, v| {
        bad |= W::bits(v.ne(v) | zero.gt(v) | v.eq(inf));
        m = W::select(v.gt(m), v, m);
        acc = acc + v;
        positive += W::bits(v.gt(zero)).count_ones() as usize;
    });
    (
        bad != 0,
        ProbScan {
            max: m.max_lane(),
            total: acc.tree(),
            positive,
        },
    )
}

/// `Err(OutOfRange)` if token ids of a vocabulary of `v` do not fit in `u32`.
#[inline]
pub(crate) fn check_vocab(what: &'static str, v: usize) -> Result<()> {
    if v as u64 > u32::MAX as u64 {
        return Err(Error::OutOfRange {
            what,
            index: v,
            len: u32::MAX as usize,
        });
    }
    Ok(())
}

/// `Err(InvalidParameter)` unless `0 ≤ x ≤ 1` (NaN fails): the range of `p` and
/// `min_p`.
#[inline]
pub(crate) fn check_unit<T: Real>(what: &'static str, x: T) -> Result<()> {
    if x >= T::ZERO && x <= T::ONE {
        Ok(())
    } else {
        Err(Error::InvalidParameter {
            what,
            reason: "must be in [0, 1]",
        })
    }
}

/// Caller-owned scratch for [`top_k`](super::top_k), [`top_p`](super::top_p) and
/// [`top_p_probs`](super::top_p_probs) over a vocabulary of `V` tokens.
///
/// It holds one (key, token id) candidate per token: [`SelectScratch::BYTES`]
/// bytes, `8·V` for `f32` and `16·V` for `f64`. Build it once with the `const fn`
/// [`SelectScratch::new`] (it can live in a `static`) and reuse it for every call;
/// its contents between calls are meaningless.
///
/// `V` must be at least 1 (a compile-time check):
///
/// ```compile_fail,E0080
/// let s = constml::decode::SelectScratch::<f32, 0>::new();
/// ```
#[derive(Clone, Debug)]
pub struct SelectScratch<T, const V: usize> {
    pub(crate) cand: [Cand<T>; V],
}

impl<T: Real, const V: usize> SelectScratch<T, V> {
    /// Size of this scratch in bytes.
    pub const BYTES: usize = core::mem::size_of::<Self>();

    /// Scratch for a vocabulary of `V` tokens.
    pub const fn new() -> Self {
        const { assert!(V > 0, "the vocabulary size V must be at least 1") };
        Self {
            cand: [Cand::ZERO; V],
        }
    }
}

impl<T: Real, const V: usize> Default for SelectScratch<T, V> {
    fn default() -> Self {
        Self::new()
    }
}

/// Heap-backed scratch for the runtime-vocabulary faces [`top_k_dyn`](super::top_k_dyn),
/// [`top_p_dyn`](super::top_p_dyn) and [`top_p_probs_dyn`](super::top_p_probs_dyn):
/// one candidate per token (`8·V` bytes for `f32`, `16·V` for `f64`). Its length
/// must equal the vocabulary size of the logits it is used with.
#[cfg(feature = "std")]
#[derive(Clone, Debug)]
pub struct SelectScratchDyn<T> {
    pub(crate) cand: std::vec::Vec<Cand<T>>,
}

#[cfg(feature = "std")]
impl<T: Real> SelectScratchDyn<T> {
    /// Scratch for a vocabulary of `v` tokens; `Err` if it cannot be allocated.
    pub fn new(v: usize) -> Result<Self> {
        Ok(Self {
            cand: crate::matrix::filled_vec("SelectScratchDyn::new", v, Cand::ZERO)?,
        })
    }
    /// The vocabulary size this scratch serves.
    pub fn len(&self) -> usize {
        self.cand.len()
    }
    /// `true` for a scratch of vocabulary size 0 (usable with nothing).
    pub fn is_empty(&self) -> bool {
        self.cand.is_empty()
    }
}

/// The checks of every runtime-vocabulary face that takes a scratch:
/// `Err(Empty)` (reported as `input`) for a vocabulary of 0, then
/// `Err(LengthMismatch)` (reported as `scratch`) unless the scratch serves exactly
/// `v` tokens.
#[cfg(feature = "std")]
#[inline]
pub(crate) fn check_dyn(
    input: &'static str,
    scratch: &'static str,
    v: usize,
    found: usize,
) -> Result<()> {
    if v == 0 {
        return Err(Error::Empty { what: input });
    }
    crate::error::check_len(scratch, v, found)
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec::Vec;

    fn cands(keys: &[f32]) -> Vec<Cand<f32>> {
        keys.iter()
            .enumerate()
            .map(|(i, &k)| Cand {
                key: k,
                id: i as u32,
            })
            .collect()
    }

    fn sorted(mut c: Vec<Cand<f32>>) -> Vec<Cand<f32>> {
        c.sort_by(|a, b| {
            if a.before(*b) {
                core::cmp::Ordering::Less
            } else if b.before(*a) {
                core::cmp::Ordering::Greater
            } else {
                core::cmp::Ordering::Equal
            }
        });
        c
    }

    #[test]
    fn scan_max_is_the_first_maximal_logit_bitwise() {
        // +0 and −0 compare equal, and a SIMD max returns either one depending on
        // the order it meets them in (that is, on the lane width). The scan must
        // report the first maximal logit's own bits on every build.
        for (first, rest) in [(0.0f32, -0.0f32), (-0.0, 0.0)] {
            let mut x = [-1.0f32; 70];
            x[0] = first;
            for i in [4, 8, 16, 32, 48, 64, 69] {
                x[i] = rest;
            }
            let s = scan_logits("test", &x).unwrap();
            assert_eq!(s.argmax, 0);
            assert_eq!(s.max.to_bits(), first.to_bits(), "first {first:?}");
            let y: [f64; 70] = core::array::from_fn(|i| x[i] as f64);
            let s = scan_logits("test", &y).unwrap();
            assert_eq!(
                s.max.to_bits(),
                (first as f64).to_bits(),
                "f64, first {first:?}"
            );
        }
    }

    #[test]
    fn select_nth_matches_sorting() {
        let mut x = 12345u32;
        for n in [1usize, 2, 3, 31, 32, 33, 100, 1000, 5000] {
            let keys: Vec<f32> = (0..n)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    (x % 50) as f32 // many ties
                })
                .collect();
            let want = sorted(cands(&keys));
            for k in [1, 2, n / 3 + 1, n / 2 + 1, n]
                .into_iter()
                .filter(|&k| k <= n)
            {
                let mut c = cands(&keys);
                assert_eq!(select_nth(&mut c, k), Some(want[k - 1]), "n {n} k {k}");
            }
            assert_eq!(select_nth(&mut cands(&keys), 0), None);
            assert_eq!(select_nth(&mut cands(&keys), n + 1), None);
        }
    }

    #[test]
    fn sorts_sort() {
        let keys: Vec<f32> = (0..300).map(|i| ((i * 7919) % 101) as f32).collect();
        let mut c = cands(&keys);
        heap_sort(&mut c);
        assert_eq!(c, sorted(cands(&keys)));
        let mut c = cands(&keys[..30]);
        insertion_sort(&mut c);
        assert_eq!(c, sorted(cands(&keys[..30])));
    }

    #[test]
    fn worst_case_input_falls_back_to_heapsort() {
        // Whatever the pivots do, the budget bounds the rounds; results stay exact.
        let keys: Vec<f32> = (0..4000).map(|i| (i / 2) as f32).collect();
        let want = sorted(cands(&keys));
        for k in [1, 1000, 3999] {
            assert_eq!(select_nth(&mut cands(&keys), k), Some(want[k - 1]));
        }
    }

    #[test]
    fn select_mass_is_smallest_prefix() {
        let mut x = 777u32;
        for n in [1usize, 5, 30, 200, 2000, 10_000] {
            let keys: Vec<f32> = (0..n)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    ((x % 16) as f32) * 0.0625 // dyadic: sums are exact
                })
                .collect();
            let total: f32 = keys.iter().sum();
            let want = sorted(cands(&keys));
            for frac in [0.0f32, 0.25, 0.5, 0.75, 0.875, 1.0] {
                let need = total * frac;
                let got = select_mass(&mut cands(&keys), need, 1.0).unwrap();
                // Reference: walk the sorted order.
                let mut acc = 0.0;
                let mut wm = want[n - 1];
                for w in &want {
                    acc += w.key;
                    if acc >= need {
                        wm = *w;
                        break;
                    }
                }
                assert_eq!(got, wm, "n {n} frac {frac}");
            }
        }
        assert_eq!(select_mass::<f32>(&mut [], 1.0, 1.0), None);
    }
}
