//! Fixed-width vectors for the reproducible sampling path.
//!
//! The sampling path must give the same bits on every build, so it never uses the
//! build-dependent [`Real::V`](crate::Real) lanes. It uses `wide::f32x16` for
//! `f32` and `wide::f64x8` for `f64` instead: those types have the same lane count
//! on every target (AVX-512 runs them in one register, AVX2 in two, SSE2 and NEON
//! in four, microcontrollers as plain arrays), and every operation used here — IEEE
//! add, sub, mul, div, comparisons, selects by bit masks, integer operations on
//! the bits — is correctly rounded or exact lane by lane. So a kernel written
//! against [`Wide`] computes the same bits everywhere; in particular the order of
//! every sum is fixed by the lane count `K` ([`Wide::K`]), not by the hardware.
//!
//! The algorithms are generic over `T: Real` and `W: Wide<T>`; the entry points
//! pick `W` from `T` with [`with_wide!`] (`f32x16` for 4-byte `T`, `f64x8`
//! otherwise — `Real` is sealed to `f32` and `f64`). The conversions between `T`
//! and the lane type are `f32 → f64 → f32` or `f64 → f64` round trips: exact, and
//! they compile away.

use core::ops::{Add, BitAnd, BitOr, Div, Mul, Sub};

use wide::{f32x16, f64x8};

use super::repro::exp_lanes;
use crate::real::Real;

/// A vector of [`Wide::K`] lanes of the element type `T`, with the exact
/// operations the reproducible sampling path is built from.
///
/// Masks (results of comparisons) are vectors of the same type whose lanes are
/// all-ones (true) or all-zeros (false); `&` with a mask keeps a value's lanes or
/// zeroes them.
pub(crate) trait Wide<T: Real>:
    Copy
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + BitAnd<Output = Self>
    + BitOr<Output = Self>
{
    /// The lane count: 16 for `f32`, 8 for `f64`, on every target.
    const K: usize;
    /// `[T; K]`.
    type Chunk: Copy + AsRef<[T]> + AsMut<[T]>;

    /// Splits a slice into whole chunks and a tail shorter than `K`.
    fn split(s: &[T]) -> (&[Self::Chunk], &[T]);
    /// Splits a mutable slice into whole chunks and a tail shorter than `K`.
    fn split_mut(s: &mut [T]) -> (&mut [Self::Chunk], &mut [T]);
    /// Every lane `x`.
    fn splat(x: T) -> Self;
    /// An array with every element `x`.
    fn chunk_of(x: T) -> Self::Chunk;
    /// Loads a chunk.
    fn load(c: &Self::Chunk) -> Self;
    /// The lanes as an array of `T`.
    fn lanes(self) -> Self::Chunk;
    /// Lane-wise `self > o` (false for NaN).
    fn gt(self, o: Self) -> Self;
    /// Lane-wise `self >= o` (false for NaN).
    fn ge(self, o: Self) -> Self;
    /// Lane-wise `self == o` (false for NaN; `+0 == −0`).
    fn eq(self, o: Self) -> Self;
    /// Lane-wise `self != o` (true for NaN).
    fn ne(self, o: Self) -> Self;
    /// Lane-wise `if m { a } else { b }` for a mask `m`.
    fn select(m: Self, a: Self, b: Self) -> Self;
    /// Bit `j` set iff lane `j` of the mask `m` is true.
    fn bits(m: Self) -> u32;
    /// Lane-wise [`repro_exp`](super::repro_exp): the same operations in the same
    /// order, so the same bits as the scalar function.
    fn exp(self) -> Self;

    /// Stores a chunk.
    #[inline(always)]
    fn store(self, c: &mut Self::Chunk) {
        *c = self.lanes();
    }

    /// The reproducible sum of the lanes: a halving tree. With `h = K/2, K/4, …,
    /// 1`, lane `j < h` becomes `lane j + lane (j + h)`; the result is lane 0.
    #[inline(always)]
    fn tree(self) -> T {
        let mut a = self.lanes();
        let s = a.as_mut();
        let mut n = s.len();
        while n > 1 {
            let h = n / 2;
            let (lo, hi) = s.split_at_mut(h);
            for (x, &y) in lo.iter_mut().zip(hi.iter()) {
                *x += y;
            }
            n = h;
        }
        s.first().copied().unwrap_or(T::ZERO)
    }

    /// The largest lane (NaN lanes never win; `−∞` if every lane is NaN or `−∞`).
    #[inline(always)]
    fn max_lane(self) -> T {
        let mut m = T::NEG_INFINITY;
        for &x in self.lanes().as_ref() {
            if x > m {
                m = x;
            }
        }
        m
    }

    /// A mask from a lane predicate.
    #[inline(always)]
    fn mask_from(f: impl Fn(usize) -> bool) -> Self {
        let mut c = Self::chunk_of(T::ZERO);
        for (j, x) in c.as_mut().iter_mut().enumerate() {
            if f(j) {
                *x = T::ONE;
            }
        }
        Self::load(&c).gt(Self::splat(T::ZERO))
    }
}

