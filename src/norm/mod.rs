//! Normalisation layers.
//!
//! One file per algorithm. Today this chapter holds the LayerNorm kernel that
//! MosaicML MPT's q/k normalisation uses; its public API (affine options,
//! RMSNorm, BatchNorm, backward passes) comes with the normalisation chapter.

pub(crate) mod layer_norm;
