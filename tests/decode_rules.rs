//! constml's own decoding rules where they differ from, or go beyond, Hugging
//! Face: ties (lower token id wins), exact boundaries with dyadic probabilities
//! (0.5, 0.25, … — every sum exact), the draw rule, T = 0, the equivalence of the
//! pipeline with the chained processors, and bad input (errors, never panics).

use std::convert::Infallible;

use constml::Error;
use constml::decode::{
    Sampler, SamplerScratch, SelectScratch, greedy, min_p, min_p_probs, repro_exp, sample_probs,
    temperature, top_k, top_p, top_p_probs,
};
// The runtime-vocabulary faces (feature `std`): checked against the const faces.
#[cfg(feature = "std")]
use constml::decode::{
    SamplerScratchDyn, SelectScratchDyn, greedy_dyn, min_p_dyn, min_p_probs_dyn, sample_probs_dyn,
    temperature_dyn, top_k_dyn, top_p_dyn, top_p_probs_dyn,
};
use rand_core::{SeedableRng, TryRng};
use rand_xoshiro::Xoshiro128PlusPlus;

const NEG: f32 = f32::NEG_INFINITY;

/// Asserts that `$e` is an `Err` matching the `Error` pattern `$pat`.
macro_rules! assert_err {
    ($e:expr, $pat:pat) => {{
        let r = $e;
        assert!(matches!(r, Err($pat)), "{}: got {r:?}", stringify!($e));
    }};
}

/// An Rng that returns scripted `next_u32` values (and counts calls).
struct Scripted {
    words: Vec<u32>,
    at: usize,
}

impl Scripted {
    fn new(words: &[u32]) -> Self {
        Self {
            words: words.to_vec(),
            at: 0,
        }
    }
    /// The `next_u32` that makes `uniform::<f32>` return exactly `u` (u·2^24 integral).
    fn word_for(u: f64) -> u32 {
        let n = (u * 16_777_216.0) as u32;
        assert_eq!(n as f64, u * 16_777_216.0, "u must be a multiple of 2^-24");
        n << 8
    }
}

impl TryRng for Scripted {
    type Error = Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        let w = self.words[self.at];
        self.at += 1;
        Ok(w)
    }
    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        let hi = self.try_next_u32()? as u64;
        let lo = self.try_next_u32()? as u64;
        Ok(hi << 32 | lo)
    }
    fn try_fill_bytes(&mut self, _dst: &mut [u8]) -> Result<(), Infallible> {
        unimplemented!("not used by constml")
    }
}

fn kept(x: &[f32]) -> Vec<usize> {
    (0..x.len()).filter(|&i| x[i].is_finite()).collect()
}
fn nonzero(x: &[f32]) -> Vec<usize> {
    (0..x.len()).filter(|&i| x[i] != 0.0).collect()
}

// ------------------------------------------------------------------ greedy / T

#[test]
fn greedy_takes_lowest_id_on_ties() {
    assert_eq!(greedy(&[1.0f32, 5.0, 5.0, 5.0]).unwrap(), 1);
    assert_eq!(greedy(&[NEG, NEG, 0.0, 0.0]).unwrap(), 2);
    assert_eq!(greedy(&[7.0f64]).unwrap(), 0);
    assert_eq!(greedy(&[1.0f32, f32::INFINITY, f32::INFINITY]).unwrap(), 1);
    #[cfg(feature = "std")]
    assert_eq!(greedy_dyn(&[3.0f32, 3.0]).unwrap(), 0);
}

#[test]
fn temperature_zero_is_greedy() {
    let mut x = [0.5f32, 2.0, 2.0, -1.0];
    temperature(&mut x, 0.0).unwrap();
    assert_eq!(x, [NEG, 2.0, NEG, NEG]);
    // Sampling at T = 0 returns the greedy token without drawing.
    let logits = [0.5f32, 2.0, 2.0, -1.0];
    let mut s = SamplerScratch::<f32, 4>::new();
    let mut rng = Scripted::new(&[]);
    let smp = Sampler::new()
        .with_temperature(0.0)
        .with_top_k(3)
        .with_top_p(0.5);
    assert_eq!(smp.sample(&logits, &mut s, &mut rng).unwrap(), 1);
    assert_eq!(rng.at, 0, "no random number consumed");
    let mut y = logits;
    smp.process(&mut y, &mut s).unwrap();
    assert_eq!(y, [NEG, 2.0, NEG, NEG]);
}

