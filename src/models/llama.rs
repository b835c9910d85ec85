//! The Llama family decoder (llama2.c's architecture): token embedding, then
//! per layer RMSNorm → grouped-query causal self-attention with interleaved
//! RoPE over a KV cache → residual, RMSNorm → SwiGLU MLP → residual; a
//! final RMSNorm and the classifier (tied to the embedding or not).
//!
//! ```text
//! x = E[token]
//! per layer l:
//!   h  = RMSNorm(x) ⊙ g_att           (eps 1e-5 inside the mean)
//!   q, k, v = Wq·h, Wk·h, Wv·h         (k, v: n_kv_heads heads)
//!   rotate q, k (interleaved pairs (2i, 2i+1), θ = 10 000) at their positions
//!   x += Wo·attend(q, cache ∪ {k, v})  (query head h reads kv head h / (H / KVH))
//!   h  = RMSNorm(x) ⊙ g_ffn
//!   x += W2·(silu(W1·h) ⊙ W3·h)
//! logits = Wcls·(RMSNorm(x) ⊙ g_final)
//! ```
//!
//! Weights are `(OUT, IN)` row-major (llama2.c's and PyTorch's layout) and
//! borrowed ([`LlamaWeights`]): from a `&'static` array in flash, or from a
//! buffer a checkpoint was decoded into ([`llama2c`](super::llama2c)). All
//! run-time state — the KV caches, the RoPE table, the activations of a chunk
//! of tokens, the logits — lives in one caller-provided arena
//! ([`LlamaState`], sized by the `const fn` [`LlamaConfig::state_len`]): a
//! forward pass allocates nothing.
//!
//! A chunk of tokens (a prompt) goes through as matrix products in one call;
//! decoding then feeds one token at a time from the cache. Positions are
//! bounded by the configuration's `seq_len` (the cache's capacity): a token
//! past it is [`Error::CacheFull`].

use core::marker::PhantomData;

use crate::attention::kv_cache::attend_then_append_with;
use crate::attention::{
    AttnOptions, CacheLedger, CachePolicy, KvCacheView, Rotation, WeightsOut,
    attend_cache_scratch_len, gqa_scratch_len, rotate_heads,
};
use crate::backend::{Backend, Simd};
use crate::error::{Error, Result, check_len};
use crate::mat::{MatMut, MatRef};
use crate::nn::linear::linear_views_with;
use crate::norm::rms_norm_views_with;
use crate::real::Real;

/// RMSNorm's epsilon in llama2.c and Llama 2.
pub const LLAMA_NORM_EPS: f64 = 1e-5;
/// RoPE base.
pub const LLAMA_ROPE_THETA: f64 = 10_000.0;

/// The sizes of a Llama model (llama2.c's header).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LlamaConfig {
    /// Model width.
    pub dim: usize,
    /// MLP width.
    pub hidden_dim: usize,
    /// Decoder layers.
    pub n_layers: usize,
    /// Query heads.
    pub n_heads: usize,
    /// Key/value heads (divides `n_heads`).
    pub n_kv_heads: usize,
    /// Vocabulary size.
    pub vocab_size: usize,
    /// Context length: positions `0 .. seq_len`.
    pub seq_len: usize,
    /// Whether the classifier is the token embedding (tied).
    pub shared_classifier: bool,
}

impl LlamaConfig {
    /// Head width `dim / n_heads` (0 when `n_heads` is 0).
    pub const fn head_size(&self) -> usize {
        match self.dim.checked_div(self.n_heads) {
            Some(h) => h,
            None => 0,
        }
    }

    /// Width of the keys (and values) of one position: `n_kv_heads · head_size`.
    pub const fn kv_dim(&self) -> usize {
        self.n_kv_heads.saturating_mul(self.head_size())
    }

