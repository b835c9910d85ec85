//! Bad-input audit of the `nn`, `norm` and `ml` chapters: every invalid input
//! a public function can receive gets the `Err` variant its docs promise
//! (or the documented NaN propagation), and stateful calls leave their state
//! alone on `Err`. One test per row (or small group of rows) of the audit
//! table.

use constml::ml::*;
use constml::nn::*;
use constml::norm::*;
use constml::rand_core::{Rng, SeedableRng};
use constml::{Error, MatMut, MatRef, Matrix, Result, Scalar, Simd};
use rand_xoshiro::{Xoshiro128PlusPlus, Xoshiro256PlusPlus};

/// Which error a case must give.
type Matcher = fn(&Error) -> bool;

fn is_len(e: &Error) -> bool {
    matches!(e, Error::LengthMismatch { .. })
}
fn is_shape(e: &Error) -> bool {
    matches!(e, Error::ShapeMismatch { .. })
}
fn is_param(e: &Error) -> bool {
    matches!(e, Error::InvalidParameter { .. })
}
fn is_buf(e: &Error) -> bool {
    matches!(e, Error::BufferTooSmall { .. })
}
fn is_empty(e: &Error) -> bool {
    matches!(e, Error::Empty { .. })
}
fn is_range(e: &Error) -> bool {
    matches!(e, Error::OutOfRange { .. })
}
fn is_nan(e: &Error) -> bool {
    matches!(e, Error::NaN { .. })
}

/// `$call` must return `Err` satisfying `$m`.
macro_rules! err {
    ($call:expr, $m:ident) => {{
        match $call {
            Err(e) => assert!($m(&e), "{}: wrong error {e:?}", stringify!($call)),
            Ok(_) => panic!("{}: expected an error", stringify!($call)),
        }
    }};
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
        let mut dx = vec![7.0f32; 19];
        err!(
            activation_backward(act, &x, &yy[..18], &dy, &mut dx),
            is_len
        );
        err!(
            activation_backward(act, &x, &yy, &dy[..18], &mut dx),
            is_len
        );
        err!(
            activation_backward_with::<Scalar, f32>(act, &x, &yy, &dy, &mut dx[..18]),
            is_len
        );
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
        let yv = MatRef::new(&y, 2, 3).unwrap();
        err!(
            f(
                yv,
                MatRef::new(&dy, 3, 2).unwrap(),
                MatMut::new(&mut dx, 2, 3).unwrap()
            ),
            is_shape
        );
        err!(
            f(
                yv,
                MatRef::new(&dy, 2, 3).unwrap(),
                MatMut::new(&mut dx, 3, 2).unwrap()
            ),
            is_shape
        );
        err!(
            f(
                yv,
                MatRef::new(&dy[..4], 2, 2).unwrap(),
                MatMut::new(&mut dx, 2, 3).unwrap()
            ),
            is_shape
        );
        assert_eq!(dx, [7.0; 6]);
        // Zero columns: nothing to do.
        f(
            MatRef::new(&[], 2, 0).unwrap(),
            MatRef::new(&[], 2, 0).unwrap(),
            MatMut::new(&mut [], 2, 0).unwrap(),
        )
        .unwrap();
        // NaN in row 0 stays in row 0.
        let mut dy = vals(6, 3.0);
        dy[1] = f32::NAN;
        f(
            yv,
            MatRef::new(&dy, 2, 3).unwrap(),
            MatMut::new(&mut dx, 2, 3).unwrap(),
        )
        .unwrap();
        assert!(dx[..3].iter().all(|v| v.is_nan()));
        assert!(dx[3..].iter().all(|v| v.is_finite()));
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
        err!(bad.output(), is_param);
        err!(bad.lens(), is_param);
        assert_eq!(conv2d_im2col_scratch_len(&bad), 0);
    }
    // Padding makes a large kernel fit.
    assert_eq!(
        Conv2dShape::new(1, 2, 4, 4, 4, 5, 5).padding(1, 1).output(),
        Ok((2, 2))
    );
    // Totals that overflow usize.
    err!(
        Conv2dShape::new(usize::MAX, 2, 4, 4, 4, 3, 3).lens(),
        is_param
    );
    err!(
        Conv2dShape::new(1, 1, usize::MAX, 2, 1, 1, 1).lens(),
        is_param
    );
    // With no images the totals are 0, but the kernels still form H·W.
    err!(
        Conv2dShape::new(0, 1, usize::MAX, 2, 1, 1, 1).lens(),
        is_param
    );
    // Pure size helpers: None / saturation / 0, never a panic.
    assert_eq!(conv_out_len(4, 3, 1, 1, 1), Some(4));
    assert_eq!(conv_out_len(4, 5, 1, 0, 1), None);
    assert_eq!(conv_out_len(4, 0, 1, 0, 1), None);
    assert_eq!(conv_out_len(4, 3, 0, 0, 1), None);
    assert_eq!(conv_out_len(4, 3, 1, 0, 0), None);
    assert_eq!(conv_out_len(usize::MAX, 1, 1, 1, 1), None);
    assert_eq!(conv_out_len(4, 3, 1, usize::MAX, 1), None);
    assert_eq!(conv_out_len(4, usize::MAX, 1, 0, 2), None);
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
}