#[test]
fn temperature_that_overflows_is_greedy() {
    let mut x = [1.0f32, 30.0, 29.0];
    temperature(&mut x, 1e-38).unwrap();
    assert_eq!(x, [NEG, 30.0, NEG]);
    let mut s = SamplerScratch::<f32, 3>::new();
    let smp = Sampler::new().with_temperature(1e-38);
    assert_eq!(
        smp.sample(&[1.0, 30.0, 29.0], &mut s, &mut Scripted::new(&[]))
            .unwrap(),
        1
    );
}

#[test]
fn temperature_divides() {
    let mut x = [3.0f32, -1.5, NEG];
    temperature(&mut x, 1.5).unwrap();
    assert_eq!(x, [2.0, -1.0, NEG]);
}

// ------------------------------------------------------------------ top-k

#[test]
fn top_k_keeps_exactly_k_with_lower_ids_on_ties() {
    let mut s = SelectScratch::<f32, 6>::new();
    let base = [1.0f32, 3.0, 2.0, 3.0, 3.0, 0.0];
    for (k, want) in [
        (1, vec![1]),
        (2, vec![1, 3]),
        (3, vec![1, 3, 4]),
        (4, vec![1, 2, 3, 4]),
        (6, vec![0, 1, 2, 3, 4, 5]),
        (100, vec![0, 1, 2, 3, 4, 5]),
    ] {
        let mut x = base;
        top_k(&mut x, k, &mut s).unwrap();
        assert_eq!(kept(&x), want, "k = {k}");
        for &i in &want {
            assert_eq!(x[i], base[i]);
        }
    }
    // Fewer than k finite logits: every finite one survives, −∞ stays −∞.
    let mut x = [NEG, 1.0, NEG, 2.0, NEG, NEG];
    top_k(&mut x, 3, &mut s).unwrap();
    assert_eq!(kept(&x), vec![1, 3]);
}

/// Deterministic pseudo-random integers (xorshift) for the rule oracles.
fn ints(n: usize, modulo: u32, seed: u32) -> Vec<u32> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x % modulo
        })
        .collect()
}

/// Token ids in rule order: key descending, then id ascending.
fn rule_order(keys: &[f32]) -> Vec<usize> {
    let mut ids: Vec<usize> = (0..keys.len()).collect();
    ids.sort_by(|&a, &b| keys[b].partial_cmp(&keys[a]).unwrap().then(a.cmp(&b)));
    ids
}

/// The top-k rule computed by sorting (the oracle): the ids of the `k` best, in
/// id order.
fn top_k_oracle(x: &[f32], k: usize) -> Vec<usize> {
    let mut want = rule_order(x)[..k].to_vec();
    want.sort();
    want
}

#[test]
fn top_k_with_many_ties_follows_the_rule() {
    const N: usize = 700;
    let mut s = SelectScratch::<f32, N>::new();
    #[cfg(feature = "std")]
    let mut sd = SelectScratchDyn::<f32>::new(N).unwrap();
    for seed in 1..20 {
        let x0: Vec<f32> = ints(N, 9, seed).iter().map(|&v| v as f32 * 0.5).collect();
        for k in [1, 2, 50, 77, 350, 699, 700] {
            let mut x: [f32; N] = x0.clone().try_into().unwrap();
            top_k(&mut x, k, &mut s).unwrap();
            assert_eq!(kept(&x), top_k_oracle(&x0, k), "seed {seed} k {k}");
            #[cfg(feature = "std")]
            {
                let mut d = x0.clone();
                top_k_dyn(&mut d, k, &mut sd).unwrap();
                assert_eq!(&d[..], &x[..]);
            }
        }
    }
}

