//! The scalar reference backend: the plainest correct loops.

use super::{Accumulate, Backend, Transpose};
use crate::mat::{MatMut, MatRef};
use crate::real::Real;

/// The reference backend: straightforward loops with one accumulator per output
/// and no manual unrolling. Readable, portable, and the oracle that [`Simd`]
/// is tested against.
///
/// [`Simd`]: crate::Simd
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Scalar;

impl Backend for Scalar {
    const NAME: &'static str = "scalar";

    fn raw_dot<T: Real>(a: &[T], b: &[T]) -> T {
        let mut s = T::ZERO;
        for (&x, &y) in a.iter().zip(b) {
            s += x * y;
        }
        s
    }

    fn raw_axpy<T: Real>(alpha: T, x: &[T], y: &mut [T]) {
        for (yi, &xi) in y.iter_mut().zip(x) {
            *yi += alpha * xi;
        }
    }

    fn raw_rotate_halves<T: Real>(lo: &mut [T], hi: &mut [T], cos: &[T], sin: &[T]) {
        for (((a, b), &c), &s) in lo.iter_mut().zip(hi.iter_mut()).zip(cos).zip(sin) {
            let (x, y) = (*a, *b);
            *a = x * c - y * s;
            *b = y * c + x * s;
        }
    }

    fn raw_rotate_pairs<T: Real>(x: &mut [T], cos: &[T], sin: &[T]) {
        let pairs = x.chunks_exact_mut(2);
        for ((p, c), s) in pairs.zip(cos.chunks_exact(2)).zip(sin.chunks_exact(2)) {
            let (a, b, c, s) = (p[0], p[1], c[0], s[0]);
            p[0] = a * c - b * s;
            p[1] = b * c + a * s;
        }
    }

    fn raw_zip<T: Real>(y: &mut [T], x: &[T], mul: bool) {
        for (yi, &xi) in y.iter_mut().zip(x) {
            if mul {
                *yi *= xi;
            } else {
                *yi += xi;
            }
        }
    }

    fn raw_nearest<T: Real>(m: &[T], n: usize, bias: &[T], out: &mut [usize]) {
        for (r, o) in out.iter_mut().enumerate() {
            let mut best = 0;
            let mut bd = T::INFINITY;
            for (c, &b) in bias.iter().enumerate() {
                let at = c.checked_mul(n).and_then(|o| o.checked_add(r));
                let v = b - T::TWO
                    * at.and_then(|i| m.get(i))
                        .copied()
                        .unwrap_or(T::NEG_INFINITY);
                if v < bd {
                    bd = v;
                    best = c;
                }
            }
            *o = best;
        }
    }

    fn raw_mul_add<T: Real>(y: &mut [T], a: &[T], b: &[T]) {
        for ((yi, &ai), &bi) in y.iter_mut().zip(a).zip(b) {
            *yi += ai * bi;
        }
    }

    fn raw_affine<T: Real>(x: &mut [T], alpha: T, beta: T) {
        for v in x {
            *v = *v * alpha + beta;
        }
    }

    fn raw_max<T: Real>(x: &[T]) -> (T, bool) {
        let mut m = T::NEG_INFINITY;
        let mut nan = false;
        for &v in x {
            if v > m {
                m = v;
            }
            nan |= v.is_nan();
        }
        (m, nan)
    }

    fn raw_exp_sum<T: Real>(x: &mut [T], shift: T, store: bool) -> T {
        let mut s = T::ZERO;
        for v in x {
            let e = (*v - shift).exp();
            if store {
                *v = e;
            }
            s += e;
        }
        s
    }

    fn raw_map<T: Real>(x: &mut [T], f: impl Fn(T) -> T, _g: impl Fn(T::V) -> T::V) {
        for v in x {
            *v = f(*v);
        }
    }

    fn sum<T: Real>(x: &[T]) -> T {
        let mut s = T::ZERO;
        for &v in x {
            s += v;
        }
        s
    }

