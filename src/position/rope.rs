//! Rotary position embedding (RoPE, Su et al. 2021): q and k head vectors are
//! rotated pair by pair by angles proportional to their absolute position, so
//! that `⟨R_m q, R_n k⟩` depends on `m − n` only.
//!
//! # Formula
//!
//! For a rotary dimension `R` (even, `≤` the head width `D`; the last `D − R`
//! coordinates pass through unchanged) and base `θ` (default 10 000), pair
//! `i < R/2` turns by
//!
//! ```text
//! angle_i(p) = p · f_i,   f_i = θ^(−2i/R)
//! (a, b) ↦ (a·cos − b·sin, b·cos + a·sin)
//! ```
//!
//! # Layouts ([`RopeLayout`])
//!
//! * **Interleaved**: pairs `(2i, 2i+1)` — GPT-J, Meta's original Llama code,
//!   llama2.c.
//! * **Half-split**: pairs `(i, i + R/2)` — GPT-NeoX, Hugging Face Llama
//!   (`rotate_half`).
//!
//! The two are the same rotation up to a permutation of the coordinates: a
//! model exported from Meta's layout to Hugging Face's permutes the rows of
//! each head of `W_q` and `W_k` (llama2.c's export `permute`), after which
//! half-split RoPE gives the same scores as interleaved RoPE on the original
//! weights (tested).
//!
//! # Scaling ([`RopeScaling`])
//!
//! * **Linear** (position interpolation): `angle_i = (p / s) · f_i`
//!   (Hugging Face `rope_type = "linear"`).
//! * **Static NTK-aware**: the base becomes `θ' = θ · s^(R/(R−2))`.
//!
//! Dynamic NTK is not offered: its base changes with the sequence length,
//! while the keys already in a cache were rotated with the old one.
//!
//! # Precision ([`RopeRecipe`])
//!
//! The default recipe, [`RopeRecipe::Exact`], computes frequencies, angles,
//! cosines and sines in `f64` and rounds each coefficient once to `T`: an
//! `f32` output stays within about 1e-7·|x| of the exact rotation at any
//! position below 2^32, and the `f64` angle error is about 1e-15·p radians.
//! (An `f32` product `p · f_i`, as Hugging Face computes it, is off by up to
//! ulp(p·f)/2: about 1e-4 radians at p = 4095 and 5e-3 at 10⁵.)
//! [`RopeRecipe::HuggingFace`] reproduces that `f32` recipe for
//! compatibility with models trained under it (its angles bit for bit, its
//! `cos`/`sin` tensors within an ulp).
//!
//! # References
//!
//! Tested against the exact rotation (mpmath, 60 digits) for both layouts,
//! partial rotation, linear and NTK scaling, at positions 0 … 10⁶; against
//! Hugging Face's `LlamaRotaryEmbedding` (plain and linear scaling) and
//! `GPTNeoXRotaryEmbedding` (partial rotary) for the Hugging Face recipe; and
//! through the decoder over a ring-buffer cache (cached decoding ≡
//! recomputation over several wraps).
//!
//! # Faces
//!
//! | face | type | coefficients |
//! |---|---|---|
//! | const-generic, no_std | [`Rope<T, R, B>`](Rope) | computed on the fly per position (per row, shared by all heads) |
//! | const-generic, no_std | [`RopeTable<'a, T, R, MAX_POS, B>`](RopeTable) | precomputed for positions `0..MAX_POS` in caller storage; past it, per [`BeyondTable`] |
//! | runtime (`std`) | `RopeDyn<T, B>` | on the fly, or an owned table |
//!
//! All of them implement the decoder's [`Rotation`] hook and rotate at
//! absolute positions, so they compose with ring-buffer KV caches (whose
//! positions keep growing past the capacity).
//!
//! ```
//! use constml::position::{Rope, RopeConfig, RopeLayout};
//! let rope = Rope::<f32, 4>::new(RopeConfig::new(RopeLayout::HalfSplit))?;
//! let mut q = [1.0f32, 0.0, 0.0, 0.0];
//! rope.rotate(1, &mut q)?; // pair (0, 2) turns by 1 radian
//! assert!((q[0] - 1f32.cos()).abs() < 1e-7 && (q[2] - 1f32.sin()).abs() < 1e-7);
//! # Ok::<(), constml::Error>(())
//! ```

