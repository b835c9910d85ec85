//! llama2.c's checkpoint format (its "legacy" export, what its `run.c`
//! reads).
//!
//! # Layout
//!
//! A header of seven little-endian `i32`: `dim`, `hidden_dim`, `n_layers`,
//! `n_heads`, `n_kv_heads`, `vocab_size` (negative: the classifier is not
//! tied to the embedding and is stored at the end), `seq_len`. Then
//! little-endian `f32` tensors, each kind for all layers in turn: token
//! embedding `(vocab, dim)`; attention RMSNorm weights; `wq`; `wk`; `wv`;
//! `wo`; MLP RMSNorm weights; `w1`; `w2`; `w3`; the final RMSNorm weight; two
//! RoPE tables (cosines and sines, `seq_len × head_size/2` each), which are
//! skipped — [`LlamaState`](super::LlamaState) computes its own; and the
//! classifier `(vocab, dim)` when untied. Tensors are `(OUT, IN)` row-major.
//!
//! # Reading
//!
//! [`llama2c_config`] parses and checks a header. With `std`,
//! [`Llama2cCheckpoint`] reads a file (or bytes) once into one `f32` buffer,
//! decoding little-endian without `unsafe`, after checking the header's
//! sizes against the file's length — nothing is allocated from an unchecked
//! header — and hands out [`LlamaWeights`] viewing that buffer in place. In
//! `no_std` firmware the weights are a `&'static [f32]` (flash) in the same
//! order: [`llama2c_weights`] views it.

use super::llama::{LlamaConfig, LlamaWeights};
use crate::error::{Error, Result};

/// Bytes of a llama2.c header (seven `i32`).
pub const LLAMA2C_HEADER_BYTES: usize = 28;

/// The configuration a llama2.c header describes. `Err` ([`Error::Format`])
/// for fewer than 28 bytes, a zero or negative size (a negative `vocab_size`
/// only marks an untied classifier), or sizes [`LlamaConfig::check`]
/// rejects.
pub fn llama2c_config(header: &[u8]) -> Result<LlamaConfig> {
    let Some(h) = header.first_chunk::<LLAMA2C_HEADER_BYTES>() else {
        return Err(Error::Format {
            what: "llama2.c checkpoint",
            reason: "shorter than its 28-byte header",
        });
    };
    let field = |i: usize| i32::from_le_bytes([h[4 * i], h[4 * i + 1], h[4 * i + 2], h[4 * i + 3]]);
    let vocab = field(5);
    let mut v = [0usize; 7];
    for (i, slot) in v.iter_mut().enumerate() {
        let raw = if i == 5 {
            vocab.checked_abs().unwrap_or(0)
        } else {
            field(i)
        };
        if raw <= 0 {
            return Err(Error::Format {
                what: "llama2.c checkpoint header",
                reason: "a size is zero or negative",
            });
        }
        *slot = raw as usize;
    }
    let cfg = LlamaConfig {
        dim: v[0],
        hidden_dim: v[1],
        n_layers: v[2],
        n_heads: v[3],
        n_kv_heads: v[4],
        vocab_size: v[5],
        seq_len: v[6],
        shared_classifier: vocab > 0,
    };
    cfg.check().map_err(|_| Error::Format {
        what: "llama2.c checkpoint header",
        reason: "inconsistent sizes (heads must divide dim into an even head size, kv heads divide heads) or sizes that overflow",
    })?;
    Ok(cfg)
}

/// `f32` values after the header of a checkpoint of `cfg`: the weights
/// plus the two RoPE tables (`None` on overflow).
pub fn llama2c_floats(cfg: &LlamaConfig) -> Option<usize> {
    let tables = cfg.seq_len.checked_mul(cfg.head_size())?;
    cfg.weights_len()
        .checked_add(tables)
        .filter(|&n| n < usize::MAX / 4 - LLAMA2C_HEADER_BYTES)
}

/// Views of the `f32` values that follow a llama2.c header (exactly
/// [`llama2c_floats`] of them), skipping the RoPE tables. No copy.
pub fn llama2c_weights<'a>(cfg: &LlamaConfig, floats: &'a [f32]) -> Result<LlamaWeights<'a, f32>> {
    let total = llama2c_floats(cfg).ok_or(Error::Format {
        what: "llama2.c checkpoint",
        reason: "sizes overflow",
    })?;
    if floats.len() != total {
        return Err(Error::Format {
            what: "llama2.c checkpoint",
            reason: "the weights do not have the length the header gives",
        });
    }
    let cls = if cfg.shared_classifier {
        0
    } else {
        cfg.vocab_size * cfg.dim
    };
    let main = cfg.weights_len() - cls;
    let tables = total - cfg.weights_len();
    let (head, tail) = floats.split_at(main);
    let wcls = (!cfg.shared_classifier).then_some(&tail[tables..]);
    LlamaWeights::from_parts(cfg, head, wcls)
}

