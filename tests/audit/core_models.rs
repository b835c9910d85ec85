//! Bad-input audit of the core layers (`kernels`, `mat`, `matrix`, `real`,
//! `backend`) and the model chapter (`models::*`): every invalid input a
//! public function can get, and what it gets back — the exact `Err` variant,
//! or the documented NaN behaviour — with stateful calls (a model's forward
//! pass) shown to leave their state as it was after an `Err`.

use std::path::PathBuf;
use std::sync::OnceLock;

use constml::attention::CachePolicy;
use constml::models::quant::{
    Q8Matrix, Q8Scratch, Rounding, check_group, dequantize_q8, q8_bytes, q8_linear_with,
    q8_matvec_with, quantize_q8,
};
use constml::models::{
    Decoder, DecoderState, Gpt2, Gpt2Config, Gpt2Sized, Gpt2State, Gpt2Weights, Llama,
    Llama2cCheckpoint, Llama2cQ8Checkpoint, LlamaBeams, LlamaConfig, LlamaQ8, LlamaQ8Weights,
    LlamaState, LlamaWeights, LogitRows, Q8Layers, Tokenizer, conv1d_to_linear, decode_f32_le,
    llama_q8_scratch_len, llama2c_config, llama2c_floats, llama2c_q8_export, llama2c_q8_header,
    llama2c_q8_len, llama2c_q8_norms_len, llama2c_q8_weights, llama2c_weights, printable,
};
use constml::{
    Accumulate, Backend, Error, MatMut, MatRef, Matrix, Real, Result, Scalar, Simd, kernels,
};

static SHARED: &[u8] = include_bytes!("../reference/llama/tiny_shared.bin");
static GQA: &[u8] = include_bytes!("../reference/llama/tiny_gqa.bin");
static SHARED_Q8: &[u8] = include_bytes!("../reference/llama/tiny_shared_q80.bin");
static TOKENIZER: &[u8] = include_bytes!("../reference/llama/tokenizer.bin");

const NAN: f32 = f32::NAN;
const NEG_INF: f32 = f32::NEG_INFINITY;

/// Fails unless `$e` is an `Err` matching `$pat` (and the guard, if any); an
/// optional format string after it names the case.
macro_rules! expect_err {
    ($e:expr, $pat:pat $(if $cond:expr)? $(, $($ctx:tt)+)?) => {
        match $e {
            got => assert!(
                matches!(got, Err($pat) $(if $cond)?),
                "`{}` gave {:?} {}",
                stringify!($e),
                got.as_ref().err(),
                String::new() $(+ &format!($($ctx)+))?
            ),
        }
    };
}

/// A unique path in the temporary directory for the `read` tests.
fn temp_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("constml_audit_cm_{}_{name}", std::process::id()))
}

/// `read` applied to a temporary file `name` holding `data` (removed after).
fn read_temp<R>(name: &str, data: &[u8], read: impl FnOnce(PathBuf) -> R) -> R {
    let p = temp_path(name);
    std::fs::write(&p, data).unwrap();
    let r = read(p.clone());
    std::fs::remove_file(&p).unwrap();
    r
}

/// A zeroed buffer that lives as long as the test binary (leaked, so that the
/// small test states and scratches that borrow it can be returned by helpers).
fn leaked<T: Clone>(zero: T, len: usize) -> &'static mut [T] {
    vec![zero; len].leak()
}

// ------------------------------------------------------------------ kernels

fn kernel_products_nan<B: Backend>() {
    // dot: a NaN anywhere gives NaN; N = 0 gives 0.
    assert!(kernels::dot_with::<B, f32, 3>(&[1.0, NAN, 2.0], &[1.0, 1.0, 1.0]).is_nan());
    assert_eq!(kernels::dot_with::<B, f32, 0>(&[], &[]), 0.0);
    // matvec: the NaN of x reaches every output; of W only its row.
    let w = [[1.0f32, 2.0, 3.0], [0.0, 1.0, 0.0]];
    let mut y = [7.0f32; 2];
    kernels::matvec_with::<B, f32, 3, 2>(&w, &[1.0, NAN, 1.0], &mut y);
    assert!(y.iter().all(|v| v.is_nan()), "{y:?}");
    let wn = [[1.0f32, NAN, 3.0], [0.0, 1.0, 0.0]];
    kernels::matvec_with::<B, f32, 3, 2>(&wn, &[1.0, 1.0, 1.0], &mut y);
    assert!(y[0].is_nan() && y[1] == 1.0, "{y:?}");
    // matmul / matmul_bt (B the identity): a NaN of A spoils its row of C only.
    let a = [[1.0f32, NAN], [1.0, 2.0]];
    let b = [[1.0f32, 0.0], [0.0, 1.0]];
    for product in [
        kernels::matmul_with::<B, f32, 2, 2, 2>,
        kernels::matmul_bt_with::<B, f32, 2, 2, 2>,
    ] {
        let mut c = [[0.0f32; 2]; 2];
        product(&a, &b, &mut c);
        assert!(
            c[0].iter().all(|v| v.is_nan()) && c[1] == [1.0, 2.0],
            "{c:?}"
        );
    }
    // K = 0: the product is all zeros (C overwritten).
    let mut c = [[9.0f32; 3]; 2];
    kernels::matmul_with::<B, f32, 2, 0, 3>(&[[]; 2], &[], &mut c);
    assert_eq!(c, [[0.0; 3]; 2]);
}

#[test]
fn audit_cm_kernels_products_propagate_nan() {
    kernel_products_nan::<Scalar>();
    kernel_products_nan::<Simd>();
    // The plain forms (Simd).
    assert!(kernels::dot(&[NAN, 1.0], &[1.0, 1.0]).is_nan());
    let mut y = [0.0f32; 1];
    kernels::matvec(&[[NAN]], &[1.0], &mut y);
    assert!(y[0].is_nan());
    let mut c = [[0.0f32; 1]; 1];
    kernels::matmul(&[[NAN]], &[[1.0]], &mut c);
    assert!(c[0][0].is_nan());
    kernels::matmul_bt(&[[1.0]], &[[NAN]], &mut c);
    assert!(c[0][0].is_nan());
}

fn kernel_softmax_edges<B: Backend>() {
    // A NaN anywhere: the whole row becomes NaN (no Err).
    let mut x = [1.0f32, NAN, 2.0, 0.5, -1.0];
    kernels::softmax_with::<B, f32, 5>(&mut x);
    assert!(x.iter().all(|v| v.is_nan()), "{x:?}");
    let mut x = [1.0f32, NAN, 2.0, 0.5, -1.0];
    kernels::log_softmax_with::<B, f32, 5>(&mut x);
    assert!(x.iter().all(|v| v.is_nan()), "{x:?}");
    // All −∞ (fully masked): zeros for softmax, −∞ kept by log-softmax.
    let mut x = [NEG_INF; 6];
    kernels::softmax_with::<B, f32, 6>(&mut x);
    assert_eq!(x, [0.0; 6]);
    let mut x = [NEG_INF; 6];
    kernels::log_softmax_with::<B, f32, 6>(&mut x);
    assert_eq!(x, [NEG_INF; 6]);
    // N = 0: left as is.
    let mut e: [f32; 0] = [];
    kernels::softmax_with::<B, f32, 0>(&mut e);
    kernels::log_softmax_with::<B, f32, 0>(&mut e);
}

#[test]
fn audit_cm_kernels_softmax_nan_and_masked_rows() {
    kernel_softmax_edges::<Scalar>();
    kernel_softmax_edges::<Simd>();
    let mut x = [NAN, 0.0];
    kernels::softmax(&mut x);
    assert!(x.iter().all(|v| v.is_nan()));
    let mut x = [NEG_INF, NEG_INF];
    kernels::log_softmax(&mut x);
    assert_eq!(x, [NEG_INF, NEG_INF]);
    let mut x = [NEG_INF, 0.0];
    kernels::softmax(&mut x);
    assert_eq!(x, [0.0, 1.0]);
}

#[test]
fn audit_cm_kernels_argmax_reports_nan() {
    let with_nan = [1.0f32, 5.0, NAN, 2.0, 0.0, 1.0, 3.0, 4.0, 9.0];
    expect_err!(kernels::argmax(&with_nan), Error::NaN { .. });
    expect_err!(
        kernels::argmax_with::<Scalar, f32, 9>(&with_nan),
        Error::NaN { .. }
    );
    expect_err!(
        kernels::argmax_with::<Simd, f64, 2>(&[f64::NAN, 1.0]),
        Error::NaN { .. }
    );
    // All −∞ gives 0; ties give the lowest index.
    assert_eq!(kernels::argmax(&[NEG_INF; 5]), Ok(0));
    assert_eq!(
        kernels::argmax_with::<Scalar, f32, 3>(&[1.0, 3.0, 3.0]),
        Ok(1)
    );
    assert_eq!(
        kernels::argmax_with::<Simd, f32, 3>(&[1.0, 3.0, 3.0]),
        Ok(1)
    );
}

// ------------------------------------------------------------------ backend

fn backend_length_mismatches<B: Backend>() {
    let a = [1.0f32, 2.0, 3.0];
    expect_err!(
        B::dot(&a, &a[..2]),
        Error::LengthMismatch { what, expected: 3, found: 2 } if what == "dot: b"
    );
    let mut y = [5.0f32; 2];
    for (what, r) in [
        ("axpy: y", B::axpy(2.0, &a, &mut y)),
        ("add: x", B::add(&mut y, &a)),
        ("mul: x", B::mul(&mut y, &a)),
    ] {
        expect_err!(r, Error::LengthMismatch { what: w, .. } if w == what, "{what}");
    }
    assert_eq!(y, [5.0; 2], "y untouched after the errors");
    // Equal lengths: NaN propagates through the arithmetic.
    assert!(B::dot(&[NAN, 1.0], &[1.0, 1.0]).unwrap().is_nan());
    let mut y = [1.0f32; 3];
    B::axpy(1.0, &[0.0, NAN, 0.0], &mut y).unwrap();
    assert!(y[1].is_nan() && y[0] == 1.0 && y[2] == 1.0);
    let mut y = [1.0f32; 3];
    B::add(&mut y, &[NAN, 0.0, 0.0]).unwrap();
    assert!(y[0].is_nan() && y[1] == 1.0);
    let mut y = [1.0f32; 3];
    B::mul(&mut y, &[1.0, 1.0, NAN]).unwrap();
    assert!(y[2].is_nan() && y[0] == 1.0);
    // Empty slices agree.
    assert_eq!(B::dot::<f32>(&[], &[]), Ok(0.0));
}

#[test]
fn audit_cm_backend_length_mismatches() {
    backend_length_mismatches::<Scalar>();
    backend_length_mismatches::<Simd>();
}

fn backend_sum_scale<B: Backend>() {
    assert_eq!(B::sum::<f32>(&[]), 0.0);
    let mut e: [f32; 0] = [];
    B::scale(3.0, &mut e);
    for n in 1..=19 {
        let mut x: Vec<f32> = (0..n).map(|i| i as f32).collect();
        x[n / 2] = NAN;
        assert!(B::sum(&x).is_nan(), "n = {n}");
        B::scale(2.0, &mut x);
        assert!(x[n / 2].is_nan(), "n = {n}");
        assert!(
            x.iter()
                .enumerate()
                .all(|(i, v)| i == n / 2 || *v == 2.0 * i as f32)
        );
    }
}

#[test]
fn audit_cm_backend_sum_scale_edges() {
    backend_sum_scale::<Scalar>();
    backend_sum_scale::<Simd>();
}

fn backend_max_argmax<B: Backend>() {
    expect_err!(B::max::<f32>(&[]), Error::Empty { what: "max" });
    expect_err!(B::argmax::<f64>(&[]), Error::Empty { .. });
    for n in 1..=19 {
        for at in 0..n {
            let mut x: Vec<f32> = (0..n).map(|i| i as f32).collect();
            x[at] = NAN;
            expect_err!(B::max(&x), Error::NaN { what: "max" }, "{n} {at}");
            expect_err!(B::argmax(&x), Error::NaN { .. }, "{n} {at}");
        }
    }
    assert_eq!(B::argmax(&[NEG_INF; 7]), Ok(0));
    assert_eq!(B::max(&[NEG_INF; 7]), Ok(NEG_INF));
    assert_eq!(B::argmax(&[0.0f32, 2.0, 2.0]), Ok(1));
}

#[test]
fn audit_cm_backend_max_argmax_empty_and_nan() {
    backend_max_argmax::<Scalar>();
    backend_max_argmax::<Simd>();
}

/// An in-place row function of a backend (softmax, an activation).
type RowFn = fn(&mut [f32]);

