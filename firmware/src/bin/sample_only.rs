//! Footprint probe (a): a firmware that only samples a token from V = 512
//! logits (temperature, top-k, top-p, seeded), to measure what the sampling
//! path costs in flash, RAM and stack (`firmware/footprint`). The logits are
//! made at run time from a seed the optimiser cannot see, so nothing folds.
#![no_std]
#![no_main]

use constml::decode::{Sampler, SamplerScratch};
use rand_core::SeedableRng;
use rand_xoshiro::Xoshiro128PlusPlus;

#[cfg(target_arch = "arm")]
use cortex_m_rt::entry;
#[cfg(target_arch = "riscv32")]
use riscv_rt::entry;

const V: usize = 512;

#[entry]
fn main() -> ! {
    constml_firmware::stack_paint();
    let seed = core::hint::black_box(7u32);
    let logits: [f32; V] = core::array::from_fn(|i| {
        let h = (i as u32 ^ seed).wrapping_mul(2_654_435_761) >> 20;
        h as f32 / 512.0 - 4.0
    });
    let mut scratch = SamplerScratch::<f32, V>::new();
    let mut rng = Xoshiro128PlusPlus::seed_from_u64(seed as u64);
    let sampler = Sampler::new()
        .with_temperature(0.8)
        .with_top_k(40)
        .with_top_p(0.9);
    constml_firmware::finish_probe(sampler.sample(&logits, &mut scratch, &mut rng), V)
}
