//! The SIMD backend: `wide` vectors, register blocking, independent accumulators.
//!
//! On targets without a vector unit (Cortex-M, RISC-V without V) `wide` would
//! emulate the lanes with arrays; there [`Simd`] runs the [`Scalar`] kernels
//! instead (on a Cortex-M4F the emulated lanes took twice the instructions per
//! decoded token and several times the code), and the kernels below are not
//! compiled in.
#![cfg_attr(
    not(any(
        target_arch = "x86",
        target_arch = "x86_64",
        target_arch = "aarch64",
        target_feature = "simd128"
    )),
    allow(dead_code, unused_imports)
)]

use super::gemm::{self, Op};
use super::{Accumulate, Backend, Scalar, Transpose};
use crate::mat::{MatMut, MatRef};
use crate::real::Real;

/// The fast backend: `wide` vectors as wide as the build allows (see
/// [`real`](crate::real)), several independent accumulators in reductions and
/// register-blocked matrix kernels. The default wherever constml picks a backend
/// for you. On targets without a vector unit (microcontrollers) it runs the
/// [`Scalar`] kernels, which are both smaller and faster there.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Simd;

/// Independent vector accumulators in reductions (enough to hide FMA latency on
/// two FMA ports).
const ACC: usize = 8;
/// Deepest `A·B` that takes the narrow path (B at most one vector wide).
const NARROW_K: usize = 64;
/// Rows of C in flight in the narrow path (independent accumulators).
const NARROW_MR: usize = 8;
/// Rows of B held in registers by the short-depth `A·Bᵀ` path.
const ABT_NR: usize = 4;

/// 32 int8 values given as their bytes, sign-extended to `i16` lanes.
#[inline(always)]
fn widen_u8(v: [u8; 32]) -> wide::i16x32 {
    wide::i16x32::from_i8x32(wide::u8x32::new(v).cast_signed())
}

/// 32 int8 values sign-extended to `i16` lanes.
#[inline(always)]
fn widen_i8(v: [i8; 32]) -> wide::i16x32 {
    wide::i16x32::from_i8x32(wide::i8x32::new(v))
}

/// Adds the vectors pairwise down to one (a fixed tree, so the rounding does not
/// depend on how the loop above ended).
#[inline(always)]
fn fold<T: Real, const N: usize>(mut v: [T::V; N]) -> T::V {
    let mut n = N;
    while n > 1 {
        let h = n / 2;
        for i in 0..h {
            v[i] += v[i + n - h];
        }
        n -= h;
    }
    v[0]
}

/// `C (+)= op(A)·op(B)` through [`gemm`]: [`gemm_in_place`], else packed
/// with the B panel on the stack.
#[inline(always)]
fn gemm_ops<T: Real>(a: Op<'_, T>, b: Op<'_, T>, mut c: MatMut<'_, T>, acc: Accumulate) {
    if !gemm_in_place(a, b, c.reborrow(), acc) {
        packed_on_stack(a, b, c, acc);
    }
}

/// The products that need no packing, done here (returns `true`): empty
/// ones (an empty depth zeroes C when overwriting), and B read in place when
/// it is stored as is, a whole number of vectors wide, and either small (at
/// most 64 KiB: in L2 anyway) or multiplied by at most 4 rows (which read it
/// once either way: packing would only copy it).
#[inline(always)]
fn gemm_in_place<T: Real>(
    a: Op<'_, T>,
    b: Op<'_, T>,
    mut c: MatMut<'_, T>,
    acc: Accumulate,
) -> bool {
    let m = a.rows().min(c.rows());
    let n = b.cols().min(c.cols());
    let k = a.cols().min(b.rows());
    if m == 0 || n == 0 {
        return true;
    }
    if k == 0 {
        if acc == Accumulate::Overwrite {
            for i in 0..m {
                if let Some(ci) = c.row_mut_or_empty(i).get_mut(..n) {
                    ci.fill(T::ZERO);
                }
            }
        }
        return true;
    }
    let small = k * n * T::BYTES <= 64 << 10 || m <= 4;
    if !b.t && n.is_multiple_of(T::LANES) && small {
        gemm::gemm_unpacked(a, b.m, c, acc);
        return true;
    }
    false
}

/// Runs [`gemm::gemm_packed`] with its scratch on the stack: 16 KiB, 64 KiB
/// or [`gemm::SCRATCH_BYTES`] (about 128 KiB), the smallest that holds what
/// this product packs (a B panel, and an A block when A is packed), as the
/// array is zeroed on every call.
#[inline(never)]
fn packed_on_stack<T: Real>(a: Op<'_, T>, b: Op<'_, T>, c: MatMut<'_, T>, acc: Accumulate) {
    let m = a.rows().min(c.rows());
    let need = gemm::scratch_len::<T>(m, a.cols(), gemm::packs_a(&a, m)) * T::BYTES;
    // One array per size and element width (lengths are constants).
    macro_rules! run {
        ($bytes:expr) => {
            if T::BYTES == 4 {
                let mut s = [T::ZERO; $bytes / 4];
                gemm::gemm_packed(a, b, c, acc, &mut s);
            } else {
                let mut s = [T::ZERO; $bytes / 8];
                gemm::gemm_packed(a, b, c, acc, &mut s);
            }
        };
    }
    if need <= 16 << 10 {
        run!(16 << 10);
    } else if need <= 64 << 10 {
        run!(64 << 10);
    } else {
        run!(gemm::SCRATCH_BYTES);
    }
}

