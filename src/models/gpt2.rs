//! The GPT-2 family decoder (Hugging Face `GPT2LMHeadModel`): token and
//! learned position embeddings, pre-LayerNorm blocks of causal multi-head
//! self-attention over a KV cache and a GELU (tanh form) MLP, a final
//! LayerNorm, and the LM head tied to the token embedding.
//!
//! ```text
//! x = wte[token] + wpe[position]
//! per layer:
//!   x += Wo·attend(q, k, v of LN1(x)) + bo        (q, k, v = W_qkv·LN1(x) + b_qkv)
//!   x += W_proj·gelu_tanh(W_fc·LN2(x) + b_fc) + b_proj
//! logits = wte·LNf(x)
//! ```
//!
//! # Weights
//!
//! [`Gpt2Weights`] borrows every tensor in constml's `(OUT, IN)` layout.
//! Hugging Face's checkpoints store GPT-2's `Conv1D` weights as `(IN, OUT)`:
//! convert them once at load ([`conv1d_to_linear`]). `c_attn`'s output holds
//! the q, k and v blocks in that order, so `W_qkv` is `(3E, E)` with rows
//! `0..E` the queries'.
//!
//! # State and positions
//!
//! [`Gpt2State`] holds the KV caches of every layer, the activations of a
//! chunk of tokens and the logits, in one caller-provided arena
//! ([`Gpt2Config::state_len`]). The cache is bounded (`capacity` =
//! positions, at most `n_positions`) or a ring buffer (a sliding window of
//! `capacity` keys, positions keep growing). Either way a position must be
//! below `n_positions`, the length of the learned position table: past it
//! is [`Error::OutOfRange`].
//!
//! The const face [`Gpt2Sized`] fixes vocabulary, context, width, heads and
//! layers as const parameters (checked at compile time).

use core::marker::PhantomData;

use crate::attention::{
    AttnOptions, CacheLedger, CachePolicy, KvCacheView, MhaBuffers, MhaParams, NoRotation,
    attend_cache_scratch_len, decoder_attention_views_with, gqa_scratch_len,
};
use crate::backend::{Backend, Simd};
use crate::error::{Error, Result, check_len};
use crate::mat::{MatMut, MatRef};
use crate::models::llama::LogitRows;
use crate::nn::linear::linear_views_with;
use crate::norm::layer_norm_views_with;
use crate::real::Real;

/// The sizes of a GPT-2 model.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Gpt2Config {
    /// Vocabulary size `V`.
    pub vocab_size: usize,
    /// Learned positions (`n_positions`, the context).
    pub n_positions: usize,
    /// Width `E`.
    pub n_embd: usize,
    /// Layers.
    pub n_layer: usize,
    /// Heads (divides `E`).
    pub n_head: usize,
    /// LayerNorm epsilon (`layer_norm_epsilon`, 1e-5).
    pub eps: f64,
}

impl Gpt2Config {
    /// GPT-2's sizes with `eps` 1e-5.
    pub const fn new(
        vocab_size: usize,
        n_positions: usize,
        n_embd: usize,
        n_layer: usize,
        n_head: usize,
    ) -> Self {
        Self {
            vocab_size,
            n_positions,
            n_embd,
            n_layer,
            n_head,
            eps: 1e-5,
        }
    }

    /// `Err` for a zero size, heads that do not divide the width, a
    /// non-positive or non-finite `eps`, or sizes that overflow.
    pub fn check(&self) -> Result<()> {
        let bad = |reason| {
            Err(Error::InvalidParameter {
                what: "Gpt2Config",
                reason,
            })
        };
        let s = [
            self.vocab_size,
            self.n_positions,
            self.n_embd,
            self.n_layer,
            self.n_head,
        ];
        if s.contains(&0) {
            return bad("every size must be at least 1");
        }
        if !self.n_embd.is_multiple_of(self.n_head) {
            return bad("n_head must divide n_embd");
        }
        if !(self.eps.is_finite() && self.eps > 0.0) {
            return bad("eps must be finite and positive");
        }
        if self.weights_len() == usize::MAX || self.state_len(1, self.n_positions) == usize::MAX {
            return bad("sizes overflow usize");
        }
        Ok(())
    }

