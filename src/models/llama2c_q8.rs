//! llama2.c's version-2 checkpoint: Q8_0 weights (what `export.py
//! --version 2` writes and `runq.c` reads).
//!
//! # Layout
//!
//! A 256-byte header: the magic `0x616B3432` as a little-endian `u32` (the
//! file starts with the bytes "24ka"), the version `2` (`i32`), seven `i32`
//! sizes (`dim`, `hidden_dim`, `n_layers`, `n_heads`, `n_kv_heads`,
//! `vocab_size` — positive here —, `seq_len`), a `u8` flag (1: the classifier
//! is the token embedding), the group size `GS` (`i32`, unaligned at byte 37),
//! zeros to byte 256. Then the `f32` RMSNorm weights: attention (every
//! layer), MLP (every layer), final. Then the Q8_0 tensors, each as its int8
//! values followed by its `f32` group scales: the token embedding; `wq` for
//! every layer, then `wk`, `wv`, `wo`, `w1`, `w2`, `w3` likewise; the
//! classifier when untied. All little-endian, `(OUT, IN)` row-major.
//!
//! [`llama2c_q8_header`] parses the header, [`llama2c_q8_weights`] views a
//! whole file's bytes as [`LlamaQ8Weights`] (copying only the norms, into a
//! caller buffer; the file length must be exactly what the header implies,
//! every scale finite and non-negative). With `std`, [`llama2c_q8_export`]
//! quantizes an `f32` model into this format (weights rounded half to even,
//! as `export.py`), and [`Llama2cQ8Checkpoint`] owns a file's bytes.

use super::llama::LlamaConfig;
use super::llama_q8::{LlamaQ8Weights, Q8Layers};
use super::llama2c::llama2c_config;
use super::quant::{Q8Matrix, check_group, q8_bytes};
use crate::error::{Error, Result, check_len};

/// The magic number, as a little-endian `u32` ("24ka" in the file).
pub const LLAMA2C_Q8_MAGIC: u32 = 0x616B_3432;
/// The version this format carries.
pub const LLAMA2C_Q8_VERSION: i32 = 2;
/// Bytes of the version-2 header (padded with zeros).
pub const LLAMA2C_Q8_HEADER_BYTES: usize = 256;

const BAD: &str = "llama2.c version-2 checkpoint";

/// The configuration and group size of a version-2 header. `Err`
/// ([`Error::Format`]) for a short header, another magic or version, a size
/// that is zero or negative, inconsistent sizes, a flag other than 0 or 1, or
/// a group size that does not divide both `dim` and `hidden_dim`.
pub fn llama2c_q8_header(bytes: &[u8]) -> Result<(LlamaConfig, usize)> {
    let Some(h) = bytes.first_chunk::<LLAMA2C_Q8_HEADER_BYTES>() else {
        return Err(Error::Format {
            what: BAD,
            reason: "shorter than its 256-byte header",
        });
    };
    let word = |at: usize| [h[at], h[at + 1], h[at + 2], h[at + 3]];
    if u32::from_le_bytes(word(0)) != LLAMA2C_Q8_MAGIC {
        return Err(Error::Format {
            what: BAD,
            reason: "wrong magic number (not \"24ka\")",
        });
    }
    if i32::from_le_bytes(word(4)) != LLAMA2C_Q8_VERSION {
        return Err(Error::Format {
            what: BAD,
            reason: "not version 2",
        });
    }
    if i32::from_le_bytes(word(28)) <= 0 {
        return Err(Error::Format {
            what: BAD,
            reason: "the vocabulary size is zero or negative",
        });
    }
    // The seven sizes as the version-0 header has them (vocab positive).
    let mut cfg = llama2c_config(&h[8..36])?;
    cfg.shared_classifier = match h[36] {
        0 => false,
        1 => true,
        _ => {
            return Err(Error::Format {
                what: BAD,
                reason: "the shared-classifier flag is neither 0 nor 1",
            });
        }
    };
    let gs = i32::from_le_bytes(word(37));
    if gs <= 0 {
        return Err(Error::Format {
            what: BAD,
            reason: "the group size is zero or negative",
        });
    }
    let gs = gs as usize;
    if check_group(gs, cfg.dim).is_err() || check_group(gs, cfg.hidden_dim).is_err() {
        return Err(Error::Format {
            what: BAD,
            reason: "the group size does not divide dim and hidden_dim",
        });
    }
    Ok((cfg, gs))
}

