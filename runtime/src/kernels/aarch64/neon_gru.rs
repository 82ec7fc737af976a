//! GRU layer on NEON: each step's two products (input and recurrent side, kept apart because
//! the reset gate multiplies the recurrent one) 64 gate columns at a time with the LSTM's
//! `ld1`/`fmla` step, then the cell update four units at a time.

use super::neon_lstm::accumulate;
use super::neon_math::{sigmoid4, tanh4};
use crate::kernels::gru::{GruKernel, GruOperands, GruShapes};
use std::arch::aarch64::*;

/// NEON is part of every aarch64 core.
pub static KERNEL: GruKernel = GruKernel {
    name: "kinglet_neon",
    // 3H gate columns in blocks of 64
    hidden_multiple: 64,
    // SAFETY: NEON is baseline; every slice is indexed within the shapes.
    run: |s, o| unsafe { run(s, o) },
};

/// `out = bias + Σ_k v[k] · rows[k]`, `out.len()` (a multiple of 64) columns.
#[target_feature(enable = "neon")]
#[inline]
unsafe fn project(out: &mut [f32], bias: &[f32], v: &[f32], rows: &[f32]) {
    let g3 = out.len();
    for col in (0..g3).step_by(64) {
        let mut acc: [float32x4_t; 16] =
            std::array::from_fn(|j| vld1q_f32(bias.as_ptr().add(col + 4 * j)));
        accumulate(&mut acc, v, rows.as_ptr(), g3, col);
        for (j, a) in acc.iter().enumerate() {
            vst1q_f32(out.as_mut_ptr().add(col + 4 * j), *a);
        }
    }
}

#[target_feature(enable = "neon")]
unsafe fn run(s: &GruShapes, o: GruOperands) {
    let GruOperands {
        x,
        w_t,
        r_t,
        w_bias,
        r_bias,
        h,
        y,
    } = o;
    let hd = s.hidden;
    let (mut gx, mut gh) = (vec![0f32; 3 * hd], vec![0f32; 3 * hd]);
    for t in 0..s.steps {
        for b in 0..s.batch {
            let xt = &x[(t * s.batch + b) * s.input..][..s.input];
            let hb = &mut h[b * hd..(b + 1) * hd];
            project(&mut gx, w_bias, xt, w_t);
            project(&mut gh, r_bias, hb, r_t);
            let (px, ph) = (gx.as_ptr(), gh.as_ptr());
            for j in (0..hd).step_by(4) {
                let z = sigmoid4(vaddq_f32(vld1q_f32(px.add(j)), vld1q_f32(ph.add(j))));
                let r = sigmoid4(vaddq_f32(
                    vld1q_f32(px.add(hd + j)),
                    vld1q_f32(ph.add(hd + j)),
                ));
                let n = tanh4(vfmaq_f32(
                    vld1q_f32(px.add(2 * hd + j)),
                    r,
                    vld1q_f32(ph.add(2 * hd + j)),
                ));
                let h_old = vld1q_f32(hb.as_ptr().add(j));
                // h = n + z·(h − n)
                let h_new = vfmaq_f32(n, z, vsubq_f32(h_old, n));
                vst1q_f32(hb.as_mut_ptr().add(j), h_new);
            }
            y[(t * s.batch + b) * hd..][..hd].copy_from_slice(hb);
        }
    }
}
