//! The one error type of constml.

use core::fmt;

/// Everything that can go wrong in a constml call.
///
/// Nothing reachable from the public API panics on bad runtime input: it returns
/// one of these. Shape problems that the const-generic face can see are rejected
/// at compile time instead. The enum is `#[non_exhaustive]`: later chapters of the
/// library add variants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// Two lengths that must agree do not.
    LengthMismatch {
        /// Which argument is wrong.
        what: &'static str,
        /// The length required by the other arguments.
        expected: usize,
        /// The length given.
        found: usize,
    },
    /// A matrix has the wrong number of rows or columns for the operation.
    ShapeMismatch {
        /// Which argument is wrong.
        what: &'static str,
        /// The `(rows, cols)` required by the other arguments.
        expected: (usize, usize),
        /// The `(rows, cols)` given.
        found: (usize, usize),
    },
    /// A buffer is too short for the shape and stride it is viewed with.
    BufferTooSmall {
        /// Which buffer.
        what: &'static str,
        /// The number of elements the shape needs.
        needed: usize,
        /// The number of elements given.
        found: usize,
    },
    /// The input is empty where the result would be undefined (argmax of nothing).
    Empty {
        /// Which input.
        what: &'static str,
    },
    /// The input holds a NaN where the result would be meaningless.
    NaN {
        /// Which input.
        what: &'static str,
    },
    /// A parameter is outside its valid range.
    InvalidParameter {
        /// Which parameter.
        what: &'static str,
        /// The rule it breaks, e.g. `"must be in [0, 1]"`.
        reason: &'static str,
    },
    /// A bounded KV cache is full: appending would exceed its capacity.
    CacheFull {
        /// The cache capacity in positions.
        capacity: usize,
    },
    /// A position is not (or no longer) held by the cache.
    PositionNotHeld {
        /// The requested absolute position.
        position: usize,
        /// The oldest absolute position still held.
        oldest: usize,
        /// The next absolute position to be written (one past the newest).
        next: usize,
    },
    /// A position or index lies beyond the end of a fixed table.
    OutOfRange {
        /// What is indexed.
        what: &'static str,
        /// The index given.
        index: usize,
        /// The table length (valid indices are `0..len`).
        len: usize,
    },
    /// Every logit (or every candidate) is −∞: nothing can be chosen.
    NoCandidates,
    /// A model driven by beam search or generation returned an error of its own.
    Model {
        /// The model's own description of the failure.
        what: &'static str,
    },
    /// A file or byte buffer (checkpoint, tokenizer) is truncated, corrupt,
    /// or could not be read.
    Format {
        /// What was being read.
        what: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Error::LengthMismatch {
                what,
                expected,
                found,
            } => write!(f, "{what}: expected length {expected}, found {found}"),
            Error::ShapeMismatch {
                what,
                expected,
                found,
            } => write!(
                f,
                "{what}: expected shape ({}, {}), found ({}, {})",
                expected.0, expected.1, found.0, found.1
            ),
            Error::BufferTooSmall {
                what,
                needed,
                found,
            } => write!(
                f,
                "{what}: buffer holds {found} elements, the shape needs {needed}"
            ),
            Error::Empty { what } => write!(f, "{what}: empty input has no result"),
            Error::NaN { what } => write!(f, "{what}: contains NaN"),
            Error::InvalidParameter { what, reason } => write!(f, "{what}: {reason}"),
            Error::CacheFull { capacity } => {
                write!(f, "KV cache full: capacity is {capacity} positions")
            }
            Error::PositionNotHeld {
                position,
                oldest,
                next,
            } => write!(
                f,
                "position {position} is not held by the cache (it holds {oldest}..{next})"
            ),
            Error::OutOfRange { what, index, len } => {
                write!(f, "{what}: index {index} is out of range 0..{len}")
            }
            Error::NoCandidates => write!(f, "every logit is -inf: no token can be chosen"),
            Error::Model { what } => write!(f, "model error: {what}"),
            Error::Format { what, reason } => write!(f, "{what}: {reason}"),
        }
    }
}

impl core::error::Error for Error {}

/// `core::result::Result` with [`Error`].
pub type Result<T> = core::result::Result<T, Error>;

/// `Ok(())` if `found == expected`, else [`Error::LengthMismatch`].
#[inline]
pub(crate) fn check_len(what: &'static str, expected: usize, found: usize) -> Result<()> {
    if expected == found {
        Ok(())
    } else {
        Err(Error::LengthMismatch {
            what,
            expected,
            found,
        })
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::string::ToString;

    #[test]
    fn messages_name_the_argument() {
        let e = Error::LengthMismatch {
            what: "dot: b",
            expected: 3,
            found: 4,
        };
        assert_eq!(e.to_string(), "dot: b: expected length 3, found 4");
        let e = Error::PositionNotHeld {
            position: 2,
            oldest: 10,
            next: 20,
        };
        assert_eq!(
            e.to_string(),
            "position 2 is not held by the cache (it holds 10..20)"
        );
    }
}
