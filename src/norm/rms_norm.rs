//! RMSNorm (Zhang & Sennrich 2019), forward and backward side by side.
//!
//! # Formula
//!
//! Per row `x` of width `C`:
//!
//! ```text
//! r = 1/√(mean(x²) + eps),   x̂ = x·r,   y = x̂·γ
//! ```
//!
//! `eps` is explicit: llama2.c uses `1e-5`, Hugging Face Llama configs
//! `1e-6`, and PyTorch's `nn.RMSNorm(eps=None)` means the element type's
//! machine epsilon ([`RmsNorm::machine_eps`], `T::EPSILON`). `γ` is optional
//! (`elementwise_affine = False`).
//!
//! # Backward
//!
//! With `g = dy·γ` (or `dy`): `dx = r·(g − x̂·mean(g·x̂))`, `dγ += Σ_rows
//! dy·x̂`. `dx` is written, `dγ` accumulates.
//!
//! Tested against `torch.nn.RMSNorm` and autograd (`eps` given and `None`,
//! with and without weight, widths 8 to 4096), f32 and f64, both backends.
//!
//! ```
//! use constml::norm::RmsNorm;
//! let w = [2.0f32; 2];
//! let norm = RmsNorm::<f32, 2>::new(Some(&w), 1e-6)?;
//! let mut y = [[0.0f32; 2]];
//! norm.forward(&[[3.0, 4.0]], &mut y, None)?; // rms = √12.5
//! assert!((y[0][0] - 2.0 * 3.0 / 12.5f32.sqrt()).abs() < 1e-6);
//! # Ok::<(), constml::Error>(())
//! ```

use core::marker::PhantomData;

use super::{NormStats, check_eps, check_stats, opt_len};
use crate::backend::{Backend, Simd};
use crate::error::{Error, Result};
use crate::mat::{MatMut, MatRef};
use crate::real::Real;

/// `r = 1/√(mean(x²) + eps)` of a row.
#[inline]
fn rstd<B: Backend, T: Real>(x: &[T], eps: T) -> T {
    let n = T::from_usize(x.len());
    T::ONE / (B::raw_dot(x, x) / n + eps).sqrt()
}

fn check_shape(what: &'static str, x: (usize, usize), y: (usize, usize)) -> Result<()> {
    if x == y {
        Ok(())
    } else {
        Err(Error::ShapeMismatch {
            what,
            expected: x,
            found: y,
        })
    }
}

