//! 2-D convolution, PyTorch `nn.Conv2d` semantics, forward and backward side
//! by side.
//!
//! # Layout and formula
//!
//! Input `x` `(N, C_IN, H, W)`, weight `(C_OUT, C_IN/groups, KH, KW)`, bias
//! `C_OUT`, output `(N, C_OUT, OH, OW)`, all row-major. A cross-correlation:
//!
//! ```text
//! y[n, o, i, j] = b[o] + Σ_{c, p, q} x[n, g·C_IN/groups + c, i·sh − ph + p·dh, j·sw − pw + q·dw] · w[o, c, p, q]
//! ```
//!
//! with `g = o / (C_OUT/groups)` the group of output channel `o`, zero
//! padding outside the input, and `OH = ⌊(H + 2ph − dh·(KH − 1) − 1)/sh⌋ + 1`
//! ([`conv_out_len`]; likewise `OW`). Depthwise convolution is `groups =
//! C_IN`.
//!
//! # Kernels
//!
//! * Direct ([`conv2d_views_with`]): for each output channel and input
//!   channel of its group and each kernel tap, a row of outputs gets a scaled
//!   row of inputs — an `axpy` over contiguous memory when the stride is 1.
//! * im2col + gemm ([`conv2d_im2col_views_with`]): the receptive fields of
//!   one image and group are unrolled into a caller-provided scratch
//!   ([`conv2d_im2col_scratch_len`]) and multiplied by the weights in one
//!   matrix product. Both agree to rounding (tested).
//!
//! Backward ([`conv2d_backward_views_with`]): `dx` is written, `dW` and `db`
//! accumulate.
//!
//! Errors: an output size that would be zero or negative, groups that do not
//! divide both channel counts, a zero stride or dilation, lengths that do not
//! match the shape — all checked before anything is written.
//!
//! Tested against `torch.nn.functional.conv2d` and autograd (stride 1/2 ×
//! padding 0/1 × dilation 1/2, two groups with a non-square kernel,
//! depthwise, 1×1 without bias), f32 and f64, both backends.
//!
//! ```
//! use constml::nn::{conv2d_views, Conv2dShape};
//! // One 3×3 image, one 2×2 kernel of ones: sums of 2×2 windows.
//! let x: Vec<f32> = (1..=9).map(|v| v as f32).collect();
//! let shape = Conv2dShape::new(1, 1, 3, 3, 1, 2, 2);
//! let mut y = [0.0f32; 4];
//! conv2d_views(&x, &shape, &[1.0; 4], None, &mut y)?;
//! assert_eq!(y, [12.0, 16.0, 24.0, 28.0]);
//! # Ok::<(), constml::Error>(())
//! ```

use crate::backend::{Accumulate, Backend};
use crate::error::{Error, Result, check_len};
use crate::mat::{MatMut, MatRef};
use crate::real::Real;

/// Output length of a convolution or pooling window along one axis:
/// `⌊(len + 2·pad − dil·(k − 1) − 1)/stride⌋ + 1`, or `None` when that is not
/// at least 1 (or `stride`, `dil` or `k` is 0).
pub const fn conv_out_len(
    len: usize,
    k: usize,
    stride: usize,
    pad: usize,
    dil: usize,
) -> Option<usize> {
    if k == 0 || stride == 0 || dil == 0 {
        return None;
    }
    let span = match dil.checked_mul(k - 1) {
        Some(s) => s + 1,
        None => return None,
    };
    let padded = match pad.checked_mul(2) {
        Some(p2) => match len.checked_add(p2) {
            Some(p) => p,
            None => return None,
        },
        None => return None,
    };
    if padded < span {
        return None;
    }
    Some((padded - span) / stride + 1)
}

/// The shape and hyper-parameters of a convolution.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Conv2dShape {
    /// Batch `N`.
    pub n: usize,
    /// Input channels.
    pub c_in: usize,
    /// Input height.
    pub h: usize,
    /// Input width.
    pub w: usize,
    /// Output channels.
    pub c_out: usize,
    /// Kernel height.
    pub kh: usize,
    /// Kernel width.
    pub kw: usize,
    /// Stride `(sh, sw)`.
    pub stride: (usize, usize),
    /// Zero padding `(ph, pw)`.
    pub padding: (usize, usize),
    /// Dilation `(dh, dw)`.
    pub dilation: (usize, usize),
    /// Groups (divides both channel counts).
    pub groups: usize,
}

