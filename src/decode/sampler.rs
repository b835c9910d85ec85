//! The sampler pipeline: temperature → top-k → top-p → min-p → draw, in Hugging
//! Face's order, allocation-free and bit-reproducible.

use rand_core::Rng;

use super::draw::draw_slice;
use super::lanes::{Wide, map, map_into, map_zip, not_after, with_wide};
use super::min_p::check_min_p;
use super::select::{Cand, scan_logits};
use super::temperature::{Temp, check_temperature, greedy_mask, resolve};
use super::top_k::{check_k, top_k_cut};
use super::top_p::{Stored, check_p, top_p_cut, top_p_mask};
use crate::error::{Error, Result};
use crate::real::Real;

/// A sampling configuration: each stage optional, applied in Hugging Face's order
/// **temperature → top-k → top-p → min-p**, then one draw from the renormalised
/// survivors.
///
/// | field | `None` means | rule |
/// |---|---|---|
/// | `temperature` | 1 | logits / T; **T = 0 is greedy** ([`temperature`](super::temperature)) |
/// | `top_k` | off | exactly k survivors, ties → lower id ([`top_k`](super::top_k)) |
/// | `top_p` | off | smallest most-probable set with mass ≥ p ([`top_p`](super::top_p)) |
/// | `min_p` | off | probability ≥ min_p × top probability ([`min_p`](super::min_p)) |
///
/// Each stage sees the distribution left by the previous one (top-p's mass is
/// relative to the top-k survivors), exactly as the standalone processors chained
/// in that order: [`Sampler::process`] gives bit-for-bit the same logits.
///
/// **Bit-reproducible.** Probabilities come from [`repro_exp`](super::repro_exp)
/// (IEEE add/mul only, a fixed polynomial, no fused operations), every sum is the
/// reproducible sum (16 interleaved partial sums for `f32`, 8 for `f64`, combined
/// by a fixed tree — independent of the SIMD width of the build), the selections
/// are deterministic, and the draw walks the survivors in token-id order with one
/// [`uniform`](super::uniform) number. So the same seed and logits give the same
/// token on every target: pinned tokens are tested on x86-64 (baseline and
/// native builds, in CI) and were checked by hand on aarch64 under qemu-user;
/// runs on Cortex-M and RISC-V come with the on-target test suites. The exact
/// order of every operation is in the [module documentation](super)
/// ("Reproducible sampling"); there is no backend parameter.
///
/// Cost: O(V) expected — two quickselects at most, no sort of the vocabulary —
/// in a few passes over the logits with 16-lane (`f32`) or 8-lane (`f64`)
/// vectors; with top-k, exponentials are computed only for the blocks of 16 (or
/// 8) tokens that hold a top-k survivor.
///
/// ```
/// use constml::decode::{Sampler, SamplerScratch};
/// use rand_core::SeedableRng;
/// let logits = [1.0f32, 2.5, 0.3, 2.4, -1.0, 0.0];
/// let sampler = Sampler::new().with_temperature(0.8).with_top_k(3).with_top_p(0.9);
/// let mut scratch = SamplerScratch::<f32, 6>::new();
/// let mut rng = rand_xoshiro::Xoshiro128PlusPlus::seed_from_u64(42);
/// let token = sampler.sample(&logits, &mut scratch, &mut rng)?;
/// assert!([0, 1, 3].contains(&token)); // the top-3 tokens
/// // T = 0 is greedy (and consumes no randomness):
/// assert_eq!(Sampler::new().with_temperature(0.0).sample(&logits, &mut scratch, &mut rng)?, 1);
/// # Ok::<(), constml::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sampler<T> {
    /// Temperature `T ≥ 0` (finite); `Some(0)` is greedy; `None` is 1.
    pub temperature: Option<T>,
    /// Keep the `k ≥ 1` most likely tokens.
    pub top_k: Option<usize>,
    /// Nucleus mass `p ∈ [0, 1]`.
    pub top_p: Option<T>,
    /// Relative probability floor `min_p ∈ [0, 1]`.
    pub min_p: Option<T>,
}

impl<T: Real> Default for Sampler<T> {
    fn default() -> Self {
        Self::new()
    }
}

