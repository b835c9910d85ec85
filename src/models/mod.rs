//! Decoder models composed from the library's pieces.
//!
//! | module | what |
//! |---|---|
//! | [`gpt2`] | the GPT-2 family decoder (Hugging Face `GPT2LMHeadModel`): learned positions, pre-LayerNorm blocks, multi-head attention over bounded or ring KV caches, GELU (tanh) MLP, tied LM head; runtime and const-generic faces |
//! | [`llama`] | the Llama family decoder (llama2.c's architecture): RMSNorm, interleaved RoPE, grouped-query attention over KV caches, SwiGLU; weights borrowed, state in one caller arena |
//! | [`llama2c_q8`] | llama2.c's version-2 (Q8_0) checkpoint: header, zero-copy weight views, the exporter (`std`) |
//! | [`llama_q8`] | the Llama decoder with Q8_0 weights (llama2.c's `runq.c`): int8 matrices over checkpoint bytes, f32 norms, activations and cache |
//! | [`llama2c`] | llama2.c's checkpoint format (f32): header, typed little-endian decoding, weight views (`std` reader) |
//! | [`quant`] | Q8_0 group-wise int8 quantization: quantize, dequantize, zero-copy tensor views over checkpoint bytes, the int8 matrix–vector product |
//! | [`tokenizer`] | llama2.c's tokenizer (`tokenizer.bin`): encode with byte fallback and score-ordered merges, decode, the printing filter (`std`) |

pub mod gpt2;
pub mod llama;
pub mod llama2c;
pub mod llama2c_q8;
pub mod llama_q8;
pub mod quant;
#[cfg(feature = "std")]
pub mod tokenizer;

pub use gpt2::*;
pub use llama::*;
pub use llama_q8::*;
pub use llama2c::*;
pub use llama2c_q8::*;
#[cfg(feature = "std")]
pub use tokenizer::*;

use crate::error::{Error, Result};
use crate::mat::{MatMut, MatRef};
use crate::real::Real;

/// The checks every decoder's forward pass starts with, before it touches
/// its state: a state made for this configuration, a chunk of 1 ..= `chunk`
/// tokens, every id below `vocab`.
pub(crate) fn check_chunk(
    same_config: bool,
    tokens: &[usize],
    chunk: usize,
    vocab: usize,
) -> Result<()> {
    if !same_config {
        return Err(Error::InvalidParameter {
            what: "decoder forward: state",
            reason: "made for another configuration",
        });
    }
    if tokens.is_empty() {
        return Err(Error::Empty {
            what: "decoder forward: tokens",
        });
    }
    if tokens.len() > chunk {
        return Err(Error::BufferTooSmall {
            what: "decoder forward: chunk (the state's chunk size)",
            needed: tokens.len(),
            found: chunk,
        });
    }
    if let Some(&t) = tokens.iter().find(|&&t| t >= vocab) {
        return Err(Error::OutOfRange {
            what: "decoder forward: token id",
            index: t,
            len: vocab,
        });
    }
    Ok(())
}

/// The end of every decoder's forward pass: the final norm of the rows
/// `rows` asks for (of the `n` rows of `x`, width `d`) into `tmp`, then the
/// logits `tmp·wclsᵀ` into `logits`. Returns the number of rows.
#[allow(clippy::too_many_arguments)]
pub(crate) fn lm_head<T: Real>(
    rows: LogitRows,
    x: &[T],
    n: usize,
    d: usize,
    tmp: &mut [T],
    norm: impl FnOnce(MatRef<'_, T>, MatMut<'_, T>) -> Result<()>,
    classifier: impl FnOnce(MatRef<'_, T>, MatMut<'_, T>) -> Result<()>,
    vocab: usize,
    logits: &mut [T],
) -> Result<usize> {
    let first = match rows {
        LogitRows::Last => n - 1,
        LogitRows::All => 0,
    };
    let m = n - first;
    norm(
        MatRef::new(&x[first * d..n * d], m, d)?,
        MatMut::new(&mut tmp[..m * d], m, d)?,
    )?;
    classifier(
        MatRef::new(&tmp[..m * d], m, d)?,
        MatMut::new(&mut logits[..m * vocab], m, vocab)?,
    )?;
    Ok(m)
}

/// A decoder's per-sequence state, as beam search needs it.
pub trait DecoderState<T> {
    /// The next position.
    fn position(&self) -> usize;
    /// The logits of the last step.
    fn logits(&self) -> &[T];
    /// Whether `other` has this state's shape (so that copying cannot fail).
    fn same_shape(&self, other: &Self) -> bool;
    /// Becomes a copy of `src` (same shape).
    fn copy_from(&mut self, src: &Self) -> Result<()>;
    /// Forgets every position.
    fn reset(&mut self);
}

