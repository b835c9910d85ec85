//! An LSTM learns next-value prediction on a noisy sine wave, on-device
//! style: every forward, backward-through-time and optimiser step is
//! constml's, and a training step allocates nothing (`model.rs`).
//!
//! The series is `sin(2π·t/P) + ε` with period `P` = 24.7 steps and Gaussian
//! noise `ε` of standard deviation 0.1 (seeded). The first 4 000 values train,
//! the next 1 000 validate. Training draws batches of 16 random windows of 32
//! steps; at every step the model predicts the next value from the values so
//! far in the window (zero initial state). Validation cuts its series into
//! non-overlapping windows the same way and scores every prediction after
//! the first 8 steps of a window (the warm-up the state needs), against the
//! repeat-the-last-value baseline on the same targets.
//!
//! ```text
//! cargo run --release --example lstm_sine
//! ```
//!
//! Prints the training loss and validation MSE every 100 steps, then the
//! validation MSE beside the baseline's and the reduction.

mod model;

use std::error::Error;
use std::process::ExitCode;

use constml::rand_core::{Rng, SeedableRng};
use model::{N, S, SineModel, Windows};
use rand_xoshiro::Xoshiro256PlusPlus;

const SEED: u64 = 7;
const PERIOD: f64 = 24.7;
const NOISE: f64 = 0.1;
const TRAIN: usize = 4000;
const VALID: usize = 1000;
const STEPS: usize = 1500;
const LR: f32 = 1e-2;
/// Predictions scored per validation window start after this many steps.
const WARMUP: usize = 8;

/// Standard normal draw (Box–Muller).
fn normal(rng: &mut Xoshiro256PlusPlus) -> f64 {
    let u = |r: &mut Xoshiro256PlusPlus| (r.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
    let (a, b) = (u(rng).max(1e-300), u(rng));
    (-2.0 * a.ln()).sqrt() * (2.0 * std::f64::consts::PI * b).cos()
}

/// Windows starting at `starts` (each needs `S + 1` values: inputs and the
/// next-value targets).
fn batch(series: &[f32], starts: &[usize], x: &mut Windows, y: &mut [f32; N * S]) {
    for (n, &s0) in starts.iter().enumerate() {
        for t in 0..S {
            x[n][t] = [series[s0 + t]];
            y[n * S + t] = series[s0 + t + 1];
        }
    }
}

/// `(model MSE, baseline MSE)` over the validation series.
fn validate(m: &mut SineModel, v: &[f32]) -> Result<(f64, f64), Box<dyn Error>> {
    let starts: Vec<usize> = (0..)
        .map(|k| k * S)
        .take_while(|s| s + S < v.len())
        .collect();
    let (mut x, mut y) = ([[[0.0; 1]; S]; N], [0.0; N * S]);
    let (mut err, mut base, mut count) = (0.0f64, 0.0f64, 0usize);
    for chunk in starts.chunks(N) {
        batch(v, chunk, &mut x, &mut y);
        let pred = m.predict(&x)?;
        for n in 0..chunk.len() {
            for t in WARMUP..S {
                let (p, target, last) = (pred[n * S + t], y[n * S + t], x[n][t][0]);
                err += f64::from(p - target).powi(2);
                base += f64::from(last - target).powi(2);
                count += 1;
            }
        }
    }
    Ok((err / count as f64, base / count as f64))
}

fn run() -> Result<(), Box<dyn Error>> {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(SEED);
    let series: Vec<f32> = (0..TRAIN + VALID)
        .map(|t| {
            let clean = (2.0 * std::f64::consts::PI * t as f64 / PERIOD).sin();
            (clean + NOISE * normal(&mut rng)) as f32
        })
        .collect();
    let (train, valid) = series.split_at(TRAIN);
    println!(
        "noisy sine: period {PERIOD} steps, noise sd {NOISE}, {TRAIN} training and {VALID} validation values (seed {SEED})"
    );
    println!(
        "LSTM(1 -> {}) + linear head, windows of {S} steps, batches of {N}, Adam lr {LR} (x0.3 after {} steps), {STEPS} steps",
        model::H,
        STEPS * 2 / 3
    );
    let mut m: Box<SineModel> = Box::new(SineModel::new(SEED, LR)?);
    let (mut x, mut y) = ([[[0.0; 1]; S]; N], [0.0; N * S]);
    let mut starts = [0usize; N];
    let mut avg = 0.0f64;
    println!("{:>6} {:>12} {:>12}", "step", "train MSE", "valid MSE");
    for step in 1..=STEPS {
        if step == STEPS * 2 / 3 + 1 {
            m.set_lr(LR * 0.3)?;
        }
        for s in starts.iter_mut() {
            *s = (rng.next_u64() % (TRAIN - S - 1) as u64) as usize;
        }
        batch(train, &starts, &mut x, &mut y);
        avg += f64::from(m.train_step(&x, &y)?);
        if step % 100 == 0 {
            let (v, _) = validate(&mut m, valid)?;
            println!("{step:>6} {:>12.5} {v:>12.5}", avg / 100.0);
            avg = 0.0;
        }
    }
    let (v, b) = validate(&mut m, valid)?;
    println!(
        "validation MSE {v:.5} vs repeat-last-value baseline {b:.5}: {:.1} % below the baseline",
        100.0 * (1.0 - v / b)
    );
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lstm_sine: {e}");
            ExitCode::FAILURE
        }
    }
}