/// What the filtering stages leave behind.
enum Stage<T> {
    /// Only this token can be drawn.
    Greedy(usize),
    /// The scratch weights hold `e^(x/t − max)` for the top-k survivors (0
    /// elsewhere), whose reproducible sum is `total`; these are the remaining cuts.
    Cuts {
        t: T,
        topk: Option<Cand<T>>,
        topp: Option<Cand<T>>,
        minp: Option<T>,
        total: T,
    },
}

impl<T: Real> Sampler<T> {
    /// Plain sampling from the softmax of the logits (every stage off).
    pub const fn new() -> Self {
        Self {
            temperature: None,
            top_k: None,
            top_p: None,
            min_p: None,
        }
    }

    /// Sets the temperature (`0` = greedy).
    pub const fn with_temperature(mut self, t: T) -> Self {
        self.temperature = Some(t);
        self
    }
    /// Sets top-k.
    pub const fn with_top_k(mut self, k: usize) -> Self {
        self.top_k = Some(k);
        self
    }
    /// Sets top-p.
    pub const fn with_top_p(mut self, p: T) -> Self {
        self.top_p = Some(p);
        self
    }
    /// Sets min-p.
    pub const fn with_min_p(mut self, min_p: T) -> Self {
        self.min_p = Some(min_p);
        self
    }

    /// Checks the parameters: `T` finite and `≥ 0`, `k ≥ 1`, `p` and `min_p` in
    /// `[0, 1]`; [`Error::InvalidParameter`] otherwise. Every entry point calls it.
    pub fn validate(&self) -> Result<()> {
        if let Some(t) = self.temperature {
            check_temperature(t)?;
        }
        if let Some(k) = self.top_k {
            check_k(k)?;
        }
        if let Some(p) = self.top_p {
            check_p(p)?;
        }
        if let Some(m) = self.min_p {
            check_min_p(m)?;
        }
        Ok(())
    }

    /// Temperature, top-k and top-p over `logits`, leaving weights in `w`.
    fn filter(&self, logits: &[T], w: &mut [T], cand: &mut [Cand<T>]) -> Result<Stage<T>> {
        self.validate()?;
        let scan = scan_logits("sampler: logits", logits)?;
        let (t, max) = match resolve(self.temperature.unwrap_or(T::ONE), &scan) {
            Temp::Greedy(i) => return Ok(Stage::Greedy(i)),
            Temp::Scale { t, max } => (t, max),
        };
        let (topk, total, positive) = match self.top_k {
            Some(k) => {
                // Top-k's keys are the scaled logits x / T (x itself for T = 1,
                // where the division is exact).
                let th = if t == T::ONE {
                    top_k_cut(logits, k, scan.finite, cand)
                } else {
                    with_wide!(T, scale(logits, w, t));
                    top_k_cut(w, k, scan.finite, cand)
                };
                let (s, n) = if t == T::ONE {
                    with_wide!(T, top_k_weights_from(logits, w, max, th))
                } else {
                    with_wide!(T, top_k_weights_in_place(w, max, th))
                };
                (th, s, n)
            }
            None => {
                let (s, n) = with_wide!(T, weights(logits, w, t, max));
                (None, s, n)
            }
        };
        let topp = match self.top_p {
            Some(p) => with_wide!(T, top_p_on(p, total, positive, w, cand)),
            None => None,
        };
        let minp = self.min_p.filter(|&m| m > T::ZERO);
        Ok(Stage::Cuts {
            t,
            topk,
            topp,
            minp,
            total,
        })
    }

    fn sample_slice<R: Rng + ?Sized>(
        &self,
        logits: &[T],
        w: &mut [T],
        cand: &mut [Cand<T>],
        rng: &mut R,
    ) -> Result<usize> {
        let (topp, minp, total) = match self.filter(logits, w, cand)? {
            Stage::Greedy(i) => return Ok(i),
            Stage::Cuts {
                topp, minp, total, ..
            } => (topp, minp, total),
        };
        // Apply top-p and min-p to the weights and sum the survivors.
        let total = if topp.is_some() || minp.is_some() {
            with_wide!(T, apply_cuts(w, topp, minp))
        } else {
            total
        };
        // The top token (weight e^0 = 1) always survives, so total ≥ 1.
        if total.partial_cmp(&T::ZERO) != Some(core::cmp::Ordering::Greater) {
            return Err(Error::NoCandidates);
        }
        Ok(draw_slice(w, total, rng))
    }