impl Conv2dShape {
    /// Stride 1, no padding, dilation 1, one group.
    pub const fn new(
        n: usize,
        c_in: usize,
        h: usize,
        w: usize,
        c_out: usize,
        kh: usize,
        kw: usize,
    ) -> Self {
        Self {
            n,
            c_in,
            h,
            w,
            c_out,
            kh,
            kw,
            stride: (1, 1),
            padding: (0, 0),
            dilation: (1, 1),
            groups: 1,
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
    /// Sets the dilation.
    pub const fn dilation(mut self, dh: usize, dw: usize) -> Self {
        self.dilation = (dh, dw);
        self
    }
    /// Sets the groups.
    pub const fn groups(mut self, g: usize) -> Self {
        self.groups = g;
        self
    }

    /// `(OH, OW)`, or `Err` for a shape that cannot work: zero stride or
    /// dilation, groups that do not divide the channels, an output of size 0.
    pub fn output(&self) -> Result<(usize, usize)> {
        let bad = |what, reason| Err(Error::InvalidParameter { what, reason });
        if self.stride.0 == 0 || self.stride.1 == 0 {
            return bad("conv2d: stride", "must be at least 1");
        }
        if self.dilation.0 == 0 || self.dilation.1 == 0 {
            return bad("conv2d: dilation", "must be at least 1");
        }
        if self.groups == 0
            || !self.c_in.is_multiple_of(self.groups)
            || !self.c_out.is_multiple_of(self.groups)
        {
            return bad("conv2d: groups", "must divide both channel counts");
        }
        let oh = conv_out_len(
            self.h,
            self.kh,
            self.stride.0,
            self.padding.0,
            self.dilation.0,
        );
        let ow = conv_out_len(
            self.w,
            self.kw,
            self.stride.1,
            self.padding.1,
            self.dilation.1,
        );
        match (oh, ow) {
            (Some(oh), Some(ow)) => Ok((oh, ow)),
            _ => bad(
                "conv2d: output size",
                "the kernel does not fit the padded input",
            ),
        }
    }

    /// Elements of `x`, the weight, and `y` (`Err` on overflow or a bad shape).
    pub fn lens(&self) -> Result<(usize, usize, usize)> {
        let (oh, ow) = self.output()?;
        let prod = |v: &[usize]| {
            v.iter()
                .try_fold(1usize, |a, &b| a.checked_mul(b))
                .ok_or(Error::InvalidParameter {
                    what: "conv2d: shape",
                    reason: "sizes overflow usize",
                })
        };
        // The kernels also form these partial products, even when a zero
        // batch or channel count makes the totals 0.
        prod(&[self.h, self.w])?;
        prod(&[oh, ow])?;
        prod(&[self.c_in / self.groups, self.kh, self.kw])?;
        Ok((
            prod(&[self.n, self.c_in, self.h, self.w])?,
            prod(&[self.c_out, self.c_in / self.groups, self.kh, self.kw])?,
            prod(&[self.n, self.c_out, oh, ow])?,
        ))
    }
}

/// The output columns `j0..j1` (of `out`) whose input position
/// `j·s + off − p` lies inside `0..len`.
#[inline]
fn valid_cols(out: usize, len: usize, s: usize, p: usize, off: usize) -> (usize, usize) {
    // input = j·s + off − p must satisfy 0 ≤ input < len.
    let lo = if off >= p { 0 } else { (p - off).div_ceil(s) };
    let hi = if len + p > off {
        (len + p - off).div_ceil(s).min(out)
    } else {
        0
    };
    (lo.min(hi), hi)
}

/// One kernel tap applied to one output row: output row `i`, output columns
/// `j0..j1` read input row `ih` of channel `c` (within the group) from column
/// `iw0` on, every `stride.1`-th element. `k = (c·KH + p)·KW + q` indexes the
/// tap within a group's weight row (and the unrolled im2col row).
#[derive(Clone, Copy)]
struct Tap {
    c: usize,
    k: usize,
    i: usize,
    ih: usize,
    iw0: usize,
    j0: usize,
    j1: usize,
}

/// Calls `f` for every tap and output row where the tap reads inside the
/// image (padding contributes nothing), in the order channel, kernel row,
/// kernel column, output row.
#[inline]
fn for_each_tap(s: &Conv2dShape, oh: usize, ow: usize, mut f: impl FnMut(Tap)) {
    for c in 0..s.c_in / s.groups {
        for p in 0..s.kh {
            let (i0, i1) = valid_cols(oh, s.h, s.stride.0, s.padding.0, p * s.dilation.0);
            for q in 0..s.kw {
                let (j0, j1) = valid_cols(ow, s.w, s.stride.1, s.padding.1, q * s.dilation.1);
                if j0 >= j1 {
                    continue;
                }
                let k = (c * s.kh + p) * s.kw + q;
                let iw0 = j0 * s.stride.1 + q * s.dilation.1 - s.padding.1;
                for i in i0..i1 {
                    let ih = i * s.stride.0 + p * s.dilation.0 - s.padding.0;
                    f(Tap {
                        c,
                        k,
                        i,
                        ih,
                        iw0,
                        j0,
                        j1,
                    });
                }
            }
        }
    }
}

fn check_io<T>(
    shape: &Conv2dShape,
    x: usize,
    weight: usize,
    bias: Option<&[T]>,
    y: usize,
) -> Result<(usize, usize)> {
    let (oh, ow) = shape.output()?;
    let (lx, lw, ly) = shape.lens()?;
    check_len("conv2d: x", lx, x)?;
    check_len("conv2d: weight", lw, weight)?;
    check_len("conv2d: y", ly, y)?;
    if let Some(b) = bias {
        check_len("conv2d: bias", shape.c_out, b.len())?;
    }
    Ok((oh, ow))
}

/// Checks the backward pass's gradient buffers against the shape.
fn check_grads<T>(
    shape: &Conv2dShape,
    x: &[T],
    weight: &[T],
    dy: &[T],
    dx: Option<&[T]>,
    dweight: Option<&[T]>,
    dbias: Option<&[T]>,
) -> Result<(usize, usize)> {
    let out = check_io::<T>(shape, x.len(), weight.len(), None, dy.len())?;
    if let Some(d) = dx {
        check_len("conv2d backward: dx", x.len(), d.len())?;
    }
    if let Some(d) = dweight {
        check_len("conv2d backward: dweight", weight.len(), d.len())?;
    }
    if let Some(d) = dbias {
        check_len("conv2d backward: dbias", shape.c_out, d.len())?;
    }
    Ok(out)
}

crate::simd_default!(conv2d_views => conv2d_views_with<T: Real>(x: &[T], shape: &Conv2dShape, weight: &[T], bias: Option<&[T]>, y: &mut [T]) -> Result<()>);

/// Direct convolution (see the [module docs](self)); `y` is written.
pub fn conv2d_views_with<B: Backend, T: Real>(
    x: &[T],
    shape: &Conv2dShape,
    weight: &[T],
    bias: Option<&[T]>,
    y: &mut [T],
) -> Result<()> {
    let (oh, ow) = check_io(shape, x.len(), weight.len(), bias, y.len())?;
    let s = shape;
    let (cig, cog) = (s.c_in / s.groups, s.c_out / s.groups);
    let (plane, hw, kk) = (oh * ow, s.h * s.w, cig * s.kh * s.kw);
    for n in 0..s.n {
        for o in 0..s.c_out {
            let g = o / cog.max(1);
            let xg = &x[(n * s.c_in + g * cig) * hw..(n * s.c_in + (g + 1) * cig) * hw];
            let wo = &weight[o * kk..(o + 1) * kk];
            let yo = &mut y[(n * s.c_out + o) * plane..(n * s.c_out + o + 1) * plane];
            yo.fill(bias.map_or(T::ZERO, |b| b[o]));
            for_each_tap(s, oh, ow, |t| {
                let (wv, len) = (wo[t.k], t.j1 - t.j0);
                let xrow = &xg[t.c * hw + t.ih * s.w..t.c * hw + (t.ih + 1) * s.w];
                let yrow = &mut yo[t.i * ow + t.j0..t.i * ow + t.j1];
                if s.stride.1 == 1 {
                    B::raw_axpy(wv, &xrow[t.iw0..t.iw0 + len], yrow);
                } else {
                    for (yv, &xv) in yrow
                        .iter_mut()
                        .zip(xrow[t.iw0..].iter().step_by(s.stride.1))
                    {
                        *yv += wv * xv;
                    }
                }
            });
        }
    }
    Ok(())
}

/// Scratch elements the im2col paths need: one group's unrolled receptive
/// fields, `(C_IN/groups·KH·KW) × (OH·OW)` (saturating); 0 for a 1×1,
/// stride-1, unpadded convolution (its input is already unrolled) and for a
/// bad shape.
pub fn conv2d_im2col_scratch_len(shape: &Conv2dShape) -> usize {
    match shape.output() {
        Ok(_) if is_pointwise(shape) => 0,
        Ok((oh, ow)) => im2col_len(shape.c_in / shape.groups, shape.kh, shape.kw, oh, ow),
        Err(_) => 0,
    }
}

/// [`conv2d_im2col_scratch_len`] as a `const fn` of the const face's
/// parameters: `CIG·KH·KW·OH·OW` (saturating), for a scratch array
/// `[T; im2col_len(CIG, KH, KW, OH, OW)]`.
pub const fn im2col_len(cig: usize, kh: usize, kw: usize, oh: usize, ow: usize) -> usize {
    cig.saturating_mul(kh)
        .saturating_mul(kw)
        .saturating_mul(oh.saturating_mul(ow))
}

/// The scratch prefix the im2col paths use, or `BufferTooSmall`.
fn col_scratch<'s, T>(shape: &Conv2dShape, scratch: &'s mut [T]) -> Result<&'s mut [T]> {
    let need = conv2d_im2col_scratch_len(shape);
    let found = scratch.len();
    scratch.get_mut(..need).ok_or(Error::BufferTooSmall {
        what: "conv2d: im2col scratch",
        needed: need,
        found,
    })
}

