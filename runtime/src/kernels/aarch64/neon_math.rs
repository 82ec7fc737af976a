//! `exp` and exact GELU on four NEON lanes: the same functions as
//! [`crate::ops::fast_math::exp`] and [`crate::kernels::generic::gelu_as`].

use crate::kernels::math::MathKernels;
use std::arch::aarch64::*;

/// NEON is part of every aarch64 core.
pub static KERNELS: MathKernels = MathKernels {
    name: "kinglet_neon",
    // SAFETY: NEON is baseline on aarch64.
    gelu: |xs| unsafe { gelu_slice(xs) },
};

#[target_feature(enable = "neon")]
unsafe fn gelu_slice(xs: &mut [f32]) {
    let mut chunks = xs.chunks_exact_mut(4);
    for chunk in &mut chunks {
        let p = chunk.as_mut_ptr();
        vst1q_f32(p, gelu4(vld1q_f32(p)));
    }
    let tail = chunks.into_remainder();
    if !tail.is_empty() {
        let mut lanes = [0f32; 4];
        lanes[..tail.len()].copy_from_slice(tail);
        vst1q_f32(lanes.as_mut_ptr(), gelu4(vld1q_f32(lanes.as_ptr())));
        tail.copy_from_slice(&lanes[..tail.len()]);
    }
}

/// `e^x` for `x` clamped to [-80, 80] (relative error below 4e-7).
#[target_feature(enable = "neon")]
#[inline]
pub unsafe fn exp4(x: float32x4_t) -> float32x4_t {
    let x = vminq_f32(vmaxq_f32(x, vdupq_n_f32(-80.0)), vdupq_n_f32(80.0));
    let n = vrndnq_f32(vmulq_n_f32(x, std::f32::consts::LOG2_E));
    let r = vfmsq_f32(x, n, vdupq_n_f32(0.693_145_75));
    let r = vfmsq_f32(r, n, vdupq_n_f32(1.428_606_8e-6));
    let mut p = vdupq_n_f32(1.0 / 720.0);
    for c in [1.0 / 120.0, 1.0 / 24.0, 1.0 / 6.0, 0.5, 1.0, 1.0] {
        p = vfmaq_f32(vdupq_n_f32(c), p, r);
    }
    // 2^n from the exponent field: n ∈ [-116, 116] after the clamp
    let pow = vreinterpretq_f32_s32(vshlq_n_s32::<23>(vaddq_s32(
        vcvtq_s32_f32(n),
        vdupq_n_s32(127),
    )));
    vmulq_f32(p, pow)
}

/// Exact (erf) GELU, erf from Abramowitz–Stegun 7.1.26.
#[target_feature(enable = "neon")]
#[inline]
pub unsafe fn gelu4(x: float32x4_t) -> float32x4_t {
    let z = vmulq_n_f32(x, std::f32::consts::FRAC_1_SQRT_2);
    let a = vabsq_f32(z);
    let one = vdupq_n_f32(1.0);
    let t = vdivq_f32(one, vfmaq_f32(one, vdupq_n_f32(0.327_591_1), a));
    let mut p = vdupq_n_f32(1.061_405_4);
    for c in [-1.453_152_1, 1.421_413_8, -0.284_496_74, 0.254_829_6] {
        p = vfmaq_f32(vdupq_n_f32(c), p, t);
    }
    p = vmulq_f32(p, t);
    let e = exp4(vnegq_f32(vmulq_f32(a, a)));
    let erf_abs = vfmsq_f32(one, p, e);
    // erf is odd: give |erf| the sign of z
    let erf = vbslq_f32(vdupq_n_u32(0x8000_0000), z, erf_abs);
    vmulq_f32(vmulq_n_f32(x, 0.5), vaddq_f32(one, erf))
}

/// `1 / (1 + e^-x)`.
#[target_feature(enable = "neon")]
#[inline]
pub unsafe fn sigmoid4(x: float32x4_t) -> float32x4_t {
    let one = vdupq_n_f32(1.0);
    vdivq_f32(one, vaddq_f32(one, exp4(vnegq_f32(x))))
}

/// `tanh x = 1 - 2 / (e^{2x} + 1)`.
#[target_feature(enable = "neon")]
#[inline]
pub unsafe fn tanh4(x: float32x4_t) -> float32x4_t {
    let one = vdupq_n_f32(1.0);
    let e = exp4(vaddq_f32(x, x));
    vsubq_f32(one, vdivq_f32(vdupq_n_f32(2.0), vaddq_f32(e, one)))
}
