//! Dropout (Srivastava et al. 2014), PyTorch `nn.Dropout` semantics: in
//! training each element is zeroed with probability `p` and the survivors
//! are scaled by `1/(1 − p)`; in eval it is the identity. The kept/dropped
//! mask lives in caller storage for the backward (`dx = dy·mask/(1 − p)`).
//! The draws come from the caller's seeded generator (one uniform per
//! element: kept when `u ≥ p`), so a run is reproducible; they cannot match
//! PyTorch's own generator. `p = 1` drops everything (output zeros).
//!
//! ```
//! use constml::nn::{dropout_backward, dropout_forward};
//! use constml::rand_core::SeedableRng;
//! let mut rng = rand_xoshiro::Xoshiro128PlusPlus::seed_from_u64(1);
//! let x = [1.0f32; 8];
//! let (mut y, mut mask) = ([0.0f32; 8], [false; 8]);
//! dropout_forward(&x, &mut y, &mut mask, 0.5, true, &mut rng)?;
//! for (&v, &m) in y.iter().zip(&mask) {
//!     assert_eq!(v, if m { 2.0 } else { 0.0 });
//! }
//! let mut dx = [0.0f32; 8];
//! dropout_backward(&[1.0; 8], &mask, 0.5, true, &mut dx)?;
//! assert_eq!(dx, y);
//! # Ok::<(), constml::Error>(())
//! ```

use rand_core::Rng;

use crate::decode::uniform;
use crate::error::{Error, Result, check_len};
use crate::real::Real;

fn check_p<T: Real>(p: T) -> Result<()> {
    if p >= T::ZERO && p <= T::ONE {
        Ok(())
    } else {
        Err(Error::InvalidParameter {
            what: "dropout: p",
            reason: "must be in [0, 1]",
        })
    }
}

#[inline]
fn keep_scale<T: Real>(p: T) -> T {
    if p < T::ONE {
        T::ONE / (T::ONE - p)
    } else {
        T::ZERO
    }
}

/// Forward: `y = x·mask/(1 − p)` in training (drawing `mask`), `y = x` in
/// eval (`mask` set to all `true`). All slices the same length.
pub fn dropout_forward<T: Real, R: Rng + ?Sized>(
    x: &[T],
    y: &mut [T],
    mask: &mut [bool],
    p: T,
    training: bool,
    rng: &mut R,
) -> Result<()> {
    check_p(p)?;
    check_len("dropout: y", x.len(), y.len())?;
    check_len("dropout: mask", x.len(), mask.len())?;
    if !training {
        y.copy_from_slice(x);
        mask.fill(true);
        return Ok(());
    }
    let s = keep_scale(p);
    for ((yi, &xi), m) in y.iter_mut().zip(x).zip(mask.iter_mut()) {
        *m = uniform::<T, R>(rng) >= p && p < T::ONE;
        *yi = if *m { xi * s } else { T::ZERO };
    }
    Ok(())
}

/// Backward: `dx = dy·mask/(1 − p)` in training, `dx = dy` in eval.
pub fn dropout_backward<T: Real>(
    dy: &[T],
    mask: &[bool],
    p: T,
    training: bool,
    dx: &mut [T],
) -> Result<()> {
    check_p(p)?;
    check_len("dropout backward: mask", dy.len(), mask.len())?;
    check_len("dropout backward: dx", dy.len(), dx.len())?;
    if !training {
        dx.copy_from_slice(dy);
        return Ok(());
    }
    let s = keep_scale(p);
    for ((d, &g), &m) in dx.iter_mut().zip(dy).zip(mask) {
        *d = if m { g * s } else { T::ZERO };
    }
    Ok(())
}
