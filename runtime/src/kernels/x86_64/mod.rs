//! x86-64 kernels: AMX-INT8 for the int8 layers of Xeons that have it, AVX-512 (F, BW, VNNI),
//! and AVX2 + FMA (with AVX-VNNI where present) for CPUs without AVX-512.

mod amx_linear_i8;
mod avx2_linear_i8;
mod avx2_math;
mod avx512_attention;
mod avx512_gru;
mod avx512_linear_f32;
mod avx512_linear_i8;
mod avx512_lstm;
mod avx512_math;
mod avxvnni_linear_i8;

use super::gru::GruKernel;
use super::linear_f32::LinearF32Kernel;
use super::linear_i8::LinearI8Kernel;
use super::lstm::LstmKernel;
use super::math::{AttentionKernel, MathKernels};

fn has_avx512_vnni() -> bool {
    std::is_x86_feature_detected!("avx512f")
        && std::is_x86_feature_detected!("avx512bw")
        && std::is_x86_feature_detected!("avx512vnni")
        && std::is_x86_feature_detected!("fma")
}

fn has_avx2_fma() -> bool {
    std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
}

/// Int8 linear kernels this CPU runs, best first.
pub fn linear_i8_kernels() -> Vec<&'static LinearI8Kernel> {
    let mut found = Vec::new();
    if has_avx512_vnni() {
        if amx_linear_i8::available() {
            found.push(&amx_linear_i8::KERNEL);
        }
        found.push(&avx512_linear_i8::KERNEL);
    }
    if has_avx2_fma() && std::is_x86_feature_detected!("avxvnni") {
        found.push(&avxvnni_linear_i8::KERNEL);
    }
    if has_avx2_fma() {
        found.push(&avx2_linear_i8::KERNEL);
    }
    found
}

/// Attention kernels this CPU runs, best first.
pub fn attention_kernels() -> Vec<&'static AttentionKernel> {
    let mut found = Vec::new();
    if std::is_x86_feature_detected!("avx512f") {
        found.push(&avx512_attention::KERNEL);
    }
    found
}

/// Element-wise kernels this CPU runs, best first.
pub fn math_kernels() -> Vec<&'static MathKernels> {
    let mut found = Vec::new();
    if std::is_x86_feature_detected!("avx512f") {
        found.push(&avx512_math::KERNELS);
    }
    if has_avx2_fma() {
        found.push(&avx2_math::KERNELS);
    }
    found
}

/// LSTM kernels this CPU runs, best first.
pub fn lstm_kernels() -> Vec<&'static LstmKernel> {
    let mut found = Vec::new();
    if std::is_x86_feature_detected!("avx512f") {
        found.push(&avx512_lstm::KERNEL);
    }
    found
}

/// GRU kernels this CPU runs, best first.
pub fn gru_kernels() -> Vec<&'static GruKernel> {
    let mut found = Vec::new();
    if std::is_x86_feature_detected!("avx512f") {
        found.push(&avx512_gru::KERNEL);
    }
    found
}

/// f32 linear kernels this CPU runs, best first.
pub fn linear_f32_kernels() -> Vec<&'static LinearF32Kernel> {
    let mut found = Vec::new();
    if std::is_x86_feature_detected!("avx512f") {
        found.push(&avx512_linear_f32::KERNEL);
    }
    found
}
