//! # constml
//!
//! Machine-learning kernels for firmware and desktops: `no_std`, allocation-free,
//! with const-generic shapes and explicit SIMD through the [`wide`] crate.
//!
//! ## Layers
//!
//! * [`real`]: the element layer — [`Real`] for `f32` and `f64`, with the `wide`
//!   vector type of the build and lane-wise maths.
//! * [`backend`]: the [`Backend`] trait and its two zero-sized implementations,
//!   [`Scalar`] (plain loops, the reference and test oracle) and [`Simd`]
//!   (`wide`, register-blocked). The only place with SIMD code.
//! * Algorithms, one folder per chapter and one file per algorithm, each
//!   written once, generic over the element type and the backend:
//!   [`attention`], [`position`], [`norm`], [`ml`], [`nn`], [`decode`] (and the
//!   model chapters as they arrive).
//!
//! ## Naming
//!
//! Every algorithm has up to three faces, all calling one implementation, and
//! every function two forms. One table, applied to every public item:
//!
//! | face | storage and shapes | functions | types |
//! |---|---|---|---|
//! | const-generic | arrays whose types carry the shape; a mismatch does not compile | `foo`, `foo_with::<B>` | `Foo<T, .., B = Simd>`; scratch `FooScratch<T, ..>` with `const fn new()` and `BYTES` |
//! | views | [`MatRef`] / [`MatMut`] / slices with runtime shapes, caller-owned outputs and scratch, no allocation | `foo_views`, `foo_views_with::<B>` | parameter views `FooParams<'a, T>`; scratch length `foo_scratch_len(..)` |
//! | runtime (`std`) | [`Matrix`], `Vec`, borrowed slices; returns owned outputs | `foo_dyn`, `foo_dyn_with::<B>` | `FooDyn<T, B = Simd>`; scratch `FooScratchDyn<T>` |
//!
//! * **Backend.** Rust has no default type parameters on functions: the plain
//!   form `foo(..)` runs [`Simd`]; `foo_with::<B, ..>(..)` names the backend
//!   first, and `_` infers the rest (`beam_search_with::<Scalar, _, _, _, _>`).
//!   Structs carry `B: Backend = Simd`. The kernels themselves are associated
//!   functions of the backend: `Simd::dot(&a, &b)`, `Scalar::gemm(..)`,
//!   `Simd::gemm_bt(..)` (`A·Bᵀ` is `_bt` everywhere: [`Backend::gemm_bt`],
//!   [`kernels::matmul_bt`], [`Matrix::matmul_bt`]).
//! * **Units.** `BYTES` constants are bytes (`size_of`, for memory planning);
//!   `*_scratch_len` functions return a length in elements of `T`, the unit of
//!   the `&mut [T]` they size.
//! * **Names per algorithm.** Attention: `sdpa`, `gqa`, `attend_cache`
//!   (over a KV cache), `attend_views` (one head over runs of keys),
//!   `mha_views`, `decoder_attention_views`, `mpt_forward_views`, and the layer
//!   structs `MultiHeadAttention`, `SelfAttention`, `CausalSelfAttention`,
//!   `MptAttention` (runtime: `…Dyn`). Decoding: `greedy`, `temperature`,
//!   `top_k`, `top_p`, `min_p`, `beam_search`, `Sampler` (runtime: `_dyn`).
//!   Position encodings: `Sinusoidal`, `LearnedPositions` (views:
//!   `learned_add_views`, `learned_backward_views`, …), `ShawRelative`,
//!   `T5Buckets` / `T5RelativeBias`, `Alibi` / `alibi_slopes`, `Rope` /
//!   `RopeTable` (runtime: `LearnedPositionsDyn`, `ShawRelativeDyn`,
//!   `RopeDyn`). Normalisation: `LayerNorm`, `RmsNorm`, `BatchNorm`
//!   (views: `layer_norm_views`, `rms_norm_views`, `batch_norm_train_views`,
//!   their `_backward_views`, `fold_batch_norm_views`; runtime: `…Dyn`).
//!   Classic ML: `LinearRegression`, `sgd_fit_views`, `least_squares_views`,
//!   `KMeans`, `kmeans_views`, `kmeans_online_update` (runtime:
//!   `sgd_fit_dyn`, `least_squares_dyn`, `kmeans_dyn`). Neural networks:
//!   `Linear`, `linear_backward_views`, `activation_forward` /
//!   `activation_backward`, `cross_entropy`, `Sgd`, `Adam`, `conv2d_views`,
//!   `conv2d_im2col_views` (scratch `conv2d_im2col_scratch_len`, const
//!   `im2col_len`), `conv2d_auto_views`, `conv2d_with`, `max_pool2d_views`;
//!   recurrent: `Lstm` / `Gru` / `Rnn` (const), `recurrent_forward_views`,
//!   `recurrent_backward_views`, `recurrent_step_views` with
//!   `recurrent_saved_len` and `recurrent_*_scratch_len` (runtime:
//!   `LinearDyn`, `Conv2dDyn`, `RecurrentDyn`). Models: `Llama` /
//!   `LlamaState` (arena `LlamaConfig::state_len`), `Gpt2` / `Gpt2State`
//!   (`Gpt2Config::state_len`), the const face `Gpt2Sized`, `Gpt2Beams`
//!   for beam search; llama2.c's format: `llama2c_config`,
//!   `llama2c_weights` (runtime: `Llama2cCheckpoint`, `Tokenizer`).
//!
//! ### Naming a configuration once
//!
//! Layers and scratch types take many const parameters; name a model's shapes
//! once with type aliases (sums such as `S = CAP + N` written as a const
//! expression of concrete values):
//!
//! ```
//! use constml::attention::{DecoderScratch, KvCache};
//! const HEADS: usize = 4;
//! const HEAD_DIM: usize = 16;
//! const CAP: usize = 128;
//! /// The cache and the scratch of one decode step (N = 1) of this model.
//! type Cache = KvCache<f32, HEADS, HEAD_DIM, CAP>;
//! type StepScratch = DecoderScratch<f32, 1, HEADS, HEADS, HEAD_DIM, { CAP + 1 }>;
//! static CACHE_BYTES: usize = Cache::BYTES; // keys and values, plus bookkeeping
//! assert!(CACHE_BYTES >= 2 * HEADS * HEAD_DIM * CAP * 4);
//! let mut scratch = StepScratch::new();
//! # let _ = &mut scratch;
//! ```
//!
//! ### Renamed in 0.2
//!
//! `Backend::gemm_abt` → [`Backend::gemm_bt`]; `Matrix::matmul_t` →
//! [`Matrix::matmul_bt`]; `kernels::linear` → [`nn::linear()`];
//! `scaled_dot_product_attention` → `attention::sdpa`;
//! `grouped_query_attention` → `attention::gqa`; `sdpa_matrix` / `gqa_matrix`
//! → `sdpa_dyn` / `gqa_dyn` (plus the batched `sdpa_batched_dyn`);
//! `attend_kv_cache` → `attend_cache`; `attend_cache` (views) →
//! `attend_cache_views`; `attend_with` → `attend_views_with`;
//! `scratch_len` / `cache_scratch_len` → `sdpa_scratch_len` /
//! `attend_cache_scratch_len`; `project_qkv_with` / `mpt_project_with` →
//! `*_views_with`; `KvCacheVec`, `MhaWeightsVec`, `MptQkNormVecs` →
//! `KvCacheDyn`, `MhaWeightsDyn`, `MptQkNormDyn`; `attention::ShawRelative` →
//! [`position::ShawRelative`]; `Real::to_f64` → [`Real::as_f64`] (no clash
//! with `num_traits::ToPrimitive::to_f64`); `BeamConfig::new(&[eos])` →
//! `BeamConfig::new(eos)` (any [`decode::EosIds`] source).
//!
//! ## Errors, not panics
//!
//! Nothing reachable from the public API panics on bad runtime input: it returns
//! an [`Error`]. NaN inputs propagate through arithmetic (documented per
//! function) and are reported where a result would be meaningless (argmax).
//!
//! ```
//! use constml::{kernels, Backend, Scalar, Simd};
//! let a = [[1.0f32, 2.0], [3.0, 4.0]];
//! let b = [[5.0f32, 6.0], [7.0, 8.0]];
//! let mut c = [[0.0f32; 2]; 2];
//! kernels::matmul(&a, &b, &mut c);                        // Simd
//! assert_eq!(c, [[19.0, 22.0], [43.0, 50.0]]);
//! kernels::matmul_with::<Scalar, _, 2, 2, 2>(&a, &b, &mut c); // the oracle
//! assert_eq!(c, [[19.0, 22.0], [43.0, 50.0]]);
//!
//! let mut logits = [1.0f32, 2.0, f32::NEG_INFINITY];
//! Simd::softmax(&mut logits);
//! assert_eq!(logits[2], 0.0);
//! ```
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#[cfg(feature = "std")]
extern crate std;

