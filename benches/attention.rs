//! Attention benchmarks: one decode step of attention over a full KV cache,
//! Scalar against Simd, and MHA vs GQA vs MQA cache sizes and times.
//!
//! ```text
//! cargo bench --bench attention
//! ```
//!
//! * `decode_gpt2`: GPT-2-small shape, 12 heads × 64, one query over a cache of
//!   1024 positions (runtime-capacity `KvCacheDyn`, 6.3 MB of f32 keys+values).
//! * `decode_firmware`: 4 heads × 16, cache of 128 positions (const `KvCache`,
//!   64 KiB), as an MCU would run it.
//! * `decode_kv_heads`: 12 query heads × 64 over 1024 positions with 12 (MHA),
//!   4 (GQA) and 1 (MQA) kv heads, Simd.
//!
//! Throughput is the bytes of cache read per step (keys and values), so
//! criterion's `GB/s` is cache bandwidth. After the criterion runs, a short
//! summary measures each pair once more and prints µs, GB/s and the
//! Simd/Scalar speedup (target with `-C target-cpu=native`: ≥ 6×).

#[path = "common/data.rs"]
mod data;

use data::{fill, time};

use std::hint::black_box;

use constml::attention::*;
use constml::{Backend, MatMut, MatRef, Scalar, Simd};
use criterion::{BenchmarkId, Criterion, Throughput};

/// A full runtime-capacity cache and one query.
struct Setup {
    heads: usize,
    d: usize,
    cache: KvCacheDyn<f32>,
    q: Vec<f32>,
    out: Vec<f32>,
    scratch: Vec<f32>,
}

impl Setup {
    fn new(heads: usize, kv_heads: usize, d: usize, cap: usize) -> Self {
        let mut cache = KvCacheDyn::new(kv_heads, d, cap, CachePolicy::Bounded).unwrap();
        for p in 0..cap {
            let k = fill(kv_heads * d, p as u64 + 1);
            let v = fill(kv_heads * d, p as u64 + 7919);
            cache.append_token(&k, &v).unwrap();
        }
        Self {
            heads,
            d,
            cache,
            q: fill(heads * d, 99),
            out: vec![0.0; heads * d],
            scratch: vec![0.0; gqa_scratch_len(1, cap, heads, kv_heads)],
        }
    }
}

/// One decode step of attention over a full cache, on either backend.
trait DecodeStep {
    /// Bytes of cache read by one step (every held key and value).
    fn bytes(&self) -> usize;
    fn step<B: Backend>(&mut self);
}

impl DecodeStep for Setup {
    fn bytes(&self) -> usize {
        self.cache.bytes()
    }

    fn step<B: Backend>(&mut self) {
        let pos = self.cache.next_position() - 1;
        attend_cache_views_with::<B, f32, _>(
            MatRef::new(black_box(&self.q), 1, self.heads * self.d).unwrap(),
            pos,
            self.heads,
            &self.cache,
            None,
            MatMut::new(&mut self.out, 1, self.heads * self.d).unwrap(),
            &mut self.scratch,
            WeightsOut::None,
            &AttnOptions::new(),
        )
        .unwrap();
        black_box(&self.out);
    }
}

/// The firmware shape on the const-generic face.
struct Firmware {
    cache: Box<KvCache<f32, 4, 16, 128>>,
    q: [[[f32; 16]; 4]; 1],
    ctx: [[[f32; 16]; 4]; 1],
    scores: [[f32; 128]; 1],
}

impl Firmware {
    fn new() -> Self {
        let mut cache = Box::new(KvCache::<f32, 4, 16, 128>::new());
        for p in 0..128 {
            let k = fill(64, p + 1);
            let v = fill(64, p + 500);
            cache.append_token(&k, &v).unwrap();
        }
        let q = fill(64, 3);
        Self {
            cache,
            q: [core::array::from_fn(|h| {
                core::array::from_fn(|e| q[h * 16 + e])
            })],
            ctx: [[[0.0; 16]; 4]; 1],
            scores: [[0.0; 128]; 1],
        }
    }
}

