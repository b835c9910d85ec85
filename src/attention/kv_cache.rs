//! KV caches for incremental decoding: bounded and ring-buffer (sliding window),
//! in a const-capacity no_std form ([`KvCache`]) and a runtime-capacity `std`
//! form ([`KvCacheDyn`]), plus attention over a cache ([`attend_cache_views_with`]) and
//! beam reordering ([`reorder_beams`]).
//!
//! # Layout and conventions
//!
//! * Only the `KV_HEADS` key/value heads are stored (grouped- and multi-query
//!   models store fewer heads than they have query heads). Storage is head-major
//!   and per head contiguous, `[[[T; D]; CAP]; KV_HEADS]`: one head's keys are a
//!   `(CAP, D)` [`MatRef`] that feeds `gemm_bt` directly.
//! * Positions are absolute and never re-based. Keys are stored as given: apply
//!   RoPE (or any rotation) *before* appending, and a rotated key is never
//!   rotated again; learned position tables keep counting past the capacity.
//! * [`CachePolicy::Bounded`]: position `p` lives in slot `p`; appending past the
//!   capacity is [`Error::CacheFull`] (and appends nothing).
//! * [`CachePolicy::Ring`] (sliding window `W = CAP`): position `p` lives in slot
//!   `p mod CAP`; the cache holds the last `CAP` positions, and attention over it
//!   sees the last `CAP` keys including the current token (HF / Mistral). Every
//!   slot reports its absolute position ([`KvStore::slot_position`]).
//! * [`KvStore::truncate`]`(p)` keeps positions `< p`; only positions still held
//!   can be kept, otherwise [`Error::PositionNotHeld`].
//!
//! ```
//! use constml::attention::{KvCache, KvStore, CachePolicy};
//! // 2 kv heads of width 4, room for 3 positions, sliding window.
//! static EMPTY: KvCache<f32, 2, 4, 3> = KvCache::new_ring();
//! let mut c = EMPTY.clone();
//! for p in 0..5 {
//!     let k = [[p as f32; 4]; 2];
//!     assert_eq!(c.append(&k, &k)?, p);
//! }
//! assert_eq!((c.oldest_position(), c.next_position()), (2, 5));
//! assert_eq!(c.slot_position(0), Some(3)); // 3 mod 3 = 0
//! assert_eq!(c.key(1, 4), Some(&[4.0f32; 4][..]));
//! assert!(c.truncate(1).is_err()); // position 1 is gone
//! c.truncate(4)?;
//! assert_eq!(c.next_position(), 4);
//! # Ok::<(), constml::Error>(())
//! ```
//!
//! A const-shaped cache must have at least one head, one dimension and one slot:
//!
//! ```compile_fail,E0080
//! let c = constml::attention::KvCache::<f32, 1, 4, 0>::new();
//! ```

use super::gqa::{HeadsKv, WeightsOut, gqa_views_with, group_size};
use super::nested;
use super::sdpa::{AttnOptions, KeyPositions, QueryPos};
use crate::backend::{Backend, Simd};
use crate::error::{Error, Result, check_len};
use crate::mat::{MatMut, MatRef};
use crate::real::Real;

/// What happens when a cache is full.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum CachePolicy {
    /// Position `p` in slot `p`; appending past the capacity is
    /// [`Error::CacheFull`].
    #[default]
    Bounded,
    /// Ring buffer / sliding window: position `p` in slot `p mod CAP`; the cache
    /// keeps the last `CAP` positions.
    Ring,
}

/// A run of held positions in consecutive slots (bookkeeping behind
/// [`KvStore`]; hidden from the docs).
#[doc(hidden)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SlotRun {
    /// First slot.
    pub slot: usize,
    /// Number of slots.
    pub len: usize,
    /// Absolute position of the first slot (the others follow consecutively).
    pub first_position: usize,
}

const DONE: usize = usize::MAX;

/// The bookkeeping of a cache: policy, capacity and the held positions
/// `oldest .. next` (behind [`KvStore`]'s queries; hidden from the docs).
#[doc(hidden)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CacheLedger {
    policy: CachePolicy,
    capacity: usize,
    oldest: usize,
    next: usize,
    /// Private work field of `reorder_beams` (`DONE` outside it).
    tag: usize,
}

impl CacheLedger {
    const fn new(policy: CachePolicy, capacity: usize) -> Self {
        Self {
            policy,
            capacity,
            oldest: 0,
            next: 0,
            tag: DONE,
        }
    }

    /// The policy.
    pub fn policy(&self) -> CachePolicy {
        self.policy
    }
    /// Capacity in positions.
    pub fn capacity(&self) -> usize {
        self.capacity
    }
    /// The oldest absolute position held (equal to `next` when empty).
    pub fn oldest(&self) -> usize {
        self.oldest
    }
    /// The next absolute position to be written (one past the newest held).
    pub fn next(&self) -> usize {
        self.next
    }
    /// Number of positions held.
    pub fn len(&self) -> usize {
        self.next - self.oldest
    }
    /// `true` when nothing is held.
    pub fn is_empty(&self) -> bool {
        self.next == self.oldest
    }

