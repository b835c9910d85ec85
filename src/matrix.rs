//! The runtime-shaped face (feature `std`): [`Matrix`], an owned row-major matrix.
//!
//! Shapes are checked at run time and reported as [`Error`]s. Every operation
//! calls the same kernels as the const-generic face ([`crate::kernels`]); a
//! `*_with::<B>` form picks the backend, the plain form uses [`Simd`].

use std::vec::Vec;

use crate::backend::{Accumulate, Backend, Simd};
use crate::error::{Error, Result};
use crate::mat::{MatMut, MatRef};
use crate::real::Real;

/// A vector of `len` zeros, or `Err` if it cannot be allocated: runtime faces
/// size their buffers from caller input, which must not be able to abort.
pub(crate) fn zeros_vec<T: Real>(what: &'static str, len: usize) -> Result<Vec<T>> {
    filled_vec(what, len, T::ZERO)
}

/// A vector of `len` copies of `value`, or `Err` if it cannot be allocated.
pub(crate) fn filled_vec<T: Clone>(what: &'static str, len: usize, value: T) -> Result<Vec<T>> {
    let mut v = Vec::new();
    v.try_reserve_exact(len)
        .map_err(|_| Error::InvalidParameter {
            what,
            reason: "too large to allocate",
        })?;
    v.resize(len, value);
    Ok(v)
}

/// An owned, dense, row-major matrix with runtime dimensions.
///
/// ```
/// use constml::Matrix;
/// let a = Matrix::from_vec(2, 3, vec![1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0])?;
/// let b = Matrix::from_vec(3, 1, vec![1.0f32, 0.0, -1.0])?;
/// let c = a.matmul(&b)?;
/// assert_eq!(c.as_slice(), &[-2.0, -2.0]);
/// assert!(b.matmul(&b).is_err()); // (3, 1)·(3, 1): inner dimensions differ
/// # Ok::<(), constml::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Matrix<T> {
    rows: usize,
    cols: usize,
    data: Vec<T>,
}

impl<T: Real> Matrix<T> {
    /// A `rows × cols` matrix of zeros.
    ///
    /// `Err` if `rows × cols` overflows or the allocation cannot be made (the
    /// size comes from runtime input, so it is never allowed to abort).
    pub fn zeros(rows: usize, cols: usize) -> Result<Self> {
        let n = rows.checked_mul(cols).ok_or(Error::InvalidParameter {
            what: "Matrix::zeros",
            reason: "rows × cols overflows usize",
        })?;
        Ok(Self {
            rows,
            cols,
            data: zeros_vec("Matrix::zeros", n)?,
        })
    }

    /// Wraps `data` (row-major); its length must be `rows · cols`.
    pub fn from_vec(rows: usize, cols: usize, data: Vec<T>) -> Result<Self> {
        MatRef::new(&data, rows, cols)?;
        Ok(Self { rows, cols, data })
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.rows
    }
    /// Number of columns.
    pub fn cols(&self) -> usize {
        self.cols
    }
    /// `(rows, cols)`.
    pub fn shape(&self) -> (usize, usize) {
        (self.rows, self.cols)
    }
    /// The elements, row-major.
    pub fn as_slice(&self) -> &[T] {
        &self.data
    }
    /// The elements, row-major, mutably.
    pub fn as_mut_slice(&mut self) -> &mut [T] {
        &mut self.data
    }
    /// Gives the storage back.
    pub fn into_vec(self) -> Vec<T> {
        self.data
    }
    /// Row `i`, or `None` past the last row.
    pub fn row(&self, i: usize) -> Option<&[T]> {
        self.view().row(i)
    }

