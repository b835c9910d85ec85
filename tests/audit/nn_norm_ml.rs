//! Bad-input audit of the `nn`, `norm` and `ml` chapters: every invalid input
//! a public function can receive gets the `Err` variant its docs promise
//! (or the documented NaN propagation), and stateful calls leave their state
//! alone on `Err`. One test per row (or small group of rows) of the audit
//! table.
//!
//! Most cases are tables: a valid setup, one edit per case that breaks it,
//! and the error the case must give; [`check_cases`] runs each edit on a
//! fresh copy and checks that the call wrote nothing.

use std::fmt::Debug;
use std::ops::Range;

use constml::ml::*;
use constml::nn::*;
use constml::norm::*;
use constml::rand_core::{Rng, SeedableRng};
use constml::{Error, MatMut, MatRef, Matrix, Result, Scalar, Simd};
use rand_xoshiro::{Xoshiro128PlusPlus, Xoshiro256PlusPlus};

// ---------------------------------------------------------------- helpers

/// Which error a case must give.
type Matcher = fn(&Error) -> bool;

/// Defines `is_len` and the like: whether an error is of one variant.
macro_rules! matchers {
    ($($name:ident => $variant:ident),* $(,)?) => {
        $(
            fn $name(e: &Error) -> bool {
                matches!(e, Error::$variant { .. })
            }
        )*
    };
}

matchers! {
    is_len => LengthMismatch,
    is_shape => ShapeMismatch,
    is_param => InvalidParameter,
    is_buf => BufferTooSmall,
    is_empty => Empty,
    is_range => OutOfRange,
    is_nan => NaN,
}

/// `r` must be an `Err` that `m` accepts; `what` names the case.
#[track_caller]
fn expect_err<T>(r: Result<T>, m: Matcher, what: &str) {
    match r {
        Err(e) => assert!(m(&e), "{what}: wrong error {e:?}"),
        Ok(_) => panic!("{what}: expected an error"),
    }
}

/// `$call` must return `Err` satisfying `$m`; a trailing format names the
/// case (else the call's text does).
macro_rules! err {
    ($call:expr, $m:expr) => {
        expect_err($call, $m, stringify!($call))
    };
    ($call:expr, $m:expr, $($what:tt)+) => {
        expect_err($call, $m, &format!($($what)+))
    };
}

/// `$simd::<T>`, or `$with::<Scalar, T>` when `$scalar`, as one function
/// pointer (`T` is `f32` unless given).
macro_rules! pick {
    ($scalar:expr, $simd:ident, $with:ident) => {
        pick!($scalar, $simd, $with, f32)
    };
    ($scalar:expr, $simd:ident, $with:ident, $t:ty) => {
        if $scalar {
            $with::<Scalar, $t>
        } else {
            $simd::<$t>
        }
    };
}

/// A table case: its name, the edit that breaks a valid setup, the error.
type Case<S> = (&'static str, fn(&mut S), Matcher);

/// `edit` applied to a copy of `base` must make `run` fail as `m` says and
/// leave `out` (what the call may write) as it was.
#[track_caller]
fn check_case<S: Clone, T, O: PartialEq + Debug>(
    what: &str,
    base: &S,
    edit: impl FnOnce(&mut S),
    m: Matcher,
    run: impl FnOnce(&mut S) -> Result<T>,
    out: impl Fn(&S) -> O,
) {
    let mut s = base.clone();
    edit(&mut s);
    let before = out(&s);
    expect_err(run(&mut s), m, what);
    assert_eq!(out(&s), before, "{what}: written on Err");
}

/// [`check_case`] for every case of a table, named after `label`.
#[track_caller]
fn check_cases<S: Clone, T, O: PartialEq + Debug>(
    label: &str,
    base: &S,
    cases: &[Case<S>],
    mut run: impl FnMut(&mut S) -> Result<T>,
    out: impl Fn(&S) -> O,
) {
    for &(what, edit, m) in cases {
        check_case(&format!("{label}: {what}"), base, edit, m, &mut run, &out);
    }
}

/// Drops the last element (table edits return nothing).
fn shorten<T>(v: &mut Vec<T>) {
    v.pop();
}

/// The first `r·c` values of `v` as an `r × c` view.
fn mr<T>(v: &[T], (r, c): (usize, usize)) -> MatRef<'_, T> {
    MatRef::new(&v[..r * c], r, c).unwrap()
}

/// The first `r·c` values of `v` as a mutable `r × c` view.
fn mm<T>(v: &mut [T], (r, c): (usize, usize)) -> MatMut<'_, T> {
    MatMut::new(&mut v[..r * c], r, c).unwrap()
}

/// Whether exactly the values at `nan` are NaN, and all others finite.
fn nan_exactly(v: &[f32], nan: Range<usize>) -> bool {
    v.iter().enumerate().all(|(i, x)| {
        if nan.contains(&i) {
            x.is_nan()
        } else {
            x.is_finite()
        }
    })
}

/// Deterministic, varied values in about [−0.5, 0.5].
fn vals(n: usize, seed: f32) -> Vec<f32> {
    (0..n)
        .map(|j| ((j as f32 + seed) * 0.37).sin() * 0.5)
        .collect()
}

// ---------------------------------------------------------------- nn::activation

const ACTS: [Activation; 6] = [
    Activation::Relu,
    Activation::Sigmoid,
    Activation::Tanh,
    Activation::Silu,
    Activation::Gelu,
    Activation::GeluTanh,
];

#[test]
fn audit_activation_lengths_and_nan() {
    for act in ACTS {
        let x = vals(19, 1.0);
        let mut y = vec![7.0f32; 18];
        err!(activation_forward(act, &x, &mut y), is_len);
        err!(
            activation_forward_with::<Scalar, f32>(act, &x, &mut y),
            is_len
        );
        assert!(y.iter().all(|&v| v == 7.0));
        let (yy, dy) = (vec![0.1f32; 19], vec![1.0f32; 19]);
        let mut dx = [7.0f32; 19];
        // Lengths of y, dy and dx (the short dx through the Scalar backend).
        for (ny, ndy, ndx) in [(18, 19, 19), (19, 18, 19), (19, 19, 18)] {
            let bwd = pick!(ndx < 19, activation_backward, activation_backward_with);
            let r = bwd(act, &x, &yy[..ny], &dy[..ndy], &mut dx[..ndx]);
            err!(r, is_len, "{act:?} backward, lengths {ny}, {ndy}, {ndx}");
        }
        assert!(dx.iter().all(|&v| v == 7.0));
        // Empty slices are valid.
        activation_forward(act, &[] as &[f32], &mut []).unwrap();
        // NaN propagates element by element, through the vector body (index
        // 9) and the scalar tail (index 18); ReLU's backward passes dy on.
        let mut x = vals(19, 2.0);
        x[9] = f32::NAN;
        x[18] = f32::NAN;
        for fwd in [
            activation_forward_with::<Simd, f32>,
            activation_forward_with::<Scalar, f32>,
        ] {
            let mut y = vec![0.0f32; 19];
            fwd(act, &x, &mut y).unwrap();
            for (i, v) in y.iter().enumerate() {
                assert_eq!(v.is_nan(), i == 9 || i == 18, "{act:?} y[{i}] = {v}");
            }
            let mut dx = vec![0.0f32; 19];
            activation_backward(act, &x, &y, &[1.0; 19], &mut dx).unwrap();
            for (i, v) in dx.iter().enumerate() {
                if i == 9 || i == 18 {
                    if act == Activation::Relu {
                        assert_eq!(*v, 1.0, "ReLU backward passes dy on at NaN");
                    } else {
                        assert!(v.is_nan(), "{act:?} dx[{i}] = {v}");
                    }
                } else {
                    assert!(v.is_finite(), "{act:?} dx[{i}] = {v}");
                }
            }
        }
    }
}

