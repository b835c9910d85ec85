//! Decoding: greedy, temperature, top-k, top-p, min-p, sampling and beam search.
//!
//! Everything here is allocation-free (scratch is caller-owned, sized by the const
//! vocabulary `V`) and runs in expected O(V): selections are quickselects, never a
//! sort of the vocabulary. Every algorithm has a const-generic face over
//! `[T; V]` arrays and, with the `std` feature, a runtime-vocabulary face over
//! slices (`*_dyn`, with heap-backed `*Dyn` scratch) that calls the same code.
//!
//! # Conventions
//!
//! | piece | rule |
//! |---|---|
//! | [`greedy`] | argmax, **lowest token id on ties** |
//! | [`temperature`] | `logits / T` for `T > 0`; **`T = 0` means greedy** (Hugging Face rejects 0; llama.cpp treats it as greedy) |
//! | [`top_k`] | **exactly k** survivors, ties broken by lower token id; `k ≥ V` keeps everything (Hugging Face keeps every tie) |
//! | [`top_p`] | smallest set of most probable tokens with mass **≥ p**: the crossing token is kept, reaching p exactly stops, ties → lower id, ≥ 1 kept; `p = 0` keeps the top token, `p = 1` everything |
//! | [`min_p`] | keep probability **≥ min_p × top probability** |
//! | [`Sampler`] | temperature → top-k → top-p → min-p → draw (Hugging Face's order) |
//! | draw | first token in **id order** whose running weight sum exceeds `u · S` ([`sample_probs`]) |
//! | [`beam_search`] | Hugging Face `generate` (≥ 4.50): cumulative log-probs; finished score = `sum / new_len^length_penalty` |
//!
//! Filtered logits become −∞ (Hugging Face's `filter_value`); the probability
//! forms ([`top_p_probs`], [`min_p_probs`]) set filtered weights to 0.
//!
//! # Bad input
//!
//! NaN logits, all logits −∞, `T < 0` or non-finite, `p` or `min_p` outside
//! `[0, 1]`, `k = 0`, `num_return > BEAMS`, an empty vocabulary or a scratch of the
//! wrong size (runtime face), a model error: a clear [`Error`](crate::Error), never
//! a panic, never an out-of-range token. `+∞` logits (whose probability is
//! undefined) are rejected by everything except [`greedy`], for which they simply
//! win. Zero sizes of the const face (`V`, `BEAMS`, `MAX_NEW`) are compile-time
//! errors.
//!
//! # Reproducible sampling
//!
//! The sampling path ([`Sampler`], [`sample_probs`], the probability-based
//! filters) uses [`repro_exp`] (IEEE add/mul only, a fixed polynomial, no fused
//! operations), plain sequential sums in token order, deterministic selections and
//! one [`uniform`] number per draw, so the same seed and logits give the same token
//! on x86 (baseline and native), aarch64, Cortex-M and RISC-V. Its one vector
//! kernel is the maximum of the logits ([`Simd`](crate::Simd)'s reduction): a
//! maximum is exact and independent of the reduction order except for the sign of
//! a zero, which the scan then takes from the first logit holding the maximum.
//!
//! # Backends
//!
//! Following the crate's pattern, the functions whose result may use a chosen
//! kernel (greedy's maximum, beam search's log-softmax) have a `*_with::<B>` form;
//! the plain form uses [`Simd`](crate::Simd). The sampling path has no backend
//! parameter: its result must not depend on one.

mod beam;
mod draw;
mod greedy;
mod min_p;
mod repro;
mod sampler;
mod select;
mod temperature;
mod top_k;
mod top_p;

pub use beam::{
    BeamConfig, BeamModel, BeamScratch, EarlyStopping, Hypotheses, beam_search, beam_search_with,
};
pub use draw::sample_probs;
pub use greedy::{greedy, greedy_with};
pub use min_p::{min_p, min_p_probs};
pub use repro::{repro_exp, uniform};
pub use sampler::{Sampler, SamplerScratch};
pub use select::SelectScratch;
pub use temperature::temperature;
pub use top_k::top_k;
pub use top_p::{top_p, top_p_probs};

#[cfg(feature = "std")]
pub use beam::{BeamScratchDyn, HypothesesDyn, beam_search_dyn, beam_search_dyn_with};
#[cfg(feature = "std")]
pub use draw::sample_probs_dyn;
#[cfg(feature = "std")]
pub use greedy::{greedy_dyn, greedy_dyn_with};
#[cfg(feature = "std")]
pub use min_p::{min_p_dyn, min_p_probs_dyn};
#[cfg(feature = "std")]
pub use sampler::SamplerScratchDyn;
#[cfg(feature = "std")]
pub use select::SelectScratchDyn;
#[cfg(feature = "std")]
pub use temperature::temperature_dyn;
#[cfg(feature = "std")]
pub use top_k::top_k_dyn;
#[cfg(feature = "std")]
pub use top_p::{top_p_dyn, top_p_probs_dyn};
