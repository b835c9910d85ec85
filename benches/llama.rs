//! Llama decode speed on llama2.c's 15M configuration (dim 288, hidden 768,
//! 6 layers, 6 heads, vocabulary 32 000, context 256), random weights,
//! single thread, Scalar vs Simd in one run.
//!
//! ```text
//! cargo bench --bench llama
//! ```
//!
//! * `llama15m/decode/{scalar,simd}`: one decode step (a token at position
//!   128 of a cache holding 128 positions: the cache is rolled back after
//!   each step, so every sample does the same work).
//! * `llama15m/read_weights`: a plain pass over the same weight bytes (sum of
//!   every `f32`, 16 independent accumulators): the memory-bound floor a
//!   decode step that streams each weight once can approach.
//! * `llama15m/decode_q8/{scalar,simd}`: the same step with the weights in
//!   Q8_0 (group size 32, quantized by `llama2c_q8_export`, as llama2.c's
//!   `runq.c` runs them).
//!
//! After criterion, the bench prints tokens per second for both backends and
//! both weight formats, Q8_0 over f32, and the fraction of the plain read's
//! bandwidth a Simd step reaches (medians of batches, same run).

#[path = "common/data.rs"]
mod data;

use std::hint::black_box;

use constml::models::quant::Q8Scratch;
use constml::models::{
    Llama, Llama2cQ8Checkpoint, LlamaConfig, LlamaQ8, LlamaState, LlamaWeights, LogitRows,
    llama_q8_scratch_len, llama2c_q8_export,
};
use constml::{Backend, Scalar, Simd};
use criterion::{BenchmarkId, Criterion};

const CFG: LlamaConfig = LlamaConfig {
    dim: 288,
    hidden_dim: 768,
    n_layers: 6,
    n_heads: 6,
    n_kv_heads: 6,
    vocab_size: 32_000,
    seq_len: 256,
    shared_classifier: true,
};
const START: usize = 128;

/// Random weights: N(0, 1)/√fan-in-ish, RMSNorm weights near 1.
fn weights() -> Vec<f32> {
    let mut w = data::fill(CFG.weights_len(), 42);
    let scale = 1.0 / (CFG.dim as f32).sqrt();
    w.iter_mut().for_each(|v| *v *= scale * 1.7);
    w
}

/// A state holding `START` positions of a random prompt.
fn warm<'s, B: Backend>(m: &Llama<'_, f32, B>, arena: &'s mut [f32]) -> LlamaState<'s, f32> {
    let mut st = LlamaState::new(&CFG, START, arena).unwrap();
    let prompt: Vec<usize> = (0..START).map(|i| (i * 7919) % CFG.vocab_size).collect();
    m.forward(&prompt, &mut st, LogitRows::Last).unwrap();
    st
}

fn sum16(w: &[f32]) -> f32 {
    let mut acc = [0.0f32; 16];
    let (chunks, rest) = w.as_chunks::<16>();
    for c in chunks {
        for (a, &v) in acc.iter_mut().zip(c) {
            *a += v;
        }
    }
    acc.iter().sum::<f32>() + rest.iter().sum::<f32>()
}

fn step<B: Backend>(m: &Llama<'_, f32, B>, st: &mut LlamaState<'_, f32>) {
    m.forward(black_box(&[17]), st, LogitRows::Last).unwrap();
    st.truncate(START).unwrap();
}

/// Q8_0 group size of the bench (llama2.c's export backs 64 off to 32 for
/// dim 288).
const GS: usize = 32;

/// The Q8_0 model's state after the same prompt, and one decode step.
struct Q8Run<'a, 's, B> {
    m: LlamaQ8<'a, B>,
    st: LlamaState<'s, f32>,
    q: Vec<i8>,
    s: Vec<f32>,
}

impl<'a, 's, B: Backend> Q8Run<'a, 's, B> {
    fn new(m: LlamaQ8<'a, B>, arena: &'s mut [f32]) -> Self {
        let (nq, ns) = llama_q8_scratch_len(&CFG, GS);
        let mut r = Q8Run {
            m,
            st: LlamaState::new(&CFG, START, arena).unwrap(),
            q: vec![0; nq],
            s: vec![0.0; ns],
        };
        let prompt: Vec<usize> = (0..START).map(|i| (i * 7919) % CFG.vocab_size).collect();
        let mut sc = Q8Scratch {
            q: &mut r.q,
            s: &mut r.s,
        };
        r.m.forward(&prompt, &mut r.st, &mut sc, LogitRows::Last)
            .unwrap();
        r
    }