/// `f32` values of the RMSNorm weights: `(2·n_layers + 1)·dim`
/// (`usize::MAX` if that overflows).
pub const fn llama2c_q8_norms_len(cfg: &LlamaConfig) -> usize {
    let Some(l2) = cfg.n_layers.checked_mul(2) else {
        return usize::MAX;
    };
    let Some(l) = l2.checked_add(1) else {
        return usize::MAX;
    };
    match l.checked_mul(cfg.dim) {
        Some(n) => n,
        None => usize::MAX,
    }
}

/// Total bytes of a version-2 file for `cfg` and group size `gs` (`None` for
/// a configuration [`LlamaConfig::check`] rejects, or on overflow).
pub fn llama2c_q8_len(cfg: &LlamaConfig, gs: usize) -> Option<usize> {
    cfg.check().ok()?;
    let (d, kv, hid, l, v) = (
        cfg.dim,
        cfg.kv_dim(),
        cfg.hidden_dim,
        cfg.n_layers,
        cfg.vocab_size,
    );
    let per_layer = [
        (d, d),
        (kv, d),
        (kv, d),
        (d, d),
        (hid, d),
        (d, hid),
        (hid, d),
    ]
    .iter()
    .try_fold(0usize, |a, &(r, c)| a.checked_add(q8_bytes(r, c, gs)?))?;
    let emb = q8_bytes(v, d, gs)?;
    let cls = if cfg.shared_classifier { 0 } else { emb };
    LLAMA2C_Q8_HEADER_BYTES
        .checked_add(llama2c_q8_norms_len(cfg).checked_mul(4)?)?
        .checked_add(emb)?
        .checked_add(per_layer.checked_mul(l)?)?
        .checked_add(cls)
}

/// Views the weights of a version-2 checkpoint `bytes` (the whole file) with
/// no copy but the RMSNorm weights, which are decoded into `norms` (at least
/// [`llama2c_q8_norms_len`] values). Returns the configuration with them.
/// `Err` ([`Error::Format`]) for a bad header, a length other than the header
/// implies, or a scale that is negative or not finite.
///
/// ```
/// use constml::models::{llama2c_q8_export, llama2c_q8_weights, LlamaConfig, LlamaWeights};
/// let cfg = LlamaConfig { dim: 8, hidden_dim: 16, n_layers: 1, n_heads: 2, n_kv_heads: 2,
///                         vocab_size: 4, seq_len: 4, shared_classifier: true };
/// let f32s: Vec<f32> = (0..cfg.weights_len()).map(|i| (i % 7) as f32 * 0.1 - 0.3).collect();
/// let bytes = llama2c_q8_export(&cfg, &LlamaWeights::from_flat(&cfg, &f32s)?, 4)?;
/// let mut norms = vec![0.0f32; constml::models::llama2c_q8_norms_len(&cfg)];
/// let (read, w) = llama2c_q8_weights(&bytes, &mut norms)?;
/// assert_eq!((read, w.group_size), (cfg, 4));
/// assert!(llama2c_q8_weights(&bytes[..bytes.len() - 1], &mut norms).is_err());
/// # Ok::<(), constml::Error>(())
/// ```
pub fn llama2c_q8_weights<'a>(
    bytes: &'a [u8],
    norms: &'a mut [f32],
) -> Result<(LlamaConfig, LlamaQ8Weights<'a>)> {
    let (cfg, gs) = llama2c_q8_header(bytes)?;
    if llama2c_q8_len(&cfg, gs) != Some(bytes.len()) {
        return Err(Error::Format {
            what: BAD,
            reason: "the file length does not match the sizes in its header",
        });
    }
    let nn = llama2c_q8_norms_len(&cfg);
    let found = norms.len();
    let norms = norms.get_mut(..nn).ok_or(Error::BufferTooSmall {
        what: "llama2c_q8_weights: norms",
        needed: nn,
        found,
    })?;
    let rest = &bytes[LLAMA2C_Q8_HEADER_BYTES..];
    let (nb, rest) = rest.split_at(nn * 4);
    for (o, b) in norms.iter_mut().zip(nb.chunks_exact(4)) {
        *o = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    }
    let w = views(&cfg, gs, rest, norms)?;
    Ok((cfg, w))
}