    fn reserve(&self, n: usize) -> Result<()> {
        let full = Error::CacheFull {
            capacity: self.capacity,
        };
        if self.capacity == 0 {
            return Err(full);
        }
        let end = self.next.checked_add(n).ok_or(full)?;
        if self.policy == CachePolicy::Bounded && end > self.capacity {
            return Err(full);
        }
        Ok(())
    }

    #[inline]
    fn slot(&self, pos: usize) -> usize {
        match self.policy {
            CachePolicy::Bounded => pos,
            CachePolicy::Ring => pos.checked_rem(self.capacity).unwrap_or(0),
        }
    }

    fn advance(&mut self, n: usize) {
        self.next = self.next.saturating_add(n);
        if self.policy == CachePolicy::Ring {
            self.oldest = self.oldest.max(self.next.saturating_sub(self.capacity));
        }
    }

    /// The held positions as at most two runs of consecutive slots, oldest first.
    pub fn runs(&self) -> ([SlotRun; 2], usize) {
        let mut r = [SlotRun::default(); 2];
        let len = self.len();
        if len == 0 {
            return (r, 0);
        }
        let s0 = self.slot(self.oldest);
        let first = len.min(self.capacity.saturating_sub(s0));
        r[0] = SlotRun {
            slot: s0,
            len: first,
            first_position: self.oldest,
        };
        if first == len {
            return (r, 1);
        }
        r[1] = SlotRun {
            slot: 0,
            len: len - first,
            first_position: self.oldest + first,
        };
        (r, 2)
    }

    /// Drops the positions from `pos` on.
    pub fn truncate(&mut self, pos: usize) -> Result<()> {
        if pos < self.oldest || pos > self.next {
            return Err(Error::PositionNotHeld {
                position: pos,
                oldest: self.oldest,
                next: self.next,
            });
        }
        self.next = pos;
        Ok(())
    }

    fn reset(&mut self) {
        self.oldest = 0;
        self.next = 0;
    }
}

/// Borrowed parts of a cache (implementation detail of [`KvStore`]).
#[doc(hidden)]
#[derive(Debug)]
pub struct RawCache<'a, T> {
    pub(crate) keys: &'a [T],
    pub(crate) values: &'a [T],
    pub(crate) kv_heads: usize,
    pub(crate) head_dim: usize,
    pub(crate) ledger: &'a CacheLedger,
}

/// Mutably borrowed parts of a cache (implementation detail of [`KvStore`]).
#[doc(hidden)]
#[derive(Debug)]
pub struct RawCacheMut<'a, T> {
    pub(crate) keys: &'a mut [T],
    pub(crate) values: &'a mut [T],
    pub(crate) kv_heads: usize,
    pub(crate) head_dim: usize,
    pub(crate) ledger: &'a mut CacheLedger,
}

mod sealed {
    pub trait Sealed {}
}

/// The operations shared by [`KvCache`] (const capacity) and [`KvCacheDyn`]
/// (runtime capacity, `std`): one implementation for both. Sealed.
pub trait KvStore<T: Real>: sealed::Sealed {
    #[doc(hidden)]
    fn raw(&self) -> RawCache<'_, T>;
    #[doc(hidden)]
    fn raw_mut(&mut self) -> RawCacheMut<'_, T>;

    /// The bookkeeping: policy, capacity, held positions.
    #[doc(hidden)]
    fn ledger(&self) -> CacheLedger {
        *self.raw().ledger
    }
    /// Number of key/value heads stored.
    fn kv_heads(&self) -> usize {
        self.raw().kv_heads
    }
    /// Width of one head.
    fn head_dim(&self) -> usize {
        self.raw().head_dim
    }
    /// Capacity in positions.
    fn capacity(&self) -> usize {
        self.raw().ledger.capacity
    }
    /// The policy.
    fn policy(&self) -> CachePolicy {
        self.raw().ledger.policy
    }
    /// Number of positions held.
    fn len(&self) -> usize {
        self.raw().ledger.len()
    }
    /// `true` when nothing is held.
    fn is_empty(&self) -> bool {
        self.raw().ledger.is_empty()
    }
    /// The next absolute position to be written (one past the newest held).
    fn next_position(&self) -> usize {
        self.raw().ledger.next
    }
    /// The oldest absolute position held (equal to [`next_position`](Self::next_position) when empty).
    fn oldest_position(&self) -> usize {
        self.raw().ledger.oldest
    }

    /// The absolute position held in `slot`, or `None` if the slot holds none.
    fn slot_position(&self, slot: usize) -> Option<usize> {
        let l = self.raw().ledger;
        if slot >= l.capacity {
            return None;
        }
        let p = match l.policy {
            CachePolicy::Bounded => slot,
            CachePolicy::Ring => {
                let o = l.oldest % l.capacity;
                l.oldest + (slot + l.capacity - o) % l.capacity
            }
        };
        (p >= l.oldest && p < l.next).then_some(p)
    }

    /// The slot holding absolute position `pos`, or `None` if it is not held.
    fn position_slot(&self, pos: usize) -> Option<usize> {
        let l = self.raw().ledger;
        (pos >= l.oldest && pos < l.next).then(|| l.slot(pos))
    }

