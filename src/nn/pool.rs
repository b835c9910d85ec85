//! Pooling over `(N, C, H, W)`, PyTorch semantics, forward and backward side
//! by side: max-pool (with the argmax indices its backward needs),
//! average-pool, global average pool.
//!
//! # Output size and ceil mode
//!
//! Per axis, `out = ⌊(L + 2p − k)/s⌋ + 1`; with `ceil_mode` the division
//! rounds up, but a last window that would start at or beyond `L + p` (in
//! the right padding) is dropped, as PyTorch does. Padding must be at most
//! half the kernel.
//!
//! # Max-pool
//!
//! Padding counts as −∞ (never the maximum). The index of each output is the
//! flat position `h·W + w` in its input plane (PyTorch's `return_indices`);
//! among equal values the first in row-major order wins. Backward:
//! `dx[index] += dy`. A NaN in a window makes that output NaN.
//!
//! # Average-pool
//!
//! Each window `start = o·s − p`, `end = min(start + k, L + p)` per axis. The
//! divisor is `(end_h − start_h)·(end_w − start_w)` with
//! `count_include_pad` (the window clipped to the padded extent, as ATen
//! computes it — not `KH·KW` for windows past the padded edge in ceil mode),
//! or the number of input elements in the window without it. Backward
//! spreads `dy/divisor` over the window's input elements.
//!
//! Tested against `torch.nn.functional.max_pool2d` / `avg_pool2d` /
//! `adaptive_avg_pool2d` and autograd (ceil mode, both divisor rules, ties).
//!
//! ```
//! use constml::nn::{max_pool2d_views, Pool2dShape};
//! let x = [1.0f32, 5.0, 2.0, 3.0]; // one 2×2 plane
//! let (mut y, mut idx) = ([0.0f32], [0usize]);
//! max_pool2d_views(&x, &Pool2dShape::new(1, 1, 2, 2, 2, 2), &mut y, &mut idx)?;
//! assert_eq!((y, idx), ([5.0], [1]));
//! # Ok::<(), constml::Error>(())
//! ```

use crate::error::{Error, Result, check_len};
use crate::real::Real;

/// The shape and hyper-parameters of a 2-D pooling.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Pool2dShape {
    /// Batch.
    pub n: usize,
    /// Channels.
    pub c: usize,
    /// Input height.
    pub h: usize,
    /// Input width.
    pub w: usize,
    /// Window `(kh, kw)`.
    pub kernel: (usize, usize),
    /// Stride `(sh, sw)` (PyTorch's default is the kernel).
    pub stride: (usize, usize),
    /// Padding `(ph, pw)`, at most half the kernel.
    pub padding: (usize, usize),
    /// Round the output size up (with PyTorch's last-window rule).
    pub ceil_mode: bool,
}

/// One axis' output length (see the [module docs](self)).
fn pool_out(len: usize, k: usize, s: usize, p: usize, ceil: bool) -> Option<usize> {
    let padded = len.checked_add(p.checked_mul(2)?)?;
    if k == 0 || s == 0 || padded < k {
        return None;
    }
    let span = padded - k;
    let mut out = if ceil { span.div_ceil(s) } else { span / s } + 1;
    // `len + p ≤ padded`: no overflow; a last start past usize is past it too.
    if ceil
        && (out - 1)
            .checked_mul(s)
            .is_none_or(|start| start >= len + p)
    {
        out -= 1;
    }
    Some(out)
}

impl Pool2dShape {
    /// A `kh × kw` window with stride equal to the kernel, no padding.
    pub const fn new(n: usize, c: usize, h: usize, w: usize, kh: usize, kw: usize) -> Self {
        Self {
            n,
            c,
            h,
            w,
            kernel: (kh, kw),
            stride: (kh, kw),
            padding: (0, 0),
            ceil_mode: false,
        }
    }
    /// Sets the stride.
    pub const fn stride(mut self, sh: usize, sw: usize) -> Self {
        self.stride = (sh, sw);
        self
    }
    /// Sets the padding.
    pub const fn padding(mut self, ph: usize, pw: usize) -> Self {
        self.padding = (ph, pw);
        self
    }
    /// Sets ceil mode.
    pub const fn ceil_mode(mut self, on: bool) -> Self {
        self.ceil_mode = on;
        self
    }

