//! The Llama decoder with Q8_0 weights (llama2.c's `runq.c`): the attention
//! projections, the MLP and the classifier are int8 matrices with one `f32`
//! scale per group of `GS` values ([`quant`](super::quant)); the RMSNorm
//! weights, the activations and the KV cache stay `f32`. Each matrix product
//! quantizes its input row on the fly (half away from zero) and sums the exact
//! int8 group dots scaled in `f32`, as `runq.c` does (in the fixed order
//! [`quant`](super::quant) documents, which differs from `runq.c`'s only by
//! rounding); the embedding row of a token is the dequantized row `q·s`, and a
//! tied classifier is the quantized embedding.
//!
//! Everything else — RMSNorm, RoPE, grouped-query attention over the cache,
//! SwiGLU, the state arena ([`LlamaState`]) — is the `f32` decoder's code
//! ([`Llama`](super::Llama)). The weights are views over the bytes of a
//! version-2 checkpoint ([`llama2c_q8_weights`](super::llama2c_q8_weights)):
//! no copy, from flash or a file buffer; a quarter of the `f32` size.

use core::marker::PhantomData;

use super::llama::{LlamaMats, LlamaNorms, Proj, llama_forward, llama_generate};
use super::quant::{Q8Matrix, Q8Scratch, q8_bytes, q8_linear_with};
use super::{LlamaConfig, LlamaState, LogitRows};
use crate::backend::{Backend, Simd};
use crate::error::{Error, Result, check_len};
use crate::mat::{MatMut, MatRef};

/// `n_layers` Q8_0 matrices `(rows, cols)` stored one after another, each as
/// its int8 values then its scales (a version-2 checkpoint's layout for one
/// kind of matrix, e.g. every layer's `wq`).
#[derive(Clone, Copy, Debug)]
pub struct Q8Layers<'a> {
    bytes: &'a [u8],
    layers: usize,
    rows: usize,
    cols: usize,
    gs: usize,
}

impl<'a> Q8Layers<'a> {
    /// Views the first `layers` tensors of `bytes` (every scale checked) and
    /// returns the bytes after them.
    pub fn split_from(
        bytes: &'a [u8],
        layers: usize,
        rows: usize,
        cols: usize,
        gs: usize,
    ) -> Result<(Self, &'a [u8])> {
        let each = q8_bytes(rows, cols, gs).ok_or(Error::InvalidParameter {
            what: "Q8Layers: shape",
            reason: "its size overflows usize",
        })?;
        let total = each.checked_mul(layers).filter(|&t| t <= bytes.len());
        if total.is_none() {
            return Err(Error::Format {
                what: "Q8_0 tensors",
                reason: "the data ends before the tensors do",
            });
        }
        let mut rest = bytes;
        for _ in 0..layers {
            rest = Q8Matrix::split_from(rest, rows, cols, gs)?.1;
        }
        let used = bytes.len() - rest.len();
        Ok((
            Self {
                bytes: &bytes[..used],
                layers,
                rows,
                cols,
                gs,
            },
            rest,
        ))
    }

    /// Layer `l`'s matrix.
    pub fn layer(&self, l: usize) -> Result<Q8Matrix<'a>> {
        if l >= self.layers {
            return Err(Error::OutOfRange {
                what: "Q8Layers: layer",
                index: l,
                len: self.layers,
            });
        }
        // Every layer's scales were checked by `split_from`.
        let each = self.bytes.len() / self.layers;
        let at = &self.bytes[l * each..(l + 1) * each];
        Ok(Q8Matrix::prechecked(at, self.rows, self.cols, self.gs))
    }

    /// `(layers, rows, cols)`.
    pub fn shape(&self) -> (usize, usize, usize) {
        (self.layers, self.rows, self.cols)
    }
}

