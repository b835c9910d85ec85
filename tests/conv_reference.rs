//! Convolution and pooling against PyTorch (tests/reference/gen_conv.py →
//! tests/reference/conv.bin): conv2d forward and every gradient over stride ×
//! padding × dilation, groups and depthwise, direct ≡ im2col; max-pool (ceil
//! mode, ties), average-pool (both divisor rules, ceil mode), global average
//! pool; f32 and f64, both backends; finite differences and bad input.

mod common;

use common::{Lcg, RefFile, assert_close, entry, for_each_backend_and_real, ref_tol, to_vec};
use constml::nn::*;
use constml::{Backend, Real};

static BIN: &[u8] = include_bytes!("reference/conv.bin");

fn file() -> RefFile<'static> {
    RefFile::parse(BIN).expect("conv.bin is a CMLREF01 file")
}

fn load<T: Real>(name: &str) -> Vec<T> {
    to_vec(&entry(&file(), name))
}

fn ints(name: &str) -> Vec<usize> {
    load::<f64>(name).iter().map(|&v| v as usize).collect()
}

fn tag<T: Real>() -> &'static str {
    if T::BYTES == 4 { "f32" } else { "f64" }
}

fn want<T: Real>(name: &str) -> Vec<T> {
    load(&format!("{name}/{}", tag::<T>()))
}

#[track_caller]
fn check<T: Real>(what: &str, got: &[T], want: &[T]) {
    let (r, a) = ref_tol::<T>();
    assert_close(what, got, want, r, a);
}

fn conv_shape(case: &str) -> (Conv2dShape, bool) {
    let p = ints(&format!("{case}/params"));
    let s = Conv2dShape::new(p[0], p[1], p[2], p[3], p[4], p[5], p[6])
        .stride(p[7], p[8])
        .padding(p[9], p[10])
        .dilation(p[11], p[12])
        .groups(p[13]);
    (s, p[14] != 0)
}

fn conv_cases<B: Backend, T: Real>() {
    let cases = entry(&file(), "cases").text();
    for case in cases.split(',') {
        let (shape, has_bias) = conv_shape(case);
        let x = load::<T>(&format!("{case}/x"));
        let w = load::<T>(&format!("{case}/weight"));
        let b = has_bias.then(|| load::<T>(&format!("{case}/bias")));
        let dy = load::<T>(&format!("{case}/dy"));
        let what = format!("{case} {} {}", B::NAME, tag::<T>());
        let (_, _, ly) = shape.lens().unwrap();
        let mut y = vec![T::NAN; ly];
        conv2d_views_with::<B, T>(&x, &shape, &w, b.as_deref(), &mut y).unwrap();
        check(
            &format!("{what} out (direct)"),
            &y,
            &want::<T>(&format!("{case}/out")),
        );
        let mut y2 = vec![T::NAN; ly];
        let mut scratch = vec![T::ZERO; conv2d_im2col_scratch_len(&shape)];
        conv2d_im2col_views_with::<B, T>(&x, &shape, &w, b.as_deref(), &mut y2, &mut scratch)
            .unwrap();
        check(
            &format!("{what} out (im2col)"),
            &y2,
            &want::<T>(&format!("{case}/out")),
        );
        let mut y3 = vec![T::NAN; ly];
        conv2d_auto_views_with::<B, T>(&x, &shape, &w, b.as_deref(), &mut y3, &mut scratch)
            .unwrap();
        check(
            &format!("{what} out (auto)"),
            &y3,
            &want::<T>(&format!("{case}/out")),
        );
        for path in ["direct", "im2col"] {
            let mut dx = vec![T::NAN; x.len()];
            let mut dw = vec![T::ZERO; w.len()];
            let mut db = vec![T::ZERO; shape.c_out];
            let (dxo, dwo, dbo) = (
                Some(&mut dx[..]),
                Some(&mut dw[..]),
                has_bias.then_some(&mut db[..]),
            );
            if path == "direct" {
                conv2d_backward_views_with::<B, T>(&x, &shape, &w, &dy, dxo, dwo, dbo)
            } else {
                conv2d_im2col_backward_views_with::<B, T>(
                    &x,
                    &shape,
                    &w,
                    &dy,
                    dxo,
                    dwo,
                    dbo,
                    &mut scratch,
                )
            }
            .unwrap();
            let what = format!("{what} ({path})");
            check(
                &format!("{what} dx"),
                &dx,
                &want::<T>(&format!("{case}/dx")),
            );
            // A weight gradient sums N·OH·OW products (144 in `big`) that cancel
            // to small values: allow the rounding of such a sum in f32.
            let (r, a) = ref_tol::<T>();
            let terms = (y.len() / shape.c_out.max(1)) as f64;
            let a = if T::BYTES == 4 {
                a.max(terms * 1e-7)
            } else {
                a
            };
            assert_close(
                &format!("{what} dweight"),
                &dw,
                &want::<T>(&format!("{case}/dweight")),
                r,
                a,
            );
            if has_bias {
                check(
                    &format!("{what} dbias"),
                    &db,
                    &want::<T>(&format!("{case}/dbias")),
                );
            }
        }
    }
}

