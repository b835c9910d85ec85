//! Sinusoidal absolute position encodings (Vaswani et al. 2017), in two named
//! layouts.
//!
//! * [`SinusoidalLayout::Interleaved`] — the paper's layout:
//!   `PE[p, 2i] = sin(p / θ^(2i/d))`, `PE[p, 2i+1] = cos(p / θ^(2i/d))`
//!   (`θ = 10 000`). An odd `d` ends with a sine column.
//! * [`SinusoidalLayout::Halves`] — concatenated halves (tensor2tensor,
//!   fairseq, Hugging Face M2M100):
//!   `PE[p] = [sin(p·f_0) … sin(p·f_(h−1)), cos(p·f_0) … cos(p·f_(h−1))]`
//!   with `h = ⌊d/2⌋` and `f_i = exp(−i·ln θ / (h − 1))`, plus a zero column
//!   when `d` is odd. `d < 4` is an error in this layout (it divides by
//!   `h − 1`).
//!
//! Positions are plain indices: M2M100's own table starts at 2 (`padding_idx
//! + 1`) and zeroes a padding row; such an offset is the caller's
//! (`start`).
//!
//! # Precision
//!
//! Frequencies, angles and sines are computed in `f64` and each value is
//! rounded once to `T`: an `f32` table is within 1e-7 of the exact values
//! for positions up to 10⁵ (and far beyond). Tables built in `f32`
//! arithmetic, as fairseq and Hugging Face build them, drift from the exact
//! values by about 1e-5 at p = 100 and 1e-4 at p = 1024.
//!
//! # References
//!
//! Tested against exact values (mpmath) for both layouts, odd widths
//! included, at positions up to 10⁵; the halves layout against Hugging Face
//! M2M100's `get_embedding` table (to 1e-4 up to p = 1024, its own `f32`
//! drift).
//!
//! # Faces
//!
//! [`Sinusoidal::table`] / [`add`](Sinusoidal::add) on arrays (shapes checked
//! at compile time), [`table_views`](Sinusoidal::table_views) /
//! [`add_views`](Sinusoidal::add_views) on views, and with `std`
//! [`table_dyn`](Sinusoidal::table_dyn). Adding at an offset (`start`) is
//! what cached decoding needs; `add` equals adding the `table` (bit for bit).
//!
//! ```
//! use constml::position::{Sinusoidal, SinusoidalLayout};
//! let pe = Sinusoidal::new(SinusoidalLayout::Interleaved);
//! let mut t = [[0.0f32; 4]; 2];
//! pe.table(0, &mut t)?;
//! assert_eq!(t[0], [0.0, 1.0, 0.0, 1.0]); // sin 0, cos 0, …
//! assert!((t[1][0] - 1f32.sin()).abs() < 1e-7);
//! assert!((t[1][2] - 0.01f32.sin()).abs() < 1e-7); // p / 10000^(2/4)
//! # Ok::<(), constml::Error>(())
//! ```

use crate::error::{Error, Result};
use crate::mat::MatMut;
use crate::real::Real;

/// Rows `start .. start + n` must be representable positions.
fn check_rows(start: usize, n: usize) -> Result<()> {
    if n > 0 && start.checked_add(n - 1).is_none() {
        return Err(Error::InvalidParameter {
            what: "sinusoidal: position",
            reason: "start + rows overflows usize",
        });
    }
    Ok(())
}

/// Column layout of a sinusoidal table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SinusoidalLayout {
    /// `[sin, cos, sin, cos, …]` with `f_i = θ^(−2i/d)` (Vaswani et al.).
    Interleaved,
    /// `[sin …, cos …, (0)]` with `f_i = exp(−i·ln θ/(h−1))`, `h = ⌊d/2⌋`
    /// (tensor2tensor, fairseq, Hugging Face M2M100). Needs `d ≥ 4`.
    Halves,
}

/// A sinusoidal encoding: layout and base `θ` (default 10 000).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sinusoidal {
    /// Column layout.
    pub layout: SinusoidalLayout,
    /// Base `θ` (finite, `> 0`).
    pub base: f64,
}

impl Sinusoidal {
    /// The encoding with `θ = 10 000`.
    pub const fn new(layout: SinusoidalLayout) -> Self {
        Self {
            layout,
            base: 10_000.0,
        }
    }

    /// Sets the base `θ`.
    pub const fn base(mut self, base: f64) -> Self {
        self.base = base;
        self
    }

    /// Checks the encoding for width `d`: `θ` finite and `> 0`; `d ≥ 4` in the
    /// halves layout.
    pub fn check(&self, d: usize) -> Result<()> {
        if !(self.base.is_finite() && self.base > 0.0) {
            return Err(Error::InvalidParameter {
                what: "sinusoidal: base",
                reason: "must be finite and > 0",
            });
        }
        if self.layout == SinusoidalLayout::Halves && d < 4 {
            return Err(Error::InvalidParameter {
                what: "sinusoidal: width",
                reason: "the halves layout needs d >= 4 (it divides by d/2 - 1)",
            });
        }
        Ok(())
    }

