//! kinglet's compute kernels, by architecture, behind one dispatch table.
//!
//! Each kernel family (the int8 linear layer, attention, element-wise math) has a portable
//! twin in [`generic`] and native versions in `x86_64/`, `aarch64/` and `arm/` (armv7).
//! [`native`] picks, once per process, the best version this CPU runs (detected at run time, so
//! one binary serves every board: an SDOT kernel on a Pi 5, a SMULL/SADALP one on a Pi 4 or Pi 3,
//! a NEON one on 32-bit Raspberry Pi OS, AVX2 on an N100), the way
//! tract-linalg's `Ops` table does. Operators in [`crate::ops`] ask this table; they hold no
//! architecture-specific code.
//!
//! Every native kernel is tested against its generic twin on every CPU the test host can run
//! (see the `kernel_tests!` macro in [`linear_i8`]).

pub mod generic;
pub mod gru;
pub mod linear_f32;
pub mod linear_i8;
pub mod lstm;
pub mod math;
pub mod norm;

#[cfg(target_arch = "aarch64")]
mod aarch64;
#[cfg(target_arch = "arm")]
mod arm;
#[cfg(target_arch = "x86_64")]
mod x86_64;

pub use linear_i8::{Epilogue, LinearI8Kernel, PackedI8};

use serde::Serialize;
use std::sync::OnceLock;

/// The kernels chosen for this CPU, one per family.
#[derive(Debug)]
pub struct Kernels {
    /// The fused int8 linear layer (quantize rows, int8 products, rescale, bias, GELU,
    /// residual). `None`: the operator is lowered to tract's integer matmul instead.
    pub linear_i8: Option<&'static LinearI8Kernel>,
    /// The fused f32 linear layer (bias, GELU, residual). `None`: tract's matmul.
    pub linear_f32: Option<&'static linear_f32::LinearF32Kernel>,
    /// Fused self-attention. `None`: attention runs as stored, on tract's kernels.
    pub attention: Option<&'static math::AttentionKernel>,
    /// Element-wise GELU on f32 slices.
    pub math: &'static math::MathKernels,
    /// A whole LSTM layer.
    pub lstm: &'static lstm::LstmKernel,
    /// A whole GRU layer.
    pub gru: &'static gru::GruKernel,
    /// LayerNorm over the last axis.
    pub layer_norm: &'static norm::LayerNormKernel,
}

/// Environment variable: comma-separated parts of kernel names not to use (e.g. `avx512` to
/// run the AVX2 kernels on an AVX-512 machine, `kinglet` for tract's and the generic ones).
/// For measuring one kernel against another; never needed in production.
pub const SKIP_ENV: &str = "KINGLET_KERNELS_SKIP";

/// The best kernels for this CPU, chosen on first use.
pub fn native() -> &'static Kernels {
    static NATIVE: OnceLock<Kernels> = OnceLock::new();
    NATIVE.get_or_init(|| {
        let skip: Vec<String> = std::env::var(SKIP_ENV)
            .unwrap_or_default()
            .split(',')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        let allowed = |name: &str| !skip.iter().any(|s| name.contains(s.as_str()));
        Kernels {
            linear_i8: linear_i8_candidates().into_iter().find(|k| allowed(k.name)),
            linear_f32: linear_f32_candidates()
                .into_iter()
                .find(|k| allowed(k.name)),
            attention: attention_candidates().into_iter().find(|k| allowed(k.name)),
            math: math_candidates()
                .into_iter()
                .find(|k| allowed(k.name))
                .unwrap_or(&generic::MATH),
            lstm: lstm_candidates()
                .into_iter()
                .find(|k| allowed(k.name))
                .unwrap_or(&generic::LSTM),
            gru: gru_candidates()
                .into_iter()
                .find(|k| allowed(k.name))
                .unwrap_or(&generic::GRU),
            layer_norm: layer_norm_candidates()
                .into_iter()
                .find(|k| allowed(k.name))
                .unwrap_or(&generic::LAYER_NORM),
        }
    })
}

/// Every int8 linear kernel this CPU can run, best first (the generic twin is not among them:
/// where no native kernel exists, tract's integer kernels beat plain loops).
pub fn linear_i8_candidates() -> Vec<&'static LinearI8Kernel> {
    #[allow(unused_mut)]
    let mut found = Vec::new();
    #[cfg(target_arch = "x86_64")]
    found.extend(x86_64::linear_i8_kernels());
    #[cfg(target_arch = "aarch64")]
    found.extend(aarch64::linear_i8_kernels());
    #[cfg(target_arch = "arm")]
    found.extend(arm::linear_i8_kernels());
    found
}