#[test]
fn conv2d_matches_pytorch() {
    for_each_backend_and_real!(conv_cases);
}

fn pool_shape(x_name: &str, p: &[usize]) -> Pool2dShape {
    let d = entry(&file(), x_name).dims().to_vec();
    Pool2dShape::new(d[0], d[1], d[2], d[3], p[0], p[1])
        .stride(p[2], p[3])
        .padding(p[4], p[5])
        .ceil_mode(p[6] != 0)
}

fn pools<T: Real>() {
    for case in ["k2s2", "k3s2p1", "k3s2_ceil", "k2s2p1_ceil", "ties"] {
        let name = format!("maxpool/{case}");
        let shape = pool_shape(&format!("{name}/x"), &ints(&format!("{name}/params")));
        let (x, dy) = (
            load::<T>(&format!("{name}/x")),
            load::<T>(&format!("{name}/dy")),
        );
        let (_, ly) = shape.lens().unwrap();
        let (mut y, mut idx) = (vec![T::NAN; ly], vec![usize::MAX; ly]);
        max_pool2d_views(&x, &shape, &mut y, &mut idx).unwrap();
        check(
            &format!("{name} out {}", tag::<T>()),
            &y,
            &want::<T>(&format!("{name}/out")),
        );
        assert_eq!(idx, ints(&format!("{name}/indices/f64")), "{name} indices");
        let mut dx = vec![T::NAN; x.len()];
        max_pool2d_backward_views(&shape, &dy, &idx, &mut dx).unwrap();
        check(
            &format!("{name} dx {}", tag::<T>()),
            &dx,
            &want::<T>(&format!("{name}/dx")),
        );
    }
    for case in [
        "k3s2p1_incl",
        "k3s2p1_excl",
        "k3s2p1_ceil_incl",
        "k3s2p1_ceil_excl",
        "k2s2",
    ] {
        let name = format!("avgpool/{case}");
        let p = ints(&format!("{name}/params"));
        let shape = pool_shape(&format!("{name}/x"), &p);
        let incl = p[7] != 0;
        let (x, dy) = (
            load::<T>(&format!("{name}/x")),
            load::<T>(&format!("{name}/dy")),
        );
        let (_, ly) = shape.lens().unwrap();
        let mut y = vec![T::NAN; ly];
        avg_pool2d_views(&x, &shape, incl, &mut y).unwrap();
        check(
            &format!("{name} out {}", tag::<T>()),
            &y,
            &want::<T>(&format!("{name}/out")),
        );
        let mut dx = vec![T::NAN; x.len()];
        avg_pool2d_backward_views(&shape, incl, &dy, &mut dx).unwrap();
        check(
            &format!("{name} dx {}", tag::<T>()),
            &dx,
            &want::<T>(&format!("{name}/dx")),
        );
    }
    let (x, dy) = (load::<T>("gap/x"), load::<T>("gap/dy"));
    let mut y = vec![T::NAN; 6];
    global_avg_pool_views(&x, 6, 20, &mut y).unwrap();
    check("gap out", &y, &want::<T>("gap/out"));
    let mut dx = vec![T::NAN; 120];
    global_avg_pool_backward_views(&dy, 20, &mut dx).unwrap();
    check("gap dx", &dx, &want::<T>("gap/dx"));
}

