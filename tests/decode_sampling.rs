//! Reproducibility of the sampling path: fixed seeds give fixed tokens.
//!
//! The pinned values (in `common/pins.rs`, shared with the on-target suite, and
//! `PINNED_BIG_*` below) were produced by running this code once (x86-64,
//! `-C target-cpu=native`, AVX-512) and pasted in: they pin reproducibility, not
//! correctness (the sampler's distribution is checked against Hugging Face in
//! tests/decode_reference.rs). The same test must pass unchanged on the baseline
//! build (`RUSTFLAGS=`, SSE2: other vector widths, no FMA), aarch64, Cortex-M and
//! RISC-V.
//!
//! The LLM-sized pins (`PINNED_BIG_*`, V = 50 257, run through the runtime face)
//! cover the paths a small vocabulary does not reach: the 16-lane reproducible
//! sums over many 256-token draw blocks, top-p's candidate gathering and bucketed
//! mass quickselect, top-k's sampled pre-filter. They also hash
//! `Sampler::process`'s output, which pins the cuts themselves. (Switching the
//! sums from sequential to 16 interleaved partial sums left the small pins
//! unchanged: no draw moved.)

#[path = "common/pins.rs"]
mod pins;

use constml::Real;
use constml::decode::SamplerScratch;
use pins::*;
use rand_core::SeedableRng;
use rand_xoshiro::Xoshiro128PlusPlus;

// ------------------------------------------------------------------ pinned values

/// For each config: seeds 0..8, four consecutive draws per seed, vocabulary `V`.
fn pinned_tokens<T: Real, const V: usize>() -> Vec<Vec<usize>> {
    let logits = pinned_logits::<T, V>();
    let mut scratch = Box::new(SamplerScratch::<T, V>::new());
    pinned_configs::<T>()
        .iter()
        .map(|s| {
            let mut out = Vec::new();
            for seed in 0..8 {
                let mut rng = Xoshiro128PlusPlus::seed_from_u64(seed);
                for _ in 0..4 {
                    out.push(s.sample(&logits, &mut scratch, &mut rng).unwrap());
                }
            }
            out
        })
        .collect()
}

#[test]
fn fixed_seeds_give_fixed_tokens_f32() {
    let got = pinned_tokens::<f32, N>();
    assert_eq!(got, PINNED_F32.map(|r| r.to_vec()).to_vec());
}

#[test]
fn fixed_seeds_give_fixed_tokens_small_vocabulary() {
    let got = pinned_tokens::<f32, N_SMALL>();
    assert_eq!(got, PINNED_SMALL_F32.map(|r| r.to_vec()).to_vec());
}

#[test]
fn fixed_seeds_give_fixed_tokens_f64() {
    let got = pinned_tokens::<f64, N>();
    assert_eq!(got, PINNED_F64.map(|r| r.to_vec()).to_vec());
}

// ------------------------------------------------------- LLM-sized vocabulary

/// The LLM-sized pins use the runtime face (heap scratch), so they need `std`.
#[cfg(feature = "std")]
mod big {
    use super::*;
    use constml::decode::{Sampler, SamplerScratchDyn};

    const BIG: usize = 50_257;

    /// Bell-shaped logits at GPT-2's vocabulary size from integer arithmetic only:
    /// the sum of four hashed uniforms, in multiples of 1/256 in about [−8, 8]
    /// (standard deviation about 2.3, many ties).
    fn big_logits<T: Real>() -> Vec<T> {
        (0..BIG)
            .map(|i| {
                let mut acc = 0i64;
                for r in 0..4u32 {
                    let mut h =
                        (i as u32).wrapping_mul(2_654_435_761) ^ r.wrapping_mul(0x9e37_79b9);
                    h ^= h >> 15;
                    h = h.wrapping_mul(0x2c1b_3c6d);
                    h ^= h >> 12;
                    h = h.wrapping_mul(0x297a_2d39);
                    h ^= h >> 15;
                    acc += (h % 1024) as i64;
                }
                T::from_f64((acc - 2046) as f64 / 256.0)
            })
            .collect()
    }

    /// The configurations of the large pins: every stage alone and the full pipeline.
    fn big_configs<T: Real>() -> [Sampler<T>; 6] {
        [
            Sampler::new(),
            Sampler::new().with_top_p(T::from_f64(0.9)),
            Sampler::new().with_top_k(50),
            Sampler::new().with_min_p(T::from_f64(0.05)),
            Sampler::new()
                .with_temperature(T::from_f64(0.8))
                .with_top_k(40)
                .with_top_p(T::from_f64(0.95))
                .with_min_p(T::from_f64(0.05)),
            Sampler::new()
                .with_temperature(T::from_f64(1.3))
                .with_top_p(T::from_f64(0.5)),
        ]
    }

