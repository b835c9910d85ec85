//! Linear regression: `ŷ = X·w + b`, fitted by stochastic gradient descent or
//! in closed form (least squares by Householder QR).
//!
//! # SGD ([`sgd_fit_views_with`], [`LinearRegression::fit_sgd`])
//!
//! Loss `½·mean((X·w + b − y)²)` (+ `½·α·‖w‖²` with L2; never on `b`).
//!
//! * [`SgdRule::MiniBatch`]: batches of `batch_size` rows in (shuffled)
//!   order; the last batch of an epoch is partial when `batch_size` does not
//!   divide `N` (it takes its own step, or is skipped with
//!   [`SgdConfig::drop_last`]). One step per batch: `w ← w − η·(Xᵦᵀ r/|B| + α·w)`,
//!   `b ← b − η·mean(r)` with residuals `r = Xᵦ·w + b − yᵦ`.
//! * [`SgdRule::Sklearn`]: scikit-learn's `SGDRegressor` per-sample rule
//!   (squared loss, plain SGD), for comparisons with it: for each sample in
//!   order, `η` from the schedule at the current `t`, `r = x·w + b − y`
//!   (clipped to ±10¹² as scikit-learn clips the loss derivative), then
//!   with L2 the decay `w ← w·max(0, 1 − η·α)`, then `w ← w − η·r·x`,
//!   `b ← b − η·r`, then `t ← t + 1` (`t` starts at 1 and counts samples
//!   across epochs).
//! * Learning rate ([`LearningRate`]): constant `η₀`, or inverse scaling
//!   `η = η₀ / t^power_t` (`t` = steps taken so far + 1: batches in
//!   mini-batch mode, samples in the scikit-learn rule).
//! * Shuffling: each epoch permutes the row order with the caller's seeded
//!   generator (a Fisher–Yates shuffle of a caller-provided index buffer), or
//!   keeps it (`rng = None`).
//! * Every `validate_every` epochs (and after the last) the callback receives
//!   the epoch's full-pass training loss and, when a validation set is given,
//!   its loss ([`EpochReport`]); the `std` face returns them as a history.
//!
//! # Closed form ([`least_squares_views`])
//!
//! Minimises `‖X·w + b − y‖²` by Householder QR of `[X 1]` in caller
//! scratch; a rank-deficient design (a zero-variance feature is collinear
//! with the intercept column) is an `Err`, not a silent pseudo-solution.
//! Matches scikit-learn's `LinearRegression` on its diabetes set.
//!
//! ```
//! use constml::ml::{least_squares_views, least_squares_scratch_len};
//! use constml::MatRef;
//! let x = [[1.0f64], [2.0], [3.0], [4.0]];
//! let y = [3.0, 5.0, 7.0, 9.0]; // y = 2x + 1
//! let mut scratch = vec![0.0; least_squares_scratch_len(4, 1)];
//! let (mut w, mut b) = ([0.0], 0.0);
//! least_squares_views(MatRef::from_array(&x), &y, &mut scratch, &mut w, &mut b)?;
//! assert!((w[0] - 2.0).abs() < 1e-12 && (b - 1.0).abs() < 1e-12);
//! # Ok::<(), constml::Error>(())
//! ```

use rand_core::Rng;

use crate::backend::{Backend, Simd};
use crate::error::{Error, Result, check_len};
use crate::mat::MatRef;
use crate::real::Real;

/// A learning-rate schedule.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum LearningRate<T> {
    /// `η = η₀`.
    Constant(T),
    /// `η = η₀ / t^power_t` (scikit-learn's `invscaling`; `power_t = 0.25`
    /// there by default).
    InvScaling {
        /// `η₀`.
        eta0: T,
        /// `power_t`.
        power_t: T,
    },
}

impl<T: Real> LearningRate<T> {
    /// The rate at step `t ≥ 1`.
    #[inline]
    pub fn at(&self, t: u64) -> T {
        match *self {
            LearningRate::Constant(e) => e,
            LearningRate::InvScaling { eta0, power_t } => {
                eta0 / T::from_f64(t as f64).powf(power_t)
            }
        }
    }
    fn check(&self) -> Result<()> {
        let (eta, p) = match *self {
            LearningRate::Constant(e) => (e, T::ZERO),
            LearningRate::InvScaling { eta0, power_t } => (eta0, power_t),
        };
        if !(eta.is_finite() && eta > T::ZERO) {
            return Err(Error::InvalidParameter {
                what: "SGD: learning rate",
                reason: "must be finite and > 0",
            });
        }
        if !p.is_finite() {
            return Err(Error::InvalidParameter {
                what: "SGD: power_t",
                reason: "must be finite",
            });
        }
        Ok(())
    }
}