#[test]
fn pooling_matches_pytorch() {
    pools::<f32>();
    pools::<f64>();
}

/// Finite differences in f64 on a random grouped, strided, dilated case.
#[test]
fn conv2d_gradients_match_finite_differences() {
    let mut r = Lcg(6);
    let shape = Conv2dShape::new(1, 4, 6, 5, 2, 2, 3)
        .stride(2, 1)
        .padding(1, 1)
        .dilation(1, 2)
        .groups(2);
    let (lx, lw, ly) = shape.lens().unwrap();
    let rv = |r: &mut Lcg, n: usize| (0..n).map(|_| 2.0 * r.unit() - 1.0).collect::<Vec<f64>>();
    let (x, w, b, dy) = (
        rv(&mut r, lx),
        rv(&mut r, lw),
        rv(&mut r, 2),
        rv(&mut r, ly),
    );
    let loss = |x: &[f64], w: &[f64], b: &[f64]| {
        let mut y = vec![0.0; ly];
        conv2d_views(x, &shape, w, Some(b), &mut y).unwrap();
        y.iter().zip(&dy).map(|(a, c)| a * c).sum::<f64>()
    };
    let (mut dx, mut dw, mut db) = (vec![0.0; lx], vec![0.0; lw], vec![0.0; 2]);
    conv2d_backward_views(
        &x,
        &shape,
        &w,
        &dy,
        Some(&mut dx),
        Some(&mut dw),
        Some(&mut db),
    )
    .unwrap();
    let fd = |v: &[f64], g: &[f64], f: &dyn Fn(&[f64]) -> f64, what: &str| {
        for i in 0..v.len() {
            let (mut a, mut c) = (v.to_vec(), v.to_vec());
            a[i] += 1e-6;
            c[i] -= 1e-6;
            let num = (f(&a) - f(&c)) / 2e-6;
            assert!(
                (num - g[i]).abs() <= 1e-6 * (1.0 + num.abs()),
                "{what}[{i}]: {num} vs {}",
                g[i]
            );
        }
    };
    fd(&x, &dx, &|v| loss(v, &w, &b), "dx");
    fd(&w, &dw, &|v| loss(&x, v, &b), "dw");
    fd(&b, &db, &|v| loss(&x, &w, v), "db");
}