    /// Elements of the weights in [`Gpt2Weights::from_flat`]'s order.
    pub const fn weights_len(&self) -> usize {
        let e = self.n_embd;
        let per_layer = sum(&[
            e.saturating_mul(4),                   // ln1 w, b; ln2 w, b
            e.saturating_mul(e).saturating_mul(3), // w_qkv
            e.saturating_mul(3),                   // b_qkv
            e.saturating_mul(e),                   // w_o
            e,                                     // b_o
            e.saturating_mul(e).saturating_mul(4), // w_fc
            e.saturating_mul(4),                   // b_fc
            e.saturating_mul(e).saturating_mul(4), // w_proj
            e,                                     // b_proj
        ]);
        sum(&[
            self.vocab_size.saturating_mul(e),
            self.n_positions.saturating_mul(e),
            self.n_layer.saturating_mul(per_layer),
            e.saturating_mul(2),
        ])
    }

    /// Elements of the state arena for a cache of `capacity` positions and
    /// chunks of up to `chunk` tokens (saturating). A `const fn`.
    pub const fn state_len(&self, chunk: usize, capacity: usize) -> usize {
        let e = self.n_embd;
        let cache = self
            .n_layer
            .saturating_mul(capacity)
            .saturating_mul(e)
            .saturating_mul(2);
        let acts = sum(&[
            e.saturating_mul(7), // x, h, out, q, k, v, ctx
            e.saturating_mul(4), // MLP hidden
            self.vocab_size,
        ])
        .saturating_mul(chunk);
        let a = attend_cache_scratch_len(chunk, capacity);
        let b = gqa_scratch_len(1, capacity.saturating_add(1), self.n_head, self.n_head);
        sum(&[cache, acts, if a > b { a } else { b }])
    }
}

const fn sum(v: &[usize]) -> usize {
    let mut s = 0usize;
    let mut i = 0;
    while i < v.len() {
        s = s.saturating_add(v[i]);
        i += 1;
    }
    s
}

/// Converts a Hugging Face `Conv1D` weight `(IN, OUT)` into constml's
/// `(OUT, IN)` layout: `dst[o·IN + i] = src[i·OUT + o]`.
pub fn conv1d_to_linear<T: Copy>(
    src: &[T],
    inputs: usize,
    outputs: usize,
    dst: &mut [T],
) -> Result<()> {
    let n = inputs.checked_mul(outputs).ok_or(Error::InvalidParameter {
        what: "conv1d_to_linear",
        reason: "sizes overflow usize",
    })?;
    check_len("conv1d_to_linear: src", n, src.len())?;
    check_len("conv1d_to_linear: dst", n, dst.len())?;
    for (i, row) in src.chunks_exact(outputs.max(1)).enumerate() {
        for (o, &v) in row.iter().enumerate() {
            dst[o * inputs + i] = v;
        }
    }
    Ok(())
}

/// A GPT-2 model's weights, borrowed, `(OUT, IN)` row-major; per-layer
/// tensors of all layers back to back.
#[derive(Clone, Copy, Debug)]
pub struct Gpt2Weights<'a, T> {
    /// Token embedding `(V, E)` (also the LM head).
    pub wte: &'a [T],
    /// Position embedding `(n_positions, E)`.
    pub wpe: &'a [T],
    /// LN1 weight and bias `(L, E)` each.
    pub ln1_w: &'a [T],
    /// LN1 bias.
    pub ln1_b: &'a [T],
    /// q, k, v projections `(L, 3E, E)` (queries' rows first).
    pub w_qkv: &'a [T],
    /// Their biases `(L, 3E)`.
    pub b_qkv: &'a [T],
    /// Attention output projection `(L, E, E)`.
    pub w_o: &'a [T],
    /// Its bias `(L, E)`.
    pub b_o: &'a [T],
    /// LN2 weight `(L, E)`.
    pub ln2_w: &'a [T],
    /// LN2 bias.
    pub ln2_b: &'a [T],
    /// MLP in `(L, 4E, E)`.
    pub w_fc: &'a [T],
    /// Its bias `(L, 4E)`.
    pub b_fc: &'a [T],
    /// MLP out `(L, E, 4E)`.
    pub w_proj: &'a [T],
    /// Its bias `(L, E)`.
    pub b_proj: &'a [T],
    /// Final LayerNorm weight `(E)`.
    pub lnf_w: &'a [T],
    /// Final LayerNorm bias `(E)`.
    pub lnf_b: &'a [T],
}

