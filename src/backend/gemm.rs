//! The matrix product of the [`Simd`](super::Simd) backend.
//!
//! `C (+)= op(A)·op(B)`, where each `op` is "as stored" or "transposed", in
//! register tiles of `R` rows × `V` vectors of columns: `R·V` vector
//! accumulators; per step of depth, `V` vector loads of B, `R` broadcasts of A
//! straight from memory and `R·V` independent fused multiply-adds.
//!
//! * **B** is packed one *panel* at a time into scratch on the stack: [`kc`]
//!   steps of depth (256 for `f32`, 128 for `f64`) × `NV` vectors of columns,
//!   depth-major (each step's `NV·LANES` values contiguous and 64-byte
//!   aligned). A panel takes 32 KiB (`f32`, 16 lanes), so it stays in a 48 KiB
//!   L1 data cache while the rows of A stream past it, and it is packed once
//!   per product: its cost is spread over all `m` rows. Packing absorbs B's
//!   layout: as stored, a step is a copy of a piece of one row; transposed, a
//!   column of the panel is a piece of one stored row.
//! * **A** is read in place. As stored, a tile holds one pointer per row and
//!   broadcasts `A[i][p]` from each; transposed (`Aᵀ·B`, a weight gradient), a
//!   stored row is already a depth-major run of the tile's values. A tile takes
//!   [`MR`] rows: 12 × 2 vectors (24 accumulators) where the build has 32
//!   vector registers (AVX-512, NEON), 6 × 2 where it has 16; one or two rows
//!   against B in place take 4 vectors (a decode step's `weights · V`). The
//!   exception: rows a multiple of 4 KiB apart all fall in one set of the L1
//!   cache and evict each other, so then A is packed in blocks of [`MC`] rows
//!   (and B packed again for each block). Packing A always was measured to
//!   cost more than it saved.
//! * Broadcasts come from memory, never from a register: an `f32` broadcast
//!   from a register is a shuffle on the port that AVX-512 cores share with
//!   one of their two FMA units, and measured here it cost a third of the
//!   peak. The kernels are separate functions for a reason of code generation
//!   too: inlined into the drivers, LLVM kept the 24 accumulators in memory
//!   and stored them on every step.
//! * Edges: a tile at the bottom takes the next row size up (padding rows
//!   repeat a valid row, as stored; zeros, packed) or the largest that fits
//!   (transposed, in place); a panel at the right takes one vector instead of
//!   two and pads columns with zeros; only the valid part of a tile is
//!   written. No scalar fallback.
//! * Small products (the caller decides: B of at most 64 KiB, in L2 anyway,
//!   or at most 4 rows of A, which read B once either way) with B stored as
//!   is and a whole number of vectors wide read B in place too and pack
//!   nothing.

#![cfg_attr(
    not(any(
        target_arch = "x86",
        target_arch = "x86_64",
        target_arch = "aarch64",
        target_feature = "simd128"
    )),
    allow(dead_code)
)]

use crate::backend::Accumulate;
use crate::mat::{MatMut, MatRef};
use crate::real::Real;

/// Rows of the register tile over a transposed A.
#[cfg(any(target_feature = "avx512f", target_arch = "aarch64"))]
pub(crate) const MR: usize = 12;
/// Rows of the register tile over a transposed A.
#[cfg(not(any(target_feature = "avx512f", target_arch = "aarch64")))]
pub(crate) const MR: usize = 6;
/// Vectors of columns in the register tile.
pub(crate) const NV: usize = 2;
/// Vectors of columns in the tile of one or two rows against B in place.
const WIDE: usize = 4;
/// Bytes of one row of A across a panel's depth: the depth of a packed B panel
/// is `KC_BYTES / size_of::<T>()`, 256 steps for `f32` and 128 for `f64`, so
/// that the 12 rows of A a tile reads (12 KiB) and the B panel (32 KiB for
/// `f32` at 16 lanes, 16 KiB for `f64`) share a 48 KiB L1 data cache. (A
/// 256-deep `f64` panel measured at half the speed: 56 KiB no longer fit.)
pub(crate) const KC_BYTES: usize = 1024;

/// Rows of a packed A block (a multiple of 12 and of 6).
pub(crate) const MC: usize = 96;

/// Depth of a packed B panel for `T`.
#[inline(always)]
pub(crate) const fn kc<T: Real>() -> usize {
    KC_BYTES / T::BYTES
}