#[test]
fn audit_softmax_backward_shapes_and_nan() {
    type F = fn(MatRef<'_, f32>, MatRef<'_, f32>, MatMut<'_, f32>) -> Result<()>;
    let fs: [F; 4] = [
        softmax_backward_views,
        log_softmax_backward_views,
        softmax_backward_views_with::<Scalar, f32>,
        log_softmax_backward_views_with::<Scalar, f32>,
    ];
    for f in fs {
        let y = vals(6, 1.0);
        let dy = vals(6, 2.0);
        let mut dx = [7.0f32; 6];
        let yv = mr(&y, (2, 3));
        // Shapes of dy and dx (each the head of its buffer).
        for (dy_at, dx_at) in [((3, 2), (2, 3)), ((2, 3), (3, 2)), ((2, 2), (2, 3))] {
            let r = f(yv, mr(&dy, dy_at), mm(&mut dx, dx_at));
            err!(r, is_shape, "dy {dy_at:?}, dx {dx_at:?}");
        }
        assert_eq!(dx, [7.0; 6]);
        // Zero columns: nothing to do.
        f(mr(&[], (2, 0)), mr(&[], (2, 0)), mm(&mut [], (2, 0))).unwrap();
        // NaN in row 0 stays in row 0.
        let mut dy = vals(6, 3.0);
        dy[1] = f32::NAN;
        f(yv, mr(&dy, (2, 3)), mm(&mut dx, (2, 3))).unwrap();
        assert!(nan_exactly(&dx, 0..3));
    }
}

// ---------------------------------------------------------------- nn::conv2d

#[test]
fn audit_conv2d_shape_rules() {
    let s = Conv2dShape::new(1, 2, 4, 4, 4, 3, 3);
    assert_eq!(s.output(), Ok((2, 2)));
    // Builders only set fields.
    let b = s.stride(2, 1).padding(1, 0).dilation(1, 2).groups(2);
    assert_eq!(
        (b.stride, b.padding, b.dilation, b.groups),
        ((2, 1), (1, 0), (1, 2), 2)
    );
    let p = Conv2dParams::new()
        .stride(2, 3)
        .padding(1, 2)
        .dilation(3, 1);
    assert_eq!((p.stride, p.padding, p.dilation), ((2, 3), (1, 2), (3, 1)));
    for bad in [
        s.stride(0, 1),
        s.stride(1, 0),
        s.dilation(0, 1),
        s.dilation(1, 0),
        s.groups(0),
        s.groups(3),                                     // divides neither 2 nor 4
        Conv2dShape::new(1, 2, 4, 4, 3, 3, 3).groups(2), // 2 ∤ C_OUT 3
        Conv2dShape::new(1, 2, 4, 4, 4, 5, 3),           // kernel taller than the input
        Conv2dShape::new(1, 2, 4, 4, 4, 0, 3),           // zero kernel
        s.dilation(3, 1),                                // dilated span 7 > 4
    ] {
        err!(bad.output(), is_param, "{bad:?}");
        err!(bad.lens(), is_param, "{bad:?}");
        assert_eq!(conv2d_im2col_scratch_len(&bad), 0);
    }
    // Padding makes a large kernel fit.
    assert_eq!(
        Conv2dShape::new(1, 2, 4, 4, 4, 5, 5).padding(1, 1).output(),
        Ok((2, 2))
    );
    // Totals that overflow usize; with no images the totals are 0, but the
    // kernels still form H·W.
    for bad in [
        Conv2dShape::new(usize::MAX, 2, 4, 4, 4, 3, 3),
        Conv2dShape::new(1, 1, usize::MAX, 2, 1, 1, 1),
        Conv2dShape::new(0, 1, usize::MAX, 2, 1, 1, 1),
    ] {
        err!(bad.lens(), is_param, "{bad:?}");
    }
    // Pure size helpers: None / saturation / 0, never a panic.
    let outs = [
        ((4, 3, 1, 1, 1), Some(4)),
        ((4, 5, 1, 0, 1), None),
        ((4, 0, 1, 0, 1), None),
        ((4, 3, 0, 0, 1), None),
        ((4, 3, 1, 0, 0), None),
        ((usize::MAX, 1, 1, 1, 1), None),
        ((4, 3, 1, usize::MAX, 1), None),
        ((4, usize::MAX, 1, 0, 2), None),
    ];
    for (args @ (len, k, stride, pad, dil), want) in outs {
        assert_eq!(conv_out_len(len, k, stride, pad, dil), want, "{args:?}");
    }
    assert_eq!(im2col_len(usize::MAX, 2, 1, 1, 1), usize::MAX);
    assert_eq!(im2col_len(2, 3, 3, 4, 4), 288);
    assert_eq!(
        conv2d_im2col_scratch_len(&Conv2dShape::new(1, 2, 4, 4, 4, 1, 1)),
        0
    );
    assert_eq!(conv2d_im2col_scratch_len(&s.padding(1, 1)), 288);
    assert!(!s.groups(0).prefers_im2col());
    assert!(s.prefers_im2col());
    assert!(!s.groups(2).prefers_im2col());
}

/// Buffers of a valid convolution: 1 image, 2 → 4 channels, 4×4, 3×3 kernel,
/// padding 1 (output 4×4).
#[derive(Clone, Debug, PartialEq)]
struct Conv {
    shape: Conv2dShape,
    x: Vec<f32>,
    w: Vec<f32>,
    b: Vec<f32>,
    y: Vec<f32>,
    dy: Vec<f32>,
    dx: Vec<f32>,
    dw: Vec<f32>,
    db: Vec<f32>,
    scratch: Vec<f32>,
}

impl Conv {
    fn new() -> Self {
        Self {
            shape: Conv2dShape::new(1, 2, 4, 4, 4, 3, 3).padding(1, 1),
            x: vals(32, 1.0),
            w: vals(72, 2.0),
            b: vals(4, 3.0),
            y: vec![7.0; 64],
            dy: vals(64, 4.0),
            dx: vec![7.0; 32],
            dw: vec![7.0; 72],
            db: vec![7.0; 4],
            scratch: vec![0.0; 288],
        }
    }
    /// Forward by path `k`: direct, im2col, auto; then the same with Scalar.
    fn fwd(&mut self, k: usize) -> Result<()> {
        let (x, s, w, b, y, sc) = (
            &self.x,
            &self.shape,
            &self.w,
            Some(&self.b[..]),
            &mut self.y,
            &mut self.scratch,
        );
        match k {
            0 => conv2d_views(x, s, w, b, y),
            1 => conv2d_im2col_views(x, s, w, b, y, sc),
            2 => conv2d_auto_views(x, s, w, b, y, sc),
            3 => conv2d_views_with::<Scalar, f32>(x, s, w, b, y),
            4 => conv2d_im2col_views_with::<Scalar, f32>(x, s, w, b, y, sc),
            _ => conv2d_auto_views_with::<Scalar, f32>(x, s, w, b, y, sc),
        }
    }
    fn bwd(&mut self, k: usize) -> Result<()> {
        let (x, s, w, dy, sc) = (&self.x, &self.shape, &self.w, &self.dy, &mut self.scratch);
        let (dx, dw, db) = (
            Some(&mut self.dx[..]),
            Some(&mut self.dw[..]),
            Some(&mut self.db[..]),
        );
        match k {
            0 => conv2d_backward_views(x, s, w, dy, dx, dw, db),
            1 => conv2d_im2col_backward_views(x, s, w, dy, dx, dw, db, sc),
            2 => conv2d_auto_backward_views(x, s, w, dy, dx, dw, db, sc),
            3 => conv2d_backward_views_with::<Scalar, f32>(x, s, w, dy, dx, dw, db),
            4 => conv2d_im2col_backward_views_with::<Scalar, f32>(x, s, w, dy, dx, dw, db, sc),
            _ => conv2d_auto_backward_views_with::<Scalar, f32>(x, s, w, dy, dx, dw, db, sc),
        }
    }
    /// What a forward or backward may write (scratch aside).
    fn outputs(&self) -> [Vec<f32>; 4] {
        [
            self.y.clone(),
            self.dx.clone(),
            self.dw.clone(),
            self.db.clone(),
        ]
    }
}

/// The cases of one direction (`run` is [`Conv::fwd`] or [`Conv::bwd`]),
/// with a short x and a long w, on all six paths; a short im2col scratch
/// (`BufferTooSmall` on the im2col paths); no scratch at all, on which the
/// auto paths fall back to the direct kernel.
fn check_conv(run: fn(&mut Conv, usize) -> Result<()>, cases: &[Case<Conv>]) {
    let mut all: Vec<Case<Conv>> = vec![
        ("x short", |c| c.x.truncate(31), is_len),
        ("w long", |c| c.w.push(0.0), is_len),
    ];
    all.extend_from_slice(cases);
    let cases = &all;
    for k in 0..6 {
        check_cases(
            &format!("path {k}"),
            &Conv::new(),
            cases,
            |c| run(c, k),
            Conv::outputs,
        );
    }
    for k in [1, 4] {
        let what = format!("path {k}: scratch short");
        let short = |c: &mut Conv| c.scratch.truncate(287);
        check_case(
            &what,
            &Conv::new(),
            short,
            is_buf,
            |c| run(c, k),
            Conv::outputs,
        );
    }
    for (k, base) in [(2, 0), (5, 3)] {
        let mut direct = Conv::new();
        run(&mut direct, base).unwrap();
        let mut c = Conv::new();
        c.scratch.clear();
        run(&mut c, k).unwrap();
        assert_eq!(c.outputs(), direct.outputs(), "path {k}");
    }
}

#[test]
fn audit_conv2d_forward_bad_inputs() {
    check_conv(
        Conv::fwd,
        &[
            ("stride 0", |c| c.shape = c.shape.stride(0, 1), is_param),
            ("groups 3", |c| c.shape = c.shape.groups(3), is_param),
            ("y short", |c| c.y.truncate(63), is_len),
            ("b short", |c| c.b.truncate(3), is_len),
            (
                "span 5 > 4",
                |c| c.shape = c.shape.padding(0, 0).dilation(2, 2),
                is_param,
            ),
        ],
    );
    // NaN at input pixel (0, 0) of channel 0 reaches exactly the outputs
    // whose window reads it: rows and columns 0..2 of every channel.
    for k in 0..6 {
        let mut c = Conv::new();
        c.x[0] = f32::NAN;
        c.fwd(k).unwrap();
        for (idx, v) in c.y.iter().enumerate() {
            let (i, j) = ((idx % 16) / 4, idx % 4);
            assert_eq!(v.is_nan(), i < 2 && j < 2, "path {k}: y[{idx}] = {v}");
        }
    }
}

#[test]
fn audit_conv2d_backward_bad_inputs() {
    check_conv(
        Conv::bwd,
        &[
            ("dy short", |c| c.dy.truncate(63), is_len),
            ("dx short", |c| c.dx.truncate(31), is_len),
            ("dw long", |c| c.dw.push(7.0), is_len),
            ("db short", |c| c.db.truncate(3), is_len),
            ("dilation 0", |c| c.shape = c.shape.dilation(0, 1), is_param),
            ("groups 0", |c| c.shape = c.shape.groups(0), is_param),
        ],
    );
}

#[test]
fn audit_conv2d_const_faces_runtime_params() {
    let x = [[[[0.5f32; 4]; 4]; 2]; 1];
    let w = [[[[0.25f32; 3]; 3]; 2]; 2];
    let dy = [[[[1.0f32; 2]; 2]; 2]; 1];
    // (OH, OW) = (2, 2) fits no padding; padding 1 gives (4, 4).
    let bad: [(Conv2dParams, Matcher); 4] = [
        (Conv2dParams::new().padding(1, 1), is_shape),
        (Conv2dParams::new().stride(0, 1), is_param),
        (Conv2dParams::new().dilation(1, 0), is_param),
        (Conv2dParams::new().dilation(2, 1), is_param), // span 5 > 4
    ];
    // The direct forward, with or without a (zero) bias.
    let fwd = |y: &mut [[[[f32; 2]; 2]; 2]; 1], bias: bool, p: &Conv2dParams| {
        let b = bias.then_some(&[0.0; 2]);
        conv2d_with::<Simd, f32, 1, 2, 4, 4, 2, 2, 3, 3, 2, 2>(&x, &w, b, y, p)
    };
    for (p, m) in bad {
        let mut y = [[[[7.0f32; 2]; 2]; 2]; 1];
        err!(fwd(&mut y, true, &p), m, "forward {p:?}");
        let mut scratch = [0.0f32; 72];
        err!(
            conv2d_im2col_with::<Scalar, f32, 1, 2, 4, 4, 2, 2, 3, 3, 2, 2, 72>(
                &x,
                &w,
                None,
                &mut y,
                &mut scratch,
                &p
            ),
            m
        );
        assert_eq!(y, [[[[7.0; 2]; 2]; 2]; 1]);
        let (mut dx, mut dw, mut db) = (x, w, [7.0f32; 2]);
        let grads = (Some(&mut dx), Some(&mut dw), Some(&mut db));
        err!(
            conv2d_backward_with::<Simd, f32, 1, 2, 4, 4, 2, 2, 3, 3, 2, 2>(
                &x, &w, &dy, grads.0, grads.1, grads.2, &p
            ),
            m
        );
        err!(
            conv2d_im2col_backward_with::<Simd, f32, 1, 2, 4, 4, 2, 2, 3, 3, 2, 2, 72>(
                &x,
                &w,
                &dy,
                Some(&mut dx),
                Some(&mut dw),
                Some(&mut db),
                &mut scratch,
                &p
            ),
            m
        );
        assert_eq!((dx, dw, db), (x, w, [7.0; 2]));
    }
    // The valid parameters run.
    let mut y = [[[[0.0f32; 2]; 2]; 2]; 1];
    fwd(&mut y, false, &Conv2dParams::new()).unwrap();
    assert_eq!(y[0][1][1][1], 18.0 * 0.125);
}

#[test]
fn audit_conv2d_dyn_bad_inputs() {
    let p = Conv2dParams::new().padding(1, 1);
    // (C_in, C_out, kernel, groups, parameters)
    for (ci, co, k, g, q) in [
        (2, 4, (0, 3), 1, p),
        (2, 4, (3, 0), 1, p),
        (3, 4, (3, 3), 2, p),
        (2, 3, (3, 3), 2, p),
        (2, 4, (3, 3), 0, p),
        (2, 4, (3, 3), 1, p.stride(0, 1)),
        (2, 4, (3, 3), 1, p.dilation(1, 0)),
    ] {
        let r = Conv2dDyn::<f32>::zeros(ci, co, k, g, q, true);
        err!(r, is_param, "zeros({ci}, {co}, {k:?}, {g}, {q:?})");
    }

    let mut conv = Conv2dDyn::<f32>::zeros(2, 4, (3, 3), 1, p, true).unwrap();
    conv.weight
        .iter_mut()
        .zip(vals(72, 1.0))
        .for_each(|(w, v)| *w = v);
    assert_eq!(
        conv.shape(1, 4, 4),
        Conv2dShape::new(1, 2, 4, 4, 4, 3, 3).padding(1, 1)
    );
    let x = vals(32, 2.0);
    err!(conv.forward(&x[..31], 1, 4, 4), is_len);
    err!(conv.forward(&x, 2, 4, 4), is_len);
    // A 2×2 image is smaller than an unpadded 3×3 kernel.
    let mut tight = Conv2dDyn::<f32>::zeros(2, 4, (3, 3), 1, Conv2dParams::new(), false).unwrap();
    err!(tight.forward(&x[..8], 1, 2, 2), is_param);
    let (y, out) = conv.forward(&x, 1, 4, 4).unwrap();
    assert_eq!((y.len(), out), (64, (4, 4)));
    conv.backward(&x, 1, 4, 4, &y).unwrap();
    let (dw, db) = (conv.dweight.clone(), conv.dbias.clone());
    err!(conv.backward(&x, 1, 4, 4, &y[..63]), is_len);
    err!(conv.backward(&x[..31], 1, 4, 4, &y), is_len);
    err!(conv.backward(&x[..8], 1, 2, 2, &y[..8]), is_len);
    // Public fields edited out of shape.
    conv.dweight.pop();
    err!(conv.backward(&x, 1, 4, 4, &y), is_len);
    conv.dweight.push(0.0);
    conv.bias.as_mut().unwrap().pop();
    err!(conv.forward(&x, 1, 4, 4), is_len);
    assert_eq!(&conv.dweight[..71], &dw[..71]);
    assert_eq!(conv.dbias, db);
    conv.zero_grad();
    assert!(
        conv.dweight
            .iter()
            .chain(conv.dbias.as_ref().unwrap())
            .all(|&v| v == 0.0)
    );
}

// ---------------------------------------------------------------- nn::dropout

#[test]
fn audit_dropout_bad_p_and_lengths() {
    let x = vals(8, 1.0);
    for p in [-0.1f32, 1.5, f32::NAN, f32::INFINITY] {
        let mut rng = Xoshiro128PlusPlus::seed_from_u64(3);
        let (mut y, mut mask) = ([7.0f32; 8], [false; 8]);
        for train in [true, false] {
            let r = dropout_forward(&x, &mut y, &mut mask, p, train, &mut rng);
            err!(r, is_param, "p {p}, train {train}");
        }
        assert_eq!((y, mask), ([7.0; 8], [false; 8]));
        // No draw was taken.
        assert_eq!(
            rng.next_u64(),
            Xoshiro128PlusPlus::seed_from_u64(3).next_u64()
        );
        let mut dx = [7.0f32; 8];
        err!(dropout_backward(&x, &[true; 8], p, true, &mut dx), is_param);
        assert_eq!(dx, [7.0; 8]);
    }
    let mut rng = Xoshiro128PlusPlus::seed_from_u64(3);
    let (mut y, mut mask) = ([7.0f32; 8], [false; 8]);
    // Lengths of y and the mask, and whether the call trains.
    for (ny, nm, train) in [(7, 8, true), (8, 7, false)] {
        let r = dropout_forward(&x, &mut y[..ny], &mut mask[..nm], 0.5, train, &mut rng);
        err!(r, is_len, "y {ny}, mask {nm}");
    }
    assert_eq!((y, mask), ([7.0; 8], [false; 8]));
    let mut dx = [7.0f32; 8];
    err!(dropout_backward(&x, &[true; 7], 0.5, true, &mut dx), is_len);
    err!(
        dropout_backward(&x, &[true; 8], 0.5, false, &mut dx[..7]),
        is_len
    );
    assert_eq!(dx, [7.0; 8]);
    // Edges: p = 1 drops everything; p = 0 keeps NaN where it is.
    dropout_forward(&x, &mut y, &mut mask, 1.0, true, &mut rng).unwrap();
    assert_eq!((y, mask), ([0.0; 8], [false; 8]));
    let mut xn = x.clone();
    xn[3] = f32::NAN;
    dropout_forward(&xn, &mut y, &mut mask, 0.0, true, &mut rng).unwrap();
    assert!(mask.iter().all(|&m| m));
    assert!(nan_exactly(&y, 3..4));
}

// ---------------------------------------------------------------- nn::embedding

#[test]
fn audit_embedding_bad_ids_and_shapes() {
    let table = vals(6, 1.0); // V 3, D 2
    let t = mr(&table, (3, 2));
    let mut y = [7.0f32; 4];
    assert_eq!(
        embedding_views(t, &[0, 3], mm(&mut y, (2, 2))),
        Err(Error::OutOfRange {
            what: "embedding: id",
            index: 3,
            len: 3
        })
    );
    // Ids, and the shape of y (the head of its buffer).
    let cases: [(&[usize], (usize, usize)); 3] =
        [(&[0], (2, 2)), (&[0, 1], (1, 4)), (&[0], (1, 3))];
    for (ids, at) in cases {
        err!(
            embedding_views(t, ids, mm(&mut y, at)),
            is_len,
            "ids {ids:?}, y {at:?}"
        );
    }
    assert_eq!(y, [7.0; 4]);

    let dy = vals(4, 2.0);
    let mut grad = [0.5f32; 6];
    // Ids, and the shape of the gradient table.
    let cases: [(&[usize], (usize, usize), Matcher); 3] = [
        (&[1, usize::MAX], (3, 2), is_range),
        (&[1], (3, 2), is_len),
        (&[1, 2], (2, 3), is_len),
    ];
    for f in [
        embedding_backward_views::<f32>,
        embedding_backward_views_with::<Scalar, f32>,
    ] {
        for (ids, at, m) in cases {
            let r = f(ids, mr(&dy, (2, 2)), mm(&mut grad, at));
            err!(r, m, "ids {ids:?}, grad {at:?}");
        }
        assert_eq!(grad, [0.5; 6]);
    }
    // Const face: shapes at compile time, ids at run time.
    let table = [[1.0f32, 2.0], [3.0, 4.0]];
    let mut y = [[7.0f32; 2]; 2];
    err!(embedding(&table, &[1, 2], &mut y), is_range);
    assert_eq!(y, [[7.0; 2]; 2]);
    let mut g = [[0.5f32; 2]; 2];
    err!(
        embedding_backward(&[9, 0], &[[1.0, 1.0]; 2], &mut g),
        is_range
    );
    assert_eq!(g, [[0.5; 2]; 2]);
    // Edge: no ids, empty table.
    embedding_views(mr::<f32>(&[], (0, 2)), &[], mm(&mut [], (0, 2))).unwrap();
}

// ---------------------------------------------------------------- nn::linear

#[test]
fn audit_linear_views_bad_shapes() {
    let x = vals(6, 1.0); // (2, 3)
    let w = vals(12, 2.0); // (4, 3)
    let b = vals(4, 3.0);
    // The shape of w, the bias, the shape of y (views take a buffer's head).
    type Row<'a> = ((usize, usize), Option<&'a [f32]>, (usize, usize), Matcher);
    let cases: [Row<'_>; 4] = [
        ((4, 2), Some(&b), (2, 4), is_shape),
        ((4, 3), Some(&b[..3]), (2, 4), is_len),
        ((4, 3), None, (2, 3), is_shape),
        ((4, 3), None, (4, 2), is_shape),
    ];
    type F = fn(MatRef<'_, f32>, MatRef<'_, f32>, Option<&[f32]>, MatMut<'_, f32>) -> Result<()>;
    for f in [linear_views::<f32> as F, linear_views_with::<Scalar, f32>] {
        let xv = mr(&x, (2, 3));
        let mut y = [7.0f32; 8];
        for (w_at, bias, y_at, m) in cases {
            let r = f(xv, mr(&w, w_at), bias, mm(&mut y, y_at));
            err!(r, m, "w {w_at:?}, b {bias:?}, y {y_at:?}");
        }
        assert_eq!(y, [7.0; 8]);
        // NaN in row 0 of x stays in row 0 of y.
        let mut xn = x.clone();
        xn[1] = f32::NAN;
        f(
            mr(&xn, (2, 3)),
            mr(&w, (4, 3)),
            Some(&b),
            mm(&mut y, (2, 4)),
        )
        .unwrap();
        assert!(nan_exactly(&y, 0..4));
    }
}

#[test]
fn audit_linear_backward_bad_shapes() {
    let x = vals(6, 1.0); // (2, 3)
    let w = vals(12, 2.0); // (4, 3)
    let dy = vals(8, 3.0); // (2, 4)
    // Shapes of w, dy, dx and dw (views take a buffer's head); db's length.
    type Shape = (usize, usize);
    let cases: [(Shape, Shape, Shape, Shape, usize, Matcher); 5] = [
        ((4, 3), (2, 3), (2, 3), (4, 3), 4, is_shape), // dy
        ((4, 2), (2, 4), (2, 3), (4, 3), 4, is_shape), // w's columns are not x's
        ((4, 3), (2, 4), (3, 2), (4, 3), 4, is_shape), // dx
        ((4, 3), (2, 4), (2, 3), (3, 4), 4, is_shape), // dw
        ((4, 3), (2, 4), (2, 3), (4, 3), 3, is_len),   // db
    ];
    for scalar in [false, true] {
        let f = pick!(scalar, linear_backward_views, linear_backward_views_with);
        let (mut dx, mut dw, mut db) = ([7.0f32; 6], [7.0f32; 12], [7.0f32; 4]);
        for (w_at, dy_at, dx_at, dw_at, nb, m) in cases {
            let (xv, wv, dyv) = (mr(&x, (2, 3)), mr(&w, w_at), mr(&dy, dy_at));
            let (gx, gw) = (mm(&mut dx, dx_at), mm(&mut dw, dw_at));
            let r = f(xv, wv, dyv, Some(gx), Some(gw), Some(&mut db[..nb]));
            err!(
                r,
                m,
                "w {w_at:?}, dy {dy_at:?}, dx {dx_at:?}, dw {dw_at:?}, db {nb}"
            );
        }
        assert_eq!((dx, dw, db), ([7.0; 6], [7.0; 12], [7.0; 4]));
    }
}

#[test]
fn audit_linear_const_faces_have_no_runtime_errors() {
    // linear / linear_with: no Result; NaN reaches every output.
    let w = [[1.0f32, 0.0], [0.0, 0.0]];
    let mut y = [0.0f32; 2];
    linear(&w, &[0.5, 0.5], &[f32::NAN, 1.0], &mut y);
    assert!(y.iter().all(|v| v.is_nan()));
    linear_with::<Scalar, f32, 0, 2>(&[[]; 2], &[0.5, 1.5], &[], &mut y);
    assert_eq!(y, [0.5, 1.5]);
    // linear_backward_with: shapes at compile time, always Ok.
    let (mut dx, mut dw, mut db) = ([[0.0f32; 2]; 1], [[0.0f32; 2]; 2], [0.0f32; 2]);
    linear_backward_with::<Scalar, f32, 1, 2, 2>(
        &[[1.0, 2.0]],
        &w,
        &[[1.0, 1.0]],
        Some(&mut dx),
        Some(&mut dw),
        Some(&mut db),
    )
    .unwrap();
    assert_eq!((dx, dw, db), ([[1.0, 0.0]], [[1.0, 2.0]; 2], [1.0; 2]));
    linear_backward_with::<Simd, f32, 0, 2, 2>(&[], &w, &[], None, None, None).unwrap();
    // LinearParams and Linear: constructors and accessors.
    let mut p = LinearParams::<f32, 2, 1>::zeros();
    assert_eq!(p.slices(), (&[0.0f32; 2][..], &[0.0f32][..]));
    let (wv, bv) = p.slices_mut();
    wv.copy_from_slice(&[2.0, -1.0]);
    bv[0] = 0.5;
    let mut layer = Linear::<f32, 2, 1, LinearParams<f32, 2, 1>>::new(p);
    layer.params_mut().bias[0] = 1.0;
    assert_eq!(layer.params().weight, [[2.0, -1.0]]);
    let mut y = [[0.0f32]];
    layer.forward(&[[1.0, 1.0]], &mut y).unwrap();
    assert_eq!(y, [[2.0]]);
    let mut g = LinearParams::zeros();
    layer
        .backward(&[[1.0, 1.0]], &[[1.0]], None, &mut g)
        .unwrap();
    assert_eq!((g.weight, g.bias), ([[1.0, 1.0]], [1.0]));
    layer.forward::<0>(&[], &mut []).unwrap();
}

#[test]
fn audit_linear_dyn_bad_inputs() {
    err!(LinearDyn::<f32>::zeros(usize::MAX, 2), is_param);
    let mut l = LinearDyn::<f32>::zeros(3, 2).unwrap();
    l.weight.as_mut_slice().copy_from_slice(&vals(6, 1.0));
    let x = Matrix::from_vec(4, 3, vals(12, 2.0)).unwrap();
    err!(l.forward(&Matrix::zeros(4, 5).unwrap()), is_shape);
    let y = l.forward(&x).unwrap();
    l.backward(&x, &y).unwrap();
    let (dw, db) = (l.dweight.clone(), l.dbias.clone());
    err!(l.backward(&x, &Matrix::zeros(4, 3).unwrap()), is_shape);
    err!(l.backward(&x, &Matrix::zeros(3, 2).unwrap()), is_shape);
    err!(l.backward(&Matrix::zeros(4, 5).unwrap(), &y), is_shape);
    // Public fields edited out of shape.
    l.bias.push(0.0);
    err!(l.forward(&x), is_len);
    l.bias.pop();
    l.dbias.push(0.0);
    err!(l.backward(&x, &y), is_len);
    l.dbias.pop();
    assert_eq!((&l.dweight, &l.dbias), (&dw, &db));
    l.zero_grad();
    assert!(
        l.dweight
            .as_slice()
            .iter()
            .chain(&l.dbias)
            .all(|&v| v == 0.0)
    );
}

// ---------------------------------------------------------------- nn::loss

#[test]
fn audit_mse_and_bce_bad_inputs() {
    let (p, t) = (vals(5, 1.0), vals(5, 2.0));
    let mut d = [7.0f32; 5];
    err!(mse_loss(&p, &t[..4], None), is_len);
    err!(mse_loss(&p, &t, Some(&mut d[..4])), is_len);
    err!(mse_loss::<f32>(&[], &[], Some(&mut [])), is_empty);
    assert_eq!(d, [7.0; 5]);
    let mut pn = p.clone();
    pn[2] = f32::NAN;
    assert!(mse_loss(&pn, &t, Some(&mut d)).unwrap().is_nan());
    assert!(nan_exactly(&d, 2..3));

    let tb = [0.0f32, 1.0, 0.5, 0.25, 1.0];
    let mut d = [7.0f32; 5];
    err!(bce_with_logits(&p, &tb[..4], None), is_len);
    err!(bce_with_logits(&p, &tb, Some(&mut d[..4])), is_len);
    err!(bce_with_logits::<f32>(&[], &[], None), is_empty);
    for bad in [1.5f32, -0.1, f32::NAN, f32::INFINITY] {
        let mut tt = tb;
        tt[3] = bad;
        err!(
            bce_with_logits(&p, &tt, Some(&mut d)),
            is_param,
            "target {bad}"
        );
    }
    assert_eq!(d, [7.0; 5]);
    assert!(bce_with_logits(&pn, &tb, Some(&mut d)).unwrap().is_nan());
    assert!(nan_exactly(&d, 2..3));
    // Extreme but finite logits stay finite.
    assert!(
        bce_with_logits(&[1e30f32, -1e30], &[0.0, 1.0], None)
            .unwrap()
            .is_finite()
    );
}

#[test]
fn audit_cross_entropy_bad_inputs() {
    let logits = vals(6, 1.0); // (2, 3)
    let lv = mr(&logits, (2, 3));
    let plain = CrossEntropy::<f32>::default();
    let smooth = |label_smoothing| CrossEntropy {
        label_smoothing,
        ignore_index: None,
    };
    type F =
        fn(MatRef<'_, f32>, &[usize], &CrossEntropy<f32>, Option<MatMut<'_, f32>>) -> Result<f32>;
    for f in [
        cross_entropy_views::<f32> as F,
        cross_entropy_views_with::<Scalar, f32>,
    ] {
        let mut d = [7.0f32; 6];
        err!(f(lv, &[0], &plain, None), is_len);
        err!(f(lv, &[0, 1], &plain, Some(mm(&mut d, (2, 2)))), is_shape);
        for eps in [1.5f32, -0.1, f32::NAN] {
            let r = f(lv, &[0, 1], &smooth(eps), Some(mm(&mut d, (2, 3))));
            err!(r, is_param, "label smoothing {eps}");
        }
        err!(f(mr(&[], (0, 3)), &[], &plain, None), is_empty);
        err!(f(mr(&[], (2, 0)), &[0, 0], &plain, None), is_empty);
        assert_eq!(
            f(lv, &[0, 3], &plain, Some(mm(&mut d, (2, 3)))),
            Err(Error::OutOfRange {
                what: "cross-entropy: target",
                index: 3,
                len: 3
            })
        );
        let ign = CrossEntropy {
            label_smoothing: 0.0f32,
            ignore_index: Some(7),
        };
        err!(f(lv, &[7, 7], &ign, Some(mm(&mut d, (2, 3)))), is_empty);
        assert_eq!(d, [7.0; 6]);
        // An ignored out-of-range target is fine.
        f(lv, &[7, 1], &ign, Some(mm(&mut d, (2, 3)))).unwrap();
        assert_eq!(&d[..3], &[0.0; 3]);
        // NaN in row 0: loss NaN, gradient NaN on row 0 only.
        let mut ln = logits.clone();
        ln[0] = f32::NAN;
        let loss = f(mr(&ln, (2, 3)), &[0, 1], &plain, Some(mm(&mut d, (2, 3)))).unwrap();
        assert!(loss.is_nan());
        assert!(nan_exactly(&d, 0..3));
    }
    // Const face: shapes at compile time; targets and options at run time.
    let l = [[1.0f32, 2.0], [0.5, 0.0]];
    let mut d = [[7.0f32; 2]; 2];
    err!(cross_entropy(&l, &[0, 2], &plain, Some(&mut d)), is_range);
    err!(
        cross_entropy(&l, &[0, 1], &smooth(2.0), Some(&mut d)),
        is_param
    );
    assert_eq!(d, [[7.0; 2]; 2]);
}

// ---------------------------------------------------------------- nn::optim

/// A step over two parameters, the second with `ng` gradient and `ns` state
/// values (the first valid, with `n` state values), must fail with
/// `LengthMismatch` and leave both parameters and states alone.
fn check_second_param(
    step: impl FnOnce(&mut [Param<'_, f32>]) -> Result<()>,
    n: usize,
    (ng, ns): (usize, usize),
) {
    let g = [0.5f32, -0.5];
    let (mut w1, mut w2) = ([1.0f32, 2.0], [1.0f32, 2.0]);
    let (mut s1, mut s2) = (vec![3.0f32; n], vec![3.0f32; ns]);
    let mut ps = [
        Param::new(&mut w1, &g, &mut s1),
        Param::new(&mut w2, &g[..ng], &mut s2),
    ];
    err!(step(&mut ps), is_len, "gradient {ng}, state {ns}");
    assert_eq!((w1, w2), ([1.0, 2.0], [1.0, 2.0]));
    assert!(s1.iter().chain(&s2).all(|&v| v == 3.0));
}

#[test]
fn audit_sgd_bad_input_leaves_state() {
    let g = [0.5f32, -0.5];
    let bad_cfgs = [
        Sgd::new(0.0f32),
        Sgd::new(-0.1),
        Sgd::new(f32::NAN),
        Sgd::new(f32::INFINITY),
        Sgd::new(0.1).momentum(-0.1),
        Sgd::new(0.1).momentum(f32::NAN),
        Sgd::new(0.1).momentum(0.9).dampening(f32::INFINITY),
        Sgd::new(0.1).weight_decay(-1.0),
        Sgd::new(0.1).weight_decay(f32::NAN),
        Sgd::new(0.1).nesterov(true),
        Sgd::new(0.1).momentum(0.9).dampening(0.1).nesterov(true),
    ];
    for mut sgd in bad_cfgs {
        let mut w = [1.0f32, 2.0];
        let mut buf = [3.0f32; 2];
        let mut st: Vec<f32> = buf[..sgd.state_len(2)].to_vec();
        err!(sgd.step(&mut [Param::new(&mut w, &g, &mut st)]), is_param);
        err!(
            sgd.step_with::<Scalar>(&mut [Param::new(&mut w, &g, &mut buf[..0])]),
            is_param
        );
        assert_eq!((w, sgd.steps()), ([1.0, 2.0], 0));
        assert!(st.iter().all(|&v| v == 3.0));
    }
    // Lengths: a later bad parameter leaves the earlier good one alone.
    for momentum in [0.0f32, 0.9] {
        let mut sgd = Sgd::new(0.1).momentum(momentum);
        let n = sgd.state_len(2);
        for lens in [(2, n + 1), (1, n)] {
            check_second_param(|ps| sgd.step(ps), n, lens);
        }
        assert_eq!(sgd.steps(), 0);
    }
    // Builders, accessors, NaN propagation.
    let mut sgd = Sgd::new(0.1f32)
        .momentum(0.9)
        .dampening(0.0)
        .weight_decay(0.01)
        .nesterov(true);
    assert_eq!(
        (
            sgd.lr,
            sgd.momentum,
            sgd.weight_decay,
            sgd.nesterov,
            sgd.state_len(5)
        ),
        (0.1, 0.9, 0.01, true, 5)
    );
    assert_eq!(Sgd::new(0.1f32).state_len(5), 0);
    let (mut w, mut s) = ([1.0f32, 2.0], [0.0f32; 2]);
    sgd.step(&mut [Param::new(&mut w, &[f32::NAN, 0.0], &mut s)])
        .unwrap();
    assert!(w[0].is_nan() && w[1].is_finite() && s[0].is_nan());
    assert_eq!(sgd.steps(), 1);
    sgd.reset();
    assert_eq!(sgd.steps(), 0);
}

#[test]
fn audit_adam_bad_input_leaves_state() {
    let g = [0.5f32, -0.5];
    let bad_cfgs = [
        Adam::new(0.0f32),
        Adam::new(f32::NAN),
        Adam::new(f32::INFINITY),
        Adam::new(0.1).betas(1.0, 0.999),
        Adam::new(0.1).betas(0.9, 1.0),
        Adam::new(0.1).betas(-0.1, 0.999),
        Adam::new(0.1).betas(0.9, f32::NAN),
        Adam::new(0.1).eps(0.0),
        Adam::new(0.1).eps(-1e-8),
        Adam::new(0.1).eps(f32::INFINITY),
        Adam::new(0.1).weight_decay(-0.1),
        Adam::adamw(0.1).weight_decay(f32::NAN),
    ];
    for mut adam in bad_cfgs {
        let mut w = [1.0f32, 2.0];
        let mut st = [3.0f32; 4];
        err!(adam.step(&mut [Param::new(&mut w, &g, &mut st)]), is_param);
        assert_eq!((w, st, adam.steps()), ([1.0, 2.0], [3.0; 4], 0));
    }
    // Lengths: a later bad parameter leaves the earlier good one alone.
    let mut adam = Adam::new(0.1f32);
    for lens in [(2, 2), (1, 4)] {
        check_second_param(|ps| adam.step(ps), 4, lens);
    }
    assert_eq!(adam.steps(), 0);
    // Builders and accessors.
    let a = Adam::adamw(0.01f32).betas(0.8, 0.9).eps(1e-6);
    assert_eq!(
        (a.decoupled, a.weight_decay, a.beta1, a.beta2, a.eps),
        (true, 0.01, 0.8, 0.9, 1e-6)
    );
    assert_eq!((a.state_len(3), a.state_len(usize::MAX)), (6, usize::MAX));
    // NaN in a gradient reaches its parameter and its moments.
    let (mut w1, mut st) = ([1.0f32, 2.0], [0.0f32; 4]);
    adam.step(&mut [Param::new(&mut w1, &[f32::NAN, 0.5], &mut st)])
        .unwrap();
    assert!(w1[0].is_nan() && w1[1].is_finite() && st[0].is_nan() && st[2].is_nan());
    assert_eq!(adam.steps(), 1);
    adam.reset();
    assert_eq!(adam.steps(), 0);
}

#[test]
fn audit_clip_grad_norm_bad_inputs() {
    for max in [0.0f32, -1.0, f32::NAN, f32::INFINITY] {
        let mut g = [3.0f32, 4.0];
        err!(
            clip_grad_norm(&mut [&mut g[..]], max),
            is_param,
            "max {max}"
        );
        assert_eq!(g, [3.0, 4.0]);
    }
    for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
        let (mut a, mut b) = ([3.0f32, 4.0], [bad, 1.0]);
        err!(
            clip_grad_norm(&mut [&mut a[..], &mut b[..]], 1.0),
            is_nan,
            "{bad}"
        );
        assert_eq!(a, [3.0, 4.0]);
    }
    // A norm that fits f64 but not f32.
    let mut g = [3e38f32, 3e38];
    err!(clip_grad_norm(&mut [&mut g[..]], 1.0), is_nan);
    assert_eq!(g, [3e38, 3e38]);
    // Edges: nothing to clip; an empty list.
    assert_eq!(clip_grad_norm::<f32>(&mut [], 1.0), Ok(0.0));
    let mut g = [3.0f32, 4.0];
    assert_eq!(clip_grad_norm(&mut [&mut g[..]], 10.0), Ok(5.0));
    assert_eq!(g, [3.0, 4.0]);
}

// ---------------------------------------------------------------- nn::pool

#[test]
fn audit_pool_shape_rules() {
    let s = Pool2dShape::new(1, 1, 4, 4, 2, 2);
    assert_eq!((s.stride, s.padding, s.ceil_mode), ((2, 2), (0, 0), false));
    assert_eq!(s.output(), Ok((2, 2)));
    for bad in [
        s.padding(2, 0), // over half the kernel
        s.padding(0, 2),
        Pool2dShape::new(1, 1, 4, 4, 0, 2), // zero kernel
        s.stride(0, 2),
        s.stride(2, 0),
        Pool2dShape::new(1, 1, 4, 4, 5, 2), // window larger than the input
    ] {
        err!(bad.output(), is_param, "{bad:?}");
        err!(bad.lens(), is_param, "{bad:?}");
    }
    for bad in [
        Pool2dShape::new(usize::MAX, 2, 4, 4, 2, 2),
        Pool2dShape::new(1, 1, usize::MAX, 2, 1, 1),
        Pool2dShape::new(0, 1, usize::MAX, 2, 1, 1),
    ] {
        err!(bad.lens(), is_param, "{bad:?}");
    }
    // Ceil mode, including PyTorch's dropped last window.
    let five = Pool2dShape::new(1, 1, 5, 5, 2, 2).ceil_mode(true);
    assert_eq!(five.output(), Ok((3, 3)));
    assert_eq!(five.padding(1, 1).output(), Ok((3, 3)));
}

#[test]
fn audit_max_pool_bad_inputs() {
    let s = Pool2dShape::new(1, 2, 4, 4, 2, 2);
    let x = vals(32, 1.0);
    let (mut y, mut idx) = ([7.0f32; 8], [99usize; 8]);
    // Lengths of x, y and the indices.
    for (nx, ny, ni) in [(31, 8, 8), (32, 7, 8), (32, 8, 7)] {
        let r = max_pool2d_views(&x[..nx], &s, &mut y[..ny], &mut idx[..ni]);
        err!(r, is_len, "forward lengths {nx}, {ny}, {ni}");
    }
    err!(
        max_pool2d_views(&x, &s.stride(0, 1), &mut y, &mut idx),
        is_param
    );
    assert_eq!((y, idx), ([7.0; 8], [99; 8]));
    max_pool2d_views(&x, &s, &mut y, &mut idx).unwrap();
    let mut dx = [7.0f32; 32];
    let dy = [1.0f32; 8];
    // Lengths of dy, the indices and dx.
    for (ndy, ni, ndx) in [(7, 8, 32), (8, 7, 32), (8, 8, 31)] {
        let r = max_pool2d_backward_views(&s, &dy[..ndy], &idx[..ni], &mut dx[..ndx]);
        err!(r, is_len, "backward lengths {ndy}, {ni}, {ndx}");
    }
    err!(
        max_pool2d_backward_views(&s.padding(3, 0), &dy, &idx, &mut dx),
        is_param
    );
    let mut bad = idx;
    bad[5] = 16;
    assert_eq!(
        max_pool2d_backward_views(&s, &dy, &bad, &mut dx),
        Err(Error::OutOfRange {
            what: "max_pool2d backward: index",
            index: 16,
            len: 16
        })
    );
    assert_eq!(dx, [7.0; 32]);
    // NaN in a window: that output is NaN, with the NaN's index.
    let mut xn = x.clone();
    xn[1] = f32::NAN;
    max_pool2d_views(&xn, &s, &mut y, &mut idx).unwrap();
    assert!(nan_exactly(&y, 0..1) && idx[0] == 1);
}

#[test]
fn audit_avg_pool_bad_inputs() {
    let s = Pool2dShape::new(1, 2, 4, 4, 2, 2);
    let x = vals(32, 1.0);
    for cip in [false, true] {
        let mut y = [7.0f32; 8];
        err!(avg_pool2d_views(&x[..31], &s, cip, &mut y), is_len);
        err!(avg_pool2d_views(&x, &s, cip, &mut y[..7]), is_len);
        for bad in [s.padding(2, 2), Pool2dShape::new(1, 2, 4, 4, 5, 5)] {
            err!(avg_pool2d_views(&x, &bad, cip, &mut y), is_param, "{bad:?}");
        }
        assert_eq!(y, [7.0; 8]);
        let mut dx = [7.0f32; 32];
        // Lengths of dy and dx.
        for (ndy, ndx) in [(7, 32), (8, 31)] {
            let r = avg_pool2d_backward_views(&s, cip, &[1.0; 8][..ndy], &mut dx[..ndx]);
            err!(r, is_len, "lengths {ndy}, {ndx}");
        }
        err!(
            avg_pool2d_backward_views(&s.stride(0, 0), cip, &[1.0; 8], &mut dx),
            is_param
        );
        assert_eq!(dx, [7.0; 32]);
        let mut xn = x.clone();
        xn[5] = f32::NAN; // window (0, 0) of plane 0
        avg_pool2d_views(&xn, &s, cip, &mut y).unwrap();
        assert!(nan_exactly(&y, 0..1));
    }
}

#[test]
fn audit_global_avg_pool_bad_inputs() {
    let x = vals(12, 1.0);
    let mut y = [7.0f32; 3];
    err!(global_avg_pool_views(&x, 3, 4, &mut y[..2]), is_len);
    err!(global_avg_pool_views(&x[..11], 3, 4, &mut y), is_len);
    err!(global_avg_pool_views(&x, 3, usize::MAX, &mut y), is_len);
    err!(global_avg_pool_views::<f32>(&[], 3, 0, &mut y), is_empty);
    err!(global_avg_pool_views::<f32>(&[], 0, 0, &mut []), is_empty);
    assert_eq!(y, [7.0; 3]);
    let mut dx = [7.0f32; 12];
    let dy = [1.0f32; 3];
    err!(
        global_avg_pool_backward_views(&dy, 4, &mut dx[..11]),
        is_len
    );
    err!(
        global_avg_pool_backward_views(&dy, usize::MAX, &mut dx),
        is_len
    );
    err!(global_avg_pool_backward_views(&dy, 0, &mut []), is_empty);
    assert_eq!(dx, [7.0; 12]);
    let mut xn = x.clone();
    xn[5] = f32::NAN;
    global_avg_pool_views(&xn, 3, 4, &mut y).unwrap();
    assert!(nan_exactly(&y, 1..2));
}

// ---------------------------------------------------------------- nn::recurrent

#[test]
fn audit_rnn_shape_and_sizes() {
    assert_eq!(
        [Cell::RnnTanh, Cell::RnnRelu, Cell::Lstm, Cell::Gru].map(|c| (
            c.gates(),
            c.saved_blocks(),
            c.has_cell_state()
        )),
        [(1, 0, false), (1, 0, false), (4, 6, true), (3, 4, false)]
    );
    for cell in [Cell::RnnTanh, Cell::Lstm, Cell::Gru] {
        let bad: [(RnnShape, Matcher); 6] = [
            (RnnShape::new(0, 1, 1, 1), is_empty),
            (RnnShape::new(1, 0, 1, 1), is_empty),
            (RnnShape::new(1, 1, 0, 1), is_param),
            (RnnShape::new(1, 1, 1, 0), is_param),
            (RnnShape::new(usize::MAX, 2, 1, 1), is_param),
            (RnnShape::new(1, 1, 1, usize::MAX / 2), is_param),
        ];
        for (s, m) in bad {
            err!(s.check(cell), m, "{cell:?} {s:?}");
        }
        RnnShape::new(1, 1, 1, 1).check(cell).unwrap();
        let huge = RnnShape::new(usize::MAX, 2, 1, 1);
        assert_eq!(recurrent_forward_scratch_len(cell, &huge), usize::MAX);
        assert_eq!(recurrent_backward_scratch_len(cell, &huge), usize::MAX);
        assert_eq!(recurrent_step_scratch_len(cell, usize::MAX, 2), usize::MAX);
        assert_eq!(
            recurrent_saved_len(cell, &huge),
            if cell == Cell::RnnTanh { 0 } else { usize::MAX }
        );
    }
    let s = RnnShape::new(2, 3, 4, 5);
    assert_eq!(recurrent_saved_len(Cell::Lstm, &s), 2 * 3 * 5 * 6);
    assert_eq!(recurrent_forward_scratch_len(Cell::Gru, &s), 2 * 4 * 5);
    assert_eq!(
        recurrent_backward_scratch_len(Cell::Gru, &s),
        2 * 3 * 3 * 5 * 2 + 3 * 2 * 5
    );
    assert_eq!(
        recurrent_step_scratch_len(Cell::Lstm, 2, 5),
        2 * 5 * 5 + 2 * 5 * 6 + 10
    );
}

/// Every buffer of a valid forward and backward: N 2, S 3, I 2, H 3.
#[derive(Clone, Debug, PartialEq)]
struct Rec {
    cell: Cell,
    shape: RnnShape,
    w_ih: Vec<f32>,
    w_hh: Vec<f32>,
    b_ih: Vec<f32>,
    b_hh: Vec<f32>,
    x: Vec<f32>,
    h0: Vec<f32>,
    c0: Option<Vec<f32>>,
    out: Vec<f32>,
    h_n: Vec<f32>,
    c_n: Option<Vec<f32>>,
    saved: Vec<f32>,
    scratch: Vec<f32>,
    dout: Vec<f32>,
    dh_n: Vec<f32>,
    dc_n: Option<Vec<f32>>,
    dw_ih: Vec<f32>,
    dw_hh: Vec<f32>,
    db_ih: Vec<f32>,
    db_hh: Vec<f32>,
    dx: Vec<f32>,
    dh0: Vec<f32>,
    dc0: Option<Vec<f32>>,
    bscratch: Vec<f32>,
}

impl Rec {
    fn new(cell: Cell) -> Self {
        let (n, s, i, h) = (2, 3, 2, 3);
        let shape = RnnShape::new(n, s, i, h);
        let gh = cell.gates() * h;
        let state = |v: Vec<f32>| cell.has_cell_state().then_some(v);
        Self {
            cell,
            shape,
            w_ih: vals(gh * i, 1.0),
            w_hh: vals(gh * h, 2.0),
            b_ih: vals(gh, 3.0),
            b_hh: vals(gh, 4.0),
            x: vals(n * s * i, 5.0),
            h0: vals(n * h, 6.0),
            c0: state(vals(n * h, 7.0)),
            out: vec![7.0; n * s * h],
            h_n: vec![7.0; n * h],
            c_n: state(vec![7.0; n * h]),
            saved: vec![7.0; recurrent_saved_len(cell, &shape)],
            scratch: vec![7.0; recurrent_forward_scratch_len(cell, &shape)],
            dout: vals(n * s * h, 8.0),
            dh_n: vals(n * h, 9.0),
            dc_n: state(vals(n * h, 10.0)),
            dw_ih: vec![0.5; gh * i],
            dw_hh: vec![0.5; gh * h],
            db_ih: vec![0.5; gh],
            db_hh: vec![0.5; gh],
            dx: vec![7.0; n * s * i],
            dh0: vec![7.0; n * h],
            dc0: state(vec![7.0; n * h]),
            bscratch: vec![7.0; recurrent_backward_scratch_len(cell, &shape)],
        }
    }
    fn forward(&mut self, scalar: bool) -> Result<()> {
        self.run(false, scalar)
    }
    fn backward(&mut self, scalar: bool) -> Result<()> {
        self.run(true, scalar)
    }
    fn run(&mut self, backward: bool, scalar: bool) -> Result<()> {
        let (w_ih, w_hh, b_ih, b_hh) = (&self.w_ih, &self.w_hh, &self.b_ih, &self.b_hh);
        let p = RecurrentParams::new(self.cell, w_ih, w_hh, Some(b_ih), Some(b_hh));
        let (s, x, h0) = (&self.shape, &self.x[..], Some(&self.h0[..]));
        let c0 = self.c0.as_deref();
        if !backward {
            let f = pick!(
                scalar,
                recurrent_forward_views,
                recurrent_forward_views_with
            );
            let (out, h_n, c_n) = (
                &mut self.out,
                Some(&mut self.h_n[..]),
                self.c_n.as_deref_mut(),
            );
            return f(
                &p,
                s,
                x,
                h0,
                c0,
                out,
                h_n,
                c_n,
                &mut self.saved,
                &mut self.scratch,
            );
        }
        let mut g = RecurrentGrads {
            dw_ih: &mut self.dw_ih,
            dw_hh: &mut self.dw_hh,
            db_ih: Some(&mut self.db_ih),
            db_hh: Some(&mut self.db_hh),
        };
        let f = pick!(
            scalar,
            recurrent_backward_views,
            recurrent_backward_views_with
        );
        let (dout, dh_n, dc_n) = (
            Some(&self.dout[..]),
            Some(&self.dh_n[..]),
            self.dc_n.as_deref(),
        );
        let (dx, dh0) = (Some(&mut self.dx[..]), Some(&mut self.dh0[..]));
        let (dc0, bs) = (self.dc0.as_deref_mut(), &mut self.bscratch);
        let (out, saved) = (&self.out, &self.saved);
        f(
            &p, s, x, h0, c0, out, saved, dout, dh_n, dc_n, &mut g, dx, dh0, dc0, bs,
        )
    }
    /// What a forward writes (scratch aside).
    fn fwd_outputs(&self) -> (Vec<f32>, Vec<f32>, Option<Vec<f32>>, Vec<f32>) {
        (
            self.out.clone(),
            self.h_n.clone(),
            self.c_n.clone(),
            self.saved.clone(),
        )
    }
    /// What a backward writes or adds into (scratch aside).
    fn bwd_outputs(&self) -> [Vec<f32>; 7] {
        [
            self.dw_ih.clone(),
            self.dw_hh.clone(),
            self.db_ih.clone(),
            self.db_hh.clone(),
            self.dx.clone(),
            self.dh0.clone(),
            self.dc0.clone().unwrap_or_default(),
        ]
    }
}

/// Edits shared by forward and backward, with the error they must give.
fn rec_shared_edits(cell: Cell) -> Vec<Case<Rec>> {
    let mut v: Vec<Case<Rec>> = vec![
        ("w_ih", |r| shorten(&mut r.w_ih), is_len),
        ("w_hh", |r| r.w_hh.push(0.0), is_len),
        ("b_ih", |r| shorten(&mut r.b_ih), is_len),
        ("b_hh", |r| r.b_hh.push(0.0), is_len),
        ("x", |r| shorten(&mut r.x), is_len),
        ("h0", |r| shorten(&mut r.h0), is_len),
        ("out", |r| shorten(&mut r.out), is_len),
        ("batch 0", |r| r.shape.batch = 0, is_empty),
        ("seq 0", |r| r.shape.seq = 0, is_empty),
        ("hidden 0", |r| r.shape.hidden = 0, is_param),
        ("input 0", |r| r.shape.input = 0, is_param),
    ];
    v.push(if cell.has_cell_state() {
        ("c0", |r| shorten(r.c0.as_mut().unwrap()), is_len)
    } else {
        ("c0 given", |r| r.c0 = Some(vec![0.0; 6]), is_param)
    });
    if cell.saved_blocks() > 0 {
        v.push(("saved", |r| shorten(&mut r.saved), is_buf));
    }
    v
}

#[test]
fn audit_recurrent_forward_bad_inputs() {
    for cell in [Cell::RnnTanh, Cell::RnnRelu, Cell::Lstm, Cell::Gru] {
        let mut edits = rec_shared_edits(cell);
        edits.push(("h_n", |r| r.h_n.push(0.0), is_len));
        edits.push(("scratch", |r| shorten(&mut r.scratch), is_buf));
        edits.push(if cell.has_cell_state() {
            ("c_n", |r| shorten(r.c_n.as_mut().unwrap()), is_len)
        } else {
            ("c_n given", |r| r.c_n = Some(vec![7.0; 6]), is_param)
        });
        for scalar in [false, true] {
            let label = format!("{cell:?}, scalar {scalar}");
            check_cases(
                &label,
                &Rec::new(cell),
                &edits,
                |r| r.forward(scalar),
                Rec::fwd_outputs,
            );
            // NaN in sequence 0 at step 1 stays in sequence 0.
            let mut r = Rec::new(cell);
            r.x[2] = f32::NAN;
            r.forward(scalar).unwrap();
            assert!(
                r.out[3..6].iter().any(|v| v.is_nan()),
                "{cell:?}: {:?}",
                r.out
            );
            assert!(r.out[..3].iter().chain(&r.out[9..]).all(|v| v.is_finite()));
        }
    }
}

#[test]
fn audit_recurrent_backward_bad_inputs() {
    for cell in [Cell::RnnTanh, Cell::Lstm, Cell::Gru] {
        let mut edits = rec_shared_edits(cell);
        edits.extend_from_slice(&[
            ("dout", |r| shorten(&mut r.dout), is_len),
            ("dh_n", |r| shorten(&mut r.dh_n), is_len),
            ("dw_ih", |r| shorten(&mut r.dw_ih), is_len),
            ("dw_hh", |r| r.dw_hh.push(0.5), is_len),
            ("db_ih", |r| shorten(&mut r.db_ih), is_len),
            ("db_hh", |r| r.db_hh.push(0.5), is_len),
            ("dx", |r| shorten(&mut r.dx), is_len),
            ("dh0", |r| r.dh0.push(7.0), is_len),
            ("scratch", |r| shorten(&mut r.bscratch), is_buf),
        ]);
        if cell.has_cell_state() {
            edits.push(("dc_n", |r| shorten(r.dc_n.as_mut().unwrap()), is_len));
            edits.push(("dc0", |r| shorten(r.dc0.as_mut().unwrap()), is_len));
        } else {
            edits.push(("dc_n given", |r| r.dc_n = Some(vec![0.0; 6]), is_param));
            edits.push(("dc0 given", |r| r.dc0 = Some(vec![7.0; 6]), is_param));
        }
        for scalar in [false, true] {
            let mut fwd = Rec::new(cell);
            fwd.forward(scalar).unwrap();
            fwd.clone().backward(scalar).unwrap();
            let label = format!("{cell:?}, scalar {scalar}");
            check_cases(
                &label,
                &fwd,
                &edits,
                |r| r.backward(scalar),
                Rec::bwd_outputs,
            );
        }
    }
}

#[test]
fn audit_recurrent_step_bad_inputs() {
    for cell in [Cell::RnnRelu, Cell::Lstm, Cell::Gru] {
        let (b, i, h) = (2, 2, 3);
        let gh = cell.gates() * h;
        let (w_ih, w_hh) = (vals(gh * i, 1.0), vals(gh * h, 2.0));
        let bias = vals(gh, 3.0);
        let p = RecurrentParams::new(cell, &w_ih, &w_hh, Some(&bias), None);
        let x = vals(b * i, 4.0);
        let need = recurrent_step_scratch_len(cell, b, h);
        let lstm = cell.has_cell_state();
        let run =
            |batch: usize, x: &[f32], hl: usize, cl: Option<usize>, sl: usize, scalar: bool| {
                let mut hv = vec![0.25f32; hl];
                let mut cv = cl.map(|n| vec![0.75f32; n]);
                let mut scratch = vec![0.0f32; sl];
                let f = pick!(scalar, recurrent_step_views, recurrent_step_views_with);
                let r = f(&p, batch, x, &mut hv, cv.as_deref_mut(), &mut scratch);
                if r.is_err() {
                    assert!(hv.iter().all(|&v| v == 0.25), "h written on Err");
                    assert!(cv.iter().flatten().all(|&v| v == 0.75), "c written on Err");
                }
                r
            };
        let c = lstm.then_some(b * h);
        for scalar in [false, true] {
            run(b, &x, b * h, c, need, scalar).unwrap();
            err!(run(0, &x, b * h, c, need, scalar), is_empty);
            err!(run(b, &[], b * h, c, need, scalar), is_param); // I = 0
            err!(run(b, &x, 1, c, need, scalar), is_param); // H = 0
            err!(run(b, &x[..3], b * h, c, need, scalar), is_len);
            err!(run(b, &x, b * h - 1, c, need, scalar), is_len);
            err!(run(b, &x, b * h, c, need - 1, scalar), is_buf);
            if lstm {
                err!(run(b, &x, b * h, Some(b * h - 1), need, scalar), is_len);
                run(b, &x, b * h, None, need, scalar).unwrap(); // c = zeros
            } else {
                err!(run(b, &x, b * h, Some(b * h), need, scalar), is_param);
            }
        }
        // Weights that do not fit the sizes read from x and h.
        let p_bad = RecurrentParams::new(cell, &w_ih[1..], &w_hh, None, None);
        let mut hv = vec![0.0f32; b * h];
        err!(
            recurrent_step_views(&p_bad, b, &x, &mut hv, None, &mut vec![0.0; need]),
            is_len
        );
    }
}

#[test]
fn audit_recurrent_const_layer_bad_inputs() {
    err!(Lstm::<f32, 2, 3>::zeros(Cell::Gru, true), is_param);
    err!(Gru::<f32, 2, 3>::zeros(Cell::Lstm, true), is_param);
    err!(Rnn::<f32, 2, 3>::zeros(Cell::Lstm, false), is_param);
    Rnn::<f32, 2, 3>::zeros(Cell::RnnRelu, false).unwrap();

    let mut lstm = Lstm::<f32, 2, 3>::zeros(Cell::Lstm, true).unwrap();
    lstm.w_ih[2][0] = [1.0, 0.5];
    let p = lstm.params();
    assert_eq!(
        (p.w_ih.len(), p.w_hh.len(), p.b_ih.map(<[f32]>::len)),
        (24, 36, Some(12))
    );
    let x = [[[1.0f32, -1.0]; 2]; 1];
    let fs = recurrent_forward_scratch_len(Cell::Lstm, &RnnShape::new(1, 2, 2, 3));
    let bs = recurrent_backward_scratch_len(Cell::Lstm, &RnnShape::new(1, 2, 2, 3));
    let mut out = [[[7.0f32; 3]; 2]; 1];
    // Layer `$l`'s forward of `$x` into `out`: initial cell state `$c0`, no
    // other state in or out, `$scratch` values of scratch.
    macro_rules! fwd {
        ($l:expr, $x:expr, $c0:expr, $saved:expr, $scratch:expr) => {
            $l.forward(
                $x,
                None,
                $c0,
                &mut out,
                None,
                None,
                $saved,
                &mut vec![0.0; $scratch],
            )
        };
    }
    // K ≠ 6 blocks for an LSTM.
    let mut saved4 = [[[[7.0f32; 3]; 4]; 2]; 1];
    err!(fwd!(lstm, &x, None, &mut saved4, fs), is_shape);
    let mut saved = [[[[7.0f32; 3]; 6]; 2]; 1];
    err!(fwd!(lstm, &x, None, &mut saved, fs - 1), is_buf);
    assert_eq!((out, saved), ([[[7.0; 3]; 2]; 1], [[[[7.0; 3]; 6]; 2]; 1]));
    // Empty batch or sequence.
    err!(
        lstm.forward::<0, 2, 6>(&[], None, None, &mut [], None, None, &mut [], &mut []),
        is_empty
    );
    err!(
        lstm.forward::<1, 0, 6>(&[[]], None, None, &mut [[]], None, None, &mut [[]], &mut []),
        is_empty
    );
    // Zero input size.
    let l0 = Lstm::<f32, 0, 3>::zeros(Cell::Lstm, false).unwrap();
    err!(fwd!(l0, &[[[]; 2]; 1], None, &mut saved, fs), is_param);
    fwd!(lstm, &x, None, &mut saved, fs).unwrap();
    // Backward of `lstm` into `$grads` (and `$dx`) from `$saved`.
    macro_rules! bwd {
        ($saved:expr, $grads:expr, $dx:expr, $scratch:expr) => {
            lstm.backward(
                &x,
                None,
                None,
                &out,
                $saved,
                Some(&out),
                None,
                None,
                $grads,
                $dx,
                None,
                None,
                &mut vec![0.0; $scratch],
            )
        };
    }
    // Backward: K, scratch; the gradients stay as they were.
    let mut grads = Lstm::<f32, 2, 3>::zeros(Cell::Lstm, true).unwrap();
    grads.w_hh[1][1][1] = 0.5;
    let g0 = grads.clone();
    let mut dx = [[[7.0f32; 2]; 2]; 1];
    err!(bwd!(&saved4, &mut grads, Some(&mut dx), bs), is_shape);
    err!(bwd!(&saved, &mut grads, Some(&mut dx), bs - 1), is_buf);
    assert_eq!((&grads, dx), (&g0, [[[7.0; 2]; 2]; 1]));
    // A gradient accumulator without biases skips them.
    let mut nob = Lstm::<f32, 2, 3>::zeros(Cell::Lstm, false).unwrap();
    bwd!(&saved, &mut nob, None, bs).unwrap();
    grads.zero_grad();
    assert_eq!(grads, Lstm::<f32, 2, 3>::zeros(Cell::Lstm, true).unwrap());
    // A public `cell` edited to one with another gate count.
    let mut edited = lstm.clone();
    edited.cell = Cell::Gru;
    err!(
        fwd!(edited, &x, None, &mut [[[[0.0; 3]; 4]; 2]; 1], fs),
        is_len
    );
    // GRU: no cell state anywhere.
    let gru = Gru::<f32, 2, 3>::zeros(Cell::Gru, true).unwrap();
    let gs = recurrent_forward_scratch_len(Cell::Gru, &RnnShape::new(1, 2, 2, 3));
    let mut gsaved = [[[[7.0f32; 3]; 4]; 2]; 1];
    err!(fwd!(gru, &x, Some(&[[0.0; 3]]), &mut gsaved, gs), is_param);
    // step: N = 0, scratch, cell state for a GRU.
    let ss = recurrent_step_scratch_len(Cell::Lstm, 1, 3);
    let (mut h, mut c) = ([[0.25f32; 3]], [[0.75f32; 3]]);
    err!(
        lstm.step::<0>(&[], &mut [], None, &mut vec![0.0; ss]),
        is_empty
    );
    err!(
        lstm.step(&[[1.0, 2.0]], &mut h, Some(&mut c), &mut vec![0.0; ss - 1]),
        is_buf
    );
    err!(
        gru.step(&[[1.0, 2.0]], &mut h, Some(&mut c), &mut vec![0.0; ss]),
        is_param
    );
    assert_eq!((h, c), ([[0.25; 3]], [[0.75; 3]]));
    lstm.step(&[[1.0, 2.0]], &mut h, Some(&mut c), &mut vec![0.0; ss])
        .unwrap();
}

#[test]
fn audit_recurrent_dyn_bad_inputs() {
    err!(RecurrentDyn::<f32>::zeros(Cell::Lstm, 0, 3, true), is_param);
    err!(RecurrentDyn::<f32>::zeros(Cell::Gru, 2, 0, true), is_param);
    err!(
        RecurrentDyn::<f32>::zeros(Cell::Gru, 2, usize::MAX / 2, true),
        is_param
    );
    for cell in [Cell::RnnTanh, Cell::Lstm, Cell::Gru] {
        let lstm = cell.has_cell_state();
        let mut r = RecurrentDyn::<f32>::zeros(cell, 2, 3, true).unwrap();
        let wl = r.w_ih.len();
        r.w_ih.copy_from_slice(&vals(wl, 1.0));
        assert_eq!(r.params().w_ih.len(), cell.gates() * 6);
        err!(r.backward(None, None, None), is_param); // no forward yet
        let x = vals(2 * 4 * 2, 2.0); // N 2, S 4, I 2
        let c0 = vec![0.0f32; 6];
        err!(r.forward(&x, 0, 4, None, None), is_empty);
        err!(r.forward(&x, 2, 0, None, None), is_empty);
        err!(r.forward(&x[1..], 2, 4, None, None), is_len);
        err!(r.forward(&x, 2, 4, Some(&c0[1..]), None), is_len);
        if lstm {
            err!(r.forward(&x, 2, 4, None, Some(&c0[1..])), is_len);
        } else {
            err!(r.forward(&x, 2, 4, None, Some(&c0)), is_param);
        }
        err!(r.backward(None, None, None), is_param); // failed forwards leave no tape
        let y = r.forward(&x, 2, 4, None, lstm.then_some(&c0[..])).unwrap();
        r.backward(Some(&y.out), None, None).unwrap();
        let before = (r.dw_ih.clone(), r.dw_hh.clone(), r.dbias.clone());
        err!(r.backward(Some(&y.out[1..]), None, None), is_len);
        err!(r.backward(None, Some(&y.h_n[1..]), None), is_len);
        if lstm {
            err!(r.backward(None, None, Some(&c0[1..])), is_len);
        } else {
            err!(r.backward(None, None, Some(&c0)), is_param);
        }
        // Public fields edited out of shape.
        r.dw_hh.pop();
        err!(r.backward(None, None, None), is_len);
        r.dw_hh.push(before.1[before.1.len() - 1]);
        assert_eq!((r.dw_ih.clone(), r.dw_hh.clone(), r.dbias.clone()), before);
        r.zero_grad();
        assert!(r.dw_ih.iter().chain(&r.dw_hh).all(|&v| v == 0.0));
    }
}

// ---------------------------------------------------------------- norm (NormStats)

#[test]
fn audit_norm_stats_storage_rules() {
    let x = vals(8, 1.0); // (2, 4)
    let xv = mr(&x, (2, 4));
    let mut y = [7.0f32; 8];
    let (mut m, mut r) = ([7.0f32; 3], [7.0f32; 3]);
    let ln = |y: &mut [f32], s: NormStats<'_, f32>| {
        layer_norm_views(xv, mm(y, (2, 4)), None, None, 1e-5, Some(s))
    };
    let rms = |y: &mut [f32], s: NormStats<'_, f32>| {
        rms_norm_views(xv, mm(y, (2, 4)), None, 1e-5, Some(s))
    };
    // LayerNorm and BatchNorm save a mean: rstd_only is refused.
    err!(ln(&mut y, NormStats::rstd_only(&mut r[..2])), is_param);
    let stats = Some(NormStats::rstd_only(&mut r[..2]));
    let shape = BnShape::new(2, 2, 2);
    err!(
        batch_norm_train_views(&x, shape, &mut y, None, None, 1e-5, None, None, stats),
        is_param
    );
    // Wrong lengths.
    err!(ln(&mut y, NormStats::new(&mut m[..2], &mut r)), is_len);
    err!(ln(&mut y, NormStats::new(&mut m, &mut r[..2])), is_len);
    err!(rms(&mut y, NormStats::rstd_only(&mut r)), is_len);
    err!(rms(&mut y, NormStats::new(&mut m, &mut r[..2])), is_len);
    assert_eq!((y, m, r), ([7.0; 8], [7.0; 3], [7.0; 3]));
    // RMSNorm takes rstd_only, and writes 0 into a mean when given one.
    rms(&mut y, NormStats::new(&mut m[..2], &mut r[..2])).unwrap();
    assert_eq!(&m[..2], &[0.0, 0.0]);
    rms(&mut y, NormStats::rstd_only(&mut r[..2])).unwrap();
}

