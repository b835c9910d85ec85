//! BatchNorm over `(N, C)`, `(N, C, L)` and `(N, C, H, W)`, PyTorch
//! `nn.BatchNorm1d` / `nn.BatchNorm2d` semantics, forward and backward side by
//! side, plus the fold of an eval-mode BatchNorm into the layer before it.
//!
//! # Layout
//!
//! Data is row-major `(N, C, L)`: element `(n, c, l)` at `(n·C + c)·L + l`
//! ([`BnShape`]). `(N, C)` is `L = 1`; `(N, C, H, W)` is `L = H·W`. Statistics
//! are per channel over the `m = N·L` values.
//!
//! # Formula
//!
//! * **Training**: `μ_c`, `σ²_c` = the batch mean and *biased* variance,
//!   `r_c = 1/√(σ²_c + eps)`, `y = (x − μ_c)·r_c·γ_c + β_c`. The running
//!   statistics move towards the batch's: `running ← (1 − f)·running + f·batch`
//!   with `f = momentum` (default 0.1), or `f = 1/num_batches_tracked` when
//!   `momentum = None` (a cumulative average); the running variance takes
//!   the **unbiased** batch variance `σ²·m/(m − 1)`. `m = 1` (one value per
//!   channel) is an error, as in PyTorch.
//! * **Eval**: the running statistics replace the batch's.
//! * **Backward (training)**, through the batch statistics:
//!   `dx = γ·r·(dy − mean(dy) − x̂·mean(dy·x̂))`, `dγ += Σ dy·x̂`,
//!   `dβ += Σ dy` (sums and means over the channel's `m` values). `dx` is
//!   written, `dγ`/`dβ` accumulate. Eval backward: `dx = dy·γ·r_running`.
//! * **Fold** ([`fold_batch_norm_views`]): an eval-mode BatchNorm after a
//!   linear or convolution layer with weight rows per output channel becomes
//!   `W' = W·γ·r`, `b' = (b − μ)·γ·r + β` (`torch.nn.utils.fusion`).
//!
//! Tested against `torch.nn.BatchNorm1d/2d` and autograd over several training
//! steps (momentum 0.1 and `None`, affine and not, a zero-variance channel),
//! then eval; the fold against `fuse_linear_bn_weights` /
//! `fuse_conv_bn_weights`.
//!
//! ```
//! use constml::norm::{BatchNorm, BatchNormState};
//! let bn = BatchNorm::<f32, 2>::new(None, None, 1e-5, Some(0.1))?;
//! let mut state = BatchNormState::new();
//! let x = [[1.0f32, 10.0], [3.0, 30.0]]; // (N = 2, C = 2)
//! let mut y = [[0.0f32; 2]; 2];
//! bn.forward_train_nc(&x, &mut y, Some(&mut state), None)?;
//! assert!((y[0][0] + 1.0).abs() < 1e-4 && (y[1][1] - 1.0).abs() < 1e-4);
//! assert!((state.running_mean[1] - 2.0).abs() < 1e-6); // 0.9·0 + 0.1·20
//! assert!(bn.forward_train_nc(&[[1.0, 2.0]], &mut [[0.0; 2]], None, None).is_err()); // N·L = 1
//! # Ok::<(), constml::Error>(())
//! ```

use core::marker::PhantomData;

use super::{NormStats, check_eps, check_stats, opt_len};
use crate::backend::{Backend, Simd};
use crate::error::{Error, Result, check_len};
use crate::mat::MatMut;
use crate::real::Real;

/// The shape `(N, C, L)` of a BatchNorm input.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BnShape {
    /// Batch size `N`.
    pub n: usize,
    /// Channels `C`.
    pub c: usize,
    /// Values per channel and sample `L` (`1` for `(N, C)`, `H·W` for images).
    pub l: usize,
}

impl BnShape {
    /// `(N, C, L)`.
    pub const fn new(n: usize, c: usize, l: usize) -> Self {
        Self { n, c, l }
    }
    /// Number of elements, `Err` on overflow.
    pub fn len(&self) -> Result<usize> {
        self.n
            .checked_mul(self.c)
            .and_then(|x| x.checked_mul(self.l))
            .ok_or(Error::InvalidParameter {
                what: "BatchNorm: shape",
                reason: "N·C·L overflows usize",
            })
    }
    /// Whether there are no elements.
    pub fn is_empty(&self) -> bool {
        self.n == 0 || self.c == 0 || self.l == 0
    }
    /// Values per channel, `m = N·L`.
    fn per_channel(&self) -> usize {
        self.n.saturating_mul(self.l)
    }
    /// The `N` slices of channel `c` in `data`.
    fn slices<'d, T>(&self, data: &'d [T], c: usize) -> impl Iterator<Item = &'d [T]> + 'd {
        let (cs, l) = (self.c, self.l);
        (0..self.n).filter_map(move |n| data.get((n * cs + c) * l..(n * cs + c + 1) * l))
    }
}