/// Columns of the register tile for `T`.
#[inline(always)]
const fn nr<T: Real>() -> usize {
    NV * T::LANES
}

/// Bytes of scratch [`gemm_packed`] needs at most: an A block of [`MC`] rows
/// × [`KC_BYTES`] (96 KiB) and one B panel of `f32`'s depth (the deepest) × 2
/// vectors of 64 bytes (the widest build, 32 KiB), each with a cache line to
/// align it.
pub(crate) const SCRATCH_BYTES: usize = MC * KC_BYTES + KC_BYTES / 4 * NV * 64 + 2 * 64;

/// Elements of scratch [`gemm_packed`] uses for `m` rows and depth `k`, with
/// an A block when `pack_a` (see [`packs_a`]).
#[inline(always)]
pub(crate) const fn scratch_len<T: Real>(m: usize, k: usize, pack_a: bool) -> usize {
    let kc = if k < kc::<T>() { k } else { kc::<T>() };
    let mc = if !pack_a {
        0
    } else if m < MC {
        m.div_ceil(MR) * MR
    } else {
        MC
    };
    kc * (mc + nr::<T>()) + 2 * 64 / T::BYTES
}

/// Whether [`gemm_packed`] packs A: when its rows are a multiple of 4 KiB
/// apart (they would all fall in one set of the L1 cache) and there is more
/// than one tile of them.
#[inline(always)]
pub(crate) fn packs_a<T: Real>(a: &Op<'_, T>, m: usize) -> bool {
    (a.m.stride() * T::BYTES).is_multiple_of(4096) && m > MR
}

/// One operand of a product: a view as stored, or transposed.
#[derive(Clone, Copy)]
pub(crate) struct Op<'a, T> {
    pub(crate) m: MatRef<'a, T>,
    pub(crate) t: bool,
}

impl<'a, T: Real> Op<'a, T> {
    #[inline(always)]
    pub(crate) fn rows(&self) -> usize {
        if self.t { self.m.cols() } else { self.m.rows() }
    }
    #[inline(always)]
    pub(crate) fn cols(&self) -> usize {
        if self.t { self.m.rows() } else { self.m.cols() }
    }
}

/// Rows of the tile for `left` remaining rows: `MR` once at least that many
/// are left, else the next size up of 8, 4, 2, 1.
#[inline(always)]
fn tile_rows(left: usize) -> usize {
    if left >= MR || left > 8 {
        MR
    } else if left > 4 {
        8.min(MR)
    } else if left > 2 {
        4
    } else {
        left
    }
}

/// Rows of the tile for `left` remaining rows of a transposed A, read in
/// place: `MR`, 8, 4, 2 or 1, never more than are left.
#[inline(always)]
fn tile_rows_exact(left: usize) -> usize {
    if left >= MR {
        MR
    } else if left >= 8 {
        8.min(MR)
    } else if left >= 4 {
        4
    } else if left >= 2 {
        2
    } else {
        1
    }
}

/// Columns of the tile (and of a packed B panel) for `left` remaining
/// columns: `NV` vectors, or one vector when that covers them.
#[inline(always)]
fn tile_cols<T: Real>(left: usize) -> usize {
    if left > T::LANES { nr::<T>() } else { T::LANES }
}

/// Packs rows `i0 .. i0 + mc`, depth `p0 .. p0 + kc` of `op(A)` into `dst`
/// as depth-major panels of [`tile_rows`] rows (`kc` runs of the panel's
/// rows), zero-padded.
fn pack_a<T: Real>(a: Op<'_, T>, i0: usize, mc: usize, p0: usize, kc: usize, dst: &mut [T]) {
    let mut off = 0;
    let mut ir = 0;
    while ir < mc {
        let h = tile_rows(mc - ir);
        let Some(panel) = dst.get_mut(off..off + h * kc) else {
            return;
        };
        // A transposed is stored depth-major already.
        pack_panel(a.m, a.t, i0 + ir, h.min(mc - ir), h, p0, kc, panel);
        off += h * kc;
        ir += h;
    }
}

/// Packs columns `j0 .. j0 + cols` (at most `w`), depth `p0 .. p0 + kc` of
/// `op(B)` into `dst` depth-major: `kc` runs of `w` values, zero-padded.
#[inline(always)]
fn pack_b<T: Real>(
    b: Op<'_, T>,
    j0: usize,
    cols: usize,
    w: usize,
    p0: usize,
    kc: usize,
    dst: &mut [T],
) {
    // B as stored is depth-major (a step is a row).
    pack_panel(b.m, !b.t, j0, cols, w, p0, kc, dst);
}

