//! Recurrent layers — RNN (tanh, ReLU), LSTM and GRU with PyTorch
//! semantics — over whole sequences, forward and backpropagation through
//! time (BPTT), and a single step. The cells' equations are in [`rnn`],
//! [`lstm`] and [`gru`]; this module holds the shapes, the sequence driver
//! and the three faces.
//!
//! # Layout (PyTorch, `batch_first=True`, one layer)
//!
//! | tensor | shape |
//! |---|---|
//! | input `x` | `(N, S, I)` |
//! | output `out` (every `h_t`) | `(N, S, H)` |
//! | initial / final state `h0`, `h_n` (and `c0`, `c_n` for LSTM) | `(N, H)` (PyTorch's `(1, N, H)`) |
//! | `w_ih` | `(G·H, I)`, gate blocks stacked (`weight_ih_l0`) |
//! | `w_hh` | `(G·H, H)` (`weight_hh_l0`) |
//! | `b_ih`, `b_hh` | `G·H` each, both optional (`bias=False`) |
//!
//! `G` is 1 (RNN), 4 (LSTM: `i, f, g, o`) or 3 (GRU: `r, z, n`). A missing
//! initial state is zeros. Stacked layers are composition: the `out` of one
//! layer is the `x` of the next.
//!
//! # Computation
//!
//! Forward: the input projections of all `N·S` positions in one matrix
//! product (`X·W_ihᵀ`), then per step one product `h·W_hhᵀ` for the whole
//! batch and the cell's elementwise update fused per gate block. What
//! backward needs is written to a caller-owned `saved` buffer
//! ([`recurrent_saved_len`]: 6 blocks of `H` per position for LSTM, 4 for
//! GRU, none for RNN — the outputs suffice).
//!
//! Backward walks the steps in reverse: the gate gradients of every step are
//! collected in the scratch ([`recurrent_backward_scratch_len`]); per step
//! one product sends them back to the previous hidden state; after the loop
//! `dW_hh` takes one product per sequence (its steps against the hidden
//! states before them), and `dW_ih`, `db_ih` and `dx` one product each over
//! all positions. Parameter gradients **add** into caller
//! storage ([`RecurrentGrads`]); `dx`, `dh0`, `dc0` are written.
//!
//! Errors: an empty batch or sequence ([`Error::Empty`]), a zero input or
//! hidden size, buffers whose lengths disagree with the shape, a cell state
//! for a cell without one — all checked before anything is written.
//!
//! ```
//! use constml::nn::{recurrent_forward_views, recurrent_forward_scratch_len,
//!     recurrent_saved_len, Cell, RecurrentParams, RnnShape};
//! // One LSTM unit (H 1, I 1), weights 0 except the cell input g's: W_ig = 1.
//! let (w_ih, w_hh) = ([0.0f32, 0.0, 1.0, 0.0], [0.0f32; 4]);
//! let p = RecurrentParams::new(Cell::Lstm, &w_ih, &w_hh, None, None);
//! let shape = RnnShape::new(1, 2, 1, 1);
//! let mut out = [0.0f32; 2];
//! let mut saved = vec![0.0f32; recurrent_saved_len(Cell::Lstm, &shape)];
//! let mut scratch = vec![0.0f32; recurrent_forward_scratch_len(Cell::Lstm, &shape)];
//! recurrent_forward_views(&p, &shape, &[1.0, 1.0], None, None, &mut out, None, None,
//!     &mut saved, &mut scratch)?;
//! // i = f = o = σ(0) = ½, g = tanh(1): c1 = g/2, c2 = c1/2 + g/2.
//! let g = 1.0f32.tanh();
//! let (c1, c2) = (g / 2.0, g / 4.0 + g / 2.0);
//! assert!((out[0] - c1.tanh() / 2.0).abs() < 1e-6);
//! assert!((out[1] - c2.tanh() / 2.0).abs() < 1e-6);
//! # Ok::<(), constml::Error>(())
//! ```

use super::{gru, lstm, rnn};
use crate::backend::{Accumulate, Backend};
use crate::error::{Error, Result, check_len};
use crate::mat::{MatMut, MatRef};
use crate::real::Real;

/// Which recurrent cell.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Cell {
    /// `nn.RNN(nonlinearity='tanh')`.
    RnnTanh,
    /// `nn.RNN(nonlinearity='relu')`.
    RnnRelu,
    /// `nn.LSTM`: gates `i, f, g, o`, a cell state.
    Lstm,
    /// `nn.GRU`: gates `r, z, n`.
    Gru,
}

impl Cell {
    /// Gate blocks `G` stacked in the weights: 1, 4 (LSTM) or 3 (GRU).
    pub const fn gates(self) -> usize {
        match self {
            Cell::RnnTanh | Cell::RnnRelu => 1,
            Cell::Lstm => 4,
            Cell::Gru => 3,
        }
    }
    /// Blocks of `H` saved per position for backward: 0 (RNN), 6 (LSTM:
    /// `i f g o c tanh(c)`), 4 (GRU: `r z n`, `W_hn·h + b_hn`).
    pub const fn saved_blocks(self) -> usize {
        match self {
            Cell::RnnTanh | Cell::RnnRelu => 0,
            Cell::Lstm => 6,
            Cell::Gru => 4,
        }
    }
    /// Whether the cell carries a cell state `c` (LSTM).
    pub const fn has_cell_state(self) -> bool {
        matches!(self, Cell::Lstm)
    }
}

/// The sizes of a batch of sequences: batch `N`, steps `S`, input `I`,
/// hidden `H`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RnnShape {
    /// Batch `N`.
    pub batch: usize,
    /// Sequence length `S`.
    pub seq: usize,
    /// Input features `I`.
    pub input: usize,
    /// Hidden features `H`.
    pub hidden: usize,
}

impl RnnShape {
    /// `(N, S, I, H)`.
    pub const fn new(batch: usize, seq: usize, input: usize, hidden: usize) -> Self {
        Self {
            batch,
            seq,
            input,
            hidden,
        }
    }

