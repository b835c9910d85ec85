//! Scaled dot-product attention: `softmax(Q·Kᵀ·scale + bias, masked) · V`.
//!
//! This file holds the one implementation every attention layer of constml runs
//! ([`attend_views_with`]), the options it takes ([`AttnOptions`]: scale, masks, bias,
//! causal alignment, sliding window, score hooks) and the plain SDPA entry points:
//!
//! | face | function | storage |
//! |---|---|---|
//! | const-generic | [`sdpa()`] / [`_with`](sdpa_with) | `&[[T; D]; N]` arrays |
//! | views (no_std, runtime shapes) | [`sdpa_views`] / [`_with`](sdpa_views_with) | [`MatRef`]/[`MatMut`] |
//! | `std` | [`sdpa_dyn`] / [`_with`](sdpa_dyn_with) | [`Matrix`](crate::Matrix), allocated |
//! | batched `(B, H, N, D)`, GQA | [`sdpa_batched_views`] (no_std) / [`sdpa_batched_dyn`] (`std`) | borrowed slices, [`AttnShape`] |
//!
//! # Conventions
//!
//! * **Scale** defaults to `1/√DK` (`1` when `DK = 0`); [`AttnOptions::scale`]
//!   overrides it.
//! * **Boolean masks name their meaning**: an *allow* mask ([`BoolMask::Allow`],
//!   `true` = may attend) is PyTorch SDPA's boolean `attn_mask`; a *block* mask
//!   ([`BoolMask::Block`], `true` = masked out) is `masked_fill(mask, -inf)` of
//!   the classic from-scratch code and `nn.MultiheadAttention`'s boolean masks.
//!   Per-key (padding) masks ([`KeyMask`]) follow the same naming.
//! * **A fully masked query row** gives an output row of zeros and zero weights,
//!   never NaN (PyTorch SDPA ≥ 2.5 does the same).
//! * **Causal masking is by absolute position**: query row `i` sits at a position
//!   ([`QueryPos`]) and every key carries one ([`KeyPositions`]); a query at
//!   position `p` sees keys at positions `≤ p`. The default query alignment is
//!   *bottom-right* (the last query sits at the last key's position), which is
//!   what a KV cache needs; PyTorch's `is_causal=True` aligns top-left instead,
//!   which is the same only when `NQ = NK`. Use [`QueryPos::Start`] for explicit
//!   positions.
//! * **Sliding window** `W` ([`AttnOptions::window`]): a query at `p` does not see
//!   keys at positions `≤ p − W`, so with causal masking it sees `W` keys including
//!   its own (HF / Mistral).
//! * **Order of operations** for one score: `q·k` (plus the Shaw key term
//!   `q·a^K`), times the scale, plus the float bias and the [`ScoreBias`] hook,
//!   then masks (`−∞`), then softmax; the output is `Σ α·v` plus the Shaw value
//!   term `Σ α·a^V`.
//! * **NaN** in q, k or v propagates to the affected output rows (a NaN score at
//!   a visible key makes its whole row NaN); nothing panics. A score that
//!   overflows to `+∞` (a huge scale or huge inputs) makes its row NaN too, as
//!   in PyTorch; one that overflows to `−∞` counts as masked. A NaN (or ∞) in
//!   the value of a key that a row masks out still reaches that row through
//!   the product `0·v` (as in PyTorch), except in a fully masked row, which is
//!   zeros whatever the values hold.
//! * **Keys and values pair up**: `k` and `v` have the same number of rows,
//!   even when it is 0 (then their widths are free and every row is fully
//!   masked).
//!
//! The attention weights live in a caller-owned scratch of `NQ·NK` elements
//! ([`sdpa_scratch_len`]); after a call it holds the softmax weights of the (last)
//! head, row-major `(NQ, NK)`.
//!
//! ```
//! use constml::attention::{sdpa, AttnOptions};
//! let q = [[1.0f32, 0.0]];
//! let k = [[1.0f32, 0.0], [0.0, 1.0]];
//! let v = [[1.0f32, 2.0], [3.0, 4.0]];
//! let mut out = [[0.0f32; 2]];
//! let mut w = [[0.0f32; 2]];
//! sdpa(&q, &k, &v, &mut out, &mut w, &AttnOptions::new())?;
//! let e = (1.0f32 / 2f32.sqrt()).exp();
//! let w0 = e / (e + 1.0);
//! assert!((w[0][0] - w0).abs() < 1e-6);
//! assert!((out[0][0] - (w0 * 1.0 + (1.0 - w0) * 3.0)).abs() < 1e-5);
//! # Ok::<(), constml::Error>(())
//! ```

use crate::backend::{Accumulate, Backend, Simd};
use crate::error::{Error, Result, check_len};
use crate::mat::{MatMut, MatRef};
use crate::real::Real;

/// Number of scratch elements (attention weights) one head of attention needs:
/// `nq · nk` (saturating).
pub const fn sdpa_scratch_len(nq: usize, nk: usize) -> usize {
    nq.saturating_mul(nk)
}

