//! constml beside the code users would otherwise reach for, in one run.
//!
//! ```text
//! cargo bench --manifest-path benches/peers/Cargo.toml
//! ```
//!
//! (from the repository root, so that `.cargo/config.toml` applies:
//! `-C target-cpu=native`). Single-threaded throughout. Groups:
//!
//! Groups are named `peers_…` (the library's own benches share the report):
//!
//! * `gemm_f32`, `gemm_f64`: square `C = A·B` for n = 16 … 512 — constml's
//!   `Simd::gemm`, `gemm_bt` (B given transposed) and `gemm_at` (A given
//!   transposed), `matrixmultiply::{s,d}gemm`, nalgebra's `DMatrix` product.
//!   Throughput counts 2·n³ FLOPs, so criterion's `elem/s` reads as FLOP/s.
//! * `gemm_const_f32`: n = 16 … 64 with sizes known at compile time:
//!   `constml::kernels::matmul::<N, N, N>` against nalgebra's `SMatrix`.
//! * `gemm_shapes_f32`: the non-square shapes of a transformer layer (a batch
//!   of 64 tokens through a 768 → 3072 projection, and one token through a
//!   768 × 768 one).
//! * `top_p_f32`: top-p 0.9 over logits drawn as 3·N(0, 1), V = 1 000 …
//!   128 256 — constml's O(V) `top_p_dyn`, a sort-everything peer, an O(V)
//!   `select_nth_unstable` peer (halving the candidates around their median
//!   by the mass above it), and one `Simd::softmax` pass as the yardstick. Every row first copies
//!   the logits into a work buffer (top-p rewrites them), the yardstick too.
//! * `attention_decode_f32`: one query of 12 heads × 64 over a full KV cache
//!   of 64 … 4 096 positions — constml on both backends, a naive three-loop
//!   attention (scores, softmax, weighted sum; plain loops), and a plain read
//!   (the sum) of as many bytes as the cache holds, the bandwidth yardstick.
//! * `stream_read_f32`: that plain read alone over 1 MiB … 1 GiB, to show
//!   where the caches end.

#[path = "../../common/data.rs"]
mod data;

use data::fill_real;
use std::hint::black_box;

use constml::attention::{
    AttnOptions, CachePolicy, KvCacheDyn, KvStore, WeightsOut, attend_cache_views_with,
    gqa_scratch_len,
};
use constml::decode::{SelectScratchDyn, top_p_dyn};
use constml::{Accumulate, Backend, MatMut, MatRef, Real, Scalar, Simd};
use criterion::{BenchmarkId, Criterion, Throughput};
use nalgebra::{DMatrix, SMatrix};

/// Standard normals scaled by `scale` (Box–Muller over the same generator).
fn normals(n: usize, scale: f32, seed: u64) -> Vec<f32> {
    let u = fill_real::<f64>(2 * n, seed);
    (0..n)
        .map(|i| {
            let a = (u[2 * i] + 1.0) / 2.0 + 1e-12;
            let b = (u[2 * i + 1] + 1.0) / 2.0;
            let z = (-2.0 * a.ln()).sqrt() * (2.0 * std::f64::consts::PI * b).cos();
            (z * scale as f64) as f32
        })
        .collect()
}

const SQUARE: [usize; 10] = [16, 32, 48, 64, 96, 128, 192, 256, 384, 512];

fn name<T: Real>() -> &'static str {
    if T::BYTES == 4 { "f32" } else { "f64" }
}

