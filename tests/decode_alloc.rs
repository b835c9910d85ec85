//! The no_std decoding paths allocate nothing: a counting global allocator
//! records every allocation made by this thread while they run.

#[path = "common/counting.rs"]
mod counting;

use constml::decode::{
    BeamConfig, BeamModel, BeamScratch, EarlyStopping, Hypotheses, Sampler, SamplerScratch,
    SelectScratch, beam_search, beam_search_with, greedy, greedy_with, min_p, min_p_probs,
    repro_exp, sample_probs, temperature, top_k, top_p, top_p_probs,
};
use constml::{Result, Scalar};
use counting::allocations_during;
use rand_core::SeedableRng;
use rand_xoshiro::Xoshiro128PlusPlus;

#[global_allocator]
static ALLOC: counting::Counting = counting::Counting;

const V: usize = 64;
const BIG: usize = 4096;

/// A stateful bigram-plus-skip model with fixed-size state: no heap anywhere.
struct Fixed {
    state: [(usize, usize); 3],
}

impl BeamModel<f32> for Fixed {
    fn step(&mut self, beam: usize, token: usize, _pos: usize, logits: &mut [f32]) -> Result<()> {
        let s = &mut self.state[beam];
        *s = (s.1, token);
        for (j, l) in logits.iter_mut().enumerate() {
            let h = (s.0 * 31 + s.1 * 17 + j * 7) % 23;
            *l = h as f32 * 0.25 - 2.0;
        }
        Ok(())
    }
    fn reorder(&mut self, parents: &[usize]) -> Result<()> {
        let old = self.state;
        for (i, &p) in parents.iter().enumerate() {
            self.state[i] = old[p];
        }
        Ok(())
    }
}

#[test]
fn decoding_allocates_nothing() {
    // The counter sees allocations made on this thread.
    assert!(allocations_during(|| drop(std::hint::black_box(vec![1u8; 10]))) >= 1);

    // Everything is built before counting starts.
    let logits: [f32; V] = core::array::from_fn(|i| ((i * 37) % 29) as f32 * 0.3 - 4.0);
    let probs: [f32; V] = core::array::from_fn(|i| ((i * 13) % 7) as f32 * 0.125);
    let mut sel = SelectScratch::<f32, V>::new();
    let mut smp_scratch = SamplerScratch::<f32, V>::new();
    let mut rng = Xoshiro128PlusPlus::seed_from_u64(1);
    let sampler = Sampler::new()
        .with_temperature(0.8)
        .with_top_k(20)
        .with_top_p(0.9)
        .with_min_p(0.05);
    let mut model = Fixed { state: [(0, 0); 3] };
    let mut beam_scratch = BeamScratch::<f32, V, 3, 6>::new();
    let mut hyps = Hypotheses::<f32, 3, 6>::new();
    let eos = [5usize];
    let cfg = BeamConfig::new(eos)
        .with_num_return(3)
        .with_early_stopping(EarlyStopping::Never)
        .with_length_penalty(1.5);
    // A large vocabulary takes the other code paths: top-k's sampled pre-filter,
    // top-p's sparse gathering after top-k.
    let big: Box<[f32; BIG]> =
        Box::new(core::array::from_fn(|i| ((i * 7919) % 4099) as f32 * 0.002));
    let mut big_x = big.clone();
    let mut big_sel = Box::new(SelectScratch::<f32, BIG>::new());
    let mut big_smp = Box::new(SamplerScratch::<f32, BIG>::new());
    let big_sampler = Sampler::new().with_top_k(50).with_top_p(0.9);
    let mut sink = 0usize;

    let n = allocations_during(|| {
        for _ in 0..10 {
            sink += greedy(&logits).unwrap();
            let mut x = logits;
            temperature(&mut x, 0.7).unwrap();
            top_k(&mut x, 10, &mut sel).unwrap();
            top_p(&mut x, 0.8, &mut sel).unwrap();
            min_p(&mut x, 0.1).unwrap();
            let mut q = probs;
            top_p_probs(&mut q, 0.7, &mut sel).unwrap();
            min_p_probs(&mut q, 0.3).unwrap();
            sink += sample_probs(&q, &mut rng).unwrap();
            sink += sampler.sample(&logits, &mut smp_scratch, &mut rng).unwrap();
            let mut y = logits;
            sampler.process(&mut y, &mut smp_scratch).unwrap();
            sink += repro_exp(-1.5f32) as usize;
            sink += beam_search(&mut model, &[1, 2], &cfg, &mut beam_scratch, &mut hyps).unwrap();
            sink += greedy_with::<Scalar, _, V>(&logits).unwrap();
            sink += beam_search_with::<Scalar, _, V, 3, 6>(
                &mut model,
                &[1, 2],
                &cfg,
                &mut beam_scratch,
                &mut hyps,
            )
            .unwrap();
            sink += big_sampler.sample(&big, &mut big_smp, &mut rng).unwrap();
            *big_x = *big;
            top_k(&mut big_x, 40, &mut big_sel).unwrap();
            top_p(&mut big_x, 0.5, &mut big_sel).unwrap();
            // Error paths allocate nothing either.
            let mut bad = logits;
            bad[3] = f32::NAN;
            assert!(sampler.sample(&bad, &mut smp_scratch, &mut rng).is_err());
            assert!(top_k(&mut bad, 0, &mut sel).is_err());
        }
    });
    assert_eq!(n, 0, "{n} allocations in the no_std decoding paths");
    assert!(sink > 0);
    assert_eq!(hyps.len(), 3);
}
