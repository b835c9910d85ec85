//! Borrowed row-major matrix views with a row stride: [`MatRef`] and [`MatMut`].
//!
//! The kernels take views rather than raw slices so that one head's columns of a
//! packed `(N, HEADS·D)` projection, or one cache head's first `len` rows, can be
//! used in place without copying. A view is checked once when it is built (the
//! buffer must hold every element the shape and stride reach), so the kernels can
//! trust it.

use crate::error::{Error, Result};

/// Number of elements a `rows × cols` view with row stride `stride` reaches.
#[inline]
fn needed(rows: usize, cols: usize, stride: usize) -> Option<usize> {
    if rows == 0 || cols == 0 {
        return Some(0);
    }
    (rows - 1).checked_mul(stride)?.checked_add(cols)
}

#[inline]
fn check(what: &'static str, len: usize, rows: usize, cols: usize, stride: usize) -> Result<()> {
    // One rule for every view with elements, one row included: rows never
    // overlap and never run short, so a kernel may cut the buffer into
    // `stride`-long pieces and find each whole row at the start of one.
    if rows > 0 && cols > 0 && stride < cols {
        return Err(Error::InvalidParameter {
            what,
            reason: "row stride is smaller than the number of columns",
        });
    }
    match needed(rows, cols, stride) {
        Some(n) if n <= len => Ok(()),
        Some(n) => Err(Error::BufferTooSmall {
            what,
            needed: n,
            found: len,
        }),
        None => Err(Error::BufferTooSmall {
            what,
            needed: usize::MAX,
            found: len,
        }),
    }
}

/// `Ok` if a dense `rows × cols` matrix has exactly `len` elements.
fn check_dense(len: usize, rows: usize, cols: usize) -> Result<()> {
    let n = rows.checked_mul(cols).ok_or(Error::BufferTooSmall {
        what: "matrix",
        needed: usize::MAX,
        found: len,
    })?;
    crate::error::check_len("matrix buffer", n, len)
}

/// Where a sub-view starts in its parent's buffer and what shape it has.
/// `offset` is `None` when the sub-view is empty (it then holds no data).
struct Window {
    offset: Option<usize>,
    rows: usize,
    cols: usize,
}

/// The window of columns `start .. start + len` of a `rows × cols` view.
fn col_window(rows: usize, cols: usize, start: usize, len: usize) -> Result<Window> {
    let end = start.saturating_add(len);
    if end > cols {
        return Err(Error::OutOfRange {
            what: "matrix columns",
            index: end,
            len: cols,
        });
    }
    let empty = rows == 0 || len == 0;
    Ok(Window {
        offset: (!empty).then_some(start),
        rows,
        cols: len,
    })
}

/// The window of rows `start .. start + len` of a `rows × cols` view.
fn row_window(rows: usize, cols: usize, stride: usize, start: usize, len: usize) -> Result<Window> {
    let end = start.saturating_add(len);
    if end > rows {
        return Err(Error::OutOfRange {
            what: "matrix rows",
            index: end,
            len: rows,
        });
    }
    let empty = len == 0 || cols == 0;
    Ok(Window {
        // start < rows here, so start · stride lies inside the checked buffer.
        offset: (!empty).then_some(start * stride),
        rows: len,
        cols,
    })
}

/// A read-only row-major matrix view: `rows × cols`, row `i` starting at
/// element `i · stride` of the buffer.
///
/// ```
/// use constml::MatRef;
/// let data = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0];
/// let m = MatRef::new(&data, 2, 3)?;          // [[1, 2, 3], [4, 5, 6]]
/// let right = m.col_range(1, 2)?;             // [[2, 3], [5, 6]]
/// assert_eq!(right.row(1), Some(&[5.0, 6.0][..]));
/// # Ok::<(), constml::Error>(())
/// ```
#[derive(Clone, Copy, Debug)]
pub struct MatRef<'a, T> {
    data: &'a [T],
    rows: usize,
    cols: usize,
    stride: usize,
}

/// A mutable row-major matrix view; see [`MatRef`].
#[derive(Debug)]
pub struct MatMut<'a, T> {
    data: &'a mut [T],
    rows: usize,
    cols: usize,
    stride: usize,
}

impl<'a, T> MatRef<'a, T> {
    /// A dense view: `data.len()` must be exactly `rows · cols`.
    pub fn new(data: &'a [T], rows: usize, cols: usize) -> Result<Self> {
        check_dense(data.len(), rows, cols)?;
        Self::with_stride(data, rows, cols, cols)
    }