/// The weights of a Q8_0 Llama model, borrowed: Q8_0 matrices over checkpoint
/// bytes, RMSNorm weights as `f32` (`(n_layers, dim)`, `(n_layers, dim)`,
/// `(dim)`).
#[derive(Clone, Copy, Debug)]
pub struct LlamaQ8Weights<'a> {
    /// The group size `GS` of every matrix.
    pub group_size: usize,
    /// Token embedding `(vocab, dim)`; a token's row is dequantized.
    pub token_embedding: Q8Matrix<'a>,
    /// Attention RMSNorm weights.
    pub rms_att: &'a [f32],
    /// MLP RMSNorm weights.
    pub rms_ffn: &'a [f32],
    /// Final RMSNorm weight.
    pub rms_final: &'a [f32],
    /// `(dim, dim)` per layer.
    pub wq: Q8Layers<'a>,
    /// `(kv_dim, dim)` per layer.
    pub wk: Q8Layers<'a>,
    /// `(kv_dim, dim)` per layer.
    pub wv: Q8Layers<'a>,
    /// `(dim, dim)` per layer.
    pub wo: Q8Layers<'a>,
    /// Gate `(hidden, dim)` per layer.
    pub w1: Q8Layers<'a>,
    /// Down `(dim, hidden)` per layer.
    pub w2: Q8Layers<'a>,
    /// Up `(hidden, dim)` per layer.
    pub w3: Q8Layers<'a>,
    /// Classifier `(vocab, dim)`: the embedding when tied.
    pub wcls: Q8Matrix<'a>,
}

impl LlamaQ8Weights<'_> {
    /// Checks every shape against `cfg`.
    pub fn check(&self, cfg: &LlamaConfig) -> Result<()> {
        cfg.check()?;
        let (d, kv, hid, l) = (cfg.dim, cfg.kv_dim(), cfg.hidden_dim, cfg.n_layers);
        let mats = [
            ("LlamaQ8: wq", self.wq.shape(), (l, d, d)),
            ("LlamaQ8: wk", self.wk.shape(), (l, kv, d)),
            ("LlamaQ8: wv", self.wv.shape(), (l, kv, d)),
            ("LlamaQ8: wo", self.wo.shape(), (l, d, d)),
            ("LlamaQ8: w1", self.w1.shape(), (l, hid, d)),
            ("LlamaQ8: w2", self.w2.shape(), (l, d, hid)),
            ("LlamaQ8: w3", self.w3.shape(), (l, hid, d)),
            (
                "LlamaQ8: token_embedding",
                (
                    1,
                    self.token_embedding.shape().0,
                    self.token_embedding.shape().1,
                ),
                (1, cfg.vocab_size, d),
            ),
            (
                "LlamaQ8: wcls",
                (1, self.wcls.shape().0, self.wcls.shape().1),
                (1, cfg.vocab_size, d),
            ),
        ];
        for (what, got, want) in mats {
            if got != want {
                return Err(Error::InvalidParameter {
                    what,
                    reason: "shape differs from the configuration",
                });
            }
        }
        let gs = self.group_size;
        let layers = [
            self.wq, self.wk, self.wv, self.wo, self.w1, self.w2, self.w3,
        ];
        if layers.iter().any(|m| m.gs != gs)
            || self.token_embedding.group_size() != gs
            || self.wcls.group_size() != gs
        {
            return Err(Error::InvalidParameter {
                what: "LlamaQ8: group size",
                reason: "a matrix has another group size than `group_size`",
            });
        }
        check_len("LlamaQ8: rms_att", l * d, self.rms_att.len())?;
        check_len("LlamaQ8: rms_ffn", l * d, self.rms_ffn.len())?;
        check_len("LlamaQ8: rms_final", d, self.rms_final.len())?;
        Ok(())
    }
}

/// Scratch lengths a Q8_0 forward pass needs for the quantized activation row:
/// `(values, scales)` — the longer of `dim` and `hidden_dim`, and that over
/// the group size.
pub const fn llama_q8_scratch_len(cfg: &LlamaConfig, group_size: usize) -> (usize, usize) {
    let n = if cfg.dim > cfg.hidden_dim {
        cfg.dim
    } else {
        cfg.hidden_dim
    };
    (
        n,
        match n.checked_div(group_size) {
            Some(g) => g,
            None => 0,
        },
    )
}