    /// `Err` unless every size is at least 1, `n_heads` divides `dim` into an
    /// even head size, `n_kv_heads` divides `n_heads`, and the weight and
    /// state sizes fit in `usize`.
    pub fn check(&self) -> Result<()> {
        let bad = |reason| {
            Err(Error::InvalidParameter {
                what: "LlamaConfig",
                reason,
            })
        };
        let sizes = [
            self.dim,
            self.hidden_dim,
            self.n_layers,
            self.n_heads,
            self.n_kv_heads,
            self.vocab_size,
            self.seq_len,
        ];
        if sizes.contains(&0) {
            return bad("every size must be at least 1");
        }
        if !self.dim.is_multiple_of(self.n_heads) || !self.head_size().is_multiple_of(2) {
            return bad("n_heads must divide dim into an even head size");
        }
        if !self.n_heads.is_multiple_of(self.n_kv_heads) {
            return bad("n_kv_heads must divide n_heads");
        }
        if self.weights_len() == usize::MAX || self.state_len(1) == usize::MAX {
            return bad("sizes overflow usize");
        }
        Ok(())
    }

    /// Elements of the weights, in llama2.c's order (see
    /// [`LlamaWeights::from_flat`]): the embedding, per-kind blocks of every
    /// layer, the final norm, and the classifier when untied — without
    /// llama2.c's two RoPE tables. Saturates at `usize::MAX`.
    pub const fn weights_len(&self) -> usize {
        let (d, kv, hid, l) = (self.dim, self.kv_dim(), self.hidden_dim, self.n_layers);
        let per_layer = sum(&[
            d,                     // rms_att
            d.saturating_mul(d),   // wq
            kv.saturating_mul(d),  // wk
            kv.saturating_mul(d),  // wv
            d.saturating_mul(d),   // wo
            d,                     // rms_ffn
            hid.saturating_mul(d), // w1
            d.saturating_mul(hid), // w2
            hid.saturating_mul(d), // w3
        ]);
        let emb = self.vocab_size.saturating_mul(d);
        sum(&[
            emb,
            l.saturating_mul(per_layer),
            d,
            if self.shared_classifier { 0 } else { emb },
        ])
    }

    /// Elements of the state arena for chunks of up to `chunk` tokens:
    /// both KV caches (`2·n_layers·seq_len·kv_dim`), the RoPE table
    /// (`2·seq_len·head_size`), the activations of a chunk and its logits
    /// (`chunk·vocab_size`), the attention scores. Saturates at `usize::MAX`.
    /// A `const fn`: `static mut`-free firmware sizes a `static` arena with
    /// it.
    pub const fn state_len(&self, chunk: usize) -> usize {
        let (d, kv, hid, hs) = (self.dim, self.kv_dim(), self.hidden_dim, self.head_size());
        let cache = self
            .n_layers
            .saturating_mul(self.seq_len)
            .saturating_mul(kv);
        let rope = self.seq_len.saturating_mul(hs);
        let acts = sum(&[
            d.saturating_mul(5), // x, xb, xb2, q, ctx
            hid.saturating_mul(2),
            kv.saturating_mul(2),
            self.vocab_size,
        ])
        .saturating_mul(chunk);
        sum(&[
            cache.saturating_mul(2),
            rope.saturating_mul(2),
            acts,
            self.scores_len(chunk),
        ])
    }

    /// Bytes of [`state_len`](Self::state_len) elements of `T`.
    pub const fn state_bytes<T>(&self, chunk: usize) -> usize {
        self.state_len(chunk)
            .saturating_mul(core::mem::size_of::<T>())
    }

    const fn scores_len(&self, chunk: usize) -> usize {
        let a = attend_cache_scratch_len(chunk, self.seq_len);
        let b = gqa_scratch_len(
            1,
            self.seq_len.saturating_add(1),
            self.n_heads,
            self.n_kv_heads,
        );
        if a > b { a } else { b }
    }
}

/// Saturating sum (a `const fn`).
const fn sum(v: &[usize]) -> usize {
    let mut s = 0usize;
    let mut i = 0;
    while i < v.len() {
        s = s.saturating_add(v[i]);
        i += 1;
    }
    s
}