/// A boolean `(NQ, NK)` mask over scores, named by its polarity.
#[derive(Clone, Copy, Debug, Default)]
pub enum BoolMask<'a> {
    /// No mask.
    #[default]
    None,
    /// `true` = the query may attend to the key (PyTorch SDPA's boolean `attn_mask`).
    Allow(MatRef<'a, bool>),
    /// `true` = masked out (`masked_fill(mask, -inf)`, `nn.MultiheadAttention`).
    Block(MatRef<'a, bool>),
}

/// A boolean per-key mask of length `NK` (key padding), named by its polarity.
#[derive(Clone, Copy, Debug, Default)]
pub enum KeyMask<'a> {
    /// No mask.
    #[default]
    None,
    /// `true` = the key may be attended to (MPT's `attention_mask`, HF's padding mask).
    Allow(&'a [bool]),
    /// `true` = the key is ignored (`nn.MultiheadAttention`'s `key_padding_mask`).
    Block(&'a [bool]),
}

/// An additive float bias on the scaled scores.
#[derive(Clone, Copy, Debug, Default)]
pub enum Bias<'a, T> {
    /// No bias.
    #[default]
    None,
    /// One `(NQ, NK)` bias shared by every head (PyTorch's float `attn_mask`).
    Shared(MatRef<'a, T>),
    /// One `(NQ, NK)` bias per head, stacked: `(HEADS·NQ, NK)`, head `h` in rows
    /// `h·NQ .. (h+1)·NQ`.
    PerHead(MatRef<'a, T>),
}

/// Where the query rows sit in absolute positions (for causal masking, the
/// sliding window and the score hooks).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum QueryPos {
    /// Row `i` sits at `NK − NQ + i` (the last query at the last key, keys at
    /// `0..NK`): PyTorch's `causal_lower_right`. When `NQ > NK` the first rows
    /// sit before every key and causal masking masks them fully.
    #[default]
    BottomRight,
    /// Row `i` sits at `start + i`.
    Start(usize),
}

/// The absolute positions of a run of keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyPositions<'a> {
    /// Key `j` sits at `first + j`.
    Range(usize),
    /// Key `j` sits at `positions[j]` (the slice length must equal the key count).
    Explicit(&'a [usize]),
}

impl Default for KeyPositions<'_> {
    fn default() -> Self {
        KeyPositions::Range(0)
    }
}

impl KeyPositions<'_> {
    /// Position of key `j` (`usize::MAX` past an explicit list, which validated
    /// calls never reach).
    #[inline]
    pub fn at(&self, j: usize) -> usize {
        match *self {
            KeyPositions::Range(first) => first.saturating_add(j),
            KeyPositions::Explicit(p) => p.get(j).copied().unwrap_or(usize::MAX),
        }
    }
}

/// An additive score bias computed from `(head, query position, key position)`,
/// added after scaling — the hook through which ALiBi and T5-style relative
/// biases plug in.
///
/// Implemented for closures `Fn(usize, usize, usize) -> T`:
///
/// ```
/// use constml::attention::ScoreBias;
/// let alibi = |h: usize, i: usize, j: usize| -0.5f32 * (h + 1) as f32 * (i as f32 - j as f32);
/// assert_eq!(alibi.bias(0, 3, 1), -1.0);
/// ```
pub trait ScoreBias<T> {
    /// The bias added to the score of `query_pos` against `key_pos` in `head`.
    fn bias(&self, head: usize, query_pos: usize, key_pos: usize) -> T;

    /// The number of heads the hook has values for, if it knows: attention
    /// returns [`Error::OutOfRange`] for a head at or past it instead of
    /// reading a missing table column. `None` (the provided default) for hooks
    /// that take any head.
    fn heads(&self) -> Option<usize> {
        None
    }

    /// Adds the bias of one query row against a run of keys:
    /// `row[j] += bias(head, query_pos, keys.at(j))`. Attention calls this
    /// once per row and run of keys; the provided method is compiled per
    /// implementation, so its per-key calls of [`bias`](ScoreBias::bias) are
    /// static (inlinable) even when the hook is used as `dyn ScoreBias`.
    fn add_to_row(&self, head: usize, query_pos: usize, keys: KeyPositions<'_>, row: &mut [T])
    where
        T: core::ops::AddAssign,
    {
        for (j, x) in row.iter_mut().enumerate() {
            *x += self.bias(head, query_pos, keys.at(j));
        }
    }
}

impl<T, F: Fn(usize, usize, usize) -> T> ScoreBias<T> for F {
    #[inline]
    fn bias(&self, head: usize, query_pos: usize, key_pos: usize) -> T {
        self(head, query_pos, key_pos)
    }
}

/// Relative key/value terms (Shaw et al. 2018): the score of query `i` against
/// key `j` becomes `q_i·(k_j + a^K_ij)·scale` and the output
/// `Σ_j α_ij (v_j + a^V_ij)`.
///
/// Each method returns the term for one `(head, query position, key position)`
/// or `None` for no term; a term's length must be `DK` (keys) or `DV` (values),
/// else the attention call returns [`Error::LengthMismatch`]. [`ShawRelative`](crate::position::ShawRelative)
/// implements it with tables indexed by clipped distance.
pub trait RelativeKv<T> {
    /// `a^K` for this pair, length `DK`.
    fn key_term(&self, head: usize, query_pos: usize, key_pos: usize) -> Option<&[T]>;
    /// `a^V` for this pair, length `DV`.
    fn value_term(&self, head: usize, query_pos: usize, key_pos: usize) -> Option<&[T]>;
}

/// Options of an attention call: scale, masks, bias, causal alignment, window
/// and score hooks. Build with [`AttnOptions::new`] and the chained setters; the
/// default is unmasked attention with scale `1/√DK`.
///
/// ```
/// use constml::attention::{AttnOptions, QueryPos};
/// let pad = [false, false, true];
/// let o = AttnOptions::<f32>::new().causal().key_block(&pad).query_start(7);
/// assert!(o.causal && o.query_pos == QueryPos::Start(7));
/// ```
#[derive(Clone, Copy)]
pub struct AttnOptions<'a, T> {
    /// Score scale; `None` = `1/√DK` (and 1 for `DK = 0`, where every score is
    /// an empty sum, 0, rather than PyTorch's `0·∞ = NaN`).
    pub scale: Option<T>,
    /// Boolean `(NQ, NK)` mask.
    pub mask: BoolMask<'a>,
    /// Boolean per-key (padding) mask.
    pub key_mask: KeyMask<'a>,
    /// Additive float bias.
    pub bias: Bias<'a, T>,
    /// Causal masking by absolute position: a query at `p` sees keys at `≤ p`.
    pub causal: bool,
    /// Sliding window `W`: a query at `p` does not see keys at `≤ p − W`.
    pub window: Option<usize>,
    /// Positions of the query rows.
    pub query_pos: QueryPos,
    /// Additive `(head, query position, key position)` bias hook.
    pub score_bias: Option<&'a dyn ScoreBias<T>>,
    /// Relative key/value terms (Shaw).
    pub relative: Option<&'a dyn RelativeKv<T>>,
}