/// The one packing routine: `kc` runs of `w` values into `dst` — for step
/// `p`, the values `j0 .. j0 + valid` of the panel, zeros past `valid`.
/// `depth_major`: step `p` is stored row `p0 + p` (a copy of a piece of it);
/// otherwise value `j` is stored row `j0 + j` (its piece `p0 .. p0 + kc` is
/// scattered across the runs).
#[allow(clippy::too_many_arguments)]
fn pack_panel<T: Real>(
    x: MatRef<'_, T>,
    depth_major: bool,
    j0: usize,
    valid: usize,
    w: usize,
    p0: usize,
    kc: usize,
    dst: &mut [T],
) {
    let Some(panel) = dst.get_mut(..w * kc) else {
        return;
    };
    if depth_major {
        for (p, out) in panel.chunks_exact_mut(w).enumerate() {
            let src = x.row_or_empty(p0 + p);
            let src = src.get(j0..j0 + valid).unwrap_or(&[]);
            // Block by block (a `copy_from_slice` per run would call `memcpy`
            // for every step of a short panel).
            let (ob, _) = T::blocks_mut(out);
            let (sb, st) = T::blocks(src);
            for (o, s) in ob.iter_mut().zip(sb) {
                T::store(T::load(s), o);
            }
            let whole = sb.len() * T::LANES;
            let rest = out.get_mut(whole..).unwrap_or(&mut []);
            for (i, o) in rest.iter_mut().enumerate() {
                *o = st.get(i).copied().unwrap_or(T::ZERO);
            }
        }
    } else {
        for j in 0..w {
            let src: &[T] = if j < valid {
                x.row_or_empty(j0 + j).get(p0..p0 + kc).unwrap_or(&[])
            } else {
                &[]
            };
            if src.len() == kc {
                for (out, &v) in panel.chunks_exact_mut(w).zip(src) {
                    out[j] = v;
                }
            } else {
                for out in panel.chunks_exact_mut(w) {
                    out[j] = T::ZERO;
                }
            }
        }
    }
}

/// Where a tile reads A: the `R` values of each step of depth, in memory (a
/// broadcast straight from memory is a load; from a register it would take
/// a shuffle port that AVX-512 cores share with an FMA unit).
trait APanel<T: Real, const R: usize> {
    /// Steps of depth held.
    fn len(&self) -> usize;
    /// Step `p < len()`.
    fn at(&self, p: usize) -> &[T; R];
}

/// A packed A panel: `kc` runs of `R` values.
struct PackedA<'a, T, const R: usize>(&'a [[T; R]]);

impl<T: Real, const R: usize> APanel<T, R> for PackedA<'_, T, R> {
    #[inline(always)]
    fn len(&self) -> usize {
        self.0.len()
    }
    #[inline(always)]
    fn at(&self, p: usize) -> &[T; R] {
        &self.0[p]
    }
}

/// `R` rows of A as stored, all cut to the same depth.
struct RowsA<'a, T, const R: usize>([&'a [T]; R]);

impl<'a, T: Real, const R: usize> RowsA<'a, T, R> {
    /// Rows `i0 .. i0 + rows` of `a`, depth `p0 .. p0 + kc`; rows past
    /// `rows` repeat row `i0` (their outputs are never stored).
    #[inline(always)]
    fn new(a: MatRef<'a, T>, i0: usize, rows: usize, p0: usize, kc: usize) -> Self {
        let first = a.row_or_empty(i0).get(p0..p0 + kc).unwrap_or(&[]);
        RowsA(core::array::from_fn(|r| {
            if r < rows {
                a.row_or_empty(i0 + r).get(p0..p0 + kc).unwrap_or(&[])
            } else {
                first
            }
        }))
    }
}

impl<T: Real, const R: usize> RowsA<'_, T, R> {
    #[inline(always)]
    fn len(&self) -> usize {
        // The shortest row (all hold `kc` in a valid view), computed from the
        // rows themselves: the compiler then sees `p < len()` bound each row.
        self.0.iter().fold(usize::MAX, |n, r| n.min(r.len()))
    }
}