use core::marker::PhantomData;

use crate::attention::Rotation;
use crate::attention::gqa::head_width;
use crate::attention::self_attention::row_position;
use crate::backend::{Backend, Simd};
use crate::error::{Error, Result};
use crate::mat::MatMut;
use crate::real::Real;

/// Which coordinates of a head vector form a rotated pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RopeLayout {
    /// Pairs `(2i, 2i+1)`: GPT-J, Meta's original Llama, llama2.c.
    Interleaved,
    /// Pairs `(i, i + R/2)`: GPT-NeoX, Hugging Face Llama.
    HalfSplit,
}

/// Position scaling for contexts longer than the training length.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub enum RopeScaling {
    /// No scaling.
    #[default]
    None,
    /// Position interpolation by a factor `s`: `angle_i = (p/s)·f_i`
    /// (Hugging Face `rope_type = "linear"`).
    Linear(f64),
    /// Static NTK-aware scaling by `s`: base `θ' = θ·s^(R/(R−2))` (needs
    /// `R ≥ 4`).
    Ntk(f64),
}

/// How angles and coefficients are computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum RopeRecipe {
    /// `f64` frequencies `θ'^(−2i/R)`, `f64` angles `p·f_i` (÷ `s`), `f64`
    /// cosine and sine, each rounded once to `T`.
    #[default]
    Exact,
    /// Hugging Face's `f32` recipe, for compatibility with its models (the
    /// same `f32` angles bit for bit; the cosines and sines are correctly
    /// rounded, where PyTorch's vectorised `f32` `cos`/`sin` may differ by an
    /// ulp):
    /// `inv_freq = 1 / θ^(2i/R)` in `f32` (`f32` exponent, `powf`, division;
    /// linear scaling divides it by `s` in `f32`), angle `f32(p) · inv_freq`
    /// rounded to `f32`, cosine and sine of that angle rounded to `f32`
    /// (then widened to `T`).
    HuggingFace,
}

/// A RoPE configuration: layout, base `θ`, scaling and recipe. The rotary
/// dimension `R` comes from the type ([`Rope`]) or the constructor (`RopeDyn`).
///
/// ```
/// use constml::position::{RopeConfig, RopeLayout, RopeScaling};
/// let llama3ish = RopeConfig::new(RopeLayout::HalfSplit).theta(500_000.0);
/// let stretched = RopeConfig::new(RopeLayout::Interleaved).scaling(RopeScaling::Linear(4.0));
/// assert_eq!(llama3ish.theta, 500_000.0);
/// assert_eq!(stretched.scaling, RopeScaling::Linear(4.0));
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RopeConfig {
    /// Pair layout.
    pub layout: RopeLayout,
    /// Base `θ` (finite, `> 0`; default 10 000).
    pub theta: f64,
    /// Position scaling.
    pub scaling: RopeScaling,
    /// Angle recipe.
    pub recipe: RopeRecipe,
}

impl RopeConfig {
    /// `θ = 10 000`, no scaling, the exact recipe.
    pub const fn new(layout: RopeLayout) -> Self {
        Self {
            layout,
            theta: 10_000.0,
            scaling: RopeScaling::None,
            recipe: RopeRecipe::Exact,
        }
    }
    /// Sets the base `θ`.
    pub const fn theta(mut self, theta: f64) -> Self {
        self.theta = theta;
        self
    }
    /// Sets the position scaling.
    pub const fn scaling(mut self, scaling: RopeScaling) -> Self {
        self.scaling = scaling;
        self
    }
    /// Sets the angle recipe.
    pub const fn recipe(mut self, recipe: RopeRecipe) -> Self {
        self.recipe = recipe;
        self
    }

