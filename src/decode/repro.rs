//! The bit-reproducible arithmetic of the sampling path: [`repro_exp`] and the
//! uniform draw [`uniform`].
//!
//! Both use IEEE 754 additions, multiplications, comparisons, exact conversions
//! and integer operations on the bits only — no fused multiply-add (Rust never
//! contracts `a * b + c` into one), no library calls, no lane-width-dependent
//! order — so they give the same bits on every target whose floating point follows
//! IEEE 754 in its default mode (round to nearest, no flush-to-zero), as Rust
//! code runs on x86-64 (SSE2 or AVX), aarch64, Cortex-M (FPU or soft-float) and
//! RISC-V. `repro_exp`'s results are never subnormal.

use core::ops::{Add, Mul, Sub};

use rand_core::Rng;
use wide::{f32x16, f64x8};

use crate::real::Real;

/// One precision's constants of [`exp_cw`]: the algorithm is written once, the two
/// precisions differ only in these numbers.
trait ExpParams: 'static + Copy {
    const ZERO: Self;
    const ONE: Self;
    const INFINITY: Self;
    const LOG2E: Self;
    /// ln 2 split so that `k · LN2_HI` is exact for every `k` in range (Cody–Waite).
    const LN2_HI: Self;
    const LN2_LO: Self;
    /// 1.5·2^(mantissa bits): adding and subtracting it rounds a value of magnitude
    /// below 2^(mantissa bits − 1) to the nearest integer (ties to even) with two
    /// IEEE additions, leaving that integer in the low mantissa bits of the sum.
    const ROUND: Self;
    /// Below this `e^x` is flushed to 0 (the result would not be a normal number).
    const LO: Self;
    /// Above this `e^x` is reported as +∞.
    const HI: Self;
    /// The Taylor coefficients `1/n!` from the highest degree down to `n = 2`.
    const COEFFS: &'static [Self];
}

/// The arithmetic [`exp_cw`] runs on: a scalar (`f32`, `f64`) or a fixed-width
/// vector of them (`f32x16`, `f64x8`). Every operation is an IEEE operation lane
/// by lane (add, sub, mul, compare-and-select) or exact integer arithmetic on the
/// bits, so the vector computes, lane by lane, the bits the scalar computes.
trait ExpArith: Copy + Add<Output = Self> + Sub<Output = Self> + Mul<Output = Self> {
    type P: ExpParams;
    /// The constant `c` in every lane.
    fn c(c: Self::P) -> Self;
    /// `LO` where `x < LO`, `HI` where `x > HI`, else `x` (NaN stays NaN).
    fn clamp(x: Self) -> Self;
    /// `0` where `x < LO`, `+∞` where `x > HI`, else `y` (so NaN gives `y`).
    fn fixup(x: Self, y: Self) -> Self;
    /// `2^k` for the integer `k` held by `t = k + ROUND`, assembled from its bits
    /// with wrapping integer arithmetic: `((bits(t) − bits(ROUND) + bias) mod
    /// 2^w) << mantissa bits`.
    fn pow2(t: Self) -> Self;
}

/// `1/n!` for `n` = 13 down to 2, correctly rounded to `f64` (every `n!` here is
/// exact in `f64`).
const INV_FACTORIALS: [f64; 12] = [
    1.0 / 6_227_020_800.0,
    1.0 / 479_001_600.0,
    1.0 / 39_916_800.0,
    1.0 / 3_628_800.0,
    1.0 / 362_880.0,
    1.0 / 40_320.0,
    1.0 / 5_040.0,
    1.0 / 720.0,
    1.0 / 120.0,
    1.0 / 24.0,
    1.0 / 6.0,
    0.5,
];

/// `1/n!` for `n` = 7 down to 2 in `f32`: the tail of [`INV_FACTORIALS`] rounded
/// to `f32`, which for these six values equals the correctly rounded `f32`
/// quotient (checked by a test: no double-rounding slip).
const INV_FACTORIALS_F32: [f32; 6] = {
    let mut c = [0.0f32; 6];
    let mut i = 0;
    while i < c.len() {
        c[i] = INV_FACTORIALS[INV_FACTORIALS.len() - c.len() + i] as f32;
        i += 1;
    }
    c
};