/// `R` rows of `op(A)` when A is stored transposed (`(k, m)`): step `p` is a
/// contiguous piece of stored row `p0 + p`, columns `i0 .. i0 + rows`.
struct ColsA<'a, T, const R: usize> {
    data: &'a [T],
    stride: usize,
    first: usize,
    len: usize,
    zeros: [T; R],
}

impl<'a, T: Real, const R: usize> ColsA<'a, T, R> {
    #[inline(always)]
    fn new(a: MatRef<'a, T>, i0: usize, p0: usize, kc: usize) -> Self {
        let (data, stride) = a.raw_parts();
        ColsA {
            data,
            stride,
            first: p0 * stride + i0,
            len: kc.min(a.rows().saturating_sub(p0)),
            zeros: [T::ZERO; R],
        }
    }
}

impl<T: Real, const R: usize> APanel<T, R> for ColsA<'_, T, R> {
    #[inline(always)]
    fn len(&self) -> usize {
        self.len
    }
    #[inline(always)]
    fn at(&self, p: usize) -> &[T; R] {
        // Tiles over a transposed A hold exactly `R` valid rows (see
        // [`tile_rows_exact`]), so the piece is in the view; zeros otherwise.
        let at = self.first + p * self.stride;
        self.data
            .get(at..)
            .and_then(|s| s.first_chunk::<R>())
            .unwrap_or(&self.zeros)
    }
}

/// Where a tile reads B: the `V` vectors of each step of depth.
trait BPanel<T: Real, const V: usize> {
    /// Steps of depth held.
    fn len(&self) -> usize;
    /// Step `p < len()`.
    fn at(&self, p: usize) -> [T::V; V];
}

/// A packed B panel: `kc` runs of `V` blocks.
struct PackedB<'a, T: Real, const V: usize>(&'a [[T::Block; V]]);

impl<T: Real, const V: usize> BPanel<T, V> for PackedB<'_, T, V> {
    #[inline(always)]
    fn len(&self) -> usize {
        self.0.len()
    }
    #[inline(always)]
    fn at(&self, p: usize) -> [T::V; V] {
        let mut v = [T::splat(T::ZERO); V];
        for (x, blk) in v.iter_mut().zip(&self.0[p]) {
            *x = T::load(blk);
        }
        v
    }
}

/// B as stored: row `p0 + p`, columns `j0 .. j0 + cols` (`cols < V·LANES`
/// pads the last vector with zeros).
struct RowsB<'a, T> {
    data: &'a [T],
    stride: usize,
    first: usize,
    len: usize,
}

impl<T: Real, const V: usize> BPanel<T, V> for RowsB<'_, T> {
    #[inline(always)]
    fn len(&self) -> usize {
        self.len
    }
    #[inline(always)]
    fn at(&self, p: usize) -> [T::V; V] {
        // Whole vectors only (the driver packs a partial panel).
        let at = self.first + p * self.stride;
        let mut v = [T::splat(T::ZERO); V];
        if let Some(row) = self.data.get(at..at + V * T::LANES) {
            for (x, blk) in v.iter_mut().zip(T::blocks(row).0) {
                *x = T::load(blk);
            }
        }
        v
    }
}

// The kernels are not inlined into the drivers: as its own function the tile
// stays in registers through the loop (inlined into a larger driver, LLVM was
// seen to keep it in memory and store all 24 accumulators on every step).

/// The register tile: `R × V` vector accumulators; per step of depth, `V`
/// vector loads of B, `R` broadcasts of A and `R·V` independent FMAs.
#[inline(never)]
fn kernel<T: Real, const R: usize, const V: usize>(
    a: &impl APanel<T, R>,
    b: &impl BPanel<T, V>,
) -> [[T::V; V]; R] {
    let zero = T::splat(T::ZERO);
    let mut acc = [[zero; V]; R];
    let n = a.len().min(b.len());
    for p in 0..n {
        let bv = b.at(p);
        let ar = a.at(p);
        for r in 0..R {
            let x = T::splat(ar[r]);
            for v in 0..V {
                acc[r][v] = T::fma(x, bv[v], acc[r][v]);
            }
        }
    }
    acc
}

