//! Optimisers with PyTorch's update rules, and gradient clipping by global
//! norm. One `step` call updates every parameter of a network, given as a
//! list of [`Param`]s (value, gradient, and the optimiser's per-parameter
//! state in caller storage — no allocation).
//!
//! * [`Sgd`] (`torch.optim.SGD`): `g ← ∇ + λ·p` (weight decay); with
//!   momentum `μ > 0`: `b ← g` on the first step, else `b ← μ·b + (1 −
//!   dampening)·g`; then `g ← g + μ·b` (Nesterov) or `g ← b`; `p ← p − lr·g`.
//!   Nesterov needs `μ > 0` and dampening 0. State: `n` values per parameter
//!   with momentum ([`Sgd::state_len`]), none without.
//! * [`Adam`] (`torch.optim.Adam` / `AdamW`): step `t ← t + 1`; Adam adds
//!   `λ·p` to the gradient, AdamW decays `p ← p·(1 − lr·λ)` first
//!   (decoupled); `m ← β₁m + (1 − β₁)g`, `v ← β₂v + (1 − β₂)g²`,
//!   `p ← p − lr·(m/(1 − β₁ᵗ)) / (√(v/(1 − β₂ᵗ)) + eps)` (eps outside the
//!   square root). State: `2n` values per parameter (`m`, then `v`), zeroed
//!   before the first step.
//! * [`clip_grad_norm`]: scales every gradient by `min(1, max_norm/(‖g‖ +
//!   1e−6))` with `‖g‖` the norm of all of them together
//!   (`torch.nn.utils.clip_grad_norm_`); returns `‖g‖`.
//!
//! **One `step` per iteration, over every parameter.** The optimisers count
//! steps, not per-parameter histories: SGD's first momentum buffer and Adam's
//! bias correction use the optimiser's own step count, so call `step` once
//! per iteration with all parameters (as `torch.optim` does with one
//! optimiser over a network); [`Sgd::reset`] / [`Adam::reset`] start over
//! (the caller zeroes the state buffers too).
//!
//! Every step checks all parameters (lengths, state sizes) and the
//! hyper-parameters before it changes any of them; on `Err` nothing moved.
//! NaN in a gradient propagates into its parameter (and, through the
//! moments, stays there), as in PyTorch; [`clip_grad_norm`] refuses a
//! non-finite norm instead.
//!
//! Tested against `torch.optim.SGD` (plain, momentum with dampening and weight
//! decay, Nesterov), `Adam` (with and without L2) and `AdamW` over four steps.
//!
//! ```
//! use constml::nn::{Param, Sgd};
//! let mut w = [1.0f32, 2.0];
//! let g = [0.5f32, -0.5];
//! let mut buf = [0.0f32; 2];
//! let mut sgd = Sgd::new(0.1).momentum(0.9);
//! sgd.step(&mut [Param::new(&mut w, &g, &mut buf)])?;
//! assert_eq!(w, [0.95, 2.05]);
//! # Ok::<(), constml::Error>(())
//! ```

use crate::backend::{Backend, Simd};
use crate::error::{Error, Result, check_len};
use crate::real::Real;

/// One parameter tensor as the optimiser sees it: its values, its gradient
/// and the optimiser's state for it (flat slices).
#[derive(Debug)]
pub struct Param<'a, T> {
    /// The values, updated in place.
    pub value: &'a mut [T],
    /// The gradient (same length).
    pub grad: &'a [T],
    /// Optimiser state (length from the optimiser's `state_len`).
    pub state: &'a mut [T],
}

impl<'a, T> Param<'a, T> {
    /// Bundles a parameter, its gradient and its optimiser state.
    pub fn new(value: &'a mut [T], grad: &'a [T], state: &'a mut [T]) -> Self {
        Self { value, grad, state }
    }
}

fn bad(what: &'static str, reason: &'static str) -> Error {
    Error::InvalidParameter { what, reason }
}

fn check_params<T>(params: &[Param<'_, T>], state_per: usize) -> Result<()> {
    for p in params {
        check_len("optimiser: grad", p.value.len(), p.grad.len())?;
        check_len("optimiser: state", state_per * p.value.len(), p.state.len())?;
    }
    Ok(())
}

/// Stochastic gradient descent (see the [module docs](self)).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sgd<T> {
    /// Learning rate (finite, `> 0`).
    pub lr: T,
    /// Momentum `μ ≥ 0`.
    pub momentum: T,
    /// Dampening (finite).
    pub dampening: T,
    /// Weight decay `λ ≥ 0` (L2 added to the gradient).
    pub weight_decay: T,
    /// Nesterov momentum.
    pub nesterov: bool,
    steps: u64,
}