    /// `(OH, OW)`, or `Err`: zero kernel or stride, padding over half the
    /// kernel, a window that does not fit.
    pub fn output(&self) -> Result<(usize, usize)> {
        let (kh, kw) = self.kernel;
        // p·2 > k, written so that it cannot overflow.
        if self.padding.0 > kh / 2 || self.padding.1 > kw / 2 {
            return Err(Error::InvalidParameter {
                what: "pool2d: padding",
                reason: "must be at most half the kernel",
            });
        }
        let oh = pool_out(self.h, kh, self.stride.0, self.padding.0, self.ceil_mode);
        let ow = pool_out(self.w, kw, self.stride.1, self.padding.1, self.ceil_mode);
        match (oh, ow) {
            (Some(oh), Some(ow)) => Ok((oh, ow)),
            _ => Err(Error::InvalidParameter {
                what: "pool2d: output size",
                reason: "zero kernel or stride, or the window does not fit the padded input",
            }),
        }
    }

    /// `(N·C·H·W, N·C·OH·OW)` (`Err` on overflow or a bad shape).
    pub fn lens(&self) -> Result<(usize, usize)> {
        let (oh, ow) = self.output()?;
        let planes = self.n.checked_mul(self.c);
        let f = |a: Option<usize>, b: usize, c: usize| a?.checked_mul(b)?.checked_mul(c);
        // The kernels also form `H·W` and `OH·OW` on their own.
        let parts = self.h.checked_mul(self.w).and(oh.checked_mul(ow));
        match (f(planes, self.h, self.w), f(planes, oh, ow), parts) {
            (Some(x), Some(y), Some(_)) => Ok((x, y)),
            _ => Err(Error::InvalidParameter {
                what: "pool2d: shape",
                reason: "sizes overflow usize",
            }),
        }
    }
}

/// The input range `[lo, hi)` of a window along one axis, clipped to the
/// input, and the padded-extent span `end − start` (ATen's divisor factor).
/// Computed in `i128`, where no sum or product of these `usize` values
/// overflows (shapes near `usize::MAX` are valid if absurd); `lo, hi ≤ len`
/// and the span `≤ k` fit back into `usize`.
#[inline]
fn window(o: usize, k: usize, s: usize, p: usize, len: usize) -> (usize, usize, usize) {
    let (o, k, s, p, len) = (o as i128, k as i128, s as i128, p as i128, len as i128);
    let start = o * s - p;
    let end = (start + k).min(len + p);
    let lo = start.clamp(0, len);
    let hi = end.clamp(lo, len);
    (lo as usize, hi as usize, (end - start).clamp(0, k) as usize)
}

/// The average's divisor: the padded window (`count_include_pad`) or the
/// input elements it covers, as `T` (a product of two spans can exceed
/// `usize`); `None` for an empty window.
#[inline]
fn divisor<T: Real>(
    include_pad: bool,
    spans: (usize, usize),
    rows: usize,
    cols: usize,
) -> Option<T> {
    let (a, b) = if include_pad { spans } else { (rows, cols) };
    (a > 0 && b > 0).then(|| T::from_usize(a) * T::from_usize(b))
}

/// Max-pool forward: `y` and `indices` `(N, C, OH, OW)`; each index is the
/// flat position `h·W + w` of the maximum in its input plane.
pub fn max_pool2d_views<T: Real>(
    x: &[T],
    shape: &Pool2dShape,
    y: &mut [T],
    indices: &mut [usize],
) -> Result<()> {
    let (oh, ow) = shape.output()?;
    let (lx, ly) = shape.lens()?;
    check_len("max_pool2d: x", lx, x.len())?;
    check_len("max_pool2d: y", ly, y.len())?;
    check_len("max_pool2d: indices", ly, indices.len())?;
    let (h, w) = (shape.h, shape.w);
    let (kh, kw) = shape.kernel;
    for pl in 0..shape.n * shape.c {
        let xp = &x[pl * h * w..(pl + 1) * h * w];
        for i in 0..oh {
            let (r0, r1, _) = window(i, kh, shape.stride.0, shape.padding.0, h);
            for j in 0..ow {
                let (c0, c1, _) = window(j, kw, shape.stride.1, shape.padding.1, w);
                let mut best = T::NEG_INFINITY;
                let mut at = r0 * w + c0;
                'win: for r in r0..r1 {
                    for c in c0..c1 {
                        let v = xp[r * w + c];
                        if v.is_nan() {
                            best = v;
                            at = r * w + c;
                            break 'win;
                        }
                        if v > best {
                            best = v;
                            at = r * w + c;
                        }
                    }
                }
                let o = (pl * oh + i) * ow + j;
                y[o] = best;
                indices[o] = at;
            }
        }
    }
    Ok(())
}

