//! Q8_0: group-wise symmetric int8 quantization, as llama2.c's `export.py`
//! (version 2) writes it and `runq.c` runs it.
//!
//! A tensor is split into groups of `GS` consecutive values (row-major; `GS`
//! divides every row length). Each group stores int8 values `q = round(x / s)`
//! and one `f32` scale `s = max|x| / 127`, so `q ∈ [−127, 127]` and `x ≈ q·s`;
//! an all-zero group has `s = 0` and `q = 0`. Rounding follows llama2.c: the
//! weights are rounded half to even ([`Rounding::HalfEven`], PyTorch's
//! `torch.round` in `export.py`), the activations quantized on the fly half
//! away from zero ([`Rounding::HalfAway`], C's `round()` in `runq.c`). The
//! dequantized value `q·s` is within `s/2` of `x` plus the rounding of the
//! division and the product (tested: `s/2 + ulp(x)`).
//!
//! A matrix–vector product `y = W·x` with `W` in Q8_0 quantizes `x` per group
//! too. Each group's `i32` dot is exact; it becomes `f32` and is added as
//! `dot · (s_w · s_x)`, separate multiplications and additions, no fused
//! multiply-add, in one fixed order ([`Backend::raw_q8_dot`]), so `Scalar` and
//! `Simd` give the same bits. On targets with a vector unit a row is summed
//! in 16 lanes — element `i` of a group goes to lane `(i mod 32) / 2`, the
//! pairs an `i16` multiply-add produces (`wide`'s `i16x32::dot`), each lane
//! keeps its own group dots and `f32` sum, and the lanes are added by a
//! halving tree at the end of the row — so that no group is reduced across
//! lanes; on microcontrollers in one lane, groups in order. `runq.c` adds
//! `((float) dot · s_w) · s_x` group after group; the orders differ only by
//! `f32` rounding (tested against a numpy implementation of `runq.c` within
//! 1e-4, and greedy tokens equal to `runq`'s).
//!
//! [`Q8Matrix`] views a tensor over the bytes of a version-2 checkpoint — its
//! int8 values, then its little-endian `f32` scales — with no copy: straight
//! from flash or from a file's buffer, whatever the alignment.
//!
//! ```
//! use constml::models::quant::{dequantize_q8, quantize_q8, Rounding};
//! let x = [0.5f32, -1.0, 0.25, 0.0, 2.0, 1.0, -0.5, 0.125];
//! let (mut q, mut s) = ([0i8; 8], [0.0f32; 2]);
//! quantize_q8(&x, 4, Rounding::HalfEven, &mut q, &mut s)?;
//! assert_eq!(s, [1.0 / 127.0, 2.0 / 127.0]);
//! assert_eq!(q, [64, -127, 32, 0, 127, 64, -32, 8]);
//! let mut back = [0.0f32; 8];
//! dequantize_q8(&q, &s, 4, &mut back)?;
//! assert!((back[0] - 0.5).abs() <= s[0] / 2.0);
//! # Ok::<(), constml::Error>(())
//! ```

use crate::backend::Backend;
use crate::error::{Error, Result, check_len};
use crate::mat::{MatMut, MatRef};

/// The largest magnitude of a quantized value.
pub const Q8_MAX: f32 = 127.0;

/// How a scaled value rounds to an integer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Rounding {
    /// Half to even: `torch.round`, what llama2.c's `export.py` uses for the
    /// weights.
    HalfEven,
    /// Half away from zero: C's `round()`, what llama2.c's `runq.c` uses for
    /// the activations.
    HalfAway,
}

/// The largest group size: a group's `i32` dot stays exact (128² · 2^16 =
/// 2^30).
pub const Q8_MAX_GROUP: usize = 1 << 16;

/// Checks that `gs` is a valid group size for rows of `cols` values: 1 ..=
/// [`Q8_MAX_GROUP`], dividing `cols`.
pub fn check_group(gs: usize, cols: usize) -> Result<()> {
    if gs == 0 || gs > Q8_MAX_GROUP {
        return Err(Error::InvalidParameter {
            what: "Q8_0: group size",
            reason: "must be 1 ..= 65536",
        });
    }
    if !cols.is_multiple_of(gs) {
        return Err(Error::InvalidParameter {
            what: "Q8_0: group size",
            reason: "must divide the row length",
        });
    }
    Ok(())
}

