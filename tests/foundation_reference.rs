//! The foundation kernels against PyTorch: gemm (A·B, A·Bᵀ, overwrite and
//! accumulate), matvec, softmax and log-softmax, the activations and dot, for
//! both backends and both element types, at the project's default tolerances
//! (f32: 1e-5 relative + 1e-6 absolute; f64: 1e-10; see the README's Testing).
//!
//! The vectors come from `tests/reference/gen_foundation.py`: PyTorch computing
//! in float64 for the f64 cases and in float32 for the f32 cases, inputs and
//! outputs both stored. PyTorch's own float32 results are not always within the
//! f32 tolerance of the true value (its vectorised f32 GELU is off by up to
//! ~1.1e-6, and a 64-term f32 product with cancellation by ~0.6 of the
//! tolerance), so each f32 output also has an `_exact` twin (PyTorch in float64
//! on the same f32 inputs, rounded to f32). An f32 kernel must be within the
//! default tolerance of `_exact`, and within the default tolerance plus
//! PyTorch's own deviation |f32 − exact| of PyTorch's f32 output.
//!
//! Run with `--nocapture` to see, for every family, the worst error as a
//! fraction of the tolerance and where it occurs.

mod common;

use common::refvec::DType;
use common::{Entry, RefFile, entry, ref_tol, to_vec};
use constml::{Accumulate, Backend, MatMut, MatRef, Real, Scalar, Simd};

static BYTES: &[u8] = include_bytes!("reference/foundation.bin");

fn file() -> RefFile<'static> {
    RefFile::parse(BYTES).expect("foundation.bin is not a valid CMLREF01 file")
}

/// The name part for this element type.
fn dt<T: Real>() -> &'static str {
    if T::BYTES == 4 { "f32" } else { "f64" }
}

/// The entry `prefix + name`, checked to hold elements of type `T`.
fn get<T: Real>(f: &RefFile<'static>, prefix: &str, name: &str) -> (Entry<'static>, Vec<T>) {
    let e = entry(f, &format!("{prefix}{name}"));
    let want = if T::BYTES == 4 {
        DType::F32
    } else {
        DType::F64
    };
    assert_eq!(e.dtype, want, "{prefix}{name}: element type");
    (e, to_vec::<T>(&e))
}

/// The prefixes `"{family}/{case}/{dt}/"` of every case of a family that has an
/// entry called `key`, in file order.
fn cases<T: Real>(f: &RefFile<'static>, family: &str, key: &str) -> Vec<String> {
    let tail = format!("/{}/{key}", dt::<T>());
    f.entries()
        .filter(|e| e.name.starts_with(&format!("{family}/")) && e.name.ends_with(&tail))
        .map(|e| e.name[..e.name.len() - key.len()].to_string())
        .collect()
}

/// What a kernel output is compared with: PyTorch's output in the element type
/// and, for f32, `exact` — PyTorch in float64 on the same f32 inputs, rounded to
/// f32 (see the generator's docstring for why both exist).
struct Want<T> {
    torch: Vec<T>,
    exact: Option<Vec<T>>,
}

/// The reference for output `name` of the case at `prefix`.
fn want<T: Real>(f: &RefFile<'static>, prefix: &str, name: &str) -> Want<T> {
    let torch = get::<T>(f, prefix, name).1;
    let exact = (T::BYTES == 4).then(|| get::<T>(f, prefix, &format!("{name}_exact")).1);
    Want { torch, exact }
}

impl<T: Real> Want<T> {
    /// The reference of `c0 + product` (the accumulate case), one rounding.
    fn plus(&self, c0: &[T]) -> Want<T> {
        let add = |v: &Vec<T>| v.iter().zip(c0).map(|(&x, &c)| c + x).collect::<Vec<T>>();
        Want {
            torch: add(&self.torch),
            exact: self.exact.as_ref().map(add),
        }
    }
}

/// `|got − want| / (atol + rtol·|want| + slack)`; 0 where they are equal,
/// including equal infinities and NaN against NaN.
fn ratio(got: f64, want: f64, rtol: f64, atol: f64, slack: f64) -> f64 {
    if got == want || (got.is_nan() && want.is_nan()) {
        0.0
    } else {
        (got - want).abs() / (atol + rtol * want.abs() + slack)
    }
}

/// Worst error of one comparison, as a fraction of the tolerance.
#[derive(Clone, Default)]
struct Worst {
    /// Against PyTorch's output (f32: tolerance widened by PyTorch's own error).
    torch: f64,
    /// f32 only: against the exact reference at the default tolerance.
    exact: f64,
    /// f32 only: against PyTorch's f32 output at the plain default tolerance
    /// (informative, not asserted).
    torch_plain: f64,
    /// Where the asserted ratio (f32: vs exact; f64: vs PyTorch) is worst.
    at: String,
}