/// A Llama model's weights, borrowed, each tensor `(OUT, IN)` row-major and
/// the per-layer tensors of all layers back to back (llama2.c's layout).
#[derive(Clone, Copy, Debug)]
pub struct LlamaWeights<'a, T> {
    /// Token embedding `(vocab, dim)`.
    pub token_embedding: &'a [T],
    /// Attention RMSNorm weights `(n_layers, dim)`.
    pub rms_att: &'a [T],
    /// `(n_layers, dim, dim)`.
    pub wq: &'a [T],
    /// `(n_layers, kv_dim, dim)`.
    pub wk: &'a [T],
    /// `(n_layers, kv_dim, dim)`.
    pub wv: &'a [T],
    /// `(n_layers, dim, dim)`.
    pub wo: &'a [T],
    /// MLP RMSNorm weights `(n_layers, dim)`.
    pub rms_ffn: &'a [T],
    /// Gate `(n_layers, hidden, dim)`.
    pub w1: &'a [T],
    /// Down `(n_layers, dim, hidden)`.
    pub w2: &'a [T],
    /// Up `(n_layers, hidden, dim)`.
    pub w3: &'a [T],
    /// Final RMSNorm weight `(dim)`.
    pub rms_final: &'a [T],
    /// Classifier `(vocab, dim)` (the embedding when tied).
    pub wcls: &'a [T],
}

impl<'a, T: Real> LlamaWeights<'a, T> {
    /// Views of a flat buffer in llama2.c's order — embedding; rms_att, wq,
    /// wk, wv, wo, rms_ffn, w1, w2, w3 (each for all layers); rms_final;
    /// the classifier when untied — of exactly
    /// [`LlamaConfig::weights_len`] elements (llama2.c's RoPE tables
    /// removed). No copy.
    pub fn from_flat(cfg: &LlamaConfig, data: &'a [T]) -> Result<Self> {
        cfg.check()?;
        check_len("Llama weights", cfg.weights_len(), data.len())?;
        let cls = if cfg.shared_classifier {
            0
        } else {
            cfg.vocab_size * cfg.dim
        };
        let (main, wcls) = data.split_at(data.len() - cls);
        Self::from_parts(cfg, main, (!cfg.shared_classifier).then_some(wcls))
    }

    /// Views of the shared part (embedding through `rms_final`, llama2.c's
    /// order) and, for an untied model, the classifier `(vocab, dim)` held
    /// elsewhere. No copy.
    pub fn from_parts(cfg: &LlamaConfig, main: &'a [T], wcls: Option<&'a [T]>) -> Result<Self> {
        cfg.check()?;
        let cls = if cfg.shared_classifier {
            0
        } else {
            cfg.vocab_size * cfg.dim
        };
        check_len(
            "Llama weights (without the classifier)",
            cfg.weights_len() - cls,
            main.len(),
        )?;
        if cfg.shared_classifier == wcls.is_some() {
            return Err(Error::InvalidParameter {
                what: "Llama weights: classifier",
                reason: "give one exactly when the configuration is untied",
            });
        }
        let (d, kv, hid, l) = (cfg.dim, cfg.kv_dim(), cfg.hidden_dim, cfg.n_layers);
        let mut rest = main;
        let mut take = |n: usize| {
            let (a, b) = rest.split_at(n);
            rest = b;
            a
        };
        let token_embedding = take(cfg.vocab_size * d);
        let w = Self {
            token_embedding,
            rms_att: take(l * d),
            wq: take(l * d * d),
            wk: take(l * kv * d),
            wv: take(l * kv * d),
            wo: take(l * d * d),
            rms_ffn: take(l * d),
            w1: take(l * hid * d),
            w2: take(l * d * hid),
            w3: take(l * hid * d),
            rms_final: take(d),
            wcls: wcls.unwrap_or(token_embedding),
        };
        w.check(cfg)?;
        Ok(w)
    }

    /// `Err` unless every tensor has the length `cfg` gives it.
    pub fn check(&self, cfg: &LlamaConfig) -> Result<()> {
        cfg.check()?;
        let (d, kv, hid, l) = (cfg.dim, cfg.kv_dim(), cfg.hidden_dim, cfg.n_layers);
        for (what, want, got) in [
            (
                "Llama: token_embedding",
                cfg.vocab_size * d,
                self.token_embedding.len(),
            ),
            ("Llama: rms_att", l * d, self.rms_att.len()),
            ("Llama: wq", l * d * d, self.wq.len()),
            ("Llama: wk", l * kv * d, self.wk.len()),
            ("Llama: wv", l * kv * d, self.wv.len()),
            ("Llama: wo", l * d * d, self.wo.len()),
            ("Llama: rms_ffn", l * d, self.rms_ffn.len()),
            ("Llama: w1", l * hid * d, self.w1.len()),
            ("Llama: w2", l * d * hid, self.w2.len()),
            ("Llama: w3", l * hid * d, self.w3.len()),
            ("Llama: rms_final", d, self.rms_final.len()),
            ("Llama: wcls", cfg.vocab_size * d, self.wcls.len()),
        ] {
            check_len(what, want, got)?;
        }
        Ok(())
    }
}

