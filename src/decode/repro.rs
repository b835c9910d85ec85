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

use crate::real::Real;

/// One precision's constants of [`exp_cw`]: the algorithm is written once, the two
/// precisions differ only in these numbers.
trait ExpParams:
    'static + Copy + PartialOrd + Add<Output = Self> + Sub<Output = Self> + Mul<Output = Self>
{
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
    /// `2^k` for the integer `k` held by `t = k + ROUND`, assembled from its bits
    /// (integer arithmetic only, so it vectorises).
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
    #[inline(always)]
    fn pow2(t: Self) -> Self {
        // k ∈ [−126, 127]: the biased exponent k + 127 is in [1, 254], 2^k is normal.
        let k = t.to_bits().wrapping_sub(Self::ROUND.to_bits());
        f32::from_bits(k.wrapping_add(127) << 23)
    }
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
    #[inline(always)]
    fn pow2(t: Self) -> Self {
        // k ∈ [−1021, 1023]: 2^k is a normal f64.
        let k = t.to_bits().wrapping_sub(Self::ROUND.to_bits());
        f64::from_bits(k.wrapping_add(1023) << 52)
    }
}

/// `e^x` by Cody–Waite reduction `x = k·ln2 + r`, |r| ≤ ln2/2, the Taylor
/// polynomial of `e^r` in Horner form, and the scale `2^k` built from its bits.
/// Degree 7 and relative error below 2.5e−7 (about 2 ulp) for `f32`; degree 13
/// and below 5e−16 for `f64`.
#[inline(always)]
fn exp_cw<F: ExpParams>(x: F) -> F {
    // Clamp (a NaN fails both comparisons and stays NaN).
    let xc = if x < F::LO {
        F::LO
    } else if x > F::HI {
        F::HI
    } else {
        x
    };
    // t = k + ROUND exactly, so k sits in the low bits of t's mantissa.
    let t = xc * F::LOG2E + F::ROUND;
    let kf = t - F::ROUND;
    let r = (xc - kf * F::LN2_HI) - kf * F::LN2_LO;
    // Horner: COEFFS is a non-empty constant, so the fallback is never taken.
    let mut coeffs = F::COEFFS.iter();
    let mut p = coeffs.next().copied().unwrap_or(F::ZERO);
    for &c in coeffs {
        p = p * r + c;
    }
    p = p * r + F::ONE;
    p = p * r + F::ONE;
    let y = p * F::pow2(t);
    if x < F::LO {
        F::ZERO
    } else if x > F::HI {
        F::INFINITY
    } else {
        y // NaN stays NaN
    }
}

/// `e^x`, bit-reproducible on every target: the exponential of the sampling path.
///
/// Built from IEEE additions and multiplications only (Cody–Waite range reduction
/// with the rounding done by adding and subtracting 1.5·2^23 (`f32`) or 1.5·2^52
/// (`f64`), a fixed Taylor polynomial in Horner form — degree 7 for `f32`,
/// degree 13 for `f64` — and `2^k` assembled from its bits), so the same `x` gives
/// the same bits on x86 (baseline or native), aarch64, Cortex-M and RISC-V.
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
        T::from_f64(exp_cw(x.to_f64() as f32) as f64)
    } else {
        T::from_f64(exp_cw(x.to_f64()))
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

    #[test]
    fn exp_never_exceeds_one_for_non_positive_x() {
        let mut x = 0.0f32;
        while x > -2.0 {
            assert!(exp_cw::<f32>(x) <= 1.0, "x = {x}");
            x -= 1.0e-4;
        }
    }
}
