//! The runtime matrix face and the views on arbitrary shapes and strides.
//!
//! Invariants: a view is accepted exactly when its buffer reaches its last
//! element and (with elements) its stride covers a row; `row`, `row_range` and
//! `col_range` give the elements the layout names; every kernel (`gemm`,
//! `gemm_bt`, `gemm_at`, `matvec`, `col_sums`, `ger`, overwrite and add) on
//! strided views equals an f64 loop within the standard rounding bound and
//! leaves the padding between rows untouched, on both backends; shape
//! mismatches are `Err` with the output untouched; `Matrix`'s products and
//! row softmaxes agree with the kernels.
#![no_main]
// Index loops mirror the formulas they check.
#![allow(clippy::needless_range_loop)]

use constml::{Accumulate, Backend, MatMut, MatRef, Matrix, Scalar, Simd};
use constml_fuzz::{Input, stat};
use libfuzzer_sys::fuzz_target;

/// A strided `(rows, cols)` buffer: `(data, stride)` with every element set.
fn strided(inp: &mut Input, rows: usize, cols: usize) -> (Vec<f32>, usize) {
    let stride = cols + inp.range(0, 3);
    let len = if rows == 0 {
        inp.range(0, 3)
    } else {
        (rows - 1) * stride + cols + inp.range(0, 2)
    };
    (inp.vec(len, |i| i.small_f32()), stride)
}

fn at(d: &[f32], stride: usize, i: usize, j: usize) -> f64 {
    d[i * stride + j] as f64
}

fuzz_target!(|data: &[u8]| {
    let mut inp = Input::new(data);
    views(&mut inp);
    let (m, k, n) = (inp.range(0, 9), inp.range(0, 9), inp.range(0, 9));
    let mode = if inp.bool() {
        Accumulate::Add
    } else {
        Accumulate::Overwrite
    };
    kernels::<Simd>(&mut inp, m, k, n, mode);
    kernels::<Scalar>(&mut inp, m, k, n, mode);
    owned(&mut inp);
});

/// View construction and sub-views against the layout rule.
fn views(inp: &mut Input) {
    let len = inp.range(0, 40);
    let data: Vec<f32> = (0..len).map(|i| i as f32).collect();
    let (rows, cols, stride) = (inp.range(0, 8), inp.range(0, 8), inp.range(0, 10));
    let got = MatRef::with_stride(&data, rows, cols, stride);
    let elements = rows > 0 && cols > 0;
    let ok = !elements || (stride >= cols && (rows - 1) * stride + cols <= len);
    assert_eq!(
        got.is_ok(),
        ok,
        "({rows}, {cols}) stride {stride} over {len}"
    );
    let Ok(v) = got else { return };
    for i in 0..rows {
        let r = v.row(i).unwrap();
        assert_eq!(r.len(), cols);
        for (j, x) in r.iter().enumerate() {
            assert_eq!(*x, (i * stride + j) as f32);
        }
    }
    assert!(v.row(rows).is_none());
    let (r0, rl, c0, cl) = (
        inp.range(0, 8),
        inp.range(0, 8),
        inp.range(0, 8),
        inp.range(0, 8),
    );
    match v.row_range(r0, rl) {
        Ok(s) => {
            assert!(r0 + rl <= rows);
            for i in 0..rl {
                assert_eq!(s.row(i), v.row(r0 + i));
            }
        }
        Err(_) => assert!(r0 + rl > rows),
    }
    match v.col_range(c0, cl) {
        Ok(s) => {
            assert!(c0 + cl <= cols);
            for i in 0..rows {
                assert_eq!(s.row(i).unwrap(), &v.row(i).unwrap()[c0..c0 + cl]);
            }
        }
        Err(_) => assert!(c0 + cl > cols),
    }
    stat("view");
}