fn backend_softmax<B: Backend>() {
    let rows: [(&str, RowFn, f32); 2] = [
        ("softmax", B::softmax, 0.0),
        ("log_softmax", B::log_softmax, NEG_INF),
    ];
    for (name, f, masked) in rows {
        // A NaN: the row is NaN; all −∞: zeros for softmax, −∞ for log_softmax.
        for n in 1..=19 {
            let mut x: Vec<f32> = (0..n).map(|i| i as f32 * 0.1).collect();
            x[n - 1] = NAN;
            f(&mut x);
            assert!(x.iter().all(|v| v.is_nan()), "{name}: n = {n}");
            let mut m = vec![NEG_INF; n];
            f(&mut m);
            assert!(m.iter().all(|&v| v == masked), "{name}: n = {n}");
        }
        // A +∞ element: ∞ − ∞ is NaN, so the row is NaN as well (no Err).
        let mut x = [1.0f32, f32::INFINITY, 0.0];
        f(&mut x);
        assert!(x.iter().all(|v| v.is_nan()), "{name}: {x:?}");
        f(&mut []);
    }
}

#[test]
fn audit_cm_backend_softmax_rows_edges() {
    backend_softmax::<Scalar>();
    backend_softmax::<Simd>();
}

/// `gemm`, `gemm_bt` or `gemm_at` of a backend.
type Gemm = fn(MatRef<'_, f32>, MatRef<'_, f32>, MatMut<'_, f32>, Accumulate) -> Result<()>;

/// A product, its B and the shape of its C, with `X` what to expect.
type GemmCase<'a, X> = (X, Gemm, MatRef<'a, f32>, (usize, usize));

fn backend_gemm_shapes<B: Backend>() {
    let a = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0]; // (2, 3)
    let a23 = MatRef::new(&a, 2, 3).unwrap();
    let a32 = MatRef::new(&a, 3, 2).unwrap();
    // gemm: B must have a.cols rows, C must be (a.rows, b.cols); gemm_bt: B
    // must have a.cols columns, C (a.rows, b.rows); gemm_at: B must have
    // a.rows rows, C (a.cols, b.cols). Each case: B, then the shape of C.
    let bad: [GemmCase<&str>; 6] = [
        ("gemm: b", B::gemm, a23, (2, 3)),
        ("gemm: c", B::gemm, a32, (1, 4)),
        ("gemm_bt: b", B::gemm_bt, a32, (2, 2)),
        ("gemm_bt: c", B::gemm_bt, a23, (2, 3)),
        ("gemm_at: b", B::gemm_at, a32, (3, 2)),
        ("gemm_at: c", B::gemm_at, a23, (2, 3)),
    ];
    let mut c = [9.0f32; 6];
    for acc in [Accumulate::Overwrite, Accumulate::Add] {
        for (what, f, b, (rows, cols)) in bad {
            let mc = MatMut::new(&mut c[..rows * cols], rows, cols).unwrap();
            expect_err!(
                f(a23, b, mc, acc),
                Error::ShapeMismatch { what: w, .. } if w == what,
                "{what}"
            );
        }
        assert_eq!(c, [9.0; 6], "C untouched after the errors");
    }
    // Valid shapes: a NaN of A reaches its row of C (the first), and only it.
    let n = [NAN, 0.0, 0.0, 1.0, 1.0, 1.0];
    let n23 = MatRef::new(&n, 2, 3).unwrap();
    let good: [GemmCase<&[f32]>; 3] = [
        (&[9.0, 12.0], B::gemm, a32, (2, 2)),
        (&[6.0, 15.0], B::gemm_bt, a23, (2, 2)),
        (&[4.0, 5.0, 6.0, 4.0, 5.0, 6.0], B::gemm_at, a23, (3, 3)),
    ];
    for (rest, f, b, (rows, cols)) in good {
        let mut c = vec![0.0f32; rows * cols];
        let mc = MatMut::new(&mut c, rows, cols).unwrap();
        f(n23, b, mc, Accumulate::Overwrite).unwrap();
        assert!(
            c[..cols].iter().all(|v| v.is_nan()) && c[cols..] == *rest,
            "{c:?}"
        );
    }
}

#[test]
fn audit_cm_backend_gemm_shape_mismatches() {
    backend_gemm_shapes::<Scalar>();
    backend_gemm_shapes::<Simd>();
}

fn backend_gemm_op<B: Backend>() {
    use constml::backend::{Transpose, gemm_scratch_len};
    let a = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0];
    let a23 = MatRef::new(&a, 2, 3).unwrap();
    let (n, t) = (Transpose::AsStored, Transpose::Transposed);
    let mut scratch = vec![0.0f32; gemm_scratch_len::<f32>()];
    for acc in [Accumulate::Overwrite, Accumulate::Add] {
        let mut c = [7.0f32; 4];
        // op(A) (2, 3) · op(B) (2, 3): inner dimensions disagree.
        let r = B::gemm_op(
            a23,
            n,
            a23,
            n,
            MatMut::new(&mut c, 2, 2).unwrap(),
            acc,
            &mut scratch,
        );
        expect_err!(
            r,
            Error::ShapeMismatch {
                what: "gemm_op: b",
                ..
            }
        );
        // op(A)ᵀ (3, 2) · op(B) (2, 3) is (3, 3), not (2, 2).
        let r = B::gemm_op(
            a23,
            t,
            a23,
            n,
            MatMut::new(&mut c, 2, 2).unwrap(),
            acc,
            &mut scratch,
        );
        expect_err!(
            r,
            Error::ShapeMismatch {
                what: "gemm_op: c",
                expected: (3, 3),
                ..
            }
        );
        // A scratch one element short.
        let short = gemm_scratch_len::<f32>() - 1;
        let r = B::gemm_op(
            a23,
            n,
            a23,
            t,
            MatMut::new(&mut c, 2, 2).unwrap(),
            acc,
            &mut scratch[..short],
        );
        expect_err!(
            r,
            Error::BufferTooSmall {
                what: "gemm_op: scratch",
                ..
            }
        );
        assert_eq!(c, [7.0; 4]);
    }
    // Valid: A·Aᵀ, and Aᵀ·Bᵀ with a NaN reaching one column.
    let mut c = [0.0f32; 4];
    B::gemm_op(
        a23,
        n,
        a23,
        t,
        MatMut::new(&mut c, 2, 2).unwrap(),
        Accumulate::Overwrite,
        &mut scratch,
    )
    .unwrap();
    assert_eq!(c, [14.0, 32.0, 32.0, 77.0]);
    let bn = [NAN, 0.0, 1.0, 1.0]; // (2, 2): Bᵀ's first column holds the NaN
    let mut c = [0.0f32; 6];
    let b22 = MatRef::new(&bn, 2, 2).unwrap();
    B::gemm_op(
        a23,
        t,
        b22,
        t,
        MatMut::new(&mut c, 3, 2).unwrap(),
        Accumulate::Overwrite,
        &mut scratch,
    )
    .unwrap();
    assert!(c[0].is_nan() && c[2].is_nan() && c[4].is_nan());
    assert_eq!([c[1], c[3], c[5]], [5.0, 7.0, 9.0]);
}

#[test]
fn audit_cm_backend_gemm_op_rejects_shapes_and_short_scratch() {
    backend_gemm_op::<Scalar>();
    backend_gemm_op::<Simd>();
}

fn backend_vector_matrix<B: Backend>() {
    let a = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0];
    let a23 = MatRef::new(&a, 2, 3).unwrap();
    let mut y = [7.0f32; 2];
    for acc in [Accumulate::Overwrite, Accumulate::Add] {
        expect_err!(
            B::col_sums(a23, &mut y, acc),
            Error::LengthMismatch { what, expected: 3, found: 2 } if what == "col_sums: y"
        );
        let mut y3 = [7.0f32; 3];
        for (what, r) in [
            ("matvec: x", B::matvec(a23, &[1.0, 1.0], &mut y, acc)),
            ("matvec: y", B::matvec(a23, &[1.0, 1.0, 1.0], &mut y3, acc)),
        ] {
            expect_err!(r, Error::LengthMismatch { what: w, .. } if w == what, "{what}");
        }
        assert_eq!(y3, [7.0; 3]);
    }
    assert_eq!(y, [7.0; 2]);
    let mut c = [7.0f32; 6];
    let mc = MatMut::new(&mut c, 2, 3).unwrap();
    expect_err!(
        B::ger(1.0, &[1.0, 2.0], &[1.0, 2.0], mc),
        Error::ShapeMismatch { what: "ger: c", .. }
    );
    assert_eq!(c, [7.0; 6]);
    // Valid shapes: NaN propagates.
    let mut y = [0.0f32; 2];
    B::matvec(a23, &[NAN, 0.0, 0.0], &mut y, Accumulate::Overwrite).unwrap();
    assert!(y.iter().all(|v| v.is_nan()));
    let mut s = [0.0f32; 3];
    let n = [NAN, 1.0, 1.0, 1.0, 1.0, 1.0];
    let n23 = MatRef::new(&n, 2, 3).unwrap();
    B::col_sums(n23, &mut s, Accumulate::Overwrite).unwrap();
    assert!(s[0].is_nan() && s[1] == 2.0 && s[2] == 2.0);
    let mut c = [0.0f32; 6];
    let mc = MatMut::new(&mut c, 2, 3).unwrap();
    B::ger(1.0, &[1.0, NAN], &[1.0, 2.0, 3.0], mc).unwrap();
    assert!(c[..3] == [1.0, 2.0, 3.0] && c[3..].iter().all(|v| v.is_nan()));
}

#[test]
fn audit_cm_backend_col_sums_ger_matvec_mismatches() {
    backend_vector_matrix::<Scalar>();
    backend_vector_matrix::<Simd>();
}

fn backend_activations<B: Backend>() {
    let acts: [(&str, RowFn); 6] = [
        ("relu", B::relu::<f32>),
        ("sigmoid", B::sigmoid::<f32>),
        ("tanh", B::tanh::<f32>),
        ("silu", B::silu::<f32>),
        ("gelu", B::gelu::<f32>),
        ("gelu_tanh", B::gelu_tanh::<f32>),
    ];
    for (name, f) in acts {
        let mut e: [f32; 0] = [];
        f(&mut e);
        // Every length through the Simd blocks and tail; the NaN at every
        // index stays NaN, and its neighbours stay finite.
        for n in 1..=19 {
            for at in 0..n {
                let mut x: Vec<f32> = (0..n).map(|i| i as f32 * 0.25 - 2.0).collect();
                x[at] = NAN;
                f(&mut x);
                assert!(x[at].is_nan(), "{name}: n {n} at {at}");
                assert!(
                    x.iter().enumerate().all(|(i, v)| i == at || v.is_finite()),
                    "{name}: n {n} at {at}: {x:?}"
                );
            }
        }
    }
    // Limits at ±∞ where the formula has one (relu, sigmoid, tanh).
    let limits = [[0.0, f32::INFINITY], [0.0, 1.0], [-1.0, 1.0]];
    for ((name, f), want) in acts.iter().zip(limits) {
        let mut x = [NEG_INF, f32::INFINITY];
        f(&mut x);
        assert_eq!(x, want, "{name}");
    }
    // x·σ(x) and x·Φ(x) at −∞ are −∞·0: NaN (as the formulas give it), not
    // the limit 0; +∞ stays +∞.
    for (name, f) in &acts[3..] {
        let mut x = [NEG_INF, f32::INFINITY];
        f(&mut x);
        assert!(x[0].is_nan() && x[1] == f32::INFINITY, "{name}: {x:?}");
    }
}

#[test]
fn audit_cm_backend_activations_keep_nan() {
    backend_activations::<Scalar>();
    backend_activations::<Simd>();
}

// --------------------------------------------------------------------- real

fn block_of<T: Real>(v: &[T]) -> T::V {
    let mut b = T::ZERO_BLOCK;
    b.as_mut().copy_from_slice(v);
    T::load(&b)
}

fn lanes_of<T: Real>(v: T::V) -> Vec<T> {
    let mut b = T::ZERO_BLOCK;
    T::store(v, &mut b);
    b.as_ref().to_vec()
}