/// [`kernel`] with A's rows read where they are stored.
#[inline(never)]
fn kernel_rows<T: Real, const R: usize, const V: usize>(
    a: &RowsA<'_, T, R>,
    b: &impl BPanel<T, V>,
) -> [[T::V; V]; R] {
    let zero = T::splat(T::ZERO);
    let mut acc = [[zero; V]; R];
    let n = a.len().min(b.len());
    // Every row cut to exactly `n` (no row is shorter): `rows[r][p]` for
    // `p < n` then needs no check.
    let rows: [&[T]; R] = core::array::from_fn(|r| &a.0[r][..n]);
    let mut p = 0;
    if R * V < 8 {
        // Too few accumulators to cover the FMA latency (a row or two against
        // B: the weighted sum of a decode step's values): four partial tiles,
        // step `p` into tile `p mod 4`, added at the end.
        let mut part = [[[zero; V]; R]; 3];
        while p + 4 <= n {
            let bv = b.at(p);
            for r in 0..R {
                let x = T::splat(rows[r][p]);
                for v in 0..V {
                    acc[r][v] = T::fma(x, bv[v], acc[r][v]);
                }
            }
            for (u, t) in part.iter_mut().enumerate() {
                let q = p + 1 + u;
                let bv = b.at(q);
                for r in 0..R {
                    let x = T::splat(rows[r][q]);
                    for v in 0..V {
                        t[r][v] = T::fma(x, bv[v], t[r][v]);
                    }
                }
            }
            p += 4;
        }
        for r in 0..R {
            for v in 0..V {
                acc[r][v] += (part[0][r][v] + part[1][r][v]) + part[2][r][v];
            }
        }
    }
    while p < n {
        let bv = b.at(p);
        for r in 0..R {
            let x = T::splat(rows[r][p]);
            for v in 0..V {
                acc[r][v] = T::fma(x, bv[v], acc[r][v]);
            }
        }
        p += 1;
    }
    acc
}

/// Writes (or adds) the first `rows × cols` outputs of a tile into C at
/// `(i0, j0)`; `cols ≤ V·LANES`.
// Indexed loops on purpose: see the note inside.
#[allow(clippy::too_many_arguments, clippy::needless_range_loop)]
#[inline(always)]
fn store<T: Real, const R: usize, const V: usize>(
    acc: &[[T::V; V]; R],
    c: &mut MatMut<'_, T>,
    i0: usize,
    j0: usize,
    rows: usize,
    cols: usize,
    add: bool,
) {
    // Indices below are constants once the loops are unrolled (a dynamically
    // indexed tile would be kept in memory).
    for r in 0..R {
        if r >= rows {
            break;
        }
        let Some(crow) = c.row_mut_or_empty(i0 + r).get_mut(j0..j0 + cols) else {
            return;
        };
        let (cb, ct) = T::blocks_mut(crow);
        let whole = cb.len();
        for v in 0..V {
            let x = acc[r][v];
            if let Some(blk) = cb.get_mut(v) {
                let y = if add { x + T::load(blk) } else { x };
                T::store(y, blk);
            } else if v == whole && !ct.is_empty() {
                let mut tmp = T::ZERO_BLOCK;
                T::store(x, &mut tmp);
                for (d, &s) in ct.iter_mut().zip(tmp.as_ref()) {
                    *d = if add { *d + s } else { s };
                }
            }
        }
    }
}