impl ExpParams for f32 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
    const INFINITY: Self = f32::INFINITY;
    const LOG2E: Self = core::f32::consts::LOG2_E;
    const LN2_HI: Self = 0.693_145_75; // 0x3f31_7200, exactly 0.693145751953125
    const LN2_LO: Self = 1.428_606_8e-6; // 0x35bf_be8e
    const ROUND: Self = 12_582_912.0; // 1.5·2^23
    const LO: Self = -87.0; // e^−87 ≈ 1.6e−38 is still normal
    const HI: Self = 88.0; // e^88 ≈ 1.7e38
    // Degree 7.
    const COEFFS: &'static [Self] = &INV_FACTORIALS_F32;
}

impl ExpParams for f64 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
    const INFINITY: Self = f64::INFINITY;
    const LOG2E: Self = core::f64::consts::LOG2_E;
    const LN2_HI: Self = 0.693_147_180_369_123_8; // fdlibm's ln2_hi
    const LN2_LO: Self = 1.908_214_929_270_587_7e-10; // fdlibm's ln2_lo
    const ROUND: Self = 6_755_399_441_055_744.0; // 1.5·2^52
    const LO: Self = -708.0;
    const HI: Self = 709.0;
    // Degree 13.
    const COEFFS: &'static [Self] = &INV_FACTORIALS;
}

/// [`ExpArith`] for a scalar and its fixed-width vector. For `f32` the clamped
/// `k` is in [−126, 127], so the biased exponent `k + 127` is in [1, 254] and
/// `2^k` is normal; for `f64` `k ∈ [−1021, 1023]`.
macro_rules! impl_exp_arith {
    ($s:ty, $v:ty, $u:ty, $vu:ty, $bias:expr, $mant:expr) => {
        impl ExpArith for $s {
            type P = $s;
            #[inline(always)]
            fn c(c: $s) -> Self {
                c
            }
            #[inline(always)]
            fn clamp(x: Self) -> Self {
                if x < <$s>::LO {
                    <$s>::LO
                } else if x > <$s>::HI {
                    <$s>::HI
                } else {
                    x
                }
            }
            #[inline(always)]
            fn fixup(x: Self, y: Self) -> Self {
                if x < <$s>::LO {
                    <$s as ExpParams>::ZERO
                } else if x > <$s>::HI {
                    <$s as ExpParams>::INFINITY
                } else {
                    y
                }
            }
            #[inline(always)]
            fn pow2(t: Self) -> Self {
                let k = t.to_bits().wrapping_sub(<$s>::ROUND.to_bits());
                <$s>::from_bits(k.wrapping_add($bias) << $mant)
            }
        }

        impl ExpArith for $v {
            type P = $s;
            #[inline(always)]
            fn c(c: $s) -> Self {
                <$v>::splat(c)
            }
            #[inline(always)]
            fn clamp(x: Self) -> Self {
                let lo = <$v>::splat(<$s>::LO);
                let hi = <$v>::splat(<$s>::HI);
                x.simd_lt(lo).select(lo, x.simd_gt(hi).select(hi, x))
            }
            #[inline(always)]
            fn fixup(x: Self, y: Self) -> Self {
                let zero = <$v>::splat(<$s as ExpParams>::ZERO);
                let inf = <$v>::splat(<$s as ExpParams>::INFINITY);
                x.simd_lt(<$v>::splat(<$s>::LO))
                    .select(zero, x.simd_gt(<$v>::splat(<$s>::HI)).select(inf, y))
            }
            #[inline(always)]
            fn pow2(t: Self) -> Self {
                // The same wrapping arithmetic as the scalar, lane by lane.
                let k = t.to_bits() - <$vu>::splat(<$s>::ROUND.to_bits());
                <$v>::from_bits((k + <$vu>::splat($bias)) << $mant)
            }
        }
    };
}