// ---------------------------------------------------------------- norm (shared setup)

const BAD_EPS: [f32; 5] = [0.0, -1e-5, f32::NAN, f32::INFINITY, f32::NEG_INFINITY];

/// The shape of LayerNorm and RMSNorm data.
const ROWS: (usize, usize) = (2, 4);

/// The buffers of a valid normalization call: LayerNorm and RMSNorm on
/// [`ROWS`] (views take the head of their buffer), BatchNorm on `(2, 3, 2)`
/// data. No option is given until a builder or an edit gives it.
#[derive(Clone, Debug)]
struct Norm {
    bn: BnShape,
    /// Features (LayerNorm, RMSNorm) or channels (BatchNorm).
    c: usize,
    x: Vec<f32>,
    dy: Vec<f32>,
    dy_at: (usize, usize),
    /// `y` (forward), `dx` (backward) or the data normalized in place.
    out: Vec<f32>,
    out_at: (usize, usize),
    w: Option<Vec<f32>>,
    b: Option<Vec<f32>>,
    eps: f32,
    /// Statistics written (forward) or read (backward; BatchNorm eval: the
    /// running mean and variance). `mean: None` with `var` given is
    /// `NormStats::rstd_only`, or RMSNorm's saved rstd.
    mean: Option<Vec<f32>>,
    var: Option<Vec<f32>>,
    dw: Option<Vec<f32>>,
    db: Option<Vec<f32>>,
}