fn real_cases<T: Real>() {
    let n = T::LANES;
    // Conversions and erf: NaN in, NaN out; ±∞ limits.
    assert!(<T as Real>::from_f64(f64::NAN).is_nan());
    assert!(<T as Real>::as_f64(T::NAN).is_nan());
    assert!(<T as Real>::from_usize(usize::MAX).is_finite());
    assert!(<T as Real>::erf(T::NAN).is_nan());
    assert_eq!(<T as Real>::erf(T::INFINITY), T::ONE);
    assert_eq!(<T as Real>::erf(T::NEG_INFINITY), -T::ONE);
    // blocks: any length splits into whole blocks and a short tail.
    for len in 0..=2 * n + 1 {
        let mut x: Vec<T> = (0..len).map(<T as Real>::from_usize).collect();
        let (b, t) = T::blocks(&x);
        assert_eq!((b.len(), t.len()), (len / n, len % n));
        let (b, t) = T::blocks_mut(&mut x);
        assert_eq!((b.len(), t.len()), (len / n, len % n));
    }
    // splat/load/store carry NaN unchanged; any_nan / nan_mask find it.
    assert!(lanes_of::<T>(T::splat(T::NAN)).iter().all(|v| v.is_nan()));
    let zero = T::splat(T::ZERO);
    assert!(!T::any_nan(zero) && !T::any_nan(T::nan_mask(zero, T::splat(T::ONE))));
    for at in 0..n {
        let mut x: Vec<T> = (0..n).map(<T as Real>::from_usize).collect();
        x[at] = T::NAN;
        let v = block_of::<T>(&x);
        let back = lanes_of::<T>(v);
        assert!(back[at].is_nan());
        assert!(T::any_nan(v) && T::any_nan(T::nan_mask(zero, v)));
        let ones = T::splat(T::ONE);
        // fma, hsum, vexp, vtanh, verf, vsqrt: the NaN lane stays NaN.
        let f = lanes_of::<T>(T::fma(v, ones, ones));
        assert!(f[at].is_nan() && f.iter().enumerate().all(|(i, y)| i == at || !y.is_nan()));
        assert!(T::hsum(v).is_nan());
        for g in [T::vexp, T::vtanh, T::verf, T::vsqrt] {
            let y = lanes_of::<T>(g(v));
            assert!(y[at].is_nan() && y.iter().enumerate().all(|(i, y)| i == at || !y.is_nan()));
        }
        // hmax: the NaN lane may or may not win; otherwise the max of the others.
        let m = T::hmax(v);
        let best = (0..n)
            .filter(|&i| i != at)
            .map(<T as Real>::from_usize)
            .fold(T::NEG_INFINITY, |a, b| a.max(b));
        assert!(m.is_nan() || m == best);
        // vmax: lanes without NaN are the plain maximum.
        let w = lanes_of::<T>(T::vmax(v, ones));
        for (i, y) in w.iter().enumerate() {
            if i != at {
                assert_eq!(*y, <T as Real>::from_usize(i).max(T::ONE));
            }
        }
        // select_lt: a NaN compares false, giving y.
        let s = lanes_of::<T>(T::select_lt(v, T::splat(T::INFINITY), zero, ones));
        assert_eq!(s[at], T::ONE);
        assert!(s.iter().enumerate().all(|(i, y)| i == at || *y == T::ZERO));
    }
    // vexp: e^−∞ = 0, e^+∞ = +∞; vsqrt of a negative is NaN.
    let all = |v: T::V, ok: fn(T) -> bool| lanes_of::<T>(v).into_iter().all(ok);
    assert!(all(T::vexp(T::splat(T::NEG_INFINITY)), |v| v == T::ZERO));
    assert!(all(T::vexp(T::splat(T::INFINITY)), |v| v == T::INFINITY));
    assert!(all(T::vsqrt(T::splat(-T::ONE)), |v| v.is_nan()));
}

#[test]
fn audit_cm_real_conversions_and_lane_nan() {
    real_cases::<f32>();
    real_cases::<f64>();
    // f32: out-of-range values round to ±∞, counts past 2^24 round.
    assert_eq!(<f32 as Real>::from_f64(1e300), f32::INFINITY);
    assert_eq!(<f32 as Real>::from_f64(-1e300), f32::NEG_INFINITY);
    assert_eq!(<f32 as Real>::from_usize((1 << 24) + 1), 16_777_216.0);
    assert_eq!(<f64 as Real>::from_usize((1 << 24) + 1), 16_777_217.0);
}

// ---------------------------------------------------------------------- mat

#[test]
fn audit_cm_mat_constructors_reject_bad_buffers() {
    let d = [0.0f32; 10];
    let mut m = [0.0f32; 10];
    // new: the buffer must hold exactly rows·cols.
    expect_err!(
        MatRef::new(&d[..5], 2, 3),
        Error::LengthMismatch {
            expected: 6,
            found: 5,
            ..
        }
    );
    expect_err!(MatMut::new(&mut m, 3, 3), Error::LengthMismatch { .. });
    expect_err!(
        MatRef::new(&d, usize::MAX, 2),
        Error::BufferTooSmall {
            needed: usize::MAX,
            ..
        }
    );
    expect_err!(
        MatMut::new(&mut m, 2, usize::MAX),
        Error::BufferTooSmall { .. }
    );
    // with_stride: stride ≥ cols whenever there is an element.
    expect_err!(
        MatRef::with_stride(&d, 2, 3, 2),
        Error::InvalidParameter { .. }
    );
    expect_err!(
        MatRef::with_stride(&d, 1, 3, 0),
        Error::InvalidParameter { .. }
    );
    expect_err!(
        MatMut::with_stride(&mut m, 1, 3, 2),
        Error::InvalidParameter { .. }
    );
    // ... and the buffer must reach (rows − 1)·stride + cols.
    expect_err!(
        MatRef::with_stride(&d, 3, 3, 4),
        Error::BufferTooSmall {
            needed: 11,
            found: 10,
            ..
        }
    );
    expect_err!(
        MatMut::with_stride(&mut m, 4, 2, 3),
        Error::BufferTooSmall { needed: 11, .. }
    );
    assert!(MatMut::with_stride(&mut m, 4, 1, 3).is_ok()); // reaches exactly 10
    expect_err!(
        MatRef::with_stride(&d, usize::MAX, 2, usize::MAX),
        Error::BufferTooSmall {
            needed: usize::MAX,
            ..
        }
    );
    // No element: any stride and buffer.
    assert!(MatRef::with_stride(&d[..0], 0, 3, 0).is_ok());
    assert!(MatRef::with_stride(&d[..0], usize::MAX, 0, 0).is_ok());
    assert!(MatMut::with_stride(&mut m[..0], 3, 0, 0).is_ok());
    // from_array and row_vector cannot fail.
    let arr = [[1.0f32, 2.0], [3.0, 4.0], [5.0, 6.0]];
    let v = MatRef::from_array(&arr);
    assert_eq!((v.shape(), v.stride()), ((3, 2), 2));
    let mut arr2 = arr;
    assert_eq!(MatMut::from_array(&mut arr2).shape(), (3, 2));
    let e: [f32; 0] = [];
    assert_eq!(MatRef::row_vector(&e).shape(), (1, 0));
    let mut e2: [f32; 0] = [];
    assert_eq!(MatMut::row_vector(&mut e2).shape(), (1, 0));
}

#[test]
fn audit_cm_mat_ranges_and_rows_at_edges() {
    let d: [f32; 10] = core::array::from_fn(|i| i as f32);
    let v = MatRef::new(&d, 2, 5).unwrap();
    assert_eq!((v.rows(), v.cols(), v.stride()), (2, 5, 5));
    // col_range / row_range: a window past the end is OutOfRange (its end).
    expect_err!(
        v.col_range(3, 3),
        Error::OutOfRange {
            what: "matrix columns",
            index: 6,
            len: 5
        }
    );
    expect_err!(
        v.col_range(usize::MAX, 2),
        Error::OutOfRange {
            index: usize::MAX,
            ..
        }
    );
    expect_err!(
        v.row_range(1, 2),
        Error::OutOfRange {
            what: "matrix rows",
            index: 3,
            len: 2
        }
    );
    expect_err!(v.row_range(2, usize::MAX), Error::OutOfRange { .. });
    // Empty windows at the end are fine.
    assert_eq!(v.col_range(5, 0).unwrap().shape(), (2, 0));
    assert_eq!(v.row_range(2, 0).unwrap().shape(), (0, 5));
    // row: None past the last row; a zero-width view has empty rows.
    assert_eq!(v.row(2), None);
    assert_eq!(v.row(usize::MAX), None);
    assert_eq!(v.col_range(0, 0).unwrap().row(1), Some(&[][..]));
    let mut e = d;
    let mut w = MatMut::new(&mut e, 2, 5).unwrap();
    assert_eq!(w.shape(), (2, 5));
    assert_eq!((w.rows(), w.cols()), (2, 5));
    assert!(w.row_mut(2).is_none());
    assert_eq!(w.reborrow().shape(), (2, 5));
    assert_eq!(w.as_ref().row(1), Some(&d[5..]));
    expect_err!(
        w.reborrow().col_range(4, 2),
        Error::OutOfRange { index: 6, .. }
    );
    expect_err!(
        w.reborrow().row_range(3, 0),
        Error::OutOfRange { index: 3, .. }
    );
    let mut z = MatMut::new(&mut e[..0], 4, 0).unwrap();
    assert_eq!(z.row_mut(3).map(|r| r.len()), Some(0));
}

// ------------------------------------------------------------------- matrix

#[test]
fn audit_cm_matrix_construction_errors() {
    expect_err!(
        Matrix::<f32>::zeros(usize::MAX, 2),
        Error::InvalidParameter { .. }
    );
    // Fits in usize, not in memory: an Err, not an abort.
    expect_err!(
        Matrix::<f32>::zeros(usize::MAX / 4, 1),
        Error::InvalidParameter { .. }
    );
    expect_err!(
        Matrix::from_vec(2, 2, vec![0.0f32; 3]),
        Error::LengthMismatch {
            expected: 4,
            found: 3,
            ..
        }
    );
    expect_err!(
        Matrix::<f32>::from_vec(usize::MAX, 2, vec![]),
        Error::BufferTooSmall { .. }
    );
    // Accessors at their edges.
    let mut m = Matrix::from_vec(2, 3, vec![1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0]).unwrap();
    assert_eq!((m.rows(), m.cols(), m.shape()), (2, 3, (2, 3)));
    assert_eq!(m.row(1), Some(&[4.0, 5.0, 6.0][..]));
    assert_eq!(m.row(2), None);
    m.as_mut_slice()[0] = 9.0;
    assert_eq!(m.as_slice()[0], 9.0);
    assert_eq!(m.view().shape(), (2, 3));
    assert_eq!(m.view_mut().shape(), (2, 3));
    assert_eq!(m.clone().into_vec().len(), 6);
    let mut z = Matrix::<f32>::zeros(usize::MAX, 0).unwrap();
    assert_eq!(z.view().shape(), (usize::MAX, 0));
    assert_eq!(z.view_mut().shape(), (usize::MAX, 0));
    assert_eq!(z.row(5), Some(&[][..]));
}

#[test]
fn audit_cm_matrix_products_reject_mismatches() {
    let a = Matrix::from_vec(2, 3, vec![1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0]).unwrap();
    let b = Matrix::from_vec(3, 2, vec![1.0f32, 0.0, 0.0, 1.0, 1.0, 1.0]).unwrap();
    expect_err!(a.matmul(&a), Error::ShapeMismatch { what, .. } if what == "gemm: b");
    expect_err!(
        a.matmul_with::<Scalar>(&a),
        Error::ShapeMismatch { what, .. } if what == "gemm: b"
    );
    expect_err!(a.matmul_bt(&b), Error::ShapeMismatch { what, .. } if what == "gemm_bt: b");
    expect_err!(a.matmul_bt_with::<Scalar>(&b), Error::ShapeMismatch { .. });
    expect_err!(
        a.matvec(&[1.0, 1.0]),
        Error::LengthMismatch { what, .. } if what == "matvec: x"
    );
    expect_err!(
        a.matvec_with::<Scalar>(&[1.0; 4]),
        Error::LengthMismatch { .. }
    );
    // A result too large to allocate is an Err too.
    let tall = Matrix::<f32>::zeros(usize::MAX / 4, 0).unwrap();
    let wide = Matrix::<f32>::zeros(0, 4).unwrap();
    expect_err!(tall.matmul(&wide), Error::InvalidParameter { .. });
    // Valid shapes: NaN propagates.
    let n = Matrix::from_vec(1, 3, vec![NAN, 0.0, 0.0]).unwrap();
    let all_nan = |v: &[f32]| v.iter().all(|v| v.is_nan());
    assert!(all_nan(n.matmul(&b).unwrap().as_slice()));
    assert!(all_nan(n.matmul_bt(&a).unwrap().as_slice()));
    assert!(all_nan(&a.matvec(&[NAN, 1.0, 1.0]).unwrap()));
}

