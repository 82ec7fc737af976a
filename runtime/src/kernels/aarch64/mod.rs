//! aarch64 kernels: NEON (every Raspberry Pi and Jetson), and SDOT where the core has the
//! dot-product extension (`asimddp`: Cortex-A76/A78, Pi 5, Jetson Orin), detected at run time.

mod neon_attention;
mod neon_gru;
mod neon_linear_f32;
mod neon_linear_i8;
mod neon_lstm;
mod neon_math;
mod neon_norm;

use super::gru::GruKernel;
use super::linear_f32::LinearF32Kernel;
use super::linear_i8::LinearI8Kernel;
use super::lstm::LstmKernel;
use super::math::{AttentionKernel, MathKernels};

/// Int8 linear kernels this CPU runs, best first.
pub fn linear_i8_kernels() -> Vec<&'static LinearI8Kernel> {
    let mut found = Vec::new();
    if std::arch::is_aarch64_feature_detected!("dotprod") {
        found.push(&neon_linear_i8::SDOT);
    }
    found.push(&neon_linear_i8::SMULL);
    found
}

/// Attention kernels this CPU runs, best first.
pub fn attention_kernels() -> Vec<&'static AttentionKernel> {
    vec![&neon_attention::KERNEL]
}

/// Element-wise kernels this CPU runs, best first.
pub fn math_kernels() -> Vec<&'static MathKernels> {
    vec![&neon_math::KERNELS]
}

/// LSTM kernels this CPU runs, best first.
pub fn lstm_kernels() -> Vec<&'static LstmKernel> {
    vec![&neon_lstm::KERNEL]
}

/// GRU kernels this CPU runs, best first.
pub fn gru_kernels() -> Vec<&'static GruKernel> {
    vec![&neon_gru::KERNEL]
}

/// The LayerNorm kernel.
pub fn layer_norm_kernel() -> &'static crate::kernels::norm::LayerNormKernel {
    &neon_norm::LAYER_NORM
}

/// f32 linear kernels this CPU runs, best first.
pub fn linear_f32_kernels() -> Vec<&'static LinearF32Kernel> {
    vec![&neon_linear_f32::LINEAR_F32]
}
