#![no_std]
#![forbid(unsafe_code)]
#[cfg(feature = "std")]
extern crate std;

pub mod backend;
pub mod error;
pub mod mat;
pub mod real;

pub use backend::{Accumulate, Backend, Scalar, Simd};
pub use error::{Error, Result};
pub use mat::{MatMut, MatRef};
pub use real::Real;