/// Unrolls the receptive fields of one group's input channels `xg`
/// (`C_IN/groups` planes) into `col` `(C_IN/groups·KH·KW, OH·OW)`: row `k`
/// holds tap `k`'s input under every output position, 0 in the padding.
fn im2col<T: Real>(xg: &[T], s: &Conv2dShape, oh: usize, ow: usize, col: &mut [T]) {
    let (plane, hw) = (oh * ow, s.h * s.w);
    if s.padding != (0, 0) {
        col.fill(T::ZERO); // without padding every entry is written below
    }
    for_each_tap(s, oh, ow, |t| {
        let dst = &mut col[t.k * plane + t.i * ow + t.j0..t.k * plane + t.i * ow + t.j1];
        let src = &xg[t.c * hw + t.ih * s.w + t.iw0..t.c * hw + (t.ih + 1) * s.w];
        if s.stride.1 == 1 {
            dst.copy_from_slice(&src[..dst.len()]);
        } else {
            for (d, &v) in dst.iter_mut().zip(src.iter().step_by(s.stride.1)) {
                *d = v;
            }
        }
    });
}

/// The adjoint of [`im2col`]: adds each unrolled entry of `col` back onto
/// the input position it was read from, in `dxg`.
fn col2im_add<B: Backend, T: Real>(
    col: &[T],
    s: &Conv2dShape,
    oh: usize,
    ow: usize,
    dxg: &mut [T],
) {
    let (plane, hw) = (oh * ow, s.h * s.w);
    for_each_tap(s, oh, ow, |t| {
        let src = &col[t.k * plane + t.i * ow + t.j0..t.k * plane + t.i * ow + t.j1];
        let dst = &mut dxg[t.c * hw + t.ih * s.w + t.iw0..t.c * hw + (t.ih + 1) * s.w];
        if s.stride.1 == 1 {
            B::raw_zip(&mut dst[..src.len()], src, false);
        } else {
            for (d, &v) in dst.iter_mut().step_by(s.stride.1).zip(src) {
                *d += v;
            }
        }
    });
}

/// A 1×1, stride-1, unpadded convolution reads its input planes as they
/// are: the im2col matrix is the input itself.
fn is_pointwise(s: &Conv2dShape) -> bool {
    s.kh == 1 && s.kw == 1 && s.stride == (1, 1) && s.padding == (0, 0)
}

crate::simd_default!(conv2d_im2col_views => conv2d_im2col_views_with<T: Real>(x: &[T], shape: &Conv2dShape, weight: &[T], bias: Option<&[T]>, y: &mut [T], scratch: &mut [T]) -> Result<()>);