/// Decodes little-endian `f32` values: `out[i]` from `bytes[4i .. 4i + 4]`
/// (`Err` unless `bytes` holds exactly `4·out.len()`).
pub fn decode_f32_le(bytes: &[u8], out: &mut [f32]) -> Result<()> {
    if bytes.len() != out.len().saturating_mul(4) {
        return Err(Error::LengthMismatch {
            what: "decode_f32_le: bytes",
            expected: out.len().saturating_mul(4),
            found: bytes.len(),
        });
    }
    for (o, b) in out.iter_mut().zip(bytes.chunks_exact(4)) {
        *o = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    }
    Ok(())
}

#[cfg(feature = "std")]
pub use reader::Llama2cCheckpoint;

#[cfg(feature = "std")]
mod reader {
    use std::io::Read;
    use std::vec::Vec;

    use super::*;

    /// A llama2.c checkpoint read into memory (`std`): its configuration
    /// and one `f32` buffer of everything after the header.
    ///
    /// ```
    /// use constml::models::{Llama2cCheckpoint, LlamaConfig};
    /// // A header for dim 8, hidden 16, 1 layer, 2 heads, 2 kv heads, vocab 4 (tied), seq 4.
    /// let mut bytes: Vec<u8> = [8i32, 16, 1, 2, 2, 4, 4].iter().flat_map(|v| v.to_le_bytes()).collect();
    /// let cfg = constml::models::llama2c_config(&bytes)?;
    /// let n = constml::models::llama2c_floats(&cfg).unwrap();
    /// bytes.extend((0..n).flat_map(|i| (i as f32 * 1e-3).to_le_bytes()));
    /// let ckpt = Llama2cCheckpoint::from_bytes(&bytes)?;
    /// assert_eq!(ckpt.config().head_size(), 4);
    /// assert!(ckpt.weights()?.wcls.as_ptr() == ckpt.weights()?.token_embedding.as_ptr());
    /// assert!(Llama2cCheckpoint::from_bytes(&bytes[..bytes.len() - 1]).is_err());
    /// # Ok::<(), constml::Error>(())
    /// ```
    #[derive(Clone, Debug)]
    pub struct Llama2cCheckpoint {
        config: LlamaConfig,
        floats: Vec<f32>,
    }

    const CORRUPT: Error = Error::Format {
        what: "llama2.c checkpoint",
        reason: "the file length does not match the sizes in its header",
    };

    impl Llama2cCheckpoint {
        /// Reads a checkpoint file. The header's sizes must give exactly the
        /// file's length; the buffer is allocated only after that check.
        pub fn read(path: impl AsRef<std::path::Path>) -> Result<Self> {
            let io = |_| Error::Format {
                what: "llama2.c checkpoint",
                reason: "could not be opened or read",
            };
            let mut file = std::fs::File::open(path).map_err(io)?;
            let len = file.metadata().map_err(io)?.len();
            let mut header = [0u8; LLAMA2C_HEADER_BYTES];
            file.read_exact(&mut header).map_err(|_| Error::Format {
                what: "llama2.c checkpoint",
                reason: "shorter than its 28-byte header",
            })?;
            let config = llama2c_config(&header)?;
            let n = Self::expected(&config, len)?;
            let mut floats = Vec::new();
            floats.try_reserve_exact(n).map_err(|_| Error::Format {
                what: "llama2.c checkpoint",
                reason: "too large for memory",
            })?;
            let mut buf = std::vec![0u8; 1 << 16];
            let mut left = n;
            while left > 0 {
                let take = (left * 4).min(buf.len());
                file.read_exact(&mut buf[..take]).map_err(|_| CORRUPT)?;
                floats.extend(
                    buf[..take]
                        .chunks_exact(4)
                        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
                );
                left -= take / 4;
            }
            Ok(Self { config, floats })
        }

        /// A checkpoint from its bytes (same checks as [`read`](Self::read)).
        pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
            let config = llama2c_config(bytes)?;
            let n = Self::expected(&config, bytes.len() as u64)?;
            let mut floats = Vec::new();
            floats.try_reserve_exact(n).map_err(|_| Error::Format {
                what: "llama2.c checkpoint",
                reason: "too large for memory",
            })?;
            floats.resize(n, 0.0);
            decode_f32_le(&bytes[LLAMA2C_HEADER_BYTES..], &mut floats)?;
            Ok(Self { config, floats })
        }

        /// `f32` values after the header, checked against the total length.
        fn expected(config: &LlamaConfig, total: u64) -> Result<usize> {
            let n = llama2c_floats(config).ok_or(CORRUPT)?;
            let want = (n as u64)
                .checked_mul(4)
                .and_then(|b| b.checked_add(LLAMA2C_HEADER_BYTES as u64));
            if want != Some(total) {
                return Err(CORRUPT);
            }
            Ok(n)
        }

        /// The configuration from the header.
        pub fn config(&self) -> &LlamaConfig {
            &self.config
        }

        /// Everything after the header (weights and the RoPE tables).
        pub fn floats(&self) -> &[f32] {
            &self.floats
        }

        /// Views of the weights in the buffer (no copy).
        pub fn weights(&self) -> Result<LlamaWeights<'_, f32>> {
            llama2c_weights(&self.config, &self.floats)
        }

        /// Bytes of weights a decode step streams: every tensor once (the
        /// classifier once more when untied), without the RoPE tables.
        pub fn weight_bytes(&self) -> usize {
            self.config.weights_len() * 4
        }
    }
}
