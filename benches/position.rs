//! Position-encoding benchmarks.
//!
//! ```text
//! cargo bench --bench position
//! ```
//!
//! * `rope_step`: RoPE on q and k of one decode step, 12 heads × 64 each
//!   (GPT-2-small / Llama-7B-like head width), half-split and interleaved,
//!   Scalar vs Simd, coefficients from a table vs computed on the fly.
//! * `rope_prefill`: the same for a 256-token prefill (q and k, 256 × 768
//!   each).
//! * `bias_step`: one attention decode step, 12 heads × 64 over a cache of
//!   1024 positions (Simd), without a bias, with ALiBi and T5 through the
//!   [`ScoreBias`] hook, and with the bias filled once into a per-head
//!   matrix (as Hugging Face T5 shares it across layers).
//!
//! After the criterion runs, a summary measures each case once more (median of
//! 7 batches) and prints µs and the ratios.

#[path = "common/data.rs"]
mod data;

use data::{fill, time};

use std::hint::black_box;

use constml::attention::*;
use constml::position::*;
use constml::{Backend, MatMut, MatRef, Scalar, Simd};
use criterion::{BenchmarkId, Criterion};

const HEADS: usize = 12;
const D: usize = 64;
const PREFILL: usize = 256;
const CAP: usize = 1024;

/// q and k of `n` tokens at position `start`, rotated by `rot`.
fn rope_qk(rot: &dyn Rotation<f32>, start: usize, q: &mut [f32], k: &mut [f32], n: usize) {
    rotate_heads(rot, start, MatMut::new(q, n, HEADS * D).unwrap(), HEADS).unwrap();
    rotate_heads(rot, start, MatMut::new(k, n, HEADS * D).unwrap(), HEADS).unwrap();
}

/// The four RoPE variants of a layout: (name, on the fly, table) per backend.
struct Ropes<B: Backend> {
    fly: Rope<f32, D, B>,
    cos: Box<[[f32; D]; 4096]>,
    sin: Box<[[f32; D]; 4096]>,
}

impl<B: Backend> Ropes<B> {
    fn new(layout: RopeLayout) -> Self {
        let fly = Rope::new(RopeConfig::new(layout)).unwrap();
        let (mut cos, mut sin) = (Box::new([[0.0; D]; 4096]), Box::new([[0.0; D]; 4096]));
        fly.fill_table(&mut cos, &mut sin);
        Self { fly, cos, sin }
    }
    fn table(&self) -> RopeTable<'_, f32, D, 4096, B> {
        RopeTable::from_filled(self.fly, &self.cos, &self.sin, BeyondTable::Error)
    }
}

fn rope_cases(c: &mut Criterion, group: &str, n: usize) {
    let mut g = c.benchmark_group(group);
    let (mut q, mut k) = (fill(n * HEADS * D, 1), fill(n * HEADS * D, 2));
    for layout in [RopeLayout::HalfSplit, RopeLayout::Interleaved] {
        let l = format!("{layout:?}");
        let (rs, rv) = (Ropes::<Scalar>::new(layout), Ropes::<Simd>::new(layout));
        let (ts, tv) = (rs.table(), rv.table());
        let cases: [(&str, &dyn Rotation<f32>); 4] = [
            ("scalar/fly", &rs.fly),
            ("simd/fly", &rv.fly),
            ("scalar/table", &ts),
            ("simd/table", &tv),
        ];
        for (name, rot) in cases {
            g.bench_function(BenchmarkId::new(&l, name), |b| {
                b.iter(|| rope_qk(rot, black_box(1000), &mut q, &mut k, n))
            });
        }
    }
    g.finish();
}

/// One attention decode step over a full runtime cache with optional biases.
struct Step {
    cache: KvCacheDyn<f32>,
    q: Vec<f32>,
    out: Vec<f32>,
    scratch: Vec<f32>,
    slopes: [f32; HEADS],
    t5_table: Vec<f32>,
    filled: Vec<f32>,
}

impl Step {
    fn new() -> Self {
        let mut cache = KvCacheDyn::new(HEADS, D, CAP, CachePolicy::Bounded).unwrap();
        for p in 0..CAP {
            cache
                .append_token(
                    &fill(HEADS * D, p as u64 + 1),
                    &fill(HEADS * D, p as u64 + 7919),
                )
                .unwrap();
        }
        Self {
            cache,
            q: fill(HEADS * D, 99),
            out: vec![0.0; HEADS * D],
            scratch: vec![0.0; gqa_scratch_len(1, CAP, HEADS, HEADS)],
            slopes: alibi_slopes(),
            t5_table: fill(32 * HEADS, 5),
            filled: vec![0.0; HEADS * CAP],
        }
    }

