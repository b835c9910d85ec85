//! Normalisation layers against PyTorch (tests/reference/gen_norm.py →
//! tests/reference/norm.bin): LayerNorm, RMSNorm and BatchNorm forward and
//! backward (autograd), BatchNorm's running statistics over several training
//! steps and eval, and the fold into a preceding linear / conv layer.
//!
//! Both element types are compared with the float64 reference computed from
//! the same float32 inputs (PyTorch's own float32 LayerNorm is off by 4e-3 on
//! the large-mean row that tests accuracy), with a tolerance scaled by the
//! largest magnitude of each row (LayerNorm, RMSNorm) or of the whole output
//! (BatchNorm): 2e-5 in f32, 1e-9 in f64.

mod common;

use common::{RefFile, entry, for_each_backend_and_real, to_vec};
use constml::norm::*;
use constml::{Backend, MatMut, MatRef, Real};

static BIN: &[u8] = include_bytes!("reference/norm.bin");

fn file() -> RefFile<'static> {
    RefFile::parse(BIN).expect("norm.bin is a CMLREF01 file")
}

fn load<T: Real>(name: &str) -> Vec<T> {
    to_vec(&entry(&file(), name))
}

fn has(name: &str) -> bool {
    file().get(name).is_some()
}

fn dims(name: &str) -> Vec<usize> {
    entry(&file(), name).dims().to_vec()
}

fn rel<T: Real>() -> f64 {
    if T::BYTES == 4 { 2e-5 } else { 1e-9 }
}

/// `|got − want| ≤ rel·max|want in its group| + tiny`, groups of `width`.
#[track_caller]
fn check<T: Real>(what: &str, got: &[T], want: &[f64], width: usize) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (g, (gr, wr)) in got
        .chunks(width.max(1))
        .zip(want.chunks(width.max(1)))
        .enumerate()
    {
        let scale = wr.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        let tol = rel::<T>() * scale + 1e-30;
        for (i, (&a, &b)) in gr.iter().zip(wr).enumerate() {
            let err = (a.as_f64() - b).abs();
            assert!(
                err <= tol,
                "{what}: group {g} [{i}]: got {:e}, want {b:e}, error {err:e} > {tol:e}",
                a.as_f64()
            );
        }
    }
}

// ------------------------------------------------------------------ LayerNorm

fn layer_norm_case<B: Backend, T: Real>(case: &str, eps: f64, weight: bool, bias: bool) {
    let d = dims(&format!("{case}/x"));
    let (n, c) = (d[0], d[1]);
    let x = load::<T>(&format!("{case}/x"));
    let dy = load::<T>(&format!("{case}/dy"));
    let w = weight.then(|| load::<T>(&format!("{case}/weight")));
    let b = bias.then(|| load::<T>(&format!("{case}/bias")));
    let eps = T::from_f64(eps);
    let what = format!("{case} {} {}", B::NAME, T::BYTES);
    let want = |k: &str| load::<f64>(&format!("{case}/{k}/f64"));

    let mut y = vec![T::NAN; n * c];
    let (mut mean, mut rstd) = (vec![T::NAN; n], vec![T::NAN; n]);
    layer_norm_views_with::<B, T>(
        MatRef::new(&x, n, c).unwrap(),
        MatMut::new(&mut y, n, c).unwrap(),
        w.as_deref(),
        b.as_deref(),
        eps,
        Some(NormStats::new(&mut mean, &mut rstd)),
    )
    .unwrap();
    let exact = format!("{case}/exact_y");
    let ywant = if has(&exact) {
        load::<f64>(&exact)
    } else {
        want("y")
    };
    check(&format!("{what} y"), &y, &ywant, c);
    if has(&format!("{case}/mean/f64")) {
        check(&format!("{what} mean"), &mean, &want("mean"), 1);
        check(&format!("{what} rstd"), &rstd, &want("rstd"), 1);
    }
    // In place gives the same bits.
    let mut z = x.clone();
    layer_norm_inplace_views_with::<B, T>(
        MatMut::new(&mut z, n, c).unwrap(),
        w.as_deref(),
        b.as_deref(),
        eps,
        None,
    )
    .unwrap();
    assert_eq!(z, y, "{what}: in place");

    // Backward, with the saved statistics and recomputing them.
    for saved in [true, false] {
        let mut dx = vec![T::NAN; n * c];
        let mut dw = w.as_ref().map(|_| vec![T::ZERO; c]);
        let mut db = b.as_ref().map(|_| vec![T::ZERO; c]);
        layer_norm_backward_views_with::<B, T>(
            MatRef::new(&x, n, c).unwrap(),
            MatRef::new(&dy, n, c).unwrap(),
            MatMut::new(&mut dx, n, c).unwrap(),
            w.as_deref(),
            eps,
            saved.then_some((&mean[..], &rstd[..])),
            dw.as_deref_mut(),
            db.as_deref_mut(),
        )
        .unwrap();
        check(&format!("{what} dx (saved {saved})"), &dx, &want("dx"), c);
        if let Some(dw) = &dw {
            check(&format!("{what} dweight"), dw, &want("dweight"), c);
        }
        if let Some(db) = &db {
            check(&format!("{what} dbias"), db, &want("dbias"), c);
        }
    }
}