/// The channel slices of `data` (each `L` long), mutable, in `(n, c)` order.
fn chunks_mut<T>(data: &mut [T], l: usize) -> core::slice::ChunksExactMut<'_, T> {
    data.chunks_exact_mut(l.max(1))
}

/// The `N` slices of channel `c` (each `L` long), mutable, with their index
/// `n·C + c` in `data`'s slices: O(N) per channel, never a walk over the
/// other channels.
fn channel_mut<T>(
    data: &mut [T],
    shape: BnShape,
    c: usize,
) -> impl Iterator<Item = (usize, &mut [T])> {
    chunks_mut(data, shape.l)
        .enumerate()
        .skip(c)
        .step_by(shape.c.max(1))
}

/// Running statistics in caller storage: `mean` and `var` (`C` each) and the
/// count of training batches (PyTorch's `num_batches_tracked`).
#[derive(Debug)]
pub struct RunningStats<'a, T> {
    /// Running mean.
    pub mean: &'a mut [T],
    /// Running (unbiased) variance.
    pub var: &'a mut [T],
    /// Training batches seen.
    pub batches: &'a mut u64,
}

/// Owned running statistics of `C` channels (const face), initialised as
/// PyTorch does: mean 0, variance 1, no batches.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BatchNormState<T, const C: usize> {
    /// Running mean.
    pub running_mean: [T; C],
    /// Running variance.
    pub running_var: [T; C],
    /// Training batches seen.
    pub num_batches_tracked: u64,
}

impl<T: Real, const C: usize> BatchNormState<T, C> {
    /// Mean 0, variance 1.
    pub const fn new() -> Self {
        Self {
            running_mean: [T::ZERO; C],
            running_var: [T::ONE; C],
            num_batches_tracked: 0,
        }
    }
    /// The statistics as caller storage.
    pub fn as_running(&mut self) -> RunningStats<'_, T> {
        RunningStats {
            mean: &mut self.running_mean,
            var: &mut self.running_var,
            batches: &mut self.num_batches_tracked,
        }
    }
}

impl<T: Real, const C: usize> Default for BatchNormState<T, C> {
    fn default() -> Self {
        Self::new()
    }
}

fn check_data<T>(what: &'static str, shape: BnShape, data: &[T]) -> Result<()> {
    check_len(what, shape.len()?, data.len())
}

fn check_momentum<T: Real>(momentum: Option<T>) -> Result<()> {
    match momentum {
        Some(m) if !m.is_finite() => Err(Error::InvalidParameter {
            what: "BatchNorm: momentum",
            reason: "must be finite (or None for a cumulative average)",
        }),
        _ => Ok(()),
    }
}

fn check_affine<T>(c: usize, weight: Option<&[T]>, bias: Option<&[T]>) -> Result<()> {
    opt_len("BatchNorm: weight", c, weight)?;
    opt_len("BatchNorm: bias", c, bias)
}

#[inline]
fn at<T: Real>(s: Option<&[T]>, c: usize, default: T) -> T {
    s.and_then(|s| s.get(c)).copied().unwrap_or(default)
}

crate::simd_default!(batch_norm_train_views => batch_norm_train_views_with<T: Real>(x: &[T], shape: BnShape, y: &mut [T], weight: Option<&[T]>, bias: Option<&[T]>, eps: T, momentum: Option<T>, running: Option<RunningStats<'_, T>>, stats: Option<NormStats<'_, T>>) -> Result<()>);
crate::simd_default!(batch_norm_eval_views => batch_norm_eval_views_with<T: Real>(x: &[T], shape: BnShape, y: &mut [T], weight: Option<&[T]>, bias: Option<&[T]>, eps: T, running_mean: &[T], running_var: &[T]) -> Result<()>);
crate::simd_default!(batch_norm_backward_views => batch_norm_backward_views_with<T: Real>(x: &[T], shape: BnShape, dy: &[T], dx: &mut [T], weight: Option<&[T]>, eps: T, stats: Option<(&[T], &[T])>, dweight: Option<&mut [T]>, dbias: Option<&mut [T]>) -> Result<()>);
crate::simd_default!(batch_norm_eval_backward_views => batch_norm_eval_backward_views_with<T: Real>(x: &[T], shape: BnShape, dy: &[T], dx: &mut [T], weight: Option<&[T]>, eps: T, running_mean: &[T], running_var: &[T], dweight: Option<&mut [T]>, dbias: Option<&mut [T]>) -> Result<()>);

