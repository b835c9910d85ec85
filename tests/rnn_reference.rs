//! Recurrent layers against PyTorch (tests/reference/gen_rnn.py →
//! tests/reference/rnn.bin): nn.RNN (tanh, ReLU), nn.LSTM and nn.GRU, with
//! given and zero initial state, with and without biases — every output,
//! final state and gradient, f32 and f64, both backends. Also: finite
//! differences in f64, Scalar ≡ Simd on random shapes around the lane width,
//! the single step ≡ a one-step sequence, the const and runtime faces, and
//! bad input.

mod common;

use common::{Lcg, RefFile, assert_close, entry, for_each_backend_and_real, ref_tol, to_vec};
use constml::nn::*;
use constml::{Backend, Real, Scalar, Simd};

static BIN: &[u8] = include_bytes!("reference/rnn.bin");

fn file() -> RefFile<'static> {
    RefFile::parse(BIN).expect("rnn.bin is a CMLREF01 file")
}

fn has(name: &str) -> bool {
    file().get(name).is_some()
}

fn load<T: Real>(name: &str) -> Vec<T> {
    to_vec(&entry(&file(), name))
}

fn want<T: Real>(name: &str) -> Vec<T> {
    let tag = if T::BYTES == 4 { "f32" } else { "f64" };
    load(&format!("{name}/{tag}"))
}

fn cell_of(kind: usize) -> Cell {
    [Cell::RnnTanh, Cell::RnnRelu, Cell::Lstm, Cell::Gru][kind]
}

/// One reference case: shape, cell and inputs.
struct Case<T> {
    cell: Cell,
    shape: RnnShape,
    w_ih: Vec<T>,
    w_hh: Vec<T>,
    b: Option<(Vec<T>, Vec<T>)>,
    x: Vec<T>,
    h0: Option<Vec<T>>,
    c0: Option<Vec<T>>,
    dout: Vec<T>,
    dh_n: Vec<T>,
    dc_n: Option<Vec<T>>,
}

fn case<T: Real>(name: &str) -> Case<T> {
    let k = |e: &str| format!("rnn/{name}/{e}");
    let p: Vec<usize> = load::<f64>(&k("params"))
        .iter()
        .map(|&v| v as usize)
        .collect();
    let cell = cell_of(p[6]);
    let opt = |e: &str| has(&k(e)).then(|| load::<T>(&k(e)));
    Case {
        cell,
        shape: RnnShape::new(p[0], p[1], p[2], p[3]),
        w_ih: load(&k("w_ih")),
        w_hh: load(&k("w_hh")),
        b: (p[4] != 0).then(|| (load(&k("b_ih")), load(&k("b_hh")))),
        x: load(&k("x")),
        h0: opt("h0"),
        c0: opt("c0"),
        dout: load(&k("dout")),
        dh_n: load(&k("dh_n")),
        dc_n: opt("dc_n"),
    }
}

impl<T: Real> Case<T> {
    fn params(&self) -> RecurrentParams<'_, T> {
        RecurrentParams::new(
            self.cell,
            &self.w_ih,
            &self.w_hh,
            self.b.as_ref().map(|b| &b.0[..]),
            self.b.as_ref().map(|b| &b.1[..]),
        )
    }
}

/// Everything a forward and backward pass produce.
#[derive(Debug, PartialEq)]
struct Run<T> {
    out: Vec<T>,
    h_n: Vec<T>,
    c_n: Vec<T>,
    dx: Vec<T>,
    dw_ih: Vec<T>,
    dw_hh: Vec<T>,
    db_ih: Vec<T>,
    db_hh: Vec<T>,
    dh0: Vec<T>,
    dc0: Vec<T>,
}

