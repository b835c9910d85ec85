//! An MLP trained from scratch on scikit-learn's handwritten digits (1 797
//! images of 8 × 8 pixels, `examples/data/digits.csv`): 64 → 128 (ReLU) → 10,
//! softmax cross-entropy, Adam (rate halved every 10 epochs), mini-batches
//! of 32, a seeded stratified 80/20 split. Every layer's forward and backward
//! is constml's; the training step (`mlp.rs`) allocates nothing.
//!
//! ```text
//! cargo run --release --example mlp_digits [-- curves.svg [weights.txt]]
//! ```
//!
//! Prints the loss and accuracies per epoch and, on its last line, the test
//! accuracy. Writes the training curves as an SVG (default
//! `target/mlp_digits.svg`) and, when a second path is given, the trained
//! weights and the first test images as text (the input of
//! `tests/reference/gen_mlp_digits.py`, which checks the logits against a
//! PyTorch forward pass).

#[path = "../common/svg.rs"]
mod svg;

#[path = "../common/digits.rs"]
mod digits;

mod mlp;

use std::error::Error;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use constml::rand_core::SeedableRng;
use digits::argmax;
use mlp::{BATCH, IN, Mlp, OUT};
use rand_xoshiro::Xoshiro256PlusPlus;

const SEED: u64 = 2024;
const EPOCHS: usize = 40;
const DECAY_EVERY: usize = 10;
const LR: f32 = 4e-3;

/// Accuracy (in %) of `mlp` on the images `idx`.
fn accuracy(
    mlp: &mut Mlp,
    x: &[[f32; IN]],
    y: &[usize],
    idx: &[usize],
) -> Result<f64, Box<dyn Error>> {
    let mut right = 0;
    let mut batch = [[0.0f32; IN]; BATCH];
    for chunk in idx.chunks(BATCH) {
        for (b, &i) in batch.iter_mut().zip(chunk) {
            *b = x[i];
        }
        mlp.forward(&batch, chunk.len())?;
        for (r, &i) in chunk.iter().enumerate() {
            right += usize::from(argmax(&mlp.logits()[r]) == y[i]);
        }
    }
    Ok(100.0 * right as f64 / idx.len() as f64)
}

fn run() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let svg_path = PathBuf::from(args.first().map_or("target/mlp_digits.svg", String::as_str));
    let (x, y) = digits::load()?;

    // Stratified 80/20 split: each digit's images shuffled, 80 % of each to training.
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(SEED);
    let (train, test) = digits::split(&y, &mut rng);
    println!(
        "digits: {} images of 8x8, {} training, {} test (stratified, seed {SEED})",
        y.len(),
        train.len(),
        test.len()
    );
    println!(
        "MLP {IN} -> {} (ReLU) -> {OUT}, Adam lr {LR} halved every {DECAY_EVERY} epochs, batch {BATCH}, {EPOCHS} epochs",
        mlp::HIDDEN
    );
    println!(
        "{:>6} {:>10} {:>10} {:>10}",
        "epoch", "loss", "train %", "test %"
    );

    let mut net: Box<Mlp> = Box::new(Mlp::new(SEED, LR));
    let mut history = Vec::new();
    let mut batch = [[0.0f32; IN]; BATCH];
    let mut labels = [0usize; BATCH];
    let mut order = train.clone();
    for epoch in 1..=EPOCHS {
        // Step decay: the rate halves every DECAY_EVERY epochs.
        net.set_lr(LR * 0.5f32.powi(((epoch - 1) / DECAY_EVERY) as i32));
        digits::shuffle(&mut order, &mut rng);
        let mut total = 0.0f64;
        for chunk in order.chunks(BATCH) {
            for ((b, l), &i) in batch.iter_mut().zip(labels.iter_mut()).zip(chunk) {
                *b = x[i];
                *l = y[i];
            }
            total += f64::from(net.train_step(&batch, &labels, chunk.len())?) * chunk.len() as f64;
        }
        let loss = total / order.len() as f64;
        let (tr, te) = (
            accuracy(&mut net, &x, &y, &train)?,
            accuracy(&mut net, &x, &y, &test)?,
        );
        history.push((epoch as f64, loss, tr, te));
        println!("{epoch:>6} {loss:>10.4} {tr:>10.2} {te:>10.2}");
    }

    // Curves: loss (left plot) and accuracy (right plot) as two SVG files' worth
    // of content in one: the loss curve and both accuracies, on their own axes.
    let mut plot = svg::Plot::new(
        "Digits MLP: training loss and accuracy per epoch",
        svg::Axis::linear(1.0, EPOCHS as f64, "epoch"),
        svg::Axis::linear(0.0, 100.0, "accuracy % / loss x 100"),
    );
    let loss_pts: Vec<(f64, f64)> = history
        .iter()
        .map(|h| (h.0, (h.1 * 100.0).min(100.0)))
        .collect();
    let tr_pts: Vec<(f64, f64)> = history.iter().map(|h| (h.0, h.2)).collect();
    let te_pts: Vec<(f64, f64)> = history.iter().map(|h| (h.0, h.3)).collect();
    plot.polyline(&loss_pts, "#7f7f7f");
    plot.polyline(&tr_pts, "#1f77b4");
    plot.polyline(&te_pts, "#ff7f0e");
    plot.legend("training loss x 100", "#7f7f7f", svg::Mark::Line);
    plot.legend("training accuracy %", "#1f77b4", svg::Mark::Line);
    plot.legend("test accuracy %", "#ff7f0e", svg::Mark::Line);
    if let Some(dir) = svg_path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    plot.write(&svg_path)
        .map_err(|e| format!("{}: {e}", svg_path.display()))?;
    println!("wrote {}", svg_path.display());

    if let Some(w) = args.get(1) {
        let mut out = String::new();
        let mut put = |name: &str, rows: usize, cols: usize, v: &[f32]| {
            let _ = write!(out, "{name} {rows} {cols}");
            for x in v {
                let _ = write!(out, " {x:e}");
            }
            out.push('\n');
        };
        put("w1", mlp::HIDDEN, IN, net.w1.as_flattened());
        put("b1", 1, mlp::HIDDEN, &net.b1);
        put("w2", OUT, mlp::HIDDEN, net.w2.as_flattened());
        put("b2", 1, OUT, &net.b2);
        let first: Vec<f32> = test[..5].iter().flat_map(|&i| x[i]).collect();
        put("x", 5, IN, &first);
        std::fs::write(w, out).map_err(|e| format!("{w}: {e}"))?;
        println!("wrote {w}");
    }
    let final_test = history.last().map_or(0.0, |h| h.3);
    println!("test accuracy: {final_test:.2} %");
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mlp_digits: {e}");
            ExitCode::FAILURE
        }
    }
}