/// `matrixmultiply`'s product for `T`, row-major, `C = A·B`.
fn mm_gemm<T: Real>(m: usize, k: usize, n: usize, a: &[T], b: &[T], c: &mut [T]) {
    // Safety: the slices hold exactly m·k, k·n and m·n elements laid out
    // row-major with the strides given; matrixmultiply reads and writes
    // nothing else. (The peer's API takes raw pointers; constml has no
    // `unsafe`.)
    assert!(a.len() == m * k && b.len() == k * n && c.len() == m * n);
    let (rsa, rsb, rsc) = (k as isize, n as isize, n as isize);
    if T::BYTES == 4 {
        let (a, b) = (a.as_ptr().cast::<f32>(), b.as_ptr().cast::<f32>());
        let c = c.as_mut_ptr().cast::<f32>();
        unsafe { matrixmultiply::sgemm(m, k, n, 1.0, a, rsa, 1, b, rsb, 1, 0.0, c, rsc, 1) }
    } else {
        let (a, b) = (a.as_ptr().cast::<f64>(), b.as_ptr().cast::<f64>());
        let c = c.as_mut_ptr().cast::<f64>();
        unsafe { matrixmultiply::dgemm(m, k, n, 1.0, a, rsa, 1, b, rsb, 1, 0.0, c, rsc, 1) }
    }
}

/// One product shape: constml's three layouts, matrixmultiply, nalgebra.
fn gemm_rows<T: Real + nalgebra::RealField>(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    id: &str,
    (m, k, n): (usize, usize, usize),
    all_layouts: bool,
) {
    let a = fill_real::<T>(m * k, 1);
    let b = fill_real::<T>(k * n, 2);
    let at: Vec<T> = (0..k * m).map(|i| a[(i % m) * k + i / m]).collect();
    let bt: Vec<T> = (0..n * k).map(|i| b[(i % k) * n + i / k]).collect();
    let mut c = vec![<T as Real>::ZERO; m * n];
    g.throughput(Throughput::Elements((2 * m * k * n) as u64));
    g.bench_function(BenchmarkId::new("constml", id), |bch| {
        bch.iter(|| {
            let (av, bv) = (
                MatRef::new(black_box(&a), m, k).unwrap(),
                MatRef::new(&b, k, n).unwrap(),
            );
            Simd::gemm(
                av,
                bv,
                MatMut::new(&mut c, m, n).unwrap(),
                Accumulate::Overwrite,
            )
            .unwrap();
        })
    });
    if all_layouts {
        g.bench_function(BenchmarkId::new("constml_bt", id), |bch| {
            bch.iter(|| {
                let (av, bv) = (
                    MatRef::new(black_box(&a), m, k).unwrap(),
                    MatRef::new(&bt, n, k).unwrap(),
                );
                Simd::gemm_bt(
                    av,
                    bv,
                    MatMut::new(&mut c, m, n).unwrap(),
                    Accumulate::Overwrite,
                )
                .unwrap();
            })
        });
        g.bench_function(BenchmarkId::new("constml_at", id), |bch| {
            bch.iter(|| {
                let (av, bv) = (
                    MatRef::new(black_box(&at), k, m).unwrap(),
                    MatRef::new(&b, k, n).unwrap(),
                );
                Simd::gemm_at(
                    av,
                    bv,
                    MatMut::new(&mut c, m, n).unwrap(),
                    Accumulate::Overwrite,
                )
                .unwrap();
            })
        });
    }
    g.bench_function(BenchmarkId::new("matrixmultiply", id), |bch| {
        bch.iter(|| mm_gemm(m, k, n, black_box(&a), &b, &mut c))
    });
    let na = DMatrix::from_row_slice(m, k, &a);
    let nb = DMatrix::from_row_slice(k, n, &b);
    let mut nc = DMatrix::<T>::from_element(m, n, <T as Real>::ZERO);
    g.bench_function(BenchmarkId::new("nalgebra_dmatrix", id), |bch| {
        bch.iter(|| nc.gemm(<T as Real>::ONE, black_box(&na), &nb, <T as Real>::ZERO))
    });
}

