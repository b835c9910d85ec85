//! Sampling at LLM vocabulary sizes: constml's O(V) selections against a
//! sort-everything baseline written here (softmax, `sort_unstable_by` of all V
//! token ids by probability, cumulative sum, draw).
//!
//! Inputs: V = 32 000 and 50 257, logits drawn as 3·N(0, 1) ("normal") and as
//! 6·N(0, 1) ("peaked": the mass sits on a few dozen tokens). Cases: top-p 0.9,
//! top-k 50, and the full sampler (T 0.8, top-k 40, top-p 0.95, min-p 0.05).
//! After the criterion groups, a summary table prints µs per call (median of
//! repeated batches) and the speedup over the baseline.
//!
//! `beam_search`: four beams, 16 new tokens, no EOS reached, over a model that
//! copies precomputed logits (its own cost is one `memcpy` of V floats per
//! beam and step), Scalar against Simd, at V = 512 (firmware) and 50 257.
//!
//! Run: `cargo bench --bench decode -- --warm-up-time 1 --measurement-time 2`

use std::hint::black_box;
use std::time::Instant;

use constml::decode::{
    BeamConfig, BeamModel, BeamScratchDyn, HypothesesDyn, Sampler, SamplerScratch,
    beam_search_dyn_with,
};
use constml::{Backend, Scalar, Simd};
use criterion::{BenchmarkId, Criterion};
use rand_core::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro128PlusPlus;

/// Standard normal samples by Box–Muller.
fn normals(n: usize, scale: f32, seed: u64) -> Vec<f32> {
    let mut rng = Xoshiro128PlusPlus::seed_from_u64(seed);
    let mut u = || ((rng.next_u32() >> 8) as f64 + 0.5) / 16_777_216.0;
    (0..n)
        .map(|_| {
            let (a, b) = (u(), u());
            let z = (-2.0 * a.ln()).sqrt() * (2.0 * std::f64::consts::PI * b).cos();
            (z * scale as f64) as f32
        })
        .collect()
}

/// The sort-everything baseline: the same pipeline as `Sampler`, done the classic
/// way. Buffers are preallocated so that the loop measures compute, not malloc.
struct SortSampler {
    t: f32,
    k: Option<usize>,
    p: Option<f32>,
    min_p: Option<f32>,
    probs: Vec<f32>,
    idx: Vec<u32>,
}

impl SortSampler {
    fn new(v: usize, t: f32, k: Option<usize>, p: Option<f32>, min_p: Option<f32>) -> Self {
        Self {
            t,
            k,
            p,
            min_p,
            probs: vec![0.0; v],
            idx: vec![0; v],
        }
    }

    fn sample(&mut self, logits: &[f32], rng: &mut impl Rng) -> usize {
        let m = logits.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b)) / self.t;
        for (p, &x) in self.probs.iter_mut().zip(logits) {
            *p = (x / self.t - m).exp();
        }
        for (i, v) in self.idx.iter_mut().enumerate() {
            *v = i as u32;
        }
        let probs = &self.probs;
        self.idx.sort_unstable_by(|&a, &b| {
            probs[b as usize]
                .total_cmp(&probs[a as usize])
                .then(a.cmp(&b))
        });
        let mut n = self.k.unwrap_or(logits.len()).min(logits.len());
        let total: f32 = self.idx[..n].iter().map(|&i| probs[i as usize]).sum();
        if let Some(p) = self.p {
            let mut acc = 0.0;
            for (j, &i) in self.idx[..n].iter().enumerate() {
                acc += probs[i as usize];
                if acc >= p * total {
                    n = j + 1;
                    break;
                }
            }
        }
        if let Some(mp) = self.min_p {
            let top = probs[self.idx[0] as usize];
            while n > 1 && probs[self.idx[n - 1] as usize] < mp * top {
                n -= 1;
            }
        }
        let mass: f32 = self.idx[..n].iter().map(|&i| probs[i as usize]).sum();
        let target = ((rng.next_u32() >> 8) as f32 / 16_777_216.0) * mass;
        let mut acc = 0.0;
        for &i in &self.idx[..n] {
            acc += probs[i as usize];
            if acc > target {
                return i as usize;
            }
        }
        self.idx[n - 1] as usize
    }
}

struct Case {
    name: &'static str,
    sampler: Sampler<f32>,
}

fn cases() -> [Case; 3] {
    [
        Case {
            name: "top_p_0.9",
            sampler: Sampler::new().with_top_p(0.9),
        },
        Case {
            name: "top_k_50",
            sampler: Sampler::new().with_top_k(50),
        },
        Case {
            name: "full",
            sampler: Sampler::new()
                .with_temperature(0.8)
                .with_top_k(40)
                .with_top_p(0.95)
                .with_min_p(0.05),
        },
    ]
}

fn baseline_for(s: &Sampler<f32>, v: usize) -> SortSampler {
    SortSampler::new(v, s.temperature.unwrap_or(1.0), s.top_k, s.top_p, s.min_p)
}