impl Norm {
    fn new(n: usize, c: usize) -> Self {
        Self {
            bn: BnShape::new(2, 3, 2),
            c,
            x: vals(n, 1.0),
            dy: vals(n, 2.0),
            dy_at: ROWS,
            out: vec![7.0; n],
            out_at: ROWS,
            w: None,
            b: None,
            eps: 1e-5,
            mean: None,
            var: None,
            dw: None,
            db: None,
        }
    }
    /// LayerNorm or RMSNorm data.
    fn rows() -> Self {
        Self::new(8, 4)
    }
    /// BatchNorm data.
    fn channels() -> Self {
        Self::new(12, 3)
    }
    /// γ and β given.
    fn affine(mut self) -> Self {
        self.w = Some(vals(self.c, 3.0));
        self.b = Some(vals(self.c, 4.0));
        self
    }
    /// dγ and dβ asked for.
    fn grads(mut self) -> Self {
        self.dw = Some(vec![0.5; self.c]);
        self.db = Some(vec![0.5; self.c]);
        self
    }
    /// Statistics of `nm` means and `nv` rstd (or variances) given.
    fn stats(mut self, nm: usize, nv: usize) -> Self {
        self.set_stats(nm, nv);
        self
    }
    fn set_stats(&mut self, nm: usize, nv: usize) {
        self.mean = Some(vec![7.0; nm]);
        self.var = Some(vec![7.0; nv]);
    }
    /// BatchNorm with one value per channel: `(1, 3, 1)`.
    fn tiny(&mut self) {
        self.bn = BnShape::new(1, 3, 1);
        for v in [&mut self.x, &mut self.dy, &mut self.out] {
            v.truncate(3);
        }
    }
    /// BatchNorm with no x and a shape whose size overflows.
    fn huge(&mut self) {
        self.bn = BnShape::new(usize::MAX, 2, 1);
        self.x.clear();
    }
    /// What a call may write.
    fn outputs(&self) -> [Option<Vec<f32>>; 5] {
        let out = Some(self.out.clone());
        [
            out,
            self.mean.clone(),
            self.var.clone(),
            self.dw.clone(),
            self.db.clone(),
        ]
    }
    /// LayerNorm (or RMSNorm) forward, out of place (or in place on `out`).
    fn forward(&mut self, rms: bool, in_place: bool, scalar: bool) -> Result<()> {
        let (w, b, eps) = (self.w.as_deref(), self.b.as_deref(), self.eps);
        let (x, y) = (mr(&self.x, ROWS), mm(&mut self.out, self.out_at));
        let st = match (self.mean.as_deref_mut(), self.var.as_deref_mut()) {
            (Some(m), Some(r)) => Some(NormStats::new(m, r)),
            (None, Some(r)) => Some(NormStats::rstd_only(r)),
            _ => None,
        };
        match (rms, in_place) {
            (false, false) => {
                pick!(scalar, layer_norm_views, layer_norm_views_with)(x, y, w, b, eps, st)
            }
            (false, true) => {
                let f = pick!(
                    scalar,
                    layer_norm_inplace_views,
                    layer_norm_inplace_views_with
                );
                f(y, w, b, eps, st)
            }
            (true, false) => pick!(scalar, rms_norm_views, rms_norm_views_with)(x, y, w, eps, st),
            (true, true) => {
                let f = pick!(scalar, rms_norm_inplace_views, rms_norm_inplace_views_with);
                f(y, w, eps, st)
            }
        }
    }
    /// LayerNorm (or RMSNorm) backward.
    fn backward(&mut self, rms: bool, scalar: bool) -> Result<()> {
        let (w, eps) = (self.w.as_deref(), self.eps);
        let (x, dy) = (mr(&self.x, ROWS), mr(&self.dy, self.dy_at));
        let dx = mm(&mut self.out, self.out_at);
        let (m, v) = (self.mean.as_deref(), self.var.as_deref());
        let (dw, db) = (self.dw.as_deref_mut(), self.db.as_deref_mut());
        if rms {
            let f = pick!(
                scalar,
                rms_norm_backward_views,
                rms_norm_backward_views_with
            );
            f(x, dy, dx, w, eps, v, dw)
        } else {
            let f = pick!(
                scalar,
                layer_norm_backward_views,
                layer_norm_backward_views_with
            );
            f(x, dy, dx, w, eps, m.zip(v), dw, db)
        }
    }
    /// BatchNorm eval forward with the running statistics.
    fn bn_eval(&mut self, scalar: bool) -> Result<()> {
        let f = pick!(scalar, batch_norm_eval_views, batch_norm_eval_views_with);
        let (w, b, eps) = (self.w.as_deref(), self.b.as_deref(), self.eps);
        let rm = self.mean.as_deref().unwrap();
        let rv = self.var.as_deref().unwrap();
        f(&self.x, self.bn, &mut self.out, w, b, eps, rm, rv)
    }
    /// BatchNorm backward, training (saved statistics) or eval (running).
    fn bn_backward(&mut self, eval: bool, scalar: bool) -> Result<()> {
        let (x, shape, dy) = (&self.x[..], self.bn, &self.dy[..]);
        let (dx, w, eps) = (&mut self.out[..], self.w.as_deref(), self.eps);
        let (m, v) = (self.mean.as_deref(), self.var.as_deref());
        let (dw, db) = (self.dw.as_deref_mut(), self.db.as_deref_mut());
        if eval {
            let (rm, rv) = (m.unwrap(), v.unwrap());
            let f = pick!(
                scalar,
                batch_norm_eval_backward_views,
                batch_norm_eval_backward_views_with
            );
            f(x, shape, dy, dx, w, eps, rm, rv, dw, db)
        } else {
            let f = pick!(
                scalar,
                batch_norm_backward_views,
                batch_norm_backward_views_with
            );
            f(x, shape, dy, dx, w, eps, m.zip(v), dw, db)
        }
    }
}

