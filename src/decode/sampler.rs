//! The sampler pipeline: temperature → top-k → top-p → min-p → draw, in Hugging
//! Face's order, allocation-free and bit-reproducible.

use rand_core::Rng;

use super::draw::{BLOCK, draw_blocked};
use super::min_p::{check_min_p, min_p_keeps};
use super::repro::repro_exp;
use super::select::{Cand, scan_logits};
use super::temperature::{Temp, check_temperature, greedy_mask, resolve};
use super::top_k::{check_k, top_k_cut, top_k_keeps};
use super::top_p::{check_p, top_p_cut, top_p_keeps};
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
/// (IEEE add/mul only, a fixed polynomial, no fused operations), every sum is a
/// plain sequential sum in token order (independent of SIMD lane width), the
/// selections are deterministic, and the draw walks the survivors in token-id order
/// with one [`uniform`](super::uniform) number. So the same seed and logits give the
/// same token on x86 (baseline and native), aarch64, Cortex-M and RISC-V. The one
/// vector kernel used, the maximum of the logits, is exact and order-independent
/// (see the [module documentation](super)); there is no backend parameter.
///
/// Cost: O(V) expected — two quickselects at most, no sort of the vocabulary.
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
    /// elsewhere); these are the remaining cuts.
    Cuts {
        t: T,
        topk: Option<Cand<T>>,
        topp: Option<Cand<T>>,
        minp: Option<T>,
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
        // The scaled logits x / T (element-wise, so the compiler may vectorise it).
        for (wi, &x) in w.iter_mut().zip(logits) {
            *wi = x / t;
        }
        let topk = match self.top_k {
            Some(k) => top_k_cut(w, k, scan.finite, cand),
            None => None,
        };
        // The weights e^(x/T − max) of the top-k survivors, 0 elsewhere (e^−∞ = 0).
        match topk {
            Some(th) => {
                for (i, wi) in w.iter_mut().enumerate() {
                    let key = *wi;
                    let e = repro_exp(key - max);
                    *wi = if top_k_keeps(th, key, i) { e } else { T::ZERO };
                }
            }
            None => {
                for wi in w.iter_mut() {
                    *wi = repro_exp(*wi - max);
                }
            }
        }
        let topp = match self.top_p {
            Some(p) => {
                let ws: &[T] = w;
                top_p_cut(p, || ws.iter().copied(), cand)
            }
            None => None,
        };
        let minp = self.min_p.filter(|&m| m > T::ZERO);
        Ok(Stage::Cuts {
            t,
            topk,
            topp,
            minp,
        })
    }

    fn sample_slice<R: Rng + ?Sized>(
        &self,
        logits: &[T],
        w: &mut [T],
        cand: &mut [Cand<T>],
        rng: &mut R,
    ) -> Result<usize> {
        let (topp, minp) = match self.filter(logits, w, cand)? {
            Stage::Greedy(i) => return Ok(i),
            Stage::Cuts { topp, minp, .. } => (topp, minp),
        };
        // Apply top-p and min-p to the weights and sum the survivors in token
        // order, recording the running sum at the start of every block for the draw
        // (the candidates are no longer needed).
        let mut total = T::ZERO;
        for (b, chunk) in w.chunks_mut(BLOCK).enumerate() {
            if let Some(c) = cand.get_mut(b) {
                c.key = total;
            }
            for (j, wi) in chunk.iter_mut().enumerate() {
                if *wi > T::ZERO {
                    let i = b * BLOCK + j;
                    let keep = topp.is_none_or(|th| top_p_keeps(th, *wi, i))
                        && minp.is_none_or(|m| min_p_keeps(*wi, m, T::ONE));
                    if !keep {
                        *wi = T::ZERO;
                    }
                }
                total += *wi;
            }
        }
        // The top token (weight e^0 = 1) always survives, so total ≥ 1.
        if total.partial_cmp(&T::ZERO) != Some(core::cmp::Ordering::Greater) {
            return Err(Error::NoCandidates);
        }
        let starts = |b: usize| cand.get(b).map_or(T::ZERO, |c| c.key);
        Ok(draw_blocked(w, starts, total, rng))
    }

    fn process_slice(&self, logits: &mut [T], w: &mut [T], cand: &mut [Cand<T>]) -> Result<()> {
        match self.filter(logits, w, cand)? {
            Stage::Greedy(i) => greedy_mask(logits, i),
            Stage::Cuts {
                t,
                topk,
                topp,
                minp,
            } => {
                for (i, (x, &wi)) in logits.iter_mut().zip(w.iter()).enumerate() {
                    let keep = *x > T::NEG_INFINITY
                        && topk.is_none_or(|th| top_k_keeps(th, *x / t, i))
                        && topp.is_none_or(|th| top_p_keeps(th, wi, i))
                        && minp.is_none_or(|m| min_p_keeps(wi, m, T::ONE));
                    *x = if keep { *x / t } else { T::NEG_INFINITY };
                }
            }
        }
        Ok(())
    }

    /// Samples one token: the stages, then a draw from the renormalised survivors.
    ///
    /// The draw: `S` = the survivors' weights `e^(x/T − max)` summed sequentially
    /// in token order, `u` = [`uniform`](super::uniform) (one `next_u32` for `f32`,
    /// one `next_u64` for `f64`), and the token is the first survivor, in id order,
    /// whose running sum exceeds `u·S`. With `T = 0` (or logits so large that
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

/// Caller-owned scratch for [`Sampler`] over a vocabulary of `V` tokens: one
/// weight and one (key, id) candidate per token, [`SamplerScratch::BYTES`] bytes
/// (`12·V` for `f32`, `24·V` for `f64`; 384 KB at `V = 32 000` in `f32`, so give
/// large vocabularies a `static` or use [`SamplerScratchDyn`]). Build it once with
/// the `const fn` [`SamplerScratch::new`] and reuse it; its contents between calls
/// are meaningless.
///
/// `V` must be at least 1 (a compile-time check):
///
/// ```compile_fail
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