    /// Checks the configuration for rotary dimension `r`: `r` even and `> 0`,
    /// `θ` finite and `> 0` (and finite in `f32` for the Hugging Face recipe),
    /// a scaling factor finite and `> 0`, NTK with `r ≥ 4`.
    pub fn check(&self, r: usize) -> Result<()> {
        let bad = |what, reason| Err(Error::InvalidParameter { what, reason });
        if r == 0 || !r.is_multiple_of(2) {
            return bad("rope: rotary dimension", "must be even and at least 2");
        }
        if !(self.theta.is_finite() && self.theta > 0.0) {
            return bad("rope: theta", "must be finite and > 0");
        }
        if self.recipe == RopeRecipe::HuggingFace && !(self.theta as f32).is_finite() {
            return bad("rope: theta", "overflows f32 in the Hugging Face recipe");
        }
        match self.scaling {
            RopeScaling::None => {}
            RopeScaling::Linear(s) | RopeScaling::Ntk(s) if !(s.is_finite() && s > 0.0) => {
                return bad("rope: scaling factor", "must be finite and > 0");
            }
            RopeScaling::Ntk(_) if r < 4 => {
                return bad(
                    "rope: NTK scaling",
                    "needs a rotary dimension of at least 4",
                );
            }
            _ => {}
        }
        if !self.base(r).is_finite() {
            return bad("rope: NTK scaling", "the scaled base overflows");
        }
        if self.recipe == RopeRecipe::HuggingFace {
            let s = match self.scaling {
                RopeScaling::Linear(s) => s,
                _ => 1.0,
            };
            let (b32, s32) = (self.base(r) as f32, s as f32);
            if !(b32.is_finite() && b32 > 0.0 && s32.is_finite() && s32 > 0.0) {
                return bad(
                    "rope: Hugging Face recipe",
                    "the base and the scale factor must be finite and > 0 in f32",
                );
            }
        }
        Ok(())
    }

    /// The effective base: `θ`, or `θ·s^(R/(R−2))` with NTK scaling.
    pub fn base(&self, r: usize) -> f64 {
        match self.scaling {
            RopeScaling::Ntk(s) if r > 2 => {
                let r = r as f64;
                self.theta * libm::pow(s, r / (r - 2.0))
            }
            _ => self.theta,
        }
    }

    /// Fills `inv` (length `R/2`) with the per-pair frequencies, the linear
    /// scale folded in. For the Hugging Face recipe they are its `f32` values.
    fn fill_freqs(&self, r: usize, inv: &mut [f64]) {
        let base = self.base(r);
        let div = match self.scaling {
            RopeScaling::Linear(s) => s,
            _ => 1.0,
        };
        for (i, f) in inv.iter_mut().enumerate() {
            *f = match self.recipe {
                RopeRecipe::Exact => libm::pow(base, -((2 * i) as f64) / r as f64) / div,
                RopeRecipe::HuggingFace => {
                    let e = (2 * i) as f32 / r as f32;
                    // The correctly rounded f32 power (through f64).
                    let pow = libm::pow((base as f32) as f64, e as f64) as f32;
                    let inv = 1.0 / pow;
                    (inv / div as f32) as f64
                }
            };
        }
    }

    /// `(cos, sin)` of pair frequency `f` at position `pos`.
    #[inline]
    fn cos_sin(&self, f: f64, pos: usize) -> (f64, f64) {
        match self.recipe {
            RopeRecipe::Exact => {
                let (s, c) = libm::sincos(pos as f64 * f);
                (c, s)
            }
            RopeRecipe::HuggingFace => {
                let a = (pos as f32 * f as f32) as f64;
                let (s, c) = libm::sincos(a);
                (c as f32 as f64, s as f32 as f64)
            }
        }
    }

    /// Writes the coefficients of position `pos` into `cos`, `sin` (length
    /// `R = 2·inv.len()`) in the layout's order: each pair's cosine (sine) at
    /// both of its coordinates.
    fn coefficients<T: Real>(&self, inv: &[f64], pos: usize, cos: &mut [T], sin: &mut [T]) {
        let half = inv.len();
        for (i, &f) in inv.iter().enumerate() {
            let (c, s) = self.cos_sin(f, pos);
            let (c, s) = (T::from_f64(c), T::from_f64(s));
            let (a, b) = match self.layout {
                RopeLayout::Interleaved => (2 * i, 2 * i + 1),
                RopeLayout::HalfSplit => (i, i + half),
            };
            for j in [a, b] {
                if let (Some(cj), Some(sj)) = (cos.get_mut(j), sin.get_mut(j)) {
                    (*cj, *sj) = (c, s);
                }
            }
        }
    }
}