/// `v` (with `|v| ≤ 127` up to one rounding) rounded to an integer in
/// `[−127, 127]` by `rounding`. Exact: `v as i32` truncates toward zero, and
/// `v − t` is exact for these magnitudes.
#[inline(always)]
fn round_q8(v: f32, rounding: Rounding) -> i8 {
    let t = v as i32;
    let frac = v - t as f32;
    let half = frac.abs() == 0.5;
    let away = frac.abs() > 0.5
        || (half
            && match rounding {
                Rounding::HalfAway => true,
                Rounding::HalfEven => t % 2 != 0,
            });
    let r = if away { t + frac.signum() as i32 } else { t };
    r.clamp(-127, 127) as i8
}

/// Quantizes one group: writes `q` (same length as `x`) and returns the scale.
/// `x` must be finite (checked by the callers).
#[inline]
fn quantize_group(x: &[f32], rounding: Rounding, q: &mut [i8]) -> f32 {
    let wmax = x.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let s = wmax / Q8_MAX;
    if s == 0.0 {
        q.fill(0);
        return 0.0;
    }
    for (o, &v) in q.iter_mut().zip(x) {
        *o = round_q8(v / s, rounding);
    }
    s
}

/// Quantizes `x` in groups of `gs` into `q` (`x.len()` values) and `s`
/// (`x.len() / gs` scales). `Err` if `gs` does not divide `x.len()`, the
/// lengths disagree, or a value is not finite (nothing is written then).
pub fn quantize_q8(
    x: &[f32],
    gs: usize,
    rounding: Rounding,
    q: &mut [i8],
    s: &mut [f32],
) -> Result<()> {
    check_group(gs, x.len())?;
    check_len("quantize_q8: q", x.len(), q.len())?;
    check_len("quantize_q8: s", x.len() / gs, s.len())?;
    if x.iter().any(|v| !v.is_finite()) {
        return Err(Error::InvalidParameter {
            what: "quantize_q8: x",
            reason: "a value is not finite",
        });
    }
    for ((xg, qg), sg) in x.chunks_exact(gs).zip(q.chunks_exact_mut(gs)).zip(s) {
        *sg = quantize_group(xg, rounding, qg);
    }
    Ok(())
}

/// `x[i] = q[i] · s[i / gs]` (llama2.c's `dequantize`).
pub fn dequantize_q8(q: &[i8], s: &[f32], gs: usize, x: &mut [f32]) -> Result<()> {
    check_group(gs, q.len())?;
    check_len("dequantize_q8: s", q.len() / gs, s.len())?;
    check_len("dequantize_q8: x", q.len(), x.len())?;
    for ((xg, qg), &sg) in x.chunks_exact_mut(gs).zip(q.chunks_exact(gs)).zip(s) {
        for (o, &v) in xg.iter_mut().zip(qg) {
            *o = v as f32 * sg;
        }
    }
    Ok(())
}

/// Bytes of a `(rows, cols)` Q8_0 tensor in a version-2 checkpoint: the int8
/// values, then one little-endian `f32` scale per group (`None` on overflow).
pub const fn q8_bytes(rows: usize, cols: usize, gs: usize) -> Option<usize> {
    let Some(n) = rows.checked_mul(cols) else {
        return None;
    };
    if gs == 0 {
        return None;
    }
    match (n / gs).checked_mul(4) {
        Some(s) => n.checked_add(s),
        None => None,
    }
}

/// A `(rows, cols)` Q8_0 matrix viewed over bytes: `q` the int8 values (one
/// byte each, two's complement), `s` the little-endian `f32` group scales —
/// the layout of a version-2 checkpoint, any alignment. Scales are checked
/// finite and non-negative when the view is made.
#[derive(Clone, Copy, Debug)]
pub struct Q8Matrix<'a> {
    q: &'a [u8],
    s: &'a [u8],
    rows: usize,
    cols: usize,
    gs: usize,
}

