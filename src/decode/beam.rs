//! Beam search with Hugging Face `generate` semantics (transformers ≥ 4.50),
//! driving a model through [`BeamModel`]. Allocation-free: the BEAMS × V log-prob
//! scratch, the token histories and the results are caller-owned. The
//! algorithm and its Hugging Face correspondence are documented on [`beam_search`].

use crate::backend::{Backend, Simd};
use crate::error::{Error, Result};
use crate::real::Real;

/// A model that beam search can drive, one token of one beam at a time.
///
/// The model keeps one state per beam slot `0..BEAMS` (e.g. a KV cache per beam).
pub trait BeamModel<T: Real> {
    /// Feeds `token` at absolute position `pos` to the state of beam slot `beam`
    /// and writes the logits of the next token into `logits` (length V).
    ///
    /// The prompt is fed to beam 0 at positions `0..prompt.len()`; generated token
    /// `t` (0-based) is fed at position `prompt.len() + t`. Any error is returned
    /// by the search unchanged (use [`Error::Model`] for the model's own failures).
    fn step(&mut self, beam: usize, token: usize, pos: usize, logits: &mut [T]) -> Result<()>;

    /// Reorders the beam states: slot `i` continues from the state slot
    /// `parents[i]` had before the call (several slots may share a parent).
    /// `parents.len()` is `BEAMS`; every entry is `< BEAMS`.
    fn reorder(&mut self, parents: &[usize]) -> Result<()>;

    /// Optional logits processing (Hugging Face's `logits_processor`), applied to
    /// beam `beam`'s next-token **log-probabilities** after the log-softmax and
    /// before the running score is added. `generated` holds that beam's tokens so
    /// far (without the prompt). The default does nothing. Setting an entry to −∞
    /// forbids that token.
    fn process(&mut self, beam: usize, generated: &[usize], log_probs: &mut [T]) -> Result<()> {
        let _ = (beam, generated, log_probs);
        Ok(())
    }
}

/// When beam search stops before `MAX_NEW` new tokens (Hugging Face's
/// `early_stopping`). In every mode the search stops at `MAX_NEW` new tokens.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum EarlyStopping {
    /// `early_stopping=True`: stop as soon as `BEAMS` hypotheses are finished.
    Eager,
    /// `early_stopping=False` (Hugging Face's default): once `BEAMS` hypotheses
    /// are finished, stop when the best running score divided by (current new
    /// length)^length_penalty does not beat the worst finished score.
    #[default]
    Heuristic,
    /// `early_stopping="never"`: as [`Heuristic`](EarlyStopping::Heuristic), but
    /// with (maximum new length)^length_penalty when `length_penalty > 0` (the
    /// best score a running beam could still reach then). With
    /// `length_penalty = 0` this is the canonical beam search.
    Never,
}

/// Beam search settings (Hugging Face `generate` names in brackets).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BeamConfig<'a, T> {
    /// Exponent of the length normalisation of finished scores (`length_penalty`,
    /// default 1): `score = sum_logprobs / new_len^length_penalty`. Must be finite;
    /// positive values favour longer sequences, negative shorter ones.
    pub length_penalty: T,
    /// Stopping rule (`early_stopping`).
    pub early_stopping: EarlyStopping,
    /// End-of-sequence token ids (`eos_token_id`); may be empty. Each must be `< V`.
    pub eos: EosIds<'a>,
    /// Number of hypotheses to return, `1 ≤ num_return ≤ BEAMS`
    /// (`num_return_sequences`).
    pub num_return: usize,
}

/// The end-of-sequence ids of a [`BeamConfig`]: none, up to
/// [`EosIds::INLINE`] ids held by value, or a borrowed slice of any length.
///
/// Built by `From`: a `usize`, an `Option<usize>`, an array `[usize; N]` with
/// `N ≤ 8` (by value, so `BeamConfig::new([eos])` borrows nothing), or a slice
/// or array reference.
///
/// ```
/// use constml::decode::{BeamConfig, EosIds};
/// let eos = 7;
/// let a = BeamConfig::<f32>::new(eos);           // one id
/// let b = BeamConfig::<f32>::new([eos, 2]);      // by value
/// let ids = vec![7, 2];
/// let c = BeamConfig::<f32>::new(&ids[..]);      // borrowed
/// assert!(a.eos.contains(7) && b.eos.contains(2) && c.eos.contains(2));
/// assert_eq!(BeamConfig::<f32>::new(EosIds::NONE).eos.as_slice(), &[] as &[usize]);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EosIds<'a>(EosRepr<'a>);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum EosRepr<'a> {
    Inline([usize; EosIds::INLINE], usize),
    Borrowed(&'a [usize]),
}

impl<'a> EosIds<'a> {
    /// How many ids an array given by value may hold.
    pub const INLINE: usize = 8;
    /// No end-of-sequence id.
    pub const NONE: Self = EosIds(EosRepr::Borrowed(&[]));

    /// The ids as a slice.
    pub fn as_slice(&self) -> &[usize] {
        match &self.0 {
            EosRepr::Inline(ids, n) => ids.get(..*n).unwrap_or(&[]),
            EosRepr::Borrowed(s) => s,
        }
    }