/// Rotates the first `cos.len()` coordinates of `x` with coefficients in
/// `layout`'s order (as [`RopeConfig::coefficients`] writes them).
#[inline]
fn apply<B: Backend, T: Real>(layout: RopeLayout, x: &mut [T], cos: &[T], sin: &[T]) {
    let r = cos.len().min(sin.len()).min(x.len());
    match layout {
        RopeLayout::Interleaved => B::raw_rotate_pairs(&mut x[..r], cos, sin),
        RopeLayout::HalfSplit => {
            let h = r / 2;
            let (lo, hi) = x[..2 * h].split_at_mut(h);
            B::raw_rotate_halves(lo, hi, &cos[..h], &sin[..h]);
        }
    }
}

/// Checks that a head vector holds the rotary dimension.
#[inline]
fn check_head(r: usize, found: usize) -> Result<()> {
    if found < r {
        return Err(Error::BufferTooSmall {
            what: "rope: head vector (shorter than the rotary dimension)",
            needed: r,
            found,
        });
    }
    Ok(())
}

/// Calls `f(position, row)` for every row of `x` `(N, heads·D)` after checking
/// that `heads` divides the width and that `D ≥ r`; returns `D`.
fn for_each_row<T>(
    r: usize,
    start: usize,
    mut x: MatMut<'_, T>,
    heads: usize,
    mut f: impl FnMut(usize, &mut [T], usize) -> Result<()>,
) -> Result<()> {
    let d = head_width("rope: columns", x.cols(), heads)?;
    if x.rows() == 0 || d == 0 {
        return Ok(());
    }
    check_head(r, d)?;
    // Every row's position exists before any row is rotated.
    row_position(start, x.rows() - 1)?;
    for i in 0..x.rows() {
        let pos = row_position(start, i)?;
        if let Some(row) = x.row_mut(i) {
            f(pos, row, d)?;
        }
    }
    Ok(())
}

/// RoPE with coefficients computed on the fly: rotary dimension `R` (even,
/// checked at compile time), allocation-free, no table.
///
/// [`rotate_rows`](Rope::rotate_rows) (and the [`Rotation`] hook's
/// `rotate_rows`, which the decoder calls) computes a position's `R/2`
/// cosine/sine pairs once per row and applies them to every head.
///
/// ```
/// use constml::position::{Rope, RopeConfig, RopeLayout};
/// let rope = Rope::<f64, 2>::new(RopeConfig::new(RopeLayout::Interleaved))?;
/// let (mut q, mut k) = ([0.3, -1.2], [0.7, 0.4]);
/// let (mut q2, mut k2) = (q, k);
/// rope.rotate(10, &mut q)?;
/// rope.rotate(7, &mut k)?;
/// rope.rotate(1003, &mut q2)?;
/// rope.rotate(1000, &mut k2)?;
/// let dot = |a: [f64; 2], b: [f64; 2]| a[0] * b[0] + a[1] * b[1];
/// assert!((dot(q, k) - dot(q2, k2)).abs() < 1e-12); // only m − n matters
/// # Ok::<(), constml::Error>(())
/// ```
///
/// An odd rotary dimension does not compile:
///
/// ```compile_fail,E0080
/// use constml::position::{Rope, RopeConfig, RopeLayout};
/// let _ = Rope::<f32, 3>::new(RopeConfig::new(RopeLayout::Interleaved));
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Rope<T, const R: usize, B = Simd> {
    cfg: RopeConfig,
    // Pair frequencies in the first R/2 entries (R/2 is not a type-level
    // expression on stable Rust).
    inv: [f64; R],
    _m: PhantomData<fn() -> (T, B)>,
}