impl<'a> Q8Matrix<'a> {
    /// A view over `q` (`rows·cols` bytes) and `s` (`4·rows·cols/gs` bytes).
    /// `Err` if `gs` does not divide `cols`, a length is off, or a scale is
    /// negative or not finite (zero is valid: an all-zero group).
    pub fn new(q: &'a [u8], s: &'a [u8], rows: usize, cols: usize, gs: usize) -> Result<Self> {
        check_group(gs, cols)?;
        let n = rows.checked_mul(cols).ok_or(Error::InvalidParameter {
            what: "Q8Matrix: shape",
            reason: "rows × cols overflows usize",
        })?;
        check_len("Q8Matrix: values", n, q.len())?;
        let sb = (n / gs).checked_mul(4).ok_or(Error::InvalidParameter {
            what: "Q8Matrix: shape",
            reason: "its size overflows usize",
        })?;
        check_len("Q8Matrix: scales (bytes)", sb, s.len())?;
        for b in s.chunks_exact(4) {
            let v = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            if !(v.is_finite() && v >= 0.0) {
                return Err(Error::Format {
                    what: "Q8_0 tensor",
                    reason: "a scale is negative or not finite",
                });
            }
        }
        Ok(Self {
            q,
            s,
            rows,
            cols,
            gs,
        })
    }

    /// A view over bytes already checked by [`Q8Matrix::new`] (a layer of a
    /// validated [`Q8Layers`](super::Q8Layers)): the scale scan is skipped.
    pub(crate) fn prechecked(bytes: &'a [u8], rows: usize, cols: usize, gs: usize) -> Self {
        debug_assert_eq!(q8_bytes(rows, cols, gs), Some(bytes.len()));
        let (q, s) = bytes.split_at((rows * cols).min(bytes.len()));
        Self {
            q,
            s,
            rows,
            cols,
            gs,
        }
    }

    /// A view over `bytes` laid out as a version-2 tensor (values, then
    /// scales), and the bytes after it.
    pub fn split_from(
        bytes: &'a [u8],
        rows: usize,
        cols: usize,
        gs: usize,
    ) -> Result<(Self, &'a [u8])> {
        check_group(gs, cols)?;
        let total = q8_bytes(rows, cols, gs).ok_or(Error::InvalidParameter {
            what: "Q8Matrix: shape",
            reason: "its size overflows usize",
        })?;
        if bytes.len() < total {
            return Err(Error::Format {
                what: "Q8_0 tensor",
                reason: "the data ends before the tensor does",
            });
        }
        let (t, rest) = bytes.split_at(total);
        let (q, s) = t.split_at(rows * cols);
        Ok((Self::new(q, s, rows, cols, gs)?, rest))
    }

    /// `(rows, cols)`.
    pub fn shape(&self) -> (usize, usize) {
        (self.rows, self.cols)
    }

    /// The group size.
    pub fn group_size(&self) -> usize {
        self.gs
    }

    /// Scale of group `g` (row-major over the whole tensor); `None` past the
    /// last group.
    #[inline]
    pub fn scale(&self, g: usize) -> Option<f32> {
        let b = self.s.get(g.checked_mul(4)?..)?.first_chunk::<4>()?;
        Some(f32::from_le_bytes(*b))
    }

    /// Value `i` (row-major) as an int8; `None` past the last value.
    #[inline]
    pub fn value(&self, i: usize) -> Option<i8> {
        self.q.get(i).map(|&b| b as i8)
    }

    /// Dequantizes row `r` into `out` (`cols` values): `q·s`, as `runq.c`
    /// dequantizes its embedding table.
    pub fn dequantize_row(&self, r: usize, out: &mut [f32]) -> Result<()> {
        if r >= self.rows {
            return Err(Error::OutOfRange {
                what: "Q8Matrix::dequantize_row",
                index: r,
                len: self.rows,
            });
        }
        check_len("Q8Matrix::dequantize_row: out", self.cols, out.len())?;
        let base = r * self.cols;
        for (j, (o, &b)) in out
            .iter_mut()
            .zip(&self.q[base..base + self.cols])
            .enumerate()
        {
            *o = b as i8 as f32 * crate::backend::q8_scale(self.s, (base + j) / self.gs);
        }
        Ok(())
    }
}