    /// Whether `token` is an end-of-sequence id.
    pub fn contains(&self, token: usize) -> bool {
        self.as_slice().contains(&token)
    }
}

impl Default for EosIds<'_> {
    fn default() -> Self {
        Self::NONE
    }
}

impl From<usize> for EosIds<'_> {
    fn from(id: usize) -> Self {
        Self::from([id])
    }
}

impl From<Option<usize>> for EosIds<'_> {
    fn from(id: Option<usize>) -> Self {
        id.map_or(Self::NONE, Self::from)
    }
}

impl<const N: usize> From<[usize; N]> for EosIds<'_> {
    /// `N ≤ 8`, checked at compile time (pass a slice for more).
    fn from(ids: [usize; N]) -> Self {
        const { assert!(N <= EosIds::INLINE, "more than 8 eos ids: pass a slice") };
        let mut a = [0; EosIds::INLINE];
        for (d, s) in a.iter_mut().zip(ids) {
            *d = s;
        }
        EosIds(EosRepr::Inline(a, N))
    }
}

impl<'a> From<&'a [usize]> for EosIds<'a> {
    fn from(ids: &'a [usize]) -> Self {
        EosIds(EosRepr::Borrowed(ids))
    }
}

impl<'a, const N: usize> From<&'a [usize; N]> for EosIds<'a> {
    fn from(ids: &'a [usize; N]) -> Self {
        EosIds(EosRepr::Borrowed(ids))
    }
}

#[cfg(feature = "std")]
impl<'a> From<&'a std::vec::Vec<usize>> for EosIds<'a> {
    fn from(ids: &'a std::vec::Vec<usize>) -> Self {
        EosIds(EosRepr::Borrowed(ids))
    }
}

impl<'a, T: Real> BeamConfig<'a, T> {
    /// Hugging Face's defaults: `length_penalty = 1`, heuristic early stopping,
    /// one returned sequence; `eos` is anything [`EosIds`] converts from
    /// (`3`, `[3, 5]`, `&ids[..]`, [`EosIds::NONE`]).
    pub fn new(eos: impl Into<EosIds<'a>>) -> Self {
        Self {
            length_penalty: T::ONE,
            early_stopping: EarlyStopping::Heuristic,
            eos: eos.into(),
            num_return: 1,
        }
    }
    /// Sets `length_penalty`.
    pub const fn with_length_penalty(mut self, length_penalty: T) -> Self {
        self.length_penalty = length_penalty;
        self
    }
    /// Sets `early_stopping`.
    pub const fn with_early_stopping(mut self, early_stopping: EarlyStopping) -> Self {
        self.early_stopping = early_stopping;
        self
    }
    /// Sets `num_return`.
    pub const fn with_num_return(mut self, num_return: usize) -> Self {
        self.num_return = num_return;
        self
    }
}

/// One candidate continuation: running beam `beam` extended by `token`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct BeamCand<T> {
    score: T,
    beam: usize,
    token: usize,
}

impl<T: Real> BeamCand<T> {
    const ZERO: Self = BeamCand {
        score: T::ZERO,
        beam: 0,
        token: 0,
    };
    /// Higher score first, then lower `beam · V + token`.
    #[inline(always)]
    fn before(self, o: Self) -> bool {
        self.score > o.score
            || (self.score == o.score && (self.beam, self.token) < (o.beam, o.token))
    }
}

/// Inserts `c` into the sorted bounded list `list[..*n]` (capacity `list.len()`).
#[inline]
fn offer<T: Real>(list: &mut [BeamCand<T>], n: &mut usize, c: BeamCand<T>) {
    let cap = list.len();
    let mut j = if *n < cap {
        *n += 1;
        *n - 1
    } else {
        match list.last() {
            Some(&worst) if c.before(worst) => cap - 1,
            _ => return,
        }
    };
    while j > 0 && c.before(list[j - 1]) {
        list[j] = list[j - 1];
        j -= 1;
    }
    if let Some(slot) = list.get_mut(j) {
        *slot = c;
    }
}

/// The working buffers of one search, as slices (both faces build one).
struct Work<'a, T> {
    v: usize,
    beams: usize,
    max_new: usize,
    log_probs: &'a mut [T],
    hist: &'a mut [usize],
    hist_next: &'a mut [usize],
    score: &'a mut [T],
    score_next: &'a mut [T],
    parents: &'a mut [usize],
    top_all: &'a mut [BeamCand<T>],
    top_run: &'a mut [BeamCand<T>],
}

/// The finished hypotheses, as slices.
struct Out<'a, T> {
    tokens: &'a mut [usize],
    len: &'a mut [usize],
    score: &'a mut [T],
    count: &'a mut usize,
}

