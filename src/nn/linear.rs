//! The linear (fully connected) layer, PyTorch `nn.Linear` semantics: weight
//! `(OUT, IN)`, `y = x·Wᵀ + b`.
//!
//! Faces (see the [crate naming table](crate#naming)):
//!
//! * const face [`linear`] / [`linear_with`]: one input vector, array shapes;
//! * views face [`linear_views`] / [`linear_views_with`]: a batch of rows
//!   `(N, IN)` as [`MatRef`]s, checked at run time.
//!
//! ```
//! use constml::nn::linear;
//! let w = [[1.0f32, 2.0], [0.0, -1.0], [0.5, 0.5]]; // (OUT = 3, IN = 2)
//! let b = [0.0f32, 1.0, -1.0];
//! let mut y = [0.0f32; 3];
//! linear(&w, &b, &[2.0, 4.0], &mut y);
//! assert_eq!(y, [10.0, -3.0, 2.0]);
//! ```

use crate::backend::{Accumulate, Backend, Simd};
use crate::error::{Error, Result, check_len};
use crate::mat::{MatMut, MatRef};
use crate::real::Real;

/// `y = W·x + b` with weights `(OUT, IN)`: PyTorch `nn.Linear`.
#[inline]
pub fn linear<T: Real, const IN: usize, const OUT: usize>(
    w: &[[T; IN]; OUT],
    b: &[T; OUT],
    x: &[T; IN],
    y: &mut [T; OUT],
) {
    linear_with::<Simd, T, IN, OUT>(w, b, x, y);
}

/// [`linear`] with backend `B`.
#[inline]
pub fn linear_with<B: Backend, T: Real, const IN: usize, const OUT: usize>(
    w: &[[T; IN]; OUT],
    b: &[T; OUT],
    x: &[T; IN],
    y: &mut [T; OUT],
) {
    *y = *b;
    B::raw_matvec(MatRef::from_array(w), x, y, Accumulate::Add);
}

/// Checks the shapes of `y = x·Wᵀ + b` for `x` `(rows, cols)` without computing
/// anything: `w` must be `(OUT, cols)`, `b` (if any) `OUT` long and `y`
/// `(rows, OUT)`. Stateful callers run it before they change any state.
pub(crate) fn check_linear<T>(
    x: (usize, usize),
    w: MatRef<'_, T>,
    b: Option<&[T]>,
    y: (usize, usize),
) -> Result<()> {
    if w.cols() != x.1 {
        return Err(Error::ShapeMismatch {
            what: "linear: weight",
            expected: (w.rows(), x.1),
            found: w.shape(),
        });
    }
    if let Some(b) = b {
        check_len("linear: bias", w.rows(), b.len())?;
    }
    if y != (x.0, w.rows()) {
        return Err(Error::ShapeMismatch {
            what: "linear: output",
            expected: (x.0, w.rows()),
            found: y,
        });
    }
    Ok(())
}

/// `y = x·Wᵀ + b` for every row: `x` `(N, IN)`, `w` `(OUT, IN)`, `b` `OUT`,
/// `y` `(N, OUT)`; [`Simd`] backend. See [`linear_views_with`].
#[inline]
pub fn linear_views<T: Real>(
    x: MatRef<'_, T>,
    w: MatRef<'_, T>,
    b: Option<&[T]>,
    y: MatMut<'_, T>,
) -> Result<()> {
    linear_views_with::<Simd, T>(x, w, b, y)
}

/// [`linear_views`] with backend `B`. Errors: a shape that does not fit
/// (`ShapeMismatch`, `LengthMismatch`); `y` is then left untouched.
pub fn linear_views_with<B: Backend, T: Real>(
    x: MatRef<'_, T>,
    w: MatRef<'_, T>,
    b: Option<&[T]>,
    mut y: MatMut<'_, T>,
) -> Result<()> {
    check_linear(x.shape(), w, b, y.shape())?;
    B::gemm_bt(x, w, y.reborrow(), Accumulate::Overwrite)?;
    if let Some(b) = b {
        for i in 0..y.rows() {
            B::raw_zip(y.row_mut_or_empty(i), b, false);
        }
    }
    Ok(())
}
