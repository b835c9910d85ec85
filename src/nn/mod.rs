//! Neural networks, forward and backward side by side (one file per layer
//! or family, shapes in the doc comments).
//!
//! | module | what |
//! |---|---|
//! | [`mod@linear`] | linear layer `y = x·Wᵀ + b` and its backward |
//! | [`activation`] | ReLU, sigmoid, tanh, SiLU, GELU (erf and tanh forms), softmax / log-softmax backward |
//! | [`dropout`] | dropout with a seeded generator, train/eval |
//! | [`mod@embedding`] | gather forward, scatter-add backward |
//! | [`loss`] | MSE, softmax cross-entropy (label smoothing, ignore index), BCE with logits |
//! | [`conv2d`] | 2-D convolution (stride, padding, dilation, groups), direct and im2col, forward and backward |
//! | [`pool`] | max-pool (with indices), average-pool (both divisor rules), global average pool, ceil mode |
//! | [`recurrent`] | RNN (tanh, ReLU), LSTM, GRU over sequences: forward, backpropagation through time, single step; cell equations in [`rnn`], [`lstm`], [`gru`] |
//! | [`optim`] | SGD (momentum, dampening, Nesterov, weight decay), Adam, AdamW, gradient clipping |
//!
//! Conventions: weights `(OUT, IN)` (PyTorch `nn.Linear`); a backward pass
//! **writes** the input gradient and **adds** into parameter gradients
//! (caller storage; zero it between steps); every shape is checked before
//! anything is written.

pub mod activation;
pub mod conv2d;
pub mod dropout;
pub mod embedding;
pub mod gru;
pub mod linear;
pub mod loss;
pub mod lstm;
pub mod optim;
pub mod pool;
pub mod recurrent;
pub mod rnn;

pub use activation::*;
pub use conv2d::*;
pub use dropout::*;
pub use embedding::*;
#[cfg(feature = "std")]
pub use linear::LinearDyn;
pub use linear::{
    Linear, LinearParams, linear, linear_backward_views, linear_backward_views_with,
    linear_backward_with, linear_views, linear_views_with, linear_with,
};
pub use loss::*;
pub use optim::*;
pub use pool::*;
pub use recurrent::*;