impl<T: Real> Out<'_, T> {
    /// The index and score of the worst kept hypothesis (the last one on ties).
    fn worst(&self) -> Option<(usize, T)> {
        let mut w: Option<(usize, T)> = None;
        for (i, &s) in self.score.iter().enumerate().take(*self.count) {
            // Scores are never NaN here (NaN log-probs are rejected).
            match w {
                Some((_, ws)) if s > ws => {}
                _ => w = Some((i, s)),
            }
        }
        w
    }

    /// Offers the hypothesis `prefix + [token]` with final score `score`.
    fn finish(&mut self, max_new: usize, score: T, prefix: &[usize], token: usize) {
        let cap = self.len.len();
        let slot = if *self.count < cap {
            *self.count += 1;
            *self.count - 1
        } else {
            match self.worst() {
                Some((i, ws)) if score > ws => i,
                _ => return,
            }
        };
        let n = prefix.len() + 1;
        if let Some(row) = self.tokens.get_mut(slot * max_new..slot * max_new + n) {
            let (head, last) = row.split_at_mut(n - 1);
            head.copy_from_slice(prefix);
            last.fill(token);
        }
        if let Some(l) = self.len.get_mut(slot) {
            *l = n;
        }
        if let Some(s) = self.score.get_mut(slot) {
            *s = score;
        }
    }

    /// Sorts the kept hypotheses best first (selection sort: at most BEAMS rows).
    fn sort(&mut self, max_new: usize) {
        let n = *self.count;
        for i in 0..n {
            let mut best = i;
            for j in i + 1..n {
                if self.score[j] > self.score[best] {
                    best = j;
                }
            }
            if best != i {
                self.score.swap(i, best);
                self.len.swap(i, best);
                let (a, b) = self.tokens.split_at_mut(best * max_new);
                a[i * max_new..(i + 1) * max_new].swap_with_slice(&mut b[..max_new]);
            }
        }
    }
}

/// Read access to finished hypotheses, shared by [`Hypotheses`] and
/// [`HypothesesDyn`]: row `i` of `tokens` (stride `max_new`) holds hypothesis
/// `i`'s `len[i]` tokens.
#[derive(Clone, Copy)]
struct HypView<'a, T> {
    max_new: usize,
    tokens: &'a [usize],
    len: &'a [usize],
    score: &'a [T],
    count: usize,
}

impl<'a, T: Real> HypView<'a, T> {
    fn tokens(self, i: usize) -> Option<&'a [usize]> {
        if i >= self.count {
            return None;
        }
        let start = i.checked_mul(self.max_new)?;
        let end = start.checked_add(*self.len.get(i)?)?;
        self.tokens.get(start..end)
    }

    fn score(self, i: usize) -> Option<T> {
        if i >= self.count {
            return None;
        }
        self.score.get(i).copied()
    }

    fn iter(self) -> impl Iterator<Item = (&'a [usize], T)> {
        (0..self.count).filter_map(move |i| Some((self.tokens(i)?, self.score(i)?)))
    }
}

/// The finished score `score / n^length_penalty`.
///
/// As Hugging Face computes it: `n^length_penalty` in `f64`, rounded to `T`,
/// then one division in `T`. Where that power is not a normal number of `T`
/// (it would overflow, or underflow and lose precision), the score is computed
/// in `f64` through logarithms instead, `−exp(ln(−score) − length_penalty·ln n)`,
/// where nothing overflows on the way. A result that overflows `T` is an `Err`,
/// never a NaN or a silent −∞ (with [`check_length_penalty`] that takes a
/// finite score beyond `T::MAX / n^|length_penalty|`). `score ≤ 0` (a sum of
/// log-probabilities) and `n ≥ 1`.
#[inline]
fn normalised<T: Real>(score: T, n: usize, length_penalty: T) -> Result<T> {
    let lp = length_penalty.as_f64();
    let norm = T::from_f64(libm::pow(n as f64, lp));
    let r = if norm.is_normal() {
        score / norm
    } else if score == T::ZERO {
        score
    } else {
        T::from_f64(-libm::exp(
            libm::log(-score.as_f64()) - lp * libm::log(n as f64),
        ))
    };
    if score.is_finite() && !r.is_finite() {
        return Err(Error::InvalidParameter {
            what: "beam_search: length_penalty",
            reason: "the length-normalised score overflows the element type",
        });
    }
    Ok(r)
}

/// Rejects a `length_penalty` for which `n^length_penalty` leaves the range of
/// `T` for some length `n ≤ max_new` (every finished score would overflow or
/// underflow): `|length_penalty| · ln(max_new)` must stay below `ln(T::MAX)`.
fn check_length_penalty<T: Real>(length_penalty: T, max_new: usize) -> Result<()> {
    let lp = length_penalty.as_f64();
    let bad = |reason| {
        Err(Error::InvalidParameter {
            what: "beam_search: length_penalty",
            reason,
        })
    };
    if !lp.is_finite() {
        return bad("must be finite");
    }
    let ln_max = libm::log(T::max_value().as_f64());
    if lp.abs() * libm::log(max_new.max(1) as f64) >= ln_max {
        return bad(
            "|length_penalty|·ln(max_new) must be below ln(T::MAX) (88.7 for f32, 709.8 for f64)",
        );
    }
    Ok(())
}

