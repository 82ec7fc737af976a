//! `exp`, sigmoid, tanh and exact GELU on sixteen lanes, for the AVX-512 kernels: the same
//! functions as [`crate::ops::fast_math`] and [`crate::kernels::generic::gelu_as`].
//!
//! # Safety
//! Every function here needs a CPU with AVX-512 F.
#![allow(clippy::missing_safety_doc)]

use crate::kernels::math::MathKernels;
use std::arch::x86_64::*;

/// Handed out only where AVX-512 F was detected.
pub static KERNELS: MathKernels = MathKernels {
    name: "kinglet_avx512",
    // SAFETY: only chosen where AVX-512 F was detected.
    gelu: |xs| unsafe { gelu_slice(xs) },
};

#[target_feature(enable = "avx512f")]
unsafe fn gelu_slice(xs: &mut [f32]) {
    let mut chunks = xs.chunks_exact_mut(16);
    for chunk in &mut chunks {
        let p = chunk.as_mut_ptr();
        _mm512_storeu_ps(p, gelu16(_mm512_loadu_ps(p)));
    }
    let tail = chunks.into_remainder();
    if !tail.is_empty() {
        let mask: __mmask16 = (1u16 << tail.len()) - 1;
        let p = tail.as_mut_ptr();
        let x = _mm512_maskz_loadu_ps(mask, p);
        _mm512_mask_storeu_ps(p, mask, gelu16(x));
    }
}

/// [`crate::ops::fast_math::exp`], sixteen lanes (2^n applied with `vscalefps`).
#[target_feature(enable = "avx512f")]
pub unsafe fn exp16(x: __m512) -> __m512 {
    let x = _mm512_min_ps(
        _mm512_max_ps(x, _mm512_set1_ps(-80.0)),
        _mm512_set1_ps(80.0),
    );
    let n = _mm512_roundscale_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(
        _mm512_mul_ps(x, _mm512_set1_ps(std::f32::consts::LOG2_E)),
    );
    let r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693_145_75), x);
    let r = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.428_606_8e-6), r);
    let mut p = _mm512_set1_ps(1.0 / 720.0);
    for c in [1.0 / 120.0, 1.0 / 24.0, 1.0 / 6.0, 0.5, 1.0, 1.0] {
        p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(c));
    }
    _mm512_scalef_ps(p, n)
}

#[target_feature(enable = "avx512f")]
pub unsafe fn sigmoid16(x: __m512) -> __m512 {
    let one = _mm512_set1_ps(1.0);
    let e = exp16(_mm512_sub_ps(_mm512_setzero_ps(), x));
    _mm512_div_ps(one, _mm512_add_ps(one, e))
}

#[target_feature(enable = "avx512f")]
pub unsafe fn tanh16(x: __m512) -> __m512 {
    let one = _mm512_set1_ps(1.0);
    let e = exp16(_mm512_add_ps(x, x));
    _mm512_sub_ps(
        one,
        _mm512_div_ps(_mm512_set1_ps(2.0), _mm512_add_ps(e, one)),
    )
}

/// Exact (erf) GELU, `x/2 · (1 + erf(x/√2))`, with erf from Abramowitz–Stegun 7.1.26
/// (absolute error below 1.5e-7).
#[target_feature(enable = "avx512f")]
pub unsafe fn gelu16(x: __m512) -> __m512 {
    let z = _mm512_mul_ps(x, _mm512_set1_ps(std::f32::consts::FRAC_1_SQRT_2));
    let a = _mm512_abs_ps(z);
    let one = _mm512_set1_ps(1.0);
    let t = _mm512_div_ps(one, _mm512_fmadd_ps(_mm512_set1_ps(0.327_591_1), a, one));
    let mut p = _mm512_set1_ps(1.061_405_4);
    for c in [-1.453_152_1, 1.421_413_8, -0.284_496_74, 0.254_829_6] {
        p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(c));
    }
    p = _mm512_mul_ps(p, t);
    let e = exp16(_mm512_sub_ps(_mm512_setzero_ps(), _mm512_mul_ps(a, a)));
    let erf_abs = _mm512_fnmadd_ps(p, e, one);
    // erf is odd: give |erf| the sign of z
    let sign = _mm512_and_si512(_mm512_castps_si512(z), _mm512_set1_epi32(i32::MIN));
    let erf = _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(erf_abs), sign));
    _mm512_mul_ps(
        _mm512_mul_ps(_mm512_set1_ps(0.5), x),
        _mm512_add_ps(one, erf),
    )
}