#[test]
fn top_k_sampled_prefilter_follows_the_rule() {
    // V ≥ 2048 and 16·k ≤ V take the sampled pre-filter path.
    const N: usize = 5000;
    let mut s = SelectScratch::<f32, N>::new();
    for seed in 1..8 {
        let x0: Vec<f32> = ints(N, 9, seed).iter().map(|&v| v as f32 * 0.5).collect();
        for k in [1, 2, 7, 50, 312] {
            let mut x: [f32; N] = x0.clone().try_into().unwrap();
            top_k(&mut x, k, &mut s).unwrap();
            assert_eq!(kept(&x), top_k_oracle(&x0, k), "seed {seed} k {k}");
        }
    }
    // An adversarial layout: only the sampled positions (j·V/512) hold large
    // values, so the sample overestimates the threshold and too few tokens pass;
    // the fallback over every token must still give the exact rule.
    let mut x0 = vec![0.0f32; N];
    for j in 0..512 {
        x0[j * N / 512] = 10.0 + (j % 5) as f32;
    }
    for (i, v) in x0.iter_mut().enumerate() {
        if *v == 0.0 {
            *v = (i % 7) as f32 * 0.25;
        }
    }
    for k in [100, 300] {
        let mut x: [f32; N] = x0.clone().try_into().unwrap();
        top_k(&mut x, k, &mut s).unwrap();
        assert_eq!(kept(&x), top_k_oracle(&x0, k), "adversarial k {k}");
    }
}

// ------------------------------------------------------------------ top-p

#[test]
fn top_p_boundaries_with_dyadic_probabilities() {
    let mut s = SelectScratch::<f32, 4>::new();
    let q = [0.25f32, 0.125, 0.5, 0.125];
    for (p, want) in [
        (0.0f32, vec![2]),       // p = 0: the top token only
        (0.5, vec![2]),          // reaching p exactly stops
        (0.5000001, vec![0, 2]), // just above: the crossing token is kept
        (0.75, vec![0, 2]),      // exact again
        (0.875, vec![0, 1, 2]),  // tie 0.125/0.125: lower id (1) first
        (0.9, vec![0, 1, 2, 3]), // crossing
        (1.0, vec![0, 1, 2, 3]), // p = 1 keeps everything
    ] {
        let mut x = q;
        top_p_probs(&mut x, p, &mut s).unwrap();
        assert_eq!(nonzero(&x), want, "p = {p}");
    }
    // Unnormalised weights: the mass is relative to their sum (2 of 4 = 0.5).
    let mut s3 = SelectScratch::<f32, 3>::new();
    let mut x = [1.0f32, 2.0, 1.0];
    top_p_probs(&mut x, 0.5, &mut s3).unwrap();
    assert_eq!(x, [0.0, 2.0, 0.0]);
    let mut x = [1.0f32, 2.0, 1.0];
    top_p_probs(&mut x, 0.75, &mut s3).unwrap();
    assert_eq!(x, [1.0, 2.0, 0.0]);
}

#[test]
fn top_p_on_tied_logits() {
    // Equal logits have weight e^0 = 1 exactly, so these boundaries are exact.
    let mut s = SelectScratch::<f32, 4>::new();
    let mut x = [0.0f32; 4];
    top_p(&mut x, 0.5, &mut s).unwrap();
    assert_eq!(kept(&x), vec![0, 1]);
    let mut x = [0.0f32; 4];
    top_p(&mut x, 0.5001, &mut s).unwrap();
    assert_eq!(kept(&x), vec![0, 1, 2]);
    let mut x = [0.0f32, 0.0, NEG, 0.0];
    top_p(&mut x, 0.6, &mut s).unwrap(); // need 1.8 of 3: two tokens
    assert_eq!(kept(&x), vec![0, 1]);
    let mut x = [0.0f32, 0.0, NEG, 0.0];
    top_p(&mut x, 0.7, &mut s).unwrap(); // need 2.1 of 3: the third crosses
    assert_eq!(kept(&x), vec![0, 1, 3]);
    let mut x = [-1.0f32, 0.0, 0.0, 0.0];
    top_p(&mut x, 0.0, &mut s).unwrap();
    assert_eq!(kept(&x), vec![1]);
}