/// Caller-provided room for one activation row quantized on the fly: `q`
/// and `s` of at least the longest row's length and its group count.
#[derive(Debug)]
pub struct Q8Scratch<'s> {
    /// Quantized values.
    pub q: &'s mut [i8],
    /// Group scales.
    pub s: &'s mut [f32],
}

/// `y = W·x` for a Q8_0 matrix `W` `(rows, cols)` and an activation `x` already
/// quantized in the same groups (`xq`: `cols` values, `xs`: `cols / gs`
/// scales), each row summed in the module's 16-lane order.
pub fn q8_matvec_with<B: Backend>(
    w: &Q8Matrix<'_>,
    xq: &[i8],
    xs: &[f32],
    y: &mut [f32],
) -> Result<()> {
    let (rows, cols, gs) = (w.rows, w.cols, w.gs);
    check_len("q8_matvec: x values", cols, xq.len())?;
    check_len("q8_matvec: x scales", cols / gs, xs.len())?;
    check_len("q8_matvec: y", rows, y.len())?;
    let ng = cols / gs;
    let row = |r: usize| &w.q[r * cols..(r + 1) * cols];
    let scales = |r: usize| &w.s[4 * r * ng..4 * (r + 1) * ng];
    // Four rows at a time (the same bits as one by one), then the rest.
    let (blocks, tail) = y.as_chunks_mut::<4>();
    for (b, yb) in blocks.iter_mut().enumerate() {
        let r = 4 * b;
        *yb = B::raw_q8_dot4(
            [row(r), row(r + 1), row(r + 2), row(r + 3)],
            [scales(r), scales(r + 1), scales(r + 2), scales(r + 3)],
            xq,
            xs,
            gs,
        );
    }
    let r0 = 4 * blocks.len();
    for (i, yr) in tail.iter_mut().enumerate() {
        *yr = B::raw_q8_dot(row(r0 + i), scales(r0 + i), xq, xs, gs);
    }
    Ok(())
}

/// `y = x·Wᵀ` row by row (`x` `(n, cols)`, `y` `(n, rows)`), each row of `x`
/// quantized on the fly half away from zero into `scratch` — `runq.c`'s
/// `quantize` then `matmul`. `Err` on shapes, a short scratch or a non-finite
/// activation.
pub fn q8_linear_with<B: Backend>(
    w: &Q8Matrix<'_>,
    x: MatRef<'_, f32>,
    mut y: MatMut<'_, f32>,
    scratch: &mut Q8Scratch<'_>,
) -> Result<()> {
    let (rows, cols, gs) = (w.rows, w.cols, w.gs);
    let (n, xc) = x.shape();
    check_len("q8_linear: x columns", cols, xc)?;
    if y.shape() != (n, rows) {
        return Err(Error::ShapeMismatch {
            what: "q8_linear: y",
            expected: (n, rows),
            found: y.shape(),
        });
    }
    let found = scratch.q.len();
    let q = scratch.q.get_mut(..cols).ok_or(Error::BufferTooSmall {
        what: "q8_linear: scratch values",
        needed: cols,
        found,
    })?;
    let found = scratch.s.len();
    let s = scratch
        .s
        .get_mut(..cols / gs)
        .ok_or(Error::BufferTooSmall {
            what: "q8_linear: scratch scales",
            needed: cols / gs,
            found,
        })?;
    for i in 0..n {
        let (Some(xr), Some(yr)) = (x.row(i), y.row_mut(i)) else {
            break; // i < n = rows of both: never taken
        };
        quantize_q8(xr, gs, Rounding::HalfAway, q, s)?;
        q8_matvec_with::<B>(w, q, s, yr)?;
    }
    Ok(())
}