#[test]
fn audit_conv2d_forward_bad_inputs() {
    type Edit = fn(&mut Conv);
    let cases: [(Edit, Matcher); 7] = [
        (|c| c.x.truncate(31), is_len),
        (|c| c.w.push(0.0), is_len),
        (|c| c.y.truncate(63), is_len),
        (|c| c.b.truncate(3), is_len),
        (|c| c.shape = c.shape.stride(0, 1), is_param),
        (|c| c.shape = c.shape.groups(3), is_param),
        (|c| c.shape = c.shape.padding(0, 0).dilation(2, 2), is_param),
    ];
    for k in 0..6 {
        for (edit, m) in cases {
            let mut c = Conv::new();
            edit(&mut c);
            let before = c.y.clone();
            err!(c.fwd(k), m);
            assert_eq!(c.y, before, "path {k}: y written on Err");
        }
    }
    // A short im2col scratch: BufferTooSmall on the im2col path; the auto
    // path falls back to the direct kernel.
    for k in [1, 4] {
        let mut c = Conv::new();
        c.scratch.truncate(287);
        err!(c.fwd(k), is_buf);
        assert_eq!(c.y, vec![7.0; 64]);
    }
    for (k, base) in [(2, 0), (5, 3)] {
        let mut direct = Conv::new();
        direct.fwd(base).unwrap();
        let mut c = Conv::new();
        c.scratch.clear();
        c.fwd(k).unwrap();
        assert_eq!(c.y, direct.y);
    }
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
    type Edit = fn(&mut Conv);
    let cases: [(Edit, Matcher); 8] = [
        (|c| c.x.truncate(31), is_len),
        (|c| c.w.push(0.0), is_len),
        (|c| c.dy.truncate(63), is_len),
        (|c| c.dx.truncate(31), is_len),
        (|c| c.dw.push(7.0), is_len),
        (|c| c.db.truncate(3), is_len),
        (|c| c.shape = c.shape.dilation(0, 1), is_param),
        (|c| c.shape = c.shape.groups(0), is_param),
    ];
    for k in 0..6 {
        for (edit, m) in cases {
            let mut c = Conv::new();
            edit(&mut c);
            let before = c.clone();
            err!(c.bwd(k), m);
            assert_eq!(
                (&c.dx, &c.dw, &c.db),
                (&before.dx, &before.dw, &before.db),
                "path {k}: gradients written on Err"
            );
        }
    }
    for k in [1, 4] {
        let mut c = Conv::new();
        c.scratch.truncate(287);
        err!(c.bwd(k), is_buf);
        assert_eq!(
            (c.dx, c.dw, c.db),
            (vec![7.0; 32], vec![7.0; 72], vec![7.0; 4])
        );
    }
    for (k, base) in [(2, 0), (5, 3)] {
        let mut direct = Conv::new();
        direct.bwd(base).unwrap();
        let mut c = Conv::new();
        c.scratch.clear();
        c.bwd(k).unwrap();
        assert_eq!((&c.dx, &c.dw, &c.db), (&direct.dx, &direct.dw, &direct.db));
    }
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
    for (p, m) in bad {
        let mut y = [[[[7.0f32; 2]; 2]; 2]; 1];
        err!(
            conv2d_with::<Simd, f32, 1, 2, 4, 4, 2, 2, 3, 3, 2, 2>(
                &x,
                &w,
                Some(&[0.0; 2]),
                &mut y,
                &p
            ),
            m
        );
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
        err!(
            conv2d_backward_with::<Simd, f32, 1, 2, 4, 4, 2, 2, 3, 3, 2, 2>(
                &x,
                &w,
                &dy,
                Some(&mut dx),
                Some(&mut dw),
                Some(&mut db),
                &p
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
    conv2d_with::<Simd, f32, 1, 2, 4, 4, 2, 2, 3, 3, 2, 2>(
        &x,
        &w,
        None,
        &mut y,
        &Conv2dParams::new(),
    )
    .unwrap();
    assert_eq!(y[0][1][1][1], 18.0 * 0.125);
}

#[test]
fn audit_conv2d_dyn_bad_inputs() {
    let p = Conv2dParams::new().padding(1, 1);
    err!(Conv2dDyn::<f32>::zeros(2, 4, (0, 3), 1, p, true), is_param);
    err!(Conv2dDyn::<f32>::zeros(2, 4, (3, 0), 1, p, true), is_param);
    err!(Conv2dDyn::<f32>::zeros(3, 4, (3, 3), 2, p, true), is_param);
    err!(Conv2dDyn::<f32>::zeros(2, 3, (3, 3), 2, p, true), is_param);
    err!(Conv2dDyn::<f32>::zeros(2, 4, (3, 3), 0, p, true), is_param);
    err!(
        Conv2dDyn::<f32>::zeros(2, 4, (3, 3), 1, p.stride(0, 1), true),
        is_param
    );
    err!(
        Conv2dDyn::<f32>::zeros(2, 4, (3, 3), 1, p.dilation(1, 0), true),
        is_param
    );

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
        err!(
            dropout_forward(&x, &mut y, &mut mask, p, true, &mut rng),
            is_param
        );
        err!(
            dropout_forward(&x, &mut y, &mut mask, p, false, &mut rng),
            is_param
        );
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
    err!(
        dropout_forward(&x, &mut y[..7], &mut mask, 0.5, true, &mut rng),
        is_len
    );
    err!(
        dropout_forward(&x, &mut y, &mut mask[..7], 0.5, false, &mut rng),
        is_len
    );
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
    assert!(y[3].is_nan() && y.iter().enumerate().all(|(i, v)| i == 3 || v.is_finite()));
}

// ---------------------------------------------------------------- nn::embedding

#[test]
fn audit_embedding_bad_ids_and_shapes() {
    let table = vals(6, 1.0); // V 3, D 2
    let t = MatRef::new(&table, 3, 2).unwrap();
    let mut y = [7.0f32; 4];
    assert_eq!(
        embedding_views(t, &[0, 3], MatMut::new(&mut y, 2, 2).unwrap()),
        Err(Error::OutOfRange {
            what: "embedding: id",
            index: 3,
            len: 3
        })
    );
    err!(
        embedding_views(t, &[0], MatMut::new(&mut y, 2, 2).unwrap()),
        is_len
    );
    err!(
        embedding_views(t, &[0, 1], MatMut::new(&mut y, 1, 4).unwrap()),
        is_len
    );
    err!(
        embedding_views(t, &[0], MatMut::new(&mut y[..3], 1, 3).unwrap()),
        is_len
    );
    assert_eq!(y, [7.0; 4]);

    let dy = vals(4, 2.0);
    let mut grad = [0.5f32; 6];
    for f in [
        embedding_backward_views::<f32>,
        embedding_backward_views_with::<Scalar, f32>,
    ] {
        err!(
            f(
                &[1, usize::MAX],
                MatRef::new(&dy, 2, 2).unwrap(),
                MatMut::new(&mut grad, 3, 2).unwrap()
            ),
            is_range
        );
        err!(
            f(
                &[1],
                MatRef::new(&dy, 2, 2).unwrap(),
                MatMut::new(&mut grad, 3, 2).unwrap()
            ),
            is_len
        );
        err!(
            f(
                &[1, 2],
                MatRef::new(&dy, 2, 2).unwrap(),
                MatMut::new(&mut grad, 2, 3).unwrap()
            ),
            is_len
        );
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
    embedding_views(
        MatRef::<f32>::new(&[], 0, 2).unwrap(),
        &[],
        MatMut::new(&mut [], 0, 2).unwrap(),
    )
    .unwrap();
}

// ---------------------------------------------------------------- nn::linear

#[test]
fn audit_linear_views_bad_shapes() {
    let x = vals(6, 1.0); // (2, 3)
    let w = vals(12, 2.0); // (4, 3)
    let b = vals(4, 3.0);
    type F = fn(MatRef<'_, f32>, MatRef<'_, f32>, Option<&[f32]>, MatMut<'_, f32>) -> Result<()>;
    for f in [linear_views::<f32> as F, linear_views_with::<Scalar, f32>] {
        let xv = MatRef::new(&x, 2, 3).unwrap();
        let mut y = [7.0f32; 8];
        err!(
            f(
                xv,
                MatRef::new(&w[..8], 4, 2).unwrap(),
                Some(&b),
                MatMut::new(&mut y, 2, 4).unwrap()
            ),
            is_shape
        );
        err!(
            f(
                xv,
                MatRef::new(&w, 4, 3).unwrap(),
                Some(&b[..3]),
                MatMut::new(&mut y, 2, 4).unwrap()
            ),
            is_len
        );
        err!(
            f(
                xv,
                MatRef::new(&w, 4, 3).unwrap(),
                None,
                MatMut::new(&mut y[..6], 2, 3).unwrap()
            ),
            is_shape
        );
        err!(
            f(
                xv,
                MatRef::new(&w, 4, 3).unwrap(),
                None,
                MatMut::new(&mut y, 4, 2).unwrap()
            ),
            is_shape
        );
        assert_eq!(y, [7.0; 8]);
        // NaN in row 0 of x stays in row 0 of y.
        let mut xn = x.clone();
        xn[1] = f32::NAN;
        f(
            MatRef::new(&xn, 2, 3).unwrap(),
            MatRef::new(&w, 4, 3).unwrap(),
            Some(&b),
            MatMut::new(&mut y, 2, 4).unwrap(),
        )
        .unwrap();
        assert!(y[..4].iter().all(|v| v.is_nan()) && y[4..].iter().all(|v| v.is_finite()));
    }
}

/// `linear_backward_views` (or its Scalar form) with every gradient wanted.
fn lin_bwd(
    scalar: bool,
    x: MatRef<'_, f32>,
    w: MatRef<'_, f32>,
    dy: MatRef<'_, f32>,
    dx: MatMut<'_, f32>,
    dw: MatMut<'_, f32>,
    db: &mut [f32],
) -> Result<()> {
    if scalar {
        linear_backward_views_with::<Scalar, f32>(x, w, dy, Some(dx), Some(dw), Some(db))
    } else {
        linear_backward_views(x, w, dy, Some(dx), Some(dw), Some(db))
    }
}

#[test]
fn audit_linear_backward_bad_shapes() {
    let x = vals(6, 1.0); // (2, 3)
    let w = vals(12, 2.0); // (4, 3)
    let dy = vals(8, 3.0); // (2, 4)
    for k in 0..2 {
        let (mut dx, mut dw, mut db) = ([7.0f32; 6], [7.0f32; 12], [7.0f32; 4]);
        let xv = MatRef::new(&x, 2, 3).unwrap();
        let wv = MatRef::new(&w, 4, 3).unwrap();
        let dyv = MatRef::new(&dy, 2, 4).unwrap();
        // dy of the wrong shape.
        err!(
            lin_bwd(
                k == 1,
                xv,
                wv,
                MatRef::new(&dy[..6], 2, 3).unwrap(),
                MatMut::new(&mut dx, 2, 3).unwrap(),
                MatMut::new(&mut dw, 4, 3).unwrap(),
                &mut db
            ),
            is_shape
        );
        // w whose columns are not x's.
        err!(
            lin_bwd(
                k == 1,
                xv,
                MatRef::new(&w[..8], 4, 2).unwrap(),
                dyv,
                MatMut::new(&mut dx, 2, 3).unwrap(),
                MatMut::new(&mut dw, 4, 3).unwrap(),
                &mut db
            ),
            is_shape
        );
        // dx, dw, db of the wrong shape or length.
        err!(
            lin_bwd(
                k == 1,
                xv,
                wv,
                dyv,
                MatMut::new(&mut dx, 3, 2).unwrap(),
                MatMut::new(&mut dw, 4, 3).unwrap(),
                &mut db
            ),
            is_shape
        );
        err!(
            lin_bwd(
                k == 1,
                xv,
                wv,
                dyv,
                MatMut::new(&mut dx, 2, 3).unwrap(),
                MatMut::new(&mut dw, 3, 4).unwrap(),
                &mut db
            ),
            is_shape
        );
        err!(
            lin_bwd(
                k == 1,
                xv,
                wv,
                dyv,
                MatMut::new(&mut dx, 2, 3).unwrap(),
                MatMut::new(&mut dw, 4, 3).unwrap(),
                &mut db[..3]
            ),
            is_len
        );
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
    assert!(d[2].is_nan() && d.iter().enumerate().all(|(i, v)| i == 2 || v.is_finite()));

    let tb = [0.0f32, 1.0, 0.5, 0.25, 1.0];
    let mut d = [7.0f32; 5];
    err!(bce_with_logits(&p, &tb[..4], None), is_len);
    err!(bce_with_logits(&p, &tb, Some(&mut d[..4])), is_len);
    err!(bce_with_logits::<f32>(&[], &[], None), is_empty);
    for bad in [1.5f32, -0.1, f32::NAN, f32::INFINITY] {
        let mut tt = tb;
        tt[3] = bad;
        err!(bce_with_logits(&p, &tt, Some(&mut d)), is_param);
    }
    assert_eq!(d, [7.0; 5]);
    assert!(bce_with_logits(&pn, &tb, Some(&mut d)).unwrap().is_nan());
    assert!(d[2].is_nan() && d.iter().enumerate().all(|(i, v)| i == 2 || v.is_finite()));
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
    let lv = MatRef::new(&logits, 2, 3).unwrap();
    let plain = CrossEntropy::<f32>::default();
    type F =
        fn(MatRef<'_, f32>, &[usize], &CrossEntropy<f32>, Option<MatMut<'_, f32>>) -> Result<f32>;
    for f in [
        cross_entropy_views::<f32> as F,
        cross_entropy_views_with::<Scalar, f32>,
    ] {
        let mut d = [7.0f32; 6];
        err!(f(lv, &[0], &plain, None), is_len);
        err!(
            f(
                lv,
                &[0, 1],
                &plain,
                Some(MatMut::new(&mut d[..4], 2, 2).unwrap())
            ),
            is_shape
        );
        for eps in [1.5f32, -0.1, f32::NAN] {
            let o = CrossEntropy {
                label_smoothing: eps,
                ignore_index: None,
            };
            err!(
                f(lv, &[0, 1], &o, Some(MatMut::new(&mut d, 2, 3).unwrap())),
                is_param
            );
        }
        err!(
            f(MatRef::new(&[], 0, 3).unwrap(), &[], &plain, None),
            is_empty
        );
        err!(
            f(MatRef::new(&[], 2, 0).unwrap(), &[0, 0], &plain, None),
            is_empty
        );
        assert_eq!(
            f(
                lv,
                &[0, 3],
                &plain,
                Some(MatMut::new(&mut d, 2, 3).unwrap())
            ),
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
        err!(
            f(lv, &[7, 7], &ign, Some(MatMut::new(&mut d, 2, 3).unwrap())),
            is_empty
        );
        assert_eq!(d, [7.0; 6]);
        // An ignored out-of-range target is fine.
        f(lv, &[7, 1], &ign, Some(MatMut::new(&mut d, 2, 3).unwrap())).unwrap();
        assert_eq!(&d[..3], &[0.0; 3]);
        // NaN in row 0: loss NaN, gradient NaN on row 0 only.
        let mut ln = logits.clone();
        ln[0] = f32::NAN;
        let loss = f(
            MatRef::new(&ln, 2, 3).unwrap(),
            &[0, 1],
            &plain,
            Some(MatMut::new(&mut d, 2, 3).unwrap()),
        )
        .unwrap();
        assert!(loss.is_nan());
        assert!(d[..3].iter().all(|v| v.is_nan()) && d[3..].iter().all(|v| v.is_finite()));
    }
    // Const face: shapes at compile time; targets and options at run time.
    let l = [[1.0f32, 2.0], [0.5, 0.0]];
    let mut d = [[7.0f32; 2]; 2];
    err!(cross_entropy(&l, &[0, 2], &plain, Some(&mut d)), is_range);
    let o = CrossEntropy {
        label_smoothing: 2.0f32,
        ignore_index: None,
    };
    err!(cross_entropy(&l, &[0, 1], &o, Some(&mut d)), is_param);
    assert_eq!(d, [[7.0; 2]; 2]);
}

// ---------------------------------------------------------------- nn::optim

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
        let (mut w1, mut w2) = ([1.0f32, 2.0], [1.0f32, 2.0]);
        let (mut s1, mut s2) = (vec![3.0f32; n], vec![3.0f32; n + 1]);
        err!(
            sgd.step(&mut [
                Param::new(&mut w1, &g, &mut s1),
                Param::new(&mut w2, &g, &mut s2)
            ]),
            is_len
        );
        let mut s2 = vec![3.0f32; n];
        err!(
            sgd.step(&mut [
                Param::new(&mut w1, &g, &mut s1),
                Param::new(&mut w2, &g[..1], &mut s2)
            ]),
            is_len
        );
        assert_eq!((w1, w2, sgd.steps()), ([1.0, 2.0], [1.0, 2.0], 0));
        assert!(s1.iter().chain(&s2).all(|&v| v == 3.0));
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
    let mut adam = Adam::new(0.1f32);
    let (mut w1, mut w2) = ([1.0f32, 2.0], [1.0f32, 2.0]);
    let (mut s1, mut s2) = ([3.0f32; 4], [3.0f32; 2]);
    err!(
        adam.step(&mut [
            Param::new(&mut w1, &g, &mut s1),
            Param::new(&mut w2, &g, &mut s2)
        ]),
        is_len
    );
    let mut s2 = [3.0f32; 4];
    err!(
        adam.step(&mut [
            Param::new(&mut w1, &g, &mut s1),
            Param::new(&mut w2, &g[..1], &mut s2)
        ]),
        is_len
    );
    assert_eq!(
        (w1, w2, s1, s2, adam.steps()),
        ([1.0, 2.0], [1.0, 2.0], [3.0; 4], [3.0; 4], 0)
    );
    // Builders and accessors.
    let a = Adam::adamw(0.01f32).betas(0.8, 0.9).eps(1e-6);
    assert_eq!(
        (a.decoupled, a.weight_decay, a.beta1, a.beta2, a.eps),
        (true, 0.01, 0.8, 0.9, 1e-6)
    );
    assert_eq!((a.state_len(3), a.state_len(usize::MAX)), (6, usize::MAX));
    // NaN in a gradient reaches its parameter and its moments.
    let mut st = [0.0f32; 4];
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
        err!(clip_grad_norm(&mut [&mut g[..]], max), is_param);
        assert_eq!(g, [3.0, 4.0]);
    }
    for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
        let (mut a, mut b) = ([3.0f32, 4.0], [bad, 1.0]);
        err!(clip_grad_norm(&mut [&mut a[..], &mut b[..]], 1.0), is_nan);
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
        err!(bad.output(), is_param);
        err!(bad.lens(), is_param);
    }
    err!(Pool2dShape::new(usize::MAX, 2, 4, 4, 2, 2).lens(), is_param);
    err!(Pool2dShape::new(1, 1, usize::MAX, 2, 1, 1).lens(), is_param);
    err!(Pool2dShape::new(0, 1, usize::MAX, 2, 1, 1).lens(), is_param);
    // Ceil mode, including PyTorch's dropped last window.
    assert_eq!(
        Pool2dShape::new(1, 1, 5, 5, 2, 2).ceil_mode(true).output(),
        Ok((3, 3))
    );
    assert_eq!(
        Pool2dShape::new(1, 1, 5, 5, 2, 2)
            .padding(1, 1)
            .ceil_mode(true)
            .output(),
        Ok((3, 3))
    );
}

#[test]
fn audit_max_pool_bad_inputs() {
    let s = Pool2dShape::new(1, 2, 4, 4, 2, 2);
    let x = vals(32, 1.0);
    let (mut y, mut idx) = ([7.0f32; 8], [99usize; 8]);
    err!(max_pool2d_views(&x[..31], &s, &mut y, &mut idx), is_len);
    err!(max_pool2d_views(&x, &s, &mut y[..7], &mut idx), is_len);
    err!(max_pool2d_views(&x, &s, &mut y, &mut idx[..7]), is_len);
    err!(
        max_pool2d_views(&x, &s.stride(0, 1), &mut y, &mut idx),
        is_param
    );
    assert_eq!((y, idx), ([7.0; 8], [99; 8]));
    max_pool2d_views(&x, &s, &mut y, &mut idx).unwrap();
    let mut dx = [7.0f32; 32];
    let dy = [1.0f32; 8];
    err!(
        max_pool2d_backward_views(&s, &dy[..7], &idx, &mut dx),
        is_len
    );
    err!(
        max_pool2d_backward_views(&s, &dy, &idx[..7], &mut dx),
        is_len
    );
    err!(
        max_pool2d_backward_views(&s, &dy, &idx, &mut dx[..31]),
        is_len
    );
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
    assert!(y[0].is_nan() && idx[0] == 1);
    assert!(y[1..].iter().all(|v| v.is_finite()));
}

#[test]
fn audit_avg_pool_bad_inputs() {
    let s = Pool2dShape::new(1, 2, 4, 4, 2, 2);
    let x = vals(32, 1.0);
    for cip in [false, true] {
        let mut y = [7.0f32; 8];
        err!(avg_pool2d_views(&x[..31], &s, cip, &mut y), is_len);
        err!(avg_pool2d_views(&x, &s, cip, &mut y[..7]), is_len);
        err!(
            avg_pool2d_views(&x, &s.padding(2, 2), cip, &mut y),
            is_param
        );
        err!(
            avg_pool2d_views(&x, &Pool2dShape::new(1, 2, 4, 4, 5, 5), cip, &mut y),
            is_param
        );
        assert_eq!(y, [7.0; 8]);
        let mut dx = [7.0f32; 32];
        err!(
            avg_pool2d_backward_views(&s, cip, &[1.0; 7], &mut dx),
            is_len
        );
        err!(
            avg_pool2d_backward_views(&s, cip, &[1.0; 8], &mut dx[..31]),
            is_len
        );
        err!(
            avg_pool2d_backward_views(&s.stride(0, 0), cip, &[1.0; 8], &mut dx),
            is_param
        );
        assert_eq!(dx, [7.0; 32]);
        let mut xn = x.clone();
        xn[5] = f32::NAN; // window (0, 0) of plane 0
        avg_pool2d_views(&xn, &s, cip, &mut y).unwrap();
        assert!(y[0].is_nan() && y[1..].iter().all(|v| v.is_finite()));
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
    err!(
        global_avg_pool_backward_views(&[1.0f32; 3], 4, &mut dx[..11]),
        is_len
    );
    err!(
        global_avg_pool_backward_views(&[1.0f32; 3], usize::MAX, &mut dx),
        is_len
    );
    err!(
        global_avg_pool_backward_views::<f32>(&[1.0; 3], 0, &mut []),
        is_empty
    );
    assert_eq!(dx, [7.0; 12]);
    let mut xn = x.clone();
    xn[5] = f32::NAN;
    global_avg_pool_views(&xn, 3, 4, &mut y).unwrap();
    assert!(y[1].is_nan() && y[0].is_finite() && y[2].is_finite());
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
        err!(RnnShape::new(0, 1, 1, 1).check(cell), is_empty);
        err!(RnnShape::new(1, 0, 1, 1).check(cell), is_empty);
        err!(RnnShape::new(1, 1, 0, 1).check(cell), is_param);
        err!(RnnShape::new(1, 1, 1, 0).check(cell), is_param);
        err!(RnnShape::new(usize::MAX, 2, 1, 1).check(cell), is_param);
        err!(RnnShape::new(1, 1, 1, usize::MAX / 2).check(cell), is_param);
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
        let lstm = cell.has_cell_state();
        Self {
            cell,
            shape,
            w_ih: vals(gh * i, 1.0),
            w_hh: vals(gh * h, 2.0),
            b_ih: vals(gh, 3.0),
            b_hh: vals(gh, 4.0),
            x: vals(n * s * i, 5.0),
            h0: vals(n * h, 6.0),
            c0: lstm.then(|| vals(n * h, 7.0)),
            out: vec![7.0; n * s * h],
            h_n: vec![7.0; n * h],
            c_n: lstm.then(|| vec![7.0; n * h]),
            saved: vec![7.0; recurrent_saved_len(cell, &shape)],
            scratch: vec![7.0; recurrent_forward_scratch_len(cell, &shape)],
            dout: vals(n * s * h, 8.0),
            dh_n: vals(n * h, 9.0),
            dc_n: lstm.then(|| vals(n * h, 10.0)),
            dw_ih: vec![0.5; gh * i],
            dw_hh: vec![0.5; gh * h],
            db_ih: vec![0.5; gh],
            db_hh: vec![0.5; gh],
            dx: vec![7.0; n * s * i],
            dh0: vec![7.0; n * h],
            dc0: lstm.then(|| vec![7.0; n * h]),
            bscratch: vec![7.0; recurrent_backward_scratch_len(cell, &shape)],
        }
    }
    fn forward(&mut self, scalar: bool) -> Result<()> {
        let p = RecurrentParams::new(
            self.cell,
            &self.w_ih,
            &self.w_hh,
            Some(&self.b_ih),
            Some(&self.b_hh),
        );
        let f = if scalar {
            recurrent_forward_views_with::<Scalar, f32>
        } else {
            recurrent_forward_views::<f32>
        };
        f(
            &p,
            &self.shape,
            &self.x,
            Some(&self.h0),
            self.c0.as_deref(),
            &mut self.out,
            Some(&mut self.h_n),
            self.c_n.as_deref_mut(),
            &mut self.saved,
            &mut self.scratch,
        )
    }
    fn backward(&mut self, scalar: bool) -> Result<()> {
        let p = RecurrentParams::new(
            self.cell,
            &self.w_ih,
            &self.w_hh,
            Some(&self.b_ih),
            Some(&self.b_hh),
        );
        let mut g = RecurrentGrads {
            dw_ih: &mut self.dw_ih,
            dw_hh: &mut self.dw_hh,
            db_ih: Some(&mut self.db_ih),
            db_hh: Some(&mut self.db_hh),
        };
        let f = if scalar {
            recurrent_backward_views_with::<Scalar, f32>
        } else {
            recurrent_backward_views::<f32>
        };
        f(
            &p,
            &self.shape,
            &self.x,
            Some(&self.h0),
            self.c0.as_deref(),
            &self.out,
            &self.saved,
            Some(&self.dout),
            Some(&self.dh_n),
            self.dc_n.as_deref(),
            &mut g,
            Some(&mut self.dx),
            Some(&mut self.dh0),
            self.dc0.as_deref_mut(),
            &mut self.bscratch,
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

type RecEdit = fn(&mut Rec);

/// Edits shared by forward and backward, with the error they must give.
fn rec_shared_edits(cell: Cell) -> Vec<(&'static str, RecEdit, Matcher)> {
    let mut v: Vec<(&'static str, RecEdit, Matcher)> = vec![
        (
            "w_ih",
            |r| {
                r.w_ih.pop();
            },
            is_len,
        ),
        ("w_hh", |r| r.w_hh.push(0.0), is_len),
        (
            "b_ih",
            |r| {
                r.b_ih.pop();
            },
            is_len,
        ),
        ("b_hh", |r| r.b_hh.push(0.0), is_len),
        (
            "x",
            |r| {
                r.x.pop();
            },
            is_len,
        ),
        (
            "h0",
            |r| {
                r.h0.pop();
            },
            is_len,
        ),
        ("batch 0", |r| r.shape.batch = 0, is_empty),
        ("seq 0", |r| r.shape.seq = 0, is_empty),
        ("hidden 0", |r| r.shape.hidden = 0, is_param),
        ("input 0", |r| r.shape.input = 0, is_param),
    ];
    if cell.has_cell_state() {
        v.push((
            "c0",
            |r| {
                r.c0.as_mut().unwrap().pop();
            },
            is_len,
        ));
    } else {
        v.push(("c0 given", |r| r.c0 = Some(vec![0.0; 6]), is_param));
    }
    v
}

#[test]
fn audit_recurrent_forward_bad_inputs() {
    for cell in [Cell::RnnTanh, Cell::RnnRelu, Cell::Lstm, Cell::Gru] {
        let mut edits = rec_shared_edits(cell);
        edits.push((
            "out",
            |r| {
                r.out.pop();
            },
            is_len,
        ));
        edits.push(("h_n", |r| r.h_n.push(0.0), is_len));
        edits.push((
            "scratch",
            |r| {
                r.scratch.pop();
            },
            is_buf,
        ));
        if cell.has_cell_state() {
            edits.push((
                "c_n",
                |r| {
                    r.c_n.as_mut().unwrap().pop();
                },
                is_len,
            ));
        } else {
            edits.push(("c_n given", |r| r.c_n = Some(vec![7.0; 6]), is_param));
        }
        if cell.saved_blocks() > 0 {
            edits.push((
                "saved",
                |r| {
                    r.saved.pop();
                },
                is_buf,
            ));
        }
        for scalar in [false, true] {
            for &(what, edit, m) in &edits {
                let mut r = Rec::new(cell);
                edit(&mut r);
                let before = r.fwd_outputs();
                match r.forward(scalar) {
                    Err(e) => assert!(m(&e), "{cell:?} {what}: wrong error {e:?}"),
                    Ok(()) => panic!("{cell:?} {what}: expected an error"),
                }
                assert_eq!(r.fwd_outputs(), before, "{cell:?} {what}: written on Err");
            }
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
        edits.push((
            "out",
            |r| {
                r.out.pop();
            },
            is_len,
        ));
        edits.push((
            "dout",
            |r| {
                r.dout.pop();
            },
            is_len,
        ));
        edits.push((
            "dh_n",
            |r| {
                r.dh_n.pop();
            },
            is_len,
        ));
        edits.push((
            "dw_ih",
            |r| {
                r.dw_ih.pop();
            },
            is_len,
        ));
        edits.push(("dw_hh", |r| r.dw_hh.push(0.5), is_len));
        edits.push((
            "db_ih",
            |r| {
                r.db_ih.pop();
            },
            is_len,
        ));
        edits.push(("db_hh", |r| r.db_hh.push(0.5), is_len));
        edits.push((
            "dx",
            |r| {
                r.dx.pop();
            },
            is_len,
        ));
        edits.push(("dh0", |r| r.dh0.push(7.0), is_len));
        edits.push((
            "scratch",
            |r| {
                r.bscratch.pop();
            },
            is_buf,
        ));
        if cell.has_cell_state() {
            edits.push((
                "dc_n",
                |r| {
                    r.dc_n.as_mut().unwrap().pop();
                },
                is_len,
            ));
            edits.push((
                "dc0",
                |r| {
                    r.dc0.as_mut().unwrap().pop();
                },
                is_len,
            ));
        } else {
            edits.push(("dc_n given", |r| r.dc_n = Some(vec![0.0; 6]), is_param));
            edits.push(("dc0 given", |r| r.dc0 = Some(vec![7.0; 6]), is_param));
        }
        if cell.saved_blocks() > 0 {
            edits.push((
                "saved",
                |r| {
                    r.saved.pop();
                },
                is_buf,
            ));
        }
        for scalar in [false, true] {
            let mut fwd = Rec::new(cell);
            fwd.forward(scalar).unwrap();
            fwd.clone().backward(scalar).unwrap();
            for &(what, edit, m) in &edits {
                let mut r = fwd.clone();
                edit(&mut r);
                let before = r.bwd_outputs();
                match r.backward(scalar) {
                    Err(e) => assert!(m(&e), "{cell:?} {what}: wrong error {e:?}"),
                    Ok(()) => panic!("{cell:?} {what}: expected an error"),
                }
                assert_eq!(r.bwd_outputs(), before, "{cell:?} {what}: written on Err");
            }
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
                let f = if scalar {
                    recurrent_step_views_with::<Scalar, f32>
                } else {
                    recurrent_step_views::<f32>
                };
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
    // K ≠ 6 blocks for an LSTM.
    let mut saved4 = [[[[7.0f32; 3]; 4]; 2]; 1];
    err!(
        lstm.forward(
            &x,
            None,
            None,
            &mut out,
            None,
            None,
            &mut saved4,
            &mut vec![0.0; fs]
        ),
        is_shape
    );
    let mut saved = [[[[7.0f32; 3]; 6]; 2]; 1];
    err!(
        lstm.forward(
            &x,
            None,
            None,
            &mut out,
            None,
            None,
            &mut saved,
            &mut vec![0.0; fs - 1]
        ),
        is_buf
    );
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
    err!(
        l0.forward(
            &[[[]; 2]; 1],
            None,
            None,
            &mut out,
            None,
            None,
            &mut saved,
            &mut vec![0.0; fs]
        ),
        is_param
    );
    lstm.forward(
        &x,
        None,
        None,
        &mut out,
        None,
        None,
        &mut saved,
        &mut vec![0.0; fs],
    )
    .unwrap();
    // Backward: K, scratch; the gradients stay as they were.
    let mut grads = Lstm::<f32, 2, 3>::zeros(Cell::Lstm, true).unwrap();
    grads.w_hh[1][1][1] = 0.5;
    let g0 = grads.clone();
    let mut dx = [[[7.0f32; 2]; 2]; 1];
    err!(
        lstm.backward(
            &x,
            None,
            None,
            &out,
            &saved4,
            Some(&out),
            None,
            None,
            &mut grads,
            Some(&mut dx),
            None,
            None,
            &mut vec![0.0; bs]
        ),
        is_shape
    );
    err!(
        lstm.backward(
            &x,
            None,
            None,
            &out,
            &saved,
            Some(&out),
            None,
            None,
            &mut grads,
            Some(&mut dx),
            None,
            None,
            &mut vec![0.0; bs - 1]
        ),
        is_buf
    );
    assert_eq!((&grads, dx), (&g0, [[[7.0; 2]; 2]; 1]));
    // A gradient accumulator without biases skips them.
    let mut nob = Lstm::<f32, 2, 3>::zeros(Cell::Lstm, false).unwrap();
    lstm.backward(
        &x,
        None,
        None,
        &out,
        &saved,
        Some(&out),
        None,
        None,
        &mut nob,
        None,
        None,
        None,
        &mut vec![0.0; bs],
    )
    .unwrap();
    grads.zero_grad();
    assert_eq!(grads, Lstm::<f32, 2, 3>::zeros(Cell::Lstm, true).unwrap());
    // A public `cell` edited to one with another gate count.
    let mut edited = lstm.clone();
    edited.cell = Cell::Gru;
    err!(
        edited.forward(
            &x,
            None,
            None,
            &mut out,
            None,
            None,
            &mut [[[[0.0; 3]; 4]; 2]; 1],
            &mut vec![0.0; fs]
        ),
        is_len
    );
    // GRU: no cell state anywhere.
    let gru = Gru::<f32, 2, 3>::zeros(Cell::Gru, true).unwrap();
    let gs = recurrent_forward_scratch_len(Cell::Gru, &RnnShape::new(1, 2, 2, 3));
    let mut gsaved = [[[[7.0f32; 3]; 4]; 2]; 1];
    err!(
        gru.forward(
            &x,
            None,
            Some(&[[0.0; 3]]),
            &mut out,
            None,
            None,
            &mut gsaved,
            &mut vec![0.0; gs]
        ),
        is_param
    );
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
    let xv = MatRef::new(&x, 2, 4).unwrap();
    let mut y = [7.0f32; 8];
    let (mut m, mut r) = ([7.0f32; 3], [7.0f32; 3]);
    // LayerNorm and BatchNorm save a mean: rstd_only is refused.
    err!(
        layer_norm_views(
            xv,
            MatMut::new(&mut y, 2, 4).unwrap(),
            None,
            None,
            1e-5,
            Some(NormStats::rstd_only(&mut r[..2]))
        ),
        is_param
    );
    err!(
        batch_norm_train_views(
            &x,
            BnShape::new(2, 2, 2),
            &mut y,
            None,
            None,
            1e-5,
            None,
            None,
            Some(NormStats::rstd_only(&mut r[..2]))
        ),
        is_param
    );
    // Wrong lengths.
    err!(
        layer_norm_views(
            xv,
            MatMut::new(&mut y, 2, 4).unwrap(),
            None,
            None,
            1e-5,
            Some(NormStats::new(&mut m[..2], &mut r))
        ),
        is_len
    );
    err!(
        layer_norm_views(
            xv,
            MatMut::new(&mut y, 2, 4).unwrap(),
            None,
            None,
            1e-5,
            Some(NormStats::new(&mut m, &mut r[..2]))
        ),
        is_len
    );
    err!(
        rms_norm_views(
            xv,
            MatMut::new(&mut y, 2, 4).unwrap(),
            None,
            1e-5,
            Some(NormStats::rstd_only(&mut r))
        ),
        is_len
    );
    err!(
        rms_norm_views(
            xv,
            MatMut::new(&mut y, 2, 4).unwrap(),
            None,
            1e-5,
            Some(NormStats::new(&mut m, &mut r[..2]))
        ),
        is_len
    );
    assert_eq!((y, m, r), ([7.0; 8], [7.0; 3], [7.0; 3]));
    // RMSNorm takes rstd_only, and writes 0 into a mean when given one.
    rms_norm_views(
        xv,
        MatMut::new(&mut y, 2, 4).unwrap(),
        None,
        1e-5,
        Some(NormStats::new(&mut m[..2], &mut r[..2])),
    )
    .unwrap();
    assert_eq!(&m[..2], &[0.0, 0.0]);
    rms_norm_views(
        xv,
        MatMut::new(&mut y, 2, 4).unwrap(),
        None,
        1e-5,
        Some(NormStats::rstd_only(&mut r[..2])),
    )
    .unwrap();
}

// ---------------------------------------------------------------- norm::layer_norm

const BAD_EPS: [f32; 5] = [0.0, -1e-5, f32::NAN, f32::INFINITY, f32::NEG_INFINITY];

#[test]
fn audit_layer_norm_views_bad_inputs() {
    let x = vals(8, 1.0); // (2, 4)
    let (w, b) = (vals(4, 2.0), vals(4, 3.0));
    for scalar in [false, true] {
        let fwd = if scalar {
            layer_norm_views_with::<Scalar, f32>
        } else {
            layer_norm_views::<f32>
        };
        let inplace = if scalar {
            layer_norm_inplace_views_with::<Scalar, f32>
        } else {
            layer_norm_inplace_views::<f32>
        };
        let xv = MatRef::new(&x, 2, 4).unwrap();
        let mut y = [7.0f32; 8];
        let (mut m, mut r) = ([7.0f32; 2], [7.0f32; 2]);
        err!(
            fwd(
                xv,
                MatMut::new(&mut y[..6], 2, 3).unwrap(),
                Some(&w),
                Some(&b),
                1e-5,
                None
            ),
            is_shape
        );
        err!(
            fwd(
                xv,
                MatMut::new(&mut y, 4, 2).unwrap(),
                None,
                None,
                1e-5,
                None
            ),
            is_shape
        );
        err!(
            fwd(
                xv,
                MatMut::new(&mut y, 2, 4).unwrap(),
                Some(&w[..3]),
                Some(&b),
                1e-5,
                None
            ),
            is_len
        );
        err!(
            fwd(
                xv,
                MatMut::new(&mut y, 2, 4).unwrap(),
                Some(&w),
                Some(&[0.0; 5]),
                1e-5,
                None
            ),
            is_len
        );
        for eps in BAD_EPS {
            err!(
                fwd(
                    xv,
                    MatMut::new(&mut y, 2, 4).unwrap(),
                    Some(&w),
                    Some(&b),
                    eps,
                    Some(NormStats::new(&mut m, &mut r))
                ),
                is_param
            );
        }
        assert_eq!((y, m, r), ([7.0; 8], [7.0; 2], [7.0; 2]));
        // In place: the same rules, x untouched on Err.
        let mut xi = x.clone();
        err!(
            inplace(
                MatMut::new(&mut xi, 2, 4).unwrap(),
                Some(&w[..3]),
                None,
                1e-5,
                None
            ),
            is_len
        );
        err!(
            inplace(
                MatMut::new(&mut xi, 2, 4).unwrap(),
                None,
                Some(&b[..3]),
                1e-5,
                None
            ),
            is_len
        );
        err!(
            inplace(
                MatMut::new(&mut xi, 2, 4).unwrap(),
                None,
                None,
                f32::NAN,
                None
            ),
            is_param
        );
        err!(
            inplace(
                MatMut::new(&mut xi, 2, 4).unwrap(),
                None,
                None,
                1e-5,
                Some(NormStats::new(&mut m[..1], &mut r))
            ),
            is_len
        );
        err!(
            inplace(
                MatMut::new(&mut xi, 2, 4).unwrap(),
                None,
                None,
                1e-5,
                Some(NormStats::rstd_only(&mut r))
            ),
            is_param
        );
        assert_eq!(xi, x);
        // NaN in row 0 stays in row 0 (output and statistics).
        let mut xn = x.clone();
        xn[2] = f32::NAN;
        fwd(
            MatRef::new(&xn, 2, 4).unwrap(),
            MatMut::new(&mut y, 2, 4).unwrap(),
            Some(&w),
            Some(&b),
            1e-5,
            Some(NormStats::new(&mut m, &mut r)),
        )
        .unwrap();
        assert!(y[..4].iter().all(|v| v.is_nan()) && y[4..].iter().all(|v| v.is_finite()));
        assert!(m[0].is_nan() && m[1].is_finite() && r[1].is_finite());
        // Width 0 is a valid edge.
        fwd(
            MatRef::new(&[], 2, 0).unwrap(),
            MatMut::new(&mut [], 2, 0).unwrap(),
            None,
            None,
            1e-5,
            None,
        )
        .unwrap();
    }
}

#[test]
fn audit_layer_norm_backward_bad_inputs() {
    let x = vals(8, 1.0);
    let dy = vals(8, 2.0);
    let w = vals(4, 3.0);
    let (m, r) = ([0.1f32; 2], [1.5f32; 2]);
    for scalar in [false, true] {
        let f = if scalar {
            layer_norm_backward_views_with::<Scalar, f32>
        } else {
            layer_norm_backward_views::<f32>
        };
        let xv = MatRef::new(&x, 2, 4).unwrap();
        let dyv = MatRef::new(&dy, 2, 4).unwrap();
        let (mut dx, mut dw, mut db) = ([7.0f32; 8], [0.5f32; 4], [0.5f32; 4]);
        for eps in BAD_EPS {
            err!(
                f(
                    xv,
                    dyv,
                    MatMut::new(&mut dx, 2, 4).unwrap(),
                    Some(&w),
                    eps,
                    None,
                    Some(&mut dw),
                    Some(&mut db)
                ),
                is_param
            );
        }
        err!(
            f(
                xv,
                MatRef::new(&dy[..6], 2, 3).unwrap(),
                MatMut::new(&mut dx, 2, 4).unwrap(),
                None,
                1e-5,
                None,
                Some(&mut dw),
                Some(&mut db)
            ),
            is_shape
        );
        err!(
            f(
                xv,
                dyv,
                MatMut::new(&mut dx, 4, 2).unwrap(),
                None,
                1e-5,
                None,
                Some(&mut dw),
                Some(&mut db)
            ),
            is_shape
        );
        err!(
            f(
                xv,
                dyv,
                MatMut::new(&mut dx, 2, 4).unwrap(),
                Some(&w[..3]),
                1e-5,
                None,
                Some(&mut dw),
                Some(&mut db)
            ),
            is_len
        );
        err!(
            f(
                xv,
                dyv,
                MatMut::new(&mut dx, 2, 4).unwrap(),
                Some(&w),
                1e-5,
                None,
                Some(&mut dw[..3]),
                Some(&mut db)
            ),
            is_len
        );
        err!(
            f(
                xv,
                dyv,
                MatMut::new(&mut dx, 2, 4).unwrap(),
                Some(&w),
                1e-5,
                None,
                Some(&mut dw),
                Some(&mut db[..3])
            ),
            is_len
        );
        err!(
            f(
                xv,
                dyv,
                MatMut::new(&mut dx, 2, 4).unwrap(),
                Some(&w),
                1e-5,
                Some((&m[..1], &r)),
                Some(&mut dw),
                Some(&mut db)
            ),
            is_len
        );
        err!(
            f(
                xv,
                dyv,
                MatMut::new(&mut dx, 2, 4).unwrap(),
                Some(&w),
                1e-5,
                Some((&m, &[1.0; 3])),
                Some(&mut dw),
                Some(&mut db)
            ),
            is_len
        );
        assert_eq!((dx, dw, db), ([7.0; 8], [0.5; 4], [0.5; 4]));
        // NaN in dy row 1 stays in dx row 1 (dγ, dβ sum over rows: NaN).
        let mut dyb = dy.clone();
        dyb[5] = f32::NAN;
        f(
            xv,
            MatRef::new(&dyb, 2, 4).unwrap(),
            MatMut::new(&mut dx, 2, 4).unwrap(),
            Some(&w),
            1e-5,
            Some((&m, &r)),
            Some(&mut dw),
            None,
        )
        .unwrap();
        assert!(dx[..4].iter().all(|v| v.is_finite()) && dx[4..].iter().all(|v| v.is_nan()));
        assert!(dw[1].is_nan());
        // Saved statistics are used as given: a NaN rstd is no error.
        f(
            xv,
            dyv,
            MatMut::new(&mut dx, 2, 4).unwrap(),
            None,
            1e-5,
            Some((&m, &[f32::NAN, 1.0])),
            None,
            None,
        )
        .unwrap();
        assert!(dx[..4].iter().all(|v| v.is_nan()) && dx[4..].iter().all(|v| v.is_finite()));
    }
}

#[test]
fn audit_layer_norm_layers_bad_inputs() {
    let (w, b) = ([1.0f32, 2.0, 3.0], [0.0f32; 3]);
    for eps in BAD_EPS {
        err!(LayerNorm::<f32, 3>::new(Some(&w), Some(&b), eps), is_param);
        err!(LayerNormDyn::<f32>::new(3, true, true, eps), is_param);
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
    ln.backward(
        &x,
        &[[1.0; 3]; 2],
        &mut dx,
        Some((&[2.0, 1.0], &[1.0, 0.5])),
        Some(&mut dw),
        Some(&mut db),
    )
    .unwrap();
    ln.forward::<0>(&[], &mut [], None).unwrap();

    let mut dynl = LayerNormDyn::<f32>::new(3, true, true, 1e-5).unwrap();
    let xm = Matrix::from_vec(2, 3, vec![1.0f32, 2.0, 4.0, 0.0, 0.0, 3.0]).unwrap();
    err!(dynl.forward(&Matrix::zeros(2, 4).unwrap()), is_len);
    // Without γ/β any width works.
    LayerNormDyn::<f32>::new(3, false, false, 1e-5)
        .unwrap()
        .forward(&Matrix::zeros(2, 4).unwrap())
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
    err!(
        dynl.backward(
            &Matrix::zeros(2, 4).unwrap(),
            &Matrix::zeros(2, 4).unwrap(),
            None
        ),
        is_len
    );
    assert_eq!((dynl.dweight.clone(), dynl.dbias.clone()), before);
}

// ---------------------------------------------------------------- norm::rms_norm

#[test]
fn audit_rms_norm_views_bad_inputs() {
    let x = vals(8, 1.0);
    let w = vals(4, 2.0);
    for scalar in [false, true] {
        let fwd = if scalar {
            rms_norm_views_with::<Scalar, f32>
        } else {
            rms_norm_views::<f32>
        };
        let inplace = if scalar {
            rms_norm_inplace_views_with::<Scalar, f32>
        } else {
            rms_norm_inplace_views::<f32>
        };
        let xv = MatRef::new(&x, 2, 4).unwrap();
        let mut y = [7.0f32; 8];
        let mut r = [7.0f32; 3];
        for eps in BAD_EPS {
            err!(
                fwd(xv, MatMut::new(&mut y, 2, 4).unwrap(), Some(&w), eps, None),
                is_param
            );
            err!(
                inplace(MatMut::new(&mut y, 2, 4).unwrap(), Some(&w), eps, None),
                is_param
            );
        }
        err!(
            fwd(
                xv,
                MatMut::new(&mut y[..6], 3, 2).unwrap(),
                None,
                1e-5,
                None
            ),
            is_shape
        );
        err!(
            fwd(
                xv,
                MatMut::new(&mut y, 2, 4).unwrap(),
                Some(&w[..3]),
                1e-5,
                None
            ),
            is_len
        );
        err!(
            fwd(
                xv,
                MatMut::new(&mut y, 2, 4).unwrap(),
                None,
                1e-5,
                Some(NormStats::rstd_only(&mut r))
            ),
            is_len
        );
        err!(
            inplace(
                MatMut::new(&mut y, 2, 4).unwrap(),
                Some(&[1.0; 5]),
                1e-5,
                None
            ),
            is_len
        );
        err!(
            inplace(
                MatMut::new(&mut y, 2, 4).unwrap(),
                None,
                1e-5,
                Some(NormStats::rstd_only(&mut r[..1]))
            ),
            is_len
        );
        assert_eq!((y, r), ([7.0; 8], [7.0; 3]));
        let mut xn = x.clone();
        xn[6] = f32::NAN;
        fwd(
            MatRef::new(&xn, 2, 4).unwrap(),
            MatMut::new(&mut y, 2, 4).unwrap(),
            Some(&w),
            1e-5,
            Some(NormStats::rstd_only(&mut r[..2])),
        )
        .unwrap();
        assert!(y[..4].iter().all(|v| v.is_finite()) && y[4..].iter().all(|v| v.is_nan()));
        assert!(r[0].is_finite() && r[1].is_nan());
    }
}

#[test]
fn audit_rms_norm_backward_bad_inputs() {
    let x = vals(8, 1.0);
    let dy = vals(8, 2.0);
    let w = vals(4, 3.0);
    for scalar in [false, true] {
        let f = if scalar {
            rms_norm_backward_views_with::<Scalar, f32>
        } else {
            rms_norm_backward_views::<f32>
        };
        let xv = MatRef::new(&x, 2, 4).unwrap();
        let dyv = MatRef::new(&dy, 2, 4).unwrap();
        let (mut dx, mut dw) = ([7.0f32; 8], [0.5f32; 4]);
        for eps in BAD_EPS {
            err!(
                f(
                    xv,
                    dyv,
                    MatMut::new(&mut dx, 2, 4).unwrap(),
                    Some(&w),
                    eps,
                    None,
                    Some(&mut dw)
                ),
                is_param
            );
        }
        err!(
            f(
                xv,
                MatRef::new(&dy, 4, 2).unwrap(),
                MatMut::new(&mut dx, 2, 4).unwrap(),
                None,
                1e-5,
                None,
                None
            ),
            is_shape
        );
        err!(
            f(
                xv,
                dyv,
                MatMut::new(&mut dx[..4], 1, 4).unwrap(),
                None,
                1e-5,
                None,
                Some(&mut dw)
            ),
            is_shape
        );
        err!(
            f(
                xv,
                dyv,
                MatMut::new(&mut dx, 2, 4).unwrap(),
                Some(&w[..2]),
                1e-5,
                None,
                Some(&mut dw)
            ),
            is_len
        );
        err!(
            f(
                xv,
                dyv,
                MatMut::new(&mut dx, 2, 4).unwrap(),
                Some(&w),
                1e-5,
                None,
                Some(&mut dw[..3])
            ),
            is_len
        );
        err!(
            f(
                xv,
                dyv,
                MatMut::new(&mut dx, 2, 4).unwrap(),
                Some(&w),
                1e-5,
                Some(&[1.0; 3]),
                Some(&mut dw)
            ),
            is_len
        );
        assert_eq!((dx, dw), ([7.0; 8], [0.5; 4]));
        let mut xn = x.clone();
        xn[0] = f32::NAN;
        f(
            MatRef::new(&xn, 2, 4).unwrap(),
            dyv,
            MatMut::new(&mut dx, 2, 4).unwrap(),
            Some(&w),
            1e-5,
            None,
            None,
        )
        .unwrap();
        assert!(dx[..4].iter().all(|v| v.is_nan()) && dx[4..].iter().all(|v| v.is_finite()));
    }
}

#[test]
fn audit_rms_norm_layers_bad_inputs() {
    let w = [2.0f32; 3];
    for eps in BAD_EPS {
        err!(RmsNorm::<f32, 3>::new(Some(&w), eps), is_param);
        err!(RmsNormDyn::<f32>::new(3, true, Some(eps)), is_param);
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
    me.backward(
        &x,
        &[[1.0; 3]; 2],
        &mut dx,
        Some(&[1.0, 2.0]),
        Some(&mut [0.0; 3]),
    )
    .unwrap();

    let mut d = RmsNormDyn::<f32>::new(3, true, None).unwrap();
    let xm = Matrix::from_vec(1, 3, vec![1.0f32, -1.0, 2.0]).unwrap();
    err!(d.forward(&Matrix::zeros(1, 4).unwrap()), is_len);
    RmsNormDyn::<f32>::new(3, false, None)
        .unwrap()
        .forward(&Matrix::zeros(1, 4).unwrap())
        .unwrap();
    let yv = d.forward(&xm).unwrap();
    d.backward(&xm, &yv).unwrap();
    let before = d.dweight.clone();
    err!(d.backward(&xm, &Matrix::zeros(3, 1).unwrap()), is_shape);
    err!(
        d.backward(&Matrix::zeros(1, 4).unwrap(), &Matrix::zeros(1, 4).unwrap()),
        is_len
    );
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
    /// What a training forward writes.
    #[allow(clippy::type_complexity)]
    fn outputs(
        &self,
    ) -> (
        Vec<f32>,
        Vec<f32>,
        Vec<f32>,
        u64,
        Option<Vec<f32>>,
        Vec<f32>,
    ) {
        (
            self.y.clone(),
            self.rmean.clone(),
            self.rvar.clone(),
            self.batches,
            self.smean.clone(),
            self.srstd.clone(),
        )
    }
    fn train(&mut self, scalar: bool) -> Result<()> {
        let f = if scalar {
            batch_norm_train_views_with::<Scalar, f32>
        } else {
            batch_norm_train_views::<f32>
        };
        let stats = match self.smean.as_deref_mut() {
            Some(m) => NormStats::new(m, &mut self.srstd),
            None => NormStats::rstd_only(&mut self.srstd),
        };
        f(
            &self.x,
            self.shape,
            &mut self.y,
            Some(&self.w),
            Some(&self.b),
            self.eps,
            self.momentum,
            Some(RunningStats {
                mean: &mut self.rmean,
                var: &mut self.rvar,
                batches: &mut self.batches,
            }),
            Some(stats),
        )
    }
}

#[test]
fn audit_batch_norm_train_bad_inputs() {
    type Edit = fn(&mut Bn);
    let cases: Vec<(Edit, Matcher)> = vec![
        (|c| c.momentum = Some(f32::NAN), is_param),
        (|c| c.momentum = Some(f32::INFINITY), is_param),
        (
            |c| {
                c.x.pop();
            },
            is_len,
        ),
        (|c| c.y.push(7.0), is_len),
        (
            |c| {
                c.w.pop();
            },
            is_len,
        ),
        (|c| c.b.push(0.0), is_len),
        (
            |c| {
                c.srstd.pop();
            },
            is_len,
        ),
        (
            |c| {
                c.smean.as_mut().unwrap().pop();
            },
            is_len,
        ),
        (|c| c.smean = None, is_param),
        (
            |c| {
                c.rmean.pop();
            },
            is_len,
        ),
        (|c| c.rvar.push(1.0), is_len),
        (|c| c.shape = BnShape::new(2, 3, usize::MAX), is_param),
        // N·L = 1: one value per channel.
        (
            |c| {
                c.shape = BnShape::new(1, 3, 1);
                c.x.truncate(3);
                c.y.truncate(3);
            },
            is_param,
        ),
        // N·L = 0 with channels.
        (
            |c| {
                c.shape = BnShape::new(0, 3, 2);
                c.x.clear();
                c.y.clear();
            },
            is_param,
        ),
    ];
    for scalar in [false, true] {
        for &(edit, m) in &cases {
            let mut c = Bn::new();
            edit(&mut c);
            let before = c.outputs();
            match c.train(scalar) {
                Err(e) => assert!(m(&e), "wrong error {e:?}"),
                Ok(()) => panic!("expected an error for {c:?}"),
            }
            assert_eq!(c.outputs(), before, "written on Err");
        }
        for eps in BAD_EPS {
            let mut c = Bn::new();
            c.eps = eps;
            let before = c.outputs();
            err!(c.train(scalar), is_param);
            assert_eq!(c.outputs(), before, "written on Err");
        }
        // Edges: no channels; momentum None (cumulative) and outside [0, 1].
        let mut c = Bn::new();
        c.shape = BnShape::new(1, 0, 1);
        c.x.clear();
        c.y.clear();
        c.w.clear();
        c.b.clear();
        c.rmean.clear();
        c.rvar.clear();
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
    let shape = BnShape::new(2, 3, 2);
    let x = vals(12, 1.0);
    let (w, b, rm, rv) = (vals(3, 2.0), vals(3, 3.0), vals(3, 4.0), [1.0f32, 0.5, 2.0]);
    for scalar in [false, true] {
        let f = if scalar {
            batch_norm_eval_views_with::<Scalar, f32>
        } else {
            batch_norm_eval_views::<f32>
        };
        let mut y = [7.0f32; 12];
        for eps in BAD_EPS {
            err!(
                f(&x, shape, &mut y, Some(&w), Some(&b), eps, &rm, &rv),
                is_param
            );
        }
        err!(
            f(&x[..11], shape, &mut y, None, None, 1e-5, &rm, &rv),
            is_len
        );
        err!(
            f(&x, shape, &mut y[..11], None, None, 1e-5, &rm, &rv),
            is_len
        );
        err!(
            f(&x, shape, &mut y, Some(&w[..2]), None, 1e-5, &rm, &rv),
            is_len
        );
        err!(
            f(&x, shape, &mut y, None, Some(&[0.0; 4]), 1e-5, &rm, &rv),
            is_len
        );
        err!(
            f(&x, shape, &mut y, None, None, 1e-5, &rm[..2], &rv),
            is_len
        );
        err!(
            f(&x, shape, &mut y, None, None, 1e-5, &rm, &rv[..2]),
            is_len
        );
        err!(
            f(
                &[],
                BnShape::new(usize::MAX, 2, 1),
                &mut y,
                None,
                None,
                1e-5,
                &rm,
                &rv
            ),
            is_param
        );
        assert_eq!(y, [7.0; 12]);
        // Eval has no N·L rule.
        f(
            &x[..3],
            BnShape::new(1, 3, 1),
            &mut y[..3],
            None,
            None,
            1e-5,
            &rm,
            &rv,
        )
        .unwrap();
        // Not checked: a running variance below −eps gives NaN in its channel;
        // NaN in x stays at its element.
        let mut xn = x.clone();
        xn[7] = f32::NAN;
        f(
            &xn,
            shape,
            &mut y,
            Some(&w),
            Some(&b),
            1e-5,
            &rm,
            &[1.0, -1.0, 2.0],
        )
        .unwrap();
        for (i, v) in y.iter().enumerate() {
            assert_eq!(v.is_nan(), (i / 2) % 3 == 1 || i == 7, "y[{i}] = {v}");
        }
    }
}

#[test]
fn audit_batch_norm_backward_bad_inputs() {
    let shape = BnShape::new(2, 3, 2);
    let (x, dy) = (vals(12, 1.0), vals(12, 2.0));
    let (w, sm, sr) = (vals(3, 3.0), vals(3, 4.0), [1.0f32, 2.0, 0.5]);
    for scalar in [false, true] {
        let f = if scalar {
            batch_norm_backward_views_with::<Scalar, f32>
        } else {
            batch_norm_backward_views::<f32>
        };
        let (mut dx, mut dw, mut db) = ([7.0f32; 12], [0.5f32; 3], [0.5f32; 3]);
        for eps in BAD_EPS {
            err!(
                f(
                    &x,
                    shape,
                    &dy,
                    &mut dx,
                    Some(&w),
                    eps,
                    None,
                    Some(&mut dw),
                    Some(&mut db)
                ),
                is_param
            );
        }
        err!(
            f(
                &x[..11],
                shape,
                &dy,
                &mut dx,
                None,
                1e-5,
                None,
                Some(&mut dw),
                Some(&mut db)
            ),
            is_len
        );
        err!(
            f(
                &x,
                shape,
                &dy[..11],
                &mut dx,
                None,
                1e-5,
                None,
                Some(&mut dw),
                Some(&mut db)
            ),
            is_len
        );
        err!(
            f(
                &x,
                shape,
                &dy,
                &mut dx[..11],
                None,
                1e-5,
                None,
                Some(&mut dw),
                Some(&mut db)
            ),
            is_len
        );
        err!(
            f(
                &x,
                shape,
                &dy,
                &mut dx,
                Some(&w[..2]),
                1e-5,
                None,
                Some(&mut dw),
                Some(&mut db)
            ),
            is_len
        );
        err!(
            f(
                &x,
                shape,
                &dy,
                &mut dx,
                None,
                1e-5,
                None,
                Some(&mut dw[..2]),
                Some(&mut db)
            ),
            is_len
        );
        err!(
            f(
                &x,
                shape,
                &dy,
                &mut dx,
                None,
                1e-5,
                None,
                Some(&mut dw),
                Some(&mut db[..2])
            ),
            is_len
        );
        err!(
            f(
                &x,
                shape,
                &dy,
                &mut dx,
                None,
                1e-5,
                Some((&sm[..2], &sr)),
                Some(&mut dw),
                Some(&mut db)
            ),
            is_len
        );
        err!(
            f(
                &x,
                shape,
                &dy,
                &mut dx,
                None,
                1e-5,
                Some((&sm, &sr[..2])),
                Some(&mut dw),
                Some(&mut db)
            ),
            is_len
        );
        err!(
            f(
                &x[..3],
                BnShape::new(1, 3, 1),
                &dy[..3],
                &mut dx[..3],
                None,
                1e-5,
                None,
                Some(&mut dw),
                Some(&mut db)
            ),
            is_param
        );
        assert_eq!((dx, dw, db), ([7.0; 12], [0.5; 3], [0.5; 3]));

        let g = if scalar {
            batch_norm_eval_backward_views_with::<Scalar, f32>
        } else {
            batch_norm_eval_backward_views::<f32>
        };
        let (rm, rv) = (sm.clone(), [1.0f32; 3]);
        for eps in BAD_EPS {
            err!(
                g(
                    &x,
                    shape,
                    &dy,
                    &mut dx,
                    Some(&w),
                    eps,
                    &rm,
                    &rv,
                    Some(&mut dw),
                    Some(&mut db)
                ),
                is_param
            );
        }
        err!(
            g(
                &x[..11],
                shape,
                &dy,
                &mut dx,
                None,
                1e-5,
                &rm,
                &rv,
                None,
                None
            ),
            is_len
        );
        err!(
            g(
                &x,
                shape,
                &dy[..11],
                &mut dx,
                None,
                1e-5,
                &rm,
                &rv,
                None,
                None
            ),
            is_len
        );
        err!(
            g(
                &x,
                shape,
                &dy,
                &mut dx[..11],
                None,
                1e-5,
                &rm,
                &rv,
                None,
                None
            ),
            is_len
        );
        err!(
            g(
                &x,
                shape,
                &dy,
                &mut dx,
                Some(&w[..2]),
                1e-5,
                &rm,
                &rv,
                None,
                None
            ),
            is_len
        );
        err!(
            g(
                &x,
                shape,
                &dy,
                &mut dx,
                None,
                1e-5,
                &rm,
                &rv,
                Some(&mut dw[..2]),
                None
            ),
            is_len
        );
        err!(
            g(
                &x,
                shape,
                &dy,
                &mut dx,
                None,
                1e-5,
                &rm,
                &rv,
                None,
                Some(&mut db[..2])
            ),
            is_len
        );
        err!(
            g(
                &x,
                shape,
                &dy,
                &mut dx,
                None,
                1e-5,
                &rm[..2],
                &rv,
                None,
                None
            ),
            is_len
        );
        err!(
            g(
                &x,
                shape,
                &dy,
                &mut dx,
                None,
                1e-5,
                &rm,
                &rv[..2],
                None,
                None
            ),
            is_len
        );
        assert_eq!((dx, dw, db), ([7.0; 12], [0.5; 3], [0.5; 3]));
        // Eval backward has no N·L rule.
        g(
            &x[..3],
            BnShape::new(1, 3, 1),
            &dy[..3],
            &mut dx[..3],
            None,
            1e-5,
            &rm,
            &rv,
            None,
            None,
        )
        .unwrap();
    }
}

#[test]
fn audit_fold_batch_norm_bad_inputs() {
    let (rm, rv, g, be) = ([0.5f32, -0.5], [1.0f32, 4.0], [2.0f32, 1.0], [0.0f32, 1.0]);
    let mut w = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0]; // (C 2, K 3)
    let mut b = [0.25f32, 0.75];
    for eps in BAD_EPS {
        err!(
            fold_batch_norm_views(
                MatMut::new(&mut w, 2, 3).unwrap(),
                &mut b,
                Some(&g),
                Some(&be),
                eps,
                &rm,
                &rv
            ),
            is_param
        );
    }
    err!(
        fold_batch_norm_views(
            MatMut::new(&mut w, 2, 3).unwrap(),
            &mut b[..1],
            None,
            None,
            1e-5,
            &rm,
            &rv
        ),
        is_len
    );
    err!(
        fold_batch_norm_views(
            MatMut::new(&mut w, 3, 2).unwrap(),
            &mut b,
            None,
            None,
            1e-5,
            &rm,
            &rv
        ),
        is_len
    );
    err!(
        fold_batch_norm_views(
            MatMut::new(&mut w, 2, 3).unwrap(),
            &mut b,
            Some(&g[..1]),
            None,
            1e-5,
            &rm,
            &rv
        ),
        is_len
    );
    err!(
        fold_batch_norm_views(
            MatMut::new(&mut w, 2, 3).unwrap(),
            &mut b,
            None,
            Some(&[0.0; 3]),
            1e-5,
            &rm,
            &rv
        ),
        is_len
    );
    err!(
        fold_batch_norm_views(
            MatMut::new(&mut w, 2, 3).unwrap(),
            &mut b,
            None,
            None,
            1e-5,
            &rm[..1],
            &rv
        ),
        is_len
    );
    err!(
        fold_batch_norm_views(
            MatMut::new(&mut w, 2, 3).unwrap(),
            &mut b,
            None,
            None,
            1e-5,
            &rm,
            &[1.0; 3]
        ),
        is_len
    );
    assert_eq!((w, b), ([1.0, 2.0, 3.0, 4.0, 5.0, 6.0], [0.25, 0.75]));
    fold_batch_norm_views(
        MatMut::new(&mut w, 2, 3).unwrap(),
        &mut b,
        Some(&g),
        Some(&be),
        1e-5,
        &rm,
        &rv,
    )
    .unwrap();
}

#[test]
fn audit_batch_norm_const_layer_bad_inputs() {
    for eps in BAD_EPS {
        err!(
            BatchNorm::<f32, 2>::new(None, None, eps, Some(0.1)),
            is_param
        );
    }
    err!(
        BatchNorm::<f32, 2>::new(None, None, 1e-5, Some(f32::NAN)),
        is_param
    );
    err!(
        BatchNorm::<f32, 2>::new(None, None, 1e-5, Some(f32::NEG_INFINITY)),
        is_param
    );
    let (g, be) = ([1.0f32, 2.0], [0.0f32, 1.0]);
    let bn = BatchNorm::<f32, 2>::new(Some(&g), Some(&be), 1e-5, None).unwrap();
    let mut state = BatchNormState::new();
    state.running_mean = [0.5, 0.25];
    let st0 = state;
    // N·L = 1 in training: refused, state untouched.
    let mut y1 = [[7.0f32; 2]];
    let (mut sm, mut sr) = ([7.0f32; 2], [7.0f32; 2]);
    err!(
        bn.forward_train_nc(
            &[[1.0, 2.0]],
            &mut y1,
            Some(&mut state),
            Some((&mut sm, &mut sr))
        ),
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
    err!(
        bn.backward_train(
            &[[[1.0], [2.0]]],
            &[[[1.0]; 2]],
            &mut dx3,
            None,
            Some(&mut dw),
            None
        ),
        is_param
    );
    assert_eq!((dx1, dx3, dw), ([[7.0; 2]], [[[7.0]; 2]], [0.5; 2]));
    // The valid calls: L = 2 with N = 1 trains; eval has no N·L rule.
    let mut y = [[[0.0f32; 2]; 2]; 1];
    bn.forward_train(&[[[1.0, 3.0], [2.0, 5.0]]], &mut y, Some(&mut state), None)
        .unwrap();
    assert_eq!(state.num_batches_tracked, 1);
    bn.forward_eval_nc(&[[1.0, 2.0]], &mut y1, &state).unwrap();
    bn.forward_eval(&[[[1.0], [2.0]]], &mut y3, &state).unwrap();
    bn.backward_train(
        &[[[1.0, 3.0], [2.0, 5.0]]],
        &[[[1.0, 0.0]; 2]],
        &mut y,
        None,
        Some(&mut dw),
        None,
    )
    .unwrap();
    let (mut w, mut b) = ([[1.0f32; 3]; 2], [0.0f32; 2]);
    bn.fold(&state, &mut w, &mut b).unwrap();
}

#[test]
fn audit_batch_norm_dyn_bad_inputs() {
    for eps in BAD_EPS {
        err!(BatchNormDyn::<f32>::new(3, true, eps, Some(0.1)), is_param);
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
    let x = MatRef::new(&flat, 6, 2).unwrap();
    let ok = KMeansConfig::<f64>::default();
    let given = [0.0f64, 0.0, 5.0, 5.0];
    let gv = MatRef::new(&given, 2, 2).unwrap();
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
        let need = kmeans_scratch_len(6, 2, 2);
        let mut run = |x: MatRef<'_, f64>,
                       init: KMeansInit<'_, f64>,
                       cfg: &KMeansConfig<f64>,
                       (k, d): (usize, usize),
                       nl: usize,
                       nls: usize,
                       ns: usize| {
            fit(
                x,
                init,
                cfg,
                &mut rng,
                MatMut::new(&mut c[..k * d], k, d).unwrap(),
                &mut labels[..nl],
                &mut scratch[..ns],
                &mut ls[..nls],
            )
        };
        for cfg in [
            KMeansConfig { max_iter: 0, ..ok },
            KMeansConfig { n_init: 0, ..ok },
            KMeansConfig { tol: -1.0, ..ok },
            KMeansConfig {
                tol: f64::NAN,
                ..ok
            },
            KMeansConfig {
                tol: f64::INFINITY,
                ..ok
            },
        ] {
            err!(
                run(x, KMeansInit::PlusPlus, &cfg, (2, 2), 6, 6, need),
                is_param
            );
        }
        err!(
            run(x, KMeansInit::PlusPlus, &ok, (0, 2), 6, 6, need),
            is_param
        ); // K = 0
        err!(
            run(
                x,
                KMeansInit::PlusPlus,
                &ok,
                (7, 2),
                6,
                6,
                kmeans_scratch_len(6, 7, 2)
            ),
            is_param
        ); // K > N
        err!(
            run(
                MatRef::new(&[], 0, 2).unwrap(),
                KMeansInit::PlusPlus,
                &ok,
                (1, 2),
                0,
                0,
                need
            ),
            is_param
        );
        err!(
            run(
                x,
                KMeansInit::PlusPlus,
                &ok,
                (2, 3),
                6,
                6,
                kmeans_scratch_len(6, 2, 3)
            ),
            is_shape
        );
        err!(
            run(x, KMeansInit::PlusPlus, &ok, (2, 2), 5, 6, need),
            is_len
        );
        err!(
            run(x, KMeansInit::PlusPlus, &ok, (2, 2), 6, 5, need),
            is_len
        );
        err!(
            run(x, KMeansInit::PlusPlus, &ok, (2, 2), 6, 6, need - 1),
            is_buf
        );
        for bad in [f64::NAN, f64::INFINITY] {
            let mut xb = flat.clone();
            xb[7] = bad;
            err!(
                run(
                    MatRef::new(&xb, 6, 2).unwrap(),
                    KMeansInit::PlusPlus,
                    &ok,
                    (2, 2),
                    6,
                    6,
                    need
                ),
                is_param
            );
            let mut gb = given;
            gb[1] = bad;
            err!(
                run(
                    x,
                    KMeansInit::Given(MatRef::new(&gb, 2, 2).unwrap()),
                    &ok,
                    (2, 2),
                    6,
                    6,
                    need
                ),
                is_param
            );
        }
        err!(
            run(
                x,
                KMeansInit::Given(MatRef::new(&given[..3], 3, 1).unwrap()),
                &ok,
                (2, 2),
                6,
                6,
                need
            ),
            is_shape
        );
        err!(
            run(
                x,
                KMeansInit::Given(MatRef::new(&flat, 3, 4).unwrap()),
                &ok,
                (2, 2),
                6,
                6,
                need
            ),
            is_shape
        );
        assert_eq!((c, labels), ([7.0; 14], [99; 6]));
        // Finite points whose distances overflow the element type (f32).
        let xf = [3e38f32, -3e38];
        let mut cf = [7.0f32];
        let mut lf = [99usize; 2];
        err!(
            kmeans_views(
                MatRef::new(&xf, 2, 1).unwrap(),
                KMeansInit::Given(MatRef::new(&[0.0f32], 1, 1).unwrap()),
                &KMeansConfig::default(),
                &mut rng,
                MatMut::new(&mut cf, 1, 1).unwrap(),
                &mut lf,
                &mut vec![0.0; kmeans_scratch_len(2, 1, 1)],
                &mut [0; 2]
            ),
            is_param
        );
        assert_eq!((cf, lf), ([7.0], [99; 2]));
        // The valid fit.
        let f = fit(
            x,
            KMeansInit::Given(gv),
            &ok,
            &mut rng,
            MatMut::new(&mut c[..4], 2, 2).unwrap(),
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
    err!(
        kmeans_dyn(&xm, 0, KMeansInit::PlusPlus, &ok, &mut rng),
        is_param
    );
    err!(
        kmeans_dyn(&xm, 7, KMeansInit::PlusPlus, &ok, &mut rng),
        is_param
    );
    err!(
        kmeans_dyn(
            &xm,
            2,
            KMeansInit::PlusPlus,
            &KMeansConfig { n_init: 0, ..ok },
            &mut rng
        ),
        is_param
    );
    err!(
        kmeans_dyn(&xm, 3, KMeansInit::Given(gv), &ok, &mut rng),
        is_shape
    );
    let mut xb = flat.clone();
    xb[0] = f64::NAN;
    err!(
        kmeans_dyn(
            &Matrix::from_vec(6, 2, xb).unwrap(),
            2,
            KMeansInit::PlusPlus,
            &ok,
            &mut rng
        ),
        is_param
    );
    let (centers, labels, _) = kmeans_dyn(&xm, 2, KMeansInit::Given(gv), &ok, &mut rng).unwrap();
    assert_eq!((centers.shape(), labels.len()), ((2, 2), 6));
    // D = 0 is valid: every point sits on every centre.
    let mut l0 = [9usize; 3];
    let f0 = kmeans_views(
        MatRef::<f64>::new(&[], 3, 0).unwrap(),
        KMeansInit::PlusPlus,
        &ok,
        &mut rng,
        MatMut::new(&mut [], 2, 0).unwrap(),
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
    let x = MatRef::new(&flat, 6, 2).unwrap();
    let centers = [0.0f64, 0.0, 5.0, 5.0];
    let cv = MatRef::new(&centers, 2, 2).unwrap();
    let mut labels = [99usize; 6];
    err!(
        kmeans_predict_views(x, MatRef::new(&[], 0, 2).unwrap(), &mut labels),
        is_empty
    );
    err!(
        kmeans_predict_views(x, MatRef::new(&centers[..3], 1, 3).unwrap(), &mut labels),
        is_shape
    );
    err!(kmeans_predict_views(x, cv, &mut labels[..5]), is_len);
    assert_eq!(labels, [99; 6]);
    for bad in [f64::NAN, f64::INFINITY] {
        let mut cb = centers;
        cb[2] = bad;
        // An infinite centre is simply never nearest; NaN likewise.
        kmeans_predict_views(x, MatRef::new(&cb, 2, 2).unwrap(), &mut labels).unwrap();
        assert_eq!(labels, [0; 6]);
        let mut labels = [99usize; 6];
        let mut xb = flat.clone();
        xb[8] = bad; // point 4
        err!(
            kmeans_predict_views(MatRef::new(&xb, 6, 2).unwrap(), cv, &mut labels),
            is_param
        );
        // The points before the bad one are already labelled.
        assert_eq!(labels, [0, 0, 0, 1, 99, 99]);
        // Every centre non-finite: no finite distance.
        let cb = [bad; 4];
        err!(
            kmeans_predict_views(x, MatRef::new(&cb, 2, 2).unwrap(), &mut labels),
            is_param
        );
    }
    // Edge: no points.
    assert_eq!(
        kmeans_predict_views(MatRef::new(&[], 0, 2).unwrap(), cv, &mut []),
        Ok(0.0)
    );
}

#[test]
fn audit_kmeans_lloyd_step_bad_inputs() {
    let flat: Vec<f64> = PTS.as_flattened().to_vec();
    let x = MatRef::new(&flat, 6, 2).unwrap();
    type Step = fn(MatRef<'_, f64>, MatMut<'_, f64>, &mut [usize], &mut [f64]) -> Result<f64>;
    for step in [
        kmeans_lloyd_step_views::<f64> as Step,
        kmeans_lloyd_step_views_with::<Scalar, f64>,
    ] {
        let mut c = [0.0f64, 0.0, 5.0, 5.0, 1.0, 1.0, 2.0, 2.0];
        let c0 = c;
        let mut labels = [0usize; 6];
        let mut scratch = vec![0.0f64; kmeans_scratch_len(6, 7, 3)];
        let need = kmeans_scratch_len(6, 2, 2);
        err!(
            step(
                x,
                MatMut::new(&mut c[..0], 0, 2).unwrap(),
                &mut labels,
                &mut scratch
            ),
            is_param
        );
        err!(
            step(
                MatRef::new(&flat[..2], 1, 2).unwrap(),
                MatMut::new(&mut c[..4], 2, 2).unwrap(),
                &mut labels[..1],
                &mut scratch
            ),
            is_param
        );
        err!(
            step(
                x,
                MatMut::new(&mut c[..6], 2, 3).unwrap(),
                &mut labels,
                &mut scratch
            ),
            is_shape
        );
        err!(
            step(
                x,
                MatMut::new(&mut c[..4], 2, 2).unwrap(),
                &mut labels[..5],
                &mut scratch
            ),
            is_len
        );
        err!(
            step(
                x,
                MatMut::new(&mut c[..4], 2, 2).unwrap(),
                &mut labels,
                &mut scratch[..need - 1]
            ),
            is_buf
        );
        assert_eq!(c, c0);
        // NaN is not scanned for: the NaN point's centre turns NaN, nothing
        // panics, the other centre is untouched by it.
        let mut xb = flat.clone();
        xb[1] = f64::NAN; // point 0, nearest to centre 0
        step(
            MatRef::new(&xb, 6, 2).unwrap(),
            MatMut::new(&mut c[..4], 2, 2).unwrap(),
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
        kmeans_online_update(
            MatMut::new(&mut c[..0], 0, 2).unwrap(),
            &mut [],
            &[1.0, 1.0]
        ),
        is_empty
    );
    err!(
        kmeans_online_update(
            MatMut::new(&mut c, 2, 2).unwrap(),
            &mut counts[..1],
            &[1.0, 1.0]
        ),
        is_len
    );
    err!(
        kmeans_online_update(MatMut::new(&mut c, 2, 2).unwrap(), &mut counts, &[1.0]),
        is_len
    );
    for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
        err!(
            kmeans_online_update(MatMut::new(&mut c, 2, 2).unwrap(), &mut counts, &[1.0, bad]),
            is_param
        );
    }
    assert_eq!((c, counts), ([0.0, 0.0, 5.0, 5.0], [1, 0]));
    // A count-0 centre takes the first sample it wins.
    assert_eq!(
        kmeans_online_update(MatMut::new(&mut c, 2, 2).unwrap(), &mut counts, &[4.0, 6.0]),
        Ok(1)
    );
    assert_eq!((c, counts), ([0.0, 0.0, 4.0, 6.0], [1, 1]));
    // Counts saturate instead of overflowing.
    let mut counts = [u64::MAX, 1];
    kmeans_online_update(MatMut::new(&mut c, 2, 2).unwrap(), &mut counts, &[0.0, 1.0]).unwrap();
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
    for bad in [
        base.max_iter(0),
        base.n_init(0),
        base.tol(-0.5),
        base.tol(f64::NAN),
    ] {
        err!(
            bad.fit(
                &PTS,
                KMeansInit::PlusPlus,
                &mut rng,
                &mut c,
                &mut labels,
                &mut scratch
            ),
            is_param
        );
    }
    let mut xb = PTS;
    xb[2][1] = f64::INFINITY;
    err!(
        base.fit(
            &xb,
            KMeansInit::PlusPlus,
            &mut rng,
            &mut c,
            &mut labels,
            &mut scratch
        ),
        is_param
    );
    let g = [0.0f64; 6];
    err!(
        base.fit(
            &PTS,
            KMeansInit::Given(MatRef::new(&g, 3, 2).unwrap()),
            &mut rng,
            &mut c,
            &mut labels,
            &mut scratch
        ),
        is_shape
    );
    let gn = [0.0, f64::NAN, 5.0, 5.0];
    err!(
        base.fit(
            &PTS,
            KMeansInit::Given(MatRef::new(&gn, 2, 2).unwrap()),
            &mut rng,
            &mut c,
            &mut labels,
            &mut scratch
        ),
        is_param
    );
    assert_eq!((c, labels), ([[7.0; 2]; 2], [99; 6]));
    // Edge: K = N.
    let (mut c2, mut l2) = ([[0.0f64; 2]; 2], [0usize; 2]);
    let f = base
        .fit(
            &[[0.0, 0.0], [1.0, 1.0]],
            KMeansInit::PlusPlus,
            &mut rng,
            &mut c2,
            &mut l2,
            &mut KMeansScratch::new(),
        )
        .unwrap();
    assert_eq!(f.inertia, 0.0);
    km.fit(
        &PTS,
        KMeansInit::PlusPlus,
        &mut rng,
        &mut c,
        &mut labels,
        &mut scratch,
    )
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

#[test]
fn audit_sgd_fit_bad_inputs() {
    let x = [1.0f64, 2.0, 3.0, 4.0, 5.0, 6.0]; // (3, 2)
    let y = [1.0f64, 2.0, 3.0];
    let xv = MatRef::new(&x, 3, 2).unwrap();
    let ok = SgdConfig::new(0.01f64, 2, 3);
    let bad_cfgs = [
        SgdConfig::new(0.0, 2, 3),
        SgdConfig::new(-0.1, 2, 3),
        SgdConfig::new(f64::NAN, 2, 3),
        SgdConfig::new(f64::INFINITY, 2, 3),
        SgdConfig {
            lr: LearningRate::InvScaling {
                eta0: 0.1,
                power_t: f64::NAN,
            },
            ..ok
        },
        SgdConfig {
            lr: LearningRate::InvScaling {
                eta0: 0.0,
                power_t: 0.25,
            },
            ..ok
        },
        SgdConfig::new(0.01, 0, 3),
        SgdConfig { l2: -1.0, ..ok },
        SgdConfig { l2: f64::NAN, ..ok },
        SgdConfig {
            validate_every: 0,
            ..ok
        },
    ];
    for sklearn in [false, true] {
        let mut calls = 0;
        let mut cb = |_: EpochReport<f64>| calls += 1;
        let mut w = [0.5f64, -0.5];
        let mut b = 0.25f64;
        let mut perm = [9usize; 3];
        let mut scratch = [0.0f64; 2];
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(4);
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
        for c in bad_cfgs {
            if sklearn && c.rule == SgdRule::MiniBatch(0) {
                continue; // the batch size is not used by this rule
            }
            err!(
                sgd_fit_views(
                    xv,
                    &y,
                    None,
                    &rule(c),
                    &mut w,
                    &mut b,
                    &mut perm,
                    Some(&mut rng as &mut dyn Rng),
                    &mut scratch,
                    &mut cb
                ),
                is_param
            );
        }
        let c = rule(ok);
        err!(
            sgd_fit_views(
                MatRef::new(&[], 0, 2).unwrap(),
                &[],
                None,
                &c,
                &mut w,
                &mut b,
                &mut [],
                None,
                &mut scratch,
                &mut cb
            ),
            is_empty
        );
        err!(
            sgd_fit_views(
                xv,
                &y[..2],
                None,
                &c,
                &mut w,
                &mut b,
                &mut perm,
                None,
                &mut scratch,
                &mut cb
            ),
            is_len
        );
        err!(
            sgd_fit_views(
                xv,
                &y,
                None,
                &c,
                &mut w[..1],
                &mut b,
                &mut perm,
                None,
                &mut scratch,
                &mut cb
            ),
            is_len
        );
        err!(
            sgd_fit_views(
                xv,
                &y,
                None,
                &c,
                &mut w,
                &mut b,
                &mut perm[..2],
                None,
                &mut scratch,
                &mut cb
            ),
            is_len
        );
        err!(
            sgd_fit_views(
                xv,
                &y,
                None,
                &c,
                &mut w,
                &mut b,
                &mut perm,
                None,
                &mut scratch[..1],
                &mut cb
            ),
            is_buf
        );
        let mut xb = x;
        xb[3] = f64::NAN;
        err!(
            sgd_fit_views(
                MatRef::new(&xb, 3, 2).unwrap(),
                &y,
                None,
                &c,
                &mut w,
                &mut b,
                &mut perm,
                None,
                &mut scratch,
                &mut cb
            ),
            is_param
        );
        err!(
            sgd_fit_views(
                xv,
                &[1.0, f64::INFINITY, 0.0],
                None,
                &c,
                &mut w,
                &mut b,
                &mut perm,
                None,
                &mut scratch,
                &mut cb
            ),
            is_param
        );
        let mut wb = [f64::NAN, 0.0];
        err!(
            sgd_fit_views(
                xv,
                &y,
                None,
                &c,
                &mut wb,
                &mut b,
                &mut perm,
                None,
                &mut scratch,
                &mut cb
            ),
            is_param
        );
        let mut bb = f64::NEG_INFINITY;
        err!(
            sgd_fit_views(
                xv,
                &y,
                None,
                &c,
                &mut w,
                &mut bb,
                &mut perm,
                None,
                &mut scratch,
                &mut cb
            ),
            is_param
        );
        // Validation data.
        let val_nan = [1.0f64, f64::NAN];
        err!(
            sgd_fit_views(
                xv,
                &y,
                Some((MatRef::new(&val_nan, 1, 2).unwrap(), &[1.0])),
                &c,
                &mut w,
                &mut b,
                &mut perm,
                None,
                &mut scratch,
                &mut cb
            ),
            is_param
        );
        err!(
            sgd_fit_views(
                xv,
                &y,
                Some((MatRef::new(&x[..4], 2, 2).unwrap(), &[1.0])),
                &c,
                &mut w,
                &mut b,
                &mut perm,
                None,
                &mut scratch,
                &mut cb
            ),
            is_len
        );
        err!(
            sgd_fit_views(
                xv,
                &y,
                Some((MatRef::new(&x[..3], 1, 3).unwrap(), &[1.0])),
                &c,
                &mut w,
                &mut b,
                &mut perm,
                None,
                &mut scratch,
                &mut cb
            ),
            is_len
        );
        err!(
            sgd_fit_views_with::<Scalar, f64>(
                xv,
                &y,
                None,
                &SgdConfig {
                    validate_every: 0,
                    ..c
                },
                &mut w,
                &mut b,
                &mut perm,
                None,
                &mut scratch,
                &mut cb
            ),
            is_param
        );
        assert_eq!((w, b, perm), ([0.5, -0.5], 0.25, [9; 3]));
        // The generator was not advanced by the refused calls.
        assert_eq!(
            rng.next_u64(),
            Xoshiro256PlusPlus::seed_from_u64(4).next_u64()
        );
        // Not checked: a diverging run ends Ok with non-finite parameters.
        let mut wd = [0.0f64; 2];
        let mut bd = 0.0f64;
        sgd_fit_views(
            xv,
            &y,
            None,
            &rule(SgdConfig::new(1e3, 1, 50)),
            &mut wd,
            &mut bd,
            &mut perm,
            None,
            &mut scratch,
            &mut cb,
        )
        .unwrap();
        if !sklearn {
            assert!(!wd[0].is_finite());
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
    err!(
        m.fit_sgd(
            &x,
            &y,
            None,
            &SgdConfig::new(0.0, 1, 2),
            &mut perm,
            None,
            &mut cb
        ),
        is_param
    );
    err!(
        m.fit_sgd(
            &x,
            &y,
            None,
            &SgdConfig::new(0.1, 0, 2),
            &mut perm,
            None,
            &mut cb
        ),
        is_param
    );
    err!(
        m.fit_sgd(
            &[[f64::NAN], [2.0], [3.0]],
            &y,
            None,
            &SgdConfig::new(0.1, 1, 2),
            &mut perm,
            None,
            &mut cb
        ),
        is_param
    );
    let vx = [0.0f64, 1.0];
    err!(
        m.fit_sgd(
            &x,
            &y,
            Some((MatRef::new(&vx, 1, 2).unwrap(), &[1.0])),
            &SgdConfig::new(0.1, 1, 2),
            &mut perm,
            None,
            &mut cb
        ),
        is_len
    );
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
    err!(sgd_fit_dyn(&xm, &y[..2], None, &cfg, None), is_len);
    err!(
        sgd_fit_dyn(&Matrix::zeros(0, 1).unwrap(), &[], None, &cfg, None),
        is_empty
    );
    err!(
        sgd_fit_dyn(&xm, &[1.0, f64::NAN, 2.0], None, &cfg, None),
        is_param
    );
    err!(
        sgd_fit_dyn(
            &xm,
            &y,
            None,
            &SgdConfig {
                l2: f64::INFINITY,
                ..cfg
            },
            None
        ),
        is_param
    );
    let vm = Matrix::from_vec(1, 2, vec![1.0f64, 2.0]).unwrap();
    err!(
        sgd_fit_dyn(&xm, &y, Some((&vm, &[1.0])), &cfg, None),
        is_len
    );
    let fit = sgd_fit_dyn(&xm, &y, None, &cfg, None).unwrap();
    assert_eq!((fit.steps, fit.history.len()), (15, 5));
}

#[test]
fn audit_least_squares_bad_inputs() {
    let x = [1.0f64, 2.0, 3.0, 4.0]; // (4, 1)
    let y = [3.0f64, 5.0, 7.0, 9.0];
    let xv = MatRef::new(&x, 4, 1).unwrap();
    let mut scratch = vec![0.0f64; least_squares_scratch_len(4, 2)];
    let need = least_squares_scratch_len(4, 1);
    let (mut w, mut b) = ([7.0f64], 7.0f64);
    err!(
        least_squares_views(xv, &y[..3], &mut scratch, &mut w, &mut b),
        is_len
    );
    err!(
        least_squares_views(xv, &y, &mut scratch, &mut [0.0; 2], &mut b),
        is_len
    );
    err!(
        least_squares_views(xv, &y, &mut scratch[..need - 1], &mut w, &mut b),
        is_buf
    );
    for bad in [f64::NAN, f64::INFINITY] {
        err!(
            least_squares_views(xv, &[3.0, bad, 7.0, 9.0], &mut scratch, &mut w, &mut b),
            is_param
        );
        err!(
            least_squares_views(
                MatRef::new(&[1.0, bad, 3.0, 4.0], 4, 1).unwrap(),
                &y,
                &mut scratch,
                &mut w,
                &mut b
            ),
            is_param
        );
    }
    // Too few rows: N < D + 1.
    err!(
        least_squares_views(
            MatRef::new(&x[..1], 1, 1).unwrap(),
            &y[..1],
            &mut scratch,
            &mut w,
            &mut b
        ),
        is_param
    );
    err!(
        least_squares_views(
            MatRef::new(&[], 0, 1).unwrap(),
            &[],
            &mut scratch,
            &mut w,
            &mut b
        ),
        is_param
    );
    // Rank-deficient designs: a constant feature, two collinear features.
    err!(
        least_squares_views(
            MatRef::new(&[2.0; 4], 4, 1).unwrap(),
            &y,
            &mut scratch,
            &mut w,
            &mut b
        ),
        is_param
    );
    let col = [1.0f64, 2.0, 2.0, 4.0, 3.0, 6.0, 4.0, 8.0];
    err!(
        least_squares_views(
            MatRef::new(&col, 4, 2).unwrap(),
            &y,
            &mut scratch,
            &mut [0.0; 2],
            &mut b
        ),
        is_param
    );
    assert_eq!((w, b), ([7.0], 7.0));
    least_squares_views(xv, &y, &mut scratch, &mut w, &mut b).unwrap();
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