fn gemm_square<T: Real + nalgebra::RealField>(c: &mut Criterion) {
    let mut g = c.benchmark_group(format!("peers_gemm_{}", name::<T>()));
    let sizes: &[usize] = if T::BYTES == 4 {
        &SQUARE
    } else {
        &[32, 64, 128, 256, 512]
    };
    for &n in sizes {
        gemm_rows::<T>(&mut g, &n.to_string(), (n, n, n), true);
    }
    g.finish();
}

fn gemm_shapes(c: &mut Criterion) {
    let mut g = c.benchmark_group("peers_gemm_shapes_f32");
    for (m, k, n) in [(64, 768, 3072), (1, 768, 768), (128, 768, 768)] {
        gemm_rows::<f32>(&mut g, &format!("{m}x{k}x{n}"), (m, k, n), false);
    }
    g.finish();
}

/// The const-generic face against nalgebra's stack matrices, size `N`.
fn const_pair<const N: usize>(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
) {
    let a = fill_real::<f32>(N * N, 1);
    let b = fill_real::<f32>(N * N, 2);
    let a2: Box<[[f32; N]; N]> = Box::new(core::array::from_fn(|i| {
        core::array::from_fn(|j| a[i * N + j])
    }));
    let b2: Box<[[f32; N]; N]> = Box::new(core::array::from_fn(|i| {
        core::array::from_fn(|j| b[i * N + j])
    }));
    let mut c2: Box<[[f32; N]; N]> = Box::new([[0.0; N]; N]);
    g.throughput(Throughput::Elements((2 * N * N * N) as u64));
    g.bench_function(BenchmarkId::new("constml", N), |bch| {
        bch.iter(|| constml::kernels::matmul::<f32, N, N, N>(black_box(&a2), &b2, &mut c2))
    });
    let na = Box::new(SMatrix::<f32, N, N>::from_row_slice(&a));
    let nb = Box::new(SMatrix::<f32, N, N>::from_row_slice(&b));
    let mut nc = Box::new(SMatrix::<f32, N, N>::zeros());
    g.bench_function(BenchmarkId::new("nalgebra_smatrix", N), |bch| {
        bch.iter(|| na.mul_to(black_box(&nb), &mut nc))
    });
}

fn gemm_const(c: &mut Criterion) {
    let mut g = c.benchmark_group("peers_gemm_const_f32");
    const_pair::<16>(&mut g);
    const_pair::<32>(&mut g);
    const_pair::<48>(&mut g);
    const_pair::<64>(&mut g);
    g.finish();
}

/// Masks `logits` to the top-p set: the shortest prefix of the first `n`
/// sorted ids holding `p` of the mass; `false` if they hold less.
fn cut(probs: &[f32], idx: &[u32], logits: &mut [f32], p: f32, n: usize) -> bool {
    let mut acc = 0.0;
    let mut keep = None;
    for (j, &i) in idx[..n].iter().enumerate() {
        acc += probs[i as usize];
        if acc >= p {
            keep = Some(j + 1);
            break;
        }
    }
    let Some(keep) = keep else { return false };
    for &i in &idx[keep..] {
        logits[i as usize] = f32::NEG_INFINITY;
    }
    true
}

/// Sort-everything top-p: softmax, all ids sorted by probability (ties by
/// id), the smallest prefix holding `p` of the mass kept, the rest masked.
struct SortTopP {
    probs: Vec<f32>,
    idx: Vec<u32>,
}

impl SortTopP {
    fn new(v: usize) -> Self {
        Self {
            probs: vec![0.0; v],
            idx: vec![0; v],
        }
    }

    fn softmax(&mut self, logits: &[f32]) {
        let m = logits.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
        let mut s = 0.0;
        for (p, &x) in self.probs.iter_mut().zip(logits) {
            *p = (x - m).exp();
            s += *p;
        }
        for p in &mut self.probs {
            *p /= s;
        }
    }