/// The update rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SgdRule {
    /// Mini-batches of this many rows (`≥ 1`).
    MiniBatch(usize),
    /// scikit-learn's `SGDRegressor` per-sample rule (see the module docs).
    Sklearn,
}

/// SGD settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SgdConfig<T> {
    /// Learning-rate schedule.
    pub lr: LearningRate<T>,
    /// Update rule.
    pub rule: SgdRule,
    /// Epochs (full passes).
    pub epochs: usize,
    /// L2 strength `α` (`0` = none; finite, `≥ 0`).
    pub l2: T,
    /// Report every this many epochs (`≥ 1`; the last epoch is always
    /// reported).
    pub validate_every: usize,
    /// Mini-batch rule: skip an epoch's last batch when it is partial
    /// (PyTorch's `DataLoader(drop_last=True)`; with shuffling, different rows
    /// sit out each epoch). By default the partial batch takes a step of its
    /// own, its gradient averaged over its rows.
    pub drop_last: bool,
}

impl<T: Real> SgdConfig<T> {
    /// Mini-batch SGD with a constant rate, no L2, reports every epoch.
    pub fn new(lr: T, batch_size: usize, epochs: usize) -> Self {
        Self {
            lr: LearningRate::Constant(lr),
            rule: SgdRule::MiniBatch(batch_size),
            epochs,
            l2: T::ZERO,
            validate_every: 1,
            drop_last: false,
        }
    }
    fn check(&self) -> Result<()> {
        self.lr.check()?;
        if let SgdRule::MiniBatch(0) = self.rule {
            return Err(Error::InvalidParameter {
                what: "SGD: batch size",
                reason: "must be at least 1",
            });
        }
        if !(self.l2.is_finite() && self.l2 >= T::ZERO) {
            return Err(Error::InvalidParameter {
                what: "SGD: l2",
                reason: "must be finite and >= 0",
            });
        }
        if self.validate_every == 0 {
            return Err(Error::InvalidParameter {
                what: "SGD: validate_every",
                reason: "must be at least 1",
            });
        }
        Ok(())
    }
}

/// What the callback receives after a reported epoch.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EpochReport<T> {
    /// Epoch number, from 1.
    pub epoch: usize,
    /// `½·mean((X·w + b − y)²)` over the training set after the epoch.
    pub train_loss: T,
    /// The same over the validation set, when one is given.
    pub val_loss: Option<T>,
    /// Steps taken so far (`t − 1`).
    pub steps: u64,
}