impl<T: Real, const R: usize, B: Backend> Rope<T, R, B> {
    /// A rotation of the first `R` coordinates; `Err` on a bad configuration
    /// ([`RopeConfig::check`]).
    pub fn new(cfg: RopeConfig) -> Result<Self> {
        const {
            assert!(
                R > 0 && R.is_multiple_of(2),
                "Rope: the rotary dimension R must be even and > 0"
            )
        };
        cfg.check(R)?;
        let mut inv = [0.0; R];
        cfg.fill_freqs(R, &mut inv[..R / 2]);
        Ok(Self {
            cfg,
            inv,
            _m: PhantomData,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &RopeConfig {
        &self.cfg
    }

    /// The per-pair frequencies `f_i` (length `R/2`; the linear scale folded in).
    pub fn freqs(&self) -> &[f64] {
        &self.inv[..R / 2]
    }

    /// The coefficients of position `pos`, in the layout's order (each pair's
    /// cosine and sine at both of its coordinates: `[c0, c0, c1, c1, …]`
    /// interleaved, `[c0 … c(R/2−1), c0 … c(R/2−1)]` half-split — Hugging
    /// Face's `cos`/`sin` tensors).
    pub fn coefficients(&self, pos: usize, cos: &mut [T; R], sin: &mut [T; R]) {
        self.cfg.coefficients(self.freqs(), pos, cos, sin);
    }

    /// Rotates one head vector (length `≥ R`; coordinates past `R` unchanged)
    /// for absolute position `pos`.
    pub fn rotate(&self, pos: usize, x: &mut [T]) -> Result<()> {
        check_head(R, x.len())?;
        let (mut c, mut s) = ([T::ZERO; R], [T::ZERO; R]);
        self.coefficients(pos, &mut c, &mut s);
        apply::<B, T>(self.cfg.layout, x, &c, &s);
        Ok(())
    }

    /// Rotates every head of every row of `x` `(N, heads·D)`, row `i` at
    /// position `start + i`, computing each position's coefficients once.
    pub fn rotate_rows(&self, start: usize, x: MatMut<'_, T>, heads: usize) -> Result<()> {
        let (mut c, mut s) = ([T::ZERO; R], [T::ZERO; R]);
        for_each_row(R, start, x, heads, |pos, row, d| {
            self.coefficients(pos, &mut c, &mut s);
            for h in row.chunks_exact_mut(d) {
                apply::<B, T>(self.cfg.layout, h, &c, &s);
            }
            Ok(())
        })
    }

    /// Const face of [`rotate_rows`](Rope::rotate_rows): `x` is `(N, H, D)`
    /// with `D ≥ R` checked at compile time.
    ///
    /// ```compile_fail,E0080
    /// use constml::position::{Rope, RopeConfig, RopeLayout};
    /// let rope = Rope::<f32, 8>::new(RopeConfig::new(RopeLayout::HalfSplit)).unwrap();
    /// let mut q = [[[0.0f32; 4]; 2]; 1]; // head width 4 < R = 8
    /// let _ = rope.rotate_heads(0, &mut q);
    /// ```
    pub fn rotate_heads<const N: usize, const H: usize, const D: usize>(
        &self,
        start: usize,
        x: &mut [[[T; D]; H]; N],
    ) -> Result<()> {
        const { assert!(D >= R, "Rope: the head width D must be at least R") };
        self.rotate_rows(start, crate::attention::nested_mut(x)?, H)
    }

    /// Fills a coefficient table for positions `0..M` (row `p` as
    /// [`coefficients`](Rope::coefficients) gives it).
    pub fn fill_table<const M: usize>(&self, cos: &mut [[T; R]; M], sin: &mut [[T; R]; M]) {
        for (p, (c, s)) in cos.iter_mut().zip(sin.iter_mut()).enumerate() {
            self.coefficients(p, c, s);
        }
    }
}

impl<T: Real, const R: usize, B: Backend> Rotation<T> for Rope<T, R, B> {
    fn rotate(&self, pos: usize, x: &mut [T]) -> Result<()> {
        Rope::rotate(self, pos, x)
    }
    fn rotate_rows(&self, start: usize, x: MatMut<'_, T>, heads: usize) -> Result<()> {
        Rope::rotate_rows(self, start, x, heads)
    }
}

/// What a [`RopeTable`] does at a position `≥ MAX_POS`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum BeyondTable {
    /// Compute the coefficients on the fly (the same values a longer table
    /// would hold: both paths run one function).
    #[default]
    Compute,
    /// Return [`Error::OutOfRange`].
    Error,
}

/// RoPE with a precomputed coefficient table for positions `0..MAX_POS`, held
/// in caller storage (stack, a `static`, flash, a `Box`): `2·MAX_POS·R`
/// elements of `T`.
///
/// A ring-buffer cache keeps assigning growing absolute positions, so
/// `MAX_POS` is the longest sequence, not the cache capacity. Past the table
/// the rotation follows [`BeyondTable`]: by default it computes the
/// coefficients on the fly (bit-identical to the table's), or it returns an
/// error.
///
/// ```
/// use constml::position::{BeyondTable, Rope, RopeConfig, RopeLayout, RopeTable};
/// let rope = Rope::<f32, 8>::new(RopeConfig::new(RopeLayout::HalfSplit))?;
/// let (mut cos, mut sin) = ([[0.0f32; 8]; 16], [[0.0f32; 8]; 16]);
/// let table = RopeTable::new(rope, &mut cos, &mut sin, BeyondTable::Error);
/// let mut q = [0.5f32; 8];
/// table.rotate(15, &mut q)?;
/// assert!(table.rotate(16, &mut q).is_err());
/// # Ok::<(), constml::Error>(())
/// ```
#[derive(Clone, Copy, Debug)]
pub struct RopeTable<'a, T, const R: usize, const MAX_POS: usize, B = Simd> {
    rope: Rope<T, R, B>,
    cos: &'a [[T; R]; MAX_POS],
    sin: &'a [[T; R]; MAX_POS],
    beyond: BeyondTable,
}

impl<'a, T: Real, const R: usize, const MAX_POS: usize, B: Backend>
    RopeTable<'a, T, R, MAX_POS, B>
{
    /// Fills `cos` and `sin` from `rope` and keeps them.
    pub fn new(
        rope: Rope<T, R, B>,
        cos: &'a mut [[T; R]; MAX_POS],
        sin: &'a mut [[T; R]; MAX_POS],
        beyond: BeyondTable,
    ) -> Self {
        rope.fill_table(cos, sin);
        Self {
            rope,
            cos,
            sin,
            beyond,
        }
    }

    /// Uses tables filled earlier by [`Rope::fill_table`] with the same
    /// `rope` (e.g. generated on a host and placed in flash). Nothing checks
    /// that they match.
    pub fn from_filled(
        rope: Rope<T, R, B>,
        cos: &'a [[T; R]; MAX_POS],
        sin: &'a [[T; R]; MAX_POS],
        beyond: BeyondTable,
    ) -> Self {
        Self {
            rope,
            cos,
            sin,
            beyond,
        }
    }

    /// The on-the-fly rotation the table was filled from.
    pub fn rope(&self) -> &Rope<T, R, B> {
        &self.rope
    }

    /// The table rows of position `pos`, `None` past the table.
    pub fn cos_sin(&self, pos: usize) -> Option<(&'a [T; R], &'a [T; R])> {
        Some((self.cos.get(pos)?, self.sin.get(pos)?))
    }

    /// Rotates with the rows of `pos`, or past the table as [`BeyondTable`] says.
    fn with_rows(&self, pos: usize, mut f: impl FnMut(&[T; R], &[T; R])) -> Result<()> {
        if let Some((c, s)) = self.cos_sin(pos) {
            f(c, s);
            return Ok(());
        }
        match self.beyond {
            BeyondTable::Compute => {
                let (mut c, mut s) = ([T::ZERO; R], [T::ZERO; R]);
                self.rope.coefficients(pos, &mut c, &mut s);
                f(&c, &s);
                Ok(())
            }
            BeyondTable::Error => Err(Error::OutOfRange {
                what: "rope table: position",
                index: pos,
                len: MAX_POS,
            }),
        }
    }

    /// Rotates one head vector (length `≥ R`) for absolute position `pos`.
    pub fn rotate(&self, pos: usize, x: &mut [T]) -> Result<()> {
        check_head(R, x.len())?;
        let layout = self.rope.cfg.layout;
        self.with_rows(pos, |c, s| apply::<B, T>(layout, x, c, s))
    }

    /// Rotates every head of every row of `x` `(N, heads·D)`, row `i` at
    /// position `start + i`.
    pub fn rotate_rows(&self, start: usize, x: MatMut<'_, T>, heads: usize) -> Result<()> {
        let layout = self.rope.cfg.layout;
        if self.beyond == BeyondTable::Error && x.rows() > 0 {
            let last = row_position(start, x.rows() - 1)?;
            if last >= MAX_POS {
                return Err(Error::OutOfRange {
                    what: "rope table: position",
                    index: last,
                    len: MAX_POS,
                });
            }
        }
        for_each_row(R, start, x, heads, |pos, row, d| {
            self.with_rows(pos, |c, s| {
                for h in row.chunks_exact_mut(d) {
                    apply::<B, T>(layout, h, c, s);
                }
            })
        })
    }
}

impl<T: Real, const R: usize, const MAX_POS: usize, B: Backend> Rotation<T>
    for RopeTable<'_, T, R, MAX_POS, B>
{
    fn rotate(&self, pos: usize, x: &mut [T]) -> Result<()> {
        RopeTable::rotate(self, pos, x)
    }
    fn rotate_rows(&self, start: usize, x: MatMut<'_, T>, heads: usize) -> Result<()> {
        RopeTable::rotate_rows(self, start, x, heads)
    }
}

#[cfg(feature = "std")]
pub use dynamic::RopeDyn;

#[cfg(feature = "std")]
mod dynamic {
    use std::vec;
    use std::vec::Vec;