#[test]
fn conv_and_pool_bad_input_is_an_error() {
    let x = [1.0f32; 16];
    let mut y = [0.0f32; 16];
    let w = [1.0f32; 9];
    // Output size zero, groups that do not divide, zero stride or dilation.
    for s in [
        Conv2dShape::new(1, 1, 2, 2, 1, 3, 3),
        Conv2dShape::new(1, 1, 4, 4, 1, 3, 3).stride(0, 1),
        Conv2dShape::new(1, 1, 4, 4, 1, 3, 3).dilation(1, 0),
        Conv2dShape::new(1, 3, 4, 4, 2, 3, 3).groups(2),
        Conv2dShape::new(1, 1, 4, 4, 1, 3, 3).groups(0),
        Conv2dShape::new(1, 1, 4, 4, 1, 3, 3).dilation(2, 2),
        Conv2dShape::new(1, 1, 4, 4, 1, 3, 3).padding(usize::MAX, 0),
    ] {
        assert!(s.output().is_err(), "{s:?}");
        assert!(conv2d_views(&x, &s, &w, None, &mut y).is_err());
    }
    let s = Conv2dShape::new(1, 1, 4, 4, 1, 3, 3);
    assert!(conv2d_views(&x[..15], &s, &w, None, &mut y[..4]).is_err());
    assert!(conv2d_views(&x, &s, &w[..8], None, &mut y[..4]).is_err());
    assert!(conv2d_views(&x, &s, &w, Some(&[1.0, 2.0]), &mut y[..4]).is_err());
    assert!(conv2d_im2col_views(&x, &s, &w, None, &mut y[..4], &mut [0.0; 3]).is_err());
    assert!(conv2d_backward_views(&x, &s, &w, &y[..4], Some(&mut [0.0; 3]), None, None).is_err());
    // im2col paths refuse a short scratch; the automatic choice falls back to
    // the direct kernel instead, with the same result.
    let mut dx16 = [0.0f32; 16];
    assert!(
        conv2d_im2col_backward_views(
            &x,
            &s,
            &w,
            &y[..4],
            Some(&mut dx16),
            None,
            None,
            &mut [0.0; 35]
        )
        .is_err()
    );
    let (mut ya, mut yd) = ([0.0f32; 4], [0.0f32; 4]);
    conv2d_auto_views(&x, &s, &w, None, &mut ya, &mut []).unwrap();
    conv2d_views(&x, &s, &w, None, &mut yd).unwrap();
    assert_eq!(ya, yd);
    conv2d_auto_backward_views(&x, &s, &w, &ya, Some(&mut dx16), None, None, &mut []).unwrap();
    assert_eq!(dx16.iter().sum::<f32>(), 9.0 * ya.iter().sum::<f32>());
    assert!(conv2d_auto_views(&x, &s.groups(2), &w, None, &mut ya, &mut [0.0; 64]).is_err());
    assert_eq!(conv2d_im2col_scratch_len(&s), 36);
    assert_eq!(
        conv2d_im2col_scratch_len(&Conv2dShape::new(1, 4, 3, 3, 2, 1, 1)),
        0
    );
    // Zero channels make every buffer empty, but a plane whose size
    // overflows is still an error, not an overflow in the kernels.
    let huge = Conv2dShape::new(1, 0, 1 << 33, 1 << 33, 1, 1, 1).stride(1 << 33, 1 << 33);
    assert!(huge.lens().is_err());
    assert!(conv2d_views(&[], &huge, &[], None, &mut [0.0f32]).is_err());
    assert!(conv2d_backward_views(&[], &huge, &[], &[0.0f32], None, None, None).is_err());
    let huge_pool = Pool2dShape::new(0, 1, 1 << 33, 1 << 33, 1, 1);
    assert!(max_pool2d_backward_views::<f32>(&huge_pool, &[], &[], &mut []).is_err());
    assert_eq!(conv_out_len(5, 3, 2, 1, 1), Some(3));
    assert_eq!(conv_out_len(2, 3, 1, 0, 1), None);
    // Pools: padding over half the kernel, zero stride, bad indices.
    assert!(
        Pool2dShape::new(1, 1, 4, 4, 2, 2)
            .padding(2, 0)
            .output()
            .is_err()
    );
    assert!(
        Pool2dShape::new(1, 1, 4, 4, 2, 2)
            .stride(0, 1)
            .output()
            .is_err()
    );
    assert!(Pool2dShape::new(1, 1, 1, 1, 2, 2).output().is_err());
    let p = Pool2dShape::new(1, 1, 4, 4, 2, 2);
    let mut dx = [0.0f32; 16];
    assert!(max_pool2d_backward_views(&p, &[1.0; 4], &[0, 1, 2, 99], &mut dx).is_err());
    assert!(avg_pool2d_views(&x, &p, true, &mut y[..3]).is_err());
    assert!(global_avg_pool_views(&x, 2, 0, &mut y[..2]).is_err());
}

