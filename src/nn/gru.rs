//! The GRU cell (PyTorch `nn.GRU`), forward and backward side by side.
//!
//! Gate blocks in PyTorch's order `r, z, n` (`G = 3`, weights `(3H, ·)`),
//! two biases; the reset gate multiplies the hidden projection of the
//! candidate *including its bias*, inside the candidate:
//!
//! ```text
//! r = σ(W_ir·x + b_ir + W_hr·h + b_hr)
//! z = σ(W_iz·x + b_iz + W_hz·h + b_hz)
//! n = tanh(W_in·x + b_in + r ⊙ (W_hn·h + b_hn))
//! h' = (1 − z) ⊙ n + z ⊙ h
//! ```
//!
//! Saved for backward, per step and batch row, four blocks of `H`: `r`, `z`,
//! `n` and `W_hn·h + b_hn`. Because of the reset gate, the gradient of the
//! candidate's hidden projection (`r ⊙ ∂n`) differs from that of its input
//! projection (`∂n`), so backward produces two gate-gradient rows. The
//! sequence driver, shapes and faces are in [`recurrent`](super::recurrent).

use crate::backend::Backend;
use crate::real::Real;

/// Forward of one batch row. `saved` (`4H`) holds the input projection
/// `W_ih·x + b_ih` in its first `3H` on entry and `r z n (W_hn·h + b_hn)` on
/// return; `hproj` is `W_hh·h + b_hh` (`3H`); `h_prev` the previous hidden
/// state (`None` = zeros); `h_out` receives `h'`.
#[inline]
pub(crate) fn forward_row<B: Backend, T: Real>(
    saved: &mut [T],
    hproj: &[T],
    h_prev: Option<&[T]>,
    h_out: &mut [T],
) {
    let h = h_out.len();
    let (rz, rest) = saved.split_at_mut(2 * h);
    B::raw_zip(rz, &hproj[..2 * h], false);
    B::sigmoid(rz);
    let (n, hn) = rest.split_at_mut(h);
    hn.copy_from_slice(&hproj[2 * h..3 * h]);
    B::raw_mul_add(n, &rz[..h], hn);
    B::tanh(n);
    // h' = n + z ⊙ (h − n)
    match h_prev {
        Some(hp) => h_out.copy_from_slice(hp),
        None => h_out.fill(T::ZERO),
    }
    B::raw_axpy(-T::ONE, n, h_out);
    B::raw_zip(h_out, &rz[h..], true);
    B::raw_zip(h_out, n, false);
}

/// Backward of one batch row. `saved` as [`forward_row`] left it; `h_prev`
/// the previous hidden state (`None` = zeros); `dh` the gradient reaching
/// `h'`. Writes the gate pre-activation gradients of the input projection
/// (`dpre_x`, `3H`) and of the hidden projection (`dpre_h`, `3H`), and the
/// direct part of the previous state's gradient, `dh ⊙ z` (`dh_prev`).
#[inline]
pub(crate) fn backward_row<T: Real>(
    saved: &[T],
    h_prev: Option<&[T]>,
    dh: &[T],
    dpre_x: &mut [T],
    dpre_h: &mut [T],
    dh_prev: &mut [T],
) {
    let h = dh.len();
    for k in 0..h {
        let (r, z, n, hn) = (saved[k], saved[h + k], saved[2 * h + k], saved[3 * h + k]);
        let hp = h_prev.map_or(T::ZERO, |p| p[k]);
        // Through h' = (1 − z)·n + z·h.
        let (d_n, d_z) = (dh[k] * (T::ONE - z), dh[k] * (hp - n));
        dh_prev[k] = dh[k] * z;
        // Through n = tanh(a), a = x_n + r·hn.
        let d_a = d_n * (T::ONE - n * n);
        let d_r = d_a * hn;
        let (pr, pz) = (d_r * r * (T::ONE - r), d_z * z * (T::ONE - z));
        dpre_x[k] = pr;
        dpre_x[h + k] = pz;
        dpre_x[2 * h + k] = d_a;
        dpre_h[k] = pr;
        dpre_h[h + k] = pz;
        dpre_h[2 * h + k] = d_a * r;
    }
}
