//! The reliability suite, one test binary:
//!
//! * [`table`]: the audit table (`src/audit.rs`, `constml::audit`) names every
//!   public function, and every test it cites exists and runs;
//! * the tests the table cites, by area: [`core_models`] (kernels, views,
//!   `Matrix`, `Real`, the models and loaders), [`attention_position`],
//!   [`decode`], [`nn_norm_ml`];
//! * [`regressions`]: what the fuzz targets (`fuzz/`) and the audit found,
//!   one test per finding.

mod attention_position;
mod core_models;
mod decode;
mod nn_norm_ml;
mod regressions;
mod table;
