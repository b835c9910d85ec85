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
//! * Algorithms ([`attention`], [`decode`], …): each written once, generic over the
//!   element type and the backend.
//!
//! ## Choosing a backend
//!
//! Rust has no default type parameters on functions, so constml uses one pattern
//! everywhere:
//!
//! * a free function `foo(..)` runs with [`Simd`]; `foo_with::<B>(..)` is the same
//!   function with the backend named, e.g. `kernels::matmul_with::<Scalar>(..)`;
//! * a struct carries a backend parameter with a default, `Layer<.., B: Backend = Simd>`;
//! * the kernels themselves are associated functions of the backend:
//!   `Simd::dot(&a, &b)`, `Scalar::gemm(..)`.
//!
//! ## Two faces, one implementation
//!
//! Every algorithm's arithmetic lives in one function over slices and matrix
//! views ([`MatRef`], [`MatMut`]) with runtime dimensions. The *const-generic
//! face* takes arrays whose types carry the shape, so a mismatch does not compile
//! (see [`kernels`]). With the `std` feature, the *runtime face* ([`Matrix`] and
//! `std` variants in each algorithm's module) takes runtime shapes and returns
//! [`Error`] when they do not fit. Both call the same function.
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

pub mod attention;
pub mod backend;
pub mod decode;
pub mod error;
pub mod kernels;
pub mod mat;
#[cfg(feature = "std")]
pub mod matrix;
pub mod nn;
mod norm;
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
