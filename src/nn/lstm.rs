//! The LSTM cell (PyTorch `nn.LSTM`), forward and backward side by side.
//!
//! Gate blocks in PyTorch's order `i, f, g, o` (`G = 4`, weights `(4H, ·)`),
//! two biases:
//!
//! ```text
//! [i f g o] = W_ih·x + b_ih + W_hh·h + b_hh
//! i, f, o = σ(·)     g = tanh(·)
//! c' = f ⊙ c + i ⊙ g
//! h' = o ⊙ tanh(c')
//! ```
//!
//! Saved for backward, per step and batch row, six blocks of `H`: the
//! activated gates `i f g o`, the cell state `c'` and `tanh(c')` (so backward
//! evaluates no transcendental function). The sequence driver, shapes and
//! faces are in [`recurrent`](super::recurrent).

use crate::backend::Backend;
use crate::real::Real;

/// Forward of one batch row. `saved` (`6H`) holds the input projection
/// `W_ih·x + b_ih` in its first `4H` on entry and `i f g o c' tanh(c')` on
/// return; `hproj` is `W_hh·h + b_hh`; `c_prev` the previous cell state
/// (`None` = zeros); `h_out` receives `h'`.
#[inline]
pub(crate) fn forward_row<B: Backend, T: Real>(
    saved: &mut [T],
    hproj: &[T],
    c_prev: Option<&[T]>,
    h_out: &mut [T],
) {
    let h = h_out.len();
    let (gates, rest) = saved.split_at_mut(4 * h);
    B::raw_zip(gates, hproj, false);
    let (ifg, o) = gates.split_at_mut(3 * h);
    B::sigmoid(&mut ifg[..2 * h]);
    B::tanh(&mut ifg[2 * h..]);
    B::sigmoid(o);
    let (i, fg) = ifg.split_at(h);
    let (f, g) = fg.split_at(h);
    let (c, tc) = rest.split_at_mut(h);
    match c_prev {
        Some(cp) => {
            c.copy_from_slice(cp);
            B::raw_zip(c, f, true);
        }
        None => c.fill(T::ZERO),
    }
    B::raw_mul_add(c, i, g);
    tc.copy_from_slice(c);
    B::tanh(tc);
    h_out.copy_from_slice(tc);
    B::raw_zip(h_out, o, true);
}

/// Backward of one batch row. `saved` as [`forward_row`] left it; `dh` the
/// gradient reaching `h'`; `dc` the gradient reaching `c'` from later steps
/// on entry and the gradient of `c` (the previous cell state) on return;
/// `dpre` (`4H`) receives the gradient of the gate pre-activations
/// (identical for the input and the hidden projection).
#[inline]
pub(crate) fn backward_row<T: Real>(
    saved: &[T],
    c_prev: Option<&[T]>,
    dh: &[T],
    dc: &mut [T],
    dpre: &mut [T],
) {
    let h = dh.len();
    for k in 0..h {
        let (i, f, g, o) = (saved[k], saved[h + k], saved[2 * h + k], saved[3 * h + k]);
        let tc = saved[5 * h + k];
        let cp = c_prev.map_or(T::ZERO, |c| c[k]);
        // Through h' = o·tanh(c'): to o, and on to c' (added to what later
        // steps sent).
        let d_o = dh[k] * tc;
        let dct = dc[k] + dh[k] * o * (T::ONE - tc * tc);
        // Through c' = f·c + i·g.
        let (d_i, d_f, d_g) = (dct * g, dct * cp, dct * i);
        dpre[k] = d_i * i * (T::ONE - i);
        dpre[h + k] = d_f * f * (T::ONE - f);
        dpre[2 * h + k] = d_g * (T::ONE - g * g);
        dpre[3 * h + k] = d_o * o * (T::ONE - o);
        dc[k] = dct * f;
    }
}
