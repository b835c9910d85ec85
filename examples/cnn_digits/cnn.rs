//! The network of `examples/cnn_digits`: 1×8×8 → conv 3×3 (16 channels,
//! padding 1) → BatchNorm2d → ReLU → max-pool 2 → conv 3×3 (32 channels,
//! padding 1) → BatchNorm2d → ReLU → max-pool 2 → linear 128 → 10, trained
//! with AdamW on batches of up to 32. The convolutions have no bias (the
//! BatchNorm after each one removes any); [`Cnn::fold`] folds each eval-mode
//! BatchNorm into its convolution, which then gets a bias. Parameters,
//! gradients, optimiser state, BatchNorm statistics, activations and the
//! im2col scratch live in one struct of fixed size: a training step
//! allocates nothing (a test runs it under a counting allocator). `core`
//! only.

use core::marker::PhantomData;

use constml::nn::{
    Activation, Adam, Conv2dShape, CrossEntropy, Param, Pool2dShape, activation_backward_with,
    activation_forward_with, conv2d_auto_backward_views_with, conv2d_auto_views_with,
    cross_entropy_views_with, im2col_len, linear_backward_views_with, linear_views_with,
    max_pool2d_backward_views, max_pool2d_views,
};
use constml::norm::{
    BatchNormState, BnShape, NormStats, batch_norm_backward_views_with, batch_norm_eval_views_with,
    batch_norm_train_views_with, fold_batch_norm_views,
};
use constml::{Backend, Error, MatMut, MatRef, Result, Simd};

/// Pixels per image (8 × 8).
pub const IN: usize = 64;
/// Classes.
pub const OUT: usize = 10;
/// Largest batch.
pub const BATCH: usize = 32;
const C1: usize = 16;
const C2: usize = 32;
/// Features after the second pool (32 channels × 2 × 2).
const FLAT: usize = C2 * 4;
/// BatchNorm's `eps` and `momentum` (PyTorch's defaults).
const EPS: f32 = 1e-5;
const MOMENTUM: f32 = 0.1;

const W1: usize = C1 * 9;
const W2: usize = C2 * C1 * 9;
const WF: usize = OUT * FLAT;
/// Activation sizes per image.
const A1: usize = C1 * 64; // after conv 1 (8×8)
const P1: usize = C1 * 16; // after pool 1 (4×4)
const A2: usize = C2 * 16; // after conv 2 (4×4)
/// im2col scratch: the larger of the two convolutions' (per image).
const SCRATCH: usize = {
    let (a, b) = (im2col_len(1, 3, 3, 8, 8), im2col_len(C1, 3, 3, 4, 4));
    if a > b { a } else { b }
};

/// Gradients of the eight trained tensors: conv 1, its BatchNorm's `γ`,
/// `β`, conv 2, its `γ`, `β`, the linear weight and bias.
type Grads = (
    [f32; W1],
    [f32; C1],
    [f32; C1],
    [f32; W2],
    [f32; C2],
    [f32; C2],
    [f32; WF],
    [f32; OUT],
);
/// AdamW's moments of the same tensors (`m` then `v` each).
type States = (
    [f32; 2 * W1],
    [f32; 2 * C1],
    [f32; 2 * C1],
    [f32; 2 * W2],
    [f32; 2 * C2],
    [f32; 2 * C2],
    [f32; 2 * WF],
    [f32; 2 * OUT],
);

