//! The Elman RNN cell (PyTorch `nn.RNN`), forward and backward side by side:
//! `h' = act(W_ih·x + b_ih + W_hh·h + b_hh)` with `act` = tanh or ReLU.
//!
//! One gate block (`G = 1`); nothing is saved for backward beyond the outputs
//! themselves (`act'` is read off `h'`: `1 − h'²` for tanh, `h' > 0` for
//! ReLU, PyTorch's choice at 0). The sequence driver, shapes and faces are in
//! [`recurrent`](super::recurrent).

use crate::backend::Backend;
use crate::real::Real;

/// Forward of one batch row: `row` holds `W_ih·x + b_ih` on entry and `h'` on
/// return; `hproj` is `W_hh·h + b_hh`.
#[inline]
pub(crate) fn forward_row<B: Backend, T: Real>(relu: bool, row: &mut [T], hproj: &[T]) {
    B::raw_zip(row, hproj, false);
    if relu {
        B::relu(row);
    } else {
        B::tanh(row);
    }
}

/// Backward of one batch row: `dpre = dh ⊙ act'(h')`, the gradient of the
/// pre-activation (the same for the input and the hidden projection).
#[inline]
pub(crate) fn backward_row<T: Real>(relu: bool, h: &[T], dh: &[T], dpre: &mut [T]) {
    for ((d, &hv), &g) in dpre.iter_mut().zip(h).zip(dh) {
        *d = if relu {
            if hv > T::ZERO { g } else { T::ZERO }
        } else {
            g * (T::ONE - hv * hv)
        };
    }
}
