//! Losses, forward and backward together: each function returns the loss
//! and, when given storage, writes its gradient with respect to the
//! prediction (the batch mean included).
//!
//! * [`mse_loss`]: `mean((p − t)²)` over all elements; `dp = 2(p − t)/n`
//!   (PyTorch `F.mse_loss`, mean reduction).
//! * [`cross_entropy_views_with`]: softmax cross-entropy from logits `(N, C)`
//!   and class indices, mean over the counted rows, computed with a stable
//!   log-sum-exp. With label smoothing `ε` (PyTorch's definition) the target
//!   distribution is `q = (1 − ε)·onehot + ε/C`: `loss_i = lse_i − Σ_c q_c·x_c`.
//!   Rows whose target equals `ignore_index` count neither in the sum nor
//!   in the mean. Gradient: `(softmax − q)/n_counted`, zero on ignored rows.
//! * [`bce_with_logits`]: `mean(max(x, 0) − x·t + ln(1 + e^−|x|))` (stable for
//!   any `x`), targets in `[0, 1]` (soft labels allowed); `dx = (σ(x) − t)/n`.
//!
//! Errors: a target class `≥ C` (other than `ignore_index`), mismatched
//! lengths, an empty batch, every row ignored (PyTorch returns NaN there), a
//! smoothing outside `[0, 1]`, BCE targets outside `[0, 1]`. NaN in the
//! predictions propagates to the loss and the gradient.
//!
//! Tested against PyTorch autograd, including logits of ±1e4.
//!
//! ```
//! use constml::nn::{cross_entropy_views, CrossEntropy};
//! use constml::{MatMut, MatRef};
//! let logits = [2.0f32, 0.0, 0.0, 2.0];
//! let mut d = [0.0f32; 4];
//! let loss = cross_entropy_views(
//!     MatRef::new(&logits, 2, 2)?, &[0, 1], &CrossEntropy::default(), Some(MatMut::new(&mut d, 2, 2)?),
//! )?;
//! assert!((loss - (1.0 + (-2.0f32).exp()).ln()).abs() < 1e-6);
//! assert!(d[0] < 0.0 && d[1] > 0.0);
//! # Ok::<(), constml::Error>(())
//! ```

use crate::backend::{Backend, Simd};
use crate::error::{Error, Result, check_len};
use crate::mat::{MatMut, MatRef};
use crate::real::Real;

/// Mean squared error (see the [module docs](self)); `dpred` (if given) is
/// written.
pub fn mse_loss<T: Real>(pred: &[T], target: &[T], dpred: Option<&mut [T]>) -> Result<T> {
    check_len("mse: target", pred.len(), target.len())?;
    if let Some(d) = &dpred {
        check_len("mse: dpred", pred.len(), d.len())?;
    }
    if pred.is_empty() {
        return Err(Error::Empty { what: "mse" });
    }
    let n = T::from_usize(pred.len());
    let mut s = T::ZERO;
    for (&p, &t) in pred.iter().zip(target) {
        s += (p - t) * (p - t);
    }
    if let Some(d) = dpred {
        let k = T::TWO / n;
        for ((g, &p), &t) in d.iter_mut().zip(pred).zip(target) {
            *g = k * (p - t);
        }
    }
    Ok(s / n)
}

/// Options of the cross-entropy: label smoothing `ε ∈ [0, 1]` and an ignored
/// class index (PyTorch's `ignore_index`; `None` ignores nothing).
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub struct CrossEntropy<T> {
    /// `ε` (0 = plain one-hot targets).
    pub label_smoothing: T,
    /// Rows with this target are skipped.
    pub ignore_index: Option<usize>,
}

crate::simd_default!(cross_entropy_views => cross_entropy_views_with<T: Real>(logits: MatRef<'_, T>, targets: &[usize], opts: &CrossEntropy<T>, dlogits: Option<MatMut<'_, T>>) -> Result<T>);