/// Where A comes from for one tile.
#[derive(Clone, Copy)]
enum ASrc<'a, T> {
    /// A packed panel of the tile's rows (with a packed B panel).
    Packed(&'a [T]),
    /// `op(A)` where it is stored (with B where it is stored).
    Stored(Op<'a, T>),
}

/// Where B comes from for one column panel.
#[derive(Clone, Copy)]
enum BSrc<'a, T: Real> {
    /// A packed panel (depth-major runs of the tile's vectors).
    Packed(&'a [T::Block]),
    /// B as stored, whole vectors of columns from `j0`.
    Rows { m: MatRef<'a, T>, j0: usize },
}

/// One tile: `R` rows of `op(A)` from row `i0` (`rows` of them valid), depth
/// `p0 .. p0 + kc`, times a B panel; stored to C at `(i0, j0)`.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn tile<T: Real, const R: usize, const V: usize>(
    a: ASrc<'_, T>,
    b: BSrc<'_, T>,
    p0: usize,
    kc: usize,
    c: &mut MatMut<'_, T>,
    i0: usize,
    j0: usize,
    rows: usize,
    cols: usize,
    add: bool,
) {
    let acc = match (a, b) {
        (ASrc::Packed(pa), BSrc::Packed(pb)) => kernel::<T, R, V>(
            &PackedA::<T, R>(pa.as_chunks::<R>().0),
            &PackedB::<T, V>(pb.as_chunks::<V>().0),
        ),
        (ASrc::Stored(a), BSrc::Packed(pb)) => {
            stored_a::<T, R, V>(a, i0, rows, p0, kc, &PackedB::<T, V>(pb.as_chunks::<V>().0))
        }
        (ASrc::Stored(a), BSrc::Rows { m, j0 }) => {
            let (data, stride) = m.raw_parts();
            let rb = RowsB {
                data,
                stride,
                first: p0 * stride + j0,
                len: m.rows().saturating_sub(p0),
            };
            stored_a::<T, R, V>(a, i0, rows, p0, kc, &rb)
        }
        // A packed A always comes with a packed B.
        (ASrc::Packed(_), BSrc::Rows { .. }) => return,
    };
    store::<T, R, V>(&acc, c, i0, j0, rows, cols, add);
}

/// The kernel for `R` rows of `op(A)` read where they are stored (rows from
/// `i0`, `rows` of them valid; depth `p0 .. p0 + kc`) against `b`.
#[inline(always)]
fn stored_a<T: Real, const R: usize, const V: usize>(
    a: Op<'_, T>,
    i0: usize,
    rows: usize,
    p0: usize,
    kc: usize,
    b: &impl BPanel<T, V>,
) -> [[T::V; V]; R] {
    if a.t {
        kernel::<T, R, V>(&ColsA::<T, R>::new(a.m, i0, p0, kc), b)
    } else {
        kernel_rows::<T, R, V>(&RowsA::<T, R>::new(a.m, i0, rows, p0, kc), b)
    }
}

/// A tile of `h` rows and `nv` vectors.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn dispatch<T: Real>(
    h: usize,
    nv: usize,
    a: ASrc<'_, T>,
    b: BSrc<'_, T>,
    p0: usize,
    kc: usize,
    c: &mut MatMut<'_, T>,
    i0: usize,
    j0: usize,
    rows: usize,
    cols: usize,
    add: bool,
) {
    macro_rules! rows {
        ($($r:literal),*) => {
            match (h, nv) {
                // Four vectors: a row or two against a B read in place.
                (1, WIDE) => tile::<T, 1, WIDE>(a, b, p0, kc, c, i0, j0, rows, cols, add),
                (2, WIDE) => tile::<T, 2, WIDE>(a, b, p0, kc, c, i0, j0, rows, cols, add),
                $(($r, NV) => tile::<T, $r, NV>(a, b, p0, kc, c, i0, j0, rows, cols, add),
                  ($r, _) => tile::<T, $r, 1>(a, b, p0, kc, c, i0, j0, rows, cols, add),)*
                _ => {}
            }
        };
    }
    #[cfg(any(target_feature = "avx512f", target_arch = "aarch64"))]
    rows!(12, 8, 4, 2, 1);
    #[cfg(not(any(target_feature = "avx512f", target_arch = "aarch64")))]
    rows!(6, 4, 2, 1);
}

/// All tiles of one column panel for rows `i0 .. i0 + m`, depth `p0 ..
/// p0 + kc`: A from its packed block `pa` (panels of [`tile_rows`] rows), or
/// where it is stored when `pa` is `None`.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn panel<T: Real>(
    a: Op<'_, T>,
    pa: Option<&[T]>,
    b: BSrc<'_, T>,
    i0: usize,
    m: usize,
    p0: usize,
    kc: usize,
    c: &mut MatMut<'_, T>,
    j0: usize,
    w: usize,
    cols: usize,
    add: bool,
) {
    let mut ir = 0;
    let mut off = 0;
    while ir < m {
        let (h, asrc) = match pa {
            Some(pa) => {
                let h = tile_rows(m - ir);
                (h, ASrc::Packed(pa.get(off..off + h * kc).unwrap_or(&[])))
            }
            // Transposed in place, a tile reads whole runs of its rows: never
            // more rows than are left.
            None if a.t => (tile_rows_exact(m - ir), ASrc::Stored(a)),
            None => (tile_rows(m - ir), ASrc::Stored(a)),
        };
        let rows = h.min(m - ir);
        dispatch(
            h,
            w / T::LANES,
            asrc,
            b,
            p0,
            kc,
            c,
            i0 + ir,
            j0,
            rows,
            cols,
            add,
        );
        off += h * kc;
        ir += h;
    }
}