crate::real::with_vector_unit! {
impl Backend for Simd {
    const NAME: &'static str = "simd";

    #[inline]
    fn raw_dot<T: Real>(a: &[T], b: &[T]) -> T {
        let n = a.len().min(b.len());
        let (ab, at) = T::blocks(&a[..n]);
        let (bb, bt) = T::blocks(&b[..n]);
        let mut acc = [T::splat(T::ZERO); ACC];
        let (ac, ar) = ab.as_chunks::<ACC>();
        let (bc, br) = bb.as_chunks::<ACC>();
        for (x, y) in ac.iter().zip(bc) {
            for u in 0..ACC {
                acc[u] = T::fma(T::load(&x[u]), T::load(&y[u]), acc[u]);
            }
        }
        for (u, (x, y)) in ar.iter().zip(br).enumerate() {
            acc[u] = T::fma(T::load(x), T::load(y), acc[u]);
        }
        let mut s = T::hsum(fold::<T, ACC>(acc));
        for (&x, &y) in at.iter().zip(bt) {
            s += x * y;
        }
        s
    }

    #[inline]
    fn raw_axpy<T: Real>(alpha: T, x: &[T], y: &mut [T]) {
        let n = x.len().min(y.len());
        let (xb, xt) = T::blocks(&x[..n]);
        let (yb, yt) = T::blocks_mut(&mut y[..n]);
        let va = T::splat(alpha);
        for (xv, yv) in xb.iter().zip(yb.iter_mut()) {
            T::store(T::fma(va, T::load(xv), T::load(yv)), yv);
        }
        for (&xi, yi) in xt.iter().zip(yt) {
            *yi += alpha * xi;
        }
    }

    #[inline]
    fn raw_zip<T: Real>(y: &mut [T], x: &[T], mul: bool) {
        let n = x.len().min(y.len());
        let (xb, xt) = T::blocks(&x[..n]);
        let (yb, yt) = T::blocks_mut(&mut y[..n]);
        for (xv, yv) in xb.iter().zip(yb.iter_mut()) {
            let (p, q) = (T::load(yv), T::load(xv));
            T::store(if mul { p * q } else { p + q }, yv);
        }
        for (&xi, yi) in xt.iter().zip(yt) {
            if mul {
                *yi *= xi;
            } else {
                *yi += xi;
            }
        }
    }

    #[inline]
    fn raw_rotate_halves<T: Real>(lo: &mut [T], hi: &mut [T], cos: &[T], sin: &[T]) {
        let n = lo.len().min(hi.len()).min(cos.len()).min(sin.len());
        let (lb, lt) = T::blocks_mut(&mut lo[..n]);
        let (hb, ht) = T::blocks_mut(&mut hi[..n]);
        let (cb, ct) = T::blocks(&cos[..n]);
        let (sb, st) = T::blocks(&sin[..n]);
        for (((l, h), c), s) in lb.iter_mut().zip(hb.iter_mut()).zip(cb).zip(sb) {
            rotate_halves_block::<T>(l, h, c, s);
        }
        // The tail through the same vector formula (zero-padded), so a
        // coordinate's result does not depend on where it falls.
        let (mut l, mut h) = (pad::<T>(lt), pad::<T>(ht));
        rotate_halves_block::<T>(&mut l, &mut h, &pad::<T>(ct), &pad::<T>(st));
        lt.copy_from_slice(&l.as_ref()[..lt.len()]);
        ht.copy_from_slice(&h.as_ref()[..ht.len()]);
    }

    #[inline]
    fn raw_rotate_pairs<T: Real>(x: &mut [T], cos: &[T], sin: &[T]) {
        let n = x.len().min(cos.len()).min(sin.len()) & !1;
        // A block holds whole pairs (the lane counts are even).
        let (xb, xt) = T::blocks_mut(&mut x[..n]);
        let (cb, ct) = T::blocks(&cos[..n]);
        let (sb, st) = T::blocks(&sin[..n]);
        for ((v, c), s) in xb.iter_mut().zip(cb).zip(sb) {
            rotate_pairs_block::<T>(v, c, s);
        }
        let mut v = pad::<T>(xt);
        rotate_pairs_block::<T>(&mut v, &pad::<T>(ct), &pad::<T>(st));
        xt.copy_from_slice(&v.as_ref()[..xt.len()]);
    }

    #[inline]
    fn raw_nearest<T: Real>(m: &[T], n: usize, bias: &[T], out: &mut [usize]) {
        let lanes = T::LANES;
        // Indices travel as floats in the selects: exact below 2^24 rows.
        let fits = bias.len().checked_mul(n).is_some_and(|t| m.len() >= t);
        let whole = if bias.len() < (1 << 24) && fits {
            out.len().min(n) - out.len().min(n) % lanes
        } else {
            0
        };
        for r0 in (0..whole).step_by(lanes) {
            let mut bd = T::splat(T::INFINITY);
            let mut bi = T::splat(T::ZERO);
            for (c, &b) in bias.iter().enumerate() {
                let (blk, _) = T::blocks(&m[c * n + r0..c * n + r0 + lanes]);
                let Some(v) = blk.first() else { continue };
                let v = T::splat(b) - T::splat(T::TWO) * T::load(v);
                bi = T::select_lt(v, bd, T::splat(T::from_usize(c)), bi);
                bd = T::select_lt(v, bd, v, bd);
            }
            let mut idx = T::ZERO_BLOCK;
            T::store(bi, &mut idx);
            for (o, &i) in out[r0..r0 + lanes].iter_mut().zip(idx.as_ref()) {
                *o = i.to_usize().unwrap_or(0);
            }
        }
        // The tail (and everything, past the float-index range): the plain loop.
        Scalar::raw_nearest(m.get(whole..).unwrap_or(&[]), n, bias, &mut out[whole..]);
    }

    #[inline]
    fn raw_mul_add<T: Real>(y: &mut [T], a: &[T], b: &[T]) {
        let n = y.len().min(a.len()).min(b.len());
        let (yb, yt) = T::blocks_mut(&mut y[..n]);
        let (ab, at) = T::blocks(&a[..n]);
        let (bb, bt) = T::blocks(&b[..n]);
        for ((yv, av), bv) in yb.iter_mut().zip(ab).zip(bb) {
            T::store(T::fma(T::load(av), T::load(bv), T::load(yv)), yv);
        }
        for ((yi, &ai), &bi) in yt.iter_mut().zip(at).zip(bt) {
            *yi += ai * bi;
        }
    }

    #[inline]
    fn raw_affine<T: Real>(x: &mut [T], alpha: T, beta: T) {
        let (xb, xt) = T::blocks_mut(x);
        let (va, vb) = (T::splat(alpha), T::splat(beta));
        for v in xb {
            T::store(T::fma(T::load(v), va, vb), v);
        }
        for v in xt {
            *v = *v * alpha + beta;
        }
    }

    #[inline]
    fn raw_max<T: Real>(x: &[T]) -> (T, bool) {
        let (xb, xt) = T::blocks(x);
        let mut m = [T::splat(T::NEG_INFINITY); 2];
        let mut nan = T::splat(T::ZERO);
        let (xc, xr) = xb.as_chunks::<2>();
        for c in xc {
            let (p, q) = (T::load(&c[0]), T::load(&c[1]));
            m[0] = T::vmax(m[0], p);
            m[1] = T::vmax(m[1], q);
            nan = T::nan_mask(nan, p);
            nan = T::nan_mask(nan, q);
        }
        for c in xr {
            let p = T::load(c);
            m[0] = T::vmax(m[0], p);
            nan = T::nan_mask(nan, p);
        }
        let mut best = T::hmax(T::vmax(m[0], m[1]));
        let mut saw_nan = T::any_nan(nan);
        for &v in xt {
            if v > best {
                best = v;
            }
            saw_nan |= v.is_nan();
        }
        (best, saw_nan)
    }

    #[inline]
    fn raw_exp_sum<T: Real>(x: &mut [T], shift: T, store: bool) -> T {
        let (xb, xt) = T::blocks_mut(x);
        let vs = T::splat(shift);
        let mut acc = [T::splat(T::ZERO); 2];
        for (i, v) in xb.iter_mut().enumerate() {
            let e = T::vexp(T::load(v) - vs);
            if store {
                T::store(e, v);
            }
            acc[i & 1] += e;
        }
        let mut s = T::hsum(acc[0] + acc[1]);
        // The tail goes through the same vector exp (padded), so an element's
        // value never depends on its index.
        let e = padded_map::<T>(xt, |v| T::vexp(v - vs));
        for (x, &e) in xt.iter_mut().zip(e.as_ref()) {
            if store {
                *x = e;
            }
            s += e;
        }
        s
    }

    #[inline]
    fn raw_map<T: Real>(x: &mut [T], _f: impl Fn(T) -> T, g: impl Fn(T::V) -> T::V) {
        let (xb, xt) = T::blocks_mut(x);
        for v in xb {
            T::store(g(T::load(v)), v);
        }
        // The tail through the vector formula too (padded with zeros): one
        // formula for every element, whatever its index.
        let r = padded_map::<T>(xt, g);
        let n = xt.len();
        xt.copy_from_slice(&r.as_ref()[..n]);
    }

    #[inline]
    fn raw_i8_dot(w: &[u8], x: &[i8]) -> i32 {
        // 32 products at a time: sign-extend to i16 lanes, multiply and add
        // adjacent pairs into i32 lanes (pmaddwd on x86, smull/sadalp-like on
        // NEON). Exact: the same value as the scalar loop in any order.
        let n = w.len().min(x.len());
        let (wc, wt) = w[..n].as_chunks::<32>();
        let (xc, xt) = x[..n].as_chunks::<32>();
        let mut acc = wide::i32x16::splat(0);
        for (a, b) in wc.iter().zip(xc) {
            acc += widen_u8(*a).dot(widen_i8(*b));
        }
        acc.to_array()
            .iter()
            .fold(Scalar::raw_i8_dot(wt, xt), |s, &v| s.wrapping_add(v))
    }

    #[inline]
    fn raw_q8_dot(w: &[u8], ws: &[u8], x: &[i8], xs: &[f32], gs: usize) -> f32 {
        // 32 values per i16 multiply-add: lane l of the i32x16 holds the pair
        // (2l, 2l + 1), the trait's lane assignment. Other group sizes take
        // the portable loop, which computes the same operations.
        if gs == 0 || !gs.is_multiple_of(32) {
            return Scalar::raw_q8_dot(w, ws, x, xs, gs);
        }
        let mut acc = wide::f32x16::splat(0.0);
        let groups = w
            .chunks_exact(gs)
            .zip(x.chunks_exact(gs))
            .zip(xs)
            .zip(ws.chunks_exact(4));
        for (((wg, xg), &sx), sw) in groups {
            let (wc, _) = wg.as_chunks::<32>();
            let (xc, _) = xg.as_chunks::<32>();
            let mut p = wide::i32x16::splat(0);
            for (a, b) in wc.iter().zip(xc) {
                p += widen_u8(*a).dot(widen_i8(*b));
            }
            let sc = f32::from_le_bytes([sw[0], sw[1], sw[2], sw[3]]) * sx;
            acc += p.round_float() * wide::f32x16::splat(sc);
        }
        super::lane_tree(acc.to_array())
    }

    #[inline]
    fn raw_q8_dot4(w: [&[u8]; 4], ws: [&[u8]; 4], x: &[i8], xs: &[f32], gs: usize) -> [f32; 4] {
        let n = x.len();
        if gs == 0
            || !gs.is_multiple_of(32)
            || w.iter().any(|r| r.len() != n)
            || xs.len() < n / gs
            || ws.iter().any(|s| s.len() < 4 * (n / gs))
        {
            return core::array::from_fn(|i| Self::raw_q8_dot(w[i], ws[i], x, xs, gs));
        }
        // Each row's lanes accumulate exactly as in `raw_q8_dot`.
        let mut acc = [wide::f32x16::splat(0.0); 4];
        for (g, xg) in x.chunks_exact(gs).enumerate() {
            let mut p = [wide::i32x16::splat(0); 4];
            for (c, b) in xg.as_chunks::<32>().0.iter().enumerate() {
                let xb = widen_i8(*b);
                let at = g * gs + 32 * c;
                for (pi, r) in p.iter_mut().zip(&w) {
                    let a: &[u8; 32] = r[at..at + 32].try_into().unwrap_or(&[0; 32]);
                    *pi += widen_u8(*a).dot(xb);
                }
            }
            for ((a, pi), s) in acc.iter_mut().zip(&p).zip(&ws) {
                *a += pi.round_float() * wide::f32x16::splat(super::q8_scale(s, g) * xs[g]);
            }
        }
        acc.map(|a| super::lane_tree(a.to_array()))
    }

    #[inline]
    fn sum<T: Real>(x: &[T]) -> T {
        let (xb, xt) = T::blocks(x);
        let mut acc = [T::splat(T::ZERO); 4];
        let (xc, xr) = xb.as_chunks::<4>();
        for c in xc {
            for u in 0..4 {
                acc[u] += T::load(&c[u]);
            }
        }
        for (u, c) in xr.iter().enumerate() {
            acc[u] += T::load(c);
        }
        let mut s = T::hsum(fold::<T, 4>(acc));
        for &v in xt {
            s += v;
        }
        s
    }

    fn raw_gemm_at<T: Real>(a: MatRef<'_, T>, b: MatRef<'_, T>, c: MatMut<'_, T>, acc: Accumulate) {
        gemm_ops(Op { m: a, t: true }, Op { m: b, t: false }, c, acc);
    }

    fn raw_gemm_op<T: Real>(
        a: MatRef<'_, T>,
        ta: Transpose,
        b: MatRef<'_, T>,
        tb: Transpose,
        mut c: MatMut<'_, T>,
        acc: Accumulate,
        scratch: &mut [T],
    ) {
        let a = Op { m: a, t: ta == Transpose::Transposed };
        let b = Op { m: b, t: tb == Transpose::Transposed };
        if !gemm_in_place(a, b, c.reborrow(), acc) {
            gemm::gemm_packed(a, b, c, acc, scratch);
        }
    }

    fn raw_gemm<T: Real>(a: MatRef<'_, T>, b: MatRef<'_, T>, mut c: MatMut<'_, T>, acc: Accumulate) {
        let m = a.rows().min(c.rows());
        let n = b.cols().min(c.cols());
        let k = a.cols().min(b.rows());
        if m > 0 && n > 0 && k > 0 && n < T::LANES && k <= NARROW_K {
            gemm_narrow::<T>(&a, &b, &mut c, m, n, k, acc);
            return;
        }
        gemm_ops(Op { m: a, t: false }, Op { m: b, t: false }, c, acc);
    }

    fn raw_gemm_bt<T: Real>(
        a: MatRef<'_, T>,
        b: MatRef<'_, T>,
        mut c: MatMut<'_, T>,
        acc: Accumulate,
    ) {
        let m = a.rows().min(c.rows());
        let n = b.rows().min(c.cols());
        let k = a.cols().min(b.cols());
        let add = acc == Accumulate::Add;
        if m == 0 || n == 0 {
            return;
        }
        if m == 1 && k > 4 * T::LANES {
            // A long row against many rows of B (a decode step's weight
            // matrices): four rows of B at a time, four independent FMA chains.
            let mut j0 = 0;
            while j0 + 4 <= n {
                abt_tile::<T, 1, 4>(&a, &b, &mut c, 0, j0, k, add);
                j0 += 4;
            }
            while j0 < n {
                abt_tile::<T, 1, 1>(&a, &b, &mut c, 0, j0, k, add);
                j0 += 1;
            }
            return;
        }
        if m == 1 {
            // One row (a decode step's scores, a matrix-vector product): no tiles.
            let arow = a.row_or_empty(0).get(..k).unwrap_or(&[]);
            let crow = c.row_mut_or_empty(0).get_mut(..n).unwrap_or(&mut []);
            abt_one_row(arow, &b, crow, add);
            return;
        }
        // Short rows of whole vectors (attention heads of 16–64 at 16 lanes): keep
        // four rows of B in registers and stream the rows of A past them.
        if k.is_multiple_of(T::LANES) && m <= 4 {
            match k / T::LANES {
                1 => return abt_short::<T, 1>(&a, &b, &mut c, m, n, add),
                2 => return abt_short::<T, 2>(&a, &b, &mut c, m, n, add),
                3 => return abt_short::<T, 3>(&a, &b, &mut c, m, n, add),
                4 => return abt_short::<T, 4>(&a, &b, &mut c, m, n, add),
                _ => {}
            }
        }
        gemm_ops(Op { m: a, t: false }, Op { m: b, t: true }, c, acc);
    }
}
}