/// Which rows of logits a forward pass computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum LogitRows {
    /// Only the last token's (what generation needs).
    #[default]
    Last,
    /// Every token's of the chunk.
    All,
}

/// The run-time state of a Llama model in one caller-provided arena: KV
/// caches of every layer (bounded, `seq_len` positions), the RoPE table,
/// the activations of a chunk of up to `chunk` tokens and their logits.
#[derive(Debug)]
pub struct LlamaState<'s, T> {
    cfg: LlamaConfig,
    chunk: usize,
    ledger: CacheLedger,
    keys: &'s mut [T],
    values: &'s mut [T],
    cos: &'s mut [T],
    sin: &'s mut [T],
    x: &'s mut [T],
    xb: &'s mut [T],
    xb2: &'s mut [T],
    hb: &'s mut [T],
    hb2: &'s mut [T],
    q: &'s mut [T],
    k: &'s mut [T],
    v: &'s mut [T],
    ctx: &'s mut [T],
    scores: &'s mut [T],
    logits: &'s mut [T],
    logit_rows: usize,
}

impl<'s, T: Real> LlamaState<'s, T> {
    /// A fresh state (empty caches) for chunks of up to `chunk` tokens, in
    /// `arena` of at least [`LlamaConfig::state_len`]`(chunk)` elements;
    /// fills the RoPE table (cosines and sines computed in `f64`, rounded
    /// once).
    pub fn new(cfg: &LlamaConfig, chunk: usize, arena: &'s mut [T]) -> Result<Self> {
        cfg.check()?;
        if chunk == 0 {
            return Err(Error::InvalidParameter {
                what: "LlamaState: chunk",
                reason: "must be at least 1",
            });
        }
        let need = cfg.state_len(chunk);
        if need == usize::MAX {
            return Err(Error::InvalidParameter {
                what: "LlamaState: chunk",
                reason: "the state size overflows usize",
            });
        }
        let found = arena.len();
        let arena = arena.get_mut(..need).ok_or(Error::BufferTooSmall {
            what: "LlamaState: arena",
            needed: need,
            found,
        })?;
        let (d, kv, hid, hs) = (cfg.dim, cfg.kv_dim(), cfg.hidden_dim, cfg.head_size());
        let cache = cfg.n_layers * cfg.seq_len * kv;
        let mut rest = arena;
        let mut take = |n: usize| {
            let (a, b) = core::mem::take(&mut rest).split_at_mut(n);
            rest = b;
            a
        };
        let keys = take(cache);
        let values = take(cache);
        let cos = take(cfg.seq_len * hs);
        let sin = take(cfg.seq_len * hs);
        // Pair (2i, 2i+1) turns by pos·θ^(−2i/head_size); both coordinates of
        // a pair hold its coefficient (the layout `raw_rotate_pairs` reads).
        for p in 0..cfg.seq_len {
            for i in 0..hs / 2 {
                let f = libm::pow(LLAMA_ROPE_THETA, -((2 * i) as f64) / hs as f64);
                let a = p as f64 * f;
                let (c, s) = (T::from_f64(libm::cos(a)), T::from_f64(libm::sin(a)));
                cos[p * hs + 2 * i] = c;
                cos[p * hs + 2 * i + 1] = c;
                sin[p * hs + 2 * i] = s;
                sin[p * hs + 2 * i + 1] = s;
            }
        }
        Ok(Self {
            cfg: *cfg,
            chunk,
            ledger: CacheLedger::empty(CachePolicy::Bounded, cfg.seq_len),
            keys,
            values,
            cos,
            sin,
            x: take(chunk * d),
            xb: take(chunk * d),
            xb2: take(chunk * d),
            hb: take(chunk * hid),
            hb2: take(chunk * hid),
            q: take(chunk * d),
            k: take(chunk * kv),
            v: take(chunk * kv),
            ctx: take(chunk * d),
            scores: take(cfg.scores_len(chunk)),
            logits: take(chunk * cfg.vocab_size),
            logit_rows: 0,
        })
    }