/// A tiny CNN (conv 1→4 → ReLU → max-pool 2 → conv 4→8 → ReLU → max-pool 2 →
/// linear 32→10 → cross-entropy) forward and backward: logits, loss and every
/// parameter gradient equal PyTorch's.
fn cnn<B: Backend, T: Real>() {
    let x = load::<T>("cnn/x");
    let target = ints("cnn/target");
    let (c1w, c1b, c2w, c2b, fcw, fcb) = (
        load::<T>("cnn/c1w"),
        load::<T>("cnn/c1b"),
        load::<T>("cnn/c2w"),
        load::<T>("cnn/c2b"),
        load::<T>("cnn/fcw"),
        load::<T>("cnn/fcb"),
    );
    let s1 = Conv2dShape::new(2, 1, 8, 8, 4, 3, 3).padding(1, 1);
    let p1 = Pool2dShape::new(2, 4, 8, 8, 2, 2);
    let s2 = Conv2dShape::new(2, 4, 4, 4, 8, 3, 3).padding(1, 1);
    let p2 = Pool2dShape::new(2, 8, 4, 4, 2, 2);
    let (mut h1, mut a1) = (vec![T::ZERO; 2 * 4 * 64], vec![T::ZERO; 2 * 4 * 64]);
    conv2d_views_with::<B, T>(&x, &s1, &c1w, Some(&c1b), &mut h1).unwrap();
    activation_forward_with::<B, T>(Activation::Relu, &h1, &mut a1).unwrap();
    let (mut m1, mut i1) = (vec![T::ZERO; 2 * 4 * 16], vec![0usize; 2 * 4 * 16]);
    max_pool2d_views(&a1, &p1, &mut m1, &mut i1).unwrap();
    let (mut h2, mut a2) = (vec![T::ZERO; 2 * 8 * 16], vec![T::ZERO; 2 * 8 * 16]);
    conv2d_views_with::<B, T>(&m1, &s2, &c2w, Some(&c2b), &mut h2).unwrap();
    activation_forward_with::<B, T>(Activation::Relu, &h2, &mut a2).unwrap();
    let (mut m2, mut i2) = (vec![T::ZERO; 2 * 8 * 4], vec![0usize; 2 * 8 * 4]);
    max_pool2d_views(&a2, &p2, &mut m2, &mut i2).unwrap();
    let mut logits = vec![T::ZERO; 20];
    use constml::{MatMut, MatRef};
    linear_views_with::<B, T>(
        MatRef::new(&m2, 2, 32).unwrap(),
        MatRef::new(&fcw, 10, 32).unwrap(),
        Some(&fcb),
        MatMut::new(&mut logits, 2, 10).unwrap(),
    )
    .unwrap();
    let what = format!("cnn {} {}", B::NAME, tag::<T>());
    check(&format!("{what} logits"), &logits, &want::<T>("cnn/logits"));
    let mut dl = vec![T::ZERO; 20];
    let loss = cross_entropy_views_with::<B, T>(
        MatRef::new(&logits, 2, 10).unwrap(),
        &target,
        &CrossEntropy::default(),
        Some(MatMut::new(&mut dl, 2, 10).unwrap()),
    )
    .unwrap();
    check(&format!("{what} loss"), &[loss], &want::<T>("cnn/loss"));
    let (mut dm2, mut dfcw, mut dfcb) = (vec![T::ZERO; 64], vec![T::ZERO; 320], vec![T::ZERO; 10]);
    linear_backward_views_with::<B, T>(
        MatRef::new(&m2, 2, 32).unwrap(),
        MatRef::new(&fcw, 10, 32).unwrap(),
        MatRef::new(&dl, 2, 10).unwrap(),
        Some(MatMut::new(&mut dm2, 2, 32).unwrap()),
        Some(MatMut::new(&mut dfcw, 10, 32).unwrap()),
        Some(&mut dfcb),
    )
    .unwrap();
    let mut da2 = vec![T::ZERO; 256];
    max_pool2d_backward_views(&p2, &dm2, &i2, &mut da2).unwrap();
    let mut dh2 = vec![T::ZERO; 256];
    activation_backward_with::<B, T>(Activation::Relu, &h2, &a2, &da2, &mut dh2).unwrap();
    let (mut dm1, mut dc2w, mut dc2b) = (
        vec![T::ZERO; 128],
        vec![T::ZERO; c2w.len()],
        vec![T::ZERO; 8],
    );
    conv2d_backward_views_with::<B, T>(
        &m1,
        &s2,
        &c2w,
        &dh2,
        Some(&mut dm1),
        Some(&mut dc2w),
        Some(&mut dc2b),
    )
    .unwrap();
    let mut da1 = vec![T::ZERO; 512];
    max_pool2d_backward_views(&p1, &dm1, &i1, &mut da1).unwrap();
    let mut dh1 = vec![T::ZERO; 512];
    activation_backward_with::<B, T>(Activation::Relu, &h1, &a1, &da1, &mut dh1).unwrap();
    let (mut dc1w, mut dc1b) = (vec![T::ZERO; c1w.len()], vec![T::ZERO; 4]);
    conv2d_backward_views_with::<B, T>(&x, &s1, &c1w, &dh1, None, Some(&mut dc1w), Some(&mut dc1b))
        .unwrap();
    for (name, g) in [
        ("dc1w", &dc1w),
        ("dc1b", &dc1b),
        ("dc2w", &dc2w),
        ("dc2b", &dc2b),
        ("dfcw", &dfcw),
        ("dfcb", &dfcb),
    ] {
        check(
            &format!("{what} {name}"),
            g,
            &want::<T>(&format!("cnn/{name}")),
        );
    }
}