crate::real::without_vector_unit! {
    impl Backend for Simd {
        const NAME: &'static str = "simd";

        #[inline]
        fn raw_dot<T: Real>(a: &[T], b: &[T]) -> T {
            Scalar::raw_dot(a, b)
        }
        #[inline]
        fn raw_axpy<T: Real>(alpha: T, x: &[T], y: &mut [T]) {
            Scalar::raw_axpy(alpha, x, y)
        }
        #[inline]
        fn raw_rotate_halves<T: Real>(lo: &mut [T], hi: &mut [T], cos: &[T], sin: &[T]) {
            Scalar::raw_rotate_halves(lo, hi, cos, sin)
        }
        #[inline]
        fn raw_rotate_pairs<T: Real>(x: &mut [T], cos: &[T], sin: &[T]) {
            Scalar::raw_rotate_pairs(x, cos, sin)
        }
        #[inline]
        fn raw_zip<T: Real>(y: &mut [T], x: &[T], mul: bool) {
            Scalar::raw_zip(y, x, mul)
        }
        #[inline]
        fn raw_nearest<T: Real>(m: &[T], n: usize, bias: &[T], out: &mut [usize]) {
            Scalar::raw_nearest(m, n, bias, out)
        }
        #[inline]
        fn raw_mul_add<T: Real>(y: &mut [T], a: &[T], b: &[T]) {
            Scalar::raw_mul_add(y, a, b)
        }
        #[inline]
        fn raw_affine<T: Real>(x: &mut [T], alpha: T, beta: T) {
            Scalar::raw_affine(x, alpha, beta)
        }
        #[inline]
        fn raw_max<T: Real>(x: &[T]) -> (T, bool) {
            Scalar::raw_max(x)
        }
        #[inline]
        fn raw_exp_sum<T: Real>(x: &mut [T], shift: T, store: bool) -> T {
            Scalar::raw_exp_sum(x, shift, store)
        }
        #[inline]
        fn raw_map<T: Real>(x: &mut [T], f: impl Fn(T) -> T, g: impl Fn(T::V) -> T::V) {
            Scalar::raw_map(x, f, g)
        }
        #[inline]
        fn sum<T: Real>(x: &[T]) -> T {
            Scalar::sum(x)
        }
        #[inline]
        fn raw_i8_dot(w: &[u8], x: &[i8]) -> i32 {
            Scalar::raw_i8_dot(w, x)
        }
        #[inline]
        fn raw_q8_dot(w: &[u8], ws: &[u8], x: &[i8], xs: &[f32], gs: usize) -> f32 {
            Scalar::raw_q8_dot(w, ws, x, xs, gs)
        }
        #[inline]
        fn raw_q8_dot4(
            w: [&[u8]; 4],
            ws: [&[u8]; 4],
            x: &[i8],
            xs: &[f32],
            gs: usize,
        ) -> [f32; 4] {
            Scalar::raw_q8_dot4(w, ws, x, xs, gs)
        }
        #[inline]
        fn raw_gemm<T: Real>(a: MatRef<'_, T>, b: MatRef<'_, T>, c: MatMut<'_, T>, acc: Accumulate) {
            Scalar::raw_gemm(a, b, c, acc)
        }
        #[inline]
        fn raw_gemm_at<T: Real>(a: MatRef<'_, T>, b: MatRef<'_, T>, c: MatMut<'_, T>, acc: Accumulate) {
            Scalar::raw_gemm_at(a, b, c, acc)
        }
        #[inline]
        fn raw_gemm_bt<T: Real>(a: MatRef<'_, T>, b: MatRef<'_, T>, c: MatMut<'_, T>, acc: Accumulate) {
            Scalar::raw_gemm_bt(a, b, c, acc)
        }
        #[allow(clippy::too_many_arguments)]
        fn raw_gemm_op<T: Real>(
            a: MatRef<'_, T>,
            ta: Transpose,
            b: MatRef<'_, T>,
            tb: Transpose,
            c: MatMut<'_, T>,
            acc: Accumulate,
            scratch: &mut [T],
        ) {
            Scalar::raw_gemm_op(a, ta, b, tb, c, acc, scratch)
        }
    }
}

