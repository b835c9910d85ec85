//! Embedding: a `(V, D)` table, forward a gather of rows, backward a
//! scatter-add into the table's gradient (repeated ids accumulate), PyTorch
//! `nn.Embedding` semantics. An id `≥ V` is [`Error::OutOfRange`], checked
//! before anything is written.
//!
//! ```
//! use constml::nn::{embedding_backward_views, embedding_views};
//! use constml::{MatMut, MatRef};
//! let table = [0.0f32, 1.0, 10.0, 11.0, 20.0, 21.0]; // V = 3, D = 2
//! let mut y = [0.0f32; 4];
//! embedding_views(MatRef::new(&table, 3, 2)?, &[2, 0], MatMut::new(&mut y, 2, 2)?)?;
//! assert_eq!(y, [20.0, 21.0, 0.0, 1.0]);
//! let mut grad = [0.0f32; 6];
//! embedding_backward_views(&[1, 1], MatRef::new(&[1.0, 2.0, 3.0, 4.0], 2, 2)?, MatMut::new(&mut grad, 3, 2)?)?;
//! assert_eq!(grad, [0.0, 0.0, 4.0, 6.0, 0.0, 0.0]);
//! # Ok::<(), constml::Error>(())
//! ```

use crate::backend::{Backend, Simd};
use crate::error::{Error, Result, check_len};
use crate::mat::{MatMut, MatRef};
use crate::real::Real;

fn check_ids(ids: &[usize], v: usize) -> Result<()> {
    match ids.iter().find(|&&i| i >= v) {
        Some(&i) => Err(Error::OutOfRange {
            what: "embedding: id",
            index: i,
            len: v,
        }),
        None => Ok(()),
    }
}

/// Forward: `y[r] = table[ids[r]]`, `table` `(V, D)`, `y` `(ids.len(), D)`.
pub fn embedding_views<T: Real>(
    table: MatRef<'_, T>,
    ids: &[usize],
    mut y: MatMut<'_, T>,
) -> Result<()> {
    check_len("embedding: y rows", ids.len(), y.rows())?;
    check_len("embedding: y columns", table.cols(), y.cols())?;
    check_ids(ids, table.rows())?;
    for (r, &id) in ids.iter().enumerate() {
        y.row_mut_or_empty(r)
            .copy_from_slice(table.row_or_empty(id));
    }
    Ok(())
}

crate::simd_default!(embedding_backward_views => embedding_backward_views_with<T: Real>(ids: &[usize], dy: MatRef<'_, T>, grad: MatMut<'_, T>) -> Result<()>);

/// Backward: `grad[ids[r]] += dy[r]` (scatter-add, in row order), `grad`
/// `(V, D)`.
pub fn embedding_backward_views_with<B: Backend, T: Real>(
    ids: &[usize],
    dy: MatRef<'_, T>,
    mut grad: MatMut<'_, T>,
) -> Result<()> {
    check_len("embedding backward: dy rows", ids.len(), dy.rows())?;
    check_len("embedding backward: dy columns", grad.cols(), dy.cols())?;
    check_ids(ids, grad.rows())?;
    for (r, &id) in ids.iter().enumerate() {
        B::raw_zip(grad.row_mut_or_empty(id), dy.row_or_empty(r), false);
    }
    Ok(())
}

/// Const face: `y[r] = table[ids[r]]`.
pub fn embedding<T: Real, const V: usize, const D: usize, const N: usize>(
    table: &[[T; D]; V],
    ids: &[usize; N],
    y: &mut [[T; D]; N],
) -> Result<()> {
    embedding_views(MatRef::from_array(table), ids, MatMut::from_array(y))
}

/// Const face of the backward: `grad[ids[r]] += dy[r]` ([`Simd`]).
pub fn embedding_backward<T: Real, const V: usize, const D: usize, const N: usize>(
    ids: &[usize; N],
    dy: &[[T; D]; N],
    grad: &mut [[T; D]; V],
) -> Result<()> {
    embedding_backward_views_with::<Simd, T>(ids, MatRef::from_array(dy), MatMut::from_array(grad))
}