/// Parameters, gradients, Adam state and the activations of a batch.
#[derive(Clone)]
pub struct Cnn<B = Simd> {
    /// Conv 1 `(16, 1, 3, 3)`; its bias stays 0 until [`Cnn::fold`].
    pub c1w: [f32; W1],
    pub c1b: [f32; C1],
    /// BatchNorm 1: `γ`, `β` and running statistics.
    pub bn1w: [f32; C1],
    pub bn1b: [f32; C1],
    pub bn1: BatchNormState<f32, C1>,
    /// Conv 2 `(32, 16, 3, 3)` and its (folded) bias.
    pub c2w: [f32; W2],
    pub c2b: [f32; C2],
    /// BatchNorm 2.
    pub bn2w: [f32; C2],
    pub bn2b: [f32; C2],
    pub bn2: BatchNormState<f32, C2>,
    /// Linear `(10, 128)` and bias.
    pub fw: [f32; WF],
    pub fb: [f32; OUT],
    /// Whether the BatchNorms have been folded into the convolutions.
    folded: bool,
    g: Grads,
    s: States,
    h1: [f32; BATCH * A1],
    z1: [f32; BATCH * A1],
    a1: [f32; BATCH * A1],
    m1: [f32; BATCH * P1],
    i1: [usize; BATCH * P1],
    h2: [f32; BATCH * A2],
    z2: [f32; BATCH * A2],
    a2: [f32; BATCH * A2],
    m2: [f32; BATCH * FLAT],
    i2: [usize; BATCH * FLAT],
    logits: [f32; BATCH * OUT],
    // BatchNorm batch statistics saved for backward (mean, 1/std).
    st1: ([f32; C1], [f32; C1]),
    st2: ([f32; C2], [f32; C2]),
    // Backward buffers (dlogits, dm2, da2, dz2, dh2, dm1, da1, dz1, dh1).
    dl: [f32; BATCH * OUT],
    dm2: [f32; BATCH * FLAT],
    da2: [f32; BATCH * A2],
    dz2: [f32; BATCH * A2],
    dh2: [f32; BATCH * A2],
    dm1: [f32; BATCH * P1],
    da1: [f32; BATCH * A1],
    dz1: [f32; BATCH * A1],
    dh1: [f32; BATCH * A1],
    scratch: [f32; SCRATCH],
    adam: Adam<f32>,
    _b: PhantomData<B>,
}

/// SplitMix64 draws in `[-1, 1)`.
fn unit(state: &mut u64) -> f32 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    ((z >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
}

fn conv1(n: usize) -> Conv2dShape {
    Conv2dShape::new(n, 1, 8, 8, C1, 3, 3).padding(1, 1)
}
fn pool1(n: usize) -> Pool2dShape {
    Pool2dShape::new(n, C1, 8, 8, 2, 2)
}
fn conv2(n: usize) -> Conv2dShape {
    Conv2dShape::new(n, C1, 4, 4, C2, 3, 3).padding(1, 1)
}
fn pool2(n: usize) -> Pool2dShape {
    Pool2dShape::new(n, C2, 4, 4, 2, 2)
}

/// A BatchNorm's `γ`, `β` and running mean, variance and batch count.
type BnArgs<'a> = (
    &'a [f32],
    &'a [f32],
    &'a mut [f32],
    &'a mut [f32],
    &'a mut u64,
);

/// Conv (no bias unless folded) → BatchNorm (train, eval, or skipped when
/// folded) → ReLU, from `x` into `h` (conv), `z` (norm) and `a` (ReLU).
#[allow(clippy::too_many_arguments)]
fn conv_bn_relu<B: Backend>(
    x: &[f32],
    shape: &Conv2dShape,
    w: &[f32],
    bias: Option<&[f32]>,
    bn: Option<BnArgs<'_>>,
    train: Option<(&mut [f32], &mut [f32])>,
    (h, z, a): (&mut [f32], &mut [f32], &mut [f32]),
    scratch: &mut [f32],
) -> Result<()> {
    conv2d_auto_views_with::<B, f32>(x, shape, w, bias, h, scratch)?;
    let (oh, ow) = shape.output()?;
    let bs = BnShape::new(shape.n, shape.c_out, oh * ow);
    match (bn, train) {
        (None, _) => z.copy_from_slice(h),
        (Some((g, b, mean, var, batches)), Some((sm, sr))) => {
            let running = constml::norm::RunningStats { mean, var, batches };
            batch_norm_train_views_with::<B, f32>(
                h,
                bs,
                z,
                Some(g),
                Some(b),
                EPS,
                Some(MOMENTUM),
                Some(running),
                Some(NormStats::new(sm, sr)),
            )?
        }
        (Some((g, b, mean, var, _)), None) => {
            batch_norm_eval_views_with::<B, f32>(h, bs, z, Some(g), Some(b), EPS, mean, var)?
        }
    }
    activation_forward_with::<B, f32>(Activation::Relu, z, a)
}