fn run<B: Backend, T: Real>(c: &Case<T>) -> Run<T> {
    let s = &c.shape;
    let (nh, lstm) = (s.batch * s.hidden, c.cell.has_cell_state());
    let gh = c.cell.gates() * s.hidden;
    let p = c.params();
    let mut out = vec![T::NAN; s.batch * s.seq * s.hidden];
    let (mut h_n, mut c_n) = (vec![T::NAN; nh], vec![T::NAN; if lstm { nh } else { 0 }]);
    let mut saved = vec![T::NAN; recurrent_saved_len(c.cell, s)];
    let mut scratch = vec![T::NAN; recurrent_forward_scratch_len(c.cell, s)];
    recurrent_forward_views_with::<B, T>(
        &p,
        s,
        &c.x,
        c.h0.as_deref(),
        c.c0.as_deref(),
        &mut out,
        Some(&mut h_n),
        lstm.then_some(&mut c_n[..]),
        &mut saved,
        &mut scratch,
    )
    .unwrap();
    let mut dw_ih = vec![T::ZERO; c.w_ih.len()];
    let mut dw_hh = vec![T::ZERO; c.w_hh.len()];
    let (mut db_ih, mut db_hh) = (vec![T::ZERO; gh], vec![T::ZERO; gh]);
    let mut dx = vec![T::NAN; c.x.len()];
    let (mut dh0, mut dc0) = (vec![T::NAN; nh], vec![T::NAN; if lstm { nh } else { 0 }]);
    let mut scratch = vec![T::NAN; recurrent_backward_scratch_len(c.cell, s)];
    let has_b = c.b.is_some();
    let mut grads = RecurrentGrads {
        dw_ih: &mut dw_ih,
        dw_hh: &mut dw_hh,
        db_ih: has_b.then_some(&mut db_ih[..]),
        db_hh: has_b.then_some(&mut db_hh[..]),
    };
    recurrent_backward_views_with::<B, T>(
        &p,
        s,
        &c.x,
        c.h0.as_deref(),
        c.c0.as_deref(),
        &out,
        &saved,
        Some(&c.dout),
        Some(&c.dh_n),
        c.dc_n.as_deref(),
        &mut grads,
        Some(&mut dx),
        Some(&mut dh0),
        lstm.then_some(&mut dc0[..]),
        &mut scratch,
    )
    .unwrap();
    Run {
        out,
        h_n,
        c_n,
        dx,
        dw_ih,
        dw_hh,
        db_ih,
        db_hh,
        dh0,
        dc0,
    }
}

fn cases() -> Vec<String> {
    entry(&file(), "cases")
        .text()
        .split(',')
        .map(String::from)
        .collect()
}

fn reference_cases<B: Backend, T: Real>() {
    let (r, a) = ref_tol::<T>();
    // Gradients through a dozen steps sum many rounded products in f32.
    let (gr, ga) = if T::BYTES == 4 { (1e-4, 1e-5) } else { (r, a) };
    for name in cases() {
        let c = case::<T>(&name);
        let got = run::<B, T>(&c);
        let what = format!("{name} {} {}", B::NAME, T::BYTES);
        let k = |e: &str| format!("rnn/{name}/{e}");
        assert_close(
            &format!("{what} out"),
            &got.out,
            &want::<T>(&k("out")),
            r,
            a,
        );
        assert_close(
            &format!("{what} h_n"),
            &got.h_n,
            &want::<T>(&k("h_n")),
            r,
            a,
        );
        if c.cell.has_cell_state() {
            assert_close(
                &format!("{what} c_n"),
                &got.c_n,
                &want::<T>(&k("c_n")),
                r,
                a,
            );
        }
        let g =
            |e: &str, v: &[T]| assert_close(&format!("{what} {e}"), v, &want::<T>(&k(e)), gr, ga);
        g("dx", &got.dx);
        g("dw_ih", &got.dw_ih);
        g("dw_hh", &got.dw_hh);
        if c.b.is_some() {
            g("db_ih", &got.db_ih);
            g("db_hh", &got.db_hh);
        }
        if c.h0.is_some() {
            g("dh0", &got.dh0);
            if c.cell.has_cell_state() {
                g("dc0", &got.dc0);
            }
        }
    }
}

#[test]
fn recurrent_layers_match_pytorch() {
    assert_eq!(cases().len(), 11);
    for_each_backend_and_real!(reference_cases);
}

