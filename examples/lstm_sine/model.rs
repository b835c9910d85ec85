//! The model of `examples/lstm_sine`: an LSTM (input 1, hidden `H`) over
//! windows of `S` steps, a linear head `H → 1` on every step's hidden state
//! predicting the next value, mean squared error, Adam. Parameters,
//! gradients, optimiser state, activations, the saved-for-backward buffer
//! and scratch live in one struct of fixed size: a training step allocates
//! nothing (a test runs it under a counting allocator). `core` only.

use constml::nn::{
    Adam, Cell, Lstm, Param, RnnShape, linear_backward_views_with, linear_views_with, mse_loss,
    recurrent_backward_scratch_len,
};
use constml::{Backend, Error, MatMut, MatRef, Result, Simd};

/// Hidden units.
pub const H: usize = 24;
/// Steps per training window.
pub const S: usize = 32;
/// Windows per batch.
pub const N: usize = 16;
const G: usize = 4;
const SHAPE: RnnShape = RnnShape::new(N, S, 1, H);
const SCRATCH: usize = recurrent_backward_scratch_len(Cell::Lstm, &SHAPE);

/// A batch of input windows `(N, S, 1)`.
pub type Windows = [[[f32; 1]; S]; N];

/// Parameters, gradients, Adam state and the activations of one batch.
pub struct SineModel<B = Simd> {
    /// The LSTM.
    pub lstm: Lstm<f32, 1, H, B>,
    /// The head `(1, H)` and its bias.
    pub head_w: [f32; H],
    pub head_b: [f32; 1],
    grads: Lstm<f32, 1, H, B>,
    dhead_w: [f32; H],
    dhead_b: [f32; 1],
    // Adam's moments, one buffer per tensor (m then v).
    s_ih: [f32; 2 * G * H],
    s_hh: [f32; 2 * G * H * H],
    s_bih: [f32; 2 * G * H],
    s_bhh: [f32; 2 * G * H],
    s_hw: [f32; 2 * H],
    s_hb: [f32; 2],
    out: [[[f32; H]; S]; N],
    saved: [[[[f32; H]; 6]; S]; N],
    pred: [f32; N * S],
    dpred: [f32; N * S],
    dout: [[[f32; H]; S]; N],
    scratch: [f32; SCRATCH],
    adam: Adam<f32>,
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

impl<B: Backend> SineModel<B> {
    /// PyTorch's initialisation (`U(±1/√H)` for every LSTM tensor,
    /// `U(±1/√H)` for the head) from `seed`; Adam with rate `lr`.
    pub fn new(seed: u64, lr: f32) -> Result<Self> {
        let mut s = seed;
        let k = 1.0 / (H as f32).sqrt();
        let mut lstm = Lstm::<f32, 1, H, B>::zeros(Cell::Lstm, true)?;
        let mut init = |v: &mut [f32]| v.iter_mut().for_each(|x| *x = k * unit(&mut s));
        init(lstm.w_ih.as_flattened_mut().as_flattened_mut());
        init(lstm.w_hh.as_flattened_mut().as_flattened_mut());
        for b in [&mut lstm.b_ih, &mut lstm.b_hh].into_iter().flatten() {
            init(b.as_flattened_mut());
        }
        let (mut head_w, mut head_b) = ([0.0; H], [0.0; 1]);
        init(&mut head_w);
        init(&mut head_b);
        Ok(Self {
            lstm,
            head_w,
            head_b,
            grads: Lstm::zeros(Cell::Lstm, true)?,
            dhead_w: [0.0; H],
            dhead_b: [0.0; 1],
            s_ih: [0.0; 2 * G * H],
            s_hh: [0.0; 2 * G * H * H],
            s_bih: [0.0; 2 * G * H],
            s_bhh: [0.0; 2 * G * H],
            s_hw: [0.0; 2 * H],
            s_hb: [0.0; 2],
            out: [[[0.0; H]; S]; N],
            saved: [[[[0.0; H]; 6]; S]; N],
            pred: [0.0; N * S],
            dpred: [0.0; N * S],
            dout: [[[0.0; H]; S]; N],
            scratch: [0.0; SCRATCH],
            adam: Adam::new(lr),
        })
    }

