//! Scalar ≡ Simd on random shapes: every kernel, f32 and f64, sizes including
//! 0, 1, lane width ± 1 and non-multiples, strided views. Tolerance: 1e-5·√n
//! relative in f32 (1e-12·√n in f64) against the scalar oracle, plus a small
//! absolute floor scaled by the magnitude of the terms.

use constml::{Accumulate, Backend, MatMut, MatRef, Real, Scalar, Simd};
use rand_core::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

fn uniform(rng: &mut Xoshiro256PlusPlus) -> f64 {
    (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
}

fn values<T: Real>(rng: &mut Xoshiro256PlusPlus, n: usize, scale: f64) -> Vec<T> {
    (0..n)
        .map(|_| T::from_f64((uniform(rng) * 2.0 - 1.0) * scale))
        .collect()
}

/// Interesting lengths for this element type's lane width.
fn lengths<T: Real>() -> Vec<usize> {
    let l = T::LANES;
    let mut v = vec![
        0,
        1,
        2,
        3,
        l - 1,
        l,
        l + 1,
        2 * l - 1,
        2 * l + 1,
        8 * l,
        8 * l + 3,
    ];
    v.extend([31, 64, 100, 257, 1000, 1031]);
    v
}

fn rel_tol<T: Real>(n: usize) -> f64 {
    let base = if T::BYTES == 4 { 1e-5 } else { 1e-12 };
    base * (n.max(1) as f64).sqrt()
}

#[track_caller]
fn close<T: Real>(what: &str, got: &[T], want: &[T], n_terms: usize, magnitude: f64) {
    assert_eq!(got.len(), want.len());
    let rtol = rel_tol::<T>(n_terms);
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let (g, w) = (g.as_f64(), w.as_f64());
        if g == w || (g.is_nan() && w.is_nan()) {
            continue;
        }
        let atol = rtol * magnitude;
        assert!(
            (g - w).abs() <= atol + rtol * w.abs(),
            "{what}[{i}] (n = {n_terms}): simd {g:e} vs scalar {w:e}"
        );
    }
}