impl<'a, T: Real> Gpt2Weights<'a, T> {
    /// Views of a flat buffer of [`Gpt2Config::weights_len`] elements in the
    /// field order of this struct (`wte`, `wpe`, `ln1_w`, `ln1_b`, `w_qkv`,
    /// `b_qkv`, `w_o`, `b_o`, `ln2_w`, `ln2_b`, `w_fc`, `b_fc`, `w_proj`,
    /// `b_proj`, each for all layers, then `lnf_w`, `lnf_b`). No copy.
    pub fn from_flat(cfg: &Gpt2Config, data: &'a [T]) -> Result<Self> {
        cfg.check()?;
        check_len("GPT-2 weights", cfg.weights_len(), data.len())?;
        let (e, l) = (cfg.n_embd, cfg.n_layer);
        let mut rest = data;
        let mut take = |n: usize| {
            let (a, b) = rest.split_at(n);
            rest = b;
            a
        };
        Ok(Self {
            wte: take(cfg.vocab_size * e),
            wpe: take(cfg.n_positions * e),
            ln1_w: take(l * e),
            ln1_b: take(l * e),
            w_qkv: take(l * 3 * e * e),
            b_qkv: take(l * 3 * e),
            w_o: take(l * e * e),
            b_o: take(l * e),
            ln2_w: take(l * e),
            ln2_b: take(l * e),
            w_fc: take(l * 4 * e * e),
            b_fc: take(l * 4 * e),
            w_proj: take(l * 4 * e * e),
            b_proj: take(l * e),
            lnf_w: take(e),
            lnf_b: take(e),
        })
    }

    /// `Err` unless every tensor has the length `cfg` gives it.
    pub fn check(&self, cfg: &Gpt2Config) -> Result<()> {
        cfg.check()?;
        let (e, l) = (cfg.n_embd, cfg.n_layer);
        for (what, want, got) in [
            ("GPT-2: wte", cfg.vocab_size * e, self.wte.len()),
            ("GPT-2: wpe", cfg.n_positions * e, self.wpe.len()),
            ("GPT-2: ln1_w", l * e, self.ln1_w.len()),
            ("GPT-2: ln1_b", l * e, self.ln1_b.len()),
            ("GPT-2: w_qkv", l * 3 * e * e, self.w_qkv.len()),
            ("GPT-2: b_qkv", l * 3 * e, self.b_qkv.len()),
            ("GPT-2: w_o", l * e * e, self.w_o.len()),
            ("GPT-2: b_o", l * e, self.b_o.len()),
            ("GPT-2: ln2_w", l * e, self.ln2_w.len()),
            ("GPT-2: ln2_b", l * e, self.ln2_b.len()),
            ("GPT-2: w_fc", l * 4 * e * e, self.w_fc.len()),
            ("GPT-2: b_fc", l * 4 * e, self.b_fc.len()),
            ("GPT-2: w_proj", l * 4 * e * e, self.w_proj.len()),
            ("GPT-2: b_proj", l * e, self.b_proj.len()),
            ("GPT-2: lnf_w", e, self.lnf_w.len()),
            ("GPT-2: lnf_b", e, self.lnf_b.len()),
        ] {
            check_len(what, want, got)?;
        }
        Ok(())
    }
}

/// The run-time state of a GPT-2 model in one caller-provided arena.
#[derive(Debug)]
pub struct Gpt2State<'s, T> {
    cfg: Gpt2Config,
    chunk: usize,
    ledger: CacheLedger,
    keys: &'s mut [T],
    values: &'s mut [T],
    x: &'s mut [T],
    h: &'s mut [T],
    out: &'s mut [T],
    q: &'s mut [T],
    k: &'s mut [T],
    v: &'s mut [T],
    ctx: &'s mut [T],
    mlp: &'s mut [T],
    scores: &'s mut [T],
    logits: &'s mut [T],
    logit_rows: usize,
}