impl<B: Backend> Cnn<B> {
    /// PyTorch's default initialisation (`U(±1/√fan_in)` weights, BatchNorm
    /// `γ = 1`, `β = 0`) from `seed`; AdamW (decoupled decay 0.01, PyTorch's
    /// default) with rate `lr`.
    pub fn new(seed: u64, lr: f32) -> Self {
        let mut s = seed;
        let mut net = Self {
            c1w: [0.0; W1],
            c1b: [0.0; C1],
            bn1w: [1.0; C1],
            bn1b: [0.0; C1],
            bn1: BatchNormState::new(),
            c2w: [0.0; W2],
            c2b: [0.0; C2],
            bn2w: [1.0; C2],
            bn2b: [0.0; C2],
            bn2: BatchNormState::new(),
            fw: [0.0; WF],
            fb: [0.0; OUT],
            folded: false,
            g: (
                [0.0; W1], [0.0; C1], [0.0; C1], [0.0; W2], [0.0; C2], [0.0; C2], [0.0; WF],
                [0.0; OUT],
            ),
            s: (
                [0.0; 2 * W1],
                [0.0; 2 * C1],
                [0.0; 2 * C1],
                [0.0; 2 * W2],
                [0.0; 2 * C2],
                [0.0; 2 * C2],
                [0.0; 2 * WF],
                [0.0; 2 * OUT],
            ),
            h1: [0.0; BATCH * A1],
            z1: [0.0; BATCH * A1],
            a1: [0.0; BATCH * A1],
            m1: [0.0; BATCH * P1],
            i1: [0; BATCH * P1],
            h2: [0.0; BATCH * A2],
            z2: [0.0; BATCH * A2],
            a2: [0.0; BATCH * A2],
            m2: [0.0; BATCH * FLAT],
            i2: [0; BATCH * FLAT],
            logits: [0.0; BATCH * OUT],
            st1: ([0.0; C1], [0.0; C1]),
            st2: ([0.0; C2], [0.0; C2]),
            dl: [0.0; BATCH * OUT],
            dm2: [0.0; BATCH * FLAT],
            da2: [0.0; BATCH * A2],
            dz2: [0.0; BATCH * A2],
            dh2: [0.0; BATCH * A2],
            dm1: [0.0; BATCH * P1],
            da1: [0.0; BATCH * A1],
            dz1: [0.0; BATCH * A1],
            dh1: [0.0; BATCH * A1],
            scratch: [0.0; SCRATCH],
            adam: Adam::adamw(lr),
            _b: PhantomData,
        };
        let init = |v: &mut [f32], fan_in: usize, s: &mut u64| {
            let k = 1.0 / (fan_in as f32).sqrt();
            for x in v {
                *x = k * unit(s);
            }
        };
        init(&mut net.c1w, 9, &mut s);
        init(&mut net.c2w, C1 * 9, &mut s);
        init(&mut net.fw, FLAT, &mut s);
        init(&mut net.fb, FLAT, &mut s);
        net
    }

    /// Sets Adam's learning rate.
    pub fn set_lr(&mut self, lr: f32) {
        self.adam.lr = lr;
    }