/// A Llama model with Q8_0 weights; `B` the backend of every kernel.
#[derive(Clone, Copy, Debug)]
pub struct LlamaQ8<'a, B = Simd> {
    cfg: LlamaConfig,
    w: LlamaQ8Weights<'a>,
    _b: PhantomData<B>,
}

impl<'a, B: Backend> LlamaQ8<'a, B> {
    /// A model over `weights` (their shapes checked against `cfg`).
    pub fn new(cfg: LlamaConfig, weights: LlamaQ8Weights<'a>) -> Result<Self> {
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
    pub fn weights(&self) -> &LlamaQ8Weights<'a> {
        &self.w
    }

    /// As [`Llama::forward`](super::Llama::forward), with `scratch` for the
    /// activation rows quantized on the fly (at least
    /// [`llama_q8_scratch_len`] values and scales). Errors, with the state
    /// unchanged: those of `Llama::forward`, a short scratch, and an
    /// activation that is not finite (it cannot be quantized).
    pub fn forward(
        &self,
        tokens: &[usize],
        state: &mut LlamaState<'_, f32>,
        scratch: &mut Q8Scratch<'_>,
        rows: LogitRows,
    ) -> Result<()> {
        let (nq, ns) = llama_q8_scratch_len(&self.cfg, self.w.group_size);
        if scratch.q.len() < nq || scratch.s.len() < ns {
            return Err(Error::BufferTooSmall {
                what: "LlamaQ8::forward: scratch",
                needed: nq,
                found: scratch.q.len().min(scratch.s.len() * self.w.group_size),
            });
        }
        let mut m = Q8Mats {
            w: &self.w,
            scratch,
        };
        llama_forward::<B, f32, _>(&self.cfg, &mut m, tokens, state, rows)
    }

    /// llama2.c's generation loop, as [`Llama::generate`](super::Llama::generate)
    /// (what `runq` runs), with `scratch` for the quantized activations.
    pub fn generate(
        &self,
        prompt: &[usize],
        steps: usize,
        state: &mut LlamaState<'_, f32>,
        scratch: &mut Q8Scratch<'_>,
        pick: impl FnMut(&[f32]) -> Result<usize>,
        emit: impl FnMut(usize, usize) -> Result<()>,
    ) -> Result<usize> {
        llama_generate(
            &self.cfg,
            prompt,
            steps,
            state,
            |c, st| self.forward(c, st, scratch, LogitRows::Last),
            pick,
            emit,
        )
    }
}

/// The Q8_0 weights and the activation scratch, for the shared forward pass.
struct Q8Mats<'w, 'x, 's> {
    w: &'x LlamaQ8Weights<'w>,
    scratch: &'x mut Q8Scratch<'s>,
}

impl<'w> LlamaMats<'w, f32> for Q8Mats<'w, '_, '_> {
    fn norms(&self) -> LlamaNorms<'w, f32> {
        LlamaNorms {
            att: self.w.rms_att,
            ffn: self.w.rms_ffn,
            last: self.w.rms_final,
        }
    }

    fn embed(&self, token: usize, row: &mut [f32]) -> Result<()> {
        self.w.token_embedding.dequantize_row(token, row)
    }

    fn linear<B: Backend>(
        &mut self,
        which: Option<(Proj, usize)>,
        x: MatRef<'_, f32>,
        y: MatMut<'_, f32>,
    ) -> Result<()> {
        let w = match which {
            None => self.w.wcls,
            Some((p, l)) => match p {
                Proj::Q => self.w.wq.layer(l)?,
                Proj::K => self.w.wk.layer(l)?,
                Proj::V => self.w.wv.layer(l)?,
                Proj::O => self.w.wo.layer(l)?,
                Proj::W1 => self.w.w1.layer(l)?,
                Proj::W2 => self.w.w2.layer(l)?,
                Proj::W3 => self.w.w3.layer(l)?,
            },
        };
        q8_linear_with::<B>(&w, x, y, self.scratch)
    }
}
