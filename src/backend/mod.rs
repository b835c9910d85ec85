//! Kernels: the [`Backend`] trait and its two implementations, [`Scalar`] and [`Simd`].
//!
//! This is the only place in constml with SIMD code. Every algorithm above it is
//! written once, generic over `B: Backend`, and calls these kernels.
//!
//! * [`Scalar`] is the reference: plain loops as a careful engineer writes them
//!   without SIMD — one accumulator per output, no manual unrolling. Tests use it
//!   as the oracle for [`Simd`].
//! * [`Simd`] uses `wide` vectors, register-blocked with several independent
//!   accumulators.
//!
//! The trait's checked methods (`dot`, `gemm`, `softmax`, …) validate their
//! arguments and return [`Error`] on a mismatch. Each is a thin shell
//! over a `raw_*` kernel (hidden from the docs) that the algorithms call after
//! they have validated shapes once: a raw kernel never panics either, but works on
//! the common prefix of mismatched inputs instead of reporting them.
//!
//! ```
//! use constml::{Backend, Scalar, Simd};
//! let a = [1.0f32, 2.0, 3.0];
//! let b = [4.0f32, 5.0, 6.0];
//! assert_eq!(Simd::dot(&a, &b)?, 32.0);
//! assert_eq!(Scalar::dot(&a, &b)?, 32.0);
//! assert!(Simd::dot(&a, &b[..2]).is_err());
//! # Ok::<(), constml::Error>(())
//! ```

pub(crate) mod gemm;
mod scalar;
mod simd;

pub use scalar::Scalar;
pub use simd::Simd;

use crate::error::{Error, Result, check_len};
use crate::mat::{MatMut, MatRef};
use crate::real::Real;

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::Scalar {}
    impl Sealed for super::Simd {}
}

/// Whether a matrix kernel overwrites its output or adds to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Accumulate {
    /// `C = A·B`.
    Overwrite,
    /// `C += A·B`.
    Add,
}

/// How [`Backend::gemm_op`] reads an operand: as stored or transposed (BLAS's
/// `N` and `T`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transpose {
    /// `op(X) = X`.
    AsStored,
    /// `op(X) = Xᵀ`.
    Transposed,
}

/// Elements of scratch [`Backend::gemm_op`] asks for: a block of 96 rows of A
/// and one panel of B, each 256 steps of depth (`f32`; 128 for `f64`), the
/// panel two vectors of columns wide, each with a cache line's worth to align
/// it (A is packed only when its rows alias in the L1 cache; the rest of the
/// time that part goes unused). It depends on the build's vector width:
/// 32,800 `f32` (128 KiB) with AVX-512, 26,656 with SSE2 or NEON; 14,352 `f64`
/// with AVX-512. A `const fn`, so a caller can size a `static` or an array.
///
/// ```
/// use constml::backend::gemm_scratch_len;
/// let mut scratch = [0.0f32; gemm_scratch_len::<f32>()];
/// assert!(scratch.len() >= 26_656);
/// # let _ = &mut scratch;
/// ```
pub const fn gemm_scratch_len<T: Real>() -> usize {
    gemm::scratch_len::<T>(usize::MAX, usize::MAX, true)
}

/// Group `g`'s scale from little-endian `f32` bytes (0 past the end).
#[inline(always)]
pub(crate) fn q8_scale(ws: &[u8], g: usize) -> f32 {
    match g
        .checked_mul(4)
        .and_then(|at| ws.get(at..)?.first_chunk::<4>())
    {
        Some(b) => f32::from_le_bytes(*b),
        None => 0.0,
    }
}