#[test]
fn top_p_mass_select_follows_the_rule() {
    // Dyadic weights with many ties, long enough for several partition rounds.
    const N: usize = 600;
    let mut s = SelectScratch::<f32, N>::new();
    #[cfg(feature = "std")]
    let mut sd = SelectScratchDyn::<f32>::new(N).unwrap();
    for seed in 1..15 {
        let w: Vec<f32> = ints(N, 17, seed).iter().map(|&v| v as f32 / 64.0).collect();
        for p in [0.0f32, 0.03125, 0.25, 0.5, 0.6, 0.875, 0.99, 1.0] {
            let mut x: [f32; N] = w.clone().try_into().unwrap();
            top_p_probs(&mut x, p, &mut s).unwrap();
            assert_eq!(nonzero(&x), top_p_oracle(&w, p), "seed {seed} p {p}");
            #[cfg(feature = "std")]
            {
                let mut d = w.clone();
                top_p_probs_dyn(&mut d, p, &mut sd).unwrap();
                assert_eq!(&d[..], &x[..]);
            }
        }
    }
}

/// The top-p rule computed by sorting (the oracle), exact for dyadic weights.
fn top_p_oracle(w: &[f32], p: f32) -> Vec<usize> {
    let total: f32 = w.iter().sum();
    if p == 1.0 {
        return (0..w.len()).filter(|&i| w[i] > 0.0).collect();
    }
    let need = p * total;
    let mut acc = 0.0f32;
    let mut want = Vec::new();
    for &i in &rule_order(w) {
        if w[i] == 0.0 {
            break;
        }
        want.push(i);
        acc += w[i];
        if acc >= need {
            break;
        }
    }
    want.sort();
    want
}

#[test]
fn top_p_large_dense_and_sparse_follow_the_rule() {
    const N: usize = 6000;
    let mut s = SelectScratch::<f32, N>::new();
    for seed in 1..6 {
        // Dense: heavy-tailed dyadic weights 2^-e (most tokens positive).
        let dense: Vec<f32> = ints(N, 12, seed)
            .iter()
            .map(|&e| 1.0 / (1u32 << e) as f32)
            .collect();
        // Sparse: fewer than N/8 positive weights (the branchy fill).
        let sparse: Vec<f32> = ints(N, 64, seed + 100)
            .iter()
            .map(|&v| if v < 6 { (v + 1) as f32 / 8.0 } else { 0.0 })
            .collect();
        for w in [&dense, &sparse] {
            for p in [0.0f32, 0.1, 0.5, 0.75, 0.9, 0.99, 1.0] {
                let mut x: [f32; N] = w.clone().try_into().unwrap();
                top_p_probs(&mut x, p, &mut s).unwrap();
                assert_eq!(nonzero(&x), top_p_oracle(w, p), "seed {seed} p {p}");
            }
        }
    }
}

#[test]
fn top_p_exact_boundary_at_every_rank() {
    // 2048 equal dyadic weights: with p = m/2048 the mass reaches p·S exactly after
    // m tokens, so exactly tokens 0..m survive (ties → lower ids). Sweeping every m
    // puts the exact boundary on every possible partition point of the quickselect.
    const N: usize = 2048;
    let mut s = SelectScratch::<f32, N>::new();
    for m in 1..=N {
        let mut x = [0.25f32; N];
        top_p_probs(&mut x, m as f32 / N as f32, &mut s).unwrap();
        let n = x.iter().take_while(|&&v| v > 0.0).count();
        assert_eq!(n, m, "p = {m}/{N}");
        assert!(x[m..].iter().all(|&v| v == 0.0));
    }
}

// ------------------------------------------------------------------ min-p

#[test]
fn min_p_boundaries_with_dyadic_probabilities() {
    let q = [0.5f32, 0.25, 0.125, 0.0625, 0.0625];
    for (m, want) in [
        (0.0f32, vec![0, 1, 2, 3, 4]),
        (0.125, vec![0, 1, 2, 3, 4]), // 0.0625 = 0.125 × 0.5 exactly: kept
        (0.126, vec![0, 1, 2]),
        (0.5, vec![0, 1]), // 0.25 = 0.5 × 0.5: kept
        (1.0, vec![0]),
    ] {
        let mut x = q;
        min_p_probs(&mut x, m).unwrap();
        assert_eq!(nonzero(&x), want, "min_p = {m}");
        #[cfg(feature = "std")]
        {
            let mut d = q.to_vec();
            min_p_probs_dyn(&mut d, m).unwrap();
            assert_eq!(&d[..], &x[..]);
        }
    }
    // Ties with the top survive min_p = 1.
    let mut x = [0.25f32, 0.25, 0.125, 0.25];
    min_p_probs(&mut x, 1.0).unwrap();
    assert_eq!(nonzero(&x), vec![0, 1, 3]);
    let mut x = [2.0f32, 1.0, 2.0, NEG];
    min_p(&mut x, 1.0).unwrap();
    assert_eq!(kept(&x), vec![0, 2]);
    let mut x = [2.0f32, 1.0, 2.0, NEG];
    min_p(&mut x, 0.0).unwrap();
    assert_eq!(kept(&x), vec![0, 1, 2]);
    #[cfg(feature = "std")]
    {
        let mut d = vec![2.0f32, 1.0, 2.0, NEG];
        min_p_dyn(&mut d, 0.0).unwrap();
        assert_eq!(kept(&d), vec![0, 1, 2]);
    }
}