fn inputs(v: usize) -> [(&'static str, Vec<f32>); 2] {
    [
        ("normal", normals(v, 3.0, 1)),
        ("peaked", normals(v, 6.0, 2)),
    ]
}

fn bench_vocab<const V: usize>(c: &mut Criterion) {
    let mut scratch = Box::new(SamplerScratch::<f32, V>::new());
    for (dist, x) in inputs(V) {
        let logits: Box<[f32; V]> = x.clone().into_boxed_slice().try_into().unwrap();
        for case in cases() {
            let mut g = c.benchmark_group(format!("decode/{}/{}/V={}", case.name, dist, V));
            let mut rng = Xoshiro128PlusPlus::seed_from_u64(9);
            g.bench_function(BenchmarkId::from_parameter("constml"), |b| {
                b.iter(|| {
                    case.sampler
                        .sample(black_box(&*logits), &mut scratch, &mut rng)
                        .unwrap()
                })
            });
            let mut base = baseline_for(&case.sampler, V);
            g.bench_function(BenchmarkId::from_parameter("sort_baseline"), |b| {
                b.iter(|| base.sample(black_box(&x), &mut rng))
            });
            g.finish();
        }
    }
}

/// Median µs per call over `reps` batches of `iters` calls.
fn time_us(mut f: impl FnMut(), iters: usize, reps: usize) -> f64 {
    let mut t: Vec<f64> = (0..reps)
        .map(|_| {
            let s = Instant::now();
            for _ in 0..iters {
                f();
            }
            s.elapsed().as_secs_f64() * 1e6 / iters as f64
        })
        .collect();
    t.sort_by(f64::total_cmp);
    t[reps / 2]
}

fn summary_vocab<const V: usize>() {
    let mut scratch = Box::new(SamplerScratch::<f32, V>::new());
    for (dist, x) in inputs(V) {
        let logits: Box<[f32; V]> = x.clone().into_boxed_slice().try_into().unwrap();
        for case in cases() {
            let mut rng = Xoshiro128PlusPlus::seed_from_u64(9);
            let ours = time_us(
                || {
                    black_box(
                        case.sampler
                            .sample(black_box(&*logits), &mut scratch, &mut rng)
                            .unwrap(),
                    );
                },
                40,
                9,
            );
            let mut base = baseline_for(&case.sampler, V);
            let sort = time_us(
                || {
                    black_box(base.sample(black_box(&x), &mut rng));
                },
                10,
                9,
            );
            println!(
                "{:<10} {:<7} V={:<6} constml {:>8.1} µs   sort {:>8.1} µs   speedup {:>5.1}x",
                case.name,
                dist,
                V,
                ours,
                sort,
                sort / ours
            );
        }
    }
}

/// A stand-in model: logits for (beam, position) come from a table of 8 rows.
struct TableModel {
    rows: Vec<Vec<f32>>,
}

impl BeamModel<f32> for TableModel {
    fn step(
        &mut self,
        beam: usize,
        token: usize,
        pos: usize,
        logits: &mut [f32],
    ) -> constml::Result<()> {
        let row = &self.rows[(beam * 3 + token + pos) % self.rows.len()];
        logits.copy_from_slice(row);
        Ok(())
    }
    fn reorder(&mut self, _parents: &[usize]) -> constml::Result<()> {
        Ok(())
    }
}

fn beam_one<B: Backend>(
    c: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    v: usize,
) {
    // EOS = token 0, whose logit is −∞ in every row: never produced, so every
    // hypothesis runs the full 16 steps.
    let rows = (0..8)
        .map(|i| {
            let mut r = normals(v, 3.0, 40 + i);
            r[0] = f32::NEG_INFINITY;
            r
        })
        .collect();
    let mut model = TableModel { rows };
    let eos = [0];
    let cfg = BeamConfig::<f32>::new(eos);
    let mut scratch = BeamScratchDyn::<f32>::new(v, 4, 16).unwrap();
    let mut out = HypothesesDyn::<f32>::new(4, 16).unwrap();
    c.bench_function(BenchmarkId::new(format!("V={v}"), B::NAME), |b| {
        b.iter(|| {
            beam_search_dyn_with::<B, f32>(
                &mut model,
                black_box(&[1, 2, 3]),
                &cfg,
                &mut scratch,
                &mut out,
            )
            .unwrap()
        })
    });
}

fn beam(c: &mut Criterion) {
    let mut g = c.benchmark_group("beam_search_4x16");
    for v in [512usize, 50_257] {
        beam_one::<Scalar>(&mut g, v);
        beam_one::<Simd>(&mut g, v);
    }
    g.finish();
}

fn benches(c: &mut Criterion) {
    beam(c);
    bench_vocab::<32_000>(c);
    bench_vocab::<50_257>(c);
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    benches(&mut c);
    c.final_summary();
    println!("\nsummary (median of 9 batches):");
    summary_vocab::<32_000>();
    summary_vocab::<50_257>();
}