crate::real::with_vector_unit! {
    /// The sum of 16 lanes by a halving tree: lane `j < h` becomes
    /// `lane j + lane j + h` for `h = 8, 4, 2, 1`.
    #[inline(always)]
    pub(crate) fn lane_tree(mut a: [f32; 16]) -> f32 {
        let mut h = 8;
        while h > 0 {
            for j in 0..h {
                a[j] += a[j + h];
            }
            h /= 2;
        }
        a[0]
    }

    /// [`Backend::raw_q8_dot`]'s portable form, 16 lanes.
    #[inline(always)]
    pub(crate) fn q8_dot(w: &[u8], ws: &[u8], x: &[i8], xs: &[f32], gs: usize) -> f32 {
        let mut acc = [0.0f32; 16];
        if gs == 0 {
            return 0.0;
        }
        let groups = w.chunks_exact(gs).zip(x.chunks_exact(gs)).zip(xs).zip(ws.chunks_exact(4));
        for (((wg, xg), &sx), sw) in groups {
            // Element i of the group is lane (i mod 32) / 2: pairs within
            // each run of 32 (a shorter last run fills the first lanes).
            let mut p = [0i32; 16];
            let (wc, wt) = wg.as_chunks::<32>();
            let (xc, xt) = xg.as_chunks::<32>();
            for (a, b) in wc.iter().zip(xc) {
                for (l, pl) in p.iter_mut().enumerate() {
                    *pl += a[2 * l] as i8 as i32 * b[2 * l] as i32
                        + a[2 * l + 1] as i8 as i32 * b[2 * l + 1] as i32;
                }
            }
            for (i, (&a, &b)) in wt.iter().zip(xt).enumerate() {
                p[i / 2] += a as i8 as i32 * b as i32;
            }
            let sc = f32::from_le_bytes([sw[0], sw[1], sw[2], sw[3]]) * sx;
            for (a, &d) in acc.iter_mut().zip(&p) {
                *a += d as f32 * sc;
            }
        }
        lane_tree(acc)
    }
}

crate::real::without_vector_unit! {
    /// [`Backend::raw_q8_dot`]'s portable form, one lane.
    #[inline(always)]
    pub(crate) fn q8_dot(w: &[u8], ws: &[u8], x: &[i8], xs: &[f32], gs: usize) -> f32 {
        let mut acc = 0.0f32;
        if gs == 0 {
            return 0.0;
        }
        let groups = w.chunks_exact(gs).zip(x.chunks_exact(gs)).zip(xs).zip(ws.chunks_exact(4));
        for (((wg, xg), &sx), sw) in groups {
            let d: i32 = wg
                .iter()
                .zip(xg)
                .map(|(&a, &b)| a as i8 as i32 * b as i32)
                .sum();
            acc += d as f32 * (f32::from_le_bytes([sw[0], sw[1], sw[2], sw[3]]) * sx);
        }
        acc
    }
}