fn kernels<B: Backend>(inp: &mut Input, m: usize, k: usize, n: usize, mode: Accumulate) {
    let (a, sa) = strided(inp, m, k);
    let (b, sb) = strided(inp, k, n);
    let (bt, sbt) = strided(inp, n, k);
    let (at_, sat) = strided(inp, k, m);
    let (c0, sc) = strided(inp, m, n);
    let av = MatRef::with_stride(&a, m, k, sa).unwrap();
    let bv = MatRef::with_stride(&b, k, n, sb).unwrap();
    let btv = MatRef::with_stride(&bt, n, k, sbt).unwrap();
    let atv = MatRef::with_stride(&at_, k, m, sat).unwrap();
    let add = mode == Accumulate::Add;
    // Each product, checked against f64 with the bound n·ε·Σ|aᵢbᵢ| per output
    // (plus the added C); the padding must come back unchanged.
    let check = |what: &str, c: &[f32], prod: &dyn Fn(usize, usize) -> (f64, f64)| {
        for i in 0..m {
            for j in 0..n {
                let (want, mag) = prod(i, j);
                let base = if add { c0[i * sc + j] as f64 } else { 0.0 };
                let want = want + base;
                let tol = (k as f64 + 2.0) * 1.2e-7 * (mag + base.abs()) + 1e-30;
                let got = c[i * sc + j] as f64;
                assert!(
                    (got - want).abs() <= tol,
                    "{what} ({m},{k},{n}) [{i},{j}]: {got} vs {want}"
                );
            }
        }
        for (idx, (x, y)) in c.iter().zip(&c0).enumerate() {
            let (i, j) = (idx / sc.max(1), idx % sc.max(1));
            if !(i < m && j < n) {
                assert_eq!(x.to_bits(), y.to_bits(), "{what}: padding {idx} changed");
            }
        }
    };
    let dot = |f: &dyn Fn(usize) -> (f64, f64)| -> (f64, f64) {
        (0..k)
            .map(f)
            .fold((0.0, 0.0), |(s, g), (x, y)| (s + x * y, g + (x * y).abs()))
    };
    let mut c = c0.clone();
    B::gemm(av, bv, MatMut::with_stride(&mut c, m, n, sc).unwrap(), mode).unwrap();
    check("gemm", &c, &|i, j| {
        dot(&|p| (at(&a, sa, i, p), at(&b, sb, p, j)))
    });
    let mut c = c0.clone();
    B::gemm_bt(
        av,
        btv,
        MatMut::with_stride(&mut c, m, n, sc).unwrap(),
        mode,
    )
    .unwrap();
    check("gemm_bt", &c, &|i, j| {
        dot(&|p| (at(&a, sa, i, p), at(&bt, sbt, j, p)))
    });
    let mut c = c0.clone();
    B::gemm_at(
        atv,
        bv,
        MatMut::with_stride(&mut c, m, n, sc).unwrap(),
        mode,
    )
    .unwrap();
    check("gemm_at", &c, &|i, j| {
        dot(&|p| (at(&at_, sat, p, i), at(&b, sb, p, j)))
    });

    // Mismatched inner dimensions: Err, C untouched.
    if k > 0 {
        let short = MatRef::with_stride(&b, k - 1, n, sb).unwrap();
        let mut c = c0.clone();
        assert!(
            B::gemm(
                av,
                short,
                MatMut::with_stride(&mut c, m, n, sc).unwrap(),
                mode
            )
            .is_err()
        );
        assert_eq!(c, c0);
    }

    // matvec (W = A (m, k), x of k) and col_sums (of A into k).
    let x: Vec<f32> = inp.vec(k, |i| i.small_f32());
    let y0: Vec<f32> = inp.vec(m, |i| i.small_f32());
    let mut y = y0.clone();
    B::matvec(av, &x, &mut y, mode).unwrap();
    for i in 0..m {
        let (s, g) = dot(&|p| (at(&a, sa, i, p), x[p] as f64));
        let base = if add { y0[i] as f64 } else { 0.0 };
        let tol = (k as f64 + 2.0) * 1.2e-7 * (g + base.abs());
        assert!((y[i] as f64 - s - base).abs() <= tol, "matvec");
    }
    assert!(B::matvec(av, &x, &mut vec![0.0; m + 1], mode).is_err());
    let mut cs = vec![1.0f32; k];
    B::col_sums(av, &mut cs, mode).unwrap();
    for p in 0..k {
        let s: f64 = (0..m).map(|i| at(&a, sa, i, p)).sum();
        let base = if add { 1.0 } else { 0.0 };
        assert!(
            (cs[p] as f64 - s - base).abs() <= (m as f64 + 2.0) * 1.2e-7 * (8.0 * m as f64 + 1.0)
        );
    }
    // ger: C += α·x·yᵀ with C (k, m).
    let alpha = inp.small_f32();
    let yv: Vec<f32> = inp.vec(m, |i| i.small_f32());
    let (g0, sg) = strided(inp, k, m);
    let mut g = g0.clone();
    B::ger(
        alpha,
        &x,
        &yv,
        MatMut::with_stride(&mut g, k, m, sg).unwrap(),
    )
    .unwrap();
    for p in 0..k {
        for i in 0..m {
            let want = g0[p * sg + i] as f64 + alpha as f64 * x[p] as f64 * yv[i] as f64;
            assert!(
                (g[p * sg + i] as f64 - want).abs() <= 1e-6 * (1.0 + want.abs()),
                "ger"
            );
        }
    }
    stat("kernels");
}