    /// Sets Adam's learning rate (`Err`, model untouched, unless finite and
    /// positive).
    pub fn set_lr(&mut self, lr: f32) -> Result<()> {
        if !(lr.is_finite() && lr > 0.0) {
            return Err(Error::InvalidParameter {
                what: "lstm_sine: learning rate",
                reason: "must be finite and positive",
            });
        }
        self.adam.lr = lr;
        Ok(())
    }

    /// Predictions `(N, S)` for the windows `x`: entry `(n, t)` predicts the
    /// value after `x[n][t]`, from zero initial state.
    pub fn predict(&mut self, x: &Windows) -> Result<&[f32; N * S]> {
        self.lstm.forward(
            x,
            None,
            None,
            &mut self.out,
            None,
            None,
            &mut self.saved,
            &mut self.scratch,
        )?;
        linear_views_with::<B, f32>(
            MatRef::new(self.out.as_flattened().as_flattened(), N * S, H)?,
            MatRef::new(&self.head_w, 1, H)?,
            Some(&self.head_b),
            MatMut::new(&mut self.pred, N * S, 1)?,
        )?;
        Ok(&self.pred)
    }

    /// One Adam step on the mean squared error of the predictions against
    /// `y` (`(N, S)`: the value after each input); returns the loss.
    pub fn train_step(&mut self, x: &Windows, y: &[f32; N * S]) -> Result<f32> {
        self.predict(x)?;
        let loss = mse_loss(&self.pred, y, Some(&mut self.dpred))?;
        self.grads.zero_grad();
        self.dhead_w = [0.0; H];
        self.dhead_b = [0.0; 1];
        linear_backward_views_with::<B, f32>(
            MatRef::new(self.out.as_flattened().as_flattened(), N * S, H)?,
            MatRef::new(&self.head_w, 1, H)?,
            MatRef::new(&self.dpred, N * S, 1)?,
            Some(MatMut::new(
                self.dout.as_flattened_mut().as_flattened_mut(),
                N * S,
                H,
            )?),
            Some(MatMut::new(&mut self.dhead_w, 1, H)?),
            Some(&mut self.dhead_b),
        )?;
        self.lstm.backward(
            x,
            None,
            None,
            &self.out,
            &self.saved,
            Some(&self.dout),
            None,
            None,
            &mut self.grads,
            None,
            None,
            None,
            &mut self.scratch,
        )?;
        let g = &self.grads;
        let (Some(gbi), Some(gbh)) = (g.b_ih.as_ref(), g.b_hh.as_ref()) else {
            return Err(Error::Empty { what: "biases" });
        };
        let l = &mut self.lstm;
        let (Some(bi), Some(bh)) = (l.b_ih.as_mut(), l.b_hh.as_mut()) else {
            return Err(Error::Empty { what: "biases" });
        };
        self.adam.step(&mut [
            Param::new(
                l.w_ih.as_flattened_mut().as_flattened_mut(),
                g.w_ih.as_flattened().as_flattened(),
                &mut self.s_ih,
            ),
            Param::new(
                l.w_hh.as_flattened_mut().as_flattened_mut(),
                g.w_hh.as_flattened().as_flattened(),
                &mut self.s_hh,
            ),
            Param::new(bi.as_flattened_mut(), gbi.as_flattened(), &mut self.s_bih),
            Param::new(bh.as_flattened_mut(), gbh.as_flattened(), &mut self.s_bhh),
            Param::new(&mut self.head_w, &self.dhead_w, &mut self.s_hw),
            Param::new(&mut self.head_b, &self.dhead_b, &mut self.s_hb),
        ])?;
        Ok(loss)
    }
}