/// A set of numeric kernels. Zero-sized; chosen at the call site by type.
///
/// Conventions:
/// * Matrices are row-major [`MatRef`]/[`MatMut`] views.
/// * [`matvec`](Backend::matvec) takes weights `(OUT, IN)` and computes
///   `y = W·x`, as PyTorch's `nn.Linear`.
/// * NaN propagates through arithmetic kernels (dot, gemm, softmax,
///   activations); kernels whose answer would be meaningless with a NaN input
///   ([`max`](Backend::max), [`argmax`](Backend::argmax)) return
///   [`Error::NaN`].
pub trait Backend:
    sealed::Sealed + Copy + Default + core::fmt::Debug + Send + Sync + 'static
{
    /// `"scalar"` or `"simd"`, for reports.
    const NAME: &'static str;

    // ----------------------------------------------------------------- raw kernels

    #[doc(hidden)]
    /// `Σ a[i]·b[i]` over the common prefix.
    fn raw_dot<T: Real>(a: &[T], b: &[T]) -> T;
    #[doc(hidden)]
    /// `y[i] += alpha·x[i]` over the common prefix.
    fn raw_axpy<T: Real>(alpha: T, x: &[T], y: &mut [T]);
    #[doc(hidden)]
    /// `y[i] = y[i] ⊕ x[i]` for `⊕` = add (`mul == false`) or multiply.
    fn raw_zip<T: Real>(y: &mut [T], x: &[T], mul: bool);
    #[doc(hidden)]
    /// For each column `r < out.len()` of the row-major `(bias.len(), n)`
    /// matrix `m`: the row index `c` minimising `bias[c] − 2·m[c·n + r]` (the
    /// first on ties; 0 if every value is NaN) — k-means' nearest centre from
    /// `‖c‖² − 2·x·c`. Rows past `m`'s end count as `+∞`.
    fn raw_nearest<T: Real>(m: &[T], n: usize, bias: &[T], out: &mut [usize]);
    #[doc(hidden)]
    /// `y[i] += a[i]·b[i]` over the common prefix.
    fn raw_mul_add<T: Real>(y: &mut [T], a: &[T], b: &[T]);
    #[doc(hidden)]
    /// `x[i] = x[i]·alpha + beta`.
    fn raw_affine<T: Real>(x: &mut [T], alpha: T, beta: T);
    #[doc(hidden)]
    /// `(max, saw_nan)`; `max` is −∞ for an empty slice.
    fn raw_max<T: Real>(x: &[T]) -> (T, bool);
    #[doc(hidden)]
    /// `Σ e^(x[i] − shift)`, also storing each term into `x` when `store`.
    fn raw_exp_sum<T: Real>(x: &mut [T], shift: T, store: bool) -> T;
    #[doc(hidden)]
    /// Applies `f` (scalar) / `g` (vector) to every element.
    fn raw_map<T: Real>(x: &mut [T], f: impl Fn(T) -> T, g: impl Fn(T::V) -> T::V);
    #[doc(hidden)]
    /// `C (+)= A·B` over the common dims of valid views.
    fn raw_gemm<T: Real>(a: MatRef<'_, T>, b: MatRef<'_, T>, c: MatMut<'_, T>, acc: Accumulate);
    #[doc(hidden)]
    /// `C (+)= A·Bᵀ` over the common dims of valid views.
    fn raw_gemm_bt<T: Real>(a: MatRef<'_, T>, b: MatRef<'_, T>, c: MatMut<'_, T>, acc: Accumulate);

    #[doc(hidden)]
    /// Rotates each pair `(lo[i], hi[i])` by the angle with cosine `cos[i]` and
    /// sine `sin[i]`: `(lo·c − hi·s, hi·c + lo·s)` (RoPE's half-split layout),
    /// over the common prefix.
    fn raw_rotate_halves<T: Real>(lo: &mut [T], hi: &mut [T], cos: &[T], sin: &[T]);
    #[doc(hidden)]
    /// Rotates each pair `(x[2i], x[2i+1])` by the angle with cosine `cos[2i]`
    /// and sine `sin[2i]` (RoPE's interleaved layout; its tables hold every
    /// coefficient twice, `cos[2i] = cos[2i+1]`), over the common prefix
    /// rounded down to whole pairs.
    fn raw_rotate_pairs<T: Real>(x: &mut [T], cos: &[T], sin: &[T]);

    #[doc(hidden)]
    /// `C (+)= Aᵀ·B` over the common dims of valid views: A `(k, m)`, B
    /// `(k, n)`, C `(m, n)`.
    fn raw_gemm_at<T: Real>(a: MatRef<'_, T>, b: MatRef<'_, T>, c: MatMut<'_, T>, acc: Accumulate);

    #[doc(hidden)]
    /// `C (+)= op(A)·op(B)` over the common dims of valid views, packing into
    /// `scratch` (at least [`gemm_scratch_len`] elements).
    fn raw_gemm_op<T: Real>(
        a: MatRef<'_, T>,
        ta: Transpose,
        b: MatRef<'_, T>,
        tb: Transpose,
        c: MatMut<'_, T>,
        acc: Accumulate,
        scratch: &mut [T],
    );

    /// `Σ x[i]`.
    fn sum<T: Real>(x: &[T]) -> T;

    #[doc(hidden)]
    /// `Σ w[i]·x[i]` over the common prefix, exact in `i32`: `w` holds int8
    /// values as their bytes (two's complement), `x` int8 values. The integer
    /// core of the Q8_0 kernels ([`models::quant`](crate::models::quant));
    /// exact, so every backend gives the same value. Callers keep the length at
    /// most 2^16 (no `i32` overflow: 128² · 2^16 = 2^30).
    fn raw_i8_dot(w: &[u8], x: &[i8]) -> i32 {
        w.iter()
            .zip(x)
            .map(|(&a, &b)| (a as i8 as i32) * (b as i32))
            .sum()
    }

    #[doc(hidden)]
    /// One row of a Q8_0 matrix–vector product (see
    /// [`models::quant`](crate::models::quant)): `w` the row's int8 values (as
    /// bytes), `ws` its group scales (little-endian `f32` bytes), `x` and `xs`
    /// the quantized activation, `gs` the group size (`w.len() = x.len()` a
    /// multiple of `gs`, checked by the caller). Per group, an exact `i32`
    /// dot becomes `f32` and is added as `dot · (s_w · s_x)`. On targets with
    /// a vector unit the row is summed in 16 lanes — element `i` of a group
    /// belongs to lane `(i mod 32) / 2`, each lane has its own group dot and
    /// `f32` sum, and the lanes are added at the end by a halving tree — so
    /// that a vector unit never reduces a group across lanes; on targets
    /// without one, in one lane (the whole group's dot, groups in order), which
    /// costs a microcontroller far fewer instructions. Every backend computes
    /// exactly these operations on a given target, so all give the same bits.
    fn raw_q8_dot(w: &[u8], ws: &[u8], x: &[i8], xs: &[f32], gs: usize) -> f32 {
        q8_dot(w, ws, x, xs, gs)
    }

    #[doc(hidden)]
    /// [`raw_q8_dot`](Backend::raw_q8_dot) of four rows with one activation
    /// (the same bits as four calls; a vector unit loads `x` once for all).
    fn raw_q8_dot4(w: [&[u8]; 4], ws: [&[u8]; 4], x: &[i8], xs: &[f32], gs: usize) -> [f32; 4] {
        core::array::from_fn(|i| Self::raw_q8_dot(w[i], ws[i], x, xs, gs))
    }

    // ------------------------------------------------------------- checked kernels

    /// Dot product `Σ a[i]·b[i]`; the lengths must match.
    #[inline]
    fn dot<T: Real>(a: &[T], b: &[T]) -> Result<T> {
        check_len("dot: b", a.len(), b.len())?;
        Ok(Self::raw_dot(a, b))
    }

    /// `y += alpha·x`; the lengths must match.
    #[inline]
    fn axpy<T: Real>(alpha: T, x: &[T], y: &mut [T]) -> Result<()> {
        check_len("axpy: y", x.len(), y.len())?;
        Self::raw_axpy(alpha, x, y);
        Ok(())
    }

    /// `x *= alpha`.
    #[inline]
    fn scale<T: Real>(alpha: T, x: &mut [T]) {
        Self::raw_affine(x, alpha, T::ZERO);
    }

    /// Element-wise `y += x`; the lengths must match.
    #[inline]
    fn add<T: Real>(y: &mut [T], x: &[T]) -> Result<()> {
        check_len("add: x", y.len(), x.len())?;
        Self::raw_zip(y, x, false);
        Ok(())
    }

    /// Element-wise `y *= x`; the lengths must match.
    #[inline]
    fn mul<T: Real>(y: &mut [T], x: &[T]) -> Result<()> {
        check_len("mul: x", y.len(), x.len())?;
        Self::raw_zip(y, x, true);
        Ok(())
    }

    /// The largest element. `Err(Empty)` for an empty slice, `Err(NaN)` if any
    /// element is NaN.
    #[inline]
    fn max<T: Real>(x: &[T]) -> Result<T> {
        if x.is_empty() {
            return Err(Error::Empty { what: "max" });
        }
        match Self::raw_max(x) {
            (_, true) => Err(Error::NaN { what: "max" }),
            (m, false) => Ok(m),
        }
    }

    /// Index of the largest element, the lowest index on ties. `Err(Empty)` for
    /// an empty slice, `Err(NaN)` if any element is NaN. An all −∞ slice gives 0.
    #[inline]
    fn argmax<T: Real>(x: &[T]) -> Result<usize> {
        let m = Self::max(x)?;
        // The first element equal to the maximum; it exists since `m` came from `x`.
        Ok(x.iter().position(|&v| v == m).unwrap_or(0))
    }

    /// Numerically stable softmax in place: `e^(x−max) / Σ e^(x−max)`.
    ///
    /// A row that is entirely −∞ (fully masked) becomes all zeros, never NaN. A NaN
    /// anywhere makes the whole row NaN, as in PyTorch, and so does a `+∞`
    /// (`∞ − ∞`). An empty slice is left as is.
    #[inline]
    fn softmax<T: Real>(x: &mut [T]) {
        let (m, nan) = Self::raw_max(x);
        if nan {
            x.fill(T::NAN);
            return;
        }
        if m == T::NEG_INFINITY {
            x.fill(T::ZERO);
            return;
        }
        let s = Self::raw_exp_sum(x, m, true);
        Self::raw_affine(x, T::ONE / s, T::ZERO);
    }

    /// Numerically stable log-softmax in place: `x − max − ln Σ e^(x−max)`.
    ///
    /// A row that is entirely −∞ stays −∞ (log of the all-zero row that
    /// [`softmax`](Backend::softmax) gives), never NaN. NaN (or a `+∞`)
    /// propagates to the row.
    #[inline]
    fn log_softmax<T: Real>(x: &mut [T]) {
        let (m, nan) = Self::raw_max(x);
        if nan {
            x.fill(T::NAN);
            return;
        }
        if m == T::NEG_INFINITY {
            return;
        }
        let s = Self::raw_exp_sum(x, m, false);
        // `(x − max) − ln Σ`, in this order (as PyTorch does): folding both into
        // one constant `max + ln Σ` would round it at the scale of `max`, an
        // error of up to ulp(max)/2 (5e-4 for f32 logits near 1e4).
        let l = s.ln();
        let (vm, vl) = (T::splat(m), T::splat(l));
        Self::raw_map(x, |v| (v - m) - l, |v| (v - vm) - vl);
    }

    /// `C = A·B` or `C += A·B` (row-major views). Shapes: A `(m, k)`, B `(k, n)`,
    /// C `(m, n)`.
    #[inline]
    fn gemm<T: Real>(
        a: MatRef<'_, T>,
        b: MatRef<'_, T>,
        c: MatMut<'_, T>,
        acc: Accumulate,
    ) -> Result<()> {
        if b.rows() != a.cols() {
            return Err(Error::ShapeMismatch {
                what: "gemm: b",
                expected: (a.cols(), b.cols()),
                found: b.shape(),
            });
        }
        if c.shape() != (a.rows(), b.cols()) {
            return Err(Error::ShapeMismatch {
                what: "gemm: c",
                expected: (a.rows(), b.cols()),
                found: c.shape(),
            });
        }
        Self::raw_gemm(a, b, c, acc);
        Ok(())
    }

    /// `C = A·Bᵀ` or `C += A·Bᵀ` (row-major views). Shapes: A `(m, k)`, B `(n, k)`,
    /// C `(m, n)`. This is the score product `Q·Kᵀ` of attention.
    #[inline]
    fn gemm_bt<T: Real>(
        a: MatRef<'_, T>,
        b: MatRef<'_, T>,
        c: MatMut<'_, T>,
        acc: Accumulate,
    ) -> Result<()> {
        if b.cols() != a.cols() {
            return Err(Error::ShapeMismatch {
                what: "gemm_bt: b",
                expected: (b.rows(), a.cols()),
                found: b.shape(),
            });
        }
        if c.shape() != (a.rows(), b.rows()) {
            return Err(Error::ShapeMismatch {
                what: "gemm_bt: c",
                expected: (a.rows(), b.rows()),
                found: c.shape(),
            });
        }
        Self::raw_gemm_bt(a, b, c, acc);
        Ok(())
    }

    /// `C = Aᵀ·B` or `C += Aᵀ·B` (row-major views). Shapes: A `(k, m)`, B
    /// `(k, n)`, C `(m, n)`. This is a weight gradient: `dW += dYᵀ·X` for a
    /// linear layer with `dY` `(N, OUT)` and `X` `(N, IN)`.
    ///
    /// ```
    /// use constml::{Accumulate, Backend, MatMut, MatRef, Simd};
    /// let a = [1.0f32, 2.0, 3.0, 4.0]; // (2, 2)
    /// let mut c = [0.0f32; 4];
    /// Simd::gemm_at(MatRef::new(&a, 2, 2)?, MatRef::new(&a, 2, 2)?, MatMut::new(&mut c, 2, 2)?, Accumulate::Overwrite)?;
    /// assert_eq!(c, [10.0, 14.0, 14.0, 20.0]); // AᵀA
    /// # Ok::<(), constml::Error>(())
    /// ```
    #[inline]
    fn gemm_at<T: Real>(
        a: MatRef<'_, T>,
        b: MatRef<'_, T>,
        c: MatMut<'_, T>,
        acc: Accumulate,
    ) -> Result<()> {
        if b.rows() != a.rows() {
            return Err(Error::ShapeMismatch {
                what: "gemm_at: b",
                expected: (a.rows(), b.cols()),
                found: b.shape(),
            });
        }
        if c.shape() != (a.cols(), b.cols()) {
            return Err(Error::ShapeMismatch {
                what: "gemm_at: c",
                expected: (a.cols(), b.cols()),
                found: c.shape(),
            });
        }
        Self::raw_gemm_at(a, b, c, acc);
        Ok(())
    }

    /// `C = op(A)·op(B)` or `C += op(A)·op(B)`, each operand read as stored or
    /// transposed (BLAS's `gemm` with `transa`, `transb`), packing into the
    /// caller's `scratch` instead of the stack. Shapes: `op(A)` `(m, k)`,
    /// `op(B)` `(k, n)`, C `(m, n)`; `scratch` needs at least
    /// [`gemm_scratch_len::<T>()`](gemm_scratch_len) elements (its contents
    /// are overwritten; none of it is read). [`gemm`](Backend::gemm),
    /// [`gemm_bt`](Backend::gemm_bt) and [`gemm_at`](Backend::gemm_at) are this
    /// with their scratch on the stack (zeroed on every call, 16–128 KiB). The only
    /// product it adds is `Aᵀ·Bᵀ`.
    ///
    /// Errors: an inner dimension that disagrees → `ShapeMismatch`
    /// (`gemm_op: b`); C of the wrong shape → `ShapeMismatch` (`gemm_op: c`);
    /// a short scratch → `BufferTooSmall` (`gemm_op: scratch`). C is untouched
    /// on `Err`.
    ///
    /// ```
    /// use constml::backend::{gemm_scratch_len, Transpose};
    /// use constml::{Accumulate, Backend, MatMut, MatRef, Simd};
    /// let a = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0]; // (3, 2): Aᵀ is (2, 3)
    /// let b = [1.0f32, 0.0, 0.0, 1.0, 1.0, 1.0]; // (3, 2)
    /// let mut c = [0.0f32; 4];
    /// let mut scratch = vec![0.0f32; gemm_scratch_len::<f32>()];
    /// Simd::gemm_op(
    ///     MatRef::new(&a, 3, 2)?, Transpose::Transposed,
    ///     MatRef::new(&b, 3, 2)?, Transpose::AsStored,
    ///     MatMut::new(&mut c, 2, 2)?, Accumulate::Overwrite, &mut scratch,
    /// )?;
    /// assert_eq!(c, [6.0, 8.0, 8.0, 10.0]); // Aᵀ·B
    /// # Ok::<(), constml::Error>(())
    /// ```
    #[allow(clippy::too_many_arguments)]
    #[inline]
    fn gemm_op<T: Real>(
        a: MatRef<'_, T>,
        ta: Transpose,
        b: MatRef<'_, T>,
        tb: Transpose,
        c: MatMut<'_, T>,
        acc: Accumulate,
        scratch: &mut [T],
    ) -> Result<()> {
        let dims = |x: &MatRef<'_, T>, t: Transpose| match t {
            Transpose::AsStored => x.shape(),
            Transpose::Transposed => (x.cols(), x.rows()),
        };
        let ((m, k), (kb, n)) = (dims(&a, ta), dims(&b, tb));
        if kb != k {
            return Err(Error::ShapeMismatch {
                what: "gemm_op: b",
                expected: (k, n),
                found: (kb, n),
            });
        }
        if c.shape() != (m, n) {
            return Err(Error::ShapeMismatch {
                what: "gemm_op: c",
                expected: (m, n),
                found: c.shape(),
            });
        }
        if scratch.len() < gemm_scratch_len::<T>() {
            return Err(Error::BufferTooSmall {
                what: "gemm_op: scratch",
                needed: gemm_scratch_len::<T>(),
                found: scratch.len(),
            });
        }
        Self::raw_gemm_op(a, ta, b, tb, c, acc, scratch);
        Ok(())
    }

    /// Column sums of `A` `(m, n)` into `y` (`n`), overwritten or added to:
    /// a bias gradient, `db += Σ_rows dY`.
    #[inline]
    fn col_sums<T: Real>(a: MatRef<'_, T>, y: &mut [T], acc: Accumulate) -> Result<()> {
        check_len("col_sums: y", a.cols(), y.len())?;
        if acc == Accumulate::Overwrite {
            y.fill(T::ZERO);
        }
        if a.cols() == 0 {
            return Ok(());
        }
        for i in 0..a.rows() {
            Self::raw_zip(y, a.row_or_empty(i), false);
        }
        Ok(())
    }

    /// Rank-1 update `C += alpha·x·yᵀ`: C `(x.len(), y.len())`.
    #[inline]
    fn ger<T: Real>(alpha: T, x: &[T], y: &[T], mut c: MatMut<'_, T>) -> Result<()> {
        if c.shape() != (x.len(), y.len()) {
            return Err(Error::ShapeMismatch {
                what: "ger: c",
                expected: (x.len(), y.len()),
                found: c.shape(),
            });
        }
        if y.is_empty() {
            return Ok(());
        }
        for (i, &xi) in x.iter().enumerate() {
            Self::raw_axpy(alpha * xi, y, c.row_mut_or_empty(i));
        }
        Ok(())
    }

    /// `y = W·x` (or `y += W·x`) with weights `(OUT, IN)`: `x.len()` must be
    /// `IN` and `y.len()` must be `OUT`.
    #[inline]
    fn matvec<T: Real>(w: MatRef<'_, T>, x: &[T], y: &mut [T], acc: Accumulate) -> Result<()> {
        check_len("matvec: x", w.cols(), x.len())?;
        check_len("matvec: y", w.rows(), y.len())?;
        Self::raw_matvec(w, x, y, acc);
        Ok(())
    }

    #[doc(hidden)]
    /// `y (+)= W·x` over the common dims.
    #[inline]
    fn raw_matvec<T: Real>(w: MatRef<'_, T>, x: &[T], y: &mut [T], acc: Accumulate) {
        // yᵀ (1 × OUT) = xᵀ (1 × IN) · Wᵀ.
        Self::raw_gemm_bt(MatRef::row_vector(x), w, MatMut::row_vector(y), acc);
    }

    /// ReLU in place: `max(x, 0)`; NaN stays NaN.
    #[inline]
    fn relu<T: Real>(x: &mut [T]) {
        let zero = T::splat(T::ZERO);
        Self::raw_map(
            x,
            |v| if v < T::ZERO { T::ZERO } else { v },
            |v| T::select_lt(v, zero, zero, v),
        );
    }

    /// Logistic sigmoid in place: `1 / (1 + e^−x)`.
    #[inline]
    fn sigmoid<T: Real>(x: &mut [T]) {
        Self::raw_map(x, act::sigmoid, act::vsigmoid::<T>);
    }

    /// Hyperbolic tangent in place.
    #[inline]
    fn tanh<T: Real>(x: &mut [T]) {
        Self::raw_map(x, |v| v.tanh(), T::vtanh);
    }

    /// SiLU (swish) in place: `x · sigmoid(x)`. At `−∞` the product is
    /// `−∞·0 = NaN`, as in PyTorch (here and in both GELUs); `+∞` gives `+∞`.
    #[inline]
    fn silu<T: Real>(x: &mut [T]) {
        Self::raw_map(x, |v| v * act::sigmoid(v), |v| v * act::vsigmoid::<T>(v));
    }

    /// GELU, exact form, in place: `x/2 · (1 + erf(x/√2))` (PyTorch
    /// `approximate='none'`). NaN at `−∞` (as PyTorch); `+∞` at `+∞`, where
    /// PyTorch 2.x gives NaN.
    #[inline]
    fn gelu<T: Real>(x: &mut [T]) {
        Self::raw_map(x, act::gelu, act::vgelu::<T>);
    }

    /// GELU, tanh approximation, in place:
    /// `x/2 · (1 + tanh(√(2/π)·(x + 0.044715·x³)))` (GPT-2's `gelu_new`, PyTorch
    /// `approximate='tanh'`). Evaluated as the equal `x·σ(2u)`, which keeps full
    /// relative accuracy in the negative tail.
    #[inline]
    fn gelu_tanh<T: Real>(x: &mut [T]) {
        Self::raw_map(x, act::gelu_tanh, act::vgelu_tanh::<T>);
    }
}

/// The activation formulas, once for scalars and once for lanes.
mod act {
    use crate::real::Real;

    const SQRT_2_OVER_PI: f64 = 0.797_884_560_802_865_4;
    const GELU_CUBIC: f64 = 0.044_715;

    #[inline(always)]
    pub fn sigmoid<T: Real>(x: T) -> T {
        T::ONE / (T::ONE + (-x).exp())
    }
    #[inline(always)]
    pub fn vsigmoid<T: Real>(x: T::V) -> T::V {
        let one = T::splat(T::ONE);
        one / (one + T::vexp(-x))
    }
    #[inline(always)]
    pub fn gelu<T: Real>(x: T) -> T {
        T::HALF * x * (T::ONE + (x * T::FRAC_1_SQRT_2()).erf())
    }
    #[inline(always)]
    pub fn vgelu<T: Real>(x: T::V) -> T::V {
        let half_x = T::splat(T::HALF) * x;
        half_x + half_x * T::verf(x * T::splat(T::FRAC_1_SQRT_2()))
    }
    /// `½x·(1 + tanh u)` computed as `x·σ(2u)`: the same function, but with no
    /// cancellation between `½x` and `½x·tanh u` for negative `x`.
    #[inline(always)]
    pub fn gelu_tanh<T: Real>(x: T) -> T {
        let c = T::from_f64(2.0 * SQRT_2_OVER_PI);
        let k = T::from_f64(GELU_CUBIC);
        x * sigmoid(c * (x + k * x * x * x))
    }
    #[inline(always)]
    pub fn vgelu_tanh<T: Real>(x: T::V) -> T::V {
        let c = T::splat(T::from_f64(2.0 * SQRT_2_OVER_PI));
        let k = T::splat(T::from_f64(GELU_CUBIC));
        x * vsigmoid::<T>(c * T::fma(k * x * x, x, x))
    }
}
