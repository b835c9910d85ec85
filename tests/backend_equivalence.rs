//! Scalar ≡ Simd on random shapes: every kernel, f32 and f64, sizes including
//! 0, 1, lane width ± 1 and non-multiples, strided views (one-row views with a
//! stride past the buffer's end included).
//!
//! Tolerances, per output:
//! * sums of `n` products (dot, sum, gemm, A·Bᵀ, matvec): the standard rounding
//!   bound. Each backend is within `γ_n·Σ|aᵢ·bᵢ|` of the exact value
//!   (`γ_n = n·ε/(1 − n·ε)`), whatever its summation order, so the two differ by
//!   at most `2·γ_(n+1)·(Σ|aᵢ·bᵢ| + |c₀|)` (`c₀`: the accumulated output);
//! * element-wise maps (softmax, activations): a few units of relative
//!   rounding, independent of the length (see `elementwise`).

use constml::backend::{Transpose, gemm_scratch_len};
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

/// `2·γ_(n+1)` for this element type.
fn two_gamma<T: Real>(n: usize) -> f64 {
    let ne = (n as f64 + 1.0) * T::EPSILON.as_f64();
    2.0 * ne / (1.0 - ne)
}

/// Each output within its own bound of the scalar oracle.
#[track_caller]
fn within<T: Real>(what: &str, got: &[T], want: &[T], bound: impl Fn(usize) -> f64) {
    assert_eq!(got.len(), want.len());
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let (g, w) = (g.as_f64(), w.as_f64());
        if g == w || (g.is_nan() && w.is_nan()) {
            continue;
        }
        let b = bound(i);
        assert!(
            (g - w).abs() <= b,
            "{what}[{i}]: simd {g:e} vs scalar {w:e}, |diff| {:e} > bound {b:e}",
            (g - w).abs()
        );
    }
}

/// Element-wise results: `k` units of relative rounding (`k·ε·|value|`), with
/// an absolute floor `k·ε·floor` for results that are rounding residue near 0.
#[track_caller]
fn elementwise<T: Real>(what: &str, got: &[T], want: &[T], k: f64, floor: f64) {
    let eps = T::EPSILON.as_f64();
    within(what, got, want, |i| {
        k * eps * (want[i].as_f64().abs().max(got[i].as_f64().abs()) + floor)
    });
}

fn vector_kernels<T: Real>() {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(7);
    for n in lengths::<T>() {
        let a = values::<T>(&mut rng, n, 1.0);
        let b = values::<T>(&mut rng, n, 1.0);
        let d = [Simd::dot(&a, &b).unwrap()];
        let abs_ab: f64 = a
            .iter()
            .zip(&b)
            .map(|(x, y)| (x.as_f64() * y.as_f64()).abs())
            .sum();
        let abs_a: f64 = a.iter().map(|x| x.as_f64().abs()).sum();
        within("dot", &d, &[Scalar::dot(&a, &b).unwrap()], |_| {
            two_gamma::<T>(n) * abs_ab
        });
        within("sum", &[Simd::sum(&a)], &[Scalar::sum(&a)], |_| {
            two_gamma::<T>(n) * abs_a
        });

        let alpha = T::from_f64(0.75);
        let (mut y1, mut y2) = (b.clone(), b.clone());
        Simd::axpy(alpha, &a, &mut y1).unwrap();
        Scalar::axpy(alpha, &a, &mut y2).unwrap();
        // y + α·x: one product and one sum, possibly fused on one side.
        within("axpy", &y1, &y2, |i| {
            two_gamma::<T>(2) * (b[i].as_f64().abs() + 0.75 * a[i].as_f64().abs())
        });

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
        // e^(x − max) (vector exp within 2 ulp of libm), divided by a sum of
        // n positive terms: relative error (n + 8)·ε on each side.
        elementwise("softmax", &p1, &p2, 2.0 * (n as f64 + 8.0), 0.0);
        let (mut p1, mut p2) = (logits.clone(), logits.clone());
        Simd::log_softmax(&mut p1);
        Scalar::log_softmax(&mut p2);
        // (x − max) − ln Σ: the log of the sum above, subtracted from a value
        // of magnitude up to 40.
        elementwise("log_softmax", &p1, &p2, 2.0 * (n as f64 + 8.0), 40.0);

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
            // One formula per element on each side (Scalar: libm; Simd: the
            // lane formulas): a fixed number of rounding steps, whatever n.
            elementwise(name, &v1, &v2, 64.0, 1.0);
        }
    }
}

fn dims<T: Real>() -> Vec<usize> {
    let l = T::LANES;
    vec![0, 1, 2, l - 1, l, l + 1, 2 * l, 4 * l, 4 * l + 3, 67]
}