impl<T: Real> Sgd<T> {
    /// Plain SGD with learning rate `lr`.
    pub fn new(lr: T) -> Self {
        Self {
            lr,
            momentum: T::ZERO,
            dampening: T::ZERO,
            weight_decay: T::ZERO,
            nesterov: false,
            steps: 0,
        }
    }
    /// Sets the momentum.
    pub fn momentum(mut self, m: T) -> Self {
        self.momentum = m;
        self
    }
    /// Sets the dampening.
    pub fn dampening(mut self, d: T) -> Self {
        self.dampening = d;
        self
    }
    /// Sets the weight decay.
    pub fn weight_decay(mut self, wd: T) -> Self {
        self.weight_decay = wd;
        self
    }
    /// Turns Nesterov momentum on or off.
    pub fn nesterov(mut self, on: bool) -> Self {
        self.nesterov = on;
        self
    }
    /// Steps taken.
    pub fn steps(&self) -> u64 {
        self.steps
    }
    /// Forgets the steps taken (the next step starts the momentum buffers
    /// from the gradient again).
    pub fn reset(&mut self) {
        self.steps = 0;
    }
    /// State elements for a parameter of `n` values: `n` with momentum, else 0.
    pub fn state_len(&self, n: usize) -> usize {
        if self.momentum > T::ZERO { n } else { 0 }
    }

    fn check(&self) -> Result<()> {
        if !(self.lr.is_finite() && self.lr > T::ZERO) {
            return Err(bad("SGD: lr", "must be finite and > 0"));
        }
        if !(self.momentum.is_finite() && self.momentum >= T::ZERO) {
            return Err(bad("SGD: momentum", "must be finite and >= 0"));
        }
        if !self.dampening.is_finite() {
            return Err(bad("SGD: dampening", "must be finite"));
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= T::ZERO) {
            return Err(bad("SGD: weight_decay", "must be finite and >= 0"));
        }
        if self.nesterov && (self.momentum <= T::ZERO || self.dampening != T::ZERO) {
            return Err(bad(
                "SGD: nesterov",
                "needs momentum > 0 and zero dampening",
            ));
        }
        Ok(())
    }

    /// One step on every parameter ([`Simd`] kernels).
    pub fn step(&mut self, params: &mut [Param<'_, T>]) -> Result<()> {
        self.step_with::<Simd>(params)
    }

    /// One step on every parameter with backend `B`. Checks everything first.
    pub fn step_with<B: Backend>(&mut self, params: &mut [Param<'_, T>]) -> Result<()> {
        self.check()?;
        let per = usize::from(self.momentum > T::ZERO);
        check_params(params, per)?;
        let first = self.steps == 0;
        for p in params.iter_mut() {
            if per == 0 {
                if self.weight_decay > T::ZERO {
                    // p ← p − lr·(g + λp), in PyTorch's order (a folded factor
                    // 1 − lr·λ would round to 1 in f32 for small lr·λ).
                    for (w, &g) in p.value.iter_mut().zip(p.grad) {
                        *w -= self.lr * (g + self.weight_decay * *w);
                    }
                } else {
                    B::raw_axpy(-self.lr, p.grad, p.value);
                }
                continue;
            }
            for ((w, &g), b) in p.value.iter_mut().zip(p.grad).zip(p.state.iter_mut()) {
                let g = if self.weight_decay > T::ZERO {
                    g + self.weight_decay * *w
                } else {
                    g
                };
                *b = if first {
                    g
                } else {
                    self.momentum * *b + (T::ONE - self.dampening) * g
                };
                let step = if self.nesterov {
                    g + self.momentum * *b
                } else {
                    *b
                };
                *w -= self.lr * step;
            }
        }
        self.steps += 1;
        Ok(())
    }
}

/// Adam or AdamW (see the [module docs](self)).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Adam<T> {
    /// Learning rate (finite, `> 0`).
    pub lr: T,
    /// `β₁ ∈ [0, 1)`.
    pub beta1: T,
    /// `β₂ ∈ [0, 1)`.
    pub beta2: T,
    /// `eps > 0`, added outside the square root.
    pub eps: T,
    /// Weight decay `λ ≥ 0`.
    pub weight_decay: T,
    /// AdamW's decoupled decay instead of Adam's L2 term.
    pub decoupled: bool,
    steps: u64,
}

impl<T: Real> Adam<T> {
    /// Adam with PyTorch's defaults: `β = (0.9, 0.999)`, `eps = 1e−8`, no
    /// decay.
    pub fn new(lr: T) -> Self {
        Self {
            lr,
            beta1: T::from_f64(0.9),
            beta2: T::from_f64(0.999),
            eps: T::from_f64(1e-8),
            weight_decay: T::ZERO,
            decoupled: false,
            steps: 0,
        }
    }
    /// AdamW with PyTorch's defaults (`weight_decay = 0.01`).
    pub fn adamw(lr: T) -> Self {
        Self {
            weight_decay: T::from_f64(0.01),
            decoupled: true,
            ..Self::new(lr)
        }
    }
    /// Sets `(β₁, β₂)`.
    pub fn betas(mut self, b1: T, b2: T) -> Self {
        self.beta1 = b1;
        self.beta2 = b2;
        self
    }
    /// Sets `eps`.
    pub fn eps(mut self, eps: T) -> Self {
        self.eps = eps;
        self
    }
    /// Sets the weight decay.
    pub fn weight_decay(mut self, wd: T) -> Self {
        self.weight_decay = wd;
        self
    }
    /// Steps taken (`t`).
    pub fn steps(&self) -> u64 {
        self.steps
    }
    /// Forgets the steps taken (`t = 0`; zero the moment buffers too).
    pub fn reset(&mut self) {
        self.steps = 0;
    }
    /// State elements for a parameter of `n` values: `2n` (`m`, then `v`).
    pub fn state_len(&self, n: usize) -> usize {
        n.saturating_mul(2)
    }