/// `Matrix` products and row softmaxes against the view kernels.
fn owned(inp: &mut Input) {
    let (m, k, n) = (inp.range(0, 6), inp.range(0, 6), inp.range(0, 6));
    let a = Matrix::from_vec(m, k, inp.vec(m * k, |i| i.any_f32())).unwrap();
    let b = Matrix::from_vec(k, n, inp.vec(k * n, |i| i.small_f32())).unwrap();
    assert!(Matrix::<f32>::from_vec(m, k + 1, vec![0.0; m * k]).is_err() || m == 0);
    let c = a.matmul(&b).unwrap();
    assert_eq!(c.shape(), (m, n));
    let mut c2 = vec![0.0f32; m * n];
    Simd::gemm(
        a.view(),
        b.view(),
        MatMut::new(&mut c2, m, n).unwrap(),
        Accumulate::Overwrite,
    )
    .unwrap();
    assert!(
        c.as_slice()
            .iter()
            .zip(&c2)
            .all(|(x, y)| x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan()))
    );
    if k != n {
        assert!(a.matmul(&a).is_err() || k == m);
    }
    let bt = Matrix::from_vec(n, k, inp.vec(n * k, |i| i.small_f32())).unwrap();
    assert_eq!(a.matmul_bt(&bt).unwrap().shape(), (m, n));
    let x: Vec<f32> = inp.vec(k, |i| i.small_f32());
    assert_eq!(a.matvec(&x).unwrap().len(), m);
    assert!(a.matvec(&[0.0; 7]).is_err() || k == 7);
    // Row softmax: finite rows give probabilities summing to 1; log-softmax
    // is its logarithm.
    let mut s = a.clone();
    s.softmax_rows();
    let mut l = a.clone();
    l.log_softmax_rows();
    for i in 0..m {
        let row = a.row(i).unwrap();
        let (p, lp) = (s.row(i).unwrap(), l.row(i).unwrap());
        if row.iter().all(|v| v.is_finite()) && k > 0 {
            let sum: f64 = p.iter().map(|&v| v as f64).sum();
            assert!((sum - 1.0).abs() < 1e-5, "softmax row sums to {sum}");
            for (pv, lv) in p.iter().zip(lp) {
                assert!(*pv >= 0.0 && *pv <= 1.0);
                assert!(
                    ((*lv as f64).exp() - *pv as f64).abs() <= 1e-5,
                    "{lv} vs {pv}"
                );
            }
            stat("softmax row");
        }
    }
}