/// The search, over slices. `w` and `out` have been shape-checked by the caller.
fn run<B: Backend, T: Real, M: BeamModel<T> + ?Sized>(
    model: &mut M,
    prompt: &[usize],
    cfg: &BeamConfig<'_, T>,
    mut w: Work<'_, T>,
    mut out: Out<'_, T>,
) -> Result<usize> {
    let (v, beams, max_new) = (w.v, w.beams, w.max_new);
    if cfg.num_return == 0 || cfg.num_return > beams {
        return Err(Error::InvalidParameter {
            what: "beam_search: num_return",
            reason: "must be in 1..=BEAMS",
        });
    }
    check_length_penalty(cfg.length_penalty, max_new)?;
    if prompt.is_empty() {
        return Err(Error::Empty {
            what: "beam_search: prompt",
        });
    }
    if let Some(&t) = prompt.iter().find(|&&t| t >= v) {
        return Err(Error::OutOfRange {
            what: "beam_search: prompt token",
            index: t,
            len: v,
        });
    }
    if let Some(&t) = cfg.eos.as_slice().iter().find(|&&t| t >= v) {
        return Err(Error::OutOfRange {
            what: "beam_search: eos id",
            index: t,
            len: v,
        });
    }
    let is_eos = |t: usize| cfg.eos.contains(t);
    let lp = cfg.length_penalty;
    *out.count = 0;

    // The prompt goes to beam 0, then every slot copies it.
    for (pos, &tok) in prompt.iter().enumerate() {
        model.step(0, tok, pos, &mut w.log_probs[..v])?;
    }
    w.parents.fill(0);
    model.reorder(w.parents)?;
    w.score.fill(T::NEG_INFINITY);
    w.score[0] = T::ZERO;
    let mut live = 1;

    for t in 0..max_new {
        // Cumulative log-probs of every continuation of the running beams.
        for b in 0..live {
            let row = &mut w.log_probs[b * v..(b + 1) * v];
            if row.contains(&T::INFINITY) {
                return Err(Error::InvalidParameter {
                    what: "beam_search: model logits",
                    reason: "must not contain +inf (its probability is undefined)",
                });
            }
            B::log_softmax(row);
            model.process(b, &w.hist[b * max_new..b * max_new + t], row)?;
            let s = w.score[b];
            for x in row.iter_mut() {
                *x += s;
            }
        }
        // The best BEAMS overall and the best BEAMS not ending in EOS.
        let (mut n_all, mut n_run) = (0, 0);
        for b in 0..live {
            let row = &w.log_probs[b * v..(b + 1) * v];
            for (tok, &s) in row.iter().enumerate() {
                if s.is_nan() {
                    return Err(Error::NaN {
                        what: "beam_search: log-probs (model logits or processor output)",
                    });
                }
                // The model's +∞ was rejected above; a processor's would make
                // every score +∞ (a finite running score plus +∞).
                if s == T::INFINITY {
                    return Err(Error::InvalidParameter {
                        what: "beam_search: log-probs (processor output)",
                        reason: "must not contain +inf (only -inf, to forbid a token)",
                    });
                }
                if s == T::NEG_INFINITY {
                    continue;
                }
                // Fast rejection: the lists are full and `s` cannot enter them
                // (equal scores lose: they come later in scan order).
                // (`s` is not NaN here, so `<=` is "not better".)
                let full_all = n_all == beams && s <= w.top_all[beams - 1].score;
                let full_run = n_run == beams && s <= w.top_run[beams - 1].score;
                if full_all && full_run {
                    continue;
                }
                let c = BeamCand {
                    score: s,
                    beam: b,
                    token: tok,
                };
                if !full_all {
                    offer(w.top_all, &mut n_all, c);
                }
                if !full_run && !is_eos(tok) {
                    offer(w.top_run, &mut n_run, c);
                }
            }
        }
        if n_all == 0 {
            break;
        }
        // Finished hypotheses: EOS among the top BEAMS, or everything at the end.
        let last_step = t + 1 == max_new;
        for c in &w.top_all[..n_all] {
            if last_step || is_eos(c.token) {
                let prefix = &w.hist[c.beam * max_new..c.beam * max_new + t];
                out.finish(max_new, normalised(c.score, t + 1, lp)?, prefix, c.token);
            }
        }
        if last_step || n_run == 0 {
            break;
        }
        // The next running beams.
        for i in 0..beams {
            let dst = &mut w.hist_next[i * max_new..(i + 1) * max_new];
            if i < n_run {
                let c = w.top_run[i];
                w.parents[i] = c.beam;
                w.score_next[i] = c.score;
                dst[..t].copy_from_slice(&w.hist[c.beam * max_new..c.beam * max_new + t]);
                dst[t] = c.token;
            } else {
                // A dead slot: never stepped; any valid parent will do.
                w.parents[i] = w.top_run[0].beam;
                w.score_next[i] = T::NEG_INFINITY;
            }
        }
        core::mem::swap(&mut w.hist, &mut w.hist_next);
        core::mem::swap(&mut w.score, &mut w.score_next);
        live = n_run;
        // Stopping (Hugging Face's check after `cur_len += 1`: t + 1 new tokens).
        if *out.count == beams {
            if cfg.early_stopping == EarlyStopping::Eager {
                break;
            }
            let len = if cfg.early_stopping == EarlyStopping::Never && lp > T::ZERO {
                max_new
            } else {
                t + 1
            };
            let best_possible = normalised(w.score[0], len, lp)?;
            // Hugging Face continues only while best_possible > worst.
            if let Some((_, worst)) = out.worst()
                && best_possible.partial_cmp(&worst) != Some(core::cmp::Ordering::Greater)
            {
                break;
            }
        }
        // Advance the model by the chosen tokens.
        model.reorder(w.parents)?;
        for b in 0..live {
            let tok = w.hist[b * max_new + t];
            model.step(
                b,
                tok,
                prompt.len() + t,
                &mut w.log_probs[b * v..(b + 1) * v],
            )?;
        }
    }
    out.sort(max_new);
    *out.count = (*out.count).min(cfg.num_return);
    if *out.count == 0 {
        return Err(Error::NoCandidates);
    }
    Ok(*out.count)
}