    /// A borrowed view for the kernels.
    pub fn view(&self) -> MatRef<'_, T> {
        MatRef::with_stride(&self.data, self.rows, self.cols, self.cols.max(1))
            .unwrap_or_else(|_| MatRef::from_array::<0, 0>(&[]))
    }

    /// A mutable borrowed view for the kernels.
    pub fn view_mut(&mut self) -> MatMut<'_, T> {
        let (rows, cols) = (self.rows, self.cols);
        match MatMut::with_stride(&mut self.data, rows, cols, cols.max(1)) {
            Ok(m) => m,
            Err(_) => MatMut::from_array::<0, 0>(&mut []),
        }
    }

    /// `self · other` into a new matrix, with [`Simd`].
    pub fn matmul(&self, other: &Self) -> Result<Self> {
        self.matmul_with::<Simd>(other)
    }

    /// `self · other` into a new matrix, with backend `B`.
    pub fn matmul_with<B: Backend>(&self, other: &Self) -> Result<Self> {
        let mut out = Self::zeros(self.rows, other.cols)?;
        B::gemm(
            self.view(),
            other.view(),
            out.view_mut(),
            Accumulate::Overwrite,
        )?;
        Ok(out)
    }

    /// `self · otherᵀ` into a new matrix, with backend `B`.
    pub fn matmul_bt_with<B: Backend>(&self, other: &Self) -> Result<Self> {
        let mut out = Self::zeros(self.rows, other.rows)?;
        B::gemm_bt(
            self.view(),
            other.view(),
            out.view_mut(),
            Accumulate::Overwrite,
        )?;
        Ok(out)
    }

    /// `self · otherᵀ` into a new matrix, with [`Simd`].
    pub fn matmul_bt(&self, other: &Self) -> Result<Self> {
        self.matmul_bt_with::<Simd>(other)
    }

    /// `self · x` for a vector `x` of length `cols` (weights `(OUT, IN)`), with
    /// backend `B`.
    pub fn matvec_with<B: Backend>(&self, x: &[T]) -> Result<Vec<T>> {
        let mut y = zeros_vec("Matrix::matvec", self.rows)?;
        B::matvec(self.view(), x, &mut y, Accumulate::Overwrite)?;
        Ok(y)
    }

    /// `self · x`, with [`Simd`].
    pub fn matvec(&self, x: &[T]) -> Result<Vec<T>> {
        self.matvec_with::<Simd>(x)
    }

    /// Softmax of every row in place, with backend `B` (see [`Backend::softmax`]).
    pub fn softmax_rows_with<B: Backend>(&mut self) {
        self.for_each_row(B::softmax);
    }

    /// Softmax of every row in place, with [`Simd`].
    pub fn softmax_rows(&mut self) {
        self.softmax_rows_with::<Simd>();
    }

    /// Log-softmax of every row in place, with backend `B`.
    pub fn log_softmax_rows_with<B: Backend>(&mut self) {
        self.for_each_row(B::log_softmax);
    }

    /// Applies `f` to every row in place.
    fn for_each_row(&mut self, f: impl Fn(&mut [T])) {
        if self.cols == 0 {
            return;
        }
        for r in self.data.chunks_exact_mut(self.cols) {
            f(r);
        }
    }

    /// Log-softmax of every row in place, with [`Simd`].
    pub fn log_softmax_rows(&mut self) {
        self.log_softmax_rows_with::<Simd>();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Scalar;
    use std::vec;

    #[test]
    fn runtime_face_checks_shapes_and_matches_the_kernels() {
        let a = Matrix::from_vec(2, 3, vec![1.0f64, 2.0, 3.0, 4.0, 5.0, 6.0]).unwrap();
        let b = Matrix::from_vec(3, 2, vec![1.0f64, 0.0, 0.0, 1.0, 1.0, 1.0]).unwrap();
        assert_eq!(a.matmul(&b).unwrap().as_slice(), &[4.0, 5.0, 10.0, 11.0]);
        assert_eq!(a.matmul_with::<Scalar>(&b).unwrap(), a.matmul(&b).unwrap());
        assert_eq!(
            a.matmul_bt(&a).unwrap().as_slice(),
            &[14.0, 32.0, 32.0, 77.0]
        );
        assert_eq!(a.matvec(&[1.0, 1.0, 1.0]).unwrap(), vec![6.0, 15.0]);
        assert!(a.matmul(&a).is_err());
        assert!(a.matmul_bt(&b).is_err());
        assert!(a.matvec(&[1.0, 1.0]).is_err());
        assert!(Matrix::from_vec(2, 2, vec![0.0f32; 3]).is_err());
        assert!(Matrix::<f32>::zeros(usize::MAX, 2).is_err());
        // Fits in usize, but not in memory: an error, not an abort.
        assert!(Matrix::<f64>::zeros(1 << 31, 1 << 31).is_err());
        assert_eq!(a.row(1), Some(&[4.0, 5.0, 6.0][..]));
        assert_eq!(a.row(2), None);
    }

    #[test]
    fn row_softmax_normalises_each_row() {
        let mut m = Matrix::from_vec(2, 2, vec![0.0f32, 0.0, f32::NEG_INFINITY, 1.0]).unwrap();
        m.softmax_rows();
        assert_eq!(m.as_slice(), &[0.5, 0.5, 0.0, 1.0]);
        let mut l = Matrix::from_vec(1, 2, vec![0.0f32, 0.0]).unwrap();
        l.log_softmax_rows();
        assert!((l.as_slice()[0] + core::f32::consts::LN_2).abs() < 1e-6);
        let mut empty = Matrix::<f32>::zeros(3, 0).unwrap();
        empty.softmax_rows();
        assert_eq!(empty.shape(), (3, 0));
    }
}
