//! Portable element-wise math.

use crate::kernels::math::MathKernels;
use crate::ops::fast_math::exp;

/// Plain loops.
pub static MATH: MathKernels = MathKernels {
    name: "generic",
    gelu: gelu_slice,
};

/// `erf`, Abramowitz–Stegun 7.1.26 (absolute error below 1.5e-7): what the native GELU kernels
/// compute, lane by lane.
#[inline(always)]
pub fn erf_as(z: f32) -> f32 {
    let a = z.abs();
    let t = 1.0 / (0.327_591_1f32.mul_add(a, 1.0));
    let mut p = 1.061_405_4f32;
    for c in [-1.453_152_1, 1.421_413_8, -0.284_496_74, 0.254_829_6] {
        p = p.mul_add(t, c);
    }
    let e = exp(-(a * a));
    (1.0 - p * t * e).copysign(z)
}

/// Exact GELU, `x/2 · (1 + erf(x/√2))`, with [`erf_as`].
#[inline(always)]
pub fn gelu_as(x: f32) -> f32 {
    0.5 * x * (1.0 + erf_as(x * std::f32::consts::FRAC_1_SQRT_2))
}

fn gelu_slice(xs: &mut [f32]) {
    xs.iter_mut().for_each(|x| *x = gelu_as(*x));
}