    /// For each config: seeds 0..8, two draws per seed, then an FNV-1a hash of the
    /// bits of [`Sampler::process`]'s output (which pins the cuts themselves).
    fn big_pins<T: Real>() -> Vec<(Vec<usize>, u64)> {
        let logits = big_logits::<T>();
        let mut scratch = SamplerScratchDyn::<T>::new(BIG).unwrap();
        big_configs::<T>()
            .iter()
            .map(|s| {
                let mut tokens = Vec::new();
                for seed in 0..8 {
                    let mut rng = Xoshiro128PlusPlus::seed_from_u64(seed);
                    for _ in 0..2 {
                        tokens.push(s.sample_dyn(&logits, &mut scratch, &mut rng).unwrap());
                    }
                }
                let mut y = logits.clone();
                s.process_dyn(&mut y, &mut scratch).unwrap();
                let mut h = 0xcbf2_9ce4_8422_2325u64;
                for v in &y {
                    h = (h ^ Real::as_f64(*v).to_bits()).wrapping_mul(0x0000_0100_0000_01b3);
                }
                (tokens, h)
            })
            .collect()
    }

    #[test]
    fn big_vocabulary_pins_f32() {
        let got = big_pins::<f32>();
        let want: Vec<(Vec<usize>, u64)> = PINNED_BIG_F32
            .iter()
            .map(|(t, h)| (t.to_vec(), *h))
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn big_vocabulary_pins_f64() {
        let got = big_pins::<f64>();
        let want: Vec<(Vec<usize>, u64)> = PINNED_BIG_F64
            .iter()
            .map(|(t, h)| (t.to_vec(), *h))
            .collect();
        assert_eq!(got, want);
    }

    // Pinned by running this code once (see the file header).
    const PINNED_BIG_F32: [([usize; 16], u64); 6] = [
        (
            [
                13638, 22175, 24518, 29537, 14992, 1375, 50059, 1894, 10482, 4289, 34669, 10855,
                38065, 32959, 4513, 2700,
            ],
            2771995746153359007,
        ),
        (
            [
                13592, 22098, 24464, 29439, 14997, 1375, 50052, 1903, 10455, 4269, 34610, 10843,
                37961, 32876, 4497, 2676,
            ],
            1240829047452034719,
        ),
        (
            [
                13270, 20696, 22242, 27257, 13459, 2226, 46930, 2226, 10230, 5321, 32109, 10903,
                35491, 29537, 5321, 4269,
            ],
            11366711014710929055,
        ),
        (
            [
                13276, 21258, 23997, 28764, 14499, 1208, 49807, 1840, 10230, 4206, 33860, 10584,
                37151, 32245, 4360, 2521,
            ],
            9415319767966639775,
        ),
        (
            [
                13052, 20051, 22035, 27257, 13270, 2226, 46930, 2226, 9642, 4362, 35491, 9642,
                36738, 30384, 4362, 4269,
            ],
            4839050118581544607,
        ),
        (
            [
                13810, 22174, 24464, 29363, 15112, 1358, 50076, 1913, 10589, 4276, 34345, 10902,
                37749, 32756, 4513, 2766,
            ],
            14322699933090408095,
        ),
    ];
    const PINNED_BIG_F64: [([usize; 16], u64); 6] = [
        (
            [
                22175, 42193, 29537, 29226, 1375, 12501, 1894, 306, 4289, 26637, 10855, 46999,
                32959, 44395, 2700, 16664,
            ],
            2771995746153359007,
        ),
        (
            [
                22098, 42156, 29439, 29186, 1375, 12501, 1903, 306, 4269, 26553, 10843, 46930,
                32876, 44315, 2676, 16664,
            ],
            1240829047452034719,
        ),
        (
            [
                20696, 37668, 27257, 27257, 2226, 12901, 2226, 1757, 5321, 24946, 10903, 39344,
                29537, 39179, 4269, 16053,
            ],
            11366711014710929055,
        ),
        (
            [
                21258, 41369, 28764, 28309, 1208, 12317, 1840, 323, 4206, 25908, 10584, 46476,
                32245, 43686, 2521, 16634,
            ],
            9415319767966639775,
        ),
        (
            [
                20051, 38328, 27257, 27257, 2226, 10230, 2226, 1757, 4362, 26953, 9642, 44496,
                30384, 39179, 4269, 13459,
            ],
            4839050118581544607,
        ),
        (
            [
                22174, 41859, 29363, 29108, 1358, 12726, 1913, 306, 4276, 26480, 10902, 46866,
                32756, 44065, 2766, 16810,
            ],
            12405765990953571067,
        ),
    ];
}

#[test]
fn repro_exp_and_uniform_bits_are_pinned() {
    assert_eq!(exp_checksums(), PINNED_CHECKSUMS);
}