/// A view of `rows × cols` with row stride `stride` over a buffer that ends
/// exactly at the last element (so a one-row view may have a stride far past
/// the buffer's end); `off` elements of padding in front.
fn tight_view<T: Real>(
    rng: &mut Xoshiro256PlusPlus,
    rows: usize,
    cols: usize,
    stride: usize,
    off: usize,
) -> Vec<T> {
    let need = if rows == 0 || cols == 0 {
        0
    } else {
        (rows - 1) * stride + cols
    };
    values::<T>(rng, off + need, 1.0)
}

/// `Σ_p |a_ip·b_pj|` (b given as rows of Bᵀ when `bt`) for every output.
fn abs_products<T: Real>(a: MatRef<'_, T>, b: MatRef<'_, T>, bt: bool) -> Vec<f64> {
    let (m, k) = a.shape();
    let n = if bt { b.rows() } else { b.cols() };
    let mut out = vec![0.0; m * n];
    for i in 0..m {
        for j in 0..n {
            let mut s = 0.0;
            for p in 0..k {
                let bv = if bt {
                    b.row(j).unwrap()[p]
                } else {
                    b.row(p).unwrap()[j]
                };
                s += (a.row(i).unwrap()[p].as_f64() * bv.as_f64()).abs();
            }
            out[i * n + j] = s;
        }
    }
    out
}

