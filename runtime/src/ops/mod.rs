//! Operators kinglet adds to tract, each in its own file with its NNEF (de)serialization.
//! Registered for both exporter and runtime by [`crate::nnef_ext`].

pub mod attention;
pub mod fast_math;
pub mod gelu;
pub mod layer_norm;
pub mod linear_f32;
pub mod linear_i8;
pub mod lstm;
pub mod moving_sum;
pub mod quantize_rows;