impl_exp_arith!(f32, f32x16, u32, wide::u32x16, 127u32, 23u32);
impl_exp_arith!(f64, f64x8, u64, wide::u64x8, 1023u64, 52u32);

/// `e^x` by Cody–Waite reduction `x = k·ln2 + r`, |r| ≤ ln2/2, the Taylor
/// polynomial of `e^r` in Horner form, and the scale `2^k` built from its bits.
/// Degree 7 and relative error below 2.5e−7 (about 2 ulp) for `f32`; degree 13
/// and below 5e−16 for `f64`. Written once for scalars and vectors: the vector
/// form performs, lane by lane, exactly the scalar's operations in the scalar's
/// order (separate `*` and `+`, never a fused multiply-add).
#[inline(always)]
fn exp_cw<A: ExpArith>(x: A) -> A {
    let c = A::c;
    let xc = A::clamp(x);
    // t = k + ROUND exactly, so k sits in the low bits of t's mantissa.
    let t = xc * c(A::P::LOG2E) + c(A::P::ROUND);
    let kf = t - c(A::P::ROUND);
    let r = (xc - kf * c(A::P::LN2_HI)) - kf * c(A::P::LN2_LO);
    // Horner: COEFFS is a non-empty constant, so the fallback is never taken.
    let mut coeffs = A::P::COEFFS.iter();
    let mut p = c(coeffs.next().copied().unwrap_or(A::P::ZERO));
    for &k in coeffs {
        p = p * r + c(k);
    }
    p = p * r + c(A::P::ONE);
    p = p * r + c(A::P::ONE);
    A::fixup(x, p * A::pow2(t))
}

/// [`repro_exp`] on every lane of a fixed-width vector (`f32x16` or `f64x8`):
/// bit-identical to the scalar function lane by lane.
#[inline(always)]
pub(crate) fn exp_lanes<V: ExpLanes>(v: V) -> V {
    v.exp_lanes()
}

/// The vector types [`exp_lanes`] accepts.
pub(crate) trait ExpLanes: Copy {
    /// Lane-wise [`repro_exp`].
    fn exp_lanes(self) -> Self;
}

impl ExpLanes for f32x16 {
    #[inline(always)]
    fn exp_lanes(self) -> Self {
        exp_cw(self)
    }
}

impl ExpLanes for f64x8 {
    #[inline(always)]
    fn exp_lanes(self) -> Self {
        exp_cw(self)
    }
}

/// `e^x`, bit-reproducible on every target: the exponential of the sampling path.
///
/// Built from IEEE additions and multiplications only (Cody–Waite range reduction
/// with the rounding done by adding and subtracting 1.5·2^23 (`f32`) or 1.5·2^52
/// (`f64`), a fixed Taylor polynomial in Horner form — degree 7 for `f32`,
/// degree 13 for `f64` — and `2^k` assembled from its bits), so the same `x` gives
/// the same bits on every IEEE target: it uses no operation whose rounding a
/// target may choose (tested on x86-64 baseline and native builds).
///
/// Accuracy: relative error below 2.5e−7 for `f32`, 5e−16 for `f64`. Range: the
/// result is never subnormal — `0` for `x < −87` (`f32`) / `x < −708` (`f64`),
/// `+∞` for `x > 88` / `x > 709`; `e^0 = 1` exactly, `e^−∞ = 0`; NaN gives NaN.
///
/// ```
/// use constml::decode::repro_exp;
/// assert_eq!(repro_exp(0.0f32), 1.0);
/// assert_eq!(repro_exp(f32::NEG_INFINITY), 0.0);
/// assert!((repro_exp(-1.0f64) - (-1.0f64).exp()).abs() < 1e-15);
/// ```
#[inline(always)]
pub fn repro_exp<T: Real>(x: T) -> T {
    // Real is sealed to f32 and f64; both round trips through f64 are exact and
    // compile away.
    if T::BYTES == 4 {
        T::from_f64(exp_cw(x.as_f64() as f32) as f64)
    } else {
        T::from_f64(exp_cw(x.as_f64()))
    }
}