fn layer_norm_all<B: Backend, T: Real>() {
    layer_norm_case::<B, T>("ln_affine", 1e-5, true, true);
    layer_norm_case::<B, T>("ln_noaffine", 1e-5, false, false);
    layer_norm_case::<B, T>("ln_nobias", 1e-5, true, false);
    layer_norm_case::<B, T>("ln_wide", 1e-3, true, true);
}

#[test]
fn layer_norm_matches_pytorch() {
    for_each_backend_and_real!(layer_norm_all);
}

/// The const face and the runtime face agree with the views face.
#[test]
fn layer_norm_faces_agree() {
    let x = load::<f32>("ln_affine/x");
    let dy = load::<f32>("ln_affine/dy");
    let w: [f32; 10] = load::<f32>("ln_affine/weight").try_into().unwrap();
    let b: [f32; 10] = load::<f32>("ln_affine/bias").try_into().unwrap();
    let xa: [[f32; 10]; 6] = core::array::from_fn(|i| core::array::from_fn(|j| x[i * 10 + j]));
    let dya: [[f32; 10]; 6] = core::array::from_fn(|i| core::array::from_fn(|j| dy[i * 10 + j]));
    let ln = LayerNorm::<f32, 10>::new(Some(&w), Some(&b), 1e-5).unwrap();
    let mut y = [[0.0f32; 10]; 6];
    let (mut m, mut r) = ([0.0f32; 6], [0.0f32; 6]);
    ln.forward(&xa, &mut y, Some(NormStats::new(&mut m, &mut r)))
        .unwrap();
    let mut dx = [[0.0f32; 10]; 6];
    let (mut dw, mut db) = ([0.0f32; 10], [0.0f32; 10]);
    ln.backward(
        &xa,
        &dya,
        &mut dx,
        Some((&m, &r)),
        Some(&mut dw),
        Some(&mut db),
    )
    .unwrap();

    let mut dynl = LayerNormDyn::<f32>::new(10, true, true, 1e-5).unwrap();
    dynl.weight = Some(w.to_vec());
    dynl.bias = Some(b.to_vec());
    let xm = constml::Matrix::from_vec(6, 10, x).unwrap();
    let (ym, stats) = dynl.forward(&xm).unwrap();
    assert_eq!(ym.as_slice(), y.as_flattened());
    let dxm = dynl
        .backward(
            &xm,
            &constml::Matrix::from_vec(6, 10, dy).unwrap(),
            Some(&stats),
        )
        .unwrap();
    assert_eq!(dxm.as_slice(), dx.as_flattened());
    assert_eq!(dynl.dweight.as_deref(), Some(&dw[..]));
    assert_eq!(dynl.dbias.as_deref(), Some(&db[..]));
}

// ------------------------------------------------------------------ RMSNorm