/// `c[j] (+)= a · B[j, :a.len()]` for every row `j` of B: one dot product per row
/// with two accumulators, walking B's rows without per-row index arithmetic.
#[inline(always)]
fn abt_one_row<T: Real>(a: &[T], b: &MatRef<'_, T>, c: &mut [T], add: bool) {
    // Short rows of whole vectors (attention heads of 16–64 at 16 lanes): keep `a`
    // in registers and do one load and one FMA per vector of each B row.
    if a.len().is_multiple_of(T::LANES) {
        match a.len() / T::LANES {
            1 => return abt_one_row_short::<T, 1>(a, b, c, add),
            2 => return abt_one_row_short::<T, 2>(a, b, c, add),
            3 => return abt_one_row_short::<T, 3>(a, b, c, add),
            4 => return abt_one_row_short::<T, 4>(a, b, c, add),
            _ => {}
        }
    }
    let k = a.len();
    let (ab, at) = T::blocks(a);
    let zero = T::splat(T::ZERO);
    // With zero columns a view may hold no data at all, so run out of rows
    // gracefully: every output is still written.
    let mut rows = b.padded_rows();
    for cj in c.iter_mut() {
        let brow = rows.next().unwrap_or(&[]);
        let (bb, bt) = T::blocks(brow.get(..k).unwrap_or(&[]));
        let mut acc = [zero; 2];
        let (ap, ar) = ab.as_chunks::<2>();
        let (bp, br) = bb.as_chunks::<2>();
        for (x, y) in ap.iter().zip(bp) {
            acc[0] = T::fma(T::load(&x[0]), T::load(&y[0]), acc[0]);
            acc[1] = T::fma(T::load(&x[1]), T::load(&y[1]), acc[1]);
        }
        for (x, y) in ar.iter().zip(br) {
            acc[0] = T::fma(T::load(x), T::load(y), acc[0]);
        }
        let mut v = T::hsum(acc[0] + acc[1]);
        for (&x, &y) in at.iter().zip(bt) {
            v += x * y;
        }
        *cj = if add { *cj + v } else { v };
    }
}

