//! The bit-reproducible arithmetic of the sampling path: [`repro_exp`] and the
//! uniform draw [`uniform`].
//!
//! Both use IEEE 754 additions, multiplications, comparisons and exact
//! conversions only — no fused multiply-add (Rust never contracts `a * b + c`), no
//! library calls, no lane-width-dependent order — so they give the same bits on
//! every target that follows IEEE 754 in its default mode (x86-64 SSE/AVX,
//! aarch64, Cortex-M with FPU or soft-float, RISC-V): results are never
//! subnormal, so flush-to-zero modes do not matter either.

use rand_core::Rng;

use crate::real::Real;

// ---------------------------------------------------------------------------- f32

/// ln 2 split so that `k · LN2_HI` is exact for |k| < 2^12 (Cody–Waite).
const LN2_HI_F32: f32 = 0.693_145_75; // 0x3f31_7200, exactly 0.693145751953125
const LN2_LO_F32: f32 = 1.428_606_8e-6; // 0x35bf_be8e
const LOG2E_F32: f32 = core::f32::consts::LOG2_E;
/// Adding and subtracting 1.5·2^23 rounds an f32 of magnitude < 2^22 to the
/// nearest integer (ties to even) with two IEEE additions.
const ROUND_F32: f32 = 12_582_912.0;
/// Below this `e^x` is flushed to 0 (`e^−87` ≈ 1.6e−38 is still normal).
const LO_F32: f32 = -87.0;
/// Above this `e^x` is reported as +∞ (`e^88` ≈ 1.7e38).
const HI_F32: f32 = 88.0;

/// `e^x` for `f32`: Cody–Waite reduction `x = k·ln2 + r`, |r| ≤ ln2/2, then the
/// degree-7 Taylor polynomial of `e^r` in Horner form, scaled by `2^k` built from
/// its bits. Relative error below 2.5e−7 (about 2 ulp).
#[inline(always)]
fn exp_f32(x: f32) -> f32 {
    // NaN stays NaN through the clamp.
    let xc = x.clamp(LO_F32, HI_F32);
    // t = k + 1.5·2^23 exactly, so k sits in the low bits of t's mantissa.
    let t = xc * LOG2E_F32 + ROUND_F32;
    let kf = t - ROUND_F32;
    let r = (xc - kf * LN2_HI_F32) - kf * LN2_LO_F32;
    let mut p = 1.0 / 5040.0;
    p = p * r + 1.0 / 720.0;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    p = p * r + 1.0;
    p = p * r + 1.0;
    // k ∈ [−126, 127]: the biased exponent k + 127 is in [1, 254], 2^k is normal.
    // Integer arithmetic on the bits (no float→int conversion, so it vectorises).
    let k = t.to_bits().wrapping_sub(ROUND_F32.to_bits());
    let scale = f32::from_bits(k.wrapping_add(127) << 23);
    let y = p * scale;
    if x < LO_F32 {
        0.0
    } else if x > HI_F32 {
        f32::INFINITY
    } else {
        y // NaN stays NaN
    }
}

// ---------------------------------------------------------------------------- f64

const LN2_HI_F64: f64 = 0.693_147_180_369_123_8; // fdlibm's ln2_hi
const LN2_LO_F64: f64 = 1.908_214_929_270_587_7e-10; // fdlibm's ln2_lo
const LOG2E_F64: f64 = core::f64::consts::LOG2_E;
const ROUND_F64: f64 = 6_755_399_441_055_744.0; // 1.5·2^52
const LO_F64: f64 = -708.0;
const HI_F64: f64 = 709.0;

/// `e^x` for `f64`: the same reduction, a degree-13 Taylor polynomial. Relative
/// error below 5e−16 (a few ulp).
#[inline(always)]
fn exp_f64(x: f64) -> f64 {
    let xc = x.clamp(LO_F64, HI_F64);
    let t = xc * LOG2E_F64 + ROUND_F64;
    let kf = t - ROUND_F64;
    let r = (xc - kf * LN2_HI_F64) - kf * LN2_LO_F64;
    // 1/n! for n = 13 down to 2.
    const C: [f64; 12] = [
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
    let mut p = C[0];
    for &c in &C[1..] {
        p = p * r + c;
    }
    p = p * r + 1.0;
    p = p * r + 1.0;
    // k ∈ [−1021, 1023]: 2^k is a normal f64.
    let k = t.to_bits().wrapping_sub(ROUND_F64.to_bits());
    let scale = f64::from_bits(k.wrapping_add(1023) << 52);
    let y = p * scale;
    if x < LO_F64 {
        0.0
    } else if x > HI_F64 {
        f64::INFINITY
    } else {
        y
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
        T::from_f64(exp_f32(x.to_f64() as f32) as f64)
    } else {
        T::from_f64(exp_f64(x.to_f64()))
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
    fn exp_f32_is_accurate() {
        let mut worst = 0.0f64;
        let mut x = -87.0f32;
        while x <= 88.0 {
            let got = exp_f32(x) as f64;
            let want = (x as f64).exp();
            worst = worst.max(((got - want) / want).abs());
            x += 0.001_7;
        }
        assert!(worst < 2.5e-7, "worst relative error {worst:e}");
        assert_eq!(exp_f32(0.0), 1.0);
        assert_eq!(exp_f32(-88.0), 0.0);
        assert_eq!(exp_f32(f32::NEG_INFINITY), 0.0);
        assert_eq!(exp_f32(89.0), f32::INFINITY);
        assert!(exp_f32(f32::NAN).is_nan());
        assert!(exp_f32(-87.0) >= f32::MIN_POSITIVE);
    }

    #[test]
    fn exp_f64_is_accurate() {
        let mut worst = 0.0f64;
        let mut x = -708.0f64;
        while x <= 709.0 {
            let got = exp_f64(x);
            let want = libm::exp(x);
            worst = worst.max(((got - want) / want).abs());
            x += 0.013_7;
        }
        assert!(worst < 5e-16, "worst relative error {worst:e}");
        assert_eq!(exp_f64(0.0), 1.0);
        assert_eq!(exp_f64(f64::NEG_INFINITY), 0.0);
        assert!(exp_f64(-708.0) >= f64::MIN_POSITIVE);
    }

    #[test]
    fn exp_never_exceeds_one_for_non_positive_x() {
        let mut x = 0.0f32;
        while x > -2.0 {
            assert!(exp_f32(x) <= 1.0, "x = {x}");
            x -= 1.0e-4;
        }
    }
}