fn rms_case<B: Backend, T: Real>(case: &str, eps: Option<f64>, weight: bool) {
    let d = dims(&format!("{case}/x"));
    let (n, c) = (d[0], d[1]);
    let x = load::<T>(&format!("{case}/x"));
    let dy = load::<T>(&format!("{case}/dy"));
    let w = weight.then(|| load::<T>(&format!("{case}/weight")));
    // eps = None is the element type's machine epsilon, as in PyTorch.
    let eps = eps.map_or(T::EPSILON, T::from_f64);
    if eps == T::EPSILON {
        let e = load::<f64>(&format!("{case}/eps"));
        assert_eq!(eps.as_f64(), if T::BYTES == 4 { e[0] } else { e[1] });
    }
    let what = format!("{case} {} {}", B::NAME, T::BYTES);
    let want = |k: &str| load::<f64>(&format!("{case}/{k}/f64"));
    let mut y = vec![T::NAN; n * c];
    let mut r = vec![T::NAN; n];
    rms_norm_views_with::<B, T>(
        MatRef::new(&x, n, c).unwrap(),
        MatMut::new(&mut y, n, c).unwrap(),
        w.as_deref(),
        eps,
        Some(NormStats::rstd_only(&mut r)),
    )
    .unwrap();
    // The f32 reference for eps = None used f32's epsilon: compare f32 with it.
    let ywant = if T::BYTES == 4 && case == "rms_eps_none" {
        load::<f64>(&format!("{case}/y/f32"))
    } else {
        want("y")
    };
    check(&format!("{what} y"), &y, &ywant, c);
    for saved in [true, false] {
        let mut dx = vec![T::NAN; n * c];
        let mut dw = w.as_ref().map(|_| vec![T::ZERO; c]);
        rms_norm_backward_views_with::<B, T>(
            MatRef::new(&x, n, c).unwrap(),
            MatRef::new(&dy, n, c).unwrap(),
            MatMut::new(&mut dx, n, c).unwrap(),
            w.as_deref(),
            eps,
            saved.then_some(&r[..]),
            dw.as_deref_mut(),
        )
        .unwrap();
        let dxw = if T::BYTES == 4 && case == "rms_eps_none" {
            load::<f64>(&format!("{case}/dx/f32"))
        } else {
            want("dx")
        };
        check(&format!("{what} dx"), &dx, &dxw, c);
        if let Some(dw) = &dw {
            let dww = if T::BYTES == 4 && case == "rms_eps_none" {
                load::<f64>(&format!("{case}/dweight/f32"))
            } else {
                want("dweight")
            };
            check(&format!("{what} dweight"), dw, &dww, c);
        }
    }
}

fn rms_all<B: Backend, T: Real>() {
    rms_case::<B, T>("rms_eps", Some(1e-5), true);
    rms_case::<B, T>("rms_eps_none", None, true);
    rms_case::<B, T>("rms_noaffine", Some(1e-6), false);
    rms_case::<B, T>("rms_wide", Some(1e-5), true);
}

#[test]
fn rms_norm_matches_pytorch() {
    for_each_backend_and_real!(rms_all);
}

// ------------------------------------------------------------------ BatchNorm