/// [`abt_one_row`] for `a` of exactly `NB` whole vectors.
#[inline(always)]
fn abt_one_row_short<T: Real, const NB: usize>(a: &[T], b: &MatRef<'_, T>, c: &mut [T], add: bool) {
    let Some(ab) = T::blocks(a).0.first_chunk::<NB>() else {
        return;
    };
    let av: [T::V; NB] = core::array::from_fn(|q| T::load(&ab[q]));
    let zero = T::splat(T::ZERO);
    let mut rows = b.padded_rows();
    for cj in c.iter_mut() {
        let brow = rows.next().unwrap_or(&[]);
        let v = match T::blocks(brow).0.first_chunk::<NB>() {
            Some(bb) => {
                let mut acc = zero;
                for q in 0..NB {
                    acc = T::fma(av[q], T::load(&bb[q]), acc);
                }
                T::hsum(acc)
            }
            // Only an empty view (k = 0 is not a short row) can end early.
            None => T::ZERO,
        };
        *cj = if add { *cj + v } else { v };
    }
}

/// `C (+)= A·Bᵀ` when the depth is exactly `NB` whole vectors: blocks of
/// [`ABT_NR`] rows of B stay in registers while every row of A streams past.
#[inline(always)]
fn abt_short<T: Real, const NB: usize>(
    a: &MatRef<'_, T>,
    b: &MatRef<'_, T>,
    c: &mut MatMut<'_, T>,
    m: usize,
    n: usize,
    add: bool,
) {
    let mut j0 = 0;
    while j0 + ABT_NR <= n {
        abt_short_block::<T, NB, ABT_NR>(a, b, c, m, j0, add);
        j0 += ABT_NR;
    }
    while j0 < n {
        abt_short_block::<T, NB, 1>(a, b, c, m, j0, add);
        j0 += 1;
    }
}