impl<T: core::fmt::Debug> core::fmt::Debug for AttnOptions<'_, T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("AttnOptions")
            .field("scale", &self.scale)
            .field("mask", &self.mask)
            .field("key_mask", &self.key_mask)
            .field("bias", &self.bias)
            .field("causal", &self.causal)
            .field("window", &self.window)
            .field("query_pos", &self.query_pos)
            .field("score_bias", &self.score_bias.is_some())
            .field("relative", &self.relative.is_some())
            .finish()
    }
}

impl<T> Default for AttnOptions<'_, T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<'a, T> AttnOptions<'a, T> {
    /// No mask, no bias, default scale, bottom-right query positions.
    pub const fn new() -> Self {
        Self {
            scale: None,
            mask: BoolMask::None,
            key_mask: KeyMask::None,
            bias: Bias::None,
            causal: false,
            window: None,
            query_pos: QueryPos::BottomRight,
            score_bias: None,
            relative: None,
        }
    }
    /// Overrides the score scale (default `1/√DK`). It must be finite (any
    /// sign, zero included); a NaN or infinite scale makes the attention call
    /// return [`Error::InvalidParameter`].
    pub fn scale(mut self, scale: T) -> Self {
        self.scale = Some(scale);
        self
    }
    /// An allow mask `(NQ, NK)`: `true` = may attend.
    pub fn allow(mut self, mask: MatRef<'a, bool>) -> Self {
        self.mask = BoolMask::Allow(mask);
        self
    }
    /// A block mask `(NQ, NK)`: `true` = masked out.
    pub fn block(mut self, mask: MatRef<'a, bool>) -> Self {
        self.mask = BoolMask::Block(mask);
        self
    }
    /// A per-key allow mask: `true` = the key may be attended to.
    pub fn key_allow(mut self, mask: &'a [bool]) -> Self {
        self.key_mask = KeyMask::Allow(mask);
        self
    }
    /// A per-key block (padding) mask: `true` = the key is ignored.
    pub fn key_block(mut self, mask: &'a [bool]) -> Self {
        self.key_mask = KeyMask::Block(mask);
        self
    }
    /// A float bias `(NQ, NK)` shared by all heads.
    pub fn bias(mut self, bias: MatRef<'a, T>) -> Self {
        self.bias = Bias::Shared(bias);
        self
    }
    /// A float bias per head, `(HEADS·NQ, NK)`.
    pub fn bias_per_head(mut self, bias: MatRef<'a, T>) -> Self {
        self.bias = Bias::PerHead(bias);
        self
    }
    /// Causal masking by absolute position: query row `i` at position `p`
    /// sees keys at positions `≤ p`. Without [`query_start`](Self::query_start)
    /// the queries are aligned bottom-right (the last query sits at the last
    /// key's position, as with a KV cache); for PyTorch's `is_causal=True`
    /// (top-left) use [`causal_top_left`](Self::causal_top_left).
    pub fn causal(mut self) -> Self {
        self.causal = true;
        self
    }
    /// PyTorch's `is_causal=True`: causal with query row `i` at position `i`
    /// (top-left alignment; equal to [`causal`](Self::causal) when
    /// `NQ = NK`). Same as `.causal().query_start(0)`.
    ///
    /// ```
    /// use constml::attention::{AttnOptions, QueryPos};
    /// let o = AttnOptions::<f32>::new().causal_top_left();
    /// assert!(o.causal && o.query_pos == QueryPos::Start(0));
    /// ```
    pub fn causal_top_left(self) -> Self {
        self.causal().query_start(0)
    }
    /// Sliding window of `w` keys (with [`causal`](Self::causal): `w` keys
    /// including the query's own position). `w = 0` is rejected by the call.
    pub fn window(mut self, w: usize) -> Self {
        self.window = Some(w);
        self
    }
    /// Query row `i` sits at absolute position `start + i`.
    pub fn query_start(mut self, start: usize) -> Self {
        self.query_pos = QueryPos::Start(start);
        self
    }
    /// An additive `(head, query position, key position)` score hook.
    pub fn score_bias(mut self, hook: &'a dyn ScoreBias<T>) -> Self {
        self.score_bias = Some(hook);
        self
    }
    /// Relative key/value terms (Shaw).
    pub fn relative(mut self, terms: &'a dyn RelativeKv<T>) -> Self {
        self.relative = Some(terms);
        self
    }
}

/// One run of keys and values for one head: keys `(n, DK)`, values `(n, DV)`,
/// and the keys' absolute positions.
///
/// Attention can run over several runs at once (the held part of a KV cache and
/// the new tokens of a chunk); the softmax spans all of them, and the weight
/// columns follow the order of the runs.
#[derive(Clone, Copy, Debug)]
pub struct KvSegment<'a, T> {
    /// Keys `(n, DK)`.
    pub keys: MatRef<'a, T>,
    /// Values `(n, DV)`.
    pub values: MatRef<'a, T>,
    /// Absolute positions of the `n` keys.
    pub positions: KeyPositions<'a>,
}