    /// A strided view: row `i` is `data[i·stride .. i·stride + cols]`.
    ///
    /// `stride ≥ cols` is required whenever the view has an element (one row
    /// included): `Err(InvalidParameter)` otherwise. The buffer must reach the
    /// last element, `(rows − 1)·stride + cols`.
    pub fn with_stride(data: &'a [T], rows: usize, cols: usize, stride: usize) -> Result<Self> {
        check("matrix view", data.len(), rows, cols, stride)?;
        Ok(Self {
            data,
            rows,
            cols,
            stride,
        })
    }

    /// A view of a const-shaped array (cannot fail).
    pub fn from_array<const R: usize, const C: usize>(a: &'a [[T; C]; R]) -> Self {
        Self {
            data: a.as_flattened(),
            rows: R,
            cols: C,
            stride: C,
        }
    }

    /// A `1 × n` view of a vector.
    pub fn row_vector(x: &'a [T]) -> Self {
        Self {
            data: x,
            rows: 1,
            cols: x.len(),
            stride: x.len(),
        }
    }

    /// Number of rows.
    #[inline]
    pub fn rows(&self) -> usize {
        self.rows
    }
    /// Number of columns.
    #[inline]
    pub fn cols(&self) -> usize {
        self.cols
    }
    /// Distance in elements between the starts of consecutive rows.
    #[inline]
    pub fn stride(&self) -> usize {
        self.stride
    }
    /// `(rows, cols)`.
    #[inline]
    pub fn shape(&self) -> (usize, usize) {
        (self.rows, self.cols)
    }

    /// Row `i`, or `None` past the last row. A view with no columns has
    /// `rows` empty rows.
    #[inline]
    pub fn row(&self, i: usize) -> Option<&'a [T]> {
        if i >= self.rows {
            return None;
        }
        if self.cols == 0 {
            return Some(&[]);
        }
        let start = i.checked_mul(self.stride)?;
        self.data.get(start..start.checked_add(self.cols)?)
    }

    /// The underlying buffer and the stride (element `(i, j)` at
    /// `i·stride + j`).
    #[inline(always)]
    pub(crate) fn raw_parts(&self) -> (&'a [T], usize) {
        (self.data, self.stride)
    }

    /// Row `i`; an empty slice past the last row. The view's invariant keeps
    /// every row in bounds, so kernels use this without a panic path.
    #[inline(always)]
    pub(crate) fn row_or_empty(&self, i: usize) -> &'a [T] {
        self.row(i).unwrap_or(&[])
    }

    /// The rows in order, each at least `cols` long (the last exactly `cols`;
    /// earlier ones may run on into the stride's padding).
    #[inline(always)]
    pub(crate) fn padded_rows(&self) -> impl Iterator<Item = &'a [T]> {
        self.data.chunks(self.stride.max(1)).take(self.rows)
    }

    /// The sub-view a [`Window`] of this view describes.
    fn window(&self, w: Window) -> Self {
        let data = match w.offset {
            Some(o) => self.data.get(o..).unwrap_or(&[]),
            None => &[],
        };
        Self {
            data,
            rows: w.rows,
            cols: w.cols,
            stride: self.stride,
        }
    }

    /// Columns `start .. start + len` of every row.
    pub fn col_range(&self, start: usize, len: usize) -> Result<Self> {
        let w = col_window(self.rows, self.cols, start, len)?;
        Ok(self.window(w))
    }

    /// Rows `start .. start + len`.
    pub fn row_range(&self, start: usize, len: usize) -> Result<Self> {
        let w = row_window(self.rows, self.cols, self.stride, start, len)?;
        Ok(self.window(w))
    }
}

impl<'a, T> MatMut<'a, T> {
    /// A dense view: `data.len()` must be exactly `rows · cols`.
    pub fn new(data: &'a mut [T], rows: usize, cols: usize) -> Result<Self> {
        check_dense(data.len(), rows, cols)?;
        Self::with_stride(data, rows, cols, cols)
    }

    /// A strided view: row `i` is `data[i·stride .. i·stride + cols]`; the same
    /// rules as [`MatRef::with_stride`].
    pub fn with_stride(data: &'a mut [T], rows: usize, cols: usize, stride: usize) -> Result<Self> {
        check("matrix view", data.len(), rows, cols, stride)?;
        Ok(Self {
            data,
            rows,
            cols,
            stride,
        })
    }

    /// A view of a const-shaped array (cannot fail).
    pub fn from_array<const R: usize, const C: usize>(a: &'a mut [[T; C]; R]) -> Self {
        Self {
            data: a.as_flattened_mut(),
            rows: R,
            cols: C,
            stride: C,
        }
    }

    /// A `1 × n` view of a vector.
    pub fn row_vector(x: &'a mut [T]) -> Self {
        let n = x.len();
        Self {
            data: x,
            rows: 1,
            cols: n,
            stride: n,
        }
    }

