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
//! | draw | first token in **id order** whose running weight sum exceeds `u · S`, with bit-reproducible sums (see below; [`sample_probs`]) |
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
//! win; in beam search that includes a `+∞` written by a logits processor
//! ([`BeamModel::process`]). The full table is [`crate::audit`]. Zero sizes of the const face (`V`, `BEAMS`, `MAX_NEW`) are compile-time
//! errors.
//!
//! # Reproducible sampling
//!
//! The sampling path ([`Sampler`], [`sample_probs`], the filters [`top_p`],
//! [`top_p_probs`], [`min_p`], [`min_p_probs`], [`top_k`]) is designed to give
//! the same bits for the same input on every target, so the same seed and logits
//! give the same token (tested: x86-64 baseline and native builds in CI; aarch64
//! by hand under qemu-user; Cortex-M and RISC-V runs are planned with the
//! on-target suites). It is built only from
//! operations that are correctly rounded or exact lane by lane — IEEE add, sub,
//! mul and div, comparisons, selects by bit masks, integer operations on the
//! bits — applied in an order that does not depend on the build. It is
//! vectorised with `wide::f32x16` (`f32`) and `wide::f64x8` (`f64`): types that
//! have 16 and 8 lanes on every target (one AVX-512 register, two AVX2 ones, four
//! SSE2 or NEON ones, or a plain array on a microcontroller), so a lane-wise
//! operation is the same IEEE operation everywhere. With `K` = 16 for `f32` and
//! 8 for `f64`:
//!
//! * **Exponential.** Weights are [`repro_exp`]`(x/T − max)` (`x − max` when
//!   `T = 1`): a fixed Cody–Waite reduction and Horner polynomial with separate
//!   multiplications and additions (never a fused multiply-add). The `K`-lane
//!   form performs, lane by lane, exactly the scalar function's operations in
//!   its order, so it gives the scalar bits (a dense sample is tested; every
//!   `f32` input by an ignored test run by hand, `cargo test --release --lib --
//!   --ignored vector_exp_is_the_scalar_exp_for_all_f32`).
//! * **Sums.** Every sum over tokens — the total of the weights, the survivors'
//!   total `S`, top-p's mass of its gathered candidates, the draw's block
//!   prefixes — is the *reproducible sum* of `w_0, …, w_(n−1)`:
//!   1. `K` partial sums, token `i` going to partial `i mod K`:
//!      `s_j = ((+0 + w_j) + w_(j+K)) + w_(j+2K) + …`, in increasing `i`;
//!   2. a halving tree: for `h = K/2, K/4, …, 1`, `s_j ← s_j + s_(j+h)` for every
//!      `j < h`; the sum is `s_0`.
//!
//!   For `f32` that is `[((s0+s8)+(s4+s12)) + ((s2+s10)+(s6+s14))] +
//!   [((s1+s9)+(s5+s13)) + ((s3+s11)+(s7+s15))]`.
//! * **The draw.** `u` = [`uniform`] (one `next_u32` for `f32`, one `next_u64`
//!   for `f64`), target `t = u · S`. Tokens form blocks of 256; block `b` starts
//!   at `S_b`, the reproducible sum of the tokens before it, and ends at
//!   `S_(b+1)` (`S` for the last block). The chosen block is the first with
//!   `S_(b+1) > t`; in it, the token is the first (in id order) whose running sum
//!   `S_b + w_(256b) + … + w_i` — sequential, over positive weights — exceeds `t`,
//!   or the block's last positive-weight token if rounding keeps that walk at or
//!   below `t`. If no block qualifies (rounding left `t` at `S`), the last
//!   positive-weight token. Zero weights are never drawn.
//! * **Selections.** Quickselects with fixed-seed pivots. Top-p's candidate
//!   masses are summed in an order fixed by the algorithm: candidates gathered in
//!   token order, a first round of quarter-octave weight buckets (each bucket's
//!   mass in array order), then per partition round four interleaved partial sums
//!   in array order, and a sequential walk of the last short range.
//! * **The maximum** of the logits is exact in any order except for the sign of a
//!   zero, so the scan reads it back from the first logit that holds it.
//!
//! None of this depends on a [`Backend`](crate::Backend) or on the build-dependent
//! width of [`Real::V`](crate::Real::V).
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
mod lanes;
mod min_p;
mod repro;
mod sampler;
mod select;
mod temperature;
mod top_k;
mod top_p;

pub use beam::{
    BeamConfig, BeamModel, BeamScratch, EarlyStopping, EosIds, Hypotheses, beam_search,
    beam_search_with,
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