    /// All `CAP` key slots of kv head `g` as a `(CAP, D)` view (slot order;
    /// see [`slot_position`](Self::slot_position) for what each slot holds).
    fn head_keys(&self, g: usize) -> Result<MatRef<'_, T>> {
        head_view(self.raw().keys, &self.raw(), g)
    }
    /// All `CAP` value slots of kv head `g` as a `(CAP, D)` view.
    fn head_values(&self, g: usize) -> Result<MatRef<'_, T>> {
        head_view(self.raw().values, &self.raw(), g)
    }
    /// The key of kv head `g` at absolute position `pos`, if held.
    fn key(&self, g: usize, pos: usize) -> Option<&[T]> {
        let slot = self.position_slot(pos)?;
        self.head_keys(g).ok()?.row(slot)
    }
    /// The value of kv head `g` at absolute position `pos`, if held.
    fn value(&self, g: usize, pos: usize) -> Option<&[T]> {
        let slot = self.position_slot(pos)?;
        self.head_values(g).ok()?.row(slot)
    }

    /// `Ok` if `n` more positions can be appended (always, for a ring buffer),
    /// else [`Error::CacheFull`].
    fn check_append(&self, n: usize) -> Result<()> {
        self.raw().ledger.reserve(n)
    }

    /// Appends `n` tokens: keys and values `(n, KV_HEADS·D)`, head `g` in
    /// columns `g·D ..` (the layout of a k/v projection). Returns the absolute
    /// position of the first. Bounded: `Err(CacheFull)` (nothing appended) if
    /// they do not fit. Ring: a chunk longer than the capacity leaves its last
    /// `CAP` tokens.
    fn append_rows(&mut self, k: MatRef<'_, T>, v: MatRef<'_, T>) -> Result<usize> {
        let c = self.raw_mut();
        let width = c.kv_heads.saturating_mul(c.head_dim);
        let n = k.rows();
        for (what, m) in [("append: keys", k), ("append: values", v)] {
            if m.shape() != (n, width) {
                return Err(Error::ShapeMismatch {
                    what,
                    expected: (n, width),
                    found: m.shape(),
                });
            }
        }
        c.ledger.reserve(n)?;
        let first = c.ledger.next;
        let d = c.head_dim;
        let cap = c.ledger.capacity;
        for r in n.saturating_sub(cap)..n {
            let slot = c.ledger.slot(first + r);
            let (kr, vr) = (k.row_or_empty(r), v.row_or_empty(r));
            for g in 0..c.kv_heads {
                let at = (g * cap + slot) * d;
                let src = g * d..(g + 1) * d;
                if let (Some(dst), Some(src)) = (c.keys.get_mut(at..at + d), kr.get(src.clone())) {
                    dst.copy_from_slice(src);
                }
                if let (Some(dst), Some(src)) = (c.values.get_mut(at..at + d), vr.get(src)) {
                    dst.copy_from_slice(src);
                }
            }
        }
        c.ledger.advance(n);
        Ok(first)
    }

    /// Appends one token: `k` and `v` of length `KV_HEADS·D`. Returns its position.
    fn append_token(&mut self, k: &[T], v: &[T]) -> Result<usize> {
        self.append_rows(MatRef::row_vector(k), MatRef::row_vector(v))
    }

    /// Keeps positions `< pos` (drops the newer ones). `pos` must lie in
    /// `oldest ..= next`: otherwise [`Error::PositionNotHeld`].
    fn truncate(&mut self, pos: usize) -> Result<()> {
        self.raw_mut().ledger.truncate(pos)
    }

    /// Empties the cache; the next position is 0 again.
    fn reset(&mut self) {
        self.raw_mut().ledger.reset();
    }

    /// Makes this cache a copy of `src` (beam search: a beam continues from
    /// another beam's state). Only the held slots are copied. The two caches must
    /// have the same heads, dimension, capacity and policy.
    fn copy_from(&mut self, src: &Self) -> Result<()>
    where
        Self: Sized,
    {
        let s = src.raw();
        let d = self.raw_mut();
        if (d.kv_heads, d.head_dim, d.ledger.capacity, d.ledger.policy)
            != (s.kv_heads, s.head_dim, s.ledger.capacity, s.ledger.policy)
        {
            return Err(Error::InvalidParameter {
                what: "KV cache copy",
                reason: "the caches differ in heads, dimension, capacity or policy",
            });
        }
        let (runs, nr) = s.ledger.runs();
        let (cap, dim) = (s.ledger.capacity, s.head_dim);
        for run in runs.iter().take(nr) {
            for g in 0..s.kv_heads {
                let a = (g * cap + run.slot) * dim;
                let r = a..a + run.len * dim;
                if let (Some(x), Some(y)) = (d.keys.get_mut(r.clone()), s.keys.get(r.clone())) {
                    x.copy_from_slice(y);
                }
                if let (Some(x), Some(y)) = (d.values.get_mut(r.clone()), s.values.get(r)) {
                    x.copy_from_slice(y);
                }
            }
        }
        let tag = d.ledger.tag;
        *d.ledger = *s.ledger;
        d.ledger.tag = tag;
        Ok(())
    }

    /// The held keys and values as at most two head-major runs, oldest first.
    fn held(&self) -> ([HeadsKv<'_, T>; 2], usize) {
        let c = self.raw();
        let (runs, n) = c.ledger.runs();
        let rows = c.kv_heads.saturating_mul(c.ledger.capacity);
        let keys = MatRef::new(c.keys, rows, c.head_dim);
        let values = MatRef::new(c.values, rows, c.head_dim);
        let (Ok(keys), Ok(values)) = (keys, values) else {
            // Unreachable: storage is allocated to exactly this shape.
            let e = HeadsKv::head_major(
                MatRef::from_array::<0, 0>(&[]),
                MatRef::from_array::<0, 0>(&[]),
                0,
                0,
                0,
                KeyPositions::Range(0),
            );
            return ([e; 2], 0);
        };
        let mk = |r: SlotRun| {
            HeadsKv::head_major(
                keys,
                values,
                c.ledger.capacity,
                r.slot,
                r.len,
                KeyPositions::Range(r.first_position),
            )
        };
        ([mk(runs[0]), mk(runs[1])], n)
    }
}

