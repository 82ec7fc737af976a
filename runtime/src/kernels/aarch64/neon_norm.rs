//! LayerNorm on NEON: sixteen values per step, two passes for mean and variance, one for the
//! output.

use crate::kernels::norm::LayerNormKernel;
use std::arch::aarch64::*;

/// NEON is part of every aarch64 core.
pub static LAYER_NORM: LayerNormKernel = LayerNormKernel {
    name: "kinglet_neon",
    // SAFETY: NEON is baseline; slices are read within their lengths.
    run: |x, gamma, beta, eps, y| unsafe { run(x, gamma, beta, eps, y) },
};

#[target_feature(enable = "neon")]
unsafe fn run(x: &[f32], gamma: &[f32], beta: &[f32], eps: f32, y: &mut [f32]) {
    let h = gamma.len();
    let full = h / 16 * 16;
    let inv_h = 1.0 / h as f32;
    for (row, out) in x.chunks_exact(h).zip(y.chunks_exact_mut(h)) {
        let p = row.as_ptr();
        let mut s = [vdupq_n_f32(0.0); 4];
        for i in (0..full).step_by(16) {
            let v = vld1q_f32_x4(p.add(i));
            s = [
                vaddq_f32(s[0], v.0),
                vaddq_f32(s[1], v.1),
                vaddq_f32(s[2], v.2),
                vaddq_f32(s[3], v.3),
            ];
        }
        let mut sum = vaddvq_f32(vaddq_f32(vaddq_f32(s[0], s[1]), vaddq_f32(s[2], s[3])));
        sum += row[full..].iter().sum::<f32>();
        let mean = sum * inv_h;
        let m = vdupq_n_f32(mean);
        let mut s = [vdupq_n_f32(0.0); 4];
        for i in (0..full).step_by(16) {
            let v = vld1q_f32_x4(p.add(i));
            let d = [
                vsubq_f32(v.0, m),
                vsubq_f32(v.1, m),
                vsubq_f32(v.2, m),
                vsubq_f32(v.3, m),
            ];
            s = [
                vfmaq_f32(s[0], d[0], d[0]),
                vfmaq_f32(s[1], d[1], d[1]),
                vfmaq_f32(s[2], d[2], d[2]),
                vfmaq_f32(s[3], d[3], d[3]),
            ];
        }
        let mut sq = vaddvq_f32(vaddq_f32(vaddq_f32(s[0], s[1]), vaddq_f32(s[2], s[3])));
        sq += row[full..]
            .iter()
            .map(|&v| (v - mean) * (v - mean))
            .sum::<f32>();
        let inv = 1.0 / (sq * inv_h + eps).sqrt();
        let o = out.as_mut_ptr();
        for i in (0..full).step_by(4) {
            let v = vld1q_f32(p.add(i));
            let g = vmulq_n_f32(vld1q_f32(gamma.as_ptr().add(i)), inv);
            vst1q_f32(
                o.add(i),
                vfmaq_f32(vld1q_f32(beta.as_ptr().add(i)), vsubq_f32(v, m), g),
            );
        }
        for i in full..h {
            out[i] = (row[i] - mean) * (inv * gamma[i]) + beta[i];
        }
    }
}