/// Caller-owned scratch of [`beam_search`]: the `BEAMS × V` log-prob table, two
/// `BEAMS × MAX_NEW` token histories and a few `BEAMS`-long lists.
/// [`BeamScratch::BYTES`] is its size (about `BEAMS·V·size_of::<T>()`; 800 KB for
/// 4 beams at V = 50 257 in `f32` — use a `static` or [`BeamScratchDyn`] for large
/// vocabularies). Build it with the `const fn` [`BeamScratch::new`] and reuse it.
///
/// `V`, `BEAMS` and `MAX_NEW` must be at least 1 (compile-time checks):
///
/// ```compile_fail,E0080
/// let s = constml::decode::BeamScratch::<f32, 8, 0, 4>::new();
/// ```
/// ```compile_fail,E0080
/// let s = constml::decode::BeamScratch::<f32, 8, 2, 0>::new();
/// ```
#[derive(Clone, Debug)]
pub struct BeamScratch<T, const V: usize, const BEAMS: usize, const MAX_NEW: usize> {
    log_probs: [[T; V]; BEAMS],
    hist: [[usize; MAX_NEW]; BEAMS],
    hist_next: [[usize; MAX_NEW]; BEAMS],
    score: [T; BEAMS],
    score_next: [T; BEAMS],
    parents: [usize; BEAMS],
    top_all: [BeamCand<T>; BEAMS],
    top_run: [BeamCand<T>; BEAMS],
}

const fn check_dims<const V: usize, const BEAMS: usize, const MAX_NEW: usize>() {
    assert!(V > 0, "the vocabulary size V must be at least 1");
    assert!(BEAMS > 0, "BEAMS must be at least 1");
    assert!(MAX_NEW > 0, "MAX_NEW must be at least 1");
}

impl<T: Real, const V: usize, const BEAMS: usize, const MAX_NEW: usize>
    BeamScratch<T, V, BEAMS, MAX_NEW>
{
    /// Size of this scratch in bytes.
    pub const BYTES: usize = core::mem::size_of::<Self>();

    /// Scratch for `BEAMS` beams over `V` tokens, up to `MAX_NEW` new tokens.
    pub const fn new() -> Self {
        const { check_dims::<V, BEAMS, MAX_NEW>() };
        Self {
            log_probs: [[T::ZERO; V]; BEAMS],
            hist: [[0; MAX_NEW]; BEAMS],
            hist_next: [[0; MAX_NEW]; BEAMS],
            score: [T::ZERO; BEAMS],
            score_next: [T::ZERO; BEAMS],
            parents: [0; BEAMS],
            top_all: [BeamCand::ZERO; BEAMS],
            top_run: [BeamCand::ZERO; BEAMS],
        }
    }
}

impl<T: Real, const V: usize, const BEAMS: usize, const MAX_NEW: usize> Default
    for BeamScratch<T, V, BEAMS, MAX_NEW>
{
    fn default() -> Self {
        Self::new()
    }
}

/// The result of a beam search: up to `BEAMS` finished hypotheses, best first,
/// each a list of generated tokens (without the prompt; ending in an EOS id unless
/// the hypothesis was finalised at `MAX_NEW` tokens) and its length-normalised
/// score `sum_logprobs / len^length_penalty`.
#[derive(Clone, Debug)]
pub struct Hypotheses<T, const BEAMS: usize, const MAX_NEW: usize> {
    tokens: [[usize; MAX_NEW]; BEAMS],
    len: [usize; BEAMS],
    score: [T; BEAMS],
    count: usize,
}

impl<T: Real, const BEAMS: usize, const MAX_NEW: usize> Hypotheses<T, BEAMS, MAX_NEW> {
    /// An empty result.
    pub const fn new() -> Self {
        Self {
            tokens: [[0; MAX_NEW]; BEAMS],
            len: [0; BEAMS],
            score: [T::ZERO; BEAMS],
            count: 0,
        }
    }
    fn view(&self) -> HypView<'_, T> {
        HypView {
            max_new: MAX_NEW,
            tokens: self.tokens.as_flattened(),
            len: &self.len,
            score: &self.score,
            count: self.count,
        }
    }
    /// The number of hypotheses held.
    pub fn len(&self) -> usize {
        self.count
    }
    /// `true` if there are none.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }
    /// The generated tokens of hypothesis `i` (0 = best); `None` for `i ≥ len()`.
    pub fn tokens(&self, i: usize) -> Option<&[usize]> {
        self.view().tokens(i)
    }
    /// The score of hypothesis `i`; `None` for `i ≥ len()`.
    pub fn score(&self, i: usize) -> Option<T> {
        self.view().score(i)
    }
    /// The hypotheses, best first, as `(tokens, score)`.
    pub fn iter(&self) -> impl Iterator<Item = (&[usize], T)> + '_ {
        self.view().iter()
    }
}