/// [`check_cases`] on [`Norm`]'s outputs.
#[track_caller]
fn check_norm(
    label: &str,
    base: &Norm,
    cases: &[Case<Norm>],
    run: impl FnMut(&mut Norm) -> Result<()>,
) {
    check_cases(label, base, cases, run, Norm::outputs);
}

/// Every bad eps on `base` must make `run` fail with `InvalidParameter`.
#[track_caller]
fn check_bad_eps(label: &str, base: &Norm, mut run: impl FnMut(&mut Norm) -> Result<()>) {
    for eps in BAD_EPS {
        let what = format!("{label}: eps {eps}");
        check_case(
            &what,
            base,
            |n| n.eps = eps,
            is_param,
            &mut run,
            Norm::outputs,
        );
    }
}

// ---------------------------------------------------------------- norm::layer_norm

#[test]
fn audit_layer_norm_views_bad_inputs() {
    let (bare, affine) = (Norm::rows(), Norm::rows().affine());
    let cases: [Case<Norm>; 3] = [
        ("y 2×3", |n| n.out_at = (2, 3), is_shape),
        ("γ short", |n| n.w = Some(vals(3, 3.0)), is_len),
        ("β long", |n| n.b = Some(vec![0.0; 5]), is_len),
    ];
    // In place: the same rules, the data untouched on Err.
    let in_place: [Case<Norm>; 5] = [
        ("γ short", |n| n.w = Some(vals(3, 3.0)), is_len),
        ("β short", |n| n.b = Some(vals(3, 4.0)), is_len),
        ("eps NaN", |n| n.eps = f32::NAN, is_param),
        ("mean short", |n| n.set_stats(1, 2), is_len),
        ("rstd only", |n| n.var = Some(vec![7.0; 2]), is_param),
    ];
    let (x, w, b) = (vals(8, 1.0), vals(4, 2.0), vals(4, 3.0));
    for scalar in [false, true] {
        let fwd = |n: &mut Norm| n.forward(false, false, scalar);
        check_norm("forward", &affine, &cases, fwd);
        let y42: [Case<Norm>; 1] = [("y 4×2", |n| n.out_at = (4, 2), is_shape)];
        check_norm("forward without γ, β", &bare, &y42, fwd);
        check_bad_eps("forward", &affine.clone().stats(2, 2), fwd);
        check_norm("in place", &bare, &in_place, |n| {
            n.forward(false, true, scalar)
        });
        // NaN in row 0 stays in row 0 (output and statistics).
        let f = pick!(scalar, layer_norm_views, layer_norm_views_with);
        let mut xn = x.clone();
        xn[2] = f32::NAN;
        let (mut y, mut m, mut r) = ([7.0f32; 8], [7.0f32; 2], [7.0f32; 2]);
        let st = Some(NormStats::new(&mut m, &mut r));
        f(
            mr(&xn, ROWS),
            mm(&mut y, ROWS),
            Some(&w),
            Some(&b),
            1e-5,
            st,
        )
        .unwrap();
        assert!(nan_exactly(&y, 0..4));
        assert!(m[0].is_nan() && m[1].is_finite() && r[1].is_finite());
        // Width 0 is a valid edge.
        f(mr(&[], (2, 0)), mm(&mut [], (2, 0)), None, None, 1e-5, None).unwrap();
    }
}

#[test]
fn audit_layer_norm_backward_bad_inputs() {
    let (grads, full) = (Norm::rows().grads(), Norm::rows().affine().grads());
    let no_w: [Case<Norm>; 2] = [
        ("dy 2×3", |n| n.dy_at = (2, 3), is_shape),
        ("dx 4×2", |n| n.out_at = (4, 2), is_shape),
    ];
    let cases: [Case<Norm>; 5] = [
        ("γ short", |n| n.w = Some(vals(3, 3.0)), is_len),
        ("dγ short", |n| n.dw = Some(vec![0.5; 3]), is_len),
        ("dβ short", |n| n.db = Some(vec![0.5; 3]), is_len),
        ("mean short", |n| n.set_stats(1, 2), is_len),
        ("rstd long", |n| n.set_stats(2, 3), is_len),
    ];
    let (x, dy, w) = (vals(8, 1.0), vals(8, 2.0), vals(4, 3.0));
    let (m, r) = ([0.1f32; 2], [1.5f32; 2]);
    for scalar in [false, true] {
        let bwd = |n: &mut Norm| n.backward(false, scalar);
        check_bad_eps("backward", &full, bwd);
        check_norm("backward without γ", &grads, &no_w, bwd);
        check_norm("backward", &full, &cases, bwd);
        // NaN in dy row 1 stays in dx row 1 (dγ, dβ sum over rows: NaN).
        let f = pick!(
            scalar,
            layer_norm_backward_views,
            layer_norm_backward_views_with
        );
        let (xv, dyv) = (mr(&x, ROWS), mr(&dy, ROWS));
        let (mut dx, mut dw) = ([7.0f32; 8], [0.5f32; 4]);
        let mut dyb = dy.clone();
        dyb[5] = f32::NAN;
        let (dx_v, dyb_v) = (mm(&mut dx, ROWS), mr(&dyb, ROWS));
        f(
            xv,
            dyb_v,
            dx_v,
            Some(&w),
            1e-5,
            Some((&m, &r)),
            Some(&mut dw),
            None,
        )
        .unwrap();
        assert!(nan_exactly(&dx, 4..8));
        assert!(dw[1].is_nan());
        // Saved statistics are used as given: a NaN rstd is no error.
        let saved = Some((&m[..], &[f32::NAN, 1.0][..]));
        f(xv, dyv, mm(&mut dx, ROWS), None, 1e-5, saved, None, None).unwrap();
        assert!(nan_exactly(&dx, 0..4));
    }
}

#[test]
fn audit_layer_norm_layers_bad_inputs() {
    let (w, b) = ([1.0f32, 2.0, 3.0], [0.0f32; 3]);
    for eps in BAD_EPS {
        err!(
            LayerNorm::<f32, 3>::new(Some(&w), Some(&b), eps),
            is_param,
            "{eps}"
        );
        err!(
            LayerNormDyn::<f32>::new(3, true, true, eps),
            is_param,
            "{eps}"
        );
    }
    let ln = LayerNorm::<f32, 3>::new(Some(&w), Some(&b), 1e-3).unwrap();
    assert_eq!(ln.eps(), 1e-3);
    let x = [[1.0f32, 2.0, 4.0], [0.0, -1.0, 3.0]];
    let mut y = [[7.0f32; 3]; 2];
    let (mut m, mut r) = ([7.0f32; 3], [7.0f32; 3]);
    err!(
        ln.forward(&x, &mut y, Some(NormStats::new(&mut m[..1], &mut r[..2]))),
        is_len
    );
    err!(
        ln.forward(&x, &mut y, Some(NormStats::new(&mut m[..2], &mut r))),
        is_len
    );
    err!(
        ln.forward(&x, &mut y, Some(NormStats::rstd_only(&mut r[..2]))),
        is_param
    );
    let mut xi = x;
    err!(
        ln.forward_inplace(&mut xi, Some(NormStats::rstd_only(&mut r[..2]))),
        is_param
    );
    err!(
        ln.forward_inplace(&mut xi, Some(NormStats::new(&mut m, &mut r[..2]))),
        is_len
    );
    assert_eq!((y, xi, m, r), ([[7.0; 3]; 2], x, [7.0; 3], [7.0; 3]));
    // backward: shapes and statistics lengths are all in the types.
    let (mut dx, mut dw, mut db) = ([[0.0f32; 3]; 2], [0.0f32; 3], [0.0f32; 3]);
    let saved = Some((&[2.0, 1.0], &[1.0, 0.5]));
    ln.backward(
        &x,
        &[[1.0; 3]; 2],
        &mut dx,
        saved,
        Some(&mut dw),
        Some(&mut db),
    )
    .unwrap();
    ln.forward::<0>(&[], &mut [], None).unwrap();

    let mut dynl = LayerNormDyn::<f32>::new(3, true, true, 1e-5).unwrap();
    let xm = Matrix::from_vec(2, 3, vec![1.0f32, 2.0, 4.0, 0.0, 0.0, 3.0]).unwrap();
    let x24 = Matrix::zeros(2, 4).unwrap();
    err!(dynl.forward(&x24), is_len);
    // Without γ/β any width works.
    LayerNormDyn::<f32>::new(3, false, false, 1e-5)
        .unwrap()
        .forward(&x24)
        .unwrap();
    let (yv, stats) = dynl.forward(&xm).unwrap();
    dynl.backward(&xm, &yv, Some(&stats)).unwrap();
    let before = (dynl.dweight.clone(), dynl.dbias.clone());
    err!(
        dynl.backward(&xm, &Matrix::zeros(3, 2).unwrap(), None),
        is_shape
    );
    err!(
        dynl.backward(&xm, &yv, Some(&(vec![0.0], vec![1.0]))),
        is_len
    );
    err!(dynl.backward(&x24, &x24, None), is_len);
    assert_eq!((dynl.dweight.clone(), dynl.dbias.clone()), before);
}

// ---------------------------------------------------------------- norm::rms_norm