// ------------------------------------------------------------------ the draw

#[test]
fn draw_walks_tokens_in_id_order() {
    let q = [0.25f32, 0.0, 0.5, 0.25];
    let draw = |u: f64| sample_probs(&q, &mut Scripted::new(&[Scripted::word_for(u)])).unwrap();
    assert_eq!(draw(0.0), 0);
    assert_eq!(draw(0.1875), 0);
    assert_eq!(draw(0.25), 2); // the running sum must *exceed* u·S; token 1 has no weight
    assert_eq!(draw(0.71875), 2);
    assert_eq!(draw(0.75), 3);
    assert_eq!(draw(1.0 - 1.0 / 16_777_216.0), 3);
    // Unnormalised: S = 4, u·S = 2 → the running sum 1, 3 exceeds 2 at token 2.
    let w = [1.0f32, 0.0, 2.0, 1.0];
    assert_eq!(
        sample_probs(&w, &mut Scripted::new(&[Scripted::word_for(0.5)])).unwrap(),
        2
    );
    #[cfg(feature = "std")]
    assert_eq!(
        sample_probs_dyn(&w, &mut Scripted::new(&[Scripted::word_for(0.25)])).unwrap(),
        2
    );
    // f64 takes one next_u64 (two scripted words here), top 53 bits.
    let wd = [0.5f64, 0.5];
    assert_eq!(
        sample_probs(&wd, &mut Scripted::new(&[0x7fff_ffff, 0])).unwrap(),
        0
    );
    assert_eq!(
        sample_probs(&wd, &mut Scripted::new(&[0x8000_0000, 0])).unwrap(),
        1
    );
}

/// The reproducible sum of the module documentation, written out: 16 partial
/// sums (token i → partial i mod 16, in increasing i) and a halving tree.
fn repro_sum(w: &[f32]) -> f32 {
    let mut p = [0.0f32; 16];
    for (i, &x) in w.iter().enumerate() {
        p[i % 16] += x;
    }
    let mut h = 8;
    while h > 0 {
        for j in 0..h {
            p[j] += p[j + h];
        }
        h /= 2;
    }
    p[0]
}

/// The documented draw for target `t`: the first block of 256 tokens whose end
/// prefix sum exceeds `t`, then the sequential walk from its start prefix sum.
fn draw_rule(w: &[f32], t: f32) -> usize {
    for b in 0..w.len().div_ceil(256) {
        let hi = ((b + 1) * 256).min(w.len());
        if repro_sum(&w[..hi]) > t {
            let mut run = repro_sum(&w[..b * 256]);
            let mut last = None;
            for (i, &x) in w.iter().enumerate().take(hi).skip(b * 256) {
                if x > 0.0 {
                    run += x;
                    last = Some(i);
                    if run > t {
                        return i;
                    }
                }
            }
            return last.unwrap();
        }
    }
    w.iter().rposition(|&x| x > 0.0).unwrap()
}