/// Calls `$f::<T, W>(args)` with `W` the lane type of `T` ([`F32Lanes`] for
/// `f32`, [`F64Lanes`] for `f64`). The test is on a constant, so only one arm
/// survives.
macro_rules! with_wide {
    ($t:ty, $f:ident ( $($a:expr),* $(,)? )) => {
        if <$t as $crate::real::Real>::BYTES == 4 {
            $f::<$t, $crate::decode::lanes::F32Lanes>($($a),*)
        } else {
            $f::<$t, $crate::decode::lanes::F64Lanes>($($a),*)
        }
    };
}
pub(crate) use with_wide;

macro_rules! impl_wide {
    ($w:ty, $e:ty, $k:expr) => {
        impl<T: Real> Wide<T> for $w {
            const K: usize = $k;
            type Chunk = [T; $k];

            #[inline(always)]
            fn split(s: &[T]) -> (&[[T; $k]], &[T]) {
                s.as_chunks::<$k>()
            }
            #[inline(always)]
            fn split_mut(s: &mut [T]) -> (&mut [[T; $k]], &mut [T]) {
                s.as_chunks_mut::<$k>()
            }
            #[inline(always)]
            fn splat(x: T) -> Self {
                <$w>::splat(x.as_f64() as $e)
            }
            #[inline(always)]
            fn chunk_of(x: T) -> [T; $k] {
                [x; $k]
            }
            #[inline(always)]
            fn load(c: &[T; $k]) -> Self {
                <$w>::new(c.map(|x| x.as_f64() as $e))
            }
            #[inline(always)]
            fn lanes(self) -> [T; $k] {
                self.to_array().map(|x| T::from_f64(x as f64))
            }
            #[inline(always)]
            fn gt(self, o: Self) -> Self {
                self.simd_gt(o)
            }
            #[inline(always)]
            fn ge(self, o: Self) -> Self {
                self.simd_ge(o)
            }
            #[inline(always)]
            fn eq(self, o: Self) -> Self {
                self.simd_eq(o)
            }
            #[inline(always)]
            fn ne(self, o: Self) -> Self {
                self.simd_ne(o)
            }
            #[inline(always)]
            fn select(m: Self, a: Self, b: Self) -> Self {
                m.select(a, b)
            }
            #[inline(always)]
            fn bits(m: Self) -> u32 {
                m.to_bitmask()
            }
            #[inline(always)]
            fn exp(self) -> Self {
                exp_lanes(self)
            }
        }
    };
}

impl_wide!(f32x16, f32, 16);
impl_wide!(f64x8, f64, 8);

// The lane types: `wide`'s vectors where the target has a vector unit;
// elsewhere `wide` would emulate 16 lanes through many small inlined operations
// (it doubled the firmware's code size), and [`ScalarLanes`] gives the same
// bits from plain loops in far less code.
crate::real::with_vector_unit! {
    /// The 16 `f32` lanes of the sampling path on this target: `wide::f32x16`.
    pub(crate) type F32Lanes = f32x16;
    /// The 8 `f64` lanes of the sampling path on this target: `wide::f64x8`.
    pub(crate) type F64Lanes = f64x8;
}
crate::real::without_vector_unit! {
    /// The 16 `f32` lanes of the sampling path on this target: plain loops.
    pub(crate) type F32Lanes = ScalarLanes<f32, 16>;
    /// The 8 `f64` lanes of the sampling path on this target: plain loops.
    pub(crate) type F64Lanes = ScalarLanes<f64, 8>;
}