/// Max-pool backward: `dx` (written) gets each `dy` at its `indices` entry.
pub fn max_pool2d_backward_views<T: Real>(
    shape: &Pool2dShape,
    dy: &[T],
    indices: &[usize],
    dx: &mut [T],
) -> Result<()> {
    let (oh, ow) = shape.output()?;
    let (lx, ly) = shape.lens()?;
    check_len("max_pool2d backward: dy", ly, dy.len())?;
    check_len("max_pool2d backward: indices", ly, indices.len())?;
    check_len("max_pool2d backward: dx", lx, dx.len())?;
    let plane = shape.h * shape.w;
    if let Some(&bad) = indices.iter().find(|&&i| i >= plane) {
        return Err(Error::OutOfRange {
            what: "max_pool2d backward: index",
            index: bad,
            len: plane,
        });
    }
    dx.fill(T::ZERO);
    for (o, (&g, &i)) in dy.iter().zip(indices).enumerate() {
        let pl = o / (oh * ow).max(1);
        dx[pl * plane + i] += g;
    }
    Ok(())
}

/// Average-pool forward (see the [module docs](self) for the divisor).
pub fn avg_pool2d_views<T: Real>(
    x: &[T],
    shape: &Pool2dShape,
    count_include_pad: bool,
    y: &mut [T],
) -> Result<()> {
    let (oh, ow) = shape.output()?;
    let (lx, ly) = shape.lens()?;
    check_len("avg_pool2d: x", lx, x.len())?;
    check_len("avg_pool2d: y", ly, y.len())?;
    let (h, w) = (shape.h, shape.w);
    let (kh, kw) = shape.kernel;
    for pl in 0..shape.n * shape.c {
        let xp = &x[pl * h * w..(pl + 1) * h * w];
        for i in 0..oh {
            let (r0, r1, sh) = window(i, kh, shape.stride.0, shape.padding.0, h);
            for j in 0..ow {
                let (c0, c1, sw) = window(j, kw, shape.stride.1, shape.padding.1, w);
                let mut s = T::ZERO;
                for r in r0..r1 {
                    for &v in &xp[r * w + c0..r * w + c1] {
                        s += v;
                    }
                }
                let div = divisor::<T>(count_include_pad, (sh, sw), r1 - r0, c1 - c0);
                y[(pl * oh + i) * ow + j] = div.map_or(T::ZERO, |d| s / d);
            }
        }
    }
    Ok(())
}

/// Average-pool backward: `dx` (written) gets `dy/divisor` over each window.
pub fn avg_pool2d_backward_views<T: Real>(
    shape: &Pool2dShape,
    count_include_pad: bool,
    dy: &[T],
    dx: &mut [T],
) -> Result<()> {
    let (oh, ow) = shape.output()?;
    let (lx, ly) = shape.lens()?;
    check_len("avg_pool2d backward: dy", ly, dy.len())?;
    check_len("avg_pool2d backward: dx", lx, dx.len())?;
    let (h, w) = (shape.h, shape.w);
    let (kh, kw) = shape.kernel;
    dx.fill(T::ZERO);
    for pl in 0..shape.n * shape.c {
        for i in 0..oh {
            let (r0, r1, sh) = window(i, kh, shape.stride.0, shape.padding.0, h);
            for j in 0..ow {
                let (c0, c1, sw) = window(j, kw, shape.stride.1, shape.padding.1, w);
                let Some(div) = divisor::<T>(count_include_pad, (sh, sw), r1 - r0, c1 - c0) else {
                    continue;
                };
                let g = dy[(pl * oh + i) * ow + j] / div;
                for r in r0..r1 {
                    for v in &mut dx[pl * h * w + r * w + c0..pl * h * w + r * w + c1] {
                        *v += g;
                    }
                }
            }
        }
    }
    Ok(())
}

/// Global average pool: `y[n, c]` = the mean of plane `(n, c)`; `x` holds
/// `planes` planes of `plane` elements each.
pub fn global_avg_pool_views<T: Real>(
    x: &[T],
    planes: usize,
    plane: usize,
    y: &mut [T],
) -> Result<()> {
    check_len("global_avg_pool: y", planes, y.len())?;
    check_len("global_avg_pool: x", planes.saturating_mul(plane), x.len())?;
    if plane == 0 {
        return Err(Error::Empty {
            what: "global_avg_pool: plane",
        });
    }
    for (yv, xp) in y.iter_mut().zip(x.chunks_exact(plane)) {
        *yv = xp.iter().fold(T::ZERO, |a, &b| a + b) / T::from_usize(plane);
    }
    Ok(())
}

/// Global average pool backward: `dx` (written) gets `dy/plane` everywhere.
pub fn global_avg_pool_backward_views<T: Real>(dy: &[T], plane: usize, dx: &mut [T]) -> Result<()> {
    check_len(
        "global_avg_pool backward: dx",
        dy.len().saturating_mul(plane),
        dx.len(),
    )?;
    if plane == 0 {
        return Err(Error::Empty {
            what: "global_avg_pool: plane",
        });
    }
    for (&g, d) in dy.iter().zip(dx.chunks_exact_mut(plane)) {
        d.fill(g / T::from_usize(plane));
    }
    Ok(())
}