impl<'s, T: Real> Gpt2State<'s, T> {
    /// A fresh state: KV caches of `capacity` positions under `policy`
    /// (bounded: at most `n_positions`; a ring: any capacity ≥ 1, a sliding
    /// window), chunks of up to `chunk` tokens, in `arena` of at least
    /// [`Gpt2Config::state_len`]`(chunk, capacity)` elements.
    pub fn new(
        cfg: &Gpt2Config,
        chunk: usize,
        capacity: usize,
        policy: CachePolicy,
        arena: &'s mut [T],
    ) -> Result<Self> {
        cfg.check()?;
        if chunk == 0 || capacity == 0 {
            return Err(Error::InvalidParameter {
                what: "Gpt2State",
                reason: "chunk and capacity must be at least 1",
            });
        }
        if policy == CachePolicy::Bounded && capacity > cfg.n_positions {
            return Err(Error::InvalidParameter {
                what: "Gpt2State: capacity",
                reason: "a bounded cache holds at most n_positions positions",
            });
        }
        let need = cfg.state_len(chunk, capacity);
        if need == usize::MAX {
            return Err(Error::InvalidParameter {
                what: "Gpt2State",
                reason: "the state size overflows usize",
            });
        }
        let found = arena.len();
        let arena = arena.get_mut(..need).ok_or(Error::BufferTooSmall {
            what: "Gpt2State: arena",
            needed: need,
            found,
        })?;
        let e = cfg.n_embd;
        let cache = cfg.n_layer * capacity * e;
        let mut rest = arena;
        let mut take = |n: usize| {
            let (a, b) = core::mem::take(&mut rest).split_at_mut(n);
            rest = b;
            a
        };
        Ok(Self {
            cfg: *cfg,
            chunk,
            ledger: CacheLedger::empty(policy, capacity),
            keys: take(cache),
            values: take(cache),
            x: take(chunk * e),
            h: take(chunk * e),
            out: take(chunk * e),
            q: take(chunk * e),
            k: take(chunk * e),
            v: take(chunk * e),
            ctx: take(chunk * e),
            mlp: take(chunk * 4 * e),
            scores: take({
                let a = attend_cache_scratch_len(chunk, capacity);
                let b = gqa_scratch_len(1, capacity + 1, cfg.n_head, cfg.n_head);
                a.max(b)
            }),
            logits: take(chunk * cfg.vocab_size),
            logit_rows: 0,
        })
    }

    /// The next position.
    pub fn position(&self) -> usize {
        self.ledger.next()
    }

    /// Forgets every position.
    pub fn reset(&mut self) {
        self.ledger = CacheLedger::empty(self.ledger.policy(), self.ledger.capacity());
        self.logit_rows = 0;
    }

    /// The logits of the last forward pass (`rows × V`).
    pub fn logits(&self) -> &[T] {
        &self.logits[..self.logit_rows * self.cfg.vocab_size]
    }

    /// Whether `other` has this state's configuration, capacity and policy.
    pub fn same_shape(&self, other: &Gpt2State<'_, T>) -> bool {
        self.cfg == other.cfg
            && self.ledger.capacity() == other.ledger.capacity()
            && self.ledger.policy() == other.ledger.policy()
            && self.keys.len() == other.keys.len()
    }

    /// Makes this state a copy of `src` (same configuration, capacity and
    /// policy): its cache contents and positions — a beam continuing from
    /// another.
    pub fn copy_from(&mut self, src: &Gpt2State<'_, T>) -> Result<()> {
        if !self.same_shape(src) {
            return Err(Error::InvalidParameter {
                what: "Gpt2State::copy_from",
                reason: "states of different shapes",
            });
        }
        self.keys.copy_from_slice(src.keys);
        self.values.copy_from_slice(src.values);
        self.ledger = src.ledger;
        Ok(())
    }
}

/// A GPT-2 model: sizes and borrowed weights; `B` the backend.
#[derive(Clone, Copy, Debug)]
pub struct Gpt2<'a, T, B = Simd> {
    cfg: Gpt2Config,
    w: Gpt2Weights<'a, T>,
    _b: PhantomData<B>,
}

impl<'a, T: Real, B: Backend> Gpt2<'a, T, B> {
    /// A model over `weights` (lengths checked against `cfg`).
    pub fn new(cfg: Gpt2Config, weights: Gpt2Weights<'a, T>) -> Result<Self> {
        weights.check(&cfg)?;
        Ok(Self {
            cfg,
            w: weights,
            _b: PhantomData,
        })
    }

    /// The sizes.
    pub fn config(&self) -> &Gpt2Config {
        &self.cfg
    }