    /// `Err` for an empty batch or sequence, a zero input or hidden size, or
    /// sizes whose buffers would overflow `usize`.
    pub fn check(&self, cell: Cell) -> Result<()> {
        if self.batch == 0 || self.seq == 0 {
            return Err(Error::Empty {
                what: "recurrent: batch or sequence",
            });
        }
        if self.input == 0 || self.hidden == 0 {
            return Err(Error::InvalidParameter {
                what: "recurrent: input or hidden size",
                reason: "must be at least 1",
            });
        }
        let widest = self.input.max(
            self.hidden
                .saturating_mul(cell.saved_blocks().max(cell.gates() + 1)),
        );
        let sizes = [
            self.batch.checked_mul(self.seq),
            self.hidden.checked_mul(self.hidden.max(self.input)),
        ];
        match sizes {
            [Some(pos), Some(w)]
                if pos.checked_mul(widest).is_some()
                    && w.checked_mul(cell.gates()).is_some()
                    && widest < usize::MAX =>
            {
                Ok(())
            }
            _ => Err(Error::InvalidParameter {
                what: "recurrent: shape",
                reason: "sizes overflow usize",
            }),
        }
    }
}

/// Elements of the `saved` buffer a forward pass fills for backward:
/// `N·S·H·`[`Cell::saved_blocks`] (saturating).
pub const fn recurrent_saved_len(cell: Cell, shape: &RnnShape) -> usize {
    shape
        .batch
        .saturating_mul(shape.seq)
        .saturating_mul(shape.hidden)
        .saturating_mul(cell.saved_blocks())
}

/// Scratch elements of a forward pass: `N·(G + 1)·H` (saturating).
pub const fn recurrent_forward_scratch_len(cell: Cell, shape: &RnnShape) -> usize {
    shape
        .batch
        .saturating_mul(cell.gates() + 1)
        .saturating_mul(shape.hidden)
}

/// Scratch elements of a backward pass: the gate gradients of every
/// position (twice for GRU, whose hidden side differs from its input side)
/// and three per-step rows, `N·S·G·H·(1 + [GRU]) + 3·N·H` (saturating).
pub const fn recurrent_backward_scratch_len(cell: Cell, shape: &RnnShape) -> usize {
    let nh = shape.batch.saturating_mul(shape.hidden);
    let copies = if matches!(cell, Cell::Gru) { 2 } else { 1 };
    nh.saturating_mul(shape.seq)
        .saturating_mul(cell.gates())
        .saturating_mul(copies)
        .saturating_add(nh.saturating_mul(3))
}

/// Scratch elements of [`recurrent_step_views_with`]: one forward pass of
/// one step, its output and saved buffer (saturating).
pub const fn recurrent_step_scratch_len(cell: Cell, batch: usize, hidden: usize) -> usize {
    let s = RnnShape::new(batch, 1, 1, hidden);
    recurrent_forward_scratch_len(cell, &s)
        .saturating_add(recurrent_saved_len(cell, &s))
        .saturating_add(batch.saturating_mul(hidden))
}

/// A recurrent layer's parameters (views): weights `(G·H, I)` and `(G·H,
/// H)` row-major, optional biases `G·H`.
#[derive(Clone, Copy, Debug)]
pub struct RecurrentParams<'a, T> {
    /// Which cell.
    pub cell: Cell,
    /// `weight_ih_l0`, `(G·H, I)`.
    pub w_ih: &'a [T],
    /// `weight_hh_l0`, `(G·H, H)`.
    pub w_hh: &'a [T],
    /// `bias_ih_l0`, `G·H`.
    pub b_ih: Option<&'a [T]>,
    /// `bias_hh_l0`, `G·H`.
    pub b_hh: Option<&'a [T]>,
}

impl<'a, T: Real> RecurrentParams<'a, T> {
    /// The parameters of `cell`.
    pub const fn new(
        cell: Cell,
        w_ih: &'a [T],
        w_hh: &'a [T],
        b_ih: Option<&'a [T]>,
        b_hh: Option<&'a [T]>,
    ) -> Self {
        Self {
            cell,
            w_ih,
            w_hh,
            b_ih,
            b_hh,
        }
    }

    fn check(&self, shape: &RnnShape) -> Result<()> {
        shape.check(self.cell)?;
        let gh = self.cell.gates() * shape.hidden;
        check_len("recurrent: w_ih", gh * shape.input, self.w_ih.len())?;
        check_len("recurrent: w_hh", gh * shape.hidden, self.w_hh.len())?;
        if let Some(b) = self.b_ih {
            check_len("recurrent: b_ih", gh, b.len())?;
        }
        if let Some(b) = self.b_hh {
            check_len("recurrent: b_hh", gh, b.len())?;
        }
        Ok(())
    }
}

/// Parameter gradients of a recurrent layer, **added** into (shapes as in
/// [`RecurrentParams`]); a bias gradient is skipped when `None`.
#[derive(Debug)]
pub struct RecurrentGrads<'a, T> {
    /// `dW_ih`.
    pub dw_ih: &'a mut [T],
    /// `dW_hh`.
    pub dw_hh: &'a mut [T],
    /// `db_ih`.
    pub db_ih: Option<&'a mut [T]>,
    /// `db_hh`.
    pub db_hh: Option<&'a mut [T]>,
}

impl<T: Real> RecurrentGrads<'_, T> {
    fn check(&self, p: &RecurrentParams<'_, T>, shape: &RnnShape) -> Result<()> {
        check_len("recurrent: dw_ih", p.w_ih.len(), self.dw_ih.len())?;
        check_len("recurrent: dw_hh", p.w_hh.len(), self.dw_hh.len())?;
        let gh = p.cell.gates() * shape.hidden;
        opt_len("recurrent: db_ih", gh, self.db_ih.as_deref())?;
        opt_len("recurrent: db_hh", gh, self.db_hh.as_deref())
    }
}

fn opt_len<T>(what: &'static str, want: usize, v: Option<&[T]>) -> Result<()> {
    match v {
        Some(v) => check_len(what, want, v.len()),
        None => Ok(()),
    }
}