#[test]
fn tiny_cnn_matches_pytorch() {
    for_each_backend_and_real!(cnn);
}

/// The const face equals the views face on a grouped, strided reference case
/// and refuses an (OH, OW) that does not fit its parameters.
#[test]
fn conv2d_const_face() {
    let case = "conv/groups2";
    let (shape, _) = conv_shape(case);
    assert_eq!(
        (
            shape.n,
            shape.c_in,
            shape.h,
            shape.w,
            shape.c_out,
            shape.kh,
            shape.kw
        ),
        (2, 4, 6, 7, 6, 3, 2)
    );
    let xv = load::<f32>(&format!("{case}/x"));
    let wv = load::<f32>(&format!("{case}/weight"));
    let bv = load::<f32>(&format!("{case}/bias"));
    let x: [[[[f32; 7]; 6]; 4]; 2] = core::array::from_fn(|n| {
        core::array::from_fn(|c| {
            core::array::from_fn(|h| core::array::from_fn(|w| xv[((n * 4 + c) * 6 + h) * 7 + w]))
        })
    });
    let w: [[[[f32; 2]; 3]; 2]; 6] = core::array::from_fn(|o| {
        core::array::from_fn(|c| {
            core::array::from_fn(|p| core::array::from_fn(|q| wv[((o * 2 + c) * 3 + p) * 2 + q]))
        })
    });
    let b: [f32; 6] = core::array::from_fn(|i| bv[i]);
    let (oh, ow) = shape.output().unwrap();
    assert_eq!((oh, ow), (6, 3));
    let p = Conv2dParams::new()
        .stride(shape.stride.0, shape.stride.1)
        .padding(shape.padding.0, shape.padding.1);
    let mut y = [[[[0.0f32; 3]; 6]; 6]; 2];
    conv2d_with::<constml::Simd, f32, 2, 4, 6, 7, 6, 2, 3, 2, 6, 3>(&x, &w, Some(&b), &mut y, &p)
        .unwrap();
    let mut yv = vec![0.0f32; 2 * 6 * 18];
    conv2d_views(&xv, &shape, &wv, Some(&bv), &mut yv).unwrap();
    assert_eq!(y.as_flattened().as_flattened().as_flattened(), &yv[..]);
    let mut dx = [[[[0.0f32; 7]; 6]; 4]; 2];
    let mut dw = [[[[0.0f32; 2]; 3]; 2]; 6];
    conv2d_backward_with::<constml::Simd, f32, 2, 4, 6, 7, 6, 2, 3, 2, 6, 3>(
        &x,
        &w,
        &y,
        Some(&mut dx),
        Some(&mut dw),
        None,
        &p,
    )
    .unwrap();
    let (mut dxv, mut dwv) = (vec![0.0f32; xv.len()], vec![0.0f32; wv.len()]);
    let yflat = y.as_flattened().as_flattened().as_flattened();
    conv2d_backward_views(
        &xv,
        &shape,
        &wv,
        yflat,
        Some(&mut dxv),
        Some(&mut dwv),
        None,
    )
    .unwrap();
    assert_eq!(dx.as_flattened().as_flattened().as_flattened(), &dxv[..]);
    assert_eq!(dw.as_flattened().as_flattened().as_flattened(), &dwv[..]);
    // The im2col const face: a scratch sized by the const fn, same results
    // to rounding.
    const S: usize = im2col_len(2, 3, 2, 6, 3);
    let mut scratch = [0.0f32; S];
    let mut yi = [[[[0.0f32; 3]; 6]; 6]; 2];
    conv2d_im2col_with::<constml::Simd, f32, 2, 4, 6, 7, 6, 2, 3, 2, 6, 3, S>(
        &x,
        &w,
        Some(&b),
        &mut yi,
        &mut scratch,
        &p,
    )
    .unwrap();
    check(
        "const im2col y",
        yi.as_flattened().as_flattened().as_flattened(),
        &yv,
    );
    let (mut dxi, mut dwi) = ([[[[0.0f32; 7]; 6]; 4]; 2], [[[[0.0f32; 2]; 3]; 2]; 6]);
    let mut dbi = [0.0f32; 6];
    conv2d_im2col_backward_with::<constml::Simd, f32, 2, 4, 6, 7, 6, 2, 3, 2, 6, 3, S>(
        &x,
        &w,
        &y,
        Some(&mut dxi),
        Some(&mut dwi),
        Some(&mut dbi),
        &mut scratch,
        &p,
    )
    .unwrap();
    check(
        "const im2col dx",
        dxi.as_flattened().as_flattened().as_flattened(),
        &dxv,
    );
    check(
        "const im2col dw",
        dwi.as_flattened().as_flattened().as_flattened(),
        &dwv,
    );
    let db_want: Vec<f32> = (0..6)
        .map(|o| {
            (0..2)
                .map(|n| y[n][o].as_flattened().iter().sum::<f32>())
                .sum()
        })
        .collect();
    check("const im2col db", &dbi, &db_want);
    // Parameters that give another output size are an error, not a wrong result.
    let mut y2 = [[[[0.0f32; 3]; 6]; 6]; 2];
    assert!(
        conv2d_with::<constml::Simd, f32, 2, 4, 6, 7, 6, 2, 3, 2, 6, 3>(
            &x,
            &w,
            None,
            &mut y2,
            &Conv2dParams::new()
        )
        .is_err()
    );
    assert_eq!(y2, [[[[0.0; 3]; 6]; 6]; 2]);
}