fn vector_kernels<T: Real>() {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(7);
    for n in lengths::<T>() {
        let a = values::<T>(&mut rng, n, 1.0);
        let b = values::<T>(&mut rng, n, 1.0);
        let d = [Simd::dot(&a, &b).unwrap()];
        close("dot", &d, &[Scalar::dot(&a, &b).unwrap()], n, n as f64);
        close("sum", &[Simd::sum(&a)], &[Scalar::sum(&a)], n, n as f64);

        let alpha = T::from_f64(0.75);
        let (mut y1, mut y2) = (b.clone(), b.clone());
        Simd::axpy(alpha, &a, &mut y1).unwrap();
        Scalar::axpy(alpha, &a, &mut y2).unwrap();
        close("axpy", &y1, &y2, 2, 2.0);

        let (mut y1, mut y2) = (b.clone(), b.clone());
        Simd::add(&mut y1, &a).unwrap();
        Scalar::add(&mut y2, &a).unwrap();
        assert_eq!(y1, y2, "add is exact");
        let (mut y1, mut y2) = (b.clone(), b.clone());
        Simd::mul(&mut y1, &a).unwrap();
        Scalar::mul(&mut y2, &a).unwrap();
        assert_eq!(y1, y2, "mul is exact");
        let (mut y1, mut y2) = (a.clone(), a.clone());
        Simd::scale(alpha, &mut y1);
        Scalar::scale(alpha, &mut y2);
        assert_eq!(y1, y2, "scale is exact");

        if n > 0 {
            assert_eq!(Simd::max(&a).unwrap(), Scalar::max(&a).unwrap());
            assert_eq!(Simd::argmax(&a).unwrap(), Scalar::argmax(&a).unwrap());
        } else {
            assert!(Simd::max(&a).is_err() && Scalar::argmax(&a).is_err());
        }

        let logits = values::<T>(&mut rng, n, 20.0);
        let (mut p1, mut p2) = (logits.clone(), logits.clone());
        Simd::softmax(&mut p1);
        Scalar::softmax(&mut p2);
        close("softmax", &p1, &p2, n, 1.0);
        let (mut p1, mut p2) = (logits.clone(), logits.clone());
        Simd::log_softmax(&mut p1);
        Scalar::log_softmax(&mut p2);
        close("log_softmax", &p1, &p2, n, 40.0);

        let x = values::<T>(&mut rng, n, 8.0);
        type Act<T> = (&'static str, fn(&mut [T]), fn(&mut [T]));
        let acts: [Act<T>; 6] = [
            ("relu", Simd::relu::<T>, Scalar::relu::<T>),
            ("sigmoid", Simd::sigmoid::<T>, Scalar::sigmoid::<T>),
            ("tanh", Simd::tanh::<T>, Scalar::tanh::<T>),
            ("silu", Simd::silu::<T>, Scalar::silu::<T>),
            ("gelu", Simd::gelu::<T>, Scalar::gelu::<T>),
            ("gelu_tanh", Simd::gelu_tanh::<T>, Scalar::gelu_tanh::<T>),
        ];
        for (name, fs, fr) in acts {
            let (mut v1, mut v2) = (x.clone(), x.clone());
            fs(&mut v1);
            fr(&mut v2);
            close(name, &v1, &v2, 4, 1.0);
        }
    }
}

fn dims<T: Real>() -> Vec<usize> {
    let l = T::LANES;
    vec![0, 1, 2, l - 1, l, l + 1, 2 * l, 4 * l, 4 * l + 3, 67]
}

fn matrix_kernels<T: Real>() {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(11);
    let ds = dims::<T>();
    for &m in &ds {
        for &k in &ds {
            for &n in &ds {
                // Strided views: each matrix lives inside a wider buffer.
                let pad = 3;
                let a_buf = values::<T>(&mut rng, m * (k + pad) + pad, 1.0);
                let a = MatRef::with_stride(&a_buf[pad..], m, k, k + pad).unwrap();
                let b_buf = values::<T>(&mut rng, k * (n + pad), 1.0);
                let b = MatRef::with_stride(&b_buf, k, n, n + pad).unwrap();
                let bt_buf = values::<T>(&mut rng, n * (k + 1), 1.0);
                let bt = MatRef::with_stride(&bt_buf, n, k, k + 1).unwrap();
                let c0 = values::<T>(&mut rng, m * (n + 2), 1.0);
                let stride = n + 2;
                for acc in [Accumulate::Overwrite, Accumulate::Add] {
                    let (mut c1, mut c2) = (c0.clone(), c0.clone());
                    Simd::gemm(
                        a,
                        b,
                        MatMut::with_stride(&mut c1, m, n, stride).unwrap(),
                        acc,
                    )
                    .unwrap();
                    Scalar::gemm(
                        a,
                        b,
                        MatMut::with_stride(&mut c2, m, n, stride).unwrap(),
                        acc,
                    )
                    .unwrap();
                    close("gemm", &c1, &c2, k, k as f64 + 1.0);
                    let (mut c1, mut c2) = (c0.clone(), c0.clone());
                    Simd::gemm_bt(
                        a,
                        bt,
                        MatMut::with_stride(&mut c1, m, n, stride).unwrap(),
                        acc,
                    )
                    .unwrap();
                    Scalar::gemm_bt(
                        a,
                        bt,
                        MatMut::with_stride(&mut c2, m, n, stride).unwrap(),
                        acc,
                    )
                    .unwrap();
                    close("gemm_bt", &c1, &c2, k, k as f64 + 1.0);
                }
                // matvec: weights (OUT = m, IN = k).
                let x = values::<T>(&mut rng, k, 1.0);
                // NaN start: an output the kernel forgets to write stays NaN.
                let (mut y1, mut y2) = (vec![T::NAN; m], vec![T::NAN; m]);
                Simd::matvec(a, &x, &mut y1, Accumulate::Overwrite).unwrap();
                Scalar::matvec(a, &x, &mut y2, Accumulate::Overwrite).unwrap();
                assert!(
                    y1.iter().all(|v| !v.is_nan()),
                    "matvec left outputs unwritten"
                );
                close("matvec", &y1, &y2, k, k as f64 + 1.0);
                // A dense, unpadded weight view (it may hold no data at all when k = 0).
                let w_dense = values::<T>(&mut rng, m * k, 1.0);
                let wd = MatRef::new(&w_dense, m, k).unwrap();
                let (mut y1, mut y2) = (vec![T::NAN; m], vec![T::NAN; m]);
                Simd::matvec(wd, &x, &mut y1, Accumulate::Overwrite).unwrap();
                Scalar::matvec(wd, &x, &mut y2, Accumulate::Overwrite).unwrap();
                assert!(
                    y1.iter().all(|v| !v.is_nan()),
                    "matvec left outputs unwritten"
                );
                close("matvec dense", &y1, &y2, k, k as f64 + 1.0);
            }
        }
    }
    // A larger product that crosses the depth blocking of the SIMD gemm.
    let (m, k, n) = (37, 300, 70);
    let a = values::<T>(&mut rng, m * k, 1.0);
    let b = values::<T>(&mut rng, k * n, 1.0);
    let (mut c1, mut c2) = (vec![T::ZERO; m * n], vec![T::ZERO; m * n]);
    let av = MatRef::new(&a, m, k).unwrap();
    let bv = MatRef::new(&b, k, n).unwrap();
    Simd::gemm(
        av,
        bv,
        MatMut::new(&mut c1, m, n).unwrap(),
        Accumulate::Overwrite,
    )
    .unwrap();
    Scalar::gemm(
        av,
        bv,
        MatMut::new(&mut c2, m, n).unwrap(),
        Accumulate::Overwrite,
    )
    .unwrap();
    close("gemm deep", &c1, &c2, k, k as f64);
}

#[test]
fn vector_kernels_f32() {
    vector_kernels::<f32>();
}
#[test]
fn vector_kernels_f64() {
    vector_kernels::<f64>();
}
#[test]
fn matrix_kernels_f32() {
    matrix_kernels::<f32>();
}
#[test]
fn matrix_kernels_f64() {
    matrix_kernels::<f64>();
}

#[test]
fn argmax_takes_the_lowest_index_on_ties_in_both_backends() {
    let mut x = vec![0.0f32; 100];
    x[37] = 2.0;
    x[38] = 2.0;
    x[99] = 2.0;
    assert_eq!(Simd::argmax(&x).unwrap(), 37);
    assert_eq!(Scalar::argmax(&x).unwrap(), 37);
    let all_neg_inf = [f32::NEG_INFINITY; 19];
    assert_eq!(Simd::argmax(&all_neg_inf).unwrap(), 0);
}

#[test]
fn nan_is_an_error_for_max_and_argmax_and_propagates_elsewhere() {
    for pos in [0usize, 5, 16, 33] {
        let mut x = vec![1.0f32; 34];
        x[pos] = f32::NAN;
        assert_eq!(Simd::argmax(&x), Err(constml::Error::NaN { what: "max" }));
        assert_eq!(Scalar::argmax(&x), Err(constml::Error::NaN { what: "max" }));
        let mut s = x.clone();
        Simd::softmax(&mut s);
        assert!(s.iter().all(|v| v.is_nan()));
        let mut s = x.clone();
        Simd::relu(&mut s);
        assert!(s[pos].is_nan());
    }
}

#[test]
fn fully_masked_rows_give_zeros_not_nan() {
    for n in [1usize, 15, 16, 17, 40] {
        let mut x = vec![f64::NEG_INFINITY; n];
        Simd::softmax(&mut x);
        assert!(x.iter().all(|&v| v == 0.0));
        let mut x = vec![f32::NEG_INFINITY; n];
        Scalar::softmax(&mut x);
        assert!(x.iter().all(|&v| v == 0.0));
        let mut x = vec![f32::NEG_INFINITY; n];
        Simd::log_softmax(&mut x);
        assert!(x.iter().all(|&v| v == f32::NEG_INFINITY));
    }
}

#[test]
fn mismatched_shapes_are_errors() {
    let a = [0.0f32; 6];
    let mut c = [0.0f32; 4];
    let av = MatRef::new(&a, 2, 3).unwrap();
    let bv = MatRef::new(&a, 2, 3).unwrap();
    assert!(Simd::gemm(av, bv, MatMut::new(&mut c, 2, 2).unwrap(), Accumulate::Add).is_err());
    assert!(Simd::gemm_bt(av, bv, MatMut::new(&mut c, 2, 2).unwrap(), Accumulate::Add).is_ok());
    let mut c3 = [0.0f32; 6];
    assert!(Simd::gemm_bt(av, bv, MatMut::new(&mut c3, 2, 3).unwrap(), Accumulate::Add).is_err());
    let mut y = [0.0f32; 3];
    assert!(Simd::matvec(av, &[1.0; 3], &mut y, Accumulate::Overwrite).is_err());
    assert!(Simd::matvec(av, &[1.0; 2], &mut y[..2], Accumulate::Overwrite).is_err());
    assert!(Scalar::axpy(1.0, &[1.0f32; 3], &mut y[..2]).is_err());
    assert!(Simd::add(&mut y, &[1.0; 4]).is_err());
}