    fn run(&mut self, logits: &mut [f32], p: f32) {
        self.softmax(logits);
        for (i, v) in self.idx.iter_mut().enumerate() {
            *v = i as u32;
        }
        let probs = &self.probs;
        self.idx.sort_unstable_by(|&a, &b| {
            probs[b as usize]
                .total_cmp(&probs[a as usize])
                .then(a.cmp(&b))
        });
        cut(&self.probs, &self.idx, logits, p, self.idx.len());
    }

    /// O(V) selection: `select_nth_unstable` halves the candidates around
    /// their median, the upper half's mass says which half holds the
    /// boundary (keep the upper half and look below, or look inside it);
    /// the last 64 candidates are sorted.
    fn run_select(&mut self, logits: &mut [f32], p: f32) {
        self.softmax(logits);
        for (i, v) in self.idx.iter_mut().enumerate() {
            *v = i as u32;
        }
        let probs = &self.probs;
        let by = |a: &u32, b: &u32| {
            probs[*b as usize]
                .total_cmp(&probs[*a as usize])
                .then(a.cmp(b))
        };
        // idx[..lo] is kept; the boundary lies in idx[lo..hi].
        let (mut lo, mut hi, mut need) = (0, self.idx.len(), p);
        while hi - lo > 64 {
            let mid = lo + (hi - lo) / 2;
            self.idx[lo..hi].select_nth_unstable_by(mid - lo, by);
            let mass: f32 = self.idx[lo..mid].iter().map(|&i| probs[i as usize]).sum();
            if mass >= need {
                hi = mid;
            } else {
                need -= mass;
                lo = mid;
            }
        }
        self.idx[lo..hi].sort_unstable_by(by);
        let mut keep = hi;
        let mut acc = 0.0;
        for (j, &i) in self.idx[lo..hi].iter().enumerate() {
            acc += probs[i as usize];
            if acc >= need {
                keep = lo + j + 1;
                break;
            }
        }
        for &i in &self.idx[keep..] {
            logits[i as usize] = f32::NEG_INFINITY;
        }
    }
}

fn top_p(c: &mut Criterion) {
    let mut g = c.benchmark_group("peers_top_p_f32");
    for v in [1000usize, 8192, 32_000, 50_257, 128_256] {
        let x = normals(v, 3.0, 7);
        let mut work = x.clone();
        let mut scratch = SelectScratchDyn::<f32>::new(v).unwrap();
        let mut peer = SortTopP::new(v);
        g.throughput(Throughput::Elements(v as u64));
        g.bench_function(BenchmarkId::new("constml", v), |b| {
            b.iter(|| {
                work.copy_from_slice(black_box(&x));
                top_p_dyn(&mut work, 0.9, &mut scratch).unwrap();
            })
        });
        g.bench_function(BenchmarkId::new("softmax_simd", v), |b| {
            b.iter(|| {
                work.copy_from_slice(black_box(&x));
                Simd::softmax(&mut work);
            })
        });
        g.bench_function(BenchmarkId::new("select_nth", v), |b| {
            b.iter(|| {
                work.copy_from_slice(black_box(&x));
                peer.run_select(&mut work, 0.9);
            })
        });
        g.bench_function(BenchmarkId::new("sort", v), |b| {
            b.iter(|| {
                work.copy_from_slice(black_box(&x));
                peer.run(&mut work, 0.9);
            })
        });
    }
    g.finish();
}

/// A full cache of `len` positions, 12 heads × 64, and one query.
struct Decode {
    cache: KvCacheDyn<f32>,
    keys: Vec<f32>,
    values: Vec<f32>,
    q: Vec<f32>,
    out: Vec<f32>,
    scratch: Vec<f32>,
    scores: Vec<f32>,
}

const HEADS: usize = 12;
const D: usize = 64;

