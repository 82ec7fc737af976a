//! `exp` and exact GELU on eight AVX2 lanes: the same functions as
//! [`crate::ops::fast_math::exp`] and [`crate::kernels::generic::gelu_as`].
//!
//! # Safety
//! Every function here needs a CPU with AVX2 and FMA.
#![allow(clippy::missing_safety_doc)]

use crate::kernels::math::MathKernels;
use std::arch::x86_64::*;

/// Handed out only where AVX2 and FMA were detected.
pub static KERNELS: MathKernels = MathKernels {
    name: "kinglet_avx2",
    // SAFETY: only chosen where AVX2 and FMA were detected.
    gelu: |xs| unsafe { gelu_slice(xs) },
};

#[target_feature(enable = "avx2,fma")]
unsafe fn gelu_slice(xs: &mut [f32]) {
    let mut chunks = xs.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let p = chunk.as_mut_ptr();
        _mm256_storeu_ps(p, gelu8(_mm256_loadu_ps(p)));
    }
    let tail = chunks.into_remainder();
    if !tail.is_empty() {
        let mut lanes = [0f32; 8];
        lanes[..tail.len()].copy_from_slice(tail);
        _mm256_storeu_ps(lanes.as_mut_ptr(), gelu8(_mm256_loadu_ps(lanes.as_ptr())));
        tail.copy_from_slice(&lanes[..tail.len()]);
    }
}

/// `e^x` for `x` clamped to [-80, 80].
#[target_feature(enable = "avx2,fma")]
#[inline]
pub unsafe fn exp8(x: __m256) -> __m256 {
    let x = _mm256_min_ps(
        _mm256_max_ps(x, _mm256_set1_ps(-80.0)),
        _mm256_set1_ps(80.0),
    );
    let n = _mm256_round_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(_mm256_mul_ps(
        x,
        _mm256_set1_ps(std::f32::consts::LOG2_E),
    ));
    let r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693_145_75), x);
    let r = _mm256_fnmadd_ps(n, _mm256_set1_ps(1.428_606_8e-6), r);
    let mut p = _mm256_set1_ps(1.0 / 720.0);
    for c in [1.0 / 120.0, 1.0 / 24.0, 1.0 / 6.0, 0.5, 1.0, 1.0] {
        p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(c));
    }
    // 2^n from the exponent field: n ∈ [-116, 116] after the clamp
    let pow = _mm256_slli_epi32::<23>(_mm256_add_epi32(
        _mm256_cvtps_epi32(n),
        _mm256_set1_epi32(127),
    ));
    _mm256_mul_ps(p, _mm256_castsi256_ps(pow))
}

/// Exact (erf) GELU, erf from Abramowitz–Stegun 7.1.26.
#[target_feature(enable = "avx2,fma")]
#[inline]
pub unsafe fn gelu8(x: __m256) -> __m256 {
    let sign_bit = _mm256_set1_ps(-0.0);
    let z = _mm256_mul_ps(x, _mm256_set1_ps(std::f32::consts::FRAC_1_SQRT_2));
    let a = _mm256_andnot_ps(sign_bit, z);
    let one = _mm256_set1_ps(1.0);
    let t = _mm256_div_ps(one, _mm256_fmadd_ps(_mm256_set1_ps(0.327_591_1), a, one));
    let mut p = _mm256_set1_ps(1.061_405_4);
    for c in [-1.453_152_1, 1.421_413_8, -0.284_496_74, 0.254_829_6] {
        p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(c));
    }
    p = _mm256_mul_ps(p, t);
    let e = exp8(_mm256_sub_ps(_mm256_setzero_ps(), _mm256_mul_ps(a, a)));
    let erf_abs = _mm256_fnmadd_ps(p, e, one);
    let erf = _mm256_or_ps(erf_abs, _mm256_and_ps(sign_bit, z));
    _mm256_mul_ps(
        _mm256_mul_ps(_mm256_set1_ps(0.5), x),
        _mm256_add_ps(one, erf),
    )
}