/// `K` lanes held in an array and processed by plain loops, one IEEE operation
/// per lane: the same operations in the same order as `wide`'s vectors, so the
/// same bits on every target (the tests compare the two). Masks are lanes whose
/// bits are all ones (true) or all zeros (false), as in `wide`.
#[derive(Clone, Copy, Debug)]
#[allow(dead_code)] // only the targets without a vector unit use it outside tests
pub(crate) struct ScalarLanes<E, const K: usize>([E; K]);

macro_rules! impl_scalar_lanes {
    ($e:ty, $k:expr) => {
        impl Add for ScalarLanes<$e, $k> {
            type Output = Self;
            #[inline]
            fn add(self, o: Self) -> Self {
                Self(core::array::from_fn(|j| self.0[j] + o.0[j]))
            }
        }
        impl Sub for ScalarLanes<$e, $k> {
            type Output = Self;
            #[inline]
            fn sub(self, o: Self) -> Self {
                Self(core::array::from_fn(|j| self.0[j] - o.0[j]))
            }
        }
        impl Mul for ScalarLanes<$e, $k> {
            type Output = Self;
            #[inline]
            fn mul(self, o: Self) -> Self {
                Self(core::array::from_fn(|j| self.0[j] * o.0[j]))
            }
        }
        impl Div for ScalarLanes<$e, $k> {
            type Output = Self;
            #[inline]
            fn div(self, o: Self) -> Self {
                Self(core::array::from_fn(|j| self.0[j] / o.0[j]))
            }
        }
        impl BitAnd for ScalarLanes<$e, $k> {
            type Output = Self;
            #[inline]
            fn bitand(self, o: Self) -> Self {
                Self(core::array::from_fn(|j| {
                    <$e>::from_bits(self.0[j].to_bits() & o.0[j].to_bits())
                }))
            }
        }
        impl BitOr for ScalarLanes<$e, $k> {
            type Output = Self;
            #[inline]
            fn bitor(self, o: Self) -> Self {
                Self(core::array::from_fn(|j| {
                    <$e>::from_bits(self.0[j].to_bits() | o.0[j].to_bits())
                }))
            }
        }

        #[allow(dead_code)] // as the type: used outside tests only without a vector unit
        impl ScalarLanes<$e, $k> {
            /// A mask lane: all ones if `b`.
            #[inline]
            fn mask(b: bool) -> $e {
                <$e>::from_bits(if b { !0 } else { 0 })
            }
            #[inline]
            fn cmp(self, o: Self, f: impl Fn($e, $e) -> bool) -> Self {
                Self(core::array::from_fn(|j| Self::mask(f(self.0[j], o.0[j]))))
            }
        }

        impl<T: Real> Wide<T> for ScalarLanes<$e, $k> {
            const K: usize = $k;
            type Chunk = [T; $k];

            #[inline]
            fn split(s: &[T]) -> (&[[T; $k]], &[T]) {
                s.as_chunks::<$k>()
            }
            #[inline]
            fn split_mut(s: &mut [T]) -> (&mut [[T; $k]], &mut [T]) {
                s.as_chunks_mut::<$k>()
            }
            #[inline]
            fn splat(x: T) -> Self {
                Self([x.as_f64() as $e; $k])
            }
            #[inline]
            fn chunk_of(x: T) -> [T; $k] {
                [x; $k]
            }
            #[inline]
            fn load(c: &[T; $k]) -> Self {
                Self(c.map(|x| x.as_f64() as $e))
            }
            #[inline]
            fn lanes(self) -> [T; $k] {
                self.0.map(|x| T::from_f64(x as f64))
            }
            #[inline]
            fn gt(self, o: Self) -> Self {
                self.cmp(o, |a, b| a > b)
            }
            #[inline]
            fn ge(self, o: Self) -> Self {
                self.cmp(o, |a, b| a >= b)
            }
            #[inline]
            fn eq(self, o: Self) -> Self {
                self.cmp(o, |a, b| a == b)
            }
            #[inline]
            fn ne(self, o: Self) -> Self {
                self.cmp(o, |a, b| a != b)
            }
            #[inline]
            fn select(m: Self, a: Self, b: Self) -> Self {
                Self(core::array::from_fn(|j| {
                    let mb = m.0[j].to_bits();
                    <$e>::from_bits((a.0[j].to_bits() & mb) | (b.0[j].to_bits() & !mb))
                }))
            }
            #[inline]
            fn bits(m: Self) -> u32 {
                let mut bits = 0u32;
                for (j, &x) in m.0.iter().enumerate() {
                    if x.is_sign_negative() {
                        bits |= 1 << j;
                    }
                }
                bits
            }
            #[inline]
            fn exp(self) -> Self {
                Self(self.0.map(super::repro::repro_exp))
            }
        }
    };
}

