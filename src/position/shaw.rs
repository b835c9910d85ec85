//! Shaw et al. (2018) relative position representations: learned key and value
//! terms indexed by the clipped distance between query and key positions.
//!
//! They plug into attention through its [`RelativeKv`] hook
//! ([`AttnOptions::relative`](crate::attention::AttnOptions::relative)).

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
    pub fn new(
        max_distance: usize,
        keys: Option<MatRef<'a, T>>,
        values: Option<MatRef<'a, T>>,
    ) -> Result<Self> {
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

    /// Tables as arrays of `R = 2·K + 1` rows (`R` odd, checked at compile time).
    pub fn from_arrays<const R: usize, const DK: usize, const DV: usize>(
        keys: Option<&'a [[T; DK]; R]>,
        values: Option<&'a [[T; DV]; R]>,
    ) -> Self {
        const { assert!(R % 2 == 1, "ShawRelative: tables need 2·K + 1 rows") };
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