fn head_view<'a, T>(data: &'a [T], c: &RawCache<'_, T>, g: usize) -> Result<MatRef<'a, T>> {
    if g >= c.kv_heads {
        return Err(Error::OutOfRange {
            what: "KV cache head",
            index: g,
            len: c.kv_heads,
        });
    }
    let cap = c.ledger.capacity;
    MatRef::new(data, c.kv_heads.saturating_mul(cap), c.head_dim)?.row_range(g * cap, cap)
}

/// A KV cache with const shape: `KVH` key/value heads of width `D`, `CAP`
/// positions. Plain nested arrays, built by a `const fn`, so it can live in a
/// `static` (firmware) or on the stack; its size is
/// [`KvCache::BYTES`] `= 2·KVH·CAP·D·size_of::<T>()` plus a few words.
///
/// The operations come from [`KvStore`] (bring it into scope); the const-shaped
/// [`append`](KvCache::append) and [`append_chunk`](KvCache::append_chunk) are
/// inherent.
#[derive(Clone, Debug)]
pub struct KvCache<T, const KVH: usize, const D: usize, const CAP: usize> {
    keys: [[[T; D]; CAP]; KVH],
    values: [[[T; D]; CAP]; KVH],
    ledger: CacheLedger,
}

/// Inherent forwards of the most used [`KvStore`] methods, so that a cache can
/// be queried without importing the trait.
macro_rules! inherent_cache_queries {
    () => {
        /// Number of positions held (see [`KvStore::len`]).
        #[inline]
        pub fn len(&self) -> usize {
            KvStore::len(self)
        }
        /// `true` when nothing is held.
        #[inline]
        pub fn is_empty(&self) -> bool {
            KvStore::is_empty(self)
        }
        /// Capacity in positions.
        #[inline]
        pub fn capacity(&self) -> usize {
            KvStore::capacity(self)
        }
        /// The policy (bounded or ring).
        #[inline]
        pub fn policy(&self) -> CachePolicy {
            KvStore::policy(self)
        }
        /// The next absolute position to be written (see [`KvStore::next_position`]).
        #[inline]
        pub fn next_position(&self) -> usize {
            KvStore::next_position(self)
        }
        /// The oldest absolute position held (see [`KvStore::oldest_position`]).
        #[inline]
        pub fn oldest_position(&self) -> usize {
            KvStore::oldest_position(self)
        }
        /// Drops every position from `pos` on (see [`KvStore::truncate`]).
        #[inline]
        pub fn truncate(&mut self, pos: usize) -> Result<()> {
            KvStore::truncate(self, pos)
        }
        /// Empties the cache (see [`KvStore::reset`]).
        #[inline]
        pub fn reset(&mut self) {
            KvStore::reset(self)
        }
    };
}

impl<T: Real, const KVH: usize, const D: usize, const CAP: usize> KvCache<T, KVH, D, CAP> {
    inherent_cache_queries!();

    /// Size of the cache in bytes (for memory planning).
    pub const BYTES: usize = core::mem::size_of::<Self>();

    /// An empty bounded cache.
    pub const fn new() -> Self {
        Self::with_policy(CachePolicy::Bounded)
    }

    /// An empty ring-buffer (sliding window of `CAP`) cache.
    pub const fn new_ring() -> Self {
        Self::with_policy(CachePolicy::Ring)
    }

    /// An empty cache with the given policy.
    pub const fn with_policy(policy: CachePolicy) -> Self {
        const {
            assert!(
                KVH > 0 && D > 0 && CAP > 0,
                "KvCache: KVH, D and CAP must be at least 1"
            );
        };
        Self {
            keys: [[[T::ZERO; D]; CAP]; KVH],
            values: [[[T::ZERO; D]; CAP]; KVH],
            ledger: CacheLedger::new(policy, CAP),
        }
    }

    /// Appends one token's keys and values (one row per kv head); returns its
    /// absolute position. Bounded and full: [`Error::CacheFull`].
    pub fn append(&mut self, k: &[[T; D]; KVH], v: &[[T; D]; KVH]) -> Result<usize> {
        self.append_token(k.as_flattened(), v.as_flattened())
    }

