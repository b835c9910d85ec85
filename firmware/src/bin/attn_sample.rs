//! Footprint probe (b): one attention decode step over a KV cache (4 heads ×
//! 16, capacity 128, with q/k/v/output projections of a 64-wide model), then a
//! 512-logit LM head and a sampled token: the kernel of an on-device decoder,
//! measured in flash, RAM and stack by `firmware/footprint`.
//!
//! The weights are generated at start-up into RAM (`.bss`), so that flash
//! holds code and constants only: the figure is the code's footprint, weights
//! excluded (a real model adds its weights to flash).
#![no_std]
#![no_main]

use constml::attention::{
    AttnOptions, CausalSelfAttention, DecoderScratch, DecoderWeights, KvCache, NoRotation,
};
use constml::decode::{Sampler, SamplerScratch};
use constml::{Result, Simd, kernels};
use rand_core::SeedableRng;
use rand_xoshiro::Xoshiro128PlusPlus;

#[cfg(target_arch = "arm")]
use cortex_m_rt::entry;
#[cfg(target_arch = "riscv32")]
use riscv_rt::entry;

const DM: usize = 64;
const H: usize = 4;
const D: usize = 16;
const CAP: usize = 128;
const V: usize = 512;

/// Everything mutable, in one `.bss` block.
struct State {
    w_q: [[[f32; DM]; D]; H],
    w_k: [[[f32; DM]; D]; H],
    w_v: [[[f32; DM]; D]; H],
    w_o: [[[f32; D]; H]; DM],
    head: [[f32; DM]; V],
    cache: KvCache<f32, H, D, CAP>,
    scratch: DecoderScratch<f32, 1, H, H, D, { CAP + 1 }>,
    sampler: SamplerScratch<f32, V>,
    logits: [f32; V],
}

impl State {
    const fn new() -> Self {
        State {
            w_q: [[[0.0; DM]; D]; H],
            w_k: [[[0.0; DM]; D]; H],
            w_v: [[[0.0; DM]; D]; H],
            w_o: [[[0.0; D]; H]; DM],
            head: [[0.0; DM]; V],
            cache: KvCache::new(),
            scratch: DecoderScratch::new(),
            sampler: SamplerScratch::new(),
            logits: [0.0; V],
        }
    }
}

/// Fills `w` with small pseudo-random values from `seed`.
fn fill(w: &mut [f32], seed: u32) {
    let mut x = seed | 1;
    for v in w {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        *v = (x >> 8) as f32 / 16_777_216.0 - 0.5;
    }
}

fn step(s: &mut State, seed: u32) -> Result<usize> {
    fill(s.w_q.as_flattened_mut().as_flattened_mut(), seed);
    fill(s.w_k.as_flattened_mut().as_flattened_mut(), seed + 1);
    fill(s.w_v.as_flattened_mut().as_flattened_mut(), seed + 2);
    fill(s.w_o.as_flattened_mut().as_flattened_mut(), seed + 3);
    fill(s.head.as_flattened_mut(), seed + 4);
    let block = CausalSelfAttention::<f32, DM, H, H, D, Simd>::new(DecoderWeights {
        w_q: &s.w_q,
        b_q: None,
        w_k: &s.w_k,
        b_k: None,
        w_v: &s.w_v,
        b_v: None,
        w_o: &s.w_o,
        b_o: None,
    });
    let mut x = [[0.0f32; DM]; 1];
    fill(&mut x[0], seed + 5);
    let mut out = [[0.0f32; DM]; 1];
    block.forward(
        &x,
        &mut s.cache,
        &NoRotation,
        &mut s.scratch,
        &mut out,
        &AttnOptions::new(),
    )?;
    kernels::matvec(&s.head, &out[0], &mut s.logits);
    let mut rng = Xoshiro128PlusPlus::seed_from_u64(seed as u64);
    Sampler::new()
        .with_temperature(0.8)
        .with_top_p(0.9)
        .sample(&s.logits, &mut s.sampler, &mut rng)
}

#[entry]
fn main() -> ! {
    constml_firmware::stack_paint();
    #[cfg(target_arch = "arm")]
    let state = cortex_m::singleton!(: State = State::new());
    #[cfg(target_arch = "riscv32")]
    let state = riscv::singleton!(: State = State::new());
    let Some(state) = state else {
        constml_firmware::exit(false)
    };
    constml_firmware::finish_probe(step(state, core::hint::black_box(11)), V)
}