/// Softmax cross-entropy from logits `(N, C)` and targets (`N` class
/// indices), mean over the counted rows; `dlogits` `(N, C)` (if given) is
/// written. See the [module docs](self).
pub fn cross_entropy_views_with<B: Backend, T: Real>(
    logits: MatRef<'_, T>,
    targets: &[usize],
    opts: &CrossEntropy<T>,
    dlogits: Option<MatMut<'_, T>>,
) -> Result<T> {
    let (n, c) = logits.shape();
    check_len("cross-entropy: targets", n, targets.len())?;
    if let Some(d) = &dlogits
        && d.shape() != (n, c)
    {
        return Err(Error::ShapeMismatch {
            what: "cross-entropy: dlogits",
            expected: (n, c),
            found: d.shape(),
        });
    }
    let eps = opts.label_smoothing;
    if !(eps >= T::ZERO && eps <= T::ONE) {
        return Err(Error::InvalidParameter {
            what: "cross-entropy: label_smoothing",
            reason: "must be in [0, 1]",
        });
    }
    if n == 0 || c == 0 {
        return Err(Error::Empty {
            what: "cross-entropy",
        });
    }
    let ignored = |t: usize| opts.ignore_index == Some(t);
    if let Some(&t) = targets.iter().find(|&&t| t >= c && !ignored(t)) {
        return Err(Error::OutOfRange {
            what: "cross-entropy: target",
            index: t,
            len: c,
        });
    }
    let counted = targets.iter().filter(|&&t| !ignored(t)).count();
    if counted == 0 {
        return Err(Error::Empty {
            what: "cross-entropy: every target is ignored",
        });
    }
    let cf = T::from_usize(c);
    let inv_n = T::ONE / T::from_usize(counted);
    let off = eps / cf;
    let on = T::ONE - eps + off;
    let mut total = T::ZERO;
    let mut dl = dlogits;
    for (i, &t) in targets.iter().enumerate() {
        let xi = logits.row_or_empty(i);
        if ignored(t) {
            if let Some(d) = dl.as_mut() {
                d.row_mut_or_empty(i).fill(T::ZERO);
            }
            continue;
        }
        let m = xi.iter().fold(
            T::NEG_INFINITY,
            |a, &b| if b > a || b.is_nan() { b } else { a },
        );
        let se = xi.iter().fold(T::ZERO, |a, &v| a + (v - m).exp());
        let lse = m + se.ln();
        // Σ_c q_c·x_c = (1 − ε)·x_t + (ε/C)·Σ_c x_c.
        let target_term = if eps > T::ZERO {
            (T::ONE - eps) * xi[t] + off * B::sum(xi)
        } else {
            xi[t]
        };
        total += lse - target_term;
        if let Some(d) = dl.as_mut() {
            let row = d.row_mut_or_empty(i);
            for (g, &v) in row.iter_mut().zip(xi) {
                *g = ((v - lse).exp() - off) * inv_n;
            }
            row[t] = ((xi[t] - lse).exp() - on) * inv_n;
        }
    }
    Ok(total * inv_n)
}

/// Binary cross-entropy with logits, mean over the elements; `dx` (if
/// given) is written. Targets must lie in `[0, 1]`.
pub fn bce_with_logits<T: Real>(x: &[T], target: &[T], dx: Option<&mut [T]>) -> Result<T> {
    check_len("bce: target", x.len(), target.len())?;
    if let Some(d) = &dx {
        check_len("bce: dx", x.len(), d.len())?;
    }
    if x.is_empty() {
        return Err(Error::Empty { what: "bce" });
    }
    if target.iter().any(|&t| !(t >= T::ZERO && t <= T::ONE)) {
        return Err(Error::InvalidParameter {
            what: "bce: target",
            reason: "must lie in [0, 1]",
        });
    }
    let n = T::from_usize(x.len());
    let mut s = T::ZERO;
    for (&v, &t) in x.iter().zip(target) {
        s += v.max(T::ZERO) - v * t + (-v.abs()).exp().ln_1p();
    }
    if let Some(d) = dx {
        for ((g, &v), &t) in d.iter_mut().zip(x).zip(target) {
            let sig = T::ONE / (T::ONE + (-v).exp());
            *g = (sig - t) / n;
        }
    }
    Ok(s / n)
}

/// Const face of the cross-entropy ([`Simd`]).
pub fn cross_entropy<T: Real, const N: usize, const C: usize>(
    logits: &[[T; C]; N],
    targets: &[usize; N],
    opts: &CrossEntropy<T>,
    dlogits: Option<&mut [[T; C]; N]>,
) -> Result<T> {
    cross_entropy_views_with::<Simd, T>(
        MatRef::from_array(logits),
        targets,
        opts,
        dlogits.map(MatMut::from_array),
    )
}
