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

use crate::error::{Error, Result};

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