    use super::*;
    use crate::matrix::{Matrix, filled_vec, zeros_vec};

    /// Runtime-shaped RoPE (`std`): the rotary dimension is a constructor
    /// argument, and an optional owned table covers positions `0..max_pos`.
    ///
    /// ```
    /// use constml::position::{BeyondTable, RopeConfig, RopeDyn, RopeLayout};
    /// let rope = RopeDyn::<f32>::new(RopeConfig::new(RopeLayout::Interleaved), 64)?
    ///     .with_table(2048, BeyondTable::Compute)?;
    /// let mut q = vec![1.0f32; 64];
    /// rope.rotate(5000, &mut q)?; // past the table: computed on the fly
    /// assert!(RopeDyn::<f32>::new(RopeConfig::new(RopeLayout::Interleaved), 7).is_err());
    /// # Ok::<(), constml::Error>(())
    /// ```
    #[derive(Clone, Debug)]
    pub struct RopeDyn<T, B = Simd> {
        cfg: RopeConfig,
        r: usize,
        inv: Vec<f64>,
        table: Option<(Vec<T>, Vec<T>, usize)>,
        beyond: BeyondTable,
        _b: PhantomData<B>,
    }

    impl<T: Real, B: Backend> RopeDyn<T, B> {
        /// On-the-fly RoPE of the first `rotary_dim` coordinates; `Err` on a
        /// bad configuration ([`RopeConfig::check`]: odd or zero dimension, …).
        pub fn new(cfg: RopeConfig, rotary_dim: usize) -> Result<Self> {
            cfg.check(rotary_dim)?;
            let mut inv = filled_vec("rope: rotary dimension", rotary_dim / 2, 0.0f64)?;
            cfg.fill_freqs(rotary_dim, &mut inv);
            Ok(Self {
                cfg,
                r: rotary_dim,
                inv,
                table: None,
                beyond: BeyondTable::Compute,
                _b: PhantomData,
            })
        }

