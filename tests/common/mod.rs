//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod refvec;

use constml::Real;
pub use refvec::{Entry, RefFile};

/// An entry's elements converted to `T` (f64 references narrow to f32 by rounding).
pub fn to_vec<T: Real>(e: &Entry<'_>) -> Vec<T> {
    (0..e.len()).map(|i| T::from_f64(e.get(i))).collect()
}

/// The entry `name`, panicking with the name if it is missing (tests only).
pub fn entry<'a>(f: &RefFile<'a>, name: &str) -> Entry<'a> {
    f.get(name)
        .unwrap_or_else(|| panic!("reference entry {name} missing"))
}

/// Default tolerances of DESIGN.md: against references 1e-5 relative + 1e-6
/// absolute in f32, 1e-10 in f64.
pub fn ref_tol<T: Real>() -> (f64, f64) {
    if T::BYTES == 4 {
        (1e-5, 1e-6)
    } else {
        (1e-10, 1e-10)
    }
}

/// Asserts `|got − want| ≤ atol + rtol·|want|` element-wise, treating equal
/// infinities and NaN-vs-NaN as equal. Panics with the first offending index.
#[track_caller]
pub fn assert_close<T: Real>(what: &str, got: &[T], want: &[T], rtol: f64, atol: f64) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let (g, w) = (g.to_f64(), w.to_f64());
        if g.is_nan() && w.is_nan() {
            continue;
        }
        if g == w {
            continue;
        }
        let ok = (g - w).abs() <= atol + rtol * w.abs();
        assert!(
            ok,
            "{what}[{i}]: got {g:e}, want {w:e} (rtol {rtol:e}, atol {atol:e})"
        );
    }
}
