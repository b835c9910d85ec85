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

/// The project's default tolerances: against references 1e-5 relative + 1e-6
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
        let (g, w) = (g.as_f64(), w.as_f64());
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

/// Runs a test body generic over backend and element type, `f::<B, T>()`, for
/// both backends and both element types. (Not every test file uses it.)
#[allow(unused_macros)]
macro_rules! for_each_backend_and_real {
    ($f:ident) => {{
        $f::<constml::Simd, f32>();
        $f::<constml::Simd, f64>();
        $f::<constml::Scalar, f32>();
        $f::<constml::Scalar, f64>();
    }};
}
#[allow(unused_imports)]
pub(crate) use for_each_backend_and_real;

/// A deterministic generator for test data (64-bit LCG, Knuth's constants).
pub struct Lcg(pub u64);

impl Lcg {
    /// The next value, uniform in `[0, 1)` (53 bits).
    pub fn unit(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}