impl_scalar_lanes!(f32, 16);
impl_scalar_lanes!(f64, 8);

/// Calls `f(base, chunk)` for every chunk of `K` elements of `s` in order
/// (`base` = the index of its first element), the last one padded with `pad`.
/// (`f` has one call site, so it is inlined into the loop.)
#[inline(always)]
pub(crate) fn each<T: Real, W: Wide<T>>(s: &[T], pad: T, mut f: impl FnMut(usize, W)) {
    let (chunks, tail) = W::split(s);
    let mut last = W::chunk_of(pad);
    for (d, &x) in last.as_mut().iter_mut().zip(tail) {
        *d = x;
    }
    let last = Some(&last).filter(|_| !tail.is_empty());
    for (c, chunk) in chunks.iter().chain(last).enumerate() {
        f(c * W::K, W::load(chunk));
    }
}

/// Replaces every chunk of `s` by `f(base, chunk)` (the last one loaded padded
/// with `pad`, and only its real elements stored).
#[inline(always)]
pub(crate) fn map<T: Real, W: Wide<T>>(s: &mut [T], pad: T, f: impl FnMut(usize, W) -> W) {
    let (chunks, tail) = W::split_mut(s);
    map2::<T, W>(chunks, tail, pad, f);
}

/// [`map`] on a slice split by [`Wide::split_mut`].
#[inline(always)]
fn map2<T: Real, W: Wide<T>>(
    chunks: &mut [W::Chunk],
    tail: &mut [T],
    pad: T,
    mut f: impl FnMut(usize, W) -> W,
) {
    let mut last = W::chunk_of(pad);
    for (d, &x) in last.as_mut().iter_mut().zip(tail.iter()) {
        *d = x;
    }
    let has_tail = !tail.is_empty();
    for (c, chunk) in chunks
        .iter_mut()
        .chain(Some(&mut last).filter(|_| has_tail))
        .enumerate()
    {
        f(c * W::K, W::load(chunk)).store(chunk);
    }
    for (d, &x) in tail.iter_mut().zip(last.as_ref()) {
        *d = x;
    }
}

/// `dst = f(base, chunk of src)` chunk by chunk (`src` and `dst` of one length;
/// `src`'s last chunk padded with `pad`).
#[inline(always)]
pub(crate) fn map_into<T: Real, W: Wide<T>>(
    src: &[T],
    dst: &mut [T],
    pad: T,
    mut f: impl FnMut(usize, W) -> W,
) {
    let (sc, st) = W::split(src);
    let (dc, dt) = W::split_mut(dst);
    let mut last = W::chunk_of(pad);
    for (d, &x) in last.as_mut().iter_mut().zip(st) {
        *d = x;
    }
    let mut out = W::chunk_of(pad);
    let has_tail = !st.is_empty();
    let pairs = dc
        .iter_mut()
        .zip(sc)
        .chain(Some((&mut out, &last)).filter(|_| has_tail));
    for (c, (d, s)) in pairs.enumerate() {
        f(c * W::K, W::load(s)).store(d);
    }
    for (d, &x) in dt.iter_mut().zip(out.as_ref()) {
        *d = x;
    }
}

