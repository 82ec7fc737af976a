//! The f32 linear layer on NEON: tiles of 4 rows × 16 columns in 16 accumulators, `fmla` by
//! lane with four `k` of a row per load, bias, GELU and residual in the same pass.

use super::neon_math::gelu4;
use crate::kernels::linear_f32::{GemmF32, LinearF32Kernel};
use std::arch::aarch64::*;

/// Rows per tile.
const MR: usize = 4;

/// NEON is part of every aarch64 core.
pub static LINEAR_F32: LinearF32Kernel = LinearF32Kernel {
    name: "kinglet_arm64_neon_f32_4x16",
    nr: 16,
    // SAFETY: NEON is baseline; `GemmF32` holds operands of the sizes it states.
    gemm: |g, panels| unsafe { gemm(g, panels) },
};

#[target_feature(enable = "neon")]
unsafe fn gemm(g: &GemmF32, panels: std::ops::Range<usize>) {
    for p in panels {
        let mut r = 0;
        while r < g.m {
            let rows = (g.m - r).min(MR);
            match rows {
                4 => tile::<4>(g, r, p),
                3 => tile::<3>(g, r, p),
                2 => tile::<2>(g, r, p),
                _ => tile::<1>(g, r, p),
            }
            r += rows;
        }
    }
}

#[target_feature(enable = "neon")]
#[inline]
unsafe fn tile<const R: usize>(g: &GemmF32, r0: usize, p: usize) {
    let w = g.w;
    let k = w.k;
    let x: [*const f32; R] = std::array::from_fn(|i| g.x.as_ptr().add((r0 + i) * k));
    let mut wp = w.panels.as_ptr().add(p * 16 * k);
    let mut acc = [[vdupq_n_f32(0.0); 4]; R];
    macro_rules! lane {
        ($lane:literal, $xv:expr) => {{
            let wv = vld1q_f32_x4(wp);
            wp = wp.add(16);
            for i in 0..R {
                acc[i][0] = vfmaq_laneq_f32::<$lane>(acc[i][0], wv.0, $xv[i]);
                acc[i][1] = vfmaq_laneq_f32::<$lane>(acc[i][1], wv.1, $xv[i]);
                acc[i][2] = vfmaq_laneq_f32::<$lane>(acc[i][2], wv.2, $xv[i]);
                acc[i][3] = vfmaq_laneq_f32::<$lane>(acc[i][3], wv.3, $xv[i]);
            }
        }};
    }
    let full = k / 4 * 4;
    let mut kk = 0;
    while kk < full {
        let xv: [float32x4_t; R] = std::array::from_fn(|i| vld1q_f32(x[i].add(kk)));
        lane!(0, xv);
        lane!(1, xv);
        lane!(2, xv);
        lane!(3, xv);
        kk += 4;
    }
    while kk < k {
        let wv = vld1q_f32_x4(wp);
        wp = wp.add(16);
        for (i, acc) in acc.iter_mut().enumerate() {
            let xs = *x[i].add(kk);
            acc[0] = vfmaq_n_f32(acc[0], wv.0, xs);
            acc[1] = vfmaq_n_f32(acc[1], wv.1, xs);
            acc[2] = vfmaq_n_f32(acc[2], wv.2, xs);
            acc[3] = vfmaq_n_f32(acc[3], wv.3, xs);
        }
        kk += 1;
    }
    for (i, acc) in acc.iter().enumerate() {
        let row = r0 + i;
        for (j, &a) in acc.iter().enumerate() {
            let col = p * 16 + 4 * j;
            if col >= w.n {
                break;
            }
            let mut v = vaddq_f32(a, vld1q_f32(w.bias.as_ptr().add(col)));
            if g.epilogue.gelu {
                v = gelu4(v);
            }
            let at = row * w.n + col;
            let out = g.y.ptr().add(at);
            let live = (w.n - col).min(4);
            if live == 4 {
                if let Some(res) = g.epilogue.residual {
                    v = vaddq_f32(v, vld1q_f32(res.as_ptr().add(at)));
                }
                vst1q_f32(out, v);
            } else {
                let mut lanes = [0f32; 4];
                vst1q_f32(lanes.as_mut_ptr(), v);
                for (c, lane) in lanes.iter().enumerate().take(live) {
                    *out.add(c) = lane + g.epilogue.residual.map_or(0.0, |res| res[at + c]);
                }
            }
        }
    }
}