/// Convolution by im2col + gemm, with `scratch` of at least
/// [`conv2d_im2col_scratch_len`] elements (none for a 1×1, stride-1,
/// unpadded convolution, which multiplies the input directly); `y` is
/// written.
pub fn conv2d_im2col_views_with<B: Backend, T: Real>(
    x: &[T],
    shape: &Conv2dShape,
    weight: &[T],
    bias: Option<&[T]>,
    y: &mut [T],
    scratch: &mut [T],
) -> Result<()> {
    let (oh, ow) = check_io(shape, x.len(), weight.len(), bias, y.len())?;
    let col = col_scratch(shape, scratch)?;
    let s = shape;
    let (cig, cog) = (s.c_in / s.groups, s.c_out / s.groups);
    let (plane, hw, kk) = (oh * ow, s.h * s.w, cig * s.kh * s.kw);
    for n in 0..s.n {
        for g in 0..s.groups {
            let xg = &x[(n * s.c_in + g * cig) * hw..(n * s.c_in + (g + 1) * cig) * hw];
            let yg = &mut y[(n * s.c_out + g * cog) * plane..(n * s.c_out + (g + 1) * cog) * plane];
            let acc = match bias {
                Some(b) => {
                    for (yo, &bo) in yg.chunks_exact_mut(plane).zip(&b[g * cog..]) {
                        yo.fill(bo);
                    }
                    Accumulate::Add
                }
                None => Accumulate::Overwrite,
            };
            let cm = if is_pointwise(s) {
                MatRef::new(xg, kk, plane)?
            } else {
                im2col(xg, s, oh, ow, col);
                MatRef::new(col, kk, plane)?
            };
            let wg = MatRef::new(&weight[g * cog * kk..(g + 1) * cog * kk], cog, kk)?;
            B::raw_gemm(wg, cm, MatMut::new(yg, cog, plane)?, acc);
        }
    }
    Ok(())
}

impl Conv2dShape {
    /// Whether [`conv2d_auto_views_with`] takes the im2col + gemm path for
    /// this shape (given enough scratch): when the matrix product has at
    /// least four output channels per group to share each unrolled column
    /// (measured in `benches/conv.rs`: below that — depthwise above all — the
    /// direct kernel's row updates cost less than unrolling).
    pub fn prefers_im2col(&self) -> bool {
        self.groups > 0 && self.c_out / self.groups >= 4
    }
}

crate::simd_default!(conv2d_auto_views => conv2d_auto_views_with<T: Real>(x: &[T], shape: &Conv2dShape, weight: &[T], bias: Option<&[T]>, y: &mut [T], scratch: &mut [T]) -> Result<()>);

/// Convolution by the path that is faster for this shape: im2col + gemm when
/// [`Conv2dShape::prefers_im2col`] and `scratch` holds
/// [`conv2d_im2col_scratch_len`] elements, the direct kernel otherwise (so
/// an empty `scratch` always works). Both paths agree to rounding.
pub fn conv2d_auto_views_with<B: Backend, T: Real>(
    x: &[T],
    shape: &Conv2dShape,
    weight: &[T],
    bias: Option<&[T]>,
    y: &mut [T],
    scratch: &mut [T],
) -> Result<()> {
    if shape.prefers_im2col() && scratch.len() >= conv2d_im2col_scratch_len(shape) {
        conv2d_im2col_views_with::<B, T>(x, shape, weight, bias, y, scratch)
    } else {
        conv2d_views_with::<B, T>(x, shape, weight, bias, y)
    }
}

crate::simd_default!(conv2d_auto_backward_views => conv2d_auto_backward_views_with<T: Real>(x: &[T], shape: &Conv2dShape, weight: &[T], dy: &[T], dx: Option<&mut [T]>, dweight: Option<&mut [T]>, dbias: Option<&mut [T]>, scratch: &mut [T]) -> Result<()>);

/// Convolution backward by the faster path: im2col + gemm whenever `scratch`
/// holds [`conv2d_im2col_scratch_len`] elements (with the Simd backend it
/// beat the direct kernel on every shape measured in `benches/conv.rs`,
/// depthwise included), the direct kernel otherwise.
#[allow(clippy::too_many_arguments)]
pub fn conv2d_auto_backward_views_with<B: Backend, T: Real>(
    x: &[T],
    shape: &Conv2dShape,
    weight: &[T],
    dy: &[T],
    dx: Option<&mut [T]>,
    dweight: Option<&mut [T]>,
    dbias: Option<&mut [T]>,
    scratch: &mut [T],
) -> Result<()> {
    if shape.output().is_ok() && scratch.len() >= conv2d_im2col_scratch_len(shape) {
        conv2d_im2col_backward_views_with::<B, T>(x, shape, weight, dy, dx, dweight, dbias, scratch)
    } else {
        conv2d_backward_views_with::<B, T>(x, shape, weight, dy, dx, dweight, dbias)
    }
}

crate::simd_default!(conv2d_backward_views => conv2d_backward_views_with<T: Real>(x: &[T], shape: &Conv2dShape, weight: &[T], dy: &[T], dx: Option<&mut [T]>, dweight: Option<&mut [T]>, dbias: Option<&mut [T]>) -> Result<()>);

/// Convolution backward (direct): writes `dx` `(N, C_IN, H, W)`; adds into
/// `dweight` (the weight's shape) and `dbias` (`C_OUT`). Everything is
/// checked before anything is written.
#[allow(clippy::too_many_arguments)]
pub fn conv2d_backward_views_with<B: Backend, T: Real>(
    x: &[T],
    shape: &Conv2dShape,
    weight: &[T],
    dy: &[T],
    mut dx: Option<&mut [T]>,
    mut dweight: Option<&mut [T]>,
    mut dbias: Option<&mut [T]>,
) -> Result<()> {
    let (oh, ow) = check_grads(
        shape,
        x,
        weight,
        dy,
        dx.as_deref(),
        dweight.as_deref(),
        dbias.as_deref(),
    )?;
    let s = shape;
    let (cig, cog) = (s.c_in / s.groups, s.c_out / s.groups);
    let (plane, hw, kk) = (oh * ow, s.h * s.w, cig * s.kh * s.kw);
    if let Some(d) = dx.as_deref_mut() {
        d.fill(T::ZERO);
    }
    for n in 0..s.n {
        for o in 0..s.c_out {
            let g = o / cog.max(1);
            let gx = (n * s.c_in + g * cig) * hw..(n * s.c_in + (g + 1) * cig) * hw;
            let xg = &x[gx.clone()];
            let go = &dy[(n * s.c_out + o) * plane..(n * s.c_out + o + 1) * plane];
            if let Some(db) = dbias.as_deref_mut() {
                db[o] += B::sum(go);
            }
            let wo = &weight[o * kk..(o + 1) * kk];
            let mut dxg = dx.as_deref_mut().map(|d| &mut d[gx]);
            let mut dwo = dweight.as_deref_mut().map(|d| &mut d[o * kk..(o + 1) * kk]);
            for_each_tap(s, oh, ow, |t| {
                let grow = &go[t.i * ow + t.j0..t.i * ow + t.j1];
                let base = t.c * hw + t.ih * s.w + t.iw0;
                let end = t.c * hw + (t.ih + 1) * s.w;
                if s.stride.1 == 1 {
                    let xs = &xg[base..base + grow.len()];
                    if let Some(dw) = dwo.as_deref_mut() {
                        dw[t.k] += B::raw_dot(grow, xs);
                    }
                    if let Some(d) = dxg.as_deref_mut() {
                        B::raw_axpy(wo[t.k], grow, &mut d[base..base + grow.len()]);
                    }
                } else {
                    if let Some(dw) = dwo.as_deref_mut() {
                        let xs = xg[base..end].iter().step_by(s.stride.1);
                        dw[t.k] += grow.iter().zip(xs).fold(T::ZERO, |a, (&g, &v)| a + g * v);
                    }
                    if let Some(d) = dxg.as_deref_mut() {
                        for (dv, &gv) in d[base..end].iter_mut().step_by(s.stride.1).zip(grow) {
                            *dv += wo[t.k] * gv;
                        }
                    }
                }
            });
        }
    }
    Ok(())
}