/// `dst = f(base, chunk of dst, chunk of other)` chunk by chunk (`dst` and
/// `other` of one length; last chunks padded with `pad` and `pad_other`).
#[inline(always)]
pub(crate) fn map_zip<T: Real, W: Wide<T>>(
    dst: &mut [T],
    other: &[T],
    pad: T,
    pad_other: T,
    mut f: impl FnMut(usize, W, W) -> W,
) {
    let (dc, dt) = W::split_mut(dst);
    let (oc, ot) = W::split(other);
    let mut last = W::chunk_of(pad);
    for (d, &x) in last.as_mut().iter_mut().zip(dt.iter()) {
        *d = x;
    }
    let mut last_other = W::chunk_of(pad_other);
    for (d, &x) in last_other.as_mut().iter_mut().zip(ot) {
        *d = x;
    }
    let has_tail = !dt.is_empty();
    let pairs = dc
        .iter_mut()
        .zip(oc)
        .chain(Some((&mut last, &last_other)).filter(|_| has_tail));
    for (c, (d, o)) in pairs.enumerate() {
        f(c * W::K, W::load(d), W::load(o)).store(d);
    }
    for (d, &x) in dt.iter_mut().zip(last.as_ref()) {
        *d = x;
    }
}

/// The reproducible sum of `s`: `K` partial sums — element `i` goes to partial
/// `i mod K`, each partial summed in increasing `i` from `+0` — combined by
/// [`Wide::tree`]. The same value on every target. (The kernels fuse this sum
/// into their passes; this plain form is the definition the tests check.)
#[cfg(test)]
pub(crate) fn sum<T: Real, W: Wide<T>>(s: &[T]) -> T {
    let mut acc = W::splat(T::ZERO);
    each::<T, W>(s, T::ZERO, |_, v| acc = acc + v);
    acc.tree()
}

/// Writes the candidates of the lanes of `v` set in `mask` (bit `j` = lane `j`,
/// token `base + j`) that also pass `keep` to `cand[*n..]`, advancing `*n`.
#[inline(always)]
pub(crate) fn push_lanes<T: Real, W: Wide<T>>(
    v: W,
    mut mask: u32,
    base: usize,
    cand: &mut [super::select::Cand<T>],
    n: &mut usize,
    keep: impl Fn(super::select::Cand<T>) -> bool,
) {
    if mask == 0 {
        return;
    }
    let l = v.lanes();
    let l = l.as_ref();
    while mask != 0 {
        let j = mask.trailing_zeros() as usize;
        mask &= mask - 1;
        if let Some(&key) = l.get(j) {
            let c = super::select::Cand {
                key,
                id: (base + j) as u32,
            };
            if keep(c)
                && let Some(slot) = cand.get_mut(*n)
            {
                *slot = c;
                *n += 1;
            }
        }
    }
}

