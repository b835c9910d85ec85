//! Learned absolute position embeddings (GPT-2's `wpe`, BERT, ViT): a
//! `(MAX_POS, D)` table whose row `p` is added to the embedding at position
//! `p`.
//!
//! * **Forward**: `y[r] = x[r] + table[p_r]`, in place, for consecutive
//!   positions `p_r = start + r` (cached decoding at an offset) or an explicit
//!   list (`_at`).
//! * **Backward**: `grad[p_r] += dy[r]` — a scatter-add, so repeated positions
//!   (a batch of sequences flattened into rows) accumulate. Gradients
//!   accumulate into caller-owned storage; zero it between steps.
//! * **SGD step**: `table −= lr · grad` (`torch.optim.SGD` without momentum).
//!
//! A position `≥ MAX_POS` is [`Error::OutOfRange`], checked before anything is
//! written. Matches PyTorch's `x + wpe(positions)` and its autograd gradient
//! (tested).
//!
//! The table is generic over its storage `S` — anything that borrows as
//! `[[T; D]; MAX_POS]`: a `&'static` table in flash for inference, an owned
//! array (or a `&mut`) for training.
//!
//! ```
//! use constml::position::LearnedPositions;
//! static WPE: [[f32; 2]; 3] = [[0.1, 0.2], [0.3, 0.4], [0.5, 0.6]];
//! let wpe = LearnedPositions::new(&WPE);          // borrowed, e.g. from flash
//! let mut x = [[1.0f32, 1.0]];
//! wpe.add(2, &mut x)?;                            // one token at position 2
//! assert_eq!(x, [[1.5, 1.6]]);
//! assert!(wpe.add(3, &mut x).is_err());           // past MAX_POS = 3
//!
//! let mut owned = LearnedPositions::new(WPE);     // owned, for training
//! let mut grad = [[0.0f32; 2]; 3];
//! LearnedPositions::<f32, 3, 2>::backward_at(&[1, 1], &[[1.0, 0.0], [1.0, 2.0]], &mut grad)?;
//! assert_eq!(grad[1], [2.0, 2.0]);                // repeated positions add up
//! owned.sgd_step(&grad, 0.5)?;
//! assert_eq!(owned.table()[1], [-0.7, -0.6]);
//! # Ok::<(), constml::Error>(())
//! ```

use core::borrow::{Borrow, BorrowMut};
use core::marker::PhantomData;

use crate::backend::{Backend, Simd};
use crate::error::{Error, Result, check_len};
use crate::mat::{MatMut, MatRef};
use crate::real::Real;

/// A learned `(MAX_POS, D)` position table held in storage `S` (see the
/// [module docs](self)).
#[derive(Clone, Copy, Debug)]
pub struct LearnedPositions<T, const MAX_POS: usize, const D: usize, S = &'static [[T; D]; MAX_POS]>
{
    table: S,
    _t: PhantomData<fn() -> T>,
}

/// Checks that `positions` are all `< max_pos`.
fn check_positions(positions: &[usize], max_pos: usize) -> Result<()> {
    match positions.iter().find(|&&p| p >= max_pos) {
        Some(&p) => Err(Error::OutOfRange {
            what: "learned positions: position",
            index: p,
            len: max_pos,
        }),
        None => Ok(()),
    }
}

/// Checks that rows `start .. start + n` are positions `< max_pos`.
fn check_range(start: usize, n: usize, max_pos: usize) -> Result<()> {
    if n == 0 {
        return Ok(());
    }
    let last = start.saturating_add(n - 1);
    if last >= max_pos {
        return Err(Error::OutOfRange {
            what: "learned positions: position",
            index: last,
            len: max_pos,
        });
    }
    Ok(())
}

/// Checks that a learning rate is finite.
fn check_lr<T: Real>(lr: T) -> Result<()> {
    if lr.is_finite() {
        Ok(())
    } else {
        Err(Error::InvalidParameter {
            what: "learned positions: learning rate",
            reason: "must be finite",
        })
    }
}