/// A uniform number in `[0, 1)`, derived portably from `rng`.
///
/// For `f32`: one `next_u32`, its top 24 bits times 2^−24. For `f64`: one
/// `next_u64`, its top 53 bits times 2^−53. Both are exact, so the value depends
/// only on the generator's output. This is the only randomness a draw consumes.
///
/// ```
/// use constml::decode::uniform;
/// use rand_xoshiro::Xoshiro128PlusPlus;
/// use rand_core::SeedableRng;
/// let mut rng = Xoshiro128PlusPlus::seed_from_u64(7);
/// let u: f32 = uniform(&mut rng);
/// assert!((0.0..1.0).contains(&u));
/// ```
#[inline]
pub fn uniform<T: Real, R: Rng + ?Sized>(rng: &mut R) -> T {
    if T::BYTES == 4 {
        let bits = rng.next_u32() >> 8;
        T::from_f64(bits as f64 * (1.0 / 16_777_216.0))
    } else {
        let bits = rng.next_u64() >> 11;
        T::from_f64(bits as f64 * (1.0 / 9_007_199_254_740_992.0))
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;

    #[test]
    fn f32_coefficients_are_the_correctly_rounded_quotients() {
        let direct = [5040.0f32, 720.0, 120.0, 24.0, 6.0, 2.0].map(|n| 1.0 / n);
        assert_eq!(
            INV_FACTORIALS_F32.map(f32::to_bits),
            direct.map(f32::to_bits)
        );
    }

    #[test]
    fn exp_f32_is_accurate() {
        let mut worst = 0.0f64;
        let mut x = -87.0f32;
        while x <= 88.0 {
            let got = exp_cw::<f32>(x) as f64;
            let want = (x as f64).exp();
            worst = worst.max(((got - want) / want).abs());
            x += 0.001_7;
        }
        assert!(worst < 2.5e-7, "worst relative error {worst:e}");
        assert_eq!(exp_cw::<f32>(0.0), 1.0);
        assert_eq!(exp_cw::<f32>(-88.0), 0.0);
        assert_eq!(exp_cw::<f32>(f32::NEG_INFINITY), 0.0);
        assert_eq!(exp_cw::<f32>(89.0), f32::INFINITY);
        assert!(exp_cw::<f32>(f32::NAN).is_nan());
        assert!(exp_cw::<f32>(-87.0) >= f32::MIN_POSITIVE);
    }

    #[test]
    fn exp_f64_is_accurate() {
        let mut worst = 0.0f64;
        let mut x = -708.0f64;
        while x <= 709.0 {
            let got = exp_cw::<f64>(x);
            let want = libm::exp(x);
            worst = worst.max(((got - want) / want).abs());
            x += 0.013_7;
        }
        assert!(worst < 5e-16, "worst relative error {worst:e}");
        assert_eq!(exp_cw::<f64>(0.0), 1.0);
        assert_eq!(exp_cw::<f64>(f64::NEG_INFINITY), 0.0);
        assert!(exp_cw::<f64>(-708.0) >= f64::MIN_POSITIVE);
    }

    /// Compares the `f32x16` exp with the scalar one on the inputs whose bits are
    /// `start, start + step, …` (wrapping, `n` values); returns the mismatches.
    fn vector_mismatches_f32(start: u32, step: u32, n: u64) -> u64 {
        let mut bad = 0u64;
        let mut b = start;
        let mut left = n;
        while left > 0 {
            let lanes: [f32; 16] = core::array::from_fn(|j| {
                f32::from_bits(b.wrapping_add(step.wrapping_mul(j as u32)))
            });
            let v = exp_lanes(f32x16::new(lanes)).to_array();
            for (x, y) in lanes.iter().zip(v.iter()).take(left.min(16) as usize) {
                let s = exp_cw(*x);
                if s.to_bits() != y.to_bits() {
                    bad += 1;
                }
            }
            b = b.wrapping_add(step.wrapping_mul(16));
            left = left.saturating_sub(16);
        }
        bad
    }

    #[test]
    fn vector_exp_is_the_scalar_exp_bit_for_bit() {
        // Edge cases: zeros, infinities, NaNs (quiet and signalling, both signs),
        // the clamp limits and their neighbours, subnormals, extremes.
        let mut edge: std::vec::Vec<f32> = std::vec![
            0.0,
            -0.0,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::NAN,
            -f32::NAN,
            f32::from_bits(0x7f80_0001),
            f32::from_bits(0xff80_0001),
            f32::MIN_POSITIVE,
            -f32::MIN_POSITIVE,
            f32::from_bits(1),
            f32::from_bits(0x8000_0001),
            f32::MAX,
            f32::MIN,
            1.0,
            -1.0,
            0.5 * core::f32::consts::LN_2,
            -0.5 * core::f32::consts::LN_2,
        ];
        for lim in [-87.0f32, 88.0, -88.0, 87.0, 88.72, -103.0] {
            for d in -8i32..=8 {
                edge.push(f32::from_bits((lim.to_bits() as i32 + d) as u32));
            }
        }
        while !edge.len().is_multiple_of(16) {
            edge.push(0.25);
        }
        for c in edge.chunks(16) {
            let a: [f32; 16] = c.try_into().unwrap();
            let v = exp_lanes(f32x16::new(a)).to_array();
            for (x, y) in a.iter().zip(v.iter()) {
                assert_eq!(
                    exp_cw(*x).to_bits(),
                    y.to_bits(),
                    "x = {x:e} ({:#x})",
                    x.to_bits()
                );
            }
        }
        // Dense (about 10^7 inputs): the bit patterns of [−128, 128] at a stride
        // of 331, and a stride of 1021 through all 2^32 patterns. The exhaustive
        // run is `vector_exp_is_the_scalar_exp_for_all_f32`, ignored by default.
        let neg = 0x8000_0000u32; // −0: counting the bits up goes towards −∞
        let span = (128.0f32).to_bits() as u64; // patterns in (0, 128] or [−128, −0)
        assert_eq!(vector_mismatches_f32(neg, 331, span / 331), 0);
        assert_eq!(vector_mismatches_f32(0, 331, span / 331), 0);
        assert_eq!(vector_mismatches_f32(3, 1021, (1u64 << 32) / 1021), 0);
        // f64: a grid over the whole range and beyond, plus the edges.
        let mut xs: std::vec::Vec<f64> = (0..400_000)
            .map(|i| -760.0 + i as f64 * 0.003_803_17)
            .collect();
        xs.extend([
            0.0,
            -0.0,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
            -708.0,
            709.0,
            f64::MIN_POSITIVE,
            f64::MAX,
            f64::MIN,
        ]);
        let mut r = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..400_000 {
            r ^= r << 13;
            r ^= r >> 7;
            r ^= r << 17;
            xs.push(f64::from_bits(r));
        }
        while !xs.len().is_multiple_of(8) {
            xs.push(1.0);
        }
        for c in xs.chunks(8) {
            let a: [f64; 8] = c.try_into().unwrap();
            let v = exp_lanes(f64x8::new(a)).to_array();
            for (x, y) in a.iter().zip(v.iter()) {
                assert_eq!(exp_cw(*x).to_bits(), y.to_bits(), "x = {x:e}");
            }
        }
    }

    /// All 2^32 `f32` inputs, about three minutes in release on one core:
    /// `cargo test --release --lib -- --ignored vector_exp_is_the_scalar_exp_for_all_f32`.
    #[test]
    #[ignore = "exhaustive; run by hand in release"]
    fn vector_exp_is_the_scalar_exp_for_all_f32() {
        assert_eq!(vector_mismatches_f32(0, 1, 1u64 << 32), 0);
    }

    #[test]
    fn exp_never_exceeds_one_for_non_positive_x() {
        let mut x = 0.0f32;
        while x > -2.0 {
            assert!(exp_cw::<f32>(x) <= 1.0, "x = {x}");
            x -= 1.0e-4;
        }
    }
}
