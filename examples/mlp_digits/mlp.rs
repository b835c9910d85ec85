//! The network of `examples/mlp_digits`: 64 inputs → 128 hidden units (ReLU)
//! → 10 logits, trained with Adam on mini-batches of up to 32 images. All
//! parameters, gradients, optimiser state and activations live in one
//! struct of fixed size, so a training step allocates nothing (a test runs
//! it under a counting allocator); everything here is `core` only.

use core::marker::PhantomData;

use constml::nn::{
    Activation, Adam, CrossEntropy, Param, activation_backward_with, activation_forward_with,
    cross_entropy_views_with, linear_backward_views_with, linear_views_with,
};
use constml::{Backend, Error, MatMut, MatRef, Result, Simd};

/// Input features (8 × 8 pixels).
pub const IN: usize = 64;
/// Hidden units.
pub const HIDDEN: usize = 128;
/// Classes.
pub const OUT: usize = 10;
/// Largest batch.
pub const BATCH: usize = 32;

/// Parameters, their gradients, Adam's state and the activations of a batch;
/// the kernels run on backend `B`.
pub struct Mlp<B = Simd> {
    /// First layer `(HIDDEN, IN)` and its bias.
    pub w1: [[f32; IN]; HIDDEN],
    pub b1: [f32; HIDDEN],
    /// Second layer `(OUT, HIDDEN)` and its bias.
    pub w2: [[f32; HIDDEN]; OUT],
    pub b2: [f32; OUT],
    g_w1: [[f32; IN]; HIDDEN],
    g_b1: [f32; HIDDEN],
    g_w2: [[f32; HIDDEN]; OUT],
    g_b2: [f32; OUT],
    s_w1: [f32; 2 * HIDDEN * IN],
    s_b1: [f32; 2 * HIDDEN],
    s_w2: [f32; 2 * OUT * HIDDEN],
    s_b2: [f32; 2 * OUT],
    pre: [[f32; HIDDEN]; BATCH],
    act: [[f32; HIDDEN]; BATCH],
    logits: [[f32; OUT]; BATCH],
    d_logits: [[f32; OUT]; BATCH],
    d_act: [[f32; HIDDEN]; BATCH],
    d_pre: [[f32; HIDDEN]; BATCH],
    adam: Adam<f32>,
    _b: PhantomData<B>,
}

/// A deterministic uniform draw in `[-1, 1)` from a 64-bit state (SplitMix64).
fn unit(state: &mut u64) -> f32 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    ((z >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
}

/// Rows `0..n` of a batch array as a view.
fn rows<const C: usize>(a: &[[f32; C]], n: usize) -> Result<MatRef<'_, f32>> {
    MatRef::new(
        a.get(..n)
            .ok_or(Error::Empty { what: "batch" })?
            .as_flattened(),
        n,
        C,
    )
}

fn rows_mut<const C: usize>(a: &mut [[f32; C]], n: usize) -> Result<MatMut<'_, f32>> {
    MatMut::new(
        a.get_mut(..n)
            .ok_or(Error::Empty { what: "batch" })?
            .as_flattened_mut(),
        n,
        C,
    )
}

impl<B: Backend> Mlp<B> {
    /// PyTorch's `nn.Linear` initialisation, `U(−1/√fan_in, 1/√fan_in)` for
    /// weights and biases, from `seed`; Adam with learning rate `lr`.
    pub fn new(seed: u64, lr: f32) -> Self {
        let mut s = seed;
        let k1 = 1.0 / (IN as f32).sqrt();
        let k2 = 1.0 / (HIDDEN as f32).sqrt();
        let mut m = Self {
            w1: [[0.0; IN]; HIDDEN],
            b1: [0.0; HIDDEN],
            w2: [[0.0; HIDDEN]; OUT],
            b2: [0.0; OUT],
            g_w1: [[0.0; IN]; HIDDEN],
            g_b1: [0.0; HIDDEN],
            g_w2: [[0.0; HIDDEN]; OUT],
            g_b2: [0.0; OUT],
            s_w1: [0.0; 2 * HIDDEN * IN],
            s_b1: [0.0; 2 * HIDDEN],
            s_w2: [0.0; 2 * OUT * HIDDEN],
            s_b2: [0.0; 2 * OUT],
            pre: [[0.0; HIDDEN]; BATCH],
            act: [[0.0; HIDDEN]; BATCH],
            logits: [[0.0; OUT]; BATCH],
            d_logits: [[0.0; OUT]; BATCH],
            d_act: [[0.0; HIDDEN]; BATCH],
            d_pre: [[0.0; HIDDEN]; BATCH],
            adam: Adam::new(lr),
            _b: PhantomData,
        };
        for v in m.w1.as_flattened_mut().iter_mut().chain(m.b1.iter_mut()) {
            *v = k1 * unit(&mut s);
        }
        for v in m.w2.as_flattened_mut().iter_mut().chain(m.b2.iter_mut()) {
            *v = k2 * unit(&mut s);
        }
        m
    }