/// The first `NB` vectors of `row`, or zeros if it is shorter (an empty view).
#[inline(always)]
fn load_vectors<T: Real, const NB: usize>(row: &[T]) -> [T::V; NB] {
    match T::blocks(row).0.first_chunk::<NB>() {
        Some(b) => core::array::from_fn(|q| T::load(&b[q])),
        None => [T::splat(T::ZERO); NB],
    }
}

/// Columns `j0 .. j0 + NR` of C for every row, depth `NB` vectors.
#[inline(always)]
fn abt_short_block<T: Real, const NB: usize, const NR: usize>(
    a: &MatRef<'_, T>,
    b: &MatRef<'_, T>,
    c: &mut MatMut<'_, T>,
    m: usize,
    j0: usize,
    add: bool,
) {
    let zero = T::splat(T::ZERO);
    let bv: [[T::V; NB]; NR] = core::array::from_fn(|s| load_vectors(b.row_or_empty(j0 + s)));
    let mut rows = a.padded_rows();
    for i in 0..m {
        let arow = rows.next().unwrap_or(&[]);
        let av: [T::V; NB] = load_vectors(arow);
        let Some(crow) = c
            .row_mut_or_empty(i)
            .get_mut(j0..)
            .and_then(|x| x.get_mut(..NR))
        else {
            return;
        };
        for (s, cij) in crow.iter_mut().enumerate() {
            let mut acc = zero;
            for q in 0..NB {
                acc = T::fma(av[q], bv[s][q], acc);
            }
            let v = T::hsum(acc);
            *cij = if add { *cij + v } else { v };
        }
    }
}