#[test]
fn audit_rms_norm_views_bad_inputs() {
    let (bare, affine) = (Norm::rows(), Norm::rows().affine());
    let cases: [Case<Norm>; 3] = [
        ("γ short", |n| n.w = Some(vals(3, 3.0)), is_len),
        ("rstd long", |n| n.var = Some(vec![7.0; 3]), is_len),
        ("y 3×2", |n| n.out_at = (3, 2), is_shape),
    ];
    let in_place: [Case<Norm>; 2] = [
        ("γ long", |n| n.w = Some(vec![1.0; 5]), is_len),
        ("rstd short", |n| n.var = Some(vec![7.0; 1]), is_len),
    ];
    let (x, w) = (vals(8, 1.0), vals(4, 2.0));
    for scalar in [false, true] {
        let fwd = |n: &mut Norm| n.forward(true, false, scalar);
        let inplace = |n: &mut Norm| n.forward(true, true, scalar);
        check_bad_eps("forward", &affine, fwd);
        check_bad_eps("in place", &affine, inplace);
        check_norm("forward", &bare, &cases, fwd);
        check_norm("in place", &bare, &in_place, inplace);
        // NaN in row 1 stays in row 1 (output and rstd).
        let f = pick!(scalar, rms_norm_views, rms_norm_views_with);
        let mut xn = x.clone();
        xn[6] = f32::NAN;
        let (mut y, mut r) = ([7.0f32; 8], [7.0f32; 2]);
        let st = Some(NormStats::rstd_only(&mut r));
        f(mr(&xn, ROWS), mm(&mut y, ROWS), Some(&w), 1e-5, st).unwrap();
        assert!(nan_exactly(&y, 4..8));
        assert!(r[0].is_finite() && r[1].is_nan());
    }
}

#[test]
fn audit_rms_norm_backward_bad_inputs() {
    let (bare, grads) = (Norm::rows(), Norm::rows().grads());
    let full = Norm::rows().affine().grads();
    let cases: [Case<Norm>; 3] = [
        ("γ short", |n| n.w = Some(vals(2, 3.0)), is_len),
        ("dγ short", |n| n.dw = Some(vec![0.5; 3]), is_len),
        ("rstd long", |n| n.var = Some(vec![1.0; 3]), is_len),
    ];
    let dy42: [Case<Norm>; 1] = [("dy 4×2", |n| n.dy_at = (4, 2), is_shape)];
    let dx14: [Case<Norm>; 1] = [("dx 1×4", |n| n.out_at = (1, 4), is_shape)];
    let (x, w) = (vals(8, 1.0), vals(4, 3.0));
    for scalar in [false, true] {
        let bwd = |n: &mut Norm| n.backward(true, scalar);
        check_bad_eps("backward", &full, bwd);
        check_norm("backward without γ, dγ", &bare, &dy42, bwd);
        check_norm("backward without γ", &grads, &dx14, bwd);
        check_norm("backward", &full, &cases, bwd);
        // NaN in x row 0 stays in dx row 0.
        let mut xn = x.clone();
        xn[0] = f32::NAN;
        let f = pick!(
            scalar,
            rms_norm_backward_views,
            rms_norm_backward_views_with
        );
        let dy = vals(8, 2.0);
        let mut dx = [7.0f32; 8];
        let (xv, dyv) = (mr(&xn, ROWS), mr(&dy, ROWS));
        f(xv, dyv, mm(&mut dx, ROWS), Some(&w), 1e-5, None, None).unwrap();
        assert!(nan_exactly(&dx, 0..4));
    }
}

#[test]
fn audit_rms_norm_layers_bad_inputs() {
    let w = [2.0f32; 3];
    for eps in BAD_EPS {
        err!(RmsNorm::<f32, 3>::new(Some(&w), eps), is_param, "{eps}");
        err!(
            RmsNormDyn::<f32>::new(3, true, Some(eps)),
            is_param,
            "{eps}"
        );
    }
    let me = RmsNorm::<f32, 3>::machine_eps(Some(&w));
    assert_eq!(me.eps(), f32::EPSILON);
    let n = RmsNorm::<f32, 3>::new(None, 1e-6).unwrap();
    assert_eq!(n.eps(), 1e-6);
    let x = [[1.0f32, 2.0, 4.0], [0.0, -1.0, 3.0]];
    let mut y = [[7.0f32; 3]; 2];
    let mut r = [7.0f32; 3];
    err!(
        me.forward(&x, &mut y, Some(NormStats::rstd_only(&mut r))),
        is_len
    );
    let mut xi = x;
    err!(
        me.forward_inplace(&mut xi, Some(NormStats::rstd_only(&mut r[..1]))),
        is_len
    );
    assert_eq!((y, xi, r), ([[7.0; 3]; 2], x, [7.0; 3]));
    // An all-zero row is fine with any eps > 0.
    me.forward(&[[0.0; 3]], &mut [[7.0; 3]], None).unwrap();
    let mut dx = [[0.0f32; 3]; 2];
    let dy = [[1.0; 3]; 2];
    me.backward(&x, &dy, &mut dx, Some(&[1.0, 2.0]), Some(&mut [0.0; 3]))
        .unwrap();

    let mut d = RmsNormDyn::<f32>::new(3, true, None).unwrap();
    let xm = Matrix::from_vec(1, 3, vec![1.0f32, -1.0, 2.0]).unwrap();
    let x14 = Matrix::zeros(1, 4).unwrap();
    err!(d.forward(&x14), is_len);
    RmsNormDyn::<f32>::new(3, false, None)
        .unwrap()
        .forward(&x14)
        .unwrap();
    let yv = d.forward(&xm).unwrap();
    d.backward(&xm, &yv).unwrap();
    let before = d.dweight.clone();
    err!(d.backward(&xm, &Matrix::zeros(3, 1).unwrap()), is_shape);
    err!(d.backward(&x14, &x14), is_len);
    assert_eq!(d.dweight, before);
}

// ---------------------------------------------------------------- norm::batch_norm

#[test]
fn audit_bn_shape_and_state() {
    err!(BnShape::new(usize::MAX, 2, 1).len(), is_param);
    err!(BnShape::new(2, usize::MAX, usize::MAX).len(), is_param);
    assert_eq!(BnShape::new(2, 3, 4).len(), Ok(24));
    assert!(
        BnShape::new(0, 3, 4).is_empty()
            && BnShape::new(2, 0, 4).is_empty()
            && BnShape::new(2, 3, 0).is_empty()
    );
    assert!(!BnShape::new(1, 1, 1).is_empty());
    let mut st = BatchNormState::<f32, 2>::new();
    assert_eq!(
        (st.running_mean, st.running_var, st.num_batches_tracked),
        ([0.0; 2], [1.0; 2], 0)
    );
    let run = st.as_running();
    run.mean[0] = 5.0;
    *run.batches = 3;
    assert_eq!((st.running_mean[0], st.num_batches_tracked), (5.0, 3));
}

/// A valid training call on `(2, 3, 2)` data with every option given.
#[derive(Clone, Debug, PartialEq)]
struct Bn {
    shape: BnShape,
    x: Vec<f32>,
    y: Vec<f32>,
    w: Vec<f32>,
    b: Vec<f32>,
    eps: f32,
    momentum: Option<f32>,
    rmean: Vec<f32>,
    rvar: Vec<f32>,
    batches: u64,
    smean: Option<Vec<f32>>,
    srstd: Vec<f32>,
}

/// What a training forward writes: y, running mean and variance, batches,
/// saved mean and rstd.
type BnOutputs = (
    Vec<f32>,
    Vec<f32>,
    Vec<f32>,
    u64,
    Option<Vec<f32>>,
    Vec<f32>,
);

impl Bn {
    fn new() -> Self {
        Self {
            shape: BnShape::new(2, 3, 2),
            x: vals(12, 1.0),
            y: vec![7.0; 12],
            w: vals(3, 2.0),
            b: vals(3, 3.0),
            eps: 1e-5,
            momentum: Some(0.1),
            rmean: vec![0.0; 3],
            rvar: vec![1.0; 3],
            batches: 4,
            smean: Some(vec![7.0; 3]),
            srstd: vec![7.0; 3],
        }
    }
    fn outputs(&self) -> BnOutputs {
        let (y, rmean, rvar) = (self.y.clone(), self.rmean.clone(), self.rvar.clone());
        (
            y,
            rmean,
            rvar,
            self.batches,
            self.smean.clone(),
            self.srstd.clone(),
        )
    }
    fn train(&mut self, scalar: bool) -> Result<()> {
        let f = pick!(scalar, batch_norm_train_views, batch_norm_train_views_with);
        let stats = match self.smean.as_deref_mut() {
            Some(m) => NormStats::new(m, &mut self.srstd),
            None => NormStats::rstd_only(&mut self.srstd),
        };
        let running = RunningStats {
            mean: &mut self.rmean,
            var: &mut self.rvar,
            batches: &mut self.batches,
        };
        let (w, b) = (Some(&self.w[..]), Some(&self.b[..]));
        let (shape, eps, momentum) = (self.shape, self.eps, self.momentum);
        f(
            &self.x,
            shape,
            &mut self.y,
            w,
            b,
            eps,
            momentum,
            Some(running),
            Some(stats),
        )
    }
    /// N·L = 1: one value per channel.
    fn one_per_channel(&mut self) {
        self.shape = BnShape::new(1, 3, 1);
        self.x.truncate(3);
        self.y.truncate(3);
    }
    /// N·L = 0 with channels.
    fn no_values(&mut self) {
        self.shape = BnShape::new(0, 3, 2);
        self.x.clear();
        self.y.clear();
    }
}

#[test]
fn audit_batch_norm_train_bad_inputs() {
    let cases: [Case<Bn>; 14] = [
        ("momentum NaN", |c| c.momentum = Some(f32::NAN), is_param),
        ("momentum ∞", |c| c.momentum = Some(f32::INFINITY), is_param),
        ("x short", |c| shorten(&mut c.x), is_len),
        ("y long", |c| c.y.push(7.0), is_len),
        ("γ short", |c| shorten(&mut c.w), is_len),
        ("β long", |c| c.b.push(0.0), is_len),
        ("rstd short", |c| shorten(&mut c.srstd), is_len),
        ("mean short", |c| shorten(c.smean.as_mut().unwrap()), is_len),
        ("rstd only", |c| c.smean = None, is_param),
        ("running mean short", |c| shorten(&mut c.rmean), is_len),
        ("running var long", |c| c.rvar.push(1.0), is_len),
        ("L overflows", |c| c.shape.l = usize::MAX, is_param),
        ("N·L = 1", Bn::one_per_channel, is_param),
        ("N·L = 0", Bn::no_values, is_param),
    ];
    for scalar in [false, true] {
        let train = |c: &mut Bn| c.train(scalar);
        check_cases("train", &Bn::new(), &cases, train, Bn::outputs);
        for eps in BAD_EPS {
            let what = format!("train: eps {eps}");
            check_case(
                &what,
                &Bn::new(),
                |c| c.eps = eps,
                is_param,
                train,
                Bn::outputs,
            );
        }
        // Edges: no channels; momentum None (cumulative) and outside [0, 1].
        let mut c = Bn::new();
        c.shape = BnShape::new(1, 0, 1);
        for v in [
            &mut c.x,
            &mut c.y,
            &mut c.w,
            &mut c.b,
            &mut c.rmean,
            &mut c.rvar,
        ] {
            v.clear();
        }
        c.smean = Some(vec![]);
        c.srstd.clear();
        c.train(scalar).unwrap();
        for mom in [None, Some(-0.5), Some(2.0)] {
            let mut c = Bn::new();
            c.momentum = mom;
            c.train(scalar).unwrap();
            assert_eq!(c.batches, 5);
        }
        // NaN in channel 1 stays in channel 1 (output, running statistics).
        let mut c = Bn::new();
        c.x[2] = f32::NAN; // (n 0, c 1, l 0)
        c.train(scalar).unwrap();
        for (i, v) in c.y.iter().enumerate() {
            assert_eq!(v.is_nan(), (i / 2) % 3 == 1, "y[{i}] = {v}");
        }
        assert!(c.rmean[1].is_nan() && c.rmean[0].is_finite() && c.rvar[2].is_finite());
    }
}

#[test]
fn audit_batch_norm_eval_bad_inputs() {
    let running = Norm::channels().stats(3, 3);
    let cases: [Case<Norm>; 7] = [
        ("x short", |n| shorten(&mut n.x), is_len),
        ("y short", |n| shorten(&mut n.out), is_len),
        ("γ short", |n| n.w = Some(vals(2, 3.0)), is_len),
        ("β long", |n| n.b = Some(vec![0.0; 4]), is_len),
        ("running mean short", |n| n.set_stats(2, 3), is_len),
        ("running var short", |n| n.set_stats(3, 2), is_len),
        ("size overflows", Norm::huge, is_param),
    ];
    for scalar in [false, true] {
        let eval = |n: &mut Norm| n.bn_eval(scalar);
        check_bad_eps("eval", &running.clone().affine(), eval);
        check_norm("eval", &running, &cases, eval);
        // Eval has no N·L rule.
        let mut n = running.clone();
        n.tiny();
        n.bn_eval(scalar).unwrap();
        // Not checked: a running variance below −eps gives NaN in its channel;
        // NaN in x stays at its element.
        let mut n = running.clone().affine();
        n.x[7] = f32::NAN;
        n.var = Some(vec![1.0, -1.0, 2.0]);
        n.bn_eval(scalar).unwrap();
        for (i, v) in n.out.iter().enumerate() {
            assert_eq!(v.is_nan(), (i / 2) % 3 == 1 || i == 7, "y[{i}] = {v}");
        }
    }
}

#[test]
fn audit_batch_norm_backward_bad_inputs() {
    // The cases of both backwards; `set_stats` shortens the saved statistics
    // (training) or the running ones (eval).
    let cases: [Case<Norm>; 8] = [
        ("x short", |n| shorten(&mut n.x), is_len),
        ("dy short", |n| shorten(&mut n.dy), is_len),
        ("dx short", |n| shorten(&mut n.out), is_len),
        ("γ short", |n| n.w = Some(vals(2, 3.0)), is_len),
        ("dγ short", |n| n.dw = Some(vec![0.5; 2]), is_len),
        ("dβ short", |n| n.db = Some(vec![0.5; 2]), is_len),
        ("mean short", |n| n.set_stats(2, 3), is_len),
        ("rstd or variance short", |n| n.set_stats(3, 2), is_len),
    ];
    let train = Norm::channels().grads();
    let eval = Norm::channels().stats(3, 3);
    for scalar in [false, true] {
        for (is_eval, base) in [(false, &train), (true, &eval)] {
            let label = if is_eval { "eval backward" } else { "backward" };
            let run = |n: &mut Norm| n.bn_backward(is_eval, scalar);
            check_bad_eps(label, &base.clone().affine().grads(), run);
            check_norm(label, base, &cases, run);
        }
        // N·L = 1: refused in training, fine in eval.
        let what = "backward: N·L = 1";
        let run = |n: &mut Norm| n.bn_backward(false, scalar);
        check_case(what, &train, Norm::tiny, is_param, run, Norm::outputs);
        let mut n = eval.clone();
        n.tiny();
        n.bn_backward(true, scalar).unwrap();
    }
}

#[test]
fn audit_fold_batch_norm_bad_inputs() {
    let (rm, rv, g, be) = ([0.5f32, -0.5], [1.0f32, 4.0], [2.0f32, 1.0], [0.0f32, 1.0]);
    let mut w = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0]; // (C 2, K 3)
    let mut b = [0.25f32, 0.75];
    let fold = |w: &mut [f32; 6], b: &mut [f32; 2], eps| {
        fold_batch_norm_views(mm(w, (2, 3)), b, Some(&g), Some(&be), eps, &rm, &rv)
    };
    for eps in BAD_EPS {
        err!(fold(&mut w, &mut b, eps), is_param, "eps {eps}");
    }
    // The shape of w, b's length, γ, β, the running mean and variance.
    type Row<'a> = (
        (usize, usize),
        usize,
        Option<&'a [f32]>,
        Option<&'a [f32]>,
        &'a [f32],
        &'a [f32],
    );
    let cases: [Row<'_>; 6] = [
        ((2, 3), 1, None, None, &rm, &rv),
        ((3, 2), 2, None, None, &rm, &rv),
        ((2, 3), 2, Some(&g[..1]), None, &rm, &rv),
        ((2, 3), 2, None, Some(&[0.0; 3]), &rm, &rv),
        ((2, 3), 2, None, None, &rm[..1], &rv),
        ((2, 3), 2, None, None, &rm, &[1.0; 3]),
    ];
    for (at, nb, gm, bt, m, v) in cases {
        let r = fold_batch_norm_views(mm(&mut w, at), &mut b[..nb], gm, bt, 1e-5, m, v);
        err!(
            r,
            is_len,
            "w {at:?}, b {nb}, γ {gm:?}, β {bt:?}, mean {m:?}, var {v:?}"
        );
    }
    assert_eq!((w, b), ([1.0, 2.0, 3.0, 4.0, 5.0, 6.0], [0.25, 0.75]));
    fold(&mut w, &mut b, 1e-5).unwrap();
}

#[test]
fn audit_batch_norm_const_layer_bad_inputs() {
    for eps in BAD_EPS {
        let r = BatchNorm::<f32, 2>::new(None, None, eps, Some(0.1));
        err!(r, is_param, "eps {eps}");
    }
    for momentum in [f32::NAN, f32::NEG_INFINITY] {
        let r = BatchNorm::<f32, 2>::new(None, None, 1e-5, Some(momentum));
        err!(r, is_param, "momentum {momentum}");
    }
    let (g, be) = ([1.0f32, 2.0], [0.0f32, 1.0]);
    let bn = BatchNorm::<f32, 2>::new(Some(&g), Some(&be), 1e-5, None).unwrap();
    let mut state = BatchNormState::new();
    state.running_mean = [0.5, 0.25];
    let st0 = state;
    // N·L = 1 in training: refused, state untouched.
    let mut y1 = [[7.0f32; 2]];
    let (mut sm, mut sr) = ([7.0f32; 2], [7.0f32; 2]);
    let saved = Some((&mut sm, &mut sr));
    err!(
        bn.forward_train_nc(&[[1.0, 2.0]], &mut y1, Some(&mut state), saved),
        is_param
    );
    let mut y3 = [[[7.0f32; 1]; 2]; 1];
    err!(
        bn.forward_train(&[[[1.0], [2.0]]], &mut y3, Some(&mut state), None),
        is_param
    );
    let mut y0 = [[[7.0f32; 0]; 2]; 3];
    err!(
        bn.forward_train(&[[[]; 2]; 3], &mut y0, Some(&mut state), None),
        is_param
    );
    assert_eq!(
        (state, y1, y3, sm, sr),
        (st0, [[7.0; 2]], [[[7.0]; 2]], [7.0; 2], [7.0; 2])
    );
    let mut dx1 = [[7.0f32; 2]];
    let mut dw = [0.5f32; 2];
    err!(
        bn.backward_train_nc(
            &[[1.0, 2.0]],
            &[[1.0; 2]],
            &mut dx1,
            None,
            Some(&mut dw),
            None
        ),
        is_param
    );
    let mut dx3 = [[[7.0f32; 1]; 2]; 1];
    let x3 = [[[1.0], [2.0]]];
    err!(
        bn.backward_train(&x3, &[[[1.0]; 2]], &mut dx3, None, Some(&mut dw), None),
        is_param
    );
    assert_eq!((dx1, dx3, dw), ([[7.0; 2]], [[[7.0]; 2]], [0.5; 2]));
    // The valid calls: L = 2 with N = 1 trains; eval has no N·L rule.
    let mut y = [[[0.0f32; 2]; 2]; 1];
    let x = [[[1.0, 3.0], [2.0, 5.0]]];
    bn.forward_train(&x, &mut y, Some(&mut state), None)
        .unwrap();
    assert_eq!(state.num_batches_tracked, 1);
    bn.forward_eval_nc(&[[1.0, 2.0]], &mut y1, &state).unwrap();
    bn.forward_eval(&x3, &mut y3, &state).unwrap();
    bn.backward_train(&x, &[[[1.0, 0.0]; 2]], &mut y, None, Some(&mut dw), None)
        .unwrap();
    let (mut w, mut b) = ([[1.0f32; 3]; 2], [0.0f32; 2]);
    bn.fold(&state, &mut w, &mut b).unwrap();
}