impl<'a, T> KvSegment<'a, T> {
    /// Keys and values at positions `first..first + n`.
    pub fn new(keys: MatRef<'a, T>, values: MatRef<'a, T>, first: usize) -> Self {
        Self {
            keys,
            values,
            positions: KeyPositions::Range(first),
        }
    }

    /// A segment with no keys (attention skips empty segments, whatever their
    /// widths).
    pub fn empty() -> Self {
        let e: &'a [[T; 0]; 0] = &[];
        Self {
            keys: MatRef::from_array(e),
            values: MatRef::from_array(e),
            positions: KeyPositions::Range(0),
        }
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.keys.rows()
    }

    /// `true` if there are no keys.
    pub fn is_empty(&self) -> bool {
        self.keys.rows() == 0
    }
}

/// Positions `[lo, hi)` a query may see through the causal and window rules;
/// `None` when it sees nothing.
#[inline]
fn visible_range<T>(opts: &AttnOptions<'_, T>, qpos: Option<usize>) -> Option<(usize, usize)> {
    let mut lo = 0;
    let mut hi = usize::MAX;
    if opts.causal {
        hi = qpos?.saturating_add(1);
    }
    if let (Some(w), Some(p)) = (opts.window, qpos) {
        lo = p.saturating_add(1).saturating_sub(w);
    }
    Some((lo, hi))
}

/// Position of query row `i`; `None` when it would be negative (bottom-right
/// alignment with `NQ > NK`).
#[inline]
fn query_position(qp: QueryPos, i: usize, nq: usize, nk: usize) -> Option<usize> {
    match qp {
        QueryPos::Start(p) => p.checked_add(i),
        QueryPos::BottomRight => nk.checked_add(i)?.checked_sub(nq),
    }
}

/// Checks the options against the shapes of one attention call.
fn check_options<T>(opts: &AttnOptions<'_, T>, nq: usize, nk: usize, head: usize) -> Result<()> {
    let shape = |what, m: (usize, usize)| {
        if m == (nq, nk) {
            Ok(())
        } else {
            Err(Error::ShapeMismatch {
                what,
                expected: (nq, nk),
                found: m,
            })
        }
    };
    match &opts.mask {
        BoolMask::None => {}
        BoolMask::Allow(m) | BoolMask::Block(m) => shape("attention: mask", m.shape())?,
    }
    match opts.key_mask {
        KeyMask::None => {}
        KeyMask::Allow(m) | KeyMask::Block(m) => check_len("attention: key mask", nk, m.len())?,
    }
    match &opts.bias {
        Bias::None => {}
        Bias::Shared(b) => shape("attention: bias", b.shape())?,
        Bias::PerHead(b) => {
            let start = head.saturating_mul(nq);
            let rows = b.row_range(start, nq).map_err(|_| Error::ShapeMismatch {
                what: "attention: per-head bias",
                expected: (head.saturating_add(1).saturating_mul(nq), nk),
                found: b.shape(),
            })?;
            shape("attention: per-head bias", rows.shape())?;
        }
    }
    if opts.window == Some(0) {
        return Err(Error::InvalidParameter {
            what: "attention: window",
            reason: "must be at least 1",
        });
    }
    if let QueryPos::Start(p) = opts.query_pos
        && p.checked_add(nq).is_none()
    {
        return Err(Error::InvalidParameter {
            what: "attention: query positions",
            reason: "start + NQ overflows usize",
        });
    }
    if let Some(n) = opts.score_bias.and_then(|h| h.heads())
        && head >= n
    {
        return Err(Error::OutOfRange {
            what: "attention: score bias head",
            index: head,
            len: n,
        });
    }
    let hooks = opts.score_bias.is_some() || opts.relative.is_some();
    if hooks && opts.query_pos == QueryPos::BottomRight && nq > nk {
        return Err(Error::InvalidParameter {
            what: "attention: query positions",
            reason: "score hooks need non-negative query positions (bottom-right with NQ > NK)",
        });
    }
    Ok(())
}