/// Batch mean and biased variance of channel `c`, corrected two-pass, using
/// `tmp` (the output buffer) for the centred values: returns `(μ, σ², μ̃)`
/// with `tmp`'s channel slices holding `x − μ̃`.
fn channel_moments<B: Backend, T: Real>(
    x: &[T],
    shape: BnShape,
    tmp: &mut [T],
    c: usize,
) -> (T, T, T) {
    let m = T::from_usize(shape.per_channel());
    let rough = shape.slices(x, c).fold(T::ZERO, |s, v| s + B::sum(v)) / m;
    let (mut s1, mut s2) = (T::ZERO, T::ZERO);
    for (n, out) in channel_mut(tmp, shape, c) {
        let src = &x[n * shape.l..(n + 1) * shape.l];
        out.copy_from_slice(src);
        B::raw_affine(out, T::ONE, -rough);
        s1 += B::sum(out);
        s2 += B::raw_dot(out, out);
    }
    let shift = s1 / m;
    let var = (s2 / m - shift * shift).max(T::ZERO);
    (rough + shift, var, rough)
}

/// Training-mode forward on flat `(N, C, L)` data. `running` (if given) is
/// updated (PyTorch `track_running_stats=True`); `stats` receives each
/// channel's batch `μ` and `r` for the backward. Nothing is written on `Err`.
#[allow(clippy::too_many_arguments)]
pub fn batch_norm_train_views_with<B: Backend, T: Real>(
    x: &[T],
    shape: BnShape,
    y: &mut [T],
    weight: Option<&[T]>,
    bias: Option<&[T]>,
    eps: T,
    momentum: Option<T>,
    running: Option<RunningStats<'_, T>>,
    stats: Option<NormStats<'_, T>>,
) -> Result<()> {
    check_eps("BatchNorm: eps", eps)?;
    check_momentum(momentum)?;
    check_data("BatchNorm: x", shape, x)?;
    check_data("BatchNorm: y", shape, y)?;
    check_affine(shape.c, weight, bias)?;
    let mut stats = stats;
    check_stats(&stats, shape.c, true)?;
    let mut running = running;
    if let Some(r) = &running {
        check_len("BatchNorm: running mean", shape.c, r.mean.len())?;
        check_len("BatchNorm: running var", shape.c, r.var.len())?;
    }
    let m = shape.per_channel();
    if shape.c > 0 && m <= 1 {
        return Err(Error::InvalidParameter {
            what: "BatchNorm: batch",
            reason: "training needs more than one value per channel (N·L > 1)",
        });
    }
    if shape.is_empty() {
        return Ok(());
    }
    let factor = match (&mut running, momentum) {
        (Some(r), mom) => {
            *r.batches = r.batches.saturating_add(1);
            match mom {
                Some(f) => f,
                None => T::ONE / T::from_f64(*r.batches as f64),
            }
        }
        (None, _) => T::ZERO,
    };
    let bessel = T::from_usize(m) / T::from_usize(m - 1);
    for c in 0..shape.c {
        let (mean, var, rough) = channel_moments::<B, T>(x, shape, y, c);
        let r = T::ONE / (var + eps).sqrt();
        let scale = r * at(weight, c, T::ONE);
        let shift = at(bias, c, T::ZERO);
        // y holds x − μ̃: y = (y − (μ − μ̃))·r·γ + β.
        for (_, out) in channel_mut(y, shape, c) {
            B::raw_affine(out, T::ONE, rough - mean);
            B::raw_affine(out, scale, shift);
        }
        if let Some(s) = stats.as_mut() {
            s.set(c, mean, r);
        }
        if let Some(run) = running.as_mut() {
            run.mean[c] = (T::ONE - factor) * run.mean[c] + factor * mean;
            run.var[c] = (T::ONE - factor) * run.var[c] + factor * var * bessel;
        }
    }
    Ok(())
}

