//! ALiBi, attention with linear biases (Press et al. 2022): no position
//! embedding; each head `h` adds `−m_h · distance` to its scores.
//!
//! # Slopes
//!
//! For `n` heads and maximum bias `B` (8 in the paper, MPT's
//! `alibi_bias_max`): with `m = 2^⌊log₂ n⌋`, heads `1..=m` get `2^(−B·k/m)`;
//! when `n` is not a power of two, the remaining `n − m` heads get the
//! in-between slopes `2^(−B·(2j−1)/(2m))`, `j = 1, 2, …` — the paper's
//! interpolation, as Bloom and MPT compute it. [`alibi_slopes`] returns the
//! exact slopes rounded once to `T` (computed in `f64`): in `f32` they equal
//! MPT's `1/2^x` values. Bloom raises an `f32`-rounded base to integer
//! powers in `f32`, so its slopes differ from these by a few ulp (up to 6
//! for 32 heads; tested within 8).
//!
//! # Bias forms ([`AlibiForm`])
//!
//! * [`Causal`](AlibiForm::Causal): `m_h · (j − i)` for a query at `i` and a
//!   key at `j` — the paper's `−m·(i − j)` on the keys a causal query sees.
//! * [`Symmetric`](AlibiForm::Symmetric): `−m_h · |i − j|` (bidirectional
//!   encoders, MPT's `alibi_full`).
//! * [`Bloom`](AlibiForm::Bloom): `m_h · (j − first)` for keys at
//!   `j ≥ first`, 0 before — Bloom's bias, which counts key positions from
//!   the first real token of a left-padded sequence (padding keys must be
//!   masked as well). Per query row it differs from `Causal` by a constant,
//!   so the softmax is the same.
//!
//! ```
//! use constml::attention::ScoreBias;
//! use constml::position::{Alibi, AlibiForm, alibi_slopes};
//! let slopes: [f32; 8] = alibi_slopes();
//! assert_eq!(slopes[0], 0.5);
//! assert_eq!(slopes[7], 1.0 / 256.0);
//! let alibi = Alibi::new(&slopes, AlibiForm::Causal)?;
//! assert_eq!(alibi.bias(0, 10, 7), -1.5); // −0.5 · (10 − 7)
//! # Ok::<(), constml::Error>(())
//! ```

use crate::attention::{KeyPositions, ScoreBias};
use crate::error::{Error, Result};
use crate::mat::MatMut;
use crate::real::Real;

/// The exact slope of head `head` (0-based) of `heads`, maximum bias
/// `max_bias`, in `f64`. `Err` for `heads = 0`, `head ≥ heads` or a
/// non-finite `max_bias`.
pub fn alibi_slope(head: usize, heads: usize, max_bias: f64) -> Result<f64> {
    if heads == 0 {
        return Err(Error::InvalidParameter {
            what: "ALiBi: heads",
            reason: "needs at least one head",
        });
    }
    if head >= heads {
        return Err(Error::OutOfRange {
            what: "ALiBi: head",
            index: head,
            len: heads,
        });
    }
    if !max_bias.is_finite() {
        return Err(Error::InvalidParameter {
            what: "ALiBi: max_bias",
            reason: "must be finite",
        });
    }
    // m = 2^⌊log₂ heads⌋.
    let m = 1usize << (usize::BITS - 1 - heads.leading_zeros());
    let m_f = m as f64;
    let exponent = if head < m {
        max_bias * (head + 1) as f64 / m_f
    } else {
        let j = head - m + 1;
        max_bias * (2 * j - 1) as f64 / (2.0 * m_f)
    };
    Ok(libm::exp2(-exponent))
}

/// Fills `out` (one slope per head) with the exact slopes for maximum bias
/// `max_bias`, rounded to `T`. `Err` for an empty `out` (zero heads) or a
/// non-finite `max_bias`.
pub fn alibi_slopes_into<T: Real>(out: &mut [T], max_bias: f64) -> Result<()> {
    let n = out.len();
    alibi_slope(0, n, max_bias)?;
    for (h, s) in out.iter_mut().enumerate() {
        *s = T::from_f64(alibi_slope(h, n, max_bias)?);
    }
    Ok(())
}

/// The exact slopes of `H` heads with the paper's maximum bias 8 (`H ≥ 1`
/// checked at compile time).
///
/// ```compile_fail,E0080
/// let _: [f32; 0] = constml::position::alibi_slopes();
/// ```
pub fn alibi_slopes<T: Real, const H: usize>() -> [T; H] {
    const { assert!(H > 0, "alibi_slopes: zero heads") };
    let mut s = [T::ZERO; H];
    // H ≥ 1 and the bias is finite: this cannot fail.
    let _ = alibi_slopes_into(&mut s, 8.0);
    s
}