crate::simd_default!(conv2d_im2col_backward_views => conv2d_im2col_backward_views_with<T: Real>(x: &[T], shape: &Conv2dShape, weight: &[T], dy: &[T], dx: Option<&mut [T]>, dweight: Option<&mut [T]>, dbias: Option<&mut [T]>, scratch: &mut [T]) -> Result<()>);

/// Convolution backward by im2col + gemm, with `scratch` of at least
/// [`conv2d_im2col_scratch_len`] elements: per image and group,
/// `dW += dY·colᵀ`, then `dcol = Wᵀ·dY` added back onto `dx` (the adjoint
/// of the unrolling). Writes `dx`; adds into `dweight` and `dbias`; agrees
/// with [`conv2d_backward_views_with`] to rounding.
#[allow(clippy::too_many_arguments)]
pub fn conv2d_im2col_backward_views_with<B: Backend, T: Real>(
    x: &[T],
    shape: &Conv2dShape,
    weight: &[T],
    dy: &[T],
    mut dx: Option<&mut [T]>,
    mut dweight: Option<&mut [T]>,
    mut dbias: Option<&mut [T]>,
    scratch: &mut [T],
) -> Result<()> {
    let (oh, ow) = check_grads(
        shape,
        x,
        weight,
        dy,
        dx.as_deref(),
        dweight.as_deref(),
        dbias.as_deref(),
    )?;
    let col = col_scratch(shape, scratch)?;
    let s = shape;
    let (cig, cog) = (s.c_in / s.groups, s.c_out / s.groups);
    let (plane, hw, kk) = (oh * ow, s.h * s.w, cig * s.kh * s.kw);
    if let Some(d) = dx.as_deref_mut() {
        d.fill(T::ZERO);
    }
    for n in 0..s.n {
        for g in 0..s.groups {
            let gx = (n * s.c_in + g * cig) * hw..(n * s.c_in + (g + 1) * cig) * hw;
            let dyg = &dy[(n * s.c_out + g * cog) * plane..(n * s.c_out + (g + 1) * cog) * plane];
            let dyg = MatRef::new(dyg, cog, plane)?;
            if let Some(db) = dbias.as_deref_mut() {
                for (o, d) in db[g * cog..(g + 1) * cog].iter_mut().enumerate() {
                    *d += B::sum(dyg.row_or_empty(o));
                }
            }
            let wg = &weight[g * cog * kk..(g + 1) * cog * kk];
            if let Some(dw) = dweight.as_deref_mut() {
                let dwg = MatMut::new(&mut dw[g * cog * kk..(g + 1) * cog * kk], cog, kk)?;
                let cm = if is_pointwise(s) {
                    MatRef::new(&x[gx.clone()], kk, plane)?
                } else {
                    im2col(&x[gx.clone()], s, oh, ow, col);
                    MatRef::new(col, kk, plane)?
                };
                B::raw_gemm_bt(dyg, cm, dwg, Accumulate::Add);
            }
            if let Some(d) = dx.as_deref_mut() {
                let wg = MatRef::new(wg, cog, kk)?;
                if is_pointwise(s) {
                    B::raw_gemm_at(
                        wg,
                        dyg,
                        MatMut::new(&mut d[gx], kk, plane)?,
                        Accumulate::Add,
                    );
                } else {
                    B::raw_gemm_at(wg, dyg, MatMut::new(col, kk, plane)?, Accumulate::Overwrite);
                    col2im_add::<B, T>(col, s, oh, ow, &mut d[gx]);
                }
            }
        }
    }
    Ok(())
}

/// Stride, padding and dilation of the const-generic face (shapes come from
/// the array types).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Conv2dParams {
    /// Stride `(sh, sw)`.
    pub stride: (usize, usize),
    /// Zero padding `(ph, pw)`.
    pub padding: (usize, usize),
    /// Dilation `(dh, dw)`.
    pub dilation: (usize, usize),
}

impl Default for Conv2dParams {
    fn default() -> Self {
        Self::new()
    }
}