impl DecodeStep for Firmware {
    fn bytes(&self) -> usize {
        KvCache::<f32, 4, 16, 128>::BYTES
    }

    fn step<B: Backend>(&mut self) {
        attend_cache_with::<B, f32, 1, 4, 4, 16, 128, 128>(
            black_box(&self.q),
            127,
            &self.cache,
            None,
            &mut self.ctx,
            &mut self.scores,
            WeightsOut::None,
            &AttnOptions::new(),
        )
        .unwrap();
        black_box(&self.ctx);
    }
}

/// A criterion group timing one decode step, Scalar and Simd.
fn scalar_vs_simd(c: &mut Criterion, name: &str, s: &mut impl DecodeStep) {
    let mut g = c.benchmark_group(name);
    g.throughput(Throughput::Bytes(s.bytes() as u64));
    g.bench_function("scalar", |b| b.iter(|| s.step::<Scalar>()));
    g.bench_function("simd", |b| b.iter(|| s.step::<Simd>()));
    g.finish();
}

fn decode_gpt2(c: &mut Criterion) {
    let mut s = Setup::new(12, 12, 64, 1024);
    scalar_vs_simd(c, "decode_gpt2_12x64_cache1024", &mut s);
}

fn decode_firmware(c: &mut Criterion) {
    scalar_vs_simd(c, "decode_firmware_4x16_cache128", &mut Firmware::new());
}

fn decode_kv_heads(c: &mut Criterion) {
    let mut g = c.benchmark_group("decode_kv_heads_12x64_cache1024");
    for (name, kvh) in [("mha", 12usize), ("gqa4", 4), ("mqa", 1)] {
        let mut s = Setup::new(12, kvh, 64, 1024);
        g.throughput(Throughput::Bytes(s.bytes() as u64));
        g.bench_with_input(
            BenchmarkId::new(name, format!("{} KiB", s.bytes() / 1024)),
            &kvh,
            |b, _| b.iter(|| s.step::<Simd>()),
        );
    }
    g.finish();
}

/// Times one decode step on both backends and prints a summary row.
fn summary_row(name: &str, s: &mut impl DecodeStep) {
    let bytes = s.bytes();
    let ts = time(|| s.step::<Scalar>());
    let tv = time(|| s.step::<Simd>());
    println!(
        "{:<36} {:>10} {:>10.2} {:>10.2} {:>10.2} {:>7.1}x",
        name,
        bytes,
        ts * 1e6,
        tv * 1e6,
        bytes as f64 / tv / 1e9,
        ts / tv
    );
}

fn summary() {
    println!("\nsummary (median of 7 batches; GB/s = cache bytes read per step / time)");
    println!(
        "{:<36} {:>10} {:>10} {:>10} {:>10} {:>8}",
        "case", "bytes", "scalar µs", "simd µs", "simd GB/s", "speedup"
    );
    summary_row("gpt2 12x64, cache 1024", &mut Setup::new(12, 12, 64, 1024));
    summary_row("firmware 4x16, cache 128", &mut Firmware::new());
    for (name, kvh) in [
        ("MHA  (12 kv heads)", 12usize),
        ("GQA  (4 kv heads)", 4),
        ("MQA  (1 kv head)", 1),
    ] {
        summary_row(
            &format!("{name}, 12x64, cache 1024"),
            &mut Setup::new(12, kvh, 64, 1024),
        );
    }
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    decode_gpt2(&mut c);
    decode_firmware(&mut c);
    decode_kv_heads(&mut c);
    c.final_summary();
    // `cargo test --benches` runs this binary in test mode: skip the summary there.
    if !std::env::args().any(|a| a == "--test" || a == "--list") {
        summary();
    }
}
