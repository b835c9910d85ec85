//! The element layer: [`Real`] for `f32` and `f64`, and their `wide` lane types.
//!
//! Every algorithm in constml is generic over `T: Real`. The trait carries
//!
//! * associated constants (`ZERO`, `ONE`, `NEG_INFINITY`, …) so caches and
//!   scratch can be built in a `const fn` and placed in a `static`;
//! * the matching `wide` vector type [`Real::V`], as wide as the build's target
//!   features allow (see the table below), with loads and stores through
//!   fixed-size blocks ([`Real::blocks`]) so no load can go out of bounds;
//! * lane-wise `exp`, `tanh`, `erf` and `sqrt`. On targets with a vector unit
//!   they use `wide`'s vector versions (or a vectorised approximation); on
//!   targets without one (Cortex-M, RISC-V) they call `libm` once per lane,
//!   which is several times faster there than `wide`'s array fallback.
//!
//! | build | `f32` lanes | `f64` lanes |
//! |---|---|---|
//! | x86-64 with AVX-512F (`-C target-cpu=native` on recent Xeon / Zen 4+) | 16 | 8 |
//! | x86-64 with AVX | 8 | 4 |
//! | x86-64 baseline (SSE2), aarch64 (NEON), wasm `simd128` | 4 | 2 |
//! | anything else (Cortex-M, RISC-V): plain arrays | 4 | 2 |
//!
//! `mul_add` is fused only where the hardware has FMA, so results of the SIMD
//! kernels can differ in the last bits between builds.

use core::fmt::{Debug, Display};
use core::ops::{Add, AddAssign, BitOr, Div, Mul, MulAssign, Neg, Sub, SubAssign};

/// `true` when `wide` maps its vector types onto real vector registers for this
/// build (SSE2, NEON or wasm `simd128`); `false` on targets where it falls back to
/// plain arrays, such as Cortex-M and RISC-V microcontrollers.
pub const HAS_VECTOR_UNIT: bool = cfg!(any(
    target_feature = "sse2",
    target_feature = "neon",
    target_feature = "simd128"
));

/// Operations on a `wide` vector of [`Real`] lanes that the kernels need.
///
/// Implemented for `wide`'s float vector types only; you rarely name it.
pub trait Lanes:
    Copy
    + Debug
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
    + BitOr<Output = Self>
    + AddAssign
    + SubAssign
    + MulAssign
{
}

impl<V> Lanes for V where
    V: Copy
        + Debug
        + Add<Output = V>
        + Sub<Output = V>
        + Mul<Output = V>
        + Div<Output = V>
        + Neg<Output = V>
        + BitOr<Output = V>
        + AddAssign
        + SubAssign
        + MulAssign
{
}