/// The weight views over the tensors after the norms (`bytes`) and the decoded
/// norms; every shape checked against `cfg`.
fn views<'a>(
    cfg: &LlamaConfig,
    gs: usize,
    bytes: &'a [u8],
    norms: &'a [f32],
) -> Result<LlamaQ8Weights<'a>> {
    let (d, kv, hid, l, v) = (
        cfg.dim,
        cfg.kv_dim(),
        cfg.hidden_dim,
        cfg.n_layers,
        cfg.vocab_size,
    );
    check_len("llama2c_q8: norms", llama2c_q8_norms_len(cfg), norms.len())?;
    let (rms_att, more) = norms.split_at(l * d);
    let (rms_ffn, rms_final) = more.split_at(l * d);
    let (emb, rest) = Q8Matrix::split_from(bytes, v, d, gs)?;
    let (wq, rest) = Q8Layers::split_from(rest, l, d, d, gs)?;
    let (wk, rest) = Q8Layers::split_from(rest, l, kv, d, gs)?;
    let (wv, rest) = Q8Layers::split_from(rest, l, kv, d, gs)?;
    let (wo, rest) = Q8Layers::split_from(rest, l, d, d, gs)?;
    let (w1, rest) = Q8Layers::split_from(rest, l, hid, d, gs)?;
    let (w2, rest) = Q8Layers::split_from(rest, l, d, hid, gs)?;
    let (w3, rest) = Q8Layers::split_from(rest, l, hid, d, gs)?;
    let wcls = if cfg.shared_classifier {
        emb
    } else {
        Q8Matrix::split_from(rest, v, d, gs)?.0
    };
    let w = LlamaQ8Weights {
        group_size: gs,
        token_embedding: emb,
        rms_att,
        rms_ffn,
        rms_final,
        wq,
        wk,
        wv,
        wo,
        w1,
        w2,
        w3,
        wcls,
    };
    w.check(cfg)?;
    Ok(w)
}

#[cfg(feature = "std")]
pub use writer::{Llama2cQ8Checkpoint, llama2c_q8_export};

#[cfg(feature = "std")]
mod writer {
    use std::vec::Vec;

    use super::*;
    use crate::models::llama::LlamaWeights;
    use crate::models::quant::{Rounding, quantize_q8};

    /// Appends `x` quantized in groups of `gs` (half to even, as `export.py`):
    /// its int8 values, then its scales.
    fn push_q8(out: &mut Vec<u8>, x: &[f32], gs: usize) -> Result<()> {
        let mut q = std::vec![0i8; x.len()];
        let mut s = std::vec![0.0f32; x.len() / gs.max(1)];
        quantize_q8(x, gs, Rounding::HalfEven, &mut q, &mut s)?;
        out.extend(q.iter().map(|&v| v as u8));
        out.extend(s.iter().flat_map(|v| v.to_le_bytes()));
        Ok(())
    }