    /// Forward pass of `n ≤ BATCH` images; the logits are `self.logits()`.
    pub fn forward(&mut self, x: &[[f32; IN]], n: usize) -> Result<()> {
        if n > BATCH || n > x.len() {
            return Err(Error::InvalidParameter {
                what: "mlp: batch",
                reason: "at most BATCH images",
            });
        }
        linear_views_with::<B, f32>(
            rows(x, n)?,
            MatRef::from_array(&self.w1),
            Some(&self.b1),
            rows_mut(&mut self.pre, n)?,
        )?;
        activation_forward_with::<B, f32>(
            Activation::Relu,
            self.pre[..n].as_flattened(),
            self.act[..n].as_flattened_mut(),
        )?;
        linear_views_with::<B, f32>(
            rows(&self.act, n)?,
            MatRef::from_array(&self.w2),
            Some(&self.b2),
            rows_mut(&mut self.logits, n)?,
        )
    }

    /// Sets Adam's learning rate (for a schedule).
    pub fn set_lr(&mut self, lr: f32) {
        self.adam.lr = lr;
    }

    /// The logits of the last forward pass (`n` rows are valid).
    pub fn logits(&self) -> &[[f32; OUT]; BATCH] {
        &self.logits
    }

    /// One training step on `n` images with labels `y`: forward,
    /// cross-entropy (mean), backward, Adam. Returns the batch loss.
    pub fn train_step(&mut self, x: &[[f32; IN]], y: &[usize], n: usize) -> Result<f32> {
        self.forward(x, n)?;
        let labels = y.get(..n).ok_or(Error::Empty { what: "labels" })?;
        let loss = cross_entropy_views_with::<B, f32>(
            rows(&self.logits, n)?,
            labels,
            &CrossEntropy::default(),
            Some(rows_mut(&mut self.d_logits, n)?),
        )?;
        self.g_w1 = [[0.0; IN]; HIDDEN];
        self.g_b1 = [0.0; HIDDEN];
        self.g_w2 = [[0.0; HIDDEN]; OUT];
        self.g_b2 = [0.0; OUT];
        linear_backward_views_with::<B, f32>(
            rows(&self.act, n)?,
            MatRef::from_array(&self.w2),
            rows(&self.d_logits, n)?,
            Some(rows_mut(&mut self.d_act, n)?),
            Some(MatMut::from_array(&mut self.g_w2)),
            Some(&mut self.g_b2),
        )?;
        activation_backward_with::<B, f32>(
            Activation::Relu,
            self.pre[..n].as_flattened(),
            self.act[..n].as_flattened(),
            self.d_act[..n].as_flattened(),
            self.d_pre[..n].as_flattened_mut(),
        )?;
        linear_backward_views_with::<B, f32>(
            rows(x, n)?,
            MatRef::from_array(&self.w1),
            rows(&self.d_pre, n)?,
            None,
            Some(MatMut::from_array(&mut self.g_w1)),
            Some(&mut self.g_b1),
        )?;
        self.adam.step(&mut [
            Param::new(
                self.w1.as_flattened_mut(),
                self.g_w1.as_flattened(),
                &mut self.s_w1,
            ),
            Param::new(&mut self.b1, &self.g_b1, &mut self.s_b1),
            Param::new(
                self.w2.as_flattened_mut(),
                self.g_w2.as_flattened(),
                &mut self.s_w2,
            ),
            Param::new(&mut self.b2, &self.g_b2, &mut self.s_b2),
        ])?;
        Ok(loss)
    }
}