    /// Appends `N` tokens; returns the position of the first. See
    /// [`KvStore::append_rows`].
    pub fn append_chunk<const N: usize>(
        &mut self,
        k: &[[[T; D]; KVH]; N],
        v: &[[[T; D]; KVH]; N],
    ) -> Result<usize> {
        self.append_rows(nested(k)?, nested(v)?)
    }

    /// The keys of kv head `g`, all `CAP` slots.
    pub fn keys_array(&self, g: usize) -> Option<&[[T; D]; CAP]> {
        self.keys.get(g)
    }

    /// The values of kv head `g`, all `CAP` slots.
    pub fn values_array(&self, g: usize) -> Option<&[[T; D]; CAP]> {
        self.values.get(g)
    }
}

impl<T: Real, const KVH: usize, const D: usize, const CAP: usize> Default
    for KvCache<T, KVH, D, CAP>
{
    fn default() -> Self {
        Self::new()
    }
}

impl<T, const KVH: usize, const D: usize, const CAP: usize> sealed::Sealed
    for KvCache<T, KVH, D, CAP>
{
}

impl<T: Real, const KVH: usize, const D: usize, const CAP: usize> KvStore<T>
    for KvCache<T, KVH, D, CAP>
{
    fn raw(&self) -> RawCache<'_, T> {
        RawCache {
            keys: self.keys.as_flattened().as_flattened(),
            values: self.values.as_flattened().as_flattened(),
            kv_heads: KVH,
            head_dim: D,
            ledger: &self.ledger,
        }
    }
    fn raw_mut(&mut self) -> RawCacheMut<'_, T> {
        RawCacheMut {
            keys: self.keys.as_flattened_mut().as_flattened_mut(),
            values: self.values.as_flattened_mut().as_flattened_mut(),
            kv_heads: KVH,
            head_dim: D,
            ledger: &mut self.ledger,
        }
    }
}

/// A KV cache over caller-provided storage with a runtime shape, for
/// `no_std` code whose sizes are not compile-time constants (a model read
/// from a checkpoint): `keys` and `values` hold `kv_heads · capacity ·
/// head_dim` elements each, head-major like [`KvCache`]; the capacity is
/// their length over `kv_heads · head_dim`. The same semantics as the other
/// caches ([`KvStore`]).
///
/// The bookkeeping can be taken out ([`KvCacheView::ledger`]) and given back
/// to a new view of the same storage ([`KvCacheView::resume`]), so that a
/// caller that cannot keep the borrow (a model walking its layers' caches
/// in turn) keeps the positions.
///
/// ```
/// use constml::attention::{CachePolicy, KvCacheView, KvStore};
/// let (mut k, mut v) = ([0.0f32; 2 * 4 * 8], [0.0f32; 2 * 4 * 8]); // 2 heads, 4 positions, width 8
/// let mut c = KvCacheView::new(&mut k, &mut v, 2, 8, CachePolicy::Bounded)?;
/// assert_eq!(c.capacity(), 4);
/// c.append_token(&[1.0; 16], &[2.0; 16])?;
/// let ledger = c.ledger();
/// let c = KvCacheView::resume(&mut k, &mut v, 2, 8, ledger)?;
/// assert_eq!(c.len(), 1);
/// # Ok::<(), constml::Error>(())
/// ```
#[derive(Debug)]
pub struct KvCacheView<'a, T> {
    keys: &'a mut [T],
    values: &'a mut [T],
    kv_heads: usize,
    head_dim: usize,
    ledger: CacheLedger,
}

impl<'a, T: Real> KvCacheView<'a, T> {
    inherent_cache_queries!();

    /// An empty cache over `keys` and `values`. `Err` for zero sizes, storage
    /// of different lengths or not a whole number of positions, or no room
    /// for one position.
    pub fn new(
        keys: &'a mut [T],
        values: &'a mut [T],
        kv_heads: usize,
        head_dim: usize,
        policy: CachePolicy,
    ) -> Result<Self> {
        let row = kv_heads.checked_mul(head_dim).unwrap_or(0);
        if row == 0
            || keys.len() != values.len()
            || !keys.len().is_multiple_of(row)
            || keys.len() < row
        {
            return Err(Error::InvalidParameter {
                what: "KvCacheView::new",
                reason: "keys and values must hold the same whole number (≥ 1) of positions of kv_heads · head_dim",
            });
        }
        let capacity = keys.len() / row;
        Ok(Self {
            keys,
            values,
            kv_heads,
            head_dim,
            ledger: CacheLedger::new(policy, capacity),
        })
    }

    /// A view of storage that already holds the positions `ledger` records
    /// (taken from an earlier view of the same storage). `Err` when the
    /// storage does not match the ledger's capacity.
    pub fn resume(
        keys: &'a mut [T],
        values: &'a mut [T],
        kv_heads: usize,
        head_dim: usize,
        ledger: CacheLedger,
    ) -> Result<Self> {
        let mut view = Self::new(keys, values, kv_heads, head_dim, ledger.policy)?;
        if view.ledger.capacity != ledger.capacity {
            return Err(Error::ShapeMismatch {
                what: "KvCacheView::resume: capacity",
                expected: (ledger.capacity, 1),
                found: (view.ledger.capacity, 1),
            });
        }
        view.ledger = ledger;
        Ok(view)
    }