#[test]
fn audit_cm_matrix_row_softmax_edges() {
    let rows = vec![1.0f32, NAN, 0.0, NEG_INF, NEG_INF, NEG_INF, 0.0, 0.0, 0.0];
    let mut m = Matrix::from_vec(3, 3, rows.clone()).unwrap();
    m.softmax_rows();
    let s = m.as_slice();
    assert!(s[..3].iter().all(|v| v.is_nan()));
    assert_eq!(s[3..6], [0.0; 3]);
    assert!(s[6..].iter().all(|&v| (v - 1.0 / 3.0).abs() < 1e-6));
    let mut m = Matrix::from_vec(3, 3, rows.clone()).unwrap();
    m.softmax_rows_with::<Scalar>();
    assert!(m.as_slice()[..3].iter().all(|v| v.is_nan()));
    let mut m = Matrix::from_vec(3, 3, rows.clone()).unwrap();
    m.log_softmax_rows();
    assert!(m.as_slice()[..3].iter().all(|v| v.is_nan()));
    assert_eq!(m.as_slice()[3..6], [NEG_INF; 3]);
    let mut m = Matrix::from_vec(3, 3, rows).unwrap();
    m.log_softmax_rows_with::<Scalar>();
    assert_eq!(m.as_slice()[3..6], [NEG_INF; 3]);
    // No columns: nothing to do.
    let mut z = Matrix::<f32>::zeros(5, 0).unwrap();
    z.softmax_rows();
    z.log_softmax_rows();
    z.softmax_rows_with::<Scalar>();
    z.log_softmax_rows_with::<Scalar>();
    assert_eq!(z.shape(), (5, 0));
}

// ------------------------------------------------------------ model helpers

/// Weights `$w` with the tensor `$field` one element short: `check` against
/// `$cfg` names it (`$what`), and the model's constructor `$new` refuses them.
macro_rules! short_tensor_refused {
    ($w:expr, $field:ident, $what:literal, $cfg:expr, $new:expr) => {{
        let mut short = $w;
        short.$field = &short.$field[1..];
        expect_err!(short.check(&$cfg), Error::LengthMismatch { what, .. } if what == $what);
        expect_err!($new($cfg, short), Error::LengthMismatch { .. });
    }};
}

/// The observable state of a model's state: its position and logits.
fn snap(st: &impl DecoderState<f32>) -> (usize, Vec<f32>) {
    (st.position(), st.logits().to_vec())
}

/// The checkpoint of the shared-classifier fixture, read once.
fn shared() -> &'static Llama2cCheckpoint {
    static CKPT: OnceLock<Llama2cCheckpoint> = OnceLock::new();
    CKPT.get_or_init(|| Llama2cCheckpoint::from_bytes(SHARED).unwrap())
}

/// The model of [`shared`] and its configuration.
fn shared_model() -> (LlamaConfig, Llama<'static, f32>) {
    let cfg = *shared().config();
    (cfg, Llama::new(cfg, shared().weights().unwrap()).unwrap())
}

/// A fresh Llama state for `cfg` with chunks of `chunk` tokens.
fn llama_state(cfg: &LlamaConfig, chunk: usize) -> LlamaState<'static, f32> {
    LlamaState::new(cfg, chunk, leaked(0.0, cfg.state_len(chunk))).unwrap()
}

/// A fresh state for the configuration of the GQA fixture (another model).
fn gqa_state() -> LlamaState<'static, f32> {
    llama_state(Llama2cCheckpoint::from_bytes(GQA).unwrap().config(), 1)
}

fn small_llama_cfg() -> LlamaConfig {
    LlamaConfig {
        dim: 8,
        hidden_dim: 16,
        n_layers: 1,
        n_heads: 2,
        n_kv_heads: 2,
        vocab_size: 4,
        seq_len: 4,
        shared_classifier: true,
    }
}

fn small_llama_data(cfg: &LlamaConfig) -> Vec<f32> {
    (0..cfg.weights_len())
        .map(|i| (i % 7) as f32 * 0.1 - 0.3)
        .collect()
}

/// The input errors every forward pass shares, `forward` running the tokens
/// on a state with chunks of `chunk` of a model with `vocab` tokens: no
/// tokens, more tokens than the chunk, an id outside the vocabulary (alone,
/// after a valid one, or the largest).
fn check_forward_inputs(
    chunk: usize,
    vocab: usize,
    mut forward: impl FnMut(&[usize], LogitRows) -> Result<()>,
) {
    let too_many: Vec<usize> = (1..=chunk + 1).collect();
    expect_err!(forward(&[], LogitRows::Last), Error::Empty { .. });
    expect_err!(
        forward(&too_many, LogitRows::Last),
        Error::BufferTooSmall { needed, found, .. } if (needed, found) == (chunk + 1, chunk)
    );
    for bad in [&[vocab][..], &[1, vocab]] {
        expect_err!(
            forward(bad, LogitRows::Last),
            Error::OutOfRange { index, len, .. } if (index, len) == (vocab, vocab),
            "{bad:?}"
        );
    }
    expect_err!(
        forward(&[usize::MAX], LogitRows::All),
        Error::OutOfRange { .. }
    );
}

// ------------------------------------------------------------------- models

#[test]
fn audit_cm_decoder_traits_through_llama() {
    let (cfg, m) = shared_model();
    let other = LlamaConfig { seq_len: 32, ..cfg };
    let (mut st, mut st2) = (llama_state(&cfg, 1), llama_state(&cfg, 1));
    let mut foreign = llama_state(&other, 1);
    assert_eq!(Decoder::vocab_size(&m), 423);
    assert!(Decoder::accepts(&m, &st) && !Decoder::accepts(&m, &foreign));
    Decoder::step(&m, 5, &mut st).unwrap();
    let before = snap(&st);
    assert_eq!(DecoderState::position(&st), 1);
    assert_eq!(DecoderState::logits(&st).len(), 423);
    // step: a token id ≥ vocab, a state of another configuration.
    expect_err!(
        Decoder::step(&m, 423, &mut st),
        Error::OutOfRange {
            index: 423,
            len: 423,
            ..
        }
    );
    expect_err!(
        Decoder::step(&m, 5, &mut foreign),
        Error::InvalidParameter { .. }
    );
    assert_eq!(snap(&st), before);
    // copy_from: states of different shapes.
    assert!(DecoderState::same_shape(&st, &st2) && !DecoderState::same_shape(&st, &foreign));
    expect_err!(
        DecoderState::copy_from(&mut foreign, &st),
        Error::InvalidParameter { .. }
    );
    assert_eq!(foreign.position(), 0);
    DecoderState::copy_from(&mut st2, &st).unwrap();
    assert_eq!(st2.position(), 1);
    // step into a full cache.
    let mut full = llama_state(&cfg, cfg.seq_len);
    m.forward(&vec![3; cfg.seq_len], &mut full, LogitRows::Last)
        .unwrap();
    let before = snap(&full);
    expect_err!(
        Decoder::step(&m, 3, &mut full),
        Error::CacheFull { capacity: 64 }
    );
    assert_eq!(snap(&full), before);
    DecoderState::reset(&mut full);
    assert_eq!((DecoderState::position(&full), full.logits().len()), (0, 0));
}

#[test]
fn audit_cm_beams_new_rejects_bad_states() {
    let (cfg, m) = shared_model();
    let other = LlamaConfig { seq_len: 32, ..cfg };
    let mut states: Vec<_> = (0..4).map(|_| llama_state(&cfg, 1)).collect();
    let mut foreign = [llama_state(&other, 1)];
    let (s, sp) = states.split_at_mut(2);
    // No states.
    expect_err!(
        LlamaBeams::new(&m, &mut [], &mut sp[..]),
        Error::Empty { .. }
    );
    // Fewer spares than states.
    expect_err!(
        LlamaBeams::new(&m, &mut s[..], &mut sp[..1]),
        Error::InvalidParameter { .. }
    );
    // A state made for another model.
    expect_err!(
        LlamaBeams::new(&m, &mut foreign[..], &mut sp[..1]),
        Error::InvalidParameter { .. }
    );
    // A spare of another shape.
    let (s1, _) = s.split_at_mut(1);
    expect_err!(
        LlamaBeams::new(&m, &mut s1[..], &mut foreign[..]),
        Error::InvalidParameter { .. }
    );
    assert!(LlamaBeams::new(&m, &mut s[..], &mut sp[..]).is_ok());
}

// -------------------------------------------------------------------- gpt2

fn gpt2_cfg() -> Gpt2Config {
    Gpt2Config::new(16, 8, 8, 1, 2)
}

fn gpt2_data(cfg: &Gpt2Config) -> Vec<f32> {
    (0..cfg.weights_len())
        .map(|i| ((i * 37 % 101) as f32 / 101.0 - 0.5) * 0.2)
        .collect()
}

/// The GPT-2 model of [`gpt2_cfg`] (weights leaked) and its configuration.
fn gpt2_model() -> (Gpt2Config, Gpt2<'static, f32>) {
    let cfg = gpt2_cfg();
    let data = gpt2_data(&cfg).leak();
    (
        cfg,
        Gpt2::new(cfg, Gpt2Weights::from_flat(&cfg, data).unwrap()).unwrap(),
    )
}

/// A fresh GPT-2 state with chunks of `chunk` and a cache of `capacity`.
fn gpt2_state(
    cfg: &Gpt2Config,
    chunk: usize,
    capacity: usize,
    policy: CachePolicy,
) -> Gpt2State<'static, f32> {
    let arena = leaked(0.0, cfg.state_len(chunk, capacity));
    Gpt2State::new(cfg, chunk, capacity, policy, arena).unwrap()
}

#[test]
fn audit_cm_gpt2_config_and_weights_checks() {
    let cfg = gpt2_cfg();
    cfg.check().unwrap();
    for bad in [
        Gpt2Config::new(0, 8, 8, 1, 2),
        Gpt2Config::new(16, 0, 8, 1, 2),
        Gpt2Config::new(16, 8, 0, 1, 2),
        Gpt2Config::new(16, 8, 8, 0, 2),
        Gpt2Config::new(16, 8, 8, 1, 0),
        Gpt2Config::new(16, 8, 8, 1, 3),
        Gpt2Config { eps: 0.0, ..cfg },
        Gpt2Config { eps: -1e-5, ..cfg },
        Gpt2Config {
            eps: f64::NAN,
            ..cfg
        },
        Gpt2Config {
            eps: f64::INFINITY,
            ..cfg
        },
        Gpt2Config::new(usize::MAX / 2, 8, 8, 1, 2),
    ] {
        expect_err!(bad.check(), Error::InvalidParameter { .. }, "{bad:?}");
        expect_err!(
            Gpt2Weights::<f32>::from_flat(&bad, &[]),
            Error::InvalidParameter { .. },
            "{bad:?}"
        );
    }
    // The const sizes never fail: they saturate.
    let huge = Gpt2Config::new(usize::MAX, 1, 2, 1, 1);
    assert_eq!(huge.weights_len(), usize::MAX);
    assert_eq!(cfg.state_len(usize::MAX, 1), usize::MAX);
    assert_eq!(cfg.state_len(1, usize::MAX), usize::MAX);
    // from_flat: the buffer must have weights_len elements.
    let data = gpt2_data(&cfg);
    expect_err!(
        Gpt2Weights::from_flat(&cfg, &data[1..]),
        Error::LengthMismatch { .. }
    );
    let w = Gpt2Weights::from_flat(&cfg, &data).unwrap();
    // check / Gpt2::new: a tensor of the wrong length.
    short_tensor_refused!(w, lnf_b, "GPT-2: lnf_b", cfg, Gpt2::<f32>::new);
    expect_err!(
        w.check(&Gpt2Config::new(16, 8, 8, 1, 3)),
        Error::InvalidParameter { .. }
    );
    let m = Gpt2::<f32>::new(cfg, w).unwrap();
    assert_eq!(*m.config(), cfg);
}

#[test]
fn audit_cm_gpt2_conv1d_to_linear_lengths() {
    let src = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0]; // (IN 2, OUT 3)
    let mut dst = [0.0f32; 6];
    expect_err!(
        conv1d_to_linear(&src, usize::MAX, 2, &mut dst),
        Error::InvalidParameter { .. }
    );
    for (what, r) in [
        (
            "conv1d_to_linear: src",
            conv1d_to_linear(&src[..5], 2, 3, &mut dst),
        ),
        (
            "conv1d_to_linear: dst",
            conv1d_to_linear(&src, 2, 3, &mut dst[..5]),
        ),
    ] {
        expect_err!(r, Error::LengthMismatch { what: w, .. } if w == what, "{what}");
    }
    assert_eq!(dst, [0.0; 6], "dst untouched after the errors");
    conv1d_to_linear(&src, 2, 3, &mut dst).unwrap();
    assert_eq!(dst, [1.0, 4.0, 2.0, 5.0, 3.0, 6.0]);
    conv1d_to_linear::<f32>(&[], 0, 5, &mut []).unwrap();
    conv1d_to_linear::<f32>(&[], 5, 0, &mut []).unwrap();
}