#[cfg(feature = "std")]
#[test]
fn conv2d_dyn_face() {
    for case in entry(&file(), "cases").text().split(',') {
        let (s, has_bias) = conv_shape(case);
        let p = Conv2dParams::new()
            .stride(s.stride.0, s.stride.1)
            .padding(s.padding.0, s.padding.1)
            .dilation(s.dilation.0, s.dilation.1);
        let mut conv =
            Conv2dDyn::<f64>::zeros(s.c_in, s.c_out, (s.kh, s.kw), s.groups, p, has_bias).unwrap();
        conv.weight = load::<f64>(&format!("{case}/weight"));
        if has_bias {
            conv.bias = Some(load::<f64>(&format!("{case}/bias")));
        }
        let x = load::<f64>(&format!("{case}/x"));
        let (y, (oh, ow)) = conv.forward(&x, s.n, s.h, s.w).unwrap();
        assert_eq!((oh, ow), s.output().unwrap());
        check(
            &format!("{case} dyn y"),
            &y,
            &want::<f64>(&format!("{case}/out")),
        );
        let dy = load::<f64>(&format!("{case}/dy"));
        let dx = conv.backward(&x, s.n, s.h, s.w, &dy).unwrap();
        check(
            &format!("{case} dyn dx"),
            &dx,
            &want::<f64>(&format!("{case}/dx")),
        );
        check(
            &format!("{case} dyn dw"),
            &conv.dweight,
            &want::<f64>(&format!("{case}/dweight")),
        );
        conv.zero_grad();
        assert!(conv.dweight.iter().all(|&v| v == 0.0));
        // A batch that does not match its stated shape is an error.
        assert!(conv.forward(&x[1..], s.n, s.h, s.w).is_err());
        assert!(conv.backward(&x, s.n, s.h, s.w, &dy[1..]).is_err());
    }
    let p = Conv2dParams::new();
    assert!(Conv2dDyn::<f32>::zeros(3, 4, (3, 3), 2, p, true).is_err());
    assert!(Conv2dDyn::<f32>::zeros(2, 4, (0, 3), 1, p, true).is_err());
    assert!(Conv2dDyn::<f32>::zeros(2, 4, (3, 3), 1, p.stride(0, 1), true).is_err());
    assert!(Conv2dDyn::<f32>::zeros(2, 4, (3, 3), 1, p.dilation(usize::MAX, 1), true).is_err());
    let mut c = Conv2dDyn::<f32>::zeros(2, 4, (3, 3), 1, p, false).unwrap();
    assert!(
        c.forward(&[0.0; 8], 1, 2, 2).is_err(),
        "image smaller than the kernel"
    );
}