    /// The bookkeeping (policy, capacity, held positions), for
    /// [`resume`](Self::resume).
    pub fn ledger(&self) -> CacheLedger {
        self.ledger
    }
}

impl CacheLedger {
    /// The bookkeeping of an empty cache.
    pub const fn empty(policy: CachePolicy, capacity: usize) -> Self {
        Self::new(policy, capacity)
    }
}

impl<T> sealed::Sealed for KvCacheView<'_, T> {}

impl<T: Real> KvStore<T> for KvCacheView<'_, T> {
    fn raw(&self) -> RawCache<'_, T> {
        RawCache {
            keys: self.keys,
            values: self.values,
            kv_heads: self.kv_heads,
            head_dim: self.head_dim,
            ledger: &self.ledger,
        }
    }
    fn raw_mut(&mut self) -> RawCacheMut<'_, T> {
        RawCacheMut {
            keys: self.keys,
            values: self.values,
            kv_heads: self.kv_heads,
            head_dim: self.head_dim,
            ledger: &mut self.ledger,
        }
    }
}

fn tag<T: Real, C: KvStore<T>>(c: &C) -> usize {
    c.raw().ledger.tag
}
fn set_tag<T: Real, C: KvStore<T>>(c: &mut C, t: usize) {
    c.raw_mut().ledger.tag = t;
}

/// `caches[dst] = caches[src]` within one slice (`dst != src`).
fn copy_within<T: Real, C: KvStore<T>>(caches: &mut [C], dst: usize, src: usize) -> Result<()> {
    let oops = Error::OutOfRange {
        what: "reorder_beams: beam",
        index: dst.max(src),
        len: caches.len(),
    };
    if dst < src {
        let (a, b) = caches.split_at_mut(src);
        let (Some(d), Some(s)) = (a.get_mut(dst), b.first()) else {
            return Err(oops);
        };
        d.copy_from(s)
    } else {
        let (a, b) = caches.split_at_mut(dst);
        let (Some(s), Some(d)) = (a.get(src), b.first_mut()) else {
            return Err(oops);
        };
        d.copy_from(s)
    }
}

/// Reorders beams in place for beam search: afterwards cache `i` holds what
/// cache `parents[i]` held before (parents may repeat; unused beams are
/// dropped). No allocation: copies where a beam's old state is no longer
/// needed, swaps along cycles. All caches must share heads, dimension,
/// capacity and policy.
///
/// ```
/// use constml::attention::{KvCache, KvStore, reorder_beams};
/// let mut beams = [KvCache::<f32, 1, 1, 4>::new(), KvCache::new(), KvCache::new()];
/// for (b, c) in beams.iter_mut().enumerate() {
///     c.append(&[[b as f32]], &[[b as f32]])?;
/// }
/// reorder_beams(&mut beams, &[2, 0, 0])?;
/// let firsts: Vec<f32> = beams.iter().map(|c| c.key(0, 0).unwrap()[0]).collect();
/// assert_eq!(firsts, [2.0, 0.0, 0.0]);
/// assert!(reorder_beams(&mut beams, &[0, 0, 3]).is_err());
/// # Ok::<(), constml::Error>(())
/// ```
pub fn reorder_beams<T: Real, C: KvStore<T>>(caches: &mut [C], parents: &[usize]) -> Result<()> {
    let n = caches.len();
    check_len("reorder_beams: parents", n, parents.len())?;
    if let Some(&p) = parents.iter().find(|&&p| p >= n) {
        return Err(Error::OutOfRange {
            what: "reorder_beams: parent",
            index: p,
            len: n,
        });
    }
    if let Some(first) = caches.first() {
        let shape = |c: &C| (c.kv_heads(), c.head_dim(), c.capacity(), c.policy());
        let s0 = shape(first);
        if caches.iter().any(|c| shape(c) != s0) {
            return Err(Error::InvalidParameter {
                what: "reorder_beams",
                reason: "the caches differ in heads, dimension, capacity or policy",
            });
        }
    }
    for (i, (c, &p)) in caches.iter_mut().zip(parents).enumerate() {
        set_tag(c, if p == i { DONE } else { p });
    }
    // Copy into every beam whose old state nobody still needs, until none is left.
    loop {
        let mut progress = false;
        for i in 0..n {
            let src = caches.get(i).map_or(DONE, tag);
            if src == DONE || caches.iter().any(|c| tag(c) == i) {
                continue;
            }
            copy_within(caches, i, src)?;
            if let Some(c) = caches.get_mut(i) {
                set_tag(c, DONE);
            }
            progress = true;
        }
        if !progress {
            break;
        }
    }
    // What remains are cycles of a permutation: rotate each by swaps.
    for i in 0..n {
        let mut cur = i;
        loop {
            let p = caches.get(cur).map_or(DONE, tag);
            if p == DONE {
                break;
            }
            if let Some(c) = caches.get_mut(cur) {
                set_tag(c, DONE);
            }
            if p == i {
                break;
            }
            let tp = caches.get(p).map_or(DONE, tag);
            caches.swap(cur, p);
            if let Some(c) = caches.get_mut(cur) {
                set_tag(c, DONE);
            }
            if let Some(c) = caches.get_mut(p) {
                set_tag(c, tp);
            }
            cur = p;
        }
    }
    Ok(())
}