#[test]
fn audit_batch_norm_dyn_bad_inputs() {
    for eps in BAD_EPS {
        err!(
            BatchNormDyn::<f32>::new(3, true, eps, Some(0.1)),
            is_param,
            "{eps}"
        );
    }
    err!(
        BatchNormDyn::<f32>::new(3, true, 1e-5, Some(f32::INFINITY)),
        is_param
    );
    let mut bn = BatchNormDyn::<f32>::new(3, true, 1e-5, Some(0.1)).unwrap();
    let shape = BnShape::new(2, 3, 2);
    let x = vals(12, 1.0);
    // Backward in training mode needs a training forward first.
    err!(bn.backward(&x, shape, &x), is_param);
    let snapshot = |b: &BatchNormDyn<f32>| {
        (
            b.running_mean.clone(),
            b.running_var.clone(),
            b.num_batches_tracked,
            b.dweight.clone(),
            b.dbias.clone(),
        )
    };
    let s0 = snapshot(&bn);
    err!(bn.forward(&x, BnShape::new(2, 4, 2)), is_len); // C ≠ channels
    err!(bn.forward(&x[..11], shape), is_len);
    err!(bn.forward(&x[..3], BnShape::new(1, 3, 1)), is_param); // N·L = 1
    assert_eq!(snapshot(&bn), s0);
    err!(bn.backward(&x, shape, &x), is_param); // still no training forward
    let y = bn.forward(&x, shape).unwrap();
    bn.backward(&x, shape, &y).unwrap();
    let s1 = snapshot(&bn);
    err!(bn.backward(&x, shape, &y[..11]), is_len);
    err!(bn.backward(&x[..11], shape, &y), is_len);
    err!(bn.backward(&x, BnShape::new(3, 2, 2), &y), is_len);
    // Public fields edited out of shape.
    bn.dweight.as_mut().unwrap().pop();
    err!(bn.backward(&x, shape, &y), is_len);
    bn.dweight.as_mut().unwrap().push(s1.3.as_ref().unwrap()[2]);
    bn.weight.as_mut().unwrap().push(1.0);
    err!(bn.forward(&x, shape), is_len);
    bn.weight.as_mut().unwrap().pop();
    assert_eq!(snapshot(&bn), s1);
    // Eval mode: backward needs no forward; N·L = 1 is fine.
    let mut ev = BatchNormDyn::<f32>::new(3, false, 1e-5, None).unwrap();
    ev.eval();
    ev.backward(&x, shape, &x).unwrap();
    ev.forward(&x[..3], BnShape::new(1, 3, 1)).unwrap();
    ev.train();
    err!(ev.forward(&x[..3], BnShape::new(1, 3, 1)), is_param);
}

// ---------------------------------------------------------------- ml::kmeans

/// Six 2-D points in two clear groups.
const PTS: [[f64; 2]; 6] = [
    [0.0, 0.0],
    [0.1, 0.0],
    [0.0, 0.2],
    [5.0, 5.0],
    [5.1, 5.0],
    [5.0, 5.2],
];

#[test]
fn audit_kmeans_fit_bad_inputs() {
    let flat: Vec<f64> = PTS.as_flattened().to_vec();
    let x = mr(&flat, (6, 2));
    let ok = KMeansConfig::<f64>::default();
    let given = [0.0f64, 0.0, 5.0, 5.0];
    let gv = mr(&given, (2, 2));
    let pp = KMeansInit::PlusPlus;
    let none = mr::<f64>(&[], (0, 2));
    // Points and starting centres with a NaN, then an infinity.
    let bad = [f64::NAN, f64::INFINITY];
    let x_bad = bad.map(|v| {
        let mut xb = flat.clone();
        xb[7] = v;
        xb
    });
    let xb = x_bad.each_ref().map(|v| mr(v, (6, 2)));
    let g_bad = bad.map(|v| [0.0, v, 5.0, 5.0]);
    let gb = g_bad.each_ref().map(|g| KMeansInit::Given(mr(g, (2, 2))));
    let g31 = KMeansInit::Given(mr(&given, (3, 1)));
    let g34 = KMeansInit::Given(mr(&flat, (3, 4)));
    let need = kmeans_scratch_len(6, 2, 2);
    let (need72, need23) = (kmeans_scratch_len(6, 7, 2), kmeans_scratch_len(6, 2, 3));
    let tol = |tol| KMeansConfig { tol, ..ok };
    let bad_cfgs = [
        KMeansConfig { max_iter: 0, ..ok },
        KMeansConfig { n_init: 0, ..ok },
        tol(-1.0),
        tol(f64::NAN),
        tol(f64::INFINITY),
    ];
    // (what, x, init, centres (K, D), lengths of labels, label scratch and
    // scratch, error); the configuration is `ok`.
    type Row<'a> = (
        &'a str,
        MatRef<'a, f64>,
        KMeansInit<'a, f64>,
        (usize, usize),
        [usize; 3],
        Matcher,
    );
    let cases: [Row<'_>; 13] = [
        ("K = 0", x, pp, (0, 2), [6, 6, need], is_param),
        ("K > N", x, pp, (7, 2), [6, 6, need72], is_param),
        ("no points", none, pp, (1, 2), [0, 0, need], is_param),
        ("D 3", x, pp, (2, 3), [6, 6, need23], is_shape),
        ("labels short", x, pp, (2, 2), [5, 6, need], is_len),
        ("label scratch short", x, pp, (2, 2), [6, 5, need], is_len),
        ("scratch short", x, pp, (2, 2), [6, 6, need - 1], is_buf),
        ("x NaN", xb[0], pp, (2, 2), [6, 6, need], is_param),
        ("x ∞", xb[1], pp, (2, 2), [6, 6, need], is_param),
        ("given NaN", x, gb[0], (2, 2), [6, 6, need], is_param),
        ("given ∞", x, gb[1], (2, 2), [6, 6, need], is_param),
        ("given 3×1", x, g31, (2, 2), [6, 6, need], is_shape),
        ("given 3×4", x, g34, (2, 2), [6, 6, need], is_shape),
    ];
    type Fit = fn(
        MatRef<'_, f64>,
        KMeansInit<'_, f64>,
        &KMeansConfig<f64>,
        &mut Xoshiro256PlusPlus,
        MatMut<'_, f64>,
        &mut [usize],
        &mut [f64],
        &mut [usize],
    ) -> Result<KMeansFit<f64>>;
    for fit in [
        kmeans_views::<f64, Xoshiro256PlusPlus> as Fit,
        kmeans_views_with::<Scalar, f64, Xoshiro256PlusPlus>,
    ] {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(1);
        let mut c = [7.0f64; 14];
        let mut labels = [99usize; 6];
        let mut ls = [0usize; 6];
        let mut scratch = vec![0.0f64; kmeans_scratch_len(6, 7, 3)];
        let mut run = |x: MatRef<'_, f64>,
                       init: KMeansInit<'_, f64>,
                       cfg: &KMeansConfig<f64>,
                       at: (usize, usize),
                       [nl, nls, ns]: [usize; 3]| {
            fit(
                x,
                init,
                cfg,
                &mut rng,
                mm(&mut c, at),
                &mut labels[..nl],
                &mut scratch[..ns],
                &mut ls[..nls],
            )
        };
        for cfg in bad_cfgs {
            err!(run(x, pp, &cfg, (2, 2), [6, 6, need]), is_param, "{cfg:?}");
        }
        for (what, xs, init, at, lens, m) in cases {
            err!(run(xs, init, &ok, at, lens), m, "{what}");
        }
        assert_eq!((c, labels), ([7.0; 14], [99; 6]));
        // Finite points whose distances overflow the element type (f32).
        let xf = [3e38f32, -3e38];
        let mut cf = [7.0f32];
        let mut lf = [99usize; 2];
        err!(
            kmeans_views(
                mr(&xf, (2, 1)),
                KMeansInit::Given(mr(&[0.0f32], (1, 1))),
                &KMeansConfig::default(),
                &mut rng,
                mm(&mut cf, (1, 1)),
                &mut lf,
                &mut vec![0.0; kmeans_scratch_len(2, 1, 1)],
                &mut [0; 2]
            ),
            is_param
        );
        assert_eq!((cf, lf), ([7.0], [99; 2]));
        // The valid fit.
        let (init, mc) = (KMeansInit::Given(gv), mm(&mut c, (2, 2)));
        let f = fit(
            x,
            init,
            &ok,
            &mut rng,
            mc,
            &mut labels,
            &mut scratch,
            &mut ls,
        )
        .unwrap();
        assert_eq!(labels, [0, 0, 0, 1, 1, 1]);
        assert!(f.inertia < 0.1);
    }
    // kmeans_dyn: the same rules, with K given as a number.
    let xm = Matrix::from_vec(6, 2, flat.clone()).unwrap();
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(2);
    let mut xb = flat.clone();
    xb[0] = f64::NAN;
    let xbm = Matrix::from_vec(6, 2, xb).unwrap();
    let n_init0 = KMeansConfig { n_init: 0, ..ok };
    // (x, K, init, configuration, error)
    type DynRow<'a> = (
        &'a Matrix<f64>,
        usize,
        KMeansInit<'a, f64>,
        KMeansConfig<f64>,
        Matcher,
    );
    let cases: [DynRow<'_>; 5] = [
        (&xm, 0, pp, ok, is_param),
        (&xm, 7, pp, ok, is_param),
        (&xm, 2, pp, n_init0, is_param),
        (&xm, 3, KMeansInit::Given(gv), ok, is_shape),
        (&xbm, 2, pp, ok, is_param),
    ];
    for (i, (xs, k, init, cfg, m)) in cases.into_iter().enumerate() {
        err!(kmeans_dyn(xs, k, init, &cfg, &mut rng), m, "case {i}");
    }
    let (centers, labels, _) = kmeans_dyn(&xm, 2, KMeansInit::Given(gv), &ok, &mut rng).unwrap();
    assert_eq!((centers.shape(), labels.len()), ((2, 2), 6));
    // D = 0 is valid: every point sits on every centre.
    let mut l0 = [9usize; 3];
    let f0 = kmeans_views(
        mr::<f64>(&[], (3, 0)),
        pp,
        &ok,
        &mut rng,
        mm(&mut [], (2, 0)),
        &mut l0,
        &mut vec![0.0; kmeans_scratch_len(3, 2, 0)],
        &mut [0; 3],
    )
    .unwrap();
    assert_eq!((f0.inertia, l0), (0.0, [0; 3]));
    // Sizes saturate instead of overflowing.
    assert_eq!(kmeans_scratch_len(usize::MAX, 2, 2), usize::MAX);
    assert_eq!(kmeans_scratch_len(1, usize::MAX, usize::MAX), usize::MAX);
}

#[test]
fn audit_kmeans_predict_bad_inputs() {
    let flat: Vec<f64> = PTS.as_flattened().to_vec();
    let x = mr(&flat, (6, 2));
    let centers = [0.0f64, 0.0, 5.0, 5.0];
    let cv = mr(&centers, (2, 2));
    let mut labels = [99usize; 6];
    err!(
        kmeans_predict_views(x, mr(&[], (0, 2)), &mut labels),
        is_empty
    );
    err!(
        kmeans_predict_views(x, mr(&centers, (1, 3)), &mut labels),
        is_shape
    );
    err!(kmeans_predict_views(x, cv, &mut labels[..5]), is_len);
    assert_eq!(labels, [99; 6]);
    for bad in [f64::NAN, f64::INFINITY] {
        let mut cb = centers;
        cb[2] = bad;
        // An infinite centre is simply never nearest; NaN likewise.
        kmeans_predict_views(x, mr(&cb, (2, 2)), &mut labels).unwrap();
        assert_eq!(labels, [0; 6]);
        let mut labels = [99usize; 6];
        let mut xb = flat.clone();
        xb[8] = bad; // point 4
        err!(
            kmeans_predict_views(mr(&xb, (6, 2)), cv, &mut labels),
            is_param
        );
        // The points before the bad one are already labelled.
        assert_eq!(labels, [0, 0, 0, 1, 99, 99]);
        // Every centre non-finite: no finite distance.
        let cb = [bad; 4];
        err!(
            kmeans_predict_views(x, mr(&cb, (2, 2)), &mut labels),
            is_param
        );
    }
    // Edge: no points.
    assert_eq!(kmeans_predict_views(mr(&[], (0, 2)), cv, &mut []), Ok(0.0));
}

#[test]
fn audit_kmeans_lloyd_step_bad_inputs() {
    let flat: Vec<f64> = PTS.as_flattened().to_vec();
    let x = mr(&flat, (6, 2));
    let full = kmeans_scratch_len(6, 7, 3);
    let need = kmeans_scratch_len(6, 2, 2);
    // (points, centres (K, D), lengths of labels and scratch, error)
    type Row<'a> = (MatRef<'a, f64>, (usize, usize), usize, usize, Matcher);
    let cases: [Row<'_>; 5] = [
        (x, (0, 2), 6, full, is_param),
        (mr(&flat, (1, 2)), (2, 2), 1, full, is_param),
        (x, (2, 3), 6, full, is_shape),
        (x, (2, 2), 5, full, is_len),
        (x, (2, 2), 6, need - 1, is_buf),
    ];
    type Step = fn(MatRef<'_, f64>, MatMut<'_, f64>, &mut [usize], &mut [f64]) -> Result<f64>;
    for step in [
        kmeans_lloyd_step_views::<f64> as Step,
        kmeans_lloyd_step_views_with::<Scalar, f64>,
    ] {
        let mut c = [0.0f64, 0.0, 5.0, 5.0, 1.0, 1.0, 2.0, 2.0];
        let c0 = c;
        let mut labels = [0usize; 6];
        let mut scratch = vec![0.0f64; full];
        for (i, (xs, at, nl, ns, m)) in cases.into_iter().enumerate() {
            let r = step(xs, mm(&mut c, at), &mut labels[..nl], &mut scratch[..ns]);
            err!(r, m, "case {i}: centres {at:?}, labels {nl}, scratch {ns}");
        }
        assert_eq!(c, c0);
        // NaN is not scanned for: the NaN point's centre turns NaN, nothing
        // panics, the other centre is untouched by it.
        let mut xb = flat.clone();
        xb[1] = f64::NAN; // point 0, nearest to centre 0
        step(
            mr(&xb, (6, 2)),
            mm(&mut c, (2, 2)),
            &mut labels,
            &mut scratch,
        )
        .unwrap();
        assert!(c[..2].iter().any(|v| v.is_nan()));
        assert!(c[2..4].iter().all(|v| v.is_finite()));
    }
}

#[test]
fn audit_kmeans_online_update_bad_inputs() {
    let mut c = [0.0f32, 0.0, 5.0, 5.0];
    let mut counts = [1u64, 0];
    err!(
        kmeans_online_update(mm(&mut c, (0, 2)), &mut [], &[1.0, 1.0]),
        is_empty
    );
    err!(
        kmeans_online_update(mm(&mut c, (2, 2)), &mut counts[..1], &[1.0, 1.0]),
        is_len
    );
    err!(
        kmeans_online_update(mm(&mut c, (2, 2)), &mut counts, &[1.0]),
        is_len
    );
    for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
        let r = kmeans_online_update(mm(&mut c, (2, 2)), &mut counts, &[1.0, bad]);
        err!(r, is_param, "{bad}");
    }
    assert_eq!((c, counts), ([0.0, 0.0, 5.0, 5.0], [1, 0]));
    // A count-0 centre takes the first sample it wins.
    assert_eq!(
        kmeans_online_update(mm(&mut c, (2, 2)), &mut counts, &[4.0, 6.0]),
        Ok(1)
    );
    assert_eq!((c, counts), ([0.0, 0.0, 4.0, 6.0], [1, 1]));
    // Counts saturate instead of overflowing.
    let mut counts = [u64::MAX, 1];
    kmeans_online_update(mm(&mut c, (2, 2)), &mut counts, &[0.0, 1.0]).unwrap();
    assert_eq!(counts, [u64::MAX, 1]);
}

#[test]
fn audit_kmeans_const_face_bad_inputs() {
    let km = KMeans::<f64, 2, 2>::new().max_iter(7).tol(0.5).n_init(3);
    assert_eq!(
        km.config(),
        &KMeansConfig {
            max_iter: 7,
            tol: 0.5,
            n_init: 3
        }
    );
    let mut scratch = KMeansScratch::<f64, 6, 2, 2>::new();
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(5);
    let (mut c, mut labels) = ([[7.0f64; 2]; 2], [99usize; 6]);
    let base = KMeans::<f64, 2, 2>::new();
    let pp = KMeansInit::PlusPlus;
    let mut fit = |km: &KMeans<f64, 2, 2>, x: &[[f64; 2]; 6], init: KMeansInit<'_, f64>| {
        km.fit(x, init, &mut rng, &mut c, &mut labels, &mut scratch)
    };
    for bad in [
        base.max_iter(0),
        base.n_init(0),
        base.tol(-0.5),
        base.tol(f64::NAN),
    ] {
        err!(fit(&bad, &PTS, pp), is_param, "{:?}", bad.config());
    }
    let mut xb = PTS;
    xb[2][1] = f64::INFINITY;
    err!(fit(&base, &xb, pp), is_param);
    let g = [0.0f64; 6];
    err!(
        fit(&base, &PTS, KMeansInit::Given(mr(&g, (3, 2)))),
        is_shape
    );
    let gn = [0.0, f64::NAN, 5.0, 5.0];
    err!(
        fit(&base, &PTS, KMeansInit::Given(mr(&gn, (2, 2)))),
        is_param
    );
    assert_eq!((c, labels), ([[7.0; 2]; 2], [99; 6]));
    // Edge: K = N.
    let (mut c2, mut l2) = ([[0.0f64; 2]; 2], [0usize; 2]);
    let two = [[0.0, 0.0], [1.0, 1.0]];
    let f = base
        .fit(
            &two,
            pp,
            &mut rng,
            &mut c2,
            &mut l2,
            &mut KMeansScratch::new(),
        )
        .unwrap();
    assert_eq!(f.inertia, 0.0);
    // The valid configuration runs.
    km.fit(&PTS, pp, &mut rng, &mut c, &mut labels, &mut scratch)
        .unwrap();
}

// ---------------------------------------------------------------- ml::linear_regression