#[test]
fn audit_cm_gpt2_state_new_errors() {
    let cfg = gpt2_cfg();
    let need = cfg.state_len(2, 8);
    let mut arena = vec![0.0f32; need];
    let (b, ring) = (CachePolicy::Bounded, CachePolicy::Ring);
    let odd_heads = Gpt2Config::new(16, 8, 8, 1, 3);
    // (configuration, chunk, capacity, policy, the `what` if checked)
    for (c, chunk, capacity, policy, what) in [
        (&odd_heads, 1, 8, b, None),
        (&cfg, 0, 8, b, None),
        (&cfg, 2, 0, ring, None),
        (&cfg, 2, 9, b, Some("Gpt2State: capacity")),
        (&cfg, usize::MAX, 8, b, None),
        (&cfg, 1, usize::MAX, ring, None),
    ] {
        expect_err!(
            Gpt2State::new(c, chunk, capacity, policy, &mut arena),
            Error::InvalidParameter { what: w, .. } if what.is_none_or(|x| x == w),
            "chunk {chunk}, capacity {capacity}, {policy:?}"
        );
    }
    expect_err!(
        Gpt2State::new(&cfg, 2, 8, b, &mut arena[..need - 1]),
        Error::BufferTooSmall { needed, found, .. } if needed == need && found == need - 1
    );
    // A ring may be larger than n_positions.
    let mut big = vec![0.0f32; cfg.state_len(1, 20)];
    assert!(Gpt2State::new(&cfg, 1, 20, ring, &mut big).is_ok());
    // Gpt2Sized::state: the arena must hold STATE_LEN.
    type Tiny<'a> = Gpt2Sized<'a, f32, 16, 8, 8, 2, 1>;
    let data = gpt2_data(&Tiny::CONFIG);
    let m = Tiny::new(Gpt2Weights::from_flat(&Tiny::CONFIG, &data).unwrap()).unwrap();
    let mut short = vec![0.0f32; Tiny::STATE_LEN - 1];
    expect_err!(m.state(&mut short), Error::BufferTooSmall { .. });
}

#[test]
fn audit_cm_gpt2_forward_errors_leave_state_unchanged() {
    let (cfg, m) = gpt2_model();
    // Bounded cache of 4 positions (fewer than n_positions = 8), chunks of 2.
    let mut st = gpt2_state(&cfg, 2, 4, CachePolicy::Bounded);
    m.forward(&[1, 2], &mut st, LogitRows::All).unwrap();
    let before = snap(&st);
    assert_eq!(before.1.len(), 2 * 16);
    check_forward_inputs(2, 16, |t, rows| m.forward(t, &mut st, rows));
    assert_eq!(snap(&st), before);
    m.forward(&[3, 4], &mut st, LogitRows::Last).unwrap();
    let before = snap(&st);
    expect_err!(
        m.forward(&[5], &mut st, LogitRows::Last),
        Error::CacheFull { capacity: 4 }
    );
    assert_eq!(snap(&st), before);
    // A state of another configuration.
    let other = Gpt2Config::new(17, 8, 8, 1, 2);
    let mut ost = gpt2_state(&other, 1, 8, CachePolicy::Bounded);
    expect_err!(
        m.forward(&[1], &mut ost, LogitRows::Last),
        Error::InvalidParameter { .. }
    );
    assert_eq!(ost.position(), 0);
    // A ring cache runs past its capacity but not past n_positions.
    let mut ring = gpt2_state(&cfg, 2, 2, CachePolicy::Ring);
    for p in 0..4 {
        m.forward(&[p, p + 1], &mut ring, LogitRows::Last).unwrap();
    }
    let before = snap(&ring);
    assert_eq!(before.0, 8);
    expect_err!(
        m.forward(&[1], &mut ring, LogitRows::Last),
        Error::OutOfRange {
            index: 8,
            len: 8,
            ..
        }
    );
    assert_eq!(snap(&ring), before);
    // The const face gives the same errors.
    type Tiny<'a> = Gpt2Sized<'a, f32, 16, 8, 8, 2, 1>;
    let data = gpt2_data(&cfg);
    let tiny = Tiny::new(Gpt2Weights::from_flat(&Tiny::CONFIG, &data).unwrap()).unwrap();
    assert_eq!(*tiny.model().config(), cfg);
    let mut ta = vec![0.0f32; Tiny::STATE_LEN];
    let mut ts = tiny.state(&mut ta).unwrap();
    expect_err!(
        tiny.forward(&[16], &mut ts, LogitRows::Last),
        Error::OutOfRange { index: 16, .. }
    );
    expect_err!(
        tiny.forward(&[1, 2], &mut ts, LogitRows::Last),
        Error::BufferTooSmall { .. }
    );
    for t in 0..8 {
        tiny.forward(&[t], &mut ts, LogitRows::Last).unwrap();
    }
    let before = snap(&ts);
    expect_err!(
        tiny.forward(&[1], &mut ts, LogitRows::Last),
        Error::OutOfRange { .. }
    );
    assert_eq!(snap(&ts), before);
    // Gpt2Sized::new: weights of another size.
    let other_data = gpt2_data(&other);
    expect_err!(
        Tiny::new(Gpt2Weights::from_flat(&other, &other_data).unwrap()),
        Error::LengthMismatch { .. }
    );
}

#[test]
fn audit_cm_gpt2_copy_from_shape_mismatch() {
    let (cfg, m) = gpt2_model();
    let mut src = gpt2_state(&cfg, 1, 4, CachePolicy::Bounded);
    let mut ring = gpt2_state(&cfg, 1, 4, CachePolicy::Ring);
    let mut longer = gpt2_state(&cfg, 1, 8, CachePolicy::Bounded);
    m.forward(&[3], &mut src, LogitRows::Last).unwrap();
    assert!(!ring.same_shape(&src) && !longer.same_shape(&src));
    expect_err!(ring.copy_from(&src), Error::InvalidParameter { .. });
    expect_err!(longer.copy_from(&src), Error::InvalidParameter { .. });
    assert_eq!((ring.position(), longer.position()), (0, 0));
    src.reset();
    assert_eq!((src.position(), src.logits().len()), (0, 0));
}

// ------------------------------------------------------------------- llama

#[test]
fn audit_cm_llama_config_checks() {
    let cfg = small_llama_cfg();
    cfg.check().unwrap();
    let zero = |f: fn(&mut LlamaConfig)| {
        let mut c = cfg;
        f(&mut c);
        c
    };
    for bad in [
        zero(|c| c.dim = 0),
        zero(|c| c.hidden_dim = 0),
        zero(|c| c.n_layers = 0),
        zero(|c| c.n_heads = 0),
        zero(|c| c.n_kv_heads = 0),
        zero(|c| c.vocab_size = 0),
        zero(|c| c.seq_len = 0),
        zero(|c| c.n_heads = 3),                      // does not divide dim
        zero(|c| (c.dim, c.n_heads) = (6, 2)),        // odd head size
        zero(|c| (c.n_heads, c.n_kv_heads) = (4, 3)), // kv heads ∤ heads
        zero(|c| c.vocab_size = usize::MAX / 2),      // overflow
    ] {
        expect_err!(bad.check(), Error::InvalidParameter { .. }, "{bad:?}");
    }
    // The const sizes never fail.
    let none = zero(|c| c.n_heads = 0);
    assert_eq!((none.head_size(), none.kv_dim()), (0, 0));
    let huge = zero(|c| c.vocab_size = usize::MAX);
    assert_eq!(huge.weights_len(), usize::MAX);
    assert_eq!(cfg.state_len(usize::MAX), usize::MAX);
    assert_eq!(cfg.state_bytes::<f64>(usize::MAX / 2), usize::MAX);
    assert_eq!(cfg.state_bytes::<f32>(1), cfg.state_len(1) * 4);
}

#[test]
fn audit_cm_llama_weights_from_flat_and_parts() {
    let cfg = small_llama_cfg();
    let data = small_llama_data(&cfg);
    let bad_cfg = LlamaConfig { n_heads: 3, ..cfg };
    expect_err!(
        LlamaWeights::from_flat(&bad_cfg, &data),
        Error::InvalidParameter { .. }
    );
    expect_err!(
        LlamaWeights::from_flat(&cfg, &data[1..]),
        Error::LengthMismatch { .. }
    );
    expect_err!(
        LlamaWeights::from_parts(&bad_cfg, &data, None),
        Error::InvalidParameter { .. }
    );
    expect_err!(
        LlamaWeights::from_parts(&cfg, &data[1..], None),
        Error::LengthMismatch { .. }
    );
    // A classifier exactly when untied.
    let cls = vec![0.5f32; cfg.vocab_size * cfg.dim];
    let untied = LlamaConfig {
        shared_classifier: false,
        ..cfg
    };
    for (c, wcls) in [(&cfg, Some(&cls[..])), (&untied, None)] {
        expect_err!(
            LlamaWeights::from_parts(c, &data, wcls),
            Error::InvalidParameter { .. },
            "{c:?}"
        );
    }
    expect_err!(
        LlamaWeights::from_parts(&untied, &data, Some(&cls[1..])),
        Error::LengthMismatch { what, .. } if what == "Llama: wcls"
    );
    assert!(LlamaWeights::from_parts(&untied, &data, Some(&cls)).is_ok());
    // check / Llama::new: one tensor of the wrong length.
    let w = LlamaWeights::from_flat(&cfg, &data).unwrap();
    short_tensor_refused!(w, rms_final, "Llama: rms_final", cfg, Llama::<f32>::new);
    expect_err!(w.check(&bad_cfg), Error::InvalidParameter { .. });
    let m = Llama::<f32>::new(cfg, w).unwrap();
    assert_eq!(*m.config(), cfg);
    assert_eq!(m.weights().wq.len(), 64);
}

#[test]
fn audit_cm_llama_state_new_and_truncate() {
    let (cfg, m) = shared_model();
    let need = cfg.state_len(2);
    let mut arena = vec![0.0f32; need];
    let odd_heads = LlamaConfig { n_heads: 3, ..cfg };
    for (c, chunk) in [(&odd_heads, 2), (&cfg, 0), (&cfg, usize::MAX)] {
        expect_err!(
            LlamaState::new(c, chunk, &mut arena),
            Error::InvalidParameter { .. },
            "chunk {chunk}"
        );
    }
    expect_err!(
        LlamaState::new(&cfg, 2, &mut arena[..need - 1]),
        Error::BufferTooSmall { needed, found, .. } if needed == need && found == need - 1
    );
    let mut st = LlamaState::new(&cfg, 2, &mut arena).unwrap();
    assert_eq!((st.chunk(), st.position(), st.logits().len()), (2, 0, 0));
    m.forward(&[5, 6], &mut st, LogitRows::Last).unwrap();
    m.forward(&[7, 8], &mut st, LogitRows::Last).unwrap();
    let before = snap(&st);
    // truncate: past the current position.
    expect_err!(
        st.truncate(5),
        Error::PositionNotHeld {
            position: 5,
            oldest: 0,
            next: 4
        }
    );
    expect_err!(st.truncate(usize::MAX), Error::PositionNotHeld { .. });
    assert_eq!(snap(&st), before);
    st.truncate(4).unwrap();
    st.truncate(2).unwrap();
    assert_eq!(st.position(), 2);
    st.reset();
    assert_eq!((st.position(), st.logits().len()), (0, 0));
}

#[test]
fn audit_cm_llama_forward_errors_leave_state_unchanged() {
    let (cfg, m) = shared_model();
    let mut st = llama_state(&cfg, 4);
    m.forward(&[1, 20, 30], &mut st, LogitRows::All).unwrap();
    let before = snap(&st);
    assert_eq!(before.1.len(), 3 * 423);
    check_forward_inputs(4, 423, |t, rows| m.forward(t, &mut st, rows));
    assert_eq!(snap(&st), before);
    // A state of another configuration.
    let mut ost = gqa_state();
    expect_err!(
        m.forward(&[3], &mut ost, LogitRows::Last),
        Error::InvalidParameter { .. }
    );
    assert_eq!(ost.position(), 0);
    // Positions past seq_len.
    while st.position() + 4 <= cfg.seq_len {
        m.forward(&[9, 10, 11, 12], &mut st, LogitRows::Last)
            .unwrap();
    }
    let p = st.position();
    m.forward(&vec![13; cfg.seq_len - p], &mut st, LogitRows::Last)
        .unwrap();
    let before = snap(&st);
    assert_eq!(before.0, 64);
    expect_err!(
        m.forward(&[3], &mut st, LogitRows::Last),
        Error::CacheFull { capacity: 64 }
    );
    assert_eq!(snap(&st), before);
    st.truncate(62).unwrap();
    expect_err!(
        m.forward(&[3, 4, 5], &mut st, LogitRows::Last),
        Error::CacheFull { .. }
    );
    assert_eq!(st.position(), 62);
}