/// A floating-point element type: `f32` or `f64`.
///
/// Sealed: only `f32` and `f64` implement it. Scalar maths (`exp`, `sqrt`, …)
/// comes from [`num_traits::Float`], which constml builds on `libm`, so it works
/// the same without `std`.
pub trait Real:
    num_traits::Float
    + num_traits::FloatConst
    + Default
    + Debug
    + Display
    + AddAssign
    + SubAssign
    + MulAssign
    + Send
    + Sync
    + sealed::Sealed
    + 'static
{
    /// 0.
    const ZERO: Self;
    /// 1.
    const ONE: Self;
    /// 1/2.
    const HALF: Self;
    /// 2.
    const TWO: Self;
    /// −∞.
    const NEG_INFINITY: Self;
    /// +∞.
    const INFINITY: Self;
    /// A quiet NaN.
    const NAN: Self;
    /// Machine epsilon.
    const EPSILON: Self;
    /// Number of lanes in [`Real::V`] for this build.
    const LANES: usize;
    /// Bytes per element.
    const BYTES: usize;

    /// The `wide` vector type: `f32x16`/`f32x8`/`f32x4` or `f64x8`/`f64x4`/`f64x2`.
    type V: Lanes;
    /// An array of [`Real::LANES`] elements, the unit of loads and stores.
    type Block: Copy + AsRef<[Self]> + AsMut<[Self]>;

    /// Converts an `f64` constant (rounding to nearest for `f32`).
    fn from_f64(x: f64) -> Self;
    /// Widens to `f64` (exact).
    fn as_f64(self) -> f64;
    /// Converts a count or index to this type (exact up to 2^24 for `f32`).
    fn from_usize(n: usize) -> Self;
    /// The error function, from `libm`.
    fn erf(self) -> Self;

    /// A block of zeros (a buffer for padding a tail into a whole vector).
    const ZERO_BLOCK: Self::Block;
    /// Splits a slice into whole blocks and a tail shorter than a block.
    fn blocks(s: &[Self]) -> (&[Self::Block], &[Self]);
    /// Splits a mutable slice into whole blocks and a tail shorter than a block.
    fn blocks_mut(s: &mut [Self]) -> (&mut [Self::Block], &mut [Self]);

    /// All lanes set to `x`.
    fn splat(x: Self) -> Self::V;
    /// Loads one block.
    fn load(b: &Self::Block) -> Self::V;
    /// Stores one vector into a block.
    fn store(v: Self::V, b: &mut Self::Block);
    /// `a * b + c`, fused where the hardware has FMA.
    fn fma(a: Self::V, b: Self::V, c: Self::V) -> Self::V;
    /// Sum of the lanes.
    fn hsum(v: Self::V) -> Self;
    /// Largest lane (a NaN lane may or may not win: check NaN separately).
    fn hmax(v: Self::V) -> Self;
    /// Lane-wise maximum.
    fn vmax(a: Self::V, b: Self::V) -> Self::V;
    /// Lane-wise `if a < b { x } else { y }` (NaN compares false, giving `y`).
    fn select_lt(a: Self::V, b: Self::V, x: Self::V, y: Self::V) -> Self::V;
    /// `true` if any lane is NaN.
    fn any_nan(v: Self::V) -> bool;
    /// `acc | (v != v)`: ORs the NaN lanes of `v` (as all-ones bit patterns, which
    /// are themselves NaN) into `acc`; test the result with [`Real::any_nan`].
    fn nan_mask(acc: Self::V, v: Self::V) -> Self::V;
    /// Lane-wise `e^x` (`e^−∞` = 0).
    fn vexp(v: Self::V) -> Self::V;
    /// Lane-wise hyperbolic tangent.
    fn vtanh(v: Self::V) -> Self::V;
    /// Lane-wise error function.
    fn verf(v: Self::V) -> Self::V;
    /// Lane-wise square root.
    fn vsqrt(v: Self::V) -> Self::V;
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for f64 {}
}

/// Applies a scalar function to each lane of a vector.
macro_rules! per_lane {
    ($v:expr, $f:expr) => {{
        let mut a = $v.to_array();
        for x in a.iter_mut() {
            *x = $f(*x);
        }
        a.into()
    }};
}