/// Defines the plain form `foo(..)` of a `foo_with::<B, ..>(..)` function: the
/// same arguments, the [`Simd`] backend. One line per wrapper, so the naming
/// rule cannot drift.
macro_rules! simd_default {
    ($name:ident => $with:ident <$($g:ident : $b:path),*> ($($a:ident : $t:ty),* $(,)?) -> $r:ty) => {
        #[doc = concat!("[`", stringify!($with), "`] with the [`Simd`](crate::Simd) backend.")]
        #[inline]
        #[allow(clippy::too_many_arguments)]
        pub fn $name<$($g: $b),*>($($a: $t),*) -> $r {
            $with::<crate::Simd, $($g),*>($($a),*)
        }
    };
}
pub(crate) use simd_default;

pub mod attention;
pub mod audit;
pub mod backend;
pub mod decode;
pub mod error;
pub mod kernels;
pub mod mat;
#[cfg(feature = "std")]
pub mod matrix;
pub mod ml;
pub mod models;
pub mod nn;
pub mod norm;
pub mod position;
pub mod real;

pub use backend::{Accumulate, Backend, Scalar, Simd};
pub use error::{Error, Result};
pub use mat::{MatMut, MatRef};
#[cfg(feature = "std")]
pub use matrix::Matrix;
/// The `rand_core` crate, whose [`Rng`](rand_core::Rng) trait appears in the
/// sampling signatures.
pub use rand_core;
pub use real::Real;

/// The README's Rust examples, run as doctests so the README stays true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