impl Conv2dParams {
    /// Stride 1, no padding, dilation 1.
    pub const fn new() -> Self {
        Self {
            stride: (1, 1),
            padding: (0, 0),
            dilation: (1, 1),
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
    /// Sets the dilation.
    pub const fn dilation(mut self, dh: usize, dw: usize) -> Self {
        self.dilation = (dh, dw);
        self
    }
}

/// The [`Conv2dShape`] of the const face, checked against the array types:
/// `groups = C_IN / CIG` (`CIG` divides `C_IN`, the groups divide `C_OUT`,
/// `OH`, `OW ≥ 1` — compile-time assertions), `(OH, OW)` equal to the output
/// size the parameters give (`Err` otherwise).
#[allow(clippy::too_many_arguments)]
fn const_shape<
    const N: usize,
    const C_IN: usize,
    const H: usize,
    const W: usize,
    const C_OUT: usize,
    const CIG: usize,
    const KH: usize,
    const KW: usize,
    const OH: usize,
    const OW: usize,
>(
    p: &Conv2dParams,
) -> Result<Conv2dShape> {
    const {
        assert!(
            CIG > 0 && C_IN.is_multiple_of(CIG),
            "conv2d: C_IN / GROUPS must be a whole number"
        );
        assert!(
            C_OUT.is_multiple_of(C_IN / CIG),
            "conv2d: the groups must divide C_OUT"
        );
        assert!(
            KH > 0 && KW > 0 && OH > 0 && OW > 0,
            "conv2d: zero-sized kernel or output"
        );
    };
    let shape = Conv2dShape::new(N, C_IN, H, W, C_OUT, KH, KW)
        .stride(p.stride.0, p.stride.1)
        .padding(p.padding.0, p.padding.1)
        .dilation(p.dilation.0, p.dilation.1)
        .groups(C_IN / CIG);
    let out = shape.output()?;
    if out != (OH, OW) {
        return Err(Error::ShapeMismatch {
            what: "conv2d: output size (OH, OW) for these parameters",
            expected: out,
            found: (OH, OW),
        });
    }
    Ok(shape)
}

/// Const face of [`conv2d_views_with`]: `x` `(N, C_IN, H, W)`, weight
/// `(C_OUT, CIG, KH, KW)` with `CIG = C_IN / groups`, `y` `(N, C_OUT, OH, OW)`
/// — compute `OH`/`OW` with the `const fn` [`conv_out_len`].
///
/// ```
/// use constml::nn::{conv2d_with, conv_out_len, Conv2dParams};
/// use constml::Simd;
/// const OH: usize = match conv_out_len(4, 3, 1, 1, 1) { Some(v) => v, None => 0 };
/// let x = [[[[1.0f32; 4]; 4]; 2]; 1];      // N 1, C_IN 2, 4 × 4
/// let w = [[[[0.5f32; 3]; 3]; 1]; 2];      // 2 groups: CIG = 1
/// let mut y = [[[[0.0f32; OH]; OH]; 2]; 1];
/// conv2d_with::<Simd, f32, 1, 2, 4, 4, 2, 1, 3, 3, OH, OH>(&x, &w, None, &mut y, &Conv2dParams::new().padding(1, 1))?;
/// assert_eq!(y[0][0][1][1], 4.5); // a full 3 × 3 window of 0.5
/// # Ok::<(), constml::Error>(())
/// ```
///
/// A `CIG` that does not divide `C_IN` does not compile:
///
/// ```compile_fail,E0080
/// use constml::nn::{conv2d_with, Conv2dParams};
/// let x = [[[[1.0f32; 4]; 4]; 3]; 1];
/// let w = [[[[0.5f32; 3]; 3]; 2]; 2];      // CIG 2 does not divide C_IN 3
/// let mut y = [[[[0.0f32; 2]; 2]; 2]; 1];
/// let _ = conv2d_with::<constml::Simd, f32, 1, 3, 4, 4, 2, 2, 3, 3, 2, 2>(&x, &w, None, &mut y, &Conv2dParams::new());
/// ```
#[allow(clippy::type_complexity)]
pub fn conv2d_with<
    B: Backend,
    T: Real,
    const N: usize,
    const C_IN: usize,
    const H: usize,
    const W: usize,
    const C_OUT: usize,
    const CIG: usize,
    const KH: usize,
    const KW: usize,
    const OH: usize,
    const OW: usize,
>(
    x: &[[[[T; W]; H]; C_IN]; N],
    weight: &[[[[T; KW]; KH]; CIG]; C_OUT],
    bias: Option<&[T; C_OUT]>,
    y: &mut [[[[T; OW]; OH]; C_OUT]; N],
    params: &Conv2dParams,
) -> Result<()> {
    let shape = const_shape::<N, C_IN, H, W, C_OUT, CIG, KH, KW, OH, OW>(params)?;
    conv2d_views_with::<B, T>(
        x.as_flattened().as_flattened().as_flattened(),
        &shape,
        weight.as_flattened().as_flattened().as_flattened(),
        bias.map(|b| &b[..]),
        y.as_flattened_mut().as_flattened_mut().as_flattened_mut(),
    )
}

/// Const face of [`conv2d_backward_views_with`] (shapes as in
/// [`conv2d_with`]): writes `dx`, adds into `dweight` and `dbias`.
#[allow(clippy::type_complexity, clippy::too_many_arguments)]
pub fn conv2d_backward_with<
    B: Backend,
    T: Real,
    const N: usize,
    const C_IN: usize,
    const H: usize,
    const W: usize,
    const C_OUT: usize,
    const CIG: usize,
    const KH: usize,
    const KW: usize,
    const OH: usize,
    const OW: usize,
>(
    x: &[[[[T; W]; H]; C_IN]; N],
    weight: &[[[[T; KW]; KH]; CIG]; C_OUT],
    dy: &[[[[T; OW]; OH]; C_OUT]; N],
    dx: Option<&mut [[[[T; W]; H]; C_IN]; N]>,
    dweight: Option<&mut [[[[T; KW]; KH]; CIG]; C_OUT]>,
    dbias: Option<&mut [T; C_OUT]>,
    params: &Conv2dParams,
) -> Result<()> {
    let shape = const_shape::<N, C_IN, H, W, C_OUT, CIG, KH, KW, OH, OW>(params)?;
    conv2d_backward_views_with::<B, T>(
        x.as_flattened().as_flattened().as_flattened(),
        &shape,
        weight.as_flattened().as_flattened().as_flattened(),
        dy.as_flattened().as_flattened().as_flattened(),
        dx.map(|d| d.as_flattened_mut().as_flattened_mut().as_flattened_mut()),
        dweight.map(|d| d.as_flattened_mut().as_flattened_mut().as_flattened_mut()),
        dbias.map(|d| &mut d[..]),
    )
}

/// Const face of [`conv2d_im2col_views_with`] (shapes as in
/// [`conv2d_with`]) with a scratch array whose length `S` is at least
/// [`im2col_len`]`(CIG, KH, KW, OH, OW)` — a compile-time assertion.
///
/// ```
/// use constml::nn::{conv2d_im2col_with, conv_out_len, im2col_len, Conv2dParams};
/// use constml::Simd;
/// const OH: usize = match conv_out_len(4, 3, 1, 1, 1) { Some(v) => v, None => 0 };
/// const S: usize = im2col_len(2, 3, 3, OH, OH);
/// let x = [[[[1.0f32; 4]; 4]; 2]; 1];
/// let w = [[[[0.5f32; 3]; 3]; 2]; 3];
/// let mut y = [[[[0.0f32; OH]; OH]; 3]; 1];
/// let mut scratch = [0.0f32; S];
/// conv2d_im2col_with::<Simd, f32, 1, 2, 4, 4, 3, 2, 3, 3, OH, OH, S>(
///     &x, &w, Some(&[1.0; 3]), &mut y, &mut scratch, &Conv2dParams::new().padding(1, 1))?;
/// assert_eq!(y[0][2][1][1], 10.0); // 1 + 2 channels × 9 taps × 0.5
/// # Ok::<(), constml::Error>(())
/// ```
#[allow(clippy::type_complexity)]
pub fn conv2d_im2col_with<
    B: Backend,
    T: Real,
    const N: usize,
    const C_IN: usize,
    const H: usize,
    const W: usize,
    const C_OUT: usize,
    const CIG: usize,
    const KH: usize,
    const KW: usize,
    const OH: usize,
    const OW: usize,
    const S: usize,
>(
    x: &[[[[T; W]; H]; C_IN]; N],
    weight: &[[[[T; KW]; KH]; CIG]; C_OUT],
    bias: Option<&[T; C_OUT]>,
    y: &mut [[[[T; OW]; OH]; C_OUT]; N],
    scratch: &mut [T; S],
    params: &Conv2dParams,
) -> Result<()> {
    const {
        assert!(
            S >= im2col_len(CIG, KH, KW, OH, OW),
            "conv2d: the im2col scratch needs im2col_len(CIG, KH, KW, OH, OW) elements"
        )
    };
    let shape = const_shape::<N, C_IN, H, W, C_OUT, CIG, KH, KW, OH, OW>(params)?;
    conv2d_im2col_views_with::<B, T>(
        x.as_flattened().as_flattened().as_flattened(),
        &shape,
        weight.as_flattened().as_flattened().as_flattened(),
        bias.map(|b| &b[..]),
        y.as_flattened_mut().as_flattened_mut().as_flattened_mut(),
        scratch,
    )
}

/// Const face of [`conv2d_im2col_backward_views_with`] (shapes and scratch
/// as in [`conv2d_im2col_with`]): writes `dx`, adds into `dweight` and
/// `dbias`.
#[allow(clippy::type_complexity, clippy::too_many_arguments)]
pub fn conv2d_im2col_backward_with<
    B: Backend,
    T: Real,
    const N: usize,
    const C_IN: usize,
    const H: usize,
    const W: usize,
    const C_OUT: usize,
    const CIG: usize,
    const KH: usize,
    const KW: usize,
    const OH: usize,
    const OW: usize,
    const S: usize,
>(
    x: &[[[[T; W]; H]; C_IN]; N],
    weight: &[[[[T; KW]; KH]; CIG]; C_OUT],
    dy: &[[[[T; OW]; OH]; C_OUT]; N],
    dx: Option<&mut [[[[T; W]; H]; C_IN]; N]>,
    dweight: Option<&mut [[[[T; KW]; KH]; CIG]; C_OUT]>,
    dbias: Option<&mut [T; C_OUT]>,
    scratch: &mut [T; S],
    params: &Conv2dParams,
) -> Result<()> {
    const {
        assert!(
            S >= im2col_len(CIG, KH, KW, OH, OW),
            "conv2d: the im2col scratch needs im2col_len(CIG, KH, KW, OH, OW) elements"
        )
    };
    let shape = const_shape::<N, C_IN, H, W, C_OUT, CIG, KH, KW, OH, OW>(params)?;
    conv2d_im2col_backward_views_with::<B, T>(
        x.as_flattened().as_flattened().as_flattened(),
        &shape,
        weight.as_flattened().as_flattened().as_flattened(),
        dy.as_flattened().as_flattened().as_flattened(),
        dx.map(|d| d.as_flattened_mut().as_flattened_mut().as_flattened_mut()),
        dweight.map(|d| d.as_flattened_mut().as_flattened_mut().as_flattened_mut()),
        dbias.map(|d| &mut d[..]),
        scratch,
    )
}

#[cfg(feature = "std")]
pub use dynamic::Conv2dDyn;

#[cfg(feature = "std")]
mod dynamic {
    use std::vec::Vec;

    use super::*;
    use crate::Simd;
    use crate::matrix::zeros_vec;

    /// A runtime-shaped convolution layer (`std`): owned weight `(C_OUT,
    /// C_IN/groups, KH, KW)`, optional bias, their accumulated gradients, and
    /// the im2col scratch (grown on demand), taking the faster path per shape
    /// ([`conv2d_auto_views_with`], [`conv2d_auto_backward_views_with`]).
    /// Inputs are `(N, C_IN, H, W)` with `N`, `H`, `W` given per call.
    ///
    /// ```
    /// use constml::nn::{Conv2dDyn, Conv2dParams};
    /// let mut conv = Conv2dDyn::<f32>::zeros(3, 8, (3, 3), 1, Conv2dParams::new().padding(1, 1), true)?;
    /// conv.weight.fill(0.1);
    /// let x = vec![1.0f32; 2 * 3 * 5 * 5];
    /// let (y, (oh, ow)) = conv.forward(&x, 2, 5, 5)?;
    /// assert_eq!((y.len(), oh, ow), (2 * 8 * 25, 5, 5));
    /// let dx = conv.backward(&x, 2, 5, 5, &y)?;
    /// assert_eq!(dx.len(), x.len());
    /// assert!(conv.forward(&x[1..], 2, 5, 5).is_err());
    /// # Ok::<(), constml::Error>(())
    /// ```
    #[derive(Clone, Debug)]
    pub struct Conv2dDyn<T, B = Simd> {
        /// Input channels.
        pub c_in: usize,
        /// Output channels.
        pub c_out: usize,
        /// Kernel `(KH, KW)`.
        pub kernel: (usize, usize),
        /// Groups (divides both channel counts).
        pub groups: usize,
        /// Stride, padding, dilation.
        pub params: Conv2dParams,
        /// Weight `(C_OUT, C_IN/groups, KH, KW)`, row-major.
        pub weight: Vec<T>,
        /// Bias (`C_OUT`), if the layer has one.
        pub bias: Option<Vec<T>>,
        /// Accumulated `dW`.
        pub dweight: Vec<T>,
        /// Accumulated `db` (when there is a bias).
        pub dbias: Option<Vec<T>>,
        scratch: Vec<T>,
        _b: core::marker::PhantomData<B>,
    }

    impl<T: Real, B: Backend> Conv2dDyn<T, B> {
        /// A zero layer; `Err` for groups that do not divide the channels or
        /// a zero kernel, stride or dilation.
        pub fn zeros(
            c_in: usize,
            c_out: usize,
            kernel: (usize, usize),
            groups: usize,
            params: Conv2dParams,
            bias: bool,
        ) -> Result<Self> {
            if kernel.0 == 0 || kernel.1 == 0 {
                return Err(Error::InvalidParameter {
                    what: "conv2d: kernel",
                    reason: "must be at least 1 × 1",
                });
            }
            // Everything but the image size: check on an image the dilated
            // kernel just covers.
            let span = |k: usize, d: usize| (k - 1).saturating_mul(d).saturating_add(1);
            let (sh, sw) = (
                span(kernel.0, params.dilation.0),
                span(kernel.1, params.dilation.1),
            );
            let fit = Self::shape_of(c_in, c_out, kernel, groups, &params, 1, sh, sw).lens()?;
            let wlen = fit.1;
            let b = || zeros_vec("conv2d: bias", c_out);
            Ok(Self {
                c_in,
                c_out,
                kernel,
                groups,
                params,
                weight: zeros_vec("conv2d: weight", wlen)?,
                bias: if bias { Some(b()?) } else { None },
                dweight: zeros_vec("conv2d: weight", wlen)?,
                dbias: if bias { Some(b()?) } else { None },
                scratch: Vec::new(),
                _b: core::marker::PhantomData,
            })
        }

        #[allow(clippy::too_many_arguments)]
        fn shape_of(
            c_in: usize,
            c_out: usize,
            kernel: (usize, usize),
            groups: usize,
            p: &Conv2dParams,
            n: usize,
            h: usize,
            w: usize,
        ) -> Conv2dShape {
            Conv2dShape::new(n, c_in, h, w, c_out, kernel.0, kernel.1)
                .stride(p.stride.0, p.stride.1)
                .padding(p.padding.0, p.padding.1)
                .dilation(p.dilation.0, p.dilation.1)
                .groups(groups)
        }

        /// The [`Conv2dShape`] of a batch of `n` images of `h × w`.
        pub fn shape(&self, n: usize, h: usize, w: usize) -> Conv2dShape {
            let (ci, co, k, g) = (self.c_in, self.c_out, self.kernel, self.groups);
            Self::shape_of(ci, co, k, g, &self.params, n, h, w)
        }

        fn grow_scratch(&mut self, shape: &Conv2dShape) -> Result<()> {
            let need = conv2d_im2col_scratch_len(shape);
            if self.scratch.len() < need {
                self.scratch = zeros_vec("conv2d: im2col scratch", need)?;
            }
            Ok(())
        }

        /// `y` `(N, C_OUT, OH, OW)` and `(OH, OW)`.
        pub fn forward(
            &mut self,
            x: &[T],
            n: usize,
            h: usize,
            w: usize,
        ) -> Result<(Vec<T>, (usize, usize))> {
            let shape = self.shape(n, h, w);
            let out = check_io(&shape, x.len(), self.weight.len(), self.bias.as_deref(), {
                let (_, _, ly) = shape.lens()?;
                ly
            })?;
            if shape.prefers_im2col() {
                self.grow_scratch(&shape)?;
            }
            let mut y = zeros_vec("conv2d: y", shape.lens()?.2)?;
            conv2d_auto_views_with::<B, T>(
                x,
                &shape,
                &self.weight,
                self.bias.as_deref(),
                &mut y,
                &mut self.scratch,
            )?;
            Ok((y, out))
        }

        /// Returns `dx`; adds into `dweight` and `dbias`.
        pub fn backward(
            &mut self,
            x: &[T],
            n: usize,
            h: usize,
            w: usize,
            dy: &[T],
        ) -> Result<Vec<T>> {
            let shape = self.shape(n, h, w);
            check_io::<T>(&shape, x.len(), self.weight.len(), None, dy.len())?;
            self.grow_scratch(&shape)?;
            let mut dx = zeros_vec("conv2d: dx", x.len())?;
            conv2d_auto_backward_views_with::<B, T>(
                x,
                &shape,
                &self.weight,
                dy,
                Some(&mut dx),
                Some(&mut self.dweight),
                self.dbias.as_deref_mut(),
                &mut self.scratch,
            )?;
            Ok(dx)
        }

        /// Zeroes the accumulated gradients.
        pub fn zero_grad(&mut self) {
            self.dweight.fill(T::ZERO);
            if let Some(d) = self.dbias.as_mut() {
                d.fill(T::ZERO);
            }
        }
    }
}
