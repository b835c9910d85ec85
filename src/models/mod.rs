//! Decoder models composed from the library's pieces.
//!
//! | module | what |
//! |---|---|
//! | [`gpt2`] | the GPT-2 family decoder (Hugging Face `GPT2LMHeadModel`): learned positions, pre-LayerNorm blocks, multi-head attention over bounded or ring KV caches, GELU (tanh) MLP, tied LM head; runtime and const-generic faces |
//! | [`llama`] | the Llama family decoder (llama2.c's architecture): RMSNorm, interleaved RoPE, grouped-query attention over KV caches, SwiGLU; weights borrowed, state in one caller arena |
//! | [`llama2c`] | llama2.c's checkpoint format: header, typed little-endian decoding, weight views (`std` reader) |
//! | [`tokenizer`] | llama2.c's tokenizer (`tokenizer.bin`): encode with byte fallback and score-ordered merges, decode, the printing filter (`std`) |

pub mod gpt2;
pub mod llama;
pub mod llama2c;
#[cfg(feature = "std")]
pub mod tokenizer;

pub use gpt2::*;
pub use llama::*;
pub use llama2c::*;
#[cfg(feature = "std")]
pub use tokenizer::*;

use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::mat::{MatMut, MatRef};
use crate::nn::linear::linear_views_with;
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
pub(crate) fn lm_head<B: Backend, T: Real>(
    rows: LogitRows,
    x: &[T],
    n: usize,
    d: usize,
    tmp: &mut [T],
    norm: impl FnOnce(MatRef<'_, T>, MatMut<'_, T>) -> Result<()>,
    wcls: &[T],
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
    linear_views_with::<B, T>(
        MatRef::new(&tmp[..m * d], m, d)?,
        MatRef::new(wcls, vocab, d)?,
        None,
        MatMut::new(&mut logits[..m * vocab], m, vocab)?,
    )?;
    Ok(m)
}
