//! The portable twins of every kernel family: plain Rust, any CPU. They define what the
//! native kernels must compute, and run where no native kernel exists.

mod attention;
mod gru;
mod linear_f32;
mod linear_i8;
mod lstm;
mod math;
mod norm;

pub use attention::ATTENTION;
pub use gru::GRU;
pub use linear_f32::LINEAR_F32;
pub use linear_i8::{quantize_rows_i16, LINEAR_I8};
pub use lstm::LSTM;
pub use math::{erf_as, gelu_as, MATH};
pub use norm::LAYER_NORM;