#[test]
fn audit_cm_llama_generate_rejects_bad_input() {
    let (_, m) = shared_model();
    let mut st = llama_state(m.config(), 2);
    m.forward(&[5, 6], &mut st, LogitRows::Last).unwrap();
    let before = snap(&st);
    let ok = |_: &[f32]| Ok(7usize);
    let quiet = |_: usize, _: usize| Ok(());
    // Rejected before the state is reset: the state is as it was.
    expect_err!(m.generate(&[], 4, &mut st, ok, quiet), Error::Empty { .. });
    expect_err!(
        m.generate(&[5, 423], 4, &mut st, ok, quiet),
        Error::OutOfRange {
            index: 423,
            len: 423,
            ..
        }
    );
    assert_eq!(snap(&st), before);
    expect_err!(
        m.generate(&[5], 4, &mut gqa_state(), ok, quiet),
        Error::InvalidParameter { .. }
    );
    // A picked id outside the vocabulary; errors of pick and emit pass through.
    expect_err!(
        m.generate(&[5], 4, &mut st, |_| Ok(423), quiet),
        Error::OutOfRange { index: 423, .. }
    );
    let fail = Error::Model { what: "test" };
    assert_eq!(
        m.generate(&[5], 4, &mut st, |_| Err(fail), quiet),
        Err(fail)
    );
    assert_eq!(
        m.generate(&[5, 6], 4, &mut st, ok, |_, _| Err(fail)),
        Err(fail)
    );
    // steps 0 or past seq_len mean seq_len: not an error.
    assert_eq!(m.generate(&[5], 0, &mut st, ok, quiet), Ok(64));
    assert_eq!(m.generate(&[5], usize::MAX, &mut st, ok, quiet), Ok(64));
}

/// The chunk size is not part of the shape: `copy_from` copies the caches
/// and positions, which depend on the configuration only. (This audit found
/// the docs promising a chunk-size check the code never made; the docs now
/// say what the code does.)
#[test]
fn audit_cm_llama_same_shape_is_the_configuration() {
    let cfg = small_llama_cfg();
    let one = llama_state(&cfg, 1);
    let mut three = llama_state(&cfg, 3);
    assert!(one.same_shape(&three));
    assert!(three.copy_from(&one).is_ok());
    let other = LlamaConfig {
        seq_len: cfg.seq_len + 1,
        ..cfg
    };
    let longer = llama_state(&other, 1);
    assert!(!one.same_shape(&longer));
    expect_err!(three.copy_from(&longer), Error::InvalidParameter { .. });
}

// ----------------------------------------------------------------- llama2c