/// Scratch elements [`attend_cache_views_with`] needs for `nq` queries over a cache of
/// `capacity` positions, counting `nq` pending tokens: `nq · (capacity + nq)`
/// (the minimum; for a decode step of a grouped-query model,
/// [`gqa_scratch_len`](super::gqa_scratch_len)`(1, capacity + 1, heads, kv_heads)`
/// is faster).
pub const fn attend_cache_scratch_len(nq: usize, capacity: usize) -> usize {
    nq.saturating_mul(capacity.saturating_add(nq))
}

/// Attention over a cache with the [`Simd`] backend; see [`attend_cache_views_with`].
#[allow(clippy::too_many_arguments)]
pub fn attend_cache_views<T: Real, C: KvStore<T>>(
    q: MatRef<'_, T>,
    query_start: usize,
    heads: usize,
    cache: &C,
    pending: Option<(MatRef<'_, T>, MatRef<'_, T>)>,
    out: MatMut<'_, T>,
    scratch: &mut [T],
    weights: WeightsOut<'_, T>,
    opts: &AttnOptions<'_, T>,
) -> Result<()> {
    attend_cache_views_with::<Simd, T, C>(
        q,
        query_start,
        heads,
        cache,
        pending,
        out,
        scratch,
        weights,
        opts,
    )
}

/// Causal (grouped-query) attention of new queries over a KV cache — the
/// "attend over cache" piece of a decoder.
///
/// * `q`: `(N, heads·D)`, query row `i` at absolute position `query_start + i`;
///   query head `h` reads kv head `h / (heads / KV_HEADS)`.
/// * `pending`: keys and values `(N', KV_HEADS·D)` of tokens **not yet
///   appended**, at positions `next_position() ..`. Two orders work:
///   - append first, then attend with `pending = None` (the usual decode step);
///   - attend with the chunk as `pending`, then append it. This is required for
///     a multi-token chunk into a ring buffer, whose appending would overwrite
///     keys the chunk's first queries still need (a chunk may even be longer
///     than the capacity).
/// * `out`: `(N, heads·D)`; `scratch`: at least `N · (held + N')` elements
///   ([`attend_cache_scratch_len`]); `weights`: optional weights.
///
/// Key columns (of the weights, and of a mask or bias in `opts`) are in
/// position order: the held keys oldest first, then the pending ones.
///
/// Causal masking by absolute position is always on; a ring buffer adds a
/// sliding window of its capacity (the smaller of that and `opts.window`).
/// Other options (bias hooks, key mask, scale) apply as in
/// [`attend_views_with`](super::attend_views_with); `opts.causal` and `opts.query_pos` are
/// overridden.
///
/// Errors: a query whose window reaches a position no longer held
/// ([`Error::PositionNotHeld`], e.g. appending a chunk into a ring buffer before
/// attending); queries newer than the newest key; shape mismatches.
#[allow(clippy::too_many_arguments)]
pub fn attend_cache_views_with<B: Backend, T: Real, C: KvStore<T>>(
    q: MatRef<'_, T>,
    query_start: usize,
    heads: usize,
    cache: &C,
    pending: Option<(MatRef<'_, T>, MatRef<'_, T>)>,
    out: MatMut<'_, T>,
    scratch: &mut [T],
    weights: WeightsOut<'_, T>,
    opts: &AttnOptions<'_, T>,
) -> Result<()> {
    let kvh = cache.kv_heads();
    group_size(heads, kvh)?;
    let l = cache.ledger();
    let n_pending = pending.map_or(0, |(k, _)| k.rows());
    let newest = l
        .next
        .checked_add(n_pending)
        .ok_or(Error::InvalidParameter {
            what: "attend_cache_views: pending",
            reason: "positions overflow usize",
        })?;
    let last = query_start
        .checked_add(q.rows())
        .ok_or(Error::InvalidParameter {
            what: "attend_cache_views: query_start",
            reason: "positions overflow usize",
        })?;
    if last > newest {
        return Err(Error::InvalidParameter {
            what: "attend_cache_views: query_start",
            reason: "queries are newer than the newest key (append, or pass the chunk as pending)",
        });
    }
    let window = match (l.policy, opts.window) {
        (CachePolicy::Ring, Some(w)) => Some(w.min(l.capacity)),
        (CachePolicy::Ring, None) => Some(l.capacity),
        (CachePolicy::Bounded, w) => w,
    };
    if q.rows() > 0 {
        let lo = window.map_or(0, |w| query_start.saturating_add(1).saturating_sub(w));
        if lo < l.oldest {
            return Err(Error::PositionNotHeld {
                position: lo,
                oldest: l.oldest,
                next: l.next,
            });
        }
    }
    let mut o = *opts;
    o.causal = true;
    o.window = window;
    o.query_pos = QueryPos::Start(query_start);

    let (held, nh) = cache.held();
    let mut runs = [held[0], held[1], held[1]];
    let mut nr = nh;
    if let (Some((k, v)), Some(r)) = (pending, runs.get_mut(nr)) {
        *r = HeadsKv::packed(k, v, KeyPositions::Range(l.next));
        nr += 1;
    }
    gqa_views_with::<B, T>(q, &runs[..nr], heads, kvh, out, scratch, weights, &o)
}