impl<T: Real, const BEAMS: usize, const MAX_NEW: usize> Default for Hypotheses<T, BEAMS, MAX_NEW> {
    fn default() -> Self {
        Self::new()
    }
}

/// Beam search with Hugging Face `generate` semantics, with the [`Simd`] backend
/// for the log-softmax (see [`beam_search_with`]).
///
/// # Algorithm (matched against transformers 5.24's `_beam_search`)
///
/// * The prompt is fed to beam 0 ([`BeamModel::step`] once per prompt token), then
///   [`BeamModel::reorder`] with all parents 0 copies that state to every beam.
/// * Each step, for every running beam: log-softmax of its logits, then
///   [`BeamModel::process`] (Hugging Face's logits processors, applied to the
///   log-probs), plus the beam's running score: cumulative log-probs. On the first
///   step only beam 0's candidates count (the others are copies).
/// * Hugging Face keeps the top `max(2, 1 + number of EOS ids) · BEAMS` candidates
///   over all beams × vocabulary. Of those, a candidate ending in an EOS id becomes
///   a finished hypothesis only if it ranks among the top `BEAMS`, and the next
///   running beams are the best `BEAMS` candidates that do not end in EOS. Since at
///   most (number of EOS ids) · BEAMS candidates end in EOS, the best `BEAMS`
///   non-EOS candidates always lie inside that top-K, so constml selects the two
///   sets directly (the top `BEAMS` overall, the top `BEAMS` non-EOS) with two
///   small bounded lists in one O(BEAMS · V) pass — no sort.
/// * A finished hypothesis scores `sum_logprobs / (new tokens including the
///   EOS)^length_penalty`; the finished set keeps the best `BEAMS`.
/// * At the last step (`MAX_NEW` new tokens) the top `BEAMS` candidates are all
///   finalised, EOS or not, like finished ones.
/// * Stopping after each step, per [`EarlyStopping`]; at the end the best
///   `num_return` finished hypotheses are returned, best first.
///
/// Ranking ties (equal scores) go to the lower `beam · V + token` index (Hugging
/// Face's `torch.topk` leaves the order of ties unspecified); a new finished
/// hypothesis replaces the worst kept one only if its score is strictly higher.
///
/// # Where constml differs from Hugging Face
///
/// Hugging Face marks the beams that cannot be continued with a score of −1e9
/// instead of removing them (the copies on the first step, and any slot beyond the
/// available candidates). constml treats them as absent: a candidate scoring −∞
/// (a log-prob of −∞, e.g. from a processor) is never selected, and if fewer than
/// `BEAMS` candidates remain, the missing running beams are dead (never stepped).
/// The results agree whenever beam 0 has at least `max(2, 1 + number of EOS ids) ·
/// BEAMS` tokens of finite log-prob; otherwise Hugging Face may return −1e9-scored
/// placeholder hypotheses where constml returns fewer hypotheses.
///
/// # Result and errors
///
/// Returns the number of hypotheses written to `out` (`num_return`, or fewer if
/// fewer than that could be finished — only when almost every log-prob is −∞).
///
/// Errors: `num_return` outside `1..=BEAMS`, a non-finite `length_penalty`
/// ([`Error::InvalidParameter`]); an empty prompt ([`Error::Empty`]); a prompt
/// token or EOS id `≥ V` ([`Error::OutOfRange`]); NaN in the model's logits
/// ([`Error::NaN`]); a `+∞` from the model's logits or from
/// [`BeamModel::process`] ([`Error::InvalidParameter`]); no candidate at all
/// ([`Error::NoCandidates`]); any error of the model, returned unchanged.
///
/// ```
/// use constml::decode::{beam_search, BeamConfig, BeamModel, BeamScratch, EarlyStopping, Hypotheses};
/// use constml::Result;
///
/// /// A bigram model: the next-token logits depend only on the last token.
/// struct Bigram([[f32; 4]; 4]);
/// impl BeamModel<f32> for Bigram {
///     fn step(&mut self, _beam: usize, token: usize, _pos: usize, logits: &mut [f32]) -> Result<()> {
///         logits.copy_from_slice(&self.0[token]);
///         Ok(())
///     }
///     fn reorder(&mut self, _parents: &[usize]) -> Result<()> {
///         Ok(()) // stateless
///     }
/// }
///
/// let mut model = Bigram([
///     [0.0, 2.0, 1.0, -1.0],
///     [0.0, -1.0, 2.0, 0.5],
///     [1.0, 0.0, -2.0, 3.0],
///     [0.0, 0.0, 0.0, 0.0],
/// ]);
/// let mut scratch = BeamScratch::<f32, 4, 2, 5>::new();
/// let mut out = Hypotheses::<f32, 2, 5>::new();
/// let cfg = BeamConfig::new(3).with_num_return(2).with_early_stopping(EarlyStopping::Eager);
/// let n = beam_search(&mut model, &[0], &cfg, &mut scratch, &mut out)?;
/// assert_eq!(n, 2);
/// let (best, score) = out.iter().next().unwrap();
/// assert_eq!(best, &[1, 2, 3]); // 0 → 1 → 2 → EOS
/// assert!(score < 0.0);
/// # Ok::<(), constml::Error>(())
/// ```
pub fn beam_search<T: Real, const V: usize, const BEAMS: usize, const MAX_NEW: usize>(
    model: &mut (impl BeamModel<T> + ?Sized),
    prompt: &[usize],
    cfg: &BeamConfig<'_, T>,
    scratch: &mut BeamScratch<T, V, BEAMS, MAX_NEW>,
    out: &mut Hypotheses<T, BEAMS, MAX_NEW>,
) -> Result<usize> {
    beam_search_with::<Simd, T, V, BEAMS, MAX_NEW>(model, prompt, cfg, scratch, out)
}

