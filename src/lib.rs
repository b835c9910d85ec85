#![no_std]
#![forbid(unsafe_code)]
#[cfg(feature = "std")]
extern crate std;

pub mod attention;
pub mod backend;
pub mod decode;
pub mod error;
pub mod mat;
#[cfg(feature = "std")]
pub mod matrix;
pub mod real;

pub use backend::{Accumulate, Backend, Scalar, Simd};
pub use error::{Error, Result};
pub use mat::{MatMut, MatRef};
#[cfg(feature = "std")]
pub use matrix::Matrix;
pub use real::Real;