    fn process_slice(&self, logits: &mut [T], w: &mut [T], cand: &mut [Cand<T>]) -> Result<()> {
        match self.filter(logits, w, cand)? {
            Stage::Greedy(i) => greedy_mask(logits, i),
            Stage::Cuts {
                t,
                topk,
                topp,
                minp,
                ..
            } => {
                with_wide!(T, apply_to_logits(logits, w, t, topk, topp, minp));
            }
        }
        Ok(())
    }

    /// Samples one token: the stages, then a draw from the renormalised survivors.
    ///
    /// The draw: `S` = the reproducible sum of the survivors' weights
    /// `e^(x/T − max)`, `u` = [`uniform`](super::uniform) (one `next_u32` for
    /// `f32`, one `next_u64` for `f64`), and the token is the first survivor, in id
    /// order, whose running sum exceeds `u·S` — running sums restart from the
    /// reproducible prefix sum at every block of 256 tokens (the exact rule is in
    /// the [module documentation](super)). With `T = 0` (or logits so large that
    /// `max / T` overflows) the greedy token is returned and `rng` is not used.
    ///
    /// Errors: invalid parameters (see [`Sampler::validate`]); NaN logits
    /// ([`Error::NaN`]); a `+∞` logit ([`Error::InvalidParameter`]); every logit
    /// −∞ ([`Error::NoCandidates`]). The returned token is always `< V` and
    /// always a survivor.
    pub fn sample<R: Rng + ?Sized, const V: usize>(
        &self,
        logits: &[T; V],
        scratch: &mut SamplerScratch<T, V>,
        rng: &mut R,
    ) -> Result<usize> {
        const { assert!(V > 0, "the vocabulary size V must be at least 1") };
        self.sample_slice(logits, &mut scratch.w, &mut scratch.cand, rng)
    }

    /// Applies the stages to `logits` in place, Hugging Face style: survivors
    /// become `x / T`, the others −∞ (`T = 0`: only the greedy token survives,
    /// unchanged). Identical to chaining [`temperature`](super::temperature),
    /// [`top_k`](super::top_k), [`top_p`](super::top_p) and [`min_p`](super::min_p).
    /// Errors as [`Sampler::sample`]; on error the logits are untouched.
    pub fn process<const V: usize>(
        &self,
        logits: &mut [T; V],
        scratch: &mut SamplerScratch<T, V>,
    ) -> Result<()> {
        const { assert!(V > 0, "the vocabulary size V must be at least 1") };
        self.process_slice(logits, &mut scratch.w, &mut scratch.cand)
    }

    /// Runtime-vocabulary face of [`Sampler::sample`]. The scratch must serve
    /// exactly `logits.len()` tokens ([`Error::LengthMismatch`]); an empty slice is
    /// [`Error::Empty`].
    #[cfg(feature = "std")]
    pub fn sample_dyn<R: Rng + ?Sized>(
        &self,
        logits: &[T],
        scratch: &mut SamplerScratchDyn<T>,
        rng: &mut R,
    ) -> Result<usize> {
        scratch.check(logits.len())?;
        self.sample_slice(logits, &mut scratch.w, &mut scratch.cand, rng)
    }

    /// Runtime-vocabulary face of [`Sampler::process`], with the scratch rules of
    /// [`Sampler::sample_dyn`].
    #[cfg(feature = "std")]
    pub fn process_dyn(&self, logits: &mut [T], scratch: &mut SamplerScratchDyn<T>) -> Result<()> {
        scratch.check(logits.len())?;
        self.process_slice(logits, &mut scratch.w, &mut scratch.cand)
    }
}

/// `w = x / t` lane by lane (an IEEE division, as [`temperature`](super::temperature)).
fn scale<T: Real, W: Wide<T>>(x: &[T], w: &mut [T], t: T) {
    let tv = W::splat(t);
    map_into::<T, W>(x, w, T::ZERO, |_, v| v / tv);
}

