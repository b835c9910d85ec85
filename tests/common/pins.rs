//! Pinned outputs of the reproducible sampling path, shared by the host test
//! `tests/decode_sampling.rs` and the on-target suite `firmware/src/bin/tests.rs`
//! (included with `#[path]`; pure `core`). The `PINNED_*` values were produced by
//! running the host test once (x86-64, `-C target-cpu=native`, AVX-512) and
//! pasted in: they pin reproducibility, not correctness. Every build and target
//! must reproduce them bit for bit: the baseline x86-64 build, aarch64 under
//! qemu-user, and Cortex-M4F, Cortex-M0 and RISC-V under QEMU.
#![allow(dead_code)]

use constml::Real;
use constml::decode::{Sampler, repro_exp, uniform};
use rand_core::SeedableRng;
use rand_xoshiro::Xoshiro128PlusPlus;

/// Deterministic logits from integer arithmetic only: multiples of 1/256 in about
/// [−7.8, 7.8], with ties (4001 distinct values).
pub fn pinned_logits<T: Real, const N: usize>() -> [T; N] {
    core::array::from_fn(|i| {
        let mut h = (i as u32).wrapping_mul(2_654_435_761) ^ 0x5bd1_e995;
        h ^= h >> 15;
        h = h.wrapping_mul(0x2c1b_3c6d);
        h ^= h >> 12;
        T::from_f64(((h % 4001) as f64 - 2000.0) / 256.0)
    })
}

/// The pinned sampler configurations: plain, the full pipeline, top-p alone,
/// temperature with min-p.
pub fn pinned_configs<T: Real>() -> [Sampler<T>; 4] {
    [
        Sampler::new(),
        Sampler::new()
            .with_temperature(T::from_f64(0.7))
            .with_top_k(40)
            .with_top_p(T::from_f64(0.9))
            .with_min_p(T::from_f64(0.02)),
        Sampler::new().with_top_p(T::from_f64(0.5)),
        Sampler::new()
            .with_temperature(T::from_f64(1.3))
            .with_min_p(T::from_f64(0.1)),
    ]
}

/// Vocabulary of the main pins.
pub const N: usize = 1000;
/// Vocabulary of the small pins (sized for a 16 KiB Cortex-M0).
pub const N_SMALL: usize = 256;

/// For each config: seeds 0..8, four consecutive draws per seed; V = 1000.
pub const PINNED_F32: [[usize; 32]; 4] = [
    [
        283, 465, 737, 892, 505, 626, 898, 626, 314, 9, 227, 242, 996, 27, 327, 3, 221, 76, 427,
        557, 717, 221, 696, 964, 811, 696, 902, 922, 78, 45, 395, 344,
    ],
    [
        283, 471, 789, 905, 505, 631, 905, 631, 388, 7, 281, 281, 995, 7, 388, 7, 226, 85, 427,
        625, 717, 226, 717, 930, 829, 701, 922, 923, 103, 69, 400, 395,
    ],
    [
        327, 471, 789, 905, 528, 653, 905, 631, 344, 7, 281, 283, 995, 69, 388, 7, 226, 85, 471,
        625, 789, 226, 717, 964, 829, 717, 922, 923, 103, 69, 400, 388,
    ],
    [
        283, 457, 737, 876, 505, 626, 892, 625, 313, 14, 230, 242, 996, 34, 324, 3, 221, 76, 427,
        547, 717, 221, 696, 964, 811, 695, 898, 922, 78, 45, 388, 342,
    ],
];
/// As [`PINNED_F32`], for `f64`.
pub const PINNED_F64: [[usize; 32]; 4] = [
    [
        465, 892, 97, 114, 626, 626, 747, 557, 9, 242, 876, 626, 27, 3, 42, 388, 76, 557, 226, 226,
        221, 964, 246, 829, 696, 922, 395, 327, 45, 344, 820, 789,
    ],
    [
        471, 905, 103, 106, 631, 631, 789, 625, 7, 281, 905, 631, 7, 7, 69, 400, 85, 625, 281, 281,
        226, 930, 283, 846, 701, 923, 400, 388, 69, 395, 829, 789,
    ],
    [
        471, 905, 103, 106, 653, 631, 811, 625, 7, 283, 905, 631, 69, 7, 69, 400, 85, 625, 281,
        281, 226, 964, 283, 846, 717, 923, 400, 388, 69, 388, 846, 811,
    ],
    [
        457, 876, 97, 114, 626, 625, 747, 547, 14, 242, 876, 625, 34, 3, 42, 388, 76, 547, 226,
        226, 221, 964, 246, 829, 695, 922, 395, 324, 45, 342, 820, 789,
    ],
];
/// As [`PINNED_F32`] with V = 256 (logits `pinned_logits::<f32, 256>()`).
pub const PINNED_SMALL_F32: [[usize; 32]; 4] = [
    [
        69, 103, 178, 221, 103, 111, 221, 111, 69, 7, 46, 54, 246, 7, 69, 3, 44, 9, 95, 106, 162,
        45, 122, 228, 207, 122, 221, 226, 9, 7, 78, 76,
    ],
    [
        69, 103, 207, 221, 103, 106, 221, 106, 69, 7, 46, 69, 242, 7, 69, 3, 44, 7, 85, 103, 122,
        44, 114, 226, 208, 114, 221, 226, 7, 7, 78, 76,
    ],
    [
        76, 103, 207, 221, 103, 106, 221, 106, 78, 7, 76, 76, 226, 7, 78, 7, 69, 7, 103, 103, 207,
        69, 106, 226, 208, 106, 221, 226, 7, 7, 85, 78,
    ],
    [
        68, 103, 168, 221, 104, 114, 221, 112, 69, 7, 46, 54, 246, 7, 69, 3, 45, 9, 97, 106, 162,
        45, 122, 230, 207, 122, 221, 226, 9, 7, 78, 76,
    ],
];

/// Wrapping sum of the bits of `repro_exp` over a grid, and of `uniform` draws.
pub fn exp_checksums() -> (u32, u64, u32, u64) {
    let mut a = 0u32;
    let mut b = 0u64;
    for i in 0..20_000u32 {
        let x = -(i as f32) / 211.0;
        a = a.wrapping_mul(31).wrapping_add(repro_exp(x).to_bits());
        b = b
            .wrapping_mul(31)
            .wrapping_add(repro_exp(x as f64 * 1.001).to_bits());
    }
    let mut rng = Xoshiro128PlusPlus::seed_from_u64(11);
    let mut c = 0u32;
    let mut d = 0u64;
    for _ in 0..1000 {
        c = c
            .wrapping_mul(31)
            .wrapping_add(uniform::<f32, _>(&mut rng).to_bits());
        d = d
            .wrapping_mul(31)
            .wrapping_add(uniform::<f64, _>(&mut rng).to_bits());
    }
    (a, b, c, d)
}

/// [`exp_checksums`] as computed once on the host.
pub const PINNED_CHECKSUMS: (u32, u64, u32, u64) = (
    3912265539,
    8218855072929067842,
    3985513939,
    15278560810283012268,
);
