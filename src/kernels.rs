//! The const-generic face of the kernels: shapes are array types.
//!
//! Each function here is a thin shell over a [`Backend`] kernel: the array types
//! make a shape mismatch a compile error, so nothing is checked at run time and
//! nothing can fail except on NaN where the answer would be meaningless. The plain
//! name uses [`Simd`]; the `*_with::<B>` form picks the backend.
//!
//! ```
//! use constml::kernels;
//! let w = [[1.0f32, 2.0, 3.0], [0.0, 1.0, 0.0]]; // (OUT = 2, IN = 3)
//! let x = [1.0f32, 1.0, 1.0];
//! let mut y = [0.0f32; 2];
//! kernels::matvec(&w, &x, &mut y);
//! assert_eq!(y, [6.0, 1.0]);
//! ```
//!
//! Shapes that do not fit do not compile:
//!
//! ```compile_fail,E0308
//! use constml::kernels;
//! let a = [[0.0f32; 3]; 2];
//! let b = [[0.0f32; 4]; 2]; // (2, 4): inner dimensions 3 ≠ 2
//! let mut c = [[0.0f32; 4]; 2];
//! kernels::matmul(&a, &b, &mut c);
//! ```
//!
//! ```compile_fail,E0308
//! use constml::kernels;
//! let w = [[0.0f32; 3]; 2];
//! let mut y = [0.0f32; 3]; // OUT is 2
//! kernels::matvec(&w, &[0.0; 3], &mut y);
//! ```
//!
//! The argmax of nothing is rejected at compile time:
//!
//! ```compile_fail,E0080
//! let x: [f32; 0] = [];
//! let _ = constml::kernels::argmax(&x);
//! ```

use crate::backend::{Accumulate, Backend, Simd};
use crate::error::Result;
use crate::mat::{MatMut, MatRef};
use crate::real::Real;

/// Dot product of two equal-length arrays.
#[inline]
pub fn dot<T: Real, const N: usize>(a: &[T; N], b: &[T; N]) -> T {
    dot_with::<Simd, T, N>(a, b)
}

/// [`dot`] with backend `B`.
#[inline]
pub fn dot_with<B: Backend, T: Real, const N: usize>(a: &[T; N], b: &[T; N]) -> T {
    B::raw_dot(a, b)
}

/// `y = W·x` with weights `(OUT, IN)` (PyTorch `nn.Linear` without bias).
#[inline]
pub fn matvec<T: Real, const IN: usize, const OUT: usize>(
    w: &[[T; IN]; OUT],
    x: &[T; IN],
    y: &mut [T; OUT],
) {
    matvec_with::<Simd, T, IN, OUT>(w, x, y);
}

/// [`matvec`] with backend `B`.
#[inline]
pub fn matvec_with<B: Backend, T: Real, const IN: usize, const OUT: usize>(
    w: &[[T; IN]; OUT],
    x: &[T; IN],
    y: &mut [T; OUT],
) {
    B::raw_matvec(MatRef::from_array(w), x, y, Accumulate::Overwrite);
}

/// `C = A·B`: A `(M, K)`, B `(K, N)`, C `(M, N)`.
#[inline]
pub fn matmul<T: Real, const M: usize, const K: usize, const N: usize>(
    a: &[[T; K]; M],
    b: &[[T; N]; K],
    c: &mut [[T; N]; M],
) {
    matmul_with::<Simd, T, M, K, N>(a, b, c);
}

/// [`matmul`] with backend `B`.
#[inline]
pub fn matmul_with<B: Backend, T: Real, const M: usize, const K: usize, const N: usize>(
    a: &[[T; K]; M],
    b: &[[T; N]; K],
    c: &mut [[T; N]; M],
) {
    B::raw_gemm(
        MatRef::from_array(a),
        MatRef::from_array(b),
        MatMut::from_array(c),
        Accumulate::Overwrite,
    );
}

/// `C = A·Bᵀ`: A `(M, K)`, B `(N, K)`, C `(M, N)` — e.g. attention scores `Q·Kᵀ`.
#[inline]
pub fn matmul_bt<T: Real, const M: usize, const K: usize, const N: usize>(
    a: &[[T; K]; M],
    b: &[[T; K]; N],
    c: &mut [[T; N]; M],
) {
    matmul_bt_with::<Simd, T, M, K, N>(a, b, c);
}

/// [`matmul_bt`] with backend `B`.
#[inline]
pub fn matmul_bt_with<B: Backend, T: Real, const M: usize, const K: usize, const N: usize>(
    a: &[[T; K]; M],
    b: &[[T; K]; N],
    c: &mut [[T; N]; M],
) {
    B::raw_gemm_bt(
        MatRef::from_array(a),
        MatRef::from_array(b),
        MatMut::from_array(c),
        Accumulate::Overwrite,
    );
}

/// Softmax in place (see [`Backend::softmax`]: an all −∞ row gives zeros).
#[inline]
pub fn softmax<T: Real, const N: usize>(x: &mut [T; N]) {
    Simd::softmax(x);
}

/// [`softmax`] with backend `B`.
#[inline]
pub fn softmax_with<B: Backend, T: Real, const N: usize>(x: &mut [T; N]) {
    B::softmax(x);
}

/// Log-softmax in place (see [`Backend::log_softmax`]).
#[inline]
pub fn log_softmax<T: Real, const N: usize>(x: &mut [T; N]) {
    Simd::log_softmax(x);
}

/// [`log_softmax`] with backend `B`.
#[inline]
pub fn log_softmax_with<B: Backend, T: Real, const N: usize>(x: &mut [T; N]) {
    B::log_softmax(x);
}

/// Index of the largest element, lowest index on ties; `Err(NaN)` if any element
/// is NaN. `N = 0` does not compile.
#[inline]
pub fn argmax<T: Real, const N: usize>(x: &[T; N]) -> Result<usize> {
    argmax_with::<Simd, T, N>(x)
}

/// [`argmax`] with backend `B`.
#[inline]
pub fn argmax_with<B: Backend, T: Real, const N: usize>(x: &[T; N]) -> Result<usize> {
    const { assert!(N > 0, "argmax of an empty array is undefined") };
    B::argmax(x)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Scalar;

    #[test]
    fn const_face_matches_slice_face() {
        let a: [[f32; 5]; 3] =
            core::array::from_fn(|i| core::array::from_fn(|j| (i * 5 + j) as f32));
        let b: [[f32; 2]; 5] =
            core::array::from_fn(|i| core::array::from_fn(|j| (i as f32) - j as f32));
        let mut c = [[0.0f32; 2]; 3];
        matmul(&a, &b, &mut c);
        let mut c2 = [[0.0f32; 2]; 3];
        matmul_with::<Scalar, _, 3, 5, 2>(&a, &b, &mut c2);
        assert_eq!(c, c2);
        // Row 0 of A is 0..5; column 0 of B is 0..5: Σ i² = 30.
        assert_eq!(c[0][0], 30.0);
        let bt: [[f32; 5]; 2] = core::array::from_fn(|j| core::array::from_fn(|i| b[i][j]));
        let mut c3 = [[0.0f32; 2]; 3];
        matmul_bt(&a, &bt, &mut c3);
        assert_eq!(c, c3);
        let mut y = [0.0f32; 3];
        crate::nn::linear(&a, &[1.0, 2.0, 3.0], &[1.0; 5], &mut y);
        assert_eq!(y, [11.0, 37.0, 63.0]);
        assert_eq!(dot(&[1.0f64, 2.0], &[3.0, 4.0]), 11.0);
        assert_eq!(argmax(&[1.0f32, 3.0, 3.0]), Ok(1));
    }
}