/// Eval-mode forward: `y = (x − running_mean)·γ/√(running_var + eps) + β`.
#[allow(clippy::too_many_arguments)]
pub fn batch_norm_eval_views_with<B: Backend, T: Real>(
    x: &[T],
    shape: BnShape,
    y: &mut [T],
    weight: Option<&[T]>,
    bias: Option<&[T]>,
    eps: T,
    running_mean: &[T],
    running_var: &[T],
) -> Result<()> {
    check_eps("BatchNorm: eps", eps)?;
    check_data("BatchNorm: x", shape, x)?;
    check_data("BatchNorm: y", shape, y)?;
    check_affine(shape.c, weight, bias)?;
    check_len("BatchNorm: running mean", shape.c, running_mean.len())?;
    check_len("BatchNorm: running var", shape.c, running_var.len())?;
    if shape.is_empty() {
        return Ok(());
    }
    y.copy_from_slice(x);
    for (n, out) in chunks_mut(y, shape.l).enumerate() {
        let c = n % shape.c;
        let r = T::ONE / (running_var[c] + eps).sqrt();
        B::raw_affine(out, T::ONE, -running_mean[c]);
        B::raw_affine(out, r * at(weight, c, T::ONE), at(bias, c, T::ZERO));
    }
    Ok(())
}

/// Training-mode backward through the batch statistics: writes `dx`, adds
/// into `dweight`/`dbias` (`C` each). `stats` = the forward's `(μ, r)` per
/// channel, or `None` to recompute them from `x` (with `eps`).
#[allow(clippy::too_many_arguments)]
pub fn batch_norm_backward_views_with<B: Backend, T: Real>(
    x: &[T],
    shape: BnShape,
    dy: &[T],
    dx: &mut [T],
    weight: Option<&[T]>,
    eps: T,
    stats: Option<(&[T], &[T])>,
    mut dweight: Option<&mut [T]>,
    mut dbias: Option<&mut [T]>,
) -> Result<()> {
    check_eps("BatchNorm: eps", eps)?;
    check_data("BatchNorm: x", shape, x)?;
    check_data("BatchNorm: dy", shape, dy)?;
    check_data("BatchNorm: dx", shape, dx)?;
    check_affine(shape.c, weight, None)?;
    opt_len("BatchNorm: dweight", shape.c, dweight.as_deref())?;
    opt_len("BatchNorm: dbias", shape.c, dbias.as_deref())?;
    if let Some((m, r)) = stats {
        check_len("BatchNorm: saved mean", shape.c, m.len())?;
        check_len("BatchNorm: saved rstd", shape.c, r.len())?;
    }
    let m = shape.per_channel();
    if shape.c > 0 && m <= 1 {
        return Err(Error::InvalidParameter {
            what: "BatchNorm: batch",
            reason: "training needs more than one value per channel (N·L > 1)",
        });
    }
    if shape.is_empty() {
        return Ok(());
    }
    let mf = T::from_usize(m);
    for c in 0..shape.c {
        let (mean, r) = match stats {
            Some((ms, rs)) => (ms[c], rs[c]),
            None => {
                let (mean, var, _) = channel_moments::<B, T>(x, shape, dx, c);
                (mean, T::ONE / (var + eps).sqrt())
            }
        };
        // dx ← x − μ, with the rounding of the saved μ corrected by the
        // centred values' own mean (as in LayerNorm's backward).
        let mut drift = T::ZERO;
        for (n, out) in channel_mut(dx, shape, c) {
            out.copy_from_slice(&x[n * shape.l..(n + 1) * shape.l]);
            B::raw_affine(out, T::ONE, -mean);
            drift += B::sum(out);
        }
        let drift = drift / mf;
        // Σ dy and Σ dy·(x − μ).
        let (mut sum_dy, mut sum_dyc) = (T::ZERO, T::ZERO);
        for (n, out) in channel_mut(dx, shape, c) {
            B::raw_affine(out, T::ONE, -drift);
            let g = &dy[n * shape.l..(n + 1) * shape.l];
            sum_dy += B::sum(g);
            sum_dyc += B::raw_dot(g, out);
        }
        let sum_dyx = sum_dyc * r;
        if let Some(dw) = dweight.as_deref_mut() {
            dw[c] += sum_dyx;
        }
        if let Some(db) = dbias.as_deref_mut() {
            db[c] += sum_dy;
        }
        // dx = γ·r·(dy − Σdy/m − x̂·Σdy·x̂/m), with x̂ = (x − μ)·r.
        let gr = at(weight, c, T::ONE) * r;
        for (n, out) in channel_mut(dx, shape, c) {
            B::raw_affine(out, -r * sum_dyx / mf, -sum_dy / mf);
            B::raw_zip(out, &dy[n * shape.l..(n + 1) * shape.l], false);
            B::raw_affine(out, gr, T::ZERO);
        }
    }
    Ok(())
}