impl Worst {
    /// The asserted ratio: against exact for f32, against PyTorch for f64.
    fn key(&self) -> f64 {
        if self.exact > 0.0 {
            self.exact
        } else {
            self.torch
        }
    }

    fn max(self, o: Worst) -> Worst {
        let at = if o.key() > self.key() { o.at } else { self.at };
        Worst {
            torch: self.torch.max(o.torch),
            exact: self.exact.max(o.exact),
            torch_plain: self.torch_plain.max(o.torch_plain),
            at,
        }
    }
}

/// Checks `got` against the reference at the project's default tolerance:
///
/// * f64: against PyTorch's float64 output, 1e-10 relative + 1e-10 absolute;
/// * f32: against the exact reference, 1e-5 relative + 1e-6 absolute; and
///   against PyTorch's float32 output at that tolerance plus PyTorch's own
///   deviation from the exact value (a kernel is not asked to reproduce
///   PyTorch's rounding).
///
/// `label(i)` names element `i` in a failure message.
#[track_caller]
fn check<T: Real>(what: &str, got: &[T], want: &Want<T>, label: impl Fn(usize) -> String) -> Worst {
    let (rtol, atol) = ref_tol::<T>();
    assert_eq!(got.len(), want.torch.len(), "{what}: length");
    let mut w = Worst::default();
    for (i, (&g, &t)) in got.iter().zip(&want.torch).enumerate() {
        let (g, t) = (g.as_f64(), t.as_f64());
        let (slack, exact) = match &want.exact {
            Some(e) => {
                let e = e[i].as_f64();
                let r = ratio(g, e, rtol, atol, 0.0);
                assert!(
                    r <= 1.0,
                    "{what}[{}]: got {g:e}, exact {e:e} (PyTorch f32 {t:e}); abs err {:e}, {r:.3} × tol",
                    label(i),
                    (g - e).abs()
                );
                if r > w.exact {
                    w.exact = r;
                    w.at = format!("{what}[{}]: got {g:e}, exact {e:e}", label(i));
                }
                w.torch_plain = w.torch_plain.max(ratio(g, t, rtol, atol, 0.0));
                // Where the references are infinite (−∞ in log-softmax) the
                // difference is NaN: no slack; `ratio` compares those exactly.
                let s = (t - e).abs();
                (if s.is_finite() { s } else { 0.0 }, e)
            }
            None => (0.0, t),
        };
        let r = ratio(g, t, rtol, atol, slack);
        assert!(
            r <= 1.0,
            "{what}[{}]: got {g:e}, PyTorch {t:e} (exact {exact:e}); abs err {:e}, {r:.3} × tol",
            label(i),
            (g - t).abs()
        );
        if want.exact.is_none() && r > w.torch {
            w.at = format!("{what}[{}]: got {g:e}, PyTorch {t:e}", label(i));
        }
        w.torch = w.torch.max(r);
    }
    w
}

fn index(i: usize) -> String {
    i.to_string()
}

fn report<B: Backend, T: Real>(family: &str, n: usize, w: Worst) {
    if T::BYTES == 4 {
        eprintln!(
            "{} f32 {family}: {n} cases; worst |err|/tol: vs exact {:.3}, vs PyTorch f32 {:.3} \
             (plain tolerance: {:.3})",
            B::NAME,
            w.exact,
            w.torch,
            w.torch_plain
        );
        eprintln!("    worst vs exact at {}", w.at);
    } else {
        eprintln!(
            "{} f64 {family}: {n} cases; worst |err|/tol vs PyTorch f64 {:.2e}",
            B::NAME,
            w.torch
        );
        eprintln!("    at {}", w.at);
    }
}

// ------------------------------------------------------------------------- gemm