    /// Number of rows.
    #[inline]
    pub fn rows(&self) -> usize {
        self.rows
    }
    /// Number of columns.
    #[inline]
    pub fn cols(&self) -> usize {
        self.cols
    }
    /// `(rows, cols)`.
    #[inline]
    pub fn shape(&self) -> (usize, usize) {
        (self.rows, self.cols)
    }

    /// A shorter-lived mutable view of the same elements.
    #[inline]
    pub fn reborrow(&mut self) -> MatMut<'_, T> {
        MatMut {
            data: self.data,
            rows: self.rows,
            cols: self.cols,
            stride: self.stride,
        }
    }

    /// A read-only view of the same elements.
    #[inline]
    pub fn as_ref(&self) -> MatRef<'_, T> {
        MatRef {
            data: self.data,
            rows: self.rows,
            cols: self.cols,
            stride: self.stride,
        }
    }

    /// Row `i`, or `None` past the last row. A view with no columns has
    /// `rows` empty rows.
    #[inline]
    pub fn row_mut(&mut self, i: usize) -> Option<&mut [T]> {
        if i >= self.rows {
            return None;
        }
        if self.cols == 0 {
            return Some(&mut []);
        }
        let start = i.checked_mul(self.stride)?;
        self.data.get_mut(start..start.checked_add(self.cols)?)
    }

    /// Row `i`; an empty slice past the last row (see [`MatRef::row_or_empty`]).
    #[inline(always)]
    pub(crate) fn row_mut_or_empty(&mut self, i: usize) -> &mut [T] {
        match self.row_mut(i) {
            Some(r) => r,
            None => &mut [],
        }
    }

    /// The sub-view a [`Window`] of this view describes.
    fn window(self, w: Window) -> MatMut<'a, T> {
        let stride = self.stride;
        let data = match w.offset {
            Some(o) => self.data.get_mut(o..).unwrap_or(&mut []),
            None => &mut [],
        };
        MatMut {
            data,
            rows: w.rows,
            cols: w.cols,
            stride,
        }
    }

    /// Columns `start .. start + len` of every row.
    pub fn col_range(self, start: usize, len: usize) -> Result<MatMut<'a, T>> {
        let w = col_window(self.rows, self.cols, start, len)?;
        Ok(self.window(w))
    }

    /// Rows `start .. start + len`.
    pub fn row_range(self, start: usize, len: usize) -> Result<MatMut<'a, T>> {
        let w = row_window(self.rows, self.cols, self.stride, start, len)?;
        Ok(self.window(w))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn views_check_their_buffer() {
        let d = [0.0f32; 10];
        assert!(MatRef::new(&d, 2, 5).is_ok());
        assert!(MatRef::new(&d, 3, 4).is_err());
        assert!(MatRef::with_stride(&d, 3, 2, 4).is_ok()); // reaches 2·4 + 2 = 10
        assert!(MatRef::with_stride(&d, 3, 3, 4).is_err()); // reaches 11
        assert!(MatRef::with_stride(&d, 2, 3, 2).is_err()); // stride < cols
        // One row: the same rule (a short stride used to be accepted there and
        // made the Simd kernels read a truncated row).
        assert!(MatRef::with_stride(&d, 1, 3, 0).is_err());
        assert!(MatRef::with_stride(&d, 1, 3, 2).is_err());
        assert!(MatRef::with_stride(&d, 1, 3, 3).is_ok());
        assert!(MatRef::with_stride(&d, 1, 3, 100).is_ok()); // reaches 3
        assert!(MatRef::with_stride(&d, 1, 0, 0).is_ok()); // no element
        assert!(MatRef::with_stride(&d, 0, 3, 0).is_ok());
        let mut e = d;
        assert!(MatMut::with_stride(&mut e, 1, 3, 0).is_err());
        assert!(MatRef::with_stride(&d, usize::MAX, 2, usize::MAX).is_err());
        let m = MatRef::new(&d, 2, 5).unwrap();
        assert!(m.col_range(3, 3).is_err());
        assert!(m.row_range(1, 2).is_err());
        assert_eq!(m.col_range(5, 0).unwrap().cols(), 0);
        assert_eq!(m.row(2), None);
    }

    #[test]
    fn column_and_row_ranges_address_the_right_elements() {
        let d: [i32; 12] = core::array::from_fn(|i| i as i32);
        let m = MatRef::new(&d, 3, 4).unwrap();
        let s = m.col_range(1, 2).unwrap().row_range(1, 2).unwrap();
        assert_eq!(s.row(0), Some(&[5, 6][..]));
        assert_eq!(s.row(1), Some(&[9, 10][..]));
        let mut e = d;
        let mut w = MatMut::new(&mut e, 3, 4).unwrap().col_range(2, 2).unwrap();
        w.row_mut(2).unwrap()[1] = -1;
        assert_eq!(e[11], -1);
    }
}