    fn check(&self) -> Result<()> {
        if !(self.lr.is_finite() && self.lr > T::ZERO) {
            return Err(bad("Adam: lr", "must be finite and > 0"));
        }
        for b in [self.beta1, self.beta2] {
            if !(b >= T::ZERO && b < T::ONE) {
                return Err(bad("Adam: betas", "must lie in [0, 1)"));
            }
        }
        if !(self.eps.is_finite() && self.eps > T::ZERO) {
            return Err(bad("Adam: eps", "must be finite and > 0"));
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= T::ZERO) {
            return Err(bad("Adam: weight_decay", "must be finite and >= 0"));
        }
        Ok(())
    }

    /// One step on every parameter. Checks everything first.
    pub fn step(&mut self, params: &mut [Param<'_, T>]) -> Result<()> {
        self.check()?;
        check_params(params, 2)?;
        let t = self.steps + 1;
        let tf = t as f64;
        let bc1 = T::ONE - T::from_f64(libm::pow(self.beta1.as_f64(), tf));
        let bc2 = T::ONE - T::from_f64(libm::pow(self.beta2.as_f64(), tf));
        let step_size = self.lr / bc1;
        let sq_bc2 = bc2.sqrt();
        let (b1, b2) = (self.beta1, self.beta2);
        for p in params.iter_mut() {
            let (m, v) = p.state.split_at_mut(p.value.len());
            if self.decoupled && self.weight_decay > T::ZERO {
                let k = T::ONE - self.lr * self.weight_decay;
                for w in p.value.iter_mut() {
                    *w *= k;
                }
            }
            for (((w, &g0), mi), vi) in p.value.iter_mut().zip(p.grad).zip(m).zip(v) {
                let g = if self.decoupled || self.weight_decay == T::ZERO {
                    g0
                } else {
                    g0 + self.weight_decay * *w
                };
                *mi = b1 * *mi + (T::ONE - b1) * g;
                *vi = b2 * *vi + (T::ONE - b2) * g * g;
                let denom = vi.sqrt() / sq_bc2 + self.eps;
                *w -= step_size * *mi / denom;
            }
        }
        self.steps = t;
        Ok(())
    }
}

/// Clips gradients by their global norm: with `‖g‖` the Euclidean norm of
/// all of them together, each is multiplied by `min(1, max_norm/(‖g‖ +
/// 1e−6))`. Returns `‖g‖`. `Err` (nothing scaled) for a non-finite norm or a
/// `max_norm` that is not finite and `> 0`.
pub fn clip_grad_norm<T: Real>(grads: &mut [&mut [T]], max_norm: T) -> Result<T> {
    if !(max_norm.is_finite() && max_norm > T::ZERO) {
        return Err(bad("clip_grad_norm: max_norm", "must be finite and > 0"));
    }
    let mut ss = 0.0f64;
    for g in grads.iter() {
        for &v in g.iter() {
            let v = v.as_f64();
            ss += v * v;
        }
    }
    let total: f64 = libm::sqrt(ss);
    if !total.is_finite() {
        return Err(Error::NaN {
            what: "clip_grad_norm: gradient norm",
        });
    }
    if !T::from_f64(total).is_finite() {
        return Err(Error::NaN {
            what: "clip_grad_norm: gradient norm (overflows the element type)",
        });
    }
    let coef = max_norm.as_f64() / (total + 1e-6);
    if coef < 1.0 {
        let c = T::from_f64(coef);
        for g in grads.iter_mut() {
            for v in g.iter_mut() {
                *v *= c;
            }
        }
    }
    Ok(T::from_f64(total))
}