crate::simd_default!(half_mse => half_mse_with<T: Real>(x: MatRef<'_, T>, y: &[T], w: &[T], b: T) -> Result<T>);

/// `½·mean((X·w + b − y)²)` (0 for no rows).
pub fn half_mse_with<B: Backend, T: Real>(x: MatRef<'_, T>, y: &[T], w: &[T], b: T) -> Result<T> {
    check_len("linear regression: y", x.rows(), y.len())?;
    check_len("linear regression: w", x.cols(), w.len())?;
    if x.rows() == 0 {
        return Ok(T::ZERO);
    }
    let mut s = T::ZERO;
    for (i, &yi) in y.iter().enumerate() {
        let r = B::raw_dot(x.row_or_empty(i), w) + b - yi;
        s += r * r;
    }
    Ok(s / (T::TWO * T::from_usize(x.rows())))
}

fn check_finite<T: Real>(what: &'static str, v: &[T]) -> Result<()> {
    if v.iter().all(|x| x.is_finite()) {
        Ok(())
    } else {
        Err(Error::InvalidParameter {
            what,
            reason: "contains NaN or an infinity",
        })
    }
}

fn check_data<T: Real>(what: &'static str, x: MatRef<'_, T>, y: &[T]) -> Result<()> {
    check_len(what, x.rows(), y.len())?;
    for i in 0..x.rows() {
        check_finite(what, x.row_or_empty(i))?;
    }
    check_finite(what, y)
}

/// Fisher–Yates shuffle of `perm` with `rng` (uniform index by rejection-free
/// multiply-shift on 64 bits).
fn shuffle(perm: &mut [usize], rng: &mut dyn Rng) {
    for i in (1..perm.len()).rev() {
        let j = ((rng.next_u64() as u128 * (i as u128 + 1)) >> 64) as usize;
        perm.swap(i, j);
    }
}

/// Validation data `(X_val, y_val)`.
pub type Validation<'a, T> = Option<(MatRef<'a, T>, &'a [T])>;

/// Number of scratch elements [`sgd_fit_views_with`] needs: the gradient, `d`.
pub const fn sgd_scratch_len(d: usize) -> usize {
    d
}

crate::simd_default!(sgd_fit_views => sgd_fit_views_with<T: Real>(x: MatRef<'_, T>, y: &[T], val: Validation<'_, T>, cfg: &SgdConfig<T>, w: &mut [T], b: &mut T, perm: &mut [usize], rng: Option<&mut dyn Rng>, scratch: &mut [T], on_epoch: &mut dyn FnMut(EpochReport<T>)) -> Result<u64>);

/// SGD on views (no allocation): `x` `(N, D)`, `y` `N`, starting from (and
/// updating) `w` (`D`) and `b`; `perm` (`N`) is the row-order buffer, `rng`
/// the shuffling generator (`None` = rows in order), `scratch`
/// [`sgd_scratch_len`]`(D)` long. Returns the steps taken. Checks everything
/// (shapes, finite data and parameters, `N ≥ 1`) before changing `w`.
#[allow(clippy::too_many_arguments)]
pub fn sgd_fit_views_with<B: Backend, T: Real>(
    x: MatRef<'_, T>,
    y: &[T],
    val: Validation<'_, T>,
    cfg: &SgdConfig<T>,
    w: &mut [T],
    b: &mut T,
    perm: &mut [usize],
    mut rng: Option<&mut dyn Rng>,
    scratch: &mut [T],
    on_epoch: &mut dyn FnMut(EpochReport<T>),
) -> Result<u64> {
    cfg.check()?;
    let (n, d) = x.shape();
    if n == 0 {
        return Err(Error::Empty {
            what: "SGD: training set",
        });
    }
    check_data("SGD: training data", x, y)?;
    check_len("SGD: w", d, w.len())?;
    check_len("SGD: perm", n, perm.len())?;
    check_finite("SGD: initial w", w)?;
    check_finite("SGD: initial b", core::slice::from_ref(b))?;
    if let Some((xv, yv)) = val {
        check_data("SGD: validation data", xv, yv)?;
        check_len("SGD: validation columns", d, xv.cols())?;
    }
    let found = scratch.len();
    let grad = scratch.get_mut(..d).ok_or(Error::BufferTooSmall {
        what: "SGD: scratch",
        needed: d,
        found,
    })?;
    for (i, p) in perm.iter_mut().enumerate() {
        *p = i;
    }
    let mut t: u64 = 1;
    for epoch in 1..=cfg.epochs {
        if let Some(r) = rng.as_deref_mut() {
            shuffle(perm, r);
        }
        match cfg.rule {
            SgdRule::Sklearn => {
                for &i in perm.iter() {
                    let xi = x.row_or_empty(i);
                    let eta = cfg.lr.at(t);
                    // scikit-learn clips the squared loss's derivative at ±1e12.
                    let lim = T::from_f64(1e12);
                    let r = (B::raw_dot(xi, w) + *b - y[i]).max(-lim).min(lim);
                    if cfg.l2 > T::ZERO {
                        let decay = (T::ONE - eta * cfg.l2).max(T::ZERO);
                        B::raw_affine(w, decay, T::ZERO);
                    }
                    B::raw_axpy(-eta * r, xi, w);
                    *b -= eta * r;
                    t += 1;
                }
            }
            SgdRule::MiniBatch(bs) => {
                for batch in perm.chunks(bs) {
                    if cfg.drop_last && batch.len() < bs {
                        continue;
                    }
                    let eta = cfg.lr.at(t);
                    grad.fill(T::ZERO);
                    let mut gb = T::ZERO;
                    for &i in batch {
                        let xi = x.row_or_empty(i);
                        let r = B::raw_dot(xi, w) + *b - y[i];
                        B::raw_axpy(r, xi, grad);
                        gb += r;
                    }
                    let inv = T::ONE / T::from_usize(batch.len());
                    // w ← w − η·(g/|B| + α·w)
                    if cfg.l2 > T::ZERO {
                        B::raw_affine(w, T::ONE - eta * cfg.l2, T::ZERO);
                    }
                    B::raw_axpy(-eta * inv, grad, w);
                    *b -= eta * gb * inv;
                    t += 1;
                }
            }
        }
        if epoch % cfg.validate_every == 0 || epoch == cfg.epochs {
            let train_loss = half_mse_with::<B, T>(x, y, w, *b)?;
            let val_loss = match val {
                Some((xv, yv)) => Some(half_mse_with::<B, T>(xv, yv, w, *b)?),
                None => None,
            };
            on_epoch(EpochReport {
                epoch,
                train_loss,
                val_loss,
                steps: t - 1,
            });
        }
    }
    Ok(t - 1)
}

/// Scratch elements [`least_squares_views`] needs for `n` rows and `d`
/// features: the design with its intercept column and the right-hand side,
/// `n·(d + 1) + n` (saturating).
pub const fn least_squares_scratch_len(n: usize, d: usize) -> usize {
    n.saturating_mul(d.saturating_add(1)).saturating_add(n)
}

/// Least squares with an intercept, `min ‖X·w + b − y‖²`, by Householder QR
/// of `[X 1]` (no_std, caller scratch of [`least_squares_scratch_len`]).
/// `Err` for `N < D + 1`, non-finite data, or a rank-deficient design (a
/// diagonal of `R` below `N·ε·max|R|`).
pub fn least_squares_views<T: Real>(
    x: MatRef<'_, T>,
    y: &[T],
    scratch: &mut [T],
    w: &mut [T],
    b: &mut T,
) -> Result<()> {
    let (n, d) = x.shape();
    check_data("least squares: data", x, y)?;
    check_len("least squares: w", d, w.len())?;
    let p = d + 1;
    if n < p {
        return Err(Error::InvalidParameter {
            what: "least squares: rows",
            reason: "needs at least D + 1 rows (D features and the intercept)",
        });
    }
    let need = least_squares_scratch_len(n, d);
    let found = scratch.len();
    let s = scratch.get_mut(..need).ok_or(Error::BufferTooSmall {
        what: "least squares: scratch",
        needed: need,
        found,
    })?;
    // Column-major design A (p columns of n) followed by the right-hand side.
    // Each feature column is scaled by a power of two near its largest
    // magnitude (exact: no rounding), so that squared norms neither underflow
    // nor overflow for data near the ends of T's range; the coefficients are
    // scaled back at the end.
    let (a, rhs) = s.split_at_mut(n * p);
    for j in 0..d {
        let sc = column_scale(x, j);
        for i in 0..n {
            a[j * n + i] = x.row_or_empty(i)[j] / sc;
        }
    }
    a[d * n..].fill(T::ONE);
    rhs.copy_from_slice(y);
    let mut rmax = T::ZERO;
    for k in 0..p {
        // Householder reflector for column k below the diagonal.
        let (done, rest) = a.split_at_mut((k + 1) * n);
        let col = &mut done[k * n..];
        let norm = col[k..].iter().fold(T::ZERO, |s, &v| s + v * v).sqrt();
        if norm == T::ZERO {
            return Err(singular());
        }
        let alpha = if col[k] > T::ZERO { -norm } else { norm };
        col[k] -= alpha;
        let vnorm2 = col[k..].iter().fold(T::ZERO, |s, &v| s + v * v);
        // Apply I − 2vvᵀ/(vᵀv) to the remaining columns and the rhs.
        let apply = |c: &mut [T]| {
            let dot = col[k..]
                .iter()
                .zip(&c[k..])
                .fold(T::ZERO, |s, (&v, &u)| s + v * u);
            let f = T::TWO * dot / vnorm2;
            for (u, &v) in c[k..].iter_mut().zip(&col[k..]) {
                *u -= f * v;
            }
        };
        for c in rest.chunks_exact_mut(n) {
            apply(c);
        }
        apply(rhs);
        col[k] = alpha; // R's diagonal entry
        rmax = rmax.max(alpha.abs());
    }
    let tol = T::from_usize(n) * T::EPSILON * rmax;
    // Back substitution R·coef = (Qᵀy)[..p]; coef into rhs[..p].
    for k in (0..p).rev() {
        let rkk = a[k * n + k];
        if rkk.abs() <= tol {
            return Err(singular());
        }
        let mut v = rhs[k];
        for j in k + 1..p {
            v -= a[j * n + k] * rhs[j];
        }
        rhs[k] = v / rkk;
    }
    for (j, (wj, &c)) in w.iter_mut().zip(&rhs[..d]).enumerate() {
        *wj = c / column_scale(x, j);
    }
    *b = rhs[d];
    Ok(())
}

/// A power of two within a factor 2 of column `j`'s largest magnitude (1 for
/// a zero column): dividing by it is exact.
fn column_scale<T: Real>(x: MatRef<'_, T>, j: usize) -> T {
    let m = (0..x.rows()).fold(0.0f64, |m, i| m.max(x.row_or_empty(i)[j].as_f64().abs()));
    if m == 0.0 || !m.is_finite() {
        return T::ONE;
    }
    T::from_f64(libm::ldexp(1.0, libm::frexp(m).1))
}

fn singular() -> Error {
    Error::InvalidParameter {
        what: "least squares",
        reason: "the design is rank-deficient (e.g. a constant feature): singular system",
    }
}

/// A linear model `ŷ = x·w + b` over `D` features (const face).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LinearRegression<T, const D: usize> {
    /// Weights.
    pub w: [T; D],
    /// Intercept.
    pub b: T,
}

impl<T: Real, const D: usize> Default for LinearRegression<T, D> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Real, const D: usize> LinearRegression<T, D> {
    /// All zeros (scikit-learn's starting point).
    pub const fn new() -> Self {
        Self {
            w: [T::ZERO; D],
            b: T::ZERO,
        }
    }

    /// The prediction for one row.
    pub fn predict(&self, x: &[T; D]) -> T {
        Simd::raw_dot(x, &self.w) + self.b
    }

    /// SGD from the current parameters (see [`sgd_fit_views_with`]); `perm`
    /// is the row-order buffer. Returns the steps taken.
    #[allow(clippy::too_many_arguments)]
    pub fn fit_sgd<const N: usize>(
        &mut self,
        x: &[[T; D]; N],
        y: &[T; N],
        val: Validation<'_, T>,
        cfg: &SgdConfig<T>,
        perm: &mut [usize; N],
        rng: Option<&mut dyn Rng>,
        on_epoch: &mut dyn FnMut(EpochReport<T>),
    ) -> Result<u64> {
        let mut grad = [T::ZERO; D];
        sgd_fit_views_with::<Simd, T>(
            MatRef::from_array(x),
            y,
            val,
            cfg,
            &mut self.w,
            &mut self.b,
            perm,
            rng,
            &mut grad,
            on_epoch,
        )
    }
}

#[cfg(feature = "std")]
pub use dynamic::{SgdFit, least_squares_dyn, sgd_fit_dyn};

#[cfg(feature = "std")]
mod dynamic {
    use std::vec::Vec;

    use super::*;
    use crate::matrix::{Matrix, filled_vec, zeros_vec};

    /// The result of [`sgd_fit_dyn`].
    #[derive(Clone, Debug, PartialEq)]
    pub struct SgdFit<T> {
        /// Weights.
        pub w: Vec<T>,
        /// Intercept.
        pub b: T,
        /// Steps taken (scikit-learn's `t_ − 1` with its rule).
        pub steps: u64,
        /// One report per reported epoch.
        pub history: Vec<EpochReport<T>>,
    }

    /// SGD from zeros (`std`), shuffling with `rng` when given.
    pub fn sgd_fit_dyn<T: Real>(
        x: &Matrix<T>,
        y: &[T],
        val: Option<(&Matrix<T>, &[T])>,
        cfg: &SgdConfig<T>,
        rng: Option<&mut dyn Rng>,
    ) -> Result<SgdFit<T>> {
        let (mut w, mut b) = (zeros_vec("SGD: w", x.cols())?, T::ZERO);
        let mut perm = filled_vec("SGD: perm", x.rows(), 0usize)?;
        let mut scratch = zeros_vec("SGD: scratch", sgd_scratch_len(x.cols()))?;
        let mut history = Vec::new();
        let steps = sgd_fit_views_with::<Simd, T>(
            x.view(),
            y,
            val.map(|(m, v)| (m.view(), v)),
            cfg,
            &mut w,
            &mut b,
            &mut perm,
            rng,
            &mut scratch,
            &mut |r| history.push(r),
        )?;
        Ok(SgdFit {
            w,
            b,
            steps,
            history,
        })
    }

    /// Least squares with an intercept (`std`): `(w, b)`.
    pub fn least_squares_dyn<T: Real>(x: &Matrix<T>, y: &[T]) -> Result<(Vec<T>, T)> {
        if x.rows() <= x.cols() {
            return Err(Error::InvalidParameter {
                what: "least squares: rows",
                reason: "needs at least D + 1 rows (D features and the intercept)",
            });
        }
        let mut scratch = zeros_vec(
            "least squares: scratch",
            least_squares_scratch_len(x.rows(), x.cols()),
        )?;
        let (mut w, mut b) = (zeros_vec("least squares: w", x.cols())?, T::ZERO);
        least_squares_views(x.view(), y, &mut scratch, &mut w, &mut b)?;
        Ok((w, b))
    }
}