fn header(v: [i32; 7]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

#[test]
fn audit_cm_llama2c_header_errors() {
    let good = [8, 16, 1, 2, 2, 4, 4];
    assert!(llama2c_config(&header(good)).unwrap().shared_classifier);
    assert!(
        !llama2c_config(&header([8, 16, 1, 2, 2, -4, 4]))
            .unwrap()
            .shared_classifier
    );
    expect_err!(llama2c_config(&header(good)[..27]), Error::Format { .. });
    for i in 0..7 {
        for v in [0, -1, i32::MIN] {
            let mut h = good;
            h[i] = v;
            if i == 5 && v == -1 {
                continue; // a negative vocabulary marks an untied classifier
            }
            expect_err!(
                llama2c_config(&header(h)),
                Error::Format { .. },
                "field {i} = {v}"
            );
        }
    }
    for h in [
        [8, 16, 1, 3, 3, 4, 4],                                // heads ∤ dim
        [6, 16, 1, 2, 2, 4, 4],                                // odd head size
        [8, 16, 1, 2, 3, 4, 4],                                // kv heads ∤ heads
        [1 << 30, 1 << 30, 1 << 30, 2, 2, i32::MAX, i32::MAX], // overflow
    ] {
        expect_err!(llama2c_config(&header(h)), Error::Format { .. }, "{h:?}");
    }
    // llama2c_floats: None on overflow, never an Err.
    let cfg = llama2c_config(&header(good)).unwrap();
    assert_eq!(llama2c_floats(&cfg), Some(cfg.weights_len() + 4 * 4));
    let huge = LlamaConfig {
        vocab_size: usize::MAX / 2,
        ..cfg
    };
    assert_eq!(llama2c_floats(&huge), None);
}

#[test]
fn audit_cm_llama2c_weights_and_decode_lengths() {
    let cfg = llama2c_config(&header([8, 16, 1, 2, 2, 4, 4])).unwrap();
    let n = llama2c_floats(&cfg).unwrap();
    let floats = vec![0.25f32; n];
    let mut longer = floats.clone();
    longer.push(0.0);
    let huge = LlamaConfig {
        vocab_size: usize::MAX / 2,
        ..cfg
    };
    for (c, data) in [
        (&cfg, &floats[1..]),
        (&cfg, &longer[..]),
        (&huge, &floats[..]),
    ] {
        expect_err!(
            llama2c_weights(c, data),
            Error::Format { .. },
            "{} floats",
            data.len()
        );
    }
    // A configuration LlamaConfig::check rejects (zero heads).
    let no_heads = LlamaConfig {
        n_heads: 0,
        n_kv_heads: 0,
        ..cfg
    };
    let m = llama2c_floats(&no_heads).unwrap();
    expect_err!(
        llama2c_weights(&no_heads, &vec![0.0f32; m]),
        Error::InvalidParameter { .. }
    );
    assert!(llama2c_weights(&cfg, &floats).is_ok());
    // decode_f32_le: exactly 4 bytes per value.
    let mut out = [9.0f32; 2];
    expect_err!(
        decode_f32_le(&[0u8; 7], &mut out),
        Error::LengthMismatch {
            expected: 8,
            found: 7,
            ..
        }
    );
    expect_err!(
        decode_f32_le(&[0u8; 9], &mut out),
        Error::LengthMismatch { .. }
    );
    assert_eq!(out, [9.0; 2]);
    decode_f32_le(&[0, 0, 128, 63, 0, 0, 0, 64], &mut out).unwrap();
    assert_eq!(out, [1.0, 2.0]);
}

#[test]
fn audit_cm_llama2c_checkpoint_rejects_bad_files() {
    let mut bytes = header([8, 16, 1, 2, 2, 4, 4]);
    let cfg = llama2c_config(&bytes).unwrap();
    let n = llama2c_floats(&cfg).unwrap();
    bytes.extend((0..n).flat_map(|i| (i as f32 * 1e-3).to_le_bytes()));
    let ok = Llama2cCheckpoint::from_bytes(&bytes).unwrap();
    assert_eq!(*ok.config(), cfg);
    assert_eq!(ok.floats().len(), n);
    assert_eq!(ok.weight_bytes(), cfg.weights_len() * 4);
    assert!(ok.weights().is_ok());
    let mut longer = bytes.clone();
    longer.push(0);
    // A header claiming far more than the data: Format, nothing allocated.
    let mut liar = header([4096, 16384, 64, 32, 32, 32000, 4096]);
    liar.extend_from_slice(&bytes[28..]);
    for bad in [
        &bytes[..27],
        &bytes[..bytes.len() - 1],
        &longer[..],
        &liar[..],
        &header([8, 16, 1, 3, 3, 4, 4])[..],
    ] {
        expect_err!(
            Llama2cCheckpoint::from_bytes(bad),
            Error::Format { .. },
            "{} bytes",
            bad.len()
        );
    }
    // read: the same checks on a file, and a file that cannot be read.
    expect_err!(
        Llama2cCheckpoint::read(temp_path("missing.bin")),
        Error::Format { .. }
    );
    for (name, data) in [
        ("short", &bytes[..20]),
        ("trunc", &bytes[..bytes.len() - 1]),
        ("long", &longer[..]),
        ("liar", &liar[..]),
    ] {
        let r = read_temp(name, data, Llama2cCheckpoint::read);
        expect_err!(r, Error::Format { .. }, "{name}");
    }
    let r = read_temp("good.bin", &bytes, Llama2cCheckpoint::read);
    assert_eq!(r.unwrap().floats(), ok.floats());
}

// -------------------------------------------------------------- llama2c_q8

/// A change to a header, for the header tests.
type Mutation = fn(&mut [u8]);

fn put_i32(b: &mut [u8], at: usize, v: i32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

/// Offset of the token embedding's scales in a version-2 file.
fn emb_scales_at(cfg: &LlamaConfig) -> usize {
    256 + llama2c_q8_norms_len(cfg) * 4 + cfg.vocab_size * cfg.dim
}

#[test]
fn audit_cm_q8_header_errors() {
    let (cfg, gs) = llama2c_q8_header(SHARED_Q8).unwrap();
    assert_eq!((cfg.dim, gs), (32, 32));
    expect_err!(llama2c_q8_header(&SHARED_Q8[..255]), Error::Format { .. });
    let cases: [(&str, Mutation); 14] = [
        ("magic", |b| b[0] = b'x'),
        ("version", |b| put_i32(b, 4, 1)),
        ("vocab 0", |b| put_i32(b, 28, 0)),
        ("vocab negative", |b| put_i32(b, 28, -423)),
        ("dim 0", |b| put_i32(b, 8, 0)),
        ("n_layers negative", |b| put_i32(b, 16, -2)),
        ("heads do not divide dim", |b| put_i32(b, 20, 3)),
        ("kv heads do not divide heads", |b| put_i32(b, 24, 3)),
        ("flag 2", |b| b[36] = 2),
        ("group size 0", |b| put_i32(b, 37, 0)),
        ("group size negative", |b| put_i32(b, 37, -32)),
        ("group size does not divide dim", |b| put_i32(b, 37, 5)),
        ("group size divides hidden only", |b| put_i32(b, 37, 64)),
        ("group size above the largest", |b| put_i32(b, 37, 1 << 17)),
    ];
    for (name, f) in cases {
        let mut b = SHARED_Q8[..256].to_vec();
        f(&mut b);
        expect_err!(llama2c_q8_header(&b), Error::Format { .. }, "{name}");
    }
    // The lengths never fail.
    assert_eq!(llama2c_q8_norms_len(&cfg), 5 * 32);
    let huge = LlamaConfig {
        n_layers: usize::MAX,
        ..cfg
    };
    assert_eq!(llama2c_q8_norms_len(&huge), usize::MAX);
    assert_eq!(llama2c_q8_len(&cfg, gs), Some(SHARED_Q8.len()));
    assert_eq!(llama2c_q8_len(&cfg, 0), None);
    assert_eq!(llama2c_q8_len(&huge, gs), None);
    assert_eq!(llama2c_q8_len(&LlamaConfig { n_heads: 3, ..cfg }, gs), None);
}

#[test]
fn audit_cm_q8_weights_and_checkpoint_errors() {
    let (cfg, _) = llama2c_q8_header(SHARED_Q8).unwrap();
    let nn = llama2c_q8_norms_len(&cfg);
    let mut norms = vec![0.0f32; nn];
    assert!(llama2c_q8_weights(SHARED_Q8, &mut norms).is_ok());
    let mut longer = SHARED_Q8.to_vec();
    longer.push(0);
    let at = emb_scales_at(&cfg);
    let with_scale = |v: f32| {
        let mut b = SHARED_Q8.to_vec();
        b[at + 4..at + 8].copy_from_slice(&v.to_le_bytes());
        b
    };
    let mut bad_header = SHARED_Q8.to_vec();
    bad_header[36] = 7;
    for (name, bad) in [
        ("short", SHARED_Q8[..SHARED_Q8.len() - 1].to_vec()),
        ("long", longer),
        ("header", bad_header),
        ("negative scale", with_scale(-1.0)),
        ("NaN scale", with_scale(f32::NAN)),
        ("infinite scale", with_scale(f32::INFINITY)),
    ] {
        let mut norms = vec![0.0f32; nn];
        expect_err!(
            llama2c_q8_weights(&bad, &mut norms),
            Error::Format { .. },
            "{name}"
        );
        expect_err!(
            Llama2cQ8Checkpoint::from_vec(bad),
            Error::Format { .. },
            "{name}"
        );
    }
    // Zero is a valid scale.
    assert!(Llama2cQ8Checkpoint::from_vec(with_scale(0.0)).is_ok());
    // norms shorter than llama2c_q8_norms_len.
    let mut short = vec![0.0f32; nn - 1];
    expect_err!(
        llama2c_q8_weights(SHARED_Q8, &mut short),
        Error::BufferTooSmall { needed, .. } if needed == nn
    );
    // read: a missing file, then the same checks.
    expect_err!(
        Llama2cQ8Checkpoint::read(temp_path("missing_q8.bin")),
        Error::Format { .. }
    );
    let r = read_temp("q8.bin", &SHARED_Q8[..300], Llama2cQ8Checkpoint::read);
    expect_err!(r, Error::Format { .. });
    let ck = Llama2cQ8Checkpoint::from_vec(SHARED_Q8.to_vec()).unwrap();
    assert_eq!(
        (*ck.config(), ck.group_size(), ck.bytes().len()),
        (cfg, 32, SHARED_Q8.len())
    );
    assert!(ck.weights().is_ok());
}

/// `llama2c_q8_export` of the small model with `data[at] = v` (when `at` is
/// given), in groups of `gs`.
fn export_small(at: Option<(usize, f32)>, gs: usize) -> Result<Vec<u8>> {
    let cfg = small_llama_cfg();
    let mut data = small_llama_data(&cfg);
    if let Some((i, v)) = at {
        data[i] = v;
    }
    llama2c_q8_export(&cfg, &LlamaWeights::from_flat(&cfg, &data).unwrap(), gs)
}

#[test]
fn audit_cm_q8_export_errors() {
    let cfg = small_llama_cfg();
    for gs in [0, 3, 16 + 1, 32, 1 << 17, usize::MAX] {
        expect_err!(
            export_small(None, gs),
            Error::InvalidParameter { .. },
            "gs {gs}"
        );
    }
    // Weights of another configuration.
    let data = small_llama_data(&cfg);
    let w = LlamaWeights::from_flat(&cfg, &data).unwrap();
    let other = LlamaConfig {
        vocab_size: 5,
        ..cfg
    };
    expect_err!(
        llama2c_q8_export(&other, &w, 4),
        Error::LengthMismatch { .. }
    );
    // A non-finite quantized weight: in the embedding, and inside w3.
    for (at, v) in [(3, f32::NAN), (data.len() - 20, f32::NEG_INFINITY)] {
        expect_err!(
            export_small(Some((at, v)), 4),
            Error::InvalidParameter { .. },
            "{v} at {at}"
        );
    }
    let bytes = llama2c_q8_export(&cfg, &w, 4).unwrap();
    assert_eq!(Some(bytes.len()), llama2c_q8_len(&cfg, 4));
}

/// Finding (this audit): a NaN RMSNorm weight used to be written into the
/// file (only the quantized tensors were checked); it is now an error.
#[test]
fn audit_cm_q8_export_rejects_non_finite_norms() {
    let cfg = small_llama_cfg();
    // The first value after the embedding is rms_att[0]. "`Err` for a bad
    // group size, weights that do not fit `cfg`, or a non-finite weight."
    let rms_att0 = cfg.vocab_size * cfg.dim;
    expect_err!(
        export_small(Some((rms_att0, f32::NAN)), 4),
        Error::InvalidParameter { .. }
    );
}

// ---------------------------------------------------------------- llama_q8

/// Two (2, 4) tensors in groups of 2: values, then scales of 0.5.
fn two_layers() -> Vec<u8> {
    let mut b = Vec::new();
    for _ in 0..2 {
        b.extend((1..=8).map(|v: i8| v as u8));
        b.extend((0..4).flat_map(|_| 0.5f32.to_le_bytes()));
    }
    b
}

#[test]
fn audit_cm_q8_layers_split_and_layer() {
    let b = two_layers();
    let mut neg = b.clone();
    neg[44..48].copy_from_slice(&(-0.5f32).to_le_bytes()); // layer 1's last scale
    let split = Q8Layers::split_from;
    expect_err!(split(&b, 2, 2, 4, 0), Error::InvalidParameter { .. });
    expect_err!(
        split(&b, 2, usize::MAX, 4, 2),
        Error::InvalidParameter { .. }
    );
    expect_err!(split(&b, 3, 2, 4, 2), Error::Format { .. });
    expect_err!(split(&b[..b.len() - 1], 2, 2, 4, 2), Error::Format { .. });
    expect_err!(split(&b, 2, 4, 2, 4), Error::InvalidParameter { .. });
    expect_err!(split(&neg, 2, 2, 4, 2), Error::Format { .. });
    let (l, rest) = split(&b, 2, 2, 4, 2).unwrap();
    assert!(rest.is_empty());
    assert_eq!(l.shape(), (2, 2, 4));
    expect_err!(
        l.layer(2),
        Error::OutOfRange {
            index: 2,
            len: 2,
            ..
        }
    );
    assert_eq!(l.layer(1).unwrap().value(7), Some(8));
    let (none, _) = split(&b, 0, 2, 4, 2).unwrap();
    expect_err!(none.layer(0), Error::OutOfRange { .. });
}

/// The weights of the Q8 fixture (norms leaked) and its configuration.
fn q8_weights() -> (LlamaConfig, LlamaQ8Weights<'static>) {
    let (cfg, _) = llama2c_q8_header(SHARED_Q8).unwrap();
    let norms = leaked(0.0f32, llama2c_q8_norms_len(&cfg));
    (cfg, llama2c_q8_weights(SHARED_Q8, norms).unwrap().1)
}

/// A scratch of `nq` values and `ns` scales.
fn q8_scratch(nq: usize, ns: usize) -> Q8Scratch<'static> {
    Q8Scratch {
        q: leaked(0, nq),
        s: leaked(0.0, ns),
    }
}

/// A Q8 model, a scratch for it, and a state.
type Q8Primed = (
    LlamaQ8<'static>,
    Q8Scratch<'static>,
    LlamaState<'static, f32>,
);

/// The Q8 fixture's model, a scratch of the right size, and a state with
/// chunks of `chunk` that has seen token 5.
fn q8_primed(chunk: usize) -> Q8Primed {
    let (cfg, w) = q8_weights();
    let (nq, ns) = llama_q8_scratch_len(&cfg, w.group_size);
    let mut sc = q8_scratch(nq, ns);
    let mut st = llama_state(&cfg, chunk);
    let m = LlamaQ8::new(cfg, w).unwrap();
    m.forward(&[5], &mut st, &mut sc, LogitRows::Last).unwrap();
    (m, sc, st)
}

#[test]
fn audit_cm_llama_q8_weights_check() {
    let (cfg, w) = q8_weights();
    w.check(&cfg).unwrap();
    let bigger = LlamaConfig {
        vocab_size: 424,
        ..cfg
    };
    let fewer_heads = LlamaConfig {
        n_kv_heads: 2,
        ..cfg
    };
    let odd_heads = LlamaConfig { n_heads: 3, ..cfg };
    let other_gs = LlamaQ8Weights {
        group_size: 16,
        ..w
    };
    for (weights, c, what) in [
        (w, &bigger, "LlamaQ8: token_embedding"),
        (w, &fewer_heads, "LlamaQ8: wk"),
        (w, &odd_heads, "LlamaConfig"),
        (other_gs, &cfg, "LlamaQ8: group size"),
    ] {
        expect_err!(
            weights.check(c),
            Error::InvalidParameter { what: w, .. } if w == what,
            "{what}"
        );
    }
    short_tensor_refused!(w, rms_att, "LlamaQ8: rms_att", cfg, LlamaQ8::<Simd>::new);
    expect_err!(
        LlamaQ8::<Scalar>::new(bigger, w),
        Error::InvalidParameter { .. }
    );
    let m = LlamaQ8::<Simd>::new(cfg, w).unwrap();
    assert_eq!((*m.config(), m.weights().group_size), (cfg, 32));
    // The scratch lengths never fail.
    assert_eq!(llama_q8_scratch_len(&cfg, 32), (64, 2));
    assert_eq!(llama_q8_scratch_len(&cfg, 0), (64, 0));
}

#[test]
fn audit_cm_llama_q8_forward_errors_leave_state_unchanged() {
    let (m, mut sc, mut st) = q8_primed(2);
    let (cfg, before) = (*m.config(), snap(&st));
    // A short scratch.
    let (nq, ns) = (sc.q.len(), sc.s.len());
    for (nq, ns) in [(nq - 1, ns), (nq, ns - 1)] {
        expect_err!(
            m.forward(&[6], &mut st, &mut q8_scratch(nq, ns), LogitRows::Last),
            Error::BufferTooSmall { .. },
            "scratch ({nq}, {ns})"
        );
    }
    // Llama::forward's errors.
    check_forward_inputs(2, 423, |t, rows| m.forward(t, &mut st, &mut sc, rows));
    assert_eq!(snap(&st), before);
    // An activation that is not finite (a NaN final norm weight): the error
    // comes from the classifier, after every layer ran; the state is as it was.
    let nan_norm = vec![f32::NAN; cfg.dim];
    let bad = LlamaQ8::<Simd>::new(
        cfg,
        LlamaQ8Weights {
            rms_final: &nan_norm,
            ..*m.weights()
        },
    )
    .unwrap();
    expect_err!(
        bad.forward(&[8, 9], &mut st, &mut sc, LogitRows::All),
        Error::InvalidParameter { .. }
    );
    assert_eq!(snap(&st), before);
    // ... and the next token continues as if the failed call never happened.
    m.forward(&[6], &mut st, &mut sc, LogitRows::Last).unwrap();
    let mut fresh = llama_state(&cfg, 2);
    m.forward(&[5], &mut fresh, &mut sc, LogitRows::Last)
        .unwrap();
    m.forward(&[6], &mut fresh, &mut sc, LogitRows::Last)
        .unwrap();
    assert_eq!(snap(&st), snap(&fresh));
    // Positions past seq_len.
    let mut full = llama_state(&cfg, cfg.seq_len);
    m.forward(&vec![7; cfg.seq_len], &mut full, &mut sc, LogitRows::Last)
        .unwrap();
    let before = snap(&full);
    expect_err!(
        m.forward(&[7], &mut full, &mut sc, LogitRows::Last),
        Error::CacheFull { capacity: 64 }
    );
    assert_eq!(snap(&full), before);
    // A state of another configuration.
    let mut ost = llama_state(&LlamaConfig { seq_len: 8, ..cfg }, 1);
    expect_err!(
        m.forward(&[7], &mut ost, &mut sc, LogitRows::Last),
        Error::InvalidParameter { .. }
    );
}

#[test]
fn audit_cm_llama_q8_generate_rejects_bad_input() {
    let (m, mut sc, mut st) = q8_primed(1);
    let before = snap(&st);
    let ok = |_: &[f32]| Ok(7usize);
    let quiet = |_: usize, _: usize| Ok(());
    expect_err!(
        m.generate(&[], 3, &mut st, &mut sc, ok, quiet),
        Error::Empty { .. }
    );
    expect_err!(
        m.generate(&[423], 3, &mut st, &mut sc, ok, quiet),
        Error::OutOfRange { .. }
    );
    assert_eq!(snap(&st), before);
    expect_err!(
        m.generate(&[5], 3, &mut st, &mut sc, |_| Ok(9999), quiet),
        Error::OutOfRange { index: 9999, .. }
    );
    // A short scratch fails the first forward pass.
    expect_err!(
        m.generate(&[5], 3, &mut st, &mut q8_scratch(1, 1), ok, quiet),
        Error::BufferTooSmall { .. }
    );
    assert_eq!(m.generate(&[5], 3, &mut st, &mut sc, ok, quiet), Ok(3));
}

// ------------------------------------------------------------------- quant

#[test]
fn audit_cm_quant_group_and_quantize_errors() {
    for (gs, cols) in [(0, 4), (65537, 65537), (3, 4), (8, 4)] {
        expect_err!(
            check_group(gs, cols),
            Error::InvalidParameter { .. },
            "{gs} {cols}"
        );
    }
    assert!(check_group(65536, 65536).is_ok() && check_group(1, 0).is_ok());
    let x = [0.5f32, -1.0, 0.25, 0.0, 2.0, 1.0, -0.5, 0.125];
    let (mut q, mut s) = ([99i8; 8], [-1.0f32; 2]);
    let (even, away) = (Rounding::HalfEven, Rounding::HalfAway);
    expect_err!(
        quantize_q8(&x, 3, even, &mut q, &mut s),
        Error::InvalidParameter { .. }
    );
    for (what, r) in [
        (
            "quantize_q8: q",
            quantize_q8(&x, 4, even, &mut q[..7], &mut s),
        ),
        (
            "quantize_q8: s",
            quantize_q8(&x, 4, away, &mut q, &mut s[..1]),
        ),
    ] {
        expect_err!(r, Error::LengthMismatch { what: w, .. } if w == what, "{what}");
    }
    for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
        let mut y = x;
        y[6] = bad;
        expect_err!(
            quantize_q8(&y, 4, away, &mut q, &mut s),
            Error::InvalidParameter { what, .. } if what == "quantize_q8: x",
            "{bad}"
        );
    }
    assert_eq!((q, s), ([99; 8], [-1.0; 2]), "nothing written after an Err");
    // dequantize_q8.
    let mut out = [7.0f32; 8];
    let qs = [1i8, 2, 3, 4, 5, 6, 7, 8];
    expect_err!(
        dequantize_q8(&qs, &[1.0, 1.0], 3, &mut out),
        Error::InvalidParameter { .. }
    );
    for (what, r) in [
        ("dequantize_q8: s", dequantize_q8(&qs, &[1.0], 4, &mut out)),
        (
            "dequantize_q8: x",
            dequantize_q8(&qs, &[1.0, 1.0], 4, &mut out[..7]),
        ),
    ] {
        expect_err!(r, Error::LengthMismatch { what: w, .. } if w == what, "{what}");
    }
    assert_eq!(out, [7.0; 8]);
    // A NaN scale is not checked here: it reaches its group.
    dequantize_q8(&qs, &[f32::NAN, 1.0], 4, &mut out).unwrap();
    assert!(out[..4].iter().all(|v| v.is_nan()) && out[4..] == [5.0, 6.0, 7.0, 8.0]);
    // q8_bytes: None for gs 0 or an overflow.
    assert_eq!(q8_bytes(2, 4, 2), Some(8 + 16));
    assert_eq!(q8_bytes(2, 4, 0), None);
    assert_eq!(q8_bytes(usize::MAX, 2, 1), None);
    assert_eq!(q8_bytes(usize::MAX / 2, 1, 1), None);
}