    /// i-k-j order: for each row of A, each of its elements scales one row of
    /// B into a strip of C's row — unit-stride inner loops over B, as a careful
    /// engineer writes a plain matrix product. The strip (64 columns, on the
    /// stack) holds the product until it is stored or added, so `C += A·B` adds
    /// the finished product, as the checked method promises.
    fn raw_gemm<T: Real>(
        a: MatRef<'_, T>,
        b: MatRef<'_, T>,
        mut c: MatMut<'_, T>,
        acc: Accumulate,
    ) {
        const STRIP: usize = 64;
        let m = a.rows().min(c.rows());
        let n = b.cols().min(c.cols());
        let k = a.cols().min(b.rows());
        if m == 0 || n == 0 {
            return;
        }
        for i in 0..m {
            let ai = a.row_or_empty(i);
            let mut j0 = 0;
            while j0 < n {
                let w = (n - j0).min(STRIP);
                let mut strip = [T::ZERO; STRIP];
                let t = &mut strip[..w];
                for (p, &aip) in ai.iter().enumerate().take(k) {
                    let bp = b.row_or_empty(p).get(j0..j0 + w).unwrap_or(&[]);
                    for (tj, &bpj) in t.iter_mut().zip(bp) {
                        *tj += aip * bpj;
                    }
                }
                let ci = c.row_mut_or_empty(i).get_mut(j0..j0 + w).unwrap_or(&mut []);
                for (cij, &tj) in ci.iter_mut().zip(t.iter()) {
                    *cij = match acc {
                        Accumulate::Overwrite => tj,
                        Accumulate::Add => *cij + tj,
                    };
                }
                j0 += w;
            }
        }
    }

    fn raw_gemm_at<T: Real>(
        a: MatRef<'_, T>,
        b: MatRef<'_, T>,
        mut c: MatMut<'_, T>,
        acc: Accumulate,
    ) {
        // C row i accumulates Σ_p a[p][i]·b[p] (unit-stride rows of B and C).
        let m = a.cols().min(c.rows());
        let n = b.cols().min(c.cols());
        let k = a.rows().min(b.rows());
        if n == 0 {
            return;
        }
        for i in 0..m {
            let ci = c.row_mut_or_empty(i).get_mut(..n).unwrap_or(&mut []);
            if acc == Accumulate::Overwrite {
                ci.fill(T::ZERO);
            }
            for p in 0..k {
                let api = a.row_or_empty(p).get(i).copied().unwrap_or(T::ZERO);
                for (cij, &bpj) in ci.iter_mut().zip(b.row_or_empty(p)) {
                    *cij += api * bpj;
                }
            }
        }
    }

    fn raw_gemm_bt<T: Real>(
        a: MatRef<'_, T>,
        b: MatRef<'_, T>,
        mut c: MatMut<'_, T>,
        acc: Accumulate,
    ) {
        let m = a.rows().min(c.rows());
        if m == 0 || c.cols() == 0 || b.rows() == 0 {
            return;
        }
        for i in 0..m {
            let ai = a.row_or_empty(i);
            let ci = c.row_mut_or_empty(i);
            for (j, cij) in ci.iter_mut().enumerate().take(b.rows()) {
                let s = Self::raw_dot(ai, b.row_or_empty(j));
                *cij = match acc {
                    Accumulate::Overwrite => s,
                    Accumulate::Add => *cij + s,
                };
            }
        }
    }

    fn raw_gemm_op<T: Real>(
        a: MatRef<'_, T>,
        ta: Transpose,
        b: MatRef<'_, T>,
        tb: Transpose,
        mut c: MatMut<'_, T>,
        acc: Accumulate,
        _scratch: &mut [T],
    ) {
        match (ta, tb) {
            (Transpose::AsStored, Transpose::AsStored) => Self::raw_gemm(a, b, c, acc),
            (Transpose::AsStored, Transpose::Transposed) => Self::raw_gemm_bt(a, b, c, acc),
            (Transpose::Transposed, Transpose::AsStored) => Self::raw_gemm_at(a, b, c, acc),
            (Transpose::Transposed, Transpose::Transposed) => {
                // C[i][j] = Σ_p A[p][i]·B[j][p]: one dot product per output.
                let (m, n) = (a.cols().min(c.rows()), b.rows().min(c.cols()));
                let k = a.rows().min(b.cols());
                for i in 0..m {
                    let ci = c.row_mut_or_empty(i);
                    for (j, cij) in ci.iter_mut().enumerate().take(n) {
                        let bj = b.row_or_empty(j);
                        let mut s = T::ZERO;
                        for (p, &bjp) in bj.iter().enumerate().take(k) {
                            s += a.row_or_empty(p).get(i).copied().unwrap_or(T::ZERO) * bjp;
                        }
                        *cij = match acc {
                            Accumulate::Overwrite => s,
                            Accumulate::Add => *cij + s,
                        };
                    }
                }
            }
        }
    }
}