    /// Feeds `tokens` (at most `state`'s chunk) at the next positions and
    /// computes the logits `rows` asks for. Errors, with the state
    /// unchanged: an empty or oversized chunk, a token id `≥ V`, a position
    /// `≥ n_positions` ([`Error::OutOfRange`]), a full bounded cache
    /// ([`Error::CacheFull`]), a state of another configuration.
    pub fn forward(
        &self,
        tokens: &[usize],
        state: &mut Gpt2State<'_, T>,
        rows: LogitRows,
    ) -> Result<()> {
        let cfg = &self.cfg;
        super::check_chunk(state.cfg == *cfg, tokens, state.chunk, cfg.vocab_size)?;
        let n = tokens.len();
        let start = state.ledger.next();
        if start + n > cfg.n_positions {
            return Err(Error::OutOfRange {
                what: "Gpt2::forward: position (beyond the learned table, n_positions)",
                index: start + n - 1,
                len: cfg.n_positions,
            });
        }
        if state.ledger.policy() == CachePolicy::Bounded && start + n > state.ledger.capacity() {
            return Err(Error::CacheFull {
                capacity: state.ledger.capacity(),
            });
        }
        let e = cfg.n_embd;
        let eps = T::from_f64(cfg.eps);
        let st = state;
        for (i, (row, &t)) in st.x.chunks_exact_mut(e).zip(tokens).enumerate() {
            let p = start + i;
            row.copy_from_slice(&self.w.wte[t * e..(t + 1) * e]);
            B::raw_zip(row, &self.w.wpe[p * e..(p + 1) * e], false);
        }
        let cache_len = st.ledger.capacity() * e;
        let mut ledger = st.ledger;
        for l in 0..cfg.n_layer {
            let le = l * e..(l + 1) * e;
            layer_norm_views_with::<B, T>(
                MatRef::new(&st.x[..n * e], n, e)?,
                MatMut::new(&mut st.h[..n * e], n, e)?,
                Some(&self.w.ln1_w[le.clone()]),
                Some(&self.w.ln1_b[le.clone()]),
                eps,
                None,
            )?;
            let qkv = &self.w.w_qkv[l * 3 * e * e..(l + 1) * 3 * e * e];
            let bqkv = &self.w.b_qkv[l * 3 * e..(l + 1) * 3 * e];
            let p = MhaParams {
                heads: cfg.n_head,
                kv_heads: cfg.n_head,
                w_q: MatRef::new(&qkv[..e * e], e, e)?,
                b_q: Some(&bqkv[..e]),
                w_k: MatRef::new(&qkv[e * e..2 * e * e], e, e)?,
                b_k: Some(&bqkv[e..2 * e]),
                w_v: MatRef::new(&qkv[2 * e * e..], e, e)?,
                b_v: Some(&bqkv[2 * e..]),
                w_o: MatRef::new(&self.w.w_o[l * e * e..(l + 1) * e * e], e, e)?,
                b_o: Some(&self.w.b_o[le.clone()]),
            };
            let mut cache = KvCacheView::resume(
                &mut st.keys[l * cache_len..(l + 1) * cache_len],
                &mut st.values[l * cache_len..(l + 1) * cache_len],
                cfg.n_head,
                e / cfg.n_head,
                st.ledger,
            )?;
            let buf = MhaBuffers {
                q: MatMut::new(&mut st.q[..n * e], n, e)?,
                k: MatMut::new(&mut st.k[..n * e], n, e)?,
                v: MatMut::new(&mut st.v[..n * e], n, e)?,
                ctx: MatMut::new(&mut st.ctx[..n * e], n, e)?,
                scores: st.scores,
            };
            decoder_attention_views_with::<B, T, _>(
                &p,
                MatRef::new(&st.h[..n * e], n, e)?,
                &mut cache,
                &NoRotation,
                buf,
                MatMut::new(&mut st.out[..n * e], n, e)?,
                &AttnOptions::default(),
            )?;
            ledger = cache.ledger();
            B::raw_zip(&mut st.x[..n * e], &st.out[..n * e], false);
            layer_norm_views_with::<B, T>(
                MatRef::new(&st.x[..n * e], n, e)?,
                MatMut::new(&mut st.h[..n * e], n, e)?,
                Some(&self.w.ln2_w[le.clone()]),
                Some(&self.w.ln2_b[le.clone()]),
                eps,
                None,
            )?;
            let f = 4 * e;
            linear_views_with::<B, T>(
                MatRef::new(&st.h[..n * e], n, e)?,
                MatRef::new(&self.w.w_fc[l * f * e..(l + 1) * f * e], f, e)?,
                Some(&self.w.b_fc[l * f..(l + 1) * f]),
                MatMut::new(&mut st.mlp[..n * f], n, f)?,
            )?;
            B::gelu_tanh(&mut st.mlp[..n * f]);
            linear_views_with::<B, T>(
                MatRef::new(&st.mlp[..n * f], n, f)?,
                MatRef::new(&self.w.w_proj[l * e * f..(l + 1) * e * f], e, f)?,
                Some(&self.w.b_proj[le]),
                MatMut::new(&mut st.out[..n * e], n, e)?,
            )?;
            B::raw_zip(&mut st.x[..n * e], &st.out[..n * e], false);
        }
        st.ledger = ledger;
        let (lnf_w, lnf_b) = (self.w.lnf_w, self.w.lnf_b);
        let wte = MatRef::new(self.w.wte, cfg.vocab_size, e)?;
        st.logit_rows = super::lm_head::<T>(
            rows,
            st.x,
            n,
            e,
            st.h,
            |x, y| layer_norm_views_with::<B, T>(x, y, Some(lnf_w), Some(lnf_b), eps, None),
            |h, logits| linear_views_with::<B, T>(h, wte, None, logits),
            cfg.vocab_size,
            st.logits,
        )?;
        Ok(())
    }
}