    /// The next position (tokens processed so far).
    pub fn position(&self) -> usize {
        self.ledger.next()
    }

    /// Drops the positions from `pos` on (the next token goes to `pos`);
    /// `Err` past the current position.
    pub fn truncate(&mut self, pos: usize) -> Result<()> {
        self.ledger.truncate(pos)
    }

    /// Whether `other` is a state of the same configuration, so that its
    /// caches have the same shape ([`copy_from`](Self::copy_from) copies
    /// caches and positions only: the chunk sizes may differ).
    pub fn same_shape(&self, other: &LlamaState<'_, T>) -> bool {
        self.cfg == other.cfg && self.keys.len() == other.keys.len()
    }

    /// Makes this state a copy of `src` (same shape): its caches and
    /// positions — a beam continuing from another.
    pub fn copy_from(&mut self, src: &LlamaState<'_, T>) -> Result<()> {
        if !self.same_shape(src) {
            return Err(Error::InvalidParameter {
                what: "LlamaState::copy_from",
                reason: "states of different shapes",
            });
        }
        // The caches are head-major per layer (`kv_heads × seq_len × head`)
        // and bounded: only the first `held` slots of each head matter.
        let (hs, cap) = (self.cfg.head_size(), self.cfg.seq_len);
        let held = src.ledger.next() * hs;
        for run in 0..self.cfg.n_layers * self.cfg.n_kv_heads {
            let r = run * cap * hs..run * cap * hs + held;
            self.keys[r.clone()].copy_from_slice(&src.keys[r.clone()]);
            self.values[r.clone()].copy_from_slice(&src.values[r]);
        }
        self.ledger = src.ledger;
        Ok(())
    }

    /// Forgets every position (a new sequence).
    pub fn reset(&mut self) {
        self.ledger = CacheLedger::empty(CachePolicy::Bounded, self.cfg.seq_len);
        self.logit_rows = 0;
    }

    /// The largest chunk a forward pass takes.
    pub fn chunk(&self) -> usize {
        self.chunk
    }

    /// The logits of the last forward pass: `rows × vocab_size` (one row
    /// for [`LogitRows::Last`]).
    pub fn logits(&self) -> &[T] {
        &self.logits[..self.logit_rows * self.cfg.vocab_size]
    }
}

/// RoPE from the state's table (interleaved pairs).
struct TableRope<'t, T, B> {
    cos: &'t [T],
    sin: &'t [T],
    hs: usize,
    _b: PhantomData<B>,
}

impl<T: Real, B: Backend> Rotation<T> for TableRope<'_, T, B> {
    fn rotate(&self, pos: usize, x: &mut [T]) -> Result<()> {
        let at = pos.checked_mul(self.hs).filter(|&a| a < self.cos.len());
        let Some(at) = at else {
            return Err(Error::OutOfRange {
                what: "Llama RoPE: position",
                index: pos,
                len: self.cos.len() / self.hs.max(1),
            });
        };
        let n = x.len().min(self.hs);
        B::raw_rotate_pairs(&mut x[..n], &self.cos[at..at + n], &self.sin[at..at + n]);
        Ok(())
    }
}

/// A weight matrix of a Llama layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Proj {
    Q,
    K,
    V,
    O,
    W1,
    W2,
    W3,
}

/// The RMSNorm weights of a Llama model: attention and MLP `(n_layers, dim)`,
/// final `(dim)`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct LlamaNorms<'w, T> {
    pub(crate) att: &'w [T],
    pub(crate) ffn: &'w [T],
    pub(crate) last: &'w [T],
}

