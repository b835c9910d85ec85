//! Recurrent-layer benchmarks, Scalar vs Simd in one run.
//!
//! ```text
//! cargo bench --bench rnn
//! ```
//!
//! LSTM, input 64, hidden 128, batch 1:
//! * `lstm/step`: one step (`recurrent_step_views_with`), both backends, and
//!   `natural/scalar`: the plain loop — for each of the 4·128 gate
//!   pre-activations a dot over its `W_ih` row and its `W_hh` row, then the
//!   gates, cell and hidden state element by element — the baseline of the
//!   speed target.
//! * `lstm/seq64_forward`, `lstm/seq64_bptt`: a 64-step sequence forward, and
//!   its backpropagation through time.
//! * `gru/step`: one GRU step at the same sizes.

#[path = "common/data.rs"]
mod data;

use data::fill;

use std::hint::black_box;

use constml::nn::{
    Cell, RecurrentGrads, RecurrentParams, RnnShape, recurrent_backward_scratch_len,
    recurrent_backward_views_with, recurrent_forward_scratch_len, recurrent_forward_views_with,
    recurrent_saved_len, recurrent_step_scratch_len, recurrent_step_views_with,
};
use constml::{Backend, Scalar, Simd};
use criterion::{BenchmarkId, Criterion};

const I: usize = 64;
const H: usize = 128;
const S: usize = 64;

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// The plain LSTM step: gate pre-activations one dot product at a time, then
/// the elementwise update.
#[allow(clippy::too_many_arguments)]
fn natural_step(
    w_ih: &[f32],
    w_hh: &[f32],
    b_ih: &[f32],
    b_hh: &[f32],
    x: &[f32],
    h: &mut [f32],
    c: &mut [f32],
    pre: &mut [f32],
) {
    for (r, p) in pre.iter_mut().enumerate() {
        let (wi, wh) = (&w_ih[r * I..(r + 1) * I], &w_hh[r * H..(r + 1) * H]);
        let mut acc = b_ih[r] + b_hh[r];
        for (w, v) in wi.iter().zip(x) {
            acc += w * v;
        }
        for (w, v) in wh.iter().zip(h.iter()) {
            acc += w * v;
        }
        *p = acc;
    }
    for k in 0..H {
        let (i, f) = (sigmoid(pre[k]), sigmoid(pre[H + k]));
        let (g, o) = (pre[2 * H + k].tanh(), sigmoid(pre[3 * H + k]));
        c[k] = f * c[k] + i * g;
        h[k] = o * c[k].tanh();
    }
}

struct Lstm {
    w_ih: Vec<f32>,
    w_hh: Vec<f32>,
    b_ih: Vec<f32>,
    b_hh: Vec<f32>,
}

impl Lstm {
    fn new() -> Self {
        let k = 1.0 / (H as f32).sqrt();
        let scale = |v: Vec<f32>| v.into_iter().map(|x| x * k).collect();
        Self {
            w_ih: scale(fill(4 * H * I, 1)),
            w_hh: scale(fill(4 * H * H, 2)),
            b_ih: scale(fill(4 * H, 3)),
            b_hh: scale(fill(4 * H, 4)),
        }
    }
    fn params(&self, cell: Cell) -> RecurrentParams<'_, f32> {
        let g = cell.gates();
        RecurrentParams::new(
            cell,
            &self.w_ih[..g * H * I],
            &self.w_hh[..g * H * H],
            Some(&self.b_ih[..g * H]),
            Some(&self.b_hh[..g * H]),
        )
    }
}