/// Every f32 linear kernel this CPU can run, best first (not the generic twin: tract's own
/// matmul serves where there is no native one).
pub fn linear_f32_candidates() -> Vec<&'static linear_f32::LinearF32Kernel> {
    #[allow(unused_mut)]
    let mut found = Vec::new();
    #[cfg(target_arch = "x86_64")]
    found.extend(x86_64::linear_f32_kernels());
    #[cfg(target_arch = "aarch64")]
    found.extend(aarch64::linear_f32_kernels());
    found
}

/// Every fused attention kernel this CPU can run, best first.
pub fn attention_candidates() -> Vec<&'static math::AttentionKernel> {
    #[allow(unused_mut)]
    let mut found = Vec::new();
    #[cfg(target_arch = "x86_64")]
    found.extend(x86_64::attention_kernels());
    #[cfg(target_arch = "aarch64")]
    found.extend(aarch64::attention_kernels());
    found
}

/// Every element-wise math kernel set this CPU can run, best first.
pub fn math_candidates() -> Vec<&'static math::MathKernels> {
    #[allow(unused_mut)]
    let mut found = Vec::new();
    #[cfg(target_arch = "x86_64")]
    found.extend(x86_64::math_kernels());
    #[cfg(target_arch = "aarch64")]
    found.extend(aarch64::math_kernels());
    found
}

/// Every LSTM kernel this CPU can run, best first.
pub fn lstm_candidates() -> Vec<&'static lstm::LstmKernel> {
    #[allow(unused_mut)]
    let mut found = Vec::new();
    #[cfg(target_arch = "x86_64")]
    found.extend(x86_64::lstm_kernels());
    #[cfg(target_arch = "aarch64")]
    found.extend(aarch64::lstm_kernels());
    found
}

/// Every GRU kernel this CPU can run, best first.
pub fn gru_candidates() -> Vec<&'static gru::GruKernel> {
    #[allow(unused_mut)]
    let mut found = Vec::new();
    #[cfg(target_arch = "x86_64")]
    found.extend(x86_64::gru_kernels());
    #[cfg(target_arch = "aarch64")]
    found.extend(aarch64::gru_kernels());
    found
}

/// Every LayerNorm kernel this CPU can run, best first.
pub fn layer_norm_candidates() -> Vec<&'static norm::LayerNormKernel> {
    #[cfg(target_arch = "aarch64")]
    return vec![aarch64::layer_norm_kernel()];
    #[cfg(not(target_arch = "aarch64"))]
    Vec::new()
}

/// The CPU features kinglet looks for, as detected on this machine.
pub fn cpu_features() -> Vec<&'static str> {
    let mut seen = Vec::new();
    #[cfg(target_arch = "x86_64")]
    {
        macro_rules! probe {
            ($($f:tt),*) => { $( if std::arch::is_x86_feature_detected!($f) { seen.push($f); } )* };
        }
        probe!(
            "sse4.1",
            "avx",
            "avx2",
            "fma",
            "avx512f",
            "avx512bw",
            "avx512vnni",
            "avxvnni"
        );
    }
    #[cfg(target_arch = "aarch64")]
    {
        macro_rules! probe {
            ($($f:tt),*) => { $( if std::arch::is_aarch64_feature_detected!($f) { seen.push($f); } )* };
        }
        probe!("neon", "fp16", "dotprod", "i8mm", "sve");
    }
    #[cfg(target_arch = "arm")]
    if !arm::linear_i8_kernels().is_empty() {
        seen.push("neon");
    }
    seen
}

/// What `kinglet inspect --cpu` and `kinglet --version` print: the CPU features seen and the
/// kernel chosen for each family.
#[derive(Debug, Clone, Serialize)]
pub struct KernelReport {
    /// Target architecture of this binary (`x86_64`, `aarch64`, `arm`).
    pub arch: &'static str,
    /// CPU features detected at run time.
    pub cpu_features: Vec<&'static str>,
    /// `(family, kernel)` pairs; `tract` where tract's own kernels run.
    pub kernels: Vec<(&'static str, &'static str)>,
}

/// The report for this CPU.
pub fn report() -> KernelReport {
    let k = native();
    KernelReport {
        arch: std::env::consts::ARCH,
        cpu_features: cpu_features(),
        kernels: vec![
            ("linear_i8", k.linear_i8.map_or("tract", |k| k.name)),
            ("linear_f32", k.linear_f32.map_or("tract", |k| k.name)),
            ("attention", k.attention.map_or("tract", |k| k.name)),
            ("gelu", k.math.name),
            ("lstm", k.lstm.name),
            ("gru", k.gru.name),
            ("layer_norm", k.layer_norm.name),
        ],
    }
}

impl std::fmt::Display for KernelReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "cpu {} [{}]; kernels",
            self.arch,
            self.cpu_features.join(" ")
        )?;
        for (family, kernel) in &self.kernels {
            write!(f, " {family}={kernel}")?;
        }
        Ok(())
    }
}
