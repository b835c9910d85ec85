//! Shaw et al. (2018) relative position representations: learned key and value
//! terms indexed by the clipped distance between query and key positions.
//!
//! They plug into attention through its [`RelativeKv`] hook
//! ([`AttnOptions::relative`](crate::attention::AttnOptions::relative)):
//! scores `q_i·(k_j + a^K_ij)·scale`, outputs `Σ_j α_ij (v_j + a^V_ij)`, with
//! `a^K_ij`, `a^V_ij` the table rows of `clip(j − i, −K, K) + K`. Forward
//! only (the crate has no attention backward yet). Tested against an
//! explicit PyTorch transcription of the paper, both at the SDPA level and
//! as a full multi-head layer (causal and not).

use crate::attention::RelativeKv;
use crate::error::{Error, Result, check_len};
use crate::mat::MatRef;

/// Shaw et al.'s relative position terms: tables of `2·K + 1` rows, row
/// `clip(key_pos − query_pos, −K, K) + K`, shared by all heads.
///
/// ```
/// use constml::position::ShawRelative;
/// let ak = [[0.1f32, 0.2], [0.0, 0.0], [0.3, 0.4]]; // K = 1
/// let shaw = ShawRelative::from_arrays(Some(&ak), None::<&[[f32; 1]; 3]>);
/// assert_eq!(shaw.max_distance(), 1);
/// assert_eq!(shaw.index(5, 2), 0); // distance −3 clips to −1
/// # Ok::<(), constml::Error>(())
/// ```
#[derive(Clone, Copy, Debug)]
pub struct ShawRelative<'a, T> {
    max_distance: usize,
    keys: Option<MatRef<'a, T>>,
    values: Option<MatRef<'a, T>>,
}

impl<'a, T> ShawRelative<'a, T> {
    /// Tables as views: each given table must have `2·max_distance + 1` rows.
    /// `max_distance = 0` is an error (every pair would share one term, so
    /// the encoding would carry no position).
    pub fn new(
        max_distance: usize,
        keys: Option<MatRef<'a, T>>,
        values: Option<MatRef<'a, T>>,
    ) -> Result<Self> {
        if max_distance == 0 {
            return Err(Error::InvalidParameter {
                what: "ShawRelative: max_distance",
                reason: "must be at least 1",
            });
        }
        let rows = max_distance
            .checked_mul(2)
            .and_then(|r| r.checked_add(1))
            .ok_or(Error::InvalidParameter {
                what: "ShawRelative: max_distance",
                reason: "2·max_distance + 1 overflows usize",
            })?;
        for (what, t) in [
            ("ShawRelative: keys", &keys),
            ("ShawRelative: values", &values),
        ] {
            if let Some(t) = t {
                check_len(what, rows, t.rows())?;
            }
        }
        Ok(Self {
            max_distance,
            keys,
            values,
        })
    }

    /// Tables as arrays of `R = 2·K + 1` rows (`R` odd and `≥ 3`, checked at
    /// compile time).
    ///
    /// ```compile_fail,E0080
    /// use constml::position::ShawRelative;
    /// let ak = [[0.1f32, 0.2]]; // K = 0
    /// let _ = ShawRelative::from_arrays(Some(&ak), None::<&[[f32; 1]; 1]>);
    /// ```
    pub fn from_arrays<const R: usize, const DK: usize, const DV: usize>(
        keys: Option<&'a [[T; DK]; R]>,
        values: Option<&'a [[T; DV]; R]>,
    ) -> Self {
        const {
            assert!(
                R % 2 == 1 && R >= 3,
                "ShawRelative: tables need 2·K + 1 rows, K ≥ 1"
            )
        };
        Self {
            max_distance: R / 2,
            keys: keys.map(MatRef::from_array),
            values: values.map(MatRef::from_array),
        }
    }

    /// The clipping distance `K`.
    pub fn max_distance(&self) -> usize {
        self.max_distance
    }

    /// Table row for a pair: `clip(key_pos − query_pos, −K, K) + K`.
    #[inline]
    pub fn index(&self, query_pos: usize, key_pos: usize) -> usize {
        let k = self.max_distance;
        if key_pos >= query_pos {
            k + (key_pos - query_pos).min(k)
        } else {
            k - (query_pos - key_pos).min(k)
        }
    }
}

impl<T> RelativeKv<T> for ShawRelative<'_, T> {
    fn key_term(&self, _head: usize, query_pos: usize, key_pos: usize) -> Option<&[T]> {
        self.keys
            .as_ref()
            .and_then(|t| t.row(self.index(query_pos, key_pos)))
    }
    fn value_term(&self, _head: usize, query_pos: usize, key_pos: usize) -> Option<&[T]> {
        self.values
            .as_ref()
            .and_then(|t| t.row(self.index(query_pos, key_pos)))
    }
}

#[cfg(feature = "std")]
pub use dynamic::ShawRelativeDyn;

#[cfg(feature = "std")]
mod dynamic {
    use super::*;
    use crate::matrix::Matrix;

    /// Owned Shaw tables (`std`); [`view`](ShawRelativeDyn::view) gives the
    /// [`ShawRelative`] hook.
    ///
    /// ```
    /// use constml::{Matrix, position::ShawRelativeDyn};
    /// let shaw = ShawRelativeDyn::new(2, Some(Matrix::<f32>::zeros(5, 8)?), None)?;
    /// assert_eq!(shaw.view().max_distance(), 2);
    /// assert!(ShawRelativeDyn::new(2, Some(Matrix::<f32>::zeros(4, 8)?), None).is_err());
    /// # Ok::<(), constml::Error>(())
    /// ```
    #[derive(Clone, Debug)]
    pub struct ShawRelativeDyn<T> {
        max_distance: usize,
        keys: Option<Matrix<T>>,
        values: Option<Matrix<T>>,
    }

    impl<T: crate::real::Real> ShawRelativeDyn<T> {
        /// Tables of `2·max_distance + 1` rows each (checked as
        /// [`ShawRelative::new`] checks them).
        pub fn new(
            max_distance: usize,
            keys: Option<Matrix<T>>,
            values: Option<Matrix<T>>,
        ) -> Result<Self> {
            ShawRelative::new(
                max_distance,
                keys.as_ref().map(Matrix::view),
                values.as_ref().map(Matrix::view),
            )?;
            Ok(Self {
                max_distance,
                keys,
                values,
            })
        }

        /// The hook over the owned tables.
        pub fn view(&self) -> ShawRelative<'_, T> {
            ShawRelative {
                max_distance: self.max_distance,
                keys: self.keys.as_ref().map(Matrix::view),
                values: self.values.as_ref().map(Matrix::view),
            }
        }
    }
}