fn matrix_kernels<T: Real>() {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(11);
    let ds = dims::<T>();
    for &m in &ds {
        for &k in &ds {
            for &n in &ds {
                // Strided views over tight buffers: one row keeps a long stride
                // (the rule is stride ≥ cols, and the row must be whole).
                let pad = 3;
                let sa = if m == 1 { k + 29 } else { k + pad };
                let a_buf = tight_view::<T>(&mut rng, m, k, sa, pad);
                let a = MatRef::with_stride(&a_buf[pad..], m, k, sa).unwrap();
                let sb = if k == 1 { n + 17 } else { n + pad };
                let b_buf = tight_view::<T>(&mut rng, k, n, sb, 0);
                let b = MatRef::with_stride(&b_buf, k, n, sb).unwrap();
                let st = if n == 1 { k + 13 } else { k + 1 };
                let bt_buf = tight_view::<T>(&mut rng, n, k, st, 0);
                let bt = MatRef::with_stride(&bt_buf, n, k, st).unwrap();
                let c0 = values::<T>(&mut rng, m * (n + 2), 1.0);
                let stride = n + 2;
                let (ab, abt) = (abs_products(a, b, false), abs_products(a, bt, true));
                // Output (i, j) sits at i·stride + j of C's buffer.
                let bound = |abs: &[f64], acc: Accumulate, idx: usize| {
                    let (i, j) = (idx / stride, idx % stride);
                    if j >= n {
                        return 0.0; // padding: must stay untouched
                    }
                    let c = if acc == Accumulate::Add {
                        c0[idx].as_f64().abs()
                    } else {
                        0.0
                    };
                    two_gamma::<T>(k + 1) * (abs[i * n + j] + c)
                };
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
                    within("gemm", &c1, &c2, |i| bound(&ab, acc, i));
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
                    within("gemm_bt", &c1, &c2, |i| bound(&abt, acc, i));
                }
                // matvec: weights (OUT = m, IN = k).
                let x = values::<T>(&mut rng, k, 1.0);
                let xm = MatRef::new(&x, 1, k).unwrap();
                let wx = abs_products(xm, a, true); // Σ_p |a_ip·x_p| per output i
                // NaN start: an output the kernel forgets to write stays NaN.
                let (mut y1, mut y2) = (vec![T::NAN; m], vec![T::NAN; m]);
                Simd::matvec(a, &x, &mut y1, Accumulate::Overwrite).unwrap();
                Scalar::matvec(a, &x, &mut y2, Accumulate::Overwrite).unwrap();
                assert!(
                    y1.iter().all(|v| !v.is_nan()),
                    "matvec left outputs unwritten"
                );
                within("matvec", &y1, &y2, |i| two_gamma::<T>(k) * wx[i]);
                // A dense, unpadded weight view (it may hold no data at all when k = 0).
                let w_dense = values::<T>(&mut rng, m * k, 1.0);
                let wd = MatRef::new(&w_dense, m, k).unwrap();
                let wx = abs_products(xm, wd, true);
                let (mut y1, mut y2) = (vec![T::NAN; m], vec![T::NAN; m]);
                Simd::matvec(wd, &x, &mut y1, Accumulate::Overwrite).unwrap();
                Scalar::matvec(wd, &x, &mut y2, Accumulate::Overwrite).unwrap();
                assert!(
                    y1.iter().all(|v| !v.is_nan()),
                    "matvec left outputs unwritten"
                );
                within("matvec dense", &y1, &y2, |i| two_gamma::<T>(k) * wx[i]);
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
    let abs = abs_products(av, bv, false);
    within("gemm deep", &c1, &c2, |i| two_gamma::<T>(k) * abs[i]);
}

/// Products that cross the SIMD gemm's blocking: depths around its panel
/// depth (256), row counts around its tile sizes (12, 8, 4, 2, 1), widths
/// around whole vectors and two-vector panels, B small enough to be read in
/// place or not, a few rows against a large B — for `A·B`, `A·Bᵀ` and
/// `Aᵀ·B`, on strided views, overwriting and adding.
fn blocked_products<T: Real>() {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(29);
    let l = T::LANES;
    for &(m, k, n) in &[
        (25usize, 255usize, 2 * l),
        (13, 256, 2 * l + 1),
        (9, 257, 3 * l + 5),
        (4, 600, 8 * l),
        (5, 513, l),
        (30, 520, 5 * l + 3),
        (1, 300, 4 * l + 3),
        (30, 40, 6 * l),
        (12, 1, 2 * l - 1),
        (7, 64, 1),
        (3, 2, 5),
    ] {
        // Rows 4 KiB apart (A packed in blocks: they would alias in L1) for
        // the deepest shapes, a few elements of padding otherwise.
        let unit = 4096 / T::BYTES;
        let sa = if k > 500 {
            k.div_ceil(unit) * unit
        } else {
            k + 3
        };
        let (sb, sc) = (n + 5, n + 2);
        let a_buf = tight_view::<T>(&mut rng, m, k, sa, 0);
        let a = MatRef::with_stride(&a_buf, m, k, sa).unwrap();
        let b_buf = tight_view::<T>(&mut rng, k, n, sb, 0);
        let b = MatRef::with_stride(&b_buf, k, n, sb).unwrap();
        // Bᵀ and Aᵀ stored densely, holding the same values as B and A.
        let bt_buf: Vec<T> = (0..n * k).map(|i| b_buf[(i % k) * sb + i / k]).collect();
        let bt = MatRef::new(&bt_buf, n, k).unwrap();
        // Aᵀ's rows 4 KiB apart as well for the deepest shapes.
        let st = if k > 500 { unit } else { m };
        let mut at_buf = vec![T::NAN; (k - 1) * st + m];
        for p in 0..k {
            for i in 0..m {
                at_buf[p * st + i] = a_buf[i * sa + p];
            }
        }
        let at = MatRef::with_stride(&at_buf, k, m, st).unwrap();
        let abs = abs_products(a, b, false);
        let c0 = values::<T>(&mut rng, m * sc, 1.0);
        let bound = |acc: Accumulate, idx: usize| {
            let (i, j) = (idx / sc, idx % sc);
            if j >= n {
                return 0.0; // padding: must stay untouched
            }
            let c = if acc == Accumulate::Add {
                c0[idx].as_f64().abs()
            } else {
                0.0
            };
            two_gamma::<T>(k + 1) * (abs[i * n + j] + c)
        };
        for acc in [Accumulate::Overwrite, Accumulate::Add] {
            let mut want = c0.clone();
            Scalar::gemm(a, b, MatMut::with_stride(&mut want, m, n, sc).unwrap(), acc).unwrap();
            let mut got = c0.clone();
            Simd::gemm(a, b, MatMut::with_stride(&mut got, m, n, sc).unwrap(), acc).unwrap();
            within("blocked gemm", &got, &want, |i| bound(acc, i));
            let mut got = c0.clone();
            Simd::gemm_bt(a, bt, MatMut::with_stride(&mut got, m, n, sc).unwrap(), acc).unwrap();
            within("blocked gemm_bt", &got, &want, |i| bound(acc, i));
            let mut got = c0.clone();
            Simd::gemm_at(at, b, MatMut::with_stride(&mut got, m, n, sc).unwrap(), acc).unwrap();
            within("blocked gemm_at", &got, &want, |i| bound(acc, i));
            // The same four ways through gemm_op with a caller's scratch
            // (poisoned: none of it may be read), Aᵀ·Bᵀ included.
            for (x, tx) in [(a, Transpose::AsStored), (at, Transpose::Transposed)] {
                for (y, ty) in [(b, Transpose::AsStored), (bt, Transpose::Transposed)] {
                    let mut scratch = vec![T::NAN; gemm_scratch_len::<T>()];
                    let mut got = c0.clone();
                    let cm = MatMut::with_stride(&mut got, m, n, sc).unwrap();
                    Simd::gemm_op(x, tx, y, ty, cm, acc, &mut scratch).unwrap();
                    within("gemm_op simd", &got, &want, |i| bound(acc, i));
                    let mut got = c0.clone();
                    let cm = MatMut::with_stride(&mut got, m, n, sc).unwrap();
                    Scalar::gemm_op(x, tx, y, ty, cm, acc, &mut scratch).unwrap();
                    within("gemm_op scalar", &got, &want, |i| bound(acc, i));
                }
            }
        }
    }
}

#[test]
fn blocked_products_f32() {
    blocked_products::<f32>();
}

#[test]
fn blocked_products_f64() {
    blocked_products::<f64>();
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