    /// Forward pass of `n ≤ BATCH` images `x` (`n·64` pixels), BatchNorm in
    /// training mode (batch statistics; running statistics updated) when
    /// `train`, else in eval mode (running statistics); the logits are the
    /// first `n·10` of [`logits`](Self::logits).
    pub fn forward(&mut self, x: &[f32], n: usize, train: bool) -> Result<()> {
        if n == 0 || n > BATCH || x.len() < n * IN {
            return Err(Error::InvalidParameter {
                what: "cnn: batch",
                reason: "1..=BATCH images",
            });
        }
        let folded = self.folded;
        let bias1 = folded.then_some(&self.c1b[..]);
        let bn1 = (!folded).then_some((
            &self.bn1w[..],
            &self.bn1b[..],
            &mut self.bn1.running_mean[..],
            &mut self.bn1.running_var[..],
            &mut self.bn1.num_batches_tracked,
        ));
        conv_bn_relu::<B>(
            &x[..n * IN],
            &conv1(n),
            &self.c1w,
            bias1,
            bn1,
            train.then_some((&mut self.st1.0[..], &mut self.st1.1[..])),
            (
                &mut self.h1[..n * A1],
                &mut self.z1[..n * A1],
                &mut self.a1[..n * A1],
            ),
            &mut self.scratch,
        )?;
        max_pool2d_views(
            &self.a1[..n * A1],
            &pool1(n),
            &mut self.m1[..n * P1],
            &mut self.i1[..n * P1],
        )?;
        let bias2 = folded.then_some(&self.c2b[..]);
        let bn2 = (!folded).then_some((
            &self.bn2w[..],
            &self.bn2b[..],
            &mut self.bn2.running_mean[..],
            &mut self.bn2.running_var[..],
            &mut self.bn2.num_batches_tracked,
        ));
        conv_bn_relu::<B>(
            &self.m1[..n * P1],
            &conv2(n),
            &self.c2w,
            bias2,
            bn2,
            train.then_some((&mut self.st2.0[..], &mut self.st2.1[..])),
            (
                &mut self.h2[..n * A2],
                &mut self.z2[..n * A2],
                &mut self.a2[..n * A2],
            ),
            &mut self.scratch,
        )?;
        max_pool2d_views(
            &self.a2[..n * A2],
            &pool2(n),
            &mut self.m2[..n * FLAT],
            &mut self.i2[..n * FLAT],
        )?;
        linear_views_with::<B, f32>(
            MatRef::new(&self.m2[..n * FLAT], n, FLAT)?,
            MatRef::new(&self.fw, OUT, FLAT)?,
            Some(&self.fb),
            MatMut::new(&mut self.logits[..n * OUT], n, OUT)?,
        )
    }

    /// The logits of the last forward pass.
    pub fn logits(&self) -> &[f32] {
        &self.logits
    }

    /// Folds each BatchNorm (eval mode: running statistics) into the
    /// convolution before it (`w ← w·γ/√(var + eps)`, `b ← (0 − μ)·γ/√(var +
    /// eps) + β`); later forward passes skip the BatchNorms and compute what
    /// the eval-mode network computed, up to rounding.
    pub fn fold(&mut self) -> Result<()> {
        if self.folded {
            return Ok(());
        }
        fold_batch_norm_views(
            MatMut::new(&mut self.c1w, C1, 9)?,
            &mut self.c1b,
            Some(&self.bn1w),
            Some(&self.bn1b),
            EPS,
            &self.bn1.running_mean,
            &self.bn1.running_var,
        )?;
        fold_batch_norm_views(
            MatMut::new(&mut self.c2w, C2, C1 * 9)?,
            &mut self.c2b,
            Some(&self.bn2w),
            Some(&self.bn2b),
            EPS,
            &self.bn2.running_mean,
            &self.bn2.running_var,
        )?;
        self.folded = true;
        Ok(())
    }