/// [`beam_search`] with an explicit backend `B` for the log-softmax; the other
/// parameters are inferred: `beam_search_with::<Scalar, _, _, _, _>(..)`.
pub fn beam_search_with<
    B: Backend,
    T: Real,
    const V: usize,
    const BEAMS: usize,
    const MAX_NEW: usize,
>(
    model: &mut (impl BeamModel<T> + ?Sized),
    prompt: &[usize],
    cfg: &BeamConfig<'_, T>,
    scratch: &mut BeamScratch<T, V, BEAMS, MAX_NEW>,
    out: &mut Hypotheses<T, BEAMS, MAX_NEW>,
) -> Result<usize> {
    const { check_dims::<V, BEAMS, MAX_NEW>() };
    let s = scratch;
    let work = Work {
        v: V,
        beams: BEAMS,
        max_new: MAX_NEW,
        log_probs: s.log_probs.as_flattened_mut(),
        hist: s.hist.as_flattened_mut(),
        hist_next: s.hist_next.as_flattened_mut(),
        score: &mut s.score,
        score_next: &mut s.score_next,
        parents: &mut s.parents,
        top_all: &mut s.top_all,
        top_run: &mut s.top_run,
    };
    let o = Out {
        tokens: out.tokens.as_flattened_mut(),
        len: &mut out.len,
        score: &mut out.score,
        count: &mut out.count,
    };
    run::<B, T, _>(model, prompt, cfg, work, o)
}

/// Heap-backed scratch for [`beam_search_dyn`]: the contents of [`BeamScratch`]
/// with the vocabulary size, beam count and maximum new tokens chosen at run time.
#[cfg(feature = "std")]
#[derive(Clone, Debug)]
pub struct BeamScratchDyn<T> {
    v: usize,
    beams: usize,
    max_new: usize,
    log_probs: std::vec::Vec<T>,
    hist: std::vec::Vec<usize>,
    hist_next: std::vec::Vec<usize>,
    score: std::vec::Vec<T>,
    score_next: std::vec::Vec<T>,
    parents: std::vec::Vec<usize>,
    top_all: std::vec::Vec<BeamCand<T>>,
    top_run: std::vec::Vec<BeamCand<T>>,
}

#[cfg(feature = "std")]
impl<T: Real> BeamScratchDyn<T> {
    /// Scratch for `beams` beams over `v` tokens, up to `max_new` new tokens. Zero
    /// sizes are accepted here and rejected by [`beam_search_dyn`]; a size whose
    /// product overflows is [`Error::InvalidParameter`].
    pub fn new(v: usize, beams: usize, max_new: usize) -> Result<Self> {
        let overflow = Error::InvalidParameter {
            what: "BeamScratchDyn::new",
            reason: "beams × v or beams × max_new overflows usize",
        };
        let lp = beams.checked_mul(v).ok_or(overflow)?;
        let h = beams.checked_mul(max_new).ok_or(overflow)?;
        Ok(Self {
            v,
            beams,
            max_new,
            log_probs: crate::matrix::filled_vec("BeamScratchDyn::new", lp, T::ZERO)?,
            hist: crate::matrix::filled_vec("BeamScratchDyn::new", h, 0)?,
            hist_next: crate::matrix::filled_vec("BeamScratchDyn::new", h, 0)?,
            score: crate::matrix::filled_vec("BeamScratchDyn::new", beams, T::ZERO)?,
            score_next: crate::matrix::filled_vec("BeamScratchDyn::new", beams, T::ZERO)?,
            parents: crate::matrix::filled_vec("BeamScratchDyn::new", beams, 0)?,
            top_all: crate::matrix::filled_vec("BeamScratchDyn::new", beams, BeamCand::ZERO)?,
            top_run: crate::matrix::filled_vec("BeamScratchDyn::new", beams, BeamCand::ZERO)?,
        })
    }
}

/// Heap-backed [`Hypotheses`] for [`beam_search_dyn`].
#[cfg(feature = "std")]
#[derive(Clone, Debug)]
pub struct HypothesesDyn<T> {
    beams: usize,
    max_new: usize,
    tokens: std::vec::Vec<usize>,
    len: std::vec::Vec<usize>,
    score: std::vec::Vec<T>,
    count: usize,
}