/// A decoder beam search can drive through [`Beams`]: one token at a time
/// into a state.
pub trait Decoder<T> {
    /// Its state.
    type State<'s>: DecoderState<T>
    where
        T: 's;
    /// Vocabulary size.
    fn vocab_size(&self) -> usize;
    /// Whether `state` was made for this model.
    fn accepts(&self, state: &Self::State<'_>) -> bool;
    /// Feeds one token at the state's next position; its logits follow.
    fn step(&self, token: usize, state: &mut Self::State<'_>) -> Result<()>;
}

/// A decoder driven by beam search ([`BeamModel`](crate::decode::BeamModel)):
/// one state per beam slot, and as many spare states of the same shape that
/// reordering copies through, so that a slot can take over the state of a
/// slot that is itself being replaced, and reordering cannot fail half-way.
/// [`LlamaBeams`] and [`Gpt2Beams`] name it for the two decoders.
pub struct Beams<'m, 'b, 's, M: Decoder<T>, T: 's> {
    model: &'m M,
    states: &'b mut [M::State<'s>],
    spares: &'b mut [M::State<'s>],
}

/// Beam search over a [`Llama`].
pub type LlamaBeams<'m, 'b, 's, T, B = crate::Simd> = Beams<'m, 'b, 's, Llama<'m, T, B>, T>;
/// Beam search over a [`Gpt2`].
pub type Gpt2Beams<'m, 'b, 's, T, B = crate::Simd> = Beams<'m, 'b, 's, Gpt2<'m, T, B>, T>;

impl<'m, 'b, 's, M: Decoder<T>, T: 's> Beams<'m, 'b, 's, M, T> {
    /// Beam states and spares: at least one state, as many spares, all of
    /// one shape and made for `model` (`Err` otherwise). The states are
    /// reset.
    pub fn new(
        model: &'m M,
        states: &'b mut [M::State<'s>],
        spares: &'b mut [M::State<'s>],
    ) -> Result<Self> {
        let Some(first) = states.first() else {
            return Err(Error::Empty {
                what: "Beams: states",
            });
        };
        if spares.len() < states.len()
            || !model.accepts(first)
            || !states
                .iter()
                .chain(spares.iter())
                .all(|s| first.same_shape(s))
        {
            return Err(Error::InvalidParameter {
                what: "Beams",
                reason: "needs as many spares as states, all of one shape and made for this model",
            });
        }
        for s in states.iter_mut() {
            s.reset();
        }
        Ok(Self {
            model,
            states,
            spares,
        })
    }
}

impl<'s, M: Decoder<T>, T: Real + 's> crate::decode::BeamModel<T> for Beams<'_, '_, 's, M, T> {
    fn step(&mut self, beam: usize, token: usize, pos: usize, logits: &mut [T]) -> Result<()> {
        let n = self.states.len();
        let st = self.states.get_mut(beam).ok_or(Error::OutOfRange {
            what: "Beams: beam",
            index: beam,
            len: n,
        })?;
        if pos != st.position() {
            return Err(Error::Model {
                what: "Beams: a token out of order for its beam",
            });
        }
        crate::error::check_len("Beams: logits", self.model.vocab_size(), logits.len())?;
        self.model.step(token, st)?;
        logits.copy_from_slice(st.logits());
        Ok(())
    }

    fn reorder(&mut self, parents: &[usize]) -> Result<()> {
        let n = self.states.len();
        crate::error::check_len("Beams: parents", n, parents.len())?;
        if let Some(&p) = parents.iter().find(|&&p| p >= n) {
            return Err(Error::OutOfRange {
                what: "Beams: parent",
                index: p,
                len: n,
            });
        }
        for (i, &p) in parents.iter().enumerate() {
            if p != i {
                self.spares[i].copy_from(&self.states[p])?;
            }
        }
        for (i, &p) in parents.iter().enumerate() {
            if p != i {
                self.states[i].copy_from(&self.spares[i])?;
            }
        }
        Ok(())
    }
}

/// [`DecoderState`] and [`Decoder`] for a model type and its state type,
/// both forwarding to their inherent methods.
macro_rules! impl_decoder {
    ($model:ident, $state:ident) => {
        impl<T: Real> super::DecoderState<T> for $state<'_, T> {
            fn position(&self) -> usize {
                $state::position(self)
            }
            fn logits(&self) -> &[T] {
                $state::logits(self)
            }
            fn same_shape(&self, other: &Self) -> bool {
                $state::same_shape(self, other)
            }
            fn copy_from(&mut self, src: &Self) -> Result<()> {
                $state::copy_from(self, src)
            }
            fn reset(&mut self) {
                $state::reset(self)
            }
        }

        impl<T: Real, B: Backend> super::Decoder<T> for $model<'_, T, B> {
            type State<'s>
                = $state<'s, T>
            where
                T: 's;
            fn vocab_size(&self) -> usize {
                self.cfg.vocab_size
            }
            fn accepts(&self, state: &$state<'_, T>) -> bool {
                state.cfg == self.cfg
            }
            fn step(&self, token: usize, state: &mut $state<'_, T>) -> Result<()> {
                self.forward(&[token], state, LogitRows::Last)
            }
        }
    };
}
pub(crate) use impl_decoder;