/// The mask of the lanes of `v` (tokens `base..base + K`) that do not come after
/// the candidate `th` in candidate order: `v > th.key`, or `v == th.key` with a
/// token id `≤ th.id`.
#[inline(always)]
pub(crate) fn not_after<T: Real, W: Wide<T>>(v: W, th: super::select::Cand<T>, base: usize) -> W {
    let key = W::splat(th.key);
    let gt = v.gt(key);
    let eq = W::bits(v.eq(key));
    if eq == 0 {
        gt
    } else {
        let last = th.id as usize;
        gt | W::mask_from(|j| eq & (1 << j) != 0 && base + j <= last)
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec::Vec;

    fn tree_by_hand(p: &[f32]) -> f32 {
        let mut p = p.to_vec();
        while p.len() > 1 {
            let h = p.len() / 2;
            p = (0..h).map(|j| p[j] + p[j + h]).collect();
        }
        p[0]
    }

    #[test]
    fn sum_is_the_documented_order() {
        // Values spanning many magnitudes, so that another order rounds differently.
        let mut x = 0x1234_5678u32;
        for n in [0usize, 1, 15, 16, 17, 100, 1000, 4099] {
            let v: Vec<f32> = (0..n)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    (x % 1000) as f32 * 10f32.powi((x % 9) as i32 - 4)
                })
                .collect();
            let mut parts = [0.0f32; 16];
            for (i, &w) in v.iter().enumerate() {
                parts[i % 16] += w;
            }
            let want = tree_by_hand(&parts);
            assert_eq!(sum::<f32, f32x16>(&v).to_bits(), want.to_bits(), "n {n}");
            let vd: Vec<f64> = v.iter().map(|&w| w as f64 * 1.000_000_1).collect();
            let mut parts = [0.0f64; 8];
            for (i, &w) in vd.iter().enumerate() {
                parts[i % 8] += w;
            }
            let mut p = parts.to_vec();
            while p.len() > 1 {
                let h = p.len() / 2;
                p = (0..h).map(|j| p[j] + p[j + h]).collect();
            }
            assert_eq!(sum::<f64, f64x8>(&vd).to_bits(), p[0].to_bits(), "n {n}");
        }
    }

    /// Everything a kernel can observe of lane type `W` on `v`: sums, exp,
    /// masks, selects, bits, max and tree reductions, chunk by chunk.
    fn observe<T: Real, W: Wide<T>>(v: &[T]) -> Vec<u64> {
        // IEEE leaves a NaN result's sign and payload open (hardware differs
        // in which operand's NaN it passes on), so NaNs compare as one value.
        let bits = |x: T| if x.is_nan() { 1 } else { x.as_f64().to_bits() };
        let mut out = Vec::from([bits(sum::<T, W>(v))]);
        let mut e = v.to_vec();
        map::<T, W>(&mut e, T::ZERO, |_, c| c.exp() * c - c);
        out.extend(e.iter().map(|&x| bits(x)));
        let th = super::super::select::Cand {
            key: T::from_f64(1.5),
            id: 40,
        };
        each::<T, W>(v, T::NEG_INFINITY, |base, c| {
            let m = not_after::<T, W>(c, th, base);
            let sel = W::select(m, c, W::splat(T::from_f64(-2.0)));
            out.push(W::bits(m) as u64);
            out.push(W::bits(c.ne(c)) as u64);
            out.push(W::bits(c.ge(W::splat(T::from_f64(0.5)))) as u64);
            out.extend(sel.lanes().as_ref().iter().map(|&x| bits(x)));
            out.extend((c & m).lanes().as_ref().iter().map(|&x| bits(x)));
            out.push(bits(c.max_lane()));
            out.push(bits((c / W::splat(T::from_f64(3.0))).tree()));
        });
        out
    }

    /// The scalar lanes (used on targets without a vector unit) compute the
    /// same bits as `wide`'s vectors, on values with ties, NaN, infinities and
    /// a tail.
    #[test]
    fn scalar_lanes_equal_wide_lanes() {
        let mut x = 0x9e37_79b9u32;
        for n in [0usize, 1, 7, 16, 17, 33, 300] {
            let v: Vec<f32> = (0..n)
                .map(|i| {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    match i % 29 {
                        3 => f32::NAN,
                        5 => f32::NEG_INFINITY,
                        7 => f32::INFINITY,
                        _ => ((x % 2001) as f32 - 1000.0) / 37.0,
                    }
                })
                .collect();
            assert_eq!(
                observe::<f32, f32x16>(&v),
                observe::<f32, ScalarLanes<f32, 16>>(&v),
                "f32, n {n}"
            );
            let vd: Vec<f64> = v.iter().map(|&a| a as f64 * 1.000_000_1).collect();
            let (a, b) = (
                observe::<f64, f64x8>(&vd),
                observe::<f64, ScalarLanes<f64, 8>>(&vd),
            );
            assert_eq!(a, b, "f64, n {n}");
        }
    }

    #[test]
    fn masks_and_bits() {
        type W = f32x16;
        let v = <W as Wide<f32>>::load(&core::array::from_fn(|j| j as f32));
        let m = Wide::<f32>::ge(v, <W as Wide<f32>>::splat(10.0));
        assert_eq!(<W as Wide<f32>>::bits(m), 0b1111_1100_0000_0000);
        let m = <W as Wide<f32>>::mask_from(|j| j % 3 == 0);
        assert_eq!(<W as Wide<f32>>::bits(m), 0b1001_0010_0100_1001);
        let z = v & m;
        assert_eq!(Wide::<f32>::lanes(z)[3], 3.0);
        assert_eq!(Wide::<f32>::lanes(z)[4], 0.0);
        assert_eq!(Wide::<f32>::tree(v), 120.0);
        type D = f64x8;
        let d = <D as Wide<f64>>::load(&core::array::from_fn(|j| j as f64));
        let m = Wide::<f64>::gt(d, <D as Wide<f64>>::splat(5.5));
        assert_eq!(<D as Wide<f64>>::bits(m), 0b1100_0000);
    }
}