        /// Adds a table for positions `0..max_pos` (`2·max_pos·R` elements);
        /// past it, `beyond` applies.
        pub fn with_table(mut self, max_pos: usize, beyond: BeyondTable) -> Result<Self> {
            let len = max_pos.checked_mul(self.r).ok_or(Error::InvalidParameter {
                what: "rope table: max_pos",
                reason: "max_pos · rotary dimension overflows usize",
            })?;
            let (mut c, mut s) = (zeros_vec("rope table", len)?, zeros_vec("rope table", len)?);
            for (p, (cr, sr)) in c
                .chunks_exact_mut(self.r)
                .zip(s.chunks_exact_mut(self.r))
                .enumerate()
            {
                self.cfg.coefficients(&self.inv, p, cr, sr);
            }
            self.table = Some((c, s, max_pos));
            self.beyond = beyond;
            Ok(self)
        }

        /// The configuration.
        pub fn config(&self) -> &RopeConfig {
            &self.cfg
        }
        /// The rotary dimension `R`.
        pub fn rotary_dim(&self) -> usize {
            self.r
        }
        /// The per-pair frequencies (length `R/2`).
        pub fn freqs(&self) -> &[f64] {
            &self.inv
        }

        /// The coefficients of `pos` as `(cos, sin)`, each of length `R`, in the
        /// layout's order (see [`Rope::coefficients`]).
        pub fn coefficients(&self, pos: usize) -> (Vec<T>, Vec<T>) {
            let (mut c, mut s) = (vec![T::ZERO; self.r], vec![T::ZERO; self.r]);
            self.cfg.coefficients(&self.inv, pos, &mut c, &mut s);
            (c, s)
        }