/// Eval-mode backward (running statistics are constants): `dx =
/// dy·γ·r_running`, `dγ += Σ dy·x̂`, `dβ += Σ dy`.
#[allow(clippy::too_many_arguments)]
pub fn batch_norm_eval_backward_views_with<B: Backend, T: Real>(
    x: &[T],
    shape: BnShape,
    dy: &[T],
    dx: &mut [T],
    weight: Option<&[T]>,
    eps: T,
    running_mean: &[T],
    running_var: &[T],
    mut dweight: Option<&mut [T]>,
    mut dbias: Option<&mut [T]>,
) -> Result<()> {
    check_eps("BatchNorm: eps", eps)?;
    check_data("BatchNorm: x", shape, x)?;
    check_data("BatchNorm: dy", shape, dy)?;
    check_data("BatchNorm: dx", shape, dx)?;
    check_affine(shape.c, weight, None)?;
    opt_len("BatchNorm: dweight", shape.c, dweight.as_deref())?;
    opt_len("BatchNorm: dbias", shape.c, dbias.as_deref())?;
    check_len("BatchNorm: running mean", shape.c, running_mean.len())?;
    check_len("BatchNorm: running var", shape.c, running_var.len())?;
    if shape.is_empty() {
        return Ok(());
    }
    for (n, out) in chunks_mut(dx, shape.l).enumerate() {
        let c = n % shape.c;
        let r = T::ONE / (running_var[c] + eps).sqrt();
        let range = n * shape.l..(n + 1) * shape.l;
        let g = &dy[range.clone()];
        out.copy_from_slice(&x[range]);
        B::raw_affine(out, r, -running_mean[c] * r);
        if let Some(dw) = dweight.as_deref_mut() {
            dw[c] += B::raw_dot(g, out);
        }
        if let Some(db) = dbias.as_deref_mut() {
            db[c] += B::sum(g);
        }
        out.copy_from_slice(g);
        B::raw_affine(out, r * at(weight, c, T::ONE), T::ZERO);
    }
    Ok(())
}

/// Folds an eval-mode BatchNorm into the layer before it: `w` `(C, K)` (one
/// row per output channel: a linear layer's `(OUT, IN)` weight, or a
/// convolution's `(C_OUT, C_IN·KH·KW)`), `b` `C` (zeros for a layer without
/// bias): `w ← w·γ·r`, `b ← (b − μ)·γ·r + β` with `r = 1/√(running_var +
/// eps)`. The folded layer alone computes what the layer followed by the
/// BatchNorm computed (`torch.nn.utils.fusion.fuse_linear_bn_weights`,
/// `fuse_conv_bn_weights`).
#[allow(clippy::too_many_arguments)]
pub fn fold_batch_norm_views<T: Real>(
    mut w: MatMut<'_, T>,
    b: &mut [T],
    weight: Option<&[T]>,
    bias: Option<&[T]>,
    eps: T,
    running_mean: &[T],
    running_var: &[T],
) -> Result<()> {
    check_eps("BatchNorm: eps", eps)?;
    let c = w.rows();
    check_len("BatchNorm fold: bias", c, b.len())?;
    check_affine(c, weight, bias)?;
    check_len("BatchNorm: running mean", c, running_mean.len())?;
    check_len("BatchNorm: running var", c, running_var.len())?;
    for (i, bi) in b.iter_mut().enumerate() {
        let s = at(weight, i, T::ONE) / (running_var[i] + eps).sqrt();
        for v in w.row_mut_or_empty(i) {
            *v *= s;
        }
        *bi = (*bi - running_mean[i]) * s + at(bias, i, T::ZERO);
    }
    Ok(())
}