fn steps<B: Backend>(c: &mut Criterion, m: &Lstm) {
    let mut g = c.benchmark_group("lstm");
    let x = fill(I, 5);
    if B::NAME == Scalar::NAME {
        // The baseline computes the same step.
        let (mut h0, mut c0, mut pre) = (fill(H, 6), fill(H, 7), vec![0.0f32; 4 * H]);
        let (mut h1, mut c1) = (h0.clone(), c0.clone());
        natural_step(
            &m.w_ih, &m.w_hh, &m.b_ih, &m.b_hh, &x, &mut h0, &mut c0, &mut pre,
        );
        let mut scratch = vec![0.0f32; recurrent_step_scratch_len(Cell::Lstm, 1, H)];
        let p = m.params(Cell::Lstm);
        recurrent_step_views_with::<B, f32>(&p, 1, &x, &mut h1, Some(&mut c1), &mut scratch)
            .unwrap();
        assert!(h0.iter().zip(&h1).all(|(a, b)| (a - b).abs() < 1e-4));
        let (mut h, mut cs) = (fill(H, 6), fill(H, 7));
        g.bench_function(BenchmarkId::new("step/natural", B::NAME), |b| {
            b.iter(|| {
                natural_step(
                    &m.w_ih,
                    &m.w_hh,
                    &m.b_ih,
                    &m.b_hh,
                    black_box(&x),
                    &mut h,
                    &mut cs,
                    &mut pre,
                )
            })
        });
    }
    let (mut h, mut cs) = (fill(H, 6), fill(H, 7));
    let mut scratch = vec![0.0f32; recurrent_step_scratch_len(Cell::Lstm, 1, H)];
    let p = m.params(Cell::Lstm);
    g.bench_function(BenchmarkId::new("step", B::NAME), |b| {
        b.iter(|| {
            recurrent_step_views_with::<B, f32>(
                &p,
                1,
                black_box(&x),
                &mut h,
                Some(&mut cs),
                &mut scratch,
            )
            .unwrap()
        })
    });
    let shape = RnnShape::new(1, S, I, H);
    let xs = fill(S * I, 8);
    let mut out = vec![0.0f32; S * H];
    let mut saved = vec![0.0f32; recurrent_saved_len(Cell::Lstm, &shape)];
    let mut fscratch = vec![0.0f32; recurrent_forward_scratch_len(Cell::Lstm, &shape)];
    g.bench_function(BenchmarkId::new("seq64_forward", B::NAME), |b| {
        b.iter(|| {
            recurrent_forward_views_with::<B, f32>(
                &p,
                &shape,
                black_box(&xs),
                None,
                None,
                &mut out,
                None,
                None,
                &mut saved,
                &mut fscratch,
            )
            .unwrap()
        })
    });
    let dout = fill(S * H, 9);
    let (mut dw_ih, mut dw_hh) = (vec![0.0f32; 4 * H * I], vec![0.0f32; 4 * H * H]);
    let (mut db_ih, mut db_hh) = (vec![0.0f32; 4 * H], vec![0.0f32; 4 * H]);
    let mut dx = vec![0.0f32; S * I];
    let mut bscratch = vec![0.0f32; recurrent_backward_scratch_len(Cell::Lstm, &shape)];
    g.bench_function(BenchmarkId::new("seq64_bptt", B::NAME), |b| {
        b.iter(|| {
            let mut grads = RecurrentGrads {
                dw_ih: &mut dw_ih,
                dw_hh: &mut dw_hh,
                db_ih: Some(&mut db_ih),
                db_hh: Some(&mut db_hh),
            };
            recurrent_backward_views_with::<B, f32>(
                &p,
                &shape,
                black_box(&xs),
                None,
                None,
                &out,
                &saved,
                Some(&dout),
                None,
                None,
                &mut grads,
                Some(&mut dx),
                None,
                None,
                &mut bscratch,
            )
            .unwrap()
        })
    });
    g.finish();
    let mut g = c.benchmark_group("gru");
    let p = m.params(Cell::Gru);
    let mut h = fill(H, 6);
    let mut scratch = vec![0.0f32; recurrent_step_scratch_len(Cell::Gru, 1, H)];
    g.bench_function(BenchmarkId::new("step", B::NAME), |b| {
        b.iter(|| {
            recurrent_step_views_with::<B, f32>(&p, 1, black_box(&x), &mut h, None, &mut scratch)
                .unwrap()
        })
    });
    g.finish();
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    let m = Lstm::new();
    steps::<Scalar>(&mut c, &m);
    steps::<Simd>(&mut c, &m);
    c.final_summary();
}