crate::simd_default!(rms_norm_views => rms_norm_views_with<T: Real>(x: MatRef<'_, T>, y: MatMut<'_, T>, weight: Option<&[T]>, eps: T, stats: Option<NormStats<'_, T>>) -> Result<()>);
crate::simd_default!(rms_norm_inplace_views => rms_norm_inplace_views_with<T: Real>(x: MatMut<'_, T>, weight: Option<&[T]>, eps: T, stats: Option<NormStats<'_, T>>) -> Result<()>);
crate::simd_default!(rms_norm_backward_views => rms_norm_backward_views_with<T: Real>(x: MatRef<'_, T>, dy: MatRef<'_, T>, dx: MatMut<'_, T>, weight: Option<&[T]>, eps: T, rstd: Option<&[T]>, dweight: Option<&mut [T]>) -> Result<()>);

/// RMSNorm forward on views: `x`, `y` `(N, C)`, `weight` `C` or `None`;
/// `stats` (if given) receives each row's `r` (`N`).
pub fn rms_norm_views_with<B: Backend, T: Real>(
    x: MatRef<'_, T>,
    mut y: MatMut<'_, T>,
    weight: Option<&[T]>,
    eps: T,
    stats: Option<NormStats<'_, T>>,
) -> Result<()> {
    check_eps("RMSNorm: eps", eps)?;
    check_shape("RMSNorm: y", x.shape(), y.shape())?;
    opt_len("RMSNorm: weight", x.cols(), weight)?;
    check_stats(&stats, x.rows(), false)?;
    for i in 0..x.rows() {
        y.row_mut_or_empty(i).copy_from_slice(x.row_or_empty(i));
    }
    rms_norm_inplace_views_with::<B, T>(y, weight, eps, stats)
}

/// One row in place; returns `r` (0 for an empty row).
#[inline]
fn normalise_row<B: Backend, T: Real>(row: &mut [T], weight: Option<&[T]>, eps: T) -> T {
    if row.is_empty() {
        return T::ZERO;
    }
    let r = rstd::<B, T>(row, eps);
    B::raw_affine(row, r, T::ZERO);
    if let Some(w) = weight {
        B::raw_zip(row, w, true);
    }
    r
}

/// RMSNorm forward in place on `x` `(N, C)`.
pub fn rms_norm_inplace_views_with<B: Backend, T: Real>(
    mut x: MatMut<'_, T>,
    weight: Option<&[T]>,
    eps: T,
    stats: Option<NormStats<'_, T>>,
) -> Result<()> {
    check_eps("RMSNorm: eps", eps)?;
    opt_len("RMSNorm: weight", x.cols(), weight)?;
    let mut stats = stats;
    check_stats(&stats, x.rows(), false)?;
    for i in 0..x.rows() {
        let r = normalise_row::<B, T>(x.row_mut_or_empty(i), weight, eps);
        if let Some(s) = stats.as_mut() {
            s.set(i, T::ZERO, r);
        }
    }
    Ok(())
}

/// RMSNorm backward on views: `x`, `dy`, `dx` `(N, C)`; `rstd` from the
/// forward or `None` to recompute. Writes `dx`, adds into `dweight`.
#[allow(clippy::too_many_arguments)]
pub fn rms_norm_backward_views_with<B: Backend, T: Real>(
    x: MatRef<'_, T>,
    dy: MatRef<'_, T>,
    mut dx: MatMut<'_, T>,
    weight: Option<&[T]>,
    eps: T,
    rstd_saved: Option<&[T]>,
    mut dweight: Option<&mut [T]>,
) -> Result<()> {
    check_eps("RMSNorm: eps", eps)?;
    check_shape("RMSNorm: dy", x.shape(), dy.shape())?;
    check_shape("RMSNorm: dx", x.shape(), dx.shape())?;
    opt_len("RMSNorm: weight", x.cols(), weight)?;
    opt_len("RMSNorm: dweight", x.cols(), dweight.as_deref())?;
    opt_len("RMSNorm: saved rstd", x.rows(), rstd_saved)?;
    if x.cols() == 0 {
        return Ok(());
    }
    let n = T::from_usize(x.cols());
    for i in 0..x.rows() {
        let (xi, gi) = (x.row_or_empty(i), dy.row_or_empty(i));
        let out = dx.row_mut_or_empty(i);
        let r = match rstd_saved {
            Some(s) => s[i],
            None => rstd::<B, T>(xi, eps),
        };
        // out ← x̂ = x·r
        out.copy_from_slice(xi);
        B::raw_affine(out, r, T::ZERO);
        if let Some(dw) = dweight.as_deref_mut() {
            B::raw_mul_add(dw, gi, out);
        }
        let sum_gx = match weight {
            Some(w) => {
                B::raw_zip(out, w, true);
                let s = B::raw_dot(gi, out);
                out.copy_from_slice(xi);
                B::raw_affine(out, r, T::ZERO);
                s
            }
            None => B::raw_dot(gi, out),
        };
        // dx = r·(g − x̂·Σgx̂/n).
        B::raw_affine(out, -sum_gx / n, T::ZERO);
        match weight {
            Some(w) => B::raw_mul_add(out, gi, w),
            None => B::raw_zip(out, gi, false),
        }
        B::raw_affine(out, r, T::ZERO);
    }
    Ok(())
}

/// An RMSNorm layer over rows of width `C` (const face).
#[derive(Clone, Copy, Debug)]
pub struct RmsNorm<'a, T, const C: usize, B = Simd> {
    weight: Option<&'a [T; C]>,
    eps: T,
    _b: PhantomData<B>,
}

impl<'a, T: Real, const C: usize, B: Backend> RmsNorm<'a, T, C, B> {
    /// `Err` if `eps` is not finite and `> 0`.
    pub fn new(weight: Option<&'a [T; C]>, eps: T) -> Result<Self> {
        check_eps("RMSNorm: eps", eps)?;
        Ok(Self {
            weight,
            eps,
            _b: PhantomData,
        })
    }

    /// PyTorch's `eps=None`: `eps = T::EPSILON` (machine epsilon of `T`).
    pub fn machine_eps(weight: Option<&'a [T; C]>) -> Self {
        Self {
            weight,
            eps: T::EPSILON,
            _b: PhantomData,
        }
    }

    /// `eps`.
    pub fn eps(&self) -> T {
        self.eps
    }

    /// Forward for `N` rows; `stats` receives `r` per row.
    pub fn forward<const N: usize>(
        &self,
        x: &[[T; C]; N],
        y: &mut [[T; C]; N],
        stats: Option<NormStats<'_, T>>,
    ) -> Result<()> {
        rms_norm_views_with::<B, T>(
            MatRef::from_array(x),
            MatMut::from_array(y),
            self.weight.map(|w| &w[..]),
            self.eps,
            stats,
        )
    }

    /// Forward in place.
    pub fn forward_inplace<const N: usize>(
        &self,
        x: &mut [[T; C]; N],
        stats: Option<NormStats<'_, T>>,
    ) -> Result<()> {
        rms_norm_inplace_views_with::<B, T>(
            MatMut::from_array(x),
            self.weight.map(|w| &w[..]),
            self.eps,
            stats,
        )
    }

    /// Backward: writes `dx`, adds into `dweight`.
    pub fn backward<const N: usize>(
        &self,
        x: &[[T; C]; N],
        dy: &[[T; C]; N],
        dx: &mut [[T; C]; N],
        rstd: Option<&[T; N]>,
        dweight: Option<&mut [T; C]>,
    ) -> Result<()> {
        rms_norm_backward_views_with::<B, T>(
            MatRef::from_array(x),
            MatRef::from_array(dy),
            MatMut::from_array(dx),
            self.weight.map(|w| &w[..]),
            self.eps,
            rstd.map(|r| &r[..]),
            dweight.map(|d| &mut d[..]),
        )
    }
}

#[cfg(feature = "std")]
pub use dynamic::RmsNormDyn;

#[cfg(feature = "std")]
mod dynamic {
    use std::vec::Vec;

    use super::*;
    use crate::matrix::{Matrix, filled_vec, zeros_vec};

    /// Runtime-shaped RMSNorm (`std`): owned weight and its gradient.
    ///
    /// ```
    /// use constml::{Matrix, norm::RmsNormDyn};
    /// let mut n = RmsNormDyn::<f32>::new(4, true, None)?; // eps = f32::EPSILON
    /// let x = Matrix::from_vec(1, 4, vec![1.0, -1.0, 2.0, 0.5])?;
    /// let y = n.forward(&x)?;
    /// let dx = n.backward(&x, &y)?;
    /// assert_eq!(dx.shape(), (1, 4));
    /// # Ok::<(), constml::Error>(())
    /// ```
    #[derive(Clone, Debug)]
    pub struct RmsNormDyn<T, B = Simd> {
        /// `γ` (`None` without an affine weight).
        pub weight: Option<Vec<T>>,
        /// Accumulated `dγ`.
        pub dweight: Option<Vec<T>>,
        eps: T,
        _b: PhantomData<B>,
    }

    impl<T: Real, B: Backend> RmsNormDyn<T, B> {
        /// Width `c`, `γ = 1`; `eps = None` is PyTorch's machine epsilon.
        pub fn new(c: usize, weight: bool, eps: Option<T>) -> Result<Self> {
            let eps = eps.unwrap_or(T::EPSILON);
            check_eps("RMSNorm: eps", eps)?;
            Ok(Self {
                weight: weight
                    .then(|| filled_vec("RMSNorm: width", c, T::ONE))
                    .transpose()?,
                dweight: weight.then(|| zeros_vec("RMSNorm: width", c)).transpose()?,
                eps,
                _b: PhantomData,
            })
        }
        /// `y`.
        pub fn forward(&self, x: &Matrix<T>) -> Result<Matrix<T>> {
            let mut y = Matrix::zeros(x.rows(), x.cols())?;
            rms_norm_views_with::<B, T>(
                x.view(),
                y.view_mut(),
                self.weight.as_deref(),
                self.eps,
                None,
            )?;
            Ok(y)
        }
        /// `dx`; accumulates `dweight`.
        pub fn backward(&mut self, x: &Matrix<T>, dy: &Matrix<T>) -> Result<Matrix<T>> {
            let mut dx = Matrix::zeros(x.rows(), x.cols())?;
            rms_norm_backward_views_with::<B, T>(
                x.view(),
                dy.view(),
                dx.view_mut(),
                self.weight.as_deref(),
                self.eps,
                None,
                self.dweight.as_deref_mut(),
            )?;
            Ok(dx)
        }
    }
}