/// `C (+)= op(A)·B` with B read where it is stored, nothing packed, for
/// products whose B stays in cache or is read once anyway and whose `n` is a
/// whole number of vectors (the caller checks both).
pub(crate) fn gemm_unpacked<T: Real>(
    a: Op<'_, T>,
    b: MatRef<'_, T>,
    mut c: MatMut<'_, T>,
    acc: Accumulate,
) {
    let m = a.rows().min(c.rows());
    let n = b.cols().min(c.cols());
    let k = a.cols().min(b.rows());
    let add = acc == Accumulate::Add;
    let mut j0 = 0;
    while j0 + T::LANES <= n {
        // One or two rows take four vectors at a time: one pass over B's rows
        // (a decode step's `weights · V` with heads of 64) instead of two.
        let w = if m <= 2 && n - j0 >= WIDE * T::LANES {
            WIDE * T::LANES
        } else {
            tile_cols::<T>(n - j0)
        };
        let bsrc = BSrc::Rows { m: b, j0 };
        panel(a, None, bsrc, 0, m, 0, k, &mut c, j0, w, w, add);
        j0 += w;
    }
}

/// `C (+)= op(A)·op(B)` over the common dims, packing into `scratch` (at
/// least [`scratch_len`] elements): B one panel at a time; A read in place,
/// or, when its rows alias in L1, packed in blocks of up to [`MC`] rows (B
/// then packed again for each block). Returns `false` (and
/// touches nothing) if `scratch` is too small. The caller handles `k = 0`.
pub(crate) fn gemm_packed<T: Real>(
    a: Op<'_, T>,
    b: Op<'_, T>,
    mut c: MatMut<'_, T>,
    acc: Accumulate,
    scratch: &mut [T],
) -> bool {
    let m = a.rows().min(c.rows());
    let n = b.cols().min(c.cols());
    let k = a.cols().min(b.rows());
    if m == 0 || n == 0 || k == 0 {
        return true;
    }
    let kc_blk = kc::<T>().min(k);
    // A is read in place unless its rows are a multiple of 4 KiB apart: then
    // the rows of a tile all fall in one set of the L1 cache and evict each
    // other (f64 at n = 512 ran at 80 % of its speed at n = 256), and A is
    // packed in blocks of MC rows instead. Packing it always cost more than
    // it saved on f32 (the strided copy, and B packed again per block).
    let pack = packs_a(&a, m);
    let mc_blk = if pack { MC.min(m.div_ceil(MR) * MR) } else { m };
    // Both buffers start on a 64-byte boundary, so that no vector load of a
    // B panel straddles two cache lines (a scratch array is only aligned to
    // its element).
    let line = 64 / T::BYTES;
    let skip = (line - (scratch.as_ptr() as usize / T::BYTES) % line) % line;
    let a_len = if pack {
        (mc_blk * kc_blk).div_ceil(line) * line
    } else {
        0
    };
    let Some((abuf, bbuf)) = scratch
        .get_mut(skip..)
        .and_then(|s| s.split_at_mut_checked(a_len))
    else {
        return false;
    };
    let Some(bbuf) = bbuf.get_mut(..kc_blk * nr::<T>()) else {
        return false;
    };
    let mut p0 = 0;
    while p0 < k {
        let kc = kc_blk.min(k - p0);
        let add = acc == Accumulate::Add || p0 > 0;
        let mut i0 = 0;
        while i0 < m {
            let mc = mc_blk.min(m - i0);
            if pack {
                pack_a(a, i0, mc, p0, kc, abuf);
            }
            let pa = if pack { Some(&*abuf) } else { None };
            let mut j0 = 0;
            while j0 < n {
                let w = tile_cols::<T>(n - j0);
                let cols = w.min(n - j0);
                pack_b(b, j0, cols, w, p0, kc, bbuf);
                let pb = T::blocks(&*bbuf).0.get(..kc * w / T::LANES).unwrap_or(&[]);
                panel(
                    a,
                    pa,
                    BSrc::Packed(pb),
                    i0,
                    mc,
                    p0,
                    kc,
                    &mut c,
                    j0,
                    w,
                    cols,
                    add,
                );
                j0 += w;
            }
            i0 += mc;
        }
        p0 += kc;
    }
    true
}