/// What a Llama forward pass needs from its weights: f32 matrices
/// ([`LlamaWeights`]) or Q8_0 ones ([`LlamaQ8Weights`](super::LlamaQ8Weights),
/// with the scratch its activations are quantized into). The rest of the pass
/// is one implementation.
pub(crate) trait LlamaMats<'w, T: 'w> {
    /// The RMSNorm weights.
    fn norms(&self) -> LlamaNorms<'w, T>;
    /// Row `token` of the embedding into `row` (`dim` values; `token` checked).
    fn embed(&self, token: usize, row: &mut [T]) -> Result<()>;
    /// `y = x·Wᵀ` for matrix `which` of a layer — `Some((proj, layer))` — or
    /// for the classifier (`None`). `x` is `(n, in)`, `y` `(n, out)`.
    fn linear<B: Backend>(
        &mut self,
        which: Option<(Proj, usize)>,
        x: MatRef<'_, T>,
        y: MatMut<'_, T>,
    ) -> Result<()>;
}

impl<'w, T: Real> LlamaMats<'w, T> for &LlamaWeights<'w, T> {
    fn norms(&self) -> LlamaNorms<'w, T> {
        LlamaNorms {
            att: self.rms_att,
            ffn: self.rms_ffn,
            last: self.rms_final,
        }
    }

    fn embed(&self, token: usize, row: &mut [T]) -> Result<()> {
        let d = row.len();
        let src =
            self.token_embedding
                .get(token * d..(token + 1) * d)
                .ok_or(Error::OutOfRange {
                    what: "Llama: token",
                    index: token,
                    len: self.token_embedding.len() / d.max(1),
                })?;
        row.copy_from_slice(src);
        Ok(())
    }

    fn linear<B: Backend>(
        &mut self,
        which: Option<(Proj, usize)>,
        x: MatRef<'_, T>,
        y: MatMut<'_, T>,
    ) -> Result<()> {
        let (rows, cols) = (y.cols(), x.cols());
        let (w, l) = match which {
            None => (self.wcls, 0),
            Some((p, l)) => (
                match p {
                    Proj::Q => self.wq,
                    Proj::K => self.wk,
                    Proj::V => self.wv,
                    Proj::O => self.wo,
                    Proj::W1 => self.w1,
                    Proj::W2 => self.w2,
                    Proj::W3 => self.w3,
                },
                l,
            ),
        };
        let size = rows * cols;
        let w = w.get(l * size..(l + 1) * size).ok_or(Error::OutOfRange {
            what: "Llama: layer",
            index: l,
            len: w.len() / size.max(1),
        })?;
        linear_views_with::<B, T>(x, MatRef::new(w, rows, cols)?, None, y)
    }
}