impl Decode {
    fn new(len: usize) -> Self {
        let mut cache = KvCacheDyn::new(HEADS, D, len, CachePolicy::Bounded).unwrap();
        let (mut keys, mut values) = (Vec::new(), Vec::new());
        for p in 0..len {
            let k = fill_real::<f32>(HEADS * D, p as u64 + 1);
            let v = fill_real::<f32>(HEADS * D, p as u64 + 7919);
            cache.append_token(&k, &v).unwrap();
            keys.extend_from_slice(&k);
            values.extend_from_slice(&v);
        }
        Self {
            cache,
            keys,
            values,
            q: fill_real(HEADS * D, 99),
            out: vec![0.0; HEADS * D],
            scratch: vec![0.0; gqa_scratch_len(1, len, HEADS, HEADS)],
            scores: vec![0.0; len],
        }
    }

    fn step<B: Backend>(&mut self) {
        let pos = self.cache.next_position() - 1;
        attend_cache_views_with::<B, f32, _>(
            MatRef::new(black_box(&self.q), 1, HEADS * D).unwrap(),
            pos,
            HEADS,
            &self.cache,
            None,
            MatMut::new(&mut self.out, 1, HEADS * D).unwrap(),
            &mut self.scratch,
            WeightsOut::None,
            &AttnOptions::new(),
        )
        .unwrap();
    }

    /// The textbook loops over token-major keys and values
    /// (`[position][head][dim]`), one accumulator each.
    fn naive(&mut self) {
        let len = self.scores.len();
        let scale = 1.0 / (D as f32).sqrt();
        for h in 0..HEADS {
            let q = &self.q[h * D..(h + 1) * D];
            for t in 0..len {
                let k = &self.keys[(t * HEADS + h) * D..][..D];
                let mut s = 0.0;
                for e in 0..D {
                    s += q[e] * k[e];
                }
                self.scores[t] = s * scale;
            }
            let m = self.scores.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
            let mut sum = 0.0;
            for s in &mut self.scores {
                *s = (*s - m).exp();
                sum += *s;
            }
            let out = &mut self.out[h * D..(h + 1) * D];
            out.fill(0.0);
            for t in 0..len {
                let w = self.scores[t] / sum;
                let v = &self.values[(t * HEADS + h) * D..][..D];
                for e in 0..D {
                    out[e] += w * v[e];
                }
            }
        }
    }

    /// A plain read of every key and value byte: their sum.
    fn read(&self) -> f32 {
        Simd::sum(black_box(&self.keys)) + Simd::sum(black_box(&self.values))
    }
}

fn attention(c: &mut Criterion) {
    let mut g = c.benchmark_group("peers_attention_decode_f32");
    for len in [64usize, 128, 256, 512, 1024, 2048, 4096] {
        let mut s = Decode::new(len);
        g.throughput(Throughput::Bytes(s.cache.bytes() as u64));
        g.bench_function(BenchmarkId::new("constml", len), |b| {
            b.iter(|| s.step::<Simd>())
        });
        g.bench_function(BenchmarkId::new("constml_scalar", len), |b| {
            b.iter(|| s.step::<Scalar>())
        });
        g.bench_function(BenchmarkId::new("naive", len), |b| b.iter(|| s.naive()));
        g.bench_function(BenchmarkId::new("plain_read", len), |b| b.iter(|| s.read()));
    }
    g.finish();
}

fn stream(c: &mut Criterion) {
    let mut g = c.benchmark_group("peers_stream_read_f32");
    for mib in [1usize, 16, 256, 1024] {
        let x = vec![1.0f32; mib << 18];
        g.throughput(Throughput::Bytes((mib << 20) as u64));
        g.bench_function(BenchmarkId::new("sum", format!("{mib} MiB")), |b| {
            b.iter(|| Simd::sum(black_box(&x)))
        });
    }
    g.finish();
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    gemm_square::<f32>(&mut c);
    gemm_square::<f64>(&mut c);
    gemm_const(&mut c);
    gemm_shapes(&mut c);
    top_p(&mut c);
    attention(&mut c);
    stream(&mut c);
    c.final_summary();
}