/// A random case of `cell` (biases, initial states and upstream gradients
/// all present).
fn random_case(cell: Cell, shape: RnnShape, seed: u64) -> Case<f64> {
    let mut rng = Lcg(seed);
    let mut draw = |n: usize, scale: f64| -> Vec<f64> {
        (0..n).map(|_| scale * (2.0 * rng.unit() - 1.0)).collect()
    };
    let gh = cell.gates() * shape.hidden;
    let nh = shape.batch * shape.hidden;
    let lstm = cell.has_cell_state();
    Case {
        cell,
        shape,
        w_ih: draw(gh * shape.input, 0.6),
        w_hh: draw(gh * shape.hidden, 0.6),
        b: Some((draw(gh, 0.5), draw(gh, 0.5))),
        x: draw(shape.batch * shape.seq * shape.input, 1.0),
        h0: Some(draw(nh, 0.5)),
        c0: lstm.then(|| draw(nh, 0.5)),
        dout: draw(shape.batch * shape.seq * shape.hidden, 1.0),
        dh_n: draw(nh, 1.0),
        dc_n: lstm.then(|| draw(nh, 1.0)),
    }
}

/// `L = Σ out·dout + Σ h_n·dh_n (+ Σ c_n·dc_n)`, the scalar the gradients are of.
fn loss(c: &Case<f64>) -> f64 {
    let r = run::<Scalar, f64>(c);
    let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
    dot(&r.out, &c.dout) + dot(&r.h_n, &c.dh_n) + c.dc_n.as_ref().map_or(0.0, |d| dot(&r.c_n, d))
}

#[test]
fn gradients_match_finite_differences() {
    for cell in [Cell::RnnTanh, Cell::RnnRelu, Cell::Lstm, Cell::Gru] {
        let c = random_case(cell, RnnShape::new(2, 3, 3, 4), 11);
        let got = run::<Scalar, f64>(&c);
        let eps = 1e-6;
        // Central differences of L with respect to every element of `field`.
        let check = |what: &str, get: fn(&mut Case<f64>) -> &mut Vec<f64>, grad: &[f64]| {
            let mut cc = random_case(cell, c.shape, 11);
            let len = get(&mut cc).len();
            assert_eq!(grad.len(), len, "{what}");
            for (i, &want) in grad.iter().enumerate().take(len) {
                let v = get(&mut cc)[i];
                get(&mut cc)[i] = v + eps;
                let up = loss(&cc);
                get(&mut cc)[i] = v - eps;
                let down = loss(&cc);
                get(&mut cc)[i] = v;
                let fd = (up - down) / (2.0 * eps);
                assert!(
                    (fd - want).abs() <= 1e-6 * (1.0 + fd.abs()),
                    "{cell:?} {what}[{i}]: autograd {want} vs finite difference {fd}"
                );
            }
        };
        check("w_ih", |c| &mut c.w_ih, &got.dw_ih);
        check("w_hh", |c| &mut c.w_hh, &got.dw_hh);
        check("b_ih", |c| &mut c.b.as_mut().unwrap().0, &got.db_ih);
        check("b_hh", |c| &mut c.b.as_mut().unwrap().1, &got.db_hh);
        check("x", |c| &mut c.x, &got.dx);
        check("h0", |c| c.h0.as_mut().unwrap(), &got.dh0);
        if cell.has_cell_state() {
            check("c0", |c| c.c0.as_mut().unwrap(), &got.dc0);
        }
    }
}

#[test]
fn simd_matches_scalar_around_the_lane_width() {
    for cell in [Cell::RnnTanh, Cell::RnnRelu, Cell::Lstm, Cell::Gru] {
        for (n, s, i, h) in [
            (1, 1, 1, 1),
            (3, 5, 7, 15),
            (2, 4, 16, 16),
            (1, 3, 9, 17),
            (2, 2, 33, 8),
        ] {
            let c = random_case(cell, RnnShape::new(n, s, i, h), 5);
            let (a, b) = (run::<Scalar, f64>(&c), run::<Simd, f64>(&c));
            let what = format!("{cell:?} {n}×{s}×{i}×{h}");
            for (name, x, y) in [
                ("out", &a.out, &b.out),
                ("dx", &a.dx, &b.dx),
                ("dw_ih", &a.dw_ih, &b.dw_ih),
                ("dw_hh", &a.dw_hh, &b.dw_hh),
                ("db_hh", &a.db_hh, &b.db_hh),
                ("dh0", &a.dh0, &b.dh0),
                ("dc0", &a.dc0, &b.dc0),
            ] {
                assert_close(&format!("{what} {name}"), y, x, 1e-12, 1e-12);
            }
        }
    }
}