#[cfg(feature = "std")]
impl<T: Real> HypothesesDyn<T> {
    /// Room for `beams` hypotheses of up to `max_new` tokens.
    pub fn new(beams: usize, max_new: usize) -> Result<Self> {
        let n = beams.checked_mul(max_new).ok_or(Error::InvalidParameter {
            what: "HypothesesDyn::new",
            reason: "beams × max_new overflows usize",
        })?;
        Ok(Self {
            beams,
            max_new,
            tokens: crate::matrix::filled_vec("HypothesesDyn::new", n, 0)?,
            len: crate::matrix::filled_vec("HypothesesDyn::new", beams, 0)?,
            score: crate::matrix::filled_vec("HypothesesDyn::new", beams, T::ZERO)?,
            count: 0,
        })
    }
    fn view(&self) -> HypView<'_, T> {
        HypView {
            max_new: self.max_new,
            tokens: &self.tokens,
            len: &self.len,
            score: &self.score,
            count: self.count,
        }
    }
    /// The number of hypotheses held.
    pub fn len(&self) -> usize {
        self.count
    }
    /// `true` if there are none.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }
    /// The generated tokens of hypothesis `i` (0 = best); `None` for `i ≥ len()`.
    pub fn tokens(&self, i: usize) -> Option<&[usize]> {
        self.view().tokens(i)
    }
    /// The score of hypothesis `i`; `None` for `i ≥ len()`.
    pub fn score(&self, i: usize) -> Option<T> {
        self.view().score(i)
    }
    /// The hypotheses, best first, as `(tokens, score)`.
    pub fn iter(&self) -> impl Iterator<Item = (&[usize], T)> + '_ {
        self.view().iter()
    }
}

/// Runtime-shaped face of [`beam_search`] (the [`Simd`] backend).
///
/// Besides the errors of [`beam_search`]: a scratch or result with a zero
/// dimension ([`Error::Empty`]), or a result shaped differently from the scratch
/// ([`Error::ShapeMismatch`]).
#[cfg(feature = "std")]
pub fn beam_search_dyn<T: Real>(
    model: &mut (impl BeamModel<T> + ?Sized),
    prompt: &[usize],
    cfg: &BeamConfig<'_, T>,
    scratch: &mut BeamScratchDyn<T>,
    out: &mut HypothesesDyn<T>,
) -> Result<usize> {
    beam_search_dyn_with::<Simd, T>(model, prompt, cfg, scratch, out)
}

/// [`beam_search_dyn`] with an explicit backend:
/// `beam_search_dyn_with::<Scalar, _>(..)`.
#[cfg(feature = "std")]
pub fn beam_search_dyn_with<B: Backend, T: Real>(
    model: &mut (impl BeamModel<T> + ?Sized),
    prompt: &[usize],
    cfg: &BeamConfig<'_, T>,
    scratch: &mut BeamScratchDyn<T>,
    out: &mut HypothesesDyn<T>,
) -> Result<usize> {
    let s = scratch;
    if s.v == 0 || s.beams == 0 || s.max_new == 0 {
        return Err(Error::Empty {
            what: "beam_search: scratch (V, beams and max_new must be at least 1)",
        });
    }
    if (out.beams, out.max_new) != (s.beams, s.max_new) {
        return Err(Error::ShapeMismatch {
            what: "beam_search: out (beams, max_new)",
            expected: (s.beams, s.max_new),
            found: (out.beams, out.max_new),
        });
    }
    let work = Work {
        v: s.v,
        beams: s.beams,
        max_new: s.max_new,
        log_probs: &mut s.log_probs,
        hist: &mut s.hist,
        hist_next: &mut s.hist_next,
        score: &mut s.score,
        score_next: &mut s.score_next,
        parents: &mut s.parents,
        top_all: &mut s.top_all,
        top_run: &mut s.top_run,
    };
    let o = Out {
        tokens: &mut out.tokens,
        len: &mut out.len,
        score: &mut out.score,
        count: &mut out.count,
    };
    run::<B, T, _>(model, prompt, cfg, work, o)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Both paths of `normalised` against `score · n^(−lp)` computed in f64.
    #[test]
    fn normalised_scores_take_the_direct_or_the_log_path_correctly() {
        // (score, n, lp): 2^40 is a normal f32 (direct path, HF's division);
        // 2^−126.5 is subnormal in f32 (log path).
        for (score, n, lp) in [
            (-0.5f32, 2usize, 40.0f32),
            (-0.5, 2, -126.5),
            (-3.0, 5, 1.0),
        ] {
            let want = score as f64 * libm::pow(n as f64, -(lp as f64));
            let got = normalised(score, n, lp).unwrap() as f64;
            assert!(
                (got - want).abs() <= 2.0 * f32::EPSILON as f64 * want.abs(),
                "{score} {n} {lp}: {got:e} vs {want:e}"
            );
        }
        // The direct path is HF's: f32 division by the f32-rounded power.
        let p = libm::pow(5.0, 1.0f64) as f32;
        assert_eq!(normalised(-3.0f32, 5, 1.0).unwrap(), -3.0 / p);
        assert_eq!(normalised(0.0f32, 7, -126.5).unwrap(), 0.0);
        // An overflowing result is an error, not −∞.
        assert!(normalised(-1e30f32, 2, -126.5).is_err());
        assert_eq!(
            normalised(f32::NEG_INFINITY, 2, 1.0).unwrap(),
            f32::NEG_INFINITY
        );
    }
}