macro_rules! impl_real {
    ($t:ident, $v:ty, $lanes:expr, $libm_erf:path, $libm_exp:path, $libm_tanh:path, $libm_sqrt:path, $verf:ident, $vexp:ident) => {
        impl Real for $t {
            const ZERO: Self = 0.0;
            const ONE: Self = 1.0;
            const HALF: Self = 0.5;
            const TWO: Self = 2.0;
            const NEG_INFINITY: Self = $t::NEG_INFINITY;
            const INFINITY: Self = $t::INFINITY;
            const NAN: Self = $t::NAN;
            const EPSILON: Self = $t::EPSILON;
            const LANES: usize = $lanes;
            const BYTES: usize = core::mem::size_of::<$t>();

            type V = $v;
            type Block = [$t; $lanes];
            const ZERO_BLOCK: Self::Block = [0.0; $lanes];

            #[inline(always)]
            fn from_f64(x: f64) -> Self {
                x as $t
            }
            #[inline(always)]
            fn as_f64(self) -> f64 {
                self as f64
            }
            #[inline(always)]
            fn from_usize(n: usize) -> Self {
                n as $t
            }
            #[inline(always)]
            fn erf(self) -> Self {
                $libm_erf(self)
            }
            #[inline(always)]
            fn blocks(s: &[Self]) -> (&[Self::Block], &[Self]) {
                s.as_chunks::<{ $lanes }>()
            }
            #[inline(always)]
            fn blocks_mut(s: &mut [Self]) -> (&mut [Self::Block], &mut [Self]) {
                s.as_chunks_mut::<{ $lanes }>()
            }
            #[inline(always)]
            fn splat(x: Self) -> $v {
                <$v>::splat(x)
            }
            #[inline(always)]
            fn load(b: &Self::Block) -> $v {
                <$v>::new(*b)
            }
            #[inline(always)]
            fn store(v: $v, b: &mut Self::Block) {
                *b = v.to_array();
            }
            #[inline(always)]
            fn fma(a: $v, b: $v, c: $v) -> $v {
                a.mul_add(b, c)
            }
            #[inline(always)]
            fn hsum(v: $v) -> Self {
                v.reduce_add()
            }
            #[inline(always)]
            fn hmax(v: $v) -> Self {
                let a = v.to_array();
                let mut m = a[0];
                for &x in &a[1..] {
                    if x > m {
                        m = x;
                    }
                }
                m
            }
            #[inline(always)]
            fn vmax(a: $v, b: $v) -> $v {
                a.fast_max(b)
            }
            #[inline(always)]
            fn select_lt(a: $v, b: $v, x: $v, y: $v) -> $v {
                a.simd_lt(b).select(x, y)
            }
            #[inline(always)]
            fn any_nan(v: $v) -> bool {
                v.is_nan().any()
            }
            #[inline(always)]
            fn nan_mask(acc: $v, v: $v) -> $v {
                acc | v.simd_ne(v)
            }
            #[inline(always)]
            fn vexp(v: $v) -> $v {
                if HAS_VECTOR_UNIT {
                    $vexp(v)
                } else {
                    per_lane!(v, $libm_exp)
                }
            }
            #[inline(always)]
            fn vtanh(v: $v) -> $v {
                if HAS_VECTOR_UNIT {
                    v.tanh()
                } else {
                    per_lane!(v, $libm_tanh)
                }
            }
            #[inline(always)]
            fn verf(v: $v) -> $v {
                $verf(v)
            }
            #[inline(always)]
            fn vsqrt(v: $v) -> $v {
                if HAS_VECTOR_UNIT {
                    v.sqrt()
                } else {
                    per_lane!(v, $libm_sqrt)
                }
            }
        }
    };
}

#[cfg(target_feature = "avx512f")]
mod lanes {
    pub type F32 = wide::f32x16;
    pub type F64 = wide::f64x8;
    pub type U32 = wide::u32x16;
    pub type U64 = wide::u64x8;
    pub const F32_LANES: usize = 16;
    pub const F64_LANES: usize = 8;
}
#[cfg(all(target_feature = "avx", not(target_feature = "avx512f")))]
mod lanes {
    pub type F32 = wide::f32x8;
    pub type F64 = wide::f64x4;
    pub type U32 = wide::u32x8;
    pub type U64 = wide::u64x4;
    pub const F32_LANES: usize = 8;
    pub const F64_LANES: usize = 4;
}
#[cfg(not(target_feature = "avx"))]
mod lanes {
    pub type F32 = wide::f32x4;
    pub type F64 = wide::f64x2;
    pub type U32 = wide::u32x4;
    pub type U64 = wide::u64x2;
    pub const F32_LANES: usize = 4;
    pub const F64_LANES: usize = 2;
}

/// Vector `erf` for `f32`: Abramowitz & Stegun 7.1.26 (|error| ≤ 1.5e-7), built on
/// the vector `exp`; per-lane `libm` where there is no vector unit.
// The coefficients are quoted as published; rounding them to f32 is intended.
#[allow(clippy::excessive_precision)]
#[inline(always)]
fn verf_f32(v: lanes::F32) -> lanes::F32 {
    if !HAS_VECTOR_UNIT {
        return per_lane!(v, libm::erff);
    }
    type V = lanes::F32;
    let x = v.abs();
    let t = V::ONE / V::splat(0.327_591_1).mul_add(x, V::ONE);
    let mut p = V::splat(1.061_405_429);
    p = p.mul_add(t, V::splat(-1.453_152_027));
    p = p.mul_add(t, V::splat(1.421_413_741));
    p = p.mul_add(t, V::splat(-0.284_496_736));
    p = p.mul_add(t, V::splat(0.254_829_592));
    p *= t;
    let y = V::ONE - p * vexp_f32(-(x * x));
    // NaN stays NaN through `abs`, `exp` and `copysign`.
    let y = y.copysign(v);
    let nan = v.simd_ne(v);
    nan.select(v, y)
}