#[test]
fn a_step_is_a_one_step_sequence() {
    for cell in [Cell::RnnTanh, Cell::Lstm, Cell::Gru] {
        let c = random_case(cell, RnnShape::new(3, 4, 5, 6), 9);
        let full = run::<Simd, f64>(&c);
        // Feed the same sequence one step at a time.
        let (n, s, i, h) = (3, 4, 5, 6);
        let mut hs = c.h0.clone().unwrap();
        let mut cs = c.c0.clone();
        let mut scratch = vec![0.0; recurrent_step_scratch_len(cell, n, h)];
        for t in 0..s {
            let xt: Vec<f64> = (0..n)
                .flat_map(|b| c.x[(b * s + t) * i..(b * s + t + 1) * i].to_vec())
                .collect();
            recurrent_step_views(
                &c.params(),
                n,
                &xt,
                &mut hs,
                cs.as_deref_mut(),
                &mut scratch,
            )
            .unwrap();
            for b in 0..n {
                let want = &full.out[(b * s + t) * h..(b * s + t + 1) * h];
                assert_close(
                    &format!("{cell:?} step {t}"),
                    &hs[b * h..(b + 1) * h],
                    want,
                    1e-12,
                    1e-12,
                );
            }
        }
        if let Some(cs) = cs {
            assert_close("final c", &cs, &full.c_n, 1e-12, 1e-12);
        }
    }
}

#[test]
fn bad_input_is_an_error_and_writes_nothing() {
    let c = random_case(Cell::Lstm, RnnShape::new(2, 3, 4, 5), 3);
    let p = c.params();
    let s = c.shape;
    let mut out = vec![7.0; 2 * 3 * 5];
    let mut saved = vec![7.0; recurrent_saved_len(Cell::Lstm, &s)];
    let mut scratch = vec![7.0; recurrent_forward_scratch_len(Cell::Lstm, &s)];
    let mut fwd =
        |shape: &RnnShape, x: &[f64], h0: Option<&[f64]>, out: &mut [f64], scratch: &mut [f64]| {
            recurrent_forward_views(&p, shape, x, h0, None, out, None, None, &mut saved, scratch)
        };
    // Empty batch or sequence, zero sizes, wrong lengths, short buffers.
    assert!(matches!(
        fwd(&RnnShape::new(2, 0, 4, 5), &[], None, &mut [], &mut scratch),
        Err(constml::Error::Empty { .. })
    ));
    assert!(fwd(&RnnShape::new(0, 3, 4, 5), &[], None, &mut [], &mut scratch).is_err());
    assert!(
        fwd(
            &RnnShape::new(2, 3, 0, 5),
            &[],
            None,
            &mut out,
            &mut scratch
        )
        .is_err()
    );
    assert!(fwd(&s, &c.x[1..], None, &mut out, &mut scratch).is_err());
    assert!(fwd(&s, &c.x, Some(&[0.0; 3]), &mut out, &mut scratch).is_err());
    assert!(fwd(&s, &c.x, None, &mut out[1..], &mut scratch).is_err());
    assert!(fwd(&s, &c.x, None, &mut out, &mut [0.0; 3]).is_err());
    assert!(
        fwd(
            &RnnShape::new(2, 3, 4, 6),
            &c.x,
            None,
            &mut out,
            &mut scratch
        )
        .is_err()
    );
    assert!(
        fwd(
            &RnnShape::new(usize::MAX, 2, 4, 5),
            &c.x,
            None,
            &mut out,
            &mut scratch
        )
        .is_err()
    );
    assert!(out.iter().all(|&v| v == 7.0), "nothing written on error");
    // A cell state for a cell without one.
    let g = random_case(Cell::Gru, s, 3);
    let mut sg = vec![0.0; recurrent_saved_len(Cell::Gru, &s)];
    let mut scr = vec![0.0; recurrent_forward_scratch_len(Cell::Gru, &s)];
    assert!(
        recurrent_forward_views(
            &g.params(),
            &s,
            &g.x,
            None,
            Some(&[0.0; 10]),
            &mut out,
            None,
            None,
            &mut sg,
            &mut scr
        )
        .is_err()
    );
    // Backward: gradient buffers of the wrong size, a short scratch.
    let good = run::<Simd, f64>(&c);
    let mut dw_ih = vec![0.0; c.w_ih.len()];
    let mut dw_hh = vec![0.0; c.w_hh.len() - 1];
    let mut grads = RecurrentGrads {
        dw_ih: &mut dw_ih,
        dw_hh: &mut dw_hh,
        db_ih: None,
        db_hh: None,
    };
    let mut bs = vec![0.0; recurrent_backward_scratch_len(Cell::Lstm, &s)];
    let saved_ok = vec![0.0; recurrent_saved_len(Cell::Lstm, &s)];
    let r = recurrent_backward_views(
        &p, &s, &c.x, None, None, &good.out, &saved_ok, None, None, None, &mut grads, None, None,
        None, &mut bs,
    );
    assert!(r.is_err());
    assert!(dw_ih.iter().all(|&v| v == 0.0));
    // Step: an empty batch, a state of the wrong length.
    let mut hs = vec![0.0; 10];
    let mut st = vec![0.0; recurrent_step_scratch_len(Cell::Lstm, 2, 5)];
    assert!(recurrent_step_views(&p, 0, &[], &mut hs, None, &mut st).is_err());
    assert!(recurrent_step_views(&p, 2, &[0.0; 8], &mut hs[..9], None, &mut st).is_err());
    assert!(recurrent_step_views(&p, 2, &[0.0; 8], &mut hs, None, &mut st[..3]).is_err());
}