impl<T: Real, const MAX_POS: usize, const D: usize, S: Borrow<[[T; D]; MAX_POS]>>
    LearnedPositions<T, MAX_POS, D, S>
{
    /// Wraps a table.
    pub const fn new(table: S) -> Self {
        Self {
            table,
            _t: PhantomData,
        }
    }

    /// The table.
    pub fn table(&self) -> &[[T; D]; MAX_POS] {
        self.table.borrow()
    }

    /// The storage back.
    pub fn into_inner(self) -> S {
        self.table
    }

    /// [`add_with`](Self::add_with) with the [`Simd`] backend.
    pub fn add<const N: usize>(&self, start: usize, x: &mut [[T; D]; N]) -> Result<()> {
        self.add_with::<Simd, N>(start, x)
    }

    /// Forward: `x[r] += table[start + r]`. `Err` (nothing written) if
    /// `start + N > MAX_POS`.
    pub fn add_with<B: Backend, const N: usize>(
        &self,
        start: usize,
        x: &mut [[T; D]; N],
    ) -> Result<()> {
        learned_add_views_with::<B, T>(
            MatRef::from_array(self.table()),
            start,
            MatMut::from_array(x),
        )
    }

    /// Forward at explicit positions: `x[r] += table[positions[r]]`.
    pub fn add_at<const N: usize>(
        &self,
        positions: &[usize; N],
        x: &mut [[T; D]; N],
    ) -> Result<()> {
        learned_add_at_views_with::<Simd, T>(
            MatRef::from_array(self.table()),
            positions,
            MatMut::from_array(x),
        )
    }

    /// Backward for consecutive positions: `grad[start + r] += dy[r]`.
    pub fn backward<const N: usize>(
        start: usize,
        dy: &[[T; D]; N],
        grad: &mut [[T; D]; MAX_POS],
    ) -> Result<()> {
        learned_backward_views_with::<Simd, T>(
            start,
            MatRef::from_array(dy),
            MatMut::from_array(grad),
        )
    }

    /// Backward at explicit positions: `grad[positions[r]] += dy[r]`
    /// (repeats accumulate).
    pub fn backward_at<const N: usize>(
        positions: &[usize; N],
        dy: &[[T; D]; N],
        grad: &mut [[T; D]; MAX_POS],
    ) -> Result<()> {
        learned_backward_at_views_with::<Simd, T>(
            positions,
            MatRef::from_array(dy),
            MatMut::from_array(grad),
        )
    }

    /// One SGD step `table −= lr · grad` (needs mutable storage). `Err` for a
    /// non-finite `lr`.
    pub fn sgd_step(&mut self, grad: &[[T; D]; MAX_POS], lr: T) -> Result<()>
    where
        S: BorrowMut<[[T; D]; MAX_POS]>,
    {
        learned_sgd_step_views_with::<Simd, T>(
            MatMut::from_array(self.table.borrow_mut()),
            MatRef::from_array(grad),
            lr,
        )
    }
}

crate::simd_default!(learned_add_views => learned_add_views_with<T: Real>(table: MatRef<'_, T>, start: usize, x: MatMut<'_, T>) -> Result<()>);
crate::simd_default!(learned_add_at_views => learned_add_at_views_with<T: Real>(table: MatRef<'_, T>, positions: &[usize], x: MatMut<'_, T>) -> Result<()>);
crate::simd_default!(learned_backward_views => learned_backward_views_with<T: Real>(start: usize, dy: MatRef<'_, T>, grad: MatMut<'_, T>) -> Result<()>);
crate::simd_default!(learned_backward_at_views => learned_backward_at_views_with<T: Real>(positions: &[usize], dy: MatRef<'_, T>, grad: MatMut<'_, T>) -> Result<()>);
crate::simd_default!(learned_sgd_step_views => learned_sgd_step_views_with<T: Real>(table: MatMut<'_, T>, grad: MatRef<'_, T>, lr: T) -> Result<()>);

/// Forward on views: `x[r] += table[start + r]`, table `(MAX_POS, D)`, `x`
/// `(N, D)`. Everything is checked before anything is written.
pub fn learned_add_views_with<B: Backend, T: Real>(
    table: MatRef<'_, T>,
    start: usize,
    mut x: MatMut<'_, T>,
) -> Result<()> {
    check_len("learned positions: x columns", table.cols(), x.cols())?;
    check_range(start, x.rows(), table.rows())?;
    for r in 0..x.rows() {
        if let (Some(y), Some(t)) = (x.row_mut(r), table.row(start + r)) {
            B::raw_zip(y, t, false);
        }
    }
    Ok(())
}

/// Forward on views at explicit positions: `x[r] += table[positions[r]]`.
pub fn learned_add_at_views_with<B: Backend, T: Real>(
    table: MatRef<'_, T>,
    positions: &[usize],
    mut x: MatMut<'_, T>,
) -> Result<()> {
    check_len("learned positions: x columns", table.cols(), x.cols())?;
    check_len("learned positions: positions", x.rows(), positions.len())?;
    check_positions(positions, table.rows())?;
    for (r, &p) in positions.iter().enumerate() {
        if let (Some(y), Some(t)) = (x.row_mut(r), table.row(p)) {
            B::raw_zip(y, t, false);
        }
    }
    Ok(())
}

/// Backward on views: `grad[start + r] += dy[r]`, `grad` `(MAX_POS, D)`.
pub fn learned_backward_views_with<B: Backend, T: Real>(
    start: usize,
    dy: MatRef<'_, T>,
    mut grad: MatMut<'_, T>,
) -> Result<()> {
    check_len("learned positions: dy columns", grad.cols(), dy.cols())?;
    check_range(start, dy.rows(), grad.rows())?;
    for r in 0..dy.rows() {
        if let (Some(g), Some(d)) = (grad.row_mut(start + r), dy.row(r)) {
            B::raw_zip(g, d, false);
        }
    }
    Ok(())
}