/// The Llama forward pass over any weight storage: see [`Llama::forward`].
pub(crate) fn llama_forward<'w, B: Backend, T: Real + 'w, M: LlamaMats<'w, T>>(
    cfg: &LlamaConfig,
    m: &mut M,
    tokens: &[usize],
    state: &mut LlamaState<'_, T>,
    rows: LogitRows,
) -> Result<()> {
    super::check_chunk(state.cfg == *cfg, tokens, state.chunk, cfg.vocab_size)?;
    let n = tokens.len();
    let start = state.ledger.next();
    if start + n > cfg.seq_len {
        return Err(Error::CacheFull {
            capacity: cfg.seq_len,
        });
    }
    let (d, kv, hid, hs) = (cfg.dim, cfg.kv_dim(), cfg.hidden_dim, cfg.head_size());
    let eps = T::from_f64(LLAMA_NORM_EPS);
    let norms = m.norms();
    let st = state;
    // x = E[tokens]
    for (row, &t) in st.x.chunks_exact_mut(d).zip(tokens) {
        m.embed(t, row)?;
    }
    let rope = TableRope::<T, B> {
        cos: st.cos,
        sin: st.sin,
        hs,
        _b: PhantomData,
    };
    let cache_len = cfg.seq_len * kv;
    let mut ledger = st.ledger;
    for l in 0..cfg.n_layers {
        rms_norm_views_with::<B, T>(
            MatRef::new(&st.x[..n * d], n, d)?,
            MatMut::new(&mut st.xb[..n * d], n, d)?,
            Some(&norms.att[l * d..(l + 1) * d]),
            eps,
            None,
        )?;
        // Attention: project → rotate → attend over the cache with the chunk
        // pending → append → output projection.
        let mut cache = KvCacheView::resume(
            &mut st.keys[l * cache_len..(l + 1) * cache_len],
            &mut st.values[l * cache_len..(l + 1) * cache_len],
            cfg.n_kv_heads,
            hs,
            st.ledger,
        )?;
        let h = MatRef::new(&st.xb[..n * d], n, d)?;
        let mut q = MatMut::new(&mut st.q[..n * d], n, d)?;
        let mut k = MatMut::new(&mut st.k[..n * kv], n, kv)?;
        let mut v = MatMut::new(&mut st.v[..n * kv], n, kv)?;
        m.linear::<B>(Some((Proj::Q, l)), h, q.reborrow())?;
        m.linear::<B>(Some((Proj::K, l)), h, k.reborrow())?;
        m.linear::<B>(Some((Proj::V, l)), h, v.reborrow())?;
        rotate_heads(&rope, start, q.reborrow(), cfg.n_heads)?;
        rotate_heads(&rope, start, k.reborrow(), cfg.n_kv_heads)?;
        let mut ctx = MatMut::new(&mut st.ctx[..n * d], n, d)?;
        attend_then_append_with::<B, T, _>(
            q.as_ref(),
            k.as_ref(),
            v.as_ref(),
            (cfg.n_heads, cfg.n_kv_heads),
            &mut cache,
            ctx.reborrow(),
            st.scores,
            WeightsOut::None,
            &AttnOptions::default(),
        )?;
        ledger = cache.ledger();
        m.linear::<B>(
            Some((Proj::O, l)),
            ctx.as_ref(),
            MatMut::new(&mut st.xb2[..n * d], n, d)?,
        )?;
        B::raw_zip(&mut st.x[..n * d], &st.xb2[..n * d], false);
        // MLP: x += W2·(silu(W1·h) ⊙ W3·h), h = RMSNorm(x).
        rms_norm_views_with::<B, T>(
            MatRef::new(&st.x[..n * d], n, d)?,
            MatMut::new(&mut st.xb[..n * d], n, d)?,
            Some(&norms.ffn[l * d..(l + 1) * d]),
            eps,
            None,
        )?;
        let h = MatRef::new(&st.xb[..n * d], n, d)?;
        m.linear::<B>(
            Some((Proj::W1, l)),
            h,
            MatMut::new(&mut st.hb[..n * hid], n, hid)?,
        )?;
        m.linear::<B>(
            Some((Proj::W3, l)),
            h,
            MatMut::new(&mut st.hb2[..n * hid], n, hid)?,
        )?;
        B::silu(&mut st.hb[..n * hid]);
        B::raw_zip(&mut st.hb[..n * hid], &st.hb2[..n * hid], true);
        m.linear::<B>(
            Some((Proj::W2, l)),
            MatRef::new(&st.hb[..n * hid], n, hid)?,
            MatMut::new(&mut st.xb2[..n * d], n, d)?,
        )?;
        B::raw_zip(&mut st.x[..n * d], &st.xb2[..n * d], false);
    }
    let rows_out = super::lm_head::<T>(
        rows,
        st.x,
        n,
        d,
        st.xb,
        |x, y| rms_norm_views_with::<B, T>(x, y, Some(norms.last), eps, None),
        |h, logits| m.linear::<B>(None, h, logits),
        cfg.vocab_size,
        st.logits,
    )?;
    // Committed last: an error anywhere above (a Q8_0 product can fail on a
    // non-finite activation) leaves the positions as they were; the cache rows
    // written past them are not held.
    st.ledger = ledger;
    st.logit_rows = rows_out;
    Ok(())
}