fn gemm<B: Backend, T: Real>() {
    let f = file();
    let cases = cases::<T>(&f, "gemm", "ab");
    assert!(cases.len() >= 12, "too few gemm cases: {}", cases.len());
    let mut w = Worst::default();
    for p in &cases {
        let (ae, a) = get::<T>(&f, p, "a");
        let (be, b) = get::<T>(&f, p, "b");
        let (_, c0) = get::<T>(&f, p, "c0");
        let ab = want::<T>(&f, p, "ab");
        let (m, k) = (ae.dims()[0], ae.dims()[1]);
        let n = be.dims()[1];
        assert_eq!(be.dims()[0], k, "{p}: b rows");
        assert_eq!(ab.torch.len(), m * n, "{p}: ab");
        let at = |i: usize| format!("{}, {}", i / n.max(1), i % n.max(1));
        let am = MatRef::new(&a, m, k).unwrap();
        let bm = MatRef::new(&b, k, n).unwrap();
        // Bᵀ laid out as (n, k) for the A·Bᵀ kernel: A·(Bᵀ)ᵀ is the same product.
        let mut bt = vec![T::ZERO; n * k];
        for i in 0..k {
            for j in 0..n {
                bt[j * k + i] = b[i * n + j];
            }
        }
        let btm = MatRef::new(&bt, n, k).unwrap();
        // Accumulate: C starts as c0, expected = c0 + the reference product.
        let ab_add = ab.plus(&c0);

        // Overwrite: C starts as NaN, so an element the kernel forgets shows up.
        let mut c = vec![T::NAN; m * n];
        B::gemm(
            am,
            bm,
            MatMut::new(&mut c, m, n).unwrap(),
            Accumulate::Overwrite,
        )
        .unwrap();
        w = w.max(check(&format!("{p}gemm overwrite"), &c, &ab, at));

        let mut c = c0.clone();
        B::gemm(am, bm, MatMut::new(&mut c, m, n).unwrap(), Accumulate::Add).unwrap();
        w = w.max(check(&format!("{p}gemm add"), &c, &ab_add, at));

        let mut c = vec![T::NAN; m * n];
        B::gemm_bt(
            am,
            btm,
            MatMut::new(&mut c, m, n).unwrap(),
            Accumulate::Overwrite,
        )
        .unwrap();
        w = w.max(check(&format!("{p}gemm_bt overwrite"), &c, &ab, at));

        let mut c = c0.clone();
        B::gemm_bt(am, btm, MatMut::new(&mut c, m, n).unwrap(), Accumulate::Add).unwrap();
        w = w.max(check(&format!("{p}gemm_bt add"), &c, &ab_add, at));
    }
    report::<B, T>("gemm + gemm_bt (overwrite, add)", cases.len(), w);
}

// ----------------------------------------------------------------------- matvec

fn matvec<B: Backend, T: Real>() {
    let f = file();
    let cases = cases::<T>(&f, "matvec", "y");
    assert!(cases.len() >= 7, "too few matvec cases: {}", cases.len());
    let mut worst = Worst::default();
    for p in &cases {
        let (we, w) = get::<T>(&f, p, "w");
        let (_, x) = get::<T>(&f, p, "x");
        let (_, y0) = get::<T>(&f, p, "y0");
        let y_ref = want::<T>(&f, p, "y");
        let (out, inp) = (we.dims()[0], we.dims()[1]);
        let wm = MatRef::new(&w, out, inp).unwrap();

        let mut y = vec![T::NAN; out];
        B::matvec(wm, &x, &mut y, Accumulate::Overwrite).unwrap();
        worst = worst.max(check(&format!("{p}matvec overwrite"), &y, &y_ref, index));

        let mut y = y0.clone();
        B::matvec(wm, &x, &mut y, Accumulate::Add).unwrap();
        worst = worst.max(check(
            &format!("{p}matvec add"),
            &y,
            &y_ref.plus(&y0),
            index,
        ));
    }
    report::<B, T>("matvec (overwrite, add)", cases.len(), worst);
}

// ---------------------------------------------------------------------- softmax

fn softmax<B: Backend, T: Real>() {
    let f = file();
    let cases = cases::<T>(&f, "softmax", "softmax");
    assert!(cases.len() >= 14, "too few softmax cases: {}", cases.len());
    let (mut ws, mut wl) = (Worst::default(), Worst::default());
    for p in &cases {
        let (_, x) = get::<T>(&f, p, "x");
        let mut y = x.clone();
        B::softmax(&mut y);
        ws = ws.max(check(
            &format!("{p}softmax"),
            &y,
            &want(&f, p, "softmax"),
            index,
        ));
        let mut y = x.clone();
        B::log_softmax(&mut y);
        wl = wl.max(check(
            &format!("{p}log_softmax"),
            &y,
            &want(&f, p, "log_softmax"),
            index,
        ));
    }
    report::<B, T>("softmax", cases.len(), ws);
    report::<B, T>("log_softmax", cases.len(), wl);
}