/// `case`: steps of training (forward, backward, running statistics), then
/// eval, through the views face.
fn batch_norm_case<B: Backend, T: Real>(
    case: &str,
    steps: usize,
    momentum: Option<f64>,
    affine: bool,
) {
    let d = dims(&format!("{case}/step0/x"));
    let (n, c) = (d[0], d[1]);
    let l: usize = d[2..].iter().product();
    let shape = BnShape::new(n, c, l);
    let w = affine.then(|| load::<T>(&format!("{case}/weight")));
    let b = affine.then(|| load::<T>(&format!("{case}/bias")));
    let eps = T::from_f64(1e-5);
    let mom = momentum.map(T::from_f64);
    let mut state_mean = vec![T::ZERO; c];
    let mut state_var = vec![T::ONE; c];
    let mut batches = 0u64;
    let what = format!("{case} {} {}", B::NAME, T::BYTES);
    for t in 0..steps {
        let p = |k: &str| format!("{case}/step{t}/{k}");
        let want = |k: &str| load::<f64>(&format!("{case}/step{t}/{k}/f64"));
        let x = load::<T>(&p("x"));
        let dy = load::<T>(&p("dy"));
        let mut y = vec![T::NAN; x.len()];
        let (mut m, mut r) = (vec![T::NAN; c], vec![T::NAN; c]);
        batch_norm_train_views_with::<B, T>(
            &x,
            shape,
            &mut y,
            w.as_deref(),
            b.as_deref(),
            eps,
            mom,
            Some(RunningStats {
                mean: &mut state_mean,
                var: &mut state_var,
                batches: &mut batches,
            }),
            Some(NormStats::new(&mut m, &mut r)),
        )
        .unwrap();
        check(&format!("{what} step {t} y"), &y, &want("y"), y.len());
        check(
            &format!("{what} step {t} running mean"),
            &state_mean,
            &want("running_mean"),
            c,
        );
        check(
            &format!("{what} step {t} running var"),
            &state_var,
            &want("running_var"),
            c,
        );
        assert_eq!(batches as f64, load::<f64>(&p("num_batches_tracked"))[0]);
        let mut dx = vec![T::NAN; x.len()];
        let (mut dw, mut db) = (vec![T::ZERO; c], vec![T::ZERO; c]);
        batch_norm_backward_views_with::<B, T>(
            &x,
            shape,
            &dy,
            &mut dx,
            w.as_deref(),
            eps,
            Some((&m, &r)),
            affine.then_some(&mut dw[..]),
            affine.then_some(&mut db[..]),
        )
        .unwrap();
        check(&format!("{what} step {t} dx"), &dx, &want("dx"), dx.len());
        if affine {
            check(
                &format!("{what} step {t} dweight"),
                &dw,
                &want("dweight"),
                c,
            );
            check(&format!("{what} step {t} dbias"), &db, &want("dbias"), c);
        }
    }
    let x = load::<T>(&format!("{case}/eval/x"));
    let de = dims(&format!("{case}/eval/x"));
    let mut y = vec![T::NAN; x.len()];
    batch_norm_eval_views_with::<B, T>(
        &x,
        BnShape::new(de[0], c, l),
        &mut y,
        w.as_deref(),
        b.as_deref(),
        eps,
        &state_mean,
        &state_var,
    )
    .unwrap();
    check(
        &format!("{what} eval y"),
        &y,
        &load::<f64>(&format!("{case}/eval/y/f64")),
        y.len(),
    );
}

fn batch_norm_all<B: Backend, T: Real>() {
    batch_norm_case::<B, T>("bn_nc", 3, Some(0.1), true);
    batch_norm_case::<B, T>("bn_ncl", 2, Some(0.1), true);
    batch_norm_case::<B, T>("bn_nchw", 3, None, true);
    batch_norm_case::<B, T>("bn_noaffine", 2, Some(0.1), false);
}

#[test]
fn batch_norm_matches_pytorch_over_training_steps_and_eval() {
    for_each_backend_and_real!(batch_norm_all);
}