#[test]
fn draw_uses_the_documented_sums_over_many_blocks() {
    // Weights over nine orders of magnitude (many zeros): in another summation
    // order the totals and prefix sums round differently.
    const N: usize = 3000;
    let r = ints(N, 1_000_000, 77);
    let w: [f32; N] = std::array::from_fn(|i| {
        if r[i].is_multiple_of(4) {
            0.0
        } else {
            (r[i] % 997) as f32 * 10f32.powi((r[i] % 9) as i32 - 6)
        }
    });
    let s = repro_sum(&w);
    let sequential: f32 = w.iter().sum();
    assert_ne!(
        s.to_bits(),
        sequential.to_bits(),
        "the data must tell the orders apart"
    );
    let words = ints(2000, u32::MAX, 5);
    for &word in &words {
        let u = (word >> 8) as f32 / 16_777_216.0;
        let got = sample_probs(&w, &mut Scripted::new(&[word])).unwrap();
        assert_eq!(got, draw_rule(&w, u * s), "u = {u}");
        #[cfg(feature = "std")]
        assert_eq!(
            sample_probs_dyn(&w, &mut Scripted::new(&[word])).unwrap(),
            got
        );
    }
    // u at the largest value (target at or just below S).
    let top = 0xffff_ff00u32;
    let u = (top >> 8) as f32 / 16_777_216.0;
    assert_eq!(
        sample_probs(&w, &mut Scripted::new(&[top])).unwrap(),
        draw_rule(&w, u * s)
    );
}

#[test]
fn sampler_draw_follows_the_rule() {
    // Two tied logits, one much lower: weights 1, 1, e^-2 (S in token order).
    let logits = [0.0f32, 0.0, -2.0];
    let w2 = repro_exp(-2.0f32);
    let total = 1.0 + 1.0 + w2;
    let s = SamplerScratch::<f32, 3>::new();
    let smp = Sampler::new();
    // u·S just below 1 → token 0; at 1 → token 1; above 2 → token 2.
    let u_for = |target: f32| ((target / total) as f64 * 16_777_216.0).floor() / 16_777_216.0;
    let draw = |u: f64| {
        smp.sample(
            &logits,
            &mut s.clone(),
            &mut Scripted::new(&[Scripted::word_for(u)]),
        )
    };
    assert_eq!(draw(u_for(0.99)).unwrap(), 0);
    assert_eq!(draw(u_for(1.5)).unwrap(), 1);
    assert_eq!(draw(u_for(2.0 + w2 / 2.0)).unwrap(), 2);
}

#[test]
fn process_equals_the_chained_processors() {
    check_process_equals_chain::<300>();
    check_process_equals_chain::<4096>();
}

fn check_process_equals_chain<const N: usize>() {
    let mut ss = Box::new(SamplerScratch::<f32, N>::new());
    let mut sel = Box::new(SelectScratch::<f32, N>::new());
    let mut rng = Xoshiro128PlusPlus::seed_from_u64(5);
    let cfgs = [
        Sampler::new(),
        Sampler::new()
            .with_temperature(0.7)
            .with_top_k(20)
            .with_top_p(0.8)
            .with_min_p(0.05),
        Sampler::new().with_top_p(0.3),
        Sampler::new().with_temperature(1.7).with_min_p(0.2),
        Sampler::new().with_top_k(1),
        Sampler::new().with_top_k(N - 1).with_top_p(0.999),
        Sampler::new()
            .with_temperature(0.9)
            .with_top_k(N / 100 + 1)
            .with_top_p(0.95),
    ];
    for seed in 0..10u32 {
        let x: Vec<f32> = ints(N, 4000, seed + 3)
            .iter()
            .map(|&v| (v as f32 - 2000.0) / 250.0)
            .collect();
        let x: [f32; N] = x.try_into().unwrap();
        for c in &cfgs {
            let mut a = x;
            c.process(&mut a, &mut ss).unwrap();
            let mut b = x;
            if let Some(t) = c.temperature {
                temperature(&mut b, t).unwrap();
            }
            if let Some(k) = c.top_k {
                top_k(&mut b, k, &mut sel).unwrap();
            }
            if let Some(p) = c.top_p {
                top_p(&mut b, p, &mut sel).unwrap();
            }
            if let Some(m) = c.min_p {
                min_p(&mut b, m).unwrap();
            }
            assert_eq!(
                a.map(f32::to_bits),
                b.map(f32::to_bits),
                "{c:?} seed {seed}"
            );
            // Every sampled token survives the pipeline.
            for _ in 0..50 {
                let t = c.sample(&x, &mut ss, &mut rng).unwrap();
                assert!(a[t].is_finite(), "{c:?}: sampled removed token {t}");
            }
        }
    }
}

// ------------------------------------------------------------------ bad input