/// The little-endian bytes of `scales`.
fn scale_bytes(scales: &[f32]) -> Vec<u8> {
    scales.iter().flat_map(|v| v.to_le_bytes()).collect()
}

#[test]
fn audit_cm_quant_matrix_views() {
    let q = [1u8, 2, 3, 4, 5, 6, 7, 0xFF]; // (2, 4), value 7 is −1
    let scales = scale_bytes(&[0.5, 1.0, 2.0, 0.0]);
    expect_err!(
        Q8Matrix::new(&q, &scales, 2, 4, 3),
        Error::InvalidParameter { .. }
    );
    expect_err!(
        Q8Matrix::new(&q, &scales, usize::MAX, 2, 1),
        Error::InvalidParameter { .. }
    );
    expect_err!(
        Q8Matrix::new(&q[..7], &scales, 2, 4, 2),
        Error::LengthMismatch { .. }
    );
    expect_err!(
        Q8Matrix::new(&q, &scales[..15], 2, 4, 2),
        Error::LengthMismatch { .. }
    );
    for bad in [-1.0f32, f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
        let mut s = scales.clone();
        s[8..12].copy_from_slice(&bad.to_le_bytes());
        expect_err!(
            Q8Matrix::new(&q, &s, 2, 4, 2),
            Error::Format { .. },
            "{bad}"
        );
    }
    // split_from: the data must hold the whole tensor.
    let mut all = q.to_vec();
    all.extend(&scales);
    all.push(42);
    expect_err!(
        Q8Matrix::split_from(&all[..23], 2, 4, 2),
        Error::Format { .. }
    );
    expect_err!(
        Q8Matrix::split_from(&all, 2, 4, 0),
        Error::InvalidParameter { .. }
    );
    expect_err!(
        Q8Matrix::split_from(&all, usize::MAX, 4, 2),
        Error::InvalidParameter { .. }
    );
    let (m, rest) = Q8Matrix::split_from(&all, 2, 4, 2).unwrap();
    assert_eq!(rest, &[42]);
    assert_eq!((m.shape(), m.group_size()), ((2, 4), 2));
    // Accessors: None past the end.
    assert_eq!(
        (m.scale(3), m.scale(4), m.scale(usize::MAX)),
        (Some(0.0), None, None)
    );
    assert_eq!((m.value(7), m.value(8)), (Some(-1), None));
    // dequantize_row.
    let mut out = [9.0f32; 4];
    expect_err!(
        m.dequantize_row(2, &mut out),
        Error::OutOfRange {
            index: 2,
            len: 2,
            ..
        }
    );
    expect_err!(
        m.dequantize_row(0, &mut out[..3]),
        Error::LengthMismatch { .. }
    );
    assert_eq!(out, [9.0; 4]);
    m.dequantize_row(1, &mut out).unwrap();
    assert_eq!(out, [10.0, 12.0, 0.0, 0.0]);
}

/// `q8_linear_with` of a backend.
type Q8Linear =
    fn(&Q8Matrix<'_>, MatRef<'_, f32>, MatMut<'_, f32>, &mut Q8Scratch<'_>) -> Result<()>;

#[test]
fn audit_cm_quant_products_errors() {
    let q = [1u8, 2, 3, 4, 5, 6, 7, 8];
    let scales = scale_bytes(&[0.5, 1.0, 2.0, 0.25]);
    let m = Q8Matrix::new(&q, &scales, 2, 4, 2).unwrap();
    let (xq, xs) = ([1i8, 1, 1, 1], [1.0f32, 1.0]);
    let mut y = [7.0f32; 2];
    for (r, what) in [
        (
            q8_matvec_with::<Simd>(&m, &xq[..3], &xs, &mut y),
            "q8_matvec: x values",
        ),
        (
            q8_matvec_with::<Scalar>(&m, &xq, &xs[..1], &mut y),
            "q8_matvec: x scales",
        ),
        (
            q8_matvec_with::<Simd>(&m, &xq, &xs, &mut [0.0; 3]),
            "q8_matvec: y",
        ),
    ] {
        expect_err!(r, Error::LengthMismatch { what: w, .. } if w == what, "{what}");
    }
    assert_eq!(y, [7.0; 2]);
    // q8_linear_with: shapes, the scratch, a non-finite activation.
    let x = [1.0f32, 2.0, 3.0, 4.0, 1.0, NAN, 0.0, 0.0];
    let mut yy = [7.0f32; 4];
    let mut scratch = q8_scratch(4, 2);
    let x23 = MatRef::new(&x[..6], 2, 3).unwrap();
    let x24 = MatRef::new(&x, 2, 4).unwrap();
    for linear in [q8_linear_with::<Simd> as Q8Linear, q8_linear_with::<Scalar>] {
        let y22 = MatMut::new(&mut yy, 2, 2).unwrap();
        expect_err!(
            linear(&m, x23, y22, &mut scratch),
            Error::LengthMismatch { .. }
        );
        let y12 = MatMut::new(&mut yy[..2], 1, 2).unwrap();
        expect_err!(
            linear(&m, x24, y12, &mut scratch),
            Error::ShapeMismatch { .. }
        );
        // A scratch too small for the values, then for the scales.
        for (nq, ns, short) in [(3, 2, (4, 3)), (4, 1, (2, 1))] {
            let y22 = MatMut::new(&mut yy, 2, 2).unwrap();
            expect_err!(
                linear(&m, x24, y22, &mut q8_scratch(nq, ns)),
                Error::BufferTooSmall { needed, found, .. } if (needed, found) == short,
                "scratch ({nq}, {ns})"
            );
        }
        assert_eq!(yy, [7.0; 4]);
    }
    // Row 1 holds a NaN: Err, with row 0 already written.
    expect_err!(
        q8_linear_with::<Simd>(&m, x24, MatMut::new(&mut yy, 2, 2).unwrap(), &mut scratch),
        Error::InvalidParameter { what, .. } if what == "quantize_q8: x"
    );
    assert!(yy[..2] != [7.0; 2] && yy[2..] == [7.0; 2], "{yy:?}");
}

// --------------------------------------------------------------- tokenizer

fn tok_file(max_len: i32, pieces: &[(&[u8], f32)]) -> Vec<u8> {
    let mut b = max_len.to_le_bytes().to_vec();
    for (p, s) in pieces {
        b.extend(s.to_le_bytes());
        b.extend((p.len() as i32).to_le_bytes());
        b.extend(*p);
    }
    b
}

fn tiny_vocab(space: bool) -> Vec<u8> {
    let sp: &[u8] = if space { b" " } else { b"b" };
    tok_file(
        5,
        &[
            (b"<unk>", 0.0),
            (b"<s>", 0.0),
            (b"</s>", 0.0),
            (sp, -1.0),
            (b"a", -2.0),
        ],
    )
}

#[test]
fn audit_cm_tokenizer_from_bytes_errors() {
    let good = tiny_vocab(true);
    assert_eq!(Tokenizer::from_bytes(&good, 5).unwrap().vocab_size(), 5);
    let with_i32 = |at: usize, v: i32| {
        let mut b = good.clone();
        b[at..at + 4].copy_from_slice(&v.to_le_bytes());
        b
    };
    let negative_max = with_i32(0, -1);
    let negative_len = with_i32(8, -5);
    let past_end = with_i32(8, 1000);
    for (name, data, vocab) in [
        ("empty", &[][..], 1),
        ("3 bytes", &good[..3], 1),
        ("vocab 0", &good[..], 0),
        ("vocab too large", &good[..], 1_000_000_000),
        ("vocab past the pieces", &good[..], 6),
        ("truncated piece", &good[..good.len() - 1], 5),
        ("negative max length", &negative_max[..], 5),
        ("negative piece length", &negative_len[..], 5),
        ("piece past the end", &past_end[..], 5),
    ] {
        expect_err!(
            Tokenizer::from_bytes(data, vocab),
            Error::Format { .. },
            "{name}"
        );
    }
    expect_err!(
        Tokenizer::read(temp_path("missing_tok.bin"), 423),
        Error::Format { .. }
    );
    let r = read_temp("tok.bin", &good[..20], |p| Tokenizer::read(p, 5));
    expect_err!(r, Error::Format { .. });
    expect_err!(
        Tokenizer::from_bytes(TOKENIZER, usize::MAX),
        Error::Format { .. }
    );
}

#[test]
fn audit_cm_tokenizer_encode_decode_errors() {
    let t = Tokenizer::from_bytes(&tiny_vocab(true), 5).unwrap();
    // A byte-fallback id past the vocabulary.
    expect_err!(
        t.encode("z", true, false),
        Error::OutOfRange {
            index: 125,
            len: 5,
            ..
        }
    );
    assert_eq!(t.encode("a", true, true).unwrap(), vec![1, 3, 4, 2]);
    // No " " piece for the dummy prefix (only when the text is not empty).
    let ns = Tokenizer::from_bytes(&tiny_vocab(false), 5).unwrap();
    expect_err!(ns.encode("a", false, false), Error::Format { .. });
    assert_eq!(ns.encode("", true, true).unwrap(), vec![1, 2]);
    // encode_bytes: invalid UTF-8.
    expect_err!(
        t.encode_bytes(&[b'a', 0xFF], false, false),
        Error::Format { .. }
    );
    expect_err!(ns.encode_bytes(b"a", false, false), Error::Format { .. });
    // decode: an id outside the vocabulary (prev is not checked).
    expect_err!(
        t.decode(1, 5),
        Error::OutOfRange {
            index: 5,
            len: 5,
            ..
        }
    );
    expect_err!(t.decode(0, usize::MAX), Error::OutOfRange { .. });
    assert_eq!(t.decode(usize::MAX, 4).unwrap(), b"a");
    // The fixture vocabulary: every byte has a fallback id.
    let big = Tokenizer::from_bytes(TOKENIZER, 423).unwrap();
    assert!(big.encode("\u{1F600} \u{0}", true, true).is_ok());
    expect_err!(big.decode(1, 423), Error::OutOfRange { .. });
}

#[test]
fn audit_cm_tokenizer_accessors_at_edges() {
    let t = Tokenizer::from_bytes(&tiny_vocab(true), 5).unwrap();
    assert_eq!((t.vocab_size(), t.max_token_length()), (5, 5));
    assert_eq!((t.piece(4), t.piece(5)), (Some(&b"a"[..]), None));
    assert_eq!((t.score(4), t.score(5)), (Some(-2.0), None));
    assert_eq!(t.piece(usize::MAX), None);
    assert_eq!(
        (t.lookup(b"a"), t.lookup(b"zz"), t.lookup(b"")),
        (Some(4), None, None)
    );
    assert_eq!(printable(b""), None);
    assert_eq!(printable(&[0x07]), None);
    assert_eq!(printable(&[0x80]), None);
    assert_eq!(printable(b"\n"), Some(&b"\n"[..]));
    assert_eq!(printable(&[0xC3, 0xA9]), Some(&[0xC3, 0xA9][..]));
}