/// BatchNorm2d in eval mode after a grouped, strided convolution equals the
/// convolution with the BatchNorm folded into its weight and bias.
#[test]
fn batch_norm_folds_into_conv() {
    use constml::norm::{BnShape, batch_norm_eval_views, fold_batch_norm_views};
    let s = Conv2dShape::new(2, 4, 7, 6, 6, 3, 3)
        .stride(2, 1)
        .padding(1, 1)
        .groups(2);
    let (lx, lw, ly) = s.lens().unwrap();
    let (oh, ow) = s.output().unwrap();
    let mut rng = Lcg(7);
    let mut draw = |n: usize, lo: f64, hi: f64| -> Vec<f64> {
        (0..n).map(|_| lo + (hi - lo) * rng.unit()).collect()
    };
    let (x, mut w, mut b) = (draw(lx, -1.0, 1.0), draw(lw, -0.5, 0.5), draw(6, -0.2, 0.2));
    let (gamma, beta) = (draw(6, 0.5, 1.5), draw(6, -0.3, 0.3));
    let (mean, var) = (draw(6, -0.5, 0.5), draw(6, 0.2, 2.0));
    let (mut h, mut z) = (vec![0.0; ly], vec![0.0; ly]);
    conv2d_views(&x, &s, &w, Some(&b), &mut h).unwrap();
    batch_norm_eval_views(
        &h,
        BnShape::new(2, 6, oh * ow),
        &mut z,
        Some(&gamma),
        Some(&beta),
        1e-5,
        &mean,
        &var,
    )
    .unwrap();
    fold_batch_norm_views(
        constml::MatMut::new(&mut w, 6, lw / 6).unwrap(),
        &mut b,
        Some(&gamma),
        Some(&beta),
        1e-5,
        &mean,
        &var,
    )
    .unwrap();
    let mut folded = vec![0.0; ly];
    conv2d_views(&x, &s, &w, Some(&b), &mut folded).unwrap();
    assert_close("folded conv", &folded, &z, 1e-12, 1e-12);
}
