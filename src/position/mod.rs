//! Position encodings.
//!
//! One file per encoding. Attention exposes the hooks they plug into
//! ([`ScoreBias`](crate::attention::ScoreBias) for a per-(head, query position,
//! key position) score bias, [`RelativeKv`](crate::attention::RelativeKv) for
//! relative key/value terms, [`Rotation`](crate::attention::Rotation) for q/k
//! rotation before the cache append); the encodings live here.
//!
//! | module | what |
//! |---|---|
//! | [`shaw`] | Shaw et al.'s relative key/value terms ([`ShawRelative`]) |

pub mod shaw;

pub use shaw::ShawRelative;