fn no_cell_state<T>(cell: Cell, what: &'static str, v: Option<&[T]>) -> Result<()> {
    if v.is_some() && !cell.has_cell_state() {
        return Err(Error::InvalidParameter {
            what,
            reason: "only an LSTM has a cell state",
        });
    }
    Ok(())
}

fn prefix<'s, T>(what: &'static str, need: usize, buf: &'s mut [T]) -> Result<&'s mut [T]> {
    let found = buf.len();
    buf.get_mut(..need).ok_or(Error::BufferTooSmall {
        what,
        needed: need,
        found,
    })
}

/// Adds `b` to every row of the `(rows, b.len())` view `m`.
fn add_rows<B: Backend, T: Real>(m: &mut MatMut<'_, T>, b: Option<&[T]>) {
    if let Some(b) = b {
        for r in 0..m.rows() {
            B::raw_zip(m.row_mut_or_empty(r), b, false);
        }
    }
}

crate::simd_default!(recurrent_forward_views => recurrent_forward_views_with<T: Real>(params: &RecurrentParams<'_, T>, shape: &RnnShape, x: &[T], h0: Option<&[T]>, c0: Option<&[T]>, out: &mut [T], h_n: Option<&mut [T]>, c_n: Option<&mut [T]>, saved: &mut [T], scratch: &mut [T]) -> Result<()>);

/// Forward over whole sequences (see the [module docs](self)): `x` `(N, S,
/// I)`; optional `h0`, `c0` (LSTM) `(N, H)`; writes `out` `(N, S, H)`, the
/// final states `h_n`, `c_n` (LSTM) when given, and `saved` (at least
/// [`recurrent_saved_len`]) for [`recurrent_backward_views_with`]; `scratch`
/// holds at least [`recurrent_forward_scratch_len`] elements.
#[allow(clippy::too_many_arguments)]
pub fn recurrent_forward_views_with<B: Backend, T: Real>(
    params: &RecurrentParams<'_, T>,
    shape: &RnnShape,
    x: &[T],
    h0: Option<&[T]>,
    c0: Option<&[T]>,
    out: &mut [T],
    mut h_n: Option<&mut [T]>,
    mut c_n: Option<&mut [T]>,
    saved: &mut [T],
    scratch: &mut [T],
) -> Result<()> {
    let cell = params.cell;
    params.check(shape)?;
    let RnnShape {
        batch: n,
        seq: s,
        input: i,
        hidden: h,
    } = *shape;
    let (g, nb) = (cell.gates(), cell.saved_blocks());
    let (gh, ph) = (g * h, nb * h);
    check_len("recurrent: x", n * s * i, x.len())?;
    check_len("recurrent: out", n * s * h, out.len())?;
    opt_len("recurrent: h0", n * h, h0)?;
    opt_len("recurrent: c0", n * h, c0)?;
    opt_len("recurrent: h_n", n * h, h_n.as_deref())?;
    opt_len("recurrent: c_n", n * h, c_n.as_deref())?;
    no_cell_state(cell, "recurrent: c0", c0)?;
    no_cell_state(cell, "recurrent: c_n", c_n.as_deref())?;
    let saved = prefix("recurrent: saved", recurrent_saved_len(cell, shape), saved)?;
    let scratch = prefix(
        "recurrent: scratch",
        recurrent_forward_scratch_len(cell, shape),
        scratch,
    )?;
    let (hproj, prev) = scratch.split_at_mut(n * gh);

    // Input projections of every position, with b_ih, into `out` (RNN) or the
    // first G blocks of each saved row.
    let xs = MatRef::new(x, n * s, i)?;
    let w_ih = MatRef::new(params.w_ih, gh, i)?;
    {
        let mut dest = if nb == 0 {
            MatMut::new(out, n * s, h)?
        } else {
            MatMut::with_stride(saved, n * s, gh, ph)?
        };
        B::raw_gemm_bt(xs, w_ih, dest.reborrow(), Accumulate::Overwrite);
        add_rows::<B, T>(&mut dest, params.b_ih);
    }

    let w_hh = MatRef::new(params.w_hh, gh, h)?;
    for t in 0..s {
        // Hidden projections of the whole batch: h_{t−1}·W_hhᵀ + b_hh.
        let h_prev = match (t, h0) {
            (0, None) => None,
            (0, Some(h0)) => Some(MatRef::new(h0, n, h)?),
            _ => Some(MatRef::with_stride(&out[(t - 1) * h..], n, h, s * h)?),
        };
        match h_prev {
            Some(hv) => B::raw_gemm_bt(hv, w_hh, MatMut::new(hproj, n, gh)?, Accumulate::Overwrite),
            None => hproj.fill(T::ZERO),
        }
        add_rows::<B, T>(&mut MatMut::new(hproj, n, gh)?, params.b_hh);
        // The state the cell update reads (GRU: h_{t−1}; LSTM: c_{t−1}), copied
        // so that the update may write the rows it came from.
        let has_prev = match cell {
            Cell::Gru => {
                if let Some(hv) = h_prev {
                    for b in 0..n {
                        prev[b * h..(b + 1) * h].copy_from_slice(hv.row_or_empty(b));
                    }
                }
                h_prev.is_some()
            }
            Cell::Lstm => match (t, c0) {
                (0, None) => false,
                (0, Some(c0)) => {
                    prev[..n * h].copy_from_slice(c0);
                    true
                }
                _ => {
                    for b in 0..n {
                        let at = (b * s + t - 1) * ph + 4 * h;
                        prev[b * h..(b + 1) * h].copy_from_slice(&saved[at..at + h]);
                    }
                    true
                }
            },
            _ => false,
        };
        for b in 0..n {
            let row = (b * s + t) * h..(b * s + t + 1) * h;
            let hpr = &hproj[b * gh..(b + 1) * gh];
            let pv = has_prev.then(|| &prev[b * h..(b + 1) * h]);
            let sv = &mut saved[(b * s + t) * ph..(b * s + t + 1) * ph];
            match cell {
                Cell::RnnTanh | Cell::RnnRelu => {
                    rnn::forward_row::<B, T>(cell == Cell::RnnRelu, &mut out[row], hpr)
                }
                Cell::Lstm => lstm::forward_row::<B, T>(sv, hpr, pv, &mut out[row]),
                Cell::Gru => gru::forward_row::<B, T>(sv, hpr, pv, &mut out[row]),
            }
        }
    }
    for b in 0..n {
        let last = (b * s + s - 1) * h;
        if let Some(hn) = h_n.as_deref_mut() {
            hn[b * h..(b + 1) * h].copy_from_slice(&out[last..last + h]);
        }
        if let Some(cn) = c_n.as_deref_mut() {
            let at = (b * s + s - 1) * ph + 4 * h;
            cn[b * h..(b + 1) * h].copy_from_slice(&saved[at..at + h]);
        }
    }
    Ok(())
}

crate::simd_default!(recurrent_backward_views => recurrent_backward_views_with<T: Real>(params: &RecurrentParams<'_, T>, shape: &RnnShape, x: &[T], h0: Option<&[T]>, c0: Option<&[T]>, out: &[T], saved: &[T], dout: Option<&[T]>, dh_n: Option<&[T]>, dc_n: Option<&[T]>, grads: &mut RecurrentGrads<'_, T>, dx: Option<&mut [T]>, dh0: Option<&mut [T]>, dc0: Option<&mut [T]>, scratch: &mut [T]) -> Result<()>);

/// Backpropagation through time (see the [module docs](self)). Inputs: what
/// the forward pass took and wrote (`x`, `h0`, `c0`, `out`, `saved`) and the
/// gradients reaching its outputs — `dout` `(N, S, H)`, `dh_n`, `dc_n`
/// (LSTM) `(N, H)`, each `None` for zeros. Adds into `grads`; writes `dx`
/// `(N, S, I)`, `dh0`, `dc0` (LSTM) `(N, H)` when given (the gradients of a
/// missing initial state are still the gradients of its zeros). `scratch`
/// holds at least [`recurrent_backward_scratch_len`] elements.
#[allow(clippy::too_many_arguments)]
pub fn recurrent_backward_views_with<B: Backend, T: Real>(
    params: &RecurrentParams<'_, T>,
    shape: &RnnShape,
    x: &[T],
    h0: Option<&[T]>,
    c0: Option<&[T]>,
    out: &[T],
    saved: &[T],
    dout: Option<&[T]>,
    dh_n: Option<&[T]>,
    dc_n: Option<&[T]>,
    grads: &mut RecurrentGrads<'_, T>,
    dx: Option<&mut [T]>,
    dh0: Option<&mut [T]>,
    dc0: Option<&mut [T]>,
    scratch: &mut [T],
) -> Result<()> {
    let cell = params.cell;
    params.check(shape)?;
    grads.check(params, shape)?;
    let RnnShape {
        batch: n,
        seq: s,
        input: i,
        hidden: h,
    } = *shape;
    let (g, nb) = (cell.gates(), cell.saved_blocks());
    let (gh, ph) = (g * h, nb * h);
    check_len("recurrent: x", n * s * i, x.len())?;
    check_len("recurrent: out", n * s * h, out.len())?;
    opt_len("recurrent: dout", n * s * h, dout)?;
    for (what, v) in [
        ("recurrent: h0", h0),
        ("recurrent: c0", c0),
        ("recurrent: dh_n", dh_n),
        ("recurrent: dc_n", dc_n),
        ("recurrent: dh0", dh0.as_deref()),
        ("recurrent: dc0", dc0.as_deref()),
    ] {
        opt_len(what, n * h, v)?;
    }
    opt_len("recurrent: dx", n * s * i, dx.as_deref())?;
    no_cell_state(cell, "recurrent: c0", c0)?;
    no_cell_state(cell, "recurrent: dc_n", dc_n)?;
    no_cell_state(cell, "recurrent: dc0", dc0.as_deref())?;
    let need = recurrent_saved_len(cell, shape);
    let saved = saved.get(..need).ok_or(Error::BufferTooSmall {
        what: "recurrent: saved",
        needed: need,
        found: saved.len(),
    })?;
    let scratch = prefix(
        "recurrent: scratch",
        recurrent_backward_scratch_len(cell, shape),
        scratch,
    )?;
    let (dpre, rest) = scratch.split_at_mut(n * s * gh);
    // GRU's hidden-side gate gradients of every position (empty otherwise:
    // the other cells' coincide with `dpre`).
    let (dph, rest) = rest.split_at_mut(if cell == Cell::Gru { n * s * gh } else { 0 });
    let (dh, rest) = rest.split_at_mut(n * h);
    let (dh_prev, dc) = rest.split_at_mut(n * h);
    match dh_n {
        Some(v) => dh.copy_from_slice(v),
        None => dh.fill(T::ZERO),
    }
    if cell.has_cell_state() {
        match dc_n {
            Some(v) => dc.copy_from_slice(v),
            None => dc.fill(T::ZERO),
        }
    }
    let w_hh = MatRef::new(params.w_hh, gh, h)?;
    for t in (0..s).rev() {
        if let Some(d) = dout {
            for b in 0..n {
                let at = (b * s + t) * h;
                B::raw_zip(&mut dh[b * h..(b + 1) * h], &d[at..at + h], false);
            }
        }
        dh_prev.fill(T::ZERO);
        for b in 0..n {
            let pos = b * s + t;
            let dhb = &dh[b * h..(b + 1) * h];
            let dp = &mut dpre[pos * gh..(pos + 1) * gh];
            let sv = &saved[pos * ph..(pos + 1) * ph];
            match cell {
                Cell::RnnTanh | Cell::RnnRelu => {
                    rnn::backward_row(cell == Cell::RnnRelu, &out[pos * h..(pos + 1) * h], dhb, dp)
                }
                Cell::Lstm => {
                    let cp = if t > 0 {
                        Some(&saved[(pos - 1) * ph + 4 * h..(pos - 1) * ph + 5 * h])
                    } else {
                        c0.map(|c| &c[b * h..(b + 1) * h])
                    };
                    lstm::backward_row(sv, cp, dhb, &mut dc[b * h..(b + 1) * h], dp)
                }
                Cell::Gru => {
                    let hp = if t > 0 {
                        Some(&out[(pos - 1) * h..pos * h])
                    } else {
                        h0.map(|v| &v[b * h..(b + 1) * h])
                    };
                    gru::backward_row(
                        sv,
                        hp,
                        dhb,
                        dp,
                        &mut dph[pos * gh..(pos + 1) * gh],
                        &mut dh_prev[b * h..(b + 1) * h],
                    )
                }
            }
        }
        // Back to the previous hidden state through W_hh, with the hidden
        // side's gate gradients of this step.
        let dhs = if cell == Cell::Gru { &*dph } else { &*dpre };
        let dg = MatRef::with_stride(&dhs[t * gh..], n, gh, s * gh)?;
        B::raw_gemm(dg, w_hh, MatMut::new(dh_prev, n, h)?, Accumulate::Add);
        dh.copy_from_slice(dh_prev);
    }
    // dW_hh = Σ_t dgᵀ·h_{t−1}: per sequence one product over its steps 1.. (the
    // previous states are `out` shifted by a row), one over the batch for step
    // 0 when there is an initial state; db_hh = Σ dg.
    let dhs = if cell == Cell::Gru { &*dph } else { &*dpre };
    if s > 1 {
        for b in 0..n {
            let dg = MatRef::new(&dhs[(b * s + 1) * gh..(b + 1) * s * gh], s - 1, gh)?;
            let hp = MatRef::new(&out[b * s * h..((b + 1) * s - 1) * h], s - 1, h)?;
            B::raw_gemm_at(dg, hp, MatMut::new(grads.dw_hh, gh, h)?, Accumulate::Add);
        }
    }
    if let Some(h0) = h0 {
        let dg = MatRef::with_stride(dhs, n, gh, s * gh)?;
        B::raw_gemm_at(
            dg,
            MatRef::new(h0, n, h)?,
            MatMut::new(grads.dw_hh, gh, h)?,
            Accumulate::Add,
        );
    }
    if let Some(db) = grads.db_hh.as_deref_mut() {
        B::col_sums(MatRef::new(dhs, n * s, gh)?, db, Accumulate::Add)?;
    }
    if let Some(d) = dh0 {
        d.copy_from_slice(dh);
    }
    if let Some(d) = dc0 {
        d.copy_from_slice(dc);
    }
    let dall = MatRef::new(dpre, n * s, gh)?;
    let xs = MatRef::new(x, n * s, i)?;
    B::raw_gemm_at(dall, xs, MatMut::new(grads.dw_ih, gh, i)?, Accumulate::Add);
    if let Some(db) = grads.db_ih.as_deref_mut() {
        B::col_sums(dall, db, Accumulate::Add)?;
    }
    if let Some(d) = dx {
        let w_ih = MatRef::new(params.w_ih, gh, i)?;
        B::raw_gemm(dall, w_ih, MatMut::new(d, n * s, i)?, Accumulate::Overwrite);
    }
    Ok(())
}

crate::simd_default!(recurrent_step_views => recurrent_step_views_with<T: Real>(params: &RecurrentParams<'_, T>, batch: usize, x: &[T], h: &mut [T], c: Option<&mut [T]>, scratch: &mut [T]) -> Result<()>);

/// One step for a batch of `batch` rows, updating the state in place:
/// `x` `(N, I)`, `h` `(N, H)`, `c` `(N, H)` (LSTM; `None` = zeros in, the new
/// cell state discarded); `scratch` holds at least
/// [`recurrent_step_scratch_len`] elements. `I` and `H` come from the
/// lengths of `x` and `h`. The same arithmetic as a one-step
/// [`recurrent_forward_views_with`].
pub fn recurrent_step_views_with<B: Backend, T: Real>(
    params: &RecurrentParams<'_, T>,
    batch: usize,
    x: &[T],
    h: &mut [T],
    c: Option<&mut [T]>,
    scratch: &mut [T],
) -> Result<()> {
    let cell = params.cell;
    no_cell_state(cell, "recurrent step: c", c.as_deref())?;
    if batch == 0 {
        return Err(Error::Empty {
            what: "recurrent step: batch",
        });
    }
    let shape = RnnShape::new(batch, 1, x.len() / batch, h.len() / batch);
    params.check(&shape)?;
    check_len("recurrent step: x", batch * shape.input, x.len())?;
    check_len("recurrent step: h", batch * shape.hidden, h.len())?;
    opt_len("recurrent step: c", h.len(), c.as_deref())?;
    let need = recurrent_step_scratch_len(cell, batch, shape.hidden);
    let scratch = prefix("recurrent step: scratch", need, scratch)?;
    let (out, rest) = scratch.split_at_mut(h.len());
    let (saved, work) = rest.split_at_mut(recurrent_saved_len(cell, &shape));
    recurrent_forward_views_with::<B, T>(
        params,
        &shape,
        x,
        Some(h),
        c.as_deref(),
        out,
        None,
        None,
        saved,
        work,
    )?;
    h.copy_from_slice(out);
    if let Some(c) = c {
        let hb = shape.hidden;
        for b in 0..batch {
            c[b * hb..(b + 1) * hb]
                .copy_from_slice(&saved[b * 6 * hb + 4 * hb..b * 6 * hb + 5 * hb]);
        }
    }
    Ok(())
}

/// A recurrent layer with compile-time sizes (const face): `G` gate blocks
/// (1, 4 or 3 — checked against the cell by the constructor), input `I`,
/// hidden `H`; weights stored gate block by gate block, which is PyTorch's
/// `(G·H, ·)` row-major layout. Gradients use the same type
/// ([`Recurrent::zeros`], [`Recurrent::zero_grad`]). Aliases: [`Lstm`],
/// [`Gru`], [`Rnn`].
///
/// ```
/// use constml::nn::{Cell, Lstm, RnnShape, recurrent_forward_scratch_len};
/// const SCRATCH: usize = recurrent_forward_scratch_len(Cell::Lstm, &RnnShape::new(1, 3, 2, 4));
/// let mut lstm = Lstm::<f32, 2, 4>::zeros(Cell::Lstm, true)?;
/// lstm.w_ih[2][0] = [1.0, 0.0]; // the cell candidate g of unit 0 reads x[0]
/// let x = [[[1.0f32, 0.0]; 3]; 1];
/// let mut out = [[[0.0f32; 4]; 3]; 1];
/// let mut saved = [[[[0.0f32; 4]; 6]; 3]; 1];
/// lstm.forward(&x, None, None, &mut out, None, None, &mut saved, &mut [0.0; SCRATCH])?;
/// // Unit 0: i = f = o = ½, g = tanh(1); c₃ = g·(½ + ¼ + ⅛), h₃ = ½·tanh(c₃) ≈ 0.29.
/// assert!(out[0][2][0] > 0.25 && out[0][2][1] == 0.0);
/// # Ok::<(), constml::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Recurrent<T, const G: usize, const I: usize, const H: usize, B = crate::Simd> {
    /// Which cell (its [`Cell::gates`] equals `G`).
    pub cell: Cell,
    /// `W_ih`, `[gate][unit][input]`.
    pub w_ih: [[[T; I]; H]; G],
    /// `W_hh`, `[gate][unit][hidden]`.
    pub w_hh: [[[T; H]; H]; G],
    /// `b_ih`, if the layer has biases.
    pub b_ih: Option<[[T; H]; G]>,
    /// `b_hh`, if the layer has biases.
    pub b_hh: Option<[[T; H]; G]>,
    _b: core::marker::PhantomData<B>,
}

/// An LSTM with compile-time sizes.
pub type Lstm<T, const I: usize, const H: usize, B = crate::Simd> = Recurrent<T, 4, I, H, B>;
/// A GRU with compile-time sizes.
pub type Gru<T, const I: usize, const H: usize, B = crate::Simd> = Recurrent<T, 3, I, H, B>;
/// An RNN (tanh or ReLU) with compile-time sizes.
pub type Rnn<T, const I: usize, const H: usize, B = crate::Simd> = Recurrent<T, 1, I, H, B>;

impl<T: Real, const G: usize, const I: usize, const H: usize, B: Backend> Recurrent<T, G, I, H, B> {
    /// All zeros (a gradient accumulator, or weights to fill); `Err` when
    /// `cell` does not have `G` gate blocks.
    pub fn zeros(cell: Cell, bias: bool) -> Result<Self> {
        if cell.gates() != G {
            return Err(Error::InvalidParameter {
                what: "Recurrent: cell",
                reason: "its gate count differs from G (LSTM 4, GRU 3, RNN 1)",
            });
        }
        Ok(Self {
            cell,
            w_ih: [[[T::ZERO; I]; H]; G],
            w_hh: [[[T::ZERO; H]; H]; G],
            b_ih: bias.then_some([[T::ZERO; H]; G]),
            b_hh: bias.then_some([[T::ZERO; H]; G]),
            _b: core::marker::PhantomData,
        })
    }

    /// The parameters as views.
    pub fn params(&self) -> RecurrentParams<'_, T> {
        RecurrentParams::new(
            self.cell,
            self.w_ih.as_flattened().as_flattened(),
            self.w_hh.as_flattened().as_flattened(),
            self.b_ih.as_ref().map(|b| b.as_flattened()),
            self.b_hh.as_ref().map(|b| b.as_flattened()),
        )
    }

    /// Zeroes every tensor (use on a gradient accumulator).
    pub fn zero_grad(&mut self) {
        self.w_ih = [[[T::ZERO; I]; H]; G];
        self.w_hh = [[[T::ZERO; H]; H]; G];
        for b in [&mut self.b_ih, &mut self.b_hh].into_iter().flatten() {
            *b = [[T::ZERO; H]; G];
        }
    }

    /// [`recurrent_forward_views_with`] over `N` sequences of `S` steps;
    /// `saved` has `K` = [`Cell::saved_blocks`] blocks per position (`Err`
    /// otherwise).
    #[allow(clippy::too_many_arguments, clippy::type_complexity)]
    pub fn forward<const N: usize, const S: usize, const K: usize>(
        &self,
        x: &[[[T; I]; S]; N],
        h0: Option<&[[T; H]; N]>,
        c0: Option<&[[T; H]; N]>,
        out: &mut [[[T; H]; S]; N],
        h_n: Option<&mut [[T; H]; N]>,
        c_n: Option<&mut [[T; H]; N]>,
        saved: &mut [[[[T; H]; K]; S]; N],
        scratch: &mut [T],
    ) -> Result<()> {
        check_blocks(self.cell, K)?;
        recurrent_forward_views_with::<B, T>(
            &self.params(),
            &RnnShape::new(N, S, I, H),
            x.as_flattened().as_flattened(),
            h0.map(|v| v.as_flattened()),
            c0.map(|v| v.as_flattened()),
            out.as_flattened_mut().as_flattened_mut(),
            h_n.map(|v| v.as_flattened_mut()),
            c_n.map(|v| v.as_flattened_mut()),
            saved
                .as_flattened_mut()
                .as_flattened_mut()
                .as_flattened_mut(),
            scratch,
        )
    }

    /// [`recurrent_backward_views_with`]: adds the parameter gradients into
    /// `grads` (a layer of the same type; bias gradients when it has
    /// biases), writes `dx`, `dh0`, `dc0` when given.
    #[allow(clippy::too_many_arguments, clippy::type_complexity)]
    pub fn backward<const N: usize, const S: usize, const K: usize>(
        &self,
        x: &[[[T; I]; S]; N],
        h0: Option<&[[T; H]; N]>,
        c0: Option<&[[T; H]; N]>,
        out: &[[[T; H]; S]; N],
        saved: &[[[[T; H]; K]; S]; N],
        dout: Option<&[[[T; H]; S]; N]>,
        dh_n: Option<&[[T; H]; N]>,
        dc_n: Option<&[[T; H]; N]>,
        grads: &mut Self,
        dx: Option<&mut [[[T; I]; S]; N]>,
        dh0: Option<&mut [[T; H]; N]>,
        dc0: Option<&mut [[T; H]; N]>,
        scratch: &mut [T],
    ) -> Result<()> {
        check_blocks(self.cell, K)?;
        let mut g = RecurrentGrads {
            dw_ih: grads.w_ih.as_flattened_mut().as_flattened_mut(),
            dw_hh: grads.w_hh.as_flattened_mut().as_flattened_mut(),
            db_ih: grads.b_ih.as_mut().map(|b| b.as_flattened_mut()),
            db_hh: grads.b_hh.as_mut().map(|b| b.as_flattened_mut()),
        };
        recurrent_backward_views_with::<B, T>(
            &self.params(),
            &RnnShape::new(N, S, I, H),
            x.as_flattened().as_flattened(),
            h0.map(|v| v.as_flattened()),
            c0.map(|v| v.as_flattened()),
            out.as_flattened().as_flattened(),
            saved.as_flattened().as_flattened().as_flattened(),
            dout.map(|v| v.as_flattened().as_flattened()),
            dh_n.map(|v| v.as_flattened()),
            dc_n.map(|v| v.as_flattened()),
            &mut g,
            dx.map(|v| v.as_flattened_mut().as_flattened_mut()),
            dh0.map(|v| v.as_flattened_mut()),
            dc0.map(|v| v.as_flattened_mut()),
            scratch,
        )
    }

    /// [`recurrent_step_views_with`] for `N` rows: updates `h` (and `c`).
    pub fn step<const N: usize>(
        &self,
        x: &[[T; I]; N],
        h: &mut [[T; H]; N],
        c: Option<&mut [[T; H]; N]>,
        scratch: &mut [T],
    ) -> Result<()> {
        recurrent_step_views_with::<B, T>(
            &self.params(),
            N,
            x.as_flattened(),
            h.as_flattened_mut(),
            c.map(|v| v.as_flattened_mut()),
            scratch,
        )
    }
}

fn check_blocks(cell: Cell, k: usize) -> Result<()> {
    if k != cell.saved_blocks() {
        return Err(Error::ShapeMismatch {
            what: "Recurrent: saved blocks per position (K)",
            expected: (cell.saved_blocks(), 1),
            found: (k, 1),
        });
    }
    Ok(())
}

#[cfg(feature = "std")]
pub use dynamic::{RecurrentDyn, RecurrentInputGrads, RecurrentOutput};

#[cfg(feature = "std")]
mod dynamic {
    use std::vec::Vec;

    use super::*;
    use crate::Simd;
    use crate::matrix::zeros_vec;

    /// What [`RecurrentDyn::forward`] returns: `out` `(N, S, H)`, `h_n`
    /// `(N, H)`, and `c_n` for an LSTM.
    #[derive(Clone, Debug, PartialEq)]
    pub struct RecurrentOutput<T> {
        /// Every hidden state.
        pub out: Vec<T>,
        /// The final hidden state.
        pub h_n: Vec<T>,
        /// The final cell state (LSTM).
        pub c_n: Option<Vec<T>>,
    }

    /// What [`RecurrentDyn::backward`] returns: the gradients of the input
    /// `(N, S, I)` and of the initial states `(N, H)`.
    #[derive(Clone, Debug, PartialEq)]
    pub struct RecurrentInputGrads<T> {
        /// `dx`.
        pub dx: Vec<T>,
        /// `dh0`.
        pub dh0: Vec<T>,
        /// `dc0` (LSTM).
        pub dc0: Option<Vec<T>>,
    }

    /// The inputs and saved values of the last forward pass.
    #[derive(Clone, Debug)]
    struct Tape<T> {
        shape: RnnShape,
        x: Vec<T>,
        h0: Option<Vec<T>>,
        c0: Option<Vec<T>>,
        out: Vec<T>,
        saved: Vec<T>,
    }

    /// A runtime-shaped recurrent layer (`std`): owned weights, biases and
    /// their accumulated gradients; [`forward`](Self::forward) keeps what
    /// [`backward`](Self::backward) needs (one forward, then its backward).
    ///
    /// ```
    /// use constml::nn::{Cell, RecurrentDyn};
    /// let mut gru = RecurrentDyn::<f64>::zeros(Cell::Gru, 3, 4, true)?;
    /// gru.w_ih.iter_mut().enumerate().for_each(|(i, w)| *w = (i as f64 * 0.37).sin() * 0.5);
    /// let x = vec![0.5; 2 * 5 * 3]; // N 2, S 5, I 3
    /// let y = gru.forward(&x, 2, 5, None, None)?;
    /// assert_eq!((y.out.len(), y.h_n.len(), y.c_n), (2 * 5 * 4, 2 * 4, None));
    /// let g = gru.backward(Some(&y.out), None, None)?;
    /// assert_eq!(g.dx.len(), x.len());
    /// assert!(gru.forward(&x[1..], 2, 5, None, None).is_err());
    /// # Ok::<(), constml::Error>(())
    /// ```
    #[derive(Clone, Debug)]
    pub struct RecurrentDyn<T, B = Simd> {
        /// Which cell.
        pub cell: Cell,
        /// Input features `I`.
        pub input: usize,
        /// Hidden features `H`.
        pub hidden: usize,
        /// `W_ih` `(G·H, I)`.
        pub w_ih: Vec<T>,
        /// `W_hh` `(G·H, H)`.
        pub w_hh: Vec<T>,
        /// `b_ih`, `b_hh` (`G·H` each), if the layer has biases.
        pub bias: Option<(Vec<T>, Vec<T>)>,
        /// Accumulated `dW_ih`.
        pub dw_ih: Vec<T>,
        /// Accumulated `dW_hh`.
        pub dw_hh: Vec<T>,
        /// Accumulated `db_ih`, `db_hh`.
        pub dbias: Option<(Vec<T>, Vec<T>)>,
        tape: Option<Tape<T>>,
        _b: core::marker::PhantomData<B>,
    }

    impl<T: Real, B: Backend> RecurrentDyn<T, B> {
        /// A zero layer `I → H`; `Err` for a zero size.
        pub fn zeros(cell: Cell, input: usize, hidden: usize, bias: bool) -> Result<Self> {
            RnnShape::new(1, 1, input, hidden).check(cell)?;
            let gh = cell.gates() * hidden;
            let z = |n: usize| zeros_vec("recurrent: parameters", n);
            let pair = || -> Result<Option<(Vec<T>, Vec<T>)>> {
                Ok(if bias { Some((z(gh)?, z(gh)?)) } else { None })
            };
            Ok(Self {
                cell,
                input,
                hidden,
                w_ih: z(gh * input)?,
                w_hh: z(gh * hidden)?,
                bias: pair()?,
                dw_ih: z(gh * input)?,
                dw_hh: z(gh * hidden)?,
                dbias: pair()?,
                tape: None,
                _b: core::marker::PhantomData,
            })
        }

        /// The parameters as views.
        pub fn params(&self) -> RecurrentParams<'_, T> {
            RecurrentParams::new(
                self.cell,
                &self.w_ih,
                &self.w_hh,
                self.bias.as_ref().map(|b| &b.0[..]),
                self.bias.as_ref().map(|b| &b.1[..]),
            )
        }

        /// Forward over `batch` sequences of `seq` steps (`x` `(N, S, I)`),
        /// from `h0` / `c0` or zeros.
        pub fn forward(
            &mut self,
            x: &[T],
            batch: usize,
            seq: usize,
            h0: Option<&[T]>,
            c0: Option<&[T]>,
        ) -> Result<RecurrentOutput<T>> {
            let cell = self.cell;
            let shape = RnnShape::new(batch, seq, self.input, self.hidden);
            shape.check(cell)?;
            let nh = batch * self.hidden;
            let mut out = zeros_vec("recurrent: out", batch * seq * self.hidden)?;
            let mut h_n = zeros_vec("recurrent: h_n", nh)?;
            let mut c_n = zeros_vec("recurrent: c_n", if cell.has_cell_state() { nh } else { 0 })?;
            let mut saved = zeros_vec("recurrent: saved", recurrent_saved_len(cell, &shape))?;
            let mut scratch = zeros_vec(
                "recurrent: scratch",
                recurrent_forward_scratch_len(cell, &shape),
            )?;
            recurrent_forward_views_with::<B, T>(
                &self.params(),
                &shape,
                x,
                h0,
                c0,
                &mut out,
                Some(&mut h_n),
                cell.has_cell_state().then_some(&mut c_n[..]),
                &mut saved,
                &mut scratch,
            )?;
            self.tape = Some(Tape {
                shape,
                x: x.to_vec(),
                h0: h0.map(<[T]>::to_vec),
                c0: c0.map(<[T]>::to_vec),
                out: out.clone(),
                saved,
            });
            Ok(RecurrentOutput {
                out,
                h_n,
                c_n: cell.has_cell_state().then_some(c_n),
            })
        }

        /// BPTT of the last forward pass, from the gradients reaching `out`,
        /// `h_n` and `c_n` (`None` = zeros); adds into the parameter
        /// gradients. `Err` when no forward pass came before.
        pub fn backward(
            &mut self,
            dout: Option<&[T]>,
            dh_n: Option<&[T]>,
            dc_n: Option<&[T]>,
        ) -> Result<RecurrentInputGrads<T>> {
            let Some(tape) = self.tape.as_ref() else {
                return Err(Error::InvalidParameter {
                    what: "RecurrentDyn::backward",
                    reason: "needs a forward pass first",
                });
            };
            let cell = self.cell;
            let shape = tape.shape;
            let nh = shape.batch * shape.hidden;
            let mut dx = zeros_vec("recurrent: dx", tape.x.len())?;
            let mut dh0 = zeros_vec("recurrent: dh0", nh)?;
            let mut dc0 = zeros_vec("recurrent: dc0", if cell.has_cell_state() { nh } else { 0 })?;
            let mut scratch = zeros_vec(
                "recurrent: scratch",
                recurrent_backward_scratch_len(cell, &shape),
            )?;
            // Gradients go to copies first, so that an error leaves them untouched.
            let mut dw_ih = self.dw_ih.clone();
            let mut dw_hh = self.dw_hh.clone();
            let mut dbias = self.dbias.clone();
            let params = RecurrentParams::new(
                cell,
                &self.w_ih,
                &self.w_hh,
                self.bias.as_ref().map(|b| &b.0[..]),
                self.bias.as_ref().map(|b| &b.1[..]),
            );
            let (db_ih, db_hh) = match dbias.as_mut() {
                Some((a, b)) => (Some(&mut a[..]), Some(&mut b[..])),
                None => (None, None),
            };
            recurrent_backward_views_with::<B, T>(
                &params,
                &shape,
                &tape.x,
                tape.h0.as_deref(),
                tape.c0.as_deref(),
                &tape.out,
                &tape.saved,
                dout,
                dh_n,
                dc_n,
                &mut RecurrentGrads {
                    dw_ih: &mut dw_ih,
                    dw_hh: &mut dw_hh,
                    db_ih,
                    db_hh,
                },
                Some(&mut dx),
                Some(&mut dh0),
                cell.has_cell_state().then_some(&mut dc0[..]),
                &mut scratch,
            )?;
            (self.dw_ih, self.dw_hh, self.dbias) = (dw_ih, dw_hh, dbias);
            Ok(RecurrentInputGrads {
                dx,
                dh0,
                dc0: cell.has_cell_state().then_some(dc0),
            })
        }

        /// Zeroes the accumulated gradients.
        pub fn zero_grad(&mut self) {
            self.dw_ih.fill(T::ZERO);
            self.dw_hh.fill(T::ZERO);
            if let Some((a, b)) = self.dbias.as_mut() {
                a.fill(T::ZERO);
                b.fill(T::ZERO);
            }
        }
    }
}