/// `w = e^(x/t − max)` ([`repro_exp`](super::repro_exp) lane by lane; the
/// division is skipped for `t = 1`, where it is exact); returns the reproducible
/// sum of the weights and the number of positive ones.
fn weights<T: Real, W: Wide<T>>(x: &[T], w: &mut [T], t: T, max: T) -> (T, usize) {
    let (tv, mv, zero) = (W::splat(t), W::splat(max), W::splat(T::ZERO));
    let unit = t == T::ONE;
    let mut acc = zero;
    let mut positive = 0usize;
    // Padding with −∞ gives weight 0, which leaves the sums unchanged.
    map_into::<T, W>(x, w, T::NEG_INFINITY, |_, v| {
        let v = if unit { v } else { v / tv };
        let e = (v - mv).exp();
        acc = acc + e;
        positive += W::bits(e.gt(zero)).count_ones() as usize;
        e
    });
    (acc.tree(), positive)
}

/// The weight of one chunk of top-k keys `v` (tokens `base..`): `e^(v − max)` for
/// the keys that do not come after the cut `th` (all for `None`), 0 for the
/// others, added to the running sum `acc` and the positive count. A chunk without
/// a survivor skips the exponential: its weights are 0 either way.
#[inline(always)]
fn top_k_weight<T: Real, W: Wide<T>>(
    v: W,
    base: usize,
    max: W,
    th: Option<Cand<T>>,
    acc: &mut W,
    positive: &mut usize,
) -> W {
    let zero = W::splat(T::ZERO);
    let e = match th {
        Some(th) => {
            let keep = not_after(v, th, base);
            if W::bits(keep) == 0 {
                return zero;
            }
            (v - max).exp() & keep
        }
        None => (v - max).exp(),
    };
    *acc = *acc + e;
    *positive += W::bits(e.gt(zero)).count_ones() as usize;
    e
}

/// `w` = the top-k weights of the keys `keys` ([`top_k_weight`]); returns their
/// reproducible sum and the number of positive ones.
fn top_k_weights_from<T: Real, W: Wide<T>>(
    keys: &[T],
    w: &mut [T],
    max: T,
    th: Option<Cand<T>>,
) -> (T, usize) {
    let (mv, mut acc, mut positive) = (W::splat(max), W::splat(T::ZERO), 0usize);
    map_into::<T, W>(keys, w, T::NEG_INFINITY, |base, v| {
        top_k_weight(v, base, mv, th, &mut acc, &mut positive)
    });
    (acc.tree(), positive)
}

/// [`top_k_weights_from`] with the keys in `w` (replaced by the weights).
fn top_k_weights_in_place<T: Real, W: Wide<T>>(
    w: &mut [T],
    max: T,
    th: Option<Cand<T>>,
) -> (T, usize) {
    let (mv, mut acc, mut positive) = (W::splat(max), W::splat(T::ZERO), 0usize);
    map::<T, W>(w, T::NEG_INFINITY, |base, v| {
        top_k_weight(v, base, mv, th, &mut acc, &mut positive)
    });
    (acc.tree(), positive)
}

/// [`Sampler::process`]'s last pass: a logit `x` survives when it is above −∞,
/// `x / t` passes the top-k cut, and its weight `w` the top-p cut and min-p
/// (`w ≥ min_p · 1`); survivors become `x / t`, the others −∞.
fn apply_to_logits<T: Real, W: Wide<T>>(
    logits: &mut [T],
    w: &[T],
    t: T,
    topk: Option<Cand<T>>,
    topp: Option<Cand<T>>,
    minp: Option<T>,
) {
    let (tv, ninf) = (W::splat(t), W::splat(T::NEG_INFINITY));
    let lim = W::splat(minp.map_or(T::ZERO, |m| m * T::ONE));
    map_zip::<T, W>(logits, w, T::NEG_INFINITY, T::ZERO, |base, x, wv| {
        let xs = x / tv;
        let mut keep = x.gt(ninf) & wv.ge(lim);
        if let Some(th) = topk {
            keep = keep & not_after(xs, th, base);
        }
        if let Some(th) = topp {
            keep = keep & top_p_mask(th, wv, base);
        }
        W::select(keep, xs, ninf)
    });
}