    /// One training step on `n` images with labels `y`; returns the loss
    /// (`Err` once the BatchNorms are folded).
    pub fn train_step(&mut self, x: &[f32], y: &[usize], n: usize) -> Result<f32> {
        if self.folded {
            return Err(Error::InvalidParameter {
                what: "cnn: train_step",
                reason: "the BatchNorms are folded (an inference-only network)",
            });
        }
        // Check the labels before the forward pass updates the running statistics.
        let labels = y.get(..n).ok_or(Error::Empty { what: "labels" })?;
        if labels.iter().any(|&l| l >= OUT) {
            return Err(Error::InvalidParameter {
                what: "cnn: label",
                reason: "must be below the class count",
            });
        }
        self.forward(x, n, true)?;
        let loss = cross_entropy_views_with::<B, f32>(
            MatRef::new(&self.logits[..n * OUT], n, OUT)?,
            labels,
            &CrossEntropy::default(),
            Some(MatMut::new(&mut self.dl[..n * OUT], n, OUT)?),
        )?;
        let g = &mut self.g;
        for t in [
            &mut g.0[..],
            &mut g.1,
            &mut g.2,
            &mut g.3,
            &mut g.4,
            &mut g.5,
            &mut g.6,
            &mut g.7,
        ] {
            t.fill(0.0);
        }
        linear_backward_views_with::<B, f32>(
            MatRef::new(&self.m2[..n * FLAT], n, FLAT)?,
            MatRef::new(&self.fw, OUT, FLAT)?,
            MatRef::new(&self.dl[..n * OUT], n, OUT)?,
            Some(MatMut::new(&mut self.dm2[..n * FLAT], n, FLAT)?),
            Some(MatMut::new(&mut g.6, OUT, FLAT)?),
            Some(&mut g.7),
        )?;
        max_pool2d_backward_views(
            &pool2(n),
            &self.dm2[..n * FLAT],
            &self.i2[..n * FLAT],
            &mut self.da2[..n * A2],
        )?;
        activation_backward_with::<B, f32>(
            Activation::Relu,
            &self.z2[..n * A2],
            &self.a2[..n * A2],
            &self.da2[..n * A2],
            &mut self.dz2[..n * A2],
        )?;
        batch_norm_backward_views_with::<B, f32>(
            &self.h2[..n * A2],
            BnShape::new(n, C2, 16),
            &self.dz2[..n * A2],
            &mut self.dh2[..n * A2],
            Some(&self.bn2w),
            EPS,
            Some((&self.st2.0, &self.st2.1)),
            Some(&mut g.4),
            Some(&mut g.5),
        )?;
        conv2d_auto_backward_views_with::<B, f32>(
            &self.m1[..n * P1],
            &conv2(n),
            &self.c2w,
            &self.dh2[..n * A2],
            Some(&mut self.dm1[..n * P1]),
            Some(&mut g.3),
            None,
            &mut self.scratch,
        )?;
        max_pool2d_backward_views(
            &pool1(n),
            &self.dm1[..n * P1],
            &self.i1[..n * P1],
            &mut self.da1[..n * A1],
        )?;
        activation_backward_with::<B, f32>(
            Activation::Relu,
            &self.z1[..n * A1],
            &self.a1[..n * A1],
            &self.da1[..n * A1],
            &mut self.dz1[..n * A1],
        )?;
        batch_norm_backward_views_with::<B, f32>(
            &self.h1[..n * A1],
            BnShape::new(n, C1, 64),
            &self.dz1[..n * A1],
            &mut self.dh1[..n * A1],
            Some(&self.bn1w),
            EPS,
            Some((&self.st1.0, &self.st1.1)),
            Some(&mut g.1),
            Some(&mut g.2),
        )?;
        conv2d_auto_backward_views_with::<B, f32>(
            &x[..n * IN],
            &conv1(n),
            &self.c1w,
            &self.dh1[..n * A1],
            None,
            Some(&mut g.0),
            None,
            &mut self.scratch,
        )?;
        let s = &mut self.s;
        self.adam.step(&mut [
            Param::new(&mut self.c1w, &g.0, &mut s.0),
            Param::new(&mut self.bn1w, &g.1, &mut s.1),
            Param::new(&mut self.bn1b, &g.2, &mut s.2),
            Param::new(&mut self.c2w, &g.3, &mut s.3),
            Param::new(&mut self.bn2w, &g.4, &mut s.4),
            Param::new(&mut self.bn2b, &g.5, &mut s.5),
            Param::new(&mut self.fw, &g.6, &mut s.6),
            Param::new(&mut self.fb, &g.7, &mut s.7),
        ])?;
        Ok(loss)
    }
}