/// The fully −∞ row is the one place constml deliberately differs from PyTorch:
/// PyTorch returns NaN there, constml's convention (a fully masked row gives
/// zeros, never NaN: `Backend::softmax`'s rustdoc) is an all-zero softmax row and an all −∞ log-softmax row (the log
/// of that zero row). The expected values below are that convention, not
/// PyTorch's output; the stored PyTorch outputs are only checked to be NaN, to
/// document the deviation.
fn softmax_all_neg_inf<B: Backend, T: Real>() {
    let f = file();
    let p = format!("softmax/all_neg_inf/{}/", dt::<T>());
    let (_, x) = get::<T>(&f, &p, "x");
    assert!(!x.is_empty() && x.iter().all(|&v| v == T::NEG_INFINITY));
    let (_, torch_sm) = get::<T>(&f, &p, "torch_softmax");
    let (_, torch_lsm) = get::<T>(&f, &p, "torch_log_softmax");
    assert!(
        torch_sm.iter().all(|v| v.is_nan()),
        "PyTorch softmax of a −∞ row"
    );
    assert!(
        torch_lsm.iter().all(|v| v.is_nan()),
        "PyTorch log_softmax of a −∞ row"
    );

    let mut y = x.clone();
    B::softmax(&mut y);
    assert!(y.iter().all(|&v| v == T::ZERO), "{p}softmax: {y:?}");
    let mut y = x.clone();
    B::log_softmax(&mut y);
    assert!(
        y.iter().all(|&v| v == T::NEG_INFINITY),
        "{p}log_softmax: {y:?}"
    );
}

// ------------------------------------------------------------------ activations

/// An in-place activation kernel.
type Activation<T> = fn(&mut [T]);

fn activations<B: Backend, T: Real>() {
    let f = file();
    let p = format!("act/{}/", dt::<T>());
    let (_, x) = get::<T>(&f, &p, "x");
    assert!(x.len() > 300);
    let kernels: [(&str, Activation<T>); 6] = [
        ("relu", B::relu::<T>),
        ("sigmoid", B::sigmoid::<T>),
        ("tanh", B::tanh::<T>),
        ("silu", B::silu::<T>),
        ("gelu", B::gelu::<T>),
        ("gelu_tanh", B::gelu_tanh::<T>),
    ];
    for (name, kernel) in kernels {
        let mut y = x.clone();
        kernel(&mut y);
        // Failures name the input, which is easier to diagnose than an index.
        let label = |i: usize| format!("x = {:e}", x[i].as_f64());
        let w = check(&format!("{p}{name}"), &y, &want(&f, &p, name), label);
        report::<B, T>(name, x.len(), w);
    }
}

// -------------------------------------------------------------------------- dot

fn dot<B: Backend, T: Real>() {
    let f = file();
    let cases = cases::<T>(&f, "dot", "out");
    assert!(cases.len() >= 6, "too few dot cases: {}", cases.len());
    let mut w = Worst::default();
    for p in &cases {
        let (_, a) = get::<T>(&f, p, "a");
        let (_, b) = get::<T>(&f, p, "b");
        let got = B::dot(&a, &b).unwrap();
        w = w.max(check(
            &format!("{p}dot"),
            &[got],
            &want(&f, p, "out"),
            index,
        ));
    }
    report::<B, T>("dot", cases.len(), w);
}

/// The `meta` entry is text naming the generator; the library versions it
/// records are printed, never checked (a regenerated file may come from other
/// versions).
#[test]
fn meta_names_the_generator() {
    let f = file();
    let meta = entry(&f, "meta");
    assert_eq!(meta.dtype, DType::U8);
    let text = meta.text();
    println!("foundation.bin meta: {text}");
    assert!(text.contains("gen_foundation.py"), "meta: {text}");
}

/// One module per (backend, element type), so a failure names the combination.
macro_rules! suite {
    ($name:ident, $b:ty, $t:ty) => {
        mod $name {
            use super::*;
            #[test]
            fn gemm() {
                super::gemm::<$b, $t>();
            }
            #[test]
            fn matvec() {
                super::matvec::<$b, $t>();
            }
            #[test]
            fn softmax() {
                super::softmax::<$b, $t>();
            }
            #[test]
            fn softmax_all_neg_inf() {
                super::softmax_all_neg_inf::<$b, $t>();
            }
            #[test]
            fn activations() {
                super::activations::<$b, $t>();
            }
            #[test]
            fn dot() {
                super::dot::<$b, $t>();
            }
        }
    };
}

suite!(scalar_f32, Scalar, f32);
suite!(simd_f32, Simd, f32);
suite!(scalar_f64, Scalar, f64);
suite!(simd_f64, Simd, f64);