/// `C[i0..i0+MR, j0..j0+NR] (+)= A[i0.., :k] · B[j0.., :k]ᵀ`: `MR·NR` dot products
/// at once, each in its own vector accumulator, reduced across lanes at the end.
#[inline(always)]
fn abt_tile<T: Real, const MR: usize, const NR: usize>(
    a: &MatRef<'_, T>,
    b: &MatRef<'_, T>,
    c: &mut MatMut<'_, T>,
    i0: usize,
    j0: usize,
    k: usize,
    add: bool,
) {
    let nb = k / T::LANES;
    let split = nb * T::LANES;
    let arow: [&[T]; MR] = core::array::from_fn(|r| a.row_or_empty(i0 + r).get(..k).unwrap_or(&[]));
    let brow: [&[T]; NR] = core::array::from_fn(|s| b.row_or_empty(j0 + s).get(..k).unwrap_or(&[]));
    let ab: [&[T::Block]; MR] =
        core::array::from_fn(|r| T::blocks(arow[r]).0.get(..nb).unwrap_or(&[]));
    let bb: [&[T::Block]; NR] =
        core::array::from_fn(|s| T::blocks(brow[s]).0.get(..nb).unwrap_or(&[]));
    // All rows hold `nb` blocks (views are valid); cutting them to the common
    // length lets the compiler prove the indexing below in bounds.
    let nb = ab.iter().chain(bb.iter()).fold(nb, |n, x| n.min(x.len()));
    let ab: [&[T::Block]; MR] = core::array::from_fn(|r| &ab[r][..nb]);
    let bb: [&[T::Block]; NR] = core::array::from_fn(|s| &bb[s][..nb]);
    let zero = T::splat(T::ZERO);
    let mut acc = [[zero; NR]; MR];
    for q in 0..nb {
        let bv: [T::V; NR] = core::array::from_fn(|s| T::load(&bb[s][q]));
        for r in 0..MR {
            let av = T::load(&ab[r][q]);
            for s in 0..NR {
                acc[r][s] = T::fma(av, bv[s], acc[r][s]);
            }
        }
    }
    for r in 0..MR {
        let at = arow[r].get(split..).unwrap_or(&[]);
        let Some(crow) = c
            .row_mut_or_empty(i0 + r)
            .get_mut(j0..)
            .and_then(|x| x.get_mut(..NR))
        else {
            return;
        };
        for s in 0..NR {
            let mut v = T::hsum(acc[r][s]);
            let bt = brow[s].get(split..).unwrap_or(&[]);
            for (&x, &y) in at.iter().zip(bt) {
                v += x * y;
            }
            crow[s] = if add { crow[s] + v } else { v };
        }
    }
}