    fn run(&mut self, o: &AttnOptions<'_, f32>) {
        attend_cache_views_with::<Simd, f32, _>(
            MatRef::new(black_box(&self.q), 1, HEADS * D).unwrap(),
            CAP - 1,
            HEADS,
            &self.cache,
            None,
            MatMut::new(&mut self.out, 1, HEADS * D).unwrap(),
            &mut self.scratch,
            WeightsOut::None,
            o,
        )
        .unwrap();
        black_box(&self.out);
    }

    /// Runs case `which`: 0 no bias, 1 ALiBi hook, 2 T5 hook, 3 T5 filled per
    /// step then passed as a per-head bias.
    fn case(&mut self, which: usize) {
        let slopes = self.slopes;
        let table = std::mem::take(&mut self.t5_table);
        let alibi = Alibi::new(&slopes, AlibiForm::Causal).unwrap();
        let t5 = T5RelativeBias::new(
            T5Buckets::new(false, 32, 128).unwrap(),
            MatRef::new(&table, 32, HEADS).unwrap(),
        )
        .unwrap();
        let base = AttnOptions::new().causal();
        match which {
            0 => self.run(&base),
            1 => self.run(&base.score_bias(&alibi)),
            2 => self.run(&base.scale(1.0).score_bias(&t5)),
            _ => {
                let mut filled = std::mem::take(&mut self.filled);
                t5.fill_views(CAP - 1, 0, MatMut::new(&mut filled, HEADS, CAP).unwrap())
                    .unwrap();
                let bias = MatRef::new(&filled, HEADS, CAP).unwrap();
                self.run(&base.scale(1.0).bias_per_head(bias));
                self.filled = filled;
            }
        }
        self.t5_table = table;
    }
}

const BIAS_CASES: [&str; 4] = ["none", "alibi hook", "t5 hook", "t5 filled"];

fn bias_step(c: &mut Criterion) {
    let mut g = c.benchmark_group("bias_step");
    let mut s = Step::new();
    for (i, name) in BIAS_CASES.iter().enumerate() {
        g.bench_function(*name, |b| b.iter(|| s.case(i)));
    }
    g.finish();
}

fn summary() {
    println!("\nsummary (median of 7 batches)");
    println!(
        "{:<28} {:>12} {:>12} {:>12} {:>12} {:>9} {:>9}",
        "RoPE q+k, 12x64", "scalar fly", "simd fly", "scalar tab", "simd tab", "fly s/v", "tab s/v"
    );
    for (label, n) in [("decode step", 1usize), ("prefill 256", PREFILL)] {
        let (mut q, mut k) = (fill(n * HEADS * D, 1), fill(n * HEADS * D, 2));
        for layout in [RopeLayout::HalfSplit, RopeLayout::Interleaved] {
            let (rs, rv) = (Ropes::<Scalar>::new(layout), Ropes::<Simd>::new(layout));
            let (ts_, tv_) = (rs.table(), rv.table());
            let mut t =
                |rot: &dyn Rotation<f32>| time(|| rope_qk(rot, black_box(1000), &mut q, &mut k, n));
            let (a, b, c, d) = (t(&rs.fly), t(&rv.fly), t(&ts_), t(&tv_));
            println!(
                "{:<28} {:>10.2}µs {:>10.2}µs {:>10.2}µs {:>10.2}µs {:>8.1}x {:>8.1}x",
                format!("{label}, {layout:?}"),
                a * 1e6,
                b * 1e6,
                c * 1e6,
                d * 1e6,
                a / b,
                c / d
            );
        }
    }
    println!("\nattention decode step, 12x64 over 1024 keys (Simd)");
    let mut s = Step::new();
    let base = time(|| s.case(0));
    for (i, name) in BIAS_CASES.iter().enumerate() {
        let t = time(|| s.case(i));
        println!(
            "{:<28} {:>10.2}µs {:>8.2}x of no bias",
            name,
            t * 1e6,
            t / base
        );
    }
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    rope_cases(&mut c, "rope_step", 1);
    rope_cases(&mut c, "rope_prefill", PREFILL);
    bias_step(&mut c);
    c.final_summary();
    if !std::env::args().any(|a| a == "--test" || a == "--list") {
        summary();
    }
}