fn arr3<const A: usize, const B: usize, const C: usize>(v: &[f64]) -> [[[f64; C]; B]; A] {
    core::array::from_fn(|a| {
        core::array::from_fn(|b| core::array::from_fn(|c| v[(a * B + b) * C + c]))
    })
}

fn arr2<const A: usize, const B: usize>(v: &[f64]) -> [[f64; B]; A] {
    core::array::from_fn(|a| core::array::from_fn(|b| v[a * B + b]))
}

#[test]
fn const_face_matches_the_reference() {
    let c = case::<f64>("lstm_init");
    assert_eq!(c.shape, RnnShape::new(2, 4, 3, 5));
    let mut lstm = Lstm::<f64, 3, 5>::zeros(Cell::Lstm, true).unwrap();
    lstm.w_ih = arr3(&c.w_ih);
    lstm.w_hh = arr3(&c.w_hh);
    let (bi, bh) = c.b.clone().unwrap();
    lstm.b_ih = Some(arr2(&bi));
    lstm.b_hh = Some(arr2(&bh));
    let x: [[[f64; 3]; 4]; 2] = arr3(&c.x);
    let (h0, c0): ([[f64; 5]; 2], [[f64; 5]; 2]) =
        (arr2(c.h0.as_ref().unwrap()), arr2(c.c0.as_ref().unwrap()));
    let mut out = [[[0.0; 5]; 4]; 2];
    let (mut h_n, mut c_n) = ([[0.0; 5]; 2], [[0.0; 5]; 2]);
    let mut saved = [[[[0.0; 5]; 6]; 4]; 2];
    const SCRATCH: usize = recurrent_backward_scratch_len(Cell::Lstm, &RnnShape::new(2, 4, 3, 5));
    let mut scratch = [0.0; SCRATCH];
    lstm.forward(
        &x,
        Some(&h0),
        Some(&c0),
        &mut out,
        Some(&mut h_n),
        Some(&mut c_n),
        &mut saved,
        &mut scratch,
    )
    .unwrap();
    let (r, a) = ref_tol::<f64>();
    let k = |e: &str| format!("rnn/lstm_init/{e}");
    assert_close(
        "const out",
        out.as_flattened().as_flattened(),
        &want::<f64>(&k("out")),
        r,
        a,
    );
    assert_close(
        "const c_n",
        c_n.as_flattened(),
        &want::<f64>(&k("c_n")),
        r,
        a,
    );
    let mut grads = Lstm::<f64, 3, 5>::zeros(Cell::Lstm, true).unwrap();
    let mut dx = [[[0.0; 3]; 4]; 2];
    let (mut dh0, mut dc0) = ([[0.0; 5]; 2], [[0.0; 5]; 2]);
    lstm.backward(
        &x,
        Some(&h0),
        Some(&c0),
        &out,
        &saved,
        Some(&arr3(&c.dout)),
        Some(&arr2(&c.dh_n)),
        Some(&arr2(c.dc_n.as_ref().unwrap())),
        &mut grads,
        Some(&mut dx),
        Some(&mut dh0),
        Some(&mut dc0),
        &mut scratch,
    )
    .unwrap();
    for (e, got) in [
        ("dx", dx.as_flattened().as_flattened()),
        ("dw_ih", grads.w_ih.as_flattened().as_flattened()),
        ("dw_hh", grads.w_hh.as_flattened().as_flattened()),
        ("db_hh", grads.b_hh.as_ref().unwrap().as_flattened()),
        ("dh0", dh0.as_flattened()),
        ("dc0", dc0.as_flattened()),
    ] {
        assert_close(&format!("const {e}"), got, &want::<f64>(&k(e)), r, a);
    }
    grads.zero_grad();
    assert!(
        grads
            .w_hh
            .as_flattened()
            .as_flattened()
            .iter()
            .all(|&v| v == 0.0)
    );
    // A step of the const face; a saved buffer with the wrong block count and
    // a cell with another gate count are errors.
    let mut h = h0;
    let mut cs = c0;
    let mut step = [0.0; recurrent_step_scratch_len(Cell::Lstm, 2, 5)];
    let x0: [[f64; 3]; 2] = [x[0][0], x[1][0]];
    lstm.step(&x0, &mut h, Some(&mut cs), &mut step).unwrap();
    assert_close("const step", &h[0], &out[0][0], 1e-12, 1e-12);
    let mut wrong = [[[[0.0; 5]; 4]; 4]; 2];
    assert!(
        lstm.forward(
            &x,
            None,
            None,
            &mut out,
            None,
            None,
            &mut wrong,
            &mut scratch
        )
        .is_err()
    );
    assert!(Lstm::<f64, 3, 5>::zeros(Cell::Gru, true).is_err());
    assert!(Gru::<f64, 3, 5>::zeros(Cell::Gru, false).is_ok());
    assert!(Rnn::<f64, 3, 5>::zeros(Cell::RnnRelu, false).is_ok());
}

