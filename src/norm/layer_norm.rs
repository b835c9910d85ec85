//! LayerNorm over the last dimension (PyTorch `nn.LayerNorm` semantics).
//!
//! `y = (x − mean) / √(var + eps) · γ + β` per row, with the biased variance
//! (divide by the row length) and `eps` inside the square root.

use crate::backend::Backend;
use crate::error::{Result, check_len};
use crate::mat::MatMut;
use crate::real::Real;

/// LayerNorm of every row of `x` in place, two-pass (mean first, then the
/// variance of the centred row): `x` `(N, C)`, `weight` and `bias` `C`.
/// A row of zero width is left as it is.
pub(crate) fn layer_norm_rows_with<B: Backend, T: Real>(
    mut x: MatMut<'_, T>,
    weight: &[T],
    bias: &[T],
    eps: T,
) -> Result<()> {
    check_len("LayerNorm: weight", x.cols(), weight.len())?;
    check_len("LayerNorm: bias", x.cols(), bias.len())?;
    if x.cols() == 0 {
        return Ok(());
    }
    let n = T::from_usize(x.cols());
    for i in 0..x.rows() {
        let row = x.row_mut_or_empty(i);
        let mean = B::sum(row) / n;
        B::raw_affine(row, T::ONE, -mean);
        let var = B::raw_dot(row, row) / n;
        B::raw_affine(row, T::ONE / (var + eps).sqrt(), T::ZERO);
        B::raw_zip(row, weight, true);
        B::raw_zip(row, bias, false);
    }
    Ok(())
}
