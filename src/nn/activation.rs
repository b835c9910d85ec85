//! Element-wise activations and the row-wise softmax, forward and backward
//! side by side.
//!
//! | [`Activation`] | forward `y = f(x)` | backward `dx = dy·f′` |
//! |---|---|---|
//! | `Relu` | `max(x, 0)` | `dy·[x > 0]` (0 at `x = 0`, as PyTorch) |
//! | `Sigmoid` | `1/(1 + e^−x)` | `dy·y·(1 − y)` |
//! | `Tanh` | `tanh x` | `dy·(1 − y²)` |
//! | `Silu` | `x·σ(x)` | `dy·σ(x)·(1 + x·(1 − σ(x)))` |
//! | `Gelu` | `x·Φ(x)` (erf form, PyTorch `approximate='none'`) | `dy·(Φ(x) + x·φ(x))` |
//! | `GeluTanh` | `½x·(1 + tanh u)`, `u = √(2/π)·(x + 0.044715·x³)` | the exact derivative of that formula |
//!
//! The backward of each form differentiates the same function the forward
//! computes (the tanh form is not treated as the erf form). Backward passes
//! take both `x` and `y` (the forward's output) and use the one they need.
//! NaN propagates element by element (ReLU's backward, "0 where `x ≤ 0`",
//! passes `dy` on where `x` is NaN, as PyTorch's does).
//!
//! Softmax over each row: `dx = y ⊙ (dy − Σ dy⊙y)`; log-softmax: `dx = dy −
//! softmax·Σ dy`.
//!
//! Tested against PyTorch autograd (values at 0, ±1e−3, ±0.5, ±3, ±20) and
//! by finite differences in `f64`.
//!
//! ```
//! use constml::nn::{Activation, activation_backward, activation_forward};
//! let x = [-1.0f32, 0.0, 2.0];
//! let mut y = [0.0f32; 3];
//! activation_forward(Activation::Relu, &x, &mut y)?;
//! let mut dx = [0.0f32; 3];
//! activation_backward(Activation::Relu, &x, &y, &[1.0; 3], &mut dx)?;
//! assert_eq!((y, dx), ([0.0, 0.0, 2.0], [0.0, 0.0, 1.0]));
//! # Ok::<(), constml::Error>(())
//! ```

use crate::backend::Backend;
use crate::error::{Result, check_len};
use crate::mat::{MatMut, MatRef};
use crate::real::Real;

/// An element-wise activation (see the [module docs](self)).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Activation {
    /// `max(x, 0)`.
    Relu,
    /// Logistic sigmoid.
    Sigmoid,
    /// Hyperbolic tangent.
    Tanh,
    /// `x·σ(x)` (swish).
    Silu,
    /// GELU, erf form.
    Gelu,
    /// GELU, tanh form (GPT-2's `gelu_new`).
    GeluTanh,
}

const SQRT_2_OVER_PI: f64 = 0.797_884_560_802_865_4;
const GELU_CUBIC: f64 = 0.044_715;
const INV_SQRT_2PI: f64 = 0.398_942_280_401_432_7;

#[inline(always)]
fn sig<T: Real>(x: T) -> T {
    T::ONE / (T::ONE + (-x).exp())
}

#[inline(always)]
fn vsig<T: Real>(x: T::V) -> T::V {
    let one = T::splat(T::ONE);
    one / (one + T::vexp(-x))
}

crate::simd_default!(activation_forward => activation_forward_with<T: Real>(act: Activation, x: &[T], y: &mut [T]) -> Result<()>);
crate::simd_default!(activation_backward => activation_backward_with<T: Real>(act: Activation, x: &[T], y: &[T], dy: &[T], dx: &mut [T]) -> Result<()>);

/// Forward: `y = f(x)` (`x`, `y` the same length).
pub fn activation_forward_with<B: Backend, T: Real>(
    act: Activation,
    x: &[T],
    y: &mut [T],
) -> Result<()> {
    check_len("activation: y", x.len(), y.len())?;
    y.copy_from_slice(x);
    match act {
        Activation::Relu => B::relu(y),
        Activation::Sigmoid => B::sigmoid(y),
        Activation::Tanh => B::tanh(y),
        Activation::Silu => B::silu(y),
        Activation::Gelu => B::gelu(y),
        Activation::GeluTanh => B::gelu_tanh(y),
    }
    Ok(())
}