#[test]
fn runtime_face_matches_the_views() {
    for name in ["gru_init", "lstm_zero", "rnn_relu_init"] {
        let c = case::<f64>(name);
        let want_run = run::<Simd, f64>(&c);
        let s = c.shape;
        let mut layer =
            RecurrentDyn::<f64>::zeros(c.cell, s.input, s.hidden, c.b.is_some()).unwrap();
        // Backward before any forward pass is an error.
        assert!(layer.backward(None, None, None).is_err());
        layer.w_ih = c.w_ih.clone();
        layer.w_hh = c.w_hh.clone();
        layer.bias = c.b.clone();
        let y = layer
            .forward(&c.x, s.batch, s.seq, c.h0.as_deref(), c.c0.as_deref())
            .unwrap();
        assert_eq!(y.out, want_run.out);
        assert_eq!(y.h_n, want_run.h_n);
        // A wrong upstream gradient is an error and leaves the gradients alone.
        assert!(layer.backward(Some(&c.dout[1..]), None, None).is_err());
        assert!(layer.dw_hh.iter().all(|&v| v == 0.0));
        let g = layer
            .backward(Some(&c.dout), Some(&c.dh_n), c.dc_n.as_deref())
            .unwrap();
        assert_eq!(g.dx, want_run.dx);
        assert_eq!(layer.dw_ih, want_run.dw_ih);
        assert_eq!(layer.dw_hh, want_run.dw_hh);
        assert_eq!(g.dh0, want_run.dh0);
        if c.cell.has_cell_state() {
            assert_eq!(g.dc0.unwrap(), want_run.dc0);
            assert_eq!(y.c_n.unwrap(), want_run.c_n);
        }
        layer.zero_grad();
        assert!(layer.dw_ih.iter().all(|&v| v == 0.0));
        assert!(layer.forward(&c.x, s.batch, 0, None, None).is_err());
    }
    assert!(RecurrentDyn::<f32>::zeros(Cell::Lstm, 0, 4, true).is_err());
}