#[test]
fn bad_parameters_are_errors() {
    let x = [0.0f32, 1.0, 2.0];
    let mut s = SamplerScratch::<f32, 3>::new();
    let mut rng = Scripted::new(&[0; 4]);
    let bad = [
        Sampler::new().with_temperature(-0.5),
        Sampler::new().with_temperature(f32::NAN),
        Sampler::new().with_temperature(f32::INFINITY),
        Sampler::new().with_top_k(0),
        Sampler::new().with_top_p(-0.01),
        Sampler::new().with_top_p(1.01),
        Sampler::new().with_top_p(f32::NAN),
        Sampler::new().with_min_p(-0.01),
        Sampler::new().with_min_p(1.5),
        Sampler::new().with_min_p(f32::NAN),
    ];
    for c in bad {
        assert!(
            matches!(c.validate(), Err(Error::InvalidParameter { .. })),
            "{c:?}"
        );
        assert_err!(
            c.sample(&x, &mut s, &mut rng),
            Error::InvalidParameter { .. }
        );
        let mut y = x;
        assert!(c.process(&mut y, &mut s).is_err());
        assert_eq!(y, x, "logits untouched on error");
    }
    assert_eq!(rng.at, 0);
    let mut sel = SelectScratch::<f32, 3>::new();
    let mut y = x;
    assert_err!(temperature(&mut y, -1.0), Error::InvalidParameter { .. });
    assert_err!(
        temperature(&mut y, f32::NAN),
        Error::InvalidParameter { .. }
    );
    assert_err!(top_k(&mut y, 0, &mut sel), Error::InvalidParameter { .. });
    assert_err!(top_p(&mut y, 1.5, &mut sel), Error::InvalidParameter { .. });
    assert_err!(
        top_p(&mut y, -0.5, &mut sel),
        Error::InvalidParameter { .. }
    );
    assert_err!(min_p(&mut y, 2.0), Error::InvalidParameter { .. });
    assert_eq!(y, x);
}

#[test]
fn bad_logits_are_errors() {
    let mut s = SamplerScratch::<f32, 3>::new();
    let mut sel = SelectScratch::<f32, 3>::new();
    let mut rng = Xoshiro128PlusPlus::seed_from_u64(1);
    let smp = Sampler::new().with_top_k(2).with_top_p(0.9);
    let nan = [0.0f32, f32::NAN, 1.0];
    let dead = [NEG; 3];
    let pinf = [0.0f32, f32::INFINITY, 1.0];
    assert_err!(smp.sample(&nan, &mut s, &mut rng), Error::NaN { .. });
    assert_eq!(
        smp.sample(&dead, &mut s, &mut rng),
        Err(Error::NoCandidates)
    );
    assert_err!(
        smp.sample(&pinf, &mut s, &mut rng),
        Error::InvalidParameter { .. }
    );
    assert_err!(greedy(&nan), Error::NaN { .. });
    assert_eq!(greedy(&dead), Err(Error::NoCandidates));
    for x in [nan, dead, pinf] {
        let mut y = x;
        assert!(temperature(&mut y, 1.0).is_err());
        assert!(top_k(&mut y, 1, &mut sel).is_err());
        assert!(top_p(&mut y, 0.5, &mut sel).is_err());
        assert!(min_p(&mut y, 0.5).is_err());
        assert!(smp.process(&mut y, &mut s).is_err());
        assert_eq!(
            y.map(f32::to_bits),
            x.map(f32::to_bits),
            "untouched on error"
        );
    }
}

#[test]
fn bad_probabilities_are_errors() {
    let mut sel = SelectScratch::<f32, 3>::new();
    let mut rng = Xoshiro128PlusPlus::seed_from_u64(1);
    for (q, nan) in [
        ([0.5f32, -0.1, 0.6], false),
        ([0.5f32, f32::NAN, 0.6], true),
        ([0.5f32, f32::INFINITY, 0.6], false),
        ([f32::MAX, f32::MAX, 1.0], false), // the sum overflows
        ([0.0f32, 0.0, 0.0], false),
    ] {
        let mut y = q;
        let e = sample_probs(&q, &mut rng).unwrap_err();
        assert!(top_p_probs(&mut y, 0.5, &mut sel).is_err());
        assert!(min_p_probs(&mut y, 0.5).is_err());
        if nan {
            assert!(matches!(e, Error::NaN { .. }));
        } else if q == [0.0; 3] {
            assert_eq!(e, Error::NoCandidates);
        } else {
            assert!(matches!(e, Error::InvalidParameter { .. }));
        }
    }
}