/// How an ALiBi bias depends on the query and key positions (see the
/// [module docs](self)).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AlibiForm {
    /// `m · (j − i)`: the paper's bias for causal attention.
    Causal,
    /// `−m · |i − j|`: bidirectional.
    Symmetric,
    /// `m · (j − first)` for `j ≥ first`, else 0: Bloom with left padding.
    Bloom {
        /// Absolute position of the first real (non-padding) token.
        first: usize,
    },
}

/// An ALiBi score bias: one slope per head and a form; a [`ScoreBias`].
#[derive(Clone, Copy, Debug)]
pub struct Alibi<'a, T> {
    slopes: &'a [T],
    form: AlibiForm,
}

impl<'a, T: Real> Alibi<'a, T> {
    /// `Err` for zero heads or a non-finite slope.
    pub fn new(slopes: &'a [T], form: AlibiForm) -> Result<Self> {
        if slopes.is_empty() {
            return Err(Error::InvalidParameter {
                what: "ALiBi: slopes",
                reason: "needs at least one head",
            });
        }
        if slopes.iter().any(|s| !s.is_finite()) {
            return Err(Error::InvalidParameter {
                what: "ALiBi: slopes",
                reason: "must be finite",
            });
        }
        Ok(Self { slopes, form })
    }

    /// The slopes.
    pub fn slopes(&self) -> &'a [T] {
        self.slopes
    }
    /// The form.
    pub fn form(&self) -> AlibiForm {
        self.form
    }

    /// Fills `out` `(heads·NQ, NK)` (head `h` in rows `h·NQ ..`) with the bias
    /// of queries at `query_start + i` and keys at `key_start + j`, for
    /// [`AttnOptions::bias_per_head`](crate::attention::AttnOptions::bias_per_head).
    pub fn fill_views(
        &self,
        query_start: usize,
        key_start: usize,
        mut out: MatMut<'_, T>,
    ) -> Result<()> {
        let h = self.slopes.len();
        let (nq, _) = super::bias_rows(
            "ALiBi: out",
            h,
            out.rows(),
            out.cols(),
            query_start,
            key_start,
        )?;
        for head in 0..h {
            for i in 0..nq {
                if let Some(row) = out.row_mut(head * nq + i) {
                    for (j, e) in row.iter_mut().enumerate() {
                        *e = self.bias(head, query_start + i, key_start + j);
                    }
                }
            }
        }
        Ok(())
    }
}

/// `a − b` as a `T` (exact below 2^24 in `f32`).
#[inline]
fn signed_distance<T: Real>(a: usize, b: usize) -> T {
    if a >= b {
        T::from_usize(a - b)
    } else {
        -T::from_usize(b - a)
    }
}

impl<T: Real> ScoreBias<T> for Alibi<'_, T> {
    #[inline]
    fn bias(&self, head: usize, query_pos: usize, key_pos: usize) -> T {
        let m = self.slopes.get(head).copied().unwrap_or(T::ZERO);
        match self.form {
            AlibiForm::Causal => m * signed_distance::<T>(key_pos, query_pos),
            AlibiForm::Symmetric => -(m * T::from_usize(key_pos.abs_diff(query_pos))),
            AlibiForm::Bloom { first } => {
                if key_pos >= first {
                    m * T::from_usize(key_pos - first)
                } else {
                    T::ZERO
                }
            }
        }
    }
    fn heads(&self) -> Option<usize> {
        Some(self.slopes.len())
    }

    fn add_to_row(&self, head: usize, query_pos: usize, keys: KeyPositions<'_>, row: &mut [T]) {
        match (self.form, keys) {
            // A run of consecutive keys: the distances count up by one (exact
            // integers in T below 2^24 in f32, as `bias` computes them).
            (AlibiForm::Causal, KeyPositions::Range(first))
                if first.checked_add(row.len()).is_some() =>
            {
                let m = self.slopes.get(head).copied().unwrap_or(T::ZERO);
                let mut d = signed_distance::<T>(first, query_pos);
                for x in row {
                    *x += m * d;
                    d += T::ONE;
                }
            }
            _ => {
                for (j, x) in row.iter_mut().enumerate() {
                    *x += self.bias(head, query_pos, keys.at(j));
                }
            }
        }
    }
}
