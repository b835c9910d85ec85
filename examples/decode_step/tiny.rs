//! A tiny decoder step, allocation-free and `no_std`: embedding row → causal
//! self-attention over a KV cache → LM head → sampler → token.
//!
//! Used by `examples/decode_step` and, under a counting allocator, by
//! `tests/no_alloc_kernels.rs`. Weights are
//! `static` tables computed at compile time (flash on a microcontroller); the
//! mutable state is one [`State`] with a `const fn new()`, which the caller
//! keeps in a `static` (see the example's `main`).
//!
//! The weights are deterministic pseudo-random numbers: the point is the data
//! flow and the memory plan, not the text.

use constml::attention::{
    AttnOptions, CausalSelfAttention, DecoderScratch, DecoderWeights, KvCache, NoRotation,
};
use constml::decode::{Sampler, SamplerScratch};
use constml::{Result, kernels, rand_core::Rng};

/// Vocabulary size.
pub const V: usize = 48;
/// Model width.
pub const DM: usize = 32;
/// Attention heads (multi-head: as many kv heads).
pub const H: usize = 4;
/// Head width.
pub const D: usize = DM / H;
/// Cache capacity in positions (a ring: the model sees the last `CAP` tokens).
pub const CAP: usize = 64;

/// A linear congruential table of `R × C` values in `[−scale/2, scale/2)`.
const fn table<const R: usize, const C: usize>(seed: u32, scale: f32) -> [[f32; C]; R] {
    let mut t = [[0.0; C]; R];
    let mut s = seed;
    let mut i = 0;
    while i < R {
        let mut j = 0;
        while j < C {
            s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            t[i][j] = ((s >> 8) as f32 / 16_777_216.0 - 0.5) * scale;
            j += 1;
        }
        i += 1;
    }
    t
}

/// `H` stacked tables of `D × C` (a per-head projection weight).
const fn heads<const N: usize, const C: usize>(seed: u32, scale: f32) -> [[[f32; C]; D]; N] {
    let mut t = [[[0.0; C]; D]; N];
    let mut h = 0;
    while h < N {
        t[h] = table::<D, C>(seed.wrapping_add(h as u32 * 7919), scale);
        h += 1;
    }
    t
}

static EMBED: [[f32; DM]; V] = table::<V, DM>(1, 2.0);
static LM_HEAD: [[f32; DM]; V] = table::<V, DM>(6, 1.0);
static W_Q: [[[f32; DM]; D]; H] = heads::<H, DM>(2, 0.6);
static W_K: [[[f32; DM]; D]; H] = heads::<H, DM>(3, 0.6);
static W_V: [[[f32; DM]; D]; H] = heads::<H, DM>(4, 0.6);
static W_O: [[[f32; D]; H]; DM] = {
    let flat = table::<DM, DM>(5, 0.6);
    let mut w = [[[0.0; D]; H]; DM];
    let mut i = 0;
    while i < DM {
        let mut h = 0;
        while h < H {
            let mut d = 0;
            while d < D {
                w[i][h][d] = flat[i][h * D + d];
                d += 1;
            }
            h += 1;
        }
        i += 1;
    }
    w
};

/// The attention layer of this model (the configuration named once).
type Attention = CausalSelfAttention<'static, f32, DM, H, H, D>;

/// Everything a decode step writes: the cache, the attention scratch, the
/// sampler's scratch and the activations. [`State::BYTES`] of RAM in all.
pub struct State {
    cache: KvCache<f32, H, D, CAP>,
    scratch: DecoderScratch<f32, 1, H, H, D, { CAP + 1 }>,
    sampler: SamplerScratch<f32, V>,
    x: [[f32; DM]; 1],
    attn: [[f32; DM]; 1],
    logits: [f32; V],
}

impl State {
    /// Its size in bytes (for the memory plan).
    pub const BYTES: usize = core::mem::size_of::<Self>();

    /// An empty state; `const`, so it can initialise a `static`.
    pub const fn new() -> Self {
        Self {
            cache: KvCache::new_ring(),
            scratch: DecoderScratch::new(),
            sampler: SamplerScratch::new(),
            x: [[0.0; DM]; 1],
            attn: [[0.0; DM]; 1],
            logits: [0.0; V],
        }
    }

    /// Forgets the sequence (the cache), keeping the memory.
    pub fn reset(&mut self) {
        self.cache.reset();
    }

    /// Positions fed so far.
    pub fn position(&self) -> usize {
        self.cache.next_position()
    }

    /// Feeds `token` at the next position and samples the next token.
    pub fn step(
        &mut self,
        token: usize,
        sampler: &Sampler<f32>,
        rng: &mut impl Rng,
    ) -> Result<usize> {
        let row = EMBED.get(token).ok_or(constml::Error::OutOfRange {
            what: "decode_step: token",
            index: token,
            len: V,
        })?;
        self.x[0] = *row;
        let attn = Attention::new(DecoderWeights {
            w_q: &W_Q,
            b_q: None,
            w_k: &W_K,
            b_k: None,
            w_v: &W_V,
            b_v: None,
            w_o: &W_O,
            b_o: None,
        });
        attn.forward(
            &self.x,
            &mut self.cache,
            &NoRotation,
            &mut self.scratch,
            &mut self.attn,
            &AttnOptions::new().causal(),
        )?;
        // Residual, then the LM head `(V, DM)`: logits = W·h.
        let mut h = self.x[0];
        for (hi, ai) in h.iter_mut().zip(&self.attn[0]) {
            *hi += ai;
        }
        kernels::matvec(&LM_HEAD, &h, &mut self.logits);
        sampler.sample(&self.logits, &mut self.sampler, rng)
    }
}

impl Default for State {
    fn default() -> Self {
        Self::new()
    }
}