/// Vector `erf` for `f64`: per-lane `libm` (no cheap polynomial reaches f64 accuracy).
#[inline(always)]
fn verf_f64(v: lanes::F64) -> lanes::F64 {
    per_lane!(v, libm::erf)
}

/// Defines a vector `exp` for one float type.
///
/// `e^x = 2^n · e^r` with `n = round(x / ln 2)` and `|r| ≤ ln 2 / 2`. Adding the
/// magic constant 1.5·2^MANT rounds `x·log2 e` to an integer held in the low
/// mantissa bits, so `2^(n−1)` is built from those bits with one integer add and
/// one shift — no float-to-int conversion, which SSE2 and AVX2 lack for `f64`.
/// `r` is reduced with `ln 2` split in two (Cody–Waite) and `e^r` is a Taylor
/// polynomial of the given degree (truncation below 1 ulp on |r| ≤ 0.347).
/// Inputs below `lo` give 0 (so `e^−∞ = 0`), above `hi` give +∞, NaN stays NaN.
macro_rules! vexp_impl {
    ($name:ident, $v:ty, $u:ty, $t:ty, mant = $mant:expr, bias = $bias:expr,
     lo = $lo:expr, hi = $hi:expr, ln2 = ($hi_part:expr, $lo_part:expr), taylor = $deg:expr) => {
        #[inline(always)]
        fn $name(v: $v) -> $v {
            type V = $v;
            let x = v.fast_max(V::splat($lo)).fast_min(V::splat($hi));
            let magic = V::splat(1.5 * (1u64 << $mant) as $t);
            let t = x.mul_add(V::splat(core::f64::consts::LOG2_E as $t), magic);
            let n = t - magic;
            let r = n.mul_neg_add(V::splat($hi_part), x);
            let r = n.mul_neg_add(V::splat($lo_part), r);
            // Horner on the Taylor coefficients 1/k!, k = deg … 0.
            let mut inv_fact = [1.0 as $t; $deg + 1];
            let mut k = 1;
            while k <= $deg {
                inv_fact[k] = inv_fact[k - 1] / k as $t;
                k += 1;
            }
            let mut p = V::splat(inv_fact[$deg]);
            let mut k = $deg;
            while k > 0 {
                k -= 1;
                p = p.mul_add(r, V::splat(inv_fact[k]));
            }
            // 2^(n−1): n sits in the low mantissa bits of t; the rest shifts out.
            let half_scale = V::from_bits((t.to_bits() + <$u>::splat($bias - 1)) << $mant);
            let y = p * half_scale * V::splat(2.0);
            let y = v.simd_lt(V::splat($lo)).select(V::splat(0.0), y);
            let y = v.simd_gt(V::splat($hi)).select(V::splat(<$t>::INFINITY), y);
            v.simd_ne(v).select(v, y)
        }
    };
}

vexp_impl!(
    vexp_f32,
    lanes::F32,
    lanes::U32,
    f32,
    mant = 23,
    bias = 127,
    lo = -86.5,
    hi = 88.72,
    ln2 = (0.693_145_75, 1.428_606_8e-6),
    taylor = 7
);
vexp_impl!(
    vexp_f64,
    lanes::F64,
    lanes::U64,
    f64,
    mant = 52,
    bias = 1023,
    lo = -708.0,
    hi = 709.78,
    ln2 = (0.693_147_180_369_123_8, 1.908_214_929_270_587_7e-10),
    taylor = 13
);

