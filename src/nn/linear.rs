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

crate::simd_default!(linear_backward_views => linear_backward_views_with<T: Real>(x: MatRef<'_, T>, w: MatRef<'_, T>, dy: MatRef<'_, T>, dx: Option<MatMut<'_, T>>, dw: Option<MatMut<'_, T>>, db: Option<&mut [T]>) -> Result<()>);

/// Linear backward on views: `x` `(N, IN)`, `w` `(OUT, IN)`, `dy` `(N, OUT)`.
/// Writes `dx = dy·W` `(N, IN)`; **adds** `dW += dyᵀ·x` `(OUT, IN)` and
/// `db += Σ_rows dy` (`OUT`) into the caller's gradient storage. Every shape
/// is checked before anything is written.
///
/// ```
/// use constml::nn::linear_backward_views;
/// use constml::{MatMut, MatRef};
/// let x = [1.0f32, 2.0];             // (N = 1, IN = 2)
/// let w = [0.5f32, -1.0, 2.0, 0.0];  // (OUT = 2, IN = 2)
/// let dy = [1.0f32, 1.0];            // (1, OUT)
/// let (mut dx, mut dw, mut db) = ([0.0f32; 2], [0.0f32; 4], [0.0f32; 2]);
/// linear_backward_views(
///     MatRef::new(&x, 1, 2)?, MatRef::new(&w, 2, 2)?, MatRef::new(&dy, 1, 2)?,
///     Some(MatMut::new(&mut dx, 1, 2)?), Some(MatMut::new(&mut dw, 2, 2)?), Some(&mut db),
/// )?;
/// assert_eq!(dx, [2.5, -1.0]);
/// assert_eq!(dw, [1.0, 2.0, 1.0, 2.0]);
/// assert_eq!(db, [1.0, 1.0]);
/// # Ok::<(), constml::Error>(())
/// ```
pub fn linear_backward_views_with<B: Backend, T: Real>(
    x: MatRef<'_, T>,
    w: MatRef<'_, T>,
    dy: MatRef<'_, T>,
    dx: Option<MatMut<'_, T>>,
    dw: Option<MatMut<'_, T>>,
    db: Option<&mut [T]>,
) -> Result<()> {
    check_linear(x.shape(), w, None, dy.shape())?;
    let same = |what, want: (usize, usize), got: (usize, usize)| {
        if want == got {
            Ok(())
        } else {
            Err(Error::ShapeMismatch {
                what,
                expected: want,
                found: got,
            })
        }
    };
    if let Some(d) = &dx {
        same("linear backward: dx", x.shape(), d.shape())?;
    }
    if let Some(d) = &dw {
        same("linear backward: dw", w.shape(), d.shape())?;
    }
    if let Some(d) = &db {
        check_len("linear backward: db", w.rows(), d.len())?;
    }
    if let Some(d) = dx {
        B::gemm(dy, w, d, Accumulate::Overwrite)?;
    }
    if let Some(d) = dw {
        B::gemm_at(dy, x, d, Accumulate::Add)?;
    }
    if let Some(d) = db {
        B::col_sums(dy, d, Accumulate::Add)?;
    }
    Ok(())
}

/// Linear backward, const face: `x` `(N, IN)`, `w` `(OUT, IN)`, `dy`
/// `(N, OUT)`; see [`linear_backward_views_with`].
#[allow(clippy::type_complexity)]
pub fn linear_backward_with<
    B: Backend,
    T: Real,
    const N: usize,
    const IN: usize,
    const OUT: usize,
>(
    x: &[[T; IN]; N],
    w: &[[T; IN]; OUT],
    dy: &[[T; OUT]; N],
    dx: Option<&mut [[T; IN]; N]>,
    dw: Option<&mut [[T; IN]; OUT]>,
    db: Option<&mut [T; OUT]>,
) -> Result<()> {
    linear_backward_views_with::<B, T>(
        MatRef::from_array(x),
        MatRef::from_array(w),
        MatRef::from_array(dy),
        dx.map(MatMut::from_array),
        dw.map(MatMut::from_array),
        db.map(|d| &mut d[..]),
    )
}

/// The parameters of a linear layer: weight `(OUT, IN)` and bias `OUT`. A
/// `static` of this type can live in flash; an owned one is trained.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LinearParams<T, const IN: usize, const OUT: usize> {
    /// Weight `(OUT, IN)`.
    pub weight: [[T; IN]; OUT],
    /// Bias.
    pub bias: [T; OUT],
}

impl<T: Real, const IN: usize, const OUT: usize> LinearParams<T, IN, OUT> {
    /// All zeros (a gradient accumulator, or a layer to fill).
    pub const fn zeros() -> Self {
        Self {
            weight: [[T::ZERO; IN]; OUT],
            bias: [T::ZERO; OUT],
        }
    }
    /// The weight and the bias as flat slices (for an optimiser's
    /// [`Param`](crate::nn::Param)s).
    pub fn slices_mut(&mut self) -> (&mut [T], &mut [T]) {
        (self.weight.as_flattened_mut(), &mut self.bias)
    }
    /// The weight and the bias as flat slices.
    pub fn slices(&self) -> (&[T], &[T]) {
        (self.weight.as_flattened(), &self.bias)
    }
}

/// A linear layer (const face) over parameters held in any storage `S`
/// that borrows as [`LinearParams`]: `&'static LinearParams` (weights in
/// flash, inference) or an owned `LinearParams` (training).
///
/// ```
/// use constml::nn::{Linear, LinearParams};
/// static P: LinearParams<f32, 2, 1> = LinearParams { weight: [[2.0, -1.0]], bias: [0.5] };
/// let layer = Linear::<f32, 2, 1>::new(&P);  // borrowed from flash
/// let mut y = [[0.0f32]];
/// layer.forward(&[[1.0, 1.0]], &mut y)?;
/// assert_eq!(y, [[1.5]]);
/// let mut grads = LinearParams::zeros();
/// let mut dx = [[0.0f32; 2]];
/// layer.backward(&[[1.0, 1.0]], &[[1.0]], Some(&mut dx), &mut grads)?;
/// assert_eq!((dx, grads.weight, grads.bias), ([[2.0, -1.0]], [[1.0, 1.0]], [1.0]));
/// # Ok::<(), constml::Error>(())
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Linear<
    T,
    const IN: usize,
    const OUT: usize,
    S = &'static LinearParams<T, IN, OUT>,
    B = Simd,
> {
    params: S,
    _m: core::marker::PhantomData<fn() -> (T, B)>,
}

impl<
    T: Real,
    const IN: usize,
    const OUT: usize,
    S: core::borrow::Borrow<LinearParams<T, IN, OUT>>,
    B: Backend,
> Linear<T, IN, OUT, S, B>
{
    /// Wraps parameters.
    pub const fn new(params: S) -> Self {
        Self {
            params,
            _m: core::marker::PhantomData,
        }
    }
    /// The parameters.
    pub fn params(&self) -> &LinearParams<T, IN, OUT> {
        self.params.borrow()
    }
    /// Mutable parameters (owned or `&mut` storage).
    pub fn params_mut(&mut self) -> &mut LinearParams<T, IN, OUT>
    where
        S: core::borrow::BorrowMut<LinearParams<T, IN, OUT>>,
    {
        self.params.borrow_mut()
    }
    /// Forward: `y = x·Wᵀ + b` for `N` rows.
    pub fn forward<const N: usize>(&self, x: &[[T; IN]; N], y: &mut [[T; OUT]; N]) -> Result<()> {
        let p = self.params();
        linear_views_with::<B, T>(
            MatRef::from_array(x),
            MatRef::from_array(&p.weight),
            Some(&p.bias),
            MatMut::from_array(y),
        )
    }
    /// Backward: writes `dx` (if wanted), adds `dW`, `db` into `grads`.
    pub fn backward<const N: usize>(
        &self,
        x: &[[T; IN]; N],
        dy: &[[T; OUT]; N],
        dx: Option<&mut [[T; IN]; N]>,
        grads: &mut LinearParams<T, IN, OUT>,
    ) -> Result<()> {
        linear_backward_with::<B, T, N, IN, OUT>(
            x,
            &self.params().weight,
            dy,
            dx,
            Some(&mut grads.weight),
            Some(&mut grads.bias),
        )
    }
}

#[cfg(feature = "std")]
pub use dynamic::LinearDyn;

#[cfg(feature = "std")]
mod dynamic {
    use std::vec::Vec;

    use super::*;
    use crate::matrix::{Matrix, zeros_vec};

    /// A runtime-shaped linear layer (`std`): owned weight `(OUT, IN)`, bias,
    /// and their accumulated gradients.
    ///
    /// ```
    /// use constml::{Matrix, nn::LinearDyn};
    /// let mut l = LinearDyn::<f32>::zeros(3, 2)?;
    /// let x = Matrix::from_vec(4, 3, vec![1.0; 12])?;
    /// let y = l.forward(&x)?;
    /// let dx = l.backward(&x, &y)?;
    /// assert_eq!((y.shape(), dx.shape()), ((4, 2), (4, 3)));
    /// assert!(l.forward(&Matrix::zeros(4, 5)?).is_err());
    /// # Ok::<(), constml::Error>(())
    /// ```
    #[derive(Clone, Debug)]
    pub struct LinearDyn<T, B = Simd> {
        /// Weight `(OUT, IN)`.
        pub weight: Matrix<T>,
        /// Bias.
        pub bias: Vec<T>,
        /// Accumulated `dW`.
        pub dweight: Matrix<T>,
        /// Accumulated `db`.
        pub dbias: Vec<T>,
        _b: core::marker::PhantomData<B>,
    }

    impl<T: Real, B: Backend> LinearDyn<T, B> {
        /// A zero layer `in_features → out_features`.
        pub fn zeros(in_features: usize, out_features: usize) -> Result<Self> {
            Ok(Self {
                weight: Matrix::zeros(out_features, in_features)?,
                bias: zeros_vec("linear: bias", out_features)?,
                dweight: Matrix::zeros(out_features, in_features)?,
                dbias: zeros_vec("linear: bias", out_features)?,
                _b: core::marker::PhantomData,
            })
        }
        /// `y = x·Wᵀ + b`.
        pub fn forward(&self, x: &Matrix<T>) -> Result<Matrix<T>> {
            check_linear(
                x.shape(),
                self.weight.view(),
                Some(&self.bias),
                (x.rows(), self.weight.rows()),
            )?;
            let mut y = Matrix::zeros(x.rows(), self.weight.rows())?;
            linear_views_with::<B, T>(
                x.view(),
                self.weight.view(),
                Some(&self.bias),
                y.view_mut(),
            )?;
            Ok(y)
        }
        /// Returns `dx`; adds into `dweight`, `dbias`.
        pub fn backward(&mut self, x: &Matrix<T>, dy: &Matrix<T>) -> Result<Matrix<T>> {
            check_linear(x.shape(), self.weight.view(), None, dy.shape())?;
            let mut dx = Matrix::zeros(x.rows(), x.cols())?;
            linear_backward_views_with::<B, T>(
                x.view(),
                self.weight.view(),
                dy.view(),
                Some(dx.view_mut()),
                Some(self.dweight.view_mut()),
                Some(&mut self.dbias),
            )?;
            Ok(dx)
        }
        /// Zeroes the accumulated gradients.
        pub fn zero_grad(&mut self) {
            self.dweight.as_mut_slice().fill(T::ZERO);
            self.dbias.fill(T::ZERO);
        }
    }
}