#[cfg(feature = "std")]
#[test]
fn runtime_face_checks_sizes() {
    let mut rng = Xoshiro128PlusPlus::seed_from_u64(1);
    let smp = Sampler::<f32>::new();
    let mut s4 = SamplerScratchDyn::<f32>::new(4).unwrap();
    let mut sel4 = SelectScratchDyn::<f32>::new(4).unwrap();
    let x = vec![0.0f32, 1.0, 2.0];
    assert_err!(
        smp.sample_dyn(&x, &mut s4, &mut rng),
        Error::LengthMismatch { .. }
    );
    assert_err!(smp.sample_dyn(&[], &mut s4, &mut rng), Error::Empty { .. });
    let mut y = x.clone();
    assert_err!(
        smp.process_dyn(&mut y, &mut s4),
        Error::LengthMismatch { .. }
    );
    assert_err!(
        top_k_dyn(&mut y, 1, &mut sel4),
        Error::LengthMismatch { .. }
    );
    assert_err!(
        top_p_dyn(&mut y, 0.5, &mut sel4),
        Error::LengthMismatch { .. }
    );
    assert_err!(
        top_p_probs_dyn(&mut y, 0.5, &mut sel4),
        Error::LengthMismatch { .. }
    );
    assert_err!(top_k_dyn(&mut [], 1, &mut sel4), Error::Empty { .. });
    assert_err!(greedy_dyn::<f32>(&[]), Error::Empty { .. });
    assert_err!(temperature_dyn::<f32>(&mut [], 1.0), Error::Empty { .. });
    assert_err!(min_p_dyn::<f32>(&mut [], 0.5), Error::Empty { .. });
    assert_err!(
        sample_probs_dyn::<f32, _>(&[], &mut rng),
        Error::Empty { .. }
    );
    assert_eq!(y, x);
    // The right size works.
    let mut s3 = SamplerScratchDyn::<f32>::new(3).unwrap();
    assert!(smp.sample_dyn(&x, &mut s3, &mut rng).unwrap() < 3);
}

#[test]
fn random_garbage_never_panics_or_escapes_the_vocabulary() {
    // Mixed finite / −∞ / extreme logits and random parameters, including invalid ones.
    const N: usize = 40;
    let mut s = SamplerScratch::<f32, N>::new();
    let mut rng = Xoshiro128PlusPlus::seed_from_u64(99);
    let mut drawn = 0;
    let vals = [
        NEG,
        -1e30,
        -100.0,
        -3.0,
        0.0,
        0.0,
        1.0,
        2.5,
        80.0,
        1e30,
        f32::MAX,
    ];
    for seed in 0..3000u32 {
        let r = ints(N + 6, 1_000_000, seed + 1);
        let x: [f32; N] = std::array::from_fn(|i| vals[r[i] as usize % vals.len()]);
        let pick = |j: usize, opts: &[f32]| opts[r[N + j] as usize % opts.len()];
        let smp = Sampler {
            temperature: [None, Some(pick(0, &[0.0, 1e-30, 0.3, 1.0, 7.0, -1.0]))]
                [r[N + 4] as usize % 2],
            top_k: [None, Some(r[N + 1] as usize % 50)][r[N + 5] as usize % 2],
            top_p: Some(pick(2, &[0.0, 0.1, 0.9, 1.0, 1.1])),
            min_p: Some(pick(3, &[0.0, 0.05, 0.5, 1.0, -0.2])),
        };
        // Errors are fine here (invalid parameters, +∞ or all −∞ logits).
        if let Ok(t) = smp.sample(&x, &mut s, &mut rng) {
            assert!(t < N);
            assert!(x[t] > NEG, "drew a −∞ token");
            let mut y = x;
            smp.process(&mut y, &mut s).unwrap();
            assert!(y[t] > NEG, "drew a filtered token");
            drawn += 1;
        }
    }
    assert!(drawn > 300, "only {drawn} successful draws");
}