/// The top-p cut over the stored weights.
fn top_p_on<T: Real, W: Wide<T>>(
    p: T,
    total: T,
    positive: usize,
    w: &[T],
    cand: &mut [Cand<T>],
) -> Option<Cand<T>> {
    // Weights are e^(x/t − max) ≤ e^0 = 1.
    top_p_cut::<T, W>(p, total, positive, T::ONE, &Stored(w), cand)
}

/// Zeroes the weights removed by top-p (`topp`) or min-p (`minp`, against the top
/// weight 1) and returns the reproducible sum of the survivors.
fn apply_cuts<T: Real, W: Wide<T>>(w: &mut [T], topp: Option<Cand<T>>, minp: Option<T>) -> T {
    let zero = W::splat(T::ZERO);
    let lim = W::splat(minp.map_or(T::ZERO, |m| m * T::ONE));
    let mut acc = zero;
    map::<T, W>(w, T::ZERO, |base, v| {
        let keep = match topp {
            Some(th) => top_p_mask(th, v, base),
            None => v.gt(zero),
        };
        let r = v & (keep & v.ge(lim));
        acc = acc + r;
        r
    });
    acc.tree()
}

/// Caller-owned scratch for [`Sampler`] over a vocabulary of `V` tokens: one
/// weight and one (key, id) candidate per token, [`SamplerScratch::BYTES`] bytes
/// (`12·V` for `f32`, `24·V` for `f64`; 384 KB at `V = 32 000` in `f32`, so give
/// large vocabularies a `static` or use [`SamplerScratchDyn`]). Build it once with
/// the `const fn` [`SamplerScratch::new`] and reuse it; its contents between calls
/// are meaningless.
///
/// `V` must be at least 1 (a compile-time check):
///
/// ```compile_fail,E0080
/// let s = constml::decode::SamplerScratch::<f32, 0>::new();
/// ```
#[derive(Clone, Debug)]
pub struct SamplerScratch<T, const V: usize> {
    w: [T; V],
    cand: [Cand<T>; V],
}

impl<T: Real, const V: usize> SamplerScratch<T, V> {
    /// Size of this scratch in bytes.
    pub const BYTES: usize = core::mem::size_of::<Self>();

    /// Scratch for a vocabulary of `V` tokens.
    pub const fn new() -> Self {
        const { assert!(V > 0, "the vocabulary size V must be at least 1") };
        Self {
            w: [T::ZERO; V],
            cand: [Cand::ZERO; V],
        }
    }
}

impl<T: Real, const V: usize> Default for SamplerScratch<T, V> {
    fn default() -> Self {
        Self::new()
    }
}

/// Heap-backed scratch for [`Sampler::sample_dyn`] and [`Sampler::process_dyn`]:
/// the same contents as [`SamplerScratch`] for a vocabulary size chosen at run time.
#[cfg(feature = "std")]
#[derive(Clone, Debug)]
pub struct SamplerScratchDyn<T> {
    w: std::vec::Vec<T>,
    cand: std::vec::Vec<Cand<T>>,
}

#[cfg(feature = "std")]
impl<T: Real> SamplerScratchDyn<T> {
    /// Scratch for a vocabulary of `v` tokens; `Err` if it cannot be allocated.
    pub fn new(v: usize) -> Result<Self> {
        Ok(Self {
            w: crate::matrix::zeros_vec("SamplerScratchDyn::new", v)?,
            cand: crate::matrix::filled_vec("SamplerScratchDyn::new", v, Cand::ZERO)?,
        })
    }
    /// The vocabulary size this scratch serves.
    pub fn len(&self) -> usize {
        self.w.len()
    }
    /// `true` for a scratch of vocabulary size 0 (usable with nothing).
    pub fn is_empty(&self) -> bool {
        self.w.is_empty()
    }
    fn check(&self, v: usize) -> Result<()> {
        super::select::check_dyn("sampler: logits", "sampler: scratch", v, self.len())
    }
}