/// Backward: `dx = dy·f′(x)` given the forward's `x` and `y` (all the same
/// length). `dx` is written.
pub fn activation_backward_with<B: Backend, T: Real>(
    act: Activation,
    x: &[T],
    y: &[T],
    dy: &[T],
    dx: &mut [T],
) -> Result<()> {
    check_len("activation backward: y", x.len(), y.len())?;
    check_len("activation backward: dy", x.len(), dy.len())?;
    check_len("activation backward: dx", x.len(), dx.len())?;
    let one = T::ONE;
    match act {
        Activation::Relu => {
            dx.copy_from_slice(x);
            let (z, o) = (T::splat(T::ZERO), T::splat(one));
            B::raw_map(
                dx,
                // PyTorch's rule is "0 where x ≤ 0": a NaN input passes dy on.
                |v| if v <= T::ZERO { T::ZERO } else { one },
                |v| T::select_lt(z, v, o, T::select_lt(v, o, z, o)),
            );
        }
        Activation::Sigmoid => {
            dx.copy_from_slice(y);
            let o = T::splat(one);
            B::raw_map(dx, |s| s * (one - s), |s| s * (o - s));
        }
        Activation::Tanh => {
            dx.copy_from_slice(y);
            let o = T::splat(one);
            B::raw_map(dx, |t| one - t * t, |t| o - t * t);
        }
        Activation::Silu => {
            dx.copy_from_slice(x);
            let o = T::splat(one);
            B::raw_map(
                dx,
                |v| {
                    let s = sig(v);
                    s * (one + v * (one - s))
                },
                |v| {
                    let s = vsig::<T>(v);
                    s * (o + v * (o - s))
                },
            );
        }
        Activation::Gelu => {
            dx.copy_from_slice(x);
            let (h, r2, c) = (T::HALF, T::FRAC_1_SQRT_2(), T::from_f64(INV_SQRT_2PI));
            let (vh, vr2, vc) = (T::splat(h), T::splat(r2), T::splat(c));
            B::raw_map(
                dx,
                |v| h * (one + (v * r2).erf()) + v * c * (-h * v * v).exp(),
                |v| vh + vh * T::verf(v * vr2) + v * vc * T::vexp(-(vh * v * v)),
            );
        }
        Activation::GeluTanh => {
            // y = x·σ(2u): y′ = σ(2u) + x·σ(2u)(1 − σ(2u))·2u′,
            // u′ = √(2/π)(1 + 3·0.044715·x²).
            dx.copy_from_slice(x);
            let c2 = T::from_f64(2.0 * SQRT_2_OVER_PI);
            let k = T::from_f64(GELU_CUBIC);
            let k3 = T::from_f64(3.0 * GELU_CUBIC);
            let (vc2, vk, vk3, o) = (T::splat(c2), T::splat(k), T::splat(k3), T::splat(one));
            B::raw_map(
                dx,
                |v| {
                    let s = sig(c2 * (v + k * v * v * v));
                    s + v * s * (one - s) * c2 * (one + k3 * v * v)
                },
                |v| {
                    let s = vsig::<T>(vc2 * T::fma(vk * v * v, v, v));
                    s + v * s * (o - s) * vc2 * T::fma(vk3 * v, v, o)
                },
            );
        }
    }
    B::raw_zip(dx, dy, true);
    Ok(())
}

crate::simd_default!(softmax_backward_views => softmax_backward_views_with<T: Real>(y: MatRef<'_, T>, dy: MatRef<'_, T>, dx: MatMut<'_, T>) -> Result<()>);
crate::simd_default!(log_softmax_backward_views => log_softmax_backward_views_with<T: Real>(y: MatRef<'_, T>, dy: MatRef<'_, T>, dx: MatMut<'_, T>) -> Result<()>);

fn check3<T>(y: MatRef<'_, T>, dy: MatRef<'_, T>, dx: &MatMut<'_, T>) -> Result<()> {
    for (what, s) in [
        ("softmax backward: dy", dy.shape()),
        ("softmax backward: dx", dx.shape()),
    ] {
        if s != y.shape() {
            return Err(crate::Error::ShapeMismatch {
                what,
                expected: y.shape(),
                found: s,
            });
        }
    }
    Ok(())
}

/// Softmax backward over rows: `y` = the forward's softmax output, `dx = y ⊙
/// (dy − Σ dy⊙y)` (written).
pub fn softmax_backward_views_with<B: Backend, T: Real>(
    y: MatRef<'_, T>,
    dy: MatRef<'_, T>,
    mut dx: MatMut<'_, T>,
) -> Result<()> {
    check3(y, dy, &dx)?;
    if y.cols() == 0 {
        return Ok(());
    }
    for i in 0..y.rows() {
        let (yi, gi) = (y.row_or_empty(i), dy.row_or_empty(i));
        let s = B::raw_dot(gi, yi);
        let out = dx.row_mut_or_empty(i);
        out.copy_from_slice(gi);
        B::raw_affine(out, T::ONE, -s);
        B::raw_zip(out, yi, true);
    }
    Ok(())
}

/// Log-softmax backward over rows: `y` = the forward's log-softmax output,
/// `dx = dy − e^y·Σ dy` (written).
pub fn log_softmax_backward_views_with<B: Backend, T: Real>(
    y: MatRef<'_, T>,
    dy: MatRef<'_, T>,
    mut dx: MatMut<'_, T>,
) -> Result<()> {
    check3(y, dy, &dx)?;
    if y.cols() == 0 {
        return Ok(());
    }
    for i in 0..y.rows() {
        let (yi, gi) = (y.row_or_empty(i), dy.row_or_empty(i));
        let s = B::sum(gi);
        let out = dx.row_mut_or_empty(i);
        out.copy_from_slice(yi);
        B::raw_map(out, |v| v.exp(), T::vexp);
        B::raw_affine(out, -s, T::ZERO);
        B::raw_zip(out, gi, false);
    }
    Ok(())
}