/// Backward on views at explicit positions: `grad[positions[r]] += dy[r]`
/// (repeated positions accumulate, in row order).
pub fn learned_backward_at_views_with<B: Backend, T: Real>(
    positions: &[usize],
    dy: MatRef<'_, T>,
    mut grad: MatMut<'_, T>,
) -> Result<()> {
    check_len("learned positions: dy columns", grad.cols(), dy.cols())?;
    check_len("learned positions: positions", dy.rows(), positions.len())?;
    check_positions(positions, grad.rows())?;
    for (r, &p) in positions.iter().enumerate() {
        if let (Some(g), Some(d)) = (grad.row_mut(p), dy.row(r)) {
            B::raw_zip(g, d, false);
        }
    }
    Ok(())
}

/// SGD on views: `table −= lr · grad` (same shapes; `lr` finite).
pub fn learned_sgd_step_views_with<B: Backend, T: Real>(
    mut table: MatMut<'_, T>,
    grad: MatRef<'_, T>,
    lr: T,
) -> Result<()> {
    check_lr(lr)?;
    if table.shape() != grad.shape() {
        return Err(Error::ShapeMismatch {
            what: "learned positions: grad",
            expected: table.shape(),
            found: grad.shape(),
        });
    }
    for r in 0..grad.rows() {
        if let (Some(t), Some(g)) = (table.row_mut(r), grad.row(r)) {
            B::raw_axpy(-lr, g, t);
        }
    }
    Ok(())
}

#[cfg(feature = "std")]
pub use dynamic::LearnedPositionsDyn;

#[cfg(feature = "std")]
mod dynamic {
    use super::*;
    use crate::matrix::Matrix;

    /// Runtime-shaped learned positions (`std`): an owned table and its
    /// gradient.
    ///
    /// ```
    /// use constml::{Matrix, position::LearnedPositionsDyn};
    /// let mut wpe = LearnedPositionsDyn::<f32>::zeros(1024, 8)?;
    /// let mut x = Matrix::zeros(3, 8)?;
    /// wpe.forward(10, &mut x)?;
    /// wpe.backward(10, &x)?;
    /// wpe.sgd_step(0.1)?;
    /// wpe.zero_grad();
    /// assert!(wpe.forward(1022, &mut x).is_err()); // 1022 + 2 ≥ 1024
    /// # Ok::<(), constml::Error>(())
    /// ```
    #[derive(Clone, Debug)]
    pub struct LearnedPositionsDyn<T, B = Simd> {
        table: Matrix<T>,
        grad: Matrix<T>,
        _b: PhantomData<B>,
    }

    impl<T: Real, B: Backend> LearnedPositionsDyn<T, B> {
        /// Wraps a `(max_pos, d)` table, with a zero gradient.
        pub fn new(table: Matrix<T>) -> Result<Self> {
            let grad = Matrix::zeros(table.rows(), table.cols())?;
            Ok(Self {
                table,
                grad,
                _b: PhantomData,
            })
        }
        /// A zero `(max_pos, d)` table.
        pub fn zeros(max_pos: usize, d: usize) -> Result<Self> {
            Self::new(Matrix::zeros(max_pos, d)?)
        }
        /// The table.
        pub fn table(&self) -> &Matrix<T> {
            &self.table
        }
        /// The accumulated gradient.
        pub fn grad(&self) -> &Matrix<T> {
            &self.grad
        }
        /// `x[r] += table[start + r]`.
        pub fn forward(&self, start: usize, x: &mut Matrix<T>) -> Result<()> {
            learned_add_views_with::<B, T>(self.table.view(), start, x.view_mut())
        }
        /// `x[r] += table[positions[r]]`.
        pub fn forward_at(&self, positions: &[usize], x: &mut Matrix<T>) -> Result<()> {
            learned_add_at_views_with::<B, T>(self.table.view(), positions, x.view_mut())
        }
        /// `grad[start + r] += dy[r]`.
        pub fn backward(&mut self, start: usize, dy: &Matrix<T>) -> Result<()> {
            learned_backward_views_with::<B, T>(start, dy.view(), self.grad.view_mut())
        }
        /// `grad[positions[r]] += dy[r]`.
        pub fn backward_at(&mut self, positions: &[usize], dy: &Matrix<T>) -> Result<()> {
            learned_backward_at_views_with::<B, T>(positions, dy.view(), self.grad.view_mut())
        }
        /// Zeroes the gradient.
        pub fn zero_grad(&mut self) {
            self.grad.as_mut_slice().fill(T::ZERO);
        }
        /// `table −= lr · grad`.
        pub fn sgd_step(&mut self, lr: T) -> Result<()> {
            learned_sgd_step_views_with::<B, T>(self.table.view_mut(), self.grad.view(), lr)
        }
    }
}
