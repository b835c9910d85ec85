//! Neural-network layers.
//!
//! One file per layer or family. Today: [`mod@linear`] (forward). Backward passes,
//! activations as layers, losses and optimisers come with the neural-network
//! chapter.

pub mod linear;

pub use linear::{linear, linear_views, linear_views_with, linear_with};