/// The const face: a GPT-2 whose vocabulary `V`, context `CTX`, width `E`,
/// heads `H` and layers `L` are const parameters (`H` divides `E`, every
/// size ≥ 1: compile-time assertions). [`Gpt2Sized::STATE_LEN`] sizes a
/// state arena for one-token steps over a full bounded cache.
///
/// ```
/// use constml::models::{Gpt2Sized, Gpt2Weights, LogitRows};
/// type Tiny = Gpt2Sized<'static, f32, 16, 8, 8, 2, 1>;
/// static W: [f32; Tiny::WEIGHTS_LEN] = [0.01; Tiny::WEIGHTS_LEN];
/// let m = Tiny::new(Gpt2Weights::from_flat(&Tiny::CONFIG, &W)?)?;
/// let mut arena = [0.0f32; Tiny::STATE_LEN];
/// let mut st = m.state(&mut arena)?;
/// m.forward(&[3], &mut st, LogitRows::Last)?;
/// assert_eq!(st.logits().len(), 16);
/// # Ok::<(), constml::Error>(())
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Gpt2Sized<
    'a,
    T,
    const V: usize,
    const CTX: usize,
    const E: usize,
    const H: usize,
    const L: usize,
    B = Simd,
> {
    inner: Gpt2<'a, T, B>,
}

impl<
    'a,
    T: Real,
    const V: usize,
    const CTX: usize,
    const E: usize,
    const H: usize,
    const L: usize,
    B: Backend,
> Gpt2Sized<'a, T, V, CTX, E, H, L, B>
{
    /// The sizes as a [`Gpt2Config`] (eps 1e-5).
    pub const CONFIG: Gpt2Config = Gpt2Config::new(V, CTX, E, L, H);
    /// Elements of the weights.
    pub const WEIGHTS_LEN: usize = Self::CONFIG.weights_len();
    /// Elements of a state arena for one-token steps and a bounded cache of
    /// `CTX` positions.
    pub const STATE_LEN: usize = Self::CONFIG.state_len(1, CTX);

    /// A model over `weights` (checked against the const sizes).
    pub fn new(weights: Gpt2Weights<'a, T>) -> Result<Self> {
        const {
            assert!(
                V > 0 && CTX > 0 && E > 0 && H > 0 && L > 0,
                "GPT-2: every size must be at least 1"
            );
            assert!(E.is_multiple_of(H), "GPT-2: H must divide E");
        };
        Ok(Self {
            inner: Gpt2::new(Self::CONFIG, weights)?,
        })
    }

    /// A bounded one-token-step state of `CTX` positions in `arena` (at
    /// least `STATE_LEN` elements: `[T; Model::STATE_LEN]` for a concrete
    /// model type).
    pub fn state<'s>(&self, arena: &'s mut [T]) -> Result<Gpt2State<'s, T>> {
        Gpt2State::new(&Self::CONFIG, 1, CTX, CachePolicy::Bounded, arena)
    }

    /// [`Gpt2::forward`].
    pub fn forward(
        &self,
        tokens: &[usize],
        state: &mut Gpt2State<'_, T>,
        rows: LogitRows,
    ) -> Result<()> {
        self.inner.forward(tokens, state, rows)
    }

    /// The runtime model.
    pub fn model(&self) -> &Gpt2<'a, T, B> {
        &self.inner
    }
}

super::impl_decoder!(Gpt2, Gpt2State);
