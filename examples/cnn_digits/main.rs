//! A small convolutional network trained from scratch on scikit-learn's
//! 8 × 8 handwritten digits (`examples/data/digits.csv`): conv 3×3 (16) →
//! BatchNorm2d → ReLU → max-pool 2 → conv 3×3 (32) → BatchNorm2d → ReLU →
//! max-pool 2 → linear → 10, cross-entropy, AdamW (rate halved every 10
//! epochs), batches of 32, the same seeded stratified 80/20 split as
//! `examples/mlp_digits`. Every layer's forward and backward is constml's;
//! the training step (`cnn.rs`) allocates nothing. After training, the
//! eval-mode BatchNorms are folded into the convolutions and the folded
//! network is checked against the unfolded one on the test set.
//!
//! ```text
//! cargo run --release --example cnn_digits [-- curves.svg]
//! ```
//!
//! Prints the loss and accuracies per epoch (BatchNorm in eval mode), the
//! folded network's agreement and, on its last line, the test accuracy; writes the training curves as an SVG (default
//! `target/cnn_digits.svg`).

#[path = "../common/svg.rs"]
mod svg;

#[path = "../common/digits.rs"]
mod digits;

mod cnn;

use std::error::Error;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use cnn::{BATCH, Cnn, IN, OUT};
use constml::rand_core::SeedableRng;
use digits::argmax;
use rand_xoshiro::Xoshiro256PlusPlus;

const SEED: u64 = 2024;
const EPOCHS: usize = 40;
const DECAY_EVERY: usize = 10;
const LR: f32 = 4e-3;

/// Accuracy (in %) of `net` on the images `idx`.
fn accuracy(
    net: &mut Cnn,
    x: &[[f32; IN]],
    y: &[usize],
    idx: &[usize],
) -> Result<f64, Box<dyn Error>> {
    let mut right = 0;
    let mut batch = vec![0.0f32; BATCH * IN];
    for chunk in idx.chunks(BATCH) {
        for (b, &i) in batch.chunks_exact_mut(IN).zip(chunk) {
            b.copy_from_slice(&x[i]);
        }
        net.forward(&batch, chunk.len(), false)?;
        for (r, &i) in chunk.iter().enumerate() {
            right += usize::from(argmax(&net.logits()[r * OUT..(r + 1) * OUT]) == y[i]);
        }
    }
    Ok(100.0 * right as f64 / idx.len() as f64)
}

fn run() -> Result<(), Box<dyn Error>> {
    let svg_path = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "target/cnn_digits.svg".into()),
    );
    let (x, y) = digits::load()?;
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(SEED);
    let (train, test) = digits::split(&y, &mut rng);
    println!(
        "digits: {} images of 8x8, {} training, {} test (stratified, seed {SEED})",
        y.len(),
        train.len(),
        test.len()
    );
    println!(
        "CNN conv3x3(16)-bn-relu-pool2-conv3x3(32)-bn-relu-pool2-linear(128->10), AdamW (decay 0.01) lr {LR} halved every {DECAY_EVERY} epochs, batch {BATCH}, {EPOCHS} epochs"
    );
    println!(
        "{:>6} {:>10} {:>10} {:>10}",
        "epoch", "loss", "train %", "test %"
    );
    let mut net: Box<Cnn> = Box::new(Cnn::new(SEED, LR));
    let mut history = Vec::new();
    let mut batch = vec![0.0f32; BATCH * IN];
    let mut labels = [0usize; BATCH];
    let mut order = train.clone();
    let t0 = Instant::now();
    for epoch in 1..=EPOCHS {
        net.set_lr(LR * 0.5f32.powi(((epoch - 1) / DECAY_EVERY) as i32));
        digits::shuffle(&mut order, &mut rng);
        let mut total = 0.0f64;
        for chunk in order.chunks(BATCH) {
            for ((b, l), &i) in batch.chunks_exact_mut(IN).zip(labels.iter_mut()).zip(chunk) {
                b.copy_from_slice(&x[i]);
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
    println!("({EPOCHS} epochs in {:.1} s)", t0.elapsed().as_secs_f64());

    // Fold the eval-mode BatchNorms into the convolutions and compare.
    let mut folded = net.clone();
    folded.fold()?;
    let (mut agree, mut max_diff) = (0usize, 0.0f32);
    let mut batch_f = vec![0.0f32; BATCH * IN];
    for chunk in test.chunks(BATCH) {
        for (b, &i) in batch_f.chunks_exact_mut(IN).zip(chunk) {
            b.copy_from_slice(&x[i]);
        }
        net.forward(&batch_f, chunk.len(), false)?;
        folded.forward(&batch_f, chunk.len(), false)?;
        for r in 0..chunk.len() {
            let (a, b) = (
                &net.logits()[r * OUT..(r + 1) * OUT],
                &folded.logits()[r * OUT..(r + 1) * OUT],
            );
            agree += usize::from(argmax(a) == argmax(b));
            for (u, v) in a.iter().zip(b) {
                max_diff = max_diff.max((u - v).abs());
            }
        }
    }
    let folded_acc = accuracy(&mut folded, &x, &y, &test)?;
    println!(
        "BatchNorm folded into the convolutions: test accuracy {folded_acc:.2} %, same class for {agree}/{} test images, largest logit difference {max_diff:.2e}",
        test.len()
    );

    let mut plot = svg::Plot::new(
        "Digits CNN: training loss and accuracy per epoch",
        svg::Axis::linear(1.0, EPOCHS as f64, "epoch"),
        svg::Axis::linear(0.0, 100.0, "accuracy % / loss x 100"),
    );
    type Row = (f64, f64, f64, f64);
    let pts = |f: &dyn Fn(&Row) -> f64| -> Vec<(f64, f64)> {
        history.iter().map(|h| (h.0, f(h))).collect()
    };
    plot.polyline(&pts(&|h| (h.1 * 100.0).min(100.0)), "#7f7f7f");
    plot.polyline(&pts(&|h| h.2), "#1f77b4");
    plot.polyline(&pts(&|h| h.3), "#ff7f0e");
    plot.legend("training loss x 100", "#7f7f7f", svg::Mark::Line);
    plot.legend("training accuracy %", "#1f77b4", svg::Mark::Line);
    plot.legend("test accuracy %", "#ff7f0e", svg::Mark::Line);
    if let Some(dir) = svg_path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    plot.write(&svg_path)
        .map_err(|e| format!("{}: {e}", svg_path.display()))?;
    println!("wrote {}", svg_path.display());
    println!(
        "test accuracy: {:.2} %",
        history.last().map_or(0.0, |h| h.3)
    );
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cnn_digits: {e}");
            ExitCode::FAILURE
        }
    }
}