impl_real!(
    f32,
    lanes::F32,
    lanes::F32_LANES,
    libm::erff,
    libm::expf,
    libm::tanhf,
    libm::sqrtf,
    verf_f32,
    vexp_f32
);
impl_real!(
    f64,
    lanes::F64,
    lanes::F64_LANES,
    libm::erf,
    libm::exp,
    libm::tanh,
    libm::sqrt,
    verf_f64,
    vexp_f64
);

/// Items kept only on targets with a vector unit that `wide` uses (SSE2 on x86,
/// NEON on aarch64, simd128 on wasm). Elsewhere — Cortex-M, RISC-V without V —
/// `wide` emulates its lanes with arrays through many small inlined operations,
/// which on a Cortex-M4F measured twice the instructions and several times the
/// code of plain loops; those targets get the items of
/// [`without_vector_unit!`] instead.
macro_rules! with_vector_unit {
    ($($item:item)*) => {
        $(
            #[cfg(any(
                target_arch = "x86",
                target_arch = "x86_64",
                target_arch = "aarch64",
                target_feature = "simd128"
            ))]
            $item
        )*
    };
}

/// Items kept only on targets without a vector unit (see [`with_vector_unit!`]).
macro_rules! without_vector_unit {
    ($($item:item)*) => {
        $(
            #[cfg(not(any(
                target_arch = "x86",
                target_arch = "x86_64",
                target_arch = "aarch64",
                target_feature = "simd128"
            )))]
            $item
        )*
    };
}
pub(crate) use {with_vector_unit, without_vector_unit};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_cover_the_slice() {
        let x: [f32; 37] = core::array::from_fn(|i| i as f32);
        let (b, t) = f32::blocks(&x);
        assert_eq!(b.len() * f32::LANES + t.len(), 37);
        assert!(t.len() < f32::LANES);
        assert_eq!(
            f32::hsum(f32::load(&b[0])),
            (0..f32::LANES).sum::<usize>() as f32
        );
    }

    #[test]
    fn vector_erf_is_close_to_libm() {
        for i in -400..=400 {
            let x = i as f32 / 50.0;
            let v = f32::verf(f32::splat(x));
            let got = v.to_array()[0];
            assert!((got - libm::erff(x)).abs() < 3e-7, "x = {x}: {got}");
        }
        assert!(f32::verf(f32::splat(f32::NAN)).to_array()[0].is_nan());
    }

    #[test]
    fn vector_exp_is_within_two_ulp_of_libm() {
        let mut worst32 = 0.0f64;
        let mut worst64 = 0.0f64;
        for i in -9000..=9000 {
            let x = i as f64 / 100.0;
            if x < 86.0 && x > -86.0 {
                let got = f32::vexp(f32::splat(x as f32)).to_array()[0];
                let want = libm::expf(x as f32);
                worst32 = worst32.max(((got - want) / want).abs() as f64);
            }
            let got = f64::vexp(f64::splat(x * 7.0)).to_array()[0];
            let want = libm::exp(x * 7.0);
            if want.is_finite() && want > 1e-300 {
                worst64 = worst64.max(((got - want) / want).abs());
            }
        }
        assert!(worst32 < 2.5e-7, "f32 vexp rel error {worst32:e}");
        assert!(worst64 < 5e-16, "f64 vexp rel error {worst64:e}");
        assert_eq!(f32::vexp(f32::splat(100.0)).to_array()[0], f32::INFINITY);
        let big = f32::vexp(f32::splat(88.5)).to_array()[0];
        assert!(
            (big / libm::expf(88.5) - 1.0).abs() < 2.5e-7,
            "e^88.5 = {big:e}"
        );
        assert!(f64::vexp(f64::splat(f64::NAN)).to_array()[0].is_nan());
        assert_eq!(f64::vexp(f64::splat(-1000.0)).to_array()[0], 0.0);
    }

    #[test]
    fn vector_exp_of_neg_infinity_is_zero() {
        assert_eq!(f32::vexp(f32::splat(f32::NEG_INFINITY)).to_array()[0], 0.0);
        assert_eq!(f64::vexp(f64::splat(f64::NEG_INFINITY)).to_array()[0], 0.0);
    }
}