    /// Quantizes an `f32` Llama model into llama2.c's version-2 format with
    /// group size `gs` (which must divide `dim` and `hidden_dim`): the bytes
    /// of the whole file, as `export.py --version 2` writes them. `Err` for a
    /// bad group size, weights that do not fit `cfg`, or a non-finite weight.
    pub fn llama2c_q8_export(
        cfg: &LlamaConfig,
        w: &LlamaWeights<'_, f32>,
        gs: usize,
    ) -> Result<Vec<u8>> {
        w.check(cfg)?;
        if gs > i32::MAX as usize
            || check_group(gs, cfg.dim).is_err()
            || check_group(gs, cfg.hidden_dim).is_err()
        {
            return Err(Error::InvalidParameter {
                what: "llama2c_q8_export: group size",
                reason: "must divide dim and hidden_dim",
            });
        }
        // The norms are written as f32; the quantized tensors are checked as
        // they are quantized. Either way a non-finite weight is an error.
        if [w.rms_att, w.rms_ffn, w.rms_final]
            .iter()
            .any(|t| t.iter().any(|v| !v.is_finite()))
        {
            return Err(Error::InvalidParameter {
                what: "llama2c_q8_export: RMSNorm weights",
                reason: "must be finite",
            });
        }
        let total = llama2c_q8_len(cfg, gs).ok_or(Error::InvalidParameter {
            what: "llama2c_q8_export: sizes",
            reason: "the file size overflows usize",
        })?;
        let mut out = Vec::with_capacity(total);
        out.extend(LLAMA2C_Q8_MAGIC.to_le_bytes());
        out.extend(LLAMA2C_Q8_VERSION.to_le_bytes());
        for v in [
            cfg.dim,
            cfg.hidden_dim,
            cfg.n_layers,
            cfg.n_heads,
            cfg.n_kv_heads,
            cfg.vocab_size,
            cfg.seq_len,
        ] {
            // cfg.check() bounds every size by i32::MAX.
            out.extend((v as i32).to_le_bytes());
        }
        out.push(cfg.shared_classifier as u8);
        out.extend((gs as i32).to_le_bytes());
        out.resize(LLAMA2C_Q8_HEADER_BYTES, 0);
        for t in [w.rms_att, w.rms_ffn, w.rms_final] {
            out.extend(t.iter().flat_map(|v| v.to_le_bytes()));
        }
        push_q8(&mut out, w.token_embedding, gs)?;
        let l = cfg.n_layers;
        for t in [w.wq, w.wk, w.wv, w.wo, w.w1, w.w2, w.w3] {
            let each = t.len() / l;
            for layer in t.chunks_exact(each) {
                push_q8(&mut out, layer, gs)?;
            }
        }
        if !cfg.shared_classifier {
            push_q8(&mut out, w.wcls, gs)?;
        }
        debug_assert_eq!(out.len(), total);
        Ok(out)
    }

    /// A version-2 checkpoint in memory (`std`): the file's bytes and its
    /// decoded RMSNorm weights; [`weights`](Self::weights) views them.
    #[derive(Clone, Debug)]
    pub struct Llama2cQ8Checkpoint {
        config: LlamaConfig,
        group_size: usize,
        bytes: Vec<u8>,
        norms: Vec<f32>,
    }

    impl Llama2cQ8Checkpoint {
        /// Reads a file (its length checked against the header before the
        /// weights are viewed).
        pub fn read(path: impl AsRef<std::path::Path>) -> Result<Self> {
            let bytes = std::fs::read(path).map_err(|_| Error::Format {
                what: BAD,
                reason: "could not be opened or read",
            })?;
            Self::from_vec(bytes)
        }

        /// A checkpoint from its bytes.
        pub fn from_vec(bytes: Vec<u8>) -> Result<Self> {
            let (config, group_size) = llama2c_q8_header(&bytes)?;
            if llama2c_q8_len(&config, group_size) != Some(bytes.len()) {
                return Err(Error::Format {
                    what: BAD,
                    reason: "the file length does not match the sizes in its header",
                });
            }
            let mut norms = std::vec![0.0f32; llama2c_q8_norms_len(&config)];
            llama2c_q8_weights(&bytes, &mut norms)?;
            Ok(Self {
                config,
                group_size,
                bytes,
                norms,
            })
        }

        /// The configuration from the header.
        pub fn config(&self) -> &LlamaConfig {
            &self.config
        }

        /// The group size.
        pub fn group_size(&self) -> usize {
            self.group_size
        }

        /// The file's bytes.
        pub fn bytes(&self) -> &[u8] {
            &self.bytes
        }

        /// Views of the weights (the norms from this checkpoint's copy).
        pub fn weights(&self) -> Result<LlamaQ8Weights<'_>> {
            let at = LLAMA2C_Q8_HEADER_BYTES + self.norms.len() * 4;
            views(
                &self.config,
                self.group_size,
                &self.bytes[at..],
                &self.norms,
            )
        }
    }
}