        /// Runs `f` on the coefficients of `pos`: table rows, or computed into
        /// `buf` (length `2R`).
        fn with_rows(
            &self,
            pos: usize,
            buf: &mut [T],
            mut f: impl FnMut(&[T], &[T]),
        ) -> Result<()> {
            if let Some((c, s, max)) = &self.table {
                if pos < *max {
                    let row = pos * self.r..(pos + 1) * self.r;
                    f(&c[row.clone()], &s[row]);
                    return Ok(());
                }
                if self.beyond == BeyondTable::Error {
                    return Err(Error::OutOfRange {
                        what: "rope table: position",
                        index: pos,
                        len: *max,
                    });
                }
            }
            let (c, s) = buf.split_at_mut(self.r);
            self.cfg.coefficients(&self.inv, pos, c, s);
            f(c, s);
            Ok(())
        }

        /// Rotates one head vector (length `≥ R`) for absolute position `pos`.
        pub fn rotate(&self, pos: usize, x: &mut [T]) -> Result<()> {
            check_head(self.r, x.len())?;
            let mut buf = if self.table.is_some() && pos < self.table_len() {
                Vec::new()
            } else {
                vec![T::ZERO; 2 * self.r]
            };
            let layout = self.cfg.layout;
            self.with_rows(pos, &mut buf, |c, s| apply::<B, T>(layout, x, c, s))
        }

        fn table_len(&self) -> usize {
            self.table.as_ref().map_or(0, |t| t.2)
        }

        /// Rotates every head of every row of `x` `(N, heads·D)`, row `i` at
        /// position `start + i`.
        pub fn rotate_rows(&self, start: usize, x: MatMut<'_, T>, heads: usize) -> Result<()> {
            if let Some((_, _, max)) = &self.table
                && self.beyond == BeyondTable::Error
                && x.rows() > 0
            {
                let last = row_position(start, x.rows() - 1)?;
                if last >= *max {
                    return Err(Error::OutOfRange {
                        what: "rope table: position",
                        index: last,
                        len: *max,
                    });
                }
            }
            let mut buf = vec![T::ZERO; 2 * self.r];
            let layout = self.cfg.layout;
            for_each_row(self.r, start, x, heads, |pos, row, d| {
                self.with_rows(pos, &mut buf, |c, s| {
                    for h in row.chunks_exact_mut(d) {
                        apply::<B, T>(layout, h, c, s);
                    }
                })
            })
        }

        /// [`rotate_rows`](RopeDyn::rotate_rows) on a [`Matrix`].
        pub fn rotate_matrix(&self, start: usize, x: &mut Matrix<T>, heads: usize) -> Result<()> {
            self.rotate_rows(start, x.view_mut(), heads)
        }
    }

    impl<T: Real, B: Backend> Rotation<T> for RopeDyn<T, B> {
        fn rotate(&self, pos: usize, x: &mut [T]) -> Result<()> {
            RopeDyn::rotate(self, pos, x)
        }
        fn rotate_rows(&self, start: usize, x: MatMut<'_, T>, heads: usize) -> Result<()> {
            RopeDyn::rotate_rows(self, start, x, heads)
        }
    }
}