/// A BatchNorm layer over `C` channels (const face): optional `γ`/`β`,
/// `eps`, `momentum` (`None` = cumulative average). Running statistics live
/// in a [`BatchNormState`] the caller owns. Inputs are `[[[T; L]; C]; N]`
/// (`(N, C, L)`; an image's `H·W` flattened into `L`) or `[[T; C]; N]` (the
/// `_nc` methods).
#[derive(Clone, Copy, Debug)]
pub struct BatchNorm<'a, T, const C: usize, B = Simd> {
    weight: Option<&'a [T; C]>,
    bias: Option<&'a [T; C]>,
    eps: T,
    momentum: Option<T>,
    _b: PhantomData<B>,
}

/// Saved per-channel batch statistics `(μ, r)` of a const-face forward.
pub type BatchStats<'s, T, const C: usize> = (&'s mut [T; C], &'s mut [T; C]);

impl<'a, T: Real, const C: usize, B: Backend> BatchNorm<'a, T, C, B> {
    /// `Err` for an `eps` that is not finite and `> 0`, or a non-finite
    /// momentum.
    pub fn new(
        weight: Option<&'a [T; C]>,
        bias: Option<&'a [T; C]>,
        eps: T,
        momentum: Option<T>,
    ) -> Result<Self> {
        check_eps("BatchNorm: eps", eps)?;
        check_momentum(momentum)?;
        Ok(Self {
            weight,
            bias,
            eps,
            momentum,
            _b: PhantomData,
        })
    }

    fn w(&self) -> Option<&[T]> {
        self.weight.map(|w| &w[..])
    }
    fn b(&self) -> Option<&[T]> {
        self.bias.map(|b| &b[..])
    }

    fn train(
        &self,
        x: &[T],
        shape: BnShape,
        y: &mut [T],
        state: Option<&mut BatchNormState<T, C>>,
        stats: Option<BatchStats<'_, T, C>>,
    ) -> Result<()> {
        batch_norm_train_views_with::<B, T>(
            x,
            shape,
            y,
            self.w(),
            self.b(),
            self.eps,
            self.momentum,
            state.map(|s| s.as_running()),
            stats.map(|(m, r)| NormStats::new(m, r)),
        )
    }

    /// Training forward on `(N, C, L)`; updates `state` when given.
    pub fn forward_train<const N: usize, const L: usize>(
        &self,
        x: &[[[T; L]; C]; N],
        y: &mut [[[T; L]; C]; N],
        state: Option<&mut BatchNormState<T, C>>,
        stats: Option<BatchStats<'_, T, C>>,
    ) -> Result<()> {
        let shape = BnShape::new(N, C, L);
        self.train(flat3(x), shape, flat3_mut(y), state, stats)
    }

    /// Training forward on `(N, C)`.
    pub fn forward_train_nc<const N: usize>(
        &self,
        x: &[[T; C]; N],
        y: &mut [[T; C]; N],
        state: Option<&mut BatchNormState<T, C>>,
        stats: Option<BatchStats<'_, T, C>>,
    ) -> Result<()> {
        let shape = BnShape::new(N, C, 1);
        self.train(x.as_flattened(), shape, y.as_flattened_mut(), state, stats)
    }

    fn eval(
        &self,
        x: &[T],
        shape: BnShape,
        y: &mut [T],
        state: &BatchNormState<T, C>,
    ) -> Result<()> {
        batch_norm_eval_views_with::<B, T>(
            x,
            shape,
            y,
            self.w(),
            self.b(),
            self.eps,
            &state.running_mean,
            &state.running_var,
        )
    }

    /// Eval forward on `(N, C, L)` with the running statistics in `state`.
    pub fn forward_eval<const N: usize, const L: usize>(
        &self,
        x: &[[[T; L]; C]; N],
        y: &mut [[[T; L]; C]; N],
        state: &BatchNormState<T, C>,
    ) -> Result<()> {
        self.eval(flat3(x), BnShape::new(N, C, L), flat3_mut(y), state)
    }