/// llama2.c's generation loop over any forward pass (`forward(chunk, state)`
/// computes the last logits): see [`Llama::generate`].
pub(crate) fn llama_generate<T: Real>(
    cfg: &LlamaConfig,
    prompt: &[usize],
    steps: usize,
    state: &mut LlamaState<'_, T>,
    mut forward: impl FnMut(&[usize], &mut LlamaState<'_, T>) -> Result<()>,
    mut pick: impl FnMut(&[T]) -> Result<usize>,
    mut emit: impl FnMut(usize, usize) -> Result<()>,
) -> Result<usize> {
    const BOS: usize = 1;
    if prompt.is_empty() {
        return Err(Error::Empty {
            what: "Llama::generate: prompt",
        });
    }
    let total = if steps == 0 || steps > cfg.seq_len {
        cfg.seq_len
    } else {
        steps
    };
    if let Some(&t) = prompt.iter().find(|&&t| t >= cfg.vocab_size) {
        return Err(Error::OutOfRange {
            what: "Llama::generate: prompt token id",
            index: t,
            len: cfg.vocab_size,
        });
    }
    if state.cfg != *cfg {
        return Err(Error::InvalidParameter {
            what: "Llama::generate: state",
            reason: "made for another configuration",
        });
    }
    state.reset();
    let fed = prompt.len().min(total);
    // The prompt's tokens are the next tokens of positions 0 .. fed − 1,
    // and, when the run ends inside the prompt, of position fed − 1 too.
    let last = if fed < prompt.len() { fed + 1 } else { fed };
    for i in 1..last {
        if prompt[i] == BOS {
            // llama2.c stops as soon as the next token is BOS, prompt or not.
            for c in prompt[..i].chunks(state.chunk) {
                forward(c, state)?;
            }
            return Ok(i);
        }
        emit(prompt[i - 1], prompt[i])?;
    }
    for c in prompt[..fed].chunks(state.chunk) {
        forward(c, state)?;
    }
    if fed < prompt.len() {
        return Ok(fed);
    }
    let mut token = prompt[fed - 1];
    loop {
        let next = pick(state.logits())?;
        if next >= cfg.vocab_size {
            return Err(Error::OutOfRange {
                what: "Llama::generate: picked token id",
                index: next,
                len: cfg.vocab_size,
            });
        }
        if next == BOS {
            break;
        }
        emit(token, next)?;
        token = next;
        if state.position() >= total {
            break;
        }
        forward(&[token], state)?;
    }
    Ok(state.position())
}

/// A Llama model: its sizes and borrowed weights; `B` the backend.
#[derive(Clone, Copy, Debug)]
pub struct Llama<'a, T, B = Simd> {
    cfg: LlamaConfig,
    w: LlamaWeights<'a, T>,
    _b: PhantomData<B>,
}

impl<'a, T: Real, B: Backend> Llama<'a, T, B> {
    /// A model over `weights` (their lengths checked against `cfg`).
    pub fn new(cfg: LlamaConfig, weights: LlamaWeights<'a, T>) -> Result<Self> {
        weights.check(&cfg)?;
        Ok(Self {
            cfg,
            w: weights,
            _b: PhantomData,
        })
    }

    /// The sizes.
    pub fn config(&self) -> &LlamaConfig {
        &self.cfg
    }

    /// The weights.
    pub fn weights(&self) -> &LlamaWeights<'a, T> {
        &self.w
    }

    /// Feeds `tokens` (a chunk of at most `state.chunk()`) at the state's
    /// next positions and computes the logits `rows` asks for
    /// ([`LlamaState::logits`]). Errors, with the state unchanged: an empty
    /// chunk, one longer than the state takes, a token id `≥ vocab_size`,
    /// positions past `seq_len` ([`Error::CacheFull`]), a state made for
    /// another configuration.
    pub fn forward(
        &self,
        tokens: &[usize],
        state: &mut LlamaState<'_, T>,
        rows: LogitRows,
    ) -> Result<()> {
        llama_forward::<B, T, _>(&self.cfg, &mut &self.w, tokens, state, rows)
    }

    /// llama2.c's generation loop. The prompt (at least one token) goes
    /// through as chunks of up to `state.chunk()` tokens, then one token at a
    /// time from the cache: `pick` chooses each next token from the last
    /// logits. The run covers `steps` positions in all, prompt included
    /// (`0` or more than `seq_len` means `seq_len`), and stops early when
    /// the next token is BOS (id 1), as llama2.c does. `emit(prev, next)` is
    /// called for every token after the first, prompt tokens included (what
    /// llama2.c prints). Returns the number of positions processed. The
    /// state is reset first.
    pub fn generate(
        &self,
        prompt: &[usize],
        steps: usize,
        state: &mut LlamaState<'_, T>,
        pick: impl FnMut(&[T]) -> Result<usize>,
        emit: impl FnMut(usize, usize) -> Result<()>,
    ) -> Result<usize> {
        llama_generate(
            &self.cfg,
            prompt,
            steps,
            state,
            |c, st| self.forward(c, st, LogitRows::Last),
            pick,
            emit,
        )
    }
}

super::impl_decoder!(Llama, LlamaState);