    /// Number of `(sin, cos)` pairs of width `d`.
    fn pairs(&self, d: usize) -> usize {
        match self.layout {
            SinusoidalLayout::Interleaved => d.div_ceil(2),
            SinusoidalLayout::Halves => d / 2,
        }
    }

    /// Frequency of pair `i` for width `d` (in `f64`).
    fn freq(&self, i: usize, d: usize) -> f64 {
        match self.layout {
            SinusoidalLayout::Interleaved => libm::pow(self.base, -((2 * i) as f64) / d as f64),
            SinusoidalLayout::Halves => {
                let h = (d / 2) as f64;
                libm::exp(-(i as f64) * libm::log(self.base) / (h - 1.0))
            }
        }
    }

    /// Columns of pair `i`'s sine and cosine (`None` where an odd width leaves
    /// no cosine column).
    fn columns(&self, i: usize, d: usize) -> (usize, Option<usize>) {
        match self.layout {
            SinusoidalLayout::Interleaved => (2 * i, (2 * i + 1 < d).then_some(2 * i + 1)),
            SinusoidalLayout::Halves => (i, Some(i + d / 2)),
        }
    }

    /// The value at position `pos`, column `col` of width `d`, in `f64` (0
    /// for the halves layout's padding column); `Err` as [`check`](Self::check)
    /// or for `col ≥ d`.
    pub fn value(&self, pos: usize, col: usize, d: usize) -> Result<f64> {
        self.check(d)?;
        if col >= d {
            return Err(Error::OutOfRange {
                what: "sinusoidal: column",
                index: col,
                len: d,
            });
        }
        for i in 0..self.pairs(d) {
            let (s, c) = self.columns(i, d);
            if col == s || Some(col) == c {
                let (sn, cs) = libm::sincos(pos as f64 * self.freq(i, d));
                return Ok(if col == s { sn } else { cs });
            }
        }
        Ok(0.0)
    }

    /// Calls `f(row, column, value)` for rows `0..n` at positions `start ..`.
    fn each<T: Real>(
        &self,
        start: usize,
        n: usize,
        d: usize,
        mut f: impl FnMut(usize, usize, T),
    ) -> Result<()> {
        self.check(d)?;
        if n == 0 || d == 0 {
            return Ok(());
        }
        check_rows(start, n)?;
        for i in 0..self.pairs(d) {
            let f_i = self.freq(i, d);
            let (sc, cc) = self.columns(i, d);
            for r in 0..n {
                let (sn, cs) = libm::sincos((start + r) as f64 * f_i);
                f(r, sc, T::from_f64(sn));
                if let Some(cc) = cc {
                    f(r, cc, T::from_f64(cs));
                }
            }
        }
        Ok(())
    }

    /// Fills `out` `(N, D)` with the encodings of positions `start .. start + N`.
    pub fn table<T: Real, const N: usize, const D: usize>(
        &self,
        start: usize,
        out: &mut [[T; D]; N],
    ) -> Result<()> {
        self.table_views(start, MatMut::from_array(out))
    }

    /// Adds the encodings of positions `start .. start + N` to `x` `(N, D)` in
    /// place (embeddings at a position offset, for cached decoding).
    pub fn add<T: Real, const N: usize, const D: usize>(
        &self,
        start: usize,
        x: &mut [[T; D]; N],
    ) -> Result<()> {
        self.add_views(start, MatMut::from_array(x))
    }

    /// [`table`](Sinusoidal::table) on a view `(n, d)`.
    pub fn table_views<T: Real>(&self, start: usize, mut out: MatMut<'_, T>) -> Result<()> {
        let (n, d) = (out.rows(), out.cols());
        self.check(d)?;
        check_rows(start, n)?;
        if self.layout == SinusoidalLayout::Halves && d % 2 == 1 {
            for r in 0..n {
                if let Some(v) = out.row_mut(r).and_then(|row| row.last_mut()) {
                    *v = T::ZERO;
                }
            }
        }
        self.each(start, n, d, |r, c, v| {
            if let Some(e) = out.row_mut(r).and_then(|row| row.get_mut(c)) {
                *e = v;
            }
        })
    }

    /// [`add`](Sinusoidal::add) on a view `(n, d)`.
    pub fn add_views<T: Real>(&self, start: usize, mut x: MatMut<'_, T>) -> Result<()> {
        let (n, d) = (x.rows(), x.cols());
        self.each(start, n, d, |r, c, v| {
            if let Some(e) = x.row_mut(r).and_then(|row| row.get_mut(c)) {
                *e += v;
            }
        })
    }

    /// An owned `(n, d)` table of positions `start .. start + n` (`std`).
    #[cfg(feature = "std")]
    pub fn table_dyn<T: Real>(
        &self,
        start: usize,
        n: usize,
        d: usize,
    ) -> Result<crate::matrix::Matrix<T>> {
        self.check(d)?;
        let mut m = crate::matrix::Matrix::zeros(n, d)?;
        self.table_views(start, m.view_mut())?;
        Ok(m)
    }
}
