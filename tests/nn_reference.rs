//! Neural-network chapter against PyTorch autograd and `torch.optim`
//! (tests/reference/gen_nn.py → tests/reference/nn.bin): linear,
//! activations, softmax / log-softmax, embedding, the losses, SGD / Adam /
//! AdamW over four steps, gradient clipping and one step of a small MLP.
//! f32 and f64, both backends; default tolerances.

mod common;

use common::{RefFile, assert_close, entry, for_each_backend_and_real, ref_tol, to_vec};
use constml::nn::*;
use constml::{Backend, MatMut, MatRef, Real};

static BIN: &[u8] = include_bytes!("reference/nn.bin");

fn file() -> RefFile<'static> {
    RefFile::parse(BIN).expect("nn.bin is a CMLREF01 file")
}

fn load<T: Real>(name: &str) -> Vec<T> {
    to_vec(&entry(&file(), name))
}

fn ids(name: &str) -> Vec<usize> {
    load::<f64>(name).iter().map(|&v| v as usize).collect()
}

fn dims(name: &str) -> Vec<usize> {
    entry(&file(), name).dims().to_vec()
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

fn layers<B: Backend, T: Real>() {
    let what = |s: &str| format!("{s} {} {}", B::NAME, tag::<T>());
    // Linear.
    let (x, w, b, dy) = (
        load::<T>("linear/x"),
        load::<T>("linear/weight"),
        load::<T>("linear/bias"),
        load::<T>("linear/dy"),
    );
    let mut y = vec![T::NAN; 20];
    linear_views_with::<B, T>(
        MatRef::new(&x, 5, 7).unwrap(),
        MatRef::new(&w, 4, 7).unwrap(),
        Some(&b),
        MatMut::new(&mut y, 5, 4).unwrap(),
    )
    .unwrap();
    check(&what("linear y"), &y, &want::<T>("linear/y"));
    let (mut dx, mut dw, mut db) = (vec![T::NAN; 35], vec![T::ZERO; 28], vec![T::ZERO; 4]);
    linear_backward_views_with::<B, T>(
        MatRef::new(&x, 5, 7).unwrap(),
        MatRef::new(&w, 4, 7).unwrap(),
        MatRef::new(&dy, 5, 4).unwrap(),
        Some(MatMut::new(&mut dx, 5, 7).unwrap()),
        Some(MatMut::new(&mut dw, 4, 7).unwrap()),
        Some(&mut db),
    )
    .unwrap();
    check(&what("linear dx"), &dx, &want::<T>("linear/dx"));
    check(&what("linear dweight"), &dw, &want::<T>("linear/dweight"));
    check(&what("linear dbias"), &db, &want::<T>("linear/dbias"));

    // Activations.
    let (x, dy) = (load::<T>("act/x"), load::<T>("act/dy"));
    for (act, name) in [
        (Activation::Relu, "relu"),
        (Activation::Sigmoid, "sigmoid"),
        (Activation::Tanh, "tanh"),
        (Activation::Silu, "silu"),
        (Activation::Gelu, "gelu"),
        (Activation::GeluTanh, "gelu_tanh"),
    ] {
        let mut y = vec![T::NAN; x.len()];
        activation_forward_with::<B, T>(act, &x, &mut y).unwrap();
        check(
            &what(&format!("{name} y")),
            &y,
            &want::<T>(&format!("{name}/y")),
        );
        let mut dx = vec![T::NAN; x.len()];
        activation_backward_with::<B, T>(act, &x, &y, &dy, &mut dx).unwrap();
        check(
            &what(&format!("{name} dx")),
            &dx,
            &want::<T>(&format!("{name}/dx")),
        );
    }

    // Softmax and log-softmax over rows.
    let (x, dy) = (load::<T>("softmax/x"), load::<T>("softmax/dy"));
    for log in [false, true] {
        let name = if log { "log_softmax" } else { "softmax" };
        let mut y = x.clone();
        for row in y.chunks_mut(6) {
            if log {
                B::log_softmax(row)
            } else {
                B::softmax(row)
            }
        }
        check(
            &what(&format!("{name} y")),
            &y,
            &want::<T>(&format!("{name}/y")),
        );
        let mut dx = vec![T::NAN; 24];
        let (ym, dym, dxm) = (
            MatRef::new(&y, 4, 6).unwrap(),
            MatRef::new(&dy, 4, 6).unwrap(),
            MatMut::new(&mut dx, 4, 6).unwrap(),
        );
        if log {
            log_softmax_backward_views_with::<B, T>(ym, dym, dxm)
        } else {
            softmax_backward_views_with::<B, T>(ym, dym, dxm)
        }
        .unwrap();
        check(
            &what(&format!("{name} dx")),
            &dx,
            &want::<T>(&format!("{name}/dx")),
        );
    }

    // Embedding.
    let (table, dy) = (load::<T>("embedding/weight"), load::<T>("embedding/dy"));
    let id = ids("embedding/ids");
    let mut y = vec![T::NAN; 24];
    embedding_views(
        MatRef::new(&table, 10, 4).unwrap(),
        &id,
        MatMut::new(&mut y, 6, 4).unwrap(),
    )
    .unwrap();
    check(&what("embedding y"), &y, &want::<T>("embedding/y"));
    let mut g = vec![T::ZERO; 40];
    embedding_backward_views_with::<B, T>(
        &id,
        MatRef::new(&dy, 6, 4).unwrap(),
        MatMut::new(&mut g, 10, 4).unwrap(),
    )
    .unwrap();
    check(
        &what("embedding dweight"),
        &g,
        &want::<T>("embedding/dweight"),
    );
}

#[test]
fn layers_match_autograd() {
    for_each_backend_and_real!(layers);
}

fn losses<B: Backend, T: Real>() {
    let what = |s: &str| format!("{s} {} {}", B::NAME, tag::<T>());
    let (p, t) = (load::<T>("mse/pred"), load::<T>("mse/target"));
    let mut d = vec![T::NAN; p.len()];
    let l = mse_loss(&p, &t, Some(&mut d)).unwrap();
    check(&what("mse loss"), &[l], &want::<T>("mse/loss"));
    check(&what("mse dpred"), &d, &want::<T>("mse/dpred"));

    let target = ids("ce/target");
    for (case, logits, eps, ignore) in [
        ("ce", "ce/logits", 0.0, None),
        ("ce_smooth", "ce/logits", 0.1, None),
        ("ce_ignore", "ce/logits", 0.0, Some(2)),
        ("ce_ignore_smooth", "ce/logits", 0.1, Some(2)),
        ("ce_big", "ce_big/logits", 0.0, None),
    ] {
        let x = load::<T>(logits);
        let opts = CrossEntropy {
            label_smoothing: T::from_f64(eps),
            ignore_index: ignore,
        };
        let mut d = vec![T::NAN; 20];
        let l = cross_entropy_views_with::<B, T>(
            MatRef::new(&x, 5, 4).unwrap(),
            &target,
            &opts,
            Some(MatMut::new(&mut d, 5, 4).unwrap()),
        )
        .unwrap();
        check(
            &what(&format!("{case} loss")),
            &[l],
            &want::<T>(&format!("{case}/loss")),
        );
        check(
            &what(&format!("{case} dlogits")),
            &d,
            &want::<T>(&format!("{case}/dlogits")),
        );
    }
    let (x, t) = (load::<T>("bce/x"), load::<T>("bce/target"));
    let mut d = vec![T::NAN; x.len()];
    let l = bce_with_logits(&x, &t, Some(&mut d)).unwrap();
    check(&what("bce loss"), &[l], &want::<T>("bce/loss"));
    check(&what("bce dx"), &d, &want::<T>("bce/dx"));
}

#[test]
fn losses_match_autograd() {
    for_each_backend_and_real!(losses);
}

fn optimisers<B: Backend, T: Real>() {
    let p0 = load::<T>("opt/p0");
    let p1 = load::<T>("opt/p1");
    for case in [
        "sgd_plain",
        "sgd_momentum",
        "sgd_nesterov",
        "adam",
        "adam_l2",
        "adamw",
    ] {
        let pr = load::<f64>(&format!("opt/{case}/params"));
        let (mut a, mut b) = (p0.clone(), p1.clone());
        let (mut sa, mut sb) = (vec![T::ZERO; 2 * a.len()], vec![T::ZERO; 2 * b.len()]);
        let mut sgd = Sgd::new(T::from_f64(pr[0]))
            .momentum(T::from_f64(pr[1]))
            .dampening(T::from_f64(pr[2]))
            .weight_decay(T::from_f64(pr[3]))
            .nesterov(pr[4] != 0.0);
        let mut adam = Adam::new(T::from_f64(pr[0]))
            .betas(T::from_f64(pr[1]), T::from_f64(pr[2]))
            .eps(T::from_f64(pr[3]))
            .weight_decay(T::from_f64(pr[4]));
        adam.decoupled = case == "adamw";
        for t in 0..4 {
            let ga = load::<T>(&format!("opt/grad{t}/p0"));
            let gb = load::<T>(&format!("opt/grad{t}/p1"));
            if case.starts_with("sgd") {
                let (na, nb) = (sgd.state_len(a.len()), sgd.state_len(b.len()));
                sgd.step_with::<B>(&mut [
                    Param::new(&mut a, &ga, &mut sa[..na]),
                    Param::new(&mut b, &gb, &mut sb[..nb]),
                ])
                .unwrap();
            } else {
                adam.step(&mut [
                    Param::new(&mut a, &ga, &mut sa),
                    Param::new(&mut b, &gb, &mut sb),
                ])
                .unwrap();
            }
            let w = format!("{case} step {t} {} {}", B::NAME, tag::<T>());
            check(
                &format!("{w} p0"),
                &a,
                &want::<T>(&format!("opt/{case}/step{t}/p0")),
            );
            check(
                &format!("{w} p1"),
                &b,
                &want::<T>(&format!("opt/{case}/step{t}/p1")),
            );
        }
    }
}

#[test]
fn optimisers_match_torch_optim() {
    for_each_backend_and_real!(optimisers);
}

fn clipping<T: Real>() {
    for case in ["clip", "clip_noop"] {
        let mut g0 = load::<T>(&format!("{case}/grad/p0"));
        let mut g1 = load::<T>(&format!("{case}/grad/p1"));
        let max = T::from_f64(load::<f64>("clip/max_norm")[0]);
        let n = clip_grad_norm(&mut [&mut g0[..], &mut g1[..]], max).unwrap();
        check(
            &format!("{case} norm"),
            &[n],
            &want::<T>(&format!("{case}/total_norm")),
        );
        check(
            &format!("{case} p0"),
            &g0,
            &want::<T>(&format!("{case}/p0")),
        );
        check(
            &format!("{case} p1"),
            &g1,
            &want::<T>(&format!("{case}/p1")),
        );
    }
}

#[test]
fn clipping_matches_clip_grad_norm() {
    clipping::<f32>();
    clipping::<f64>();
}

/// Linear(6→5) → ReLU → Linear(5→3) → cross-entropy, backward, one SGD step
/// with momentum: every gradient and the updated parameters.
fn mlp_step<B: Backend, T: Real>() {
    let x = load::<T>("mlp/x");
    let target = ids("mlp/target");
    let (mut w1, mut b1, mut w2, mut b2) = (
        load::<T>("mlp/w1"),
        load::<T>("mlp/b1"),
        load::<T>("mlp/w2"),
        load::<T>("mlp/b2"),
    );
    assert_eq!(dims("mlp/w1"), [5, 6]);
    let n = 8;
    let (mut h, mut a) = (vec![T::ZERO; n * 5], vec![T::ZERO; n * 5]);
    let mut logits = vec![T::ZERO; n * 3];
    linear_views_with::<B, T>(
        MatRef::new(&x, n, 6).unwrap(),
        MatRef::new(&w1, 5, 6).unwrap(),
        Some(&b1),
        MatMut::new(&mut h, n, 5).unwrap(),
    )
    .unwrap();
    activation_forward_with::<B, T>(Activation::Relu, &h, &mut a).unwrap();
    linear_views_with::<B, T>(
        MatRef::new(&a, n, 5).unwrap(),
        MatRef::new(&w2, 3, 5).unwrap(),
        Some(&b2),
        MatMut::new(&mut logits, n, 3).unwrap(),
    )
    .unwrap();
    check("mlp logits", &logits, &want::<T>("mlp/logits"));
    let mut dlogits = vec![T::ZERO; n * 3];
    let loss = cross_entropy_views_with::<B, T>(
        MatRef::new(&logits, n, 3).unwrap(),
        &target,
        &CrossEntropy::default(),
        Some(MatMut::new(&mut dlogits, n, 3).unwrap()),
    )
    .unwrap();
    check("mlp loss", &[loss], &want::<T>("mlp/loss"));
    let (mut dw1, mut db1, mut dw2, mut db2) = (
        vec![T::ZERO; 30],
        vec![T::ZERO; 5],
        vec![T::ZERO; 15],
        vec![T::ZERO; 3],
    );
    let mut da = vec![T::ZERO; n * 5];
    linear_backward_views_with::<B, T>(
        MatRef::new(&a, n, 5).unwrap(),
        MatRef::new(&w2, 3, 5).unwrap(),
        MatRef::new(&dlogits, n, 3).unwrap(),
        Some(MatMut::new(&mut da, n, 5).unwrap()),
        Some(MatMut::new(&mut dw2, 3, 5).unwrap()),
        Some(&mut db2),
    )
    .unwrap();
    let mut dh = vec![T::ZERO; n * 5];
    activation_backward_with::<B, T>(Activation::Relu, &h, &a, &da, &mut dh).unwrap();
    linear_backward_views_with::<B, T>(
        MatRef::new(&x, n, 6).unwrap(),
        MatRef::new(&w1, 5, 6).unwrap(),
        MatRef::new(&dh, n, 5).unwrap(),
        None,
        Some(MatMut::new(&mut dw1, 5, 6).unwrap()),
        Some(&mut db1),
    )
    .unwrap();
    for (name, g) in [("dw1", &dw1), ("db1", &db1), ("dw2", &dw2), ("db2", &db2)] {
        check(
            &format!("mlp {name}"),
            g,
            &want::<T>(&format!("mlp/{name}")),
        );
    }
    let mut st = [T::ZERO; 30 + 5 + 15 + 3];
    let (s1, rest) = st.split_at_mut(30);
    let (s2, rest) = rest.split_at_mut(5);
    let (s3, s4) = rest.split_at_mut(15);
    let pr = load::<f64>("mlp/params");
    Sgd::new(T::from_f64(pr[0]))
        .momentum(T::from_f64(pr[1]))
        .step_with::<B>(&mut [
            Param::new(&mut w1, &dw1, s1),
            Param::new(&mut b1, &db1, s2),
            Param::new(&mut w2, &dw2, s3),
            Param::new(&mut b2, &db2, s4),
        ])
        .unwrap();
    for (name, p) in [
        ("w1_after", &w1),
        ("b1_after", &b1),
        ("w2_after", &w2),
        ("b2_after", &b2),
    ] {
        check(
            &format!("mlp {name}"),
            p,
            &want::<T>(&format!("mlp/{name}")),
        );
    }
}

#[test]
fn mlp_step_matches_pytorch() {
    for_each_backend_and_real!(mlp_step);
}

static DIGITS: &[u8] = include_bytes!("reference/mlp_digits.bin");

/// The digits MLP trained by `examples/mlp_digits` (weights exported from the
/// Rust side) gives PyTorch's logits on five test images.
fn mlp_digits<B: Backend, T: Real>() {
    let f = RefFile::parse(DIGITS).expect("mlp_digits.bin is a CMLREF01 file");
    let get = |n: &str| to_vec::<T>(&entry(&f, &format!("mlp_digits/{n}")));
    let (w1, b1, w2, b2, x) = (get("w1"), get("b1"), get("w2"), get("b2"), get("x"));
    let (mut h, mut a, mut logits) = (
        vec![T::ZERO; 5 * 128],
        vec![T::ZERO; 5 * 128],
        vec![T::ZERO; 50],
    );
    linear_views_with::<B, T>(
        MatRef::new(&x, 5, 64).unwrap(),
        MatRef::new(&w1, 128, 64).unwrap(),
        Some(&b1),
        MatMut::new(&mut h, 5, 128).unwrap(),
    )
    .unwrap();
    activation_forward_with::<B, T>(Activation::Relu, &h, &mut a).unwrap();
    linear_views_with::<B, T>(
        MatRef::new(&a, 5, 128).unwrap(),
        MatRef::new(&w2, 10, 128).unwrap(),
        Some(&b2),
        MatMut::new(&mut logits, 5, 10).unwrap(),
    )
    .unwrap();
    let want = to_vec::<T>(&entry(&f, &format!("mlp_digits/logits/{}", tag::<T>())));
    check(
        &format!("digits MLP logits {} {}", B::NAME, tag::<T>()),
        &logits,
        &want,
    );
}

#[test]
fn mlp_digits_logits_match_pytorch() {
    for_each_backend_and_real!(mlp_digits);
}