#[test]
fn audit_linear_regression_helpers_unchecked_edges() {
    // LearningRate::at does not validate: t = 0 lies outside its domain.
    assert_eq!(LearningRate::Constant(0.1f64).at(1), 0.1);
    let inv = LearningRate::InvScaling {
        eta0: 1.0f64,
        power_t: 0.5,
    };
    assert_eq!(inv.at(4), 0.5);
    assert_eq!(inv.at(0), f64::INFINITY);
    assert!(LearningRate::Constant(f64::NAN).at(1).is_nan());
    // Sizes.
    assert_eq!(sgd_scratch_len(3), 3);
    assert_eq!(least_squares_scratch_len(4, 1), 12);
    assert_eq!(least_squares_scratch_len(usize::MAX, 1), usize::MAX);
    assert_eq!(least_squares_scratch_len(2, usize::MAX), usize::MAX);
    // Builders and the model: no invalid input; NaN propagates.
    let cfg = SgdConfig::new(0.1f64, 4, 10);
    assert_eq!(
        (
            cfg.lr,
            cfg.rule,
            cfg.epochs,
            cfg.l2,
            cfg.validate_every,
            cfg.drop_last
        ),
        (
            LearningRate::Constant(0.1),
            SgdRule::MiniBatch(4),
            10,
            0.0,
            1,
            false
        )
    );
    let mut m = LinearRegression::<f64, 2>::new();
    assert_eq!((m.w, m.b), ([0.0; 2], 0.0));
    m.w = [1.0, 2.0];
    assert_eq!(m.predict(&[1.0, 1.0]), 3.0);
    assert!(m.predict(&[f64::NAN, 1.0]).is_nan());
}

#[test]
fn audit_half_mse_bad_inputs() {
    let x = [1.0f64, 2.0, 3.0, 4.0]; // (2, 2)
    let xv = MatRef::new(&x, 2, 2).unwrap();
    for f in [half_mse::<f64>, half_mse_with::<Scalar, f64>] {
        err!(f(xv, &[1.0], &[1.0, 1.0], 0.0), is_len);
        err!(f(xv, &[1.0, 2.0], &[1.0], 0.0), is_len);
        assert_eq!(
            f(MatRef::new(&[], 0, 2).unwrap(), &[], &[1.0, 1.0], 0.0),
            Ok(0.0)
        );
        assert!(f(xv, &[1.0, f64::NAN], &[1.0, 1.0], 0.0).unwrap().is_nan());
        assert_eq!(f(xv, &[3.0, 8.0], &[1.0, 1.0], 0.0), Ok(0.25));
    }
}

/// The training data of [`SgdFit`]: `(3, 2)`.
const SGD_X: [f64; 6] = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];

/// A valid `sgd_fit_views` call on [`SGD_X`] (views take the head of their
/// buffer); table edits break it.
#[derive(Clone, Debug)]
struct SgdFit {
    x: Vec<f64>,
    x_at: (usize, usize),
    y: Vec<f64>,
    /// Validation points and their shape (their targets are `[1.0]`).
    val: Option<(Vec<f64>, (usize, usize))>,
    cfg: SgdConfig<f64>,
    w: Vec<f64>,
    b: f64,
    perm: Vec<usize>,
    rng: Option<Xoshiro256PlusPlus>,
    scratch: Vec<f64>,
    scalar: bool,
}

impl SgdFit {
    fn new(cfg: SgdConfig<f64>) -> Self {
        Self {
            x: SGD_X.to_vec(),
            x_at: (3, 2),
            y: vec![1.0, 2.0, 3.0],
            val: None,
            cfg,
            w: vec![0.5, -0.5],
            b: 0.25,
            perm: vec![9; 3],
            rng: None,
            scratch: vec![0.0; 2],
            scalar: false,
        }
    }
    fn run(&mut self, on_epoch: &mut dyn FnMut(EpochReport<f64>)) -> Result<u64> {
        let f = pick!(self.scalar, sgd_fit_views, sgd_fit_views_with, f64);
        let val = self.val.as_ref().map(|(vx, at)| (mr(vx, *at), &[1.0][..]));
        let rng = self.rng.as_mut().map(|r| r as &mut dyn Rng);
        let (x, y, cfg) = (mr(&self.x, self.x_at), &self.y[..], &self.cfg);
        let (w, b, perm) = (&mut self.w, &mut self.b, &mut self.perm);
        f(x, y, val, cfg, w, b, perm, rng, &mut self.scratch, on_epoch)
    }
    /// What a call may write, bit for bit (a NaN equals itself), and the
    /// generator's state.
    fn outputs(&self) -> (Vec<u64>, u64, Vec<usize>, Option<Xoshiro256PlusPlus>) {
        let w = self.w.iter().map(|v| v.to_bits()).collect();
        (w, self.b.to_bits(), self.perm.clone(), self.rng.clone())
    }
    fn set_val(&mut self, x: &[f64], at: (usize, usize)) {
        self.val = Some((x.to_vec(), at));
    }
    /// No training data.
    fn empty(&mut self) {
        self.x_at = (0, 2);
        self.y.clear();
        self.perm.clear();
    }
    /// The Scalar backend with `validate_every` 0.
    fn scalar_unvalidated(&mut self) {
        self.scalar = true;
        self.cfg.validate_every = 0;
    }
}

#[test]
fn audit_sgd_fit_bad_inputs() {
    let ok = SgdConfig::new(0.01f64, 2, 3);
    let inv = |eta0, power_t| SgdConfig {
        lr: LearningRate::InvScaling { eta0, power_t },
        ..ok
    };
    let bad_cfgs = [
        SgdConfig::new(0.0, 2, 3),
        SgdConfig::new(-0.1, 2, 3),
        SgdConfig::new(f64::NAN, 2, 3),
        SgdConfig::new(f64::INFINITY, 2, 3),
        inv(0.1, f64::NAN),
        inv(0.0, 0.25),
        SgdConfig::new(0.01, 0, 3),
        SgdConfig { l2: -1.0, ..ok },
        SgdConfig { l2: f64::NAN, ..ok },
        SgdConfig {
            validate_every: 0,
            ..ok
        },
    ];
    let cases: [Case<SgdFit>; 13] = [
        ("no data", SgdFit::empty, is_empty),
        ("y short", |f| shorten(&mut f.y), is_len),
        ("w short", |f| shorten(&mut f.w), is_len),
        ("perm short", |f| shorten(&mut f.perm), is_len),
        ("scratch short", |f| shorten(&mut f.scratch), is_buf),
        ("x NaN", |f| f.x[3] = f64::NAN, is_param),
        ("y ∞", |f| f.y = vec![1.0, f64::INFINITY, 0.0], is_param),
        ("w NaN", |f| f.w = vec![f64::NAN, 0.0], is_param),
        ("b −∞", |f| f.b = f64::NEG_INFINITY, is_param),
        ("val NaN", |f| f.set_val(&[1.0, f64::NAN], (1, 2)), is_param),
        ("val 2×2", |f| f.set_val(&SGD_X, (2, 2)), is_len),
        ("val 1×3", |f| f.set_val(&SGD_X, (1, 3)), is_len),
        ("Scalar", SgdFit::scalar_unvalidated, is_param),
    ];
    for sklearn in [false, true] {
        let mut calls = 0;
        let mut cb = |_: EpochReport<f64>| calls += 1;
        let mut run = |f: &mut SgdFit| f.run(&mut cb);
        let rule = |c: SgdConfig<f64>| {
            if sklearn {
                SgdConfig {
                    rule: SgdRule::Sklearn,
                    ..c
                }
            } else {
                c
            }
        };
        let base = SgdFit::new(rule(ok));
        // The generator is given, and must not be advanced.
        for c in bad_cfgs {
            if sklearn && c.rule == SgdRule::MiniBatch(0) {
                continue; // the batch size is not used by this rule
            }
            let edit = |f: &mut SgdFit| {
                f.cfg = rule(c);
                f.rng = Some(Xoshiro256PlusPlus::seed_from_u64(4));
            };
            check_case(
                &format!("{c:?}"),
                &base,
                edit,
                is_param,
                &mut run,
                SgdFit::outputs,
            );
        }
        check_cases(
            &format!("sklearn {sklearn}"),
            &base,
            &cases,
            &mut run,
            SgdFit::outputs,
        );
        // Not checked: a diverging run ends Ok with non-finite parameters.
        let mut d = base.clone();
        (d.w, d.b, d.cfg) = (vec![0.0; 2], 0.0, rule(SgdConfig::new(1e3, 1, 50)));
        run(&mut d).unwrap();
        if !sklearn {
            assert!(!d.w[0].is_finite());
        }
        assert_eq!(calls, 50);
    }
}

#[test]
fn audit_sgd_fit_faces_bad_inputs() {
    let x = [[1.0f64], [2.0], [3.0]];
    let y = [2.0f64, 4.0, 6.0];
    let mut m = LinearRegression::<f64, 1> { w: [0.5], b: 0.25 };
    let mut perm = [0usize; 3];
    let mut calls = 0;
    let mut cb = |_: EpochReport<f64>| calls += 1;
    let vx = [0.0f64, 1.0];
    let mut fit = |x: &[[f64; 1]; 3], val: Validation<'_, f64>, cfg: SgdConfig<f64>| {
        m.fit_sgd(x, &y, val, &cfg, &mut perm, None, &mut cb)
    };
    err!(fit(&x, None, SgdConfig::new(0.0, 1, 2)), is_param);
    err!(fit(&x, None, SgdConfig::new(0.1, 0, 2)), is_param);
    err!(
        fit(&[[f64::NAN], [2.0], [3.0]], None, SgdConfig::new(0.1, 1, 2)),
        is_param
    );
    let val = Some((mr(&vx, (1, 2)), &[1.0][..]));
    err!(fit(&x, val, SgdConfig::new(0.1, 1, 2)), is_len);
    err!(
        LinearRegression::<f64, 1>::new().fit_sgd::<0>(
            &[],
            &[],
            None,
            &SgdConfig::new(0.1, 1, 2),
            &mut [],
            None,
            &mut cb
        ),
        is_empty
    );
    assert_eq!((m.w, m.b, perm), ([0.5], 0.25, [0; 3]));
    assert_eq!(calls, 0);

    let xm = Matrix::from_vec(3, 1, vec![1.0f64, 2.0, 3.0]).unwrap();
    let cfg = SgdConfig::new(0.05f64, 1, 5);
    let vm = Matrix::from_vec(1, 2, vec![1.0f64, 2.0]).unwrap();
    let x0 = Matrix::zeros(0, 1).unwrap();
    let l2_inf = SgdConfig {
        l2: f64::INFINITY,
        ..cfg
    };
    // (x, y, validation, configuration, error)
    type Val<'a> = Option<(&'a Matrix<f64>, &'a [f64])>;
    type Row<'a> = (
        &'a Matrix<f64>,
        &'a [f64],
        Val<'a>,
        &'a SgdConfig<f64>,
        Matcher,
    );
    let cases: [Row<'_>; 5] = [
        (&xm, &y[..2], None, &cfg, is_len),
        (&x0, &[], None, &cfg, is_empty),
        (&xm, &[1.0, f64::NAN, 2.0], None, &cfg, is_param),
        (&xm, &y, None, &l2_inf, is_param),
        (&xm, &y, Some((&vm, &[1.0])), &cfg, is_len),
    ];
    for (i, (xs, ys, val, c, m)) in cases.into_iter().enumerate() {
        err!(sgd_fit_dyn(xs, ys, val, c, None), m, "case {i}");
    }
    let fit = sgd_fit_dyn(&xm, &y, None, &cfg, None).unwrap();
    assert_eq!((fit.steps, fit.history.len()), (15, 5));
}

#[test]
fn audit_least_squares_bad_inputs() {
    let x = [1.0f64, 2.0, 3.0, 4.0]; // (4, 1)
    let y = [3.0f64, 5.0, 7.0, 9.0];
    let xv = mr(&x, (4, 1));
    let mut scratch = vec![0.0f64; least_squares_scratch_len(4, 2)];
    let (full, need) = (scratch.len(), least_squares_scratch_len(4, 1));
    let (mut w, mut b) = ([7.0f64; 2], 7.0f64);
    // Design matrices and targets with a NaN, then an infinity.
    let bad = [f64::NAN, f64::INFINITY];
    let (x_bad, y_bad) = (
        bad.map(|v| [1.0, v, 3.0, 4.0]),
        bad.map(|v| [3.0, v, 7.0, 9.0]),
    );
    let col = [1.0f64, 2.0, 2.0, 4.0, 3.0, 6.0, 4.0, 8.0];
    // (x, y, lengths of scratch and w, error)
    type Row<'a> = (MatRef<'a, f64>, &'a [f64], usize, usize, Matcher);
    let cases: [Row<'_>; 11] = [
        (xv, &y[..3], full, 1, is_len),
        (xv, &y, full, 2, is_len),
        (xv, &y, need - 1, 1, is_buf),
        (xv, &y_bad[0], full, 1, is_param),
        (xv, &y_bad[1], full, 1, is_param),
        (mr(&x_bad[0], (4, 1)), &y, full, 1, is_param),
        (mr(&x_bad[1], (4, 1)), &y, full, 1, is_param),
        // Too few rows: N < D + 1.
        (mr(&x, (1, 1)), &y[..1], full, 1, is_param),
        (mr(&[], (0, 1)), &[], full, 1, is_param),
        // Rank-deficient designs: a constant feature, two collinear features.
        (mr(&[2.0; 4], (4, 1)), &y, full, 1, is_param),
        (mr(&col, (4, 2)), &y, full, 2, is_param),
    ];
    for (i, (xs, ys, ns, nw, m)) in cases.into_iter().enumerate() {
        let r = least_squares_views(xs, ys, &mut scratch[..ns], &mut w[..nw], &mut b);
        err!(r, m, "case {i}: x {xs:?}, y {ys:?}, scratch {ns}, w {nw}");
    }
    assert_eq!((w, b), ([7.0; 2], 7.0));
    least_squares_views(xv, &y, &mut scratch, &mut w[..1], &mut b).unwrap();
    assert!((w[0] - 2.0).abs() < 1e-12 && (b - 1.0).abs() < 1e-12);

    let xm = Matrix::from_vec(4, 1, x.to_vec()).unwrap();
    err!(
        least_squares_dyn(&Matrix::from_vec(1, 1, vec![1.0f64]).unwrap(), &[1.0]),
        is_param
    );
    err!(least_squares_dyn(&xm, &y[..3]), is_len);
    err!(least_squares_dyn(&xm, &[3.0, 5.0, f64::NAN, 9.0]), is_param);
    err!(
        least_squares_dyn(&Matrix::from_vec(4, 2, col.to_vec()).unwrap(), &y),
        is_param
    );
    let (wd, bd) = least_squares_dyn(&xm, &y).unwrap();
    assert!((wd[0] - 2.0).abs() < 1e-12 && (bd - 1.0).abs() < 1e-12);
}

// ---------------------------------------------------------------- findings

/// A 4×4 plane holding 0..16 (sum 120, mean 7.5, maximum 15 at index 15).
fn ramp() -> Vec<f64> {
    (0..16).map(f64::from).collect()
}

/// Finding (this audit, fixed): `padding * 2` was computed unchecked, so a
/// padding ≥ 2^63 panicked in debug builds instead of returning `Err`.
#[test]
fn audit_finding_pool_padding_doubling_overflows() {
    let s = Pool2dShape::new(1, 1, 4, 4, 2, 2).padding(1usize << 63, 0);
    err!(s.output(), is_param);
    err!(s.lens(), is_param);
}

/// Finding (this audit, fixed): ceil mode's last-window test `(out − 1)·s`
/// overflowed for a stride ≥ 2^63 (release gave OH 3 instead of 2).
#[test]
fn audit_finding_pool_ceil_mode_huge_stride() {
    // Windows start at 0, 2^63 and 2^64; the last starts beyond L + p = 2^64 − 2
    // and must be dropped (the module docs' ceil-mode rule).
    let s = Pool2dShape::new(0, 1, usize::MAX - 1, 1, 1, 1)
        .stride(1usize << 63, 1)
        .ceil_mode(true);
    assert_eq!(s.output(), Ok((2, 1)));
}

/// Finding (this audit, fixed): windows were computed in `isize`, so a kernel
/// and padding above `isize::MAX` wrapped (max-pool gave −∞, averages 0).
#[test]
fn audit_finding_pool_huge_window_wraps() {
    // Every window covers the whole 4×4 image (kernel 2p, padding p, stride 1).
    let k = usize::MAX - 5;
    let s = Pool2dShape::new(1, 1, 4, 4, k, k)
        .padding(k / 2, k / 2)
        .stride(1, 1);
    assert_eq!(s.output(), Ok((5, 5)));
    let x = ramp();
    let (mut y, mut idx) = (vec![0.0f64; 25], vec![0usize; 25]);
    max_pool2d_views(&x, &s, &mut y, &mut idx).unwrap();
    assert_eq!((y[0], idx[0]), (15.0, 15));
    avg_pool2d_views(&x, &s, false, &mut y).unwrap();
    assert_eq!(y[0], 7.5);
    let mut dx = vec![0.0f64; 16];
    avg_pool2d_backward_views(&s, false, &[1.0; 25], &mut dx).unwrap();
    assert_eq!(dx[0], 25.0 / 16.0);
}

/// Finding (this audit, fixed): the `count_include_pad` divisor `sh·sw`
/// overflowed `usize` (release divided by the wrapped 0 and wrote 0).
#[test]
fn audit_finding_avg_pool_divisor_overflow() {
    // Kernel 2^32 with padding 2^31: every window's padded extent is
    // 2^32 × 2^32 = 2^64 elements.
    let k = 1usize << 32;
    let s = Pool2dShape::new(1, 1, 4, 4, k, k)
        .padding(k / 2, k / 2)
        .stride(1, 1);
    let (oh, ow) = s.output().unwrap();
    let two64 = 2.0f64.powi(64);
    let mut y = vec![0.0f64; oh * ow];
    avg_pool2d_views(&ramp(), &s, true, &mut y).unwrap();
    assert_eq!(y[0], 120.0 / two64);
    let mut dx = vec![0.0f64; 16];
    avg_pool2d_backward_views(&s, true, &vec![1.0; oh * ow], &mut dx).unwrap();
    assert_eq!(dx[0], (oh * ow) as f64 / two64);
}

/// Finding (this audit, fixed): unscaled squared column norms made a
/// full-rank design near 1e−200 or 1e200 look rank-deficient.
#[test]
fn audit_finding_least_squares_extreme_scale() {
    // y = 2·(x/scale) + 1: full rank at any scale; w = 2/scale, b = 1.
    for scale in [1e-200f64, 1e200] {
        let x: Vec<f64> = [1.0, 2.0, 3.0, 4.0].iter().map(|v| v * scale).collect();
        let mut scratch = vec![0.0; least_squares_scratch_len(4, 1)];
        let (mut w, mut b) = ([0.0f64], 0.0f64);
        least_squares_views(
            MatRef::new(&x, 4, 1).unwrap(),
            &[3.0, 5.0, 7.0, 9.0],
            &mut scratch,
            &mut w,
            &mut b,
        )
        .unwrap();
        assert!((w[0] * scale / 2.0 - 1.0).abs() < 1e-9 && (b - 1.0).abs() < 1e-9);
    }
}