/// The absolute positions of all keys, in column order (segment by segment).
#[inline]
fn key_positions<'s, T>(segments: &'s [KvSegment<'_, T>]) -> impl Iterator<Item = usize> + 's {
    segments
        .iter()
        .flat_map(|s| (0..s.len()).map(move |t| s.positions.at(t)))
}

/// Sets `row[j] = −∞` where `mask[j] == masked` (`true` for a block mask,
/// `false` for an allow mask).
#[inline]
fn mask_where<T: Real>(row: &mut [T], mask: &[bool], masked: bool) {
    for (x, &m) in row.iter_mut().zip(mask) {
        if m == masked {
            *x = T::NEG_INFINITY;
        }
    }
}

/// Fills the scores of keys outside `[lo, hi)` with `−∞`.
#[inline]
fn mask_outside<T: Real>(
    row: &mut [T],
    segments: &[KvSegment<'_, T>],
    vis: Option<(usize, usize)>,
) {
    let Some((lo, hi)) = vis else {
        row.fill(T::NEG_INFINITY);
        return;
    };
    if lo == 0 && hi == usize::MAX {
        return;
    }
    let mut off = 0;
    for s in segments {
        let n = s.len();
        let Some(seg) = row.get_mut(off..off + n) else {
            return;
        };
        match s.positions {
            KeyPositions::Range(first) => {
                let a = lo.saturating_sub(first).min(n);
                let b = hi.saturating_sub(first).min(n).max(a);
                let (head, rest) = seg.split_at_mut(a);
                head.fill(T::NEG_INFINITY);
                if let Some(tail) = rest.get_mut(b - a..) {
                    tail.fill(T::NEG_INFINITY);
                }
            }
            KeyPositions::Explicit(pos) => {
                for (x, &p) in seg.iter_mut().zip(pos) {
                    if p < lo || p >= hi {
                        *x = T::NEG_INFINITY;
                    }
                }
            }
        }
        off += n;
    }
}

crate::simd_default!(attend_views => attend_views_with<T: Real>(q: MatRef<'_, T>, segments: &[KvSegment<'_, T>], out: MatMut<'_, T>, scratch: &mut [T], head: usize, opts: &AttnOptions<'_, T>) -> Result<()>);

/// Attention of one head over one or more runs of keys: the one implementation
/// behind every attention entry point of constml.
///
/// * `q`: queries `(NQ, DK)`; `segments`: runs of keys `(n_s, DK)` and values
///   `(n_s, DV)` with their positions, `NK = Σ n_s`; `out`: `(NQ, DV)`.
/// * `scratch`: at least [`sdpa_scratch_len`]`(NQ, NK)` elements; on return its first
///   `NQ·NK` hold the attention weights, row-major, columns in segment order.
/// * `head`: the head index passed to the score hooks and used to pick a
///   [`Bias::PerHead`] slice.
///
/// See the [module docs](self) for the conventions. Shapes are checked once
/// here; a mismatch is an `Err`, never a panic.
pub fn attend_views_with<B: Backend, T: Real>(
    q: MatRef<'_, T>,
    segments: &[KvSegment<'_, T>],
    out: MatMut<'_, T>,
    scratch: &mut [T],
    head: usize,
    opts: &AttnOptions<'_, T>,
) -> Result<()> {
    attend_rows_with::<B, T>(q, segments, out, scratch, Rows::Queries { head }, opts)
}

/// What the rows of `q` are.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Rows {
    /// Row `i` is query `i` of head `head`.
    Queries { head: usize },
    /// Row `r` is the single query (`NQ = 1`) of head `head0 + r`: the query
    /// heads that share one kv head, stacked so that a decode step is one
    /// matrix product per kv head.
    StackedHeads { head0: usize },
}

impl Rows {
    /// `(head, query index)` of row `r`.
    #[inline]
    fn of(self, r: usize) -> (usize, usize) {
        match self {
            Rows::Queries { head } => (head, r),
            Rows::StackedHeads { head0 } => (head0.saturating_add(r), 0),
        }
    }
}

/// [`attend_views_with`] with rows that may stack several heads (see [`Rows`]).
pub(crate) fn attend_rows_with<B: Backend, T: Real>(
    q: MatRef<'_, T>,
    segments: &[KvSegment<'_, T>],
    mut out: MatMut<'_, T>,
    scratch: &mut [T],
    rows: Rows,
    opts: &AttnOptions<'_, T>,
) -> Result<()> {
    let (nrows, dk) = q.shape();
    let dv = out.cols();
    if out.rows() != nrows {
        return Err(Error::ShapeMismatch {
            what: "attention: out",
            expected: (nrows, dv),
            found: out.shape(),
        });
    }
    // Empty runs are skipped everywhere (their views may have any width, e.g.
    // `KvSegment::empty()`), but a run's keys and values always pair up.
    for s in segments {
        if s.values.rows() != s.keys.rows() {
            return Err(Error::ShapeMismatch {
                what: "attention: values (one row per key)",
                expected: (s.keys.rows(), s.values.cols()),
                found: s.values.shape(),
            });
        }
    }
    let mut nk = 0usize;
    for s in segments.iter().filter(|s| !s.is_empty()) {
        let n = s.keys.rows();
        if s.keys.cols() != dk {
            return Err(Error::ShapeMismatch {
                what: "attention: keys",
                expected: (n, dk),
                found: s.keys.shape(),
            });
        }
        if s.values.shape() != (n, dv) {
            return Err(Error::ShapeMismatch {
                what: "attention: values",
                expected: (n, dv),
                found: s.values.shape(),
            });
        }
        if let KeyPositions::Explicit(p) = s.positions {
            check_len("attention: key positions", n, p.len())?;
        }
        nk = nk.checked_add(n).ok_or(Error::InvalidParameter {
            what: "attention: keys",
            reason: "key count overflows usize",
        })?;
    }
    let need = nrows.checked_mul(nk).ok_or(Error::BufferTooSmall {
        what: "attention: scratch",
        needed: usize::MAX,
        found: scratch.len(),
    })?;
    let found = scratch.len();
    let scratch = scratch.get_mut(..need).ok_or(Error::BufferTooSmall {
        what: "attention: scratch",
        needed: need,
        found,
    })?;
    // Queries per head and the last head touched, for the option checks.
    let (nq, last_head) = match rows {
        Rows::Queries { head } => (nrows, head),
        Rows::StackedHeads { head0 } => (1, head0.saturating_add(nrows.saturating_sub(1))),
    };
    check_options(opts, nq, nk, last_head)?;
    if let Some(s) = opts.scale
        && !s.is_finite()
    {
        return Err(Error::InvalidParameter {
            what: "attention: scale",
            reason: "must be finite",
        });
    }
    // Nothing to write (no weights and no output elements): done, however
    // many rows the shapes claim.
    if need == 0 && (nrows == 0 || dv == 0) {
        return Ok(());
    }

    let scale = match opts.scale {
        Some(s) => s,
        None if dk == 0 => T::ONE,
        None => T::ONE / T::from_usize(dk).sqrt(),
    };
    let mut w = MatMut::new(scratch, nrows, nk)?;

    // Scores: one A·Bᵀ per run of keys, into the run's columns.
    let mut col = 0;
    for s in segments.iter().filter(|s| !s.is_empty()) {
        let n = s.len();
        B::raw_gemm_bt(
            q,
            s.keys,
            w.reborrow().col_range(col, n)?,
            Accumulate::Overwrite,
        );
        col += n;
    }

    for r in 0..nrows {
        let (head, i) = rows.of(r);
        let qi = q.row_or_empty(r);
        let qpos = query_position(opts.query_pos, i, nq, nk);
        let row = w.row_mut_or_empty(r);
        if let (Some(rel), Some(qp)) = (opts.relative, qpos) {
            for (x, kp) in row.iter_mut().zip(key_positions(segments)) {
                if let Some(a) = rel.key_term(head, qp, kp) {
                    check_len("attention: relative key term", dk, a.len())?;
                    *x += B::raw_dot(qi, a);
                }
            }
        }
        B::raw_affine(row, scale, T::ZERO);
        match opts.bias {
            Bias::None => {}
            Bias::Shared(b) => B::raw_zip(row, b.row_or_empty(i), false),
            Bias::PerHead(b) => B::raw_zip(
                row,
                b.row_or_empty(head.saturating_mul(nq).saturating_add(i)),
                false,
            ),
        }
        if let (Some(hook), Some(qp)) = (opts.score_bias, qpos) {
            let mut col = 0;
            for seg in segments.iter().filter(|s| !s.is_empty()) {
                let n = seg.len();
                if let Some(part) = row.get_mut(col..col + n) {
                    hook.add_to_row(head, qp, seg.positions, part);
                }
                col += n;
            }
        }
        match opts.mask {
            BoolMask::None => {}
            BoolMask::Allow(m) => mask_where(row, m.row_or_empty(i), false),
            BoolMask::Block(m) => mask_where(row, m.row_or_empty(i), true),
        }
        match opts.key_mask {
            KeyMask::None => {}
            KeyMask::Allow(m) => mask_where(row, m, false),
            KeyMask::Block(m) => mask_where(row, m, true),
        }
        if opts.causal || opts.window.is_some() {
            mask_outside(row, segments, visible_range(opts, qpos));
        }
        B::softmax(row);
    }

    // Output: Σ over runs of weights[:, run] · values[run].
    let mut col = 0;
    let mut acc = Accumulate::Overwrite;
    for s in segments.iter().filter(|s| !s.is_empty()) {
        let n = s.len();
        B::raw_gemm(w.as_ref().col_range(col, n)?, s.values, out.reborrow(), acc);
        acc = Accumulate::Add;
        col += n;
    }
    // A fully masked row has weights of zero: its output is zeros even when
    // a value row holds NaN or ∞ (0·NaN would be NaN). `all` stops at the
    // first non-zero weight, so rows with a visible key cost almost nothing.
    for r in 0..nrows {
        if acc == Accumulate::Overwrite || w.as_ref().row_or_empty(r).iter().all(|&x| x == T::ZERO)
        {
            out.row_mut_or_empty(r).fill(T::ZERO);
        }
    }

    if let Some(rel) = opts.relative {
        for r in 0..nrows {
            let (head, i) = rows.of(r);
            let Some(qp) = query_position(opts.query_pos, i, nq, nk) else {
                continue;
            };
            let wi = w.as_ref().row_or_empty(r);
            let oi = out.row_mut_or_empty(r);
            for (&a, kp) in wi.iter().zip(key_positions(segments)) {
                if a != T::ZERO
                    && let Some(av) = rel.value_term(head, qp, kp)
                {
                    check_len("attention: relative value term", dv, av.len())?;
                    B::raw_axpy(a, av, oi);
                }
            }
        }
    }
    Ok(())
}

/// Scaled dot-product attention on views, with the [`Simd`] backend; see
/// [`sdpa_views_with`].
pub fn sdpa_views<T: Real>(
    q: MatRef<'_, T>,
    k: MatRef<'_, T>,
    v: MatRef<'_, T>,
    out: MatMut<'_, T>,
    weights: &mut [T],
    opts: &AttnOptions<'_, T>,
) -> Result<()> {
    sdpa_views_with::<Simd, T>(q, k, v, out, weights, opts)
}

/// Scaled dot-product attention on views: q `(NQ, DK)`, k `(NK, DK)`,
/// v `(NK, DV)` → out `(NQ, DV)`; `weights` (at least `NQ·NK` elements) receives
/// the attention weights `(NQ, NK)`. Keys sit at positions `0..NK`.
pub fn sdpa_views_with<B: Backend, T: Real>(
    q: MatRef<'_, T>,
    k: MatRef<'_, T>,
    v: MatRef<'_, T>,
    out: MatMut<'_, T>,
    weights: &mut [T],
    opts: &AttnOptions<'_, T>,
) -> Result<()> {
    attend_views_with::<B, T>(q, &[KvSegment::new(k, v, 0)], out, weights, 0, opts)
}

/// The shape of a batched attention call in PyTorch's layout: `q`
/// `(batch, heads, nq, dk)`, `k` `(batch, kv_heads, nk, dk)`, `v`
/// `(batch, kv_heads, nk, dv)`, output `(batch, heads, nq, dv)`, each a dense
/// row-major slice. `kv_heads` divides `heads`; query head `h` reads kv head
/// `h / (heads / kv_heads)` (PyTorch's `enable_gqa=True`; `kv_heads = heads`
/// is plain multi-head SDPA).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AttnShape {
    /// Batch size.
    pub batch: usize,
    /// Query heads.
    pub heads: usize,
    /// Key/value heads.
    pub kv_heads: usize,
    /// Queries per head.
    pub nq: usize,
    /// Keys per head.
    pub nk: usize,
    /// Query/key width.
    pub dk: usize,
    /// Value width.
    pub dv: usize,
}

impl AttnShape {
    /// Element counts of `(q, k, v, out)`; `Err` if one overflows `usize`.
    pub fn lens(&self) -> Result<(usize, usize, usize, usize)> {
        let prod = |xs: [usize; 4]| {
            xs.iter()
                .try_fold(1usize, |a, &x| a.checked_mul(x))
                .ok_or(Error::InvalidParameter {
                    what: "attention: shape",
                    reason: "element count overflows usize",
                })
        };
        Ok((
            prod([self.batch, self.heads, self.nq, self.dk])?,
            prod([self.batch, self.kv_heads, self.nk, self.dk])?,
            prod([self.batch, self.kv_heads, self.nk, self.dv])?,
            prod([self.batch, self.heads, self.nq, self.dv])?,
        ))
    }

    /// Scratch of [`sdpa_batched_views_with`], in elements: `nq · nk`.
    pub const fn scratch_len(&self) -> usize {
        sdpa_scratch_len(self.nq, self.nk)
    }
}

crate::simd_default!(sdpa_batched_views => sdpa_batched_views_with<T: Real>(q: &[T], k: &[T], v: &[T], shape: AttnShape, out: &mut [T], scratch: &mut [T], opts: &AttnOptions<'_, T>) -> Result<()>);

/// Batched multi-head (and grouped-query) SDPA over borrowed slices in
/// PyTorch's `(batch, heads, n, d)` layout (see [`AttnShape`]); what
/// `torch.nn.functional.scaled_dot_product_attention(q, k, v, enable_gqa=True)`
/// computes. Masks and a shared bias in `opts` are `(nq, nk)` and apply to every
/// batch entry and head; a per-head bias is `(heads·nq, nk)` and applies to
/// every batch entry. `scratch` holds at least [`AttnShape::scratch_len`]
/// elements. No allocation.
///
/// ```
/// use constml::attention::{sdpa_batched_views, AttnOptions, AttnShape};
/// // batch 2, 2 query heads sharing 1 kv head, 1 query, 2 keys, width 1.
/// let s = AttnShape { batch: 2, heads: 2, kv_heads: 1, nq: 1, nk: 2, dk: 1, dv: 1 };
/// let q = [0.0f32; 4];                       // scores all equal: mean of v
/// let k = [0.0f32; 4];
/// let v = [1.0f32, 3.0, 10.0, 20.0];
/// let mut out = [0.0f32; 4];
/// let mut scratch = [0.0f32; 2];
/// sdpa_batched_views(&q, &k, &v, s, &mut out, &mut scratch, &AttnOptions::new())?;
/// assert_eq!(out, [2.0, 2.0, 15.0, 15.0]);
/// # Ok::<(), constml::Error>(())
/// ```
pub fn sdpa_batched_views_with<B: Backend, T: Real>(
    q: &[T],
    k: &[T],
    v: &[T],
    shape: AttnShape,
    out: &mut [T],
    scratch: &mut [T],
    opts: &AttnOptions<'_, T>,
) -> Result<()> {
    let AttnShape {
        batch,
        heads,
        kv_heads,
        nq,
        nk,
        dk,
        dv,
    } = shape;
    let group = crate::attention::gqa::group_size(heads, kv_heads)?;
    let (lq, lk, lv, lo) = shape.lens()?;
    check_len("attention: q", lq, q.len())?;
    check_len("attention: k", lk, k.len())?;
    check_len("attention: v", lv, v.len())?;
    check_len("attention: out", lo, out.len())?;
    if lo == 0 {
        return Ok(());
    }
    // `lo > 0`: every factor is at least 1, so the per-head blocks below are
    // in bounds of the checked lengths.
    let (bq, bk, bv, bo) = (nq * dk, nk * dk, nk * dv, nq * dv);
    for b in 0..batch {
        for h in 0..heads {
            let g = b * kv_heads + h / group;
            let i = b * heads + h;
            let qh = MatRef::new(q.get(i * bq..(i + 1) * bq).unwrap_or(&[]), nq, dk)?;
            let kh = MatRef::new(k.get(g * bk..(g + 1) * bk).unwrap_or(&[]), nk, dk)?;
            let vh = MatRef::new(v.get(g * bv..(g + 1) * bv).unwrap_or(&[]), nk, dv)?;
            let oh = MatMut::new(out.get_mut(i * bo..(i + 1) * bo).unwrap_or(&mut []), nq, dv)?;
            attend_views_with::<B, T>(qh, &[KvSegment::new(kh, vh, 0)], oh, scratch, h, opts)?;
        }
    }
    Ok(())
}

/// Scaled dot-product attention, const-generic face, with the [`Simd`] backend;
/// see [`sdpa_with`].
pub fn sdpa<T: Real, const NQ: usize, const NK: usize, const DK: usize, const DV: usize>(
    q: &[[T; DK]; NQ],
    k: &[[T; DK]; NK],
    v: &[[T; DV]; NK],
    out: &mut [[T; DV]; NQ],
    weights: &mut [[T; NK]; NQ],
    opts: &AttnOptions<'_, T>,
) -> Result<()> {
    sdpa_with::<Simd, T, NQ, NK, DK, DV>(q, k, v, out, weights, opts)
}

/// Scaled dot-product attention, const-generic face: q `(NQ, DK)`, k `(NK, DK)`,
/// v `(NK, DV)` → out `(NQ, DV)`; `weights` is the caller-owned scratch and
/// holds the attention weights `(NQ, NK)` on return. The array shapes are
/// checked by the type system; an `Err` can only come from the options (a mask
/// or bias of the wrong shape, window 0, …).
///
/// Must match `torch.nn.functional.scaled_dot_product_attention` (≥ 2.5) given
/// the same masks; see the [module docs](self) for the conventions.
pub fn sdpa_with<
    B: Backend,
    T: Real,
    const NQ: usize,
    const NK: usize,
    const DK: usize,
    const DV: usize,
>(
    q: &[[T; DK]; NQ],
    k: &[[T; DK]; NK],
    v: &[[T; DV]; NK],
    out: &mut [[T; DV]; NQ],
    weights: &mut [[T; NK]; NQ],
    opts: &AttnOptions<'_, T>,
) -> Result<()> {
    sdpa_views_with::<B, T>(
        MatRef::from_array(q),
        MatRef::from_array(k),
        MatRef::from_array(v),
        MatMut::from_array(out),
        weights.as_flattened_mut(),
        opts,
    )
}

#[cfg(feature = "std")]
mod dynamic {
    use super::*;
    use crate::matrix::{Matrix, zeros_vec};
    use std::vec::Vec;

    /// Scaled dot-product attention on runtime-shaped matrices (feature `std`),
    /// with the [`Simd`] backend: returns `(output (NQ, DV), weights (NQ, NK))`.
    pub fn sdpa_dyn<T: Real>(
        q: &Matrix<T>,
        k: &Matrix<T>,
        v: &Matrix<T>,
        opts: &AttnOptions<'_, T>,
    ) -> Result<(Matrix<T>, Matrix<T>)> {
        sdpa_dyn_with::<Simd, T>(q, k, v, opts)
    }

    /// Scaled dot-product attention on runtime-shaped matrices (feature `std`):
    /// allocates the output `(NQ, DV)` and the weights `(NQ, NK)`, then runs
    /// [`sdpa_views_with`]. Mismatched shapes are an `Err`.
    ///
    /// ```
    /// use constml::{Matrix, attention::{sdpa_dyn, AttnOptions}};
    /// let q = Matrix::from_vec(1, 2, vec![1.0f32, 0.0])?;
    /// let k = Matrix::from_vec(3, 2, vec![1.0f32, 0.0, 0.0, 1.0, 1.0, 1.0])?;
    /// let v = Matrix::from_vec(3, 1, vec![1.0f32, 2.0, 3.0])?;
    /// let (out, w) = sdpa_dyn(&q, &k, &v, &AttnOptions::new())?;
    /// assert_eq!((out.shape(), w.shape()), ((1, 1), (1, 3)));
    /// assert!(sdpa_dyn(&q, &v, &v, &AttnOptions::new()).is_err());
    /// # Ok::<(), constml::Error>(())
    /// ```
    pub fn sdpa_dyn_with<B: Backend, T: Real>(
        q: &Matrix<T>,
        k: &Matrix<T>,
        v: &Matrix<T>,
        opts: &AttnOptions<'_, T>,
    ) -> Result<(Matrix<T>, Matrix<T>)> {
        let mut out = Matrix::zeros(q.rows(), v.cols())?;
        let mut w = Matrix::zeros(q.rows(), k.rows())?;
        sdpa_views_with::<B, T>(
            q.view(),
            k.view(),
            v.view(),
            out.view_mut(),
            w.as_mut_slice(),
            opts,
        )?;
        Ok((out, w))
    }

    /// Batched multi-head SDPA over borrowed slices (feature `std`), [`Simd`]
    /// backend; see [`sdpa_batched_dyn_with`].
    pub fn sdpa_batched_dyn<T: Real>(
        q: &[T],
        k: &[T],
        v: &[T],
        shape: AttnShape,
        opts: &AttnOptions<'_, T>,
    ) -> Result<Vec<T>> {
        sdpa_batched_dyn_with::<Simd, T>(q, k, v, shape, opts)
    }

    /// [`sdpa_batched_views_with`] that allocates its output
    /// `(batch, heads, nq, dv)` and scratch (feature `std`).
    ///
    /// ```
    /// use constml::attention::{sdpa_batched_dyn, AttnOptions, AttnShape};
    /// let s = AttnShape { batch: 1, heads: 2, kv_heads: 2, nq: 1, nk: 2, dk: 1, dv: 1 };
    /// let out = sdpa_batched_dyn(&[0.0f32; 2], &[0.0; 4], &[1.0, 3.0, 5.0, 7.0], s,
    ///                            &AttnOptions::new())?;
    /// assert_eq!(out, vec![2.0, 6.0]);
    /// # Ok::<(), constml::Error>(())
    /// ```
    pub fn sdpa_batched_dyn_with<B: Backend, T: Real>(
        q: &[T],
        k: &[T],
        v: &[T],
        shape: AttnShape,
        opts: &AttnOptions<'_, T>,
    ) -> Result<Vec<T>> {
        let (_, _, _, lo) = shape.lens()?;
        let mut out = zeros_vec("attention: out", lo)?;
        let n = if lo == 0 { 0 } else { shape.scratch_len() };
        let mut scratch = zeros_vec("attention: scratch", n)?;
        sdpa_batched_views_with::<B, T>(q, k, v, shape, &mut out, &mut scratch, opts)?;
        Ok(out)
    }
}

#[cfg(feature = "std")]
pub use dynamic::{sdpa_batched_dyn, sdpa_batched_dyn_with, sdpa_dyn, sdpa_dyn_with};