/// `g` applied to a tail shorter than a vector, padded with zeros into a whole
/// block; the first `tail.len()` lanes of the result are the tail's values.
#[inline(always)]
fn padded_map<T: Real>(tail: &[T], g: impl Fn(T::V) -> T::V) -> T::Block {
    let mut blk = T::ZERO_BLOCK;
    if !tail.is_empty() {
        let n = tail.len().min(T::LANES);
        blk.as_mut()[..n].copy_from_slice(&tail[..n]);
        let r = g(T::load(&blk));
        T::store(r, &mut blk);
    }
    blk
}

/// A block holding `tail` (shorter than a block) followed by zeros.
#[inline(always)]
fn pad<T: Real>(tail: &[T]) -> T::Block {
    let mut b = T::ZERO_BLOCK;
    b.as_mut()[..tail.len()].copy_from_slice(tail);
    b
}

/// One block of RoPE's half-split rotation: `(l, h) ← (l·c − h·s, h·c + l·s)`,
/// each as `x·c` rounded, then the partner's sine term fused in (the same
/// operations as [`rotate_pairs_block`], so both layouts give equal bits).
#[inline(always)]
fn rotate_halves_block<T: Real>(l: &mut T::Block, h: &mut T::Block, c: &T::Block, s: &T::Block) {
    let (x, y, vc, vs) = (T::load(l), T::load(h), T::load(c), T::load(s));
    T::store(T::fma(-y, vs, x * vc), l);
    T::store(T::fma(x, vs, y * vc), h);
}

/// One block of RoPE's interleaved rotation: pairs `(v[2i], v[2i+1])` with
/// `c[2i]`, `s[2i]`.
#[inline(always)]
fn rotate_pairs_block<T: Real>(v: &mut T::Block, c: &T::Block, s: &T::Block) {
    // Each lane's partner, x[i ^ 1] (a lane shuffle), and the sine with the
    // sign of its term: −s on the even lanes, +s on the odd ones.
    let mut partner = *v;
    let mut signed = *s;
    for (i, (p, q)) in partner.as_mut().iter_mut().zip(signed.as_mut()).enumerate() {
        *p = v.as_ref()[i ^ 1];
        if i & 1 == 0 {
            *q = -*q;
        }
    }
    let out = T::fma(T::load(&partner), T::load(&signed), T::load(v) * T::load(c));
    T::store(out, v);
}

/// `C (+)= A·B` for a B at most one vector wide (`n ≤ LANES`) and at most
/// [`NARROW_K`] deep — e.g. points times transposed k-means centres. B's rows
/// are padded into whole vectors on the stack once; each row of C is then
/// `k` broadcast multiply-adds into one vector, [`NARROW_MR`] rows at a time
/// so that the multiply-add chains overlap.
#[allow(clippy::too_many_arguments)]
fn gemm_narrow<T: Real>(
    a: &MatRef<'_, T>,
    b: &MatRef<'_, T>,
    c: &mut MatMut<'_, T>,
    m: usize,
    n: usize,
    k: usize,
    acc: Accumulate,
) {
    let mut bp = [T::ZERO_BLOCK; NARROW_K];
    for (p, blk) in bp.iter_mut().take(k).enumerate() {
        if let Some(row) = b.row_or_empty(p).get(..n) {
            blk.as_mut()[..n].copy_from_slice(row);
        }
    }
    let bp = &bp[..k];
    let store = |c: &mut MatMut<'_, T>, i: usize, v: T::V| {
        let mut out = T::ZERO_BLOCK;
        T::store(v, &mut out);
        let ci = c.row_mut_or_empty(i);
        let ci = ci.get_mut(..n).unwrap_or(&mut []);
        match acc {
            Accumulate::Overwrite => {
                for (x, &o) in ci.iter_mut().zip(out.as_ref()) {
                    *x = o;
                }
            }
            Accumulate::Add => {
                for (x, &o) in ci.iter_mut().zip(out.as_ref()) {
                    *x += o;
                }
            }
        }
    };
    let mut i0 = 0;
    // Whole groups: a fixed trip count, so the accumulators stay in registers.
    while i0 + NARROW_MR <= m {
        let ar: [&[T]; NARROW_MR] =
            core::array::from_fn(|r| a.row_or_empty(i0 + r).get(..k).unwrap_or(&[]));
        if ar.iter().any(|r| r.len() < k) {
            return;
        }
        let mut v = [T::splat(T::ZERO); NARROW_MR];
        for (p, blk) in bp.iter().enumerate() {
            let bv = T::load(blk);
            for r in 0..NARROW_MR {
                v[r] = T::fma(T::splat(ar[r][p]), bv, v[r]);
            }
        }
        for (r, &vr) in v.iter().enumerate() {
            store(c, i0 + r, vr);
        }
        i0 += NARROW_MR;
    }
    // The last rows one at a time.
    for i in i0..m {
        let ai = a.row_or_empty(i);
        let mut v = T::splat(T::ZERO);
        for (blk, &x) in bp.iter().zip(ai) {
            v = T::fma(T::splat(x), T::load(blk), v);
        }
        store(c, i, v);
    }
}