/// A chunk's step over a cache: attention of the chunk's queries over the held
/// keys with the chunk's own keys and values pending (so a chunk longer than a
/// ring buffer still sees exactly its sliding windows), then the append. The
/// chunk's first token sits at the cache's next position; `heads` is
/// `(query heads, kv heads)` and must match the cache. A full bounded cache is
/// [`Error::CacheFull`] with nothing changed.
#[allow(clippy::too_many_arguments)]
pub(crate) fn attend_then_append_with<B: Backend, T: Real, C: KvStore<T>>(
    q: MatRef<'_, T>,
    k: MatRef<'_, T>,
    v: MatRef<'_, T>,
    heads: (usize, usize),
    cache: &mut C,
    ctx: MatMut<'_, T>,
    scores: &mut [T],
    weights: WeightsOut<'_, T>,
    opts: &AttnOptions<'_, T>,
) -> Result<()> {
    let (heads, kv_heads) = heads;
    if cache.kv_heads() != kv_heads {
        return Err(Error::InvalidParameter {
            what: "attention: cache",
            reason: "the cache stores a different number of kv heads",
        });
    }
    cache.check_append(k.rows())?;
    let start = cache.next_position();
    attend_cache_views_with::<B, T, C>(
        q,
        start,
        heads,
        cache,
        Some((k, v)),
        ctx,
        scores,
        weights,
        opts,
    )?;
    cache.append_rows(k, v).map(|_| ())
}

#[cfg(feature = "std")]
mod dynamic {
    use super::*;
    use std::vec::Vec;

    /// A KV cache with runtime shape (feature `std`): the same semantics and
    /// layout as [`KvCache`], storage allocated once by [`KvCacheDyn::new`] and
    /// never grown past its capacity.
    #[derive(Clone, Debug)]
    pub struct KvCacheDyn<T> {
        keys: Vec<T>,
        values: Vec<T>,
        kv_heads: usize,
        head_dim: usize,
        ledger: CacheLedger,
    }

    impl<T: Real> KvCacheDyn<T> {
        inherent_cache_queries!();

        /// An empty cache of `kv_heads` heads of width `head_dim` and room for
        /// `capacity` positions. Zero sizes or a size overflow are an `Err`.
        ///
        /// ```
        /// use constml::attention::{KvCacheDyn, KvStore, CachePolicy};
        /// let mut c = KvCacheDyn::<f32>::new(2, 8, 16, CachePolicy::Bounded)?;
        /// assert_eq!(c.bytes(), 2 * 2 * 8 * 16 * 4);
        /// let k = vec![0.5f32; 2 * 8];
        /// assert_eq!(c.append_token(&k, &k)?, 0);
        /// assert!(KvCacheDyn::<f32>::new(2, 8, 0, CachePolicy::Ring).is_err());
        /// # Ok::<(), constml::Error>(())
        /// ```
        pub fn new(
            kv_heads: usize,
            head_dim: usize,
            capacity: usize,
            policy: CachePolicy,
        ) -> Result<Self> {
            if kv_heads == 0 || head_dim == 0 || capacity == 0 {
                return Err(Error::InvalidParameter {
                    what: "KvCacheDyn::new",
                    reason: "kv_heads, head_dim and capacity must be at least 1",
                });
            }
            let n = kv_heads
                .checked_mul(head_dim)
                .and_then(|x| x.checked_mul(capacity))
                .ok_or(Error::InvalidParameter {
                    what: "KvCacheDyn::new",
                    reason: "kv_heads · head_dim · capacity overflows usize",
                })?;
            Ok(Self {
                keys: crate::matrix::zeros_vec("KvCacheDyn::new", n)?,
                values: crate::matrix::zeros_vec("KvCacheDyn::new", n)?,
                kv_heads,
                head_dim,
                ledger: CacheLedger::new(policy, capacity),
            })
        }

        /// Bytes of key and value storage.
        pub fn bytes(&self) -> usize {
            (self.keys.len() + self.values.len()) * core::mem::size_of::<T>()
        }
    }

    impl<T> sealed::Sealed for KvCacheDyn<T> {}

    impl<T: Real> KvStore<T> for KvCacheDyn<T> {
        fn raw(&self) -> RawCache<'_, T> {
            RawCache {
                keys: &self.keys,
                values: &self.values,
                kv_heads: self.kv_heads,
                head_dim: self.head_dim,
                ledger: &self.ledger,
            }
        }
        fn raw_mut(&mut self) -> RawCacheMut<'_, T> {
            RawCacheMut {
                keys: &mut self.keys,
                values: &mut self.values,
                kv_heads: self.kv_heads,
                head_dim: self.head_dim,
                ledger: &mut self.ledger,
            }
        }
    }
}

#[cfg(feature = "std")]
pub use dynamic::KvCacheDyn;