    /// Eval forward on `(N, C)`.
    pub fn forward_eval_nc<const N: usize>(
        &self,
        x: &[[T; C]; N],
        y: &mut [[T; C]; N],
        state: &BatchNormState<T, C>,
    ) -> Result<()> {
        self.eval(
            x.as_flattened(),
            BnShape::new(N, C, 1),
            y.as_flattened_mut(),
            state,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn backward(
        &self,
        x: &[T],
        shape: BnShape,
        dy: &[T],
        dx: &mut [T],
        stats: Option<(&[T; C], &[T; C])>,
        dweight: Option<&mut [T; C]>,
        dbias: Option<&mut [T; C]>,
    ) -> Result<()> {
        batch_norm_backward_views_with::<B, T>(
            x,
            shape,
            dy,
            dx,
            self.w(),
            self.eps,
            stats.map(|(m, r)| (&m[..], &r[..])),
            dweight.map(|d| &mut d[..]),
            dbias.map(|d| &mut d[..]),
        )
    }

    /// Training backward on `(N, C, L)`: writes `dx`, adds into
    /// `dweight`/`dbias`; `stats` from the forward or `None` to recompute.
    pub fn backward_train<const N: usize, const L: usize>(
        &self,
        x: &[[[T; L]; C]; N],
        dy: &[[[T; L]; C]; N],
        dx: &mut [[[T; L]; C]; N],
        stats: Option<(&[T; C], &[T; C])>,
        dweight: Option<&mut [T; C]>,
        dbias: Option<&mut [T; C]>,
    ) -> Result<()> {
        let shape = BnShape::new(N, C, L);
        self.backward(
            flat3(x),
            shape,
            flat3(dy),
            flat3_mut(dx),
            stats,
            dweight,
            dbias,
        )
    }

    /// Training backward on `(N, C)`.
    pub fn backward_train_nc<const N: usize>(
        &self,
        x: &[[T; C]; N],
        dy: &[[T; C]; N],
        dx: &mut [[T; C]; N],
        stats: Option<(&[T; C], &[T; C])>,
        dweight: Option<&mut [T; C]>,
        dbias: Option<&mut [T; C]>,
    ) -> Result<()> {
        let shape = BnShape::new(N, C, 1);
        let (x, dy, dx) = (x.as_flattened(), dy.as_flattened(), dx.as_flattened_mut());
        self.backward(x, shape, dy, dx, stats, dweight, dbias)
    }

    /// Folds this eval-mode BatchNorm (statistics in `state`) into the
    /// preceding layer's weight `w` `(C, K)` and bias `b`.
    pub fn fold<const K: usize>(
        &self,
        state: &BatchNormState<T, C>,
        w: &mut [[T; K]; C],
        b: &mut [T; C],
    ) -> Result<()> {
        fold_batch_norm_views(
            MatMut::from_array(w),
            b,
            self.w(),
            self.b(),
            self.eps,
            &state.running_mean,
            &state.running_var,
        )
    }
}

fn flat3<T, const A: usize, const B: usize, const C: usize>(x: &[[[T; C]; B]; A]) -> &[T] {
    x.as_flattened().as_flattened()
}

fn flat3_mut<T, const A: usize, const B: usize, const C: usize>(
    x: &mut [[[T; C]; B]; A],
) -> &mut [T] {
    x.as_flattened_mut().as_flattened_mut()
}

#[cfg(feature = "std")]
pub use dynamic::BatchNormDyn;

#[cfg(feature = "std")]
mod dynamic {
    use std::vec::Vec;

    use super::*;
    use crate::matrix::{filled_vec, zeros_vec};

    /// Runtime-shaped BatchNorm (`std`): owned parameters, gradients and
    /// running statistics, a training/eval switch, and the last training
    /// batch's statistics for the backward.
    ///
    /// ```
    /// use constml::norm::{BatchNormDyn, BnShape};
    /// let mut bn = BatchNormDyn::<f32>::new(3, true, 1e-5, Some(0.1))?;
    /// let shape = BnShape::new(2, 3, 4); // (N, C, H·W)
    /// let x: Vec<f32> = (0..24).map(|i| i as f32).collect();
    /// let y = bn.forward(&x, shape)?;             // training mode
    /// let dx = bn.backward(&x, shape, &y)?;
    /// bn.eval();
    /// let y_eval = bn.forward(&x, shape)?;
    /// assert_eq!((dx.len(), y_eval.len()), (24, 24));
    /// # Ok::<(), constml::Error>(())
    /// ```
    #[derive(Clone, Debug)]
    pub struct BatchNormDyn<T, B = Simd> {
        /// `γ` (`None` without affine parameters).
        pub weight: Option<Vec<T>>,
        /// `β`.
        pub bias: Option<Vec<T>>,
        /// Accumulated `dγ`.
        pub dweight: Option<Vec<T>>,
        /// Accumulated `dβ`.
        pub dbias: Option<Vec<T>>,
        /// Running mean.
        pub running_mean: Vec<T>,
        /// Running variance.
        pub running_var: Vec<T>,
        /// Training batches seen.
        pub num_batches_tracked: u64,
        eps: T,
        momentum: Option<T>,
        training: bool,
        saved: Option<(Vec<T>, Vec<T>)>,
        _b: PhantomData<B>,
    }

    impl<T: Real, B: Backend> BatchNormDyn<T, B> {
        /// `c` channels, PyTorch's initial values (`γ = 1`, `β = 0`, running
        /// mean 0 and variance 1), training mode.
        pub fn new(c: usize, affine: bool, eps: T, momentum: Option<T>) -> Result<Self> {
            check_eps("BatchNorm: eps", eps)?;
            check_momentum(momentum)?;
            let zeros = || zeros_vec("BatchNorm: channels", c);
            let ones = || filled_vec("BatchNorm: channels", c, T::ONE);
            Ok(Self {
                weight: affine.then(ones).transpose()?,
                bias: affine.then(zeros).transpose()?,
                dweight: affine.then(zeros).transpose()?,
                dbias: affine.then(zeros).transpose()?,
                running_mean: zeros()?,
                running_var: ones()?,
                num_batches_tracked: 0,
                eps,
                momentum,
                training: true,
                saved: None,
                _b: PhantomData,
            })
        }
        /// Training mode (batch statistics, running statistics updated).
        pub fn train(&mut self) {
            self.training = true;
        }
        /// Eval mode (running statistics).
        pub fn eval(&mut self) {
            self.training = false;
        }
        /// Forward in the current mode.
        pub fn forward(&mut self, x: &[T], shape: BnShape) -> Result<Vec<T>> {
            check_len("BatchNorm: channels", self.running_mean.len(), shape.c)?;
            check_data("BatchNorm: x", shape, x)?;
            let mut y = zeros_vec("BatchNorm: y", x.len())?;
            if self.training {
                let c = shape.c;
                let (mut m, mut r) = (
                    zeros_vec("BatchNorm: stats", c)?,
                    zeros_vec("BatchNorm: stats", c)?,
                );
                batch_norm_train_views_with::<B, T>(
                    x,
                    shape,
                    &mut y,
                    self.weight.as_deref(),
                    self.bias.as_deref(),
                    self.eps,
                    self.momentum,
                    Some(RunningStats {
                        mean: &mut self.running_mean,
                        var: &mut self.running_var,
                        batches: &mut self.num_batches_tracked,
                    }),
                    Some(NormStats::new(&mut m, &mut r)),
                )?;
                self.saved = Some((m, r));
            } else {
                batch_norm_eval_views_with::<B, T>(
                    x,
                    shape,
                    &mut y,
                    self.weight.as_deref(),
                    self.bias.as_deref(),
                    self.eps,
                    &self.running_mean,
                    &self.running_var,
                )?;
            }
            Ok(y)
        }
        /// Backward in the current mode (training: through the statistics of
        /// the last training forward, which must have been on this `x`).
        pub fn backward(&mut self, x: &[T], shape: BnShape, dy: &[T]) -> Result<Vec<T>> {
            check_len("BatchNorm: channels", self.running_mean.len(), shape.c)?;
            check_data("BatchNorm: x", shape, x)?;
            check_data("BatchNorm: dy", shape, dy)?;
            let mut dx = zeros_vec("BatchNorm: dx", x.len())?;
            if self.training {
                let (m, r) = self.saved.as_ref().ok_or(Error::InvalidParameter {
                    what: "BatchNorm: backward",
                    reason: "no training forward to take the batch statistics from",
                })?;
                batch_norm_backward_views_with::<B, T>(
                    x,
                    shape,
                    dy,
                    &mut dx,
                    self.weight.as_deref(),
                    self.eps,
                    Some((m, r)),
                    self.dweight.as_deref_mut(),
                    self.dbias.as_deref_mut(),
                )?;
            } else {
                batch_norm_eval_backward_views_with::<B, T>(
                    x,
                    shape,
                    dy,
                    &mut dx,
                    self.weight.as_deref(),
                    self.eps,
                    &self.running_mean,
                    &self.running_var,
                    self.dweight.as_deref_mut(),
                    self.dbias.as_deref_mut(),
                )?;
            }
            Ok(dx)
        }
    }
}