    fn step(&mut self) {
        let mut sc = Q8Scratch {
            q: &mut self.q,
            s: &mut self.s,
        };
        self.m
            .forward(black_box(&[17]), &mut self.st, &mut sc, LogitRows::Last)
            .unwrap();
        self.st.truncate(START).unwrap();
    }
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    let w = weights();
    let lw = LlamaWeights::from_flat(&CFG, &w).unwrap();
    let mut g = c.benchmark_group("llama15m");
    g.sample_size(30);
    let simd = Llama::<f32, Simd>::new(CFG, lw).unwrap();
    let scalar = Llama::<f32, Scalar>::new(CFG, lw).unwrap();
    let mut a1 = vec![0.0f32; CFG.state_len(START)];
    let mut a2 = vec![0.0f32; CFG.state_len(START)];
    let mut s1 = warm(&simd, &mut a1);
    let mut s2 = warm(&scalar, &mut a2);
    g.bench_function(BenchmarkId::new("decode", "simd"), |b| {
        b.iter(|| step(&simd, &mut s1))
    });
    g.bench_function(BenchmarkId::new("decode", "scalar"), |b| {
        b.iter(|| step(&scalar, &mut s2))
    });
    g.bench_function("read_weights", |b| b.iter(|| sum16(black_box(&w))));
    let qbytes = llama2c_q8_export(&CFG, &lw, GS).unwrap();
    let qckpt = Llama2cQ8Checkpoint::from_vec(qbytes).unwrap();
    let (mut a3, mut a4) = (
        vec![0.0f32; CFG.state_len(START)],
        vec![0.0f32; CFG.state_len(START)],
    );
    let mut q_simd = Q8Run::new(
        LlamaQ8::<Simd>::new(CFG, qckpt.weights().unwrap()).unwrap(),
        &mut a3,
    );
    let mut q_scalar = Q8Run::new(
        LlamaQ8::<Scalar>::new(CFG, qckpt.weights().unwrap()).unwrap(),
        &mut a4,
    );
    g.bench_function(BenchmarkId::new("decode_q8", "simd"), |b| {
        b.iter(|| q_simd.step())
    });
    g.bench_function(BenchmarkId::new("decode_q8", "scalar"), |b| {
        b.iter(|| q_scalar.step())
    });
    g.finish();
    let t_simd = data::time(|| step(&simd, &mut s1));
    let t_scalar = data::time(|| step(&scalar, &mut s2));
    let t_q_simd = data::time(|| q_simd.step());
    let t_q_scalar = data::time(|| q_scalar.step());
    let t_read = data::time(|| {
        black_box(sum16(black_box(&w)));
    });
    let bytes = (CFG.weights_len() * 4) as f64;
    println!(
        "\nllama2.c 15M config, decode at position {START}, weights {:.1} MB per step",
        bytes / 1e6
    );
    println!(
        "Simd   {:>8.1} tok/s  ({:.2} ms/step, {:.1} GB/s of weights)",
        1.0 / t_simd,
        t_simd * 1e3,
        bytes / t_simd / 1e9
    );
    println!(
        "Scalar {:>8.1} tok/s  ({:.2} ms/step)   Simd/Scalar {:.2}x",
        1.0 / t_scalar,
        t_scalar * 1e3,
        t_scalar / t_simd
    );
    println!(
        "Q8_0 Simd   {:>8.1} tok/s  ({:.2} ms/step, {:.1} MB of weights)   Q8_0/f32 {:.2}x",
        1.0 / t_q_simd,
        t_q_simd * 1e3,
        qckpt.bytes().len() as f64 / 1e6,
        t_simd / t_q_simd
    );
    println!(
        "Q8_0 Scalar {:>8.1} tok/s  ({:.2} ms/step)   Simd/Scalar {:.2}x",
        1.0 / t_q_scalar,
        t_q_scalar * 1e3,
        t_q_scalar / t_q_simd
    );
    println!(
        "plain read of the weights: {:.2} ms ({:.1} GB/s); a Simd step reaches {:.0} % of it",
        t_read * 1e3,
        bytes / t_read / 1e9,
        100.0 * t_read / t_simd
    );
    c.final_summary();
}