/// The const face (`(N, C)` methods) and the runtime face on `bn_nc`.
#[test]
fn batch_norm_faces_agree() {
    let w: [f32; 4] = load::<f32>("bn_nc/weight").try_into().unwrap();
    let b: [f32; 4] = load::<f32>("bn_nc/bias").try_into().unwrap();
    let bn = BatchNorm::<f32, 4>::new(Some(&w), Some(&b), 1e-5, Some(0.1)).unwrap();
    let mut state = BatchNormState::new();
    let mut dynb = BatchNormDyn::<f32>::new(4, true, 1e-5, Some(0.1)).unwrap();
    dynb.weight = Some(w.to_vec());
    dynb.bias = Some(b.to_vec());
    for t in 0..3 {
        let x = load::<f32>(&format!("bn_nc/step{t}/x"));
        let dy = load::<f32>(&format!("bn_nc/step{t}/dy"));
        let xa: [[f32; 4]; 6] = core::array::from_fn(|i| core::array::from_fn(|j| x[i * 4 + j]));
        let dya: [[f32; 4]; 6] = core::array::from_fn(|i| core::array::from_fn(|j| dy[i * 4 + j]));
        let mut y = [[0.0f32; 4]; 6];
        let (mut m, mut r) = ([0.0f32; 4], [0.0f32; 4]);
        bn.forward_train_nc(&xa, &mut y, Some(&mut state), Some((&mut m, &mut r)))
            .unwrap();
        let mut dx = [[0.0f32; 4]; 6];
        let (mut dw, mut db) = ([0.0f32; 4], [0.0f32; 4]);
        bn.backward_train_nc(
            &xa,
            &dya,
            &mut dx,
            Some((&m, &r)),
            Some(&mut dw),
            Some(&mut db),
        )
        .unwrap();
        let shape = BnShape::new(6, 4, 1);
        let yd = dynb.forward(&x, shape).unwrap();
        assert_eq!(&yd[..], y.as_flattened());
        dynb.dweight = Some(vec![0.0; 4]);
        dynb.dbias = Some(vec![0.0; 4]);
        let dxd = dynb.backward(&x, shape, &dy).unwrap();
        assert_eq!(&dxd[..], dx.as_flattened());
        assert_eq!(dynb.dweight.as_deref(), Some(&dw[..]));
    }
    assert_eq!(dynb.running_mean, state.running_mean.to_vec());
    assert_eq!(dynb.num_batches_tracked, 3);
    let x = load::<f32>("bn_nc/eval/x");
    let xa: [[f32; 4]; 5] = core::array::from_fn(|i| core::array::from_fn(|j| x[i * 4 + j]));
    let mut y = [[0.0f32; 4]; 5];
    bn.forward_eval_nc(&xa, &mut y, &state).unwrap();
    dynb.eval();
    assert_eq!(
        &dynb.forward(&x, BnShape::new(5, 4, 1)).unwrap()[..],
        y.as_flattened()
    );
}

fn fold_case<T: Real>() {
    // Linear → BatchNorm1d.
    let (w, lb) = (
        load::<T>("fold_linear/lin_weight"),
        load::<T>("fold_linear/lin_bias"),
    );
    let g = |k: &str| load::<T>(&format!("fold_linear/{k}"));
    let eps = T::from_f64(load::<f64>("fold_linear/bn_eps")[0]);
    let (mut fw, mut fb) = (w.clone(), lb.clone());
    fold_batch_norm_views(
        MatMut::new(&mut fw, 4, 5).unwrap(),
        &mut fb,
        Some(&g("bn_weight")),
        Some(&g("bn_bias")),
        eps,
        &g("bn_mean"),
        &g("bn_var"),
    )
    .unwrap();
    let t = if T::BYTES == 4 { "f32" } else { "f64" };
    check(
        "fold linear weight",
        &fw,
        &load::<f64>("fold_linear/weight/f64"),
        5,
    );
    check(
        "fold linear bias",
        &fb,
        &load::<f64>("fold_linear/bias/f64"),
        4,
    );
    // The folded layer computes what Linear → BatchNorm (eval) computed.
    let x = g("x");
    let want = load::<f64>("fold_linear/y/f64");
    for i in 0..3 {
        for o in 0..4 {
            let v = (0..5).fold(fb[o], |s, j| s + fw[o * 5 + j] * x[i * 5 + j]);
            let e = (v.as_f64() - want[i * 4 + o]).abs();
            assert!(
                e <= rel::<T>() * 10.0 * want[i * 4 + o].abs().max(1.0),
                "fold linear y {t} [{i}][{o}]"
            );
        }
    }
    // Conv2d (2, 3, 3, 3) → BatchNorm2d: weight rows per output channel.
    let c = |k: &str| load::<T>(&format!("fold_conv/{k}"));
    let eps = T::from_f64(load::<f64>("fold_conv/bn_eps")[0]);
    let (mut cw, mut cb) = (c("conv_weight"), c("conv_bias"));
    fold_batch_norm_views(
        MatMut::new(&mut cw, 2, 27).unwrap(),
        &mut cb,
        Some(&c("bn_weight")),
        Some(&c("bn_bias")),
        eps,
        &c("bn_mean"),
        &c("bn_var"),
    )
    .unwrap();
    check(
        "fold conv weight",
        &cw,
        &load::<f64>("fold_conv/weight/f64"),
        27,
    );
    check("fold conv bias", &cb, &load::<f64>("fold_conv/bias/f64"), 2);
}

#[test]
fn batch_norm_fold_matches_torch_fusion() {
    fold_case::<f32>();
    fold_case::<f64>();
}
